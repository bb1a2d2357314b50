"""Pinterest: the owner's boards, board sections, Pins with their image and video files,
counts, follower and following lists and profile through API v5, within a daily request
budget (Trial access allows 1,000 requests a day), and the "Request your data" export
(one HTML file of `Key: value` blocks, parsed in export.py).

A run through the API (``pages``), every request charged to the day's budget before it
leaves (CDN downloads are free):

1. ``GET /v5/user_account``: the profile (with versions, by the core) and its counts.
2. ``GET /v5/boards`` (every page; secret boards with ``boards:read_secret``): a
   ``Collection`` per board; then ``GET /v5/boards/{id}/sections`` for a board that is new,
   whose Pins changed since its sections were read (``board_pins_modified_at``, ``pin_count``),
   that a Pin names an unknown section of, or every board on ``--full``.
3. ``GET /v5/pins`` (250 a page, ``pin_metrics=true``, ``include_protected_pins=true``): every
   Pin the person owns, through the core's listing walker. A Pin carries its board and
   section, so the boards' own Pin lists are never read. Incremental runs stop at the first
   page whose Pins are all known (Pins come newest first; a list seen oldest first is
   walked whole each run); ``--full`` marks Pins gone from a complete listing deleted, but
   never while the authorization cannot see secret Pins.
4. ``GET /v5/user_account/followers`` and ``/following`` (usernames only) as dated
   snapshots through the core's list staging, at most once in ``LIST_EVERY_HOURS`` (always on
   ``--full``).

A quiet incremental run (nothing new) makes three requests: /user_account, the first page
of /boards and the first page of /pins; no sections, no lists (read earlier that day), no
file downloads (the profile picture is fetched when its link changes, else once a day).

When the budget cannot pay for the next request the run stops cleanly, saying so; every
walk goes on from its checkpoint next day (a stream "quota" keeps what was spent, which
`archiver status` shows). A 429 from Pinterest ends the day the same way, unless it asks
for a short wait (Standard access's per-minute limits): that is waited out.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Iterator

from archiver.connector import ApiRate, Connector, Option, PostLimits
from archiver.records import ListKind, Page, iso_utc

log = logging.getLogger("archiver.pinterest")

LIST_EVERY_HOURS = 20        # followers / following are read once a day at most
REDIRECT_PORT = 8085         # the loopback port of the redirect URI registered with the app


class PinterestConnector(Connector):
    name = "pinterest"
    title = "Pinterest"
    # Standard access: 100 a second per user per app (Trial's 1,000 a day is the daily budget).
    api_rate = ApiRate(per_minute=6000, burst=10, per_user=True, source="https://developers.pinterest.com/docs/reference/ratelimits/")
    post_limits = PostLimits(
        "a Pin's title and description", caption_chars=500, title_chars=100, checked="2026-12-07", official=False,
        sources=("https://developers.pinterest.com/docs/api/v5/pins-create",),
        notes="The link a Pin leads to is its own field: paste the post's link there, not in the description.")
    post_noun = "Pins"
    default_base_url = "https://api.pinterest.com"
    secret_keys = ("client_id", "client_secret", "tokens")
    auth_options = (
        Option("client_id", "Your Pinterest app id (developers.pinterest.com → My apps; asked for when missing)."),
        Option("client_secret", "Your app's secret key (asked for when missing; prefer the prompt).", secret=True),
    )
    config_options = (
        Option("daily_requests", "API requests a day the runs may make together (default 1000, Trial access; "
                                 "0: no daily limit, Standard access).", type=int),
        Option("page_size", "Items per page asked of Pinterest (1 to 250, default 250).", type=int),
        Option("originals", "Download each image's full-resolution original (default true) rather than the "
                            "largest size the API lists.", type=bool),
    )
    export_only_holds = ""   # the API gives all the export has, and the files
    manual_export_steps = (
        "On pinterest.com: Settings → Privacy and data → Request your data; when Pinterest emails the link, "
        "download the file and run `archiver import <file>` (or drop it in the inbox folder). It lists your Pins "
        "by id with their boards (no image files: the import fetches them from Pinterest's image servers); the "
        "API, with your own app, gives the same and more."
    )

    # -- plumbing --------------------------------------------------------------------
    def _hosts(self) -> tuple[str, str]:
        """(API base, consent page base). A base_url in the config (a proxy, the
        simulator) serves both, and the files its answers link to."""
        from archiver_connectors.pinterest import api

        if self.account.base_url:
            return self.base_url, self.base_url
        return api.API_BASE_URL, api.AUTHORIZE_BASE_URL

    def _option(self, key: str, default: Any) -> Any:
        value = self.account.options.get(key, default)
        return default if value is None else value

    def _daily_requests(self) -> int:
        from archiver_connectors.pinterest.api import DEFAULT_DAILY_REQUESTS

        return int(self._option("daily_requests", DEFAULT_DAILY_REQUESTS))

    def _tokens(self, client):
        from archiver_connectors.pinterest.api import TOKEN_PATH, PinterestTokens

        return PinterestTokens(self.secrets, self.account.name, self._hosts()[0] + TOKEN_PATH, client)

    # -- authorization -----------------------------------------------------------------
    def authorize(self, *, echo, open_browser=None, port: int = 0, prompt=None, client_id=None, client_secret=None,
                  timeout: float = 300):
        import httpx

        from archiver.net.oauth import OAuthError, app_credentials
        from archiver_connectors.pinterest.api import SCOPES, authorize_url

        account = self.account.name
        client_id, client_secret = app_credentials(
            self.secrets, "pinterest", account, {"client_id": client_id, "client_secret": client_secret},
            prompt=prompt, missing=lambda key: f"no Pinterest app {key} for account {account!r}: create an app at "
                                               "https://developers.pinterest.com/apps/ (Trial access is enough), add "
                                               f"the redirect URI http://127.0.0.1:{REDIRECT_PORT}/ and pass "
                                               f"--{key.replace('_', '-')}, or run this command on a terminal to "
                                               "be asked")
        _api_base, consent_base = self._hosts()
        if not port and not self.account.base_url:
            # Pinterest accepts only the redirect URIs registered with the app, port included.
            port = REDIRECT_PORT
            echo(f"Pinterest sends the browser back to http://127.0.0.1:{port}/ : that address must be one of "
                 "your app's redirect URIs (or pass --port with the one you registered).")
        with httpx.Client(transport=self.transport, timeout=30) as http:
            tokens = self._tokens(http)
            body = tokens.authorize(
                lambda redirect_uri, state, _challenge: authorize_url(
                    consent_base, client_id=client_id, redirect_uri=redirect_uri, state=state),
                client_id=client_id, client_secret=client_secret, path="/", open_browser=open_browser, echo=echo,
                port=port, timeout=timeout)
            if "error" in body:
                raise OAuthError(f"Pinterest refused the authorization: {body.get('error_description') or body['error']}. "
                                 "Check the app id and secret key, and run the command again.")
            if not body.get("refresh_token"):
                raise OAuthError("Pinterest returned no refresh token; run `archiver auth pinterest` again")
            granted = tokens.store(body)["scope"]
        # No request to name the account here: it would spend one of the day's requests
        # outside any run's budget (the first run names it, in the profile).
        missing = [scope for scope in SCOPES if scope not in str(granted).split(",")]
        return (f"Pinterest authorized for archiver account {account!r} ({granted})."
                + (f" Not granted: {', '.join(missing)}: what they cover is not archived." if missing else ""))

    # -- API sync ----------------------------------------------------------------------
    def pages(self, ctx) -> Iterator[Page]:
        import httpx

        from archiver.net.budget import BudgetedTransport, BudgetSpent, DailyBudget, run_daily_budget
        from archiver.net.client import NetError
        from archiver_connectors.pinterest import api as pinterest

        daily = self._daily_requests()
        budget = DailyBudget(daily, ctx.state("quota"), what="the daily Pinterest request budget",
                             clock=lambda: pinterest.wall_clock()) if daily > 0 else None
        if budget is not None:   # Trial access counts per app: in a fleet, one counter for its accounts
            budget = run_daily_budget(budget, project=self.secrets.get("pinterest", self.account.name, "client_id")
                                      or self.account.name)
        inner = self.transport if self.transport is not None else httpx.HTTPTransport()
        token_client = httpx.Client(transport=BudgetedTransport(inner, budget, pinterest.api_cost) if budget else inner,
                                    timeout=30)
        tokens = self._tokens(token_client)
        api = pinterest.PinterestApi(self._hosts()[0], tokens, budget, transport=self.transport, sleep=self.sleep,
                                     cancel=ctx.cancel, page_size=max(1, min(int(self._option("page_size", 250)), 250)))

        def save_budget() -> None:
            if budget is not None:
                ctx.save_state("quota", budget.state())

        try:
            self._authorization_ends(ctx)
            for page in self._streams(api, ctx):
                # Saved before the page is written: a crash in between over-counts (stops
                # early), never under-counts (runs into Pinterest's 429).
                save_budget()
                yield page
            save_budget()
        except BudgetSpent as stop:
            save_budget()
            said = ("Pinterest refused more requests for today (HTTP 429)" if stop.by_platform
                    else f"{stop}: the run stopped before Pinterest's limit")
            ctx.report("quota", f"{said}. The next run after midnight UTC goes on from where this one stopped.")
        except NetError:
            save_budget()
            raise
        finally:
            api.close()
            token_client.close()

    def _authorization_ends(self, ctx) -> None:
        """No end to announce: every refresh brings a new 60-day refresh token, and a run
        renews one that nears its end (PinterestTokens.refresh_due), so only an account
        left unrun for two months loses it; that run then says to authorize again."""
        ctx.authorization_expires(None)

    def _streams(self, api, ctx) -> Iterator[Page]:
        from archiver.net.client import NetError
        from archiver_connectors.pinterest.api import profile_from_account

        account = api.get("/v5/user_account")
        if not account.get("id") and not account.get("username"):
            raise NetError("Pinterest returned no account for this authorization (GET /v5/user_account is empty). "
                           f"Nothing in the archive was changed. Run `archiver auth pinterest --account "
                           f"{self.account.name}` again.", kind="gone")
        profile = profile_from_account(account)
        # The profile picture is fetched when its link changed (a new picture has a new
        # one), else once a day at most: a quiet run downloads nothing.
        seen = ctx.state("profile") or {}
        picture = profile.avatar.url if profile.avatar else None
        if picture and picture == seen.get("avatar") and not ctx.full \
                and _hours_since(seen.get("at") or "") < LIST_EVERY_HOURS:
            profile.avatar = None   # the archive keeps the picture it has
            yield Page("profile", [profile])
        else:
            yield Page("profile", [profile], {"avatar": picture, "at": _now()})
        boards: dict[str, dict] = {}
        yield from self._boards(api, ctx, boards)
        strangers: set[str] = set()   # boards a Pin names an unknown section of
        yield from self._pins(api, ctx, boards, strangers)
        if strangers:
            yield from self._sections(api, ctx, [boards[b] for b in sorted(strangers) if b in boards])
        yield from self._list(api, ctx, "followers", "/v5/user_account/followers")
        yield from self._list(api, ctx, "following", "/v5/user_account/following")

    # -- boards and sections ---------------------------------------------------------------
    def _boards(self, api, ctx, boards: dict[str, dict]) -> Iterator[Page]:
        """Every board (a Page per API page), then the sections of the boards that need it."""
        from archiver_connectors.pinterest.api import collection_from_board

        bookmark = None
        while True:
            items, bookmark = api.page("/v5/boards", bookmark)
            found = [b for b in items if b.get("id") is not None]
            boards.update({str(b["id"]): b for b in found})
            yield Page("boards", [collection_from_board(b) for b in found])
            if not bookmark:
                break
        read = (ctx.state("sections") or {}).get("read") or {}
        due = [b for key, b in boards.items() if ctx.full or read.get(key, {}).get("mark") != _mark(b)]
        yield from self._sections(api, ctx, due)

    def _sections(self, api, ctx, due: list[dict]) -> Iterator[Page]:
        """Each board's sections (every page), a Page per board whose state records what
        was read, so a run stopped half way does not read those boards again."""
        from archiver_connectors.pinterest.api import collection_from_section

        read = dict((ctx.state("sections") or {}).get("read") or {})
        for board in due:
            key = str(board["id"])
            records, bookmark = [], None
            while True:
                items, bookmark = api.page(f"/v5/boards/{key}/sections", bookmark)
                records += [collection_from_section(s, board) for s in items if s.get("id") is not None]
                if not bookmark:
                    break
            read[key] = {"mark": _mark(board), "sections": sorted(r.native_id for r in records)}
            yield Page("sections", records, {"read": dict(read)})

    # -- Pins ----------------------------------------------------------------------------
    def _pins(self, api, ctx, boards: dict[str, dict], strangers: set[str]) -> Iterator[Page]:
        from archiver.sync.listing import Batch, CursorRefused, Listing
        from archiver_connectors.pinterest.api import PinterestError, post_from_pin

        originals = bool(self._option("originals", True))
        granted = set(str(api.tokens.load().get("scope") or "").split(","))
        blind = [scope for scope in ("boards:read_secret", "pins:read_secret") if scope not in granted]
        if blind:
            ctx.note(f"the authorization lacks {', '.join(blind)}: Pins on secret boards are not archived and no "
                     f"listing marks Pins deleted; run `archiver auth pinterest --account {self.account.name}` to "
                     "allow it")
        known_sections = {s for entry in ((ctx.state("sections") or {}).get("read") or {}).values()
                          for s in entry.get("sections") or []}

        def fetch(bookmark):
            try:
                items, next_bookmark = api.page("/v5/pins", bookmark, pin_metrics="true",
                                                include_protected_pins="true")
            except PinterestError as error:
                if error.status == 400 and bookmark:
                    raise CursorRefused(str(error)) from None
                raise
            times = [t for t in (_time_of(p) for p in items) if t]
            if len(times) >= 2 and times[0] < times[-1] and walk.stop_at_known:
                # Oldest first: new Pins come at the end, so no page says "the rest is known".
                walk.stop_at_known = False
                log.info("Pinterest lists Pins oldest first: this walk reads the whole list")
            for pin in items:
                section = pin.get("board_section_id")
                if section and str(section) not in known_sections and pin.get("board_id"):
                    strangers.add(str(pin["board_id"]))
            batch = Batch(items, next_bookmark)
            if blind and not next_bookmark:
                # What the token cannot see is not gone: this listing must mark nothing deleted.
                batch.unreadable = [("Pins on secret boards", f"the authorization lacks {', '.join(blind)}")]
            return batch

        def privacy_of(board_id: str) -> str | None:
            return (boards.get(board_id) or {}).get("privacy")

        def reached(batch):
            # How far down (back in time) a page reached: bookmarks are opaque, times are not.
            times = [t for t in (_time_of(p) for p in batch.items) if t]
            return min(times) if times else ""

        walk = Listing(ctx, "pins", fetch=fetch, item_id=lambda pin: str(pin["id"]),
                       map_item=lambda pin: [post_from_pin(pin, privacy_of, originals=originals)],
                       reached=reached, resume_at_cursor=True)
        yield from walk.pages()

    # -- followers and following ---------------------------------------------------------------
    def _list(self, api, ctx, kind: ListKind, path: str) -> Iterator[Page]:
        """One list (usernames only) as a dated snapshot, read a page at a time through
        the core's staging: a walk cut off by the budget goes on from its bookmark."""
        from archiver.archive.lists import list_pages
        from archiver_connectors.pinterest.api import PinterestError, membership_of

        last = (ctx.state(kind) or {}).get("last_at")
        due = ctx.full or not last or _hours_since(last) >= LIST_EVERY_HOURS

        def fetch_page(bookmark):
            items, next_bookmark = api.page(path, bookmark)
            return [m for m in map(membership_of, items) if m], next_bookmark

        try:
            yield from list_pages(ctx, kind, fetch_page, stream=kind, due=due,
                                  finish=lambda listed: (True, {"last_at": _now()}))
        except PinterestError as error:
            if error.status in (403, 404):
                ctx.report(f"{kind} list", f"the {kind} list was not read: {error}")
                return
            raise

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.pinterest.export import find_export

        return bool(find_export(source))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.pinterest.export import export_pages

        yield from export_pages(source, ctx)


def _mark(board: dict) -> str:
    """What says a board's sections may have changed: its Pins' last change and count."""
    return f"{board.get('board_pins_modified_at')}|{board.get('pin_count')}"


def _time_of(pin: dict) -> str | None:
    try:
        return iso_utc(pin.get("created_at"))
    except (TypeError, ValueError):
        return None


def _now() -> str:
    from archiver_connectors.pinterest.api import wall_clock

    return iso_utc(wall_clock())


def _hours_since(when: str) -> float:
    from archiver_connectors.pinterest.api import wall_clock

    try:
        moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (wall_clock() - moment.timestamp()) / 3600
