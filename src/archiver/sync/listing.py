"""One walker for every connector's resumable listing of the owner's posts (or likes).

A connector says only how to fetch one page of its platform's list (a cursor in; items,
the next cursor and whether there is more out) and how to map one item to records. The
walker owns the rest, the same way for every platform:

* **Modes.** ``--full`` (or a due full listing, see ``full_every_days``) walks the whole
  list under a listing id; a cut-off full listing is resumed from its cursor. Incremental
  runs (the default) stop at the first page whose items are all known, then finish a
  listing cut off earlier (``pending``: its cursor and how far back it had reached).
* **Checkpoints.** Every page carries the stream's next state; the runner commits it with
  the page's records (one transaction), so a run killed at any moment resumes.
* **Per-item mapping.** An item that cannot be mapped is reported with its id and the
  reason, kept raw in ``unmapped_items``, and never blocks the rest of its page.
* **What was listed.** A full listing records the ids the platform listed (``listed_ids``),
  apart from the rows that were written: an item listed but not archived still counts as
  listed and is never marked deleted.
* **Tombstones** (``finish_listing``, called by the runner inside the last page's
  transaction): only after a complete full listing with no failed item, only rows the API
  had given before, and never more than ``max_deleted_percent`` of the account's rows in
  one run: above that nothing is marked, an alert is opened and the run says why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from archiver.archive.alerts import open_alert, resolve_alert
from archiver.records import Comment, Interaction, Page, Post, Unmapped, now_utc

HELD_BACK_ALERT = "deletions_held"   # alerts.kind when a listing would mark too much deleted


class CursorRefused(Exception):
    """Raised by a connector's ``fetch`` when the platform no longer accepts a saved
    cursor (YouTube's invalidPageToken): the walk starts again from the top."""


@dataclass
class Batch:
    """One page of a platform's list, as the connector fetched it."""

    items: list[Any]
    next_cursor: Any = None           # JSON-able; what to fetch the next page with
    has_more: bool | None = None      # None: there is more exactly when there is a next cursor
    # Items the platform's list held but that could not be read at all, so not even their
    # ids are known (a damaged block of a Bluesky repository): (what, why). The listing
    # then counts as incomplete: it marks nothing deleted.
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    # A listing of comments: the posts whose comments this page holds in full, each with
    # the depth the platform's answer reached (None: every level). See ``Page.covered``.
    covered: list[tuple[str, int | None]] = field(default_factory=list)
    # More of this page's items come on the next pages (a thread's replies fetched one
    # request at a time): an incremental walk never stops on it, even if all is known.
    unfinished: bool = False

    @property
    def more(self) -> bool:
        return self.next_cursor is not None if self.has_more is None else bool(self.has_more)


class Listing:
    """The resumable listing of one stream (see the module's doc).

    ``fetch(cursor) -> Batch``: one page; ``cursor`` is None for the first.
    ``item_id(item) -> str``: the id the archive keys the item by (``posts.post_id``, or
    ``interactions.target`` for likes), read from the raw item.
    ``map_item(item) -> list``: the item's records (its post, and its comments if any);
    raises when it cannot, which makes the item reported and kept raw.
    ``reached(batch)``: how far back a page reached, comparable across pages (a time, or a
    cursor that is one): lets an incremental walk tell when it has passed a cut-off point.
    ``before_page(items)``: optional, called before mapping a page's items (batch lookups).
    ``listing_of``: "posts", or "like" / "bookmark" for a listing of the owner's interactions,
    or "comment" for a listing of the comments under the owner's posts (its batches say
    which posts they cover, and how deep: only those comments may be marked deleted).
    ``stop_at_known``: incremental runs stop at the first page whose items are all known
    (False: they walk the whole list, as full runs do, but never tombstone).
    ``carry_keys``: keys of the connector's own in the stream's state, kept in every state
    the walker writes (``carry``, which the connector may update while a page is mapped).
    ``resume_at_cursor``: an incremental walk cut off earlier goes on from its cursor at
    once, before the top of the list (where every page costs quota: YouTube), instead of
    first reading the top until it is known and then jumping to the cut-off point.
    """

    def __init__(self, ctx, stream: str, *, fetch: Callable[[Any], Batch], item_id: Callable[[Any], str],
                 map_item: Callable[[Any], list], reached: Callable[[Batch], Any] | None = None,
                 before_page: Callable[[list], None] | None = None, listing_of: str = "posts",
                 stop_at_known: bool = True, resume_at_cursor: bool = False, carry_keys: Iterable[str] = ()):
        self.ctx, self.stream = ctx, stream
        self.fetch, self.item_id, self.map_item = fetch, item_id, map_item
        self.reached = reached or (lambda batch: batch.next_cursor)
        self.before_page = before_page
        self.listing_of = listing_of
        self.stop_at_known = stop_at_known
        self.resume_at_cursor = resume_at_cursor
        self.listed: set[str] = set()   # ids this run's walk was given, for the connector's later passes
        # Keys of the connector's own kept in the stream's state with the walker's, committed
        # with each page (Mastodon's newest status id); it may change them while mapping.
        self.carry_keys = tuple(carry_keys)
        self.carry: dict[str, Any] = {}

    # -- the walk ----------------------------------------------------------------------
    def pages(self) -> Iterator[Page]:
        state = self.ctx.state(self.stream) or {}
        # The connector's own keys in the stream's state ride along (see ``carry``).
        self.carry = {**{k: state[k] for k in self.carry_keys if k in state}, **self.carry}
        kept = {"last_full_at": state["last_full_at"]} if state.get("last_full_at") else {}
        # A full listing cut off earlier is resumed by the next full run, even when
        # incremental runs came in between (they keep where it stood).
        cut_off = state.get("full_cut_off")
        if state.get("mode") == "full" and state.get("listing") and state.get("cursor") is not None:
            cut_off = {"listing": state["listing"], "cursor": state["cursor"]}
        if self.ctx.full:
            yield from self._full(cut_off, kept)
        else:
            yield from self._incremental(state, {**kept, **({"full_cut_off": cut_off} if cut_off else {})})

    def _fetch(self, cursor) -> Batch | None:
        """The page at ``cursor``, or None when the platform refused a saved cursor (said in
        the run's errors): the walk then starts again from the top."""
        try:
            return self.fetch(cursor)
        except CursorRefused as refused:
            if cursor is None:
                raise
            self.ctx.report(self.stream, f"the saved cursor was refused ({refused}); the listing starts "
                                         "again from the top")
            return None

    def _full(self, cut_off: dict | None, last_full: dict) -> Iterator[Page]:
        if cut_off:
            listing, cursor = cut_off["listing"], cut_off["cursor"]      # resume a cut-off full listing
        else:
            listing, cursor = uuid.uuid4().hex, None
        while True:
            batch = self._fetch(cursor)
            if batch is None:
                listing, cursor = uuid.uuid4().hex, None
                continue
            records, ids, unmapped = self._map(batch.items)
            unmapped += self._unreadable(batch)
            if not batch.more:
                done: dict[str, Any] = {"mode": "incremental", "cursor": None, "pending": [], "last_full_at": now_utc()}
                yield self._page(records, done, ids, unmapped, listing=listing, complete=True, covered=batch.covered)
                return
            next_state = {"mode": "full", "listing": listing, "cursor": batch.next_cursor, **last_full}
            yield self._page(records, next_state, ids, unmapped, listing=listing, covered=batch.covered)
            cursor = batch.next_cursor

    def _incremental(self, state: dict, last_full: dict) -> Iterator[Page]:
        # ``last_full``: what every state of this walk keeps (when the last full listing
        # finished, where a cut-off one stands).
        pending = [_cut_off(p) for p in state.get("pending") or []]
        if state.get("mode") == "incremental" and state.get("cursor") is not None:
            pending.append(_cut_off({"cursor": state["cursor"], "below": state.get("below", state["cursor"])}))
        pending.sort(key=lambda p: p["below"], reverse=True)
        cursor = None
        if self.resume_at_cursor and pending:
            cursor, pending = pending[0]["cursor"], pending[1:]
        # Once a saved cursor is refused, where the cut-off walks stood is lost: this walk
        # reads the list to its end instead of stopping at the first known page.
        to_the_end = False
        while True:
            batch = self._fetch(cursor)
            if batch is None:
                cursor, pending, to_the_end = None, [], True
                continue
            records, ids, unmapped = self._map(batch.items)
            unmapped += self._unreadable(batch)
            if not batch.more:
                # The end of the list: everything older than any cut-off point is seen.
                done = {"mode": "incremental", "cursor": None, "pending": [], **last_full}
                yield self._page(records, done, ids, unmapped)
                return
            reached = self.reached(batch)
            # A cut-off point above where this walk now stands is covered by this walk
            # (one exactly here is where the walk goes on, so it stays).
            pending = [p for p in pending if p["below"] <= reached]
            # An item already reported as unmappable counts as known: one bad item at the
            # top of the list must not make every run walk the whole list.
            known = self._known(ids) | {u.item_id for u in unmapped}
            if self.stop_at_known and not to_the_end and not batch.unfinished and ids and len(known) == len(set(ids)):
                if not pending:
                    done = {"mode": "incremental", "cursor": None, "pending": [], **last_full}
                    yield self._page(records, done, ids, unmapped)
                    return
                # The top is up to date: go on where the newest cut-off listing stopped.
                jump, pending = pending[0], pending[1:]
                yield self._page(records, {"mode": "incremental", "cursor": jump["cursor"], "below": jump["below"],
                                           "pending": pending, **last_full}, ids, unmapped)
                cursor = jump["cursor"]
                continue
            yield self._page(records, {"mode": "incremental", "cursor": batch.next_cursor, "below": reached,
                                       "pending": pending, **last_full}, ids, unmapped)
            cursor = batch.next_cursor

    def _known(self, ids: list[str]) -> set[str]:
        if self.listing_of == "comment":
            return self.ctx.known_comment_ids(ids)
        return self.ctx.known_post_ids(ids)

    # -- one page ----------------------------------------------------------------------
    def _map(self, items: list) -> tuple[list, list[str], list[Unmapped]]:
        if self.before_page is not None and items:
            self.before_page(items)
        records, ids, unmapped = map_items(self.ctx, self.stream, items, item_id=self.item_id,
                                           map_item=self.map_item, listing_of=self.listing_of)
        self.listed.update(ids)
        return records, ids, unmapped

    def _unreadable(self, batch: Batch) -> list[Unmapped]:
        if not batch.unreadable:
            return []
        first, why = batch.unreadable[0]
        self.ctx.report(f"{self.stream} listing", f"{len(batch.unreadable)} item(s) could not be read at all (first: "
                                                  f"{first}: {why}); this listing marks nothing deleted")
        return [Unmapped(f"unreadable:{what}", why) for what, why in batch.unreadable]

    def map_page(self, items: list) -> tuple[list, list[str], list[Unmapped]]:
        """Map a page the connector fetched outside the walk (Mastodon's newer statuses):
        the same per-item rules; returns the records, the ids and the unmapped items."""
        return self._map(items)

    def _page(self, records: list, state: dict, ids: list[str], unmapped: list[Unmapped], *,
              listing: str | None = None, complete: bool = False,
              covered: list[tuple[str, int | None]] | None = None) -> Page:
        state = {**self.carry, **state}
        return Page(self.stream, records, state, listing=listing, complete=complete, listed=ids,
                    unmapped=unmapped, listing_of=self.listing_of, covered=list(covered or []))


def map_items(ctx, stream: str, items: list, *, item_id: Callable[[Any], str], map_item: Callable[[Any], list],
              listing_of: str = "posts") -> tuple[list, list[str], list[Unmapped]]:
    """Map each item on its own: one that cannot be mapped is reported (with its id and
    why) and returned as Unmapped, to be kept raw; it never blocks the others. Returns the
    records, the ids of the items (the id each row is keyed by) and the unmapped ones.
    Used by ``Listing`` and by connectors for pages outside a listing (refreshes)."""
    from archiver.net.client import Cancelled, NetError
    from archiver.sync.imports import json_nesting_problem

    records: list = []
    ids: list[str] = []
    unmapped: list[Unmapped] = []

    def failed(ident: str | None, name: str, reason: str, item, *, kept: str = "it is kept raw") -> None:
        ctx.report(f"{stream} item {name}", f"could not be archived: {reason}; {kept} and never "
                                            "counted as deleted")
        if ident is None:
            # An item without an id is named by its content: the same one seen again is one row.
            content = _raw_json(item, lambda value: value) or ""
            ident = "unidentified:" + hashlib.sha256(content.encode()).hexdigest()[:16]
        unmapped.append(Unmapped(ident, reason, item))

    for position, item in enumerate(items):
        try:
            ident = str(item_id(item))
        except Exception as error:  # noqa: BLE001 - an item without an id is reported
            failed(None, f"#{position + 1} of a page",
                   f"the item has no id the archive can key it by ({type(error).__name__}: {error})", item)
            continue
        too_deep = json_nesting_problem(item) if isinstance(item, (dict, list)) else None
        if too_deep is not None:
            # Neither mapped nor kept raw: storing it as JSON again would recurse past
            # Python's limit and fail the whole page (the limit is the exports' own).
            ids.append(ident)
            failed(ident, ident, f"{too_deep} (the limit for any JSON archiver reads)",
                   {"not kept": too_deep}, kept="only its id is kept")
            continue
        try:
            mapped = list(map_item(item))
        except (Cancelled, KeyboardInterrupt):
            raise
        except Exception as error:  # noqa: BLE001 - one bad item never blocks the rest
            # The platform refusing us, or down after every retry, is the run's failure
            # (nothing of this page is committed), not one item's.
            if isinstance(error, NetError) and (error.kind in ("auth", "rate_limited") or error.retryable):
                raise
            ids.append(ident)
            failed(ident, ident, f"{type(error).__name__}: {error}", item)
            continue
        # The writer keys the row by the record's own id: the listed id follows it, so a
        # connector's item_id and its mapping can never drift apart.
        ids.append(_key_of(mapped, listing_of) or ident)
        records.extend(mapped)
    return records, ids, unmapped


def _key_of(records: list, listing_of: str) -> str | None:
    """The id of the item's own row among its records: the post's, or the interaction's target."""
    for record in records:
        if listing_of == "posts" and isinstance(record, Post) and record.native_id:
            return str(record.native_id)
        if listing_of == "comment" and isinstance(record, Comment) and record.native_id:
            return str(record.native_id)
        if listing_of in ("like", "bookmark") and isinstance(record, Interaction):
            return str(record.target)
    return None


def _cut_off(point) -> dict:
    """A pending cut-off point; states written before the walker kept bare cursors."""
    if isinstance(point, dict):
        return {"cursor": point["cursor"], "below": point.get("below", point["cursor"])}
    return {"cursor": point, "below": point}


# -- inside the runner's page transaction ---------------------------------------------------


def record_page(db, account, page: Page, *, failed_ids: Iterable[tuple[str, str, Any]] = (),
                scrub: Callable[[Any], Any] = lambda value: value, now: str | None = None) -> None:
    """The listing bookkeeping of one page, in its transaction: the listed ids of a full
    listing, the items that could not be archived (``failed_ids``: id, reason, raw, for
    records the writer refused), and the items archived now that once could not be."""
    from archiver.archive.text import without_nul

    account_id, now = account.account_id, now or now_utc()
    # Ids as the writer stores them (no NUL), or a listed item would never match its row.
    listed = without_nul(page.listed)
    failures = without_nul([(u.item_id, u.error, u.raw) for u in page.unmapped] + list(failed_ids))
    if page.listing is not None:
        db.execute("INSERT OR IGNORE INTO listings (account_id, listing, stream, of, started_at) VALUES (?,?,?,?,?)",
                   [account_id, page.listing, page.stream, page.listing_of, now])
        if listed:
            db.conn.executemany("INSERT OR IGNORE INTO listed_ids (account_id, listing, item_id) VALUES (?,?,?)",
                                [(account_id, page.listing, item) for item in listed])
        if page.covered:
            db.conn.executemany("INSERT INTO listing_scope (account_id, listing, post_id, depth) VALUES (?,?,?,?) "
                                "ON CONFLICT(account_id, listing, post_id) DO UPDATE SET depth=excluded.depth",
                                [(account_id, page.listing, post, depth) for post, depth in without_nul(page.covered)])
        if failures:
            db.execute("UPDATE listings SET failed = failed + ? WHERE account_id=? AND listing=?",
                       [len(failures), account_id, page.listing])
    for item_id, error, raw in failures:
        db.execute(
            "INSERT INTO unmapped_items (account_id, stream, item_id, error, raw, first_seen_at, last_seen_at) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT(account_id, stream, item_id) DO UPDATE SET error=excluded.error, "
            "raw=coalesce(excluded.raw, raw), last_seen_at=excluded.last_seen_at",
            [account_id, page.stream, item_id, error, _raw_json(raw, scrub), now, now])
    archived = set(listed or ()) - {f[0] for f in failures}
    if archived:
        chunk = sorted(archived)
        db.execute(f"DELETE FROM unmapped_items WHERE account_id=? AND stream=? AND item_id IN "
                   f"({','.join('?' * len(chunk))})", [account_id, page.stream, *chunk])


def _raw_json(raw: Any, scrub) -> str | None:
    if raw is None:
        return None
    try:
        return json.dumps(scrub(_without_queries(raw)), sort_keys=True, default=str)
    except (TypeError, ValueError):
        return json.dumps(repr(raw))


def _without_queries(value: Any) -> Any:
    """A raw payload kept as it came, but with every link's query string dropped: signed,
    expiring parts (and any token in a link) are never stored."""
    from archiver.net.client import scrubber

    # Plain loops, not comprehensions, as in net.Scrubber.obj (depth: a frame a level).
    if isinstance(value, dict):
        copy = {}
        for key, item in value.items():
            copy[key] = _without_queries(item)
        return copy
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            items.append(_without_queries(item))
        return items
    if isinstance(value, str) and value.startswith(("http://", "https://")) and "?" in value:
        return scrubber.url(value)
    return value


# What each kind of listing may mark deleted: the table, its key column, and which rows.
_TARGETS = {
    "posts": ("posts", "post_id", "account_id=?", []),
    "like": ("interactions", "target", "account_id=? AND kind=?", ["like"]),
    "bookmark": ("interactions", "target", "account_id=? AND kind=?", ["bookmark"]),
    "comment": ("comments", "comment_id", "account_id=? AND platform=?", []),
}

# A listing of comments judges only the comments it could have seen: those of the posts
# its pages covered (``listing_scope``), and of a post whose answer is a reply tree that
# reaches only so deep (a thread depth limit), only those the archive's own parent links
# put within that depth, below parents this listing saw (a reply under one that is gone
# is out of the tree's reach, not known to be deleted). Level 1 answers the post itself.
_COMMENTS_IN_SCOPE = """WITH RECURSIVE in_scope(comment_id, level, depth) AS (
    SELECT c.comment_id, 1, s.depth FROM listing_scope s
    JOIN comments c ON c.platform=? AND c.post_id=s.post_id
    WHERE s.account_id=? AND s.listing=? AND (s.depth IS NULL OR c.parent_id IS NULL OR c.parent_id=c.post_id)
  UNION
    SELECT c.comment_id, r.level + 1, r.depth FROM in_scope r
    JOIN comments c ON c.platform=? AND c.parent_id=r.comment_id
    WHERE r.depth IS NOT NULL AND r.level < r.depth
      AND r.comment_id IN (SELECT item_id FROM listed_ids WHERE account_id=? AND listing=?)
) """


def finish_listing(db, account, page: Page, *, report: Callable[[str, str], None], now: str | None = None,
                   noun: str = "posts") -> int:
    """The last page of a complete full listing was written (same transaction): mark
    deleted what the API had given before and the platform no longer listed, unless the
    listing had failures, listed nothing, or would mark more than the allowed share.
    Returns the number of rows marked."""
    account_id, now = account.account_id, now or now_utc()
    table, key, where, params = _TARGETS[page.listing_of]
    listing = page.listing
    scope, scope_params = "", []
    if page.listing_of == "comment":
        params = [account.platform]
        scope, scope_params = _COMMENTS_IN_SCOPE, [account.platform, account_id, listing, account.platform,
                                                   account_id, listing]
        where += " AND comment_id IN (SELECT comment_id FROM in_scope)"
    listed, failed = db.execute(
        "SELECT (SELECT count(*) FROM listed_ids WHERE account_id=? AND listing=?), failed "
        "FROM listings WHERE account_id=? AND listing=?", [account_id, listing, account_id, listing]).fetchone()
    # Rows the API gave (never ones only an export knows: private posts the API never
    # lists) and not yet marked deleted; "missing" are those this listing did not list.
    live = (f"{where} AND deleted_at IS NULL "
            "AND EXISTS (SELECT 1 FROM json_each(sources) WHERE json_each.value = 'api')")
    # A row first seen after the listing started (published meanwhile, written by a run
    # while this listing was cut off) may lie above where the listing had reached: it is
    # not judged by this listing.
    missing = (f"{live} AND first_seen_at < (SELECT started_at FROM listings WHERE account_id=? AND listing=?) "
               f"AND {key} NOT IN (SELECT item_id FROM listed_ids WHERE account_id=? AND listing=?)")
    missing_params = [account_id, *params, account_id, listing, account_id, listing]
    alive = db.execute(f"{scope}SELECT count(*) FROM {table} WHERE {live}",
                       [*scope_params, account_id, *params]).fetchone()[0]
    gone = db.execute(f"{scope}SELECT count(*) FROM {table} WHERE {missing}",
                      [*scope_params, *missing_params]).fetchone()[0]
    limit = account.max_deleted_percent
    held_back = None
    if failed:
        held_back = (f"{failed} listed item(s) could not be archived (see the run's errors); "
                     f"nothing was marked deleted by this listing")
    elif listed == 0 and (page.listing_of != "comment" or gone):
        # An empty "complete" listing is what a vanished or broken platform looks like
        # (posts without any comment are not: a comment listing says so only when it
        # would mark some deleted).
        what = "posts" if page.listing_of == "posts" else f"{page.listing_of}s"
        held_back = f"the platform listed no {what} at all; nothing was marked deleted"
    elif gone and gone * 100 > limit * alive:
        share = round(gone * 100 / alive)
        held_back = (f"the platform no longer lists {gone} of {alive} {noun} ({share} %), more than the "
                     f"{limit:g} % allowed in one run (max_deleted_percent); nothing was marked deleted. "
                     "If they really are gone, raise max_deleted_percent for this account and run "
                     "`archiver export --full` again")
        _open_alert(db, account_id, now, held_back, {"listing": listing, "missing": gone, "of": alive,
                                                     "stream": page.stream})
    marked = 0
    if held_back is None and gone:
        db.execute(f"{scope}UPDATE {table} SET deleted_at=? WHERE {missing}", [*scope_params, now, *missing_params])
        # (a statement that starts with WITH has no rowcount in Python's sqlite3)
        marked = db.execute("SELECT changes()").fetchone()[0]
    if held_back is None:
        _resolve_alert(db, account_id, now, page.stream)
    else:
        report(f"{page.stream} listing", held_back)
    db.execute("UPDATE listings SET completed_at=?, listed=?, tombstoned=?, held_back=? WHERE account_id=? AND listing=?",
               [now, listed, marked, held_back, account_id, listing])
    # Older listings of this stream have done their work: keep only this one's ids.
    for kept in ("listed_ids", "listing_scope"):
        db.execute(f"DELETE FROM {kept} WHERE account_id=? AND listing IN (SELECT listing FROM listings "
                   "WHERE account_id=? AND stream=? AND listing != ?)", [account_id, account_id, page.stream, listing])
    return marked


def _open_alert(db, account_id: str, now: str, message: str, details: dict) -> None:
    open_alert(db, account_id, HELD_BACK_ALERT, _parse(now), message, details)


def _resolve_alert(db, account_id: str, now: str, stream: str) -> None:
    # One alert of this kind per account: only a later listing of the stream that held
    # back closes it (the posts listing of a run must not close what its comments listing
    # holds back, to have it opened, and sent, again a minute later).
    row = db.execute("SELECT details FROM alerts WHERE account_id=? AND kind=? AND state='open'",
                     [account_id, HELD_BACK_ALERT]).fetchone()
    if row is None or json.loads(row[0] or "{}").get("stream", stream) != stream:
        return
    resolve_alert(db, account_id, HELD_BACK_ALERT, _parse(now),
                  "a later full listing found no more than the allowed share gone")


def _parse(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def last_full_listing(db, account_id: str) -> str | None:
    """When the account's last complete full listing finished (None: never)."""
    row = db.execute("SELECT max(completed_at) FROM listings WHERE account_id=? AND of='posts'",
                     [account_id]).fetchone()
    return row[0] if row else None
