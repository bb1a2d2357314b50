"""Looking at the archive: `archiver serve`, `status`, `verify`, `report`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from archiver.cli._common import EXIT_FAILED, common_options, fail, guard, open_existing_workspace, open_workspace
from archiver.cli.fleet import _url as fleet_database_url
from archiver.cli.fleet import database_option, fleet_guard
from archiver.inert import echo


@click.command()
@common_options
@click.option("--port", type=int, default=8001, show_default=True, help="Port on 127.0.0.1.")
@click.option("--open", "open_browser", is_flag=True, help="Open a browser.")
@click.option("--tenant", metavar="T", help="A fleet's tenant: the latest archive of each of its accounts, "
                                             "one database each (docs/fleet.md).")
@database_option
@click.option("--archives", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="With --tenant: the folder of archives as `archiver worker --archives` keeps them, or (with "
                   "object storage) where downloaded generations are cached. Default: <archive folder>/fleet.")
@click.option("--storage", metavar="URL", help="With --tenant: the archives' object storage, s3://bucket/prefix. "
                                               "Default: $ARCHIVER_FLEET_STORAGE; without either, --archives.")
@click.option("--refresh-seconds", type=click.FloatRange(min=0), default=60, show_default=True, metavar="S",
              help="With --tenant: look this often for new generations and new or removed accounts (0: never).")
@fleet_guard
def serve(archive, config_path, port, open_browser, tenant, database, archives, storage, refresh_seconds):
    """Browse and search the archive with Datasette on 127.0.0.1."""
    if tenant is None:
        if database or archives or storage:
            fail("--database, --archives and --storage go with --tenant (a fleet's archives)")
        from archiver.views.serve import serve_archive

        ws = open_existing_workspace(archive, config_path)
        serve_archive(ws.archive, port=port, open_browser=open_browser)
        return
    from archiver.fleet.objects import StorageError
    from archiver.views.serve import serve_archives

    view = tenant_view(archive, config_path, tenant, database, archives, storage)
    try:
        found = view.archives(must_exist=True)
    except StorageError as error:
        fail(str(error))
    for account in found.missing:
        echo(f"{account.label()}: no archive yet (not run, or nothing uploaded): not shown", err=True)
    if not found.found:
        fail(f"tenant {tenant!r}: none of its {len(found.missing)} accounts has an archive yet "
             + (f"in {view.objects.where(view.objects.key(''))}" if view.objects is not None else f"in {view.folder}"))
    serve_archives(served_archives(found), title=f"archiver: {tenant}",
                   description=f"The archives of {tenant}'s accounts", port=port, open_browser=open_browser,
                   refresh=lambda: served_archives(view.archives()), refresh_seconds=refresh_seconds)


def tenant_view(archive, config_path, tenant, database, archives, storage):
    """Where the tenant's archives are read (fleet/browse.py TenantView)."""
    import os

    from archiver.fleet import browse

    url = fleet_database_url(archive, config_path, database)
    folder = archives or open_workspace(archive, config_path).archive.folder / "fleet"
    storage = storage or os.environ.get("ARCHIVER_FLEET_STORAGE")
    objects = None
    if storage:
        from archiver.fleet.objects import StorageError, open_object_store

        try:
            objects = open_object_store(storage)
        except StorageError as error:
            fail(str(error))
    return browse.TenantView(url, tenant, folder, objects)


def served_archives(found):
    """A browse.TenantArchives as views.serve serves it: a database per account, named
    <platform>-<name>; a generation from object storage is immutable."""
    from archiver.views.serve import ServedArchive

    return [ServedArchive(name=f"{a.account.platform}-{a.account.name}",
                          title=a.account.label() + (f" (generation {a.generation})" if a.generation else ""),
                          db_path=a.db_path, media_root=a.media_root, fixed=a.generation is not None,
                          fetch_media=a.fetch_media)
            for a in found.found]


@click.command()
@common_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--errors", "show_errors", is_flag=True,
              help="Every error of the last run and every file still missing, one per line.")
@guard
def status(archive, config_path, as_json, show_errors):
    """Per account: last run and result, next run, what the archive holds, files still
    missing, open alerts, export age."""
    from archiver.ops.status import account_status, media_hole_list, open_folder_warning, render_status

    ws = open_existing_workspace(archive, config_path)
    warning = open_folder_warning(ws.archive.folder)
    if warning:
        echo(warning, err=True)   # on stderr: --json output stays one document
    rows = account_status(ws.archive, ws.config)
    holes = None
    if show_errors:
        with ws.archive.reading() as db:   # status never writes (it must not wait behind a run)
            holes = {row["account"]: media_hole_list(db, row["account"]) for row in rows}
    if as_json:
        if holes is not None:
            for row in rows:
                row["media_hole_list"] = holes[row["account"]]
        echo(json.dumps(rows, indent=2))
    else:
        echo(render_status(rows, errors=holes))


@click.command()
@common_options
@guard
def verify(archive, config_path):
    """Re-hash every media file and run SQLite's integrity check."""
    from archiver.ops.status import verify_archive

    ws = open_workspace(archive, config_path)
    problems = verify_archive(ws.archive, echo=echo)
    sys.exit(EXIT_FAILED if problems else 0)


@click.command()
@common_options
@click.option("--out", "out", metavar="FILE", type=click.Path(dir_okay=False),
              help="Where to write the HTML file. Default: report.html in the archive folder.")
@guard
def report(archive, config_path, out):
    """Write one self-contained HTML file with charts: followers over time, new and
    lost followers per week, posts per month, the most engaged posts and people."""
    from archiver.views.report import write_report

    ws = open_existing_workspace(archive, config_path)
    target = Path(out) if out else ws.archive.folder / "report.html"
    click.echo(str(write_report(ws.archive, target)))
