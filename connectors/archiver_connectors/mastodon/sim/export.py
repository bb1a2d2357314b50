"""A builder of Mastodon account archives like the real ones, for tests and the demo,
faithful to shared/platforms/mastodon.md §7.

    account = make_account(posts=4, replies=1, boosts=2, likes=3, bookmarks=2, seed=1)
    path = write_archive(account, tmp / "archive-20241101090000-0123456789abcdef0123456789abcdef.tar.gz")

A path ending in ``.tar.gz`` (or ``.tgz``, ``.tar``) gets a tar in the real member order
(media files, ``outbox.json``, ``likes.json``, ``bookmarks.json``, ``avatar.*``,
``header.*``, ``actor.json``); any other path an extracted folder.

The account is plain data (``FakeMastodonAccount``): change it (edit a post, add a boost)
and write it again for "a later archive". Knobs for the layout quirks:

- ``duplicate_ordered_items``: ``"empty"`` writes the top-level key ``orderedItems``
  twice, first ``[]`` then the real array (seen in real exports); ``"stale"`` writes a
  first copy holding every item with the *previous* text of edited posts, then the real
  one (the later copy must win);
- ``media_url_prefix``: what stands before ``media_attachments/`` in the JSON urls
  (``"/system/"``, ``"/bucketname/"``; the tar names never have it);
- ``missing``: files left out (``"likes.json"``, ``"actor.json"``, a media file's name …);
- ``top_folder``: everything below one folder (a re-packed extraction);
- ``hostile``: entries that try to escape — ``../`` names, absolute paths, a symbolic
  and a hard link — plus a post whose attachments name them (tar only; for a folder, a
  symbolic link to a file outside it);
- ``extra_items``: raw activities appended to the outbox (bad items for tests).
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import os
import random
import struct
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
CONTEXT = ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1",
           {"manuallyApprovesFollowers": "as:manuallyApprovesFollowers", "sensitive": "as:sensitive",
            "Hashtag": "as:Hashtag", "toot": "http://joinmastodon.org/ns#", "blurhash": "toot:blurhash",
            "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"}}]
TEXTS = [
    "<p>Garden update: the tomatoes are up 🍅</p>",
    ("<p>Two paragraphs.</p><p>Second one with a <a href=\"https://social.example/tags/plants\" class=\"mention "
     "hashtag\" rel=\"tag\">#<span>plants</span></a> tag &amp; an ampersand</p>"),
    "<p>Line one<br />line two<br />line three</p>",
    "<p>Zoë's crème brûlée — naïve but perfect ☕</p>",
    ("<p>A link: <a href=\"https://example.org/a/very/long/path\" rel=\"nofollow noopener\" target=\"_blank\">"
     "<span class=\"invisible\">https://</span><span class=\"ellipsis\">example.org/a/very/lo</span>"
     "<span class=\"invisible\">ng/path</span></a></p>"),
    "<p>日本語の投稿です 🌸</p>",
]
OTHERS = ["bob@other.example", "carol@social.example", "dave@fedi.example", "erin@other.example"]
BASE_TIME = dt.datetime(2024, 10, 31, 9, 15, 2, tzinfo=dt.UTC)
ARCHIVE_TIME = int(dt.datetime(2024, 11, 20, 12, 0, 0, tzinfo=dt.UTC).timestamp())


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def png_bytes(seed: Any, size: int = 2) -> bytes:
    """A small, valid PNG whose pixels depend on ``seed`` (different seeds, different files)."""
    rng = random.Random(repr(seed))
    rows = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(size * 3)) for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def mp4_bytes(seed: Any) -> bytes:
    """A tiny ISO-BMFF file (ftyp + a free box carrying ``seed``): sniffed as video/mp4."""
    payload = repr(seed).encode()
    return (struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00" + b"isomiso2"
            + struct.pack(">I", 8 + len(payload)) + b"free" + payload)


@dataclass
class FakeMastodonAccount:
    """What an archive says about one account.

    ``statuses``: dicts with ``id`` (status id, a string), ``kind`` (text | reply |
    boost), ``published`` (ISO), and for text / reply: ``content`` (HTML), ``updated``
    (ISO, when edited), ``previous_content`` (the text before the edit, used by the
    ``"stale"`` duplicate copy only), ``summary`` (content warning), ``in_reply_to``
    (URI), ``visibility``, ``mentions`` (accts), ``media`` (dicts: ``id``, ``bytes``,
    ``mediaType``, ``name`` = alt text, ``width``, ``height``, ``blurhash``,
    ``focalPoint``); for a boost: ``boost_of`` (the boosted post's URI)."""

    domain: str = "social.example"
    username: str = "alice"
    display_name: str = "Alice 🌱"
    summary: str = "<p>Gardener &amp; coder.</p><p>she/her</p>"
    statuses: list[dict] = field(default_factory=list)
    likes: list[str] = field(default_factory=list)
    bookmarks: list[str] = field(default_factory=list)
    avatar: bytes | None = None
    header: bytes | None = None
    seed: int = 1

    @property
    def actor(self) -> str:
        return f"https://{self.domain}/users/{self.username}"

    def status_uri(self, status_id: str) -> str:
        return f"{self.actor}/statuses/{status_id}"

    def media_path(self, media: dict) -> str:
        """Where a media file sits in the tar (Mastodon's storage path, /system/ stripped)."""
        digits = media["id"].rjust(18, "0")
        groups = "/".join(digits[i:i + 3] for i in range(0, 18, 3))
        ext = {"image/png": "png", "image/jpeg": "jpeg", "video/mp4": "mp4"}.get(media["mediaType"], "bin")
        return f"media_attachments/files/{groups}/original/{media['id']}.{ext}"


def make_account(*, posts: int = 4, replies: int = 1, boosts: int = 2, edited: int = 1, media_per_post: int = 2,
                 likes: int = 3, bookmarks: int = 2, seed: int = 1) -> FakeMastodonAccount:
    """A deterministic account: ``posts`` originals (the first ``edited`` of them edited,
    every other one with ``media_per_post`` files, the second with a video), ``replies``
    replies to other people, ``boosts`` boosts, and likes / bookmarks of others' posts."""
    rng = random.Random(seed)
    account = FakeMastodonAccount(seed=seed, avatar=png_bytes((seed, "avatar")), header=png_bytes((seed, "header")))
    next_id = 113_400_000_000_000_000 + seed * 1000
    moment = BASE_TIME
    for number in range(posts):
        next_id += 7
        moment += dt.timedelta(hours=5, seconds=rng.randrange(60))
        status: dict = {"id": str(next_id), "kind": "text", "published": iso(moment),
                        "content": TEXTS[number % len(TEXTS)], "visibility": ("public", "unlisted", "private")[number % 3],
                        "mentions": [], "media": []}
        if number < edited:
            status["previous_content"] = "<p>First draft, with a typo</p>"
            status["updated"] = iso(moment + dt.timedelta(minutes=45))
        if number % 2 == 0:
            for index in range(media_per_post):
                media_id = str(next_id * 10 + index)
                video = number == 2 and index == 0
                status["media"].append({
                    "id": media_id,
                    "bytes": mp4_bytes((seed, media_id)) if video else png_bytes((seed, media_id)),
                    "mediaType": "video/mp4" if video else "image/png",
                    "name": f"Alt text {number}.{index}: seedlings on a windowsill 🌱",
                    "width": 1600, "height": 1200,
                    "blurhash": "UFBWY:8_0Jxv4mx]t8t64.%M-:IUWGWAt6M}",
                    "focalPoint": [0.25, -0.5],
                })
        if number == 1:
            status["summary"] = "garden spoilers"
            status["mentions"] = [OTHERS[1]]
        account.statuses.append(status)
    for number in range(replies):
        next_id += 7
        moment += dt.timedelta(hours=3)
        other = OTHERS[number % len(OTHERS)]
        user, domain = other.split("@")
        account.statuses.append({
            "id": str(next_id), "kind": "reply", "published": iso(moment), "visibility": "public",
            "content": f"<p><span class=\"h-card\"><a href=\"https://{domain}/@{user}\" class=\"u-url mention\">"
                       f"@<span>{user}</span></a></span> thanks, good idea!</p>",
            "in_reply_to": f"https://{domain}/users/{user}/statuses/{900 + number}",
            "mentions": [other], "media": []})
    for number in range(boosts):
        next_id += 7
        moment += dt.timedelta(hours=2)
        user, domain = OTHERS[(number + 1) % len(OTHERS)].split("@")
        account.statuses.append({"id": str(next_id), "kind": "boost", "published": iso(moment),
                                 "boost_of": f"https://{domain}/users/{user}/statuses/{555 + number}"})
    account.likes = [f"https://{o.split('@')[1]}/users/{o.split('@')[0]}/statuses/{700 + n}"
                     for n, o in zip(range(likes), OTHERS * likes, strict=False)]
    account.bookmarks = [f"https://{o.split('@')[1]}/users/{o.split('@')[0]}/statuses/{800 + n}"
                         for n, o in zip(range(bookmarks), OTHERS * bookmarks, strict=False)]
    return account


# --------------------------------------------------------------------------- JSON documents


def _audience(account: FakeMastodonAccount, visibility: str, mentioned: list[str]) -> tuple[list, list]:
    followers = f"{account.actor}/followers"
    mentioned_uris = [f"https://{m.split('@')[1]}/users/{m.split('@')[0]}" for m in mentioned]
    if visibility == "public":
        return [PUBLIC], [followers, *mentioned_uris]
    if visibility == "unlisted":
        return [followers], [PUBLIC, *mentioned_uris]
    if visibility == "private":
        return [followers], mentioned_uris
    return mentioned_uris, []


def activity_of(account: FakeMastodonAccount, status: dict, *, media_url_prefix: str = "",
                stale: bool = False) -> dict:
    """One outbox item, as Mastodon's BackupService writes it."""
    uri = account.status_uri(status["id"])
    if status["kind"] == "boost":
        user_uri = status["boost_of"].rsplit("/statuses/", 1)[0]
        return {"id": f"{uri}/activity", "type": "Announce", "actor": account.actor,
                "published": status["published"], "to": [PUBLIC], "cc": [user_uri, f"{account.actor}/followers"],
                "object": status["boost_of"]}
    to, cc = _audience(account, status.get("visibility", "public"), status.get("mentions", []))
    content = status["content"]
    if stale and status.get("previous_content"):
        content = status["previous_content"]
    note: dict = {
        "id": uri, "type": "Note", "summary": status.get("summary"),
        "inReplyTo": status.get("in_reply_to"), "published": status["published"],
        "url": f"https://{account.domain}/@{account.username}/{status['id']}",
        "attributedTo": account.actor, "to": to, "cc": cc, "sensitive": bool(status.get("summary")),
        "atomUri": uri, "inReplyToAtomUri": status.get("in_reply_to"),
        "conversation": f"tag:{account.domain},2024-10-31:objectId={status['id']}:objectType=Conversation",
        "content": content, "contentMap": {"en": content},
        "attachment": [],
        "tag": [{"type": "Mention", "href": f"https://{m.split('@')[1]}/users/{m.split('@')[0]}", "name": f"@{m}"}
                for m in status.get("mentions", [])],
        "replies": {"id": f"{uri}/replies", "type": "Collection",
                    "first": {"type": "CollectionPage", "next": f"{uri}/replies?only_other_accounts=true&page=true",
                              "partOf": f"{uri}/replies", "items": []}},
    }
    if status.get("updated") and not stale:
        note["updated"] = status["updated"]
    for media in status.get("media", []):
        entry = {"type": "Document", "mediaType": media["mediaType"],
                 "url": media.get("url_override") or media_url_prefix + account.media_path(media),
                 "name": media.get("name"), "blurhash": media.get("blurhash"),
                 "width": media.get("width"), "height": media.get("height")}
        if media.get("focalPoint") is not None:
            entry["focalPoint"] = media["focalPoint"]
        note["attachment"].append(entry)
    return {"id": f"{uri}/activity", "type": "Create", "actor": account.actor, "published": status["published"],
            "to": to, "cc": cc, "object": note}


def outbox_json(account: FakeMastodonAccount, *, duplicate_ordered_items: str | None = None,
                media_url_prefix: str = "", extra_items: list | None = None) -> bytes:
    """outbox.json; with ``duplicate_ordered_items`` the key appears twice (text built by
    hand: a dict cannot hold a key twice)."""
    items = [activity_of(account, s, media_url_prefix=media_url_prefix) for s in account.statuses]
    items += list(extra_items or [])
    head = {"@context": CONTEXT, "id": "outbox.json", "type": "OrderedCollection",
            "totalItems": len(account.statuses)}
    body = json.dumps(head, ensure_ascii=False, indent=2)[:-2]   # drop the closing "\n}"
    if duplicate_ordered_items == "empty":
        body += ',\n  "orderedItems": []'
    elif duplicate_ordered_items == "stale":
        stale = [activity_of(account, s, media_url_prefix=media_url_prefix, stale=True) for s in account.statuses]
        body += ',\n  "orderedItems": ' + json.dumps(stale, ensure_ascii=False)
    elif duplicate_ordered_items is not None:
        raise ValueError(f"duplicate_ordered_items must be None, 'empty' or 'stale', not {duplicate_ordered_items!r}")
    body += ',\n  "orderedItems": ' + json.dumps(items, ensure_ascii=False, indent=2) + "\n}\n"
    return body.encode("utf-8")


def collection_json(name: str, uris: list[str]) -> bytes:
    return json.dumps({"@context": "https://www.w3.org/ns/activitystreams", "id": name,
                       "type": "OrderedCollection", "totalItems": len(uris), "orderedItems": uris},
                      ensure_ascii=False).encode()


def actor_json(account: FakeMastodonAccount) -> bytes:
    actor: dict = {
        "@context": CONTEXT, "id": account.actor, "type": "Person",
        "following": f"{account.actor}/following", "followers": f"{account.actor}/followers",
        "inbox": f"{account.actor}/inbox", "outbox": "outbox.json",
        "preferredUsername": account.username, "name": account.display_name, "summary": account.summary,
        "url": f"https://{account.domain}/@{account.username}", "published": "2022-11-05T00:00:00Z",
        "manuallyApprovesFollowers": False, "discoverable": True, "indexable": True,
        "attachment": [{"type": "PropertyValue", "name": "Blog", "value": "<a href=\"https://alice.example\">alice.example</a>"}],
        "publicKey": {"id": f"{account.actor}#main-key", "owner": account.actor,
                      "publicKeyPem": "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----\n"},
        "likes": "likes.json", "bookmarks": "bookmarks.json",
    }
    if account.avatar is not None:
        actor["icon"] = {"type": "Image", "mediaType": "image/png", "url": "avatar.png"}
    if account.header is not None:
        actor["image"] = {"type": "Image", "mediaType": "image/png", "url": "header.png"}
    return json.dumps(actor, ensure_ascii=False, indent=2).encode()


def archive_files(account: FakeMastodonAccount, *, duplicate_ordered_items: str | None = None,
                  media_url_prefix: str = "", extra_items: list | None = None) -> dict[str, bytes]:
    """Every file of the archive, by name, in the order BackupService writes them."""
    files: dict[str, bytes] = {}
    for status in account.statuses:
        for media in status.get("media", []):
            if not media.get("url_override"):   # the hostile post names entries added apart
                files[account.media_path(media)] = media["bytes"]
    files["outbox.json"] = outbox_json(account, duplicate_ordered_items=duplicate_ordered_items,
                                       media_url_prefix=media_url_prefix, extra_items=extra_items)
    files["likes.json"] = collection_json("likes.json", account.likes)
    files["bookmarks.json"] = collection_json("bookmarks.json", account.bookmarks)
    if account.avatar is not None:
        files["avatar.png"] = account.avatar
    if account.header is not None:
        files["header.png"] = account.header
    files["actor.json"] = actor_json(account)
    return files


# --------------------------------------------------------------------------- writing it out

HOSTILE_STATUS_ID = "666000666"
HOSTILE_NAMES = {
    "dotdot": "../escaped-dotdot.png",
    "symlink": "media_attachments/files/666/original/link.png",
    "hardlink": "media_attachments/files/666/original/hard.png",
}


def hostile_status(account: FakeMastodonAccount, absolute_name: str) -> dict:
    """A post whose attachments name the hostile entries (the importer must not follow)."""
    medias = []
    for index, url in enumerate([HOSTILE_NAMES["dotdot"], absolute_name, HOSTILE_NAMES["symlink"],
                                 HOSTILE_NAMES["hardlink"]]):
        medias.append({"id": f"666{index}", "bytes": b"", "mediaType": "image/png", "name": f"evil {index}",
                       "url_override": url})
    return {"id": HOSTILE_STATUS_ID, "kind": "text", "published": "2024-11-02T00:00:00Z",
            "content": "<p>hostile attachments</p>", "visibility": "public", "mentions": [], "media": medias}


def write_archive(account: FakeMastodonAccount, path: Path, *, duplicate_ordered_items: str | None = None,
                  media_url_prefix: str = "", missing: tuple[str, ...] = (), top_folder: str | None = None,
                  hostile: bool = False, extra_items: list | None = None,
                  extra_files: dict[str, bytes] | None = None, mtime: int = ARCHIVE_TIME) -> Path:
    """Write the archive of ``account`` to ``path`` (a tar.gz, or a folder) and return it."""
    path = Path(path)
    outside = path.parent / "outside-secret.txt"
    absolute_name = str(path.parent.resolve() / "escaped-absolute.png")
    if hostile:
        account = copy.copy(account)
        account.statuses = [*account.statuses, hostile_status(account, absolute_name)]
    files = archive_files(account, duplicate_ordered_items=duplicate_ordered_items,
                          media_url_prefix=media_url_prefix, extra_items=extra_items)
    files.update(extra_files or {})
    files = {name: data for name, data in files.items() if name not in missing}
    prefix = f"{top_folder.strip('/')}/" if top_folder else ""
    packed = path.name.endswith((".tar.gz", ".tgz", ".tar"))
    if packed:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode: Literal["w", "w:gz"] = "w" if path.name.endswith(".tar") else "w:gz"
        with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
            def add(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), mtime, 0o644
                tar.addfile(info, io.BytesIO(data))

            def link(name: str, target: str, kind: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.type, info.linkname, info.mtime = kind, target, mtime
                tar.addfile(info)

            for name, data in files.items():
                add(prefix + name, data)
            if hostile:
                add(HOSTILE_NAMES["dotdot"], png_bytes("evil-dotdot"))
                add(absolute_name, png_bytes("evil-absolute"))
                link(prefix + HOSTILE_NAMES["symlink"], str(outside.resolve()), tarfile.SYMTYPE)
                link(prefix + HOSTILE_NAMES["hardlink"], "../../../outside-secret.txt", tarfile.LNKTYPE)
        return path
    root = path / prefix if prefix else path
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        os.utime(target, (mtime, mtime))
    if hostile:
        outside.write_text("a file outside the archive: must never be imported\n")
        link_path = root / HOSTILE_NAMES["symlink"]
        link_path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(outside.resolve(), link_path)
    return path


def archive_name(moment: int = ARCHIVE_TIME, seed: int = 1) -> str:
    """``archive-YYYYMMDDHHMMSS-<32 hex>.tar.gz``, as Mastodon names it."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(moment))
    return f"archive-{stamp}-{random.Random(seed).getrandbits(128):032x}.tar.gz"
