"""The Graph API mechanics Instagram, Facebook and Threads share (client side).

See ../shared/platforms/instagram.md §3–§5, facebook.md §3–§5 and threads.md §3–§5:

* errors come as a ``{"error": {"code", "error_subcode", "message", ...}}`` envelope
  (or api.instagram.com's flat OAuth form); the code, not the HTTP status, decides
  what the run does (``error_class``);
* usage headers (``X-App-Usage``, ``X-Business-Use-Case-Usage`` keyed by an account or
  Page id, ``X-Page-Usage``) say how much of the allowance is used (``UsagePacer``);
* paging follows ``paging.cursors.after``; ``paging.next`` is a full URL that carries the
  caller's ``access_token``, so it is only read as a signal and never kept
  (``next_cursor``, ``scrub_token_url``, ``scrubbed_payload``);
* ``GraphApi`` is the base of each platform's API class: ``get`` with the throttle
  waits, retries and scrubbed errors, and ``pages``;
* the OAuth steps that are the same everywhere (authorize URL, code exchange,
  short-lived -> long-lived exchange) and ``LongLivedTokens``, a 60-day token that is
  exchanged for a fresh one (never a refresh token) once old enough.

Platform-specific things (fields, messages, the personal-account text) stay in the
platforms' own api.py.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from typing import Any, ClassVar, Iterator
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from archiver.net.client import ApiClient, NetError, Pacer, RetryPolicy, scrubber
from archiver.net.tokens import StoredTokens
from archiver.records import iso_utc

GRAPH_VERSION = "v23.0"
DAY = 86400

# Graph error codes (instagram.md §5, facebook.md §4–§5, threads.md §5): what each means for the run.
AUTH_CODES = {190, 102, 458, 459, 460, 463, 464, 467, 492}     # the token is no good: authorize again
REAUTH_SUBCODES = {460, 463, 467, 458, 459, 464, 492}           # a refresh refused with 190 + one of these
THROTTLE_CODES = {4, 17, 32, 613, 80001, 80002}                 # app, user, Page, custom, Pages BUC, IG BUC
BLOCKED_CODES = {368}                                           # temporarily blocked: waited out like a throttle
TRANSIENT_CODES = {1, 2}                                        # try again shortly
PERMISSION_CODES = {10} | set(range(200, 300))                  # a permission is missing (10, 200–299)
NOT_FOUND = (100, 33)                                           # object missing or not visible
THROTTLE_RETRIES = 4          # a throttled call is tried again this often before the run stops
TRANSIENT_RETRIES = 3
MAX_THROTTLE_WAIT = 15 * 60   # longer than this: stop now, resume from the checkpoint next run
DEFAULT_THROTTLE_WAIT = 60.0  # when no header says how long
SLOW_DOWN_AT = 75             # usage percentage from which calls are spaced out
TOKEN_PARAMS = ("access_token", "appsecret_proof", "client_secret", "fb_exchange_token", "code")


class GraphError(NetError):
    """A Graph error envelope: ``code`` and ``subcode`` decide, not the HTTP status."""

    def __init__(self, code: int | None, subcode: int | None, message: str, *, kind: str,
                 status: int | None, path: str, title: str = "Graph"):
        super().__init__(f"{title} {path}: error {code}" + (f"/{subcode}" if subcode else "")
                         + f": {message}", kind=kind, status=status)
        self.code, self.subcode = code, subcode


def graph_error_of(body: Any) -> tuple[int | None, int | None, str] | None:
    """(code, subcode, message) of a Graph envelope or of api.instagram.com's flat OAuth
    error, or None when the body is not an error."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        return _int(error.get("code")), _int(error.get("error_subcode")), str(error.get("message", ""))
    if "error_type" in body or "error_message" in body:
        return _int(body.get("code")), None, str(body.get("error_message", ""))
    return None


def error_class(code: int | None, subcode: int | None = None) -> str | None:
    """What a Graph error code means: "auth", "throttle" (incl. 368 temporarily blocked:
    "blocked"), "transient", "permission", "not_found" (100/33), or None (anything else)."""
    if code in AUTH_CODES:
        return "auth"
    if code in THROTTLE_CODES:
        return "throttle"
    if code in BLOCKED_CODES:
        return "blocked"
    if code in TRANSIENT_CODES:
        return "transient"
    if code in PERMISSION_CODES:
        return "permission"
    if (code, subcode) == NOT_FOUND:
        return "not_found"
    return None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- pacing


