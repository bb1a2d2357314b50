"""The machinery Meta's "Download your information" exports share (Instagram, Facebook,
Threads: shared/platforms/instagram.md §6, facebook.md §6, threads.md §6).

- **Mojibake.** Meta writes text as UTF-8 bytes escaped as Latin-1 code points
  ("caf\\u00c3\\u00a9" for "café"), in values, keys and media paths alike. ``fix_text``
  repairs a string that round-trips, ``fix_strings`` every string of a JSON value.
- **Two folder layouts.** Older exports hold their files from the root (``posts/…``,
  ``content/…``); newer ones below an activity folder (``your_facebook_activity/posts/…``,
  ``your_instagram_activity/content/…``), and a re-zipped extraction adds a top folder.
  Files are found by name anywhere in the tree (``entry_pattern``, ``both_layouts``,
  ``matching``), never at a fixed path.
- **Lists.** A file is a bare array or an object whose keys hold arrays (``relationships_
  followers``, ``comments_v2``, Threads' ``text_post_app_…``): ``iter_items`` streams the
  objects of either, strings repaired.
- **Media.** A ``uri`` names a file inside the export, relative to its root (or already
  prefixed by the activity folder): ``MediaIndex`` repairs it, then looks it up against
  the root, then the activity folder; a file the export lacks becomes a MediaRef that
  fails when opened, naming it (the post is kept, the run reports the file).
- **Times.** Unix seconds (``creation_timestamp``, ``timestamp``) -> ISO-8601 UTC
  (``epoch_iso``); ``string_map_data`` labels (``{"Comment": {"value"}, "Time":
  {"timestamp"}}``) by their lower-cased name (``string_map``), or whatever language the
  labels are in (``LabelledValues``: by English label, else by shape and order); follower
  entries' ``string_list_data`` (``username_of``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from archiver.records import ListKind, MediaRef, Membership, Page, Snapshot, iso_utc

if TYPE_CHECKING:
    from archiver.sync.imports import ExportSource

# The folders newer exports put a person's activity in (facebook.md §6.1: the 2023
# "your_activity_across_facebook" generation too).
ACTIVITY_DIRS = ("your_instagram_activity", "your_facebook_activity", "your_activity_across_facebook")
_ACTIVITY_DIR = re.compile(r"(?:^|/)(" + "|".join(ACTIVITY_DIRS) + r")/")

_VIDEO_EXT = {".mp4", ".mov", ".m4v", ".webm", ".3gp"}
_MIME_BY_EXT = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
                ".gif": "image/gif", ".heic": "image/heic", ".mp4": "video/mp4", ".m4v": "video/mp4"}


# --------------------------------------------------------------------------- text


def fix_text(text: str) -> str:
    """Undo Meta's mis-encoding: UTF-8 bytes written as Latin-1 code points.

    "caf\\u00c3\\u00a9" -> "café", "\\u00f0\\u009f\\u0098\\u0080" -> "😀". Only a string
    that round-trips (every character below U+0100 and the bytes valid UTF-8) is
    changed: correct text ("café" written properly, or a real emoji) stays as it is.
    """
    if not isinstance(text, str) or text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def fix_strings(value: Any) -> Any:
    """``fix_text`` applied to every string (keys too) of a JSON value."""
    if isinstance(value, str):
        return fix_text(value)
    if isinstance(value, dict):
        return {fix_text(k): fix_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fix_strings(v) for v in value]
    return value


def clean_text(value: Any) -> str | None:
    """A value as repaired, stripped text; None for nothing or blanks."""
    if value is None:
        return None
    value = fix_text(str(value)).strip()
    return value or None


# --------------------------------------------------------------------------- finding files


def entry_pattern(*paths: str) -> re.Pattern[str]:
    """Entries whose name ends in one of ``paths`` (regular expressions of whole path
    segments, case-insensitive), so an export extracted into (or re-zipped with) a top
    folder is still found."""
    return re.compile(r"(?:^|/)(?:" + "|".join(paths) + r")$", re.I)


def both_layouts(activity_dir: str, path: str) -> re.Pattern[str]:
    """``path`` below ``activity_dir`` (the newer layout) or from the root (the older)."""
    return entry_pattern(f"{re.escape(activity_dir)}/{path}", path)


def matching(source: ExportSource, pattern: re.Pattern[str], bare: str | None = None) -> list[str]:
    """Entries matching ``pattern``, in number order (followers_2 after followers_1,
    followers_10 after both). ``bare``: the file name a lone JSON file (one list saved on
    its own) is taken under."""
    names = source.names()
    found = [n for n in names if pattern.search(n)]
    if not found and bare and len(names) == 1 and re.fullmatch(bare, PurePosixPath(names[0]).name, re.I):
        found = names
    return sorted(found, key=lambda n: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", n)])


# --------------------------------------------------------------------------- reading lists


def _first_byte(source: ExportSource, name: str) -> bytes:
    with source.open(name) as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1]


def list_prefixes(source: ExportSource, name: str, wrappers: Iterable[str] = ()) -> list[str] | None:
    """ijson prefixes of the item lists of one entry: ["item"] for a top-level array, or
    "<key>.item" for the top-level keys that hold an array (the wrapped layouts): those
    named in ``wrappers`` when there are any, else every one (wrappers get renamed).
    None when the entry is neither (a layout the reader does not know). A damaged entry
    raises the core's ExportFileError naming the file, the entry and the byte."""
    first = _first_byte(source, name)
    if first == b"[":
        return ["item"]
    if first != b"{":
        return None
    keys: list[str] = []
    for prefix, event, _value in source.parse_json(name):
        if event == "start_array" and prefix and "." not in prefix:
            keys.append(prefix)
    known = [k for k in keys if k in set(wrappers)]
    return [f"{k}.item" for k in (known or keys)] or None


