"""Bluesky (AT Protocol) over XRPC: identity, app-password sessions, the PDS and the AppView.

See ../shared/platforms/bluesky.md. Three kinds of host are involved:

- the PLC directory (``did:plc`` documents) or the account's own web server (``did:web``),
  to find the account's PDS: handle → DID → DID document → ``#atproto_pds`` endpoint;
- the PDS: sessions (createSession / refreshSession), the repository (getRepo,
  getLatestCommit) and its blobs (listBlobs, getBlob). Only the PDS ever sees a token;
- the AppView (public by default): profile counts, followers, follows, threads.

Sessions: the app password is used once, by ``create_session``, and never kept. The
refresh token rotates (the old one dies at first use), so a refresh stores the new pair
before anything uses it. An expired access token is HTTP **400** ``ExpiredToken``.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlencode, urlsplit

import httpx

from archiver.net.client import ApiClient, NetError, Pacer, RetryPolicy, scrubber
from archiver.net.tokens import StoredTokens
from archiver.records import Comment, MediaRef, Membership, Person, iso_utc

log = logging.getLogger("archiver.bluesky")

DEFAULT_ENTRYWAY = "https://bsky.social"
DEFAULT_PLC_URL = "https://plc.directory"
DEFAULT_APPVIEW_URL = "https://public.api.bsky.app"
PAGE_LIMIT = 100            # getFollowers / getFollows / getAuthorFeed maximum
BLOB_PAGE_LIMIT = 1000      # listBlobs maximum
THREAD_DEPTH = 1000         # getPostThread maximum: the whole reply tree under a post
# A 429 says when the window resets (RateLimit-Reset); the Pacer reads it and the retry
# waits for it. Eight attempts outlast a few resets of a short window.
RETRY_POLICY = RetryPolicy(attempts=8)
# `archiver auth` has a person waiting at the terminal: a few quick tries, not minutes.
INTERACTIVE_RETRY_POLICY = RetryPolicy(attempts=3, total_cap=20.0)

# XRPC error names -> net.NetError kinds (notes §9). Others: by HTTP status.
_ERROR_KINDS = {
    "ExpiredToken": "auth", "InvalidToken": "auth", "AuthenticationRequired": "auth",
    "AuthMissing": "auth", "AccountTakedown": "gone", "AccountDeactivated": "gone",
    "RepoNotFound": "gone", "RepoTakendown": "gone", "RepoSuspended": "gone",
    "RepoDeactivated": "gone", "RateLimitExceeded": "rate_limited",
    "BlobNotFound": "client", "NotFound": "gone",
}
_AUTH_ERRORS = {"ExpiredToken", "InvalidToken"}


def reauth_message(account: str) -> str:
    return (f"Bluesky no longer accepts the stored session for account {account!r} (expired, revoked "
            f"or the app password was deleted). Run `archiver auth bluesky --account {account}` again.")


class BlueskyError(NetError):
    """An XRPC error answer: ``error`` is the platform's name for it (e.g. RepoNotFound)."""

    def __init__(self, error: str, message: str, *, status: int, path: str):
        kind = _ERROR_KINDS.get(error) or ("gone" if status in (404, 410) else "client")
        super().__init__(f"Bluesky {path}: HTTP {status} {error}: {message}", kind=kind, status=status)
        self.error = error


def _error_name(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("error") or ""), str(body.get("message") or "")


# --------------------------------------------------------------------------- service URLs


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_service_url(url: Any, key: str, account: str) -> str:
    """A PLC / PDS / AppView base URL from the config, validated; errors name the key.

    https:// always; plain http:// only for a loopback address (a test or a local server):
    a session token must never cross a network in the clear.
    """
    where = f"[accounts.{account}] {key}"
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{where} must be a URL in double quotes, e.g. \"https://example.com\" (found {url!r})")
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where} = {url!r} is not an http(s) URL; expected e.g. \"https://example.com\"")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"{where} = {url!r}: plain http:// is allowed only for loopback addresses "
                         "(127.0.0.1, ::1, localhost); use https://")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{where} = {url!r} must be a bare base URL (no query, fragment or user:password@)")
    return url


