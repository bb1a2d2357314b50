"""X's "Download an archive of your data", written from a made-up world: for tests, the
simulator's --write-export and the import benchmark. Faithful to
../shared/platforms/x-twitter.md (section A's 2026 corrections, the 2022 appendix after;
both fixture checklists, §5).

    world = sample_world()                      # every quirk of the notes, a dozen posts
    write_archive(tmp / "twitter.zip", world)   # the 2026 generation, zipped
    write_archive(tmp / "x", world, generation="2021", zipped=False, parts=2)

    big = big_world(posts=200_000)              # posts come from a generator: bounded memory
    write_archive(tmp / "big.zip", big)         # a tweets.js of ~300 MB

The world (``XWorld``) is what the person's account holds: ``XPost`` (with ``XMedia``,
``XReply``, ``XEdit``), ``XUser`` (followers, following, people mentioned), ``XLike``,
``XProfile``. ``XPost.text`` is the text the importer must end up with: HTML-unescaped,
links in full (each also in ``links``), no trailing media link, the long text of a note
tweet. The writer makes what X writes from it: HTML-escaped ``full_text`` with t.co links
(``tco_link``), entities with string indices, the media link appended, a note tweet's
``full_text`` cut short, one tweet per edit version.

Generations (``generation``):

- ``"2026"`` (default): ``tweets.js`` (``YTD.tweets.part0``), ``tweets_media/``, ``x.com``
  / ``pic.x.com`` media links, ``edit_info.initial`` with ``isEditEligible: false``,
  ``note-tweet.js``, ``deleted-note-tweet.js`` (empty), ``community-tweet.js``,
  ``account.createdVia: "oauth:3033300"``, media-only manifest types (``tweetsMedia`` …:
  only ``mediaDirectory``), the 2026 data types as files (``grok-chat-item.js``,
  ``message-event.js``, ``block.js``, ``mute.js`` …) an importer must name as not imported.
- ``"2022"``: ``tweets.js``, ``twitter.com`` / ``pic.twitter.com`` links, ``edit_info``,
  ``deleted-tweets.js``, the media directory on the data type itself, no note tweets.
- ``"2021"``: ``tweet.js`` (``YTD.tweet.part0``, parts ``tweet-part1.js``), ``tweet_media/``,
  no ``edit_info``, no deleted tweets, ``twitter.com`` links.

Every file: ``window.YTD.<snake_name>.part<N> = `` + a JSON array pretty-printed with
``" : "`` (an empty one is ``[ ]``); numbers as strings; ``manifest.js`` is
``window.__THAR_CONFIG = {…}``. follower/following ``userLink``s are ``twitter.com/intent``
in every generation; ``like.js``'s ``expandedUrl`` is ``twitter.com/i/web/status``.

Knobs of ``write_archive`` (the notes' [U]s and quirks): ``zipped`` (a zip, else the folder
it unzips to), ``top_folder`` (a folder inside the zip holding it all, as a re-zipped
download has), ``parts`` (the tweets spread over N part files, post k in part k % N) or
``part_bytes`` (a new part once one reaches that size, as X splits at ~100 MB),
``part_order`` ("natural" or "shuffled": the manifest's list and the zip's entries),
``stray_part`` (a ``tweets-part9.js`` holding ``STRAY_POST_ID`` that the manifest does not
list: never to be imported), ``edit_variant`` ("initial": every version carries
``edit_info.initial``; "edit": later versions carry the unconfirmed ``edit_info.edit``),
``note_shape`` ("results": ``noteTweetResults`` + ``tweetId`` as the notes' third-party doc
shows; "core": ``core.text`` and no ``tweetId`` [U: both unconfirmed]), ``counts`` ("real";
"float_zero": a zero count written ``"0.0"``; "zeroed": every count ``"0.0"``, the
third-party claim), ``media_files`` (False: no media files at all), ``viewer`` (``Your
archive.html`` and ``assets/``), ``old_names`` (``tweet.js`` naming, default only for 2021:
the notes saw it in a 2022 archive too), ``pretty`` (False: the posts' files hold one compact
record a line, faster to write — for benchmarks; X pretty-prints), ``tweet_wrapper`` (False:
the tweets files hold bare tweet objects, not ``{"tweet": {…}}``: "older exports may" [U]).
A medium with ``in_archive=False`` is named in its post but its file is absent.

Deterministic: the same world, generation and knobs give the same bytes (``world.seed``
drives every choice; zip entries carry the generation date).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import random
import re
import shutil
import struct
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

GENERATIONS = ("2026", "2022", "2021")
UTC = dt.timezone.utc
# When each generation's default archive was made (the manifest's generationDate).
GENERATION_DATES = {
    "2026": dt.datetime(2026, 3, 6, 13, 5, 11, 412000, tzinfo=UTC),
    "2022": dt.datetime(2022, 11, 21, 15, 3, 41, 34000, tzinfo=UTC),
    "2021": dt.datetime(2021, 6, 14, 8, 41, 2, 651000, tzinfo=UTC),
}
TWITTER_EPOCH_MS = 1288834974657          # snowflake ids count milliseconds from here
WEB_APP = '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>'
IPHONE = '<a href="http://twitter.com/download/iphone" rel="nofollow">Twitter for iPhone</a>'
STRAY_POST_ID = "1999999999999999999"    # the post of the stray part the manifest does not list
NOTE_CUT = 270                           # a note tweet's full_text keeps this many characters [U]
CREATED_VIA_2026 = "oauth:3033300"


# --------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class XUser:
    """Another account (or the owner). ``handle`` is the screen name without @; None where
    only the id is known (follower.js gives ids only)."""

    account_id: str
    handle: str | None = None
    name: str | None = None


@dataclass
class XMedia:
    """One photo, video or GIF of a post. ``key``: the name X gives the file (the basename of
    ``media_url`` for a photo). A video's file is its highest-bitrate mp4 variant; its
    ``bitrates`` are written in this order (not sorted), an m3u8 variant among them.
    ``in_archive=False``: named in the post, its file absent from the archive.
    ``source_status_id``: the post the medium was first posted with (a re-used medium)."""

    key: str
    media_id: str
    kind: str = "photo"                  # photo | video | animated_gif
    ext: str = "jpg"                     # a photo's: jpg | png
    width: int = 1600
    height: int = 1200
    bitrates: tuple[int, ...] = (632000, 2176000, 950000, 256000)
    duration_millis: int = 12480
    in_archive: bool = True
    source_status_id: str | None = None
    source_user_id: str | None = None
    size: int = 6000                     # bytes of a written video/GIF file

    @property
    def media_url(self) -> str:
        if self.kind == "video":
            return f"http://pbs.twimg.com/amplify_video_thumb/{self.media_id}/img/{self.key}.jpg"
        if self.kind == "animated_gif":
            return f"http://pbs.twimg.com/tweet_video_thumb/{self.key}.jpg"
        return f"http://pbs.twimg.com/media/{self.key}.{self.ext}"

    def variants(self) -> list[dict[str, str]]:
        """``video_info.variants`` as written: a GIF's one ``bitrate: "0"`` mp4; a video's mp4
        variants in ``bitrates`` order with an m3u8 (no bitrate) after the second."""
        if self.kind == "animated_gif":
            return [{"bitrate": "0", "content_type": "video/mp4",
                     "url": f"https://video.twimg.com/tweet_video/{self.key}.mp4"}]
        out = []
        for number, bitrate in enumerate(self.bitrates):
            out.append({"bitrate": str(bitrate), "content_type": "video/mp4",
                        "url": f"https://video.twimg.com/amplify_video/{self.media_id}/vid/avc1/"
                               f"{_resolution(bitrate)}/{self.variant_name(bitrate)}.mp4?tag=16"})
            if number == 1:
                out.append({"content_type": "application/x-mpegURL",
                            "url": f"https://video.twimg.com/amplify_video/{self.media_id}/pl/"
                                   f"{self.key}.m3u8?tag=16&v=2f1"})
        return out

    def variant_name(self, bitrate: int) -> str:
        """A video variant's own file stem (each variant has its own, as on X)."""
        return _code(f"{self.key}:{bitrate}", 16)

    @property
    def file_name(self) -> str:
        """What follows ``<tweet id>-`` in tweets_media/: the photo's media_url basename, the
        highest-bitrate mp4 variant's basename without its query, a GIF's single variant's."""
        if self.kind == "photo":
            return self.media_url.rsplit("/", 1)[1]
        mp4s = [v for v in self.variants() if v["content_type"] == "video/mp4"]
        best = max(mp4s, key=lambda v: int(v["bitrate"]))
        return best["url"].split("?", 1)[0].rsplit("/", 1)[1]

    def file_bytes(self) -> bytes:
        """The file's bytes: the same for the same key (a re-used medium is identical)."""
        if self.kind == "photo":
            return jpeg_bytes(self.key) if self.ext == "jpg" else png_bytes(self.key)
        return mp4_bytes(self.file_name, self.size)


