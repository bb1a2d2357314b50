"""YouTube Data API v3: Google OAuth tokens, the quota meter, the API client and the
payload -> record mapping (notes: shared/platforms/youtube.md)."""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
from typing import Any, TypeGuard
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx

from archiver.net.budget import BudgetedTransport, BudgetSpent, DailyBudget
from archiver.net.client import ApiClient, NetError, scrubber
from archiver.net.tokens import OAuth2Tokens
from archiver.records import Comment, MediaRef, Membership, Person, Post, Profile, iso_utc, visibility

log = logging.getLogger("archiver.youtube")

SCOPE = "https://www.googleapis.com/auth/youtube.readonly"
API_BASE_URL = "https://www.googleapis.com"
AUTHORIZE_BASE_URL = "https://accounts.google.com"
TOKEN_BASE_URL = "https://oauth2.googleapis.com"
API_PREFIX = "/youtube/v3/"
PACIFIC = ZoneInfo("America/Los_Angeles")   # the quota day ends at midnight Pacific time
DEFAULT_DAILY_QUOTA = 10_000
# Units per request of each method we call (notes §3, [C]): every list method costs 1,
# retries and invalid requests included.
CALL_COSTS = {"channels": 1, "playlistItems": 1, "videos": 1, "commentThreads": 1, "comments": 1,
              "subscriptions": 1}
PAGE_SIZE = {"playlistItems": 50, "videos": 50, "commentThreads": 100, "comments": 100, "subscriptions": 50}
# 403 rateLimitExceeded / userRateLimitExceeded are short-term limits: back off and retry.
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
RATE_LIMIT_ATTEMPTS = 6
THUMBNAIL_PREFERENCE = ("maxres", "standard", "high", "medium", "default")


def wall_clock() -> float:
    """The time the quota day and token expiry are judged by (tests replace it)."""
    return time.time()


def pacific_day(epoch: float | None = None) -> str:
    return dt.datetime.fromtimestamp(wall_clock() if epoch is None else epoch, PACIFIC).date().isoformat()


def reauth_message(account: str, detail: str = "", age_days: float | None = None) -> str:
    age = f" The stored refresh token is {age_days:.1f} days old." if age_days is not None else ""
    return (f"Google refused the stored YouTube authorization for account {account!r}"
            f"{f' ({detail})' if detail else ''}.{age} If your Google Cloud app's OAuth consent screen is "
            "still in \"Testing\" publishing status, Google expires its refresh tokens after 7 days. "
            "To fix it: in Google Cloud Console → APIs & Services → OAuth consent screen, press "
            "\"Publish app\" (status \"In production\"), then run "
            f"`archiver auth youtube --account {account}` again. (A token revoked by you or unused "
            "for 6 months needs the same `archiver auth youtube`.)")


# --------------------------------------------------------------------------- quota


def quota_meter(budget: int, state: dict | None = None) -> DailyBudget:
    """Units spent today (Pacific day) against the budget, persisted in sync_state "quota".

    Every Data API request is charged *before* it is sent, retries included (Google
    charges invalid requests too), so the archive's count never lags the platform's.
    """
    return DailyBudget(budget, state, what="the daily YouTube quota budget", unit="units", zone=PACIFIC,
                       clock=lambda: wall_clock())


def metered(inner: httpx.BaseTransport, meter: DailyBudget) -> BudgetedTransport:
    """``inner`` charging the meter for every Data API request before it leaves (so the
    ApiClient's own retries are counted too)."""

    def cost(request: httpx.Request) -> int:
        path = request.url.path
        return CALL_COSTS.get(path[len(API_PREFIX):], 1) if path.startswith(API_PREFIX) else 0

    return BudgetedTransport(inner, meter, cost)


# --------------------------------------------------------------------------- tokens


class YouTubeError(NetError):
    """A Google API error envelope; ``reason`` is errors[0].reason."""

    def __init__(self, reason: str, message: str, *, status: int, path: str):
        kind = "gone" if status == 404 else "auth" if status == 401 else "server" if status >= 500 else "client"
        super().__init__(f"YouTube {path}: HTTP {status} {reason}: {re.sub(r'<[^>]+>', '', message)}",
                         kind=kind, status=status)
        self.reason = reason


