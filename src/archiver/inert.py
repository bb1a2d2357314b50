"""Values made inert for the programs that read archiver's exports (issue 11.7).

The archive holds text that strangers wrote (names, handles, bios, links). Written into a
file for another program, such text must stay text:

- **CSV** (``csv_cell``): a spreadsheet runs a cell as a formula when it starts with
  ``=``, ``+``, ``-`` or ``@`` — also after leading spaces, tabs, no-break or other
  Unicode spaces, invisible format characters, control characters, quotes or separators
  (``" =1+1"``, ``";=cmd|…"``, ``"\t+1"``, ``",@SUM(…)"``), and some normalise the
  full-width and small forms (``＝＋－＠``, ``﹦﹢﹣﹫``) or the minus sign ``−`` first.
  A cell is also not always read as one: a program that splits lines on ``;``, ``|`` or
  a tab (a locale's list separator), or loses track of the quoting, starts a new cell
  after any separator or line break *inside* the value (``"Bob;=cmd()"``). So in a text
  value, wherever a formula character follows the start or a separator / line break
  (with only skippable characters between), an apostrophe goes in front — at the start,
  or right after that last separator — as OWASP advises: it is shown as text, never
  evaluated. Ordinary text (no formula character in such a place) is written unchanged.
  Numbers (the export's numeric columns hold ``int`` / ``float``) are written as they
  are: ``-3`` in a count column stays the number -3. A *text* value that looks like a
  number ("-5" as a display name) is text and is neutralised like any other. Text cells
  are also always quoted (``csv.QUOTE_NONNUMERIC``).
- **vCard** (``vcard_text``): a value is one line. Every line or paragraph separator
  (CR, LF, CRLF, vertical tab, form feed, the file/group/record separators, U+0085 NEL,
  U+2028, U+2029) becomes the escaped ``\\n``; ``\\``, ``,`` and ``;`` are escaped; a tab
  becomes a space; every other control character (NUL included) is dropped. So no value
  can start a new property, even for a reader that splits lines as liberally as
  Python's ``str.splitlines``.
- **the terminal** (``terminal_text``, ``echo``): a terminal obeys escape sequences in
  the text it shows — ``ESC]8;;http://evil BEL`` makes a hidden link, ``ESC[2J`` clears
  the screen, ``ESC]52;c;…`` writes the clipboard, a lone ``CR`` overwrites what came
  before, U+202E shows the rest of the line backwards. Archived text reaches the terminal
  in command output (names in ``audience top``, items in ``status --errors``, import
  summaries) and in log lines, so every control character (C0 but newline and tab, DEL,
  C1) and every bidi control becomes visible as its escape, ``\u001b`` — valid in a JSON
  string too, where it stands for the same character, so ``--json`` output keeps its data.
  Ordinary Unicode (accents, emoji, right-to-left letters) is shown as it is.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# What a spreadsheet reads as the start of a formula (after NFKC, which maps the
# full-width and small forms onto these), plus the minus sign some normalise to "-".
FORMULA_STARTS = frozenset("=+-@\u2212")
# Where a reader may start a new cell: the separators a spreadsheet offers, and line breaks.
CELL_BREAKS = frozenset(",;|\t\r\n")
# Skipped before a cell's content besides white space, controls and invisible characters:
# separators (a run of them is empty cells) and quotes (a reader may take them as quoting).
_ALSO_SKIPPED = frozenset(",;|\"")


def _normal(char: str) -> str:
    """The character as a spreadsheet that normalises Unicode may see it (NFKC: "＝" is
    "=", a no-break space a space); possibly several characters ("⩵" is "==")."""
    return unicodedata.normalize("NFKC", char) if ord(char) > 0x7F else char


def _skipped(char: str) -> bool:
    """A character a spreadsheet may skip before a cell's content."""
    return (char.isspace() or char in _ALSO_SKIPPED
            or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp"))


def _exposed_formulas(text: str) -> list[int]:
    """Where an apostrophe must go in ``text``: before each run of skippable characters that
    leads to a formula character from the start or from a cell break (after the last
    break of the run)."""
    places: list[int] = []
    exposed_at: int | None = 0          # where the current run began, if it is exposed
    for index, char in enumerate(text):
        if char in CELL_BREAKS:
            exposed_at = index + 1
            continue
        normal = _normal(char)
        if all(_skipped(c) for c in normal):
            continue
        if exposed_at is not None and normal[0] in FORMULA_STARTS:
            places.append(exposed_at)
        exposed_at = None
    return places


def starts_formula(text: str) -> bool:
    """Would a spreadsheet read ``text`` (one whole cell) as a formula?"""
    return 0 in _exposed_formulas(text)


def csv_cell(value: Any) -> Any:
    """A value for a CSV writer: text with an apostrophe before every formula a
    spreadsheet could find in it (see the module's notes); numbers, None and ordinary
    text are returned as they are."""
    if not isinstance(value, str):
        return value
    places = _exposed_formulas(value)
    for place in reversed(places):
        value = value[:place] + "'" + value[place:]
    return value


# CRLF first so it becomes one escaped newline, not two.
_VCARD_BREAKS = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_VCARD_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")


def vcard_text(value: str) -> str:
    """A vCard (3.0 / 4.0) text value on one line (see the module's notes)."""
    value = value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\t", " ")
    value = _VCARD_BREAKS.sub("\\\\n", value)
    return _VCARD_CONTROLS.sub("", value)


# What a terminal would act on rather than show: C0 controls, DEL, C1 controls (U+009B is
# a one-character CSI), and the bidi controls that reorder what follows them.
_TERMINAL_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_TERMINAL_UNSAFE = re.compile(f"[{_TERMINAL_CONTROLS}]")
# On one line (a table cell): newline, tab and the Unicode line and paragraph separators too.
_TERMINAL_UNSAFE_IN_LINE = re.compile(f"[{_TERMINAL_CONTROLS}\t\n\u2028\u2029]")


def terminal_text(value: object, *, one_line: bool = False) -> str:
    """``value`` as text fit for a terminal or a log: each control character above
    becomes ``\\uXXXX``; newlines and tabs stay unless ``one_line``."""
    text = value if isinstance(value, str) else str(value)
    unsafe = _TERMINAL_UNSAFE_IN_LINE if one_line else _TERMINAL_UNSAFE
    if unsafe.search(text) is None:   # the usual case: no copy
        return text
    return unsafe.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def echo(message: object = None, **kwargs) -> None:
    """``click.echo`` for every line the command line prints: archived text in it is
    made inert (``terminal_text``)."""
    import click

    click.echo(None if message is None else terminal_text(message), **kwargs)