@dataclass
class XReply:
    """What a reply answers: the post's id and its author (the owner for a self-thread)."""

    post_id: str
    user: XUser


@dataclass
class XEdit:
    """A later version of an edited post: its own tweet id, time and text."""

    tweet_id: str
    created_at: dt.datetime
    text: str


@dataclass
class XPost:
    """One of the owner's posts (its first version when edited: ``edits`` are the later ones).

    ``text``: the text as the importer must give it back (see the module doc); every URL
    in ``links`` and ``@handle`` of ``mentions`` occurs in it. A repost's text starts
    ``RT @handle: `` (``repost_of`` is that account); a quote's text holds the quoted post's
    URL (``quote_of``, also in ``links``). ``deleted_at``: a post of deleted-tweets.js;
    ``community``: a post of community-tweet.js."""

    tweet_id: str
    created_at: dt.datetime
    text: str
    links: list[str] = field(default_factory=list)
    mentions: list[XUser] = field(default_factory=list)
    media: list[XMedia] = field(default_factory=list)
    reply_to: XReply | None = None
    repost_of: XUser | None = None
    quote_of: str | None = None
    like_count: int = 0
    repost_count: int = 0
    lang: str = "en"
    source: str = WEB_APP
    possibly_sensitive: bool | None = None
    withheld_in_countries: list[str] = field(default_factory=list)
    edits: list[XEdit] = field(default_factory=list)
    deleted_at: dt.datetime | None = None
    community: bool = False

    @property
    def kind(self) -> str:
        """The archiver's Post.kind for it: boost, reply, quote or text."""
        if self.repost_of is not None:
            return "boost"
        if self.reply_to is not None:
            return "reply"
        return "quote" if self.quote_of else "text"

    @property
    def final_text(self) -> str:
        """The newest version's text (what the archiver's Post.text holds)."""
        return self.edits[-1].text if self.edits else self.text

    @property
    def version_ids(self) -> list[str]:
        """Every version's tweet id, the initial first."""
        return [self.tweet_id] + [edit.tweet_id for edit in self.edits]

    @property
    def is_note(self) -> bool:
        """A long post: written to note-tweet.js, its tweets.js full_text cut short."""
        return len(self.final_text) > 280


@dataclass
class XLike:
    """A liked post. ``text`` None: the record has no ``fullText``."""

    tweet_id: str
    text: str | None = None


@dataclass
class XProfile:
    """profile.js. ``bio`` and ``website`` hold real URLs; the archive writes them as t.co
    links (profile.js gives no expansion). ``avatar_key``/``header_key``: the pictures'
    file stems (profile_media/<account id>-<stem>.jpg); None: no picture."""

    bio: str = ""
    website: str = ""
    location: str = ""
    avatar_key: str | None = "aBcDeFgH_400x400"
    header_key: str | None = "1596495613"


def _no_posts() -> list[XPost]:
    return []


@dataclass
class XWorld:
    """Everything the archive holds. ``posts``: a list, or a function returning a fresh
    iterable of XPost each call (a world of millions of posts, never all in memory; the
    writer walks it once). Posts are written in the order given (X's files are unsorted)."""

    owner: XUser = field(default_factory=lambda: XUser("1234567890", "ada_example", "Ada Example"))
    posts: list[XPost] | Callable[[], Iterable[XPost]] = field(default_factory=_no_posts)
    followers: list[XUser] = field(default_factory=list)
    following: list[XUser] = field(default_factory=list)
    likes: list[XLike] = field(default_factory=list)
    blocks: list[XUser] = field(default_factory=list)
    mutes: list[XUser] = field(default_factory=list)
    profile: XProfile = field(default_factory=XProfile)
    email: str = "ada.private.mail@example.org"     # account.js: must never reach the archive
    account_created_at: dt.datetime = dt.datetime(2009, 8, 1, 3, 18, 30, tzinfo=UTC)
    created_via: str | None = None                  # None: "web", or "oauth:3033300" in 2026
    generated_at: dt.datetime | None = None         # None: the generation's default date
    seed: int = 1

    def iter_posts(self) -> Iterator[XPost]:
        source = self.posts() if callable(self.posts) else self.posts
        return iter(source)

    def users(self) -> dict[str, XUser]:
        """Every other account the world names with a handle, by id (not walking a callable's posts)."""
        found: dict[str, XUser] = {}
        posts = [] if callable(self.posts) else self.posts
        for post in posts:
            for user in [*post.mentions, post.repost_of, post.reply_to.user if post.reply_to else None]:
                if user is not None and user.account_id != self.owner.account_id:
                    found.setdefault(user.account_id, user)
        return found


# --------------------------------------------------------------------------- small helpers


