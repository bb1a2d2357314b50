"""A stateful fake of the Instagram API with Instagram Login, faithful to
shared/platforms/instagram.md.

One ``FakeInstagram`` plays every Instagram host at one base URL:

- Business Login (www.instagram.com):   GET  /oauth/authorize
- code exchange (api.instagram.com):     POST /oauth/access_token
- graph.instagram.com:                   GET  /access_token (short -> long-lived),
                                         GET  /refresh_access_token,
                                         GET  [/vNN.N]/me, /{user-id}, /me/media, /{user-id}/media,
                                              /{media-id}, /{media-id}/children, /{media-id}/comments,
                                              /{comment-id}, /{comment-id}/replies
- a signed, expiring CDN:                GET  /cdn/v/<key>_n.jpg?oe=<hex>&oh=<sig> , /cdn/o1/<key>.mp4?...

Use it in-process with ``httpx.MockTransport(fake.handle)``, over loopback with
``serve(fake)``, or as a process (``archiver simulate instagram --port N``).

Choices where the notes say [U], each a knob of ``FakeInstagramConfig``:
- ``code_response``: the code exchange answers ``{"data": [{...}]}`` (Business Login) or the
  flat ``{"access_token", "user_id": <number>}`` shape.
- ``young_refresh_code``: the Graph error code a refresh of a token under 24 h old gets.
- ``throttle_code`` / ``throttle_status``: which throttle error (80002 BUC, 4, 17, 32, 613)
  and HTTP status (400, 403, 429) a request over ``rate_limit`` calls per hour gets.
  ``estimated_time_to_regain_access`` (minutes) says when the oldest call leaves the window.
- ``error_type``: ``OAuthException`` or ``IGApiException`` in error envelopes.
- ``bearer_supported``: whether ``Authorization: Bearer`` works besides ``access_token=``.
- ``account_type`` ``PERSONAL`` with ``personal_refusal`` "authorize" (the login window
  sends the user back with an error) or "api" (tokens are issued, ``/me`` says PERSONAL and
  every other data call is refused with code 10).
- ``copyrighted_reels``: share of reels served without ``media_url`` (copyrighted audio);
  ``Media["copyrighted"]`` may be set per item too.
- Page sizes: ``limit`` default 25, at most 100; comments newest first.
- Error envelopes go out with HTTP 400 (500 for the transient codes 1/2 of ``fail_rate``).

Every data response carries ``X-App-Usage`` and ``X-Business-Use-Case-Usage`` with the
share of ``rate_limit`` used in the rolling hour. ``paging.next`` is a full URL that holds
the caller's ``access_token``, as Instagram's does. ``advance(seconds)`` moves the fake's
clock (tokens, CDN links, the rate window) without sleeping.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

import httpx

from archiver_connectors.meta.sim.graph import (
    CodeRefused,
    CursorPaging,
    GraphError,
    GraphFake,
    LoginRefused,
    SignedCdn,
    TokenStore,
    UsageWindow,
    caller_token,
    cdn_file,
    error_response,
    form_body,
    graph_time,
    json_response,
    login_request,
    long_lived_exchange,
)
from archiver_connectors.meta.sim.graph import parse_fields as _parse_graph_fields

# --------------------------------------------------------------------------- constants

USER_FIELDS = ("id", "user_id", "username", "name", "account_type", "profile_picture_url",
               "followers_count", "follows_count", "media_count", "biography", "website")
MEDIA_FIELDS = ("id", "caption", "media_type", "media_product_type", "media_url", "thumbnail_url",
                "permalink", "timestamp", "username", "shortcode", "is_comment_enabled", "owner",
                "alt_text", "is_shared_to_feed", "like_count", "comments_count", "total_like_count",
                "total_comments_count", "children")
CHILD_FIELDS = ("id", "media_type", "media_url", "thumbnail_url", "timestamp", "username", "shortcode",
                "permalink")   # permalink is accepted, and omitted on children [C]
COMMENT_FIELDS = ("id", "text", "timestamp", "username", "from", "like_count", "hidden", "parent_id",
                  "media", "replies")
SCOPES = ("instagram_business_basic", "instagram_business_manage_comments",
          "instagram_business_manage_insights", "instagram_business_content_publish",
          "instagram_business_manage_messages")
THROTTLE_MESSAGES = {
    4: "Application request limit reached",
    17: "User request limit reached",
    32: "Page request limit reached",
    613: "Calls to this api have exceeded the rate limit.",
    80002: "There have been too many calls to this Instagram account. Wait a bit and try again.",
}
SHORT_TTL = 3600
LONG_TTL = 60 * 86400
MIN_REFRESH_AGE = 86400
CODE_TTL = 3600
RATE_WINDOW = 3600.0
DEFAULT_LIMIT, MAX_LIMIT = 25, 100
WORDS = ("sunset", "roof", "timelapse", "city", "rain", "coffee", "harbour", "neon", "market",
         "garden", "snow", "studio", "bridge", "morning", "skate", "forest")


@dataclass
class FakeInstagramConfig:
    media: int = 30
    followers: int = 50                 # only counts: the API has no follower list
    following: int = 20
    seed: int = 1
    latency_ms: int = 0
    fail_rate: float = 0.0              # share of data calls answered 500 with transient code 2
    rate_limit: int = 4800              # calls per rolling hour before throttling
    throttle_code: int = 80002
    throttle_status: int = 400
    error_type: str = "OAuthException"
    bearer_supported: bool = True
    account_type: str = "MEDIA_CREATOR"  # BUSINESS | MEDIA_CREATOR | PERSONAL
    personal_refusal: str = "authorize"  # "authorize" | "api"
    copyrighted_reels: float = 0.3
    code_response: str = "data"          # "data" | "flat"
    young_refresh_code: int = 190
    media_url_ttl: int = 3 * 86400       # signed CDN links stop working after this
    comments_max: int = 6                # top-level comments per media: 0..comments_max
    replies_max: int = 3
    replies_expansion_limit: int = 2     # replies{...} shows this many, then paging.next
    client_id: str = "1000000000000001"
    client_secret: str = "fake-client-secret"
    granted_scopes: str = "instagram_business_basic,instagram_business_manage_comments"


_iso = graph_time


def parse_fields(spec: str) -> dict[str, dict | None]:
    """``"id,caption,children{id,media_url}"`` -> ``{"id": None, "caption": None,
    "children": {"id": None, "media_url": None}}``. Raises ValueError on bad braces (and
    on field modifiers, which this fake does not take)."""
    return _parse_graph_fields(spec, allow_modifiers=False)


class FakeInstagram(GraphFake):
    """Instagram's API as one in-memory world. Thread-safe (one lock)."""

    config: FakeInstagramConfig

    def __init__(self, config: FakeInstagramConfig | None = None, base_url: str = "http://127.0.0.1:0"):
        super().__init__(config or FakeInstagramConfig(), base_url)
        self._cdn = SignedCdn(f"ig-cdn-{self.config.seed}".encode(), self.now, self.config.media_url_ttl, cdn_file)
        self.tokens = TokenStore(self.now, prefix="IGAA", short_ttl=SHORT_TTL, long_ttl=LONG_TTL, code_ttl=CODE_TTL)
        self._tokens = self.tokens.tokens   # token -> {"kind": short|long, "issued_at", "expires_at", "scopes", "revoked"}
        self._usage = UsageWindow(self.now, self.config.rate_limit, RATE_WINDOW)
        self._paging = CursorPaging(default_limit=DEFAULT_LIMIT, max_limit=MAX_LIMIT)
        self._ids = 0
        self.user: dict = {}
        self.media: list[dict] = []           # newest first is how it is served; stored any order
        self.deleted_media: list[dict] = []
        self.fans: list[dict] = []            # people who comment: {"id", "username"}
        self._build_world()

    # ------------------------------------------------------------------ clock and ids


    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._rng.randrange(10**9, 10**10)}{self._ids:05d}"

    # ------------------------------------------------------------------ the world

    def _build_world(self) -> None:
        rng = self._rng
        name = f"{rng.choice(WORDS)}.{rng.choice(WORDS)}{rng.randrange(100)}"
        self.user = {
            "id": str(rng.randrange(10**15, 10**16)),         # app-scoped
            "user_id": "17841" + str(rng.randrange(10**11, 10**12)),
            "username": name, "name": name.replace(".", " ").title(),
            "account_type": self.config.account_type,
            "biography": f"{rng.choice(WORDS).title()}s from above.",
            "website": f"https://{name.replace('.', '')}.example",
        }
        self.fans = [{"id": "17841" + str(rng.randrange(10**11, 10**12)), "username": f"fan_{i:03d}_{rng.choice(WORDS)}"}
                     for i in range(max(5, self.config.media // 2))]
        moment = 1_714_000_000
        for _ in range(self.config.media):
            self.media.append(self._new_media(moment))
            moment -= rng.randrange(3600, 4 * 86400)

    def _new_media(self, timestamp: int, **overrides) -> dict:
        rng = self._rng
        roll = rng.random()
        if roll < 0.35:
            kind, product = "IMAGE", "FEED"
        elif roll < 0.5:
            kind, product = "VIDEO", "FEED"
        elif roll < 0.72:
            kind, product = "CAROUSEL_ALBUM", "FEED"
        else:
            kind, product = "VIDEO", "REELS"
        media = {
            "id": self._new_id("18"), "media_type": kind, "media_product_type": product,
            "caption": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))).capitalize()
                       if rng.random() > 0.1 else "",
            "timestamp": timestamp, "shortcode": base64.urlsafe_b64encode(rng.randbytes(8)).decode()[:11],
            "like_count": rng.randrange(0, 3000), "is_comment_enabled": True,
            "copyrighted": product == "REELS" and rng.random() < self.config.copyrighted_reels,
            "children": [], "comments": [],
        }
        if kind == "CAROUSEL_ALBUM":
            media["children"] = [{"id": self._new_id("18"), "media_type": rng.choice(("IMAGE", "IMAGE", "VIDEO"))}
                                 for _ in range(rng.randint(2, 4))]
        for _ in range(rng.randint(0, self.config.comments_max)):
            self._add_comment(media, timestamp + rng.randrange(60, 86400))
        media.update(overrides)
        return media

    def _add_comment(self, media: dict, timestamp: int, text: str | None = None, author: dict | None = None) -> dict:
        rng = self._rng
        fan = author or rng.choice(self.fans)
        comment = {"id": self._new_id("179"), "text": text or f"Love the {rng.choice(WORDS)}!",
                   "timestamp": timestamp, "from": dict(fan), "like_count": rng.randrange(0, 20),
                   "hidden": False, "media_id": media["id"], "replies": []}
        for n in range(rng.randint(0, self.config.replies_max) if text is None else 0):
            self._add_reply(comment, timestamp + 60 * (n + 1))
        media["comments"].append(comment)
        return comment

    def _add_reply(self, comment: dict, timestamp: int, text: str | None = None, author: dict | None = None) -> dict:
        rng = self._rng
        owner = {"id": self.user["user_id"], "username": self.user["username"]}
        who = author or (owner if rng.random() < 0.5 else rng.choice(self.fans))
        reply = {"id": self._new_id("179"), "text": text or f"@{comment['from']['username']} thanks!",
                 "timestamp": timestamp, "from": dict(who), "like_count": rng.randrange(0, 5),
                 "hidden": False, "parent_id": comment["id"], "media_id": comment["media_id"]}
        comment["replies"].append(reply)
        return reply

    # ------------------------------------------------------------------ world changes

    def find_media(self, media_id: str) -> dict:
        for media in self.media:
            if media["id"] == media_id:
                return media
        raise KeyError(media_id)

    def newest_first(self) -> list[dict]:
        return sorted(self.media, key=lambda m: (m["timestamp"], m["id"]), reverse=True)

    def add_media(self, **overrides) -> dict:
        """Publish a new media item now (newer than every other)."""
        with self._lock:
            newest = max((m["timestamp"] for m in self.media), default=0)
            timestamp = overrides.pop("timestamp", max(int(self.now()), newest + 1))
            media = self._new_media(timestamp, **overrides)
            self.media.append(media)
            return media

    def edit_caption(self, media_id: str, caption: str) -> None:
        with self._lock:
            self.find_media(media_id)["caption"] = caption

    def delete_media(self, media_id: str) -> None:
        with self._lock:
            media = self.find_media(media_id)
            self.media.remove(media)
            self.deleted_media.append(media)

    def add_comment(self, media_id: str, text: str, author: dict | None = None) -> dict:
        with self._lock:
            media = self.find_media(media_id)
            return self._add_comment(media, int(self.now()), text, author or self._rng.choice(self.fans))

    def add_reply(self, comment_id: str, text: str, author: dict | None = None) -> dict:
        with self._lock:
            comment, _media = self._find_comment(comment_id)
            return self._add_reply(comment, int(self.now()), text, author)

    def comments_count(self, media: dict) -> int:
        """Instagram counts replies too."""
        return sum(1 + len(c["replies"]) for c in media["comments"])

    def all_comments(self) -> list[dict]:
        return [c for m in self.media for top in m["comments"] for c in (top, *top["replies"])]

    # ------------------------------------------------------------------ tokens

    def issue_tokens(self, scopes: str | None = None, *, age: float = 0.0) -> dict:
        """Mint a long-lived token directly (what a finished `archiver auth` leaves);
        ``age`` seconds old. Returns the ig_exchange_token JSON plus ``user_id``."""
        with self._lock:
            token = self._mint("long", scopes or self.config.granted_scopes, issued_at=self.now() - age)
            return {"access_token": token, "token_type": "bearer",
                    "expires_in": int(self._tokens[token]["expires_at"] - self.now()),
                    "user_id": self.user["user_id"], "permissions": self._tokens[token]["scopes"]}

    def _mint(self, kind: str, scopes: str, issued_at: float | None = None) -> str:
        return self.tokens.mint(kind, scopes, issued_at)

    # ------------------------------------------------------------------ CDN links

    def _cdn_url(self, kind: str, ident: str) -> str:
        self._cdn.ttl = self.config.media_url_ttl   # a knob tests may turn after construction
        return self._cdn.url(self.base_url, kind, ident)

    # ------------------------------------------------------------------ rendering

    def _render_media(self, media: dict, fields: dict[str, dict | None], *, child: bool = False) -> dict:
        out: dict = {}
        for name, sub in fields.items():
            if name == "id":
                out["id"] = media["id"]
            elif name == "media_url":
                if not media.get("copyrighted"):
                    kind = "video" if media["media_type"] == "VIDEO" else "image"
                    ident = media["children"][0]["id"] if media["media_type"] == "CAROUSEL_ALBUM" else media["id"]
                    out["media_url"] = self._cdn_url(kind, ident)
            elif name == "thumbnail_url":
                if media["media_type"] == "VIDEO":
                    out["thumbnail_url"] = self._cdn_url("thumb", media["id"])
            elif name == "permalink":
                if not child:   # not available on carousel children [C]
                    segment = "reel" if media.get("media_product_type") == "REELS" else "p"
                    out["permalink"] = f"https://www.instagram.com/{segment}/{media['shortcode']}/"
            elif name == "timestamp":
                out["timestamp"] = _iso(media["timestamp"])
            elif name == "caption":
                if media.get("caption"):   # omitted when empty
                    out["caption"] = media["caption"]
            elif name in ("like_count", "total_like_count"):
                out[name] = media.get("like_count", 0)
            elif name in ("comments_count", "total_comments_count"):
                out[name] = self.comments_count(media)
            elif name == "username":
                out["username"] = self.user["username"]
            elif name == "owner":
                out["owner"] = {"id": self.user["user_id"]}
            elif name == "children":
                if media["media_type"] == "CAROUSEL_ALBUM":
                    child_fields = sub or {"id": None}
                    out["children"] = {"data": [self._render_media({**c, "timestamp": media["timestamp"]},
                                                                   child_fields, child=True)
                                                for c in media["children"]]}
            elif name == "is_shared_to_feed":
                if media.get("media_product_type") == "REELS":
                    out[name] = True
            elif name == "alt_text":
                pass
            elif name in media:
                out[name] = media[name]
        return out

    def _render_comment(self, comment: dict, fields: dict[str, dict | None], token: str) -> dict:
        out: dict = {}
        for name, sub in fields.items():
            if name == "timestamp":
                out[name] = _iso(comment["timestamp"])
            elif name == "username":
                out[name] = comment["from"]["username"]
            elif name == "from":
                out[name] = dict(comment["from"])
            elif name == "media":
                media = self.find_media(comment["media_id"])
                out[name] = {"id": media["id"], "media_product_type": media["media_product_type"]}
            elif name == "parent_id":
                if comment.get("parent_id"):
                    out[name] = comment["parent_id"]
            elif name == "replies":
                replies = comment.get("replies", [])
                if replies:
                    sub_fields = sub or {"id": None, "text": None, "timestamp": None}
                    out[name] = self._paging.expansion(
                        replies, partial(self._render_comment, fields=sub_fields, token=token),
                        limit=self.config.replies_expansion_limit, base_url=self.base_url,
                        edge=f"/{comment['id']}/replies", token=token, fields=",".join(sub_fields))
            elif name in comment:
                out[name] = comment[name]
        return out

    def _page(self, request: httpx.Request, items: list[dict], render, edge: str, token: str,
              newest_first: bool = True) -> dict:
        """Keyset paging over ``items`` by (timestamp, id) with opaque cursors."""
        return self._paging.page(request.url.params, items, render, base_url=self.base_url, edge=edge,
                                 token=token, newest_first=newest_first)

    # ------------------------------------------------------------------ responses

    def _json(self, status: int, body: dict, headers: dict | None = None) -> httpx.Response:
        return json_response(status, body, headers)

    def _error(self, error: GraphError, headers: dict | None = None) -> httpx.Response:
        return error_response(error, error_type=self.config.error_type, headers=headers)

    def _usage_headers(self) -> dict[str, str]:
        self._usage.limit = self.config.rate_limit   # a knob tests may turn after construction
        return self._usage.headers(business_id=self.user["user_id"], business_type="instagram")

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/cdn/"):
            return self._cdn.handle(request)
        if path == "/oauth/authorize":
            return self._authorize(request)
        if path == "/oauth/access_token":
            return self._exchange_code(request)
        path = re.sub(r"^/v\d+\.\d+(?=/)", "", path)   # unversioned paths use the default version
        if path == "/access_token":
            return self._long_lived(request)
        if path == "/refresh_access_token":
            return self._refresh(request)
        if request.method != "GET":
            raise GraphError(100, "Unsupported post request.")
        return self._data(request, path)

    # ------------------------------------------------------------------ OAuth

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        try:
            redirect_uri, requested, state = login_request(request.url.params, client_id=self.config.client_id)
        except LoginRefused as refused:
            return self._html(400, str(refused))
        if not requested or any(s not in SCOPES for s in requested):
            return self._html(400, "Invalid scope")
        if self.config.account_type == "PERSONAL" and self.config.personal_refusal == "authorize":
            query = {"error": "access_denied", "error_reason": "user_denied",
                     "error_description": "This Instagram account is not a professional account.", **state}
            return httpx.Response(302, headers={"Location": f"{redirect_uri}?{urlencode(query)}"})
        allowed = set(self.config.granted_scopes.split(","))
        granted = [s for s in requested if s in allowed]
        code = self.tokens.new_code(redirect_uri, ",".join(granted))
        # Meta appends "#_" to the redirect: not part of the code.
        return httpx.Response(302, headers={"Location": f"{redirect_uri}?{urlencode({'code': code, **state})}#_"})

    def _oauth_error(self, message: str, code: int = 400) -> httpx.Response:
        return self._json(400, {"error_type": "OAuthException", "code": code, "error_message": message})

    def _exchange_code(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return self._oauth_error("Unsupported method; use POST")
        form = form_body(request)
        if form is None:
            return self._oauth_error("Missing required parameter: client_id")
        if (form.get("client_id") != self.config.client_id
                or not hmac.compare_digest(form.get("client_secret", ""), self.config.client_secret)):
            return self._oauth_error("Invalid Client Secret")
        if form.get("grant_type") != "authorization_code":
            return self._oauth_error("Invalid grant_type")
        try:
            code = self.tokens.take_code(form.get("code", ""), form.get("redirect_uri"))
        except CodeRefused as refused:
            return self._oauth_error(str(refused))
        token = self._mint("short", code["scopes"])
        if self.config.code_response == "flat":
            return self._json(200, {"access_token": token, "user_id": int(self.user["user_id"])})
        return self._json(200, {"data": [{"access_token": token, "user_id": self.user["user_id"],
                                          "permissions": code["scopes"]}]})

    def _token_record(self, token: str) -> dict:
        return self.tokens.record(token)

    def _long_lived(self, request: httpx.Request) -> httpx.Response:
        return long_lived_exchange(request, self.tokens, grant_type="ig_exchange_token",
                                   client_secret=self.config.client_secret)

    def _refresh(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        if q.get("grant_type") != "ig_refresh_token":
            raise GraphError(100, "Invalid parameter: grant_type must be ig_refresh_token")
        record = self._token_record(q.get("access_token", ""))
        if record["kind"] != "long":
            raise GraphError(190, "Only a long-lived token can be refreshed")
        if self.now() - record["issued_at"] < MIN_REFRESH_AGE:
            raise GraphError(self.config.young_refresh_code, "The access token must be at least 24 hours old to be refreshed")
        if "instagram_business_basic" not in record["scopes"].split(","):
            raise GraphError(10, "(#10) Application does not have permission for this action")
        token = self._mint("long", record["scopes"])
        return self._json(200, {"access_token": token, "token_type": "bearer",
                                "expires_in": int(self._tokens[token]["expires_at"] - self.now())})

    # ------------------------------------------------------------------ data

    def _caller_token(self, request: httpx.Request) -> str:
        return caller_token(request, bearer_supported=self.config.bearer_supported)

    def _data(self, request: httpx.Request, path: str) -> httpx.Response:
        token = self._caller_token(request)
        record = self._token_record(token)
        headers = self._usage_headers()
        if self._usage.full():
            code = self.config.throttle_code
            raise GraphError(code, THROTTLE_MESSAGES.get(code, "Rate limit reached"),
                             status=self.config.throttle_status, headers=headers)
        self._usage.hit()
        headers = self._usage_headers()
        self._fail_at_random(headers)
        scopes = set(record["scopes"].split(","))
        try:
            fields = parse_fields(request.url.params.get("fields", ""))
        except ValueError:
            raise GraphError(100, "Syntax error: the fields parameter is malformed") from None
        body = self._route(request, path, fields, scopes, token)
        return self._json(200, body, headers)

    def _route(self, request, path: str, fields: dict, scopes: set[str], token: str) -> dict:
        user_id = self.user["user_id"]
        parts = [p for p in path.split("/") if p]
        personal = self.config.account_type == "PERSONAL"
        if "instagram_business_basic" not in scopes:
            raise GraphError(10, "(#10) Application does not have permission for this action")
        if len(parts) == 1 and parts[0] in ("me", user_id):
            if personal:
                return {"id": self.user["id"], "username": self.user["username"], "account_type": "PERSONAL"}
            self._check_fields(fields, USER_FIELDS, "User")
            return self._render_user(fields or {"id": None})
        if personal:
            raise GraphError(10, "(#10) Application does not have permission for this action")
        if parts == ["me", "media"] or parts == [user_id, "media"]:
            self._check_fields(fields, MEDIA_FIELDS, "IGMedia")
            wanted = fields or {"id": None}
            return self._page(request, self.media, lambda m: self._render_media(m, wanted), f"/{user_id}/media", token)
        if len(parts) in (1, 2):
            for media in self.media:
                if media["id"] == parts[0]:
                    return self._media_route(request, media, parts[1:], fields, scopes, token)
            comment = self._find_comment(parts[0], missing_ok=True)
            if comment is not None:
                return self._comment_route(request, comment[0], parts[1:], fields, scopes, token)
            for media in self.media:
                for child in media["children"]:
                    if child["id"] == parts[0] and len(parts) == 1:
                        self._check_fields(fields, CHILD_FIELDS, "IGMedia")
                        return self._render_media({**child, "timestamp": media["timestamp"]},
                                                  fields or {"id": None}, child=True)
        raise GraphError(100, f"Unsupported get request. Object with ID '{parts[0] if parts else ''}' does not "
                              "exist, cannot be loaded due to missing permissions, or does not support this operation")

    def _media_route(self, request, media, rest, fields, scopes, token) -> dict:
        if not rest:
            self._check_fields(fields, MEDIA_FIELDS, "IGMedia")
            return self._render_media(media, fields or {"id": None})
        if rest == ["children"]:
            self._check_fields(fields, CHILD_FIELDS, "IGMedia")
            wanted = fields or {"id": None}
            kids = [{**c, "timestamp": media["timestamp"] + n} for n, c in enumerate(media["children"])]
            return self._page(request, kids, lambda c: self._render_media(c, wanted, child=True),
                              f"/{media['id']}/children", token, newest_first=False)
        if rest == ["comments"]:
            self._comments_allowed(fields, scopes)
            wanted = fields or {"id": None, "text": None, "timestamp": None}
            return self._page(request, media["comments"], lambda c: self._render_comment(c, wanted, token),
                              f"/{media['id']}/comments", token)
        raise GraphError(100, "Unknown edge")

    def _comment_route(self, request, comment, rest, fields, scopes, token) -> dict:
        self._comments_allowed(fields, scopes)
        wanted = fields or {"id": None, "text": None, "timestamp": None}
        if not rest:
            return self._render_comment(comment, wanted, token)
        if rest == ["replies"]:
            return self._page(request, comment.get("replies", []), lambda r: self._render_comment(r, wanted, token),
                              f"/{comment['id']}/replies", token, newest_first=False)
        raise GraphError(100, "Unknown edge")

    def _comments_allowed(self, fields: dict, scopes: set[str]) -> None:
        self._check_fields(fields, COMMENT_FIELDS, "IGComment")
        for sub in fields.values():
            if sub:
                self._check_fields(sub, COMMENT_FIELDS, "IGComment")
        if "instagram_business_manage_comments" not in scopes:
            raise GraphError(10, "(#10) Application does not have permission for this action")

    @staticmethod
    def _check_fields(fields: dict, allowed: tuple[str, ...], node: str) -> None:
        for name, sub in fields.items():
            if name not in allowed:
                raise GraphError(100, f"(#100) Tried accessing nonexisting field ({name}) on node type ({node})")
            if sub and name == "children":
                FakeInstagram._check_fields(sub, CHILD_FIELDS, node)

    def _find_comment(self, comment_id: str, missing_ok: bool = False):
        for media in self.media:
            for top in media["comments"]:
                if top["id"] == comment_id:
                    return top, media
                for reply in top["replies"]:
                    if reply["id"] == comment_id:
                        return reply, media
        if missing_ok:
            return None
        raise KeyError(comment_id)

    def _render_user(self, fields: dict) -> dict:
        full = {**{k: self.user[k] for k in ("id", "user_id", "username", "name", "account_type", "biography", "website")},
                "profile_picture_url": self._cdn_url("avatar", self.user["user_id"]),
                "followers_count": self.config.followers, "follows_count": self.config.following,
                "media_count": len(self.media)}
        return {name: full[name] for name in fields}


# --------------------------------------------------------------------------- real HTTP


def serve(fake: FakeInstagram, host: str = "127.0.0.1", port: int = 0):
    """Serve ``fake`` over real HTTP in a daemon thread; returns ``(server, thread)``.
    Stop with ``server.shutdown(); server.server_close()``."""
    from archiver.sim.server import serve_fake

    return serve_fake(fake, host, port, name="fake-instagram", crash_response=lambda error: httpx.Response(
        500, json={"error": {"message": f"fake crashed: {type(error).__name__}", "type": "OAuthException", "code": 1}}))


def write_matching_export(fake: FakeInstagram, path: str) -> Path:
    """The account's "Download your information" export as Meta would build it now: the
    fake's posts and reels (same seconds, captions and kinds, so each merges with its API
    row), followers and following lists, and the owner's own comments."""
    from archiver_connectors.instagram.sim.export import _post, make_account, write_export

    mirror = [(m["timestamp"], m["caption"] or None,
               "REELS" if m["media_product_type"] == "REELS" else m["media_type"]) for m in fake.media]
    account = make_account(followers=fake.config.followers, following=fake.config.following,
                           seed=fake.config.seed, mirror=mirror)
    # Stories the API no longer lists (they expired after 24 hours): only the export has them.
    oldest = min((m["timestamp"] for m in fake.media), default=1_700_000_000)
    account.posts += [_post(oldest - 3_600 * (i + 1), None, "story") for i in range(2)]
    return write_export(account, Path(path).expanduser())


def main(argv: list[str] | None = None) -> None:
    """``archiver simulate instagram --port N ...``: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="archiver simulate instagram",
                                     description="Serve a fake of the Instagram API with Instagram Login.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--media", "--videos", dest="media", type=int, default=30)
    parser.add_argument("--followers", type=int, default=50)
    parser.add_argument("--following", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=4800, help="calls per rolling hour")
    parser.add_argument("--throttle-code", type=int, default=80002)
    parser.add_argument("--account-type", default="MEDIA_CREATOR", choices=("BUSINESS", "MEDIA_CREATOR", "PERSONAL"))
    parser.add_argument("--client-id", default=FakeInstagramConfig.client_id)
    parser.add_argument("--client-secret", default=FakeInstagramConfig.client_secret)
    parser.add_argument("--write-export", metavar="PATH",
                        help="also write this account's \"Download your information\" export (a .zip, or a "
                             "folder) with the same posts, to try `archiver import` on")
    args = parser.parse_args(argv)
    config = FakeInstagramConfig(
        media=args.media, followers=args.followers, following=args.following, seed=args.seed,
        latency_ms=args.latency_ms, fail_rate=args.fail_rate, rate_limit=args.rate_limit,
        throttle_code=args.throttle_code, account_type=args.account_type,
        client_id=args.client_id, client_secret=args.client_secret)
    fake = FakeInstagram(config)
    if args.write_export:
        print(f"wrote the account's export to {write_matching_export(fake, args.write_export)}", flush=True)
    server, _thread = serve(fake, args.host, args.port)
    from archiver.sim.server import serve_until_signalled

    serve_until_signalled(server, fake)


if __name__ == "__main__":
    main()
