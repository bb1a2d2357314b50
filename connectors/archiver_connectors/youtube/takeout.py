"""Google Takeout: the YouTube part of a Takeout export (shared/platforms/youtube.md §6).

What is read, from ``Takeout/YouTube and YouTube Music/`` (or its localized twin):

- the channel (``channels/channel.csv``)                    -> Profile
- the uploads (``video metadata/videos.csv``)               -> Post, native_id = the real
  video id, so an upload seen through the API and in Takeout is one row
- the video files (``videos/<title>.mp4``)                  -> MediaRef(role="video"),
  matched to their video id through the title column of videos.csv
- the comments (``comments/comments.csv``)                  -> Comment (the user's own)
- the subscriptions (``subscriptions/subscriptions.csv``)   -> Snapshot(kind="following")

Takeout translates folder names, file names *and CSV headers* into the account's
language (German: ``YouTube und YouTube Music/Abos/Abos.csv`` with the header
``Kanal-ID,Kanal-URL,Kanaltitel``). So this module never trusts a path: the YouTube
folder is found by a table of localized names (or any folder whose name holds
"YouTube"), and each CSV file inside it is recognized by its header (English names in
every known spelling and order, looked up case-insensitively), with a fallback for the
subscription list that recognizes its columns by their values (UC… ids, URLs).

Text encodings: UTF-8, UTF-8 with a byte-order mark and UTF-16 (with BOM) are read.
Comment text comes in three forms: ``{"takeoutSegments":[{"text":…}]}`` (old),
``{"text":…},{"text":…}`` (new; not valid JSON until wrapped in ``[ ]``) and plain text.

Zip parts. A big Takeout is split into several zips, and a video file can sit in another
part than videos.csv. Each part imported on its own gives correct rows:

- a video file is matched by title against the videos.csv of the same part, else against
  the uploads already in the archive (from an earlier part or from the API);
- a video file that matches nothing yet is *not* guessed at: the other records of the
  part are written, then the run ends with ``VideosAwaitingMetadata`` (a RunFailed) that
  names the files and says what to do. A failed run does not mark the file as imported,
  so importing that part again after the part holding videos.csv links every file.
  A part that holds videos.csv itself has no other part to wait for: a file matching
  none of its rows (a row refused as one bad item) is reported as one bad item too.
- An extracted folder holding all parts (Takeout's parts extract into one ``Takeout/``
  tree) is simply one export.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import json
import os
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from archiver.records import (
    Comment,
    MediaRef,
    Membership,
    Page,
    Person,
    Post,
    Profile,
    Snapshot,
    iso_utc,
    pages_of,
    visibility,
)
from archiver.sync.imports import json_nesting_problem
from archiver.sync.runner import RunFailed

if TYPE_CHECKING:
    from _csv import Reader as CsvReader  # what csv.reader returns

PAGE_SIZE = 20            # posts per page: each carries a video file, stored before the commit
COMMENT_PAGE_SIZE = 500

# The YouTube folder of a Takeout, per account language. [U] beyond en/de/nl/es, which
# other parsers confirm; any folder whose name holds "YouTube" is accepted too.
YOUTUBE_FOLDER_NAMES = {
    "en": "YouTube and YouTube Music",
    "de": "YouTube und YouTube Music",
    "nl": "YouTube en YouTube Music",
    "es": "YouTube y YouTube Music",
    "fr": "YouTube et YouTube Music",
    "it": "YouTube e YouTube Music",    # also Portuguese
    "pl": "YouTube i YouTube Music",
    "sv": "YouTube och YouTube Music",
    "tr": "YouTube ve YouTube Music",
    "old": "YouTube",                   # exports before YouTube Music joined the folder
}
_KNOWN_FOLDERS = {unicodedata.normalize("NFC", name).casefold() for name in YOUTUBE_FOLDER_NAMES.values()}

# Files this module reads; anything else under the YouTube folder is ignored.
VIDEO_EXTENSIONS = {".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime",
                    ".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".m4v": "video/x-m4v",
                    ".3gp": "video/3gpp", ".flv": "video/x-flv", ".mpg": "video/mpeg", ".mpeg": "video/mpeg",
                    ".wmv": "video/x-ms-wmv"}
DATA_EXTENSIONS = {".csv", ".json", ".html"}

# Column names, normalized by ``_header_key`` (case, spaces, punctuation ignored). Every
# spelling seen in any export date is listed; German ones where other parsers saw them.
COLUMNS = {
    # videos.csv
    "video_id": ("videoid", "videoidoriginal"),
    "title": ("videotitleoriginal", "videotitle", "title"),
    "description": ("videodescriptionoriginal", "videodescription", "description"),
    "duration_ms": ("approxdurationms", "approximatedurationms", "durationms"),
    "privacy": ("privacy", "videoprivacy", "privacystatus"),
    "state": ("videostate",),
    "created": ("videocreatetimestamp", "videocreatedtimestamp", "createtimestamp"),
    "published": ("videopublishtimestamp", "videopublishedtimestamp", "publishtimestamp"),
    "category": ("videocategory", "category"),
    "language": ("videoaudiolanguage", "audiolanguage"),
    "playlist_marker": ("playlistvideocreationtimestamp", "playlistvideocreatetimestamp"),
    # comments.csv
    "comment_id": ("commentid",),
    "parent_id": ("parentcommentid", "parentid"),
    "top_level_id": ("toplevelcommentid",),
    "comment_created": ("commentcreatetimestamp", "commentcreatedtimestamp", "createtimestamp"),
    "comment_text": ("commenttext", "comment"),
    "post_id": ("postid",),
    "price": ("price",),
    # channel.csv / subscriptions.csv / comments' commenter
    "channel_id": ("channelid", "kanalid"),
    "channel_url": ("channelurl", "kanalurl"),
    "channel_title": ("channeltitle", "kanaltitel"),
    "channel_title_original": ("channeltitleoriginal", "channelname"),
    "channel_description": ("channeldescriptionoriginal", "channeldescription"),
    "channel_visibility": ("channelvisibility",),
}

_CHANNEL_ID = re.compile(r"^UC[0-9A-Za-z_-]{22}$")
_DUPLICATE_SUFFIX = re.compile(r"^(?P<stem>.*?)\s*\((?P<n>\d{1,3})\)$")  # "Title(1)" [U]


class UnknownLayout(RunFailed):
    """A YouTube folder was found but nothing in it could be read."""


class VideosAwaitingMetadata(RunFailed):
    """Video files whose video id is not known yet (their videos.csv is in another part)."""

    def __init__(self, message: str, names: list[str]):
        super().__init__(message)
        self.names = names


# --------------------------------------------------------------------------- detection


def _segment_is_youtube(segment: str) -> bool:
    folded = unicodedata.normalize("NFC", segment).casefold()
    return folded in _KNOWN_FOLDERS or "youtube" in folded


def find_takeout(source) -> str | None:
    """The YouTube folder inside ``source`` ("Takeout/YouTube and YouTube Music"), or None.

    Names only, no file is opened. A folder counts when its name is in the localized
    table (or holds "YouTube") and it has a CSV, JSON or video file somewhere below it.
    TikTok's and Instagram's exports have no such folder.
    """
    best: str | None = None
    for name in source.names():
        parts = name.split("/")
        extension = os.path.splitext(parts[-1])[1].lower()
        if extension not in DATA_EXTENSIONS and extension not in VIDEO_EXTENSIONS:
            continue
        for depth, segment in enumerate(parts[:-1]):
            if _segment_is_youtube(segment):
                root = "/".join(parts[: depth + 1])
                # Prefer a known name (a user's playlist folder may also be called "YouTube").
                if best is None or (_known(root) and not _known(best)) or (
                        _known(root) == _known(best) and len(root) < len(best)):
                    best = root
                break
    return best


def _known(root: str) -> bool:
    return unicodedata.normalize("NFC", root.rsplit("/", 1)[-1]).casefold() in _KNOWN_FOLDERS


# --------------------------------------------------------------------------- CSV reading


def _header_key(text: str) -> str:
    """'Comment create timestamp ' -> 'commentcreatetimestamp' (case, spaces, punctuation out)."""
    text = unicodedata.normalize("NFKC", text).replace("\ufeff", "")
    return re.sub(r"[\W_]+", "", text.casefold())


def _text_stream(source, name: str) -> io.TextIOWrapper:
    """Decode one CSV (or HTML) entry: UTF-16 (BOM, or NULs in the first bytes), UTF-8 with
    or without BOM. Undecodable bytes become U+FFFD rather than aborting the file; a UTF-8
    entry is read through the core's TextReader, so the first NUL byte or invalid UTF-8 in
    it is named (``text_problem``) for the importer to report."""
    raw = source.open(name)
    head = raw.peek(4)[:4]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif len(head) >= 2 and head[1:2] == b"\x00":
        encoding = "utf-16-le"
    elif len(head) >= 2 and head[0:1] == b"\x00":
        encoding = "utf-16-be"
    else:
        encoding = "utf-8"
    if encoding.startswith("utf-8"):
        raw.close()
        raw = source.open_text(name)
    return io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")


def text_problem(text: io.TextIOWrapper) -> str | None:
    """The first NUL byte or invalid UTF-8 of an entry read through ``_text_stream``."""
    buffer: Any = text.buffer   # the BufferedReader over our TextReader
    return getattr(buffer.raw, "problem", None)


@dataclass
class CsvFile:
    """One CSV entry: its header and where each known column is."""

    name: str
    header: list[str]
    columns: dict[str, int]   # COLUMNS key -> position in this file
    kind: str | None = None   # "videos" | "comments" | "subscriptions" | "channel" | None

    def has(self, *keys: str) -> bool:
        return all(k in self.columns for k in keys)


def _columns_of(header: list[str]) -> dict[str, int]:
    keys = [_header_key(h) for h in header]
    found: dict[str, int] = {}
    for column, spellings in COLUMNS.items():
        for spelling in spellings:
            if spelling in keys:
                found[column] = keys.index(spelling)
                break
    return found


def _classify(csv_file: CsvFile) -> str | None:
    """What a CSV file is, from its header (never from its path)."""
    c = csv_file
    if c.has("comment_text") and (c.has("comment_id") or c.has("video_id") or c.has("comment_created")):
        return "comments"
    if c.has("video_id") and not c.has("playlist_marker") and (
            c.has("title") or c.has("duration_ms") or c.has("created") or c.has("published")):
        return "videos"
    if c.has("channel_id", "channel_url") and not c.has("video_id"):
        return "subscriptions"
    if c.has("channel_id") and (c.has("channel_title_original") or c.has("channel_visibility")):
        return "channel"
    return None


# Localized file names of the subscription list, for its value-shape fallback. [U] beyond de/nl.
_SUBSCRIPTION_FILE_STEMS = {"subscriptions", "abos", "abonnementen", "abonnements", "suscripciones",
                            "iscrizioni", "inscricoes", "inscrições", "subskrypcje", "prenumerationer", "abonelikler"}


def _open_csv(source, name: str) -> tuple[io.TextIOWrapper, CsvReader]:
    text = _text_stream(source, name)
    return text, csv.reader(text)


def _read_header(source, name: str) -> list[str] | None:
    text, reader = _open_csv(source, name)
    with text:
        try:
            return next(reader, None)
        except csv.Error:
            return None


def _subscription_columns_by_value(source, name: str) -> dict[str, int] | None:
    """A subscription list with a header in an unknown language: its columns are found by
    their values (a UC… channel id, an http URL, the rest is the title)."""
    text, reader = _open_csv(source, name)
    rows: list[list[str]] = []
    with text:
        try:
            width = len(next(reader, None) or [])
        except csv.Error:
            return None
        while len(rows) < 20:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error:   # an unreadable row (a field past the csv module's limit): reported when read
                continue
            if row:
                rows.append(row)
    # One bad row must not hide the whole list (it is reported and skipped when read): the
    # rows as wide as the header are looked at, and a column needs half of them to fit.
    rows = [r for r in rows if len(r) == width]
    if not rows:
        return None

    def column_of(fits) -> list[int]:
        return [i for i in range(width) if 2 * sum(1 for r in rows if fits(r[i].strip())) >= len(rows)]

    ids = column_of(_CHANNEL_ID.match)
    urls = column_of(lambda value: value.startswith("http"))
    if len(ids) != 1:
        return None
    found = {"channel_id": ids[0]}
    if len(urls) == 1:
        found["channel_url"] = urls[0]
    rest = [i for i in range(width) if i not in found.values()]
    if len(rest) == 1:
        found["channel_title"] = rest[0]
    return found


def _rows(source, csv_file: CsvFile, report) -> Iterator[tuple[int, dict[str, str], dict[str, str]]]:
    """(line, known columns -> value, whole row by header) for each data row. A row of the
    wrong width is reported and skipped."""
    text, reader = _open_csv(source, csv_file.name)
    with text:
        next(reader, None)
        width = len(csv_file.header)
        line = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                if problem := text_problem(text):
                    report(f"the bad bytes of {csv_file.name}", f"{problem}; the rest of it was read, with "
                           "those bytes shown as \ufffd")
                return
            except csv.Error as error:
                report(f"line {reader.line_num} of {csv_file.name}", f"unreadable CSV ({error})")
                continue
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != width:
                report(f"line {line} of {csv_file.name}",
                       f"{len(row)} fields where the header has {width}: {','.join(row)[:80]!r}")
                continue
            values = {key: row[index].strip() for key, index in csv_file.columns.items()}
            raw = {csv_file.header[i].lstrip("\ufeff"): row[i] for i in range(width)}
            yield line, values, raw


# --------------------------------------------------------------------------- values


def _timestamp(value: str | None, what: str) -> str | None:
    """ISO-8601 with an offset (2023-09-19T17:42:53.434647+00:00) -> UTC ISO; empty -> None;
    unreadable -> ValueError naming the column."""
    if not value:
        return None
    try:
        return iso_utc(value)
    except (TypeError, ValueError):
        raise ValueError(f"unreadable {what} {value!r}") from None


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


def comment_text(value: str) -> str:
    """The comment text out of its JSON-in-CSV wrapping, in every known form."""
    stripped = value.strip()
    if not stripped.startswith("{"):
        return value
    if json_nesting_problem(stripped):  # a cell of thousands of "[": never given to the parser
        return value
    for candidate in (stripped, f"[{stripped}]"):
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(parsed, dict) and isinstance(parsed.get("takeoutSegments"), list):
            parsed = parsed["takeoutSegments"]
        if isinstance(parsed, dict):
            parsed = [parsed]
        if isinstance(parsed, list) and all(isinstance(s, dict) for s in parsed):
            return "".join(_segment_text(s) for s in parsed)
    return value  # plain text that happens to start with "{"


def _segment_text(segment: dict) -> str:
    text = segment.get("text")
    if isinstance(text, str):
        return text
    # A mention or link segment without "text" [U]: keep whatever string it holds.
    for value in segment.values():
        if isinstance(value, dict) and isinstance(value.get("text"), str):
            return value["text"]
    return ""


def title_key(text: str) -> str:
    """How a title and a file name are compared: Unicode-normalized, case-folded, letters
    and digits only (Takeout replaces characters a file name cannot hold [U])."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).casefold())


