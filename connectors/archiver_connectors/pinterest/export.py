"""Pinterest's "Request your data" export (shared/platforms/pinterest.md §6): one HTML
document of ``Key: value`` blocks under ``<h1>`` headings, no image files; alone, in a zip
or in a folder.

- ``Pins``: each Pin is an ``<a href=".../pin/<id>/">`` and then ``<br>Key: value,`` lines.
  It becomes a ``Post`` whose id is the Pin id (the API's Pins are the same rows): Title,
  Details (the text), Canonical Link (``Post.link``), Created at (``2017/02/13 15:35:01``,
  read as UTC), Private (visibility), Is Video, Alt Text (the image's description), and its
  board: ``collections=[Board Id]`` and a ``Collection`` of kind "board". ``No data`` is a
  missing value. The Ip Address line never reaches the archive.
- The image: the export names it by its signature only. It is downloaded during the import
  from pinimg (public, unsigned links that do not expire): ``originals/``, and the ``736x/``
  copy when the original is refused (403/410; the original may not be a .jpg) — the only way
  the person gets their pictures from an export. A Pin the archive already holds a file for
  (from the API) asks for nothing.
- Other sections (none seen in a sample [U]) are read as the same blocks: Boards with an id
  become Collections, Followers / Following with user names become dated Snapshots; any
  other block is kept raw (``unmapped_items``) and named once in the run's summary.

The document is read a piece at a time through ``html.parser`` (no tree: nesting costs
nothing), with every piece of it bounded: a tag, a run of text, a value, a block's lines.
A block over a bound, or one that is no Pin, is reported with its Pin id or position and
skipped; the rest imports.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Callable, Iterator

from archiver.records import (
    Collection,
    MediaRef,
    Membership,
    Page,
    Person,
    Post,
    Snapshot,
    Unmapped,
    iso_utc,
    visibility,
)

HTML_SUFFIXES = (".html", ".htm")
NO_DATA = "no data"
PINIMG = "https://i.pinimg.com"
PIN_URL = "https://www.pinterest.com/pin/{}/"
PROFILE_URL = "https://www.pinterest.com/{}/"
PAGE_SIZE = 100          # Pins a page
UNREAD_PAGE_SIZE = 500   # blocks of sections this version does not read, a page

# Bounds of one piece of the document (a real export's values are a few hundred characters).
READ_CHUNK = 64 * 1024
# An unfinished tag, comment or text the parser holds (a real one: under a kilobyte; text
# waiting for the end of an "&…" reference: one line at most). html.parser looks at all of
# it again at each piece fed, so the bound also keeps a tag that never ends from costing
# time by the square of its length.
MAX_PENDING = 128 * 1024
MAX_LINE = 50_000             # characters of one Key: value line (less than MAX_PENDING - READ_CHUNK)
MAX_KEYS = 200                # lines of one block
MAX_HEADING = 300
MAX_BOARDS_REMEMBERED = 100_000   # board ids already given as Collections (more: given again, harmless)

# Where the export may be inside a zip or folder [U]: its HTML files at the top or one folder
# down, a few of them (an export of another platform with more is never peeked into).
MAX_CANDIDATES = 20
MAX_DEPTH = 1
SNIFF_BYTES = 256 * 1024
_PINS_HEADING = re.compile(rb"<h1\b[^>]{0,200}>\s*Pins\s*</h1\s*>", re.I)
_PIN_HREF = re.compile(r"^https?://(?:[\w-]+\.)*pinterest\.[a-z.]{2,12}/pin/(\d{1,30})/?(?:[?#].*)?$", re.I)
_PROFILE_HREF = re.compile(r"^https?://(?:[\w-]+\.)*pinterest\.[a-z.]{2,12}/([\w.-]{1,100})/?$", re.I)
_USERNAME = re.compile(r"^[\w.-]{1,100}$")
_SIGNATURE = re.compile(r"^[0-9a-f]{6,64}$")
_BOARD_ID = re.compile(r"^[\w-]{1,64}$")
_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9 _'()/-]{0,59}):(?:\s|$)")
_CREATED = "%Y/%m/%d %H:%M:%S"
_PINIMG_LINK = re.compile(r"^https://([\w-]+\.)*pinimg\.com/", re.I)

# The Pin keys the notes name [C3]; an unknown key in a Pin is kept raw too.
PIN_KEYS = ("Title", "Details", "Image", "Is Native", "Board Id", "Board Name", "Is Video", "Ip Address",
            "Username", "Alt Text", "Canonical Link", "Story Pin Media", "Video", "Created at", "Alive",
            "Is a repin", "Private")
_PIN_KEYS = {key.casefold() for key in PIN_KEYS}
# Pin values on one line: a line without a key after one of these is no part of the Pin.
_ONE_LINE_PIN_KEYS = {key.casefold() for key in ("Image", "Is Native", "Board Id", "Is Video", "Ip Address", "Username",
                                                  "Canonical Link", "Created at", "Alive", "Is a repin", "Private")}
_SKIPPED = ("script", "style")   # their text is no data

# Headings of the sections read besides Pins [U: no sample of them].
BOARD_HEADINGS = {"boards", "your boards"}
LIST_HEADINGS = {"followers": "followers", "your followers": "followers",
                 "following": "following", "people you follow": "following", "you follow": "following"}
# Board privacy words: PUBLIC → public, SECRET / PROTECTED → private (PLAN.md contracts).
PRIVACY_WORDS = {"secret": "private", "protected": "private", "public": "public"}


def sensitive(key: str) -> bool:
    """The IP address a Pin was made from: never archived."""
    folded = " ".join(key.casefold().split())
    return folded == "ip" or "ip address" in folded


# --------------------------------------------------------------------------- finding it


def _candidates(source) -> list[str]:
    """The HTML files that may be the export's document."""
    if getattr(source, "kind", None) == "html":   # the document alone, whatever its name
        return source.names()
    names = [name for name in source.names() if name.lower().endswith(HTML_SUFFIXES)
             and name.count("/") <= MAX_DEPTH and not name.rsplit("/", 1)[-1].startswith(".")]
    return names if len(names) <= MAX_CANDIDATES else []


