"""Google Takeout (YouTube) imported end to end into a real archive.

The exports are written by connectors/archiver_connectors/youtube/sim/takeout.py from a world that
``make_world`` rebuilds for the same seed, so every expectation is derived from that
world, never hard-coded, and checked against the SQLite file and the media folder.

The importer runs through the real YouTube connector, sync runner, writer and media
store (on a network that fails the test at any request); the tests at the end go through
``archiver.sync.jobs.run_import`` and the real ``archiver import`` command.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from archive_rows import one, rows
from archiver.archive import Archive
from archiver.archive.writer import ArchiveWriter
from archiver.config import AccountConfig, Config
from archiver.sync.imports import open_export
from archiver.records import Post, iso_utc
from archiver.secrets import open_secret_store
from archiver.sync.runner import Runner
from archiver_connectors.youtube import YouTubeConnector
from archiver_connectors.youtube.sim.takeout import (
    COMMENT_COLUMNS, LOCALES, build_takeout, make_world, takeout_files, video_file_names)
from archiver_connectors.youtube.takeout import (
    comment_text, find_takeout, match_video_files, title_key, _Upload)

ACCOUNT_ID = "youtube:main"


# --------------------------------------------------------------------------- harness


def refuse_every_request(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a Takeout import downloads nothing, its files are inside the export "
                         f"(it asked for {request.url})")


def import_takeout(archive: Archive, path: Path) -> dict:
    """One import run of ``path`` (a zip part or an extracted folder), as run_import does it:
    the real connector, on a network that fails the test at any request."""
    connector = YouTubeConnector(AccountConfig(name="main", platform="youtube"), open_secret_store("memory"),
                                 transport=httpx.MockTransport(refuse_every_request))
    with open_export(path) as source:
        return Runner(archive, connector).run(
            lambda ctx: connector.import_pages(source, ctx), kind="import", mode=Path(path).name,
            source=f"export:{source.sha256}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump(db, skip_columns=("last_seen_at", "updated_at"), skip_tables=("runs",)) -> dict[str, list]:
    """Every row of every table, without the columns a re-run may legitimately touch."""
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    result = {}
    for table in tables:
        if table in skip_tables or "_fts" in table:  # FTS shadow tables: an index re-written on update
            continue
        cursor = db.execute(f"SELECT * FROM [{table}]")
        names = [c[0] for c in cursor.description]
        keep = [i for i, n in enumerate(names) if n not in skip_columns]
        result[table] = sorted(repr(tuple(r[i] for i in keep)) for r in cursor.fetchall())
    return result


def expected_created_at(video) -> str:
    return iso_utc(video.published_at if video.privacy != "Private" else video.created_at)


def assert_world_imported(archive: Archive, world, *, sources: list[str], with_files: bool = True) -> None:
    """The archive holds exactly the world: channel, uploads with files, comments, subscriptions."""
    db = archive.db
    # The channel.
    assert rows(db, "SELECT account_id, native_id, display_name, url FROM accounts") == [
        (ACCOUNT_ID, world.channel.channel_id, world.channel.title,
         f"https://www.youtube.com/channel/{world.channel.channel_id}")]
    # Uploads: keyed by the real video id, every field from the CSV.
    posts = {r[0]: r[1:] for r in rows(db, "SELECT post_id, title, text, visibility, created_at, duration, url, "
                                           "kind, sources FROM posts")}
    assert set(posts) == {v.video_id for v in world.videos}
    for video in world.videos:
        title, text, visibility, created_at, duration, url, kind, post_sources = posts[video.video_id]
        assert (title, text, visibility) == (video.title, video.description, video.privacy.lower())
        assert created_at == expected_created_at(video)
        assert duration == round(video.duration_ms / 1000)
        assert (url, kind) == (f"https://www.youtube.com/watch?v={video.video_id}", "video")
        assert sorted(json.loads(post_sources)) == sorted(sources)
    # The video files: stored by content hash, linked to the right video.
    media = {r[0]: r[1:] for r in rows(db, "SELECT post_id, role, position, status, sha256, source_url FROM post_media")}
    if with_files:
        names = video_file_names(world)
        assert set(media) == {v.video_id for v in world.videos}
        for video in world.videos:
            role, position, status, sha, source_url = media[video.video_id]
            assert (role, position, status, sha) == ("video", 0, "ok", sha256(video.content))
            assert unquote(source_url).endswith("/" + names[video.video_id].rsplit("/", 1)[1])
            stored = archive.media_root / one(db, "SELECT path FROM media WHERE sha256=?", sha)
            assert sha256(stored.read_bytes()) == sha
    # Comments: the user's own, on their videos, threaded.
    comments = {r[0]: r[1:] for r in rows(db, "SELECT comment_id, post_id, parent_id, author_id, by_owner, text, "
                                              "created_at FROM comments")}
    assert set(comments) == {c.comment_id for c in world.comments}
    for comment in world.comments:
        assert comments[comment.comment_id] == (
            comment.video_id, comment.parent_id, world.channel.channel_id, 1, comment.text, iso_utc(comment.created_at))
    # Subscriptions: the channels the user follows, as one complete snapshot.
    assert rows(db, "SELECT kind, member_count, complete FROM snapshots") == [
        ("following", len(world.subscriptions), 1)]
    assert {r[0] for r in rows(db, "SELECT person_id FROM follows WHERE kind='following' AND ended_at IS NULL")} == {
        s.channel_id for s in world.subscriptions}
    for channel in world.subscriptions:
        assert rows(db, "SELECT display_name, url FROM people WHERE platform='youtube' AND person_id=?",
                    channel.channel_id) == [(channel.title, f"http://www.youtube.com/channel/{channel.channel_id}")]


# --------------------------------------------------------------------------- every layout

CASES = [
    # locale, comments column order, CSV encoding, comment text form, zipped
    ("en", "a", "utf-8", "old", True),
    ("en", "b", "utf-8", "new", False),
    ("en", "c", "utf-8-sig", "mixed", True),
    ("de", "b", "utf-8-sig", "new", True),
    ("de", "a", "utf-16", "old", False),
    ("fr", "b", "utf-16", "mixed", True),
    ("es", "a", "utf-8", "plain", True),
]


@pytest.mark.parametrize("locale,order,encoding,text_form,as_zip", CASES)
def test_every_layout_imports_channel_uploads_files_comments_and_subscriptions(
        tmp_path, archive, locale, order, encoding, text_form, as_zip):
    options = dict(videos=4, comments=7, subscriptions=5, seed=11)
    world = make_world(**options)
    [path] = build_takeout(tmp_path / "inputs", locale=locale, csv_order=order, encoding=encoding,
                           comment_text=text_form, as_zip=as_zip, **options)
    # The knobs really changed the files (or this test would prove nothing).
    data, _ = takeout_files(world, locale=locale, csv_order=order, encoding=encoding, comment_text=text_form)
    comments_csv = data[f"Takeout/{LOCALES[locale]['root']}/{LOCALES[locale]['comments']}"]
    decoded = comments_csv.decode(encoding)
    assert decoded.lstrip("\ufeff").startswith(",".join(COMMENT_COLUMNS[order]))
    if encoding == "utf-8-sig":
        assert comments_csv.startswith(b"\xef\xbb\xbf")
    if text_form in ("old", "mixed"):
        assert "takeoutSegments" in decoded
    if text_form in ("new", "mixed"):
        assert '"{""text"":' in decoded

    with open_export(path) as source:
        assert find_takeout(source) == f"Takeout/{LOCALES[locale]['root']}"
        export_source = f"export:{source.sha256}"
    result = import_takeout(archive, path)

    assert result["status"] == "ok", result
    assert result["errors"] == []
    assert_world_imported(archive, world, sources=[export_source])
    # The watch history and the playlist CSV (which has a "Video ID" column) were left alone.
    assert one(archive.db, "SELECT count(*) FROM posts") == len(world.videos)


def test_two_uploads_with_one_title_get_their_own_files(tmp_path, archive):
    world = make_world(videos=3, comments=0, subscriptions=0, seed=4, duplicate_titles=True)
    assert world.videos[0].title == world.videos[1].title
    names = video_file_names(world)
    assert {names[world.videos[0].video_id].endswith(".mp4"), names[world.videos[1].video_id].endswith("(1).mp4")}
    [path] = build_takeout(tmp_path / "inputs", videos=3, comments=0, subscriptions=0, seed=4,
                           duplicate_titles=True)

    assert import_takeout(archive, path)["status"] == "ok"

    for video in world.videos:
        assert one(archive.db, "SELECT sha256 FROM post_media WHERE post_id=?", video.video_id) == sha256(video.content)


def test_file_names_are_matched_to_titles_loosely_but_never_guessed():
    uploads = [_Upload("id-sunset", "Sunset: the roof", "2024-01-01"), _Upload("id-rain", "Rain?", "2024-01-02"),
               _Upload("abcdefghijk", "Unrelated title", "2024-01-03")]
    matched, unmatched = match_video_files(
        ["v/Sunset_ the roof.mp4", "v/RAIN_.webm", "v/abcdefghijk.mp4", "v/Something else.mp4"], uploads)
    assert matched == {"id-sunset": "v/Sunset_ the roof.mp4", "id-rain": "v/RAIN_.webm",
                       "abcdefghijk": "v/abcdefghijk.mp4"}
    assert unmatched == ["v/Something else.mp4"]
    assert title_key("Café à l'aube") == title_key("CAFÉ À L_AUBE")


# --------------------------------------------------------------------------- comment text


@pytest.mark.parametrize("cell,text", [
    ('{"takeoutSegments":[{"text":"Hello "},{"text":"world"}]}', "Hello world"),   # old form
    ('{"text":"From our roof!"}', "From our roof!"),                               # new form, one segment
    ('{"text":"line one"},{"text":"\\n"},{"text":"line two"}', "line one\nline two"),  # new form: not JSON
    ("just plain text, with a comma", "just plain text, with a comma"),
    ("{curly} but not JSON", "{curly} but not JSON"),
])
def test_comment_text_in_every_form(cell, text):
    assert comment_text(cell) == text


# --------------------------------------------------------------------------- zip parts


def test_zip_parts_imported_one_by_one_in_either_order_give_one_row_per_video(tmp_path, archive):
    options = dict(videos=4, comments=3, subscriptions=2, seed=21)
    world = make_world(**options)
    part1, part2 = build_takeout(tmp_path / "inputs", parts=2, **options)
    with zipfile.ZipFile(part2) as second:
        in_part2 = [n for n in second.namelist()]
    assert in_part2 and all(n.endswith(".mp4") for n in in_part2)  # files only: no CSV in part 2

    # Part 2 first: its files cannot be matched yet. Nothing is guessed; the run says why,
    # and (failed) it stays importable.
    early = import_takeout(archive, part2)
    assert early["status"] == "failed"
    assert str(part2) in early["message"] and "videos.csv" in early["message"]
    for name in in_part2:
        assert name.rsplit("/", 1)[1] in early["message"]
    assert one(archive.db, "SELECT count(*) FROM posts") == 0
    assert one(archive.db, "SELECT count(*) FROM post_media") == 0

    # Part 1: every upload, with the files it holds; the others are holes that say so.
    assert import_takeout(archive, part1)["status"] == "ok"
    assert one(archive.db, "SELECT count(*) FROM posts") == len(world.videos)
    assert rows(archive.db, "SELECT status, count(*) FROM post_media GROUP BY status ORDER BY 1") == [
        ("failed", len(in_part2)), ("ok", len(world.videos) - len(in_part2))]
    assert all(error.startswith("not in the export")
               for (error,) in rows(archive.db, "SELECT error FROM post_media WHERE status='failed'"))

    # Part 2 again: its files find their videos through the archive.
    again = import_takeout(archive, part2)
    assert again["status"] == "ok", again
    with open_export(part1) as s1, open_export(part2) as s2:
        part1_source = f"export:{s1.sha256}"
        sources = {v.video_id: [f"export:{s1.sha256}"] for v in world.videos}
        names = video_file_names(world)
        for video in world.videos:
            if names[video.video_id] in in_part2:
                sources[video.video_id].append(f"export:{s2.sha256}")
    db = archive.db
    assert one(db, "SELECT count(*) FROM posts WHERE post_id LIKE 'provisional:%'") == 0
    for video in world.videos:
        assert one(db, "SELECT sha256 FROM post_media WHERE post_id=? AND role='video'", video.video_id) \
            == sha256(video.content)
        assert sorted(json.loads(one(db, "SELECT sources FROM posts WHERE post_id=?", video.video_id))) \
            == sorted(sources[video.video_id])
        # The file-only record of part 2 kept part 1's CSV row: each export has its payload.
        raw = json.loads(one(db, "SELECT raw FROM posts WHERE post_id=?", video.video_id))
        assert raw[part1_source]["Video ID"] == video.video_id
    assert one(db, "SELECT count(*) FROM post_versions") == 0


def test_an_extracted_folder_of_all_parts_is_one_export(tmp_path, archive):
    options = dict(videos=3, comments=2, subscriptions=2, seed=5)
    world = make_world(**options)
    folders = build_takeout(tmp_path / "inputs", parts=2, as_zip=False, **options)
    merged = tmp_path / "merged"
    for folder in folders:  # what extracting every part into one folder gives
        for file in folder.rglob("*"):
            if file.is_file():
                target = merged / file.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(file.read_bytes())

    result = import_takeout(archive, merged)

    assert result["status"] == "ok", result
    with open_export(merged) as source:
        assert_world_imported(archive, world, sources=[f"export:{source.sha256}"])


# --------------------------------------------------------------------------- API and Takeout


def test_an_upload_seen_through_the_api_and_in_takeout_is_one_row(tmp_path, archive):
    world = make_world(videos=3, comments=2, subscriptions=1, seed=8)
    api_video = world.videos[0]
    # What the API run wrote (its title is newer than the Takeout's: the API wins).
    writer = ArchiveWriter(archive.db, platform="youtube", account_id=ACCOUNT_ID, source="api")
    with archive.writing():
        writer.write_post(Post(native_id=api_video.video_id, created_at=iso_utc(api_video.published_at),
                               title="Renamed since", visibility="public", view_count=40213,
                               url=f"https://www.youtube.com/watch?v={api_video.video_id}",
                               raw={"id": api_video.video_id}))
    [path] = build_takeout(tmp_path / "inputs", world=world)

    assert import_takeout(archive, path)["status"] == "ok"

    db = archive.db
    assert one(db, "SELECT count(*) FROM posts") == len(world.videos)
    title, view_count, sources = db.execute(
        "SELECT title, view_count, sources FROM posts WHERE post_id=?", [api_video.video_id]).fetchone()
    assert (title, view_count) == ("Renamed since", 40213)
    assert json.loads(sources)[0] == "api" and len(json.loads(sources)) == 2
    # Its file was matched by the Takeout title and linked to the API's row.
    assert one(db, "SELECT sha256 FROM post_media WHERE post_id=?", api_video.video_id) == sha256(api_video.content)


def test_a_file_only_part_matches_uploads_the_api_already_archived(tmp_path, archive):
    world = make_world(videos=2, comments=0, subscriptions=0, seed=9)
    writer = ArchiveWriter(archive.db, platform="youtube", account_id=ACCOUNT_ID, source="api")
    with archive.writing():
        for video in world.videos:
            writer.write_post(Post(native_id=video.video_id, created_at=iso_utc(video.published_at),
                                   title=video.title, raw={"id": video.video_id}))
    _, part2 = build_takeout(tmp_path / "inputs", parts=2, world=world)

    assert import_takeout(archive, part2)["status"] == "ok"

    linked = rows(archive.db, "SELECT post_id, sha256 FROM post_media")
    assert len(linked) == 1
    video = next(v for v in world.videos if v.video_id == linked[0][0])
    assert linked[0][1] == sha256(video.content)
    assert one(archive.db, "SELECT count(*) FROM posts") == len(world.videos)


# --------------------------------------------------------------------------- re-imports, bad rows


def test_reimporting_changes_nothing(tmp_path, archive):
    [path] = build_takeout(tmp_path / "inputs", videos=3, comments=4, subscriptions=3, seed=2, as_zip=False)
    assert import_takeout(archive, path)["status"] == "ok"
    before = dump(archive.db)
    media_files = sorted(p.name for p in archive.media_root.rglob("*") if p.is_file())

    again = import_takeout(archive, path)

    assert again["status"] == "ok", again
    counts = again["counts"]
    assert {k: v for k, v in counts.items() if v and k not in ("profile", "following_seen")} == {}, counts
    assert dump(archive.db) == before
    assert sorted(p.name for p in archive.media_root.rglob("*") if p.is_file()) == media_files


def test_bad_rows_are_reported_and_skipped(tmp_path, archive):
    options = dict(videos=3, comments=4, subscriptions=3, seed=6)
    world = make_world(**options)
    [path] = build_takeout(tmp_path / "inputs", bad_rows=True, **options)

    result = import_takeout(archive, path)

    assert result["status"] == "ok", result
    assert_world_imported(archive, world, sources=[f"export:{hashlib.sha256(path.read_bytes()).hexdigest()}"])
    errors = result["errors"]
    described = [f"{e['item']}: {e['error']}" for e in errors]
    assert len(errors) == 4, described
    assert any("no Video ID" in d and "videos.csv" in d for d in described)
    assert any("yesterday-ish" in d and "BADSTAMP001" in d for d in described)
    assert any("3 fields where the header has 7" in d and "comments.csv" in d for d in described)
    assert any("no Channel Id" in d and "subscriptions.csv" in d for d in described)
    # Recorded in the run, for `archiver status`.
    assert len(json.loads(one(archive.db, "SELECT errors FROM runs"))) == 4


# --------------------------------------------------------------------------- hostile and unknown files


def zip_with(path: Path, entries: list) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive_file:
        for info, payload in entries:
            archive_file.writestr(info, payload)
    return path


def symlink_entry(name: str, target: str):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}


def test_a_hostile_zip_imports_what_is_safe_and_writes_nothing_outside(tmp_path, archive):
    world = make_world(videos=2, comments=2, subscriptions=2, seed=3)
    data, videos = takeout_files(world)
    root = "Takeout/YouTube and YouTube Music"
    path = zip_with(tmp_path / "takeout.zip", [
        *data.items(), *videos.items(),
        ("../evil.csv", b"Channel Id,Channel Url,Channel Title\n"),
        (f"{root}/../../../evil-nested.mp4", b"pwned"),
        ("/tmp/evil-absolute-youtube.csv", b"pwned"),
        symlink_entry(f"{root}/videos/passwd.mp4", "/etc/passwd"),
    ])

    result = import_takeout(archive, path)

    assert result["status"] == "ok", result
    assert_world_imported(archive, world, sources=[f"export:{hashlib.sha256(path.read_bytes()).hexdigest()}"])
    assert not list(tmp_path.parent.glob("evil*")) and not Path("/tmp/evil-absolute-youtube.csv").exists()
    assert files_under(tmp_path) - {"takeout.zip"} == {n for n in files_under(tmp_path) if n.startswith("archive/")}
    assert "/etc/passwd" not in json.dumps(dump(archive.db))


def test_a_zip_bomb_fails_with_a_message_naming_the_file_and_writes_nothing(tmp_path, archive):
    root = "Takeout/YouTube and YouTube Music"
    path = tmp_path / "takeout.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        with bomb.open(f"{root}/video metadata/videos.csv", "w", force_zip64=True) as entry:
            entry.write(b"Video ID,Video Title (Original)\n")
            for _ in range(64):
                entry.write(b"\0" * 2**20)

    result = import_takeout(archive, path)

    assert result["status"] == "failed"
    assert str(path) in result["message"] and "zip bomb" in result["message"] and "videos.csv" in result["message"]
    assert [one(archive.db, f"SELECT count(*) FROM {t}") for t in ("posts", "comments", "people", "media")] \
        == [0, 0, 0, 0]


def test_an_unknown_layout_is_a_clear_error_naming_the_file(tmp_path, archive):
    path = zip_with(tmp_path / "takeout.zip", [
        ("Takeout/YouTube and YouTube Music/brand new/things.csv", b"Thing,Other thing\n1,2\n")])

    result = import_takeout(archive, path)

    assert result["status"] == "failed"
    assert str(path) in result["message"]
    assert "brand new/things.csv" in result["message"] and "please report it" in result["message"]
    assert one(archive.db, "SELECT count(*) FROM posts") == 0


# --------------------------------------------------------------------------- detection


def test_takeout_is_not_mistaken_for_tiktok_or_instagram_and_vice_versa(tmp_path):
    from archiver_connectors.tiktok import TikTokConnector
    from archiver_connectors.tiktok.sim.fake import FakeTikTok

    [takeout_zip] = build_takeout(tmp_path / "yt", videos=2, comments=1, subscriptions=1)
    [takeout_folder] = build_takeout(tmp_path / "yt-folder", videos=1, as_zip=False)
    tiktok_zip = tmp_path / "TikTok_Data.zip"
    tiktok_zip.write_bytes(FakeTikTok().export_zip())
    other_google = zip_with(tmp_path / "drive-takeout.zip", [("Takeout/Drive/notes.txt", b"hi"),
                                                               ("Takeout/archive_browser.html", b"<html>")])
    from archiver_connectors.instagram import export as instagram_export
    from archiver_connectors.instagram.sim import export as instagram
    instagram_zip = instagram.build_instagram_export(tmp_path / "instagram.zip")

    for path in (takeout_zip, takeout_folder):
        with open_export(path) as source:
            assert find_takeout(source)
            assert not TikTokConnector.detect_export(source)
            assert instagram_export.find_export(source) is None
    for path in (tiktok_zip, instagram_zip, other_google):
        with open_export(path) as source:
            assert find_takeout(source) is None, path


# --------------------------------------------------------------------------- the real job and CLI


def test_run_import_detects_the_takeout_and_a_second_import_is_skipped(tmp_path):
    from archiver.sync.jobs import Workspace, run_import
    from archiver.secrets import open_secret_store

    options = dict(videos=3, comments=3, subscriptions=2, seed=12)
    world = make_world(**options)
    [path] = build_takeout(tmp_path / "inputs", locale="de", csv_order="a", **options)
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None, accounts=[]), open_secret_store("memory"))
    try:
        result = run_import(ws, path)
        assert result["status"] == "ok", result
        assert (result["platform"], result["account"]) == ("youtube", ACCOUNT_ID)
        assert_world_imported(ws.archive, world, sources=[f"export:{hashlib.sha256(path.read_bytes()).hexdigest()}"])
        before = dump(ws.archive.db, skip_columns=(), skip_tables=())
        again = run_import(ws, path)
        assert again["status"] == "skipped"
        assert dump(ws.archive.db, skip_columns=(), skip_tables=()) == before
    finally:
        ws.archive.close()


def archiver_command() -> list[str]:
    script = Path(sys.executable).parent / "archiver"
    return [str(script)] if script.exists() else [sys.executable, "-m", "archiver.cli"]


def test_cli_imports_a_takeout_zip(tmp_path):
    options = dict(videos=2, comments=2, subscriptions=2, seed=13)
    world = make_world(**options)
    [path] = build_takeout(tmp_path / "inputs", encoding="utf-8-sig", **options)
    work = tmp_path / "cwd"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env.update(ARCHIVER_SECRETS="env", ARCHIVER_STATE_DIR=str(tmp_path / "state"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")

    result = subprocess.run([*archiver_command(), "import", str(path), "--archive", str(tmp_path / "archive")],
                            capture_output=True, text=True, env=env, cwd=work, timeout=120)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    archive = Archive(tmp_path / "archive")
    try:
        assert_world_imported(archive, world, sources=[f"export:{hashlib.sha256(path.read_bytes()).hexdigest()}"])
    finally:
        archive.close()
    assert files_under(work) == set()
