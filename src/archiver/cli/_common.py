"""What every command of the command line shares: the --archive/--config options, opening
the workspace, the guard that turns a user's mistake into one clear line, logging, and the
progress display. Imported by each command module; imports none of them.

Heavy modules (httpx, sqlite-utils, rich) are imported inside the functions, so
`archiver --help` stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import sys
from pathlib import Path

import click

from archiver.inert import echo, terminal_text

EXIT_FAILED = 1
EXIT_INTERRUPTED = 3
EXIT_BUSY = 75   # EX_TEMPFAIL: another run holds the account; try again later


def archive_dir(archive: str | None) -> Path:
    """The archive folder: --archive, else $ARCHIVER_HOME, else the user data folder."""
    from archiver.config import resolve_archive_dir

    return resolve_archive_dir(archive)


def common_options(func):
    """--archive DIR and --config FILE on every command."""

    @click.option("--archive", "archive", metavar="DIR", envvar="ARCHIVER_HOME",
                  help="Archive folder (archive.db + media/). Default: $ARCHIVER_HOME, else the user data folder.")
    @click.option("--config", "config_path", metavar="FILE", type=click.Path(dir_okay=False),
                  help="Config file. Default: config.toml in the archive folder.")
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def platform_name(ctx, param, value: str | None) -> str | None:
    """A click callback: a platform named by one of its aliases ("twitter") becomes its name."""
    if not value:
        return value
    from archiver.connector import canonical_platform

    return canonical_platform(value)


def setup_logging(verbose: bool = False) -> None:
    """Log lines on stderr, with secrets scrubbed out of them."""
    from archiver.net.client import install_log_scrubbing

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger("archiver")
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    install_log_scrubbing(root)


def fail(message: str, code: int = EXIT_FAILED):
    """Print one error line (secrets scrubbed out) and exit with `code`."""
    from archiver.net.client import scrubber

    echo(f"error: {scrubber.text(message)}", err=True)
    sys.exit(code)


@functools.lru_cache(maxsize=None)
def _known_errors() -> tuple:
    from archiver.config import ConfigError
    from archiver.connector import UnknownPlatform
    from archiver.net.oauth import OAuthError
    from archiver.secrets import SecretStoreError
    from archiver.sync.imports import ExportFileError
    from archiver.sync.locks import LockBusy

    return (ConfigError, UnknownPlatform, ExportFileError, SecretStoreError, OAuthError, LockBusy)


def guard(func):
    """Turn the errors a user can fix into one clear line instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except _known_errors() as error:
            from archiver.sync.locks import LockBusy

            fail(str(error), EXIT_BUSY if isinstance(error, LockBusy) else EXIT_FAILED)

    return wrapper


def open_workspace(archive, config_path, *, require_config=False, secrets=None):
    """The archive, config and secret store a command works on (--archive / --config)."""
    from archiver.sync.jobs import Workspace

    folder = archive_dir(archive)
    ws = Workspace.open(folder, Path(config_path) if config_path else None,
                        require_config=require_config, secrets=secrets)
    if not archive and not os.environ.get("ARCHIVER_HOME") and ws.config.archive_path:
        ws = dataclasses.replace(ws, archive=type(ws.archive)(ws.config.archive_path))
    return ws


def open_existing_workspace(archive, config_path):
    """`open_workspace` for the commands that only look at an archive: it must exist."""
    ws = open_workspace(archive, config_path)
    if not ws.archive.exists:
        fail(f"no archive at {ws.archive.folder}: run `archiver init` or `archiver demo` first")
    return ws


@contextlib.contextmanager
def progress(label: str, console=None):
    """On a terminal: a live line with a bar that moves with every page (exports and
    imports), and a bar with bytes for each long download. Otherwise (journald, CI, pipes):
    plain log lines, and no per-file noise."""
    if console is None and sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True)
    if console is not None and console.is_terminal:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        # No rich markup in what a page line holds: "[link=…]" in a name stays text.
        columns = (SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
                   TextColumn("{task.fields[size]}", markup=False))
        with Progress(*columns, console=console, transient=True) as bars:
            yield TerminalProgress(bars, label)
    else:
        log = logging.getLogger("archiver.progress")
        yield lambda line: log.info("%s: %s", label, line)


class TerminalProgress:
    """What the runner reports, drawn with rich: ``progress(line)`` after each page,
    ``progress.bytes(name, done, total)`` while a file downloads."""

    LONG = 256 * 1024   # smaller files come and go too fast for a bar to help

    def __init__(self, bars, label: str) -> None:
        self._bars = bars
        self._label = label
        self._line = bars.add_task(f"{label}: starting …", total=None, size="")
        self._file = bars.add_task("", total=None, size="", visible=False)

    def __call__(self, line: str) -> None:
        self._bars.update(self._line, description=terminal_text(f"{self._label}: {line}", one_line=True))

    def bytes(self, name: str, done: int, total: int | None) -> None:
        if total is not None and total < self.LONG:
            return
        size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        finished = total is not None and done >= total
        self._bars.update(self._file, description=terminal_text(f"  {name}", one_line=True), completed=done, total=total,
                          size=size, visible=not finished)
