"""Facebook's "Download your information" export (JSON) of a personal profile, in every
folder layout of shared/platforms/facebook.md §6.1; built on archiver_connectors.meta.export.

Files are found **by name anywhere in the tree**, never by a fixed path:

- own posts: ``posts/your_posts.json`` (≤2019, ``{"status_updates": [...]}``),
  ``posts/your_posts_1.json`` (2020–2022, a bare array), the same below
  ``your_activity_across_facebook/`` (2023), ``your_facebook_activity/posts/
  your_posts__check_ins__photos_and_videos_1.json`` (2024+, with ``_2``, ``_3`` …);
- comments the owner wrote: ``comments.json`` (``comments_v2``, or ``comments`` before
  2020) and the group comments (``group_comments_v2``);
- reactions the owner gave: ``posts_and_comments.json`` (``reactions_v2``) or
  ``likes_and_reactions_1.json`` (a bare array);
- friends (``friends_v2``), followers (``followers_v3``), following (``following_v3``);
- profile: ``profile_information.json`` (``profile_v2``).

What the export lacks: ids. A post is a ``Post(native_id=None)`` with its exact
``created_at`` (Unix seconds, the second the Graph API's ``created_time`` names) and the
``post`` text of its first data row: the writer merges it into the API's row of the same
account and time (``/me/posts``), or keeps it under a provisional id until an API run
names it. A comment the owner wrote is a ``Comment(native_id=None, by_owner=True)`` on no
archived post, as Instagram's export gives them. A reaction is a "like" interaction
whose ``target`` is ``reaction:<timestamp>:<digest of the narration>`` (the export names
no post). Friends, followers and following carry display names only: each person is
keyed by the name (``PERSON_PREFIX`` + the name normalised, see ``person_key`` and
docs/schema.md), so a later export with the same names matches the same people.

Meta's mojibake is repaired in every string and in every media ``uri`` before the file
is looked up (``MediaIndex``). A post's file may sit in another part of a download split
in several zips: the parts kept together in one folder are read as one export (the
core's ``open_export``); a file still missing is reported on its post and the import
goes on. An export made in HTML is refused with a message to request it again in JSON.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterator

from archiver.records import (
    Comment,
    Interaction,
    ListKind,
    MediaRef,
    Membership,
    Page,
    PageBuffer,
    Person,
    Post,
    Profile,
    name_key,
)
from archiver.sync.runner import RunFailed
from archiver_connectors.meta.export import (
    ExportReading,
    LabelledValues,
    MediaIndex,
    clean_text,
    entry_pattern,
    epoch_iso,
    fix_strings,
    matching,
    media_role,
)

PAGE_SIZE = 50
PERSON_PREFIX = "name:"
PROFILE_URL = "https://www.facebook.com/{}"

# The folders a post's activity sits in, by generation (facebook.md §6.1).
_ACTIVITY = r"(?:your_facebook_activity/|your_activity_across_facebook/)?"

POSTS_FILE = entry_pattern(
    r"your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_\d+\.json",
    _ACTIVITY + r"posts/your_posts(?:_\d+)?\.json")
COMMENTS_FILE = entry_pattern(_ACTIVITY + r"comments_and_reactions/comments\.json", r"comments/comments\.json")
GROUP_COMMENTS_FILE = entry_pattern(_ACTIVITY + r"groups/(?:your_comments_in_groups|your_group_comments)\.json")
REACTIONS_FILE = entry_pattern(_ACTIVITY + r"comments_and_reactions/(?:posts_and_comments|likes_and_reactions_\d+)\.json",
                               r"likes_and_reactions/posts_and_comments\.json")
FRIENDS_FILE = entry_pattern(r"connections/friends/your_friends\.json", r"friends_and_followers/friends\.json",
                             r"friends/friends\.json")
FOLLOWERS_FILE = entry_pattern(r"connections/followers/people_who_followed_you(?:_\d+)?\.json",
                               r"friends_and_followers/(?:people_who_followed_you|followers)(?:_\d+)?\.json")
FOLLOWING_FILE = entry_pattern(r"connections/followers/who_you(?:'|_)ve_followed(?:_\d+)?\.json",
                               r"friends_and_followers/(?:who_you(?:'|_)ve_followed|following)(?:_\d+)?\.json")
PROFILE_FILE = entry_pattern(r"profile_information/profile_information\.json")

# Names that mark an export as Facebook's (none is in an Instagram or Threads download:
# those hold your_instagram_activity/, followers_and_following/, threads/).
_IDENTIFYING = (POSTS_FILE, COMMENTS_FILE, REACTIONS_FILE,
                entry_pattern(r"connections/friends/your_friends\.json", r"friends_and_followers/friends\.json"),
                FOLLOWERS_FILE, FOLLOWING_FILE, PROFILE_FILE,
                entry_pattern(r"(?:your_facebook_activity|your_activity_across_facebook)/.+\.json"))
# The same export requested in HTML (its pages instead of JSON), and a part of a split
# download that holds media files only.
_HTML = entry_pattern(r"(?:your_facebook_activity|your_activity_across_facebook)/.+\.html",
                      r"posts/your_posts(?:_\d+)?\.html", r"connections/friends/your_friends\.html",
                      r"friends_and_followers/friends\.html", r"profile_information/profile_information\.html")
_MEDIA_ONLY = entry_pattern(r"(?:your_facebook_activity|your_activity_across_facebook)/.+", r"posts/media/.+")

_WRAPPERS = ("status_updates", "comments_v2", "comments", "group_comments_v2", "reactions_v2", "friends_v2",
             "friends", "followers_v3", "followers_v2", "followers", "following_v3", "following_v2", "following")
_LISTS: tuple[tuple[ListKind, re.Pattern[str]], ...] = (
    ("friends", FRIENDS_FILE), ("followers", FOLLOWERS_FILE), ("following", FOLLOWING_FILE))


class UnknownLayout(RunFailed):
    """Not (or no longer) an export this module can read. A RunFailed: the run ends with
    this message, recorded and shown without a traceback."""


# --------------------------------------------------------------------------- detection


def find_export(source) -> str | None:
    """The name of the entry that marks ``source`` as Facebook's export (JSON, or the HTML
    one that is then refused with its reason), or None. Names only, nothing is read."""
    names = source.names()
    for pattern in (*_IDENTIFYING, _HTML):
        for name in names:
            if pattern.search(name):
                return name
    for name in names:
        if _MEDIA_ONLY.search(name):
            return name
    return None


# --------------------------------------------------------------------------- people known by name


def person_key(name: str) -> str:
    """The id of a person the export names only by display name: ``PERSON_PREFIX`` and the
    name folded as ``archiver.records.name_key`` does (docs/schema.md)."""
    return name_key(name, PERSON_PREFIX)


def membership_from_item(item: dict) -> Membership | None:
    """``{"name": "Alice Example", "timestamp": 1609459200}``: the name, and when the
    friendship or the follow began."""
    name = clean_text(item.get("name"))
    if not name:
        return None
    return Membership(Person(native_id=person_key(name), display_name=name), epoch_iso(item.get("timestamp")))


# --------------------------------------------------------------------------- posts


def _without_upload_ip(value):
    """The item without the ``upload_ip`` Meta writes into a photo's metadata."""
    if isinstance(value, dict):
        return {k: _without_upload_ip(v) for k, v in value.items() if k != "upload_ip"}
    if isinstance(value, list):
        return [_without_upload_ip(v) for v in value]
    return value


