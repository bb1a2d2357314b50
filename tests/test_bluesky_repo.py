"""The Bluesky repository reader (connectors/archiver_connectors/bluesky/repo.py) and builder (fake_repo.py).

The builder is checked against the reference implementation's published MST roots and
key layers, and against libipld's own CAR decoder; the reader is then tested on what the
builder writes: whole repositories, a multi-level tree of thousands of records, damaged,
missing and stray blocks, files that are no CAR at all, and the mapping to records.
"""

from __future__ import annotations

import hashlib

import libipld
import pytest

from archiver_connectors.bluesky.sim.repo import (
    blob_cid, blob_ref, build_mst, build_repo, build_repo_car, cid_for_block, key_depth)
from archiver_connectors.bluesky.repo import (
    RepoError, _varint, blob_sha256, cid_to_bytes, cid_to_str, make_tid, read_repo, records_from_repo, tid_time)

DID = "did:plc:abcdefghijklmnopqrstuvwx"
REV = make_tid(1_717_200_000_000_000)  # 2024-06-01T00:00:00Z
IMAGE = b"\x89PNG\r\n\x1a\n" + b"tomato seedlings" * 40
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"frames" * 100


def tid(n: int) -> str:
    return make_tid(1_700_000_000_000_000 + n * 1_000_000)


def small_repo() -> dict[str, dict]:
    other = "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"
    return {
        "app.bsky.actor.profile/self": {
            "$type": "app.bsky.actor.profile", "displayName": "Alice", "description": "Gardening 🌱",
            "avatar": blob_ref(IMAGE, "image/png"), "createdAt": "2023-01-01T00:00:00.000Z"},
        f"app.bsky.feed.post/{tid(1)}": {
            "$type": "app.bsky.feed.post", "text": "Seedlings are up! #garden", "createdAt": "2024-02-22T05:04:00.796Z",
            "langs": ["en"],
            "facets": [{"index": {"byteStart": 18, "byteEnd": 25},
                        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "garden"}]}],
            "embed": {"$type": "app.bsky.embed.images", "images": [
                {"alt": "Tomato seedlings", "aspectRatio": {"width": 2000, "height": 1500},
                 "image": blob_ref(IMAGE, "image/png")}]}},
        f"app.bsky.feed.post/{tid(2)}": {
            "$type": "app.bsky.feed.post", "text": "Agreed — très bien", "createdAt": "2024-02-23T10:00:00Z",
            "reply": {"root": {"uri": f"at://{other}/app.bsky.feed.post/{tid(0)}", "cid": cid_to_str(cid_for_block(b"r"))},
                      "parent": {"uri": f"at://{other}/app.bsky.feed.post/{tid(0)}", "cid": cid_to_str(cid_for_block(b"r"))}}},
        f"app.bsky.feed.post/{tid(3)}": {
            "$type": "app.bsky.feed.post", "text": "quote with video", "createdAt": "2024-02-24T10:00:00Z",
            "embed": {"$type": "app.bsky.embed.recordWithMedia",
                      "record": {"record": {"uri": f"at://{other}/app.bsky.feed.post/{tid(0)}",
                                            "cid": cid_to_str(cid_for_block(b"q"))}},
                      "media": {"$type": "app.bsky.embed.video", "alt": "growing", "video": blob_ref(VIDEO, "video/mp4"),
                                "aspectRatio": {"width": 16, "height": 9}}}},
        f"app.bsky.feed.like/{tid(4)}": {
            "$type": "app.bsky.feed.like", "createdAt": "2024-02-25T00:00:00Z",
            "subject": {"uri": f"at://{other}/app.bsky.feed.post/{tid(0)}", "cid": cid_to_str(cid_for_block(b"l"))}},
        f"app.bsky.feed.repost/{tid(5)}": {
            "$type": "app.bsky.feed.repost", "createdAt": "2024-02-26T00:00:00Z",
            "subject": {"uri": f"at://{other}/app.bsky.feed.post/{tid(0)}", "cid": cid_to_str(cid_for_block(b"l"))}},
        f"app.bsky.graph.follow/{tid(6)}": {
            "$type": "app.bsky.graph.follow", "subject": other, "createdAt": "2023-05-01T00:00:00Z"},
        "blue.linkat.board/self": {"$type": "blue.linkat.board", "cards": [{"url": "https://example.com"}]},
    }