def find_export(source) -> list[str]:
    """The export's HTML documents: those with a ``Pins`` heading near their start (empty:
    not a Pinterest export)."""
    from archiver.sync.imports import ExportFileError

    found = []
    for name in _candidates(source):
        try:
            head = _head(source, name)
        except ExportFileError:
            continue
        if _PINS_HEADING.search(head):
            found.append(name)
    return found


def _head(source, name: str) -> bytes:
    """The first bytes of one entry, looked at without counting it read (it stays "not
    read" for the platform whose export it really is)."""
    return source.peek(name, SNIFF_BYTES)


# --------------------------------------------------------------------------- the document


@dataclass
class Block:
    """One ``Key: value`` block of a section: its leading link, its values (the text after
    "Key: ", without the line's closing comma; ``No data`` as written) and the link of a
    value that is one (Canonical Link's ``<a href>``)."""

    section: str
    number: int                       # its place in its section, from 1
    line: int                         # the document's line it starts on
    href: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    loose: list[str] = field(default_factory=list)   # lines before its first key
    problem: str | None = None

    def get(self, *keys: str) -> str | None:
        """The value of the first of ``keys`` it has (compared without case); None for a
        missing one or ``No data``."""
        folded = {key.casefold(): value for key, value in self.values.items()}
        for key in keys:
            value = folded.get(key.casefold())
            if value is not None:
                value = value.strip()
                return None if not value or value.casefold() == NO_DATA else value
        return None

    def link(self, key: str) -> str | None:
        folded = {k.casefold(): v for k, v in self.links.items()}
        return folded.get(key.casefold())

    def raw(self) -> dict[str, Any]:
        """The block as the archive keeps it: every value as written, the links, never
        the IP address."""
        kept: dict[str, Any] = {k: v for k, v in self.values.items() if not sensitive(k)}
        for key, href in self.links.items():
            if not sensitive(key):
                kept[key] = href
        if self.href:
            kept["link"] = self.href
        if self.loose:
            kept["text"] = "\n".join(self.loose)
        return kept


