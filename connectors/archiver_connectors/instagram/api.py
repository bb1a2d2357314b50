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
import logging
from typing import Callable, Iterator

import httpx

from archiver.records import Comment, MediaRef, Person, Post, Profile, iso_utc, visibility
from archiver_connectors.meta import graph
from archiver_connectors.meta.graph import (  # noqa: F401  (re-exported: Instagram's names for them)
    AUTH_CODES,
    DAY,
    DEFAULT_THROTTLE_WAIT,
    GRAPH_VERSION,
    SLOW_DOWN_AT,
    THROTTLE_CODES,
    THROTTLE_RETRIES,
    TRANSIENT_CODES,
    GraphApi,
    GraphError,
    LongLivedTokens,
    UsagePacer,
    graph_error_of,
    next_cursor,
    scrubbed_payload,
    usage_of,
)

log = logging.getLogger("archiver.instagram")

DEFAULT_SCOPES = "instagram_business_basic,instagram_business_manage_comments"
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

MAX_THROTTLE_WAIT = graph.MAX_THROTTLE_WAIT   # longer than this: stop now, resume next run (tests lower it)
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


# --------------------------------------------------------------------------- tokens


class InstagramTokens(LongLivedTokens):
    """The long-lived Instagram token in the SecretStore, refreshed well before it expires
    (``GET /refresh_access_token?grant_type=ig_refresh_token``; see LongLivedTokens)."""

    platform, title = "instagram", "Instagram"
    refresh_path, refresh_grant = "refresh_access_token", "ig_refresh_token"
    min_refresh_age, refresh_when_left = MIN_REFRESH_AGE, REFRESH_WHEN_LEFT

    def reauth_message(self, detail: str = "") -> str:
        return reauth_message(self.account, detail)


# --------------------------------------------------------------------------- the API


class InstagramApi(GraphApi):
    """Graph calls for one account: /me, media, children, comments, replies."""

    title = "Instagram"

    def __init__(self, graph_base: str, tokens: InstagramTokens, *, transport=None, sleep=None, cancel=None,
                 pacer: UsagePacer | None = None):
        super().__init__(graph_base, tokens, transport=transport, sleep=sleep, cancel=cancel, pacer=pacer)

    @property
    def max_throttle_wait(self) -> float:   # type: ignore[override]
        return MAX_THROTTLE_WAIT

    def reauth_message(self, detail: str) -> str:
        return reauth_message(self.tokens.account, detail)

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
        value = self.fresh_object(object_id, fields).get(field)
        return value if isinstance(value, str) and value else None

    def refresher(self, object_id: str, field: str) -> Callable[[], str | None]:
        """The ``MediaRef.refresh`` hook for one file: the runner calls it once when the
        link it was given is refused with 403/410."""
        return functools.partial(self.fresh_link, object_id, field)


# --------------------------------------------------------------------------- mapping


def _scrubbed(item: dict) -> dict:
    """A payload fit to keep: signed CDN links lose their query, nested pages their paging."""
    return scrubbed_payload(item, URL_FIELDS)


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
    return graph.authorize_url(base, client_id=client_id, scopes=scopes, redirect_uri=redirect_uri, state=state)


def exchange_code(client: httpx.Client, url: str, form: dict[str, str]) -> tuple[str, str | None, str | None]:
    """POST the code exchange; (short-lived token, user id as text, permissions). Accepts
    both the ``{"data": [...]}`` and the flat answer (notes §1.2). Not retried: a code is
    single-use."""
    return graph.exchange_code(client, url, form, title="Instagram")


def long_lived(client: httpx.Client, graph_base: str, short_token: str, client_secret: str) -> dict:
    return graph.exchange_long_lived(client, f"{graph_base}/access_token", {
        "grant_type": "ig_exchange_token", "client_secret": client_secret, "access_token": short_token},
        title="Instagram")
