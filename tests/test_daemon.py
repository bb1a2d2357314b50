"""`archiver daemon`, run as a real subprocess against `archiver simulate tiktok` over
loopback HTTP: schedules fire, runs never overlap, SIGTERM stops a run between pages and
the next daemon completes it, one daemon per archive, missed runs are caught up exactly
once (decided from the runs table), SIGHUP reloads the config, and a daemon with no
account still starts and says so.

Schedules use the six-field cron form (seconds first) so runs happen seconds apart. Every
daemon's stdout goes to a file the test reads; every process is killed in teardown.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from cli_world import (archiver_command, authorize, cli_env, query, run_cli, start_simulator,
                       write_account_config)

VIDEOS = 40


# --------------------------------------------------------------------------- helpers


class DaemonProcess:
    """`archiver daemon --archive DIR` in its own process, its output in a file."""

    def __init__(self, archive_dir: Path, env: dict[str, str], name: str = "daemon"):
        self.archive_dir = archive_dir
        self.output_path = archive_dir.parent / f"{name}.out"
        with open(self.output_path, "wb") as out:
            self.process = subprocess.Popen([*archiver_command(), "daemon", "--archive", str(archive_dir)],
                                            env=env, stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        return self.output_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_output(self, text: str, timeout: float = 20) -> None:
        wait_until(lambda: text in self.output, timeout,
                   lambda: f"the daemon never printed {text!r}:\n{self.output}",
                   alive=self.process)

    def stop(self, timeout: float = 15) -> tuple[int, float]:
        """SIGTERM; returns (exit status, seconds it took to exit)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_until(condition, timeout: float, describe, alive: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if alive is not None and alive.poll() is not None and not condition():
            raise AssertionError(f"the process exited ({alive.returncode}) first. {describe()}")
        time.sleep(0.1)
    raise AssertionError(describe())


def export_runs(archive_dir: Path) -> list[dict]:
    if not (archive_dir / "archive.db").exists():
        return []
    try:
        rows = query(archive_dir, "SELECT run_id, account_id, status, started_at, ended_at, counts, pid "
                                  "FROM runs WHERE kind='export' ORDER BY run_id")
    except sqlite3.OperationalError:  # the daemon has not created the schema yet
        return []
    keys = ("run_id", "account_id", "status", "started_at", "ended_at", "counts", "pid")
    return [dict(zip(keys, row)) for row in rows]


def write_config(archive_dir: Path, base_url: str | None, *, schedule: str | None = None,
                 accounts=("main",), extra: str = "") -> None:
    lines = ['[secrets]\nbackend = "env"\n']
    for name in accounts if base_url else ():
        lines.append(f'[accounts.{name}]\nplatform = "tiktok"\nbase_url = "{base_url}"\n'
                     + (f'schedule = "{schedule}"\n' if schedule else ""))
    (archive_dir / "config.toml").write_text("\n".join(lines) + extra, encoding="utf-8")


def far_daily_schedule() -> str:
    """Daily, twelve hours from now (local time): it never fires during a test."""
    return f"0 {(dt.datetime.now().hour + 12) % 24} * * *"


def insert_successful_run(archive_dir: Path, ended_ago: dt.timedelta, account_id: str = "tiktok:main") -> None:
    """A successful export as an earlier daemon would have left it."""
    from archiver.archive import Archive

    Archive(archive_dir).db.close()  # the real schema, created by the real migrations
    ended = dt.datetime.now(dt.timezone.utc) - ended_ago
    stamp = lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    db = sqlite3.connect(archive_dir / "archive.db")
    with db:
        db.execute("INSERT INTO runs (account_id, platform, kind, mode, pid, started_at, ended_at, status) "
                   "VALUES (?, 'tiktok', 'export', 'incremental', 1, ?, ?, 'ok')",
                   [account_id, stamp(ended - dt.timedelta(minutes=1)), stamp(ended)])
    db.close()


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    sim = start_simulator(tmp_path_factory.mktemp("sim"), videos=VIDEOS, followers=50, latency_ms=20)
    yield sim
    sim.stop()


@pytest.fixture
def daemons():
    """Start daemons through this; whatever is still running at the end is killed."""
    started: list[DaemonProcess] = []

    def start(archive_dir: Path, env: dict[str, str], name: str = "daemon") -> DaemonProcess:
        daemon = DaemonProcess(archive_dir, env, name)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def authorized_archive(tmp_path: Path, base_url: str, accounts=("main",)) -> tuple[Path, dict]:
    """An archive folder whose accounts are authorized against the simulator. The first
    account goes through the real `archiver auth`; the others get copies of its tokens
    (the fake knows one user; two accounts of the same app are what we test)."""
    archive_dir = tmp_path / "archive"
    env = cli_env(tmp_path / "state")
    for name in accounts[1:]:
        env[f"ARCHIVER_SECRET_TIKTOK_{name.upper()}_CLIENT_KEY"] = env["ARCHIVER_SECRET_TIKTOK_MAIN_CLIENT_KEY"]
        env[f"ARCHIVER_SECRET_TIKTOK_{name.upper()}_CLIENT_SECRET"] = env["ARCHIVER_SECRET_TIKTOK_MAIN_CLIENT_SECRET"]
    write_account_config(archive_dir, base_url)
    authorize(archive_dir, env)
    tokens_path = tmp_path / "state" / "tokens.json"
    tokens = json.loads(tokens_path.read_text(encoding="utf-8"))
    for name in accounts[1:]:
        tokens[f"tiktok:{name}:tokens"] = tokens["tiktok:main:tokens"]
    tokens_path.write_text(json.dumps(tokens), encoding="utf-8")
    return archive_dir, env


def overlapping(runs: list[dict]) -> list[tuple[int, int]]:
    """Pairs of runs whose [started, ended] intervals overlap (timestamps in whole seconds,
    so a run starting in the second the previous one ended does not count)."""
    pairs = []
    ordered = sorted(runs, key=lambda r: (r["started_at"], r["run_id"]))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b["started_at"] < a["ended_at"]:
                pairs.append((a["run_id"], b["run_id"]))
    return pairs


# --------------------------------------------------------------------------- schedules


def test_schedules_fire_and_runs_of_one_platform_never_overlap(tmp_path, simulator, daemons):
    archive_dir, env = authorized_archive(tmp_path, simulator.base_url, accounts=("main", "shop"))
    write_config(archive_dir, simulator.base_url, schedule="*/3 * * * * *", accounts=("main", "shop"))
    daemon = daemons(archive_dir, env)

    def enough():
        done = [r for r in export_runs(archive_dir) if r["status"] == "ok"]
        return all(sum(r["account_id"] == a for r in done) >= 3 for a in ("tiktok:main", "tiktok:shop"))

    wait_until(enough, 120, lambda: f"not 3 runs per account: {export_runs(archive_dir)}\n{daemon.output}",
               alive=daemon.process)
    code, _ = daemon.stop()
    assert code == 0, daemon.output

    runs = export_runs(archive_dir)
    assert {r["status"] for r in runs} <= {"ok", "interrupted"}, runs
    assert all(r["pid"] == daemon.pid for r in runs), "runs were made by the daemon"
    # Both accounts share one platform (and one app): their runs took turns, although
    # both schedules fire in the same second.
    assert overlapping(runs) == [], runs
    # The catch-up at start runs each account once: its other runs (3 or more, waited for
    # above) came from the schedule. (When they start is not checked: on a busy machine a
    # run outlasts the 3 seconds, and the next starts when its platform's turn comes.)
    for account in ("tiktok:main", "tiktok:shop"):
        assert daemon.output.count(f"{account}: catching up now") <= 1, daemon.output
    # The whole archive came through the daemon (both accounts see the fake's one user).
    assert query(archive_dir, "SELECT count(*) FROM posts")[0][0] == VIDEOS
    log_file = (archive_dir / "daemon.log").read_text(encoding="utf-8")
    assert f"run #{runs[0]['run_id']} ok" in log_file and f"run #{runs[0]['run_id']} ok" in daemon.output


# --------------------------------------------------------------------------- signals


def test_sigterm_interrupts_the_run_and_the_next_daemon_completes_it(tmp_path, daemons):
    # Slow enough that a full first run lasts several seconds: SIGTERM lands inside it.
    sim = start_simulator(tmp_path / "slow-sim", videos=VIDEOS, followers=50, latency_ms=120)
    try:
        archive_dir, env = authorized_archive(tmp_path, sim.base_url)
        write_config(archive_dir, sim.base_url, schedule=far_daily_schedule(),
                     extra="[daemon]\nstop_timeout = 30\n")
        daemon = daemons(archive_dir, env, "first")
        # The first run is a catch-up (no successful run yet). Wait for a committed page.
        wait_until(lambda: query(archive_dir, "SELECT count(*) FROM posts")[0][0] > 0
                   if (archive_dir / "archive.db").exists() and export_runs(archive_dir) else False,
                   30, lambda: f"no page was committed:\n{daemon.output}", alive=daemon.process)
        code, seconds = daemon.stop()
        assert code == 0, daemon.output
        assert seconds < 10, f"took {seconds:.1f} s: it waited for the stop timeout, not for a page boundary"
        [run] = export_runs(archive_dir)
        assert run["status"] == "interrupted", run
        kept = query(archive_dir, "SELECT count(*) FROM posts")[0][0]
        assert 0 < kept < VIDEOS, "the run was cut short and kept the pages it had committed"

        second = daemons(archive_dir, env, "second")
        wait_until(lambda: any(r["status"] == "ok" for r in export_runs(archive_dir)), 40,
                   lambda: f"no successful run:\n{second.output}", alive=second.process)
        code, _ = second.stop()
        assert code == 0, second.output
        first_run, completing = export_runs(archive_dir)
        assert completing["status"] == "ok", completing
        assert json.loads(completing["counts"]).get("posts_new") == VIDEOS - kept
        assert query(archive_dir, "SELECT count(*) FROM posts")[0][0] == VIDEOS
    finally:
        sim.stop()


def test_sighup_reloads_the_config_and_keeps_the_old_one_when_broken(tmp_path, simulator, daemons):
    archive_dir, env = authorized_archive(tmp_path, simulator.base_url)
    write_config(archive_dir, simulator.base_url, schedule=far_daily_schedule())
    insert_successful_run(archive_dir, dt.timedelta(minutes=5))  # nothing to catch up
    daemon = daemons(archive_dir, env)
    daemon.wait_for_output("daemon started")

    # A config with a mistake: logged, and the daemon goes on with the old one.
    write_config(archive_dir, simulator.base_url, schedule="every night at three")
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for_output("NOT reloaded")
    assert "every night at three" in daemon.output  # the error names the bad value
    assert daemon.process.poll() is None
    assert len(export_runs(archive_dir)) == 1

    write_config(archive_dir, simulator.base_url, schedule="*/2 * * * * *")
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(lambda: any(r["status"] == "ok" and r["pid"] == daemon.pid for r in export_runs(archive_dir)), 15,
               lambda: f"the new schedule never ran:\n{daemon.output}", alive=daemon.process)
    code, _ = daemon.stop()
    assert code == 0, daemon.output


# --------------------------------------------------------------------------- catch-up


def test_a_run_missed_during_downtime_is_caught_up_exactly_once(tmp_path, simulator, daemons):
    archive_dir, env = authorized_archive(tmp_path, simulator.base_url)
    write_config(archive_dir, simulator.base_url, schedule=far_daily_schedule())

    # Last success five minutes ago; the daily run is twelve hours away: nothing missed.
    insert_successful_run(archive_dir, dt.timedelta(minutes=5))
    daemon = daemons(archive_dir, env, "up-to-date")
    daemon.wait_for_output("no catch-up needed")
    time.sleep(3)
    assert daemon.stop()[0] == 0
    assert len(export_runs(archive_dir)) == 1, export_runs(archive_dir)

    # The same archive after two days of downtime: the run due meanwhile happens at start.
    with sqlite3.connect(archive_dir / "archive.db") as db:
        db.execute("UPDATE runs SET started_at='2000-01-01T00:00:00Z', ended_at='2000-01-01T00:01:00Z'")
    db.close()
    daemon = daemons(archive_dir, env, "after-downtime")
    daemon.wait_for_output("catching up now")
    wait_until(lambda: len(export_runs(archive_dir)) == 2 and export_runs(archive_dir)[1]["status"] == "ok", 20,
               lambda: f"no catch-up run: {export_runs(archive_dir)}\n{daemon.output}", alive=daemon.process)
    time.sleep(3)  # time for a second (wrong) catch-up to show up
    assert daemon.stop()[0] == 0
    runs = export_runs(archive_dir)
    assert len(runs) == 2, runs
    assert runs[1]["pid"] == daemon.pid and runs[1]["status"] == "ok"


# --------------------------------------------------------------------------- one per archive, no accounts


def test_without_accounts_it_runs_and_a_second_daemon_refuses_naming_the_pid(tmp_path, daemons):
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    write_config(archive_dir, None)
    env = cli_env(tmp_path / "state")
    daemon = daemons(archive_dir, env)
    daemon.wait_for_output("daemon started")
    daemon.wait_for_output("no accounts configured")
    assert (archive_dir / "daemon.lock").read_text().strip() == str(daemon.pid)

    second = run_cli(["daemon", "--archive", str(archive_dir)], env, timeout=20)
    assert second.returncode == 1, second.describe()
    assert f"pid {daemon.pid}" in second.stderr, second.describe()
    assert second.seconds < 10
    assert daemon.process.poll() is None, "the first daemon is untouched"

    code, seconds = daemon.stop()
    assert code == 0 and seconds < 5, daemon.output
    assert "no accounts configured" in (archive_dir / "daemon.log").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- schedules, in-process


def test_default_schedule_is_nightly_stable_and_differs_between_accounts():
    from archiver.config import AccountConfig
    from archiver.ops.schedule import default_schedule, next_run_time

    minutes = set()
    for name in ("main", "shop", "brand", "alt"):
        account = AccountConfig(name, "tiktok")
        schedule = default_schedule(account)
        assert schedule == default_schedule(AccountConfig(name, "tiktok"))
        minute, hour = map(int, schedule.split()[:2])
        assert 2 <= hour < 5
        minutes.add((hour, minute))
        now = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
        upcoming = next_run_time(account, now)
        assert upcoming.date() == dt.date(2024, 6, 2) and (upcoming.hour, upcoming.minute) == (hour, minute)
    assert len(minutes) == 4
    # Computed from sha256, not Python's per-process hash(): the same in every process.
    assert default_schedule(AccountConfig("main", "tiktok")) == "15 2 * * *"


def test_cron_lines_seconds_and_weekdays():
    from archiver.config import AccountConfig
    from archiver.ops.schedule import next_run_time

    saturday_noon = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
    # Cron counts Sunday as 0 (APScheduler 3 would read 0 as Monday).
    assert next_run_time(AccountConfig("a", "tiktok", schedule="30 9 * * 0"), saturday_noon) == \
        dt.datetime(2024, 6, 2, 9, 30, tzinfo=dt.timezone.utc)
    assert next_run_time(AccountConfig("a", "tiktok", schedule="0 8 * * 1-5"), saturday_noon).weekday() == 0
    assert next_run_time(AccountConfig("a", "tiktok", schedule="*/4 * * * * *"), saturday_noon) == \
        saturday_noon
    assert next_run_time(AccountConfig("a", "tiktok", schedule="*/4 * * * * *"),
                         saturday_noon + dt.timedelta(seconds=1)) == saturday_noon + dt.timedelta(seconds=4)
    assert next_run_time(AccountConfig("a", "tiktok", schedule="* * * * *", enabled=False)) is None


def test_config_accepts_six_fields_and_names_the_line_of_a_bad_schedule(tmp_path):
    from archiver.config import ConfigError, load_config

    path = tmp_path / "config.toml"
    path.write_text('[accounts.main]\nplatform = "tiktok"\nschedule = "*/4 * * * * *"\n')
    assert load_config(path).accounts[0].schedule == "*/4 * * * * *"
    for bad in ("99 3 * * *", "3 * * *", "1 2 3 4 5 6 7"):
        path.write_text(f'[accounts.main]\nplatform = "tiktok"\nschedule = "{bad}"\n')
        with pytest.raises(ConfigError) as error:
            load_config(path)
        assert "line 3" in str(error.value) and "schedule" in str(error.value), error.value
