"""`archiver demo`: the real connector, importer and writer against a SIMULATED platform.

Nothing here is a shortcut: the simulator's fake platform is served over loopback HTTP, the
connector pages through its API with credentials the fake issued, and downloads the media;
then the simulated "download your data" export (when the platform has one) goes through the
real importer. Which platform: the simulator `archiver demo --platform` names, else the
default one (see archiver.sim.demo_simulator); `--platform all` runs every installed
simulator that has a demo into ONE archive, one account each (named after its platform),
so everything that reads several platforms at once can be tried on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from archiver.sim import Simulator

DEMO_ACCOUNT = "demo"
# Where the config the demo writes expects `archiver simulate` to serve each platform again
# (the first account; with several, each next one a port further).
SIMULATE_PORT = 8765
# With several platforms, their simulated export files go here, not beside archive.sqlite.
EXPORTS_FOLDER = "simulated-exports"


@dataclass
class _Configured:
    """What the demo's config.toml says about one account (the fake it ran against is gone)."""

    platform: str
    account: str
    port: int | None          # None: a provider without an API (nothing to simulate)
    settings: dict = field(default_factory=dict)
    auth_hint: str = ""
    simulate_options: list[str] = field(default_factory=list)


def run_demo(folder: Path, *, posts: int = 24, followers: int = 120, echo: Callable[[str], None] = print,
             simulator: Simulator | None = None) -> int:
    """One simulated account (``simulator``'s, else the default one's) archived into ``folder``."""
    from archiver.connector import get_connector
    from archiver.sim import demo_simulator

    simulator = simulator or demo_simulator()
    title = get_connector(simulator.name).title
    echo(f"archiver demo — everything below is SIMULATED data from a fake {title} on 127.0.0.1;")
    echo("no real account is contacted. The archive it writes is a real one you can browse.\n")
    return _run(folder, [(simulator, DEMO_ACCOUNT)], posts=posts, followers=followers, echo=echo, several=False)


def run_all_demos(folder: Path, *, posts: int = 24, followers: int = 120, echo: Callable[[str], None] = print,
                  simulators: list[Simulator] | None = None) -> int:
    """Every installed simulator with a demo (or ``simulators``) into ONE archive in ``folder``:
    one account per platform, named after it; its API run, then its export file if it has one.
    A platform that fails is reported and the others still run (exit status 1)."""
    from archiver.connector import get_connector
    from archiver.sim import demo_simulators

    simulators = demo_simulators() if simulators is None else simulators
    if not simulators:
        raise LookupError("no installed simulator offers a demo")
    titles = ", ".join(get_connector(simulator.name).title for simulator in simulators)
    echo(f"archiver demo — everything below is SIMULATED data from fakes of {titles}, all on 127.0.0.1;")
    echo("no real account is contacted. The archive it writes is a real one you can browse: one account\n"
         "per platform, each named after its platform.")
    return _run(folder, [(simulator, simulator.name) for simulator in simulators],
                posts=posts, followers=followers, echo=echo, several=True)


def _run(folder: Path, demos: list[tuple[Simulator, str]], *, posts: int, followers: int,
         echo: Callable[[str], None], several: bool) -> int:
    from archiver.archive import Archive
    from archiver.connector import get_connector
    from archiver.secrets import open_secret_store

    folder = folder.expanduser().resolve()
    archive = Archive(folder).create()
    exports = folder / EXPORTS_FOLDER if several else folder
    # Simulated credentials live in memory only: nothing to keep, nothing to leak.
    secrets = open_secret_store("memory")
    configured: list[_Configured] = []
    failed: list[str] = []
    for number, (simulator, account_name) in enumerate(demos):
        if several:
            echo(f"\n{get_connector(simulator.name).title} (account {account_name!r}):")
        try:
            ok, done = _demo_one(simulator, account_name, archive, secrets, exports, posts=posts,
                                 followers=followers, port=SIMULATE_PORT + number,
                                 echo=(lambda line: echo("  " + line)) if several else echo)
        except Exception as error:   # noqa: BLE001 — one platform's failure must not stop the others
            if not several:
                raise
            echo(f"  FAILED: {type(error).__name__}: {error}")
            failed.append(simulator.name)
            continue
        configured.append(done)
        if not ok:
            failed.append(simulator.name)
    _write_demo_config(folder, configured)
    _summary(archive, [(c.platform, c.account) for c in configured] if several else None, echo)
    command = _command_name()
    echo(f"\nBrowse it:   {command} serve --archive {folder}")
    echo(f"Its status:  {command} status --archive {folder}")
    if several and failed:
        echo(f"\nFAILED: {', '.join(failed)} (see above); the other platforms' accounts are archived.")
    return 1 if failed else 0


