"""Follower / following lists of any size: staged, then applied, in committed chunks.

A list of nine million people must not be one transaction (its WAL would grow by
gigabytes, and nothing could stop it half way). So every list goes through the staging
tables (``staged_lists`` / ``staged_members``), one bounded transaction at a time:

1. Staging. From an API, a connector says how to fetch one page of a list
   (``fetch_page(cursor)`` -> the page's members and the cursor of the next page, None at
   the end) and ``list_pages`` makes each page a ``ListPage`` record, staged with its
   cursor in the page's transaction. From an export, the runner hands a ``Snapshot`` to
   ``stage_snapshot``, which stages its members ``CHUNK`` at a time, each chunk with the
   count of entries read so far. Memory holds one page or chunk, never the list.
2. Applying (``apply_staged``): once whole, the list becomes a snapshot one chunk of
   person ids after the other, in key order, each chunk committed with how far it got.
   The snapshot row says ``complete`` only once its last chunk is in.
3. Clearing: the staged members go, a chunk at a time, then the list.

A run stopped at any point (a crash, an error, Ctrl-C, SIGTERM) leaves the list where it
was; the next run goes on from there: an API list from its cursor, an export from the
entry after the last one staged, an application from the last applied id
(``apply_pending`` at the start of every run). Between chunks the run's cancel flag is
read, so a stop is honoured within one chunk's time.

A list staged longer than ``STALE_AFTER_DAYS`` ago is not continued (the people at its
start were listed too long ago to be one moment): what it holds is kept as a partial
snapshot (nobody counts as lost from it) and the list starts over.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from types import MappingProxyType
from typing import Any, Callable, Iterator

import archiver.crashpoints as crashpoints
from archiver.records import ListKind, ListPage, Membership, Page, Person, Snapshot, now_utc

STALE_AFTER_DAYS = 3
# People a chunk. A chunk's transaction touches up to a couple of pages a person (a
# dated list's follow dates land all over the events' time index), so the WAL stays
# around 50 MB at most whatever the list's size (54 MB for a million dated followers,
# where one transaction took 350 MB: benchmarks/followers_snapshot.py), and a chunk takes
# well under a second. ARCHIVER_LIST_CHUNK changes it (tests use small ones).
CHUNK = int(os.environ.get("ARCHIVER_LIST_CHUNK") or 5_000)

FetchPage = Callable[[Any], "tuple[list[Membership], Any]"]


def staged_list(ctx, kind: str, source: str = "api") -> dict[str, Any] | None:
    """The list of ``kind`` this account has staged from ``source`` (``taken_at``,
    ``cursor``, ``pages``, ``members``, ``started_at``), or None."""
    cursor = ctx.db.execute(
        "SELECT taken_at, cursor, pages, members, started_at FROM staged_lists WHERE account_id=? AND kind=? "
        "AND source=?", [ctx.account.account_id, kind, source])
    row = cursor.fetchone()
    if row is None:
        return None
    staged = dict(zip([c[0] for c in cursor.description], row, strict=True))
    staged["cursor"] = json.loads(staged["cursor"]) if staged["cursor"] is not None else None
    return staged


def list_pages(ctx, kind: ListKind, fetch_page: FetchPage, *, stream: str, due: bool = True,
               finish: Callable[[int], tuple[bool, dict[str, Any] | None]] | None = None) -> Iterator[Page]:
    """Pages that read the ``kind`` list through the staging (see the module docstring).

    ``due``: whether the connector wants the list read this run; a list already staged
    is always continued. ``finish(listed)`` is asked after the last page with the
    number of members the list gave; it returns whether the list counts as complete and
    the connector's state for ``stream``, committed with the last page. A NetError from
    ``fetch_page`` goes to the caller; the staged pages stay for the next run.
    """
    staged = staged_list(ctx, kind)
    if staged is not None and _days_since(staged["started_at"]) > STALE_AFTER_DAYS:
        ctx.report(f"{kind} list", f"a reading of the list started on {staged['started_at']} was never "
                   f"finished; its {staged['members']} people are kept as a partial list and the list "
                   "is read again from the start")
        yield Page(stream, [ListPage(kind, staged["taken_at"], last=True, complete=False)])
        staged = None
    if staged is None and not due:
        return
    if staged is None:
        taken_at, cursor, listed = now_utc(), None, 0
    else:
        taken_at, cursor, listed = staged["taken_at"], staged["cursor"], staged["members"]
    seen: set[str] = set()
    while True:
        members, next_cursor = fetch_page(cursor)
        listed += len(members)
        # A cursor that comes back again would loop for ever: the list ends there.
        key = json.dumps(next_cursor, sort_keys=True)
        if next_cursor is not None and key in seen:
            next_cursor = None
        seen.add(key)
        if next_cursor is None:
            complete, state = finish(listed) if finish is not None else (True, None)
            yield Page(stream, [ListPage(kind, taken_at, members, last=True, complete=complete)], state)
            return
        yield Page(stream, [ListPage(kind, taken_at, members, cursor=next_cursor)])
        cursor = next_cursor


def _days_since(when: str) -> float:
    moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    return (dt.datetime.now(dt.timezone.utc) - moment).total_seconds() / 86400


# -- staging an export's list, applying, clearing: one committed chunk at a time -----------


def stage_snapshot(archive, writer, snapshot: Snapshot, *, cancel: Callable[[], bool],
                   chunk: int = CHUNK) -> list[Membership] | None | bool:
    """Stage a whole list (an export's) ``chunk`` entries a transaction, going on after
    the entries an interrupted import of the same export staged already. The caller
    then marks it whole (``writer.finish_staging``) with the rest of its page, and applies
    it. Returns False when there is nothing to do (this list is in the archive already),
    True when it is staged, and the members themselves when the whole list is one chunk
    at most: the caller stages and applies those in its page's transaction (a small list
    costs one transaction, as any page).

    The members are read again from the start on a resume (an export is read in one
    forward pass) and the first ones skipped: the same export gives them in the same
    order, and a reader that finds the list partial (a damaged entry) finds it again."""
    staged = writer.staged_list(snapshot.kind)
    if staged is not None and staged["complete"] is not None:
        snapshot.taken_at = staged["taken_at"]
        return True   # whole already; apply_pending finishes it
    if staged is None and writer.applied_already(snapshot.kind, snapshot.taken_at, True):
        return False
    if staged is not None:
        # Same source, same export: the list staged is this one, whatever moment a
        # reader without a date in the file gave it this time.
        snapshot.taken_at = staged["taken_at"]
    skip = staged["read"] if staged is not None else 0
    batch: list[Membership] = []
    read = 0
    chunks = 0
    for membership in snapshot.members:
        read += 1
        if read <= skip:
            continue
        batch.append(_slim(membership))
        if len(batch) >= chunk:
            _stage_chunk(archive, writer, snapshot, batch, cancel)
            chunks += 1
            batch = []
    if staged is None and chunks == 0:
        return batch
    if batch:
        _stage_chunk(archive, writer, snapshot, batch, cancel)
    return True


def _slim(membership: Membership) -> Membership:
    """Only what a list keeps of a member (the staged_members columns): a chunk held in
    memory must not carry each person's raw payload."""
    person = membership.person
    return Membership(Person(person.native_id, person.handle, person.display_name, person.url, person.avatar_url,
                             raw=_NO_RAW), membership.since)


