"""A builder of realistic Instagram "Download your information" exports (JSON), for tests
and the demo, faithful to shared/platforms/instagram.md §6.

    path = build_instagram_export(tmp / "instagram-roofcam.studio-2024-06-01-AbCd.zip",
                                  layout="new", posts=6, followers=8, following=4, seed=1)

A path ending in ``.zip`` gets a zip; any other path an extracted folder. Two layouts:

- ``"new"``: ``your_instagram_activity/content/posts_1.json`` (or ``…/media/…`` with
  ``content_folder="media"``), ``connections/followers_and_following/followers_1.json``
  (a bare array, split in files of ``followers_per_file``) and ``following.json``
  (``relationships_following``, user name in ``title``, no ``value``),
  ``your_instagram_activity/comments/post_comments_1.json`` (a bare array),
  ``personal_information/personal_information/personal_information.json``;
- ``"old"``: ``content/posts_1.json``, ``followers_and_following/followers_1.json``
  wrapped in ``relationships_followers``, ``following.json`` with ``value``,
  ``comments/post_comments.json`` wrapped in ``comments_media_comments``,
  ``personal_information/personal_information.json``.

Both have ``reels.json`` (``ig_reels_media``), ``stories.json`` (``ig_stories``) and the
media files (small real PNG and MP4 bytes) under ``media/posts|reels|stories/YYYYMM/``.

``mis_encoded=True`` writes text the way Meta does: UTF-8 bytes escaped as Latin-1
code points (``"\\u00f0\\u009f\\u0098\\u0080"`` for 😀). ``mirror`` takes (created_at
epoch, caption[, kind]) tuples — e.g. an API fake's media — so the export's posts are
the same posts at the same seconds.

``make_account`` gives the account as plain data; change it (a follower leaves, a new one
comes) and ``write_export`` it again for "a later export".
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

CAPTIONS = [
    "Café au lait ☕ on the roof 😀",
    "Three sunsets, one week 🌅",
    "Zoë's crème brûlée — naïve but perfect",
    "Timelapse über der Stadt 🎥",
    "São Paulo à noite ✨",
    "Plain ascii caption",
    "日本語のキャプション 🍣",
]
NAMES = ["fan_one", "zoe.b", "lukas_m", "ana.sp", "kenji_t", "roofwatcher", "marie.c", "the_real_ole",
         "sunset.club", "idol_two", "studio.nine", "bea_films"]
BASE_TIME = 1_714_587_751  # 2024-05-01T18:22:31Z: the notes' example post


@dataclass
class FakeInstagramAccount:
    """What an export says about one account; every time is Unix seconds."""

    username: str = "roofcam.studio"
    name: str = "Roof Cam — Zoë 😀"
    bio: str = "Rooftop timelapses ☀️ from São Paulo"
    website: str = "https://roofcam.example"
    email: str = "owner@example.com"        # must never reach the archive
    profile_photo_at: int = BASE_TIME - 86_400 * 30
    # {"created_at", "caption" (or None), "kind": image|video|carousel|reel|story, "items": ["image"|"video", …]}
    posts: list[dict] = field(default_factory=list)
    followers: list[dict] = field(default_factory=list)   # {"username", "followed_at"}
    following: list[dict] = field(default_factory=list)   # {"username", "followed_at"}
    comments: list[dict] = field(default_factory=list)    # {"text", "media_owner", "created_at", "reel": bool}
    seed: int = 1


_KINDS_FROM_API = {"IMAGE": "image", "VIDEO": "video", "CAROUSEL_ALBUM": "carousel", "REELS": "reel",
                   "STORY": "story", "FEED": None}


def make_account(*, posts: int = 6, reels: int = 1, stories: int = 1, followers: int = 8, following: int = 4,
                 comments: int = 3, seed: int = 1, mirror: Iterable[tuple] | None = None,
                 username: str = "roofcam.studio") -> FakeInstagramAccount:
    """A deterministic account. Without ``mirror``: ``posts`` feed posts (a mix of single
    images, single videos and carousels of an image and a video), ``reels`` reels and
    ``stories`` stories, one hour apart. With ``mirror``: exactly those posts."""
    rng = random.Random(seed)
    account = FakeInstagramAccount(username=username, seed=seed)
    if mirror is not None:
        for entry in mirror:
            created_at, caption = int(entry[0]), entry[1]
            kind = str(entry[2]) if len(entry) > 2 and entry[2] else "image"
            kind = _KINDS_FROM_API.get(kind.upper(), kind.lower()) or "image"
            account.posts.append(_post(created_at, caption, kind))
    else:
        kinds = ["carousel", "image", "video"]
        moment = BASE_TIME
        for i in range(posts):
            account.posts.append(_post(moment, CAPTIONS[i % len(CAPTIONS)] if i % 5 != 4 else None, kinds[i % 3]))
            moment -= 3_600 + rng.randrange(600)
        for i in range(reels):
            account.posts.append(_post(moment, f"Reel #{i + 1} 🎬 naïve", "reel"))
            moment -= 3_600
        for _ in range(stories):
            account.posts.append(_post(moment, None, "story"))
            moment -= 3_600
    account.followers = _people(rng, followers, offset=0)
    account.following = _people(rng, following, offset=followers)
    owners = [p["username"] for p in account.following] or ["other_account"]
    account.comments = [
        {"text": ["so good 😍", "Très beau, bravo!", "🔥🔥", "where is this?"][i % 4] + f" #{i}",
         "media_owner": owners[i % len(owners)], "created_at": BASE_TIME - 7_200 * (i + 1), "reel": i % 3 == 2}
        for i in range(comments)
    ]
    return account


def _post(created_at: int, caption: str | None, kind: str) -> dict:
    items = {"carousel": ["image", "video", "image"], "video": ["video"], "reel": ["video"]}.get(kind, ["image"])
    return {"created_at": created_at, "caption": caption, "kind": kind, "items": items}


def _people(rng: random.Random, count: int, offset: int) -> list[dict]:
    people = []
    for i in range(count):
        base = NAMES[(offset + i) % len(NAMES)]
        people.append({"username": f"{base}{offset + i}" if offset + i >= len(NAMES) else base,
                       "followed_at": 1_690_000_000 + (offset + i) * 86_400 + rng.randrange(3_600)})
    return people


# --------------------------------------------------------------------------- media bytes


def png_bytes(seed: Any) -> bytes:
    """A real 2x2 PNG whose pixels depend on ``seed`` (so every file has its own sha256)."""
    rng = random.Random(f"png:{seed}")
    pixels = bytes(rng.randrange(256) for _ in range(12))
    raw = b"".join(b"\x00" + pixels[row * 6:(row + 1) * 6] for row in range(2))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def mp4_bytes(seed: Any) -> bytes:
    """A small MP4 (ftyp + free + mdat boxes) with content that depends on ``seed``."""
    payload = f"fake video {seed}".encode() * 8

    def box(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", 8 + len(data)) + kind + data

    return box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2avc1mp41") + box(b"free", b"") + box(b"mdat", payload)


# --------------------------------------------------------------------------- writing


def _mis_encode(value: Any) -> Any:
    """Meta's quirk: every string's UTF-8 bytes as Latin-1 code points."""
    if isinstance(value, str):
        return value.encode("utf-8").decode("latin-1")
    if isinstance(value, dict):
        return {_mis_encode(k): _mis_encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mis_encode(v) for v in value]
    return value


def _month(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y%m")


def export_files(account: FakeInstagramAccount, layout: str = "new", *, content_folder: str = "content",
                 followers_per_file: int = 0, mis_encoded: bool = True) -> dict[str, bytes]:
    """Every file of the export: entry name -> bytes."""
    if layout not in ("new", "old"):
        raise ValueError("layout must be 'new' or 'old'")
    new = layout == "new"
    content = f"your_instagram_activity/{content_folder}" if new else "content"
    connections = "connections/followers_and_following" if new else "followers_and_following"
    files: dict[str, bytes] = {}
    documents: dict[str, Any] = {}

    feed, reels, stories = [], [], []
    for number, post in enumerate(account.posts):
        folder = {"reel": "reels", "story": "stories"}.get(post["kind"], "posts")
        media = []
        for position, item in enumerate(post["items"]):
            ext = "mp4" if item == "video" else "png"
            uri = f"media/{folder}/{_month(post['created_at'])}/{account.seed}{number:04d}{position}_{post['created_at']}_n.{ext}"
            data = mp4_bytes((account.seed, number, position)) if item == "video" else png_bytes((account.seed, number, position))
            files[uri] = data
            entry = {"uri": uri, "creation_timestamp": post["created_at"], "title": ""}
            if item == "image" and position == 0:
                entry["media_metadata"] = {"photo_metadata": {"exif_data": [{"latitude": 51.5, "longitude": -0.1}]}}
            media.append(entry)
        caption = post["caption"] or ""
        if post["kind"] == "story":
            media[0]["title"] = caption
            stories.append(media[0])
        elif post["kind"] == "reel":
            media[0]["title"] = caption
            reels.append({"media": media})
        elif len(media) > 1:
            # Multi-item posts: the caption and time on the post (notes §6).
            feed.append({"media": media, "title": caption, "creation_timestamp": post["created_at"]})
        else:
            # Single-item posts: the caption lives on the media item, no top-level title.
            media[0]["title"] = caption
            feed.append({"media": media})
    documents[f"{content}/posts_1.json"] = feed
    documents[f"{content}/reels.json"] = {"ig_reels_media": reels}
    documents[f"{content}/stories.json"] = {"ig_stories": stories}

    photo_uri = f"media/profile/{_month(account.profile_photo_at)}/{account.seed}_profile_n.png"
    files[photo_uri] = png_bytes((account.seed, "profile"))
    documents[f"{content}/profile_photos.json"] = {"ig_profile_picture": [
        {"uri": photo_uri, "creation_timestamp": account.profile_photo_at, "title": ""}]}

    followers = [{"title": "", "media_list_data": [], "string_list_data": [
        {"href": f"https://www.instagram.com/{p['username']}", "value": p["username"], "timestamp": p["followed_at"]}]}
        for p in account.followers]
    if new:
        size = followers_per_file or max(len(followers), 1)
        chunks = [followers[i:i + size] for i in range(0, len(followers), size)] or [[]]
        for number, chunk in enumerate(chunks, 1):
            documents[f"{connections}/followers_{number}.json"] = chunk
        following = {"relationships_following": [
            {"title": p["username"], "string_list_data": [
                {"href": f"https://www.instagram.com/_u/{p['username']}", "timestamp": p["followed_at"]}]}
            for p in account.following]}
    else:
        documents[f"{connections}/followers_1.json"] = {"relationships_followers": followers}
        following = {"relationships_following": [
            {"title": "", "media_list_data": [], "string_list_data": [
                {"href": f"https://www.instagram.com/{p['username']}", "value": p["username"],
                 "timestamp": p["followed_at"]}]}
            for p in account.following]}
    documents[f"{connections}/following.json"] = following

    def comment(c: dict) -> dict:
        return {"string_map_data": {"Comment": {"value": c["text"]}, "Media Owner": {"value": c["media_owner"]},
                                    "Time": {"timestamp": c["created_at"]}}}

    post_comments = [comment(c) for c in account.comments if not c["reel"]]
    reel_comments = [comment(c) for c in account.comments if c["reel"]]
    if new:
        documents["your_instagram_activity/comments/post_comments_1.json"] = post_comments
        documents["your_instagram_activity/comments/reels_comments.json"] = {"comments_reels_comments": reel_comments}
    else:
        documents["comments/post_comments.json"] = {"comments_media_comments": post_comments}
        documents["comments/reels_comments.json"] = {"comments_reels_comments": reel_comments}

    profile = {"profile_user": [{
        "media_map_data": {"Profile Photo": {"uri": photo_uri, "creation_timestamp": account.profile_photo_at, "title": ""}},
        "string_map_data": {
            "Email": {"href": "", "value": account.email, "timestamp": 0},
            "Username": {"href": "", "value": account.username, "timestamp": 0},
            "Name": {"href": "", "value": account.name, "timestamp": 0},
            "Bio": {"href": "", "value": account.bio, "timestamp": 0},
            "Website": {"href": "", "value": account.website, "timestamp": 0},
            "Date of birth": {"href": "", "value": "1990-01-01", "timestamp": 0},
            "Private Account": {"href": "", "value": "False", "timestamp": 0},
        }}]}
    info = ("personal_information/personal_information/personal_information.json" if new
            else "personal_information/personal_information.json")
    documents[info] = profile

    for name, document in documents.items():
        if mis_encoded:
            # ensure_ascii writes the Latin-1 code points as \u00XX escapes, as Meta does.
            text = json.dumps(_mis_encode(document), ensure_ascii=True, indent=2)
        else:
            text = json.dumps(document, ensure_ascii=False, indent=2)
        files[name] = text.encode("utf-8")
    return files


def write_export(account: FakeInstagramAccount, path: str | Path, *, layout: str = "new",
                 mis_encoded: bool = True, exported_at: int | None = None, top_folder: str | None = None,
                 content_folder: str = "content", followers_per_file: int = 0,
                 extra_files: dict[str, bytes] | None = None, threads_files: dict[str, bytes] | None = None) -> Path:
    """Write the export to ``path``: a zip when it ends in ``.zip``, else a folder.
    ``exported_at`` (Unix seconds) stamps every entry, as Meta's build time would be;
    ``top_folder`` puts everything below one folder (a re-zipped extraction).
    ``threads_files``: the Threads part an Instagram download carries (threads.md §6: its
    JSON files in ``your_instagram_activity/threads/``, its media under the root's
    ``media/``), entry name -> bytes, as threads/sim/export.py's ``threads_files`` gives it."""
    files = export_files(account, layout, content_folder=content_folder,
                         followers_per_file=followers_per_file, mis_encoded=mis_encoded)
    for name in threads_files or {}:
        if not name.startswith(("your_instagram_activity/threads/", "media/")):
            raise ValueError(f"{name}: the Threads part of an Instagram download lives in "
                             "your_instagram_activity/threads/ and media/")
    files.update(threads_files or {})
    files.update(extra_files or {})
    return write_files(files, path, exported_at=exported_at, top_folder=top_folder)


