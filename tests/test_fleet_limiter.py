"""fleet.limiter against the tests' PostgreSQL: one rate limit for every worker (each worker
its own connection), a 429 seen by one slowing all, a zombie refused, and a daily quota
counted once per project. Time is a fake clock handed to the limiter (the database's clock
otherwise); sleeps are recorded, never slept."""

from __future__ import annotations

import threading

import httpx
import pytest
from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)

psycopg = pytest.importorskip("psycopg")

from archiver.fleet import schema  # noqa: E402
from archiver.fleet.limiter import (  # noqa: E402
    LimitedTransport,
    LimiterBusy,
    LimitKey,
    Rate,
    SharedLimiter,
    SharedPacer,
    SharedQuota,
    api_host_limit,
    limiter_status,
    quota_status,
    token_fingerprint,
)
from archiver.fleet.storage import FencedOut  # noqa: E402
from archiver.net.budget import BudgetedTransport, BudgetSpent  # noqa: E402
from archiver.net.client import ApiClient, Cancelled, RetryPolicy  # noqa: E402

KEY = LimitKey("youtube", "project-1", "videos")
PER_SECOND = Rate(per_minute=60)            # one a second, no burst


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def database(fleet_database):
    with psycopg.connect(fleet_database, autocommit=True) as connection:
        for part in schema.PARTS:
            connection.execute(part.sql)
        connection.execute("INSERT INTO fleet_accounts (tenant, platform, name) VALUES ('t', 'youtube', 'a')")
    return fleet_database


@pytest.fixture
def workers(database):
    """Three workers' limiters, each on its own connection, sharing one fake clock."""
    clock = Clock()
    connections = [psycopg.connect(database, autocommit=True) for _ in range(3)]
    limiters = [SharedLimiter(c, clock=clock, sleep=clock.sleep) for c in connections]
    yield clock, limiters
    for connection in connections:
        connection.close()


def test_workers_share_one_rate_and_a_burst_is_bounded(workers):
    clock, (a, b, c) = workers
    assert [w.reserve(KEY, PER_SECOND) for w in (a, b, c, a)] == [0, 1, 2, 3]   # one slot each, in order
    clock.now += 10                                       # idle: the slots are in the past
    burst = Rate(per_minute=60, burst=3)
    other = LimitKey("youtube", "project-1", "search")    # another endpoint: its own limit
    assert [w.reserve(other, burst) for w in (a, b, c, a, b)] == [0, 0, 0, 1, 2]
    clock.now += 3600                                     # an idle hour saves no more than the burst
    assert [w.reserve(other, burst) for w in (c, a, b, c)] == [0, 0, 0, 1]


def test_concurrent_reservations_get_distinct_slots(database):
    """Twelve threads on their own connections asking at one instant: twelve slots, none shared."""
    clock = Clock()
    waits: list[float] = []
    start = threading.Barrier(12)

    def worker():
        with psycopg.connect(database, autocommit=True) as connection:
            limiter = SharedLimiter(connection, clock=clock)
            start.wait(timeout=30)
            waits.append(limiter.reserve(KEY, Rate(per_minute=120)))

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(waits) == [n * 0.5 for n in range(12)]


