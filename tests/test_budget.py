"""archiver.net.budget: a daily request budget kept across runs, and a money budget per run,
judged by a fake clock."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from archiver.net.budget import BudgetedTransport, BudgetSpent, DailyBudget, RunBudget, left_today, money, spent_words, to_micros

DAY1_NOON = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc).timestamp()


class Clock:
    def __init__(self, at: float):
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_the_budget_is_spent_by_day_and_a_new_day_starts_fresh():
    clock = Clock(DAY1_NOON)
    budget = DailyBudget(3, None, what="the daily test budget", clock=clock)
    budget.charge(2)
    with pytest.raises(BudgetSpent, match=r"the daily test budget \(3 requests\) is used up \(2 spent today, 2 needed"):
        budget.charge(2)
    assert budget.left() == 1                        # a refused charge spends nothing
    state = budget.state()
    assert state == {"day": "2026-03-01", "spent": 2, "budget": 3, "unit": "requests", "zone": "UTC"}
    # The next run the same day goes on from the saved state; the day after starts fresh.
    assert DailyBudget(3, state, clock=clock).left() == 1
    clock.at += 12 * 3600
    assert DailyBudget(3, state, clock=clock).left() == 3
    budget.exhaust()                                # midnight passed during the run, then a 429
    assert budget.state()["day"] == "2026-03-02" and budget.left() == 0


def test_the_transport_charges_before_sending_and_refuses_what_does_not_fit():
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200)

    budget = DailyBudget(2, None, clock=Clock(DAY1_NOON))
    transport = BudgetedTransport(httpx.MockTransport(handler), budget,
                                  cost=lambda r: 0 if r.url.host == "cdn.test" else 1)
    with httpx.Client(transport=transport) as client:
        client.get("http://api.test/a")
        client.get("http://cdn.test/file")           # free
        client.get("http://api.test/b")
        with pytest.raises(BudgetSpent):
            client.get("http://api.test/c")
    assert sent == ["/a", "/file", "/b"]             # the refused request never left
    assert budget.state()["spent"] == 2


def test_status_words_say_what_is_left_today_in_the_budgets_own_day():
    state = {"day": "2026-03-01", "spent": 640, "budget": 1000, "unit": "requests", "zone": "UTC"}
    assert left_today(state, now=DAY1_NOON) == "360 of 1000 requests left today (a new day starts at midnight UTC)"
    assert left_today(state, now=DAY1_NOON + 86400).startswith("1000 of 1000 requests left today")
    # In Los Angeles it is still 1 March at 02:00 UTC on 2 March.
    pacific = {**state, "zone": "America/Los_Angeles", "unit": "units"}
    assert left_today(pacific, now=DAY1_NOON + 14 * 3600).startswith("360 of 1000 units")
    assert left_today(None) is None and left_today({"day": "2026-03-01"}) is None


def test_a_run_spends_money_up_to_its_limit_reserving_the_worst_case_first():
    clock = Clock(DAY1_NOON)
    budget = RunBudget("0.50", None, what="the X budget for one run", clock=clock)
    # A page of up to 40 posts at $0.005 each: $0.20 reserved, 12 came back: $0.06 paid.
    reserved = budget.reserve(40 * to_micros("0.005"))
    assert budget.left() == to_micros("0.30")
    budget.settle(reserved, 12 * to_micros("0.005"))
    assert budget.left() == to_micros("0.44")
    with pytest.raises(BudgetSpent, match=r"the X budget for one run \(\$0.50\) would be exceeded: "
                                          r"\$0.06 spent, the next request may cost \$0.50"):
        budget.reserve(100 * to_micros("0.005"))
    assert budget.left() == to_micros("0.44")           # a refused reservation spends nothing
    budget.charge(to_micros("0.44"))                      # exactly the limit fits
    state = budget.state()
    assert (state["run_micros"], state["total_micros"], state["month"]) == (500_000, 500_000, "2026-03")

    # The next run starts with its own limit; the totals go on, a new month starts its own.
    clock.at += 40 * 86400
    later = RunBudget("0.50", state, clock=clock)
    later.charge(to_micros("0.01"))
    assert (later.left(), later.state()["total_micros"], later.state()["month_micros"]) == (490_000, 510_000, 10_000)


def test_status_words_say_the_money_spent_without_float_drift():
    budget = RunBudget(1, None, clock=Clock(DAY1_NOON))
    for _ in range(3):
        budget.charge(to_micros(0.1))                 # 0.1 + 0.1 + 0.1 is exactly 0.30 here
    words = spent_words(budget.state(), now=DAY1_NOON)
    assert words == "$0.30 on the last run (2026-03-01T12:00:00Z; limit $1.00 a run), $0.30 this month, $0.30 in all"
    assert spent_words(budget.state(), now=DAY1_NOON + 40 * 86400).count("$0.00 this month") == 1
    assert (money(5_000), money(10_000), money(12_345_678)) == ("$0.005", "$0.01", "$12.35")
    assert spent_words(None) is None and spent_words({"day": "2026-03-01"}) is None
