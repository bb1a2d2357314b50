"""Media downloads of a run: the files of a page's posts and profile, and other people's
pictures, fetched before the page commits (signed links may expire within hours).

A file that fails is recorded as failed on its item, never aborting the run; failed
pictures of other people are summarized in one line (see _AvatarProblems).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from archiver.archive import Archive
from archiver.archive.writer import StoredFile
from archiver.records import Comment, MediaRef, Page, Person, Post, Profile

if TYPE_CHECKING:
    from archiver.sync import SyncContext

log = logging.getLogger("archiver.sync")


class MediaDownloader:
    """Downloads the media of one account's pages into the archive's media store."""

    def __init__(self, archive: Archive, connector) -> None:
        from archiver.media import MediaStore

        self.archive = archive
        self.connector = connector
        self.account = connector.account
        self.media = MediaStore(archive.media_root)
        self._media_client = None
        self._avatar_problems = _AvatarProblems()

    def start_run(self, tmp: Path | None = None) -> None:
        """``tmp``: the run's own folder for partial files (run_folders.py)."""
        from archiver.media import MediaStore

        if tmp is not None:
            self.media = MediaStore(self.archive.media_root, tmp=tmp)
        self._avatar_problems = _AvatarProblems()

    def summarize(self, ctx: "SyncContext", counts: dict[str, int]) -> None:
        self._avatar_problems.summarize(ctx, counts)

    def close(self) -> None:
        if self._media_client is not None:
            self._media_client.close()
            self._media_client = None

    def for_page(self, page: Page, ctx: "SyncContext", source: str = "api") -> dict[int, StoredFile]:
        """Fetch the page's files: the owner's (posts, avatar, banner), each failure
        reported on its item; then other people's avatars (see _download_avatars).
        ``source`` is the page's provenance: for an export ("export:<sha256>"), a file
        this export already gave is not copied again (see _held_export_file)."""
        from archiver.net import Cancelled, scrubber

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
            for ref in refs:
                if ref.url in by_url:
                    stored[id(ref)] = by_url[ref.url]
                    continue
                key = f"{self.account.account_id}:{owner}:{ref.role}:{ref.position}"
                if ref.opener is None:
                    held = self._held_file(record.native_id if isinstance(record, Post) else None, ref)
                elif export_sha256 is not None:
                    held = self._held_export_file(export_sha256, ref.url)
                else:
                    held = None
                if held is not None:  # the archive holds this file already: no request, no copy
                    stored[id(ref)] = by_url[ref.url] = held
                    continue
                try:
                    file = self._fetch(ref, key, ctx)
                except Cancelled:
                    raise
                except Exception as error:  # any failure is per-item
                    from archiver.imports import NotInExport

                    message = scrubber.text(str(error))
                    ctx.report(f"{ref.role} of {owner} ({scrubber.url(ref.url)})", message)
                    file = StoredFile(None, error=message, retryable=not isinstance(error, NotInExport))
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
        it is still on disk (same export file, same bytes: nothing to read again)."""
        from archiver.media import MIME_FOR_EXTENSION

        row = self.archive.db.execute("SELECT sha256, size FROM export_media WHERE export_sha256=? AND entry=?",
                                      [export_sha256, entry]).fetchone()
        if row is None:
            return None
        try:  # found by its content address: the page that linked it may not have committed
            path = self.media.path_for(row[0])
        except FileNotFoundError:
            return None
        if path.stat().st_size != row[1]:
            return None
        return StoredFile(row[0], path.relative_to(self.media.root).as_posix(),
                          MIME_FOR_EXTENSION.get(path.suffix.lstrip(".")), row[1])

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

    def _fetch(self, ref: MediaRef, key: str, ctx: "SyncContext") -> StoredFile:
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

    def _download_avatars(self, page: Page, ctx: "SyncContext", stored: dict[int, StoredFile]) -> None:
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

    def _download_url(self, ref: MediaRef, key: str, ctx: "SyncContext"):
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

    def summarize(self, ctx: "SyncContext", counts: dict[str, int]) -> None:
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


