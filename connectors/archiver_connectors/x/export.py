"""X's "Download an archive of your data", zipped or extracted, of every generation
(../shared/platforms/x-twitter.md: section A, then the 2022 notes), read as a stream.

Where things are. The data files sit in ``data/`` (below a top folder, if the zip was made
again from an extracted one). ``data/manifest.js`` (``window.__THAR_CONFIG``) is the source of
truth: it lists each data type (camelCase: ``tweets``, ``deletedTweets`` …) with its files
(``tweets.js``, then ``tweets-part1.js`` … when X split it at ~100 MB; ``tweet.js`` /
``tweet-part1.js`` in older archives) and its media folder. A part it does not list is never
read. Without a manifest, the ``.js`` files of ``data/`` are grouped by name instead.

What lands (as the API's runs write it too: docs/schema.md, "X"):

- posts of tweets.js (and community-tweet.js: ``visibility = "community"``; deleted-tweets.js:
  with ``deleted_at``), each mapped by x/tweets.py: kind (text, reply, quote, boost), the full
  text (a long post's from note-tweet.js), links expanded, mentions, hashtags, counts, the
  versions of an edited post as one post keyed by its first id, the media files of
  ``tweets_media/`` (``<tweet id>-<name>``; the chosen video variant; ``<tweet id>-*`` when
  the name differs). Parts come in any order: an edit chain is held until its versions are
  all read, nothing else is;
- the people posts name (mentions, the replied-to user) with their handles and names;
- likes (like.js) as interactions;
- followers and following as snapshots dated by the manifest's ``generationDate``;
- the profile: account.js (never its email) and profile.js, pictures from ``profile_media/``.

Every other data type the manifest lists is named in the run's summary as not imported. A
bad item is reported and skipped; a damaged file is reported and the import goes on.
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterator

import archiver_connectors.x.tweets as mapping
from archiver.records import (
    Interaction,
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
from archiver_connectors.x.ytd import iter_items, load_value, looks_wrapped

POST_PAGE = 100
PEOPLE_PAGE = 500
LIKE_PAGE = 1000
# Versions of edited posts are held until the chain is whole (parts come in any order); a
# real archive has a few open at a time, so more than this means a damaged file.
MAX_OPEN_CHAINS = 10_000
# A long post without a tweetId is joined to the post written within this many seconds of it.
NOTE_TIME_SLACK = 2

# Data types whose elements are tweets, and what sets their posts apart.
POST_TYPES: dict[str, dict[str, Any]] = {"tweets": {}, "tweet": {}, "communityTweet": {"visibility": "community"},
              "twitterCircleTweet": {"audience": "circle"}, "deletedTweets": {"deleted": True}}
NOTE_TYPES = ("noteTweet", "deletedNoteTweet")
# Each post type's media folder when the manifest names none (older names last).
MEDIA_FOLDERS = {"tweets": ("tweets_media", "tweet_media"), "tweet": ("tweet_media", "tweets_media"),
                 "communityTweet": ("community_tweet_media",), "twitterCircleTweet": ("twitter_circle_tweet_media",),
                 "deletedTweets": ("deleted_tweets_media",), "profile": ("profile_media",)}
# 2026 manifests list the media folders as types of their own (only ``mediaDirectory``).
MEDIA_ONLY_TYPES = {"tweetsMedia": "tweets", "tweetMedia": "tweet", "communityTweetMedia": "communityTweet",
                    "twitterCircleTweetMedia": "twitterCircleTweet", "deletedTweetsMedia": "deletedTweets",
                    "profileMedia": "profile"}
READ_TYPES = {*POST_TYPES, *NOTE_TYPES, *MEDIA_ONLY_TYPES, "account", "profile", "like", "follower", "following"}
# Read by name and left aside on purpose, with the reason the summary gives.
ASIDE = {"tweetHeaders": "ids and times of the posts of tweets.js, nothing more",
         "deletedTweetHeaders": "ids and times of the posts of deleted-tweets.js, nothing more"}
# Files whose presence (wrapped as X writes them) marks an archive as X's.
_MARKERS = re.compile(r"^(?:manifest|tweets?|tweets?-part\d+|account)\.js$", re.I)
_PART = re.compile(r"^(.+?)-part(\d+)$")
_TCO = re.compile(r"https?://t\.co/\w+")
_MISSING_HINT = "X leaves some files out of its archives (large videos, the media of others' posts)"


class UnknownLayout(RunFailed):
    """Not (or no longer) an archive this module can read. A RunFailed: the run ends with
    this message, recorded and shown without a traceback."""


# --------------------------------------------------------------------------- the layout


def _data_folder(source) -> str | None:
    """The folder holding the data files ("data/", "<top>/data/", or "" for a folder that is
    data/ itself), found by names and a look at the first bytes; None: not X's archive."""
    candidates = sorted((name for name in source.names() if _MARKERS.match(posixpath.basename(name))),
                        key=lambda name: (name.count("/"), not name.lower().endswith("manifest.js"), name))
    for name in candidates:
        if looks_wrapped(source, name):
            folder = posixpath.dirname(name)
            return folder + "/" if folder else ""
    return None


