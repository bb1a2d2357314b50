"""Browse and search the archive in a web browser, with Datasette on 127.0.0.1.

Datasette does the work: tables, faceting, full-text search, a JSON API. This module gives
it what it cannot guess — titles and descriptions of our tables, sort orders, which FTS
table goes with which table, a few canned queries — and a small plugin that shows the
archive's media (covers, avatars) as pictures instead of sha256 strings.

The CLI imports this module only inside `archiver serve`, so heavy imports are fine here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import datasette
import markupsafe
from datasette import hookimpl
from datasette.app import Datasette
from datasette.plugins import pm
from datasette.utils import tilde_encode, urlsafe_components

from archiver.archive import DB_NAME, Archive
from archiver.views.web import folder_label, web_link

log = logging.getLogger(__name__)

# Datasette binds here and nowhere else: the archive is private, never on the network.
HOST = "127.0.0.1"

# Datasette names a database after its file: archive.db -> /archive.
DATABASE = Path(DB_NAME).stem

# Our custom page templates (row-archive-posts.html) live next to this module.
TEMPLATES = Path(__file__).parent / "templates"

PLUGIN_NAME = "archiver.views.serve"

# A JSON cell longer than this is shown folded; the unfolded text is cut at RAW_SHOWN_CHARS.
RAW_FOLD_CHARS = 80
RAW_SHOWN_CHARS = 20_000

THUMBNAIL_PX = 120


# -- metadata ----------------------------------------------------------------------------

_PROVENANCE_COLUMNS = {
    "sources": 'JSON list of where this came from: "api", "export:<sha256 of the export file>"',
    "first_seen_at": "When the archive first saw it (UTC)",
    "last_seen_at": "When the archive last saw it (UTC)",
    "raw": "JSON: the payload of each source, as received (secrets removed)",
}

_TABLES = {
    "accounts": {
        "title": "Accounts",
        "description": "Your own accounts, one row each, with their current profile and counts.",
        "label_column": "username",
        "columns": {
            "account_id": '"<platform>:<name in the config>"',
            "native_id": "The platform's id for the account",
            "avatar_sha256": "The profile picture, in the media table",
            "followers": "Follower count when last synced",
            **_PROVENANCE_COLUMNS,
        },
    },
    "profile_versions": {
        "title": "Profile versions",
        "description": "Earlier versions of each account's profile, kept when it changed.",
        "sort_desc": "replaced_at",
        "columns": {"replaced_at": "When this version stopped being the current one (UTC)"},
    },
    "account_metrics": {
        "title": "Account metrics",
        "description": "Follower, following, like and post counts of each account over time.",
        "sort_desc": "observed_at",
    },
    "posts": {
        "title": "Posts",
        "description": "Everything you posted: videos, photos, text. Search the title and text.",
        "sort_desc": "created_at",
        "label_column": "title",
        "fts_table": "posts_fts",
        "fts_pk": "rowid",
        "facets": ["account_id", "kind"],
        "columns": {
            "post_id": 'The platform\'s id, or "provisional:<created_at>" until an API names it',
            "account_id": "The account that posted it (accounts.account_id)",
            "kind": "video, photo, image, carousel, reel or text",
            "created_at": "When it was posted (UTC)",
            "duration": "Seconds, for videos",
            "view_count": "Latest count; the history is in post_metrics",
            "deleted_at": "When it went missing from a complete listing: deleted or hidden",
            "listed_in": "The last full listing that returned it",
            "link": "The page outside the platform it points to (a pinned or shared link)",
            **_PROVENANCE_COLUMNS,
        },
    },
    "post_versions": {
        "title": "Post versions",
        "description": "Earlier titles, texts, visibilities and links of posts, kept when they changed.",
        "sort_desc": "replaced_at",
    },
    "post_metrics": {
        "title": "Post metrics",
        "description": "Views, likes, comments and shares of each post, each time they were read.",
        "sort_desc": "observed_at",
    },
    "media": {
        "title": "Media files",
        "description": "Every downloaded file, stored once under media/ by its SHA-256.",
        "columns": {
            "sha256": "SHA-256 of the file's bytes, its name in the archive",
            "path": "Where it is, relative to the archive's media/ folder",
            "size": "Bytes",
            "verified_at": "When `archiver verify` last re-hashed it",
        },
    },
    "post_media": {
        "title": "Post media",
        "description": "Which files belong to which post: cover, video, images.",
        "columns": {
            "role": "cover, video, image or thumbnail",
            "sha256": "The file, in the media table; empty while not downloaded",
            "source_url": "Where it was downloaded from, without the signed query string",
            "status": "ok, or failed (see error)",
            "description": "The alt text written for the file",
            "meta": "JSON: what the platform says of the file (size, duration, focus …)",
        },
    },
    "interactions": {
        "title": "Likes and bookmarks",
        "description": "Other people's posts you liked or bookmarked.",
        "sort_desc": "created_at",
        "facets": ["kind", "account_id"],
        "columns": {
            "kind": "like | bookmark",
            "target": "The post, as the platform names it (a URI or URL)",
            **_PROVENANCE_COLUMNS,
        },
    },
    "collections": {
        "title": "Boards and sections",
        "description": "Named groups of your posts (boards and their sections), with their current "
                       "title, counts and cover.",
        "label_column": "title",
        "sort": "title",
        "facets": ["account_id", "kind", "visibility"],
        "columns": {
            "collection_id": "The platform's id of the board or section",
            "kind": "board | section",
            "parent_id": "A section's board (collections.collection_id)",
            "cover_sha256": "The cover picture, in the media table",
            "cover_source": "Where the cover was downloaded from, without the signed query string",
            **_PROVENANCE_COLUMNS,
        },
    },
    "collection_versions": {
        "title": "Board versions",
        "description": "Earlier titles, descriptions, visibilities and covers of boards and sections, kept "
                       "when they changed.",
        "sort_desc": "replaced_at",
    },
    "collection_posts": {
        "title": "Posts in boards",
        "description": "Which post was in which board or section, and when it was seen there; a post moved "
                       "to another board keeps its old row (last seen then).",
        "sort_desc": "last_seen_at",
        "facets": ["collection_id"],
        "columns": {
            "post_id": "The post (posts.post_id)",
            "sources": 'JSON list of the sources that said so: "api", "export:<sha256>"',
            "last_seen_at": "When the archive last saw the post in it (UTC)",
        },
    },
    "comments": {
        "title": "Comments",
        "description": "Comments on your posts and comments you wrote. Search their text.",
        "sort_desc": "created_at",
        "label_column": "text",
        "fts_table": "comments_fts",
        "fts_pk": "rowid",
        "facets": ["by_owner"],
        "columns": {
            "comment_id": 'The platform\'s id, or "own:<created_at>:<hash of text>"',
            "post_id": "The post it is on (posts.post_id)",
            "parent_id": "The comment it answers, if any",
            "author_id": "Who wrote it (people.person_id)",
            "by_owner": "1 if the account owner wrote it",
            **_PROVENANCE_COLUMNS,
        },
    },
    "comment_versions": {
        "title": "Comment versions",
        "description": "Earlier texts of comments, kept when they changed.",
        "sort_desc": "replaced_at",
    },
    "people": {
        "title": "People",
        "description": "Everyone the archive met: followers, people you follow, commenters.",
        "label_column": "handle",
        "fts_table": "people_fts",
        "fts_pk": "rowid",
        "facets": ["platform"],
        "columns": {
            "person_id": "The platform's id, or the handle where only that is known",
            "avatar_url": "Their picture on the platform: shown when the archive stored the file, "
                          "else a link (opening it asks the platform for it)",
            **_PROVENANCE_COLUMNS,
        },
    },
    "person_links": {
        "title": "Linked identities",
        "description": "The same person on several platforms: links archiver suggested (with why) "
                       "and those you confirmed or rejected with `archiver audience link / unlink`.",
        "sort_desc": "updated_at",
        "facets": ["status", "reason"],
        "columns": {
            "confidence": "0..1: how sure the suggestion is; a link you made is 1",
            "reason": "Why the two look like one person: same handle, a profile link, name and picture",
            "status": "suggested | confirmed | rejected",
        },
    },
    "follows": {
        "title": "Follows",
        "description": "Who followed whom, from when until when (open while ended_at is empty).",
        "sort_desc": "started_at",
        "facets": ["kind", "account_id"],
        "columns": {
            "kind": "followers: they follow you; following: you follow them",
            "started_at": "The platform's date, else the first snapshot that had them",
            "ended_at": "The first snapshot that no longer had them",
        },
    },
    "audience_events": {
        "title": "Audience events",
        "description": "New and lost followers (and followings), found by comparing snapshots.",
        "sort_desc": "at",
        "facets": ["event", "kind", "account_id"],
    },
    "snapshots": {
        "title": "Snapshots",
        "description": "Each time a follower or following list was read, and what changed.",
        "sort_desc": "taken_at",
        "columns": {"complete": "1 if the whole list was read; only complete ones can find losses"},
    },
    "runs": {
        "title": "Runs",
        "description": "Every sync and import: when, how it ended, what it added, what failed.",
        "sort_desc": "started_at",
        "facets": ["status"],
        "columns": {
            "kind": "export, import or portability",
            "status": "running, ok, failed or interrupted",
            "counts": "JSON: what it added or changed",
            "errors": "JSON list of {item, error}",
        },
    },
    "sync_state": {
        "title": "Sync state",
        "description": "Where each account's next sync resumes, per stream.",
    },
    "staged_lists": {
        "title": "Lists being read",
        "description": "A follower or following list read a page (or a chunk) at a time, with where the "
                       "reading goes on; once whole it is applied as a snapshot a chunk at a time.",
    },
    "staged_members": {
        "title": "Members of lists being read",
        "description": "The people of a follower or following list still being read, in the platform's order.",
    },
    "export_media": {
        "title": "Files inside imported exports",
        "description": "Which stored file each file inside an imported export became, so importing the same "
                       "export again copies no media.",
    },
    "listings": {
        "title": "Full listings",
        "description": "Each walk over everything a platform lists: when it finished, how many items it "
                       "listed, how many could not be archived, and what it marked deleted (or why not).",
        "sort_desc": "started_at",
    },
    "listed_ids": {
        "title": "Listed ids",
        "description": "What the newest full listing of each stream was given by the platform, kept apart "
                       "from what was written: a listed item is never marked deleted.",
    },
    "listing_scope": {
        "title": "What comment listings covered",
        "description": "The posts whose comments a full listing read whole, and how many levels of replies: "
                       "only comments within that scope can be marked deleted.",
    },
    "unmapped_items": {
        "title": "Items not archived",
        "description": "Items a platform listed that could not be archived, with why and their raw payload; "
                       "a row goes once the item is archived.",
        "sort_desc": "last_seen_at",
    },
    "imports": {
        "title": "Imports",
        "description": "Export files already imported, by their SHA-256, so each is read once; the same "
                       "export in another wrapper (the zip, then its unzipped folder) too, by its fingerprint.",
        "sort_desc": "imported_at",
        "columns": {
            "fingerprint": "What the export holds, whatever wraps it: sizes and CRC-32s of its files",
        },
    },
    "alerts": {
        "title": "Alerts",
        "description": "When an account was in danger (failing, gone, unreachable) or its manual export "
                       "grew old, what was safe then, and when it was resolved.",
        "sort_desc": "opened_at",
        "facets": ["kind", "state", "account_id"],
        "columns": {
            "kind": "failing | gone | unreachable | export_old",
            "state": "open | resolved",
            "details": "JSON: the run and failure kind behind it, the steps to take, how it was resolved",
            "notified_state": "What the notifiers last delivered: open, open+1d (still gone a day later), resolved",
        },
    },
    "_sqlite_migrations": {"hidden": True},
    # Subscribers and customers (addresses, names, consent) are never shown here: not listed,
    # and every column reads as empty, even through SQL (owned_contacts_unreadable).
    "owned_contacts": {
        "title": "Owned contacts (never shown)",
        "description": "Your newsletter's subscribers and your shop's customers: private, never shown here. "
                       "`archiver audience reach` counts them.",
        "hidden": True,
    },
    "owned_contact_versions": {
        "title": "Earlier statuses of owned contacts (never shown)",
        "description": "Earlier status, consent and dates of subscribers and customers: private, never shown here.",
        "hidden": True,
    },
}

# Tables whose values no page, JSON answer or SQL query of `archiver serve` may read.
PRIVATE_TABLES = frozenset({"owned_contacts", "owned_contact_versions"})


def owned_contacts_unreadable(connection) -> None:
    """Make every column of ``PRIVATE_TABLES`` read as NULL on this connection (an SQLite
    authorizer answering SQLITE_IGNORE): a table page, a row page, a canned or typed query
    all see empty values; counting rows still works."""
    import sqlite3

    def authorize(action, table, column, database, trigger):
        if action == sqlite3.SQLITE_READ and table in PRIVATE_TABLES:
            return sqlite3.SQLITE_IGNORE
        return sqlite3.SQLITE_OK

    connection.set_authorizer(authorize)


def _audience_events_sql(event: str, last_days: int | None = None) -> str:
    # people is keyed by platform; account_id is "<platform>:<name>", so the platform is
    # its part before the first ':' (this works even before the accounts row exists).
    # Times are stored as "YYYY-MM-DDTHH:MM:SSZ"; the cut-off is written the same way so
    # the text comparison is a time comparison.
    since = (f"\n  and e.at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-{int(last_days)} days')"
             if last_days else "")
    return f"""
