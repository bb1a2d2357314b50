"""LinkedIn's Member Data Portability API (members in the EEA and Switzerland): the stored
token, the calls a run makes and what their errors mean. See ../shared/platforms/linkedin.md
§1: 3-legged OAuth (a 60-day access token, no refresh token for a self-serve app), the
Member Snapshot API (``/rest/memberSnapshotData?q=criteria&domain=…``, paged by a page
*index* in ``start``, rows keyed by the export's CSV column names) and the Member Changelog
API (``/rest/memberChangeLogs``, the last 28 days of the member's activity).

Every call carries ``LinkedIn-Version`` (the account's ``api_version``, a ``YYYYMM`` the
platform still supports) and ``X-Restli-Protocol-Version: 2.0.0``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Callable, ClassVar
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx

from archiver.net.client import ApiClient, NetError, RetryPolicy
from archiver.net.tokens import OAuth2Tokens
from archiver.records import iso_utc

API_BASE_URL = "https://api.linkedin.com"
AUTHORIZE_BASE_URL = "https://www.linkedin.com"    # the consent page and the token endpoint
AUTHORIZE_PATH = "/oauth/v2/authorization"
TOKEN_PATH = "/oauth/v2/accessToken"
SNAPSHOT_PATH = "/rest/memberSnapshotData"
CHANGELOG_PATH = "/rest/memberChangeLogs"

# Sources disagree on the scope's name (notes §1.2): the account's `scope` option says which
# one the app's Auth tab lists; this is the one LinkedIn's own permissions table names.
DEFAULT_SCOPE = "r_dma_portability_member"
# LinkedIn's versioned API refuses a call without a version it still serves (about a year
# of monthly versions); the account's `api_version` overrides this one.
DEFAULT_VERSION = "202602"
RESTLI_VERSION = "2.0.0"

DAY = 86400
TOKEN_DAYS = 60                 # an access token's life (notes §1.3); no refresh token
CHANGELOG_DAYS = 28             # how far back the changelog reaches (notes §1.5)
EXPIRED_CODES = {65600, 65601, 65602}   # INVALID / REVOKED / EXPIRED access token [U exact set]
NO_DATA = "no data found"       # an empty domain's message (with a 404, or alone) [U exact text]


# --------------------------------------------------------------------------- messages


def reauth_message(account: str, detail: str = "") -> str:
    return (f"LinkedIn no longer accepts the stored authorization for account {account!r}"
            f"{' (' + detail + ')' if detail else ''}. A LinkedIn access token lasts 60 days and cannot be renewed "
            f"by archiver: run `archiver auth linkedin --account {account}` again.")


def access_denied_message(account: str, scope: str, detail: str) -> str:
    return (f"LinkedIn refused access for account {account!r} (403 ACCESS_DENIED{': ' + detail if detail else ''}). "
            "The app needs the \"Member Data Portability API (Member)\" product, and the token its scope "
            f"({scope!r}; if your app's Auth tab lists another name, set `scope = \"…\"` in the account's table), "
            f"then `archiver auth linkedin --account {account}` again. LinkedIn only lets members located in the "
            "EEA and Switzerland use this API; elsewhere, import the \"Get a copy of your data\" export instead "
            "(`archiver import <zip>`).")


def throttled_message() -> str:
    return ("LinkedIn is throttling this member or app (HTTP 429; its limits are per day and reset at midnight "
            "UTC): the run stopped here and the next one goes on from where this one stopped")


# --------------------------------------------------------------------------- errors


class LinkedInError(NetError):
    """A LinkedIn error answer: ``{"status", "serviceErrorCode", "code", "message"}``."""

    def __init__(self, message: str, *, kind: str, status: int | None, service_code: int | None = None,
                 code: str | None = None):
        super().__init__(message, kind=kind, status=status)
        self.service_code, self.code = service_code, code


class DomainRefused(LinkedInError):
    """LinkedIn does not know a domain by the name asked (several names are [U], notes §1.4)."""


def error_of(response: httpx.Response) -> tuple[int | None, str, str]:
    """(serviceErrorCode, code word, message) of an error answer; blanks for a body that
    is no LinkedIn error envelope."""
    try:
        body = response.json()
    except ValueError:
        return None, "", ""
    if not isinstance(body, dict):
        return None, "", ""
    code = body.get("serviceErrorCode")
    return (code if isinstance(code, int) and not isinstance(code, bool) else None,
            str(body.get("code") or ""), str(body.get("message") or ""))


def _json_object(response: httpx.Response) -> bool:
    try:
        return isinstance(response.json(), dict)
    except ValueError:
        return False


# --------------------------------------------------------------------------- tokens


class LinkedInTokens(OAuth2Tokens):
    """The account's token record in the SecretStore: ``access_token``, ``access_expires_at``
    (epoch seconds: 60 days after it was issued), ``scope``, ``issued_at``; and, only for
    an app LinkedIn has enabled programmatic refresh for, ``refresh_token`` and
    ``refresh_expires_at`` — then the core's refresh grant renews it. Without one nothing
    can be renewed: an expired token is refused here, before LinkedIn is asked."""

    platform, title, server = "linkedin", "LinkedIn", "LinkedIn"
    default_expires_in: ClassVar[int] = TOKEN_DAYS * DAY

    def __init__(self, secrets, account: str, token_url: str, client: httpx.Client,
                 clock: Callable[[], float] = time.time):
        super().__init__(secrets, account, token_url, client)
        self.clock = clock

    def now(self) -> float:
        return self.clock()

    def reauth_message(self, detail: str = "") -> str:
        return reauth_message(self.account, detail)

    def record(self, answer: dict[str, Any], previous: dict[str, Any], now: float) -> dict[str, Any]:
        record = super().record(answer, previous, now)
        record["issued_at"] = now
        if answer.get("refresh_token_expires_in"):
            record["refresh_expires_at"] = now + int(answer["refresh_token_expires_in"])
        elif not answer.get("refresh_token"):
            record["refresh_expires_at"] = previous.get("refresh_expires_at")
        return record

    def expires_at(self) -> float | None:
        value = self.load().get("access_expires_at")
        return float(value) if isinstance(value, (int, float)) else None

    def renewable(self) -> bool:
        return bool(self.load().get("refresh_token"))

    def refresh_due(self) -> bool:
        return self.renewable() and super().refresh_due()

    def header(self) -> dict[str, str]:
        expires_at = self.expires_at()
        if not self.renewable() and expires_at is not None and expires_at <= self.now():
            raise NetError(self.reauth_message(f"the access token expired on {iso_utc(expires_at)}"), kind="auth")
        return super().header()


# --------------------------------------------------------------------------- OAuth


def authorize_url(base: str, *, client_id: str, redirect_uri: str, state: str, scope: str) -> str:
    """LinkedIn's consent page (notes §1.3): scopes space-separated."""
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                       "state": state, "scope": scope})
    return f"{base}{AUTHORIZE_PATH}?{query}"


