"""`archiver daemon --install-systemd / --install-launchd`: the unit and the agent they write.

Everything is written into tmp folders (HOME and XDG_* point into tmp_path): never the
real home, never a real service manager. The unit is checked three ways: its content
(ExecStart, LoadCredential lines), `systemd-analyze verify` when systemd is installed, and
by running its ExecStart command line. The headless flow the README describes (auth over
env, then the daemon reading systemd credentials) is run end to end against `archiver
simulate`.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_world import (
    FAKE_CLIENT_KEY,
    FAKE_CLIENT_SECRET,
    authorize,
    query,
    run_cli,
    start_simulator,
)

from archiver.ops import service
from archiver.sync.jobs import Workspace

TWO_ACCOUNTS_AND_EMAIL = """
[secrets]
backend = "{backend}"

[accounts.main]
platform = "tiktok"

[accounts.shop]
platform = "tiktok"

[accounts.old]
platform = "tiktok"
enabled = false

[notify.email]
host = "127.0.0.1"
username = "me"
from = "me@example.org"
to = "me@example.org"

[daemon]
stop_timeout = 40
"""


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """HOME and the XDG folders inside tmp_path: a default path can never reach the real home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for variable, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                          ("XDG_STATE_HOME", ".local/state")):
        monkeypatch.setenv(variable, str(home / sub))
    return home


def make_workspace(folder: Path, config_text: str, *, config_path: Path | None = None) -> Workspace:
    folder.mkdir(parents=True, exist_ok=True)
    path = config_path or folder / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text, encoding="utf-8")
    return Workspace.open(folder, config_path)


def unit_values(unit_text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit_text.splitlines() if line.startswith(key + "=")]


def exec_start_argv(unit_text: str) -> list[str]:
    """ExecStart= split the way systemd does for what we write: quotes and backslashes,
    then %% and $$ back to single characters."""
    [line] = unit_values(unit_text, "ExecStart")
    return [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(line)]


def loaded_credentials(unit_text: str) -> dict[str, str]:
    return dict(value.split(":", 1) for value in unit_values(unit_text, "LoadCredential"))


# --- content ------------------------------------------------------------------------------


def test_exec_start_runs_this_python_on_the_archive(tmp_path):
    archive = tmp_path / "archive"
    ws = make_workspace(archive, TWO_ACCOUNTS_AND_EMAIL.format(backend="keyring"))
    unit = service.systemd_unit(ws)

    argv = exec_start_argv(unit)
    assert argv == [os.path.abspath(sys.executable), "-m", "archiver.cli", "daemon", "--archive", str(archive)]
    assert os.access(argv[0], os.X_OK)
    assert Path(argv[5]).is_dir()
    assert unit_values(unit, "Restart") == ["on-failure"]
    assert unit_values(unit, "KillSignal") == ["SIGTERM"]
    assert unit_values(unit, "ExecReload") == ["kill -HUP $MAINPID"]  # SIGHUP reloads the config
    timeout = int(unit_values(unit, "TimeoutStopSec")[0])
    assert 40 < timeout <= 40 + 60  # a bit over [daemon] stop_timeout
    assert "PYTHONUNBUFFERED=1" in unit_values(unit, "Environment")
    assert unit_values(unit, "WantedBy") == ["default.target"]


def test_a_config_outside_the_archive_is_passed_with_config(tmp_path):
    archive = tmp_path / "archive"
    elsewhere = tmp_path / "etc" / "archiver.toml"
    ws = make_workspace(archive, TWO_ACCOUNTS_AND_EMAIL.format(backend="keyring"), config_path=elsewhere)

    argv = exec_start_argv(service.systemd_unit(ws))
    assert argv[-2:] == ["--config", str(elsewhere)]
    plist = plistlib.loads(service.launchd_plist(ws).encode())
    assert plist["ProgramArguments"][-2:] == ["--config", str(elsewhere)]


