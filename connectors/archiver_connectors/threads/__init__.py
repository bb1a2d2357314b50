"""Threads: the Threads API (posts with their files, the owner's replies, replies by
others under the owner's posts with their authors, counts, the follower count) and the
Threads files of Meta's "Download your information" export, alone or inside an
Instagram download (parsed in export.py; the only source of follower lists)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Iterator

from archiver.connector import EMOJI_AS_BYTES, ApiRate, Connector, Option, PostLimits
from archiver.records import Page, iso_utc

log = logging.getLogger("archiver.threads")

RECENT_DAYS = 30     # counts of posts this young are asked again on every run
RECENT_BATCH = 10    # recent posts per page
EDGES = ("threads", "replies")   # /me/threads (top-level posts, reposts) and /me/replies (the owner's replies)
DONE = "done"                    # an edge's place in the listing's cursor once it is read to its end


class ThreadsConnector(Connector):
    name = "threads"
    title = "Threads"
    # At least 48,000 calls a day per app-user pair (4,800 × impressions, 10 at least): 30 a minute stays within it.
    api_rate = ApiRate(per_minute=30, burst=10, per_user=True, source="https://developers.facebook.com/docs/threads/overview")
    post_limits = PostLimits(
        "a post's text and its topic tag", caption_chars=500, caption_unit=EMOJI_AS_BYTES, hashtags_max=1,
        topic_tag_chars=50, topic_tag_forbidden=".&", checked="2026-12-07",
        sources=("https://developers.facebook.com/documentation/threads/posts",),
        notes="A post has one topic tag: the first hashtag of its text, or the one chosen in the app.")
    post_noun = "posts"
    secret_keys = ("client_id", "client_secret", "tokens")
    default_base_url = "https://graph.threads.net"
    auth_options = (
        Option("client_id", "Your Meta app's Threads app ID (asked for when missing).", aliases=("client_key",)),
        Option("client_secret", "Your Threads app secret (asked for when missing; prefer the prompt).",
               secret=True),
    )
    authorize_base_url = "https://www.threads.net"   # the login window
    nested_export_folder = "threads"   # an Instagram download carries the Threads export in threads/
    export_only_holds = "followers and following lists (the Threads API gives only the follower count)"
    manual_export_steps = (
        "In Threads or Instagram: Accounts Center → Your information and permissions → Download your "
        "information → Download or transfer information → your Threads profile → All available information → "
        "Download to device → Date range: All time, Format: JSON → Create files. When it is ready (hours to "
        "days), download it and run `archiver import <file>` (or drop it in the inbox folder). If your Threads "
        "profile is linked to Instagram, the Threads files also arrive inside the Instagram download "
        "(its threads/ folder); importing that one file fills both accounts. It is the only source of your "
        "Threads followers and following."
    )

    # -- plumbing --------------------------------------------------------------------
    def _hosts(self) -> tuple[str, str]:
        """(login window, graph incl. the code exchange): the base URL for both when one is
        configured (the fake, a proxy)."""
        if self.account.base_url:
            return self.base_url, self.base_url
        return self.authorize_base_url, self.base_url

    def _http(self):
        import httpx

        return httpx.Client(transport=self.transport, timeout=30)

    def _tokens(self, clock=None):
        from archiver_connectors.threads.api import ThreadsTokens

        kwargs = {"clock": clock} if clock else {}
        return ThreadsTokens(self.secrets, self.account.name, self._hosts()[1], self._http(), **kwargs)

    def _api(self, cancel=None):
        from archiver_connectors.threads.api import ThreadsApi

        return ThreadsApi(self._hosts()[1], self._tokens(), transport=self.transport, sleep=self.sleep,
                          cancel=cancel)

    # -- authorization ---------------------------------------------------------------
    def authorize(self, *, echo, open_browser=None, port: int = 0, prompt=None, client_id=None, client_secret=None,
                  timeout: float = 300):
        from archiver.net.client import NetError
        from archiver.net.oauth import OAuthError, app_credentials, run_loopback_flow
        from archiver_connectors.meta.graph import authorize_url, exchange_code, exchange_long_lived
        from archiver_connectors.threads.api import DEFAULT_SCOPES

        account = self.account.name
        client_id, client_secret = app_credentials(
            self.secrets, "threads", account, {"client_id": client_id, "client_secret": client_secret},
            prompt=prompt, missing=lambda key: f"no Threads {key} for account {account!r} (the Threads app ID "
                                               "and secret from your Meta app's dashboard, use case \"Access the "
                                               "Threads API\"): run this command on a terminal to be asked for it")
        scopes = self.account.scopes or DEFAULT_SCOPES
        login, graph = self._hosts()
        result = run_loopback_flow(
            lambda redirect_uri, state: authorize_url(login, client_id=client_id, scopes=scopes,
                                                      redirect_uri=redirect_uri, state=state),
            open_browser=open_browser, echo=echo, port=port, timeout=timeout)
        code = result.code.split("#", 1)[0]   # Meta appends "#_", which is not part of the code
        try:
            with self._http() as http:
                short, user_id, _ = exchange_code(http, f"{graph}/oauth/access_token", {
                    "client_id": client_id, "client_secret": client_secret,
                    "grant_type": "authorization_code", "redirect_uri": result.redirect_uri, "code": code},
                    title="Threads")
                long = exchange_long_lived(http, f"{graph}/access_token", {
                    "grant_type": "th_exchange_token", "client_secret": client_secret, "access_token": short},
                    title="Threads")
                granted = _granted_scopes(http, graph, long["access_token"])
            stored = self._tokens().store(long, user_id=user_id, permissions=granted)
            api = self._api()
            try:
                me = api.get("/me", {"fields": "id,username"})
            finally:
                api.close()
        except NetError as error:
            raise OAuthError(str(error)) from None
        missing = [s for s in scopes.split(",") if granted is not None and s not in granted.split(",")]
        lost = {"threads_read_replies": "your replies and the replies to your posts",
                "threads_manage_insights": "counts (views, likes, replies, reposts) and the follower count"}
        warning = "".join(f" Not granted: {scope} — without it archiver cannot read {lost.get(scope, 'all it needs')}."
                          for scope in missing)
        if warning:
            warning += " Run this command again and allow it."
        return (f"Threads account {account!r} (@{me.get('username')}) authorized with permissions "
                f"{granted or '(not reported)'}; the token is valid until {iso_utc(stored['expires_at'])} and is "
                f"renewed by the exports before then.{warning}")

    # -- API sync ----------------------------------------------------------------------
    def pages(self, ctx) -> Iterator[Page]:
        from archiver.net.client import NetError
        from archiver_connectors.threads.api import (
            SCOPE_FOR,
            is_permission,
            profile_from_me,
            scope_message,
        )

        api = self._api(cancel=ctx.cancel)
        try:
            try:
                me = api.me()
            except NetError as error:
                if is_permission(error):
                    raise NetError(scope_message(SCOPE_FOR["basic"], "anything", self.account.name),
                                   kind="auth") from None
                raise
            self._say_when_authorization_ends(api.tokens, ctx)
            followers = None
            try:
                followers = api.followers_count()
            except NetError as error:
                if not is_permission(error):
                    raise
                ctx.report("follower count", scope_message(SCOPE_FOR["insights"], "the follower count",
                                                           self.account.name))
            profile = profile_from_me(me, followers, api.refresher)
            if profile.native_id or profile.username:
                yield Page("profile", [profile])
            else:
                ctx.report("profile", "Threads returned an empty profile; the archived one is kept as it was")
            walk = _ThreadsWalk(api, ctx, owner_username=profile.username, account=self.account.name)
            yield from walk.run()
            yield from walk.recent()
        finally:
            api.close()

    def _say_when_authorization_ends(self, tokens, ctx) -> None:
        """The token is renewed by the runs (refresh_when_left before its end), so it has no
        end to warn of; unless its renewal was due and did not happen (refused, failed):
        then the alerts warn ahead of the day it runs out."""
        record = tokens.load()
        stuck = record["expires_at"] - tokens.clock() < tokens.refresh_when_left
        ctx.authorization_expires(iso_utc(record["expires_at"]) if stuck else None,
                                  f"run `archiver auth threads --account {self.account.name}` again (Threads "
                                  "did not renew the token)")

    def refresh_media(self, post_ids: list[str]) -> dict[str, list]:
        """Fresh signed links for archived posts (``/{media-id}``, one call a post, its
        carousel children with it). A post Threads no longer gives is absent; any other
        failure stops the asking and raises, the repair pass then tries the slots' own links."""
        from archiver.net.client import NetError
        from archiver_connectors.threads.api import post_from_thread

        api = self._api(cancel=self.cancel)
        fresh: dict[str, list] = {}
        try:
            for media_id in post_ids:
                try:
                    item = api.item(media_id)
                except NetError as error:
                    if error.kind in ("gone", "client"):
                        continue
                    raise
                fresh[media_id] = post_from_thread(item, api.refresher).media
        finally:
            api.close()
        return fresh

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.threads.export import find_export

        return bool(find_export(source))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.threads.export import export_pages

        yield from export_pages(source, ctx)