def post_text(item: dict) -> str | None:
    """The text of the first data row that has ``post`` (facebook.md §6.2: others hold
    only ``update_timestamp``, or there are none), as written; None for none or blanks."""
    for row in item.get("data") or []:
        if isinstance(row, dict) and "post" in row:
            text = row["post"]
            return text if isinstance(text, str) and text.strip() else None
    return None


def post_from_item(item: dict, media_index: MediaIndex) -> Post:
    """One post: ``{"timestamp", "data": [{"post"}, {"update_timestamp"}], "attachments":
    [{"data": [{"media": {"uri"}}, {"external_context": {"url"}}, {"place"}, {"text"} …]}],
    "title"}``. Its files become media; links, places, events, notes and polls stay in
    ``raw``."""
    created_at = epoch_iso(item.get("timestamp"))
    if created_at is None:
        # Without its time a post could never be matched to its API twin.
        raise ValueError(f"no usable timestamp ({item.get('timestamp')!r})")
    data = item.get("data", [])
    if not isinstance(data, list):
        raise ValueError(f"data is a {type(data).__name__}, not a list")
    attachments = item.get("attachments") or []
    if not isinstance(attachments, list):
        raise ValueError(f"attachments is a {type(attachments).__name__}, not a list")
    refs: list[MediaRef] = []
    links = []
    for attachment in attachments:
        for element in (attachment.get("data") or []) if isinstance(attachment, dict) else []:
            if not isinstance(element, dict):
                continue
            media = element.get("media")
            if isinstance(media, dict) and isinstance(media.get("uri"), str) and media["uri"].strip():
                uri = media["uri"]
                refs.append(media_index.ref(uri, media_role(uri), len(refs)))
            context = element.get("external_context")
            if isinstance(context, dict) and clean_text(context.get("url")):
                links.append(clean_text(context.get("url")))
    if len(refs) > 1:
        kind = "carousel"
    elif refs:
        kind = refs[0].role
    else:
        kind = "text"
    raw = _without_upload_ip(item)
    if links:
        raw = {**raw, "links": links}
    return Post(native_id=None, created_at=created_at, kind=kind, text=post_text(item), media=refs, raw=raw)


