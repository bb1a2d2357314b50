"""A builder of Threads' "Download your information" export files, for tests and for
`archiver simulate threads --write-export`, faithful to shared/platforms/threads.md §6.

    world = ThreadsExportWorld(username="roofcam.studio", posts=[
        ThreadsExportPost(1709116601, "café at sunrise 🙏"),                      # text only: uri ""
        ThreadsExportPost(1708714341, "three frames", media=[png, clip]),         # a carousel
        ThreadsExportPost(1709200000, "thanks!", is_reply=True)],                 # the owner's reply
        followers=[ThreadsExportPerson("pine.marten", 1730000000, "Pine Marten")])
    write_export(tmp / "threads.zip", world)                                     # a Threads-only download
    write_export(tmp / "instagram-roofcam.studio.zip", world, inside_instagram=True)

What it writes (every string, keys included, in Meta's mojibake unless ``mis_encoded`` is off):

- ``threads_and_replies.json`` (``text_post_app_text_posts``): one item per post, its
  ``media`` list; a single item carries the text in ``media[0].title``, a carousel in a
  post-level ``title`` (with a post-level ``creation_timestamp``); a text-only post has one
  media item whose ``uri`` is ``""``. ``generation="2026"``: ``text_app_post``
  (``reply_control``, ``is_reply``) on each item, media at ``media/posts/YYYYMM/<n>.webp|
  mp4``, hrefs on ``threads.com``. ``generation="2024"``: no ``text_app_post`` (so no reply
  flag), images alternately at ``media/posts/YYYYMM/<n>.jpg`` and bare ``media/<n>.jpg``,
  hrefs on ``threads.net``.
- ``followers_1.json`` (+ ``_2`` … with ``followers_per_file``; ``numbered_followers=False``
  writes one ``followers.json``) with ``text_post_app_text_post_app_followers``,
  ``following.json`` with ``text_post_app_text_post_app_following``: ``title`` the display
  name, ``string_list_data[0]`` ``{href, value, timestamp}`` (``value`` left out for a
  person with ``value=False``: the user name is then the href's last segment).
- ``liked_threads.json`` (``text_post_app_media_likes``) when the world has likes.
- ``personal_information.json`` (``text_post_app_text_post_app_profile``): string_map_data
  with the labels in ``profile_language`` ("en", "de", "fr": localized, threads.md §6.1).
- The media files themselves, relative to the export root (``media/…``).

Where the files sit ([U] for a Threads-only download): ``layout="threads"`` (a
``threads/`` folder), ``"root"`` (at the root) or ``"activity"``
(``your_instagram_activity/threads/``). ``inside_instagram=True`` writes an Instagram
download (instagram/sim/export.py's builder, a small account of the same user name) with
the Threads files in ``your_instagram_activity/threads/`` and their media at its root.
A path ending in ``.zip`` gets a zip, any other path a folder.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENERATIONS = ("2024", "2026")
LAYOUTS = ("threads", "root", "activity")
INSIDE_INSTAGRAM_DIR = "your_instagram_activity/threads"

# personal_information.json labels, localized as Meta writes them (threads.md §6.1).
PROFILE_LABELS = {
    "en": {"username": "Username", "name": "Name", "bio": "Bio", "email": "Email", "phone": "Phone Number"},
    "de": {"username": "Benutzername", "name": "Name", "bio": "Steckbrief", "email": "E-Mail-Adresse",
           "phone": "Telefonnummer"},
    "fr": {"username": "Nom d’utilisateur", "name": "Nom", "bio": "Biographie", "email": "Adresse e-mail",
           "phone": "Numéro de téléphone"},
}


@dataclass
class ThreadsExportMedia:
    """One file of a post: its bytes and the extension the export names it with
    ("jpg", "webp", "mp4"; "" = guessed from the bytes)."""

    data: bytes
    ext: str = ""


@dataclass
class ThreadsExportPost:
    """One post or reply of the owner. ``timestamp``: Unix seconds (the API's ``timestamp``
    of the same post, to the second). ``media``: none for a text post, one for an image or
    video post, several for a carousel (bytes, or ThreadsExportMedia to fix the extension)."""

    timestamp: int
    text: str | None = None
    media: list[Any] = field(default_factory=list)
    is_reply: bool = False
    reply_control: str = "everyone"


@dataclass
class ThreadsExportPerson:
    """A follower or a followed account. ``href``: the profile link as written (None: the
    generation's host, ``https://www.threads.com/<username>`` or ``…threads.net/…``).
    ``value=False`` leaves ``string_list_data[0].value`` out (the name is in the href)."""

    username: str
    followed_at: int
    display_name: str = ""
    href: str | None = None
    value: bool = True


@dataclass
class ThreadsExportLike:
    """A like the owner gave: the post's author, its shortcode, the reaction, when."""

    author: str
    shortcode: str
    timestamp: int
    reaction: str = "❤️"


@dataclass
class ThreadsExportWorld:
    """What one Threads export holds. Every time is Unix seconds."""

    username: str = "roofcam.studio"
    display_name: str = "Roof Cam — Zoë"
    bio: str = "Rooftop timelapses ☀️"
    email: str = "owner@example.com"           # must never reach the archive
    posts: list[ThreadsExportPost] = field(default_factory=list)
    followers: list[ThreadsExportPerson] = field(default_factory=list)
    following: list[ThreadsExportPerson] = field(default_factory=list)
    likes: list[ThreadsExportLike] = field(default_factory=list)
    exported_at: int | None = None             # the entries' time stamp (default: a day after the newest post)


# --------------------------------------------------------------------------- bytes


def mis_encode(value: Any) -> Any:
    """Meta's quirk: every string's UTF-8 bytes as Latin-1 code points, keys too."""
    if isinstance(value, str):
        return value.encode("utf-8").decode("latin-1")
    if isinstance(value, dict):
        return {mis_encode(k): mis_encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mis_encode(v) for v in value]
    return value


def _ext(media: ThreadsExportMedia, generation: str, position: int) -> str:
    """The extension the export names a file with: the one given, else by the bytes (a
    video is .mp4; an image .jpg, or in the 2026 generation .webp and .jpg in turn)."""
    if media.ext:
        return media.ext.lstrip(".").lower()
    if media.data[4:8] == b"ftyp":
        return "mp4"
    if media.data[:4] == b"RIFF" and media.data[8:12] == b"WEBP":
        return "webp"
    return "webp" if generation == "2026" and position % 2 == 0 else "jpg"


def _month(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y%m")


def _href(person: ThreadsExportPerson, generation: str) -> str:
    if person.href is not None:
        return person.href
    host = "www.threads.net" if generation == "2024" else "www.threads.com"
    return f"https://{host}/{person.username}"


def _people_items(people: list[ThreadsExportPerson], generation: str) -> list[dict]:
    items = []
    for person in people:
        data: dict[str, Any] = {"href": _href(person, generation)}
        if person.value:
            data["value"] = person.username
        data["timestamp"] = person.followed_at
        items.append({"title": person.display_name, "media_list_data": [], "string_list_data": [data]})
    return items


# --------------------------------------------------------------------------- the files


def threads_files(world: ThreadsExportWorld, *, generation: str = "2026", folder: str = "threads",
                  followers_per_file: int = 0, numbered_followers: bool = True, profile_language: str = "en",
                  mis_encoded: bool = True) -> dict[str, bytes]:
    """Every file of the Threads part: entry name -> bytes. The JSON files go in
    ``folder`` ("" for the root), the media files under ``media/`` at the root."""
    import json

    if generation not in GENERATIONS:
        raise ValueError(f"generation must be one of {GENERATIONS}")
    prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
    files: dict[str, bytes] = {}
    documents: dict[str, Any] = {}

    items = []
    for number, post in enumerate(world.posts):
        entries = []
        for position, raw_media in enumerate(post.media):
            media = raw_media if isinstance(raw_media, ThreadsExportMedia) else ThreadsExportMedia(bytes(raw_media))
            ext = _ext(media, generation, position)
            name = f"{429_000_000 + number * 10 + position}_n_{17_900_000_000_000_000 + post.timestamp}.{ext}"
            bare = generation == "2024" and number % 2 == 1
            uri = f"media/{name}" if bare else f"media/posts/{_month(post.timestamp)}/{name}"
            files[uri] = media.data
            entry: dict[str, Any] = {"uri": uri, "creation_timestamp": post.timestamp,
                                     "media_metadata": {"camera_metadata": {"has_camera_metadata": False}},
                                     "title": "", "cross_post_source": {"source_app": "FB"}}
            entries.append(entry)
        if not entries:   # a text post: one media item without a file
            entries.append({"uri": "", "creation_timestamp": post.timestamp,
                            "media_metadata": {"camera_metadata": {"has_camera_metadata": False}},
                            "title": "", "cross_post_source": {"source_app": "FB"}})
        if generation == "2026":
            for entry in entries:
                entry["text_app_post"] = {"reply_control": post.reply_control, "geo_gated_country_list": "",
                                          "is_reply": post.is_reply}
        if len(entries) > 1:   # a carousel: text and time on the post
            items.append({"media": entries, "title": post.text or "", "creation_timestamp": post.timestamp})
        else:
            entries[0]["title"] = post.text or ""
            items.append({"media": entries})
    documents["threads_and_replies.json"] = {"text_post_app_text_posts": items}

    followers = _people_items(world.followers, generation)
    if numbered_followers:
        size = followers_per_file or max(len(followers), 1)
        chunks = [followers[i:i + size] for i in range(0, len(followers), size)] or [[]]
        for number, chunk in enumerate(chunks, 1):
            documents[f"followers_{number}.json"] = {"text_post_app_text_post_app_followers": chunk}
    else:
        documents["followers.json"] = {"text_post_app_text_post_app_followers": followers}
    documents["following.json"] = {"text_post_app_text_post_app_following": _people_items(world.following, generation)}

    if world.likes:
        host = "www.threads.net" if generation == "2024" else "www.threads.com"
        documents["liked_threads.json"] = {"text_post_app_media_likes": [
            {"title": like.author, "string_list_data": [
                {"href": f"https://{host}/@{like.author}/post/{like.shortcode}", "value": like.reaction,
                 "timestamp": like.timestamp}]}
            for like in world.likes]}

    labels = PROFILE_LABELS[profile_language]

    def field_of(value: str) -> dict:
        return {"href": "", "value": value, "timestamp": 0}

    documents["personal_information.json"] = {"text_post_app_text_post_app_profile": [{
        "media_map_data": {},
        "string_map_data": {
            labels["email"]: field_of(world.email),
            labels["username"]: field_of(world.username),
            labels["name"]: field_of(world.display_name),
            labels["bio"]: field_of(world.bio),
            labels["phone"]: field_of("+1 555 0100"),
        }}]}

    for name, document in documents.items():
        if mis_encoded:   # ensure_ascii writes the Latin-1 code points as \u00XX escapes, as Meta does
            text = json.dumps(mis_encode(document), ensure_ascii=True, indent=2)
        else:
            text = json.dumps(document, ensure_ascii=False, indent=2)
        files[prefix + name] = text.encode("utf-8")
    return files


def _default_stamp(world: ThreadsExportWorld) -> int:
    newest = max([p.timestamp for p in world.posts] + [p.followed_at for p in world.followers + world.following]
                 + [1_709_000_000])
    return newest + 86_400


def write_export(path: Path, world: ThreadsExportWorld, *, inside_instagram: bool = False, generation: str = "2026",
                 layout: str = "threads", followers_per_file: int = 0, numbered_followers: bool = True,
                 profile_language: str = "en", mis_encoded: bool = True, top_folder: str | None = None) -> Path:
    """Write ``world`` as a Threads export at ``path`` (a zip when it ends in ``.zip``, else
    a folder) and return ``path``. See the module docstring for the knobs."""
    from archiver_connectors.instagram.sim import export as instagram

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    folder = INSIDE_INSTAGRAM_DIR if inside_instagram else {"threads": "threads", "root": "",
                                                             "activity": INSIDE_INSTAGRAM_DIR}[layout]
    files = threads_files(world, generation=generation, folder=folder, followers_per_file=followers_per_file,
                          numbered_followers=numbered_followers, profile_language=profile_language,
                          mis_encoded=mis_encoded)
    stamp = world.exported_at or _default_stamp(world)
    if inside_instagram:
        account = instagram.make_account(posts=2, reels=0, stories=0, followers=2, following=1, comments=1,
                                         username=world.username)
        return instagram.write_export(account, path, exported_at=stamp, top_folder=top_folder,
                                      mis_encoded=mis_encoded, threads_files=files)
    return instagram.write_files(files, path, exported_at=stamp, top_folder=top_folder)


__all__ = ["GENERATIONS", "LAYOUTS", "PROFILE_LABELS", "ThreadsExportLike", "ThreadsExportMedia", "ThreadsExportPerson",
           "ThreadsExportPost", "ThreadsExportWorld", "mis_encode", "threads_files", "write_export"]