def test_a_slot_too_far_away_is_not_taken(workers):
    clock, (a, b, _) = workers
    a.max_wait = b.max_wait = 2.5
    assert [a.reserve(KEY, PER_SECOND) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(LimiterBusy, match=r"youtube/project-1/videos: the next request may leave in 3 s"):
        b.reserve(KEY, PER_SECOND)
    clock.now += 1
    assert b.reserve(KEY, PER_SECOND) == 2       # the refused one reserved nothing


def test_one_workers_429_slows_every_worker(workers):
    clock, (a, b, c) = workers
    burst = Rate(per_minute=60, burst=5)
    assert a.reserve(KEY, burst) == 0
    a.slow_down(KEY, burst, 30)                  # the platform said Retry-After: 30
    assert b.blocked_for(KEY) == 30
    assert b.reserve(KEY, burst) == 30           # everyone waits the block out ...
    assert c.reserve(KEY, burst) == 31           # ... and no burst of five right after it
    a.slow_down(KEY, burst, None)                # a 429 without Retry-After: a minute
    assert b.reserve(KEY, burst) == 60
    assert limiter_status(a.conn)[0] | {"blocked_until": None} == {
        "platform": "youtube", "requests": 4, "waits": 3, "waited_seconds": 121.0, "throttled": 2, "blocked_until": None}


def test_a_block_set_while_waiting_is_waited_out(workers):
    clock, (a, b, _) = workers
    a.reserve(KEY, PER_SECOND)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock.now += seconds
        if len(slept) == 1:                      # while b waits for its slot, a sees a 429
            a.slow_down(KEY, PER_SECOND, 20)

    b.sleep = sleep
    assert b.acquire(KEY, PER_SECOND) == 21      # its own second, then the whole block
    assert slept == [1, 20]
    assert a.reserve(KEY, PER_SECOND) == 1       # b took a new slot after the block: a comes a second later


def test_a_zombie_makes_no_request(workers):
    clock, (a, _, _) = workers
    connection = a.conn
    fence = connection.execute("UPDATE fleet_accounts SET fence = fence + 1 WHERE id = 1 RETURNING fence").fetchone()[0]
    assert a.reserve(KEY, PER_SECOND, fence=(1, fence)) == 0
    connection.execute("UPDATE fleet_accounts SET fence = fence + 1 WHERE id = 1")   # the job moved on
    with pytest.raises(FencedOut, match="account 1: a newer run of it started"):
        a.reserve(KEY, PER_SECOND, fence=(1, fence))
    assert a.reserve(KEY, PER_SECOND) == 1       # the refused one reserved nothing


def test_per_user_limits_are_apart_and_hold_no_token():
    token = "ya29.secret-access-token"
    one, two = (LimitKey("x", "app", "tweets", token_fingerprint(t)) for t in (token, "another-token"))
    assert one.text() != two.text() and token not in one.text() and "secret" not in one.text()
    assert one.text().startswith("x/app/tweets/")


def test_the_transport_waits_for_its_slot_and_reports_429s(workers):
    clock, (a, b, _) = workers
    answers = iter([httpx.Response(200), httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200)])
    seen = []

    def platform(request):
        seen.append((request.url.path, clock.now))
        return next(answers)

    def limit_of(request):
        return None if request.url.host == "cdn.example" else (KEY, PER_SECOND)

    transports = [LimitedTransport(httpx.MockTransport(platform), w, limit_of) for w in (a, b)]
    clients = [httpx.Client(transport=t, base_url="https://api.example") for t in transports]
    start = clock.now
    clients[0].get("/one")
    assert clients[1].get("/two").status_code == 429       # worker b's request, a second later
    clients[0].get("/three")                               # worker a waits for b's 429 to pass
    assert [(path, when - start) for path, when in seen] == [("/one", 0), ("/two", 1), ("/three", 8)]
    cdn = httpx.Client(transport=LimitedTransport(httpx.MockTransport(lambda r: httpx.Response(200)), a, limit_of))
    before = clock.now
    cdn.get("https://cdn.example/file.jpg")                # not limited: no wait, no row touched
    assert clock.now == before