# --------------------------------------------------------------------------- the spec's examples


def test_key_layers_match_the_spec_examples():
    assert [key_depth(k) for k in ("2653ae71", "blue", "app.bsky.feed.post/454397e440ec",
                                    "app.bsky.feed.post/9adeb165882c")] == [0, 1, 4, 8]


LEAF = cid_to_bytes("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454")


@pytest.mark.parametrize("rkeys,root", [
    ([], "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"),
    (["3jqfcqzm3fo2j"], "bafyreibj4lsc3aqnrvphp5xmrnfoorvru4wynt6lwidqbm2623a6tatzdu"),
    (["3jqfcqzm3fx2j"], "bafyreih7wfei65pxzhauoibu3ls7jgmkju4bspy4t2ha2qdjnzqvoy33ai"),  # one key at layer 2
    (["3jqfcqzm3fp2j", "3jqfcqzm3fr2j", "3jqfcqzm3fs2j", "3jqfcqzm3ft2j", "3jqfcqzm4fc2j"],
     "bafyreicmahysq4n6wfuxo522m6dpiy7z7qzym3dzs756t5n7nfdgccwq7m"),
])
def test_mst_roots_match_the_reference_implementation(rkeys, root):
    built, _, _ = build_mst({f"com.example.record/{rkey}": LEAF for rkey in rkeys})
    assert cid_to_str(built) == root


def test_the_built_car_is_what_libipld_reads():
    built = build_repo(DID, small_repo(), rev=REV)
    header, blocks = libipld.decode_car(built.car)
    assert header == {"version": 1, "roots": [cid_to_bytes(built.commit_cid)]}
    assert sorted(cid_to_str(cid) for cid in blocks) == sorted(built.block_cids)
    commit = blocks[cid_to_bytes(built.commit_cid)]
    assert commit["did"] == DID and commit["version"] == 3 and commit["rev"] == REV and commit["prev"] is None
    assert cid_to_str(commit["data"]) == built.data_cid and len(commit["sig"]) == 64
    for cid, value in blocks.items():  # every block is named by the sha256 of its bytes
        assert cid_for_block(libipld.encode_dag_cbor(value)) == cid


# --------------------------------------------------------------------------- reading


def test_reads_back_every_record_in_key_order():
    records = small_repo()
    built = build_repo(DID, records, rev=REV)

    repo = read_repo(built.car)

    assert (repo.did, repo.rev, repo.commit_cid, repo.data_cid, repo.version) == (
        DID, REV, built.commit_cid, built.data_cid, 3)
    assert repo.problems == []
    assert [f"{r.collection}/{r.rkey}" for r in repo.records] == sorted(records)
    for record in repo.records:
        assert record.value == records[f"{record.collection}/{record.rkey}"]
        assert record.cid == built.record_cids[f"{record.collection}/{record.rkey}"]
    assert repo.rev_time == "2024-06-01T00:00:00Z"


def test_reads_from_a_stream_too(tmp_path):
    path = tmp_path / "repo.car"
    path.write_bytes(build_repo_car(DID, small_repo(), rev=REV))
    with open(path, "rb") as stream:
        repo = read_repo(stream)
    assert len(repo.records) == len(small_repo()) and repo.problems == []


def test_cid_links_are_dag_cbor_links_and_come_back_as_link_objects():
    records = small_repo()
    built = build_repo(DID, records, rev=REV)
    _, blocks = libipld.decode_car(built.car)
    post_key = f"app.bsky.feed.post/{tid(1)}"
    raw_post = blocks[cid_to_bytes(built.record_cids[post_key])]
    image_cid, image_link = blob_cid(IMAGE)
    # In the block, the blob ref is a CID link (tag 42), not a {"$link"} map …
    assert raw_post["embed"]["images"][0]["image"]["ref"] == image_link
    block_bytes = libipld.encode_dag_cbor(raw_post)
    assert b"\xd8\x2a\x58\x25\x00" + image_link in block_bytes
    # … and the reader gives it back in the JSON form listRecords uses.
    repo = read_repo(built.car)
    post = next(r for r in repo.records if r.rkey == tid(1))
    assert post.value["embed"]["images"][0]["image"]["ref"] == {"$link": image_cid}