def camel(stem: str) -> str:
    """``deleted-tweets`` → ``deletedTweets`` (a file's name → the manifest's type name)."""
    head, *rest = stem.split("-")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


@dataclass
class Layout:
    """Which entries hold what: each data type's files (parts in order) and media folders,
    from the manifest or, without one, from the file names."""

    data: str                                       # the data folder, with its "/"
    manifest_name: str | None = None
    manifest: dict[str, Any] | None = None
    files: dict[str, list[str]] = field(default_factory=dict)     # type -> entries, in part order
    listed_counts: dict[str, int | None] = field(default_factory=dict)  # type -> the manifest's count
    missing: dict[str, list[str]] = field(default_factory=dict)   # type -> files listed but absent
    refused: dict[str, list[str]] = field(default_factory=dict)   # type -> paths leading out of the archive
    media: dict[str, list[str]] = field(default_factory=dict)     # type -> media folders (with "/")

    @property
    def root(self) -> str:
        """What the manifest's paths ("data/tweets.js") are relative to."""
        return self.data[: -len("data/")] if self.data.lower().endswith("data/") else self.data

    def resolve(self, names: set[str], path: str) -> str | None:
        """The entry the manifest's ``path`` names (as written, or in the data folder).
        A path that leads out of the archive names nothing (see ``outside``)."""
        path = path.strip().removeprefix("./")
        if outside(path):
            return None
        for candidate in (self.root + path, self.data + posixpath.basename(path)):
            if candidate in names:
                return candidate
        return None

    def user_info(self) -> dict[str, Any]:
        info = (self.manifest or {}).get("userInfo")
        return info if isinstance(info, dict) else {}

    def generation_date(self) -> str | None:
        info = (self.manifest or {}).get("archiveInfo")
        try:
            return iso_utc(info.get("generationDate")) if isinstance(info, dict) else None
        except (TypeError, ValueError):
            return None


def outside(path: str) -> bool:
    """A manifest path that could lead out of the archive's folder: never looked up."""
    return (not path or path.startswith("/") or "\\" in path or "\x00" in path or re.match(r"^[A-Za-z]:", path) is not None
            or ".." in path.split("/"))


def _part_order(name: str) -> tuple[int, str]:
    stem = posixpath.basename(name)[:-3]
    found = _PART.match(stem)
    return (int(found.group(2)) if found else 0), name


def _layout_from_names(source, data: str) -> Layout:
    layout = Layout(data)
    for name in source.names():
        if not name.startswith(data) or "/" in name[len(data):] or not name.lower().endswith(".js"):
            continue
        stem = posixpath.basename(name)[:-3]
        if stem.lower() == "manifest":
            continue
        found = _PART.match(stem)
        layout.files.setdefault(camel(found.group(1) if found else stem), []).append(name)
    for names in layout.files.values():
        names.sort(key=_part_order)
    return layout


