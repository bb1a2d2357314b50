"""Media downloads of a run: the files of a page's posts and profile, and other people's
pictures, fetched before the page commits (signed links may expire within hours).

A file that fails is recorded as failed on its slot (with its cause), never aborting the
run; the run ends with one line per cause (see MediaProblems), the full list staying in
``runs.errors``. Failed pictures of other people are summarized in one line (see
_AvatarProblems). Every API run first repairs: slots that failed earlier are tried again,
a capped number, oldest first, with fresh links from the connector where links expire
(``Connector.refresh_media``). A signed link that says in itself that it has expired is
not fetched at all (see ``link_expiry``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Callable, Protocol
from urllib.parse import parse_qsl, urlsplit

from archiver.archive import Archive
from archiver.archive.writer import StoredFile
from archiver.net.limits import DownloadLimits
from archiver.records import Collection, Comment, MediaRef, Page, Person, Post, Profile


class RunContext(Protocol):
    """What downloads use of the run they belong to: the runner's SyncContext (the runner
    imports this module, so it is named here by what is used, not imported)."""

    errors: list[dict[str, str]]

    @property
    def cancel(self) -> Callable[[], bool]: ...   # read only: downloads ask it, never set it

    def report(self, item: str, error: str) -> None: ...

log = logging.getLogger("archiver.sync.runner")


class MediaDownloader:
    """Downloads the media of one account's pages into the archive's media store."""

    def __init__(self, archive: Archive, connector, *, progress: Callable[[str], None] | None = None,
                 limits: DownloadLimits | None = None) -> None:
        """``limits``: the bounds of one download ([downloads] in the config)."""
        from archiver.archive.media import MediaStore

        self.archive = archive
        self.connector = connector
        self.account = connector.account
        self.limits = limits or DownloadLimits()
        self.media = MediaStore(archive.media_root, limits=self.limits)
        self._media_client = None
        self._avatar_problems = _AvatarProblems()
        self.problems = MediaProblems()
        self._host_failures: dict[str, int] = {}
        self._links = None   # the account's links.LinkPolicy, made at the first download
        # What "now" is when a link's own expiry is checked (a fake clock in tests).
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)
        # Told (name, bytes so far, expected size or None) while a file downloads: the
        # command line draws a progress bar with it.
        self.on_bytes: Callable[[str, int, int | None], None] | None = None
        self._progress = progress or (lambda line: log.info("%s", line))

    def start_run(self, tmp: Path | None = None) -> None:
        """``tmp``: the run's own folder for partial files (run_folders.py)."""
        from archiver.archive.media import MediaStore

        if tmp is not None:
            self.media = MediaStore(self.archive.media_root, tmp=tmp, limits=self.limits, clock=self.media.clock)
        self._avatar_problems = _AvatarProblems()
        self.problems = MediaProblems()
        self._host_failures = {}

    def summarize(self, ctx: RunContext, counts: dict[str, int]) -> None:
        self._avatar_problems.summarize(ctx, counts)

    def summary_lines(self, *, importing: bool) -> list[str]:
        """One line per cause of the files that failed in this run."""
        return self.problems.lines(importing=importing)

    # -- repair -------------------------------------------------------------------------

    def repair(self, ctx: RunContext, *, limit: int | None = None) -> dict[str, int]:
        """Try again the files of this account's posts whose download failed, before the
        run reads anything new: up to ``limit`` slots (the account's ``repairs_per_run``;
        the next runs go on where this one stopped), the longest untried first. Links
        come fresh from the connector (``refresh_media``) where it can give them; else the
        slot's own link is tried again, unless it is a signed link that has expired (its
        query, the signature, is never stored). Each slot commits on its own."""
        from archiver.archive.media import DiskFull
        from archiver.archive.writer import PROVISIONAL, ArchiveWriter
        from archiver.net.client import Cancelled, scrubber

        limit = self.account.repairs_per_run if limit is None else limit
        db = self.archive.db
        slots = db.execute(
            "SELECT pm.post_id, pm.role, pm.position, pm.source_url, pm.cause, pm.description, pm.meta "
            "FROM post_media pm JOIN posts p ON p.platform = pm.platform AND p.post_id = pm.post_id "
            "WHERE p.account_id=? AND pm.status='failed' AND p.deleted_at IS NULL "
            "ORDER BY coalesce(pm.tried_at, pm.updated_at), pm.post_id, pm.role, pm.position LIMIT ?",
            [self.account.account_id, limit]).fetchall()
        counts = {"media_repaired": 0, "media_repair_failed": 0}
        if not slots:
            return counts
        fresh: dict[str, list[MediaRef]] = {}
        refresh_media = getattr(self.connector, "refresh_media", None)
        if refresh_media is not None:
            try:
                # A provisional post (an export item without the platform's id) cannot be asked for.
                asked = sorted({slot[0] for slot in slots if not slot[0].startswith(PROVISIONAL)})
                fresh = (refresh_media(asked) or {}) if asked else {}
            except Cancelled:
                raise
            except Exception as error:  # noqa: BLE001 - the slots' own links are tried instead
                ctx.report("repair of failed media", f"asking the platform for fresh links failed: "
                                                     f"{type(error).__name__}: {error}")
        self.progress_note(f"repairing {len(slots)} file(s) that failed earlier")
        for post_id, role, position, source_url, cause, _description, _meta in slots:
            if ctx.cancel():
                raise Cancelled("stopped by request")
            ref = next((r for r in fresh.get(post_id, []) if r.role == role and r.position == position), None)
            if ref is None and source_url and source_url.startswith(("http://", "https://")) and cause != "expired":
                ref = MediaRef(source_url, role, position)
            writer = ArchiveWriter(db, platform=self.account.platform, account_id=self.account.account_id,
                                   source="api", scrub=scrubber.obj)
            if ref is None:
                # Nothing to try with this run: it waits behind the others until a fresh link comes.
                with self.archive.writing():
                    db.execute("UPDATE post_media SET tried_at=? WHERE platform=? AND post_id=? AND role=? "
                               "AND position=?", [writer.now, self.account.platform, post_id, role, position])
                continue
            key = f"{self.account.account_id}:{post_id}:{role}:{position}"
            if self._media_client is None:
                self._media_client = self.connector.media_client()
            try:
                file = self._fetch_unless_host_down(ref, key, ctx)
                counts["media_repaired"] += 1
            except (Cancelled, DiskFull):
                raise
            except Exception as error:  # noqa: BLE001 - per slot, like any download
                file = self._failed(ctx, f"{role} of {post_id} ({scrubber.url(ref.url)})", error)
                counts["media_repair_failed"] += 1
            with self.archive.writing():
                writer.link_media(post_id, ref, file, scrubber.url(ref.url))
                db.execute("UPDATE post_media SET tried_at=? WHERE platform=? AND post_id=? AND role=? "
                           "AND position=?", [writer.now, self.account.platform, post_id, role, position])
        return counts

    def progress_note(self, line: str) -> None:
        self._progress(line)

    # -- failures -----------------------------------------------------------------------

    def _failed(self, ctx: RunContext, item: str, error: BaseException) -> StoredFile:
        """A file that could not be stored: its slot says why; the run's errors keep the
        entry (for `archiver status --errors`), counted by cause for the summary — no log
        line per file."""
        from archiver.net.client import scrubber

        cause, detail = failure_cause(error)
        message = scrubber.text(str(error.reason if hasattr(error, "reason") else error))
        if isinstance(error, LinkExpired):
            message = error.reason
        self.problems.add(cause, detail)
        ctx.errors.append({"item": scrubber.text(item), "error": message, "cause": cause})
        log.debug("media failed: %s: %s", item, message)
        # A file an export names but does not hold: no retry can bring it.
        return StoredFile(None, error=message, cause=cause, retryable=cause != "missing")

    def close(self) -> None:
        if self._media_client is not None:
            self._media_client.close()
            self._media_client = None

    def for_page(self, page: Page, ctx: RunContext, source: str = "api") -> dict[int, StoredFile]:
        """Fetch the page's files: the owner's (posts, avatar, banner), each failure
        reported on its item; then other people's avatars (see _download_avatars).
        ``source`` is the page's provenance: for an export ("export:<sha256>"), a file
        this export already gave is not copied again (see _held_export_file)."""
        from archiver.archive.media import DiskFull
        from archiver.net.client import Cancelled, scrubber

        export_sha256 = source.split(":", 1)[1] if source.startswith("export:") else None
        copied: list[tuple[str, str, int, str]] = []
        stored: dict[int, StoredFile] = {}
        by_url: dict[str, StoredFile] = {}
        for record in page.records:
            refs: list[MediaRef] = []
            owner = ""
            if isinstance(record, Post):
                refs, owner = record.media, record.native_id or record.created_at or "post"
            elif isinstance(record, Profile):
                refs, owner = [ref for ref in (record.avatar, record.banner) if ref is not None], "profile"
            elif isinstance(record, Collection) and record.cover is not None:
                refs, owner = [record.cover], f"collection {record.native_id}"
            for ref in refs:
                if ref.url in by_url:
                    stored[id(ref)] = by_url[ref.url]
                    continue
                key = f"{self.account.account_id}:{owner}:{ref.role}:{ref.position}"
                held = self._held_cover(record.native_id, ref) if isinstance(record, Collection) else None
                if held is None and ref.opener is None:
                    held = self._held_file(record.native_id if isinstance(record, Post) else None, ref)
                elif held is None and export_sha256 is not None:
                    held = self._held_export_file(export_sha256, ref.url)
                if held is not None:  # the archive holds this file already: no request, no copy
                    stored[id(ref)] = by_url[ref.url] = held
                    continue
                try:
                    file = self._fetch_unless_host_down(ref, key, ctx)
                except (Cancelled, DiskFull):   # the run stops: the page is not committed
                    raise
                except Exception as error:  # any failure is per-item
                    file = self._failed(ctx, f"{ref.role} of {owner} ({scrubber.url(ref.url)})", error)
                stored[id(ref)] = by_url[ref.url] = file
                if ref.opener is not None and export_sha256 is not None and file.sha256:
                    copied.append((export_sha256, ref.url, file.size or 0, file.sha256))
        self._download_avatars(page, ctx, stored)
        if copied:
            # What each entry became, kept at once (the files are on disk already): an
            # import stopped before this page commits still copies nothing twice.
            with self.archive.writing():
                self.archive.db.conn.executemany(
                    "INSERT OR IGNORE INTO export_media (export_sha256, entry, size, sha256) VALUES (?,?,?,?)", copied)
        return stored

    def _held_export_file(self, export_sha256: str, entry: str) -> StoredFile | None:
        """The stored file this very export's ``entry`` became in an earlier import, when
        it is still on disk or kept elsewhere (same export file, same bytes: nothing to read again)."""
        from archiver.archive.media import MIME_FOR_EXTENSION

        row = self.archive.db.execute("SELECT sha256, size FROM export_media WHERE export_sha256=? AND entry=?",
                                      [export_sha256, entry]).fetchone()
        if row is None:
            return None
        try:  # found by its content address: the page that linked it may not have committed
            path = self.media.path_for(row[0])
        except FileNotFoundError:
            stored = self.archive.db.execute("SELECT path, mime, size FROM media WHERE sha256=?", [row[0]]).fetchone()
            if stored is None or stored[2] != row[1] or not self.archive.has_media_file(stored[0]):
                return None
            return StoredFile(row[0], stored[0], stored[1], row[1])
        if path.stat().st_size != row[1]:
            return None
        return StoredFile(row[0], path.relative_to(self.media.root).as_posix(),
                          MIME_FOR_EXTENSION.get(path.suffix.lstrip(".")), row[1])

    def _held_cover(self, collection_id: str, ref: MediaRef) -> StoredFile | None:
        """The cover the archive holds for this collection when it came from the same link
        (or export entry) and is still on disk: a board's cover is not fetched every run."""
        row = self.archive.db.execute(
            "SELECT m.sha256, m.path, m.mime, m.size FROM collections c JOIN media m ON m.sha256 = c.cover_sha256 "
            "WHERE c.platform=? AND c.collection_id=? AND c.cover_source=?",
            [self.account.platform, collection_id, avatar_source(ref)]).fetchone()
        if row is None or not self.archive.has_media_file(row[1]):
            return None
        return StoredFile(row[0], row[1], row[2], row[3])

    def _held_file(self, post_id: str | None, ref: MediaRef) -> StoredFile | None:
        """The archive's own copy of the file ``ref`` names, when it is still on disk (or kept
        elsewhere: Archive.media_elsewhere): the
        file with the hash the platform gave (a Bluesky blob is the same bytes wherever it
        is used), or the file the post's slot got from the same link (compared without the
        query string: incremental runs re-read the newest posts for fresh counts)."""
        from archiver.net.client import scrubber

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
        if row is None or not self.archive.has_media_file(row[1]):
            return None
        return StoredFile(row[0], row[1], row[2], row[3])

    # Files in a row that a host did not answer for, even after every retry (the API's
    # policy: minutes of backoff each), before its other files wait for a later run.
    HOST_DOWN_AFTER = 3

    def _fetch_unless_host_down(self, ref: MediaRef, key: str, ctx: RunContext) -> StoredFile:
        """``_fetch``, unless the host is down: after ``HOST_DOWN_AFTER`` files in a row it
        did not answer for (or at once when nothing listens there: connection refused),
        its other files fail at once as unreachable, and the repair pass of a later run
        tries them."""
        from archiver.archive.media import MediaError

        host = urlsplit(ref.url).netloc if ref.opener is None else ""
        if host and self._host_failures.get(host, 0) >= self.HOST_DOWN_AFTER:
            raise MediaError(ref.url, f"not tried: {host} did not answer for the files before it in this run")
        try:
            file = self._fetch(ref, key, ctx)
        except MediaError as error:
            if host and failure_cause(error)[0] == "unreachable":
                refused = "ConnectError" in error.reason   # nothing listens: the host is down
                self._host_failures[host] = (self.HOST_DOWN_AFTER if refused
                                             else self._host_failures.get(host, 0) + 1)
            raise
        if host:
            self._host_failures[host] = 0
        return file

    def _fetch(self, ref: MediaRef, key: str, ctx: RunContext) -> StoredFile:
        """Store one file (from an export or a download), checked against the hash the
        platform named; raises on any failure."""
        from archiver.archive.media import MediaError

        if ref.opener is not None:
            with ref.opener() as handle:
                result = self.media.add_file(handle, mime_hint=ref.mime_hint)
        else:
            # Checked here too, so that a value that is no web link is named as such, even
            # through a connector's own media client (which checks every request itself).
            self.links.check_url(ref.url)
            if self._media_client is None:
                self._media_client = self.connector.media_client()
            result = self._download_url(ref, key, ctx)
        if ref.sha256 and result.sha256 != ref.sha256:
            # The platform named the content (a blob CID); these bytes are not it.
            raise MediaError(ref.url if ref.opener is None else None,
                             f"content does not match the platform's hash: expected sha256 {ref.sha256}, got {result.sha256}")
        return StoredFile(result.sha256, str(result.path), result.mime, result.size)

    @property
    def links(self):
        """Where this account's links may lead (links.LinkPolicy, from the account's base URL)."""
        if self._links is None:
            from archiver.net.links import LinkPolicy

            policy = getattr(self.connector, "link_policy", None)
            self._links = policy() if policy is not None else LinkPolicy.for_account(self.account.base_url)
        return self._links

    def _download_avatars(self, page: Page, ctx: RunContext, stored: dict[int, StoredFile]) -> None:
        """Other people's pictures: of Person records and of comment authors, never of a
        Snapshot's members (a million followers). A picture is fetched only when the
        archive holds none for that person or their link (without its query) changed, and
        once per link in a page. A failure is counted for one summary line at the end of
        the run (see _AvatarProblems), never reported per person, never failing the page."""
        from archiver.archive.media import DiskFull
        from archiver.net.client import Cancelled

        wanted: list[tuple[Person, MediaRef]] = []   # each person with their picture
        for record in page.records:
            person = record if isinstance(record, Person) else record.author if isinstance(record, Comment) else None
            if person is not None and person.avatar is not None and person.native_id:
                wanted.append((person, person.avatar))
        if not wanted:
            return
        held = self._held_avatars({person.native_id for person, _ in wanted})
        by_source: dict[str, StoredFile | None] = {}
        for person, ref in wanted:
            source = avatar_source(ref)
            if held.get(person.native_id) == source:
                continue   # this very picture is archived: no request
            if source not in by_source:
                file = None
                if not self._avatar_problems.given_up(source):
                    key = f"{self.account.account_id}:person:{person.native_id}:avatar"
                    try:
                        file = self._fetch(ref, key, ctx)
                        self._avatar_problems.succeeded(source)
                    except (Cancelled, DiskFull):
                        raise
                    except Exception as error:  # noqa: BLE001 - counted, summarized once per run
                        self._avatar_problems.failed(source, error)
                by_source[source] = file
            found = by_source[source]
            if found is not None:
                stored[id(ref)] = found

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

    def _download_url(self, ref: MediaRef, key: str, ctx: RunContext):
        """Download ``ref.url``. Signed links expire (Instagram's CDN answers 403): when the
        download is refused with HTTP 403/410 and the connector can ask for a fresh link
        (``ref.refresh``), ask once and try that link once. Any other failure, or a second
        refusal, is raised as before and recorded by the caller."""
        from archiver.archive.media import MediaError
        from archiver.net.client import scrubber

        url = ref.url
        expired_on = self._expired_on(url)
        if expired_on is not None:
            # The link says itself that it is dead: no request. A fresh one, if the
            # connector can ask for it, else the slot records when it died.
            fresh = self._fresh_link(ref, f"link expired on {expired_on:%Y-%m-%d}")
            if not fresh or self._expired_on(fresh) is not None:
                raise LinkExpired(url, expired_on)
            url = fresh
        try:
            return self._download(url, ref, key, ctx)
        except MediaError as error:
            if ref.refresh is None or url != ref.url or not _EXPIRED_LINK.search(error.reason):
                raise
            fresh = self._fresh_link(ref, error.reason)
            if not fresh:
                raise
            log.info("the link to %s was refused (%s); trying a fresh one", scrubber.url(ref.url), error.reason)
            return self._download(fresh, ref, key, ctx)

    def _download(self, url: str, ref: MediaRef, key: str, ctx: RunContext):
        on_bytes = self.on_bytes
        name = f"{ref.role} {ref.position}" if ref.position else ref.role
        return self.media.download(
            self._media_client, url, key=key, mime_hint=ref.mime_hint, cancel=ctx.cancel,
            expected_sha256=ref.sha256,
            on_progress=(lambda done, total: on_bytes(name, done, total)) if on_bytes else None)

    def _fresh_link(self, ref: MediaRef, why: str) -> str | None:
        """``ref.refresh()``: a new signed link to the same file, or None."""
        from archiver.archive.media import MediaError
        from archiver.net.client import Cancelled

        if ref.refresh is None:
            return None
        try:
            return ref.refresh()
        except Cancelled:
            raise
        except Exception as refresh_error:  # the original refusal stays the reason
            raise MediaError(ref.url, f"{why}; asking for a fresh link failed: "
                                      f"{type(refresh_error).__name__}: {refresh_error}") from None

    def _expired_on(self, url: str) -> dt.datetime | None:
        expiry = link_expiry(url)
        return expiry if expiry is not None and expiry <= self.clock() else None


