"""Bluesky (AT Protocol): the account's repository from its PDS (posts, reposts, likes,
follows, profile, every blob), followers / following / profile counts / replies from the
AppView, and the repository CAR file Bluesky's settings page exports.

One export run, in order (each step cheap when nothing changed):
1. identity: DID from the stored session, PDS from the DID document (or ``pds_url``);
2. profile counts (getProfile) and the recent posts' counts (getAuthorFeed);
3. the repository (getRepo), only when its head revision (getLatestCommit) moved, a
   recent post's counts changed, or on ``--full``; its blobs are downloaded once each
   (an archived blob is never fetched again) and checked against their CID;
4. replies under the owner's posts whose reply count changed (all on ``--full``), as
   comments, resumable through a to-do list in sync_state;
5. followers and following as dated snapshots when their counts changed (always on
   ``--full``); a list cut short is stored as partial, never as complete.
The repository's revision is checkpointed after all of that (a run killed earlier reads
the repo again: the follow dates come from it), and the threads to read are saved before
the posts whose new counts call for them are written.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import uuid
from typing import Any, Callable, Iterator, TypedDict

from archiver.connector import GRAPHEMES, ApiRate, Connector, Option, PostLimits
from archiver.records import ListKind, Page, Profile, iso_utc, now_utc

log = logging.getLogger("archiver.bluesky")

RECENT_DAYS = 30        # counts (and so new replies) of posts this young are checked every run
POSTS_PER_PAGE = 50
THREADS_PER_PAGE = 20
OPTION_KEYS = ("handle", "plc_url", "pds_url", "appview_url")


class Settings(TypedDict):
    """An account's Bluesky options, checked (BlueskyConnector.settings)."""

    handle: str | None
    entryway: str           # base_url: where a handle is resolved and a session begins
    plc_url: str
    pds_url: str | None     # None: the one the account's DID document names
    appview_url: str


