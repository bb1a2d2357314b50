"""A stateful fake of X API v2 (pay per use), its OAuth 2.0 pages and its media CDN, faithful
to shared/platforms/x-twitter.md (section A #15–17, §4, §5's "API fake" line, and the
appendix's §4). It serves the world of x/sim/export.py (``XWorld``), so the archive
``write_matching_export`` writes holds the same posts: the same tweet ids, texts, edit
chains and media bytes.

One ``FakeX`` plays every X host at one base URL:

- the consent page (x.com, twitter.com): GET  /i/oauth2/authorize   (approves at once: 302 to the redirect_uri)
- api.x.com:                             POST /2/oauth2/token        (authorization_code with PKCE, refresh_token)
                                         GET  /2/users/me, /2/users/:id/tweets,
                                              /2/users/:id/followers, /2/users/:id/following
- the CDN (pbs.twimg.com, video.twimg.com): GET /media/<key>.jpg, /amplify_video/…/<name>.mp4,
                                              /tweet_video/<key>.mp4, /profile_images/…

Use it in-process with ``httpx.MockTransport(fake.handle)``, over loopback with
``serve(fake)``, or as a process (``archiver simulate x --port N``).

**Money.** Every answer is priced by the notes' table (A #15): $0.005 a post returned, $0.010
a user returned (``/users/me``, a follower, a followed account); errors cost nothing.
``fake.spent_micro`` (micro-dollars; ``spent_usd`` in dollars) and ``fake.charges`` ((path,
micro-dollars) per answer) let tests compare the connector's count with X's.

What it refuses, as X does: a token request with a wrong client (401; a confidential client
must use HTTP Basic), a code used twice, expired (after 10 minutes), for another
redirect_uri or whose PKCE verifier does not match; an unknown or expired access token (401
problem details); a token without the endpoint's scopes (403); an unknown query parameter, an
unknown field or expansion, ``max_results`` outside 5..100 (tweets) or 1..1000 (follows), a
non-numeric ``since_id``/``until_id``, a ``pagination_token`` it did not hand out (400
"Invalid Request" with ``errors[].parameters``); more than ``rate_limit`` timeline requests or
``follows_rate_limit`` follows requests in a 15-minute window (429 with ``x-rate-limit-*``
headers); past the monthly post cap (429 ``UsageCapExceeded``); once the account's credits
are spent (``credits_usd``), every data request. The timeline reaches only the ``window``
(3,200) most recent posts, reposts included; an edited post appears once, as its newest
version (``edit_history_tweet_ids``: every version, the initial first).

Choices where the notes say [U], each a knob of ``FakeXConfig``:
- ``credits_status``: 402 or 403 when the credits are used up (the body names credits).
- ``retry_after``: whether a 429 carries Retry-After (X is said to send only x-rate-limit-reset).
- ``authorize_hosts``: which of x.com / twitter.com shows the consent page (the other: 404).
- ``rotate_refresh``: a refresh brings a new refresh token and the old one dies, or the old
  one stays and none is sent.
- ``monthly_post_cap``: 2 M (the usage page) or 3 M (the pricing page), smaller in tests.
- ``client_type``: "confidential" (HTTP Basic with the secret) or "public" (client_id in the form).

``advance(seconds)`` moves the fake's clock (tokens, rate windows, the month). Tests change
the world between runs with ``add_post``, ``edit_post``, ``delete_post``, ``add_follower``,
``set_counts``; ``revoke_all`` and ``expire_tokens`` play the person and the clock.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as dt
import hashlib
import hmac
import html
import json
import random
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from archiver.sim.server import LoggedFake
from archiver_connectors.x.sim.export import (
    XEdit,
    XMedia,
    XPost,
    XUser,
    XWorld,
    _avatar_url,  # the archive's avatarMediaUrl
    jpeg_bytes,
    mp4_bytes,
    png_bytes,
    sample_world,
    snowflake,
    tco_link,
    write_archive,
)

SCOPES = ("tweet.read", "users.read", "follows.read", "offline.access", "like.read", "list.read", "bookmark.read")
ALL_SCOPES = "tweet.read users.read follows.read offline.access"
PRICE_POST, PRICE_USER = 5_000, 10_000        # micro-dollars (notes A #15)
WINDOW_SECONDS = 15 * 60
CODE_TTL = 600
REAL_API = "https://api.x.com"
PROBLEMS = "https://api.twitter.com/2/problems/"

TWEET_FIELDS = {"article", "attachments", "author_id", "card_uri", "community_id", "context_annotations",
                "conversation_id", "created_at", "display_text_range", "edit_controls", "edit_history_tweet_ids",
                "entities", "geo", "id", "in_reply_to_user_id", "lang", "media_metadata", "non_public_metrics",
                "note_tweet", "organic_metrics", "possibly_sensitive", "promoted_metrics", "public_metrics",
                "referenced_tweets", "reply_settings", "scopes", "source", "text", "withheld"}
MEDIA_FIELDS = {"alt_text", "duration_ms", "height", "media_key", "non_public_metrics", "organic_metrics",
                "preview_image_url", "promoted_metrics", "public_metrics", "type", "url", "variants", "width"}
USER_FIELDS = {"affiliation", "connection_status", "created_at", "description", "entities", "id", "location",
               "most_recent_tweet_id", "name", "pinned_tweet_id", "profile_banner_url", "profile_image_url",
               "protected", "public_metrics", "receives_your_dm", "subscription_type", "url", "username",
               "verified", "verified_type", "withheld"}
TWEET_EXPANSIONS = {"article.cover_media", "article.media_entities", "attachments.media_keys",
                    "attachments.media_source_tweet", "attachments.poll_ids", "author_id", "edit_history_tweet_ids",
                    "entities.mentions.username", "geo.place_id", "in_reply_to_user_id", "entities.note.mentions.username",
                    "referenced_tweets.id", "referenced_tweets.id.attachments.media_keys", "referenced_tweets.id.author_id"}
COMMON_PARAMS = {"tweet.fields", "expansions", "media.fields", "user.fields", "place.fields", "poll.fields"}
TIMELINE_PARAMS = COMMON_PARAMS | {"max_results", "pagination_token", "since_id", "until_id", "start_time",
                                   "end_time", "exclude"}
FOLLOWS_PARAMS = {"max_results", "pagination_token", "user.fields", "expansions", "tweet.fields"}
ME_PARAMS = {"user.fields", "expansions", "tweet.fields"}
# The scopes each endpoint needs (X's docs for each endpoint).
NEEDED = {"me": ("tweet.read", "users.read"), "tweets": ("tweet.read", "users.read"),
          "followers": ("follows.read", "users.read"), "following": ("follows.read", "users.read")}


@dataclass
class FakeXConfig:
    posts: int | None = None            # the owner's live posts (None: the sample world's own)
    followers: int = 5
    following: int = 3
    seed: int = 1
    latency_ms: int = 0
    fail_rate: float = 0.0              # chance of a 503 per data call (never OAuth, never the CDN)
    rate_limit: int = 900               # timeline requests a 15-minute window
    follows_rate_limit: int = 15        # followers/following requests a 15-minute window (notes A #16)
    max_results_cap: int = 100          # the most posts a page holds (smaller: more pages)
    window: int = 3_200                 # the timeline's reach (notes §4)
    monthly_post_cap: int = 2_000_000   # [U] 2 M or 3 M posts read a month
    credits_usd: float | None = None    # the account's prepaid credits (None: never run out)
    credits_status: int = 402           # [U] 402 or 403 once they are spent
    retry_after: bool = False           # [U] Retry-After on a 429 as well as x-rate-limit-reset
    authorize_hosts: tuple[str, ...] = ("x.com", "twitter.com")   # [U] where the consent page is
    rotate_refresh: bool = True         # [U] a refresh brings a new refresh token, the old one dies
    client_type: str = "confidential"   # "confidential" (HTTP Basic) | "public"
    access_ttl: int = 7200              # an access token lives 2 hours (notes §4)
    granted_scopes: str = ALL_SCOPES    # what the person grants in the consent page
    client_id: str = "ZmFrZS14LWNsaWVudC1pZA"
    client_secret: str = "fake-client-secret"


# --------------------------------------------------------------------------- the world


def world_of(config: FakeXConfig) -> XWorld:
    """xgen's sample world (every quirk of the notes) sized to the config: its posts
    (the oldest ``posts`` of them, plus plain ones when more are asked), its followers and
    following (plus made-up accounts)."""
    world = sample_world(config.seed)
    posts = sorted(world.posts if isinstance(world.posts, list) else list(world.iter_posts()),
                   key=lambda p: p.created_at)
    live = [p for p in posts if p.deleted_at is None]
    if config.posts is not None:
        kept = {p.tweet_id for p in live[:config.posts]}
        posts = [p for p in posts if p.tweet_id in kept or p.deleted_at is not None]
        newest = posts[-1].created_at if posts else dt.datetime(2021, 3, 1, tzinfo=dt.timezone.utc)
        rng = random.Random(config.seed)
        for number in range(len(kept), config.posts):
            created = newest + dt.timedelta(hours=6 * (number - len(kept) + 1), seconds=rng.randrange(3600))
            post = XPost(snowflake(created, number % 4096), created, f"Note {number + 1}: the {rng.choice(WORDS)} "
                         f"and the {rng.choice(WORDS)}", like_count=rng.randrange(30), repost_count=rng.randrange(4))
            if number % 4 == 0:
                link = f"https://example.org/notes/{number + 1}"
                post.text += f" {link}"
                post.links = [link]
            if number % 3 == 1:
                post.media = [XMedia(key=_key(f"filler {config.seed} {number}"),
                                     media_id=snowflake(created, 900 + number % 100))]
            posts.append(post)
    followers = list(world.followers[:config.followers])
    followers += [XUser(str(1111111200 + n), f"follower_{n:03d}", f"Follower {n}")
                  for n in range(len(followers), config.followers)]
    following = list(world.following[:config.following])
    following += [XUser(str(2222222300 + n), f"maker_{n:02d}", f"Maker {n}")
                  for n in range(len(following), config.following)]
    world.posts, world.followers, world.following = posts, followers, following
    return world


WORDS = ("garden", "river", "bread", "letter", "window", "copper", "meadow", "lantern", "harbour", "attic")


def _key(seed: str) -> str:
    """A media key like X's (15 letters and digits), stable for ``seed``."""
    return base64.b64encode(hashlib.sha256(seed.encode()).digest(), altchars=b"AZ").decode()[:15]