def test_blob_cid_names_the_sha256_of_the_bytes():
    cid, link = blob_cid(IMAGE)
    assert cid.startswith("bafkrei") and link[:4] == bytes([0x01, 0x55, 0x12, 0x20])
    assert blob_sha256(cid) == hashlib.sha256(IMAGE).hexdigest()
    assert blob_sha256(link) == hashlib.sha256(IMAGE).hexdigest()
    assert blob_sha256("not a cid") is None and blob_sha256(None) is None


def test_tids_round_trip():
    assert tid_time(make_tid(1_717_200_000_000_000, clock_id=7)) == "2024-06-01T00:00:00Z"
    assert tid_time("self") is None


def test_a_multi_level_tree_of_thousands_of_records_is_walked_in_order():
    records = {f"app.bsky.feed.like/{tid(n)}": {"$type": "app.bsky.feed.like", "createdAt": "2024-01-01T00:00:00Z",
                                                 "subject": {"uri": f"at://did:plc:x/app.bsky.feed.post/{n}",
                                                             "cid": cid_to_str(cid_for_block(str(n).encode()))}}
               for n in range(3000)}
    built = build_repo(DID, records, rev=REV)
    layers = {key_depth(key) for key in records}
    assert max(layers) >= 4 and len(built.node_cids) > 100  # a real, deep tree

    repo = read_repo(built.car)

    assert repo.problems == []
    assert [f"{r.collection}/{r.rkey}" for r in repo.records] == sorted(records)


def _append_block(car: bytes, value: dict) -> tuple[bytes, str]:
    data = libipld.encode_dag_cbor(value)
    cid = cid_for_block(data)
    return car + _varint(len(cid) + len(data)) + cid + data, cid_to_str(cid)


def test_only_what_the_tree_reaches_is_a_record():
    car = build_repo_car(DID, small_repo(), rev=REV)
    # A stray record block (a deleted post a PDS left behind) and a duplicate block.
    car, _ = _append_block(car, {"$type": "app.bsky.feed.post", "text": "deleted", "createdAt": "2024-01-01T00:00:00Z"})
    header, blocks = libipld.decode_car(car)
    car, _ = _append_block(car, blocks[header["roots"][0]])

    repo = read_repo(car)

    assert repo.problems == []
    assert "deleted" not in [r.value.get("text") for r in repo.records]
    assert len(repo.records) == len(small_repo())


# --------------------------------------------------------------------------- damage


def test_a_damaged_record_block_is_reported_and_the_rest_is_read():
    records = small_repo()
    key = f"app.bsky.feed.post/{tid(2)}"
    built = build_repo(DID, records, rev=REV)
    car = build_repo_car(DID, records, rev=REV, break_block=built.record_cids[key])

    repo = read_repo(car)

    assert [item for item, _ in repo.problems] == [f"at://{DID}/{key}"]
    assert "do not match" in repo.problems[0][1]
    assert sorted(f"{r.collection}/{r.rkey}" for r in repo.records) == sorted(set(records) - {key})


def test_a_missing_record_block_is_reported_unless_the_car_is_a_diff():
    records = small_repo()
    key = f"app.bsky.feed.like/{tid(4)}"
    built = build_repo(DID, records, rev=REV)
    car = build_repo_car(DID, records, rev=REV, drop_block=built.record_cids[key])

    repo = read_repo(car)
    assert [item for item, _ in repo.problems] == [f"at://{DID}/{key}"]
    assert "missing" in repo.problems[0][1]
    assert len(repo.records) == len(records) - 1

    assert read_repo(car, diff=True).problems == []


