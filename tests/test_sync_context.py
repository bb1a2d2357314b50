"""What a connector may ask of the archive (archiver.sync.runner.SyncContext), checked
directly on a real SQLite archive written by the real writer.

Connectors read the archive only through these methods (tests/test_connector_sql.py):
each answers for the context's own account and platform, never another's.
"""

from __future__ import annotations

import hashlib

import pytest

from archiver.archive.writer import ArchiveWriter, StoredFile
from archiver.config import AccountConfig
from archiver.records import Comment, MediaRef, Post, Profile
from archiver.sync.runner import SyncContext

NOW = "2024-01-05T12:00:00Z"


def write(archive, platform: str, account: str, *records, files: dict | None = None, source: str = "api"):
    """One page of records for ``platform:account``; ``files`` maps a post's native id to
    its slots as (role, position, stored or not)."""
    with archive.db.atomic():
        writer = ArchiveWriter(archive.db, platform=platform, account_id=f"{platform}:{account}",
                               source=source, now=NOW)
        for record in records:
            if isinstance(record, Post):
                post_id = writer.write_post(record)
                for role, position, stored in (files or {}).get(record.native_id, []):
                    name = f"{post_id}-{role}-{position}"
                    file = (StoredFile(sha256=hashlib.sha256(name.encode()).hexdigest(), path=f"media/{name}",
                                       mime="image/jpeg", size=1) if stored
                            else StoredFile(sha256=None, error="HTTP 403", cause="refused"))
                    writer.link_media(post_id, MediaRef(f"https://cdn.example/{post_id}", role, position), file,
                                      f"https://cdn.example/{post_id}")
            elif isinstance(record, Comment):
                writer.write_comment(record)
            elif isinstance(record, Profile):
                writer.write_profile(record)
            else:
                raise TypeError(record)


def context(archive, platform: str = "instagram", account: str = "main") -> SyncContext:
    return SyncContext(archive, AccountConfig(name=account, platform=platform))


def post(native_id: str | None, title: str = "a title", created_at: str = "2024-01-01T08:00:00Z") -> Post:
    return Post(native_id=native_id, created_at=created_at, title=title, raw={"id": native_id})


def comment(native_id: str, post_id: str, parent: str | None = None) -> Comment:
    return Comment(native_id=native_id, text=f"comment {native_id}", created_at=NOW, post_native_id=post_id,
                   parent_native_id=parent)


def test_stored_file_counts_counts_the_slots_holding_a_file_for_the_asked_posts_of_the_platform(archive):
    write(archive, "instagram", "main", post("p1"), post("p2"), post("p3"), post("p4"), files={
        "p1": [("image", 0, True), ("image", 1, True), ("image", 2, False)],
        "p2": [("video", 0, False)],
        "p3": [("cover", 0, True)],
    })
    # Another platform's post with the same id and a stored file: not this platform's.
    write(archive, "youtube", "main", post("p2"), files={"p2": [("video", 0, True)]})

    ctx = context(archive)
    assert ctx.stored_file_counts(["p1", "p2", "p4", "unknown"]) == {"p1": 2}
    assert ctx.stored_file_counts(iter(["p3", "p1"])) == {"p1": 2, "p3": 1}
    assert ctx.stored_file_counts([]) == {}
    assert context(archive, "youtube").stored_file_counts(["p1", "p2"]) == {"p2": 1}


def test_stored_file_counts_answers_for_more_posts_than_sqlite_binds_in_one_statement(archive):
    ids = [f"p{i}" for i in range(1200)]
    write(archive, "instagram", "main", *map(post, ids), files={i: [("image", 0, True)] for i in ids[::100]})
    assert context(archive).stored_file_counts(ids) == {i: 1 for i in ids[::100]}


def test_archived_reply_counts_counts_replies_of_the_archived_comments_of_the_platform(archive):
    write(archive, "youtube", "main", post("v1"),
          comment("t1", "v1"), comment("r1", "v1", parent="t1"), comment("r2", "v1", parent="t1"),
          comment("t2", "v1"),
          comment("t3", "v1"), comment("r3", "v1", parent="t3"))
    # The same ids on another platform: neither a reply nor a thread of this one.
    write(archive, "instagram", "main", post("v1"), comment("t2", "v1"), comment("r9", "v1", parent="t2"),
          comment("t4", "v1"))

    ctx = context(archive, "youtube")
    assert ctx.archived_reply_counts(["t1", "t2", "t3", "t4", None, ""]) == {"t1": 2, "t2": 0, "t3": 1}
    assert ctx.archived_reply_counts(t for t in ["t1"]) == {"t1": 2}
    assert ctx.archived_reply_counts([]) == {}
    assert context(archive, "instagram").archived_reply_counts(["t1", "t2", "t4"]) == {"t2": 1, "t4": 0}


