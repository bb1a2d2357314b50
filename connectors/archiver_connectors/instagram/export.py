"""Instagram's "Download your information" export (JSON), in every layout the notes know
(shared/platforms/instagram.md §6).

The layout has moved several times, so files are found **by name anywhere in the tree**,
never by a fixed path:

- posts: ``your_instagram_activity/content/posts_1.json`` (newer),
  ``your_instagram_activity/media/posts_1.json`` or ``content/posts_1.json`` (older);
  ``reels.json``, ``stories.json`` and ``profile_photos.json`` beside them;
- followers: ``connections/followers_and_following/followers_1.json`` (+ ``_2``, …), or
  ``followers_and_following/followers_1.json`` (older); following: ``following.json``;
- comments the owner wrote: ``post_comments_1.json`` / ``post_comments.json`` and
  ``reels_comments.json`` (bare arrays or wrapped in ``comments_*_comments``);
- profile: ``personal_information.json``.

What the export lacks: post ids. A post is therefore a ``Post(native_id=None)`` with its
exact ``created_at`` (Unix seconds, the same second the API's ``timestamp`` names); the
writer merges it into the API's row of the same account and time, or keeps it under a
provisional id until an API run names it. Followers come as user names only, with the
date each one followed.

Meta writes text as UTF-8 bytes escaped as Latin-1 code points ("caf\\u00c3\\u00a9"
for "café"); ``fix_text`` repairs every string that round-trips.

Big lists (followers, following) are streamed with ijson, never loaded whole.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import PurePosixPath
from typing import Any, Callable, Iterator

from archiver.records import (
    Comment,
    ListKind,
    MediaRef,
    Membership,
    Page,
    PageBuffer,
    Person,
    Post,
    Profile,
    Snapshot,
    iso_utc,
)
from archiver.sync.runner import RunFailed

PAGE_SIZE = 50
PROFILE_URL = "https://www.instagram.com/{}"

# Entries that identify an Instagram export. Paths are matched at the end of the entry
# name, so an export extracted into (or re-zipped with) a top folder is still found.
_CONTENT_DIR = r"(?:^|/)(?:your_instagram_activity/(?:content|media)|content)/"
_CONNECTIONS_DIR = r"(?:^|/)(?:connections/)?followers_and_following/"
POSTS_FILE = re.compile(_CONTENT_DIR + r"posts_\d+\.json$", re.I)
REELS_FILE = re.compile(_CONTENT_DIR + r"reels\.json$", re.I)
STORIES_FILE = re.compile(_CONTENT_DIR + r"stories\.json$", re.I)
FOLLOWERS_FILE = re.compile(_CONNECTIONS_DIR + r"followers(?:_\d+)?\.json$", re.I)
FOLLOWING_FILE = re.compile(_CONNECTIONS_DIR + r"following(?:_\d+)?\.json$", re.I)
COMMENTS_FILE = re.compile(r"(?:^|/)comments/(?:post_comments(?:_\d+)?|reels_comments)\.json$", re.I)
PROFILE_FILE = re.compile(r"(?:^|/)personal_information/(?:personal_information/)?personal_information\.json$", re.I)
_ANY_ACTIVITY = re.compile(r"(?:^|/)your_instagram_activity/.+\.json$", re.I)
IDENTIFYING = (POSTS_FILE, REELS_FILE, STORIES_FILE, FOLLOWERS_FILE, FOLLOWING_FILE, PROFILE_FILE, _ANY_ACTIVITY)
# A bare JSON file (one list saved on its own) is recognized by these names only. Not a
# lone personal_information.json: a profile alone is little to import, and the name is
# too generic to claim a file another platform may also call so.
_BARE_NAMES = re.compile(r"^(?:posts_\d+|reels|stories|followers_\d+|following|post_comments(?:_\d+)?|"
                         r"reels_comments)\.json$", re.I)

# Wrapper keys seen around the lists (notes §6 and community parsers). Any other key
# holding a list is accepted too: the wrappers have been renamed before.
_WRAPPERS = ("relationships_followers", "relationships_following", "comments_media_comments",
             "comments_reels_comments", "ig_reels_media", "ig_stories", "ig_profile_picture", "profile_user")
_VIDEO_EXT = {".mp4", ".mov", ".m4v", ".webm", ".3gp"}
_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".gif"}
# Personal information that is not the audience or the work: never copied to the archive.
_PRIVATE_FIELDS = {"email", "phone", "phone number", "phone confirmed", "email confirmed", "date of birth",
                   "gender", "contact syncing", "password", "address"}


class UnknownLayout(RunFailed):
    """Not (or no longer) an export this module can read. A RunFailed: the run ends with
    this message, recorded and shown without a traceback."""


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


def _text(value: Any) -> str | None:
    if value is None:
        return None
    value = fix_text(str(value)).strip()
    return value or None


# --------------------------------------------------------------------------- detection


def find_export(source) -> str | None:
    """The name of the entry that marks ``source`` as Instagram's export, or None.

    Names only, nothing is read: cheap enough to ask of every file in the inbox. TikTok's
    (user_data*.json) and Google Takeout's (Takeout/YouTube…/*.csv) exports hold none of
    these names."""
    names = source.names()
    for pattern in IDENTIFYING:
        for name in names:
            if pattern.search(name):
                return name
    if len(names) == 1 and _BARE_NAMES.match(PurePosixPath(names[0]).name):
        return names[0]
    return None


def _matching(source, pattern: re.Pattern, bare: str | None = None) -> list[str]:
    """Entries matching ``pattern``, in number order (followers_2 after followers_1)."""
    names = source.names()
    found = [n for n in names if pattern.search(n)]
    if not found and bare and len(names) == 1 and re.fullmatch(bare, PurePosixPath(names[0]).name, re.I):
        found = names
    return sorted(found, key=lambda n: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", n)])


# --------------------------------------------------------------------------- reading JSON


def _first_byte(source, name: str) -> bytes:
    with source.open(name) as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1]


def _list_prefixes(source, name: str) -> list[str] | None:
    """ijson prefixes of the item lists of one entry: ["item"] for a top-level array, or
    "<key>.item" for every top-level key that holds an array (the wrapped layouts).
    None when the entry is neither (a layout this module does not know). A damaged entry
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
    known = [k for k in keys if k in _WRAPPERS]
    return [f"{k}.item" for k in (known or keys)] or None


