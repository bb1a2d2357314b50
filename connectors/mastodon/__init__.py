"""Mastodon: any instance's REST API (profile, statuses with edits, media, replies from
others, followers and following) and the official account archive (export.py).

See ../shared/platforms/mastodon.md.

Streams and their checkpoints (sync_state):

- ``statuses``: ``{"newest_id": id, "walk": {"next": url, "top_id": id, "listing": L}}``.
  The first run (and ``--full``) walks the owner's statuses from the newest back, following
  the Link header's ``rel="next"``; ``walk`` holds where it stands, so a killed run goes on
  from there. Later runs walk forward from ``newest_id`` with ``min_id`` and the Link
  header's ``rel="prev"`` (the documented way to page newer), then refresh the newest page
  for counts, edits and new replies. A ``--full`` walk names itself (``listing``) and its
  last page lets the writer tombstone statuses it no longer lists.
- ``follows``: when each list was last taken and its count. The follower and following
  lists are taken whole (Link header paging) on ``--full``, when the profile's count
  changed, or once they are older than ``follows_every_hours``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Iterator
from urllib.parse import urlencode

from archiver.connector import Connector
from archiver.records import Membership, Page, now_utc

log = logging.getLogger("archiver.mastodon")

FOLLOWS_EVERY_HOURS = 20.0     # an unchanged count still gets a fresh list this often


# Mastodon's visibility words -> the archive's: "private" is followers only, "direct"
# only the people the post mentions.
VISIBILITY_WORDS = {"private": "followers", "direct": "private"}


class MastodonConnector(Connector):
    name = "mastodon"
    title = "Mastodon"
    post_noun = "posts"
    visibility_words = VISIBILITY_WORDS
    default_base_url = ""       # every account names its own instance (base_url)
    secret_keys = ("client_id", "client_secret", "tokens")
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
    def account_settings_from_auth(cls, *, instance: str | None = None, handle: str | None = None) -> dict | None:
        from archiver_connectors.mastodon.api import normalize_instance

        if not instance:
            return None
        try:
            return {"base_url": normalize_instance(instance)}
        except ValueError as error:
            from archiver.oauth import OAuthError

            raise OAuthError(str(error)) from None

    def _option(self, key: str, default: float) -> float:
        value = self.account.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"[accounts.{self.account.name}] {key} = {value!r}: expected a number ≥ 0 "
                             f"(default {default})")
        return float(value)

    def _instance(self, given: str | None = None) -> str:
        """The instance's base URL: the account's base_url, or --instance at `archiver auth`."""
        from archiver.oauth import OAuthError
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
        if not (configured or asked):
            raise OAuthError(f"no instance for Mastodon account {self.account.name!r}: pass --instance "
                             "https://your.instance, or set base_url in [accounts."
                             f"{self.account.name}]")
        return configured or asked

    def _http(self):
        import httpx

        return httpx.Client(transport=self.transport, timeout=30,
                            headers={"User-Agent": "archiver/0.1 (+personal archive)"})

    # -- authorization -----------------------------------------------------------------
    def authorize(self, *, echo, open_browser=None, port: int = 0, instance: str | None = None,
                  token: str | None = None, timeout: float = 300, **_) -> str:
        from archiver.net import scrubber
        from archiver.oauth import OAuthError, pkce_pair, run_loopback_flow
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
        from archiver.net import NetError
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
        from archiver.net import NetError
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
        from archiver_connectors.mastodon.api import STATUS_PAGE

        url = api.statuses_url(owner_id)
        state = ctx.state("statuses") or {}
        newest = state.get("newest_id")
        walk = state.get("walk")
        if ctx.full and not (walk and walk.get("listing")):
            walk = {"next": None, "top_id": None, "listing": uuid.uuid4().hex}
        elif walk is None and newest is None:
            walk = {"next": None, "top_id": None, "listing": None}
        walked = walk is not None
        if walk is not None:
            # Backward, newest first, by rel="next". A walk cut off earlier goes on where it was.
            listing = walk.get("listing")
            start, params = (walk["next"], None) if walk.get("next") else (url, {"limit": STATUS_PAGE})
            for items, next_url in api.pages(start, params, rel="next"):
                top = walk.get("top_id") or (str(items[0]["id"]) if items else None)
                walk = {"next": next_url, "top_id": top, "listing": listing}
                records = self._status_records(api, ctx, items, owner_id, domain)
                if next_url is None:
                    newest = top or newest
                    yield Page("statuses", records, {"newest_id": newest}, listing=listing,
                               complete=listing is not None)
                else:
                    yield Page("statuses", records, {"newest_id": newest, "walk": walk}, listing=listing)
        if newest:
            # Forward from the newest known status: min_id pages, then rel="prev".
            for items, _prev in api.pages(url, {"limit": STATUS_PAGE, "min_id": newest}, rel="prev"):
                if not items:
                    break
                newest = str(items[0]["id"])      # pages are newest first
                yield Page("statuses", self._status_records(api, ctx, items, owner_id, domain),
                           {"newest_id": newest})
        if not walked:
            # The newest page again: fresh counts, edits and replies of recent statuses.
            items, _next = next(api.pages(url, {"limit": STATUS_PAGE}))
            if items:
                yield Page("recent", self._status_records(api, ctx, items, owner_id, domain))

    def _status_records(self, api, ctx, items: list[dict], owner_id: str, domain: str) -> list:
        """Posts for a page of statuses, with the edit history of edited ones and the
        replies others wrote (asked only where something may have changed)."""
        from archiver.net import NetError
        from archiver_connectors.mastodon.api import comments_from_context, post_from_status, status_key

        archived = ctx.archived_posts([status_key(domain, s["id"]) for s in items],
                                      {"replies": "comment_count", "edited_at": "json_extract(raw, '$.api.edited_at')"})
        records: list = []
        for status in items:
            status_id = str(status["id"])
            own = status.get("reblog") is None
            before = archived.get(status_key(domain, status_id))
            history = None
            try:
                if own and status.get("edited_at") and (
                        ctx.full or before is None or before["edited_at"] != status["edited_at"]):
                    history = api.history(status_id)
                post = post_from_status(status, history, instance=domain)
                records.append(post)
                replies = status.get("replies_count") or 0
                if own and (ctx.full or (before is None and replies) or
                            (before is not None and before["replies"] != replies)):
                    context = api.context(status_id)
                    records.extend(comments_from_context(status_id, context, owner_id, domain))
            except NetError as error:
                if error.kind != "gone":
                    raise
                # Deleted between the listing and this call: the listing's copy is kept.
                ctx.report(f"status {status_id}", str(error))
                if not any(getattr(r, "native_id", None) == status_key(domain, status_id) for r in records):
                    records.append(post_from_status(status, instance=domain))
        return records

    # -- followers and following ----------------------------------------------------------
    def _follows(self, api, ctx, me: dict, owner_id: str, domain: str, every_hours: float) -> Iterator[Page]:
        """Each list a page at a time through the core's staging (archiver.lists): a run
        stopped half way goes on from the page it reached."""
        from archiver.lists import list_pages
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

    # -- official archive (export.py, written separately) ---------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        try:
            from archiver_connectors.mastodon.export import looks_like_archive
        except ModuleNotFoundError as error:
            if error.name != "archiver_connectors.mastodon.export":
                raise
            return False
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

    from archiver.oauth import OAuthError

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
    from archiver.oauth import OAuthError
    from archiver_connectors.mastodon.api import APP_NAME, APP_WEBSITE, SCOPES

    body = _post_form(http, f"{base}/api/v1/apps", {
        "client_name": APP_NAME, "redirect_uris": redirect_uri, "scopes": SCOPES, "website": APP_WEBSITE})
    if not body.get("client_id") or not body.get("client_secret"):
        raise OAuthError(f"{base} refused to register archiver as an app: {body.get('error', body)}")
    return {"client_id": body["client_id"], "client_secret": body["client_secret"]}
