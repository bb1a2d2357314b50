"""Instagram API with Instagram Login (professional accounts): tokens, Graph calls, and
payload -> record mapping. See ../shared/platforms/instagram.md.

Two things set this API apart from TikTok's:

* The access token travels as the ``access_token`` query parameter, and Instagram repeats
  it inside every ``paging.next`` URL. It is registered with the scrubber the moment it is
  known, paging follows ``paging.cursors.after`` (never the ``next`` URL itself), and no
  envelope — only the items inside it — is kept as a raw payload.
* There is no refresh token: a long-lived token (60 days) is exchanged for a fresh one,
  but only once it is at least 24 hours old and never after it has expired.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from archiver.net.client import ApiClient, NetError, Pacer, RetryPolicy, scrubber
from archiver.net.tokens import StoredTokens
from archiver.records import Comment, MediaRef, Person, Post, Profile, iso_utc, visibility

log = logging.getLogger("archiver.instagram")

GRAPH_VERSION = "v23.0"
DEFAULT_SCOPES = "instagram_business_basic,instagram_business_manage_comments"
DAY = 86400
MIN_REFRESH_AGE = 1 * DAY     # Instagram refuses to refresh a token younger than this [C]
REFRESH_WHEN_LEFT = 45 * DAY  # refresh once less than this is left of the 60 days
PAGE_LIMIT = 50
USER_FIELDS = ("user_id,username,name,account_type,profile_picture_url,followers_count,"
               "follows_count,media_count,biography,website")
CHILD_FIELDS = "id,media_type,media_url,thumbnail_url"
MEDIA_FIELDS = ("id,caption,media_type,media_product_type,media_url,thumbnail_url,permalink,timestamp,"
                "shortcode,like_count,comments_count,is_shared_to_feed," f"children{{{CHILD_FIELDS}}}")
REPLY_FIELDS = "id,text,timestamp,username,from,like_count,hidden,parent_id"
COMMENT_FIELDS = f"{REPLY_FIELDS},replies{{{REPLY_FIELDS}}}"

# Graph error codes (notes §5): what each means for the run.
AUTH_CODES = {190, 102, 458, 459, 460, 463, 464, 467, 492}
THROTTLE_CODES = {4, 17, 32, 613, 80002}
TRANSIENT_CODES = {1, 2}
THROTTLE_RETRIES = 4          # a throttled call is tried again this often before the run stops
MAX_THROTTLE_WAIT = 15 * 60   # longer than this: stop now, resume from the checkpoint next run
DEFAULT_THROTTLE_WAIT = 60.0  # when no header says how long
SLOW_DOWN_AT = 75             # usage percentage from which calls are spaced out
URL_FIELDS = ("media_url", "thumbnail_url", "profile_picture_url")


def reauth_message(account: str, detail: str = "") -> str:
    return (f"Instagram no longer accepts the stored authorization for account {account!r}"
            f"{' (' + detail + ')' if detail else ''}. Instagram tokens cannot be renewed once expired "
            f"or revoked: run `archiver auth instagram --account {account}` again.")


PERSONAL_ACCOUNT_MESSAGE = (
    "This Instagram account is a personal account: Instagram offers no API for personal accounts. "
    "Its path is the \"Download your information\" export (JSON), imported with `archiver import`; "
    "or switch it to a professional (Creator or Business) account in the Instagram app and run "
    "`archiver auth instagram` again.")


class GraphError(NetError):
    """A Graph error envelope: ``code`` and ``subcode`` decide, not the HTTP status."""

    def __init__(self, code: int | None, subcode: int | None, message: str, *, kind: str,
                 status: int | None, path: str):
        super().__init__(f"Instagram {path}: error {code}" + (f"/{subcode}" if subcode else "")
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


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- pacing


class UsagePacer(Pacer):
    """A Pacer that reads Meta's usage headers (notes §4).

    ``X-App-Usage`` and ``X-Business-Use-Case-Usage`` give percentages of the allowance
    used. From ``SLOW_DOWN_AT`` percent calls are spaced out (more as it nears 100); at
    100, or when ``estimated_time_to_regain_access`` (minutes) is set, calls stop until
    then: more calls while throttled prolong the throttle.
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


