"""A stateful fake of TikTok's official APIs, faithful to shared/platforms/tiktok.md.

One ``FakeTikTok`` plays every TikTok host at one base URL:

- Login Kit v2 (www.tiktok.com):     GET  /v2/auth/authorize/
- OAuth (open.tiktokapis.com):        POST /v2/oauth/token/ , /v2/oauth/revoke/
- Display API:                        GET  /v2/user/info/ ; POST /v2/video/list/ , /v2/video/query/
- Data Portability API:               POST /v2/user/data/add/ , check/ , download/ , cancel/
- a signed, expiring CDN:             GET  /cdn/img/<key>~tplv-noop.image , /cdn/video/<key>.mp4

Use it in-process with ``httpx.MockTransport(fake.handle)``, over real loopback HTTP with
``serve(fake)``, or as a process: ``python -m archiver_connectors.tiktok.sim.fake --port 0``.

Choices where the notes leave TikTok's behaviour open ([U] in the notes), all documented here:
- A data endpoint called with the wrong HTTP method answers **405** with the data-API
  envelope and ``invalid_params`` (plus an ``Allow`` header). Unknown paths answer 404, same shape.
- Order of checks on data endpoints: method, token, rate limit, fail_rate, then parameters.
  Requests refused for method or token do not count against the rate limit.
- A video endpoint called with a token lacking ``video.list`` answers 401 ``scope_not_authorized``;
  a user field whose scope was not granted answers 401 ``scope_permission_missed``.
- The ``cursor`` and ``max_count`` must be JSON integers (a float or a string is refused);
  ``cursor: 0`` means "start from the newest", like omitting it.
- Portability ``request_id`` may be sent as a JSON integer or a digit string, never a float.
  A second Add with only ``*.single`` scopes answers 400 ``invalid_params``.
  Check moves one step along ``config.portability_statuses`` per call; download before the
  last status answers 400 ``invalid_params``. Cancelled and expired requests report the
  statuses ``"cancelled"`` and ``"expired"``.
- The CDN answers 403 for an expired or wrongly signed link, serves ``Range`` (206 / 416),
  ``ETag`` and ``If-Range``. Covers and avatars are PNG bytes behind a ``.image`` path
  (like TikTok's), videos are small fake MP4s; both are deterministic per object key.

The world (profile, videos, followers, following, comments) is deterministic from
``config.seed``; tokens are random. ``advance(seconds)`` moves the fake's clock forward so
tests can expire tokens, CDN links and rate-limit windows without sleeping.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as _dt
import hashlib
import hmac
import io
import json
import random
import re
import secrets
import struct
import threading
import time
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from archiver.sim.server import FakeClock

# --------------------------------------------------------------------------- constants

SCOPE_OF_USER_FIELD = {
    "open_id": "user.info.basic",
    "union_id": "user.info.basic",
    "avatar_url": "user.info.basic",
    "avatar_url_100": "user.info.basic",
    "avatar_large_url": "user.info.basic",
    "display_name": "user.info.basic",
    "bio_description": "user.info.profile",
    "profile_deep_link": "user.info.profile",
    "is_verified": "user.info.profile",
    "username": "user.info.profile",
    "follower_count": "user.info.stats",
    "following_count": "user.info.stats",
    "likes_count": "user.info.stats",
    "video_count": "user.info.stats",
}
USER_FIELDS = tuple(SCOPE_OF_USER_FIELD)

VIDEO_FIELDS = (
    "id", "create_time", "cover_image_url", "share_url", "video_description", "duration",
    "height", "width", "title", "embed_html", "embed_link", "like_count", "comment_count",
    "share_count", "view_count", "is_aigc",
)
VIDEO_COUNT_FIELDS = ("like_count", "comment_count", "share_count", "view_count")

PORTABILITY_TYPES = ("all", "activity", "directmessages", "postsandprofile")
PORTABILITY_SCOPES = tuple(
    f"portability.{kind}.{term}" for kind in PORTABILITY_TYPES for term in ("single", "ongoing")
)
# category_selection_list entry -> portability scope types that cover it ("all" covers all).
PORTABILITY_CATEGORY_TYPES = {
    "activity": ("activity", "all"),
    "video": ("postsandprofile", "all"),
    "profile": ("postsandprofile", "all"),
    "direct_message": ("directmessages", "all"),
    "all_data": ("all",),
}
CHECK_FIELDS = ("request_id", "apply_time", "collect_time", "status", "data_format",
                "category_selection_list")

KNOWN_SCOPES = frozenset(
    {"user.info.basic", "user.info.profile", "user.info.stats", "video.list",
     "video.publish", "video.upload", *PORTABILITY_SCOPES}
)

COVER_TTL = 6 * 3600          # cover_image_url lives about 6 hours [C]
AVATAR_TTL = 6 * 3600
AUTH_CODE_TTL = 600
RATE_WINDOW = 60.0            # one-minute sliding window [C]

WORDS = (
    "sunset", "roof", "timelapse", "city", "rain", "coffee", "cat", "dance", "beach", "night",
    "bridge", "train", "market", "garden", "snow", "studio", "guitar", "recipe", "street",
    "harbour", "forest", "skate", "neon", "morning",
)
PROFILE_DEEP_LINK = "https://vm.tiktok.com/ZMfake{n}/"


# --------------------------------------------------------------------------- config


@dataclass
class FakeTikTokConfig:
    videos: int = 30
    followers: int = 50
    following: int = 20
    seed: int = 1
    latency_ms: int = 0                 # sleep per request
    fail_rate: float = 0.0              # chance of a 500 internal_error per data request
    rate_limit_per_minute: int = 600    # per endpoint, sliding window -> 429
    retry_after: str | None = None      # Retry-After header value on 429 (TikTok documents none)
    access_ttl: int = 7200              # newer docs: 2 h   (older: 86400)
    refresh_ttl: int = 180 * 86400      # newer docs: 180 d (older: 31536000)
    rotate_refresh: bool = True         # each refresh returns a new refresh token; the old dies
    pkce: str = "hex"                   # "hex" | "base64url" | "either"
    oauth_error_status: int = 400       # status with OAuth error bodies (200 or 4xx: unconfirmed)
    short_pages: bool = True            # some pages shorter than max_count while has_more
    error_data: str = "empty"           # "empty" -> error envelope has "data": {} ; "absent" -> none
    portability_statuses: list[str] = field(
        default_factory=lambda: ["pending", "processing", "ready"]
    )
    client_key: str = "fake-client-key"
    client_secret: str = "fake-client-secret"
    granted_scopes: str = "user.info.basic,user.info.profile,user.info.stats,video.list"
    export_link_ttl: int = 3 * 86400    # lifetime of the signed media links inside exports


# --------------------------------------------------------------------------- fake media bytes


def fake_png(key: str) -> bytes:
    """A small valid 16x16 PNG whose pixels depend on ``key`` (so every object differs)."""
    rng = random.Random(f"png:{key}")
    width = height = 16
    base = [rng.randrange(256) for _ in range(3)]
    rows = b""
    for _ in range(height):
        row = bytearray([0])  # filter type "None"
        for _ in range(width):
            row += bytes((c + rng.randrange(40)) % 256 for c in base)
        rows += bytes(row)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def fake_mp4(key: str, size: int = 64 * 1024) -> bytes:
    """Bytes that start like an MP4 (ftyp box, then one mdat box) and depend on ``key``.

    Big enough (64 KiB) for Range/resume tests to split it.
    """
    ftyp = struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00" + b"isommp41"
    payload = random.Random(f"mp4:{key}").randbytes(size - len(ftyp) - 8)
    return ftyp + struct.pack(">I", len(payload) + 8) + b"mdat" + payload


def _export_date(epoch: int) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------- the fake


class FakeTikTok(FakeClock):
    """TikTok's official APIs as one in-memory world. Thread-safe (one lock)."""

    def __init__(self, config: FakeTikTokConfig | None = None,
                 base_url: str = "http://127.0.0.1:0"):
        self.config = config or FakeTikTokConfig()
        self.base_url = base_url.rstrip("/")
        self.clock_offset = 0.0           # see advance()
        self._lock = threading.RLock()
        self._rng = random.Random(f"world:{self.config.seed}")
        self._fault_rng = random.Random(f"faults:{self.config.seed}")
        self._cdn_secret = f"cdn-secret-{self.config.seed}".encode()

        # OAuth state. A "grant" is one user authorization; tokens point at their grant.
        self._grants: dict[str, dict] = {}
        self._codes: dict[str, dict] = {}
        self._access: dict[str, dict] = {}
        self._refresh: dict[str, dict] = {}
        self._rate_hits: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._data_requests: dict[int, dict] = {}
        # A hostile export download: None, or one of fakeserver.HOSTILE_BODIES.
        self.download_fault: str | None = None
        # (method, path, status) of recent requests, for tests; bounded for long demo runs.
        self.log: collections.deque = collections.deque(maxlen=10_000)

        # The world.
        self.user: dict = {}
        self.videos: list[dict] = []
        self.deleted_videos: list[dict] = []
        self.followers: list[dict] = []    # {"username", "followed_at"} (epoch seconds)
        self.following: list[dict] = []
        self.comments_written: list[dict] = []  # {"date", "comment", "video_id"}
        self._photo_images: dict[str, int] = {}  # video id -> image count, for photo posts
        self._new_fans = 0
        self._page_breaks: set[str] = set()     # video ids that end a short page (see _video_list)
        self._build_world()

    # ------------------------------------------------------------------ clock


    # ------------------------------------------------------------------ world building

    def _build_world(self) -> None:
        rng = self._rng
        name = f"{rng.choice(WORDS)}{rng.choice(WORDS)}{rng.randrange(100)}"
        self.user = {
            "open_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "union_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "display_name": name.title(),
            "username": name,
            "bio_description": f"{rng.choice(WORDS).title()}s, mostly.",
            "profile_deep_link": PROFILE_DEEP_LINK.format(n=rng.randrange(10**6)),
            "is_verified": False,
            "extra_likes": rng.randrange(1000, 100000),  # likes on videos the API can't see
        }
        # Videos go back in time from a fixed moment so the world is the same every run.
        moment = 1_700_000_000
        for _ in range(self.config.videos):
            self.videos.append(self._new_video(moment))
            moment -= rng.randrange(3600, 5 * 86400)
        self.videos.reverse()  # oldest first, like a creation log
        for i in range(self.config.followers):
            self.followers.append(self._new_person("fan", i, 1_690_000_000 + i * 3671))
        for i in range(self.config.following):
            self.following.append(self._new_person("idol", i, 1_680_000_000 + i * 5113))
        for i in range(min(10, max(1, self.config.videos))):
            self.comments_written.append({
                "date": 1_695_000_000 + i * 7777,
                "comment": f"great {rng.choice(WORDS)}!",
                "video_id": self._new_video_id(1_690_000_000 + i),
            })

    def _new_person(self, prefix: str, index: int, followed_at: int) -> dict:
        return {"username": f"{prefix}_{index:04d}_{self._rng.choice(WORDS)}",
                "followed_at": followed_at}

    def _new_video_id(self, create_time: int) -> str:
        # Like TikTok's: the creation time in the high bits -> 19 decimal digits.
        return str((create_time << 32) | self._rng.getrandbits(32))

    def _new_video(self, create_time: int, **overrides) -> dict:
        rng = self._rng
        video_id = self._new_video_id(create_time)
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
        title = "" if rng.random() < 0.1 else words.capitalize()
        username = self.user["username"]
        video: dict[str, Any] = {
            "id": video_id,
            "create_time": create_time,
            "title": title,
            "video_description": f"{title} #{rng.choice(WORDS)}".strip(),
            "duration": rng.randint(5, 180),
            "height": 1920,
            "width": 1080,
            "cover_image_url": "",  # signed afresh in every response (6 h TTL)
            "share_url": (f"https://www.tiktok.com/@{username}/video/{video_id}"
                          f"?utm_campaign=tt4d_open_api&utm_source={self.config.client_key}"),
            "embed_html": (f'<blockquote class="tiktok-embed" cite="https://www.tiktok.com/@'
                           f'{username}/video/{video_id}" data-video-id="{video_id}">'
                           f'<section></section></blockquote> <script async '
                           f'src="https://www.tiktok.com/embed.js"></script>'),
            "embed_link": (f"https://www.tiktok.com/player/v1/{video_id}"
                           f"?music_info=1&description=1"),
            "like_count": rng.randrange(0, 5000),
            "comment_count": rng.randrange(0, 200),
            "share_count": rng.randrange(0, 100),
            "view_count": rng.randrange(100, 500_000),
            "is_aigc": rng.random() < 0.1,
        }
        if rng.random() < 0.15:
            self._photo_images[video_id] = rng.randint(2, 4)
        if rng.random() < 0.2:
            self._page_breaks.add(video_id)
        video.update(overrides)
        video["cover_image_url"] = self._cover_url(video["id"])
        return video

    # ------------------------------------------------------------------ world changes

    def add_video(self, **overrides) -> dict:
        """Publish a new video now (newer than every other); ``overrides`` set any field."""
        with self._lock:
            newest = max((v["create_time"] for v in self.videos), default=0)
            create_time = overrides.pop("create_time", max(int(self.now()), newest + 1))
            if any(v["create_time"] == create_time for v in self.videos):
                raise ValueError("create_time must be unique (the ms cursor pages by it)")
            video = self._new_video(create_time, **overrides)
            self.videos.append(video)
            return video

    def _video(self, video_id: str) -> dict:
        for video in self.videos:
            if video["id"] == video_id:
                return video
        raise KeyError(video_id)

    def delete_video(self, video_id: str) -> None:
        with self._lock:
            video = self._video(video_id)
            self.videos.remove(video)
            self.deleted_videos.append(video)

    def edit_caption(self, video_id: str, title: str, description: str | None = None) -> None:
        """Change the title; the description too when given (otherwise it is kept)."""
        with self._lock:
            video = self._video(video_id)
            video["title"] = title
            if description is not None:
                video["video_description"] = description

    def set_counts(self, video_id: str, **counts: int) -> None:
        """e.g. ``set_counts(id, like_count=10, view_count=99)``."""
        with self._lock:
            unknown = set(counts) - set(VIDEO_COUNT_FIELDS)
            if unknown:
                raise KeyError(f"not a count field: {sorted(unknown)}")
            self._video(video_id).update(counts)

    def gain_followers(self, n: int) -> list[dict]:
        with self._lock:
            new = []
            for _ in range(n):
                self._new_fans += 1  # a counter keeps every new username unique
                new.append(self._new_person("newfan", self._new_fans, int(self.now())))
            self.followers.extend(new)
            return new

    def lose_followers(self, n: int) -> list[dict]:
        """The ``n`` oldest followers unfollow (deterministic)."""
        with self._lock:
            lost, self.followers = self.followers[:n], self.followers[n:]
            return lost

    # ------------------------------------------------------------------ token helpers

    def issue_tokens(self, scopes: str | None = None) -> dict:
        """Mint a valid access + refresh token pair directly; returns the token endpoint JSON."""
        with self._lock:
            granted = scopes if scopes is not None else self.config.granted_scopes
            grant_id = secrets.token_hex(8)
            self._grants[grant_id] = {"scopes": [s for s in granted.split(",") if s],
                                      "revoked": False, "portability_adds": 0}
            return self._token_response(grant_id, new_refresh=True)

    def revoke_all(self) -> None:
        """Every grant is revoked: all access and refresh tokens stop working."""
        with self._lock:
            for grant in self._grants.values():
                grant["revoked"] = True

    def expire_access_tokens(self) -> None:
        with self._lock:
            for token in self._access.values():
                token["expires_at"] = self.now() - 1

    def _token_response(self, grant_id: str, new_refresh: bool,
                        refresh_token: str | None = None) -> dict:
        now = self.now()
        access_token = f"act.{secrets.token_urlsafe(24)}!{secrets.randbelow(9000) + 1000}.va"
        self._access[access_token] = {"grant": grant_id, "expires_at": now + self.config.access_ttl}
        if new_refresh:
            refresh_token = f"rft.{secrets.token_urlsafe(24)}!{secrets.randbelow(9000) + 1000}.va"
            self._refresh[refresh_token] = {"grant": grant_id, "alive": True,
                                            "expires_at": now + self.config.refresh_ttl}
        assert refresh_token is not None
        return {
            "access_token": access_token,
            "expires_in": self.config.access_ttl,
            "open_id": self.user["open_id"],
            "refresh_expires_in": int(self._refresh[refresh_token]["expires_at"] - now),
            "refresh_token": refresh_token,
            "scope": ",".join(self._grants[grant_id]["scopes"]),
            "token_type": "Bearer",
        }

    # ------------------------------------------------------------------ CDN links

    def _sign(self, path: str, expires: int) -> str:
        digest = hmac.new(self._cdn_secret, f"{path}:{expires}".encode(), hashlib.sha256).digest()
        # Standard base64 on purpose: '/', '+' and '=' must survive URL encoding, as TikTok's do.
        return base64.b64encode(digest[:18]).decode()

    def _signed_url(self, path: str, ttl: int, extra: dict | None = None) -> str:
        expires = int(self.now()) + ttl
        query = dict(extra or {})
        query.update({"x-expires": expires, "x-signature": self._sign(path, expires)})
        return f"{self.base_url}{path}?{urlencode(query)}"

    def _object_key(self, kind: str, ident: str) -> str:
        # Opaque: a CDN path never reveals the video id (newer exports carry no id at all).
        return hmac.new(self._cdn_secret, f"{kind}:{ident}".encode(), hashlib.sha256).hexdigest()[:32]

    def _image_url(self, kind: str, ident: str, ttl: int) -> str:
        return self._signed_url(f"/cdn/img/{self._object_key(kind, ident)}~tplv-noop.image", ttl)

    def _cover_url(self, video_id: str, ttl: int = COVER_TTL) -> str:
        return self._image_url("cover", video_id, ttl)

    def _video_file_url(self, video_id: str, ttl: int) -> str:
        return self._signed_url(f"/cdn/video/{self._object_key('video', video_id)}.mp4", ttl,
                                {"mime_type": "video_mp4"})

    # ------------------------------------------------------------------ rendering

    def _render_video(self, video: dict, fields: list[str]) -> dict:
        video["cover_image_url"] = self._cover_url(video["id"])
        return {name: video[name] for name in fields}

    def _render_user(self, fields: list[str]) -> dict:
        avatar_ident = self.user["open_id"]
        full = {
            **{k: self.user[k] for k in ("open_id", "union_id", "display_name", "username",
                                         "bio_description", "profile_deep_link", "is_verified")},
            "avatar_url": self._image_url("avatar168", avatar_ident, AVATAR_TTL),
            "avatar_url_100": self._image_url("avatar100", avatar_ident, AVATAR_TTL),
            "avatar_large_url": self._image_url("avatar720", avatar_ident, AVATAR_TTL),
            "follower_count": len(self.followers),
            "following_count": len(self.following),
            "likes_count": sum(v["like_count"] for v in self.videos) + self.user["extra_likes"],
            "video_count": len(self.videos),
        }
        return {name: full[name] for name in fields}

    def _log_id(self) -> str:
        stamp = _dt.datetime.fromtimestamp(self.now(), _dt.timezone.utc).strftime("%Y%m%d%H%M%S")
        return stamp + secrets.token_hex(9).upper()

    # ------------------------------------------------------------------ responses

    def _json(self, status: int, body: dict, headers: dict | None = None) -> httpx.Response:
        return httpx.Response(status, headers={"Content-Type": "application/json", **(headers or {})},
                              content=json.dumps(body).encode())

    def _ok(self, data: dict) -> httpx.Response:
        return self._json(200, {"data": data,
                                "error": {"code": "ok", "message": "", "log_id": self._log_id()}})

    def _api_error(self, status: int, code: str, message: str,
                   headers: dict | None = None) -> httpx.Response:
        body: dict = {}
        if self.config.error_data == "empty":
            body["data"] = {}
        body["error"] = {"code": code, "message": message, "log_id": self._log_id()}
        return self._json(status, body, headers)

    def _oauth_error(self, error: str, description: str) -> httpx.Response:
        return self._json(self.config.oauth_error_status, {
            "error": error, "error_description": description, "log_id": self._log_id()})

    @staticmethod
    def _html(status: int, text: str) -> httpx.Response:
        return httpx.Response(status, headers={"Content-Type": "text/html; charset=utf-8"},
                              content=f"<html><body><h1>{status}</h1><p>{text}</p></body></html>".encode())

    # ------------------------------------------------------------------ dispatch

    # path -> (allowed method, handler name, kind). kind "data" gets token, rate limit, faults.
    ROUTES = {
        "/v2/auth/authorize/": ("GET", "_authorize", "page"),
        "/v2/oauth/token/": ("POST", "_token", "oauth"),
        "/v2/oauth/revoke/": ("POST", "_revoke", "oauth"),
        "/v2/user/info/": ("GET", "_user_info", "data"),
        "/v2/video/list/": ("POST", "_video_list", "data"),
        "/v2/video/query/": ("POST", "_video_query", "data"),
        "/v2/user/data/add/": ("POST", "_data_add", "data"),
        "/v2/user/data/check/": ("POST", "_data_check", "data"),
        "/v2/user/data/download/": ("POST", "_data_download", "data"),
        "/v2/user/data/cancel/": ("POST", "_data_cancel", "data"),
    }

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request; usable as ``httpx.MockTransport(fake.handle)``."""
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)  # outside the lock: requests overlap
        with self._lock:
            response = self._dispatch(request)
            self.log.append((request.method, request.url.path, response.status_code))
            return response

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/cdn/"):
            return self._cdn(request)
        route = self.ROUTES.get(path)
        if route is None:
            return self._api_error(404, "invalid_params", f"Unknown path {path}.")
        method, handler_name, kind = route
        handler = getattr(self, handler_name)
        if request.method != method:
            if kind == "oauth":
                return self._oauth_error("invalid_request", f"Use {method}.")
            if kind == "page":
                return self._html(405, f"Use {method}.")
            return self._api_error(405, "invalid_params", f"Method not allowed; use {method}.",
                                   {"Allow": method})
        if kind != "data":
            return handler(request)

        token = self._bearer_grant(request)
        if token is None:
            return self._api_error(401, "access_token_invalid",
                                   "The access token is invalid or not found in the request.")
        limited = self._rate_limited(path)
        if limited is not None:
            return limited
        if self.config.fail_rate and self._fault_rng.random() < self.config.fail_rate:
            return self._api_error(500, "internal_error", "Something went wrong. Please retry.")
        body = None
        if method == "POST":
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json":
                return self._api_error(400, "invalid_params",
                                       "Content-Type must be application/json.")
            raw = request.content
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                return self._api_error(400, "invalid_params", "The request body is not valid JSON.")
            if not isinstance(body, dict):
                return self._api_error(400, "invalid_params", "The request body must be an object.")
        return handler(request, token, body)

    def _bearer_grant(self, request: httpx.Request) -> dict | None:
        """The grant behind a valid Bearer token, or None (missing, unknown, expired, revoked)."""
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        token = self._access.get(header[len("Bearer "):].strip())
        if token is None or token["expires_at"] <= self.now():
            return None
        grant = self._grants[token["grant"]]
        return None if grant["revoked"] else grant

    def _rate_limited(self, path: str) -> httpx.Response | None:
        hits = self._rate_hits[path]
        now = self.now()
        while hits and hits[0] <= now - RATE_WINDOW:
            hits.popleft()
        if len(hits) >= self.config.rate_limit_per_minute:
            retry_after = self.config.retry_after  # TikTok documents no such header: off by default
            headers = {"Retry-After": retry_after} if retry_after is not None else None
            return self._api_error(429, "rate_limit_exceeded",
                                   "API rate limit exceeded. Please retry later.", headers)
        hits.append(now)
        return None

    def _fields(self, request: httpx.Request, allowed: tuple[str, ...]) -> list[str] | httpx.Response:
        raw = request.url.params.get("fields")
        if not raw:
            return self._api_error(400, "invalid_params", "The fields parameter is required.")
        names = [name.strip() for name in raw.split(",")]
        unknown = [name for name in names if name not in allowed]
        if unknown:
            return self._api_error(400, "invalid_params", f"Invalid fields: {','.join(unknown)}.")
        return list(dict.fromkeys(names))

    # ------------------------------------------------------------------ Login Kit

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        if q.get("client_key") != self.config.client_key:
            return self._html(400, "Unknown client_key.")
        if q.get("response_type") != "code":
            return self._html(400, "response_type must be code.")
        requested = [s for s in (q.get("scope") or "").split(",") if s]
        if not requested or any(s not in KNOWN_SCOPES for s in requested):
            return self._html(400, "scope must be a comma-separated list of known scopes.")
        redirect_uri = q.get("redirect_uri") or ""
        problem = self._redirect_uri_problem(redirect_uri)
        if problem:
            return self._html(400, f"redirect_uri: {problem}")
        if not q.get("state"):
            return self._html(400, "state is required.")
        if not q.get("code_challenge") or q.get("code_challenge_method") != "S256":
            return self._html(400, "PKCE is required: code_challenge and code_challenge_method=S256.")

        allowed = set(self.config.granted_scopes.split(","))
        granted = [s for s in requested if s in allowed]
        if not granted:  # the user declined everything
            query = {"error": "access_denied", "error_description": "The user denied the request.",
                     "state": q["state"]}
            return httpx.Response(302, headers={"Location": f"{redirect_uri}?{urlencode(query)}"})
        grant_id = secrets.token_hex(8)
        self._grants[grant_id] = {"scopes": granted, "revoked": False, "portability_adds": 0}
        # Real codes contain '*' and '!', so a client that forgets to URL-decode them fails.
        code = f"{secrets.token_urlsafe(30)}*3!{secrets.randbelow(9000) + 1000}.va"
        self._codes[code] = {"grant": grant_id, "redirect_uri": redirect_uri,
                             "challenge": q["code_challenge"], "used": False,
                             "expires_at": self.now() + AUTH_CODE_TTL}
        query = {"code": code, "scopes": ",".join(granted), "state": q["state"]}
        return httpx.Response(302, headers={"Location": f"{redirect_uri}?{urlencode(query)}"})

    @staticmethod
    def _redirect_uri_problem(uri: str) -> str | None:
        """Desktop rules [C]: http, host localhost/127.0.0.1, a port, no query or fragment."""
        parts = urlsplit(uri)
        if parts.scheme != "http":
            return "must use http"
        if parts.hostname not in ("127.0.0.1", "localhost"):
            return "host must be 127.0.0.1 or localhost"
        try:
            port = parts.port
        except ValueError:
            return "bad port"
        if port is None:
            return "must include a port"
        if parts.query or parts.fragment or uri.endswith(("?", "#")):
            return "no query or fragment allowed"
        return None

    def _form(self, request: httpx.Request) -> dict[str, str] | None:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return None
        pairs = parse_qs(request.content.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[0] for key, values in pairs.items()}

    def _client_problem(self, form: dict[str, str]) -> httpx.Response | None:
        if (form.get("client_key") != self.config.client_key
                or not hmac.compare_digest(form.get("client_secret", ""), self.config.client_secret)):
            return self._oauth_error("invalid_client", "Client key or secret is invalid.")
        return None

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = self._form(request)
        if form is None:
            return self._oauth_error("invalid_request",
                                     "Content-Type must be application/x-www-form-urlencoded.")
        problem = self._client_problem(form)
        if problem:
            return problem
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(form)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        return self._oauth_error("unsupported_grant_type", "Unsupported grant_type.")

    def _pkce_matches(self, verifier: str, challenge: str) -> bool:
        digest = hashlib.sha256(verifier.encode()).digest()
        accepted = []
        if self.config.pkce in ("hex", "either"):
            accepted.append(digest.hex())
        if self.config.pkce in ("base64url", "either"):
            accepted.append(base64.urlsafe_b64encode(digest).rstrip(b"=").decode())
        return challenge in accepted

    def _exchange_code(self, form: dict[str, str]) -> httpx.Response:
        code = self._codes.get(form.get("code", ""))
        if code is None or code["used"] or code["expires_at"] <= self.now():
            return self._oauth_error("invalid_grant", "Authorization code is expired.")
        if form.get("redirect_uri") != code["redirect_uri"]:
            return self._oauth_error("invalid_grant", "Redirect URI does not match.")
        verifier = form.get("code_verifier", "")
        if (not re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", verifier)
                or not self._pkce_matches(verifier, code["challenge"])):
            return self._oauth_error("invalid_request", "Code verifier or code challenge is invalid.")
        if self._grants[code["grant"]]["revoked"]:
            return self._oauth_error("invalid_grant", "Authorization code is revoked.")
        code["used"] = True
        return self._json(200, self._token_response(code["grant"], new_refresh=True))

    def _refresh_grant(self, form: dict[str, str]) -> httpx.Response:
        old = form.get("refresh_token", "")
        record = self._refresh.get(old)
        if (record is None or not record["alive"] or record["expires_at"] <= self.now()
                or self._grants[record["grant"]]["revoked"]):
            return self._oauth_error("invalid_grant", "Refresh token is invalid or expired.")
        if self.config.rotate_refresh:
            record["alive"] = False  # the previous refresh token dies once a new one exists
            body = self._token_response(record["grant"], new_refresh=True)
        else:
            body = self._token_response(record["grant"], new_refresh=False, refresh_token=old)
        return self._json(200, body)

    def _revoke(self, request: httpx.Request) -> httpx.Response:
        form = self._form(request)
        if form is None:
            return self._oauth_error("invalid_request",
                                     "Content-Type must be application/x-www-form-urlencoded.")
        problem = self._client_problem(form)
        if problem:
            return problem
        token = self._access.get(form.get("token", ""))
        if token is None:
            return self._oauth_error("invalid_request", "Token is invalid.")
        # Revoking removes the app from the user's connected apps: the whole grant ends.
        self._grants[token["grant"]]["revoked"] = True
        return self._json(200, {})

    # ------------------------------------------------------------------ Display API

    def _user_info(self, request: httpx.Request, grant: dict, body: None) -> httpx.Response:
        fields = self._fields(request, USER_FIELDS)
        if isinstance(fields, httpx.Response):
            return fields
        missing = sorted({SCOPE_OF_USER_FIELD[f] for f in fields} - set(grant["scopes"]))
        if missing:
            return self._api_error(401, "scope_permission_missed",
                                   f"The fields need scopes the user did not grant: {','.join(missing)}.")
        return self._ok({"user": self._render_user(fields)})

    def _video_fields(self, request: httpx.Request, grant: dict) -> list[str] | httpx.Response:
        if "video.list" not in grant["scopes"]:
            return self._api_error(401, "scope_not_authorized",
                                   "The user did not authorize the scope required: video.list.")
        return self._fields(request, VIDEO_FIELDS)

    @staticmethod
    def _is_int(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def _video_list(self, request: httpx.Request, grant: dict, body: dict) -> httpx.Response:
        fields = self._video_fields(request, grant)
        if isinstance(fields, httpx.Response):
            return fields
        cursor = body.get("cursor")
        max_count = body.get("max_count", 10)
        if cursor is not None and (not self._is_int(cursor) or cursor < 0):
            return self._api_error(400, "invalid_params", "cursor must be an int64 timestamp in ms.")
        if not self._is_int(max_count) or not 1 <= max_count <= 20:
            return self._api_error(400, "invalid_params", "max_count must be an integer in 1..20.")

        newest_first = sorted(self.videos, key=lambda v: v["create_time"], reverse=True)
        if cursor:  # 0 or absent: start from the newest
            newest_first = [v for v in newest_first if v["create_time"] * 1000 < cursor]
        page = newest_first[:max_count]
        if self.config.short_pages:
            # Trust-and-safety filtering makes some pages short [C]. Here a page ends early
            # at a "page break" video (about one in five, chosen from the seed).
            for position, video in enumerate(page[:-1]):
                if video["id"] in self._page_breaks:
                    page = page[:position + 1]
                    break
        return self._ok({
            "videos": [self._render_video(v, fields) for v in page],
            "cursor": page[-1]["create_time"] * 1000 if page else (cursor or 0),
            "has_more": len(newest_first) > len(page),
        })

    def _video_query(self, request: httpx.Request, grant: dict, body: dict) -> httpx.Response:
        fields = self._video_fields(request, grant)
        if isinstance(fields, httpx.Response):
            return fields
        filters = body.get("filters")
        ids = filters.get("video_ids") if isinstance(filters, dict) else None
        if (not isinstance(ids, list) or not ids or len(ids) > 20
                or not all(isinstance(i, str) for i in ids)):
            return self._api_error(400, "invalid_params",
                                   "filters.video_ids must be a list of 1..20 id strings.")
        by_id = {v["id"]: v for v in self.videos}
        found = [by_id[i] for i in dict.fromkeys(ids) if i in by_id]  # unknown/deleted: omitted
        return self._ok({"videos": [self._render_video(v, fields) for v in found]})

    # ------------------------------------------------------------------ Data Portability

    def _portability_scopes(self, grant: dict) -> list[str]:
        return [s for s in grant["scopes"] if s.startswith("portability.")]

    def _request_id_from(self, body: dict) -> int | httpx.Response:
        value = body.get("request_id")
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if not self._is_int(value) or value not in self._data_requests:
            return self._api_error(400, "invalid_params", "request_id is missing or unknown.")
        return value

    def _data_add(self, request: httpx.Request, grant: dict, body: dict) -> httpx.Response:
        scopes = self._portability_scopes(grant)
        if not scopes:
            return self._api_error(401, "scope_not_authorized",
                                   "The user did not authorize a portability scope.")
        fields = self._fields(request, ("request_id",))
        if isinstance(fields, httpx.Response):
            return fields
        data_format = body.get("data_format", "json")
        categories = body.get("category_selection_list")
        if data_format not in ("json", "text"):
            return self._api_error(400, "invalid_params", "data_format must be json or text.")
        if (not isinstance(categories, list) or not categories
                or any(c not in PORTABILITY_CATEGORY_TYPES for c in categories)):
            return self._api_error(400, "invalid_params", "category_selection_list is invalid.")
        covering: list[str] = []
        for category in categories:
            these = [s for s in scopes if s.split(".")[1] in PORTABILITY_CATEGORY_TYPES[category]]
            if not these:
                return self._api_error(401, "scope_not_authorized",
                                       f"No portability scope covers the category {category}.")
            covering += these
        if not any(s.endswith(".ongoing") for s in covering) and grant["portability_adds"] >= 1:
            return self._api_error(400, "invalid_params",
                                   "With a single-use scope, Add Data Request can only be called once.")
        grant["portability_adds"] += 1
        # Snowflake-like int64 far above 2**53: a client that goes through float breaks it.
        request_id = (int(self.now() * 1000) << 22) | secrets.randbits(22)
        self._data_requests[request_id] = {
            "request_id": request_id, "checks": 0, "final": None,
            "apply_time": int(self.now()), "collect_time": 0,
            "data_format": data_format, "category_selection_list": categories,
        }
        return self._ok({"request_id": request_id})

    def _data_status(self, record: dict) -> str:
        if record["final"]:
            return record["final"]
        statuses = self.config.portability_statuses
        step = min(record["checks"], len(statuses)) - 1   # check number n shows status n
        return statuses[max(step, 0)]

    def _data_check(self, request: httpx.Request, grant: dict, body: dict) -> httpx.Response:
        fields = self._fields(request, CHECK_FIELDS)
        if isinstance(fields, httpx.Response):
            return fields
        request_id = self._request_id_from(body)
        if isinstance(request_id, httpx.Response):
            return request_id
        record = self._data_requests[request_id]
        if not record["final"]:
            record["checks"] += 1   # each check moves one step towards "ready"
        status = self._data_status(record)
        if status == self.config.portability_statuses[-1] and not record["collect_time"]:
            record["collect_time"] = int(self.now())
        full = {**{k: record[k] for k in CHECK_FIELDS if k != "status"}, "status": status}
        return self._ok({name: full[name] for name in fields})

    def _data_download(self, request: httpx.Request, grant: dict, body: dict) -> httpx.Response:
        request_id = self._request_id_from(body)
        if isinstance(request_id, httpx.Response):
            return request_id
        record = self._data_requests[request_id]
        if record["final"] or record["checks"] < len(self.config.portability_statuses):
            return self._api_error(400, "invalid_params", "The data is not ready for download.")
        if self.download_fault is not None:
            from archiver.sim.server import hostile_download

            return hostile_download(self.download_fault, b"PK\x03\x04", "application/zip")
        return self._ranged(request, self.export_zip("new"), "application/zip")

    def _data_cancel(self, request: httpx.Request, grant: dict, body: dict) -> httpx.Response:
        request_id = self._request_id_from(body)
        if isinstance(request_id, httpx.Response):
            return request_id
        self._data_requests[request_id]["final"] = "cancelled"
        return self._json(200, {"error": {"code": "ok", "message": "", "log_id": self._log_id()}})

    def expire_data_requests(self) -> None:
        """Every Data Portability request expires (check says "expired"; download refuses)."""
        with self._lock:
            for record in self._data_requests.values():
                record["final"] = record["final"] or "expired"

    # ------------------------------------------------------------------ CDN

    def _cdn(self, request: httpx.Request) -> httpx.Response:
        if request.method not in ("GET", "HEAD"):
            return httpx.Response(405, headers={"Allow": "GET, HEAD"})
        path = request.url.path
        image = re.fullmatch(r"/cdn/img/([0-9a-f]{32})~tplv-noop\.image", path)
        video = re.fullmatch(r"/cdn/video/([0-9a-f]{32})\.mp4", path)
        if not (image or video):
            return httpx.Response(404, content=b"Not Found")
        expires = request.url.params.get("x-expires", "")
        signature = request.url.params.get("x-signature", "")
        if not expires.isdigit() or not hmac.compare_digest(signature, self._sign(path, int(expires))):
            return httpx.Response(403, content=b"Access Denied: bad signature")
        if int(expires) < self.now():
            return httpx.Response(403, content=b"Access Denied: link expired")
        if image:
            return self._ranged(request, fake_png(image.group(1)), "image/png")
        assert video is not None   # one of the two matched (checked above)
        return self._ranged(request, fake_mp4(video.group(1)), "video/mp4")

    def _ranged(self, request: httpx.Request, body: bytes, content_type: str) -> httpx.Response:
        """200 with the whole body, or 206/416 for a single ``Range: bytes=...`` request."""
        size = len(body)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        headers = {"Content-Type": content_type, "Accept-Ranges": "bytes", "ETag": etag}
        status, start, end = 200, 0, size - 1
        wanted = request.headers.get("range")
        if_range = request.headers.get("if-range")
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", (wanted or "").strip())
        if match and (match[1] or match[2]) and (if_range is None or if_range == etag):
            if match[1]:
                start = int(match[1])
                end = min(int(match[2]), size - 1) if match[2] else size - 1
            else:  # suffix range: the last N bytes
                start, end = max(0, size - int(match[2])), size - 1
                if int(match[2]) == 0:
                    start = size
            if start >= size or start > end:
                return httpx.Response(416, headers={"Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        part = body[start:end + 1]
        if request.method == "HEAD":
            return httpx.Response(status, headers={**headers, "Content-Length": str(len(part))})
        return httpx.Response(status, headers=headers, content=part)

    # ------------------------------------------------------------------ "Download your data"

    def export_json(self, layout: str = "new") -> dict:
        """The export's user_data JSON, in the "old" or the "new" key layout (notes §5)."""
        with self._lock:
            if layout == "old":
                return self._export_old()
            if layout == "new":
                return self._export_new()
            raise ValueError("layout must be 'old' or 'new'")

    def export_zip(self, layout: str = "new", name: str = "user_data_tiktok.json") -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name, json.dumps(self.export_json(layout), ensure_ascii=False, indent=1))
        return buffer.getvalue()

    def _liked_links(self) -> list[tuple[int, str]]:
        rng = random.Random(f"likes:{self.config.seed}")
        return [(1_696_000_000 + i * 4001,
                 f"https://www.tiktokv.com/share/video/{(1_690_000_000 + i) << 32 | rng.getrandbits(32)}/")
                for i in range(5)]

    def _chats(self, lowercase_names: bool = False) -> dict:
        friend = self.following[0]["username"] if self.following else "friend"
        return {f"Chat History with {friend}:": [
            {"Date": _export_date(1_697_000_000), "From": friend, "Content": "hi!"},
            {"Date": _export_date(1_697_000_060), "From": self.user["username"], "Content": "hello"},
        ]}

    def _people(self, people: list[dict]) -> list[dict]:
        return [{"Date": _export_date(p["followed_at"]), "UserName": p["username"]} for p in people]

    def _newest_first(self) -> list[dict]:
        return sorted(self.videos, key=lambda v: v["create_time"], reverse=True)

    def _likes_received(self) -> str:
        return str(sum(v["like_count"] for v in self.videos) + self.user["extra_likes"])

    def _export_old(self) -> dict:
        likes = self._liked_links()
        return {
            "Activity": {
                "Follower List": {"FansList": self._people(self.followers)},
                "Following List": {"Following": self._people(self.following)},
                "Like List": {"ItemFavoriteList": [{"Date": _export_date(t), "Link": link}
                                                   for t, link in likes]},
                "Video Browsing History": {"VideoList": [{"Date": _export_date(t + 30), "Link": link}
                                                         for t, link in likes]},
            },
            "Video": {"Videos": {"VideoList": [
                {"Date": _export_date(v["create_time"]),
                 "Link": f"https://www.tiktokv.com/share/video/{v['id']}/",
                 "Likes": str(v["like_count"])}
                for v in self._newest_first()]}},
            "Comment": {"Comments": {"CommentsList": [
                {"Date": _export_date(c["date"]), "Comment": c["comment"]}
                for c in self.comments_written]}},
            "Profile": {"Profile Information": {"ProfileMap": {
                "userName": self.user["username"], "bioDescription": self.user["bio_description"],
                "birthDate": "01-Jan-1990", "emailAddress": "", "telephoneNumber": "",
                "likesReceived": self._likes_received(),
                "profilePhoto": f"https://www.tiktok.com/@{self.user['username']}/avatar",
                "profileVideo": ""}}},
            "Direct Messages": {"Chat History": {"ChatHistory": self._chats()}},
            "App Settings": {"Block List": {"BlockList": []}},
            "Ads and data": {},
            "Tiktok Live": {},
            "Tiktok Shopping": {},
        }

    def _export_post(self, video: dict, ttl: int) -> dict:
        images = self._photo_images.get(video["id"])
        if images:  # photo mode: several image links in one string, newline-separated
            link = "\n".join(self._image_url("photo", f"{video['id']}:{n}", ttl)
                             for n in range(images))
        else:
            link = self._video_file_url(video["id"], ttl)
        yes_no = lambda flag: "Yes" if flag else "No"  # noqa: E731
        return {
            "Date": _export_date(video["create_time"]),
            "Link": link,
            "Likes": str(video["like_count"]),
            "Title": video["title"] or "N/A",
            "Sound": f"original sound - {self.user['username']}",
            "Location": "N/A",
            "WhoCanView": "Everyone",
            "AllowComments": "Yes",
            "AllowStitches": "Yes",
            "AllowDuets": "Yes",
            "AllowStickers": "Yes",
            "AllowSharingToStory": "Yes",
            "ContentDisclosure": "N/A",
            "AIGeneratedContent": yes_no(video["is_aigc"]),
            "AddYoursText": "N/A",
            "CoverImage": self._cover_url(video["id"], ttl),
            "AlternateText": "N/A",
        }

    def _export_new(self) -> dict:
        ttl = self.config.export_link_ttl
        likes = self._liked_links()
        deleted = [self._export_post(v, ttl) for v in self.deleted_videos]
        return {
            "Your Activity": {
                "Follower": {"FansList": self._people(self.followers)},
                "Following": {"Following": self._people(self.following)},
                "Like List": {"ItemFavoriteList": [{"date": _export_date(t), "link": link}
                                                   for t, link in likes]},
                "Watch History": {"VideoList": [{"Date": _export_date(t + 30), "Link": link}
                                                for t, link in likes]},
                "Searches": None,
                "Share History": None,
            },
            "Post": {
                "Posts": {"VideoList": [self._export_post(v, ttl) for v in self._newest_first()]},
                "Recently Deleted Posts": {"PostList": deleted} if deleted else None,
            },
            "Comment": {"Comments": {"CommentsList": [
                {"date": _export_date(c["date"]), "comment": c["comment"], "photo": "N/A",
                 "url": f"https://www.tiktokv.com/share/video/{c['video_id']}/"}
                for c in self.comments_written]}},
            "Profile": {"Profile Info": {"ProfileMap": {
                "userName": self.user["username"], "bioDescription": self.user["bio_description"],
                "birthDate": "01-Jan-1990", "emailAddress": "N/A", "telephoneNumber": "N/A",
                "likesReceived": self._likes_received(),
                "profilePhoto": self._image_url("avatar720", self.user["open_id"], ttl),
                "profileVideo": "N/A"}}},
            "Direct Message": {"Direct Messages": {"ChatHistory": self._chats()}},
            "App Settings": {"Block List": {"BlockList": None}},
            "Ads and data": None,
            "Tiktok Live": None,
            "TikTok Shop": None,
            "Location Review": None,
            "Income Plus Wallet Transactions": None,
        }


