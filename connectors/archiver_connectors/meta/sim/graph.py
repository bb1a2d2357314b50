"""Graph API mechanics for the fakes of Instagram, Facebook and Threads: small pieces a
fake composes (each takes the fake's clock as ``now``; none holds a lock, the fake's own
lock covers them). From shared/platforms/instagram.md §1–§5, facebook.md §3–§5,
threads.md §3–§5.

- ``parse_fields``: the ``fields`` parameter, nested ``a{b,c}`` and modifiers
  (``comments.summary(true).limit(0)``) -> ``Fields``.
- ``GraphError`` + ``error_response``: the error envelope
  ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``.
- ``CursorPaging``: keyset paging with opaque cursors, ``paging.cursors`` and a full-URL
  ``paging.next`` that carries the caller's ``access_token`` (none on the last page).
- ``UsageWindow``: calls in a rolling window on the fake clock -> ``X-App-Usage`` /
  ``X-Business-Use-Case-Usage`` (keyed by an id) / ``X-Page-Usage`` headers, and whether
  the next call is over the limit.
- ``SignedCdn``: signed links ``…?oh=<sig>&oe=<hex epoch>`` that 403 once expired or
  tampered with.
- ``TokenStore``: single-use authorization codes (redirect_uri checked, TTL) and
  short/long-lived tokens with scopes, ``issued_at`` and expiry by the fake clock;
  revoke all, expire all.
"""

from __future__ import annotations

import base64
import collections
import datetime as _dt
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from archiver.sim.server import FakeClock

Clock = Callable[[], float]

# --------------------------------------------------------------------------- fields


class Fields(dict):
    """Parsed ``fields``: name -> nested ``Fields`` (from ``name{...}``) or None. Compares
    equal to a plain dict of the same shape. ``modifiers`` maps a name to its modifiers in
    order: ``comments.summary(true).limit(0)`` -> ``{"comments": {"summary": "true",
    "limit": "0"}}`` (a modifier without parentheses has the value "")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.modifiers: dict[str, dict[str, str]] = {}

    def modifier(self, name: str, key: str, default: str | None = None) -> str | None:
        return self.modifiers.get(name, {}).get(key, default)

    def names(self) -> str:
        """The spec again, without modifiers (for a ``paging.next`` URL)."""
        return ",".join(self)


_MODIFIER = re.compile(r"\.([a-z_]+)(?:\(([^()]*)\))?")


def parse_fields(spec: str, *, allow_modifiers: bool = True) -> Fields:
    """``"id,caption,children{id,media_url}"`` -> ``{"id": None, "caption": None,
    "children": {"id": None, "media_url": None}}``; with modifiers,
    ``"reactions.summary(total_count).limit(0),comments.limit(5){id,message}"``.
    Raises ValueError on bad braces, a bad top-level name, or a modifier when
    ``allow_modifiers`` is false."""
    pos = 0

    def add(found: Fields, raw: str, sub: Fields | None) -> None:
        raw = raw.strip()
        if not raw:
            if sub is not None:
                found[""] = sub      # "{...}" without a name: rejected below at the top level
            return
        name, dot, rest = raw.partition(".")
        if dot:
            if not allow_modifiers:
                raise ValueError(f"modifiers are not accepted here: {raw!r}")
            mods: dict[str, str] = {}
            text = "." + rest
            while text:
                match = _MODIFIER.match(text)
                if not match:
                    raise ValueError(f"bad field modifier in {raw!r}")
                mods[match.group(1)] = match.group(2) or ""
                text = text[match.end():]
            found.modifiers[name.strip()] = mods
        found[name.strip()] = sub

    def parse(level: int) -> Fields:
        nonlocal pos
        found = Fields()
        name = ""
        depth = 0   # inside a modifier's parentheses commas do not separate fields
        while pos < len(spec):
            char = spec[pos]
            pos += 1
            if char == "(":
                depth += 1
                name += char
            elif char == ")":
                depth -= 1
                if depth < 0:
                    raise ValueError("unbalanced )")
                name += char
            elif depth:
                name += char
            elif char == ",":
                add(found, name, None)
                name = ""
            elif char == "{":
                add(found, name, parse(level + 1))
                name = ""
                if pos < len(spec) and spec[pos] == ",":
                    pos += 1
            elif char == "}":
                if level == 0:
                    raise ValueError("unbalanced }")
                add(found, name, None)
                return found
            else:
                name += char
        if level:
            raise ValueError("unbalanced {")
        if depth:
            raise ValueError("unbalanced (")
        add(found, name, None)
        return found

    result = parse(0)
    if any(not re.fullmatch(r"[a-z_]+", key) for key in result):
        raise ValueError("bad field name")
    return result


# --------------------------------------------------------------------------- errors and responses


class GraphError(Exception):
    """Raised inside a fake; ``error_response`` turns it into the envelope."""

    def __init__(self, code: int, message: str, subcode: int | None = None, status: int = 400,
                 headers: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.subcode, self.status = code, message, subcode, status
        self.headers = headers or {}


def json_response(status: int, body: Any, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, headers={"Content-Type": "application/json", **(headers or {})},
                          content=json.dumps(body).encode())


def error_response(error: GraphError, *, error_type: str = "OAuthException",
                   headers: dict | None = None) -> httpx.Response:
    """``{"error": {"message", "type", "code", "error_subcode"?, "fbtrace_id", "is_transient"?}}``
    with the error's status; codes 1 and 2 are marked transient."""
    envelope: dict[str, Any] = {"message": error.message, "type": error_type, "code": error.code,
                                "fbtrace_id": secrets.token_urlsafe(12)}
    if error.subcode is not None:
        envelope["error_subcode"] = error.subcode
    if error.code in (1, 2):
        envelope["is_transient"] = True
    return json_response(error.status, {"error": envelope}, {**(headers or {}), **error.headers})