def iter_items(source: ExportSource, name: str, report: Callable[[str, str], None], what: str,
               wrappers: Iterable[str] = ()) -> Iterator[dict]:
    """Every object in the entry's list(s), every string (keys too) repaired. A
    non-object is reported and skipped; an entry of an unknown shape is reported once and
    gives nothing. Streamed: a list bigger than memory goes through."""
    prefixes = list_prefixes(source, name, wrappers)
    if prefixes is None:
        report(f"{what} in {name}", f"{source.path}: {name} is not a JSON list of {what} this importer knows "
               "(the export layout may have changed: please report it)")
        return
    for prefix in prefixes:
        for position, item in enumerate(source.iter_json(name, prefix)):
            if isinstance(item, dict):
                yield fix_strings(item)
            else:
                report(f"{what} item {position} in {name}",
                       f"expected an object, found {type(item).__name__} {str(item)[:60]!r}")


class ExportReading:
    """One import's reading of the files of an export: the entries' items through
    ``iter_items`` (a damaged entry is reported and the import goes on), how many could be
    read (``readable``: none means the layout is one this importer does not know), and the
    follower-like lists as dated snapshots streamed to the writer."""

    def __init__(self, source: ExportSource, ctx: Any, wrappers: Iterable[str] = ()) -> None:
        self.source, self.ctx, self.wrappers = source, ctx, tuple(wrappers)
        self.readable = 0

    def items(self, name: str, what: str) -> Iterator[dict]:
        """The items of one entry; a damaged entry is reported and the import goes on."""
        from archiver.sync.imports import ExportFileError

        try:
            for item in iter_items(self.source, name, self.ctx.report, what, self.wrappers):
                self.readable += 1
                yield item
        except ExportFileError as error:
            self.ctx.report(f"{what} in {name}", str(error))

    def snapshot_page(self, kind: ListKind, names: list[str], membership_of: Callable[[dict], Membership | None],
                      no_member: str) -> Page | None:
        """The page of one list (followers, following, friends …) read from ``names`` as a
        dated snapshot, None when none of them is a list this importer knows (a list
        missing from this export says nothing about who left). ``membership_of`` turns an
        item into a member; an item it cannot (None) is reported as ``no_member``."""
        ctx, source = self.ctx, self.source
        unreadable = [n for n in names if self._list_prefixes(n) is None]
        for name in unreadable:
            ctx.report(f"{kind} in {name}", f"{source.path}: {name} is not a {kind} list this importer knows "
                       "(the export layout may have changed: please report it)")
        names = [n for n in names if n not in unreadable]
        if not names:
            return None
        self.readable += 1
        snapshot = Snapshot(kind, taken_at(source, names), [])

        def members() -> Iterator[Membership]:
            """Streams the members. A skipped entry or a damaged file makes the list
            partial: the snapshot is then marked incomplete before the writer diffs it
            (it stages every member first), so nobody is taken for lost on its word."""
            errors_before = len(ctx.errors)
            for name in names:
                for position, item in enumerate(self.items(name, kind)):
                    membership = membership_of(item)
                    if membership is None:
                        ctx.report(f"{kind} entry {position} in {name}", no_member)
                        continue
                    yield membership
            if len(ctx.errors) > errors_before:
                snapshot.complete = False

        snapshot.members = members()
        return Page(f"export:{kind}", [snapshot])

    def _list_prefixes(self, name: str) -> list[str] | None:
        """``list_prefixes``, None for a damaged entry as for an unknown one."""
        from archiver.sync.imports import ExportFileError

        try:
            return list_prefixes(self.source, name, self.wrappers)
        except ExportFileError:
            return None


