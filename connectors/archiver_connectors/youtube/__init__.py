"""YouTube: the Data API v3 (channel, uploads, counts, comments, public subscribers) under
a daily quota budget, Google Takeout imports (see takeout.py), and the Google Data
Portability API (EEA accounts): when the grant includes ``dataportability.youtube.*``
scopes, every ``archiver export`` also drives one archive job per resource group across
runs and imports the finished Takeout-style parts (see ``_portability``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Callable, Generator, Iterator

from archiver.connector import UTF8_BYTES, Connector, Option, PostLimits
from archiver.records import Page, iso_utc

log = logging.getLogger("archiver.youtube")

RECENT_DAYS = 30        # counts of uploads this young are refreshed once a day
# A time-based Data Portability grant may export again; archives hold every video file,
# so a new one is asked for this many days after the last (option portability_repeat_days).
PORTABILITY_REPEAT_DAYS = 30
PORTABILITY_ENDED = {"FAILED", "CANCELLED"}     # any other state word: keep polling


class YouTubeConnector(Connector):
    name = "youtube"
    title = "YouTube"
    post_limits = PostLimits(
        "Shorts: a video's title and description", caption_chars=5000, caption_unit=UTF8_BYTES, title_chars=100,
        hashtags_max=60, forbidden_chars="<>", checked="2026-12-07",
        sources=("https://developers.google.com/youtube/v3/docs/videos",
                 "https://support.google.com/youtube/answer/6390658"),
        notes="More than 60 hashtags and YouTube ignores them all; the first three show above the title.")
    post_noun = "videos"
    secret_keys = ("client_id", "client_secret", "tokens")
    default_base_url = "https://www.googleapis.com"
    auth_options = (
        Option("client_id", "Your Google OAuth client ID (a \"Desktop app\" client; asked for when missing).",
               aliases=("client_key",)),
        Option("client_secret", "Your app's client secret (asked for when missing; prefer the prompt).",
               secret=True),
    )
    config_options = (
        Option("quota_units", "The daily YouTube Data API quota a run may spend (default 10000).", type=int),
        Option("portability_repeat_days", "Days before a time-based Data Portability grant exports again.",
               type=float),
    )
    export_only_holds = "your video files, your own comments and your subscriptions"
    manual_export_steps = (
        "Go to https://takeout.google.com, press \"Deselect all\", tick \"YouTube and YouTube Music\" "
        "(under \"All YouTube data included\" keep videos, video metadata, comments, subscriptions and "
        "channels), choose \"Export once\", .zip, and create the export. When Google mails the links, "
        "download every part and run `archiver import` on each zip (or on the extracted folder). The API "
        "gives no video files and only public subscribers; Takeout has your uploaded video files."
    )

    # -- plumbing --------------------------------------------------------------------
    def _hosts(self) -> tuple[str, str, str]:
        """(API base, OAuth authorize base, token base). A base_url in the config (a proxy,
        the fake) serves all three."""
        from archiver_connectors.youtube import api

        if self.account.base_url:
            return self.base_url, self.base_url, self.base_url
        return api.API_BASE_URL, api.AUTHORIZE_BASE_URL, api.TOKEN_BASE_URL

    def _portability_base(self) -> str:
        """Data Portability lives on its own host; a base_url override serves it too."""
        from archiver_connectors.youtube import api

        return self.base_url if self.account.base_url else api.PORTABILITY_BASE_URL

    def _http(self):
        import httpx

        return httpx.Client(transport=self.transport, timeout=30)

    def _budget(self) -> int:
        from archiver_connectors.youtube.api import DEFAULT_DAILY_QUOTA

        try:
            return int(self.account.options.get("quota_units", DEFAULT_DAILY_QUOTA))
        except (TypeError, ValueError):
            return DEFAULT_DAILY_QUOTA

    # -- authorization -----------------------------------------------------------------
    def authorize(self, *, echo, open_browser=None, port: int = 0, prompt=None, client_id=None, client_secret=None,
                  timeout: float = 300):
        from archiver.net.oauth import OAuthError, app_credentials
        from archiver_connectors.youtube.api import PORTABILITY_SCOPES, SCOPE, YouTubeTokens, authorize_url

        account = self.account.name
        client_id, client_secret = app_credentials(
            self.secrets, "youtube", account, {"client_id": client_id, "client_secret": client_secret},
            prompt=prompt, missing=lambda key: f"no Google OAuth {key} for account {account!r}: create a "
                                               "\"Desktop app\" OAuth client in Google Cloud Console (YouTube Data "
                                               f"API v3 enabled) and pass --{key.replace('_', '-')}, or run this "
                                               "command on a terminal to be asked")
        _api_base, auth_base, token_base = self._hosts()
        scope = self.account.scopes or SCOPE
        if self.account.portability and "dataportability." not in scope:
            # EEA accounts: also the Data Portability groups archiver imports (notes §5).
            scope = " ".join([scope, *PORTABILITY_SCOPES])
        if self.account.portability:
            self._reset_portability_grant(echo, token_base)
        with self._http() as http:
            tokens = YouTubeTokens(self.secrets, account, f"{token_base}/token", http)
            body = tokens.authorize(
                lambda redirect_uri, state, challenge: authorize_url(
                    auth_base, client_id=client_id, redirect_uri=redirect_uri, state=state,
                    challenge=challenge, scope=scope),
                client_id=client_id, client_secret=client_secret,
                path="/", open_browser=open_browser, echo=echo, port=port, timeout=timeout)
            if "error" in body:
                raise OAuthError(f"Google refused the authorization: {body['error']}: "
                                 f"{body.get('error_description', '')}")
            if not body.get("refresh_token"):
                raise OAuthError("Google returned no refresh token; revoke archiver's access at "
                                 "https://myaccount.google.com/permissions and run `archiver auth youtube` again")
            granted = tokens.store(body)["scope"]
        return (f"YouTube account {account!r} authorized ({granted}). If your Google Cloud app is in "
                "\"Testing\" publishing status, Google ends this authorization after 7 days: publish the app.")

    def _reset_portability_grant(self, echo, token_base: str) -> None:
        """Before a new consent: a one-time Data Portability grant that was used stays
        "exhausted" until ``authorization:reset`` (notes §5), so a re-authorization alone
        would not renew it. The reset also revokes the old tokens, which this
        authorization replaces anyway. Best effort: no old grant, nothing to reset."""
        import json as _json

        from archiver.net.client import NetError
        from archiver_connectors.youtube.api import PortabilityApi, YouTubeTokens

        raw = self.secrets.get("youtube", self.account.name, "tokens")
        if not raw or "dataportability." not in (_json.loads(raw).get("scope") or ""):
            return
        tokens = YouTubeTokens(self.secrets, self.account.name, f"{token_base}/token", self._http())
        portability = PortabilityApi(self._portability_base(), tokens, transport=self.transport, sleep=self.sleep)
        try:
            portability.reset_authorization()
            echo("Reset the previous Data Portability grant (a used one-time grant is renewed by this consent).")
        except NetError as error:
            log.info("Data Portability reset before re-consent failed (%s); going on", error)
        finally:
            portability.close()

    # -- API sync ----------------------------------------------------------------------
    def pages(self, ctx) -> Iterator[Page]:
        from archiver.net.budget import BudgetSpent, run_daily_budget
        from archiver.net.client import NetError
        from archiver_connectors.youtube.api import YouTubeApi, YouTubeTokens, quota_meter

        api_base, _auth, token_base = self._hosts()
        # The quota belongs to the Google Cloud project of the OAuth client: in a fleet, every
        # account authorized through that client spends one counter (run_daily_budget).
        meter = run_daily_budget(quota_meter(self._budget(), ctx.state("quota")),
                                 project=self.secrets.get("youtube", self.account.name, "client_id") or self.account.name)
        tokens = YouTubeTokens(self.secrets, self.account.name, f"{token_base}/token", self._http())
        api = YouTubeApi(api_base, tokens, meter, transport=self.transport, sleep=self.sleep, cancel=ctx.cancel)
        try:
            for page in self._streams(api, ctx):
                # The units are saved before the page is written: a crash in between
                # over-counts (stops early), never under-counts (runs into the quota).
                ctx.save_state("quota", meter.state())
                yield page
            ctx.save_state("quota", meter.state())
        except BudgetSpent as stop:
            ctx.save_state("quota", meter.state())
            ctx.report("quota", f"{stop}. The daily quota budget is used up until midnight Pacific time; "
                       "the next run continues from where this one stopped.")
        except NetError:
            ctx.save_state("quota", meter.state())
            raise
        finally:
            api.close()
        # Data Portability spends no YouTube units: it runs even after the quota stop.
        yield from self._portability(ctx, token_base)

    def _streams(self, api, ctx) -> Iterator[Page]:
        from archiver.net.client import NetError
        from archiver_connectors.youtube.api import profile_from_channel

        api.meter.require(1)
        channel = api.channel()
        if not channel or not channel.get("id"):
            # Nothing to archive, and nothing to conclude from an empty answer.
            raise NetError("YouTube returned no channel for this Google account (channels.list mine=true is "
                           "empty): the channel may be deleted, or the wrong Google account was authorized. "
                           f"Nothing in the archive was changed. Run `archiver auth youtube --account "
                           f"{self.account.name}` with the channel's account.", kind="gone")
        yield Page("profile", [profile_from_channel(channel)])
        uploads = (channel.get("contentDetails") or {}).get("relatedPlaylists", {}).get("uploads")
        # A "pass" is every stream once. A pass cut off by the quota is continued by the next
        # run, skipping the streams it already finished: their top pages were paid for once.
        passing = ctx.state("pass") or {}
        if ctx.full and not passing.get("full"):
            passing = {}
        finished = set(passing.get("done") or [])
        full = bool(passing.get("full") or ctx.full)
        listed: set[str] = set()   # the ids the uploads listing gave: the recent counts skip them

        def uploads_listing() -> Iterator[Page]:
            nonlocal listed
            if uploads:
                listed = yield from self._uploads(api, ctx, uploads)

        streams: tuple[tuple[str, Callable[[], Iterator[Page]]], ...] = (
            ("uploads", uploads_listing),
            ("recent", lambda: self._recent_counts(api, ctx, skip=listed)),
            ("comments", lambda: self._comments(api, ctx, channel["id"])),
            ("subscribers", lambda: self._subscribers(api, ctx)),
        )
        for name, stream in streams:
            if name in finished:
                continue
            yield from stream()
            finished.add(name)
            ctx.save_state("pass", {"done": sorted(finished), "full": full})
        ctx.save_state("pass", None)   # a whole pass: the next run starts a new one

    # -- uploads -----------------------------------------------------------------------
    def _uploads(self, api, ctx, playlist_id: str) -> Generator[Page, None, set[str]]:
        """The uploads playlist, newest first, 50 a page + one videos.list for their details,
        walked by archiver.sync.listing. Incremental: stop at the first page that is wholly known;
        a walk cut off (quota, crash, stop) resumes at its page token next run, before
        anything else: its pages were never fetched, so nothing is paid twice. Page tokens
        are offsets: uploads added meanwhile shift the list down, giving an overlap, never a
        gap. A video the playlist lists but videos.list does not return is reported and
        never counted as deleted. Returns the ids listed."""
        from archiver.sync.listing import Batch, CursorRefused, Listing
        from archiver_connectors.youtube.api import YouTubeError, post_from_video

        def fetch(token):
            api.meter.require(2)   # a listing page is worth nothing without its videos.list
            try:
                ids, next_token = api.upload_ids(playlist_id, token)
            except YouTubeError as error:
                if error.reason == "invalidPageToken" and token:
                    raise CursorRefused(str(error)) from None
                raise
            videos = {v.get("id"): v for v in api.videos(ids)}
            return Batch([{"id": i, "video": videos.get(i)} for i in ids], next_token)

        def map_item(item):
            if item["video"] is None:
                raise LookupError("listed in the uploads playlist, but videos.list did not return it "
                                  "(private to another account, still processing, or removed since)")
            return [post_from_video(item["video"])]

        walk = Listing(ctx, "uploads", fetch=fetch, item_id=lambda item: item["id"], map_item=map_item,
                       resume_at_cursor=True)
        yield from walk.pages()
        return walk.listed

    def _recent_counts(self, api, ctx, skip: set[str]) -> Iterator[Page]:
        """Counts of young uploads the listing did not reach, refreshed once a Pacific day
        (so a run resumed after the quota stop does not pay for them again)."""
        from archiver_connectors.youtube.api import pacific_day, post_from_video

        state = ctx.state("recent") or {}
        if state.get("day") == pacific_day():
            return
        since = iso_utc(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=RECENT_DAYS))
        ids = [i for i in ctx.recent_post_ids(since) if i not in skip]
        for start in range(0, len(ids), 50):
            api.meter.require(1)
            posts = [post_from_video(v) for v in api.videos(ids[start:start + 50])]
            yield Page("recent", posts)
        yield Page("recent", [], {"day": pacific_day()})

    # -- comments ----------------------------------------------------------------------
    def _comments(self, api, ctx, channel_id: str) -> Iterator[Page]:
        """Every public thread on the channel (newest first), and every reply, walked by
        archiver.sync.listing as a listing of comments (stream "comment_threads").

        Each request is one listing page, so a walk stopped by the quota (or killed) pays
        for nothing twice: the cursor is the next thread page's token plus the threads whose
        replies are still to be fetched with comments.list (embedded replies are a subset),
        each with its reply page token; those are fetched before the next thread page.
        Incremental: a thread whose replies the archive already holds is not asked for
        them again, and the walk stops at the first thread page whose comments are all
        known (new replies on older threads wait for a full listing).
        Full: the whole channel listing, every reply fetched. Its last page marks deleted
        the comments it no longer lists, but only of the videos it covered (one of whose
        threads it listed: comments of a video made private or with comments turned off
        are not listed, and the API does not say which), within the core's share limit.
        """
        from archiver.sync.listing import Batch, CursorRefused, Listing
        from archiver_connectors.youtube.api import YouTubeError, comment_from_item

        def fetch(cursor):
            cursor = cursor or {"threads": None, "pending": [], "below": ""}
            if cursor["pending"]:
                return fetch_replies(cursor)
            api.meter.require(1)
            try:
                threads, next_token = api.thread_page(channel_id, cursor["threads"])
            except YouTubeError as error:
                if error.reason == "invalidPageToken" and cursor["threads"]:
                    raise CursorRefused(str(error)) from None
                raise
            archived = {} if ctx.full else ctx.archived_reply_counts(t.get("id") for t in threads)
            items, covered, unreadable, pending = [], [], [], []
            below = cursor["below"]
            for thread in threads:
                snippet = thread.get("snippet") or {}
                top = snippet.get("topLevelComment")
                if not top or not thread.get("id"):
                    unreadable.append((f"comment thread {thread.get('id')}", "no top-level comment in the answer"))
                    continue
                video_id = snippet.get("videoId")
                below = (top.get("snippet") or {}).get("publishedAt") or below
                embedded = (thread.get("replies") or {}).get("comments") or []
                items += [{"comment": c, "video": video_id, "thread": thread["id"] if c is not top else None}
                          for c in (top, *embedded)]
                total = int(snippet.get("totalReplyCount") or 0)
                if total > len(embedded) and (ctx.full or archived.get(thread["id"], 0) < total):
                    pending.append({"thread": thread["id"], "video": video_id, "token": None})
                if video_id:
                    covered.append((video_id, None))
            following = {"threads": next_token, "pending": pending, "below": below}
            return Batch(items, following, has_more=bool(pending or next_token), unreadable=unreadable,
                         covered=covered, unfinished=bool(pending))

        def fetch_replies(cursor):
            entry, rest = cursor["pending"][0], cursor["pending"][1:]
            api.meter.require(1)
            try:
                replies, next_reply = api.reply_page(entry["thread"], entry.get("token"))
            except YouTubeError as error:
                if error.reason != "commentNotFound":
                    raise
                # Deleted between the two calls: what it held is not known this time.
                replies, next_reply = [], None
                unreadable = [(f"replies of comment thread {entry['thread']}", str(error))]
            else:
                unreadable = []
            pending = ([{**entry, "token": next_reply}] if next_reply else []) + rest
            items = [{"comment": r, "video": entry.get("video"), "thread": entry["thread"]} for r in replies]
            following = {**cursor, "pending": pending}
            return Batch(items, following, has_more=bool(pending or cursor["threads"]), unreadable=unreadable,
                         unfinished=True)

        def map_item(item):
            comment = comment_from_item(item["comment"], owner_channel=channel_id, video_id=item["video"])
            if item.get("thread"):
                comment.parent_native_id = comment.parent_native_id or item["thread"]
            return [comment]

        walk = Listing(ctx, "comment_threads", fetch=fetch, item_id=lambda item: item["comment"]["id"],
                       map_item=map_item, listing_of="comment", resume_at_cursor=True,
                       reached=lambda batch: batch.next_cursor["below"])
        try:
            yield from walk.pages()
        except YouTubeError as error:
            if error.reason in ("commentsDisabled", "forbidden", "insufficientPermissions", "channelNotFound"):
                ctx.report("comments", f"comments skipped: {error}")
                return
            raise

    # -- subscribers -------------------------------------------------------------------
    def _subscribers(self, api, ctx) -> Iterator[Page]:
        """The public subscribers the API returns (limited: notes §0), as a dated snapshot
        marked partial, so nobody missing from it counts as lost. The list is read a page
        at a time through the core's staging (archiver.archive.lists): a walk stopped by the quota
        keeps its pages and continues from its page token next run."""
        from archiver.archive.lists import list_pages
        from archiver_connectors.youtube.api import YouTubeError, membership_from_subscription

        def fetch_page(token):
            api.meter.require(1)
            items, next_token = api.subscriber_page(token)
            return [m for m in map(membership_from_subscription, items) if m], next_token

        try:
            yield from list_pages(ctx, "followers", fetch_page, stream="subscribers",
                                  finish=lambda listed: (False, {"last_at": _now()}))
        except YouTubeError as error:
            if error.reason in ("subscriptionForbidden", "forbidden", "insufficientPermissions"):
                ctx.report("subscribers", f"subscribers skipped: {error}")
                return
            raise

    # -- Google Data Portability ----------------------------------------------------------
    def _portability(self, ctx, token_base: str) -> Iterator[Page]:
        """The Data Portability export (notes §5), driven a step per run.

        sync_state "portability" is one of:
        - a cycle in progress: ``{"grant", "started_at", "jobs": {group: {"id", "access_type",
          "parts_done": [...]}}}`` — one job per resource group (Google's advice), each
          polled every run until COMPLETE (imported, then dropped from ``jobs``) or
          FAILED/CANCELLED (reported, dropped, initiated again next run); ``pending`` lists
          the groups still to finish in this cycle;
        - a finished cycle: ``{"grant", "completed_at", "access_type", "groups"}``;
        - a refused grant: ``{"grant", "exhausted_at"}``.
        ``grant`` is when the refresh token was issued: a new consent (``archiver auth
        youtube``) changes it, and a new grant may export again at once.
        """
        from archiver_connectors.youtube.api import PortabilityApi, YouTubeTokens, portability_groups

        tokens = YouTubeTokens(self.secrets, self.account.name, f"{token_base}/token", self._http())
        stored = tokens.load()
        groups = portability_groups(stored.get("scope"))
        if not groups:
            tokens.client.close()
            if self.account.portability:
                ctx.report("portability", "the stored grant has no Data Portability (dataportability.youtube.*) "
                           f"scope; run `archiver auth youtube --account {self.account.name}` again with "
                           "portability = true (EEA accounts only)")
            return
        grant = stored.get("refresh_issued_at")
        portability = PortabilityApi(self._portability_base(), tokens, transport=self.transport,
                                     sleep=self.sleep, cancel=ctx.cancel, links=self.link_policy())
        try:
            state = ctx.state("portability") or {}
            if "jobs" not in state:
                if not self._portability_due(state, grant):
                    return
                state = {"grant": grant, "started_at": _now(), "jobs": {}, "pending": groups}
            state = self._initiate_jobs(portability, ctx, state)
            if state is None:
                return
            for group in list(state["jobs"]):
                state = yield from self._poll_job(portability, ctx, state, group)
            if not state["pending"]:
                yield Page("portability", [], {"grant": state["grant"], "completed_at": _now(),
                                               "access_type": state.get("access_type"),
                                               "groups": sorted(state.get("done") or [])})
        finally:
            portability.close()

    def _portability_due(self, state: dict, grant) -> bool:
        """Whether a new export cycle starts now."""
        from archiver_connectors.youtube.api import ACCESS_ONE_TIME

        if not state or state.get("grant") != grant:
            return True             # never exported, or a new consent since
        if state.get("exhausted_at"):
            return False            # reported when it was refused; waits for a new consent
        if state.get("access_type") == ACCESS_ONE_TIME:
            return False            # this grant's one export is done
        try:
            days = float(self.account.options.get("portability_repeat_days", PORTABILITY_REPEAT_DAYS))
        except (TypeError, ValueError):
            days = PORTABILITY_REPEAT_DAYS
        completed = state.get("completed_at")
        if not completed:
            return True
        age = dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(completed.replace("Z", "+00:00"))
        return age >= dt.timedelta(days=days)

    def _initiate_jobs(self, portability, ctx, state: dict) -> dict | None:
        """One initiate per group of the cycle that has no job yet; each job id is saved
        the moment Google returns it (a crash must not orphan a job). None when the grant
        was refused (state then says so)."""
        from archiver_connectors.youtube.api import PORTABILITY_REFUSED_STATUSES, PortabilityError

        for group in state["pending"]:
            if group in state["jobs"]:
                continue
            try:
                answer = portability.initiate([group])
            except PortabilityError as error:
                if error.status_word not in PORTABILITY_REFUSED_STATUSES and error.status not in (400, 403):
                    raise
                ctx.report("portability", f"Google refused a new Data Portability export of {group} ({error}). "
                           "A one-time Data Portability grant is used up by one export. To renew it, run "
                           f"`archiver auth youtube --account {self.account.name}` again: that resets the used "
                           "grant (Google's authorization:reset) and asks for your consent again; the next "
                           "`archiver export --platform youtube` then starts a new export.")
                if state["jobs"]:
                    state["pending"] = [g for g in state["pending"] if g in state["jobs"]]
                    ctx.save_state("portability", state)   # jobs already started still finish
                    return state
                ctx.save_state("portability", {"grant": state.get("grant"), "exhausted_at": _now()})
                return None
            state["jobs"][group] = {"id": str(answer["archiveJobId"]), "initiated_at": _now(), "parts_done": []}
            state["access_type"] = answer.get("accessType") or state.get("access_type")
            ctx.save_state("portability", state)
            log.info("started a Data Portability export of %s (job %s)", group, answer["archiveJobId"])
        return state

    def _poll_job(self, portability, ctx, state: dict, group: str) -> Generator[Page, None, dict]:
        """Ask for one job's state; import it when COMPLETE. Returns the new state."""
        from archiver.net.client import NetError
        from archiver_connectors.youtube.api import PortabilityError

        job = state["jobs"][group]

        def forget(message: str) -> dict:
            ctx.report("portability", message)
            del state["jobs"][group]
            ctx.save_state("portability", state)
            return state

        try:
            answer = portability.archive_state(job["id"])
        except PortabilityError as error:
            if error.kind not in ("client", "gone"):
                raise
            # Google no longer knows (or refuses) this job: asking again each run would
            # fail the same way. Forget it; the group is initiated again next run.
            return forget(f"checking the Data Portability job {job['id']} ({group}) failed ({error}); "
                          "a new export of it is started next run")
        word = str(answer.get("state") or "STATE_UNSPECIFIED").upper()
        if word in PORTABILITY_ENDED:
            return forget(f"the Data Portability export of {group} (job {job['id']}) ended as {word}; "
                          "a new one is started next run")
        if word != "COMPLETE":
            log.info("Data Portability job %s (%s) is %s; checking again next run", job["id"], group, word)
            return state
        urls = [u for u in answer.get("urls") or [] if isinstance(u, str)]
        try:
            paths = self._download_parts(portability, ctx, job, urls)
        except NetError as error:
            # An expired (or refused) signed link: the job stays; the next run's poll
            # brings fresh links.
            ctx.report("portability", f"downloading the export of {group} (job {job['id']}) failed: {error}. "
                       "The job is kept; the next run asks Google for fresh download links.")
            return state
        try:
            yield from self._import_parts(ctx, state, group, paths)
        finally:
            for path in paths.values():
                path.unlink(missing_ok=True)
        return state

    def _download_parts(self, portability, ctx, job: dict, urls: list[str]) -> dict:
        """Every part not imported yet, streamed to the run's own temporary folder; signed
        links expire, so all are fetched before any import starts. part key -> path."""
        from archiver.net.client import scrubber

        folder = ctx.temp_folder
        paths: dict = {}
        try:
            for number, url in enumerate(urls, start=1):
                key = scrubber.url(url)     # the link without its signature: stable across polls
                signature = dict(p.split("=", 1) for p in url.partition("?")[2].split("&") if "=" in p)
                scrubber.add(signature.get("X-Goog-Signature"))
                if key in job["parts_done"]:
                    continue
                path = folder / f"youtube-portability-{job['id']}-{number:03d}.zip"
                with open(path, "wb") as handle:
                    paths[key] = path
                    portability.download(url, handle, limits=ctx.download_limits, clock=ctx.download_clock,
                                         cancel=ctx.cancel)
        except BaseException:
            for path in paths.values():
                path.unlink(missing_ok=True)
            raise
        return paths

    def _import_parts(self, ctx, state: dict, group: str, paths: dict) -> Iterator[Page]:
        """Import the parts like hand-downloaded Takeout zips (provenance: each file's
        sha256). Parts holding a CSV go first: a part with only video files is matched
        through them. One still waiting for its metadata is tried again after the rest."""
        from archiver.sync.imports import not_read_note, open_export
        from archiver_connectors.youtube.takeout import VideosAwaitingMetadata, takeout_pages

        job = state["jobs"][group]
        order = sorted(paths, key=lambda key: (not _holds_csv(paths[key]), key))
        videos = {key: _video_names(paths[key]) for key in paths}
        waiting: list = []
        for attempt in (1, 2):
            for key in order:
                with open_export(paths[key]) as source:
                    provenance = f"export:{source.sha256}"
                    # An upload whose file another part of this job holds is no hole.
                    elsewhere = [name for other, names in videos.items() if other != key for name in names]
                    try:
                        for page in takeout_pages(source, ctx, videos_elsewhere=elsewhere):
                            page.source = provenance
                            yield page
                    except VideosAwaitingMetadata as error:
                        if attempt == 1:
                            waiting.append(key)
                            continue
                        ctx.report("portability", str(error))
                    if source.not_read():   # said in the run's summary, never silently dropped
                        # The part itself is removed once imported: Google's archive keeps them.
                        ctx.note(f"Data Portability export of {group}: " + not_read_note(
                            source.not_read(), kept="Google keeps them in the archive until its links expire; "
                                                    "a Takeout export has them too"))
                job["parts_done"].append(key)   # a crash after this part re-imports none of it
                yield Page("portability", [], _copy(state))
            order, waiting = waiting, []
            if not order:
                break
        del state["jobs"][group]
        state["pending"] = [g for g in state["pending"] if g != group]
        state["done"] = sorted({*(state.get("done") or []), group})
        yield Page("portability", [], _copy(state))
        log.info("imported the Data Portability export of %s", group)

    # -- Google Takeout ------------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.youtube.takeout import find_takeout

        return find_takeout(source) is not None

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.youtube.takeout import takeout_pages

        yield from takeout_pages(source, ctx)


def _now() -> str:
    return iso_utc(dt.datetime.now(dt.timezone.utc))  # type: ignore[return-value]


def _copy(state: dict) -> dict:
    """A page's state is written when the page is; the live dict goes on changing."""
    import json

    return json.loads(json.dumps(state))


def _video_names(path) -> list[str]:
    """The video files a downloaded archive part holds (names only)."""
    import os
    import zipfile

    from archiver_connectors.youtube.takeout import VIDEO_EXTENSIONS

    try:
        with zipfile.ZipFile(path) as archive:
            return [n for n in archive.namelist() if os.path.splitext(n)[1].lower() in VIDEO_EXTENSIONS]
    except (OSError, zipfile.BadZipFile):
        return []


def _holds_csv(path) -> bool:
    """Whether a downloaded archive part holds any CSV file (names only)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.lower().endswith(".csv") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
