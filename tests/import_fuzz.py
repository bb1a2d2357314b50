"""The machinery of the importers' fuzz test (tests/test_import_fuzz.py).

Seeds: one valid export per importer, built by the platform fakes (their builders are
faithful to shared/platforms/*.md), kept as entry name -> bytes plus the parsed JSON /
CSV / records that mutations change.

Cases: a seed with hypothesis-drawn mutations (wrong types, nulls, missing keys, huge and
odd strings, extra nesting inside one JSON document, one CSV cell or one repository
record; byte flips, truncations and insertions of one entry; zip / tar structure:
entries dropped, renamed, doubled, made links or encrypted; the whole container
truncated or flipped), packed into a file as a person would get it.

The worker: one long-lived process (spawned, not forked: nothing of pytest's state)
that imports case after case through ``archiver.sync.jobs.run_import`` into a fresh archive
each, under ``resource.setrlimit(RLIMIT_AS)``; the parent gives each case a time limit and
replaces a worker that dies or hangs. Neither limit ever binds pytest itself.
"""

from __future__ import annotations

import copy
import csv
import functools
import io
import json
import multiprocessing
import os
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

CASE_SECONDS = float(os.environ.get("ARCHIVER_FUZZ_CASE_SECONDS", "30"))   # a hang, not a slow case
MEMORY_HEADROOM = 768 * 2**20     # address space a case may add to the worker's idle size


# --------------------------------------------------------------------------- seeds


@dataclass
class Seed:
    """One valid export: its files, how they are packed, and where its items are."""

    name: str
    container: str                  # "zip", "tar.gz", "json" (one bare file) or "car"
    file_name: str                  # the export file's name on disk
    files: dict[str, bytes]         # entry name -> bytes (the JSON / CSV ones re-made from below)
    documents: dict[str, Any] = field(default_factory=dict)      # JSON entries, parsed
    ascii_json: set[str] = field(default_factory=set)             # written with \\u escapes (Meta does)
    item_lists: dict[str, list[tuple]] = field(default_factory=dict)  # entry -> paths of item lists
    tables: dict[str, list[list[str]]] = field(default_factory=dict)  # CSV entries, parsed rows
    item_tables: set[str] = field(default_factory=set)   # the CSV entries whose data rows are items
    records: dict[str, dict] | None = None   # Bluesky: the repository's records (JSON form)
    # X: a JSON document preceded by a JavaScript assignment ("window.YTD.tweets.part0 = "):
    # entry -> that prefix, written back before the (mutated) document.
    js_prefixes: dict[str, str] = field(default_factory=dict)
    # What the export holds that must never reach the archive or a message (X: the email of
    # account.js), whatever the mutation.
    private: list[str] = field(default_factory=list)


def _tiktok() -> Seed:
    from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig

    fake = FakeTikTok(FakeTikTokConfig(videos=3, followers=3, following=2, seed=3))
    document = fake.export_json("new")
    name = "user_data_tiktok.json"
    return Seed("tiktok", "zip", "TikTok_Data.zip", {name: b""}, {name: document}, item_lists={name: [
        ("Post", "Posts", "VideoList"), ("Your Activity", "Follower", "FansList"),
        ("Your Activity", "Following", "Following"), ("Comment", "Comments", "CommentsList"),
        ("Your Activity", "Like List", "ItemFavoriteList")]})


def _tiktok_old() -> Seed:
    from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig

    fake = FakeTikTok(FakeTikTokConfig(videos=3, followers=3, following=2, seed=3))
    name = "user_data.json"
    return Seed("tiktok-old", "json", name, {name: b""}, {name: fake.export_json("old")}, item_lists={name: [
        ("Video", "Videos", "VideoList"), ("Activity", "Follower List", "FansList"),
        ("Activity", "Following List", "Following"), ("Comment", "Comments", "CommentsList")]})


def _instagram(layout: str = "new") -> Seed:
    from archiver_connectors.instagram.sim.export import export_files, make_account

    files = export_files(make_account(posts=3, reels=1, stories=1, followers=3, following=2, comments=2, seed=5),
                         layout)
    documents = {name: json.loads(data) for name, data in files.items() if name.endswith(".json")}
    if layout == "new":
        content, connections = "your_instagram_activity/content", "connections/followers_and_following"
        lists = {f"{content}/posts_1.json": [()], f"{content}/reels.json": [("ig_reels_media",)],
                 f"{content}/stories.json": [("ig_stories",)], f"{connections}/followers_1.json": [()],
                 f"{connections}/following.json": [("relationships_following",)],
                 "your_instagram_activity/comments/post_comments_1.json": [()]}
        return Seed("instagram", "zip", "instagram-roofcam-2024-06-01.zip", files, documents,
                    ascii_json=set(documents), item_lists=lists)
    lists = {"content/posts_1.json": [()], "content/reels.json": [("ig_reels_media",)],
             "content/stories.json": [("ig_stories",)],
             "followers_and_following/followers_1.json": [("relationships_followers",)],
             "followers_and_following/following.json": [("relationships_following",)],
             "comments/post_comments.json": [("comments_media_comments",)]}
    return Seed("instagram-old", "zip", "instagram-roofcam-2022-01-01.zip", files, documents,
                ascii_json=set(documents), item_lists=lists)


