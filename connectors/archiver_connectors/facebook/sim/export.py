"""A builder of Facebook "Download your information" exports (JSON, or the HTML one that
must be refused), for tests and for `archiver simulate facebook --write-export`, faithful
to shared/platforms/facebook.md §6.

    world = FacebookExportWorld(owner_name="Jane Example", posts=[
        ExportPost(1354805114, "Sne sne! ❄️", media=[ExportMedia("sne.jpg", jpeg_bytes)])])
    write_export(tmp / "facebook-jane-2024-06-01-AbCd.zip", world, layout="2024")

Layouts (``layout``), as the notes' table §6.1 has them:

- ``"2019"``: ``posts/your_posts.json`` (``{"status_updates": [...]}``), media below
  ``photos_and_videos/``, ``comments/comments.json`` (``{"comments": [...]}``),
  ``likes_and_reactions/posts_and_comments.json``, ``friends/friends.json``
  (``{"friends": [...]}``), ``profile_information/profile_information.json``;
- ``"2022"``: ``posts/your_posts_1.json`` (a bare array), media below ``posts/media/``,
  ``comments_and_reactions/comments.json`` (``comments_v2``) and
  ``posts_and_comments.json`` (``reactions_v2``), ``friends_and_followers/friends.json``
  (``friends_v2``), followers and following beside it [U: the notes give their 2024
  paths only], ``profile_information/profile_information.json``;
- ``"2023"``: the 2022 files below ``your_activity_across_facebook/``, uris prefixed;
- ``"2024"`` (default): ``your_facebook_activity/posts/
  your_posts__check_ins__photos_and_videos_1.json`` (``_2``, ``_3`` … of
  ``posts_per_file`` posts), uris prefixed ``your_facebook_activity/``, comments and
  ``likes_and_reactions_1.json`` (a bare array) below ``your_facebook_activity/
  comments_and_reactions/``, group comments below ``…/groups/``, ``connections/friends/
  your_friends.json`` and ``removed_friends.json``, ``connections/followers/
  people_who_followed_you.json`` and ``who_you've_followed.json``,
  ``personal_information/profile_information/profile_information.json``;
- ``"html"``: the export someone asked for in HTML: ``index.html`` and the same files as
  ``.html`` pages, no JSON (the importer must refuse it, saying to choose JSON).

Every string and every ``uri`` is written the way Meta writes them (UTF-8 bytes as Latin-1
code points, ``\\u00c3\\u00b8`` for ø) while the files' own names inside the zip are real
UTF-8. ``zipped=False`` writes the extracted folder. ``parts=N`` (zipped) writes the
download split as Facebook splits a big one: a folder ``path`` holding N zips, the JSON in
the first and the media files spread over all of them, so a post's file is often in
another part than its JSON. The profile is written with structured keys
(``profile_style="keys"``: ``profile_v2.name.full_name``, ``username``, …) or as
``string_map_data`` whose labels are in the account's language (``"labels"``: Danish
labels, nothing English to lean on).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAYOUTS = ("2019", "2022", "2023", "2024", "html")
BASE_TIME = 1_717_200_000        # 2024-06-01T00:00:00Z: when the default world's export was made


@dataclass
class ExportMedia:
    """One file of a post: its file name (real UTF-8; the uri naming it is written in
    Meta's mojibake), its bytes, and the album folder it sits in. ``present=False``: the
    post names it but the export lacks it (facebook.md §6.2)."""

    name: str
    data: bytes
    album: str = "your_posts"
    present: bool = True


@dataclass
class ExportPost:
    """One post of the owner's. ``timestamp``: Unix seconds (the API's ``created_time``
    to the second). ``text``: the ``post`` of its first data row, None for a media-only
    post (``data: []``). ``edited_at``: adds an ``update_timestamp``-only data row.
    ``title``: Facebook's narration in the account's language; ``link``, ``place``:
    ``external_context`` and ``place`` attachments."""

    timestamp: int
    text: str | None = None
    media: list[ExportMedia] = field(default_factory=list)
    edited_at: int | None = None
    title: str | None = None
    link: str | None = None
    place: str | None = None


@dataclass
class ExportComment:
    """A comment the owner wrote on someone's post (``on``: whose). ``text=None``: an
    entry without ``data`` (its text no longer available). ``group``: written in that
    group (``group_comments_v2``)."""

    timestamp: int
    text: str | None
    on: str = "Other Person"
    group: str | None = None


@dataclass
class ExportReaction:
    """A reaction the owner gave (``reaction``: LIKE, LOVE, HAHA, WOW, SORRY, ANGER) to
    ``on``'s post."""

    timestamp: int
    on: str = "Other Person"
    reaction: str = "LIKE"


@dataclass
class ExportPerson:
    """A friend, follower or followed profile: a display name and when the relation began."""

    name: str
    timestamp: int


