"""A stateful fake of YouTube Data API v3 and Google OAuth, faithful to
shared/platforms/youtube.md.

One ``FakeYouTube`` plays every Google host at one base URL:

- OAuth (accounts.google.com):        GET  /o/oauth2/v2/auth
- OAuth (oauth2.googleapis.com):      POST /token , /revoke
- Data API (www.googleapis.com):      GET  /youtube/v3/channels , playlistItems , videos ,
                                           commentThreads , comments , subscriptions
- thumbnails (i.ytimg.com):           GET  /vi/<videoId>/<size>.jpg?exp=..&sig=..  (signed, expiring)
- avatars (yt3.ggpht.com):            GET  /ytc/<channelId>=s800             (the owner's channel picture)
                                      GET  /yt3/ytc/<key>=s48-c-k-c0x00ffffff-no-rj  (commenters' and
                                           subscribers' pictures; unknown keys answer 404)
- Data Portability (dataportability.googleapis.com, notes §5):
                                      POST /v1/portabilityArchive:initiate ,
                                      GET  /v1/archiveJobs/<id>/portabilityArchiveState ,
                                      POST /v1/archiveJobs/<id>:retry , /v1/archiveJobs/<id>:cancel ,
                                      POST /v1/authorization:reset , /v1/accessType:check
- archive parts (storage.googleapis.com): GET /dataportability-prod/<job>/archive-part-NNN.zip?X-Goog-…
                                      (signed, expiring; Takeout-style zips of this fake's world)

Use it in-process with ``httpx.MockTransport(fake.handle)``, over loopback with
``serve(fake)``, or as a process: ``python -m archiver_connectors.youtube.sim.fake --port 0``
(``archiver simulate youtube`` runs that).

Quota (notes §3): every Data API request with a valid token costs 1 unit (invalid ones
too), counted per Pacific-time day in ``units_by_day``. Past ``config.daily_quota`` every
call answers 403 ``quotaExceeded`` (and costs nothing). Requests without a valid token
answer 401 and cost nothing: the fake cannot tell whose project they belong to.

Choices where the notes say [U], all knobs of ``FakeYouTubeConfig``:
- ``embedded_replies_max``: how many replies a commentThread embeds (a subset).
- ``subscriber_cap``: how many public subscribers ``mySubscribers=true`` returns at most.
- ``comment_scope``: "readonly" (public threads readable with youtube.readonly) or
  "force-ssl" (commentThreads/comments need youtube.force-ssl: 403 insufficientPermissions).
- ``error_status_field``: newer error envelopes carry ``"status"``.
- ``rotate_refresh``: Google usually returns no new refresh token on refresh.
- ``round_subscriber_count``: subscriberCount rounded to 3 significant figures.
- Page tokens encode an offset (like Google's): a video inserted at the top shifts the
  next page by one (an overlap, never a gap).
- An unknown ``part`` answers 400 ``unknownPart``; maxResults out of range 400
  ``invalidParameter``; a bad ``fields`` selection 400 ``invalidParameter``.

Data Portability knobs (the [U]s of notes §5): ``portability_polls_in_progress`` (state
polls answering IN_PROGRESS before a job ends), ``portability_access_type`` (one-time:
a COMPLETE job exhausts its resource groups, and initiating them again answers 403 with
``portability_refused_status``), ``portability_reset_required`` (whether an exhausted
group stays exhausted through a new consent until ``authorization:reset``),
``portability_url_ttl`` and ``portability_expired_status`` (the signed links),
``portability_parts`` (2: a video group's archive comes as a part of video files only,
listed first, and a part with videos.csv and the rest). ``fail_next_jobs(n)`` makes
jobs end FAILED, ``exhaust_portability()`` marks every group used. The archives are
written by fake_takeout from this fake's world: the same video ids, titles and dates,
the owner's replies as Takeout comments, ``following`` subscribed-to channels.

Other people's pictures: every comment author and subscriber has one, on this fake's own
base URL (never a host a loopback test cannot reach). ``change_picture(channel_id)`` gives
one person a new picture under a new link (as yt3.ggpht.com does); ``picture_fault = 503``
makes the picture host answer that status for every picture, the owner's included.

``advance(seconds)`` moves the fake's clock (token expiry, the 7-day testing-mode limit,
thumbnail links, the quota day) without sleeping.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as _dt
import hashlib
import hmac
import json
import random
import re
import secrets
import string
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx

from archiver.sim.server import FakeClock

PACIFIC = ZoneInfo("America/Los_Angeles")
# A person's picture on the fake's yt3 host: /yt3/ytc/<channel id>[.v<version>]=s<size>[-options].
# Real keys are opaque; these name the channel so the fake can tell a known picture from an
# unknown one (404), and a version so a changed picture has a new link.
PICTURE_PATH = re.compile(r"/yt3/ytc/(UC[A-Za-z0-9_-]{22})(?:\.v([1-9][0-9]*))?=s([0-9]+)(?:-[A-Za-z0-9-]+)?")
PICTURE_OPTIONS = "-c-k-c0x00ffffff-no-rj"   # what real authorProfileImageUrl links end with
SCOPE_READONLY = "https://www.googleapis.com/auth/youtube.readonly"
SCOPE_FORCE_SSL = "https://www.googleapis.com/auth/youtube.force-ssl"
SCOPE_FULL = "https://www.googleapis.com/auth/youtube"
READ_SCOPES = {SCOPE_READONLY, SCOPE_FORCE_SSL, SCOPE_FULL}   # what the Data API accepts
PORTABILITY_SCOPE_PREFIX = "https://www.googleapis.com/auth/dataportability."
# The YouTube resource groups of Data Portability; scope suffix = resource name [C].
PORTABILITY_GROUPS = ("youtube.channel", "youtube.comments", "youtube.live_chat", "youtube.music",
                      "youtube.playable", "youtube.posts", "youtube.private_playlists", "youtube.private_videos",
                      "youtube.public_playlists", "youtube.public_videos", "youtube.shopping",
                      "youtube.subscriptions", "youtube.unlisted_playlists", "youtube.unlisted_videos",
                      "myactivity.youtube")
PORTABILITY_SCOPES = {PORTABILITY_SCOPE_PREFIX + group for group in PORTABILITY_GROUPS}
KNOWN_SCOPES = READ_SCOPES | PORTABILITY_SCOPES
VIDEO_GROUPS = {"youtube.public_videos": "public", "youtube.unlisted_videos": "unlisted",
                "youtube.private_videos": "private"}
API_PREFIX = "/youtube/v3/"
# Every list method used by the archiver costs 1 unit per request (notes §3, [C]).
COSTS = {"channels": 1, "playlistItems": 1, "videos": 1, "commentThreads": 1, "comments": 1,
         "subscriptions": 1}
PARTS = {
    "channels": {"id", "snippet", "contentDetails", "statistics", "brandingSettings", "status"},
    "playlistItems": {"id", "snippet", "contentDetails", "status"},
    "videos": {"id", "snippet", "contentDetails", "statistics", "status", "liveStreamingDetails"},
    "commentThreads": {"id", "snippet", "replies"},
    "comments": {"id", "snippet"},
    "subscriptions": {"id", "snippet", "contentDetails", "subscriberSnippet"},
}
# (default, minimum, maximum) of maxResults per method (notes §2).
MAX_RESULTS = {"playlistItems": (5, 0, 50), "commentThreads": (20, 1, 100),
               "comments": (20, 1, 100), "subscriptions": (5, 0, 50), "channels": (5, 0, 50)}
AUTH_CODE_TTL = 600
WORDS = ("sunset", "roof", "timelapse", "city", "rain", "coffee", "cat", "dance", "beach", "night",
         "bridge", "train", "market", "garden", "snow", "studio", "guitar", "recipe", "street",
         "harbour", "forest", "skate", "neon", "morning")
ID_ALPHABET = string.ascii_letters + string.digits + "-_"
THUMB_SIZES = (("default", 120, 90), ("medium", 320, 180), ("high", 480, 360),
               ("standard", 640, 480), ("maxres", 1280, 720))
WORLD_EPOCH = 1_700_000_000


@dataclass
class FakeYouTubeConfig:
    videos: int = 30
    followers: int = 50                 # subscribers (some private: never listed)
    comment_threads: int = 25
    seed: int = 1
    latency_ms: int = 0
    fail_rate: float = 0.0              # chance of a 503 backendError per Data API request
    daily_quota: int = 10_000           # units per Pacific day; then 403 quotaExceeded
    embedded_replies_max: int = 5       # [U] replies embedded in a commentThread
    subscriber_cap: int = 1000          # [U] most public subscribers mySubscribers returns
    private_subscriber_rate: float = 0.2
    publishing_status: str = "production"   # "testing": refresh tokens die after 7 days
    testing_refresh_ttl: int = 7 * 86400
    access_ttl: int = 3599
    rotate_refresh: bool = False        # [U] Google keeps the refresh token
    error_status_field: bool = True     # [U]
    thumbnail_ttl: int = 6 * 3600
    comment_scope: str = "readonly"     # [U] "readonly" | "force-ssl"
    round_subscriber_count: bool = False  # [U]
    client_id: str = "fake-client-id.apps.googleusercontent.com"
    client_secret: str = "fake-client-secret"
    granted_scopes: str = SCOPE_READONLY
    # Data Portability (notes §5; see the module docstring)
    portability_polls_in_progress: int = 1
    portability_access_type: str = "ACCESS_TYPE_ONE_TIME"    # or "ACCESS_TYPE_TIME_BASED"
    portability_refused_status: str = "PERMISSION_DENIED"    # [U] or "FAILED_PRECONDITION"
    portability_reset_required: bool = True                  # [U]
    portability_url_ttl: int = 6 * 3600                      # [U] seconds a signed link lives
    portability_expired_status: int = 400                    # [U] what an expired link answers
    portability_parts: int = 1                               # 1 | 2
    following: int = 4                                       # channels the owner subscribes to


def fake_png(key: str) -> bytes:
    """A small valid 8x8 PNG whose pixels depend on ``key``."""
    rng = random.Random(f"png:{key}")
    rows = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(8 * 3)) for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def rfc3339(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pacific_day(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, PACIFIC).date().isoformat()


def iso_duration(seconds: int) -> str:
    minutes, sec = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return ("PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
            + (f"{sec}S" if sec or not (hours or minutes) else ""))


# --------------------------------------------------------------------------- fields=


class FieldsError(ValueError):
    pass


def parse_fields(spec: str) -> dict:
    """Google's partial-response syntax: ``a,b(c,d/e),f/g`` -> nested dict (None = whole)."""
    position = 0

    def parse_list(closing: str | None) -> dict:
        nonlocal position
        tree: dict = {}
        while True:
            match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*").match(spec, position)
            if not match:
                raise FieldsError(f"bad field selection at {position}")
            position = match.end()
            path = match.group().split("/")
            sub = None
            if position < len(spec) and spec[position] == "(":
                position += 1
                sub = parse_list(")")
            node = tree
            selected_whole = False
            for name in path[:-1]:
                if name in node and node[name] is None:
                    selected_whole = True   # the whole member is already selected
                    break
                node = node.setdefault(name, {})
            if not selected_whole:
                node[path[-1]] = sub
            if position >= len(spec):
                if closing:
                    raise FieldsError("unbalanced parentheses")
                return tree
            if spec[position] == ",":
                position += 1
                continue
            if spec[position] == ")" and closing:
                position += 1
                return tree
            raise FieldsError(f"bad field selection at {position}")

    tree = parse_list(None)
    return tree