select e.at, e.account_id, p.avatar_url, p.handle, p.display_name, p.url,
       substr(e.account_id, 1, instr(e.account_id, ':') - 1) as platform, e.person_id
from audience_events e
left join people p
  on p.platform = substr(e.account_id, 1, instr(e.account_id, ':') - 1)
 and p.person_id = e.person_id
where e.kind = 'followers' and e.event = '{event}'{since}
order by e.at desc
limit 500
""".strip()


def _top_fans_sql() -> str:
    """Top fans as SQL, with archiver.views.audience's weighting (engagement_score_sql) and its
    rule for linked identities: identities joined by confirmed links count as one person,
    named by the smallest "platform:person_id" of the group (person_key)."""
    from archiver.views.audience import engagement_score_sql

    return f"""
-- Confirmed links, both ways; reach = every identity each linked identity is joined to
-- (itself included), so a chain a-b-c is one group.
with recursive
edges(a, b) as (
  select a_platform || ':' || a_person, b_platform || ':' || b_person
    from person_links where status = 'confirmed'
  union
  select b_platform || ':' || b_person, a_platform || ':' || a_person
    from person_links where status = 'confirmed'
),
reach(node, other) as (
  select a, a from edges
  union
  select r.node, e.b from reach r join edges e on e.a = r.other
),
key_of(node, person_key) as (select node, min(other) from reach group by node),
-- Per identity: comments and replies by others on your posts, newest, score.
per_identity as (
  select c.platform || ':' || c.author_id as ident, count(*) as comments,
         max(c.created_at) as last_interaction, {engagement_score_sql('c.created_at', "'now'")} as score
  from comments c
  where c.by_owner = 0 and c.author_id is not null
  group by c.platform, c.author_id
),
fans as (
  select coalesce(k.person_key, i.ident) as person_key, sum(i.comments) as comments,
         max(i.last_interaction) as last_interaction, round(sum(i.score), 6) as score,
         group_concat(i.ident, ' ') as identities
  from per_identity i left join key_of k on k.node = i.ident
  group by 1
  order by score desc, comments desc, person_key
  limit 100
)
select pe.avatar_url, pe.handle, pe.display_name, f.score, f.comments, f.last_interaction,
       f.identities, f.person_key, pe.url,
       substr(f.person_key, 1, instr(f.person_key, ':') - 1) as platform,
       substr(f.person_key, instr(f.person_key, ':') + 1) as person_id
