"""Speak up when an account is in danger, once per change of state.

The daemon calls two functions; both are cheap and safe to call as often as it likes:

* ``after_run(ws, account, result)`` after each run of an account;
* ``periodic(ws)`` every few minutes: time-based rules (a platform unreachable for too
  long, a manual export grown old, "still gone one more day") and a retry of notices that
  no channel could deliver last time.

Both decide from the archive itself (the ``runs`` and ``imports`` tables), so a restart
loses nothing, and both return the notices they delivered.

The rules, per configured account (thresholds from ``[alerts]`` in the config):

* ``gone``        the platform refused the authorization even after a token refresh
                  (failure kind ``auth``), or answered "not found" (``gone``), or says the
                  account is suspended: raised at once.
* ``failing``     ``failed_runs`` runs in a row failed (for any other reason).
* ``unreachable`` the latest run failed to reach the platform (``transport``, ``timeout``
                  or ``server`` failures) and the last successful run is more than
                  ``unreachable_hours`` ago.
* ``export_old``  something comes only from a manual export (the connector names it in
                  ``export_only_holds``, with ``manual_export_steps``) and the newest
                  imported one is older than ``export_max_age_days``, or there is none.

* ``auth_expiring`` the account's authorization runs out for good within ``auth_expiry_days``
                  (a token archiver cannot renew, as its connector told the last run:
                  SyncContext.authorization_expires); resolved once a later run knows a
                  later end, or none.

* ``deletions_held`` a complete full listing no longer listed more than ``max_deleted_percent``
                  of the account's posts: nothing was marked deleted (archiver.sync.listing opens it;
                  a later full listing within the limit resolves it).

A successful run resolves the account's open gone / failing / unreachable alerts (a
"recovered" notice); a newer export resolves ``export_old``.

Each alert remembers in ``notified_state`` what was last delivered: "open", then for a
gone account "open+1d", "open+2d" … (one reminder per extra day), and "resolved". A
notice is sent only when the state it should be in differs from that: once per change.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
from typing import Any

from archiver.archive.alerts import open_alert, resolve_alert
from archiver.config import AccountConfig

log = logging.getLogger("archiver.ops.alerts")

GONE_KINDS = {"auth", "gone"}
UNREACHABLE_KINDS = {"transport", "timeout", "server"}
ACCOUNT_ALERT_KINDS = ("failing", "gone", "unreachable")   # resolved by a successful run
EXPORT_ALERT = "export_old"
AUTH_EXPIRY_ALERT = "auth_expiring"
# Platforms word a suspension differently; any of these in a failed run's message counts.
SUSPENDED = re.compile(r"\b(suspended|banned|deactivated|disabled account|account (?:is )?disabled)\b", re.I)
# A resolved alert whose notice could not be delivered is retried this long, then dropped.
RESOLVED_RETRY_DAYS = 7

# The daemon may call us from several threads (one per running account): one evaluation
# and its notices at a time, so that an alert is never opened or sent twice.
_lock = threading.RLock()


# -- the API the daemon calls -------------------------------------------------------------


def after_run(ws, account: AccountConfig, result: dict, *, now: dt.datetime | None = None) -> list[dict]:
    """Evaluate ``account`` after a run whose summary is ``result`` (from run_export or
    run_import) and send what is due. Returns the notices delivered."""
    with _lock:
        now = _utc(now)
        run_id, kind = result.get("run_id"), result.get("failure_kind")
        if run_id is not None and kind:
            # A result from an older runner may carry the kind without the runs row having it.
            with ws.archive.writing() as db:
                db.execute("UPDATE runs SET failure_kind=coalesce(failure_kind, ?) WHERE run_id=?", [kind, run_id])
        evaluate_account(ws, account, now=now)
        return notify_due(ws, now=now, account_id=account.account_id)


def periodic(ws, *, now: dt.datetime | None = None) -> list[dict]:
    """Time-based rules for every enabled account, then every notice that is due."""
    with _lock:
        now = _utc(now)
        for account in ws.config.accounts:
            if account.enabled:
                evaluate_account(ws, account, now=now)
        return notify_due(ws, now=now)


# -- deciding -----------------------------------------------------------------------------


def evaluate_account(ws, account: AccountConfig, *, now: dt.datetime) -> None:
    """Open, update or resolve the account's alerts from what the archive says."""
    db = ws.archive.db
    account_id = account.account_id
    facts = _run_facts(db, account_id)
    latest = facts["latest"]
    with ws.archive.writing():
        if latest is not None and latest["status"] == "ok":
            for kind in ACCOUNT_ALERT_KINDS:
                resolve_alert(db, account_id, kind, now,
                              f"{_label(db, account)} recovered: run #{latest['run_id']} completed at "
                              f"{_show_time(latest['ended_at'])}. {_safe(db, account, facts)}",
                              {"resolved_by_run": latest["run_id"]})
        elif latest is not None:
            _evaluate_failure(db, ws.config.alerts, account, facts, now)
        _evaluate_export(db, ws.config.alerts, account, now)
        _evaluate_authorization(db, ws.config.alerts, account, now)


