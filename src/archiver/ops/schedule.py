"""When accounts run: cron lines, the default nightly schedule, catch-up after downtime,
and when a run must be a full listing.

The daemon schedules with these, `archiver status` shows the next run with them, and the
config check (config.py) tries each account's cron line with ``schedule_trigger`` so a
bad one fails at load time, with its line, not at 3 a.m. That is why this module imports
no config: it knows an account only by the few fields it reads (``ScheduledAccount``,
which config.AccountConfig has).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Protocol


class ScheduledAccount(Protocol):
    """What scheduling reads of an account (config.AccountConfig)."""

    @property
    def account_id(self) -> str: ...

    @property
    def schedule(self) -> str | None: ...

    @property
    def enabled(self) -> bool: ...

    @property
    def full_every_days(self) -> int: ...


# The default nightly window: a minute in [02:00, 05:00) local time, derived from the account id.
NIGHT_START_HOUR = 2
NIGHT_MINUTES = 3 * 60
DEFAULT_JITTER_SECONDS = 10 * 60


def _cron_weekdays(field: str) -> str:
    """Cron's day-of-week numbers (0 or 7 = Sunday) as names: APScheduler 3 counts 0 as
    Monday (its documented historical mistake), names mean the same to both."""
    names = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    parts = []
    for part in field.split(","):
        base, _, step = part.partition("/")
        low, _, high = base.partition("-")
        if not (low.isdigit() and (not high or high.isdigit())):
            parts.append(part)  # "*", "*/2", "mon-fri", ...: no numbers to translate
            continue
        first = int(low)
        last = int(high) if high else (7 if step else first)
        if not (0 <= first <= 7 and 0 <= last <= 7):
            raise ValueError(f"day of week {part!r} is outside 0-7")
        days = range(first, last + 1, int(step) if step else 1)
        parts.extend(names[d] for d in days)
    return ",".join(dict.fromkeys(parts))  # 0 and 7 are both Sunday: once is enough


def schedule_trigger(schedule: str, *, jitter: int | None = None, timezone=None):
    """A cron line -> APScheduler CronTrigger, in local time unless ``timezone`` is given.

    Five fields: minute hour day month weekday (standard cron). Six fields: the same with
    seconds first. Raises ValueError with APScheduler's reason for a bad field.
    """
    from apscheduler.triggers.cron import CronTrigger

    fields = schedule.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ValueError(f"expected 5 fields (minute hour day month weekday) or 6 (seconds first), got {len(fields)}")
    second, minute, hour, day, month, weekday = fields
    return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                       day_of_week=_cron_weekdays(weekday), jitter=jitter, timezone=timezone)


def default_schedule(account: ScheduledAccount) -> str:
    """Nightly at a stable minute between 02:00 and 05:00: a hash of the account id (not
    Python's hash(), which changes with every process) picks the minute."""
    digest = hashlib.sha256(account.account_id.encode("utf-8")).digest()
    offset = int.from_bytes(digest[:4], "big") % NIGHT_MINUTES
    return f"{offset % 60} {NIGHT_START_HOUR + offset // 60} * * *"


def account_trigger(account: ScheduledAccount, *, jitter: bool = True, timezone=None):
    """The trigger the daemon schedules this account with. Only the default nightly
    schedule gets jitter: a schedule the user wrote is kept to the second."""
    if account.schedule:
        return schedule_trigger(account.schedule, timezone=timezone)
    return schedule_trigger(default_schedule(account), jitter=DEFAULT_JITTER_SECONDS if jitter else None,
                            timezone=timezone)


def local_now(timezone=None) -> dt.datetime:
    if timezone is None:
        from tzlocal import get_localzone

        timezone = get_localzone()
    return dt.datetime.now(timezone)


def next_run_time(account: ScheduledAccount, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the daemon runs this account next by its schedule (without the jitter of the
    default schedule, so up to ten minutes early), as an aware local datetime.
    None for a disabled account. A catch-up at daemon start is not included."""
    if not account.enabled:
        return None
    timezone = now.tzinfo if now is not None and now.tzinfo is not None else None
    trigger = account_trigger(account, jitter=False, timezone=timezone)
    now = now or local_now(trigger.timezone)
    if now.tzinfo is None:
        now = now.replace(tzinfo=trigger.timezone)
    return trigger.get_next_fire_time(None, now)


def last_successful_export(db, account_id: str) -> dt.datetime | None:
    """When the account's newest successful API export ended (from the runs table)."""
    row = db.execute("SELECT max(coalesce(ended_at, started_at)) FROM runs "
                     "WHERE account_id=? AND kind='export' AND status='ok'", [account_id]).fetchone()
    if not row or not row[0]:
        return None
    return dt.datetime.fromisoformat(row[0].replace("Z", "+00:00"))


def needs_catch_up(db, account: ScheduledAccount, now: dt.datetime | None = None) -> tuple[bool, str]:
    """Whether the account missed a run while the daemon was down, and why (for the log).

    Missed means: a fire time of its schedule lies between its last successful export
    and now. For a daily schedule that is "the last success is older than a day, or
    older than today's run time", and it stays right for schedules with uneven gaps
    (weekdays only: no catch-up on Saturday for Friday's run). A failed or interrupted
    last run counts as missed too, so a restart retries it."""
    now = now or dt.datetime.now(dt.timezone.utc)
    last = last_successful_export(db, account.account_id)
    if last is None:
        return True, "it has no successful run yet"
    due = missed_fire_time(account, last, now)
    if due is not None:
        return True, (f"its last successful run ended {_ago(now - last)} ago and the run due "
                      f"{show_moment(due)} did not happen")
    return False, f"its last successful run ended {_ago(now - last)} ago; nothing was missed"


def missed_fire_time(account: ScheduledAccount, last_success: dt.datetime, now: dt.datetime, *,
                     timezone=None) -> dt.datetime | None:
    """The first fire time of the account's schedule after ``last_success`` that is not
    later than ``now`` (a run was missed), or None. The daemon's catch-up asks this; the
    fleet's "is it due" (archiver.fleet.dispatch) asks the same as ``latest_fire_time`` >
    ``last_success``, one fire time per schedule for thousands of accounts."""
    trigger = account_trigger(account, jitter=False, timezone=timezone)
    after = last_success.astimezone(trigger.timezone) + dt.timedelta(microseconds=1)
    due = trigger.get_next_fire_time(None, after)
    return due if due is not None and due <= now else None


# How far back latest_fire_time looks, widening: a minute, an hour, a day, a week, a month,
# a year and a leap year's cycle (a cron line fires at least that often or never).
_LOOKBACK = tuple(dt.timedelta(minutes=m) for m in (1, 60, 24 * 60, 8 * 24 * 60, 32 * 24 * 60, 367 * 24 * 60,
                                                     4 * 367 * 24 * 60))


def latest_fire_time(account: ScheduledAccount, now: dt.datetime, *, timezone=None) -> dt.datetime | None:
    """The newest fire time of the account's schedule at or before ``now`` (without jitter),
    or None when it never fired in four years. Runs missed one after the other coalesce
    into this one, as the daemon's coalescing scheduler does."""
    trigger = account_trigger(account, jitter=False, timezone=timezone)
    now = now.astimezone(trigger.timezone)
    for window in _LOOKBACK:   # the narrowest window holding a fire time: few steps below
        fire = trigger.get_next_fire_time(None, now - window)
        if fire is None or fire > now:
            continue
        while True:
            following = trigger.get_next_fire_time(fire, fire + dt.timedelta(microseconds=1))
            if following is None or following > now:
                return fire
            fire = following
    return None


def full_listing_due(db, account: ScheduledAccount, now: dt.datetime | None = None) -> tuple[bool, str]:
    """Whether this run should list everything (the only way to find deleted posts), and
    why (for the log): when the account's last complete full listing (recorded by
    archiver.sync.listing) is ``full_every_days`` old, or there is none yet."""
    from archiver.sync.listing import last_full_listing

    now = now or dt.datetime.now(dt.timezone.utc)
    last = last_full_listing(db, account.account_id)
    if last is None:
        return True, "no full listing has finished yet"
    age = now - dt.datetime.fromisoformat(last.replace("Z", "+00:00"))
    if age >= dt.timedelta(days=account.full_every_days):
        return True, f"the last full listing finished {_ago(age)} ago (full_every_days = {account.full_every_days})"
    return False, f"the last full listing finished {_ago(age)} ago"


def _ago(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def show_moment(moment: dt.datetime | None) -> str:
    """A moment for the log, in its own time zone ("never" for None)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else "never"
