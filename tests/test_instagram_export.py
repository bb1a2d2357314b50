"""Instagram's "Download your information" export, imported into a real archive.

The exports are built by connectors/archiver_connectors/instagram/sim/export.py in both folder layouts of
shared/platforms/instagram.md §6, zipped or extracted, with Meta's mis-encoded UTF-8 and
real media files. Most tests drive the import through the real sync runner with the
real Instagram connector (on a network that refuses every request: an import downloads
nothing); the API-and-export ones run the connector against the API fake; the last ones
go through ``archiver.sync.jobs.run_import`` and the real ``archiver import`` command.

Every expectation is derived from the fake account the export was written from, and
checked against the SQLite file and the media folder.
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
import pytest

from archive_rows import one, rows
from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.sync.imports import open_export
from archiver.sync.jobs import Workspace, detect_platform, run_import
from archiver.records import iso_utc
from archiver.secrets import open_secret_store
from archiver.sync.runner import Runner
from archiver_connectors.instagram import InstagramConnector
from archiver_connectors.instagram.export import find_export
from archiver_connectors.instagram.sim.export import (
    export_files, make_account, png_bytes, write_export)
from archiver_connectors.meta.export import fix_text

ACCOUNT = "instagram:main"
EXPORTED_AT = 1_717_200_000          # 2024-06-01T00:00:00Z
LATER = EXPORTED_AT + 86_400 * 20


# --------------------------------------------------------------------------- harness


def refuse_every_request(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"an export import must not make any request (it asked for {request.url})")


def import_export(archive: Archive, path: Path) -> dict:
    """Import ``path`` through the real connector and the real sync runner. Its network is
    one that fails the test at the first request: an export's files are all inside it."""
    connector = InstagramConnector(AccountConfig(name="main", platform="instagram"), open_secret_store("memory"),
                                   transport=httpx.MockTransport(refuse_every_request))
    with open_export(path) as source:
        result = Runner(archive, connector).run(
            lambda ctx: connector.import_pages(source, ctx), kind="import", mode=path.name,
            source=f"export:{source.sha256}")
        result["warnings"] = list(source.warnings)
        return result


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def media_bytes(account, layout="new") -> dict[str, bytes]:
    """The media files of an export, by name (the JSON files left out)."""
    return {n: b for n, b in export_files(account, layout).items() if n.startswith("media/")}


def expected_posts(account) -> dict[str, dict]:
    return {iso_utc(p["created_at"]): p for p in account.posts}


# --------------------------------------------------------------------------- every layout

LAYOUTS = [
    # (layout, zipped, options)
    ("new", True, {}),
    ("new", False, {}),
    ("old", True, {}),
    ("old", False, {}),
    ("new", True, {"top_folder": "instagram-roofcam.studio-2024-06-01"}),   # re-zipped extraction
    ("new", False, {"content_folder": "media", "followers_per_file": 3}),    # media/posts_1.json, followers_1..3
]