def snowflake(when: dt.datetime, sequence: int = 0) -> str:
    """A tweet/media id as X makes them: milliseconds since X's epoch, shifted, + a sequence."""
    ms = int(when.timestamp() * 1000) - TWITTER_EPOCH_MS
    return str((ms << 22) | (sequence & 0x3FFFFF))


def _code(seed: str, length: int) -> str:
    """Stable letters and digits for ``seed`` (t.co codes, media keys)."""
    digest = base64.b64encode(hashlib.sha256(seed.encode()).digest(), altchars=b"AZ").decode()
    return digest[:length]


def tco_link(post_id: str, url: str) -> str:
    """The t.co link a post's ``url`` is written as (the same post and URL: the same link)."""
    return "https://t.co/" + _code(f"{post_id} {url}", 10)


def _resolution(bitrate: int) -> str:
    return {256000: "480x270", 632000: "640x360", 950000: "960x540"}.get(bitrate, "1280x720")


def _display_url(url: str) -> str:
    bare = re.sub(r"^https?://(www\.)?", "", url)
    return bare if len(bare) <= 26 else bare[:25] + "…"


def x_date(when: dt.datetime) -> str:
    """``Fri Mar 06 13:02:05 +0000 2026`` (English names whatever the locale)."""
    when = when.astimezone(UTC)
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return (f"{days[when.weekday()]} {months[when.month - 1]} {when.day:02d} "
            f"{when:%H:%M:%S} +0000 {when.year}")


def iso_date(when: dt.datetime) -> str:
    """``2022-11-21T15:03:41.034Z``."""
    when = when.astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


def jpeg_bytes(key: str) -> bytes:
    """A small picture that depends only on ``key``, for a ``.jpg`` name: a real PNG (as the
    other simulators' pictures), which browsers show whatever the name says."""
    from archiver_connectors.tiktok.sim.fake import fake_png

    return fake_png(f"x photo {key}")


def png_bytes(key: str) -> bytes:
    """A small real PNG that depends only on ``key``."""
    from archiver_connectors.tiktok.sim.fake import fake_png

    return fake_png(f"x png {key}")