class YouTubeTokens(OAuth2Tokens):
    """Google access and refresh tokens through the SecretStore (a net.TokenProvider).

    Google does not rotate refresh tokens: a refresh answer without one keeps the old.
    ``refresh_issued_at`` says how old the refresh token is (the 7-day testing limit).
    """

    platform, title = "youtube", "YouTube"
    server = "Google"
    default_expires_in = 3599
    refusal_without_json = "auth"   # an error page instead of an OAuth error

    def record(self, answer: dict[str, Any], previous: dict[str, Any], now: float) -> dict[str, Any]:
        return {**super().record(answer, previous, now),
                "refresh_issued_at": now if answer.get("refresh_token") else previous.get("refresh_issued_at")}

    def now(self) -> float:
        return wall_clock()

    def reauth_message(self, detail: str = "") -> str:
        issued = self.load().get("refresh_issued_at")
        return reauth_message(self.account, detail, (wall_clock() - issued) / 86400 if issued else None)

    def credentials_hint(self, key: str) -> str:
        return f"run `archiver auth youtube --account {self.account}` to enter your Google OAuth client"


def authorize_url(base: str, *, client_id: str, redirect_uri: str, state: str, challenge: str,
                  scope: str = SCOPE) -> str:
    return f"{base}/o/oauth2/v2/auth?" + urlencode({
        "client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": scope,
        "access_type": "offline",        # needed for a refresh token
        "prompt": "consent",             # re-issues the refresh token on a repeated authorization
        "include_granted_scopes": "true", "state": state,
        "code_challenge": challenge, "code_challenge_method": "S256"})


# --------------------------------------------------------------------------- API


class YouTubeApi:
    """The Data API calls the archiver makes, each 1 quota unit (charged by the meter)."""

    def __init__(self, base_url: str, tokens: YouTubeTokens, meter: DailyBudget, *, transport=None,
                 sleep=None, cancel=None):
        self.tokens = tokens
        self.meter = meter
        self.sleep = sleep or time.sleep
        inner = transport if transport is not None else httpx.HTTPTransport()
        kwargs = {"sleep": sleep} if sleep else {}
        self.client = ApiClient(base_url, tokens=tokens, transport=metered(inner, meter),
                                cancel=cancel, **kwargs)

    def get(self, resource: str, params: dict[str, Any]) -> dict:
        path = API_PREFIX + resource
        for attempt in range(RATE_LIMIT_ATTEMPTS):
            response = self.client.request("GET", path, params=params, expect_json=True)
            try:
                body = response.json()
            except ValueError:
                raise NetError(f"YouTube {path}: HTTP {response.status_code} without JSON",
                               kind="gone" if response.status_code == 404 else "bad_response",
                               status=response.status_code) from None
            if response.status_code < 400:
                if not isinstance(body, dict):
                    raise NetError(f"YouTube {path}: unexpected answer", kind="bad_response")
                return body
            error = body.get("error") if isinstance(body, dict) else None
            error = error if isinstance(error, dict) else {}
            reasons = [e.get("reason", "") for e in error.get("errors") or [] if isinstance(e, dict)]
            reason = reasons[0] if reasons else str(error.get("status", "unknown"))
            if reason == "quotaExceeded" or (response.status_code == 403 and "quota" in str(error.get("message", "")).lower()
                                             and reason not in RATE_LIMIT_REASONS):
                self.meter.exhaust()
                raise BudgetSpent("YouTube answered quotaExceeded: the project's daily quota is used up",
                                       by_platform=True)
            if reason in RATE_LIMIT_REASONS and attempt + 1 < RATE_LIMIT_ATTEMPTS:
                wait = 2 ** attempt + random.uniform(0, 1)
                log.warning("YouTube %s: %s; waiting %.1fs", path, reason, wait)
                self.sleep(wait)
                continue
            raise YouTubeError(reason, str(error.get("message", "")), status=response.status_code, path=path)
        raise AssertionError("unreachable")

    def channel(self) -> dict | None:
        items = self.get("channels", {"part": "snippet,contentDetails,statistics", "mine": "true"}).get("items") or []
        return items[0] if items else None

    def upload_ids(self, playlist_id: str, page_token: str | None) -> tuple[list[str], str | None]:
        params = {"part": "contentDetails", "playlistId": playlist_id, "maxResults": PAGE_SIZE["playlistItems"],
                  "fields": "nextPageToken,items(contentDetails/videoId)"}
        if page_token:
            params["pageToken"] = page_token
        body = self.get("playlistItems", params)
        ids = [i["contentDetails"]["videoId"] for i in body.get("items") or []
               if isinstance(i, dict) and i.get("contentDetails", {}).get("videoId")]
        return ids, body.get("nextPageToken")

    def videos(self, ids: list[str]) -> list[dict]:
        if not ids:
            return []
        assert len(ids) <= PAGE_SIZE["videos"]
        return self.get("videos", {"part": "snippet,contentDetails,statistics,status", "id": ",".join(ids),
                                   "maxResults": PAGE_SIZE["videos"]}).get("items") or []

    def thread_page(self, channel_id: str, page_token: str | None) -> tuple[list[dict], str | None]:
        params = {"part": "snippet,replies", "allThreadsRelatedToChannelId": channel_id, "order": "time",
                  "textFormat": "plainText", "maxResults": PAGE_SIZE["commentThreads"]}
        if page_token:
            params["pageToken"] = page_token
        body = self.get("commentThreads", params)
        return body.get("items") or [], body.get("nextPageToken")

    def reply_page(self, parent_id: str, page_token: str | None) -> tuple[list[dict], str | None]:
        params = {"part": "snippet", "parentId": parent_id, "textFormat": "plainText",
                  "maxResults": PAGE_SIZE["comments"]}
        if page_token:
            params["pageToken"] = page_token
        body = self.get("comments", params)
        return body.get("items") or [], body.get("nextPageToken")

    def subscriber_page(self, page_token: str | None) -> tuple[list[dict], str | None]:
        params = {"part": "snippet,subscriberSnippet", "mySubscribers": "true",
                  "maxResults": PAGE_SIZE["subscriptions"]}
        if page_token:
            params["pageToken"] = page_token
        body = self.get("subscriptions", params)
        return body.get("items") or [], body.get("nextPageToken")

    def close(self) -> None:
        self.client.close()
        self.tokens.client.close()


