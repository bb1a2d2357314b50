"""What the archive holds and how its runs went: `archiver status` and `archiver verify`."""

from __future__ import annotations

import json
from typing import Callable

from archiver.archive import Archive
from archiver.config import Config
from archiver.connector import lists_everything
from archiver.sync.listing import last_full_listing


def account_status(archive: Archive, config: Config, *, now=None) -> list[dict]:
    """One entry per account (configured or seen in the archive). ``now`` (an aware
    datetime) is for tests of the export age."""
    with archive.reading() as db:
        return _account_status(db, config, now=now)


def _account_status(db, config: Config, *, now=None) -> list[dict]:
    by_id = {a.account_id: a for a in config.accounts}
    ids = list(by_id)
    for (account_id,) in db.execute(
        "SELECT account_id FROM runs UNION SELECT account_id FROM accounts ORDER BY 1"
    ).fetchall():
        if account_id not in ids:
            ids.append(account_id)
    rows = []
    for account_id in ids:
        platform = account_id.split(":", 1)[0]

        last = _run(db, "SELECT * FROM runs WHERE account_id=? ORDER BY run_id DESC LIMIT 1", account_id)
        last_ok = db.execute("SELECT max(ended_at) FROM runs WHERE account_id=? AND status='ok'", [account_id]).fetchone()[0]
        newest_export = db.execute("SELECT max(imported_at) FROM imports WHERE account_id=?", [account_id]).fetchone()[0]
        configured = by_id.get(account_id)
        last_full = last_full_listing(db, account_id)
        rows.append({
            "account": account_id,
            "platform": platform,
            "configured": configured is not None,
            "last_run": last,
            "last_successful_run_at": last_ok,
            "next_run": _next_run(configured),
            "api_off": _api_off(configured),
            # Deletions are found only by a full listing; the daemon runs one when due.
            "last_full_listing_at": last_full,
            "full_listing_due_at": _full_listing_due_at(last_full, configured),
            "archive_holds": archive_holds(db, account_id),
            "newest_export_imported_at": newest_export,
            "export": export_age(platform, newest_export, config.alerts.export_max_age_days, now=now,
                                 options=configured.options if configured else None,
                                 api_ok_at=last_api_export_ok(db, account_id)),
            "open_alerts": open_alerts(db, account_id),
            "authorization_expires_at": (authorization_expiry(db, account_id) or {}).get("expires_at"),
            "api_budget": api_budget(db, account_id, now=now),
            "api_spend": api_spend(db, account_id, now=now),
            "unmatched_export_posts": unmatched_export_posts(db, account_id),
            "imports_with_holes": [
                {"file_name": name, "holes": holes, "imported_at": at} for name, holes, at in db.execute(
                    "SELECT file_name, holes, imported_at FROM imports WHERE account_id=? AND holes > 0 "
                    "ORDER BY imported_at", [account_id]).fetchall()],
            "media_holes": media_holes(db, account_id),
        })
    return rows


def unmatched_export_posts(db, account_id: str, shown: int = 5) -> dict:
    """Export posts without id (still "provisional:…") that no API post matched, for an
    account the API archives: each is either gone from the platform or its time or
    caption differ too much to be sure. (An account archived from exports only has
    nothing to match them with, and nothing is said.)"""
    has_api = db.execute(
        "SELECT 1 FROM posts WHERE account_id=? AND post_id NOT LIKE 'provisional:%' AND EXISTS "
        "(SELECT 1 FROM json_each(posts.sources) WHERE json_each.value = 'api') LIMIT 1", [account_id]).fetchone()
    if not has_api:
        return {"count": 0, "posts": []}
    count = db.execute("SELECT count(*) FROM posts WHERE account_id=? AND post_id LIKE 'provisional:%'",
                       [account_id]).fetchone()[0]
    found = db.execute(
        "SELECT post_id, created_at, coalesce(title, text) FROM posts WHERE account_id=? "
        "AND post_id LIKE 'provisional:%' ORDER BY created_at LIMIT ?", [account_id, shown]).fetchall()
    return {"count": count, "posts": [{"post_id": p, "created_at": c, "caption": t} for p, c, t in found]}


