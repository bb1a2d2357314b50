"""A builder of Pinterest's "Request your data" export, for tests and for
`archiver simulate pinterest --write-export`, faithful to shared/platforms/pinterest.md §6.

    pins = [ExportPin("813744226420795884", title="Lemon tart", details="Weekend bake",
                      image_signature="0df6f1f0bfe7aaca849c1bbc3607a34b", board_id="549755885175",
                      board_name="Baking", username="roofcam", link="https://example.org/recipe",
                      created_at="2024-05-01T18:22:31Z")]
    write_export(tmp / "pinterest.html", pins, extra_sections=[boards_section(pins)])
    write_export(tmp / "pinterest.zip", pins, zipped=True)   # the same document in a zip

What it writes: one HTML document, ``<div id="contents">`` holding ``<h1 id=RANDOM>Pins</h1>``
and then each Pin as an ``<a href="https://www.pinterest.com/pin/<id>/">`` (its text the same
address) followed by ``<br>Key: value`` lines, in the notes' order (Title, Details, Image,
Is Native, Board Id, Board Name, Is Video, Ip Address, Username, Alt Text, Canonical Link (an
``<a>``), Story Pin Media, Video, Created at, Alive, Is a repin, Private); every line but the
last four ends with ``,`` (as the notes' example has it; their text says "the last three");
a value the Pin lacks is ``No data``; a Pin ends with ``<br><br>``. ``extra_sections``
follow as more ``<h1>`` sections of the same ``Key: value`` blocks (the notes have no sample
of them [U]: ``boards_section`` and ``people_section`` write the shape this project assumes).
The h1 ids are random letters and digits (seeded).

Knobs for what the notes leave open [U]: ``zipped`` (the document alone, or in a zip, at
``html_name`` inside it), ``newlines`` (a value's line breaks as raw newlines, or as
``<br>``). A ``path`` that is a folder gets the document inside it, named ``html_name``.
"""

from __future__ import annotations

import datetime as dt
import html
import random
import string
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

NO_DATA = "No data"
PIN_URL = "https://www.pinterest.com/pin/{}/"
PROFILE_URL = "https://www.pinterest.com/{}/"
HTML_NAME = "pinterest.html"
# When the default world's export was made (its zip entry's time): 2024-06-01T00:00:00Z.
BASE_TIME = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)


@dataclass
class ExportPin:
    """One Pin as the export writes it. ``created_at``: ISO-8601 UTC ("2024-05-01T18:22:31Z",
    the API's moment of the same Pin) or a datetime, written as ``2024/05/01 18:22:31``.
    Booleans left None are written ``No data`` (the notes' sample does so for Is Video and
    Is Native). ``ip_address`` is what the export holds and the archive must not."""

    pin_id: str
    title: str | None = None
    details: str | None = None
    image_signature: str | None = None    # 32 hex digits; None: "No data"
    board_id: str | None = None
    board_name: str | None = None
    username: str | None = None
    alt_text: str | None = None
    link: str | None = None               # Canonical Link (written as an <a>)
    created_at: str | dt.datetime | None = None
    is_video: bool | None = None
    private: bool | None = False
    is_repin: bool | None = False
    is_native: bool | None = None
    alive: bool | None = True
    ip_address: str | None = "203.0.113.7"
    video: str | None = None              # [U] what it holds for a video Pin: a link, here
    story_pin_media: str | None = None


@dataclass
class ExportBlock:
    """One block of another section: an optional leading ``<a href>`` and ``Key: value``
    lines (a value None is written ``No data``)."""

    values: dict[str, str | None]
    href: str | None = None


@dataclass
class ExportSection:
    """An ``<h1>`` section after Pins. ``blocks``: ExportBlock, or a plain dict of values."""

    heading: str
    blocks: Sequence[ExportBlock | dict[str, str | None]] = field(default_factory=list)
    h1_id: str | None = None


