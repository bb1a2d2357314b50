"""Pinterest API v5: the OAuth tokens (HTTP Basic client auth, a refresh token replaced on
every refresh), the API client under the daily request budget, and the payload -> record
mapping (notes: shared/platforms/pinterest.md)."""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable, TypeGuard
from urllib.parse import urlencode, urlsplit

import httpx

from archiver.net.budget import BudgetedTransport, BudgetSpent, DailyBudget
from archiver.net.client import ApiClient, NetError, parse_retry_after, scrubber
from archiver.net.oauth import token_request
from archiver.net.tokens import OAuth2Tokens
from archiver.records import Collection, MediaRef, Membership, Person, Post, Profile, iso_utc, visibility

log = logging.getLogger("archiver.pinterest")

API_BASE_URL = "https://api.pinterest.com"
AUTHORIZE_BASE_URL = "https://www.pinterest.com"
API_PREFIX = "/v5/"
TOKEN_PATH = "/v5/oauth/token"
# What a backup reads (notes §1.1): the profile and the lists, boards and Pins, secret ones too.
SCOPES = ("user_accounts:read", "boards:read", "boards:read_secret", "pins:read", "pins:read_secret")
DEFAULT_DAILY_REQUESTS = 1000   # Trial access (notes §0)
PAGE_SIZE = 250                 # the largest page_size (notes §3): fewest requests
ACCESS_TTL = 30 * 86400         # what an answer without expires_in is taken to mean [U]
REFRESH_AHEAD = 7 * 86400       # renew a refresh token this close to its end, whatever the access token
# A 429 whose Retry-After (or x-ratelimit-reset) is at most this many seconds away is a
# throttle to wait out (Standard access's per-minute limits); any other is the day's end.
SHORT_THROTTLE_SECONDS = 120
# Visibility: a Pin is as visible as its board (a Pin has no privacy of its own).
VISIBILITY_WORDS = {"PUBLIC": "public", "SECRET": "private", "PROTECTED": "private"}
# The scopes each endpoint needs (notes §2), to name the missing one in a 403's message.
NEEDED_SCOPES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"/v5/user_account(/.*)?"), ("user_accounts:read",)),
    (re.compile(r"/v5/boards/[^/]+/(sections/[^/]+/)?pins"), ("boards:read", "pins:read")),
    (re.compile(r"/v5/boards(/.*)?"), ("boards:read",)),
    (re.compile(r"/v5/pins(/.*)?"), ("boards:read", "pins:read")),
)
PINIMG_PATH = re.compile(r"/(?P<size>[0-9]+x[0-9]*|originals)/(?P<rest>[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{2}/"
                         r"[0-9a-f]{32}\.[a-z0-9]+)")


def wall_clock() -> float:
    """The time tokens and the budget's day are judged by (tests replace it)."""
    return time.time()


def reauth_message(account: str, detail: str = "") -> str:
    return (f"Pinterest refused the stored authorization for account {account!r}"
            f"{f' ({detail})' if detail else ''}. Run `archiver auth pinterest --account {account}` again "
            "(a refresh token unused for 60 days expires, and removing the app in Pinterest's settings "
            "revokes it).")


# --------------------------------------------------------------------------- tokens


class _BasicAuthPoster:
    """The token endpoint's client with the app's id and secret as HTTP Basic auth (notes
    §1.2): Pinterest refuses them in the form. ``token_request`` only calls ``post``."""

    def __init__(self, client: httpx.Client, client_id: str, client_secret: str):
        self.client, self.auth = client, httpx.BasicAuth(client_id, client_secret)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(url, auth=self.auth, **kwargs)