# --------------------------------------------------------------------------- media files


class MediaIndex:
    """Finds the entry a media ``uri`` names.

    The ``uri`` is repaired first (Meta's mojibake is in paths too, while the zip's entry
    names are real UTF-8), then looked up as written, against the export's root (the
    folder above an activity folder, when the export sits below a top folder), against
    the activity folder, and last as the tail of any entry. The spelling as written is
    tried after the repaired one. Only entries the safe opener listed are ever matched,
    so a ``uri`` with ``..`` or an absolute path finds nothing.
    """

    def __init__(self, source: ExportSource) -> None:
        self.source = source
        names = source.names()
        self._names = set(names)
        roots: dict[str, None] = {}
        activity_dirs: dict[str, None] = {}
        for name in names:
            found = _ACTIVITY_DIR.search(name)
            if found:
                roots.setdefault(name[:found.start(1)])
                activity_dirs.setdefault(name[:found.end()])
        self._roots = sorted(roots, key=len)                  # shallowest first
        self._activity_dirs = sorted(activity_dirs, key=len)
        self._by_tail: dict[str, str] | None = None

    def resolve(self, uri: str) -> str | None:
        """The entry name of the file ``uri`` names, or None when the export lacks it."""
        repaired = fix_text(uri)
        for spelling in dict.fromkeys((repaired, uri)):
            found = self._lookup(spelling.strip())
            if found is not None:
                return found
        return None

    def _lookup(self, uri: str) -> str | None:
        if not uri or uri.startswith("/") or "\\" in uri or ".." in uri.split("/"):
            return None
        for candidate in (uri, *(root + uri for root in self._roots), *(d + uri for d in self._activity_dirs)):
            if candidate in self._names:
                return candidate
        if self._by_tail is None:
            self._by_tail = {}
            for name in sorted(self._names, key=len):
                parts = name.split("/")
                for i in range(1, len(parts)):
                    self._by_tail.setdefault("/".join(parts[i:]), name)
        return self._by_tail.get(uri)

    def ref(self, uri: str, role: str, position: int) -> MediaRef:
        """A MediaRef that opens the file inside the export; a file the export lacks
        fails when opened, with a message that names it (recorded on the post)."""
        name = self.resolve(uri)
        named = fix_text(uri)
        # Meta splits a big download in several zips, and a file may be in another one.
        hint = "" if self.source.kind == "parts" else (
            "if the download came in several parts (zips), put them all in one folder and import that folder")
        opener = self.source.opener(name, named=named, named_in="the export", hint=hint)
        # The entry name is the file's address: unique per file, and never a secret.
        return MediaRef(url=name or named, role=role, position=position, mime_hint=mime_hint(named), opener=opener)


def mime_hint(uri: str) -> str | None:
    """The type a file name's extension says (a .mov or .webm video says nothing sure)."""
    return _MIME_BY_EXT.get(PurePosixPath(uri).suffix.lower())


def media_role(uri: str) -> str:
    """"video" or "image", by the file name's extension."""
    return "video" if PurePosixPath(uri).suffix.lower() in _VIDEO_EXT else "image"


# --------------------------------------------------------------------------- posts


def media_items(item: dict) -> list | None:
    """The media list of a post (``{"media": [...]}``), or the item itself when it is a
    lone media item (``{"uri", "creation_timestamp", "title"}``: stories, some reels);
    None when it is neither."""
    media = item.get("media")
    if media is None and "uri" in item:
        media = [item]
    return media if isinstance(media, list) else None


def post_text(item: dict, media: list) -> str | None:
    """A post's text: the post-level ``title`` (a carousel's), else a single item's
    ``title`` (Instagram's posts_1.json and Threads' threads_and_replies.json alike)."""
    text = clean_text(item.get("title"))
    if text is None and len(media) == 1 and isinstance(media[0], dict):
        text = clean_text(media[0].get("title"))
    return text


# --------------------------------------------------------------------------- times and labels


