"""Content-addressed media store: ``<archive>/media/<aa>/<bb>/<sha256>.<ext>``.

A file's name is the sha256 of its bytes, so the same picture seen twice (or in the API
and in an export) is stored once, and ``verify`` can prove a file is intact.

Every write takes the same path to disk:
stream into ``.tmp/<run folder>/<name>.part`` → fsync → hash → rename to the final name → fsync the
directory. A process killed at any instant leaves either no file or a whole one, plus
perhaps a ``.part`` that the next download resumes with an HTTP Range request.
Beside a ``.part`` lies its ``.part.validator``: the ETag (or Last-Modified) of the file
the bytes came from. A resume sends it as ``If-Range``, so a server whose file changed in
between answers with the whole new file (200), never with the tail of the new one to
append to the head of the old one. A ``.part`` without a validator is started over.

Every download is bounded (download_limits.DownloadLimits, the [downloads] table): a size cap per
file, a total time per file and a minimum rate, so a server that sends without end, or a
byte a second, costs neither the disk nor the night. A full disk removes the partial file
and stops the run (DiskFull): nothing half-written is left for the next run to trip on.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, TypeGuard, cast

import httpx

import archiver.crashpoints as crashpoints
from archiver.net.client import Cancelled, NetError, scrubber
from archiver.net.limits import DownloadLimits

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 16
SNIFF_BYTES = 32

# mime type -> file extension, for the kinds of media platforms serve.
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "application/json": "json",
}
MIME_FOR_EXTENSION = {
    "jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
    "mp4": "video/mp4", "mov": "video/quicktime", "json": "application/json",
}
_SHA256_NAME = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class StoredMedia:
    sha256: str
    path: Path  # relative to the media root, e.g. "ab/cd/abcd….jpg"
    size: int
    mime: str | None


class MediaError(Exception):
    """A download or import that failed; names the (scrubbed) URL and the reason."""

    def __init__(self, url: str | None, reason: str) -> None:
        self.url = scrubber.url(url) if url else None
        self.reason = scrubber.text(reason)
        super().__init__(f"{self.url}: {self.reason}" if self.url else self.reason)


class DiskFull(Exception):
    """The disk holding the media store is full. Not one file's problem: the run stops
    (the page being fetched is not committed), and the partial file is already gone."""

    def __init__(self, folder: Path, needed: int) -> None:
        self.folder = folder
        self.needed = needed
        megabytes = max(1, -(-needed // 1_000_000))
        super().__init__(f"disk full: {megabytes} MB needed in {folder}; nothing of the unfinished page was kept; "
                         "free some space and run again")


def no_space(error: BaseException) -> TypeGuard[OSError]:
    """A write refused for want of space: on the disk, or in the user's quota on it."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def write_bytes(out: BinaryIO, chunk: bytes) -> None:
    """The one place media bytes reach the disk (a test makes the disk full here)."""
    out.write(chunk)


def sniff_extension(head: bytes) -> str | None:
    """The extension the first bytes of a file prove, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":  # ISO base media: mp4 and QuickTime share the container
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    return None


def choose_extension(head: bytes, content_type: str | None, mime_hint: str | None) -> str:
    """Magic bytes first (CDNs often say application/octet-stream), then the headers."""
    sniffed = sniff_extension(head)
    if sniffed:
        return sniffed
    for declared in (content_type, mime_hint):
        if declared:
            ext = EXTENSIONS.get(declared.split(";")[0].strip().lower())
            if ext:
                return ext
    return "bin"


def _fsync_dir(path: Path) -> None:
    # Makes a rename durable. Windows cannot open a directory; there it is a no-op.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-199/1000' -> (100, 1000); 'bytes */1000' -> (None, 1000)."""
    match = re.match(r"^\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*$", value or "")
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


class _RestartDownload(Exception):
    """The server will not continue our .part: throw it away and start from byte 0."""


def download_clock() -> float:
    """Seconds, for the total time and the rate of downloads (a test puts a fake clock here)."""
    return time.monotonic()