def usage_of(headers: httpx.Headers) -> tuple[float, float]:
    """(highest usage percentage, estimated minutes to regain access) from both headers."""
    percent, regain = 0.0, 0.0
    entries: list[dict] = []
    try:
        app = json.loads(headers.get("x-app-usage") or "{}")
        if isinstance(app, dict):
            entries.append(app)
    except ValueError:
        pass
    try:
        business = json.loads(headers.get("x-business-use-case-usage") or "{}")
        if isinstance(business, dict):
            for values in business.values():
                entries.extend(v for v in (values if isinstance(values, list) else [values]) if isinstance(v, dict))
    except ValueError:
        pass
    for entry in entries:
        for key in ("call_count", "total_time", "total_cputime"):
            if isinstance(entry.get(key), (int, float)):
                percent = max(percent, float(entry[key]))
        if isinstance(entry.get("estimated_time_to_regain_access"), (int, float)):
            regain = max(regain, float(entry["estimated_time_to_regain_access"]))
    return percent, regain


# --------------------------------------------------------------------------- tokens


class InstagramTokens(StoredTokens):
    """The long-lived token in the SecretStore, refreshed well before it expires.

    Stored record: access_token, user_id, issued_at and expires_at (epoch seconds),
    permissions. A refresh is due once less than ``REFRESH_WHEN_LEFT`` is left and the token
    is at least 24 hours old; a failed refresh of a still valid token only logs a warning
    (the token keeps working), an expired one needs `archiver auth` again.
    """

    platform, title = "instagram", "Instagram"

    def __init__(self, secrets, account: str, graph_base: str, client: httpx.Client, clock=time.time):
        super().__init__(secrets, account)
        self.graph_base, self.client, self.clock = graph_base, client, clock
        self._refresh_failed = False   # tried once this run and failed: not again per call

    def store(self, response: dict[str, Any], *, user_id: str | None = None,
              permissions: str | None = None) -> dict[str, Any]:
        """A long-lived token answer (``access_token``, ``expires_in``) -> stored record."""
        scrubber.add(response["access_token"])
        now = self.clock()
        previous = self._tokens or {}
        tokens = {
            "access_token": response["access_token"],
            "issued_at": now,
            "expires_at": now + int(response.get("expires_in") or 60 * DAY),
            "user_id": user_id or previous.get("user_id"),
            "permissions": permissions if permissions is not None else previous.get("permissions", ""),
        }
        return self.save(tokens)

    def refresh_due(self) -> bool:
        """Less than REFRESH_WHEN_LEFT left, the token old enough to be refreshed, and no
        refresh failed in this run already."""
        tokens, now = self.load(), self.clock()
        return (tokens["expires_at"] - now < REFRESH_WHEN_LEFT
                and now - tokens["issued_at"] >= MIN_REFRESH_AGE
                and not self._refresh_failed)

    def access_token(self) -> str:
        """The token to send, refreshed first when due. Raises NetError(auth) once expired."""
        if self.load()["expires_at"] <= self.clock():
            raise NetError(reauth_message(self.account, "the 60-day token has expired"), kind="auth")
        self.refresh_when_due()   # other threads and processes: one refresh
        return self.load()["access_token"]

    def _refresh_locked(self) -> None:
        token = self.load()["access_token"]
        url = f"{self.graph_base}/refresh_access_token"
        try:
            response = self.client.get(url, params={"grant_type": "ig_refresh_token", "access_token": token})
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            log.warning("Instagram token refresh failed (%s); the current token stays valid until %s",
                        type(error).__name__, iso_utc(self.load()["expires_at"]))
            self._refresh_failed = True
            return
        refused = graph_error_of(body)
        if refused is not None or "access_token" not in body:
            code, subcode, message = refused or (None, None, "no access_token in the answer")
            if code == 190 and subcode in (460, 463, 467, 458, 459, 464, 492):
                raise NetError(reauth_message(self.account, scrubber.text(message)), kind="auth")
            log.warning("Instagram refused to refresh the token (error %s: %s); it stays valid until %s",
                        code, scrubber.text(message), iso_utc(self.load()["expires_at"]))
            self._refresh_failed = True
            return
        self.store(body)
        log.info("refreshed the Instagram access token for %s (valid 60 days)", self.account)


# --------------------------------------------------------------------------- the API