# --------------------------------------------------------------------------- the API


def next_start(body: dict, current: int) -> int | None:
    """The page index of the next page from ``paging.links[rel=next]`` (None: the last
    page). ``total`` is not read: it is unreliable (notes §1.4). A next link that does not
    move forward, or cannot be read, is refused: ending the walk there would pass a cut
    list off as whole, following it could loop for ever."""
    paging = body.get("paging") if isinstance(body, dict) else None
    links = paging.get("links") if isinstance(paging, dict) else None
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or link.get("rel") != "next" or not isinstance(link.get("href"), str):
            continue
        values = parse_qs(urlsplit(link["href"]).query).get("start")
        start = int(values[0]) if values and values[0].isdigit() else None
        if start is None or start <= current:
            raise NetError(f"LinkedIn's link to the page after page {current} names page {values[0] if values else '?'}"
                           "; the walk stops there and nothing is concluded from it", kind="bad_response")
        return start
    return None


class LinkedInApi:
    """The calls of one run. ``snapshot_page`` and ``changelog_page`` return the page's
    items and the next page's ``start`` (None at the end); an empty domain is no error."""

    def __init__(self, base_url: str, tokens: LinkedInTokens, *, version: str = DEFAULT_VERSION,
                 scope: str = DEFAULT_SCOPE, transport=None, sleep=None, cancel=None):
        self.tokens = tokens
        self.version, self.scope = version, scope
        kwargs = {"sleep": sleep} if sleep else {}
        # LinkedIn's throttle is per day: a 429 is retried for a short while only (it may be
        # a spike), then it stops the run and the next run resumes; 5xx get the same tries.
        self.client = ApiClient(base_url, tokens=tokens, transport=transport, cancel=cancel,
                                is_auth_error=self._auth_failed,
                                retry=RetryPolicy(attempts=5, total_cap=120), **kwargs)

    @property
    def account(self) -> str:
        return self.tokens.account

    def headers(self) -> dict[str, str]:
        return {"LinkedIn-Version": self.version, "X-Restli-Protocol-Version": RESTLI_VERSION}

    def _auth_failed(self, response: httpx.Response) -> bool:
        """A 401. With a refresh token the core refreshes once and tries again; without one
        there is nothing to renew: the error says what to do."""
        if response.status_code != 401:
            return False
        if self.tokens.renewable():
            return True
        raise self._auth_error(response)

    def _auth_error(self, response: httpx.Response) -> LinkedInError:
        service_code, word, message = error_of(response)
        if service_code in EXPIRED_CODES or word in ("EXPIRED_ACCESS_TOKEN", "REVOKED_ACCESS_TOKEN",
                                                     "INVALID_ACCESS_TOKEN"):
            detail = f"{word or service_code}: {message}" if message else (word or str(service_code))
        else:
            detail = f"HTTP 401{': ' + message if message else ''}"
        return LinkedInError(reauth_message(self.account, detail), kind="auth", status=401,
                             service_code=service_code, code=word)

    def get(self, path: str, params: dict[str, Any]) -> dict | None:
        """GET a Rest.li resource: its JSON object, or None for "no data" (404, or an answer
        whose message says no data was found)."""
        try:
            response = self.client.request("GET", path, params=params, headers=self.headers())
        except NetError as error:
            if error.kind == "rate_limited":
                raise LinkedInError(f"GET {path}: {throttled_message()}", kind="rate_limited",
                                    status=error.status) from None
            raise
        status = response.status_code
        service_code, word, message = error_of(response)
        if status == 404 or (NO_DATA in message.lower() and status >= 400):
            # LinkedIn's own "no data" (a JSON answer) is an empty domain; a 404 page from
            # anything else (a proxy, a host that is gone) is no answer about the data.
            unknown_resource = word == "RESOURCE_NOT_FOUND" or "no virtual resource" in message.lower()
            if _json_object(response) and (NO_DATA in message.lower()
                                           or (path == SNAPSHOT_PATH and not unknown_resource)):
                return None
            raise LinkedInError(f"LinkedIn answered GET {path} with HTTP {status}"
                                f"{': ' + message if message else ', not with its own error'}; nothing in the "
                                "archive was changed", kind="gone", status=status, service_code=service_code,
                                code=word)
        if status == 401:
            raise self._auth_error(response)
        if status == 403:
            raise LinkedInError(access_denied_message(self.account, self.scope, message or word), kind="auth",
                                status=403, service_code=service_code, code=word)
        if status >= 400:
            raise LinkedInError(f"LinkedIn refused GET {path} (HTTP {status}"
                                f"{', ' + str(service_code) if service_code else ''}: {message or word or 'no reason'})",
                                kind="client", status=status, service_code=service_code, code=word)
        try:
            body = response.json()
        except ValueError:
            raise NetError(f"GET {path}: HTTP {status} without JSON", kind="bad_response", status=status) from None
        if not isinstance(body, dict):
            raise NetError(f"GET {path}: an answer that is no JSON object", kind="bad_response", status=status)
        if NO_DATA in str(body.get("message") or "").lower() and not body.get("elements"):
            return None
        return body

    def snapshot_page(self, domain: str, start: int) -> tuple[list[tuple[str, dict[str, str]]], int | None]:
        """One page of the member's snapshot of ``domain``: its rows as (domain, row), row
        keys the export's CSV column names, and the next page index. An empty domain gives
        ([], None)."""
        params: dict[str, Any] = {"q": "criteria", "domain": domain}
        if start:
            params["start"] = start
        try:
            body = self.get(SNAPSHOT_PATH, params)
        except LinkedInError as error:
            text = error.message.lower()
            if error.status == 400 and (domain.lower() in text or "domain" in text) and "version" not in text:
                raise DomainRefused(error.message, kind="client", status=400, service_code=error.service_code,
                                    code=error.code) from None
            raise
        if body is None:
            return [], None
        rows: list[tuple[str, dict[str, str]]] = []
        for element in body.get("elements") or []:
            if not isinstance(element, dict):
                continue
            name = str(element.get("snapshotDomain") or domain)
            for row in element.get("snapshotData") or []:
                if isinstance(row, dict):
                    rows.append((name, {str(k): "" if v is None else str(v) for k, v in row.items()}))
        return rows, next_start(body, start)

    def changelog_page(self, start_time_ms: int, start: int) -> tuple[list[dict], int | None]:
        """One page of the changelog's events captured from ``start_time_ms`` on, oldest
        first, and the next page's ``start`` (None at the end)."""
        params: dict[str, Any] = {"q": "memberAndApplication", "startTime": start_time_ms}
        if start:
            params["start"] = start
        body = self.get(CHANGELOG_PATH, params)
        if body is None:
            return [], None
        events = [e for e in body.get("elements") or [] if isinstance(e, dict)]
        return events, next_start(body, start)

    def close(self) -> None:
        self.client.close()
        self.tokens.client.close()


def now() -> float:
    """The connector's clock (tests move it with the fake's)."""
    return time.time()


def share_link(urn: str) -> str:
    """A post's address as the export's ShareLink and Link columns write it: the URN URL-encoded."""
    return "https://www.linkedin.com/feed/update/" + quote(urn, safe="")


def csv_date(epoch: float) -> str:
    """A moment as the export's ``Date`` columns write it: ``2025-07-01 14:33:22`` (UTC)."""
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def changelog_floor_ms(now: float) -> int:
    """The oldest moment the changelog still holds (a minute of margin inside 28 days)."""
    return int((now - CHANGELOG_DAYS * DAY + 60) * 1000)


