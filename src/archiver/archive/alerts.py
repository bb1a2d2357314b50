"""The ``alerts`` table: at most one open alert per account and kind.

Opening and resolving an alert is a write to the archive like any other, done inside
the caller's transaction: archiver.ops.alerts opens and resolves alerts by its rules
(failed runs, an old export, ...), archiver.sync.listing when a full listing would mark
too much deleted. Who is told, and when, is archiver.ops.alerts' part (``notified_state``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging

# The same logger as the rules that decide: one name for alerts in the daemon's log.
log = logging.getLogger("archiver.ops.alerts")


def open_alert(db, account_id: str, kind: str, now: dt.datetime, message: str, details: dict) -> None:
    """Open the alert, or refresh the text of the one already open (not re-sent for that)."""
    stamp = _iso(now)
    details_json = json.dumps(details, sort_keys=True)
    row = db.execute("SELECT alert_id, message, details FROM alerts WHERE account_id=? AND kind=? AND state='open'",
                     [account_id, kind]).fetchone()
    if row is None:
        db.execute("INSERT INTO alerts (account_id, kind, state, message, details, opened_at, updated_at) "
                   "VALUES (?, ?, 'open', ?, ?, ?, ?)", [account_id, kind, message, details_json, stamp, stamp])
        log.warning("alert opened: %s", message)
    elif (row[1], row[2]) != (message, details_json):
        db.execute("UPDATE alerts SET message=?, details=?, updated_at=? WHERE alert_id=?",
                   [message, details_json, stamp, row[0]])


def resolve_alert(db, account_id: str, kind: str, now: dt.datetime, resolution: str, details: dict | None = None) -> None:
    """Close the open alert of that kind, if any. Its message stays (what happened); how it
    ended goes into details["resolution"]."""
    row = db.execute("SELECT alert_id, details FROM alerts WHERE account_id=? AND kind=? AND state='open'",
                     [account_id, kind]).fetchone()
    if row is None:
        return
    merged = {**json.loads(row[1] or "{}"), **(details or {}), "resolution": resolution}
    db.execute("UPDATE alerts SET state='resolved', resolved_at=?, updated_at=?, details=? WHERE alert_id=?",
               [_iso(now), _iso(now), json.dumps(merged, sort_keys=True), row[0]])
    log.info("alert resolved: %s", resolution)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