class UsagePacer(Pacer):
    """A Pacer that reads Meta's usage headers.

    ``X-App-Usage``, ``X-Business-Use-Case-Usage`` and ``X-Page-Usage`` give percentages
    of the allowance used. From ``SLOW_DOWN_AT`` percent calls are spaced out (more as it
    nears 100); at 100, or when ``estimated_time_to_regain_access`` (minutes) is set,
    calls stop until then: more calls while throttled prolong the throttle.
    """

    def observe(self, host: str, headers: httpx.Headers) -> None:
        super().observe(host, headers)
        percent, regain_minutes = usage_of(headers)
        wait = 0.0
        if regain_minutes:
            wait = regain_minutes * 60.0
        elif percent >= 100:
            wait = DEFAULT_THROTTLE_WAIT
        elif percent >= SLOW_DOWN_AT:
            wait = 2.0 * 2 ** ((percent - SLOW_DOWN_AT) / 5)   # 2 s at 75 %, 64 s at 100 %
        if wait:
            self.block(host, min(wait, self.max_wait))

    def wait(self, host: str, sleep) -> None:
        """As Pacer.wait; a block, once slept off, is over (the sleep may be a test's
        instant one, so the clock alone cannot say so)."""
        super().wait(host, sleep)
        with self._lock:
            self._blocked_until.pop(host, None)

    def block(self, host: str, seconds: float) -> None:
        """No call to ``host`` for ``seconds`` (the next ``wait`` sleeps it off)."""
        with self._lock:
            until = self._clock() + seconds
            self._blocked_until[host] = max(self._blocked_until.get(host, 0.0), until)


def usage_entries(headers: httpx.Headers) -> list[dict]:
    """Every usage entry of the three headers: X-App-Usage and X-Page-Usage are one flat
    object each; X-Business-Use-Case-Usage maps an id (account or Page) to a list of
    entries (``"type": "instagram"``, ``"pages"``, ...). Unreadable headers are skipped."""
    entries: list[dict] = []
    for name in ("x-app-usage", "x-page-usage"):
        try:
            flat = json.loads(headers.get(name) or "{}")
        except ValueError:
            continue
        if isinstance(flat, dict):
            entries.append(flat)
    try:
        business = json.loads(headers.get("x-business-use-case-usage") or "{}")
    except ValueError:
        business = None
    if isinstance(business, dict):
        for values in business.values():
            entries.extend(v for v in (values if isinstance(values, list) else [values]) if isinstance(v, dict))
    return entries


def usage_of(headers: httpx.Headers) -> tuple[float, float]:
    """(highest usage percentage, estimated minutes to regain access) over all headers."""
    percent, regain = 0.0, 0.0
    for entry in usage_entries(headers):
        for key in ("call_count", "total_time", "total_cputime"):
            if isinstance(entry.get(key), (int, float)):
                percent = max(percent, float(entry[key]))
        if isinstance(entry.get("estimated_time_to_regain_access"), (int, float)):
            regain = max(regain, float(entry["estimated_time_to_regain_access"]))
    return percent, regain


# --------------------------------------------------------------------------- paging and scrubbing


def next_cursor(body: dict) -> str | None:
    """The ``after`` cursor when there is a next page, else None. ``paging.next`` is only
    a signal (it is absent on the last page); its query is read for ``after`` only if the
    cursors are missing."""
    paging = body.get("paging") if isinstance(body, dict) else None
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    after = (paging.get("cursors") or {}).get("after")
    if after:
        return after
    values = parse_qs(urlsplit(paging["next"]).query).get("after")
    return values[0] if values else None


