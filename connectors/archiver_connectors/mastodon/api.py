"""Mastodon's REST API: app registration and OAuth, the token, paging by Link header,
pacing, and payload -> record mapping.

See ../shared/platforms/mastodon.md. Only requests documented there are made.

The mapping rules here are shared with the archive import (export.py), so that a status
seen through the API and in an account archive is ONE row:

- posts are keyed by the status id (an archive Note's id is the status URI; its last path
  segment is the id);
- a post's text is ``html_to_text(content)``, its title the content warning;
- a boost is a post of kind "boost" keyed by the wrapper status's own id; its url and
  text are the boosted status's URI (the archive's Announce names only that);
- people are keyed by ``person_key``: the account's ``acct`` made absolute and
  lowercase, "user@domain" (a local account gets the instance's host);
- media roles come from ``media_role`` (image / video / audio / file), in attachment order.
"""

from __future__ import annotations

import collections
import html
import json
import logging
import re
import threading
import time
from html.parser import HTMLParser
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import httpx

from archiver.net.client import ApiClient, NetError, Pacer, RetryPolicy, scrubber
from archiver.net.tokens import StoredTokens
from archiver.records import Comment, MediaRef, Person, Post, PostVersion, Profile, iso_utc, visibility
from archiver_connectors.mastodon.visibility import VISIBILITY_WORDS

log = logging.getLogger("archiver.mastodon")

# Read-only scopes (notes §1). `read` would imply these and more; ask for no more than needed.
SCOPES = "read:accounts read:statuses read:follows"
APP_NAME = "archiver"
APP_WEBSITE = "https://github.com/archiver/archiver"
STATUS_PAGE = 40        # /accounts/:id/statuses maximum limit
ACCOUNT_PAGE = 80       # /followers and /following maximum limit
# Mastodon's stricter rule for requests that page (max_id, min_id, since_id, page):
# 300 per 15 minutes per user (notes §5, rack_attack.rb). Paced ahead of time so a long
# walk never runs into the 429 (the headers report only the limit closest to being hit).
PAGED_LIMIT = 300
PAGED_WINDOW = 15 * 60
PAGING_PARAMS = ("max_id", "min_id", "since_id", "page")


def reauth_message(account: str) -> str:
    return (f"Mastodon no longer accepts the stored access token for account {account!r} "
            f"(revoked, or the app was deleted). Run `archiver auth mastodon --account {account}` again.")


# --------------------------------------------------------------------------- instance URL


def normalize_instance(value: str, *, key: str = "--instance") -> str:
    """"mastodon.social", "https://mastodon.social/", "@alice@mastodon.social" ->
    "https://mastodon.social". Plain http:// only for a loopback address (tests, simulators)."""
    import ipaddress

    text = (value or "").strip()
    if text.startswith("@") and text.count("@") == 2:
        text = text.rsplit("@", 1)[1]           # a full handle: the instance is after the 2nd @
    if not text:
        raise ValueError(f"{key}: empty; give the instance's address, e.g. https://mastodon.social")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{key}: {value!r} is not an instance address; give e.g. https://mastodon.social")
    if parts.scheme == "http":
        loopback = host == "localhost"
        try:
            loopback = loopback or ipaddress.ip_address(host).is_loopback
        except ValueError:
            pass
        if not loopback:
            raise ValueError(f"{key}: {value!r} uses plain http://; Mastodon instances are reached over "
                             "https:// (http:// is allowed for a loopback address only)")
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return f"{parts.scheme}://{netloc}"


# --------------------------------------------------------------------------- mapping helpers


class _TextOfHtml(HTMLParser):
    """Mastodon's sanitized status HTML (<p> <br> <span> <a>) -> plain text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0   # inside <span class="invisible"> (the cut-off parts of long links)

    def handle_starttag(self, tag, attrs):
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")
        elif tag == "span" and "invisible" in (dict(attrs).get("class") or "").split():
            self._hidden += 1
        elif tag == "span" and self._hidden:
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag == "span" and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def html_to_text(content: str | None) -> str | None:
    """The plain text of a status's (or a bio's) HTML. Shared with the archive import:
    the same HTML must give the same text, or a merge would look like an edit."""
    if content is None:
        return None
    if "<" not in content:
        return html.unescape(content).strip() or None
    parser = _TextOfHtml()
    parser.feed(content)
    parser.close()
    text = "".join(parser.parts).strip()
    return text or None


def instance_host(base_url: str) -> str:
    return (urlsplit(base_url).hostname or "").lower()


def person_key(acct: str | None, local_domain: str) -> str | None:
    """The `people` key: "user@domain", lowercase; a local acct ("alice") gets the
    instance's host. Shared with the archive import (which maps actor URIs to it)."""
    if not acct:
        return None
    acct = acct.strip().lstrip("@").lower()
    return acct if "@" in acct else f"{acct}@{local_domain.lower()}"