def _items(source, name: str, report: Callable[[str, str], None], what: str) -> Iterator[dict]:
    """Every object in the entry's list(s), strings repaired. A non-object is reported
    and skipped; an entry of an unknown shape is reported once and gives nothing."""
    prefixes = _list_prefixes(source, name)
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


# --------------------------------------------------------------------------- media files


class _MediaIndex:
    """Finds the entry a ``uri`` names. ``uri`` is relative to the export root, which may
    sit below a top folder in the zip; only entries the safe opener listed are ever
    matched, so a ``uri`` with ``..`` or an absolute path finds nothing."""

    def __init__(self, source) -> None:
        self.source = source
        self._names = set(source.names())
        self._by_tail: dict[str, str] | None = None

    def resolve(self, uri: str) -> str | None:
        uri = uri.strip()
        if not uri or uri.startswith("/") or "\\" in uri or ".." in uri.split("/"):
            return None
        if uri in self._names:
            return uri
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
        opener = self.source.opener(name, named=uri, named_in="the export")
        # The entry name is the file's address: unique per file, and never a secret.
        return MediaRef(url=name or uri, role=role, position=position, mime_hint=_mime_hint(uri), opener=opener)


def _mime_hint(uri: str) -> str | None:
    ext = PurePosixPath(uri).suffix.lower()
    if ext in _VIDEO_EXT:
        return "video/mp4" if ext in (".mp4", ".m4v") else None
    return {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
            ".gif": "image/gif", ".heic": "image/heic"}.get(ext)


def _role(uri: str) -> str:
    return "video" if PurePosixPath(uri).suffix.lower() in _VIDEO_EXT else "image"


# --------------------------------------------------------------------------- mapping


def _timestamp(value: Any) -> str | None:
    """Unix seconds (number or numeric string) -> ISO-8601 UTC; anything else None."""
    if isinstance(value, bool) or value in (None, "", 0):
        return None
    try:
        return iso_utc(int(float(value)))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def post_from_item(item: dict, media_index: _MediaIndex, section: str) -> Post:
    """One post, reel or story. ``section`` is "posts", "reels" or "stories".

    Shapes: ``{"media": [...], "title", "creation_timestamp"}`` (a post; the caption is
    the top-level title, or the first item's for a single-item post), or a lone media
    item ``{"uri", "creation_timestamp", "title"}`` (stories, some reels)."""
    media = item.get("media")
    if media is None and "uri" in item:
        media = [item]
    if not isinstance(media, list) or not media or not all(isinstance(m, dict) for m in media):
        raise ValueError("no media list")
    created_at = _timestamp(item.get("creation_timestamp")) or _timestamp(media[0].get("creation_timestamp"))
    if created_at is None:
        # Without its time a post could never be matched to its API twin.
        raise ValueError(f"no usable creation_timestamp ({item.get('creation_timestamp')!r})")
    caption = _text(item.get("title"))
    if caption is None and len(media) == 1:
        caption = _text(media[0].get("title"))
    refs = []
    for position, entry in enumerate(media):
        uri = entry.get("uri")
        if isinstance(uri, str) and uri.strip():
            refs.append(media_index.ref(uri, _role(uri), position))
    if section == "reels":
        kind = "reel"
    elif section == "stories":
        kind = "story"
    elif len(media) > 1:
        kind = "carousel"
    else:
        kind = refs[0].role if refs else "image"
    return Post(native_id=None, created_at=created_at, kind=kind, text=caption, media=refs,
                raw={"section": section, **item})


