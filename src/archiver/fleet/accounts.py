"""The fleet's accounts, in PostgreSQL (``fleet_accounts``): what the [accounts.*] tables of a
config are for one user, for thousands of accounts of many tenants. `archiver fleet add` and
`archiver fleet import accounts.csv` write them; workers read them.

An account is checked the way the config checks one (its name, an installed platform, a
cron line the daemon's parser takes, a time zone that exists), so a bad one fails when it is
added, with what to fix, not at 3 a.m. in a worker.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archiver.config import AccountConfig
from archiver.fleet.db import FleetError

# A tenant and an account name become folder names (LocalArchives, browse): never "." or "..".
NAME = re.compile(r"(?!\.+$)[A-Za-z0-9_.-]+")
CSV_COLUMNS = ("tenant", "platform", "name", "schedule", "timezone", "enabled", "full_every_days", "options")
REQUIRED_COLUMNS = ("tenant", "platform", "name")
UPDATABLE_COLUMNS = ("schedule", "timezone", "enabled", "full_every_days", "options")
_COLUMNS = "id, tenant, platform, name, schedule, timezone, enabled, full_every_days, options, fence"


@dataclass
class FleetAccount:
    """One row of fleet_accounts. Has what ops.schedule reads of an account (ScheduledAccount)."""

    id: int
    tenant: str
    platform: str
    name: str
    schedule: str | None = None
    timezone: str | None = None
    enabled: bool = True
    full_every_days: int = 7
    options: dict[str, Any] = field(default_factory=dict)
    fence: int = 0

    @property
    def account_id(self) -> str:
        """The id inside its archive, as for a single user ("platform:name")."""
        return f"{self.platform}:{self.name}"

    def label(self) -> str:
        """How people name it: tenant/platform:name (also what --account accepts)."""
        return f"{self.tenant}/{self.platform}:{self.name}"

    def zone(self):
        """The schedule's time zone (None: the machine's local one, as the daemon)."""
        if not self.timezone:
            return None
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)

    def config(self) -> AccountConfig:
        """The account as a run sees it (archiver.sync.jobs.run_export takes an AccountConfig)."""
        options = dict(self.options)
        base_url = options.pop("base_url", None)   # a config table's own key, kept among the options here
        options.pop("app", None)                   # the fleet's: which app registration's limits the runs share
        return AccountConfig(name=self.name, platform=self.platform, base_url=base_url, schedule=self.schedule,
                             enabled=self.enabled, full_every_days=self.full_every_days, options=options)


def _row(row) -> FleetAccount:
    return FleetAccount(*row)


def check(tenant: str, platform: str, name: str, *, schedule: str | None = None, timezone: str | None = None,
          full_every_days: int = 7, options: dict | None = None, known_platforms: dict | None = None) -> str:
    """Raise FleetError naming what is wrong; returns the platform's canonical name."""
    from archiver.connector import canonical_platform, installed_connectors
    from archiver.ops.schedule import schedule_trigger

    for key, value in (("tenant", tenant), ("name", name)):
        if not value or not NAME.fullmatch(value):
            raise FleetError(f"{key} {value!r}: expected letters, digits, '-', '_' or '.' (not dots alone)")
    known = known_platforms if known_platforms is not None else installed_connectors()
    platform = canonical_platform(platform)
    if platform not in known:
        raise FleetError(f"platform {platform!r} is not installed; installed: {', '.join(sorted(known)) or 'none'}")
    if schedule:
        try:
            schedule_trigger(schedule)
        except ValueError as error:
            raise FleetError(f"schedule {schedule!r}: {error}") from None
    if timezone:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise FleetError(f"timezone {timezone!r}: not a time zone name such as \"Europe/Berlin\"") from None
    if full_every_days < 1:
        raise FleetError(f"full_every_days {full_every_days}: expected 1 or more")
    for key, value in (options or {}).items():
        if re.search(r"(secret|token|password|client_key)", key, re.I):
            raise FleetError(f"option {key!r}: secrets never go into the accounts table (see docs/fleet.md, secrets)")
        if _holds_nul(key) or _holds_nul(value):   # the options are jsonb, which cannot hold one
            raise FleetError(f"option {key!r}: holds a NUL character (\\u0000), which the database cannot store")
    return platform


