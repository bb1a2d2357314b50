"""Facebook: a Page through the Graph API (posts with their files, comments with their
authors, counts, followers and fans as counts, profile picture and cover), the personal
profile's own posts through ``/me/posts``, and the "Download your information" export
for everything else of a profile (parsed in export.py).

An account with ``page = "<id or name>"`` is that Page; an account without it is the
person's own profile."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Iterator

from archiver.connector import ApiRate, Connector, Option
from archiver.records import Page, iso_utc

log = logging.getLogger("archiver.facebook")

RECENT_DAYS = 30     # counts (and comments) of posts this young are refreshed on every run
RECENT_BATCH = 25    # recent posts per page (each page commits with its comments)


class FacebookConnector(Connector):
    name = "facebook"
    title = "Facebook"
    post_noun = "posts"
    default_base_url = "https://graph.facebook.com"
    # Graph calls within one hour: 200 × the number of users, kept as 200 an hour per account.
    api_rate = ApiRate(per_minute=3, burst=20, per_user=True,
                       source="https://developers.facebook.com/docs/graph-api/overview/rate-limiting/")
    authorize_base_url = "https://www.facebook.com"   # the login window
    secret_keys = ("client_id", "client_secret", "tokens")
    auth_options = (
        Option("client_id", "Your Meta app's App ID (asked for when missing).", aliases=("client_key",)),
        Option("client_secret", "Your Meta app's App secret (asked for when missing; prefer the prompt).",
               secret=True),
    )
    config_options = (
        Option("page", "The Facebook Page this account archives, by id or name (leave it out for your own profile)."),
    )
    # A profile's export (a Page's archive needs none: export_only_holds_for).
    export_only_holds = ("friends, followers and following lists, and the comments and reactions you gave "
                         "(the API gives a profile's own posts only)")
    manual_export_steps = (
        "In Facebook (app or web): Accounts Center → Your information and permissions → Download your "
        "information → Download or transfer information → your Facebook profile → All available information → "
        "Download to device → Date range: All time, Format: JSON → Create files. When the zip (or its parts) "
        "is ready, download it and run `archiver import <file>` (or drop it in the inbox folder; keep the "
        "parts of one download together in one folder). It is the only source of your friends, followers, "
        "following and of the comments you wrote. Comments others wrote on your profile's posts are in "
        "neither the API nor the export.")

    @classmethod
    def export_only_holds_for(cls, options) -> str:
        """A Page's API gives all there is to archive of it: no export reminder for a Page."""
        return "" if (options or {}).get("page") else cls.export_only_holds

    # -- plumbing --------------------------------------------------------------------
    @property
    def page_wanted(self) -> str | None:
        """The Page this account archives, as the config names it (None: the profile)."""
        value = (self.account.options or {}).get("page")
        return str(value).strip() or None if value is not None else None

    def _hosts(self) -> tuple[str, str]:
        """(login window, graph) — both the base URL when one is configured (the fake, a proxy)."""
        if self.account.base_url:
            return self.base_url, self.base_url
        return self.authorize_base_url, self.base_url

    def _http(self):
        import httpx

        return httpx.Client(transport=self.transport, timeout=30)

    def _tokens(self):
        from archiver_connectors.facebook.api import FacebookTokens

        return FacebookTokens(self.secrets, self.account.name)

    def _api(self, cancel=None, tokens=None):
        from archiver_connectors.facebook.api import FacebookApi

        return FacebookApi(self._hosts()[1], tokens or self._tokens(), transport=self.transport, sleep=self.sleep,
                           cancel=cancel)

    # -- authorization ---------------------------------------------------------------
    def authorize(self, *, echo, open_browser=None, port: int = 0, prompt=None, client_id=None, client_secret=None,
                  timeout: float = 300):
        """Facebook Login with the person's own app (Development mode, notes §0): the code
        becomes a short-lived user token, that a long-lived one (about 60 days); a Page
        account then takes its Page's token from ``/me/accounts``."""
        from archiver.net.client import NetError
        from archiver.net.oauth import OAuthError, app_credentials, run_loopback_flow
        from archiver_connectors.facebook.api import (
            NEEDED,
            PAGE_SCOPES,
            PROFILE_SCOPES,
            authorize_url,
            strip_fragment,
        )

        account = self.account.name
        client_id, client_secret = app_credentials(
            self.secrets, "facebook", account, {"client_id": client_id, "client_secret": client_secret},
            prompt=prompt, missing=lambda key: f"no Facebook {key} for account {account!r} (the App ID and App "
                                               "secret from your Meta app's dashboard, Settings → Basic): run "
                                               "this command on a terminal to be asked for it")
        kind = "page" if self.page_wanted else "profile"
        scopes = self.account.scopes or (PAGE_SCOPES if kind == "page" else PROFILE_SCOPES)
        login, graph = self._hosts()
        result = run_loopback_flow(
            lambda redirect_uri, state: authorize_url(login, client_id=client_id, scopes=scopes,
                                                      redirect_uri=redirect_uri, state=state),
            open_browser=open_browser, echo=echo, port=port, timeout=timeout)
        code = strip_fragment(result.code)
        tokens = self._tokens()
        try:
            with self._http() as http:
                from archiver_connectors.facebook.api import exchange_for_user_token

                user = exchange_for_user_token(http, graph, client_id=client_id, client_secret=client_secret,
                                               redirect_uri=result.redirect_uri, code=code)
            api = self._api(tokens=tokens)
            try:
                record = api.account_record(user, kind=kind, page_wanted=self.page_wanted, account=account)
            finally:
                api.close()
        except NetError as error:
            raise OAuthError(str(error)) from None
        granted = set(filter(None, (record.get("permissions") or "").split(",")))
        missing = [p for p in NEEDED[kind] if granted and p not in granted]
        if missing:
            raise OAuthError(f"Facebook did not grant {', '.join(missing)} (account {account!r}): run "
                             f"`archiver auth facebook --account {account}` again and allow "
                             f"{'it' if len(missing) == 1 else 'them'} in the login window.")
        tokens.save(record)
        permissions = record.get("permissions") or "(not reported)"
        if kind == "page":
            comments = "" if not granted or "pages_read_user_content" in granted else (
                " Without pages_read_user_content the comments on the Page's posts are not archived: run this "
                "command again and allow it to have them.")
            moderate = "" if "MODERATE" in (record.get("tasks") or ["MODERATE"]) else (
                " You lack the MODERATE task on the Page: Facebook gives its comments without their ids.")
            return (f"Facebook Page {record['page_name']!r} ({record['page_id']}) authorized for account "
                    f"{account!r} as {record.get('user_name')} with permissions {permissions}. Its Page token has "
                    "no expiry date, but dies when you change your Facebook password, lose your role on the Page "
                    f"or remove the app: then run `archiver auth facebook` again.{comments}{moderate}")
        return (f"Facebook profile {record.get('user_name')!r} authorized for account {account!r} with permissions "
                f"{permissions}; the token is valid until {iso_utc(record['expires_at'])}. Facebook cannot renew "
                f"it: run `archiver auth facebook --account {account}` again before then (runs remind you from "
                "14 days before). The API gives your own posts only; request the \"Download your information\" "
                "export for the rest.")

    # -- API sync ----------------------------------------------------------------------
    def pages(self, ctx) -> Iterator[Page]:
        from archiver.sync.runner import RunFailed
        from archiver_connectors.facebook.api import expiry_note, page_named, profile_from_me, profile_from_page

        tokens = self._tokens()
        record = tokens.load()
        wanted = self.page_wanted
        stored_page = {"id": record.get("page_id"), "name": record.get("page_name")}
        if wanted and (record.get("kind") != "page" or page_named([stored_page], wanted) is None):
            raise RunFailed(f"account {self.account.name!r} archives the Facebook Page {wanted!r}, but the stored "
                            f"authorization is for {record.get('page_name') or 'a profile'!r}: run "
                            f"`archiver auth facebook --account {self.account.name}` again.")
        if not wanted and record.get("kind") == "page":
            raise RunFailed(f"account {self.account.name!r} has no `page` in its table, but the stored "
                            f"authorization is for the Page {record.get('page_name')!r}: add "
                            f"page = \"{record.get('page_id')}\" to it, or run `archiver auth facebook --account "
                            f"{self.account.name}` again for your profile.")
        note = expiry_note(self.account.name, tokens)
        if note:
            ctx.note(note)
        # A profile's token cannot be renewed by archiver: the alerts warn ahead of its end.
        expires_at = record.get("expires_at") if record.get("kind") != "page" else None
        ctx.authorization_expires(iso_utc(expires_at) if expires_at else None,
                                  f"run `archiver auth facebook --account {self.account.name}` again (Facebook "
                                  "user tokens last about 60 days and cannot be renewed)")
        api = self._api(cancel=ctx.cancel, tokens=tokens)
        try:
            if wanted:
                page_id = str(record["page_id"])
                profile = profile_from_page(self._the_page(api, page_id, record.get("page_name")), api.refresher)
                yield Page("profile", [profile])
                walker = _PostWalk(api, ctx, edge=f"/{page_id}/published_posts", owner_id=page_id, page=True)
            else:
                profile = profile_from_me(api.me())
                yield Page("profile", [profile])
                walker = _PostWalk(api, ctx, edge="/me/posts", owner_id=profile.native_id, page=False)
            yield from walker.run()
            yield from walker.recent()
        finally:
            api.close()

    def _the_page(self, api, page_id: str, name: str | None) -> dict:
        """The Page's profile; a Page Facebook no longer gives says so (nothing archived changes)."""
        from archiver.net.client import NetError

        try:
            return api.page(page_id)
        except NetError as error:
            if error.kind != "gone":
                raise
            raise NetError(f"Facebook no longer gives the Page {name!r} ({page_id}): deleted, unpublished or hidden "
                           f"from you ({error}). Nothing archived was changed; if the Page is back under another "
                           f"id, run `archiver auth facebook --account {self.account.name}` again.",
                           kind="gone", status=error.status) from None

    def refresh_media(self, post_ids: list[str]) -> dict[str, list]:
        """Fresh signed links for archived posts (``/{post-id}``, one call a post). A post
        Facebook no longer gives is absent; any other failure raises (the repair pass then
        tries the slots' own links)."""
        from archiver.net.client import NetError
        from archiver_connectors.facebook.api import post_from

        api = self._api(cancel=self.cancel)
        fresh: dict[str, list] = {}
        try:
            for post_id in post_ids:
                try:
                    item = api.post(post_id)
                except NetError as error:
                    if error.kind in ("gone", "client"):
                        continue
                    raise
                fresh[post_id] = post_from(item, api.refresher, api.video_source).media
        finally:
            api.close()
        return fresh

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.facebook.export import find_export

        return bool(find_export(source))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.facebook.export import export_pages

        yield from export_pages(source, ctx)