class PinterestTokens(OAuth2Tokens):
    """Pinterest access and refresh tokens through the SecretStore (a net.TokenProvider).

    Every refresh answer holds a new refresh token (continuous refresh: 60 days, renewed
    each time, notes §1.3), which the core stores before the new access token is used.
    ``refresh_expires_at`` is when the held refresh token dies unused.
    """

    platform, title = "pinterest", "Pinterest"
    server = "Pinterest"
    default_expires_in = ACCESS_TTL
    refusal_without_json = "auth"   # an HTML error page from the token endpoint

    def now(self) -> float:
        return wall_clock()

    def refresh_due(self) -> bool:
        """Also when the refresh token nears its end (60 days unused): an account run now
        and then never loses its authorization to an access token that lives longer [U]."""
        held = self.load()
        ends = held.get("refresh_expires_at")
        if held.get("refresh_token") and isinstance(ends, (int, float)) and ends - self.now() < REFRESH_AHEAD:
            return True
        return super().refresh_due()

    def record(self, answer: dict[str, Any], previous: dict[str, Any], now: float) -> dict[str, Any]:
        record = super().record(answer, previous, now)
        if answer.get("refresh_token"):
            ends = answer.get("refresh_token_expires_at")
            if not isinstance(ends, (int, float)) and isinstance(answer.get("refresh_token_expires_in"), (int, float)):
                ends = now + answer["refresh_token_expires_in"]
            record["refresh_expires_at"] = ends if isinstance(ends, (int, float)) else None
        else:
            record["refresh_expires_at"] = previous.get("refresh_expires_at")
        return record

    def request(self, form: dict[str, str]) -> dict[str, Any]:
        """POST the token endpoint as Pinterest wants it: the app's id and secret as Basic
        auth, the grant in a form (no PKCE verifier: Pinterest documents none), and
        ``continuous_refresh=true`` on a refresh (older apps need it, newer ones accept it).
        Pinterest's ``{"code", "message"}`` refusal becomes an OAuth error for the caller."""
        form = dict(form)
        client_id, client_secret = form.pop(self.client_id_key, None), form.pop("client_secret", None)
        form.pop("code_verifier", None)
        if client_id is None or client_secret is None:
            client_id, client_secret = self.client_credentials()
        scrubber.add(client_secret)
        if form.get("grant_type") == "refresh_token":
            form["continuous_refresh"] = "true"
        answer = token_request(_BasicAuthPoster(self.client, client_id, client_secret), self.token_url, form,
                               server=self.server, refusal_without_json=self.refusal_without_json)
        if "access_token" not in answer and "error" not in answer:
            # Bad client credentials, a used or expired code, a dead refresh token: all
            # {"code": 2, "message": "Authentication failed."} (notes §5).
            answer = {"error": "invalid_grant",
                      "error_description": f"{answer.get('message') or 'refused'} (code {answer.get('code')})"}
        return answer

    def reauth_message(self, detail: str = "") -> str:
        return reauth_message(self.account, detail)

    def credentials_hint(self, key: str) -> str:
        return (f"run `archiver auth pinterest --account {self.account}` to enter your Pinterest app's "
                f"{'app id' if key == 'client_id' else 'app secret key'}")


def authorize_url(base: str, *, client_id: str, redirect_uri: str, state: str, scopes: tuple[str, ...] = SCOPES) -> str:
    return f"{base}/oauth/?" + urlencode({"client_id": client_id, "redirect_uri": redirect_uri,
                                         "response_type": "code", "scope": ",".join(scopes), "state": state})


# --------------------------------------------------------------------------- the API


class PinterestError(NetError):
    """Pinterest's error body ``{"code", "message"}`` (notes §5), with the path and status."""

    def __init__(self, message: str, *, kind: str, status: int, code: Any = None, path: str = ""):
        super().__init__(message, kind=kind, status=status)
        self.code, self.path = code, path


def needed_scopes(path: str) -> tuple[str, ...]:
    for pattern, scopes in NEEDED_SCOPES:
        if pattern.fullmatch(path):
            return scopes
    return ()


def api_cost(request: httpx.Request) -> int:
    """A request's charge to the daily budget: every call under /v5 (a token refresh too:
    better to over-count), nothing for a file from the CDN."""
    return 1 if request.url.path.startswith(API_PREFIX) else 0


