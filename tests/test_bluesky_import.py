"""`archiver import` of a Bluesky repository CAR file, into a real archive.

The CAR files are real repositories built by connectors/archiver_connectors/bluesky/sim/repo.py. Most tests
drive the real connector's ``import_pages`` through the real sync runner (on a network that
fails the test at any request; the API-path ones serve blobs in-process);
the last ones go through ``archiver.sync.jobs.run_import`` and the ``archiver import`` command
(platform detection by the Bluesky connector). Expectations are checked on the SQLite rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx

from archive_rows import one, rows
from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.sync.imports import open_export
from archiver.sync.jobs import Workspace, run_import
from archiver.records import Page
from archiver.secrets import open_secret_store
from archiver.sync.runner import Runner
from archiver_connectors.bluesky import BlueskyConnector
from archiver_connectors.bluesky.export import looks_like_repo
from archiver_connectors.bluesky.sim.repo import blob_cid, blob_ref, build_repo, build_repo_car, cid_for_block
from archiver_connectors.bluesky.repo import cid_to_str, make_tid, post_from_record

DID = "did:plc:abcdefghijklmnopqrstuvwx"
FRIEND = "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"
OTHER = "did:plc:yyyyyyyyyyyyyyyyyyyyyyyy"
HANDLE = "alice.example.com"
REV = make_tid(1_717_200_000_000_000)        # 2024-06-01T00:00:00Z
LATER_REV = make_tid(1_719_792_000_000_000)  # 2024-07-01T00:00:00Z
IMAGE = b"\x89PNG\r\n\x1a\n" + b"seedlings" * 50


def tid(n: int) -> str:
    return make_tid(1_700_000_000_000_000 + n * 1_000_000)


def strong_ref(n: int) -> dict:
    return {"uri": f"at://{FRIEND}/app.bsky.feed.post/{tid(n)}", "cid": cid_to_str(cid_for_block(str(n).encode()))}


def repo_records(posts: int = 3) -> dict[str, dict]:
    records = {
        "app.bsky.actor.profile/self": {"$type": "app.bsky.actor.profile", "displayName": "Alice",
                                        "description": "Gardening", "avatar": blob_ref(IMAGE, "image/png")},
        f"app.bsky.feed.repost/{tid(90)}": {"$type": "app.bsky.feed.repost", "subject": strong_ref(1),
                                            "createdAt": "2024-03-01T00:00:00Z"},
        f"app.bsky.feed.like/{tid(91)}": {"$type": "app.bsky.feed.like", "subject": strong_ref(2),
                                          "createdAt": "2024-03-02T00:00:00Z"},
        f"app.bsky.graph.follow/{tid(92)}": {"$type": "app.bsky.graph.follow", "subject": FRIEND,
                                             "createdAt": "2023-05-01T00:00:00Z"},
        f"app.bsky.graph.follow/{tid(93)}": {"$type": "app.bsky.graph.follow", "subject": OTHER,
                                             "createdAt": "2023-06-01T00:00:00Z"},
    }
    for n in range(posts):
        post = {"$type": "app.bsky.feed.post", "text": f"post {n}", "createdAt": f"2024-02-{n + 1:02d}T10:00:00Z"}
        if n == 0:
            post["embed"] = {"$type": "app.bsky.embed.images",
                             "images": [{"alt": "seedlings", "image": blob_ref(IMAGE, "image/png")}]}
        if n == 1:
            post["reply"] = {"root": strong_ref(1), "parent": strong_ref(1)}
        records[f"app.bsky.feed.post/{tid(n)}"] = post
    return records


def refuse_every_request(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"an import of a repository CAR must not make any request (it asked for {request.url})")


def bluesky_connector(handle: str | None = HANDLE, transport: httpx.BaseTransport | None = None) -> BlueskyConnector:
    """The real connector, on the network ``transport`` (by default one that fails the test
    at any request: an import of a CAR file must never download anything)."""
    options = {"handle": handle} if handle is not None else {}
    return BlueskyConnector(AccountConfig(name="main", platform="bluesky", options=options),
                            open_secret_store("memory"),
                            transport=transport or httpx.MockTransport(refuse_every_request))


def import_car(archive: Archive, path: Path, connector: BlueskyConnector | None = None) -> dict:
    connector = connector or bluesky_connector()
    with open_export(path) as source:
        return Runner(archive, connector).run(
            lambda ctx: connector.import_pages(source, ctx), kind="import", mode=path.name,
            source=f"export:{source.sha256}")


def write_car(path: Path, records: dict, **knobs) -> Path:
    path.write_bytes(build_repo_car(DID, records, rev=knobs.pop("rev", REV), **knobs))
    return path


# --------------------------------------------------------------------------- import


def test_a_repository_car_fills_profile_posts_likes_and_following(tmp_path, archive):
    path = write_car(tmp_path / "repo.car", repo_records())

    result = import_car(archive, path)

    assert result["status"] == "ok", result
    assert result["errors"] == []
    db = archive.db
    source = f"export:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    assert rows(db, "SELECT native_id, username, display_name, bio, url, followers FROM accounts") == [
        (DID, HANDLE, "Alice", "Gardening", f"https://bsky.app/profile/{HANDLE}", None)]
    assert rows(db, "SELECT post_id, kind, text, created_at, url, sources FROM posts ORDER BY created_at") == [
        (f"at://{DID}/app.bsky.feed.post/{tid(0)}", "text", "post 0", "2024-02-01T10:00:00Z",
         f"https://bsky.app/profile/{HANDLE}/post/{tid(0)}", json.dumps([source])),
        (f"at://{DID}/app.bsky.feed.post/{tid(1)}", "reply", "post 1", "2024-02-02T10:00:00Z",
         f"https://bsky.app/profile/{HANDLE}/post/{tid(1)}", json.dumps([source])),
        (f"at://{DID}/app.bsky.feed.post/{tid(2)}", "text", "post 2", "2024-02-03T10:00:00Z",
         f"https://bsky.app/profile/{HANDLE}/post/{tid(2)}", json.dumps([source])),
        (f"at://{DID}/app.bsky.feed.repost/{tid(90)}", "boost", strong_ref(1)["uri"], "2024-03-01T00:00:00Z",
         f"https://bsky.app/profile/{FRIEND}/post/{tid(1)}", json.dumps([source])),
    ]
    # The raw record keeps what has no column: embeds (with blob CIDs), reply references.
    raw = json.loads(one(db, "SELECT raw FROM posts WHERE post_id=?", f"at://{DID}/app.bsky.feed.post/{tid(0)}"))
    assert raw[source]["value"]["embed"]["images"][0]["image"]["ref"] == {"$link": blob_cid(IMAGE)[0]}
    assert one(db, "SELECT count(*) FROM post_media") == 0  # no blob bytes in a CAR file
    assert rows(db, "SELECT kind, target, native_id, created_at FROM interactions") == [
        ("like", strong_ref(2)["uri"], f"at://{DID}/app.bsky.feed.like/{tid(91)}", "2024-03-02T00:00:00Z")]
    assert rows(db, "SELECT kind, person_id, started_at, ended_at FROM follows ORDER BY person_id") == [
        ("following", OTHER, "2023-06-01T00:00:00Z", None), ("following", FRIEND, "2023-05-01T00:00:00Z", None)]
    assert rows(db, "SELECT kind, taken_at, member_count, complete FROM snapshots") == [
        ("following", "2024-06-01T00:00:00Z", 2, 1)]


def test_importing_the_same_repository_again_adds_nothing(tmp_path, archive):
    path = write_car(tmp_path / "repo.car", repo_records())
    import_car(archive, path)
    tables = ("posts", "interactions", "follows", "people", "snapshots", "audience_events", "post_versions")
    before = {t: one(archive.db, f"SELECT count(*) FROM {t}") for t in tables}

    again = import_car(archive, path)

    assert again["status"] == "ok" and again["errors"] == []
    assert not any(again["counts"].get(key) for key in ("posts_new", "posts_edited", "likes_new", "following_new"))
    assert {t: one(archive.db, f"SELECT count(*) FROM {t}") for t in tables} == before


def test_a_later_repository_adds_the_new_post_and_ends_the_dropped_follow(tmp_path, archive):
    import_car(archive, write_car(tmp_path / "june.car", repo_records(posts=3)))
    later = repo_records(posts=4)
    del later[f"app.bsky.graph.follow/{tid(93)}"]

    result = import_car(archive, write_car(tmp_path / "july.car", later, rev=LATER_REV))

    assert result["counts"].get("posts_new") == 1
    db = archive.db
    assert one(db, "SELECT count(*) FROM posts") == 5
    assert rows(db, "SELECT person_id, ended_at FROM follows ORDER BY person_id") == [
        (OTHER, "2024-07-01T00:00:00Z"), (FRIEND, None)]


def test_a_broken_block_is_reported_and_everything_else_imported(tmp_path, archive):
    records = repo_records()
    import_car(archive, write_car(tmp_path / "june.car", records))
    broken_key = f"app.bsky.graph.follow/{tid(93)}"
    built = build_repo(DID, records, rev=LATER_REV)

    result = import_car(archive, write_car(tmp_path / "july.car", records, rev=LATER_REV,
                                           break_block=built.record_cids[broken_key]))

    assert result["status"] == "ok", result
    assert [e["item"] for e in result["errors"]] == [f"at://{DID}/{broken_key}"]
    assert "do not match" in result["errors"][0]["error"]
    db = archive.db
    assert one(db, "SELECT count(*) FROM posts") == 4
    # The follow record was lost, not undone: the partial snapshot ends nobody.
    assert rows(db, "SELECT person_id, ended_at FROM follows ORDER BY person_id") == [(OTHER, None), (FRIEND, None)]
    assert rows(db, "SELECT taken_at, complete FROM snapshots ORDER BY taken_at") == [
        ("2024-06-01T00:00:00Z", 1), ("2024-07-01T00:00:00Z", 0)]


def test_a_broken_post_on_a_first_import_is_skipped_and_the_rest_is_whole(tmp_path, archive):
    records = repo_records()
    key = f"app.bsky.feed.post/{tid(1)}"
    built = build_repo(DID, records, rev=REV)

    result = import_car(archive, write_car(tmp_path / "repo.car", records, break_block=built.record_cids[key]))

    assert [e["item"] for e in result["errors"]] == [f"at://{DID}/{key}"]
    assert sorted(r[0] for r in rows(archive.db, "SELECT post_id FROM posts")) == sorted([
        f"at://{DID}/app.bsky.feed.post/{tid(0)}", f"at://{DID}/app.bsky.feed.post/{tid(2)}",
        f"at://{DID}/app.bsky.feed.repost/{tid(90)}"])
    assert one(archive.db, "SELECT count(*) FROM interactions") == 1


def test_the_api_row_and_the_imported_row_are_one(tmp_path, archive):
    """The API path maps the same records (with blob URLs); the import adds its
    provenance to the same rows and leaves the downloaded image alone."""
    records = repo_records()
    rkey = tid(0)
    image_cid, _ = blob_cid(IMAGE)
    served = []

    def cdn(request: httpx.Request) -> httpx.Response:
        served.append(request.url.params.get("cid"))
        return httpx.Response(200, content=IMAGE, headers={"content-type": "image/png"})

    api_post = post_from_record(DID, HANDLE, rkey, records[f"app.bsky.feed.post/{rkey}"],
                                blob_url=lambda cid: f"https://pds.example.net/xrpc/com.atproto.sync.getBlob?cid={cid}")
    api_post.like_count = 7
    api = Runner(archive, bluesky_connector(transport=httpx.MockTransport(cdn))).run(
        lambda ctx: iter([Page("posts", [api_post])]), kind="export", mode="incremental")
    assert api["status"] == "ok" and served == [image_cid]

    result = import_car(archive, write_car(tmp_path / "repo.car", records))

    assert result["status"] == "ok"
    db = archive.db
    post_id = f"at://{DID}/app.bsky.feed.post/{rkey}"
    assert one(db, "SELECT count(*) FROM posts WHERE post_id LIKE ?", f"%/{rkey}") == 1
    sources = json.loads(one(db, "SELECT sources FROM posts WHERE post_id=?", post_id))
    assert sources[0] == "api" and sources[1].startswith("export:")
    assert rows(db, "SELECT like_count, text FROM posts WHERE post_id=?", post_id) == [(7, "post 0")]
    assert rows(db, "SELECT role, status, sha256, description FROM post_media WHERE post_id=?", post_id) == [
        ("image", "ok", hashlib.sha256(IMAGE).hexdigest(), "seedlings")]


def test_a_blob_with_other_bytes_than_its_cid_is_refused(archive):
    records = repo_records()
    api_post = post_from_record(DID, HANDLE, tid(0), records[f"app.bsky.feed.post/{tid(0)}"],
                                blob_url=lambda cid: f"https://pds.example.net/blob/{cid}")
    forged = httpx.MockTransport(lambda request: httpx.Response(200, content=b"not the image"))

    result = Runner(archive, bluesky_connector(transport=forged)).run(
        lambda ctx: iter([Page("posts", [api_post])]), kind="export", mode="incremental")

    assert "does not match" in result["errors"][0]["error"]
    assert rows(archive.db, "SELECT status, sha256 FROM post_media") == [("failed", None)]


def test_without_a_handle_the_did_names_the_account(tmp_path, archive):
    import_car(archive, write_car(tmp_path / "repo.car", repo_records()), bluesky_connector(handle=None))
    assert rows(archive.db, "SELECT username, url FROM accounts") == [(None, f"https://bsky.app/profile/{DID}")]
    assert one(archive.db, "SELECT url FROM posts WHERE kind='text' LIMIT 1").startswith(f"https://bsky.app/profile/{DID}/post/")


def test_a_handle_option_that_is_not_text_is_a_clear_error(tmp_path, archive):
    connector = bluesky_connector()
    connector.account.options["handle"] = 42
    result = import_car(archive, write_car(tmp_path / "repo.car", repo_records()), connector)
    assert result["status"] == "failed"
    assert "[accounts.main] handle = 42" in result["message"]


def test_a_car_with_a_header_but_nothing_else_fails_naming_the_file(tmp_path, archive):
    import libipld

    from archiver_connectors.bluesky.repo import _varint

    header = libipld.encode_dag_cbor({"version": 1, "roots": [cid_for_block(b"x")]})
    path = tmp_path / "repo.car"
    path.write_bytes(_varint(len(header)) + header)

    result = import_car(archive, path)

    assert result["status"] == "failed" and str(path) in result["message"]
    assert one(archive.db, "SELECT count(*) FROM posts") == 0


def test_folders_and_zips_holding_a_car_are_recognized(tmp_path):
    car = build_repo_car(DID, repo_records(), rev=REV)
    folder = tmp_path / "bluesky-export"
    folder.mkdir()
    (folder / "repo.car").write_bytes(car)
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as bundle:
        bundle.writestr("bluesky/repo.car", car)
    (tmp_path / "posts.json").write_text('{"posts": []}')
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "fake.car").write_bytes(b"not a car at all")

    for path in (tmp_path / "bluesky-export" / "repo.car", folder, tmp_path / "export.zip"):
        with open_export(path) as source:
            assert looks_like_repo(source), path
    for path in (tmp_path / "posts.json", tmp_path / "other"):
        with open_export(path) as source:
            assert not looks_like_repo(source), path


def test_a_zipped_repository_imports_like_a_bare_one(tmp_path, archive):
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as bundle:
        bundle.writestr("bluesky/repo.car", build_repo_car(DID, repo_records(), rev=REV))
    result = import_car(archive, tmp_path / "export.zip")
    assert result["status"] == "ok" and one(archive.db, "SELECT count(*) FROM posts") == 4


# --------------------------------------------------------------------------- through the connector


def test_run_import_detects_bluesky_and_imports_once(tmp_path):
    from archiver.secrets import open_secret_store

    path = write_car(tmp_path / "repo-alice.car", repo_records())
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    try:
        first = run_import(ws, path)
        assert first["status"] == "ok", first
        assert (first["platform"], first["account"]) == ("bluesky", "bluesky:main")
        assert one(ws.archive.db, "SELECT count(*) FROM posts") == 4
        assert run_import(ws, path)["status"] == "skipped"
    finally:
        ws.archive.close()


def test_cli_import_of_a_car_file(tmp_path):
    (tmp_path / "inputs").mkdir()
    path = write_car(tmp_path / "inputs" / "repo.car", repo_records())
    script = Path(sys.executable).parent / "archiver"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "archiver.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env.update(ARCHIVER_SECRETS="env", ARCHIVER_STATE_DIR=str(tmp_path / "state"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")

    result = subprocess.run([*command, "import", str(path), "--archive", str(tmp_path / "archive")],
                            capture_output=True, text=True, env=env, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    archive = Archive(tmp_path / "archive")
    try:
        assert one(archive.db, "SELECT count(*) FROM posts") == 4
        assert one(archive.db, "SELECT count(*) FROM follows") == 2
    finally:
        archive.close()