@dataclass
class FacebookExportWorld:
    """What a Facebook export says about one person; every time is Unix seconds."""

    owner_name: str = "Jane Example"
    username: str = "jane.example"
    bio: str | None = "Sne, kaffe og lange gåture ☕"
    email: str = "jane@example.com"          # must never reach the archive
    birthday: str = "1990-01-01"             # nor this
    posts: list[ExportPost] = field(default_factory=list)
    comments: list[ExportComment] = field(default_factory=list)
    reactions: list[ExportReaction] = field(default_factory=list)
    friends: list[ExportPerson] = field(default_factory=list)
    followers: list[ExportPerson] = field(default_factory=list)
    following: list[ExportPerson] = field(default_factory=list)
    removed_friends: list[ExportPerson] = field(default_factory=list)
    exported_at: int = BASE_TIME             # stamps every entry, as Meta's build time would


def sample_world(*, posts: int = 3, friends: int = 3, owner_name: str = "Jane Example") -> FacebookExportWorld:
    """A small deterministic world: posts with accented text and emoji, a photo in a
    folder with accents, a media-only post, an edited post, comments, reactions, friends,
    followers and following."""
    world = FacebookExportWorld(owner_name=owner_name)
    texts = ["Sne sne! ❄️", "Kaffe på taget ☕ — naïve crème brûlée", None, "Plain ascii post", "日本語 🍣"]
    for i in range(posts):
        when = BASE_TIME - 86_400 * (30 + 7 * i)
        media = [ExportMedia(f"{28819 + i}_n_{1251667781858 + i}.jpg", jpeg_bytes(i), album="Fotky z časové osy")] \
            if i % 2 == 0 else []
        world.posts.append(ExportPost(when, texts[i % len(texts)], media=media,
                                      edited_at=when + 600 if i == 1 else None,
                                      title=f"{owner_name} har tilføjet et nyt billede." if media else None,
                                      link="https://example.org/artikel" if i == 1 else None))
    world.comments = [ExportComment(BASE_TIME - 86_400 * 3, "Flot billede! 😍", on="Åse Ørsted"),
                      ExportComment(BASE_TIME - 86_400 * 4, None, on="Bob Example"),
                      ExportComment(BASE_TIME - 86_400 * 5, "Ses i morgen", on="Bob Example", group="Løbeklubben")]
    world.reactions = [ExportReaction(BASE_TIME - 86_400 * 2, on="Åse Ørsted", reaction="LOVE"),
                       ExportReaction(BASE_TIME - 86_400 * 6, on="Bob Example")]
    names = ["Åse Ørsted", "Bob Example", "Zoë Müller", "Kenji Tanaka", "Ana São"]
    world.friends = [ExportPerson(names[i % len(names)] + (f" {i}" if i >= len(names) else ""),
                                  1_609_459_200 + 86_400 * i) for i in range(friends)]
    world.followers = [ExportPerson("Carla Følger", 1_690_000_000)]
    world.following = [ExportPerson("Kaffebaren Nørrebro", 1_700_000_000)]
    return world