def _run_facts(db, account_id: str) -> dict:
    """The account's latest finished run, its last successful one, and the failed runs since.
    Imports are left out (a broken export file says nothing about the account), and so are
    interrupted runs (stopped by the user or a shutdown, not by the platform)."""
    columns = "run_id, status, started_at, ended_at, message, failure_kind"
    finished = "account_id=? AND kind != 'import' AND status IN ('ok', 'failed')"

    def rows(sql, *params):
        cursor = db.execute(sql, [account_id, *params])
        return [dict(zip([c[0] for c in cursor.description], row, strict=True)) for row in cursor.fetchall()]

    latest = rows(f"SELECT {columns} FROM runs WHERE {finished} ORDER BY run_id DESC LIMIT 1")
    last_ok = rows(f"SELECT {columns} FROM runs WHERE {finished} AND status='ok' ORDER BY run_id DESC LIMIT 1")
    failures = rows(f"SELECT {columns} FROM runs WHERE {finished} AND status='failed' AND run_id > ? "
                    "ORDER BY run_id", last_ok[0]["run_id"] if last_ok else 0)
    return {"latest": latest[0] if latest else None, "last_ok": last_ok[0] if last_ok else None,
            "failures": failures}


def _evaluate_failure(db, settings, account: AccountConfig, facts: dict, now: dt.datetime) -> None:
    latest, failures = facts["latest"], facts["failures"]
    label, safe = _label(db, account), _safe(db, account, facts)
    since = _show_time(failures[0]["started_at"])
    details = {"run_id": latest["run_id"], "failure_kind": latest["failure_kind"],
               "failed_runs": len(failures), "run_message": latest["message"]}
    title = _title(account.platform)
    gone = latest["failure_kind"] in GONE_KINDS or bool(SUSPENDED.search(latest["message"] or ""))
    if gone:
        if latest["failure_kind"] == "auth":
            message = (f"{label}: {title} refuses archiver's authorization even after a token refresh "
                       f"(revoked, expired, or the account is gone or suspended) since {since}. If you still "
                       f"have the account, run `archiver auth {account.platform} --account {account.name}` "
                       f"again. {safe}")
        else:
            message = (f"{label}: {title} answers as if the account were gone (not found or suspended) "
                       f"since {since}: {latest['message']}. {safe}")
        open_alert(db, account.account_id, "gone", now, message, details)
    elif len(failures) >= settings.failed_runs:
        open_alert(db, account.account_id, "failing", now,
                   f"{label}: the last {len(failures)} runs failed (since {since}; latest: {latest['message']}). {safe}",
                   details)
    if latest["failure_kind"] in UNREACHABLE_KINDS:
        reference = facts["last_ok"]["ended_at"] if facts["last_ok"] else failures[0]["started_at"]
        hours = (now - _parse(reference)).total_seconds() / 3600
        if hours > settings.unreachable_hours:
            open_alert(db, account.account_id, "unreachable", now,
                       f"{label} unreachable since {since}; {_lower_first(safe)}",
                       {**details, "hours_since_last_success": round(hours, 1)})