@pytest.mark.parametrize("layout,zipped,options", LAYOUTS)
def test_every_layout_imports_posts_media_profile_audience_and_comments(tmp_path, archive, layout, zipped, options):
    account = make_account(posts=6, reels=1, stories=1, followers=8, following=4, comments=3, seed=7)
    name = "instagram-roofcam.studio-2024-06-01-AbCd.zip" if zipped else "instagram-roofcam.studio-2024-06-01"
    path = write_export(account, tmp_path / name, layout=layout, exported_at=EXPORTED_AT, **options)

    result = import_export(archive, path)

    assert result["status"] == "ok", result
    assert result["errors"] == []
    db = archive.db
    with open_export(path) as source:
        provenance = f"export:{source.sha256}"

    # Profile: names repaired, contact data (e-mail, birth date) kept out of the archive.
    assert rows(db, "SELECT account_id, username, display_name, bio, url FROM accounts") == [
        (ACCOUNT, account.username, account.name, account.bio, f"https://www.instagram.com/{account.username}")]
    raw_profile = one(db, "SELECT raw FROM accounts")
    assert account.email not in raw_profile and "1990-01-01" not in raw_profile
    avatar = one(db, "SELECT avatar_sha256 FROM accounts")
    assert avatar == sha(png_bytes((account.seed, "profile")))

    # Posts, reels and stories: one row each at the exact second, provisional until the
    # API names them, captions repaired (emoji, accents, CJK).
    wanted = expected_posts(account)
    stored = {r[0]: r[1:] for r in rows(db, "SELECT created_at, post_id, kind, text, sources FROM posts")}
    assert set(stored) == set(wanted)
    for created_at, (post_id, kind, text, sources) in stored.items():
        post = wanted[created_at]
        assert post_id == f"provisional:{created_at}"
        assert kind == post["kind"]
        assert text == post["caption"]
        assert json.loads(sources) == [provenance]
    assert {p["kind"] for p in account.posts} == {"carousel", "image", "video", "reel", "story"}

    # Media: every file of every post stored under its sha256 and linked in order.
    files = media_bytes(account, layout)
    for created_at, post in wanted.items():
        linked = rows(db, "SELECT role, position, status, sha256, source_url FROM post_media WHERE post_id=? "
                          "ORDER BY position", f"provisional:{created_at}")
        assert [(r[0], r[1], r[2]) for r in linked] == [(item, i, "ok") for i, item in enumerate(post["items"])]
        for role, position, _status, digest, source_url in linked:
            assert source_url.endswith(f"_{post['created_at']}_n.{'mp4' if role == 'video' else 'png'}")
            original = files[source_url.split("/", 1)[1] if options.get("top_folder") else source_url]
            assert digest == sha(original)
            stored_path = one(db, "SELECT path FROM media WHERE sha256=?", digest)
            assert sha((archive.media_root / stored_path).read_bytes()) == digest
    assert one(db, "SELECT count(*) FROM post_media") == sum(len(p["items"]) for p in account.posts)

    # Followers and following: a dated snapshot each; every interval starts when the
    # export says the person followed.
    for kind, people in (("followers", account.followers), ("following", account.following)):
        assert rows(db, "SELECT member_count, complete, source FROM snapshots WHERE kind=?", kind) == [
            (len(people), 1, provenance)]
        taken_at = one(db, "SELECT taken_at FROM snapshots WHERE kind=?", kind)
        assert abs(int(_epoch(taken_at)) - EXPORTED_AT) <= 2  # the entries' build time (zip: 2 s steps)
        assert sorted(rows(db, "SELECT person_id, started_at, ended_at FROM follows WHERE kind=?", kind)) == sorted(
            (p["username"], iso_utc(p["followed_at"]), None) for p in people)
    assert sorted(rows(db, "SELECT person_id, handle, url FROM people")) == sorted(
        (p["username"], p["username"], f"https://www.instagram.com/{p['username']}")
        for p in account.followers + account.following)

    # The owner's own comments, on posts and on reels.
    assert sorted(rows(db, "SELECT text, created_at, by_owner, author_id FROM comments")) == sorted(
        (c["text"], iso_utc(c["created_at"]), 1, None) for c in account.comments)
    assert any(c["reel"] for c in account.comments) and any(not c["reel"] for c in account.comments)


