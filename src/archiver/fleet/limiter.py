"""Rate limits and daily quotas shared by every worker of the fleet, kept in PostgreSQL.

A single user's runs pace themselves (net.client.Pacer, per process): that stays the
default. A fleet runs many accounts of one app on many machines, and the platform counts
their requests together, so the limit must be one for all of them:

* ``SharedLimiter`` — one row per ``LimitKey`` (platform, app, endpoint, and a fingerprint
  of the user token where the platform counts per user), holding a *theoretical arrival
  time* (GCRA, the cell-rate algorithm): each request reserves the next free slot in one
  statement and sleeps until it. Requests of all workers thus leave at ``per_minute`` on
  average, at most ``burst`` at once, in the order they asked. A 429 seen by one worker
  (``slow_down``) moves the slot past the platform's Retry-After for every worker.
* ``SharedQuota`` — a daily budget counted in one row per project and day (YouTube's
  10,000 units belong to a Google Cloud project, whatever machine spends them). It is a
  ``net.budget.DailyBudget``: connectors charge it through ``BudgetedTransport`` as they
  charge their local one.
* ``SharedPacer`` — a ``net.client.Pacer`` for an ApiClient (``pacer=``): the client takes a
  slot before each request to a limited host and reports each Retry-After to every worker.
  A limit is the API host's, or an endpoint's where the platform counts endpoints apart.
* ``FencedPacer`` — for a run's clients that fetch links taken from data (media from a CDN):
  no slot, but no request once the run was fenced off (another worker holds the account).
* ``LimitedTransport`` — the same as an httpx transport, for API requests only.

The clock is the database's (``clock_timestamp()``): every worker sees the same time,
whatever its own clock says. Tests pass their own (``clock=``), and their own ``sleep``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

import httpx

from archiver.fleet.storage import FencedOut
from archiver.net.budget import BudgetSpent, DailyBudget
from archiver.net.client import Cancelled, Pacer, parse_retry_after

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SECONDS = 60.0   # a 429 without Retry-After stops every worker this long
DEFAULT_MAX_WAIT = 900.0       # a slot further away than this is not reserved: LimiterBusy


class LimiterBusy(Exception):
    """The next free slot is further away than the caller may wait: end the run cleanly (its
    checkpoints keep what it did) and let the queue retry it later."""

    def __init__(self, key: LimitKey, wait: float):
        super().__init__(f"{key.text()}: the next request may leave in {wait:.0f} s, longer than this run waits; "
                         "the account's job is retried later")
        self.key, self.wait = key, wait


def token_fingerprint(token: str) -> str:
    """What a LimitKey holds of a user token: enough to tell users apart, nothing to use."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LimitKey:
    """What a platform counts a limit against. ``app``: the client id (or Google project);
    ``endpoint``: one endpoint or a family of them ("*": the app's whole limit); ``user``: a
    ``token_fingerprint`` where the platform counts per user token, never the token."""

    platform: str
    app: str
    endpoint: str = "*"
    user: str | None = None

    def text(self) -> str:
        return "/".join([self.platform, self.app, self.endpoint] + ([self.user] if self.user else []))


@dataclass(frozen=True)
class Rate:
    """``per_minute`` requests a minute on average, at most ``burst`` at once. In any 60
    seconds at most ``per_minute + burst - 1`` leave: burst=1 keeps every minute within the limit."""

    per_minute: float
    burst: int = 1

    @property
    def interval(self) -> float:
        return 60.0 / self.per_minute

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval


