"""The writer's smaller promises, on a real archive file: an earlier version is stored
once, each export keeps its own payload, an export post without id finds its API twin
within a small time tolerance."""

from __future__ import annotations

from archiver.archive.writer import ArchiveWriter
from archiver.records import Post, PostVersion

from archive_rows import rows

def write(archive, source: str, now: str, *posts: Post, platform: str = "mastodon") -> ArchiveWriter:
    with archive.writing() as db:
        writer = ArchiveWriter(db, platform=platform, account_id=f"{platform}:main", source=source, now=now)
        for post in posts:
            writer.write_post(post)
    return writer


def status(text: str, history: list[PostVersion] = (), **fields) -> Post:
    values = dict(native_id="110", created_at="2026-03-01T10:00:00Z", kind="text", text=text,
                  visibility="public", history=list(history), raw={"id": "110", "content": text})
    values.update(fields)
    return Post(**values)


def test_an_edit_seen_between_runs_with_the_platforms_history_is_stored_once(archive):
    write(archive, "api", "2026-03-02T00:00:00Z", status("first words"))
    # Edited on the platform on March 3rd; the next run sees the new text and the history.
    write(archive, "api", "2026-03-05T00:00:00Z",
          status("second words", [PostVersion(replaced_at="2026-03-03T09:00:00Z", text="first words")]))
    versions = rows(archive.db, "SELECT replaced_at, text FROM post_versions")
    assert versions == [("2026-03-03T09:00:00Z", "first words")]


def test_a_version_noticed_before_its_history_arrived_is_not_stored_again(archive):
    write(archive, "api", "2026-03-02T00:00:00Z", status("first words"))
    # A run sees the edit but not its history (e.g. the history call was not made) ...
    write(archive, "api", "2026-03-05T00:00:00Z", status("second words"))
    # ... and a later (full) run brings the history: the version it names is the same one.
    write(archive, "api", "2026-03-09T00:00:00Z",
          status("second words", [PostVersion(replaced_at="2026-03-03T09:00:00Z", text="first words")]))
    versions = rows(archive.db, "SELECT replaced_at, text FROM post_versions")
    assert versions == [("2026-03-03T09:00:00Z", "first words")]


def test_a_text_that_came_back_is_two_versions(archive):
    """A → B → A → C: "A" really was replaced twice; both stay."""
    history = [PostVersion(replaced_at="2026-03-03T00:00:00Z", text="A"),
               PostVersion(replaced_at="2026-03-04T00:00:00Z", text="B"),
               PostVersion(replaced_at="2026-03-05T00:00:00Z", text="A")]
    write(archive, "api", "2026-03-06T00:00:00Z", status("C", history))
    write(archive, "api", "2026-03-07T00:00:00Z", status("C", history))
    assert [t for _, t in rows(archive.db, "SELECT replaced_at, text FROM post_versions ORDER BY 1")] == ["A", "B", "A"]


def test_each_export_keeps_its_own_payload_beside_the_apis(archive):
    first, second = "export:" + "ab" * 32, "export:" + "cd" * 32
    write(archive, "api", "2026-03-02T00:00:00Z", status("words", raw={"id": "110", "from": "api"}))
    write(archive, first, "2026-03-03T00:00:00Z", status("words", raw={"id": "110", "from": "first export"}))
    write(archive, second, "2026-03-04T00:00:00Z", status("words", raw={"id": "110", "from": "second export"}))
    import json

    raw = json.loads(rows(archive.db, "SELECT raw FROM posts")[0][0])
    assert raw == {"api": {"id": "110", "from": "api"}, first: {"id": "110", "from": "first export"},
                   second: {"id": "110", "from": "second export"}}


def test_the_migration_moves_an_old_export_payload_under_its_source(tmp_path):
    """An archive written before m008 has raw {"export": …}: it moves under the newest
    export source the row lists."""
    import json

    from sqlite_utils import Database

    from archiver.archive import Archive
    from archiver.archive.schema import migrations

    path = tmp_path / "old" / "archive.db"
    path.parent.mkdir()
    db = Database(path)
    migrations.apply(db, stop_before="m008_small_promises")
    source = "export:" + "ef" * 32
    db.execute("INSERT INTO posts (platform, post_id, account_id, sources, first_seen_at, last_seen_at, raw) "
               "VALUES ('tiktok', '1', 'tiktok:main', ?, 'x', 'x', ?)",
               [json.dumps(["api", source]), json.dumps({"api": {"a": 1}, "export": {"e": 2}})])
    db.conn.commit()
    db.close()
    upgraded = Archive(path.parent)
    assert json.loads(rows(upgraded.db, "SELECT raw FROM posts")[0][0]) == {"api": {"a": 1}, source: {"e": 2}}
    upgraded.close()