@dataclass
class Section:
    """A heading seen: its text and where."""

    heading: str
    line: int


@dataclass
class DocumentEnd:
    """The end of the text: ``whole`` when the document closed (its ``</div>``, ``</body>``
    or ``</html>`` last), not when it stopped short (a download cut off)."""

    whole: bool


class _Reader(HTMLParser):
    """The document's sections and blocks, gathered in ``found`` as the text is fed a piece
    at a time. A block starts at a link that begins a line (in Pins: a Pin's link, unless it
    is a value: ``Canonical Link: <a …>``) or at its first ``Key:`` line, and ends at the
    next one or at a heading; outside Pins also at an empty line or a key given twice (a
    Pin's Details may hold both).

    What goes over a bound is reported where it is: a line too long marks the block it
    belongs to (a Pin is skipped); a tag, comment or text that is no Pin's value (after a
    Pin's last line, between two Pins) is reported on its own, the Pins around it intact."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[Section | Block] = []
        self.section: str | None = None
        self.numbers: dict[str, int] = {}
        self.block: Block | None = None
        self.line_text: list[str] = []
        self.line_size = 0
        self.line_start = 1
        self.line_href: str | None = None
        self.line_too_long = False
        self.heading: list[str] | None = None
        self.in_block_link = False
        self.last_key: str | None = None
        self.skipping = 0           # inside <script> / <style>
        self.discarding = False     # the rest of a tag or text let go as too long, until the next tag
        self.closed = False         # the last thing read closed the document (a cut-off one does not)

    # -- feeding, bounded --------------------------------------------------------------

    def feed_bounded(self, text: str) -> None:
        self.feed(text)
        if len(self.rawdata) > MAX_PENDING:
            # A tag, comment or run of text that never ends: what is held of it is let go,
            # and reading goes on after it (an unclosed <script> too).
            problem = f"it holds a tag or text longer than {MAX_PENDING} characters that does not end"
            if "".join(self.line_text).strip():
                self.line_too_long = True   # inside a line: that line's block is bad
            else:
                self._stray(problem)
            self.rawdata = ""
            self.clear_cdata_mode()
            self.skipping, self.discarding = 0, True

    def finish(self) -> None:
        self.close()
        self._end_line()
        self._end_block()

    # -- parser events -----------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.discarding = self.closed = False
        if tag in _SKIPPED:
            self.skipping += 1
            return
        if tag == "h1":
            self._end_line()
            self._end_block()
            self.heading, self.in_block_link = [], False
        elif tag == "br":
            if self.heading is None:
                self._end_line()
        elif tag == "a" and self.heading is None and self.section is not None:
            href = next((value for name, value in attrs if name == "href" and value), None)
            if href is not None and len(href) > MAX_LINE:
                href = None
            if self._starts_block(href):
                self._end_line()
                self._end_block()
                self._new_block(href)
                self.in_block_link = True
            elif href and self.line_href is None:
                self.line_href = href

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIPPED:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.discarding = False
        self.closed = tag in ("div", "body", "html")
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "h1" and self.heading is not None:
            heading = " ".join("".join(self.heading).split())[:MAX_HEADING]
            self.heading = None
            self.section = heading
            self.found.append(Section(heading, self.getpos()[0]))
        elif tag == "a":
            self.in_block_link = False

    def handle_data(self, data: str) -> None:
        if self.skipping or self.discarding:
            return
        if self.closed and data.strip():
            self.closed = False
        if self.heading is not None:
            if sum(map(len, self.heading)) < MAX_HEADING:
                self.heading.append(data[:MAX_HEADING])
            return
        if self.section is None or self.in_block_link or self.line_too_long:
            return
        if not self.line_text:
            self.line_start = self.getpos()[0]
        if self.line_size + len(data) > MAX_LINE:
            self.line_too_long = True   # its start stays: it says which block the line is in
            data = data[:MAX_LINE - self.line_size]
        self.line_text.append(data)
        self.line_size += len(data)

    # -- blocks ------------------------------------------------------------------------

    def _pins(self) -> bool:
        return (self.section or "").casefold() == "pins"

    def _starts_block(self, href: str | None) -> bool:
        """Whether a link begins a block: in Pins a Pin's link that is no line's value (a
        ``Canonical Link:`` may name a Pin); elsewhere any link at the start of a line."""
        if href is None:
            return False
        text = "".join(self.line_text).strip()
        if self._pins():
            value_of = _KEY.match(text)
            return bool(_PIN_HREF.match(href)) and not (value_of and not text[value_of.end():].strip())
        return not text

    def _new_block(self, href: str | None, line: int | None = None) -> None:
        section = self.section or ""
        self.numbers[section] = self.numbers.get(section, 0) + 1
        self.block = Block(section, self.numbers[section], line or self.getpos()[0], href=href)
        self.last_key = None

    def _end_block(self) -> None:
        if self.block is not None and (self.block.href or self.block.values or self.block.loose
                                       or self.block.problem):
            self.found.append(self.block)
        self.block, self.last_key = None, None

    def _stray(self, problem: str, line: int | None = None) -> None:
        """Something over a bound that belongs to no block: reported on its own, numbered
        as the section's next block."""
        section = self.section or ""
        self.numbers[section] = self.numbers.get(section, 0) + 1
        self.found.append(Block(section, self.numbers[section], line or self.getpos()[0], problem=problem))

    def _end_line(self) -> None:
        text, href, too_long = "".join(self.line_text).strip(), self.line_href, self.line_too_long
        line = self.line_start
        self.line_text, self.line_size, self.line_href, self.line_too_long = [], 0, None, False
        if self.section is None:
            return
        long_problem = f"a line of it is longer than {MAX_LINE} characters"
        if not text:
            if self.block is not None and self.block.values and not self._pins():
                self._end_block()   # an empty line ends a block (a Pin's Details may hold one)
            return
        match = _KEY.match(text)
        key = match.group(1).strip() if match else None
        if key is not None and self.block is not None and not self._new_key(key):
            key = None
        if key is None:
            if self.block is not None and self.last_key is not None and self._goes_on(self.last_key):
                if too_long:   # the value goes on (a line break in Details), too far
                    self._block_problem(long_problem)
                else:
                    self.block.values[self.last_key] += "\n" + _value(text)
            elif too_long:
                self._stray(f"a line longer than {MAX_LINE} characters that is no value of a Pin", line)
            else:
                if self.block is None:
                    self._new_block(None, line)
                block = self.block
                assert block is not None
                if len(block.loose) < MAX_KEYS:
                    block.loose.append(text)
            return
        if self.block is None or key in self.block.values:
            self._end_block()   # a key given twice begins the next block (never in a Pin: see _new_key)
            self._new_block(None, line)
        assert self.block is not None and match is not None
        if too_long:
            self._block_problem(long_problem)
            self.last_key = None
            return
        if len(self.block.values) >= MAX_KEYS:
            if len(self.block.values) == MAX_KEYS:
                self._stray(f"the block before it has more than {MAX_KEYS} lines: the rest were left out", line)
                self.block.values["…"] = "(more lines left out)"
            return
        self.block.values[key] = _value(text[match.end():])
        if href:
            self.block.links[key] = href
        self.last_key = key

    def _block_problem(self, problem: str) -> None:
        if self.block is not None and self.block.problem is None:
            self.block.problem = problem

    def _new_key(self, key: str) -> bool:
        """Whether a ``Key:`` line in a block begins a value (else it goes on the one before):
        in a Pin, one of the notes' keys, or a new Title Case key; elsewhere, any."""
        assert self.block is not None
        if not self._pins():
            return True
        if key.casefold() in _PIN_KEYS:
            return True
        return key not in self.block.values and all(word[:1].isupper() or not word[:1].isalpha()
                                                   for word in key.split())

    def _goes_on(self, key: str) -> bool:
        """Whether a line without a key continues ``key``'s value: free text may hold line
        breaks; a Pin's flags, ids and dates never do (text after them is stray)."""
        return not self._pins() or key.casefold() not in _ONE_LINE_PIN_KEYS


