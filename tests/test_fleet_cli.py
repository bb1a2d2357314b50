"""The fleet's commands and a worker's real run: `archiver fleet init|add|import|status`,
`archiver enqueue`, and a worker archiving accounts of a simulated platform (the project's
own simulator on loopback) into their own archives — once per scheduled time, in a folder
or in object storage by generation (moto's S3 server on loopback). Also: a
travelling archive's 'running' rows are not trusted to a local pid (mark_dead_runs)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3

import pytest
from click.testing import CliRunner
from fleet_world import fetch
from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)
from s3_server import s3_bucket, s3_server  # noqa: F401  (pytest fixtures)

from archiver.cli.main import main

CSV = """tenant,platform,name,schedule,timezone,enabled,full_every_days,options
acme,mastodon,news,30 3 * * *,Europe/Berlin,true,7,"{""instance"": ""social.example""}"
acme,twitter,desk,,,,,
acme,mastodon,bad name,,,,,
beta,mastodon,night,*/4 * * * * *,,false,3,
beta,nowhere,x,,,,,
beta,mastodon,zone,,Mars/Olympus,,,
beta,mastodon,secret,,,,,"{""access_token"": ""abc""}"
"""


def cli(*args: str, env=None):
    result = CliRunner().invoke(main, list(args), env={"ARCHIVER_FLEET_DATABASE": "", **(env or {})},
                                catch_exceptions=False)
    return result.exit_code, result.output


def test_init_add_import_status_and_enqueue(fleet_database, tmp_path):
    database = ["--database", fleet_database]
    code, out = cli("fleet", "init", *database, "--archive", str(tmp_path))
    assert code == 0 and "ready" in out and "run ledger" in out
    assert cli("fleet", "init", *database, "--archive", str(tmp_path))[0] == 0   # again: harmless

    code, out = cli("fleet", "add", "acme", "mastodon", "main", "--schedule", "0 4 * * *", "--option",
                    "instance=social.example", *database, "--archive", str(tmp_path))
    assert code == 0 and "acme/mastodon:main" in out
    code, out = cli("fleet", "add", "acme", "mastodon", "main", *database, "--archive", str(tmp_path))
    assert code == 1 and "exists already" in out
    code, out = cli("fleet", "add", "acme", "mastodon", "x", "--schedule", "61 * * * *", *database,
                    "--archive", str(tmp_path))
    assert code == 1 and "schedule '61 * * * *'" in out

    accounts_csv = tmp_path / "accounts.csv"
    accounts_csv.write_text(CSV, encoding="utf-8")
    code, out = cli("fleet", "import", str(accounts_csv), *database, "--archive", str(tmp_path))
    assert code == 1 and "3 added, 0 updated, 4 skipped" in out
    for line, why in ((4, "name 'bad name'"), (6, "platform 'nowhere'"), (7, "timezone 'Mars/Olympus'"),
                      (8, "option 'access_token'")):
        assert f"line {line}: {why}" in out, out
    assert "abc" not in out   # a secret in a bad row is never printed
    code, out = cli("fleet", "import", str(accounts_csv), *database, "--archive", str(tmp_path))
    assert "0 added, 3 updated, 4 skipped" in out   # the same file again changes nothing
    rows = fetch(fleet_database, "SELECT tenant, platform, name, schedule, timezone, enabled, full_every_days, options "
                                 "FROM fleet_accounts ORDER BY id")
    assert rows[1] == ("acme", "mastodon", "news", "30 3 * * *", "Europe/Berlin", True, 7, {"instance": "social.example"})
    assert rows[2][1:3] == ("x", "desk")   # "twitter" is X's alias: stored by the platform's name
    assert rows[3][3:7] == ("*/4 * * * * *", None, False, 3)

    code, out = cli("enqueue", "--due", *database, "--archive", str(tmp_path))
    assert code == 0 and "3 deferred, 0 already queued" in out   # the disabled one is not due
    code, out = cli("enqueue", "--due", *database, "--archive", str(tmp_path))
    assert "0 deferred, 3 already queued" in out
    code, out = cli("enqueue", "--account", "acme/mastodon:news", "--full", *database, "--archive", str(tmp_path))
    assert code == 0 and "0 deferred, 1 already queued" in out   # its due run waits already
    code, out = cli("enqueue", "--account", "beta/mastodon:night", *database, "--archive", str(tmp_path))
    assert code == 1 and "is disabled" in out
    code, out = cli("enqueue", "--account", "nobody/x:y", *database, "--archive", str(tmp_path))
    assert code == 1 and "no fleet account 'nobody/x:y'" in out

    code, out = cli("fleet", "status", "--json", *database, "--archive", str(tmp_path))
    status = json.loads(out)
    groups = {(g["tenant"], g["platform"]): g for g in status["groups"]}
    assert groups[("acme", "mastodon")] == {"tenant": "acme", "platform": "mastodon", "accounts": 2, "done": 0,
                                                 "running": 0, "failed": 0, "overdue": groups[("acme", "mastodon")]
                                                 ["overdue"], "queued": 2, "disabled": 0}
    assert groups[("beta", "mastodon")]["disabled"] == 1 and groups[("beta", "mastodon")]["queued"] == 0
    from archiver.fleet import db
    from archiver.fleet.limiter import LimitKey, Rate, SharedLimiter, SharedQuota

    with db.connect(fleet_database) as connection:   # the fleet spent 2,500 units of a project's quota today
        SharedQuota(connection, "google-project-1", 10_000).charge(2_500)
        limiter = SharedLimiter(connection, sleep=lambda seconds: None)   # two requests, the second waits its turn
        for _ in range(2):
            limiter.acquire(LimitKey("youtube", "app-1"), Rate(per_minute=60))
    code, out = cli("fleet", "status", *database, "--archive", str(tmp_path))
    assert code == 0 and out.splitlines()[0].split() == ["tenant", "platform", "accounts", "done", "running", "failed",
                                                         "overdue", "queued", "disabled"]
    assert "quota google-project-1 on " in out and ": 7500 of 10000 left" in out
    assert "limiter youtube: 2 requests, 1 waited" in out
    status = json.loads(cli("fleet", "status", "--json", *database, "--archive", str(tmp_path))[1])
    assert [(q["project"], q["left"]) for q in status["quotas"]] == [("google-project-1", 7500)]


def test_the_database_comes_from_the_config_and_a_missing_one_is_explained(fleet_database, tmp_path):
    (tmp_path / "config.toml").write_text(f'[fleet]\ndatabase = "{fleet_database}"\n')
    code, out = cli("fleet", "init", "--archive", str(tmp_path))
    assert code == 0, out
    (tmp_path / "config.toml").write_text("")
    code, out = cli("fleet", "status", "--archive", str(tmp_path))
    assert code == 1 and "no fleet database" in out and "[fleet] database" in out


def test_a_worker_archives_simulated_accounts_once_per_scheduled_time(fleet_database, tmp_path):
    from archiver.fleet import db, dispatch, schema
    from archiver.fleet import accounts as fleet_accounts
    from archiver.fleet.tasks import make_app
    from archiver.fleet.worker import FleetServices, LocalArchives, run_worker
    from archiver.secrets import MemorySecretStore
    from archiver.sim import installed_simulators

    secrets = MemorySecretStore()
    noon = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
    with installed_simulators()["tiktok"].start_demo(posts=3, followers=4) as world:
        with db.connect(fleet_database) as connection:
            schema.apply(connection)
            for name in ("one", "two"):
                fleet_accounts.add(connection, "acme", "tiktok", name, schedule="0 3 * * *", timezone="UTC",
                                   options={"base_url": world.base_url, **world.settings})
                world.store_credentials(secrets, name)
            app = make_app(fleet_database)
            with app.open():
                assert len(dispatch.enqueue_due(app, connection, noon).deferred) == 2
            archives = LocalArchives(tmp_path / "archives", secrets=secrets)
            run_worker(FleetServices(fleet_database, archives), queues=["accounts"], wait=False,
                       install_signal_handlers=False)
            assert dispatch.due_accounts(connection, noon) == []   # done for 03:00: nothing due until tomorrow
    assert fetch(fleet_database, "SELECT status, scheduled_for FROM fleet_runs ORDER BY id") == [
        ("ok", dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.timezone.utc))] * 2
    for name in ("one", "two"):
        archive = sqlite3.connect(tmp_path / "archives" / "acme" / "tiktok" / name / "archive.db")
        assert archive.execute("SELECT count(*) FROM posts").fetchone()[0] == 3
        assert archive.execute("SELECT status, mode FROM runs").fetchall() == [("ok", "full")]   # a first run lists all
        archive.close()


@pytest.mark.parametrize("trust_pids", [True, False])
def test_a_travelling_archives_running_rows_are_not_trusted_to_a_local_pid(archive, trust_pids):
    from archiver.sync.runner import mark_dead_runs

    with archive.writing():   # a run another machine left 'running', its pid alive here (ours)
        archive.db.execute("INSERT INTO runs (account_id, platform, kind, mode, pid, started_at, status) "
                           "VALUES ('x:a', 'x', 'export', 'full', ?, '2026-12-07T03:00:00Z', 'running')", [os.getpid()])
        mark_dead_runs(archive.db, trust_pids=trust_pids)
    status = archive.db.execute("SELECT status FROM runs").fetchone()[0]
    assert status == ("running" if trust_pids else "interrupted")


def test_a_worker_with_object_storage_checks_out_runs_and_checkpoints_by_generation(fleet_database, s3_bucket,
                                                                                    tmp_path):
    """Two runs of one account: the first makes generation 1, the second (next day, another
    machine: an empty worker folder) downloads it, resumes on it and makes generation 2."""
    from archiver.fleet import db, dispatch, schema
    from archiver.fleet import accounts as fleet_accounts
    from archiver.fleet.objects import open_object_store
    from archiver.fleet.tasks import make_app
    from archiver.fleet.worker import FleetServices, StoredArchives, run_worker
    from archiver.secrets import MemorySecretStore
    from archiver.sim import installed_simulators

    secrets = MemorySecretStore()
    objects = open_object_store(s3_bucket.url("fleet/"), endpoint_url=s3_bucket.endpoint_url)
    with installed_simulators()["tiktok"].start_demo(posts=3, followers=4) as world:
        with db.connect(fleet_database) as connection:
            schema.apply(connection)
            account, _ = fleet_accounts.add(connection, "acme", "tiktok", "one", schedule="0 3 * * *", timezone="UTC",
                                            options={"base_url": world.base_url, **world.settings})
            world.store_credentials(secrets, "one")
            app = make_app(fleet_database)
            for day, machine in ((7, "m1"), (8, "m2")):
                with app.open():
                    noon = dt.datetime(2026, 12, day, 12, 0, tzinfo=dt.timezone.utc)
                    assert dispatch.enqueue_due(app, connection, noon).deferred == ["acme/tiktok:one"]
                runner = StoredArchives(fleet_database, objects, tmp_path / machine, secrets_for=lambda tenant: secrets)
                run_worker(FleetServices(fleet_database, runner), queues=["accounts"], wait=False,
                           install_signal_handlers=False)
    assert fetch(fleet_database, "SELECT status FROM fleet_runs ORDER BY id") == [("ok",), ("ok",)]
    assert fetch(fleet_database, "SELECT generation FROM fleet_archives WHERE account_id = %s", [account.id]) == [(2,)]
    [generation_2] = (tmp_path / "m2" / "cache" / str(account.id)).glob("2-*.sqlite")   # what m2 uploaded
    archive = sqlite3.connect(generation_2)
    assert archive.execute("SELECT count(*) FROM posts").fetchone()[0] == 3
    assert [row[0] for row in archive.execute("SELECT status FROM runs ORDER BY run_id")] == ["ok", "ok"]   # both runs
    archive.close()


def test_archiver_worker_runs_a_queued_account_and_stops_cleanly_on_sigterm(fleet_database, tmp_path):
    """The command itself: it takes a job (an account whose platform is not reachable: the
    run fails and says so in the ledger) and exits 0 on SIGTERM."""
    import signal
    import subprocess

    from cli_world import archiver_command, cli_env
    from fleet_world import wait_until

    code, _ = cli("fleet", "init", "--database", fleet_database, "--archive", str(tmp_path))
    cli("fleet", "add", "acme", "mastodon", "gone", "--option", "base_url=http://127.0.0.1:9", "--database",
        fleet_database, "--archive", str(tmp_path))
    cli("enqueue", "--due", "--database", fleet_database, "--archive", str(tmp_path))
    env = cli_env(tmp_path / "state", platform="mastodon", ARCHIVER_FLEET_DATABASE=fleet_database)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([*archiver_command(), "worker", "--queues", "accounts", "--archive", str(tmp_path)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: fetch(fleet_database, "SELECT status FROM fleet_runs") == [("failed",)], 60,
                   lambda: f"the run never ended:\n{log_path.read_text()}")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, log_path.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert (tmp_path / "fleet" / "acme" / "mastodon" / "gone" / "archive.db").exists()
    [(message,)] = fetch(fleet_database, "SELECT message FROM fleet_runs")
    assert message


def test_prune_and_sweep_commands_keep_the_newest_generations_of_the_accounts_named(fleet_database, s3_bucket,
                                                                                   tmp_path):
    from archiver.fleet import db, schema
    from archiver.fleet.objects import open_object_store
    from archiver.fleet.storage import ArchiveStore

    database = ["--database", fleet_database, "--archive", str(tmp_path)]
    env = {"ARCHIVER_FLEET_STORAGE": "", "ARCHIVER_FLEET_STORAGE_ENDPOINT": s3_bucket.endpoint_url}
    objects = open_object_store(s3_bucket.url("fleet/"), endpoint_url=s3_bucket.endpoint_url)
    with db.connect(fleet_database) as connection:
        schema.apply(connection)
        store = ArchiveStore(connection, objects, tmp_path / "cache", worker="test")
        for name in ("one", "two"):
            account = connection.execute("INSERT INTO fleet_accounts (tenant, platform, name) VALUES "
                                         "('acme', 'mastodon', %s) RETURNING id", (name,)).fetchone()[0]
            fence = connection.execute("UPDATE fleet_accounts SET fence = fence + 1 WHERE id = %s RETURNING fence",
                                       (account,)).fetchone()[0]
            copy = store.checkout(account, tmp_path / name, fence=fence)
            for n in range(3):
                sqlite3.connect(copy.path).execute(f"CREATE TABLE t{n} (x)").connection.close()
                copy.checkpoint()

    code, out = cli("fleet", "prune", *database, env=env)
    assert code == 1 and "no object store" in out
    storage = ["--storage", s3_bucket.url("fleet/")]
    code, out = cli("fleet", "prune", "--keep", "2", "--account", "acme/mastodon:one", *storage, *database, env=env)
    assert code == 0 and "pruned 1 generations of 1 accounts (keeping the newest 2 of each)" in out, out
    code, out = cli("fleet", "prune", "--keep", "1", "--tenant", "acme", *storage, *database, env=env)
    assert code == 0 and "pruned 3 generations of 2 accounts" in out
    assert sorted(objects.keys("archives/")) == ["fleet/archives/1/0000000003-1.sqlite",
                                                 "fleet/archives/2/0000000003-1.sqlite"]
    code, out = cli("fleet", "prune", "--account", "nobody/x:y", *storage, *database, env=env)
    assert code == 1 and "no fleet account 'nobody/x:y'" in out
    code, out = cli("fleet", "sweep", *storage, *database, env=env)
    assert code == 0 and "swept 0 objects" in out


def test_status_computes_each_schedule_and_time_zone_once_with_the_daemons_answer():
    from archiver.fleet.accounts import FleetAccount
    from archiver.fleet.dispatch import LatestFireTimes
    from archiver.ops.schedule import latest_fire_time

    now = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone.utc)   # Europe's clocks go forward this night
    accounts = [FleetAccount(n, "t", "mastodon", f"a{n}", schedule=schedule, timezone=zone)
                for n, (schedule, zone) in enumerate(
                    [(None, None), (None, "Europe/Berlin"), (None, "America/New_York"), ("30 3 * * *", None),
                     ("30 3 * * *", "Europe/Berlin"), ("*/4 * * * * *", "Asia/Tokyo"), ("0 4 29 2 *", None)] * 3)]
    accounts += [FleetAccount(100 + n, "t", "mastodon", f"night{n}") for n in range(400)]   # 180 nightly minutes
    fire_times = LatestFireTimes(now)
    for account in accounts:
        assert fire_times(account) == latest_fire_time(account, now, timezone=account.zone()), account
    assert len(fire_times._found) < 200