# --------------------------------------------------------------------------- the layout


@dataclass
class TakeoutLayout:
    """What one Takeout (or one part of it) holds under its YouTube folder."""

    root: str
    csv_files: dict[str, list[CsvFile]] = field(default_factory=dict)  # kind -> files
    video_files: list[str] = field(default_factory=list)
    unknown_csv: list[str] = field(default_factory=list)


def scan_layout(source, root: str, report) -> TakeoutLayout:
    layout = TakeoutLayout(root)
    for name in source.names():
        if not name.startswith(root + "/"):
            continue
        extension = os.path.splitext(name)[1].lower()
        if extension in VIDEO_EXTENSIONS:
            layout.video_files.append(name)
        elif extension == ".csv":
            header = _read_header(source, name)
            if not header:
                report(name, "empty or unreadable CSV file")
                continue
            csv_file = CsvFile(name, header, _columns_of(header))
            csv_file.kind = _classify(csv_file)
            if csv_file.kind is None and _stem(name) in _SUBSCRIPTION_FILE_STEMS:
                by_value = _subscription_columns_by_value(source, name)
                if by_value:
                    csv_file.columns, csv_file.kind = by_value, "subscriptions"
            if csv_file.kind is None:
                layout.unknown_csv.append(name)
            else:
                layout.csv_files.setdefault(csv_file.kind, []).append(csv_file)
    return layout


