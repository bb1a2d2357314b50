"""X API v2, pay per use (notes: shared/platforms/x-twitter.md, section A #15–17 and §4, and
the appendix's §4): the OAuth 2.0 tokens (PKCE, a 2-hour access token renewed with the
refresh token ``offline.access`` brings), the API client and its errors, the price of each
request, and the payload -> record mapping.

Prices, in micro-dollars (the core's RunBudget counts millionths; notes A #15): a post
returned $0.005, a user returned $0.010 (the profile, a follower or a followed account). X
charges what an answer holds, not the request: a run reserves a request's worst case
(``max_results`` × price) before it leaves and is charged what came back.
"""

from __future__ import annotations

import html
import logging
import re
import time
from typing import Any, Iterable, TypeGuard
from urllib.parse import urlencode, urlsplit

import httpx

from archiver.net.budget import BudgetSpent
from archiver.net.client import ApiClient, NetError, Pacer, parse_retry_after, scrubber
from archiver.net.oauth import token_request
from archiver.net.tokens import OAuth2Tokens
from archiver.records import MediaRef, Membership, Person, Post, Profile, iso_utc

log = logging.getLogger("archiver.x")

API_BASE_URL = "https://api.x.com"
# Where the person approves the app: x.com [unconfirmed host], older docs twitter.com (notes
# §4). The connector offers both, the first as the address to open.
AUTHORIZE_URLS = ("https://x.com/i/oauth2/authorize", "https://twitter.com/i/oauth2/authorize")
AUTHORIZE_PATH = "/i/oauth2/authorize"
TOKEN_PATH = "/2/oauth2/token"
SCOPES = ("tweet.read", "users.read", "follows.read", "offline.access")
ACCESS_TTL = 2 * 3600               # an access token lives 2 hours (notes §4)

PRICE_POST = 5_000                  # $0.005 a post returned
PRICE_USER = 10_000                 # $0.010 a user returned (users/me, followers, following)
TIMELINE_WINDOW = 3_200             # /users/:id/tweets reaches the 3,200 most recent posts only
POSTS_PAGE_MAX, POSTS_PAGE_MIN = 100, 5
FOLLOWS_PAGE_MAX, FOLLOWS_PAGE_MIN = 1_000, 1
# A 429 whose window resets within this many seconds is waited out (X's windows are 15
# minutes); a later reset ends the run, which the next one goes on from.
LONGEST_WAIT = 15 * 60

TWEET_FIELDS = ("attachments,author_id,conversation_id,created_at,edit_history_tweet_ids,entities,"
                "in_reply_to_user_id,lang,note_tweet,possibly_sensitive,public_metrics,referenced_tweets,withheld")
MEDIA_FIELDS = "alt_text,duration_ms,height,media_key,preview_image_url,type,url,variants,width"
USER_FIELDS = "created_at,description,entities,location,profile_image_url,protected,public_metrics,url,username"
SNOWFLAKE_EPOCH = 1288834974.657   # X's ids count milliseconds from here
STATUS_LINK = re.compile(r"https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/(\w+)/status/(\d+)")
SELF_HOSTS = ("x.com", "twitter.com", "www.x.com", "www.twitter.com", "mobile.twitter.com", "mobile.x.com")


def wall_clock() -> float:
    """The time tokens and rate-limit resets are judged by (tests replace it)."""
    return time.time()


def reauth_message(account: str, detail: str = "") -> str:
    return (f"X refused the stored authorization for account {account!r}"
            f"{f' ({detail})' if detail else ''}. Run `archiver auth x --account {account}` again "
            "(a refresh token dies when the app is removed in X's settings, or after long disuse).")


# --------------------------------------------------------------------------- tokens


class _BasicAuthPoster:
    """A confidential client's token requests: the app's id and secret as HTTP Basic auth
    (X's rule for confidential clients); ``token_request`` only calls ``post``."""

    def __init__(self, client: httpx.Client, client_id: str, client_secret: str):
        self.client, self.auth = client, httpx.BasicAuth(client_id, client_secret)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(url, auth=self.auth, **kwargs)