_NO_RAW: Any = MappingProxyType({})   # read-only: one shared empty payload, not one dict a member


def _stage_chunk(archive, writer, snapshot: Snapshot, batch: list[Membership], cancel) -> None:
    with archive.writing():
        writer.stage_members(snapshot.kind, snapshot.taken_at, batch, read=len(batch))
    _chunk_done(cancel)


def apply_staged(archive, writer, kind: str, *, cancel: Callable[[], bool], chunk: int = CHUNK) -> dict[str, int]:
    """Turn the whole staged ``kind`` list of ``writer``'s source into a snapshot, then
    clear its staging, one committed chunk at a time (see the module docstring).
    Returns the snapshot's counts (members, new, lost) when this call applied its end."""
    from archiver.net.client import Cancelled

    result = {"members": 0, "new": 0, "lost": 0}
    db = archive.db
    with archive.writing():
        plan = writer.plan_staged(kind)
    if plan is not None and not plan.get("done"):
        with writer.big_caches():
            # Sorting the staged people is one statement and writes only a temporary
            # table: a stop asked during it interrupts it (SQLite's progress handler).
            db.conn.set_progress_handler(lambda: 1 if cancel() else 0, 100_000)
            try:
                db.conn.execute("BEGIN")
                writer.load_staged(kind)
                db.conn.commit()
            except sqlite3.OperationalError:
                if db.conn.in_transaction:
                    db.conn.rollback()
                if cancel():
                    raise Cancelled("stopped by request while a follower list was sorted") from None
                raise
            finally:
                db.conn.set_progress_handler(None, 0)
            done = False
            while not done:
                with archive.writing():
                    done = writer.apply_staged_chunk(kind, chunk)
                _chunk_done(cancel, last=done)
            result = writer.staged_outcome
            db.conn.execute("DROP TABLE IF EXISTS temp.snapshot_all")
    cleared = False
    while not cleared:
        with archive.writing():
            cleared = writer.clear_staged_chunk(kind, chunk)
        _chunk_done(cancel, last=cleared)
    return result


def apply_pending(archive, writer_for: Callable[[str], Any], account_id: str, *, cancel: Callable[[], bool],
                  chunk: int = CHUNK) -> dict[str, int]:
    """Finish every list of the account that was staged whole but not yet applied or
    cleared (a run stopped while applying it). ``writer_for(source)``: a writer for the
    list's source. Returns the writers' counts."""
    counts: dict[str, int] = {}
    for kind, source in archive.db.execute(
            "SELECT kind, source FROM staged_lists WHERE account_id=? AND complete IS NOT NULL ORDER BY list_id",
            [account_id]).fetchall():
        writer = writer_for(source)
        apply_staged(archive, writer, kind, cancel=cancel, chunk=chunk)
        for key, n in writer.counts.items():
            counts[key] = counts.get(key, 0) + n
    return counts


def _chunk_done(cancel: Callable[[], bool], last: bool = False) -> None:
    """A chunk has committed: the crash tests' point, and where a stop is honoured."""
    from archiver.net.client import Cancelled

    crashpoints.reached("chunk", stopped=cancel)
    if cancel() and not last:
        raise Cancelled("stopped by request at a chunk boundary of a follower list")