def _layout_from_manifest(source, data: str, manifest_name: str, manifest: dict) -> Layout:
    layout = Layout(data, manifest_name, manifest)
    names = set(source.names())
    types = manifest.get("dataTypes")
    for kind, described in (types.items() if isinstance(types, dict) else ()):
        if not isinstance(described, dict):
            continue
        folder = described.get("mediaDirectory")
        folder = folder.strip().removeprefix("./").strip("/") if isinstance(folder, str) else ""
        if folder and not outside(folder):
            owner = MEDIA_ONLY_TYPES.get(kind) or kind
            # As written ("data/tweets_media"), or in the data folder (the data folder imported alone).
            for candidate in dict.fromkeys((layout.root + folder + "/", layout.data + posixpath.basename(folder) + "/")):
                layout.media.setdefault(owner, []).append(candidate)
        files = described.get("files")
        if not isinstance(files, list):
            continue   # a media-only type
        layout.files[kind] = []
        total: int | None = 0
        for entry in files:
            if not isinstance(entry, dict) or not isinstance(entry.get("fileName"), str):
                continue
            found = layout.resolve(names, entry["fileName"])
            if outside(entry["fileName"].strip().removeprefix("./")):
                layout.refused.setdefault(kind, []).append(entry["fileName"])
            elif found is None:
                layout.missing.setdefault(kind, []).append(entry["fileName"])
            else:
                layout.files[kind].append(found)
            number = mapping.count(entry.get("count"))
            total = None if total is None or number is None else total + number
        layout.files[kind].sort(key=_part_order)
        layout.listed_counts[kind] = total
    return layout


def read_layout(source, ctx=None) -> Layout | None:
    """The archive's layout; None when ``source`` is not X's archive. A manifest that
    cannot be read is reported (with ``ctx``) and the file names are used instead."""
    from archiver.sync.imports import ExportFileError

    data = _data_folder(source)
    if data is None:
        return None
    manifest_name = next((n for n in source.names() if n.lower() == data.lower() + "manifest.js"), None)
    if manifest_name is not None:
        try:
            manifest = load_value(source, manifest_name)
        except ExportFileError as error:
            if ctx is not None:
                ctx.report(manifest_name, f"{error} The data files were found by their names instead.")
        else:
            if isinstance(manifest, dict) and isinstance(manifest.get("dataTypes"), dict):
                return _layout_from_manifest(source, data, manifest_name, manifest)
            if ctx is not None:
                ctx.report(manifest_name, f"{source.path}: {manifest_name} holds no dataTypes (not a manifest X "
                           "writes); the data files were found by their names instead")
    layout = _layout_from_names(source, data)
    layout.manifest_name = manifest_name
    return layout


def find_export(source) -> list[str]:
    """The archive's data files the importer reads (empty: not an X archive). Names and the
    first bytes of a few files only: cheap enough for every file of the inbox."""
    data = _data_folder(source)
    if data is None:
        return []
    layout = _layout_from_names(source, data)
    found = [name for kind, names in layout.files.items() if kind in READ_TYPES for name in names]
    manifest = data + "manifest.js"
    return [n for n in source.names() if n.lower() == manifest.lower()] + found


# --------------------------------------------------------------------------- media files


class MediaFiles:
    """The files of the media folders, by folder and name (names only), and which entry
    holds the file of one medium of one post: ``<tweet id>-<name>`` (or, for a medium
    re-used from another post, ``<that post's id>-<name>``), else (X names a file otherwise
    now and then) a file of that post's id not taken by another of its media, of the same
    kind (video or picture)."""

    def __init__(self, source, folders: list[str]):
        self.source = source
        self.folders = folders
        self._by_post: dict[str, dict[str, list[str]]] = {folder: defaultdict(list) for folder in folders}
        self._names: set[str] = set()
        for name in source.names():
            folder, _, base = name.rpartition("/")
            folder += "/"
            if folder in self._by_post:
                self._names.add(name)
                owner = base.split("-", 1)[0]
                self._by_post[folder][owner].append(name)

    def entries_of(self, post_id: str, media: list[dict]) -> list[str | None]:
        """The entry of each medium (None: not in the archive)."""
        wanted = [mapping.media_file_name(medium) for medium in media]
        found: list[str | None] = [None] * len(media)
        taken: set[str] = set()
        for position, name in enumerate(wanted):
            # A medium re-used from another post may be filed under that post's id only.
            origin = media[position].get("source_status_id_str") or media[position].get("source_status_id")
            owners = [post_id] + ([str(origin)] if origin and str(origin) != post_id else [])
            for candidate in (f"{folder}{owner}-{name}" for owner in owners for folder in self.folders):
                if name and candidate in self._names:
                    found[position] = candidate
                    taken.add(candidate)
                    break
        for position, medium in enumerate(media):
            if found[position] is not None:
                continue
            video = medium.get("type") in ("video", "animated_gif")
            for folder in self.folders:
                spare = [n for n in sorted(self._by_post[folder].get(post_id, ()))
                         if n not in taken and n.lower().endswith(".mp4") == video]
                if spare:
                    found[position] = spare[0]
                    taken.add(spare[0])
                    break
        return found

    def named(self, post_id: str, medium: dict) -> str:
        folder = self.folders[0] if self.folders else "tweets_media/"
        return f"{folder}{post_id}-{mapping.media_file_name(medium) or '*'}"