# --------------------------------------------------------------------------- identity


@dataclass
class Identity:
    did: str
    handle: str
    pds_url: str


def resolve_handle(client: ApiClient, service_url: str, handle: str) -> str:
    """handle → DID, through com.atproto.identity.resolveHandle at ``service_url`` (the
    entryway or any PDS), falling back to https://<handle>/.well-known/atproto-did."""
    handle = handle.strip().lstrip("@").lower()
    if handle.startswith("did:"):
        return handle
    problems = []
    try:
        body = xrpc_get(client, service_url, "com.atproto.identity.resolveHandle", {"handle": handle},
                        authenticated=False)
        did = body.get("did") if isinstance(body, dict) else None
        if isinstance(did, str) and did.startswith("did:"):
            return did
        problems.append("resolveHandle gave no DID")
    except NetError as error:
        problems.append(str(error))
    try:
        response = client.request("GET", f"https://{handle}/.well-known/atproto-did", authenticated=False)
        text = response.text.strip()
        if response.status_code == 200 and text.startswith("did:"):
            return text.split()[0]
        problems.append(f"https://{handle}/.well-known/atproto-did: HTTP {response.status_code}")
    except NetError as error:
        problems.append(str(error))
    raise NetError(f"could not resolve the Bluesky handle {handle!r} to a DID: {'; '.join(problems)}. "
                   "Check the handle, or set base_url to your PDS.", kind="client")


def did_document(client: ApiClient, did: str, plc_url: str) -> dict:
    """The DID document: from the PLC directory for did:plc, from the domain's
    /.well-known/did.json for did:web (host names only: paths are not resolved)."""
    if did.startswith("did:plc:"):
        url = f"{plc_url.rstrip('/')}/{did}"
    elif did.startswith("did:web:"):
        host = did[len("did:web:"):].replace("%3A", ":")
        if not host or "/" in host:
            raise NetError(f"unsupported did:web form {did!r}", kind="client")
        scheme = "http" if is_loopback_host(host.rsplit(":", 1)[0]) else "https"
        url = f"{scheme}://{host}/.well-known/did.json"
    else:
        raise NetError(f"unsupported DID method in {did!r} (only did:plc and did:web exist in atproto)",
                       kind="client")
    response = client.request("GET", url, authenticated=False)
    if response.status_code != 200:
        raise NetError(f"the DID document of {did} ({scrubber.url(url)}) answered HTTP {response.status_code}",
                       kind="gone" if response.status_code in (404, 410) else "client",
                       status=response.status_code)
    try:
        document = response.json()
    except ValueError:
        raise NetError(f"the DID document of {did} is not JSON", kind="bad_response") from None
    if not isinstance(document, dict) or document.get("id") != did:
        raise NetError(f"the DID document at {scrubber.url(url)} is not the one of {did}", kind="client")
    return document


def pds_from_document(document: dict) -> str | None:
    for service in document.get("service") or []:
        if not isinstance(service, dict):
            continue
        if str(service.get("id", "")).endswith("#atproto_pds") and isinstance(service.get("serviceEndpoint"), str):
            return service["serviceEndpoint"].rstrip("/")
    return None


def handles_in_document(document: dict) -> list[str]:
    return [aka[len("at://"):].lower() for aka in document.get("alsoKnownAs") or []
            if isinstance(aka, str) and aka.startswith("at://")]


def pds_endpoint(client: ApiClient, did: str, plc_url: str, account: str) -> str:
    """The PDS named by the DID document, checked like a configured URL (https, or http on
    loopback only)."""
    pds = pds_from_document(did_document(client, did, plc_url))
    if not pds:
        raise NetError(f"the DID document of {did} names no #atproto_pds service; set pds_url in "
                       f"[accounts.{account}]", kind="client")
    try:
        return check_service_url(pds, "pds_url (from the DID document)", account)
    except ValueError as error:
        raise NetError(str(error), kind="client") from None