def status_key(instance: str, status_id: Any) -> str:
    """The archive's key of a status: ``<instance host>:<id>``. A status id is local to the
    instance that gave it (the owner's own, and the replies of others as that instance
    numbers them), so two accounts on two instances never share a key."""
    return f"{instance.lower()}:{status_id}"


def key_statuses_by_instance(db) -> None:
    """An archive written before statuses were keyed ``<instance host>:<id>``: each
    account's posts and comments (and what names them) get their instance's host, taken
    from the account's profile link, else from one of its posts' links."""
    accounts = [r[0] for r in db.execute(
        "SELECT account_id FROM posts WHERE platform='mastodon' UNION SELECT account_id FROM comments "
        "WHERE platform='mastodon'").fetchall()]
    for account_id in accounts:
        links = db.execute(
            "SELECT url FROM accounts WHERE account_id=? UNION ALL SELECT url FROM posts WHERE account_id=? "
            "AND platform='mastodon' AND kind != 'boost' AND url IS NOT NULL", [account_id, account_id]).fetchall()
        host = next((urlsplit(url).hostname for (url,) in links if url and urlsplit(url).hostname), None)
        if host is None:
            continue  # nothing names its instance: left as it is
        prefix = f"{host.lower()}:"
        new = "? || {0}".format
        unkeyed = "instr({0}, ':') = 0".format
        posts = f"SELECT post_id FROM posts WHERE platform='mastodon' AND account_id=? AND {unkeyed('post_id')}"
        ids = [r[0] for r in db.execute(posts, [account_id]).fetchall()]
        for table in ("post_versions", "post_metrics", "post_media"):
            db.execute(f"UPDATE {table} SET post_id={new('post_id')} WHERE platform='mastodon' AND post_id IN "
                       "(SELECT value FROM json_each(?))", [prefix, json.dumps(ids)])
        db.execute(f"UPDATE posts SET post_id={new('post_id')} WHERE platform='mastodon' AND account_id=? "
                   f"AND {unkeyed('post_id')}", [prefix, account_id])
        comment_ids = [r[0] for r in db.execute(
            f"SELECT comment_id FROM comments WHERE platform='mastodon' AND account_id=? AND {unkeyed('comment_id')}",
            [account_id]).fetchall()]
        db.execute("UPDATE comment_versions SET comment_id=? || comment_id WHERE platform='mastodon' AND comment_id IN "
                   "(SELECT value FROM json_each(?))", [prefix, json.dumps(comment_ids)])
        for column in ("comment_id", "post_id", "parent_id"):
            db.execute(f"UPDATE comments SET {column}={new(column)} WHERE platform='mastodon' AND account_id=? "
                       f"AND {column} IS NOT NULL AND {unkeyed(column)}", [prefix, account_id])


def status_id_of(uri: str | None) -> str | None:
    """The local status id of a status URI/URL (its last path segment)."""
    if not uri:
        return None
    return urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1] or None


def media_role(kind: str | None) -> str:
    """A MediaAttachment ``type`` (or an archive attachment's MIME type) -> post_media role."""
    kind = (kind or "").lower()
    if kind in ("image",) or kind.startswith("image/"):
        return "image"
    if kind in ("video", "gifv") or kind.startswith("video/"):
        return "video"
    if kind == "audio" or kind.startswith("audio/"):
        return "audio"
    return "file"


def picture_link(*candidates: Any) -> str | None:
    """The first usable link among an account's picture fields, or None. An account without
    a picture of its own gets the instance's default ("…/avatars/original/missing.png",
    "…/headers/original/missing.png"): that is not the person's, so it is not kept."""
    for url in candidates:
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            name = urlsplit(url).path.rsplit("/", 1)[-1]
            return None if name.startswith("missing.") else url
    return None


