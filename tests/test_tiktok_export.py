"""TikTok's "Download your data" export, imported end to end into a real archive.

The exports come from the fake TikTok (connectors/archiver_connectors/tiktok/sim/fake.py), which writes both key
layouts of shared/platforms/tiktok.md §5. Newer exports link to the media files with
signed, expiring links on the fake's /cdn/, so the fake is served over loopback HTTP and
the importer really downloads them. In-process imports go through ``run_import`` with a
transport that only lets 127.0.0.1 through (an old export's avatar link points at
www.tiktok.com: it must be refused, not fetched). Some cases run the real ``archiver``
command as a subprocess.

Every expectation is derived from the export JSON the fake wrote (or from the fake's
world), never hard-coded, and checked against the SQLite file.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import httpx
import pytest

from archive_rows import one, rows
from archiver.connector import connector_names

from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.sync.jobs import Workspace, run_export, run_import
from archiver.records import iso_utc
from archiver.secrets import open_secret_store
from archiver_connectors.tiktok.api import TikTokTokens
from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig, serve

ACCOUNT = "tiktok:main"


# --------------------------------------------------------------------------- fixtures


def served(config: FakeTikTokConfig):
    """A fake TikTok served on 127.0.0.1 for one test."""
    world = FakeTikTok(config)
    server, _thread = serve(world)
    yield world

    def stop() -> None:
        server.shutdown()  # waits for the serve loop's next poll (up to 0.5 s)
        server.server_close()

    # Stopped in the background: the test does not need to wait for the poll.
    threading.Thread(target=stop, daemon=True).start()


@pytest.fixture
def fake():
    """Seed 3 with 8 videos has a photo post (a test asserts it, so a change shows)."""
    yield from served(FakeTikTokConfig(videos=8, followers=6, following=3, seed=3))




def make_workspace(folder: Path, fake: FakeTikTok) -> Workspace:
    """An archive with one configured TikTok account pointing at the fake, and tokens for
    it minted by the fake (as `archiver auth` would have stored them)."""
    account = AccountConfig(name="main", platform="tiktok", base_url=fake.base_url)
    secrets = open_secret_store("memory")
    secrets.set("tiktok", "main", "client_key", fake.config.client_key)
    secrets.set("tiktok", "main", "client_secret", fake.config.client_secret)
    token_client = httpx.Client(transport=httpx.MockTransport(fake.handle))
    TikTokTokens(secrets, "main", f"{fake.base_url}/v2/oauth/token/", token_client).store(fake.issue_tokens())
    return Workspace(Archive(folder), Config(path=None, accounts=[account]), secrets)


@pytest.fixture
def ws(tmp_path, fake):
    workspace = make_workspace(tmp_path / "archive", fake)
    yield workspace
    workspace.archive.close()


# --------------------------------------------------------------------------- helpers


def sections(data: dict) -> dict:
    """The lists the archiver imports, found by the spelling this export uses."""
    if "Post" in data:  # newer layout
        activity = data["Your Activity"]
        return {
            "posts": data["Post"]["Posts"]["VideoList"],
            "followers": activity["Follower"]["FansList"],
            "following": activity["Following"]["Following"],
            "comments": data["Comment"]["Comments"]["CommentsList"],
            "profile": data["Profile"]["Profile Info"]["ProfileMap"],
        }
    activity = data["Activity"]
    return {
        "posts": data["Video"]["Videos"]["VideoList"],
        "followers": activity["Follower List"]["FansList"],
        "following": activity["Following List"]["Following"],
        "comments": data["Comment"]["Comments"]["CommentsList"],
        "profile": data["Profile"]["Profile Information"]["ProfileMap"],
    }


def write_export(path: Path, data, entry: str | None = None) -> Path:
    """A bare JSON file (``entry`` None) or a zip holding the JSON as ``entry``."""
    text = data if isinstance(data, (str, bytes)) else json.dumps(data, ensure_ascii=False, indent=1)
    payload = text.encode() if isinstance(text, str) else text
    if entry is None:
        path.write_bytes(payload)
    else:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(entry, payload)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dump(db) -> dict[str, list]:
    """Every row of every table (FTS shadow tables included), order-independent."""
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    return {t: sorted(repr(tuple(r)) for r in db.execute(f"SELECT * FROM [{t}]").fetchall()) for t in tables}


def export_links(item: dict) -> list[str]:
    return [line.strip() for line in item["Link"].splitlines() if line.strip()]


def last_run(db) -> dict:
    row = db.execute("SELECT status, counts, errors, message FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    return {"status": row[0], "counts": json.loads(row[1]), "errors": json.loads(row[2]), "message": row[3]}


def assert_media_files_intact(archive: Archive, shas) -> None:
    """Each sha256 has a media row whose file exists and hashes to that sha256."""
    for sha in shas:
        path = one(archive.db, "SELECT path FROM media WHERE sha256=?", sha)
        data = (archive.media_root / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha


# --------------------------------------------------------------------------- every layout

LAYOUTS = [
    # (key layout, entry name inside a zip or None for a bare JSON file, file name on disk)
    ("old", None, "user_data.json"),
    ("old", "user_data.json", "TikTok_Data.zip"),
    ("old", "TikTok_Data_1700000000/user_data.json", "TikTok_Data.zip"),
    ("new", None, "user_data_tiktok.json"),
    ("new", "user_data_tiktok.json", "TikTok_Data.zip"),
    ("new", "TikTok_Data_1700000000/user_data_tiktok.json", "TikTok_Data.zip"),
    ("new", None, "my tiktok export.json"),  # a renamed bare file: recognized by its keys
]


@pytest.mark.parametrize("layout,entry,file_name", LAYOUTS)
def test_every_layout_imports_profile_posts_media_audience_and_comments(
        tmp_path, fake, ws, loopback, layout, entry, file_name):
    data = fake.export_json(layout)
    expected = sections(data)
    path = write_export(tmp_path / file_name, data, entry)

    result = run_import(ws, path, transport=loopback)

    assert result["status"] == "ok", result
    assert (result["platform"], result["account"]) == ("tiktok", ACCOUNT)
    db = ws.archive.db
    source = f"export:{sha256_of(path)}"

    # Profile: the user name, bio and likes (a number sent as a string).
    profile = expected["profile"]
    assert rows(db, "SELECT username, bio, likes, sources FROM accounts") == [
        (profile["userName"], profile["bioDescription"], int(profile["likesReceived"]), json.dumps([source]))]

    # Posts: one row per export item, dated, with the like count parsed from a string.
    items = expected["posts"]
    stored = {r[0]: r for r in rows(db, "SELECT created_at, post_id, kind, title, like_count FROM posts")}
    assert set(stored) == {iso_utc(item["Date"]) for item in items}
    for item in items:
        created_at, post_id, kind, title, like_count = stored[iso_utc(item["Date"])]
        assert like_count == int(item["Likes"])
        if layout == "old":
            # Share links name the video: the id is the post's key.
            assert post_id == item["Link"].rstrip("/").rsplit("/", 1)[1]
            assert kind == "video"
        else:
            # Signed file links carry no id: provisional until the API names the post.
            assert post_id == f"provisional:{created_at}"
            assert title == (None if item["Title"] == "N/A" else item["Title"])
            links = export_links(item)
            assert kind == ("photo" if len(links) > 1 else "video")
            media = rows(db, "SELECT role, position, status, source_url, sha256 FROM post_media "
                             "WHERE post_id=? ORDER BY role, position", post_id)
            wanted = ([("image", i) for i in range(len(links))] if len(links) > 1 else [("video", 0)])
            assert sorted((r[0], r[1]) for r in media) == sorted(wanted + [("cover", 0)])
            assert {r[2] for r in media} == {"ok"}
            # Stored without the signature; the file itself is there, named by its hash.
            assert all("?" not in r[3] and r[3].startswith(fake.base_url + "/cdn/") for r in media)
            assert_media_files_intact(ws.archive, [r[4] for r in media])
    if layout == "new":
        assert any(len(export_links(item)) > 1 for item in items), "the fixture must hold a photo post"
        assert one(db, "SELECT count(*) FROM posts WHERE kind='photo'") >= 1
    else:
        assert one(db, "SELECT count(*) FROM post_media") == 0

    # Followers and following: a dated snapshot, one open interval per person.
    for kind in ("followers", "following"):
        members = expected[kind]
        assert rows(db, "SELECT member_count, complete, source FROM snapshots WHERE kind=?", kind) == [
            (len(members), 1, source)]
        follows = rows(db, "SELECT person_id, started_at, ended_at FROM follows WHERE account_id=? AND kind=?",
                       ACCOUNT, kind)
        assert sorted(follows) == sorted((m["UserName"], iso_utc(m["Date"]), None) for m in members)
        # The platform dated every follow, so even the first snapshot says when each began.
        events = rows(db, "SELECT person_id, event, at FROM audience_events WHERE kind=?", kind)
        assert sorted(events) == sorted((m["UserName"], "new", iso_utc(m["Date"])) for m in members)
    people = {r[0] for r in rows(db, "SELECT handle FROM people")}
    assert people == {m["UserName"] for m in expected["followers"] + expected["following"]}

    # Comments the user wrote: capitalized keys in old exports, lowercase in new ones.
    text_key, date_key = ("Comment", "Date") if layout == "old" else ("comment", "date")
    assert sorted(rows(db, "SELECT text, created_at, by_owner FROM comments")) == sorted(
        (c[text_key], iso_utc(c[date_key]), 1) for c in expected["comments"])

    # Signed links never reach the archive: not in raw payloads, not in media rows.
    assert "x-signature" not in json.dumps(dump(db))
    # The run explains itself; the only thing that may fail is an old export's avatar,
    # which lives on www.tiktok.com (refused here: tests never leave 127.0.0.1).
    run = last_run(db)
    assert run["status"] == "ok"
    if layout == "old":
        assert loopback.refused == [profile["profilePhoto"]]
        assert [e["item"] for e in run["errors"]] == [f"avatar of profile ({profile['profilePhoto']})"]
    else:
        assert loopback.refused == [] and run["errors"] == []
        assert one(db, "SELECT avatar_sha256 IS NOT NULL FROM accounts") == 1


def test_null_sections_are_tolerated(tmp_path, fake, ws, loopback):
    """Newer exports write ``null`` for empty sections. A null *list* inside a present
    section means "nobody" (a complete, empty snapshot); a null section says nothing."""
    data = fake.export_json("new")
    data["Post"]["Posts"]["VideoList"] = None
    data["Comment"] = None
    data["Your Activity"]["Follower"] = None
    data["Your Activity"]["Following"]["Following"] = None
    path = write_export(tmp_path / "TikTok_Data.zip", data, "user_data_tiktok.json")

    result = run_import(ws, path, transport=loopback)

    assert result["status"] == "ok" and result["errors"] == []
    db = ws.archive.db
    assert one(db, "SELECT username FROM accounts") == data["Profile"]["Profile Info"]["ProfileMap"]["userName"]
    assert one(db, "SELECT count(*) FROM posts") == 0
    assert one(db, "SELECT count(*) FROM comments") == 0
    assert rows(db, "SELECT kind, member_count, complete FROM snapshots") == [("following", 0, 1)]


def test_very_old_comment_spelling_and_a_byte_order_mark(tmp_path, fake, ws, loopback):
    """The oldest exports put comments at ``Comment.CommentsList``; a file saved by a
    Windows editor starts with a UTF-8 byte-order mark. Both still import."""
    data = fake.export_json("old")
    comments = data["Comment"]["Comments"]["CommentsList"]
    data["Comment"] = {"CommentsList": comments}
    data["Profile"]["Profile Information"]["ProfileMap"]["profilePhoto"] = ""  # no avatar to fetch
    path = write_export(tmp_path / "user_data.json", b"\xef\xbb\xbf" + json.dumps(data).encode())

    result = run_import(ws, path, transport=loopback)

    assert result["status"] == "ok" and result["errors"] == [], result
    db = ws.archive.db
    assert sorted(rows(db, "SELECT text, created_at FROM comments WHERE by_owner=1")) == sorted(
        (c["Comment"], iso_utc(c["Date"])) for c in comments)
    assert one(db, "SELECT count(*) FROM posts") == len(sections(fake.export_json("old"))["posts"])


# --------------------------------------------------------------------------- API + export: one row


@pytest.mark.parametrize("layout,order", [
    ("old", "api-then-export"),   # matched by id (old share links name the video)
    ("new", "api-then-export"),   # matched by creation time (no id in newer exports)
    ("new", "export-then-api"),   # provisional rows re-keyed when the API names them
])
def test_same_video_from_api_and_export_is_one_row(tmp_path, fake, ws, loopback, layout, order):
    data = fake.export_json(layout)
    entry = "user_data.json" if layout == "old" else "user_data_tiktok.json"
    path = write_export(tmp_path / "TikTok_Data.zip", data, entry)
    # The caption changes after the export was made: the API knows the newer one.
    edited = fake.videos[0]
    old_title = edited["title"] or None
    fake.edit_caption(edited["id"], "Caption edited after the export")
    account = ws.config.accounts[0]
    api_transport = httpx.MockTransport(fake.handle)

    if order == "api-then-export":
        assert run_export(ws, account, full=True, transport=api_transport)["status"] == "ok"
        result = run_import(ws, path, transport=loopback)
    else:
        result = run_import(ws, path, transport=loopback)
        assert run_export(ws, account, full=True, transport=api_transport)["status"] == "ok"
    assert result["status"] == "ok", result

    db = ws.archive.db
    ids = {v["id"] for v in fake.videos}
    source = f"export:{sha256_of(path)}"
    stored = rows(db, "SELECT post_id, sources, raw, title FROM posts")
    assert {r[0] for r in stored} == ids  # one row per video, all keyed by the API's id
    for post_id, sources, raw, _title in stored:
        assert sorted(json.loads(sources)) == sorted(["api", source])
        assert set(json.loads(raw)) == {"api", source}
    # Nothing is left under a provisional id, in any table that names a post.
    for table in ("posts", "post_media", "post_metrics", "post_versions"):
        assert one(db, f"SELECT count(*) FROM {table} WHERE post_id LIKE 'provisional:%'") == 0
    # The API's caption stands; an older export never turns it back.
    assert one(db, "SELECT title FROM posts WHERE post_id=?", edited["id"]) == "Caption edited after the export"
    versions = rows(db, "SELECT post_id, title FROM post_versions")
    if order == "export-then-api" and old_title is not None:
        assert versions == [(edited["id"], old_title)]  # the API saw a real edit
    else:
        assert versions == []
    # Counts are the API's, one sample per video (the export's likes are not a sample).
    assert one(db, "SELECT count(*) FROM post_metrics") == len(ids)
    for video in fake.videos:
        assert one(db, "SELECT like_count FROM posts WHERE post_id=?", video["id"]) == video["like_count"]
    if layout == "new":
        # The export's files hang on the API's row: covers from both (same bytes, one
        # file) and the video files or images only the export has.
        for item in sections(data)["posts"]:
            post_id = one(db, "SELECT post_id FROM posts WHERE created_at=?", iso_utc(item["Date"]))
            roles = {r[0] for r in rows(db, "SELECT role FROM post_media WHERE post_id=? AND status='ok'", post_id)}
            assert roles == ({"cover", "image"} if len(export_links(item)) > 1 else {"cover", "video"})


# --------------------------------------------------------------------------- re-imports


def test_reimporting_the_same_file_changes_nothing(tmp_path, fake, ws, loopback):
    path = write_export(tmp_path / "TikTok_Data.zip", fake.export_json("new"), "user_data_tiktok.json")
    first = run_import(ws, path, transport=loopback)
    assert first["status"] == "ok"
    db = ws.archive.db
    before = dump(db)
    fetched = len(loopback.fetched)

    again = run_import(ws, path, transport=loopback)

    assert again["status"] == "skipped"
    assert "already imported" in again["message"]
    assert dump(db) == before
    assert len(loopback.fetched) == fetched  # not even a download


def test_a_later_export_updates_the_snapshot_without_duplicates(tmp_path, fake, ws, loopback):
    first_path = write_export(tmp_path / "first.zip", fake.export_json("new"), "user_data_tiktok.json")
    first_taken = int(fake.now())
    os.utime(first_path, (first_taken, first_taken))
    assert run_import(ws, first_path, transport=loopback)["status"] == "ok"
    db = ws.archive.db
    posts_before = rows(db, "SELECT post_id, created_at, title, like_count FROM posts ORDER BY post_id")
    media_before = rows(db, "SELECT post_id, role, position, sha256, status FROM post_media ORDER BY 1, 2, 3")
    comments_before = rows(db, "SELECT comment_id, text FROM comments ORDER BY 1")
    people_before = one(db, "SELECT count(*) FROM people")

    # A day later: new signatures on every link, one new follower, one lost.
    fake.advance(86400)
    gained = fake.gain_followers(1)[0]
    lost = fake.lose_followers(1)[0]
    second_path = write_export(tmp_path / "second.zip", fake.export_json("new"), "user_data_tiktok.json")
    second_taken = int(fake.now())
    os.utime(second_path, (second_taken, second_taken))
    assert sha256_of(second_path) != sha256_of(first_path)

    result = run_import(ws, second_path, transport=loopback)

    assert result["status"] == "ok", result
    # The posts matched themselves by creation time, though every link differs.
    assert rows(db, "SELECT post_id, created_at, title, like_count FROM posts ORDER BY post_id") == posts_before
    assert rows(db, "SELECT post_id, role, position, sha256, status FROM post_media ORDER BY 1, 2, 3") == media_before
    assert rows(db, "SELECT comment_id, text FROM comments ORDER BY 1") == comments_before
    for (sources,) in rows(db, "SELECT sources FROM posts"):
        assert sorted(json.loads(sources)) == sorted(
            [f"export:{sha256_of(first_path)}", f"export:{sha256_of(second_path)}"])
    assert one(db, "SELECT count(*) FROM people") == people_before + 1

    second_iso = iso_utc(second_taken)
    snapshot_id, new_count, lost_count, members = db.execute(
        "SELECT snapshot_id, new_count, lost_count, member_count FROM snapshots "
        "WHERE kind='followers' AND taken_at=?", [second_iso]).fetchone()
    assert (new_count, lost_count, members) == (1, 1, len(fake.followers))
    assert sorted(rows(db, "SELECT person_id, event, at FROM audience_events WHERE snapshot_id=?", snapshot_id)) == sorted([
        (gained["username"], "new", iso_utc(gained["followed_at"])),
        (lost["username"], "lost", second_iso),
    ])
    # The lost follower's interval ended; nobody else's did; nobody has two open ones.
    assert rows(db, "SELECT person_id, ended_at FROM follows WHERE kind='followers' AND ended_at IS NOT NULL") == [
        (lost["username"], second_iso)]
    open_followers = {r[0] for r in rows(db, "SELECT person_id FROM follows WHERE kind='followers' AND ended_at IS NULL")}
    assert open_followers == {p["username"] for p in fake.followers}
    assert one(db, "SELECT count(*) FROM follows") == one(db, "SELECT count(DISTINCT kind || person_id) FROM follows")
    # The following list did not change: no events at all for it this time.
    following_snapshot = one(db, "SELECT snapshot_id FROM snapshots WHERE kind='following' AND taken_at=?", second_iso)
    assert one(db, "SELECT count(*) FROM audience_events WHERE snapshot_id=?", following_snapshot) == 0


# --------------------------------------------------------------------------- failures inside an export


def test_expired_export_links_keep_the_posts_and_record_failed_media(tmp_path, fake, ws, loopback):
    data = fake.export_json("new")
    path = write_export(tmp_path / "TikTok_Data.zip", data, "user_data_tiktok.json")
    fake.advance(fake.config.export_link_ttl + 60)  # the export sat in Downloads too long

    result = run_import(ws, path, transport=loopback)

    assert result["status"] == "ok", result
    db = ws.archive.db
    items = sections(data)["posts"]
    assert one(db, "SELECT count(*) FROM posts") == len(items)
    media = rows(db, "SELECT post_id, role, status, sha256, error FROM post_media")
    assert len(media) == sum(len(export_links(i)) + 1 for i in items)  # every file, cover included
    for post_id, role, status, sha, error in media:
        assert (status, sha) == ("failed", None)
        assert "403" in error, error
    assert one(db, "SELECT count(*) FROM media") == 0
    # The CDN really was asked (and said no), and each failure is in the run's errors.
    assert any(p.startswith("/cdn/video/") for p in loopback.fetched)
    errors = last_run(db)["errors"]
    assert len(errors) == len(media) + 1  # + the avatar
    assert all("403" in e["error"] for e in errors)
    assert "x-signature" not in json.dumps(errors)  # the signed links were scrubbed
    # The audience and comments do not depend on links: all there.
    assert one(db, "SELECT member_count FROM snapshots WHERE kind='followers'") == len(fake.followers)
    assert one(db, "SELECT count(*) FROM comments") == len(sections(data)["comments"])


def test_one_bad_item_is_reported_and_skipped(tmp_path, fake, ws, loopback):
    data = fake.export_json("new")
    parts = sections(data)
    posts, followers = parts["posts"], parts["followers"]
    posts[1]["Date"] = "yesterday-ish"             # garbage date
    posts.append("not a post at all")              # not an object
    nameless = followers[0].pop("UserName")        # a follower without a name
    path = write_export(tmp_path / "TikTok_Data.zip", data, "user_data_tiktok.json")

    result = run_import(ws, path, transport=loopback)

    assert result["status"] == "ok", result
    db = ws.archive.db
    good_posts = [p for p in posts if isinstance(p, dict) and p["Date"] != "yesterday-ish"]
    assert {r[0] for r in rows(db, "SELECT created_at FROM posts")} == {iso_utc(p["Date"]) for p in good_posts}
    assert one(db, "SELECT member_count FROM snapshots WHERE kind='followers'") == len(followers) - 1
    assert nameless not in {r[0] for r in rows(db, "SELECT person_id FROM follows")}
    assert one(db, "SELECT count(*) FROM comments") == len(parts["comments"])

    errors = last_run(db)["errors"]
    assert len(errors) == 3, errors
    described = " | ".join(f"{e['item']}: {e['error']}" for e in errors)
    assert "yesterday-ish" in described
    assert "not a post at all" in described and "expected an object" in described
    assert "no UserName" in described
    assert all("user_data_tiktok.json" in e["item"] for e in errors)


# --------------------------------------------------------------------------- the real CLI


def archiver_command() -> list[str]:
    script = Path(sys.executable).parent / "archiver"
    return [str(script)] if script.exists() else [sys.executable, "-m", "archiver.cli"]


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`archiver ARGS --archive tmp/archive`, in an empty working folder, secrets from the
    environment (never a keyring), state in tmp/state."""
    work = tmp_path / "cwd"
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env.update(ARCHIVER_SECRETS="env", ARCHIVER_STATE_DIR=str(tmp_path / "state"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return subprocess.run([*archiver_command(), *args, "--archive", str(tmp_path / "archive")],
                          capture_output=True, text=True, env=env, cwd=work, timeout=120)


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}


@pytest.fixture
def small_fake():
    yield from served(FakeTikTokConfig(videos=3, followers=4, following=2, seed=5))


def test_cli_detects_tiktok_from_content_or_is_told(tmp_path, small_fake):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    data = small_fake.export_json("new")
    detected = write_export(inputs / "download (1).zip", data, "TikTok/user_data_tiktok.json")
    # Another export (the older layout): the same content again would be the same export.
    # Its avatar link points at www.tiktok.com; a CLI run must not leave loopback.
    old = small_fake.export_json("old")
    old["Profile"]["Profile Information"]["ProfileMap"]["profilePhoto"] = f"{small_fake.base_url}/no-such-avatar"
    forced = write_export(inputs / "renamed.json", old)

    by_content = run_cli(tmp_path, "import", str(detected))
    assert by_content.returncode == 0, by_content.stdout + by_content.stderr
    assert f"{ACCOUNT} ← download (1).zip: ok" in by_content.stdout
    told = run_cli(tmp_path, "import", "tiktok", str(forced))
    assert told.returncode == 0, told.stdout + told.stderr

    archive = Archive(tmp_path / "archive")
    db = archive.db
    assert sorted(rows(db, "SELECT mode, status FROM runs")) == [("download (1).zip", "ok"), ("renamed.json", "ok")]
    assert one(db, "SELECT count(*) FROM posts") == len(small_fake.videos)
    assert one(db, "SELECT count(*) FROM imports") == 2
    archive.close()


@pytest.mark.parametrize("case", ["not-tiktok", "unknown-layout", "forced-on-other-json"])
def test_cli_explains_files_it_cannot_import(tmp_path, case):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    if case == "not-tiktok":
        path = write_export(inputs / "personal_information.json", {"profile_user": [{"string_map_data": {}}]})
        args, wanted = [str(path)], ["not an export file archiver knows", "installed connectors: " + ", ".join(connector_names())]
    elif case == "unknown-layout":
        path = write_export(inputs / "user_data_tiktok.json", {"Brand New Section": {"Items": []}})
        args, wanted = [str(path)], ["none of TikTok's known sections", "found: Brand New Section"]
    else:
        path = write_export(inputs / "something.json", {"Brand New Section": {}})
        args, wanted = ["tiktok", str(path)], ["does not look like a TikTok export"]

    result = run_cli(tmp_path, "import", *args)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert str(path) in output, output
    for text in wanted:
        assert text in output, output
    assert "Traceback" not in output
    if (tmp_path / "archive" / "archive.db").exists():
        archive = Archive(tmp_path / "archive")
        assert one(archive.db, "SELECT count(*) FROM posts") + one(archive.db, "SELECT count(*) FROM imports") == 0
        archive.close()


def zip_with(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, payload in entries:
            archive.writestr(info, payload)
    return path


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode in external_attr counts
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return (info, target.encode())


def zip_bomb(path: Path, declared_mib: int = 128) -> Path:
    """A zip whose user_data entry is ``declared_mib`` MiB of zeros, about 1000:1: far over
    the default 200:1 ratio limit, and refused on its declared sizes before inflating."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("user_data_tiktok.json", "w", force_zip64=True) as entry:
            chunk = b"\0" * 2**20
            for _ in range(declared_mib):
                entry.write(chunk)
    return path


HOSTILE = ["path-traversal", "symlink-entry", "only-a-symlink", "zip-bomb", "malformed-json",
           "malformed-json-in-zip", "empty-file"]


@pytest.mark.parametrize("case", HOSTILE)
def test_cli_refuses_hostile_files_and_writes_nothing_outside_the_archive(tmp_path, small_fake, case):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    good = json.dumps(small_fake.export_json("new")).encode()
    truncated = good[: len(good) // 2]
    expect_ok, wanted = False, []
    if case == "path-traversal":
        path = zip_with(inputs / "TikTok_Data.zip", [
            ("../evil.json", b'{"pwned": true}'),
            ("/tmp/evil-absolute.json", b'{"pwned": true}'),
            ("TikTok/../../evil-nested.json", b'{"pwned": true}'),
            ("TikTok/user_data_tiktok.json", good),
        ])
        expect_ok = True
        wanted = ["skipped entry '../evil.json'", "skipped entry '/tmp/evil-absolute.json'",
                  "skipped entry 'TikTok/../../evil-nested.json'"]
    elif case == "symlink-entry":
        path = zip_with(inputs / "TikTok_Data.zip", [
            symlink_entry("TikTok/passwd", "/etc/passwd"),
            ("TikTok/user_data_tiktok.json", good),
        ])
        expect_ok, wanted = True, ["skipped entry 'TikTok/passwd': it is a symbolic link"]
    elif case == "only-a-symlink":
        path = zip_with(inputs / "TikTok_Data.zip", [symlink_entry("user_data_tiktok.json", "/etc/passwd")])
        wanted = ["'user_data_tiktok.json': it is a symbolic link", "never follows a link"]
    elif case == "zip-bomb":
        path = zip_bomb(inputs / "TikTok_Data.zip")
        wanted = ["zip bomb", "'user_data_tiktok.json'"]
    elif case == "malformed-json":
        path = write_export(inputs / "user_data_tiktok.json", truncated)
        wanted = ["malformed JSON"]
    elif case == "malformed-json-in-zip":
        path = write_export(inputs / "TikTok_Data.zip", truncated, "user_data_tiktok.json")
        wanted = ["malformed JSON", "'user_data_tiktok.json'"]
    else:
        path = inputs / "TikTok_Data.zip"
        path.write_bytes(b"")
        wanted = ["empty (0 bytes)"]
    inputs_before = {name: sha256_of(inputs / name) for name in files_under(inputs)}

    result = run_cli(tmp_path, "import", str(path))

    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    for text in wanted:
        assert text in output, output
    assert str(path) in output, output  # every message names the file
    archive_db = tmp_path / "archive" / "archive.db"
    if expect_ok:
        assert result.returncode == 0, output
        archive = Archive(tmp_path / "archive")
        assert one(archive.db, "SELECT count(*) FROM posts") == len(small_fake.videos)
        archive.close()
    else:
        assert result.returncode != 0, output
        if archive_db.exists():  # a run may be recorded as failed, but nothing imported
            archive = Archive(tmp_path / "archive")
            db = archive.db
            assert [one(db, f"SELECT count(*) FROM {t}") for t in ("posts", "people", "comments", "imports")] \
                == [0, 0, 0, 0]
            assert rows(db, "SELECT status FROM runs") in ([], [("failed",)])
            archive.close()
    # Nothing was written anywhere but the archive folder (and the state folder): not in
    # the working folder, not beside the export, not one level up.
    unexpected = {name for name in files_under(tmp_path)
                  if not name.startswith(("archive/", "state/", "inputs/"))}
    assert unexpected == set()
    assert {name: sha256_of(inputs / name) for name in files_under(inputs)} == inputs_before
    assert not list(tmp_path.parent.glob("evil*")) and not Path("/tmp/evil-absolute.json").exists()


def test_who_can_view_is_stored_in_the_archives_vocabulary_and_kept_raw(tmp_path, fake, ws, loopback):
    """A real export says "Everyone", "Friends", "Followers" or "Only You": the column holds
    public / friends / followers / private, the export's word stays in raw."""
    data = fake.export_json("new")
    items = sections(data)["posts"]
    words = ["Only You", "Friends", "Followers", "Everyone"]
    for item, word in zip(items, words):
        item["WhoCanView"] = word
    path = write_export(tmp_path / "TikTok_Data.zip", data, "user_data_tiktok.json")

    assert run_import(ws, path, transport=loopback)["status"] == "ok"

    db = ws.archive.db
    source = f"export:{sha256_of(path)}"
    stored = {r[0]: (r[1], json.loads(r[2])[source]["WhoCanView"])
              for r in rows(db, "SELECT created_at, visibility, raw FROM posts")}
    assert [stored[iso_utc(item["Date"])] for item in items[:4]] == [
        ("private", "Only You"), ("friends", "Friends"), ("followers", "Followers"), ("public", "Everyone")]


def test_a_file_of_the_export_the_importer_does_not_read_is_named(tmp_path, fake, ws, loopback):
    path = write_export(tmp_path / "TikTok_Data.zip", fake.export_json("new"), "user_data_tiktok.json")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("Direct Messages/chat.txt", "hi")

    result = run_import(ws, path, transport=loopback)

    assert result["status"] == "ok", result
    assert result["not_read"] == ["Direct Messages/chat.txt"]
    assert "Direct Messages/chat.txt" in last_run(ws.archive.db)["message"]


def test_the_user_data_json_is_read_in_a_few_passes_not_one_per_section(tmp_path, fake, ws, loopback, monkeypatch):
    """A big export pays each full parse of its JSON: the import reads it once to check it
    whole (and find its layout and profile), once for posts and comments, and once for
    both lists (followers, following), however many sections it holds; it used to read it
    once per section and layout (twelve times for this one)."""
    from archiver.sync.imports import ExportSource

    data = fake.export_json("new")
    expected = sections(data)
    assert expected["posts"] and expected["comments"] and expected["followers"] and expected["following"]
    path = write_export(tmp_path / "TikTok_Data.zip", data, "user_data_tiktok.json")
    opened: list[str] = []
    real_open = ExportSource.open

    def counting_open(self, name):
        opened.append(name)
        return real_open(self, name)

    monkeypatch.setattr(ExportSource, "open", counting_open)

    result = run_import(ws, path, transport=loopback)

    assert result["status"] == "ok", result
    passes = opened.count("user_data_tiktok.json")
    assert passes <= 3, f"the JSON entry was read {passes} times"
    db = ws.archive.db
    assert one(db, "SELECT count(*) FROM posts") == len(expected["posts"])
    assert one(db, "SELECT count(*) FROM comments") == len(expected["comments"])


@pytest.mark.parametrize("read_first_list", [True, False])
def test_both_lists_share_one_pass_whatever_their_order_and_whoever_reads_them(tmp_path, read_first_list):
    """The lists are handed out in the file's order from one stream: a list the writer
    does not read (it is in the archive already) is skipped by the next one."""
    from archiver.sync.imports import open_export
    from archiver_connectors.tiktok.export import export_pages

    following = [{"UserName": f"followed_{i}", "Date": "2024-01-02 03:04:05"} for i in range(3)]
    followers = [{"UserName": f"fan_{i}", "Date": "2024-01-02 03:04:05"} for i in range(4)]
    data = {"Your Activity": {"Following": {"Following": following + ["not an object"]},
                              "Follower": {"FansList": followers}}}
    path = write_export(tmp_path / "user_data_tiktok.json", data)
    reports: list[str] = []

    class Context:
        def report(self, item, error):
            reports.append(item)

    read: dict[str, list[str]] = {}
    with open_export(path) as source:
        for page in export_pages(source, Context()):
            snapshot, = page.records
            if snapshot.kind == "following" and not read_first_list:
                read["following"] = []
                continue
            read[snapshot.kind] = [m.person.handle for m in snapshot.members]

    assert list(read) == ["following", "followers"]  # the file's order
    assert read["followers"] == [p["UserName"] for p in followers]
    if read_first_list:
        assert read["following"] == [p["UserName"] for p in following]
        assert reports == ["item 3 of Your Activity.Following.Following in user_data_tiktok.json"]
