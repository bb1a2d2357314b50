"""A stateful fake of LinkedIn's Member Data Portability API and its OAuth pages, faithful
to shared/platforms/linkedin.md (§1, and §3 "What a faithful fake must do / reject").

One ``FakeLinkedIn`` plays both hosts at one base URL:

- www.linkedin.com:  GET  /oauth/v2/authorization  -> 302 redirect_uri?code=…&state=…
                     POST /oauth/v2/accessToken     (authorization_code; refresh_token when the
                                                     app has programmatic refresh, a knob)
- api.linkedin.com:  GET  /rest/memberSnapshotData?q=criteria[&domain=D][&start=N]
                     GET  /rest/memberChangeLogs?q=memberAndApplication[&startTime=ms][&start=N]
                     GET  /rest/memberAuthorizations?q=memberAndApplication

Its world (the member's profile, posts, comments, reactions, connections, invitations and
follows) comes from linkedin/sim/export.py, whose ``snapshot_rows(world, domain)`` gives the
rows of a domain keyed by the export's CSV column names: the snapshot and ``write_export``
of the same world hold the same data. What the member does after consenting
(``add_post``, ``edit_post``, ``delete_post``, ``add_comment``, ``add_reaction``) changes the
world, so the snapshot's rows, and becomes a changelog event; ``add_connection`` and
``remove_connection`` change only the snapshot.

What it rejects, as the notes say LinkedIn does:
- no ``LinkedIn-Version`` header, or one it does not serve (``versions``) -> 400;
- a token without the portability scope (``accepted_scopes``) -> 403 ACCESS_DENIED; a
  member outside the EEA/Switzerland (``outside_eea``) cannot consent (the consent page
  redirects with ``error=access_denied``) and a token minted anyway gets 403;
- ``q=criteria`` missing -> 400; an unknown ``domain`` -> 400; an empty one -> 404 "No data
  found for this memberId"; ``start`` is a page index (``count`` is ignored), the next page
  is named in ``paging.links[rel=next]``, and ``total`` may lie (``lying_total``);
- values are strings only;
- an access token lives ``token_ttl`` (60 days) by the fake's clock, then 401 with
  serviceErrorCode 65600 (``expired_code``); a revoked one 401 65601;
- ``rate_limit`` calls per member per UTC day, then 429;
- for ``processing_seconds`` after consent every domain answers 404 (LinkedIn is still
  preparing the member's historical data);
- the changelog holds only events after consent and within 28 days; ``capturedAt`` in ms.

[U] choices, each a knob of ``FakeLinkedInConfig``: ``accepted_scopes`` (the scope's name),
``lying_total``, ``expired_code``, ``processing_seconds``, ``unknown_domains``, ``share_quirk``, ``changelog_paging`` ("offset":
``start`` counts events, as Rest.li collections do; "index": a page index),
``programmatic_refresh``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hmac
import json
import random
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx

from archiver.sim.server import LoggedFake

DAY = 86400
CHANGELOG_DAYS = 28
MEMBER_URN = "urn:li:person:fakeMember01"
APP_URN = "urn:li:developerApplication:1234567"

# The domains LinkedIn names (notes §1.4, the official list at …/shared/snapshot-domain);
# INVITATIONS, MEMBER_FOLLOWS and COMPANY_FOLLOWS are [U] names, as the notes say.
DOMAINS = (
    "PROFILE", "PROFILE_SUMMARY", "POSITIONS", "EDUCATION", "SKILLS", "CERTIFICATIONS", "PROJECTS",
    "ORGANIZATIONS", "LANGUAGES", "HONORS", "COURSES", "PUBLICATIONS", "PATENTS", "VOLUNTEERING_EXPERIENCES",
    "RECOMMENDATIONS", "CAUSES_YOU_CARE_ABOUT", "TEST_SCORES", "CONNECTIONS", "MEMBER_SHARE_INFO", "ARTICLES",
    "ALL_COMMENTS", "ALL_LIKES", "ALL_VOTES", "INSTANT_REPOSTS", "RICH_MEDIA", "JOB_APPLICATIONS", "JOB_POSTINGS",
    "SAVED_JOBS", "JOB_SEEKER_PREFERENCES", "INBOX", "INVITATIONS", "MEMBER_FOLLOWS", "COMPANY_FOLLOWS",
)


@dataclass
class FakeLinkedInConfig:
    posts: int = 6
    followers: int = 12                 # connections (LinkedIn's mutual follow)
    seed: int = 1
    latency_ms: int = 0
    fail_rate: float = 0.0              # chance of a 500 per API call
    page_size: int = 5                  # rows a snapshot page holds (LinkedIn's own size [U]); `count` is ignored
    changelog_page_size: int = 10
    rate_limit: int = 500               # API calls per member per UTC day, then 429 [U]
    client_id: str = "fake-linkedin-client-id"
    client_secret: str = "fake-client-secret"
    # Names LinkedIn accepts for the portability scope (notes §1.2): the consent page refuses
    # any other, and data calls want one of them in the token.
    accepted_scopes: tuple[str, ...] = ("r_dma_portability_member",)
    versions: tuple[str, ...] = tuple(f"{y}{m:02d}" for y, m in
                                      [(2025, m) for m in range(3, 13)] + [(2026, 1), (2026, 2)])
    token_ttl: int = 60 * DAY
    expired_code: int = 65600           # [U] serviceErrorCode of an expired token (65601: revoked)
    outside_eea: bool = False           # the member is not in the EEA / Switzerland
    lying_total: bool = False           # [U] paging.total says something else than the rows there are
    processing_seconds: float = 0       # after consent, every domain is 404 this long [U]
    changelog_paging: str = "offset"    # [U] "offset" or "index"
    programmatic_refresh: bool = False  # the app has refresh tokens (partners only) [U]
    # Domains this LinkedIn does not know by the name asked (400, as any unknown one): the
    # notes' INVITATIONS, MEMBER_FOLLOWS and COMPANY_FOLLOWS are [U] names.
    unknown_domains: tuple[str, ...] = ()
    share_quirk: bool = False           # [U] multi-line ShareCommentary wrapped line by line, as the export does
    refresh_ttl: int = 365 * DAY


def _json(status: int, body: Any, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, headers={"Content-Type": "application/json", **(headers or {})},
                          content=json.dumps(body).encode())


def error(status: int, message: str, service_code: int | None = None, code: str | None = None) -> httpx.Response:
    """LinkedIn's error envelope (notes §1.7)."""
    body: dict[str, Any] = {"status": status, "serviceErrorCode": service_code if service_code is not None else status,
                            "message": message}
    if code:
        body["code"] = code
    return _json(status, body)