# --------------------------------------------------------------------------- long posts


class Notes:
    """The long posts of note-tweet.js (and deleted-note-tweet.js), joined to their posts:
    by ``tweetId`` where the note names it, else [U] by time (to the second) and by the
    post's cut text being the start of the note's."""

    def __init__(self) -> None:
        self.by_tweet: dict[str, dict] = {}
        self.by_time: dict[str, list[dict]] = defaultdict(list)
        self.used: set[int] = set()
        self.count = 0

    def add(self, note: dict) -> None:
        self.count += 1
        if note["tweet_id"]:
            self.by_tweet[note["tweet_id"]] = note
        elif note["created_at"]:
            self.by_time[note["created_at"]].append(note)

    @staticmethod
    def _start(text: str) -> str:
        return " ".join(text.split("…", 1)[0].split())[:80]

    def find(self, versions: list[dict]) -> dict | None:
        for version in versions:
            found = self.by_tweet.get(mapping.tweet_id(version))
            if found is not None:
                self.used.add(id(found))
                return found
        if not self.by_time:
            return None
        for version in reversed(versions):
            try:
                created = mapping.x_date(version.get("created_at"))
            except ValueError:
                continue
            if created is None:
                continue
            start = self._start(mapping.text_of(version))
            for note in (n for when in self._around(created) for n in self.by_time.get(when, ())):
                if id(note) not in self.used and " ".join(note["text"].split()).startswith(start):
                    self.used.add(id(note))
                    return note
        return None

    @staticmethod
    def _around(moment: str, seconds: int = NOTE_TIME_SLACK) -> list[str]:
        """``moment`` and the seconds around it, nearest first: a note's createdAt may not
        be its post's created_at to the second [U]."""
        at = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
        offsets = sorted(range(-seconds, seconds + 1), key=abs)
        return [iso_utc(at + dt.timedelta(seconds=offset)) for offset in offsets]

    def unmatched(self) -> list[dict]:
        every = [*self.by_tweet.values(), *(n for notes in self.by_time.values() for n in notes)]
        return [note for note in every if id(note) not in self.used]


# --------------------------------------------------------------------------- the import


class _Import:
    """One import's reading of one archive: what it read of each type (for the summary),
    the people it has written, the t.co links of the profile it looks for."""

    def __init__(self, source, ctx, layout: Layout):
        self.source, self.ctx, self.layout = source, ctx, layout
        self.read_counts: dict[str, int] = defaultdict(int)
        self.people_sent: dict[str, bool] = {}   # id -> whether its name was sent too
        self.owner_id: str | None = None
        self.username: str | None = None
        self.wanted_tco: dict[str, str | None] = {}   # the profile's t.co links -> what they stand for

    def items(self, kind: str) -> Iterator[tuple[str, int, Any]]:
        """(file, position, element) of every file of one type; a damaged file is reported
        (its items before the damage are kept) and the next file is read."""
        from archiver.sync.imports import ExportFileError

        for name in self.layout.files.get(kind, ()):
            position = -1
            try:
                for position, item in enumerate(iter_items(self.source, name)):
                    self.read_counts[kind] += 1
                    yield name, position, item
            except ExportFileError as error:
                self.ctx.report(f"{kind} in {name}" + (f" after item {position}" if position >= 0 else ""),
                                str(error))

    def records(self, kind: str, wrapper: str) -> Generator[tuple[str, int, dict], None, None]:
        """The objects of one type, unwrapped (``{"tweet": {...}}`` → the tweet; a bare
        object is taken as it is); any other element is reported and skipped."""
        for name, position, item in self.items(kind):
            inner = item.get(wrapper) if isinstance(item, dict) and wrapper in item else item
            if isinstance(inner, dict):
                yield name, position, inner
            else:
                # The value is not quoted: account.js holds the email.
                self.ctx.report(f"item {position} of {name}",
                                f"expected an object, found {type(inner).__name__}; skipped")

    # -- people named in posts

    def people_in(self, tweet: dict) -> list[Person]:
        fresh = []
        for person in mapping.people_of(tweet):
            if person.native_id == self.owner_id:
                continue
            named = person.display_name is not None
            sent = self.people_sent.get(person.native_id)
            if sent is None or (named and not sent):
                self.people_sent[person.native_id] = named or bool(sent)
                fresh.append(person)
        return fresh


