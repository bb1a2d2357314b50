"""LinkedIn: the member's own data through the Member Data Portability API (members in
the EEA and Switzerland: the member snapshot of every domain, then the changelog) and the
"Get a copy of your data" CSV export that works everywhere (parsed in export.py; both give
the same rows, mapped to records in rows.py).

An API run (``archiver export --platform linkedin``):

1. says when the 60-day token runs out (``ctx.authorization_expires``: the alerts warn a
   week ahead; LinkedIn gives a self-serve app no refresh token);
2. reads the **snapshot**, when one is due (the first run, ``--full``, every
   ``snapshot_days`` days (default 7), or when the changelog no longer reaches back to the
   last run): every domain, page by page (``start`` is a page index; ``paging.links``
   names the next page), each page committed with where the pass stands (stream
   ``snapshot``), so a killed run goes on from there. Posts go through the core's listing
   walker (stream ``posts``; a ``--full`` pass marks posts LinkedIn no longer has as
   deleted); connections, invitations and follows are staged lists that become dated
   snapshots once their domains were read whole (an empty, 404 list domain never empties a
   list). Right after consent LinkedIn is still "processing" the member's history and
   answers 404 everywhere: the run says so and the next run tries again, nothing changes;
3. reads the **changelog** (the last 28 days) from where the last run stopped (stream
   ``changelog``: the newest ``capturedAt`` seen): posts, comments and reactions made since,
   as the same rows. A delete in the changelog deletes nothing (only a full pass does).

A quiet second run (nothing new, snapshot not due) asks one thing: ``GET
/rest/memberChangeLogs`` (one page). A 429 (a daily limit) stops the run cleanly (said in its
errors); the next run goes on from its checkpoint.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Iterator

from archiver.connector import Connector, Option, PostLimits
from archiver.records import ListKind, ListPage, Page, iso_utc
from archiver_connectors.linkedin.rows import VISIBILITY_WORDS

log = logging.getLogger("archiver.linkedin")

SNAPSHOT_DAYS = 7.0       # a new snapshot pass after this many days (option snapshot_days)
REDIRECT_PORT = 8471      # LinkedIn accepts only registered redirect URLs: a fixed port by default
REDIRECT_PATH = "/callback/"

# The snapshot pass, in order: (part, its domains). Lists before the profile: an
# invitation names the member's own profile link, which the profile record then carries.
LIST_PARTS = {"friends": ("CONNECTIONS",), "invitations": ("INVITATIONS",),
              "following": ("MEMBER_FOLLOWS", "COMPANY_FOLLOWS")}
LIST_KINDS: dict[str, tuple[ListKind, ...]] = {
    "friends": ("friends",), "invitations": ("invitations_received", "invitations_sent"), "following": ("following",)}
PROFILE_SECTIONS = ("PROFILE_SUMMARY", "POSITIONS", "EDUCATION", "SKILLS", "CERTIFICATIONS", "PROJECTS",
                    "ORGANIZATIONS", "LANGUAGES", "HONORS", "COURSES", "PUBLICATIONS", "PATENTS",
                    "VOLUNTEERING_EXPERIENCES", "RECOMMENDATIONS", "CAUSES_YOU_CARE_ABOUT", "TEST_SCORES")
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("posts", ("MEMBER_SHARE_INFO",)),
    ("comments", ("ALL_COMMENTS",)),
    ("likes", ("ALL_LIKES",)),
    *LIST_PARTS.items(),
    ("rich_media", ("RICH_MEDIA",)),
    ("profile", ("PROFILE", *PROFILE_SECTIONS)),
)
# Probed when the first domain is empty: all of them empty means LinkedIn is still
# preparing the member's data (every member has a profile).
PROCESSING_PROBES = ("PROFILE", "CONNECTIONS")


class LinkedInConnector(Connector):
    name = "linkedin"
    title = "LinkedIn"
    post_limits = PostLimits(
        "a post's text", caption_chars=3000, checked="2026-12-07", official=False,
        sources=("https://www.ayrshare.com/docs/apis/post/social-networks/linkedin",),
        notes="Hashtags are clickable; a link in the text shows as a preview card when the post has no media.")
    post_noun = "posts"
    default_base_url = "https://api.linkedin.com"
    secret_keys = ("client_id", "client_secret", "tokens")
    visibility_words = VISIBILITY_WORDS
    list_nouns = {"friends": "connections"}
    auth_options = (
        Option("client_id", "Your LinkedIn app's Client ID (Developer Portal → your app → Auth; asked for when "
                            "missing).", aliases=("client_key",)),
        Option("client_secret", "Your LinkedIn app's Primary Client Secret (asked for when missing; prefer the "
                                "prompt).", secret=True),
    )
    config_options = (
        Option("scope", "The Member Data Portability scope your app's Auth tab lists (default "
                        "r_dma_portability_member; some apps show r_dma_portability_self_serve)."),
        Option("api_version", "The LinkedIn-Version (YYYYMM) calls are made with (default: a version archiver "
                              "was tested with)."),
        Option("snapshot_days", "Days between two reads of the whole member snapshot (default 7; the changelog "
                                "fills the days between).", type=float),
    )
    # The API (EEA and Switzerland only) gives what the export does; elsewhere the export is all there is.
    export_needless_after_api_run = True
    export_only_holds = ("your posts, comments, reactions and connections if you live outside the EEA and "
                         "Switzerland (LinkedIn's API serves only members there)")
    manual_export_steps = (
        "On linkedin.com: Me → Settings & Privacy → Data privacy → Get a copy of your data → \"Want something in "
        "particular?\" and tick Connections, Posts (Shares), Comments, Reactions, Invitations, Follows and "
        "Profile (or take the larger archive) → Request archive. When LinkedIn mails the link (minutes for a "
        "subset, up to a day or more for the full archive), download the zip and run `archiver import <zip>` (or "
        "drop it in the inbox folder). Members in the EEA and Switzerland can also let `archiver export` read "
        "the same data through the Member Data Portability API (`archiver auth linkedin`).")

    # -- plumbing --------------------------------------------------------------------
    def _hosts(self) -> tuple[str, str]:
        """(consent page and token endpoint, API) — both the base URL when one is configured."""
        from archiver_connectors.linkedin import api

        if self.account.base_url:
            return self.base_url, self.base_url
        return api.AUTHORIZE_BASE_URL, api.API_BASE_URL

    def _scope(self) -> str:
        from archiver_connectors.linkedin.api import DEFAULT_SCOPE

        return str(self.account.options.get("scope") or self.account.scopes or DEFAULT_SCOPE).strip()

    def _version(self) -> str:
        from archiver_connectors.linkedin.api import DEFAULT_VERSION

        return str(self.account.options.get("api_version") or DEFAULT_VERSION).strip()

    def _snapshot_days(self) -> float:
        try:
            return float(self.account.options.get("snapshot_days", SNAPSHOT_DAYS))
        except (TypeError, ValueError):
            return SNAPSHOT_DAYS

    def _http(self):
        import httpx

        return httpx.Client(transport=self.transport, timeout=30)

    def _tokens(self, http=None):
        from archiver_connectors.linkedin.api import TOKEN_PATH, LinkedInTokens, now

        auth_base, _api = self._hosts()
        return LinkedInTokens(self.secrets, self.account.name, f"{auth_base}{TOKEN_PATH}", http or self._http(),
                              clock=now)

    # -- authorization ---------------------------------------------------------------
    def authorize(self, *, echo, open_browser=None, port: int = 0, prompt=None, client_id=None, client_secret=None,
                  timeout: float = 300):
        """LinkedIn's 3-legged OAuth (notes §1.3): the consent page, then the code for a
        60-day access token. LinkedIn accepts only redirect URLs registered on the app, so
        the loopback listens on a fixed port (8471 unless ``--port`` says another)."""
        from archiver.net.client import NetError
        from archiver.net.oauth import OAuthError, app_credentials, run_loopback_flow
        from archiver_connectors.linkedin.api import authorize_url

        account = self.account.name
        client_id, client_secret = app_credentials(
            self.secrets, "linkedin", account, {"client_id": client_id, "client_secret": client_secret},
            prompt=prompt, missing=lambda key: f"no LinkedIn {key} for account {account!r} (your app's Client ID "
                                               "and Primary Client Secret, Developer Portal → your app → Auth): "
                                               f"pass --{key.replace('_', '-')}, or run this command on a "
                                               "terminal to be asked for it")
        scope = self._scope()
        auth_base, _api = self._hosts()
        if not port and not self.account.base_url:
            port = REDIRECT_PORT
        if port:
            echo(f"LinkedIn accepts only registered redirect URLs: your app's Auth tab must list "
                 f"http://127.0.0.1:{port}{REDIRECT_PATH} under \"Authorized redirect URLs for your app\".")
        try:
            result = run_loopback_flow(
                lambda redirect_uri, state: authorize_url(auth_base, client_id=client_id, redirect_uri=redirect_uri,
                                                          state=state, scope=scope),
                path=REDIRECT_PATH, open_browser=open_browser, echo=echo, port=port, timeout=timeout)
        except OAuthError as refused:
            raise OAuthError(f"{refused} {_consent_hint(str(refused), scope)}".strip()) from None
        with self._http() as http:
            tokens = self._tokens(http)
            try:
                body = tokens.request({"grant_type": "authorization_code", "code": result.code,
                                       "client_id": client_id, "client_secret": client_secret,
                                       "redirect_uri": result.redirect_uri})
            except NetError as error:
                raise OAuthError(f"LinkedIn's token endpoint failed: {error}") from None
            if "error" in body or not body.get("access_token"):
                raise OAuthError(f"LinkedIn refused the authorization code: {body.get('error', 'no access token')}: "
                                 f"{body.get('error_description', '')}. Run `archiver auth linkedin --account "
                                 f"{account}` again.")
            record = tokens.store(body)
        granted = record.get("scope") or scope
        until = iso_utc(record["access_expires_at"])
        renew = ("LinkedIn renews it itself (your app has refresh tokens)" if record.get("refresh_token") else
                 "LinkedIn gives archiver no way to renew it: run this command again before then (runs remind "
                 "you from a week before)")
        return (f"LinkedIn account {account!r} authorized with {granted}; the token is valid until {until}. {renew}. "
                "Right after your consent LinkedIn prepares your data for a while: until it is ready, runs say so "
                "and try again next time.")

    # -- API sync ----------------------------------------------------------------------
    def pages(self, ctx) -> Iterator[Page]:
        from archiver.net.client import NetError
        from archiver_connectors.linkedin.api import LinkedInApi

        tokens = self._tokens()
        record = tokens.load()
        self._say_expiry(ctx, record)
        _auth, api_base = self._hosts()
        api = LinkedInApi(api_base, tokens, version=self._version(), scope=self._scope(), transport=self.transport,
                          sleep=self.sleep, cancel=ctx.cancel)
        try:
            if self._snapshot_due(ctx):
                yield from self._snapshot(api, ctx)
            yield from self._changelog(api, ctx)
        except NetError as error:
            if error.kind != "rate_limited":
                raise
            ctx.report("throttled", str(error))
        finally:
            api.close()

    def _say_expiry(self, ctx, record: dict) -> None:
        """When the authorization runs out for good: the access token's end without a refresh
        token, the refresh token's end with one (None when it does not say)."""
        renewable = bool(record.get("refresh_token"))
        end = record.get("refresh_expires_at") if renewable else record.get("access_expires_at")
        ctx.authorization_expires(
            iso_utc(end) if isinstance(end, (int, float)) else None,
            f"run `archiver auth linkedin --account {self.account.name}` again (a LinkedIn access token lasts "
            "60 days and cannot be renewed by archiver)")

    # -- the snapshot ------------------------------------------------------------------
    def _snapshot_due(self, ctx) -> bool:
        from archiver_connectors.linkedin.api import changelog_floor_ms, now

        state = ctx.state("snapshot") or {}
        if ctx.full or state.get("taken_at") and not state.get("completed_at"):
            return True
        completed = state.get("completed_at")
        if not completed:
            return True
        if _age_days(completed) >= self._snapshot_days():
            return True
        read_at = (ctx.state("changelog") or {}).get("read_at_ms")
        # The changelog no longer reaches back to the last complete read of it: a gap only
        # a new snapshot fills.
        return isinstance(read_at, int) and read_at < changelog_floor_ms(now())

    def _snapshot(self, api, ctx) -> Iterator[Page]:
        """One pass over every domain (see the module docstring). Each part's last page
        carries the part in ``done``: a pass killed anywhere goes on where it stood."""
        state = ctx.state("snapshot") or {}
        if not state.get("taken_at") or state.get("completed_at"):
            state = {"taken_at": _now(), "done": [], "lists": {}, "full": bool(ctx.full)}
        for part, domains in PARTS:
            if part in state["done"]:
                continue
            if part == "posts":
                first, following = api.snapshot_page(domains[0], 0)
                if not first:
                    if self._processing(api):
                        ctx.note("LinkedIn answered every domain of the snapshot with \"no data\": it does so for a "
                                 "while after you consent, while it prepares your data (if it goes on for days, check "
                                 "that the app still has your consent). Nothing in the archive was changed; the next "
                                 "run tries again.")
                        return
                    # No posts at all: nothing to walk, and nothing to conclude (an empty
                    # answer never marks archived posts deleted).
                else:
                    yield from self._posts(api, ctx, first, following)
                yield Page("snapshot", [], _copy(self._done(state, part)))
            elif part in LIST_PARTS:
                yield from self._list_part(api, ctx, state, part, domains)
            else:
                yield from self._rows_part(api, ctx, state, part, domains)
        yield Page("snapshot", [], {"taken_at": state["taken_at"], "completed_at": _now()})

    @staticmethod
    def _done(state: dict, part: str) -> dict:
        state["done"] = [*state["done"], part]
        state.pop("at", None)
        return state

    def _processing(self, api) -> bool:
        """Every probe empty: LinkedIn has not prepared the member's snapshot yet."""
        return all(not api.snapshot_page(domain, 0)[0] for domain in PROCESSING_PROBES)

    def _posts(self, api, ctx, first: list, following: int | None) -> Iterator[Page]:
        """MEMBER_SHARE_INFO through the core's listing walker (stream ``posts``): every page
        on every pass (the order of the rows is LinkedIn's [U]); a ``--full`` pass that reads
        them all marks the posts LinkedIn no longer has as deleted. ``first``: page 0,
        fetched already."""
        from archiver.sync.listing import Batch, Listing
        from archiver_connectors.linkedin import rows

        def fetch(cursor):
            if not cursor:
                found, next_start = first, following
            else:
                found, next_start = api.snapshot_page("MEMBER_SHARE_INFO", cursor)
            return Batch([row for _domain, row in found], next_start)

        def item_id(row) -> str:
            return rows.urn_of(rows.cell(row, "ShareLink", "Share Link")) or f"date:{rows.cell(row, 'Date')}"

        walk = Listing(ctx, "posts", fetch=fetch, item_id=item_id, map_item=lambda row: [rows.post_from_row(row)],
                       stop_at_known=False, resume_at_cursor=True)
        yield from walk.pages()

    def _domain_pages(self, api, ctx, state: dict, part: str, domains: tuple[str, ...]):
        """(domain, page index, rows) for every page of the part's domains, from where an
        interrupted pass stood; ``state["at"]`` says where the pass stands after each. A
        domain LinkedIn refuses by name (400) is reported and left out (``state["refused"]``)."""
        from archiver_connectors.linkedin.api import DomainRefused

        at = state.get("at") if (state.get("at") or {}).get("part") == part else None
        if at is not None and at.get("start") is None:
            return     # every page of the part was read; only its end is left
        index = domains.index(at["domain"]) if at and at.get("domain") in domains else 0
        start = at.get("start") or 0 if at else 0
        for position, domain in enumerate(domains[index:], start=index):
            while True:
                try:
                    found, next_start = api.snapshot_page(domain, start)
                except DomainRefused as refused:
                    ctx.report(f"{domain} domain", f"{refused}; LinkedIn may call it otherwise: it is left out of "
                                                   "this pass (a list it is part of counts as incomplete)")
                    state["refused"] = sorted({*state.get("refused", []), domain})
                    found, next_start = [], None
                if next_start is not None:
                    state["at"] = {"part": part, "domain": domain, "start": next_start}
                elif position + 1 < len(domains):
                    state["at"] = {"part": part, "domain": domains[position + 1], "start": 0}
                else:
                    state["at"] = {"part": part, "domain": domain, "start": None}
                yield domain, start, [row for _name, row in found]
                if next_start is None:
                    break
                start = next_start
            start = 0

    def _list_part(self, api, ctx, state: dict, part: str, domains: tuple[str, ...]) -> Iterator[Page]:
        """A list's domains as a staged list of each of the part's kinds (dated with the
        pass); whole once every domain was read, complete when none of its rows was bad.
        A list whose domains are all empty (404) is left as the archive has it."""
        from archiver_connectors.linkedin import rows

        kinds = LIST_KINDS[part]
        progress = state["lists"].setdefault(part, {"rows": 0, "bad": 0})
        for domain, start, found in self._domain_pages(api, ctx, state, part, domains):
            members: dict[ListKind, list] = {kind: [] for kind in kinds}
            for position, row in enumerate(found):
                try:
                    if domain == "INVITATIONS":
                        mapped = rows.invitation_from_row(row)
                        owner_url = rows.owner_url_of_invitation(row)
                        if owner_url and not state.get("owner_url"):
                            state["owner_url"] = owner_url
                        if mapped is not None:
                            members[mapped[0]].append(mapped[1])
                        continue
                    if domain == "CONNECTIONS":
                        membership = rows.connection_from_row(row)
                    elif domain == "MEMBER_FOLLOWS":
                        membership = rows.member_follow_from_row(row)
                    else:
                        membership = rows.company_follow_from_row(row)
                    if membership is not None:
                        members[kinds[0]].append(membership)
                except ValueError as error:
                    progress["bad"] += 1
                    ctx.report(f"{domain} page {start} row {position + 1}", str(error))
            progress["rows"] += len(found)
            records = [ListPage(kind, state["taken_at"], people, cursor=state["at"])
                       for kind, people in members.items() if people]
            yield Page("snapshot", records, _copy(state))
        # One domain of a list refused (following: members and companies) leaves it
        # incomplete: what the other gave must not end the first one's intervals.
        whole = not progress["bad"] and not set(domains) & set(state.get("refused", []))
        ends = [ListPage(kind, state["taken_at"], last=True, complete=whole) for kind in kinds] if progress["rows"] else []
        yield Page("snapshot", ends, _copy(self._done(state, part)))

    def _rows_part(self, api, ctx, state: dict, part: str, domains: tuple[str, ...]) -> Iterator[Page]:
        """Comments, reactions, the Rich Media notice, and the profile with its sections
        (kept in the pass's state until all are read: one profile record, one version)."""
        from archiver_connectors.linkedin import rows

        for domain, start, found in self._domain_pages(api, ctx, state, part, domains):
            records: list[Any] = []
            for position, row in enumerate(found):
                try:
                    if domain == "ALL_COMMENTS":
                        comment = rows.comment_from_row(row)
                        if comment is not None:
                            records.append(comment)
                    elif domain == "ALL_LIKES":
                        records.append(rows.reaction_from_row(row))
                    elif domain == "RICH_MEDIA":
                        note = rows.rich_media_note(row)
                        if note and note not in ctx.notes:
                            ctx.note(note)
                    else:   # kept in the pass's state meanwhile: never the contact data
                        kept = {k: v for k, v in row.items()
                                if rows.column_key(k) not in rows.PRIVATE_PROFILE_COLUMNS}
                        state.setdefault("sections", {}).setdefault(domain, []).append(kept)
                except ValueError as error:
                    ctx.report(f"{domain} page {start} row {position + 1}", str(error))
            yield Page("snapshot", records, _copy(state))
        records = []
        if part == "profile":
            sections = state.pop("sections", {})
            profile_rows = sections.pop("PROFILE", [])
            profile = rows.profile_from_rows(profile_rows[0] if profile_rows else None, sections,
                                             owner_url=state.get("owner_url"))
            records = [profile] if profile is not None else []
        yield Page("snapshot", records, _copy(self._done(state, part)))

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.linkedin.export import find_export

        return bool(find_export(source))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.linkedin.export import export_pages

        yield from export_pages(source, ctx)

    # -- the changelog -----------------------------------------------------------------
    def _changelog(self, api, ctx) -> Iterator[Page]:
        """The changelog's events since the newest one the last run saw (or the last 28
        days), a page at a time, each committed with the newest ``capturedAt`` it held
        (``since_ms``). Events of the same millisecond are read again after a stop: records
        are upserts. ``read_at_ms``: when a read last went to the end (the gap check)."""
        from archiver_connectors.linkedin.api import changelog_floor_ms, now

        state = ctx.state("changelog") or {}
        started_ms = int(now() * 1000)
        floor = changelog_floor_ms(now())
        since = max(state.get("since_ms") or floor, floor)
        start = 0
        skipped: dict[str, int] = {}
        while True:
            events, next_start = api.changelog_page(since, start)
            records: list[Any] = []
            newest = since
            for event in events:
                captured = event.get("capturedAt")
                if isinstance(captured, int) and not isinstance(captured, bool):
                    newest = max(newest, captured)
                try:
                    record = _record_of_event(event)
                except ValueError as error:
                    ctx.report(f"changelog event {event.get('id')}", str(error))
                    continue
                if record is None:
                    name = f"{event.get('resourceName')} {event.get('method')}"
                    skipped[name] = skipped.get(name, 0) + 1
                else:
                    records.append(record)
            last = next_start is None
            yield Page("changelog", records, {"since_ms": newest,
                                              "read_at_ms": started_ms if last else state.get("read_at_ms")})
            if last:
                break
            start = next_start
        if skipped:
            log.info("changelog events not archived (only posts, comments and reactions are): %s",
                     ", ".join(f"{n} × {name}" for name, n in sorted(skipped.items())))