def person_avatar(account: dict[str, Any]) -> MediaRef | None:
    """A commenter's picture to keep: ``avatar_static`` (a still image even when the
    avatar is an animated GIF), else ``avatar``. The instance serves remote people's
    pictures from its own cache, so the link is on the instance."""
    url = picture_link(account.get("avatar_static"), account.get("avatar"))
    return MediaRef(url, "avatar") if url else None


def person_from_account(account: dict[str, Any], local_domain: str) -> Person | None:
    key = person_key(account.get("acct") or account.get("username"), local_domain)
    if key is None:
        return None
    # Their bio and the links in their profile fields ("Website", "Instagram" …): how
    # `archiver audience links` finds the same person on other platforms.
    links = [href for field in account.get("fields") or [] if isinstance(field, dict)
             for href in re.findall(r'href="([^"]+)"', field.get("value") or "")]
    return Person(native_id=key, handle=key, display_name=account.get("display_name") or None,
                  url=account.get("url"), avatar_url=account.get("avatar"),
                  bio=html_to_text(account.get("note")), links=links, raw=dict(account))


def profile_from_account(account: dict[str, Any]) -> Profile:
    # The originals (``avatar``, ``header``; the *_static ones are stills of animated GIFs).
    avatar = picture_link(account.get("avatar"), account.get("avatar_static"))
    banner = picture_link(account.get("header"), account.get("header_static"))
    raw = dict(account)
    return Profile(
        native_id=str(account["id"]) if account.get("id") is not None else None,
        username=account.get("username") or account.get("acct"),
        display_name=account.get("display_name") or None,
        bio=html_to_text(account.get("note")),
        url=account.get("url"),
        # The default pictures ("missing.png") are the instance's, not the owner's.
        avatar=MediaRef(avatar, "avatar") if avatar else None,
        banner=MediaRef(banner, "banner") if banner else None,
        followers=account.get("followers_count"),
        following=account.get("following_count"),
        posts=account.get("statuses_count"),
        raw=raw,
    )


def media_refs(status: dict[str, Any]) -> list[MediaRef]:
    refs = []
    for position, attachment in enumerate(status.get("media_attachments") or []):
        url = attachment.get("url") or attachment.get("remote_url")
        if not url:
            continue   # still processing on the server: the next run gets it
        meta = {k: attachment[k] for k in ("id", "type", "meta", "blurhash", "preview_url", "remote_url")
                if attachment.get(k) is not None}
        refs.append(MediaRef(url, media_role(attachment.get("type")), position=position,
                             description=attachment.get("description") or None, meta=meta or None))
    return refs


def history_versions(edits: list[dict[str, Any]]) -> list[PostVersion]:
    """/statuses/:id/history (oldest first, the current version last) -> the earlier
    versions, each replaced at the next one's time."""
    ordered = sorted(edits, key=lambda e: e.get("created_at") or "")
    versions = []
    for earlier, later in zip(ordered, ordered[1:], strict=False):   # each with the next
        replaced_at = iso_utc(later.get("created_at"))
        if replaced_at:
            versions.append(PostVersion(replaced_at=replaced_at, text=html_to_text(earlier.get("content")),
                                        title=(earlier.get("spoiler_text") or "").strip() or None))
    return versions


def post_visibility(word: str | None) -> str | None:
    return visibility(word, VISIBILITY_WORDS)


def post_from_status(status: dict[str, Any], history: list[dict] | None = None, *, instance: str) -> Post:
    """One status of the owner's: an original ("text"), a reply ("reply") or a boost
    ("boost"). ``instance`` is the host of the instance that gave it (its ids are local)."""
    boosted = status.get("reblog")
    if boosted:
        target = boosted.get("uri") or boosted.get("url")
        return Post(native_id=status_key(instance, status["id"]), created_at=iso_utc(status.get("created_at")), kind="boost",
                    text=target, url=target, visibility=post_visibility(status.get("visibility")), raw=dict(status))
    return Post(
        native_id=status_key(instance, status["id"]),
        created_at=iso_utc(status.get("created_at")),
        kind="reply" if status.get("in_reply_to_id") else "text",
        title=(status.get("spoiler_text") or "").strip() or None,   # the content warning
        text=html_to_text(status.get("content")),
        url=status.get("url") or status.get("uri"),
        visibility=post_visibility(status.get("visibility")),
        like_count=status.get("favourites_count"),
        comment_count=status.get("replies_count"),
        share_count=status.get("reblogs_count"),
        media=media_refs(status),
        history=history_versions(history) if history else [],
        raw=dict(status),
    )