class _DayLimitTransport(httpx.BaseTransport):
    """Watches for 429: a short throttle (a near Retry-After) goes back to the ApiClient,
    which waits and retries; any other 429 means the app's requests for the day are spent
    (Trial access): the budget is marked used up and the run stops (BudgetSpent)."""

    def __init__(self, inner: httpx.BaseTransport, budget: DailyBudget | None):
        self.inner, self.budget = inner, budget

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if response.status_code != 429 or self.budget is None or not request.url.path.startswith(API_PREFIX):
            return response
        wait = parse_retry_after(response.headers.get("Retry-After"))
        reset = response.headers.get("x-ratelimit-reset")
        if wait is None and reset and reset.isdigit() and int(reset) < 10**9:
            wait = float(reset)   # seconds to wait, when it is a small number [U]
        if wait is not None and wait <= SHORT_THROTTLE_SECONDS:
            return response
        response.close()
        self.budget.exhaust()
        raise BudgetSpent("Pinterest answered 429 (too many requests): the app's requests for today are used up",
                          by_platform=True)

    def close(self) -> None:
        self.inner.close()


class PinterestApi:
    """The v5 calls archiver makes; each is charged to ``budget`` before it leaves (None:
    no daily limit, Standard access)."""

    def __init__(self, base_url: str, tokens: PinterestTokens, budget: DailyBudget | None, *,
                 transport: httpx.BaseTransport | None = None, sleep=None, cancel=None, page_size: int = PAGE_SIZE):
        self.tokens, self.budget, self.page_size = tokens, budget, page_size
        self._bookmarks: dict[str, set[str]] = {}   # per list: the bookmarks its walk was given
        inner: httpx.BaseTransport = _DayLimitTransport(transport if transport is not None else httpx.HTTPTransport(),
                                                        budget)
        if budget is not None:
            inner = BudgetedTransport(inner, budget, api_cost)
        kwargs = {"sleep": sleep} if sleep else {}
        self.client = ApiClient(base_url, tokens=tokens, transport=inner, cancel=cancel, **kwargs)

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict:
        try:
            response = self.client.request("GET", path, params=params, expect_json=True)
        except NetError as error:
            if error.kind == "auth" and not isinstance(error, PinterestError) and "archiver auth" not in str(error):
                # The token was refused again after a refresh: the grant is gone.
                raise NetError(self.tokens.reauth_message(f"GET {path} answered HTTP {error.status}"),
                               kind="auth", status=error.status) from None
            raise
        try:
            body = response.json()
        except ValueError:
            raise PinterestError(f"Pinterest GET {path}: HTTP {response.status_code} without JSON",
                                 kind="gone" if response.status_code in (404, 410) else "bad_response",
                                 status=response.status_code, path=path) from None
        if response.status_code >= 400:
            raise self._error(path, response.status_code, body)
        if not isinstance(body, dict):
            raise PinterestError(f"Pinterest GET {path}: unexpected answer", kind="bad_response",
                                 status=response.status_code, path=path)
        return body

    def _error(self, path: str, status: int, body: Any) -> PinterestError:
        body = body if isinstance(body, dict) else {}
        code, message = body.get("code"), str(body.get("message") or "")
        said = f"Pinterest GET {path}: HTTP {status} (code {code}: {message})"
        if status == 403:
            granted = set(str(self.tokens.load().get("scope") or "").replace(" ", ",").split(","))
            missing = [scope for scope in needed_scopes(path) if scope not in granted]
            needs = ", ".join(missing or needed_scopes(path)) or "a scope it needs"
            return PinterestError(f"{said}: the authorization lacks the scope {needs}. Run `archiver auth pinterest "
                                  f"--account {self.tokens.account}` again and allow it.", kind="auth",
                                  status=status, code=code, path=path)
        kind = "gone" if status in (404, 410) else "client"
        return PinterestError(said, kind=kind, status=status, code=code, path=path)

    def page(self, path: str, bookmark: str | None, **params: Any) -> tuple[list, str | None]:
        """One page of a list: its items and the bookmark of the next (None: the last)."""
        query = {"page_size": self.page_size, **params}
        if bookmark:
            query["bookmark"] = bookmark
        body = self.get(path, query)
        items = body.get("items")
        next_bookmark = body.get("bookmark") if isinstance(body.get("bookmark"), str) and body["bookmark"] else None
        # A bookmark handed out again would walk in a circle (and spend the day's requests):
        # the walk fails instead, never ending as if the list were whole.
        seen = self._bookmarks.setdefault(path, set())
        if bookmark is None:
            seen.clear()
        if next_bookmark is not None and (next_bookmark == bookmark or next_bookmark in seen):
            raise PinterestError(f"Pinterest GET {path} gave a bookmark it had given before: the list goes in a "
                                 "circle; stopped reading it", kind="bad_response", status=200,
                                 path=path)
        if next_bookmark is not None:
            seen.add(next_bookmark)
        return ([item for item in items if isinstance(item, dict)] if isinstance(items, list) else [], next_bookmark)

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------- mapping


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def person_url(username: str) -> str:
    return f"https://www.pinterest.com/{username}/"


