"""The archive's schema, as sqlite-utils migrations.

Users write SQL against these tables, so names are plain and stable; the documentation
for them lives in docs/schema.md. Keys are compound and textual: (platform, native id).
Every timestamp is UTC ISO-8601 text. A new migration is appended, never edited.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

import archiver.plugins as plugins

migrations = Migrations("archiver")


def _installed_connectors(db: Database) -> Mapping[str, Any]:
    """The connectors, for a migration in which platforms rewrite their own rows (their
    words for visibility, ids keyed anew); none are loaded while the archive holds no rows."""
    if not any(db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in _PROVENANCE_TABLES):
        return {}
    return plugins.load(plugins.CONNECTORS, built_in_must_load=True)

# Provenance columns every main table carries.
_PROVENANCE = """
    sources TEXT NOT NULL DEFAULT '[]',      -- JSON list: "api", "export:<sha256>"
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    raw TEXT NOT NULL DEFAULT '{}'           -- JSON object: source ("api", "export:<sha256>") -> payload (scrubbed)
"""

INITIAL = f"""
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,             -- "<platform>:<config name>"
    platform TEXT NOT NULL,
    name TEXT NOT NULL,
    native_id TEXT,
    username TEXT,
    display_name TEXT,
    bio TEXT,
    url TEXT,
    avatar_sha256 TEXT,
    followers INTEGER, following INTEGER, likes INTEGER, posts INTEGER,
    {_PROVENANCE}
);
CREATE TABLE profile_versions (
    account_id TEXT NOT NULL,
    replaced_at TEXT NOT NULL,               -- when this version stopped being current
    username TEXT, display_name TEXT, bio TEXT, url TEXT, avatar_sha256 TEXT,
    PRIMARY KEY (account_id, replaced_at)
);
CREATE TABLE account_metrics (
    account_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    followers INTEGER, following INTEGER, likes INTEGER, posts INTEGER,
    PRIMARY KEY (account_id, observed_at)
);
CREATE TABLE posts (
    platform TEXT NOT NULL,
    post_id TEXT NOT NULL,                   -- native id, or "provisional:<created_at>" until an API names it
    account_id TEXT NOT NULL,
    kind TEXT,
    created_at TEXT,
    title TEXT,
    text TEXT,
    url TEXT,
    duration INTEGER, width INTEGER, height INTEGER,
    visibility TEXT,
    like_count INTEGER, comment_count INTEGER, share_count INTEGER, view_count INTEGER,
    deleted_at TEXT,                         -- tombstone: missing from a complete listing
    listed_in TEXT,                          -- id of the last full listing that returned it
    {_PROVENANCE},
    PRIMARY KEY (platform, post_id)
);
CREATE INDEX posts_by_account_created ON posts (account_id, created_at);
CREATE TABLE post_versions (
    platform TEXT NOT NULL,
    post_id TEXT NOT NULL,
    replaced_at TEXT NOT NULL,
    title TEXT, text TEXT, visibility TEXT,
    PRIMARY KEY (platform, post_id, replaced_at)
);
CREATE TABLE post_metrics (
    platform TEXT NOT NULL,
    post_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    like_count INTEGER, comment_count INTEGER, share_count INTEGER, view_count INTEGER,
    PRIMARY KEY (platform, post_id, observed_at)
);
CREATE TABLE media (
    sha256 TEXT PRIMARY KEY,
    path TEXT NOT NULL,                      -- relative to the archive's media/ folder
    mime TEXT,
    size INTEGER NOT NULL,
    first_seen_at TEXT NOT NULL,
    verified_at TEXT
);
CREATE TABLE post_media (
    platform TEXT NOT NULL,
    post_id TEXT NOT NULL,
    role TEXT NOT NULL,                      -- cover | video | image | thumbnail
    position INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT,                             -- NULL while not (yet) downloaded
    source_url TEXT,                         -- without query string: signed parts never stored
    status TEXT NOT NULL,                    -- ok | failed
    error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (platform, post_id, role, position)
);
CREATE TABLE people (
    platform TEXT NOT NULL,
    person_id TEXT NOT NULL,                 -- platform id, or the handle where only that is known
    handle TEXT,
    display_name TEXT,
    url TEXT,
    avatar_url TEXT,
    {_PROVENANCE},
    PRIMARY KEY (platform, person_id)
);
CREATE TABLE comments (
    platform TEXT NOT NULL,
    comment_id TEXT NOT NULL,                -- native id, or "own:<created_at>:<hash of text>"
    account_id TEXT NOT NULL,
    post_id TEXT,
    parent_id TEXT,
    author_id TEXT,                          -- people.person_id
    by_owner INTEGER NOT NULL DEFAULT 0,     -- 1 = written by the account owner
    text TEXT,
    created_at TEXT,
    url TEXT,
    deleted_at TEXT,
    {_PROVENANCE},
    PRIMARY KEY (platform, comment_id)
);
CREATE INDEX comments_by_post ON comments (platform, post_id);
CREATE TABLE comment_versions (
    platform TEXT NOT NULL,
    comment_id TEXT NOT NULL,
    replaced_at TEXT NOT NULL,
    text TEXT,
    PRIMARY KEY (platform, comment_id, replaced_at)
);
CREATE TABLE snapshots (
    snapshot_id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- followers | following
    taken_at TEXT NOT NULL,
    source TEXT NOT NULL,
    member_count INTEGER NOT NULL,
    new_count INTEGER NOT NULL,
    lost_count INTEGER NOT NULL,
    complete INTEGER NOT NULL
);
CREATE UNIQUE INDEX snapshots_unique ON snapshots (account_id, kind, taken_at, source);
CREATE TABLE follows (
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- followers | following
    person_id TEXT NOT NULL,
    started_at TEXT NOT NULL,                -- platform's date, else the first snapshot that had them
    last_seen_at TEXT NOT NULL,
    ended_at TEXT,                           -- first snapshot that no longer had them
    PRIMARY KEY (account_id, kind, person_id, started_at)
) WITHOUT ROWID;
CREATE UNIQUE INDEX follows_open ON follows (account_id, kind, person_id) WHERE ended_at IS NULL;
CREATE TABLE audience_events (
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- followers | following
    person_id TEXT NOT NULL,
    event TEXT NOT NULL,                     -- new | lost
    at TEXT NOT NULL,
    snapshot_id INTEGER NOT NULL
);
CREATE INDEX audience_events_by_time ON audience_events (account_id, kind, at);
CREATE TABLE runs (
    run_id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- export | import | portability
    mode TEXT,                               -- incremental | full | file name
    pid INTEGER,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL,                    -- running | ok | failed | interrupted
    counts TEXT NOT NULL DEFAULT '{{}}',     -- JSON: what it added / changed
    errors TEXT NOT NULL DEFAULT '[]',       -- JSON list of {{item, error}}
    message TEXT
);
CREATE TABLE sync_state (
    account_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    state TEXT NOT NULL,                     -- JSON, the connector's checkpoint
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account_id, stream)
);
CREATE TABLE imports (
    sha256 TEXT NOT NULL,
    account_id TEXT NOT NULL,
    file_name TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    run_id INTEGER,
    PRIMARY KEY (sha256, account_id)
);
"""


@migrations(name="m001_initial")
def m001_initial(db: Database) -> None:
    for statement in _statements(INITIAL):
        db.execute(statement)
    # Full-text search, kept in step by triggers that sqlite-utils writes.
    db.table("posts").enable_fts(["title", "text"], create_triggers=True, tokenize="unicode61")
    db.table("comments").enable_fts(["text"], create_triggers=True, tokenize="unicode61")
    db.table("people").enable_fts(["handle", "display_name"], create_triggers=True, tokenize="unicode61")
    # A follower snapshot touches last_seen_at of up to a million people; sqlite-utils'
    # update trigger would re-index every one of them. Re-index only when a name changes.
    _reindex_only_on_change(db, "people", ["handle", "display_name"])


def _reindex_only_on_change(db: Database, table: str, columns: list[str]) -> None:
    """Replace sqlite-utils' FTS update trigger with one that fires only when an indexed
    column (or the rowid) changes: re-imports and metric updates touch rows constantly."""
    changed = " OR ".join([f"old.{c} IS NOT new.{c}" for c in columns] + ["old.rowid IS NOT new.rowid"])
    cols = ", ".join(f'"{c}"' for c in columns)
    old_values = ", ".join(f'old."{c}"' for c in columns)
    new_values = ", ".join(f'new."{c}"' for c in columns)
    db.execute(f'DROP TRIGGER IF EXISTS "{table}_au"')
    db.execute(
        f'CREATE TRIGGER "{table}_au" AFTER UPDATE ON "{table}" WHEN {changed} BEGIN\n'
        f'  INSERT INTO "{table}_fts" ("{table}_fts", rowid, {cols}) VALUES(\'delete\', old.rowid, {old_values});\n'
        f'  INSERT INTO "{table}_fts" (rowid, {cols}) VALUES (new.rowid, {new_values});\n'
        "END"
    )


def _statements(script: str) -> list[str]:
    """Split a DDL script on ';' line ends (none of our statements hold a ';' inside)."""
    cleaned = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [s.strip() for s in cleaned.split(";") if s.strip()]


ALERTS = """
CREATE TABLE alerts (
    alert_id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- failing | gone | unreachable | export_old
    state TEXT NOT NULL,                     -- open | resolved
    message TEXT NOT NULL,                   -- what happened and what is safe, for a person
    details TEXT NOT NULL DEFAULT '{}',      -- JSON: run ids, failure kind, archive counts, steps
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    resolved_at TEXT,
    last_notified_at TEXT,                   -- when a notifier last delivered it
    notified_state TEXT                      -- what was last delivered: open, open+1d, resolved
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (account_id, kind) WHERE state = 'open';
CREATE INDEX alerts_by_account ON alerts (account_id, state)
"""


@migrations(name="m002_alerts")
def m002_alerts(db: Database) -> None:
    for statement in _statements(ALERTS):
        db.execute(statement)
    # Why a run failed, in the network layer's words (auth, gone, transport, timeout,
    # server, rate_limited …): the alerts tell an unreachable platform from a lost account.
    db.execute("ALTER TABLE runs ADD COLUMN failure_kind TEXT")


OPEN_PLATFORMS = """
CREATE TABLE interactions (
    account_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- like | bookmark: the owner's own, on others' posts
    target TEXT NOT NULL,                    -- the post's URI or URL (what the platform names it by)
    target_url TEXT,                         -- a web link to it, where known
    native_id TEXT,                          -- the interaction's own id (e.g. a Bluesky like record), if any
    created_at TEXT,
    deleted_at TEXT,
    {provenance},
    PRIMARY KEY (account_id, kind, target)
);
CREATE INDEX interactions_by_time ON interactions (account_id, kind, created_at)
""".format(provenance=_PROVENANCE)


@migrations(name="m003_fts_on_change_alt_text_interactions")
def m003_fts_on_change_alt_text_interactions(db: Database) -> None:
    # A re-import of the same export, or a metrics refresh, updates every post and comment
    # row; their search index needs rewriting only when the text itself changed.
    _reindex_only_on_change(db, "posts", ["title", "text"])
    _reindex_only_on_change(db, "comments", ["text"])
    # Alt text and per-file metadata (Mastodon, Bluesky give both for every attachment).
    db.execute("ALTER TABLE post_media ADD COLUMN description TEXT")
    db.execute("ALTER TABLE post_media ADD COLUMN meta TEXT")
    # What the owner liked or bookmarked on other people's posts.
    for statement in _statements(OPEN_PLATFORMS):
        db.execute(statement)


AUDIENCE = """
CREATE TABLE person_links (
    a_platform TEXT NOT NULL,                -- the pair in a canonical order: "a_platform:a_person"
    a_person TEXT NOT NULL,                  -- sorts before "b_platform:b_person"
    b_platform TEXT NOT NULL,
    b_person TEXT NOT NULL,
    confidence REAL NOT NULL,                -- 0..1; a hand-made link is 1
    reason TEXT NOT NULL,                    -- why they look like one person, for a person to read
    status TEXT NOT NULL,                    -- suggested | confirmed | rejected
    updated_at TEXT NOT NULL,
    PRIMARY KEY (a_platform, a_person, b_platform, b_person)
) WITHOUT ROWID;
CREATE INDEX person_links_by_status ON person_links (status, confidence);
CREATE INDEX comments_by_author ON comments (platform, author_id, by_owner, created_at);
CREATE INDEX audience_events_by_kind_time ON audience_events (kind, at, account_id, event)
"""


@migrations(name="m004_audience")
def m004_audience(db: Database) -> None:
    # Links between identities of one person on several platforms (archiver.views.audience).
    # Covering indexes for the audience reports: top fans read the comments per author
    # (count, newest, recency-weighted score) without touching the table, and churn reads
    # new/lost per day and account from the events' time index alone.
    for statement in _statements(AUDIENCE):
        db.execute(statement)
    # What a person says about themselves, for matching them across platforms: the
    # profile's bio and the links in it (JSON list of URLs).
    db.execute("ALTER TABLE people ADD COLUMN bio TEXT")
    db.execute("ALTER TABLE people ADD COLUMN links TEXT")


@migrations(name="m005_people_avatars_banners")
def m005_people_avatars_banners(db: Database) -> None:
    # The profile's banner (Bluesky's banner, Mastodon's header), kept like the avatar: the
    # current one on the account, the one it replaced in profile_versions.
    db.execute("ALTER TABLE accounts ADD COLUMN banner_sha256 TEXT")
    db.execute("ALTER TABLE profile_versions ADD COLUMN banner_sha256 TEXT")
    # Other people's pictures (commenters), stored in media/ so the archive shows them
    # offline. avatar_source is the link it was downloaded from, without its query string
    # (signed parts are never stored): the same link again is not downloaded again.
    db.execute("ALTER TABLE people ADD COLUMN avatar_sha256 TEXT")
    db.execute("ALTER TABLE people ADD COLUMN avatar_source TEXT")


INDEXES_STAGING = """
CREATE INDEX comments_by_account_owner_time ON comments (account_id, by_owner, created_at);
CREATE INDEX comments_by_parent ON comments (platform, parent_id);
CREATE UNIQUE INDEX media_by_path ON media (path);
CREATE TABLE staged_lists (
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- followers | following
    taken_at TEXT NOT NULL,                  -- the snapshot this list becomes
    source TEXT NOT NULL,
    cursor TEXT,                             -- JSON: where the listing goes on (NULL: from the start)
    pages INTEGER NOT NULL DEFAULT 0,
    members INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account_id, kind)
);
CREATE TABLE staged_members (
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    person_id TEXT NOT NULL,
    since TEXT, handle TEXT, display_name TEXT, url TEXT, avatar_url TEXT
);
CREATE INDEX staged_members_by_list ON staged_members (account_id, kind, taken_at);
CREATE TABLE export_media (
    export_sha256 TEXT NOT NULL,
    entry TEXT NOT NULL,                     -- the file's name inside the export
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,                    -- media.sha256 of its bytes
    PRIMARY KEY (export_sha256, entry)
) WITHOUT ROWID
"""


@migrations(name="m007_indexes_staging")
def m007_indexes_staging(db: Database) -> None:
    # Indexes the read queries need: a person's own comments over time per account, the
    # replies to a comment, and one media row per file.
    # Follower / following lists are written a page at a time into staged_members, with
    # the listing's cursor in staged_lists (same transaction), and become a snapshot once
    # the list is whole; a run killed half way goes on from the cursor.
    # export_media remembers which stored file each export entry became, so importing the
    # same export again copies no media bytes.
    for statement in _statements(INDEXES_STAGING):
        db.execute(statement)


# Tables whose rows carry provenance (sources + raw).
_PROVENANCE_TABLES = {
    "accounts": ("account_id",),
    "posts": ("platform", "post_id"),
    "people": ("platform", "person_id"),
    "comments": ("platform", "comment_id"),
    "interactions": ("account_id", "kind", "target"),
}


@migrations(name="m008_small_promises")
def m008_small_promises(db: Database) -> None:
    # raw was keyed by the kind of source ("export"), so a second export replaced the
    # first one's payload. It is keyed by the source itself now ("export:<sha256>"). The
    # payload held is the one the last export wrote: it goes under the newest export
    # source the row lists (a row without one keeps its "export" key).
    import json

    for table, key in _PROVENANCE_TABLES.items():
        where = " AND ".join(f"{c}=?" for c in key)
        rows = db.execute(
            f"SELECT {', '.join(key)}, sources, raw FROM {table} WHERE json_type(raw, '$.export') IS NOT NULL"
        ).fetchall()
        for row in rows:
            ids, sources, raw = row[: len(key)], json.loads(row[-2]), json.loads(row[-1])
            exports = [s for s in sources if isinstance(s, str) and s.startswith("export:")]
            if not exports:
                continue
            raw.setdefault(exports[-1], raw.pop("export"))
            raw.pop("export", None)
            db.execute(f"UPDATE {table} SET raw=? WHERE {where}",
                       [json.dumps(raw, ensure_ascii=False, sort_keys=True, separators=(",", ":")), *ids])


@migrations(name="m008_small_promises_visibility")
def m008_small_promises_visibility(db: Database) -> None:
    # Visibility in one vocabulary (records.VISIBILITIES): each platform's words through
    # its connector's table (Mastodon's "private" is followers only), the others as they
    # are when already one of ours. The platform's word stays in raw.
    from archiver.records import visibility

    connectors = _installed_connectors(db)
    for table in ("posts", "post_versions"):
        found = db.execute(f"SELECT DISTINCT platform, visibility FROM {table} WHERE visibility IS NOT NULL")
        for platform, word in found.fetchall():
            words = getattr(connectors.get(platform), "visibility_words", {})
            mapped = visibility(word, words)
            if mapped != word:
                db.execute(f"UPDATE {table} SET visibility=? WHERE platform=? AND visibility=?",
                           [mapped, platform, word])


@migrations(name="m008_small_promises_export_fingerprint")
def m008_small_promises_export_fingerprint(db: Database) -> None:
    # An export is what it holds, not its wrapper: the zip and the folder it was unzipped
    # to have one fingerprint (imports.ExportSource.fingerprint), so the second is not
    # imported again. Exports imported before have none (their file's sha256 still counts).
    db.execute("ALTER TABLE imports ADD COLUMN fingerprint TEXT")
    db.execute("CREATE INDEX imports_by_fingerprint ON imports (account_id, fingerprint)")


@migrations(name="m010_run_locks")
def m010_run_locks(db: Database) -> None:
    # An import whose media could not all be stored stays open: ``holes`` counts the files
    # still missing, ``path`` is where the export file was, so `archiver import
    # --retry-failed` can try them again from it.
    db.execute("ALTER TABLE imports ADD COLUMN path TEXT")
    db.execute("ALTER TABLE imports ADD COLUMN holes INTEGER NOT NULL DEFAULT 0")


LISTINGS = """
CREATE TABLE listings (
    account_id TEXT NOT NULL,
    listing TEXT NOT NULL,                   -- id of one full walk over a platform's list
    stream TEXT NOT NULL,                    -- the connector's stream: "videos", "media", "likes" …
    of TEXT NOT NULL DEFAULT 'posts',        -- posts | like | bookmark: what it may mark deleted
    started_at TEXT NOT NULL,
    completed_at TEXT,                       -- when its last page was written (NULL: cut off)
    listed INTEGER,                          -- ids the platform listed, at completion
    failed INTEGER NOT NULL DEFAULT 0,       -- listed items that could not be mapped or written
    tombstoned INTEGER,                      -- rows it marked deleted
    held_back TEXT,                          -- why it marked nothing deleted, when it did not
    PRIMARY KEY (account_id, listing)
);
CREATE INDEX listings_by_completion ON listings (account_id, completed_at);
CREATE TABLE listed_ids (
    account_id TEXT NOT NULL,
    listing TEXT NOT NULL,
    item_id TEXT NOT NULL,                   -- posts.post_id, or interactions.target
    PRIMARY KEY (account_id, listing, item_id)
) WITHOUT ROWID;
CREATE TABLE unmapped_items (
    account_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    item_id TEXT NOT NULL,
    error TEXT NOT NULL,                     -- why it could not be archived
    raw TEXT,                                -- the platform's payload (scrubbed), when there was one
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    PRIMARY KEY (account_id, stream, item_id)
)
"""


@migrations(name="m006_listings")
def m006_listings(db: Database) -> None:
    # The full listings of each account (archiver.sync.listing): the ids the platform listed,
    # kept apart from the rows that were written, so an item listed but not archived is
    # never marked deleted; and the items that could not be mapped, kept raw.
    for statement in _statements(LISTINGS):
        db.execute(statement)
    # Full listings finished before this table existed left their time in sync_state.
    import json

    for account_id, stream, state in db.execute("SELECT account_id, stream, state FROM sync_state").fetchall():
        try:
            finished = json.loads(state).get("last_full_at")
        except (ValueError, AttributeError):
            continue
        if finished:
            db.execute("INSERT OR IGNORE INTO listings (account_id, listing, stream, started_at, completed_at) "
                       "VALUES (?, ?, ?, ?, ?)", [account_id, f"before-m006:{stream}", stream, finished, finished])


@migrations(name="m008_small_promises_instance_keys")
def m008_small_promises_instance_keys(db: Database) -> None:
    # Some platforms' ids are local to a server (a Mastodon status id is its instance's
    # number): their connectors now key them with the server, and rewrite the rows
    # already archived here (Connector.upgrade_archive).
    for connector in _installed_connectors(db).values():
        connector.upgrade_archive(db, "m008_small_promises_instance_keys")


@migrations(name="m009_media_repair")
def m009_media_repair(db: Database) -> None:
    # Why a slot's file is missing, in one word (expired | refused | unreachable | hash |
    # missing | other): `archiver status` counts the holes by it, the run summary groups by it.
    db.execute("ALTER TABLE post_media ADD COLUMN cause TEXT")
    # When the repair pass last tried a failed slot: it takes the longest untried first.
    db.execute("ALTER TABLE post_media ADD COLUMN tried_at TEXT")
    db.execute("UPDATE post_media SET cause='other' WHERE status='failed'")
    db.execute("CREATE INDEX post_media_failed ON post_media (status, platform, post_id) WHERE status='failed'")
    # The run's one line per cause of failed files, shown by `archiver status`.
    db.execute("ALTER TABLE runs ADD COLUMN summary TEXT")


CHUNKED_STAGING = """
CREATE TABLE staged_lists_chunked (
    list_id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- followers | following
    taken_at TEXT NOT NULL,                  -- the snapshot this list becomes
    source TEXT NOT NULL,                    -- "api", or the export's "export:<sha256>"
    cursor TEXT,                             -- JSON: where the API listing goes on (NULL: from the start)
    read INTEGER NOT NULL DEFAULT 0,         -- entries of the source read so far (an export goes on after them)
    pages INTEGER NOT NULL DEFAULT 0,        -- pages (API) or chunks (export) staged
    members INTEGER NOT NULL DEFAULT 0,
    complete INTEGER,                        -- NULL while the list is read; once whole: whether it is complete
    plan TEXT,                               -- JSON: how the snapshot is applied, fixed when applying starts
    applied_to TEXT,                         -- person_id up to which the snapshot is applied (key order)
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (account_id, kind, source)
);
CREATE TABLE staged_members_chunked (
    list_id INTEGER NOT NULL,                -- staged_lists.list_id
    person_id TEXT NOT NULL,
    since TEXT, handle TEXT, display_name TEXT, url TEXT, avatar_url TEXT
);
INSERT INTO staged_lists_chunked (account_id, kind, taken_at, source, cursor, read, pages, members, started_at,
                                  updated_at)
    SELECT account_id, kind, taken_at, source, cursor, members, pages, members, started_at, updated_at
    FROM staged_lists;
