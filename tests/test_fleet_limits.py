"""A fleet run's requests keep the limits shared by every worker (net.client.run_limits, installed
by fleet/worker.py for each run: fleet/limiter.py FleetRunLimits), against the tests' PostgreSQL
and the platforms' own simulators on loopback:

* two runs of one platform at once leave no faster than the configured rate, every API request
  through the shared limiter, each endpoint TikTok counts apart with a limit of its own (the
  simulator's request log, arrival times on the real clock: a request never leaves before its
  slot, so the last one's lower bound cannot flake);
* a run fenced off (another worker holds the account now) sends no media download and no token
  refresh (the simulator's log shows none), where the same run sent both before;
* a 429 seen by one run holds the other run's next request back (fake clock);
* YouTube runs of two accounts of one Google project spend one quota counter;
* a single user's run (nothing installed) keeps its local pacer and budget.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import httpx
import pytest
from fleet_world import fetch
from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)

psycopg = pytest.importorskip("psycopg")

from archiver.net.budget import DailyBudget, run_daily_budget  # noqa: E402
from archiver.net.client import ApiClient, NetError, Pacer, RetryPolicy, run_limits  # noqa: E402

NOON = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
SLOT = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.timezone.utc)


def _fleet(url: str, world, platform: str, names: tuple[str, ...], secrets, **options):
    from archiver.fleet import accounts as fleet_accounts
    from archiver.fleet import db, schema

    ids = []
    with db.connect(url) as connection:
        schema.apply(connection)
        for name in names:
            account, _ = fleet_accounts.add(connection, "acme", platform, name, schedule="0 3 * * *",
                                            timezone="UTC", options={"base_url": world.base_url, **options})
            world.store_credentials(secrets, name)
            ids.append(account.id)
    return ids


def _quick_rate(url: str, platform: str) -> None:
    """A rate no test run waits for (YouTube declares none: the fleet's default would pace it)."""
    fetch(url, "INSERT INTO fleet_rates (platform, per_minute, burst) VALUES (%s, 6000, 20) RETURNING platform",
          (platform,))


def _run_at_once(services, ids):
    """Each account's run in its own thread (two workers' runs), all started together."""
    results: dict[int, str] = {}

    def run(account_id: int) -> None:
        results[account_id] = services.run_job(account_id, SLOT, full=False, job_id=None)

    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _timed(fake):
    """The arrival time of each request the simulator answers (its log has none)."""
    arrivals: list[tuple[float, str, int]] = []
    handle = fake.handle

    def timed(request):
        response = handle(request)
        arrivals.append((time.time(), request.url.path, response.status_code))
        return response

    fake.handle = timed
    return arrivals


def test_two_runs_of_one_platform_keep_the_configured_rate_together(fleet_database, tmp_path):
    from archiver.fleet.worker import FleetServices, LocalArchives
    from archiver.secrets import MemorySecretStore
    from archiver.sim import installed_simulators

    secrets = MemorySecretStore()
    with installed_simulators()["tiktok"].start_demo(posts=21, followers=4) as world:   # 2 pages of videos
        ids = _fleet(fleet_database, world, "tiktok", ("one", "two"), secrets)
        # The operator's rate for TikTok (instead of the connector's 600 a minute): 4 a second, no burst,
        # for each endpoint (TikTok counts /v2/user/info/, /v2/video/list/ … apart).
        fetch(fleet_database, "INSERT INTO fleet_rates (platform, per_minute, burst) VALUES ('tiktok', 240, 1) "
              "RETURNING platform")
        arrivals = _timed(world.fake)
        start = time.time()
        results = _run_at_once(FleetServices(fleet_database, LocalArchives(tmp_path, secrets=secrets)), ids)
    assert results == {ids[0]: "ok", ids[1]: "ok"}
    assert all(status != 429 for _, _, status in arrivals)
    by_endpoint: dict[str, list[float]] = {}
    for when, path, _ in sorted(arrivals):
        if path.startswith("/v2/") and "/oauth/" not in path:
            by_endpoint.setdefault(path, []).append(when)
    keys = dict(fetch(fleet_database, "SELECT key, requests FROM fleet_limits WHERE platform = 'tiktok'"))
    # Every API request took a slot of its endpoint's limit (covers from the CDN took none:
    # media are not the API's), one limit per endpoint, none host-wide.
    assert keys == {f"tiktok/default{path.rstrip('/')}": len(times) for path, times in by_endpoint.items()}
    assert len(by_endpoint["/v2/video/list/"]) >= 4 and len(by_endpoint) >= 2
    ((waits,),) = fetch(fleet_database, "SELECT sum(waits) FROM fleet_limits WHERE platform = 'tiktok'")
    assert waits > 0                                  # the runs queued for their slots
    # Slots of an endpoint are 0.25 s apart from its first reservation (after ``start``) and no
    # request leaves before its own: its n-th arrival comes (n-1) intervals after the start at the earliest.
    for path, times in by_endpoint.items():
        for n, when in enumerate(times):
            assert when - start >= n * 0.25 - 0.01, (path, n, when - start)


def test_a_fenced_off_run_sends_no_media_download_and_no_token_refresh(fleet_database):
    """A zombie: its run still holds an API client, a media client and its tokens when another
    worker takes the account over (the fence moves). Its next media download (a CDN file: no API
    slot, but the fence is asked) and its next token refresh (a rotating refresh token spent by the
    zombie would cut the live run off) are stopped before they leave."""
    from archiver.connector import get_connector
    from archiver.fleet import accounts as fleet_accounts
    from archiver.fleet import db, ledger
    from archiver.fleet.limiter import FleetRunLimits
    from archiver.net.client import Cancelled
    from archiver.secrets import MemorySecretStore
    from archiver.sim import installed_simulators

    secrets = MemorySecretStore()
    with installed_simulators()["tiktok"].start_demo(posts=2, followers=2) as world:
        (account_id,) = _fleet(fleet_database, world, "tiktok", ("one",), secrets)
        with db.connect(fleet_database) as connection:
            account = fleet_accounts.get(connection, account_id)
            assert account is not None
            ticket = ledger.start_run(connection, account_id, SLOT, job_id=None, worker="zombie", full=False)
        limits = FleetRunLimits(fleet_database, "tiktok", fence=(account_id, ticket.fence))
        try:
            with run_limits(limits):        # what the worker does around a run
                connector = get_connector("tiktok")(account.config(), secrets)
                api, media = connector._api(), connector.media_client()
            videos, _, _ = api.list_videos(None)
            covers = [video["cover_image_url"] for video in videos]

            def download(url: str) -> bytes:
                with media.stream("GET", url) as response:
                    return response.read()

            # While the run holds the account, both leave.
            assert download(covers[0])
            api.tokens.refresh()
            sent = [path for _, path, _ in world.fake.log]
            assert sum(path.startswith("/cdn/") for path in sent) == 1 and sent.count("/v2/oauth/token/") == 1
            host = world.base_url.split("://")[1].split(":")[0]
            # The refresh took a slot of the token endpoint's host (the endpoints counted apart have theirs).
            assert fetch(fleet_database, "SELECT requests FROM fleet_limits WHERE key = %s",
                         (f"tiktok/default/{host}",)) == [(1,)]

            fetch(fleet_database, "UPDATE fleet_accounts SET fence = fence + 1 WHERE id = %s RETURNING fence",
                  (account_id,))    # another worker's run of the account started
            with pytest.raises(Cancelled, match="a newer run of it started"):
                download(covers[1])
            with pytest.raises(Cancelled, match="a newer run of it started"):
                api.tokens.refresh()
            assert [path for _, path, _ in world.fake.log] == sent     # nothing more was sent
        finally:
            api.close()
            media.close()
            limits.close()


def test_a_429_seen_by_one_run_holds_the_other_runs_next_request(fleet_database):
    """Clients made inside two runs' run_limits (no pacer given: the hook gives theirs)."""
    from archiver.fleet import schema
    from archiver.fleet.limiter import FleetRunLimits, Rate, limiter_status

    with psycopg.connect(fleet_database, autocommit=True) as connection:
        for part in schema.PARTS:
            connection.execute(part.sql)

    class Clock:
        now = 1_000_000.0

        def __call__(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.now += seconds

    clock = Clock()
    seen = []
    answers = {"/a": [httpx.Response(429, headers={"Retry-After": "7"})], "/b": [httpx.Response(200, json={})]}

    def platform(request):
        seen.append((request.url.path, clock.now))
        return answers[request.url.path].pop(0)

    runs = [FleetRunLimits(fleet_database, "tiktok", Rate(60), clock=clock) for _ in range(2)]
    try:
        def client(limits):
            with run_limits(limits):
                return ApiClient("https://api.example", transport=httpx.MockTransport(platform),
                                 sleep=clock.sleep, retry=RetryPolicy(attempts=1))

        with pytest.raises(NetError, match="429"):
            client(runs[0]).get_json("/a")
        client(runs[1]).get_json("/b")
    finally:
        for limits in runs:
            limits.close()
    assert [(path, when - 1_000_000.0) for path, when in seen] == [("/a", 0), ("/b", 7)]
    with psycopg.connect(fleet_database) as connection:
        assert limiter_status(connection)[0]["throttled"] == 1


def test_youtube_runs_of_two_accounts_of_one_project_spend_one_quota(fleet_database, tmp_path):
    from archiver.fleet.worker import FleetServices, LocalArchives
    from archiver.secrets import MemorySecretStore
    from archiver.sim import installed_simulators

    secrets = MemorySecretStore()
    with installed_simulators()["youtube"].start_demo(posts=2, followers=2) as world:
        ids = _fleet(fleet_database, world, "youtube", ("one", "two"), secrets)
        _quick_rate(fleet_database, "youtube")
        services = FleetServices(fleet_database, LocalArchives(tmp_path, secrets=secrets))
        assert services.run_job(ids[0], SLOT, full=False, job_id=None) == "ok"
        first = [path for _, path, *_ in world.fake.log if path.startswith("/youtube/v3/")]
        assert services.run_job(ids[1], SLOT, full=False, job_id=None) == "ok"
        spent = [path for _, path, *_ in world.fake.log if path.startswith("/youtube/v3/")]
    ((project, quota_spent, budget),) = fetch(fleet_database, "SELECT project, spent, budget FROM fleet_quota")
    assert project.startswith("youtube:") and world.fake.config.client_id not in project   # a fingerprint
    assert quota_spent == len(spent) > len(first) > 0 and budget == 10_000   # both accounts, one counter


def test_pinterest_runs_of_two_accounts_of_one_app_spend_one_daily_budget(fleet_database, tmp_path):
    """Trial access: 1,000 requests a day per app, whichever account (or worker) sends them."""
    from archiver.fleet.worker import FleetServices, LocalArchives
    from archiver.secrets import MemorySecretStore
    from archiver.sim import installed_simulators
    from archiver_connectors.pinterest.api import API_PREFIX

    secrets = MemorySecretStore()
    with installed_simulators()["pinterest"].start_demo(posts=2, followers=2) as world:
        ids = _fleet(fleet_database, world, "pinterest", ("one", "two"), secrets, **world.settings)
        _quick_rate(fleet_database, "pinterest")
        arrivals = _timed(world.fake)
        services = FleetServices(fleet_database, LocalArchives(tmp_path, secrets=secrets))
        assert [services.run_job(i, SLOT, full=False, job_id=None) for i in ids] == ["ok", "ok"]
    charged = [path for _, path, _ in arrivals if path.startswith(API_PREFIX)]
    ((project, spent),) = fetch(fleet_database, "SELECT project, spent FROM fleet_quota")
    assert project.startswith("pinterest:") and spent == len(charged) > 0


def test_the_second_account_of_a_project_stops_when_the_first_spent_the_quota(fleet_database, tmp_path):
    import sqlite3

    from archiver.fleet.worker import FleetServices, LocalArchives
    from archiver.secrets import MemorySecretStore
    from archiver.sim import installed_simulators

    secrets = MemorySecretStore()
    with installed_simulators()["youtube"].start_demo(posts=2, followers=2) as world:
        ids = _fleet(fleet_database, world, "youtube", ("one", "two"), secrets)
        _quick_rate(fleet_database, "youtube")
        services = FleetServices(fleet_database, LocalArchives(tmp_path, secrets=secrets))
        assert services.run_job(ids[0], SLOT, full=False, job_id=None) == "ok"
        ((spent,),) = fetch(fleet_database, "SELECT spent FROM fleet_quota")
        # The budget each account declares is the project's: what the first spent leaves nothing.
        fetch(fleet_database, "UPDATE fleet_accounts SET options = options || %s::jsonb WHERE id = %s "
              "RETURNING id", (f'{{"quota_units": {spent}}}', ids[1]))
        before = len(world.fake.log)
        assert services.run_job(ids[1], SLOT, full=False, job_id=None) == "ok"
        youtube_requests = [path for _, path, *_ in list(world.fake.log)[before:] if path.startswith("/youtube/v3/")]
    assert youtube_requests == []    # not one unit over the project's budget
    archive = sqlite3.connect(tmp_path / "acme" / "youtube" / "two" / "archive.db")
    try:
        ((counts,),) = archive.execute("SELECT count(*) FROM posts").fetchall()
    finally:
        archive.close()
    assert counts == 0


def test_a_single_users_clients_and_budgets_stay_local():
    local = Pacer()
    client = ApiClient("https://api.example", pacer=local)
    budget = DailyBudget(10)
    assert client.pacer is local and run_daily_budget(budget, project="p") is budget
    client.close()


@pytest.mark.fleet_long   # deselected unless ARCHIVER_FLEET_LONG=1 (tests/conftest.py)
def test_a_night_of_simulated_accounts_over_three_workers_never_meets_the_platforms_limit(
        fleet_database, tmp_path, monkeypatch):
    """12 TikTok accounts, 3 workers: the simulator refuses more than 20 requests to an endpoint
    in its window (a 429, as TikTok does), and the fleet's rate for TikTok is 180 a minute with no
    burst. Unpaced, the runs send their 24 video listings within a second or two and meet 429s;
    paced, not one, and the busiest window holds 18 requests (a few more when some left late). The simulator's one-minute window is shortened to 6 s (rates a tenth of a
    minute), so the night takes seconds, not minutes."""
    from archiver.fleet import db, dispatch
    from archiver.fleet.tasks import make_app
    from archiver.fleet.worker import FleetServices, LocalArchives, run_worker
    from archiver.secrets import MemorySecretStore
    from archiver.sim import installed_simulators
    from archiver_connectors.tiktok.sim import fake as tiktok_fake

    window, names = 6.0, tuple(f"a{n:02d}" for n in range(12))
    monkeypatch.setattr(tiktok_fake, "RATE_WINDOW", window)
    secrets = MemorySecretStore()
    with installed_simulators()["tiktok"].start_demo(posts=21, followers=2) as world:
        world.fake.config.rate_limit_per_minute = 20      # per window, per endpoint
        _fleet(fleet_database, world, "tiktok", names, secrets)
        fetch(fleet_database, "INSERT INTO fleet_rates (platform, per_minute, burst) VALUES ('tiktok', 180, 1) "
              "RETURNING platform")
        arrivals = _timed(world.fake)
        with db.connect(fleet_database) as connection:
            app = make_app(fleet_database)
            with app.open():
                assert len(dispatch.enqueue_due(app, connection, NOON).deferred) == len(names)
        started = time.monotonic()
        # Three workers (one run at a time each; wait=False: each ends when the queue is empty).
        workers = [threading.Thread(target=run_worker, args=(FleetServices(
            fleet_database, LocalArchives(tmp_path, secrets=secrets), name=f"worker-{n}"),),
            kwargs={"queues": ["accounts"], "wait": False, "install_signal_handlers": False}) for n in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=300)
        took = time.monotonic() - started
    assert fetch(fleet_database, "SELECT count(*) FROM fleet_runs WHERE status = 'ok'") == [(len(names),)]
    api = sorted(when for when, path, _ in arrivals if path.startswith("/v2/") and "/oauth/" not in path)
    refused = [path for _, path, status in arrivals if status == 429]
    # TikTok counts each endpoint apart, and so does the fleet's limit: the busiest window of each.
    endpoints = {path for _, path, _ in arrivals if path.startswith("/v2/") and "/oauth/" not in path}
    busiest = max(max(sum(1 for t in times if start <= t < start + window) for start in times)
                  for times in ([when for when, path, _ in arrivals if path == endpoint] for endpoint in endpoints))
    print(f"\n{len(names)} accounts over 3 workers: {len(api)} API requests in {took:.1f} s, "
          f"busiest {window:.0f} s window of an endpoint {busiest} (limit 18), 429s: {len(refused)}")
    assert refused == [] and len(api) >= 3 * len(names)   # a profile and two pages of videos at least
    # Slots are 1/3 s apart and none leaves early, but one that leaves late (a busy machine) counts
    # in a window with those after it: a second late adds 3. The simulator's own count (no 429,
    # 20 per endpoint per window) is the platform's judgement, with margin.
    assert busiest <= 18 + 3


def test_the_operator_sets_a_platforms_rate_and_clears_it_again(fleet_database):
    from click.testing import CliRunner

    from archiver.cli.main import main
    from archiver.fleet import db
    from archiver.fleet.limiter import DEFAULT_RATE, Rate, platform_rate

    def cli(*args):
        result = CliRunner().invoke(main, ["fleet", *args, "--database", fleet_database],
                                    env={"ARCHIVER_FLEET_DATABASE": ""}, catch_exceptions=False)
        return result.exit_code, result.output

    assert cli("init")[0] == 0
    code, shown = cli("rate")
    assert code == 0 and "tiktok       app *          600/min, burst 10 (declared)" in shown
    assert "youtube      app *          60/min, burst 5 (default)" in shown
    assert "mastodon     app *          20/min, burst 5, per account (declared)" in shown
    assert cli("rate", "tiktok", "--per-minute", "120", "--burst", "3")[0] == 0
    assert cli("rate", "tiktok", "--per-minute", "30", "--app", "acme-app")[0] == 0
    with db.connect(fleet_database) as connection:
        assert platform_rate(connection, "tiktok") == (Rate(120, 3), False)
        assert platform_rate(connection, "tiktok", "acme-app") == (Rate(30, 1), False)
        assert platform_rate(connection, "youtube") == (DEFAULT_RATE, False)
    code, shown = cli("rate", "tiktok")
    assert "120/min, burst 3 (fleet_rates)" in shown and "(declared)" not in shown
    assert cli("rate", "tiktok", "--clear")[0] == 0
    with db.connect(fleet_database) as connection:
        assert platform_rate(connection, "tiktok") == (Rate(600, 10), False)
    assert cli("rate", "nowhere", "--per-minute", "5")[0] != 0


def test_a_clients_links_are_api_requests_where_the_connector_says_so():
    """Bluesky's blobs come from the PDS, which counts getBlob among its API requests: its media
    client keeps the link checks but takes the fleet's API slots; a CDN's media client takes none."""
    from archiver.config import AccountConfig
    from archiver.connector import get_connector
    from archiver.secrets import MemorySecretStore

    asked: list[bool] = []

    class Recording:
        def pacer(self, local, *, checked_links):
            asked.append(checked_links)
            return local

        def daily_budget(self, local, *, project):
            return local

    with run_limits(Recording()):
        bluesky = get_connector("bluesky")(AccountConfig(name="main", platform="bluesky",
                                                         options={"handle": "alice.test"}), MemorySecretStore())
        tiktok = get_connector("tiktok")(AccountConfig(name="main", platform="tiktok"), MemorySecretStore())
        for client in (bluesky.media_client(), tiktok.media_client()):
            assert type(client._client._transport).__name__ == "_CheckedTransport"   # both still check every link
            client.close()
    assert asked == [False, True]