def profile_from_account(account: dict) -> Profile:
    username = account.get("username")
    picture = account.get("profile_image")
    return Profile(
        native_id=str(account["id"]) if account.get("id") is not None else None,
        username=username,
        display_name=account.get("business_name") or None,
        bio=account.get("about") or None,
        url=person_url(username) if username else None,
        avatar=MediaRef(picture, "avatar") if _is_web_link(picture) else None,
        followers=_count(account.get("follower_count")),
        following=_count(account.get("following_count")),
        posts=_count(account.get("pin_count")),
        raw=account,
    )


def collection_from_board(board: dict) -> Collection:
    cover = (board.get("media") or {}).get("image_cover_url") if isinstance(board.get("media"), dict) else None
    return Collection(
        native_id=str(board["id"]),
        title=board.get("name"),
        kind="board",
        description=board.get("description") or None,
        visibility=visibility(board.get("privacy"), VISIBILITY_WORDS),
        created_at=iso_utc(board.get("created_at")),
        post_count=_count(board.get("pin_count")),
        follower_count=_count(board.get("follower_count")),
        cover=MediaRef(cover, "cover") if _is_web_link(cover) else None,
        raw=board,
    )


def collection_from_section(section: dict, board: dict) -> Collection:
    return Collection(
        native_id=str(section["id"]),
        title=section.get("name"),
        kind="section",
        parent_native_id=str(board["id"]),
        visibility=visibility(board.get("privacy"), VISIBILITY_WORDS),
        raw=section,
    )


def membership_of(item: dict) -> Membership | None:
    """A follower or followed account: only its username is given (notes §2)."""
    username = item.get("username")
    if not isinstance(username, str) or not username:
        return None
    return Membership(Person(native_id=username, handle=username, url=person_url(username), raw=item))


def _is_web_link(value: Any) -> TypeGuard[str]:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _largest(images: Any) -> dict | None:
    """The biggest of an ImageSize map (``{"150x150": {url, width, height}, …}``)."""
    if not isinstance(images, dict):
        return None
    sized = [value for value in images.values() if isinstance(value, dict) and _is_web_link(value.get("url"))]
    return max(sized, key=lambda v: (_count(v.get("width")) or 0) * (_count(v.get("height")) or 1), default=None)


def original_of(url: str) -> str | None:
    """The full-resolution file beside a sized pinimg link (``/1200x/…`` -> ``/originals/…``)
    [U: not in v5's ImageSize; third-party tools use it], or None for another kind of link."""
    parts = urlsplit(url)
    match = PINIMG_PATH.fullmatch(parts.path)
    if match is None or match["size"] == "originals":
        return None
    return parts._replace(path=f"/originals/{match['rest']}", query="").geturl()