def epoch_iso(value: Any) -> str | None:
    """Unix seconds (number or numeric string) -> ISO-8601 UTC; anything else None."""
    if isinstance(value, bool) or value in (None, "", 0):
        return None
    try:
        return iso_utc(int(float(value)))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def string_map(item: dict) -> dict[str, dict] | None:
    """``string_map_data`` by lower-cased label (``{"comment": {"value": …}, "time":
    {"timestamp": …}}``); None when the item has none. Labels are localized in some
    exports (threads.md §6.1): a caller asks for the English ones and copes without."""
    data = item.get("string_map_data")
    if not isinstance(data, dict):
        return None
    return {str(k).lower(): v for k, v in data.items() if isinstance(v, dict)}


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,}$")
_DATE = re.compile(r"^\d{1,4}[-./]\d{1,2}[-./]\d{1,4}$")
_NOT_TEXT = {"true", "false", "yes", "no"}


class LabelledValues:
    """``string_map_data`` read without trusting the language of its labels.

    Meta writes the labels in the account's language ("Name", "Navn", "Nom" …; threads.md
    §6.1), always in the same order. ``labels`` are the English ones the caller knows:
    when the item has any of them, values are found by label only (as before); when it
    has none (``localized``), by their shape and place: ``text(label, position)`` is the
    ``position``-th plain text value (e-mail addresses, phone numbers, dates, yes/no and
    links are not plain text: private data is never taken for a name), ``link(label)``
    the first link (``href`` or a value that is one), ``time(label)`` the first
    ``timestamp``."""

    def __init__(self, item: dict, labels: Iterable[str] = ()):
        data = item.get("string_map_data")
        entries = [(str(k), v) for k, v in data.items() if isinstance(v, dict)] if isinstance(data, dict) else []
        self.present = isinstance(data, dict)
        self.by_label = {label.lower(): value for label, value in entries}
        self.localized = not any(label in self.by_label for label in labels)
        self.texts: list[str] = []
        self.links: list[str] = []
        self.times: list[int] = []
        for _label, entry in entries:
            value = clean_text(entry.get("value"))
            href = clean_text(entry.get("href"))
            if href or (value and value.startswith(("https://", "http://"))):
                self.links.append(href or value or "")
            elif value and not (_EMAIL.match(value) or _PHONE.match(value) or _DATE.match(value)
                                or value.lower() in _NOT_TEXT):
                self.texts.append(value)
            stamp = entry.get("timestamp")
            if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) and 0 < stamp < 2**42 and not value:
                self.times.append(int(stamp))

    def text(self, label: str, position: int | None = None) -> str | None:
        if label in self.by_label:
            return clean_text(self.by_label[label].get("value"))
        if not self.localized or position is None or position >= len(self.texts):
            return None
        return self.texts[position]

    def link(self, label: str) -> str | None:
        if label in self.by_label:
            entry = self.by_label[label]
            return clean_text(entry.get("href")) or clean_text(entry.get("value"))
        return self.links[0] if self.localized and self.links else None

    def time(self, label: str) -> str | None:
        if label in self.by_label:
            return epoch_iso(self.by_label[label].get("timestamp"))
        return epoch_iso(self.times[0]) if self.localized and self.times else None


def string_list_entry(item: dict) -> dict:
    """The first ``string_list_data`` entry of a list item (``{"href", "value",
    "timestamp"}``), or {}."""
    entries = item.get("string_list_data")
    return entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}


def username_of(item: dict) -> str | None:
    """The user name of a followers / following entry: ``value``, then ``title``, then
    the last path segment of ``href`` (instagram.md §6, threads.md §6.3), without "@"."""
    data = string_list_entry(item)
    name = clean_text(data.get("value")) or clean_text(item.get("title"))
    if not name:
        href = clean_text(data.get("href"))
        if href:
            name = href.rstrip("/").rsplit("/", 1)[-1] or None
    return name.lstrip("@") if name else None


# --------------------------------------------------------------------------- when the export was made


def taken_at(source: ExportSource, names: list[str]) -> str:
    """When the export was made: the newest modification time of the list files inside
    it (Meta stamps each zip entry when it builds the export; an extracted folder keeps
    those times), else the export file's own modification time."""
    newest = None
    for name in names:
        moment = source.modified_at(name)
        if moment is not None and (newest is None or moment > newest):
            newest = moment
    if newest is None:
        newest = dt.datetime.fromtimestamp(os.stat(source.path).st_mtime, dt.timezone.utc)
    return iso_utc(newest)
