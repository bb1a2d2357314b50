"""Runs one account: connector pages -> media downloads -> writer, one transaction a page.

Each page's records and the stream state that follows them commit together, so a run
killed at any instant resumes from its last checkpoint and converges to the same archive.
Media is downloaded before the page commits (the links may expire within hours); a file
that fails is recorded as failed on its post, never aborting the run.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from archiver.archive import Archive
from archiver.archive.writer import ArchiveWriter, StoredFile
from archiver.config import AccountConfig
from archiver.records import Comment, Interaction, MediaRef, Page, Person, Post, Profile, Snapshot, now_utc

log = logging.getLogger("archiver.sync")


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
            log.info("stopping after the current page (signal %s)", signum)
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
    if isinstance(error, sqlite3.Error):
        return False
    return isinstance(error, (ValueError, TypeError, LookupError, AttributeError))


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


@dataclass
class SyncContext:
    """What a connector may ask of the archive while it produces pages."""

    archive: Archive
    account: AccountConfig
    full: bool = False
    cancel: Callable[[], bool] = lambda: False
    errors: list[dict[str, str]] = field(default_factory=list)
    run_id: int | None = None

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

    def known_post_ids(self, ids) -> set[str]:
        ids = list(ids)
        if not ids:
            return set()
        rows = self.db.execute(
            f"SELECT post_id FROM posts WHERE platform=? AND post_id IN ({','.join('?' * len(ids))})",
            [self.account.platform, *ids],
        ).fetchall()
        return {r[0] for r in rows}

    def archived_posts(self, ids, fields: dict[str, str]) -> dict[str, dict[str, Any]]:
        """What the archive holds of these posts of the account: post_id ->
        {name: value} for ``fields`` (name -> a column or SQL expression over posts, e.g.
        ``{"replies": "comment_count"}``). Posts not archived are absent. Connectors use it
        to ask the platform again only for what changed."""
        ids = list(ids)
        found: dict[str, dict[str, Any]] = {}
        selected = ", ".join(f"{expression} AS {name}" for name, expression in fields.items())
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit, with room
            chunk = ids[start:start + 500]
            cursor = self.db.execute(
                f"SELECT post_id, {selected} FROM posts WHERE platform=? AND account_id=? "
                f"AND post_id IN ({','.join('?' * len(chunk))})",
                [self.account.platform, self.account.account_id, *chunk])
            names = [column[0] for column in cursor.description][1:]
            found.update({row[0]: dict(zip(names, row[1:])) for row in cursor.fetchall()})
        return found

    def recent_post_ids(self, since_iso: str) -> list[str]:
        """API-known posts created since ``since_iso`` (for refreshing their counts)."""
        rows = self.db.execute(
            "SELECT post_id FROM posts WHERE account_id=? AND created_at >= ? AND deleted_at IS NULL "
            "AND post_id NOT LIKE 'provisional:%' ORDER BY created_at DESC",
            [self.account.account_id, since_iso],
        ).fetchall()
        return [r[0] for r in rows]

    def report(self, item: str, error: str) -> None:
        """One bad item: recorded in the run, logged, skipped."""
        from archiver.net import scrubber

        entry = {"item": scrubber.text(item), "error": scrubber.text(error)}
        self.errors.append(entry)
        log.warning("skipped %s: %s", entry["item"], entry["error"])


def _write_state(db, account_id: str, stream: str, state: dict | None) -> None:
    if state is None:
        db.execute("DELETE FROM sync_state WHERE account_id=? AND stream=?", [account_id, stream])
        return
    db.execute(
        "INSERT INTO sync_state (account_id, stream, state, updated_at) VALUES (?,?,?,?) "
        "ON CONFLICT(account_id, stream) DO UPDATE SET state=excluded.state, updated_at=excluded.updated_at",
        [account_id, stream, json.dumps(state, sort_keys=True), now_utc()],
    )


def mark_dead_runs(db) -> None:
    """Runs left 'running' by a process that no longer exists were interrupted."""
    for run_id, pid in db.execute("SELECT run_id, pid FROM runs WHERE status='running'").fetchall():
        if pid and _alive(pid):
            continue
        db.execute(
            "UPDATE runs SET status='interrupted', message=coalesce(message, 'the process ended before the run finished; "
            "the next run resumes from its checkpoint') WHERE run_id=?",
            [run_id],
        )


def _alive(pid: int) -> bool:
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

    def __init__(self, archive: Archive, connector, *, progress: Callable[[str], None] | None = None):
        self.archive = archive
        self.connector = connector
        self.account: AccountConfig = connector.account
        self.progress = progress or (lambda message: log.info("%s", message))
        from archiver.media import MediaStore

        self.media = MediaStore(archive.media_root)
        self._media_client = None
        self._avatar_problems = _AvatarProblems()
        self._page_numbers: dict[str, int] = {}   # stream -> pages written in this run

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
                 failure_kind: str | None = None) -> None:
        from archiver.net import scrubber

        db = self.archive.db
        with self.archive.writing():
            db.execute(
                "UPDATE runs SET status=?, ended_at=?, counts=?, errors=?, message=?, failure_kind=? WHERE run_id=?",
                [status, now_utc(), json.dumps(counts, sort_keys=True), json.dumps(errors[:500]),
                 scrubber.text(message) if message else None, failure_kind, run_id],
            )

    # -- the loop --------------------------------------------------------------------
    def run(self, pages: Callable[[SyncContext], Iterator[Page]], *, kind: str, mode: str,
            full: bool = False, cancel: Callable[[], bool] = lambda: False,
            source: str = "api") -> dict[str, Any]:
        """Run ``pages`` to the end (or to a failure / cancel). Returns the run summary."""
        from archiver.imports import ExportFileError
        from archiver.net import Cancelled, NetError, scrubber

        run_id = self._start_run(kind, mode)
        ctx = SyncContext(self.archive, self.account, full=full, cancel=cancel, run_id=run_id)
        self._avatar_problems = _AvatarProblems()
        self._page_numbers = {}
        counts: dict[str, int] = {}
        status, message = "ok", None
        # Why it failed, in net.NetError's words (auth, gone, transport, timeout, server …):
        # the alerts tell an unreachable platform from an account that is gone.
        failure_kind: str | None = None
        try:
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
        except Cancelled:
            status, message = "interrupted", "stopped by request; the next run resumes from its checkpoint"
        except KeyboardInterrupt:
            status, message = "interrupted", "interrupted; the next run resumes from its checkpoint"
            self._avatar_problems.summarize(ctx, counts)
            self._end_run(run_id, status, counts, ctx.errors, message)
            raise
        except (NetError, RunFailed, ExportFileError) as error:
            status, message = "failed", str(error)
            failure_kind = error.kind if isinstance(error, NetError) else None
        except Exception as error:  # a bug or an unexpected payload: record it, keep the archive
            status = "failed"
            message = f"{type(error).__name__}: {error}"
            log.error("run failed: %s", scrubber.text("".join(traceback.format_exception(error))))
        finally:
            if self._media_client is not None:
                self._media_client.close()
                self._media_client = None
        if status == "ok":
            self.media.sweep_parts()
        self._avatar_problems.summarize(ctx, counts)
        self._end_run(run_id, status, counts, ctx.errors, message, failure_kind)
        return {"run_id": run_id, "status": status, "message": message, "counts": counts, "errors": ctx.errors,
                "failure_kind": failure_kind}

    def write_page(self, page: Page, ctx: SyncContext, *, source: str = "api") -> dict[str, int]:
        """Download the page's media, then commit its records and state in one transaction."""
        from archiver.net import scrubber

        stored = self._download_media(page, ctx)
        db = self.archive.db
        writer = ArchiveWriter(db, platform=self.account.platform, account_id=self.account.account_id,
                               source=source, scrub=scrubber.obj)
        number = self._page_numbers[page.stream] = self._page_numbers.get(page.stream, 0) + 1
        try:
            with self.archive.writing():
                for record in page.records:
                    try:
                        self._write_record(writer, record, stored, page)
                    except Exception as error:
                        if not _record_error(error) or not db.conn.in_transaction:
                            # The database itself refused (disk full, I/O error, a trigger's
                            # RAISE(ROLLBACK) that ended the transaction): the records before
                            # this one may be gone, so none of the page, cursor included, is kept.
                            raise PageNotKept(_page_failure(error, number, page.stream)) from error
                        # One bad item is reported and skipped; it never aborts the page.
                        ctx.report(_describe(record), f"{type(error).__name__}: {error}")
                if page.complete and page.listing:
                    listed = db.execute(
                        "SELECT count(*) FROM posts WHERE account_id=? AND listed_in=?",
                        [self.account.account_id, page.listing],
                    ).fetchone()[0]
                    if listed == 0:
                        # An empty "complete" listing is what a vanished or broken platform
                        # looks like: never tombstone everything on its word.
                        ctx.report("listing", "the platform listed no posts at all; nothing was marked deleted")
                    else:
                        writer.tombstone_unlisted(page.listing)
                if page.state is not None or page.complete:
                    _write_state(db, self.account.account_id, page.stream, page.state)
        except PageNotKept:
            raise
        except sqlite3.Error as error:   # the state, the tombstones or the commit itself
            raise PageNotKept(_page_failure(error, number, page.stream)) from error
        return writer.counts

    def _write_record(self, writer: ArchiveWriter, record, stored: dict, page: Page) -> None:
        from archiver.net import scrubber

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
            elif isinstance(record, Comment):
                author = record.author
                avatar = stored.get(id(author.avatar)) if author is not None and author.avatar else None
                if avatar is not None and avatar.sha256:
                    # The author with their new picture first; write_comment then writes the
                    # same person again without one, which keeps the picture just stored.
                    writer.write_person(author, avatar, _avatar_source(author.avatar))
                writer.write_comment(record)
            elif isinstance(record, Person):
                avatar = stored.get(id(record.avatar)) if record.avatar else None
                if avatar is not None and avatar.sha256:
                    writer.write_person(record, avatar, _avatar_source(record.avatar))
                else:
                    writer.write_person(record)
            elif isinstance(record, Snapshot):
                writer.write_snapshot(record)
            elif isinstance(record, Interaction):
                writer.write_interaction(record)
            else:
                raise TypeError(f"connector yielded an unknown record type {type(record).__name__}")

    def _download_media(self, page: Page, ctx: SyncContext) -> dict[int, StoredFile]:
        """Fetch the page's files: the owner's (posts, avatar, banner), each failure
        reported on its item; then other people's avatars (see _download_avatars)."""
        from archiver.net import Cancelled, scrubber

        stored: dict[int, StoredFile] = {}
        by_url: dict[str, StoredFile] = {}
        for record in page.records:
            refs: list[MediaRef] = []
            owner = ""
            if isinstance(record, Post):
                refs, owner = record.media, record.native_id or record.created_at or "post"
            elif isinstance(record, Profile):
                refs, owner = [ref for ref in (record.avatar, record.banner) if ref is not None], "profile"
            for ref in refs:
                if ref.url in by_url:
                    stored[id(ref)] = by_url[ref.url]
                    continue
                key = f"{self.account.account_id}:{owner}:{ref.role}:{ref.position}"
                if ref.opener is None:
                    held = self._held_file(record.native_id if isinstance(record, Post) else None, ref)
                    if held is not None:  # the archive holds this file already: no request
                        stored[id(ref)] = by_url[ref.url] = held
                        continue
                try:
                    file = self._fetch(ref, key, ctx)
                except Cancelled:
                    raise
                except Exception as error:  # any failure is per-item
                    message = scrubber.text(str(error))
                    ctx.report(f"{ref.role} of {owner} ({scrubber.url(ref.url)})", message)
                    file = StoredFile(None, error=message)
                stored[id(ref)] = by_url[ref.url] = file
        self._download_avatars(page, ctx, stored)
        return stored

    def _held_file(self, post_id: str | None, ref: MediaRef) -> StoredFile | None:
        """The archive's own copy of the file ``ref`` names, when it is still on disk: the
        file with the hash the platform gave (a Bluesky blob is the same bytes wherever it
        is used), or the file the post's slot got from the same link (compared without the
        query string: incremental runs re-read the newest posts for fresh counts)."""
        from archiver.net import scrubber

        db = self.archive.db
        if ref.sha256:
            row = db.execute("SELECT sha256, path, mime, size FROM media WHERE sha256=?", [ref.sha256]).fetchone()
        elif post_id:
            row = db.execute(
                "SELECT m.sha256, m.path, m.mime, m.size FROM post_media pm JOIN media m ON m.sha256 = pm.sha256 "
                "WHERE pm.platform=? AND pm.post_id=? AND pm.role=? AND pm.position=? AND pm.status='ok' "
                "AND pm.source_url=?",
                [self.account.platform, post_id, ref.role, ref.position, scrubber.url(ref.url)],
            ).fetchone()
        else:
            return None
        if row is None or not (self.media.root / row[1]).is_file():
            return None
        return StoredFile(row[0], row[1], row[2], row[3])

    def _fetch(self, ref: MediaRef, key: str, ctx: SyncContext) -> StoredFile:
        """Store one file (from an export or a download), checked against the hash the
        platform named; raises on any failure."""
        from archiver.media import MediaError

        if ref.opener is not None:
            with ref.opener() as handle:
                result = self.media.add_file(handle, mime_hint=ref.mime_hint)
        else:
            if self._media_client is None:
                self._media_client = self.connector.media_client()
            result = self._download_url(ref, key, ctx)
        if ref.sha256 and result.sha256 != ref.sha256:
            # The platform named the content (a blob CID); these bytes are not it.
            raise MediaError(ref.url if ref.opener is None else None, f"content does not match the platform's hash: expected sha256 "
                             f"{ref.sha256}, got {result.sha256}")
        return StoredFile(result.sha256, str(result.path), result.mime, result.size)

    def _download_avatars(self, page: Page, ctx: SyncContext, stored: dict[int, StoredFile]) -> None:
        """Other people's pictures: of Person records and of comment authors, never of a
        Snapshot's members (a million followers). A picture is fetched only when the
        archive holds none for that person or their link (without its query) changed, and
        once per link in a page. A failure is counted for one summary line at the end of
        the run (see _AvatarProblems), never reported per person, never failing the page."""
        from archiver.net import Cancelled

        wanted: list[Person] = []
        for record in page.records:
            person = record if isinstance(record, Person) else record.author if isinstance(record, Comment) else None
            if person is not None and person.avatar is not None and person.native_id:
                wanted.append(person)
        if not wanted:
            return
        held = self._held_avatars({person.native_id for person in wanted})
        by_source: dict[str, StoredFile | None] = {}
        for person in wanted:
            ref = person.avatar
            source = _avatar_source(ref)
            if held.get(person.native_id) == source:
                continue   # this very picture is archived: no request
            if source not in by_source:
                file = None
                if not self._avatar_problems.given_up(source):
                    key = f"{self.account.account_id}:person:{person.native_id}:avatar"
                    try:
                        file = self._fetch(ref, key, ctx)
                        self._avatar_problems.succeeded(source)
                    except Cancelled:
                        raise
                    except Exception as error:  # noqa: BLE001 - counted, summarized once per run
                        self._avatar_problems.failed(source, error)
                by_source[source] = file
            if by_source[source] is not None:
                stored[id(ref)] = by_source[source]

    def _held_avatars(self, person_ids: set[str]) -> dict[str, str]:
        """person_id -> the link of the picture the archive holds for them."""
        ids = sorted(person_ids)
        held: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = self.archive.db.execute(
                f"SELECT person_id, avatar_source FROM people WHERE platform=? AND avatar_sha256 IS NOT NULL "
                f"AND person_id IN ({','.join('?' * len(chunk))})", [self.account.platform, *chunk]).fetchall()
            held.update({row[0]: row[1] for row in rows if row[1]})
        return held

    def _download_url(self, ref: MediaRef, key: str, ctx: SyncContext):
        """Download ``ref.url``. Signed links expire (Instagram's CDN answers 403): when the
        download is refused with HTTP 403/410 and the connector can ask for a fresh link
        (``ref.refresh``), ask once and try that link once. Any other failure, or a second
        refusal, is raised as before and recorded by the caller."""
        from archiver.media import MediaError
        from archiver.net import Cancelled, scrubber

        try:
            return self.media.download(self._media_client, ref.url, key=key, mime_hint=ref.mime_hint,
                                       cancel=ctx.cancel)
        except MediaError as error:
            if ref.refresh is None or not _EXPIRED_LINK.search(error.reason):
                raise
            try:
                fresh = ref.refresh()
            except Cancelled:
                raise
            except Exception as refresh_error:  # the original refusal stays the reason
                raise MediaError(ref.url, f"{error.reason}; asking for a fresh link failed: "
                                          f"{type(refresh_error).__name__}: {refresh_error}") from None
            if not fresh:
                raise
            log.info("the link to %s was refused (%s); trying a fresh one", scrubber.url(ref.url), error.reason)
            return self.media.download(self._media_client, fresh, key=key, mime_hint=ref.mime_hint,
                                       cancel=ctx.cancel)


