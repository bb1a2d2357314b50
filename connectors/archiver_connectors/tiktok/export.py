"""TikTok's "Download your data" export (JSON), in every layout the notes describe.

- ``user_data_tiktok.json`` (newer) or ``user_data.json`` (older), bare or in a zip.
- Older keys ``Activity`` / ``Video`` and newer ``Your Activity`` / ``Post``; any list
  may be ``null``; numbers often come as strings; empty free text is ``"N/A"``.
- Older posts link to the video by id; newer ones hold direct, signed, expiring links to
  the media files and no id at all: the files are downloaded during the import, and the
  writer matches the post to its API twin by creation time.

Big lists (followers, following) are streamed with ijson, never loaded whole.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any, Iterator

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
    visibility,
)
from archiver.sync.runner import RunFailed
from archiver_connectors.tiktok.visibility import VISIBILITY_WORDS

DATA_FILES = ("user_data_tiktok.json", "user_data.json")
TOP_KEYS = {"Activity", "Your Activity", "Video", "Post", "Profile", "Comment"}
PAGE_SIZE = 50

# (old path, new path) as ijson prefixes of the list items.
POSTS = ("Video.Videos.VideoList.item", "Post.Posts.VideoList.item")
FOLLOWERS = ("Activity.Follower List.FansList.item", "Your Activity.Follower.FansList.item")
FOLLOWING = ("Activity.Following List.Following.item", "Your Activity.Following.Following.item")
COMMENTS = ("Comment.Comments.CommentsList.item", "Comment.CommentsList.item")
PROFILE = ("Profile.Profile Information.ProfileMap", "Profile.Profile Info.ProfileMap")

# A share link names the video; a CDN link to the file itself does not (and its path may
# hold other long numbers), so only these hosts and paths count.
_VIDEO_ID = re.compile(r"^https?://(?:[\w-]+\.)*tiktokv?\.com/(?:share/video|@[^/]+/video|v)/(\d{15,20})\b")
_IMAGE_EXT = re.compile(r"\.(jpe?g|png|webp|heic|gif)(\?|$)", re.I)


class UnknownLayout(RunFailed):
    """The file is not (or no longer) an export this module can read. A RunFailed: the run
    ends with this message, recorded and shown without a traceback."""


def find_user_data(source) -> str | None:
    """The entry holding TikTok's user data JSON, if this export is TikTok's."""
    for name in source.names():
        if os.path.basename(name).lower() in DATA_FILES:
            return name
    # A bare JSON file under another name: recognize it by its top-level keys.
    names = source.names()
    if len(names) == 1 and names[0].lower().endswith(".json"):
        if _top_keys(source, names[0]) & TOP_KEYS:
            return names[0]
    return None


def _parse(source, name: str) -> Iterator[tuple[str, str, Any]]:
    """ijson parse events of one entry, read through the core's checked JSON reader (a
    byte-order mark skipped; nesting depth, NUL bytes, UTF-8 and malformed JSON each an
    ExportFileError naming the file, the entry and the byte)."""
    return source.parse_json(name)


def _top_keys(source, name: str, strict: bool = False) -> set[str]:
    """The top-level keys of one JSON entry. ``strict=False`` (sniffing a file that may not
    be ours) answers "none" for anything unreadable; ``strict=True`` (importing a file
    already recognized) lets the reason through: a zip bomb or a truncated file must not
    be reported as "unknown layout"."""
    from archiver.sync.imports import ExportFileError

    keys = set()
    try:
        for prefix, event, value in _parse(source, name):
            if prefix == "" and event == "map_key":
                keys.add(value)
            elif prefix == "" and event in ("start_array", "string", "number"):
                break
    except ExportFileError:
        if strict:
            raise
        return set()
    return keys


def _report_not_object(report, name: str, prefix: str, position: int, item: Any) -> None:
    if report is not None:
        report(f"item {position} of {prefix.removesuffix('.item')} in {name}",
               f"expected an object, found {type(item).__name__} {str(item)[:60]!r}")


class _ListItems:
    """The follower lists' items in one pass shared by their snapshots: the writer reads
    one snapshot's members to the end (or drops them) before it asks for the next page,
    so the lists are handed out in the order the file holds them, each taking its items
    from the same stream. A list's items left unread (the list was in the archive already)
    are skipped by the next list; items of a list found again after the next one began
    (a key given twice) are skipped too."""

    def __init__(self, source, name: str, prefixes: list[str], report):
        self._source, self._name, self._report = source, name, report
        self._prefixes = prefixes
        self._stream: Iterator[tuple[str, Any]] | None = None
        self._pending: tuple[str, Any] | None = None
        self._positions = dict.fromkeys(prefixes, 0)

    def items(self, prefix: str) -> Iterator[dict]:
        """The objects of the list at ``prefix``; one that is not an object is reported."""
        earlier = set(self._prefixes[:self._prefixes.index(prefix)])
        if self._stream is None:
            self._stream = self._source.iter_json_sections(self._name, self._prefixes)
        while True:
            if self._pending is None:
                self._pending = next(self._stream, None)
                if self._pending is None:
                    return
            at, item = self._pending
            if at != prefix and at not in earlier:
                return  # the next list's first item: it stays for that list
            self._pending = None
            if at != prefix:
                continue
            position = self._positions[at]
            self._positions[at] += 1
            if isinstance(item, dict):
                yield item
            else:
                _report_not_object(self._report, self._name, at, position, item)


class _Survey:
    """What one full read of the entry finds, before anything is written: its top-level
    keys, which list containers it holds, which layout's prefix holds each section's
    items, and the owner's profile (one small object)."""

    def __init__(self, source, name: str):
        import ijson

        self.keys: set[str] = set()
        self.containers: set[str] = set()
        self.with_items: dict[str, None] = {}  # in the order the file holds them
        profiles: dict[str, dict] = {}
        item_prefixes = {p for group in (POSTS, FOLLOWERS, FOLLOWING, COMMENTS) for p in group}
        containers = {p.rsplit(".", 2)[0] for p in FOLLOWERS + FOLLOWING}
        events = iter(_parse(source, name))
        for prefix, event, value in events:
            if prefix == "":
                if event == "map_key":
                    self.keys.add(value)
                elif event in ("start_array", "string", "number", "boolean", "null"):
                    break  # not an object: no section of ours
            elif prefix in item_prefixes and event not in ("end_map", "end_array", "map_key"):
                self.with_items.setdefault(prefix)
            elif prefix in containers and event == "start_map":
                self.containers.add(prefix)
            elif prefix in PROFILE and event == "start_map" and prefix not in profiles:
                builder = ijson.ObjectBuilder()
                builder.event(event, value)
                depth = 1
                for _, inner, inner_value in events:
                    builder.event(inner, inner_value)
                    depth += inner in ("start_map", "start_array")
                    depth -= inner in ("end_map", "end_array")
                    if depth == 0:
                        break
                from archiver.sync.imports import plain_values

                profiles[prefix] = plain_values(builder.value)
        self.profile = next((profiles[p] for p in PROFILE if p in profiles), None)

    def prefix(self, prefixes: tuple[str, ...]) -> str | None:
        """The first layout's prefix that holds items (an older export's keys win)."""
        return next((p for p in prefixes if p in self.with_items), None)

    def has_list(self, prefixes: tuple[str, ...]) -> bool:
        """True when the list's container exists (even empty or null): only then is the
        snapshot complete. A list that is ``null`` means "nobody"."""
        return any(p.rsplit(".", 2)[0] in self.containers for p in prefixes)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return None if value in ("", "N/A", "None") else value