def _time_of(item: dict) -> str:
    """A listed post's time as UTC ISO text, "" when unreadable (its mapping reports it)."""
    try:
        return iso_utc(item.get("created_time")) or ""
    except (TypeError, ValueError):
        return ""


class _PostWalk:
    """The posts listing (``/{page-id}/published_posts`` or ``/me/posts``, newest first),
    walked by archiver.sync.listing (full or incremental, checkpoints, tombstones), with a
    Page post's comments in the same Page (one transaction: a crash never leaves listed
    posts whose comments were skipped). Cursors are opaque: how far back a page reached
    is the time of its oldest post."""

    def __init__(self, api, ctx, *, edge: str, owner_id: str | None, page: bool) -> None:
        self.api, self.ctx = api, ctx
        self.edge, self.owner_id, self.page = edge, owner_id, page
        self.listed: set[str] = set()
        self.reached_back: str | None = None   # the oldest post time this run's listing saw
        self.comments_refused = False
        self._said: set[str] = set()           # what was reported once this run
        self._stored_counts: dict[str, int | None] = {}

    def run(self) -> Iterator[Page]:
        from archiver.sync.listing import Batch, Listing

        def fetch(after):
            items, next_after = self.api.posts_page(self.edge, after)
            return Batch(items, next_after)

        def reached(batch):
            return min((_time_of(i) for i in batch.items), default="")

        walk = Listing(self.ctx, "posts", fetch=fetch, item_id=lambda item: str(item["id"]),
                       map_item=self._item_records, reached=reached, before_page=self._prepare)
        for page in walk.pages():
            self._note_reach(page)
            yield page
        self.listed = walk.listed

    def _note_reach(self, page: Page) -> None:
        from archiver.records import Post

        for record in page.records:
            if isinstance(record, Post) and record.created_at and (
                    self.reached_back is None or record.created_at < self.reached_back):
                self.reached_back = record.created_at

    # -- recent posts ------------------------------------------------------------------
    def recent(self) -> Iterator[Page]:
        """Counts of young posts change fastest, but an incremental listing stops at its
        first wholly known page. When it stopped short of ``RECENT_DAYS`` back, the edge
        is read again from the top down to that day (``since``; where the edge ignores
        it, the walk stops at the first older post): a new count sample where one
        changed, and the comments of posts whose comment count moved."""
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=RECENT_DAYS)
        cutoff = iso_utc(since)
        if self.reached_back is not None and self.reached_back <= cutoff:
            return   # the listing itself reached past it
        if not self.ctx.recent_post_ids(cutoff):
            return
        batch: list = []
        after = None
        while True:
            items, after = self.api.posts_page(self.edge, after, since=int(since.timestamp()))
            young = [i for i in items if _time_of(i) >= cutoff]
            batch.extend(i for i in young if str(i.get("id")) not in self.listed)
            done = after is None or len(young) < len(items)
            if batch and (done or len(batch) >= RECENT_BATCH):
                yield Page("recent", self._records(batch))
                batch = []
            if done:
                return

    # -- one page ----------------------------------------------------------------------
    def _prepare(self, items: list[dict]) -> None:
        ids = [str(i["id"]) for i in items]
        self._stored_counts = {post_id: row["comments"] for post_id, row in self.ctx.archived_posts(
            ids, {"comments": "comment_count"}).items()}

    def _records(self, items: list[dict]) -> list:
        """Posts read outside the listing (recent): one bad item is reported, never the page."""
        from archiver.net.client import NetError

        self._prepare(items)
        records = []
        for item in items:
            try:
                records.extend(self._item_records(item, every_comment=False))
            except Exception as error:
                if isinstance(error, NetError) and (error.kind in ("auth", "rate_limited") or error.retryable):
                    raise
                self.ctx.report(f"post {item.get('id')}", f"{type(error).__name__}: {error}")
        return records

    def _item_records(self, item: dict, every_comment: bool | None = None) -> list:
        from archiver_connectors.facebook.api import post_from

        post = post_from(item, self.api.refresher, self.api.video_source, public=self.page)
        post_id = str(post.native_id)
        note = post.raw.get("archiver_note")
        if note and post_id not in self._stored_counts:   # said once, when the post first arrives
            self.ctx.report(f"post {post_id}", note)
        if not self.page:
            return [post]   # a profile's API gives no comments by others (notes §0)
        count, known = post.comment_count, post_id in self._stored_counts
        stored = self._stored_counts.get(post_id)
        if count == 0 and not stored:
            return [post]   # none now and none archived: nothing to ask for
        every = self.ctx.full if every_comment is None else every_comment
        # Comments are read for new posts, changed counts, or every post in --full.
        if every or not known or stored != count:
            return [post, *self._comments(post_id)]
        return [post]

    def _say_once(self, key: str, message: str) -> None:
        """A line for the run's summary, once per run (the comments are kept: no error)."""
        if key not in self._said:
            self._said.add(key)
            self.ctx.note(message)

    def _comments(self, post_id: str) -> list:
        from archiver.net.client import NetError
        from archiver.records import CommentsListed
        from archiver_connectors.facebook.api import comment_from, permission_message

        if self.comments_refused:
            return []
        found = []
        unnamed = authorless = 0
        try:
            for item in self.api.comments(post_id):
                if not item.get("id"):
                    unnamed += 1
                if not (item.get("from") or {}).get("id"):
                    authorless += 1
                found.append(comment_from(item, post_id, self.owner_id))
        except NetError as error:
            if getattr(error, "code", None) in (10, 200) or (
                    getattr(error, "code", None) or 0) in range(200, 300):
                self.comments_refused = True
                self.ctx.report("comments", permission_message(self.api.tokens.account, "pages_read_user_content",
                                                               "list the comments of the Page's posts"))
                return []
            if error.kind in ("auth", "rate_limited") or error.retryable:
                raise
            self.ctx.report(f"comments of post {post_id}", str(error))
            return found
        if unnamed:
            self._say_once("unnamed", (
                "Facebook gives the Page's comments without their ids: the person who authorized lacks the "
                "MODERATE task on the Page (Page settings → Page access). They are kept, keyed by time, author "
                "and text, and never marked deleted; run `archiver auth facebook` again once the task is given."))
        if authorless:
            self._say_once("authorless", (
                "Facebook withholds the author of some comments (deleted or restricted people); those comments "
                "are kept without an author."))
        if unnamed:
            return found   # without ids, a listing cannot tell a deleted comment from an edited one
        return [*found, CommentsListed(post_id, [str(c.native_id) for c in found])]
