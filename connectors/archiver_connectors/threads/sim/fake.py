"""A stateful fake of the Threads API, faithful to shared/platforms/threads.md (§7 lists what
it must do and refuse).

One ``FakeThreads`` plays every Threads host at one base URL, and answers for
``graph.threads.net``, ``graph.threads.com`` and ``www.threads.net|com`` by name as well:

- the login window (www.threads.net):   GET  /oauth/authorize
- graph.threads.net:                    POST /oauth/access_token (code -> short-lived token, form only)
                                        GET  /access_token (th_exchange_token -> 60 days)
                                        GET  /refresh_access_token (th_refresh_token)
                                        GET  [/v1.0]/me, /{user-id}, /me/threads, /me/replies,
                                             /me/threads_insights, /{media-id}, /{media-id}/replies,
                                             /{media-id}/conversation, /{media-id}/insights, /debug_token
- a signed, expiring CDN:               GET  /cdn/v/<key>_n.jpg?oe=<hex>&oh=<sig>, /cdn/o1/<key>.mp4?...

Use it in-process with ``httpx.MockTransport(fake.handle)``, over loopback with
``serve(fake)``, or as a process (``archiver simulate threads --port N``).

The world: the owner's top-level posts (text, image, video, carousel, quote posts and
reposts), replies others wrote under them (threads of any depth, the owner answering
some), and the owner's replies in other people's threads. There is no follower list:
``/me/followers`` and the like answer error 100, as Threads does.

Choices where the notes say [U], each a knob of ``FakeThreadsConfig``:
- ``code_user_id``: the code exchange's ``user_id`` as a JSON "number" or "string";
  ``code_expiry``: whether it adds ``token_type`` / ``expires_in``.
- ``oauth_error_code``: the Graph code of a refused code exchange (reused code, wrong
  redirect_uri, GET instead of POST).
- ``young_refresh_code``: the code a refresh of a token under 24 h old gets.
- ``permission_code``: 10 or 200 for a call the token's scopes do not cover.
- ``over_limit``: ``limit`` above ``max_limit`` is "clamp"ed or an "error" (code 100).
- ``reply_edges``: which reply edges are served: "both", "replies" (``/conversation``
  answers 100) or "conversation" (``/replies`` answers 100).
- ``timestamp_style``: "+0000" (``2026-04-15T14:30:00+0000``) or "Z".
- ``throttle_code`` / ``throttle_status`` / ``retry_after``: the throttle a call over
  ``rate_limit`` calls per rolling hour gets (4, 17 or 613; 400, 403 or 429; a
  ``Retry-After`` header or not).
- ``copyrighted``: share of video posts served without ``permalink``.

Every data response carries ``X-App-Usage`` and ``X-Business-Use-Case-Usage``;
``paging.next`` is a full URL that holds the caller's ``access_token``, as Graph's does.
``advance(seconds)`` moves the fake's clock (tokens, CDN links, the rate window). The
Graph mechanics (fields, error envelope, paging, usage window, signed CDN, tokens and
codes) are archiver_connectors.meta.sim.graph's, shared with the Instagram and Facebook fakes.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import random
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

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
    form_body,
    graph_time,
    json_response,
    login_request,
    long_lived_exchange,
    parse_fields,
)
from archiver_connectors.tiktok.sim.fake import fake_mp4, fake_png

# --------------------------------------------------------------------------- constants

USER_FIELDS = ("id", "username", "name", "threads_profile_picture_url", "threads_biography", "is_verified")
MEDIA_FIELDS = ("id", "media_product_type", "media_type", "media_url", "permalink", "owner", "username", "text",
                "timestamp", "shortcode", "thumbnail_url", "children", "is_quote_post", "alt_text",
                "link_attachment_url", "has_replies", "is_reply", "is_reply_owned_by_me", "root_post",
                "replied_to", "hide_status", "reply_audience", "quoted_post", "reposted_post", "gif_url",
                "poll_attachment", "topic_tag", "is_spoiler_media", "text_entities", "text_attachment",
                "location_id")
MEDIA_METRICS = ("views", "likes", "replies", "reposts", "quotes", "shares")
USER_METRICS = ("views", "likes", "replies", "reposts", "quotes", "clicks", "followers_count",
                "follower_demographics")
SCOPES = ("threads_basic", "threads_content_publish", "threads_manage_insights", "threads_manage_replies",
          "threads_read_replies", "threads_keyword_search", "threads_manage_mentions", "threads_delete",
          "threads_location_tagging", "threads_profile_discovery")
READ_SCOPES = "threads_basic,threads_read_replies,threads_manage_insights"
THROTTLE_MESSAGES = {
    4: "Application request limit reached",
    17: "User request limit reached",
    613: "Calls to this api have exceeded the rate limit.",
}
API_EPOCH = 1688540400        # `since` may not be older (reference/user)
SHORT_TTL = 3600
LONG_TTL = 60 * 86400
MIN_REFRESH_AGE = 86400
CODE_TTL = 600
RATE_WINDOW = 3600.0
DEFAULT_LIMIT = 25
HOSTS = ("graph.threads.net", "graph.threads.com", "www.threads.net", "www.threads.com", "threads.net",
         "threads.com")
WORDS = ("sunset", "roof", "coffee", "harbour", "neon", "market", "garden", "snow", "studio", "bridge",
         "morning", "skate", "forest", "tram", "rain", "kiln", "ferry", "lantern")


@dataclass
class FakeThreadsConfig:
    posts: int = 12                      # the owner's top-level posts
    followers: int = 50                  # only a count: the API has no follower list
    seed: int = 1
    latency_ms: int = 0
    fail_rate: float = 0.0               # share of data calls answered 500 with transient code 2
    rate_limit: int = 4800               # calls per rolling hour before throttling
    throttle_code: int = 4
    throttle_status: int = 400
    retry_after: bool = False
    max_limit: int = 100
    over_limit: str = "clamp"            # "clamp" | "error"
    reply_edges: str = "both"            # "both" | "replies" | "conversation"
    code_user_id: str = "number"         # "number" | "string"
    code_expiry: bool = False
    oauth_error_code: int = 100
    young_refresh_code: int = 190
    permission_code: int = 10
    timestamp_style: str = "+0000"       # "+0000" | "Z"
    copyrighted: float = 0.3
    replies_max: int = 3                 # top-level replies by others per post: 0..replies_max
    foreign_replies: int | None = None   # owner's replies in others' threads (None: posts // 4, at least 1)
    media_url_ttl: int = 3 * 86400       # signed CDN links stop working after this
    client_id: str = "2000000000000002"
    client_secret: str = "fake-client-secret"
    granted_scopes: str = READ_SCOPES    # what the person ticks in the login window


class FakeThreads(GraphFake):
    """Threads' API as one in-memory world. Thread-safe (one lock)."""

    config: FakeThreadsConfig

    def __init__(self, config: FakeThreadsConfig | None = None, base_url: str = "http://127.0.0.1:0"):
        super().__init__(config or FakeThreadsConfig(), base_url, world="threads-world", faults="threads-faults")
        self.tokens = TokenStore(self.now, prefix="THQWJ", short_ttl=SHORT_TTL, long_ttl=LONG_TTL,
                                 code_ttl=CODE_TTL, code_prefix="AQD")
        self.usage = UsageWindow(self.now, self.config.rate_limit, RATE_WINDOW)
        self.cdn = SignedCdn(f"th-cdn-{self.config.seed}".encode(), self.now, self.config.media_url_ttl, cdn_file)
        self._ids = 0
        self.user: dict = {}
        self.posts: list[dict] = []          # the owner's top-level posts (reposts included)
        self.replies: dict[str, dict] = {}   # every reply, the owner's and others', by id
        self.fans: list[str] = []            # usernames of people who reply
        self._build_world()

    # ------------------------------------------------------------------ the world

    def _new_id(self) -> str:
        self._ids += 1
        return f"18{self._rng.randrange(10**9, 10**10)}{self._ids:05d}"

    def _shortcode(self) -> str:
        return base64.urlsafe_b64encode(self._rng.randbytes(8)).decode()[:11]

    def _words(self, low: int, high: int) -> str:
        return " ".join(self._rng.choice(WORDS) for _ in range(self._rng.randint(low, high))).capitalize()

    def _build_world(self) -> None:
        rng = self._rng
        name = f"{rng.choice(WORDS)}.{rng.choice(WORDS)}{rng.randrange(100)}"
        self.user = {"id": str(rng.randrange(10**16, 10**17)), "username": name,
                     "name": name.replace(".", " ").title(), "biography": f"{rng.choice(WORDS).title()} notes, daily.",
                     "is_verified": False}
        self.fans = [f"fan_{i:03d}.{rng.choice(WORDS)}" for i in range(max(4, self.config.posts // 2))]
        moment = 1_760_000_000
        kinds = ["TEXT_POST", "IMAGE", "VIDEO", "CAROUSEL_ALBUM", "quote", "REPOST_FACADE"]
        for n in range(self.config.posts):
            # The first six cover every kind; the rest are drawn.
            kind = kinds[n] if n < len(kinds) else rng.choices(kinds, weights=(35, 20, 12, 13, 10, 10))[0]
            self.posts.append(self._new_post(moment, kind))
            moment -= rng.randrange(3600, 3 * 86400)
        foreign = self.config.foreign_replies
        for _ in range(max(1, self.config.posts // 4) if foreign is None else foreign):
            moment -= rng.randrange(600, 86400)
            reply = self._new_reply(self._new_id(), moment, author=self.user["username"], root=self._new_id())
            for n in range(rng.randint(0, 2)):
                self._new_reply(reply["id"], moment + 60 * (n + 1), author=rng.choice(self.fans))

    def _new_post(self, timestamp: int, kind: str, text: str | None = None) -> dict:
        rng = self._rng
        media_type = kind
        post: dict = {"id": self._new_id(), "timestamp": timestamp, "shortcode": self._shortcode(),
                      "children": [], "is_quote_post": False, "copyrighted": False}
        if kind == "quote":
            media_type = rng.choice(("TEXT_POST", "IMAGE"))
            post["is_quote_post"], post["quoted_post"] = True, self._new_id()
        if kind == "REPOST_FACADE":
            post["reposted_post"] = self._new_id()
            post["text"] = ""
        else:
            post["text"] = text if text is not None else (
                self._words(2, 8) if media_type == "TEXT_POST" or rng.random() > 0.15 else "")
        post["media_type"] = media_type
        if media_type == "CAROUSEL_ALBUM":
            post["children"] = [{"id": self._new_id(), "media_type": rng.choice(("IMAGE", "IMAGE", "VIDEO"))}
                                for _ in range(rng.randint(2, 4))]
        if media_type == "VIDEO":
            post["copyrighted"] = rng.random() < self.config.copyrighted
        post["counts"] = {"views": rng.randrange(10, 5000), "likes": rng.randrange(0, 300),
                          "reposts": rng.randrange(0, 20), "quotes": rng.randrange(0, 10),
                          "shares": rng.randrange(0, 15)}
        if kind != "REPOST_FACADE":
            for n in range(rng.randint(0, self.config.replies_max)):
                top = self._new_reply(post["id"], timestamp + 300 * (n + 1), author=rng.choice(self.fans))
                for m in range(rng.randint(0, 2)):
                    # Threads of some depth: the owner answers, others answer the answers.
                    author = self.user["username"] if m == 0 and rng.random() < 0.6 else rng.choice(self.fans)
                    answer = self._new_reply(top["id"], top["timestamp"] + 60 * (m + 1), author=author)
                    if author == self.user["username"] and rng.random() < 0.5:
                        self._new_reply(answer["id"], answer["timestamp"] + 30, author=rng.choice(self.fans))
        return post

    def _new_reply(self, parent_id: str, timestamp: int, *, author: str, text: str | None = None,
                   root: str | None = None) -> dict:
        rng = self._rng
        owner = author == self.user["username"]
        parent = self.replies.get(parent_id)
        root_id = root or (parent["root_post"] if parent else parent_id)
        reply = {"id": self._new_id(), "timestamp": timestamp, "author": author, "owner": owner,
                 "replied_to": parent_id, "root_post": root_id, "shortcode": self._shortcode(),
                 "text": text if text is not None else (f"@{parent['author']} " if parent else "") + self._words(1, 5),
                 "media_type": "IMAGE" if owner and rng.random() < 0.2 else "TEXT_POST",
                 "hide_status": "HIDDEN" if not owner and rng.random() < 0.1 else "NOT_HUSHED",
                 "counts": {"views": rng.randrange(0, 200), "likes": rng.randrange(0, 20), "reposts": 0,
                            "quotes": 0, "shares": rng.randrange(0, 3)}}
        if root is not None and parent is None:
            reply["foreign_root"] = True   # the owner's reply under someone else's post
        self.replies[reply["id"]] = reply
        return reply

    # ------------------------------------------------------------------ queries and changes

    def newest_first(self) -> list[dict]:
        return sorted(self.posts, key=lambda p: (p["timestamp"], p["id"]), reverse=True)

    def find_post(self, post_id: str) -> dict:
        for post in self.posts:
            if post["id"] == post_id:
                return post
        raise KeyError(post_id)

    def owner_replies(self) -> list[dict]:
        return [r for r in self.replies.values() if r["owner"]]

    def others_replies(self) -> list[dict]:
        return [r for r in self.replies.values() if not r["owner"]]

    def children_of(self, media_id: str) -> list[dict]:
        return [r for r in self.replies.values() if r["replied_to"] == media_id]

    def descendants_of(self, media_id: str) -> list[dict]:
        found, todo = [], [media_id]
        while todo:
            kids = self.children_of(todo.pop())
            found.extend(kids)
            todo.extend(k["id"] for k in kids)
        return found

    def reply_count(self, media_id: str) -> int:
        """Threads' ``replies`` metric: every reply below, at any depth (unless set_counts
        set it)."""
        item = self.replies.get(media_id) or next((p for p in self.posts if p["id"] == media_id), {})
        override = (item.get("counts") or {}).get("replies")
        return override if override is not None else len(self.descendants_of(media_id))

    def add_post(self, text: str | None = None, media_type: str = "TEXT_POST", **overrides) -> dict:
        """Publish a new top-level post now (newer than every other); media_type as the API's,
        or "quote" / "REPOST_FACADE". No replies yet."""
        with self._lock:
            newest = max((p["timestamp"] for p in self.posts), default=0)
            timestamp = overrides.pop("timestamp", max(int(self.now()), newest + 1))
            saved = self.config.replies_max
            self.config.replies_max = 0
            try:
                post = self._new_post(timestamp, media_type, text)
            finally:
                self.config.replies_max = saved
            post.update(overrides)
            self.posts.append(post)
            return post

    def delete_post(self, post_id: str) -> None:
        with self._lock:
            self.posts.remove(self.find_post(post_id))
            for reply in self.descendants_of(post_id):
                self.replies.pop(reply["id"], None)

    def add_reply(self, post_id: str, text: str, author: str | None = None) -> dict:
        """A reply to ``post_id`` (a post or a reply), by someone else unless ``author`` is
        the owner's username."""
        with self._lock:
            newest = max([r["timestamp"] for r in self.replies.values()] + [0])
            return self._new_reply(post_id, max(int(self.now()), newest + 1), author=author or self._rng.choice(self.fans),
                                   text=text)

    def delete_reply(self, reply_id: str) -> None:
        with self._lock:
            for reply in [self.replies[reply_id], *self.descendants_of(reply_id)]:
                self.replies.pop(reply["id"], None)

    def set_counts(self, media_id: str, **counts: int) -> None:
        """views, likes, reposts, quotes, shares; replies (counted from the replies unless set here)."""
        with self._lock:
            item = self.replies.get(media_id) or self.find_post(media_id)
            unknown = set(counts) - set(item["counts"]) - {"replies"}
            if unknown:
                raise KeyError(f"unknown counts {sorted(unknown)}")
            item["counts"].update(counts)

    # ------------------------------------------------------------------ tokens

    def issue_tokens(self, scopes: str | None = None, *, age: float = 0.0) -> dict:
        """Mint a long-lived token directly (what a finished `archiver auth` leaves);
        ``age`` seconds old. Returns the th_exchange_token JSON plus ``user_id``."""
        with self._lock:
            token = self.tokens.mint("long", scopes or self.config.granted_scopes, issued_at=self.now() - age)
            return {"access_token": token, "token_type": "bearer", "expires_in": self.tokens.expires_in(token),
                    "user_id": self.user["id"], "permissions": self.tokens.tokens[token]["scopes"]}

    # ------------------------------------------------------------------ CDN links

    def file_bytes(self, media_type: str, ident: str) -> bytes:
        """The bytes the CDN serves for an IMAGE or VIDEO item (the export holds the same)."""
        kind = "video" if media_type == "VIDEO" else "image"
        key = self.cdn.key(kind, ident)
        return fake_mp4(key) if kind == "video" else fake_png(key)

    def _cdn_url(self, kind: str, ident: str) -> str:
        self.cdn.ttl = self.config.media_url_ttl
        return self.cdn.url(self.base_url, kind, ident)

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host not in HOSTS and host != urlsplit(self.base_url).hostname:
            return httpx.Response(404, content=b"Not Found")
        path = request.url.path
        if path.startswith("/cdn/"):
            return self.cdn.handle(request)
        if path == "/oauth/authorize":
            return self._authorize(request)
        path = re.sub(r"^/v1\.0(?=/)", "", path)   # unversioned paths are the same API
        if path == "/oauth/access_token":
            return self._exchange_code(request)
        if path == "/access_token":
            return self._long_lived(request)
        if path == "/refresh_access_token":
            return self._refresh(request)
        if request.method != "GET":
            raise GraphError(100, "Unsupported post request.")
        if path == "/debug_token":
            return self._debug_token(request)
        return self._data(request, path)

    # ------------------------------------------------------------------ OAuth

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        try:
            redirect_uri, requested, state = login_request(request.url.params, client_id=self.config.client_id)
        except LoginRefused as refused:
            return self._html(400, str(refused))
        if not requested or any(s not in SCOPES for s in requested) or "threads_basic" not in requested:
            return self._html(400, "Invalid scope: threads_basic is required")
        allowed = set(self.config.granted_scopes.split(","))
        granted = [s for s in requested if s in allowed]
        code = self.tokens.new_code(redirect_uri, ",".join(granted))
        # Meta appends "#_" to the redirect: not part of the code.
        return httpx.Response(302, headers={"Location": f"{redirect_uri}?{urlencode({'code': code, **state})}#_"})

    def _exchange_code(self, request: httpx.Request) -> httpx.Response:
        code_error = self.config.oauth_error_code
        if request.method != "POST":
            raise GraphError(code_error, "Unsupported get request. Use POST with a form body.")
        form = form_body(request)
        if form is None:
            raise GraphError(code_error, "Missing required parameter: client_id")
        if form.get("client_id") != self.config.client_id or not hmac.compare_digest(
                form.get("client_secret", ""), self.config.client_secret):
            raise GraphError(101, "Error validating client secret.")
        if form.get("grant_type") != "authorization_code":
            raise GraphError(code_error, "Invalid grant_type")
        try:
            code = self.tokens.take_code(form.get("code", ""), form.get("redirect_uri"))
        except CodeRefused as refused:
            raise GraphError(code_error, str(refused)) from None
        token = self.tokens.mint("short", code["scopes"])
        user_id = int(self.user["id"]) if self.config.code_user_id == "number" else self.user["id"]
        body: dict = {"access_token": token, "user_id": user_id}
        if self.config.code_expiry:
            body |= {"token_type": "bearer", "expires_in": SHORT_TTL}
        return json_response(200, body)

    def _long_lived(self, request: httpx.Request) -> httpx.Response:
        return long_lived_exchange(request, self.tokens, grant_type="th_exchange_token",
                                   client_secret=self.config.client_secret)

    def _refresh(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        if request.method != "GET":
            raise GraphError(100, "Unsupported post request.")
        if q.get("grant_type") != "th_refresh_token":
            raise GraphError(100, "Invalid parameter: grant_type must be th_refresh_token")
        record = self.tokens.record(q.get("access_token", ""))
        if record["kind"] != "long":
            raise GraphError(190, "Only a long-lived token can be refreshed")
        if self.now() - record["issued_at"] < MIN_REFRESH_AGE:
            raise GraphError(self.config.young_refresh_code,
                             "The access token must be at least 24 hours old to be refreshed")
        token = self.tokens.mint("long", record["scopes"])
        return json_response(200, {"access_token": token, "token_type": "bearer",
                                   "expires_in": self.tokens.expires_in(token)})

    def _debug_token(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        self.tokens.record(q.get("access_token", ""))
        record = self.tokens.record(q.get("input_token", ""))
        return json_response(200, {"data": {
            "application": "archiver-fake", "app_id": self.config.client_id, "is_valid": True,
            "issued_at": int(record["issued_at"]), "expires_at": int(record["expires_at"]),
            "scopes": record["scopes"].split(","), "user_id": self.user["id"]}})

    # ------------------------------------------------------------------ data

    def _data(self, request: httpx.Request, path: str) -> httpx.Response:
        token = caller_token(request)
        record = self.tokens.record(token)
        self.usage.limit = self.config.rate_limit
        if self.usage.full():
            headers = self._usage_headers()
            if self.config.retry_after:
                headers["Retry-After"] = str(max(60, 60 * self.usage.regain_minutes()))
            code = self.config.throttle_code
            raise GraphError(code, THROTTLE_MESSAGES.get(code, "Rate limit reached"),
                             status=self.config.throttle_status, headers=headers)
        self.usage.hit()
        headers = self._usage_headers()
        self._fail_at_random(headers)
        try:
            fields = parse_fields(request.url.params.get("fields", ""), allow_modifiers=False)
        except ValueError:
            raise GraphError(100, "Syntax error: the fields parameter is malformed") from None
        scopes = set(record["scopes"].split(","))
        if "threads_basic" not in scopes:
            self._refuse("threads_basic")
        body = self._route(request, [p for p in path.split("/") if p], fields, scopes, token)
        return json_response(200, body, headers)

    def _refuse(self, scope: str):
        raise GraphError(self.config.permission_code,
                         f"(#{self.config.permission_code}) Application does not have permission for this action "
                         f"(requires {scope})")

    def _route(self, request, parts: list[str], fields: dict, scopes: set[str], token: str) -> dict:
        me = ("me", self.user["id"])
        if len(parts) == 1 and parts[0] in me:
            self._check(fields, USER_FIELDS, "ThreadsUser")
            return self._render_user(fields or {"id": None})
        if len(parts) == 2 and parts[0] in me:
            edge = parts[1]
            if edge == "threads":
                self._check_media_fields(fields)
                items = self._since_until(request, self.posts)
                return self._page(request, items, lambda p: self._render_post(p, fields or {"id": None}),
                                  f"/{self.user['id']}/threads", token)
            if edge == "replies":
                self._needs(scopes, "threads_read_replies")
                self._check_media_fields(fields)
                items = self._since_until(request, self.owner_replies())
                return self._page(request, items, lambda r: self._render_reply(r, fields or {"id": None}),
                                  f"/{self.user['id']}/replies", token)
            if edge == "threads_insights":
                self._needs(scopes, "threads_manage_insights")
                return self._user_insights(request)
        if len(parts) in (1, 2):
            item, kind = self._find(parts[0])
            if item is not None:
                return self._media_route(request, item, kind, parts[1:], fields, scopes, token)
        # No follower list, no guessed edge: what Graph says of an object or edge it lacks.
        what = parts[0] if parts else ""
        raise GraphError(100, f"Unsupported get request. Object with ID '{what}' does not exist, cannot be loaded "
                              "due to missing permissions, or does not support this operation", 33, status=400)

    def _find(self, media_id: str) -> tuple[dict | None, str]:
        for post in self.posts:
            if post["id"] == media_id:
                return post, "post"
            for child in post["children"]:
                if child["id"] == media_id:
                    return {**child, "parent": post}, "child"
        if media_id in self.replies:
            return self.replies[media_id], "reply"
        return None, ""

    def _media_route(self, request, item: dict, kind: str, rest: list[str], fields, scopes, token) -> dict:
        if not rest:
            self._check_media_fields(fields)
            wanted = fields or {"id": None}
            if kind == "post":
                return self._render_post(item, wanted)
            if kind == "reply":
                return self._render_reply(item, wanted)
            return self._render_child(item, wanted)
        edge = rest[0]
        if edge in ("replies", "conversation") and kind != "child":
            self._needs(scopes, "threads_read_replies")
            served = self.config.reply_edges
            if served != "both" and served != edge:
                raise GraphError(100, f"Unsupported get request: the {edge} edge is not available")
            self._check_media_fields(fields)
            found = self.children_of(item["id"]) if edge == "replies" else self.descendants_of(item["id"])
            newest_first = request.url.params.get("reverse", "false").lower() == "true"
            return self._page(request, found, lambda r: self._render_reply(r, fields or {"id": None}),
                              f"/{item['id']}/{edge}", token, newest_first=newest_first)
        if edge == "insights" and (kind == "post" or (kind == "reply" and item["owner"])):
            self._needs(scopes, "threads_manage_insights")
            return self._media_insights(request, item)
        raise GraphError(100, f"Unsupported get request. Unknown edge {edge!r}")

    def _needs(self, scopes: set[str], scope: str) -> None:
        if scope not in scopes:
            self._refuse(scope)

    @staticmethod
    def _check(fields: dict, allowed: tuple[str, ...], node: str) -> None:
        for name in fields:
            if name not in allowed:
                raise GraphError(100, f"(#100) Tried accessing nonexisting field ({name}) on node type ({node})")

    def _check_media_fields(self, fields: dict) -> None:
        self._check(fields, MEDIA_FIELDS, "ThreadsMedia")
        for name in ("children", "root_post", "replied_to", "quoted_post", "reposted_post", "owner"):
            if fields.get(name):
                self._check(fields[name], MEDIA_FIELDS, "ThreadsMedia")

    def _since_until(self, request: httpx.Request, items: list[dict]) -> list[dict]:
        """``since`` / ``until`` (Unix seconds): since ≥ the API's epoch, until ≤ now, since < until."""
        q = request.url.params
        since = until = None
        try:
            if q.get("since"):
                since = int(q["since"])
            if q.get("until"):
                until = int(q["until"])
        except ValueError:
            raise GraphError(100, "Invalid parameter: since and until must be Unix timestamps") from None
        if since is not None and since < API_EPOCH:
            raise GraphError(100, f"Invalid parameter: since must be on or after {API_EPOCH}")
        if until is not None and until > self.now() + 60:
            raise GraphError(100, "Invalid parameter: until may not be in the future")
        if since is not None and until is not None and since >= until:
            raise GraphError(100, "Invalid parameter: since must be before until")
        return [i for i in items if (since is None or i["timestamp"] >= since)
                and (until is None or i["timestamp"] <= until)]

    # ------------------------------------------------------------------ insights

    def _metrics(self, request: httpx.Request, allowed: tuple[str, ...]) -> list[str]:
        wanted = [m for m in (request.url.params.get("metric") or "").split(",") if m]
        if not wanted:
            raise GraphError(100, "(#100) The parameter metric is required")
        for metric in wanted:
            if metric not in allowed:
                raise GraphError(100, f"(#100) metric[{wanted.index(metric)}] must be one of the following values: "
                                      + ", ".join(allowed))
        return wanted

    def _media_insights(self, request: httpx.Request, item: dict) -> dict:
        data = []
        for metric in self._metrics(request, MEDIA_METRICS):
            value = self.reply_count(item["id"]) if metric == "replies" else item["counts"][metric]
            data.append({"name": metric, "period": "lifetime", "values": [{"value": value}],
                         "title": metric.title(), "description": f"The number of {metric} on your post.",
                         "id": f"{item['id']}/insights/{metric}/lifetime"})
        return {"data": data}

    def _user_insights(self, request: httpx.Request) -> dict:
        self._since_until(request, [])
        rng = random.Random(f"user-insights:{self.config.seed}")
        data = []
        for metric in self._metrics(request, USER_METRICS):
            entry: dict = {"name": metric, "period": "day", "title": metric.replace("_", " ").title(),
                           "description": f"The account's {metric}.", "id": f"{self.user['id']}/insights/{metric}/day"}
            if metric == "views":
                day = int(self.now()) // 86400 * 86400
                entry["values"] = [{"value": rng.randrange(0, 500), "end_time": self._time(day - 86400 * n + 25200)}
                                   for n in range(2, 0, -1)]
            elif metric == "clicks":
                entry["link_total_values"] = [{"value": rng.randrange(0, 30), "link_url": "https://example.com/a"},
                                              {"value": rng.randrange(0, 30), "link_url": "https://example.com/b"}]
            elif metric == "follower_demographics":
                if not request.url.params.get("breakdown"):
                    raise GraphError(100, "(#100) follower_demographics requires a breakdown")
                if self.config.followers < 100:
                    raise GraphError(100, "(#100) Not enough followers for demographics (at least 100)")
                entry["total_value"] = {"breakdowns": [{"dimension_keys": [request.url.params["breakdown"]],
                                                        "results": []}]}
            elif metric == "followers_count":
                entry["total_value"] = {"value": self.config.followers}
            else:
                total = sum(p["counts"].get(metric, 0) if metric != "replies" else self.reply_count(p["id"])
                            for p in self.posts)
                entry["total_value"] = {"value": total}
            data.append(entry)
        return {"data": data}

    # ------------------------------------------------------------------ rendering

    def _time(self, epoch: float) -> str:
        stamp = graph_time(epoch)
        return stamp.replace("+0000", "Z") if self.config.timestamp_style == "Z" else stamp

    def _permalink(self, username: str, shortcode: str) -> str:
        return f"https://www.threads.com/@{username}/post/{shortcode}"

    def _render_user(self, fields: dict) -> dict:
        full = {"id": self.user["id"], "username": self.user["username"], "name": self.user["name"],
                "threads_biography": self.user["biography"], "is_verified": self.user["is_verified"],
                "threads_profile_picture_url": self._cdn_url("avatar", self.user["id"])}
        return {name: full[name] for name in fields}

    def _media_fields(self, item: dict, name: str, media_type: str) -> dict:
        """media_url / thumbnail_url: only on media that has a file."""
        if name == "media_url" and media_type in ("IMAGE", "VIDEO"):
            return {"media_url": self._cdn_url("video" if media_type == "VIDEO" else "image", item["id"])}
        if name == "thumbnail_url" and media_type == "VIDEO":
            return {"thumbnail_url": self._cdn_url("thumb", item["id"])}
        return {}

    def _render_post(self, post: dict, fields: dict) -> dict:
        out: dict = {}
        for name, sub in fields.items():
            if name in ("media_url", "thumbnail_url"):
                out |= self._media_fields(post, name, post["media_type"])
            elif name == "id":
                out["id"] = post["id"]
            elif name == "media_product_type":
                out[name] = "THREADS"
            elif name == "media_type":
                out[name] = post["media_type"]
            elif name == "text":
                if post.get("text"):
                    out[name] = post["text"]
            elif name == "timestamp":
                out[name] = self._time(post["timestamp"])
            elif name == "shortcode":
                out[name] = post["shortcode"]
            elif name == "permalink":
                if not post.get("copyrighted"):   # omitted on copyrighted media [C]
                    out[name] = self._permalink(self.user["username"], post["shortcode"])
            elif name == "username":
                out[name] = self.user["username"]
            elif name == "owner":   # only on the owner's own top-level posts [C]
                out[name] = {"id": self.user["id"]}
            elif name == "children":
                if post["media_type"] == "CAROUSEL_ALBUM":   # only on carousels
                    out[name] = {"data": [self._render_child({**c, "parent": post}, sub or {"id": None})
                                          for c in post["children"]]}
            elif name == "is_quote_post":
                out[name] = post["is_quote_post"]
            elif name == "quoted_post":
                if post.get("quoted_post"):
                    out[name] = {"id": post["quoted_post"]}
            elif name == "reposted_post":
                if post.get("reposted_post"):
                    out[name] = {"id": post["reposted_post"]}
            elif name == "has_replies":
                out[name] = bool(self.children_of(post["id"]))
            elif name in ("is_reply", "is_reply_owned_by_me"):
                out[name] = False
            elif name == "reply_audience":
                out[name] = "EVERYONE"
            elif name == "is_spoiler_media":
                out[name] = False
            # Other known fields (alt_text, gif_url, poll_attachment, …) this world never has.
        return out

    def _render_child(self, child: dict, fields: dict) -> dict:
        out: dict = {}
        for name in fields:
            if name in ("media_url", "thumbnail_url"):
                out |= self._media_fields(child, name, child["media_type"])
            elif name == "id":
                out["id"] = child["id"]
            elif name == "media_type":
                out[name] = child["media_type"]
            elif name == "media_product_type":
                out[name] = "THREADS"
            elif name == "timestamp":
                out[name] = self._time(child["parent"]["timestamp"])
            elif name == "username":
                out[name] = self.user["username"]
        return out

    def _render_reply(self, reply: dict, fields: dict) -> dict:
        out: dict = {}
        for name in fields:
            if name in ("media_url", "thumbnail_url"):
                out |= self._media_fields(reply, name, reply["media_type"])
            elif name == "id":
                out["id"] = reply["id"]
            elif name == "media_product_type":
                out[name] = "THREADS"
            elif name in ("media_type", "text", "shortcode", "hide_status"):
                out[name] = reply[name]
            elif name == "timestamp":
                out[name] = self._time(reply["timestamp"])
            elif name == "username":
                out[name] = reply["author"]
            elif name == "permalink":
                out[name] = self._permalink(reply["author"], reply["shortcode"])
            elif name == "is_reply":
                out[name] = True
            elif name == "is_reply_owned_by_me":
                out[name] = reply["owner"]
            elif name == "has_replies":
                out[name] = bool(self.children_of(reply["id"]))
            elif name in ("root_post", "replied_to"):
                out[name] = {"id": reply[name]}
            elif name == "is_quote_post":
                out[name] = False
            # ``owner`` is never on a reply: only on the owner's top-level posts [C].
        return out

    # ------------------------------------------------------------------ paging and responses

    def _page(self, request: httpx.Request, items: list[dict], render, edge: str, token: str,
              newest_first: bool = True) -> dict:
        """Keyset paging with opaque cursors; ``limit`` above ``max_limit`` is clamped or
        refused (``over_limit``)."""
        params = dict(request.url.params)
        paging = CursorPaging(default_limit=DEFAULT_LIMIT, max_limit=self.config.max_limit, version="v1.0")
        try:
            limit = int(params.get("limit") or DEFAULT_LIMIT)
        except ValueError:
            raise GraphError(100, "Invalid parameter: limit must be an integer") from None
        if limit > self.config.max_limit and self.config.over_limit == "clamp":
            params["limit"] = str(self.config.max_limit)
        return paging.page(params, items, render, base_url=self.base_url, edge=edge, token=token,
                           newest_first=newest_first)

    def _usage_headers(self) -> dict[str, str]:
        return self.usage.headers(business_id=self.user["id"], business_type="threads")


# --------------------------------------------------------------------------- real HTTP


def serve(fake: FakeThreads, host: str = "127.0.0.1", port: int = 0):
    """Serve ``fake`` over real HTTP in a daemon thread; returns ``(server, thread)``.
    Stop with ``server.shutdown(); server.server_close()``."""
    from archiver.sim.server import serve_fake

    return serve_fake(fake, host, port, name="fake-threads", crash_response=lambda error: httpx.Response(
        500, json={"error": {"message": f"fake crashed: {type(error).__name__}", "type": "OAuthException", "code": 1}}))


def export_world_of(fake: FakeThreads, following: int = 20):
    """What the account's Threads export holds, from the fake's world: the owner's posts
    (reposts are not in it) and replies with the same seconds, texts and file bytes as the
    API gives (so each merges with its API row), and follower / following lists, which only
    the export holds (``config.followers`` followers; some of them repliers)."""
    from archiver_connectors.threads.sim.export import ThreadsExportPerson, ThreadsExportPost, ThreadsExportWorld

    rng = random.Random(f"threads-export:{fake.config.seed}")
    posts = []
    for post in fake.posts:
        if post["media_type"] == "REPOST_FACADE":
            continue
        parts = post["children"] or ([post] if post["media_type"] in ("IMAGE", "VIDEO") else [])
        posts.append(ThreadsExportPost(post["timestamp"], post["text"] or None,
                                       media=[fake.file_bytes(p["media_type"], p["id"]) for p in parts]))
    for reply in fake.owner_replies():
        media = [fake.file_bytes("IMAGE", reply["id"])] if reply["media_type"] == "IMAGE" else []
        posts.append(ThreadsExportPost(reply["timestamp"], reply["text"] or None, media=media, is_reply=True))
    names = list(fake.fans) + [f"reader_{n:04d}.{rng.choice(WORDS)}" for n in range(fake.config.followers)]
    start = 1_700_000_000
    followers = [ThreadsExportPerson(name, start + n * 3_600, name.split(".")[0].replace("_", " ").title())
                 for n, name in enumerate(names[:fake.config.followers])]
    followed = [ThreadsExportPerson(f"maker_{n:03d}.{rng.choice(WORDS)}", start + n * 7_200)
                for n in range(following)]
    return ThreadsExportWorld(username=fake.user["username"], display_name=fake.user["name"],
                              bio=fake.user["biography"], posts=sorted(posts, key=lambda p: -p.timestamp),
                              followers=followers, following=followed,
                              exported_at=max((p.timestamp for p in posts), default=start) + 86_400)


def write_matching_export(fake: FakeThreads, path: str | Path, *, inside_instagram: bool = False) -> Path:
    """The account's Threads "Download your information" export as Meta would build it now
    (``export_world_of``), written by threads/sim/export.py's builder."""
    from archiver_connectors.threads.sim.export import write_export

    return write_export(Path(path).expanduser(), export_world_of(fake), inside_instagram=inside_instagram)


def main(argv: list[str] | None = None) -> None:
    """``archiver simulate threads --port N ...``: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="archiver simulate threads", description="Serve a fake of the Threads API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--posts", "--media", "--videos", dest="posts", type=int, default=12)
    parser.add_argument("--followers", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=4800, help="calls per rolling hour")
    parser.add_argument("--throttle-code", type=int, default=4, choices=(4, 17, 613))
    parser.add_argument("--max-limit", type=int, default=100, help="the largest page size honoured")
    parser.add_argument("--over-limit", default="clamp", choices=("clamp", "error"))
    parser.add_argument("--reply-edges", default="both", choices=("both", "replies", "conversation"))
    parser.add_argument("--scopes", default=READ_SCOPES, help="the scopes the person grants in the login window")
    parser.add_argument("--client-id", default=FakeThreadsConfig.client_id)
    parser.add_argument("--client-secret", default=FakeThreadsConfig.client_secret)
    parser.add_argument("--request-log", metavar="PATH", help="append \"METHOD PATH STATUS\" per request")
    parser.add_argument("--write-export", metavar="PATH",
                        help="also write this account's \"Download your information\" export (a .zip, or a "
                             "folder) with the same posts, to try `archiver import` on")
    parser.add_argument("--inside-instagram", action="store_true",
                        help="write the export as an Instagram download with a threads/ folder")
    args = parser.parse_args(argv)
    config = FakeThreadsConfig(
        posts=args.posts, followers=args.followers, seed=args.seed, latency_ms=args.latency_ms,
        fail_rate=args.fail_rate, rate_limit=args.rate_limit, throttle_code=args.throttle_code,
        max_limit=args.max_limit, over_limit=args.over_limit, reply_edges=args.reply_edges,
        granted_scopes=args.scopes, client_id=args.client_id, client_secret=args.client_secret)
    fake = FakeThreads(config)
    if args.write_export:
        written = write_matching_export(fake, args.write_export, inside_instagram=args.inside_instagram)
        print(f"wrote the account's export to {written}", flush=True)
    if args.request_log:
        from archiver.sim.server import log_requests

        log_requests(fake, args.request_log)
    server, _thread = serve(fake, args.host, args.port)
    from archiver.sim.server import serve_until_signalled

    serve_until_signalled(server, fake)


if __name__ == "__main__":
    main()