def _holds_nul(value: Any) -> bool:
    """Whether a JSON value holds a NUL character in any of its strings (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def add(connection, tenant: str, platform: str, name: str, *, schedule: str | None = None,
        timezone: str | None = None, enabled: bool = True, full_every_days: int = 7, options: dict | None = None,
        replace: bool = False, columns: tuple[str, ...] = UPDATABLE_COLUMNS,
        known_platforms: dict | None = None) -> tuple[FleetAccount, bool]:
    """Add an account (or, with ``replace``, update the one of that tenant, platform and
    name: only its ``columns``, the others keep what they hold). Returns it and whether it
    was new. Commits."""
    platform = check(tenant, platform, name, schedule=schedule, timezone=timezone, full_every_days=full_every_days,
                     options=options, known_platforms=known_platforms)
    if replace:
        updates = [f"{column}=excluded.{column}" for column in UPDATABLE_COLUMNS if column in columns]
        # No column to update: a no-op update still returns the existing row (DO NOTHING returns none).
        conflict = "DO UPDATE SET " + (", ".join(updates) or "enabled=fleet_accounts.enabled")
    else:
        conflict = "DO NOTHING"
    row = connection.execute(
        f"INSERT INTO fleet_accounts (tenant, platform, name, schedule, timezone, enabled, full_every_days, options) "
        f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant, platform, name) {conflict} "
        f"RETURNING {_COLUMNS}, (xmax = 0)",
        [tenant, platform, name, schedule or None, timezone or None, enabled, full_every_days,
         json.dumps(options or {})]).fetchone()
    connection.commit()
    if row is None:
        raise FleetError(f"{tenant}/{platform}:{name} exists already (import replaces; add adds only)")
    return _row(row[:-1]), bool(row[-1])


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    problems: list[str] = field(default_factory=list)


def import_csv(connection, path: Path, *, known_platforms: dict | None = None) -> ImportResult:
    """Accounts from a CSV file with a header row: tenant, platform, name (required),
    schedule, timezone, enabled (true/false), full_every_days, options (a JSON object).
    Adds new accounts and updates existing ones (so importing the same file again changes
    nothing): only the columns the header names, a column it leaves out keeps what the
    account holds (a new account gets its default). A bad row is reported, with its line
    and what is wrong, and skipped."""
    import psycopg

    from archiver.connector import installed_connectors

    known = known_platforms if known_platforms is not None else installed_connectors()
    result = ImportResult()
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except OSError as error:
        raise FleetError(f"{path}: cannot read it: {error.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        header = [column.strip() for column in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        unknown = [c for c in header if c not in CSV_COLUMNS]
        if missing or unknown:
            raise FleetError(f"{path}: the header row must name the columns {', '.join(REQUIRED_COLUMNS)} "
                             f"(and optionally {', '.join(CSV_COLUMNS[3:])})"
                             + (f"; missing: {', '.join(missing)}" if missing else "")
                             + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        reader.fieldnames = header
        named = tuple(column for column in UPDATABLE_COLUMNS if column in header)
        try:
            for row in reader:
                where = f"{path}, line {reader.line_num}"
                try:
                    fields = _csv_fields(row)
                    _, new = add(connection, replace=True, columns=named, known_platforms=known, **fields)
                except FleetError as error:
                    connection.rollback()
                    result.problems.append(f"{where}: {error}; row skipped")
                    continue
                except psycopg.DataError as error:   # a value the checks let through and the database refused
                    connection.rollback()
                    reason = error.diag.message_primary or str(error).splitlines()[0]   # never the value itself
                    result.problems.append(f"{where}: the database refused a value ({reason}); "
                                           "row skipped")
                    continue
                if new:
                    result.added += 1
                else:
                    result.updated += 1
        except (csv.Error, UnicodeDecodeError) as error:
            result.problems.append(f"{path}, line {reader.line_num}: {error}; the rest of the file was not read")
    return result


def _csv_fields(row: dict[str, str | None]) -> dict[str, Any]:
    def text(key: str) -> str:
        return (row.get(key) or "").strip()

    fields: dict[str, Any] = {key: text(key) for key in ("tenant", "platform", "name", "schedule", "timezone")}
    enabled = text("enabled").lower()
    if enabled not in ("", "true", "false", "yes", "no", "1", "0"):
        raise FleetError(f"enabled {enabled!r}: expected true or false")
    fields["enabled"] = enabled not in ("false", "no", "0")
    days = text("full_every_days")
    if days and not (re.fullmatch(r"[0-9]{1,5}", days) and int(days) >= 1):   # isdigit() takes "²" too
        raise FleetError(f"full_every_days {days!r}: expected a whole number of days, 1 or more")
    fields["full_every_days"] = int(days) if days else 7
    options = text("options")
    if options:
        try:
            fields["options"] = json.loads(options)
        except ValueError:
            raise FleetError("options: expected a JSON object, e.g. {\"instance\": \"mastodon.social\"}") from None
        if not isinstance(fields["options"], dict):
            raise FleetError("options: expected a JSON object, e.g. {\"instance\": \"mastodon.social\"}")
    return fields


def get(connection, account_id: int) -> FleetAccount | None:
    row = connection.execute(f"SELECT {_COLUMNS} FROM fleet_accounts WHERE id = %s", [account_id]).fetchone()
    return _row(row) if row else None


def find(connection, reference: str) -> FleetAccount:
    """An account by its number or by tenant/platform:name; FleetError when none."""
    if re.fullmatch(r"[0-9]{1,18}", reference):
        found = get(connection, int(reference))
    else:
        tenant, _, rest = reference.partition("/")
        platform, _, name = rest.partition(":")
        row = connection.execute(f"SELECT {_COLUMNS} FROM fleet_accounts WHERE tenant=%s AND platform=%s AND name=%s",
                                 [tenant, platform, name]).fetchone()
        found = _row(row) if row else None
    if found is None:
        raise FleetError(f"no fleet account {reference!r}: give its number or tenant/platform:name "
                         "(`archiver fleet accounts` lists them)")
    return found


def load(connection, *, enabled_only: bool = False) -> list[FleetAccount]:
    where = " WHERE enabled" if enabled_only else ""
    return [_row(row) for row in connection.execute(f"SELECT {_COLUMNS} FROM fleet_accounts{where} ORDER BY id")]


def listing(connection, *, tenant: str | None = None, platform: str | None = None) -> list[dict[str, Any]]:
    """`archiver fleet accounts`: each account (of ``tenant``, on ``platform``) with its last
    run — the latest attempt at its latest scheduled time — or None when it never ran."""
    from archiver.connector import canonical_platform

    where, values = [], []
    if tenant is not None:
        where.append("a.tenant = %s")
        values.append(tenant)
    if platform is not None:
        where.append("a.platform = %s")
        values.append(canonical_platform(platform))
    rows = connection.execute(
        f"SELECT {', '.join('a.' + column for column in _COLUMNS.split(', '))}, "
        "r.status, r.scheduled_for, r.started_at, r.ended_at FROM fleet_accounts a "
        "LEFT JOIN LATERAL (SELECT status, scheduled_for, started_at, ended_at FROM fleet_runs "
        "                   WHERE account_id = a.id ORDER BY scheduled_for DESC, id DESC LIMIT 1) r ON true"
        + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY a.id", values)
    listed = []
    for row in rows:
        account = _row(row[:10])
        status, scheduled_for, started_at, ended_at = row[10:]
        listed.append({
            "id": account.id, "account": account.label(), "tenant": account.tenant, "platform": account.platform,
            "name": account.name, "schedule": account.schedule, "timezone": account.timezone,
            "enabled": account.enabled, "full_every_days": account.full_every_days,
            "last_run": None if status is None else {
                "status": status, "scheduled_for": scheduled_for.isoformat(), "started_at": started_at.isoformat(),
                "ended_at": ended_at.isoformat() if ended_at else None}})
    return listed


def listing_lines(listed: list[dict[str, Any]]) -> list[str]:
    """The listing as a table for people. A schedule left to the default shows the nightly
    minute it falls on; the last run, its status and when it started (UTC)."""
    import datetime as dt

    from archiver.ops.schedule import default_schedule

    rows = [("id", "account", "schedule", "timezone", "enabled", "last run")]
    for item in listed:
        run = item["last_run"]
        started = (dt.datetime.fromisoformat(run["started_at"]).astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                   if run else "")
        schedule = item["schedule"] or default_schedule(FleetAccount(item["id"], item["tenant"], item["platform"],
                                                                     item["name"])) + " (nightly)"
        rows.append((str(item["id"]), item["account"], schedule, item["timezone"] or "-",
                     "yes" if item["enabled"] else "no", f"{run['status']} {started}" if run else "never"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    if len(rows) == 1:
        lines.append("no accounts: `archiver fleet add` or `archiver fleet import accounts.csv` (or another --tenant)")
    return lines