from fans f
left join people pe
  on pe.platform = substr(f.person_key, 1, instr(f.person_key, ':') - 1)
 and pe.person_id = substr(f.person_key, instr(f.person_key, ':') + 1)
order by f.score desc, f.comments desc, f.person_key
""".strip()


def canned_queries() -> dict:
    """The canned queries of the archive database.

    Kept apart from the rest of the metadata because Datasette 1.0 reads canned queries
    from datasette.yml instead of metadata.
    """
    queries: dict[str, dict[str, Any]] = {
        "most_viewed_videos": {
            "title": "Most viewed videos",
            "description": "Videos by views, with their newest counts and cover image.",
            "sql": """
-- The newest metrics reading of each post; posts never read fall back to their own counts.
with latest as (
  select platform, post_id, max(observed_at) as observed_at
  from post_metrics
  group by platform, post_id
)
select
  (select media.path
     from post_media pm join media on media.sha256 = pm.sha256
    where pm.platform = p.platform and pm.post_id = p.post_id
      and pm.role = 'cover' and pm.status = 'ok'
    order by pm.position limit 1) as cover,
  p.platform, p.post_id, p.created_at,
  coalesce(p.title, substr(p.text, 1, 100)) as title,
  coalesce(m.view_count, p.view_count) as views,
  coalesce(m.like_count, p.like_count) as likes,
  coalesce(m.comment_count, p.comment_count) as comments,
  coalesce(m.share_count, p.share_count) as shares,
  latest.observed_at as counted_at,
  p.deleted_at, p.url
