"""A stateful fake of Facebook's Graph API, faithful to shared/platforms/facebook.md (§7
"What a faithful fake must do / reject") and instagram.md §3–§5 for the shared mechanics.

One ``FakeFacebook`` plays every Facebook host at one base URL:

- Facebook Login (www.facebook.com):  GET [/vNN.N]/dialog/oauth  -> 302 ...?code=...&state=...#_=_
- graph.facebook.com:                  GET [/vNN.N]/oauth/access_token (code -> short-lived user token;
                                            grant_type=fb_exchange_token -> long-lived user token)
                                       GET /me, /me/permissions, /me/accounts, /me/posts,
                                           /{page-id}, /{page-id}/published_posts|posts|feed,
                                           /{post-id}, /{post-id}/comments, /{comment-id}/comments,
                                           /{video-id}
- a signed, expiring CDN:              GET /cdn/v/<key>_n.jpg?oe=<hex>&oh=<sig>, /cdn/o1/<key>.mp4?...

Use it in-process with ``httpx.MockTransport(fake.handle)``, over loopback with
``serve(fake)``, or as a process (``archiver simulate facebook --port N``).

The world: one person (the profile, with its own posts and friends' comments on them) who
manages two Pages; the first Page has ``posts`` published posts of every kind (status,
photo, album, video, link share) with comments and replies by fans. ``advance(seconds)``
moves the fake's clock (tokens, CDN links, the rate window) without sleeping.

What it rejects, as the notes say Facebook does:
- tokens: user and Page tokens are distinct; Page tokens come only from ``/me/accounts``;
  a short-lived user token lives 1 h, a long-lived one ``long_ttl`` (60 days): expired ->
  400 + 190/463; ``fb_exchange_token`` refuses an expired token (190/463); a Page token made
  from a long-lived user token has no expiry, one from a short-lived token 1 h;
  ``change_password()`` kills every token (190/460); ``remove_app()`` too (190/458);
  ``remove_page_role(page_id)`` kills that Page's tokens and takes it off /me/accounts.
- permissions per token: no ``pages_read_engagement`` -> 200 on the Page's posts; no
  ``pages_read_user_content`` -> 200 on their comments; no ``user_posts`` -> 200 on /me/posts;
  no ``pages_show_list`` -> 200 on /me/accounts; a user token on a Page's edges ->
  ``user_token_on_page_code`` (200 or 190, [U]).
- fields: only what is asked for (plus ``id``); an unknown field -> 100 "Tried accessing
  nonexisting field"; the post fields deprecated since v3.3 (type, link, object_id, caption,
  description, name, source) -> 100; ``summary`` only when asked (``.summary(true)``);
  ``.limit(0)`` gives no items.
- paging: opaque cursors, ``limit`` (default 25, at most 100), ``paging.next`` (a full URL
  holding the caller's token) absent on the last page; comments ``filter=toplevel`` by
  default, ``filter=stream`` gives the replies flat with ``parent``; ``order``.
- CDN links carry ``oe=<hex epoch>`` and answer 403 once it has passed.
- usage: ``X-App-Usage`` for user tokens, ``X-Business-Use-Case-Usage`` (``"type": "pages"``)
  and ``X-Page-Usage`` for Page tokens; above ``rate_limit`` calls per rolling hour, code 32
  (``page_throttle_code``: 32 or 80001) for Page tokens and 4 for user tokens, with HTTP
  ``throttle_status``. ``block_next(n)``: the next n data calls get 368 (temporarily blocked).

Choices where the notes say [U], each a knob of ``FakeFacebookConfig``:
``shares_when_zero`` ("absent" or "zero"), ``video_source`` ("attachment": videos carry
``media.source``; "node": only ``/{video-id}?fields=source`` gives it), ``moderate`` (the
person's MODERATE task on the Page; without it comments come without ``id``),
``authorless_share`` (share of comments served without ``from``), ``since_supported``
(whether the posts edges honour ``since``), ``user_token_on_page_code``,
``page_throttle_code``, ``throttle_status``, ``error_type``.
"""

from __future__ import annotations

import argparse
import hmac
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

import httpx

from archiver_connectors.meta.sim.graph import (
    CodeRefused,
    CursorPaging,
    Fields,
    GraphError,
    GraphFake,
    LoginRefused,
    SignedCdn,
    TokenStore,
    UsageWindow,
    caller_token,
    cdn_file,
    error_response,
    graph_time,
    json_response,
    login_request,
    parse_fields,
)

GRAPH_VERSION = "v25.0"
SHORT_TTL = 3600
LONG_TTL = 60 * 86400
CODE_TTL = 600
RATE_WINDOW = 3600.0
DEFAULT_LIMIT = 25
NEVER = math.inf   # the expiry of a Page token made from a long-lived user token
PERMISSIONS = ("public_profile", "email", "pages_show_list", "pages_read_engagement", "pages_read_user_content",
               "read_insights", "user_posts", "user_photos", "user_videos", "user_friends")
TASKS = ("ANALYZE", "ADVERTISE", "MODERATE", "CREATE_CONTENT", "MANAGE")
THROTTLE_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80001: "(#80001) There have been too many calls to this Page account. Wait a bit and try again.",
}

# Fields each node answers (facebook.md §2.1, §2.2); anything else is code 100.
USER_FIELDS = ("id", "name", "first_name", "last_name", "link", "picture", "email")
PAGE_FIELDS = ("id", "name", "username", "about", "category", "link", "fan_count", "followers_count",
               "picture", "cover", "access_token", "tasks", "verification_status", "website")
POST_FIELDS = ("id", "message", "story", "created_time", "updated_time", "permalink_url", "full_picture",
               "status_type", "is_published", "is_hidden", "from", "attachments", "shares", "reactions",
               "comments", "privacy", "place", "message_tags")
DEPRECATED_POST_FIELDS = ("caption", "description", "link", "name", "object_id", "source", "type")
ATTACHMENT_FIELDS = ("media_type", "type", "media", "url", "unshimmed_url", "title", "description", "target",
                     "subattachments", "description_tags")
COMMENT_FIELDS = ("id", "message", "created_time", "from", "like_count", "comment_count", "parent",
                  "attachment", "permalink_url", "is_hidden", "message_tags", "can_comment")
