"""The "Get a copy of your data" export (../shared/platforms/linkedin.md §2): a zip or
folder of CSV files (Basic and Complete archives, 2018 to now), read with every quirk of
its dialects; rows become records through rows.py, as the API's snapshot rows do.

Files are found by name anywhere in the tree (a top folder such as ``Export/`` or the
zip's own name is common), compared by ``rows.file_key``: case, spaces, underscores and a
member-id suffix ignored (``Rich Media.csv`` = ``Rich_Media.csv``, ``Shares_7789716.csv`` =
``Shares.csv``). Each file is decoded on its own: UTF-8 with or without a byte-order
mark, UTF-16 with one (2018's Shares.csv); its delimiter (comma, or tab in 2018's
Shares.csv) and its header row are found by the header's column names, which skips the
``Notes:`` preamble before Connections.csv's header. CRLF and LF line ends both read.

Comments.csv is not valid CSV: a message without a comma is written bare even across
lines, and quotes inside a quoted message are backslash-escaped in newer exports. Its
records are therefore split at the lines that begin with a date (``2024-03-17 18:03:34,``),
and each record's message is unquoted by hand (``\\"`` and ``""`` both a quote).

What lands: the profile (Profile.csv, its sections in raw), posts (Shares.csv), comments
and reactions the owner wrote, connections (a ``friends`` snapshot), open invitations
(``invitations_received`` / ``invitations_sent`` snapshots), members and companies followed
(one ``following`` snapshot), and the lines of Rich Media.csv as notes of the run: the
export holds no media files, only where to download them. A malformed row is reported
with its file and line and skipped; the rest imports. Rows stream: a file far bigger than
memory goes through in pages.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import io
import os
import re
from typing import Any, Callable, Iterator

import archiver_connectors.linkedin.rows as mapping
from archiver.records import ListKind, Membership, Page, PageBuffer, Snapshot, iso_utc
from archiver.sync.runner import RunFailed
from archiver_connectors.linkedin.rows import column_key, file_key

PAGE_SIZE = 50
COMMENT_PAGE_SIZE = 500
HEADER_SEARCH_LINES = 20          # the preamble is 3 lines; a header further down is no header
MAX_RECORD_CHARS = 1_000_000      # one Comments.csv record (a message): far more than LinkedIn allows
MAX_LINE_CHARS = 1_000_000        # a longer line is read in pieces (memory stays bounded; its row is refused)
NOTES_KEPT = 10                   # Rich Media.csv lines turned into notes of the run

# Files whose presence marks an export as LinkedIn's (names only; Comments.csv or
# Profile.csv alone could be anyone's).
IDENTIFYING = ("connections", "shares", "invitations", "memberfollows", "companyfollows", "richmedia",
               "positions", "profilesummary")
# The columns that find each file's header row (as ``column_key`` spells them).
HEADERS: dict[str, tuple[str, ...]] = {
    "connections": ("firstname", "lastname"),
    "shares": ("date", "sharelink"),
    "comments": ("date", "link", "message"),
    "reactions": ("date", "type", "link"),
    "invitations": ("from", "to", "direction"),
    "memberfollows": ("fullname",),
    "companyfollows": ("organization",),
    "richmedia": ("type", "link"),
    "profile": ("firstname", "lastname"),
}
_RECORD_START = re.compile(r"^(?:\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?(?: UTC)?)?,\s*https?://")


class UnknownLayout(RunFailed):
    """Not (or no longer) an export this module can read. A RunFailed: the run ends with
    this message, recorded and shown without a traceback."""


# --------------------------------------------------------------------------- finding files


def _is_system_file(name: str) -> bool:
    return name.startswith("__MACOSX/") or "/__MACOSX/" in name or name.rsplit("/", 1)[-1].startswith("._")


def export_files(source) -> dict[str, list[str]]:
    """The export's CSV entries by ``file_key`` (shallowest first). Names only."""
    found: dict[str, list[str]] = {}
    for name in source.names():
        if name.lower().endswith(".csv") and not _is_system_file(name):
            found.setdefault(file_key(name), []).append(name)
    for names in found.values():
        names.sort(key=lambda n: (n.count("/"), n))
    return found


