"""Browse and search the archive in a web browser, with Datasette on 127.0.0.1.

Datasette does the work: tables, faceting, full-text search, a JSON API. This module gives
it what it cannot guess — titles and descriptions of our tables, sort orders, which FTS
table goes with which table, a few canned queries — and a small plugin that shows the
archive's media (covers, avatars) as pictures instead of sha256 strings.

The CLI imports this module only inside `archiver serve`, so heavy imports are fine here.
"""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path
from urllib.parse import quote

import markupsafe
from datasette import hookimpl
from datasette.app import Datasette
from datasette.plugins import pm
from datasette.utils import tilde_encode, urlsafe_components

from archiver.archive import DB_NAME, Archive

# Datasette binds here and nowhere else: the archive is private, never on the network.
HOST = "127.0.0.1"

# Datasette names a database after its file: archive.db -> /archive.
DATABASE = Path(DB_NAME).stem

# Our custom page templates (row-archive-posts.html) live next to this module.
TEMPLATES = Path(__file__).parent / "templates"

PLUGIN_NAME = "archiver.serve"

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
            **_PROVENANCE_COLUMNS,
        },
    },
    "post_versions": {
        "title": "Post versions",
        "description": "Earlier titles, texts and visibilities of posts, kept when they changed.",
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
        "columns": {
            "person_id": "The platform's id, or the handle where only that is known",
            **_PROVENANCE_COLUMNS,
        },
    },
    "follows": {
        "title": "Follows",
        "description": "Who followed whom, from when until when (open while ended_at is empty).",
        "sort_desc": "started_at",
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
        "facets": ["event", "kind"],
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
    "imports": {
        "title": "Imports",
        "description": "Export files already imported, by their SHA-256, so each is read once.",
        "sort_desc": "imported_at",
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
}


def _audience_events_sql(event: str) -> str:
    # people is keyed by platform; account_id is "<platform>:<name>", so the platform is
    # its part before the first ':' (this works even before the accounts row exists).
    return f"""
select e.at, e.account_id, p.handle, p.display_name, p.url, e.person_id
from audience_events e
left join people p
  on p.platform = substr(e.account_id, 1, instr(e.account_id, ':') - 1)
 and p.person_id = e.person_id
where e.kind = 'followers' and e.event = '{event}'
order by e.at desc
limit 500
""".strip()


def canned_queries() -> dict:
    """The canned queries of the archive database.

    Kept apart from the rest of the metadata because Datasette 1.0 reads canned queries
    from datasette.yml instead of metadata.
    """
    queries = {
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
        "description": f"Your archive in {archive.folder}",
        "databases": {
            DATABASE: {
                "title": "Archive",
                "tables": _TABLES,
                "queries": canned_queries(),
            }
        },
    }


# -- the plugin: media as pictures -------------------------------------------------------


def _media_url(datasette, path: str) -> str:
    return datasette.urls.path("/media/" + quote(path))


async def _media_row(datasette, database: str, column: str, value: str):
    """The media row whose `column` (sha256 or path) is `value`, or None."""
    rows = await datasette.get_database(database).execute(
        f"select sha256, path, mime, size from media where {column} = ?", [value]
    )
    return rows.first()


def _media_html(datasette, media, alt: str) -> markupsafe.Markup:
    """A thumbnail for an image, a link for anything else (videos are too heavy for a table)."""
    url = _media_url(datasette, media["path"])
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
    ("profile_versions", "avatar_sha256"),
}
# Columns of canned queries (table is None there) holding a path under media/.
_PATH_QUERY_COLUMNS = {"cover", "path"}


class ArchivePlugin:
    """Datasette hooks for the archive database (other databases are left alone).

    Registered as the class itself: Datasette wants every plugin to have a __name__.
    """

    @staticmethod
    @hookimpl
    def render_cell(row, value, column, table, database, datasette):
        if database != DATABASE or not isinstance(value, str) or not value:
            return None
        if (table, column) in _SHA256_CELLS:
            return ArchivePlugin._media_cell(datasette, database, "sha256", value, alt=column)
        if (table is None and column in _PATH_QUERY_COLUMNS) or (table, column) == ("media", "path"):
            return ArchivePlugin._media_cell(datasette, database, "path", value, alt=column)
        if column == "post_id" and table != "posts":
            return _post_link(datasette, database, row, value)
        if column == "raw":
            return _raw_html(value)
        return None

    @staticmethod
    async def _media_cell(datasette, database, key, value, alt):
        media = await _media_row(datasette, database, key, value)
        if media is None:
            return None  # not downloaded (yet): show the plain value
        return _media_html(datasette, media, alt)

    @staticmethod
    @hookimpl
    def extra_template_vars(view_name, database, table, request, datasette):
        """On a post's row page, its downloaded covers, images and videos (row-archive-posts.html)."""
        if view_name != "row" or database != DATABASE or table != "posts":
            return {}

        async def post_media():
            pk_values = urlsafe_components(request.url_vars["pks"])
            if len(pk_values) != 2:
                return {"post_media": []}
            rows = await datasette.get_database(database).execute(
                """
                select pm.role, pm.position, media.path, media.mime
                from post_media pm join media on media.sha256 = pm.sha256
                where pm.platform = ? and pm.post_id = ? and pm.status = 'ok'
                order by case pm.role when 'cover' then 0 when 'video' then 1 else 2 end, pm.position
                """,
                pk_values,
            )
            return {
                "post_media": [
                    {
                        "role": row["role"],
                        "position": row["position"],
                        "url": _media_url(datasette, row["path"]),
                        "kind": (row["mime"] or "").split("/")[0],
                    }
                    for row in rows
                ]
            }

        return post_media


def register_plugin() -> None:
    """Register the plugin with Datasette, once per process."""
    if pm.get_plugin(PLUGIN_NAME) is None:
        pm.register(ArchivePlugin, name=PLUGIN_NAME)


# -- the server --------------------------------------------------------------------------


def make_datasette(archive: Archive) -> Datasette:
    """A Datasette over the archive: live (sees writes made while it serves), media at /media/."""
    archive.db  # creates the folders and brings the schema up to date
    register_plugin()
    return Datasette(
        files=[str(archive.db_path)],  # not immutable: syncs keep writing while we serve
        metadata=build_metadata(archive),
        static_mounts=[("media", str(archive.media_root))],
        template_dir=str(TEMPLATES),
    )


def serve_archive(archive: Archive, *, port: int = 8001, open_browser: bool = False) -> None:
    """Serve the archive on http://127.0.0.1:<port>/ until Ctrl-C."""
    import uvicorn

    datasette = make_datasette(archive)
    url = f"http://{HOST}:{port}/{DATABASE}"
    print(f"Serving {archive.folder} at {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        webbrowser.open(url)  # the browser takes longer to start than the server
    uvicorn.run(datasette.app(), host=HOST, port=port, log_level="warning", lifespan="on", workers=1)