def created_text(value: str | dt.datetime | None) -> str | None:
    """A moment as the export writes it: ``2017/02/13 15:35:01`` (UTC; no zone written)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y/%m/%d %H:%M:%S")


def _word(value: bool | None) -> str | None:
    return None if value is None else ("True" if value else "False")


def _text(value: str | None, newlines: str) -> str:
    if value is None or value == "":
        return NO_DATA
    escaped = html.escape(value, quote=False)
    return escaped.replace("\n", "\n<br>") if newlines == "br" else escaped


def _anchor(url: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(url, quote=False)}</a>'


def pin_block(pin: ExportPin, *, newlines: str = "raw") -> str:
    """One Pin's lines, as the notes show them."""
    lines: list[tuple[str, str]] = [
        ("Title", _text(pin.title, newlines)),
        ("Details", _text(pin.details, newlines)),
        ("Image", _text(pin.image_signature, newlines)),
        ("Is Native", _text(_word(pin.is_native), newlines)),
        ("Board Id", _text(pin.board_id, newlines)),
        ("Board Name", _text(pin.board_name, newlines)),
        ("Is Video", _text(_word(pin.is_video), newlines)),
        ("Ip Address", _text(pin.ip_address, newlines)),
        ("Username", _text(pin.username, newlines)),
        ("Alt Text", _text(pin.alt_text, newlines)),
        ("Canonical Link", _anchor(pin.link) if pin.link else NO_DATA),
        ("Story Pin Media", _text(pin.story_pin_media, newlines)),
        ("Video", _text(pin.video, newlines)),
        ("Created at", _text(created_text(pin.created_at), newlines)),
        ("Alive", _text(_word(pin.alive), newlines)),
        ("Is a repin", _text(_word(pin.is_repin), newlines)),
        ("Private", _text(_word(pin.private), newlines)),
    ]
    out = [_anchor(PIN_URL.format(pin.pin_id))]
    for number, (key, value) in enumerate(lines):
        comma = "," if number < len(lines) - 4 else ""
        out.append(f"<br>{key}: {value}{comma}")
    return "\n".join(out) + "<br><br>"


def _other_block(block: ExportBlock | dict[str, str | None], newlines: str) -> str:
    if isinstance(block, dict):
        block = ExportBlock(block)
    out = [_anchor(block.href)] if block.href else []
    items = list(block.values.items())
    for number, (key, value) in enumerate(items):
        comma = "," if number < len(items) - 1 else ""
        out.append(f"<br>{html.escape(key, quote=False)}: {_text(value, newlines)}{comma}")
    return "\n".join(out) + "<br><br>"


def h1_ids(seed: int = 0) -> Iterable[str]:
    """Random h1 ids like Pinterest's (``y1bkd``, ``q8k2z``), never the same twice."""
    rng, seen = random.Random(seed), set()
    while True:
        found = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        if found not in seen:
            seen.add(found)
            yield found


def export_html(pins: Sequence[ExportPin], *, extra_sections: Sequence[ExportSection] | None = None,
                pins_h1_id: str | None = None, seed: int = 0, newlines: str = "raw") -> str:
    """The whole document. ``newlines``: "raw" or "br" (how a value's line breaks are written [U])."""
    if newlines not in ("raw", "br"):
        raise ValueError(f"newlines must be 'raw' or 'br', not {newlines!r}")
    ids = iter(h1_ids(seed))
    parts = [f'<div id="contents"><h1 id={pins_h1_id or next(ids)}>Pins</h1>\n']
    parts.append("\n".join(pin_block(pin, newlines=newlines) for pin in pins))
    for section in extra_sections or ():
        parts.append(f"<h1 id={section.h1_id or next(ids)}>{html.escape(section.heading, quote=False)}</h1>\n")
        parts.append("\n".join(_other_block(block, newlines) for block in section.blocks))
    parts.append("\n</div>\n" if parts[-1].endswith("<br><br>") else "</div>\n")
    return "".join(parts)