class MediaStore:
    def __init__(self, root: Path, *, tmp: Path | None = None, limits: DownloadLimits | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        """``tmp``: where partial files go; a run passes its own folder (run_folders.py),
        so one run never touches another's partial files. ``limits``: the bounds of one
        download ([downloads] in the config). ``clock``: seconds, for the time and rate
        bounds (a fake clock in tests)."""
        self.root = Path(root)
        self.tmp = Path(tmp) if tmp is not None else self.root / ".tmp"
        self.limits = limits or DownloadLimits()
        self.clock = clock or download_clock
        for folder in (self.root, self.tmp):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)  # private even if it already existed or umask widened it

    # -- downloads --------------------------------------------------------------------

    def download(
        self,
        client: Any,
        url: str,
        *,
        key: str,
        mime_hint: str | None = None,
        cancel: Callable[[], bool] | None = None,
        attempts: int = 3,
        on_progress: Callable[[int, int | None], None] | None = None,
        expected_sha256: str | None = None,
    ) -> StoredMedia:
        """Download ``url`` into the store and return where it lives.

        ``client`` is anything with ``.stream(method, url, headers=...)`` as a context
        manager: an ``httpx.Client`` or an ``ApiClient``. ``key`` names the item stably
        (e.g. "tiktok:post:7311…:cover") so a later run finds and resumes its ``.part``
        even when the signed URL has changed. A connection lost mid-body is resumed up
        to ``attempts`` times before giving up; the ``.part`` is kept for the next run.
        ``on_progress(bytes so far, expected size or None)`` is called as bytes arrive.
        ``expected_sha256``: the hash the platform names for the file. Other bytes are
        never stored; when they came from a resumed download (a server that ignored
        If-Range could have spliced two versions), the file is fetched once more whole.
        """
        part = self.tmp / (hashlib.sha1(key.encode()).hexdigest() + ".part")
        last_problem = "no attempt made"
        whole_again = False
        started = self.clock()   # the total time per file counts every attempt
        for _ in range(max(1, attempts)):
            resumed = part.exists() and part.stat().st_size > 0
            try:
                content_type = self._fetch_into(client, url, part, cancel, on_progress, started=started)
            except (TooLarge, DiskFull):
                # Neither bytes past the cap nor a file cut by a full disk are worth resuming.
                part.unlink(missing_ok=True)
                _validator_path(part).unlink(missing_ok=True)
                raise
            except _RestartDownload:
                part.unlink(missing_ok=True)
                _validator_path(part).unlink(missing_ok=True)
                continue
            except NetError as exc:
                # ApiClient has already retried opening the stream; no second layer here.
                raise MediaError(url, str(exc)) from None
            except httpx.TransportError as exc:  # connection lost mid-body: resume
                last_problem = f"{type(exc).__name__}: {exc}"
                log.debug("download of %s interrupted (%s); resuming",
                            scrubber.url(url), scrubber.text(last_problem))
                continue
            hashed = self._hash_part(part)
            if expected_sha256 and hashed[0] != expected_sha256:
                part.unlink(missing_ok=True)
                _validator_path(part).unlink(missing_ok=True)
                if resumed and not whole_again:
                    whole_again = True
                    continue
                raise MediaError(url, f"content does not match the platform's hash: expected sha256 "
                                      f"{expected_sha256}, got {hashed[0]}")
            stored = self._finish(part, content_type=content_type, mime_hint=mime_hint, hashed=hashed)
            _validator_path(part).unlink(missing_ok=True)
            return stored
        raise MediaError(url, f"gave up after {attempts} attempts: {last_problem}")

    def _fetch_into(
        self, client: Any, url: str, part: Path, cancel: Callable[[], bool] | None,
        on_progress: Callable[[int, int | None], None] | None = None, *, started: float | None = None,
    ) -> str | None:
        """One request: append to (or restart) ``part``. Returns the Content-Type."""
        limits = self.limits
        started = self.clock() if started is None else started
        have = part.stat().st_size if part.exists() else 0
        validator = _read_validator(part) if have else None
        if have and validator is None:
            # Nothing proves the server still has the file these bytes came from: a
            # Range request could splice two versions together. Start over.
            part.unlink(missing_ok=True)
            have = 0
        headers = {"Range": f"bytes={have}-", "If-Range": validator} if have else {}
        with client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status == 416:
                # Either the .part is already whole, or it is junk the server cannot extend.
                _, total = _parse_content_range(response.headers.get("Content-Range"))
                if have and total == have:
                    return response.headers.get("Content-Type")
                raise _RestartDownload()
            if status == 206:
                start, total = _parse_content_range(response.headers.get("Content-Range"))
                if start != have:
                    raise _RestartDownload()  # not the bytes we asked for
                mode = "ab"
            elif status == 200:
                if have:
                    # The file changed since the .part began (If-Range did not match), or
                    # the server does not do ranges: the whole file follows.
                    log.debug("%s: the server sent the whole file again; restarting", scrubber.url(url))
                mode, have, total = "wb", 0, None
                _write_validator(part, response.headers)
            else:
                raise MediaError(url, f"HTTP {status}")
            expected = _expected_size(response, have, total)
            with self._writing(part, mode, needed=expected) as out:
                written = copy_bounded(
                    response, out, url=url, limits=limits, clock=self.clock, started=started, have=have,
                    expected=expected, cancel=cancel, on_progress=on_progress,
                    # once a response, however the body is chunked
                    on_first_write=lambda: crashpoints.reached("download", cut=out))
                out.flush()
                os.fsync(out.fileno())
            if expected is not None and written < expected:
                # Keep the .part: the next attempt asks for the rest.
                raise httpx.RemoteProtocolError(f"body ended at {written} of {expected} bytes")
            if expected is not None and written > expected:
                raise _RestartDownload()
            return response.headers.get("Content-Type")

    # -- local files ------------------------------------------------------------------

    def add_file(self, src_path: Path | BinaryIO, *, mime_hint: str | None = None) -> StoredMedia:
        """Copy a file (e.g. media inside an export zip) into the store, hashing it on the
        way (one read of the source, none of the copy)."""
        part = self.tmp / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            with contextlib.ExitStack() as stack:
                if isinstance(src_path, (str, os.PathLike)):
                    source: BinaryIO = stack.enter_context(open(src_path, "rb"))
                else:
                    source = src_path
                out = stack.enter_context(self._writing(part, "wb", needed=None))
                while chunk := source.read(CHUNK_SIZE):
                    if len(head) < SNIFF_BYTES:
                        head = (head + chunk)[:SNIFF_BYTES]
                    digest.update(chunk)
                    size += len(chunk)
                    if size > self.limits.max_file_bytes:
                        raise MediaError(None, f"the file is larger than the cap of {_size(self.limits.max_file_bytes)} "
                                               "(downloads.max_file_gb in the config): not copied")
                    write_bytes(out, chunk)
                out.flush()
                os.fsync(out.fileno())
            return self._finish(part, content_type=None, mime_hint=mime_hint,
                                hashed=(digest.hexdigest(), size, head))
        finally:
            part.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _writing(self, part: Path, mode: str, *, needed: int | None) -> Iterator[BinaryIO]:
        """``part`` opened for writing; when the disk is full, the partial file is removed
        and DiskFull raised (``needed``: the file's whole size, when known)."""
        try:
            with _open_private(part, mode) as out:
                yield out
        except OSError as error:
            if not no_space(error):
                raise
            have = part.stat().st_size if part.exists() else 0
            part.unlink(missing_ok=True)
            _validator_path(part).unlink(missing_ok=True)
            raise DiskFull(self.root, max(needed or 0, have + CHUNK_SIZE)) from None

    # -- the shared last step -----------------------------------------------------------

    def _finish(self, part: Path, *, content_type: str | None, mime_hint: str | None,
                hashed: tuple[str, int, bytes] | None = None) -> StoredMedia:
        """Hash the .part (unless ``hashed`` gives its sha256, size and first bytes),
        move it to its content address (or drop it if already stored)."""
        sha, size, head = hashed if hashed is not None else self._hash_part(part)
        folder = self.root / sha[:2] / sha[2:4]
        existing = next(folder.glob(f"{sha}.*"), None) if folder.exists() else None
        if existing is not None:
            part.unlink(missing_ok=True)  # dedup: same bytes already stored
            target = existing
        else:
            ext = choose_extension(head, content_type, mime_hint)
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            target = folder / f"{sha}.{ext}"
            crashpoints.reached("before-rename")
            os.replace(part, target)
            crashpoints.reached("rename")
            _fsync_dir(folder)
        ext = target.suffix.lstrip(".")
        return StoredMedia(
            sha256=sha,
            path=target.relative_to(self.root),
            size=size,
            mime=MIME_FOR_EXTENSION.get(ext),
        )

    @staticmethod
    def _hash_part(part: Path) -> tuple[str, int, bytes]:
        """(sha256, size, first bytes) of a file."""
        digest = hashlib.sha256()
        size = 0
        head = b""
        with open(part, "rb") as f:
            while chunk := f.read(CHUNK_SIZE):
                if not head:
                    head = chunk[:SNIFF_BYTES]
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size, head

    # -- upkeep -----------------------------------------------------------------------

    def path_for(self, sha256_or_rel: str | Path) -> Path:
        """Absolute path for a stored file, from its sha256 or its relative path."""
        text = str(sha256_or_rel)
        if _SHA256_NAME.match(text):
            folder = self.root / text[:2] / text[2:4]
            found = next(folder.glob(f"{text}.*"), None) if folder.exists() else None
            if found is None:
                raise FileNotFoundError(f"no stored media with sha256 {text}")
            return found
        path = (self.root / text).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"{text!r} is outside the media store")
        return path

    def verify(self) -> Iterator[tuple[str, str]]:
        """Yield (relative path, problem) for every stored file that is not intact."""
        for path in sorted(self.root.rglob("*")):
            if not path.is_file() or (self.root / ".tmp") in path.parents:
                continue
            rel = path.relative_to(self.root).as_posix()
            name = path.name.split(".", 1)[0]
            if not _SHA256_NAME.match(name):
                yield rel, "name is not a sha256"
                continue
            if rel[:5] != f"{name[:2]}/{name[2:4]}":
                yield rel, "file is in the wrong folder for its name"
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK_SIZE):
                    digest.update(chunk)
            if digest.hexdigest() != name:
                yield rel, f"content does not match its name (sha256 is {digest.hexdigest()})"