def _evaluate_export(db, settings, account: AccountConfig, now: dt.datetime) -> None:
    from archiver.ops.status import export_age, last_api_export_ok

    newest = db.execute("SELECT max(imported_at) FROM imports WHERE account_id=?",
                        [account.account_id]).fetchone()[0]
    api_ok_at = last_api_export_ok(db, account.account_id)
    export = export_age(account.platform, newest, settings.export_max_age_days, now=now, options=account.options,
                        api_ok_at=api_ok_at)
    if not export["manual"]:
        if api_ok_at:   # the API reads it all now (LinkedIn in the EEA): no reminder is due
            resolve_alert(db, account.account_id, EXPORT_ALERT, now,
                          f"{_label(db, account)}: the API export of {_show_time(api_ok_at)} read what the "
                          "export holds; the reminder is cleared.", {"api_ok_at": api_ok_at})
        return
    label, title = _label(db, account), _title(account.platform)
    if export["too_old"]:
        age = ("no export has been imported yet" if newest is None else
               f"the newest export was imported {export['age_days']} days ago ({_show_time(newest)})")
        open_alert(db, account.account_id, EXPORT_ALERT, now,
                   f"{label}: {age}. {export['holds'][:1].upper() + export['holds'][1:]} come only from {title}'s "
                   "own export; request a new "
                   f"one: {export['steps']}",
                   {"newest_imported_at": newest, "age_days": export["age_days"],
                    "max_age_days": settings.export_max_age_days, "steps": export["steps"]})
    else:
        resolve_alert(db, account.account_id, EXPORT_ALERT, now,
                      f"{label}: a new export was imported on {_show_time(newest)}; the reminder is cleared.",
                      {"newest_imported_at": newest})


def _evaluate_authorization(db, settings, account: AccountConfig, now: dt.datetime) -> None:
    from archiver.ops.status import authorization_expiry

    expiry = authorization_expiry(db, account.account_id) or {}
    label = _label(db, account)
    ends = _parse(expiry["expires_at"]) if expiry.get("expires_at") else None
    if ends is not None and ends - now <= dt.timedelta(days=settings.auth_expiry_days):
        days = max(1, round((ends - now).total_seconds() / 86400))
        when = "has run out" if ends <= now else f"runs out in {days} day{'s' if days != 1 else ''}"
        renew = expiry.get("renew") or (f"run `archiver auth {account.platform} --account {account.name}` again")
        open_alert(db, account.account_id, AUTH_EXPIRY_ALERT, now,
                   f"{label}: its authorization {when} ({_show_time(expiry['expires_at'])}) and archiver cannot "
                   f"renew it: {renew}. Until then every run works as usual.",
                   {"expires_at": expiry["expires_at"], "days_left": days})
    else:
        resolve_alert(db, account.account_id, AUTH_EXPIRY_ALERT, now,
                      f"{label}: its authorization was renewed"
                      + (f"; it now runs until {_show_time(expiry['expires_at'])}." if ends else "."),
                      {"expires_at": expiry.get("expires_at")})


# -- sending ------------------------------------------------------------------------------