def _value(text: str) -> str:
    """A line's value: without the comma that closes all but the last lines."""
    text = text.strip()
    return text[:-1].rstrip() if text.endswith(",") else text


def read_document(stream) -> Iterator[Section | Block | DocumentEnd]:
    """Sections and blocks of one document (``stream``: its text), a piece at a time, and
    last whether it was whole."""
    reader = _Reader()
    while chunk := stream.read(READ_CHUNK):
        reader.feed_bounded(chunk)
        yield from reader.found
        reader.found.clear()
    reader.finish()
    yield from reader.found
    yield DocumentEnd(reader.closed)


# --------------------------------------------------------------------------- records


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    word = value.strip().casefold()
    return True if word in ("true", "yes", "1") else False if word in ("false", "no", "0") else None


def created_at(value: str | None) -> str | None:
    """``2017/02/13 15:35:01`` (the export's form, UTC assumed: the notes say no zone) or an
    ISO-8601 moment → ISO-8601 UTC; ValueError for anything else."""
    if value is None:
        return None
    try:
        moment = dt.datetime.strptime(value.strip(), _CREATED).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return iso_utc(value.strip().replace("/", "-"))
    return iso_utc(moment)


def image_urls(signature: str, base: str = PINIMG) -> tuple[str, str]:
    """The original and the 736-wide copy of a Pin's image, from its signature."""
    path = f"{signature[0:2]}/{signature[2:4]}/{signature[4:6]}/{signature}.jpg"
    return f"{base}/originals/{path}", f"{base}/736x/{path}"