from posts p
left join latest on latest.platform = p.platform and latest.post_id = p.post_id
left join post_metrics m
  on m.platform = latest.platform and m.post_id = latest.post_id
 and m.observed_at = latest.observed_at
where p.kind = 'video'
order by views desc nulls last, p.created_at desc
limit 100
""".strip(),
        },
        "recent_followers": {
            "title": "Recent followers",
            "description": "People who started following you, newest first.",
            "sql": _audience_events_sql("new"),
        },
        "lost_followers": {
            "title": "Lost followers",
            "description": "People who stopped following you, newest first.",
            "sql": _audience_events_sql("lost"),
        },
        "top_fans": {
            "title": "Top fans",
            "description": "The people who comment most on your posts, recent comments weighing more "
                           "(the weighting of `archiver audience top`); linked identities count as one.",
            "sql": _top_fans_sql(),
        },
        "new_followers_this_week": {
            "title": "New followers this week",
            "description": "People who started following you in the last 7 days.",
            "sql": _audience_events_sql("new", last_days=7),
        },
        "lost_followers_this_week": {
            "title": "Lost followers this week",
            "description": "People who stopped following you in the last 7 days (found by comparing "
                           "complete follower lists).",
            "sql": _audience_events_sql("lost", last_days=7),
        },
        "people_on_several_platforms": {
            "title": "People on several platforms",
            "description": "Identities you confirmed as one person (`archiver audience link A B`).",
            "sql": """
select pa.avatar_url as a_avatar_url, l.a_platform, l.a_person, pa.handle as a_handle,
       pa.display_name as a_display_name, pa.url as a_url,
       pb.avatar_url as b_avatar_url, l.b_platform, l.b_person, pb.handle as b_handle,
       pb.display_name as b_display_name, pb.url as b_url,
       l.reason, l.confidence, l.updated_at
from person_links l
left join people pa on pa.platform = l.a_platform and pa.person_id = l.a_person
left join people pb on pb.platform = l.b_platform and pb.person_id = l.b_person
where l.status = 'confirmed'
order by l.updated_at desc, l.a_platform, l.a_person
limit 1000
""".strip(),
        },
        "followers_over_time": {
            "title": "Followers over time",
            "description": "Each account's follower count as the platform reported it (account_metrics), "
                           "and the size of each complete follower list (snapshots).",
            "sql": """
select account_id, observed_at as at, followers, 'count' as source
from account_metrics where followers is not null
union all
select account_id, taken_at, member_count, 'list' from snapshots
where kind = 'followers' and complete = 1
order by account_id, at desc
limit 5000
""".strip(),
        },
        "recent_runs": {
            "title": "Recent runs",
            "description": "The latest syncs and imports and how they ended.",
            "sql": """