def avatar_source(ref: MediaRef) -> str:
    """What the archive remembers a person's picture by: the link without its query string
    (signed, expiring parts are never stored), or the file's name inside an export."""
    from archiver.net.client import scrubber

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
        from archiver.net.client import scrub_log_text

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

    def summarize(self, ctx: RunContext, counts: dict[str, int]) -> None:
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




# --------------------------------------------------------------------------- expiring links

# Signed CDN links that carry their own expiry, by query parameter:
#   x-expires=<epoch seconds>                    (TikTok's CDN)
#   oe=<epoch seconds in hex>                    (Meta's CDN: Instagram, Facebook, Threads)
#   Expires=<epoch seconds>                      (CloudFront, Cloud Storage V2 signatures)
#   expire=<epoch seconds>                       (googlevideo)
#   X-Goog-Date=<YYYYMMDDTHHMMSSZ> & X-Goog-Expires=<seconds>   (Cloud Storage V4)
#   X-Amz-Date=<YYYYMMDDTHHMMSSZ> & X-Amz-Expires=<seconds>     (S3 SigV4)
_EPOCH_PARAMS = {"x-expires": 10, "oe": 16, "expires": 10, "expire": 10}
_SIGNED_FOR = (("x-goog-date", "x-goog-expires"), ("x-amz-date", "x-amz-expires"))


