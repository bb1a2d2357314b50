"""Instagram: the Instagram API with Instagram Login (professional accounts: profile,
media with their files, comments on them with their authors) and the "Download your
information" export (everything, followers included; parsed in export.py)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Iterator, cast

from archiver.connector import ApiRate, Connector, Option, PostLimits
from archiver.records import Page, iso_utc

log = logging.getLogger("archiver.instagram")

RECENT_DAYS = 30     # counts (and comments) of media this young are refreshed on every run
RECENT_BATCH = 10    # recent media per page (each page commits with its comments)


class InstagramConnector(Connector):
    name = "instagram"
    title = "Instagram"
    # Graph calls within one hour: 200 × the number of users, kept as 200 an hour per account.
    api_rate = ApiRate(per_minute=3, burst=20, per_user=True, source="https://developers.facebook.com/docs/graph-api/overview/rate-limiting/")
    post_limits = PostLimits(
        "a post's or reel's caption", caption_chars=2200, hashtags_max=5, checked="2026-12-07",
        sources=("https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media",
                 "https://en.shiftdelete.net/an-era-is-ending-on-instagram-hashtag-limit-imposed"),
        notes="Five hashtags at most since December 2025 (the API's reference still says 30); links in a caption "
              "are not clickable.")
    post_noun = "posts"
    secret_keys = ("client_id", "client_secret", "tokens")
    default_base_url = "https://graph.instagram.com"
    auth_options = (
        Option("client_id", "Your Meta app's Instagram app ID (asked for when missing).", aliases=("client_key",)),
        Option("client_secret", "Your app's client secret (asked for when missing; prefer the prompt).",
               secret=True),
    )
    oauth_base_url = "https://api.instagram.com"        # the code exchange lives here
    authorize_base_url = "https://www.instagram.com"    # the login window
    export_only_holds = "followers and following lists"
    manual_export_steps = (
        "In Instagram (app or web): Accounts Center → Your information and permissions → "
        "Download your information → Download or transfer information → your Instagram account → "
        "All available information → Download to device → Date range: All time, Format: JSON → "
        "Create files. When the zip is ready (hours to days), download it and run "
        "`archiver import <file>` (or drop it in the inbox folder). It is the only source of your "
        "followers, following and your own comments."
    )

    # -- plumbing --------------------------------------------------------------------
    def _hosts(self) -> tuple[str, str, str]:
        """(login window, code exchange, graph) — all the base URL when one is configured
        (the fake, a proxy)."""
        if self.account.base_url:
            return self.base_url, self.base_url, self.base_url
        return self.authorize_base_url, self.oauth_base_url, self.base_url

    def _http(self):
        import httpx

        return httpx.Client(transport=self.transport, timeout=30)

    def _tokens(self):
        from archiver_connectors.instagram.api import InstagramTokens

        return InstagramTokens(self.secrets, self.account.name, self._hosts()[2], self._http())

    def _api(self, cancel=None):
        from archiver_connectors.instagram.api import InstagramApi

        return InstagramApi(self._hosts()[2], self._tokens(), transport=self.transport, sleep=self.sleep,
                            cancel=cancel)

    # -- authorization ---------------------------------------------------------------
    def authorize(self, *, echo, open_browser=None, port: int = 0, prompt=None, client_id=None, client_secret=None,
                  timeout: float = 300):
        from archiver.net.client import NetError
        from archiver.net.oauth import OAuthError, app_credentials, run_loopback_flow
        from archiver_connectors.instagram.api import (
            DEFAULT_SCOPES,
            PERSONAL_ACCOUNT_MESSAGE,
            authorize_url,
            exchange_code,
            long_lived,
        )

        account = self.account.name
        client_id, client_secret = app_credentials(
            self.secrets, "instagram", account, {"client_id": client_id, "client_secret": client_secret},
            prompt=prompt, missing=lambda key: f"no Instagram {key} for account {account!r} (the Instagram app "
                                               "ID and secret from your Meta app's dashboard): run this command "
                                               "on a terminal to be asked for it")
        scopes = self.account.scopes or DEFAULT_SCOPES
        login, oauth, graph = self._hosts()
        try:
            result = run_loopback_flow(
                lambda redirect_uri, state: authorize_url(login, client_id=client_id, scopes=scopes,
                                                          redirect_uri=redirect_uri, state=state),
                open_browser=open_browser, echo=echo, port=port, timeout=timeout)
        except OAuthError as error:
            if "professional" in str(error).lower():
                raise OAuthError(PERSONAL_ACCOUNT_MESSAGE) from None
            raise
        code = result.code.split("#", 1)[0]   # Meta appends "#_", which is not part of the code
        try:
            with self._http() as http:
                short, user_id, permissions = exchange_code(http, f"{oauth}/oauth/access_token", {
                    "client_id": client_id, "client_secret": client_secret,
                    "grant_type": "authorization_code", "redirect_uri": result.redirect_uri, "code": code})
                long = long_lived(http, graph, short, client_secret)
                tokens = self._tokens()
                stored = tokens.store(long, user_id=user_id, permissions=permissions)
                me = self._check_professional()
        except NetError as error:
            raise OAuthError(str(error)) from None
        granted = stored.get("permissions") or "(not reported)"
        return (f"Instagram account {account!r} (@{me.get('username')}, {me.get('account_type')}) authorized "
                f"with permissions {granted}; the token is valid until {iso_utc(stored['expires_at'])} "
                "and is renewed by the exports before then.")

    def _check_professional(self) -> dict:
        """/me after authorization: a personal account has no API and is told its path."""
        from archiver.net.client import NetError
        from archiver.net.oauth import OAuthError
        from archiver_connectors.instagram.api import PERSONAL_ACCOUNT_MESSAGE

        api = self._api()
        try:
            me = api.get("/me", {"fields": "user_id,username,account_type"})
        except NetError as error:
            if getattr(error, "code", None) == 10:
                raise OAuthError(PERSONAL_ACCOUNT_MESSAGE) from None
            raise
        finally:
            api.close()
        if str(me.get("account_type", "")).upper() == "PERSONAL":
            raise OAuthError(PERSONAL_ACCOUNT_MESSAGE)
        return me

    # -- API sync ----------------------------------------------------------------------
    def pages(self, ctx) -> Iterator[Page]:
        from archiver.sync.runner import RunFailed
        from archiver_connectors.instagram.api import PERSONAL_ACCOUNT_MESSAGE, profile_from_me

        api = self._api(cancel=ctx.cancel)
        try:
            me = api.me()
            if str(me.get("account_type", "")).upper() == "PERSONAL":
                raise RunFailed(PERSONAL_ACCOUNT_MESSAGE)
            profile = profile_from_me(me, api.refresher)
            if profile.native_id or profile.username:
                yield Page("profile", [profile])
            else:
                ctx.report("profile", "Instagram returned an empty profile; the archived one is kept as it was")
            walker = _MediaWalk(api, ctx, owner_id=profile.native_id, owner_username=profile.username)
            yield from walker.run()
            yield from walker.recent()
        finally:
            api.close()

    def refresh_media(self, post_ids: list[str]) -> dict[str, list]:
        """Fresh signed links for archived media, from the media id endpoint
        (``/{media-id}?fields=…``, one call a post; a carousel's children with it). A media
        item Instagram no longer gives (deleted, 404) is absent; any other failure stops
        the asking and raises, the repair pass then tries the slots' own links."""
        from archiver.net.client import NetError
        from archiver_connectors.instagram.api import post_from_media

        api = self._api(cancel=self.cancel)
        fresh: dict[str, list] = {}
        try:
            for media_id in post_ids:
                try:
                    item = api.media_item(media_id)
                    children = api.children(media_id) if item.get("media_type") == "CAROUSEL_ALBUM" and not (
                        item.get("children") or {}).get("data") else None
                except NetError as error:
                    if error.kind in ("gone", "client"):
                        continue
                    raise
                fresh[media_id] = post_from_media(item, children, api.refresher).media
        finally:
            api.close()
        return fresh

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.instagram.export import find_export

        return bool(find_export(source))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.instagram.export import export_pages

        yield from export_pages(source, ctx)


class _MediaWalk:
    """The media listing, newest first, walked by archiver.sync.listing (full or incremental,
    checkpoints, tombstones), with each item's comments in the same Page (one transaction:
    a crash never leaves listed media whose comments were skipped). Cursors are opaque, so
    how far back a page reached is the time of its oldest item.
    """

    def __init__(self, api, ctx, *, owner_id, owner_username) -> None:
        self.api, self.ctx = api, ctx
        self.owner_id, self.owner_username = owner_id, owner_username
        self.comments_refused = False
        self.listed: set[str] = set()   # media ids this run's listing returned
        self._stored_counts: dict[str, int | None] = {}
        self._already_archived: set[str] = set()
        self._archived_files: dict[str, int] = {}

    def run(self) -> Iterator[Page]:
        from archiver.sync.listing import Batch, Listing

        def fetch(after):
            items, next_after = self.api.media_page(after)
            return Batch(items, next_after)

        def reached(batch):
            return min((iso_utc(i.get("timestamp")) or "" for i in batch.items), default="")

        walk = Listing(self.ctx, "media", fetch=fetch, item_id=lambda item: str(item["id"]),
                       map_item=lambda item: self._item_records(item, every_comment=self.ctx.full),
                       reached=reached, before_page=self._prepare)
        yield from walk.pages()
        self.listed = walk.listed

    # -- recent media ------------------------------------------------------------------
    def recent(self) -> Iterator[Page]:
        """Counts of young media change fastest, but an incremental listing stops at its
        first wholly known page. Ask each media item of the last ``RECENT_DAYS`` days that
        this run's listing did not reach for its fields again (one call each: the notes
        know no batch read), record changed counts as a new sample, and fetch the comments
        of those whose ``comments_count`` moved. Files are downloaded again only for an
        item whose files are not all archived yet."""
        from archiver.net.client import NetError

        since = iso_utc(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=RECENT_DAYS))
        ids = [i for i in self.ctx.recent_post_ids(since) if i not in self.listed]
        batch: list[dict] = []
        for media_id in ids:
            try:
                batch.append(self.api.media_item(media_id))
            except NetError as error:
                if error.kind in ("auth", "rate_limited") or error.retryable:
                    raise
                # Deleted since, most likely; only a --full listing marks it deleted.
                self.ctx.report(f"media {media_id}", f"Instagram did not return it ({error}); "
                                "a `--full` export marks media that is gone as deleted")
                continue
            if len(batch) == RECENT_BATCH:
                yield Page("recent", self._records(batch, every_comment=False, files_if_missing=True))
                batch = []
        if batch:
            yield Page("recent", self._records(batch, every_comment=False, files_if_missing=True))
        if ids:
            log.info("asked Instagram again for %d recent media the listing did not reach (one call each)", len(ids))

    # -- one page ----------------------------------------------------------------------
    def _prepare(self, items: list[dict], *, files_if_missing: bool = False) -> None:
        """What the archive holds of a page's media, asked once for the page."""
        ids = [str(i["id"]) for i in items]
        self._stored_counts = {post_id: row["comments"] for post_id, row in self.ctx.archived_posts(
            ids, {"comments": "comment_count"}).items()}
        self._archived_files = self.ctx.stored_file_counts(ids) if files_if_missing else {}
        # Said once, when the post first arrives; the note stays in the post's raw payload.
        self._already_archived = self.ctx.known_post_ids(ids)

    def _records(self, items: list[dict], *, every_comment: bool, files_if_missing: bool = False) -> list:
        """Posts and the comments they need, for media asked for one by one (recent);
        one bad item is reported, never the whole page."""
        from archiver.net.client import NetError

        self._prepare(items, files_if_missing=files_if_missing)
        records = []
        for item in items:
            try:
                records.extend(self._item_records(item, every_comment=every_comment, files_if_missing=files_if_missing))
            except Exception as error:
                if isinstance(error, NetError) and error.kind in ("auth", "rate_limited"):
                    raise
                self.ctx.report(f"media {item.get('id')}", f"{type(error).__name__}: {error}")
        return records

    def _item_records(self, item: dict, *, every_comment: bool, files_if_missing: bool = False) -> list:
        """One media item's post and the comments it needs; raises when it cannot be mapped.
        ``files_if_missing``: drop the files of a post whose files are all archived already
        (no new download of a known video)."""
        from archiver_connectors.instagram.api import NO_MEDIA_URL_NOTE, post_from_media

        media_id = str(item["id"])
        children = None
        if item.get("media_type") == "CAROUSEL_ALBUM" and not (item.get("children") or {}).get("data"):
            children = self.api.children(media_id)   # the expansion was not served
        post = post_from_media(item, children, self.api.refresher)
        if files_if_missing and self._archived_files.get(media_id, 0) >= len(post.media):
            post.media = []
        elif post.raw.get("archiver_note") and media_id not in self._already_archived:
            self.ctx.report(f"media {media_id}", NO_MEDIA_URL_NOTE)
        count = item.get("comments_count")
        if count == 0:
            return [post]
        # Comments are fetched for new media, changed counts, or every media in --full.
        if every_comment or media_id not in self._stored_counts or self._stored_counts[media_id] != count:
            return [post, *self._comments(media_id)]
        return [post]

    def _comments(self, media_id: str) -> list:
        from archiver.net.client import NetError
        from archiver.records import CommentsListed
        from archiver_connectors.instagram.api import comments_from

        if self.comments_refused:
            return []
        found = []
        try:
            for comment in self.api.comments(media_id):
                found.extend(comments_from(comment, media_id, self.owner_id, self.owner_username))
        except NetError as error:
            if getattr(error, "code", None) == 10:
                self.comments_refused = True
                self.ctx.report("comments", "Instagram refused to list comments: the authorization lacks "
                                "instagram_business_manage_comments. Run `archiver auth instagram` again and "
                                "grant it.")
                return []
            if error.kind in ("auth", "rate_limited") or error.retryable:
                raise
            self.ctx.report(f"comments of media {media_id}", str(error))
            return found
        # A complete listing of the media's comments, every reply included (api.comments
        # follows the reply pages): those no longer listed were deleted.
        ids = cast(list[str], [c.native_id for c in found])   # comments_from names each by its id
        return [*found, CommentsListed(media_id, ids)]