def resolve_identity(client: ApiClient, handle: str, *, entryway: str, plc_url: str,
                     account: str, pds_url: str | None = None) -> Identity:
    """handle → DID → DID document → PDS. A configured ``pds_url`` skips the last step."""
    did = resolve_handle(client, entryway, handle)
    document = did_document(client, did, plc_url)
    if not handle.startswith("did:") and handle.lower().lstrip("@") not in handles_in_document(document):
        # The protocol wants both directions to agree; a mismatch is worth a word, not a stop.
        log.warning("the DID document of %s does not claim the handle %s", did, handle)
    pds = pds_url or pds_from_document(document)
    if not pds:
        raise NetError(f"the DID document of {did} names no PDS; set pds_url in [accounts.{account}]",
                       kind="client")
    if not pds_url:
        try:
            pds = check_service_url(pds, "pds_url (from the DID document)", account)
        except ValueError as error:
            raise NetError(str(error), kind="client") from None
    known = handles_in_document(document)
    return Identity(did=did, handle=known[0] if known else handle, pds_url=pds)


# --------------------------------------------------------------------------- XRPC calls


def xrpc_url(base: str, nsid: str, params: dict | None = None) -> str:
    query = f"?{urlencode(params)}" if params else ""
    return f"{base.rstrip('/')}/xrpc/{nsid}{query}"


def _raise_for_error(response: httpx.Response, nsid: str) -> None:
    if response.status_code < 400:
        return
    error, message = _error_name(response)
    raise BlueskyError(error or f"HTTP{response.status_code}", message, status=response.status_code, path=nsid)


def xrpc_get(client: ApiClient, base: str, nsid: str, params: dict | None = None, *,
             authenticated: bool) -> Any:
    response = client.request("GET", xrpc_url(base, nsid, params), authenticated=authenticated,
                              expect_json=True)
    _raise_for_error(response, nsid)
    return response.json()


def is_auth_error(response: httpx.Response) -> bool:
    """ExpiredToken comes as HTTP 400 (not 401); both it and InvalidToken get one refresh."""
    if response.status_code not in (400, 401):
        return False
    return _error_name(response)[0] in _AUTH_ERRORS


