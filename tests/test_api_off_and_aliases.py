"""A platform's other name (X's "twitter") works wherever a platform is named, stored under
the platform's own name; an account whose API runs are off (Connector.api_off: X without a
money budget) is skipped by `archiver export` and the daemon, saying why, and shown so by
`archiver status`, while its exports are still imported."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli.main import main
from archiver.config import load_config
from archiver.connector import canonical_platform, get_connector, installed_connectors
from archiver.ops.daemon import Daemon
from archiver.sync.jobs import Workspace

REASON = "no max_cost_usd set: runs would cost money; `archiver import <your archive zip>` instead"


def test_an_alias_names_the_platform_in_any_case_and_is_stored_under_its_name(tmp_path):
    assert [canonical_platform(n) for n in ("twitter", "Twitter", "x", "tiktok", "nosuch")] == [
        "x", "x", "x", "tiktok", "nosuch"]
    assert get_connector("twitter") is get_connector("x")
    config = tmp_path / "config.toml"
    config.write_text('[accounts.main]\nplatform = "twitter"\n', encoding="utf-8")
    (account,) = load_config(config, installed_connectors()).accounts
    assert (account.platform, account.account_id) == ("x", "x:main")


@pytest.fixture
def api_off_world(tmp_path, monkeypatch):
    """An archive whose config has an X account with its API off and a TikTok account."""
    monkeypatch.setattr(get_connector("x"), "api_off", classmethod(lambda cls, options: REASON))
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "config.toml").write_text(
        '[accounts.main]\nplatform = "twitter"\n\n[accounts.shop]\nplatform = "tiktok"\n', encoding="utf-8")
    return archive


def test_export_skips_an_account_whose_api_is_off_saying_why(api_off_world: Path):
    result = CliRunner().invoke(main, ["export", "--platform", "twitter", "--archive", str(api_off_world)])
    assert result.exit_code == 0, result.output
    assert "x:main: skipped — API off" in result.output and REASON in result.output
    ws = Workspace.open(api_off_world)
    assert ws.archive.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0   # no run was made

    status = CliRunner().invoke(main, ["status", "--archive", str(api_off_world)])
    assert status.exit_code == 0, status.output
    block = status.output.split("x:main")[1].split("tiktok:shop")[0]
    assert f"API runs:   off — {REASON}" in block and "next run:   —" in block
    assert "the daemon's next run lists everything" not in block     # no daemon run is coming


def test_the_daemon_schedules_only_the_accounts_whose_api_is_on(api_off_world: Path, caplog):
    daemon = Daemon(Workspace.open(api_off_world))
    daemon.scheduler = daemon._make_scheduler()      # made, not started: nothing runs
    with caplog.at_level("INFO", logger="archiver"):
        daemon._schedule_accounts(catch_up_for=set())
    assert [job.id for job in daemon.scheduler.get_jobs()] == ["export:tiktok:shop"]
    assert any("x:main: API runs off" in line and REASON in line for line in caplog.messages)
