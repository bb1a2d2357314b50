"""`archiver demo`: the real connector, importer and writer against a SIMULATED platform.

Nothing here is a shortcut: the simulator's fake platform is served over loopback HTTP, the
connector pages through its API with credentials the fake issued, and downloads the media;
then the simulated "download your data" export (when the platform has one) goes through the
real importer. Which platform: the simulator `archiver demo --platform` names, else the
default one (see archiver.sim.demo_simulator).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from archiver.sim import Simulator

DEMO_ACCOUNT = "demo"


def run_demo(folder: Path, *, posts: int = 24, followers: int = 120, echo: Callable[[str], None] = print,
             simulator: Simulator | None = None) -> int:
    from archiver.archive import Archive
    from archiver.config import AccountConfig, Config
    from archiver.connector import get_connector
    from archiver.secrets import open_secret_store
    from archiver.sim import demo_simulator
    from archiver.sync.jobs import Workspace, run_export, run_import

    simulator = simulator or demo_simulator()
    connector = get_connector(simulator.name)
    echo(f"archiver demo — everything below is SIMULATED data from a fake {connector.title} on 127.0.0.1;")
    echo("no real account is contacted. The archive it writes is a real one you can browse.\n")
    with simulator.start_demo(posts=posts, followers=followers) as world:
        folder = folder.expanduser().resolve()
        archive = Archive(folder).create()
        account = AccountConfig(name=DEMO_ACCOUNT, platform=simulator.name, base_url=world.base_url,
                                options=dict(world.settings))
        _write_demo_config(folder, simulator.name, world)
        # Simulated credentials live in memory only: nothing to keep, nothing to leak.
        secrets = open_secret_store("memory")
        world.store_credentials(secrets, DEMO_ACCOUNT)
        ws = Workspace(archive, Config(path=None, accounts=[account]), secrets)

        export_path = world.export_file(folder)
        steps = 2 if export_path else 1
        echo(f"1/{steps}  exporting @{world.username} through the (simulated) API …")
        results = [run_export(ws, account, full=True, progress=lambda line: None)]
        echo(f"     {results[-1]['status']}: " + _counts(results[-1]["counts"]))

        if export_path:
            echo(f"2/2  importing the (simulated) 'Download your data' export {export_path.name} …")
            results.append(run_import(ws, export_path, account_name=DEMO_ACCOUNT, progress=lambda line: None))
            echo(f"     {results[-1]['status']}: " + _counts(results[-1]["counts"]))

        db = archive.db

        def one(sql: str):
            return db.execute(sql).fetchone()[0]

        echo("\nThe archive now holds:")
        echo(f"  posts:          {one('SELECT count(*) FROM posts')}")
        echo(f"  media files:    {one('SELECT count(*) FROM media')} in {archive.media_root}")
        echo(f"  count samples:  {one('SELECT count(*) FROM post_metrics')}")
        open_follows = "SELECT count(*) FROM follows WHERE kind='{}' AND ended_at IS NULL"
        echo(f"  followers:      {one(open_follows.format('followers'))}")
        echo(f"  following:      {one(open_follows.format('following'))}")
        echo(f"  own comments:   {one('SELECT count(*) FROM comments')}")
        command = _command_name()
        echo(f"\nBrowse it:   {command} serve --archive {folder}")
        echo(f"Its status:  {command} status --archive {folder}")
        failed = [r for r in results if r["status"] not in ("ok", "skipped")]
        return 1 if failed else 0


def _command_name() -> str:
    """How the user can call archiver again: plain `archiver` when it is on PATH (the
    same one), else the path it was started by (e.g. `.venv/bin/archiver` after `make demo`)."""
    import os
    import shutil
    import sys

    started = sys.argv[0] if sys.argv and sys.argv[0].endswith("archiver") else None
    on_path = shutil.which("archiver")
    if started is None or (on_path and os.path.realpath(on_path) == os.path.realpath(started)):
        return "archiver"
    relative = os.path.relpath(started)
    return started if relative.startswith("..") else relative


def _write_demo_config(folder: Path, platform: str, world) -> None:
    import json

    path = folder / "config.toml"
    if path.exists():
        return
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in world.settings.items())  # JSON strings are TOML's
    path.write_text(
        "# Written by `archiver demo`. The account below is SIMULATED: to export it again, start\n"
        f"# `archiver simulate {platform} --port 8765` and run `archiver auth {platform} --archive .` first.\n"
        + (f"# {world.auth_hint}\n" if world.auth_hint else "") + "\n"
        + "[secrets]\nbackend = \"keyring\"\n\n"
        f"[accounts.{DEMO_ACCOUNT}]\nplatform = \"{platform}\"\nbase_url = \"http://127.0.0.1:8765\"\n{extra}",
        encoding="utf-8",
    )


def _counts(counts: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()) if v) or "nothing new"

