"""TikTok's official APIs: Login Kit tokens, the Display API, the Data Portability API.

See ../shared/platforms/tiktok.md. Only requests documented there are made.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any, Iterator
from urllib.parse import urlencode

import httpx

from archiver.net.client import ApiClient, NetError, RetryPolicy, scrubber
from archiver.net.tokens import OAuth2Tokens
from archiver.records import MediaRef, Post, Profile, iso_utc, visibility

log = logging.getLogger("archiver.tiktok")

USER_FIELDS_BY_SCOPE = {
    "user.info.basic": ["open_id", "union_id", "avatar_url", "avatar_large_url", "display_name"],
    "user.info.profile": ["bio_description", "profile_deep_link", "is_verified", "username"],
    "user.info.stats": ["follower_count", "following_count", "likes_count", "video_count"],
}
VIDEO_FIELDS = [
    "id", "create_time", "cover_image_url", "share_url", "video_description", "duration",
    "height", "width", "title", "embed_html", "embed_link",
    "like_count", "comment_count", "share_count", "view_count",
]
DEFAULT_SCOPES = "user.info.basic,user.info.profile,user.info.stats,video.list"
PORTABILITY_SCOPE_PREFIX = "portability."
MAX_COUNT = 20          # /v2/video/list/ maximum
QUERY_BATCH = 20        # /v2/video/query/ maximum ids
# TikTok limits each endpoint over a one-minute sliding window and sends no Retry-After
# (notes §2.6). Backoff of 1, 2, 4 … s must be able to outlast that window: 8 attempts
# wait about 127 s in all (6 would give up after about 31 s, still inside the window).
RETRY_POLICY = RetryPolicy(attempts=8)


def reauth_message(account: str) -> str:
    return (f"TikTok no longer accepts the stored authorization for account {account!r} "
            f"(revoked, expired or replaced). Run `archiver auth tiktok --account {account}` again.")


class TikTokError(NetError):
    """A data-API error envelope: ``code`` is TikTok's error.code."""

    def __init__(self, code: str, message: str, *, status: int | None, path: str):
        kind = {
            "access_token_invalid": "auth", "scope_not_authorized": "auth", "scope_permission_missed": "auth",
            "rate_limit_exceeded": "rate_limited", "internal_error": "server",
        }.get(code, "gone" if status == 404 else "client")
        super().__init__(f"TikTok {path}: {code}: {message}", kind=kind, status=status)
        self.code = code


class TikTokTokens(OAuth2Tokens):
    """Access and refresh tokens through the SecretStore (implements net.TokenProvider).

    TikTok rotates refresh tokens (the old one dies once a new one is issued: stored
    before use by the core), calls the client id ``client_key``, and says how long the
    refresh token lives (``refresh_expires_in``, kept as ``refresh_expires_at``). Its OAuth
    errors come with a 200 or a 4xx (unconfirmed): the core lets the body decide.
    """

    platform, title = "tiktok", "TikTok"
    server = "TikTok"
    client_id_key = "client_key"
    grant_gone_errors = OAuth2Tokens.grant_gone_errors | {"access_denied"}

    def __init__(self, secrets, account: str, token_url: str, client: httpx.Client, clock=time.time):
        super().__init__(secrets, account, token_url, client)
        self.clock = clock

    def record(self, answer: dict[str, Any], previous: dict[str, Any], now: float) -> dict[str, Any]:
        refresh_expires_in = answer.get("refresh_expires_in")
        return {
            **super().record(answer, previous, now),
            "refresh_expires_at": now + int(refresh_expires_in) if refresh_expires_in
            else previous.get("refresh_expires_at"),
            "open_id": answer.get("open_id"),
        }

    @property
    def scopes(self) -> set[str]:
        return {s.strip() for s in self.load().get("scope", "").split(",") if s.strip()}

    def now(self) -> float:
        return self.clock()

    def reauth_message(self, detail: str = "") -> str:
        return reauth_message(self.account)