def _int(value: Any) -> int | None:
    try:
        return int(str(value).replace(",", "").strip())
    except (TypeError, ValueError):
        return None


def _get(item: dict, *keys: str) -> Any:
    for key in keys:
        if key in item:
            return item[key]
    return None


def _date(item: dict, strict: bool = False) -> str | None:
    """The item's date as ISO-8601 UTC. An unreadable one is None, or with ``strict`` a
    ValueError (a post without a usable date could never be matched to its API twin)."""
    value = _get(item, "Date", "date")
    try:
        return iso_utc(value) if _text(value) else None
    except (TypeError, ValueError):
        if strict:
            raise ValueError(f"unreadable Date {value!r}") from None
        return None


def _visibility(value: Any) -> str | None:
    """WhoCanView -> the archive's visibility; the export's word stays in raw."""
    return visibility(_text(value), VISIBILITY_WORDS)


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


def post_from_item(item: dict) -> Post:
    link_text = _text(_get(item, "Link", "link", "VideoLink")) or ""
    links = [line.strip() for line in link_text.splitlines() if line.strip()]
    native_id = None
    file_links: list[str] = []
    for link in links:
        match = _VIDEO_ID.search(_strip_query(link))
        if match:
            native_id = match.group(1)  # an older export's share link names the video
        else:
            file_links.append(link)  # a direct, signed link to the file itself
    photo = len(file_links) > 1 or any(_IMAGE_EXT.search(_strip_query(u)) for u in file_links)
    refs = [MediaRef(u, "image" if photo else "video", i) for i, u in enumerate(file_links)]
    cover = _text(item.get("CoverImage"))
    if cover:
        refs.append(MediaRef(cover, "cover"))
    # The raw payload is kept without the signed query strings (capability links).
    raw = {k: ("\n".join(_strip_query(u) for u in str(v).splitlines()) if k in ("Link", "CoverImage") and v else v)
           for k, v in item.items()}
    title = _text(item.get("Title"))
    return Post(
        native_id=native_id,
        created_at=_date(item, strict=True),
        kind="photo" if photo else "video",
        title=title,
        text=None,
        url=f"https://www.tiktok.com/video/{native_id}" if native_id else None,
        like_count=_int(item.get("Likes")),
        visibility=_visibility(item.get("WhoCanView")),
        media=refs,
        raw=raw,
    )


