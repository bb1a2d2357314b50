"""The Threads API: tokens, Graph calls and payload -> record mapping. See
../shared/platforms/threads.md; the Graph mechanics (errors, pacing, paging, token
scrubbing, the long-lived token) are archiver_connectors.meta.graph's.

What Threads gives, and how it becomes records:

* the owner's top-level posts (``/me/threads``) and the replies the owner wrote
  (``/me/replies``) are the owner's posts: kinds "text", "image", "video", "carousel"
  (its children are the files, in order), "quote" (``quoted_post`` kept in raw),
  "boost" (a REPOST_FACADE: the owner's repost of someone else's post, ``reposted_post``
  kept in raw) and "reply", as the Mastodon and Bluesky connectors name them;
* ``created_at`` is the API's ``timestamp`` as UTC ISO and ``text`` the stripped ``text``,
  exactly what the export importer makes of ``creation_timestamp`` and the title, so an
  exported post (which has no id) lands on the API's row;
* replies others wrote are comments of the nearest of the owner's posts above them (the
  post, or one of the owner's own replies in the thread); people are keyed by username,
  the only name Threads gives for another person (no id, no picture);
* counts come from each post's insights: views, likes, replies (-> comment_count),
  reposts + quotes (-> share_count, as Bluesky's), shares (sends) kept in raw.
"""

from __future__ import annotations

import functools
import logging
from typing import Callable

from archiver.records import Comment, MediaRef, Person, Post, Profile, iso_utc
from archiver_connectors.meta.graph import GraphApi, GraphError, LongLivedTokens, error_class, scrubbed_payload

log = logging.getLogger("archiver.threads")

GRAPH_VERSION = "v1.0"
DEFAULT_SCOPES = "threads_basic,threads_read_replies,threads_manage_insights"
PAGE_LIMIT = 50
USER_FIELDS = "id,username,name,threads_profile_picture_url,threads_biography,is_verified"
CHILD_FIELDS = "id,media_type,media_url,thumbnail_url"
_COMMON = ("id,media_product_type,media_type,media_url,thumbnail_url,permalink,username,text,timestamp,shortcode,"
           "is_quote_post,quoted_post,alt_text,link_attachment_url,gif_url,poll_attachment,topic_tag,text_attachment,"
           "has_replies,reply_audience")
POST_FIELDS = f"{_COMMON},reposted_post,children{{{CHILD_FIELDS}}}"
REPLY_FIELDS = f"{_COMMON},is_reply,root_post,replied_to,hide_status,children{{{CHILD_FIELDS}}}"
COMMENT_FIELDS = ("id,text,timestamp,username,permalink,media_type,has_replies,is_reply,is_reply_owned_by_me,"
                  "root_post,replied_to,hide_status")
MEDIA_METRICS = "views,likes,replies,reposts,quotes,shares"
URL_FIELDS = ("media_url", "thumbnail_url", "threads_profile_picture_url", "gif_url")
SCOPE_FOR = {"replies": "threads_read_replies", "insights": "threads_manage_insights", "basic": "threads_basic"}


def scope_message(scope: str, what: str, account: str) -> str:
    return (f"Threads refused to give {what}: the authorization lacks the {scope} permission. Run "
            f"`archiver auth threads --account {account}` again and allow it.")


def is_permission(error: Exception) -> bool:
    return isinstance(error, GraphError) and error_class(error.code, error.subcode) == "permission"


# --------------------------------------------------------------------------- tokens


class ThreadsTokens(LongLivedTokens):
    """The 60-day Threads token (th_exchange_token), refreshed with th_refresh_token once
    less than 45 days are left and never before it is 24 hours old."""

    platform, title = "threads", "Threads"
    refresh_path = "refresh_access_token"
    refresh_grant = "th_refresh_token"


# --------------------------------------------------------------------------- the API