class TikTokApi:
    """The Display API and the Data Portability API for one account."""

    def __init__(self, base_url: str, tokens: TikTokTokens, *, transport=None, sleep=None, cancel=None):
        self.tokens = tokens
        kwargs = {"sleep": sleep} if sleep else {}
        self.client = ApiClient(base_url, tokens=tokens, transport=transport, cancel=cancel,
                                is_auth_error=self._is_auth_error, retry=RETRY_POLICY, **kwargs)

    @staticmethod
    def _is_auth_error(response: httpx.Response) -> bool:
        if response.status_code != 401:
            return False
        try:
            return response.json().get("error", {}).get("code") == "access_token_invalid"
        except ValueError:
            return True

    def _call(self, method: str, path: str, fields: list[str] | None, body: dict | None = None) -> dict:
        params = {"fields": ",".join(fields)} if fields else None
        kwargs: dict[str, Any] = {"params": params}
        if body is not None:
            kwargs["json"] = body
        # Every call here only reads, so a POST (video list / query) is safe to retry.
        response = self.client.request(method, path, idempotent=True, expect_json=True, **kwargs)
        try:
            envelope = response.json()
        except ValueError:
            raise NetError(f"TikTok {path}: HTTP {response.status_code} without JSON", kind="bad_response") from None
        error = envelope.get("error") or {}
        code = error.get("code", "ok" if response.status_code == 200 else "unknown")
        if code != "ok" or response.status_code >= 400:
            if code == "access_token_invalid":
                raise NetError(reauth_message(self.tokens.account), kind="auth", status=response.status_code)
            raise TikTokError(code, error.get("message", ""), status=response.status_code, path=path)
        return envelope.get("data") or {}

    # -- Display API -----------------------------------------------------------------
    def user_info(self) -> Profile:
        granted = self.tokens.scopes or {"user.info.basic"}
        fields = [f for scope, names in USER_FIELDS_BY_SCOPE.items() if scope in granted for f in names]
        try:
            user = self._call("GET", "/v2/user/info/", fields).get("user", {})
        except TikTokError as error:
            if error.code not in ("scope_permission_missed", "scope_not_authorized"):
                raise
            # `username` is listed under user.info.profile by third parties only: ask again
            # with the fields whose scope is confirmed.
            fields = [f for f in fields if f != "username"]
            user = self._call("GET", "/v2/user/info/", fields).get("user", {})
        return profile_from_user(user)

    def list_videos(self, cursor: int | None) -> tuple[list[dict[str, Any]], int | None, bool]:
        """One page of the owner's public videos, newest first, as TikTok sent them (each
        is mapped on its own with ``post_from_video``): the videos, the next cursor (a
        time in milliseconds) and whether there are more."""
        body: dict[str, Any] = {"max_count": MAX_COUNT}
        if cursor is not None:
            body["cursor"] = cursor
        data = self._call("POST", "/v2/video/list/", VIDEO_FIELDS, body)
        return list(data.get("videos") or []), data.get("cursor"), bool(data.get("has_more"))

    def query_videos(self, ids: list[str]) -> Iterator[list[dict[str, Any]]]:
        """These videos again (fresh counts and cover links), a batch at a time, as TikTok
        sent them (each mapped on its own with ``post_from_video``)."""
        for start in range(0, len(ids), QUERY_BATCH):
            batch = ids[start:start + QUERY_BATCH]
            data = self._call("POST", "/v2/video/query/", VIDEO_FIELDS, {"filters": {"video_ids": batch}})
            yield list(data.get("videos") or [])

    # -- Data Portability API --------------------------------------------------------
    def portability_add(self, categories: list[str]) -> str:
        data = self._call("POST", "/v2/user/data/add/", ["request_id"],
                          {"data_format": "json", "category_selection_list": categories})
        return str(data["request_id"])  # int64: kept as text, never as a float

    def portability_check(self, request_id: str) -> dict:
        return self._call("POST", "/v2/user/data/check/",
                          ["request_id", "apply_time", "collect_time", "status", "data_format", "category_selection_list"],
                          {"request_id": int(request_id)})

    def portability_download(self, request_id: str, dest, *, limits=None, clock=None, cancel=None) -> bool:
        """Stream the export zip into ``dest`` (a binary file). False when the answer is not
        a zip yet (still being prepared: keep polling). Bounded like any download
        (``limits``: [downloads] of the config; see media.copy_bounded): an endless or
        trickling answer raises media.DownloadCut; removing ``dest`` is the caller's."""
        from archiver.archive.media import copy_bounded
        from archiver.config import DownloadLimits

        path = "/v2/user/data/download/"
        with self.client.stream("POST", path, authenticated=True, idempotent=True,
                                json={"request_id": int(request_id)}) as response:
            if response.status_code != 200:
                return False
            chunks = response.iter_bytes()
            first = next(chunks, b"")
            if not first.startswith(b"PK"):
                return False
            copy_bounded(response, dest, url=str(response.url), what=f"TikTok's export zip (request {request_id})",
                         limits=limits or DownloadLimits(), clock=clock, cancel=cancel,
                         chunks=itertools.chain([first], chunks))
        return True

    def close(self) -> None:
        self.client.close()
        self.tokens.client.close()


def profile_from_user(user: dict[str, Any]) -> Profile:
    username = user.get("username")
    avatar = user.get("avatar_large_url") or user.get("avatar_url")
    return Profile(
        native_id=user.get("open_id"),
        username=username,
        display_name=user.get("display_name"),
        bio=user.get("bio_description"),
        url=f"https://www.tiktok.com/@{username}" if username else user.get("profile_deep_link"),
        avatar=MediaRef(avatar, "avatar") if avatar else None,
        followers=user.get("follower_count"),
        following=user.get("following_count"),
        likes=user.get("likes_count"),
        posts=user.get("video_count"),
        # Avatar links are signed and expiring, like cover links: never stored whole.
        raw={k: scrubber.url(v) if k.startswith("avatar") and isinstance(v, str) else v for k, v in user.items()},
    )


def post_from_video(video: dict[str, Any]) -> Post:
    cover = video.get("cover_image_url")
    raw = dict(video)
    if cover:
        raw["cover_image_url"] = scrubber.url(cover)  # signed and expiring: never stored whole
    return Post(
        native_id=str(video["id"]),
        created_at=iso_utc(video.get("create_time")),
        kind="video",
        title=video.get("title") or None,
        text=video.get("video_description") or None,
        url=_without_tracking(video.get("share_url")),
        duration=video.get("duration"),
        width=video.get("width"),
        height=video.get("height"),
        visibility=visibility("public"),  # the Display API lists public videos only
        like_count=video.get("like_count"),
        comment_count=video.get("comment_count"),
        share_count=video.get("share_count"),
        view_count=video.get("view_count"),
        media=[MediaRef(cover, "cover")] if cover else [],
        raw=raw,
    )


def _without_tracking(url: str | None) -> str | None:
    return url.split("?", 1)[0] if url else url


def authorize_url(base: str, *, client_key: str, scopes: str, redirect_uri: str, state: str, challenge: str) -> str:
    query = urlencode({
        "client_key": client_key,
        "scope": scopes,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    })
    return f"{base}/v2/auth/authorize/?{query}"