def _stem(name: str) -> str:
    return unicodedata.normalize("NFC", os.path.splitext(os.path.basename(name))[0]).casefold()


# --------------------------------------------------------------------------- records


def profile_from_row(values: dict[str, str], raw: dict[str, str]) -> Profile | None:
    channel_id = values.get("channel_id")
    if not channel_id:
        return None
    title = values.get("channel_title_original") or values.get("channel_title") or None
    return Profile(
        native_id=channel_id,
        username=None,  # the @handle is not in Takeout; the API fills it
        display_name=title,
        bio=values.get("channel_description") or None,
        url=f"https://www.youtube.com/channel/{channel_id}",
        raw=raw,
    )


def post_from_row(values: dict[str, str], raw: dict[str, str]) -> Post:
    """One upload. Raises ValueError for a row that cannot be one."""
    video_id = values.get("video_id")
    if not video_id:
        raise ValueError("no Video ID")
    published = _timestamp(values.get("published"), "Video Publish Timestamp")
    created = _timestamp(values.get("created"), "Video Create Timestamp")
    privacy = (values.get("privacy") or "").strip()
    duration_ms = _int(values.get("duration_ms"))
    return Post(
        native_id=video_id,
        # The API's snippet.publishedAt is the publish time; a never-published upload
        # has only its create time.
        created_at=published or created,
        kind="video",
        title=values.get("title") or None,
        text=values.get("description") or None,
        url=f"https://www.youtube.com/watch?v={video_id}",
        duration=round(duration_ms / 1000) if duration_ms is not None else None,
        # "Public" / "Private" / "Unlisted", the API's privacyStatus words in another case.
        visibility=visibility(privacy),
        raw=raw,
    )