def apply_fields(value, tree: dict | None):
    if tree is None:
        return value
    if isinstance(value, list):
        return [apply_fields(v, tree) for v in value]
    if isinstance(value, dict):
        return {k: apply_fields(value[k], sub) for k, sub in tree.items() if k in value}
    return value


# --------------------------------------------------------------------------- the fake


class FakeYouTube(FakeClock):
    """YouTube's Data API and Google OAuth as one in-memory world. Thread-safe (one lock)."""

    def __init__(self, config: FakeYouTubeConfig | None = None, base_url: str = "http://127.0.0.1:0"):
        self.config = config or FakeYouTubeConfig()
        self.base_url = base_url.rstrip("/")
        self.clock_offset = 0.0
        self._lock = threading.RLock()
        self._rng = random.Random(f"world:{self.config.seed}")
        self._fault_rng = random.Random(f"faults:{self.config.seed}")
        self._sign_key = f"thumb-secret-{self.config.seed}".encode()
        self._grants: dict[str, dict] = {}
        self._codes: dict[str, dict] = {}
        self._access: dict[str, dict] = {}
        self._refresh: dict[str, dict] = {}
        self.units_by_day: dict[str, int] = collections.defaultdict(int)
        self._throttle: list[tuple[int, str]] = []     # queued rate-limit answers (status, reason)
        # (method, path, status, params) of recent requests, for tests.
        self.log: collections.deque = collections.deque(maxlen=20_000)
        self.channel: dict = {}
        self.videos: list[dict] = []          # newest first, like the uploads playlist
        self.deleted_videos: list[dict] = []
        self.threads: list[dict] = []         # newest first
        self.subscribers: list[dict] = []     # {"channel_id","title","subscribed_at","public"}
        self._counter = 0
        # Data Portability: job id -> {"resources", "state", "polls", "doomed", "parts", …}
        self.portability_jobs: dict[str, dict] = {}
        self.exhausted_groups: set[str] = set()   # used by a one-time export, until reset
        self._doomed_jobs = 0
        self.portability_resets = 0
        # A hostile archive part download: None, or one of fakeserver.HOSTILE_BODIES.
        self.part_fault: str | None = None
        # People's pictures: channel id -> the version of their current picture (0: the
        # first). Every version ever handed out stays served; unknown ones answer 404.
        self.picture_versions: dict[str, int] = {}
        self.picture_fault: int | None = None   # the status the picture host answers (None: it works)
        self._build_world()

    # ------------------------------------------------------------------ clock and quota


    def today(self) -> str:
        return pacific_day(self.now())

    def units_today(self) -> int:
        return self.units_by_day.get(self.today(), 0)

    def throttle(self, times: int, reason: str = "rateLimitExceeded", status: int = 403) -> None:
        """The next ``times`` Data API requests answer a short-term rate-limit error."""
        with self._lock:
            self._throttle.extend([(status, reason)] * times)

    # ------------------------------------------------------------------ world

    def _id(self, length: int) -> str:
        return "".join(self._rng.choice(ID_ALPHABET) for _ in range(length))

    def _build_world(self) -> None:
        rng = self._rng
        name = f"{rng.choice(WORDS)}{rng.choice(WORDS)}{rng.randrange(100)}"
        core = self._id(22)
        self.channel = {
            "id": "UC" + core, "uploads": "UU" + core, "title": name.title(),
            "description": f"{rng.choice(WORDS).title()}s, mostly.", "customUrl": f"@{name}",
            "publishedAt": WORLD_EPOCH - 400 * 86400, "viewCount_extra": rng.randrange(1000, 99999),
        }
        self.picture_versions[self.channel["id"]] = 0   # the owner comments too
        moment = WORLD_EPOCH
        for _ in range(self.config.videos):
            self.videos.append(self._new_video(moment))
            moment -= rng.randrange(3600, 5 * 86400)
        for i in range(self.config.followers):
            self.subscribers.append(self._new_subscriber(f"fan{i:04d}", WORLD_EPOCH - 300 * 86400 + i * 3671))
        fans = [s for s in self.subscribers] or [self._new_subscriber("fan", WORLD_EPOCH)]
        moment = WORLD_EPOCH + 3600
        for i in range(self.config.comment_threads if self.videos else 0):
            video = self.videos[rng.randrange(len(self.videos))]
            replies = rng.choice((0, 0, 1, 2, 3, 7, 12)) if i % 4 else 9  # every 4th: many
            self.threads.insert(0, self._new_thread(video["id"], rng.choice(fans), moment, replies, fans))
            moment += rng.randrange(600, 86400)

    def _new_video(self, published: float, **overrides) -> dict:
        rng = self._rng
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
        video = {
            "id": self._id(11), "publishedAt": published, "title": words.capitalize(),
            "description": f"{words} #{rng.choice(WORDS)}", "tags": [rng.choice(WORDS)],
            "duration": rng.randint(8, 900), "privacyStatus": "unlisted" if rng.random() < 0.1 else "public",
            "viewCount": rng.randrange(100, 500_000), "likeCount": rng.randrange(0, 5000),
            "commentCount": rng.randrange(0, 200), "likes_hidden": rng.random() < 0.1,
            "comments_disabled": rng.random() < 0.05, "maxres": rng.random() < 0.5,
        }
        video.update(overrides)
        return video

    def _new_subscriber(self, prefix: str, subscribed_at: float, public: bool | None = None) -> dict:
        if public is None:
            public = self._rng.random() >= self.config.private_subscriber_rate
        person: dict[str, Any] = {"channel_id": "UC" + self._id(22), "title": f"{prefix} {self._rng.choice(WORDS)}".title(),
                  "subscribed_at": subscribed_at, "public": public}
        self.picture_versions.setdefault(person["channel_id"], 0)
        return person

    def _new_comment(self, author: dict, published: float, text: str, parent: str | None = None) -> dict:
        self._counter += 1
        ident = f"{parent}.{self._id(10)}{self._counter}" if parent else f"Ugz{self._id(16)}{self._counter}"
        return {"id": ident, "author": author, "text": text, "publishedAt": published,
                "updatedAt": published, "likeCount": self._rng.randrange(0, 30), "parent": parent}

    def _new_thread(self, video_id: str, author: dict, published: float, replies: int, fans: list) -> dict:
        top = self._new_comment(author, published, f"Where was this {self._rng.choice(WORDS)}?")
        thread = {"id": top["id"], "video_id": video_id, "top": top, "replies": []}
        owner = {"channel_id": self.channel["id"], "title": self.channel["title"]}
        for k in range(replies):
            who = owner if k % 3 == 0 else self._rng.choice(fans)
            thread["replies"].append(self._new_comment(who, published + 60 * (k + 1),
                                                       f"reply {k} <b>{self._rng.choice(WORDS)}</b>", top["id"]))
        return thread

    # -- world changes ----------------------------------------------------------------

    def add_video(self, **overrides) -> dict:
        with self._lock:
            newest = max((v["publishedAt"] for v in self.videos), default=WORLD_EPOCH)
            video = self._new_video(overrides.pop("publishedAt", max(self.now(), newest + 1)), **overrides)
            self.videos.insert(0, video)
            return video

    def video(self, video_id: str) -> dict:
        for video in self.videos:
            if video["id"] == video_id:
                return video
        raise KeyError(video_id)

    def edit_video(self, video_id: str, title: str | None = None, description: str | None = None) -> None:
        with self._lock:
            video = self.video(video_id)
            if title is not None:
                video["title"] = title
            if description is not None:
                video["description"] = description

    def delete_video(self, video_id: str) -> None:
        with self._lock:
            video = self.video(video_id)
            self.videos.remove(video)
            self.deleted_videos.append(video)

    def set_counts(self, video_id: str, **counts: int) -> None:
        with self._lock:
            self.video(video_id).update(counts)

    def add_thread(self, video_id: str | None = None, replies: int = 0) -> dict:
        with self._lock:
            fans = self.subscribers or [self._new_subscriber("fan", self.now())]
            thread = self._new_thread(video_id or self.videos[0]["id"], self._rng.choice(fans),
                                      max(self.now(), self.threads[0]["top"]["publishedAt"] + 1 if self.threads else 0),
                                      replies, fans)
            self.threads.insert(0, thread)
            return thread

    def add_reply(self, thread_id: str, text: str = "late reply") -> dict:
        with self._lock:
            thread = next(t for t in self.threads if t["id"] == thread_id)
            fan = self._rng.choice(self.subscribers) if self.subscribers else self._new_subscriber("fan", 0)
            reply = self._new_comment(fan, self.now(), text, thread_id)
            thread["replies"].append(reply)
            return reply

    def delete_comment(self, comment_id: str) -> None:
        """The author (or the owner) deletes a comment; a top-level one takes its thread
        and every reply with it, as on YouTube."""
        with self._lock:
            for thread in list(self.threads):
                if thread["id"] == comment_id:
                    self.threads.remove(thread)
                    return
                for reply in thread["replies"]:
                    if reply["id"] == comment_id:
                        thread["replies"].remove(reply)
                        return
            raise KeyError(comment_id)

    def gain_subscribers(self, n: int, public: bool = True) -> list[dict]:
        with self._lock:
            new = [self._new_subscriber(f"newfan{len(self.subscribers) + i}", self.now(), public) for i in range(n)]
            self.subscribers.extend(new)
            return new

    def lose_subscribers(self, n: int) -> list[dict]:
        """The ``n`` oldest *public* subscribers leave."""
        with self._lock:
            lost = [s for s in self.subscribers if s["public"]][:n]
            self.subscribers = [s for s in self.subscribers if s not in lost]
            return lost

    def public_subscribers(self) -> list[dict]:
        return [s for s in self.subscribers if s["public"]][: self.config.subscriber_cap]

    # -- people's pictures -------------------------------------------------------------

    def picture_path(self, channel_id: str, size: int = 48) -> str:
        """The path of a person's current picture (comments show it at 48 px)."""
        version = self.picture_versions.setdefault(channel_id, 0)   # handed out: served from now on
        key = channel_id + (f".v{version}" if version else "")
        return f"/yt3/ytc/{key}=s{size}{PICTURE_OPTIONS}"

    def picture_url(self, channel_id: str, size: int = 48) -> str:
        return self.base_url + self.picture_path(channel_id, size)

    def change_picture(self, channel_id: str) -> str:
        """The person uploads a new picture: a new link from now on. Returns its 48 px path."""
        with self._lock:
            self.picture_versions[channel_id] += 1
            return self.picture_path(channel_id)

    def _person_picture(self, request: httpx.Request) -> httpx.Response:
        """A current or earlier picture of a known person, as a small PNG (no auth, like the CDN)."""
        if request.method not in ("GET", "HEAD"):
            return self._html(405, "Method Not Allowed")
        if self.picture_fault is not None:
            return self._html(self.picture_fault, "The picture host is unavailable.")
        match = PICTURE_PATH.fullmatch(request.url.path)
        known = (match is not None and match.group(1) in self.picture_versions
                 and int(match.group(2) or 0) <= self.picture_versions[match.group(1)])
        if not known:
            return self._html(404, "Not Found")
        return httpx.Response(200, headers={"Content-Type": "image/png"},
                              content=b"" if request.method == "HEAD" else fake_png(request.url.path))

    # ------------------------------------------------------------------ tokens

    def issue_tokens(self, scopes: str | None = None) -> dict:
        """Mint an access + refresh token pair directly (what `archiver auth youtube` gets)."""
        with self._lock:
            grant = self._new_grant((scopes or self.config.granted_scopes).split())
            return self._token_response(grant, new_refresh=True)

    def _new_grant(self, scopes: list[str]) -> str:
        grant_id = secrets.token_hex(8)
        if not self.config.portability_reset_required and set(scopes) & PORTABILITY_SCOPES:
            self.exhausted_groups.clear()   # [U] a new consent alone renews one-time access
        self._grants[grant_id] = {"scopes": scopes, "revoked": False}
        return grant_id

    def revoke_all(self) -> None:
        with self._lock:
            for grant in self._grants.values():
                grant["revoked"] = True

    def expire_access_tokens(self) -> None:
        with self._lock:
            for token in self._access.values():
                token["expires_at"] = self.now() - 1

    def _token_response(self, grant_id: str, new_refresh: bool) -> dict:
        now = self.now()
        access = f"ya29.a0{secrets.token_urlsafe(40)}"
        self._access[access] = {"grant": grant_id, "expires_at": now + self.config.access_ttl}
        body = {"access_token": access, "expires_in": self.config.access_ttl,
                "scope": " ".join(self._grants[grant_id]["scopes"]), "token_type": "Bearer"}
        if new_refresh:
            refresh = f"1//0g{secrets.token_urlsafe(40)}"
            self._refresh[refresh] = {"grant": grant_id, "issued_at": now, "alive": True}
            body["refresh_token"] = refresh
        return body

    # ------------------------------------------------------------------ responses

    @staticmethod
    def _json(status: int, body: dict, headers: dict | None = None) -> httpx.Response:
        return httpx.Response(status, headers={"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
                              content=json.dumps(body).encode())

    def _error(self, status: int, reason: str, message: str, domain: str = "youtube.parameter",
               **extra) -> httpx.Response:
        envelope: dict = {"code": status, "message": message,
                          "errors": [{"message": message, "domain": domain, "reason": reason, **extra}]}
        if self.config.error_status_field:
            envelope["status"] = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                                  404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}.get(status, "UNKNOWN")
        return self._json(status, {"error": envelope})

    def _oauth_error(self, status: int, error: str, description: str) -> httpx.Response:
        return self._json(status, {"error": error, "error_description": description})

    @staticmethod
    def _html(status: int, text: str) -> httpx.Response:
        return httpx.Response(status, headers={"Content-Type": "text/html; charset=utf-8"},
                              content=f"<html><body><h1>{status}</h1><p>{text}</p></body></html>".encode())

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request; usable as ``httpx.MockTransport(fake.handle)``."""
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)
        with self._lock:
            response = self._dispatch(request)
            self.log.append((request.method, request.url.path, response.status_code,
                             dict(request.url.params)))
            return response

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/v1/"):
            return self._portability(request)
        if path.startswith("/dataportability-prod/"):
            return self._archive_part(request)
        if path.startswith("/vi/"):
            return self._thumbnail(request)
        if path.startswith("/yt3/"):
            return self._person_picture(request)
        if path.startswith("/ytc/"):
            if self.picture_fault is not None:   # the same picture host as everyone else's
                return self._html(self.picture_fault, "The picture host is unavailable.")
            return httpx.Response(200, headers={"Content-Type": "image/png"}, content=fake_png(path))
        if path == "/o/oauth2/v2/auth":
            return self._authorize(request)
        if path == "/token":
            if request.method != "POST":
                return self._oauth_error(400, "invalid_request", "Use POST.")
            return self._token(request)
        if path == "/revoke":
            token = request.url.params.get("token") or (self._form(request) or {}).get("token", "")
            record = self._refresh.get(token) or self._access.get(token)
            if record is None:
                return self._oauth_error(400, "invalid_token", "Token expired or revoked")
            self._grants[record["grant"]]["revoked"] = True
            return self._json(200, {})
        if not path.startswith(API_PREFIX):
            return self._error(404, "notFound", "Not Found", domain="global")
        resource = path[len(API_PREFIX):]
        handler = getattr(self, f"_api_{resource}", None) if resource in COSTS else None
        if handler is None:
            return self._error(404, "notFound", "Not Found", domain="global")
        if request.method != "GET":
            return self._error(405, "methodNotAllowed", "Method not allowed", domain="global")
        grant = self._bearer_grant(request)
        if grant is None:
            return self._error(401, "authError", "Request had invalid authentication credentials.",
                               domain="global", location="Authorization", locationType="header")
        day = self.today()
        if self.units_by_day[day] + COSTS[resource] > self.config.daily_quota:
            return self._error(403, "quotaExceeded", "The request cannot be completed because you have "
                               'exceeded your <a href="/youtube/v3/getting-started#quota">quota</a>.',
                               domain="youtube.quota")
        self.units_by_day[day] += COSTS[resource]   # invalid requests cost too (notes §3)
        if self._throttle:
            status, reason = self._throttle.pop(0)
            return self._error(status, reason, "Rate limit exceeded", domain="usageLimits")
        if self.config.fail_rate and self._fault_rng.random() < self.config.fail_rate:
            return self._error(503, "backendError", "Backend Error", domain="global")
        if not set(grant["scopes"]) & READ_SCOPES:
            return self._error(403, "insufficientPermissions", "Request had insufficient authentication scopes.",
                               domain="global")
        if (resource in ("commentThreads", "comments") and self.config.comment_scope == "force-ssl"
                and not set(grant["scopes"]) & {SCOPE_FORCE_SSL, SCOPE_FULL}):
            return self._error(403, "insufficientPermissions", "Request had insufficient authentication scopes.",
                               domain="global")
        params = request.url.params
        part = params.get("part")
        if not part:
            return self._error(400, "missingRequiredParameter", "No filter selected. Expected one of: part")
        parts = [p.strip() for p in part.split(",")]
        unknown = [p for p in parts if p not in PARTS[resource]]
        if unknown:
            return self._error(400, "unknownPart", f"{unknown[0]}")
        fields = None
        if params.get("fields"):
            try:
                fields = parse_fields(params["fields"])
            except FieldsError as error:
                return self._error(400, "invalidParameter", f"Invalid field selection: {error}", domain="global")
        maximum = 50
        if resource in MAX_RESULTS:
            default, low, maximum = MAX_RESULTS[resource]
            raw = params.get("maxResults")
            if raw is not None and (not raw.isdigit() or not low <= int(raw) <= maximum):
                return self._error(400, "invalidParameter", f"Invalid value for maxResults: {raw}")
            maximum = int(raw) if raw is not None else default
        answer = handler(params, set(parts), maximum)
        if isinstance(answer, httpx.Response):
            return answer
        answer = {"kind": f"youtube#{resource[0].lower() + resource[1:].rstrip('s')}ListResponse",
                  "etag": hashlib.sha1(json.dumps(answer, sort_keys=True).encode()).hexdigest()[:27], **answer}
        return self._json(200, apply_fields(answer, fields))

    def _bearer_grant(self, request: httpx.Request) -> dict | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        token = self._access.get(header[len("Bearer "):].strip())
        if token is None or token["expires_at"] <= self.now():
            return None
        grant = self._grants[token["grant"]]
        return None if grant["revoked"] else grant

    # -- paging ----------------------------------------------------------------------

    @staticmethod
    def _token_for(key: str, offset: int) -> str:
        return base64.urlsafe_b64encode(f"{key}|{offset}".encode()).decode().rstrip("=")

    def _page(self, items: list, key: str, params, size: int, total: int | None = None):
        """Slice ``items`` at the pageToken's offset; an error response if the token is bad."""
        offset = 0
        token = params.get("pageToken")
        if token:
            try:
                decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
                token_key, raw_offset = decoded.rsplit("|", 1)
                offset = int(raw_offset)
            except ValueError:
                return self._error(400, "invalidPageToken", "The request specifies an invalid page token.")
            if token_key != key:
                return self._error(400, "invalidPageToken", "The request specifies an invalid page token.")
        chunk = items[offset:offset + size]
        body = {"pageInfo": {"totalResults": len(items) if total is None else total, "resultsPerPage": size},
                "items": chunk}
        if offset + size < len(items) and size > 0:
            body["nextPageToken"] = self._token_for(key, offset + size)
        if offset > 0:
            body["prevPageToken"] = self._token_for(key, max(0, offset - size))
        return body

    @staticmethod
    def _exactly_one(params, names: tuple[str, ...]) -> str | None:
        given = [n for n in names if params.get(n)]
        return given[0] if len(given) == 1 else None

    # -- signed thumbnails ---------------------------------------------------------------

    def _sign(self, path: str, expires: int | str) -> str:
        return hmac.new(self._sign_key, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()[:24]

    def _thumbnail_url(self, video_id: str, name: str) -> str:
        path = f"/vi/{video_id}/{name}.jpg"
        expires = int(self.now()) + self.config.thumbnail_ttl
        return f"{self.base_url}{path}?{urlencode({'exp': expires, 'sig': self._sign(path, expires)})}"

    def _thumbnail(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        expires = request.url.params.get("exp", "")
        signature = request.url.params.get("sig", "")
        if not expires.isdigit() or not hmac.compare_digest(signature, self._sign(path, int(expires))):
            return httpx.Response(403, content=b"Forbidden: bad signature")
        if int(expires) < self.now():
            return httpx.Response(403, content=b"Forbidden: link expired")
        return httpx.Response(200, headers={"Content-Type": "image/png"}, content=fake_png(path))

    def thumbnail_bytes(self, video_id: str) -> bytes:
        """What the best thumbnail of ``video_id`` serves (for tests)."""
        name = "maxresdefault" if self.video(video_id)["maxres"] else "sddefault"
        return fake_png(f"/vi/{video_id}/{name}.jpg")

    # -- renderers -------------------------------------------------------------------------

    def _render_video(self, video: dict, parts: set[str]) -> dict:
        item = {"kind": "youtube#video", "etag": "e" + video["id"], "id": video["id"]}
        thumbs = {}
        for name, width, height in THUMB_SIZES:
            if name == "maxres" and not video["maxres"]:
                continue
            file = {"default": "default", "medium": "mqdefault", "high": "hqdefault",
                    "standard": "sddefault", "maxres": "maxresdefault"}[name]
            thumbs[name] = {"url": self._thumbnail_url(video["id"], file), "width": width, "height": height}
        if "snippet" in parts:
            item["snippet"] = {
                "publishedAt": rfc3339(video["publishedAt"]), "channelId": self.channel["id"],
                "title": video["title"], "description": video["description"], "thumbnails": thumbs,
                "channelTitle": self.channel["title"], "tags": video["tags"], "categoryId": "22",
                "liveBroadcastContent": "none", "defaultAudioLanguage": "en",
            }
        if "contentDetails" in parts:
            item["contentDetails"] = {"duration": iso_duration(video["duration"]), "dimension": "2d",
                                      "definition": "hd", "caption": "false", "licensedContent": False,
                                      "projection": "rectangular"}
        if "status" in parts:
            item["status"] = {"uploadStatus": "processed", "privacyStatus": video["privacyStatus"],
                              "license": "youtube", "embeddable": True, "publicStatsViewable": True,
                              "madeForKids": False}
        if "statistics" in parts:
            stats = {"viewCount": str(video["viewCount"]), "likeCount": str(video["likeCount"]),
                     "favoriteCount": "0", "commentCount": str(video["commentCount"])}
            if video["likes_hidden"]:
                stats.pop("likeCount")
            if video["comments_disabled"]:
                stats.pop("commentCount")
            item["statistics"] = stats
        return item

    def _render_comment(self, comment: dict, video_id: str) -> dict:
        author = comment["author"]
        snippet = {
            "channelId": self.channel["id"], "videoId": video_id,
            "textDisplay": comment["text"], "textOriginal": re.sub(r"<[^>]+>", "", comment["text"]),
            "authorDisplayName": "@" + author["title"].lower().replace(" ", ""),
            "authorProfileImageUrl": self.picture_url(author["channel_id"]),
            "authorChannelUrl": f"http://www.youtube.com/channel/{author['channel_id']}",
            "authorChannelId": {"value": author["channel_id"]},
            "canRate": True, "viewerRating": "none", "likeCount": comment["likeCount"],
            "publishedAt": rfc3339(comment["publishedAt"]), "updatedAt": rfc3339(comment["updatedAt"]),
        }
        if comment["parent"]:
            snippet["parentId"] = comment["parent"]
        return {"kind": "youtube#comment", "etag": "c" + comment["id"][-8:], "id": comment["id"],
                "snippet": snippet}

    def _plain(self, item: dict, params) -> dict:
        if params.get("textFormat", "html") == "plainText":
            item["snippet"]["textDisplay"] = re.sub(r"<[^>]+>", "", item["snippet"]["textDisplay"])
        return item

    # -- Data API methods ------------------------------------------------------------------

    def _api_channels(self, params, parts, size):
        if self._exactly_one(params, ("mine", "id", "forHandle", "forUsername")) is None:
            return self._error(400, "missingRequiredParameter", "No filter selected. Expected one of: mine, id, ...")
        if params.get("id") and self.channel["id"] not in params["id"].split(","):
            return {"pageInfo": {"totalResults": 0, "resultsPerPage": 5}, "items": []}
        ch = self.channel
        item = {"kind": "youtube#channel", "etag": "ch", "id": ch["id"]}
        if "snippet" in parts:
            item["snippet"] = {"title": ch["title"], "description": ch["description"], "customUrl": ch["customUrl"],
                               "publishedAt": rfc3339(ch["publishedAt"]),
                               "thumbnails": {k: {"url": f"{self.base_url}/ytc/{ch['id']}=s{w}", "width": w, "height": w}
                                              for k, w in (("default", 88), ("medium", 240), ("high", 800))}}
        if "contentDetails" in parts:
            item["contentDetails"] = {"relatedPlaylists": {"likes": "", "uploads": ch["uploads"]}}
        if "statistics" in parts:
            count = len(self.subscribers)
            if self.config.round_subscriber_count and count >= 1000:
                digits = len(str(count)) - 3
                count = count // 10 ** digits * 10 ** digits
            item["statistics"] = {"viewCount": str(sum(v["viewCount"] for v in self.videos) + ch["viewCount_extra"]),
                                  "subscriberCount": str(count), "hiddenSubscriberCount": False,
                                  "videoCount": str(len(self.videos))}
        if "brandingSettings" in parts:
            item["brandingSettings"] = {"channel": {"title": ch["title"], "description": ch["description"]}}
        return {"pageInfo": {"totalResults": 1, "resultsPerPage": 5}, "items": [item]}

    def _api_playlistItems(self, params, parts, size):
        playlist = params.get("playlistId")
        if not playlist:
            return self._error(400, "missingRequiredParameter", "No filter selected. Expected one of: playlistId, id")
        if playlist != self.channel["uploads"]:
            return self._error(404, "playlistNotFound", "The playlist identified with the request's playlistId "
                               "parameter cannot be found.", domain="youtube.playlistItem")
        page = self._page(self.videos, f"pl:{playlist}", params, size)
        if isinstance(page, httpx.Response):
            return page
        items = []
        for position, video in enumerate(page["items"]):
            item = {"kind": "youtube#playlistItem", "etag": "p" + video["id"], "id": "UEx" + video["id"]}
            if "snippet" in parts:
                item["snippet"] = {"publishedAt": rfc3339(video["publishedAt"]), "channelId": self.channel["id"],
                                   "title": video["title"], "description": video["description"],
                                   "playlistId": playlist, "position": position,
                                   "resourceId": {"kind": "youtube#video", "videoId": video["id"]}}
            if "contentDetails" in parts:
                item["contentDetails"] = {"videoId": video["id"], "videoPublishedAt": rfc3339(video["publishedAt"])}
            if "status" in parts:
                item["status"] = {"privacyStatus": video["privacyStatus"]}
            items.append(item)
        page["items"] = items
        return page

    def _api_videos(self, params, parts, size):
        if not params.get("id"):
            return self._error(400, "missingRequiredParameter", "No filter selected. Expected one of: id, chart, myRating")
        ids = params["id"].split(",")
        if len(ids) > 50:
            return self._error(400, "invalidParameter", "Too many ids: at most 50.")
        by_id = {v["id"]: v for v in self.videos}
        # Ids that do not exist are simply absent (notes §2.2).
        items = [self._render_video(by_id[i], parts) for i in ids if i in by_id]
        return {"pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}, "items": items}

    def _api_commentThreads(self, params, parts, size):
        which = self._exactly_one(params, ("allThreadsRelatedToChannelId", "videoId", "id", "channelId"))
        if which is None:
            return self._error(400, "missingRequiredParameter",
                               "Expected exactly one of: allThreadsRelatedToChannelId, videoId, id")
        if which == "allThreadsRelatedToChannelId":
            if params[which] != self.channel["id"]:
                return self._error(404, "channelNotFound", "Channel not found.", domain="youtube.commentThread")
            threads = self.threads
        elif which == "videoId":
            try:
                video = self.video(params["videoId"])
            except KeyError:
                return self._error(404, "videoNotFound", "Video not found.", domain="youtube.commentThread")
            if video["comments_disabled"]:
                return self._error(403, "commentsDisabled", "Comments are disabled.", domain="youtube.commentThread")
            threads = [t for t in self.threads if t["video_id"] == video["id"]]
        else:
            wanted = set(params[which].split(","))
            threads = [t for t in self.threads if t["id"] in wanted]
        if params.get("order", "time") == "relevance":
            threads = sorted(threads, key=lambda t: -len(t["replies"]))
        page = self._page(threads, f"ct:{which}:{params[which]}", params, size)
        if isinstance(page, httpx.Response):
            return page
        items = []
        for thread in page["items"]:
            item = {"kind": "youtube#commentThread", "etag": "t" + thread["id"][-8:], "id": thread["id"]}
            if "snippet" in parts:
                item["snippet"] = {"channelId": self.channel["id"], "videoId": thread["video_id"], "canReply": True,
                                   "totalReplyCount": len(thread["replies"]), "isPublic": True,
                                   "topLevelComment": self._plain(self._render_comment(thread["top"], thread["video_id"]),
                                                                  params)}
            if "replies" in parts and thread["replies"]:
                embedded = thread["replies"][: self.config.embedded_replies_max]
                item["replies"] = {"comments": [self._plain(self._render_comment(r, thread["video_id"]), params)
                                                for r in embedded]}
            items.append(item)
        page["items"] = items
        return page

    def _api_comments(self, params, parts, size):
        which = self._exactly_one(params, ("parentId", "id"))
        if which is None:
            return self._error(400, "missingRequiredParameter", "Expected exactly one of: parentId, id")
        if which == "parentId":
            thread = next((t for t in self.threads if t["id"] == params["parentId"]), None)
            if thread is None:
                return self._error(404, "commentNotFound", "Comment not found.", domain="youtube.comment")
            comments, video_id = thread["replies"], thread["video_id"]
        else:
            wanted = set(params["id"].split(","))
            pairs = [(c, t["video_id"]) for t in self.threads for c in [t["top"], *t["replies"]] if c["id"] in wanted]
            comments, video_id = [c for c, _ in pairs], None
        page = self._page(comments, f"cm:{which}:{params[which]}", params, size)
        if isinstance(page, httpx.Response):
            return page
        rendered = []
        for comment in page["items"]:
            item = self._plain(self._render_comment(comment, video_id or ""), params)
            item["snippet"].pop("videoId", None)  # replies from comments.list carry no videoId [U]
            rendered.append(item if "snippet" in parts else {k: item[k] for k in ("kind", "etag", "id")})
        page["items"] = rendered
        return page

    def _api_subscriptions(self, params, parts, size):
        which = self._exactly_one(params, ("mySubscribers", "myRecentSubscribers", "mine", "channelId", "id"))
        if which is None:
            return self._error(400, "incompatibleParameters", "Specify exactly one filter.")
        if which in ("mySubscribers", "myRecentSubscribers"):
            people = self.public_subscribers()
            if which == "myRecentSubscribers":
                people = sorted(people, key=lambda s: -s["subscribed_at"])
        else:
            people = []   # the channels the owner follows: not modelled
        page = self._page(people, f"sub:{which}", params, size, total=len(self.subscribers))
        if isinstance(page, httpx.Response):
            return page
        items = []
        for person in page["items"]:
            item = {"kind": "youtube#subscription", "etag": "s" + person["channel_id"][-6:],
                    "id": "FMP" + hashlib.sha1(person["channel_id"].encode()).hexdigest()[:20]}
            if "snippet" in parts:
                item["snippet"] = {"publishedAt": rfc3339(person["subscribed_at"]), "title": self.channel["title"],
                                   "resourceId": {"kind": "youtube#channel", "channelId": self.channel["id"]},
                                   "channelId": person["channel_id"]}
            if "subscriberSnippet" in parts:
                item["subscriberSnippet"] = {"title": person["title"], "description": "",
                                             "channelId": person["channel_id"],
                                             "thumbnails": {"default": {"url": self.picture_url(person["channel_id"], 88)}}}
            if "contentDetails" in parts:
                item["contentDetails"] = {"totalItemCount": 3, "newItemCount": 0, "activityType": "all"}
            items.append(item)
        page["items"] = items
        return page

    # ------------------------------------------------------------------ OAuth

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        if q.get("client_id") != self.config.client_id:
            return self._html(401, "Error 401: invalid_client. The OAuth client was not found.")
        if q.get("response_type") != "code":
            return self._html(400, "Error 400: invalid_request. response_type must be code.")
        redirect_uri = q.get("redirect_uri") or ""
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
            return self._html(400, "Error 400: redirect_uri_mismatch.")
        requested = (q.get("scope") or "").split()
        if not requested or any(s not in KNOWN_SCOPES for s in requested):
            return self._html(400, "Error 400: invalid_scope.")
        if not q.get("code_challenge") or q.get("code_challenge_method") != "S256":
            return self._html(400, "Error 400: invalid_request. PKCE S256 expected by this fake.")
        grant = self._new_grant([s for s in requested if s in self.config.granted_scopes.split()] or requested)
        code = f"4/0A{secrets.token_urlsafe(30)}"   # the '/' must be URL-decoded by the client
        self._codes[code] = {"grant": grant, "redirect_uri": redirect_uri, "challenge": q["code_challenge"],
                             "used": False, "expires_at": self.now() + AUTH_CODE_TTL,
                             "offline": q.get("access_type") == "offline"}
        query = {"state": q.get("state", ""), "code": code, "scope": " ".join(self._grants[grant]["scopes"])}
        return httpx.Response(302, headers={"Location": f"{redirect_uri}?{urlencode(query)}"})

    @staticmethod
    def _form(request: httpx.Request) -> dict[str, str] | None:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            return None
        return {k: v[0] for k, v in parse_qs(request.content.decode("utf-8", "replace"), keep_blank_values=True).items()}

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = self._form(request)
        if form is None:
            return self._oauth_error(400, "invalid_request", "Bad Request")
        if (form.get("client_id") != self.config.client_id
                or not hmac.compare_digest(form.get("client_secret", ""), self.config.client_secret)):
            return self._oauth_error(401, "invalid_client", "Unauthorized")
        if form.get("grant_type") == "authorization_code":
            code = self._codes.get(form.get("code", ""))
            if code is None or code["used"] or code["expires_at"] <= self.now():
                return self._oauth_error(400, "invalid_grant", "Malformed auth code.")
            if form.get("redirect_uri") != code["redirect_uri"]:
                return self._oauth_error(400, "redirect_uri_mismatch", "Bad Request")
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code["challenge"]:
                return self._oauth_error(400, "invalid_grant", "Invalid code verifier.")
            code["used"] = True
            return self._json(200, self._token_response(code["grant"], new_refresh=code["offline"]))
        if form.get("grant_type") == "refresh_token":
            record = self._refresh.get(form.get("refresh_token", ""))
            expired = (record is not None and self.config.publishing_status == "testing"
                       and self.now() - record["issued_at"] >= self.config.testing_refresh_ttl)
            if record is None or not record["alive"] or expired or self._grants[record["grant"]]["revoked"]:
                return self._oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            if self.config.rotate_refresh:
                record["alive"] = False
            return self._json(200, self._token_response(record["grant"], new_refresh=self.config.rotate_refresh))
        return self._oauth_error(400, "unsupported_grant_type", "Invalid grant_type.")


    # ------------------------------------------------------------------ Data Portability

    def fail_next_jobs(self, n: int = 1) -> None:
        """The next ``n`` archive jobs initiated end FAILED instead of COMPLETE."""
        with self._lock:
            self._doomed_jobs += n

    def exhaust_portability(self) -> None:
        """Every group's one-time access is used (e.g. by an export made elsewhere)."""
        with self._lock:
            self.exhausted_groups |= set(PORTABILITY_GROUPS)

    def portability_world(self):
        """The Takeout world an archive is written from: this fake's uploads (same ids,
        titles, dates, descriptions and privacy), the owner's replies as their own
        comments, and ``config.following`` subscribed-to channels."""
        from archiver_connectors.youtube.sim.takeout import FakeComment, make_world

        owner = self.channel["id"]
        world = make_world(api_videos=[(v["id"], v["title"], rfc3339(v["publishedAt"])) for v in self.videos],
                           comments=0, subscriptions=self.config.following, seed=self.config.seed,
                           channel_id=owner, channel_title=self.channel["title"])
        for exported, video in zip(world.videos, self.videos, strict=True):   # one exported video per API video
            exported.privacy = video["privacyStatus"].capitalize()
            exported.description = video["description"]
        for thread in self.threads:
            for reply in thread["replies"]:
                if reply["author"]["channel_id"] == owner:
                    created = _dt.datetime.fromtimestamp(reply["publishedAt"], _dt.timezone.utc).isoformat()
                    world.comments.append(FakeComment(reply["id"], owner, created, thread["video_id"], thread["id"],
                                                      [re.sub(r"<[^>]+>", "", reply["text"])]))
        return world

    def _group_parts(self, group: str) -> list[bytes]:
        """The zip parts of one resource group's archive, as Takeout would write them."""
        import io

        from archiver_connectors.youtube.sim.takeout import LOCALES, TakeoutWorld, _write_zip, takeout_files

        world = self.portability_world()
        privacy = VIDEO_GROUPS.get(group)
        if privacy:
            world = TakeoutWorld(world.channel, [v for v in world.videos if v.privacy.lower() == privacy])
        data, videos = takeout_files(world)
        names = LOCALES["en"]
        root = f"Takeout/{names['root']}/"
        wanted = {"youtube.channel": names["channel"], "youtube.comments": names["comments"],
                  "youtube.subscriptions": names["subscriptions"]}
        if privacy:
            files = {root + names["metadata"]: data[root + names["metadata"]], **videos}
        elif group in wanted:
            files = {root + wanted[group]: data[root + wanted[group]]}
        elif group.endswith("playlists"):
            files = {root + names["playlist"]: data[root + names["playlist"]]}
        else:
            files = {"Takeout/archive_browser.html": b"<html><body>Your archive</body></html>"}
        groups = [files]
        video_names = [n for n in files if n.endswith(".mp4")]
        if self.config.portability_parts == 2 and len(video_names) >= 1:
            # Like a big Takeout: a part of video files only (listed first), then the rest.
            first = set(video_names[: (len(video_names) + 1) // 2])
            groups = [{n: files[n] for n in first}, {n: b for n, b in files.items() if n not in first}]
        parts = []
        for part in groups:
            buffer = io.BytesIO()
            _write_zip(buffer, part)
            parts.append(buffer.getvalue())
        return parts

    def _dp_error(self, status: int, word: str, message: str) -> httpx.Response:
        # Data Portability answers the newer Google envelope: code, message, status.
        return self._json(status, {"error": {"code": status, "message": message, "status": word}})

    def _portability(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        grant = self._bearer_grant(request)
        if grant is None:
            return self._dp_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        granted = {s[len(PORTABILITY_SCOPE_PREFIX):] for s in grant["scopes"] if s in PORTABILITY_SCOPES}
        if request.method != "POST" and not path.endswith("/portabilityArchiveState"):
            return self._dp_error(405, "INVALID_ARGUMENT", "Method not allowed.")
        try:
            body = json.loads(request.content or b"{}") if request.method == "POST" else {}
        except ValueError:
            return self._dp_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if path == "/v1/portabilityArchive:initiate":
            resources = body.get("resources") if isinstance(body, dict) else None
            if not resources or not isinstance(resources, list):
                return self._dp_error(400, "INVALID_ARGUMENT", "resources must be a non-empty list.")
            unknown = [r for r in resources if r not in PORTABILITY_GROUPS]
            if unknown:
                return self._dp_error(400, "INVALID_ARGUMENT", f"Invalid resource: {unknown[0]}")
            if not set(resources) <= granted:
                return self._dp_error(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.")
            if set(resources) & self.exhausted_groups:
                return self._dp_error(403, self.config.portability_refused_status,
                                      "The one-time access for the requested resources has been used "
                                      "(exhausted scopes). Reset the authorization and ask for consent again.")
            return self._json(200, self._new_job(resources))
        if path == "/v1/authorization:reset":
            self.exhausted_groups.clear()
            self.portability_resets += 1
            for each in self._grants.values():   # resetAuthorization revokes the tokens too [C]
                each["revoked"] = True
            return self._json(200, {})
        if path == "/v1/accessType:check":   # [U] the answer's shape
            one_time = self.config.portability_access_type == "ACCESS_TYPE_ONE_TIME"
            key = "oneTimeResources" if one_time else "timeBasedResources"
            return self._json(200, {key: sorted(granted)})
        match = re.fullmatch(r"/v1/archiveJobs/([^/:]+)(/portabilityArchiveState|:retry|:cancel)", path)
        if not match or match.group(1) not in self.portability_jobs:
            return self._dp_error(404, "NOT_FOUND", "Requested entity was not found.")
        job = self.portability_jobs[match.group(1)]
        if match.group(2) == ":cancel":
            if job["state"] == "IN_PROGRESS":
                job["state"] = "CANCELLED"
            return self._json(200, {})
        if match.group(2) == ":retry":
            if job["state"] != "FAILED":
                return self._dp_error(400, "FAILED_PRECONDITION", "Only a failed job can be retried.")
            return self._json(200, {"archiveJobId": self._new_job(job["resources"])["archiveJobId"]})
        return self._json(200, self._job_state(match.group(1), job))

    def _new_job(self, resources: list[str]) -> dict:
        job_id = str(uuid.UUID(int=self._rng.getrandbits(128)))
        doomed = self._doomed_jobs > 0
        self._doomed_jobs -= 1 if doomed else 0
        self.portability_jobs[job_id] = {"resources": list(resources), "state": "IN_PROGRESS", "polls": 0,
                                         "doomed": doomed, "parts": None, "started": self.now(),
                                         "access_type": self.config.portability_access_type}
        return {"archiveJobId": job_id, "accessType": self.config.portability_access_type}

    def _job_state(self, job_id: str, job: dict) -> dict:
        job["polls"] += 1
        if job["state"] == "IN_PROGRESS" and job["polls"] > self.config.portability_polls_in_progress:
            if job["doomed"]:
                job["state"] = "FAILED"
            else:
                job["state"] = "COMPLETE"
                # The archive is written once, from the world as it was at export time.
                job["parts"] = [part for group in job["resources"] for part in self._group_parts(group)]
                job["exported"] = self.now()
                if job["access_type"] == "ACCESS_TYPE_ONE_TIME":
                    self.exhausted_groups |= set(job["resources"])
        answer = {"name": f"archiveJobs/{job_id}/portabilityArchiveState", "state": job["state"],
                  "startTime": rfc3339(job["started"])}
        if job["state"] == "COMPLETE":
            answer["exportTime"] = rfc3339(job["exported"])
            answer["urls"] = [self._signed_part_url(job_id, n) for n in range(1, len(job["parts"]) + 1)]
        return answer

    def _signed_part_url(self, job_id: str, number: int) -> str:
        path = f"/dataportability-prod/{job_id}/archive-part-{number:03d}.zip"
        date = _dt.datetime.fromtimestamp(int(self.now()), _dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        ttl = self.config.portability_url_ttl
        query = {"X-Goog-Algorithm": "GOOG4-RSA-SHA256", "X-Goog-Date": date, "X-Goog-Expires": ttl,
                 "X-Goog-SignedHeaders": "host", "X-Goog-Signature": self._sign(path, f"{date}:{ttl}")}
        return f"{self.base_url}{path}?{urlencode(query)}"

    def _archive_part(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        match = re.fullmatch(r"/dataportability-prod/([^/]+)/archive-part-(\d{3})\.zip", request.url.path)
        date, ttl = params.get("X-Goog-Date", ""), params.get("X-Goog-Expires", "")
        signature = params.get("X-Goog-Signature", "")
        xml = {"Content-Type": "application/xml; charset=UTF-8"}
        if not match or not hmac.compare_digest(signature, self._sign(request.url.path, f"{date}:{ttl}")):
            return httpx.Response(403, headers=xml, content=b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
        signed_at = _dt.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.timezone.utc).timestamp()
        if signed_at + int(ttl) < self.now():
            return httpx.Response(self.config.portability_expired_status, headers=xml,
                                  content=b"<Error><Code>ExpiredToken</Code><Message>Invalid argument.</Message>"
                                          b"<Details>Request has expired.</Details></Error>")
        job = self.portability_jobs.get(match.group(1))
        number = int(match.group(2))
        if job is None or not job["parts"] or number > len(job["parts"]):
            return httpx.Response(404, headers=xml, content=b"<Error><Code>NoSuchKey</Code></Error>")
        if self.part_fault is not None:
            from archiver.sim.server import hostile_download

            return hostile_download(self.part_fault, b"PK\x03\x04", "application/zip")
        return httpx.Response(200, headers={"Content-Type": "application/zip"}, content=job["parts"][number - 1])


# --------------------------------------------------------------------------- real HTTP


def serve(fake: FakeYouTube, host: str = "127.0.0.1", port: int = 0):
    """Serve ``fake`` over real HTTP in a daemon thread; returns ``(server, thread)``."""
    from archiver.sim.server import serve_fake

    return serve_fake(fake, host, port, name="fake-youtube",
                      crash_response=lambda error: fake._error(500, "backendError", f"fake crashed: {type(error).__name__}",
                                                               domain="global"))


def main(argv: list[str] | None = None) -> None:
    """``python -m archiver_connectors.youtube.sim.fake --port N ...``: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="archiver simulate youtube",
                                     description="Serve a fake of YouTube Data API v3 and Google OAuth.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--videos", type=int, default=30)
    parser.add_argument("--followers", type=int, default=50, help="subscribers")
    parser.add_argument("--comment-threads", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--daily-quota", type=int, default=10_000)
    parser.add_argument("--publishing-status", choices=("production", "testing"), default="production")
    parser.add_argument("--client-id", default=FakeYouTubeConfig.client_id)
    parser.add_argument("--client-secret", default=FakeYouTubeConfig.client_secret)
    parser.add_argument("--portability", action="store_true",
                        help="grant the Data Portability scopes asked for (an EEA account)")
    parser.add_argument("--portability-polls", type=int, default=1,
                        help="state polls a Data Portability job stays IN_PROGRESS")
    parser.add_argument("--write-takeout", metavar="FOLDER",
                        help="also write this channel's Google Takeout (zip parts) into FOLDER, with the same "
                             "uploads and their video files, to try `archiver import` on")
    args = parser.parse_args(argv)
    config = FakeYouTubeConfig(videos=args.videos, followers=args.followers, comment_threads=args.comment_threads,
                               seed=args.seed, latency_ms=args.latency_ms, fail_rate=args.fail_rate,
                               daily_quota=args.daily_quota, publishing_status=args.publishing_status,
                               client_id=args.client_id, client_secret=args.client_secret,
                               portability_polls_in_progress=args.portability_polls)
    if args.portability:
        config.granted_scopes = " ".join([config.granted_scopes, *sorted(PORTABILITY_SCOPES)])
    fake = FakeYouTube(config)
    if args.write_takeout:
        from archiver_connectors.youtube.sim.takeout import build_takeout

        parts = build_takeout(Path(args.write_takeout).expanduser(), world=fake.portability_world())
        print("wrote the channel's Takeout: " + ", ".join(str(p) for p in parts), flush=True)
    server, _thread = serve(fake, args.host, args.port)
    from archiver.sim.server import serve_until_signalled

    serve_until_signalled(server, fake)


if __name__ == "__main__":
    main()