def test_systemd_backend_loads_exactly_the_secrets_of_enabled_accounts(tmp_path):
    ws = make_workspace(tmp_path / "archive", TWO_ACCOUNTS_AND_EMAIL.format(backend="systemd"))
    credentials = tmp_path / "creds"
    unit = service.systemd_unit(ws, credentials_dir=credentials)

    expected = {f"tiktok_{account}_{key}" for account in ("main", "shop")
                for key in ("client_key", "client_secret", "tokens")} | {"notify_email_password"}
    loaded = loaded_credentials(unit)
    assert set(loaded) == expected  # not the disabled "old" account
    assert len(unit_values(unit, "LoadCredential")) == len(expected)
    assert all(path == str(credentials / name) for name, path in loaded.items())
    environment = unit_values(unit, "Environment")
    assert "ARCHIVER_SECRETS=systemd" in environment
    assert "ARCHIVER_STATE_DIR=%S/archiver" in environment
    assert unit_values(unit, "StateDirectory") == ["archiver"]


def test_no_email_username_means_no_password_credential(tmp_path):
    config = TWO_ACCOUNTS_AND_EMAIL.format(backend="systemd").replace('username = "me"\n', "")
    ws = make_workspace(tmp_path / "archive", config)
    assert "notify_email_password" not in loaded_credentials(service.systemd_unit(ws))


@pytest.mark.parametrize("backend", ["keyring", "env"])
def test_other_backends_load_no_credentials(tmp_path, backend):
    ws = make_workspace(tmp_path / "archive", TWO_ACCOUNTS_AND_EMAIL.format(backend=backend))
    unit = service.systemd_unit(ws)

    assert unit_values(unit, "LoadCredential") == []
    if backend == "keyring":
        assert not any(v.startswith("ARCHIVER_SECRETS=") for v in unit_values(unit, "Environment"))
        assert unit_values(unit, "EnvironmentFile") == []
    else:
        assert "ARCHIVER_SECRETS=env" in unit_values(unit, "Environment")
        assert unit_values(unit, "EnvironmentFile") == [str(service.default_env_file())]


def test_install_systemd_writes_the_unit_and_prints_how_to_enable_it(tmp_path, private_home):
    archive = tmp_path / "archive"
    ws = make_workspace(archive, TWO_ACCOUNTS_AND_EMAIL.format(backend="systemd"))
    printed: list[str] = []

    path = service.install_systemd(ws, printed.append, unit_dir=tmp_path / "units")

    assert path.parent == tmp_path / "units"
    assert path.name.startswith("archiver-") and path.name.endswith(".service")
    assert path.read_text() == service.systemd_unit(ws)
    output = "\n".join(printed)
    for command in ("systemctl --user daemon-reload", f"systemctl --user enable --now {path.name}",
                    f"journalctl --user -u {path.name} -f", "loginctl enable-linger $USER"):
        assert command in output
    # Every credential file the unit loads is listed for the user to create, with its mode.
    credentials = private_home / ".config" / "archiver" / "credentials"
    for name, source in loaded_credentials(path.read_text()).items():
        assert source == str(credentials / name)
        assert source in output
    assert "0600" in output and "systemd 252" in output
    assert not (private_home / ".config" / "systemd").exists()  # only where it was told

    printed.clear()
    service.install_systemd(ws, printed.append, unit_dir=tmp_path / "units")
    assert printed[0] == f"Replaced {path}"


def test_unit_names_tell_archives_apart(tmp_path):
    default = make_workspace(Path(service.default_archive_dir()), "")  # inside the tmp HOME
    assert service.unit_name(default) == "archiver.service"
    first = service.unit_name(make_workspace(tmp_path / "one", ""))
    second = service.unit_name(make_workspace(tmp_path / "two", ""))
    assert first != second and first.startswith("archiver-") and second.startswith("archiver-")


