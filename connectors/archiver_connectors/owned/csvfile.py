"""Reading the providers' CSV files: headers compared loosely, values parsed strictly.

Headers are compared by ``header_key``: case, spacing, "_" and "-" aside, so "Email Address",
"email_address" and "EMAIL ADDRESS" are one column (providers rename them between versions).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

from archiver.records import iso_utc
from archiver.sync.imports import csv_text_problem, open_csv

# A field longer than this is no subscriber's (a notes column of a hostile file): the row is refused.
MAX_FIELD_CHARS = 64 * 1024
# Columns of personal data archiver never copies into a contact's raw payload.
_PERSONAL = re.compile(r"email|address|phone|zip|postal|postcode|\bip\b|latitude|longitude|gmtoff|dstoff|"
                       r"timezone|birthday|city|province|region|street|company|note")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def header_key(name: str) -> str:
    """"Email Address" -> "email address": case folded, "_" / "-" as spaces, spacing collapsed."""
    return " ".join(name.replace("\ufeff", "").replace("_", " ").replace("-", " ").split()).casefold()


@dataclass
class CsvTable:
    """One CSV entry of an export: its name and its header's keys, in order."""

    name: str
    keys: list[str]
    # "," as the providers write it; ";" or a tab in a file a spreadsheet saved again in a
    # locale whose decimal mark is the comma (told by the header line).
    delimiter: str = ","

    def has(self, *keys: str) -> bool:
        return all(k in self.keys for k in keys)

    def has_any(self, *keys: str) -> bool:
        return any(k in self.keys for k in keys)


def read_header(source, name: str) -> CsvTable | None:
    """The header of one CSV entry, or None when it has none (empty, unreadable). A look
    (``peek``), not a read: every installed connector's detection looks at every CSV of an
    export (LinkedIn's are CSVs), and the one whose export it is must still name the files
    it does not read."""
    try:
        head = source.peek(name, 4 * MAX_FIELD_CHARS)
    except (OSError, ValueError):
        return None
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    line = head.decode("utf-16" if utf16 else "utf-8-sig", errors="replace").split("\n", 1)[0]
    line = line.rstrip("\r")[:MAX_FIELD_CHARS]
    delimiter = next((d for d in (",", ";", "\t") if d in line), ",")
    try:
        first = next(csv.reader([line], delimiter=delimiter), None)
    except csv.Error:
        return None
    if not first:
        return None
    return CsvTable(name, [header_key(h) for h in first], delimiter)


def csv_tables(source) -> Iterator[CsvTable]:
    """Every CSV entry of ``source`` (a bare CSV file, or the CSV files of a zip or folder)."""
    for name in source.find("*.csv"):
        table = read_header(source, name)
        if table is not None:
            yield table


def iter_rows(source, table: CsvTable, report) -> Iterator[tuple[str, dict[str, str]]]:
    """(where, header key -> value) for each data row; ``where`` is "<file>, line <n>". A row
    of the wrong width or with a field too long is reported (by its file and line, never its
    content) and skipped; blank lines are skipped silently."""
    short = table.name.rsplit("/", 1)[-1]
    with open_csv(source, table.name) as text:
        reader = csv.reader(text, delimiter=table.delimiter)
        next(reader, None)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                report(f"{short}, line {reader.line_num}", f"unreadable CSV ({error}); row skipped")
                continue
            where = f"{short}, line {reader.line_num}"
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(table.keys):
                report(where, f"{len(row)} fields where the header has {len(table.keys)}; row skipped")
                continue
            if any(len(cell) > MAX_FIELD_CHARS for cell in row):
                report(where, f"a field longer than {MAX_FIELD_CHARS} characters; row skipped")
                continue
            yield where, dict(zip(table.keys, (cell.strip() for cell in row), strict=True))
        if problem := csv_text_problem(text):
            report(short, f"{problem}; the rest was read, those bytes shown as \ufffd")


def first(row: dict[str, str], *keys: str) -> str | None:
    """The first non-empty value of ``keys`` in ``row`` (a provider's spellings of one column)."""
    for key in keys:
        value = row.get(key)
        if value and value not in ("-", "—", "–"):
            return value
    return None


def email_of(value: str | None) -> tuple[str, str]:
    """(the address as written, its key: trimmed and case folded), or ValueError saying what
    is wrong without repeating it (it is personal data)."""
    written = (value or "").strip().strip("'")
    if not written:
        raise ValueError("no email address")
    if "\ufffd" in written:
        raise ValueError("the email address is not valid UTF-8: export the list again, or save the file as "
                         "UTF-8, and import it again")
    if not _EMAIL.fullmatch(written):
        raise ValueError("the email address is not one (no name@domain)")
    return written, written.casefold()


_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
            "%m/%d/%Y", "%d.%m.%Y", "%B %d, %Y", "%b %d, %Y", "%B %d, %Y %I:%M %p", "%b %d, %Y %I:%M %p")


def time_of(value: str | None, column: str) -> str | None:
    """A provider's date -> UTC ISO-8601, or ValueError naming the column. ISO-8601 with or
    without zone (none: UTC), "YYYY-MM-DD HH:MM:SS", US "MM/DD/YYYY", "Jan 5, 2024". A value
    of "-" or "—" (no date) is None."""
    if value is None or value.strip() in ("", "-", "—", "–"):
        return None
    text = value.strip()
    try:
        return iso_utc(text)
    except (ValueError, TypeError):
        pass
    for pattern in _FORMATS:
        try:
            return iso_utc(dt.datetime.strptime(text, pattern))
        except ValueError:
            continue
    # The value is not repeated: in a row whose columns slipped it may be an address.
    raise ValueError(f"{column} is not a date (e.g. 2024-01-31 or 2024-01-31 12:00:00)")


def yes_no(value: str | None, column: str) -> bool | None:
    """"yes" / "true" / "1" -> True, "no" / "false" / "0" -> False, empty -> None."""
    if value is None or not value.strip():
        return None
    word = value.strip().casefold()
    if word in ("yes", "true", "1", "y", "subscribed", "opted in"):
        return True
    if word in ("no", "false", "0", "n", "unsubscribed", "not subscribed"):
        return False
    raise ValueError(f"{column} is neither yes nor no")


def count_of(value: str | None, column: str) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        number = int(float(value.strip().replace(",", "")))
    except (ValueError, OverflowError):
        raise ValueError(f"{column} is not a number") from None
    if not 0 <= number < 2**63:
        raise ValueError(f"{column} is not a count (0 or more)")
    return number


def joined_name(*parts: str | None) -> str | None:
    name = " ".join(p.strip() for p in parts if p and p.strip())
    return name or None


def kept_columns(row: dict[str, str], also_drop: Iterable[str] = ()) -> dict[str, str]:
    """The row for the contact's raw payload: every non-empty column but addresses, phone
    numbers, IP addresses, locations and notes (``_PERSONAL``), the address itself (it has its own
    column) and ``also_drop``."""
    dropped = set(also_drop)
    return {k: v for k, v in row.items() if v and k not in dropped and not _PERSONAL.search(k)}