def _facebook() -> Seed:
    from archiver_connectors.facebook.sim.export import export_files, sample_world

    files, _media = export_files(sample_world(posts=3, friends=2))
    documents = {name: json.loads(data) for name, data in files.items() if name.endswith(".json")}
    activity, connections = "your_facebook_activity", "connections"
    lists = {f"{activity}/posts/your_posts__check_ins__photos_and_videos_1.json": [()],
             f"{activity}/comments_and_reactions/comments.json": [("comments_v2",)],
             f"{activity}/groups/your_comments_in_groups.json": [("group_comments_v2",)],
             f"{activity}/comments_and_reactions/likes_and_reactions_1.json": [()],
             f"{connections}/friends/your_friends.json": [("friends_v2",)],
             f"{connections}/followers/people_who_followed_you.json": [("followers_v3",)],
             f"{connections}/followers/who_you've_followed.json": [("following_v3",)]}
    return Seed("facebook", "zip", "facebook-jane.example-2024-06-01-AbCd.zip", files, documents,
                ascii_json=set(documents), item_lists=lists)


def _threads_in_instagram() -> Seed:
    """An Instagram download carrying a threads/ folder: one import, both accounts."""
    from archiver_connectors.instagram.sim.export import export_files, make_account, mp4_bytes, png_bytes
    from archiver_connectors.threads.sim.export import (
        INSIDE_INSTAGRAM_DIR,
        ThreadsExportLike,
        ThreadsExportPerson,
        ThreadsExportPost,
        ThreadsExportWorld,
        threads_files,
    )

    world = ThreadsExportWorld(
        posts=[ThreadsExportPost(1_709_116_601, "café 🙏"), ThreadsExportPost(1_709_064_890, None, [png_bytes(1)]),
               ThreadsExportPost(1_708_714_341, "carousel ✨", [png_bytes(2), mp4_bytes(3)]),
               ThreadsExportPost(1_709_200_000, "a reply", is_reply=True)],
        followers=[ThreadsExportPerson("pine.marten", 1_730_000_000, "Pine Marten école"),
                   ThreadsExportPerson("old.style", 1_710_000_000, href="https://www.threads.net/@old.style/")],
        following=[ThreadsExportPerson("idol_two", 1_700_000_000)],
        likes=[ThreadsExportLike("idol_two", "DAbC", 1_760_912_834)])
    files = export_files(make_account(posts=1, reels=0, stories=0, followers=1, following=1, comments=0, seed=6))
    files.update(threads_files(world, folder=INSIDE_INSTAGRAM_DIR))
    documents = {name: json.loads(data) for name, data in files.items() if name.endswith(".json")}
    lists = {f"{INSIDE_INSTAGRAM_DIR}/threads_and_replies.json": [("text_post_app_text_posts",)],
             f"{INSIDE_INSTAGRAM_DIR}/followers_1.json": [("text_post_app_text_post_app_followers",)],
             f"{INSIDE_INSTAGRAM_DIR}/following.json": [("text_post_app_text_post_app_following",)],
             f"{INSIDE_INSTAGRAM_DIR}/liked_threads.json": [("text_post_app_media_likes",)]}
    return Seed("threads-in-instagram", "zip", "instagram-roofcam-2026-03-01.zip", files, documents,
                ascii_json=set(documents), item_lists=lists)


def _mastodon() -> Seed:
    from archiver_connectors.mastodon.sim.export import archive_files, archive_name, make_account

    files = archive_files(make_account(posts=3, replies=1, boosts=1, edited=1, media_per_post=1, likes=2,
                                       bookmarks=1, seed=7))
    documents = {name: json.loads(data) for name, data in files.items() if name.endswith(".json")}
    lists = {"outbox.json": [("orderedItems",)], "likes.json": [("orderedItems",)],
             "bookmarks.json": [("orderedItems",)]}
    return Seed("mastodon", "tar.gz", archive_name(), files, documents, item_lists=lists)


def _youtube(locale: str = "en") -> Seed:
    from archiver_connectors.youtube.sim.takeout import LOCALES, make_world, takeout_files

    data, videos = takeout_files(make_world(videos=2, comments=3, subscriptions=2, seed=9), locale=locale)
    tables = {name: list(csv.reader(io.StringIO(payload.decode("utf-8-sig"))))
              for name, payload in data.items() if name.endswith(".csv")}
    documents = {name: json.loads(payload) for name, payload in data.items() if name.endswith(".json")}
    channel = LOCALES[locale]["channel"]
    items = {name for name in tables if not name.endswith(channel)}   # its one row is the channel itself
    name = "youtube" if locale == "en" else f"youtube-{locale}"
    return Seed(name, "zip", "takeout-20240601T000000Z-001.zip", {**data, **videos}, documents, tables=tables,
                item_tables=items)