VIDEO_FIELDS = ("id", "source", "picture", "length", "description", "created_time", "permalink_url")
ACCOUNT_FIELDS = ("id", "name", "access_token", "tasks", "category", "category_list")
REACTION_FIELDS = ("id", "name", "type")

WORDS = ("sunset", "roof", "timelapse", "city", "rain", "coffee", "harbour", "neon", "market", "garden",
         "snow", "studio", "bridge", "morning", "skate", "forest")
FIRST = ("Ada", "Bo", "Cleo", "Dag", "Eva", "Finn", "Gro", "Hugo", "Ida", "Jon", "Kim", "Liv")
LAST = ("Berg", "Holm", "Lund", "Dahl", "Strand", "Vik", "Moe", "Aas")


@dataclass
class FakeFacebookConfig:
    posts: int = 20                     # the first Page's published posts
    profile_posts: int = 8              # the person's own profile posts
    followers: int = 120                # the Page's followers_count (no API lists them)
    fans: int = 100                     # the Page's fan_count
    seed: int = 1
    latency_ms: int = 0
    fail_rate: float = 0.0              # share of data calls answered 500 with transient code 2
    rate_limit: int = 4800              # calls per rolling window before throttling
    max_limit: int = 100                # the largest `limit=` an edge honours: up to 100 clamped to it, above an error
    rate_window: float = RATE_WINDOW    # seconds (an hour)
    page_throttle_code: int = 32        # 32 (Page-level) or 80001 (Pages BUC) for Page tokens [U]
    user_throttle_code: int = 4         # 4 (app) or 17 (user) for user tokens
    throttle_status: int = 400          # 400 or 403 [U]
    error_type: str = "OAuthException"
    short_ttl: int = SHORT_TTL
    long_ttl: int = LONG_TTL
    media_url_ttl: int = 3 * 86400      # signed CDN links stop working after this
    comments_max: int = 5               # top-level comments per post: 0..comments_max
    replies_max: int = 2
    moderate: bool = True               # the person has the MODERATE task on the Pages [U for the others]
    authorless_share: float = 0.1       # comments served without `from` [U]
    shares_when_zero: str = "absent"    # "absent" | "zero" [U]
    video_source: str = "attachment"    # "attachment" | "node" [U]
    since_supported: bool = True        # posts edges honour `since` [U]
    user_token_on_page_code: int = 200  # 200 | 190 [U]
    client_id: str = "2000000000000002"
    client_secret: str = "fake-client-secret"   # what every fake of a Meta or Google app accepts
    granted_scopes: str = ("public_profile,pages_show_list,pages_read_engagement,pages_read_user_content,"
                           "user_posts,user_photos,user_videos")


def with_id(fields: Fields) -> Fields:
    """``fields`` with ``id`` first: a node always comes with its id (notes §7)."""
    out = Fields(id=None)
    out.update(fields)
    out.modifiers = dict(fields.modifiers)
    return out


def _nonexisting(name: str, node: str) -> GraphError:
    return GraphError(100, f"(#100) Tried accessing nonexisting field ({name}) on node type ({node})")


def _no_object(ident: str) -> GraphError:
    return GraphError(100, f"Unsupported get request. Object with ID '{ident}' does not exist, cannot be loaded "
                           "due to missing permissions, or does not support this operation", 33)


# --------------------------------------------------------------------------- the fake