def jpeg_bytes(seed: Any) -> bytes:
    """A few bytes that start like a JPEG, different for every ``seed``."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + f"fake jpeg {seed}".encode() * 4 + b"\xff\xd9"


# --------------------------------------------------------------------------- writing


def mis_encode(value: Any) -> Any:
    """Meta's quirk: every string's UTF-8 bytes as Latin-1 code points (keys too)."""
    if isinstance(value, str):
        return value.encode("utf-8").decode("latin-1")
    if isinstance(value, dict):
        return {mis_encode(k): mis_encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mis_encode(v) for v in value]
    return value


def _folders(layout: str) -> dict[str, str]:
    """Where each file of one layout generation sits."""
    if layout == "2019":
        return {"posts": "posts/your_posts.json", "media": "photos_and_videos",
                "comments": "comments/comments.json", "group_comments": "groups/your_group_comments.json",
                "reactions": "likes_and_reactions/posts_and_comments.json", "friends": "friends/friends.json",
                "followers": "", "following": "", "removed": "friends/removed_friends.json",
                "profile": "profile_information/profile_information.json"}
    if layout in ("2022", "2023"):
        top = "your_activity_across_facebook/" if layout == "2023" else ""
        return {"posts": f"{top}posts/your_posts_1.json", "media": f"{top}posts/media",
                "comments": f"{top}comments_and_reactions/comments.json",
                "group_comments": f"{top}groups/your_comments_in_groups.json",
                "reactions": f"{top}comments_and_reactions/posts_and_comments.json",
                "friends": "friends_and_followers/friends.json",
                "followers": "friends_and_followers/people_who_followed_you.json",
                "following": "friends_and_followers/who_you've_followed.json",
                "removed": "friends_and_followers/removed_friends.json",
                "profile": "profile_information/profile_information.json"}
    return {"posts": "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_{n}.json",
            "media": "your_facebook_activity/posts/media",
            "comments": "your_facebook_activity/comments_and_reactions/comments.json",
            "group_comments": "your_facebook_activity/groups/your_comments_in_groups.json",
            "reactions": "your_facebook_activity/comments_and_reactions/likes_and_reactions_1.json",
            "friends": "connections/friends/your_friends.json",
            "followers": "connections/followers/people_who_followed_you.json",
            "following": "connections/followers/who_you've_followed.json",
            "removed": "connections/friends/removed_friends.json",
            "profile": "personal_information/profile_information/profile_information.json"}


def _post_item(post: ExportPost, world: FacebookExportWorld, media_folder: str, files: dict[str, bytes],
               media_names: list[str]) -> dict:
    data: list[dict] = []
    if post.text is not None:
        data.append({"post": post.text})
    if post.edited_at is not None:
        data.append({"update_timestamp": post.edited_at})
    item: dict[str, Any] = {"timestamp": post.timestamp}
    attachments: list[dict] = []
    for media in post.media:
        uri = f"{media_folder}/{media.album}/{media.name}"
        if media.present:
            files[uri] = media.data
            media_names.append(uri)
        attachments.append({"data": [{"media": {
            "uri": uri, "creation_timestamp": post.timestamp, "title": media.album,
            "description": post.text or "",
            "media_metadata": {"photo_metadata": {"exif_data": [{"upload_ip": "203.0.113.7"}]}}}}]})
    if post.link:
        attachments.append({"data": [{"external_context": {"url": post.link, "name": "Artikel"}}]})
    if post.place:
        attachments.append({"data": [{"place": {"name": post.place,
                                                "coordinate": {"latitude": 55.67, "longitude": 12.56}}}]})
    if attachments:
        item["attachments"] = attachments
    item["data"] = data
    if post.title:
        item["title"] = post.title
    return item


def _comment_item(comment: ExportComment, world: FacebookExportWorld) -> dict:
    item: dict[str, Any] = {"timestamp": comment.timestamp}
    if comment.text is not None:
        inner = {"timestamp": comment.timestamp, "comment": comment.text, "author": world.owner_name}
        if comment.group:
            inner["group"] = comment.group
        item["data"] = [{"comment": inner}]
    item["title"] = f"{world.owner_name} kommenterede {comment.on}s opslag."
    return item


def _profile(world: FacebookExportWorld, style: str) -> dict:
    url = f"https://www.facebook.com/{world.username}"
    if style == "labels":
        # Danish labels: a reader that looks for "Name" or "Username" finds nothing.
        return {"profile_v2": [{"string_map_data": {
            "E-mailadresse": {"href": "", "value": world.email, "timestamp": 0},
            "Navn": {"href": "", "value": world.owner_name, "timestamp": 0},
            "Fødselsdag": {"href": "", "value": world.birthday, "timestamp": 0},
            "Profil": {"href": url, "value": url, "timestamp": 0},
            "Om dig": {"href": "", "value": world.bio or "", "timestamp": 0},
            "Oprettet": {"href": "", "value": "", "timestamp": world.exported_at - 86_400 * 4000},
        }}]}
    first, _, last = world.owner_name.partition(" ")
    return {"profile_v2": {
        "name": {"full_name": world.owner_name, "first_name": first, "middle_name": "", "last_name": last},
        "emails": {"emails": [world.email], "previous_emails": [], "pending_emails": [], "ad_account_emails": []},
        "birthday": {"year": int(world.birthday[:4]), "month": 1, "day": 1},
        "gender": {"gender_option": "FEMALE", "pronoun": "FEMALE"},
        "username": world.username,
        "profile_uri": url,
        "intro_bio": world.bio or "",
        "registration_timestamp": world.exported_at - 86_400 * 4000,
    }}


def export_files(world: FacebookExportWorld, layout: str = "2024", *, posts_per_file: int = 0,
                 profile_style: str = "keys") -> tuple[dict[str, bytes], list[str]]:
    """Every file of the export (entry name -> bytes), and the names of the media files
    among them (the ones a multi-part export spreads over its parts)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}")
    if layout == "html":
        return _html_files(world), []
    where = _folders(layout)
    files: dict[str, bytes] = {}
    media_names: list[str] = []
    documents: dict[str, Any] = {}

    items = [_post_item(post, world, where["media"], files, media_names) for post in world.posts]
    if layout == "2019":
        documents[where["posts"]] = {"status_updates": items}
    elif layout == "2024":
        size = posts_per_file or max(len(items), 1)
        chunks = [items[i:i + size] for i in range(0, len(items), size)] or [[]]
        for number, chunk in enumerate(chunks, 1):
            documents[where["posts"].format(n=number)] = chunk
    else:
        documents[where["posts"]] = items

    comment_key = "comments" if layout == "2019" else "comments_v2"
    documents[where["comments"]] = {comment_key: [_comment_item(c, world) for c in world.comments if not c.group]}
    group = [_comment_item(c, world) for c in world.comments if c.group]
    if group:
        documents[where["group_comments"]] = {"group_comments_v2": group}

    reactions = [{"timestamp": r.timestamp,
                  "data": [{"reaction": {"reaction": r.reaction, "actor": world.owner_name}}],
                  "title": f"{world.owner_name} synes godt om {r.on}s opslag."} for r in world.reactions]
    documents[where["reactions"]] = reactions if layout == "2024" else {"reactions_v2": reactions}

    def people(entries: list[ExportPerson]) -> list[dict]:
        return [{"name": p.name, "timestamp": p.timestamp} for p in entries]

    documents[where["friends"]] = {"friends" if layout == "2019" else "friends_v2": people(world.friends)}
    if where["followers"]:
        documents[where["followers"]] = {"followers_v3": people(world.followers)}
        documents[where["following"]] = {"following_v3": people(world.following)}
    if world.removed_friends:
        documents[where["removed"]] = {"deleted_friends_v2": people(world.removed_friends)}
    documents[where["profile"]] = _profile(world, profile_style)

    for name, document in documents.items():
        # ensure_ascii writes the Latin-1 code points as \u00XX escapes, as Meta does.
        files[name] = json.dumps(mis_encode(document), ensure_ascii=True, indent=2).encode("ascii")
    return files, media_names


