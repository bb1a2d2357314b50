"""A stateful fake of one Mastodon instance, faithful to shared/platforms/mastodon.md.

Endpoints (notes §1, §2):

- apps and OAuth:  POST /api/v1/apps ; GET /oauth/authorize ; POST /oauth/token , /oauth/revoke ;
                   GET /.well-known/oauth-authorization-server (4.3+ only)
- accounts:        GET /api/v1/accounts/verify_credentials , /api/v1/accounts/:id ,
                   /api/v1/accounts/:id/statuses , /followers , /following
- statuses:        GET /api/v1/statuses/:id , /context , /history
- media files:     GET /system/... (Content-Type image/png or video/mp4)

Use it in-process with ``httpx.MockTransport(fake.handle)``, over loopback with
``serve(fake)``, or as a process: ``archiver simulate mastodon --port N``.

Fixture checklist (notes §8): a Link header on every non-empty list answer (``rel="next"``
only while a page was full, carrying ``max_id``; ``rel="prev"`` carrying ``min_id`` for
statuses and ``since_id`` for accounts); ids are strings; ``limit`` clamps to 40 statuses /
80 accounts; boosts interleaved unless ``exclude_reblogs``; edited statuses with a history
of two or more entries; 401 ``{"error":"The access token is invalid"}``; 429 with
``X-RateLimit-Remaining: 0`` and an ISO ``X-RateLimit-Reset``; nested replies in
``/context``. Follower and following pages are keyed by the *follow relationship's* id,
never the account id, so a client that builds cursors from account ids gets it wrong.

Choices where the notes are unconfirmed, as knobs of ``FakeMastodonConfig``:
- ``version``: "4.3.0" and later support PKCE (S256) and the OAuth metadata endpoint;
  older versions answer that endpoint 404 and ignore ``code_challenge``.
- ``hidden_from_owner``: with ``hide_collections`` set, whether the owner's own token
  still gets the follower/following lists (the notes assume yes) or an empty list.
- ``retry_after``: a Retry-After header on 429 (Mastodon's is not documented).
- A request with the wrong method on a known path answers 404 ``Record not found``, as
  Rails routing does.

Fault knobs, as the TikTok fake: ``latency_ms``, ``fail_rate`` (503 HTML from the proxy),
rate limits per token (general and paged), ``retry_after``, and ``vanish`` ("401", "403",
"404", "410", "empty", "closed") for an instance or account that is gone.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as _dt
import hashlib
import json
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from archiver.sim.server import FakeClock
from archiver_connectors.tiktok.sim.fake import fake_mp4, fake_png

KNOWN_SCOPES = frozenset({
    "read", "write", "follow", "push", "profile", "admin:read",
    "read:accounts", "read:blocks", "read:bookmarks", "read:favourites", "read:filters",
    "read:follows", "read:lists", "read:mutes", "read:notifications", "read:search", "read:statuses",
    "write:accounts", "write:statuses", "write:media", "write:follows",
})
OOB = "urn:ietf:wg:oauth:2.0:oob"
INVALID_TOKEN = {"error": "The access token is invalid"}
NOT_FOUND = {"error": "Record not found"}
OUT_OF_SCOPE = {"error": "This action is outside the authorized scopes"}
INVALID_GRANT = {"error": "invalid_grant", "error_description": (
    "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI "
    "used in the authorization request, or was issued to another client.")}
INVALID_CLIENT = {"error": "invalid_client", "error_description": (
    "Client authentication failed due to unknown client, no client authentication included, "
    "or unsupported authentication method.")}
WORDS = ("garden", "tomato", "rain", "bike", "coffee", "train", "cat", "bread", "harbour", "moss",
         "lamp", "river", "kite", "violin", "snow", "maple", "owl", "tea", "stone", "cloud")
T0 = 1_700_000_000


@dataclass
class FakeMastodonConfig:
    statuses: int = 30
    followers: int = 50
    following: int = 20
    seed: int = 1
    latency_ms: int = 0
    fail_rate: float = 0.0
    rate_limit: int = 300             # requests per token per rate_window (fixed windows)
    rate_window: int = 300
    paged_limit: int = 300            # requests with max_id/min_id/since_id/page per paged_window
    paged_window: int = 900
    retry_after: str | None = None
    version: str = "4.3.0"
    hide_collections: bool = False
    hidden_from_owner: bool = False   # [unconfirmed] see the module docstring
    vanish: str | None = None
    code_ttl: int = 600
    deny: bool = False                # the person clicks "Deny" on the authorize page
    username: str = "alice"
    owner_header: bool = True         # the owner set a header picture (else the default one)


def _iso(epoch: float) -> str:
    moment = _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _version_at_least(version: str, wanted: tuple[int, int]) -> bool:
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]] + [0, 0]
    return tuple(parts[:2]) >= wanted


class FakeMastodon(FakeClock):
    """One Mastodon instance as an in-memory world. Thread-safe (one lock)."""

    def __init__(self, config: FakeMastodonConfig | None = None, base_url: str = "http://127.0.0.1:0"):
        self.config = config or FakeMastodonConfig()
        self.base_url = base_url.rstrip("/")
        self.clock_offset = 0.0
        self._lock = threading.RLock()
        self._rng = random.Random(f"world:{self.config.seed}")
        self._fault_rng = random.Random(f"faults:{self.config.seed}")
        self._seq = 0
        self._last_ms = 0
        self.apps: dict[str, dict] = {}         # client_id -> app
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self._rate: dict[tuple, int] = collections.Counter()
        # (method, path, query dict, status) of every request, for tests.
        self.log: collections.deque = collections.deque(maxlen=20_000)
        self.accounts: dict[str, dict] = {}
        self.statuses: dict[str, dict] = {}
        self.followers: list[dict] = []        # {"follow_id": int, "account_id"}; newest last
        self.following: list[dict] = []
        self._follow_seq = 7_480_000
        self._people = 0
        self.owner_id = "1091"
        # An HTTP status every avatar / header file answers with (a picture host that is
        # down), or None to serve them.
        self.picture_fault: int | None = None
        self._build_world()

    # ------------------------------------------------------------------ clock


    # ------------------------------------------------------------------ world

    def _new_id(self, epoch: float) -> str:
        """Snowflake-like: milliseconds in the high bits, strictly increasing."""
        ms = max(int(epoch * 1000), self._last_ms)
        self._seq += 1
        self._last_ms = ms
        return str((ms << 16) | (self._seq & 0xFFFF))

    def _new_person(self, remote: bool = True) -> str:
        self._people += 1
        n = self._people
        name = f"{self._rng.choice(WORDS)}{n}"
        account_id = str(100_000 + n)
        self.accounts[account_id] = {
            "id": account_id, "username": name,
            "domain": f"other{n % 7}.example" if remote else None,
            "display_name": name.title(), "note": f"<p>I like {self._rng.choice(WORDS)}s.</p>",
            "created_at": T0 - 86400 * 400,
            # Picture versions (0 = the instance's default "missing.png"): every fourth
            # person never set an avatar.
            "avatar": 0 if n % 4 == 0 else 1, "header": 0,
        }
        return account_id

    def _build_world(self) -> None:
        rng = self._rng
        self.accounts[self.owner_id] = {
            "id": self.owner_id, "username": self.config.username, "domain": None,
            "display_name": self.config.username.title(),
            "note": "<p>Gardener &amp; <a href=\"https://example.org\">maker</a>.</p>",
            "created_at": T0 - 86400 * 800, "avatar": 1, "header": 1 if self.config.owner_header else 0,
        }
        for _ in range(self.config.followers):
            self._add_follow(self.followers, self._new_person(remote=rng.random() < 0.8))
        for _ in range(self.config.following):
            self._add_follow(self.following, self._new_person())
        moment = float(T0)
        for i in range(self.config.statuses):
            moment += rng.randrange(3600, 3 * 86400)
            self._generate_status(i, moment)

    def _add_follow(self, people: list, account_id: str) -> None:
        self._follow_seq += self._rng.randrange(1, 50)
        people.append({"follow_id": self._follow_seq, "account_id": account_id})

    def _new_status(self, account_id: str, created_at: float, content: str, **fields) -> dict:
        status = {
            "id": self._new_id(created_at), "account_id": account_id, "created_at": created_at,
            "versions": [{"content": content, "spoiler_text": fields.pop("spoiler_text", ""),
                          "sensitive": False, "created_at": created_at}],
            "visibility": fields.pop("visibility", "public"), "in_reply_to_id": fields.pop("in_reply_to_id", None),
            "reblog_of": fields.pop("reblog_of", None), "media": fields.pop("media", []),
            "favourites": self._rng.randrange(0, 40), "reblogs": self._rng.randrange(0, 10),
            "deleted": False, "language": "en",
        }
        self.statuses[status["id"]] = status
        return status

    def _media(self, kind: str, description: str | None) -> dict:
        self._seq += 1
        key = hashlib.sha256(f"{self._seq}:{self._rng.random()}".encode()).hexdigest()[:16]
        media_id = str(22_000_000 + self._seq)
        ext = "png" if kind == "image" else "mp4"
        return {"id": media_id, "type": kind, "description": description, "key": key,
                "path": f"/system/media_attachments/files/{media_id[:3]}/{media_id[3:6]}/{media_id[6:]}/original/{key}.{ext}"}

    def _text(self) -> str:
        words = " ".join(self._rng.choice(WORDS) for _ in range(self._rng.randint(3, 8)))
        tag = self._rng.choice(WORDS)
        return (f"<p>{words.capitalize()} <a href=\"{{base}}/tags/{tag}\" class=\"mention hashtag\" "
                f"rel=\"tag\">#<span>{tag}</span></a></p>")

    def _generate_status(self, i: int, moment: float) -> None:
        rng = self._rng
        roll = rng.random()
        kind = {0: "media", 1: "boost", 2: "edited", 3: "reply", 4: "self"}.get(i)
        if kind is None:
            kind = ("boost" if roll < 0.15 else "reply" if roll < 0.25 else "edited" if roll < 0.32
                    else "media" if roll < 0.6 else "text")
        if kind == "boost":
            other = self._new_person()
            target = self._new_status(other, moment - 3600, self._text())
            self._new_status(self.owner_id, moment, "", reblog_of=target["id"])
            return
        if kind == "reply":
            other = self._new_person()
            target = self._new_status(other, moment - 1800, self._text())
            self._new_status(self.owner_id, moment, self._text(), in_reply_to_id=target["id"])
            return
        if kind == "self":
            own = [s for s in self.statuses.values() if s["account_id"] == self.owner_id
                   and not s["reblog_of"] and not s["in_reply_to_id"]]
            parent = own[0]["id"] if own else None
            status = self._new_status(self.owner_id, moment, self._text(), in_reply_to_id=parent)
            self.add_reply(status["id"], at=moment + 600)
            return
        media = []
        if kind == "media":
            media = [self._media("image", "Tomato seedlings on a windowsill" if rng.random() < 0.7 else None)
                     for _ in range(rng.randint(1, 2))]
            if rng.random() < 0.3:
                media.append(self._media("video", "A short clip of rain"))
        status = self._new_status(self.owner_id, moment, self._text(), media=media,
                              visibility=rng.choice(("public", "public", "unlisted", "private")),
                              spoiler_text="garden talk" if rng.random() < 0.1 else "")
        if kind == "edited":
            self.edit_status(status["id"], self._text(), at=moment + 900)
            if rng.random() < 0.5:
                self.edit_status(status["id"], self._text(), at=moment + 1800)
        if i == 0 or rng.random() < 0.35:
            first = self.add_reply(status["id"], at=moment + 300)
            self.add_reply(first["id"], at=moment + 400)              # a reply to the reply
            if i == 0:
                thanks = self._new_status(self.owner_id, moment + 500, "<p>Thank you!</p>", in_reply_to_id=first["id"])
                self.add_reply(thanks["id"], at=moment + 700)          # a reply under the owner's reply

    # ------------------------------------------------------------------ world changes (tests)

    def add_status(self, content: str = "<p>A new post</p>", *, media: Sequence[tuple[str, str | None]] = (),
                   visibility: str = "public", in_reply_to_id: str | None = None) -> dict:
        """The owner posts now; ``media`` is a list of (type, alt text)."""
        with self._lock:
            return self._new_status(self.owner_id, self.now(), content, visibility=visibility,
                                in_reply_to_id=in_reply_to_id,
                                media=[self._media(kind, alt) for kind, alt in media])

    def boost(self, content: str = "<p>Someone else's post</p>") -> dict:
        with self._lock:
            target = self._new_status(self._new_person(), self.now() - 60, content)
            return self._new_status(self.owner_id, self.now(), "", reblog_of=target["id"])

    def edit_status(self, status_id: str, content: str, *, at: float | None = None,
                    spoiler_text: str | None = None) -> None:
        with self._lock:
            status = self.statuses[status_id]
            current = status["versions"][-1]
            status["versions"].append({**current, "content": content, "created_at": at or self.now(),
                                       "spoiler_text": current["spoiler_text"] if spoiler_text is None else spoiler_text})

    def delete_status(self, status_id: str) -> None:
        with self._lock:
            self.statuses[status_id]["deleted"] = True

    def add_reply(self, to_status_id: str, content: str | None = None, *, at: float | None = None,
                  author: str | None = None) -> dict:
        """Someone else (a new person, or the account ``author``) replies to ``to_status_id``."""
        with self._lock:
            return self._new_status(author or self._new_person(), at or self.now(),
                                content or f"<p>Nice {self._rng.choice(WORDS)}!</p>", in_reply_to_id=to_status_id)

    def set_counts(self, status_id: str, *, favourites: int | None = None, reblogs: int | None = None) -> None:
        with self._lock:
            status = self.statuses[status_id]
            status["favourites"] = status["favourites"] if favourites is None else favourites
            status["reblogs"] = status["reblogs"] if reblogs is None else reblogs

    def picture_path(self, account_id: str, kind: str = "avatar", version: int | None = None) -> str | None:
        """Where the instance serves an account's avatar or header ("avatars" / "headers"
        under /system/accounts/ for local accounts, under /system/cache/accounts/ for remote
        ones, as Mastodon caches them), or None for the default picture. Each version of
        the picture has its own file name, so a changed picture has a new link."""
        a = self.accounts[account_id]
        version = a.get(kind, 0) if version is None else version
        if not version:
            return None
        digits = f"{int(account_id):09d}"
        folder = "/".join(digits[i:i + 3] for i in range(0, 9, 3))
        name = hashlib.sha256(f"{self.config.seed}:{account_id}:{kind}:{version}".encode()).hexdigest()[:16]
        cache = "cache/" if a["domain"] else ""
        return f"/system/{cache}accounts/{kind}s/{folder}/original/{name}.png"

    def change_picture(self, account_id: str, kind: str = "avatar") -> str:
        """The person uploads a new avatar (or header); returns its new path."""
        with self._lock:
            self.accounts[account_id][kind] = self.accounts[account_id].get(kind, 0) + 1
            path = self.picture_path(account_id, kind)
            assert path is not None   # a picture of version 1 or later has a path
            return path

    def _picture_known(self, path: str) -> bool:
        """A current or earlier picture of a known account (unknown names answer 404)."""
        match = re.fullmatch(r"/system/(?:cache/)?accounts/(avatars|headers)/(\d{3})/(\d{3})/(\d{3})/original/"
                             r"[0-9a-f]{16}\.png", path)
        if match is None:
            return False
        account_id = str(int("".join(match.groups()[1:])))
        kind = match.group(1)[:-1]
        if account_id not in self.accounts:
            return False
        return any(self.picture_path(account_id, kind, v) == path
                   for v in range(1, self.accounts[account_id].get(kind, 0) + 1))

    def gain_followers(self, n: int) -> list[str]:
        with self._lock:
            new = [self._new_person() for _ in range(n)]
            for account_id in new:
                self._add_follow(self.followers, account_id)
            return new

    def lose_followers(self, n: int) -> list[str]:
        with self._lock:
            lost, self.followers = self.followers[:n], self.followers[n:]
            return [f["account_id"] for f in lost]

    def own_statuses(self) -> list[dict]:
        return [s for s in self.statuses.values() if s["account_id"] == self.owner_id and not s["deleted"]]

    def issue_token(self, scopes: str = "read:accounts read:statuses read:follows", *, user: bool = True) -> str:
        """Mint a token directly (what a user creates under Preferences → Development)."""
        with self._lock:
            token = secrets.token_urlsafe(32)
            self.tokens[token] = {"scopes": set(scopes.split()), "user": user, "revoked": False, "client_id": None}
            return token

    def revoke_all(self) -> None:
        with self._lock:
            for record in self.tokens.values():
                record["revoked"] = True

    # ------------------------------------------------------------------ rendering

    def _domain(self) -> str:
        return (urlsplit(self.base_url).hostname or "localhost").lower()

    def _account_json(self, account_id: str, *, credentials: bool = False) -> dict:
        a = self.accounts[account_id]
        domain = a["domain"] or self._domain()
        base = f"https://{a['domain']}" if a["domain"] else self.base_url
        own = account_id == self.owner_id
        statuses = [s for s in self.statuses.values() if s["account_id"] == account_id and not s["deleted"]]
        avatar_path, header_path = self.picture_path(account_id, "avatar"), self.picture_path(account_id, "header")
        avatar = self.base_url + avatar_path if avatar_path else f"{self.base_url}/avatars/original/missing.png"
        header = self.base_url + header_path if header_path else f"{self.base_url}/headers/original/missing.png"
        body = {
            "id": account_id, "username": a["username"],
            "acct": a["username"] if not a["domain"] else f"{a['username']}@{domain}",
            "display_name": a["display_name"], "locked": False, "bot": False, "discoverable": True,
            "group": False, "created_at": _iso(a["created_at"]), "note": a["note"],
            "url": f"{base}/@{a['username']}", "uri": f"{base}/users/{a['username']}",
            "avatar": avatar, "avatar_static": avatar, "header": header, "header_static": header,
            "followers_count": len(self.followers) if own else 3, "following_count": len(self.following) if own else 5,
            "statuses_count": len(statuses), "last_status_at": None, "emojis": [], "fields": [],
        }
        if own:
            body["hide_collections"] = self.config.hide_collections
        if credentials:
            body["source"] = {"privacy": "public", "sensitive": False, "language": "en",
                              "note": re.sub(r"<[^>]+>", "", a["note"]), "fields": [], "follow_requests_count": 0}
        return body

    def _status_uri(self, status: dict) -> tuple[str, str]:
        a = self.accounts[status["account_id"]]
        base = f"https://{a['domain']}" if a["domain"] else self.base_url
        return f"{base}/users/{a['username']}/statuses/{status['id']}", f"{base}/@{a['username']}/{status['id']}"

    def _media_json(self, media: dict) -> dict:
        is_image = media["type"] == "image"
        meta = {"original": {"width": 16, "height": 16, "size": "16x16", "aspect": 1.0},
                "small": {"width": 16, "height": 16, "size": "16x16", "aspect": 1.0}}
        if not is_image:
            meta["original"].update({"frame_rate": "30/1", "duration": 2.5, "bitrate": 200000})
        return {"id": media["id"], "type": media["type"], "url": self.base_url + media["path"],
                "preview_url": self.base_url + media["path"].replace("/original/", "/small/"),
                "remote_url": None, "description": media["description"],
                "blurhash": "UFBWY:8_0Jxv4mx]t8t64.%M-:IUWGWAt6M}", "meta": meta}

    def _replies_count(self, status_id: str) -> int:
        return sum(1 for s in self.statuses.values() if s["in_reply_to_id"] == status_id and not s["deleted"])

    def _status_json(self, status: dict, *, authed: bool = False) -> dict:
        current = status["versions"][-1]
        uri, url = self._status_uri(status)
        parent = self.statuses.get(status["in_reply_to_id"]) if status["in_reply_to_id"] else None
        reblog = self.statuses.get(status["reblog_of"]) if status["reblog_of"] else None
        body = {
            "id": status["id"], "created_at": _iso(status["created_at"]),
            "edited_at": _iso(current["created_at"]) if len(status["versions"]) > 1 else None,
            "in_reply_to_id": status["in_reply_to_id"],
            "in_reply_to_account_id": parent["account_id"] if parent else None,
            "sensitive": current["sensitive"], "spoiler_text": current["spoiler_text"],
            "visibility": status["visibility"], "language": status["language"],
            "uri": uri + ("/activity" if reblog else ""), "url": url,
            "replies_count": 0 if reblog else self._replies_count(status["id"]),
            "reblogs_count": 0 if reblog else status["reblogs"],
            "favourites_count": 0 if reblog else status["favourites"],
            "content": current["content"].replace("{base}", self.base_url),
            "reblog": self._status_json(reblog, authed=authed) if reblog else None,
            "account": self._account_json(status["account_id"]),
            "media_attachments": [self._media_json(m) for m in status["media"]],
            "mentions": [], "tags": [], "emojis": [], "card": None, "poll": None,
        }
        if authed:
            body.update(favourited=False, reblogged=False, muted=False, bookmarked=False)
        return body

    # ------------------------------------------------------------------ responses

    def _json(self, status: int, body, headers: dict | None = None) -> httpx.Response:
        return httpx.Response(status, headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
                              content=json.dumps(body).encode())

    @staticmethod
    def _html(status: int, text: str) -> httpx.Response:
        return httpx.Response(status, headers={"Content-Type": "text/html; charset=utf-8"},
                              content=f"<html><body><h1>{status}</h1><p>{text}</p></body></html>".encode())

    # ------------------------------------------------------------------ dispatch

    ROUTES = [
        ("POST", r"/api/v1/apps", "_apps", "open"),
        ("GET", r"/oauth/authorize", "_authorize", "open"),
        ("POST", r"/oauth/token", "_token", "open"),
        ("POST", r"/oauth/revoke", "_revoke", "open"),
        ("GET", r"/\.well-known/oauth-authorization-server", "_metadata", "open"),
        ("GET", r"/api/v1/accounts/verify_credentials", "_verify_credentials", "api"),
        ("GET", r"/api/v1/accounts/(\d+)", "_account", "api"),
        ("GET", r"/api/v1/accounts/(\d+)/statuses", "_account_statuses", "api"),
        ("GET", r"/api/v1/accounts/(\d+)/(followers|following)", "_follows", "api"),
        ("GET", r"/api/v1/statuses/(\d+)", "_status_route", "api"),
        ("GET", r"/api/v1/statuses/(\d+)/context", "_context", "api"),
        ("GET", r"/api/v1/statuses/(\d+)/history", "_history", "api"),
        ("GET", r"/system/.+", "_file", "file"),
    ]

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request; usable as ``httpx.MockTransport(fake.handle)``."""
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)
        with self._lock:
            if self.config.vanish == "closed":
                self.log.append((request.method, request.url.path, dict(request.url.params), None))
                raise httpx.ConnectError("connection refused (the fake instance is closed)", request=request)
            response = self._dispatch(request)
            self.log.append((request.method, request.url.path, dict(request.url.params), response.status_code))
            return response

    def requests(self, path_prefix: str = "/api/") -> list[tuple]:
        return [entry for entry in self.log if entry[1].startswith(path_prefix)]

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        for method, pattern, name, kind in self.ROUTES:
            match = re.fullmatch(pattern, path)
            if match is None:
                continue
            if request.method != method and not (kind == "file" and request.method == "HEAD"):
                return self._json(404, NOT_FOUND)   # Rails: no route for this method
            vanished = self._vanished(path)
            if vanished is not None:
                return vanished
            if kind == "file":
                return self._file(request)
            if self.config.fail_rate and self._fault_rng.random() < self.config.fail_rate:
                return self._html(503, "Service Unavailable")
            if kind == "open":
                return getattr(self, name)(request)
            return self._api(request, name, match.groups())
        return self._json(404, NOT_FOUND)

    def _vanished(self, path: str) -> httpx.Response | None:
        vanish = self.config.vanish
        if not vanish or not path.startswith("/api/"):
            return None
        if vanish == "401":
            return self._json(401, INVALID_TOKEN)
        if vanish == "403":
            return self._json(403, {"error": "Your login is currently disabled"})
        if vanish == "404":
            return self._html(404, "The page you are looking for isn't here.")
        if vanish == "410":
            return self._json(410, {"error": "This account is gone"})
        if vanish == "empty":
            if path.endswith(("/statuses", "/followers", "/following")):
                return self._json(200, [])
        return None

    def _bearer(self, request: httpx.Request):
        """(token record or None, refused response or None)."""
        header = request.headers.get("authorization")
        if not header:
            return None, None
        scheme, _, token = header.partition(" ")
        record = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if record is None or record["revoked"]:
            return None, self._json(401, INVALID_TOKEN)
        return record, None

    @staticmethod
    def _has_scope(record: dict, scope: str) -> bool:
        return scope in record["scopes"] or scope.split(":")[0] in record["scopes"]

    def _rate_headers(self, key: str, paged: bool) -> tuple[dict, bool]:
        now = self.now()
        buckets = [("all", self.config.rate_limit, self.config.rate_window)]
        if paged:
            buckets.append(("paged", self.config.paged_limit, self.config.paged_window))
        closest, over = None, False
        for name, limit, window in buckets:
            index = int(now // window)
            count = self._rate[(key, name, index)]
            if count >= limit:
                over = True
            remaining = max(0, limit - count - 1)
            reset = (index + 1) * window
            if closest is None or remaining < closest[1]:
                closest = (limit, remaining, reset)
        if not over:
            for name, _limit, window in buckets:
                self._rate[(key, name, int(now // window))] += 1
        assert closest is not None   # there is always the "all" bucket
        limit, remaining, reset = closest
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0" if over else str(remaining),
                   "X-RateLimit-Reset": _dt.datetime.fromtimestamp(reset, _dt.timezone.utc)
                   .strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        return headers, over

    def _api(self, request: httpx.Request, name: str, groups: tuple) -> httpx.Response:
        record, refused = self._bearer(request)
        if refused is not None:
            return refused
        paged = any(p in request.url.params for p in ("max_id", "min_id", "since_id", "page"))
        key = request.headers.get("authorization") or "anonymous"
        headers, over = self._rate_headers(key, paged)
        if over:
            if self.config.retry_after is not None:
                headers["Retry-After"] = self.config.retry_after
            return self._json(429, {"error": "Too many requests"}, headers)
        response = getattr(self, name)(request, record, *groups)
        response.headers.update(headers)
        return response

    def _owner_token(self, record: dict | None) -> bool:
        return bool(record and record["user"])

    def _params(self, request: httpx.Request) -> dict:
        return dict(request.url.params)

    # ------------------------------------------------------------------ accounts

    def _verify_credentials(self, request, record) -> httpx.Response:
        if record is None:
            return self._json(401, INVALID_TOKEN)
        if not record["user"]:
            return self._json(422, {"error": "This method requires an authenticated user"})
        if not (self._has_scope(record, "read:accounts") or "profile" in record["scopes"]):
            return self._json(403, OUT_OF_SCOPE)
        return self._json(200, self._account_json(self.owner_id, credentials=True))

    def _account(self, request, record, account_id) -> httpx.Response:
        if account_id not in self.accounts:
            return self._json(404, NOT_FOUND)
        return self._json(200, self._account_json(account_id))

    def _limit(self, request, default: int, maximum: int) -> int:
        try:
            value = int(request.url.params.get("limit", default))
        except ValueError:
            value = default
        return max(1, min(value, maximum))

    def _page(self, items: list, key, request, limit: int, prev_param: str) -> tuple[list, dict]:
        """Apply max_id / since_id / min_id to ``items`` (newest first, ``key`` gives the
        paging id as int); return the page and its Link header."""
        params = request.url.params
        ids: dict[str, int | None] = {}
        for name in ("max_id", "since_id", "min_id"):
            if params.get(name):
                try:
                    ids[name] = int(params[name])
                except ValueError:
                    ids[name] = None
        chosen = [i for i in items
                  if ("max_id" not in ids or ids["max_id"] is None or key(i) < ids["max_id"])
                  and ("since_id" not in ids or ids["since_id"] is None or key(i) > ids["since_id"])
                  and ("min_id" not in ids or ids["min_id"] is None or key(i) > ids["min_id"])]
        if "min_id" in ids:
            chosen = list(reversed(list(reversed(chosen))[:limit]))   # the page just above min_id
        else:
            chosen = chosen[:limit]
        headers = {}
        if chosen:
            keep = {k: v for k, v in params.items() if k in ("limit", "exclude_reblogs", "exclude_replies", "only_media")}
            base = f"{self.base_url}{request.url.path}"
            links = []
            if len(chosen) == limit:
                links.append(f'<{base}?{urlencode({**keep, "max_id": key(chosen[-1])})}>; rel="next"')
            links.append(f'<{base}?{urlencode({**keep, prev_param: key(chosen[0])})}>; rel="prev"')
            headers["Link"] = ", ".join(links)
        return chosen, headers

    def _account_statuses(self, request, record, account_id) -> httpx.Response:
        if account_id not in self.accounts:
            return self._json(404, NOT_FOUND)
        if record is not None and not self._has_scope(record, "read:statuses"):
            return self._json(403, OUT_OF_SCOPE)
        params = request.url.params
        owner = self._owner_token(record) and account_id == self.owner_id
        items = [s for s in self.statuses.values() if s["account_id"] == account_id and not s["deleted"]
                 and (owner or s["visibility"] in ("public", "unlisted"))]
        if params.get("exclude_reblogs") == "true":
            items = [s for s in items if not s["reblog_of"]]
        if params.get("exclude_replies") == "true":
            items = [s for s in items if not s["in_reply_to_id"]]
        if params.get("only_media") == "true":
            items = [s for s in items if s["media"]]
        items.sort(key=lambda s: int(s["id"]), reverse=True)
        page, headers = self._page(items, lambda s: int(s["id"]), request, self._limit(request, 20, 40), "min_id")
        return self._json(200, [self._status_json(s, authed=record is not None) for s in page], headers)

    def _follows(self, request, record, account_id, kind) -> httpx.Response:
        if account_id not in self.accounts:
            return self._json(404, NOT_FOUND)
        if record is not None and not self._has_scope(record, "read:follows") \
                and not self._has_scope(record, "read:accounts"):
            return self._json(403, OUT_OF_SCOPE)
        people = (self.followers if kind == "followers" else self.following) if account_id == self.owner_id else []
        own = self._owner_token(record) and account_id == self.owner_id
        if self.config.hide_collections and (not own or self.config.hidden_from_owner):
            people = []
        items = sorted(people, key=lambda f: f["follow_id"], reverse=True)
        page, headers = self._page(items, lambda f: f["follow_id"], request, self._limit(request, 40, 80), "since_id")
        return self._json(200, [self._account_json(f["account_id"]) for f in page], headers)

    # ------------------------------------------------------------------ statuses

    def _visible_status(self, record, status_id) -> dict | None:
        status = self.statuses.get(status_id)
        if status is None or status["deleted"]:
            return None
        if status["visibility"] in ("private", "direct") and not self._owner_token(record):
            return None
        return status

    def _status_route(self, request, record, status_id) -> httpx.Response:
        status = self._visible_status(record, status_id)
        if status is None:
            return self._json(404, NOT_FOUND)
        return self._json(200, self._status_json(status, authed=record is not None))

    def _context(self, request, record, status_id) -> httpx.Response:
        status = self._visible_status(record, status_id)
        if status is None:
            return self._json(404, NOT_FOUND)
        if record is not None and not self._has_scope(record, "read:statuses"):
            return self._json(403, OUT_OF_SCOPE)
        ancestors: list[dict] = []
        parent = status["in_reply_to_id"]
        while parent and parent in self.statuses:
            ancestors.insert(0, self.statuses[parent])
            parent = self.statuses[parent]["in_reply_to_id"]
        children = collections.defaultdict(list)
        for s in self.statuses.values():
            if s["in_reply_to_id"] and not s["deleted"]:
                children[s["in_reply_to_id"]].append(s)
        descendants, stack = [], sorted(children[status_id], key=lambda s: int(s["id"]), reverse=True)
        while stack:
            s = stack.pop()
            descendants.append(s)
            stack.extend(sorted(children[s["id"]], key=lambda c: int(c["id"]), reverse=True))
        cap = (4096, 4096) if record is not None else (40, 60)
        authed = record is not None
        return self._json(200, {"ancestors": [self._status_json(s, authed=authed) for s in ancestors[-cap[0]:]],
                                "descendants": [self._status_json(s, authed=authed) for s in descendants[:cap[1]]]})

    def _history(self, request, record, status_id) -> httpx.Response:
        status = self._visible_status(record, status_id)
        if status is None:
            return self._json(404, NOT_FOUND)
        account = self._account_json(status["account_id"])
        return self._json(200, [{"content": v["content"].replace("{base}", self.base_url),
                                 "spoiler_text": v["spoiler_text"], "sensitive": v["sensitive"],
                                 "created_at": _iso(v["created_at"]), "account": account, "poll": None,
                                 "media_attachments": [self._media_json(m) for m in status["media"]],
                                 "emojis": []} for v in status["versions"]])

    # ------------------------------------------------------------------ files

    def _file(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        name = path.rsplit("/", 1)[-1]
        picture = self._picture_known(path)
        known = picture or any(m["path"] == path for s in self.statuses.values() for m in s["media"])
        if not known:
            return self._html(404, "Not Found")
        if picture and self.picture_fault is not None:
            return self._html(self.picture_fault, "Service Unavailable")
        if name.endswith(".png"):
            body, content_type = fake_png(path), "image/png"
        else:
            body, content_type = fake_mp4(path, 8 * 1024), "video/mp4"
        if request.method == "HEAD":
            return httpx.Response(200, headers={"Content-Type": content_type, "Content-Length": str(len(body))})
        return httpx.Response(200, headers={"Content-Type": content_type}, content=body)

    # ------------------------------------------------------------------ apps and OAuth

    def _form(self, request: httpx.Request) -> dict:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/json":
            try:
                body = json.loads(request.content or b"{}")
            except ValueError:
                return {}
            return body if isinstance(body, dict) else {}
        return dict(parse_qsl(request.content.decode("utf-8", "replace"), keep_blank_values=True))

    def _apps(self, request: httpx.Request) -> httpx.Response:
        form = self._form(request)
        if not form.get("client_name"):
            return self._json(422, {"error": "Validation failed: Application name can't be blank"})
        uris = form.get("redirect_uris")
        if isinstance(uris, str):
            uris = [u for u in re.split(r"\s+", uris) if u]
        if not uris:
            return self._json(422, {"error": "Validation failed: Redirect URI can't be blank"})
        for uri in uris:
            if uri != OOB and not re.match(r"^[a-z][a-z0-9+.-]*://\S+$", uri, re.I):
                return self._json(422, {"error": "Validation failed: Redirect URI must be an absolute URI."})
        scopes = (form.get("scopes") or "read").split()
        if not set(scopes) <= KNOWN_SCOPES:
            return self._json(422, {"error": "Validation failed: Scopes are invalid"})
        client_id, client_secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        app = {"id": str(90_000 + len(self.apps)), "name": form["client_name"], "website": form.get("website"),
               "scopes": scopes, "redirect_uri": "\n".join(uris), "redirect_uris": uris,
               "client_id": client_id, "client_secret": client_secret, "client_secret_expires_at": 0}
        self.apps[client_id] = app
        body = dict(app)
        if not _version_at_least(self.config.version, (4, 3)):
            body.pop("redirect_uris")
            body.pop("client_secret_expires_at")
            body["vapid_key"] = "BCk-QqERU0q-CfYZjcuB6lnyyOYfJ2AifKqfeGIm7Z-HiTU5T9eTG5GxVA0_OH5mMlI4UkkDTpaZwozy0TzdZ2M="
        return self._json(200, body)

    def _pkce(self) -> bool:
        return _version_at_least(self.config.version, (4, 3))

    def _metadata(self, request: httpx.Request) -> httpx.Response:
        if not self._pkce():
            return self._html(404, "The page you are looking for isn't here.")
        return self._json(200, {
            "issuer": self.base_url + "/", "authorization_endpoint": f"{self.base_url}/oauth/authorize",
            "token_endpoint": f"{self.base_url}/oauth/token", "revocation_endpoint": f"{self.base_url}/oauth/revoke",
            "scopes_supported": sorted(KNOWN_SCOPES), "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "app_registration_endpoint": f"{self.base_url}/api/v1/apps",
        })

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        app = self.apps.get(params.get("client_id", ""))
        if app is None:
            return self._html(401, "Client authentication failed due to unknown client (invalid_client).")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in app["redirect_uris"]:
            return self._html(400, "The redirect uri included is not valid (invalid_redirect_uri).")

        def back(**query) -> httpx.Response:
            if params.get("state") is not None:
                query["state"] = params["state"]
            if redirect_uri == OOB:
                return self._html(200, f"Copy this code: {query.get('code', query.get('error'))}")
            return httpx.Response(302, headers={"Location": f"{redirect_uri}?{urlencode(query)}"})

        if params.get("response_type") != "code":
            return back(error="unsupported_response_type")
        scopes = (params.get("scope") or "read").replace("+", " ").split()
        if not set(scopes) <= set(app["scopes"]):
            return back(error="invalid_scope", error_description="The requested scope is invalid, unknown, or malformed.")
        challenge = None
        if self._pkce() and params.get("code_challenge"):
            if params.get("code_challenge_method") != "S256":
                return back(error="invalid_request", error_description="Code challenge method must be S256.")
            challenge = params["code_challenge"]
        if self.config.deny:
            return back(error="access_denied", error_description="The resource owner or authorization server denied the request.")
        code = secrets.token_urlsafe(32)
        self.codes[code] = {"client_id": app["client_id"], "redirect_uri": redirect_uri, "scopes": scopes,
                            "challenge": challenge, "expires_at": self.now() + self.config.code_ttl, "used": False}
        return back(code=code)

    def _client_of(self, request: httpx.Request, form: dict) -> dict | None:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return None
        app = self.apps.get(client_id or "")
        if app is None or not client_secret or not secrets.compare_digest(app["client_secret"], client_secret):
            return None
        return app

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = self._form(request)
        grant_type = form.get("grant_type")
        if grant_type not in ("authorization_code", "client_credentials"):
            return self._json(400, {"error": "unsupported_grant_type", "error_description":
                                    "The authorization grant type is not supported by the authorization server."})
        app = self._client_of(request, form)
        if app is None:
            return self._json(401, INVALID_CLIENT)
        if grant_type == "client_credentials":
            token = secrets.token_urlsafe(32)
            self.tokens[token] = {"scopes": set(app["scopes"]), "user": False, "revoked": False,
                                  "client_id": app["client_id"]}
            return self._json(200, {"access_token": token, "token_type": "Bearer",
                                    "scope": " ".join(app["scopes"]), "created_at": int(self.now())})
        code = self.codes.get(form.get("code") or "")
        if code is None or code["used"] or code["expires_at"] < self.now() or code["client_id"] != app["client_id"]:
            return self._json(400, INVALID_GRANT)
        code["used"] = True   # one exchange per code, whatever its outcome
        if form.get("redirect_uri") != code["redirect_uri"]:
            return self._json(400, INVALID_GRANT)
        if code["challenge"] is not None:
            verifier = form.get("code_verifier") or ""
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not verifier or digest != code["challenge"]:
                return self._json(400, INVALID_GRANT)
        token = secrets.token_urlsafe(32)
        self.tokens[token] = {"scopes": set(code["scopes"]), "user": True, "revoked": False,
                              "client_id": app["client_id"]}
        return self._json(200, {"access_token": token, "token_type": "Bearer",
                                "scope": " ".join(code["scopes"]), "created_at": int(self.now())})

    def _revoke(self, request: httpx.Request) -> httpx.Response:
        form = self._form(request)
        app = self._client_of(request, form)
        if app is None:
            return self._json(403, {"error": "unauthorized_client", "error_description":
                                    "You are not authorized to revoke this token"})
        record = self.tokens.get(form.get("token") or "")
        if record is not None and record["client_id"] == app["client_id"]:
            record["revoked"] = True
        return self._json(200, {})


# --------------------------------------------------------------------------- real HTTP


def serve(fake: FakeMastodon, host: str = "127.0.0.1", port: int = 0):
    """Serve ``fake`` over real HTTP in a daemon thread; returns ``(server, thread)``."""
    from archiver.sim.server import serve_fake

    return serve_fake(fake, host, port, name="fake-mastodon",
                      crash_response=lambda error: httpx.Response(
                          500, json={"error": f"fake crashed: {type(error).__name__}"}))


def main(argv: list[str] | None = None) -> None:
    """``archiver simulate mastodon --port N ...``: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="archiver simulate mastodon",
                                     description="Serve a fake Mastodon instance on 127.0.0.1.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--videos", "--statuses", dest="statuses", type=int, default=30,
                        help="statuses of the owner (`archiver simulate` passes --videos)")
    parser.add_argument("--followers", type=int, default=50)
    parser.add_argument("--following", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=300, help="requests per token per 5 minutes")
    parser.add_argument("--paged-limit", type=int, default=300, help="paging requests per 15 minutes")
    parser.add_argument("--retry-after", default=None, help="Retry-After value on 429 responses")
    parser.add_argument("--version", dest="server_version", default="4.3.0",
                        help="Mastodon version to play (before 4.3: no PKCE)")
    parser.add_argument("--hide-collections", action="store_true")
    parser.add_argument("--token-file", default=None,
                        help="mint a user token and write it to this file (mode 0600), to try "
                             "`archiver auth mastodon --token-stdin`")
    parser.add_argument("--request-log", metavar="PATH", default=None,
                        help="append one line per request answered (METHOD PATH STATUS, no query string) "
                             "to this file, for tests that count a client's requests")
    args = parser.parse_args(argv)
    config = FakeMastodonConfig(
        statuses=args.statuses, followers=args.followers, following=args.following, seed=args.seed,
        latency_ms=args.latency_ms, fail_rate=args.fail_rate, rate_limit=args.rate_limit,
        paged_limit=args.paged_limit, retry_after=args.retry_after, version=args.server_version,
        hide_collections=args.hide_collections)
    fake = FakeMastodon(config)
    if args.request_log:
        from archiver.sim.server import log_requests

        log_requests(fake, args.request_log)
    server, _thread = serve(fake, args.host, args.port)
    if args.token_file:
        import os

        descriptor = os.open(args.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(fake.issue_token())
    from archiver.sim.server import serve_until_signalled

    serve_until_signalled(server, fake)


if __name__ == "__main__":
    main()