def media_holes(db, account_id: str) -> dict[str, int]:
    """Slots whose file is missing, by cause (expired, refused, unreachable, hash, other):
    what the repair pass of the next runs will try again."""
    found = db.execute(
        "SELECT coalesce(pm.cause, 'other'), count(*) FROM post_media pm JOIN posts p USING (platform, post_id) "
        "WHERE p.account_id=? AND pm.sha256 IS NULL GROUP BY 1 ORDER BY 2 DESC, 1", [account_id]).fetchall()
    return {cause: n for cause, n in found}


def media_hole_list(db, account_id: str) -> list[dict]:
    """Every slot without its file, oldest first (for `archiver status --errors`)."""
    cursor = db.execute(
        "SELECT pm.post_id, pm.role, pm.position, pm.source_url, pm.cause, pm.error, pm.updated_at "
        "FROM post_media pm JOIN posts p USING (platform, post_id) WHERE p.account_id=? AND pm.sha256 IS NULL "
        "ORDER BY pm.updated_at, pm.post_id, pm.role, pm.position", [account_id])
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def archive_holds(db, account_id: str) -> dict[str, int]:
    """What the archive holds for one account (also the numbers an alert quotes)."""

    def one(sql):
        return db.execute(sql, [account_id]).fetchone()[0]

    return {
        "posts": one("SELECT count(*) FROM posts WHERE account_id=?"),
        "posts_deleted_on_platform": one("SELECT count(*) FROM posts WHERE account_id=? AND deleted_at IS NOT NULL"),
        "media_files": one(
            "SELECT count(DISTINCT pm.sha256) FROM post_media pm JOIN posts p USING (platform, post_id) "
            "WHERE p.account_id=? AND pm.sha256 IS NOT NULL"),
        "media_missing": one(
            "SELECT count(*) FROM post_media pm JOIN posts p USING (platform, post_id) "
            "WHERE p.account_id=? AND pm.sha256 IS NULL"),
        "comments": one("SELECT count(*) FROM comments WHERE account_id=?"),
        "followers": one("SELECT count(*) FROM follows WHERE account_id=? AND kind='followers' AND ended_at IS NULL"),
        "following": one("SELECT count(*) FROM follows WHERE account_id=? AND kind='following' AND ended_at IS NULL"),
        "friends": one("SELECT count(*) FROM follows WHERE account_id=? AND kind='friends' AND ended_at IS NULL"),
        "invitations_received": one("SELECT count(*) FROM follows WHERE account_id=? "
                                    "AND kind='invitations_received' AND ended_at IS NULL"),
        "invitations_sent": one("SELECT count(*) FROM follows WHERE account_id=? "
                                "AND kind='invitations_sent' AND ended_at IS NULL"),
        # Items a platform listed that could not be archived (kept raw; see the run's errors).
        "items_not_archived": one("SELECT count(*) FROM unmapped_items WHERE account_id=?"),
    }


def export_age(platform: str, newest_imported_at: str | None, max_age_days: int, *, now=None,
               options: dict | None = None, api_ok_at: str | None = None) -> dict:
    """For a platform whose followers come only from a manual export: how old the newest
    imported one is, and the steps to request a new one when it is too old (or missing).
    ``options``: the account's connector keys, when the answer depends on the account;
    ``api_ok_at``: when its last API export succeeded (Connector.export_needless_after_api_run)."""
    import datetime as dt

    from archiver.connector import installed_connectors

    cls = installed_connectors().get(platform)
    steps = getattr(cls, "manual_export_steps", "") if cls else ""
    holds = cls.export_only_holds_for(options or {}) if cls else ""
    if not steps or not holds:
        return {"manual": False}
    now = now or dt.datetime.now(dt.timezone.utc)
    if (getattr(cls, "export_needless_after_api_run", False) and api_ok_at
            and (now - parse_utc(api_ok_at)).total_seconds() <= max_age_days * 86400):
        return {"manual": False}
    age_days = None
    if newest_imported_at:
        age_days = (now - parse_utc(newest_imported_at)).total_seconds() / 86400
    too_old = age_days is None or age_days > max_age_days
    return {
        "manual": True,
        "newest_imported_at": newest_imported_at,
        "age_days": None if age_days is None else int(age_days),
        "max_age_days": max_age_days,
        "too_old": too_old,
        "steps": steps if too_old else None,
        "holds": holds,
    }