def session_request(client: httpx.Client, url: str, *, json_body: dict | None = None,
                    bearer: str | None = None) -> tuple[int, dict]:
    """POST createSession / refreshSession. Never retried: a refresh token dies at first
    use, and createSession is limited to 30 per 5 minutes."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    try:
        response = client.post(url, json=json_body, headers=headers)
    except httpx.TransportError as error:
        raise NetError(f"Bluesky session endpoint unreachable: {type(error).__name__}", kind="transport") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return response.status_code, body


def create_session(client: httpx.Client, pds_url: str, identifier: str, app_password: str) -> dict:
    """The app password is sent once, here, and forgotten by the caller."""
    scrubber.add(app_password)
    status, body = session_request(client, xrpc_url(pds_url, "com.atproto.server.createSession"),
                                   json_body={"identifier": identifier, "password": app_password})
    if status != 200 or not body.get("accessJwt") or not body.get("refreshJwt"):
        error, message = body.get("error", f"HTTP {status}"), body.get("message", "")
        hint = ""
        if status == 401:
            hint = (" Check the handle and the app password (Settings → Privacy and security → "
                    "App passwords; it looks like xxxx-xxxx-xxxx-xxxx).")
        elif error == "AuthFactorTokenRequired":
            hint = " This account asks for an email code: use an app password, which skips it."
        elif status == 429:
            hint = " Logins are limited to 30 per 5 minutes and 300 a day; wait and try again."
        raise NetError(f"Bluesky refused the login: {error}: {message}.{hint}",
                       kind="rate_limited" if status == 429 else "auth", status=status)
    return body


class BlueskyTokens(StoredTokens):
    """The session (access + refresh token, DID, PDS) in the SecretStore; a net.TokenProvider.

    ``refresh`` is serialized (the spine's ApiClient calls it under its lock, and so does
    this class), and the rotated pair is saved before ``refresh`` returns: a process killed
    right after the refresh finds the live refresh token in the store next time.
    """

    platform, title = "bluesky", "Bluesky"

    def __init__(self, secrets, account: str, client: httpx.Client):
        super().__init__(secrets, account)
        self.client = client

    def store_session(self, body: dict, *, session_url: str) -> dict:
        return self.save({
            "access_token": body["accessJwt"],
            "refresh_token": body["refreshJwt"],
            "did": body.get("did"),
            "handle": body.get("handle"),
            "session_url": session_url,
        })

    @property
    def did(self) -> str | None:
        return self.load().get("did")

    def _refresh_locked(self) -> None:
        # The session's JWTs carry their expiry inside; the record keeps none, so a refresh
        # comes only when the PDS answers ExpiredToken.
        tokens = self.load()
        url = xrpc_url(tokens["session_url"], "com.atproto.server.refreshSession")
        status, body = session_request(self.client, url, bearer=tokens["refresh_token"])
        if status == 200 and body.get("accessJwt") and body.get("refreshJwt"):
            self.store_session(body, session_url=tokens["session_url"])   # durable first
            log.info("refreshed the Bluesky session of %s", self.account)
            return
        error = body.get("error", "")
        if status in (400, 401) and error in ("ExpiredToken", "InvalidToken", "AuthenticationRequired",
                                              "AccountTakedown", "AuthMissing", ""):
            raise NetError(reauth_message(self.account), kind="auth", status=status)
        raise NetError(f"Bluesky session refresh failed: HTTP {status} {error}",
                       kind="rate_limited" if status == 429 else "server", status=status)


class BlueskyApi:
    """The XRPC calls one export run makes. Only PDS calls carry the session token."""

    def __init__(self, *, tokens: BlueskyTokens | None, pds_url: str, appview_url: str,
                 transport=None, sleep=None, cancel=None, pacer: Pacer | None = None,
                 retry: RetryPolicy = RETRY_POLICY):
        self.tokens = tokens
        self.pds_url = pds_url.rstrip("/")
        self.appview_url = appview_url.rstrip("/")
        kwargs = {"sleep": sleep} if sleep else {}
        self.client = ApiClient(tokens=tokens, transport=transport, cancel=cancel, retry=retry,
                                is_auth_error=is_auth_error, pacer=pacer, **kwargs)

    # -- PDS -------------------------------------------------------------------------
    def _pds(self, nsid: str, params: dict) -> Any:
        return xrpc_get(self.client, self.pds_url, nsid, params, authenticated=self.tokens is not None)

    def latest_commit(self, did: str) -> dict:
        """{"cid", "rev"} of the repo's head: one cheap call to tell whether anything changed."""
        return self._pds("com.atproto.sync.getLatestCommit", {"did": did})

    def get_repo(self, did: str, into, *, limits=None, clock=None, cancel=None) -> None:
        """Stream the repository CAR into the binary file ``into`` (repos can be large),
        bounded like any download (``limits``: [downloads] of the config; see
        media.copy_bounded)."""
        from archiver.archive.media import copy_bounded
        from archiver.config import DownloadLimits

        nsid = "com.atproto.sync.getRepo"
        url = xrpc_url(self.pds_url, nsid, {"did": did})
        with self.client.stream("GET", url, authenticated=self.tokens is not None) as response:
            if response.status_code >= 400:
                response.read()
                _raise_for_error(response, nsid)
            copy_bounded(response, into, url=url, what="the repository (CAR)", limits=limits or DownloadLimits(),
                         clock=clock, cancel=cancel)

    def list_blobs(self, did: str) -> Iterator[str]:
        """Every blob CID the PDS holds for the repo. Stops on a missing cursor or an
        empty page (an empty page may still carry a cursor)."""
        cursor = None
        while True:
            params = {"did": did, "limit": BLOB_PAGE_LIMIT}
            if cursor:
                params["cursor"] = cursor
            body = self._pds("com.atproto.sync.listBlobs", params)
            cids = [c for c in body.get("cids") or [] if isinstance(c, str)]
            yield from cids
            cursor = body.get("cursor")
            if not cursor or not cids:
                return

    def blob_url(self, did: str, cid: str) -> str:
        return xrpc_url(self.pds_url, "com.atproto.sync.getBlob", {"did": did, "cid": cid})

    # -- AppView (public: no token) ----------------------------------------------------
    def _appview(self, nsid: str, params: dict) -> Any:
        return xrpc_get(self.client, self.appview_url, nsid, params, authenticated=False)

    def get_profile(self, actor: str) -> dict:
        return self._appview("app.bsky.actor.getProfile", {"actor": actor})

    def _pages(self, nsid: str, actor: str, key: str, extra: dict | None = None) -> Iterator[list[dict]]:
        """Cursor paging for AppView lists. The end is a missing cursor; a cursor on an
        empty page (some servers return one after the last item) ends it too."""
        cursor = None
        seen_cursors: set[str] = set()
        while True:
            items, cursor = self._page(nsid, actor, key, cursor, extra)
            yield items
            if cursor is None or cursor in seen_cursors:
                return
            seen_cursors.add(cursor)

    def _page(self, nsid: str, actor: str, key: str, cursor: str | None,
              extra: dict | None = None) -> tuple[list[dict], str | None]:
        """One page of an AppView list and the cursor of the next (None at the end)."""
        params = {"actor": actor, "limit": PAGE_LIMIT, **(extra or {})}
        if cursor:
            params["cursor"] = cursor
        body = self._appview(nsid, params)
        items = [i for i in body.get(key) or [] if isinstance(i, dict)]
        return items, (body.get("cursor") or None) if items else None

    def followers_page(self, actor: str, cursor: str | None) -> tuple[list[dict], str | None]:
        return self._page("app.bsky.graph.getFollowers", actor, "followers", cursor)

    def follows_page(self, actor: str, cursor: str | None) -> tuple[list[dict], str | None]:
        return self._page("app.bsky.graph.getFollows", actor, "follows", cursor)

    def followers(self, actor: str) -> Iterator[list[dict]]:
        return self._pages("app.bsky.graph.getFollowers", actor, "followers")

    def follows(self, actor: str) -> Iterator[list[dict]]:
        return self._pages("app.bsky.graph.getFollows", actor, "follows")

    def author_feed(self, actor: str) -> Iterator[list[dict]]:
        """The owner's posts (newest first) as feedViewPosts, for their counts."""
        return self._pages("app.bsky.feed.getAuthorFeed", actor, "feed", {"filter": "posts_with_replies"})

    def post_thread(self, uri: str) -> dict | None:
        """The reply tree under ``uri``, or None when the AppView no longer has the post."""
        try:
            body = self._appview("app.bsky.feed.getPostThread", {"uri": uri, "depth": THREAD_DEPTH,
                                                                 "parentHeight": 0})
        except BlueskyError as error:
            if error.error == "NotFound" or error.status == 404:
                return None
            raise
        return body.get("thread") if isinstance(body, dict) else None

    def close(self) -> None:
        self.client.close()
        if self.tokens is not None:
            self.tokens.client.close()


