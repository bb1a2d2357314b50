"""`archiver demo`: the real connector, importer and writer against a SIMULATED TikTok.

Nothing here is a shortcut: the fake TikTok is served over loopback HTTP, the connector
authorizes with real tokens from it, pages through its API and downloads the covers;
then a generated "Download your data" zip goes through the real importer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

DEMO_ACCOUNT = "demo"


def run_demo(folder: Path, *, videos: int = 24, followers: int = 120, echo: Callable[[str], None] = print) -> int:
    from archiver.archive import Archive
    from archiver.config import AccountConfig, Config
    from archiver.connector import installed_connectors
    from archiver.sync.jobs import Workspace, run_export, run_import
    from archiver.secrets import open_secret_store
    from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig, serve

    echo("archiver demo — everything below is SIMULATED data from a fake TikTok on 127.0.0.1;")
    echo("no real account is contacted. The archive it writes is a real one you can browse.\n")
    fake = FakeTikTok(FakeTikTokConfig(videos=videos, followers=followers, seed=7))
    server, _thread = serve(fake)
    try:
        folder = folder.expanduser().resolve()
        archive = Archive(folder, connectors=installed_connectors).create()
        account = AccountConfig(name=DEMO_ACCOUNT, platform="tiktok", base_url=fake.base_url)
        _write_demo_config(folder)
        # Simulated credentials live in memory only: nothing to keep, nothing to leak.
        secrets = open_secret_store("memory")
        cfg = fake.config
        secrets.set("tiktok", DEMO_ACCOUNT, "client_key", cfg.client_key)
        secrets.set("tiktok", DEMO_ACCOUNT, "client_secret", cfg.client_secret)
        tokens = fake.issue_tokens()
        from archiver_connectors.tiktok.api import TikTokTokens

        import httpx

        TikTokTokens(secrets, DEMO_ACCOUNT, f"{fake.base_url}/v2/oauth/token/", httpx.Client()).store(tokens)
        ws = Workspace(archive, Config(path=None, accounts=[account]), secrets)

        echo(f"1/2  exporting @{fake.user.get('username', 'demo')} through the (simulated) Display API …")
        api_result = run_export(ws, account, full=True, progress=lambda line: None)
        echo(f"     {api_result['status']}: " + _counts(api_result["counts"]))

        export_path = folder / "TikTok_Data_simulated.zip"
        export_path.write_bytes(fake.export_zip(layout="new"))
        echo(f"2/2  importing the (simulated) 'Download your data' export {export_path.name} …")
        import_result = run_import(ws, export_path, account_name=DEMO_ACCOUNT, progress=lambda line: None)
        echo(f"     {import_result['status']}: " + _counts(import_result["counts"]))

        db = archive.db
        one = lambda sql: db.execute(sql).fetchone()[0]
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
        failed = [r for r in (api_result, import_result) if r["status"] not in ("ok", "skipped")]
        return 1 if failed else 0
    finally:
        server.shutdown()
        server.server_close()


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


def _write_demo_config(folder: Path) -> None:
    path = folder / "config.toml"
    if path.exists():
        return
    path.write_text(
        "# Written by `archiver demo`. The account below is SIMULATED: to export it again, start\n"
        "# `archiver simulate tiktok --port 8765` and run `archiver auth tiktok --archive .` first\n"
        "# (client key fake-client-key, secret fake-client-secret).\n\n"
        "[secrets]\nbackend = \"keyring\"\n\n"
        f"[accounts.{DEMO_ACCOUNT}]\nplatform = \"tiktok\"\nbase_url = \"http://127.0.0.1:8765\"\n",
        encoding="utf-8",
    )


def _counts(counts: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()) if v) or "nothing new"