def comment_from_row(values: dict[str, str], raw: dict[str, str], owner_channel: str | None) -> Comment:
    text = comment_text(values.get("comment_text") or "")
    if not text.strip():
        raise ValueError("no comment text")
    created = _timestamp(values.get("comment_created"), "Comment Create Timestamp")
    channel_id = values.get("channel_id") or None
    comment_id = values.get("comment_id") or None
    parent = values.get("parent_id") or None
    if parent and parent == comment_id:
        parent = None
    # Takeout holds the account holder's own comments [C3]; a row naming another
    # channel than the owner's is kept as that channel's comment (the notes' [U]).
    by_owner = channel_id is None or owner_channel is None or channel_id == owner_channel
    video_id = values.get("video_id") or None
    return Comment(
        native_id=comment_id,
        text=text,
        created_at=created,
        post_native_id=video_id,
        author=Person(native_id=channel_id, url=f"https://www.youtube.com/channel/{channel_id}",
                      raw={}) if channel_id else None,
        by_owner=by_owner,
        parent_native_id=parent,
        url=(f"https://www.youtube.com/watch?v={video_id}&lc={comment_id}" if video_id and comment_id else None),
        raw=raw,
    )


def person_from_subscription(values: dict[str, str]) -> Person:
    channel_id = values.get("channel_id")
    if not channel_id:
        raise ValueError("no Channel Id")
    url = values.get("channel_url") or f"https://www.youtube.com/channel/{channel_id}"
    return Person(native_id=channel_id, display_name=values.get("channel_title") or None, url=url, raw={})