def _fallback(url: str) -> Callable[[], str | None]:
    """A MediaRef's ``refresh``: the core asks it once when the link is refused (403/410)."""
    return lambda: url


def _http(value: str | None) -> str | None:
    return value if value and re.match(r"^https?://\S+$", value, re.I) else None


def pin_records(block: Block, *, cdn: str = PINIMG,
                warn: Callable[[str], None] = lambda problem: None) -> tuple[Post, Collection | None]:
    """A Pin block → its Post (with its image to download) and its board; ValueError when
    the block is no Pin. ``warn`` hears of a value left out of a Pin that is kept."""
    if block.problem:
        raise ValueError(block.problem)
    found = _PIN_HREF.match(block.href or "")
    if found is None:
        raise ValueError("no Pin link (https://www.pinterest.com/pin/<id>/) begins it")
    pin_id = found.group(1)
    raw = block.raw()
    try:
        created = created_at(block.get("Created at"))
    except (TypeError, ValueError):
        created = None   # kept raw ("Created at"), as written
        warn(f"its Created at {(block.get('Created at') or '')[:60]!r} is no date this version reads (it reads "
             "2017/02/13 15:35:01); the Pin is kept without a date, the text as written in its raw")
    is_video = _flag(block.get("Is Video"))
    private = _flag(block.get("Private"))
    raw["flags"] = {"is_video": is_video, "is_repin": _flag(block.get("Is a repin")),
                    "is_native": _flag(block.get("Is Native")), "alive": _flag(block.get("Alive")),
                    "private": private}
    board_id = block.get("Board Id")
    if board_id is not None and not _BOARD_ID.match(board_id):
        raise ValueError(f"its Board Id {board_id[:60]!r} is no id")
    link = _http(block.link("Canonical Link")) or _http(block.get("Canonical Link"))
    alt_text = block.get("Alt Text")
    media: list[MediaRef] = []
    signature = (block.get("Image") or "").casefold()
    if signature and _SIGNATURE.match(signature):
        original, smaller = image_urls(signature, cdn)
        media.append(MediaRef(original, "cover" if is_video else "image", 0, mime_hint="image/jpeg",
                              description=alt_text, refresh=_fallback(smaller)))
    video = _http(block.get("Video"))
    if video and (video.startswith(cdn + "/") or _PINIMG_LINK.match(video)):
        # [U] what the export writes for a video Pin: a link to Pinterest's own CDN is downloaded
        media.append(MediaRef(video, "video", 0))
    post = Post(
        native_id=pin_id,
        created_at=created,
        kind="video" if is_video else "image",
        title=block.get("Title"),
        text=block.get("Details"),
        url=PIN_URL.format(pin_id),
        visibility=None if private is None else "private" if private else "public",
        link=link,
        collections=[board_id] if board_id else [],
        media=media,
        raw=raw,
    )
    board = None
    if board_id:
        board = Collection(native_id=board_id, title=block.get("Board Name"), kind="board",
                           raw={"Board Id": board_id, "Board Name": block.get("Board Name")})
    return post, board