class ThreadsApi(GraphApi):
    """Graph calls for one Threads account."""

    title = "Threads"

    def __init__(self, graph_base: str, tokens: ThreadsTokens, **kwargs):
        super().__init__(graph_base, tokens, version=GRAPH_VERSION, **kwargs)
        # Threads serves all of a post's replies at once (/conversation) or a level at a
        # time (/replies) [U which]: the first refusal of /conversation switches to /replies.
        self.conversation = True

    def me(self) -> dict:
        return self.get("/me", {"fields": USER_FIELDS})

    def followers_count(self) -> int | None:
        body = self.get("/me/threads_insights", {"metric": "followers_count"})
        return user_metric(body, "followers_count")

    def edge_page(self, edge: str, after: str | None) -> dict:
        """One page of ``/me/threads`` or ``/me/replies``, newest first."""
        fields = POST_FIELDS if edge == "threads" else REPLY_FIELDS
        return self.get(f"/me/{edge}", {"fields": fields, "limit": PAGE_LIMIT, **({"after": after} if after else {})})

    def item(self, media_id: str, *, reply: bool = False) -> dict:
        return self.get(f"/{media_id}", {"fields": REPLY_FIELDS if reply else POST_FIELDS})

    def insights(self, media_id: str) -> dict[str, int]:
        return media_metrics(self.get(f"/{media_id}/insights", {"metric": MEDIA_METRICS}))

    def replies_below(self, media_id: str) -> list[dict]:
        """Every reply below ``media_id``: the flat /conversation, or (when Threads does
        not serve it) /replies level by level, never below the owner's own replies (those
        are posts whose replies are fetched with them)."""
        if self.conversation:
            try:
                return self._all(f"/{media_id}/conversation")
            except GraphError as error:
                if error.code != 100 or error_class(error.code, error.subcode) == "not_found":
                    raise
                log.info("Threads does not serve /conversation here (%s); reading replies level by level", error)
                self.conversation = False
        found: list[dict] = []
        todo = [media_id]
        while todo:
            for reply in self._all(f"/{todo.pop()}/replies"):
                found.append(reply)
                if reply.get("has_replies") is not False and not reply.get("is_reply_owned_by_me"):
                    todo.append(str(reply["id"]))
        return found

    def _all(self, path: str) -> list[dict]:
        found: list[dict] = []
        for items, _ in self.pages(path, {"fields": COMMENT_FIELDS, "limit": PAGE_LIMIT}):
            found.extend(items)
        return found

    def fresh_link(self, object_id: str, field: str) -> str | None:
        """A new signed CDN link for a post, a carousel child or ``me`` (``field``: media_url,
        thumbnail_url or threads_profile_picture_url), asked again because the old one was
        refused; one call per object and run."""
        fields = "threads_profile_picture_url" if object_id == "me" else "media_url,thumbnail_url,gif_url"
        value = self.fresh_object(object_id, fields).get(field)
        return value if isinstance(value, str) and value else None

    def refresher(self, object_id: str, field: str) -> Callable[[], str | None]:
        """The ``MediaRef.refresh`` hook for one file."""
        return functools.partial(self.fresh_link, object_id, field)


# --------------------------------------------------------------------------- insights


def media_metrics(body: dict) -> dict[str, int]:
    """Media insights: every metric's ``values[0].value`` (threads.md §2.3)."""
    found: dict[str, int] = {}
    for entry in body.get("data") or []:
        values = entry.get("values") or []
        value = values[0].get("value") if values and isinstance(values[0], dict) else None
        if isinstance(entry.get("name"), str) and isinstance(value, int):
            found[entry["name"]] = value
    return found


def user_metric(body: dict, name: str) -> int | None:
    """One user insight: ``total_value.value``; ``clicks`` the sum of ``link_total_values``;
    ``views`` (daily ``values``) their sum."""
    for entry in body.get("data") or []:
        if entry.get("name") != name:
            continue
        if isinstance((entry.get("total_value") or {}).get("value"), int):
            return entry["total_value"]["value"]
        parts = entry.get("link_total_values") or entry.get("values") or []
        numbers: list[int] = [p["value"] for p in parts if isinstance(p, dict) and isinstance(p.get("value"), int)]
        return sum(numbers) if numbers else None
    return None


# --------------------------------------------------------------------------- mapping

Refresher = Callable[[str, str], Callable[[], "str | None"]]

NO_MEDIA_URL_NOTE = "Threads gives no media_url for a file of this post: only what it gives is kept"


def profile_from_me(me: dict, followers: int | None, refresher: Refresher | None = None) -> Profile:
    username = me.get("username")
    avatar = me.get("threads_profile_picture_url")
    return Profile(
        native_id=str(me["id"]) if me.get("id") else None,
        username=username,
        display_name=me.get("name") or None,
        bio=me.get("threads_biography") or None,
        url=profile_url(username) if username else None,
        avatar=MediaRef(avatar, "avatar", refresh=refresher("me", "threads_profile_picture_url") if refresher else None)
        if avatar else None,
        followers=followers,
        raw=scrubbed_payload(me, URL_FIELDS),
    )


def profile_url(username: str) -> str:
    return f"https://www.threads.com/@{username}"


def post_kind(item: dict, *, reply: bool = False) -> str:
    media_type = item.get("media_type")
    if media_type == "REPOST_FACADE":
        return "boost"
    if reply or item.get("is_reply"):
        return "reply"
    if item.get("is_quote_post") or item.get("quoted_post"):
        return "quote"
    return {"CAROUSEL_ALBUM": "carousel", "VIDEO": "video", "IMAGE": "image", "AUDIO": "audio"}.get(
        str(media_type), "text")