def _youtube_portability() -> Seed:
    """A part of a finished Data Portability job: a Takeout-shaped zip the connector
    downloads and imports itself (see run_case)."""
    takeout = _youtube()
    return Seed("youtube-portability", "zip", "youtube-portability-job1-001.zip", takeout.files, takeout.documents,
                tables=takeout.tables, item_tables=takeout.item_tables)


def _bluesky() -> Seed:
    from archiver_connectors.bluesky.sim.repo import blob_ref
    from archiver_connectors.bluesky.repo import make_tid

    friend = "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"
    image = b"\x89PNG\r\n\x1a\n" + b"seedlings" * 50

    def tid(n: int) -> str:
        return make_tid(1_700_000_000_000_000 + n * 1_000_000)

    def strong_ref(n: int) -> dict:
        return {"uri": f"at://{friend}/app.bsky.feed.post/{tid(n)}",
                "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}

    records: dict[str, dict] = {
        "app.bsky.actor.profile/self": {"$type": "app.bsky.actor.profile", "displayName": "Alice",
                                        "description": "Gardening", "avatar": blob_ref(image, "image/png")},
        f"app.bsky.feed.repost/{tid(90)}": {"$type": "app.bsky.feed.repost", "subject": strong_ref(1),
                                            "createdAt": "2024-03-01T00:00:00Z"},
        f"app.bsky.feed.like/{tid(91)}": {"$type": "app.bsky.feed.like", "subject": strong_ref(2),
                                          "createdAt": "2024-03-02T00:00:00Z"},
        f"app.bsky.graph.follow/{tid(92)}": {"$type": "app.bsky.graph.follow", "subject": friend,
                                             "createdAt": "2023-05-01T00:00:00Z"},
    }
    for n in range(3):
        post: dict = {"$type": "app.bsky.feed.post", "text": f"post {n}", "createdAt": f"2024-02-0{n + 1}T10:00:00Z"}
        if n == 0:
            post["embed"] = {"$type": "app.bsky.embed.images",
                             "images": [{"alt": "seedlings", "image": blob_ref(image, "image/png")}]}
        if n == 1:
            post["reply"] = {"root": strong_ref(1), "parent": strong_ref(1)}
            post["facets"] = [{"index": {"byteStart": 0, "byteEnd": 4},
                               "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/"}]}]
        records[f"app.bsky.feed.post/{tid(n)}"] = post
    return Seed("bluesky", "car", "repo-alice.car", {"repo-alice.car": b""}, records=records)


def _linkedin() -> Seed:
    """LinkedIn's "Get a copy of your data": CSV files. The plain ones (header first, one
    row per item) are mutated as tables; Connections.csv (a notes preamble before its
    header), Comments.csv (raw newlines) and Shares.csv (its multi-line quirk) as bytes,
    their quirks being what their readers are for."""
    from archiver_connectors.linkedin.sim.export import export_files, make_world

    files = export_files(make_world(posts=3, connections=3, comments=2, reactions=2, invitations=2, follows=2,
                                    seed=5))
    plain = ("Reactions.csv", "Invitations.csv", "Member_Follows.csv", "Company Follows.csv")
    tables = {name: list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
              for name, data in files.items() if name.endswith(plain)}
    return Seed("linkedin", "zip", "Complete_LinkedInDataExport_06-01-2024.zip", files, tables=tables,
                item_tables=set(tables))


def _pinterest() -> Seed:
    """Pinterest's "Request your data": one HTML document (in a zip), mutated as bytes."""
    from archiver_connectors.pinterest.sim.export import (HTML_NAME, boards_section, export_html, people_section,
                                                          sample_pins)

    pins = sample_pins(3)
    for pin in pins:        # no image to fetch: the import would ask pinimg (the internet) for it
        pin.image_signature = None
    document = export_html(pins, extra_sections=[boards_section(pins),
                                                 people_section("Followers", ["pine.marten", "fan_1"])])
    return Seed("pinterest", "zip", "pinterest-export.zip",
                {HTML_NAME: document.encode("utf-8") if isinstance(document, str) else document})


def _x() -> Seed:
    """X's "Download an archive of your data" (xgen's sample world, 2026): `.js` files that
    are a JSON array after `window.YTD.<name>.partN = `, mutated as JSON documents (the
    prefix kept), media files as bytes."""
    import tempfile

    from archiver_connectors.x.sim.export import sample_world, write_archive

    world = sample_world(seed=5)
    with tempfile.TemporaryDirectory() as folder:
        root = write_archive(Path(folder) / "x", world, zipped=False, viewer=False)
        files = {path.relative_to(root).as_posix(): path.read_bytes()
                 for path in sorted(root.rglob("*")) if path.is_file()}
    documents, prefixes = {}, {}
    read = ("tweets", "deleted-tweets", "note-tweet", "community-tweet", "like", "follower", "following", "account",
            "profile", "manifest")      # the files the importer reads are mutated as JSON; the rest as bytes
    for name, data in files.items():
        if name.endswith(".js") and name.removeprefix("data/").removesuffix(".js") in read:
            prefix, equals, document = data.decode("utf-8").partition("=")
            documents[name], prefixes[name] = json.loads(document), prefix + equals + " "
    lists = {name: [()] for name in documents if name != "data/manifest.js"}   # each file: an array of records
    return Seed("x", "zip", "twitter-2026-03-06-6e1d0c.zip", files, documents, item_lists=lists,
                js_prefixes=prefixes, private=[world.email])