def _consent_hint(refusal: str, scope: str) -> str:
    """What a refused consent most likely means (notes §1.1, §1.2)."""
    if "scope" in refusal:
        return (f"The app does not have the scope {scope!r}: request the \"Member Data Portability API (Member)\" "
                "product for it, and if its Auth tab lists the scope under another name (e.g. "
                "r_dma_portability_self_serve), set `scope = \"…\"` in the account's table.")
    if "access_denied" in refusal:
        return ("LinkedIn lets only members located in the EEA and Switzerland consent to this API; elsewhere, "
                "import the \"Get a copy of your data\" export instead (`archiver import <zip>`).")
    return ""


# --------------------------------------------------------------------------- changelog events


def _record_of_event(event: dict):
    """A changelog event as the record its snapshot row would give (the same row keys,
    through rows.py, so the same ids), or None for an event archiver does not keep (a
    delete, an edit that carries no text, another resource)."""
    from archiver_connectors.linkedin import rows
    from archiver_connectors.linkedin.api import csv_date, share_link

    method = str(event.get("method") or "").upper()
    resource = str(event.get("resourceName") or "")
    found = event.get("activity")
    activity: dict = found if isinstance(found, dict) else {}
    if method not in ("CREATE", "UPDATE", "PARTIAL_UPDATE"):
        return None
    created = (activity.get("created") or {}).get("time") if isinstance(activity.get("created"), dict) else None
    when = created if isinstance(created, (int, float)) else event.get("capturedAt")
    if not isinstance(when, (int, float)):
        raise ValueError("no time (activity.created.time or capturedAt)")
    date = csv_date(when / 1000)
    if resource in ("ugcPosts", "shares", "posts"):
        urn = str(activity.get("id") or event.get("resourceId") or "")
        if not urn.startswith("urn:li:"):
            raise ValueError(f"a post event without a post URN ({urn[:60]!r})")
        content = ((activity.get("specificContent") or {}).get("com.linkedin.ugc.ShareContent") or {})
        text = ((content.get("shareCommentary") or {}).get("text") if isinstance(content, dict) else None)
        if text is None and isinstance(activity.get("commentary"), str):
            text = activity["commentary"]      # the newer Posts API's shape
        if text is None and method != "CREATE":
            return None     # an edit of something else: never blank the archived text
        media = content.get("media") if isinstance(content, dict) else None
        link = next((m.get("originalUrl") for m in media or [] if isinstance(m, dict) and m.get("originalUrl")), "")
        visibility = activity.get("visibility")
        if isinstance(visibility, dict):
            visibility = visibility.get("com.linkedin.ugc.MemberNetworkVisibility") or ""
        return rows.post_from_row({"Date": date, "ShareLink": share_link(urn), "ShareCommentary": text or "",
                                   "SharedUrl": link or "", "MediaUrl": "", "Visibility": str(visibility or "")})
    target = str(activity.get("object") or activity.get("root") or "")
    if resource in ("socialActions/comments", "comments"):
        message = activity.get("message")
        text = message.get("text") if isinstance(message, dict) else message
        if not isinstance(text, str) or not target:
            return None
        return rows.comment_from_row({"Date": date, "Link": share_link(target), "Message": text})
    if resource in ("socialActions/likes", "reactions", "likes"):
        if not target or method != "CREATE":
            return None
        kind = str(activity.get("reactionType") or "LIKE")
        return rows.reaction_from_row({"Date": date, "Type": kind, "Link": share_link(target)})
    return None


def _now() -> str:
    from archiver_connectors.linkedin.api import now

    return iso_utc(now())


def _age_days(when: str) -> float:
    from archiver_connectors.linkedin.api import now

    moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    return (now() - moment.timestamp()) / 86400


def _copy(state: dict) -> dict:
    """A page's state is written when the page is; the live dict goes on changing."""
    import json

    return json.loads(json.dumps(state))
