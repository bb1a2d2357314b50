"""What the archive holds and how its runs went: `archiver status` and `archiver verify`."""

from __future__ import annotations

import json
from typing import Callable

from archiver.archive import Archive
from archiver.config import Config


def account_status(archive: Archive, config: Config) -> list[dict]:
    """One entry per account (configured or seen in the archive)."""
    from archiver.sync import mark_dead_runs

    db = archive.db
    with archive.writing():
        mark_dead_runs(db)
    ids = [a.account_id for a in config.accounts]
    for (account_id,) in db.execute(
        "SELECT account_id FROM runs UNION SELECT account_id FROM accounts ORDER BY 1"
    ).fetchall():
        if account_id not in ids:
            ids.append(account_id)
    rows = []
    for account_id in ids:
        platform = account_id.split(":", 1)[0]

        def one(sql, *params):
            return db.execute(sql, [account_id, *params]).fetchone()

        last = _run(db, "SELECT * FROM runs WHERE account_id=? ORDER BY run_id DESC LIMIT 1", account_id)
        last_ok = one("SELECT max(ended_at) FROM runs WHERE account_id=? AND status='ok'")[0]
        holds = {
            "posts": one("SELECT count(*) FROM posts WHERE account_id=?")[0],
            "posts_deleted_on_platform": one("SELECT count(*) FROM posts WHERE account_id=? AND deleted_at IS NOT NULL")[0],
            "media_files": one(
                "SELECT count(DISTINCT pm.sha256) FROM post_media pm JOIN posts p USING (platform, post_id) "
                "WHERE p.account_id=? AND pm.sha256 IS NOT NULL")[0],
            "media_missing": one(
                "SELECT count(*) FROM post_media pm JOIN posts p USING (platform, post_id) "
                "WHERE p.account_id=? AND pm.sha256 IS NULL")[0],
            "comments": one("SELECT count(*) FROM comments WHERE account_id=?")[0],
            "followers": one("SELECT count(*) FROM follows WHERE account_id=? AND kind='followers' AND ended_at IS NULL")[0],
            "following": one("SELECT count(*) FROM follows WHERE account_id=? AND kind='following' AND ended_at IS NULL")[0],
        }
        newest_export = one("SELECT max(imported_at) FROM imports WHERE account_id=?")[0]
        rows.append({
            "account": account_id,
            "platform": platform,
            "configured": account_id in [a.account_id for a in config.accounts],
            "last_run": last,
            "last_successful_run_at": last_ok,
            "archive_holds": holds,
            "newest_export_imported_at": newest_export,
        })
    return rows


def _run(db, sql, *params) -> dict | None:
    cursor = db.execute(sql, list(params))
    row = cursor.fetchone()
    if row is None:
        return None
    run = dict(zip([c[0] for c in cursor.description], row))
    run["counts"] = json.loads(run["counts"])
    run["errors"] = json.loads(run["errors"])
    return run


def render_status(rows: list[dict]) -> str:
    if not rows:
        return "no accounts yet: add one to the config (`archiver init`) or run `archiver demo`."
    lines = []
    for row in rows:
        lines.append(f"{row['account']}" + ("" if row["configured"] else "  (not in the config)"))
        run = row["last_run"]
        if run:
            added = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(run["counts"].items()) if v) or "nothing new"
            lines.append(f"  last run:   #{run['run_id']} {run['kind']} ({run['mode']}) started {run['started_at']}"
                         f" — {run['status'].upper()}")
            lines.append(f"  it added:   {added}")
            if run["message"]:
                lines.append(f"  note:       {run['message']}")
            for error in run["errors"][:5]:
                lines.append(f"  failed:     {error['item']}: {error['error']}")
            if len(run["errors"]) > 5:
                lines.append(f"  failed:     … and {len(run['errors']) - 5} more")
        else:
            lines.append("  last run:   never")
        lines.append(f"  last success: {row['last_successful_run_at'] or 'never'}")
        holds = row["archive_holds"]
        lines.append("  archive:    " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in holds.items()))
        lines.append(f"  newest export imported: {row['newest_export_imported_at'] or 'none'}")
    return "\n".join(lines)


def verify_archive(archive: Archive, echo: Callable[[str], None] = print) -> int:
    """Integrity check + every media file re-hashed against its name and the media table."""
    from archiver.media import MediaStore
    from archiver.records import now_utc

    problems = 0
    db = archive.db
    result = db.execute("PRAGMA integrity_check").fetchall()
    if [r[0] for r in result] != ["ok"]:
        problems += len(result)
        for (line,) in result:
            echo(f"database: {line}")
    else:
        echo("database: integrity check ok")
    store = MediaStore(archive.media_root)
    for path, problem in store.verify():
        problems += 1
        echo(f"media: {path}: {problem}")
    checked = 0
    for sha256, path in db.execute("SELECT sha256, path FROM media").fetchall():
        checked += 1
        if not (archive.media_root / path).exists():
            problems += 1
            echo(f"media: {path} (sha256 {sha256}) is recorded but missing from {archive.media_root}")
    with archive.writing():
        db.execute("UPDATE media SET verified_at=?", [now_utc()])
    echo(f"media: {checked} files checked, {problems} problem(s)")
    return problems
