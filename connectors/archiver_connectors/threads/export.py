"""The Threads files of Meta's "Download your information" export
(../shared/platforms/threads.md §6), from a Threads-only download or the ``threads/``
folder of an Instagram download; built on archiver_connectors.meta.export.

Where the files sit: in ``your_instagram_activity/threads/`` of an Instagram download;
in a Threads-only download the notes do not say ([U]), so a ``threads/`` folder, the
root and ``your_instagram_activity/threads/`` are all read. The folder is the one
holding ``threads_and_replies.json`` (or another file only Threads writes); the other
files are looked up in that same folder, so an Instagram download's own
``followers_1.json`` is never taken for Threads'. Media ``uri``s are relative to the
export root (``media/posts/YYYYMM/<n>.jpg|webp|mp4`` or bare ``media/<n>.jpg``).

- ``threads_and_replies.json`` (``text_post_app_text_posts``): the owner's posts and
  replies. No ids: each is a ``Post(native_id=None)`` with its exact ``created_at``
  (Unix seconds) and its text (``media[].title``, a carousel's post-level ``title``), so
  the writer merges it into the API's row of the same second (the API connector sets
  ``created_at`` and ``text`` the same way). Kinds: "text" (``uri`` ""), "image",
  "video", "carousel"; an item flagged ``text_app_post.is_reply`` (2026 exports; the
  2024 ones have no flag) is the owner's reply: kind "reply", as Mastodon's and Bluesky's.
- ``followers_1.json`` … / ``followers.json`` and ``following.json``: dated snapshots of
  people keyed by user name (``value``, ``title``, the href's last segment; threads.net
  and threads.com links alike), as the API keys the authors of replies.
- ``liked_threads.json`` (``text_post_app_media_likes``): likes the owner gave, keyed by
  the post's link on threads.com (an older export's threads.net link is the same post).
- ``personal_information.json``: the profile. Its labels are localized: the user name,
  name and bio are found by their label in the languages below, else by the download
  file's own user name, else by shape and order (meta.export.LabelledValues); contact
  data (e-mail, phone, birth date) never reaches the archive, in any language (only
  those three are kept).

Meta's mojibake is repaired in every string and key (meta.export.iter_items).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Iterator
from urllib.parse import urlsplit

from archiver.records import Interaction, ListKind, Membership, Page, PageBuffer, Person, Post, Profile
from archiver.sync.runner import RunFailed
from archiver_connectors.meta.export import (
    ExportReading,
    LabelledValues,
    MediaIndex,
    clean_text,
    epoch_iso,
    media_items,
    media_role,
    post_text,
    string_list_entry,
    username_of,
)

PAGE_SIZE = 50
PROFILE_URL = "https://www.threads.com/@{}"
POST_URL = "https://www.threads.com/@{}/post/{}"

# Files only Threads writes: any of them marks the folder holding the Threads part.
_OWN_FILES = re.compile(r"(?:threads_and_replies|liked_threads|saved_threads|archived_threads|threads_viewed)\.json",
                        re.I)
# Files with generic names, Threads' only inside a folder named threads/.
_IN_THREADS_FOLDER = re.compile(r"(?:^|/)threads/(?:followers(?:_\d+)?|following|personal_information|"
                                r"blocked_profiles|recent_follow_requests|recently_unfollowed_profiles)\.json$", re.I)

POSTS_FILE = re.compile(r"threads_and_replies(?:_\d+)?\.json", re.I)
FOLLOWERS_FILE = re.compile(r"followers(?:_\d+)?\.json", re.I)
FOLLOWING_FILE = re.compile(r"following(?:_\d+)?\.json", re.I)
LIKES_FILE = re.compile(r"liked_threads(?:_\d+)?\.json", re.I)
PROFILE_FILE = re.compile(r"personal_information\.json", re.I)

_WRAPPERS = ("text_post_app_text_posts", "text_post_app_text_post_app_followers",
             "text_post_app_text_post_app_following", "text_post_app_media_likes",
             "text_post_app_text_post_app_profile")

# personal_information.json labels by meaning, lower-cased, in the languages Meta exports in
# most (threads.md §6.1: localized). A label not here is simply not recognized.
_LABELS = {
    "username": {"username", "user name", "benutzername", "nom d’utilisateur", "nom d'utilisateur",
                 "nombre de usuario", "nome utente", "nome de usuário", "nome de utilizador", "gebruikersnaam",
                 "nazwa użytkownika", "kullanıcı adı", "användarnamn", "brugernavn", "brukernavn",
                 "käyttäjänimi", "ユーザーネーム", "사용자 이름", "用户名", "用戶名稱", "имя пользователя"},
    "name": {"name", "nom", "nombre", "nome", "naam", "imię i nazwisko", "ad", "namn", "navn", "nimi",
             "名前", "이름", "姓名", "名稱", "имя"},
    "bio": {"bio", "biografie", "steckbrief", "biographie", "biografía", "biografia", "biyografi", "biografi",
            "elämäkerta", "自己紹介", "소개", "简介", "個人簡介", "о себе", "биография"},
}


class UnknownLayout(RunFailed):
    """Not (or no longer) an export this module can read: the run ends with this message."""


# --------------------------------------------------------------------------- finding the files


def threads_folders(source) -> list[str]:
    """The folders (as entry-name prefixes, "" for the root) holding Threads files."""
    folders: dict[str, None] = {}
    for name in source.names():
        base = PurePosixPath(name).name
        if _OWN_FILES.fullmatch(base) or _IN_THREADS_FOLDER.search(name):
            folders.setdefault(name[:len(name) - len(base)])
    return sorted(folders, key=len)


def find_export(source) -> list[str]:
    """The entries that mark ``source`` as holding Threads data (empty: none). Names
    only, nothing is read: cheap enough to ask of every file in the inbox."""
    folders = threads_folders(source)
    return [n for n in source.names() if any(n.startswith(f) and "/" not in n[len(f):] for f in folders)
            and (_OWN_FILES.fullmatch(PurePosixPath(n).name) or _IN_THREADS_FOLDER.search(n))]


def _files(source, folders: list[str], pattern: re.Pattern[str]) -> list[str]:
    """The entries of the Threads folders whose own name matches ``pattern``, in number
    order (followers_2 after followers_1, followers_10 after both)."""
    found = [n for n in source.names() for f in folders
             if n.startswith(f) and pattern.fullmatch(n[len(f):])]
    return sorted(dict.fromkeys(found), key=lambda n: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", n)])


# --------------------------------------------------------------------------- mapping


def _is_reply(item: dict, media: list) -> bool:
    """``text_app_post.is_reply`` on the post or on any of its items (2026 exports)."""
    for holder in (item, *media):
        flag = (holder.get("text_app_post") or {}).get("is_reply") if isinstance(holder, dict) else None
        if flag is True or (isinstance(flag, str) and flag.strip().lower() == "true"):
            return True
    return False


def post_from_item(item: dict, media_index: MediaIndex) -> Post:
    """One post or reply of threads_and_replies.json (threads.md §6.2)."""
    media = media_items(item)
    if not media or not all(isinstance(m, dict) for m in media):
        raise ValueError("no media list")
    created_at = epoch_iso(item.get("creation_timestamp")) or epoch_iso(media[0].get("creation_timestamp"))
    if created_at is None:
        # Without its time a post could never be matched to its API twin.
        raise ValueError(f"no usable creation_timestamp ({media[0].get('creation_timestamp')!r})")
    refs = []
    for position, entry in enumerate(media):
        uri = entry.get("uri")
        if isinstance(uri, str) and uri.strip():   # "" is a text post's item
            refs.append(media_index.ref(uri, media_role(uri), position))
    if _is_reply(item, media):
        kind = "reply"
    elif len(refs) > 1:
        kind = "carousel"
    else:
        kind = refs[0].role if refs else "text"
    return Post(native_id=None, created_at=created_at, kind=kind, text=post_text(item, media), media=refs,
                raw={"section": "threads_and_replies", **item})


def membership_from_item(item: dict) -> Membership | None:
    name = username_of(item)
    if not name:
        return None
    title = clean_text(item.get("title"))   # the display name, or (newer exports) the user name again
    person = Person(native_id=name, handle=name, display_name=title if title != name else None,
                    url=PROFILE_URL.format(name))
    return Membership(person, epoch_iso(string_list_entry(item).get("timestamp")))


def like_from_item(item: dict) -> Interaction | None:
    """``{"title": author, "string_list_data": [{"href": post link, "value": reaction,
    "timestamp"}]}``; None without a link."""
    data = string_list_entry(item)
    href = clean_text(data.get("href"))
    if not href:
        return None
    target = href
    parts = urlsplit(href)
    if parts.hostname and parts.hostname.removeprefix("www.") in ("threads.net", "threads.com"):
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) == 3 and segments[1] == "post":
            target = POST_URL.format(segments[0].lstrip("@"), segments[2])
    return Interaction(kind="like", target=target, target_url=href, created_at=epoch_iso(data.get("timestamp")),
                       raw={"author": clean_text(item.get("title")), "reaction": clean_text(data.get("value")),
                            "href": href})


def _download_username(source) -> str | None:
    """The user name in the download's own file name (``instagram-<name>-<date>-<x>.zip``,
    the same for a Threads download [U]), or None."""
    found = re.match(r"(?:instagram|threads)-(.+?)-\d{4}-\d{2}-\d{2}", PurePosixPath(str(source.path)).name, re.I)
    return found.group(1) if found else None


def profile_from_item(item: dict, media_index: MediaIndex, download_username: str | None) -> Profile | None:
    """``{"string_map_data": {<label>: {"value"}, …}, "media_map_data": {<label>: {"uri"}}}``
    with the labels in English or localized: then found by the label in the languages of
    ``_LABELS``, else (the user name) as the download file's own user name, else by shape
    and order (``LabelledValues``: user name, name, bio are its first plain texts). None
    when no user name can be told. Only those three are kept: contact data never is."""
    values = LabelledValues(item, ("username", "name", "bio"))
    if not values.present:
        return None

    def pick(meaning: str, position: int) -> str | None:
        found = values.text(meaning)   # the English label (German's "Name" is one too)
        for label, entry in values.by_label.items():
            if found is None and label.strip() in _LABELS[meaning]:
                found = clean_text(entry.get("value"))
        if found is None and meaning == "username" and download_username in values.texts:
            found = download_username
        return found if found is not None else values.text(meaning, position)

    username = (pick("username", 0) or "").lstrip("@")
    if not username:
        return None
    avatar = None
    photos = item.get("media_map_data")
    for photo in (photos.values() if isinstance(photos, dict) else ()):   # the one picture, any label
        if isinstance(photo, dict) and isinstance(photo.get("uri"), str) and photo["uri"].strip():
            avatar = media_index.ref(photo["uri"], "avatar", 0)
            break
    display_name, bio = pick("name", 1), pick("bio", 2)
    return Profile(native_id=None, username=username, display_name=display_name, bio=bio,
                   url=PROFILE_URL.format(username), avatar=avatar,
                   raw={"string_map_data": {"username": username, "name": display_name, "bio": bio}})


# --------------------------------------------------------------------------- the import


def export_pages(source, ctx) -> Iterator[Page]:
    """Pages of records from the Threads part of one export. No stream state: a re-import
    merges into the same rows, and a finished import is recorded by its sha256."""
    folders = threads_folders(source)
    if not folders:
        raise UnknownLayout(
            f"{source.path}: no Threads export files found (looked for threads_and_replies.json, "
            "liked_threads.json and a threads/ folder with followers_1.json, following.json … anywhere inside). "
            "Is this Meta's \"Download your information\" export of your Threads profile, in JSON format (not HTML)?")
    media_index = MediaIndex(source)
    reading = ExportReading(source, ctx, _WRAPPERS)
    read = reading.items

    # -- profile
    for name in _files(source, folders, PROFILE_FILE):
        for item in read(name, "profile"):
            profile = profile_from_item(item, media_index, _download_username(source))
            if profile is None:
                ctx.report(f"profile in {name}", "no field of it could be told to be the user name (its labels "
                           f"are {', '.join(map(repr, list(item.get('string_map_data') or {})[:6]))}); the "
                           "profile is left as it is")
                continue
            yield Page("export:profile", [profile])
            break

    # -- posts and the owner's replies
    posts = PageBuffer("export:posts", PAGE_SIZE)
    for name in _files(source, folders, POSTS_FILE):
        for position, item in enumerate(read(name, "posts")):
            try:
                post = post_from_item(item, media_index)
            except Exception as error:  # one bad item is reported and skipped
                ctx.report(f"post {position} in {name}", f"{type(error).__name__}: {error}")
                continue
            if page := posts.add(post):
                yield page
    yield from posts.rest()

    # -- likes the owner gave
    likes = PageBuffer("export:likes", PAGE_SIZE * 10)
    for name in _files(source, folders, LIKES_FILE):
        for position, item in enumerate(read(name, "likes")):
            like = like_from_item(item)
            if like is None:
                ctx.report(f"like {position} in {name}", "no link to the liked post (string_list_data href)")
                continue
            if page := likes.add(like):
                yield page
    yield from likes.rest()

    # -- followers and following: one dated snapshot each, streamed
    sections: tuple[tuple[ListKind, re.Pattern[str]], ...] = (("followers", FOLLOWERS_FILE),
                                                              ("following", FOLLOWING_FILE))
    for kind, pattern in sections:
        if page := reading.snapshot_page(kind, _files(source, folders, pattern), membership_from_item,
                                         "no user name (value, title or href)"):
            yield page

    if reading.readable == 0:
        raise UnknownLayout(
            f"{source.path}: {', '.join(find_export(source)[:3])} mark this as holding a Threads export, but none of "
            "its files could be read as a layout this importer knows. The export layout may have changed: "
            "please report it.")