def mp4_bytes(key: str, size: int = 6000) -> bytes:
    """Bytes that start like an MP4 and depend only on ``key``."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00" + b"isommp41"
    payload = random.Random(f"mp4:{key}").randbytes(max(size - len(ftyp) - 8, 0))
    return ftyp + struct.pack(">I", len(payload) + 8) + b"mdat" + payload


_quote = json.encoder.encode_basestring        # the C string encoder, UTF-8 left as is


def to_js(value: Any, indent: int = 0) -> str:
    """JSON as X pretty-prints it: two-space indents, ``" : "``, every array element on its own
    line, empty ``[ ]`` / ``{ }``, UTF-8 as is."""
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict):
        if not value:
            return "{ }"
        pad = "\n" + "  " * (indent + 1)
        return "{" + ",".join(f"{pad}{_quote(key)} : {to_js(item, indent + 1)}" for key, item in value.items()) \
            + "\n" + "  " * indent + "}"
    if isinstance(value, list):
        if not value:
            return "[ ]"
        pad = "\n" + "  " * (indent + 1)
        return "[" + ",".join(pad + to_js(item, indent + 1) for item in value) + "\n" + "  " * indent + "]"
    return json.dumps(value)


class YtdFile:
    """One ``window.YTD.<name>.part<N> = [ … ]`` file written record by record (never held
    whole); an empty one is ``window.YTD.<name>.part0 = [ ]``."""

    def __init__(self, path: Path, global_name: str, *, pretty: bool = True):
        self.path = path
        self.global_name = global_name
        self.pretty = pretty
        self.count = 0
        self.bytes = 0
        self._out: IO[str] = path.open("w", encoding="utf-8", newline="\n")
        self._write(f"window.{global_name} = [")

    def _write(self, text: str) -> None:
        self._out.write(text)
        self.bytes += len(text) if text.isascii() else len(text.encode("utf-8"))

    def add(self, record: dict[str, Any]) -> None:
        # compact: one record a line by the C encoder (fast, for benchmarks; not X's layout)
        text = to_js(record, 1) if self.pretty else json.dumps(record, ensure_ascii=False, separators=(", ", " : "))
        self._write(("\n  " if self.count == 0 else ",\n  ") + text)
        self.count += 1

    def close(self) -> None:
        self._write("\n]" if self.count else " ]")
        self._out.close()


def write_ytd(path: Path, global_name: str, records: Iterable[dict[str, Any]]) -> YtdFile:
    """A whole YTD file from ``records``; an empty one is ``window.YTD.x.part0 = [ ]``."""
    ytd = YtdFile(path, global_name)
    for record in records:
        ytd.add(record)
    ytd.close()
    return ytd


# --------------------------------------------------------------------------- one tweet record


@dataclass
class _Style:
    """What differs between generations in one record."""

    host: str                  # x.com | twitter.com (media expanded_url)
    pic_host: str              # pic.x.com | pic.twitter.com
    edit_info: bool
    edit_variant: str          # initial | edit
    counts: str                # real | float_zero | zeroed
    edit_eligible: bool
    notes: bool                # long posts cut short in full_text (their text in note-tweet.js)


def _count(value: int, style: _Style) -> str:
    if style.counts == "zeroed" or (style.counts == "float_zero" and value == 0):
        return "0.0"
    return str(value)


def _indices(text: str, needle: str, start: int = 0) -> list[str]:
    at = text.find(needle, start)
    if at < 0:
        raise ValueError(f"the world is inconsistent: {needle!r} is not in the text {text!r}")
    return [str(at), str(at + len(needle))]


def _sizes(media: XMedia) -> dict[str, Any]:
    def fit(limit: int) -> dict[str, str]:
        scale = min(1.0, limit / max(media.width, media.height))
        return {"w": str(round(media.width * scale)), "h": str(round(media.height * scale)), "resize": "fit"}
    return {"small": fit(680), "large": fit(2048), "medium": fit(1200),
            "thumb": {"w": "150", "h": "150", "resize": "crop"}}


def _media_entity(post_id: str, owner: XUser, media: XMedia, number: int, tco: str,
                  indices: list[str], style: _Style, *, extended: bool) -> dict[str, Any]:
    kind_path = "video" if media.kind == "video" else "photo"
    entity: dict[str, Any] = {
        "expanded_url": f"https://{style.host}/{owner.handle}/status/{post_id}/{kind_path}/{number}",
        "indices": indices,
        "url": tco,
        "media_url": media.media_url,
        "id_str": media.media_id,
        "id": media.media_id,
        "media_url_https": media.media_url.replace("http://", "https://", 1),
        "sizes": _sizes(media),
        "type": media.kind,
        "display_url": f"{style.pic_host}/{tco.rsplit('/', 1)[1]}",
    }
    if media.source_status_id:
        entity["source_status_id"] = entity["source_status_id_str"] = media.source_status_id
        entity["source_user_id"] = entity["source_user_id_str"] = media.source_user_id or owner.account_id
    if extended and media.kind != "photo":
        info: dict[str, Any] = {"aspect_ratio": _aspect(media), "variants": media.variants()}
        if media.kind == "video":
            info["duration_millis"] = str(media.duration_millis)
        entity["video_info"] = info
    return entity


def _aspect(media: XMedia) -> list[str]:
    import math

    div = math.gcd(media.width, media.height) or 1
    return [str(media.width // div), str(media.height // div)]


def _edit_info(post: XPost, version: int, style: _Style) -> dict[str, Any]:
    ids = post.version_ids
    control = {"editTweetIds": ids,
               "editableUntil": iso_date(post.created_at + dt.timedelta(hours=1)),
               "editsRemaining": str(5 - (len(ids) - 1)),
               "isEditEligible": style.edit_eligible or bool(post.edits)}
    if version > 0 and style.edit_variant == "edit":
        return {"edit": {"initialTweetId": post.tweet_id, "editControlInitial": control}}
    return {"initial": control}


def tweet_record(post: XPost, owner: XUser, style: _Style, *, version: int = 0) -> dict[str, Any]:
    """One ``{"tweet": {…}}`` element for version ``version`` of ``post`` (0: the initial)."""
    tweet_id = post.version_ids[version]
    created = post.created_at if version == 0 else post.edits[version - 1].created_at
    text = post.text if version == 0 else post.edits[version - 1].text
    note = style.notes and len(text) > 280
    if note:
        # A long post: tweets.js holds the start and a link to the whole (notes A#11) [U].
        text = text[:NOTE_CUT] + "…"
    full = html.escape(text, quote=False)
    urls: list[dict[str, Any]] = []
    # The first version's text must hold every link and mention (else the world is wrong); a
    # later version or a cut note text holds those it still has.
    strict = version == 0 and not note
    for link in post.links:
        if link not in text and not strict:
            continue
        escaped = html.escape(link, quote=False)
        if escaped not in full:
            raise ValueError(f"post {post.tweet_id}: its link {link!r} is not in its text")
        tco = tco_link(tweet_id, link)
        full = full.replace(escaped, tco, 1)
        urls.append({"url": tco, "expanded_url": link, "display_url": _display_url(link)})
    if note:
        whole = f"https://twitter.com/i/web/status/{tweet_id}"
        tco = tco_link(tweet_id, whole)
        full += " " + tco
        urls.append({"url": tco, "expanded_url": whole, "display_url": _display_url(whole)})
    shown_end = len(full)
    media_tco = tco_link(tweet_id, "media")
    if post.media:
        full += " " + media_tco
    for url in urls:
        url["indices"] = _indices(full, url["url"])
    hashtags = [{"text": match.group(1), "indices": [str(match.start()), str(match.end())]}
                for match in re.finditer(r"(?<![\w&])#(\w+)", full)]
    mentions = [{"name": user.name or user.handle, "screen_name": user.handle,
                 "indices": _indices(full, f"@{user.handle}"), "id_str": user.account_id, "id": user.account_id}
                for user in post.mentions if strict or f"@{user.handle}" in full]
    shown_start = 0
    if post.reply_to is not None:
        # A reply's leading @names are outside its display range.
        leading = re.match(r"(@\w+ )+", full)
        shown_start = leading.end() if leading else 0
    entities: dict[str, Any] = {"hashtags": hashtags, "symbols": [], "user_mentions": mentions, "urls": urls}
    tweet: dict[str, Any] = {}
    if style.edit_info:
        tweet["edit_info"] = _edit_info(post, version, style)
    tweet["retweeted"] = False          # always false, even for RT @ posts (notes A#19)
    tweet["source"] = post.source
    tweet["entities"] = entities
    if post.media:
        indices = [str(len(full) - len(media_tco)), str(len(full))]
        medias = [_media_entity(tweet_id, owner, media, number, media_tco, indices, style, extended=True)
                  for number, media in enumerate(post.media, 1)]
        entities["media"] = [_media_entity(tweet_id, owner, post.media[0], 1, media_tco, indices, style,
                                           extended=False)]
        tweet["extended_entities"] = {"media": medias}
    tweet["display_text_range"] = [str(shown_start), str(shown_end)]
    tweet["favorite_count"] = _count(post.like_count, style)
    if post.reply_to is not None:
        tweet["in_reply_to_status_id_str"] = post.reply_to.post_id
        tweet["in_reply_to_user_id"] = post.reply_to.user.account_id
    tweet["id_str"] = tweet_id
    if post.reply_to is not None:
        tweet["in_reply_to_user_id_str"] = post.reply_to.user.account_id
    tweet["truncated"] = False
    tweet["retweet_count"] = _count(post.repost_count, style)
    tweet["id"] = tweet_id
    if post.reply_to is not None:
        tweet["in_reply_to_status_id"] = post.reply_to.post_id
    if post.possibly_sensitive is not None:
        tweet["possibly_sensitive"] = post.possibly_sensitive
    tweet["created_at"] = x_date(created)
    tweet["favorited"] = False
    tweet["full_text"] = full
    tweet["lang"] = post.lang
    if post.reply_to is not None and post.reply_to.user.handle:
        tweet["in_reply_to_screen_name"] = post.reply_to.user.handle
    if post.withheld_in_countries:
        tweet["withheld_in_countries"] = list(post.withheld_in_countries)
    if post.deleted_at is not None:
        tweet["deleted_at"] = x_date(post.deleted_at)
    if post.community:
        tweet["scopes"] = {"followers": False}
    return {"tweet": tweet}


def note_record(post: XPost, shape: str) -> dict[str, Any]:
    """One note-tweet.js element for a long post [U: no real sample]. ``"results"``: the
    third-party doc's shape (``tweetId`` names the post); ``"core"``: ``core.text`` with
    from/to indices and no ``tweetId`` (match it to its post by time and text)."""
    tweet_id = post.version_ids[-1]
    text = post.final_text
    tco_text = text
    links = []
    for link in post.links:
        tco = tco_link(tweet_id, link)
        at = tco_text.find(link)
        if at >= 0:
            tco_text = tco_text.replace(link, tco, 1)
            links.append((link, tco))
    note_id = snowflake(post.created_at, 99)
    if shape == "core":
        created = post.edits[-1].created_at if post.edits else post.created_at
        return {"noteTweet": {
            "noteTweetId": note_id,
            "updatedAt": iso_date(created),
            "lifecycle": {"value": "1", "name": "Created", "originalName": "Created", "annotations": {}},
            "createdAt": iso_date(created),
            "core": {
                "styletags": [],
                "urls": [{"shortUrl": tco, "expandedUrl": link, "displayUrl": _display_url(link),
                          "fromIndex": str(tco_text.find(tco)), "toIndex": str(tco_text.find(tco) + len(tco))}
                         for link, tco in links],
                "text": tco_text,
                "mentions": [{"screenName": user.handle, "fromIndex": _indices(tco_text, f"@{user.handle}")[0],
                              "toIndex": _indices(tco_text, f"@{user.handle}")[1]} for user in post.mentions],
                "cashtags": [],
                "hashtags": [{"text": m.group(1), "fromIndex": str(m.start()), "toIndex": str(m.end())}
                             for m in re.finditer(r"(?<!\w)#(\w+)", tco_text)],
            }}}
    return {"noteTweet": {
        "noteTweetId": note_id,
        "noteTweetResults": {
            "text": tco_text,
            "entitySet": {
                "hashtags": [{"text": m.group(1), "indices": [str(m.start()), str(m.end())]}
                             for m in re.finditer(r"(?<!\w)#(\w+)", tco_text)],
                "symbols": [],
                "urls": [{"url": tco, "expanded_url": link, "display_url": _display_url(link),
                          "indices": _indices(tco_text, tco)} for link, tco in links],
                "user_mentions": [{"screen_name": user.handle, "name": user.name, "id_str": user.account_id,
                                   "indices": _indices(tco_text, f"@{user.handle}")} for user in post.mentions],
            }},
        "tweetId": tweet_id,
    }}


def header_record(post: XPost, owner: XUser, version: int = 0) -> dict[str, Any]:
    """A tweet-headers.js element (deleted-tweet-headers.js: with ``deleted_at``)."""
    created = post.created_at if version == 0 else post.edits[version - 1].created_at
    record = {"tweet_id": post.version_ids[version], "user_id": owner.account_id, "created_at": x_date(created)}
    if post.deleted_at is not None:
        record["deleted_at"] = x_date(post.deleted_at)
    return {"tweet": record}


# --------------------------------------------------------------------------- the other files


def like_records(world: XWorld) -> Iterator[dict[str, Any]]:
    for like in world.likes:
        record = {"tweetId": like.tweet_id}
        if like.text is not None:
            record["fullText"] = like.text
        record["expandedUrl"] = f"https://twitter.com/i/web/status/{like.tweet_id}"
        yield {"like": record}


def people_records(kind: str, people: Iterable[XUser]) -> Iterator[dict[str, Any]]:
    """follower.js / following.js / block.js / mute.js: ids and twitter.com/intent links only."""
    for user in people:
        yield {kind: {"accountId": user.account_id,
                      "userLink": f"https://twitter.com/intent/user?user_id={user.account_id}"}}


def account_record(world: XWorld, generation: str) -> dict[str, Any]:
    created_via = world.created_via or (CREATED_VIA_2026 if generation == "2026" else "web")
    return {"account": {"email": world.email, "createdVia": created_via, "username": world.owner.handle,
                        "accountId": world.owner.account_id, "createdAt": iso_date(world.account_created_at),
                        "accountDisplayName": world.owner.name}}


def _avatar_url(world: XWorld) -> str:
    key = world.profile.avatar_key
    return f"https://pbs.twimg.com/profile_images/{_code(world.owner.account_id, 19)}/{key}.jpg" if key else ""


def _header_url(world: XWorld) -> str:
    key = world.profile.header_key
    return f"https://pbs.twimg.com/profile_banners/{world.owner.account_id}/{key}" if key else ""


def profile_record(world: XWorld) -> dict[str, Any]:
    profile, owner_id = world.profile, world.owner.account_id
    bio = profile.bio
    for url in re.findall(r"https?://\S+", bio):
        bio = bio.replace(url, tco_link(owner_id, url), 1)
    description = {"bio": bio, "website": tco_link(owner_id, profile.website) if profile.website else "",
                   "location": profile.location}
    record: dict[str, Any] = {"description": description}
    if profile.avatar_key:
        record["avatarMediaUrl"] = _avatar_url(world)
    if profile.header_key:
        record["headerMediaUrl"] = _header_url(world)
    return {"profile": record}


def profile_media_files(world: XWorld) -> Iterator[tuple[str, bytes]]:
    """profile_media/<account id>-<basename>: the avatar's, and the banner's (its URL has no
    extension; the file gets .jpg [U])."""
    owner_id = world.owner.account_id
    if world.profile.avatar_key:
        yield f"{owner_id}-{world.profile.avatar_key}.jpg", jpeg_bytes("avatar " + world.profile.avatar_key)
    if world.profile.header_key:
        yield f"{owner_id}-{world.profile.header_key}.jpg", jpeg_bytes("header " + world.profile.header_key)


def extra_type_records(world: XWorld, generated: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    """Data types the archiver does not import, by camelCase manifest name; their shapes are
    made up [U] (the notes give names only). The direct messages hold private text."""
    other = world.following[0].account_id if world.following else "2222222222"
    when = iso_date(generated - dt.timedelta(days=3))
    return {
        "block": list(people_records("blocking", world.blocks)),
        "mute": list(people_records("muting", world.mutes)),
        "directMessages": [{"dmConversation": {
            "conversationId": f"{world.owner.account_id}-{other}",
            "messages": [{"messageCreate": {"recipientId": other, "reactions": [], "urls": [],
                                            "text": "a private message, not for the archive", "mediaUrls": [],
                                            "senderId": world.owner.account_id,
                                            "id": snowflake(generated, 7), "createdAt": when}}]}}],
        "messageEvent": [{"messageEvent": {"conversationId": f"{world.owner.account_id}-{other}",
                                           "eventType": "messageCreate", "createdAt": when}}],
        "grokChatItem": [{"grokChatItem": {"chatId": "1896000000000000001", "sender": "User",
                                           "message": "What is an archive?", "createdAt": when}}],
        "expandedProfile": [{"expandedProfile": {"birthdate": {"day": "10", "month": "12", "year": "1985"}}}],
        "article": [],
        "articleMetadata": [],
        "communityNote": [],
        "adsRevenueSharing": [],
        "keyRegistry": [],
        "verifiedOrganization": [],
        "audioVideoCallsInDmRecipientSessions": [],
        "ageinfo": [{"ageMeta": {"ageInfo": {"age": ["18-120"]}}}],
        "twitterCircleTweet": [],
    }


# Which extra types each generation writes (2026 adds the new ones of notes A#13).
_EXTRA_TYPES = {
    "2021": ("block", "mute", "directMessages", "ageinfo"),
    "2022": ("block", "mute", "directMessages", "ageinfo", "twitterCircleTweet"),
    "2026": ("block", "mute", "directMessages", "ageinfo", "twitterCircleTweet", "messageEvent", "grokChatItem",
             "expandedProfile", "article", "articleMetadata", "communityNote", "adsRevenueSharing", "keyRegistry",
             "verifiedOrganization", "audioVideoCallsInDmRecipientSessions"),
}
# Media-only data types of a 2026 manifest (only mediaDirectory, no files; the data type
# itself names the folder too, as a 2023 manifest does).
_MEDIA_ONLY_2026 = {"tweetsMedia": "tweets_media", "deletedTweetsMedia": "deleted_tweets_media",
                    "communityTweetMedia": "community_tweet_media", "profileMedia": "profile_media",
                    "directMessagesMedia": "direct_messages_media"}


def kebab(camel: str) -> str:
    """``directMessages`` → ``direct-messages`` (file names)."""
    return re.sub(r"(?<!^)([A-Z])", r"-\1", camel).lower()


def snake(camel: str) -> str:
    """``directMessages`` → ``direct_messages`` (YTD globals)."""
    return kebab(camel).replace("-", "_")


# --------------------------------------------------------------------------- the writer


class _ArchiveWriter:
    """Writes one archive's folder: the data files, media, manifest, viewer."""

    def __init__(self, root: Path, world: XWorld, *, generation: str, parts: int, part_bytes: int | None,
                 part_order: str, stray_part: bool, edit_variant: str, note_shape: str, counts: str,
                 media_files: bool, viewer: bool, old_names: bool, pretty: bool, tweet_wrapper: bool):
        self.root, self.data = root, root / "data"
        self.world, self.generation = world, generation
        self.parts, self.part_bytes, self.part_order = parts, part_bytes, part_order
        self.stray_part, self.note_shape = stray_part, note_shape
        self.media_files, self.viewer, self.pretty = media_files, viewer, pretty
        self.tweet_wrapper = tweet_wrapper
        self.generated = world.generated_at or GENERATION_DATES[generation]
        self.rng = random.Random(world.seed)
        self.tweet_type = "tweet" if old_names else "tweets"       # tweet.js / tweets.js
        self.media_dir = "tweet_media" if old_names else "tweets_media"
        new = generation == "2026"
        self.style = _Style(host="x.com" if new else "twitter.com",
                            pic_host="pic.x.com" if new else "pic.twitter.com",
                            edit_info=generation != "2021", edit_variant=edit_variant, counts=counts,
                            edit_eligible=not new, notes=new)
        self.data_types: dict[str, dict[str, Any]] = {}

    # -- manifest bookkeeping
    def _listed(self, camel: str, ytd: YtdFile, media_directory: str | None = None) -> None:
        entry = self.data_types.setdefault(camel, {})
        if media_directory:
            entry["mediaDirectory"] = f"data/{media_directory}"
        entry.setdefault("files", []).append({"fileName": f"data/{ytd.path.name}",
                                              "globalName": ytd.global_name.removeprefix("window."),
                                              "count": str(ytd.count)})

    def _ytd(self, camel: str, part: int = 0) -> YtdFile:
        """An open YTD file of data type ``camel``: ``tweet-headers.js`` / ``YTD.tweet_headers.part0``,
        ``tweets-part1.js`` / ``YTD.tweets.part1``."""
        name = f"{kebab(camel)}.js" if part == 0 else f"{kebab(camel)}-part{part}.js"
        return YtdFile(self.data / name, f"YTD.{snake(camel)}.part{part}", pretty=self.pretty)

    def write(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.write_posts()
        self.write_likes()
        self.write_people()
        self.write_account()
        self.write_profile()
        self.write_extra_types()
        self.write_readme()
        if self.viewer:
            self.write_viewer()
        self.write_manifest()            # last: it counts what the others wrote

    # -- posts: one pass over the world's posts writes every file that holds them
    def write_posts(self) -> None:
        new, old = self.generation == "2026", self.generation == "2021"
        tweets = [self._ytd(self.tweet_type, 0)] + ([self._ytd(self.tweet_type, n) for n in range(1, self.parts)]
                                                     if not self.part_bytes else [])
        headers = self._ytd("tweetHeaders")
        deleted = None if old else self._ytd("deletedTweets")
        deleted_headers = None if old else self._ytd("deletedTweetHeaders")
        community = self._ytd("communityTweet") if new else None
        notes = self._ytd("noteTweet") if new else None
        number = 0
        for post in self.world.iter_posts():
            if post.deleted_at is not None:
                if deleted is None or deleted_headers is None:
                    continue                     # 2021: no deleted-tweets.js
                target, target_headers, media_dir = deleted, deleted_headers, "deleted_tweets_media"
            elif post.community:
                if community is None:
                    continue
                target, target_headers, media_dir = community, None, "community_tweet_media"
            else:
                target = self._tweets_part(tweets, number)
                target_headers, media_dir = headers, self.media_dir
                number += 1
            for version in range(len(post.version_ids)):
                if old and version < len(post.edits):
                    continue                     # 2021: no edits; the newest version only
                record = tweet_record(post, self.world.owner, self.style, version=version)
                if not self.tweet_wrapper and target in tweets:
                    record = record["tweet"]     # bare tweet objects, as older exports may have [U]
                target.add(record)
                if target_headers is not None:
                    target_headers.add(header_record(post, self.world.owner, version))
                if self.media_files:
                    self.write_post_media(post, post.version_ids[version], media_dir)
            if notes is not None and post.is_note and post.deleted_at is None:
                notes.add(note_record(post, self.note_shape))
        files = [*tweets, headers, deleted, deleted_headers, community, notes]
        for ytd in files:
            if ytd is not None:
                ytd.close()
        order = list(tweets)
        if self.part_order == "shuffled":
            self.rng.shuffle(order)
        for ytd in order:
            self._listed(self.tweet_type, ytd, self.media_dir)
        self._listed("tweetHeaders", headers)
        if deleted is not None and deleted_headers is not None:
            self._listed("deletedTweets", deleted, "deleted_tweets_media")
            self._listed("deletedTweetHeaders", deleted_headers)
        if community is not None and notes is not None:
            self._listed("communityTweet", community, "community_tweet_media")
            self._listed("noteTweet", notes)
            self._listed("deletedNoteTweet", write_ytd(self.data / "deleted-note-tweet.js",
                                                       "YTD.deleted_note_tweet.part0", []))
        if self.stray_part:
            self.write_stray_part()

    def _tweets_part(self, tweets: list[YtdFile], number: int) -> YtdFile:
        if not self.part_bytes:
            return tweets[number % len(tweets)]
        if tweets[-1].bytes >= self.part_bytes:
            tweets.append(self._ytd(self.tweet_type, len(tweets)))
        return tweets[-1]

    def write_post_media(self, post: XPost, tweet_id: str, media_dir: str) -> None:
        folder = self.data / media_dir
        for media in post.media:
            if media.in_archive:
                folder.mkdir(exist_ok=True)
                (folder / f"{tweet_id}-{media.file_name}").write_bytes(media.file_bytes())

    def write_stray_part(self) -> None:
        """A part the manifest does not list (never to be imported)."""
        stray = XPost(STRAY_POST_ID, self.generated - dt.timedelta(days=1), "a stray part's post: never import")
        write_ytd(self.data / f"{kebab(self.tweet_type)}-part9.js", f"YTD.{self.tweet_type}.part9",
                  [tweet_record(stray, self.world.owner, self.style)])

    # -- the rest, one function per file
    def write_likes(self) -> None:
        self._listed("like", write_ytd(self.data / "like.js", "YTD.like.part0", like_records(self.world)))

    def write_people(self) -> None:
        for kind, people in (("follower", self.world.followers), ("following", self.world.following)):
            self._listed(kind, write_ytd(self.data / f"{kind}.js", f"YTD.{kind}.part0", people_records(kind, people)))

    def write_account(self) -> None:
        self._listed("account", write_ytd(self.data / "account.js", "YTD.account.part0",
                                          [account_record(self.world, self.generation)]))

    def write_profile(self) -> None:
        self._listed("profile", write_ytd(self.data / "profile.js", "YTD.profile.part0",
                                          [profile_record(self.world)]), "profile_media")
        if self.media_files:
            folder = self.data / "profile_media"
            for name, content in profile_media_files(self.world):
                folder.mkdir(exist_ok=True)
                (folder / name).write_bytes(content)

    def write_extra_types(self) -> None:
        records = extra_type_records(self.world, self.generated)
        for camel in _EXTRA_TYPES[self.generation]:
            self._listed(camel, write_ytd(self.data / f"{kebab(camel)}.js", f"YTD.{snake(camel)}.part0",
                                          records[camel]))

    def write_readme(self) -> None:
        (self.data / "README.txt").write_text(
            "Twitter Archive\n\nThis archive holds the data of the account. "
            "Open \"Your archive.html\" in a browser to browse it.\n", encoding="utf-8")

    def write_viewer(self) -> None:
        (self.root / "Your archive.html").write_text(
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Your archive</title>\n'
            '<script src="assets/js/manifest-loader.js"></script></head>\n'
            '<body><div id="root">Loading your archive…</div></body></html>\n', encoding="utf-8")
        assets = self.root / "assets"
        (assets / "js").mkdir(parents=True, exist_ok=True)
        (assets / "images").mkdir(exist_ok=True)
        (assets / "js" / "manifest-loader.js").write_text(
            "/* the offline viewer: loads data/manifest.js, then each data file it lists */\n", encoding="utf-8")
        (assets / "images" / "favicon.ico").write_bytes(png_bytes("favicon"))

    def write_manifest(self) -> None:
        data_types = dict(self.data_types)
        if self.generation == "2026":
            for camel, folder in _MEDIA_ONLY_2026.items():
                data_types[camel] = {"mediaDirectory": f"data/{folder}"}
        data_types = dict(sorted(data_types.items()))      # X lists them alphabetically
        size = sum(path.stat().st_size for path in self.root.rglob("*") if path.is_file())
        config = {
            "userInfo": {"accountId": self.world.owner.account_id, "userName": self.world.owner.handle,
                         "displayName": self.world.owner.name},
            "archiveInfo": {"sizeBytes": str(size), "generationDate": iso_date(self.generated),
                            "isPartialArchive": False, "maxPartSizeBytes": "53687091200"},
            "readmeInfo": {"fileName": "data/README.txt", "directory": "data/", "name": "README.txt"},
            "dataTypes": data_types,
        }
        (self.data / "manifest.js").write_text("window.__THAR_CONFIG = " + to_js(config), encoding="utf-8")


def write_archive(path: str | Path, world: XWorld, *, generation: str = "2026", zipped: bool = True,
                  parts: int = 1, part_bytes: int | None = None, part_order: str = "natural",
                  stray_part: bool = False, edit_variant: str = "initial", note_shape: str = "results",
                  counts: str = "real", media_files: bool = True, viewer: bool = True,
                  old_names: bool | None = None, top_folder: str | None = None, pretty: bool = True,
                  tweet_wrapper: bool = True) -> Path:
    """Write ``world``'s archive at ``path`` and return it: a zip (``zipped``), else the
    folder it unzips to. A ``path`` that is an existing folder gets
    ``twitter-<date>-<hash>.zip`` (or that folder name) inside it. Knobs: the module doc."""
    if generation not in GENERATIONS:
        raise ValueError(f"generation must be one of {GENERATIONS}, not {generation!r}")
    for name, value, allowed in (("edit_variant", edit_variant, ("initial", "edit")),
                                 ("note_shape", note_shape, ("results", "core")),
                                 ("counts", counts, ("real", "float_zero", "zeroed")),
                                 ("part_order", part_order, ("natural", "shuffled"))):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
    if parts < 1:
        raise ValueError("parts must be at least 1")
    path = Path(path)
    generated = world.generated_at or GENERATION_DATES[generation]
    if path.is_dir():
        digest = hashlib.sha256(f"{world.owner.account_id} {world.seed} {generation}".encode()).hexdigest()
        path = path / f"twitter-{generated:%Y-%m-%d}-{digest}{'.zip' if zipped else ''}"
    options = dict(generation=generation, parts=parts, part_bytes=part_bytes, part_order=part_order,
                   stray_part=stray_part, edit_variant=edit_variant, note_shape=note_shape, counts=counts,
                   media_files=media_files, viewer=viewer, pretty=pretty, tweet_wrapper=tweet_wrapper,
                   old_names=generation == "2021" if old_names is None else old_names)
    if not zipped:
        root = path / top_folder if top_folder else path
        _ArchiveWriter(root, world, **options).write()  # type: ignore[arg-type]
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".x-archive-", dir=path.parent) as staging:
        root = Path(staging)
        _ArchiveWriter(root, world, **options).write()  # type: ignore[arg-type]
        _zip_folder(root, path, generated, top_folder=top_folder,
                    shuffle_seed=world.seed if part_order == "shuffled" else None)
    return path