def graph_time(epoch: float) -> str:
    """Graph's timestamp form: ``2024-04-25T10:13:20+0000``."""
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


# --------------------------------------------------------------------------- paging


@dataclass
class CursorPaging:
    """Keyset paging over items ordered by ``key`` (default ``(timestamp, id)``), with
    opaque cursors. ``next_url``/``previous`` are full URLs under ``version`` that carry
    the caller's token, as Graph's do."""

    default_limit: int = 25
    max_limit: int = 100
    version: str = "v23.0"
    tag: str = "QVFI"    # what a decoded cursor starts with; the fake rejects others
    key: Callable[[dict], tuple] = field(default=lambda item: (item["timestamp"], item["id"]))

    def cursor(self, item: dict) -> str:
        stamp, ident = self.key(item)
        return base64.b64encode(f"{self.tag}:{stamp}:{ident}".encode()).decode().rstrip("=")

    def uncursor(self, cursor: str) -> tuple[int, str]:
        try:
            text = base64.b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            tag, stamp, ident = text.split(":")
            if tag != self.tag:
                raise ValueError
            return int(stamp), ident
        except Exception:
            raise GraphError(100, "Invalid parameter: the after/before cursor is not valid") from None

    def url(self, base_url: str, edge: str, token: str, fields: str, limit: int, **where: str) -> str:
        query = urlencode({"access_token": token, "fields": fields, "limit": limit, **where})
        return f"{base_url}/{self.version}{edge}?{query}"

    def limit_of(self, params) -> int:
        try:
            limit = int(params.get("limit") or self.default_limit)
        except ValueError:
            raise GraphError(100, "Invalid parameter: limit must be an integer") from None
        if not 1 <= limit <= self.max_limit:
            raise GraphError(100, f"Invalid parameter: limit must be between 1 and {self.max_limit}")
        return limit

    def page(self, params, items: list[dict], render: Callable[[dict], dict], *, base_url: str, edge: str,
             token: str, newest_first: bool = True) -> dict:
        """One page of ``items`` for the request's ``params`` (``limit``, ``after``,
        ``before``, ``fields``): ``{"data": [...], "paging": {"cursors", "next"?, "previous"?}}``."""
        limit = self.limit_of(params)
        ordered = sorted(items, key=self.key, reverse=newest_first)
        keys = [self.key(i) for i in ordered]
        start, end = 0, None
        if params.get("after"):
            at = self.uncursor(params["after"])
            start = sum(1 for k in keys if (k > at if newest_first else k < at) or k == at)
        elif params.get("before"):
            at = self.uncursor(params["before"])
            end = sum(1 for k in keys if (k > at if newest_first else k < at))
            start = max(0, end - limit)
        chunk = ordered[start:start + limit] if end is None else ordered[start:end]
        body: dict = {"data": [render(i) for i in chunk]}
        if chunk:
            fields = params.get("fields", "")
            paging: dict = {"cursors": {"before": self.cursor(chunk[0]), "after": self.cursor(chunk[-1])}}
            if start + len(chunk) < len(ordered):
                paging["next"] = self.url(base_url, edge, token, fields, limit, after=self.cursor(chunk[-1]))
            if start > 0:
                paging["previous"] = self.url(base_url, edge, token, fields, limit, before=self.cursor(chunk[0]))
            body["paging"] = paging
        return body

    def expansion(self, items: list[dict], render: Callable[[dict], dict], *, limit: int, base_url: str,
                  edge: str, token: str, fields: str) -> dict:
        """A nested edge inside an object (``replies{...}``): the first ``limit`` items
        (oldest first), with ``paging.next`` to ``edge`` when there are more."""
        ordered = sorted(items, key=self.key)
        page: dict = {"data": [render(i) for i in ordered[:limit]]}
        if len(ordered) > limit:
            after = self.cursor(ordered[limit - 1])
            page["paging"] = {"cursors": {"before": self.cursor(ordered[0]), "after": after},
                              "next": self.url(base_url, edge, token, fields, limit, after=after)}
        return page