select run_id, account_id, kind, mode, status, started_at, ended_at, counts, errors, message
from runs
order by started_at desc
limit 100
""".strip(),
        },
    }
    for query in queries.values():
        query["hide_sql"] = True  # people come for the answer; the SQL is one click away
    return queries


def build_metadata(archive: Archive) -> dict:
    """Datasette metadata for the archive: titles, descriptions, sorting, search, queries."""
    return {
        "title": "archiver",
        "description": f"Your archive in {folder_label(archive.folder)}",
        "databases": {
            DATABASE: {
                "title": "Archive",
                "tables": _TABLES,
                "queries": canned_queries(),
            }
        },
    }


# -- the plugin: media as pictures -------------------------------------------------------


# A Datasette made here remembers which of its databases are archives (the plugin leaves the
# others alone), each with the URL path its media folder is mounted at.
# Datasette offers an immutable database (an archive checked out of object storage) as a file to
# download: the whole file, owned contacts' addresses included, past the authorizer that hides them.
_SETTINGS = {"allow_download": False}
_ARCHIVES_ATTRIBUTE = "archiver_archives"


def _archive_media_paths(datasette) -> dict[str, str]:
    return getattr(datasette, _ARCHIVES_ATTRIBUTE, {})


def _is_archive(datasette, database: str) -> bool:
    return database in _archive_media_paths(datasette)


def _media_url(datasette, database: str, path: str) -> str:
    return datasette.urls.path(_archive_media_paths(datasette)[database] + quote(path))


async def _media_row(datasette, database: str, column: str, value: str):
    """The media row whose `column` (sha256 or path) is `value`, or None."""
    rows = await datasette.get_database(database).execute(
        f"select sha256, path, mime, size from media where {column} = ?", [value]
    )
    return rows.first()


def _media_html(datasette, database: str, media, alt: str) -> markupsafe.Markup:
    """A thumbnail for an image, a link for anything else (videos are too heavy for a table)."""
    url = _media_url(datasette, database, media["path"])
    if (media["mime"] or "").startswith("image/"):
        return markupsafe.Markup(
            '<a href="{url}"><img src="{url}" alt="{alt}" title="{alt}" loading="lazy" '
            'style="max-width:{px}px;max-height:{px}px"></a>'
        ).format(url=url, alt=alt, px=THUMBNAIL_PX)
    kind = (media["mime"] or "file").split("/")[0]
    return markupsafe.Markup('<a href="{url}">{kind} ({size:,} bytes)</a>').format(
        url=url, kind=kind, size=media["size"] or 0
    )


def _raw_html(value: str) -> markupsafe.Markup | None:
    """A long JSON payload folded into one line, unfolding (cut) on click."""
    if len(value) <= RAW_FOLD_CHARS:
        return None
    try:
        pretty = json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except ValueError:
        pretty = value
    if len(pretty) > RAW_SHOWN_CHARS:
        pretty = pretty[:RAW_SHOWN_CHARS] + f"\n… ({len(pretty) - RAW_SHOWN_CHARS:,} more characters)"
    return markupsafe.Markup(
        '<details><summary>{summary}…</summary><pre style="white-space:pre-wrap">{pretty}</pre></details>'
    ).format(summary=value[:RAW_FOLD_CHARS], pretty=pretty)


def _post_link(datasette, database: str, row, post_id: str) -> markupsafe.Markup | None:
    """A post_id cell (in comments, post_media, queries...) as a link to the post's page."""
    try:
        platform = row["platform"]
    except (IndexError, KeyError):  # sqlite3.Row raises IndexError for a missing column
        return None
    if not platform:
        return None
    url = datasette.urls.row(database, "posts", f"{tilde_encode(platform)},{tilde_encode(post_id)}")
    return markupsafe.Markup('<a href="{}">{}</a>').format(url, post_id)


# Cells holding a sha256 of the media table, as (table, column). (In the media table itself
# sha256 is the primary key, which Datasette renders as a link; its path cell shows the file.)
_SHA256_CELLS = {
    ("media", "sha256"),
    ("post_media", "sha256"),
    ("accounts", "avatar_sha256"),
    ("accounts", "banner_sha256"),
    ("profile_versions", "avatar_sha256"),
    ("profile_versions", "banner_sha256"),
    ("people", "avatar_sha256"),
    ("collections", "cover_sha256"),
    ("collection_versions", "cover_sha256"),
}
# Columns of canned queries (table is None there) holding a path under media/.
_PATH_QUERY_COLUMNS = {"cover", "path"}
# Columns holding a person's avatar_url (in people and in canned queries), with the
# columns of the same row that name the person: (platform column, person_id column).
_AVATAR_COLUMNS = {
    "avatar_url": ("platform", "person_id"),
    "a_avatar_url": ("a_platform", "a_person"),
    "b_avatar_url": ("b_platform", "b_person"),
}


async def _stored_avatar(datasette, database: str, platform: str, person_id: str):
    """The media row of a person's stored avatar (commenters' pictures are downloaded;
    followers' are not), or None."""
    db = datasette.get_database(database)
    rows = await db.execute(
        "select media.sha256, media.path, media.mime, media.size from people "
        "join media on media.sha256 = people.avatar_sha256 "
        "where people.platform = ? and people.person_id = ?",
        [platform, person_id],
    )
    return rows.first()


def _remote_picture_link(url: str) -> markupsafe.Markup | None:
    """A remote avatar as a link, never as an <img>.

    An <img> would make the browser fetch the platform's CDN every time a page of the
    archive is shown: it tells the platform who looks at whom and when, it fails offline
    (the point of an archive is to work when the platform is gone), and signed CDN links
    expire, so most would show broken. A link fetches only when the user clicks it.
    """
    if web_link(url) is None:
        return None
    return markupsafe.Markup(
        '<a href="{url}" rel="noreferrer noopener" title="{url}">picture on the platform ↗</a>'
    ).format(url=url)


