"""The writer's rules (DESIGN.md §3), checked directly on a real SQLite archive file.

Each step is one ``ArchiveWriter`` inside ``db.atomic()``, as the sync runner uses it,
with an explicit ``now`` so the order of observations is the test's to choose.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.archive import Archive
from archiver.archive.writer import ArchiveWriter, StoredFile
from archiver.records import Comment, MediaRef, Membership, Person, Post, Profile, Snapshot, iso_utc

from empty_archive import new_archive

PLATFORM = "tiktok"
ACCOUNT = "tiktok:main"
API = "api"
EXPORT = "export:" + "ab" * 32
LATER_EXPORT = "export:" + "cd" * 32


def write(archive: Archive, source: str, now: str, *records, listing: str | None = None) -> ArchiveWriter:
    """One page: every record written by one writer in one transaction."""
    db = archive.db
    with db.atomic():
        writer = ArchiveWriter(db, platform=PLATFORM, account_id=ACCOUNT, source=source, now=now)
        for record in records:
            if isinstance(record, Post):
                writer.write_post(record, listing=listing)
            elif isinstance(record, Comment):
                writer.write_comment(record)
            elif isinstance(record, Snapshot):
                writer.write_snapshot(record)
            elif isinstance(record, Profile):
                writer.write_profile(record)
            else:
                raise TypeError(record)
    return writer


def rows(archive: Archive, sql: str, *params) -> list[tuple]:
    return [tuple(r) for r in archive.db.execute(sql, list(params)).fetchall()]


def one(archive: Archive, sql: str, *params):
    return archive.db.execute(sql, list(params)).fetchone()[0]


def at(day: int, hour: int = 12) -> str:
    """A readable timestamp: day N of January 2024."""
    return f"2024-01-{day:02d}T{hour:02d}:00:00Z"


def api_post(native_id: str = "7001", **fields) -> Post:
    values = dict(created_at=at(1, 8), title="Sunset from the roof", text="Sunset from the roof #sky",
                  visibility="public", like_count=10, comment_count=1, share_count=0, view_count=100,
                  raw={"id": native_id})
    values.update(fields)
    return Post(native_id=native_id, **values)


def export_post(**fields) -> Post:
    """A newer export's item: no id, dated, a like count, maybe a title."""
    values = dict(created_at=at(1, 8), kind="photo", title="Sunset from the roof", like_count=7,
                  visibility="public", raw={"Date": "2024-01-01 08:00:00"})
    values.update(fields)
    return Post(native_id=None, **values)


# --------------------------------------------------------------------------- posts


def test_the_api_overwrites_and_keeps_the_earlier_version(archive):
    write(archive, API, at(2), api_post(title="First caption"))
    writer = write(archive, API, at(3), api_post(title="Second caption", text="Now with a description"))

    assert rows(archive, "SELECT post_id, title, text, first_seen_at, last_seen_at FROM posts") == [
        ("7001", "Second caption", "Now with a description", at(2), at(3))]
    assert rows(archive, "SELECT post_id, replaced_at, title, text, visibility FROM post_versions") == [
        ("7001", at(3), "First caption", "Sunset from the roof #sky", "public")]
    assert writer.counts.get("posts_edited") == 1

    # A field the API did not return this time (None) is unknown, not cleared: no edit.
    write(archive, API, at(4), api_post(title=None, text="Now with a description"))
    assert one(archive, "SELECT title FROM posts") == "Second caption"
    assert one(archive, "SELECT count(*) FROM post_versions") == 1


def test_a_post_the_platform_says_was_deleted_is_kept_with_its_tombstone(archive):
    # Archived live first; an export's list of deleted posts then gives the time it went.
    write(archive, API, at(2), api_post(native_id="7001"))
    writer = write(archive, EXPORT, at(3), api_post(native_id="7001", deleted_at=at(2, 20)),
                   api_post(native_id="7002", deleted_at=at(1, 9), text="Only ever seen deleted"))
    assert rows(archive, "SELECT post_id, text, deleted_at FROM posts ORDER BY post_id") == [
        ("7001", "Sunset from the roof #sky", at(2, 20)), ("7002", "Only ever seen deleted", at(1, 9))]
    assert writer.counts.get("posts_deleted") == 2

    # The same record again (a second import) changes nothing; a post without the word keeps it.
    writer = write(archive, EXPORT, at(4), api_post(native_id="7002", deleted_at=at(3, 9)), api_post(native_id="7001"))
    assert rows(archive, "SELECT post_id, deleted_at FROM posts ORDER BY post_id") == [("7001", at(2, 20)), ("7002", at(1, 9))]
    assert "posts_deleted" not in writer.counts


