"""Runs one account: connector pages -> media downloads (downloads.py) -> writer, one
transaction a page.

Each page's records and the stream state that follows them commit together, so a run
killed at any instant resumes from its last checkpoint and converges to the same archive.
Media is downloaded before the page commits (the links may expire within hours); a file
that fails is recorded as failed on its post, never aborting the run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sqlite3
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator

from archiver.archive import Archive, lists
from archiver.archive.writer import ArchiveWriter
from archiver.config import AccountConfig, DownloadLimits
from archiver.records import (
    Collection,
    Comment,
    CommentsListed,
    Interaction,
    ListPage,
    OwnedContact,
    Page,
    Person,
    Post,
    Profile,
    Snapshot,
    now_utc,
)
from archiver.sync.downloads import MediaDownloader, avatar_source

log = logging.getLogger("archiver.sync.runner")


class CancelFlag:
    """Set by SIGTERM/SIGINT (or a test); connectors and the runner stop between pages."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()

    @contextmanager
    def on_signals(self):
        """Turn the first SIGTERM/SIGINT into a cancel; a second one interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {}

        def handler(signum, frame):
            if self():
                signal.signal(signum, previous[signum])
                raise KeyboardInterrupt
            log.info("stopping at the next page or chunk boundary (signal %s); a second one stops at once", signum)
            self.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


class RunFailed(Exception):
    """A run that ended without completing; its reason is recorded in ``runs``."""


class PageNotKept(RunFailed):
    """The database refused a page's write: nothing of the page was committed."""


def _record_error(error: Exception) -> bool:
    """An error in one record's data (a value the writer cannot take, a broken link to
    another row), which the record's savepoint undoes; anything else (the database full,
    an I/O error, a trigger that refuses the write) belongs to the whole page."""
    if isinstance(error, sqlite3.IntegrityError):
        return getattr(error, "sqlite_errorname", "") != "SQLITE_CONSTRAINT_TRIGGER"
    if isinstance(error, (sqlite3.ProgrammingError, sqlite3.InterfaceError)) and "binding parameter" in str(error):
        # A value of a type SQLite cannot take (an object where the platform promised
        # text): refused before the statement ran, so the transaction is as it was.
        return True
    if isinstance(error, sqlite3.Error):
        return False
    # OverflowError: an integer beyond SQLite's 64 bits (a count of 10**30 in an export).
    return isinstance(error, (ValueError, TypeError, LookupError, AttributeError, OverflowError))


def _page_failure(error: Exception, number: int, stream: str) -> str:
    """What a person reads when a page could not be written: what happened, that nothing
    of the page was kept, and what to do."""
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_FULL") or "disk is full" in str(error):
        what, advice = "disk full", "free space and run again"
    elif name.startswith("SQLITE_IOERR") or "I/O error" in str(error):
        what, advice = f"disk I/O error ({error})", "check the disk holding the archive and run again"
    else:
        what, advice = (f"the database refused the write ({type(error).__name__}: {error})",
                        "run again; if it repeats, run `archiver verify` and report it")
    return (f"{what} while writing page {number} of {stream}; nothing of that page was kept; {advice}")


# The sync_state stream where SyncContext.authorization_expires keeps when an account's
# authorization runs out (read by the alerts and `archiver status`).
AUTHORIZATION_STATE = "authorization"