def find_export(source) -> list[str]:
    """The export's CSV files LinkedIn's importer reads (empty: not a LinkedIn export)."""
    files = export_files(source)
    if not any(key in files for key in IDENTIFYING):
        return []
    readable = set(HEADERS) | set(mapping.PROFILE_SECTIONS)
    return [name for key, names in files.items() if key in readable for name in names]


# --------------------------------------------------------------------------- decoding


def _text_stream(source, name: str) -> io.TextIOWrapper:
    """One entry as text: UTF-16 (a BOM, or NULs in its first bytes), UTF-8 with or
    without BOM. Undecodable bytes become U+FFFD rather than end the file; a UTF-8 entry is
    read through the core's TextReader, which names its first bad byte (``_text_problem``)."""
    raw = source.open(name)
    head = raw.peek(4)[:4]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif len(head) >= 2 and head[1:2] == b"\x00":
        encoding = "utf-16-le"
    elif len(head) >= 2 and head[0:1] == b"\x00":
        encoding = "utf-16-be"
    else:
        encoding = "utf-8-sig"
        raw.close()
        raw = source.open_text(name)
    return io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")


def _text_problem(text: io.TextIOWrapper) -> str | None:
    buffer: Any = text.buffer
    return getattr(getattr(buffer, "raw", None), "problem", None)


# --------------------------------------------------------------------------- CSV reading


