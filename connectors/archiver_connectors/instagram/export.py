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

Meta's mojibake, the wrapped lists, media ``uri`` resolution and the timestamp
conventions are shared with Facebook's and Threads' exports: archiver_connectors.meta.export.

Big lists (followers, following) are streamed with ijson, never loaded whole.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Iterator

from archiver.records import (
    Comment,
    ListKind,
    Membership,
    Page,
    PageBuffer,
    Person,
    Post,
    Profile,
)
from archiver.sync.runner import RunFailed
from archiver_connectors.meta.export import (
    ExportReading,
    LabelledValues,
    MediaIndex,
    both_layouts,
    entry_pattern,
    epoch_iso,
    matching,
    media_items,
    media_role,
    post_text,
    string_list_entry,
    username_of,
)

PAGE_SIZE = 50
PROFILE_URL = "https://www.instagram.com/{}"

# Entries that identify an Instagram export, by the end of their name (see
# meta.export.entry_pattern: a top folder above the export does not hide them).


def _content(file: str) -> re.Pattern[str]:
    return entry_pattern(f"your_instagram_activity/(?:content|media)/{file}", f"content/{file}")


POSTS_FILE = _content(r"posts_\d+\.json")
REELS_FILE = _content(r"reels\.json")
STORIES_FILE = _content(r"stories\.json")
FOLLOWERS_FILE = both_layouts("connections", r"followers_and_following/followers(?:_\d+)?\.json")
FOLLOWING_FILE = both_layouts("connections", r"followers_and_following/following(?:_\d+)?\.json")
COMMENTS_FILE = entry_pattern(r"comments/(?:post_comments(?:_\d+)?|reels_comments)\.json")
PROFILE_FILE = both_layouts("personal_information", r"personal_information/personal_information\.json")
# Not the threads/ folder: a Threads-only download may put its files there too (threads.md
# §6; an Instagram download's threads/ folder is the Threads connector's to read).
_ANY_ACTIVITY = entry_pattern(r"your_instagram_activity/(?!threads/).+\.json")
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
# Personal information that is not the audience or the work: never copied to the archive.
_PRIVATE_FIELDS = {"email", "phone", "phone number", "phone confirmed", "email confirmed", "date of birth",
                   "gender", "contact syncing", "password", "address"}


class UnknownLayout(RunFailed):
    """Not (or no longer) an export this module can read. A RunFailed: the run ends with
    this message, recorded and shown without a traceback."""


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


# --------------------------------------------------------------------------- mapping


def post_from_item(item: dict, media_index: MediaIndex, section: str) -> Post:
    """One post, reel or story. ``section`` is "posts", "reels" or "stories".

    Shapes: ``{"media": [...], "title", "creation_timestamp"}`` (a post; the caption is
    the top-level title, or the first item's for a single-item post), or a lone media
    item ``{"uri", "creation_timestamp", "title"}`` (stories, some reels)."""
    media = media_items(item)
    if not media or not all(isinstance(m, dict) for m in media):
        raise ValueError("no media list")
    created_at = epoch_iso(item.get("creation_timestamp")) or epoch_iso(media[0].get("creation_timestamp"))
    if created_at is None:
        # Without its time a post could never be matched to its API twin.
        raise ValueError(f"no usable creation_timestamp ({item.get('creation_timestamp')!r})")
    caption = post_text(item, media)
    refs = []
    for position, entry in enumerate(media):
        uri = entry.get("uri")
        if isinstance(uri, str) and uri.strip():
            refs.append(media_index.ref(uri, media_role(uri), position))
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


def membership_from_item(item: dict) -> Membership | None:
    name = username_of(item)
    if not name:
        return None
    person = Person(native_id=name, handle=name, url=PROFILE_URL.format(name))
    return Membership(person, epoch_iso(string_list_entry(item).get("timestamp")))


def comment_from_item(item: dict, section: str) -> Comment | None:
    """A comment the owner wrote: ``{"string_map_data": {"Comment": {"value"},
    "Media Owner": {"value"}, "Time": {"timestamp"}}}``, the labels in English or in the
    account's language (then read in that order: ``LabelledValues``)."""
    values = LabelledValues(item, ("comment", "media owner", "time"))
    if not values.present:
        return None
    text = values.text("comment", 0)
    if text is None:
        return None
    owner = values.text("media owner", 1)
    return Comment(
        native_id=None,
        text=text,
        created_at=values.time("time"),
        by_owner=True,
        raw={"section": section, "media_owner": owner, **item},
    )


def profile_from_item(item: dict, media_index: MediaIndex) -> Profile | None:
    """``{"string_map_data": {"Username": {"value"}, "Name": …, "Bio": …}, "media_map_data":
    {"Profile Photo": {"uri"}}}``. Contact data (e-mail, phone, birth date) is left out.
    Labels in the account's language are read by shape and order (``LabelledValues``:
    user name, name, bio are its first plain texts); only those three are then kept."""
    values = LabelledValues(item, ("username", "name", "bio"))
    if not values.present:
        return None
    username = values.text("username", 0)
    if not username:
        return None
    avatar = None
    photos = item.get("media_map_data")
    photo = photos.get("Profile Photo") if isinstance(photos, dict) else None
    if not isinstance(photo, dict) and isinstance(photos, dict) and len(photos) == 1:
        photo = next(iter(photos.values()))   # the one picture, whatever its label's language
    if isinstance(photo, dict) and isinstance(photo.get("uri"), str) and photo["uri"].strip():
        avatar = media_index.ref(photo["uri"], "avatar", 0)
    display_name, bio = values.text("name", 1), values.text("bio", 2)
    if values.localized:
        kept: dict = {"username": username, "name": display_name, "bio": bio}
    else:
        kept = {k: v for k, v in item["string_map_data"].items() if str(k).lower() not in _PRIVATE_FIELDS}
    return Profile(
        native_id=None,
        username=username,
        display_name=display_name,
        bio=bio,
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
    media_index = MediaIndex(source)
    reading = ExportReading(source, ctx, _WRAPPERS)
    read = reading.items

    # -- profile
    for name in matching(source, PROFILE_FILE):
        for item in read(name, "profile"):
            profile = profile_from_item(item, media_index)
            if profile is not None:
                yield Page("export:profile", [profile])
                break

    # -- posts, reels, stories
    for section, pattern, bare in (("posts", POSTS_FILE, r"posts_\d+\.json"), ("reels", REELS_FILE, r"reels\.json"),
                                   ("stories", STORIES_FILE, r"stories\.json")):
        posts = PageBuffer(f"export:{section}", PAGE_SIZE)
        for name in matching(source, pattern, bare):
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
    for name in matching(source, COMMENTS_FILE, r"(?:post|reels)_comments(?:_\d+)?\.json"):
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
        if page := reading.snapshot_page(kind, matching(source, pattern, bare), membership_from_item,
                                         "no user name (value, title or href)"):
            yield page

    if reading.readable == 0:
        raise UnknownLayout(
            f"{source.path}: {marker} marks this as an Instagram export, but none of its files could be read "
            "as a layout this importer knows. The export layout may have changed: please report it.")