@dataclass
class SyncContext:
    """What a connector may ask of the archive while it produces pages."""

    archive: Archive
    account: AccountConfig
    full: bool = False
    cancel: Callable[[], bool] = lambda: False
    errors: list[dict[str, str]] = field(default_factory=list)
    # Lines for the run's summary (shown at its end, kept in runs.summary and shown by
    # `archiver status`): what a person must know that is no single item's error.
    notes: list[str] = field(default_factory=list)
    run_id: int | None = None
    temp_dir: Path | None = None   # this run's own folder (run_folders.py); see temp_folder
    # The bounds of one download ([downloads] in the config) and the clock they are
    # measured by: a connector fetching a big file itself (a platform's export zip) passes
    # them to media.copy_bounded, as the media downloads do.
    download_limits: DownloadLimits = field(default_factory=DownloadLimits)
    download_clock: Callable[[], float] | None = None

    @property
    def temp_folder(self) -> Path:
        """Where a connector puts files it fetches for this run (a platform's export
        zip, a repository): this run's own folder, removed when the run ends well."""
        if self.temp_dir is None:   # a context made outside a run (tests of one connector)
            self.temp_dir = self.archive.media_root / ".tmp"
        self.temp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.temp_dir

    @property
    def db(self):
        return self.archive.db

    def state(self, stream: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT state FROM sync_state WHERE account_id=? AND stream=?", [self.account.account_id, stream]
        ).fetchone()
        return json.loads(row[0]) if row else None

    def save_state(self, stream: str, state: dict[str, Any] | None) -> None:
        """Outside a page (e.g. a portability request id): commits at once."""
        with self.archive.writing():
            _write_state(self.db, self.account.account_id, stream, state)

    def authorization_expires(self, at: str | None, renew: str = "") -> None:
        """Say when the account's authorization runs out for good (an ISO time: a token
        archiver cannot renew itself), or None when it does not (renewed by archiver, or
        without an end). ``renew``: what the person must do before then. Kept in the
        archive's ``sync_state`` (stream ``authorization``); the alerts warn ahead of it."""
        self.save_state(AUTHORIZATION_STATE, {"expires_at": at, "renew": renew} if at else None)

    def known_post_ids(self, ids) -> set[str]:
        ids = list(ids)
        if not ids:
            return set()
        rows = self.db.execute(
            f"SELECT post_id FROM posts WHERE platform=? AND post_id IN ({','.join('?' * len(ids))})",
            [self.account.platform, *ids],
        ).fetchall()
        return {r[0] for r in rows}

    def known_comment_ids(self, ids) -> set[str]:
        ids = list(ids)
        found: set[str] = set()
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit, with room
            chunk = ids[start:start + 500]
            found.update(r[0] for r in self.db.execute(
                f"SELECT comment_id FROM comments WHERE platform=? AND comment_id IN ({','.join('?' * len(chunk))})",
                [self.account.platform, *chunk]).fetchall())
        return found

    def archived_posts(self, ids, fields: dict[str, str]) -> dict[str, dict[str, Any]]:
        """What the archive holds of these posts of the account: post_id ->
        {name: value} for ``fields`` (name -> a column of posts, e.g.
        ``{"replies": "comment_count"}``, or a JSON path into the post's raw payload, e.g.
        ``{"edited_at": "$.api.edited_at"}``). Posts not archived are absent. Connectors use
        it to ask the platform again only for what changed."""
        ids = list(ids)
        found: dict[str, dict[str, Any]] = {}
        selected, paths = self._post_fields(fields)
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit, with room
            chunk = ids[start:start + 500]
            rows = self.db.execute(
                f"SELECT post_id, {selected} FROM posts WHERE platform=? AND account_id=? "
                f"AND post_id IN ({','.join('?' * len(chunk))})",
                [*paths, self.account.platform, self.account.account_id, *chunk]).fetchall()
            found.update({row[0]: dict(zip(fields, row[1:], strict=True)) for row in rows})
        return found

    @cached_property
    def _post_columns(self) -> set[str]:
        return {row[1] for row in self.db.execute("PRAGMA table_info(posts)")}

    def _post_fields(self, fields: dict[str, str]) -> tuple[str, list[str]]:
        """The SELECT list for ``fields`` (see archived_posts) and the JSON paths it binds.
        Only columns and paths: no SQL comes from a connector."""
        selected, paths = [], []
        for wanted in fields.values():
            if wanted in self._post_columns:
                selected.append(f'"{wanted}"')
            elif wanted.startswith("$"):
                selected.append("json_extract(raw, ?)")
                paths.append(wanted)
            else:
                raise ValueError(f"{wanted!r} is neither a column of posts nor a JSON path into a post's raw "
                                 "payload ('$.…')")
        return ", ".join(selected), paths

    def recent_post_ids(self, since_iso: str) -> list[str]:
        """API-known posts created since ``since_iso`` (for refreshing their counts)."""
        rows = self.db.execute(
            "SELECT post_id FROM posts WHERE account_id=? AND created_at >= ? AND deleted_at IS NULL "
            "AND post_id NOT LIKE 'provisional:%' ORDER BY created_at DESC",
            [self.account.account_id, since_iso],
        ).fetchall()
        return [r[0] for r in rows]

    def every_archived_post(self, fields: dict[str, str]) -> dict[str, dict[str, Any]]:
        """Every post of the account the archive holds under the platform's id (deleted
        ones too; not the provisional ones an export could not name): post_id ->
        {name: value} for ``fields``, as in ``archived_posts``."""
        selected, paths = self._post_fields(fields)
        rows = self.db.execute(
            f"SELECT post_id, {selected} FROM posts WHERE account_id=? AND post_id NOT LIKE 'provisional:%'",
            [*paths, self.account.account_id]).fetchall()
        return {row[0]: dict(zip(fields, row[1:], strict=True)) for row in rows}

    def stored_file_counts(self, post_ids) -> dict[str, int]:
        """post_id -> how many of the post's media slots hold a stored file, for these
        posts; a post with none (or not archived) is absent."""
        ids = list(post_ids)
        counts: dict[str, int] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit, with room
            chunk = ids[start:start + 500]
            counts.update(self.db.execute(
                f"SELECT post_id, count(*) FROM post_media WHERE platform=? AND status='ok' "
                f"AND post_id IN ({','.join('?' * len(chunk))}) GROUP BY post_id",
                [self.account.platform, *chunk]).fetchall())
        return counts

    def archived_reply_counts(self, comment_ids) -> dict[str, int]:
        """comment_id -> how many replies to it the archive holds, for those of these
        comments it holds (0 when none of their replies is archived)."""
        ids = [i for i in comment_ids if i]
        counts: dict[str, int] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit, with room
            chunk = ids[start:start + 500]
            counts.update(self.db.execute(
                "SELECT c.comment_id, (SELECT count(*) FROM comments r WHERE r.platform=c.platform "
                f"AND r.parent_id=c.comment_id) FROM comments c WHERE c.platform=? "
                f"AND c.comment_id IN ({','.join('?' * len(chunk))})",
                [self.account.platform, *chunk]).fetchall())
        return counts

    def owner_native_id(self) -> str | None:
        """The platform's id of the account itself, as its archived profile says (None
        before a profile with an id is archived)."""
        row = self.db.execute("SELECT native_id FROM accounts WHERE account_id=?",
                              [self.account.account_id]).fetchone()
        return row[0] if row and row[0] else None

    def report(self, item: str, error: str) -> None:
        """One bad item: recorded in the run, logged, skipped."""
        from archiver.net.client import scrubber

        entry = {"item": scrubber.text(item), "error": scrubber.text(error)}
        self.errors.append(entry)
        log.warning("skipped %s: %s", entry["item"], entry["error"])

    def note(self, line: str) -> None:
        """A line for the run's summary (e.g. the parts of an export it did not read)."""
        from archiver.net.client import scrubber

        self.notes.append(scrubber.text(line))
        log.warning("%s", self.notes[-1])