def _demo_one(simulator: Simulator, account_name: str, archive, secrets, exports: Path, *, posts: int,
              followers: int, port: int, echo: Callable[[str], None]) -> tuple[bool, _Configured]:
    """One platform's demo: its fake served, the API run, its export file imported.
    Returns (every run ok, what the config is to say about the account)."""
    from archiver.config import AccountConfig, Config
    from archiver.sync.jobs import Workspace, run_export, run_import

    with simulator.start_demo(posts=posts, followers=followers) as world:
        account = AccountConfig(name=account_name, platform=simulator.name, base_url=world.base_url or None,
                                options=dict(world.settings))
        world.store_credentials(secrets, account_name)
        ws = Workspace(archive, Config(path=None, accounts=[account]), secrets)

        exports.mkdir(parents=True, exist_ok=True)
        export_path = world.export_file(exports)
        steps = [step for step, wanted in (("api", bool(world.base_url)), ("import", export_path)) if wanted]
        results = []
        if "api" in steps:
            who = world.username if " " in world.username else "@" + world.username   # a name, or a handle
            echo(f"1/{len(steps)}  exporting {who} through the (simulated) API …")
            results.append(run_export(ws, account, full=True, progress=lambda line: None))
            echo(f"     {results[-1]['status']}: " + _counts(results[-1]["counts"]))
        if export_path:
            echo(f"{len(steps)}/{len(steps)}  importing the (simulated) 'Download your data' export "
                 f"{export_path.name} …")
            results.append(run_import(ws, export_path, account_name=account_name, progress=lambda line: None))
            echo(f"     {results[-1]['status']}: " + _counts(results[-1]["counts"]))

        # The settings that name the fake's own address (Bluesky's PLC directory and AppView)
        # follow base_url to where `archiver simulate` will serve it.
        live, simulated = world.base_url, f"http://127.0.0.1:{port}"
        settings = {key: value.replace(live, simulated) if live and isinstance(value, str) else value
                    for key, value in world.settings.items()}
        ok = bool(results) and all(result["status"] in ("ok", "skipped") for result in results)
        return ok, _Configured(simulator.name, account_name, port if live else None, settings, world.auth_hint,
                               list(world.simulate_options))


def _summary(archive, accounts: list[tuple[str, str]] | None, echo: Callable[[str], None]) -> None:
    """What the archive holds now, and with several accounts a line per account."""
    db = archive.db

    def one(sql: str, *params) -> int:
        return db.execute(sql, params).fetchone()[0]

    open_follows = "SELECT count(*) FROM follows WHERE kind=? AND ended_at IS NULL"
    echo("\nThe archive now holds:")
    echo(f"  posts:          {one('SELECT count(*) FROM posts')}")
    echo(f"  media files:    {one('SELECT count(*) FROM media')} in {archive.media_root}")
    echo(f"  count samples:  {one('SELECT count(*) FROM post_metrics')}")
    echo(f"  followers:      {one(open_follows, 'followers')}")
    echo(f"  following:      {one(open_follows, 'following')}")
    echo(f"  comments:       {one('SELECT count(*) FROM comments')}")
    contacts = "SELECT count(*) FROM owned_contacts"   # a newsletter's or shop's list (providers without an API)
    if one(contacts):
        echo(f"  contacts:       {one(contacts)} (newsletter and shop lists)")
    if not accounts:
        return
    echo("\n  account          posts  followers  following  comments  contacts")
    for platform, name in accounts:
        account_id = f"{platform}:{name}"
        counts = (one("SELECT count(*) FROM posts WHERE account_id=?", account_id),
                  one(open_follows + " AND account_id=?", "followers", account_id),
                  one(open_follows + " AND account_id=?", "following", account_id),
                  one("SELECT count(*) FROM comments WHERE account_id=?", account_id),
                  one(contacts + " WHERE account_id=?", account_id))
        echo(f"  {name:<15} {counts[0]:>6} {counts[1]:>10} {counts[2]:>10} {counts[3]:>9} {counts[4]:>9}")


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


def _write_demo_config(folder: Path, accounts: list[_Configured]) -> None:
    """config.toml for the archive (unless one is there): each account pointed at where
    `archiver simulate` serves its platform, to export it again after `archiver auth`."""
    path = folder / "config.toml"
    if path.exists() or not accounts:
        return
    text = ("# Written by `archiver demo`. The accounts below are SIMULATED: to export one again, start its\n"
            "# simulator (the command above it: the same world again), run `archiver auth PLATFORM --account NAME\n"
            "# --archive .`, then `archiver export --platform PLATFORM --account NAME --archive .`.\n\n"
            "[secrets]\nbackend = \"keyring\"\n")
    for account in accounts:
        extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in account.settings.items())  # JSON is TOML
        options = "".join(" " + option for option in account.simulate_options)
        if account.port is None:
            text += (f"\n# No API: archived from its export file (`archiver import FILE --account {account.account}`);\n"
                     f"# `archiver simulate {account.platform} --out FILE{options}` writes the same one again.\n"
                     f"[accounts.{account.account}]\nplatform = \"{account.platform}\"\n{extra}")
            continue
        text += (f"\n# `archiver simulate {account.platform} --port {account.port}{options}`"
                 + (f"\n# {account.auth_hint}" if account.auth_hint else "") + "\n"
                 f"[accounts.{account.account}]\nplatform = \"{account.platform}\"\n"
                 f"base_url = \"http://127.0.0.1:{account.port}\"\n{extra}")
    path.write_text(text, encoding="utf-8")


def _counts(counts: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()) if v) or "nothing new"