def scrub_token_url(url: str) -> str:
    """``url`` without its secret query parameters (``access_token`` and the like), the rest
    of the query kept: a ``paging.next`` URL fit to log or show."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in TOKEN_PARAMS]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))


def scrubbed_payload(item: dict, url_fields: tuple[str, ...] = ()) -> dict:
    """A payload fit to keep: signed CDN links (``url_fields``) lose their query, nested
    pages their ``paging`` (whose URLs hold the token), any other string carrying an
    ``access_token=`` loses it."""
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key in url_fields and isinstance(value, str):
            out[key] = scrubber.url(value)
        elif key == "paging":
            continue
        elif isinstance(value, dict):
            out[key] = scrubbed_payload(value, url_fields)
        elif isinstance(value, list):
            out[key] = [scrubbed_payload(v, url_fields) if isinstance(v, dict) else _scrub_str(v) for v in value]
        else:
            out[key] = _scrub_str(value)
    return out


def _scrub_str(value: Any) -> Any:
    if isinstance(value, str) and "access_token=" in value:
        return scrub_token_url(value)
    return value


# --------------------------------------------------------------------------- the API base


class GraphApi:
    """Graph calls for one account: ``get`` (error codes mapped to what the run must do,
    throttles waited out through the pacer, so cancellably) and ``pages``.

    Subclasses set ``title`` (for messages) and may override ``reauth_message`` and
    ``access_token`` (e.g. a Page token instead of the user's).
    """

    title: ClassVar[str] = "Graph"

    def __init__(self, graph_base: str, tokens: Any, *, transport=None, sleep=None, cancel=None,
                 pacer: UsagePacer | None = None, version: str | None = GRAPH_VERSION):
        self.tokens = tokens
        self.pacer = pacer or UsagePacer()
        self.host = urlsplit(graph_base).hostname or ""
        kwargs = {"sleep": sleep} if sleep else {}
        base = f"{graph_base}/{version}" if version else graph_base
        # No TokenProvider: the token goes in the query string (the ApiClient's header
        # refresh cannot help either — a Graph token is never renewed after a 190).
        self.client = ApiClient(base, transport=transport, cancel=cancel,
                                pacer=self.pacer, retry=RetryPolicy(attempts=6), **kwargs)
        self._lock = threading.Lock()
        self._fresh: dict[str, dict] = {}   # object id -> its answer with fresh links, for the run

    # -- hooks ---------------------------------------------------------------------------
    max_throttle_wait: float = MAX_THROTTLE_WAIT

    def access_token(self) -> str:
        return self.tokens.access_token()

    def reauth_message(self, detail: str) -> str:
        account = getattr(self.tokens, "account", "")
        platform = getattr(self.tokens, "platform", self.title.lower())
        return (f"{self.title} no longer accepts the stored authorization for account {account!r} ({detail}): "
                f"run `archiver auth {platform} --account {account}` again.")

    # -- calls ---------------------------------------------------------------------------
    def fresh_object(self, object_id: str, fields: str) -> dict:
        """``/{object_id}?fields=…`` asked once per run and kept: the answer that carries new
        signed links for the files of an object whose old link was refused (links expire;
        several files of one object, a video and its thumbnail, come from one call)."""
        with self._lock:
            body = self._fresh.get(object_id)
        if body is None:
            body = self.get(f"/{object_id}", {"fields": fields})
            with self._lock:
                self._fresh[object_id] = body
        return body

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict:
        """GET a Graph path; maps error codes to what the run must do."""
        label = re.sub(r"/\d+(?:_\d+)?", "/{id}", path)   # messages name the edge, not the ids
        throttled = transient = 0
        while True:
            query = {**(params or {}), "access_token": self.access_token()}
            response = self.client.request("GET", path, params=query, expect_json=True)
            try:
                body = response.json()
            except ValueError:
                raise NetError(f"{self.title} {label}: HTTP {response.status_code} without JSON",
                               kind="bad_response", status=response.status_code) from None
            error = graph_error_of(body)
            if error is None and response.status_code < 400:
                return body
            code, subcode, message = error or (None, None, f"HTTP {response.status_code}")
            what = error_class(code, subcode)
            if what == "auth":
                raise GraphError(code, subcode, self.reauth_message(message), kind="auth",
                                 status=response.status_code, path=label, title=self.title)
            if what in ("throttle", "blocked"):
                throttled += 1
                _, regain = usage_of(response.headers)
                wait = regain * 60 if regain else DEFAULT_THROTTLE_WAIT * 2 ** (throttled - 1)
                if throttled > THROTTLE_RETRIES or wait > self.max_throttle_wait:
                    raise GraphError(code, subcode, f"{message} — {self.title} is throttling this account; "
                                     f"the run stopped and resumes from its checkpoint next time "
                                     f"(about {max(1, round(wait / 60))} min)",
                                     kind="rate_limited", status=response.status_code, path=label, title=self.title)
                logging.getLogger(f"archiver.{self.title.lower()}").warning(
                    "%s throttled %s (error %s); waiting %.0fs", self.title, label, code, wait)
                self.pacer.block(self.host, wait)   # the next attempt sleeps it off, cancellably
                continue
            if what == "transient" and transient < TRANSIENT_RETRIES:
                transient += 1
                self.pacer.block(self.host, 2.0 ** transient)
                continue
            if what == "permission":
                kind = "auth"
            elif what == "not_found" or response.status_code == 404:
                kind = "gone"
            else:
                kind = "client"
            raise GraphError(code, subcode, message, kind=kind, status=response.status_code, path=label,
                             title=self.title)

    def pages(self, path: str, params: dict[str, Any], after: str | None = None) -> Iterator[tuple[list[dict], str | None]]:
        """(items, cursor of the next page or None) per page, following paging.cursors.
        The ``paging.next`` URL holds the token: only its ``after`` is read, never kept."""
        while True:
            body = self.get(path, {**params, **({"after": after} if after else {})})
            items = body.get("data") or []
            after = next_cursor(body)
            yield items, after
            if after is None:
                return

    def close(self) -> None:
        self.client.close()
        http = getattr(self.tokens, "client", None)
        if http is not None:
            http.close()


# --------------------------------------------------------------------------- tokens


class LongLivedTokens(StoredTokens):
    """A long-lived Graph token in the SecretStore, exchanged for a fresh one well before
    it expires (there is no refresh token).

    Stored record: access_token, user_id, issued_at and expires_at (epoch seconds),
    permissions. A refresh is due once less than ``refresh_when_left`` is left and the
    token is at least ``min_refresh_age`` old; it is ``GET {graph_base}/{refresh_path}
    ?grant_type={refresh_grant}&access_token=...``. A failed refresh of a still valid token
    only logs a warning (the token keeps working), an expired one needs `archiver auth` again.
    Subclasses set ``platform``, ``title``, ``refresh_grant`` and may override ``reauth_message``.
    """

    platform: ClassVar[str] = "graph"
    title: ClassVar[str] = "Graph"
    refresh_path: ClassVar[str] = "refresh_access_token"
    refresh_grant: ClassVar[str] = "ig_refresh_token"
    lifetime: ClassVar[int] = 60 * DAY
    min_refresh_age: ClassVar[float] = 1 * DAY     # Meta refuses to refresh a token younger than this
    refresh_when_left: ClassVar[float] = 45 * DAY  # refresh once less than this is left of the 60 days

    def __init__(self, secrets, account: str, graph_base: str, client: httpx.Client, clock=time.time):
        super().__init__(secrets, account)
        self.graph_base, self.client, self.clock = graph_base, client, clock
        self._refresh_failed = False   # tried once this run and failed: not again per call

    @property
    def _log(self) -> logging.Logger:
        return logging.getLogger(f"archiver.{self.platform}")

    def reauth_message(self, detail: str = "") -> str:
        return (f"{self.title} no longer accepts the stored authorization for account {self.account!r}"
                f"{' (' + detail + ')' if detail else ''}. {self.title} tokens cannot be renewed once expired "
                f"or revoked: run `archiver auth {self.platform} --account {self.account}` again.")

    def store(self, response: dict[str, Any], *, user_id: str | None = None,
              permissions: str | None = None) -> dict[str, Any]:
        """A long-lived token answer (``access_token``, ``expires_in``) -> stored record."""
        scrubber.add(response["access_token"])
        now = self.clock()
        previous = self._tokens or {}
        tokens = {
            "access_token": response["access_token"],
            "issued_at": now,
            "expires_at": now + int(response.get("expires_in") or self.lifetime),
            "user_id": user_id or previous.get("user_id"),
            "permissions": permissions if permissions is not None else previous.get("permissions", ""),
        }
        return self.save(tokens)

    def refresh_due(self) -> bool:
        """Less than refresh_when_left left, the token old enough to be refreshed, and no
        refresh failed in this run already."""
        tokens, now = self.load(), self.clock()
        return (tokens["expires_at"] - now < self.refresh_when_left
                and now - tokens["issued_at"] >= self.min_refresh_age
                and not self._refresh_failed)

    def access_token(self) -> str:
        """The token to send, refreshed first when due. Raises NetError(auth) once expired."""
        if self.load()["expires_at"] <= self.clock():
            raise NetError(self.reauth_message(f"the {self.lifetime // DAY}-day token has expired"), kind="auth")
        self.refresh_when_due()   # other threads and processes: one refresh
        return self.load()["access_token"]

    def _refresh_locked(self) -> None:
        token = self.load()["access_token"]
        url = f"{self.graph_base}/{self.refresh_path}"
        try:
            response = self.client.get(url, params={"grant_type": self.refresh_grant, "access_token": token})
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            self._log.warning("%s token refresh failed (%s); the current token stays valid until %s",
                        self.title, type(error).__name__, iso_utc(self.load()["expires_at"]))
            self._refresh_failed = True
            return
        refused = graph_error_of(body)
        if refused is not None or "access_token" not in body:
            code, subcode, message = refused or (None, None, "no access_token in the answer")
            if code == 190 and subcode in REAUTH_SUBCODES:
                raise NetError(self.reauth_message(scrubber.text(message)), kind="auth")
            self._log.warning("%s refused to refresh the token (error %s: %s); it stays valid until %s",
                        self.title, code, scrubber.text(message), iso_utc(self.load()["expires_at"]))
            self._refresh_failed = True
            return
        self.store(body)
        self._log.info("refreshed the %s access token for %s (valid %d days)", self.title, self.account,
                 self.lifetime // DAY)


# --------------------------------------------------------------------------- OAuth


def authorize_url(base: str, *, client_id: str, scopes: str, redirect_uri: str, state: str,
                  path: str = "/oauth/authorize") -> str:
    """The login window's URL (``path``: Instagram and Threads ``/oauth/authorize``,
    Facebook ``/v23.0/dialog/oauth``)."""
    query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": scopes, "state": state})
    return f"{base}{path}?{query}"


def exchange_code(client: httpx.Client, url: str, form: dict[str, str], *, title: str = "Graph",
                  method: str = "POST") -> tuple[str, str | None, str | None]:
    """Exchange an authorization code; (short-lived token, user id as text, permissions).
    Accepts both the ``{"data": [...]}`` and the flat answer; a numeric ``user_id`` becomes
    text. Not retried: a code is single-use. ``method`` GET sends ``form`` as the query."""
    try:
        if method == "GET":
            response = client.get(url, params=form, headers={"Accept": "application/json"})
        else:
            response = client.post(url, data=form, headers={"Accept": "application/json"})
        body = response.json()
    except httpx.TransportError as error:
        raise NetError(f"{title} token endpoint unreachable: {type(error).__name__}", kind="transport") from None
    except ValueError:
        raise NetError(f"{title} token endpoint: HTTP {response.status_code} without JSON", kind="server") from None
    refused = graph_error_of(body)
    if refused is not None:
        raise NetError(f"{title} refused the authorization code: {scrubber.text(refused[2])}", kind="auth",
                       status=response.status_code)
    entry = body["data"][0] if isinstance(body.get("data"), list) and body["data"] else body
    if not isinstance(entry, dict) or "access_token" not in entry:
        raise NetError(f"{title}'s code exchange answered without an access token", kind="bad_response")
    scrubber.add(entry["access_token"])
    user_id = str(entry["user_id"]) if entry.get("user_id") is not None else None
    permissions = entry.get("permissions")
    if isinstance(permissions, list):
        permissions = ",".join(permissions)
    return entry["access_token"], user_id, permissions


def exchange_long_lived(client: httpx.Client, url: str, params: dict[str, str], *, title: str = "Graph") -> dict:
    """GET the short -> long-lived exchange (``params`` hold the grant type, e.g.
    ig_exchange_token, th_exchange_token or fb_exchange_token, and the secrets); the
    answer's body (``access_token``, ``expires_in``)."""
    response = client.get(url, params=params)
    try:
        body = response.json()
    except ValueError:
        raise NetError(f"{title} token exchange: HTTP {response.status_code} without JSON", kind="server") from None
    error = graph_error_of(body)
    if error is not None or not isinstance(body, dict) or "access_token" not in body:
        raise NetError(f"{title} refused the long-lived token exchange: "
                       f"{scrubber.text((error or (0, 0, 'no token'))[2])}",
                       kind="auth", status=response.status_code)
    scrubber.add(body["access_token"])
    return body
