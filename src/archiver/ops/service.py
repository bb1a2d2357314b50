"""Run `archiver daemon` as a service: a systemd user unit (Linux) or a launchd agent (macOS).

`archiver daemon --install-systemd` and `--install-launchd` call `install_systemd()` and
`install_launchd()`. Both write one file and print the commands that enable it; neither
runs systemctl or launchctl itself, so nothing starts behind the user's back and the
functions can be tested on any machine.

The service runs the Python interpreter archiver is installed in (`sys.executable -m
archiver.cli.main daemon --archive DIR`), so it uses the same virtualenv as the `archiver`
command the user typed, whatever PATH the service manager gives it.

Secrets follow the config's ``[secrets] backend`` (see archiver/secrets.py):

``systemd``
    One ``LoadCredential=<platform>_<account>_<key>:<file>`` per secret each enabled
    account needs (and the e-mail password when ``[notify.email]`` has a username). The
    files live in ``~/.config/archiver/credentials/`` and are the user's to create.
    Tokens that the platform rotates are written to ``tokens.json`` in the unit's state
    directory (``StateDirectory=archiver``), so they survive restarts.
``env``
    ``EnvironmentFile=~/.config/archiver/secrets.env`` holding ARCHIVER_SECRET_* lines.
``keyring``
    Nothing: the daemon asks the desktop keyring, which only answers while the user's
    session has it unlocked (so not on a headless server).
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from archiver.config import CONFIG_NAME, Config, default_archive_dir
from archiver.secrets import env_variable_name, systemd_credential_name

DEFAULT_UNIT_NAME = "archiver.service"
LAUNCHD_LABEL = "org.archiver.daemon"
LAUNCHD_LOG_NAME = "daemon.launchd.log"
ENV_FILE_NAME = "secrets.env"
# Extra seconds systemd / launchd wait after config.daemon.stop_timeout before SIGKILL:
# the daemon needs a moment after the run stops to record it and release its lock.
STOP_GRACE_SECONDS = 15


# --- what the service runs ------------------------------------------------------------


def daemon_command(ws, *, executable: str | None = None) -> list[str]:
    """The argv of the daemon: this interpreter, the archive folder, and the config file
    when it is not the one inside the archive folder."""
    archive_dir = _absolute(ws.archive.folder)
    argv = [_absolute(executable or sys.executable), "-m", "archiver.cli", "daemon", "--archive", archive_dir]
    config_path = ws.config.path
    if config_path is not None and _absolute(config_path) != _absolute(Path(archive_dir) / CONFIG_NAME):
        argv += ["--config", _absolute(config_path)]
    return argv


def _absolute(path) -> str:
    # abspath, not resolve(): a virtualenv's python is a symlink, and following it would
    # start the base interpreter, which does not have archiver installed.
    return os.path.abspath(os.path.expanduser(str(path)))


def needed_secrets(config: Config) -> list[tuple[str, str, str]]:
    """(platform, account, key) of every secret the daemon reads with this config."""
    from archiver.connector import installed_connectors

    connectors = installed_connectors()
    needed = [(account.platform, account.name, key)
              for account in config.accounts if account.enabled
              for key in getattr(connectors.get(account.platform), "secret_keys", ())]
    if config.notify.email and config.notify.email.get("username"):
        needed.append(("notify", "email", "password"))
    return needed


def _config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def default_credentials_dir() -> Path:
    """Where the files behind LoadCredential= are expected: ~/.config/archiver/credentials."""
    return _config_home() / "archiver" / "credentials"


def default_env_file() -> Path:
    """The EnvironmentFile= of a unit whose config says backend = "env"."""
    return _config_home() / "archiver" / ENV_FILE_NAME


def _archive_hash(ws) -> str:
    return hashlib.sha256(_absolute(ws.archive.folder).encode()).hexdigest()[:8]


# --- systemd -------------------------------------------------------------------------------


def unit_name(ws) -> str:
    """archiver.service for the default archive folder; archiver-<hash>.service for any
    other, so that one user can run a daemon per archive."""
    if _absolute(ws.archive.folder) == _absolute(default_archive_dir()):
        return DEFAULT_UNIT_NAME
    return f"archiver-{_archive_hash(ws)}.service"


def systemd_unit(ws, *, executable: str | None = None, credentials_dir: Path | None = None,
                 env_file: Path | None = None) -> str:
    """The text of a systemd user unit that runs the daemon for this workspace."""
    config = ws.config
    credentials_dir = Path(credentials_dir or default_credentials_dir())
    stop_timeout = config.daemon.stop_timeout + STOP_GRACE_SECONDS
    archive_dir = _absolute(ws.archive.folder)
    lines = [
        "# Written by `archiver daemon --install-systemd`. Run that again after adding an",
        "# account or changing [secrets] in the config, then `systemctl --user daemon-reload`.",
        "[Unit]",
        f"Description=archiver daemon for {_escape_specifiers(archive_dir)}",
        "",
        "[Service]",
        "Type=exec",
        "ExecStart=" + " ".join(_systemd_quote(arg) for arg in daemon_command(ws, executable=executable)),
        # `systemctl --user reload NAME`: the daemon re-reads its config on SIGHUP.
        "ExecReload=kill -HUP $MAINPID",
        "Environment=PYTHONUNBUFFERED=1",
        # The daemon stops its running account between pages on SIGTERM and records the
        # run as interrupted; give it stop_timeout plus a little before SIGKILL.
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={stop_timeout}",
        "Restart=on-failure",
        # A config mistake makes the daemon exit at once: retry slowly, never give up.
        "RestartSec=60",
        "Nice=10",
        # ~/.local/state/archiver: where the env and systemd secret backends keep
        # refresh tokens the platform rotated (tokens.json, mode 0600).
        "StateDirectory=archiver",
        "Environment=ARCHIVER_STATE_DIR=%S/archiver",
    ]
    if config.secrets_backend == "systemd":
        lines.append("Environment=ARCHIVER_SECRETS=systemd")
        for platform, account, key in needed_secrets(config):
            name = systemd_credential_name(platform, account, key)
            lines.append(f"LoadCredential={name}:{_escape_specifiers(str(credentials_dir / name))}")
    elif config.secrets_backend == "env":
        lines.append("Environment=ARCHIVER_SECRETS=env")
        lines.append(f"EnvironmentFile={_escape_specifiers(str(env_file or default_env_file()))}")
    lines += ["", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


# Characters after which systemd's word splitting needs quoting.
_NEEDS_QUOTES = re.compile(r"""[\s"'\\;]""")


