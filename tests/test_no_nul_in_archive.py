"""No NUL character reaches the database (issue 11.7), whatever brings it: an export file
or an API page. The writer replaces it with U+FFFD in every text value of every record
(archiver.archive.text), so the sqlite3 shell, Datasette and other programs reading the
archive never see a value cut short at a NUL ("nice post\\0<hidden part>").

Both paths are the real ones: a Mastodon archive (tar.gz) through the importer and the
sync runner, and the fake Mastodon instance through the API connector."""

from __future__ import annotations

import json

from archive_rows import one
from archiver_connectors.mastodon.sim.fake import FakeMastodonConfig
from archiver_connectors.mastodon.sim.export import make_account, write_archive
from test_mastodon_api import Harness
from test_mastodon_export import import_archive, own_statuses

from archiver.archive.text import without_nul
from archiver.records import Membership, Person, Post, Snapshot

NUL = "\x00"


def cells_with_nul(db) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text cell in the archive that holds a NUL."""
    found = []
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    for table in tables:
        for column in [r[1] for r in db.execute(f"PRAGMA table_info([{table}])")]:
            for (value,) in db.execute(
                    f"SELECT [{column}] FROM [{table}] WHERE typeof([{column}])='text' AND instr([{column}], char(0)) > 0"):
                found.append((table, column, value))
    return found


def test_an_export_with_nul_in_its_texts_leaves_none_in_the_archive(tmp_path, archive):
    account = make_account(posts=2, replies=0, boosts=0, likes=1, bookmarks=0, seed=21)
    account.display_name = f"Alice{NUL}<b>hidden</b>"
    account.summary = f"<p>bio{NUL}tail</p>"
    status = own_statuses(account, "text")[0]
    status["content"] = f"<p>before{NUL}after</p>"
    status["summary"] = f"warning{NUL}"
    status["media"] = status["media"][:1]
    if status["media"]:
        status["media"][0]["name"] = f"alt{NUL}text"
    result = import_archive(archive, write_archive(account, tmp_path / "nul.tar.gz"))
    assert result["status"] == "ok", result

    db = archive.db
    assert cells_with_nul(db) == []
    texts = [r[0] for r in db.execute("SELECT text FROM posts WHERE text IS NOT NULL")]
    assert any("before\ufffdafter" in t for t in texts), texts
    assert one(db, "SELECT display_name FROM accounts") == "Alice\ufffd<b>hidden</b>"
    assert "bio\ufffdtail" in one(db, "SELECT bio FROM accounts")
    # The raw payload keeps the export's words, with the same replacement.
    raws = "".join(r[0] for r in db.execute("SELECT raw FROM posts"))
    assert "\\u0000" not in raws and "before\ufffdafter" in raws


def test_an_api_page_with_nul_in_its_texts_leaves_none_in_the_archive(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=6, followers=5, following=2, seed=22))
    for account in h.fake.accounts.values():
        account["display_name"] = f"{account['display_name']}{NUL}x"
        account["note"] = f"<p>note{NUL}</p>"
    own = h.fake.own_statuses()
    target = next(s for s in own if not s.get("reblog_of"))
    target["versions"][-1]["content"] = f"<p>api{NUL}text</p>"

    result = h.run()
    assert result["status"] == "ok", result

    db = h.archive.db
    assert cells_with_nul(db) == []
    assert any("api\ufffdtext" in (r[0] or "") for r in db.execute("SELECT text FROM posts"))
    names = [r[0] for r in db.execute("SELECT display_name FROM people WHERE display_name IS NOT NULL")]
    assert names and all(name.endswith("\ufffdx") for name in names), names
    # A second run finds the same rows (the ids it lists match the stored ones): no
    # duplicates, nothing tombstoned.
    assert h.run(full=True)["status"] == "ok"
    assert one(db, "SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0
    assert cells_with_nul(db) == []


def test_ids_with_nul_are_one_row_and_a_full_listing_keeps_them(archive):
    """An id holding a NUL is stored with U+FFFD; the listing's bookkeeping and the
    writer's lookups use the same form, so the post is found again, never tombstoned."""
    from archiver.archive.writer import ArchiveWriter

    writer = ArchiveWriter(archive.db, platform="mastodon", account_id="mastodon:main", source="api")
    with archive.writing():
        writer.write_post(Post(f"1{NUL}2", "2024-01-01T00:00:00Z", text="a"))
        writer.write_post(Post(f"1{NUL}2", "2024-01-01T00:00:00Z", text="b", raw={f"k{NUL}": [f"v{NUL}"]}))
        writer.write_snapshot(Snapshot("followers", "2024-01-02T00:00:00Z",
                                       iter([Membership(Person(f"p{NUL}", handle=f"h{NUL}"), since=None)])))
    assert [r[0] for r in archive.db.execute("SELECT post_id FROM posts")] == ["1\ufffd2"]
    assert writer.known_post_ids([f"1{NUL}2", "other"]) == {f"1{NUL}2"}
    assert json.loads(one(archive.db, "SELECT raw FROM posts"))["api"] == {"k\ufffd": ["v\ufffd"]}
    assert one(archive.db, "SELECT handle FROM people") == "h\ufffd"
    assert cells_with_nul(archive.db) == []


def test_without_nul_keeps_clean_values_themselves():
    post = Post("1", None, text="clean", raw={"a": [1, "b"]})
    assert without_nul(post) is post
    dirty = Post("1", None, text=f"x{NUL}", raw={"a": [1, f"b{NUL}"]})
    cleaned = without_nul(dirty)
    assert cleaned is not dirty and dirty.text == f"x{NUL}"   # the caller's record is left alone
    assert (cleaned.text, cleaned.raw) == ("x\ufffd", {"a": [1, "b\ufffd"]})