def only_holes(pages: Iterator[Page], ctx: SyncContext) -> Iterator[Page]:
    """An export read again for the files an earlier import of it could not store: only
    its posts with a failed media slot, each with only the files of those slots. Nothing
    else is written again, no checkpoint moves, nothing is tombstoned."""
    rows = ArchiveWriter(ctx.db, platform=ctx.account.platform, account_id=ctx.account.account_id, source="")
    for page in pages:
        kept = []
        for record in page.records:
            post_id = rows.archived_post_id(record) if isinstance(record, Post) else None
            if post_id is None:
                continue
            failed = {tuple(row) for row in ctx.db.execute(
                "SELECT role, position FROM post_media WHERE platform=? AND post_id=? AND status='failed'",
                [ctx.account.platform, post_id]).fetchall()}
            refs = [ref for ref in record.media if (ref.role, ref.position) in failed]
            if refs:
                record.media = refs
                kept.append(record)
        if kept:
            yield Page(page.stream, kept, source=page.source)


def _write_state(db, account_id: str, stream: str, state: dict | None) -> None:
    if state is None:
        db.execute("DELETE FROM sync_state WHERE account_id=? AND stream=?", [account_id, stream])
        return
    db.execute(
        "INSERT INTO sync_state (account_id, stream, state, updated_at) VALUES (?,?,?,?) "
        "ON CONFLICT(account_id, stream) DO UPDATE SET state=excluded.state, updated_at=excluded.updated_at",
        [account_id, stream, json.dumps(state, sort_keys=True), now_utc()],
    )