class CsvReading:
    """One import's reading of the export's CSV files: rows keyed by their header, each
    with the line it starts on; what is wrong is reported (file and line) and skipped.
    ``quiet=True`` reads a file a second time without reporting its problems again
    (``problems`` still counts them)."""

    def __init__(self, source, ctx):
        self.source, self.ctx = source, ctx
        self.readable = 0      # files whose header was found: none means a layout unknown here
        self.problems = 0      # rows and files skipped, reported or not

    def report(self, item: str, error: str, *, quiet: bool = False) -> None:
        self.problems += 1
        if not quiet:
            self.ctx.report(item, error)

    def _header(self, text: io.TextIOWrapper, name: str, wanted: tuple[str, ...],
                quiet: bool) -> tuple[list[str], str, int] | None:
        """The header row (its cells, the delimiter, its line number), found among the
        first lines by ``wanted`` columns (none wanted: the first non-blank line); the
        lines before it (Connections.csv's ``Notes:``) are skipped."""
        for number in range(1, HEADER_SEARCH_LINES + 1):
            line = text.readline(MAX_LINE_CHARS)
            if not line:
                break
            if not line.strip():
                continue
            delimiters = (",", "\t") if wanted else ("\t" if line.count("\t") > line.count(",") else ",",)
            for delimiter in delimiters:
                try:
                    cells = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), [])
                except csv.Error:
                    continue
                if not wanted or set(wanted) <= {column_key(c) for c in cells}:
                    return [c.replace("\ufeff", "").strip() for c in cells], delimiter, number
        self.report(name, f"{self.source.path}: no header row with the columns "
                    f"{', '.join(wanted) or 'of a table'} in its first {HEADER_SEARCH_LINES} lines; the file was "
                    "skipped (the export layout may have changed: please report it)", quiet=quiet)
        return None

    def rows(self, name: str, wanted: tuple[str, ...] = (), *,
             quiet: bool = False) -> Iterator[tuple[int, dict[str, str]]]:
        """(line, row by header) for each data row of one CSV entry. A row of another width
        than the header (but empty cells at its end) is reported and skipped."""
        from archiver.sync.imports import ExportFileError

        try:
            text = _text_stream(self.source, name)
        except ExportFileError as error:
            self.report(name, str(error), quiet=quiet)
            return
        with text:
            try:
                found = self._header(text, name, wanted, quiet)
                if found is None:
                    return
                header, delimiter, line = found
                self.readable += 1
                reader = csv.reader(_lines(text), delimiter=delimiter)
                width = len(header)
                while True:
                    start = line + reader.line_num + 1
                    try:
                        cells = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as error:
                        self.report(f"line {start} of {name}", f"unreadable CSV ({error}); the row was skipped",
                                    quiet=quiet)
                        continue
                    if not cells or all(not c.strip() for c in cells):
                        continue
                    if len(cells) > width and not any(c.strip() for c in cells[width:]):
                        cells = cells[:width]
                    if len(cells) != width:
                        self.report(f"line {start} of {name}",
                                    f"{len(cells)} fields where the header has {width} "
                                    f"({','.join(cells)[:80]!r}); the row was skipped", quiet=quiet)
                        continue
                    yield start, dict(zip(header, cells, strict=True))
            except ExportFileError as error:   # a zip bomb, a damaged entry: the rest of the export goes on
                self.report(name, str(error), quiet=quiet)
                return
            self._bad_bytes(text, name, quiet)

    def _bad_bytes(self, text: io.TextIOWrapper, name: str, quiet: bool = False) -> None:
        if problem := _text_problem(text):
            self.report(f"the bad bytes of {name}", f"{problem}; the rest of it was read, with those bytes "
                        "shown as \ufffd", quiet=quiet)

    def comment_rows(self, name: str) -> Iterator[tuple[int, dict[str, str]]]:
        """(line, {"Date", "Link", "Message"}) for each record of Comments.csv, read as the
        module's text says: records split at lines beginning with a date, messages
        unquoted by hand."""
        from archiver.sync.imports import ExportFileError

        try:
            text = _text_stream(self.source, name)
        except ExportFileError as error:
            self.report(name, str(error))
            return
        with text:
            try:
                found = self._header(text, name, HEADERS["comments"], False)
                if found is None:
                    return
                header, delimiter, line = found
                self.readable += 1
                if delimiter != "," or [column_key(c) for c in header] != ["date", "link", "message"]:
                    self.report(name, f"{self.source.path}: its columns are {', '.join(header)[:120]}, not Date, "
                                "Link, Message: the file was skipped (the export layout may have changed: please "
                                "report it)")
                    return
                for start, record, size in _records(text, line):
                    if size > MAX_RECORD_CHARS:
                        self.report(f"line {start} of {name}", f"a record of {size:,} characters; skipped")
                        continue
                    try:
                        yield start, _comment_record(record, header)
                    except ValueError as error:
                        self.report(f"line {start} of {name}", f"{error}; the row was skipped")
            except ExportFileError as error:
                self.report(name, str(error))
                return
            self._bad_bytes(text, name)

    def cells(self, name: str) -> Iterator[list[str]]:
        """Every row of one small entry as cells, header or not (Rich Media.csv)."""
        from archiver.sync.imports import ExportFileError

        try:
            with _text_stream(self.source, name) as text:
                for number, cells in enumerate(csv.reader(text)):
                    if number >= HEADER_SEARCH_LINES * 10:
                        break
                    yield cells
        except (ExportFileError, csv.Error) as error:
            self.report(name, str(error))


def _lines(text: io.TextIOWrapper) -> Iterator[str]:
    """The entry's lines, a line longer than MAX_LINE_CHARS in pieces of that size."""
    return iter(lambda: text.readline(MAX_LINE_CHARS), "")


def _records(text: io.TextIOWrapper, header_line: int) -> Iterator[tuple[int, str, int]]:
    """The records of Comments.csv after its header: (first line, text, its size) — a
    record begins at a line with a date then a link; other lines continue the one before
    (a message's raw newlines), and lines before the first such line are one record (not
    a comment: reported once). Blank lines at a record's end separate records. Memory is
    bounded: a record past MAX_RECORD_CHARS stops growing (the caller skips it by size)."""
    number = header_line
    start, size = 0, 0
    lines: list[str] = []
    for line in _lines(text):
        number += 1
        if _RECORD_START.match(line) or (not lines and line.strip()):
            if lines:
                yield start, "".join(lines).rstrip("\r\n"), size
            start, lines, size = number, [line], len(line)
        elif lines:
            if size <= MAX_RECORD_CHARS:
                lines.append(line)
            size += len(line)
    if lines:
        yield start, "".join(lines).rstrip("\r\n"), size