# One statement reserves the next slot: a new key starts now; an existing one moves its
# arrival time one interval past max(its arrival time, now). The caller's wait is the slot's
# start less now. A slot further than max_wait is not taken (no row comes back), nor is any
# when the run's fence is no longer the account's (a zombie makes no request).
_RESERVE = """
WITH clock AS (SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())) AS t),
     allowed AS (SELECT 1 WHERE %(account)s::bigint IS NULL
                 OR EXISTS (SELECT 1 FROM fleet_accounts WHERE id = %(account)s::bigint AND fence = %(fence)s::bigint))
INSERT INTO fleet_limits AS l (key, platform, tat, now, requests)
SELECT %(key)s, %(platform)s, clock.t + %(interval)s, clock.t, 1 FROM clock, allowed
ON CONFLICT (key) DO UPDATE SET
    tat = greatest(l.tat, excluded.now) + %(interval)s,
    now = excluded.now,
    requests = l.requests + 1,
    waits = l.waits + (l.tat - %(tolerance)s > excluded.now)::int,
    waited = l.waited + greatest(l.tat - %(tolerance)s - excluded.now, 0)
WHERE l.tat - %(tolerance)s - excluded.now <= %(max_wait)s
RETURNING greatest(l.tat - %(interval)s - %(tolerance)s - l.now, 0)
"""

_SLOW_DOWN = """
WITH clock AS (SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())) AS t)
INSERT INTO fleet_limits AS l (key, platform, tat, now, blocked_until, throttled)
SELECT %(key)s, %(platform)s, clock.t + %(seconds)s + %(tolerance)s, clock.t, clock.t + %(seconds)s, 1 FROM clock
ON CONFLICT (key) DO UPDATE SET
    tat = greatest(l.tat, excluded.tat),
    blocked_until = greatest(l.blocked_until, excluded.blocked_until),
    throttled = l.throttled + 1
"""


class _Database:
    """Statements on an autocommit connection (each its own transaction). Given the database's
    URL instead of a connection, it connects when first needed and, when the connection
    breaks (the database restarted), connects again and tries the statement once more."""

    def __init__(self, conn: psycopg.Connection | str):
        self.url = conn if isinstance(conn, str) else None
        self._conn = None if isinstance(conn, str) else conn

    @property
    def conn(self) -> psycopg.Connection:
        if self.url is not None and (self._conn is None or self._conn.closed):
            from archiver.fleet import db

            self._conn = db.connect(self.url, autocommit=True)
        assert self._conn is not None
        return self._conn

    def close(self) -> None:
        """Close a connection this made from its URL (a connection handed in is the caller's)."""
        if self.url is not None and self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def execute(self, sql: str, params: Any = None) -> Any:
        import psycopg

        try:
            return self.conn.execute(sql, params)
        except psycopg.OperationalError:
            if self.url is None:
                raise
            log.warning("the fleet database's connection broke; connecting again")
            with contextlib.suppress(Exception):
                self.conn.close()
            self._conn = None
            return self.conn.execute(sql, params)