def _html_files(world: FacebookExportWorld) -> dict[str, bytes]:
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{world.owner_name}</title></head>"
            "<body><div>Your posts</div></body></html>").encode("utf-8")
    return {"index.html": page,
            "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_1.html": page,
            "connections/friends/your_friends.html": page}


def _write_zip(path: Path, files: dict[str, bytes], moment: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.fromtimestamp(moment, dt.timezone.utc).timetuple()[:6]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)    # a non-ASCII name is stored as UTF-8
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


def write_export(path: Path, world: FacebookExportWorld, *, layout: str = "2024", zipped: bool = True,
                 parts: int = 1, posts_per_file: int = 0, profile_style: str = "keys",
                 top_folder: str | None = None, extra_files: dict[str, bytes] | None = None) -> Path:
    """Write the export of ``world`` at ``path`` and return where it is: a zip (``zipped``),
    an extracted folder (not ``zipped``), or with ``parts`` > 1 a folder holding that many
    zips (``<folder name>-1.zip`` …), as the parts of one download are kept together.
    ``top_folder`` puts everything below one folder (a re-zipped extraction);
    ``extra_files`` adds or replaces entries (damaged files for tests)."""
    path = Path(path)
    files, media_names = export_files(world, layout, posts_per_file=posts_per_file, profile_style=profile_style)
    files.update(extra_files or {})
    prefix = f"{top_folder.strip('/')}/" if top_folder else ""
    files = {prefix + name: data for name, data in files.items()}
    media_names = [prefix + name for name in media_names]
    if parts > 1 and zipped:
        # The JSON in the first part, the media files dealt out over all parts (the first
        # one gets every parts-th file), so most posts' files are in another part.
        shares: list[dict[str, bytes]] = [{} for _ in range(parts)]
        media = set(media_names)
        for name, data in files.items():
            if name not in media:
                shares[0][name] = data
        for position, name in enumerate(media_names):
            shares[(position + 1) % parts][name] = files[name]
        path.mkdir(parents=True, exist_ok=True)
        stem = path.name.removesuffix(".zip")
        for number, share in enumerate(shares, 1):
            _write_zip(path / f"{stem}-{number}.zip", share, world.exported_at)
        return path
    if zipped:
        _write_zip(path, files, world.exported_at)
        return path
    for name, data in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        os.utime(target, (world.exported_at, world.exported_at))
    return path


def build_facebook_export(path: str | Path, *, posts: int = 6, friends: int = 8, layout: str = "2024",
                          zipped: bool = True, parts: int = 1) -> Path:
    """A small valid export in one call: ``sample_world(posts, friends)`` written at
    ``path`` (2024 layout, zipped: posts with media files their uris name, comments,
    reactions, friends, followers, following, profile). Its posts file is
    ``your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_1.json``, its
    friends ``connections/friends/your_friends.json``, its media below
    ``your_facebook_activity/posts/media/``."""
    return write_export(Path(path), sample_world(posts=posts, friends=friends), layout=layout, zipped=zipped,
                        parts=parts)


__all__ = ["ExportComment", "ExportMedia", "ExportPerson", "ExportPost", "ExportReaction", "FacebookExportWorld",
           "LAYOUTS", "build_facebook_export", "export_files", "jpeg_bytes", "mis_encode", "sample_world", "write_export"]