def _oauth_error(status: int, name: str, description: str) -> httpx.Response:
    return _json(status, {"error": name, "error_description": description})


@dataclass
class _Token:
    scope: str
    issued_at: float
    expires_at: float
    revoked: bool = False


@dataclass
class _Event:
    captured_ms: int
    body: dict


class FakeLinkedIn(LoggedFake):
    """See the module docstring. ``world``: linkedin/sim/export.py's world (made from the
    config when not given); ``rows``: how a domain's rows come from it (that module's
    ``snapshot_rows``, unless a test gives another)."""

    def __init__(self, config: FakeLinkedInConfig | None = None, *, world: Any = None,
                 rows: Callable[[Any, str], list[dict[str, str]]] | None = None,
                 base_url: str = "http://127.0.0.1:0", clock: Callable[[], float] | None = None):
        self.config = config or FakeLinkedInConfig()
        self._clock = clock
        self.base_url = base_url
        self.clock_offset = 0.0
        self._lock = threading.RLock()
        self._fault_rng = random.Random(f"faults:{self.config.seed}")
        if world is None:
            world = make_world(self.config)
        self.world = world
        if rows is None:
            from archiver_connectors.linkedin.sim.export import snapshot_rows

            quirk = self.config.share_quirk
            rows = lambda world, domain: snapshot_rows(world, domain, share_quirk=quirk)  # noqa: E731
        self._rows_of = rows
        self.events: list[_Event] = []
        self.tokens: dict[str, _Token] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self.codes: dict[str, dict] = {}
        self.consented_at: float | None = None
        self.calls_by_day: dict[str, int] = {}
        self.log: list[tuple[str, str, int, dict[str, str]]] = []
        self.fail_next: list[httpx.Response] = []            # answers given before anything else, in order
        self._next_id = 7_300_000_000_000_000_000

    def now(self) -> float:
        """The fake's clock: ``clock`` when one was given, else real time; ``advance`` adds to either."""
        return (self._clock() if self._clock else time.time()) + self.clock_offset

    # ------------------------------------------------------------------ the world

    def rows(self, domain: str) -> list[dict[str, str]]:
        """The domain's snapshot rows now (strings only, as LinkedIn gives them); a domain
        the world holds nothing of is empty."""
        try:
            found = self._rows_of(self.world, domain) or []
        except ValueError:   # a domain the world's builder does not model
            found = []
        return [{str(k): "" if v is None else str(v) for k, v in row.items()} for row in found]

    @property
    def posts(self) -> list[str]:
        """The URNs of the member's posts."""
        return [post.urn for post in self.world.posts]

    @property
    def connections(self) -> list[str]:
        """The connections' vanity names (a name for one without a profile link)."""
        return [c.member.vanity or c.member.name for c in self.world.connections]

    def _moment(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(int(self.now()), dt.timezone.utc)

    def _new_urn(self, kind: str = "share") -> str:
        self._next_id += 7919
        return f"urn:li:{kind}:{self._next_id}"

    def _event(self, resource: str, method: str, activity: dict, resource_id: str) -> None:
        now_ms = int(self.now() * 1000)
        self.events.append(_Event(now_ms, {
            "id": len(self.events) + 1, "capturedAt": now_ms, "processedAt": now_ms + 1000, "configVersion": 1,
            "owner": MEMBER_URN, "actor": MEMBER_URN, "resourceName": resource, "resourceId": resource_id,
            "resourceUri": f"/{resource}/{quote(resource_id, safe='')}", "method": method,
            "activity": activity, "processedActivity": activity, "siblingActivities": [],
            "parentSiblingActivities": [], "activityId": secrets.token_hex(6), "activityStatus": "SUCCESS"}))

    @staticmethod
    def _post_activity(urn: str, text: str, link: str, visibility: str, created_ms: int) -> dict:
        content: dict[str, Any] = {"shareCommentary": {"text": text}, "shareMediaCategory": "ARTICLE" if link else "NONE"}
        if link:
            content["media"] = [{"status": "READY", "originalUrl": link}]
        return {"id": urn, "author": MEMBER_URN, "lifecycleState": "PUBLISHED",
                "created": {"actor": MEMBER_URN, "time": created_ms},
                "specificContent": {"com.linkedin.ugc.ShareContent": content},
                "visibility": {"com.linkedin.ugc.MemberNetworkVisibility": visibility}}

    def add_post(self, text: str, *, link: str = "", visibility: str = "PUBLIC", kind: str = "share") -> str:
        """The member posts: a MEMBER_SHARE_INFO row and a changelog event. Returns its URN."""
        from archiver_connectors.linkedin.sim.export import SimPost

        with self._lock:
            urn, moment = self._new_urn(kind), self._moment()
            self.world.posts.insert(0, SimPost(urn=urn, created_at=moment, text=text, shared_url=link,
                                               visibility=visibility))
            self._event("ugcPosts", "CREATE",
                        self._post_activity(urn, text, link, visibility, int(moment.timestamp() * 1000)), urn)
            return urn

    def edit_post(self, urn: str, text: str) -> None:
        """The member edits a post's text: the snapshot's row changes, a PARTIAL_UPDATE event."""
        with self._lock:
            post = next(p for p in self.world.posts if p.urn == urn)
            post.text = text
            self._event("ugcPosts", "PARTIAL_UPDATE", self._post_activity(
                urn, text, post.shared_url, post.visibility, int(post.created_at.timestamp() * 1000)), urn)

    def delete_post(self, urn: str) -> None:
        """The member deletes a post: gone from the snapshot, a DELETE event."""
        with self._lock:
            self.world.posts[:] = [p for p in self.world.posts if p.urn != urn]
            self._event("ugcPosts", "DELETE", {"id": urn}, urn)

    def add_comment(self, text: str, on: str | None = None) -> str:
        """The member comments on the post ``on`` (a URN; someone else's by default).
        Returns the post's URN."""
        from archiver_connectors.linkedin.sim.export import SimComment

        with self._lock:
            on = on or self._new_urn("activity")
            moment = self._moment()
            self.world.comments.insert(0, SimComment(post_urn=on, created_at=moment, text=text))
            comment = f"urn:li:comment:({on.removeprefix('urn:li:')},{self._next_id + 1})"
            self._event("socialActions/comments", "CREATE", {
                "actor": MEMBER_URN, "object": on, "message": {"text": text},
                "created": {"actor": MEMBER_URN, "time": int(moment.timestamp() * 1000)}}, comment)
            return on

    def add_reaction(self, on: str | None = None, kind: str = "LIKE") -> str:
        """The member reacts (LIKE, PRAISE, …) to the post ``on``. Returns its URN."""
        from archiver_connectors.linkedin.sim.export import SimReaction

        with self._lock:
            on = on or self._new_urn("activity")
            moment = self._moment()
            self.world.reactions.insert(0, SimReaction(post_urn=on, created_at=moment, type=kind))
            self._event("socialActions/likes", "CREATE", {
                "actor": MEMBER_URN, "object": on, "reactionType": kind,
                "created": {"actor": MEMBER_URN, "time": int(moment.timestamp() * 1000)}}, f"{on}#{MEMBER_URN}")
            return on

    def add_connection(self, first: str = "Katherine", last: str | None = None) -> str:
        """A new connection (in the snapshot; the changelog does not carry connections [U]).
        Returns the vanity name."""
        from archiver_connectors.linkedin.sim.export import SimConnection, SimMember

        with self._lock:
            self._next_id += 1
            last = last or f"Johnson{self._next_id % 100000}"
            vanity = f"{first}-{last}-{self._next_id % 1000}".lower()
            self.world.connections.append(SimConnection(SimMember(first, last, vanity, company="NASA",
                                                                  position="Mathematician"), self._moment()))
            return vanity

    def remove_connection(self, vanity: str) -> None:
        with self._lock:
            self.world.connections[:] = [c for c in self.world.connections
                                         if (c.member.vanity or c.member.name) != vanity]

    # ------------------------------------------------------------------ tokens

    def issue_token(self, scope: str | None = None, *, age: float = 0, refresh: bool | None = None) -> dict:
        """Mint what the token endpoint gives after consent (the member consents now, or
        ``age`` seconds ago): ``{"access_token", "expires_in", "scope"}``."""
        with self._lock:
            return self._mint(scope or self.config.accepted_scopes[0], self.now() - age,
                              self.config.programmatic_refresh if refresh is None else refresh)

    def _mint(self, scope: str, issued_at: float, refresh: bool) -> dict:
        if self.consented_at is None:
            self.consented_at = issued_at
        token = "AQV" + secrets.token_urlsafe(40)
        self.tokens[token] = _Token(scope, issued_at, issued_at + self.config.token_ttl)
        body: dict[str, Any] = {"access_token": token, "expires_in": round(self.tokens[token].expires_at - self.now()),
                                "scope": scope}
        if refresh:
            refresh_token = "AQX" + secrets.token_urlsafe(40)
            self.refresh_tokens[refresh_token] = {"scope": scope, "expires_at": issued_at + self.config.refresh_ttl}
            body["refresh_token"] = refresh_token
            body["refresh_token_expires_in"] = round(issued_at + self.config.refresh_ttl - self.now())
        return body

    def issue_tokens(self, scope: str | None = None, *, age: float = 0) -> dict:
        """``issue_token`` under the name the other fakes use."""
        return self.issue_token(scope, age=age)

    def expire_tokens(self) -> None:
        """Every access token past its end (the 60 days are over)."""
        with self._lock:
            for token in self.tokens.values():
                token.expires_at = min(token.expires_at, self.now() - 1)

    def revoke_all(self) -> None:
        """The member removes the app's access."""
        with self._lock:
            for token in self.tokens.values():
                token.revoked = True
            self.refresh_tokens.clear()

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/v2/authorization":
            return self._authorize(request)
        if path == "/oauth/v2/accessToken":
            return self._token(request)
        if not path.startswith("/rest/"):
            return error(404, "Resource not found")
        if self.fail_next:
            return self.fail_next.pop(0)
        if request.method != "GET":
            return error(405, "Method not allowed")
        token = self._bearer(request)
        if isinstance(token, httpx.Response):
            return token
        version = request.headers.get("linkedin-version")
        if not version:
            return error(400, "A version must be present. Please specify a version by adding the LinkedIn-Version "
                         "header.", code="VERSION_MISSING")
        if version not in self.config.versions:
            return error(400, f"Requested version {version} is not active", code="NONEXISTENT_VERSION")
        day = dt.datetime.fromtimestamp(self.now(), dt.timezone.utc).strftime("%Y-%m-%d")
        self.calls_by_day[day] = self.calls_by_day.get(day, 0) + 1
        if self.calls_by_day[day] > self.config.rate_limit:
            return error(429, "Resource level throttle MEMBER DAY limit for calls to this resource is reached.",
                         code="TOO_MANY_REQUESTS")
        if self.config.fail_rate and self._fault_rng.random() < self.config.fail_rate:
            return error(500, "Internal Server Error")
        if token.scope not in self.config.accepted_scopes:
            return error(403, f"Not enough permissions to access: {path}", code="ACCESS_DENIED")
        if self.config.outside_eea:
            return error(403, "Member is not eligible: the Member Data Portability API is available to members "
                         "located in the EEA and Switzerland only", code="ACCESS_DENIED")
        params = request.url.params
        if path == "/rest/memberSnapshotData":
            return self._snapshot(params)
        if path == "/rest/memberChangeLogs":
            return self._changelog(params)
        if path == "/rest/memberAuthorizations":
            if params.get("q") != "memberAndApplication":
                return error(400, "Invalid query parameters passed to request", code="ILLEGAL_ARGUMENT")
            return _json(200, {"elements": [{
                "regulatedAt": int((self.consented_at or self.now()) * 1000),
                "memberComplianceAuthorizationKey": {"developerApplication": APP_URN, "member": MEMBER_URN},
                "memberComplianceScopes": ["DMA"]}], "paging": {"start": 0, "count": 10, "links": []}})
        return error(404, f"No virtual resource found: {path}", code="RESOURCE_NOT_FOUND")

    def _bearer(self, request: httpx.Request) -> _Token | httpx.Response:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return error(401, "Empty oauth2_access_token", 401)
        token = self.tokens.get(header[len("Bearer "):].strip())
        if token is None:
            return error(401, "Invalid access token", 65600, "INVALID_ACCESS_TOKEN")
        if token.revoked:
            return error(401, "The token used in the request has been revoked by the user", 65601,
                         "REVOKED_ACCESS_TOKEN")
        if token.expires_at <= self.now():
            return error(401, "The token used in the request has expired", self.config.expired_code,
                         "EXPIRED_ACCESS_TOKEN")
        return token

    # ------------------------------------------------------------------ the snapshot

    def _processing(self) -> bool:
        return (self.consented_at is not None and self.config.processing_seconds > 0
                and self.now() < self.consented_at + self.config.processing_seconds)

    def _pages_of(self, domain: str) -> list[list[dict[str, str]]]:
        rows = self.rows(domain)
        size = max(1, self.config.page_size)
        return [rows[i:i + size] for i in range(0, len(rows), size)]

    def _snapshot(self, params) -> httpx.Response:
        if params.get("q") != "criteria":
            return error(400, "Invalid query parameters passed to request: q=criteria is required",
                         code="ILLEGAL_ARGUMENT")
        domain = params.get("domain")
        if domain is not None and (domain not in DOMAINS or domain in self.config.unknown_domains):
            return error(400, f"Invalid value {domain!r} for the domain parameter", code="ILLEGAL_ARGUMENT")
        raw_start = params.get("start", "0")
        if not raw_start.isdigit():
            return error(400, f"Invalid value {raw_start!r} for the start parameter", code="ILLEGAL_ARGUMENT")
        start = int(raw_start)
        no_data = error(404, "No data found for this memberId", 404)
        if self._processing():
            return no_data
        # Without a domain every domain's pages follow one another (a page holds one domain).
        pages = ([(domain, page) for page in self._pages_of(domain)] if domain else
                 [(name, page) for name in DOMAINS if name not in self.config.unknown_domains
                  for page in self._pages_of(name)])
        if start >= len(pages):
            return no_data
        name, rows = pages[start]
        links = []
        if start + 1 < len(pages):
            query = {"q": "criteria", **({"domain": domain} if domain else {}), "start": start + 1}
            links.append({"rel": "next", "type": "application/json",
                          "href": f"/rest/memberSnapshotData?{urlencode(query)}"})
        if start > 0:
            query = {"q": "criteria", **({"domain": domain} if domain else {}), "start": start - 1}
            links.append({"rel": "prev", "type": "application/json",
                          "href": f"/rest/memberSnapshotData?{urlencode(query)}"})
        total = len(pages)
        if self.config.lying_total:
            total = 1 if total > 1 else total + 3
        return _json(200, {"paging": {"start": start, "count": self.config.page_size, "links": links,
                                      "total": total},
                           "elements": [{"snapshotDomain": name, "snapshotData": rows}]})

    # ------------------------------------------------------------------ the changelog

    def _changelog(self, params) -> httpx.Response:
        if params.get("q") != "memberAndApplication":
            return error(400, "Invalid query parameters passed to request: q=memberAndApplication is required",
                         code="ILLEGAL_ARGUMENT")
        floor = int((self.now() - CHANGELOG_DAYS * DAY) * 1000)
        if self.consented_at is not None:
            floor = max(floor, int(self.consented_at * 1000))
        raw = params.get("startTime")
        if raw is not None:
            if not raw.isdigit():
                return error(400, f"Invalid value {raw!r} for startTime", code="ILLEGAL_ARGUMENT")
            floor = max(floor, int(raw))
        events = [e.body for e in self.events if e.captured_ms >= floor]
        raw_start = params.get("start", "0")
        if not raw_start.isdigit():
            return error(400, f"Invalid value {raw_start!r} for the start parameter", code="ILLEGAL_ARGUMENT")
        size = self.config.changelog_page_size
        index = int(raw_start)
        offset = index * size if self.config.changelog_paging == "index" else index
        chunk = events[offset:offset + size]
        links = []
        if offset + size < len(events):
            following = index + 1 if self.config.changelog_paging == "index" else offset + size
            query = {"q": "memberAndApplication", **({"startTime": raw} if raw else {}), "start": following,
                     "count": size}
            links.append({"rel": "next", "href": f"/rest/memberChangeLogs?{urlencode(query)}"})
        return _json(200, {"paging": {"start": index, "count": size, "links": links, "total": len(events)},
                           "elements": chunk})

    # ------------------------------------------------------------------ OAuth

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        if q.get("client_id") != self.config.client_id:
            return _html(400, "The passed in client_id is invalid")
        redirect_uri = q.get("redirect_uri") or ""
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
            return _html(400, "The redirect_uri does not match the registered value")
        if q.get("response_type") != "code":
            return _html(400, "response_type must be code")
        state = q.get("state", "")
        scopes = (q.get("scope") or "").split()
        if not scopes or any(s not in self.config.accepted_scopes for s in scopes):
            return _redirect(redirect_uri, {"error": "unauthorized_scope_error",
                                            "error_description": f"Scope \"{(scopes or [''])[0]}\" is not "
                                                                 "authorized for your application",
                                            "state": state})
        if self.config.outside_eea:
            return _redirect(redirect_uri, {"error": "access_denied",
                                            "error_description": "Only members located in the EEA and Switzerland "
                                                                 "can consent to this application",
                                            "state": state})
        code = "AQT" + secrets.token_urlsafe(30)
        self.codes[code] = {"scope": " ".join(scopes), "redirect_uri": redirect_uri,
                            "expires_at": self.now() + 1800, "used": False}
        return _redirect(redirect_uri, {"code": code, "state": state})

    def _token(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return _oauth_error(405, "invalid_request", "Use POST")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return _oauth_error(400, "invalid_request", "A form body is required")
        form = {k: v[0] for k, v in parse_qs(request.content.decode("utf-8", "replace")).items()}
        if (form.get("client_id") != self.config.client_id
                or not hmac.compare_digest(form.get("client_secret", ""), self.config.client_secret)):
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = self.codes.get(form.get("code", ""))
            if code is None or code["used"] or code["expires_at"] <= self.now():
                return _oauth_error(400, "invalid_request", "Unable to retrieve access token: authorization code "
                                    "not found")
            if form.get("redirect_uri") != code["redirect_uri"]:
                return _oauth_error(400, "invalid_redirect_uri", "Unable to retrieve access token: appid/redirect "
                                    "uri/code verifier does not match authorization code")
            code["used"] = True
            return _json(200, self._mint(code["scope"], self.now(), self.config.programmatic_refresh))
        if grant == "refresh_token":
            record = self.refresh_tokens.get(form.get("refresh_token", ""))
            if record is None or record["expires_at"] <= self.now():
                return _oauth_error(400, "invalid_grant", "The provided refresh token is invalid or expired")
            body = self._mint(record["scope"], self.now(), refresh=False)
            body["refresh_token"] = form["refresh_token"]      # not rotated
            body["refresh_token_expires_in"] = int(record["expires_at"] - self.now())
            return _json(200, body)
        return _oauth_error(400, "unsupported_grant_type", "grant_type is not supported")


def _redirect(uri: str, query: dict[str, str]) -> httpx.Response:
    return httpx.Response(302, headers={"Location": f"{uri}?{urlencode(query)}"})


def _html(status: int, text: str) -> httpx.Response:
    return httpx.Response(status, headers={"Content-Type": "text/html; charset=utf-8"},
                          content=f"<html><body><h1>{status}</h1><p>{text}</p></body></html>".encode())


# --------------------------------------------------------------------------- the world


def make_world(config: FakeLinkedInConfig):
    """The member's world for ``config`` (posts, connections, seed), from linkedin/sim/export.py."""
    from archiver_connectors.linkedin.sim.export import make_world as member_world

    return member_world(posts=config.posts, connections=config.followers, seed=config.seed)


def write_matching_export(fake: FakeLinkedIn, path: str) -> Path:
    """The "Get a copy of your data" export of the fake's world at ``path`` (a .zip, or a folder)."""
    from archiver_connectors.linkedin.sim.export import write_export

    target = Path(path).expanduser()
    return write_export(target, fake.world, zipped=target.suffix == ".zip")


# --------------------------------------------------------------------------- real HTTP


def serve(fake: FakeLinkedIn, host: str = "127.0.0.1", port: int = 0):
    """Serve ``fake`` over real HTTP in a daemon thread; returns ``(server, thread)``."""
    from archiver.sim.server import serve_fake

    return serve_fake(fake, host, port, name="fake-linkedin",
                      crash_response=lambda exc: error(500, f"fake crashed: {type(exc).__name__}"))


def main(argv: list[str] | None = None) -> None:
    """``archiver simulate linkedin --port N ...``: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="archiver simulate linkedin",
                                     description="Serve a fake of LinkedIn's Member Data Portability API and its "
                                                 "OAuth pages.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--posts", type=int, default=FakeLinkedInConfig.posts)
    parser.add_argument("--followers", "--connections", dest="followers", type=int,
                        default=FakeLinkedInConfig.followers, help="connections (LinkedIn's mutual follow)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=FakeLinkedInConfig.rate_limit,
                        help="API calls per member per UTC day, then 429")
    parser.add_argument("--page-size", type=int, default=FakeLinkedInConfig.page_size, help="rows a snapshot page holds")
    parser.add_argument("--processing-seconds", type=float, default=0,
                        help="after consent, every snapshot domain answers 404 this long")
    parser.add_argument("--outside-eea", action="store_true", help="the member is outside the EEA / Switzerland")
    parser.add_argument("--lying-total", action="store_true", help="paging.total says something wrong")
    parser.add_argument("--scope", action="append", dest="scopes", metavar="NAME",
                        help="a scope name the fake accepts (default r_dma_portability_member); may repeat")
    parser.add_argument("--token-days", type=float, default=60, help="an access token's life")
    parser.add_argument("--client-id", default=FakeLinkedInConfig.client_id)
    parser.add_argument("--client-secret", default=FakeLinkedInConfig.client_secret)
    parser.add_argument("--request-log", metavar="PATH", help="append \"METHOD PATH STATUS\" per request")
    parser.add_argument("--write-export", metavar="PATH",
                        help="also write the member's \"Get a copy of your data\" export (a .zip, or a folder) with "
                             "the same data, to try `archiver import` on")
    args = parser.parse_args(argv)
    config = FakeLinkedInConfig(
        posts=args.posts, followers=args.followers, seed=args.seed, latency_ms=args.latency_ms,
        fail_rate=args.fail_rate, rate_limit=args.rate_limit, page_size=args.page_size,
        processing_seconds=args.processing_seconds, outside_eea=args.outside_eea, lying_total=args.lying_total,
        token_ttl=int(args.token_days * DAY), client_id=args.client_id, client_secret=args.client_secret)
    if args.scopes:
        config.accepted_scopes = tuple(args.scopes)
    fake = FakeLinkedIn(config)
    if args.write_export:
        print(f"wrote the member's export to {write_matching_export(fake, args.write_export)}", flush=True)
    if args.request_log:
        from archiver.sim.server import log_requests

        log_requests(fake, args.request_log)
    server, _thread = serve(fake, args.host, args.port)
    print(f"fake LinkedIn at {fake.base_url}: client id {config.client_id!r}, scope {config.accepted_scopes[0]!r}",
          flush=True)
    from archiver.sim.server import serve_until_signalled

    serve_until_signalled(server, fake)


if __name__ == "__main__":
    main()