BLUESKY_DID = "did:plc:abcdefghijklmnopqrstuvwx"
SEEDS = {"tiktok": _tiktok, "tiktok-old": _tiktok_old, "instagram": _instagram,
         "instagram-old": lambda: _instagram("old"),
         "threads-in-instagram": _threads_in_instagram, "youtube-fr": lambda: _youtube("fr"), "mastodon": _mastodon,
         "youtube": _youtube, "youtube-portability": _youtube_portability, "bluesky": _bluesky,
         "facebook": _facebook, "linkedin": _linkedin, "pinterest": _pinterest, "x": _x}


@functools.cache
def seed(name: str) -> Seed:
    return SEEDS[name]()


# --------------------------------------------------------------------------- hostile values

ODD_TEXTS = [
    "", " ", "N/A", "null", "None", "0", "-1", "1e999", "NaN", "9" * 400, "\x00", "a\x00b", "\ufeff", "\u202e",
    "\u2028\u2029\x85", "\ud800", "\udfff lone", "\U0001f600" * 3, "e\u0301" * 5, "\r\n\r\n", "\t",
    "../../../../etc/passwd", "/etc/passwd", "C:\\Windows\\win.ini", "file:///etc/passwd",
    "javascript:alert(1)", "http://127.0.0.1:1/x", "http://[::1]:1/x", "https://", "http://a b/",
    "data:text/html,<script>alert(1)</script>", "<script>alert(1)</script>", "=cmd|' /C calc'!A0",
    "2024-13-45T99:99:99Z", "0000-00-00", "-99999-01-01T00:00:00Z", "1700000000", "17000000000000000000",
    "Yes", "No", "Everyone", "at://", "at://did:plc:x/app.bsky.feed.post/", "did:plc:", "%00", "%s%s%n",
]
HUGE_REPEATS = [1_000, 100_000, 1_000_000]

