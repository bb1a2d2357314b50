"""Mastodon's account archive (Settings → Import and export → Request your archive):
``archive-YYYYMMDDHHMMSS-<hex>.tar.gz``, or the folder it was extracted to
(shared/platforms/mastodon.md §7).

What is inside, and what each becomes:

- ``outbox.json``: an ActivityStreams ``OrderedCollection`` of the owner's activities.
  ``Create`` (its ``object`` a ``Note``, or a ``Question`` for a poll) → a ``Post`` of
  kind "text", or "reply" when ``inReplyTo`` is set; ``Announce`` (a boost; its
  ``object`` is the boosted post's URI) → a ``Post`` of kind "boost". Attachments are
  files inside the archive → ``MediaRef`` with an ``opener``, alt text and metadata.
- ``actor.json``: the owner's ``Person`` → ``Profile`` (avatar from the archive).
- ``likes.json`` / ``bookmarks.json``: ``OrderedCollection`` s of post URIs →
  ``Interaction`` (like / bookmark).

Keys, shared with the API connector so both land in the same rows:

- a post is its **status id**: the last path segment of the Note's ``id``
  (``https://social.example/users/alice/statuses/<id>``); a boost is the status id of
  the Announce activity itself (``…/users/alice/statuses/<id>/activity``) — the API's
  id of the reblog wrapper status;
- a person is ``user@domain`` in lower case, from an actor URI
  (``https://domain/users/user`` or ``https://domain/@user``) or a mention's name;
- text is ``html_to_text(content)`` and a media role ``media_role(mime type)``, both from
  api.py, the same functions the API connector uses (the HTML stays in ``raw``).

Edits: ``updated`` on a Note says the post was edited; the archive holds only the
latest text, so no version is invented here. The writer records a version when a
different text was archived earlier.

The duplicated ``orderedItems`` key (notes §7): some real exports carry the key twice in
the top-level object, first ``[]`` then the real array. Python's ``json`` keeps the last
occurrence, and that is the one Mastodon meant; ijson (which streams, so a big outbox is
never loaded whole) yields the items of both. So the outbox is read in two streaming
passes: the first counts the items of each copy and notes their ids, the second yields
each item unless a *later* copy holds the same id (the later copy wins, as it would for
``json.load``). An item only an earlier copy holds is still imported: nothing is lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from archiver.records import Interaction, MediaRef, Page, PageBuffer, Person, Post, Profile, iso_utc
from archiver.sync.runner import RunFailed

# One mapping for both paths, or a post seen through the API and in an archive would look
# edited (a different text) or get two media rows (a different role): api.py owns them.
from archiver_connectors.mastodon.api import html_to_text, media_role, post_visibility, status_key

PAGE_SIZE = 50              # posts per page (one transaction each, media stored first)
INTERACTIONS_PAGE_SIZE = 500

OUTBOX = "outbox.json"
ACTOR = "actor.json"
LIKES = "likes.json"
BOOKMARKS = "bookmarks.json"
_KNOWN_FILES = (OUTBOX, ACTOR, LIKES, BOOKMARKS)

PUBLIC = {"https://www.w3.org/ns/activitystreams#Public", "as:Public", "Public"}
_MEDIA_DIR = "media_attachments/"
_MIME_BY_EXT = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
                ".webp": "image/webp", ".avif": "image/avif", ".heic": "image/heic", ".mp4": "video/mp4",
                ".webm": "video/webm", ".mov": "video/quicktime", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
                ".oga": "audio/ogg", ".wav": "audio/wav", ".m4a": "audio/mp4", ".flac": "audio/flac"}


class UnknownLayout(RunFailed):
    """Not (or no longer) an archive this module can read: the run ends with this message."""


# --------------------------------------------------------------------------- text and keys


def status_id(uri: Any) -> str | None:
    """The local status id of a status or activity URI: its last path segment, with a
    trailing ``/activity`` (an Announce's or Create's own id) dropped.

    ``https://social.example/users/alice/statuses/113400000000000099/activity`` →
    ``113400000000000099``. Ids are opaque strings, never numbers."""
    if not isinstance(uri, str) or not uri.strip():
        return None
    path = urlsplit(uri.strip()).path.rstrip("/")
    path = path.removesuffix("/activity")
    segment = path.rsplit("/", 1)[-1]
    return segment or None


def status_key_of(uri: Any) -> str | None:
    """The archive's key of the owner's status named by ``uri``: ``<instance host>:<id>``,
    the same key the API gives it (``api.status_key``)."""
    local = status_id(uri)
    host = urlsplit(uri.strip()).hostname if local else None
    return status_key(host, local) if host else None


def acct_from_uri(uri: Any) -> str | None:
    """``user@domain`` (lower case) of an actor URI: ``https://domain/users/user`` or
    ``https://domain/@user``; None for any other shape (never guessed)."""
    if not isinstance(uri, str):
        return None
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    segments = [s for s in parts.path.split("/") if s]
    user = None
    if len(segments) >= 2 and segments[0] == "users":
        user = segments[1]
    elif segments and segments[0].startswith("@") and len(segments[0]) > 1:
        user = segments[0][1:]
    if not user or "@" in user:
        return None
    return f"{user}@{parts.hostname}".lower()