class InstagramApi:
    """Graph calls for one account: /me, media, children, comments, replies."""

    def __init__(self, graph_base: str, tokens: InstagramTokens, *, transport=None, sleep=None, cancel=None,
                 pacer: UsagePacer | None = None):
        self.tokens = tokens
        self.pacer = pacer or UsagePacer()
        self.host = urlsplit(graph_base).hostname or ""
        kwargs = {"sleep": sleep} if sleep else {}
        # No TokenProvider: the token goes in the query string (the ApiClient's header
        # refresh cannot help either — an Instagram token is never renewed after a 190).
        self.client = ApiClient(f"{graph_base}/{GRAPH_VERSION}", transport=transport, cancel=cancel,
                                pacer=self.pacer, retry=RetryPolicy(attempts=6), **kwargs)
        self._lock = threading.Lock()
        self._fresh: dict[str, dict] = {}   # object id -> the answer with its fresh links

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict:
        """GET a Graph path; maps error codes (notes §5) to what the run must do."""
        label = re.sub(r"/\d+", "/{id}", path)   # messages name the edge, not the ids
        throttled = transient = 0
        while True:
            query = {**(params or {}), "access_token": self.tokens.access_token()}
            response = self.client.request("GET", path, params=query, expect_json=True)
            try:
                body = response.json()
            except ValueError:
                raise NetError(f"Instagram {label}: HTTP {response.status_code} without JSON",
                               kind="bad_response", status=response.status_code) from None
            error = graph_error_of(body)
            if error is None and response.status_code < 400:
                return body
            code, subcode, message = error or (None, None, f"HTTP {response.status_code}")
            if code in AUTH_CODES:
                raise GraphError(code, subcode, reauth_message(self.tokens.account, message),
                                 kind="auth", status=response.status_code, path=label)
            if code in THROTTLE_CODES or code == 368:
                throttled += 1
                _, regain = usage_of(response.headers)
                wait = regain * 60 if regain else DEFAULT_THROTTLE_WAIT * 2 ** (throttled - 1)
                if throttled > THROTTLE_RETRIES or wait > MAX_THROTTLE_WAIT:
                    raise GraphError(code, subcode, f"{message} — Instagram is throttling this account; "
                                     f"the run stopped and resumes from its checkpoint next time "
                                     f"(about {max(1, round(wait / 60))} min)",
                                     kind="rate_limited", status=response.status_code, path=label)
                log.warning("Instagram throttled %s (error %s); waiting %.0fs", label, code, wait)
                self.pacer.block(self.host, wait)   # the next attempt sleeps it off, cancellably
                continue
            if code in TRANSIENT_CODES and transient < 3:
                transient += 1
                self.pacer.block(self.host, 2.0 ** transient)
                continue
            kind = "auth" if code == 10 or (code is not None and 200 <= code <= 299) else (
                "gone" if response.status_code == 404 else "client")
            raise GraphError(code, subcode, message, kind=kind, status=response.status_code, path=label)

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

    # -- the calls ---------------------------------------------------------------------
    def me(self) -> dict:
        return self.get("/me", {"fields": USER_FIELDS})

    def media_page(self, after: str | None) -> tuple[list[dict], str | None]:
        body = self.get("/me/media", {"fields": MEDIA_FIELDS, "limit": PAGE_LIMIT,
                                      **({"after": after} if after else {})})
        return body.get("data") or [], next_cursor(body)

    def children(self, media_id: str) -> list[dict]:
        found: list[dict] = []
        for items, _ in self.pages(f"/{media_id}/children", {"fields": CHILD_FIELDS}):
            found.extend(items)
        return found

    def comments(self, media_id: str) -> Iterator[dict]:
        """Top-level comments, each with every reply in ``replies.data`` (the expansion's
        further pages fetched through /{comment-id}/replies)."""
        for items, _ in self.pages(f"/{media_id}/comments", {"fields": COMMENT_FIELDS, "limit": PAGE_LIMIT}):
            for comment in items:
                replies = comment.get("replies") or {}
                found = list(replies.get("data") or [])
                more = next_cursor(replies)
                if more:
                    for page, _ in self.pages(f"/{comment['id']}/replies", {"fields": REPLY_FIELDS}, after=more):
                        found.extend(page)
                comment["replies"] = {"data": found}
                yield comment

    def media_item(self, media_id: str) -> dict:
        """One media item with the listing's fields (for refreshing the counts of media
        the listing did not reach). One call per item: the notes know no batch read."""
        return self.get(f"/{media_id}", {"fields": MEDIA_FIELDS})

    def fresh_link(self, object_id: str, field: str) -> str | None:
        """A new signed CDN link (``field``: media_url, thumbnail_url or profile_picture_url)
        for a media item, a carousel child or ``me``, asked again because the old link was
        refused (notes §2.2: links expire; on a 403 ask ``/{media-id}?fields=media_url``).
        A video's file and thumbnail come from one call: the answer is kept for the run."""
        fields = "profile_picture_url" if object_id == "me" else "media_url,thumbnail_url"
        with self._lock:
            body = self._fresh.get(object_id)
        if body is None:
            body = self.get(f"/{object_id}", {"fields": fields})
            with self._lock:
                self._fresh[object_id] = body
        value = body.get(field)
        return value if isinstance(value, str) and value else None

    def refresher(self, object_id: str, field: str) -> Callable[[], str | None]:
        """The ``MediaRef.refresh`` hook for one file: the runner calls it once when the
        link it was given is refused with 403/410."""
        return functools.partial(self.fresh_link, object_id, field)

    def close(self) -> None:
        self.client.close()
        self.tokens.client.close()


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