def link_expiry(url: str) -> dt.datetime | None:
    """When a signed link stops working, if the link itself says so; else None."""
    try:
        query = {name.lower(): value for name, value in parse_qsl(urlsplit(url).query)}
    except ValueError:
        return None
    for name, base in _EPOCH_PARAMS.items():
        value = query.get(name)
        if value:
            try:
                epoch = int(value, base)
            except ValueError:
                continue
            if 1_000_000_000 <= epoch < 10_000_000_000:  # a plausible moment, not "oe=utf8"-like noise
                return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    for date_name, seconds_name in _SIGNED_FOR:
        if query.get(date_name) and query.get(seconds_name):
            try:
                signed = dt.datetime.strptime(query[date_name], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
                return signed + dt.timedelta(seconds=int(query[seconds_name]))
            except (ValueError, OverflowError):
                continue
    return None


class LinkExpired(Exception):
    """A signed link whose own expiry has passed: not fetched."""

    def __init__(self, url: str, expired_on: dt.datetime) -> None:
        from archiver.net.client import scrubber

        self.url = scrubber.url(url)
        self.expired_on = expired_on
        self.reason = f"link expired on {expired_on:%Y-%m-%d}"
        super().__init__(f"{self.url}: {self.reason}")


def failure_cause(error: BaseException) -> tuple[str, str]:
    """(cause, detail) of a failed file, for the slot and the summary:
    expired (date), refused (HTTP status), unreachable, hash, missing (from an export), or
    other (the kind of error)."""
    from archiver.net.client import NetError
    from archiver.net.links import BlockedLink
    from archiver.sync.imports import NotInExport

    if isinstance(error, LinkExpired):
        return "expired", f"{error.expired_on:%Y-%m-%d}"
    if isinstance(error, NotInExport):
        return "missing", ""
    text = str(getattr(error, "reason", None) or error)
    if isinstance(error, BlockedLink) or text.startswith("not fetched:"):
        return "blocked", ""
    if "downloads.max_file_gb" in text:
        return "too large", ""
    if "does not match the platform's hash" in text:
        return "hash", ""
    refused = re.search(r"\bHTTP (4\d\d)\b", text)
    if refused and refused.group(1) not in ("408", "429"):
        return "refused", f"HTTP {refused.group(1)}"
    if isinstance(error, NetError) or re.search(r"\bHTTP (5\d\d|408|429)\b|timed out|Timeout|gave up after|"
                                                r"Error:|connection|did not answer", text):
        return "unreachable", ""
    return "other", type(error).__name__   # the messages differ per file: grouped by kind


class MediaProblems:
    """The run's failed files, counted by cause, for one line per cause at the end."""

    def __init__(self) -> None:
        self.by_cause: dict[tuple[str, str], int] = {}

    @property
    def count(self) -> int:
        return sum(self.by_cause.values())

    def add(self, cause: str, detail: str) -> None:
        self.by_cause[(cause, detail)] = self.by_cause.get((cause, detail), 0) + 1

    def lines(self, *, importing: bool) -> list[str]:
        out = []
        for (cause, detail), n in sorted(self.by_cause.items()):
            files = f"{n} file{'s' if n != 1 else ''}"
            if cause == "expired":
                todo = ("request a new export (its links work for a few days only), or run the API export "
                        "(`archiver export`) where the platform's API gives the files"
                        if importing else "the platform is asked for fresh links at the start of the next run")
                out.append(f"{files}: links expired on {detail} — {todo}")
            elif cause == "refused":
                out.append(f"{files}: refused by the server ({detail}) — tried again at the start of the next run")
            elif cause == "unreachable":
                out.append(f"{files}: the media server did not answer, even after retries — "
                           "tried again at the start of the next run")
            elif cause == "missing":
                out.append(f"{files}: named by the export but not in it — the platform left them out; "
                           "a new export may hold them")
            elif cause == "blocked":
                out.append(f"{files}: links to a private or local address, or values that are no http(s) link — "
                           "not fetched (links in exports and payloads may only lead to public hosts); "
                           "`archiver status --errors` lists them")
            elif cause == "too large":
                out.append(f"{files}: larger than the size cap — not kept; raise downloads.max_file_gb in the "
                           "config if they are real")
            elif cause == "hash":
                out.append(f"{files}: the bytes did not match the platform's hash — not kept; "
                           "tried again at the start of the next run")
            else:
                out.append(f"{files}: could not be stored ({detail}) — `archiver status --errors` lists them")
        return out