def _epoch(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------- text repair


def test_fix_text_repairs_only_what_round_trips():
    assert fix_text("\u00f0\u009f\u0098\u0080") == "😀"
    assert fix_text("caf\u00c3\u00a9") == "café"
    assert fix_text("café") == "café"          # already right: é alone is not valid UTF-8
    assert fix_text("😀 ok") == "😀 ok"          # not Latin-1 at all: left alone
    assert fix_text("plain") == "plain"


def test_mis_encoded_and_clean_exports_give_the_same_text(tmp_path):
    account = make_account(posts=5, followers=2, following=1, comments=2, seed=3)
    broken = write_export(account, tmp_path / "broken.zip", mis_encoded=True)
    clean = write_export(account, tmp_path / "clean.zip", mis_encoded=False)
    with zipfile.ZipFile(broken) as z:
        posts_json = z.read("your_instagram_activity/content/posts_1.json").decode()
    assert "\\u00f0\\u009f\\u0098\\u0080" in posts_json  # 😀 as Meta writes it
    assert "\\u00c3\\u00a9" in posts_json                  # é as Meta writes it

    texts = []
    for number, path in enumerate((broken, clean)):
        archive = Archive(tmp_path / f"archive{number}")
        assert import_export(archive, path)["status"] == "ok"
        texts.append((rows(archive.db, "SELECT created_at, text FROM posts ORDER BY created_at"),
                      rows(archive.db, "SELECT display_name, bio FROM accounts"),
                      rows(archive.db, "SELECT text FROM comments ORDER BY text")))
        archive.close()
    assert texts[0] == texts[1]
    captions = " ".join(t or "" for _, t in texts[0][0])
    assert "😀" in captions and "Café" in captions and "crème brûlée" in captions
    assert texts[0][1] == [("Roof Cam — Zoë 😀", "Rooftop timelapses ☀️ from São Paulo")]
    assert ("Très beau, bravo! #1",) in texts[0][2]


# --------------------------------------------------------------------------- idempotence


def snapshot_of(db) -> dict:
    """What an import decides (not when it ran): timestamps of the run itself left out."""
    return {
        "posts": rows(db, "SELECT post_id, kind, created_at, text, sources FROM posts ORDER BY post_id"),
        "post_media": rows(db, "SELECT post_id, role, position, sha256, status FROM post_media ORDER BY 1,2,3"),
        "media": rows(db, "SELECT sha256, path, size FROM media ORDER BY sha256"),
        "people": rows(db, "SELECT person_id, handle FROM people ORDER BY person_id"),
        "follows": rows(db, "SELECT kind, person_id, started_at, last_seen_at, ended_at FROM follows ORDER BY 1,2"),
        "snapshots": rows(db, "SELECT kind, taken_at, member_count, new_count, lost_count FROM snapshots ORDER BY 1"),
        "events": rows(db, "SELECT kind, person_id, event, at FROM audience_events ORDER BY 1,2,3"),
        "comments": rows(db, "SELECT comment_id, text, created_at FROM comments ORDER BY 1"),
        "versions": rows(db, "SELECT * FROM post_versions") + rows(db, "SELECT * FROM profile_versions"),
    }


@pytest.mark.parametrize("layout", ["new", "old"])
def test_reimporting_the_same_export_changes_nothing(tmp_path, archive, layout):
    path = write_export(make_account(seed=11), tmp_path / "export.zip", layout=layout, exported_at=EXPORTED_AT)
    first = import_export(archive, path)
    before = snapshot_of(archive.db)
    media_files = sorted(p for p in archive.media_root.rglob("*") if p.is_file())

    second = import_export(archive, path)

    assert first["status"] == second["status"] == "ok"
    assert snapshot_of(archive.db) == before
    assert sorted(p for p in archive.media_root.rglob("*") if p.is_file()) == media_files
    assert not any(second["counts"].get(k) for k in (
        "posts_new", "posts_edited", "comments_new", "followers_new", "followers_lost",
        "following_new", "following_lost", "profile_changed")), second["counts"]


def test_a_later_export_gives_new_and_lost_follower_events(tmp_path, archive):
    account = make_account(followers=6, following=3, seed=5)
    first = write_export(account, tmp_path / "first.zip", exported_at=EXPORTED_AT)
    assert import_export(archive, first)["status"] == "ok"
    db = archive.db
    # The first list is the baseline: "new" events only from the export's own dates.
    assert one(db, "SELECT count(*) FROM audience_events WHERE event='lost'") == 0

    left = account.followers[:2]
    newcomer = {"username": "brand.new_fan", "followed_at": EXPORTED_AT + 86_400 * 3}
    account.followers = account.followers[2:] + [newcomer]
    second = write_export(account, tmp_path / "second.zip", exported_at=LATER)
    result = import_export(archive, second)

    assert result["status"] == "ok", result
    assert (result["counts"]["followers_new"], result["counts"]["followers_lost"]) == (1, 2)
    taken = one(db, "SELECT max(taken_at) FROM snapshots WHERE kind='followers'")
    assert rows(db, "SELECT person_id, at FROM audience_events WHERE kind='followers' AND event='new' "
                    "AND snapshot_id=(SELECT max(snapshot_id) FROM snapshots WHERE kind='followers')") == [
        ("brand.new_fan", iso_utc(newcomer["followed_at"]))]
    assert sorted(rows(db, "SELECT person_id, at FROM audience_events WHERE event='lost'")) == sorted(
        (p["username"], taken) for p in left)
    assert sorted(rows(db, "SELECT person_id, ended_at FROM follows WHERE kind='followers' AND ended_at IS NOT NULL")) \
        == sorted((p["username"], taken) for p in left)
    assert one(db, "SELECT count(*) FROM follows WHERE kind='followers' AND ended_at IS NULL") == len(account.followers)
    # Following did not change: no event, no duplicate interval.
    assert one(db, "SELECT count(*) FROM follows WHERE kind='following'") == len(account.following)
    assert one(db, "SELECT count(*) FROM audience_events WHERE kind='following' AND event='lost'") == 0


# --------------------------------------------------------------------------- API + export


# --------------------------------------------------------------------------- bad input


def test_bad_items_are_reported_and_skipped(tmp_path, archive):
    account = make_account(posts=3, reels=0, stories=0, followers=4, following=2, seed=4)
    files = export_files(account, "new")
    posts = json.loads(files["your_instagram_activity/content/posts_1.json"])
    posts.append("not a post")                                              # not an object
    posts.append({"media": [{"uri": "media/posts/x.png", "title": "no time"}]})  # no timestamp
    posts.append({"media": [{"uri": "media/posts/202405/missing_n.jpg", "creation_timestamp": 1_700_000_000,
                             "title": "file not in the export"}]})
    followers = json.loads(files["connections/followers_and_following/followers_1.json"])
    followers.append({"title": "", "string_list_data": [{"timestamp": 1_700_000_000}]})  # nobody named
    path = tmp_path / "bad"
    write_export(account, path, extra_files={
        "your_instagram_activity/content/posts_1.json": json.dumps(posts).encode(),
        "connections/followers_and_following/followers_1.json": json.dumps(followers).encode(),
    })

    result = import_export(archive, path)

    assert result["status"] == "ok", result
    errors = " | ".join(f"{e['item']}: {e['error']}" for e in result["errors"])
    assert "expected an object, found str 'not a post'" in errors
    assert "no usable creation_timestamp" in errors
    assert "not in the export" in errors and "'media/posts/202405/missing_n.jpg', named in the export" in errors
    assert "no user name" in errors
    assert len(result["errors"]) == 4, errors
    db = archive.db
    # The good posts and the post without its file are there; the file is recorded as failed.
    assert one(db, "SELECT count(*) FROM posts") == len(account.posts) + 1
    assert rows(db, "SELECT status FROM post_media WHERE post_id=?", f"provisional:{iso_utc(1_700_000_000)}") == [
        ("failed",)]
    # A list with a skipped entry is partial: stored, but never a reason to end anyone.
    assert rows(db, "SELECT member_count, complete FROM snapshots WHERE kind='followers'") == [(4, 0)]


def test_missing_sections_are_fine(tmp_path, archive):
    account = make_account(posts=2, reels=0, stories=0, followers=3, following=0, comments=0, seed=6)
    files = export_files(account, "new")
    path = tmp_path / "followers-only.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("connections/followers_and_following/followers_1.json",
                   files["connections/followers_and_following/followers_1.json"])

    result = import_export(archive, path)

    assert result["status"] == "ok", result
    assert result["errors"] == []
    db = archive.db
    assert one(db, "SELECT count(*) FROM follows WHERE kind='followers'") == 3
    # No following list in this export: no following snapshot, nothing about who left.
    assert one(db, "SELECT count(*) FROM snapshots WHERE kind='following'") == 0
    assert one(db, "SELECT count(*) FROM posts") == 0