def test_the_transport_stops_a_run_that_must_not_go_on_as_a_stop_request(workers):
    """Fenced out, a slot too far away, or the run asked to stop while it waits: Cancelled,
    which the runner records as interrupted (the next run resumes from its checkpoint)."""
    clock, (a, _, _) = workers
    fence = a.conn.execute("UPDATE fleet_accounts SET fence = fence + 1 WHERE id = 1 RETURNING fence").fetchone()[0]
    sent = []
    platform = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200))
    stopping = []
    transport = LimitedTransport(platform, a, lambda request: (KEY, PER_SECOND), fence=(1, fence),
                                 cancel=lambda: bool(stopping))
    client = httpx.Client(transport=transport, base_url="https://api.example")
    client.get("/one")
    a.slow_down(KEY, PER_SECOND, 5)
    steps = []
    a.sleep = lambda seconds: (steps.append(seconds), clock.sleep(seconds), len(steps) == 2 and stopping.append(1))
    with pytest.raises(Cancelled, match="stopped by request"):
        client.get("/two")                                 # stopped during its wait, after two 1-s steps
    assert steps == [1, 1] and len(sent) == 1

    a.max_wait = 10
    a.slow_down(KEY, PER_SECOND, 60)
    stopping.clear()
    with pytest.raises(Cancelled, match="stopped: youtube/project-1/videos: the next request may leave in"):
        client.get("/three")
    a.conn.execute("UPDATE fleet_accounts SET fence = fence + 1 WHERE id = 1")
    with pytest.raises(Cancelled, match="stopped: account 1: a newer run of it started"):
        client.get("/four")
    assert len(sent) == 1


def test_an_accounts_api_host_is_limited_and_other_hosts_are_not():
    limit_of = api_host_limit("mastodon", "https://social.example/api", PER_SECOND, app="client-1",
                              user=token_fingerprint("token"))
    key, rate = limit_of(httpx.Request("GET", "https://social.example/api/v1/statuses"))
    assert (key.text(), rate) == (f"mastodon/client-1/social.example/{token_fingerprint('token')}", PER_SECOND)
    assert limit_of(httpx.Request("GET", "https://files.social.example/media/x.jpg")) is None
    per_endpoint = api_host_limit("tiktok", "https://open.example", PER_SECOND, endpoints=("/v2/video/list/",))
    assert [per_endpoint(httpx.Request("POST", f"https://open.example{path}"))[0].text()
            for path in ("/v2/video/list/", "/v2/oauth/token/")] == ["tiktok/default/v2/video/list",
                                                                   "tiktok/default/open.example"]
    with pytest.raises(ValueError, match="names no host"):
        api_host_limit("mastodon", "not a url", PER_SECOND)


def test_one_quota_per_project_across_workers_and_days(workers):
    clock, (a, b, _) = workers
    one = SharedQuota(a.conn, "project-1", 100, clock=clock)
    two = SharedQuota(b.conn, "project-1", 100, clock=clock)
    elsewhere = SharedQuota(b.conn, "project-2", 100, clock=clock)
    one.charge(60)
    with pytest.raises(BudgetSpent, match=r"of project-1 \(100 requests\) is used up \(60 spent today by the fleet, 50"):
        two.charge(50)
    two.charge(40)
    assert (one.left(), two.left(), elsewhere.left()) == (0, 0, 100)
    with pytest.raises(BudgetSpent):
        one.require(1)
    assert quota_status(a.conn) == [{"project": "project-1", "day": "1970-01-12", "spent": 100, "budget": 100, "left": 0}]
    clock.now += 86_400                                    # a new day: a fresh quota
    assert one.left() == 100
    two.exhaust()                                          # the platform says it is spent
    assert one.left() == 0

    # As connectors use their DailyBudget: charged before each request leaves.
    three = SharedQuota(a.conn, "project-3", 3, clock=clock)
    client = httpx.Client(transport=BudgetedTransport(httpx.MockTransport(lambda r: httpx.Response(200)),
                                                      three, lambda r: 2), base_url="https://api.example")
    client.get("/videos")
    with pytest.raises(BudgetSpent):
        client.get("/videos")
    assert three.left() == 1


def test_concurrent_charges_never_overspend(database):
    clock = Clock()
    charged: list[int] = []
    start = threading.Barrier(6)

    def worker():
        with psycopg.connect(database, autocommit=True) as connection:
            quota = SharedQuota(connection, "project-1", 25, clock=clock)
            start.wait(timeout=30)
            for _ in range(10):
                try:
                    quota.charge(1)
                    charged.append(1)
                except BudgetSpent:
                    pass

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(charged) == 25