def board_record(block: Block) -> Collection | None:
    """A block of the Boards section → its Collection, when it carries an id."""
    board_id = block.get("Board Id", "Id", "Board ID")
    if board_id is None or not _BOARD_ID.match(board_id) or block.problem:
        return None
    privacy = block.get("Privacy", "Visibility")
    secret = _flag(block.get("Secret", "Private"))
    seen = (visibility(privacy, PRIVACY_WORDS) if privacy
            else None if secret is None else "private" if secret else "public")
    try:
        created = created_at(block.get("Created at"))
    except (TypeError, ValueError):
        created = None
    return Collection(native_id=board_id, title=block.get("Name", "Board Name", "Title"), kind="board",
                      description=block.get("Description"), url=_http(block.href) or _http(block.get("Url", "Link")),
                      visibility=seen, created_at=created, raw=block.raw())


def person_of(block: Block) -> Person | None:
    """A block of a Followers / Following section → the person, when it names a user name."""
    if block.problem:
        return None
    username = block.get("Username", "User Name", "User")
    if username is None and block.href:
        found = _PROFILE_HREF.match(block.href)
        username = found.group(1) if found and found.group(1).casefold() != "pin" else None
    if username is None or not _USERNAME.match(username):
        return None
    return Person(native_id=username, handle=username, display_name=block.get("Name", "Full Name"),
                  url=PROFILE_URL.format(username), raw={})


# --------------------------------------------------------------------------- the import


def _describe(block: Block, name: str) -> str:
    if block.section.casefold() == "pins":
        found = _PIN_HREF.match(block.href or "")
        if found:
            return f"Pin {found.group(1)} (block {block.number} of Pins, line {block.line} of {name})"
    return f"block {block.number} of {block.section or 'the document'} (line {block.line} of {name})"


def _reporter(ctx, item: str) -> Callable[[str], None]:
    return lambda problem: ctx.report(item, problem)


def _item_id(block: Block) -> str:
    found = _PIN_HREF.match(block.href or "")
    return found.group(1) if found and block.section.casefold() == "pins" else f"{block.section} {block.number}"