def _comment_record(record: str, header: list[str]) -> dict[str, str]:
    """One record ``date,link,message``: the message bare (taken as written, raw newlines
    and all) or quoted (``\\"`` and ``""`` are quotes; nothing may follow the closing one)."""
    parts = record.split(",", 2)
    if len(parts) < 3 or not _RECORD_START.match(f"{parts[0]},{parts[1]}"):
        raise ValueError(f"no date and link at its start: {record[:80]!r}")
    date, link, message = parts
    message = message.rstrip("\r\n")
    if message.startswith('"'):
        message = _unquote(message)
    return {header[0]: date.strip(), header[1]: link.strip(), header[2]: message}


def _unquote(field: str) -> str:
    """A quoted field whose quotes inside are ``\\"`` (2025) or ``""`` (2024)."""
    out, i, end = [], 1, len(field)
    while i < end:
        char = field[i]
        if char in '\\"' and i + 1 < end and field[i + 1] == '"':
            out.append('"')
            i += 2
        elif char == '"':
            rest = field[i + 1:].strip()
            if rest:
                raise ValueError(f"text after the message's closing quote: {rest[:40]!r}")
            return "".join(out)
        else:
            out.append(char)
            i += 1
    raise ValueError("the message's quote is never closed")


# --------------------------------------------------------------------------- the import


def _taken_at(source, names: list[str]) -> str:
    """When the export was made: the newest time of the list files inside (LinkedIn
    stamps the zip's entries; an unzipped folder keeps them), else the file's own time."""
    times = [t for t in (source.modified_at(n) for n in names) if t is not None]
    newest = max(times) if times else dt.datetime.fromtimestamp(os.stat(source.path).st_mtime, dt.timezone.utc)
    return iso_utc(newest)


