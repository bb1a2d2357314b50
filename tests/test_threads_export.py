"""Threads' "Download your information" export (threads.md §6) into the Threads account:
connectors/archiver_connectors/threads/export.py, and the core's import of an Instagram
download carrying a threads/ folder into both accounts in one `archiver import`.

Every export is written by threads/sim/export.py's builder (both generations: 2026 with
``text_app_post``, 2024 without; Meta's mojibake in strings and keys; a carousel's text in
its post-level title; text posts with ``uri: ""``; numbered followers files; threads.net
and threads.com hrefs; localized profile labels) and read through the core's real
``open_export`` and sync runner; the one-import-fills-both test runs the real CLI.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import httpx
import pytest

from archive_rows import one, rows
from archiver.archive import Archive
from archiver.config import AccountConfig, Config, InboxConfig
from archiver.records import Page, Post, iso_utc
from archiver.secrets import open_secret_store
from archiver.sync.imports import open_export
from archiver.sync.jobs import Workspace, detect_platforms, run_import
from archiver.sync.runner import Runner
from archiver_connectors.instagram.sim.export import build_instagram_export, mp4_bytes, png_bytes
from archiver_connectors.threads import ThreadsConnector
from archiver_connectors.threads.sim.export import (
    ThreadsExportLike,
    ThreadsExportPerson,
    ThreadsExportPost,
    ThreadsExportWorld,
    threads_files,
    write_export,
)
from cli_world import run_cli

ACCOUNT = "threads:main"
EXPORTED_AT = 1_735_000_000


def refuse_every_request(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"an export import must not make any request (it asked for {request.url})")


def connector() -> ThreadsConnector:
    return ThreadsConnector(AccountConfig(name="main", platform="threads"), open_secret_store("memory"),
                            transport=httpx.MockTransport(refuse_every_request))


def import_export(archive: Archive, path: Path) -> dict:
    """``path`` through the real connector and sync runner; ``not_read``: what it left."""
    threads = connector()
    with open_export(path) as source:
        result = Runner(archive, threads).run(lambda ctx: threads.import_pages(source, ctx), kind="import",
                                              mode=path.name, source=f"export:{source.sha256}")
        result["not_read"] = source.not_read()
        return result


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_world(**changes) -> ThreadsExportWorld:
    """A text post (with 🙏 and é), an image post without text, a video, a carousel, the
    owner's reply; followers (one named only by a threads.net href with "@"), following,
    a like."""
    world = ThreadsExportWorld(
        username="roofcam.studio", display_name="Roof Cam — Zoë", bio="Dächer ☀️", exported_at=EXPORTED_AT,
        posts=[
            ThreadsExportPost(1_709_116_601, "café at sunrise 🙏"),
            ThreadsExportPost(1_709_064_890, None, media=[png_bytes("image")]),
            ThreadsExportPost(1_709_000_000, "timelapse über der Stadt", media=[mp4_bytes("video")]),
            ThreadsExportPost(1_708_714_341, "carousel caption lives here ✨",
                              media=[png_bytes("c1"), mp4_bytes("c2"), png_bytes("c3")]),
            ThreadsExportPost(1_709_200_000, "thanks, Zoë!", is_reply=True),
        ],
        followers=[ThreadsExportPerson("pine.marten", 1_730_000_000, "Pine Marten école"),
                   ThreadsExportPerson("fan_one", 1_720_000_000),
                   ThreadsExportPerson("old.style", 1_710_000_000, href="https://www.threads.net/@old.style/",
                                       value=False)],
        following=[ThreadsExportPerson("idol_two", 1_700_000_000, "Idol Two")],
        likes=[ThreadsExportLike("idol_two", "DAbCdEfGhIj", 1_760_912_834, "😍")])
    for key, value in changes.items():
        setattr(world, key, value)
    return world


def kinds_and_texts(world: ThreadsExportWorld, generation: str) -> dict[str, tuple]:
    """created_at -> (kind, text, number of files) as the import must store them."""
    expected = {}
    for post in world.posts:
        if post.is_reply and generation == "2026":
            kind = "reply"
        elif len(post.media) > 1:
            kind = "carousel"
        elif post.media:
            kind = "video" if post.media[0][4:8] == b"ftyp" else "image"
        else:
            kind = "text"
        expected[iso_utc(post.timestamp)] = (kind, post.text, len(post.media))
    return expected


# --------------------------------------------------------------------------- both generations, every layout


@pytest.mark.parametrize("generation,layout,zipped,top_folder", [
    ("2026", "threads", True, None),
    ("2024", "root", False, None),
    ("2026", "activity", False, None),
    ("2024", "threads", True, "threads-roofcam.studio-2024-03-01"),   # a re-zipped extraction
])
def test_a_threads_only_download_imports_posts_replies_media_people_likes_and_profile(
        tmp_path, archive, generation, layout, zipped, top_folder):
    world = make_world()
    name = "threads-export.zip" if zipped else "threads-export"
    path = write_export(tmp_path / name, world, generation=generation, layout=layout, top_folder=top_folder)
    with open_export(path) as source:
        assert detect_platforms(source) == ["threads"]   # a Threads-only download is not Instagram's
        provenance = f"export:{source.sha256}"

    result = import_export(archive, path)

    assert result["status"] == "ok", result
    assert result["errors"] == []
    assert result["not_read"] == []
    db = archive.db
    # Posts: provisional until the API names them, at the exact second, text repaired;
    # the carousel's text from its post-level title; the text post has no file.
    stored = {r[0]: r[1:] for r in rows(db, "SELECT created_at, post_id, kind, text, sources FROM posts")}
    expected = kinds_and_texts(world, generation)
    assert set(stored) == set(expected)
    for created_at, (post_id, kind, text, sources) in stored.items():
        assert (kind, text) == expected[created_at][:2]
        assert post_id == f"provisional:{created_at}"
        assert json.loads(sources) == [provenance]
        linked = rows(db, "SELECT position, status, sha256 FROM post_media WHERE post_id=? ORDER BY position", post_id)
        assert [(p, s) for p, s, _ in linked] == [(i, "ok") for i in range(expected[created_at][2])]
    for post in world.posts:
        digests = [r[0] for r in rows(db, "SELECT sha256 FROM post_media WHERE post_id=? ORDER BY position",
                                      f"provisional:{iso_utc(post.timestamp)}")]
        assert digests == [sha(m) for m in post.media]
    # 2024 exports have no reply flag: the reply is an ordinary text post there.
    assert ("reply" in {row[1] for row in stored.values()}) == (generation == "2026")

    # Followers and following: dated snapshots of people keyed by user name.
    assert sorted(rows(db, "SELECT person_id, started_at FROM follows WHERE kind='followers'")) == sorted(
        (p.username, iso_utc(p.followed_at)) for p in world.followers)
    assert rows(db, "SELECT person_id FROM follows WHERE kind='following'") == [("idol_two",)]
    assert rows(db, "SELECT member_count, complete FROM snapshots ORDER BY kind") == [(3, 1), (1, 1)]
    people = {r[0]: r[1:] for r in rows(db, "SELECT person_id, handle, display_name, url FROM people")}
    assert people["pine.marten"] == ("pine.marten", "Pine Marten école", "https://www.threads.com/@pine.marten")
    assert people["old.style"][0] == "old.style"
    # The like, keyed by the post's threads.com link whatever host the export wrote.
    assert rows(db, "SELECT kind, target, created_at FROM interactions") == [
        ("like", "https://www.threads.com/@idol_two/post/DAbCdEfGhIj", iso_utc(1_760_912_834))]
    # Profile: repaired; the e-mail and phone never reach the archive.
    assert rows(db, "SELECT account_id, username, display_name, bio FROM accounts") == [
        (ACCOUNT, "roofcam.studio", "Roof Cam — Zoë", "Dächer ☀️")]
    dumped = "".join(str(r) for r in rows(db, "SELECT * FROM accounts"))
    assert "owner@example.com" not in dumped and "555" not in dumped


def test_mojibake_is_repaired_in_keys_too_and_a_clean_export_gives_the_same_rows(tmp_path):
    world = make_world()
    results = []
    for mis_encoded in (True, False):
        archive = Archive(tmp_path / f"archive-{mis_encoded}")
        try:
            path = write_export(tmp_path / f"export-{mis_encoded}.zip", world, mis_encoded=mis_encoded,
                                profile_language="fr")   # labels with é and ’: keys in mojibake
            assert import_export(archive, path)["status"] == "ok"
            db = archive.db
            results.append((rows(db, "SELECT created_at, kind, text FROM posts ORDER BY created_at"),
                            rows(db, "SELECT person_id, display_name FROM people ORDER BY person_id"),
                            rows(db, "SELECT username, display_name, bio FROM accounts")))
            raw = one(db, "SELECT raw FROM posts WHERE kind='text'")
        finally:
            archive.close()
    assert results[0] == results[1]
    assert ("roofcam.studio", "Roof Cam — Zoë", "Dächer ☀️") in results[0][2]
    assert "café at sunrise 🙏" in json.loads(raw)[next(iter(json.loads(raw)))]["media"][0]["title"]


@pytest.mark.parametrize("language", ["de", "fr"])
def test_profile_labels_in_another_language(tmp_path, archive, language):
    path = write_export(tmp_path / "threads.zip", make_world(), profile_language=language)
    assert import_export(archive, path)["status"] == "ok"
    assert rows(archive.db, "SELECT username, display_name, bio FROM accounts") == [
        ("roofcam.studio", "Roof Cam — Zoë", "Dächer ☀️")]


def test_profile_labels_nobody_knows_find_the_user_name_by_the_download_name(tmp_path, archive):
    files = threads_files(make_world(posts=[], followers=[], following=[], likes=[]), mis_encoded=False)
    # Estonian: no label known; the name comes first, so the order alone would mislead.
    profile = {"text_post_app_text_post_app_profile": [{"string_map_data": {
        "Nimi": {"value": "Zoë"}, "Kasutajanimi": {"value": "roofcam.studio"},
        "E-post": {"value": "owner@example.com"}}}]}
    files["threads/personal_information.json"] = json.dumps(profile).encode()
    path = tmp_path / "instagram-roofcam.studio-2026-03-01-AbCd"
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    assert import_export(archive, path)["status"] == "ok"
    assert one(archive.db, "SELECT username FROM accounts") == "roofcam.studio"
    assert "owner@example.com" not in one(archive.db, "SELECT raw FROM accounts")


# --------------------------------------------------------------------------- snapshots over time


def test_numbered_followers_files_and_a_later_export_where_one_follower_is_gone(tmp_path, archive):
    world = make_world()
    first = write_export(tmp_path / "first.zip", world, followers_per_file=2)
    with open_export(first) as source:
        assert [n for n in source.names() if "followers" in n] == ["threads/followers_1.json",
                                                                  "threads/followers_2.json"]
    assert import_export(archive, first)["status"] == "ok"
    assert one(archive.db, "SELECT member_count FROM snapshots WHERE kind='followers'") == 3

    gone = world.followers.pop(0)
    world.exported_at = EXPORTED_AT + 86_400 * 30
    second = write_export(tmp_path / "second.zip", world, numbered_followers=False)   # followers.json
    result = import_export(archive, second)

    assert result["status"] == "ok", result
    assert (result["counts"]["followers_new"], result["counts"]["followers_lost"]) == (0, 1)
    db = archive.db
    assert rows(db, "SELECT person_id FROM audience_events WHERE event='lost'") == [(gone.username,)]
    assert rows(db, "SELECT person_id FROM follows WHERE kind='followers' AND ended_at IS NOT NULL") == [
        (gone.username,)]
    assert one(db, "SELECT count(*) FROM posts") == len(world.posts)    # the same posts, not twice


# --------------------------------------------------------------------------- bad input


def test_bad_items_are_reported_and_skipped(tmp_path, archive):
    world = make_world()
    files = threads_files(world, mis_encoded=False)
    posts = json.loads(files["threads/threads_and_replies.json"])
    items = posts["text_post_app_text_posts"]
    items.append("not a post")
    items.append({"media": [{"uri": "", "title": "no time"}]})
    items.append({"media": [{"uri": "media/posts/202402/missing_n.jpg", "creation_timestamp": 1_708_000_000,
                             "title": "file not in the export"}]})
    followers = json.loads(files["threads/followers_1.json"])
    followers["text_post_app_text_post_app_followers"].append({"title": "", "string_list_data": [{"timestamp": 1}]})
    likes = json.loads(files["threads/liked_threads.json"])
    likes["text_post_app_media_likes"].append({"title": "x", "string_list_data": [{"value": "👍"}]})
    files.update({"threads/threads_and_replies.json": json.dumps(posts).encode(),
                  "threads/followers_1.json": json.dumps(followers).encode(),
                  "threads/liked_threads.json": json.dumps(likes).encode()})
    path = tmp_path / "bad"
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)

    result = import_export(archive, path)

    assert result["status"] == "ok", result
    errors = " | ".join(f"{e['item']}: {e['error']}" for e in result["errors"])
    assert "expected an object, found str 'not a post'" in errors
    assert "no usable creation_timestamp" in errors
    assert "'media/posts/202402/missing_n.jpg', named in the export" in errors
    assert "no user name" in errors and "no link to the liked post" in errors
    assert len(result["errors"]) == 5, errors
    db = archive.db
    assert one(db, "SELECT count(*) FROM posts") == len(world.posts) + 1     # the one whose file is missing too
    assert rows(db, "SELECT status FROM post_media WHERE post_id=?", f"provisional:{iso_utc(1_708_000_000)}") == [
        ("failed",)]
    assert rows(db, "SELECT member_count, complete FROM snapshots WHERE kind='followers'") == [(3, 0)]


# --------------------------------------------------------------------------- the API's post and the export's


def api_post(payload: dict) -> Post:
    """A post as the Threads API connector maps /me/threads (THREADS_KINDS.md): created_at
    from ``timestamp`` ("2026-04-15T14:30:00+0000"), text as given."""
    import datetime as dt

    moment = dt.datetime.strptime(payload["timestamp"], "%Y-%m-%dT%H:%M:%S%z")
    return Post(native_id=payload["id"], created_at=iso_utc(moment), kind="text", text=payload.get("text") or None,
                url=payload.get("permalink"), like_count=3, raw=payload)


@pytest.mark.parametrize("api_first", [True, False], ids=["api-then-export", "export-then-api"])
def test_the_api_post_and_the_export_post_are_one_row(tmp_path, archive, api_first):
    payload = {"id": "18050123456789012", "media_product_type": "THREADS", "media_type": "TEXT_POST",
               "permalink": "https://www.threads.com/@roofcam.studio/post/DAbCdEfGhIj", "username": "roofcam.studio",
               "text": "Sunset again. café 🙏", "timestamp": "2026-04-15T14:30:00+0000"}
    moment = 1_776_263_400
    assert iso_utc(moment) == "2026-04-15T14:30:00Z"
    path = write_export(tmp_path / "threads.zip", make_world(
        posts=[ThreadsExportPost(moment, payload["text"]), ThreadsExportPost(moment - 3_600, "export only")]))
    threads = connector()

    def from_api():
        return Runner(archive, threads).run(lambda ctx: iter([Page("posts", [api_post(payload)])]), kind="export",
                                            mode="incremental")

    for step in ([from_api, lambda: import_export(archive, path)] if api_first
                 else [lambda: import_export(archive, path), from_api]):
        assert step()["status"] == "ok"
    db = archive.db
    assert one(db, "SELECT count(*) FROM posts") == 2
    (post_id, text, sources, url), = rows(db, "SELECT post_id, text, sources, url FROM posts WHERE created_at=?",
                                          iso_utc(moment))
    assert (post_id, text, url) == (payload["id"], payload["text"], payload["permalink"])
    assert sorted(s.split(":")[0] for s in json.loads(sources)) == ["api", "export"]


# --------------------------------------------------------------------------- inside an Instagram download


def instagram_with_threads(path: Path, world: ThreadsExportWorld | None = None) -> Path:
    return write_export(path, world or make_world(), inside_instagram=True)


def test_detection_instagram_with_threads_is_both_and_alone_each_is_itself(tmp_path):
    both = instagram_with_threads(tmp_path / "instagram-roofcam.studio-2026-01-01-x.zip")
    plain = build_instagram_export(tmp_path / "instagram-plain.zip", posts=1, followers=1, following=1)
    with open_export(both) as source:
        assert detect_platforms(source) == ["instagram", "threads"]
    with open_export(plain) as source:
        assert detect_platforms(source) == ["instagram"]


def test_one_cli_import_fills_both_accounts_and_naming_one_imports_only_it(tmp_path):
    world = make_world()
    path = instagram_with_threads(tmp_path / "in" / "instagram-roofcam.studio-2026-01-01-AbCd.zip", world)
    archive_dir = tmp_path / "archive"

    done = run_cli(["import", str(path), "--archive", str(archive_dir)], timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"instagram:main ← {path.name}: ok" in done.stdout and f"threads:main ← {path.name}: ok" in done.stdout
    assert "threads/" not in done.stdout          # no Threads file reported "not read" by Instagram
    assert "429" not in done.stdout               # nor the Threads media at the root
    archive = Archive(archive_dir)
    try:
        db = archive.db
        assert rows(db, "SELECT account_id, username FROM accounts ORDER BY account_id") == [
            ("instagram:main", "roofcam.studio"), (ACCOUNT, "roofcam.studio")]
        assert one(db, "SELECT count(*) FROM posts WHERE account_id=?", ACCOUNT) == len(world.posts)
        assert one(db, "SELECT count(*) FROM posts WHERE account_id='instagram:main'") == 2
        assert one(db, "SELECT count(*) FROM post_media WHERE post_id IN (SELECT post_id FROM posts "
                       "WHERE account_id=?) AND status='ok'", ACCOUNT) == sum(len(p.media) for p in world.posts)
        assert sorted(rows(db, "SELECT account_id, kind, member_count FROM snapshots")) == [
            ("instagram:main", "followers", 2), ("instagram:main", "following", 1),
            (ACCOUNT, "followers", 3), (ACCOUNT, "following", 1)]
        assert sorted(rows(db, "SELECT account_id FROM imports")) == [("instagram:main",), (ACCOUNT,)]
        assert sorted(rows(db, "SELECT account_id, kind, status FROM runs")) == [
            ("instagram:main", "import", "ok"), (ACCOUNT, "import", "ok")]
        for (message,) in rows(db, "SELECT message FROM runs"):
            assert "threads/" not in (message or "") and "429" not in (message or "")
    finally:
        archive.close()

    # Naming Instagram imports only Instagram, and says what else the file holds.
    only = tmp_path / "only-instagram"
    named = run_cli(["import", "instagram", str(path), "--archive", str(only)], timeout=120)
    assert named.returncode == 0, named.stdout + named.stderr
    assert "also holds Threads data (in its threads/ folder)" in named.stdout
    assert f"archiver import threads {path}" in named.stdout
    archive = Archive(only)
    try:
        assert rows(archive.db, "SELECT DISTINCT account_id FROM posts") == [("instagram:main",)]
    finally:
        archive.close()


def test_the_inbox_fills_both_accounts_from_one_file(tmp_path):
    from archiver.ops.inbox import InboxState, scan_inbox

    config = Config(path=None, inbox=InboxConfig(tmp_path / "inbox", interval=60, settle=1))
    ws = Workspace(Archive(tmp_path / "archive"), config, open_secret_store("memory"))
    try:
        (tmp_path / "inbox").mkdir()
        path = instagram_with_threads(tmp_path / "inbox" / "instagram-roofcam.studio-2026-01-01-x.zip")
        state = InboxState()
        scan_inbox(ws, state, now=1_000.0, transport=httpx.MockTransport(refuse_every_request))
        [outcome] = scan_inbox(ws, state, now=1_002.0, transport=httpx.MockTransport(refuse_every_request))
        assert outcome["status"] == "imported", outcome
        assert "imported into instagram:main" in outcome["message"] and "imported into threads:main" in outcome["message"]
        assert not path.exists()
        assert sorted(rows(ws.archive.db, "SELECT account_id FROM imports")) == [("instagram:main",), (ACCOUNT,)]
    finally:
        ws.archive.close()


def test_naming_threads_for_an_instagram_download_imports_its_threads_part_only(tmp_path):
    path = instagram_with_threads(tmp_path / "instagram-roofcam.studio-2026-01-01-x.zip")
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    try:
        result = run_import(ws, path, platform="threads")
        assert result["status"] == "ok" and "parts" not in result
        assert rows(ws.archive.db, "SELECT DISTINCT account_id FROM posts") == [(ACCOUNT,)]
        assert "not_read" not in result          # Instagram's files are Instagram's, not Threads' unread ones
        assert "also holds Instagram data" in result["message"]
        # The Instagram part later, by the plain command: Threads' part is already in.
        later = run_import(ws, path)
        assert [p["status"] for p in later["parts"]] == ["ok", "skipped"] and later["status"] == "ok"
        assert "threads/" not in later["parts"][0].get("message", "")
        again = run_import(ws, path)
        assert [p["status"] for p in again["parts"]] == ["skipped", "skipped"] and again["status"] == "skipped"
    finally:
        ws.archive.close()
    shutil.rmtree(tmp_path / "archive")