def _escape_specifiers(text: str) -> str:
    # In unit files "%x" is a specifier (%h = home, %S = state dir); a literal % is "%%".
    return text.replace("%", "%%")


def _systemd_quote(arg: str) -> str:
    """One ExecStart= argument: specifiers and $VARIABLES escaped, quoted when needed."""
    arg = _escape_specifiers(arg).replace("$", "$$")
    if arg and not _NEEDS_QUOTES.search(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def install_systemd(ws, echo: Callable[[str], None] = print, *, unit_dir: Path | None = None,
                    executable: str | None = None, credentials_dir: Path | None = None) -> Path:
    """Write the user unit (default ~/.config/systemd/user/) and print how to enable it."""
    unit_dir = Path(unit_dir or _config_home() / "systemd" / "user")
    credentials_dir = Path(credentials_dir or default_credentials_dir())
    name = unit_name(ws)
    path = unit_dir / name
    existed = path.exists()
    _write_file(path, systemd_unit(ws, executable=executable, credentials_dir=credentials_dir))
    echo(f"{'Replaced' if existed else 'Wrote'} {path}")
    backend = ws.config.secrets_backend
    if backend == "systemd":
        _explain_credentials(ws, credentials_dir, echo)
    elif backend == "env":
        _explain_env_file(ws, default_env_file(), echo)
    else:
        echo("")
        echo(f'Secrets come from the {backend} backend ([secrets] backend = "{backend}"). A desktop keyring '
             "answers only while your session has it unlocked; on a server set backend = \"systemd\" "
             "(or \"env\") and run this command again (README: \"On a headless server\").")
    echo("")
    echo("Enable and start it:")
    echo("  systemctl --user daemon-reload")
    echo(f"  systemctl --user enable --now {name}")
    echo("Follow its log:")
    echo(f"  journalctl --user -u {name} -f")
    echo("Keep it running while you are logged out (servers):")
    echo("  loginctl enable-linger $USER")
    return path


def _explain_credentials(ws, credentials_dir: Path, echo) -> None:
    config = ws.config
    echo("")
    needed = needed_secrets(config)
    if not needed:
        echo("No account is configured yet, so the unit loads no credentials.")
        return
    echo(f"Create these files (mode 0600, folder {credentials_dir} mode 0700); each holds one secret:")
    for platform, account, key in needed:
        echo(f"  {credentials_dir / systemd_credential_name(platform, account, key)}  "
             f"({_describe_secret(platform, account, key)})")
    echo(f"  e.g.  install -d -m 700 {credentials_dir} && (umask 077; cat > {credentials_dir / 'NAME'})")
    echo("systemd refuses to start the unit while one of them is missing.")
    accounts = sorted({(platform, account) for platform, account, key in needed if key == "tokens"})
    if accounts:
        echo("Then authorize each account once. On a server, first `ssh -L 8400:127.0.0.1:8400 you@server` "
             "and open the printed URL on your own computer (README \"On a headless server\"):")
    for platform, account in accounts:
        # `archiver auth` outside the unit has no $CREDENTIALS_DIRECTORY: it reads the same
        # files through environment variables and stores the tokens in the state folder.
        # The account's own secrets besides its tokens: what its connector declares (secret_keys).
        variables = " ".join(
            f'{env_variable_name(platform, account, key)}="$(cat {shlex.quote(str(credentials_dir / name))})"'
            for needed_platform, needed_account, key in needed if (needed_platform, needed_account) == (platform, account)
            and key != "tokens"
            for name in [systemd_credential_name(platform, account, key)])
        echo(f"  ARCHIVER_SECRETS=env {variables} \\\n    archiver auth {platform} --account {account} "
             f"--no-browser --port 8400 {_workspace_options(ws)}")
    echo("LoadCredential= in a user unit needs systemd 252 or newer (`systemctl --version`). With an "
         'older one, set [secrets] backend = "env" and run this command again: the unit then reads '
         f"ARCHIVER_SECRET_* lines from {default_env_file()} (EnvironmentFile=, mode 0600).")


def _describe_secret(platform: str, account: str, key: str) -> str:
    if key == "tokens":
        # An empty file is read as "no value", so the rotated tokens.json entry is used.
        return "leave it EMPTY: the daemon then uses the tokens `archiver auth` keeps in ~/.local/state/archiver"
    if platform == "notify":
        return "the SMTP password of [notify.email]"
    return f"the {platform} app's {key.replace('_', ' ')}, for account {account!r}"


def _workspace_options(ws) -> str:
    """--archive DIR [--config FILE] for a command typed in a shell."""
    return " ".join(shlex.quote(arg) for arg in daemon_command(ws)[4:])


def _explain_env_file(ws, env_file: Path, echo) -> None:
    config = ws.config
    echo("")
    echo(f"The unit reads the secrets from {env_file} (EnvironmentFile=). Create it with mode 0600, "
         "one NAME=value line each:")
    for platform, account, key in needed_secrets(config):
        if key == "tokens":
            continue  # `archiver auth` keeps them in the state folder's tokens.json
        echo(f"  {env_variable_name(platform, account, key)}=…")
    accounts = sorted({(platform, account) for platform, account, key in needed_secrets(config) if key == "tokens"})
    if accounts:
        echo("Then authorize each account once; the tokens go to ~/.local/state/archiver/tokens.json:")
    for platform, account in accounts:
        echo(f"  (set -a; . {shlex.quote(str(env_file))}; ARCHIVER_SECRETS=env archiver auth {platform} "
             f"--account {account} {_workspace_options(ws)})")


def _write_file(path: Path, text: str) -> None:
    """Write through a temporary file and a rename: a half-written unit never exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.chmod(temporary, 0o644)  # no secrets inside; the service manager must read it
    os.replace(temporary, path)


# --- launchd (macOS) -------------------------------------------------------------------------


def launchd_plist(ws, *, executable: str | None = None) -> str:
    """The text of a launchd agent (~/Library/LaunchAgents) that runs the daemon."""
    archive_dir = _absolute(ws.archive.folder)
    log_path = str(Path(archive_dir) / LAUNCHD_LOG_NAME)
    environment = {"PYTHONUNBUFFERED": "1"}
    backend = ws.config.secrets_backend
    if backend != "keyring":
        # systemd credentials do not exist on macOS: there the nearest thing is env.
        environment["ARCHIVER_SECRETS"] = "env" if backend == "systemd" else backend
    agent = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": daemon_command(ws, executable=executable),
        "WorkingDirectory": archive_dir,
        "EnvironmentVariables": environment,
        "RunAtLoad": True,
        # Restart after a crash, not after a clean exit (e.g. `launchctl stop`).
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 60,
        # launchd sends SIGTERM, then SIGKILL after this many seconds.
        "ExitTimeOut": ws.config.daemon.stop_timeout + STOP_GRACE_SECONDS,
        "StandardOutPath": log_path,
        "StandardErrorPath": log_path,
    }
    return plistlib.dumps(agent, sort_keys=False).decode("utf-8")


def install_launchd(ws, echo: Callable[[str], None] = print, *, agent_dir: Path | None = None,
                    executable: str | None = None) -> Path:
    """Write ~/Library/LaunchAgents/org.archiver.daemon.plist and print how to load it."""
    agent_dir = Path(agent_dir or Path.home() / "Library" / "LaunchAgents")
    path = agent_dir / f"{LAUNCHD_LABEL}.plist"
    existed = path.exists()
    _write_file(path, launchd_plist(ws, executable=executable))
    # launchd appends to the log file it is given and creates a missing one readable by
    # everyone: it is created here first, private to the user (0600).
    from archiver.private_files import open_private

    log_path = Path(_absolute(ws.archive.folder)) / LAUNCHD_LOG_NAME
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    open_private(log_path, "a").close()
    echo(f"{'Replaced' if existed else 'Wrote'} {path}")
    if ws.config.secrets_backend in ("env", "systemd"):
        echo("")
        echo("The agent runs with ARCHIVER_SECRETS=env: add the ARCHIVER_SECRET_* variables to its "
             "EnvironmentVariables and `chmod 600` the file, or use the keychain "
             '([secrets] backend = "keyring", the default on a Mac).')
    echo("")
    echo("Load and start it:")
    echo(f"  launchctl load -w {path}")
    echo("or, on newer macOS:")
    echo(f"  launchctl bootstrap gui/$(id -u) {path}")
    echo(f"Stop it: launchctl bootout gui/$(id -u)/{LAUNCHD_LABEL}")
    echo(f"Its output: {Path(_absolute(ws.archive.folder)) / LAUNCHD_LOG_NAME}")
    if existed:
        echo("(If it was loaded already, unload it first so launchd reads the new file.)")
    return path