def _granted_scopes(http, graph: str, token: str) -> str | None:
    """The scopes the person granted (``/debug_token``; the code exchange does not say),
    or None when Threads does not tell."""
    import httpx

    try:
        response = http.get(f"{graph}/debug_token", params={"input_token": token, "access_token": token})
        scopes = (response.json().get("data") or {}).get("scopes")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return ",".join(str(s) for s in scopes) if isinstance(scopes, list) else None


class _ThreadsWalk:
    """The owner's posts: ``/me/threads`` (top-level posts, reposts) and ``/me/replies``
    (the owner's replies) read side by side as ONE listing by archiver.sync.listing, a page
    of each edge per step, so a complete listing has seen both before it may mark any post
    deleted. The cursor holds each edge's place (``DONE`` once read to its end); how far
    back a step reached is the later of the edges' oldest times (everything newer is seen).

    Each post's insights (counts) and the replies others wrote under it come with it, in
    the same page: for a post new to the archive, on ``--full``, and when its reply count
    moved. A permission the authorization lacks (replies, insights) is said once and
    the rest goes on; a listing without the owner's replies marks nothing deleted.
    """

    def __init__(self, api, ctx, *, owner_username: str | None, account: str) -> None:
        self.api, self.ctx = api, ctx
        self.owner_username, self.account = owner_username, account
        self.refused: set[str] = set()        # scopes found missing in this run
        self.listed: set[str] = set()
        self._stored: dict[str, dict] = {}
        self._archived_files: dict[str, int] = {}
        self._young = iso_utc(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=RECENT_DAYS))

    # -- the listing -------------------------------------------------------------------
    def run(self) -> Iterator[Page]:
        from archiver.sync.listing import Listing

        walk = Listing(self.ctx, "posts", fetch=self._fetch, item_id=lambda pair: str(pair[1]["id"]),
                       map_item=lambda pair: self._records(pair[1], reply=pair[0] == "replies"),
                       reached=self._reached, before_page=self._prepare)
        yield from walk.pages()
        self.listed = walk.listed

    def _fetch(self, cursor: dict | None):
        from archiver.net.client import NetError
        from archiver.sync.listing import Batch
        from archiver_connectors.meta.graph import next_cursor

        places = dict(cursor or {})
        items: list[tuple[str, dict]] = []
        unreadable: list[tuple[str, str]] = []
        following: dict[str, str] = {}
        for edge in EDGES:
            place = places.get(edge)
            if place == DONE:
                following[edge] = DONE
                continue
            if edge == "replies" and "threads_read_replies" in self.refused:
                following[edge] = DONE   # (said as unreadable once, when refused)
                continue
            try:
                body = self.api.edge_page(edge, place)
            except NetError as error:
                if edge != "replies" or not self._refused(error, "threads_read_replies", "your replies"):
                    raise
                following[edge] = DONE
                unreadable.append(("the owner's replies", "the authorization lacks threads_read_replies"))
                continue
            items.extend((edge, item) for item in body.get("data") or [])
            following[edge] = next_cursor(body) or DONE
        more = any(place != DONE for place in following.values())
        return Batch(items, following if more else None, has_more=more, unreadable=unreadable)

    @staticmethod
    def _reached(batch) -> str:
        """Everything newer than this is seen: the later of the oldest times of the edges
        that go on (one read to its end is seen whole)."""
        from archiver_connectors.threads.api import time_of

        going_on = [edge for edge, place in (batch.next_cursor or {}).items() if place != DONE]
        oldest = [min((time_of(item) for e, item in batch.items if e == edge), default="") for edge in going_on]
        return max(oldest, default="")

    # -- one page ----------------------------------------------------------------------
    def _prepare(self, pairs: list) -> None:
        ids = [str(item["id"]) for _, item in pairs]
        self._stored = self.ctx.archived_posts(ids, {"replies": "comment_count", "kind": "kind"})

    def _records(self, item: dict, *, reply: bool, files_if_missing: bool = False) -> list:
        """One post's records: the post (with its counts when asked), and the replies by
        others under it with their complete listing when they may have changed."""
        from archiver.records import CommentsListed
        from archiver_connectors.threads.api import post_from_thread, time_of

        media_id = str(item["id"])
        stored = self._stored.get(media_id)
        boost = item.get("media_type") == "REPOST_FACADE"
        metrics = None
        # Counts come only from insights (one call a post): asked for new posts, on --full,
        # and for the young ones, whose counts still move.
        if not boost and (self.ctx.full or stored is None or files_if_missing or time_of(item) >= self._young):
            metrics = self._insights(media_id)
        post = post_from_thread(item, self.api.refresher, reply=reply, metrics=metrics)
        if files_if_missing and self._archived_files.get(media_id, 0) >= len(post.media):
            post.media = []
        records: list = [post]
        if boost or "threads_read_replies" in self.refused:
            return records
        count = (metrics or {}).get("replies")
        has_replies = item.get("has_replies")
        if has_replies is False or count == 0:
            return [*records, CommentsListed(media_id, [])] if stored and stored["replies"] else records
        changed = count is not None and (stored is None or stored["replies"] != count)
        if not (self.ctx.full or stored is None or changed):
            return records
        comments = self._comments(media_id)
        if comments is None:
            return records
        return [*records, *comments, CommentsListed(media_id, [str(c.native_id) for c in comments])]

    def _comments(self, media_id: str) -> list | None:
        """The replies others wrote under the post, or None when they cannot be listed."""
        from archiver.net.client import NetError
        from archiver_connectors.threads.api import comments_below

        try:
            return comments_below(media_id, self.api.replies_below(media_id), self.owner_username)
        except NetError as error:
            if self._refused(error, "threads_read_replies", "the replies to your posts"):
                return None
            if error.kind in ("auth", "rate_limited") or error.retryable:
                raise
            self.ctx.report(f"replies to post {media_id}", str(error))
            return None

    def _insights(self, media_id: str) -> dict | None:
        from archiver.net.client import NetError

        if "threads_manage_insights" in self.refused:
            return None
        try:
            return self.api.insights(media_id)
        except NetError as error:
            if self._refused(error, "threads_manage_insights", "counts (views, likes, replies, reposts)"):
                return None
            if error.kind in ("auth", "rate_limited") or error.retryable:
                raise
            self.ctx.report(f"counts of post {media_id}", str(error))
            return None

    def _refused(self, error, scope: str, what: str) -> bool:
        """A permission refusal: said once per run, and the scope remembered as missing."""
        from archiver_connectors.threads.api import is_permission, scope_message

        if not is_permission(error):
            return False
        if scope not in self.refused:
            self.refused.add(scope)
            self.ctx.report(what, scope_message(scope, what, self.account))
        return True

    # -- recent posts ------------------------------------------------------------------
    def recent(self) -> Iterator[Page]:
        """Counts of young posts change fastest, but an incremental listing stops at its
        first wholly known page: ask each post of the last ``RECENT_DAYS`` days that this
        run's listing did not reach again (itself and its insights: two calls; Threads
        has no batch read), with the replies under it when their count moved."""
        from archiver.net.client import NetError

        ids = [i for i in self.ctx.recent_post_ids(self._young) if i not in self.listed]
        if not ids:
            return
        kinds = self.ctx.archived_posts(ids, {"kind": "kind"})
        batch: list[tuple[str, dict]] = []
        for media_id in ids:
            if (kinds.get(media_id) or {}).get("kind") == "boost":
                continue   # a repost has no counts of its own
            reply = (kinds.get(media_id) or {}).get("kind") == "reply"
            try:
                batch.append(("replies" if reply else "threads", self.api.item(media_id, reply=reply)))
            except NetError as error:
                if error.kind in ("auth", "rate_limited") or error.retryable:
                    raise
                self.ctx.report(f"post {media_id}", f"Threads did not return it ({error}); a `--full` export "
                                "marks posts that are gone as deleted")
                continue
            if len(batch) == RECENT_BATCH:
                yield self._recent_page(batch)
                batch = []
        if batch:
            yield self._recent_page(batch)
        log.info("asked Threads again for %d recent posts the listing did not reach", len(ids))

    def _recent_page(self, batch: list[tuple[str, dict]]) -> Page:
        from archiver.sync.listing import map_items

        self._prepare(batch)
        self._archived_files = self.ctx.stored_file_counts([str(item["id"]) for _, item in batch])
        records, ids, unmapped = map_items(
            self.ctx, "recent", batch, item_id=lambda pair: str(pair[1]["id"]),
            map_item=lambda pair: self._records(pair[1], reply=pair[0] == "replies", files_if_missing=True))
        return Page("recent", records, listed=ids, unmapped=unmapped)