def test_unknown_layout_is_a_clear_error_naming_the_file(tmp_path, archive):
    not_instagram = tmp_path / "random.zip"
    with zipfile.ZipFile(not_instagram, "w") as z:
        z.writestr("notes/readme.txt", b"hello")
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(changed, "w") as z:
        z.writestr("your_instagram_activity/content/posts_1.json", b'"a string, not a list"')

    for path, wanted in ((not_instagram, "no Instagram export files found"),
                         (changed, "posts_1.json is not a JSON list of posts")):
        result = import_export(archive, path)
        assert result["status"] == "failed", result
        message = result["message"] + " ".join(e["error"] for e in result["errors"])
        assert str(path) in result["message"], result
        assert wanted in message, result
    assert one(archive.db, "SELECT count(*) FROM posts") + one(archive.db, "SELECT count(*) FROM people") == 0


def test_hostile_zip_entries_are_refused_and_nothing_is_written_outside(tmp_path, archive):
    account = make_account(posts=2, reels=0, stories=0, seed=8)
    files = export_files(account, "new")
    posts = json.loads(files["your_instagram_activity/content/posts_1.json"])
    posts.append({"media": [{"uri": "../../escaped.png", "creation_timestamp": 1_700_000_000, "title": "evil"}]})
    work = tmp_path / "work"
    work.mkdir()
    path = work / "instagram.zip"
    with zipfile.ZipFile(path, "w") as z:
        files["your_instagram_activity/content/posts_1.json"] = json.dumps(posts).encode()
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("../../escaped.png", png_bytes("evil"))
        z.writestr("media/../../../escaped2.png", png_bytes("evil2"))
    before = {p for p in tmp_path.rglob("*")}

    cwd = os.getcwd()
    os.chdir(work)
    try:
        result = import_export(archive, path)
    finally:
        os.chdir(cwd)

    assert result["status"] == "ok", result
    assert any("'../../escaped.png'" in w and "'..'" in w for w in result["warnings"]), result["warnings"]
    after = {p for p in tmp_path.rglob("*")} - before
    assert all(p.is_relative_to(tmp_path / "archive") for p in after), sorted(map(str, after))
    assert not list(tmp_path.rglob("escaped*.png"))
    evil = f"provisional:{iso_utc(1_700_000_000)}"
    assert rows(archive.db, "SELECT status FROM post_media WHERE post_id=?", evil) == [("failed",)]
    assert sha(png_bytes("evil")) not in {r[0] for r in rows(archive.db, "SELECT sha256 FROM media")}