# --------------------------------------------------------------------------- my-comments.html

# Takeouts of about 2021 keep the owner's comments as a web page, one <li> each: a line
# with the time and links (the video, and the comment itself with "&lc=<comment id>"),
# a <br>, then the text [C3: google_takeout_parser's test: "Sent at 2020-04-27 23:18:23 UTC
# while watching <a href=…watch?v=…>a video</a>.<br/>content here"]. Older pages write the
# time as 2016-06-15T08:50:49Z.
MY_COMMENTS_PAGE = "my-comments.html"
_PAGE_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:\s+|T)(\d{2}):(\d{2}):(\d{2})")


class _CommentsPage(HTMLParser):
    """The <li> items of my-comments.html: their text split at <br>, and their links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[dict] = []
        self._item: dict | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "li":
            self._item = {"parts": [""], "links": []}
            self.items.append(self._item)
        elif self._item is not None and tag == "br":
            self._item["parts"].append("")
        elif self._item is not None and tag == "a":
            href = dict(attrs).get("href")
            if href:
                self._item["links"].append(href)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "li":
            self._item = None

    def handle_data(self, data):
        if self._item is not None:
            self._item["parts"][-1] += data


def _page_items(stream) -> Iterator[dict]:
    """The <li> items of a page read a piece at a time (a page of years of comments is
    never held whole)."""
    page = _CommentsPage()
    while chunk := stream.read(64 * 1024):
        page.feed(chunk)
        done = page.items if page._item is None else page.items[:-1]
        yield from done
        del page.items[: len(done)]
    page.close()
    yield from page.items


def comments_from_page(stream, owner_channel: str | None) -> Iterator[tuple[int, Comment | ValueError]]:
    """(item number, the comment or why it is not one) for each <li> of my-comments.html
    (``stream``: its text)."""
    for number, item in enumerate(_page_items(stream), start=1):
        header, *body = item["parts"]
        found = _PAGE_TIME.search(header) or _PAGE_TIME.search(" ".join(item["parts"]))
        content = "\n".join(part.strip() for part in body).strip()
        if found is None:
            yield number, ValueError("no time in it")
            continue
        if not content:
            yield number, ValueError("no comment text")
            continue
        created = "{}-{}-{}T{}:{}:{}Z".format(*found.groups())
        video_id = comment_id = None
        for link in item["links"]:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
            video_id = video_id or (query.get("v") or [None])[0]
            comment_id = comment_id or (query.get("lc") or [None])[0]
        yield number, Comment(
            native_id=comment_id,
            text=content,
            created_at=created,
            post_native_id=video_id,
            author=Person(native_id=owner_channel, url=f"https://www.youtube.com/channel/{owner_channel}",
                          raw={}) if owner_channel else None,
            by_owner=True,
            url=(f"https://www.youtube.com/watch?v={video_id}&lc={comment_id}" if video_id and comment_id else None),
            raw={"my-comments.html": {"line": header.strip(), "text": content, "links": item["links"]}},
        )


# --------------------------------------------------------------------------- video files


def _upload_id(post: Post) -> str:
    """The video id of an upload read from videos.csv (post_from_row refuses a row without one)."""
    assert post.native_id is not None
    return post.native_id


@dataclass
class _Upload:
    video_id: str
    title: str | None
    created_at: str | None


def match_video_files(files: list[str], uploads: list[_Upload]) -> tuple[dict[str, str], list[str]]:
    """video id -> file name, and the files left unmatched.

    A file is named after its video's title (``videos/Sunset timelapse.mp4``); two uploads
    with one title get ``Title.mp4``, ``Title(1).mp4`` … [U], matched in upload order. A
    file named after the video id itself matches that id.
    """
    by_id = {u.video_id: u for u in uploads}
    by_title: dict[str, list[_Upload]] = {}
    for upload in sorted(uploads, key=lambda u: (u.created_at or "", u.video_id)):
        if upload.title:
            by_title.setdefault(title_key(upload.title), []).append(upload)
    matched: dict[str, str] = {}
    unmatched: list[str] = []
    numbered: dict[str, list[tuple[int, str]]] = {}
    for name in sorted(files):
        stem = os.path.splitext(os.path.basename(name))[0]
        if stem in by_id and stem not in matched:
            matched[stem] = name
            continue
        key = title_key(stem)
        duplicate = _DUPLICATE_SUFFIX.match(stem)
        if key in by_title:
            numbered.setdefault(key, []).append((0, name))
        elif duplicate and title_key(duplicate["stem"]) in by_title:
            numbered.setdefault(title_key(duplicate["stem"]), []).append((int(duplicate["n"]), name))
        else:
            unmatched.append(name)
    for key, candidates in numbered.items():
        free = [u for u in by_title[key] if u.video_id not in matched]
        for (_, name), upload in zip(sorted(candidates), free, strict=False):   # the rest stay unmatched
            matched[upload.video_id] = name
        unmatched.extend(name for _, name in sorted(candidates)[len(free):])
    return matched, unmatched


def _archived_uploads(ctx) -> list[_Upload]:
    """Uploads already in the archive (an earlier part, or the API), to match files of a
    part that has no videos.csv."""
    posts = ctx.every_archived_post({"title": "title", "created_at": "created_at"})
    return [_Upload(post_id, post["title"], post["created_at"]) for post_id, post in posts.items()]


def _video_ref(source, name: str) -> MediaRef:
    extension = os.path.splitext(name)[1].lower()
    # Percent-encoded: the stored source_url loses everything after a "#" or "?", and
    # titles hold both ("Roof cam #12.mp4").
    return MediaRef(url="takeout:" + urllib.parse.quote(name), role="video", mime_hint=VIDEO_EXTENSIONS.get(extension),
                    opener=source.opener(name, named=name, named_in="the Takeout"))


def _missing_video_ref(source, post: Post, csv_name: str) -> MediaRef:
    """The slot of an upload videos.csv lists whose file this export does not hold: a
    failed slot that says so, so the hole is counted and named (another part of a split
    Takeout may hold the file: importing it fills the slot)."""
    return MediaRef(url=f"takeout:{post.native_id}", role="video",
                    opener=source.opener(None, named=f"the video file of {post.title or post.native_id}",
                                         named_in=f"{csv_name} (video {post.native_id})",
                                         hint="a Takeout split in parts may hold it in another part: import every part"))


# --------------------------------------------------------------------------- the pages


def takeout_pages(source, ctx, videos_elsewhere: Sequence[str] = ()) -> Iterator[Page]:
    """Pages of records from one Takeout export (or one of its zip parts).

    An upload whose video file the export lacks gets a failed slot that says so, unless
    ``videos_elsewhere`` (the video files of the other parts of one download) holds it.

    No stream state: a re-import merges into the same rows. Raises ``UnknownLayout`` when
    no YouTube folder, or nothing readable in it, is found; ``VideosAwaitingMetadata``
    at the end when video files could not be matched to a video id yet.
    """
    root = find_takeout(source)
    if root is None:
        raise UnknownLayout(
            f"{source.path}: no YouTube folder found (looked for "
            f"{', '.join(repr(n) for n in YOUTUBE_FOLDER_NAMES.values())} or any folder named after YouTube). "
            "Is this a Google Takeout export with \"YouTube and YouTube Music\" selected?")
    report = ctx.report
    layout = scan_layout(source, root, report)
    if not layout.csv_files and not layout.video_files:
        found = ", ".join(layout.unknown_csv[:5]) or "no CSV or video files"
        raise UnknownLayout(
            f"{source.path}: the YouTube folder {root!r} holds nothing this version can read "
            f"(found: {found}). The Takeout layout may have changed: please report it.")
    for name in layout.unknown_csv:
        if _stem(name) in _SUBSCRIPTION_FILE_STEMS or "comment" in _stem(name) or _stem(name) == "videos":
            report(name, "the CSV header was not recognized (columns: "
                   f"{', '.join((_read_header(source, name) or [])[:8])}); the file was skipped")

    # The channel first: its id tells the owner's comments from others'.
    owner = None
    for csv_file in layout.csv_files.get("channel", []):
        for line, values, raw in _rows(source, csv_file, report):
            profile = profile_from_row(values, raw)
            if profile is None:
                report(f"line {line} of {csv_file.name}", "no Channel ID")
                continue
            owner = owner or profile.native_id
            yield Page("export:profile", [profile])
            break
    owner = owner or ctx.owner_native_id()

    # Uploads, each with its video file when this part has it.
    posts: list[Post] = []
    listed_in: dict[str, str] = {}
    for csv_file in layout.csv_files.get("videos", []):
        for line, values, raw in _rows(source, csv_file, report):
            try:
                posts.append(post_from_row(values, raw))
                listed_in[_upload_id(posts[-1])] = csv_file.name
            except ValueError as error:
                report(f"video {values.get('video_id') or '?'} (line {line} of {csv_file.name})", str(error))
    uploads = [_Upload(_upload_id(p), p.title, p.created_at) for p in posts]
    files_by_id, unmatched = match_video_files(layout.video_files, uploads)
    elsewhere, _ = match_video_files(list(videos_elsewhere), [u for u in uploads if u.video_id not in files_by_id])
    file_only: dict[str, str] = {}
    if unmatched:
        # This part's files whose videos.csv is elsewhere: the archive may know them.
        known = [u for u in _archived_uploads(ctx) if u.video_id not in files_by_id]
        file_only, unmatched = match_video_files(unmatched, known)
    for post in posts:
        if post.native_id in files_by_id:
            post.media.append(_video_ref(source, files_by_id[post.native_id]))
        elif post.native_id not in elsewhere:
            post.media.append(_missing_video_ref(source, post, listed_in[_upload_id(post)]))
    # Only the id and the file for a file whose video row is elsewhere: the writer fills
    # nothing else, so the row's title and the like stay as the API or the earlier part wrote them.
    file_posts = [Post(native_id=video_id, created_at=None, media=[_video_ref(source, name)],
                       raw={"Takeout video file": name}) for video_id, name in sorted(file_only.items())]
    yield from pages_of("export:posts", itertools.chain(posts, file_posts), PAGE_SIZE)

    comments: list[Comment] = []
    for csv_file in layout.csv_files.get("comments", []):
        for line, values, raw in _rows(source, csv_file, report):
            try:
                comments.append(comment_from_row(values, raw, owner))
            except ValueError as error:
                report(f"comment {values.get('comment_id') or '?'} (line {line} of {csv_file.name})", str(error))
            if len(comments) >= COMMENT_PAGE_SIZE:
                yield Page("export:comments", comments)
                comments = []
    if comments:
        yield Page("export:comments", comments)
    # The page older Takeouts keep the owner's comments in (read a piece at a time).
    for name in source.names():
        if not (name.startswith(f"{root}/") and _stem(name) + ".html" == MY_COMMENTS_PAGE):
            continue
        with _text_stream(source, name) as text:
            for number, comment in comments_from_page(text, owner):
                if isinstance(comment, ValueError):
                    report(f"comment {number} of {name}", str(comment))
                    continue
                comments.append(comment)
                if len(comments) >= COMMENT_PAGE_SIZE:
                    yield Page("export:comments", comments)
                    comments = []
            if problem := text_problem(text):
                report(f"the bad bytes of {name}", f"{problem}; the rest of it was read, with those bytes "
                       "shown as \ufffd")
        if comments:
            yield Page("export:comments", comments)
            comments = []

    # The subscription list: a whole list, so a complete snapshot. A part without the
    # file says nothing about who was unsubscribed.
    taken_at = iso_utc(dt.datetime.fromtimestamp(os.stat(source.path).st_mtime, dt.timezone.utc))
    for csv_file in layout.csv_files.get("subscriptions", [])[:1]:
        def members(csv_file=csv_file) -> Iterator[Membership]:
            for line, values, _raw in _rows(source, csv_file, report):
                try:
                    yield Membership(person_from_subscription(values))
                except ValueError as error:
                    report(f"subscription (line {line} of {csv_file.name})", str(error))

        yield Page("export:following", [Snapshot("following", taken_at, members())])

    if unmatched and layout.csv_files.get("videos"):
        for name in unmatched:
            report(f"video file {name}", "it matches no upload of this export's videos.csv (its row may be one "
                   "refused above); it stays in your export file")
    elif unmatched:
        shown = ", ".join(repr(n.rsplit("/", 1)[-1]) for n in unmatched[:5])
        more = f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else ""
        raise VideosAwaitingMetadata(
            f"{source.path}: {len(unmatched)} video file(s) could not be matched to a video yet ({shown}{more}): "
            "their titles are in a videos.csv (\"video metadata\") this export part does not hold. Everything else "
            "was imported. Import the Takeout part holding video metadata/videos.csv, then this part again "
            "(or extract all parts into one folder and import that).", unmatched)


__all__ = ["UnknownLayout", "VideosAwaitingMetadata", "YOUTUBE_FOLDER_NAMES", "comment_text", "find_takeout",
           "match_video_files", "takeout_pages", "title_key"]
