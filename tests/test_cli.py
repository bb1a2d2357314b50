"""The `archiver` command as a person meets it: the installed console script, run as a
subprocess. Help and connectors, `init` (with --archive and with ARCHIVER_HOME), config
mistakes reported with file, line, key, value and what is expected, an unknown platform,
`demo`, and what `status` says about runs that went well, failed, or failed in part.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from archiver.connector import connector_names
from cli_world import cli_env, query, run_cli, write_account_config

# Every installed connector, as the CLI lists them in its errors.
INSTALLED = ", ".join(connector_names())

COMMANDS = ("init", "auth", "export", "import", "status", "verify", "serve", "connectors", "simulate", "demo")


def example_config() -> str:
    from importlib.resources import files

    return files("archiver").joinpath("config.example.toml").read_text(encoding="utf-8")


def tables(archive_dir: Path) -> set[str]:
    return {name for (name,) in query(archive_dir, "SELECT name FROM sqlite_master WHERE type='table'")}


# --------------------------------------------------------------------------- help, connectors


def test_help_lists_every_command():
    result = run_cli(["--help"])
    assert result.returncode == 0, result.describe()
    listed = {line.split()[0] for line in result.stdout.split("Commands:", 1)[1].splitlines() if line.strip()}
    assert set(COMMANDS) <= listed, listed
    for command in COMMANDS:  # and each one's own help works
        sub = run_cli([command, "--help"])
        assert sub.returncode == 0 and "Usage:" in sub.stdout, sub.describe()


def test_connectors_lists_tiktok():
    result = run_cli(["connectors"])
    assert result.returncode == 0, result.describe()
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert ["tiktok", "TikTok", "archiver_connectors.tiktok"] in rows, result.stdout


# --------------------------------------------------------------------------- init


def test_init_writes_the_commented_config_and_creates_the_archive(tmp_path):
    folder = tmp_path / "my archive"
    result = run_cli(["init", "--archive", str(folder)])
    assert result.returncode == 0, result.describe()
    config = folder / "config.toml"
    assert config.read_text(encoding="utf-8") == example_config()
    assert sum(line.startswith("#") for line in config.read_text().splitlines()) > 10  # it explains itself
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert (folder / "media").is_dir()
    assert {"posts", "post_media", "media", "follows", "runs", "sync_state"} <= tables(folder)
    assert str(folder / "config.toml") in result.stdout

    # A second init leaves a config the person edited alone; --force replaces it.
    config.write_text('[accounts.mine]\nplatform = "tiktok"\n', encoding="utf-8")
    again = run_cli(["init", "--archive", str(folder)])
    assert again.returncode == 0 and "exists already" in again.stdout, again.describe()
    assert config.read_text() == '[accounts.mine]\nplatform = "tiktok"\n'
    forced = run_cli(["init", "--archive", str(folder), "--force"])
    assert forced.returncode == 0, forced.describe()
    assert config.read_text(encoding="utf-8") == example_config()


def test_archiver_home_works_like_the_archive_option(tmp_path):
    by_option, by_env = tmp_path / "by-option", tmp_path / "by-env"
    assert run_cli(["init", "--archive", str(by_option)]).returncode == 0
    env = cli_env(tmp_path / "state", ARCHIVER_HOME=str(by_env))
    result = run_cli(["init"], env, cwd=tmp_path)
    assert result.returncode == 0, result.describe()

    def layout(folder: Path) -> set[str]:
        return {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.name.startswith("archive.db-")}

    assert layout(by_env) == layout(by_option)
    assert (by_env / "config.toml").read_text() == (by_option / "config.toml").read_text()
    assert tables(by_env) == tables(by_option)
    # The other commands find it the same way.
    status = run_cli(["status"], env, cwd=tmp_path)
    assert status.returncode == 0 and "tiktok:main" in status.stdout, status.describe()
    verify = run_cli(["verify"], env, cwd=tmp_path)
    assert verify.returncode == 0 and "integrity check ok" in verify.stdout, verify.describe()
    # --archive wins over ARCHIVER_HOME.
    (by_option / "config.toml").write_text('[accounts.elsewhere]\nplatform = "tiktok"\n')
    chosen = run_cli(["status", "--archive", str(by_option)], env)
    assert "tiktok:elsewhere" in chosen.stdout and "tiktok:main" not in chosen.stdout, chosen.describe()


# --------------------------------------------------------------------------- config mistakes

# (the account table's body, line of the mistake in the file, key, value shown, words of what is expected)
BAD_CONFIGS = {
    "wrong type": ('platform = "tiktok"\nportability = "yes"\n', 6, "accounts.main.portability", "'yes'",
                   "true or false"),
    "unknown platform": ('platform = "tiktk"\n', 5, "accounts.main.platform", "'tiktk'",
                         f"installed connector: {INSTALLED}"),
    "secret in the config": ('platform = "tiktok"\nclient_secret = "hunter2-shhh"\n', 6,
                             "accounts.main.client_secret", "<hidden>", "no secrets in the config"),
    "invalid TOML": ('platform = tiktok\n', 5, "accounts.main.platform", "tiktok", "double quotes"),
    "bad schedule": ('platform = "tiktok"\nschedule = "every night"\n', 6, "accounts.main.schedule",
                     "'every night'", "five fields"),
    "full listing period in words": ('platform = "tiktok"\nfull_every_days = "weekly"\n', 6,
                                     "accounts.main.full_every_days", "'weekly'", "a whole number"),
    "full listing never": ('platform = "tiktok"\nfull_every_days = 0\n', 6, "accounts.main.full_every_days",
                           "0", "1 or more"),
    "deleted share above 100": ('platform = "tiktok"\nmax_deleted_percent = 150\n', 6,
                                "accounts.main.max_deleted_percent", "150", "from 0 to 100"),
    "repairs per run below 0": ('platform = "tiktok"\nrepairs_per_run = -1\n', 6,
                                "accounts.main.repairs_per_run", "-1", "0 or more"),
    "repairs per run in words": ('platform = "tiktok"\nrepairs_per_run = "all"\n', 6,
                                 "accounts.main.repairs_per_run", "'all'", "a whole number"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=list(BAD_CONFIGS))
def test_a_config_mistake_names_file_line_key_value_and_what_is_expected(tmp_path, case):
    body, line, key, shown, expected = BAD_CONFIGS[case]
    folder = tmp_path / "archive"
    folder.mkdir()
    config = folder / "config.toml"
    config.write_text('[secrets]\nbackend = "env"\n\n[accounts.main]\n' + body, encoding="utf-8")
    assert config.read_text().splitlines()[line - 1].split("=")[0].strip() == key.rsplit(".", 1)[1]

    for args in (["status", "--archive", str(folder)], ["export", "--platform", "tiktok", "--archive", str(folder)]):
        result = run_cli(args, cli_env(tmp_path / "state"))
        assert result.returncode == 1, result.describe()
        error = result.stderr
        assert "Traceback" not in result.output, result.describe()
        assert str(config) in error, error
        assert f"line {line}" in error, error
        assert key in error, error
        assert shown in error, error
        assert expected in error, error
    if case == "secret in the config":
        assert "hunter2-shhh" not in result.output  # the value itself is never echoed


def test_a_config_mistake_in_a_file_given_with_config(tmp_path):
    config = tmp_path / "elsewhere.toml"
    config.write_text('[accounts.main]\nplatform = "tiktok"\nenabled = "no"\n')
    result = run_cli(["status", "--archive", str(tmp_path / "a"), "--config", str(config)], cli_env(tmp_path))
    assert result.returncode == 1
    assert f"{config}, line 3: accounts.main.enabled = 'no': expected true or false" in result.stderr


def test_export_of_an_unknown_platform_names_the_installed_connectors(tmp_path):
    folder = tmp_path / "archive"
    assert run_cli(["init", "--archive", str(folder)]).returncode == 0
    env = cli_env(tmp_path / "state")
    for where in (folder, tmp_path / "no-config-yet"):
        result = run_cli(["export", "--platform", "nosuch", "--archive", str(where)], env)
        assert result.returncode == 1, result.describe()
        assert "'nosuch'" in result.stderr and f"Installed connectors: {INSTALLED}" in result.stderr, result.describe()
        assert "Traceback" not in result.output


# --------------------------------------------------------------------------- demo and status


def test_demo_builds_an_archive_that_status_and_verify_accept(tmp_path):
    folder = tmp_path / "demo"
    demo = run_cli(["demo", "--dir", str(folder), "--videos", "6", "--followers", "15"], cli_env(tmp_path / "state"))
    assert demo.returncode == 0, demo.describe()
    assert "SIMULATED" in demo.stdout and "no real account is contacted" in demo.stdout
    assert query(folder, "SELECT count(*) FROM posts") == [(6,)]
    assert query(folder, "SELECT count(*) FROM follows WHERE kind='followers' AND ended_at IS NULL") == [(15,)]

    status = run_cli(["status", "--archive", str(folder)], cli_env(tmp_path / "state"))
    assert status.returncode == 0, status.describe()
    text = status.stdout
    runs = query(folder, "SELECT run_id, kind, status, counts FROM runs ORDER BY run_id")
    assert [(kind, result) for _, kind, result, _ in runs] == [("export", "ok"), ("import", "ok")]
    last_id, _, _, last_counts = runs[-1]
    assert f"last run:   #{last_id} import" in text and "— OK" in text, text
    added = json.loads(last_counts)
    assert added["followers_new"] == 15
    assert "it added:" in text and "followers new 15" in text, text
    assert "6 posts" in text and "15 followers" in text and "failed:" not in text, text
    assert "newest export imported: 20" in text, text

    verify = run_cli(["verify", "--archive", str(folder)], cli_env(tmp_path / "state"))
    assert verify.returncode == 0, verify.describe()
    media_rows = query(folder, "SELECT count(*) FROM media")[0][0]
    assert "integrity check ok" in verify.stdout and f"{media_rows} files checked, 0 problem(s)" in verify.stdout


def test_status_says_what_failed(tmp_path):
    """A run that failed outright (no authorization yet), then an import whose media links
    had expired: status shows each, with the reason, and what still got added."""
    from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig, serve

    fake = FakeTikTok(FakeTikTokConfig(videos=4, followers=5, export_link_ttl=-3600))
    server, _thread = serve(fake)  # in this process, on 127.0.0.1: the CLI reaches it over loopback
    try:
        folder = tmp_path / "archive"
        write_account_config(folder, fake.base_url)
        env = cli_env(tmp_path / "state")

        export = run_cli(["export", "--platform", "tiktok", "--archive", str(folder)], env)
        assert export.returncode == 1, export.describe()
        status = run_cli(["status", "--archive", str(folder)], env)
        assert status.returncode == 0, status.describe()
        assert "export (incremental)" in status.stdout and "— FAILED" in status.stdout, status.stdout
        assert "note:       no TikTok authorization stored" in status.stdout, status.stdout
        assert "archiver auth tiktok" in status.stdout
        assert "last success: never" in status.stdout

        export_file = tmp_path / "TikTok_Data_old_links.zip"
        export_file.write_bytes(fake.export_zip(layout="new"))  # its media links expired an hour ago
        imported = run_cli(["import", str(export_file), "--archive", str(folder)], env)
        assert imported.returncode == 0, imported.describe()
        # Importing the same file again cannot bring expired links back: nothing stays open.
        assert "--retry-failed" not in imported.stdout, imported.describe()
        assert query(folder, "SELECT holes FROM imports") == [(0,)]
        status = run_cli(["status", "--archive", str(folder)], env)
        text = status.stdout
        assert "import (TikTok_Data_old_links.zip)" in text and "— OK" in text, text
        assert "followers new 5" in text, text  # what the run added despite the failures
        # The export's links had expired: not requested, and said once with what to do.
        media_lines = [line for line in text.splitlines() if line.strip().startswith("summary:")]
        assert len(media_lines) == 1 and "links expired on" in media_lines[0], text
        assert "request a new export" in media_lines[0], text
        holes = query(folder, "SELECT count(*) FROM post_media WHERE status='failed' AND cause='expired'")[0][0]
        assert f"holes:      {holes} files without their media ({holes} expired)" in text, text
        assert "4 posts" in text, text

        as_json = json.loads(run_cli(["status", "--json", "--archive", str(folder)], env).stdout)
        (account,) = as_json
        errors = account["last_run"]["errors"]
        missing = query(folder, "SELECT count(*) FROM post_media WHERE status='failed'")[0][0]
        assert missing > 0 and len(errors) >= missing
        assert account["archive_holds"]["media_missing"] == missing
        assert account["last_successful_run_at"] is not None
        assert all("x-signature" not in e["item"] + e["error"] for e in errors)  # links shown without their signature
    finally:
        server.shutdown()
        server.server_close()


def test_auth_with_an_empty_token_on_stdin_fails_before_touching_the_config(tmp_path):
    archive = tmp_path / "archive"
    result = run_cli(["auth", "bluesky", "--archive", str(archive), "--handle", "alice.example", "--token-stdin"],
                     cli_env(tmp_path / "state", platform="bluesky"), stdin="")
    assert result.returncode == 1 and "standard input was empty" in result.stderr, result.describe()
    assert not (archive / "config.toml").exists()
