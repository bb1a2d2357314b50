"""X (Twitter): the person's "Download an archive of your data" zip of every generation
(parsed in export.py), and, only within a budget the account sets, the pay-per-use API v2
for what is newer than the archive (api.py).

X's API charges every post and user it returns (notes A #15). So the API is off unless the
account's table sets ``max_cost_usd`` (a limit per run); without it `archiver export` says
how to import the archive instead. A run through the API (``pages``), each request reserving
its worst case (``max_results`` × price) of the run's budget before it leaves, and charged
what came back:

1. ``GET /2/users/me``: the profile and its counts (one user: $0.010).
2. ``GET /2/users/:id/tweets`` newest first, ``since_id`` = the newest post the archive
   holds (imported from the archive or read before): only what is new ($0.005 a post).
   Without any post archived the walk goes down from the newest, as far as the budget or
   X's window (the 3,200 most recent posts) allows. A walk cut off (the budget, X's limits)
   leaves a gap (``since_id``..``until_id``) the next runs fill after the newest posts, so
   nothing between two runs is skipped. Nothing is ever marked deleted from the API: the
   window hides older posts, it does not mean they are gone.
3. Followers and following, only when the account asks (``followers = true``,
   ``following = true``: $0.010 a person), at most once in ``LIST_EVERY_DAYS``, through the
   core's list staging (a walk cut off goes on next run).

A full run (``--full``; the daemon asks for none: ``full_listings = False``) is an
incremental one: reading again what the archive holds would cost money for counts alone,
and could not find deleted posts anyway.

A quiet run (nothing new, the picture's link unchanged) is two requests, $0.010:
``GET /2/users/me`` and ``GET /2/users/:id/tweets?since_id=…``; no file is downloaded.

The run's spending is saved as stream "spend" (which `archiver status` shows) before each
paid request leaves (its reservation), before each page and on every exit. When the budget
cannot pay for the next request (a run note) or X refuses more — the monthly cap or a rate
window resetting more than 15 minutes ahead (an error of the run, which goes on next time) —
the run stops cleanly, saying so; credits used up (402, or a 403 naming credits) fail the
run, which alerts: the person must buy credits. A 429 whose window resets sooner is waited
out (X sends ``x-rate-limit-reset``; a Retry-After is honoured too). A 401 gets one token
refresh, then the run fails naming `archiver auth x --account <name>`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable, Iterator

from archiver.connector import WEIGHTED, Connector, Option, PostLimits
from archiver.records import Page

log = logging.getLogger("archiver.x")

LIST_EVERY_DAYS = 7          # followers / following, when asked for, are read once a week at most
REDIRECT_PORT = 8086         # the loopback port of the callback URL registered with the app
POSTS_STREAM = "posts"


class XConnector(Connector):
    name = "x"
    title = "X"
    post_limits = PostLimits(
        "a post's text", caption_chars=280, caption_unit=WEIGHTED, checked="2026-12-07",
        sources=("https://docs.x.com/fundamentals/counting-characters",),
        notes="Paid accounts may post longer texts; 280 is what every account may post.")
    platform_aliases = ("twitter",)
    full_listings = False          # 3,200 recent posts at most, each paid for: deletions come from the archive
    post_noun = "posts"
    # How people show here (archiver audience links): x.com and twitter.com are one site.
    profile_hosts = ("x.com", "twitter.com", "mobile.twitter.com", "mobile.x.com")
    default_base_url = "https://api.x.com"
    secret_keys = ("client_id", "client_secret", "tokens")
    auth_options = (
        Option("client_id", "Your X app's OAuth 2.0 client id (developer console → your app → Keys and tokens; "
                            "asked for when missing)."),
        Option("client_secret", "The app's OAuth 2.0 client secret, for a confidential client (\"Web App\"; asked "
                                "for when missing: prefer the prompt).", secret=True),
        Option("public_client", "The app is a public client (\"Native App\"): it has no client secret.", type=bool,
               flag=True),
    )
    config_options = (
        Option("max_cost_usd", "The most a run may spend on X's pay-per-use API, in US dollars (e.g. 1.00). "
                               "Without it the API is not used: import the archive instead.", type=float),
        Option("page_size", "Posts a timeline request asks for (5 to 100, default 100: fewest requests; the "
                            "price is per post either way).", type=int),
        Option("followers", "Also read the followers list through the API ($0.010 a person; default false).",
               type=bool),
        Option("following", "Also read the list of accounts followed ($0.010 a person; default false).",
               type=bool),
    )
    # What only the archive holds: the API gives no likes, no deleted posts, nothing older
    # than the 3,200 newest posts, and lists only when paid for (and nothing without a budget).
    export_only_holds = ("likes, deleted posts, posts older than the newest 3,200, followers and following "
                         "(unless read through the API, paid), and everything while no max_cost_usd is set")
    manual_export_steps = (
        "On x.com: Settings → Your account → Download an archive of your data; when X says it is ready, download "
        "the zip and run `archiver import <the zip>` (or drop it in the inbox folder). It holds every post, "
        "likes, followers and following, and the media files; the API only adds what is newer, for a price."
    )

    # -- the API only within a budget -------------------------------------------------------
    @classmethod
    def api_off(cls, options: dict[str, Any]) -> str:
        """'' when the account sets a budget; else why the API is not used and what to do."""
        limit = options.get("max_cost_usd")
        if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit > 0:
            return ""
        return ("X's API charges for every post it returns, and this account sets no max_cost_usd, so archiver "
                "does not use it. Get your posts from X's archive instead: on x.com, Settings → Your account → "
                "Download an archive of your data, then `archiver import <the zip>`. To also fetch what is newer "
                "through the API, set what a run may spend in the account's table of config.toml, e.g. "
                "max_cost_usd = 1.0 (X charges $0.005 a post, $0.010 a user).")

    # -- plumbing ----------------------------------------------------------------------
    def _hosts(self) -> tuple[str, tuple[str, ...]]:
        """(API base, consent page addresses). A base_url in the config (a proxy, the
        simulator) serves both."""
        from archiver_connectors.x import api

        if self.account.base_url:
            return self.base_url, (self.base_url + api.AUTHORIZE_PATH,)
        return api.API_BASE_URL, api.AUTHORIZE_URLS

    def _tokens(self, client):
        from archiver_connectors.x.api import TOKEN_PATH, XTokens

        return XTokens(self.secrets, self.account.name, self._hosts()[0] + TOKEN_PATH, client)

    def _option(self, key: str, default: Any) -> Any:
        value = self.account.options.get(key, default)
        return default if value is None else value

    # -- authorization -----------------------------------------------------------------
    def authorize(self, *, echo, open_browser=None, port: int = 0, prompt=None, client_id=None, client_secret=None,
                  public_client=None, timeout: float = 300):
        import httpx

        from archiver.net.client import scrubber
        from archiver.net.oauth import OAuthError, app_credentials
        from archiver_connectors.x.api import SCOPES, authorize_url

        account = self.account.name
        (client_id,) = app_credentials(
            self.secrets, "x", account, {"client_id": client_id}, prompt=prompt,
            missing=lambda key: f"no X app client id for account {account!r}: create an app in the X developer "
                                "console (console.x.com), turn on OAuth 2.0 (type \"Native App\" for a public "
                                f"client), add the callback URL http://127.0.0.1:{REDIRECT_PORT}/ and pass "
                                "--client-id, or run this command on a terminal to be asked")
        if public_client:
            # A public client sends no secret: one stored before would make every refresh use HTTP Basic.
            if self.secrets.get("x", account, "client_secret"):
                self.secrets.delete("x", account, "client_secret")
            client_secret = ""
        else:
            stored = self.secrets.get("x", account, "client_secret")
            if not client_secret and not stored and prompt is not None:
                client_secret = prompt("client_secret")
            if client_secret:   # newly given: kept; one read from the store stays where it is
                self.secrets.set("x", account, "client_secret", client_secret)
            client_secret = client_secret or stored or ""
            if not client_secret:
                raise OAuthError(f"no X app client secret for account {account!r}: pass --client-secret (a "
                                 "confidential \"Web App\" client), or --public-client for a \"Native App\" without "
                                 "one, or run this command on a terminal to be asked")
        scrubber.add(client_secret)
        _api, consent = self._hosts()
        if not port and not self.account.base_url:
            # X accepts only the callback URLs registered with the app, port included.
            port = REDIRECT_PORT
            echo(f"X sends the browser back to http://127.0.0.1:{port}/ : that address must be one of your app's "
                 "callback URLs (or pass --port with the one you registered).")
        addresses: list[str] = []

        def consent_url(redirect_uri: str, state: str, challenge: str) -> str:
            addresses[:] = [authorize_url(base, client_id=client_id, redirect_uri=redirect_uri, state=state,
                                          challenge=challenge) for base in consent]
            return addresses[0]

        def echo_with_fallback(text: str) -> None:
            echo(text)
            # The consent page's host is unconfirmed (x.com, older docs twitter.com): the
            # same request on the other host, should the first not show X's consent page.
            for other in addresses[1:]:
                echo(f"If that page does not ask you to authorize the app, open this one instead:\n\n  {other}\n")

        with httpx.Client(transport=self.transport, timeout=30) as http:
            tokens = self._tokens(http)
            body = tokens.authorize(consent_url, client_id=client_id, client_secret=client_secret, path="/",
                                    open_browser=open_browser, echo=echo_with_fallback, port=port, timeout=timeout)
            if "error" in body:
                raise OAuthError(f"X refused the authorization: {body.get('error_description') or body['error']}. "
                                 "Check the app's client id (and secret, for a confidential client) and its "
                                 "callback URL, and run the command again.")
            if not body.get("refresh_token"):
                raise OAuthError("X returned no refresh token (the offline.access scope was not granted): "
                                 "archiver could not renew the 2-hour access token. Run `archiver auth x` again "
                                 "and allow it.")
            granted = tokens.store(body)["scope"]
        # No request to name the account here: it would cost outside any run's budget.
        missing = [scope for scope in SCOPES if scope not in str(granted).split()]
        return (f"X authorized for archiver account {account!r} ({granted})."
                + (f" Not granted: {', '.join(missing)}." if missing else "")
                + ("" if self.account.options.get("max_cost_usd") else
                   f" Set max_cost_usd in [accounts.{account}] for `archiver export` to use the API (it is paid)."))

    # -- API sync ----------------------------------------------------------------------
    def pages(self, ctx) -> Iterator[Page]:
        import httpx

        from archiver.net.budget import SPEND_STREAM, BudgetSpent, RunBudget, money
        from archiver.net.client import NetError
        from archiver_connectors.x import api as x
        from archiver_connectors.x.api import PlatformStop

        off = self.api_off(self.account.options)
        if off:
            ctx.note(off)
            return
        budget = RunBudget(self.account.options["max_cost_usd"], ctx.state(SPEND_STREAM), clock=lambda: x.wall_clock(),
                           what=f"this run's X API budget (max_cost_usd = {self.account.options['max_cost_usd']})")
        inner = self.transport if self.transport is not None else httpx.HTTPTransport()
        token_client = httpx.Client(transport=inner, timeout=30)
        api = x.XApi(self._hosts()[0], self._tokens(token_client), transport=self.transport, sleep=self.sleep,
                     cancel=ctx.cancel)

        def save_spending() -> None:
            ctx.save_state(SPEND_STREAM, budget.state())

        try:
            ctx.authorization_expires(None)   # renewed by every run (offline.access)
            for page in self._streams(api, ctx, Spending(budget, save_spending)):
                # Saved before the page is written: a crash in between over-counts, never under-counts.
                save_spending()
                yield page
        except PlatformStop as stop:
            said = f"{stop} ({money(budget.spent)} spent this run). {stop.advice}"
            if stop.status in (402, 403):
                # No run can go on until the person buys credits: a failed run, which alerts.
                raise NetError(said, kind="client", status=stop.status) from None
            ctx.report("X API", said)
        except BudgetSpent as stop:
            ctx.note(f"{stop}: the run stopped there. The next run goes on from where this one stopped.")
        finally:
            save_spending()   # on every exit: an error, a stop, Ctrl-C
            api.close()
            token_client.close()

    def _streams(self, api, ctx, budget) -> Iterator[Page]:
        from archiver.net.client import NetError
        from archiver_connectors.x.api import PRICE_USER, USER_FIELDS, profile_from_user

        _body, found = budget.call(PRICE_USER, PRICE_USER,
                                   lambda: api.get("/2/users/me", {"user.fields": USER_FIELDS}))
        user = found[0] if found else None
        if not user or not user.get("id"):
            raise NetError("X returned no account for this authorization (GET /2/users/me is empty). Nothing in "
                           f"the archive was changed. Run `archiver auth x --account {self.account.name}` again.",
                           kind="gone")
        profile = profile_from_user(user)
        # The picture is fetched when its link changed (a new picture has a new link on X):
        # a quiet run downloads nothing.
        picture = profile.avatar.url if profile.avatar else None
        if picture and picture == (ctx.state("profile") or {}).get("avatar"):
            profile.avatar = None   # the archive keeps the picture it has
            yield Page("profile", [profile])
        else:
            yield Page("profile", [profile], {"avatar": picture})
        yield from self._posts(api, ctx, budget, str(user["id"]), user.get("username"),
                               posts_on_x=profile.posts)
        for kind in ("followers", "following"):
            if bool(self._option(kind, False)):
                yield from self._list(api, ctx, budget, kind, str(user["id"]))

    # -- posts -------------------------------------------------------------------------
    def _posts(self, api, ctx, budget, user_id: str, username: str | None, *,
               posts_on_x: int | None) -> Iterator[Page]:
        """The walk of the timeline described in the module's doc. The stream's state:
        ``gaps``, the ranges (``since_id`` exclusive, ``until_id`` exclusive; a None
        ``since_id`` is the bottom of X's window) still to read, newest first."""
        from archiver_connectors.x.api import (
            MEDIA_FIELDS,
            POSTS_PAGE_MAX,
            POSTS_PAGE_MIN,
            PRICE_POST,
            TIMELINE_WINDOW,
            TWEET_FIELDS,
            XError,
            id_key,
            post_from_tweet,
        )

        page_max = max(POSTS_PAGE_MIN, min(int(self._option("page_size", POSTS_PAGE_MAX)), POSTS_PAGE_MAX))
        state = ctx.state(POSTS_STREAM) or {}
        gaps: list[dict[str, Any]] = [g for g in state.get("gaps") or [] if isinstance(g, dict) and g.get("until_id")]
        # A full run is an incremental one (see the module's doc): never paid for twice.
        sections: list[dict[str, Any]] = [{"since_id": self._newest_archived(ctx), "until_id": None}, *gaps]
        reached_bottom = False
        new_on_top = 0   # posts this run read above every gap: they push X's window up
        for number, section in enumerate(sections):
            later = sections[number + 1:]
            # How many posts stand above where this section is read: X's window reaches
            # TIMELINE_WINDOW of them, what lies deeper it never gives.
            above = int(section.get("above") or 0) + (new_on_top if number else 0)
            cursor: str | None = None
            tokens_seen: set[str] = set()
            while True:
                size = affordable(budget, PRICE_POST, page_max, POSTS_PAGE_MIN)
                params = {"max_results": size, "tweet.fields": TWEET_FIELDS, "expansions": "attachments.media_keys",
                          "media.fields": MEDIA_FIELDS}
                for key in ("since_id", "until_id"):
                    if section.get(key):
                        params[key] = section[key]
                if cursor:
                    params["pagination_token"] = cursor
                body, items = budget.call(size * PRICE_POST, PRICE_POST,
                                          lambda params=params: api.get(f"/2/users/{user_id}/tweets", params))
                tweets = items
                above += len(tweets)
                if number == 0:
                    new_on_top += len(tweets)
                includes = _dict(body.get("includes"))
                media = {str(m.get("media_key")): m for m in includes.get("media") or [] if isinstance(m, dict)}
                posts, seen = [], set()
                for tweet in tweets:
                    try:
                        post = post_from_tweet(tweet, username, media)
                    except (KeyError, TypeError, ValueError) as error:
                        ctx.report(f"post {str(tweet.get('id'))[:40]}", f"could not be read: {error}")
                        continue
                    if post.native_id not in seen:
                        seen.add(post.native_id)
                        posts.append(post)
                meta = _dict(body.get("meta"))
                next_token = meta.get("next_token") if isinstance(meta.get("next_token"), str) else None
                if next_token and next_token in tokens_seen:
                    # A token handed out again would walk in a circle, each lap paid for.
                    raise XError(f"X GET /2/users/{user_id}/tweets gave a pagination token it had given before: "
                                 "the list goes in a circle; stopped reading it", kind="bad_response", status=200)
                tokens_seen.add(next_token or "")
                ids = sorted((p.raw["id"] for p in posts), key=id_key)   # the tweets read, as X gave them
                known_gap = bool(section.get("until_id") and posts
                                 and len(ctx.known_post_ids([p.native_id for p in posts])) == len(posts))
                if next_token and ids and not known_gap:
                    # What is left of this section, should the run end before it is read.
                    rest = [{"since_id": section.get("since_id"), "until_id": ids[0], "above": above}]
                else:
                    rest = []
                    if section.get("since_id") is None and not known_gap:
                        reached_bottom = True
                    elif not known_gap and above >= TIMELINE_WINDOW:
                        self._window_passed(ctx, str(section["since_id"]), ids[0] if ids else None)
                yield Page(POSTS_STREAM, posts, {"gaps": rest + later})
                if not rest:
                    break
                cursor = next_token
        if reached_bottom and posts_on_x and posts_on_x > TIMELINE_WINDOW \
                and posts_on_x > len(ctx.every_archived_post({"at": "created_at"})):
            ctx.note(f"X's API reaches only the {TIMELINE_WINDOW:,} most recent posts; the account has "
                     f"{posts_on_x:,}: the older ones come from X's archive (Settings → Your account → Download an "
                     "archive of your data, then `archiver import <the zip>`).")

    def _window_passed(self, ctx, since_id: str, oldest_read: str | None) -> None:
        """X's window ended above ``since_id``: the posts between may be missing."""
        from archiver_connectors.x.api import TIMELINE_WINDOW, snowflake_time

        ctx.note(f"X's API reaches only the {TIMELINE_WINDOW:,} most recent posts, and more than that were "
                 f"written since the archive's newest ({snowflake_time(since_id) or since_id}): posts between "
                 f"then and {snowflake_time(oldest_read) if oldest_read else 'the oldest one read'} may be missing. "
                 "Import a newer archive of your data (`archiver import <the zip>`) for them.")

    def _newest_archived(self, ctx) -> str | None:
        """The newest post id the archive holds of this account (from the archive or an
        earlier run): the API's ``since_id``. Posts are keyed by their first version's id;
        the later versions' ids count where an API run kept them (``$.api.edit_ids``). An
        archive's edited post newer than the rest is read once more (its newest version has
        the larger id), which maps to the same post."""
        import json as _json

        from archiver_connectors.x.api import id_key

        newest: str | None = None
        for post_id, row in ctx.every_archived_post({"edits": "$.api.edit_ids"}).items():
            ids = [post_id]
            edits = row.get("edits")
            if isinstance(edits, str):
                try:
                    ids += [str(i) for i in _json.loads(edits) if str(i).isdigit()]
                except ValueError:
                    pass
            for candidate in ids:
                if candidate.isdigit() and (newest is None or id_key(candidate) > id_key(newest)):
                    newest = candidate
        return newest

    # -- followers and following ---------------------------------------------------------------
    def _list(self, api, ctx, budget, kind: str, user_id: str) -> Iterator[Page]:
        from archiver.archive.lists import list_pages
        from archiver_connectors.x.api import FOLLOWS_PAGE_MAX, FOLLOWS_PAGE_MIN, PRICE_USER, USER_FIELDS, XError, membership_of

        last = (ctx.state(kind) or {}).get("last_at")
        due = not last or _days_since(last) >= LIST_EVERY_DAYS   # never for --full alone: it costs

        def fetch_page(cursor: str | None) -> tuple[list, str | None]:
            size = affordable(budget, PRICE_USER, FOLLOWS_PAGE_MAX, FOLLOWS_PAGE_MIN)
            params: dict[str, Any] = {"max_results": size, "user.fields": USER_FIELDS}
            if cursor:
                params["pagination_token"] = cursor
            body, users = budget.call(size * PRICE_USER, PRICE_USER,
                                      lambda: api.get(f"/2/users/{user_id}/{kind}", params))
            meta = _dict(body.get("meta"))
            next_token = meta.get("next_token") if isinstance(meta.get("next_token"), str) else None
            members = [m for m in map(membership_of, users) if m]
            fetched[:] = members
            return members, next_token

        # The list keeps who, not what they say of themselves: each page also carries its
        # people whole (bio, links), for the audience's pairing with Bluesky and Mastodon.
        fetched: list = []
        try:
            for page in list_pages(ctx, kind, fetch_page, stream=kind, due=due,  # type: ignore[arg-type]
                                   finish=lambda listed: (True, {"last_at": _now()})):
                page.records.extend(member.person for member in fetched)
                fetched.clear()
                yield page
        except XError as error:
            if error.status in (403, 404):
                ctx.report(f"{kind} list", f"the {kind} list was not read: {error}")
                return
            raise

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.x.export import find_export

        return bool(find_export(source))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.x.export import export_pages

        yield from export_pages(source, ctx)


# -- the run's money ---------------------------------------------------------------------------


def affordable(budget, price: int, most: int, least: int) -> int:
    """The largest page size from ``least`` to ``most`` whose worst case (every item
    returned, at ``price`` micro-dollars) the budget can still pay for; BudgetSpent when
    not even ``least`` fits."""
    fits = min(most, budget.left() // price)
    if fits < least:
        budget.require(least * price)   # raises BudgetSpent, worded by the budget
    return max(fits, least)


class Spending:
    """The run's RunBudget, and its state made durable before every paid request leaves:
    a run killed after X answered (and charged) but before the next page is written has
    the request counted at its worst case (over-counts, never under-counts)."""

    def __init__(self, budget, save: Callable[[], None]):
        self.budget, self.save = budget, save

    def left(self) -> int:
        return self.budget.left()

    def require(self, micros: int) -> None:
        self.budget.require(micros)

    def call(self, worst: int, price: int, call: Callable[[], dict]) -> tuple[dict, list[dict]]:
        """Reserve ``worst`` micro-dollars (saved), make the call, and settle at what came
        back: its ``data`` items at ``price`` each. An answer X refused (an HTTP error)
        costs nothing; any other failure (a connection cut after X answered) keeps the
        reservation. Returns the answer and its items."""
        from archiver.net.budget import BudgetSpent
        from archiver.net.client import NetError

        reserved = self.budget.reserve(worst)
        self.save()
        try:
            body = call()
        except (NetError, BudgetSpent) as error:
            if isinstance(error, BudgetSpent) or error.status is not None:
                self.budget.settle(reserved, 0)
            raise
        data = body.get("data")
        items = ([d for d in data if isinstance(d, dict)] if isinstance(data, list)
                 else [data] if isinstance(data, dict) else [])
        self.budget.settle(reserved, len(items) * price)
        return body, items


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _now() -> str:
    from archiver.records import iso_utc
    from archiver_connectors.x.api import wall_clock

    return iso_utc(wall_clock())


def _days_since(when: str) -> float:
    from archiver_connectors.x.api import wall_clock

    try:
        moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (wall_clock() - moment.timestamp()) / 86400
