"""A real PostgreSQL for the fleet tests: Debian's server binaries (``initdb``, ``pg_ctl`` from
/usr/lib/postgresql/<version>/bin), started by the tests on a free loopback port with its data
folder under the test session's tmp, stopped at session end.

Use it from a test module by importing the fixtures::

    from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)

    def test_something(fleet_database):      # a fresh, empty database: its URL
        ...

    def test_restart(postgres):              # the server itself (stop/start/restart)
        url = postgres.create_database()

``postgres`` is one server per pytest process (xdist worker), stopped when it exits. ``fleet_database``
(function scope) is a new database on it for each test, so tests never see each other's rows.
Without the binaries the tests skip, unless ARCHIVER_REQUIRE_POSTGRES=1 (CI sets it), which
makes that a failure. Every step is bounded (``pg_ctl -t``, subprocess timeouts).

Running as root (CI containers): PostgreSQL refuses to run as root, so the server runs as the
``postgres`` user (Debian's package creates it) via ``setpriv``; its data folder is chowned to
that user and the folders above it get the traverse bit (o+x, not read) so it can reach it.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest

SUPERUSER = "archiver"            # the cluster's superuser (initdb -U); trust auth on loopback only
START_TIMEOUT_SECONDS = 60        # pg_ctl -w -t: a busy 2-core machine can be slow
SERVER_SETTINGS = {
    # A throw-away cluster: durability off makes it several times faster; loopback TCP only.
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


def postgres_bin_dir() -> Path | None:
    """Where Debian's PostgreSQL binaries are (the newest version), or None. PG_BIN overrides."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One throw-away cluster in ``folder``: ``start``, ``stop``, ``restart``, ``url``,
    ``create_database``."""

    def __init__(self, folder: Path, bin_dir: Path):
        self.folder = Path(folder)
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.bin_dir = bin_dir
        self.port: int | None = None
        self._names = itertools.count(1)
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            self._run_as = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups"]
            self._owner = (account.pw_uid, account.pw_gid)

    # -- running the binaries -----------------------------------------------------------
    def _run(self, program: str, *args: str, timeout: float = START_TIMEOUT_SECONDS + 30) -> None:
        command = [*self._run_as, str(self.bin_dir / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stdout}{done.stderr}\n"
                               f"server log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _prepare_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self._run_as:
            return
        os.chown(self.folder, *self._owner)
        # The postgres user must be able to walk down to the folder (pytest makes its tmp 0700).
        for parent in self.folder.parents:
            mode = parent.stat().st_mode
            if mode & stat.S_IXOTH:
                break
            parent.chmod(mode | stat.S_IXOTH)

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> "PostgresServer":
        if not (self.data / "PG_VERSION").exists():
            self._prepare_folder()
            self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                      "--locale=C", "--no-sync", "--no-instructions")
        options = " ".join(f"-c {key}={value!s}" if value else f"-c {key}=''" for key, value in SERVER_SETTINGS.items())
        for attempt in range(5):   # a port picked free can be taken by another process before we bind it
            port = self.port or _free_port()
            try:
                self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w",
                          "-t", str(START_TIMEOUT_SECONDS), "-o", f"-p {port} {options}")
            except RuntimeError:
                if attempt == 4 or self.port is not None:   # a restart keeps its port: no retry
                    raise
                continue
            self.port = port
            return self
        raise AssertionError("unreachable")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is a crash: no shutdown checkpoint)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", str(START_TIMEOUT_SECONDS))

    def restart(self, mode: str = "fast") -> None:
        """Stop and start on the same port (clients see their connections break)."""
        self.stop(mode)
        self.start()

    # -- databases ---------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        assert self.port, "the server is not started"
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``); returns its URL."""
        import psycopg

        name = name or f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as connection:
            template_clause = f' TEMPLATE "{template}"' if template else ""
            connection.execute(f'CREATE DATABASE "{name}"{template_clause}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_server(folder: Path) -> PostgresServer:
    """A started server in ``folder`` (skips the test without the binaries, unless required)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        message = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("ARCHIVER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{message} and ARCHIVER_REQUIRE_POSTGRES=1")
        pytest.skip(message)
    server = PostgresServer(folder, bin_dir).start()
    atexit.register(server.stop, "immediate")   # also when pytest ends without running finalizers
    return server


_started: list[PostgresServer] = []   # one server per process, whichever module asks first


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """One PostgreSQL server for this pytest process, stopped when the process ends.

    Each test module imports this fixture, which pytest then sees as one fixture per module:
    the server itself is kept here so that they all share it."""
    if not _started:
        _started.append(start_server(tmp_path_factory.mktemp("postgres")))
    server = _started[0]
    if not (server.data / "postmaster.pid").exists():   # a test before stopped it on purpose
        server.start()
    return server


@pytest.fixture
def fleet_database(postgres):
    """A fresh database for one test: its URL (postgresql://archiver@127.0.0.1:PORT/NAME)."""
    url = postgres.create_database()
    yield url
    try:
        postgres.drop_database(url.rsplit("/", 1)[1])
    except Exception:
        pass   # a test that stopped the server leaves its database; the server goes at the end