def write_files(files: dict[str, bytes], path: str | Path, *, exported_at: int | None = None,
                top_folder: str | None = None) -> Path:
    """Write entry name -> bytes as an export at ``path`` (a zip when it ends in ``.zip``,
    else a folder), every entry stamped ``exported_at``; returns ``path``."""
    path = Path(path)
    moment = exported_at or (BASE_TIME + 86_400 * 30)
    prefix = f"{top_folder.strip('/')}/" if top_folder else ""
    if path.suffix.lower() == ".zip":
        path.parent.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.fromtimestamp(moment, dt.timezone.utc).timetuple()[:6]
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                info = zipfile.ZipInfo(prefix + name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        return path
    for name, data in files.items():
        target = path / (prefix + name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        os.utime(target, (moment, moment))
    return path


def build_instagram_export(folder_or_zip_path: str | Path, *, layout: str = "new", posts: int = 6,
                           followers: int = 8, following: int = 4, seed: int = 1, mis_encoded: bool = True,
                           mirror: Iterable[tuple] | None = None, reels: int = 1, stories: int = 1,
                           comments: int = 3, exported_at: int | None = None,
                           username: str = "roofcam.studio", **options) -> Path:
    """Build a whole export in one call (see the module docstring); returns its path."""
    account = make_account(posts=posts, reels=reels, stories=stories, followers=followers, following=following,
                           comments=comments, seed=seed, mirror=mirror, username=username)
    return write_export(account, folder_or_zip_path, layout=layout, mis_encoded=mis_encoded,
                        exported_at=exported_at, **options)


__all__ = ["FakeInstagramAccount", "build_instagram_export", "export_files", "make_account", "mp4_bytes",
           "png_bytes", "write_export", "write_files"]
