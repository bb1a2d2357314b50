"""Visibility has one vocabulary across platforms (public / followers / friends / private /
unlisted); each platform's words go through records.visibility with its connector's table,
and an archive written before keeps its rows, in the new words."""

from __future__ import annotations

from archive_rows import rows

from archiver.records import VISIBILITIES, visibility


def test_the_core_helper_maps_words_and_refuses_unknown_ones():
    assert visibility("Public") == "public" and visibility(" UNLISTED ") == "unlisted"
    assert visibility("only_you", {"only you": "private"}) == "private"
    assert visibility("private", {"private": "followers"}) == "followers"   # the platform's table wins
    assert visibility("whoever") is None and visibility(None) is None and visibility("") is None
    assert set(VISIBILITIES) == {"public", "followers", "friends", "private", "unlisted"}


def test_every_connector_speaks_the_one_vocabulary():
    from archiver_connectors.mastodon.api import post_from_status
    from archiver_connectors.mastodon.export import visibility_of
    from archiver_connectors.tiktok.export import post_from_item
    from archiver_connectors.youtube.takeout import post_from_row

    def status(word):
        return post_from_status({"id": "1", "created_at": "2026-01-01T00:00:00Z", "content": "<p>hi</p>",
                                 "visibility": word}, instance="social.example").visibility

    assert [status(w) for w in ("public", "unlisted", "private", "direct")] == \
        ["public", "unlisted", "followers", "private"]
    actor = "https://social.example/users/alice"
    assert visibility_of({"to": [f"{actor}/followers"], "cc": []}, actor) == "followers"
    assert visibility_of({"to": ["https://else.example/users/bob"], "cc": []}, actor) == "private"
    tiktok = post_from_item({"Date": "2026-01-01 00:00:00", "Link": "https://www.tiktokv.com/share/video/7/",
                             "WhoCanView": "Only You"})
    assert tiktok.visibility == "private" and tiktok.raw["WhoCanView"] == "Only You"
    youtube = post_from_row({"video_id": "abc", "privacy": "Unlisted"}, {"Privacy": "Unlisted"})
    assert youtube.visibility == "unlisted"


def test_the_migration_rewrites_existing_rows_in_the_vocabulary(tmp_path):
    from sqlite_utils import Database

    from archiver.archive import Archive
    from archiver.archive.schema import migrations

    path = tmp_path / "old" / "archive.db"
    path.parent.mkdir()
    db = Database(path)
    migrations.apply(db, stop_before="m008_small_promises_visibility")
    for platform, post_id, word in [("tiktok", "1", "Only You"), ("tiktok", "2", "Everyone"),
                                    ("mastodon", "3", "private"), ("mastodon", "4", "direct"),
                                    ("youtube", "5", "unlisted")]:
        db.execute("INSERT INTO posts (platform, post_id, account_id, visibility, first_seen_at, last_seen_at) "
                   "VALUES (?,?,?,?,'x','x')", [platform, post_id, f"{platform}:main", word])
    db.execute("INSERT INTO post_versions (platform, post_id, replaced_at, visibility) VALUES ('mastodon','3','t','private')")
    db.conn.commit()
    db.close()
    upgraded = Archive(path.parent)
    assert rows(upgraded.db, "SELECT post_id, visibility FROM posts ORDER BY post_id") == [
        ("1", "private"), ("2", "public"), ("3", "followers"), ("4", "private"), ("5", "unlisted")]
    assert rows(upgraded.db, "SELECT visibility FROM post_versions") == [("followers",)]
    upgraded.close()


def _archive_before_the_visibility_migration(folder):
    from sqlite_utils import Database

    from archiver.archive.schema import migrations

    folder.mkdir()
    db = Database(folder / "archive.db")
    migrations.apply(db, stop_before="m008_small_promises_visibility")
    db.execute("INSERT INTO posts (platform, post_id, account_id, visibility, first_seen_at, last_seen_at) "
               "VALUES ('mastodon', '3', 'mastodon:main', 'private', 'x', 'x')")
    db.conn.commit()
    db.close()


def test_an_older_archive_is_upgraded_by_the_command_line_with_the_installed_connectors(tmp_path):
    """The archive layer imports no connector module; the platforms' own upgrades still run
    when a command opens an older archive (the connectors are found by entry point)."""
    from cli_world import run_cli

    folder = tmp_path / "old"
    _archive_before_the_visibility_migration(folder)
    result = run_cli(["status", "--archive", str(folder)])
    assert result.returncode == 0, result.describe()
    from archiver.archive import Archive

    upgraded = Archive(folder)
    assert rows(upgraded.db, "SELECT post_id, visibility FROM posts") == [("3", "followers")]
    upgraded.close()


def test_an_upgrade_loads_the_connectors_only_when_the_archive_holds_rows(tmp_path, monkeypatch):
    """A library user's plain Archive(folder) upgrades an older archive with the installed
    connectors (found by entry point, archiver.plugins); a new, empty archive loads none."""
    import archiver.plugins as plugins
    from archiver.archive import Archive
    from archiver.archive.schema import migrations

    folder = tmp_path / "old"
    _archive_before_the_visibility_migration(folder)
    upgraded = Archive(folder)
    assert rows(upgraded.db, "SELECT visibility FROM posts") == [("followers",)]
    upgraded.close()

    def no_plugins(*args, **kwargs):
        raise AssertionError("a new archive must not load any connector")

    monkeypatch.setattr(plugins, "load", no_plugins)
    fresh = Archive(tmp_path / "new")
    assert not migrations.pending(fresh.db)
    fresh.close()
