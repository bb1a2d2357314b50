"""The writer's smaller promises, on a real archive file: an earlier version is stored
once, each export keeps its own payload, an export post without id finds its API twin
within a small time tolerance."""

from __future__ import annotations

from archiver.archive.writer import ArchiveWriter
from archiver.records import Post, PostVersion

from archive_rows import rows

ACCOUNT = "mastodon:main"


def write(archive, source: str, now: str, *posts: Post, platform: str = "mastodon") -> ArchiveWriter:
    with archive.writing() as db:
        writer = ArchiveWriter(db, platform=platform, account_id=ACCOUNT, source=source, now=now)
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
