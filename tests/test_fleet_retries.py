"""When the fleet tries a run again (review findings 1 and 5): a failed scheduled time waits
RETRY_AFTER × failures whoever queued its next job (a tick during the run, a second
trigger); a run that wrote nothing uploads no new generation.

Real parts: PostgreSQL (tests/pg_server.py), Procrastinate, the worker's run loop in this
process (run_worker with wait=False), moto (tests/s3_server.py), a platform's simulator.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fleet_world import PagedRuns, fetch, ready_database, services
from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)
from s3_server import s3_bucket, s3_server  # noqa: F401  (pytest fixtures)

from archiver.fleet import db, dispatch, ledger
from archiver.fleet.tasks import make_app
from archiver.fleet.worker import run_worker

UTC = dt.timezone.utc
NOON = dt.datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SLOT = dt.datetime(2026, 12, 7, 3, 0, tzinfo=UTC)   # ready_database's schedule: 03:00 daily


def test_a_tick_during_a_run_queues_no_second_job_for_the_account(fleet_database):
    [account_id] = ready_database(fleet_database, accounts=1)
    app = make_app(fleet_database)
    with app.open(), db.connect(fleet_database) as connection:
        assert len(dispatch.enqueue_due(app, connection, NOON).deferred) == 1
        # A worker takes the job and starts the run: the job is 'doing', the slot has no success yet.
        connection.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE lock = %s",
                           [dispatch.account_lock(account_id)])
        ledger.start_run(connection, account_id, SLOT, job_id=None, worker="A")
        during = dispatch.enqueue_due(app, connection, NOON + dt.timedelta(minutes=1))
    assert (during.deferred, len(during.already_queued)) == ([], 1)
    assert fetch(fleet_database, "SELECT status::text FROM procrastinate_jobs WHERE task_name = %s",
                 [dispatch.RUN_TASK]) == [("doing",)]


def test_a_failed_scheduled_time_is_not_started_again_before_its_retry_time(fleet_database):
    [account_id] = ready_database(fleet_database, accounts=1)
    with db.connect(fleet_database) as connection:
        first = ledger.start_run(connection, account_id, SLOT, job_id=None, worker="A")
        ledger.finish_run(connection, first, "failed", message="the platform said no")
    # A second job for the slot (queued while the run was going, or a second trigger) is
    # delivered at once: the worker starts nothing.
    app = make_app(fleet_database)
    with app.open():
        app.configure_task(dispatch.RUN_TASK, queue=dispatch.ACCOUNT_QUEUE, lock=dispatch.account_lock(account_id),
                           queueing_lock="second").defer(account=account_id, slot=SLOT.isoformat(), full=False)
    run_worker(services(fleet_database, PagedRuns(fleet_database)), queues=["accounts"], wait=False,
               install_signal_handlers=False)
    assert fetch(fleet_database, "SELECT status FROM fleet_runs") == [("failed",)]
    assert fetch(fleet_database, "SELECT * FROM test_run_log") == []
    with db.connect(fleet_database) as connection:
        # Once its wait is over (RETRY_AFTER × 1 failure), the slot may run again …
        connection.execute("UPDATE fleet_runs SET ended_at = ended_at - %s", [ledger.RETRY_AFTER])
        second = ledger.start_run(connection, account_id, SLOT, job_id=None, worker="B")
        ledger.finish_run(connection, second, "failed", message="the platform said no")
        with pytest.raises(ledger.SlotNotDue, match="tried again in"):   # … then waits twice as long
            ledger.start_run(connection, account_id, SLOT, job_id=None, worker="C")
        connection.execute("UPDATE fleet_runs SET ended_at = ended_at - 2 * %s", [ledger.RETRY_AFTER])
        third = ledger.start_run(connection, account_id, SLOT, job_id=None, worker="C")
        ledger.finish_run(connection, third, "failed", message="the platform said no")
        connection.execute("UPDATE fleet_runs SET ended_at = ended_at - interval '1 day'")
        with pytest.raises(ledger.SlotNotDue, match="waits for its next scheduled time"):
            ledger.start_run(connection, account_id, SLOT, job_id=None, worker="D")
        # The next scheduled time is a new one.
        ledger.start_run(connection, account_id, SLOT + dt.timedelta(days=1), job_id=None, worker="D")


def test_a_heartbeat_that_finds_its_run_taken_over_closes_its_connection(fleet_database, monkeypatch):
    from archiver.fleet import worker

    [account_id] = ready_database(fleet_database, accounts=1)
    with db.connect(fleet_database) as connection:
        ticket = ledger.start_run(connection, account_id, SLOT, job_id=None, worker="A")
        connection.execute("UPDATE fleet_accounts SET fence = fence + 1 WHERE id = %s", [account_id])  # taken over
    opened = []

    def connect(url):
        opened.append(real_connect(url))
        return opened[-1]

    real_connect = db.connect
    monkeypatch.setattr(db, "connect", connect)
    beat = worker._Heartbeat(fleet_database, ticket, every=0.01)
    beat.start()
    assert beat.lost.wait(timeout=30)
    beat.stop()
    assert len(opened) == 1 and opened[0].closed


def test_a_run_the_shared_limit_stops_waits_for_its_slot_and_uploads_only_what_it_kept(
        fleet_database, s3_bucket, tmp_path, monkeypatch):
    """Review finding 5: a run the limiter stopped (its next slot further away than a run
    waits) was retried every 10 s, 30 times, each try uploading a whole generation. Now its
    job waits until the slot is near, and a try that kept no page uploads nothing."""
    pytest.importorskip("boto3")
    from archiver.fleet import accounts as fleet_accounts
    from archiver.fleet.objects import open_object_store
    from archiver.fleet.secrets import ENV_MASTER_KEY, FleetSecretStore, generate_master_key
    from archiver.fleet.worker import StoredArchives
    from archiver.sim import installed_simulators

    monkeypatch.setenv(ENV_MASTER_KEY, generate_master_key())
    objects = open_object_store(s3_bucket.url("fleet/"), endpoint_url=s3_bucket.endpoint_url)
    ready_database(fleet_database)
    with installed_simulators()["mastodon"].start_demo(posts=3, followers=2) as world, \
            db.connect(fleet_database) as connection:
        account, _ = fleet_accounts.add(connection, "t", "mastodon", "one", schedule="0 3 * * *", timezone="UTC",
                                        options={"base_url": world.base_url, **world.settings})
        secrets = FleetSecretStore(connection, "t")
        world.store_credentials(secrets, "one")
        # One API request every 20 minutes: the run's first request leaves (its page, the
        # profile, is kept), the second would wait longer than a run waits (15 min): refused.
        connection.execute("INSERT INTO fleet_rates (platform, per_minute, burst) VALUES ('mastodon', 0.05, 1)")
        app = make_app(fleet_database)
        with app.open():
            dispatch.enqueue_now(app, account, NOON)
        stored = StoredArchives(fleet_database, objects, tmp_path / "worker", secrets_for=lambda tenant: secrets)
        fleet = services(fleet_database, stored)
        run_worker(fleet, queues=["accounts"], wait=False, install_signal_handlers=False)
        [(status, message, counts)] = fetch(fleet_database, "SELECT status, message, counts FROM fleet_runs")
        assert status == "interrupted" and "longer than this run waits" in message and counts == {"profile": 1}
        generations = [f"fleet/archives/{account.id}/0000000001-1.sqlite"]
        assert list(objects.keys("archives/")) == generations   # the page it kept
        # The job waits for the limit's slot (~20 min away), not 10 s; the tick leaves it waiting.
        [(job_status, attempts, wait)] = fetch(
            fleet_database, "SELECT status::text, attempts, extract(epoch FROM scheduled_at - now()) "
                            "FROM procrastinate_jobs WHERE task_name = %s", [dispatch.RUN_TASK])
        assert (job_status, attempts) == ("todo", 1) and 15 * 60 < float(wait) <= 20 * 60
        # Tried again before then, the run's first request is refused: nothing kept, nothing uploaded.
        with pytest.raises(ledger.TryLater) as later:
            fleet.run_job(account.id, NOON, full=False, job_id=None)
        assert 15 * 60 < later.value.seconds <= 20 * 60
    assert fetch(fleet_database, "SELECT status, counts FROM fleet_runs ORDER BY id")[1:] == [("interrupted", {})]
    assert list(objects.keys("archives/")) == generations
