"""Mastodon: any instance's REST API (profile, statuses with edits, media, replies from
others, followers and following) and the official account archive (export.py).

See ../shared/platforms/mastodon.md.

Streams and their checkpoints (sync_state):

- ``statuses``: archiver.sync.listing's state of the walk from the newest status back
  (``mode``, ``listing``, ``cursor``: the Link header's ``rel="next"``), plus ``newest_id``.
  The first run, ``--full`` and a walk cut off earlier walk back (a killed run goes on at
  its link); later runs walk forward from ``newest_id`` with ``min_id`` and the Link
  header's ``rel="prev"`` (the documented way to page newer), then refresh the newest page
  for counts, edits and new replies. Only a complete ``--full`` walk marks statuses it no
  longer lists as deleted; replies no longer in a status's context are marked too.
- ``follows``: when each list was last taken and its count. The follower and following
  lists are taken whole (Link header paging) on ``--full``, when the profile's count
  changed, or once they are older than ``follows_every_hours``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Iterator, cast
from urllib.parse import urlencode

from archiver.connector import LINKS_AS_23, ApiRate, Connector, Option, PostLimits
from archiver.records import Membership, Page, now_utc
from archiver_connectors.mastodon.visibility import VISIBILITY_WORDS

log = logging.getLogger("archiver.mastodon")

FOLLOWS_EVERY_HOURS = 20.0     # an unchanged count still gets a fresh list this often




class MastodonConnector(Connector):
    name = "mastodon"
    title = "Mastodon"
    # Paging requests (max_id/min_id): 300 per 15 minutes per user; others 300 per 5 minutes.
    api_rate = ApiRate(per_minute=20, burst=5, per_user=True, source="https://docs.joinmastodon.org/api/rate-limits/")
    post_limits = PostLimits(
        "a post's text (on a server with Mastodon's default limit)", caption_chars=500, caption_unit=LINKS_AS_23,
        checked="2026-12-07", sources=("https://docs.joinmastodon.org/entities/Instance/",),
        notes="Each server sets its own limit (configuration.statuses.max_characters): yours may allow more.")
    post_noun = "posts"
    # How people show here (archiver audience links): "alice@server", a profile page on
    # each person's own server (no fixed host; the core reads the server off the handle).
    other_names = ("fediverse",)
    visibility_words = VISIBILITY_WORDS
    default_base_url = ""       # every account names its own instance (base_url)
    secret_keys = ("client_id", "client_secret", "tokens")
    auth_options = (
        Option("instance", "Your instance, e.g. https://mastodon.social (a new account needs no config entry "
               "first: it is added).", metavar="URL"),
        Option("token", "An access token you created on the instance (Preferences → Development), instead of "
               "the authorization in the browser.", secret=True, stdin=True),
    )
    config_options = (
        Option("paged_requests_per_15min", "Paging requests a run may make per 15 minutes (default 300).",
               type=float),
        Option("follows_every_hours", "Hours between two listings of followers and following (default 20).",
               type=float),
    )
    manual_export_steps = (
        "On your Mastodon instance's website: Preferences → Import and export → Request your archive "
        "(once every 7 days). When the e-mail says it is ready, download archive-….tar.gz from the same "
        "page and run `archiver import <file>` (or drop it in the inbox folder)."
    )

    @classmethod
    def upgrade_archive(cls, db, migration: str) -> None:
        if migration == "m008_small_promises_instance_keys":
            from archiver_connectors.mastodon.api import key_statuses_by_instance

            key_statuses_by_instance(db)

    # -- settings ----------------------------------------------------------------------
    @classmethod
    def account_settings_from_auth(cls, options: dict) -> dict | None:
        from archiver_connectors.mastodon.api import normalize_instance

        instance = options.get("instance")
        if not instance:
            return None
        try:
            return {"base_url": normalize_instance(instance)}
        except ValueError as error:
            from archiver.net.oauth import OAuthError

            raise OAuthError(str(error)) from None

    def _option(self, key: str, default: float) -> float:
        value = self.account.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"[accounts.{self.account.name}] {key} = {value!r}: expected a number ≥ 0 "
                             f"(default {default})")
        return float(value)

    def _instance(self, given: str | None = None) -> str:
        """The instance's base URL: the account's base_url, or --instance at `archiver auth`."""
        from archiver.net.oauth import OAuthError
        from archiver_connectors.mastodon.api import normalize_instance

        try:
            configured = normalize_instance(self.base_url, key=f"[accounts.{self.account.name}] base_url") \
                if self.base_url else None
            asked = normalize_instance(given) if given else None
        except ValueError as error:
            raise OAuthError(str(error)) from None
        if configured and asked and configured != asked:
            raise OAuthError(f"--instance {asked} is not the instance of [accounts.{self.account.name}] "
                             f"(base_url = {configured}). Use another --account name for a second account, "
                             "or change base_url in the config.")
        instance = configured or asked
        if not instance:
            raise OAuthError(f"no instance for Mastodon account {self.account.name!r}: pass --instance "
                             "https://your.instance, or set base_url in [accounts."
                             f"{self.account.name}]")
        return instance

    def _http(self):
        import httpx

        return httpx.Client(transport=self.transport, timeout=30,
                            headers={"User-Agent": "archiver/0.1 (+personal archive)"})

    # -- authorization -----------------------------------------------------------------
    def authorize(self, *, echo, open_browser=None, port: int = 0, prompt=None, instance: str | None = None,
                  token: str | None = None, timeout: float = 300) -> str:
        from archiver.net.client import scrubber
        from archiver.net.oauth import OAuthError, pkce_pair, run_loopback_flow
        from archiver_connectors.mastodon.api import SCOPES, MastodonTokens, instance_host, verify_token

        base = self._instance(instance)
        account = self.account.name
        if token:
            scrubber.add(token)
            with self._http() as http:
                try:
                    me = verify_token(http, base, token)
                except ValueError as error:
                    raise OAuthError(f"{base} refused the token ({error}). Create one under Preferences → "
                                     "Development → New application with the scopes read:accounts, "
                                     "read:statuses and read:follows, and pass its access token.") from None
            granted = None
        else:
            with self._http() as http:
                pkce = _supports_pkce(http, base)
                verifier, challenge = pkce_pair() if pkce else (None, None)
                app: dict = {}

                def authorize_url(redirect_uri: str, state: str) -> str:
                    # The app is registered for this exact loopback address (its port is
                    # chosen only now), so the instance accepts the redirect.
                    app.update(_register_app(http, base, redirect_uri))
                    scrubber.add(app["client_secret"])
                    query = {"response_type": "code", "client_id": app["client_id"],
                             "redirect_uri": redirect_uri, "scope": SCOPES, "state": state}
                    if challenge:
                        query.update(code_challenge=challenge, code_challenge_method="S256")
                    return f"{base}/oauth/authorize?{urlencode(query)}"

                result = run_loopback_flow(authorize_url, open_browser=open_browser, echo=echo,
                                           port=port, timeout=timeout)
                form = {"grant_type": "authorization_code", "code": result.code,
                        "client_id": app["client_id"], "client_secret": app["client_secret"],
                        "redirect_uri": result.redirect_uri, "scope": SCOPES}
                if verifier:
                    form["code_verifier"] = verifier
                body = _post_form(http, f"{base}/oauth/token", form)
                if "access_token" not in body:
                    raise OAuthError(f"{base} refused the authorization code: {body.get('error', '?')}: "
                                     f"{body.get('error_description', '')} Run the command again.")
                token = body["access_token"]
                scrubber.add(token)
                granted = body.get("scope")
                try:
                    me = verify_token(http, base, token)
                except ValueError as error:
                    raise OAuthError(f"{base} issued a token but refused it at once ({error}).") from None
            self.secrets.set("mastodon", account, "client_id", app["client_id"])
            self.secrets.set("mastodon", account, "client_secret", app["client_secret"])
        MastodonTokens(self.secrets, account).save({
            "access_token": token, "scope": granted, "account_id": str(me.get("id")),
            "acct": me.get("acct"), "instance": base, "created_at": now_utc(),
        })
        acct = me.get("acct") or me.get("username") or "?"
        who = f"@{acct}" if "@" in acct else f"@{acct}@{instance_host(base)}"   # local accts lack the domain
        scopes = f" with scopes {granted}" if granted else ""
        return f"Mastodon account {who} ({account!r}) authorized{scopes}."

    # -- API sync ----------------------------------------------------------------------
    def _api(self, cancel=None):
        from archiver.net.client import NetError
        from archiver_connectors.mastodon.api import MastodonApi, MastodonTokens

        base = self._instance()
        tokens = MastodonTokens(self.secrets, self.account.name)
        issued_by = tokens.load().get("instance")
        if issued_by and issued_by != base:
            # Never send a token to a server other than the one that issued it.
            raise NetError(f"the stored Mastodon token was issued by {issued_by}, but base_url of "
                           f"[accounts.{self.account.name}] is {base}. Run `archiver auth mastodon --account "
                           f"{self.account.name}` again.", kind="auth")
        paged = int(self._option("paged_requests_per_15min", 300))
        return MastodonApi(base, tokens, transport=self.transport, sleep=self.sleep, cancel=cancel,
                           paged_limit=max(1, paged))

    def pages(self, ctx) -> Iterator[Page]:
        from archiver.net.client import NetError
        from archiver_connectors.mastodon.api import instance_host, profile_from_account

        follows_every = self._option("follows_every_hours", FOLLOWS_EVERY_HOURS)
        api = self._api(cancel=ctx.cancel)
        try:
            me = api.verify_credentials()
            if not isinstance(me, dict) or not me.get("id"):
                raise NetError("Mastodon's verify_credentials named no account; nothing in the archive "
                               "was changed", kind="bad_response")
            owner_id, domain = str(me["id"]), instance_host(api.base_url)
            yield Page("profile", [profile_from_account(me)])
            yield from self._statuses(api, ctx, owner_id, domain)
            yield from self._follows(api, ctx, me, owner_id, domain, follows_every)
        finally:
            api.close()

    # -- statuses ----------------------------------------------------------------------
    def _statuses(self, api, ctx, owner_id: str, domain: str) -> Iterator[Page]:
        """The owner's statuses. A walk from the newest back to the end (rel="next"; even
        past statuses an imported export made known, so each is asked from the API once),
        by archiver.sync.listing, on the first run, on ``--full`` and to finish a walk cut off
        earlier (it goes on at its link); then forward from ``newest_id`` (min_id and
        rel="prev", the documented way to page newer); then, when nothing was walked, the
        newest page again for counts, edits and new replies."""
        from archiver.sync.listing import Batch, Listing
        from archiver_connectors.mastodon.api import STATUS_PAGE, status_key

        url = api.statuses_url(owner_id)
        state = _walker_state(ctx.state("statuses") or {})
        archived: dict[str, dict] = {}

        def fetch(next_url):
            start, params = (next_url, None) if next_url else (url, {"limit": STATUS_PAGE})
            return Batch(*api.page(start, params, rel="next"))

        def before_page(items):
            archived.clear()
            archived.update(ctx.archived_posts(
                [status_key(domain, s["id"]) for s in items],
                {"replies": "comment_count", "edited_at": "$.api.edited_at"}))
            newest = max([walk.carry.get("newest_id"), *(str(s["id"]) for s in items)], key=_status_order)
            walk.carry["newest_id"] = newest

        walk = Listing(ctx, "statuses", fetch=fetch, item_id=lambda status: status_key(domain, status["id"]),
                       map_item=lambda status: self._status_records(
                           api, ctx, status, archived.get(status_key(domain, status["id"])), owner_id, domain),
                       before_page=before_page, resume_at_cursor=True, stop_at_known=False,
                       carry_keys=("newest_id",))
        walked = ctx.full or not state.get("newest_id") or state.get("cursor") is not None
        if walked:
            if state != (ctx.state("statuses") or {}):
                ctx.save_state("statuses", state)      # a walk cut off before archiver.sync.listing
            yield from walk.pages()
        base = ctx.state("statuses") or {}
        newest = base.get("newest_id")
        if newest:
            # Forward from the newest known status: min_id pages, then rel="prev".
            for items, _prev in api.pages(url, {"limit": STATUS_PAGE, "min_id": newest}, rel="prev"):
                if not items:
                    break
                newest = str(items[0]["id"])      # pages are newest first
                before_page(items)
                records, ids, unmapped = walk.map_page(items)
                yield Page("statuses", records, {**base, "newest_id": newest}, listed=ids, unmapped=unmapped)
        if not walked:
            # The newest page again: fresh counts, edits and replies of recent statuses.
            items, _next = api.page(url, {"limit": STATUS_PAGE})
            if items:
                before_page(items)
                records, ids, unmapped = walk.map_page(items)
                yield Page("recent", records, listed=ids, unmapped=unmapped)

    def _status_records(self, api, ctx, status: dict, before: dict | None, owner_id: str, domain: str) -> list:
        """The post for one status, with its edit history when edited and the replies
        others wrote (asked only where something may have changed); after a complete
        listing of the replies, the ones no longer there are marked deleted."""
        from archiver.net.client import NetError
        from archiver.records import CommentsListed
        from archiver_connectors.mastodon.api import comments_from_context, post_from_status, status_key

        status_id = str(status["id"])
        own = status.get("reblog") is None
        history = None
        try:
            if own and status.get("edited_at") and (
                    ctx.full or before is None or before["edited_at"] != status["edited_at"]):
                history = api.history(status_id)
            records: list = [post_from_status(status, history, instance=domain)]
            replies = status.get("replies_count") or 0
            if own and (ctx.full or (before is None and replies) or
                        (before is not None and before["replies"] != replies)):
                comments = comments_from_context(status_id, api.context(status_id), owner_id, domain)
                ids = cast(list[str], [c.native_id for c in comments])   # a status's comment always has its id
                records += [*comments, CommentsListed(status_key(domain, status_id), ids)]
            return records
        except NetError as error:
            if error.kind != "gone":
                raise
            # Deleted between the listing and this call: the listing's copy is kept.
            ctx.report(f"status {status_id}", str(error))
            return [post_from_status(status, instance=domain)]

    # -- followers and following ----------------------------------------------------------
    def _follows(self, api, ctx, me: dict, owner_id: str, domain: str, every_hours: float) -> Iterator[Page]:
        """Each list a page at a time through the core's staging (archiver.archive.lists): a run
        stopped half way goes on from the page it reached."""
        from archiver.archive.lists import list_pages
        from archiver_connectors.mastodon.api import ACCOUNT_PAGE, person_from_account

        state = dict(ctx.state("follows") or {})
        hidden = bool(me.get("hide_collections") or (me.get("source") or {}).get("hide_collections"))
        for kind in ("followers", "following"):
            count = me.get(f"{kind}_count")
            last = state.get(kind) or {}
            due = ctx.full or not (last.get("count") == count and last.get("complete")
                                   and _hours_since(last.get("at")) < every_hours)

            def fetch_page(next_url, kind=kind):
                # The cursor is the Link header's next URL (max_id paging; no token in it).
                url, params = (next_url, None) if next_url else (api.accounts_url(owner_id, kind), {"limit": ACCOUNT_PAGE})
                items, link = api.page(url, params)
                return [Membership(p) for p in (person_from_account(a, domain) for a in items) if p], link

            def finish(listed: int, kind=kind, count=count) -> tuple[bool, dict]:
                complete = True
                if count and not listed:
                    complete = False
                    ctx.report(kind, f"Mastodon listed none of the {count} {kind} the profile counts "
                               "(a hidden list?); kept as a partial list, nobody is counted as lost")
                elif hidden and count and listed < count:
                    complete = False
                    ctx.report(kind, f"the {kind} list is hidden and Mastodon listed {listed} of {count}; "
                               "kept as a partial list")
                state[kind] = {"at": now_utc(), "count": count, "complete": complete, "listed": listed}
                return complete, dict(state)

            yield from list_pages(ctx, kind, fetch_page, stream="follows", due=due, finish=finish)

    # -- official archive (export.py) -----------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.mastodon.export import looks_like_archive

        return looks_like_archive(source)

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.mastodon.export import import_pages

        yield from import_pages(source, ctx)


# --------------------------------------------------------------------------- helpers


def _hours_since(when: str | None) -> float:
    if not when:
        return float("inf")
    moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    return (dt.datetime.now(dt.timezone.utc) - moment).total_seconds() / 3600


def _supports_pkce(http, base: str) -> bool:
    """Mastodon 4.3+ publishes RFC 8414 metadata naming S256; older servers answer 404
    and do not check a code challenge (notes §1)."""
    import httpx

    try:
        response = http.get(f"{base}/.well-known/oauth-authorization-server")
        if response.status_code != 200:
            return False
        return "S256" in (response.json().get("code_challenge_methods_supported") or [])
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def _post_form(http, url: str, form: dict) -> dict:
    import httpx

    from archiver.net.oauth import OAuthError

    try:
        response = http.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as error:
        raise OAuthError(f"{url}: {type(error).__name__}; is the instance reachable?") from None
    try:
        body = response.json()
    except ValueError:
        raise OAuthError(f"{url}: HTTP {response.status_code} without a JSON answer") from None
    if not isinstance(body, dict):
        raise OAuthError(f"{url}: HTTP {response.status_code}: unexpected answer")
    return body


def _register_app(http, base: str, redirect_uri: str) -> dict:
    """POST /api/v1/apps with read scopes only -> {client_id, client_secret}."""
    from archiver.net.oauth import OAuthError
    from archiver_connectors.mastodon.api import APP_NAME, APP_WEBSITE, SCOPES

    body = _post_form(http, f"{base}/api/v1/apps", {
        "client_name": APP_NAME, "redirect_uris": redirect_uri, "scopes": SCOPES, "website": APP_WEBSITE})
    if not body.get("client_id") or not body.get("client_secret"):
        raise OAuthError(f"{base} refused to register archiver as an app: {body.get('error', body)}")
    return {"client_id": body["client_id"], "client_secret": body["client_secret"]}


def _status_order(status_id: str | None) -> tuple[int, str]:
    """Mastodon ids are numbers in text: a longer one is newer."""
    return (len(status_id), status_id) if status_id else (-1, "")


def _walker_state(state: dict) -> dict:
    """The statuses state as archiver.sync.listing keeps it. A walk cut off by an older version
    was kept as {"walk": {"next", "top_id", "listing"}}: it goes on where it was."""
    walk = state.get("walk")
    if not walk:
        return state
    converted = {"newest_id": state.get("newest_id")}
    if walk.get("next"):
        converted.update({"mode": "full" if walk.get("listing") else "incremental", "listing": walk.get("listing"),
                          "cursor": walk["next"], "below": walk["next"], "pending": []})
    return converted