class ArchivePlugin:
    """Datasette hooks for the archive database (other databases are left alone).

    Registered as the class itself: Datasette wants every plugin to have a __name__.
    """

    @staticmethod
    @hookimpl
    def render_cell(row, value, column, table, database, datasette):
        if not _is_archive(datasette, database) or not isinstance(value, str) or not value:
            return None
        if (table, column) in _SHA256_CELLS:
            return ArchivePlugin._media_cell(datasette, database, "sha256", value, alt=column)
        if (table is None and column in _PATH_QUERY_COLUMNS) or (table, column) == ("media", "path"):
            return ArchivePlugin._media_cell(datasette, database, "path", value, alt=column)
        if column in _AVATAR_COLUMNS and table in (None, "people"):
            return ArchivePlugin._avatar_cell(datasette, database, row, column, value)
        if column == "post_id" and table != "posts":
            return _post_link(datasette, database, row, value)
        if column == "raw":
            return _raw_html(value)
        return None

    @staticmethod
    async def _avatar_cell(datasette, database, row, column, value):
        """A stored avatar as a picture; a remote one as a link (see _remote_picture_link)."""
        platform_column, person_column = _AVATAR_COLUMNS[column]
        try:
            platform, person_id = row[platform_column], row[person_column]
        except (IndexError, KeyError):  # a query without the person's columns
            platform = person_id = None
        if platform and person_id:
            media = await _stored_avatar(datasette, database, platform, person_id)
            if media is not None:
                return _media_html(datasette, database, media, alt="avatar")
        return _remote_picture_link(value)

    @staticmethod
    async def _media_cell(datasette, database, key, value, alt):
        media = await _media_row(datasette, database, key, value)
        if media is None:
            return None  # not downloaded (yet): show the plain value
        return _media_html(datasette, database, media, alt)

    @staticmethod
    @hookimpl
    def extra_template_vars(view_name, database, table, request, datasette):
        """On a post's row page, its downloaded covers, images and videos, and its comments
        with their authors (row-archive-posts.html)."""
        if view_name != "row" or not _is_archive(datasette, database) or table != "posts":
            return {}

        async def post_media():
            pk_values = urlsafe_components(request.url_vars["pks"])
            if len(pk_values) != 2:
                return {"post_media": []}
            db = datasette.get_database(database)
            rows = await db.execute(
                """
                select pm.role, pm.position, pm.description, media.path, media.mime
                from post_media pm join media on media.sha256 = pm.sha256
                where pm.platform = ? and pm.post_id = ? and pm.status = 'ok'
                order by case pm.role when 'cover' then 0 when 'video' then 1 else 2 end, pm.position
                """,
                pk_values,
            )
            # The post's comments, threads in order (a reply right after what it answers,
            # one level deep as the platforms show them), each with its author.
            comments = await db.execute(
                """
                select c.comment_id, c.parent_id, c.text, c.created_at, c.by_owner, c.deleted_at,
                       p.handle, p.display_name, p.url as author_url,
                       coalesce(parent.created_at, c.created_at) as thread_at,
                       coalesce(c.parent_id, c.comment_id) as thread_id
                from comments c
                left join people p on p.platform = c.platform and p.person_id = c.author_id
                left join comments parent on parent.platform = c.platform and parent.comment_id = c.parent_id
                where c.platform = ? and c.post_id = ?
                order by thread_at, thread_id, c.parent_id is not null, c.created_at
                """,
                pk_values,
            )
            return {
                "post_media": [
                    {
                        "role": row["role"],
                        "position": row["position"],
                        "description": row["description"],
                        "url": _media_url(datasette, database, row["path"]),
                        "kind": (row["mime"] or "").split("/")[0],
                    }
                    for row in rows
                ],
                # A commenter's profile URL is theirs to write: linked only if http(s).
                "post_comments": [{**dict(row), "author_url": web_link(row["author_url"])}
                                  for row in comments],
            }

        return post_media

    @staticmethod
    @hookimpl
    def prepare_connection(conn, database, datasette):
        if _is_archive(datasette, database):
            owned_contacts_unreadable(conn)

    @staticmethod
    @hookimpl
    def asgi_wrapper(datasette):
        return guard_browser_requests


# -- safe while the person browses the web -------------------------------------------------
#
# The server listens on loopback only, but the person's browser visits other sites meanwhile,
# and those sites' pages can make it send requests here. guard_browser_requests wraps the
# whole Datasette application (pages, JSON, static files and media alike).

# A page of another site can point a name it owns at 127.0.0.1 (DNS rebinding) and then read
# our answers as its own origin: its requests carry its own name in Host, so only ours pass.
ALLOWED_HOST_NAMES = frozenset({HOST, "localhost"})

# Datasette's own inline scripts (the only ones its pages hold): allowed by their hashes, so
# the policy needs no 'unsafe-inline' — which also keeps any `javascript:` link inert.
_DATASETTE_INLINE_SCRIPT_TEMPLATES = ("_close_open_menus.html", "_codemirror_foot.html")
_DATASETTE_INLINE_SCRIPTS = ("DATASETTE_ALLOW_FACET = true;", "DATASETTE_ALLOW_FACET = false;")

# Paths nobody browsing the archive needs that would show the archive's absolute path.
_HIDDEN_PATHS = frozenset({"/-/databases", "/-/databases.json"})

# The archive is read-only in the browser: nothing here takes a POST (a form of another site
# could send one), and Datasette answers a POST it does not expect with a 500 and a traceback.
_METHODS = ("GET", "HEAD")


def _inline_script_hashes() -> list[str]:
    templates = Path(datasette.__file__).parent / "templates"
    scripts = list(_DATASETTE_INLINE_SCRIPTS)
    for name in _DATASETTE_INLINE_SCRIPT_TEMPLATES:
        scripts += re.findall(r"<script>(.*?)</script>", (templates / name).read_text(), re.DOTALL)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in scripts
    ]


def content_security_policy() -> str:
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' " + " ".join(_inline_script_hashes()),
        "style-src 'self' 'unsafe-inline'",   # Datasette's and our style attributes
        "img-src 'self' data:",               # data: for Datasette's icons in its CSS
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",             # no other site may frame the archive (clickjacking)
    ])


def _security_headers() -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", content_security_policy().encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),           # frame-ancestors for older browsers
        (b"cross-origin-resource-policy", b"same-origin"),  # no other site embeds our media
        (b"referrer-policy", b"no-referrer"),
    ]


def host_is_allowed(hosts: list[str]) -> bool:
    """Whether a request's Host headers name this server: one header, 127.0.0.1 or localhost,
    with any port or none."""
    if len(hosts) != 1:
        return False
    name, _, port = hosts[0].lower().partition(":")
    return name in ALLOWED_HOST_NAMES and re.fullmatch(r"[0-9]{0,5}", port) is not None


