"""A stateful fake of Bluesky (PLC directory, PDS, AppView), faithful to
shared/platforms/bluesky.md §10 (fixture checklist).

One ``FakeBluesky`` answers every host at one base URL, routing by path; an account may
point ``plc_url``, ``pds_url`` and ``appview_url`` at it separately or all at once.

- PLC directory:   GET /did:plc:<id>                      (DID document)
- did:web:         GET /.well-known/did.json              (``config.did_method = "web"``)
- PDS / entryway:  com.atproto.identity.resolveHandle, server.createSession,
                   server.refreshSession, sync.getLatestCommit, sync.getRepo (a real
                   repository CAR from fake_repo.build_repo_car), sync.listBlobs, sync.getBlob
- AppView:         app.bsky.actor.getProfile, graph.getFollowers, graph.getFollows,
                   feed.getAuthorFeed, feed.getPostThread

What it enforces (the real platform refuses these too): XRPC method (GET query / POST
procedure; else 404 XRPCNotSupported or 400 InvalidRequest), required parameters (400
InvalidRequest), the app password (401 AuthenticationRequired), an expired access token
(400 ExpiredToken), a rotated refresh token reused (400 ExpiredToken "Token has been
revoked" — or InvalidToken with ``revoked_refresh_error``), an access token used as a
refresh token and the reverse (400 InvalidToken). PDS reads need no token, but a token
that is sent must be valid. The public AppView refuses any PDS session token (400
InvalidToken): a client must never send it there. getPostThread returns replies down to
``depth`` (default 6) only: below it a reply has no ``replies`` key, and only its own
``replyCount`` (every postView carries one) says there is more (notes §2, §6).

Knobs for what the notes leave unconfirmed: ``cursor_on_last_page`` (AppView lists end
with a cursor on the last non-empty page, then an empty page; else no cursor on the last
page), ``revoked_refresh_error``. Fault knobs like the TikTok fake: ``latency_ms``,
``fail_rate`` (500 InternalServerError), ``rate_limit`` per ``rate_window`` seconds (429
RateLimitExceeded with RateLimit-* headers, the reset as epoch seconds), ``vanished``
(every request fails to connect). ``advance(seconds)`` moves the fake's clock.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import quote

import httpx

from archiver.sim.server import FakeClock
from archiver_connectors.bluesky.repo import make_tid
from archiver_connectors.bluesky.sim.repo import blob_cid, blob_ref, build_repo_car

QUERIES = {
    "com.atproto.identity.resolveHandle", "com.atproto.sync.getLatestCommit", "com.atproto.sync.getRepo",
    "com.atproto.sync.listBlobs", "com.atproto.sync.getBlob", "app.bsky.actor.getProfile",
    "app.bsky.graph.getFollowers", "app.bsky.graph.getFollows", "app.bsky.feed.getAuthorFeed",
    "app.bsky.feed.getPostThread",
}
PROCEDURES = {"com.atproto.server.createSession", "com.atproto.server.refreshSession"}
APPVIEW = {n for n in QUERIES if n.startswith("app.bsky.")}
T0 = 1_700_000_000   # the world's first post (epoch seconds)


@dataclass
class FakeBlueskyConfig:
    handle: str = "alice.test"
    app_password: str = "abcd-efgh-ijkl-mnop"
    did_method: str = "plc"             # "plc" | "web"
    posts: int = 12
    followers: int = 30
    following: int = 8
    likes: int = 5
    replies_per_post: int = 2           # by other people, under every third post
    seed: int = 1
    access_ttl: int = 7200
    refresh_ttl: int = 90 * 86400
    cursor_on_last_page: bool = True    # [unconfirmed] AppView lists: see the module doc
    revoked_refresh_error: str = "ExpiredToken"   # or "InvalidToken"
    latency_ms: int = 0
    fail_rate: float = 0.0
    rate_limit: int = 3000              # requests per window, all endpoints (notes §8)
    rate_window: int = 300
    vanished: bool = False


def fake_png(key: str) -> bytes:
    from archiver_connectors.tiktok.sim.fake import fake_png as png

    return png(f"bsky:{key}")


class FakeBluesky(FakeClock):
    def __init__(self, config: FakeBlueskyConfig | None = None, base_url: str = "http://127.0.0.1:8798"):
        self.config = config or FakeBlueskyConfig()
        self.base_url = base_url.rstrip("/")
        self.clock_offset = 0.0
        self._lock = threading.RLock()
        self._rng = random.Random(f"world:{self.config.seed}")
        self._fault_rng = random.Random(f"faults:{self.config.seed}")
        self.log: collections.deque = collections.deque(maxlen=10_000)   # (method, nsid or path, status)
        self._access: dict[str, float] = {}            # access token -> expires at
        self._refresh: dict[str, dict] = {}            # refresh token -> {"expires_at", "used"}
        self._rate_hits: collections.deque = collections.deque()
        self._car_cache: tuple[str, bytes] | None = None
        self.did = (f"did:plc:{random.Random(self.config.seed).randbytes(12).hex()[:24]}"
                    if self.config.did_method == "plc" else "did:web:" + quote(self._host(), safe=""))
        self.user_handle = self.config.handle
        self.records: dict[str, dict] = {}             # "collection/rkey" -> value (JSON form)
        self.blobs: dict[str, tuple[bytes, str]] = {}  # cid -> (bytes, mime)
        self.followers: list[dict] = []                # profileViews
        self.follows_views: dict[str, dict] = {}       # did -> profileView of people the owner follows
        self.replies: dict[str, list[dict]] = {}       # owner post uri -> replies (postViews, nested)
        self.counts: dict[str, dict] = {}              # owner post uri -> like/repost counts
        self._tid_micros = T0 * 1_000_000
        self._rev_micros = 0
        self.rev = self._next_rev()
        self.avatar_versions: dict[str, int] = {}      # did -> current picture version (1 if unset)
        # An HTTP status every CDN avatar answers with (a picture host that is down), or None.
        self.avatar_fault: int | None = None
        self._build_world()

    # ------------------------------------------------------------------ clock and ids

    def _host(self) -> str:
        return self.base_url.split("://", 1)[1]

    def _next_tid(self) -> str:
        self._tid_micros += 3_600_000_000
        return make_tid(self._tid_micros)

    def _next_rev(self) -> str:
        """A commit's rev is a TID of the moment it was made (and always grows), as a PDS's."""
        self._rev_micros = max(self._rev_micros + 1, int(self.now() * 1_000_000))
        return make_tid(self._rev_micros)

    def _bump(self) -> None:
        self.rev = self._next_rev()

    # ------------------------------------------------------------------ the world
    def _person(self, prefix: str, n: int) -> dict:
        did = f"did:plc:{prefix}{n:0{24 - len(prefix)}d}"
        return {"did": did, "handle": f"{prefix}{n}.test", "displayName": f"{prefix.title()} {n}",
                "avatar": self._avatar_link(did), "indexedAt": "2024-01-01T00:00:00.000Z",
                "createdAt": "2023-06-01T00:00:00.000Z"}

    # ------------------------------------------------------------------ avatars (the AppView's CDN)
    # Profile views name an avatar by a CDN link whose path changes with the picture (the
    # real one holds the blob's CID). The links are written with a "{base}" placeholder
    # and rendered in each answer, so they name the address the fake is served on even
    # when it was bound after the world was built.
    def _avatar_link(self, did: str) -> str:
        return f"{{base}}/cdn/avatar/{did}/v{self.avatar_versions.get(did, 1)}.jpg"

    def _views_of(self, did: str) -> Iterator[dict]:
        """Every profile view of ``did`` the fake hands out (follower lists, follows, authors)."""
        yield from (v for v in self.followers if v.get("did") == did)
        yield from (v for v in self.follows_views.values() if v.get("did") == did)
        for replies in self.replies.values():
            yield from (r["author"] for r in replies if r["author"].get("did") == did)

    def change_avatar(self, did: str) -> str:
        """The person sets a new picture: a new CDN link (the old one still answers)."""
        with self._lock:
            self.avatar_versions[did] = self.avatar_versions.get(did, 1) + 1
            link = self._avatar_link(did)
            for view in self._views_of(did):
                view["avatar"] = link
            return link.replace("{base}", self.base_url)

    def _avatar(self, path: str) -> httpx.Response:
        """/cdn/avatar/<did>/v<n>.jpg: a known person's current or an earlier picture."""
        did, _, name = path[len("/cdn/avatar/"):].partition("/")
        version = name.removeprefix("v").removesuffix(".jpg")
        known = did == self.did or next(self._views_of(did), None) is not None
        if not known or not version.isdigit() or not 1 <= int(version) <= self.avatar_versions.get(did, 1):
            return httpx.Response(404, text="Not Found", headers={"Content-Type": "text/plain"})
        if self.avatar_fault is not None:
            return httpx.Response(self.avatar_fault, text="Service Unavailable",
                                  headers={"Content-Type": "text/plain"})
        return httpx.Response(200, content=fake_png(f"{did}:v{version}"), headers={"Content-Type": "image/jpeg"})

    def add_blob(self, data: bytes, mime: str) -> dict:
        cid, _ = blob_cid(data)
        self.blobs[cid] = (data, mime)
        return blob_ref(data, mime)

    def _build_world(self) -> None:
        cfg = self.config
        avatar = self.add_blob(fake_png("avatar"), "image/png")
        self.records["app.bsky.actor.profile/self"] = {
            "$type": "app.bsky.actor.profile", "displayName": "Alice 🌱", "description": "Gardens and code.",
            "avatar": avatar, "createdAt": "2023-05-01T00:00:00.000Z"}
        for i in range(cfg.posts):
            self.add_post(text=f"Seedlings ünd 🌱 #{i} #garden", with_image=(i % 2 == 0), bump=False)
        self.followers = [self._person("fan", i) for i in range(cfg.followers)]
        for i in range(cfg.following):
            person = self._person("star", i)
            self.follows_views[person["did"]] = person
            self.records[f"app.bsky.graph.follow/{self._next_tid()}"] = {
                "$type": "app.bsky.graph.follow", "subject": person["did"], "createdAt": "2024-02-01T00:00:00.000Z"}
        for i in range(cfg.likes):
            self.records[f"app.bsky.feed.like/{self._next_tid()}"] = {
                "$type": "app.bsky.feed.like", "createdAt": "2024-03-01T00:00:00.000Z",
                "subject": {"uri": f"at://did:plc:other/app.bsky.feed.post/{i}", "cid": "bafyreiother"}}
        self.records[f"app.bsky.feed.repost/{self._next_tid()}"] = {
            "$type": "app.bsky.feed.repost", "createdAt": "2024-03-02T00:00:00.000Z",
            "subject": {"uri": "at://did:plc:other/app.bsky.feed.post/x", "cid": "bafyreiother"}}
        # Replies from the audience under every third top-level post.
        for index, uri in enumerate(self.post_uris()):
            if index % 3 == 0:
                for r in range(cfg.replies_per_post):
                    self.add_reply(uri, author=self._person("fan", r), text=f"Lovely! ({r})", bump_count=False)
        self._bump()

    def post_uris(self) -> list[str]:
        return [f"at://{self.did}/{key}" for key in sorted(self.records)
                if key.startswith("app.bsky.feed.post/")]

    def add_post(self, text: str = "A new post", *, with_image: bool = False, created_at: str | None = None,
                 bump: bool = True) -> str:
        with self._lock:
            rkey = self._next_tid()
            encoded = text.encode()
            value: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": text, "langs": ["en"],
                     "createdAt": created_at or time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self.now())),
                     "facets": [{"index": {"byteStart": encoded.find(b"#garden"),
                                           "byteEnd": encoded.find(b"#garden") + 7},
                                 "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "garden"}]}]
                     if b"#garden" in encoded else []}
            if with_image:
                value["embed"] = {"$type": "app.bsky.embed.images", "images": [{
                    "alt": f"picture for {rkey}", "aspectRatio": {"width": 16, "height": 16},
                    "image": self.add_blob(fake_png(rkey), "image/png")}]}
            self.records[f"app.bsky.feed.post/{rkey}"] = value
            uri = f"at://{self.did}/app.bsky.feed.post/{rkey}"
            self.counts[uri] = {"likeCount": 1, "repostCount": 0, "quoteCount": 0}
            if bump:
                self._bump()
            return uri

    def add_reply(self, post_uri: str, *, author: dict | None = None, text: str = "Nice", parent: str | None = None,
                  bump_count: bool = True) -> str:
        """A reply by someone else (not in the owner's repo: the rev does not move)."""
        with self._lock:
            author = author or self._person("fan", 99)
            uri = f"at://{author['did']}/app.bsky.feed.post/{self._next_tid()}"
            view = {"uri": uri, "cid": "bafyreireply", "author": author,
                    "record": {"$type": "app.bsky.feed.post", "text": text,
                               "createdAt": "2024-04-01T00:00:00.000Z",
                               "reply": {"root": {"uri": post_uri, "cid": "x"}, "parent": {"uri": parent or post_uri,
                                                                                           "cid": "x"}}},
                    "replyCount": 0, "likeCount": 0, "repostCount": 0, "quoteCount": 0,
                    "indexedAt": "2024-04-01T00:00:01.000Z"}
            self.replies.setdefault(post_uri, []).append(view)
            return uri

    def delete_reply(self, uri: str) -> None:
        """Someone deletes their reply: it leaves the thread (replies to it stay in the
        AppView's index, under a parent that is gone)."""
        with self._lock:
            for views in self.replies.values():
                for view in list(views):
                    if view["uri"] == uri:
                        views.remove(view)
                        return
            raise KeyError(uri)

    def gain_followers(self, n: int) -> None:
        with self._lock:
            start = len(self.followers) + 1000
            self.followers = [self._person("new", start + i) for i in range(n)] + self.followers

    def delete_post(self, uri: str) -> None:
        with self._lock:
            del self.records[uri.split("/", 3)[3]]
            self._bump()

    def expire_access_tokens(self) -> None:
        with self._lock:
            for token in self._access:
                self._access[token] = 0

    def refresh_token_alive(self, token: str) -> bool:
        entry = self._refresh.get(token)
        return bool(entry and not entry["used"] and entry["expires_at"] > self.now())

    # ------------------------------------------------------------------ responses
    def _json(self, status: int, body: dict, headers: dict | None = None) -> httpx.Response:
        # Avatar links are stored with a "{base}" placeholder (see _avatar_link).
        content = json.dumps(body).replace('"{base}/', '"' + self.base_url + "/")
        return httpx.Response(status, content=content.encode(),
                              headers={"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, error: str, message: str, headers: dict | None = None) -> httpx.Response:
        return self._json(status, {"error": error, "message": message}, headers)

    def _rate_headers(self) -> dict[str, str]:
        window_start = self._rate_hits[0] if self._rate_hits else self.now()
        remaining = max(0, self.config.rate_limit - len(self._rate_hits))
        return {"RateLimit-Limit": str(self.config.rate_limit), "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": str(int(window_start + self.config.rate_window)),
                "RateLimit-Policy": f"{self.config.rate_limit};w={self.config.rate_window}"}

    # ------------------------------------------------------------------ dispatch
    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request; usable as ``httpx.MockTransport(fake.handle)``."""
        if self.config.vanished:
            raise httpx.ConnectError("connection refused (the fake vanished)", request=request)
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)
        with self._lock:
            response = self._dispatch(request)
            path = request.url.path
            self.log.append((request.method, path[len("/xrpc/"):] if path.startswith("/xrpc/") else path,
                             response.status_code))
            return response

    def requests(self, since: int = 0) -> list[tuple[str, str, int]]:
        return list(self.log)[since:]

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/did:plc:"):
            if request.method != "GET":
                return self._error(405, "MethodNotAllowed", "GET only")
            return self._plc(path[1:])
        if path == "/.well-known/did.json":
            return self._did_web()
        if path.startswith("/cdn/avatar/"):
            if request.method != "GET":
                return httpx.Response(405, text="Method Not Allowed")
            return self._avatar(path)
        if not path.startswith("/xrpc/"):
            return self._error(404, "NotFound", f"no such path {path}")
        nsid = path[len("/xrpc/"):]
        if nsid not in QUERIES and nsid not in PROCEDURES:
            return self._error(404, "XRPCNotSupported", "XRPCNotSupported")
        wanted = "GET" if nsid in QUERIES else "POST"
        if request.method != wanted:
            return self._error(400, "InvalidRequest", f"Incorrect HTTP method ({request.method}) expected {wanted}")
        # Rate limit over a sliding window, headers on every answer.
        now = self.now()
        while self._rate_hits and self._rate_hits[0] <= now - self.config.rate_window:
            self._rate_hits.popleft()
        if len(self._rate_hits) >= self.config.rate_limit:
            return self._error(429, "RateLimitExceeded", "Rate Limit Exceeded", self._rate_headers())
        self._rate_hits.append(now)
        headers = self._rate_headers()
        if self.config.fail_rate and self._fault_rng.random() < self.config.fail_rate:
            return self._error(500, "InternalServerError", "Internal Server Error", headers)
        auth = request.headers.get("authorization")
        if nsid in APPVIEW:
            if auth:
                return self._error(400, "InvalidToken", "Bad token scope (the public AppView takes no PDS token)")
        elif nsid not in PROCEDURES and auth:
            problem = self._check_access(auth)
            if problem is not None:
                return problem
        params = dict(request.url.params)
        handler = getattr(self, "_" + nsid.rsplit(".", 1)[1])
        response = handler(request, params)
        for key, value in headers.items():
            response.headers.setdefault(key, value)
        return response

    def _check_access(self, auth: str) -> httpx.Response | None:
        if not auth.startswith("Bearer "):
            return self._error(400, "InvalidToken", "Malformed token")
        token = auth[len("Bearer "):]
        if token in self._refresh:
            return self._error(400, "InvalidToken", "Bad token scope")
        expires = self._access.get(token)
        if expires is None:
            return self._error(400, "InvalidToken", "Token could not be verified")
        if expires <= self.now():
            return self._error(400, "ExpiredToken", "Token has expired")
        return None

    def _require(self, params: dict, *names: str) -> httpx.Response | None:
        for name in names:
            if not params.get(name):
                return self._error(400, "InvalidRequest", f'Error: Params must have the property "{name}"')
        return None

    def _own_repo(self, params: dict) -> httpx.Response | None:
        missing = self._require(params, "did")
        if missing:
            return missing
        if params["did"] != self.did:
            return self._error(400, "RepoNotFound", f"Could not find repo for DID: {params['did']}")
        return None

    # ------------------------------------------------------------------ identity
    def did_document(self) -> dict:
        return {"@context": ["https://www.w3.org/ns/did/v1"], "id": self.did,
                "alsoKnownAs": [f"at://{self.user_handle}"],
                "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                             "serviceEndpoint": self.base_url}]}

    def _plc(self, did: str) -> httpx.Response:
        if did != self.did:
            return self._json(404, {"message": f"DID not registered: {did}"})
        return self._json(200, self.did_document())

    def _did_web(self) -> httpx.Response:
        if not self.did.startswith("did:web:"):
            return self._error(404, "NotFound", "no did:web here")
        return self._json(200, self.did_document())

    def _resolveHandle(self, request, params) -> httpx.Response:
        missing = self._require(params, "handle")
        if missing:
            return missing
        if params["handle"].lower() != self.user_handle:
            return self._error(400, "InvalidRequest", "Unable to resolve handle")
        return self._json(200, {"did": self.did})

    # ------------------------------------------------------------------ sessions
    def _issue(self) -> dict:
        access, refresh = "acc-" + secrets.token_urlsafe(24), "ref-" + secrets.token_urlsafe(24)
        self._access[access] = self.now() + self.config.access_ttl
        self._refresh[refresh] = {"expires_at": self.now() + self.config.refresh_ttl, "used": False}
        return {"did": self.did, "handle": self.user_handle, "accessJwt": access, "refreshJwt": refresh,
                "active": True, "didDoc": self.did_document()}

    def issue_session(self) -> dict:
        with self._lock:
            return self._issue()

    def _createSession(self, request, params) -> httpx.Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return self._error(400, "InvalidRequest", "Wrong request encoding (Content-Type): expected application/json")
        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            return self._error(400, "InvalidRequest", "Request body is not valid JSON")
        missing = self._require(body if isinstance(body, dict) else {}, "identifier", "password")
        if missing:
            return missing
        if (body["identifier"].lower() not in (self.user_handle.lower(), self.did.lower())
                or body["password"] != self.config.app_password):
            return self._error(401, "AuthenticationRequired", "Invalid identifier or password")
        return self._json(200, self._issue())

    def _refreshSession(self, request, params) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        if not token:
            return self._error(401, "AuthMissing", "Authentication Required")
        entry = self._refresh.get(token)
        if entry is None:
            return self._error(400, "InvalidToken", "Token could not be verified")
        if entry["used"]:
            return self._error(400, self.config.revoked_refresh_error, "Token has been revoked")
        if entry["expires_at"] <= self.now():
            return self._error(400, "ExpiredToken", "Token has expired")
        entry["used"] = True   # rotated: the old refresh token dies now
        return self._json(200, self._issue())

    # ------------------------------------------------------------------ PDS: repo and blobs
    def _getLatestCommit(self, request, params) -> httpx.Response:
        problem = self._own_repo(params)
        return problem or self._json(200, {"cid": "bafyreicommit" + self.rev, "rev": self.rev})

    def repo_car(self) -> bytes:
        if self._car_cache is None or self._car_cache[0] != self.rev:
            self._car_cache = (self.rev, build_repo_car(self.did, self.records, rev=self.rev))
        return self._car_cache[1]

    def _getRepo(self, request, params) -> httpx.Response:
        problem = self._own_repo(params)
        if problem:
            return problem
        return httpx.Response(200, content=self.repo_car(), headers={"Content-Type": "application/vnd.ipld.car"})

    def _listBlobs(self, request, params) -> httpx.Response:
        problem = self._own_repo(params)
        if problem:
            return problem
        limit = min(int(params.get("limit") or 500), 1000)
        cids = sorted(self.blobs)
        after = params.get("cursor")
        if after:
            cids = [c for c in cids if c > after]
        page = cids[:limit]
        body: dict = {"cids": page}
        if page:   # the reference PDS: a cursor whenever the page is non-empty
            body["cursor"] = page[-1]
        return self._json(200, body)

    def _getBlob(self, request, params) -> httpx.Response:
        problem = self._own_repo(params) or self._require(params, "cid")
        if problem:
            return problem
        blob = self.blobs.get(params["cid"])
        if blob is None:
            return self._error(400, "BlobNotFound", "Blob not found")
        return httpx.Response(200, content=blob[0], headers={"Content-Type": blob[1]})

    # ------------------------------------------------------------------ AppView
    def _profile_view(self) -> dict:
        profile = self.records.get("app.bsky.actor.profile/self", {})
        return {"did": self.did, "handle": self.user_handle, "displayName": profile.get("displayName"),
                "description": profile.get("description"),
                "avatar": self._avatar_link(self.did),
                "followersCount": len(self.followers), "followsCount": len(self.follows_views),
                "postsCount": len(self.post_uris()), "indexedAt": "2024-01-01T00:00:00.000Z",
                "viewer": {"muted": False}}

    def _getProfile(self, request, params) -> httpx.Response:
        missing = self._require(params, "actor")
        if missing:
            return missing
        if params["actor"] not in (self.did, self.user_handle):
            return self._error(400, "InvalidRequest", "Profile not found")
        return self._json(200, self._profile_view())

    def _paged(self, params: dict, items: list[dict], key: str) -> httpx.Response:
        missing = self._require(params, "actor")
        if missing:
            return missing
        if params["actor"] not in (self.did, self.user_handle):
            return self._error(400, "InvalidRequest", "Profile not found")
        try:
            limit = int(params.get("limit") or 50)
            start = int(params.get("cursor") or 0)
        except ValueError:
            return self._error(400, "InvalidRequest", "Invalid cursor or limit")
        if not 1 <= limit <= 100:
            return self._error(400, "InvalidRequest", "limit must be between 1 and 100")
        page = items[start:start + limit]
        body: dict = {"subject": {"did": self.did, "handle": self.user_handle}, key: page}
        more = start + limit < len(items)
        if more or (page and self.config.cursor_on_last_page):
            body["cursor"] = str(start + len(page))
        return self._json(200, body)

    def _getFollowers(self, request, params) -> httpx.Response:
        return self._paged(params, self.followers, "followers")

    def _getFollows(self, request, params) -> httpx.Response:
        follows = [self.follows_views[v["subject"]] for k, v in sorted(self.records.items())
                   if k.startswith("app.bsky.graph.follow/") and v["subject"] in self.follows_views]
        return self._paged(params, follows, "follows")

    def _post_view(self, uri: str) -> dict:
        value = self.records[uri.split("/", 3)[3]]
        counts = self.counts.get(uri, {})
        return {"uri": uri, "cid": "bafyreipost", "author": {"did": self.did, "handle": self.user_handle},
                "record": value, "replyCount": len(self.replies.get(uri, [])), "likeCount": counts.get("likeCount", 0),
                "repostCount": counts.get("repostCount", 0), "quoteCount": counts.get("quoteCount", 0),
                "indexedAt": value.get("createdAt")}

    def _getAuthorFeed(self, request, params) -> httpx.Response:
        feed = [{"post": self._post_view(uri)} for uri in reversed(self.post_uris())]   # newest first
        return self._paged(params, feed, "feed")

    def _getPostThread(self, request, params) -> httpx.Response:
        missing = self._require(params, "uri")
        if missing:
            return missing
        uri = params["uri"]
        key = uri.split("/", 3)[3] if uri.startswith(f"at://{self.did}/") else None
        if key not in self.records:
            return self._error(400, "NotFound", f"Post not found: {uri}")
        depth = int(params.get("depth") or 6)
        children: dict[str, list[dict]] = {}
        for view in self.replies.get(uri, []):
            children.setdefault(view["record"]["reply"]["parent"]["uri"], []).append(view)

        def node(view: dict, level: int) -> dict:
            if level:
                # Every postView carries its own replyCount; below ``depth`` the tree stops
                # ("replies" absent), and only the count says more is there (notes §6).
                view = {**view, "replyCount": len(children.get(view["uri"], []))}
            out = {"$type": "app.bsky.feed.defs#threadViewPost", "post": view}
            if level < depth:
                out["replies"] = [node(child, level + 1) for child in children.get(view["uri"], [])]
            return out

        return self._json(200, {"thread": node(self._post_view(uri), 0)})


# --------------------------------------------------------------------------- real HTTP


def serve(fake: FakeBluesky, host: str = "127.0.0.1", port: int = 0):
    from archiver.sim.server import serve_fake

    return serve_fake(fake, host, port, name="fake-bluesky",
                      crash_response=lambda error: httpx.Response(
                          500, json={"error": "InternalServerError", "message": f"fake crashed: {type(error).__name__}"}))


def main(argv: list[str] | None = None) -> None:
    """``archiver simulate bluesky --port N``: serve until SIGTERM/SIGINT. Point an account's
    plc_url, pds_url, appview_url and base_url at the printed address; the app password is
    ``abcd-efgh-ijkl-mnop`` unless --app-password says otherwise."""
    parser = argparse.ArgumentParser(prog="archiver simulate bluesky", description="Serve a fake Bluesky.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--videos", "--posts", dest="posts", type=int, default=12)
    parser.add_argument("--followers", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=3000)
    parser.add_argument("--access-ttl", type=int, default=7200)
    parser.add_argument("--handle", default=FakeBlueskyConfig.handle)
    parser.add_argument("--app-password", default=FakeBlueskyConfig.app_password)
    parser.add_argument("--request-log", metavar="PATH", default=None,
                        help="append one line per request answered (METHOD PATH STATUS, no query string) "
                             "to this file, for tests that count a client's requests")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("the fake serves on loopback only")
    config = FakeBlueskyConfig(posts=args.posts, followers=args.followers, seed=args.seed,
                               latency_ms=args.latency_ms, fail_rate=args.fail_rate, rate_limit=args.rate_limit,
                               access_ttl=args.access_ttl, handle=args.handle, app_password=args.app_password)
    fake = FakeBluesky(config, base_url=f"http://{args.host}:{args.port or 0}")
    if args.request_log:
        from archiver.sim.server import log_requests

        log_requests(fake, args.request_log)
    server, _thread = serve(fake, args.host, args.port)
    from archiver.sim.server import serve_until_signalled

    serve_until_signalled(server, fake)


if __name__ == "__main__":
    main()