class DownloadCut(MediaError):
    """A download stopped by one of its bounds ([downloads] in the config): the message
    names the bound and its config key."""


class TooLarge(DownloadCut):
    """A file over the size cap: its bytes are dropped."""


def copy_bounded(
    response: httpx.Response, out: BinaryIO, *, url: str, limits: DownloadLimits,
    clock: Callable[[], float] | None = None, started: float | None = None, have: int = 0,
    expected: int | None = None, cancel: Callable[[], bool] | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
    on_first_write: Callable[[], None] | None = None, chunks: Iterable[bytes] | None = None,
    what: str | None = None,
) -> int:
    """Copy ``response``'s body into ``out`` within the [downloads] bounds: the one loop
    every download of a big file goes through (media files, platforms' export files).

    A size announced above ``limits.max_file_bytes`` is refused before any byte is read,
    and a body going past it is cut (TooLarge); a file still arriving after
    ``max_file_seconds`` since ``started``, or slower than ``min_bytes_per_second`` over a
    minute, is cut (DownloadCut). ``have``: bytes already in ``out`` (a resumed file);
    ``expected``: the whole file's size if known (else the Content-Length);
    ``chunks``: the body, when the caller has begun reading it; ``what``: the file, named
    in the error (a media file is named by its link alone). Returns the bytes in
    ``out`` when the body ends. Removing what was written is the caller's (it owns the file).
    """
    clock = clock or download_clock
    prefix = f"{what}: " if what else ""
    started = clock() if started is None else started
    if expected is None:
        expected = _expected_size(response, have, None)
    if expected is not None and expected > limits.max_file_bytes:
        raise TooLarge(url, prefix + f"the server announces {_size(expected)}, above the cap of "
                            f"{_size(limits.max_file_bytes)} (downloads.max_file_gb in the config): not downloaded")
    written = have
    rate = _RateCheck(clock, limits.min_bytes_per_second)
    for chunk in response.iter_bytes() if chunks is None else chunks:  # as received: a cut keeps every byte
        if cancel is not None and cancel():
            raise Cancelled("cancelled during download")
        if written + len(chunk) > limits.max_file_bytes:
            raise TooLarge(url, prefix + f"the file goes on past the cap of {_size(limits.max_file_bytes)} "
                                "(downloads.max_file_gb in the config): cut off, nothing kept")
        write_bytes(out, chunk)
        if written == have and on_first_write is not None:
            on_first_write()
        written += len(chunk)
        if on_progress is not None:
            on_progress(written, expected)
        now = clock()
        if now - started > limits.max_file_seconds:
            raise DownloadCut(url, prefix + f"timed out: still downloading after {limits.max_file_hours:g} h "
                                   "(downloads.max_file_hours in the config), at "
                                   f"{_size(written)}; the rest is asked for on the next run")
        if rate.too_slow(len(chunk), now):
            raise DownloadCut(url, prefix + f"timed out: the server sent {rate.last_rate:.0f} bytes/s for "
                                   f"{rate.WINDOW:.0f} s, below downloads.min_kb_per_second = "
                                   f"{limits.min_kb_per_second:g}; the rest is asked for on the next run")
    return written


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n} bytes"