def export_pages(source, ctx) -> Iterator[Page]:
    """Pages of records from one archive. No stream state: a re-import merges into the
    same rows, and a finished import is recorded by its sha256 so it is skipped later."""
    layout = read_layout(source, ctx)
    if layout is None:
        raise UnknownLayout(
            f"{source.path}: no X archive found (looked for data/manifest.js, data/tweets.js, data/tweet.js or "
            "data/account.js starting `window.YTD.`). Is this the zip of X's \"Download an archive of your data\" "
            "(or the folder it was extracted to)?")
    run = _Import(source, ctx, layout)
    for kind, absent in layout.missing.items():
        for file_name in absent:
            ctx.report(f"{kind} ({file_name})", f"{source.path}: the manifest lists {file_name}, which the archive "
                       "does not hold; its data is not imported (was the archive extracted or copied only in part?)")

    for kind, paths in layout.refused.items():
        for path in paths:
            ctx.report(f"{kind} ({path[:200]!r})", f"{source.path}: the manifest names {path[:200]!r}, a path outside "
                       "the archive's folder; it was never read (a manifest X writes names files in data/ only)")

    account = _first_record(run, "account", "account")
    if account is not None:
        run.owner_id = _text(account.get("accountId"))
        run.username = _text(account.get("username"))
    info = layout.user_info()
    run.owner_id = run.owner_id or _text(info.get("accountId"))
    run.username = run.username or _text(info.get("userName"))
    profile = _first_record(run, "profile", "profile")
    if profile is not None:
        description = _dict(profile.get("description"))
        for value in (description.get("bio"), description.get("website")):
            for tco in _TCO.findall(value if isinstance(value, str) else ""):
                run.wanted_tco[tco] = None

    notes = Notes()
    for kind in NOTE_TYPES:
        for name, position, record in run.records(kind, "noteTweet"):
            note = mapping.note_text({"noteTweet": record})
            if note is None:
                ctx.report(f"item {position} of {name}", "a long post without text; skipped")
            else:
                notes.add(note)

    yield from _posts(run, notes)
    for note in notes.unmatched():
        where = note["record"].get("noteTweetId") or note["created_at"] or "?"
        ctx.report(f"long post {where} of note-tweet.js", "no post of the archive matches it (by tweetId, or by "
                   "time and text): its full text is not imported; the post's shortened text is, if the archive "
                   "holds it")
    yield from _likes(run)
    lists: tuple[tuple[str, ListKind], ...] = (("follower", "followers"), ("following", "following"))
    for kind, list_kind in lists:
        page = _snapshot(run, kind, list_kind)
        if page is not None:
            yield page
    if account is not None or profile is not None or info:
        yield Page("export:profile", [_profile(run, account or {}, profile or {}, info)])
    _summary(run)


def _text(value: Any) -> str | None:
    return str(value).strip() or None if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _first_record(run: _Import, kind: str, wrapper: str) -> dict | None:
    records = run.records(kind, wrapper)
    try:
        found = next(records, None)
    finally:
        records.close()   # the file is closed now, not when the generator is collected
    return found[2] if found else None


# -- posts