class _Blocks:
    """One pass over a document shared by its pages and its lists' members: a list's
    members are taken from the same stream while it lasts (the runner reads them to the
    end, or not at all when the list is in the archive already: the rest are then skipped)."""

    def __init__(self, items: Iterator[Section | Block | DocumentEnd]):
        self._items = items
        self.pending: Section | Block | None = None
        self.cut_short = False   # known at the end: the document stopped before it closed

    def next(self) -> Section | Block | None:
        if self.pending is not None:
            item, self.pending = self.pending, None
            return item
        found = next(self._items, None)
        if isinstance(found, DocumentEnd):
            self.cut_short = not found.whole
            return None
        return found

    def section_blocks(self, section: str) -> Iterator[Block]:
        while True:
            item = self.next()
            if item is None:
                return
            if isinstance(item, Section) or item.section != section:
                self.pending = item
                return
            yield item


def export_pages(source, ctx) -> Iterator[Page]:
    """Pages of records from one export (no stream state: a re-import merges into the same
    rows; a finished import is skipped by its sha256)."""
    from archiver.sync.runner import RunFailed

    names = find_export(source)
    if not names:
        raise RunFailed(f"{source.path}: no Pinterest export found in it (an HTML document with a \"Pins\" heading). "
                        "Is this the file Pinterest's \"Request your data\" e-mail links to?")
    base_url = getattr(getattr(ctx, "account", None), "base_url", None)
    cdn = base_url.rstrip("/") if base_url else PINIMG
    unread: dict[str, int] = {}
    pins_read = [0]
    for name in names:
        # A list's date: when Pinterest wrote the document (the zip's time, the file's).
        moment = source.modified_at(name) or dt.datetime.now(dt.timezone.utc)
        with _open_text(source, name) as text:
            blocks = _Blocks(read_document(text))
            yield from _document_pages(blocks, name, ctx, cdn, iso_utc(moment), unread, pins_read)
            problem = getattr(text.buffer.raw, "problem", None)   # the core's TextReader names a bad byte
        if problem:
            ctx.report(f"the bad bytes of {name}", f"{problem}; the rest of it was read, with those bytes "
                       "shown as \ufffd")
        if blocks.cut_short:
            ctx.report(f"{source.path}, entry {name!r}", "the document stops before its end (no closing </div>): "
                       "the download may have been cut off. What it holds was imported; its last list is kept as "
                       "partial (no one is taken to have left); download the export again to have it all")
    if not pins_read[0]:
        ctx.note(f"the export lists no Pins ({', '.join(names)})")
    if unread:
        parts = ", ".join(f"{heading or 'text before the first heading'} ({count} block(s))"
                          for heading, count in unread.items())
        ctx.note(f"not read: the export's section(s) {parts}, which this version does not import; each block is "
                 "kept as written in the archive's unmapped_items, and stays in your export file")
    others = [name for name in _candidates(source) if name not in names]
    if others:   # other web pages beside the export [U]: looked at, not read
        ctx.note(f"not read: {', '.join(others)} (no Pins heading in it); it stays in your export file")


def _open_text(source, name: str):
    """The document's text: UTF-8 through the core's checked reader (a bad byte is shown as
    U+FFFD and named once), a byte-order mark skipped."""
    import io

    return io.TextIOWrapper(source.open_text(name), encoding="utf-8-sig", errors="replace", newline="")