# --------------------------------------------------------------------------- mapping


def profile_url(handle_or_did: str) -> str:
    return f"https://bsky.app/profile/{handle_or_did}"


def post_web_url(uri: str, handle: str | None = None) -> str | None:
    """at://did/app.bsky.feed.post/rkey -> https://bsky.app/profile/<handle or did>/post/rkey"""
    parts = uri[len("at://"):].split("/") if uri.startswith("at://") else []
    if len(parts) != 3 or parts[1] != "app.bsky.feed.post":
        return None
    return f"https://bsky.app/profile/{handle or parts[0]}/post/{parts[2]}"


def person_from_view(view: dict) -> Person:
    """profileView / profileViewBasic -> Person keyed by DID (handles change, DIDs do not)."""
    handle = view.get("handle")
    return Person(
        native_id=view["did"],
        handle=handle if handle and handle != "handle.invalid" else None,
        display_name=view.get("displayName") or None,
        url=profile_url(handle if handle and handle != "handle.invalid" else view["did"]),
        avatar_url=view.get("avatar"),
        # The bio (profile views that carry it) and the web links in it: how `archiver
        # audience links` finds the same person on other platforms.
        bio=view.get("description") or None,
        links=re.findall(r"https?://[^\s)\]>\"']+", view.get("description") or ""),
        raw={k: v for k, v in view.items() if k not in ("viewer",)},
    )