def author_uri_of_status(uri: Any) -> str | None:
    """The actor URI of a Mastodon-shaped status URI (``…/users/bob/statuses/555`` →
    ``…/users/bob``), else None."""
    if not isinstance(uri, str):
        return None
    match = re.match(r"^(https?://[^/]+/users/[^/]+)/statuses/[^/]+", uri.strip())
    return match.group(1) if match else None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def visibility_of(item: dict, actor: str | None) -> str | None:
    """The archive's visibility from ``to`` and ``cc`` (the archive has no visibility
    field; notes §7: Public in ``to`` = Mastodon's public, in ``cc`` = unlisted, the
    followers collection only = "private", only mentioned people = "direct"), through the
    same words as the API's."""
    to, cc = _as_list(item.get("to")), _as_list(item.get("cc"))
    if not to and not cc:
        return None
    if any(a in PUBLIC for a in to):
        word = "public"
    elif any(a in PUBLIC for a in cc):
        word = "unlisted"
    elif any(isinstance(a, str) and a.endswith("/followers") for a in to + cc) or (
            actor and f"{actor}/followers" in to + cc):
        word = "private"
    else:
        word = "direct"
    return post_visibility(word)


# --------------------------------------------------------------------------- the archive's files


def _root_of(source) -> str | None:
    """The folder inside ``source`` that holds the archive's JSON files: "" for the root,
    "archive-…/" when it was packed or extracted with a top folder, None when there is
    no Mastodon file at all. outbox.json decides; else actor.json."""
    names = source.names()
    for wanted in (OUTBOX, ACTOR):
        candidates = [n for n in names if n == wanted or n.endswith("/" + wanted)]
        candidates = [n for n in candidates if n.count("/") <= 1]   # root, or one top folder
        if candidates:
            best = min(candidates, key=lambda n: n.count("/"))
            return best[: -len(wanted)]
    return None


def looks_like_archive(source) -> bool:
    """True when ``source`` is a Mastodon account archive (or its extracted folder).

    An ``outbox.json`` or ``actor.json`` at the root (or under one top folder) whose first
    bytes are ActivityStreams JSON. Other platforms' exports hold no such file, and the
    content check keeps some unrelated "outbox.json" from being claimed."""
    root = _root_of(source)
    if root is None:
        return False
    from archiver.sync.imports import ExportFileError

    for name in (root + OUTBOX, root + ACTOR):
        if name not in source.names():
            continue
        try:
            with source.open(name) as stream:
                head = stream.read(64 * 1024)
        except (ExportFileError, OSError):
            continue
        if (b"activitystreams" in head or b'"OrderedCollection"' in head or b'"orderedItems"' in head
                or b'"preferredUsername"' in head):
            return True
    return False


class _MediaIndex:
    """Finds the archive entry an attachment's ``url`` names.

    The url is relative to the archive root (``media_attachments/files/…``), possibly
    with a leading slash, ``/system/`` or an object-storage bucket before
    ``media_attachments/`` (notes §7): everything before ``media_attachments/`` is dropped.
    Only entries the safe opener listed can ever match, so a url with ``..`` or a link
    entry finds nothing."""

    def __init__(self, source, root: str):
        self.source = source
        self.root = root
        self._names = set(source.names())

    def resolve(self, url: str) -> str | None:
        url = url.strip()
        if not url or "\\" in url or "\x00" in url:
            return None
        if "://" in url:
            url = urlsplit(url).path   # a full URL to the instance's files: its path
        if ".." in url.split("/"):
            return None
        at = url.find(_MEDIA_DIR)
        relative = url[at:] if at >= 0 else url.lstrip("/")
        for candidate in (self.root + relative, relative):
            if candidate in self._names:
                return candidate
        return None

    def ref(self, url: str, role: str, position: int, *, mime: str | None, description: str | None,
            meta: dict | None) -> MediaRef:
        """A MediaRef that opens the file inside the archive; a file the archive lacks (or
        refused as unsafe) fails when opened, with a message naming it: the runner
        records the failure on the post and the import goes on."""
        name = self.resolve(url)
        opener = self.source.opener(name, named=url, named_in=OUTBOX)
        # The entry name is the file's address: unique, stable and never a secret.
        return MediaRef(url=name or url, role=role, position=position, mime_hint=mime, opener=opener,
                        description=description, meta=meta)