def image_ref(images: Any, role: str, position: int, *, alt_text: str | None, originals: bool) -> MediaRef | None:
    """The largest image: its ``originals/`` file when asked for, falling back to the
    largest size the API lists when the CDN refuses it (403: not there)."""
    best = _largest(images)
    if best is None:
        return None
    url = best["url"]
    meta = {k: best[k] for k in ("width", "height") if _count(best.get(k)) is not None}
    original = original_of(url) if originals else None
    if original:
        return MediaRef(original, role, position, description=alt_text, meta=meta or None, refresh=lambda: url)
    return MediaRef(url, role, position, description=alt_text, meta=meta or None)


def pin_media(pin: dict, *, originals: bool = True) -> tuple[str, list[MediaRef], dict]:
    """(kind, files, sizes) of a Pin's ``media`` (notes §2.1: image, video, carousels)."""
    media: dict = pin["media"] if isinstance(pin.get("media"), dict) else {}
    media_type = str(media.get("media_type") or "")
    alt = pin.get("alt_text") or None
    refs: list[MediaRef] = []
    sizes: dict = {}
    if media_type == "video":
        if _is_web_link(media.get("video_url")):
            refs.append(MediaRef(media["video_url"], "video", 0, description=alt, mime_hint="video/mp4"))
        cover = image_ref(media.get("images"), "cover", 0, alt_text=None, originals=originals)
        if cover is None and _is_web_link(media.get("cover_image_url")):
            cover = MediaRef(media["cover_image_url"], "cover", 0)
        if cover is not None:
            refs.append(cover)
        sizes = {"width": _count(media.get("width")), "height": _count(media.get("height")),
                 "duration": round(media["duration"]) if isinstance(media.get("duration"), (int, float)) else None}
        return "video", refs, sizes
    if media_type.startswith("multiple_"):
        for position, item in enumerate(i for i in media.get("items") or [] if isinstance(i, dict)):
            if _is_web_link(item.get("video_url")):
                refs.append(MediaRef(item["video_url"], "video", position, mime_hint="video/mp4"))
                continue
            ref = image_ref(item.get("images"), "image", position, alt_text=alt if position == 0 else None,
                            originals=originals)
            if ref is not None:
                refs.append(ref)
        return "carousel", refs, sizes
    ref = image_ref(media.get("images"), "image", 0, alt_text=alt, originals=originals)
    if ref is not None:
        refs.append(ref)
        sizes = dict(ref.meta or {})
    return "image", refs, sizes


def post_from_pin(pin: dict, board_privacy: Callable[[str], str | None], *, originals: bool = True) -> Post:
    """A Pin -> Post. ``board_privacy(board_id)``: the board's PUBLIC / SECRET / PROTECTED."""
    kind, media, sizes = pin_media(pin, originals=originals)
    metrics: dict = pin["pin_metrics"] if isinstance(pin.get("pin_metrics"), dict) else {}
    lifetime: dict = metrics["lifetime_metrics"] if isinstance(metrics.get("lifetime_metrics"), dict) else {}
    board_id = str(pin["board_id"]) if pin.get("board_id") else None
    section_id = str(pin["board_section_id"]) if pin.get("board_section_id") else None
    return Post(
        native_id=str(pin["id"]),
        created_at=iso_utc(pin.get("created_at")),
        kind=kind,
        title=pin.get("title") or None,
        text=pin.get("description") or None,
        url=f"https://www.pinterest.com/pin/{pin['id']}/",
        link=pin.get("link") if _is_web_link(pin.get("link")) else None,
        duration=sizes.get("duration"),
        width=sizes.get("width"),
        height=sizes.get("height"),
        visibility=visibility(board_privacy(board_id), VISIBILITY_WORDS) if board_id else None,
        # Counts only where Pinterest gives them (pin_metrics; lifetime ones not for every Pin).
        like_count=_count(lifetime.get("reaction")),
        comment_count=_count(lifetime.get("comment")),
        view_count=_count(lifetime.get("impression")),
        collections=[c for c in (board_id, section_id) if c],
        media=media,
        raw=pin,
    )