class SharedLimiter(_Database):
    """The fleet's rate limits (see the module's note). ``conn``: an autocommit connection,
    or the database's URL (see _Database); one limiter per worker thread."""

    def __init__(self, conn: psycopg.Connection | str, *, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] = time.sleep, max_wait: float = DEFAULT_MAX_WAIT):
        super().__init__(conn)
        self.clock, self.sleep, self.max_wait = clock, sleep, max_wait
        # The last slot refused (LimiterBusy): the fleet worker retries the run's job after its wait.
        self.refused: LimiterBusy | None = None

    def _now(self) -> float | None:
        return self.clock() if self.clock else None

    def reserve(self, key: LimitKey, rate: Rate, *, fence: tuple[int, int] | None = None) -> float:
        """Take the next slot for one request; returns the seconds to wait before sending it.
        ``fence``: (account id, the run's fence): refused with FencedOut once a newer run started."""
        account, fence_value = fence if fence else (None, None)
        row = self.execute(_RESERVE, {
            "now": self._now(), "key": key.text(), "platform": key.platform, "interval": rate.interval,
            "tolerance": rate.tolerance, "max_wait": self.max_wait, "account": account, "fence": fence_value,
        }).fetchone()
        if row is not None:
            return float(row[0])
        if fence:
            self.check_fence(fence)
        self.refused = LimiterBusy(key, self.wait_for(key, rate))
        raise self.refused

    def check_fence(self, fence: tuple[int, int]) -> None:
        """Raise FencedOut unless the run's fence (account id, fence) is still the account's."""
        account, fence_value = fence
        if not self.execute("SELECT 1 FROM fleet_accounts WHERE id = %s AND fence = %s", fence).fetchone():
            raise FencedOut(f"account {account}: a newer run of it started (fence {fence_value} is no longer "
                            "current); this worker makes no more requests for it")

    def wait_for(self, key: LimitKey, rate: Rate) -> float:
        """How long the next request with ``key`` would wait now (nothing is reserved)."""
        row = self.execute(
            "SELECT greatest(tat - %s - coalesce(%s::float8, extract(epoch FROM clock_timestamp())), 0) "
            "FROM fleet_limits WHERE key = %s", (rate.tolerance, self._now(), key.text())).fetchone()
        return float(row[0]) if row else 0.0

    def acquire(self, key: LimitKey, rate: Rate, *, fence: tuple[int, int] | None = None,
                sleep: Callable[[float], None] | None = None) -> float:
        """Wait for a slot, then return (the request may leave); returns the seconds waited.
        A block set by another worker's 429 while this one slept is waited out too.
        ``sleep``: instead of the limiter's own (e.g. one that a stopping run interrupts)."""
        sleep = sleep or self.sleep
        waited = 0.0
        while True:
            wait = self.reserve(key, rate, fence=fence)
            if wait <= 0:
                return waited
            sleep(wait)
            waited += wait
            blocked = self.blocked_for(key)
            if blocked <= 0:
                return waited
            sleep(blocked)         # blocked meanwhile: this slot is void, take a new one after
            waited += blocked      # (the loop goes on: a slot from after the block)

    def blocked_for(self, key: LimitKey) -> float:
        """Seconds left of a block set by a 429 (0: none)."""
        row = self.execute(
            "SELECT greatest(blocked_until - coalesce(%s::float8, extract(epoch FROM clock_timestamp())), 0) "
            "FROM fleet_limits WHERE key = %s", (self._now(), key.text())).fetchone()
        return float(row[0]) if row and row[0] is not None else 0.0

    def slow_down(self, key: LimitKey, rate: Rate, seconds: float | None) -> None:
        """The platform answered 429 (``seconds``: its Retry-After, if any): no worker sends
        with this key until then, and no burst right after."""
        seconds = DEFAULT_BLOCK_SECONDS if seconds is None else max(float(seconds), 0.0)
        self.execute(_SLOW_DOWN, {"now": self._now(), "key": key.text(), "platform": key.platform,
                                       "seconds": seconds, "tolerance": rate.tolerance})
        log.warning("%s: rate limited by the platform; every worker waits %.0f s", key.text(), seconds)