def media_refs(item: dict, refresher: Refresher | None = None) -> list[MediaRef]:
    """The files of one post: the image or video (and a video's thumbnail), or each
    carousel child's at its position; each may ask for a fresh link to itself."""
    refs: list[MediaRef] = []
    children = (item.get("children") or {}).get("data") or []
    parts = children if item.get("media_type") == "CAROUSEL_ALBUM" and children else [item]
    for position, part in enumerate(parts):
        role = {"VIDEO": "video", "AUDIO": "audio"}.get(str(part.get("media_type")), "image")
        object_id = str(part.get("id") or item["id"])
        # A GIF post is a TEXT_POST with a gif_url (threads.md §2.1).
        for field, file_role in (("media_url", role), ("thumbnail_url", "thumbnail"), ("gif_url", "image")):
            if isinstance(part.get(field), str) and part[field]:
                hook = refresher(object_id, field) if refresher else None
                refs.append(MediaRef(part[field], file_role, position, refresh=hook,
                                     description=part.get("alt_text") or None))
    return refs


def post_from_thread(item: dict, refresher: Refresher | None = None, *, reply: bool = False,
                     metrics: dict[str, int] | None = None) -> Post:
    """One of the owner's posts or replies. ``metrics``: its insights, when asked."""
    kind = post_kind(item, reply=reply)
    raw = scrubbed_payload(item, URL_FIELDS)
    if metrics is not None:
        raw["insights"] = dict(metrics)
    media = [] if kind == "boost" else media_refs(item, refresher)
    parts = ((item.get("children") or {}).get("data") or []) if item.get("media_type") == "CAROUSEL_ALBUM" else [item]
    if kind != "boost" and any(p.get("media_type") in ("IMAGE", "VIDEO") and not p.get("media_url") for p in parts):
        raw["archiver_note"] = NO_MEDIA_URL_NOTE
    metrics = metrics or {}
    shares = [metrics[k] for k in ("reposts", "quotes") if k in metrics]
    return Post(
        native_id=str(item["id"]),
        created_at=iso_utc(item.get("timestamp")),
        kind=kind,
        text=(item.get("text") or "").strip() or None,
        url=item.get("permalink") or None,
        like_count=metrics.get("likes"),
        comment_count=metrics.get("replies"),
        share_count=sum(shares) if shares else None,
        view_count=metrics.get("views"),
        media=media,
        raw=raw,
    )


def person_of(username: str) -> Person:
    """Another Threads user, known by username only (keyed by it, as the export's lists)."""
    return Person(native_id=username, handle=username, url=profile_url(username), raw={"username": username})


def is_owners(reply: dict, owner_username: str | None) -> bool:
    return bool(reply.get("is_reply_owned_by_me")) or (
        owner_username is not None and reply.get("username") == owner_username)


def comments_below(post_id: str, replies: list[dict], owner_username: str | None) -> list[Comment]:
    """The replies others wrote that belong to the owner's post ``post_id``: those whose
    nearest owner's post above them is this one (one below an owner's reply in the thread
    belongs to that reply, itself a post, and is archived with it). ``parent_native_id``
    names the reply a reply answers; one answering the post itself has none."""
    by_id = {str(r["id"]): r for r in replies if r.get("id") is not None}
    owners = {post_id} | {i for i, r in by_id.items() if is_owners(r, owner_username)}
    comments = []
    for reply_id, reply in by_id.items():
        if reply_id in owners:
            continue
        parent = _parent(reply)
        above, seen = parent, set()
        while above is not None and above not in owners and above in by_id and above not in seen:
            seen.add(above)
            above = _parent(by_id[above])
        nearest = above if above in owners else post_id   # a chain leaving what we saw: the post's
        if nearest != post_id:
            continue
        username = reply.get("username")
        comments.append(Comment(
            native_id=reply_id,
            text=reply.get("text") or "",
            created_at=iso_utc(reply.get("timestamp")),
            post_native_id=post_id,
            author=person_of(username) if username else None,
            parent_native_id=parent if parent in by_id and parent not in owners else None,
            url=reply.get("permalink") or None,
            raw=scrubbed_payload(reply, URL_FIELDS),
        ))
    return comments


def _parent(reply: dict) -> str | None:
    replied_to = reply.get("replied_to")
    if isinstance(replied_to, dict) and replied_to.get("id") is not None:
        return str(replied_to["id"])
    return None


def time_of(item: dict) -> str:
    try:
        return iso_utc(item.get("timestamp")) or ""
    except (TypeError, ValueError):
        return ""
