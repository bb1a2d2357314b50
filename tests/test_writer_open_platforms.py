"""Core pieces the open platforms (Mastodon, Bluesky) need, checked on a real archive:
the platform's own edit history, alt text on files, likes and bookmarks, a file whose
bytes are not the ones the platform named, and a search index that is rewritten only
when text changes."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from archiver.archive import Archive
from archiver.archive.writer import ArchiveWriter, StoredFile
from archiver.config import AccountConfig
from archiver.connector import Connector
from archiver.records import Interaction, MediaRef, Page, Post, PostVersion
from archiver.secrets import open_secret_store
from archiver.sync.runner import Runner

ACCOUNT = "mastodon:main"


def write(archive: Archive, now: str, *records, source: str = "api") -> ArchiveWriter:
    with archive.db.atomic():
        writer = ArchiveWriter(archive.db, platform="mastodon", account_id=ACCOUNT, source=source, now=now)
        for record in records:
            if isinstance(record, Post):
                writer.write_post(record)
            else:
                writer.write_interaction(record)
    return writer


def rows(archive: Archive, sql: str, *params) -> list[tuple]:
    return [tuple(r) for r in archive.db.execute(sql, list(params)).fetchall()]


def test_the_platforms_edit_history_lands_once_as_versions(archive):
    post = Post("110", "2026-01-01T00:00:00Z", kind="text", text="third take",
                history=[PostVersion("2026-01-02T00:00:00Z", text="first take"),
                         PostVersion("2026-01-03T00:00:00Z", text="second take")])
    write(archive, "2026-01-05T00:00:00Z", post)
    write(archive, "2026-01-06T00:00:00Z", post)  # seen again: nothing doubles
    assert rows(archive, "SELECT replaced_at, text FROM post_versions ORDER BY replaced_at") == [
        ("2026-01-02T00:00:00Z", "first take"), ("2026-01-03T00:00:00Z", "second take")]
    assert rows(archive, "SELECT text FROM posts") == [("third take",)]


def test_likes_and_bookmarks_keep_their_first_date_and_merge_sources(archive):
    like = Interaction("like", "https://example.social/@bob/1", created_at="2026-01-01T00:00:00Z")
    write(archive, "2026-01-02T00:00:00Z", like)
    # An export names the same like without a date: one row, the date kept, both sources.
    write(archive, "2026-01-03T00:00:00Z", Interaction("like", "https://example.social/@bob/1"),
          Interaction("bookmark", "https://example.social/@bob/1"), source="export:" + "ab" * 32)
    assert rows(archive, "SELECT kind, target, created_at, sources FROM interactions ORDER BY kind") == [
        ("bookmark", "https://example.social/@bob/1", None, '["export:' + "ab" * 32 + '"]'),
        ("like", "https://example.social/@bob/1", "2026-01-01T00:00:00Z", '["api","export:' + "ab" * 32 + '"]'),
    ]


def test_alt_text_is_stored_with_the_file_and_can_be_added_later(archive):
    stored = StoredFile("ab" * 32, "ab/abab.jpg", "image/jpeg", 10)
    with archive.db.atomic():
        writer = ArchiveWriter(archive.db, platform="mastodon", account_id=ACCOUNT, source="api", now="2026-01-01T00:00:00Z")
        writer.write_post(Post("1", "2026-01-01T00:00:00Z"))
        writer.link_media("1", MediaRef("https://x/1.jpg", "image"), stored, "https://x/1.jpg")
    assert rows(archive, "SELECT description, meta FROM post_media") == [(None, None)]
    with archive.db.atomic():
        writer = ArchiveWriter(archive.db, platform="mastodon", account_id=ACCOUNT, source="api", now="2026-01-02T00:00:00Z")
        writer.link_media("1", MediaRef("https://x/1.jpg", "image", description="A red kite over a field",
                                        meta={"width": 640}), stored, "https://x/1.jpg")
    assert rows(archive, "SELECT description, meta FROM post_media") == [("A red kite over a field", '{"width":640}')]


def test_the_search_index_is_rewritten_only_when_text_changes(archive):
    write(archive, "2026-01-01T00:00:00Z", Post("1", "2026-01-01T00:00:00Z", text="kites over the hill", like_count=1))
    triggers = {name: sql for name, sql in archive.db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='trigger' AND name IN ('posts_au', 'comments_au')")}
    assert set(triggers) == {"posts_au", "comments_au"}
    assert all(" WHEN " in sql for sql in triggers.values())
    # A count change fires no re-index: the FTS shadow table's row for the post is untouched.
    archive.db.execute("CREATE TEMP TABLE fts_writes (n INTEGER)")
    archive.db.execute("INSERT INTO fts_writes VALUES (0)")
    archive.db.execute("CREATE TEMP TRIGGER count_fts AFTER INSERT ON posts_fts_data BEGIN UPDATE fts_writes SET n = n + 1; END")
    write(archive, "2026-01-02T00:00:00Z", Post("1", "2026-01-01T00:00:00Z", text="kites over the hill", like_count=5))
    assert archive.db.execute("SELECT n FROM fts_writes").fetchone()[0] == 0
    write(archive, "2026-01-03T00:00:00Z", Post("1", "2026-01-01T00:00:00Z", text="gliders over the hill", like_count=5))
    assert archive.db.execute("SELECT n FROM fts_writes").fetchone()[0] > 0
    hits = rows(archive, "SELECT rowid FROM posts_fts WHERE posts_fts MATCH 'gliders'")
    assert len(hits) == 1 and not rows(archive, "SELECT rowid FROM posts_fts WHERE posts_fts MATCH 'kites'")


class _OneFileConnector(Connector):
    """Yields one post whose file the platform names by hash."""

    name, title, default_base_url = "mastodon", "Mastodon", "http://127.0.0.1:9"

    def __init__(self, *args, expected: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected = expected

    def pages(self, ctx):
        yield Page("posts", [Post("1", "2026-01-01T00:00:00Z", media=[
            MediaRef("http://127.0.0.1:9/blob/1", "image", sha256=self.expected)])], state={"done": True})


@pytest.mark.parametrize("matches", [True, False])
def test_a_file_whose_bytes_differ_from_the_platforms_hash_is_refused_and_reported(tmp_path, matches):
    body = b"\x89PNG\r\n\x1a\n pretend image"
    expected = hashlib.sha256(body if matches else b"other bytes").hexdigest()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body, headers={"Content-Type": "image/png"}))
    account = AccountConfig(name="main", platform="mastodon")
    connector = _OneFileConnector(account, open_secret_store("memory"), transport=transport, expected=expected)
    archive = Archive(tmp_path / "archive")
    Runner(archive, connector).run(connector.pages, kind="export", mode="incremental")
    media = rows(archive, "SELECT sha256, status, error FROM post_media")
    if matches:
        assert media == [(expected, "ok", None)]
    else:
        assert media[0][0] is None and media[0][1] == "failed" and "does not match" in media[0][2]
        errors = archive.db.execute("SELECT errors FROM runs").fetchone()[0]
        assert "does not match" in errors
    archive.close()


def test_an_exports_copy_of_a_file_never_displaces_the_one_the_slot_holds(archive):
    """The export's encode of a picture differs from the CDN's: kept in media/, but the
    post's slot keeps its file, so imports and API runs do not swap them back and forth."""
    api_file = StoredFile("a" * 64, "aa/api.jpg", "image/jpeg", 10)
    export_file = StoredFile("e" * 64, "ee/export.jpg", "image/jpeg", 12)
    ref = MediaRef("https://cdn.example/1.jpg", "image")

    def link(source: str, stored: StoredFile, now: str) -> None:
        with archive.db.atomic():
            writer = ArchiveWriter(archive.db, platform="instagram", account_id="instagram:ig", source=source, now=now)
            writer.write_post(Post("1", "2026-01-01T00:00:00Z"))
            writer.link_media("1", ref, stored, ref.url)

    link("api", api_file, "2026-01-01T00:00:00Z")
    link("export:" + "ab" * 32, export_file, "2026-01-02T00:00:00Z")
    assert rows(archive, "SELECT sha256 FROM post_media") == [("a" * 64,)]
    assert {r[0] for r in rows(archive, "SELECT sha256 FROM media")} == {"a" * 64, "e" * 64}
    # Export first, then the API: the platform's file is authoritative and takes the slot.
    archive.db.execute("DELETE FROM post_media")
    link("export:" + "ab" * 32, export_file, "2026-01-03T00:00:00Z")
    link("api", api_file, "2026-01-04T00:00:00Z")
    assert rows(archive, "SELECT sha256 FROM post_media") == [("a" * 64,)]