# --------------------------------------------------------------------------- detection


def tiktok_export(tmp_path: Path) -> Path:
    from archiver_connectors.tiktok.sim.fake import FakeTikTok

    path = tmp_path / "TikTok_Data.zip"
    path.write_bytes(FakeTikTok().export_zip())
    return path


def takeout_like(tmp_path: Path) -> Path:
    path = tmp_path / "takeout-20240601T000000Z-001.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("Takeout/YouTube and YouTube Music/channels/channel.csv", b"Channel ID,Title\n")
        z.writestr("Takeout/YouTube and YouTube Music/comments/comments.csv", b"Comment ID\n")
        z.writestr("Takeout/archive_browser.html", b"<html></html>")
    return path


def test_detection_claims_instagram_exports_only(tmp_path):
    ours = [write_export(make_account(seed=1), tmp_path / f"ig-{layout}.zip", layout=layout)
            for layout in ("new", "old")]
    ours.append(write_export(make_account(seed=1), tmp_path / "ig-folder", layout="old"))
    for path in ours:
        with open_export(path) as source:
            assert find_export(source), path
    for path in (tiktok_export(tmp_path), takeout_like(tmp_path)):
        with open_export(path) as source:
            assert find_export(source) is None, path
    # A lone followers list saved on its own is still Instagram's; a lone profile is not claimed.
    bare = tmp_path / "followers_1.json"
    bare.write_text("[]")
    with open_export(bare) as source:
        assert find_export(source) == "followers_1.json"


def test_detect_platform_keeps_tiktok_and_instagram_apart(tmp_path):
    with open_export(tiktok_export(tmp_path)) as source:
        assert detect_platform(source) == "tiktok"
    with open_export(write_export(make_account(seed=1), tmp_path / "ig.zip")) as source:
        assert detect_platform(source) == "instagram"


# --------------------------------------------------------------------------- through the connector


def test_run_import_detects_and_imports_once(tmp_path):
    from archiver.secrets import open_secret_store

    account = make_account(seed=9)
    path = write_export(account, tmp_path / "instagram-roofcam.studio-2024-06-01.zip", exported_at=EXPORTED_AT)
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    try:
        first = run_import(ws, path)
        assert first["status"] == "ok", first
        assert (first["platform"], first["account"]) == ("instagram", ACCOUNT)
        db = ws.archive.db
        assert one(db, "SELECT count(*) FROM posts") == len(account.posts)
        assert one(db, "SELECT count(*) FROM follows") == len(account.followers) + len(account.following)
        assert run_import(ws, path)["status"] == "skipped"
    finally:
        ws.archive.close()