def test_an_export_only_fills_blanks_and_never_reverts_the_api(archive):
    write(archive, API, at(5), api_post(title="Caption edited on the phone", text=None, duration=None))
    writer = write(archive, EXPORT, at(6), export_post(
        title="Caption as it was when the export was made", text="Only the export has this",
        duration=31, like_count=3))

    row = rows(archive, "SELECT post_id, title, text, duration, like_count, kind, sources, raw FROM posts")
    assert len(row) == 1
    post_id, title, text, duration, like_count, kind, sources, raw = row[0]
    assert post_id == "7001"                               # matched on the creation time
    assert title == "Caption edited on the phone"          # never turned back
    assert (text, duration) == ("Only the export has this", 31)  # blanks filled
    assert like_count == 10 and kind == "video"            # the API's values stand
    assert json.loads(sources) == [API, EXPORT]
    assert set(json.loads(raw)) == {API, EXPORT}
    # Filling blanks is not an edit, and an export's like count is not a sample.
    assert one(archive, "SELECT count(*) FROM post_versions") == 0
    assert "posts_edited" not in writer.counts
    assert rows(archive, "SELECT like_count, observed_at FROM post_metrics") == [(10, at(5))]


def test_a_provisional_export_post_is_rekeyed_when_the_api_names_it(archive):
    photo = MediaRef("https://cdn.example/img/1.jpeg?x-signature=s", "image", 0)
    db = archive.db
    with db.atomic():
        writer = ArchiveWriter(db, platform=PLATFORM, account_id=ACCOUNT, source=EXPORT, now=at(2))
        provisional = writer.write_post(export_post(media=[photo]))
        writer.link_media(provisional, photo, StoredFile("f" * 64, "ff/ff/x.jpeg", "image/jpeg", 10),
                          "https://cdn.example/img/1.jpeg")
        writer.write_comment(Comment(native_id="c1", text="first!", created_at=at(2),
                                     post_native_id=provisional))
        # No export writes samples or versions today; rows under the provisional id are
        # planted so the test shows every table follows the new key.
        db.execute("INSERT INTO post_metrics VALUES (?,?,?,?,?,?,?)", [PLATFORM, provisional, at(2), 7, None, None, None])
        db.execute("INSERT INTO post_versions (platform, post_id, replaced_at, title) VALUES (?,?,?,?)",
                   [PLATFORM, provisional, at(2), "An even older caption"])
    assert provisional == f"provisional:{at(1, 8)}"

    writer = write(archive, API, at(3), api_post(native_id="7002", like_count=12))

    assert writer.counts.get("posts_matched") == 1
    assert rows(archive, "SELECT post_id, kind, like_count, sources FROM posts") == [
        ("7002", "video", 12, json.dumps([EXPORT, API], separators=(",", ":")))]
    for table in ("posts", "post_media", "post_metrics", "post_versions", "comments"):
        assert one(archive, f"SELECT count(*) FROM {table} WHERE post_id LIKE 'provisional:%'") == 0, table
    assert rows(archive, "SELECT post_id, role, sha256, status FROM post_media") == [("7002", "image", "f" * 64, "ok")]
    assert rows(archive, "SELECT comment_id, post_id FROM comments") == [("c1", "7002")]
    assert rows(archive, "SELECT observed_at, like_count FROM post_metrics ORDER BY observed_at") == [
        (at(2), 7), (at(3), 12)]
    assert rows(archive, "SELECT post_id, title FROM post_versions") == [("7002", "An even older caption")]

    # A later export of the same post (new links, no id) lands on the named row.
    write(archive, LATER_EXPORT, at(4), export_post(like_count=15))
    assert rows(archive, "SELECT post_id FROM posts") == [("7002",)]
    assert json.loads(one(archive, "SELECT sources FROM posts")) == [EXPORT, API, LATER_EXPORT]


def test_counts_are_a_time_series_written_only_on_change(archive):
    write(archive, API, at(1), api_post(like_count=10, view_count=100))
    write(archive, API, at(2), api_post(like_count=10, view_count=100))   # unchanged
    write(archive, API, at(3), api_post(like_count=11, view_count=100))   # changed
    write(archive, API, at(4), api_post(like_count=11, view_count=100))   # unchanged
    write(archive, EXPORT, at(5), export_post(like_count=50))              # an export: no sample
    write(archive, API, at(6), api_post(like_count=11, view_count=140))   # changed

    assert rows(archive, "SELECT observed_at, like_count, view_count FROM post_metrics ORDER BY observed_at") == [
        (at(1), 10, 100), (at(3), 11, 100), (at(6), 11, 140)]
    assert one(archive, "SELECT like_count FROM posts") == 11

    # The account's counts follow the same rule.
    for day, followers in ((1, 500), (2, 500), (3, 501)):
        write(archive, API, at(day), Profile(native_id="open-id", username="roofcam", followers=followers))
    assert rows(archive, "SELECT observed_at, followers FROM account_metrics ORDER BY observed_at") == [
        (at(1), 500), (at(3), 501)]