def _avatar_source(ref: MediaRef) -> str:
    """What the archive remembers a person's picture by: the link without its query string
    (signed, expiring parts are never stored), or the file's name inside an export."""
    from archiver.net import scrubber

    return ref.url if ref.opener is not None else scrubber.url(ref.url)


class _AvatarProblems:
    """Failed downloads of other people's pictures during one run.

    A platform's picture host that is down would otherwise give one error per commenter;
    the run reports them as one line instead. After ``GIVE_UP_AFTER`` failures in a row on
    one host that look like the host's (no answer, 5xx, 429), the rest of that host's
    pictures wait for the next run (no request is made). A picture refused on its own
    (404, 403 …: deleted, private) counts only as itself."""

    GIVE_UP_AFTER = 3

    def __init__(self) -> None:
        self.count = 0
        self.skipped = 0
        self.first: str | None = None
        self.by_host: dict[str, int] = {}

    @staticmethod
    def _host(source: str) -> str:
        from urllib.parse import urlsplit

        return urlsplit(source).netloc or "export"

    def given_up(self, source: str) -> bool:
        if self.by_host.get(self._host(source), 0) >= self.GIVE_UP_AFTER:
            self.skipped += 1
            return True
        return False

    def failed(self, source: str, error: BaseException) -> None:
        from archiver.net import scrub_log_text

        self.count += 1
        if not _PICTURE_REFUSED.search(str(error)):
            host = self._host(source)
            self.by_host[host] = self.by_host.get(host, 0) + 1
        if self.first is None:
            # Links in the message lose their query strings (signed parts, tokens).
            message = scrub_log_text(str(error))
            self.first = message if source in message else f"{source}: {message}"

    def succeeded(self, source: str) -> None:
        self.by_host[self._host(source)] = 0

    def summarize(self, ctx: SyncContext, counts: dict[str, int]) -> None:
        """One line in the run's errors, and a count, when any picture failed."""
        if not self.count:
            return
        counts["avatars_failed"] = self.count + self.skipped
        given_up = sorted(h for h, n in self.by_host.items() if n >= self.GIVE_UP_AFTER)
        skipped = (f"; {self.skipped} more not tried after repeated failures on {', '.join(given_up)}"
                   if self.skipped else "")
        ctx.report("avatars of other people",
                   f"{self.count} picture(s) could not be downloaded{skipped} (first: {self.first}); "
                   "their comments and names are archived, and the pictures are tried again next run")
        self.count = self.skipped = 0


# A picture refused on its own (gone, private, not found), not a host in trouble.
_PICTURE_REFUSED = re.compile(r"\bHTTP 4(?!29)\d\d\b")

# Statuses with which a CDN refuses a signed link that may just have expired. MediaError
# names the status in its reason: "HTTP 403", or "GET /path: HTTP 403" through an ApiClient.
_EXPIRED_LINK = re.compile(r"\bHTTP (403|410)\b")


def _describe(record) -> str:
    kind = type(record).__name__.lower()
    ident = getattr(record, "native_id", None) or getattr(record, "created_at", None) or ""
    return f"{kind} {ident}".strip()


def _page_line(page: Page, counts: dict[str, int]) -> str:
    shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()) if v)
    return f"{page.stream}: +{len(page.records)} records" + (f" ({shown})" if shown else "")