INSERT INTO staged_members_chunked (list_id, person_id, since, handle, display_name, url, avatar_url)
    SELECT l.list_id, m.person_id, m.since, m.handle, m.display_name, m.url, m.avatar_url
    FROM staged_members m JOIN staged_lists_chunked l
    ON l.account_id=m.account_id AND l.kind=m.kind AND l.taken_at=m.taken_at ORDER BY m.rowid;
DROP TABLE staged_members;
DROP TABLE staged_lists;
ALTER TABLE staged_lists_chunked RENAME TO staged_lists;
ALTER TABLE staged_members_chunked RENAME TO staged_members;
CREATE INDEX staged_members_by_list ON staged_members (list_id)
"""


@migrations(name="m013_chunked_writes")
def m013_chunked_writes(db: Database) -> None:
    # A big follower list is staged and applied in chunks that each commit (archiver.archive.lists),
    # so no write transaction grows with the list and a run stops at a chunk boundary.
    # Exports stage too now: one staged list per (account, kind, source), so an interrupted
    # import and an API listing of the same list do not collide; a member row names its
    # list by number instead of repeating account, kind and time nine million times.
    for statement in _statements(CHUNKED_STAGING):
        db.execute(statement)


@migrations(name="m015_issue10_rest")
def m015_issue10_rest(db: Database) -> None:
    # A full listing of comments (archiver.sync.listing, of = 'comment') covers only some posts,
    # and some only to a depth (a thread depth limit): which ones, so that its last page
    # marks deleted only comments it could have seen.
    db.execute("""CREATE TABLE listing_scope (
    account_id TEXT NOT NULL,
    listing TEXT NOT NULL,
    post_id TEXT NOT NULL,                   -- a post whose comments the listing read in full
    depth INTEGER,                           -- how many levels of replies it read (NULL: every level)
    PRIMARY KEY (account_id, listing, post_id)
) WITHOUT ROWID""")


COLLECTIONS = """
CREATE TABLE collections (
    platform TEXT NOT NULL,
    collection_id TEXT NOT NULL,             -- the platform's id of the board or section
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- board | section
    parent_id TEXT,                          -- a section's board (collections.collection_id)
    title TEXT,
    description TEXT,
    url TEXT,
    visibility TEXT,                         -- public | private … (records.VISIBILITIES); the platform's word in raw
    created_at TEXT,
    post_count INTEGER,
    follower_count INTEGER,
    cover_sha256 TEXT,                       -- the cover picture, in media (optional)
    cover_source TEXT,                       -- the link it was downloaded from, without its query string
    {provenance},
    PRIMARY KEY (platform, collection_id)
);
CREATE INDEX collections_by_account ON collections (account_id, kind);
CREATE TABLE collection_versions (
    platform TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    replaced_at TEXT NOT NULL,               -- when this version stopped being current
    title TEXT, description TEXT, url TEXT, visibility TEXT, cover_sha256 TEXT,
    PRIMARY KEY (platform, collection_id, replaced_at)
);
CREATE TABLE collection_posts (
    platform TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    post_id TEXT NOT NULL,                   -- posts.post_id
    sources TEXT NOT NULL DEFAULT '[]',      -- JSON list: which sources said the post is in it
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,              -- a post moved elsewhere keeps its old row, last seen then
    PRIMARY KEY (platform, collection_id, post_id)
) WITHOUT ROWID;
CREATE INDEX collection_posts_by_post ON collection_posts (platform, post_id, last_seen_at)
""".format(provenance=_PROVENANCE)


@migrations(name="m017_profile_as_of")
def m017_profile_as_of(db: Database) -> None:
    # When the current profile was current as its source said (an export's time, or the
    # API run's): a newer export then replaces the profile of an account no API reads.
    db.execute("ALTER TABLE accounts ADD COLUMN profile_as_of TEXT")


@migrations(name="m016_links_collections")
def m016_links_collections(db: Database) -> None:
    # The page outside the platform a post points to (a Pin's link, a shared article); a
    # replaced link is kept with the post's earlier version.
    db.execute("ALTER TABLE posts ADD COLUMN link TEXT")
    db.execute("ALTER TABLE post_versions ADD COLUMN link TEXT")
    # Named groups of the owner's posts (Pinterest boards and their sections), their
    # earlier names, and which posts were in which, each membership with when it was seen:
    # rows are never deleted, so a post moved to another board keeps its old one.
    for statement in _statements(COLLECTIONS):
        db.execute(statement)


OWNED_CONTACTS = """
CREATE TABLE owned_contacts (
    account_id TEXT NOT NULL,                -- the newsletter's or shop's account ("<provider>:main")
    contact_id TEXT NOT NULL,                -- the email address, trimmed and case folded: one person across providers
    platform TEXT NOT NULL,                  -- the provider: its connector's name
    channel TEXT NOT NULL,                   -- newsletter | shop
    email TEXT NOT NULL,                     -- as the provider wrote it
    display_name TEXT,
    status TEXT NOT NULL,                    -- subscribed | pending | unsubscribed | cleaned | customer
    consent INTEGER,                         -- 1: agreed to receive email from the owner; 0: not (or withdrawn); NULL: unknown
    joined_at TEXT,                          -- subscribed / signed up
    consent_at TEXT,                         -- opt-in confirmed, or consent last changed
    left_at TEXT,                            -- unsubscribed / cleaned / bounced
    provider_id TEXT,                        -- the provider's own id of the contact, where it gives one
    orders INTEGER,                          -- a shop's customers: how many orders
    as_of TEXT NOT NULL,                     -- when the export said so (its own time): a newer one replaces it
    {provenance},
    PRIMARY KEY (account_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX owned_contacts_by_contact ON owned_contacts (contact_id, consent, status);
CREATE TABLE owned_contact_versions (
    account_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    replaced_at TEXT NOT NULL,               -- the as_of of the export that replaced it
    status TEXT, consent INTEGER, joined_at TEXT, consent_at TEXT, left_at TEXT,
    PRIMARY KEY (account_id, contact_id, replaced_at)
) WITHOUT ROWID
""".format(provenance=_PROVENANCE)


@migrations(name="m018_owned_contacts")
def m018_owned_contacts(db: Database) -> None:
    # The audience the owner reaches without any platform: subscribers of their newsletter
    # and customers of their shop, from the providers' CSV exports, with consent and dates.
    # Kept apart from `people` (platform identities), so nothing that shows people shows them.
    for statement in _statements(OWNED_CONTACTS):
        db.execute(statement)