def _document_pages(blocks: _Blocks, name: str, ctx, cdn: str, taken_at: str,
                    unread: dict[str, int], pins_read: list[int]) -> Iterator[Page]:
    boards_given: set[str] = set()
    pins: list[Any] = []
    pins_bad: list[Unmapped] = []
    others: list[Unmapped] = []
    boards: list[Collection] = []

    def pins_page() -> Iterator[Page]:
        nonlocal pins, pins_bad
        if pins or pins_bad:
            yield Page("export:pins", _without_held_images(pins, ctx), unmapped=pins_bad)
            pins, pins_bad = [], []

    def rest() -> Iterator[Page]:
        nonlocal others, boards
        yield from pins_page()
        if boards:
            yield Page("export:boards", boards)
            boards = []
        if others:
            yield Page("export:unread", [], unmapped=others)
            others = []

    while (item := blocks.next()) is not None:
        if isinstance(item, Section):
            kind = LIST_HEADINGS.get(item.heading.casefold())
            if kind is not None:
                yield from rest()
                yield from _list_pages(blocks, item.heading, kind, name, ctx, taken_at, unread)
            continue
        block = item
        heading = block.section.casefold()
        if heading == "pins":
            pins_read[0] += 1
            try:
                post, board = pin_records(block, cdn=cdn, warn=_reporter(ctx, _describe(block, name)))
            except ValueError as error:
                ctx.report(_describe(block, name), str(error))
                pins_bad.append(Unmapped(_item_id(block), str(error), block.raw()))
            else:
                if board is not None and board.native_id not in boards_given:
                    if len(boards_given) < MAX_BOARDS_REMEMBERED:
                        boards_given.add(board.native_id)
                    pins.append(board)
                pins.append(post)
            if len(pins) + len(pins_bad) >= PAGE_SIZE:
                yield from pins_page()
            continue
        if block.problem:   # over a bound in another section: reported, kept as far as read
            ctx.report(_describe(block, name), block.problem)
            others.append(Unmapped(_item_id(block), block.problem, block.raw()))
            continue
        record = board_record(block) if heading in BOARD_HEADINGS else None
        if record is not None:
            boards.append(record)
            if len(boards) >= PAGE_SIZE:
                yield Page("export:boards", boards)
                boards = []
            continue
        unread[block.section] = unread.get(block.section, 0) + 1
        others.append(Unmapped(_item_id(block), f"the {block.section or 'untitled'} section of the export is not "
                               "read by this version", block.raw()))
        if len(others) >= UNREAD_PAGE_SIZE:
            yield Page("export:unread", [], unmapped=others)
            others = []
    yield from rest()


def _list_pages(blocks: _Blocks, heading: str, kind, name: str, ctx, taken_at: str,
                unread: dict[str, int]) -> Iterator[Page]:
    """A Followers / Following section as one whole list, its members read as the runner
    stages them. A block that names nobody makes the list incomplete (no one is taken to
    have left because of it)."""
    first = blocks.next()
    if first is not None and not isinstance(first, Section) and first.section == heading \
            and person_of(first) is None and not first.problem:
        # Not people as this version knows them [U]: the section is kept raw, unread.
        blocks.pending = first
        others = []
        for block in blocks.section_blocks(heading):
            unread[heading] = unread.get(heading, 0) + 1
            others.append(Unmapped(_item_id(block), f"the {heading} section names no user names this version "
                                   "can read", block.raw()))
            if len(others) >= UNREAD_PAGE_SIZE:
                yield Page("export:unread", [], unmapped=others)
                others = []
        if others:
            yield Page("export:unread", [], unmapped=others)
        return
    blocks.pending = first
    snapshot = Snapshot(kind, taken_at, (), complete=True)

    def members() -> Iterator[Membership]:
        for block in blocks.section_blocks(heading):
            person = person_of(block)
            if person is None:
                ctx.report(_describe(block, name), block.problem or "it names no user name")
                snapshot.complete = False
                continue
            yield Membership(person)
        if blocks.cut_short:   # the list went on past where the document stops
            snapshot.complete = False

    snapshot.members = members()
    yield Page(f"export:{kind}", [snapshot])
    for _block in blocks.section_blocks(heading):   # what the runner did not read (the list was archived)
        pass


def _without_held_images(records: list[Any], ctx) -> list[Any]:
    """The page's Pins without the image of a Pin the archive holds a file for already (the
    API's, or an earlier import's): nothing to download for it."""
    ids = [record.native_id for record in records if isinstance(record, Post) and record.media]
    held = ctx.stored_file_counts(ids) if ids else {}
    for record in records:
        if isinstance(record, Post) and held.get(record.native_id):
            record.media = []
    return records
