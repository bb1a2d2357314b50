"""The run ledger (``fleet_runs``): which runs of which account started, for which scheduled
time, and how they ended. It is what makes "exactly one successful run per account per
scheduled time" hold whatever the queue does:

- a job checks the ledger first: its scheduled time done already (a duplicate delivery, a
  second trigger) -> it does nothing (``SlotDone``);
- another run of the account still beats its heartbeat -> this one waits (``AccountBusy``);
- a 'running' row whose heartbeat stopped is a dead or cut-off worker's: it is marked
  interrupted, and the account's fencing counter goes up, so that worker — should it wake —
  can neither record its run nor move the archive (see ``heartbeat`` and ``finish_run``).

Liveness is the heartbeat in PostgreSQL, one clock for every machine, never a process id
(a pid means nothing on another machine, or in another container).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

HEARTBEAT_SECONDS = 5       # how often a running job refreshes its row
STALE_SECONDS = 30          # a 'running' row not refreshed this long is a dead worker's
MAX_ATTEMPTS_PER_SLOT = 3   # failed runs of one scheduled time before it waits for the next one
RETRY_AFTER = dt.timedelta(minutes=10)   # after a failed run, times the number of failures so far


class SlotDone(Exception):
    """This scheduled time of the account has its successful run already."""


class AccountBusy(Exception):
    """Another run of the account is alive (its heartbeat is fresh)."""


class TryLater(Exception):
    """The run could not go on for now (the shared rate limit's next slot is far away): its
    job tries again after ``seconds``."""

    def __init__(self, message: str, seconds: float):
        super().__init__(message)
        self.seconds = seconds


class SlotNotDue(Exception):
    """This scheduled time failed recently (tried again RETRY_AFTER × failures after the
    last failure) or MAX_ATTEMPTS_PER_SLOT times already (it waits for the next fire time)."""


@dataclass(frozen=True)
class RunTicket:
    """A started run: its ledger row and the fencing counter it holds."""

    run_id: int
    account_id: int
    scheduled_for: dt.datetime
    fence: int


def start_run(connection, account_id: int, scheduled_for: dt.datetime, *, job_id: int | None, worker: str,
              full: bool = False, stale_seconds: float = STALE_SECONDS) -> RunTicket:
    """Record a run's start, in one transaction serialized on the account's row. Raises
    SlotDone, SlotNotDue or AccountBusy (nothing recorded then).

    The retry rule is checked here as well as in dispatch: a job queued while an earlier run
    of the slot was still going (or a second trigger) must not start the slot again the
    moment that run failed."""
    with connection.transaction():
        connection.execute("SELECT 1 FROM fleet_accounts WHERE id = %s FOR UPDATE", [account_id])
        done = connection.execute("SELECT 1 FROM fleet_runs WHERE account_id = %s AND scheduled_for = %s "
                                  "AND status = 'ok'", [account_id, scheduled_for]).fetchone()
        if done:
            raise SlotDone(f"the run for {scheduled_for.isoformat()} succeeded already")
        failures, wait = connection.execute(
            "SELECT count(*), extract(epoch FROM max(ended_at) + %s * count(*) - now()) FROM fleet_runs "
            "WHERE account_id = %s AND scheduled_for = %s AND status = 'failed'",
            [RETRY_AFTER, account_id, scheduled_for]).fetchone()
        if failures >= MAX_ATTEMPTS_PER_SLOT:
            raise SlotNotDue(f"the run for {scheduled_for.isoformat()} failed {failures} times; "
                             "the account waits for its next scheduled time")
        if failures and wait is not None and wait > 0:
            raise SlotNotDue(f"the run for {scheduled_for.isoformat()} failed {failures} times; "
                             f"it is tried again in {float(wait):.0f} s")
        running = connection.execute(
            "SELECT id, worker, extract(epoch FROM now() - heartbeat_at) FROM fleet_runs "
            "WHERE account_id = %s AND status = 'running'", [account_id]).fetchone()
        if running and running[2] < stale_seconds:
            raise AccountBusy(f"run {running[0]} on {running[1]} is alive (heartbeat {running[2]:.0f} s ago)")
        if running:
            connection.execute(
                "UPDATE fleet_runs SET status = 'interrupted', ended_at = now(), message = %s WHERE id = %s",
                [f"its worker ({running[1]}) stopped sending heartbeats ({running[2]:.0f} s); taken over by "
                 f"{worker}, which resumes from the archive's last checkpoint", running[0]])
        fence = connection.execute("UPDATE fleet_accounts SET fence = fence + 1 WHERE id = %s RETURNING fence",
                                   [account_id]).fetchone()[0]
        run_id = connection.execute(
            "INSERT INTO fleet_runs (account_id, scheduled_for, job_id, fence, worker, full_listing, status) "
            "VALUES (%s, %s, %s, %s, %s, %s, 'running') RETURNING id",
            [account_id, scheduled_for, job_id, fence, worker, full]).fetchone()[0]
    return RunTicket(run_id, account_id, scheduled_for, fence)


_STILL_OURS = ("id = %s AND status = 'running' AND "
               "(SELECT fence FROM fleet_accounts WHERE fleet_accounts.id = fleet_runs.account_id) = %s")


def heartbeat(connection, ticket: RunTicket) -> bool:
    """Refresh the run's heartbeat. False: the run is no longer ours (another worker took
    the account over: its fence moved) — stop at once, record nothing, touch nothing."""
    with connection.transaction():
        updated = connection.execute(f"UPDATE fleet_runs SET heartbeat_at = now() WHERE {_STILL_OURS}",
                                     [ticket.run_id, ticket.fence]).rowcount
    return updated == 1


def still_current(connection, ticket: RunTicket) -> bool:
    """Whether the run still holds the account (for a fenced write elsewhere)."""
    row = connection.execute(f"SELECT 1 FROM fleet_runs WHERE {_STILL_OURS}", [ticket.run_id, ticket.fence]).fetchone()
    connection.commit()
    return row is not None


def finish_run(connection, ticket: RunTicket, status: str, *, message: str | None = None,
               counts: dict | None = None) -> bool:
    """Record how the run ended ('ok', 'failed', 'interrupted'). False: fenced off (another
    worker holds the account now), nothing recorded."""
    assert status in ("ok", "failed", "interrupted"), status
    with connection.transaction():
        updated = connection.execute(
            f"UPDATE fleet_runs SET status = %s, ended_at = now(), message = %s, counts = %s WHERE {_STILL_OURS}",
            [status, message, json.dumps(counts) if counts is not None else None, ticket.run_id, ticket.fence]).rowcount
    return updated == 1


@dataclass(frozen=True)
class AccountHistory:
    """What dispatch needs of an account's ledger to tell whether it is due."""

    last_ok_slot: dt.datetime | None         # the newest scheduled time with a successful run
    last_failed_slot: dt.datetime | None     # the newest scheduled time with failed runs only
    failures: int = 0                        # failed runs of last_failed_slot
    last_failure_end: dt.datetime | None = None


