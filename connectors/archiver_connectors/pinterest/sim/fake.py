"""A stateful fake of Pinterest API v5, its OAuth and its image CDN, faithful to
shared/platforms/pinterest.md (§7 lists what it must do and refuse).

One ``FakePinterest`` plays every Pinterest host at one base URL:

- the consent page (www.pinterest.com):  GET  /oauth/            (approves at once: 302 to the redirect_uri)
- api.pinterest.com:                     POST /v5/oauth/token    (HTTP Basic client auth, form body)
                                         GET  /v5/user_account, /v5/user_account/followers,
                                              /v5/user_account/following, /v5/boards, /v5/boards/{id},
                                              /v5/boards/{id}/sections, /v5/boards/{id}/pins,
                                              /v5/boards/{id}/sections/{id}/pins, /v5/pins, /v5/pins/{id}
- the CDN (i.pinimg.com, v1.pinimg.com): GET  /<size>/<hh>/<hh>/<hh>/<signature>.jpg  (150x150, 400x300,
                                              600x, 1200x, originals), /75x75_RS/… (profile pictures),
                                              /videos/mc/720p/<hh>/<hh>/<hh>/<signature>.mp4

Use it in-process with ``httpx.MockTransport(fake.handle)``, over loopback with
``serve(fake)``, or as a process (``archiver simulate pinterest --port N``).

What it refuses, as Pinterest does (notes §7): a token request without HTTP Basic client
auth or not form-encoded (401/400 ``{"code", "message"}``), a code used twice, expired
(10 minutes) or exchanged with another redirect_uri; an access token past its expiry (by
the fake's clock: ``advance``) or unknown (401); a call whose token lacks the endpoint's
scopes (403), secret boards and their Pins hidden without ``boards:read_secret`` /
``pins:read_secret``; ``page_size`` outside 1..250 and a bookmark it did not hand out
(400); past ``daily_requests`` API calls in a UTC day in Trial access, 429 with the
generic error body; any ``/v5/pins/{id}/comments`` (404: there is no such endpoint).

Choices where the notes say [U], each a knob of ``FakePinterestConfig``:
- ``old_refresh_after_rotation``: a rotated refresh token is "rejected" at once, or stays
  valid "until_new_used" (until the new access or refresh token is first used).
- ``require_continuous_refresh``: an older app's refresh must send ``continuous_refresh=true``
  (400 without); a newer app's accepts both. ``continuous_refresh_seen`` counts them.
- ``originals``: whether the CDN serves ``originals/`` (else 403, as a missing S3 key).
- ``pins_order``: /pins "newest" first or "oldest" first.
- ``naive_times``: ``created_at`` without an offset (``2024-05-01T18:22:31``) or with "Z".
- ``ratelimit_headers``: x-ratelimit-limit / -remaining / -reset on answers.
- ``access``: "trial" (a daily counter, 429 for the rest of the UTC day) or "standard"
  (``rate_limit`` requests a minute per rate category — ``ads_read`` for the followers list,
  ``org_read`` for the rest — then 429 with Retry-After until the next minute).
- ``bookmark_ttl``: seconds a bookmark is accepted (None: always).

``advance(seconds)`` moves the fake's clock (codes, tokens, the Trial day, bookmarks).
Tests change the world between runs with ``add_pin``, ``edit_pin``, ``delete_pin``,
``move_pin``, ``add_board``, ``add_section``, ``follow`` / ``unfollow``.
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
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from archiver.sim.server import LoggedFake
from archiver_connectors.tiktok.sim.fake import fake_mp4, fake_png

SCOPES = ("user_accounts:read", "boards:read", "boards:read_secret", "pins:read", "pins:read_secret")
ALL_SCOPES = ",".join(SCOPES)
IMAGE_SIZES = (("150x150", 150, 150), ("400x300", 400, 300), ("600x", 600, 800), ("1200x", 1200, 1600))
CODE_TTL = 600                      # an authorization code lives ~10 minutes (notes §1.1)
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 25, 250
WORLD_EPOCH = 1_714_000_000         # the newest Pin's time (spring 2024)
WORDS = ("lemon", "tart", "garden", "linen", "oak", "terrace", "ceramic", "harbour", "sourdough", "fern",
         "attic", "copper", "meadow", "window", "quilt", "pottery", "cabin", "citrus", "mosaic", "dune")
# The endpoints and the scopes each needs (notes §2), matched on the path under /v5.
ENDPOINTS: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    (re.compile(r"/user_account"), "account", ("user_accounts:read",)),
    (re.compile(r"/user_account/followers"), "followers", ("user_accounts:read",)),
    (re.compile(r"/user_account/following"), "following", ("user_accounts:read",)),
    (re.compile(r"/boards"), "boards", ("boards:read",)),
    (re.compile(r"/boards/(?P<board>[0-9]+)"), "board", ("boards:read",)),
    (re.compile(r"/boards/(?P<board>[0-9]+)/sections"), "sections", ("boards:read",)),
    (re.compile(r"/boards/(?P<board>[0-9]+)/pins"), "board_pins", ("boards:read", "pins:read")),
    (re.compile(r"/boards/(?P<board>[0-9]+)/sections/(?P<section>[0-9]+)/pins"), "section_pins",
     ("boards:read", "pins:read")),
    (re.compile(r"/pins"), "pins", ("boards:read", "pins:read")),
    (re.compile(r"/pins/(?P<pin>[0-9]+)"), "pin", ("boards:read", "pins:read")),
)
PRIVACY_CYCLE = ("PUBLIC", "SECRET", "PROTECTED", "PUBLIC")


@dataclass
class FakePinterestConfig:
    posts: int = 12                     # the owner's Pins
    boards: int = 3
    sections_per_board: int = 2         # on every PUBLIC board
    followers: int = 20
    following: int = 5
    seed: int = 1
    latency_ms: int = 0
    fail_rate: float = 0.0              # chance of a 503 per API call
    access: str = "trial"               # "trial" | "standard"
    daily_limit: int = 1000             # Trial: API calls a UTC day, then 429
    max_page_size: int = PAGE_SIZE_MAX  # the largest page_size honoured (a smaller one: more pages)
    secret_boards: bool = True          # a SECRET board among the generated ones
    rate_limit: int = 1000              # Standard: API calls a minute, then 429 with Retry-After
    access_ttl: int = 30 * 86400        # [U] ~30 days
    refresh_ttl: int = 60 * 86400       # continuous refresh: 60 days, renewed on every refresh
    old_refresh_after_rotation: str = "rejected"   # [U] or "until_new_used"
    require_continuous_refresh: bool = False       # [U] an older app must send continuous_refresh=true
    originals: bool = True              # [U] the CDN serves originals/
    pins_order: str = "newest"          # [U] or "oldest"
    naive_times: bool = True            # [U] created_at without an offset
    ratelimit_headers: bool = False     # [U]
    bookmark_ttl: float | None = None   # [U] seconds a bookmark is accepted
    granted_scopes: str = ALL_SCOPES    # what the person grants in the consent page
    client_id: str = "1500001"
    client_secret: str = "fake-client-secret"
    username: str = "roofcam"


def signature_of(key: str) -> str:
    """A 32-hex image signature (the file name on pinimg) made from ``key``."""
    return hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()


def pinimg_path(size: str, signature: str, extension: str = "jpg") -> str:
    """``/<size>/<hh>/<hh>/<hh>/<signature>.jpg``: the first six hex digits as folders (notes §2.1)."""
    return f"/{size}/{signature[0:2]}/{signature[2:4]}/{signature[4:6]}/{signature}.{extension}"


@dataclass
class FakePin:
    id: str
    created_at: float
    board_id: str
    board_section_id: str | None
    title: str | None
    description: str | None
    link: str | None
    alt_text: str | None
    media_type: str                     # image | video | multiple_images
    signatures: list[str]               # one per image (a carousel's items; a video's cover)
    video_url_missing: bool = False     # a video whose video_url is null (still processing)
    dominant_color: str = "#e8c27a"
    metrics: dict[str, int] = field(default_factory=dict)


class FakePinterest(LoggedFake):
    """The fake API; ``handle(request)`` answers one request (see the module docstring)."""

    def __init__(self, config: FakePinterestConfig | None = None, *, base_url: str = "http://127.0.0.1:8799"):
        self.config = config or FakePinterestConfig()
        self.base_url = base_url
        self.clock_offset = 0.0
        self._lock = threading.RLock()
        self._rng = random.Random(self.config.seed)
        self._faults = random.Random(self.config.seed + 1)
        self._ids = random.Random(self.config.seed + 2)
        self.log: list[tuple[str, str, int, dict[str, str]]] = []
        self.calls_by_day: collections.Counter[str] = collections.Counter()   # API calls a UTC day
        # Standard access: calls a minute per rate category (notes §4: followers are ads_read).
        self.calls_by_minute: collections.Counter[tuple[str, int]] = collections.Counter()
        self.continuous_refresh_seen = 0
        self.token_requests: list[dict[str, str]] = []
        self._codes: dict[str, dict[str, Any]] = {}
        self._access: dict[str, dict[str, Any]] = {}
        self._refresh: dict[str, dict[str, Any]] = {}
        self._bookmark_key = secrets.token_bytes(16)
        self._build_world()

    # ------------------------------------------------------------------ the world

    def _new_id(self, digits: int = 18) -> str:
        return str(self._ids.randrange(10 ** (digits - 1), 10 ** digits))

    def _build_world(self) -> None:
        config, rng = self.config, self._rng
        self.user = {"id": self._new_id(18), "username": config.username, "account_type": "PINNER",
                     "business_name": None, "about": "Bakes, gardens and small rooms.",
                     "website_url": "https://example.org/roofcam"}
        self.avatar_signature = signature_of("avatar:1")
        self.boards: dict[str, dict[str, Any]] = {}
        self.sections: dict[str, dict[str, str]] = {}          # section id -> {"id", "name", "board_id"}
        for number in range(config.boards):
            privacy = PRIVACY_CYCLE[number % len(PRIVACY_CYCLE)]
            if privacy == "SECRET" and not config.secret_boards:
                privacy = "PUBLIC"
            self.add_board(f"{rng.choice(WORDS).title()} {number + 1}", privacy,
                           created_at=WORLD_EPOCH - 400 * 86400 + number * 86400)
        self.pins: dict[str, FakePin] = {}
        for number in range(config.posts):
            self.add_pin(created_at=WORLD_EPOCH - (config.posts - number) * 3 * 3600, number=number)
        self.followers = [f"follower_{n:03d}" for n in range(1, config.followers + 1)]
        self.following = [f"maker_{n:02d}" for n in range(1, config.following + 1)]

    def add_board(self, name: str, privacy: str = "PUBLIC", *, created_at: float | None = None) -> dict:
        with self._lock:
            board: dict[str, Any] = {"id": self._new_id(15), "name": name, "description": f"Things about {name.lower()}",
                     "privacy": privacy, "created_at": created_at or self.now(), "follower_count": 3,
                     "collaborator_count": 0, "is_ads_only": False}
            board_id = str(board["id"])
            self.boards[board_id] = board
            if privacy == "PUBLIC":
                for part in range(self.config.sections_per_board):
                    self.add_section(board_id, f"Part {part + 1}")
            return board

    def add_section(self, board_id: str, name: str) -> dict:
        with self._lock:
            section = {"id": self._new_id(18), "name": name, "board_id": board_id}
            self.sections[section["id"]] = section
            return section

    def add_pin(self, *, created_at: float | None = None, number: int | None = None, board_id: str | None = None,
                media_type: str | None = None, title: str | None = None) -> str:
        """A new Pin (at the top of /pins: the newest). ``number`` picks the generated
        variety: every 5th a video (every 10th of those without video_url), every 7th a
        carousel of three images, the others one image."""
        with self._lock:
            rng = self._rng
            number = len(self.pins) if number is None else number
            boards = list(self.boards)
            board_id = board_id or boards[number % len(boards)]
            sections = [s for s in self.sections.values() if s["board_id"] == board_id]
            section = sections[number % len(sections)]["id"] if sections and number % 3 == 0 else None
            kind = media_type or ("video" if number % 5 == 4 else "multiple_images" if number % 7 == 6 else "image")
            pin_id = self._new_id(18)
            count = 3 if kind == "multiple_images" else 1
            words = " ".join(rng.choice(WORDS) for _ in range(2))
            pin = FakePin(
                id=pin_id, created_at=created_at if created_at is not None else self.now(), board_id=board_id,
                board_section_id=section, title=title if title is not None else words.title(),
                description=f"{words} — saved for later #{number}" if number % 4 else None,
                link=f"https://example.org/{words.replace(' ', '-')}" if number % 2 == 0 else None,
                alt_text=f"A photo of {words}" if number % 3 == 1 else None, media_type=kind,
                signatures=[signature_of(f"pin:{pin_id}:{i}") for i in range(count)],
                video_url_missing=kind == "video" and number % 10 == 9,
                metrics={"pin_click": rng.randrange(50), "impression": rng.randrange(1000),
                         "clickthrough": rng.randrange(20), "reaction": rng.randrange(30),
                         "comment": rng.randrange(5), "save": rng.randrange(40)})
            self.pins[pin_id] = pin
            return pin_id

    def edit_pin(self, pin_id: str, **changes) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(self.pins[pin_id], key, value)

    def delete_pin(self, pin_id: str) -> None:
        with self._lock:
            del self.pins[pin_id]

    def move_pin(self, pin_id: str, board_id: str, section_id: str | None = None) -> None:
        self.edit_pin(pin_id, board_id=board_id, board_section_id=section_id)

    def set_counts(self, pin_id: str, **metrics: int) -> None:
        """Change a Pin's metrics (pin_click, impression, clickthrough, reaction, comment)."""
        with self._lock:
            self.pins[pin_id].metrics.update(metrics)

    def add_follower(self, username: str | None = None) -> str:
        with self._lock:
            username = username or f"follower_{len(self.followers) + 1:03d}_{self._new_id(4)}"
            self.followers.insert(0, username)   # the newest first [U]
            return username

    def remove_follower(self, username: str) -> None:
        with self._lock:
            self.followers.remove(username)

    def follow(self, username: str) -> None:
        with self._lock:
            self.following.insert(0, username)

    def unfollow(self, username: str) -> None:
        with self._lock:
            self.following.remove(username)

    def file_bytes(self, path: str) -> bytes:
        """What the CDN serves for a pinimg path (the same bytes every time)."""
        return fake_mp4(path) if path.endswith(".mp4") else fake_png(path)

    def image_url(self, size: str, signature: str) -> str:
        return self.base_url + pinimg_path(size, signature)

    # ------------------------------------------------------------------ JSON shapes

    def _time(self, epoch: float) -> str:
        moment = _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        return moment if self.config.naive_times else moment + "Z"

    def _images(self, signature: str) -> dict:
        return {size: {"width": w, "height": h, "url": self.image_url(size, signature)} for size, w, h in IMAGE_SIZES}

    def pin_json(self, pin: FakePin, *, metrics: bool) -> dict:
        media: dict[str, Any]
        if pin.media_type == "image":
            media = {"media_type": "image", "images": self._images(pin.signatures[0])}
        elif pin.media_type == "video":
            signature = pin.signatures[0]
            video = None if pin.video_url_missing else (
                self.base_url + pinimg_path("videos/mc/720p", signature, "mp4"))
            media = {"media_type": "video", "images": self._images(signature),
                     "cover_image_url": self.image_url("1200x", signature), "video_url": video,
                     "duration": 12.5, "width": 1080, "height": 1920}
        else:
            media = {"media_type": "multiple_images", "items": [
                {"item_type": "image", "title": None, "description": f"Image {i + 1}", "link": None,
                 "images": self._images(s)} for i, s in enumerate(pin.signatures)]}
        answer = {"id": pin.id, "created_at": self._time(pin.created_at), "link": pin.link, "title": pin.title,
                  "description": pin.description, "dominant_color": pin.dominant_color, "alt_text": pin.alt_text,
                  "board_id": pin.board_id, "board_section_id": pin.board_section_id,
                  "board_owner": {"username": self.user["username"]}, "parent_pin_id": None, "is_owner": True,
                  "is_standard": True, "has_been_promoted": False,
                  "creative_type": {"image": "REGULAR", "video": "VIDEO"}.get(pin.media_type, "CAROUSEL"),
                  "media": media, "note": None}
        if metrics:
            recent = {k: pin.metrics[k] for k in ("pin_click", "impression", "clickthrough")}
            lifetime = dict(recent, reaction=pin.metrics["reaction"], comment=pin.metrics["comment"])
            # Lifetime metrics of Pins older than 2023-03-20 exist only for videos (notes §2.1).
            old = pin.created_at < _dt.datetime(2023, 3, 20, tzinfo=_dt.timezone.utc).timestamp()
            answer["pin_metrics"] = {"90d": recent, "lifetime_metrics": None if old and pin.media_type != "video"
                                     else lifetime}
        return answer

    def board_json(self, board: dict) -> dict:
        pins = [p for p in self.pins.values() if p.board_id == board["id"]]
        newest = max(pins, key=lambda p: p.created_at, default=None)
        cover = self.image_url("400x300", newest.signatures[0]) if newest else None
        modified = max((p.created_at for p in pins), default=board["created_at"])
        return {"id": board["id"], "name": board["name"], "description": board["description"],
                "owner": {"username": self.user["username"]}, "privacy": board["privacy"],
                "created_at": self._time(board["created_at"]), "board_pins_modified_at": self._time(modified),
                "pin_count": len(pins), "follower_count": board["follower_count"],
                "collaborator_count": board["collaborator_count"], "is_ads_only": board["is_ads_only"],
                "media": {"image_cover_url": cover,
                          "pin_thumbnail_urls": [self.image_url("150x150", p.signatures[0]) for p in pins[:4]]}}

    def account_json(self) -> dict:
        return {**self.user, "profile_image": self.image_url("75x75_RS", self.avatar_signature),
                "board_count": len(self.boards), "pin_count": len(self.pins),
                "follower_count": len(self.followers), "following_count": len(self.following),
                "monthly_views": 1234}

    # ------------------------------------------------------------------ tokens

    def issue_tokens(self, scopes: str | None = None, *, age: float = 0.0) -> dict:
        """Mint tokens directly, as a finished `archiver auth` has them; ``age`` seconds old."""
        with self._lock:
            return self._token_answer((scopes or self.config.granted_scopes).split(","), issued_at=self.now() - age,
                                      grant_type="authorization_code")

    def _token_answer(self, scopes: list[str], *, issued_at: float, grant_type: str,
                      predecessor: str | None = None) -> dict:
        access, refresh = "pina_" + secrets.token_urlsafe(24), "pinr_" + secrets.token_urlsafe(24)
        refresh_expires_at = int(issued_at + self.config.refresh_ttl)
        self._refresh[refresh] = {"scopes": scopes, "expires_at": refresh_expires_at, "alive": True,
                                  "predecessor": predecessor, "successor": None}
        self._access[access] = {"scopes": scopes, "expires_at": issued_at + self.config.access_ttl,
                                "refresh": refresh, "used": False}
        return {"access_token": access, "token_type": "bearer", "expires_in": self.config.access_ttl,
                "scope": ",".join(scopes), "response_type": grant_type, "refresh_token": refresh,
                "refresh_token_expires_in": self.config.refresh_ttl, "refresh_token_expires_at": refresh_expires_at}

    def expire_tokens(self) -> None:
        """Every access token handed out so far expires now (refresh tokens live on)."""
        with self._lock:
            for record in self._access.values():
                record["expires_at"] = min(record["expires_at"], self.now() - 1)

    def revoke_all(self) -> None:
        """The person removed the app: every access and refresh token is refused from now on."""
        with self._lock:
            for record in self._access.values():
                record["expires_at"] = float("-inf")
            for record in self._refresh.values():
                record["alive"] = False

    def refresh_token_alive(self, token: str) -> bool:
        record = self._refresh.get(token)
        return bool(record and record["alive"] and record["expires_at"] > self.now())

    def _retire_predecessor(self, refresh: str) -> None:
        """"until_new_used": the new pair was used, so the old refresh token dies now."""
        old = self._refresh[refresh]["predecessor"]
        if old and old in self._refresh:
            self._refresh[old]["alive"] = False

    # ------------------------------------------------------------------ answers

    @staticmethod
    def _json(status: int, body: Any, headers: dict | None = None) -> httpx.Response:
        return httpx.Response(status, headers={"Content-Type": "application/json", **(headers or {})},
                              content=json.dumps(body).encode())

    def _error(self, status: int, code: int, message: str, headers: dict | None = None) -> httpx.Response:
        return self._json(status, {"code": code, "message": message}, headers)

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/" or path == "/oauth":
            return self._consent(request)
        if path == "/v5/oauth/token":
            return self._token(request)
        if path.startswith("/v5/"):
            return self._api(request, path[len("/v5"):])
        return self._cdn(request, path)

    # ------------------------------------------------------------------ OAuth

    def _consent(self, request: httpx.Request) -> httpx.Response:
        """The consent page: the person approves at once (scopes as ``granted_scopes`` allows)."""
        q = request.url.params
        if q.get("client_id") != self.config.client_id:
            return httpx.Response(400, text="Invalid client_id")
        if q.get("response_type") != "code":
            return httpx.Response(400, text="response_type must be code")
        redirect_uri = q.get("redirect_uri") or ""
        parts = urlsplit(redirect_uri)
        # The app's registered redirect URIs: any loopback http address (ports vary in tests).
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            return httpx.Response(400, text="redirect_uri does not match the app's registered redirect URIs")
        requested = [s for s in (q.get("scope") or "").split(",") if s]
        if not requested or any(s not in SCOPES for s in requested):
            return httpx.Response(400, text="invalid scope")
        granted = [s for s in requested if s in self.config.granted_scopes.split(",")]
        code = secrets.token_urlsafe(24)
        self._codes[code] = {"scopes": granted, "redirect_uri": redirect_uri, "used": False,
                             "expires_at": self.now() + CODE_TTL}
        query = urlencode({"code": code, "state": q.get("state", "")})
        return httpx.Response(302, headers={"Location": f"{redirect_uri}?{query}"})

    def _client_authenticated(self, request: httpx.Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return client_id == self.config.client_id and hmac.compare_digest(secret, self.config.client_secret)

    def _token(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return self._error(405, 405, "Method Not Allowed")
        if not self._client_authenticated(request):
            return self._error(401, 2, "Authentication failed.")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return self._error(400, 1, "Invalid request body: expected application/x-www-form-urlencoded")
        form = {k: v[0] for k, v in parse_qs(request.content.decode(), keep_blank_values=True).items()}
        self.token_requests.append({k: v for k, v in form.items() if k not in ("code", "refresh_token")})
        if form.get("grant_type") == "authorization_code":
            if not form.get("code") or not form.get("redirect_uri"):
                return self._error(400, 1, "Missing code or redirect_uri")
            code = self._codes.get(form["code"])
            if code is None or code["used"] or code["expires_at"] <= self.now():
                if code is not None:
                    code["used"] = True
                return self._error(400, 2, "Authentication failed.")
            code["used"] = True   # single use, even when the redirect_uri is wrong
            if form["redirect_uri"] != code["redirect_uri"]:
                return self._error(400, 2, "Authentication failed.")
            return self._json(200, self._token_answer(code["scopes"], issued_at=self.now(),
                                                      grant_type="authorization_code"))
        if form.get("grant_type") == "refresh_token":
            continuous = form.get("continuous_refresh") == "true"
            self.continuous_refresh_seen += continuous
            if self.config.require_continuous_refresh and not continuous:
                return self._error(400, 1, "Legacy refresh tokens are no longer supported: "
                                           "send continuous_refresh=true")
            old = form.get("refresh_token", "")
            if not self.refresh_token_alive(old):
                return self._error(400, 2, "Authentication failed.")
            record = self._refresh[old]
            if record["successor"] in self._refresh:
                # The old token used again ("until_new_used"): its unused successor dies.
                self._refresh[record["successor"]]["alive"] = False
            self._retire_predecessor(old)
            scopes = record["scopes"]
            if form.get("scope"):
                scopes = [s for s in form["scope"].split(",") if s in record["scopes"]]
            answer = self._token_answer(scopes, issued_at=self.now(), grant_type="refresh_token", predecessor=old)
            record["successor"] = answer["refresh_token"]
            if self.config.old_refresh_after_rotation == "rejected":
                record["alive"] = False
            return self._json(200, answer)
        return self._error(400, 1, "Unsupported grant_type")

    # ------------------------------------------------------------------ the API

    def _limit_headers(self, left: int, reset: float) -> dict:
        if not self.config.ratelimit_headers:
            return {}
        return {"x-ratelimit-limit": str(self.config.daily_limit if self.config.access == "trial"
                                         else self.config.rate_limit),
                "x-ratelimit-remaining": str(max(left, 0)), "x-ratelimit-reset": str(int(reset))}

    def _count_call(self, path: str) -> httpx.Response | dict:
        """Charge one call to the app's limit; a 429 answer when it is spent, else the headers."""
        now = self.now()
        if self.config.access == "standard":
            minute = ("ads_read" if path.startswith("/user_account/followers") else "org_read", int(now // 60))
            if self.calls_by_minute[minute] >= self.config.rate_limit:
                wait = 60 - now % 60
                return self._error(429, 8, "You have exceeded your rate limit. Try again later.",
                                   {"Retry-After": str(int(wait) + 1), **self._limit_headers(0, wait)})
            self.calls_by_minute[minute] += 1
            return self._limit_headers(self.config.rate_limit - self.calls_by_minute[minute], 60 - now % 60)
        day = _dt.datetime.fromtimestamp(now, _dt.timezone.utc).date().isoformat()
        to_midnight = 86400 - now % 86400
        if self.calls_by_day[day] >= self.config.daily_limit:
            return self._error(429, 8, "You have exceeded your rate limit. Try again later.",
                               self._limit_headers(0, to_midnight))
        self.calls_by_day[day] += 1
        return self._limit_headers(self.config.daily_limit - self.calls_by_day[day], to_midnight)

    def calls_today(self) -> int:
        return self.calls_by_day[_dt.datetime.fromtimestamp(self.now(), _dt.timezone.utc).date().isoformat()]

    def _api(self, request: httpx.Request, path: str) -> httpx.Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        record = self._access.get(token) if scheme.lower() == "bearer" else None
        if record is None or record["expires_at"] <= self.now():
            return self._error(401, 2, "Authentication failed.")
        if not record["used"]:
            record["used"] = True
            self._retire_predecessor(record["refresh"])
        counted = self._count_call(path)
        if isinstance(counted, httpx.Response):
            return counted
        headers = counted
        if re.fullmatch(r"/pins/[0-9]+/comments", path):
            return self._error(404, 404, "Not found.", headers)   # no comments endpoint in v5
        match = next(((m, name, scopes) for pattern, name, scopes in ENDPOINTS
                      if (m := pattern.fullmatch(path.rstrip("/") or "/"))), None)
        if match is None:
            return self._error(404, 404, "Not found.", headers)
        found, name, needed = match
        if request.method != "GET":
            return self._error(405, 405, "Method Not Allowed", headers)
        if self.config.fail_rate and self._faults.random() < self.config.fail_rate:
            return self._error(503, 503, "Service unavailable. Please try again later.", headers)
        granted = set(record["scopes"])
        if not set(needed) <= granted:
            message = ("Not authorized to access the user account." if name == "account"
                       else "Authorization failed.")
            return self._error(403, 3, message, headers)
        try:
            answer = getattr(self, f"_get_{name}")(request.url.params, granted, **found.groupdict())
        except _ApiError as error:
            return self._error(error.status, error.code, error.message, headers)
        return self._json(200, answer, headers)

    # --- paging
    def _bookmark(self, listing: str, offset: int) -> str:
        body = json.dumps([listing, offset, round(self.now())]).encode()
        tag = hmac.new(self._bookmark_key, body, "sha256").digest()[:12]
        return base64.urlsafe_b64encode(body + tag).decode()

    def _page(self, params, listing: str, items: list, shape=lambda item: item) -> dict:
        raw_size = params.get("page_size")
        size = PAGE_SIZE_DEFAULT
        if raw_size is not None:
            if not re.fullmatch(r"[0-9]+", raw_size) or not 1 <= int(raw_size) <= PAGE_SIZE_MAX:
                raise _ApiError(400, 1, f"Invalid parameter page_size: must be between 1 and {PAGE_SIZE_MAX}")
            size = int(raw_size)
        size = min(size, self.config.max_page_size)
        offset = 0
        if params.get("bookmark"):
            try:
                blob = base64.urlsafe_b64decode(params["bookmark"].encode())
                body, tag = blob[:-12], blob[-12:]
                if not hmac.compare_digest(tag, hmac.new(self._bookmark_key, body, "sha256").digest()[:12]):
                    raise ValueError("tampered")
                where, offset, issued = json.loads(body)
                if where != listing:
                    raise ValueError("another listing's bookmark")
                if self.config.bookmark_ttl is not None and self.now() - issued > self.config.bookmark_ttl:
                    raise ValueError("expired")
            except ValueError:
                raise _ApiError(400, 1, "Invalid bookmark") from None
        chunk = items[offset:offset + size]
        more = offset + size < len(items)
        return {"items": [shape(item) for item in chunk],
                "bookmark": self._bookmark(listing, offset + size) if more else None}

    # --- visibility of boards and Pins to a token
    def _board_visible(self, board: dict, granted: set[str]) -> bool:
        return board["privacy"] != "SECRET" or "boards:read_secret" in granted

    def _pin_visible(self, pin: FakePin, granted: set[str], *, protected: bool) -> bool:
        privacy = self.boards[pin.board_id]["privacy"]
        if privacy == "SECRET":
            return "pins:read_secret" in granted
        if privacy == "PROTECTED":
            return protected
        return True

    def _ordered_pins(self) -> list[FakePin]:
        newest_first = sorted(self.pins.values(), key=lambda p: (p.created_at, p.id), reverse=True)
        return newest_first if self.config.pins_order == "newest" else newest_first[::-1]

    # --- endpoints
    def _get_account(self, params, granted) -> dict:
        return self.account_json()

    def _get_followers(self, params, granted) -> dict:
        return self._page(params, "followers", self.followers, lambda name: {"type": "user", "username": name})

    def _get_following(self, params, granted) -> dict:
        feed = params.get("feed_type", "ALL")
        if feed not in ("ALL", "ORGANIC", "RECOMMENDATIONS"):
            raise _ApiError(400, 1, "Invalid parameter feed_type")
        return self._page(params, "following", self.following,
                          lambda name: {"type": "user", "username": name})

    def _get_boards(self, params, granted) -> dict:
        privacy = params.get("privacy")
        if privacy not in (None, "PUBLIC", "PROTECTED", "SECRET"):
            raise _ApiError(400, 1, "Invalid parameter privacy")
        boards = [b for b in sorted(self.boards.values(), key=lambda b: b["created_at"])
                  if self._board_visible(b, granted) and (privacy is None or b["privacy"] == privacy)]
        return self._page(params, f"boards:{privacy}", boards, self.board_json)

    def _board(self, board_id: str, granted) -> dict:
        board = self.boards.get(board_id)
        if board is None or not self._board_visible(board, granted):
            raise _ApiError(404, 404, "Board not found.")
        return board

    def _get_board(self, params, granted, board: str) -> dict:
        return self.board_json(self._board(board, granted))

    def _get_sections(self, params, granted, board: str) -> dict:
        self._board(board, granted)
        sections = [{"id": s["id"], "name": s["name"]} for s in self.sections.values() if s["board_id"] == board]
        return self._page(params, f"sections:{board}", sections)

    def _pin_list(self, params, granted, listing: str, keep) -> dict:
        metrics = params.get("pin_metrics") == "true"
        protected = params.get("include_protected_pins") == "true"
        pins = [p for p in self._ordered_pins() if keep(p) and self._pin_visible(p, granted, protected=protected)]
        return self._page(params, listing, pins, lambda pin: self.pin_json(pin, metrics=metrics))

    def _get_board_pins(self, params, granted, board: str) -> dict:
        self._board(board, granted)
        return self._pin_list(params, granted, f"board:{board}", lambda p: p.board_id == board)

    def _get_section_pins(self, params, granted, board: str, section: str) -> dict:
        self._board(board, granted)
        if self.sections.get(section, {}).get("board_id") != board:
            raise _ApiError(404, 404, "Section not found.")
        return self._pin_list(params, granted, f"section:{section}", lambda p: p.board_section_id == section)

    def _get_pins(self, params, granted) -> dict:
        if params.get("pin_filter") not in (None, "exclude_native", "exclude_repins", "has_been_promoted"):
            raise _ApiError(400, 1, "Invalid parameter pin_filter")
        return self._pin_list(params, granted, "pins", lambda p: True)

    def _get_pin(self, params, granted, pin: str) -> dict:
        found = self.pins.get(pin)
        if found is None or not self._pin_visible(found, granted, protected=True):
            raise _ApiError(404, 404, "Pin not found.")
        return self.pin_json(found, metrics=params.get("pin_metrics") == "true")

    # ------------------------------------------------------------------ the CDN

    def _cdn(self, request: httpx.Request, path: str) -> httpx.Response:
        match = re.fullmatch(r"/(150x150|400x300|600x|1200x|originals|75x75_RS|videos/mc/720p)"
                             r"/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{32})\.(jpg|mp4)", path)
        if match is None or match[5][:6] != match[2] + match[3] + match[4]:
            return httpx.Response(404, text="Not Found")
        if request.method not in ("GET", "HEAD"):
            return httpx.Response(405)
        if match[1] == "originals" and not self.config.originals:
            # S3 behind the CDN answers a key it does not hold with 403 AccessDenied.
            return httpx.Response(403, headers={"Content-Type": "application/xml"},
                                  text="<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>")
        content_type = "video/mp4" if match[6] == "mp4" else "image/png"
        return httpx.Response(200, headers={"Content-Type": content_type, "Cache-Control": "max-age=31536000"},
                              content=self.file_bytes(path))


class _ApiError(Exception):
    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# --------------------------------------------------------------------------- the export


def export_pins_of(fake: FakePinterest) -> list:
    """The fake's Pins as the "Request your data" export lists them (pinexport's ExportPin)."""
    from archiver_connectors.pinterest.sim.export import ExportPin

    pins = []
    for pin in sorted(fake.pins.values(), key=lambda p: p.created_at, reverse=True):
        board = fake.boards[pin.board_id]
        pins.append(ExportPin(
            pin_id=pin.id, title=pin.title, details=pin.description, image_signature=pin.signatures[0],
            board_id=pin.board_id, board_name=board["name"], username=fake.user["username"],
            alt_text=pin.alt_text, link=pin.link, is_video=pin.media_type == "video",
            created_at=_dt.datetime.fromtimestamp(pin.created_at, _dt.timezone.utc), private=board["privacy"] != "PUBLIC",
            is_repin=False))
    return pins


def write_matching_export(fake: FakePinterest, path: str | Path) -> Path:
    """The account's "Request your data" export of the same Pins, written by pinexport's
    pinterest/sim/export.py (a zip when ``path`` ends in .zip, else the HTML file)."""
    from archiver_connectors.pinterest.sim.export import ExportBoard, boards_section, people_section, write_export

    target = Path(path).expanduser()
    boards = [ExportBoard(board["id"], board["name"], description=board["description"], privacy=board["privacy"],
                          created_at=_dt.datetime.fromtimestamp(board["created_at"], _dt.timezone.utc))
              for board in fake.boards.values()]
    return Path(write_export(target, export_pins_of(fake), zipped=target.suffix.lower() == ".zip",
                             extra_sections=[boards_section(boards), people_section("Followers", fake.followers),
                                             people_section("Following", fake.following)]))


# --------------------------------------------------------------------------- real HTTP


def serve(fake: FakePinterest, host: str = "127.0.0.1", port: int = 0):
    """Serve ``fake`` over real HTTP in a daemon thread; returns ``(server, thread)``."""
    from archiver.sim.server import serve_fake

    return serve_fake(fake, host, port, name="fake-pinterest",
                      crash_response=lambda error: fake._error(500, 500, f"fake crashed: {type(error).__name__}"))


def main(argv: list[str] | None = None) -> None:
    """``archiver simulate pinterest --port N ...``: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="archiver simulate pinterest",
                                     description="Serve a fake of Pinterest API v5, its OAuth and its image CDN.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--posts", "--pins", "--videos", dest="posts", type=int, default=12, help="the owner's Pins")
    parser.add_argument("--boards", type=int, default=3)
    parser.add_argument("--followers", type=int, default=20)
    parser.add_argument("--following", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=None,
                        help="Trial: API calls a UTC day (default 1000); --access standard: calls a minute")
    parser.add_argument("--daily-limit", type=int, default=None, help="Trial's API calls a UTC day (as --rate-limit)")
    parser.add_argument("--max-page-size", type=int, default=PAGE_SIZE_MAX, help="the largest page_size honoured")
    parser.add_argument("--token-seconds", type=int, default=30 * 86400, help="an access token's lifetime")
    parser.add_argument("--secret-boards", action=argparse.BooleanOptionalAction, default=True,
                        help="a SECRET board among the boards")
    parser.add_argument("--access", choices=("trial", "standard"), default="trial")
    parser.add_argument("--no-originals", action="store_true", help="the CDN has no originals/ files (403)")
    parser.add_argument("--pins-order", choices=("newest", "oldest"), default="newest")
    parser.add_argument("--old-refresh", choices=("rejected", "until_new_used"), default="rejected",
                        help="what a rotated refresh token does")
    parser.add_argument("--scopes", default=ALL_SCOPES, help="the scopes the person grants in the consent page")
    parser.add_argument("--client-id", default=FakePinterestConfig.client_id)
    parser.add_argument("--client-secret", default=FakePinterestConfig.client_secret)
    parser.add_argument("--request-log", metavar="PATH", help="append \"METHOD PATH STATUS\" per request")
    parser.add_argument("--write-export", metavar="PATH",
                        help="also write this account's \"Request your data\" export (an .html file, or a .zip) "
                             "with the same Pins, to try `archiver import` on")
    args = parser.parse_args(argv)
    config = FakePinterestConfig(
        posts=args.posts, boards=max(args.boards, 1), max_page_size=args.max_page_size,
        access_ttl=args.token_seconds, secret_boards=args.secret_boards, followers=args.followers, following=args.following,
        seed=args.seed, latency_ms=args.latency_ms, fail_rate=args.fail_rate, access=args.access,
        originals=not args.no_originals, pins_order=args.pins_order, old_refresh_after_rotation=args.old_refresh,
        granted_scopes=args.scopes, client_id=args.client_id, client_secret=args.client_secret)
    if args.daily_limit is not None:
        config.daily_limit = args.daily_limit
    if args.rate_limit is not None:
        if args.access == "trial":
            config.daily_limit = args.rate_limit
        else:
            config.rate_limit = args.rate_limit
    fake = FakePinterest(config)
    if args.request_log:
        from archiver.sim.server import log_requests

        log_requests(fake, args.request_log)
    server, _thread = serve(fake, args.host, args.port)
    if args.write_export:
        # After serve: the Pins' image links in the world name the bound address.
        written = write_matching_export(fake, args.write_export)
        print(f"wrote the account's export to {written}", flush=True)
    from archiver.sim.server import serve_until_signalled

    serve_until_signalled(server, fake)


if __name__ == "__main__":
    main()