# --------------------------------------------------------------------------- comments and reactions


def comment_from_item(item: dict, section: str) -> Comment | None:
    """A comment the owner wrote: ``{"timestamp", "data": [{"comment": {"timestamp",
    "comment", "author", "group"}}], "title"}``; None for an entry without its text
    (Facebook keeps some without ``data``)."""
    for row in item.get("data") or []:
        inner = row.get("comment") if isinstance(row, dict) else None
        if not isinstance(inner, dict):
            continue
        text = inner.get("comment")
        if not isinstance(text, str) or not text.strip():
            return None
        created_at = epoch_iso(inner.get("timestamp")) or epoch_iso(item.get("timestamp"))
        return Comment(native_id=None, text=text, created_at=created_at, by_owner=True,
                       raw={"section": section, "title": item.get("title"), "group": inner.get("group"),
                            **({"attachments": item["attachments"]} if item.get("attachments") else {})})
    return None


def reaction_from_item(item: dict) -> Interaction:
    """A reaction the owner gave: ``{"timestamp", "data": [{"reaction": {"reaction":
    "LIKE", "actor"}}], "title"}``. The export names no post, so the target is the time
    and a digest of the narration ("Jane likes Bob's post.", in the account's language):
    the same reaction in a later export is the same row."""
    created_at = epoch_iso(item.get("timestamp"))
    if created_at is None:
        raise ValueError(f"no usable timestamp ({item.get('timestamp')!r})")
    reaction = None
    for row in item.get("data") or []:
        inner = row.get("reaction") if isinstance(row, dict) else None
        if isinstance(inner, dict):
            reaction = clean_text(inner.get("reaction"))
            break
    title = clean_text(item.get("title")) or ""
    digest = hashlib.sha256(title.encode()).hexdigest()[:12]
    return Interaction(kind="like", target=f"reaction:{int(float(item['timestamp']))}:{digest}",
                       created_at=created_at, raw={"reaction": reaction, "title": title or None})


# --------------------------------------------------------------------------- profile


def profile_from_document(document) -> Profile | None:
    """``{"profile_v2": {"name": {"full_name"}, "username", "profile_uri", "intro_bio"}}``,
    or ``profile_v2`` as ``string_map_data`` whose labels are in the account's language
    (read by shape: ``LabelledValues``). Contact data (e-mail, phone, birthday) is never
    copied: the profile keeps the fields it maps and nothing else."""
    inner = document.get("profile_v2", document) if isinstance(document, dict) else document
    if isinstance(inner, list):
        inner = next((x for x in inner if isinstance(x, dict)), None)
    if not isinstance(inner, dict):
        return None
    if "string_map_data" in inner:
        values = LabelledValues(inner, ("name", "full name", "username", "profile", "profile url", "bio"))
        name = values.text("name", 0) or values.text("full name")
        url = values.link("profile") or values.link("profile url")
        bio = values.text("bio", 1)
        username = values.text("username")
    else:
        full = inner.get("name")
        name = clean_text(full.get("full_name") if isinstance(full, dict) else full)
        url = clean_text(inner.get("profile_uri"))
        bio = clean_text(inner.get("intro_bio")) or clean_text(inner.get("about_me"))
        username = clean_text(inner.get("username"))
    if url and not url.startswith(("https://", "http://")):
        url = None
    if not username and url:
        tail = url.rstrip("/").rsplit("/", 1)[-1]
        username = tail if tail and "profile.php" not in tail and "?" not in tail else None
    if not (name or username):
        return None
    return Profile(native_id=None, username=username, display_name=name, bio=bio,
                   url=url or (PROFILE_URL.format(username) if username else None),
                   raw={"profile_v2": {"name": name, "username": username, "profile_uri": url, "bio": bio}})