# --------------------------------------------------------------------------- export posts without id


def tiktok_api(native_id: str, created_at: str, title: str) -> Post:
    return Post(native_id=native_id, created_at=created_at, title=title, text=title + " #sky",
                visibility="public", like_count=3, raw={"id": native_id})


def tiktok_export(created_at: str, title: str | None) -> Post:
    return Post(native_id=None, created_at=created_at, title=title, like_count=2, raw={"Date": created_at})


def tiktok_posts(archive) -> list[tuple]:
    return rows(archive.db, "SELECT post_id, created_at FROM posts ORDER BY post_id")


def test_an_export_post_a_few_seconds_off_matches_the_api_post_with_its_caption(archive):
    write(archive, "api", "2026-03-02T00:00:00Z", tiktok_api("7001", "2026-03-01T10:00:00Z", "Sunset"),
          platform="tiktok")
    # The export rounds to the minute and its clock is 40 seconds off.
    write(archive, "export:" + "ab" * 32, "2026-03-03T00:00:00Z", tiktok_export("2026-03-01T10:00:40Z", "Sunset"),
          platform="tiktok")
    assert tiktok_posts(archive) == [("7001", "2026-03-01T10:00:00Z")]


def test_an_api_post_a_few_seconds_off_names_the_provisional_export_post(archive):
    write(archive, "export:" + "ab" * 32, "2026-03-02T00:00:00Z", tiktok_export("2026-03-01T09:59:10Z", "sunset "),
          platform="tiktok")
    writer = write(archive, "api", "2026-03-03T00:00:00Z", tiktok_api("7001", "2026-03-01T10:00:00Z", "Sunset"),
                   platform="tiktok")
    assert writer.counts.get("posts_matched") == 1
    assert tiktok_posts(archive) == [("7001", "2026-03-01T10:00:00Z")]


def test_no_match_without_the_caption_or_beyond_the_tolerance(archive):
    write(archive, "api", "2026-03-02T00:00:00Z", tiktok_api("7001", "2026-03-01T10:00:00Z", "Sunset"),
          platform="tiktok")
    export = "export:" + "ab" * 32
    write(archive, export, "2026-03-03T00:00:00Z",
          tiktok_export("2026-03-01T10:00:30Z", "Another video"),     # close, other caption
          tiktok_export("2026-03-01T10:05:00Z", "Sunset"),            # same caption, 5 minutes off
          platform="tiktok")
    assert tiktok_posts(archive) == [("7001", "2026-03-01T10:00:00Z"),
                                     ("provisional:2026-03-01T10:00:30Z", "2026-03-01T10:00:30Z"),
                                     ("provisional:2026-03-01T10:05:00Z", "2026-03-01T10:05:00Z")]


def test_two_export_posts_a_minute_apart_with_one_caption_stay_two(archive):
    write(archive, "export:" + "ab" * 32, "2026-03-02T00:00:00Z",
          tiktok_export("2026-03-01T10:00:00Z", "📸"), tiktok_export("2026-03-01T10:01:00Z", "📸"), platform="tiktok")
    assert len(tiktok_posts(archive)) == 2


def test_status_lists_the_export_posts_no_api_post_matched(archive):
    from archiver.config import Config
    from archiver.ops.status import account_status, render_status

    write(archive, "api", "2026-03-02T00:00:00Z", tiktok_api("7001", "2026-03-01T10:00:00Z", "Sunset"),
          platform="tiktok")
    write(archive, "export:" + "ab" * 32, "2026-03-03T00:00:00Z",
          tiktok_export("2026-03-01T10:00:20Z", "Sunset"), tiktok_export("2026-02-01T08:00:00Z", "Gone since"),
          platform="tiktok")
    with archive.writing() as db:
        db.execute("INSERT INTO runs (account_id, platform, kind, mode, started_at, status) "
                   "VALUES ('tiktok:main', 'tiktok', 'import', 'TikTok_Data.zip', '2026-03-03T00:00:00Z', 'ok')")
    [row] = account_status(archive, Config(path=None))
    assert row["unmatched_export_posts"] == {"count": 1, "posts": [
        {"post_id": "provisional:2026-02-01T08:00:00Z", "created_at": "2026-02-01T08:00:00Z", "caption": "Gone since"}]}
    text = render_status([row])
    assert "1 export post(s) without id that no API post matched" in text and "'Gone since'" in text