def last_api_export_ok(db, account_id: str) -> str | None:
    """When the account's last API export (not an import) ended well, or None."""
    return db.execute("SELECT max(ended_at) FROM runs WHERE account_id=? AND kind='export' AND status='ok'",
                      [account_id]).fetchone()[0]


def authorization_expiry(db, account_id: str) -> dict | None:
    """When the account's authorization runs out for good and what renews it, as its last
    run was told by its connector (SyncContext.authorization_expires), or None."""
    from archiver.sync.runner import AUTHORIZATION_STATE

    row = db.execute("SELECT state FROM sync_state WHERE account_id=? AND stream=?",
                     [account_id, AUTHORIZATION_STATE]).fetchone()
    state = json.loads(row[0]) if row and row[0] else None
    return state if isinstance(state, dict) and state.get("expires_at") else None


def api_budget(db, account_id: str, *, now=None) -> str | None:
    """What is left of a platform's daily request budget (archiver.net.budget), in words,
    for a connector that keeps one; None otherwise."""
    from archiver.net.budget import STATE_STREAM, left_today

    row = db.execute("SELECT state FROM sync_state WHERE account_id=? AND stream=?",
                     [account_id, STATE_STREAM]).fetchone()
    state = json.loads(row[0]) if row and row[0] else None
    epoch = now.timestamp() if hasattr(now, "timestamp") else None
    return left_today(state, now=epoch) if isinstance(state, dict) else None


def api_spend(db, account_id: str, *, now=None) -> str | None:
    """What a pay-per-use API has cost the account's runs (archiver.net.budget.RunBudget),
    in words; None for a connector that keeps no money budget."""
    from archiver.net.budget import SPEND_STREAM, spent_words

    row = db.execute("SELECT state FROM sync_state WHERE account_id=? AND stream=?",
                     [account_id, SPEND_STREAM]).fetchone()
    state = json.loads(row[0]) if row and row[0] else None
    epoch = now.timestamp() if hasattr(now, "timestamp") else None
    return spent_words(state, now=epoch) if isinstance(state, dict) else None


def open_alerts(db, account_id: str) -> list[dict]:
    cursor = db.execute("SELECT alert_id, kind, state, message, opened_at, updated_at, last_notified_at "
                        "FROM alerts WHERE account_id=? AND state='open' ORDER BY alert_id", [account_id])
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def parse_utc(text: str):
    """Our stored timestamps ("2026-11-19T03:10:00Z") -> an aware datetime."""
    import datetime as dt

    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _api_off(account) -> str | None:
    """Why the account's API runs are off (its platform's word), or None."""
    if account is None:
        return None
    from archiver.connector import api_off

    return api_off(account.platform, account.options) or None


def _next_run(account) -> str | None:
    """When the daemon runs this account next (nothing to say for an account not in the
    config, disabled, or whose API runs are off)."""
    if account is None or not account.enabled or _api_off(account):
        return None
    from archiver.ops.schedule import next_run_time

    try:
        moment = next_run_time(account)
    except Exception:  # status must never fail because of a schedule it only displays
        return None
    if moment is None:
        return None
    return moment.isoformat() if hasattr(moment, "isoformat") else str(moment)