class BlueskyConnector(Connector):
    name = "bluesky"
    title = "Bluesky"
    # 3,000 per 5 minutes per IP address: a fleet behind one address shares it.
    api_rate = ApiRate(per_minute=600, burst=10, source="https://docs.bsky.app/docs/advanced-guides/rate-limits")
    post_limits = PostLimits(
        "a post's text", caption_chars=300, caption_unit=GRAPHEMES, checked="2026-12-07",
        sources=("https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/feed/post.json",),
        notes="Also at most 3,000 bytes; a link counts in full unless the app shortens it.")
    post_noun = "posts"
    # How people show here (archiver audience links): profiles at bsky.app/profile/<handle>;
    # a handle is a domain its holder proved, "alice.bsky.social" one Bluesky hands out.
    profile_hosts = ("bsky.app",)
    handles_are_domains = True
    handle_domains = ("bsky.social",)
    other_names = ("bsky",)
    secret_keys = ("tokens",)
    auth_options = (
        Option("handle", "Your handle, e.g. alice.bsky.social (a new account needs no config entry first: "
               "it is added).", metavar="HANDLE"),
        Option("token", "The app password (bsky.app → Settings → Privacy and security → App passwords), "
               "instead of typing it when asked.", secret=True, stdin=True),
    )
    config_options = (
        Option("handle", 'Your handle, e.g. "alice.bsky.social".'),
        Option("did", 'Your DID, e.g. "did:plc:…" (checked against the repository an import reads).'),
        Option("plc_url", "The PLC directory (self-hosted set-ups; default https://plc.directory)."),
        Option("pds_url", "Your PDS (default: the one your DID document names)."),
        Option("appview_url", "The AppView (default https://public.api.bsky.app)."),
    )
    default_base_url = "https://bsky.social"   # the entryway: resolves handles for Bluesky-hosted accounts
    manual_export_steps = (
        "On bsky.app: Settings → Account → Export my data → Download CAR file; then run "
        "`archiver import <file>.car` (or drop it in the inbox folder). It holds your posts, likes, "
        "reposts and follows; images and videos are fetched by `archiver export`."
    )

    # -- settings --------------------------------------------------------------------
    @classmethod
    def account_settings_from_auth(cls, options: dict) -> dict | None:
        handle = options.get("handle")
        if not handle:
            return None
        return {"handle": handle.strip().lstrip("@")}

    def settings(self) -> Settings:
        """The account's Bluesky options, validated; errors name the config key."""
        from archiver_connectors.bluesky.api import DEFAULT_APPVIEW_URL, DEFAULT_PLC_URL, check_service_url

        name = self.account.name
        options = self.account.options
        unknown = sorted(set(options) - set(OPTION_KEYS))
        if unknown:
            raise ValueError(f"[accounts.{name}] has unknown key(s) {', '.join(unknown)} for a Bluesky account; "
                             f"known: {', '.join(OPTION_KEYS)}")
        handle = options.get("handle")
        if handle is not None and (not isinstance(handle, str) or not handle.strip()):
            raise ValueError(f"[accounts.{name}] handle must be your handle in double quotes, "
                             f"e.g. \"alice.bsky.social\" (found {handle!r})")
        return {
            "handle": handle.strip().lstrip("@") if handle else None,
            "entryway": check_service_url(self.base_url, "base_url", name),
            "plc_url": check_service_url(options.get("plc_url", DEFAULT_PLC_URL), "plc_url", name),
            "pds_url": check_service_url(options["pds_url"], "pds_url", name) if options.get("pds_url") else None,
            "appview_url": check_service_url(options.get("appview_url", DEFAULT_APPVIEW_URL), "appview_url", name),
        }

    def _session_client(self):
        import httpx

        return httpx.Client(transport=self.transport, timeout=30,
                            headers={"User-Agent": "archiver/0.1 (+personal archive)"})

    def _api(self, cancel=None, *, with_session: bool = True, interactive: bool = False):
        from archiver.net.client import Pacer
        from archiver_connectors.bluesky.api import INTERACTIVE_RETRY_POLICY, RETRY_POLICY, BlueskyApi, BlueskyTokens

        settings = self.settings()
        tokens = BlueskyTokens(self.secrets, self.account.name, self._session_client()) if with_session else None
        self._pacer = getattr(self, "_pacer", None) or Pacer()   # one per run: API calls and blob downloads
        return BlueskyApi(tokens=tokens, pds_url=settings["pds_url"] or settings["entryway"],
                          appview_url=settings["appview_url"], transport=self.transport, sleep=self.sleep,
                          cancel=cancel, pacer=self._pacer,
                          retry=INTERACTIVE_RETRY_POLICY if interactive else RETRY_POLICY), settings

    def media_client(self):
        """Blobs come from the PDS (getBlob): same pacing, retries and (in a fleet) shared
        limit as the API, no token."""
        from archiver.net.client import ApiClient, Pacer
        from archiver_connectors.bluesky.api import RETRY_POLICY

        self._pacer = getattr(self, "_pacer", None) or Pacer()
        kwargs = {"sleep": self.sleep} if self.sleep else {}
        import logging

        return ApiClient(transport=self.transport, pacer=self._pacer, retry=RETRY_POLICY, cancel=self.cancel,
                         timeout=120, retry_log_level=logging.DEBUG, links=self.link_policy(), links_are_api=True,
                         **kwargs)

    # -- authorization -----------------------------------------------------------------
    def authorize(self, *, echo, open_browser=None, port: int = 0, prompt=None, handle=None, token=None) -> str:
        """App-password login: handle → DID → PDS, createSession there, keep the session.
        The app password is sent once and never stored."""
        from archiver.net.client import NetError, scrubber
        from archiver.net.oauth import OAuthError
        from archiver_connectors.bluesky.api import BlueskyTokens, create_session, pds_from_document, resolve_identity

        try:
            settings = self.settings()
        except ValueError as error:
            raise OAuthError(str(error)) from None
        account = self.account.name
        handle = (handle or settings["handle"] or "").strip().lstrip("@")
        if not handle:
            raise OAuthError(f"no Bluesky handle for account {account!r}: pass --handle alice.bsky.social "
                             f"or set handle in [accounts.{account}]")
        app_password = token
        if not app_password and prompt is not None:
            # The CLI hides what is typed for keys ending in "secret".
            app_password = prompt("app_password")
        if not app_password:
            raise OAuthError("no app password: create one on bsky.app (Settings → Privacy and security → "
                             "App passwords) and type it when asked, or pipe it to --token-stdin")
        app_password = app_password.strip()
        scrubber.add(app_password)
        api, _ = self._api(with_session=False, interactive=True)
        try:
            identity = resolve_identity(api.client, handle, entryway=settings["entryway"],
                                        plc_url=settings["plc_url"], account=account,
                                        pds_url=settings["pds_url"])
            with self._session_client() as http:
                body = create_session(http, identity.pds_url, identity.did, app_password)
                del app_password
                if body.get("did") != identity.did:
                    raise OAuthError(f"the PDS {identity.pds_url} logged in {body.get('did')!r}, not {identity.did} "
                                     f"({handle}); check pds_url in [accounts.{account}]")
                pds = identity.pds_url
                if not settings["pds_url"] and isinstance(body.get("didDoc"), dict):
                    pds = pds_from_document(body["didDoc"]) or pds
                BlueskyTokens(self.secrets, account, http).store_session(body, session_url=pds)
        except NetError as error:
            raise OAuthError(str(error)) from None
        finally:
            api.close()
        return (f"Bluesky account {account!r} authorized: {body.get('handle') or handle} ({identity.did}) "
                f"on {pds}. The app password was used once and not stored.")

    # -- API sync ----------------------------------------------------------------------
    def pages(self, ctx) -> Iterator[Page]:
        from archiver_connectors.bluesky.api import pds_endpoint

        api, settings = self._api(cancel=ctx.cancel)
        try:
            did = api.tokens.did
            if not did:
                from archiver.net.client import NetError
                raise NetError(f"the stored Bluesky session of {self.account.name!r} names no account; run "
                               f"`archiver auth bluesky --account {self.account.name}` again", kind="auth")
            # Accounts move between servers: the DID document says where the repo lives now.
            api.pds_url = settings["pds_url"] or pds_endpoint(api.client, did, settings["plc_url"], self.account.name)
            run = _ExportRun(self, api, ctx, did)
            yield from run.pages()
        finally:
            api.close()

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.bluesky.export import looks_like_repo

        return looks_like_repo(source)

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.bluesky.export import import_pages

        yield from import_pages(source, ctx)