def _zip_folder(root: Path, target: Path, moment: dt.datetime, *, top_folder: str | None,
                shuffle_seed: int | None) -> None:
    """Zip ``root``'s files (streamed from disk) with entry times of ``moment``."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(files)
    stamp = moment.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for file in files:
            name = file.relative_to(root).as_posix()
            info = zipfile.ZipInfo(f"{top_folder}/{name}" if top_folder else name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.file_size = file.stat().st_size   # lets zipfile pick ZIP64 up front for a big file
            with file.open("rb") as source, archive.open(info, "w", force_zip64=info.file_size > 2**31) as out:
                shutil.copyfileobj(source, out, 1 << 20)


# --------------------------------------------------------------------------- ready-made worlds


def sample_world(seed: int = 1) -> XWorld:
    """A small world with every quirk of the notes' checklists (the tests' default):

    an HTML-escaped post with a link and a hashtag; 4 photos; a video (4 mp4 variants + an
    m3u8); a GIF; a reply to bob (a mention); a self-thread; an ``RT @carol:`` repost; a
    quote of dave's post; an edited post (2 versions); a long note tweet; a photo re-used
    under a second post id (same basename); a post whose medium is absent from the archive;
    a withheld, possibly sensitive post; a post with zero counts; a deleted post with a
    photo; a community post. 5 followers (bob among them), 3 following, 4 likes (one
    without text), a profile with pictures, an empty mute list and one block."""
    rng = random.Random(seed)
    base = dt.datetime(2021, 3, 1, 9, 30, tzinfo=UTC)
    owner = XUser("1234567890", "ada_example", "Ada Example")
    bob, carol, dave = XUser("42", "bob", "Bob B."), XUser("4343", "carol", "Carol"), XUser("777", "dave", "Dave")
    posts: list[XPost] = []

    def when(hours: float) -> dt.datetime:
        return base + dt.timedelta(hours=hours, seconds=rng.randrange(3600))

    def add(hours: float, text: str, **fields: Any) -> XPost:
        created = when(hours)
        counts = {"like_count": rng.randrange(1, 40), "repost_count": rng.randrange(0, 5)}
        post = XPost(snowflake(created, len(posts)), created, text, **{**counts, **fields})
        posts.append(post)
        return post

    def photo(post_hours: float, n: int, ext: str = "jpg") -> XMedia:
        return XMedia(key=_code(f"photo {seed} {post_hours} {n}", 15), media_id=snowflake(when(post_hours), 500 + n),
                      ext=ext)

    add(1, "Tea & cake <3 at https://example.org/cafe?a=1&b=2 #sunday",
                links=["https://example.org/cafe?a=1&b=2"])
    album = add(5, "Four photos of the garden", media=[photo(5, n, "png" if n == 3 else "jpg") for n in range(4)])
    add(9, "A short film", media=[XMedia(key=_code(f"video {seed}", 15), media_id=snowflake(when(9), 600),
                                         kind="video", width=1280, height=720)])
    add(12, "Dancing cat", media=[XMedia(key=_code(f"gif {seed}", 15), media_id=snowflake(when(12), 700),
                                         kind="animated_gif", width=498, height=280)])
    add(20, "@bob I agree, see you there", mentions=[bob],
        reply_to=XReply(snowflake(base - dt.timedelta(days=2), 5), bob))
    thread_start = add(30, "A thread about archives (1/2)")
    add(30.5, "Keep your own copy (2/2)", reply_to=XReply(thread_start.tweet_id, owner))
    add(40, "RT @carol: The best gardening tip I ever got: water in the morning…", mentions=[carol],
        repost_of=carol)
    quoted = f"https://x.com/dave/status/{snowflake(base - dt.timedelta(days=5), 1)}"
    add(50, f"So true {quoted}", links=[quoted], quote_of=quoted)
    edited = add(60, "Fresh bread today", like_count=3)
    edited.edits = [XEdit(snowflake(edited.created_at + dt.timedelta(minutes=5), 1),
                          edited.created_at + dt.timedelta(minutes=5), "Fresh sourdough bread today")]
    long_text = ("Why I keep an archive of my own posts: " + "because platforms change, accounts vanish, "
                 "and what I wrote is mine. " * 6 + "More at https://example.org/why #archives @bob")
    add(70, long_text, links=["https://example.org/why"], mentions=[bob])
    reused = album.media[0]
    add(80, "That garden photo again", media=[XMedia(key=reused.key, media_id=reused.media_id,
                                                     source_status_id=album.tweet_id,
                                                     source_user_id=owner.account_id)])
    add(90, "This one's photo is missing from the archive",
        media=[XMedia(key=_code(f"missing {seed}", 15), media_id=snowflake(when(90), 800), in_archive=False)])
    add(100, "A post some countries do not see", withheld_in_countries=["IN"], possibly_sensitive=True)
    zero = add(110, "Nobody liked this")
    zero.like_count = zero.repost_count = 0
    gone = add(120, "I deleted this one", media=[photo(120, 0)])
    gone.deleted_at = gone.created_at + dt.timedelta(days=3)
    add(130, "For the gardening community only", community=True)
    rng.shuffle(posts)                   # X's files are unsorted (notes A#3)
    followers = [bob, XUser("1111111111"), XUser("1111111112"), XUser("1111111113"), XUser("1111111114")]
    return XWorld(
        owner=owner, posts=posts, followers=followers,
        following=[carol, dave, XUser("2222222222")],
        likes=[XLike(snowflake(base - dt.timedelta(days=n), 3), f"A post I liked number {n} &amp; more")
               for n in range(1, 4)] + [XLike(snowflake(base - dt.timedelta(days=9), 4))],
        blocks=[XUser("3333333333")], mutes=[],
        profile=XProfile(bio="Gardener and archivist. Elsewhere: https://bsky.app/profile/ada.example",
                         website="https://ada.example.org", location="Somewhere"),
        seed=seed)


def big_world(posts: int = 1000, *, seed: int = 1, text_bytes: int = 200) -> XWorld:
    """A world whose ``posts`` posts come from a generator (never all in memory): text of
    about ``text_bytes`` (every 50th a long note post of 3 times that, when that passes 280),
    some links, mentions and replies, no media. A post's record in tweets.js is about 1.3 KB
    pretty-printed with the default text, 1 KB compact (``posts=240_000`` ≈ 300 MB)."""
    owner = XUser("1234567890", "ada_example", "Ada Example")
    bob = XUser("42", "bob", "Bob B.")
    start = dt.datetime(2012, 1, 1, tzinfo=UTC)

    def generate() -> Iterator[XPost]:
        rng = random.Random(seed)
        words = ("archive", "garden", "bread", "river", "window", "copper", "meadow", "letter", "&", "<b>")
        for number in range(posts):
            # Blocks of 97 written back to front: the file is unsorted, as X's are.
            order = (number // 97) * 97 + (96 - number % 97)
            created = start + dt.timedelta(minutes=37 * order)
            size = text_bytes * 3 if number % 50 == 49 else text_bytes
            body = " ".join(rng.choices(words, k=max(size // 5, 1)))[:size]
            post = XPost(snowflake(created, order % 4096), created, body, like_count=rng.randrange(50),
                         repost_count=rng.randrange(5))
            if number % 5 == 0:
                link = f"https://example.org/{number}"
                post.text += " " + link
                post.links = [link]
            if number % 7 == 0:
                post.text = "@bob " + post.text
                post.mentions = [bob]
                post.reply_to = XReply(snowflake(created - dt.timedelta(hours=1), 1), bob)
            yield post

    return XWorld(owner=owner, posts=generate, followers=[bob], seed=seed)


__all__ = ["GENERATIONS", "STRAY_POST_ID", "XEdit", "XLike", "XMedia", "XPost", "XProfile", "XReply", "XUser",
           "XWorld", "big_world", "iso_date", "sample_world", "snowflake", "tco_link", "tweet_record",
           "write_archive", "x_date"]
