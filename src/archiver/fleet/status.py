"""`archiver fleet status`: the fleet at a glance, per tenant and platform — accounts, done
for their last scheduled time, running, failed, overdue, queued — and the workers whose
heartbeat stopped (their jobs go back to the queue; see tasks.retry_stalled).

Below the table: per platform, what the shared limiter let through and made wait
(fleet/limiter.py), and each project's daily quota left today.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from archiver.fleet import accounts as fleet_accounts
from archiver.fleet import ledger

OVERDUE_AFTER = dt.timedelta(hours=1)   # no success this long after its scheduled time: overdue


@dataclass
class GroupStatus:
    tenant: str
    platform: str
    accounts: int = 0
    done: int = 0          # a successful run for their last scheduled time
    running: int = 0
    failed: int = 0        # their last scheduled time's last run failed
    overdue: int = 0       # not done, scheduled more than OVERDUE_AFTER ago
    queued: int = 0        # a run job waiting in the queue
    disabled: int = 0


@dataclass
class FleetStatus:
    now: str
    groups: list[GroupStatus] = field(default_factory=list)
    stalled_workers: int = 0        # Procrastinate workers whose heartbeat stopped
    stalled_jobs: int = 0           # jobs 'doing' on such workers (going back to the queue)
    silent_runs: list[str] = field(default_factory=list)   # ledger runs whose heartbeat stopped
    limits: list[dict] = field(default_factory=list)       # per platform: requests, waits, 429s (limiter)
    quotas: list[dict] = field(default_factory=list)       # per project: today's spent, budget, left

    def as_dict(self) -> dict:
        return asdict(self)


def fleet_status(connection, now: dt.datetime, *, stalled_after: float = 20.0) -> FleetStatus:
    from archiver.fleet.dispatch import RUN_TASK, LatestFireTimes

    latest_fire_time = LatestFireTimes(now)
    status = FleetStatus(now=now.isoformat(timespec="seconds"))
    groups: dict[tuple[str, str], GroupStatus] = {}
    last_run = {row[0]: row[1:] for row in connection.execute(
        "SELECT DISTINCT ON (account_id) account_id, scheduled_for, status FROM fleet_runs "
        "ORDER BY account_id, scheduled_for DESC, id DESC")}
    ok_slot = {row[0]: row[1] for row in connection.execute(
        "SELECT account_id, max(scheduled_for) FROM fleet_runs WHERE status = 'ok' GROUP BY account_id")}
    queued = {row[0] for row in connection.execute(
        "SELECT (args->>'account')::bigint FROM procrastinate_jobs WHERE task_name = %s AND status = 'todo'",
        [RUN_TASK])}
    for account in fleet_accounts.load(connection):
        group = groups.setdefault((account.tenant, account.platform), GroupStatus(account.tenant, account.platform))
        group.accounts += 1
        if not account.enabled:
            group.disabled += 1
            continue
        slot = latest_fire_time(account)
        done = account.id in ok_slot and (slot is None or ok_slot[account.id] >= slot)
        last = last_run.get(account.id)
        group.done += done
        group.running += bool(last and last[1] == "running")
        group.failed += bool(not done and last and last[1] == "failed")
        group.overdue += bool(not done and slot is not None and now - slot > OVERDUE_AFTER)
        group.queued += account.id in queued
    status.groups = [groups[key] for key in sorted(groups)]
    status.stalled_workers = connection.execute(
        "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat < now() - make_interval(secs => %s)",
        [stalled_after]).fetchone()[0]
    status.stalled_jobs = connection.execute(
        "SELECT count(*) FROM procrastinate_jobs j LEFT JOIN procrastinate_workers w ON w.id = j.worker_id "
        "WHERE j.status = 'doing' AND (w.id IS NULL OR w.last_heartbeat < now() - make_interval(secs => %s))",
        [stalled_after]).fetchone()[0]
    status.silent_runs = [f"run {row[0]} of {row[1]}/{row[2]}:{row[3]} on {row[4]}, silent {row[5]:.0f} s"
                          for row in connection.execute(
        "SELECT r.id, a.tenant, a.platform, a.name, r.worker, extract(epoch FROM now() - r.heartbeat_at) "
        "FROM fleet_runs r JOIN fleet_accounts a ON a.id = r.account_id "
        "WHERE r.status = 'running' AND r.heartbeat_at < now() - make_interval(secs => %s) ORDER BY r.id",
        [ledger.STALE_SECONDS])]
    from archiver.fleet.limiter import limiter_status, quota_status

    status.limits = [{**row, "blocked_until": row["blocked_until"] and float(row["blocked_until"])}
                     for row in limiter_status(connection)]
    status.quotas = quota_status(connection)
    return status


def status_lines(status: FleetStatus) -> list[str]:
    """The status as a table for people."""
    header = ("tenant", "platform", "accounts", "done", "running", "failed", "overdue", "queued", "disabled")
    rows = [header] + [(g.tenant, g.platform, *(str(getattr(g, k)) for k in header[2:])) for g in status.groups]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    if len(rows) == 1:
        lines.append("no accounts yet: `archiver fleet add` or `archiver fleet import accounts.csv`")
    lines.append(f"stalled workers: {status.stalled_workers} (their jobs going back to the queue: {status.stalled_jobs})")
    lines.extend(f"silent: {line}" for line in status.silent_runs)
    for limit in status.limits:
        lines.append(f"limiter {limit['platform']}: {limit['requests']} requests, {limit['waits']} waited "
                     f"({limit['waited_seconds']:.0f} s in all), {limit['throttled']} answered 429")
    for quota in status.quotas:
        lines.append(f"quota {quota['project']} on {quota['day']}: {quota['left']} of {quota['budget']} left")
    return lines
