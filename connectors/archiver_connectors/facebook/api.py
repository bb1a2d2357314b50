"""Facebook through the Graph API: the stored tokens, the calls a run makes, and the
payload -> record mapping. See ../shared/platforms/facebook.md (§1 auth, §2 endpoints,
§5 errors); the Graph mechanics shared with Instagram and Threads (error codes, usage
pacing, paging, token scrubbing) are archiver_connectors.meta.graph.

Two kinds of account:

* a **Page** (``page = "<id or name>"`` in the account's table): the Page token from
  ``/me/accounts`` reads the Page, its published posts with their attachments and
  counts, and their comments with their authors. A Page token made from a long-lived
  user token has no expiry date; it dies when the person changes their password, loses
  the Page role or removes the app (190), and is then made again by `archiver auth`.
* the person's own **profile** (no ``page``): the long-lived user token (about 60 days,
  and Facebook has no refresh grant for it) reads ``/me/posts``: own posts and their
  counts. Comments by others, friends and followers come only from the "Download your
  information" export (export.py).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

import httpx

from archiver.net.client import NetError, scrubber
from archiver.net.tokens import StoredTokens
from archiver.records import Comment, MediaRef, Person, Post, Profile, iso_utc, visibility
from archiver_connectors.meta.graph import GraphApi, GraphError, error_class, next_cursor

log = logging.getLogger("archiver.facebook")

GRAPH_VERSION = "v25.0"
DAY = 86400
PAGE_SCOPES = "pages_show_list,pages_read_engagement,pages_read_user_content"
PROFILE_SCOPES = "user_posts,user_photos,user_videos"
# What each kind of account cannot do without (checked after `archiver auth`).
NEEDED = {"page": ("pages_show_list", "pages_read_engagement"), "profile": ("user_posts",)}
WARN_DAYS = 14          # a profile's token: every run says when it runs out from this many days before
PAGE_LIMIT = 50
COMMENT_LIMIT = 100

PAGE_FIELDS = "id,name,username,about,category,link,fan_count,followers_count,picture.type(large){url},cover{source}"
ME_FIELDS = "id,name,link"
SUBATTACHMENT_FIELDS = "media_type,type,media,url,target{id,url},description"
ATTACHMENT_FIELDS = (f"media_type,type,media,url,unshimmed_url,title,description,target{{id,url}},"
                     f"subattachments{{{SUBATTACHMENT_FIELDS}}}")
POST_FIELDS = ("id,message,story,created_time,updated_time,permalink_url,status_type,"
               f"attachments{{{ATTACHMENT_FIELDS}}},shares,"
               "reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0)")
# A profile's posts say who may see them (a Page's published posts are public).
PROFILE_POST_FIELDS = POST_FIELDS + ",privacy{value}"
# (records.visibility compares them without case, "_" read as a space.)
PRIVACY_WORDS = {"everyone": "public", "all friends": "friends", "friends of friends": "friends",
                 "self": "private"}   # CUSTOM (a list of people) has no word of the archive's
COMMENT_FIELDS = "id,message,created_time,from{id,name},parent{id},like_count,comment_count,attachment,permalink_url"

# Signed CDN links inside payloads: kept without their query (the signature expires).
CDN_KEYS = ("src", "source", "full_picture", "url")


def reauth_message(account: str, detail: str = "", page: str | None = None) -> str:
    whose = f"account {account!r}" + (f" (the Facebook Page {page!r})" if page else "")
    return (f"Facebook no longer accepts the stored authorization for {whose}"
            f"{' (' + detail + ')' if detail else ''}. Facebook tokens cannot be renewed once expired, "
            "or after a password change or a lost Page role: run "
            f"`archiver auth facebook --account {account}` again.")


def permission_message(account: str, permission: str, what: str) -> str:
    return (f"Facebook refused to {what}: the authorization of account {account!r} lacks the "
            f"{permission} permission. Run `archiver auth facebook --account {account}` again and grant it "
            "(your app must stay in Development mode with you as its administrator).")


# --------------------------------------------------------------------------- tokens


class FacebookTokens(StoredTokens):
    """The account's tokens in the SecretStore (one JSON record).

    ``access_token``: what data calls send — the Page token for a Page account, the
    long-lived user token for a profile. ``user_access_token`` and ``user_expires_at``:
    the long-lived user token (kept for a Page account too: it names the person who
    authorized). ``expires_at`` is None for a Page token (it has no expiry date).
    ``kind`` ("page" / "profile"), ``page_id``, ``page_name``, ``user_id``, ``user_name``,
    ``permissions``, ``tasks`` (the person's tasks on the Page).

    Nothing is ever refreshed: Facebook offers no refresh grant, so an expired or dead
    token means `archiver auth facebook` again (``reauth_message``).
    """

    platform, title = "facebook", "Facebook"

    def __init__(self, secrets, account: str, clock: Callable[[], float] = time.time):
        super().__init__(secrets, account)
        self.clock = clock

    def now(self) -> float:
        return self.clock()

    def refresh_due(self) -> bool:
        return False

    def access_token(self) -> str:
        """The token to send. Raises NetError(auth) once a profile's token has expired,
        without asking Facebook."""
        tokens = self.load()
        expires_at = tokens.get("expires_at")
        if expires_at is not None and expires_at <= self.now():
            raise NetError(reauth_message(self.account, f"the 60-day user token expired on {iso_utc(expires_at)}"),
                           kind="auth")
        return tokens["access_token"]

    def days_left(self) -> float | None:
        """Days until the token expires (None: a Page token, without an expiry date)."""
        expires_at = self.load().get("expires_at")
        return None if expires_at is None else (expires_at - self.now()) / DAY

    def _refresh_locked(self) -> None:
        raise NetError(reauth_message(self.account), kind="auth")


def expiry_note(account: str, tokens: FacebookTokens) -> str | None:
    """The line a run adds to its summary once a profile's token runs out within
    ``WARN_DAYS`` (None otherwise): Facebook cannot renew it, so the person must."""
    left = tokens.days_left()
    if left is None or left > WARN_DAYS:
        return None
    when = iso_utc(tokens.load()["expires_at"])
    return (f"The Facebook authorization of account {account!r} runs out on {when} (in {max(0, round(left))} "
            "days; Facebook user tokens last about 60 days and cannot be renewed): run "
            f"`archiver auth facebook --account {account}` again before then.")


# --------------------------------------------------------------------------- OAuth


def authorize_url(base: str, *, client_id: str, scopes: str, redirect_uri: str, state: str) -> str:
    """Facebook Login's dialog (notes §1.1)."""
    query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri, "state": state,
                       "scope": scopes, "response_type": "code"})
    return f"{base}/{GRAPH_VERSION}/dialog/oauth?{query}"