class XTokens(OAuth2Tokens):
    """X's access and refresh tokens through the SecretStore (a net.TokenProvider).

    A public client (an app without a secret) sends its client id in the form; a
    confidential one authenticates with HTTP Basic. A refresh answer may carry a new refresh
    token (rotation: stored before use, by the core) or not (the old one is kept)."""

    platform, title = "x", "X"
    server = "X"
    default_expires_in = ACCESS_TTL
    # X answers a refresh token it no longer honours (the app removed, the grant revoked)
    # with invalid_request: the form archiver builds is never otherwise malformed.
    grant_gone_errors = OAuth2Tokens.grant_gone_errors | {"invalid_request"}

    def now(self) -> float:
        return wall_clock()

    def client_credentials(self) -> tuple[str, str]:
        client_id = self.secrets.require("x", self.account, "client_id", hint=self.credentials_hint("client_id"))
        client_secret = self.secrets.get("x", self.account, "client_secret") or ""
        scrubber.add(client_secret)
        return client_id, client_secret

    def request(self, form: dict[str, str]) -> dict[str, Any]:
        form = dict(form)
        client_secret = form.pop("client_secret", None)
        if client_secret is None:
            _, client_secret = self.client_credentials()
        poster: Any = self.client
        if client_secret:
            poster = _BasicAuthPoster(self.client, form["client_id"], client_secret)
        answer = token_request(poster, self.token_url, form, server=self.server, refusal_without_json="auth")
        if "access_token" not in answer and "error" not in answer:
            # A problem-details refusal ({"title", "detail", "status"}) rather than OAuth's.
            answer = {"error": "invalid_request" if answer.get("status") == 400 else "invalid_client",
                      "error_description": str(answer.get("detail") or answer.get("title") or "refused")}
        return answer

    def reauth_message(self, detail: str = "") -> str:
        return reauth_message(self.account, detail)

    def credentials_hint(self, key: str) -> str:
        return (f"run `archiver auth x --account {self.account}` to enter your X app's "
                f"{'client id' if key == 'client_id' else 'client secret'}")


def authorize_url(base: str, *, client_id: str, redirect_uri: str, state: str, challenge: str,
                  scopes: tuple[str, ...] = SCOPES) -> str:
    """The consent page's address (``base``: one of AUTHORIZE_URLS, or a simulator's)."""
    return f"{base}?" + urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                                   "scope": " ".join(scopes), "state": state, "code_challenge": challenge,
                                   "code_challenge_method": "S256"})


# --------------------------------------------------------------------------- errors


class XError(NetError):
    """An X API refusal (problem details: ``title``, ``type``, ``detail``), with the path."""

    def __init__(self, message: str, *, kind: str, status: int, title: str = "", problem: str = "", path: str = ""):
        super().__init__(message, kind=kind, status=status)
        self.title, self.problem, self.path = title, problem, path


class PlatformStop(BudgetSpent):
    """X itself will not answer more for now: the account's credits are used up (402, or a
    403 saying so), the monthly post cap is reached, or a rate limit resets too far ahead.
    The run stops cleanly, keeping what it has; ``advice`` says what to do."""

    def __init__(self, message: str, *, advice: str, status: int):
        super().__init__(message, by_platform=True)
        self.advice, self.status = advice, status


CREDIT_WORDS = re.compile(r"credit|payment|billing|spend", re.IGNORECASE)
CAP_WORDS = re.compile(r"usage.?cap|product cap|monthly", re.IGNORECASE)


def _problem(body: Any) -> tuple[str, str, str]:
    """(title, type, detail) of an error body: problem details, or the v1.1-style
    ``{"errors": [{"code", "message"}]}`` X still sends on some 429s (notes §4)."""
    if not isinstance(body, dict):
        return "", "", ""
    title, kind, detail = (str(body.get(key) or "") for key in ("title", "type", "detail"))
    if not (title or detail) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0] if isinstance(body["errors"][0], dict) else {}
        title, detail = str(first.get("title") or first.get("code") or ""), str(first.get("message") or "")
    return title, kind, detail


def _credits_exhausted(status: int, body: Any) -> bool:
    """402, or a 403 whose words are about credits: X's answer when the account's prepaid
    credits are spent [U: which status, which body; both are read]."""
    if status == 402:
        return True
    return status == 403 and bool(CREDIT_WORDS.search(" ".join(_problem(body))))


def _monthly_cap(body: Any) -> bool:
    title, kind, detail = _problem(body)
    return bool(CAP_WORDS.search(f"{title} {kind} {detail}")) or kind.endswith("/usage-capped")