class _ExportRun:
    """One `archiver export` of one Bluesky account (see the module docstring)."""

    def __init__(self, connector: BlueskyConnector, api, ctx, did: str):
        self.connector = connector
        self.api = api
        self.ctx = ctx
        self.did = did
        self.full = ctx.full

    def pages(self) -> Iterator[Page]:
        view = self.api.get_profile(self.did)
        handle = view.get("handle") or self.api.tokens.load().get("handle")
        counts = self._recent_counts()
        head = self.api.latest_commit(self.did)
        repo_state = self.ctx.state("repo") or {}
        changed_counts = self._changed_counts(counts)
        following_since: dict[str, str | None] = {}
        self.own_top_level: list[str] = []
        repo_read = None

        def plan_replies(own_top_level: list[str]) -> None:
            # Before the posts and their new counts are written: after that, nothing would
            # tell a resumed run that their threads are still to be read.
            self.own_top_level = own_top_level
            self._plan_replies(self._thread_targets(counts, changed_counts))

        if self.full or head.get("rev") != repo_state.get("rev") or changed_counts:
            following_since, repo_read = yield from self._repo_pages(view, handle, counts, head, plan_replies)
        else:
            plan_replies([])
            # Nothing in the repo changed: only the profile's counts can have moved.
            yield Page("profile", [self._profile_from_view(view, handle)])
        yield from self._reply_pages()
        yield from self._audience_pages(view, following_since)
        if repo_read is not None:
            # Written last: a run killed before here reads the repo again next time, for
            # what later pages take from it (the dates in the following list).
            yield Page("repo", [], {**repo_read, "read_at": now_utc()})

    # -- counts ------------------------------------------------------------------------
    def _recent_counts(self) -> dict[str, dict[str, Any]]:
        """at:// URI -> the AppView's counts, for the owner's posts of the last RECENT_DAYS
        days (every post the AppView lists on --full). Reposts of others are skipped."""
        since = iso_utc(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=RECENT_DAYS))
        counts: dict[str, dict[str, Any]] = {}
        for items in self.api.author_feed(self.did):
            old = False
            for item in items:
                post = item.get("post") or {}
                if item.get("reason") or (post.get("author") or {}).get("did") != self.did or not post.get("uri"):
                    continue
                created = _iso((post.get("record") or {}).get("createdAt")) or _iso(post.get("indexedAt"))
                if not self.full and created and created < since:
                    old = True
                    continue
                counts[post["uri"]] = {
                    "comment_count": post.get("replyCount"), "like_count": post.get("likeCount"),
                    "share_count": (post.get("repostCount") or 0) + (post.get("quoteCount") or 0)
                    if post.get("repostCount") is not None else None,
                    "is_reply": bool((post.get("record") or {}).get("reply")),
                }
            if old:
                break
        return counts

    def _changed_counts(self, counts: dict[str, dict[str, Any]]) -> set[str]:
        """URIs whose counts differ from the archive (or that the archive lacks)."""
        names = ("comment_count", "like_count", "share_count")
        stored = self.ctx.archived_posts(counts, {name: name for name in names})
        return {uri for uri, c in counts.items() if stored.get(uri) != {name: c[name] for name in names}}

    # -- the repository ----------------------------------------------------------------
    def _repo_pages(self, view: dict, handle: str | None, counts: dict, head: dict,
                    plan_replies: Callable[[list[str]], None]):
        """Pages of the repository; ``plan_replies`` is given the owner's top-level post URIs
        before the first page. Returns (DID -> since of each person followed, the revision
        read). The CAR is read into an on-disk store (repo.py) and every part below reads
        it a record or a page at a time."""
        from archiver_connectors.bluesky.repo import (
            LIKE_COLLECTION,
            POST_COLLECTION,
            PROFILE_COLLECTION,
            REPOST_COLLECTION,
            following_of,
            like_from_record,
            post_from_record,
            profile_from_record,
            read_repo,
            repost_from_record,
        )

        with tempfile.TemporaryFile(dir=self._tmp_dir()) as car:
            self.api.get_repo(self.did, car, limits=self.ctx.download_limits, clock=self.ctx.download_clock,
                              cancel=self.ctx.cancel)
            car.seek(0)
            repo = read_repo(car)
        try:
            # Posts, reposts and likes are walked below, each record mapped (and reported) there.
            for item, why in repo.problems or []:
                self.ctx.report(str(item), str(why))
            name = handle or self.did
            blob_url = lambda cid: self.api.blob_url(self.did, cid)  # noqa: E731
            profile = None
            for record in repo.collection(PROFILE_COLLECTION):
                if record.rkey == "self":
                    try:
                        profile = profile_from_record(self.did, handle, record.value, blob_url=blob_url)
                    except Exception as error:  # noqa: BLE001 - one odd record never stops the others
                        self.ctx.report(record.uri(self.did), f"cannot be mapped ({type(error).__name__}: {error}); "
                                        "skipped")
            self._check_blobs(repo, profile, lambda record: post_from_record(
                self.did, name, record.rkey, record.value, cid=record.cid, blob_url=blob_url))
            following_since = {m.person.native_id: m.since for m in following_of(repo, self.ctx.report, did=self.did)}
            plan_replies([record.uri(self.did) for record in repo.collection(POST_COLLECTION)
                          if not _is_reply(record.value)])

            profile = profile or self._profile_from_view(view, handle)
            self._add_counts_to_profile(profile, view)
            # The profile's pictures: one the archive holds is read from its own copy.
            yield Page("profile", [profile])

            # The repository is the whole truth about posts and likes: a --full run walks them
            # as complete listings (archiver.sync.listing), whose last page may mark deleted what
            # is no longer there; never when a block of the CAR could not be read.
            def post_records(record):
                if record.collection == POST_COLLECTION:
                    post = post_from_record(self.did, name, record.rkey, record.value, cid=record.cid,
                                            blob_url=blob_url)
                else:
                    post = repost_from_record(self.did, record.rkey, record.value, cid=record.cid)
                for key, value in (counts.get(post.native_id) or {}).items():
                    if key != "is_reply" and value is not None:
                        setattr(post, key, value)
                return [post]

            def like_records(record):
                like = like_from_record(self.did, record.rkey, record.value, cid=record.cid)
                if like is None:
                    raise ValueError("a like without a subject URI")
                return [like]

            yield from self._repo_listing(repo, "posts", (POST_COLLECTION, REPOST_COLLECTION), post_records,
                                          POSTS_PER_PAGE, "posts", lambda record: record.uri(self.did))
            yield from self._repo_listing(repo, "likes", (LIKE_COLLECTION,), like_records, 500, "like",
                                          lambda record: (record.value.get("subject") or {}).get("uri")
                                          or record.uri(self.did))
            read = {"rev": head.get("rev") or repo.rev, "commit": head.get("cid") or repo.commit_cid}
        finally:
            repo.close()
        return following_since, read

    def _repo_listing(self, repo, stream: str, collections: tuple[str, ...], map_record, size: int,
                      listing_of: str, item_id) -> Iterator[Page]:
        """One collection group of the repository as a listing, in key order; the cursor is
        the last key written, so a walk resumed on a newer copy of the repository has no gap.
        Each page is read from the repository's store by key (Repo.records_after)."""
        from archiver.sync.listing import Batch, Listing

        def fetch(after):
            found = repo.records_after(collections, after, size + 1)
            if len(found) > size:
                last = found[size - 1]
                return Batch(found[:size], f"{last.collection}/{last.rkey}")
            return Batch(found, None, unreadable=list(repo.problems or []))

        walk = Listing(self.ctx, stream, fetch=fetch, item_id=item_id, map_item=map_record,
                       listing_of=listing_of, stop_at_known=False)
        yield from walk.pages()

    def _tmp_dir(self):
        return self.ctx.temp_folder

    def _check_blobs(self, repo, profile, map_post) -> None:
        """listBlobs names every blob the PDS keeps for the repo. A blob a record points at
        that the PDS does not list is reported (its download will likely fail); blobs no
        record of ours points at are only counted (nowhere to file them yet). The posts
        are mapped one at a time here (``map_post``); one that cannot be is reported by
        the listing that writes them."""
        from archiver_connectors.bluesky.api import sha256_of_blob_cid
        from archiver_connectors.bluesky.repo import POST_COLLECTION

        listed = {sha256_of_blob_cid(cid) for cid in self.api.list_blobs(self.did)}

        def refs():
            for record in repo.collection(POST_COLLECTION):
                try:
                    yield from map_post(record).media
                except Exception:  # noqa: BLE001 - reported when the listing maps it
                    continue
            if profile is not None:
                yield from (ref for ref in (profile.avatar, profile.banner) if ref is not None)

        referenced: set[str] = set()
        for ref in refs():
            if not ref.sha256:
                continue
            if ref.sha256 not in listed and ref.sha256 not in referenced:
                self.ctx.report(f"blob {ref.sha256[:12]}…", "referenced by a record but not listed by the PDS "
                                "(listBlobs); downloading it anyway")
            referenced.add(ref.sha256)
        unreferenced = len(listed - referenced - {None})
        if unreferenced:
            log.info("%d blob(s) on the PDS are used by no post or profile picture archiver keeps (e.g. "
                     "another app's records); they are not downloaded", unreferenced)

    def _profile_from_view(self, view: dict, handle: str | None) -> Profile:
        from archiver_connectors.bluesky.api import profile_url

        profile = Profile(native_id=self.did, username=handle or view.get("handle"),
                          display_name=view.get("displayName") or None, bio=view.get("description") or None,
                          url=profile_url(handle or self.did), raw={"view": _without_viewer(view)})
        self._add_counts_to_profile(profile, view)
        return profile

    @staticmethod
    def _add_counts_to_profile(profile: Profile, view: dict) -> None:
        profile.followers = view.get("followersCount", profile.followers)
        profile.following = view.get("followsCount", profile.following)
        profile.posts = view.get("postsCount", profile.posts)

    # -- replies -----------------------------------------------------------------------
    def _plan_replies(self, wanted: list[str]) -> None:
        """Save the threads to read (stream "reply_todo"): what a cut-off run left, then
        ``wanted``. Saved once, before the pages that make them wanted are written; the
        replies listing's state only moves its cursor in it, so a killed run resumes where
        it stopped without rewriting a long list on every page."""
        todo_state = self.ctx.state("reply_todo") or {}
        progress = self.ctx.state("replies") or {}
        todo: list[str] = []
        planned = todo_state.get("uris", [])
        if todo_state.get("id") and todo_state.get("id") == progress.get("todo"):
            cursor = progress.get("cursor")
            if cursor is not None:
                todo = [uri for uri in sorted(planned) if uri > cursor]   # finish a cut-off run first
        elif todo_state.get("id"):
            todo = list(planned)                                          # planned, none of it read yet
        todo += [uri for uri in wanted if uri not in set(todo)]
        if todo:
            self.ctx.save_state("reply_todo", {"id": uuid.uuid4().hex, "uris": todo})

    def _reply_pages(self) -> Iterator[Page]:
        """Threads under the owner's top-level posts, from the planned to-do list, walked by
        archiver.sync.listing as a listing of comments in URI order (a cut-off walk resumed on a
        newer to-do list has no gap: newer posts have larger record keys). A --full run
        reads every thread; its last page marks deleted the replies it no longer saw, but
        only in threads it read whole, and only within the depth getPostThread returns."""
        import bisect

        from archiver.sync.listing import Batch, Listing
        from archiver_connectors.bluesky.api import THREAD_DEPTH, comment_from_post_view, replies_in_thread

        todo_state = self.ctx.state("reply_todo") or {}
        progress = self.ctx.state("replies") or {}
        todo = sorted(set(todo_state.get("uris", [])))
        if progress.get("todo") == todo_state.get("id") and progress.get("mode") != "full" \
                and progress.get("cursor") is None:
            todo = []                   # this to-do list was read to its end
        if not todo and not self.full:
            return

        def fetch(after):
            start = bisect.bisect_right(todo, after) if after else 0
            chunk = todo[start:start + THREADS_PER_PAGE]
            items, covered = [], []
            for uri in chunk:
                thread = self.api.post_thread(uri)
                if thread is None:
                    continue            # the post is gone: nothing to read, nothing judged
                replies, whole = replies_in_thread(thread)
                items += [{**reply, "root": uri} for reply in replies]
                if whole:
                    covered.append((uri, THREAD_DEPTH))
            more = start + THREADS_PER_PAGE < len(todo)
            return Batch(items, chunk[-1] if more else None, covered=covered)

        def map_item(item):
            return [comment_from_post_view(item["view"], owner_did=self.did, root_uri=item["root"],
                                           tree_parent=item["parent"])]

        walk = Listing(self.ctx, "replies", fetch=fetch, item_id=lambda item: item["view"]["uri"],
                       map_item=map_item, listing_of="comment", stop_at_known=False, carry_keys=("todo",))
        walk.carry["todo"] = todo_state.get("id")
        yield from walk.pages()

    def _thread_targets(self, counts: dict, changed: set[str]) -> list[str]:
        if self.full:
            # Every top-level post of the repo read this run (the AppView's counts may lag).
            return list(self.own_top_level)
        return [uri for uri in counts if uri in changed and not counts[uri].get("is_reply")
                and (counts[uri].get("comment_count") or 0) > 0]

    # -- followers / following -----------------------------------------------------------
    def _audience_pages(self, view: dict, following_since: dict[str, str | None]) -> Iterator[Page]:
        """A list is read when its count changed since the last complete one (always on
        --full), a page at a time through the core's staging (archiver.archive.lists). A listing
        cut short by an error stays staged and the next run goes on from where it stopped."""
        from archiver.archive.lists import list_pages, staged_list
        from archiver.net.client import Cancelled, NetError
        from archiver_connectors.bluesky.api import membership_from_view

        state = self.ctx.state("audience") or {}
        audience_lists: tuple[tuple[ListKind, str, Callable], ...] = (
            ("followers", "followersCount", self.api.followers_page),
            ("following", "followsCount", self.api.follows_page))
        for kind, count_key, fetch in audience_lists:
            count = view.get(count_key)
            due = self.full or count is None or state.get(kind) != count

            def fetch_page(cursor, kind=kind, fetch=fetch):
                items, next_cursor = fetch(self.did, cursor)
                return [membership_from_view(v, following_since.get(v.get("did")) if kind == "following" else None)
                        for v in items if v.get("did")], next_cursor

            def finish(listed: int, kind=kind, count=count) -> tuple[bool, dict]:
                nonlocal state
                # One stream ("audience") holds both lists' last complete counts.
                state = {**state, kind: count}
                return True, dict(state)

            try:
                yield from list_pages(self.ctx, kind, fetch_page, stream="audience", due=due, finish=finish)
            except Cancelled:
                raise
            except NetError as error:
                staged = staged_list(self.ctx, kind)
                self.ctx.report(f"{kind} list", f"stopped after {staged['members'] if staged else 0} people: "
                                f"{error}; they are kept, and the next run goes on from where this one stopped")


def _iso(value: Any) -> str | None:
    from archiver_connectors.bluesky.api import _iso as parse

    return parse(value)


def _is_reply(raw: Any) -> bool:
    """Whether a post record (or a raw payload wrapping it) answers another post."""
    if not isinstance(raw, dict):
        return False
    if isinstance(raw.get("reply"), dict):
        return True
    return any(isinstance(raw.get(k), dict) and isinstance(raw[k].get("reply"), dict)
               for k in ("record", "value"))


def _without_viewer(view: dict) -> dict:
    return {k: v for k, v in view.items() if k != "viewer"}