def _mime_of(attachment: dict) -> str | None:
    mime = attachment.get("mediaType")
    if isinstance(mime, str) and "/" in mime:
        return mime
    url = attachment.get("url")
    return _MIME_BY_EXT.get(PurePosixPath(url).suffix.lower()) if isinstance(url, str) else None


def _attachment_url(attachment: dict) -> str | None:
    url = attachment.get("url")
    if isinstance(url, dict):     # {"type": "Link", "href": …} on some servers
        url = url.get("href")
    if isinstance(url, list) and url:
        first = url[0]
        url = first.get("href") if isinstance(first, dict) else first
    return url if isinstance(url, str) and url.strip() else None


# --------------------------------------------------------------------------- mapping


def _text_or_none(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _content_of(note: dict) -> str | None:
    content = note.get("content")
    if not isinstance(content, str):
        content_map = note.get("contentMap")
        if isinstance(content_map, dict):
            content = next((v for v in content_map.values() if isinstance(v, str)), None)
    return content if isinstance(content, str) else None


def people_of_note(note: dict) -> list[Person]:
    """The accounts a post mentions (``tag`` entries of type Mention), keyed user@domain."""
    found: dict[str, Person] = {}
    for tag in _as_list(note.get("tag")):
        if not isinstance(tag, dict) or tag.get("type") != "Mention":
            continue
        href = tag.get("href")
        given = tag.get("name")
        name = given if isinstance(given, str) else ""
        acct = None
        match = re.fullmatch(r"@?([^@\s]+)@([^@\s]+)", name.strip())
        if match:
            acct = f"{match.group(1)}@{match.group(2)}".lower()
        acct = acct or acct_from_uri(href)
        if acct and acct not in found:
            found[acct] = Person(native_id=acct, handle=acct, url=href if isinstance(href, str) else None,
                                 raw={"mention": tag})
    return list(found.values())


def post_from_create(activity: dict, media_index: _MediaIndex) -> Post:
    """A ``Create`` activity → the owner's post (kind text, or reply)."""
    note = activity.get("object")
    if not isinstance(note, dict):
        raise ValueError(f"its object is {type(note).__name__}, not a Note")
    native_id = status_key_of(note.get("id"))
    if native_id is None:
        raise ValueError("its Note has no id")
    created_at = iso_utc(note.get("published") or activity.get("published"))
    refs = []
    for position, attachment in enumerate(_as_list(note.get("attachment"))):
        if not isinstance(attachment, dict):
            continue
        url = _attachment_url(attachment)
        if url is None:
            continue
        mime = _mime_of(attachment)
        meta = {key: attachment[key] for key in ("mediaType", "width", "height", "blurhash", "focalPoint")
                if attachment.get(key) is not None}
        refs.append(media_index.ref(url, media_role(mime), position, mime=mime,
                                    description=_text_or_none(attachment.get("name")), meta=meta or None))
    actor = activity.get("actor") or note.get("attributedTo")
    return Post(
        native_id=native_id,
        created_at=created_at,
        kind="reply" if note.get("inReplyTo") else "text",
        # The content warning: what a reader sees before opening the post.
        title=_text_or_none(note.get("summary")),
        text=html_to_text(_content_of(note)),
        url=note.get("url") if isinstance(note.get("url"), str) else note.get("id"),
        visibility=visibility_of(note, actor if isinstance(actor, str) else None),
        media=refs,
        raw={"activity": activity, "edited_at": iso_utc(note.get("updated")) if note.get("updated") else None},
    )


def post_from_announce(activity: dict) -> Post:
    """An ``Announce`` (boost) → a post of kind "boost" keyed by the Announce's own status
    id, pointing at the boosted post's URI (its ``url`` and its ``text``)."""
    native_id = status_key_of(activity.get("id"))
    if native_id is None:
        raise ValueError("the Announce has no id")
    target = activity.get("object")
    if isinstance(target, dict):   # some servers embed the boosted object
        target = target.get("id")
    if not isinstance(target, str) or not target.strip():
        raise ValueError("the Announce names no boosted post")
    target = target.strip()
    return Post(
        native_id=native_id,
        created_at=iso_utc(activity.get("published")),
        kind="boost",
        text=target,
        url=target,
        visibility=visibility_of(activity, activity.get("actor") if isinstance(activity.get("actor"), str) else None),
        raw={"activity": activity},
    )


def profile_from_actor(actor: dict, media_index: _MediaIndex) -> Profile:
    """``actor.json`` → the owner's profile. The archive has no counts: they stay None."""
    username = _text_or_none(actor.get("preferredUsername"))
    if username is None:
        raise ValueError("no preferredUsername")
    # The avatar is the actor's ``icon``, the header (banner) its ``image``: each a file in
    # the archive ("avatar.png", "header.jpg"), written only when the owner set one.
    avatar = _picture_of(actor.get("icon"), "avatar", media_index)
    banner = _picture_of(actor.get("image"), "banner", media_index)
    # The bio's HTML and the public key are kept as they are in raw; the key is public.
    return Profile(
        native_id=None,   # the archive never names the account's numeric id; the API does
        username=username,
        display_name=_text_or_none(actor.get("name")),
        bio=html_to_text(actor["summary"]) if isinstance(actor.get("summary"), str) else None,
        url=actor.get("url") if isinstance(actor.get("url"), str) else actor.get("id"),
        avatar=avatar,
        banner=banner,
        raw={"actor": actor},
    )


def _picture_of(image: Any, role: str, media_index: _MediaIndex) -> MediaRef | None:
    """An actor's ``icon`` / ``image`` (an Image object, or a list of them) -> a MediaRef
    opening the file in the archive. The instance's default picture ("missing.png") is
    not the owner's and is skipped."""
    if isinstance(image, list):
        image = next((i for i in image if isinstance(i, dict)), None)
    if not isinstance(image, dict):
        return None
    url = _attachment_url(image)
    if not url or PurePosixPath(urlsplit(url).path).name.startswith("missing."):
        return None
    return media_index.ref(url, role, 0, mime=_mime_of(image), description=None, meta=None)


# --------------------------------------------------------------------------- streaming the outbox


def _outbox_copies(source, name: str) -> list[tuple[int, set[str]]] | None:
    """Pass 1 over outbox.json: for each top-level ``orderedItems`` array, in file order,
    how many items it holds and the ids of its items (for the duplicated-key rule).
    None when the file is damaged (pass 2 then reports where, after importing what it can)."""
    from archiver.sync.imports import ExportFileError

    copies: list[tuple[int, set[str]]] = []
    try:
        # Without use_float: with it, ijson's C parser fails at an integer beyond 64 bits.
        for prefix, event, value in source.parse_json(name):
            if prefix == "orderedItems" and event == "start_array":
                copies.append((0, set()))
            elif prefix == "orderedItems.item" and event in (
                    "start_map", "start_array", "string", "number", "boolean", "null"):
                count, ids = copies[-1]
                copies[-1] = (count + 1, ids)
            elif prefix == "orderedItems.item.id" and event == "string":
                copies[-1][1].add(value)
    except ExportFileError:
        return None
    return copies


def outbox_items(source, name: str, report: Callable[[str, str], None]) -> Iterator[dict]:
    """Every activity of outbox.json once, streamed: an item a *later* ``orderedItems``
    copy holds too is dropped here (the later copy wins, as with ``json.load``), and an id
    seen twice within one copy is imported once (its first occurrence).

    A damaged (truncated) outbox: the items before the damage are still yielded, first
    occurrence winning, then the ExportFileError naming the file is raised."""
    copies = _outbox_copies(source, name)
    if copies is not None and not copies:
        report(f"{name}", f"{source.path}: {name} holds no orderedItems list (the archive layout may have "
               "changed: please report it)")
        return
    # ids held by any copy after copy i: an item of copy i with such an id is superseded.
    later_ids: list[set[str]] = []
    if copies:
        running: set[str] = set()
        for _count, ids in reversed(copies):
            later_ids.append(set(running))
            running |= ids
        later_ids.reverse()

    copy, left_in_copy = 0, (copies[0][0] if copies else -1)
    yielded: set[str] = set()
    for position, item in enumerate(source.iter_json(name, "orderedItems.item")):
        if copies:
            while left_in_copy == 0 and copy + 1 < len(copies):
                copy += 1
                left_in_copy = copies[copy][0]
            left_in_copy -= 1
        if not isinstance(item, dict):
            report(f"item {position} of {name}", f"expected an activity object, found {type(item).__name__} "
                   f"{str(item)[:60]!r}")
            continue
        item_id = item.get("id")
        if isinstance(item_id, str):
            if (copies and item_id in later_ids[copy]) or item_id in yielded:
                continue
            yielded.add(item_id)
        yield item


# --------------------------------------------------------------------------- the import


def import_pages(source, ctx) -> Iterator[Page]:
    """Pages of records from one Mastodon archive. No stream state: a re-import merges
    into the same rows (and run_import records the file by its sha256 so it is skipped)."""
    root = _root_of(source)
    if root is None:
        raise UnknownLayout(
            f"{source.path}: no Mastodon archive files found (looked for {OUTBOX} and {ACTOR} at the top, or in "
            "one top folder). Is this the archive from Settings → Import and export → Request your archive?")
    from archiver.sync.imports import ExportFileError

    media_index = _MediaIndex(source, root)
    names = set(source.names())
    readable = 0   # files read to their end (an empty list counts: a new account's archive)

    def present(file: str) -> str | None:
        return root + file if root + file in names else None

    # -- profile
    actor_name = present(ACTOR)
    if actor_name:
        profile = None
        try:
            actor = source.load_json(actor_name)
            if not isinstance(actor, dict):
                raise ValueError(f"expected a Person object, found {type(actor).__name__}")
            profile = profile_from_actor(actor, media_index)
        except ExportFileError as error:
            ctx.report(f"profile in {actor_name}", str(error))
        except Exception as error:  # an unexpected shape: reported, the posts still import
            ctx.report(f"profile in {actor_name}", f"{type(error).__name__}: {error}")
        if profile is not None:
            readable += 1
            yield Page("export:profile", [profile])

    # -- posts, replies and boosts
    outbox_name = present(OUTBOX)
    if outbox_name:
        batch: list = []
        people: dict[str, Person] = {}
        try:
            for item in outbox_items(source, outbox_name, ctx.report):
                kind = item.get("type")
                try:
                    if kind == "Create":
                        post = post_from_create(item, media_index)
                        for person in people_of_note(item["object"]):
                            people.setdefault(person.native_id, person)
                    elif kind == "Announce":
                        post = post_from_announce(item)
                        boosted_author = acct_from_uri(author_uri_of_status(post.url))
                        if boosted_author:
                            people.setdefault(boosted_author, Person(
                                native_id=boosted_author, handle=boosted_author,
                                url=author_uri_of_status(post.url), raw={"boosted": post.url}))
                    else:
                        ctx.report(f"activity {item.get('id', '?')} in {outbox_name}",
                                   f"type {kind!r} is not a post (only Create and Announce are imported)")
                        continue
                except Exception as error:  # one bad item is reported and skipped
                    ctx.report(f"activity {item.get('id', '?')} in {outbox_name}", f"{type(error).__name__}: {error}")
                    continue
                batch.append(post)
                if len(batch) >= PAGE_SIZE:
                    yield Page("export:outbox", [*people.values(), *batch])
                    batch, people = [], {}
            readable += 1
        except ExportFileError as error:   # damaged outbox: what was read stays imported
            ctx.report(f"posts in {outbox_name}", str(error))
        if batch or people:
            yield Page("export:outbox", [*people.values(), *batch])

    # -- likes and bookmarks
    sections: tuple[tuple[str, Literal["like", "bookmark"]], ...] = ((LIKES, "like"), (BOOKMARKS, "bookmark"))
    for file, kind in sections:
        name = present(file)
        if name is None:
            continue   # a missing list says nothing: nothing is removed
        interactions = PageBuffer(f"export:{kind}s", INTERACTIONS_PAGE_SIZE)
        try:
            for position, target in enumerate(source.iter_json(name, "orderedItems.item")):
                if isinstance(target, dict):
                    target = target.get("id")
                if not isinstance(target, str) or not target.strip():
                    ctx.report(f"{kind} {position} in {name}", f"expected a post URI, found {str(target)[:60]!r}")
                    continue
                target = target.strip()
                if page := interactions.add(Interaction(
                        kind=kind, target=target, target_url=target if target.startswith(("https://", "http://")) else None,
                        raw={"object": target})):
                    yield page
            readable += 1
        except ExportFileError as error:
            ctx.report(f"{kind}s in {name}", str(error))
        yield from interactions.rest()

    if readable == 0:
        raise UnknownLayout(
            f"{source.path}: this looks like a Mastodon archive, but none of {', '.join(_KNOWN_FILES)} could be "
            "read (see the skipped items). Request and download the archive again; if it still fails, the "
            "archive layout may have changed: please report it.")


__all__ = ["UnknownLayout", "acct_from_uri", "html_to_text", "import_pages", "looks_like_archive", "status_id"]