class _LimitsTransport(httpx.BaseTransport):
    """Turns X's limits into what the ApiClient and the run understand, before the client
    retries anything:

    * 429 of a rate window: X sends no Retry-After, only ``x-rate-limit-reset`` (unix seconds,
      notes A #17; a Retry-After is honoured when present). A reset within LONGEST_WAIT
      becomes a Retry-After the client waits out; a later one stops the run.
    * 429 of the monthly post cap, 402/403 credits exhausted: the run stops (PlatformStop).
    """

    def __init__(self, inner: httpx.BaseTransport):
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        status = response.status_code
        if status not in (402, 403, 429) or not request.url.path.startswith("/2/") \
                or request.url.path == TOKEN_PATH:
            return response
        response.read()
        try:
            body = response.json()
        except ValueError:
            body = None
        if _credits_exhausted(status, body):
            response.close()
            raise PlatformStop(f"X answered {status}: the account's API credits are used up",
                               advice="Buy credits in the X developer console (console.x.com); the next run "
                                      "goes on from where this one stopped.", status=status)
        if status != 429:
            return response
        if _monthly_cap(body):
            response.close()
            raise PlatformStop("X answered 429: the monthly cap on posts read through the API is reached",
                               advice="The cap resets with the next month; the next run after that goes on.",
                               status=status)
        wait = parse_retry_after(response.headers.get("Retry-After"), now=wall_clock())
        if wait is None:
            reset = response.headers.get("x-rate-limit-reset", "")
            wait = max(0.0, int(reset) - wall_clock()) if reset.strip().isdigit() else None
        if wait is None or wait > LONGEST_WAIT:
            response.close()
            when = f"in {round(wait / 60)} minutes" if wait is not None else "at a time X did not say"
            raise PlatformStop(f"X answered 429 (too many requests) on {request.url.path}; its window resets {when}",
                               advice="The next run goes on from where this one stopped.", status=status)
        # The wait travels as Retry-After alone: the pacer, seeing "none left" too, would
        # wait the window out a second time.
        headers = [(k, v) for k, v in response.headers.items()
                   if k.lower() != "retry-after" and not k.lower().startswith("x-rate-limit-")]
        return httpx.Response(429, headers=[*headers, ("Retry-After", str(int(wait) + 1))],
                              content=response.content, request=request)

    def close(self) -> None:
        self.inner.close()


class XApi:
    """The v2 calls archiver makes, through the shared ApiClient (retries, the token
    refreshed once on a 401, pacing by X's ``x-rate-limit-*`` headers)."""

    def __init__(self, base_url: str, tokens: XTokens, *, transport: httpx.BaseTransport | None = None,
                 sleep=None, cancel=None):
        self.tokens = tokens
        inner = _LimitsTransport(transport if transport is not None else httpx.HTTPTransport())
        kwargs = {"sleep": sleep} if sleep else {}
        self.client = ApiClient(base_url, tokens=tokens, transport=inner, cancel=cancel,
                                pacer=Pacer(max_wait=LONGEST_WAIT, wall_clock=lambda: wall_clock()), **kwargs)

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict:
        try:
            response = self.client.request("GET", path, params=params)
        except NetError as error:
            if error.kind == "auth" and "archiver auth" not in str(error):
                # Refused again after a refresh: the grant is gone.
                raise NetError(self.tokens.reauth_message(f"GET {path} answered HTTP {error.status}"),
                               kind="auth", status=error.status) from None
            raise
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            if status >= 400:
                raise XError(f"X GET {path}: HTTP {status}", kind="gone" if status in (404, 410) else "client",
                             status=status, path=path) from None
            raise XError(f"X GET {path}: HTTP {status} with a body that is not JSON", kind="bad_response",
                         status=status, path=path) from None
        if status >= 400:
            title, problem, detail = _problem(body)
            said = f"X GET {path}: HTTP {status} ({title or 'error'}{f': {detail}' if detail else ''})"
            kind = "gone" if status in (404, 410) else "client"
            if status == 403:
                said += (" — the app may lack access to this endpoint: check the app's project and its "
                         "permissions in the X developer console")
            raise XError(said, kind=kind, status=status, title=title, problem=problem, path=path)
        if not isinstance(body, dict):
            raise XError(f"X GET {path}: unexpected answer", kind="bad_response", status=status, path=path)
        return body

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------- mapping


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_web_link(value: Any) -> TypeGuard[str]:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def is_own_host(url: str) -> bool:
    """A link to X itself (x.com or twitter.com, either generation)."""
    host = (urlsplit(url).hostname or "").lower()
    return host in SELF_HOSTS


def person_url(handle: str) -> str:
    return f"https://x.com/{handle}"


def expand_links(text: str, urls: Iterable[dict]) -> str:
    """``text`` with each t.co link replaced by the address it stands for."""
    for entity in urls:
        tco, expanded = entity.get("url"), entity.get("expanded_url")
        if isinstance(tco, str) and tco and isinstance(expanded, str) and expanded:
            text = text.replace(tco, expanded)
    return text