def histories(connection, account_ids: list[int] | None = None) -> dict[int, AccountHistory]:
    """Each account's newest successful scheduled time and the failures of a newer one: one
    query for the whole fleet (a tick over 10,000 accounts must not ask 10,000 times)."""
    rows = connection.execute(
        "SELECT a.id, ok.slot, bad.slot, coalesce(bad.failures, 0), bad.ended FROM fleet_accounts a "
        "LEFT JOIN LATERAL (SELECT max(scheduled_for) AS slot FROM fleet_runs r "
        "                   WHERE r.account_id = a.id AND r.status = 'ok') ok ON true "
        "LEFT JOIN LATERAL (SELECT scheduled_for AS slot, count(*) AS failures, max(ended_at) AS ended "
        "                   FROM fleet_runs f WHERE f.account_id = a.id AND f.status = 'failed' "
        "                   AND (ok.slot IS NULL OR f.scheduled_for > ok.slot) "
        "                   GROUP BY scheduled_for ORDER BY scheduled_for DESC LIMIT 1) bad ON true "
        + ("WHERE a.id = ANY(%s)" if account_ids is not None else ""),
        [account_ids] if account_ids is not None else []).fetchall()
    return {row[0]: AccountHistory(row[1], row[2], row[3], row[4]) for row in rows}