class FakeFacebook(GraphFake):
    """Facebook's Graph API as one in-memory world. Thread-safe (one lock)."""

    config: FakeFacebookConfig

    def __init__(self, config: FakeFacebookConfig | None = None, base_url: str = "http://127.0.0.1:0"):
        super().__init__(config or FakeFacebookConfig(), base_url)
        self.cdn = SignedCdn(f"fb-cdn-{self.config.seed}".encode(), self.now, self.config.media_url_ttl, cdn_file)
        # Codes, and tokens: {"kind": short|long|page, "scopes", "issued_at", "expires_at"
        # (NEVER for a Page token of a long-lived user token), "page_id", "user_token" (a
        # Page token's origin), "password_epoch", "dead" (why it died: (subcode, message))}.
        self.tokens = TokenStore(self.now, prefix="EAAB", short_ttl=self.config.short_ttl,
                                 long_ttl=self.config.long_ttl, code_ttl=CODE_TTL, code_prefix="AQD")
        self._page_tokens: dict[tuple[str, str], str] = {}   # (user token, page id) -> Page token
        self._password_epoch = 0
        self.usage = UsageWindow(self.now, self.config.rate_limit, self.config.rate_window)
        self.paging = CursorPaging(default_limit=DEFAULT_LIMIT, version=GRAPH_VERSION)
        self._blocked = 0
        self._ids = 0
        self.person: dict = {}
        self.pages: list[dict] = []
        self.people: list[dict] = []          # fans and friends: {"id", "name"}
        self.profile_posts: list[dict] = []
        self.deleted_posts: list[dict] = []
        self._build_world()

    # ------------------------------------------------------------------ the world

    def _new_id(self, digits: int = 15) -> str:
        self._ids += 1
        return f"{self._rng.randrange(10 ** (digits - 6), 10 ** (digits - 5))}{self._ids:05d}"

    def _build_world(self) -> None:
        rng = self._rng
        self.person = {"id": self._new_id(16), "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}"}
        self.people = [{"id": self._new_id(16), "name": f"{rng.choice(FIRST)} {rng.choice(LAST)} {i}"}
                       for i in range(12)]
        main: dict[str, Any] = {"id": self._new_id(15), "name": "Roof Cam Studio", "username": "roofcamstudio",
                "about": "Sunsets from the roof, every week.", "category": "Photographer",
                "followers_count": self.config.followers, "fan_count": self.config.fans,
                "tasks": list(TASKS) if self.config.moderate else ["ANALYZE", "ADVERTISE", "CREATE_CONTENT"],
                "cover_version": 1, "picture_version": 1, "posts": [], "role": True}
        side: dict[str, Any] = {"id": self._new_id(15), "name": "Harbour Market Stall", "username": None,
                "about": "Fresh fish on Saturdays.", "category": "Local business", "followers_count": 7,
                "fan_count": 6, "tasks": list(TASKS), "cover_version": 1, "picture_version": 1, "posts": [],
                "role": True}
        self.pages = [main, side]
        for page in self.pages:
            page["link"] = f"https://www.facebook.com/{page['username'] or page['id']}"
        moment = 1_714_000_000
        kinds = ("status", "photo", "album", "video", "link")
        for n in range(self.config.posts):
            main["posts"].append(self._new_post(main["id"], moment, kinds[n % len(kinds)]))
            moment -= rng.randrange(3600, 3 * 86400)
        side["posts"].append(self._new_post(side["id"], 1_713_000_000, "status"))
        moment = 1_714_100_000
        for n in range(self.config.profile_posts):
            self.profile_posts.append(self._new_post(self.person["id"], moment, ("status", "photo", "link")[n % 3],
                                                     profile=True))
            moment -= rng.randrange(3600, 5 * 86400)

    def _new_post(self, owner_id: str, timestamp: int, kind: str, *, profile: bool = False, **overrides) -> dict:
        rng = self._rng
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7))).capitalize()
        post = {"id": f"{owner_id}_{self._new_id(18)}", "owner": owner_id, "profile": profile, "kind": kind,
                "message": text if (kind == "status" or rng.random() > 0.2) else None,
                "story": None, "created_time": timestamp, "updated_time": timestamp,
                "reactions": rng.randrange(0, 400), "shares": rng.choice((0, 0, rng.randrange(1, 30))),
                "parts": [], "link": None, "comments": []}
        if kind == "photo":
            post["parts"] = [{"kind": "photo", "id": self._new_id(16)}]
        elif kind == "album":
            post["album_id"] = self._new_id(16)
            post["parts"] = [{"kind": rng.choice(("photo", "photo", "video")), "id": self._new_id(16)}
                             for _ in range(rng.randint(2, 4))]
        elif kind == "video":
            post["parts"] = [{"kind": "video", "id": self._new_id(16)}]
        elif kind == "link":
            slug = rng.choice(WORDS)
            post["link"] = {"url": f"https://example.org/{slug}?ref=fb&id={rng.randrange(1000)}",
                            "title": f"All about the {slug}", "description": f"A long read on the {slug}."}
        if kind == "status" and not post["message"]:
            post["message"] = "Hello"
        for _ in range(rng.randint(0, self.config.comments_max)):
            self._add_comment(post, timestamp + rng.randrange(60, 86400))
        post.update(overrides)
        return post

    def _add_comment(self, post: dict, timestamp: int, text: str | None = None, author: dict | None = None,
                     parent: dict | None = None) -> dict:
        rng = self._rng
        owner = self._owner_of(post)
        who = author or (rng.choice(self.people) if parent is None or rng.random() < 0.5 else owner)
        comment = {"id": f"{post['id'].split('_')[1]}_{self._new_id(15)}", "post_id": post["id"],
                   "message": text or f"Love the {rng.choice(WORDS)}!", "created_time": timestamp,
                   "from": dict(who), "like_count": rng.randrange(0, 20),
                   "parent": parent["id"] if parent else None,
                   "authorless": author is None and rng.random() < self.config.authorless_share}
        post["comments"].append(comment)
        if parent is None and text is None:
            for n in range(rng.randint(0, self.config.replies_max)):
                self._add_comment(post, timestamp + 60 * (n + 1), parent=comment)
        return comment

    def _owner_of(self, post: dict) -> dict:
        if post["profile"]:
            return {"id": self.person["id"], "name": self.person["name"]}
        page = self.page(post["owner"])
        return {"id": page["id"], "name": page["name"]}

    # ------------------------------------------------------------------ world changes

    def page(self, page_id: str | None = None) -> dict:
        """A Page by id (the first, the archived one, by default)."""
        if page_id is None:
            return self.pages[0]
        for page in self.pages:
            if page["id"] == page_id:
                return page
        raise KeyError(page_id)

    def all_posts(self) -> list[dict]:
        return [p for page in self.pages for p in page["posts"]] + self.profile_posts

    def find_post(self, post_id: str) -> dict:
        for post in self.all_posts():
            if post["id"] == post_id:
                return post
        raise KeyError(post_id)

    def newest_first(self, posts: list[dict] | None = None) -> list[dict]:
        return sorted(self.page()["posts"] if posts is None else posts,
                      key=lambda p: (p["created_time"], p["id"]), reverse=True)

    def add_post(self, kind: str = "status", *, page_id: str | None = None, profile: bool = False,
                 **overrides) -> dict:
        """Publish a post now (newer than every other) on a Page, or on the profile."""
        with self._lock:
            posts = self.profile_posts if profile else self.page(page_id)["posts"]
            newest = max((p["created_time"] for p in posts), default=0)
            timestamp = overrides.pop("created_time", max(int(self.now()), newest + 1))
            owner = self.person["id"] if profile else self.page(page_id)["id"]
            post = self._new_post(owner, timestamp, kind, profile=profile, **overrides)
            posts.append(post)
            return post

    def edit_message(self, post_id: str, message: str) -> None:
        with self._lock:
            post = self.find_post(post_id)
            post["message"], post["updated_time"] = message, int(self.now())

    def delete_post(self, post_id: str) -> None:
        with self._lock:
            post = self.find_post(post_id)
            for owner in [*(p["posts"] for p in self.pages), self.profile_posts]:
                if post in owner:
                    owner.remove(post)
            self.deleted_posts.append(post)

    def add_comment(self, post_id: str, text: str, author: dict | None = None, parent_id: str | None = None) -> dict:
        with self._lock:
            post = self.find_post(post_id)
            parent = next(c for c in post["comments"] if c["id"] == parent_id) if parent_id else None
            return self._add_comment(post, int(self.now()), text, author or self._rng.choice(self.people), parent)

    def delete_comment(self, comment_id: str) -> None:
        with self._lock:
            for post in self.all_posts():
                post["comments"] = [c for c in post["comments"] if comment_id not in (c["id"], c["parent"])]

    def change_cover(self, page_id: str | None = None) -> None:
        with self._lock:
            self.page(page_id)["cover_version"] += 1

    def visible_comments(self, post: dict) -> list[dict]:
        """What the API gives of a post's comments: a profile post's comments by others are
        omitted (notes §0)."""
        if post["profile"]:
            return [c for c in post["comments"] if c["from"]["id"] == self.person["id"]]
        return list(post["comments"])

    # ------------------------------------------------------------------ tokens

    def _mint(self, kind: str, scopes: str, *, issued_at: float | None = None, **extra) -> str:
        return self.tokens.mint(kind, scopes, issued_at=issued_at, page_id=None, user_token=None, dead=None,
                                password_epoch=self._password_epoch, **extra)

    def issue_user_token(self, scopes: str | None = None, *, age: float = 0.0, kind: str = "long") -> dict:
        """A user token as a finished Facebook Login leaves it (``kind`` long or short),
        ``age`` seconds old: the fb_exchange_token answer."""
        with self._lock:
            token = self._mint(kind, scopes or self.config.granted_scopes, issued_at=self.now() - age)
            return {"access_token": token, "token_type": "bearer", "expires_in": self.tokens.expires_in(token)}

    def page_token_for(self, user_token: str, page_id: str | None = None) -> str:
        """The Page token /me/accounts gives this user token for a Page (one per pair)."""
        with self._lock:
            page = self.page(page_id)
            key = (user_token, page["id"])
            if key not in self._page_tokens:
                user = self.tokens.tokens[user_token]
                token = self._mint("page", user["scopes"])
                self.tokens.tokens[token].update(
                    page_id=page["id"], user_token=user_token,
                    expires_at=NEVER if user["kind"] == "long" else user["expires_at"])
                self._page_tokens[key] = token
            return self._page_tokens[key]

    def expire_tokens(self) -> None:
        """Every token has expired (Page tokens of long-lived users have no expiry: 460 kills them)."""
        with self._lock:
            for record in self.tokens.tokens.values():
                if record["expires_at"] != NEVER:
                    record["expires_at"] = min(record["expires_at"], self.now() - 1)

    def change_password(self) -> None:
        """The person changed their password: every token so far dies (190/460)."""
        with self._lock:
            self._password_epoch += 1

    def remove_app(self) -> None:
        """The person removed the app: every token dies (190/458)."""
        with self._lock:
            for record in self.tokens.tokens.values():
                record["dead"] = record["dead"] or (458, "Error validating access token: The user has not "
                                                         "authorized application.")

    revoke_all = remove_app   # as the other fakes name it

    def delete_page(self, page_id: str | None = None) -> None:
        """The Page is gone: every read of it or its posts is 100/33 (its tokens still parse)."""
        with self._lock:
            self.pages.remove(self.page(page_id))

    def remove_page_role(self, page_id: str | None = None) -> None:
        """The person lost their role on the Page: its Page tokens die, /me/accounts drops it."""
        with self._lock:
            page = self.page(page_id)
            page["role"] = False
            for record in self.tokens.tokens.values():
                if record["kind"] == "page" and record["page_id"] == page["id"]:
                    record["dead"] = (None, "Error validating access token: The user is not an administrator, "
                                            "editor, or moderator of this Page.")

    def reset_usage(self) -> None:
        """Forget the calls made so far (the rate window starts empty)."""
        with self._lock:
            self.usage.hits.clear()

    def block_next(self, calls: int) -> None:
        """The next ``calls`` data calls are refused with 368 (temporarily blocked)."""
        with self._lock:
            self._blocked = calls

    def _token_record(self, token: str) -> dict:
        record = self.tokens.info(token)
        if record is None:
            return self.tokens.record(token)   # unknown: 190/467
        origin = self.tokens.info(record["user_token"]) if record["user_token"] else record
        if record["password_epoch"] < self._password_epoch:
            raise GraphError(190, "Error validating access token: The session has been invalidated because the "
                                  "user changed their password or Facebook has changed the session for security "
                                  "reasons.", 460)
        for dead in (record["dead"], (origin or {}).get("dead") if record["kind"] == "page" else None):
            if dead:
                raise GraphError(190, dead[1], dead[0])
        return self.tokens.record(token)   # expired: 190/463

    # ------------------------------------------------------------------ CDN links

    def cdn_url(self, kind: str, ident: str) -> str:
        """A fresh signed link to the file of ``kind`` ("image" or "video") of ``ident``."""
        return self.cdn.url(self.base_url, kind, ident)

    def file_bytes(self, kind: str, ident: str) -> bytes:
        """The bytes the CDN serves for ``cdn_url(kind, ident)``."""
        match = re.search(r"/cdn/(?:v|o1)/([0-9a-f]{24})", self.cdn_url(kind, ident))
        assert match is not None
        return self.cdn.body(kind, match.group(1))[0]

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/cdn/"):
            return self.cdn.handle(request)
        path = re.sub(r"^/v\d+\.\d+(?=/)", "", path)   # unversioned paths use the default version
        if path == "/dialog/oauth":
            return self._login(request)
        if request.method != "GET":
            raise GraphError(100, "Unsupported post request.")
        if path == "/oauth/access_token":
            return self._access_token(request)
        return self._data(request, path)

    # ------------------------------------------------------------------ OAuth

    def _login(self, request: httpx.Request) -> httpx.Response:
        try:
            redirect_uri, requested, state = login_request(
                request.url.params, client_id=self.config.client_id, response_type_optional=True,
                app_refused="Invalid App ID: the provided app ID does not look like a valid app ID.",
                redirect_refused="URL Blocked: This redirect failed because the redirect URI is not whitelisted")
        except LoginRefused as refused:
            return self._html(400, str(refused))
        unknown = [s for s in requested if s not in PERMISSIONS]
        if unknown:
            return self._html(400, f"Invalid Scopes: {', '.join(unknown)}")
        allowed = set(self.config.granted_scopes.split(","))
        granted = sorted({"public_profile", *(s for s in requested if s in allowed)})
        code = self.tokens.new_code(redirect_uri, ",".join(granted))
        # Facebook appends "#_=_" to the redirect: not part of the code.
        return httpx.Response(302, headers={"Location": f"{redirect_uri}?{urlencode({'code': code, **state})}#_=_"})

    def _access_token(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        if q.get("client_id") != self.config.client_id:
            raise GraphError(101, "Error validating application. Invalid application ID.")
        if not hmac.compare_digest(q.get("client_secret", ""), self.config.client_secret):
            raise GraphError(1, "Error validating client secret.")
        if q.get("grant_type") == "fb_exchange_token":
            record = self._token_record(q.get("fb_exchange_token", ""))   # an expired one: 190/463
            if record["kind"] == "page":
                raise GraphError(190, "Invalid OAuth access token: a Page token cannot be exchanged here")
            token = self._mint("long", record["scopes"])
            return json_response(200, {"access_token": token, "token_type": "bearer",
                                       "expires_in": self.tokens.expires_in(token)})
        if q.get("grant_type") not in (None, "authorization_code"):
            raise GraphError(100, "Invalid parameter: unsupported grant_type")
        try:
            code = self.tokens.take_code(q.get("code", ""), q.get("redirect_uri"))
        except CodeRefused as refused:
            raise GraphError(100, str(refused), 36009) from None
        token = self._mint("short", code["scopes"])
        return json_response(200, {"access_token": token, "token_type": "bearer",
                                   "expires_in": self.tokens.expires_in(token)})

    # ------------------------------------------------------------------ data

    def _data(self, request: httpx.Request, path: str) -> httpx.Response:
        token = caller_token(request)
        record = self._token_record(token)
        if self.usage.full():
            code = self.config.page_throttle_code if record["kind"] == "page" else self.config.user_throttle_code
            raise GraphError(code, THROTTLE_MESSAGES.get(code, "Rate limit reached"), status=self.config.throttle_status,
                             headers=self._usage_headers(record))
        self.usage.hit()
        headers = self._usage_headers(record)
        if self._blocked:
            self._blocked -= 1
            raise GraphError(368, "It looks like you were misusing this feature by going too fast. You've been "
                                  "temporarily blocked from using it.", headers=headers)
        self._fail_at_random(headers)
        try:
            fields = parse_fields(request.url.params.get("fields", ""))
        except ValueError as error:
            raise GraphError(100, f"Syntax error \"{error}\" in the fields parameter") from None
        try:
            body = self._route(request, path, fields, token, record)
        except GraphError as error:
            error.headers = {**headers, **error.headers}
            raise
        return json_response(200, body, headers)

    def _scopes(self, record: dict) -> set[str]:
        return set(record["scopes"].split(","))

    def _need(self, record: dict, permission: str) -> None:
        if permission not in self._scopes(record):
            raise GraphError(200, f"(#200) The user hasn't authorized the application to perform this action "
                                  f"(requires {permission})")

    def _route(self, request, path: str, fields: Fields, token: str, record: dict) -> dict:
        parts = [p for p in path.split("/") if p]
        if not parts or len(parts) > 2:
            raise GraphError(100, "Unknown path components")
        is_page_token = record["kind"] == "page"
        head = parts[0]
        if head == "me":
            head = record["page_id"] if is_page_token else self.person["id"]
        if head == self.person["id"] and not is_page_token:
            return self._user_route(request, parts[1:], fields, token, record)
        for page in self.pages:
            if page["id"] == head:
                return self._page_route(request, page, parts[1:], fields, token, record)
        for post in self.all_posts():
            if post["id"] == head:
                return self._post_route(request, post, parts[1:], fields, token, record)
            for comment in post["comments"]:
                if comment["id"] == head:
                    self._visible(post, record)
                    return self._comment_route(request, post, comment, parts[1:], fields, token, record)
            for part in post["parts"]:
                if part["id"] == head and part["kind"] == "video" and len(parts) == 1:
                    self._visible(post, record)
                    self._check(fields, VIDEO_FIELDS, "Video")
                    return self._render_video(post, part, fields or Fields(id=None))
        raise _no_object(parts[0])

    def _visible(self, post: dict, record: dict) -> None:
        """A post is read with its owner's token: the Page's for a Page post, the person's
        for a profile post."""
        if post["profile"]:
            if record["kind"] == "page":
                raise _no_object(post["id"])
            self._need(record, "user_posts")
            return
        if record["kind"] != "page":
            self._user_token_on_page()
        elif record["page_id"] != post["owner"]:
            raise _no_object(post["id"])
        self._need(record, "pages_read_engagement")

    def _user_token_on_page(self) -> None:
        if self.config.user_token_on_page_code == 190:
            raise GraphError(190, "This method must be called with a Page Access Token")
        raise GraphError(200, "(#200) This endpoint requires the pages_read_engagement permission and a Page "
                              "access token")

    # -- the person ---------------------------------------------------------------------
    def _user_route(self, request, rest: list[str], fields, token: str, record: dict) -> dict:
        if not rest:
            self._check(fields, USER_FIELDS, "User")
            return self._render_user(fields or Fields(id=None, name=None))
        edge = rest[0]
        if edge == "permissions":
            granted = self._scopes(record)
            return {"data": [{"permission": p, "status": "granted"} for p in PERMISSIONS if p in granted]}
        if edge == "accounts":
            self._need(record, "pages_show_list")
            self._check(fields, ACCOUNT_FIELDS, "Page")
            wanted = fields or Fields(id=None, name=None, access_token=None, category=None, tasks=None)
            managed = [p for p in self.pages if p["role"]]
            return self._page(request, [{"timestamp": n, "id": p["id"], "page": p} for n, p in enumerate(managed)],
                              lambda item: self._render_account(item["page"], wanted, token),
                              "/me/accounts", token, newest_first=False)
        if edge in ("posts", "feed"):
            self._need(record, "user_posts")
            return self._posts_edge(request, self.profile_posts, fields, token, f"/{self.person['id']}/{edge}")
        raise GraphError(100, f"(#100) Tried accessing nonexisting field ({edge}) on node type (User)")

    # -- a Page -------------------------------------------------------------------------
    def _page_route(self, request, page: dict, rest: list[str], fields, token: str, record: dict) -> dict:
        if record["kind"] == "page" and record["page_id"] != page["id"]:
            raise _no_object(page["id"])
        if not rest:
            self._check(fields, PAGE_FIELDS, "Page")
            return self._render_page(page, fields or Fields(id=None, name=None))
        if record["kind"] != "page":
            self._user_token_on_page()
        edge = rest[0]
        if edge in ("published_posts", "posts", "feed"):
            self._need(record, "pages_read_engagement")
            return self._posts_edge(request, page["posts"], fields, token, f"/{page['id']}/{edge}")
        raise GraphError(100, f"(#100) Tried accessing nonexisting field ({edge}) on node type (Page)")

    def _posts_edge(self, request, posts: list[dict], fields, token: str, edge: str) -> dict:
        self._check_post_fields(fields)
        wanted = fields or Fields(id=None, message=None, created_time=None)
        items = [{**p, "timestamp": p["created_time"]} for p in posts]
        since = request.url.params.get("since")
        if since and self.config.since_supported:
            try:
                items = [i for i in items if i["timestamp"] >= int(since)]
            except ValueError:
                raise GraphError(100, "(#100) The since parameter is not a valid time") from None
        return self._page(request, items, lambda p: self._render_post(p, wanted, token), edge, token)

    # -- a post and its comments ----------------------------------------------------------
    def _post_route(self, request, post: dict, rest: list[str], fields, token: str, record: dict) -> dict:
        self._visible(post, record)
        if not rest:
            self._check_post_fields(fields)
            return self._render_post({**post, "timestamp": post["created_time"]},
                                     fields or Fields(id=None, message=None, created_time=None), token)
        if rest == ["comments"]:
            return self._comments_edge(request, post, None, fields, token, record)
        raise GraphError(100, f"(#100) Tried accessing nonexisting field ({rest[0]}) on node type (Post)")

    def _comment_route(self, request, post: dict, comment: dict, rest: list[str], fields, token: str,
                       record: dict) -> dict:
        if not rest:
            self._check(fields, COMMENT_FIELDS, "Comment")
            return self._render_comment(comment, fields or Fields(id=None, message=None, created_time=None), post)
        if rest == ["comments"]:
            return self._comments_edge(request, post, comment, fields, token, record)
        raise GraphError(100, f"(#100) Tried accessing nonexisting field ({rest[0]}) on node type (Comment)")

    def _comments_edge(self, request, post: dict, parent: dict | None, fields, token: str, record: dict) -> dict:
        if not post["profile"]:
            self._need(record, "pages_read_user_content")
        self._check(fields, COMMENT_FIELDS, "Comment")
        q = request.url.params
        how = q.get("filter", "toplevel")
        if how not in ("toplevel", "stream"):
            raise GraphError(100, "(#100) filter must be one of the following values: toplevel, stream")
        order = q.get("order", "chronological")
        if order not in ("chronological", "reverse_chronological"):
            raise GraphError(100, "(#100) order must be one of the following values: chronological, "
                                  "reverse_chronological")
        visible = self.visible_comments(post)
        if parent is not None:
            chosen = [c for c in visible if c["parent"] == parent["id"]]
        elif how == "stream":
            chosen = visible
        else:
            chosen = [c for c in visible if c["parent"] is None]
        wanted = fields or Fields(id=None, message=None, created_time=None)
        items = [{**c, "timestamp": c["created_time"]} for c in chosen]
        edge = f"/{(parent or post)['id']}/comments"
        body = self._page(request, items, lambda c: self._render_comment(c, wanted, post), edge, token,
                          newest_first=order == "reverse_chronological")
        if q.get("summary") in ("true", "1", "total_count"):
            body["summary"] = {"order": order, "total_count": len(chosen), "can_comment": True}
        return body

    # ------------------------------------------------------------------ rendering

    @staticmethod
    def _check(fields: Fields, allowed: tuple[str, ...], node: str) -> None:
        for name in fields:
            if name not in allowed:
                raise _nonexisting(name, node)

    def _check_post_fields(self, fields: Fields) -> None:
        for name, field in fields.items():
            if name in DEPRECATED_POST_FIELDS:
                raise GraphError(100, f"(#12) {name} field is deprecated for versions v3.3 and higher")
            if name not in POST_FIELDS:
                raise _nonexisting(name, "Post")
            if name == "attachments" and field:
                self._check_attachment_fields(field)
            if name == "comments" and field:
                self._check(field, COMMENT_FIELDS, "Comment")
            if name == "reactions" and field:
                self._check(field, REACTION_FIELDS, "Reaction")

    def _check_attachment_fields(self, fields: Fields) -> None:
        for name, field in fields.items():
            if name not in ATTACHMENT_FIELDS:
                raise _nonexisting(name, "StoryAttachment")
            if name == "subattachments" and field:
                self._check_attachment_fields(field)

    def _render_user(self, fields: Fields) -> dict:
        fields = with_id(fields)
        full = {"id": self.person["id"], "name": self.person["name"],
                "first_name": self.person["name"].split()[0], "last_name": self.person["name"].split()[-1],
                "link": f"https://www.facebook.com/app_scoped_user_id/{self.person['id']}/",
                "picture": {"data": {"url": self.cdn_url("image", f"person:{self.person['id']}"),
                                     "is_silhouette": False, "height": 50, "width": 50}}}
        return {name: full[name] for name in fields if name in full}

    def _render_page(self, page: dict, fields: Fields) -> dict:
        fields = with_id(fields)
        out: dict[str, Any] = {}
        for name in fields:
            if name == "picture":
                out[name] = {"data": {"url": self.cdn_url("image", f"picture:{page['id']}:{page['picture_version']}"),
                                      "is_silhouette": False, "height": 200, "width": 200}}
            elif name == "cover":
                out[name] = {"cover_id": f"{page['id']}{page['cover_version']}", "offset_x": 0, "offset_y": 50,
                             "source": self.cdn_url("image", f"cover:{page['id']}:{page['cover_version']}"),
                             "id": f"{page['id']}{page['cover_version']}"}
            elif name in ("access_token", "tasks"):
                raise GraphError(100, f"(#100) The {name} field is only given by /me/accounts")
            elif page.get(name) is not None:
                out[name] = page[name]
        return out

    def _render_account(self, page: dict, fields: Fields, user_token: str) -> dict:
        out: dict[str, Any] = {}
        for name in fields:
            if name == "access_token":
                out[name] = self.page_token_for(user_token, page["id"])
            elif name == "category_list":
                out[name] = [{"id": "2208", "name": page["category"]}]
            elif page.get(name) is not None:
                out[name] = page[name]
        return out

    def _render_video(self, post: dict, part: dict, fields: Fields) -> dict:
        fields = with_id(fields)
        full = {"id": part["id"], "source": self.cdn_url("video", part["id"]),
                "picture": self.cdn_url("image", f"thumb:{part['id']}"), "length": 12.5,
                "created_time": graph_time(post["created_time"]),
                "permalink_url": f"/{post['owner']}/videos/{part['id']}/"}
        return {name: full[name] for name in fields if name in full}

    def _part(self, post: dict, part: dict) -> dict:
        """One photo or video as an attachment (or subattachment) with every field."""
        if part["kind"] == "video":
            media: dict[str, Any] = {"image": {"height": 720, "width": 1280,
                                               "src": self.cdn_url("image", f"thumb:{part['id']}")}}
            if self.config.video_source == "attachment":
                media["source"] = self.cdn_url("video", part["id"])
            return {"media_type": "video", "type": "video_inline", "media": media,
                    "target": {"id": part["id"], "url": f"https://www.facebook.com/{post['owner']}/videos/{part['id']}/"},
                    "url": f"https://www.facebook.com/{post['owner']}/videos/{part['id']}/"}
        url = f"https://www.facebook.com/photo.php?fbid={part['id']}"
        return {"media_type": "photo", "type": "photo", "url": url, "target": {"id": part["id"], "url": url},
                "media": {"image": {"height": 720, "width": 960, "src": self.cdn_url("image", f"photo:{part['id']}")}}}

    def _attachments(self, post: dict) -> list[dict]:
        kind = post["kind"]
        if kind in ("photo", "video"):
            return [self._part(post, post["parts"][0])]
        if kind == "album":
            url = f"https://www.facebook.com/media/set/?set=a.{post['album_id']}"
            first = self._part(post, post["parts"][0])
            return [{"media_type": "album", "type": "album", "url": url, "title": "Timeline photos",
                     "target": {"id": post["album_id"], "url": url}, "media": first["media"],
                     "subattachments": {"data": [self._part(post, p) for p in post["parts"]]}}]
        if kind == "link":
            link = post["link"]
            return [{"media_type": "link", "type": "share", "url": "https://l.facebook.com/l.php?"
                     + urlencode({"u": link["url"], "h": "AT0abc"}), "unshimmed_url": link["url"],
                     "title": link["title"], "description": link["description"],
                     "target": {"url": link["url"]},
                     "media": {"image": {"height": 630, "width": 1200,
                                         "src": self.cdn_url("image", f"link:{post['id']}")}}}]
        return []

    def _project(self, node: dict, fields: Fields | None) -> dict:
        """``node`` cut down to ``fields`` (recursively; lists of nodes too)."""
        if not fields:
            return node
        out: dict[str, Any] = {}
        for name, field in fields.items():
            if name not in node:
                continue
            value = node[name]
            if isinstance(value, dict) and field:
                if isinstance(value.get("data"), list):
                    out[name] = {"data": [self._project(v, field) for v in value["data"]]}
                else:
                    out[name] = self._project(value, field)
            else:
                out[name] = value
        return out

    def _render_post(self, post: dict, fields: Fields, token: str) -> dict:
        fields = with_id(fields)
        out: dict[str, Any] = {}
        owner = self._owner_of(post)
        for name, field in fields.items():
            if name == "id":
                out["id"] = post["id"]
            elif name in ("created_time", "updated_time"):
                out[name] = graph_time(post[name])
            elif name == "message":
                if post.get("message"):
                    out[name] = post["message"]
            elif name == "story":
                if post.get("story"):
                    out[name] = post["story"]
            elif name == "permalink_url":
                out[name] = f"https://www.facebook.com/{post['owner']}/posts/{post['id'].split('_')[1]}"
            elif name == "full_picture":
                attachments = self._attachments(post)
                if attachments and attachments[0].get("media"):
                    out[name] = attachments[0]["media"]["image"]["src"]
            elif name == "status_type":
                out[name] = {"status": "mobile_status_update", "photo": "added_photos", "album": "added_photos",
                             "video": "added_video", "link": "shared_story"}[post["kind"]]
            elif name == "is_published":
                out[name] = True
            elif name == "is_hidden":
                out[name] = False
            elif name == "from":
                out[name] = self._project(owner, field)
            elif name == "attachments":
                attachments = self._attachments(post)
                if attachments:
                    out[name] = {"data": [self._project(a, field) for a in attachments]}
            elif name == "shares":
                if post["shares"] or self.config.shares_when_zero == "zero":
                    out[name] = {"count": post["shares"]}
            elif name == "reactions":
                total = post["reactions"]
                people = [{"id": p["id"], "name": p["name"], "type": "LIKE"} for p in self.people[:min(total, 3)]]
                out[name] = self._edge_summary(people, total, fields.modifiers.get(name, {}),
                                               {"viewer_reaction": "NONE"})
            elif name == "comments":
                visible = self.visible_comments(post)
                top = [c for c in visible if c["parent"] is None]
                wanted = field or Fields(id=None, message=None, created_time=None)
                rendered = [self._render_comment(c, wanted, post) for c in top]
                out[name] = self._edge_summary(rendered, len(visible) if not post["profile"] else len(post["comments"]),
                                               fields.modifiers.get(name, {}), {"order": "ranked", "can_comment": True})
            elif name == "privacy":
                out[name] = self._project({"value": "ALL_FRIENDS" if post["profile"] else "EVERYONE",
                                           "description": "Your friends" if post["profile"] else "Public",
                                           "friends": "", "allow": "", "deny": ""}, field)
        return out

    @staticmethod
    def _edge_summary(items: list[dict], total: int, mods: dict[str, str], extra: dict) -> dict:
        """A ``reactions`` / ``comments`` expansion: ``.limit(n)`` items, and a ``summary``
        only when asked with ``.summary(true)`` or ``.summary(total_count)``."""
        try:
            limit = int(mods.get("limit", DEFAULT_LIMIT))
        except ValueError:
            raise GraphError(100, "(#100) limit must be an integer") from None
        body: dict[str, Any] = {"data": items[:limit]}
        if mods.get("summary") in ("true", "1", "total_count"):
            body["summary"] = {"total_count": total, **extra}
        return body

    def _render_comment(self, comment: dict, fields: Fields, post: dict) -> dict:
        fields = with_id(fields)
        moderator = self.config.moderate or post["profile"]
        out: dict[str, Any] = {}
        for name, field in fields.items():
            if name == "id":
                if moderator:   # without the MODERATE task the id is withheld (notes §7)
                    out["id"] = comment["id"]
            elif name == "created_time":
                out[name] = graph_time(comment["created_time"])
            elif name == "from":
                if not comment.get("authorless"):
                    out[name] = self._project(comment["from"], field)
            elif name == "parent":
                if comment["parent"] and moderator:
                    out[name] = {"id": comment["parent"]}
            elif name == "comment_count":
                out[name] = sum(1 for c in post["comments"] if c["parent"] == comment["id"])
            elif name == "permalink_url":
                out[name] = (f"https://www.facebook.com/{post['owner']}/posts/{post['id'].split('_')[1]}"
                             f"?comment_id={comment['id'].split('_')[1]}")
            elif name == "is_hidden":
                out[name] = False
            elif name == "can_comment":
                out[name] = True
            elif name in ("message", "like_count"):
                out[name] = comment[name]
        return out

    # ------------------------------------------------------------------ paging and responses

    def _page(self, request: httpx.Request, items: list[dict], render: Callable[[dict], dict], edge: str, token: str,
              newest_first: bool = True) -> dict:
        """Keyset paging over ``items`` by (timestamp, id) with opaque cursors. A ``limit``
        above 100 is an error; one above the edge's own ``max_limit`` is clamped to it [U]."""
        params = dict(request.url.params)
        if params.get("limit", "").isdigit() and self.config.max_limit < int(params["limit"]) <= 100:
            params["limit"] = str(self.config.max_limit)
        return self.paging.page(params, items, render, base_url=self.base_url, edge=edge, token=token,
                                newest_first=newest_first)

    def _error(self, error: GraphError) -> httpx.Response:
        return error_response(error, error_type=self.config.error_type)

    def _usage_headers(self, record: dict) -> dict[str, str]:
        """X-App-Usage for a user token; X-Business-Use-Case-Usage (keyed by the Page, type
        "pages") and X-Page-Usage for a Page token (notes §4)."""
        if record["kind"] != "page":
            return self.usage.headers()
        return self.usage.headers(app=False, business_id=record["page_id"], business_type="pages", page=True)


# --------------------------------------------------------------------------- real HTTP


def serve(fake: FakeFacebook, host: str = "127.0.0.1", port: int = 0):
    """Serve ``fake`` over real HTTP in a daemon thread; returns ``(server, thread)``."""
    from archiver.sim.server import serve_fake

    return serve_fake(fake, host, port, name="fake-facebook", crash_response=lambda error: httpx.Response(
        500, json={"error": {"message": f"fake crashed: {type(error).__name__}", "type": "OAuthException", "code": 1}}))


def export_world_of(fake: FakeFacebook):
    """The person's "Download your information" export world as Meta would build it from
    the fake's world now (facebook/sim/export.py's FacebookExportWorld): the profile's
    posts at the same seconds with the same texts (so each merges with its API row) and
    the same photo bytes the CDN serves, the comments the person wrote, friends (the fake's
    people), followers and following — names only, as the export gives them."""
    from archiver_connectors.facebook.sim.export import (
        ExportComment,
        ExportMedia,
        ExportPerson,
        ExportPost,
        FacebookExportWorld,
    )

    with fake._lock:
        owner = fake.person["name"]
        world = FacebookExportWorld(owner_name=owner, username=owner.lower().replace(" ", "."),
                                    exported_at=int(fake.now()))
        for post in sorted(fake.profile_posts, key=lambda p: p["created_time"]):
            media = [ExportMedia(f"{part['id']}_n_{part['id']}.jpg", fake.file_bytes("image", f"photo:{part['id']}"))
                     for part in post["parts"] if part["kind"] == "photo"]
            world.posts.append(ExportPost(post["created_time"], post["message"], media=media,
                                          link=(post["link"] or {}).get("url")))
            world.comments += [ExportComment(c["created_time"], c["message"], on=owner)
                               for c in post["comments"] if c["from"]["id"] == fake.person["id"]]
        since = 1_600_000_000
        world.friends = [ExportPerson(p["name"], since + 86_400 * n) for n, p in enumerate(fake.people)]
        world.followers = [ExportPerson(p["name"], since + 3 * 86_400 * n) for n, p in enumerate(fake.people[:4])]
        world.following = [ExportPerson(page["name"], since + 86_400 * n) for n, page in enumerate(fake.pages)]
    return world


def write_matching_export(fake: FakeFacebook, path: str) -> Path:
    """Write ``export_world_of(fake)`` at ``path`` (a .zip, or a folder for any other name)."""
    from archiver_connectors.facebook.sim.export import write_export

    target = Path(path).expanduser()
    return write_export(target, export_world_of(fake), zipped=target.suffix == ".zip")


def main(argv: list[str] | None = None) -> None:
    """``archiver simulate facebook --port N ...``: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="archiver simulate facebook",
                                     description="Serve a fake of Facebook's Graph API (a Page and a profile).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--posts", "--media", dest="posts", type=int, default=20, help="the Page's posts")
    parser.add_argument("--profile-posts", type=int, default=8)
    parser.add_argument("--followers", type=int, default=120)
    parser.add_argument("--fans", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=4800, help="calls per rolling hour")
    parser.add_argument("--throttle-code", type=int, default=32, help="for Page tokens: 32 or 80001")
    parser.add_argument("--no-moderate", action="store_true", help="the person lacks the MODERATE task")
    parser.add_argument("--video-source", default="attachment", choices=("attachment", "node"))
    parser.add_argument("--max-limit", type=int, default=100, help="the largest page size honoured")
    parser.add_argument("--request-log", metavar="PATH", help="append \"METHOD PATH STATUS\" per request")
    parser.add_argument("--client-id", default=FakeFacebookConfig.client_id)
    parser.add_argument("--client-secret", default=FakeFacebookConfig.client_secret)
    parser.add_argument("--write-export", metavar="PATH",
                        help="also write the profile's \"Download your information\" export (a .zip, or a folder) "
                             "with the same posts, to try `archiver import` on")
    args = parser.parse_args(argv)
    config = FakeFacebookConfig(
        posts=args.posts, profile_posts=args.profile_posts, followers=args.followers, fans=args.fans, seed=args.seed,
        latency_ms=args.latency_ms, fail_rate=args.fail_rate, rate_limit=args.rate_limit,
        page_throttle_code=args.throttle_code, moderate=not args.no_moderate, video_source=args.video_source,
        max_limit=args.max_limit, client_id=args.client_id, client_secret=args.client_secret)
    fake = FakeFacebook(config)
    if args.write_export:
        print(f"wrote the profile's export to {write_matching_export(fake, args.write_export)}", flush=True)
    if args.request_log:
        from archiver.sim.server import log_requests

        log_requests(fake, args.request_log)
    server, _thread = serve(fake, args.host, args.port)
    print(f"fake Facebook at {fake.base_url}: Page {fake.page()['name']!r} ({fake.page()['id']}), "
          f"profile {fake.person['name']!r}", flush=True)
    from archiver.sim.server import serve_until_signalled

    serve_until_signalled(server, fake)


if __name__ == "__main__":
    main()