def username_of(item: dict) -> str | None:
    """The user name of a followers / following entry: ``value``, then ``title``, then
    the last path segment of ``href`` (notes §6)."""
    entries = item.get("string_list_data")
    data = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}
    name = _text(data.get("value")) or _text(item.get("title"))
    if not name:
        href = _text(data.get("href"))
        if href:
            name = href.rstrip("/").rsplit("/", 1)[-1] or None
    return name.lstrip("@") if name else None


def membership_from_item(item: dict) -> Membership | None:
    name = username_of(item)
    if not name:
        return None
    entries = item.get("string_list_data")
    data = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}
    person = Person(native_id=name, handle=name, url=PROFILE_URL.format(name))
    return Membership(person, _timestamp(data.get("timestamp")))


def comment_from_item(item: dict, section: str) -> Comment | None:
    """A comment the owner wrote: ``{"string_map_data": {"Comment": {"value"},
    "Media Owner": {"value"}, "Time": {"timestamp"}}}``."""
    data = item.get("string_map_data")
    if not isinstance(data, dict):
        return None
    fields = {str(k).lower(): v for k, v in data.items() if isinstance(v, dict)}
    text = _text((fields.get("comment") or {}).get("value"))
    if text is None:
        return None
    owner = _text((fields.get("media owner") or {}).get("value"))
    return Comment(
        native_id=None,
        text=text,
        created_at=_timestamp((fields.get("time") or {}).get("timestamp")),
        by_owner=True,
        raw={"section": section, "media_owner": owner, **item},
    )


def profile_from_item(item: dict, media_index: _MediaIndex) -> Profile | None:
    """``{"string_map_data": {"Username": {"value"}, "Name": …, "Bio": …}, "media_map_data":
    {"Profile Photo": {"uri"}}}``. Contact data (e-mail, phone, birth date) is left out."""
    data = item.get("string_map_data")
    if not isinstance(data, dict):
        return None
    fields = {str(k).lower(): v.get("value") for k, v in data.items() if isinstance(v, dict)}
    username = _text(fields.get("username"))
    if not username:
        return None
    avatar = None
    photos = item.get("media_map_data")
    photo = photos.get("Profile Photo") if isinstance(photos, dict) else None
    if isinstance(photo, dict) and isinstance(photo.get("uri"), str) and photo["uri"].strip():
        avatar = media_index.ref(photo["uri"], "avatar", 0)
    kept = {k: v for k, v in data.items() if str(k).lower() not in _PRIVATE_FIELDS}
    return Profile(
        native_id=None,
        username=username,
        display_name=_text(fields.get("name")),
        bio=_text(fields.get("bio")),
        url=PROFILE_URL.format(username),
        avatar=avatar,
        raw={"string_map_data": kept},
    )


# --------------------------------------------------------------------------- the import


