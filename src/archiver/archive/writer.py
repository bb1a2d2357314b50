"""The writer: records in, archive rows out, following the archive's rules (DESIGN.md §3).

- Nothing is lost: rows are never deleted; a tombstone (``deleted_at``) is set only after
  a complete listing (archiver.sync.listing for posts, likes and bookmarks;
  ``tombstone_comments`` for a post's comments).
- Edits are kept: a changed caption, comment or profile moves the old version to a
  ``*_versions`` table. Counts go to a time series, written only when they change, so
  re-running (or resuming after a crash) does not grow it.
- Provenance: ``sources`` lists every origin of a row; ``raw`` keeps each origin's payload
  under that origin's own key ("api", "export:<sha256 of the export>").
- The API is the authority for what it returns; an export only fills what is empty, so
  importing an old export after an API run never turns a caption back.
- No NUL reaches the database: every record passes through ``without_nul`` (archive.text)
  as it enters a ``write_*`` method, whether it came from an API or an export.

The caller owns the transaction (the sync runner wraps each page in ``Archive.writing()``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any, Iterable

from sqlite_utils import Database

from archiver.archive.text import NUL, without_nul
from archiver.records import (
    Collection,
    Comment,
    Interaction,
    ListPage,
    MediaRef,
    OwnedContact,
    Person,
    Post,
    Profile,
    Snapshot,
    now_utc,
)

PROVISIONAL = "provisional:"
# How far apart an export's time and the API's may be for one post (with its caption
# agreeing): exports round to the minute or shift by a time zone's seconds.
MATCH_TOLERANCE = dt.timedelta(minutes=2)
# A replaced value of these is an edit: the post's earlier version goes to post_versions.
_POST_CONTENT = ("title", "text", "visibility", "link")
_POST_FIELDS = ("kind", "created_at", "url", "duration", "width", "height")
_COUNTS = ("like_count", "comment_count", "share_count", "view_count")
_PROFILE_FIELDS = ("username", "display_name", "bio", "url", "avatar_sha256", "banner_sha256")
_ACCOUNT_COUNTS = ("followers", "following", "likes", "posts")
_ARRIVAL_TEXT = "%s" * 6   # the six values of a snapshot arrival row, as one string


@dataclass
class StoredFile:
    """What the media store returned for one MediaRef (or why it could not)."""

    sha256: str | None
    path: str | None = None
    mime: str | None = None
    size: int | None = None
    error: str | None = None
    # False for a file no retry can bring (an export names it but does not hold it).
    retryable: bool = True
    # Why it failed, in a word the summary and `archiver status` group by: expired,
    # refused, unreachable, hash, other (downloads.failure_cause).
    cause: str | None = None


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _time_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _caption_words(*texts: str | None) -> set[str]:
    return {" ".join(t.split()).casefold() for t in texts if t and t.strip()}


def _captions_agree(post: Post, row: dict) -> bool:
    """One of the post's title / text is one of the row's (spacing and case aside)."""
    return bool(_caption_words(post.title, post.text) & _caption_words(row["title"], row["text"]))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class ArchiveWriter:
    def __init__(
        self,
        db: Database,
        *,
        platform: str,
        account_id: str,
        source: str,
        scrub=None,
        now: str | None = None,
    ):
        self.db = db
        self.platform = platform
        self.account_id = account_id
        self.source = source  # "api" or "export:<sha256>"
        self.source_kind = source.split(":", 1)[0]
        self._scrub = scrub or (lambda value: value)
        self.now = now or now_utc()
        self.counts: dict[str, int] = {}

    # -- helpers ------------------------------------------------------------------------

    def _count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict | None:
        cursor = self.db.execute(sql, list(params))
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

    def _row(self, sql: str, params: Iterable[Any] = ()) -> dict:
        """The one row a query always has (an aggregate; a row the caller knows is there)."""
        row = self._one(sql, params)
        if row is None:
            raise LookupError(f"no row for: {sql}")
        return row

    def _merged_provenance(self, existing: dict | None, payload: dict) -> tuple[str, str]:
        sources = json.loads(existing["sources"]) if existing else []
        if self.source not in sources:
            sources.append(self.source)
        raw = json.loads(existing["raw"]) if existing else {}
        # Keyed by the source itself ("api", "export:<sha256>"): a second export adds its
        # payload beside the first one's, never over it.
        raw[self.source] = self._scrub(payload)
        return _json(sources), _json(raw)

    @property
    def authoritative(self) -> bool:
        return self.source_kind == "api"

    def _merge(self, existing: dict | None, incoming: dict[str, Any], fields: Iterable[str]):
        """New values for ``fields``: the API overwrites, an export fills blanks only."""
        merged = {}
        for name in fields:
            value = incoming.get(name)
            old = existing.get(name) if existing else None
            if value is None:
                merged[name] = old
            elif self.authoritative or old is None:
                merged[name] = value
            else:
                merged[name] = old
        return merged

    # -- media --------------------------------------------------------------------------

    def record_media(self, stored: StoredFile) -> None:
        if stored.sha256 is None:
            return
        self.db.execute(
            "INSERT INTO media (sha256, path, mime, size, first_seen_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT(sha256) DO NOTHING",
            [stored.sha256, stored.path, stored.mime, stored.size, self.now],
        )

    def link_media(self, post_id: str, ref: MediaRef, stored: StoredFile, source_url: str) -> None:
        ref, stored, source_url = without_nul((ref, stored, source_url))
        self.record_media(stored)
        existing = self._one(
            "SELECT sha256, status FROM post_media WHERE platform=? AND post_id=? AND role=? AND position=?",
            [self.platform, post_id, ref.role, ref.position],
        )
        description, meta = ref.description, _json(ref.meta) if ref.meta else None
        held = existing["sha256"] if existing is not None and existing["status"] == "ok" else None   # the slot's file
        # Keep the slot's file when this one is no better: a failed re-download, the same
        # file again, or an export's copy of a file the archive already holds (often another
        # encode of the same picture: kept in media/, but swapping it in would make every
        # import and every API run swap them back and forth).
        if held is not None and (stored.sha256 is None or stored.sha256 == held or not self.authoritative):
            if description is not None or meta is not None:
                # Alt text may be added or edited later. The platform's words win; an
                # export only fills what is blank.
                order = "coalesce(?, {0})" if self.authoritative else "coalesce({0}, ?)"
                self.db.execute(
                    f"UPDATE post_media SET description={order.format('description')}, meta={order.format('meta')} "
                    "WHERE platform=? AND post_id=? AND role=? AND position=?",
                    [description, meta, self.platform, post_id, ref.role, ref.position])
            return
        if stored.sha256 is None and existing and existing["sha256"]:
            return  # a failed download never replaces a file we already have
        self.db.execute(
            "INSERT INTO post_media (platform, post_id, role, position, sha256, source_url, status, error, updated_at, "
            "description, meta, cause) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(platform, post_id, role, position) DO UPDATE SET "
            "sha256=excluded.sha256, source_url=excluded.source_url, status=excluded.status, "
            "error=excluded.error, updated_at=excluded.updated_at, cause=excluded.cause, "
            "description=coalesce(excluded.description, post_media.description), "
            "meta=coalesce(excluded.meta, post_media.meta)",
            [
                self.platform, post_id, ref.role, ref.position, stored.sha256, source_url,
                "ok" if stored.sha256 else "failed", stored.error, self.now, description, meta,
                None if stored.sha256 else (stored.cause or "other"),
            ],
        )
        self._count("media_saved" if stored.sha256 else "media_failed")
        if stored.sha256 is None and not stored.retryable:
            self._count("media_not_in_export")
        elif stored.sha256 is None and stored.cause == "expired":
            self._count("media_expired")

    # -- profile ------------------------------------------------------------------------

    def write_profile(self, profile: Profile, avatar: StoredFile | None = None,
                      banner: StoredFile | None = None) -> None:
        """The account's current profile. ``avatar`` and ``banner`` are the stored files of
        ``profile.avatar`` / ``profile.banner`` (None when absent or not downloaded: the
        archive then keeps the picture it had). A replaced value, pictures included, moves
        to profile_versions."""
        profile, avatar, banner = without_nul((profile, avatar, banner))
        existing = self._one("SELECT * FROM accounts WHERE account_id=?", [self.account_id])
        for picture in (avatar, banner):
            if picture is not None:
                self.record_media(picture)
        incoming = {
            "username": profile.username,
            "display_name": profile.display_name,
            "bio": profile.bio,
            "url": profile.url,
            "avatar_sha256": avatar.sha256 if avatar else None,
            "banner_sha256": banner.sha256 if banner else None,
        }
        # An account no API reads (LinkedIn outside the EEA): the newest export is its profile.
        newest_export = (not self.authoritative and existing is not None and profile.as_of is not None
                         and "api" not in json.loads(existing["sources"] or "[]")
                         and profile.as_of > (existing["profile_as_of"] or ""))
        if newest_export and existing is not None:
            merged = {k: existing[k] if incoming[k] is None else incoming[k] for k in _PROFILE_FIELDS}
        else:
            merged = self._merge(existing, incoming, _PROFILE_FIELDS)
        as_of = self.now if self.authoritative else max(filter(None, (
            existing["profile_as_of"] if existing else None, profile.as_of)), default=None)
        sources, raw = self._merged_provenance(existing, profile.raw)
        if existing and any(existing[k] is not None and existing[k] != merged[k] for k in _PROFILE_FIELDS):
            self.db.execute(
                "INSERT OR IGNORE INTO profile_versions (account_id, replaced_at, username, display_name, bio, url, "
                "avatar_sha256, banner_sha256) VALUES (?,?,?,?,?,?,?,?)",
                [self.account_id, profile.as_of if newest_export else self.now,
                 *(existing[k] for k in _PROFILE_FIELDS)],
            )
            self._count("profile_changed")
        counts = {
            "followers": profile.followers,
            "following": profile.following,
            "likes": profile.likes,
            "posts": profile.posts,
        }
        counts = self._merge(existing, counts, _ACCOUNT_COUNTS)
        self.db.execute(
            "INSERT INTO accounts (account_id, platform, name, native_id, username, display_name, bio, url, avatar_sha256, "
            "banner_sha256, followers, following, likes, posts, sources, first_seen_at, last_seen_at, raw, "
            "profile_as_of) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(account_id) DO UPDATE SET "
            "native_id=coalesce(excluded.native_id, native_id), username=excluded.username, "
            "display_name=excluded.display_name, bio=excluded.bio, url=excluded.url, "
            "avatar_sha256=excluded.avatar_sha256, banner_sha256=excluded.banner_sha256, "
            "followers=excluded.followers, following=excluded.following, "
            "likes=excluded.likes, posts=excluded.posts, sources=excluded.sources, "
            "last_seen_at=excluded.last_seen_at, raw=excluded.raw, profile_as_of=excluded.profile_as_of",
            [
                self.account_id, self.platform, self.account_id.split(":", 1)[1], profile.native_id,
                *(merged[k] for k in _PROFILE_FIELDS), *(counts[k] for k in _ACCOUNT_COUNTS),
                sources, self.now, self.now, raw, as_of,
            ],
        )
        if self.authoritative and any(v is not None for v in counts.values()):
            last = self._one(
                "SELECT followers, following, likes, posts FROM account_metrics WHERE account_id=? "
                "ORDER BY observed_at DESC LIMIT 1",
                [self.account_id],
            )
            if last is None or any(last[k] != counts[k] for k in _ACCOUNT_COUNTS):
                self.db.execute(
                    "INSERT OR REPLACE INTO account_metrics (account_id, observed_at, followers, following, likes, posts) "
                    "VALUES (?,?,?,?,?,?)",
                    [self.account_id, self.now, *(counts[k] for k in _ACCOUNT_COUNTS)],
                )
        self._count("profile")

    # -- posts --------------------------------------------------------------------------

    def _twin(self, post: Post, *, provisional_only: bool) -> dict | None:
        """The row an id-less export item and an API item share: the same creation time, or
        one within ``MATCH_TOLERANCE`` (exports and APIs disagree by seconds, and by a
        rounded time zone) whose caption agrees. Rows named by an id come first, then the
        nearest time. Two id-less items (exports) are one post only at the same time: an
        export's own times agree from one export to the next, and two posts a minute
        apart may share a caption."""
        created = post.created_at
        moment = _parse_time(created)
        if created is None or moment is None:
            return None
        low, high = (_time_text(moment - MATCH_TOLERANCE), _time_text(moment + MATCH_TOLERANCE))
        kept = "AND post_id LIKE 'provisional:%'" if provisional_only else ""
        cursor = self.db.execute(
            f"SELECT * FROM posts WHERE account_id=? AND created_at BETWEEN ? AND ? {kept}",
            [self.account_id, min(low, created), max(high, created)],
        )
        names = [c[0] for c in cursor.description]
        candidates = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        def rank(row: dict) -> tuple:
            distance = abs((_parse_time(row["created_at"]) or moment) - moment)
            return (row["created_at"] != post.created_at, row["post_id"].startswith(PROVISIONAL), distance,
                    row["post_id"])

        for row in sorted(candidates, key=rank):
            if row["created_at"] == post.created_at:
                return row
            both_from_exports = post.native_id is None and row["post_id"].startswith(PROVISIONAL)
            if not both_from_exports and _captions_agree(post, row):
                return row
        return None

    def archived_post_id(self, post: Post) -> str | None:
        """The id of the archived row ``post`` would be written to, or None; reads only
        (the same rule as _resolve_post_id, without re-keying anything)."""
        post = without_nul(post)
        if post.native_id:
            return post.native_id
        row = self._twin(post, provisional_only=False) if post.created_at else None
        return row["post_id"] if row else None

    def _resolve_post_id(self, post: Post) -> tuple[str, dict | None]:
        """Find the row this post is: by native id, else by creation time (an export item
        without id, or an API item whose export twin is still provisional)."""
        if post.native_id:
            row = self._one("SELECT * FROM posts WHERE platform=? AND post_id=?", [self.platform, post.native_id])
            if row is not None:
                return post.native_id, row
            twin = self._twin(post, provisional_only=True)
            if twin is not None:
                self._rekey_post(twin["post_id"], post.native_id)
                twin["post_id"] = post.native_id
                return post.native_id, twin
            return post.native_id, None
        if post.created_at:
            row = self._twin(post, provisional_only=False)
            if row is not None:
                return row["post_id"], row
            return PROVISIONAL + post.created_at, None
        digest = hashlib.sha256(_json(post.raw).encode()).hexdigest()[:16]
        key = PROVISIONAL + "undated:" + digest
        return key, self._one("SELECT * FROM posts WHERE platform=? AND post_id=?", [self.platform, key])

    def _rekey_post(self, old: str, new: str) -> None:
        for table in ("posts", "post_versions", "post_metrics", "post_media"):
            self.db.execute(
                f"UPDATE {table} SET post_id=? WHERE platform=? AND post_id=?", [new, self.platform, old]
            )
        self.db.execute("UPDATE comments SET post_id=? WHERE platform=? AND post_id=?", [new, self.platform, old])
        self._rekey_memberships(old, new)
        self._count("posts_matched")

    def write_post(self, post: Post, listing: str | None = None) -> str:
        """Upsert one post; returns its post_id. ``listing`` marks it as returned by a
        full listing (see ``tombstone_unlisted``)."""
        post = without_nul(post)
        post_id, existing = self._resolve_post_id(post)
        incoming = {k: getattr(post, k) for k in (*_POST_CONTENT, *_POST_FIELDS, *_COUNTS)}
        merged = self._merge(existing, incoming, (*_POST_CONTENT, *_POST_FIELDS, *_COUNTS))
        sources, raw = self._merged_provenance(existing, post.raw)
        if existing is None:
            self._count("posts_new")
        # Only a replaced value is an edit; filling a blank (an export adding what the
        # API never said, or the reverse) is not, and must not invent a version.
        elif any(existing[k] is not None and existing[k] != merged[k] for k in _POST_CONTENT):
            # The platform's own history, when it comes along, holds the version being
            # replaced with its exact time: stored from there, not a second time here.
            newest = post.history[-1] if post.history else None
            in_history = (newest is not None and (newest.title, newest.text) == (existing["title"], existing["text"])
                          and merged["visibility"] == existing["visibility"] and merged["link"] == existing["link"])
            if not in_history:
                self.db.execute(
                    "INSERT OR IGNORE INTO post_versions (platform, post_id, replaced_at, title, text, visibility, link) "
                    "VALUES (?,?,?,?,?,?,?)",
                    [self.platform, post_id, self.now, *(existing[k] for k in _POST_CONTENT)],
                )
            self._count("posts_edited")
        revived = (existing is not None and existing["deleted_at"] is not None and self.authoritative
                   and post.deleted_at is None)
        if revived:
            self._count("posts_reappeared")
        deleted_at = None if revived else (existing or {}).get("deleted_at")
        if post.deleted_at and not deleted_at:
            # The platform's own word that the post is deleted, with its time.
            deleted_at = post.deleted_at
            self._count("posts_deleted")
        columns = ["platform", "post_id", "account_id", *_POST_CONTENT, *_POST_FIELDS, *_COUNTS,
                   "sources", "raw", "first_seen_at", "last_seen_at", "listed_in", "deleted_at"]
        values = [self.platform, post_id, self.account_id, *(merged[k] for k in (*_POST_CONTENT, *_POST_FIELDS, *_COUNTS)),
                  sources, raw, self.now, self.now,
                  listing if listing else (existing or {}).get("listed_in"),
                  deleted_at]
        updates = ", ".join(f"{c}=excluded.{c}" for c in columns if c not in ("platform", "post_id", "first_seen_at"))
        self.db.execute(
            f"INSERT INTO posts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT(platform, post_id) DO UPDATE SET {updates}",
            values,
        )
        for version in post.history:
            # The platform's own edit history: each earlier text once, keyed by its time.
            # A run that saw the change before the history arrived stored this version at
            # the time it noticed (the first version stored after the edit, same text):
            # that row is this version, and takes the platform's exact time instead.
            noticed = self._one(
                "SELECT replaced_at, title, text FROM post_versions WHERE platform=? AND post_id=? AND replaced_at>=? "
                "ORDER BY replaced_at LIMIT 1",
                [self.platform, post_id, version.replaced_at],
            )
            if noticed is not None and (noticed["title"], noticed["text"]) == (version.title, version.text):
                if noticed["replaced_at"] != version.replaced_at:
                    self.db.execute(
                        "UPDATE OR IGNORE post_versions SET replaced_at=? WHERE platform=? AND post_id=? AND replaced_at=?",
                        [version.replaced_at, self.platform, post_id, noticed["replaced_at"]],
                    )
                continue
            inserted = self.db.execute(
                "INSERT OR IGNORE INTO post_versions (platform, post_id, replaced_at, title, text, visibility) "
                "VALUES (?,?,?,?,?,?)",
                [self.platform, post_id, version.replaced_at, version.title, version.text, version.visibility],
            ).rowcount
            if inserted:
                self._count("post_versions")
        if self.authoritative and any(getattr(post, k) is not None for k in _COUNTS):
            last = self._one(
                "SELECT like_count, comment_count, share_count, view_count FROM post_metrics "
                "WHERE platform=? AND post_id=? ORDER BY observed_at DESC LIMIT 1",
                [self.platform, post_id],
            )
            sample = [merged[k] for k in _COUNTS]
            if last is None or [last[k] for k in _COUNTS] != sample:
                self.db.execute(
                    "INSERT OR REPLACE INTO post_metrics (platform, post_id, observed_at, like_count, comment_count, "
                    "share_count, view_count) "
                    "VALUES (?,?,?,?,?,?,?)",
                    [self.platform, post_id, self.now, *sample],
                )
                self._count("metrics_samples")
        self._write_memberships(post_id, post.collections)
        return post_id

    def _write_memberships(self, post_id: str, collections: list[str]) -> None:
        """The collections (boards, sections) the post is in, as this source says now. A
        membership row is never deleted: a post moved to another board gains a row and the
        old one keeps its ``last_seen_at``. The API is the authority: an export adds
        memberships only to a post the archive knows none of (an old export imported late
        must not make an old board look current), and otherwise only adds itself to the
        sources of those it confirms; its payload keeps what it said either way."""
        named = list(dict.fromkeys(c for c in collections if c))
        if not named:
            return
        held = {row[0]: json.loads(row[1]) for row in self.db.execute(
            "SELECT collection_id, sources FROM collection_posts WHERE platform=? AND post_id=?",
            [self.platform, post_id]).fetchall()}
        for collection_id in named:
            sources = held.get(collection_id)
            if sources is None and held and not self.authoritative:
                continue
            if sources is None:
                self._count("collection_posts_new")
            sources = [*(sources or []), *([] if self.source in (sources or []) else [self.source])]
            touch = "last_seen_at=excluded.last_seen_at, " if self.authoritative or not held else ""
            self.db.execute(
                "INSERT INTO collection_posts (platform, collection_id, post_id, sources, first_seen_at, last_seen_at) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT(platform, collection_id, post_id) DO UPDATE SET "
                f"{touch}sources=excluded.sources",
                [self.platform, collection_id, post_id, _json(sources), self.now, self.now],
            )

    def _rekey_memberships(self, old: str, new: str) -> None:
        """A provisional post's memberships move to its native id, merged with any the
        native id has (earliest first seen, latest last seen, both sources)."""
        for collection_id, sources, first, last in self.db.execute(
                "SELECT collection_id, sources, first_seen_at, last_seen_at FROM collection_posts "
                "WHERE platform=? AND post_id=?", [self.platform, old]).fetchall():
            there = self._one("SELECT sources, first_seen_at, last_seen_at FROM collection_posts "
                              "WHERE platform=? AND collection_id=? AND post_id=?", [self.platform, collection_id, new])
            if there is not None:
                merged = list(dict.fromkeys([*json.loads(there["sources"]), *json.loads(sources)]))
                sources, first, last = (_json(merged), min(first, there["first_seen_at"]),
                                        max(last, there["last_seen_at"]))
            self.db.execute(
                "INSERT OR REPLACE INTO collection_posts (platform, collection_id, post_id, sources, first_seen_at, "
                "last_seen_at) VALUES (?,?,?,?,?,?)", [self.platform, collection_id, new, sources, first, last])
        # The rows now live under the native id (a re-keying, as for the post itself).
        self.db.execute("DELETE FROM collection_posts WHERE platform=? AND post_id=?", [self.platform, old])

    # -- collections (boards, sections) -----------------------------------------------------

    def write_collection(self, collection: Collection, cover: StoredFile | None = None,
                         cover_source: str | None = None) -> str:
        """Upsert one board or section. ``cover`` is the stored file of ``collection.cover``
        and ``cover_source`` the link it came from, without its query string (None when
        absent or not downloaded: the archive keeps the cover it had). A replaced title,
        description, url, visibility or cover moves to collection_versions."""
        collection, cover, cover_source = without_nul((collection, cover, cover_source))
        existing = self._one("SELECT * FROM collections WHERE platform=? AND collection_id=?",
                             [self.platform, collection.native_id])
        incoming: dict[str, Any] = {f.name: getattr(collection, f.name) for f in dataclass_fields(collection)}
        incoming["parent_id"] = collection.parent_native_id
        fields = ("kind", "parent_id", "title", "description", "url", "visibility", "created_at",
                  "post_count", "follower_count")
        merged = self._merge(existing, incoming, fields)
        # The cover and its link move together, like a person's picture: the API's replaces
        # the one held, an export's only fills a blank.
        held = (existing or {}).get("cover_sha256"), (existing or {}).get("cover_source")
        picture = held
        if cover is not None and cover.sha256 is not None and (self.authoritative or held[0] is None):
            self.record_media(cover)
            picture = cover.sha256, cover_source
        versioned = ("title", "description", "url", "visibility")
        now = {**{k: merged[k] for k in versioned}, "cover_sha256": picture[0]}
        if existing and any(existing[k] is not None and existing[k] != now[k] for k in now):
            self.db.execute(
                "INSERT OR IGNORE INTO collection_versions (platform, collection_id, replaced_at, title, description, "
                "url, visibility, cover_sha256) VALUES (?,?,?,?,?,?,?,?)",
                [self.platform, collection.native_id, self.now, *(existing[k] for k in now)],
            )
            self._count("collections_changed")
        if existing is None:
            self._count("collections_new")
        sources, raw = self._merged_provenance(existing, collection.raw)
        columns = ["platform", "collection_id", "account_id", *fields, "cover_sha256", "cover_source",
                   "sources", "raw", "first_seen_at", "last_seen_at"]
        updates = ", ".join(f"{c}=excluded.{c}" for c in columns
                            if c not in ("platform", "collection_id", "first_seen_at"))
        self.db.execute(
            f"INSERT INTO collections ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT(platform, collection_id) DO UPDATE SET {updates}",
            [self.platform, collection.native_id, self.account_id, *(merged[k] for k in fields), *picture,
             sources, raw, self.now, self.now],
        )
        return collection.native_id

    def known_post_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` (the platform's, as a connector holds them) the archive has."""
        stored_as = {without_nul(i): i for i in ids}
        if not stored_as:
            return set()
        rows = self.db.execute(
            f"SELECT post_id FROM posts WHERE platform=? AND post_id IN ({','.join('?' * len(stored_as))})",
            [self.platform, *stored_as],
        ).fetchall()
        return {stored_as[r[0]] for r in rows}

    def tombstone_comments(self, post_id: str, listed: Iterable[str], *, top_level_only: bool = False) -> int:
        """After a complete listing of one post's comments: mark those the API had given
        before and the platform no longer listed (a comment known only from an export is
        left alone). ``top_level_only``: the listing gave no complete replies."""
        post_id, listed = without_nul(post_id), sorted(set(without_nul(list(listed))))
        cursor = self.db.execute(
            "UPDATE comments SET deleted_at=? WHERE platform=? AND post_id=? AND deleted_at IS NULL "
            "AND EXISTS (SELECT 1 FROM json_each(comments.sources) WHERE json_each.value = 'api') "
            + ("AND parent_id IS NULL " if top_level_only else "")
            + "AND comment_id NOT IN (SELECT value FROM json_each(?))",
            [self.now, self.platform, post_id, _json(listed)],
        )
        if cursor.rowcount:
            self._count("comments_tombstoned", cursor.rowcount)
        return cursor.rowcount

    def write_interaction(self, item: Interaction) -> None:
        """A like or bookmark of the owner's. Seen again, it keeps its first date."""
        item = without_nul(item)
        existing = self._one(
            "SELECT * FROM interactions WHERE account_id=? AND kind=? AND target=?",
            [self.account_id, item.kind, item.target],
        )
        merged = self._merge(existing, vars(item), ("target_url", "native_id", "created_at"))
        sources, raw = self._merged_provenance(existing, item.raw)
        if existing is None:
            self._count(f"{item.kind}s_new")
        self.db.execute(
            "INSERT INTO interactions (account_id, platform, kind, target, target_url, native_id, created_at, "
            "sources, first_seen_at, last_seen_at, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(account_id, kind, target) DO UPDATE SET target_url=excluded.target_url, "
            "native_id=excluded.native_id, created_at=excluded.created_at, sources=excluded.sources, "
            "last_seen_at=excluded.last_seen_at, raw=excluded.raw",
            [self.account_id, self.platform, item.kind, item.target, merged["target_url"], merged["native_id"],
             merged["created_at"], sources, self.now, self.now, raw],
        )
        self._revive("interactions", "account_id=? AND kind=? AND target=?", [self.account_id, item.kind, item.target],
                      existing, f"{item.kind}s")

    # -- the audience the owner owns ------------------------------------------------------

    def write_owned_contact(self, contact: OwnedContact) -> None:
        """A subscriber or customer from a provider's export. Exports are the only source,
        so the newest one (by ``as_of``, the file's own time) says the current status; an
        older export imported later only fills blanks. A changed status, consent or date
        keeps the earlier values in ``owned_contact_versions``."""
        contact = without_nul(contact)
        key = [self.account_id, contact.native_id]
        existing = self._one("SELECT * FROM owned_contacts WHERE account_id=? AND contact_id=?", key)
        as_of = contact.as_of or self.now
        consent = None if contact.consent is None else int(contact.consent)
        incoming = {"email": contact.email, "display_name": contact.display_name, "status": contact.status,
                    "consent": consent, "joined_at": contact.joined_at, "consent_at": contact.consent_at,
                    "left_at": contact.left_at, "provider_id": contact.provider_id, "orders": contact.orders}
        tracked = ("status", "consent", "joined_at", "consent_at", "left_at")
        newer = existing is None or as_of >= existing["as_of"]
        if existing is not None and not newer:   # an older export: it fills blanks only
            merged = {k: existing[k] if existing[k] is not None else v for k, v in incoming.items()}
        else:
            merged = {k: v if v is not None else (existing or {}).get(k) for k, v in incoming.items()}
            if existing is not None and existing["status"] != contact.status:
                # A new status: what the file does not say of it is unknown, not the old value;
                # a contact seen leaving between two exports left by the newer one's time.
                merged["consent"] = consent
                reachable_again = contact.status in ("subscribed", "pending", "customer")
                merged["left_at"] = contact.left_at or (None if reachable_again else as_of)
        if existing is not None and newer and any(existing[k] != merged[k] for k in tracked):
            self.db.execute(
                "INSERT OR IGNORE INTO owned_contact_versions (account_id, contact_id, replaced_at, status, consent, "
                "joined_at, consent_at, left_at) VALUES (?,?,?,?,?,?,?,?)",
                [*key, as_of, *(existing[k] for k in tracked)])
            self._count("contacts_changed")
        if existing is None:
            self._count("contacts_new")
        sources, raw = self._merged_provenance(existing, contact.raw)
        self.db.execute(
            "INSERT INTO owned_contacts (account_id, contact_id, platform, channel, email, display_name, status, "
            "consent, joined_at, consent_at, left_at, provider_id, orders, as_of, sources, first_seen_at, "
            "last_seen_at, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(account_id, contact_id) DO UPDATE SET email=excluded.email, "
            "display_name=excluded.display_name, status=excluded.status, consent=excluded.consent, "
            "joined_at=excluded.joined_at, consent_at=excluded.consent_at, left_at=excluded.left_at, "
            "provider_id=excluded.provider_id, orders=excluded.orders, as_of=excluded.as_of, "
            "sources=excluded.sources, last_seen_at=excluded.last_seen_at, raw=excluded.raw",
            [*key, self.platform, contact.channel, *(merged[k] for k in incoming),
             max(as_of, existing["as_of"]) if existing else as_of, sources, self.now, self.now, raw])

    # -- people and comments --------------------------------------------------------------

    def write_person(self, person: Person, avatar: StoredFile | None = None, avatar_source: str | None = None) -> str:
        """Upsert one identity. ``avatar`` is the stored file of ``person.avatar`` (None when
        there is none or it was not downloaded: the picture the archive holds stays) and
        ``avatar_source`` the link it came from, without its query string."""
        person, avatar, avatar_source = without_nul((person, avatar, avatar_source))
        existing = self._one(
            "SELECT * FROM people WHERE platform=? AND person_id=?", [self.platform, person.native_id]
        )
        incoming = {f.name: getattr(person, f.name) for f in dataclass_fields(person)} | {
            "links": _json(person.links) if person.links else None}
        merged = self._merge(existing, incoming, ("handle", "display_name", "url", "avatar_url", "bio", "links"))
        sources, raw = self._merged_provenance(existing, person.raw)
        # The picture and its link move together: the API's picture replaces the one held,
        # an export's only fills a blank (like every other field).
        held = (existing or {}).get("avatar_sha256"), (existing or {}).get("avatar_source")
        picture = held
        if avatar is not None and avatar.sha256 is not None and (self.authoritative or held[0] is None):
            self.record_media(avatar)
            picture = avatar.sha256, avatar_source
            if picture != held:
                self._count("avatars_saved")
        self.db.execute(
            "INSERT INTO people (platform, person_id, handle, display_name, url, avatar_url, bio, links, "
            "avatar_sha256, avatar_source, sources, first_seen_at, last_seen_at, raw) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(platform, person_id) DO UPDATE SET handle=excluded.handle, "
            "display_name=excluded.display_name, url=excluded.url, avatar_url=excluded.avatar_url, "
            "bio=excluded.bio, links=excluded.links, avatar_sha256=excluded.avatar_sha256, "
            "avatar_source=excluded.avatar_source, "
            "sources=excluded.sources, last_seen_at=excluded.last_seen_at, raw=excluded.raw",
            [self.platform, person.native_id, merged["handle"], merged["display_name"], merged["url"],
             merged["avatar_url"], merged["bio"], merged["links"], *picture, sources, self.now, self.now, raw],
        )
        return person.native_id

    def _resolve_comment_id(self, comment: Comment) -> str:
        """The row this comment is. An export names the owner's own comments only by time
        and text; the API names the same comment by id. Either order gives one row: an
        id-less comment joins an API row with the same time and text, and an API comment
        re-keys the provisional "own:" row the export made."""
        provisional = "own:{}:{}".format(
            comment.created_at, hashlib.sha256(comment.text.encode()).hexdigest()[:12]
        )
        if comment.native_id is None:
            if comment.by_owner and comment.created_at:
                twin = self.db.execute(
                    "SELECT comment_id FROM comments WHERE account_id=? AND by_owner=1 AND created_at=? AND text=? "
                    "AND comment_id NOT LIKE 'own:%' LIMIT 1",
                    [self.account_id, comment.created_at, comment.text],
                ).fetchone()
                if twin:
                    return twin[0]
            return provisional
        if comment.by_owner and comment.created_at:
            self.db.execute(
                "UPDATE OR IGNORE comments SET comment_id=? WHERE platform=? AND comment_id=?",
                [comment.native_id, self.platform, provisional],
            )
            self.db.execute(
                "UPDATE OR IGNORE comment_versions SET comment_id=? WHERE platform=? AND comment_id=?",
                [comment.native_id, self.platform, provisional],
            )
        return comment.native_id

    def write_comment(self, comment: Comment) -> str:
        comment = without_nul(comment)
        comment_id = self._resolve_comment_id(comment)
        author_id = self.write_person(comment.author) if comment.author else None
        existing = self._one(
            "SELECT * FROM comments WHERE platform=? AND comment_id=?", [self.platform, comment_id]
        )
        sources, raw = self._merged_provenance(existing, comment.raw)
        if existing is None:
            self._count("comments_new")
        elif existing["text"] != comment.text and self.authoritative:
            self.db.execute(
                "INSERT OR IGNORE INTO comment_versions (platform, comment_id, replaced_at, text) VALUES (?,?,?,?)",
                [self.platform, comment_id, self.now, existing["text"]],
            )
            self._count("comments_edited")
        text = comment.text if (existing is None or self.authoritative) else existing["text"]
        self.db.execute(
            "INSERT INTO comments (platform, comment_id, account_id, post_id, parent_id, author_id, by_owner, text, "
            "created_at, url, sources, first_seen_at, last_seen_at, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(platform, comment_id) DO UPDATE SET post_id=coalesce(excluded.post_id, post_id), "
            "parent_id=coalesce(excluded.parent_id, parent_id), author_id=coalesce(excluded.author_id, author_id), "
            "text=excluded.text, url=coalesce(excluded.url, url), sources=excluded.sources, "
            "last_seen_at=excluded.last_seen_at, raw=excluded.raw",
            [self.platform, comment_id, self.account_id, comment.post_native_id, comment.parent_native_id,
             author_id, int(comment.by_owner), text, comment.created_at, comment.url,
             sources, self.now, self.now, raw],
        )
        self._revive("comments", "platform=? AND comment_id=?", [self.platform, comment_id], existing, "comments")
        return comment_id

    def _revive(self, table: str, where: str, params: list, existing: dict | None, noun: str) -> None:
        """The API shows again a row a complete listing had marked deleted: it is back."""
        if existing is not None and existing.get("deleted_at") is not None and self.authoritative:
            self.db.execute(f"UPDATE {table} SET deleted_at=NULL WHERE {where}", params)
            self._count(f"{noun}_reappeared")

    # -- follower / following snapshots ----------------------------------------------------
    #
    # A list is applied as a snapshot in two steps: plan it (``_plan_snapshot``: the
    # snapshots row and what the diff needs to know about the lists before it), then
    # apply it one range of person ids after the other (``_apply_range``; the people in a
    # range are touched by that range only). ``write_snapshot`` and a small staged list
    # do it all in the caller's transaction; archiver.archive.lists does it for a staged list one
    # committed chunk at a time, so no transaction grows with the list.

    _TEMP_TABLES = ("snapshot_arrivals", "snapshot_all", "snapshot_members", "snapshot_joiner_ids",
                    "snapshot_joiners", "snapshot_gone", "snapshot_leavers", "snapshot_backfill")
    _MEMBER_COLUMNS = "person_id TEXT PRIMARY KEY, since TEXT, handle TEXT, display_name TEXT, url TEXT, avatar_url TEXT"
    # A person listed twice: in arrival order, the first date and URLs stay and later names win.
    _FIRST_DATE_LAST_NAMES = ("ON CONFLICT(person_id) DO UPDATE SET handle=coalesce(excluded.handle, handle), "
                              "display_name=coalesce(excluded.display_name, display_name)")

    def write_snapshot(self, snapshot: Snapshot, batch_size: int = 5_000) -> dict[str, int]:
        """Store a whole follower/following list and diff it against the open intervals
        (see ``_apply_snapshot``), in the caller's transaction; the members stream into a
        temporary table in batches. (A sync run stages big lists in chunks instead:
        archiver.archive.lists.stage_snapshot.)"""
        conn = self.db.conn
        arrive_sql = "INSERT INTO temp.snapshot_arrivals VALUES (?,?,?,?,?,?)"

        def arrivals() -> int:
            batch: list[tuple] = []
            total = 0
            for membership in snapshot.members:
                person = membership.person
                row = (person.native_id, membership.since, person.handle, person.display_name,
                       person.url, person.avatar_url)
                # Members stream by the million: one cheap look at the row's text (about
                # 1 µs), and only a row holding a NUL is rebuilt.
                if NUL in _ARRIVAL_TEXT % row:
                    row = without_nul(row)
                batch.append(row)
                if len(batch) >= batch_size:
                    conn.executemany(arrive_sql, batch)
                    total += len(batch)
                    batch.clear()
            conn.executemany(arrive_sql, batch)
            return total + len(batch)

        # complete is read again once the members are staged: an importer's member stream
        # may find its list partial while it is read.
        return self._apply_snapshot(snapshot.kind, snapshot.taken_at, arrivals, lambda: snapshot.complete)

    # -- lists staged a page (or a chunk) at a time ---------------------------------------

    def staged_list(self, kind: str) -> dict[str, Any] | None:
        """The ``kind`` list this account has staged from this writer's source, or None."""
        return self._one("SELECT * FROM staged_lists WHERE account_id=? AND kind=? AND source=?",
                         [self.account_id, kind, self.source])

    def _staged(self, kind: str) -> dict[str, Any]:
        """The staged ``kind`` list, which the caller knows is there (it is applying it)."""
        staged = self.staged_list(kind)
        if staged is None:
            raise LookupError(f"no {kind} list of {self.account_id} is staged from {self.source}")
        return staged

    def stage_members(self, kind: str, taken_at: str, members: list, *, cursor: Any = None,
                      read: int = 0) -> int:
        """Add ``members`` to the ``kind`` list staged from this source (creating it), with
        where the reading goes on: the API's ``cursor``, ``read`` more entries of an export
        read. In the caller's transaction. Returns the list's id."""
        with_id = sum(1 for m in members if m.person.native_id)
        if with_id < len(members):
            self._count(f"{kind}_without_id", len(members) - with_id)
        list_id = self.db.execute(
            "INSERT INTO staged_lists (account_id, kind, taken_at, source, cursor, read, pages, members, started_at, "
            "updated_at) VALUES (?,?,?,?,?,?,1,?,?,?) ON CONFLICT(account_id, kind, source) DO UPDATE SET "
            "cursor=excluded.cursor, read=read+excluded.read, pages=pages+1, members=members+excluded.members, "
            "updated_at=excluded.updated_at RETURNING list_id",
            [self.account_id, kind, taken_at, self.source, _json(cursor), read, with_id, self.now, self.now],
        ).fetchone()[0]

        def rows():   # streamed into executemany: a chunk is held once, as its members
            for m in members:
                if not m.person.native_id:
                    continue
                row = (m.person.native_id, m.since, m.person.handle, m.person.display_name, m.person.url,
                       m.person.avatar_url)
                if NUL in _ARRIVAL_TEXT % row:   # as write_snapshot: a cheap look, a rebuild only with a NUL
                    row = without_nul(row)
                yield (list_id, *row)

        self.db.conn.executemany(
            "INSERT INTO staged_members (list_id, person_id, since, handle, display_name, url, avatar_url) "
            "VALUES (?,?,?,?,?,?,?)", rows())
        return list_id

    def finish_staging(self, kind: str, taken_at: str, complete: bool) -> None:
        """The staged ``kind`` list is whole: it waits to be applied (an empty list too)."""
        self.stage_members(kind, taken_at, [])
        self.db.execute("UPDATE staged_lists SET complete=?, pages=pages-1 WHERE account_id=? AND kind=? AND source=?",
                        [int(complete), self.account_id, kind, self.source])

    def stage_list_page(self, page: ListPage, apply_up_to: int | None = None) -> dict[str, int] | None:
        """Add one page of a follower/following list to its staging, with the cursor that
        follows it. The ``last`` page makes the list whole and applies it as a snapshot,
        clearing its staging, all in the caller's transaction; with ``apply_up_to``, only
        a list of at most that many people (the sync runner applies a bigger one afterwards
        in committed chunks: archiver.archive.lists.apply_staged). Returns the snapshot's counts
        when applied here, else None."""
        page = without_nul(page)
        staged = self.staged_list(page.kind)
        if staged is not None and staged["taken_at"] != page.taken_at:
            # Not a data error of this page (which the runner would skip, leaving a hole in
            # the list): the run fails and nothing of the page is kept.
            raise RuntimeError(f"a {page.kind} list taken at {staged['taken_at']} is staged already; "
                               f"a page of the list taken at {page.taken_at} cannot join it")
        self.stage_members(page.kind, page.taken_at, page.members, cursor=page.cursor, read=len(page.members))
        if not page.last:
            return None
        self.finish_staging(page.kind, page.taken_at, page.complete)
        if apply_up_to is not None and self._staged(page.kind)["members"] > apply_up_to:
            return None
        return self.apply_staged_at_once(page.kind)

    def apply_staged_at_once(self, kind: str) -> dict[str, int]:
        """Apply the whole staged ``kind`` list and clear its staging in the caller's
        transaction: for a list small enough to be one chunk."""
        result = {"members": 0, "new": 0, "lost": 0}
        if self.plan_staged(kind) is not None:
            self.load_staged(kind)
            while not self.apply_staged_chunk(kind, limit=None):
                pass
            result = self.staged_outcome
            self.db.conn.execute("DROP TABLE IF EXISTS temp.snapshot_all")
        while not self.clear_staged_chunk(kind, limit=None):
            pass
        return result

    def plan_staged(self, kind: str) -> dict[str, Any] | None:
        """Start applying the whole staged ``kind`` list (caller's transaction): the plan
        is fixed now and kept with the list, so a resumed application diffs against the
        same lists as the first one. None when there is nothing to apply (an empty partial
        list says nothing; this very list is in the archive already): clear the staging."""
        staged = self._staged(kind)
        if staged["plan"] is not None:
            return json.loads(staged["plan"])
        if (staged["members"] == 0 and not staged["complete"]) or \
                self.applied_already(kind, staged["taken_at"], bool(staged["complete"])):
            plan = None
        else:
            plan = self._plan_snapshot(kind, staged["taken_at"], staged["members"], bool(staged["complete"]))
        self.db.execute("UPDATE staged_lists SET plan=? WHERE list_id=?",
                        [_json(plan or {"done": True}), staged["list_id"]])
        return plan

    def load_staged(self, kind: str) -> None:
        """The staged members, one row a person in key order, in ``temp.snapshot_all`` (a
        temporary table: no write to the archive, kept by this connection across chunks)."""
        conn = self.db.conn
        staged = self._staged(kind)
        for table in self._TEMP_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
        conn.execute(f"CREATE TEMP TABLE snapshot_all ({self._MEMBER_COLUMNS}) WITHOUT ROWID")
        with self._phase("sort"):
            conn.execute(
                "INSERT INTO temp.snapshot_all SELECT person_id, since, handle, display_name, url, avatar_url "
                "FROM staged_members WHERE list_id=? ORDER BY person_id, rowid " + self._FIRST_DATE_LAST_NAMES,
                [staged["list_id"]])

    def apply_staged_chunk(self, kind: str, limit: int | None) -> bool:
        """Apply the next ``limit`` people (all: None) of the staged list, in key order,
        and note how far it got, in the caller's transaction; ``load_staged`` first. True
        when that was the last chunk: the snapshot is then whole in the archive."""
        conn = self.db.conn
        staged = self._staged(kind)
        plan = json.loads(staged["plan"])
        after = staged["applied_to"]
        conn.execute("DROP TABLE IF EXISTS temp.snapshot_members")
        conn.execute(f"CREATE TEMP TABLE snapshot_members ({self._MEMBER_COLUMNS}) WITHOUT ROWID")
        conn.execute(
            "INSERT INTO temp.snapshot_members SELECT * FROM temp.snapshot_all "
            + ("WHERE person_id > :after " if after is not None else "") + "ORDER BY person_id LIMIT :limit",
            {"after": after, "limit": -1 if limit is None else limit})
        upto = conn.execute("SELECT max(person_id) FROM temp.snapshot_members").fetchone()[0]
        last = upto is None or conn.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM temp.snapshot_all WHERE person_id > ?)", [upto]).fetchone()[0]
        self._apply_range(plan, after, None if last else upto)
        if last:
            self._finish_snapshot(plan)
            plan["done"] = True
            self.staged_outcome = self._row(
                "SELECT member_count AS members, new_count AS new, lost_count AS lost FROM snapshots "
                "WHERE snapshot_id=?", [plan["snapshot_id"]])
            self._count(f"{kind}_seen", plan["total"])
        self.db.execute("UPDATE staged_lists SET applied_to=?, plan=?, updated_at=? WHERE list_id=?",
                        [upto, _json(plan), self.now, staged["list_id"]])
        return last

    def clear_staged_chunk(self, kind: str, limit: int | None) -> bool:
        """Remove up to ``limit`` (all: None) staged members of an applied list, and the
        list itself once it has none left. True when it is gone."""
        staged = self.staged_list(kind)
        if staged is None:
            return True
        removed = self.db.execute(
            "DELETE FROM staged_members WHERE rowid IN (SELECT rowid FROM staged_members WHERE list_id=? LIMIT ?)",
            [staged["list_id"], -1 if limit is None else limit]).rowcount
        if limit is not None and removed >= limit:
            return False
        self.db.execute("DELETE FROM staged_lists WHERE list_id=?", [staged["list_id"]])
        return True

    # -- applying a snapshot ----------------------------------------------------------------

    def _apply_snapshot(self, kind: str, taken: str, arrivals, is_complete) -> dict[str, int]:
        """Store a whole follower/following list and diff it against the open intervals,
        in one go.

        ``arrivals()`` fills ``temp.snapshot_arrivals`` with the members in arrival order
        and returns how many it added; ``is_complete()`` says whether the list is whole
        (bounded memory either way); the diff runs in SQL on indexed keys (``_apply_range``).
        Phase times (seconds) are left in ``self.snapshot_timings``.
        """
        conn = self.db.conn
        applied = self.applied_already(kind, taken, is_complete())
        if applied is not None:
            self.snapshot_timings: dict[str, float] = {}
            return {"members": applied["member_count"], "new": 0, "lost": 0}
        self.snapshot_timings = {}
        with self.big_caches():
            for table in self._TEMP_TABLES:
                conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
            with self._phase("stage"):
                # Arrival order first: appending to an unindexed table is the cheapest write;
                # one sorted pass then builds the keyed table the diff walks.
                conn.execute(
                    "CREATE TEMP TABLE snapshot_arrivals (person_id TEXT, since, handle, display_name, url, avatar_url)"
                )
                total = arrivals()
                conn.execute(f"CREATE TEMP TABLE snapshot_members ({self._MEMBER_COLUMNS}) WITHOUT ROWID")
                conn.execute(
                    "INSERT INTO temp.snapshot_members SELECT person_id, since, handle, display_name, url, avatar_url "
                    "FROM temp.snapshot_arrivals ORDER BY person_id, rowid " + self._FIRST_DATE_LAST_NAMES)
                conn.execute("DROP TABLE temp.snapshot_arrivals")
            plan = self._plan_snapshot(kind, taken, total, is_complete())
            new_events, lost = self._apply_range(plan, None, None)
            self._finish_snapshot(plan)
            for table in self._TEMP_TABLES:
                conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
        self._count(f"{kind}_seen", total)
        return {"members": total, "new": new_events, "lost": lost}

    def applied_already(self, kind: str, taken: str, complete: bool) -> dict | None:
        """This very list (same moment, same source) is in the archive already: applying
        it again must change nothing, so it is not applied again. (A complete list
        arriving after a partial one of the same moment is applied: it knows more.)"""
        applied = self._one(
            "SELECT member_count, complete FROM snapshots WHERE account_id=? AND kind=? AND taken_at=? AND source=?",
            [self.account_id, kind, taken, self.source],
        )
        return applied if applied is not None and applied["complete"] >= int(complete) else None

    @contextmanager
    def big_caches(self):
        """Bigger page caches while a list is applied: the steps walk indexes of a million
        rows and SQLite's default 2 MB cache would re-read them at every step. These are
        caps (temporary tables spill to a file beyond theirs), so memory stays bounded:
        48 MB in all keeps a whole import under 150 MB (benchmarks/export_import.py)."""
        conn = self.db.conn
        page_size = conn.execute("PRAGMA main.page_size").fetchone()[0]
        saved_cache = {}
        for schema, kib in (("main", 32 * 1024), ("temp", 16 * 1024)):
            current = conn.execute(f"PRAGMA {schema}.cache_size").fetchone()[0]
            current_kib = -current if current < 0 else current * page_size // 1024
            if current_kib < kib:  # never shrink a cache the user made bigger
                saved_cache[schema] = current
                conn.execute(f"PRAGMA {schema}.cache_size=-{kib}")
        try:
            yield
        finally:
            for schema, value in saved_cache.items():
                conn.execute(f"PRAGMA {schema}.cache_size={value}")

    @contextmanager
    def _phase(self, name: str):
        """Adds the time spent inside to ``self.snapshot_timings[name]`` (the benchmark's)."""
        from time import perf_counter

        timings = self.__dict__.setdefault("snapshot_timings", {})
        started = perf_counter()
        try:
            yield
        finally:
            timings[name] = timings.get(name, 0.0) + perf_counter() - started

    def _plan_snapshot(self, kind: str, taken: str, total: int, complete: bool) -> dict[str, Any]:
        """The snapshots row of the list (not complete until its last range is applied)
        and what the diff needs to know of the lists applied before it.

        The first snapshot of a list is the baseline: it opens intervals but writes "new"
        events only where the platform gave a date. A snapshot older than the newest one
        already applied opens intervals for people not yet known but ends none (it cannot
        know who left since): ``_apply_older_snapshot``."""
        latest = self._row(
            "SELECT max(taken_at) AS t, count(*) AS n FROM snapshots WHERE account_id=? AND kind=?",
            [self.account_id, kind],
        )
        snapshot_id = self.db.execute(
            "INSERT INTO snapshots (account_id, kind, taken_at, source, member_count, new_count, lost_count, complete) "
            "VALUES (?,?,?,?,?,0,0,0) ON CONFLICT(account_id, kind, taken_at, source) DO UPDATE SET "
            "member_count=excluded.member_count RETURNING snapshot_id",
            [self.account_id, kind, taken, self.source, total],
        ).fetchone()[0]
        # For an older list: the first complete list after it, and whether it is the first.
        until = self.db.execute(
            "SELECT min(taken_at) FROM snapshots WHERE account_id=? AND kind=? AND complete=1 AND taken_at > ?",
            [self.account_id, kind, taken]).fetchone()[0]
        first = self.db.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM snapshots WHERE account_id=? AND kind=? AND taken_at < ?)",
            [self.account_id, kind, taken]).fetchone()[0]
        return {"kind": kind, "taken": taken, "snapshot_id": snapshot_id, "total": total, "complete": complete,
                "baseline": latest["n"] == 0, "is_newest": latest["t"] is None or taken >= latest["t"],
                "until": until, "first": first}

    def _finish_snapshot(self, plan: dict[str, Any]) -> None:
        """Every range is applied: the snapshot is whole, and says whether it is complete."""
        self.db.execute("UPDATE snapshots SET complete=max(complete, ?) WHERE snapshot_id=?",
                        [int(plan["complete"]), plan["snapshot_id"]])

    def _apply_range(self, plan: dict[str, Any], after: str | None, upto: str | None) -> tuple[int, int]:
        """Apply the list to the people whose id is in (``after``, ``upto``] (no bound:
        None); ``temp.snapshot_members`` holds exactly the list's members in that range.

        People: a member not yet in ``people`` is added (with this source); a known one
        gets ``last_seen_at`` and any handle / display name the list gives.

        Built for a million members (benchmarks/followers_snapshot.py): each step is one
        set-based statement that walks the members in key order, never a query per
        member; the diff itself is two merge EXCEPTs over ordered keys, so everything after
        it touches only the few people who came or went. Returns the (new, lost) events.
        """
        conn = self.db.conn
        kind, taken, complete = plan["kind"], plan["taken"], plan["complete"]
        # The open intervals of this range only: a range never reads or changes another's.
        in_range = ("AND person_id > :after " if after is not None else "") + \
                   ("AND person_id <= :upto " if upto is not None else "")
        for table in self._TEMP_TABLES[3:]:
            conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
        with self._phase("people"):
            # Known people: touched only where something changes, so the full-text trigger
            # fires only for changed names. "+m.person_id" makes SQLite walk the members and
            # look people up, never scan every person of the platform.
            people_args = {"platform": self.platform, "sources": _json([self.source]), "now": self.now,
                           "source": self.source}
            conn.execute(
                "UPDATE people SET handle=coalesce(m.handle, people.handle), "
                "display_name=coalesce(m.display_name, people.display_name), last_seen_at=:now, "
                # Provenance: this list's source joins the person's sources (a string test,
                # cheap enough for a million rows).
                "sources=CASE WHEN instr(people.sources, json_quote(:source)) THEN people.sources "
                "ELSE json_insert(people.sources, '$[#]', :source) END "
                "FROM temp.snapshot_members m WHERE people.platform=:platform AND people.person_id=+m.person_id "
                "AND (people.last_seen_at IS NOT :now OR (m.handle IS NOT NULL AND m.handle IS NOT people.handle) "
                "OR (m.display_name IS NOT NULL AND m.display_name IS NOT people.display_name))",
                people_args,
            )
            conn.execute(
                "INSERT INTO people (platform, person_id, handle, display_name, url, avatar_url, sources, "
                "first_seen_at, last_seen_at, raw) "
                "SELECT :platform, person_id, handle, display_name, url, avatar_url, :sources, :now, :now, '{}' "
                "FROM temp.snapshot_members m "
                "WHERE NOT EXISTS (SELECT 1 FROM people p WHERE p.platform=:platform AND p.person_id=m.person_id)",
                people_args,
            )

        args = {"account": self.account_id, "kind": kind, "taken": taken, "sid": plan["snapshot_id"],
                "after": after, "upto": upto, "until": plan["until"], "first": plan["first"]}
        open_people = (
            "SELECT person_id FROM follows WHERE account_id=:account AND kind=:kind AND ended_at IS NULL " + in_range
        )
        this_list = "f.account_id=:account AND f.kind=:kind AND f.person_id=m.person_id"
        with self._phase("diff"):
            # The diff: two top-level EXCEPTs with ORDER BY, which SQLite runs as a merge of
            # the members' key order and the open intervals' (no per-row lookups, no temp
            # B-tree). (Inside a subquery SQLite would drop the ORDER BY, hence the tables.)
            # Joiners: members without an open interval.
            conn.execute(
                "CREATE TEMP TABLE snapshot_joiner_ids AS "
                f"SELECT person_id FROM temp.snapshot_members EXCEPT {open_people} ORDER BY 1",
                args,
            )
            conn.execute(
                "CREATE TEMP TABLE snapshot_joiners AS SELECT m.person_id AS person_id, m.since AS since, "
                f"EXISTS (SELECT 1 FROM follows f WHERE {this_list}) AS known, "
                f"EXISTS (SELECT 1 FROM follows f WHERE {this_list} AND f.ended_at <= :taken) AS came_back "
                "FROM temp.snapshot_joiner_ids j CROSS JOIN temp.snapshot_members m ON m.person_id=j.person_id",
                args,
            )
            # Gone: people with an open interval who are not in this list.
            conn.execute("CREATE TEMP TABLE snapshot_gone (person_id TEXT PRIMARY KEY) WITHOUT ROWID")
            conn.execute(
                f"INSERT INTO temp.snapshot_gone {open_people} "
                "EXCEPT SELECT person_id FROM temp.snapshot_members ORDER BY 1",
                args,
            )
            # Everyone who stayed: one in-place update per open interval, in key order.
            conn.execute(
                "UPDATE follows SET last_seen_at=:taken WHERE account_id=:account AND kind=:kind "
                "AND ended_at IS NULL AND last_seen_at < :taken " + in_range +
                "AND person_id NOT IN (SELECT person_id FROM temp.snapshot_gone)",
                args,
            )
            lost = 0
            if plan["is_newest"]:
                new_events = conn.execute(
                    "INSERT INTO audience_events (account_id, kind, person_id, event, at, snapshot_id) "
                    "SELECT :account, :kind, person_id, 'new', coalesce(since, :taken), :sid FROM temp.snapshot_joiners "
                    "WHERE NOT known AND (:baseline = 0 OR since IS NOT NULL) "
                    # In time order, so the events' time index grows at its end.
                    "ORDER BY coalesce(since, :taken), person_id",
                    args | {"baseline": int(plan["baseline"])},
                ).rowcount
                # Returning after a gap is a new interval and a new event too.
                new_events += conn.execute(
                    "INSERT INTO audience_events (account_id, kind, person_id, event, at, snapshot_id) "
                    "SELECT :account, :kind, person_id, 'new', :taken, :sid FROM temp.snapshot_joiners WHERE came_back",
                    args,
                ).rowcount
                conn.execute(
                    "INSERT OR IGNORE INTO follows (account_id, kind, person_id, started_at, last_seen_at, ended_at) "
                    "SELECT :account, :kind, person_id, CASE WHEN known THEN :taken ELSE coalesce(since, :taken) END, "
                    ":taken, NULL FROM temp.snapshot_joiners",
                    args,
                )
            else:
                new_events, lost = self._apply_older_snapshot(conn, args, complete, in_range)
            if complete and plan["is_newest"] and not plan["baseline"]:
                conn.execute(
                    "CREATE TEMP TABLE snapshot_leavers AS SELECT f.person_id AS person_id, f.started_at AS started_at "
                    "FROM temp.snapshot_gone g CROSS JOIN follows f ON f.account_id=:account AND f.kind=:kind "
                    "AND f.person_id=g.person_id AND f.ended_at IS NULL WHERE f.started_at <= :taken",
                    args,
                )
                lost = conn.execute(
                    "INSERT INTO audience_events (account_id, kind, person_id, event, at, snapshot_id) "
                    "SELECT :account, :kind, person_id, 'lost', :taken, :sid FROM temp.snapshot_leavers",
                    args,
                ).rowcount
                conn.execute(
                    "UPDATE follows SET ended_at=:taken WHERE account_id=:account AND kind=:kind "
                    "AND (person_id, started_at) IN (SELECT person_id, started_at FROM temp.snapshot_leavers)",
                    args,
                )
            # Added, not set: applying the same list again finds nobody new and must not
            # erase what its first application counted; each range adds its own.
            conn.execute(
                "UPDATE snapshots SET new_count=new_count+?, lost_count=lost_count+? WHERE snapshot_id=?",
                [new_events, lost, plan["snapshot_id"]],
            )
        self._count(f"{kind}_new", new_events)
        self._count(f"{kind}_lost", lost)
        return new_events, lost

    def _apply_older_snapshot(self, conn, args: dict, complete: bool, in_range: str) -> tuple[int, int]:
        """A list older than the newest one applied (an old export imported late).

        The result must be what applying every list in time order would have given, so
        this edits the history around the list's time ``taken``. ``until`` is the first
        complete list after it: nobody in this list can have been following without a
        break beyond that unless their interval says so.

        - Someone in it whose next interval starts later, with no complete list in between,
          followed since this list: that interval starts here (its "new" event moves).
        - Someone in it not following at its time gets an interval from their date (or the
          list's time) ended by ``until`` (open without one), with its events.
        - Someone in it whose interval covers its time is seen then (``last_seen_at``).
        - A complete list without someone whose interval had not been seen since before
          it ends that interval here (its "lost" event moves here); one who was seen both
          before and after it left and came back: the interval splits in two.
        - If this list is the first of all, it is the baseline: its undated members get
          no "new" event, and those of the former baseline who are not in it get theirs.
        Follow dates (``since``) the platform gave are kept as they are. Only the people
        of the range being applied are touched (``in_range``, over ``person_id``; ``until``
        and ``first`` come from the plan, fixed before the first range).
        Returns the (new, lost) events written.
        """
        until, first = args["until"], args["first"]
        this = "f.account_id=:account AND f.kind=:kind AND f.person_id=m.person_id"
        event_cols = "INSERT INTO audience_events (account_id, kind, person_id, event, at, snapshot_id) "
        new = lost = 0

        # Members seen within an interval that covers the list's time.
        conn.execute(
            "UPDATE follows SET last_seen_at=:taken FROM temp.snapshot_members m "
            "WHERE follows.account_id=:account AND follows.kind=:kind AND follows.person_id=m.person_id "
            "AND follows.started_at <= :taken AND follows.last_seen_at < :taken "
            "AND (follows.ended_at IS NULL OR follows.ended_at > :taken)",
            args,
        )
        # Members whose next interval starts after the list with no complete list between:
        # that interval starts here.
        conn.execute(
            "CREATE TEMP TABLE snapshot_backfill AS SELECT m.person_id AS person_id, m.since AS since, "
            "(SELECT min(f.started_at) FROM follows f WHERE " + this + " AND f.started_at > :taken "
            " AND (:until IS NULL OR f.started_at <= :until)) AS later_start "
            "FROM temp.snapshot_members m WHERE NOT EXISTS (SELECT 1 FROM follows f WHERE " + this + " "
            "AND f.started_at <= :taken AND (f.ended_at IS NULL OR f.ended_at > :taken))",
            args,
        )
        conn.execute(
            "DELETE FROM audience_events WHERE account_id=:account AND kind=:kind AND event='new' "
            "AND (person_id, at) IN (SELECT person_id, later_start FROM temp.snapshot_backfill "
            "WHERE later_start IS NOT NULL)",
            args,
        )
        conn.execute(
            "UPDATE OR IGNORE follows SET started_at=coalesce(b.since, :taken) FROM temp.snapshot_backfill b "
            "WHERE follows.account_id=:account AND follows.kind=:kind AND follows.person_id=b.person_id "
            "AND follows.started_at=b.later_start",
            args,
        )
        new += conn.execute(
            event_cols + "SELECT :account, :kind, person_id, 'new', coalesce(since, :taken), :sid "
            "FROM temp.snapshot_backfill WHERE NOT (:first AND since IS NULL)",
            args,
        ).rowcount
        # The others: an interval of their own, ended by the next complete list.
        conn.execute(
            "INSERT OR IGNORE INTO follows (account_id, kind, person_id, started_at, last_seen_at, ended_at) "
            "SELECT :account, :kind, person_id, coalesce(since, :taken), :taken, :until FROM temp.snapshot_backfill "
            "WHERE later_start IS NULL",
            args,
        )
        if until is not None:
            lost += conn.execute(
                event_cols + "SELECT :account, :kind, person_id, 'lost', :until, :sid FROM temp.snapshot_backfill "
                "WHERE later_start IS NULL",
                args,
            ).rowcount

        if complete:
            # Intervals covering the list's time whose person it lacks. Seen only before it:
            # they end here. Seen before and after it (at an observed start, not a date the
            # platform gave): they left here and came back at the next list that had them.
            conn.execute(
                "CREATE TEMP TABLE snapshot_leavers AS SELECT f.person_id AS person_id, f.started_at AS started_at, "
                "f.last_seen_at AS last_seen_at, f.ended_at AS ended_at, "
                "(SELECT max(s.taken_at) FROM snapshots s WHERE s.account_id=:account AND s.kind=:kind "
                " AND s.complete=1 AND s.taken_at >= f.started_at AND s.taken_at < :taken) AS seen_before, "
                "(SELECT min(s.taken_at) FROM snapshots s WHERE s.account_id=:account AND s.kind=:kind "
                " AND s.taken_at > :taken AND s.taken_at <= f.last_seen_at AND (s.complete=1 OR s.taken_at=f.last_seen_at)) "
                " AS seen_after "
                "FROM follows f WHERE f.account_id=:account AND f.kind=:kind AND f.started_at < :taken "
                "AND (f.ended_at IS NULL OR f.ended_at > :taken) " + in_range.replace("person_id", "f.person_id") +
                "AND NOT EXISTS (SELECT 1 FROM temp.snapshot_members m WHERE m.person_id=f.person_id) "
                "AND (f.last_seen_at < :taken OR EXISTS (SELECT 1 FROM snapshots s WHERE s.account_id=:account "
                " AND s.kind=:kind AND s.taken_at=f.started_at))",
                args,
            )
            conn.execute(
                "DELETE FROM audience_events WHERE account_id=:account AND kind=:kind AND event='lost' "
                "AND (person_id, at) IN (SELECT person_id, ended_at FROM temp.snapshot_leavers "
                "WHERE last_seen_at < :taken AND ended_at IS NOT NULL)",
                args,
            )
            # End first (one open interval per person), then add the part after this list.
            conn.execute(
                "UPDATE follows SET ended_at=:taken, "
                "last_seen_at=CASE WHEN l.last_seen_at < :taken THEN l.last_seen_at "
                "ELSE coalesce(l.seen_before, follows.started_at) END "
                "FROM temp.snapshot_leavers l WHERE follows.account_id=:account AND follows.kind=:kind "
                "AND follows.person_id=l.person_id AND follows.started_at=l.started_at",
                args,
            )
            # Came back: the part after this list is an interval of its own.
            conn.execute(
                "INSERT OR IGNORE INTO follows (account_id, kind, person_id, started_at, last_seen_at, ended_at) "
                "SELECT :account, :kind, person_id, seen_after, last_seen_at, ended_at FROM temp.snapshot_leavers "
                "WHERE last_seen_at > :taken",
                args,
            )
            new += conn.execute(
                event_cols + "SELECT :account, :kind, person_id, 'new', seen_after, :sid FROM temp.snapshot_leavers "
                "WHERE last_seen_at > :taken",
                args,
            ).rowcount
            lost += conn.execute(
                event_cols + "SELECT :account, :kind, person_id, 'lost', :taken, :sid FROM temp.snapshot_leavers",
                args,
            ).rowcount

        if first:
            # The former baseline's undated members who are not in this list were new then.
            new += conn.execute(
                event_cols + "SELECT :account, :kind, f.person_id, 'new', f.started_at, :sid FROM follows f "
                "WHERE f.account_id=:account AND f.kind=:kind " + in_range.replace("person_id", "f.person_id") +
                "AND f.started_at=(SELECT min(taken_at) FROM snapshots "
                " WHERE account_id=:account AND kind=:kind AND taken_at > :taken) "
                "AND NOT EXISTS (SELECT 1 FROM temp.snapshot_members m WHERE m.person_id=f.person_id) "
                "AND NOT EXISTS (SELECT 1 FROM audience_events e WHERE e.account_id=:account AND e.kind=:kind "
                " AND e.person_id=f.person_id AND e.event='new' AND e.at=f.started_at)",
                args,
            ).rowcount
        return new, lost