def profile_from_user(user: dict) -> Profile:
    metrics = _dict(user.get("public_metrics"))
    entities = _dict(user.get("entities"))
    described = _dict(entities.get("description")).get("urls") or []
    website = [u.get("expanded_url") for u in _dict(entities.get("url")).get("urls") or [] if isinstance(u, dict)]
    username = _text(user.get("username"))
    # X's profile_image_url is the 48-pixel "_normal" size; without the suffix it is the
    # original picture (X's docs on profile images), the one an archive's profile_media/ holds.
    picture = user.get("profile_image_url")
    if isinstance(picture, str):
        picture = re.sub(r"_normal(\.\w+)$", r"\1", picture)
    bio = _text(user.get("description"))
    return Profile(
        native_id=str(user["id"]) if user.get("id") is not None else None,
        username=username,
        display_name=_text(user.get("name")),
        bio=expand_links(html.unescape(bio), [u for u in described if isinstance(u, dict)]) if bio else None,
        url=next((w for w in website if _is_web_link(w)), None) or _text(user.get("url")),
        avatar=MediaRef(picture, "avatar") if _is_web_link(picture) else None,
        followers=_count(metrics.get("followers_count")),
        following=_count(metrics.get("following_count")),
        posts=_count(metrics.get("tweet_count")),
        likes=_count(metrics.get("like_count")),
        raw=user,
    )


def membership_of(user: dict) -> Membership | None:
    """A follower or a followed account (id, handle, name, picture; its bio with its links
    expanded, and those links and its website in ``links``, for the audience's pairing);
    None without a numeric id."""
    account_id = str(user.get("id"))
    if not account_id.isdigit() or len(account_id) > 20:
        return None
    handle = _text(user.get("username"))
    picture = user.get("profile_image_url")
    entities = _dict(user.get("entities"))
    described = [u for u in _dict(entities.get("description")).get("urls") or [] if isinstance(u, dict)]
    website = [u for u in _dict(entities.get("url")).get("urls") or [] if isinstance(u, dict)]
    links = list(dict.fromkeys(u["expanded_url"] for u in website + described if _is_web_link(u.get("expanded_url"))))
    bio = _text(user.get("description"))
    return Membership(Person(
        native_id=account_id, handle=handle, display_name=_text(user.get("name")),
        url=person_url(handle) if handle else f"https://twitter.com/intent/user?user_id={account_id}",
        avatar_url=picture if _is_web_link(picture) else None,
        bio=expand_links(html.unescape(bio), described) if bio else None, links=links or None, raw=user))


def _best_video(variants: Any) -> str | None:
    """The highest-bitrate video/mp4 variant (the file an archive holds too, notes A #6)."""
    mp4 = [v for v in variants or [] if isinstance(v, dict) and v.get("content_type") == "video/mp4"
           and _is_web_link(v.get("url"))]
    if not mp4:
        return None
    return max(mp4, key=lambda v: _count(v.get("bit_rate")) or _count(v.get("bitrate")) or 0)["url"]


def media_refs(tweet: dict, media_by_key: dict[str, dict]) -> list[MediaRef]:
    """A MediaRef per attached medium, as the archive's mapping makes them: a photo's url, a
    video's or GIF's highest-bitrate mp4 without its query (the archive's file)."""
    keys = _dict(tweet.get("attachments")).get("media_keys") or []
    refs: list[MediaRef] = []
    for key in keys:
        media = media_by_key.get(str(key))
        if media is None:
            continue
        kind = media.get("type")
        meta = {"type": kind, "media_id": str(key).partition("_")[2] or None,
                "width": _count(media.get("width")), "height": _count(media.get("height")),
                "duration_ms": _count(media.get("duration_ms"))}
        meta = {k: v for k, v in meta.items() if v is not None}
        alt = media.get("alt_text") or None
        if kind in ("video", "animated_gif"):
            url = _best_video(media.get("variants"))
            if url:
                refs.append(MediaRef(url.split("?", 1)[0], "media", len(refs), mime_hint="video/mp4",
                                     description=alt, meta=meta))
                continue
            url = media.get("preview_image_url")
        else:
            url = media.get("url")
        if _is_web_link(url):
            refs.append(MediaRef(url, "media", len(refs), description=alt, meta=meta))
    return refs