# --------------------------------------------------------------------------- the import


def export_pages(source, ctx) -> Iterator[Page]:
    """Pages of records from one export. No stream state: a re-import merges into the
    same rows, and a finished import is recorded by its sha256 so it is skipped later."""
    marker = find_export(source)
    if marker is None:
        raise UnknownLayout(
            f"{source.path}: no Facebook export files found (looked for your_posts_1.json, "
            "your_posts__check_ins__photos_and_videos_1.json, comments.json, your_friends.json … anywhere "
            "inside). Is this Facebook's \"Download your information\" export in JSON format?")
    from archiver.sync.imports import ExportFileError

    names = source.names()
    if not any(pattern.search(n) for pattern in _IDENTIFYING for n in names):
        if any(_HTML.search(n) for n in names):
            raise UnknownLayout(
                f"{source.path}: this is Facebook's export in HTML format, which archiver cannot read. Request "
                "it again in Accounts Center → Your information and permissions → Download your information, "
                "choosing Format: JSON (and Date range: All time), then import that file.")
        raise UnknownLayout(
            f"{source.path}: this holds Facebook media files but none of the export's JSON files: it is one part "
            "of a download split in several parts. Put all the parts (the zips) together in one folder and "
            "import that folder (`archiver import FOLDER`): they are read as one export.")

    media_index = MediaIndex(source)
    reading = ExportReading(source, ctx, _WRAPPERS)
    read = reading.items

    # -- profile (a small file: read whole)
    for name in matching(source, PROFILE_FILE):
        try:
            profile = profile_from_document(fix_strings(source.load_json(name)))
        except ExportFileError as error:
            ctx.report(f"profile in {name}", str(error))
            continue
        except Exception as error:  # a profile of a shape this reader does not know
            ctx.report(f"profile in {name}", f"{type(error).__name__}: {error}")
            continue
        if profile is None:
            ctx.report(f"profile in {name}", "no name or user name in it (the layout may have changed)")
            continue
        reading.readable += 1
        yield Page("export:profile", [profile])
        break

    # -- posts
    posts = PageBuffer("export:posts", PAGE_SIZE)
    for name in matching(source, POSTS_FILE):
        for position, item in enumerate(read(name, "posts")):
            try:
                post = post_from_item(item, media_index)
            except Exception as error:  # one bad item is reported and skipped
                ctx.report(f"post {position} ({item.get('timestamp', '?')}) in {name}",
                           f"{type(error).__name__}: {error}")
                continue
            if page := posts.add(post):
                yield page
    yield from posts.rest()

    # -- comments the owner wrote (entries whose text is gone are left out: nothing to keep)
    comments = PageBuffer("export:comments", PAGE_SIZE * 10)
    for section, pattern in (("comments", COMMENTS_FILE), ("group_comments", GROUP_COMMENTS_FILE)):
        for name in matching(source, pattern):
            for position, item in enumerate(read(name, "comments")):
                try:
                    comment = comment_from_item(item, section)
                except Exception as error:  # one bad item is reported and skipped
                    ctx.report(f"comment {position} in {name}", f"{type(error).__name__}: {error}")
                    continue
                if comment is not None and (page := comments.add(comment)):
                    yield page
    yield from comments.rest()

    # -- reactions the owner gave
    reactions = PageBuffer("export:reactions", PAGE_SIZE * 10)
    for name in matching(source, REACTIONS_FILE):
        for position, item in enumerate(read(name, "reactions")):
            try:
                reaction = reaction_from_item(item)
            except Exception as error:  # one bad item is reported and skipped
                ctx.report(f"reaction {position} in {name}", f"{type(error).__name__}: {error}")
                continue
            if page := reactions.add(reaction):
                yield page
    yield from reactions.rest()

    # -- friends, followers, following: one dated snapshot each, streamed
    for kind, pattern in _LISTS:
        if page := reading.snapshot_page(kind, matching(source, pattern), membership_from_item, "no name"):
            yield page

    if reading.readable == 0:
        raise UnknownLayout(
            f"{source.path}: {marker} marks this as a Facebook export, but none of its files could be read "
            "as a layout this importer knows. The export layout may have changed: please report it.")