def test_archived_reply_counts_answers_for_more_threads_than_sqlite_binds_in_one_statement(archive):
    threads = [f"t{i}" for i in range(1100)]
    write(archive, "youtube", "main", post("v1"), *(comment(t, "v1") for t in threads),
          comment("r1", "v1", parent="t1050"))
    counts = context(archive, "youtube").archived_reply_counts(threads)
    assert len(counts) == 1100 and counts["t1050"] == 1 and sum(counts.values()) == 1


def test_every_archived_post_gives_the_accounts_posts_under_a_platform_id_with_the_asked_fields(archive):
    write(archive, "youtube", "main", post("v1", "Sunset", "2024-01-01T08:00:00Z"),
          post("v2", "Roof cam", "2024-01-02T08:00:00Z"))
    # An export's post without an id is provisional: no platform id to match against.
    write(archive, "youtube", "main", post(None, "From an export", "2024-01-03T08:00:00Z"),
          source="export:" + "ab" * 32)
    write(archive, "youtube", "other", post("v3", "Another account's"))
    write(archive, "instagram", "main", post("v4", "Another platform's"))
    # A post deleted since is still an upload of the account.
    archive.db.execute("UPDATE posts SET deleted_at=? WHERE post_id='v2'", [NOW])

    assert any(r[0].startswith("provisional:") for r in archive.db.execute("SELECT post_id FROM posts"))
    posts = context(archive, "youtube").every_archived_post({"title": "title", "created_at": "created_at"})
    assert posts == {"v1": {"title": "Sunset", "created_at": "2024-01-01T08:00:00Z"},
                     "v2": {"title": "Roof cam", "created_at": "2024-01-02T08:00:00Z"}}
    assert context(archive, "youtube", "nobody").every_archived_post({"title": "title"}) == {}


def test_owner_native_id_is_the_archived_profiles_id_of_this_account(archive):
    ctx = context(archive, "youtube")
    assert ctx.owner_native_id() is None            # no profile archived yet

    write(archive, "youtube", "other", Profile(native_id="UC-other", username="other"))
    assert ctx.owner_native_id() is None            # another account's profile

    write(archive, "youtube", "main", Profile(native_id=None, username="me"))
    assert ctx.owner_native_id() is None            # a profile that names no id

    write(archive, "youtube", "main", Profile(native_id="UC-me", username="me"))
    assert ctx.owner_native_id() == "UC-me"


def test_archived_posts_gives_columns_and_raw_payload_paths_of_the_asked_posts_of_this_account(archive):
    # The writer keeps a payload under its source: {"api": {...}}.
    write(archive, "mastodon", "main",
          Post(native_id="s1", created_at=NOW, comment_count=3, raw={"edited_at": "2024-01-04T00:00:00Z"}),
          Post(native_id="s2", created_at=NOW, comment_count=0, raw={}))
    write(archive, "mastodon", "other", Post(native_id="s3", created_at=NOW, comment_count=9, raw={}))

    ctx = context(archive, "mastodon")
    fields = {"replies": "comment_count", "edited_at": "$.api.edited_at"}
    assert ctx.archived_posts(["s1", "s2", "s3", "unknown"], fields) == {
        "s1": {"replies": 3, "edited_at": "2024-01-04T00:00:00Z"},
        "s2": {"replies": 0, "edited_at": None},
    }
    ids = [f"x{i}" for i in range(1200)] + ["s2"]
    assert ctx.archived_posts(ids, {"replies": "comment_count"}) == {"s2": {"replies": 0}}
    assert ctx.every_archived_post({"edited_at": "$.api.edited_at"}) == {
        "s1": {"edited_at": "2024-01-04T00:00:00Z"}, "s2": {"edited_at": None}}


@pytest.mark.parametrize("wanted", ["json_extract(raw, '$.api.edited_at')", "comment_count + 1",
                                    "(SELECT count(*) FROM comments)", "no_such_column"])
def test_a_connector_asks_for_columns_and_raw_paths_never_sql(archive, wanted):
    write(archive, "mastodon", "main", Post(native_id="s1", created_at=NOW, raw={}))
    ctx = context(archive, "mastodon")
    with pytest.raises(ValueError, match="neither a column of posts nor a JSON path"):
        ctx.archived_posts(["s1"], {"value": wanted})
    with pytest.raises(ValueError, match="neither a column of posts nor a JSON path"):
        ctx.every_archived_post({"value": wanted})


def test_pages_of_gathers_records_into_full_pages_and_a_last_partial_one():
    from archiver.records import PageBuffer, pages_of

    pages = list(pages_of("export:posts", range(7), 3))
    assert [(p.stream, p.records) for p in pages] == [
        ("export:posts", [0, 1, 2]), ("export:posts", [3, 4, 5]), ("export:posts", [6])]
    assert list(pages_of("export:posts", [], 3)) == []
    buffer = PageBuffer("export:comments", 2)
    assert buffer.add("a") is None
    assert buffer.add("b").records == ["a", "b"]
    assert list(buffer.rest()) == []   # nothing left after a full page