def post_from_tweet(tweet: dict, username: str | None, media_by_key: dict[str, dict] | None = None) -> Post:
    """A v2 tweet -> Post, by the records contract of PLAN.md (the same Post an archive's
    tweet gives: keyed by the initial id of an edited post, t.co links expanded)."""
    tweet_id = str(tweet["id"])
    if not tweet_id.isdigit() or len(tweet_id) > 20:
        raise ValueError(f"its id is not a tweet id: {tweet_id[:40]!r}")
    history = tweet.get("edit_history_tweet_ids")
    edits = [str(i) for i in history if str(i).isdigit()] if isinstance(history, list) else []
    edits = edits or [tweet_id]
    native_id = edits[0]
    note = _dict(tweet.get("note_tweet"))
    entities = _dict(note.get("entities")) if note.get("text") else _dict(tweet.get("entities"))
    text = str(note.get("text") or tweet.get("text") or "")
    urls = [u for u in entities.get("urls") or [] if isinstance(u, dict)]
    links, media_links = [], []
    for entity in urls:
        if entity.get("media_key") or (is_own_host(str(entity.get("expanded_url") or ""))
                                       and re.search(r"/status/\d+/(photo|video)/\d+$",
                                                     str(entity.get("expanded_url") or ""))):
            media_links.append(entity)
        elif _is_web_link(entity.get("expanded_url")):
            links.append({"url": entity["expanded_url"], "tco": entity.get("url")})
    for entity in media_links:   # the media's own t.co link: the files stand for it
        if isinstance(entity.get("url"), str):
            text = text.replace(entity["url"], "")
    # Unescaped first: an expanded link's "&copy=1" must not become "©=1".
    text = expand_links(html.unescape(text), urls).strip()
    referenced = {str(r.get("type")): str(r.get("id")) for r in tweet.get("referenced_tweets") or []
                  if isinstance(r, dict) and r.get("id") is not None}
    mentions = [{"id": str(m["id"]) if m.get("id") is not None else None, "handle": m.get("username"),
                 "name": None} for m in entities.get("mentions") or [] if isinstance(m, dict)]
    hashtags = [h.get("tag") for h in entities.get("hashtags") or [] if isinstance(h, dict) and h.get("tag")]
    if "retweeted" in referenced or text.startswith("RT @"):
        kind = "boost"
    elif "replied_to" in referenced:
        kind = "reply"
    elif "quoted" in referenced:
        kind = "quote"
    else:
        kind = "text"
    # raw as the archive's mapping (x/tweets.py) keeps it: the tweet itself and what was read from it.
    raw: dict[str, Any] = {**tweet, "links": links, "mentions": mentions, "hashtags": hashtags}
    if "replied_to" in referenced:
        reply_user = str(tweet["in_reply_to_user_id"]) if tweet.get("in_reply_to_user_id") is not None else None
        raw["in_reply_to"] = {"post_id": referenced["replied_to"], "user_id": reply_user,
                              "handle": next((m["handle"] for m in mentions if reply_user and m["id"] == reply_user),
                                             None)}
    if "quoted" in referenced:
        quoted = next((STATUS_LINK.match(link["url"]) for link in links if STATUS_LINK.match(link["url"])), None)
        raw["quotes"] = {"user": quoted.group(1) if quoted else None, "post_id": referenced["quoted"]}
    if "retweeted" in referenced:
        raw["reposts"] = referenced["retweeted"]
    if len(edits) > 1:
        raw["edit_ids"] = sorted(edits, key=id_key)
    metrics = _dict(tweet.get("public_metrics"))
    return Post(
        native_id=native_id,
        # An edited post's time is its first version's, which the timeline does not send:
        # a tweet id tells its own creation time (snowflake).
        created_at=iso_utc(tweet.get("created_at")) if native_id == tweet_id else snowflake_time(native_id),
        kind=kind,
        text=text or None,
        url=f"https://x.com/{username or 'i/web'}/status/{native_id}",
        link=next((link["url"] for link in links if not is_own_host(link["url"])), None),
        like_count=_count(metrics.get("like_count")),
        share_count=_count(metrics.get("retweet_count")),
        comment_count=_count(metrics.get("reply_count")),
        view_count=_count(metrics.get("impression_count")),
        media=media_refs(tweet, media_by_key or {}),
        raw=raw,
    )


def snowflake_time(tweet_id: str) -> str | None:
    """When a tweet id was made: its top bits count milliseconds since X's epoch."""
    if not tweet_id.isdigit() or len(tweet_id) > 20:
        return None
    return iso_utc((int(tweet_id) >> 22) / 1000 + SNOWFLAKE_EPOCH)


def id_key(tweet_id: str) -> tuple[int, str]:
    """Orders tweet ids (snowflakes: a later post has a larger number) without int()
    of a hostile string: by length, then digits."""
    return (len(tweet_id), tweet_id)