# --------------------------------------------------------------------------- mapping


def _scrubbed(item: dict) -> dict:
    """A payload fit to keep: signed CDN links lose their query, nested pages their paging."""
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key in URL_FIELDS and isinstance(value, str):
            out[key] = scrubber.url(value)
        elif key == "paging":
            continue
        elif isinstance(value, dict):
            out[key] = _scrubbed(value)
        elif isinstance(value, list):
            out[key] = [_scrubbed(v) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


# Given by the API client: (object id, field) -> a hook that asks for a fresh signed link.
Refresher = Callable[[str, str], Callable[[], "str | None"]]


def profile_from_me(me: dict, refresher: Refresher | None = None) -> Profile:
    username = me.get("username")
    avatar = me.get("profile_picture_url")
    return Profile(
        native_id=str(me["user_id"]) if me.get("user_id") else None,
        username=username,
        display_name=me.get("name"),
        bio=me.get("biography"),
        url=f"https://www.instagram.com/{username}/" if username else None,
        avatar=MediaRef(avatar, "avatar", refresh=refresher("me", "profile_picture_url") if refresher else None)
        if avatar else None,
        followers=me.get("followers_count"),
        following=me.get("follows_count"),
        posts=me.get("media_count"),
        raw=_scrubbed(me),
    )


NO_MEDIA_URL_NOTE = ("Instagram gives no media_url for this item (it holds copyrighted material, "
                     "e.g. flagged audio): only its thumbnail is kept")


def post_kind(item: dict) -> str:
    if item.get("media_type") == "CAROUSEL_ALBUM":
        return "carousel"
    if item.get("media_product_type") == "REELS":
        return "reel"
    return "video" if item.get("media_type") == "VIDEO" else "image"


def media_refs(item: dict, children: list[dict], refresher: Refresher | None = None) -> list[MediaRef]:
    """The files of one media item: the image or video (and a video's thumbnail), or every
    carousel child's, each at its position. With a ``refresher``, each file can ask for a
    fresh link to itself (by its own id: the child's for a carousel part) when its signed
    link has expired before the download."""
    refs: list[MediaRef] = []
    parts = children if item.get("media_type") == "CAROUSEL_ALBUM" and children else [item]
    for position, part in enumerate(parts):
        role = "video" if part.get("media_type") == "VIDEO" else "image"
        object_id = str(part.get("id") or item["id"])
        for field, file_role in (("media_url", role), ("thumbnail_url", "thumbnail")):
            if part.get(field):
                hook = refresher(object_id, field) if refresher else None
                refs.append(MediaRef(part[field], file_role, position, refresh=hook))
    return refs


def post_from_media(item: dict, children: list[dict] | None = None, refresher: Refresher | None = None) -> Post:
    children = children if children is not None else (item.get("children") or {}).get("data") or []
    raw = _scrubbed({k: v for k, v in item.items() if k != "children"})
    if children:
        raw["children"] = [_scrubbed(c) for c in children]
    missing = [c.get("id") or item.get("id") for c in (children or [item])
               if c.get("media_type") in ("VIDEO", "IMAGE") and not c.get("media_url")]
    if missing:
        raw["archiver_note"] = NO_MEDIA_URL_NOTE
    return Post(
        native_id=str(item["id"]),
        created_at=iso_utc(item.get("timestamp")),
        kind=post_kind(item),
        text=item.get("caption") or None,
        url=item.get("permalink"),
        visibility=visibility("public"),  # the Graph API lists a professional account's public media
        like_count=item.get("like_count"),
        comment_count=item.get("comments_count"),
        media=media_refs(item, children, refresher),
        raw=raw,
    )


def person_from(comment: dict) -> Person | None:
    who = comment.get("from") or {}
    username = who.get("username") or comment.get("username")
    # Keyed by user name, not the API's id: the export (followers, following) names people
    # only by user name, and one fan must be one row in `people`. The id stays in raw.
    ident = username or who.get("id")
    if not ident:
        return None
    return Person(native_id=str(ident), handle=username,
                  url=f"https://www.instagram.com/{username}/" if username else None,
                  raw=_scrubbed(who) if who else {"username": username})


def comments_from(comment: dict, media_id: str, owner_id: str | None, owner_username: str | None) -> list[Comment]:
    """One top-level comment and its replies as records, parents first."""
    records = []
    for item, parent in [(comment, None)] + [(r, comment["id"]) for r in (comment.get("replies") or {}).get("data") or []]:
        author = person_from(item)
        by_owner = author is not None and (author.native_id == owner_id
                                           or (author.handle and author.handle == owner_username))
        records.append(Comment(
            native_id=str(item["id"]),
            text=item.get("text") or "",
            created_at=iso_utc(item.get("timestamp")),
            post_native_id=media_id,
            author=author,
            by_owner=bool(by_owner),
            parent_native_id=item.get("parent_id") or parent,
            raw=_scrubbed({k: v for k, v in item.items() if k != "replies"}),
        ))
    return records


# --------------------------------------------------------------------------- OAuth


def authorize_url(base: str, *, client_id: str, scopes: str, redirect_uri: str, state: str) -> str:
    query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": scopes, "state": state})
    return f"{base}/oauth/authorize?{query}"


def exchange_code(client: httpx.Client, url: str, form: dict[str, str]) -> tuple[str, str | None, str | None]:
    """POST the code exchange; (short-lived token, user id as text, permissions). Accepts
    both the ``{"data": [...]}`` and the flat answer (notes §1.2). Not retried: a code is
    single-use."""
    try:
        response = client.post(url, data=form, headers={"Accept": "application/json"})
        body = response.json()
    except httpx.TransportError as error:
        raise NetError(f"Instagram token endpoint unreachable: {type(error).__name__}", kind="transport") from None
    except ValueError:
        raise NetError(f"Instagram token endpoint: HTTP {response.status_code} without JSON", kind="server") from None
    refused = graph_error_of(body)
    if refused is not None:
        raise NetError(f"Instagram refused the authorization code: {refused[2]}", kind="auth",
                       status=response.status_code)
    entry = body["data"][0] if isinstance(body.get("data"), list) and body["data"] else body
    if "access_token" not in entry:
        raise NetError("Instagram's code exchange answered without an access token", kind="bad_response")
    scrubber.add(entry["access_token"])
    user_id = str(entry["user_id"]) if entry.get("user_id") is not None else None
    permissions = entry.get("permissions")
    if isinstance(permissions, list):
        permissions = ",".join(permissions)
    return entry["access_token"], user_id, permissions


def long_lived(client: httpx.Client, graph_base: str, short_token: str, client_secret: str) -> dict:
    response = client.get(f"{graph_base}/access_token", params={
        "grant_type": "ig_exchange_token", "client_secret": client_secret, "access_token": short_token})
    try:
        body = response.json()
    except ValueError:
        raise NetError(f"Instagram token exchange: HTTP {response.status_code} without JSON", kind="server") from None
    error = graph_error_of(body)
    if error is not None or "access_token" not in body:
        raise NetError(f"Instagram refused the long-lived token exchange: {(error or (0, 0, 'no token'))[2]}",
                       kind="auth", status=response.status_code)
    scrubber.add(body["access_token"])
    return body