class _RateCheck:
    """A download slower than ``min_rate`` bytes/s over a whole window is cut off (a
    server trickling a byte a second never times out a read)."""

    WINDOW = 60.0

    def __init__(self, clock: Callable[[], float], min_rate: float) -> None:
        self.min_rate = min_rate
        self.window_start = clock()
        self.window_bytes = 0
        self.last_rate = 0.0

    def too_slow(self, received: int, now: float) -> bool:
        self.window_bytes += received
        elapsed = now - self.window_start
        if elapsed < self.WINDOW:
            return False
        self.last_rate = self.window_bytes / elapsed
        self.window_start, self.window_bytes = now, 0
        return self.last_rate < self.min_rate


def _expected_size(response: httpx.Response, have: int, total: int | None) -> int | None:
    """How big the file should be when this response is fully read, if the server says."""
    if total is not None:
        return total
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and "Content-Encoding" not in response.headers:
        return have + int(length)
    return None


def _validator_path(part: Path) -> Path:
    return part.with_name(part.name + ".validator")


def _write_validator(part: Path, headers: httpx.Headers) -> None:
    """Keep what identifies this version of the file, for ``If-Range`` on a resume: a
    strong ETag, else Last-Modified (a weak ETag may not be used in If-Range)."""
    etag = headers.get("ETag")
    value = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")
    path = _validator_path(part)
    if not value:
        path.unlink(missing_ok=True)
        return
    with _open_private(path, "wb") as out:
        out.write(value.encode("utf-8", "replace"))


def _read_validator(part: Path) -> str | None:
    try:
        value = _validator_path(part).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return value or None


def _open_private(path: Path, mode: str) -> BinaryIO:
    """Open for binary writing; a new file is readable by its owner only (0600)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "ab" else os.O_TRUNC)
    return cast(BinaryIO, os.fdopen(os.open(path, flags, 0o600), mode))   # "wb" or "ab": binary