# --------------------------------------------------------------------------- usage headers


class UsageWindow:
    """Calls in a rolling window (``window`` seconds of the fake clock) against ``limit``."""

    def __init__(self, now: Clock, limit: int, window: float = 3600.0):
        self.now, self.limit, self.window = now, limit, window
        self.hits: collections.deque = collections.deque()

    def _prune(self) -> None:
        now = self.now()
        while self.hits and self.hits[0] <= now - self.window:
            self.hits.popleft()

    def full(self) -> bool:
        """The next call would be over the limit (it is then refused, not counted)."""
        self._prune()
        return len(self.hits) >= self.limit

    def hit(self) -> None:
        self.hits.append(self.now())

    def percent(self) -> int:
        self._prune()
        return int(100 * len(self.hits) / max(1, self.limit))

    def regain_minutes(self) -> int:
        """Minutes until the oldest call leaves the window, once full; else 0."""
        self._prune()
        if len(self.hits) >= self.limit and self.hits:
            return max(1, math.ceil((self.hits[0] + self.window - self.now()) / 60))
        return 0

    def headers(self, *, app: bool = True, business_id: str | None = None, business_type: str = "instagram",
                page: bool = False) -> dict[str, str]:
        """The usage headers: ``X-App-Usage`` (``app``), ``X-Business-Use-Case-Usage``
        keyed by ``business_id`` with entries of ``business_type`` ("instagram", "pages", …),
        ``X-Page-Usage`` (``page``)."""
        percent, regain = self.percent(), self.regain_minutes()
        usage = {"call_count": percent, "total_time": percent // 2, "total_cputime": percent // 2}
        out: dict[str, str] = {}
        if app:
            out["X-App-Usage"] = json.dumps(usage)
        if business_id is not None:
            out["X-Business-Use-Case-Usage"] = json.dumps({business_id: [{
                "type": business_type, "call_count": percent, "total_cputime": percent // 2,
                "total_time": percent // 2, "estimated_time_to_regain_access": regain}]})
        if page:
            out["X-Page-Usage"] = json.dumps(usage)
        return out


# --------------------------------------------------------------------------- signed CDN


class SignedCdn:
    """Signed, expiring CDN links served by the fake itself:
    ``/cdn/v/<key>_n.jpg`` (images) and ``/cdn/o1/<key>.mp4`` (videos), each with
    ``oh=<signature>`` and ``oe=<expiry, hex epoch>``. A bad signature or an expired
    link gets 403. ``body(kind, key)`` gives a file's bytes and MIME type."""

    def __init__(self, secret: bytes, now: Clock, ttl: int, body: Callable[[str, str], tuple[bytes, str]]):
        self.secret, self.now, self.ttl, self.body = secret, now, ttl, body

    def sign(self, path: str, expires: int) -> str:
        return "00_" + hmac.new(self.secret, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def key(self, kind: str, ident: str) -> str:
        """The file's key in its path (what ``body`` is given): the same object, the same
        key, so a fake can hand out the same bytes elsewhere (its export files)."""
        return hmac.new(self.secret, f"{kind}:{ident}".encode(), hashlib.sha256).hexdigest()[:24]

    def url(self, base_url: str, kind: str, ident: str) -> str:
        """A fresh link to the file of ``kind`` ("video" is an .mp4, anything else an image)
        for the object ``ident``; the same object always has the same path."""
        key = self.key(kind, ident)
        path = f"/cdn/o1/{key}.mp4" if kind == "video" else f"/cdn/v/{key}_n.jpg"
        expires = int(self.now()) + self.ttl
        return f"{base_url}{path}?{urlencode({'_nc_cat': 1, 'oh': self.sign(path, expires), 'oe': format(expires, 'X')})}"

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        image = re.fullmatch(r"/cdn/v/([0-9a-f]{24})_n\.jpg", path)
        video = re.fullmatch(r"/cdn/o1/([0-9a-f]{24})\.mp4", path)
        if request.method not in ("GET", "HEAD") or not (image or video):
            return httpx.Response(404, content=b"Not Found")
        expires_hex, signature = request.url.params.get("oe", ""), request.url.params.get("oh", "")
        try:
            expires = int(expires_hex, 16)
        except ValueError:
            return httpx.Response(403, content=b"Bad URL hash")
        if not hmac.compare_digest(signature, self.sign(path, expires)):
            return httpx.Response(403, content=b"Bad URL hash")
        if expires < self.now():
            return httpx.Response(403, content=b"URL signature expired")
        match = image or video
        assert match is not None   # one of the two matched (checked above)
        body, mime = self.body("image" if image else "video", match.group(1))
        # Resume support: a plain "bytes=N-" range.
        ranged = re.fullmatch(r"bytes=(\d+)-", request.headers.get("range", "").strip())
        if ranged and int(ranged.group(1)) < len(body):
            start = int(ranged.group(1))
            return httpx.Response(206, content=body[start:], headers={
                "Content-Type": mime, "Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})
        return httpx.Response(200, content=body, headers={"Content-Type": mime, "Accept-Ranges": "bytes"})


# --------------------------------------------------------------------------- codes and tokens


class CodeRefused(Exception):
    """An authorization code the exchange must refuse; the message says why."""


CODE_REUSED = "This authorization code has been used or has expired"
REDIRECT_MISMATCH = ("Error validating verification code. Please make sure your redirect_uri is "
                     "identical to the one you used in the OAuth dialog request")


class TokenStore:
    """Authorization codes and access tokens of one fake, aged by its clock.

    A token record: ``kind`` ("short", "long", or a fake's own such as "page"), ``scopes``
    (comma-separated), ``issued_at``, ``expires_at``, ``revoked``, plus what ``mint`` was
    given (e.g. ``user_id``, ``page_id``)."""

    def __init__(self, now: Clock, *, prefix: str = "IGAA", short_ttl: int = 3600, long_ttl: int = 60 * 86400,
                 code_ttl: int = 3600, code_prefix: str = "AQB"):
        self.now, self.prefix, self.code_prefix = now, prefix, code_prefix
        self.ttl = {"short": short_ttl, "long": long_ttl}
        self.code_ttl = code_ttl
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}

    # -- codes -------------------------------------------------------------------------
    def new_code(self, redirect_uri: str, scopes: str, **extra) -> str:
        code = self.code_prefix + secrets.token_urlsafe(60)
        self.codes[code] = {"redirect_uri": redirect_uri, "scopes": scopes, "used": False,
                            "expires_at": self.now() + self.code_ttl, **extra}
        return code

    def take_code(self, code: str, redirect_uri: str | None) -> dict:
        """The code's record, now used; CodeRefused when unknown, used, expired, or the
        redirect_uri is not the one the login window had."""
        record = self.codes.get(code)
        if record is None or record["used"] or record["expires_at"] <= self.now():
            raise CodeRefused(CODE_REUSED)
        if redirect_uri != record["redirect_uri"]:
            raise CodeRefused(REDIRECT_MISMATCH)
        record["used"] = True
        return record

    # -- tokens ------------------------------------------------------------------------
    def mint(self, kind: str, scopes: str, issued_at: float | None = None, ttl: int | None = None, **extra) -> str:
        token = self.prefix + secrets.token_urlsafe(40).replace("-", "Z").replace("_", "Y")
        issued = self.now() if issued_at is None else issued_at
        life = ttl if ttl is not None else self.ttl.get(kind, self.ttl["long"])
        self.tokens[token] = {"kind": kind, "issued_at": issued, "scopes": scopes, "revoked": False,
                              "expires_at": issued + life, **extra}
        return token

    def expires_in(self, token: str) -> int:
        return int(self.tokens[token]["expires_at"] - self.now())

    def record(self, token: str) -> dict:
        """The token's record; GraphError 190 (subcode 467 unknown, 460 revoked, 463 expired)."""
        record = self.tokens.get(token)
        if record is None:
            raise GraphError(190, "Invalid OAuth access token - Cannot parse access token", 467)
        if record["revoked"]:
            raise GraphError(190, "Error validating access token: The user has not authorized application.", 460)
        if record["expires_at"] <= self.now():
            stamp = _dt.datetime.fromtimestamp(record["expires_at"], _dt.timezone.utc).strftime(
                "%A, %d-%b-%y %H:%M:%S UTC")
            raise GraphError(190, f"Error validating access token: Session has expired on {stamp}.", 463)
        return record

    def info(self, token: str) -> dict | None:
        return self.tokens.get(token)

    def expire_all(self) -> None:
        for record in self.tokens.values():
            record["expires_at"] = min(record["expires_at"], self.now() - 1)

    def revoke_all(self) -> None:
        for record in self.tokens.values():
            record["revoked"] = True


def caller_token(request: httpx.Request, *, bearer_supported: bool = True) -> str:
    """The request's token: ``access_token=`` in the query, else (if supported) an
    ``Authorization: Bearer`` header; GraphError 190 without one."""
    token = request.url.params.get("access_token")
    header = request.headers.get("authorization", "")
    if not token and bearer_supported and header.startswith("Bearer "):
        token = header[len("Bearer "):].strip()
    if not token:
        raise GraphError(190, "An active access token must be used to query information about the current user.")
    return token


# --------------------------------------------------------------------------- the fakes' request loop


def cdn_file(kind: str, key: str) -> tuple[bytes, str]:
    """The body and type a fake's SignedCdn serves for a file: a small valid MP4 for a
    "video", a PNG for anything else, both made from ``key`` (the same key, the same bytes)."""
    from archiver_connectors.tiktok.sim.fake import fake_mp4, fake_png

    return (fake_mp4(key), "video/mp4") if kind == "video" else (fake_png(key), "image/png")


def long_lived_exchange(request: httpx.Request, tokens: TokenStore, *, grant_type: str,
                        client_secret: str) -> httpx.Response:
    """``GET /access_token?grant_type=<ig|th>_exchange_token&client_secret=…&access_token=…``:
    a short-lived token traded for a long-lived one with the same scopes (Instagram's and
    Threads' Login; Facebook's is a grant of /oauth/access_token)."""
    q = request.url.params
    if request.method != "GET":
        raise GraphError(100, "Unsupported post request.")
    if q.get("grant_type") != grant_type:
        raise GraphError(100, f"Invalid parameter: grant_type must be {grant_type}")
    if not hmac.compare_digest(q.get("client_secret", ""), client_secret):
        raise GraphError(101, "Error validating client secret.")
    record = tokens.record(q.get("access_token", ""))
    if record["kind"] != "short":
        raise GraphError(100, "Invalid parameter: access_token must be a short-lived token")
    token = tokens.mint("long", record["scopes"])
    return json_response(200, {"access_token": token, "token_type": "bearer", "expires_in": tokens.expires_in(token)})



class LoginRefused(Exception):
    """The login window refuses the request: it answers a 400 HTML page with this text."""


def login_request(params, *, client_id: str, app_refused: str = "Invalid app ID",
                  redirect_refused: str = "Invalid redirect_uri",
                  response_type_optional: bool = False) -> tuple[str, list[str], dict[str, str]]:
    """The checks Meta's login window makes of its query (``/oauth/authorize``, Facebook's
    ``/dialog/oauth``): the app's id, ``response_type=code`` (Facebook's may leave it out:
    ``response_type_optional``), an http(s) ``redirect_uri``. Returns the redirect_uri, the
    requested scopes (comma- or space-separated) and ``{"state": …}`` (empty without one);
    LoginRefused with the page's text otherwise. Which scopes are valid is the caller's."""
    if params.get("client_id") != client_id:
        raise LoginRefused(app_refused)
    if params.get("response_type", "code" if response_type_optional else None) != "code":
        raise LoginRefused("response_type must be code")
    redirect_uri = params.get("redirect_uri") or ""
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoginRefused(redirect_refused)
    requested = [s for s in re.split(r"[,\s]+", params.get("scope") or "") if s]
    state = {"state": params["state"]} if params.get("state") else {}
    return redirect_uri, requested, state


def form_body(request: httpx.Request) -> dict[str, str] | None:
    """A POST's ``application/x-www-form-urlencoded`` body as a dict (first value of each
    key); None when the body is of another type (Meta then misses the client_id)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    return {k: v[0] for k, v in parse_qs(request.content.decode("utf-8", "replace"), keep_blank_values=True).items()}


class GraphFake(FakeClock):
    """What every Meta fake does with a request: ``handle`` (usable as
    ``httpx.MockTransport(fake.handle)``) waits the configured latency, answers under the
    fake's one lock through the subclass's ``_dispatch``, turns a raised GraphError into
    Graph's error envelope (``_error``) and logs (method, path, status); and what tests do
    to its tokens. The subclass passes its config (with ``seed`` and ``latency_ms``) and
    sets ``tokens`` (a TokenStore)."""

    config: Any
    tokens: TokenStore

    def __init__(self, config: Any, base_url: str, *, world: str = "world", faults: str = "faults") -> None:
        """The parts every Meta fake has: its config, base URL, clock, lock, request log and
        two random streams seeded from ``config.seed`` (``world`` builds the world,
        ``faults`` draws the injected failures, so a fail rate does not change the world)."""
        self.config = config
        self.base_url = base_url.rstrip("/")
        self.clock_offset = 0.0
        self._lock = threading.RLock()
        self._rng = random.Random(f"{world}:{config.seed}")
        self._fault_rng = random.Random(f"{faults}:{config.seed}")
        self.log: collections.deque = collections.deque(maxlen=10_000)   # (method, path, status)

    # -- what tests do to the fake's tokens
    def expire_tokens(self) -> None:
        """Every token has expired (by the fake's clock)."""
        with self._lock:
            self.tokens.expire_all()

    def revoke_all(self) -> None:
        """Every token is revoked (the person removed the app)."""
        with self._lock:
            self.tokens.revoke_all()

    def token_info(self, token: str) -> dict | None:
        """The fake's record of a token (kind, scopes, times), None for one it never issued."""
        return self.tokens.info(token)

    # -- requests

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request; usable as ``httpx.MockTransport(fake.handle)``."""
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)
        with self._lock:
            try:
                response = self._dispatch(request)
            except GraphError as error:
                response = self._error(error)
            self.log.append((request.method, request.url.path, response.status_code))
            return response

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError

    def _fail_at_random(self, headers: dict[str, str]) -> None:
        """Graph's transient error 2 (HTTP 500) for a share ``config.fail_rate`` of the data
        calls, drawn from the faults' own random stream."""
        if self.config.fail_rate and self._fault_rng.random() < self.config.fail_rate:
            raise GraphError(2, "An unexpected error has occurred. Please retry your request later.", status=500,
                             headers=headers)

    def _error(self, error: GraphError) -> httpx.Response:
        return error_response(error)

    @staticmethod
    def _html(status: int, text: str) -> httpx.Response:
        """A page of the login window (it answers a bad request in HTML, not JSON)."""
        return httpx.Response(status, headers={"Content-Type": "text/html; charset=utf-8"},
                              content=f"<html><body><p>{text}</p></body></html>".encode())
