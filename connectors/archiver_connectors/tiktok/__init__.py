"""TikTok: the Display API (profile, public videos, counts), the Data Portability API
(EEA/UK: the full export, followers included) and the "Download your data" export."""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Generator, Iterator

from archiver.connector import UTF16, ApiRate, Connector, Option, PostLimits
from archiver.records import Page, iso_utc
from archiver_connectors.tiktok.visibility import VISIBILITY_WORDS

log = logging.getLogger("archiver.tiktok")

RECENT_DAYS = 30          # counts of videos this young are refreshed on every run
# Data Portability categories each granted scope type covers (notes §4.1). Asking for a
# category the grant does not cover is refused as a whole (401 scope_not_authorized), so
# the request lists only what the user's scopes allow.
PORTABILITY_CATEGORIES_BY_TYPE = {
    "postsandprofile": ["profile", "video"],   # posts, profile, followers and following
    "activity": ["activity"],
}
PORTABILITY_DONE_STATUSES = {"expired", "cancelled", "canceled", "failed"}
PORTABILITY_REPEAT_DAYS = 7




class TikTokConnector(Connector):
    name = "tiktok"
    title = "TikTok"
    # 600 a minute for each endpoint, counted apart; the token and Data Portability endpoints share the API
    # host's 600. Whether TikTok counts per app or per user token is [U]: kept per app, which holds either way.
    api_rate = ApiRate(per_minute=600, burst=10, source="https://developers.tiktok.com/doc/tiktok-api-v2-rate-limit",
                       endpoints=("/v2/user/info/", "/v2/video/list/", "/v2/video/query/"))
    post_limits = PostLimits(
        "a video's caption", caption_chars=2200, caption_unit=UTF16, checked="2026-12-07",
        sources=("https://developers.tiktok.com/doc/content-posting-api-reference-direct-post",),
        notes="A photo post has a title of 90 characters and a description of 4,000 instead.")
    post_noun = "videos"
    visibility_words = VISIBILITY_WORDS
    secret_keys = ("client_key", "client_secret", "tokens")
    default_base_url = "https://open.tiktokapis.com"
    auth_options = (
        Option("client_key", "Your TikTok app's client key (asked for when missing).", aliases=("client_id",)),
        Option("client_secret", "Your app's client secret (asked for when missing; prefer the prompt).",
               secret=True),
    )
    config_options = (
        Option("pkce_encoding", 'How the PKCE challenge is written: "hex" (the default, what TikTok\'s desktop '
               'flow expects) or "base64url".'),
    )
    authorize_base_url = "https://www.tiktok.com"
    export_only_holds = "followers and following lists"
    manual_export_steps = (
        "In the TikTok app: Profile → ☰ → Settings and privacy → Account → Download your data → "
        "choose JSON, request it; when it is ready (hours to days) download the zip and run "
        "`archiver import <file>` (or drop it in the inbox folder)."
    )

    # -- plumbing --------------------------------------------------------------------
    def _token_url(self) -> str:
        return f"{self.base_url}/v2/oauth/token/"

    def _auth_base(self) -> str:
        return self.base_url if self.account.base_url else self.authorize_base_url

    def _http(self):
        import httpx

        return httpx.Client(transport=self.transport, timeout=30)

    def _api(self, cancel=None):
        from archiver_connectors.tiktok.api import TikTokApi, TikTokTokens

        tokens = TikTokTokens(self.secrets, self.account.name, self._token_url(), self._http())
        return TikTokApi(self.base_url, tokens, transport=self.transport, sleep=self.sleep, cancel=cancel)

    # -- authorization -----------------------------------------------------------------
    def authorize(self, *, echo, open_browser=None, port: int = 0, prompt=None, client_key=None, client_secret=None,
                  timeout: float = 300):
        from archiver.net.oauth import OAuthError, app_credentials
        from archiver_connectors.tiktok.api import DEFAULT_SCOPES, TikTokTokens, authorize_url

        account = self.account.name
        client_key, client_secret = app_credentials(
            self.secrets, "tiktok", account, {"client_key": client_key, "client_secret": client_secret},
            prompt=prompt, missing=lambda key: f"no TikTok {key} for account {account!r}: pass "
                                               f"--{key.replace('_', '-')} or run this command on a terminal "
                                               "to be asked for it")
        scopes = self.account.scopes or DEFAULT_SCOPES
        if self.account.portability and "portability." not in scopes:
            scopes += ",portability.postsandprofile.ongoing"
        encoding = self.account.options.get("pkce_encoding", "hex")
        with self._http() as http:
            tokens = TikTokTokens(self.secrets, account, self._token_url(), http)
            body = tokens.authorize(
                lambda redirect_uri, state, challenge: authorize_url(
                    self._auth_base(), client_key=client_key, scopes=scopes,
                    redirect_uri=redirect_uri, state=state, challenge=challenge),
                client_id=client_key, client_secret=client_secret, pkce_encoding=encoding,
                open_browser=open_browser, echo=echo, port=port, timeout=timeout)
            if "error" in body:
                hint = ""
                if body["error"] == "invalid_request" and "code" in body.get("error_description", "").lower():
                    other = "base64url" if encoding == "hex" else "hex"
                    hint = (f" TikTok did not accept the PKCE challenge; set pkce_encoding = \"{other}\" "
                            f"in [accounts.{account}] and run `archiver auth tiktok --account {account}` again.")
                raise OAuthError(f"TikTok refused the authorization: {body['error']}: "
                                 f"{body.get('error_description', '')}.{hint}")
            granted = tokens.store(body)["scope"]
        missing = sorted(set(scopes.split(",")) - set(granted.split(",")))
        note = f" (not granted: {', '.join(missing)})" if missing else ""
        return f"TikTok account {account!r} authorized with scopes {granted}{note}."

    # -- API sync ----------------------------------------------------------------------
    def pages(self, ctx) -> Iterator[Page]:
        api = self._api(cancel=ctx.cancel)
        try:
            profile = api.user_info()
            if profile.native_id or profile.username:
                yield Page("profile", [profile])
            else:
                # An empty answer says nothing about the account; never let it replace
                # the archived profile's raw payload.
                ctx.report("profile", "TikTok returned an empty profile; the archived one is kept as it was")
            listed = yield from self._video_pages(api, ctx)
            yield from self._recent_counts(api, ctx, skip=listed)
            if self.account.portability or any(s.startswith("portability.") for s in api.tokens.scopes):
                yield from self._portability(api, ctx)
        finally:
            api.close()

    def refresh_media(self, post_ids: list[str]) -> dict[str, list]:
        """Fresh cover links (they live about 6 hours) for archived videos, from
        /v2/video/query/ (20 ids a call). Videos TikTok no longer returns are absent."""
        from archiver_connectors.tiktok.api import post_from_video

        api = self._api(cancel=self.cancel)
        fresh: dict[str, list] = {}
        try:
            for videos in api.query_videos(list(post_ids)):
                for video in videos:
                    try:
                        post = post_from_video(video)
                    except Exception:  # noqa: BLE001 - one payload that cannot be mapped keeps its hole
                        continue
                    fresh[str(video["id"])] = post.media   # the post's native_id
        finally:
            api.close()
        return fresh

    def _video_pages(self, api, ctx) -> Generator[Page, None, set[str]]:
        """The videos, newest first, walked by archiver.sync.listing (full or incremental, its
        checkpoints, tombstones). TikTok's cursor is a time in milliseconds, so it also
        says how far back a page reached. Returns the ids listed."""
        from archiver.sync.listing import Batch, Listing
        from archiver_connectors.tiktok.api import post_from_video

        def fetch(cursor):
            videos, next_cursor, has_more = api.list_videos(cursor)
            return Batch(videos, next_cursor, has_more)

        walk = Listing(ctx, "videos", fetch=fetch, item_id=lambda video: str(video["id"]),
                       map_item=lambda video: [post_from_video(video)])
        yield from walk.pages()
        return walk.listed

    def _recent_counts(self, api, ctx, skip: set[str]) -> Iterator[Page]:
        """Counts of young videos change fastest: refresh them even when the listing
        stopped early. /v2/video/query/ also returns fresh cover links. Each video is
        mapped on its own: one TikTok sends broken is reported, never the others."""
        from archiver.sync.listing import map_items
        from archiver_connectors.tiktok.api import post_from_video

        since = iso_utc(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=RECENT_DAYS))
        ids = [i for i in ctx.recent_post_ids(since) if i not in skip]
        for videos in api.query_videos(ids):
            records, listed, unmapped = map_items(ctx, "recent", videos, item_id=lambda video: str(video["id"]),
                                                map_item=lambda video: [post_from_video(video)])
            if records or unmapped:
                yield Page("recent", records, listed=listed, unmapped=unmapped)

    def _portability(self, api, ctx) -> Iterator[Page]:
        """Request the full export, poll it across runs (the request id lives in
        sync_state), download it and import it like a hand-downloaded one."""
        from archiver_connectors.tiktok.api import TikTokError

        if not any(s.startswith("portability.") for s in api.tokens.scopes):
            ctx.report("portability", "the grant has no portability scope; run `archiver auth tiktok "
                       f"--account {self.account.name}` again with portability = true (EEA/UK accounts only)")
            return
        state = ctx.state("portability") or {}
        if not state.get("request_id"):
            if state.get("single_used") or _recent(state.get("completed_at"), PORTABILITY_REPEAT_DAYS):
                return
            try:
                request_id = api.portability_add(_portability_categories(api.tokens.scopes))
            except TikTokError as error:
                ctx.report("portability request", str(error))
                return
            state = {"request_id": request_id, "requested_at": iso_utc(dt.datetime.now(dt.timezone.utc))}
            ctx.save_state("portability", state)
            log.info("requested a TikTok data export (request %s)", request_id)
        request_id = state["request_id"]
        try:
            status = str(api.portability_check(request_id).get("status", ""))
        except TikTokError as error:
            if error.kind not in ("client", "gone"):
                raise
            # TikTok no longer knows (or refuses) this request id. Keeping it would fail
            # every later run the same way: forget it, ask afresh next run.
            ctx.report("portability", f"checking export request {request_id} failed ({error}); "
                       "a new one is made next run")
            ctx.save_state("portability", {})
            return
        if status.lower() in PORTABILITY_DONE_STATUSES:
            ctx.report("portability", f"the export request {request_id} ended as {status!r}; a new one is made next run")
            ctx.save_state("portability", {})
            return
        zip_path = ctx.temp_folder / f"tiktok-portability-{request_id}.zip"
        try:
            with open(zip_path, "wb") as handle:
                ready = api.portability_download(request_id, handle, limits=ctx.download_limits,
                                                 clock=ctx.download_clock, cancel=ctx.cancel)
        except BaseException:   # cut off, or the disk is full: no half zip is left behind
            zip_path.unlink(missing_ok=True)
            raise
        if not ready:
            zip_path.unlink(missing_ok=True)
            log.info("TikTok export %s not ready yet (status %r); checking again next run", request_id, status)
            return
        from archiver.sync.imports import open_export

        with open_export(zip_path) as source:
            # Written as an export (fills blanks, never overrides what the API said), with
            # the zip's sha256 as provenance, like a hand-downloaded export.
            provenance = f"export:{source.sha256}"
            for page in self.import_pages(source, ctx):
                page.source = provenance
                yield page
        single = any(s.endswith(".single") for s in api.tokens.scopes if s.startswith("portability."))
        final = {"completed_at": iso_utc(dt.datetime.now(dt.timezone.utc)), "single_used": single,
                 "last_request_id": request_id}
        yield Page("portability", [], final)
        os.unlink(zip_path)

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.tiktok.export import find_user_data

        return find_user_data(source) is not None

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.tiktok.export import export_pages

        yield from export_pages(source, ctx)


def _portability_categories(scopes: set[str]) -> list[str]:
    """The category_selection_list the granted portability scopes cover."""
    types = {s.split(".")[1] for s in scopes if s.startswith("portability.") and s.count(".") >= 2}
    if "all" in types:
        return ["all_data"]  # overrides every other category
    return [c for kind, categories in PORTABILITY_CATEGORIES_BY_TYPE.items() if kind in types
            for c in categories] or ["profile", "video"]


def _recent(when: str | None, days: int) -> bool:
    if not when:
        return False
    moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    return dt.datetime.now(dt.timezone.utc) - moment < dt.timedelta(days=days)

