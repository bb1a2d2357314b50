"""The fleet's database: the PostgreSQL the tests start (tests/pg_server.py), `fleet init`'s
schema (the queue's and the fleet's parts, applied again without harm), where the URL comes
from, and a config that would hold a password refused."""

from __future__ import annotations

import pytest
from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)

from archiver.config import ConfigError, load_config
from archiver.fleet import db, schema


def test_init_applies_the_queue_and_fleet_schema_and_again_without_harm(fleet_database):
    with db.connect(fleet_database) as connection:
        first = schema.apply(connection)
        assert first[0].startswith("the job queue")
        assert [name for name in first[1:]] == [part.name for part in schema.PARTS]
        connection.execute("INSERT INTO fleet_accounts (tenant, platform, name) VALUES ('t', 'mastodon', 'a')")
        connection.commit()
        again = schema.apply(connection)   # an upgrade's init: the queue's schema is not applied twice
        assert not again[0].startswith("the job queue")
        tables = {row[0] for row in connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}
        assert {"procrastinate_jobs", "procrastinate_periodic_defers", "fleet_accounts", "fleet_runs"} <= tables
        assert connection.execute("SELECT count(*) FROM fleet_accounts").fetchone()[0] == 1   # nothing lost


def test_the_ledger_refuses_a_second_success_for_one_scheduled_time(fleet_database):
    import psycopg

    with db.connect(fleet_database) as connection:
        schema.apply(connection)
        account = connection.execute("INSERT INTO fleet_accounts (tenant, platform, name) VALUES ('t', 'x', 'a') "
                                     "RETURNING id").fetchone()[0]
        insert = ("INSERT INTO fleet_runs (account_id, scheduled_for, fence, worker, status) "
                  "VALUES (%s, '2026-12-07 03:00Z', 1, 'w', 'ok')")
        connection.execute(insert, [account])
        with pytest.raises(psycopg.errors.UniqueViolation):
            connection.execute(insert, [account])


def test_the_database_url_comes_from_the_option_then_the_environment_then_the_config(tmp_path, monkeypatch):
    config_file = tmp_path / "config.toml"
    config_file.write_text('[fleet]\ndatabase = "postgresql://archiver@db.example/fleet"\n')
    config = load_config(config_file)
    monkeypatch.delenv(db.ENV_DATABASE, raising=False)
    assert db.database_url(None, config) == "postgresql://archiver@db.example/fleet"
    monkeypatch.setenv(db.ENV_DATABASE, "postgresql://env@db.example/fleet")
    assert db.database_url(None, config) == "postgresql://env@db.example/fleet"
    assert db.database_url("postgresql://option@h/f", config) == "postgresql://option@h/f"
    monkeypatch.delenv(db.ENV_DATABASE)
    with pytest.raises(db.FleetError, match=r"\[fleet\] database"):
        db.database_url(None, load_config(_write(tmp_path, "")))


def test_a_password_in_the_config_is_refused_and_never_shown(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, '[fleet]\ndatabase = "postgresql://u:hunter2@db.example/f"\n'))
    assert "fleet.database" in str(caught.value) and "line 2" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert db.shown_url("postgresql://u:hunter2@db.example:5432/f") == "postgresql://u:***@db.example:5432/f"


def test_an_unreachable_database_fails_with_its_url_and_no_password(postgres):
    closed = f"postgresql://u:hunter2@127.0.0.1:{postgres.port}/none"
    with pytest.raises(db.FleetError) as caught:
        db.connect(closed)
    assert "hunter2" not in str(caught.value) and "127.0.0.1" in str(caught.value)


def _write(folder, text):
    path = folder / "config.toml"
    path.write_text(text)
    return path


def test_the_ledger_waits_for_a_live_run_takes_over_a_silent_one_and_fences_the_old(fleet_database):
    import datetime as dt

    from archiver.fleet import ledger

    slot = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.timezone.utc)
    with db.connect(fleet_database) as connection:
        schema.apply(connection)
        account = connection.execute("INSERT INTO fleet_accounts (tenant, platform, name) VALUES ('t', 'x', 'a') "
                                     "RETURNING id").fetchone()[0]
        first = ledger.start_run(connection, account, slot, job_id=1, worker="A")
        with pytest.raises(ledger.AccountBusy):   # its heartbeat is fresh: a second job waits
            ledger.start_run(connection, account, slot, job_id=2, worker="B")
        connection.execute("UPDATE fleet_runs SET heartbeat_at = now() - interval '1 hour' WHERE id = %s",
                           [first.run_id])   # A went silent
        second = ledger.start_run(connection, account, slot, job_id=2, worker="B")
        assert second.fence == first.fence + 1
        assert not ledger.heartbeat(connection, first) and not ledger.still_current(connection, first)
        assert not ledger.finish_run(connection, first, "ok")   # the old run records nothing
        assert ledger.heartbeat(connection, second) and ledger.finish_run(connection, second, "ok", counts={"posts": 3})
        with pytest.raises(ledger.SlotDone):
            ledger.start_run(connection, account, slot, job_id=3, worker="C")
        failed = ledger.start_run(connection, account, slot + dt.timedelta(days=1), job_id=4, worker="C")
        ledger.finish_run(connection, failed, "failed", message="the platform said no")
        rows = connection.execute("SELECT worker, status, message IS NOT NULL FROM fleet_runs ORDER BY id").fetchall()
        assert rows == [("A", "interrupted", True), ("B", "ok", False), ("C", "failed", True)]
        history = ledger.histories(connection)[account]
        assert (history.last_ok_slot, history.last_failed_slot, history.failures) == (
            slot, slot + dt.timedelta(days=1), 1)