def test_a_limiter_given_the_url_connects_again_when_its_connection_breaks(database):
    """As after a database restart: the server ends every connection (pg_terminate_backend
    does that without a restart, which would free the server's port for a moment)."""
    clock = Clock()
    limiter = SharedLimiter(database, clock=clock, sleep=clock.sleep)
    quota = SharedQuota(database, "project-1", 10, clock=clock)
    assert [limiter.reserve(KEY, PER_SECOND) for _ in range(2)] == [0, 1]
    quota.charge(3)
    with psycopg.connect(database, autocommit=True) as admin:
        ended = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]
    assert ended == 2
    assert limiter.reserve(KEY, PER_SECOND) == 2           # the same limit, on a new connection
    quota.charge(3)
    assert quota.left() == 4


def test_without_its_database_the_transport_lets_no_request_leave(workers):
    clock, (a, _, _) = workers
    sent = []
    transport = LimitedTransport(httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200)),
                                 a, lambda request: (KEY, PER_SECOND))
    a.conn.close()                                         # given a connection, not a URL: no reconnecting
    with pytest.raises(Cancelled, match="stopped: the fleet database cannot be reached"):
        httpx.Client(transport=transport).get("https://api.example/x")
    assert sent == []


def test_api_clients_of_two_workers_share_the_limit_through_their_pacers(workers):
    """The ApiClient way (its network untouched): worker A's 429 with Retry-After holds worker
    B's next request back, and A's own retry comes after the block too."""
    from archiver.net.client import NetError

    clock, (a, b, _) = workers
    seen = []
    answers = {"/a": [httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={})],
               "/b": [httpx.Response(200, json={})]}

    def platform(request):
        seen.append((request.url.path, clock.now))
        return answers[request.url.path].pop(0)

    def client(limiter, attempts):
        pacer = SharedPacer(limiter, "youtube", lambda host: PER_SECOND if host == "api.example" else None,
                            app="project-1", clock=clock, wall_clock=clock)
        return ApiClient("https://api.example", transport=httpx.MockTransport(platform), pacer=pacer,
                         sleep=clock.sleep, retry=RetryPolicy(attempts=attempts))

    start = clock.now
    with pytest.raises(NetError, match="429"):
        client(a, attempts=1).get_json("/a")                 # A gives up at once (no retry) ...
    client(b, attempts=1).get_json("/b")                     # ... B waits the block out
    client(a, attempts=1).get_json("/a")                     # and A's next request comes after B's
    assert [(path, when - start) for path, when in seen] == [("/a", 0), ("/b", 7), ("/a", 8)]
    assert limiter_status(a.conn)[0]["throttled"] == 1


def test_endpoints_the_platform_counts_apart_have_a_limit_each(workers):
    """TikTok counts each endpoint apart: a listing does not wait for the profile's slots, two
    requests to one endpoint do; a path not declared shares the API host's limit. Per user where
    the platform counts per user token."""
    clock, (a, b, _) = workers
    seen = []

    def platform(request):
        seen.append((request.url.path, clock.now))
        return httpx.Response(200, json={})

    def client(limiter, user=None):
        pacer = SharedPacer(limiter, "tiktok", lambda host: PER_SECOND, app="app-1", user=user,
                            endpoints=("/v2/user/info/", "/v2/video/list/"), clock=clock, wall_clock=clock)
        return ApiClient("https://api.example/tiktok", transport=httpx.MockTransport(platform), pacer=pacer,
                         sleep=clock.sleep)

    one, two = client(a), client(b)
    start = clock.now
    for c, path in [(one, "v2/user/info/"), (two, "v2/video/list/"), (two, "v2/user/info/"),
                    (one, "v2/video/list/"), (one, "v2/oauth/token/"), (two, "v2/user/data/add/")]:
        c.get_json(path)
    assert [(path, when - start) for path, when in seen] == [
        ("/tiktok/v2/user/info/", 0), ("/tiktok/v2/video/list/", 0),    # two endpoints: no wait
        ("/tiktok/v2/user/info/", 1), ("/tiktok/v2/video/list/", 1),    # the same endpoint again: a second
        ("/tiktok/v2/oauth/token/", 1), ("/tiktok/v2/user/data/add/", 2)]   # the host's limit, shared
    keys = dict(a.conn.execute("SELECT key, requests FROM fleet_limits").fetchall())
    assert keys == {"tiktok/app-1/v2/user/info": 2, "tiktok/app-1/v2/video/list": 2, "tiktok/app-1/api.example": 2}
    client(a, user="account-7").get_json("v2/video/list/")            # per user: a key of its own, no wait
    assert seen[-1][1] == clock.now and "tiktok/app-1/v2/video/list/account-7" in dict(
        a.conn.execute("SELECT key, requests FROM fleet_limits").fetchall())
    for c in (one, two):
        c.close()


