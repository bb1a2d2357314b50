"""The writer's staging of follower lists (ArchiveWriter.stage_list_page): a list given a
page at a time ends as the same archive as the whole list given at once."""

from __future__ import annotations

import pytest

from archive_rows import rows
from archiver.archive import Archive
from archiver.archive.writer import ArchiveWriter
from archiver.records import ListPage, Membership, Person, Snapshot


def member(n: int, since: str | None = None, name: str | None = None) -> Membership:
    return Membership(Person(f"p{n:03d}", handle=f"h{n}", display_name=name), since=since)


def lists():
    """Two lists in time order; the second has a person listed twice (first date, last name)."""
    first = [member(n, since="2024-01-01T00:00:00Z" if n % 3 == 0 else None) for n in range(30)]
    second = [member(n) for n in range(5, 40)] + [member(7, since="2020-01-01T00:00:00Z", name="Seven")]
    return [("2024-06-01T00:00:00Z", first), ("2024-07-01T00:00:00Z", second)]


def audience(db) -> dict:
    return {table: rows(db, f"SELECT * FROM {table} ORDER BY 1, 2, 3") for table in
            ("people", "follows", "audience_events")} | {
        "snapshots": rows(db, "SELECT kind, taken_at, member_count, new_count, lost_count, complete FROM snapshots")}


def write(archive: Archive, staged: bool, page_size: int = 8) -> dict:
    db = archive.db
    for taken, members in lists():
        writer = ArchiveWriter(db, platform="mastodon", account_id="mastodon:main", source="api",
                               now="2024-07-02T00:00:00Z")
        with archive.writing():
            if not staged:
                writer.write_snapshot(Snapshot("followers", taken, iter(members)))
                continue
        pages = [members[i:i + page_size] for i in range(0, len(members), page_size)]
        for number, page in enumerate(pages):
            last = number == len(pages) - 1
            with archive.writing():   # one transaction a page, as the runner does
                writer.stage_list_page(ListPage("followers", taken, page, cursor=None if last else number,
                                                last=last))
    return audience(db)


def test_a_list_staged_a_page_at_a_time_is_the_list_written_at_once(tmp_path):
    whole = write(Archive(tmp_path / "whole"), staged=False)
    paged = write(Archive(tmp_path / "paged"), staged=True)
    assert paged == whole
    assert whole["snapshots"][1][2:5] == (36, 10, 5)         # 35 listed once, 10 new, 5 gone
    db = Archive(tmp_path / "paged").db
    assert rows(db, "SELECT count(*) FROM staged_members") == [(0,)]
    assert rows(db, "SELECT count(*) FROM staged_lists") == [(0,)]


def test_a_page_of_another_reading_of_the_list_fails_instead_of_joining_it(archive):
    writer = ArchiveWriter(archive.db, platform="mastodon", account_id="mastodon:main", source="api")
    with archive.writing():
        writer.stage_list_page(ListPage("followers", "2024-06-01T00:00:00Z", [member(1)], cursor="next"))
    with pytest.raises(RuntimeError, match="staged already"):
        with archive.writing():
            writer.stage_list_page(ListPage("followers", "2024-06-02T00:00:00Z", [member(2)], cursor="x"))
    assert rows(archive.db, "SELECT person_id FROM staged_members") == [("p001",)]