def mark_dead_runs(db, *, trust_pids: bool = True) -> None:
    """Runs left 'running' by a process that no longer exists were interrupted.

    A pid tells liveness only on the machine (and in the container) that wrote it. An
    archive that travels between machines (archiver.fleet: checked out by whichever worker
    runs the account) passes ``trust_pids=False``: there the fleet's run ledger in PostgreSQL
    decides who holds the account, and every run this archive still shows 'running' was cut
    short on some other machine, whatever process now has its pid here."""
    for run_id, pid in db.execute("SELECT run_id, pid FROM runs WHERE status='running'").fetchall():
        if trust_pids and pid and process_alive(pid):
            continue
        db.execute(
            "UPDATE runs SET status='interrupted', message=coalesce(message, 'the process ended before the run finished; "
            "the next run resumes from its checkpoint') WHERE run_id=?",
            [run_id],
        )


def process_alive(pid: int) -> bool:
    """Whether the process ``pid`` still runs (a zombie does not): a run whose process is
    gone was interrupted."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (a test that killed it and has not reaped it) is not running.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class Runner:
    """Drives pages from a connector into the archive and keeps the run record."""

    def __init__(self, archive: Archive, connector, *, progress: Callable[[str], None] | None = None,
                 limits: DownloadLimits | None = None):
        """``limits``: the bounds of one download ([downloads] in the config)."""
        self.archive = archive
        self.connector = connector
        self.account: AccountConfig = connector.account
        self.progress = progress or (lambda message: log.info("%s", message))
        self.downloads = MediaDownloader(archive, connector, progress=self.progress, limits=limits)
        # A progress reporter that can draw a bar for a long download says so (cli._progress).
        self.downloads.on_bytes = getattr(progress, "bytes", None)
        self.media = self.downloads.media
        self._page_numbers: dict[str, int] = {}   # stream -> pages written in this run
        # People a committed chunk of a big follower list (archiver.archive.lists).
        self.list_chunk = lists.CHUNK

    # -- run record ------------------------------------------------------------------
    def _start_run(self, kind: str, mode: str) -> int:
        db = self.archive.db
        with self.archive.writing():
            mark_dead_runs(db)
            return db.execute(
                "INSERT INTO runs (account_id, platform, kind, mode, pid, started_at, status) VALUES (?,?,?,?,?,?, 'running') "
                "RETURNING run_id",
                [self.account.account_id, self.account.platform, kind, mode, os.getpid(), now_utc()],
            ).fetchone()[0]

    def _end_run(self, run_id: int, status: str, counts: dict, errors: list, message: str | None,
                 failure_kind: str | None = None, summary: list[str] | None = None) -> None:
        from archiver.net.client import scrubber

        db = self.archive.db
        with self.archive.writing():
            db.execute(
                "UPDATE runs SET status=?, ended_at=?, counts=?, errors=?, message=?, failure_kind=?, summary=? "
                "WHERE run_id=?",
                [status, now_utc(), json.dumps(counts, sort_keys=True), json.dumps(errors[:500]),
                 scrubber.text(message) if message else None, failure_kind,
                 json.dumps(summary) if summary else None, run_id],
            )

    # -- the loop --------------------------------------------------------------------
    def run(self, pages: Callable[[SyncContext], Iterator[Page]], *, kind: str, mode: str,
            full: bool = False, cancel: Callable[[], bool] = lambda: False,
            source: str = "api", wait: float = 0) -> dict[str, Any]:
        """Run ``pages`` to the end (or to a failure / cancel). Returns the run summary.

        One run per account at a time, whoever starts it (CLI, daemon, inbox): the
        account's lock is taken first, waiting up to ``wait`` seconds for a run in
        progress; raises locks.AccountBusy (no run is recorded) when it stays taken."""
        from archiver.sync.locks import account_lock

        with account_lock(self.archive.folder, self.account.account_id, wait=wait, cancel=cancel,
                          doing=kind if kind != "import" else f"import of {mode}"):
            return self._run_locked(pages, kind=kind, mode=mode, full=full, cancel=cancel, source=source)

    def _run_locked(self, pages, *, kind: str, mode: str, full: bool, cancel, source: str) -> dict[str, Any]:
        from archiver.sync.run_folders import RunFolder, sweep_stale

        run_id = self._start_run(kind, mode)
        # This run's own temporary folder: partial downloads and fetched export files.
        # Files left a day ago by runs that ended go; a live run's are never touched.
        tmp_root = self.archive.media_root / ".tmp"
        folder = RunFolder(tmp_root, self.account.account_id, run_id).open()
        try:
            sweep_stale(tmp_root)
            folder.take_over_parts()   # this account's interrupted downloads resume here
            self.downloads.start_run(tmp=folder.path)
            self.media = self.downloads.media
            ctx = SyncContext(self.archive, self.account, full=full, cancel=cancel, run_id=run_id,
                              temp_dir=folder.path, download_limits=self.downloads.limits,
                              download_clock=self.media.clock)
            result = self._run_pages(pages, ctx, run_id, cancel=cancel, source=source)
        except BaseException:
            folder.close(keep_parts=True)
            raise
        folder.close(keep_parts=result["status"] != "ok")
        return result

    def _run_pages(self, pages, ctx: SyncContext, run_id: int, *, cancel, source: str) -> dict[str, Any]:
        from archiver.archive.media import DiskFull, DownloadCut, no_space
        from archiver.net.client import Cancelled, NetError, scrubber
        from archiver.sync.imports import ExportFileError

        self._page_numbers = {}
        counts: dict[str, int] = {}
        status, message = "ok", None
        # Why it failed, in net.NetError's words (auth, gone, transport, timeout, server …):
        # the alerts tell an unreachable platform from an account that is gone.
        failure_kind: str | None = None
        try:
            # A follower list a stopped run left half applied is finished first: until
            # it is, the account's audience is part old, part new.
            for key, n in lists.apply_pending(self.archive, lambda list_source: self._writer(list_source),
                                              self.account.account_id, cancel=cancel,
                                              chunk=self.list_chunk).items():
                counts[key] = counts.get(key, 0) + n
            if source == "api":
                # Holes left by earlier runs first, while the platform's links are fresh.
                for key, n in self.downloads.repair(ctx).items():
                    if n:
                        counts[key] = counts.get(key, 0) + n
            for page in pages(ctx):
                if cancel():
                    raise Cancelled("stopped by request")
                # A connector may hand over pages from an export file inside an API run
                # (TikTok's Data Portability zip): those carry their own provenance.
                page_counts = self.write_page(page, ctx, source=page.source or source)
                for key, n in page_counts.items():
                    counts[key] = counts.get(key, 0) + n
                self.progress(_page_line(page, counts))
                if cancel():
                    raise Cancelled("stopped by request")
        except Cancelled as stop:
            for key, n in getattr(stop, "counts", {}).items():
                counts[key] = counts.get(key, 0) + n
            said = str(stop) if str(stop).startswith("stopped") else "stopped by request"
            status, message = "interrupted", f"{said}; the next run resumes from its checkpoint"
        except KeyboardInterrupt:
            status, message = "interrupted", "interrupted; the next run resumes from its checkpoint"
            self.downloads.summarize(ctx, counts)
            self._end_run(run_id, status, counts, ctx.errors, message)
            raise
        except (NetError, RunFailed, ExportFileError, DiskFull, DownloadCut) as error:
            status, message = "failed", str(error)
            failure_kind = error.kind if isinstance(error, NetError) else None
        except Exception as error:  # a bug or an unexpected payload: record it, keep the archive
            status = "failed"
            if no_space(error):   # an export file being fetched, a temporary file …
                message = (f"disk full in {self.archive.folder} ({error.strerror}: {error.filename or 'a file'}); "
                           "nothing of the unfinished page was kept; free some space and run again")
            else:
                message = f"{type(error).__name__}: {error}"
                log.error("run failed: %s", scrubber.text("".join(traceback.format_exception(error))))
        finally:
            self.downloads.close()
        self.downloads.summarize(ctx, counts)
        # One line per cause of the files that failed, not one per file (the full list is
        # in runs.errors: `archiver status --errors`).
        summary = self.downloads.summary_lines(importing=source.startswith("export:"))
        for line in summary:
            log.warning("%s", line)
        summary += ctx.notes
        self._end_run(run_id, status, counts, ctx.errors, message, failure_kind, summary)
        return {"run_id": run_id, "status": status, "message": message, "counts": counts, "errors": ctx.errors,
                "failure_kind": failure_kind, "summary": summary}

    def _writer(self, source: str) -> ArchiveWriter:
        from archiver.net.client import scrubber

        return ArchiveWriter(self.archive.db, platform=self.account.platform, account_id=self.account.account_id,
                             source=source, scrub=scrubber.obj)

    def write_page(self, page: Page, ctx: SyncContext, *, source: str = "api") -> dict[str, int]:
        """Download the page's media, then commit its records and state in one transaction.

        A follower / following list is the exception, as it can hold millions of people
        (archiver.archive.lists): a whole list (Snapshot) is staged in committed chunks before
        that transaction, which marks it whole; a whole list, from a Snapshot or the last
        ListPage of an API listing, is applied in committed chunks after it."""
        stored = self.downloads.for_page(page, ctx, source)
        db = self.archive.db
        writer = self._writer(source)
        number = self._page_numbers[page.stream] = self._page_numbers.get(page.stream, 0) + 1
        to_apply: list[str] = []
        # Snapshot records staged before the page's transaction: id -> True (staged in
        # chunks), False (in the archive already) or the members of a list of one chunk,
        # staged and applied inside the transaction.
        staging: dict[int, Any] = {}
        for record in page.records:
            if isinstance(record, Snapshot):
                staging[id(record)] = lists.stage_snapshot(self.archive, writer, record, cancel=ctx.cancel,
                                                           chunk=self.list_chunk)
                if staging[id(record)] is True:
                    to_apply.append(record.kind)
            elif isinstance(record, ListPage) and record.last:
                to_apply.append(record.kind)
        try:
            with self.archive.writing():
                written: list[str] = []                     # post ids this page wrote
                refused: list[tuple[str, str, Any]] = []    # posts the writer refused: id, reason, raw
                for record in page.records:
                    try:
                        record = _within_json_depth(record, ctx)
                        post_id = self._write_record(writer, record, stored, page, staging)
                    except Exception as error:
                        if not _record_error(error) or not db.conn.in_transaction:
                            # The database itself refused (disk full, I/O error, a trigger's
                            # RAISE(ROLLBACK) that ended the transaction): the records before
                            # this one may be gone, so none of the page, cursor included, is kept.
                            raise PageNotKept(_page_failure(error, number, page.stream)) from error
                        # One bad item is reported and skipped; it never aborts the page.
                        reason = f"{type(error).__name__}: {error}"
                        ctx.report(_describe(record), reason)
                        if isinstance(record, Post) or (page.listing_of == "comment" and isinstance(record, Comment)):
                            refused.append((record.native_id or _describe(record), reason, record.raw))
                    else:
                        if post_id is not None:
                            written.append(post_id)
                self._record_listing(page, ctx, writer, written, refused)
                if page.state is not None or page.complete:
                    _write_state(db, self.account.account_id, page.stream, page.state)
        except PageNotKept:
            raise
        except sqlite3.Error as error:   # the state, the tombstones or the commit itself
            raise PageNotKept(_page_failure(error, number, page.stream)) from error
        from archiver.net.client import Cancelled

        try:
            for kind in to_apply:
                staged = writer.staged_list(kind)
                if staged is not None and staged["complete"] is not None:   # whole (its last page was not refused)
                    lists.apply_staged(self.archive, writer, kind, cancel=ctx.cancel, chunk=self.list_chunk)
        except Cancelled as stop:
            stop.counts = writer.counts   # the page is in: the run's record counts it
            raise
        return writer.counts

    def _record_listing(self, page: Page, ctx: SyncContext, writer: ArchiveWriter, written: list[str],
                        refused: list[tuple[str, str, Any]]) -> None:
        """The page's part of its listing (archiver.sync.listing): what was listed, what could
        not be archived, and on the last page of a complete full listing, the tombstones."""
        from archiver.net.client import scrubber
        from archiver.sync import listing

        if page.listing is not None and page.listed is None:
            # A connector that does not walk with archiver.sync.listing: the posts it wrote
            # are all that is known to have been listed.
            page.listed = written
        if page.listing is None and page.listed is None and not page.unmapped and not refused:
            return
        listing.record_page(self.archive.db, self.account, page, failed_ids=refused, scrub=scrubber.obj,
                            now=writer.now)
        if page.complete and page.listing is not None:
            noun = "comments" if page.listing_of == "comment" else getattr(self.connector, "post_noun", "posts")
            marked = listing.finish_listing(self.archive.db, self.account, page, report=ctx.report, now=writer.now,
                                            noun=noun)
            if marked:
                counted = f"{page.listing_of}s_tombstoned" if page.listing_of != "posts" else "posts_tombstoned"
                writer.counts[counted] = writer.counts.get(counted, 0) + marked

    def _write_record(self, writer: ArchiveWriter, record, stored: dict, page: Page,
                      staging: dict[int, Any] | None = None) -> str | None:
        """Write one record in its own savepoint; returns the post id for a post."""
        from archiver.net.client import scrubber

        with self.archive.db.atomic():  # a savepoint: a bad record leaves no half-written rows
            if isinstance(record, Profile):
                avatar = stored.get(id(record.avatar)) if record.avatar else None
                banner = stored.get(id(record.banner)) if record.banner else None
                writer.write_profile(record, avatar if avatar and avatar.sha256 else None,
                                     banner if banner and banner.sha256 else None)
            elif isinstance(record, Post):
                post_id = writer.write_post(record, listing=page.listing)
                for ref in record.media:
                    # A link is stored without its query (signed, expiring, maybe a token); a
                    # file inside an export is named as it is ("Roof cam #12.mp4").
                    where = ref.url if ref.opener is not None else scrubber.url(ref.url)
                    writer.link_media(post_id, ref, stored[id(ref)], where)
                return post_id
            elif isinstance(record, CommentsListed):
                writer.tombstone_comments(record.post_id, record.comment_ids, top_level_only=record.top_level_only)
            elif isinstance(record, Comment):
                author = record.author
                if author is not None and author.avatar is not None:
                    avatar = stored.get(id(author.avatar))
                    if avatar is not None and avatar.sha256:
                        # The author with their new picture first; write_comment then writes the
                        # same person again without one, which keeps the picture just stored.
                        writer.write_person(author, avatar, avatar_source(author.avatar))
                writer.write_comment(record)
            elif isinstance(record, Person):
                picture = record.avatar
                avatar = stored.get(id(picture)) if picture is not None else None
                if picture is not None and avatar is not None and avatar.sha256:
                    writer.write_person(record, avatar, avatar_source(picture))
                else:
                    writer.write_person(record)
            elif isinstance(record, Snapshot):
                staged = (staging or {}).get(id(record), True)
                if isinstance(staged, list):   # one chunk at most: all of it here
                    writer.stage_members(record.kind, record.taken_at, staged, read=len(staged))
                if staged is not False:
                    writer.finish_staging(record.kind, record.taken_at, record.complete)
                if isinstance(staged, list):
                    writer.apply_staged_at_once(record.kind)
            elif isinstance(record, ListPage):
                # A list of one chunk at most is applied here; write_page applies a bigger one after.
                writer.stage_list_page(record, apply_up_to=self.list_chunk)
            elif isinstance(record, Interaction):
                writer.write_interaction(record)
            elif isinstance(record, OwnedContact):
                writer.write_owned_contact(record)
            elif isinstance(record, Collection):
                cover = stored.get(id(record.cover)) if record.cover is not None else None
                if record.cover is not None and cover is not None and cover.sha256:
                    writer.write_collection(record, cover, avatar_source(record.cover))
                else:
                    writer.write_collection(record)
            else:
                raise TypeError(f"connector yielded an unknown record type {type(record).__name__}")
        return None


def _within_json_depth(record, ctx: SyncContext):
    """``record`` with every payload nested past the JSON depth limit (the exports' own,
    ExportLimits.max_json_depth) replaced by a note saying so, each one reported. Every
    record of every connector passes here on its way to the writer: a comment, its author,
    a person, a profile nested 600 levels deep (a hostile server's answer) is kept without
    its payload instead of being stored past the limit, where reading it back as JSON can
    recurse past Python's own. (A field of another type than its column's is refused by
    SQLite as one bad item; an item of a listing is refused earlier, whole, in
    listing.map_items.)"""
    from archiver.sync.imports import json_nesting_problem

    if isinstance(record, (Snapshot, ListPage, CommentsListed)):
        return record   # a list's members are staged without their payloads (archiver.archive.lists)
    changes: dict[str, Any] = {}
    raw = getattr(record, "raw", None)
    if isinstance(raw, (dict, list)):
        problem = json_nesting_problem(raw)
        if problem is not None:
            ctx.report(_describe(record), f"{problem} (the limit for any JSON archiver reads); "
                                          "kept without its payload")
            changes["raw"] = {"not kept": problem}
    author = getattr(record, "author", None)
    if isinstance(author, Person):
        checked = _within_json_depth(author, ctx)
        if checked is not author:
            changes["author"] = checked
    return dataclasses.replace(record, **changes) if changes else record


def _describe(record) -> str:
    if isinstance(record, OwnedContact):   # named by where it was read: an address is personal data
        return f"contact at {record.where}" if record.where else "a contact"
    kind = type(record).__name__.lower()
    ident = getattr(record, "native_id", None) or getattr(record, "created_at", None) or ""
    return f"{kind} {ident}".strip()


def _page_line(page: Page, counts: dict[str, int]) -> str:
    shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()) if v)
    return f"{page.stream}: +{len(page.records)} records" + (f" ({shown})" if shown else "")