# --------------------------------------------------------------------------- snapshots


def snapshot(kind: str, taken_at: str, *members, complete: bool = True) -> Snapshot:
    """``members``: handles, or (handle, since) pairs when the platform gave a date."""
    memberships = []
    for member in members:
        handle, since = member if isinstance(member, tuple) else (member, None)
        memberships.append(Membership(Person(native_id=handle, handle=handle), since))
    return Snapshot(kind, taken_at, memberships, complete=complete)


def events(archive: Archive, taken_at: str | None = None) -> list[tuple]:
    sql = ("SELECT e.person_id, e.event, e.at FROM audience_events e JOIN snapshots s USING (snapshot_id) "
           "WHERE e.kind='followers'")
    if taken_at is None:
        return sorted(rows(archive, sql))
    return sorted(rows(archive, sql + " AND s.taken_at=?", taken_at))


def follows(archive: Archive) -> list[tuple]:
    return sorted(rows(archive, "SELECT person_id, started_at, last_seen_at, ended_at FROM follows WHERE kind='followers'"))


def test_a_baseline_snapshot_writes_events_only_where_the_platform_gave_a_date(archive):
    write(archive, EXPORT, at(10), snapshot("followers", at(10), ("ann", at(3)), "bob", "cat"))

    assert events(archive) == [("ann", "new", at(3))]
    assert follows(archive) == [("ann", at(3), at(10), None), ("bob", at(10), at(10), None),
                                ("cat", at(10), at(10), None)]
    assert rows(archive, "SELECT member_count, new_count, lost_count, complete FROM snapshots") == [(3, 1, 0, 1)]
    assert sorted(rows(archive, "SELECT person_id, handle FROM people")) == [("ann", "ann"), ("bob", "bob"), ("cat", "cat")]


def test_a_second_snapshot_gives_exact_new_and_lost_events(archive):
    write(archive, EXPORT, at(10), snapshot("followers", at(10), "ann", "bob", "cat"))
    writer = write(archive, LATER_EXPORT, at(20),
                   snapshot("followers", at(20), "bob", "cat", "dan", ("eve", at(15))))

    assert events(archive, at(20)) == [("ann", "lost", at(20)), ("dan", "new", at(20)), ("eve", "new", at(15))]
    assert follows(archive) == [
        ("ann", at(10), at(10), at(20)),
        ("bob", at(10), at(20), None),
        ("cat", at(10), at(20), None),
        ("dan", at(20), at(20), None),
        ("eve", at(15), at(20), None),
    ]
    assert rows(archive, "SELECT taken_at, member_count, new_count, lost_count FROM snapshots ORDER BY taken_at") == [
        (at(10), 3, 0, 0), (at(20), 4, 2, 1)]
    assert (writer.counts["followers_new"], writer.counts["followers_lost"]) == (2, 1)
    # The following list is separate: a followers snapshot says nothing about it.
    assert one(archive, "SELECT count(*) FROM follows WHERE kind='following'") == 0


def test_a_person_who_leaves_and_returns_gets_a_second_interval(archive):
    write(archive, EXPORT, at(1), snapshot("followers", at(1), "ann", "bob"))
    write(archive, API, at(2), snapshot("followers", at(2), "ann"))
    write(archive, LATER_EXPORT, at(3), snapshot("followers", at(3), "ann", "bob"))

    assert [f for f in follows(archive) if f[0] == "bob"] == [
        ("bob", at(1), at(1), at(2)), ("bob", at(3), at(3), None)]
    assert events(archive) == [("bob", "lost", at(2)), ("bob", "new", at(3))]
    assert one(archive, "SELECT count(*) FROM follows WHERE ended_at IS NULL AND person_id='bob'") == 1


