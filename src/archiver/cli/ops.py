"""Running unattended: `archiver daemon` (and installing it as a service)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from archiver.cli._common import common_options, fail, guard, open_workspace
from archiver.inert import echo


@click.command()
@common_options
@click.option("--install-systemd", is_flag=True,
              help="Write a systemd user unit that runs this daemon, print how to enable it, and exit.")
@click.option("--install-launchd", is_flag=True,
              help="Write a launchd agent (macOS) that runs this daemon, print how to load it, and exit.")
@guard
def daemon(archive, config_path, install_systemd, install_launchd):
    """Keep every configured account archived on its schedule, until stopped.

    Each account runs on its `schedule` (cron; default nightly between 02:00 and 05:00),
    runs missed while the daemon was down are caught up at start, the [inbox] folder is
    watched. One daemon per archive. SIGTERM/SIGINT stop it cleanly (a running account
    resumes next time), SIGHUP reloads the config. Logs go to stdout and to a rotating
    daemon.log in the archive folder.
    """
    ws = open_workspace(archive, config_path)
    if install_systemd or install_launchd:
        try:
            from archiver.ops import service
        except ImportError:
            fail("installing a service is not available in this version of archiver")
        if install_systemd:
            service.install_systemd(ws, echo)
        if install_launchd:
            service.install_launchd(ws, echo)
        return
    from archiver.ops.daemon import DaemonAlreadyRunning, run_daemon

    try:
        sys.exit(run_daemon(ws, config_path=Path(config_path) if config_path else None))
    except DaemonAlreadyRunning as error:
        fail(str(error))