def test_launchd_plist(tmp_path):
    archive = tmp_path / "archive"
    ws = make_workspace(archive, TWO_ACCOUNTS_AND_EMAIL.format(backend="env"))
    printed: list[str] = []

    path = service.install_launchd(ws, printed.append, agent_dir=tmp_path / "LaunchAgents")

    assert path == tmp_path / "LaunchAgents" / "org.archiver.daemon.plist"
    agent = plistlib.loads(path.read_bytes())
    assert agent["Label"] == "org.archiver.daemon"
    assert agent["ProgramArguments"] == [os.path.abspath(sys.executable), "-m", "archiver.cli", "daemon",
                                         "--archive", str(archive)]
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert Path(agent["StandardOutPath"]).parent == archive
    assert Path(agent["StandardErrorPath"]).parent == archive
    assert agent["EnvironmentVariables"]["ARCHIVER_SECRETS"] == "env"
    assert agent["ExitTimeOut"] > 40
    output = "\n".join(printed)
    assert f"launchctl load -w {path}" in output
    assert f"launchctl bootstrap gui/$(id -u) {path}" in output

    keyring_ws = make_workspace(tmp_path / "mac", TWO_ACCOUNTS_AND_EMAIL.format(backend="keyring"))
    agent = plistlib.loads(service.launchd_plist(keyring_ws).encode())
    assert "ARCHIVER_SECRETS" not in agent["EnvironmentVariables"]


# --- the unit as systemd and the shell see it ------------------------------------------------

# A path that needs every kind of escaping the unit writer does: a space, %, $ and a quote.
AWKWARD_FOLDER = "my archive 100% $HOME \"x\""


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_unit(tmp_path, private_home):
    ws = make_workspace(tmp_path / AWKWARD_FOLDER, TWO_ACCOUNTS_AND_EMAIL.format(backend="systemd"))
    credentials = tmp_path / "creds"
    credentials.mkdir()
    for name in loaded_credentials(service.systemd_unit(ws, credentials_dir=credentials)):
        (credentials / name).write_text("x")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}

    def verify(unit_path: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["systemd-analyze", "--user", "verify", str(unit_path)], check=False, env=env,
                              capture_output=True, text=True, timeout=30)

    good = service.install_systemd(ws, lambda line: None, unit_dir=tmp_path / "units", credentials_dir=credentials)
    result = verify(good)
    assert result.returncode == 0, result.stderr
    # Warnings about our own lines ("Unknown key", "Invalid syntax, ignoring") fail the test too.
    assert good.name not in result.stderr and str(good) not in result.stderr, result.stderr

    # The same check notices a unit whose program does not exist: it can fail.
    broken = service.install_systemd(ws, lambda line: None, unit_dir=tmp_path / "broken",
                                     executable=str(tmp_path / "no-such-python"), credentials_dir=credentials)
    assert verify(broken).returncode != 0