def test_alt_text_from_the_platform_wins_and_an_export_only_fills_blanks(archive):
    stored = StoredFile("ab" * 32, "ab/abab.jpg", "image/jpeg", 10)
    export = "export:" + "cd" * 32

    def link(source: str, now: str, **ref) -> None:
        with archive.db.atomic():
            writer = ArchiveWriter(archive.db, platform="mastodon", account_id=ACCOUNT, source=source, now=now)
            writer.write_post(Post("1", "2026-01-01T00:00:00Z"))
            writer.link_media("1", MediaRef("https://x/1.jpg", "image", **ref), stored, "https://x/1.jpg")

    link("api", "2026-01-01T00:00:00Z", description="Kite", meta={"width": 640, "blurhash": "LKO2"})
    link(export, "2026-01-02T00:00:00Z", description="Old kite text", meta={"mediaType": "image/jpeg"})
    assert rows(archive, "SELECT description, meta FROM post_media") == [("Kite", '{"blurhash":"LKO2","width":640}')]
    archive.db.execute("UPDATE post_media SET description = NULL")
    link(export, "2026-01-03T00:00:00Z", description="Old kite text")
    assert rows(archive, "SELECT description FROM post_media") == [("Old kite text",)]
    link("api", "2026-01-04T00:00:00Z", description="Red kite")
    assert rows(archive, "SELECT description FROM post_media") == [("Red kite",)]


@pytest.mark.parametrize("named_by_hash", [True, False])
def test_a_file_the_archive_holds_is_not_downloaded_again(tmp_path, named_by_hash):
    """Seen again (the same link for the same post, or a file the platform names by a hash
    the archive holds): taken from the archive, no request."""
    body = b"\x89PNG\r\n\x1a\n pretend image"
    requests: list[str] = []

    def answer(request):
        requests.append(str(request.url))
        return httpx.Response(200, content=body, headers={"Content-Type": "image/png"})

    account = AccountConfig(name="main", platform="mastodon")
    expected = hashlib.sha256(body).hexdigest() if named_by_hash else None
    connector = _OneFileConnector(account, open_secret_store("memory"), transport=httpx.MockTransport(answer),
                                  expected=expected)
    archive = Archive(tmp_path / "archive")
    for _ in range(2):
        Runner(archive, connector).run(connector.pages, kind="export", mode="incremental")
    assert len(requests) == 1
    assert rows(archive, "SELECT sha256, status FROM post_media") == [(hashlib.sha256(body).hexdigest(), "ok")]
    # The file gone from disk: the next run fetches it again rather than trusting the row.
    (archive.media_root / rows(archive, "SELECT path FROM media")[0][0]).unlink()
    Runner(archive, connector).run(connector.pages, kind="export", mode="incremental")
    assert len(requests) == 2
    archive.close()