def _posts(run: _Import, notes: Notes) -> Iterator[Page]:
    posts = PageBuffer("export:posts", POST_PAGE)
    people = PageBuffer("export:people", PEOPLE_PAGE)
    for kind, traits in POST_TYPES.items():
        if not run.layout.files.get(kind):
            continue
        folders = run.layout.media.get(kind) or [run.layout.data + f + "/" for f in MEDIA_FOLDERS.get(kind, ())]
        files = MediaFiles(run.source, folders)
        chains: dict[str, list[tuple[str, dict]]] = {}   # edited posts whose versions are not all read yet
        for name, position, tweet in run.records(kind, "tweet"):
            try:
                own_id = mapping.tweet_id(tweet)
                first, chain_ids = mapping.edit_chain(tweet)
                named = run.people_in(tweet)
                for link in mapping.links_of(tweet):
                    if link["tco"] in run.wanted_tco:
                        run.wanted_tco[link["tco"]] = link["url"]
            except Exception as error:  # one bad item is reported and skipped
                run.ctx.report(f"item {position} of {name}", f"{error}; skipped")
                continue
            for person in named:
                if page := people.add(person):
                    yield page
            if len(chain_ids) > 1 or (first and first != own_id):
                key = first or own_id
                held = chains.setdefault(key, [])
                held.append((name, tweet))
                if not set(chain_ids) <= {mapping.tweet_id(version) for _, version in held}:
                    if len(chains) <= MAX_OPEN_CHAINS:
                        continue
                    key = next(iter(chains))   # too many chains open (a damaged file): the oldest goes as it is
                versions = chains.pop(key)
            else:
                versions = [(name, tweet)]
            post = _post(run, kind, traits, versions, files, notes)
            if post is not None and (page := posts.add(post)):
                yield page
        for versions in chains.values():   # chains with a version the archive lacks
            post = _post(run, kind, traits, versions, files, notes)
            if post is not None and (page := posts.add(post)):
                yield page
    yield from people.rest()
    yield from posts.rest()


def _post(run: _Import, kind: str, traits: dict, versions: list[tuple[str, dict]], files: MediaFiles,
          notes: Notes) -> Post | None:
    tweets = [tweet for _, tweet in versions]
    file_name = versions[-1][0]
    try:
        newest = max(tweets, key=lambda t: int(mapping.tweet_id(t)))
        own_id = mapping.tweet_id(newest)
        media = mapping.media_of(newest)
        entries = files.entries_of(own_id, media)

        def opener_of(post_id: str, medium: dict, position: int) -> Callable[[], Any]:
            return run.source.opener(entries[position], named=files.named(post_id, medium),
                                     named_in=f"{file_name} (post {post_id})", hint=_MISSING_HINT)

        extra: dict[str, Any] = {}
        if traits.get("audience"):
            extra["audience"] = traits["audience"]
        post = mapping.post_from_tweets(tweets, username=run.username, opener_of=opener_of,
                                        note=notes.find(tweets), extra_raw=extra)
        post.visibility = traits.get("visibility")
        if traits.get("deleted"):
            deleted_at = mapping.x_date(newest.get("deleted_at"))
            if deleted_at is None:
                raise ValueError("a deleted post without deleted_at")
            post.deleted_at = deleted_at   # the platform's own record: the writer tombstones it
        return post
    except Exception as error:  # one bad item is reported and skipped
        ids = ", ".join(str(t.get("id_str") or t.get("id") or "?") for t in tweets)
        run.ctx.report(f"post {ids} in {file_name}", f"{type(error).__name__}: {error}; skipped")
        return None


# -- likes


def _likes(run: _Import) -> Iterator[Page]:
    likes = PageBuffer("export:likes", LIKE_PAGE)
    for name, position, like in run.records("like", "like"):
        target = _text(like.get("tweetId"))
        if target is None or not target.isdigit():
            run.ctx.report(f"item {position} of {name}", "a like without a tweetId; skipped")
            continue
        raw = {"text": like["fullText"]} if isinstance(like.get("fullText"), str) else {}
        if page := likes.add(Interaction(kind="like", target=target, target_url=f"https://x.com/i/web/status/{target}",
                                         raw=raw)):
            yield page
    yield from likes.rest()


# -- followers and following


def _taken_at(run: _Import, names: list[str]) -> str:
    """When the archive was made: the manifest's generationDate, else the newest time of
    the list files, else the archive file's."""
    made = run.layout.generation_date()
    if made:
        return made
    times = [t for t in (run.source.modified_at(n) for n in names) if t is not None]
    newest = max(times) if times else dt.datetime.fromtimestamp(os.stat(run.source.path).st_mtime, dt.timezone.utc)
    return iso_utc(newest)


