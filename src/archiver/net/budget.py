"""Budgets for APIs that limit or charge what a run asks: a daily request budget kept
across runs (``DailyBudget``: platforms that allow so many calls a day), and a money budget
per run (``RunBudget``: platforms that charge for what their answers return).

A connector makes a ``DailyBudget`` from its option and the state it saved last run
(``ctx.state("quota")``), sends its API requests through a ``BudgetedTransport`` that
charges each one *before* it leaves (retries included: the platform counts them too), and
saves ``budget.state()`` as stream "quota" before each page and on every exit. When the
next request does not fit, ``BudgetSpent`` ends the walk cleanly; the next day's run goes
on from the checkpoints. `archiver status` reads the saved state (``left_today``).
A connector passes its DailyBudget through ``run_daily_budget`` first: in a fleet run it is
replaced by the fleet's budget shared by every account of the project (fleet/limiter.py).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Callable

import httpx

STATE_STREAM = "quota"
SPEND_STREAM = "spend"
MICROS = 1_000_000   # money is counted in millionths of the currency: exact sums, no float drift


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


def run_daily_budget(local: DailyBudget, *, project: str) -> DailyBudget:
    """The budget a connector charges: ``local`` for a single user's run; in a run with a
    limits provider installed (net.client.run_limits: a fleet worker's), the one it gives
    for ``project`` (what the platform counts the budget against, e.g. the OAuth client
    whose cloud project owns the quota), shared by every run of that project."""
    from archiver.net.client import current_run_limits

    limits = current_run_limits()
    return limits.daily_budget(local, project=project) if limits is not None else local


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


def to_micros(amount: float | int | str) -> int:
    """An amount of money (1.5, "0.005") in millionths, rounded to the nearest one."""
    from decimal import Decimal

    return int((Decimal(str(amount)) * MICROS).to_integral_value())


def money(micros: int, currency: str = "USD") -> str:
    """$0.42; amounts under a cent keep their digits ($0.005), others show cents."""
    value = micros / MICROS
    text = f"{value:.2f}" if micros % 10_000 == 0 or micros >= MICROS else f"{value:.6f}".rstrip("0")
    return f"${text}" if currency == "USD" else f"{text} {currency}"


class RunBudget:
    """Money one run may spend (``limit``, e.g. an account's ``max_cost_usd``), and what
    every run has spent, kept across runs through ``state()`` (stream ``SPEND_STREAM``).

    A request whose price depends on its answer (so much per item returned) is paid for
    in two steps: ``reserve`` the most it can cost before it leaves (refused when that does
    not fit), then ``settle`` with what the answer really cost. A run killed between the
    two leaves the reservation counted: the count errs on the side of the money.
    """

    def __init__(self, limit: float | int | str, state: dict[str, Any] | None = None, *,
                 what: str = "the API budget for one run", currency: str = "USD",
                 clock: Callable[[], float] = time.time):
        self.limit, self.what, self.currency, self.clock = to_micros(limit), what, currency, clock
        previous = state or {}
        self.spent = 0                                  # by this run
        self.total = int(previous.get("total_micros", 0))
        self.month = self._month()
        self.month_spent = int(previous.get("month_micros", 0)) if previous.get("month") == self.month else 0
        self.started_at = dt.datetime.fromtimestamp(clock(), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _month(self) -> str:
        return dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc).strftime("%Y-%m")

    def left(self) -> int:
        return self.limit - self.spent

    def require(self, micros: int) -> None:
        """Raise BudgetSpent unless ``micros`` more still fit in this run's limit."""
        if micros > self.left():
            raise BudgetSpent(f"{self.what} ({money(self.limit, self.currency)}) would be exceeded: "
                              f"{money(self.spent, self.currency)} spent, the next request may cost "
                              f"{money(micros, self.currency)}")

    def charge(self, micros: int) -> None:
        self.require(micros)
        self._add(micros)

    def reserve(self, micros: int) -> int:
        """Count the most a request can cost before it leaves; returns what to ``settle``."""
        self.charge(micros)
        return micros

    def settle(self, reserved: int, actual: int) -> None:
        """The answer cost ``actual``: give back what was reserved beyond it (an answer that
        cost more than its reservation, which the platform should not do, is counted whole)."""
        self._add(actual - reserved)

    def _add(self, micros: int) -> None:
        month = self._month()
        if month != self.month:
            self.month, self.month_spent = month, 0
        self.spent += micros
        self.total += micros
        self.month_spent += micros

    def state(self) -> dict[str, Any]:
        return {"limit_micros": self.limit, "currency": self.currency, "run_started_at": self.started_at,
                "run_micros": self.spent, "month": self.month, "month_micros": self.month_spent,
                "total_micros": self.total}


def spent_words(state: dict[str, Any] | None, *, now: float | None = None) -> str | None:
    """What a saved RunBudget state says was spent, in words for `archiver status`, or None."""
    if not state or "limit_micros" not in state:
        return None
    currency = state.get("currency") or "USD"
    month = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.timezone.utc).strftime("%Y-%m")
    this_month = int(state.get("month_micros", 0)) if state.get("month") == month else 0
    return (f"{money(int(state.get('run_micros', 0)), currency)} on the last run "
            f"({state.get('run_started_at', '?')}; limit {money(int(state['limit_micros']), currency)} a run), "
            f"{money(this_month, currency)} this month, {money(int(state.get('total_micros', 0)), currency)} in all")