def avatar_of_view(view: dict) -> MediaRef | None:
    """A profile view's ``avatar`` (a CDN link to a resized copy, so no CID check) as a
    MediaRef, or None when the person has none."""
    url = view.get("avatar")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None
    return MediaRef(url, "avatar")


def membership_from_view(view: dict, since: str | None = None) -> Membership:
    return Membership(person_from_view(view), since=since)


def replies_in_thread(thread: dict) -> tuple[list[dict], bool]:
    """Every reply in a threadViewPost tree as ``{"view": postView, "parent": the URI it
    hangs under in the tree}``, and whether the tree is whole: False when something under
    a reply is not shown (its ``replies`` absent at the depth limit while its replyCount
    says it has some, or a notFound / blocked entry, under which nothing is shown)."""
    found: list[dict] = []
    whole = True

    def walk(node: dict, parent_uri: str) -> None:
        nonlocal whole
        children = node.get("replies")
        if not isinstance(children, list):
            if ((node.get("post") or {}).get("replyCount") or 0) > 0:
                whole = False      # cut off by the depth limit
            return
        for child in children:
            post = child.get("post") if isinstance(child, dict) else None
            if not isinstance(post, dict) or child.get("notFound") or child.get("blocked"):
                whole = False      # notFoundPost / blockedPost: nothing to keep, nothing under it shown
                continue
            found.append({"view": post, "parent": parent_uri})
            walk(child, post.get("uri") or parent_uri)

    if isinstance(thread, dict) and isinstance(thread.get("post"), dict):
        walk(thread, thread["post"].get("uri"))
    else:
        whole = False
    return found, whole


def comment_from_post_view(post: dict, *, owner_did: str, root_uri: str, tree_parent: str) -> Comment:
    found = post.get("record")
    record = found if isinstance(found, dict) else {}
    author = post["author"]
    parent = ((record.get("reply") or {}).get("parent") or {}).get("uri") or tree_parent
    person = person_from_view(author)
    # A reply author's picture is kept as a file (the AppView's CDN link); a follower
    # list's members keep only the link.
    person.avatar = avatar_of_view(author)
    return Comment(
        native_id=post["uri"],
        text=str(record.get("text") or ""),
        created_at=_iso(record.get("createdAt")) or _iso(post.get("indexedAt")),
        post_native_id=root_uri,
        author=person,
        by_owner=author.get("did") == owner_did,
        parent_native_id=parent,
        url=post_web_url(post["uri"], author.get("handle")),
        raw={k: v for k, v in post.items() if k != "viewer"},
    )


def _iso(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return iso_utc(value)
    except ValueError:
        return None


def sha256_of_blob_cid(cid: str) -> str | None:
    """The sha256 (hex) a blob CID names: CIDv1, base32 ("b…"), any codec, sha2-256
    multihash. None for other forms (the download is then stored without the check)."""
    if not isinstance(cid, str) or not cid.startswith("b"):
        return None
    text = cid[1:].upper()
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (ValueError, TypeError):
        return None
    if len(raw) < 4 or raw[0] != 0x01:
        return None
    # version (1), codec (varint: raw 0x55 or dag-cbor 0x71, one byte), then the multihash.
    rest = raw[2:] if raw[1] < 0x80 else raw[3:]
    if len(rest) != 34 or rest[0] != 0x12 or rest[1] != 0x20:
        return None
    return rest[2:].hex()