def guard_browser_requests(app):
    """ASGI middleware: refuse foreign Host headers, methods that write and hidden paths;
    send the security headers on every answer."""
    extra_headers = _security_headers()
    names = {name for name, _ in extra_headers}

    async def guarded(scope, receive, send):
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": headers + extra_headers}
            await send(message)

        hosts = [value.decode("latin-1") for name, value in scope.get("headers") or [] if name == b"host"]
        if not host_is_allowed(hosts):
            await _refuse(send_with_headers, 400, "This archive answers only to http://127.0.0.1 "
                          "and http://localhost (another name here is a page of another site).")
        elif scope["method"] not in _METHODS:
            await _refuse(send_with_headers, 405, "The archive is read-only here: only GET.",
                          [(b"allow", ", ".join(_METHODS).encode())])
        elif scope["path"] in _HIDDEN_PATHS:
            await _refuse(send_with_headers, 404, "Not found.")
        else:
            await app(scope, receive, send_with_headers)

    return guarded


async def _refuse(send, status: int, message: str, headers: list | None = None) -> None:
    body = message.encode() + b"\n"
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def register_plugin() -> None:
    """Register the plugin with Datasette, once per process."""
    if pm.get_plugin(PLUGIN_NAME) is None:
        pm.register(ArchivePlugin, name=PLUGIN_NAME)


# -- the server --------------------------------------------------------------------------


def make_datasette(archive: Archive) -> Datasette:
    """A Datasette over the archive: live (sees writes made while it serves), media at /media/."""
    _ = archive.db  # creates the folders and brings the schema up to date
    register_plugin()
    served = Datasette(
        files=[str(archive.db_path)],  # not immutable: syncs keep writing while we serve
        metadata=build_metadata(archive),
        static_mounts=[("media", str(archive.media_root))],
        template_dir=str(TEMPLATES),
        settings=_SETTINGS,
    )
    setattr(served, _ARCHIVES_ATTRIBUTE, {DATABASE: "/media/"})
    return served


def serve_archive(archive: Archive, *, port: int = 8001, open_browser: bool = False) -> None:
    """Serve the archive on http://127.0.0.1:<port>/ until Ctrl-C."""
    import uvicorn

    datasette = make_datasette(archive)
    url = f"http://{HOST}:{port}/{DATABASE}"
    print(f"Serving {archive.folder} at {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        webbrowser.open(url)  # the browser takes longer to start than the server
    uvicorn.run(datasette.app(), host=HOST, port=port, log_level="warning", lifespan="on", workers=1)


# -- several archives in one Datasette (`archiver serve --tenant T`) ------------------------


@dataclass(frozen=True)
class ServedArchive:
    """One archive among several served together: a database of its own, named in URLs
    (``/<name>/posts``), its media under ``/media/<name>/``.

    ``fixed``: the file never changes while served (a downloaded generation of the fleet's
    object storage): opened immutable. Otherwise it is opened read-only and a worker may go on
    writing it (WAL). ``fetch_media(relative)``: lays a media file of this archive that is not
    in ``media_root`` yet there (from object storage), or raises; None: what is there is all."""

    name: str
    title: str
    db_path: Path
    media_root: Path
    fixed: bool = False
    fetch_media: Callable[[str], None] | None = None


# A media file's name in an archive's media folder (archive/media.py): aa/bb/<sha256>.<ext>.
_MEDIA_RELATIVE = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}(\.[A-Za-z0-9]{1,8})?")


def is_media_name(relative: str) -> bool:
    return _MEDIA_RELATIVE.fullmatch(relative) is not None


def archive_names_media(db_path: Path, relative: str) -> bool:
    """Whether the archive's media table names this file: only those are fetched for it (the
    store's media are shared by every account of every tenant, by sha256)."""
    import sqlite3

    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return connection.execute("select 1 from media where path = ?", [relative]).fetchone() is not None
    finally:
        connection.close()


def _write_templates(folder: Path, names: list[str]) -> None:
    """Datasette picks a row page's template by database name (row-<database>-posts.html):
    each archive's name gets one that is the archive's post page."""
    from datasette.utils import to_css_class

    for template in TEMPLATES.iterdir():
        (folder / template.name).write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    for name in names:
        page = folder / f"row-{to_css_class(name)}-posts.html"
        if not page.exists():
            page.write_text('{% extends "row-archive-posts.html" %}\n', encoding="utf-8")


def make_multi_datasette(archives: list[ServedArchive], *, title: str, description: str,
                         template_dir: Path) -> Datasette:
    """A Datasette over several archives, one database each, and nothing else: no in-memory
    database, no file the list does not name. Nothing is created or migrated: each is read
    as it is. ``template_dir``: an empty folder for the page templates (kept while served)."""
    from datasette.database import Database

    names = [archive.name for archive in archives]
    if len(set(names)) != len(names):
        raise ValueError(f"two archives have the same name: {sorted(names)}")
    register_plugin()
    _write_templates(template_dir, names)
    queries = canned_queries()
    served = Datasette(
        files=[],
        metadata={
            "title": title,
            "description": description,
            "databases": {a.name: {"title": a.title, "tables": _TABLES, "queries": queries} for a in archives},
        },
        static_mounts=[(f"media/{re.escape(a.name)}", str(a.media_root)) for a in archives],
        template_dir=str(template_dir),
        settings=_SETTINGS,
    )
    # Datasette adds an in-memory database when given no file: not ours to show.
    for name in [name for name in served.databases if name != "_internal"]:
        served.remove_database(name)
    setattr(served, _ARCHIVES_ATTRIBUTE, {a.name: f"/media/{quote(a.name)}/" for a in archives})
    for archive in archives:
        served.add_database(Database(served, path=str(archive.db_path), is_mutable=not archive.fixed),
                            name=archive.name)
    return served