def test_an_older_snapshot_applied_late_gives_the_history_of_time_order(archive, tmp_path):
    day1 = snapshot("followers", at(1), "ann", "bob", "cat")
    day10 = snapshot("followers", at(10), "ann")     # an export made on day 10: bob and cat had left
    day20 = snapshot("followers", at(20), "ann", "bob", "cat")
    write(archive, LATER_EXPORT, at(1), day1)
    write(archive, LATER_EXPORT, at(20), day20)
    # The day-10 export turns up late.
    writer = write(archive, EXPORT, at(21), day10)

    # What time order gives: bob and cat left by day 10 and came back by day 20.
    assert events(archive) == [("bob", "lost", at(10)), ("bob", "new", at(20)),
                               ("cat", "lost", at(10)), ("cat", "new", at(20))]
    assert follows(archive) == [("ann", at(1), at(20), None),
                                ("bob", at(1), at(1), at(10)), ("bob", at(20), at(20), None),
                                ("cat", at(1), at(1), at(10)), ("cat", at(20), at(20), None)]
    assert writer.counts["followers_lost"] == 2
    in_order = Archive(tmp_path / "in-order")
    for taken, snap in ((at(1), day1), (at(10), day10), (at(20), day20)):
        write(in_order, LATER_EXPORT if taken != at(10) else EXPORT, taken, snap)
    assert follows(in_order) == follows(archive) and events(in_order) == events(archive)
    in_order.close()


def test_an_older_snapshot_does_not_revive_someone_a_newer_one_lacked(archive):
    write(archive, LATER_EXPORT, at(1), snapshot("followers", at(1), "ann", "yan"))
    write(archive, LATER_EXPORT, at(20), snapshot("followers", at(20), "ann"))  # yan left
    # The day-10 export turns up late. It shows yan (still following then, inside her
    # first interval) and zed (never seen before, gone again by day 20).
    write(archive, EXPORT, at(21), snapshot("followers", at(10), "ann", "yan", "zed"))

    # Nobody the day-20 list lacked may be a current follower.
    assert rows(archive, "SELECT person_id FROM follows WHERE ended_at IS NULL") == [("ann",)]
    # yan's day-1 interval already covers day 10: no second one.
    assert one(archive, "SELECT count(*) FROM follows WHERE person_id='yan'") == 1


# --------------------------------------------------------------------------- property: order and repetition


def _posts_table(archive: Archive, ignore=("first_seen_at", "last_seen_at", "listed_in")) -> list[dict]:
    cursor = archive.db.execute("SELECT * FROM posts ORDER BY post_id")
    names = [c[0] for c in cursor.description]
    table = []
    for row in cursor.fetchall():
        record = {n: v for n, v in zip(names, row) if n not in ignore}
        record["sources"] = sorted(json.loads(record["sources"]))  # the order of discovery differs
        table.append(record)
    return table


_optional_text = st.one_of(st.none(), st.text(max_size=12))
_optional_count = st.one_of(st.none(), st.integers(0, 10**9))


@st.composite
def api_post_pages(draw, with_export: bool = False):
    """A set of posts (unique ids and creation times) cut into pages, and a sequence that
    writes every page at least once, in any order, some pages again."""
    numbers = draw(st.lists(st.integers(0, 10**6), min_size=1, max_size=12, unique=True))
    posts = []
    for n in numbers:
        post = Post(
            native_id=str(7_300_000_000_000_000_000 + n),
            created_at=iso_utc(1_700_000_000 + n * 61),
            title=draw(_optional_text), text=draw(_optional_text),
            visibility=draw(st.sampled_from([None, "public"])),
            duration=draw(st.one_of(st.none(), st.integers(1, 600))),
            like_count=draw(_optional_count), comment_count=draw(_optional_count),
            share_count=draw(_optional_count), view_count=draw(_optional_count),
            raw={"id": str(n)},
        )
        posts.append((API, post))
        if with_export and draw(st.booleans()):
            # The same post as a newer export has it: no id, same creation time.
            twin = Post(native_id=None, created_at=post.created_at, kind="photo",
                        title=draw(_optional_text), like_count=draw(_optional_count),
                        visibility=draw(st.sampled_from([None, "public"])), raw={"Date": post.created_at})
            posts.append((EXPORT, twin))
    posts = draw(st.permutations(posts))
    cuts = sorted(draw(st.lists(st.integers(1, len(posts)), unique=True, max_size=4)))
    bounds = [0, *cuts, len(posts)]
    pages = [posts[a:b] for a, b in zip(bounds, bounds[1:]) if a < b]
    sequence = list(draw(st.permutations(range(len(pages)))))
    for again in draw(st.lists(st.integers(0, len(pages) - 1), max_size=6)):
        sequence.insert(draw(st.integers(0, len(sequence))), again)
    return numbers, pages, sequence