def test_cli_import_of_an_extracted_export(tmp_path):
    account = make_account(seed=10)
    path = write_export(account, tmp_path / "inputs" / "instagram-roofcam.studio-2024-06-01", layout="old")
    script = Path(sys.executable).parent / "archiver"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "archiver.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env.update(ARCHIVER_SECRETS="env", ARCHIVER_STATE_DIR=str(tmp_path / "state"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    work = tmp_path / "cwd"
    work.mkdir()

    result = subprocess.run([*command, "import", str(path), "--archive", str(tmp_path / "archive")],
                            capture_output=True, text=True, env=env, cwd=work, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    archive = Archive(tmp_path / "archive")
    try:
        db = archive.db
        assert one(db, "SELECT count(*) FROM posts") == len(account.posts)
        assert one(db, "SELECT display_name FROM accounts") == account.name
        assert one(db, "SELECT count(*) FROM post_media WHERE status='ok'") == sum(len(p["items"]) for p in account.posts)
    finally:
        archive.close()
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("api_first", [True, False], ids=["api-then-export", "export-then-api"])
def test_a_post_from_the_api_and_the_export_is_one_row(tmp_path, api_first):
    """The real connector against the API fake, and the export of the same account (its
    posts mirror the fake's media at the same seconds, plus a story the API no longer
    lists), in either order: every post is one row, named by the API, holding both
    sources and the export's files; the story stays provisional."""
    import time

    from archiver.sync.jobs import run_export
    from archiver_connectors.instagram.api import InstagramTokens
    from archiver_connectors.instagram.sim.fake import FakeInstagram, FakeInstagramConfig

    base_url = "http://127.0.0.1:8799"   # never contacted: MockTransport answers in-process
    fake = FakeInstagram(FakeInstagramConfig(media=6, comments_max=1, replies_max=0, seed=4), base_url=base_url)
    transport = httpx.MockTransport(fake.handle)
    secrets = open_secret_store("memory")
    secrets.set("instagram", "main", "client_id", fake.config.client_id)
    secrets.set("instagram", "main", "client_secret", fake.config.client_secret)
    tokens = fake.issue_tokens()
    InstagramTokens(secrets, "main", base_url, httpx.Client(transport=transport), clock=time.time).store(
        tokens, user_id=tokens["user_id"], permissions=tokens["permissions"])
    account = AccountConfig(name="main", platform="instagram", base_url=base_url)
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None, accounts=[account]), secrets)
    # Stories vanish from the API after 24 hours: the export's one has no API twin.
    story_at = min(m["timestamp"] for m in fake.media) - 86_400 * 3
    mirror = [(m["timestamp"], m["caption"] or None,
               "REELS" if m["media_product_type"] == "REELS" else m["media_type"]) for m in fake.media]
    path = write_export(make_account(posts=0, reels=0, stories=0, seed=4, mirror=[*mirror, (story_at, None, "story")]),
                        tmp_path / "instagram-export.zip")
    try:
        steps = [lambda: run_export(ws, account, transport=transport, sleep=lambda s: None),
                 lambda: run_import(ws, path, transport=transport)]
        for step in steps if api_first else reversed(steps):
            result = step()
            assert result["status"] == "ok", result

        db = ws.archive.db
        assert one(db, "SELECT count(*) FROM posts") == len(fake.media) + 1
        for media in fake.media:
            (post_id, sources, text), = rows(db, "SELECT post_id, sources, text FROM posts WHERE created_at=?",
                                             iso_utc(media["timestamp"]))
            assert post_id == media["id"]
            assert sorted(s.split(":")[0] for s in json.loads(sources)) == ["api", "export"]
            assert text == (media["caption"] or None)
            # The export's files hang on the API's row.
            assert one(db, "SELECT count(*) FROM post_media WHERE post_id=? AND status='ok'", post_id) >= 1
        assert rows(db, "SELECT kind FROM posts WHERE post_id LIKE 'provisional:%'") == [("story",)]
        assert one(db, "SELECT count(*) FROM post_media WHERE post_id NOT IN (SELECT post_id FROM posts)") == 0
    finally:
        ws.archive.close()