def export_pages(source, ctx) -> Iterator[Page]:
    """Pages of records from one export. No stream state: a re-import merges into the
    same rows, and a finished import is recorded by its sha256 so it is skipped later."""
    marker = find_export(source)
    if marker is None:
        raise UnknownLayout(
            f"{source.path}: no Instagram export files found (looked for posts_1.json, followers_1.json, "
            "following.json, personal_information.json … anywhere inside). Is this Instagram's "
            "\"Download your information\" export in JSON format (not HTML)?")
    from archiver.sync.imports import ExportFileError

    media_index = _MediaIndex(source)
    readable = 0

    def read(name: str, what: str) -> Iterator[dict]:
        """The items of one entry; a damaged entry is reported and the import goes on."""
        nonlocal readable
        try:
            for item in _items(source, name, ctx.report, what):
                readable += 1
                yield item
        except ExportFileError as error:
            ctx.report(f"{what} in {name}", str(error))

    # -- profile
    for name in _matching(source, PROFILE_FILE):
        for item in read(name, "profile"):
            profile = profile_from_item(item, media_index)
            if profile is not None:
                yield Page("export:profile", [profile])
                break

    # -- posts, reels, stories
    for section, pattern, bare in (("posts", POSTS_FILE, r"posts_\d+\.json"), ("reels", REELS_FILE, r"reels\.json"),
                                   ("stories", STORIES_FILE, r"stories\.json")):
        posts = PageBuffer(f"export:{section}", PAGE_SIZE)
        for name in _matching(source, pattern, bare):
            for item in read(name, section):
                try:
                    post = post_from_item(item, media_index, section)
                except Exception as error:  # one bad item is reported and skipped
                    ctx.report(f"{section} item {item.get('creation_timestamp', '?')} in {name}",
                               f"{type(error).__name__}: {error}")
                    continue
                if page := posts.add(post):
                    yield page
        yield from posts.rest()

    # -- comments the owner wrote
    comments = PageBuffer("export:comments", PAGE_SIZE * 10)
    for name in _matching(source, COMMENTS_FILE, r"(?:post|reels)_comments(?:_\d+)?\.json"):
        section = "reels" if "reels" in PurePosixPath(name).name.lower() else "posts"
        for item in read(name, "comments"):
            comment = comment_from_item(item, section)
            if comment is None:
                ctx.report(f"comment in {name}", "no comment text")
                continue
            if page := comments.add(comment):
                yield page
    yield from comments.rest()

    # -- followers and following: one dated snapshot each, streamed
    sections: tuple[tuple[ListKind, re.Pattern[str], str], ...] = (("followers", FOLLOWERS_FILE, r"followers_\d+\.json"),
                                                                  ("following", FOLLOWING_FILE, r"following\.json"))
    for kind, pattern, bare in sections:
        names = _matching(source, pattern, bare)
        if not names:
            continue  # a section missing from this export says nothing about who left
        unreadable = [n for n in names if _safe_list_prefixes(source, n) is None]
        for name in unreadable:
            ctx.report(f"{kind} in {name}", f"{source.path}: {name} is not a {kind} list this importer knows "
                       "(the export layout may have changed: please report it)")
        names = [n for n in names if n not in unreadable]
        if not names:
            continue
        readable += 1

        snapshot = Snapshot(kind, taken_at(source, names), [])

        def members(names=names, kind=kind, snapshot=snapshot):
            """Streams the members. A skipped entry or a damaged file makes the list
            partial: the snapshot is then marked incomplete before the writer diffs it
            (it stages every member first), so nobody is taken for lost on its word."""
            errors_before = len(ctx.errors)
            for name in names:
                for position, item in enumerate(read(name, kind)):
                    membership = membership_from_item(item)
                    if membership is None:
                        ctx.report(f"{kind} entry {position} in {name}", "no user name (value, title or href)")
                        continue
                    yield membership
            if len(ctx.errors) > errors_before:
                snapshot.complete = False

        snapshot.members = members()
        yield Page(f"export:{kind}", [snapshot])

    if readable == 0:
        raise UnknownLayout(
            f"{source.path}: {marker} marks this as an Instagram export, but none of its files could be read "
            "as a layout this importer knows. The export layout may have changed: please report it.")


def _safe_list_prefixes(source, name: str) -> list[str] | None:
    from archiver.sync.imports import ExportFileError

    try:
        return _list_prefixes(source, name)
    except ExportFileError:
        return None


def taken_at(source, names: list[str]) -> str:
    """When the export was made: the newest modification time of the list files inside
    it (Meta stamps each zip entry when it builds the export; an extracted folder keeps
    those times), else the export file's own modification time."""
    newest = None
    for name in names:
        moment = _entry_time(source, name)
        if moment is not None and (newest is None or moment > newest):
            newest = moment
    if newest is None:
        newest = dt.datetime.fromtimestamp(os.stat(source.path).st_mtime, dt.timezone.utc)
    return iso_utc(newest)


def _entry_time(source, name: str) -> dt.datetime | None:
    # The core's ExportSource does not expose entry times yet (see the report); read what
    # the container keeps, defensively: a zip's ZipInfo, a tar's TarInfo or a folder's Path.
    entry = getattr(source, "_entries", {}).get(name)
    handle: Any = getattr(entry, "handle", None)
    try:
        if hasattr(handle, "date_time"):  # zipfile.ZipInfo: local time, no zone; read as UTC
            year, month, day, hour, minute, second = handle.date_time
            return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.timezone.utc)
        if hasattr(handle, "mtime"):  # tarfile.TarInfo
            return dt.datetime.fromtimestamp(handle.mtime, dt.timezone.utc)
        if isinstance(handle, os.PathLike):
            return dt.datetime.fromtimestamp(os.stat(handle).st_mtime, dt.timezone.utc)
    except (OSError, ValueError, OverflowError, TypeError):
        return None
    return None