def write_export(path: str | Path, pins: Sequence[ExportPin], *, extra_sections: Sequence[ExportSection] | None = None,
                 zipped: bool = False, html_name: str = HTML_NAME, pins_h1_id: str | None = None, seed: int = 0,
                 newlines: str = "raw", moment: dt.datetime = BASE_TIME) -> Path:
    """Write the export to ``path`` and return it: the HTML document itself, or with
    ``zipped`` a zip holding it as ``html_name``; a ``path`` that is a folder gets the
    document (or the zip, named ``pinterest.zip``) inside it."""
    path = Path(path)
    document = export_html(pins, extra_sections=extra_sections, pins_h1_id=pins_h1_id, seed=seed,
                           newlines=newlines).encode("utf-8")
    if path.is_dir():
        path = path / ("pinterest.zip" if zipped else html_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if zipped:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            info = zipfile.ZipInfo(html_name, date_time=moment.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, document)
    else:
        path.write_bytes(document)
    return path


# --------------------------------------------------------------------------- other sections [U]


@dataclass
class ExportBoard:
    """A board as the Boards section writes it [U: no sample; the API's Board fields]."""

    board_id: str
    name: str
    description: str | None = None
    privacy: str = "PUBLIC"   # PUBLIC | PROTECTED | SECRET
    created_at: str | dt.datetime | None = None
    url: str | None = None


def boards_section(boards: Iterable[ExportBoard | ExportPin], *, heading: str = "Boards") -> ExportSection:
    """A Boards section: one block per board, led by the board's address when known, with
    ``Board Id``, ``Name``, ``Description``, ``Privacy``, ``Created at`` [U]. Pins given
    instead name their boards (each board once, public)."""
    seen: dict[str, ExportBoard] = {}
    for item in boards:
        if isinstance(item, ExportPin):
            if item.board_id and item.board_id not in seen:
                seen[item.board_id] = ExportBoard(item.board_id, item.board_name or "")
        elif item.board_id not in seen:
            seen[item.board_id] = item
    return ExportSection(heading, [
        ExportBlock({"Board Id": board.board_id, "Name": board.name, "Description": board.description,
                     "Privacy": board.privacy, "Created at": created_text(board.created_at)}, href=board.url)
        for board in seen.values()])


def people_section(heading: str, usernames: Iterable[str]) -> ExportSection:
    """A Followers or Following section [U: no sample]: one block per person, led by their
    profile's address, with ``Username``."""
    return ExportSection(heading, [ExportBlock({"Username": name}, href=PROFILE_URL.format(name))
                                   for name in usernames])


def signature(seed: object) -> str:
    """A stable 32-hex image signature for ``seed`` (as Pinterest's are md5-like)."""
    import hashlib

    return hashlib.md5(repr(seed).encode(), usedforsecurity=False).hexdigest()


def sample_pins(count: int = 4, *, username: str = "roofcam") -> list[ExportPin]:
    """A few Pins on two boards: one with every field, a private one, a repin, a video, one
    whose optional fields are all ``No data``."""
    boards = [("549755885175", "Baking"), ("549755885176", "Gardens")]
    pins = []
    for number in range(count):
        board_id, board_name = boards[number % 2]
        pins.append(ExportPin(
            pin_id=str(813744226420795884 + number),
            title=f"Pin {number}" if number % 5 != 4 else None,
            details=f"Details of pin {number}\nsecond line" if number % 5 != 4 else None,
            image_signature=signature(("pin", number)),
            board_id=board_id, board_name=board_name, username=username,
            alt_text=f"alt {number}" if number % 5 == 0 else None,
            link=f"https://example.org/page/{number}" if number % 5 != 4 else None,
            created_at=(dt.datetime(2024, 5, 1, 18, 22, 31, tzinfo=dt.timezone.utc)
                        + dt.timedelta(days=number)),
            is_video=True if number % 5 == 3 else None,
            private=number % 5 == 1,
            is_repin=number % 5 == 2,
        ))
    return pins