def _first_row(rows: Iterator[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """The first of ``rows``, the file closed after it."""
    with contextlib.closing(rows):   # type: ignore[type-var]
        return next(rows, None)


def export_pages(source, ctx) -> Iterator[Page]:
    """Pages of records from one export. No stream state: a re-import merges into the
    same rows, and a finished import is recorded by its sha256 so it is skipped later."""
    files = export_files(source)
    if not find_export(source):
        raise UnknownLayout(
            f"{source.path}: no LinkedIn export files found (looked for Connections.csv, Shares.csv, "
            "Invitations.csv, Profile.csv … anywhere inside). Is this LinkedIn's \"Get a copy of your data\" "
            "archive (Basic_ or Complete_LinkedInDataExport_….zip)?")
    reading = CsvReading(source, ctx)

    def rows_of(key: str, *, quiet: bool = False) -> Iterator[tuple[str, int, dict[str, str]]]:
        for name in files.get(key, []):
            reader = reading.comment_rows(name) if key == "comments" else \
                reading.rows(name, HEADERS.get(key, ()), quiet=quiet)
            for line, row in reader:
                yield name, line, row

    # -- the profile: Profile.csv, its sections, the owner's link from an invitation
    #    (its bad rows are reported when the invitations are read, below)
    owner_url = _first_row(
        (url,) for _, _, row in rows_of("invitations", quiet=True) if (url := mapping.owner_url_of_invitation(row)))
    if files.get("profile"):
        profile_name = files["profile"][0]
        first = _first_row(reading.rows(profile_name, HEADERS["profile"]))
        sections = {key: (row for _, _, row in rows_of(key)) for key in mapping.PROFILE_SECTIONS if key in files}
        profile = mapping.profile_from_rows(first[1] if first else None, sections,
                                            owner_url=owner_url[0] if owner_url else None)
        if profile is None:
            ctx.report(f"the profile in {profile_name}", "no name in it; the profile was not updated")
        else:
            profile.as_of = _taken_at(source, [profile_name])   # a newer export's profile is the current one
            yield Page("export:profile", [profile])

    # -- posts, comments, reactions: streamed a page at a time
    for key, stream, size, what, mapper in (
            ("shares", "export:posts", PAGE_SIZE, "post", mapping.post_from_row),
            ("comments", "export:comments", COMMENT_PAGE_SIZE, "comment", mapping.comment_from_row),
            ("reactions", "export:reactions", COMMENT_PAGE_SIZE, "reaction", mapping.reaction_from_row)):
        buffer = PageBuffer(stream, size)
        for name, line, row in rows_of(key):
            try:
                record = mapper(row)
            except ValueError as error:   # one bad row is reported and skipped
                reading.report(f"{what} on line {line} of {name}", f"{error}; the row was skipped")
                continue
            if record is not None and (page := buffer.add(record)):
                yield page
        yield from buffer.rest()

    # -- the lists: one dated snapshot each, members streamed to the writer's staging
    yield from _list_pages(source, reading, files)

    # -- what the export does not hold: the media, to be fetched by hand
    notes: list[str] = []
    for name in files.get("richmedia", []):
        reading.readable += 1
        for cells in reading.cells(name):
            links = [c.strip() for c in cells if c.strip().startswith("https://")]
            note = mapping.rich_media_note({"Type": cells[0], "Link": links[0]}) if links and cells else None
            if note and note not in notes and len(notes) < NOTES_KEPT:
                notes.append(note)
    for note in notes:
        ctx.note(note)

    if reading.readable == 0:
        raise UnknownLayout(
            f"{source.path}: its file names mark it as a LinkedIn export, but none of its files could be read "
            "as a layout this importer knows. The export layout may have changed: please report it.")


def _list_pages(source, reading: CsvReading, files: dict[str, list[str]]) -> Iterator[Page]:
    """The friends (connections), invitations each way and following (members and
    companies together) snapshots. A file missing says nothing about who left: no
    snapshot without its file, and a following list with one of its two files missing is
    partial (it ends nobody's interval). A skipped row makes a snapshot partial too."""

    def snapshot(kind: ListKind, keys: tuple[str, ...], member_of: Callable[[dict[str, str]], Membership | None],
                 what: str, *, quiet: bool = False) -> Page | None:
        names = [n for key in keys for n in files.get(key, [])]
        if not names:
            return None
        shot = Snapshot(kind, _taken_at(source, names), [], complete=all(key in files for key in keys))

        def members() -> Iterator[Membership]:
            """Streams the members; a skipped row or file marks the snapshot partial
            before the writer diffs it (it stages every member first)."""
            problems_before = reading.problems
            for key in keys:
                for name in files.get(key, []):
                    for line, row in reading.rows(name, HEADERS[key], quiet=quiet):
                        try:
                            membership = member_of(row)
                        except ValueError as error:
                            reading.report(f"{what} on line {line} of {name}", f"{error}; the row was skipped",
                                           quiet=quiet)
                            continue
                        if membership is not None:
                            yield membership
            if reading.problems > problems_before:
                shot.complete = False

        shot.members = members()
        return Page(f"export:{kind}", [shot])

    def invitations_of(kind: ListKind) -> Callable[[dict[str, str]], Membership | None]:
        def member_of(row: dict[str, str]) -> Membership | None:
            found = mapping.invitation_from_row(row)
            return found[1] if found and found[0] == kind else None
        return member_of

    yield from filter(None, (
        snapshot("friends", ("connections",), mapping.connection_from_row, "connection"),
        snapshot("invitations_received", ("invitations",), invitations_of("invitations_received"), "invitation"),
        # The same file again: its bad rows were reported once, above.
        snapshot("invitations_sent", ("invitations",), invitations_of("invitations_sent"), "invitation", quiet=True),
        snapshot("following", ("memberfollows", "companyfollows"), _followed, "follow"),
    ))


def _followed(row: dict[str, str]) -> Membership | None:
    """A row of Member_Follows.csv or Company Follows.csv (told apart by their columns)."""
    if mapping.cell(row, "Organization"):
        return mapping.company_follow_from_row(row)
    return mapping.member_follow_from_row(row)