# --------------------------------------------------------------------------- mapping


def _count(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def iso_duration_seconds(value: str | None) -> int | None:
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", value or "")
    if not match or not value or value == "P":
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def best_thumbnail(thumbnails: dict | None) -> str | None:
    for name in THUMBNAIL_PREFERENCE:
        url = ((thumbnails or {}).get(name) or {}).get("url")
        if url:
            return url
    return None


def _scrub_thumbnails(snippet: dict) -> dict:
    """Thumbnail links may be signed: stored without their query string."""
    if isinstance(snippet.get("thumbnails"), dict):
        snippet = dict(snippet)
        snippet["thumbnails"] = {k: {**v, "url": scrubber.url(v["url"])} if isinstance(v, dict) and v.get("url") else v
                                 for k, v in snippet["thumbnails"].items()}
    return snippet


def profile_from_channel(channel: dict) -> Profile:
    snippet = channel.get("snippet") or {}
    stats = channel.get("statistics") or {}
    handle = (snippet.get("customUrl") or "").lstrip("@") or None
    avatar = best_thumbnail(snippet.get("thumbnails"))
    raw = dict(channel)
    raw["snippet"] = _scrub_thumbnails(snippet)
    return Profile(
        native_id=channel.get("id"),
        username=handle,
        display_name=snippet.get("title"),
        bio=snippet.get("description"),
        url=f"https://www.youtube.com/@{handle}" if handle else f"https://www.youtube.com/channel/{channel.get('id')}",
        avatar=MediaRef(avatar, "avatar") if avatar else None,
        followers=None if stats.get("hiddenSubscriberCount") else _count(stats.get("subscriberCount")),
        posts=_count(stats.get("videoCount")),
        raw=raw,
    )


def post_from_video(video: dict) -> Post:
    snippet = video.get("snippet") or {}
    stats = video.get("statistics") or {}
    thumb = best_thumbnail(snippet.get("thumbnails"))
    raw = dict(video)
    raw["snippet"] = _scrub_thumbnails(snippet)
    return Post(
        native_id=video["id"],
        created_at=iso_utc(snippet.get("publishedAt")),
        kind="video",
        title=snippet.get("title"),
        text=snippet.get("description") or None,
        url=f"https://www.youtube.com/watch?v={video['id']}",
        duration=iso_duration_seconds((video.get("contentDetails") or {}).get("duration")),
        visibility=visibility((video.get("status") or {}).get("privacyStatus")),
        # Missing keys mean hidden likes / disabled comments (notes §2.2): unknown, not 0.
        like_count=_count(stats.get("likeCount")),
        comment_count=_count(stats.get("commentCount")),
        view_count=_count(stats.get("viewCount")),
        media=[MediaRef(thumb, "cover")] if thumb else [],
        raw=raw,
    )


def _is_web_link(value: object) -> TypeGuard[str]:
    """An http(s) link the media client can fetch (not empty, not some other scheme)."""
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def comment_from_item(item: dict, *, owner_channel: str, video_id: str | None = None) -> Comment:
    snippet = item.get("snippet") or {}
    author_id = (snippet.get("authorChannelId") or {}).get("value")
    author = None
    if author_id:
        picture = snippet.get("authorProfileImageUrl")
        shown = snippet.get("authorDisplayName")
        # Since the handles came, authorDisplayName is the author's "@handle", not their
        # name: it is kept as the handle only, so it never overwrites the channel's title
        # that the subscriber list gives (which of the two was written last would otherwise
        # depend on the order of runs). A name without "@" (a channel without a handle) is a name.
        is_handle = isinstance(shown, str) and shown.startswith("@")
        author = Person(native_id=author_id, handle=shown,
                        display_name=None if is_handle else shown,
                        url=snippet.get("authorChannelUrl"), avatar_url=picture,
                        # The runner downloads a commenter's picture when it is new or its
                        # link changed (yt3.ggpht.com: a new picture has a new link). These
                        # are CDN downloads, not Data API calls: they cost no quota units.
                        avatar=MediaRef(picture, "avatar") if _is_web_link(picture) else None)
    video = snippet.get("videoId") or video_id
    # textOriginal is only guaranteed for the comment's own author (notes §0): fall back
    # to textDisplay (asked as plain text); raw keeps both.
    text = snippet.get("textOriginal") or snippet.get("textDisplay") or ""
    return Comment(
        native_id=item.get("id"),
        text=text,
        created_at=iso_utc(snippet.get("publishedAt")),
        post_native_id=video,
        author=author,
        by_owner=bool(author_id) and author_id == owner_channel,
        parent_native_id=snippet.get("parentId"),
        url=f"https://www.youtube.com/watch?v={video}&lc={item.get('id')}" if video else None,
        raw=item,
    )


def membership_from_subscription(item: dict) -> Membership | None:
    subscriber = item.get("subscriberSnippet") or {}
    channel_id = subscriber.get("channelId") or (item.get("snippet") or {}).get("channelId")
    if not channel_id:
        return None
    person = Person(native_id=channel_id, display_name=subscriber.get("title"),
                    url=f"https://www.youtube.com/channel/{channel_id}",
                    avatar_url=best_thumbnail(subscriber.get("thumbnails")), raw=item)
    # snippet.publishedAt is the subscription date [U]: kept as the follow's start.
    return Membership(person, since=iso_utc((item.get("snippet") or {}).get("publishedAt")))


# --------------------------------------------------------------------------- Data Portability
# Google Data Portability API (notes §5): EEA accounts can have Google prepare a
# Takeout-style archive of chosen "resource groups". Its calls are not YouTube Data API
# calls: they cost no YouTube quota units and are never charged to the meter.

PORTABILITY_BASE_URL = "https://dataportability.googleapis.com"
PORTABILITY_SCOPE_PREFIX = "https://www.googleapis.com/auth/dataportability."
# The resource groups whose archives hold what takeout.py imports (each scope's suffix is
# its group name, 1:1 [C]). Other granted groups (music, live chat, shopping …) are left
# alone: their files are nothing the archive reads.
PORTABILITY_GROUPS = ("youtube.channel", "youtube.public_videos", "youtube.unlisted_videos",
                      "youtube.private_videos", "youtube.comments", "youtube.subscriptions")
PORTABILITY_SCOPES = tuple(PORTABILITY_SCOPE_PREFIX + group for group in PORTABILITY_GROUPS)
ACCESS_ONE_TIME = "ACCESS_TYPE_ONE_TIME"
# Status words of an initiate refused because the one-time grant was used up [U]: the
# fake answers 403 with either; a re-consent fixes both (and a missing scope too).
PORTABILITY_REFUSED_STATUSES = {"PERMISSION_DENIED", "FAILED_PRECONDITION"}


def portability_groups(scope: str | None) -> list[str]:
    """The importable resource groups a grant's scope string covers, in a fixed order."""
    granted = set((scope or "").split())
    return [group for group in PORTABILITY_GROUPS if PORTABILITY_SCOPE_PREFIX + group in granted]


class PortabilityError(NetError):
    """A Data Portability error envelope: ``status`` is Google's status word
    (PERMISSION_DENIED, FAILED_PRECONDITION, NOT_FOUND …)."""

    def __init__(self, status_word: str, message: str, *, status: int, path: str):
        kind = "gone" if status == 404 else "auth" if status == 401 else "server" if status >= 500 else "client"
        super().__init__(f"Data Portability {path}: HTTP {status} {status_word}: {message}", kind=kind, status=status)
        self.status_word = status_word


class SignedUrlRefused(NetError):
    """A signed download link answered 4xx: expired (or revoked). Polling the job again
    gives fresh links."""


class PortabilityApi:
    """The Data Portability calls: initiate a job, poll its state, reset the grant, and
    stream an archive part from its signed Cloud Storage link (sent without our token)."""

    def __init__(self, base_url: str, tokens: YouTubeTokens, *, transport=None, sleep=None, cancel=None,
                 links=None):
        """``links``: the account's links.LinkPolicy; the signed links come from the answer."""
        self.tokens = tokens
        kwargs = {"sleep": sleep} if sleep else {}
        self.client = ApiClient(base_url, tokens=tokens, transport=transport, cancel=cancel, timeout=120,
                                links=links, **kwargs)

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        # initiate is not idempotent (a retry could start a second job); the state poll is.
        response = self.client.request(method, path, json=body, idempotent=method == "GET", expect_json=True)
        try:
            answer = response.json()
        except ValueError:
            raise NetError(f"Data Portability {path}: HTTP {response.status_code} without JSON",
                           kind="gone" if response.status_code == 404 else "bad_response",
                           status=response.status_code) from None
        if response.status_code >= 400:
            error = answer.get("error") if isinstance(answer, dict) else None
            error = error if isinstance(error, dict) else {}
            raise PortabilityError(str(error.get("status") or "UNKNOWN"), str(error.get("message", "")),
                                   status=response.status_code, path=path)
        if not isinstance(answer, dict):
            raise NetError(f"Data Portability {path}: unexpected answer", kind="bad_response")
        return answer

    def initiate(self, resources: list[str]) -> dict:
        """{"archiveJobId", "accessType"} of a new archive job for ``resources``."""
        answer = self._call("POST", "/v1/portabilityArchive:initiate", {"resources": resources})
        if not answer.get("archiveJobId"):
            raise NetError("Data Portability initiate: no archiveJobId in the answer", kind="bad_response")
        return answer

    def archive_state(self, job_id: str) -> dict:
        """{"state", "urls"?, …}: urls only when state is COMPLETE."""
        return self._call("GET", f"/v1/archiveJobs/{job_id}/portabilityArchiveState")

    def reset_authorization(self) -> None:
        """Clears exhausted one-time scopes (and revokes the tokens): the user consents again."""
        self._call("POST", "/v1/authorization:reset", {})

    def download(self, url: str, dest, *, limits=None, clock=None, cancel=None) -> int:
        """Stream one signed archive part into ``dest`` (binary file); returns its size.
        Bounded like any download (``limits``: [downloads] of the config; see
        media.copy_bounded); removing ``dest`` after a failure is the caller's."""
        from archiver.archive.media import copy_bounded
        from archiver.config import DownloadLimits

        with self.client.stream("GET", url, authenticated=False) as response:
            if response.status_code >= 400:
                raise SignedUrlRefused(f"the download link {scrubber.url(url)} answered HTTP {response.status_code} "
                                       "(signed links expire)", kind="client", status=response.status_code)
            return copy_bounded(response, dest, url=url, what="a Data Portability archive part",
                                limits=limits or DownloadLimits(),
                                clock=clock, cancel=cancel)

    def close(self) -> None:
        self.client.close()
        self.tokens.client.close()