def test_a_damaged_tree_node_loses_only_the_records_under_it():
    records = {f"app.bsky.feed.post/{tid(n)}": {"$type": "app.bsky.feed.post", "text": str(n),
                                                 "createdAt": "2024-01-01T00:00:00Z"} for n in range(400)}
    built = build_repo(DID, records, rev=REV)
    inner = built.node_cids[1]  # a child of the root
    car = build_repo_car(DID, records, rev=REV, break_block=inner)

    repo = read_repo(car)

    assert [item for item, _ in repo.problems] == [f"MST node {inner} (the records under it are lost)"]
    assert 0 < len(repo.records) < len(records)
    assert all(r.value == records[f"{r.collection}/{r.rkey}"] for r in repo.records)


def test_a_damaged_commit_still_gives_the_records_through_the_tree_root():
    records = small_repo()
    car = build_repo_car(DID, records, rev=REV, break_block=0)

    repo = read_repo(car)

    assert repo.did is None and [item for item, _ in repo.problems] == ["commit"]
    assert len(repo.records) == len(records)


def test_a_truncated_file_keeps_the_blocks_before_the_cut():
    records = small_repo()
    car = build_repo_car(DID, records, rev=REV)
    repo = read_repo(car[:-10])
    assert repo.problems[0][0] == "car" and "truncated" in repo.problems[0][1]
    assert len(repo.records) == len(records) - 1  # the last record block was cut


@pytest.mark.parametrize("data", [
    b"", b"garbage, not a car", b'{"posts": []}', b"\x05\xa1\x61a\x01",
    _varint(10) + libipld.encode_dag_cbor({"version": 1, "roots": []})[:10],
])
def test_not_a_car_is_a_clear_error_naming_the_file(data):
    with pytest.raises(RepoError) as error:
        read_repo(data, name="/home/alice/Downloads/repo.car")
    assert "/home/alice/Downloads/repo.car" in str(error.value)
    assert "export it again" in str(error.value)


def test_a_header_without_blocks_is_an_error():
    header = libipld.encode_dag_cbor({"version": 1, "roots": [cid_for_block(b"x")]})
    with pytest.raises(RepoError, match="holds no blocks"):
        read_repo(_varint(len(header)) + header, name="empty.car")


# --------------------------------------------------------------------------- mapping


def blob_url(cid: str) -> str:
    return f"https://pds.example.net/xrpc/com.atproto.sync.getBlob?did={DID}&cid={cid}"


def test_records_map_to_profile_posts_reposts_likes_and_following():
    repo = read_repo(build_repo_car(DID, small_repo(), rev=REV))

    mapped = records_from_repo(repo, did=DID, handle="alice.example.com", blob_url=blob_url)

    assert mapped.problems == []
    profile = mapped.profile
    assert (profile.native_id, profile.username, profile.display_name, profile.bio, profile.url) == (
        DID, "alice.example.com", "Alice", "Gardening 🌱", "https://bsky.app/profile/alice.example.com")
    assert profile.followers is None and profile.avatar.role == "avatar"
    assert profile.avatar.sha256 == hashlib.sha256(IMAGE).hexdigest()

    posts = {p.native_id: p for p in mapped.posts}
    first = posts[f"at://{DID}/app.bsky.feed.post/{tid(1)}"]
    assert (first.kind, first.text, first.created_at, first.url) == (
        "text", "Seedlings are up! #garden", "2024-02-22T05:04:00Z",
        f"https://bsky.app/profile/alice.example.com/post/{tid(1)}")
    assert first.raw["value"]["facets"][0]["features"][0]["tag"] == "garden"
    [image] = first.media
    image_cid, _ = blob_cid(IMAGE)
    assert (image.role, image.position, image.description, image.url, image.sha256, image.mime_hint) == (
        "image", 0, "Tomato seedlings", blob_url(image_cid), hashlib.sha256(IMAGE).hexdigest(), "image/png")
    assert image.meta == {"cid": image_cid, "mimeType": "image/png", "size": len(IMAGE),
                          "aspectRatio": {"width": 2000, "height": 1500}}

    reply = posts[f"at://{DID}/app.bsky.feed.post/{tid(2)}"]
    assert reply.kind == "reply" and reply.media == [] and "parent" in reply.raw["value"]["reply"]
    [video] = posts[f"at://{DID}/app.bsky.feed.post/{tid(3)}"].media
    assert (video.role, video.description, video.sha256) == ("video", "growing", hashlib.sha256(VIDEO).hexdigest())

    [repost] = mapped.reposts
    target = f"at://did:plc:zzzzzzzzzzzzzzzzzzzzzzzz/app.bsky.feed.post/{tid(0)}"
    assert (repost.native_id, repost.kind, repost.text, repost.url) == (
        f"at://{DID}/app.bsky.feed.repost/{tid(5)}", "boost", target,
        f"https://bsky.app/profile/did:plc:zzzzzzzzzzzzzzzzzzzzzzzz/post/{tid(0)}")
    [like] = mapped.likes
    assert (like.kind, like.target, like.native_id, like.created_at) == (
        "like", target, f"at://{DID}/app.bsky.feed.like/{tid(4)}", "2024-02-25T00:00:00Z")
    [follow] = mapped.following
    assert (follow.person.native_id, follow.since) == ("did:plc:zzzzzzzzzzzzzzzzzzzzzzzz", "2023-05-01T00:00:00Z")
    assert [r.collection for r in mapped.other] == ["blue.linkat.board"]