def limiter_status(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Per platform: requests let through, how many waited and how long, 429s seen, and
    the latest block (epoch seconds), for `archiver fleet status`."""
    rows = conn.execute(
        "SELECT platform, sum(requests), sum(waits), sum(waited), sum(throttled), max(blocked_until) "
        "FROM fleet_limits GROUP BY platform ORDER BY platform").fetchall()
    return [{"platform": p, "requests": int(r), "waits": int(w), "waited_seconds": float(s), "throttled": int(t),
             "blocked_until": b} for p, r, w, s, t, b in rows]


# --------------------------------------------------------------------------- quota


def quota_status(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Per project, its latest day's count (the day as the platform counts it): spent,
    budget and left, for `archiver fleet status`."""
    rows = conn.execute("SELECT DISTINCT ON (project) project, day, spent, budget FROM fleet_quota "
                        "ORDER BY project, day DESC").fetchall()
    return [{"project": p, "day": d.isoformat(), "spent": int(s), "budget": int(b), "left": max(int(b) - int(s), 0)}
            for p, d, s, b in rows]



class SharedQuota(DailyBudget):
    """A DailyBudget whose count lives in PostgreSQL, one row per ``project`` and day: every
    worker spending the project's units charges the same counter, atomically (a charge
    that does not fit is refused, never half made). ``conn``: as SharedLimiter's."""

    def __init__(self, conn: psycopg.Connection | str, project: str, budget: int, **kwargs: Any):
        super().__init__(budget, None, **kwargs)
        self.database, self.project = _Database(conn), project

    @property
    def conn(self) -> psycopg.Connection:
        return self.database.conn

    def left(self) -> int:
        self._roll()
        row = self.database.execute("SELECT spent FROM fleet_quota WHERE project = %s AND day = %s::date",
                                (self.project, self.day)).fetchone()
        self.spent = int(row[0]) if row else 0
        return self.budget - self.spent

    def charge(self, units: int) -> None:
        self._roll()
        row = self.database.execute(
            "INSERT INTO fleet_quota AS q (project, day, spent, budget) SELECT %(p)s, %(d)s::date, %(u)s, %(b)s "
            "WHERE %(u)s <= %(b)s "
            "ON CONFLICT (project, day) DO UPDATE SET spent = q.spent + excluded.spent, budget = excluded.budget "
            "WHERE q.spent + excluded.spent <= excluded.budget RETURNING spent",
            {"p": self.project, "d": self.day, "u": units, "b": self.budget}).fetchone()
        if row is None:
            left = self.left()
            raise BudgetSpent(f"{self.what} of {self.project} ({self.budget} {self.unit}) is used up "
                              f"({self.budget - left} spent today by the fleet, {units} needed for the next step)")
        self.spent = int(row[0])

    def require(self, units: int) -> None:
        if self.left() < units:
            raise BudgetSpent(f"{self.what} of {self.project} ({self.budget} {self.unit}) is used up "
                              f"({self.spent} spent today by the fleet, {units} needed for the next step)")

    def exhaust(self) -> None:
        """The platform said the day's quota is reached: the whole fleet stops for today."""
        self._roll()
        self.database.execute(
            "INSERT INTO fleet_quota AS q (project, day, spent, budget) VALUES (%(p)s, %(d)s::date, %(b)s, %(b)s) "
            "ON CONFLICT (project, day) DO UPDATE SET spent = greatest(q.spent, excluded.budget)",
            {"p": self.project, "d": self.day, "b": self.budget})
        self.spent = max(self.spent, self.budget)


# --------------------------------------------------------------------------- transport


def endpoint_of(path: str, endpoints: tuple[str, ...]) -> str | None:
    """The declared endpoint (ApiRate.endpoints) a request's URL path is, if any: the path
    itself or its end (an API under a path prefix, a simulator's), as the key names it."""
    for endpoint in endpoints:
        if path == endpoint or path.endswith(endpoint):
            return endpoint.strip("/")
    return None


class SharedPacer(Pacer):
    """A net.client.Pacer that also keeps the fleet's shared limit: an ApiClient built with it
    (``pacer=``) takes a slot of ``limiter`` for each request to a host ``rate_for`` names,
    sleeping through the client's own (cancellable) sleep, and a ``Retry-After`` the host
    answers with (a 429, a 503) blocks that key for every worker. The local pacing (the
    rate-limit headers of this client's answers) stays as it is.

    Unlike a transport, a pacer leaves the client's network alone: a client built with a
    LinkPolicy keeps its checked connections. The key is (platform, app, host[, user]), or
    (platform, app, endpoint[, user]) for a request to one of ``endpoints`` (the paths the
    platform counts apart, each at the rate: ApiRate.endpoints)."""

    def __init__(self, limiter: SharedLimiter, platform: str, rate_for: Callable[[str], Rate | None], *,
                 app: str = "default", user: str | None = None, fence: tuple[int, int] | None = None,
                 local: Pacer | None = None, endpoints: tuple[str, ...] = (), **pacer_options: Any):
        """``local``: the client's own pacer, kept as it is (its pacing, shared with the
        connector's other clients); without one, this pacer paces locally itself."""
        super().__init__(**pacer_options)
        self.limiter, self.platform, self.rate_for = limiter, platform, rate_for
        self.app, self.user, self.fence, self.local, self.endpoints = app, user, fence, local, endpoints

    def limit_of(self, host: str, path: str = "") -> tuple[LimitKey, Rate] | None:
        """The key and rate a request to ``host`` and ``path`` counts against (None: not limited)."""
        rate = self.rate_for(host)
        if rate is None:
            return None
        return LimitKey(self.platform, self.app, endpoint_of(path, self.endpoints) or host, self.user), rate

    def delay_for(self, host: str) -> float:
        return self.local.delay_for(host) if self.local is not None else super().delay_for(host)

    def _local_wait(self, host: str, sleep: Callable[[float], None]) -> None:
        if self.local is not None:
            self.local.wait(host, sleep)
        else:
            Pacer.wait(self, host, sleep)

    def _local_observe(self, host: str, headers: httpx.Headers) -> None:
        if self.local is not None:
            self.local.observe(host, headers)
        else:
            Pacer.observe(self, host, headers)

    def _take(self, limit: tuple[LimitKey, Rate] | None, sleep: Callable[[float], None]) -> None:
        if limit is not None:
            _acquire_or_stop(self.limiter, *limit, fence=self.fence, sleep=sleep)

    def _report(self, limit: tuple[LimitKey, Rate] | None, headers: httpx.Headers) -> None:
        if limit is not None and "retry-after" in headers:
            self.limiter.slow_down(*limit, parse_retry_after(headers.get("retry-after")))

    def before_request(self, request: httpx.Request, sleep: Callable[[float], None]) -> None:
        self._local_wait(request.url.host, sleep)
        self._take(self.limit_of(request.url.host, request.url.path), sleep)

    def after_response(self, request: httpx.Request, response: httpx.Response) -> None:
        self._local_observe(request.url.host, response.headers)
        self._report(self.limit_of(request.url.host, request.url.path), response.headers)

    # A caller that knows only the host (no request): the host's limit.
    def wait(self, host: str, sleep: Callable[[float], None]) -> None:
        self._local_wait(host, sleep)
        self._take(self.limit_of(host), sleep)

    def observe(self, host: str, headers: httpx.Headers) -> None:
        self._local_observe(host, headers)
        self._report(self.limit_of(host), headers)


class FencedPacer(Pacer):
    """The pacer of a fleet run's clients that fetch links taken from data (media from a
    CDN, a signed download link): they take no slot of the API's limit, but a run that was
    fenced off (another worker holds the account now) sends none — the fence is asked of
    the database before each request. ``local``: the client's own pacer, kept as it is."""

    def __init__(self, limiter: SharedLimiter, fence: tuple[int, int], local: Pacer):
        super().__init__()
        self.limiter, self.fence, self.local = limiter, fence, local

    def delay_for(self, host: str) -> float:
        return self.local.delay_for(host)

    def wait(self, host: str, sleep: Callable[[float], None]) -> None:
        self.local.wait(host, sleep)
        _stop_unless_current(self.limiter, self.fence)

    def observe(self, host: str, headers: httpx.Headers) -> None:
        self.local.observe(host, headers)


def _stop_unless_current(limiter: SharedLimiter, fence: tuple[int, int]) -> None:
    """limiter.check_fence; a run fenced off (or whose fence cannot be asked) is stopped."""
    try:
        limiter.check_fence(fence)
    except FencedOut as stop:
        raise Cancelled(f"stopped: {stop}") from stop
    except Exception as error:
        if not _database_error(error):
            raise
        raise Cancelled(f"stopped: the fleet database cannot be reached ({type(error).__name__}); "
                        "no request leaves without knowing the run still holds its account") from error


def _acquire_or_stop(limiter: SharedLimiter, key: LimitKey, rate: Rate, *, fence: tuple[int, int] | None,
                     sleep: Callable[[float], None]) -> None:
    """limiter.acquire; a run that must not go on is stopped as a run asked to stop is."""
    try:
        limiter.acquire(key, rate, fence=fence, sleep=sleep)
    except (LimiterBusy, FencedOut) as stop:
        raise Cancelled(f"stopped: {stop}") from stop
    except Exception as error:
        if not _database_error(error):
            raise
        # No limit can be kept without the database: no request leaves.
        raise Cancelled(f"stopped: the fleet database cannot be reached ({type(error).__name__}); "
                        "no request leaves without the shared limit") from error



def _sleep_unless_cancelled(sleep: Callable[[float], None], cancel: Callable[[], bool], seconds: float) -> None:
    """``sleep`` a second at a time, asking ``cancel`` before each: a run asked to stop
    does not sleep out its slot."""
    while seconds > 0:
        if cancel():
            raise Cancelled("stopped by request")
        step = min(seconds, 1.0)
        sleep(step)
        seconds -= step


def _database_error(error: Exception) -> bool:
    import psycopg

    from archiver.fleet.db import FleetError

    return isinstance(error, (psycopg.Error, FleetError))


def api_host_limit(platform: str, api_url: str, rate: Rate, *, app: str = "default", user: str | None = None,
                   endpoints: tuple[str, ...] = ()) -> Callable[[httpx.Request], tuple[LimitKey, Rate] | None]:
    """A ``limit_of`` for LimitedTransport: requests to the host of ``api_url`` (an account's
    API, its ``base_url``) count against (platform, app, that host[, user]), or against
    (platform, app, endpoint[, user]) for one of ``endpoints`` (ApiRate.endpoints); requests
    elsewhere (media from a CDN, a signed download link) are not limited."""
    host = urlsplit(api_url).hostname
    if not host:
        raise ValueError(f"{api_url!r} names no host")

    def limit_of(request: httpx.Request) -> tuple[LimitKey, Rate] | None:
        if request.url.host != host:
            return None
        return LimitKey(platform, app, endpoint_of(request.url.path, endpoints) or host, user), rate

    return limit_of


class LimitedTransport(httpx.BaseTransport):
    """Asks ``limiter`` before each request leaves and tells it of each 429.

    Wrap the transport of API requests only: handed to a connector as its ``transport``, it
    would also replace the network of its link-checked clients (net/links.py connects only
    to addresses it checked; a transport given to it is used as it is). SharedPacer is the
    way for a whole run.

    ``limit_of(request)`` says which key and rate a request counts against (None: not
    limited, e.g. a file from a CDN). ``fence``: the run's (account id, fence), so a worker
    that was cut off makes no more requests. ``cancel``: the run's; a run asked to stop
    does not sleep out its slot.

    A run that must not go on — fenced out, or its next slot too far away (LimiterBusy) —
    is stopped as a run asked to stop is (``Cancelled``, "stopped: …"): the runner records
    it interrupted and the next run resumes from its checkpoint."""

    def __init__(self, inner: httpx.BaseTransport, limiter: SharedLimiter,
                 limit_of: Callable[[httpx.Request], tuple[LimitKey, Rate] | None], *,
                 fence: tuple[int, int] | None = None, cancel: Callable[[], bool] = lambda: False):
        self.inner, self.limiter, self.limit_of, self.fence, self.cancel = inner, limiter, limit_of, fence, cancel

    def _sleep(self, seconds: float) -> None:
        _sleep_unless_cancelled(self.limiter.sleep, self.cancel, seconds)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        limit = self.limit_of(request)
        if limit is not None:
            _acquire_or_stop(self.limiter, *limit, fence=self.fence, sleep=self._sleep)
        response = self.inner.handle_request(request)
        if limit is not None and response.status_code == 429:
            self.limiter.slow_down(*limit, parse_retry_after(response.headers.get("Retry-After")))
        return response

    def close(self) -> None:
        self.inner.close()


# --------------------------------------------------------------------------- a run's limits

# A platform whose connector declares no rate (Connector.api_rate) and that the operator gave
# none (fleet_rates): the fleet still sends its API requests through the limiter (a zombie
# makes none), at a rate no platform is known to refuse for one app.
DEFAULT_RATE = Rate(per_minute=60, burst=5)


def platform_rate(conn: psycopg.Connection, platform: str, app: str = "default") -> tuple[Rate, bool]:
    """The rate a fleet keeps for ``platform``'s API requests of ``app`` and whether the
    platform counts it per user token: the operator's (table fleet_rates: the app's row,
    else the platform's '*' row), else the connector's declaration (Connector.api_rate),
    else DEFAULT_RATE. Where the platform counts endpoints apart (``declared_endpoints``),
    the rate is each endpoint's."""
    declared = _declared_rate(platform)
    per_user = bool(declared and declared.per_user)
    row = conn.execute("SELECT per_minute, burst FROM fleet_rates WHERE platform = %s AND app IN (%s, '*') "
                       "ORDER BY app = '*' LIMIT 1", (platform, app)).fetchone()
    if row is not None:
        return Rate(float(row[0]), int(row[1])), per_user
    if declared is not None:
        return Rate(declared.per_minute, declared.burst), per_user
    return DEFAULT_RATE, per_user


def declared_endpoints(platform: str) -> tuple[str, ...]:
    """The paths ``platform`` counts apart (ApiRate.endpoints), each with its own limit."""
    declared = _declared_rate(platform)
    return declared.endpoints if declared else ()


def _declared_rate(platform: str):
    from archiver.connector import UnknownPlatform, get_connector

    try:
        return get_connector(platform).api_rate
    except UnknownPlatform:
        return None


class FleetRunLimits:
    """The limits of one fleet run (a net.client.RunLimits; fleet/worker.py installs it with
    ``net.client.run_limits`` around the run): each API client of the run paces through
    ``SharedPacer`` — one limit per (platform, app, API host or endpoint[, account]) for
    every worker, the run's fence checked with each slot — and a connector's daily budget
    is a ``SharedQuota`` counted per (platform, project) by the whole fleet. Clients that
    fetch links taken from data (media from a CDN) keep their local pacing and take no
    slot, but send nothing once the run is fenced off (``FencedPacer``). A token refresh
    takes a slot as an API request does, and a fenced-off run sends none.

    ``database_url``: the limiter and the quotas connect on their own (each reconnects once
    after a database restart), when first used: a run that makes no API client costs nothing;
    ``close()`` at the run's end. ``rate``: None: the platform's (``platform_rate``, read when
    the first client is made); ``user``: the account, where the platform counts per user;
    ``cancel``: the worker's stop request (a refresh waiting for its slot gives up on it)."""

    def __init__(self, database_url: str, platform: str, rate: Rate | None = None, *, app: str = "default",
                 user: str | None = None, fence: tuple[int, int] | None = None,
                 clock: Callable[[], float] | None = None, max_wait: float = DEFAULT_MAX_WAIT,
                 endpoints: tuple[str, ...] | None = None, cancel: Callable[[], bool] = lambda: False):
        """``endpoints``: the paths counted apart; None: the platform's declaration."""
        self.database_url, self.platform, self.rate, self.app = database_url, platform, rate, app
        self.user, self.fence, self.clock, self.cancel = user, fence, clock, cancel
        self.endpoints = declared_endpoints(platform) if endpoints is None else endpoints
        self.limiter = SharedLimiter(database_url, clock=clock, max_wait=max_wait)
        self._quotas: list[SharedQuota] = []
        self._per_user = False

    def _shared(self, local: Pacer | None) -> SharedPacer:
        if self.rate is None:
            self.rate, self._per_user = platform_rate(self.limiter.conn, self.platform, self.app)
        rate = self.rate
        return SharedPacer(self.limiter, self.platform, lambda host: rate, app=self.app,
                           user=self.user if self._per_user else None, fence=self.fence, local=local,
                           endpoints=self.endpoints)

    def pacer(self, local: Pacer, *, checked_links: bool) -> Pacer:
        if checked_links:
            return FencedPacer(self.limiter, self.fence, local) if self.fence else local
        return self._shared(local)

    def daily_budget(self, local: DailyBudget, *, project: str) -> DailyBudget:
        # The project's name may be a client id kept among the secrets: the row holds a fingerprint.
        quota = SharedQuota(self.database_url, f"{self.platform}:{token_fingerprint(project)}", local.budget,
                            what=local.what, unit=local.unit, zone=local.zone, clock=local.clock)
        self._quotas.append(quota)
        return quota

    def token_refresh(self, url: str | None) -> None:
        """A slot for the refresh: the token endpoint's (its host's, or its own where the
        platform counts it apart; "token" when the URL is unknown), under the run's fence."""
        shared = self._shared(None)
        parts = urlsplit(url or "")
        limit = shared.limit_of(parts.hostname or "token", parts.path)
        if limit is not None:
            _acquire_or_stop(self.limiter, *limit, fence=self.fence,
                             sleep=lambda seconds: _sleep_unless_cancelled(self.limiter.sleep, self.cancel, seconds))

    def close(self) -> None:
        self.limiter.close()
        for quota in self._quotas:
            quota.database.close()


def set_rate(conn: psycopg.Connection, platform: str, rate: Rate | None, *, app: str = "*") -> None:
    """The operator's rate for ``platform`` (``app``: one app registration, '*': all of them);
    None removes it (the connector's declared rate applies again). Runs starting after it use it."""
    if rate is None:
        conn.execute("DELETE FROM fleet_rates WHERE platform = %s AND app = %s", (platform, app))
    else:
        conn.execute("INSERT INTO fleet_rates (platform, app, per_minute, burst) VALUES (%s, %s, %s, %s) "
                     "ON CONFLICT (platform, app) DO UPDATE SET per_minute = excluded.per_minute, "
                     "burst = excluded.burst", (platform, app, rate.per_minute, rate.burst))


def rates_table(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every installed platform's rate for its default app, and every operator's row: platform,
    app, per_minute, burst, per_user, and where it comes from ('fleet_rates', 'declared', 'default')."""
    from archiver.connector import installed_connectors

    rows = []
    overrides = conn.execute("SELECT platform, app, per_minute, burst FROM fleet_rates ORDER BY platform, app").fetchall()
    overridden = {platform for platform, app, _, _ in overrides if app == "*"}
    for platform, cls in sorted(installed_connectors().items()):
        declared = cls.api_rate
        if platform not in overridden:
            rate = Rate(declared.per_minute, declared.burst) if declared else DEFAULT_RATE
            rows.append({"platform": platform, "app": "*", "per_minute": rate.per_minute, "burst": rate.burst,
                         "per_user": bool(declared and declared.per_user),
                         "from": "declared" if declared else "default"})
    for platform, app, per_minute, burst in overrides:
        try:
            declared = installed_connectors()[platform].api_rate
        except KeyError:
            declared = None
        rows.append({"platform": platform, "app": app, "per_minute": float(per_minute), "burst": int(burst),
                     "per_user": bool(declared and declared.per_user), "from": "fleet_rates"})
    return sorted(rows, key=lambda row: (row["platform"], row["app"]))