def comments_from_context(root_id: str, context: dict[str, Any], owner_id: str,
                          local_domain: str) -> list[Comment]:
    """The replies other people wrote under the owner's status ``root_id``, keyed on the
    instance ``local_domain`` that numbered them (``status_key``).

    Each reply belongs to the nearest of the owner's statuses above it (the root, or one of
    the owner's own replies inside the thread), so asking the context of either gives the
    same ``post_id``. The owner's own replies are posts (kind "reply"), not comments.
    """
    descendants = context.get("descendants") or []
    by_id = {str(s["id"]): s for s in descendants}
    owner_status = {root_id} | {i for i, s in by_id.items() if str((s.get("account") or {}).get("id")) == owner_id}
    comments = []
    for status_id, status in by_id.items():
        if status_id in owner_status:
            continue
        post_id, parent = None, status.get("in_reply_to_id")
        seen = set()
        while parent is not None and str(parent) not in seen:
            parent = str(parent)
            seen.add(parent)
            if parent in owner_status:
                post_id = parent
                break
            parent = (by_id.get(parent) or {}).get("in_reply_to_id")
        if post_id is None:
            post_id = root_id   # a reply whose chain leaves the thread we saw: under the root
        author = person_from_account(status.get("account") or {}, local_domain)
        if author is not None:
            # Kept as a file for commenters only (not for a follower list's members).
            author.avatar = person_avatar(status.get("account") or {})
        parent_id = (str(status["in_reply_to_id"]) if status.get("in_reply_to_id")
                     and str(status["in_reply_to_id"]) not in owner_status else None)
        comments.append(Comment(
            native_id=status_key(local_domain, status_id),
            text=html_to_text(status.get("content")) or "",
            created_at=iso_utc(status.get("created_at")),
            post_native_id=status_key(local_domain, post_id),
            author=author,
            # The comment it answers; a reply straight to one of the owner's statuses answers
            # the post itself and has none (comments.parent_id names comments only).
            parent_native_id=status_key(local_domain, parent_id) if parent_id else None,
            url=status.get("url") or status.get("uri"),
            raw=dict(status),
        ))
    return comments


# --------------------------------------------------------------------------- token


class MastodonTokens(StoredTokens):
    """The access token in the SecretStore (implements net.TokenProvider).

    Vanilla Mastodon issues no refresh token and no expiry (notes §2): a token lives until
    revoked. So ``refresh`` cannot help; it says to authorize again.
    Stored record: access_token, scope, created_at, account_id, acct, instance.
    """

    platform, title = "mastodon", "Mastodon"

    def _refresh_locked(self) -> None:
        raise NetError(reauth_message(self.account), kind="auth", status=401)


# --------------------------------------------------------------------------- pacing