def media_key(media: XMedia) -> str:
    """v2's media_key: the type's number, an underscore, the media id."""
    return {"photo": "3", "video": "7", "animated_gif": "16"}.get(media.kind, "3") + "_" + media.media_id


def _iso(when: dt.datetime) -> str:
    when = when.astimezone(dt.timezone.utc)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


def _digits(seed: str, length: int = 19) -> str:
    number = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return str(10 ** (length - 1) + number % (9 * 10 ** (length - 1)))


def _handle_of(user: XUser) -> str:
    return user.handle or f"user{user.account_id}"


# --------------------------------------------------------------------------- the fake


class FakeX(LoggedFake):
    """The fake X; ``handle(request)`` answers one request (see the module docstring)."""

    def __init__(self, config: FakeXConfig | None = None, *, world: XWorld | None = None,
                 base_url: str = "http://127.0.0.1:8798"):
        self.config = config or FakeXConfig()
        self.base_url = base_url
        self.world = world if world is not None else world_of(self.config)
        if callable(self.world.posts):
            self.world.posts = list(self.world.iter_posts())
        self.clock_offset = 0.0
        self._lock = threading.RLock()
        self._faults = random.Random(self.config.seed + 1)
        self.log: list[tuple[str, str, int, dict[str, str]]] = []
        self.charges: list[tuple[str, int]] = []        # (path, micro-dollars) per priced answer
        self.spent_micro = 0
        self.posts_read_by_month: collections.Counter[str] = collections.Counter()
        self.calls_by_window: collections.Counter[tuple[str, int]] = collections.Counter()
        self.token_requests: list[dict[str, str]] = []
        self._codes: dict[str, dict[str, Any]] = {}
        self._access: dict[str, dict[str, Any]] = {}
        self._refresh: dict[str, dict[str, Any]] = {}
        self._paging_key = secrets.token_bytes(16)

    # ------------------------------------------------------------------ reading the world

    @property
    def spent_usd(self) -> float:
        return self.spent_micro / 1_000_000

    @property
    def owner(self) -> XUser:
        return self.world.owner

    def live_posts(self) -> list[XPost]:
        """The owner's posts X still shows, newest (by the newest version's id) first."""
        posts = [p for p in self.world.posts if p.deleted_at is None]  # type: ignore[union-attr]
        return sorted(posts, key=lambda p: int(p.version_ids[-1]), reverse=True)

    @property
    def posts(self) -> list[str]:
        """The live posts' ids as the archive keys them (the initial id), newest first."""
        return [p.tweet_id for p in self.live_posts()]

    def find_post(self, tweet_id: str) -> XPost:
        for post in self.world.posts:  # type: ignore[union-attr]
            if tweet_id in post.version_ids:
                return post
        raise KeyError(f"no post {tweet_id} in the fake's world")

    def _cdn_base(self, real: str) -> str:
        """Where the answers' file links point: the real CDN host when the fake plays
        api.x.com in-process, else the fake's own address."""
        return real if self.base_url.rstrip("/") == REAL_API else self.base_url.rstrip("/")

    def _media_url(self, real_url: str) -> str:
        parts = urlsplit(real_url)
        base = self._cdn_base(f"{parts.scheme}://{parts.netloc}")
        return base + parts.path + (f"?{parts.query}" if parts.query else "")

    def media_json(self, media: XMedia) -> dict[str, Any]:
        """A v2 media object (every field; the endpoint keeps those asked for)."""
        answer: dict[str, Any] = {"media_key": media_key(media), "type": media.kind, "width": media.width,
                                  "height": media.height}
        if media.kind == "photo":
            answer["url"] = self._media_url(media.media_url.replace("http://", "https://", 1))
        else:
            answer["preview_image_url"] = self._media_url(media.media_url.replace("http://", "https://", 1))
            answer["variants"] = [{**({"bit_rate": int(v["bitrate"])} if "bitrate" in v else {}),
                                   "content_type": v["content_type"], "url": self._media_url(v["url"])}
                                  for v in media.variants()]
            if media.kind == "video":
                answer["duration_ms"] = media.duration_millis
        return answer

    def tweet_json(self, post: XPost) -> dict[str, Any]:
        """The post as v2 gives it: its newest version, HTML-escaped text with t.co links
        (xgen's, so both paths expand alike), the media's own t.co link at the end; a long
        post's text cut at 280 with the whole in ``note_tweet``."""
        tweet_id = post.version_ids[-1]
        created = post.edits[-1].created_at if post.edits else post.created_at
        whole = post.final_text
        entities = self._entities(tweet_id, post, whole)
        text, note = whole, None
        if len(whole) > 280:
            note = {"text": entities.pop("_text"), "entities": {k: v for k, v in entities.items()}}
            text = whole[:270] + "…"
            entities = self._entities(tweet_id, post, text)
        shown = entities.pop("_text")
        if post.media:
            media_tco = tco_link(tweet_id, "media")
            shown_end = len(shown)
            shown += f" {media_tco}"
            first = post.media[0]
            kind_path = "video" if first.kind == "video" else "photo"
            entities.setdefault("urls", []).append({
                "start": shown_end + 1, "end": len(shown), "url": media_tco,
                "expanded_url": f"https://x.com/{self.owner.handle}/status/{tweet_id}/{kind_path}/1",
                "display_url": f"pic.x.com/{media_tco.rsplit('/', 1)[1]}", "media_key": media_key(first)})
        referenced = []
        if post.repost_of is not None:
            referenced.append({"type": "retweeted", "id": _digits(f"reposted {tweet_id}")})
        if post.reply_to is not None:
            referenced.append({"type": "replied_to", "id": post.reply_to.post_id})
        if post.quote_of:
            referenced.append({"type": "quoted", "id": post.quote_of.rstrip("/").rsplit("/", 1)[-1]})
        answer: dict[str, Any] = {
            "id": tweet_id, "text": html.escape(shown, quote=False), "edit_history_tweet_ids": post.version_ids,
            "created_at": _iso(created), "author_id": self.owner.account_id,
            "conversation_id": post.reply_to.post_id if post.reply_to else tweet_id, "lang": post.lang,
            "possibly_sensitive": bool(post.possibly_sensitive), "entities": entities,
            "public_metrics": {"retweet_count": post.repost_count, "reply_count": 0, "like_count": post.like_count,
                               "quote_count": 0, "bookmark_count": 0,
                               "impression_count": post.like_count * 37 + post.repost_count * 11 + 5},
            "edit_controls": {"edits_remaining": 5 - len(post.edits), "is_edit_eligible": not post.edits,
                              "editable_until": _iso(post.created_at + dt.timedelta(hours=1))},
            "source": "Twitter Web App", "reply_settings": "everyone",
        }
        if referenced:
            answer["referenced_tweets"] = referenced
        if post.reply_to is not None:
            answer["in_reply_to_user_id"] = post.reply_to.user.account_id
        if post.media:
            answer["attachments"] = {"media_keys": [media_key(m) for m in post.media]}
        if note is not None:
            note["text"] = html.escape(note["text"], quote=False)
            answer["note_tweet"] = note
        if post.withheld_in_countries:
            answer["withheld"] = {"copyright": False, "country_codes": list(post.withheld_in_countries)}
        return answer

    def _entities(self, tweet_id: str, post: XPost, text: str) -> dict[str, Any]:
        """v2 entities of ``text`` (start/end in characters, numbers as numbers), and the text
        with its links as t.co links under ``_text``."""
        urls: list[dict[str, Any]] = []
        for link in post.links:
            if link not in text:
                continue
            tco = tco_link(tweet_id, link)
            text = text.replace(link, tco, 1)
            urls.append({"url": tco, "expanded_url": link,
                         "display_url": re.sub(r"^https?://(www\.)?", "", link)[:25]})
        for url in urls:
            url["start"] = text.find(url["url"])
            url["end"] = url["start"] + len(url["url"])
        mentions = [{"start": text.find(f"@{u.handle}"), "end": text.find(f"@{u.handle}") + len(u.handle or "") + 1,
                     "username": u.handle, "id": u.account_id} for u in post.mentions if f"@{u.handle}" in text]
        hashtags = [{"start": m.start(), "end": m.end(), "tag": m.group(1)}
                    for m in re.finditer(r"(?<![\w&])#(\w+)", text)]
        answer: dict[str, Any] = {"_text": text}
        for key, value in (("urls", urls), ("mentions", mentions), ("hashtags", hashtags)):
            if value:
                answer[key] = value
        return answer

    def user_json(self, user: XUser) -> dict[str, Any]:
        """Another account as v2 gives it. One whose handle the world knows links its
        Bluesky profile in its bio (a t.co link, expanded in ``entities``) and has a website."""
        handle = _handle_of(user)
        answer: dict[str, Any] = {
            "id": user.account_id, "name": user.name or handle, "username": handle,
            "created_at": "2015-05-01T10:00:00.000Z", "description": f"I am {handle} &amp; more.",
            "protected": False,
            "profile_image_url": self._media_url(f"https://pbs.twimg.com/profile_images/{user.account_id}/"
                                                 f"{_key(handle)}_normal.jpg"),
            "public_metrics": {"followers_count": 10, "following_count": 20, "tweet_count": 30,
                               "listed_count": 0, "like_count": 4}}
        if user.handle:
            bsky, site = f"https://bsky.app/profile/{user.handle}.bsky.social", f"https://{user.handle}.example.net"
            bio_tco, site_tco = tco_link(user.account_id, bsky), tco_link(user.account_id, site)
            answer["description"] = f"I am {handle} &amp; more. Elsewhere: {bio_tco}"
            start = answer["description"].find(bio_tco)
            answer["url"] = site_tco
            answer["entities"] = {
                "description": {"urls": [{"start": start, "end": start + len(bio_tco), "url": bio_tco,
                                          "expanded_url": bsky, "display_url": bsky[8:33]}]},
                "url": {"urls": [{"start": 0, "end": len(site_tco), "url": site_tco, "expanded_url": site,
                                  "display_url": site[8:]}]}}
        return answer

    def me_json(self) -> dict[str, Any]:
        owner, profile = self.owner, self.world.profile
        bio, bio_urls = profile.bio, []  # type: ignore[var-annotated]
        for url in re.findall(r"https?://\S+", profile.bio):
            tco = tco_link(owner.account_id, url)
            bio = bio.replace(url, tco, 1)
            bio_urls.append({"start": bio.find(tco), "end": bio.find(tco) + len(tco), "url": tco, "expanded_url": url,
                             "display_url": re.sub(r"^https?://", "", url)[:25]})
        answer: dict[str, Any] = {
                  "id": owner.account_id, "name": owner.name or owner.handle, "username": owner.handle,
                  "created_at": _iso(self.world.account_created_at), "description": bio,
                  "location": profile.location, "protected": False,
                  "public_metrics": {"followers_count": len(self.world.followers),
                                     "following_count": len(self.world.following),
                                     "tweet_count": len(self.live_posts()), "listed_count": 0,
                                     "like_count": len(self.world.likes)},
                  "entities": {"description": {"urls": bio_urls}} if bio_urls else {}}
        if profile.website:
            tco = tco_link(owner.account_id, profile.website)
            answer["url"] = tco
            answer["entities"]["url"] = {"urls": [{"start": 0, "end": len(tco), "url": tco,
                                                   "expanded_url": profile.website,
                                                   "display_url": re.sub(r"^https?://", "", profile.website)}]}
        if profile.avatar_key:
            # The 48-pixel "_normal" size of the picture whose original the archive holds.
            answer["profile_image_url"] = self._media_url(_avatar_url(self.world).replace(".jpg", "_normal.jpg"))
        return answer

    # ------------------------------------------------------------------ changing the world

    def add_post(self, text: str, media: list[XMedia] | None = None, *, photos: int = 0) -> str:
        """A new post, now; ``photos`` adds that many photos. Returns its id."""
        with self._lock:
            created = dt.datetime.fromtimestamp(self.now(), dt.timezone.utc)
            number = len(self.world.posts)  # type: ignore[arg-type]
            tweet_id = snowflake(created, number % 4096)
            media = list(media or []) + [XMedia(key=_key(f"added {tweet_id} {n}"), media_id=snowflake(created, 600 + n))
                                         for n in range(photos)]
            post = XPost(tweet_id, created, text, links=re.findall(r"https?://\S+", text), media=media)
            self.world.posts.append(post)  # type: ignore[union-attr]
            return tweet_id

    def edit_post(self, tweet_id: str, text: str) -> str:
        """A new version of a post (X gives it a new id, in the same edit chain)."""
        with self._lock:
            post = self.find_post(tweet_id)
            created = dt.datetime.fromtimestamp(self.now(), dt.timezone.utc)
            new_id = snowflake(created, (len(post.edits) + 1) % 4096)
            post.edits.append(XEdit(new_id, created, text))
            post.links = re.findall(r"https?://\S+", text)
            return new_id

    def delete_post(self, tweet_id: str) -> None:
        with self._lock:
            self.find_post(tweet_id).deleted_at = dt.datetime.fromtimestamp(self.now(), dt.timezone.utc)

    def add_follower(self, handle: str | None = None) -> str:
        with self._lock:
            account_id = str(1111112000 + len(self.world.followers))
            self.world.followers.insert(0, XUser(account_id, handle or f"newfan_{account_id[-3:]}", None))
            return account_id

    def set_counts(self, tweet_id: str, *, likes: int | None = None, reposts: int | None = None) -> None:
        with self._lock:
            post = self.find_post(tweet_id)
            if likes is not None:
                post.like_count = likes
            if reposts is not None:
                post.repost_count = reposts

    # ------------------------------------------------------------------ tokens

    def issue_tokens(self, scopes: str | None = None, *, age: float = 0.0) -> dict:
        """Mint tokens directly, as a finished `archiver auth` has them; ``age`` seconds old."""
        with self._lock:
            return self._token_answer((scopes or self.config.granted_scopes).split(), issued_at=self.now() - age)

    def _token_answer(self, scopes: list[str], *, issued_at: float, refresh: str | None = None) -> dict:
        access = base64.urlsafe_b64encode(secrets.token_bytes(30)).decode().rstrip("=")
        answer = {"token_type": "bearer", "expires_in": self.config.access_ttl, "access_token": access,
                  "scope": " ".join(scopes)}
        if "offline.access" in scopes:
            if refresh is None:
                refresh = base64.urlsafe_b64encode(secrets.token_bytes(30)).decode().rstrip("=")
                self._refresh[refresh] = {"scopes": scopes, "alive": True}
                answer["refresh_token"] = refresh
        self._access[access] = {"scopes": scopes, "expires_at": issued_at + self.config.access_ttl, "refresh": refresh}
        return answer

    def expire_tokens(self) -> None:
        """Every access token handed out so far expires now (refresh tokens live on)."""
        with self._lock:
            for record in self._access.values():
                record["expires_at"] = min(record["expires_at"], self.now() - 1)

    def revoke_all(self) -> None:
        """The person removed the app: every access and refresh token is refused from now on."""
        with self._lock:
            for record in self._access.values():
                record["expires_at"] = float("-inf")
            for record in self._refresh.values():
                record["alive"] = False

    # ------------------------------------------------------------------ answers

    @staticmethod
    def _json(status: int, body: Any, headers: dict | None = None) -> httpx.Response:
        return httpx.Response(status, headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
                              content=json.dumps(body).encode())

    def _problem(self, status: int, title: str, detail: str, kind: str = "about:blank",
                 headers: dict | None = None, **extra: Any) -> httpx.Response:
        return self._json(status, {"title": title, "detail": detail, "type": kind, "status": status, **extra}, headers)

    def _invalid(self, message: str, parameter: str, value: str) -> httpx.Response:
        return self._json(400, {"errors": [{"parameters": {parameter: [value]}, "message": message}],
                                "title": "Invalid Request", "detail": "One or more parameters to your request was "
                                "invalid.", "type": PROBLEMS + "invalid-request"})

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/i/oauth2/authorize":
            return self._consent(request)
        if path == "/2/oauth2/token":
            return self._token(request)
        if path.startswith("/2/"):
            return self._api(request, path)
        return self._cdn(request, path)

    # ------------------------------------------------------------------ OAuth

    def _consent(self, request: httpx.Request) -> httpx.Response:
        """The consent page: the person approves at once (scopes as ``granted_scopes`` allows)."""
        host = request.url.host
        if host in ("x.com", "twitter.com") and host not in self.config.authorize_hosts:
            return httpx.Response(404, headers={"Content-Type": "text/html"},
                                  text="<html><body>This page doesn’t exist.</body></html>")
        q = request.url.params
        if q.get("client_id") != self.config.client_id:
            return httpx.Response(400, text="Something went wrong: invalid client_id")
        if q.get("response_type") != "code":
            return httpx.Response(400, text="Something went wrong: response_type must be code")
        if not q.get("code_challenge") or q.get("code_challenge_method") not in ("S256", "plain"):
            return httpx.Response(400, text="Something went wrong: PKCE code_challenge required")
        if not q.get("state"):
            return httpx.Response(400, text="Something went wrong: state required")
        redirect_uri = q.get("redirect_uri") or ""
        parts = urlsplit(redirect_uri)
        # The app's callback URLs: any loopback http address (ports vary in tests).
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            return httpx.Response(400, text="Something went wrong: the redirect_uri is not one of the app's callback URLs")
        requested = [s for s in (q.get("scope") or "").split() if s]
        if not requested or any(s not in SCOPES for s in requested):
            return httpx.Response(400, text="Something went wrong: invalid scope")
        granted = [s for s in requested if s in self.config.granted_scopes.split()]
        code = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")
        self._codes[code] = {"scopes": granted, "redirect_uri": redirect_uri, "used": False,
                             "challenge": q["code_challenge"], "method": q["code_challenge_method"],
                             "expires_at": self.now() + CODE_TTL}
        return httpx.Response(302, headers={"Location": f"{redirect_uri}?{urlencode({'state': q['state'], 'code': code})}"})

    def _client_ok(self, request: httpx.Request, form: dict[str, str]) -> bool:
        if self.config.client_type == "public":
            return form.get("client_id") == self.config.client_id
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return client_id == self.config.client_id and hmac.compare_digest(secret, self.config.client_secret)

    def _oauth_error(self, status: int, error: str, description: str) -> httpx.Response:
        return self._json(status, {"error": error, "error_description": description})

    def _token(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return self._problem(405, "Method Not Allowed", "POST only")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return self._oauth_error(400, "invalid_request", "Missing required parameter [grant_type].")
        form = {k: v[0] for k, v in parse_qs(request.content.decode(), keep_blank_values=True).items()}
        self.token_requests.append({k: v for k, v in form.items() if k not in ("code", "refresh_token", "code_verifier")})
        if not self._client_ok(request, form):
            return self._oauth_error(401, "unauthorized_client", "Missing valid authorization header")
        if form.get("grant_type") == "authorization_code":
            code = self._codes.get(form.get("code", ""))
            if code is None or code["used"] or code["expires_at"] <= self.now():
                if code is not None:
                    code["used"] = True
                return self._oauth_error(400, "invalid_request", "Value passed for the authorization code was invalid.")
            code["used"] = True   # single use, even when the rest is wrong
            verifier = form.get("code_verifier", "")
            expected = (base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                        if code["method"] == "S256" else verifier)
            if form.get("redirect_uri") != code["redirect_uri"] or not hmac.compare_digest(expected, code["challenge"]):
                return self._oauth_error(400, "invalid_request", "Value passed for the authorization code was invalid.")
            return self._json(200, self._token_answer(code["scopes"], issued_at=self.now()))
        if form.get("grant_type") == "refresh_token":
            old = form.get("refresh_token", "")
            record = self._refresh.get(old)
            if record is None or not record["alive"]:
                return self._oauth_error(400, "invalid_request", "Value passed for the token was invalid.")
            if self.config.rotate_refresh:
                record["alive"] = False
                return self._json(200, self._token_answer(record["scopes"], issued_at=self.now()))
            answer = self._token_answer(record["scopes"], issued_at=self.now(), refresh=old)
            return self._json(200, answer)
        return self._oauth_error(400, "invalid_request", "Missing required parameter [grant_type].")

    # ------------------------------------------------------------------ the API

    def _window_headers(self, group: str, limit: int) -> tuple[bool, dict[str, str]]:
        """Count a call in its 15-minute window: (allowed, the x-rate-limit-* headers)."""
        now = self.now()
        window = int(now // WINDOW_SECONDS)
        reset = (window + 1) * WINDOW_SECONDS
        used = self.calls_by_window[(group, window)]
        if used >= limit:
            headers = {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": "0",
                       "x-rate-limit-reset": str(reset)}
            if self.config.retry_after:
                headers["Retry-After"] = str(max(1, int(reset - now)))
            return False, headers
        self.calls_by_window[(group, window)] = used + 1
        return True, {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(limit - used - 1),
                      "x-rate-limit-reset": str(reset)}

    def _month(self) -> str:
        return dt.datetime.fromtimestamp(self.now(), dt.timezone.utc).strftime("%Y-%m")

    def _api(self, request: httpx.Request, path: str) -> httpx.Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        record = self._access.get(token) if scheme.lower() == "bearer" else None
        if record is None or record["expires_at"] <= self.now():
            return self._problem(401, "Unauthorized", "Unauthorized")
        if request.method != "GET":
            return self._problem(405, "Method Not Allowed", "GET only")
        match = re.fullmatch(r"/2/users/(me|[0-9]{1,19})(?:/(tweets|followers|following))?", path)
        if match is None or (match[1] == "me") == bool(match[2]):
            return self._problem(404, "Not Found Error", f"Could not find the resource {path}",
                                 PROBLEMS + "resource-not-found")
        endpoint = match[2] or "me"
        granted = set(record["scopes"])
        if not set(NEEDED[endpoint]) <= granted:
            return self._problem(403, "Forbidden", "You are not permitted to perform this action (the token lacks a "
                                 f"scope: {' '.join(NEEDED[endpoint])}).", PROBLEMS + "client-forbidden")
        if self.config.credits_usd is not None and self.spent_micro >= round(self.config.credits_usd * 1_000_000):
            if self.config.credits_status == 403:
                return self._problem(403, "Forbidden", "Your enrolled account does not have any credits left to "
                                     "fulfill this request: add credits in the developer console.",
                                     PROBLEMS + "client-forbidden", reason="credits-depleted")
            return self._problem(402, "CreditsDepleted", "Your enrolled account does not have any credits to fulfill "
                                 "this request.", PROBLEMS + "credits")
        group, limit = (("follows", self.config.follows_rate_limit) if endpoint in ("followers", "following")
                        else (endpoint, self.config.rate_limit))
        allowed, headers = self._window_headers(group, limit)
        if not allowed:
            return self._json(429, {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                                    "status": 429}, headers)
        if self.config.fail_rate and self._faults.random() < self.config.fail_rate:
            return self._problem(503, "Service Unavailable", "Service Unavailable", headers=headers)
        if endpoint == "tweets" and self.posts_read_by_month[self._month()] >= self.config.monthly_post_cap:
            return self._problem(429, "UsageCapExceeded", "Usage cap exceeded: Monthly product cap",
                                 PROBLEMS + "usage-capped", headers=headers, period="Monthly", scope="Product")
        try:
            answer, price = getattr(self, f"_get_{endpoint}")(request.url.params, match[1])
        except _Invalid as invalid:
            return self._invalid(invalid.message, invalid.parameter, invalid.value)
        data = answer.get("data")
        items = len(data) if isinstance(data, list) else int(data is not None)
        if endpoint == "tweets":
            self.posts_read_by_month[self._month()] += items
        cost = items * price
        self.spent_micro += cost
        self.charges.append((path, cost))
        return self._json(200, answer, headers)

    # --- the parameters, checked as X checks them
    @staticmethod
    def _check_params(params, allowed: set[str]) -> None:
        for name in params:
            if name not in allowed:
                raise _Invalid(f"The query parameter [{name}] is not one of [{','.join(sorted(allowed))}]", name,
                               params[name])

    @staticmethod
    def _fields(params, name: str, known: set[str]) -> set[str]:
        values = [v for v in (params.get(name) or "").split(",") if v]
        for value in values:
            if value not in known:
                raise _Invalid(f"The `{name}` query parameter value [{value}] is not one of "
                               f"[{','.join(sorted(known))}]", name, value)
        return set(values)

    @staticmethod
    def _max_results(params, least: int, most: int, default: int) -> int:
        raw = params.get("max_results")
        if raw is None:
            return default
        if not re.fullmatch(r"[0-9]{1,6}", raw) or not least <= int(raw) <= most:
            raise _Invalid(f"The `max_results` query parameter value [{raw}] is not between {least} and {most}",
                           "max_results", raw)
        return int(raw)

    def _token_for(self, listing: str, position: str) -> str:
        body = json.dumps([listing, position]).encode()
        tag = hmac.new(self._paging_key, body, "sha256").digest()[:10]
        return base64.b32encode(body + tag).decode().rstrip("=").lower()

    def _position(self, params, listing: str) -> str | None:
        raw = params.get("pagination_token")
        if raw is None:
            return None
        try:
            blob = base64.b32decode(raw.upper() + "=" * (-len(raw) % 8))
            body, tag = blob[:-10], blob[-10:]
            if not hmac.compare_digest(tag, hmac.new(self._paging_key, body, "sha256").digest()[:10]):
                raise ValueError("tampered")
            where, position = json.loads(body)
            if where != listing:
                raise ValueError("another listing's token")
            return str(position)
        except (ValueError, TypeError):
            raise _Invalid(f"The `pagination_token` query parameter value [{raw}] is not valid", "pagination_token",
                           raw) from None

    # --- endpoints
    def _get_me(self, params, _who) -> tuple[dict, int]:
        self._check_params(params, ME_PARAMS)
        fields = self._fields(params, "user.fields", USER_FIELDS)
        self._fields(params, "tweet.fields", TWEET_FIELDS)
        return {"data": self._only(self.me_json(), fields | {"id", "name", "username"})}, PRICE_USER

    def _get_tweets(self, params, who: str) -> tuple[dict, int]:
        self._check_params(params, TIMELINE_PARAMS)
        tweet_fields = self._fields(params, "tweet.fields", TWEET_FIELDS)
        media_fields = self._fields(params, "media.fields", MEDIA_FIELDS)
        self._fields(params, "user.fields", USER_FIELDS)
        expansions = self._fields(params, "expansions", TWEET_EXPANSIONS)
        size = min(self._max_results(params, 5, 100, 10), self.config.max_results_cap)
        bounds = {}
        for name in ("since_id", "until_id"):
            raw = params.get(name)
            if raw is not None and not re.fullmatch(r"[0-9]{1,19}", raw):
                raise _Invalid(f"The `{name}` query parameter value [{raw}] does not match ^[0-9]{{1,19}}$", name, raw)
            bounds[name] = int(raw) if raw else None
        exclude = self._fields(params, "exclude", {"retweets", "replies"})
        listing = json.dumps([who, bounds, sorted(exclude), params.get("start_time"), params.get("end_time")])
        after = self._position(params, listing)
        if who != self.owner.account_id:
            return {"meta": {"result_count": 0}, "errors": [{
                "value": who, "detail": f"Could not find user with id: [{who}].", "title": "Not Found Error",
                "resource_type": "user", "parameter": "id", "resource_id": who,
                "type": PROBLEMS + "resource-not-found"}]}, PRICE_POST
        posts = self.live_posts()[:self.config.window]
        chosen = []
        for post in posts:
            newest = int(post.version_ids[-1])
            if bounds["since_id"] is not None and newest <= bounds["since_id"]:
                continue
            if bounds["until_id"] is not None and newest >= bounds["until_id"]:
                continue
            if after is not None and newest >= int(after):
                continue
            if ("retweets" in exclude and post.repost_of) or ("replies" in exclude and post.reply_to):
                continue
            created = _iso(post.edits[-1].created_at if post.edits else post.created_at)
            if (params.get("start_time") and created < params["start_time"]) or \
                    (params.get("end_time") and created > params["end_time"]):
                continue
            chosen.append(post)
        page, more = chosen[:size], len(chosen) > size
        if not page:
            return {"meta": {"result_count": 0}}, PRICE_POST
        keep = tweet_fields | {"id", "text", "edit_history_tweet_ids"}
        data = []
        for post in page:
            tweet = self._only(self.tweet_json(post), keep)
            data.append(tweet)
        answer: dict[str, Any] = {"data": data}
        if "attachments.media_keys" in expansions:
            media = [self._only(self.media_json(m), media_fields | {"media_key", "type"})
                     for post in page for m in post.media]
            if media:
                answer["includes"] = {"media": media}
        meta: dict[str, Any] = {"result_count": len(data), "newest_id": data[0]["id"], "oldest_id": data[-1]["id"]}
        if more:
            meta["next_token"] = self._token_for(listing, data[-1]["id"])
        answer["meta"] = meta
        return answer, PRICE_POST

    def _follows(self, params, who: str, people: list[XUser], kind: str) -> tuple[dict, int]:
        self._check_params(params, FOLLOWS_PARAMS)
        fields = self._fields(params, "user.fields", USER_FIELDS)
        self._fields(params, "tweet.fields", TWEET_FIELDS)
        size = self._max_results(params, 1, 1000, 100)
        listing = f"{kind}:{who}"
        start = int(self._position(params, listing) or 0)
        if who != self.owner.account_id:
            people = []
        page = people[start:start + size]
        if not page:
            return {"meta": {"result_count": 0}}, PRICE_USER
        meta: dict[str, Any] = {"result_count": len(page)}
        if start + size < len(people):
            meta["next_token"] = self._token_for(listing, str(start + size))
        if start:
            meta["previous_token"] = self._token_for(listing, str(max(start - size, 0)))
        return {"data": [self._only(self.user_json(u), fields | {"id", "name", "username"}) for u in page],
                "meta": meta}, PRICE_USER

    def _get_followers(self, params, who: str) -> tuple[dict, int]:
        return self._follows(params, who, self.world.followers, "followers")

    def _get_following(self, params, who: str) -> tuple[dict, int]:
        return self._follows(params, who, self.world.following, "following")

    @staticmethod
    def _only(item: dict, keep: set[str]) -> dict:
        return {k: v for k, v in item.items() if k in keep}

    # ------------------------------------------------------------------ the CDN

    def cdn_files(self) -> dict[str, bytes]:
        """Every file the CDN serves, by path: the posts' media (a video's variants each
        their own bytes, its highest-bitrate one the archive's file) and the pictures."""
        files: dict[str, bytes] = {}
        for post in self.world.posts:  # type: ignore[union-attr]
            for media in post.media:
                path = urlsplit(media.media_url).path
                if media.kind == "photo":
                    files[path] = media.file_bytes()
                    continue
                files[path] = jpeg_bytes("thumb " + media.key)
                for variant in media.variants():
                    variant_path = urlsplit(variant["url"]).path
                    if variant_path.endswith(".mp4"):
                        name = variant_path.rsplit("/", 1)[1]
                        files[variant_path] = (media.file_bytes() if name == media.file_name
                                               else mp4_bytes(name, 2000))
        if self.world.profile.avatar_key:
            original = urlsplit(_avatar_url(self.world)).path
            files[original] = jpeg_bytes("avatar " + self.world.profile.avatar_key)   # profile_media/'s bytes
            files[original.replace(".jpg", "_normal.jpg")] = png_bytes("avatar normal " + self.world.profile.avatar_key)
        for user in [*self.world.followers, *self.world.following]:
            files[f"/profile_images/{user.account_id}/{_key(_handle_of(user))}_normal.jpg"] = \
                png_bytes("avatar " + user.account_id)
        return files

    def _cdn(self, request: httpx.Request, path: str) -> httpx.Response:
        if request.method not in ("GET", "HEAD"):
            return httpx.Response(405)
        body = self.cdn_files().get(path)
        if body is None:
            return httpx.Response(404, headers={"Content-Type": "text/plain"}, text="Not Found")
        content_type = ("video/mp4" if path.endswith(".mp4") else "image/png" if body.startswith(b"\x89PNG")
                        else "image/jpeg")
        return httpx.Response(200, headers={"Content-Type": content_type, "Cache-Control": "max-age=604800"},
                              content=body)


class _Invalid(Exception):
    def __init__(self, message: str, parameter: str, value: str):
        super().__init__(message)
        self.message, self.parameter, self.value = message, parameter, value


# --------------------------------------------------------------------------- the archive


def write_matching_export(fake: FakeX, path: str | Path, **knobs: Any) -> Path:
    """The account's "Download an archive of your data" of the same world, written by
    xgen's x/sim/export.py (a zip when ``path`` ends in .zip, else the folder)."""
    target = Path(path).expanduser()
    return write_archive(target, fake.world, zipped=target.suffix.lower() == ".zip", **knobs)


# --------------------------------------------------------------------------- real HTTP


def serve(fake: FakeX, host: str = "127.0.0.1", port: int = 0):
    """Serve ``fake`` over real HTTP in a daemon thread; returns ``(server, thread)``."""
    from archiver.sim.server import serve_fake

    return serve_fake(fake, host, port, name="fake-x",
                      crash_response=lambda error: fake._problem(500, "Internal Server Error",
                                                                 f"fake crashed: {type(error).__name__}"))


def main(argv: list[str] | None = None) -> None:
    """``archiver simulate x --port N ...``: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="archiver simulate x",
                                     description="Serve a fake of X API v2 (pay per use), its OAuth 2.0 pages and its "
                                                 "media CDN, priced as X prices it.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--posts", type=int, default=None,
                        help="the owner's live posts (default: the sample world's 16, every kind the notes list)")
    parser.add_argument("--followers", type=int, default=5)
    parser.add_argument("--following", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0, help="chance of a 503 per data call")
    parser.add_argument("--rate-limit", type=int, default=900, help="timeline requests a 15-minute window")
    parser.add_argument("--follows-rate-limit", type=int, default=15, help="follows requests a 15-minute window")
    parser.add_argument("--max-results", type=int, default=100, help="the most posts a page holds")
    parser.add_argument("--window", type=int, default=3200, help="how many recent posts the timeline reaches")
    parser.add_argument("--monthly-post-cap", type=int, default=2_000_000)
    parser.add_argument("--credits-usd", type=float, default=None, help="the account's prepaid credits")
    parser.add_argument("--credits-status", type=int, choices=(402, 403), default=402,
                        help="the answer once the credits are spent")
    parser.add_argument("--retry-after", action="store_true", help="send Retry-After on a 429 too")
    parser.add_argument("--authorize-host", choices=("x.com", "twitter.com", "both"), default="both",
                        help="which host shows the consent page (in-process, where hosts differ)")
    parser.add_argument("--no-rotate-refresh", action="store_true",
                        help="a refresh keeps the refresh token (no new one)")
    parser.add_argument("--public-client", action="store_true", help="a public client: no secret, client_id in the form")
    parser.add_argument("--token-seconds", type=int, default=7200, help="an access token's lifetime")
    parser.add_argument("--scopes", default=ALL_SCOPES, help="the scopes the person grants in the consent page")
    parser.add_argument("--client-id", default=FakeXConfig.client_id)
    parser.add_argument("--client-secret", default=FakeXConfig.client_secret)
    parser.add_argument("--request-log", metavar="PATH", help="append \"METHOD PATH STATUS\" per request")
    parser.add_argument("--write-export", metavar="PATH",
                        help="also write this account's \"Download an archive of your data\" (a .zip, or a folder) "
                             "of the same world, to try `archiver import` on")
    args = parser.parse_args(argv)
    config = FakeXConfig(
        posts=args.posts, followers=args.followers, following=args.following, seed=args.seed,
        latency_ms=args.latency_ms, fail_rate=args.fail_rate, rate_limit=args.rate_limit,
        follows_rate_limit=args.follows_rate_limit, max_results_cap=args.max_results, window=args.window,
        monthly_post_cap=args.monthly_post_cap, credits_usd=args.credits_usd, credits_status=args.credits_status,
        retry_after=args.retry_after,
        authorize_hosts=("x.com", "twitter.com") if args.authorize_host == "both" else (args.authorize_host,),
        rotate_refresh=not args.no_rotate_refresh, client_type="public" if args.public_client else "confidential",
        access_ttl=args.token_seconds, granted_scopes=args.scopes, client_id=args.client_id,
        client_secret=args.client_secret)
    fake = FakeX(config)
    if args.request_log:
        from archiver.sim.server import log_requests

        log_requests(fake, args.request_log)
    server, _thread = serve(fake, args.host, args.port)
    if args.write_export:
        written = write_matching_export(fake, args.write_export)
        print(f"wrote the account's archive to {written}", flush=True)
    from archiver.sim.server import serve_until_signalled

    serve_until_signalled(server, fake)


if __name__ == "__main__":
    main()
