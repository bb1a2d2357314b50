"""Follower / following lists of any size, read from an API a page at a time.

A connector says how to fetch one page of a list (``fetch_page(cursor)`` -> the page's
members and the cursor of the next page, None at the end); ``list_pages`` does the rest:

- each page becomes a ``ListPage`` record: the writer stages its members in
  ``staged_members`` and the cursor in ``staged_lists`` in the page's transaction, so
  memory holds one page, never the list;
- a run stopped half way (a crash, an error, a cancel) leaves the list staged, and the
  next run goes on from the staged cursor instead of starting over;
- the last page applies the whole staged list as one snapshot (the usual diff, in SQL)
  and clears the staging, in one transaction.

A list staged longer than ``STALE_AFTER_DAYS`` ago is not continued (the people at its
start were listed too long ago to be one moment): what it holds is kept as a partial
snapshot (nobody counts as lost from it) and the list starts over.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, Iterator

from archiver.records import ListPage, Membership, Page, now_utc

STALE_AFTER_DAYS = 3

FetchPage = Callable[[Any], "tuple[list[Membership], Any]"]


def staged_list(ctx, kind: str) -> dict[str, Any] | None:
    """The list of ``kind`` this account has staged (``taken_at``, ``cursor``, ``pages``,
    ``members``, ``started_at``), or None."""
    cursor = ctx.db.execute(
        "SELECT taken_at, cursor, pages, members, started_at FROM staged_lists WHERE account_id=? AND kind=?",
        [ctx.account.account_id, kind])
    row = cursor.fetchone()
    if row is None:
        return None
    staged = dict(zip([c[0] for c in cursor.description], row))
    staged["cursor"] = json.loads(staged["cursor"]) if staged["cursor"] is not None else None
    return staged


def list_pages(ctx, kind: str, fetch_page: FetchPage, *, stream: str, due: bool = True,
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
