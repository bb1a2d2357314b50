"""Safe opening of official "download your data" export files.

An export file comes from the internet and is treated as hostile until proven otherwise
(DESIGN.md §4). ``open_export`` accepts a zip, a tar (plain or gzip / bz2 / xz
compressed), a bare JSON, HTML, CSV or CAR file, an already extracted folder, or a folder holding the
parts of one download (zips or tars: read as one export), and gives one small API over
all of them:

    with open_export("~/Downloads/TikTok_Data.zip") as export:
        for name in export.find("user_data*.json"):
            for video in export.iter_json(name, "Video.Videos.VideoList.item"):
                ...

What it guarantees:

- Entry names are normalized relative POSIX names. Names with ``..``, absolute paths,
  drive letters, backslashes or NUL bytes are left out of ``names()`` with a warning in
  ``source.warnings``; opening one raises ``ExportFileError``.
- Links (symbolic and hard), devices and FIFOs inside archives are skipped with a
  warning; a folder is walked without following links out of it.
- Zip bombs: declared sizes, the compression ratio and the bytes actually read are
  all checked against ``ExportLimits``.
- JSON is read through ``JsonReader``, which checks every byte before a parser sees it:
  nesting deeper than ``ExportLimits.max_json_depth`` (512; a real export nests a few
  levels, a hostile one 100,000 to exhaust memory), NUL bytes and invalid UTF-8 each
  fail the entry with the byte where they are. A lone surrogate escape ("\\udfff", a
  string JavaScript cut between the two halves of an emoji) is rewritten to "\\uFFFD"
  (U+FFFD, the replacement character): the parser would refuse the whole entry.
- Nothing is ever written anywhere except by ``extract_member``, and only inside the
  destination folder it is given.

Every error is an ``ExportFileError`` whose message names the file (and the entry inside
it) and says what to do.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import fnmatch
import functools
import hashlib
import io
import itertools
import json
import os
import re
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

_HASH_CHUNK = 1024 * 1024

try:
    from lzma import LZMAError as _LZMAError
except ImportError:  # Python built without lzma: such tars cannot be opened anyway
    _LZMAError = OSError  # type: ignore[misc,assignment]

# What a damaged archive raises while being read (gzip.BadGzipFile is an OSError).
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error, _LZMAError)

# Magic bytes of the formats we accept (sniffed, never trusted from the file name).
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip, or an empty zip
_COMPRESSED_TAR_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")  # gzip, bzip2, xz
_TAR_MAGIC_OFFSET = 257  # "ustar" lives here in a POSIX / GNU tar header
_UTF8_BOM = b"\xef\xbb\xbf"

_FIX_DOWNLOAD_AGAIN = "download the export again from the platform"
_FIX_REFUSED_ENTRY = (
    "it was skipped for safety (it could reach outside the export or is not a plain file); "
    "the rest of the export can still be imported"
)


class ExportFileError(Exception):
    """An export file (or one entry inside it) cannot be used safely.

    ``path`` is the export file, ``entry`` the name inside it (or None). The message
    always names the file and says what to do.
    """

    def __init__(self, message: str, *, path: Path | str | None = None, entry: str | None = None):
        super().__init__(message)
        self.path = Path(path) if path is not None else None
        self.entry = entry


class NotInExport(ExportFileError, FileNotFoundError):
    """A file the export names (in its JSON or CSV) that the export does not hold."""


def _export_error(path: Path, problem: str, fix: str, entry: str | None = None) -> ExportFileError:
    where = f"{path}" if entry is None else f"{path}, entry {entry!r}"
    return ExportFileError(f"{where}: {problem}; {fix}.", path=path, entry=entry)


@dataclass
class ExportLimits:
    """How much an export may hold before it is treated as a zip bomb."""

    max_total_bytes: int = 20 * 2**30  # uncompressed total (and total bytes read per source)
    max_entry_bytes: int = 8 * 2**30
    max_ratio: float = 200.0  # uncompressed/compressed per entry (zip bomb)
    max_entries: int = 200_000
    # No platform's export nests JSON more than about ten levels. Parsers' memory grows
    # with the square of the depth (ijson keeps a path per open level), so 100,000 nested
    # "[" in a 200 KB file would take tens of GB; 512 levels costs under 2 MB, and stays
    # below Python's recursion limit for json.load and for storing an item as JSON again.
    max_json_depth: int = 512
    # The ratio is only judged above this size: small files of repeated text legitimately
    # compress far better than 200:1, and a 1 MiB "bomb" harms nobody.
    ratio_min_bytes: int = 2**20


@dataclass
class _Entry:
    """One regular file inside an export, as its container describes it."""

    name: str  # safe, normalized relative POSIX name
    size: int  # declared uncompressed size
    compressed_size: int | None  # known for zip entries only
    handle: Any  # ZipInfo, TarInfo or Path


def _safe_name(raw: str) -> tuple[str | None, str]:
    """Normalize an entry name, or return (None, why it is refused)."""
    if "\x00" in raw:
        return None, "its name contains a NUL byte"
    if "\\" in raw:
        return None, "its name contains a backslash (a Windows path trick)"
    if raw.startswith("/"):
        return None, "it has an absolute path"
    if re.match(r"^[A-Za-z]:", raw):
        return None, "its name starts with a drive letter"
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        return None, "its name contains '..' (it would land outside the destination)"
    if not parts:
        return None, "its name is empty"
    return "/".join(parts), ""


class _GuardedStream(io.RawIOBase):
    """Counts the bytes actually read from one entry and stops at the first limit crossed.

    Header sizes can lie; the bytes that come out of the decompressor cannot.
    """

    def __init__(self, inner: BinaryIO, source: "ExportSource", entry: _Entry):
        super().__init__()
        self._inner = inner
        self._source = source
        self._entry = entry
        self._count = 0
        # open() only hands out entries whose declared size passed max_entry_bytes and
        # max_ratio, so holding the real bytes to that size enforces both, whatever the
        # header said (and whatever the decompressor does).
        self._cap = entry.size

    @property
    def bytes_read(self) -> int:
        return self._count

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        try:
            # typing.BinaryIO declares no readinto; every stream handed here (a zip or tar
            # entry, a gzip or plain file) is an io.BufferedIOBase, which has it.
            count = self._inner.readinto(buffer)  # type: ignore[attr-defined]
        except _READ_ERRORS as exc:
            raise _export_error(
                self._source.path,
                f"the entry is damaged and cannot be read ({type(exc).__name__}: {exc})",
                _FIX_DOWNLOAD_AGAIN,
                self._entry.name,
            ) from exc
        count = count or 0
        self._count += count
        if self._count > self._cap:
            raise _export_error(
                self._source.path,
                f"it holds more than its declared size of {self._cap} bytes (zip bomb or damaged file)",
                _FIX_DOWNLOAD_AGAIN,
                self._entry.name,
            )
        self._source._count_bytes_read(count, self._entry.name)
        return count

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            finally:
                super().close()


# JSON scanning (JsonReader): only the brackets outside strings count; "[" / "{" become +1,
# "]" / "}" -1 (as a signed byte).
_JSON_BRACKETS = b"[]{}"
_JSON_DELTAS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_JSON_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in _JSON_BRACKETS)
_JSON_NOT_QUOTES_OR_BRACKETS = bytes(byte for byte in range(256) if byte not in _JSON_BRACKETS + b'"')


# A surrogate escape that is not one half of a valid pair ("\ud800" then "\udc00"), in a
# form re.sub can replace without a Python call per match (see JsonReader._mend_surrogates).
# An escape is real only after an even run of backslashes ("\\udfff" is a backslash, then
# text): each match starts where a run of backslashes starts and takes its pairs along.
_HEX2 = rb"[0-9a-fA-F]{2}"
_HIGH = rb"\\u[dD][89abAB]" + _HEX2
_LOW = rb"\\u[dD][c-fC-F]" + _HEX2
_LONE_SURROGATE_ESCAPE = re.compile(
    rb"(?<!\\)(?P<pairs>(?:\\\\)*)(?:"
    + _HIGH + rb"(?!" + _LOW + rb")"                 # a high half with no low half after it
    + rb"|(?<!" + _HIGH + rb")" + _LOW               # a low half with no high half before it
    + rb"|(?<=\\)(?P<text>u[dD][89abAB]" + _HEX2 + rb")" + _LOW  # after "\\ud800": text, not a high half
    + rb")")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD]")  # "\u" is lower case in JSON, the hex digits are not
_LONE_SURROGATE_REPLACEMENT = rb"\g<pairs>\g<text>\\uFFFD"  # as long as what it replaces
_ESCAPE_TAIL = 11  # an escape starting this close to a chunk's end may pair with the next chunk


class _TextBytes:
    """What every text entry of an export must be, checked a chunk at a time: no NUL byte
    and valid UTF-8. ``problem`` says what is wrong and at which byte of the entry, in
    the same words for JSON (JsonReader fails the entry) and for CSV or HTML (TextReader
    lets the reader go on and the importer reports it)."""

    def __init__(self, start: int = 0):
        self.offset = start  # offset in the entry of the next byte checked
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    def problem(self, data: bytes) -> str | None:
        try:
            nul = data.find(b"\x00")
            if nul >= 0 and self.offset + nul < 4:  # "{\0" or "\0{": text in two bytes a character
                return (f"it holds a NUL byte at byte {self.offset + nul}, at its very start: it is UTF-16 (or "
                        "binary), not UTF-8 text as exports are (was it re-saved by an editor?)")
            if nul >= 0:
                return f"it holds a NUL byte at byte {self.offset + nul}: text never does (the file is damaged)"
            pending = len(self._utf8.getstate()[0])
            if not pending and data.isascii():  # ASCII is UTF-8: no need to decode it
                return None
            try:
                self._utf8.decode(data)
            except UnicodeDecodeError as exc:
                return (f"it is not valid UTF-8 text at byte {self.offset - pending + exc.start} ({exc.reason}); "
                        "exports are UTF-8 (the file is damaged, or was re-saved in another encoding)")
            return None
        finally:
            self.offset += len(data)

    def end_problem(self) -> str | None:
        try:
            self._utf8.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return f"it ends in the middle of a UTF-8 character ({exc.reason}); the file may be truncated"
        return None


class TextReader(io.RawIOBase):
    """The bytes of one UTF-8 text entry (a CSV file, an HTML page), unchanged, with the
    first NUL byte or invalid UTF-8 noted in ``problem`` (file, entry and byte) for the
    importer to report: one bad byte of a CSV is one bad row, not a failed file."""

    def __init__(self, stream: io.BufferedReader, source: "ExportSource", name: str):
        super().__init__()
        self._stream = stream
        self._where = f"{source.path}, entry {name!r}"
        self._checks = _TextBytes()
        self.problem: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        count = self._stream.readinto(buffer) or 0
        if self.problem is None:
            found = self._checks.problem(bytes(memoryview(buffer)[:count])) if count else self._checks.end_problem()
            if found:
                self.problem = f"{self._where}: {found}"
        return count

    def close(self) -> None:
        if not self.closed:
            try:
                self._stream.close()
            finally:
                super().close()


class JsonReader:
    """The bytes of one JSON entry, checked as they are read, before any parser sees them.

    A streaming parser holds a little for each open "[" or "{" (ijson a path as long as the
    depth, so memory grows with the depth squared), and json.load recurses once per level:
    a small file of 100,000 nested brackets takes tens of GB. Here nesting is counted on
    the raw bytes, outside strings, a chunk at a time and at C speed (see _outside_strings;
    the brackets turned into +1 / -1, their running sum's maximum taken), and the read
    fails past ``max_depth``. NUL bytes (never in JSON text) and bytes that are not UTF-8
    fail it too. Each failure is an ExportFileError naming the file, the entry and the
    byte, so a person learns what is wrong with the file, not only that it is unreadable.
    Memory: the chunk being read, whatever the file holds.
    """

    def __init__(self, stream: BinaryIO, source: "ExportSource", name: str, *, max_depth: int, start: int = 0):
        self._stream = stream
        self._source = source
        self.name = name
        self.max_depth = max_depth
        self.bytes_read = start          # offset in the entry of the next byte read
        self._depth = 0
        self._in_string = False
        self._escaped = False            # the last chunk ended in a string's backslash
        self._text = _TextBytes(start)
        self._held = b""                 # a chunk's tail that may end in half a surrogate pair
        self._ready = b""                # mended bytes not handed out yet
        self._at_end = False             # the stream has given all its bytes

    def read(self, size: int | None = -1) -> bytes:
        if size is None:
            size = -1
        whole = size < 0
        while not self._at_end and (whole or not self._ready) and size != 0:
            # What is held back counts in ``size``: a parser's chunk stays one read, one copy.
            self._ready += self._mend_surrogates(self._stream.read(-1 if whole else max(size - len(self._held), 1)))
        data = self._ready if whole else self._ready[:size]
        self._ready = self._ready[len(data):]
        if data:
            self._check(data)
            self.bytes_read += len(data)
        if whole or (not data and size != 0):  # the whole rest was read
            self._check_end()
        return data

    def _mend_surrogates(self, chunk: bytes) -> bytes:
        """``chunk`` (b"" at the end) with every lone surrogate escape turned into "\\uFFFD";
        the end of a chunk that may pair with the next chunk is held back until it comes.

        A lone surrogate makes the parser (ijson's yajl) refuse the whole entry, and
        JavaScript writes them (a string cut between the halves of an emoji). Same length,
        so the byte offsets in errors stay right; a valid pair is left alone. Checked at C
        speed, and only when the chunk holds "\\ud" at all."""
        data = self._held + chunk if self._held else chunk
        cut = len(data) if not chunk else self._safe_cut(data)
        self._at_end = not chunk
        data, self._held = (data, b"") if cut == len(data) else (data[:cut], data[cut:])
        if _SURROGATE_ESCAPE.search(data):  # one C pass; \ud is rare: most chunks stop here
            data = _LONE_SURROGATE_ESCAPE.sub(_LONE_SURROGATE_REPLACEMENT, data)
        return data

    @staticmethod
    def _safe_cut(data: bytes) -> int:
        """Where ``data`` can be cut so that no escape before the cut pairs with one after it,
        and what follows the cut starts outside any escape (after an even run of backslashes)."""
        last = data.rfind(b"\\", max(len(data) - _ESCAPE_TAIL, 0))
        if last < 0:
            return len(data)
        if _backslashes_before(data, last) % 2:  # the second of "\\\\": no escape is open
            return len(data)
        if last >= 6 and _backslashes_before(data, last - 6) % 2 == 0 and re.fullmatch(_HIGH, data[last - 6:last]):
            return last - 6  # a high half just before: it may pair with what comes next
        return last

    def _check(self, data: bytes) -> None:
        problem = self._text.problem(data)
        if problem:
            self._fail(problem)
        at_start = (self._in_string, self._escaped)
        brackets = self._outside_strings(data)
        deltas = memoryview(brackets.translate(_JSON_DELTAS)).cast("b")
        if deltas:
            if max(itertools.accumulate(deltas, initial=self._depth)) > self.max_depth:
                self._fail_too_deep(data, *at_start)
            self._depth += sum(deltas)

    def _outside_strings(self, data: bytes) -> bytes:
        """The brackets of ``data`` that stand outside JSON strings, in order; the string
        state is carried on to the next chunk.

        Escapes are blanked out first (an escaped backslash before an escaped quote, as a
        parser reads them, left to right), so every quote left opens or closes a string;
        then only quotes and brackets are kept, and splitting at the quotes alternates
        outside / inside. All in C: a Python step per string would cost more than parsing."""
        if self._escaped:  # the last chunk ended in a string's backslash: it escapes this byte
            data, self._escaped = b"_" + data[1:], False
        if b"\\" in data:
            data = data.replace(b"\\\\", b"__")  # the same object back when there is none
            data = data.replace(b'\\"', b"__")
            if data.endswith(b"\\"):  # what it escapes is in the next chunk
                data, self._escaped = data[:-1], True
        pieces = data.translate(None, _JSON_NOT_QUOTES_OR_BRACKETS).split(b'"')
        outside = pieces[1::2] if self._in_string else pieces[0::2]
        if len(pieces) % 2 == 0:  # an odd number of quotes: the chunk ends on the other side
            self._in_string = not self._in_string
        return b"".join(outside)

    def _check_end(self) -> None:
        problem = self._text.end_problem()
        if problem:
            self._fail(problem)

    def _fail_too_deep(self, data: bytes, in_string: bool, escaped: bool) -> None:
        """Find the byte that crossed the limit (one pass over this chunk, only on failure)."""
        depth = self._depth
        position = 0
        for position, byte in enumerate(data):  # noqa: B007 - position: where it stopped, named below
            if escaped:
                escaped = False
            elif in_string:
                if byte == 0x5C:  # backslash
                    escaped = True
                elif byte == 0x22:  # quote
                    in_string = False
            elif byte == 0x22:
                in_string = True
            elif byte in (0x5B, 0x7B):  # [ {
                depth += 1
                if depth > self.max_depth:
                    break
            elif byte in (0x5D, 0x7D):
                depth -= 1
        self._fail(f"its JSON is nested more than {self.max_depth} levels deep (at byte {self.bytes_read + position}); "
                   "no real export nests more than a few levels: the file is damaged or made to exhaust memory, "
                   "and was not read further")

    def _fail(self, problem: str) -> None:
        error = _export_error(self._source.path, problem, _FIX_DOWNLOAD_AGAIN, self.name)
        self._source.read_problems.append(error)
        raise error

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> "JsonReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _backslashes_before(data: bytes, index: int) -> int:
    """How many backslashes stand right before ``data[index]``."""
    return index - len(data[:index].rstrip(b"\\"))


def json_nesting_problem(data: bytes | str | dict | list, max_depth: int = ExportLimits.max_json_depth) -> str | None:
    """Why a piece of JSON must not be parsed or stored, or None: nested deeper than
    ``max_depth`` levels. ``data``: a small JSON text taken from inside an export (a CSV
    cell, say), or a value already parsed (an item of a platform's API answer: json.loads
    stops near 1,000 levels, but storing it again as JSON recurses deeper still)."""
    if isinstance(data, (dict, list)):
        deepest = _parsed_depth(data, max_depth)
    else:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        plain = raw.replace(b"\\\\", b"__").replace(b'\\"', b"__")  # as JsonReader._outside_strings
        outside = b"".join(plain.split(b'"')[0::2])
        deltas = memoryview(outside.translate(_JSON_DELTAS, _JSON_NOT_BRACKETS)).cast("b")
        deepest = max(itertools.accumulate(deltas, initial=0))
    if deepest > max_depth:
        return f"JSON nested more than {max_depth} levels deep"
    return None


def _parsed_depth(value: dict | list, max_depth: int) -> int:
    """How deep a parsed JSON value nests (an object or array is a level, as a bracket is
    in the text), counted without recursion; the count stops once past ``max_depth``."""
    deepest = 0
    open_values: list[tuple[Any, int]] = [(value, 1)]
    while open_values:
        current, depth = open_values.pop()
        deepest = max(deepest, depth)
        if deepest > max_depth:
            break
        children = current.values() if isinstance(current, dict) else current
        open_values.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


class ExportSource:
    """An opened export: a zip, a tar / tar.gz, a bare JSON file, or an extracted folder.

    Use ``open_export`` to get one. ``warnings`` lists the entries that were skipped and
    why; show them to the person importing.
    """

    kind = "export"

    def __init__(self, path: Path, limits: ExportLimits):
        self.path = path
        self.limits = limits
        self.warnings: list[str] = []
        self._entries: dict[str, _Entry] = {}
        self._refused: dict[str, str] = {}  # raw or normalized name -> why it was refused
        self._total_read = 0
        self._entry_count = 0
        self._used: set[str] = set()  # entries opened or handed out (see not_read)
        # Why entries could not be read (JsonReader): when no connector recognizes the
        # export, the first of these is the real reason (a damaged file), not "unknown".
        self.read_problems: list[ExportFileError] = []

    # -- building the entry table (used by the subclasses while scanning) --------------

    def _warn(self, raw_name: str, why: str) -> None:
        self.warnings.append(f"{self.path}: skipped entry {raw_name!r}: {why}")

    def _count_entry(self) -> None:
        self._entry_count += 1
        if self._entry_count > self.limits.max_entries:
            raise _export_error(
                self.path,
                f"it holds more than {self.limits.max_entries} entries (max_entries)",
                "if this really is your export, raise ExportLimits.max_entries",
            )

    def _add_entry(self, raw_name: str, size: int, compressed_size: int | None, handle: Any) -> None:
        name, why = _safe_name(raw_name)
        if name is None:
            self._refused[raw_name] = why
            self._warn(raw_name, why)
            return
        if name in self._entries:
            self._warn(raw_name, f"a second entry named {name!r}; the first one is used")
            return
        entry = _Entry(name, size, compressed_size, handle)
        self._entries[name] = entry
        problem = self._entry_problem(entry)
        if problem:  # still listed, so the importer can report it as one bad item
            self.warnings.append(f"{self.path}: entry {name!r} cannot be opened: {problem[0]}")

    def _skip(self, raw_name: str, why: str) -> None:
        """A link, device or other non-regular entry: never listed, never opened."""
        self._refused.setdefault(raw_name, why)
        name, _ = _safe_name(raw_name)
        if name is not None:
            self._refused.setdefault(name, why)
        self._warn(raw_name, why)

    def _check_total_declared(self, total: int) -> None:
        if total > self.limits.max_total_bytes:
            raise _export_error(
                self.path,
                f"its entries declare {total} bytes in all, more than max_total_bytes "
                f"({self.limits.max_total_bytes}) (zip bomb?)",
                "if this really is your export, raise ExportLimits.max_total_bytes",
            )

    def _entry_problem(self, entry: _Entry) -> tuple[str, str] | None:
        """(problem, fix) when the entry's declared sizes break a limit."""
        limits = self.limits
        if entry.size > limits.max_entry_bytes:
            return (
                f"it declares {entry.size} bytes, more than max_entry_bytes ({limits.max_entry_bytes})",
                "if this really is your export, raise ExportLimits.max_entry_bytes",
            )
        if entry.compressed_size is not None and entry.size > limits.ratio_min_bytes:
            ratio = entry.size / max(entry.compressed_size, 1)
            if ratio > limits.max_ratio:
                return (
                    f"it expands {ratio:.0f} times (max_ratio is {limits.max_ratio:g}): a zip bomb",
                    "if this really is your export, raise ExportLimits.max_ratio",
                )
        return None

    def _count_bytes_read(self, count: int, name: str) -> None:
        self._total_read += count
        if self._total_read > self.limits.max_total_bytes:
            raise _export_error(
                self.path,
                f"more than max_total_bytes ({self.limits.max_total_bytes}) were read from this export "
                "(re-reading an entry counts again)",
                "if this really is your export, raise ExportLimits.max_total_bytes",
                name,
            )

    # -- public API ---------------------------------------------------------------------

    def names(self) -> list[str]:
        """Safe, normalized relative POSIX names of the regular files (archive order)."""
        return list(self._entries)

    def find(self, *patterns: str) -> list[str]:
        """Names whose base name matches any shell pattern, case-insensitively."""
        lowered = [pattern.lower() for pattern in patterns]
        return [
            name
            for name in self._entries
            if any(fnmatch.fnmatchcase(name.rsplit("/", 1)[-1].lower(), pattern) for pattern in lowered)
        ]

    def modified_at(self, name: str) -> dt.datetime | None:
        """When one entry was last written, as its container keeps it (a zip's time, which
        has no zone, read as UTC; a tar member's or a file's modification time); None for
        an entry not listed or a time that cannot be read. Exports are stamped when the
        platform builds them: a snapshot's date, when the export names none."""
        handle = getattr(self._entries.get(name), "handle", None)
        try:
            if isinstance(handle, zipfile.ZipInfo):
                return dt.datetime(*handle.date_time, tzinfo=dt.timezone.utc)
            if isinstance(handle, tarfile.TarInfo):
                return dt.datetime.fromtimestamp(handle.mtime, dt.timezone.utc)
            if isinstance(handle, Path):
                return dt.datetime.fromtimestamp(handle.stat().st_mtime, dt.timezone.utc)
        except (OSError, ValueError, OverflowError, TypeError):
            return None
        return None

    def open(self, name: str) -> io.BufferedReader:
        """A streaming reader of one entry; limits are enforced while reading."""
        entry = self._entries.get(name)
        if entry is None:
            why = self._refused.get(name)
            if why is not None:
                raise _export_error(self.path, f"this entry was refused: {why}", _FIX_REFUSED_ENTRY, name)
            raise _export_error(
                self.path,
                "there is no such entry",
                "list the entries with names() or find(); the platform may have changed its export layout",
                name,
            )
        problem = self._entry_problem(entry)
        if problem:
            raise _export_error(self.path, problem[0], problem[1], name)
        self._used.add(name)
        raw = self._open_entry(entry)
        return io.BufferedReader(_GuardedStream(raw, self, entry), buffer_size=64 * 1024)

    def peek(self, name: str, size: int) -> bytes:
        """The first ``size`` bytes of one entry, to recognize an export by (a connector's
        ``detect_export``): unlike ``open``, a look does not count the entry as read, so the
        platform whose export it is still names it in ``not_read`` if it does not read it."""
        looked_at_before = name in self._used
        try:
            with self.open(name) as stream:
                return stream.read(size)
        finally:
            if not looked_at_before:
                self._used.discard(name)

    def opener(self, name: str | None, *, named: str, named_in: str, hint: str = "") -> Callable[[], BinaryIO]:
        """How a media file the export names is opened (a MediaRef's ``opener``).

        ``name`` is the entry the importer found for it, None when the export does not hold
        it; ``named`` is how the export names it, in ``named_in`` (``hint``: what to do
        when it is missing, if anything can be done). Handing out the opener
        counts the entry as read (an import that already holds the file never opens it).
        A file the export lacks fails when opened, with a message that begins "not in the
        export": the post keeps a failed slot for it, and the run names it.
        """
        if name is not None and name in self._entries:
            self._used.add(name)
            return lambda: self.open(name)
        refused = " (it was refused as unsafe)" if (name or named) in self._refused else ""
        path = self.path

        def missing() -> BinaryIO:
            raise NotInExport(f"not in the export: {path} does not hold {named!r}, named in {named_in}{refused}"
                              + (f"; {hint}" if hint else ""), path=path, entry=name or named)

        return missing

    def named_by_importer(self, names) -> None:
        """Entries the importer names in its own words in the run's summary (the data types
        it does not read, say): ``not_read`` does not list them a second time."""
        self._used.update(name for name in names if name in self._entries)

    def not_read(self) -> list[str]:
        """The export's files the import neither opened nor handed out: parts of the export
        this version does not read (a layout it does not know, data it does not archive).
        Files an operating system added (.DS_Store, __MACOSX/) are left out."""
        return [name for name in self._entries if name not in self._used and not _added_by_the_system(name)]

    def open_json(self, name: str) -> "JsonReader":
        """A reader of one JSON entry for any parser (ijson, json.load): a UTF-8 byte-order
        mark skipped, and every byte checked before the parser sees it (see JsonReader)."""
        stream = self.open(name)
        skipped = len(_UTF8_BOM) if stream.peek(3)[:3] == _UTF8_BOM else 0
        stream.read(skipped)
        return JsonReader(stream, self, name, max_depth=self.limits.max_json_depth, start=skipped)

    def open_text(self, name: str) -> io.BufferedReader:
        """A reader of one UTF-8 text entry (CSV, HTML) whose ``raw.problem`` names the first
        NUL byte or invalid UTF-8 in it once read (see TextReader)."""
        return io.BufferedReader(TextReader(self.open(name), self, name), buffer_size=64 * 1024)

    def parse_json(self, name: str, **options: Any) -> Iterator[tuple[str, str, Any]]:
        """ijson ``parse`` events (prefix, event, value) of one JSON entry; malformed JSON
        becomes an ExportFileError naming the file, the entry and the byte."""
        import ijson  # imported here: the CLI imports this module and must start fast

        with self.open_json(name) as reader:
            with self._json_errors(reader, ijson.JSONError):
                yield from ijson.parse(reader, **options)

    def iter_json(self, name: str, prefix: str) -> Iterator[Any]:
        """Stream the items under ``prefix`` (ijson syntax, e.g. "a.b.item") of one JSON entry.

        Numbers come back as int / float (not Decimal) so items can be stored as JSON again;
        text as UTF-8 can hold it (``plain_values``).
        """
        import ijson

        with self.open_json(name) as reader:
            with self._json_errors(reader, ijson.JSONError):
                # Not ijson's use_float: its C parser then reads integers as 64-bit and fails
                # the whole file at a longer one, which is valid JSON (one odd value of one
                # item); Decimals are turned into floats here instead.
                for item in ijson.items(reader, prefix):
                    yield plain_values(item)

    def iter_json_sections(self, name: str, prefixes: Iterable[str]) -> Iterator[tuple[str, Any]]:
        """(prefix, item) for the items under any of ``prefixes`` of one JSON entry, in the
        order the file holds them, in one pass (``iter_json`` reads the whole entry for each
        prefix). Only one item is held at a time; values as ``iter_json`` gives them."""
        import ijson

        wanted = frozenset(prefixes)
        with self.open_json(name) as reader:
            with self._json_errors(reader, ijson.JSONError):
                events = ijson.parse(reader)
                for prefix, event, value in events:
                    if prefix not in wanted or event in ("map_key", "end_map", "end_array"):
                        continue
                    if event not in ("start_map", "start_array"):
                        yield prefix, plain_values(value)
                        continue
                    # A container: build it from its events, up to the one that closes it.
                    builder = ijson.ObjectBuilder()
                    builder.event(event, value)
                    depth = 1
                    for _, inner, inner_value in events:
                        builder.event(inner, inner_value)
                        if inner in ("start_map", "start_array"):
                            depth += 1
                        elif inner in ("end_map", "end_array"):
                            depth -= 1
                            if depth == 0:
                                break
                    yield prefix, plain_values(builder.value)

    def load_json(self, name: str) -> Any:
        """The whole JSON document of one entry (use ``iter_json`` for big files), its
        text as UTF-8 can hold it (``plain_values``)."""
        with self.open_json(name) as reader:
            try:
                return plain_values(json.loads(reader.read()))
            except json.JSONDecodeError as exc:
                raise _export_error(
                    self.path,
                    f"malformed JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})",
                    f"the file may be truncated; {_FIX_DOWNLOAD_AGAIN}",
                    name,
                ) from exc

    @contextlib.contextmanager
    def _json_errors(self, reader: "JsonReader", parser_error: type[Exception]) -> Iterator[None]:
        try:
            yield
        except (parser_error, UnicodeDecodeError) as exc:
            # ijson's message is bytes of yajl's multi-line picture; its first line says what.
            detail = exc.args[0] if exc.args else exc
            if isinstance(detail, bytes):
                detail = detail.decode("utf-8", "replace")
            detail = str(detail).strip().splitlines()[0] if str(detail).strip() else type(exc).__name__
            error = _export_error(
                self.path,
                f"malformed JSON within its first {reader.bytes_read} bytes ({detail})",
                f"the file may be truncated; {_FIX_DOWNLOAD_AGAIN}",
                reader.name,
            )
            self.read_problems.append(error)
            raise error from exc

    @functools.cached_property
    def sha256(self) -> str:
        """Hex sha256 of the export file: its provenance, and what makes a re-import a no-op."""
        return _sha256_of_file(self.path)

    @functools.cached_property
    def fingerprint(self) -> str:
        """What the export holds, whatever wraps it: a hex sha256 over the sorted (size,
        CRC-32) of its files, names and container left out. The zip, the folder it was
        unzipped to (macOS unzips downloads by itself) and its lone JSON file unzipped
        have the same fingerprint, so they are one export. Files an operating system adds
        (.DS_Store, __MACOSX/, other hidden names) do not count."""
        parts = sorted(
            (entry.size, self._entry_crc32(entry))
            for entry in self._entries.values() if not _added_by_the_system(entry.name)
        )
        encoded = json.dumps(parts, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("ascii")).hexdigest()

    def _entry_crc32(self, entry: _Entry) -> int:
        """CRC-32 of one entry's bytes (read up to its declared size, which passed the limits)."""
        crc = 0
        left = entry.size
        with self._open_entry(entry) as stream:
            while left > 0 and (chunk := stream.read(min(_HASH_CHUNK, left))):
                crc = zlib.crc32(chunk, crc)
                left -= len(chunk)
        return crc

    def close(self) -> None:
        pass

    def __enter__(self) -> "ExportSource":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {str(self.path)!r} entries={len(self._entries)}>"

    # -- for subclasses -------------------------------------------------------------------

    def _open_entry(self, entry: _Entry) -> BinaryIO:
        raise NotImplementedError


class _ZipSource(ExportSource):
    kind = "zip"

    def __init__(self, path: Path, limits: ExportLimits):
        super().__init__(path, limits)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            if not _has_zip_directory_end(path):
                problem = (f"it is a truncated zip: it starts like one, but its last part (the list of the files "
                           f"in it) is missing after {path.stat().st_size} bytes")
            else:
                problem = f"the zip file is damaged or incomplete ({exc})"
            raise _export_error(path, problem, f"was the download interrupted? {_FIX_DOWNLOAD_AGAIN}") from exc
        try:
            self._scan()
        except BaseException:
            self._zip.close()
            raise

    def _scan(self) -> None:
        total = 0
        for info in self._zip.infolist():
            self._count_entry()
            if info.filename.endswith("/"):  # a folder (ZipInfo.is_dir() fails on an empty name)
                continue
            file_type = stat.S_IFMT(info.external_attr >> 16)  # Unix mode, when a Unix tool made the zip
            if file_type == stat.S_IFLNK:
                self._skip(info.filename, "it is a symbolic link")
                continue
            if file_type not in (0, stat.S_IFREG):
                self._skip(info.filename, "it is not a regular file")
                continue
            if info.flag_bits & 0x1:
                self._skip(info.filename, "it is encrypted")
                continue
            total += info.file_size
            self._add_entry(info.filename, info.file_size, info.compress_size, info)
        self._check_total_declared(total)

    def _entry_crc32(self, entry: _Entry) -> int:
        return entry.handle.CRC  # from the zip's directory; checked by zipfile when the entry is read

    def _open_entry(self, entry: _Entry) -> BinaryIO:
        try:
            return self._zip.open(entry.handle)  # type: ignore[return-value]
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise _export_error(
                self.path, f"the entry cannot be read ({exc})", _FIX_DOWNLOAD_AGAIN, entry.name
            ) from exc

    def close(self) -> None:
        self._zip.close()


class _TarSource(ExportSource):
    """A tar, plain or compressed.

    A compressed stream can only be read forward: reaching an entry that lies before the
    last one read decompresses the whole archive again from its start (an importer that
    reads ``outbox.json`` at the end of the tar, then each page's media near its start,
    would decompress it once per page). So a compressed tar is decompressed exactly once,
    while its entries are listed, into a private temporary file (``spill_dir``; deleted
    when the source closes, needs free space for the uncompressed size); entries are then
    read from that plain copy.
    """

    kind = "tar"

    def __init__(self, path: Path, limits: ExportLimits, spill_dir: Path | None = None):
        super().__init__(path, limits)
        self._plain: BinaryIO | None = None
        with open(path, "rb") as stream:
            head = stream.read(6)
        compressed = head.startswith(_COMPRESSED_TAR_MAGICS)
        try:
            if compressed:
                self._open_compressed(head, spill_dir)
            else:
                self._tar = tarfile.open(path, mode="r:")
        except (tarfile.TarError, OSError, EOFError, zlib.error, _LZMAError) as exc:
            self._close_plain()
            if isinstance(exc, ExportFileError):
                raise
            raise _export_error(
                path,
                f"it is compressed but is not a readable tar archive ({exc})",
                "if it is a single compressed JSON file, decompress it first; otherwise "
                + _FIX_DOWNLOAD_AGAIN,
            ) from exc
        try:
            if not compressed:
                self._scan(self._tar)
        except BaseException:
            self._tar.close()
            raise

    def _open_compressed(self, head: bytes, spill_dir: Path | None) -> None:
        """The one decompression pass: list the entries from the stream while every byte
        that comes out is written to the plain copy."""
        import bz2
        import gzip
        import lzma

        raw = _open_regular_file(self.path)
        if head.startswith(b"\x1f\x8b"):
            decompressed: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        elif head.startswith(b"BZh"):
            decompressed = bz2.BZ2File(raw, mode="rb")  # type: ignore[assignment]
        else:
            decompressed = lzma.LZMAFile(raw, mode="rb")  # type: ignore[assignment]
        self._plain = tempfile.TemporaryFile(prefix="archiver-export-", suffix=".tar", dir=spill_dir)
        try:
            tee = _TeeReader(decompressed, self._plain, self.path)
            with tarfile.open(fileobj=tee, mode="r|") as stream:  # type: ignore[call-overload]
                self._scan(stream)
            self._plain.flush()
            self._plain.seek(0)
            self._tar = tarfile.open(fileobj=self._plain, mode="r:")  # type: ignore[call-overload]
        finally:
            decompressed.close()
            raw.close()

    def _scan(self, tar: tarfile.TarFile) -> None:
        compressed_size = self.path.stat().st_size
        total = 0
        while True:
            # tarfile reads over an entry's data only when asked for the *next* header, so
            # checking the declared sizes here keeps a bomb from ever being decompressed.
            try:
                member = tar.next()
            except ExportFileError:
                raise
            except _READ_ERRORS as exc:
                truncated = isinstance(exc, EOFError) or "unexpected end of data" in str(exc)
                raise _export_error(
                    self.path,
                    "it is truncated: the compressed data ends before the end of the archive"
                    if truncated else f"the tar archive is damaged or incomplete ({type(exc).__name__}: {exc})",
                    f"was the download interrupted? {_FIX_DOWNLOAD_AGAIN}",
                ) from exc
            if member is None:
                break
            self._count_entry()
            if member.isdir():
                continue
            if member.issym() or member.islnk():
                self._skip(member.name, f"it is a link (to {member.linkname!r})")
                continue
            if not member.isreg():
                self._skip(member.name, "it is a device, FIFO or other special file")
                continue
            total += member.size
            self._check_total_declared(total)
            if total > self.limits.ratio_min_bytes and total / max(compressed_size, 1) > self.limits.max_ratio:
                raise _export_error(
                    self.path,
                    f"it expands more than {self.limits.max_ratio:g} times its size: a zip bomb",
                    "if this really is your export, raise ExportLimits.max_ratio",
                )
            self._add_entry(member.name, member.size, None, member)

    def _open_entry(self, entry: _Entry) -> BinaryIO:
        try:
            stream = self._tar.extractfile(entry.handle)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise _export_error(self.path, f"the entry cannot be read ({exc})", _FIX_DOWNLOAD_AGAIN, entry.name) from exc
        if stream is None:  # only for non-regular members, which were skipped
            raise _export_error(self.path, "the entry is not a regular file", _FIX_DOWNLOAD_AGAIN, entry.name)
        return stream  # type: ignore[return-value]

    def _close_plain(self) -> None:
        if self._plain is not None:
            self._plain.close()
            self._plain = None

    def close(self) -> None:
        try:
            self._tar.close()
        finally:
            self._close_plain()


class _TeeReader:
    """Reads a decompressed stream forward (all tarfile's stream mode asks for) and
    writes every byte read to ``copy``."""

    def __init__(self, inner: BinaryIO, copy: BinaryIO, path: Path):
        self._inner = inner
        self._copy = copy
        self._path = path

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        try:
            self._copy.write(data)
        except OSError as exc:
            raise _export_error(
                self._path,
                f"it could not be unpacked into a temporary file ({exc.strerror or exc})",
                "a compressed export needs free disk space for its unpacked size in the archive "
                "folder; free some space and import again",
            ) from exc
        return data


def _has_zip_directory_end(path: Path) -> bool:
    """Whether the zip's "end of central directory" record is where it must be: in the
    last 64 KiB + 22 bytes (it may be followed by a comment of up to 64 KiB)."""
    with open(path, "rb") as stream:
        stream.seek(max(0, path.stat().st_size - (2**16 + 22)))
        return b"PK\x05\x06" in stream.read()


def _open_regular_file(path: Path) -> BinaryIO:
    """Open a file for reading only if it is a regular file (a FIFO would hang the import)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class _JsonFileSource(ExportSource):
    """A bare JSON file: one entry, named after the file."""

    kind = "json"

    def __init__(self, path: Path, limits: ExportLimits):
        super().__init__(path, limits)
        size = path.stat().st_size
        self._count_entry()
        self._check_total_declared(size)
        self._add_entry(path.name, size, None, path)

    def _open_entry(self, entry: _Entry) -> BinaryIO:
        try:
            return _open_regular_file(entry.handle.resolve())
        except OSError as exc:
            raise _export_error(self.path, f"it cannot be read ({exc})", "check the file is still there", entry.name) from exc


class _HtmlFileSource(_JsonFileSource):
    """A bare HTML document (Pinterest's "Request your data" export is one): one entry,
    named after the file. A saved login or error page opens too; no connector recognizes
    it, and the import then says it looks like a web page (sync.jobs.detect_platforms)."""

    kind = "html"


class _CsvFileSource(_JsonFileSource):
    """A bare CSV file (a newsletter's subscriber list, a shop's customer list): one entry,
    named after the file. The connector reads it through ``open_csv``."""

    kind = "csv"


def _looks_like_csv(head: bytes) -> bool:
    """Text whose first line holds a comma, semicolon or tab between printable characters:
    UTF-8 (with or without its byte-order mark) or UTF-16 with its byte-order mark. A line of
    prose ("not an export at all") or binary bytes is not one."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = head.decode("utf-16", errors="ignore")
    else:
        first_line, newline, _ = head.removeprefix(_UTF8_BOM).partition(b"\n")
        try:
            text = first_line.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Only the first line is judged; one running past the 4096 bytes may end inside a character.
            if newline or exc.start < len(first_line) - 4:
                return False
            text = first_line[:exc.start].decode("utf-8")
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first or any(ord(c) < 32 and c != "\t" for c in first):
        return False
    return any(delimiter in first for delimiter in (",", ";", "\t"))


def open_csv(source: "ExportSource", name: str) -> io.TextIOWrapper:
    """One CSV entry as text for ``csv.reader``: UTF-8 with or without its byte-order mark
    (what Excel writes), or UTF-16 with its mark. Undecodable bytes become U+FFFD rather than
    failing the file; the first NUL byte or invalid UTF-8 is named by ``csv_text_problem``
    once read, for the importer to report (one bad byte is one bad row)."""
    raw = source.open(name)
    head = raw.peek(4)[:4]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return io.TextIOWrapper(raw, encoding="utf-16", errors="replace", newline="")
    raw.close()
    return io.TextIOWrapper(source.open_text(name), encoding="utf-8-sig", errors="replace", newline="")


def csv_text_problem(text: io.TextIOWrapper) -> str | None:
    """The first NUL byte or invalid UTF-8 met in an entry opened by ``open_csv`` (so far)."""
    buffer: Any = text.buffer
    return getattr(getattr(buffer, "raw", None), "problem", None)


class _CarFileSource(_JsonFileSource):
    """A bare CAR file (an AT Protocol repository, as Bluesky's settings page exports it):
    one entry, named after the file; the connector decodes its blocks."""

    kind = "car"


def _looks_like_car(head: bytes) -> bool:
    """CAR v1: a varint length, then a DAG-CBOR map holding "roots" and "version"."""
    length, shift, index = 0, 0, 0
    while index < min(len(head), 5):
        byte = head[index]
        length |= (byte & 0x7F) << shift
        index += 1
        if not byte & 0x80:
            break
        shift += 7
    header = head[index:index + length]
    return 0 < length < 4096 and header[:1] in (b"\xa2", b"\xa1") and b"roots" in header and b"version" in header


class _FolderSource(ExportSource):
    """An export someone already extracted. Links that lead out of the folder are skipped."""

    kind = "folder"

    def __init__(self, path: Path, limits: ExportLimits):
        super().__init__(path, limits)
        self._root = path.resolve()
        self._scan()

    def _inside_root(self, candidate: Path) -> Path | None:
        real = candidate.resolve()
        return real if real.is_relative_to(self._root) else None

    def _scan(self) -> None:
        total = 0
        found: list[tuple[str, int, Path]] = []
        for dirpath, dirnames, filenames in os.walk(self._root, followlinks=False):
            here = Path(dirpath)
            for dirname in list(dirnames):
                if (here / dirname).is_symlink():  # os.walk won't descend; say so
                    self._count_entry()
                    relative = (here / dirname).relative_to(self._root).as_posix()
                    self._skip(relative, "it is a link to a folder; links are not followed")
            for filename in filenames:
                self._count_entry()
                full = here / filename
                relative = full.relative_to(self._root).as_posix()
                real = self._inside_root(full)
                if real is None:
                    self._skip(relative, "it is a link that leads out of the export folder")
                    continue
                try:
                    info = real.stat()
                except OSError as exc:
                    self._skip(relative, f"it cannot be read ({exc})")
                    continue
                if not stat.S_ISREG(info.st_mode):
                    self._skip(relative, "it is a device, FIFO or other special file")
                    continue
                total += info.st_size
                found.append((relative, info.st_size, full))
        self._check_total_declared(total)
        for relative, size, full in sorted(found):
            self._add_entry(relative, size, None, full)

    def _open_entry(self, entry: _Entry) -> BinaryIO:
        # Checked again at open time: the folder may have changed since it was scanned.
        real = self._inside_root(entry.handle)
        if real is None:
            raise _export_error(self.path, "it now leads out of the export folder", _FIX_REFUSED_ENTRY, entry.name)
        try:
            return _open_regular_file(real)
        except OSError as exc:
            raise _export_error(self.path, f"it cannot be read ({exc})", "check the folder is unchanged", entry.name) from exc

    @functools.cached_property
    def sha256(self) -> str:
        """sha256 over the sorted (relative name, size, sha256) of every listed file."""
        listing = [[entry.name, entry.size, _sha256_of_file(entry.handle)] for entry in self._entries.values()]
        encoded = json.dumps(sorted(listing), ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


class _PartsSource(ExportSource):
    """One export downloaded in several parts: a folder that holds only zip or tar files
    (platforms split a big download so, and a post's file may sit in another part than the
    file that names it). Read as one export: the union of the parts' entries, each opened
    from its own part; a name two parts both hold is taken from the first part (in name
    order) and the other one is noted in ``warnings`` when their sizes differ."""

    kind = "parts"

    def __init__(self, path: Path, parts: list[Path], limits: ExportLimits, spill_dir: Path | None = None):
        super().__init__(path, limits)
        self._parts: list[ExportSource] = []
        self._part_of: dict[str, tuple[ExportSource, _Entry]] = {}
        try:
            total = 0
            for part in parts:
                reader = _sniff(part)
                opened = _TarSource(part, limits, spill_dir) if reader is _TarSource else reader(part, limits)
                self._parts.append(opened)
                self.warnings.extend(opened.warnings)
                self._refused.update(opened._refused)
                for name, entry in opened._entries.items():
                    held = self._part_of.get(name)
                    if held is not None:
                        if held[1].size != entry.size:
                            self._warn(f"{part.name}/{name}", f"{held[0].path.name} holds a file of that name "
                                       "too (with another size); the first part's is used")
                        continue
                    self._count_entry()
                    total += entry.size
                    self._part_of[name] = (opened, entry)
                    self._entries[name] = _Entry(name, entry.size, entry.compressed_size, entry.handle)
            self._check_total_declared(total)
        except BaseException:
            self.close()
            raise

    def _open_entry(self, entry: _Entry) -> BinaryIO:
        part, own = self._part_of[entry.name]
        return part._open_entry(own)

    def _entry_crc32(self, entry: _Entry) -> int:
        part, own = self._part_of[entry.name]
        return part._entry_crc32(own)

    @functools.cached_property
    def sha256(self) -> str:
        """sha256 over the sorted (name, sha256) of the part files."""
        listing = sorted([part.path.name, part.sha256] for part in self._parts)
        encoded = json.dumps(listing, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()

    def close(self) -> None:
        for part in self._parts:
            part.close()


def _archive_parts(folder: Path) -> list[Path] | None:
    """The parts of a download kept together in ``folder``: its files, in name order, when
    it holds no subfolder and every file (hidden ones and __MACOSX/ aside) is a zip or a
    tar; None for any other folder (an extracted export)."""
    parts = []
    for child in sorted(folder.iterdir()):
        if _added_by_the_system(child.name):
            continue
        if child.is_symlink() or not child.is_file():
            return None
        try:
            if _sniff(child) not in (_ZipSource, _TarSource):
                return None
        except (ExportFileError, OSError):
            return None
        parts.append(child)
    return parts or None


def not_read_note(unread: list[str], shown: int = 5, *, kept: str | None = "they stay in your export file") -> str:
    """One line naming the parts of an export an import did not read (``not_read``), and
    where they are still to be found (``kept``)."""
    names = ", ".join(unread[:shown]) + (f" and {len(unread) - shown} more" if len(unread) > shown else "")
    return (f"not imported: {len(unread)} file(s) of the export this version does not read ({names})"
            + (f"; {kept}" if kept else ""))


def _added_by_the_system(name: str) -> bool:
    """Hidden files and macOS' __MACOSX/ folder: added by an operating system, never by a platform."""
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


def _sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def plain_values(value: Any) -> Any:
    """``value`` as the archive can store it, changed in place: ijson's Decimals become
    floats, and a lone UTF-16 surrogate (JSON can escape one, "\\ud800", but no UTF-8
    text holds it: SQLite refuses it) becomes U+FFFD, in values and keys. Walked without
    recursion, as nesting may be deep."""
    if not isinstance(value, (dict, list)):
        return _plain_scalar(value)
    pending = [value]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if any(isinstance(key, str) and _LONE_SURROGATE.search(key) for key in node):
                renamed = [(_plain_scalar(key), child) for key, child in node.items()]
                node.clear()
                node.update(renamed)
            pairs = list(node.items())
        else:
            pairs = list(enumerate(node))
        for key, child in pairs:
            if isinstance(child, (dict, list)):
                pending.append(child)
            else:
                plain = _plain_scalar(child)
                if plain is not child:
                    node[key] = plain
    return value


def _plain_scalar(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str) and _LONE_SURROGATE.search(value):
        return _LONE_SURROGATE.sub("\ufffd", value)
    return value


def _sniff(path: Path) -> type[ExportSource]:
    """Pick the reader from the file's first bytes; the extension is not trusted."""
    with open(path, "rb") as stream:
        head = stream.read(4096)
    if head.startswith(_ZIP_MAGICS):
        return _ZipSource
    if head.startswith(_COMPRESSED_TAR_MAGICS):
        return _TarSource
    if head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar":
        return _TarSource
    if _looks_like_car(head):
        return _CarFileSource
    text_start = head.removeprefix(_UTF8_BOM).lstrip(b" \t\r\n")
    if text_start[:1] in (b"{", b"["):
        return _JsonFileSource
    if text_start[:1] == b"<":
        return _HtmlFileSource
    if _looks_like_csv(head):
        return _CsvFileSource
    raise _export_error(
        path,
        "unknown file type (not a zip, tar, tar.gz, JSON, HTML, CSV or CAR file)",
        "choose the file you downloaded from the platform's \"download your data\" page, "
        "or the folder you extracted it to",
    )


def open_export(path: str | Path, limits: ExportLimits | None = None, *,
                spill_dir: str | Path | None = None) -> ExportSource:
    """Open an export file or extracted folder; raises ExportFileError if it is unusable.

    ``spill_dir``: where a compressed tar is unpacked once for reading (a temporary file,
    deleted on close); the system's temporary folder when not given."""
    path = Path(path).expanduser()
    limits = limits or ExportLimits()
    if not path.exists():
        raise _export_error(
            path,
            "no such file or folder",
            "check the path; give the file you downloaded (e.g. a .zip) or the folder you extracted it to",
        )
    if path.is_dir():
        parts = _archive_parts(path)
        if parts:   # the parts of one download, kept together in a folder
            return _PartsSource(path, parts, limits, Path(spill_dir) if spill_dir is not None else None)
        return _FolderSource(path, limits)
    if not path.is_file():
        raise _export_error(path, "it is not a regular file or folder", "give the downloaded export file")
    if path.stat().st_size == 0:
        raise _export_error(path, "the file is empty (0 bytes)", f"the download probably failed; {_FIX_DOWNLOAD_AGAIN}")
    reader = _sniff(path)
    if reader is _TarSource:
        return _TarSource(path, limits, Path(spill_dir) if spill_dir is not None else None)
    return reader(path, limits)


def extract_member(source: ExportSource, name: str, dest_dir: Path) -> Path:
    """Copy one entry to ``dest_dir/name``, never outside ``dest_dir``; return its path.

    The copy is written to a temporary file beside the target and renamed onto it, so a
    link planted at the target is replaced, never written through.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    root = dest_dir.resolve()
    safe, why = _safe_name(name)
    if safe is None or safe != name:
        raise _export_error(source.path, f"this entry name is refused: {why or 'not normalized'}", _FIX_REFUSED_ENTRY, name)
    target = root.joinpath(*safe.split("/"))
    # Resolve the parent folder: a link already inside dest_dir must not lead us out.
    parent = target.parent
    if not parent.resolve().is_relative_to(root):
        raise _export_error(
            source.path,
            f"it would be written outside {root} (a link inside the destination leads out)",
            "remove the link from the destination folder",
            name,
        )
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if not parent.resolve().is_relative_to(root):  # re-check: the folder changed meanwhile
            raise _export_error(source.path, f"it would be written outside {root}", "remove links from the destination folder",
                                name)
        _copy_through_temp_file(source, name, target)
    except OSError as exc:  # e.g. "a" is a file here and another entry wants "a/b"
        raise _export_error(
            source.path, f"it cannot be written to {target} ({exc})", "extract into an empty folder", name
        ) from exc
    return target


def _copy_through_temp_file(source: ExportSource, name: str, target: Path) -> None:
    with source.open(name) as stream:
        handle, temp_name = tempfile.mkstemp(prefix=".extract-", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                while chunk := stream.read(_HASH_CHUNK):
                    out.write(chunk)
            # No fsync: this is a staging copy; media.py stores the durable, hashed file.
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

__all__ = ["ExportFileError", "ExportLimits", "ExportSource", "JsonReader", "NotInExport", "TextReader",
           "extract_member", "json_nesting_problem", "not_read_note", "open_export"]