def _full_listing_due_at(last_full: str | None, account) -> str | None:
    """When the daemon next lists everything: ``full_every_days`` after the last full
    listing. None for an account not in the config, or without a full listing yet (then
    the daemon's next run lists everything)."""
    import datetime as dt

    if account is None or last_full is None or not lists_everything(account.platform):
        return None
    due = parse_utc(last_full) + dt.timedelta(days=account.full_every_days)
    return due.strftime("%Y-%m-%dT%H:%M:%SZ")


def _run(db, sql, *params) -> dict | None:
    cursor = db.execute(sql, list(params))
    row = cursor.fetchone()
    if row is None:
        return None
    run = dict(zip([c[0] for c in cursor.description], row, strict=True))
    run["counts"] = json.loads(run["counts"])
    run["errors"] = json.loads(run["errors"])
    if run["status"] == "running" and not _process_alive(run["pid"]):
        # Shown as the next run will record it (status itself writes nothing).
        run["status"] = "interrupted"
        run["message"] = run["message"] or ("the process ended before the run finished; "
                                            "the next run resumes from its checkpoint")
    run["summary"] = json.loads(run.get("summary") or "[]")
    return run


def open_folder_warning(folder) -> str | None:
    """A warning when other users of the machine may read, list or change the archive
    folder: it existed before `archiver init` (mkdir's private mode applies only to a new
    folder), or someone widened it. Names the folder and the command that fixes it."""
    import os
    import shlex
    import stat

    try:
        mode = stat.S_IMODE(os.stat(folder).st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return (f"warning: the archive folder {folder} is open to other users (mode {mode:04o}); "
            f"make it private to you: chmod 700 {shlex.quote(str(folder))}")


def _process_alive(pid) -> bool:
    from archiver.sync.runner import process_alive

    return bool(pid) and process_alive(pid)


# What the status shows only when the archive holds some: lists only some platforms have.
WHERE_A_PLATFORM_HAS_THEM = ("friends", "invitations_received", "invitations_sent")


def _list_nouns(platform: str) -> dict[str, str]:
    from archiver.connector import installed_connectors

    return getattr(installed_connectors().get(platform), "list_nouns", {})


def render_status(rows: list[dict], *, errors: dict[str, list[dict]] | None = None) -> str:
    """The status as text. ``errors``: account -> its holes (media_hole_list), to list
    every error of the last run and every missing file (`archiver status --errors`)."""
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
            for line in run.get("summary") or []:   # what the run said beside its counts
                lines.append(f"  summary:    {line}")
            # Files are summarized by cause above; listed one by one only with --errors.
            shown = run["errors"] if errors is not None else [e for e in run["errors"] if not e.get("cause")]
            limit = None if errors is not None else 5
            for error in shown[:limit]:
                lines.append(f"  failed:     {error['item']}: {error['error']}")
            if limit is not None and len(shown) > limit:
                lines.append(f"  failed:     … and {len(shown) - limit} more (`archiver status --errors`)")
        else:
            lines.append("  last run:   never")
        lines.append(f"  last success: {row['last_successful_run_at'] or 'never'}")
        if row["configured"]:
            lines.append(f"  next run:   {row.get('next_run') or '—'}")
        if row.get("api_off"):
            lines.append(f"  API runs:   off — {row['api_off']}")
        last_full = row.get("last_full_listing_at")
        due = row.get("full_listing_due_at")
        if not lists_everything(row["platform"]):
            lines.append("  last full listing: none on this platform (its API cannot list everything; "
                         "deleted posts are known from its exports)")
        else:
            lines.append(f"  last full listing: {last_full or 'never'}"
                         + (f" (next one due {due})" if due else " (the daemon's next run lists everything)"
                            if row["configured"] and not row.get("api_off") else ""))
        holds = row["archive_holds"]
        nouns = _list_nouns(row["platform"])
        lines.append("  archive:    " + ", ".join(f"{v} {nouns.get(k, k).replace('_', ' ')}" for k, v in holds.items()
                                                  if v or k not in WHERE_A_PLATFORM_HAS_THEM))
        unmatched = row.get("unmatched_export_posts") or {"count": 0}
        if unmatched["count"]:
            lines.append(f"  unmatched:  {unmatched['count']} export post(s) without id that no API post matched "
                         "(same time within 2 minutes and the same caption); deleted on the platform, or edited:")
            for post in unmatched["posts"]:
                caption = (post["caption"] or "").replace("\n", " ")
                caption = caption if len(caption) <= 50 else caption[:49] + "…"
                lines.append(f"              {post['created_at']} {caption!r} ({post['post_id']})")
            if unmatched["count"] > len(unmatched["posts"]):
                lines.append(f"              … and {unmatched['count'] - len(unmatched['posts'])} more")
        holes = row.get("media_holes") or {}
        if holes:
            total = sum(holes.values())
            by_cause = ", ".join(f"{n} {cause}" for cause, n in holes.items())
            lines.append(f"  holes:      {total} file{'s' if total != 1 else ''} without their media ({by_cause})"
                         + ("" if errors is not None else "; `archiver status --errors` lists them"))
        for hole in (errors or {}).get(row["account"], []):
            where = f" ({hole['source_url']})" if hole["source_url"] else ""
            lines.append(f"  hole:       {hole['role']} {hole['position']} of {hole['post_id']}{where}: "
                         f"{hole['error'] or hole['cause'] or 'not downloaded'}")
        if row.get("authorization_expires_at"):
            lines.append(f"  authorization runs out: {row['authorization_expires_at']} (archiver cannot renew it; "
                         "authorize again before then)")
        if row.get("api_budget"):
            lines.append(f"  API budget: {row['api_budget']}")
        if row.get("api_spend"):
            lines.append(f"  API spend:  {row['api_spend']}")
        lines.append(f"  newest export imported: {row['newest_export_imported_at'] or 'none'}")
        for entry in row.get("imports_with_holes") or []:
            lines.append(f"  incomplete: {entry['holes']} file(s) of {entry['file_name']} (imported "
                         f"{entry['imported_at']}) could not be stored; `archiver import --retry-failed` tries them again")
        export = row.get("export") or {}
        if export.get("manual"):
            age = export["age_days"]
            lines.append("  export age: " + ("no export imported yet" if age is None else
                                              f"{age} day{'s' if age != 1 else ''}")
                         + f" (remind after {export['max_age_days']})")
            if export["too_old"]:
                lines.append(f"  reminder:   {export['holds']} come only from an export; request a new one. "
                             f"{export['steps']}")
        for alert in row.get("open_alerts") or []:
            if alert["kind"] == "export_old" and export.get("too_old"):
                continue  # the reminder line above says the same
            lines.append(f"  ALERT:      {alert['kind']} since {alert['opened_at']}: {alert['message']}")
    return "\n".join(lines)


def verify_archive(archive: Archive, echo: Callable[[str], None] = print) -> int:
    """Integrity check + every media file re-hashed against its name and the media table."""
    from archiver.archive.media import MediaStore
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
    damaged: set[str] = set()
    for path, problem in store.verify():
        problems += 1
        damaged.add(path)
        echo(f"media: {path}: {problem}")
    checked = 0
    passed: list[str] = []
    for sha256, path in db.execute("SELECT sha256, path FROM media").fetchall():
        checked += 1
        if not (archive.media_root / path).exists():
            problems += 1
            echo(f"media: {path} (sha256 {sha256}) is recorded but missing from {archive.media_root}")
        elif path not in damaged:
            passed.append(sha256)
    # verified_at says "this file was re-hashed and matched": a damaged or missing file
    # keeps the date it last passed.
    verified_at = now_utc()
    with archive.writing():
        db.conn.executemany("UPDATE media SET verified_at=? WHERE sha256=?", [(verified_at, s) for s in passed])
    echo(f"media: {checked} files checked, {problems} problem(s)")
    return problems