def test_without_blob_urls_there_are_no_media_refs_but_the_cids_stay_in_raw():
    repo = read_repo(build_repo_car(DID, small_repo(), rev=REV))
    mapped = records_from_repo(repo, did=DID, handle=None)
    assert all(post.media == [] for post in mapped.posts) and mapped.profile.avatar is None
    assert mapped.profile.username is None and mapped.profile.url == f"https://bsky.app/profile/{DID}"
    first = next(p for p in mapped.posts if p.native_id.endswith(tid(1)))
    assert first.url == f"https://bsky.app/profile/{DID}/post/{tid(1)}"
    assert first.raw["value"]["embed"]["images"][0]["image"]["ref"]["$link"] == blob_cid(IMAGE)[0]


def test_a_pds_url_gives_get_blob_links():
    repo = read_repo(build_repo_car(DID, small_repo(), rev=REV))
    mapped = records_from_repo(repo, did=DID, handle="alice.example.com", pds_url="https://pds.example.net/")
    assert mapped.profile.avatar.url.startswith("https://pds.example.net/xrpc/com.atproto.sync.getBlob?did=did%3Aplc")


def test_odd_timestamps_and_broken_records_are_tolerated():
    records = {
        f"app.bsky.feed.post/{tid(1)}": {"$type": "app.bsky.feed.post", "text": "ns", "createdAt": "2024-02-22T05:04:00.123456789Z"},
        f"app.bsky.feed.post/{tid(2)}": {"$type": "app.bsky.feed.post", "text": "naive", "createdAt": "2024-02-22T05:04:00"},
        f"app.bsky.feed.post/{tid(3)}": {"$type": "app.bsky.feed.post", "text": "odd", "createdAt": "yesterday"},
        "app.bsky.feed.post/custom-key": {"$type": "app.bsky.feed.post", "text": "none"},
        f"app.bsky.feed.like/{tid(4)}": {"$type": "app.bsky.feed.like", "subject": "not a strong ref"},
        f"app.bsky.graph.follow/{tid(5)}": {"$type": "app.bsky.graph.follow", "subject": "did:plc:b", "createdAt": "2024-03-01T00:00:00Z"},
        f"app.bsky.graph.follow/{tid(6)}": {"$type": "app.bsky.graph.follow", "subject": "did:plc:b", "createdAt": "2023-03-01T00:00:00Z"},
    }
    mapped = records_from_repo(read_repo(build_repo_car(DID, records, rev=REV)), did=DID, handle=None)
    times = {p.text: p.created_at for p in mapped.posts}
    assert times == {"ns": "2024-02-22T05:04:00Z", "naive": "2024-02-22T05:04:00Z",
                     "odd": tid_time(tid(3)), "none": None}
    assert [item for item, _ in mapped.problems] == [f"at://{DID}/app.bsky.feed.like/{tid(4)}"]
    assert [(m.person.native_id, m.since) for m in mapped.following] == [("did:plc:b", "2023-03-01T00:00:00Z")]