def test_a_fenced_pacer_takes_no_slot_but_stops_a_zombie(workers):
    """Media of a run (links from data, a CDN): no slot of the API's limit, the fence asked
    before each request; without its database no request leaves either."""
    from archiver.fleet.limiter import FencedPacer
    from archiver.net.client import Pacer

    clock, (a, _, _) = workers
    sent = []
    fence = a.conn.execute("UPDATE fleet_accounts SET fence = fence + 1 WHERE id = 1 RETURNING fence").fetchone()[0]
    media = ApiClient(transport=httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200)),
                      pacer=FencedPacer(a, (1, fence), Pacer()), sleep=clock.sleep)
    media.request("GET", "https://cdn.example/a.jpg")
    media.request("GET", "https://cdn.example/b.jpg")
    assert len(sent) == 2 and a.conn.execute("SELECT count(*) FROM fleet_limits").fetchone() == (0,)
    a.conn.execute("UPDATE fleet_accounts SET fence = fence + 1 WHERE id = 1")   # the job moved on
    with pytest.raises(Cancelled, match="stopped: account 1: a newer run of it started"):
        media.request("GET", "https://cdn.example/c.jpg")
    a.conn.close()
    with pytest.raises(Cancelled, match="the fleet database cannot be reached"):
        media.request("GET", "https://cdn.example/d.jpg")
    assert len(sent) == 2


def test_a_token_refresh_takes_a_slot_of_its_endpoint_and_a_stopping_run_does_not_wait_for_it(database):
    """FleetRunLimits.token_refresh (what net.tokens asks before a refresh in a fleet run): the
    token endpoint's host limit, or "token" when the endpoint is unknown; a worker asked to stop
    does not sleep out the slot; a fenced-off run gets none."""
    from archiver.fleet.limiter import FleetRunLimits

    clock, stop = Clock(), threading.Event()
    with psycopg.connect(database, autocommit=True) as connection:
        (fence,) = connection.execute("UPDATE fleet_accounts SET fence = fence + 1 WHERE id = 1 RETURNING fence").fetchone()
        limits = FleetRunLimits(database, "tiktok", PER_SECOND, fence=(1, fence), clock=clock, cancel=stop.is_set)
        limits.limiter.sleep = clock.sleep
        try:
            start = clock.now
            limits.token_refresh("https://open.example/v2/oauth/token/")
            limits.token_refresh(None)
            limits.token_refresh("https://open.example/v2/oauth/token/")      # the host's next slot: a second on
            assert clock.now - start == 1
            stop.set()
            with pytest.raises(Cancelled, match="stopped by request"):
                limits.token_refresh("https://open.example/v2/oauth/token/")
            assert clock.now - start == 1                                      # not slept
            stop.clear()
            connection.execute("UPDATE fleet_accounts SET fence = fence + 1 WHERE id = 1")
            with pytest.raises(Cancelled, match="a newer run of it started"):
                limits.token_refresh(None)
        finally:
            limits.close()
        assert dict(connection.execute("SELECT key, requests FROM fleet_limits").fetchall()) == {
            "tiktok/default/open.example": 3, "tiktok/default/token": 1}