odd_text = st.one_of(
    st.sampled_from(ODD_TEXTS),
    st.text(max_size=40),
    st.builds(lambda unit, times: unit * times, st.sampled_from(["a", "é", "\U0001f600", "\x00", " ", "<"]),
              st.sampled_from(HUGE_REPEATS)),
)
scalar = st.one_of(
    st.none(), st.booleans(), odd_text,
    st.integers(min_value=-2**31, max_value=2**31), st.sampled_from([2**63, -2**63 - 1, 2**80, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
)
json_value = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=6)
ODD_BYTES = [b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\"", b"{", b"]", b"\\", b"\n",
             b"\x1f\x8b", b"PK\x03\x04", b"[" * 100_000, b'{"a":' * 2_000]   # the last two: nesting past any limit
ODD_ENTRY_NAMES = ["../escaped.json", "/absolute.json", "C:/drive.json", "back\\slash.json", "", "folder/",
                   "./", "ü/ñ/日本.json", "x" * 300 + ".json", ".hidden/copy.json", "__MACOSX/._copy.json",
                   "Top Folder/", "a/../../b.json", "nul\x00.json"]


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One file to import, and what the property may demand of it."""

    seed: str
    file_name: str
    container: str                   # "zip", "tar.gz", "json", "car" or "folder"
    entries: list[tuple[str, bytes, dict]]   # name, bytes, zip / tar knobs (see _pack)
    container_bytes: list[tuple] = field(default_factory=list)  # byte mutations of the packed file
    items_changed: int = 0           # only these many items were changed: all others must import
    steps: list[str] = field(default_factory=list)   # what was done, for the failure message

    def describe(self) -> str:
        return f"{self.seed} as {self.container} {self.file_name!r}: " + ("; ".join(self.steps) or "unchanged")


def _paths(node: Any, here: tuple = ()) -> list[tuple]:
    """Every path to a value in a JSON document (the root included)."""
    found = [here]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, here + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, here + (index,))
    return found


def _get(node: Any, path: tuple) -> Any:
    for step in path:
        node = node[step]
    return node


def _in_one_item(seed_: Seed, entry: str, path: tuple) -> bool:
    """Whether ``path`` lies inside one item of one of the entry's item lists."""
    return any(len(path) > len(list_path) and path[:len(list_path)] == list_path
               and isinstance(path[len(list_path)], int) for list_path in seed_.item_lists.get(entry, []))


def _dump_json(document: Any, ascii_only: bool) -> bytes:
    if not ascii_only:
        try:
            return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
        except UnicodeEncodeError:   # a lone surrogate: written as an escape, like any JSON writer would
            pass
    return json.dumps(document, ensure_ascii=True, indent=1).encode("ascii")



def _standard_json(document: Any) -> bool:
    """False when writing it takes NaN or Infinity: not JSON, so the file is bad, not one item."""
    try:
        json.dumps(document, allow_nan=False)
    except ValueError:
        return False
    return True


@st.composite
def json_mutation(draw, seed_: Seed, documents: dict[str, Any], steps: list[str]) -> bool:
    """Change one value of one JSON document in place; True when it lies inside one item."""
    entry = draw(st.sampled_from(sorted(documents)))
    document = documents[entry]
    path = draw(st.sampled_from(_paths(document)))
    action = draw(st.sampled_from(["replace", "delete", "add key", "nest", "duplicate", "empty"]))
    if not path and action in ("replace", "delete", "nest"):
        documents[entry] = value = draw(json_value) if action != "nest" else [document]
        steps.append(f"{entry}: the whole document {action}d -> {_short(value)}")
        return False
    parent = _get(document, path[:-1]) if path else None
    target = _get(document, path)
    if action == "replace":
        value = draw(json_value)
        parent[path[-1]] = value
    elif action == "delete":
        del parent[path[-1]]
        value = "(deleted)"
    elif action == "add key":
        if not isinstance(target, dict):
            return False
        value = draw(json_value)
        target[draw(st.sampled_from(["", "extra", "id", "Link", "__proto__", "\x00"]))] = value
    elif action == "nest":
        depth = draw(st.integers(min_value=1, max_value=40))
        value = target
        for _ in range(depth):
            value = [value] if draw(st.booleans()) else {"x": value}
        parent[path[-1]] = value
        value = f"nested {depth} deep"
    elif action == "duplicate":
        if not isinstance(target, list) or not target:
            return False
        target.append(copy.deepcopy(target[draw(st.integers(min_value=0, max_value=len(target) - 1))]))
        value = "an item doubled"
    else:   # empty
        if not isinstance(target, (list, dict)):
            return False
        target.clear()
        value = "emptied"
    steps.append(f"{entry} at {list(path)}: {action} -> {_short(value)}")
    return _in_one_item(seed_, entry, path)


@st.composite
def csv_mutation(draw, seed_: Seed, tables: dict[str, list[list[str]]], steps: list[str]) -> bool:
    """Change one CSV file: a cell, a row's width, the header. True when one data row only."""
    entry = draw(st.sampled_from(sorted(tables)))
    rows = tables[entry]
    if not rows:   # an earlier mutation dropped every row
        return False
    row = draw(st.integers(min_value=0, max_value=len(rows) - 1))
    action = draw(st.sampled_from(["cell", "cell", "cut row", "widen row", "drop row"]))
    if action == "cell" and rows[row]:
        column = draw(st.integers(min_value=0, max_value=len(rows[row]) - 1))
        rows[row][column] = draw(odd_text)
    elif action == "cut row":
        rows[row] = rows[row][:draw(st.integers(min_value=0, max_value=max(len(rows[row]) - 1, 0)))]
    elif action == "widen row":
        rows[row] = rows[row] + [draw(odd_text)]
    else:
        del rows[row]
    steps.append(f"{entry} row {row}: {action}")
    return row > 0 and entry in seed_.item_tables   # a data row that is an item, not the header


@st.composite
def record_mutation(draw, records: dict[str, dict], steps: list[str]) -> bool:
    """Change one record of the repository (its key or one value). Always one item."""
    key = draw(st.sampled_from(sorted(records)))
    record = records[key]
    path = draw(st.sampled_from(_paths(record)))
    action = draw(st.sampled_from(["replace", "delete", "rekey"]))
    if action == "rekey":
        new_key = draw(st.sampled_from([key.replace("/", "/x", 1), "app.bsky.feed.post/" + "9" * 200,
                                        "app.bsky.feed.post/..", "unknown.collection/1", key.split("/")[0] + "/ü"]))
        records[new_key] = records.pop(key)
        steps.append(f"record {key!r} renamed {new_key!r}")
        return True
    if not path:
        value = draw(json_value)
        records[key] = value if isinstance(value, dict) else {"$type": value}
    elif action == "delete":
        del _get(record, path[:-1])[path[-1]]
        value = "(deleted)"
    else:
        value = draw(json_value)
        _get(record, path[:-1])[path[-1]] = value
    steps.append(f"record {key!r} at {list(path)}: {action} -> {_short(value)}")
    return True


@st.composite
def byte_mutation(draw, size: int) -> tuple:
    position = draw(st.integers(min_value=0, max_value=max(size - 1, 0)))
    action = draw(st.sampled_from(["flip", "truncate", "insert", "cut"]))
    if action == "flip":
        return ("flip", position, draw(st.integers(min_value=1, max_value=255)))
    if action == "insert":
        return ("insert", position, draw(st.sampled_from(ODD_BYTES)))
    if action == "cut":
        return ("cut", position, draw(st.integers(min_value=1, max_value=64)))
    return ("truncate", position, 0)


def apply_bytes(data: bytes, mutation: tuple) -> bytes:
    action, position, argument = mutation
    if action == "flip" and data:
        return data[:position] + bytes([data[position] ^ argument]) + data[position + 1:]
    if action == "insert":
        return data[:position] + argument + data[position:]
    if action == "cut":
        return data[:position] + data[position + argument:]
    return data[:position]


@st.composite
def cases(draw, seed_name: str) -> Case:
    """A mutated export of ``seed_name``: a few mutations of the kinds its shape allows."""
    seed_ = seed(seed_name)
    documents = copy.deepcopy(seed_.documents)
    tables = copy.deepcopy(seed_.tables)
    records = copy.deepcopy(seed_.records)
    steps: list[str] = []
    kinds = [k for k, present in (("json", documents), ("csv", tables), ("record", records)) if present]
    # (an export of one HTML document, Pinterest's, has none: its bytes are mutated below)
    structural = draw(st.lists(st.sampled_from(kinds), max_size=3)) if kinds else []
    one_item_flags = []
    for kind in structural:
        if kind == "json":
            one_item_flags.append(draw(json_mutation(seed_, documents, steps)))
        elif kind == "csv":
            one_item_flags.append(draw(csv_mutation(seed_, tables, steps)))
        else:
            one_item_flags.append(draw(record_mutation(records, steps)))

    structure_changed = not all(_standard_json(document) for document in documents.values())
    if records is not None and _car(records) is None:   # a value DAG-CBOR cannot hold
        steps.append("(record not encodable; repository unchanged)")
        records, one_item_flags = copy.deepcopy(seed_.records), [False]
    files = unchanged_files(seed_, documents, tables, records)

    container = seed_.container
    if container in ("zip", "tar.gz") and draw(st.integers(min_value=0, max_value=5)) == 0:
        container = draw(st.sampled_from(["zip", "tar.gz", "folder"]))
        steps.append(f"packed as {container}")
    entries = [(name, data, {}) for name, data in files.items()]
    if container in ("zip", "tar.gz", "folder") and draw(st.booleans()):
        for _ in range(draw(st.integers(min_value=1, max_value=2))):
            structure_changed |= _entry_mutation(draw, entries, container, steps)
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        index = draw(st.integers(min_value=0, max_value=len(entries) - 1)) if entries else None
        if index is None:
            break
        name, data, knobs = entries[index]
        mutation = draw(byte_mutation(len(data)))
        entries[index] = (name, apply_bytes(data, mutation), knobs)
        steps.append(f"{name!r} bytes: {mutation}")
        structure_changed = True
    container_bytes = []
    if container != "folder" and draw(st.integers(min_value=0, max_value=5)) == 0:
        container_bytes.append(draw(byte_mutation(2000)))
        steps.append(f"the packed file's bytes: {container_bytes[-1]}")
        structure_changed = True
    items_changed = len(one_item_flags) if one_item_flags and all(one_item_flags) and not structure_changed else 0
    return Case(seed_name, seed_.file_name if container == seed_.container else _renamed(seed_.file_name, container),
                container, entries, container_bytes, items_changed, steps)


def _entry_mutation(draw, entries: list, container: str, steps: list[str]) -> bool:
    if not entries:
        return False
    index = draw(st.integers(min_value=0, max_value=len(entries) - 1))
    name, data, knobs = entries[index]
    choices = ["drop", "rename", "double", "move under a folder"]
    if container != "folder":
        choices += ["symlink", "hardlink"] if container == "tar.gz" else ["symlink", "encrypted flag", "stored",
                                                                            "lying size"]
    action = draw(st.sampled_from(choices))
    if action == "drop":
        del entries[index]
    elif action == "rename":
        new = draw(st.sampled_from(ODD_ENTRY_NAMES))
        if container == "folder" and (not new or "\x00" in new or new.startswith("/") or ".." in new):
            return False
        entries[index] = (new, data, knobs)
    elif action == "double":
        entries.append((name, data[: len(data) // 2], knobs))
    elif action == "move under a folder":
        entries[index] = ("Takeout 2/" + name, data, knobs)
    else:
        entries[index] = (name, data, {**knobs, action: True})
    steps.append(f"entry {name!r}: {action}")
    return True


def _renamed(file_name: str, container: str) -> str:
    stem = file_name.split(".")[0]
    return {"zip": f"{stem}.zip", "tar.gz": f"{stem}.tar.gz", "folder": stem}[container]


def _car(records: dict) -> bytes | None:
    from archiver_connectors.bluesky.sim.repo import build_repo_car
    from archiver_connectors.bluesky.repo import make_tid

    try:
        return build_repo_car(BLUESKY_DID, records, rev=make_tid(1_717_200_000_000_000))
    except (ValueError, TypeError, OverflowError, KeyError, AttributeError):
        return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else f"{text[:60]}… ({len(text)} chars)"


def pack(case: Case, folder: Path) -> Path:
    """Write the case's export into ``folder``; returns its path."""
    path = folder / case.file_name
    if case.container in ("json", "car"):
        path.write_bytes(case.entries[0][1] if case.entries else b"")
    elif case.container == "folder":
        path.mkdir()
        for name, data, _ in case.entries:
            target = path / name
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.is_dir():
                    target.write_bytes(data)
            except OSError:
                pass   # a name this file system refuses ("./", a file where a folder is): not there
    elif case.container == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data, knobs in case.entries:
                info = zipfile.ZipInfo(name, date_time=(2024, 6, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED if knobs.get("stored") else zipfile.ZIP_DEFLATED
                info.external_attr = (0o120777 if knobs.get("symlink") else 0o100644) << 16
                if knobs.get("encrypted flag"):
                    info.flag_bits |= 0x1
                archive.writestr(info, data)
                if knobs.get("lying size"):   # the directory says 1 byte, the data holds more
                    info.file_size = 1
    else:
        with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
            for name, data, knobs in case.entries:
                info = tarfile.TarInfo(name)
                if knobs.get("symlink") or knobs.get("hardlink"):
                    info.type = tarfile.SYMTYPE if knobs.get("symlink") else tarfile.LNKTYPE
                    info.linkname = "../../outside.txt"
                    tar.addfile(info)
                else:
                    info.size, info.mtime, info.mode = len(data), 1_717_200_000, 0o644
                    tar.addfile(info, io.BytesIO(data))
    if case.container_bytes and path.is_file():
        data = path.read_bytes()
        for mutation in case.container_bytes:
            action, position, argument = mutation
            data = apply_bytes(data, (action, position % max(len(data), 1), argument))
        path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- the worker


def _refuse_every_request(request):
    import httpx

    return httpx.Response(404, text="the fuzz worker has no network")


def run_case(case: Case, root: Path) -> dict:
    """Import one case into a fresh archive under ``root``; what happened, as plain data."""
    import logging
    import shutil
    import traceback

    import httpx

    from archiver.archive import Archive
    from archiver.config import Config
    from archiver.sync.imports import ExportFileError
    from archiver.sync.jobs import Workspace, run_import
    from archiver.secrets import open_secret_store

    if case.seed == "canary-memory":   # proves the limit binds: far more than the headroom
        return {"status": "ok", "allocated": len(bytearray(4 * MEMORY_HEADROOM))}
    if case.seed == "canary-hang":     # proves the time limit binds
        import time

        time.sleep(3600)
    here = root / "case"
    shutil.rmtree(here, ignore_errors=True)
    (here / "input").mkdir(parents=True)
    path = pack(case, here / "input")
    before = _listing(here / "input")
    logged: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if record.levelno >= logging.ERROR and ("Traceback" in text or record.exc_info):
                logged.append(text)

    handler = Catch()
    logging.getLogger().addHandler(handler)
    result: dict[str, Any] = {"description": case.describe()}
    ws = Workspace(Archive(here / "archive"), Config(path=None), open_secret_store("memory"))
    transport = httpx.MockTransport(_refuse_every_request)
    try:
        if case.seed == "youtube-portability":
            answer = _import_portability_part(ws, path, transport)
        else:
            answer = run_import(ws, path, transport=transport)
        result.update(status=answer["status"], message=answer.get("message"), errors=answer.get("errors", []))
    except ExportFileError as error:
        result.update(status="refused", message=str(error))
    except Exception as error:   # noqa: BLE001 - exactly what the property forbids
        result.update(status="unhandled", message=f"{type(error).__name__}: {error}",
                      traceback="".join(traceback.format_exception(error)))
    finally:
        logging.getLogger().removeHandler(handler)
    try:
        result["rows"] = {table: ws.archive.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                          for table in ("posts", "people", "post_media", "media")}
    except Exception:   # noqa: BLE001 - an archive that cannot even be counted is reported as such
        result["rows"] = {}
    ws.archive.close()
    if case.seed in SEEDS and seed(case.seed).private:
        result["private_found"] = _private_found(seed(case.seed).private, here / "archive", result)
    result["logged_tracebacks"] = logged
    result["outside"] = _outside_writes(here, before)
    shutil.rmtree(here, ignore_errors=True)
    return result


def _private_found(private: list[str], archive: Path, result: dict) -> list[str]:
    """Where any of ``private`` turned up: a file of the archive folder, or what the run said."""
    said = json.dumps({key: result.get(key) for key in ("message", "errors")}, ensure_ascii=False)
    found = [f"the run's message or errors: {text!r}" for text in private if text in said]
    for path in archive.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {text!r}" for text in private if text.encode() in data]
    return found


def _import_portability_part(ws, path: Path, transport) -> dict:
    """A YouTube export run at the moment its Data Portability job has finished and its
    one part lies downloaded: the connector's own import of the parts."""
    from archiver.config import AccountConfig
    from archiver.sync.runner import Runner
    from archiver_connectors.youtube import YouTubeConnector

    connector = YouTubeConnector(AccountConfig(name="main", platform="youtube"), ws.secrets, transport=transport)
    state = {"grant": "fuzz", "pending": ["youtube.public_videos"], "done": [],
             "jobs": {"youtube.public_videos": {"id": "job1", "initiated_at": "2024-06-01T00:00:00Z",
                                                "parts_done": []}}}
    try:
        return Runner(ws.archive, connector).run(
            lambda ctx: connector._import_parts(ctx, state, "youtube.public_videos", {"part-1": path}),
            kind="export", mode="portability")
    finally:
        connector.close()


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): (p.lstat().st_size if not p.is_dir() else -1) for p in folder.rglob("*")}


def _outside_writes(here: Path, input_before: dict[str, int]) -> list[str]:
    """Anything the import created or changed beside the archive folder."""
    changed = [f"input/{name}" for name, size in _listing(here / "input").items() if input_before.get(name) != size]
    stray = [p.name for p in here.iterdir() if p.name not in ("input", "archive")]
    elsewhere = [f"{folder.name}/{p.name}" for folder in (here.parent / "tmp", here.parent / "cwd")
                 for p in folder.iterdir()]
    return changed + stray + elsewhere


def _worker(connection, root: str) -> None:
    """The worker's loop: a case in, a result out, until None comes."""
    import faulthandler
    import resource
    import sys
    import tempfile

    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    base = Path(root)
    (base / "tmp").mkdir(parents=True, exist_ok=True)
    (base / "cwd").mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(base / "tmp")   # anything written "to /tmp" shows up as an outside write
    os.chdir(base / "cwd")
    # Everything a case needs, imported before the limit is taken, so it measures the case.
    import archiver.sync.jobs  # noqa: F401
    from archiver.connector import installed_connectors

    for cls in installed_connectors().values():
        cls.detect_export  # noqa: B018 - loads each connector's module
    seed("bluesky")   # the CAR builder and libipld
    idle = _address_space()
    resource.setrlimit(resource.RLIMIT_AS, (idle + MEMORY_HEADROOM, idle + MEMORY_HEADROOM))
    connection.send({"ready": True, "limit_bytes": idle + MEMORY_HEADROOM})
    while True:
        case = connection.recv()
        if case is None:
            break
        faulthandler.dump_traceback_later(CASE_SECONDS - 1, exit=False, file=sys.stderr)
        try:
            result = run_case(case, base)
        except MemoryError:
            result = {"status": "memory", "message": f"over the memory limit of {idle + MEMORY_HEADROOM} bytes"}
        except Exception:   # noqa: BLE001 - the harness's own failure, said as such
            import traceback

            result = {"status": "harness", "message": traceback.format_exc()}
        finally:
            faulthandler.cancel_dump_traceback_later()
        result["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        connection.send(result)


def _address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


class Worker:
    """The parent's side: one spawned worker process, replaced when it dies or hangs."""

    def __init__(self, root: Path, case_seconds: float = CASE_SECONDS):
        self.root = root
        self.case_seconds = case_seconds
        self.process = None
        self.connection = None
        self.limit_bytes = 0

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, str(self.root)), daemon=True)
        self.process.start()
        child.close()
        if not self.connection.poll(120):
            raise RuntimeError("the fuzz worker did not start within 120 s")
        self.limit_bytes = self.connection.recv()["limit_bytes"]

    def run(self, case: Case) -> dict:
        if self.process is None or not self.process.is_alive():
            self._start()
        self.connection.send(case)
        try:
            if self.connection.poll(self.case_seconds):
                return self.connection.recv()
            outcome = {"status": "hang", "message": f"no answer within {self.case_seconds:g} s"}
        except EOFError:
            outcome = {"status": "died", "message": f"the worker died (exit code {self.process.exitcode})"}
        self.stop(kill=True)
        outcome["description"] = case.describe()
        return outcome

    def stop(self, kill: bool = False) -> None:
        if self.process is not None:
            if self.process.is_alive() and not kill:
                try:
                    self.connection.send(None)
                    self.process.join(5)
                except (BrokenPipeError, OSError):
                    pass
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        self.process = None


def one_value_case(seed_name: str, entry: str, path: tuple, value: Any) -> Case:
    """The seed with one value changed (``value`` "(deleted)" removes it): a regression case.
    ``entry`` is a JSON or CSV entry (a CSV path is (row, column)), or a Bluesky record key."""
    original = seed(seed_name)
    documents, tables = copy.deepcopy(original.documents), copy.deepcopy(original.tables)
    records = copy.deepcopy(original.records)
    holder = documents if entry in documents else tables if entry in tables else records
    parent = _get(holder[entry], path[:-1])
    if value == "(deleted)":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    files = unchanged_files(original, documents, tables, records)
    step = f"{entry} at {list(path)} = {_short(value)}"
    return Case(seed_name, original.file_name, original.container, [(n, d, {}) for n, d in files.items()],
                items_changed=1 if (entry in original.item_tables or records is not None
                                    or _in_one_item(original, entry, path))
                else 0, steps=[step])


def unchanged_case(seed_name: str) -> Case:
    original = seed(seed_name)
    files = unchanged_files(original, original.documents, original.tables, original.records)
    return Case(seed_name, original.file_name, original.container, [(n, d, {}) for n, d in files.items()])


def unchanged_files(original: Seed, documents: dict, tables: dict, records: dict | None) -> dict[str, bytes]:
    """The seed's files, with its JSON, CSV and records written from the given values."""
    files = dict(original.files)
    for name, document in documents.items():
        files[name] = original.js_prefixes.get(name, "").encode() + _dump_json(document, name in original.ascii_json)
    for name, rows in tables.items():
        files[name] = _csv(rows)
    if records is not None:
        files[original.file_name] = _car(records)
    return files


def _csv(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue().encode("utf-8", "surrogatepass")