class PagedRequestBudget:
    """At most ``limit`` paging requests per ``window`` seconds, waited for ahead of time.

    The clock is the real one plus every wait taken through ``wait`` (tests sleep
    instantly; their waits still count as time passed).
    """

    def __init__(self, limit: int = PAGED_LIMIT, window: float = PAGED_WINDOW,
                 clock: Callable[[], float] = time.monotonic):
        self.limit, self.window = limit, window
        self._clock = clock
        self._slept = 0.0
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._clock() + self._slept

    def wait(self, sleep: Callable[[float], None]) -> None:
        with self._lock:
            now = self.now()
            while self._sent and self._sent[0] <= now - self.window:
                self._sent.popleft()
            delay = 0.0
            if len(self._sent) >= self.limit:
                delay = self._sent[0] + self.window - now
        if delay > 0:
            log.info("pacing paged Mastodon requests: waiting %.0fs (limit %d per %d min)",
                     delay, self.limit, self.window // 60)
            sleep(delay)
            with self._lock:
                self._slept += delay
        with self._lock:
            self._sent.append(self.now())


def is_paged(url: str, params: dict | None) -> bool:
    query = urlsplit(url).query
    names = {part.split("=", 1)[0] for part in query.split("&") if part}
    names |= set(params or {})
    return any(name in names for name in PAGING_PARAMS)


# --------------------------------------------------------------------------- the API


class MastodonError(NetError):
    """An API error with Mastodon's ``{"error": ...}`` body."""


class MastodonApi:
    """The read-only calls archiver makes on one instance, for one account."""

    def __init__(self, base_url: str, tokens: MastodonTokens | None, *, transport=None, sleep=None, cancel=None,
                 paged_limit: int = PAGED_LIMIT, paged_window: float = PAGED_WINDOW):
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self._sleep = sleep or time.sleep
        self.paged = PagedRequestBudget(paged_limit, paged_window)
        self.client = ApiClient(self.base_url, tokens=tokens, transport=transport, cancel=cancel,
                                sleep=self._sleep, pacer=Pacer(), retry=RetryPolicy())

    def close(self) -> None:
        self.client.close()

    # -- requests --------------------------------------------------------------------
    def _same_instance(self, url: str) -> str:
        """A Link header URL may only lead back to this instance: the access token goes
        with it."""
        if url.startswith("/"):
            return url
        here, there = urlsplit(self.base_url), urlsplit(url)
        if (there.scheme, there.hostname, there.port) != (here.scheme, here.hostname, here.port):
            raise NetError(f"Mastodon sent a paging link to another server ({scrubber.url(url)}); "
                           "refusing to send the access token there. If that server is your instance's "
                           "real address, set base_url to it and authorize again.", kind="bad_response")
        return url

    def get(self, url: str, params: dict | None = None, *, authenticated: bool = True) -> httpx.Response:
        url = self._same_instance(url)
        if is_paged(url, params):
            # The client's own sleep: cancellable, and instant under test.
            self.paged.wait(self.client._sleep)
        response = self.client.request("GET", url, params=params, expect_json=True,
                                       authenticated=authenticated and self.tokens is not None)
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def get_json(self, url: str, params: dict | None = None) -> Any:
        return self.get(url, params).json()

    def _error(self, response: httpx.Response) -> NetError:
        path = scrubber.text(response.request.url.path)
        try:
            body = response.json()
            message = body.get("error") if isinstance(body, dict) else None
        except ValueError:
            message = None
        status = response.status_code
        if status == 401:
            return MastodonError(reauth_message(self.tokens.account if self.tokens else "?"), kind="auth",
                                 status=status)
        if status == 403:
            kind = "auth"
        elif status in (404, 410):
            kind = "gone"
        else:
            kind = "client"
        return MastodonError(f"Mastodon GET {path}: HTTP {status}: {message or 'no error message'}",
                             kind=kind, status=status)

    def pages(self, url: str | None, params: dict | None = None, rel: str = "next"
              ) -> Iterator[tuple[list[dict], str | None]]:
        """Each page of a list endpoint and the Link URL of the page after it (``rel``
        "next" walks older, "prev" newer), following the Link header only."""
        while url:
            items, link = self.page(url, params, rel)
            yield items, link
            url, params = link, None

    def page(self, url: str, params: dict | None = None, rel: str = "next") -> tuple[list[dict], str | None]:
        """One page of a list endpoint and the Link URL of the page after it (None at
        the end: no link, or an empty page)."""
        response = self.get(url, params)
        items = response.json()
        if not isinstance(items, list):
            raise NetError(f"Mastodon GET {scrubber.text(urlsplit(url).path)}: expected a list",
                           kind="bad_response")
        return items, (response.links.get(rel) or {}).get("url") if items else None

    # -- endpoints -------------------------------------------------------------------
    def verify_credentials(self) -> dict:
        return self.get_json("/api/v1/accounts/verify_credentials")

    def statuses_url(self, account_id: str) -> str:
        return f"/api/v1/accounts/{account_id}/statuses"

    def history(self, status_id: str) -> list[dict]:
        return self.get_json(f"/api/v1/statuses/{status_id}/history")

    def context(self, status_id: str) -> dict:
        return self.get_json(f"/api/v1/statuses/{status_id}/context")

    def accounts_url(self, account_id: str, kind: str) -> str:
        return f"/api/v1/accounts/{account_id}/{kind}"


def verify_token(client: httpx.Client, base_url: str, token: str) -> dict:
    """verify_credentials with a bare token (at `archiver auth`). Raises ValueError with
    Mastodon's reason when the token is refused."""
    response = client.get(f"{base_url}/api/v1/accounts/verify_credentials",
                          headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 200:
        try:
            reason = response.json().get("error")
        except ValueError:
            reason = None
        raise ValueError(f"HTTP {response.status_code}: {reason or 'no reason given'}")
    return response.json()