def fetch_missing_media(app, archives: list[ServedArchive]):
    """ASGI middleware: a media file of an archive kept in object storage is fetched on its
    first request (into the archive's media_root, where the static mount serves it). Only a
    GET from this machine's browser (the Host rule of guard_browser_requests, which answers
    the others), only a well-formed media name the archive's own media table holds.
    A path under /media/ of no archive served is not found (Datasette would take "media" for
    a database name)."""
    import asyncio

    mounts = tuple(f"/media/{quote(a.name)}/" for a in archives)

    async def refuse(scope, receive, send):
        await _refuse(send, 404, "Not found.")

    not_found = guard_browser_requests(refuse)   # the same Host rule and headers as every answer
    fetchers = {f"/media/{quote(a.name)}/": a for a in archives if a.fetch_media is not None}

    async def fetching(scope, receive, send):
        if scope["type"] == "http" and scope.get("method") in _METHODS:
            hosts = [v.decode("latin-1") for k, v in scope.get("headers") or [] if k == b"host"]
            path = scope.get("path", "")
            if (path == "/media" or path.startswith("/media/")) and not path.startswith(mounts):
                await not_found(scope, receive, send)
                return
            for prefix, archive in fetchers.items():
                relative = path[len(prefix):] if path.startswith(prefix) else None
                if (relative is not None and host_is_allowed(hosts) and is_media_name(relative)
                        and not (archive.media_root / relative).exists()):
                    try:
                        if await asyncio.to_thread(archive_names_media, archive.db_path, relative):
                            await asyncio.to_thread(archive.fetch_media, relative)  # type: ignore[misc]
                    except Exception as error:  # noqa: BLE001 - the file stays missing: a 404, said in the log
                        log.warning("%s: could not fetch media %s: %s", archive.name, relative, error)
        await app(scope, receive, send)

    return fetching


class ChangingArchives:
    """An ASGI app over several archives whose list may change while it serves (``update``):
    a new Datasette is built over the new list and swapped in whole, so each request is
    answered wholly by the old one or wholly by the new one; a request under way finishes on
    the one it began with. An unchanged list changes nothing. The Datasette before the
    previous one is closed (its connections and threads) at a swap: no request is left on it."""

    def __init__(self, archives: list[ServedArchive], *, title: str, description: str, template_dir: Path):
        self.title, self.description, self.template_dir = title, description, template_dir
        self.archives: list[ServedArchive] = []
        self._app = None
        self._datasettes: list[Datasette] = []   # the current one last, the previous one before it
        self.update(archives)

    @staticmethod
    def _what(archives: list[ServedArchive]) -> list[tuple]:
        return sorted((a.name, a.title, str(a.db_path), str(a.media_root), a.fixed) for a in archives)

    def update(self, archives: list[ServedArchive]) -> bool:
        """Serve ``archives`` from now on; False when they are what is served already."""
        if self._app is not None and self._what(archives) == self._what(self.archives):
            return False
        datasette = make_multi_datasette(archives, title=self.title, description=self.description,
                                         template_dir=self.template_dir)
        app = fetch_missing_media(datasette.app(), archives)
        self._app, self.archives = app, list(archives)   # one assignment: the next request sees the new one
        self._datasettes.append(datasette)
        while len(self._datasettes) > 2:
            _close_datasette(self._datasettes.pop(0))
        return True

    async def __call__(self, scope, receive, send):
        await self._app(scope, receive, send)  # type: ignore[misc]


def _close_datasette(datasette: Datasette) -> None:
    for database in datasette.databases.values():
        database.close()
    if datasette.executor is not None:
        datasette.executor.shutdown(wait=False)


def serve_archives(archives: list[ServedArchive], *, title: str, description: str, port: int = 8001,
                   open_browser: bool = False, refresh: Callable[[], list[ServedArchive]] | None = None,
                   refresh_seconds: float = 0) -> None:
    """Serve several archives on http://127.0.0.1:<port>/ until Ctrl-C. ``refresh``: asked every
    ``refresh_seconds`` (in a thread of its own: it may download) for the archives to serve
    now; a failure is logged and the archives served stay."""
    import tempfile
    import threading

    import uvicorn

    with tempfile.TemporaryDirectory(prefix="archiver-serve-") as templates:
        served = ChangingArchives(archives, title=title, description=description, template_dir=Path(templates))
        stop = threading.Event()

        def refreshing() -> None:
            while not stop.wait(refresh_seconds):
                try:
                    if served.update(refresh()):  # type: ignore[misc]
                        log.info("now serving %d archive(s): %s", len(served.archives),
                                 ", ".join(a.title for a in served.archives) or "none")
                except Exception as error:  # noqa: BLE001 - the archives served stay; tried again later
                    log.warning("could not refresh the archives served (%s); trying again in %g s", error,
                                refresh_seconds)

        if refresh is not None and refresh_seconds > 0:
            threading.Thread(target=refreshing, name="refresh-archives", daemon=True).start()
        url = f"http://{HOST}:{port}/"
        print(f"Serving {len(archives)} archive(s) of {title} at {url} (Ctrl-C to stop)", flush=True)
        if open_browser:
            webbrowser.open(url)
        try:
            uvicorn.run(served, host=HOST, port=port, log_level="warning", lifespan="on", workers=1)
        finally:
            stop.set()