def test_the_exec_start_command_line_starts(tmp_path):
    archive = tmp_path / AWKWARD_FOLDER
    ws = make_workspace(archive, TWO_ACCOUNTS_AND_EMAIL.format(backend="keyring"))
    argv = exec_start_argv(service.systemd_unit(ws))
    assert argv[argv.index("--archive") + 1] == str(archive)  # the quoting survives the round trip

    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    started = subprocess.run([*argv, "--help"], check=False, env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    assert "Usage:" in started.stdout and "daemon" in started.stdout


# --- the headless flow of the README, end to end ---------------------------------------------


def test_systemd_credentials_with_an_empty_tokens_file_use_the_tokens_from_auth(tmp_path):
    """README "On a headless server": the credential files hold the client key and secret,
    the tokens file stays empty, `archiver auth` runs with ARCHIVER_SECRETS=env reading
    those files, and the daemon's environment (ARCHIVER_SECRETS=systemd,
    CREDENTIALS_DIRECTORY, the state folder) then exports with the tokens auth stored."""
    sim = start_simulator(tmp_path / "sim", videos=7, followers=5)
    try:
        archive = tmp_path / "archive"
        ws = make_workspace(archive, f'[secrets]\nbackend = "systemd"\n\n[accounts.main]\n'
                                     f'platform = "tiktok"\nbase_url = "{sim.base_url}"\n')
        sources = tmp_path / "home" / ".config" / "archiver" / "credentials"
        sources.mkdir(parents=True, mode=0o700)
        (sources / "tiktok_main_client_key").write_text(FAKE_CLIENT_KEY + "\n")
        (sources / "tiktok_main_client_secret").write_text(FAKE_CLIENT_SECRET + "\n")
        (sources / "tiktok_main_tokens").write_text("")
        unit = service.systemd_unit(ws, credentials_dir=sources)
        state = tmp_path / "state"

        base_env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
        base_env.update(PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", ARCHIVER_STATE_DIR=str(state))
        # The printed `archiver auth` command: env backend, values read from the credential files.
        authorize(archive, {**base_env, "ARCHIVER_SECRETS": "env",
                            "ARCHIVER_SECRET_TIKTOK_MAIN_CLIENT_KEY": (sources / "tiktok_main_client_key").read_text().strip(),
                            "ARCHIVER_SECRET_TIKTOK_MAIN_CLIENT_SECRET": (sources / "tiktok_main_client_secret").read_text().strip()})

        # What systemd does at start: copy every LoadCredential= source into the credentials folder.
        credentials_directory = tmp_path / "run-credentials"
        credentials_directory.mkdir(mode=0o700)
        for name, source in loaded_credentials(unit).items():
            shutil.copyfile(source, credentials_directory / name)
        unit_env = dict(value.split("=", 1) for value in unit_values(unit, "Environment"))
        assert unit_env["ARCHIVER_SECRETS"] == "systemd"
        daemon_env = {**base_env, "ARCHIVER_SECRETS": unit_env["ARCHIVER_SECRETS"],
                      "CREDENTIALS_DIRECTORY": str(credentials_directory)}

        result = run_cli(["export", "--platform", "tiktok", "--archive", str(archive)], daemon_env)
        assert result.returncode == 0, result.describe()
        assert query(archive, "SELECT count(*) FROM posts")[0][0] == 7
    finally:
        sim.stop()


def test_the_cli_installs_into_the_users_config_folder(tmp_path, private_home):
    """`archiver daemon --install-systemd` as a user types it (HOME is a tmp folder)."""
    archive = tmp_path / "archive"
    ws = make_workspace(archive, TWO_ACCOUNTS_AND_EMAIL.format(backend="systemd"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

    result = run_cli(["daemon", "--install-systemd", "--archive", str(archive)], env)

    assert result.returncode == 0, result.describe()
    unit = private_home / ".config" / "systemd" / "user" / service.unit_name(ws)
    assert unit.read_text() == service.systemd_unit(ws, executable=exec_start_argv(unit.read_text())[0])
    assert f"systemctl --user enable --now {unit.name}" in result.stdout


def test_the_printed_auth_command_reads_the_platforms_own_secrets(tmp_path, private_home):
    """The client id of a YouTube account is its `client_id` (the connector's secret_keys),
    not TikTok's `client_key`: the printed `archiver auth` reads the files the unit loads."""
    archive = tmp_path / "archive"
    ws = make_workspace(archive, '[secrets]\nbackend = "systemd"\n\n[accounts.main]\nplatform = "youtube"\n')
    printed: list[str] = []
    service.install_systemd(ws, printed.append, unit_dir=tmp_path / "units")
    command = next(line for line in printed if "ARCHIVER_SECRETS=env" in line)
    assert "ARCHIVER_SECRET_YOUTUBE_MAIN_CLIENT_ID=" in command and "youtube_main_client_id" in command, command
    assert "ARCHIVER_SECRET_YOUTUBE_MAIN_CLIENT_SECRET=" in command, command
    assert "CLIENT_KEY" not in command and "TOKENS" not in command, command