def strip_fragment(code: str) -> str:
    """Facebook appends ``#_=_`` to its redirect: never part of the code."""
    return code.split("#", 1)[0]


# --------------------------------------------------------------------------- mapping


def scrubbed(value: Any) -> Any:
    """A payload fit to keep: signed CDN links (``src``, ``source``, ``full_picture``,
    a picture's ``url``) lose their query, nested pages their ``paging`` (which holds the
    token); everything else stays as it came (a shared link's own URL keeps its query)."""
    if isinstance(value, list):
        return [scrubbed(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "paging":
            continue
        if key in CDN_KEYS and isinstance(item, str) and _is_cdn(item):
            out[key] = scrubber.url(item)
        else:
            out[key] = scrubbed(item)
    return out


def _is_cdn(url: str) -> bool:
    """A signed media link (``oe=`` expiry, or a fbcdn host), as opposed to a shared link."""
    return "oe=" in url or "fbcdn" in url or "/cdn/" in url


# Given by the API client: (object id, role, position) -> a hook asking Facebook for a
# fresh link to that file (a post's files: the post again; a Page's pictures: the Page).
Refresher = Callable[[str, str, int], Callable[[], "str | None"]]


def _count(node: Any) -> int | None:
    """``summary.total_count`` of a ``reactions`` / ``comments`` expansion."""
    if isinstance(node, dict) and isinstance(node.get("summary"), dict):
        value = node["summary"].get("total_count")
        return value if isinstance(value, int) else None
    return None


def profile_from_page(page: dict, refresher: Refresher | None = None) -> Profile:
    picture = ((page.get("picture") or {}).get("data") or {}).get("url")
    cover = (page.get("cover") or {}).get("source")
    page_id = str(page["id"])
    return Profile(
        native_id=page_id,
        username=page.get("username"),
        display_name=page.get("name"),
        bio=page.get("about"),
        url=page.get("link") or f"https://www.facebook.com/{page_id}",
        avatar=MediaRef(picture, "avatar", refresh=refresher(page_id, "avatar", 0) if refresher else None)
        if picture else None,
        banner=MediaRef(cover, "banner", refresh=refresher(page_id, "banner", 0) if refresher else None)
        if cover else None,
        followers=page.get("followers_count"),
        likes=page.get("fan_count"),   # a Page's fans are the people who like it
        raw=scrubbed(page),
    )


def profile_from_me(me: dict) -> Profile:
    return Profile(native_id=str(me["id"]), username=None, display_name=me.get("name"),
                   url=me.get("link"), raw=scrubbed(me))


def post_kind(item: dict) -> str:
    attachments = (item.get("attachments") or {}).get("data") or []
    if not attachments:
        return "text"
    kind = str(attachments[0].get("media_type") or attachments[0].get("type") or "").lower()
    if kind == "album":
        return "carousel"
    if kind.startswith("video"):
        return "video"
    if kind == "photo":
        return "image"
    if kind in ("link", "share"):
        return "link"
    return kind or "text"


def _is_video(part: dict) -> bool:
    return str(part.get("media_type") or part.get("type") or "").lower().startswith("video")


def media_refs(item: dict, refresher: Refresher | None = None,
               video_source: Callable[[str], str | None] | None = None) -> tuple[list[MediaRef], list[str]]:
    """The files of one post, each at its position: a photo; every photo and video of an
    album (``subattachments``); a video (``media.source``, else asked of the video node
    by ``video_source``) and its picture; a shared link's preview picture (role
    "thumbnail"). Returns the refs and notes on what could not be had (a video without a
    file). With a ``refresher``, each file can ask for a fresh link (the post read again)
    when its signed link has expired before the download."""
    refs: list[MediaRef] = []
    notes: list[str] = []
    post_id = str(item["id"])

    def ref(url: str, role: str, position: int) -> MediaRef:
        return MediaRef(url, role, position, refresh=refresher(post_id, role, position) if refresher else None)

    position = 0
    for attachment in (item.get("attachments") or {}).get("data") or []:
        subs = (attachment.get("subattachments") or {}).get("data") or []
        for part in subs or [attachment]:
            media = part.get("media") or {}
            image = (media.get("image") or {}).get("src")
            target = str((part.get("target") or {}).get("id") or "")
            if _is_video(part):
                source = media.get("source")
                if not source and target and video_source is not None:
                    source = video_source(target)
                if source:
                    refs.append(ref(source, "video", position))
                else:
                    notes.append(f"Facebook gave no file for the video at position {position}; its picture is kept")
                if image:
                    refs.append(ref(image, "thumbnail", position))
            elif image:
                kind = str(part.get("media_type") or part.get("type") or "").lower()
                refs.append(ref(image, "image" if kind in ("photo", "album", "cover_photo", "profile_media")
                                else "thumbnail", position))
            position += 1
    return refs, notes


def shared_link(item: dict) -> dict | None:
    """A link share's URL, title and description (notes §2.1), or None."""
    for attachment in (item.get("attachments") or {}).get("data") or []:
        if str(attachment.get("media_type") or attachment.get("type") or "").lower() in ("link", "share"):
            return {"url": attachment.get("unshimmed_url") or attachment.get("url"),
                    "title": attachment.get("title"), "description": attachment.get("description")}
    return None


def post_from(item: dict, refresher: Refresher | None = None,
              video_source: Callable[[str], str | None] | None = None, *, public: bool = True) -> Post:
    """One post of /{page-id}/published_posts or /me/posts. ``created_at`` and ``text``
    are exactly what the export importer gives for the same post (its time in UTC and
    ``message``), so the core makes one row of the two. ``shares`` is asked for on every
    read, and absent means never shared: 0 (Facebook omits it then, notes §2.1).
    ``public``: a Page's published post (public); a profile's post says who may see it in
    ``privacy.value``."""
    refs, notes = media_refs(item, refresher, video_source)
    raw = scrubbed(item)
    link = shared_link(item)
    if link:
        raw["archiver_link"] = link
    if notes:
        raw["archiver_note"] = "; ".join(notes)
    shares = item.get("shares")
    share_count = shares.get("count") if isinstance(shares, dict) else 0
    return Post(
        native_id=str(item["id"]),
        created_at=iso_utc(item.get("created_time")),
        kind=post_kind(item),
        text=item.get("message") or None,
        url=item.get("permalink_url"),
        title=(link or {}).get("title"),
        visibility=visibility("public") if public else visibility(
            (item.get("privacy") or {}).get("value"), PRIVACY_WORDS),
        like_count=_count(item.get("reactions")),
        comment_count=_count(item.get("comments")),
        share_count=share_count if isinstance(share_count, int) else None,
        media=refs,
        raw=raw,
    )


def person_from(who: Any) -> Person | None:
    if not isinstance(who, dict) or not who.get("id"):
        return None
    return Person(native_id=str(who["id"]), display_name=who.get("name"), raw=scrubbed(who))


def unnamed_comment_id(post_id: str, item: dict) -> str:
    """A stable key for a comment Facebook gave without its id (the Page token lacks the
    MODERATE task): its post, time, author and text."""
    who = (item.get("from") or {}).get("id") or ""
    basis = "\x1f".join([post_id, str(item.get("created_time") or ""), str(who), str(item.get("message") or "")])
    return "unnamed:" + hashlib.sha256(basis.encode()).hexdigest()[:20]


def comment_from(item: dict, post_id: str, owner_id: str | None) -> Comment:
    """One comment or reply of ``/{post-id}/comments?filter=stream`` (replies come flat,
    with ``parent``)."""
    author = person_from(item.get("from"))
    parent = (item.get("parent") or {}).get("id")
    return Comment(
        native_id=str(item["id"]) if item.get("id") else unnamed_comment_id(post_id, item),
        text=item.get("message") or "",
        created_at=iso_utc(item.get("created_time")),
        post_native_id=post_id,
        author=author,
        by_owner=bool(author and owner_id and author.native_id == owner_id),
        parent_native_id=str(parent) if parent else None,
        url=item.get("permalink_url"),
        raw=scrubbed(item),
    )


def page_named(pages: list[dict], wanted: str) -> dict | None:
    """The entry of ``/me/accounts`` that ``wanted`` names: by id, else by name (case
    and surrounding spaces ignored)."""
    wanted = wanted.strip()
    for page in pages:
        if str(page.get("id")) == wanted:
            return page
    folded = wanted.casefold()
    for page in pages:
        if str(page.get("name") or "").strip().casefold() == folded:
            return page
    return None


def not_managed_message(wanted: str, pages: list[dict], account: str) -> str:
    managed = ", ".join(f"{p.get('name')!r} ({p.get('id')})" for p in pages) or "none"
    return (f"the Facebook user who just logged in does not manage a Page {wanted!r} (account {account!r}); "
            f"the Pages they manage: {managed}. Set `page` in the account's table to one of them (id or name), "
            "or log in as a person with a role on that Page.")


# --------------------------------------------------------------------------- the API


def exchange_for_user_token(http: httpx.Client, graph: str, *, client_id: str, client_secret: str,
                            redirect_uri: str, code: str) -> dict:
    """Code -> short-lived user token -> long-lived user token (notes §1.2, §1.3); the
    long-lived answer (``access_token``, ``expires_in``). Neither step is retried: a code
    is single-use, and an expired short-lived token cannot be exchanged."""
    from archiver_connectors.meta.graph import exchange_code, exchange_long_lived

    url = f"{graph}/{GRAPH_VERSION}/oauth/access_token"
    short, _user_id, _permissions = exchange_code(http, url, {
        "client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect_uri, "code": code},
        title="Facebook", method="GET")
    return exchange_long_lived(http, url, {"grant_type": "fb_exchange_token", "client_id": client_id,
                                           "client_secret": client_secret, "fb_exchange_token": short},
                               title="Facebook")


# The permission each edge needs (notes §1.5), named when Facebook refuses with 10 / 2xx.
EDGE_PERMISSIONS = (
    ("/me/accounts", "pages_show_list", "list the Pages you manage"),
    ("/me/posts", "user_posts", "read your profile's posts"),
    ("/comments", "pages_read_user_content", "list the comments of the Page's posts"),
    ("/published_posts", "pages_read_engagement", "read the Page's posts"),
)


class FacebookApi(GraphApi):
    """Graph calls for one account: the Page or the profile, posts, comments, the fresh
    links of expired files, and the account's record after `archiver auth`."""

    title = "Facebook"

    def __init__(self, graph_base: str, tokens: FacebookTokens, **kwargs):
        super().__init__(graph_base, tokens, version=GRAPH_VERSION, **kwargs)
        self.token: str | None = None         # set during `archiver auth`, before anything is stored
        self._videos: dict[str, str | None] = {}

    def access_token(self) -> str:
        return self.token or self.tokens.access_token()

    def reauth_message(self, detail: str) -> str:
        try:
            record = self.tokens.load()
        except Exception:   # the message must come out whatever the store says
            record = {}
        page = record.get("page_name") or record.get("page_id") if record.get("kind") == "page" else None
        return reauth_message(self.tokens.account, scrubber.text(detail), page)

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict:
        """As GraphApi.get; a missing permission (10, 200–299) names the permission."""
        try:
            return super().get(path, params)
        except GraphError as error:
            if error_class(error.code, error.subcode) != "permission":
                raise
            # Another path (a post, a video) needs what the account's listing needs.
            page = not path.startswith("/me/") and self.token is None and self.tokens.load().get("kind") == "page"
            permission, what = next(((p, w) for edge, p, w in EDGE_PERMISSIONS if path.endswith(edge)),
                                    ("pages_read_engagement" if page else "user_posts", f"read {path}"))
            raised = GraphError(error.code, error.subcode, permission_message(self.tokens.account, permission, what),
                                kind="auth", status=error.status, path=path.split("/")[-1] or path,
                                title=self.title)
            raised.permission = permission   # type: ignore[attr-defined]
            raise raised from None

    # -- the account -------------------------------------------------------------------
    def page(self, page_id: str) -> dict:
        return self.get(f"/{page_id}", {"fields": PAGE_FIELDS})

    def me(self) -> dict:
        return self.get("/me", {"fields": ME_FIELDS})

    def account_record(self, user: dict, *, kind: str, page_wanted: str | None, account: str,
                       clock: Callable[[], float] = time.time) -> dict:
        """The record `archiver auth` stores, from the long-lived user token answer: who
        logged in, what they granted, and for a Page account the Page's own token from
        ``/me/accounts``. A Page the person does not manage is an OAuthError naming those
        they do."""
        from archiver.net.oauth import OAuthError

        now = clock()
        self.token = user["access_token"]
        try:
            me = self.get("/me", {"fields": "id,name"})
            granted = [p.get("permission") for p in self.get("/me/permissions").get("data") or []
                       if isinstance(p, dict) and p.get("status") == "granted"]
            expires_in = user.get("expires_in")
            record: dict[str, Any] = {
                "kind": kind, "user_id": str(me.get("id")), "user_name": me.get("name"),
                "user_access_token": user["access_token"],
                "user_expires_at": now + int(expires_in) if expires_in else None,
                "permissions": ",".join(p for p in granted if p), "issued_at": now,
            }
            if kind == "profile":
                return {**record, "access_token": user["access_token"], "expires_at": record["user_expires_at"]}
            managed: list[dict] = []
            for items, _ in self.pages("/me/accounts", {"fields": "id,name,access_token,tasks,category",
                                                        "limit": 100}):
                for entry in items:
                    scrubber.add(entry.get("access_token"))
                    managed.append(entry)
        finally:
            self.token = None
        chosen = page_named(managed, page_wanted or "")
        if chosen is None or not chosen.get("access_token"):
            raise OAuthError(not_managed_message(page_wanted or "", managed, account))
        return {**record, "access_token": chosen["access_token"], "expires_at": None,
                "page_id": str(chosen["id"]), "page_name": chosen.get("name"), "tasks": chosen.get("tasks") or []}

    # -- posts and comments ------------------------------------------------------------
    def posts_page(self, edge: str, after: str | None, *, since: int | None = None) -> tuple[list[dict], str | None]:
        fields = PROFILE_POST_FIELDS if edge.startswith("/me/") else POST_FIELDS
        body = self.get(edge, {"fields": fields, "limit": PAGE_LIMIT, **({"after": after} if after else {}),
                               **({"since": since} if since else {})})
        return body.get("data") or [], next_cursor(body)

    def post(self, post_id: str) -> dict:
        return self.get(f"/{post_id}", {"fields": POST_FIELDS})

    def comments(self, post_id: str) -> Iterator[dict]:
        """Every comment and reply of a post, oldest first: ``filter=stream`` gives the
        replies flat with ``parent`` (the default, ``toplevel``, would leave them out)."""
        for items, _ in self.pages(f"/{post_id}/comments", {"fields": COMMENT_FIELDS, "filter": "stream",
                                                            "order": "chronological", "limit": COMMENT_LIMIT}):
            yield from items

    def video_source(self, video_id: str, *, fresh: bool = False) -> str | None:
        """A video's file link from its node, when the attachment gave none (notes §2.1);
        asked once per run unless ``fresh`` (the link given earlier was refused)."""
        if fresh or video_id not in self._videos:
            value = self.get(f"/{video_id}", {"fields": "source"}).get("source")
            self._videos[video_id] = value if isinstance(value, str) and value else None
        return self._videos[video_id]

    # -- fresh links -------------------------------------------------------------------
    def fresh_link(self, object_id: str, role: str, position: int) -> str | None:
        """A new signed link for one file whose link was refused (notes §2.1: links expire;
        on a 403 read the post again): the post, or the Page for its picture and cover,
        asked once per run."""
        fields = "picture.type(large){url},cover{source}" if role in ("avatar", "banner") else POST_FIELDS
        body = self.fresh_object(object_id, fields)
        if role == "avatar":
            return ((body.get("picture") or {}).get("data") or {}).get("url")
        if role == "banner":
            return (body.get("cover") or {}).get("source")
        refs, _ = media_refs(body, None, functools.partial(self.video_source, fresh=True))
        return next((r.url for r in refs if r.role == role and r.position == position), None)

    def refresher(self, object_id: str, role: str, position: int) -> Callable[[], str | None]:
        return functools.partial(self.fresh_link, object_id, role, position)
