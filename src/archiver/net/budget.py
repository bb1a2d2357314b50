"""A daily request budget kept across runs, for platforms that allow so many calls a day.

A connector makes a ``DailyBudget`` from its option and the state it saved last run
(``ctx.state("quota")``), sends its API requests through a ``BudgetedTransport`` that
charges each one *before* it leaves (retries included: the platform counts them too), and
saves ``budget.state()`` as stream "quota" before each page and on every exit. When the
next request does not fit, ``BudgetSpent`` ends the walk cleanly; the next day's run goes
on from the checkpoints. `archiver status` reads the saved state (``left_today``).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Callable

import httpx

STATE_STREAM = "quota"


class BudgetSpent(Exception):
    """The day's budget cannot pay for the next request: end the run cleanly.

    ``by_platform``: the platform itself said the day's limit is reached."""

    def __init__(self, message: str, *, by_platform: bool = False):
        super().__init__(message)
        self.by_platform = by_platform


def _zone_name(zone: dt.tzinfo) -> str:
    return getattr(zone, "key", None) or ("UTC" if zone.utcoffset(None) == dt.timedelta(0) else str(zone))


class DailyBudget:
    """``unit``s spent today (the day as ``zone`` counts it) against ``budget``."""

    def __init__(self, budget: int, state: dict[str, Any] | None = None, *,
                 what: str = "the daily request budget", unit: str = "requests",
                 zone: dt.tzinfo = dt.timezone.utc, clock: Callable[[], float] = time.time):
        self.budget, self.what, self.unit, self.zone, self.clock = int(budget), what, unit, zone, clock
        self.day = self._today()
        self.spent = 0
        if state and state.get("day") == self.day:
            self.spent = int(state.get("spent", 0))

    def _today(self) -> str:
        return dt.datetime.fromtimestamp(self.clock(), self.zone).date().isoformat()

    def _roll(self) -> None:
        today = self._today()
        if today != self.day:   # midnight passed during the run: a fresh budget
            self.day, self.spent = today, 0

    def left(self) -> int:
        self._roll()
        return self.budget - self.spent

    def require(self, units: int) -> None:
        """Raise BudgetSpent unless ``units`` more still fit in today's budget."""
        if self.left() < units:
            raise BudgetSpent(f"{self.what} ({self.budget} {self.unit}) is used up "
                              f"({self.spent} spent today, {units} needed for the next step)")

    def charge(self, units: int) -> None:
        self.require(units)
        self.spent += units

    def exhaust(self) -> None:
        """The platform said the day's limit is reached: nothing more today, whatever our count says."""
        self._roll()
        self.spent = max(self.spent, self.budget)

    def state(self) -> dict[str, Any]:
        return {"day": self.day, "spent": self.spent, "budget": self.budget, "unit": self.unit,
                "zone": _zone_name(self.zone)}


def left_today(state: dict[str, Any] | None, *, now: float | None = None) -> str | None:
    """What a saved budget state leaves today, in words for `archiver status`, or None."""
    if not state or "budget" not in state:
        return None
    from zoneinfo import ZoneInfo

    zone_name = state.get("zone") or "UTC"
    try:
        zone: dt.tzinfo = ZoneInfo(zone_name)
    except Exception:   # an unknown zone name in an old state: judge the day in UTC
        zone, zone_name = dt.timezone.utc, "UTC"
    today = dt.datetime.fromtimestamp(time.time() if now is None else now, zone).date().isoformat()
    budget = int(state["budget"])
    spent = int(state.get("spent", 0)) if state.get("day") == today else 0
    return (f"{max(budget - spent, 0)} of {budget} {state.get('unit') or 'requests'} left today "
            f"(a new day starts at midnight {zone_name})")


class BudgetedTransport(httpx.BaseTransport):
    """Charges ``cost(request)`` units to the budget before each request leaves (0: free,
    e.g. a file download from a CDN), and refuses one the budget cannot pay for."""

    def __init__(self, inner: httpx.BaseTransport, budget: DailyBudget, cost: Callable[[httpx.Request], int]):
        self.inner, self.budget, self.cost = inner, budget, cost

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        units = self.cost(request)
        if units:
            self.budget.charge(units)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