def due_state(alert: dict, now: dt.datetime) -> str:
    """What the user should last have been told about ``alert``."""
    if alert["state"] == "resolved":
        return "resolved"
    if alert["kind"] == "gone":
        days = int((now - _parse(alert["opened_at"])).total_seconds() // 86400)
        return "open" if days < 1 else f"open+{days}d"
    return "open"


def notify_due(ws, *, now: dt.datetime, account_id: str | None = None) -> list[dict]:
    """Send every alert whose due state differs from what was last delivered."""
    from archiver.ops.notify import configured_channels, send_notice

    if not configured_channels(ws.config.notify):
        return []  # nothing to send with; alerts stay in the archive and in `status`
    db = ws.archive.db
    oldest_resolved = _iso(now - dt.timedelta(days=RESOLVED_RETRY_DAYS))
    sql = ("SELECT * FROM alerts WHERE (state='open' OR (coalesce(notified_state, '') != 'resolved' "
           "AND resolved_at >= ?))")
    params: list[Any] = [oldest_resolved]
    if account_id is not None:
        sql += " AND account_id=?"
        params.append(account_id)
    cursor = db.execute(sql + " ORDER BY alert_id", params)
    alerts = [dict(zip([c[0] for c in cursor.description], row, strict=True)) for row in cursor.fetchall()]
    accounts = {a.account_id: a for a in ws.config.accounts}
    sent = []
    for alert in alerts:
        due = due_state(alert, now)
        if due == alert["notified_state"]:
            continue
        notice = build_notice(db, alert, due, accounts.get(alert["account_id"]))
        outcome = send_notice(ws.config.notify, notice, lambda: ws.secrets)
        if any(error is None for error in outcome.values()):
            with ws.archive.writing():
                db.execute("UPDATE alerts SET notified_state=?, last_notified_at=? WHERE alert_id=?",
                           [due, _iso(now), alert["alert_id"]])
            sent.append(notice)
        # else: every channel failed (and logged why); the next call tries again.
    return sent


def build_notice(db, alert: dict, due: str, account: AccountConfig | None = None) -> dict:
    """The JSON every channel receives (documented in README "Alerts")."""
    from archiver.ops.status import archive_holds

    account_id = alert["account_id"]
    platform, _, name = account_id.partition(":")
    details = json.loads(alert["details"] or "{}")
    if due == "resolved":
        notice_kind, message = "recovered", details.get("resolution") or alert["message"]
    elif due == "open":
        notice_kind, message = "opened", alert["message"]
    else:
        days = due.split("+", 1)[1].rstrip("d")
        notice_kind = "reminder"
        message = f"Still the case after {days} day{'s' if days != '1' else ''}: {alert['message']}"
    holds = archive_holds(db, account_id)
    last_ok = db.execute("SELECT max(ended_at) FROM runs WHERE account_id=? AND status='ok' AND kind != 'import'",
                         [account_id]).fetchone()[0]
    return {
        "alert_id": alert["alert_id"],
        "kind": alert["kind"],
        "state": alert["state"],
        "notice": notice_kind,
        "account": account_id,
        "platform": platform,
        "name": name,
        "username": _username(db, account_id),
        "message": message,
        "opened_at": alert["opened_at"],
        "updated_at": alert["updated_at"],
        "resolved_at": alert["resolved_at"],
        "details": details,
        "archive": {
            "posts": holds["posts"],
            "followers": holds["followers"],
            "following": holds["following"],
            "comments": holds["comments"],
            "media_files": holds["media_files"],
            "complete_as_of": last_ok,
        },
    }


# -- wording --------------------------------------------------------------------------------


def _connector_attribute(platform: str, name: str, default: str) -> str:
    from archiver.connector import installed_connectors

    cls = installed_connectors().get(platform)
    return getattr(cls, name, None) or default


def _title(platform: str) -> str:
    return _connector_attribute(platform, "title", platform)


def _username(db, account_id: str) -> str | None:
    row = db.execute("SELECT username FROM accounts WHERE account_id=?", [account_id]).fetchone()
    return row[0] if row and row[0] else None


def _label(db, account: AccountConfig) -> str:
    """"TikTok account @name" (the platform's handle when the archive knows it)."""
    username = _username(db, account.account_id)
    who = f"@{username}" if username else f"{account.name!r} (as named in the config)"
    return f"{_title(account.platform)} account {who}"


def _safe(db, account: AccountConfig, facts: dict) -> str:
    """What is safe: "Your archive is complete as of …: 142 videos, 10,234 followers, 48 comments."""
    from archiver.ops.status import archive_holds

    holds = archive_holds(db, account.account_id)
    noun = _connector_attribute(account.platform, "post_noun", "posts")
    counts = f"{holds['posts']:,} {noun}, {holds['followers']:,} followers, {holds['comments']:,} comments"
    last_ok = facts["last_ok"]
    if last_ok is None:
        return f"No run of this account has completed yet; your archive holds {counts}."
    return f"Your archive is complete as of {_show_time(last_ok['ended_at'])}: {counts}."


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _show_time(iso: str | None) -> str:
    return _parse(iso).strftime("%Y-%m-%d %H:%M UTC") if iso else "an unknown time"


def _parse(iso: str) -> dt.datetime:
    from archiver.ops.status import parse_utc

    return parse_utc(iso)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    return now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