def person_from_item(item: dict) -> Person | None:
    name = _text(_get(item, "UserName", "userName", "username"))
    if not name:
        return None
    return Person(native_id=name, handle=name, url=f"https://www.tiktok.com/@{name}", raw={})


def comment_from_item(item: dict) -> Comment | None:
    text = _text(_get(item, "Comment", "comment"))
    if text is None:
        return None
    return Comment(
        native_id=None,
        text=text,
        created_at=_date(item),
        by_owner=True,
        url=_text(_get(item, "Url", "url")),
        raw=item,
    )


def profile_from_map(profile: dict) -> Profile:
    username = _text(profile.get("userName"))
    photo = _text(profile.get("profilePhoto"))
    kept = {k: profile.get(k) for k in ("userName", "bioDescription", "likesReceived", "profilePhoto") if k in profile}
    kept_photo = kept.get("profilePhoto")
    if isinstance(kept_photo, str):  # a signed, expiring link: never stored whole
        kept["profilePhoto"] = _strip_query(kept_photo)
    return Profile(
        native_id=None,
        username=username,
        bio=_text(profile.get("bioDescription")),
        url=f"https://www.tiktok.com/@{username}" if username else None,
        likes=_int(profile.get("likesReceived")),
        avatar=MediaRef(photo, "avatar") if photo and photo.startswith("http") else None,
        # Contact data (e-mail, phone, birth date) is not the audience: it stays out of the archive.
        raw=kept,
    )


def export_pages(source, ctx) -> Iterator[Page]:
    """Pages of records from one export. No stream state: a re-import merges into the
    same rows, and a finished import is recorded by its sha256 so it is skipped later."""
    name = find_user_data(source)
    if name is None:
        raise UnknownLayout(
            f"{source.path}: no TikTok user_data JSON found (looked for {', '.join(DATA_FILES)}). "
            "Is this TikTok's \"Download your data\" export in JSON format?")
    # This reads the whole entry once, so a truncated file or a zip bomb stops the import
    # here, with its reason (which names the file), before anything is written.
    from archiver.sync.imports import ExportFileError

    try:
        survey = _Survey(source, name)
    except ExportFileError as error:
        raise RunFailed(str(error)) from error
    keys = survey.keys
    if not keys & TOP_KEYS:
        raise UnknownLayout(
            f"{source.path}: {name} has none of TikTok's known sections ({', '.join(sorted(TOP_KEYS))}); "
            f"found: {', '.join(sorted(keys)) or 'nothing'}. The export layout may have changed: please report it.")

    if survey.profile:
        yield Page("export:profile", [profile_from_map(survey.profile)])

    # Posts and comments in one more pass, each in the order the file holds them.
    posts_at, comments_at = survey.prefix(POSTS), survey.prefix(COMMENTS)
    posts = PageBuffer("export:posts", PAGE_SIZE)
    comments = PageBuffer("export:comments", PAGE_SIZE * 10)
    positions = {posts_at: 0, comments_at: 0}
    sections = source.iter_json_sections(name, [p for p in (posts_at, comments_at) if p]) \
        if posts_at or comments_at else iter(())
    for prefix, item in sections:
        position = positions[prefix]
        positions[prefix] += 1
        if not isinstance(item, dict):
            _report_not_object(ctx.report, name, prefix, position, item)
        elif prefix == posts_at:
            try:
                post = post_from_item(item)
            except Exception as error:  # one bad item is reported and skipped
                ctx.report(f"post {item.get('Date', '?')} in {name}", f"{type(error).__name__}: {error}")
                continue
            if page := posts.add(post):
                yield page
        else:
            comment = comment_from_item(item)
            if comment is None:
                ctx.report(f"comment {item.get('Date') or item.get('date') or '?'} in {name}", "no comment text")
                continue
            if page := comments.add(comment):
                yield page
    yield from posts.rest()
    yield from comments.rest()

    # Both lists in one more pass, in the file's order, read while they are staged (a
    # list may be millions long).
    taken_at = iso_utc(dt.datetime.fromtimestamp(os.stat(source.path).st_mtime, dt.timezone.utc))
    list_sections: tuple[tuple[ListKind, tuple[str, ...]], ...] = (("followers", FOLLOWERS), ("following", FOLLOWING))
    lists = [(kind, survey.prefix(prefixes)) for kind, prefixes in list_sections
             if survey.has_list(prefixes)]  # a section missing says nothing about who left
    order = list(survey.with_items)
    lists.sort(key=lambda kind_prefix: order.index(kind_prefix[1]) if kind_prefix[1] else -1)
    shared = _ListItems(source, name, [prefix for _, prefix in lists if prefix], ctx.report)
    for kind, prefix in lists:

        def members(prefix=prefix, kind=kind):
            for item in (shared.items(prefix) if prefix else ()):
                person = person_from_item(item)
                if person is None:
                    ctx.report(f"{kind} entry {_get(item, 'Date', 'date') or '?'} in {name}", "no UserName")
                    continue
                yield Membership(person, _date(item))

        yield Page(f"export:{kind}", [Snapshot(kind, taken_at, members())])
