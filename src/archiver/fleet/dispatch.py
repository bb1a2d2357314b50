"""What is due, and putting it in the queue: `archiver enqueue` and the once-a-minute tick.

Due is the daemon's own rule (archiver.ops.schedule, the same functions, not a copy): an
account is due when a fire time of its schedule lies after its last successful scheduled
time and not after now. Fire times missed one after the other coalesce into the newest one
(``latest_fire_time``), which is the scheduled time the run serves and the ledger records.
A scheduled time whose runs failed is tried again after RETRY_AFTER × failures, at most
MAX_ATTEMPTS_PER_SLOT times; then the account waits for its next fire time (and
`archiver fleet status` shows it failed).

Each due account is deferred as one job with
- ``lock = account:<id>``: one running job per account (Procrastinate runs jobs of one lock
  one after the other), and
- ``queueing_lock = account:<id>``: one waiting job per account; a second defer while one
  waits raises AlreadyEnqueued, counted as "already queued" — so enqueueing is idempotent.
  The tick and `enqueue --due` count a running job as queued too (``defer_runs``).

Seconds fields of a schedule ("*/4 * * * * *") never reach the queue's cron parser: the queue
knows only the tick (every minute), and the tick asks ops.schedule.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from typing import Callable

from archiver.fleet import accounts as fleet_accounts
from archiver.fleet import ledger
from archiver.fleet.accounts import FleetAccount

log = logging.getLogger("archiver.fleet.dispatch")

RUN_TASK = "archiver.fleet.run_account"
ACCOUNT_QUEUE = "accounts"


def account_lock(account_id: int) -> str:
    return f"account:{account_id}"


def due_slot(account: FleetAccount, history: ledger.AccountHistory | None, now: dt.datetime,
             latest_fire_time: Callable[[FleetAccount], dt.datetime | None] | None = None) -> dt.datetime | None:
    """The scheduled time the account's run is due for now, or None when nothing is due.
    ``latest_fire_time``: the account's newest fire time at ``now`` (a LatestFireTimes, shared
    by the accounts of one tick); by default computed for this account."""
    if not account.enabled:
        return None
    latest = (latest_fire_time or LatestFireTimes(now))(account)
    last_ok = history.last_ok_slot if history else None
    if last_ok is None:
        # Never archived: due now (the daemon's catch-up says the same), for the newest
        # fire time, or this minute when the schedule never fired yet.
        slot = latest or now.replace(second=0, microsecond=0)
    elif latest is None or latest <= last_ok:   # no fire time after the last success (the daemon's missed_fire_time)
        return None
    else:
        slot = latest
    if history and history.last_failed_slot == slot:   # this scheduled time failed already
        if history.failures >= ledger.MAX_ATTEMPTS_PER_SLOT:
            return None
        if history.last_failure_end and now < history.last_failure_end + ledger.RETRY_AFTER * history.failures:
            return None
    return slot


class LatestFireTimes:
    """``ops.schedule.latest_fire_time`` of many accounts at one moment. Computing a fire time
    costs about a millisecond (a cron trigger built and walked): 10 s for 10,000 accounts. But
    accounts share schedules — a cron line an agency gives all its accounts, and the default
    nightly one has only 180 minutes — so each (cron line, time zone) is computed once."""

    def __init__(self, now: dt.datetime):
        self.now = now
        self._found: dict[tuple[str, str | None], dt.datetime | None] = {}

    def __call__(self, account: fleet_accounts.FleetAccount) -> dt.datetime | None:
        from archiver.ops.schedule import default_schedule, latest_fire_time

        # The default schedule is a cron line derived from the account's id (no jitter here):
        # spelled out, accounts on the same nightly minute share it.
        schedule = account.schedule or default_schedule(account)
        key = (schedule, account.timezone or None)
        if key not in self._found:
            self._found[key] = latest_fire_time(replace(account, schedule=schedule), self.now, timezone=account.zone())
        return self._found[key]


def due_accounts(connection, now: dt.datetime) -> list[tuple[FleetAccount, dt.datetime]]:
    """Every enabled account due now, with its scheduled time."""
    histories = ledger.histories(connection)
    latest_fire_time = LatestFireTimes(now)
    found = []
    for account in fleet_accounts.load(connection, enabled_only=True):
        slot = due_slot(account, histories.get(account.id), now, latest_fire_time)
        if slot is not None:
            found.append((account, slot))
    return found


@dataclass
class Enqueued:
    deferred: list[str] = field(default_factory=list)         # account labels
    already_queued: list[str] = field(default_factory=list)   # a job of theirs waits or runs already

    def summary(self) -> str:
        return f"{len(self.deferred)} deferred, {len(self.already_queued)} already queued"


BATCH = 500   # jobs deferred in one statement


def defer_runs(app, items: list[tuple[FleetAccount, dt.datetime]], *, full: bool = False,
               connection=None) -> Enqueued:
    """Defer one run job per (account, scheduled time), each with the account's lock and
    queueing lock. ``app`` is an open procrastinate.App (sync use: a command, or a sync job).

    With ``connection`` (the fleet database), accounts with a job of theirs waiting or
    running already are left out first and the rest deferred in batches (a tick at night
    start defers thousands); a batch that still meets a waiting job (another enqueuer was
    quicker) is deferred one by one. A running job counts: its slot has no successful run
    yet, so a tick during the run sees the account due, and a second job would start the
    slot again the moment the first failed, skipping the wait between attempts."""
    from procrastinate.exceptions import AlreadyEnqueued

    result = Enqueued()
    if connection is not None and items:
        queued = {row[0] for row in connection.execute(
            "SELECT lock FROM procrastinate_jobs WHERE status IN ('todo', 'doing') AND lock = ANY(%s)",
            [[account_lock(account.id) for account, _ in items]])}
        result.already_queued = [account.label() for account, _ in items if account_lock(account.id) in queued]
        items = [(account, slot) for account, slot in items if account_lock(account.id) not in queued]
        for start in range(0, len(items), BATCH):
            chunk = items[start:start + BATCH]
            jobs = [_deferrer(app, account).make_new_job(account=account.id, slot=slot.isoformat(), full=full)
                    for account, slot in chunk]
            try:
                app.job_manager.batch_defer_jobs(jobs)
            except AlreadyEnqueued:
                one_by_one = defer_runs(app, chunk, full=full)
                result.deferred += one_by_one.deferred
                result.already_queued += one_by_one.already_queued
            else:
                result.deferred += [account.label() for account, _ in chunk]
        return result
    for account, slot in items:
        try:
            _deferrer(app, account).defer(account=account.id, slot=slot.isoformat(), full=full)
        except AlreadyEnqueued:
            result.already_queued.append(account.label())
        else:
            result.deferred.append(account.label())
    return result


def _deferrer(app, account: FleetAccount):
    lock = account_lock(account.id)
    return app.configure_task(RUN_TASK, queue=ACCOUNT_QUEUE, lock=lock, queueing_lock=lock)


def enqueue_due(app, connection, now: dt.datetime, *, full: bool = False) -> Enqueued:
    """`archiver enqueue --due` and the tick."""
    result = defer_runs(app, due_accounts(connection, now), full=full, connection=connection)
    log.info("tick %s: %s", now.isoformat(timespec="seconds"), result.summary())
    return result


def enqueue_now(app, account: FleetAccount, now: dt.datetime, *, full: bool = False) -> Enqueued:
    """`archiver enqueue --account`: a run now, whether due or not. Its scheduled time is
    this minute, so the same command twice in a minute is one run."""
    if not account.enabled:
        from archiver.fleet.db import FleetError

        raise FleetError(f"{account.label()} is disabled; enable it first (`archiver fleet import` with enabled=true)")
    return defer_runs(app, [(account, now.replace(second=0, microsecond=0))], full=full)