def _apply(folder: Path, pages, sequence) -> Archive:
    archive = new_archive(folder)
    for step, index in enumerate(sequence):
        now = iso_utc(1_800_000_000 + step * 3600)
        for source in (API, EXPORT):  # a page from the runner has one source
            records = [post for origin, post in pages[index] if origin == source]
            if records:
                write(archive, source, now, *records)
    return archive


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(api_post_pages())
def test_any_order_and_repetition_of_api_pages_gives_the_same_posts(case):
    numbers, pages, sequence = case
    with tempfile.TemporaryDirectory() as folder:
        reference = _apply(Path(folder) / "once", pages, range(len(pages)))
        shuffled = _apply(Path(folder) / "shuffled", pages, sequence)
        try:
            assert _posts_table(shuffled) == _posts_table(reference)
            # No duplicates: one row per post, one count sample per post at most, and
            # nothing looks edited (each post was only ever seen with one content).
            assert one(shuffled, "SELECT count(*) FROM posts") == len(numbers)
            assert one(shuffled, "SELECT count(*) FROM post_versions") == 0
            assert one(shuffled, "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM post_metrics "
                                 "GROUP BY post_id)") <= 1
        finally:
            reference.close()
            shuffled.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(api_post_pages(with_export=True))
def test_any_order_of_api_and_export_pages_merges_into_the_same_posts(case):
    """Export items without an id meet their API twins before or after them: either way
    one row per post, with the same values (the API's where it said something)."""
    numbers, pages, sequence = case
    with tempfile.TemporaryDirectory() as folder:
        reference = _apply(Path(folder) / "once", pages, range(len(pages)))
        shuffled = _apply(Path(folder) / "shuffled", pages, sequence)
        try:
            assert _posts_table(shuffled) == _posts_table(reference)
            assert sorted(r[0] for r in rows(shuffled, "SELECT post_id FROM posts")) == sorted(
                str(7_300_000_000_000_000_000 + n) for n in numbers)
        finally:
            reference.close()
            shuffled.close()


def test_an_older_snapshot_fills_in_the_history_it_knows(archive):
    """zed appears only in a day-10 list imported late: they followed on day 10 and had
    left by day 20, the first complete list without them. ann, first seen on day 20,
    was already following on day 10: her interval starts earlier."""
    write(archive, LATER_EXPORT, at(1), snapshot("followers", at(1), "yan"))
    write(archive, LATER_EXPORT, at(20), snapshot("followers", at(20), "yan", "ann"))
    write(archive, EXPORT, at(21), snapshot("followers", at(10), "yan", "ann", "zed"))

    assert rows(archive, "SELECT person_id, started_at, ended_at FROM follows WHERE person_id IN ('ann', 'zed') "
                         "ORDER BY person_id") == [("ann", at(10), None), ("zed", at(10), at(20))]
    assert ("zed", "lost", at(20)) in [(p, e, t) for p, e, t in
                                       rows(archive, "SELECT person_id, event, at FROM audience_events")]


def test_a_snapshot_adds_its_source_to_people_and_reapplying_it_keeps_its_counts(archive):
    write(archive, EXPORT, at(1), snapshot("followers", at(1), "ann"))
    write(archive, LATER_EXPORT, at(5), snapshot("followers", at(5), "ann", "bob"))
    assert json.loads(one(archive, "SELECT sources FROM people WHERE person_id='ann'")) == [EXPORT, LATER_EXPORT]
    counts = rows(archive, "SELECT new_count, lost_count FROM snapshots ORDER BY taken_at")
    write(archive, LATER_EXPORT, at(6), snapshot("followers", at(5), "ann", "bob"))
    assert rows(archive, "SELECT new_count, lost_count FROM snapshots ORDER BY taken_at") == counts
    assert json.loads(one(archive, "SELECT sources FROM people WHERE person_id='ann'")) == [EXPORT, LATER_EXPORT]


@pytest.mark.parametrize("export_first", [True, False])
def test_the_owners_comment_from_an_export_and_the_api_is_one_row(archive, export_first):
    """Exports name the owner's own comments by time and text only; the API by id."""
    from_export = Comment(native_id=None, text="thanks all!", created_at=at(3), by_owner=True)
    from_api = Comment(native_id="c-991", text="thanks all!", created_at=at(3), by_owner=True, post_native_id="7001")
    first, second = ((EXPORT, from_export), (API, from_api)) if export_first else ((API, from_api), (EXPORT, from_export))
    write(archive, first[0], at(4), first[1])
    write(archive, second[0], at(5), second[1])

    assert rows(archive, "SELECT comment_id, post_id, text FROM comments") == [("c-991", "7001", "thanks all!")]
    assert set(json.loads(one(archive, "SELECT sources FROM comments"))) == {API, EXPORT}