# --------------------------------------------------------------------------- real HTTP


def serve(fake: FakeTikTok, host: str = "127.0.0.1", port: int = 0):
    """Serve ``fake`` over real HTTP in a daemon thread; returns ``(server, thread)``."""
    from archiver.sim.server import serve_fake

    return serve_fake(fake, host, port, name="fake-tiktok",
                      crash_response=lambda error: httpx.Response(500, json={"data": {}, "error": {
                          "code": "internal_error", "message": f"fake crashed: {type(error).__name__}", "log_id": ""}}))


def main(argv: list[str] | None = None) -> None:
    """``python -m archiver_connectors.tiktok.sim.fake --port N ...``: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="archiver simulate tiktok",
                                     description="Serve a fake of TikTok's official APIs.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--videos", type=int, default=30)
    parser.add_argument("--followers", type=int, default=50)
    parser.add_argument("--following", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=600, help="requests per minute per endpoint")
    parser.add_argument("--retry-after", default=None, help="Retry-After value on 429 responses")
    parser.add_argument("--pkce", choices=("hex", "base64url", "either"), default="hex")
    parser.add_argument("--access-ttl", type=int, default=7200)
    parser.add_argument("--client-key", default=FakeTikTokConfig.client_key,
                        help="the app's client key the fake accepts")
    parser.add_argument("--client-secret", default=FakeTikTokConfig.client_secret,
                        help="the app's client secret the fake accepts")
    args = parser.parse_args(argv)
    config = FakeTikTokConfig(
        videos=args.videos, followers=args.followers, following=args.following, seed=args.seed,
        latency_ms=args.latency_ms, fail_rate=args.fail_rate,
        rate_limit_per_minute=args.rate_limit, retry_after=args.retry_after, pkce=args.pkce,
        access_ttl=args.access_ttl, client_key=args.client_key, client_secret=args.client_secret,
    )
    fake = FakeTikTok(config)
    server, _thread = serve(fake, args.host, args.port)
    from archiver.sim.server import serve_until_signalled

    serve_until_signalled(server, fake)


if __name__ == "__main__":
    main()