def _snapshot(run: _Import, kind: str, list_kind: ListKind) -> Page | None:
    """One list as a dated snapshot, streamed; None when the archive holds no such file (a
    list missing says nothing about who left). A skipped entry or a damaged file makes it
    partial: nobody is taken for lost on its word."""
    names = run.layout.files.get(kind)
    if not names:
        return None
    snapshot = Snapshot(list_kind, _taken_at(run, names), [])

    def members() -> Iterator[Membership]:
        errors_before = len(run.ctx.errors)
        for name, position, entry in run.records(kind, kind):
            account_id = _text(entry.get("accountId"))
            if account_id is None or not account_id.isdigit():
                run.ctx.report(f"{kind} entry {position} in {name}", "no accountId; skipped")
                continue
            link = _text(entry.get("userLink")) or f"https://twitter.com/intent/user?user_id={account_id}"
            yield Membership(Person(native_id=account_id, url=link))
        if len(run.ctx.errors) > errors_before or run.layout.missing.get(kind) or run.layout.refused.get(kind):
            snapshot.complete = False

    snapshot.members = members()
    return Page(f"export:{list_kind}", [snapshot])


# -- the profile


def _profile(run: _Import, account: dict, profile: dict, info: dict) -> Profile:
    description = _dict(profile.get("description"))

    def expanded(value: Any) -> str | None:
        text = _text(value)
        if text is None:
            return None
        return _TCO.sub(lambda m: run.wanted_tco.get(m.group(0)) or m.group(0), text)

    folders = run.layout.media.get("profile") or [run.layout.data + "profile_media/"]
    owner = run.owner_id or ""

    def picture(url_key: str, role: str) -> MediaRef | None:
        url = _text(profile.get(url_key))
        if url is None or not url.startswith("http"):
            return None
        base = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        names = run.source.names()
        entry = None
        for folder in folders:
            exact = f"{folder}{owner}-{base}"
            found = [n for n in names if n == exact or (n.startswith(exact + ".") and "/" not in n[len(folder):])]
            if found:
                entry = found[0]
                break
        opener = run.source.opener(entry, named=f"{folders[0]}{owner}-{base}", named_in="profile.js",
                                   hint=_MISSING_HINT) if entry else None
        return MediaRef(url=url, role=role, opener=opener)

    # account.js holds the email (and the creation IP in some years): only these are kept.
    kept_account = {k: account[k] for k in ("username", "accountId", "accountDisplayName", "createdAt", "createdVia")
                    if k in account}
    return Profile(
        native_id=run.owner_id,
        username=run.username,
        display_name=_text(account.get("accountDisplayName")) or _text(info.get("displayName")),
        bio=expanded(description.get("bio")),
        url=expanded(description.get("website")),
        avatar=picture("avatarMediaUrl", "avatar"),
        banner=picture("headerMediaUrl", "banner"),
        as_of=run.layout.generation_date(),
        raw={"account": kept_account, "profile": profile, "location": description.get("location")},
    )


# -- what the run's summary says


def _summary(run: _Import) -> None:
    """Every data type of the manifest is imported or named here as not imported; a type
    whose count is not what the manifest says is named too."""
    layout = run.layout
    described = (layout.manifest or {}).get("dataTypes")
    listed_types = set(layout.files) | set(described if isinstance(described, dict) else {})
    not_read = sorted(k for k in listed_types if k not in READ_TYPES and k not in ASIDE)
    with_items = [k for k in not_read if layout.listed_counts.get(k) != 0]
    empty = [k for k in not_read if layout.listed_counts.get(k) == 0]
    if not_read:
        def label(kind: str) -> str:
            number = layout.listed_counts.get(kind)
            return f"{kind} ({number})" if number else kind

        line = f"not imported: {len(not_read)} data type(s) of the X archive this version does not read"
        if with_items:
            line += ": " + ", ".join(label(k) for k in with_items)
        if empty:
            line += ("; and, empty: " if with_items else ", all empty: ") + ", ".join(empty)
        run.ctx.note(line + "; they stay in your archive file")
    aside = [k for k in ASIDE if k in listed_types]
    if aside:
        run.ctx.note("not imported: " + "; ".join(f"{k} ({ASIDE[k]})" for k in aside))
    # Named above by data type: the core's list of files not read need not repeat them.
    run.source.named_by_importer(name for kind in (*not_read, *aside) for name in layout.files.get(kind, ()))
    for kind in sorted(listed_types & READ_TYPES):
        expected = layout.listed_counts.get(kind)
        if expected is not None and kind in layout.files and run.read_counts.get(kind, 0) != expected:
            run.ctx.note(f"{kind}: the manifest counts {expected} item(s), the archive's files hold "
                         f"{run.read_counts.get(kind, 0)}")
