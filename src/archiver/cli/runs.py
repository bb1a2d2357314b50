"""Archiving: `archiver export` (through the API), `import` (an official export file),
`inbox` (the files waiting in the inbox folder, once)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from archiver.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    common_options,
    guard,
    open_workspace,
    platform_name,
    progress,
    setup_logging,
)
from archiver.inert import echo


@click.command()
@common_options
@click.option("--platform", required=True, callback=platform_name, help="Platform to export (e.g. tiktok).")
@click.option("--account", "account_name", metavar="NAME", help="Only this account (default: every one of the platform).")
@click.option("--full", is_flag=True, help="Re-list everything; the only run that marks vanished posts as deleted.")
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=0, metavar="SECONDS",
              help="When another run (the daemon, the inbox, another command) is archiving the account, "
                   "wait up to SECONDS for it to finish instead of stopping at once.")
@guard
def export(archive, config_path, platform, account_name, full, wait):
    """Archive accounts through the platform's official API."""
    setup_logging()
    from archiver.connector import get_connector
    from archiver.sync.jobs import run_export
    from archiver.sync.runner import CancelFlag

    get_connector(platform)  # a mistyped platform is named (with the installed ones) before any config problem
    ws = open_workspace(archive, config_path, require_config=True)
    accounts = ws.accounts(platform, account_name)
    worst = 0
    cancel = CancelFlag()
    with cancel.on_signals():
        for account in accounts:
            with progress(account.account_id) as shown:
                result = run_export(ws, account, full=full, cancel=cancel, progress=shown, wait=wait)
            worst = max(worst, print_result(account.account_id, result))
            if cancel():
                break
    sys.exit(worst)


def print_result(label: str, result: dict) -> int:
    """One line for a run (its status and counts), its failed files by cause; the exit code."""
    counts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(result["counts"].items()) if v) or "nothing new"
    echo(f"{label}: {result['status']} — {'API off' if result.get('api_off') else counts}")
    # Files that failed: one line per cause (the list: `archiver status --errors`).
    for line in result.get("summary") or []:
        echo(f"  {line}")
    others = [e for e in result["errors"] if not e.get("cause")]
    for error in others[:10]:
        echo(f"  skipped {error['item']}: {error['error']}")
    if len(others) > 10:
        echo(f"  … and {len(others) - 10} more (see `archiver status --errors`)")
    if result.get("message"):
        echo(f"  {result['message']}")
    return {"ok": 0, "skipped": 0, "interrupted": EXIT_INTERRUPTED}.get(result["status"], EXIT_FAILED)


@click.command(name="import")
@common_options
@click.argument("args", nargs=-1, metavar="[PLATFORM] PATH")
@click.option("--account", "account_name", metavar="NAME", help="Account the export belongs to.")
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=0, metavar="SECONDS",
              help="When another run is archiving the account, wait up to SECONDS for it to finish.")
@click.option("--retry-failed", is_flag=True,
              help="Without PATH: try again the files earlier imports could not store, from the export "
                   "files where they were imported from.")
@guard
def import_(archive, config_path, args, account_name, wait, retry_failed):
    """Import an official "download your data" export (zip, tar.gz, json or folder).

    A download split in several zips is imported from the folder holding them all (and
    nothing else): its parts are read as one export.
    The platform is detected from the file's content; `archiver import tiktok PATH` forces it.
    An export carrying another platform's inside (e.g. Threads' in an Instagram download)
    fills both accounts, each reported on its own; naming a platform imports only its part.
    Importing a file again does nothing, unless some of its files could not be stored the
    first time: then only those are tried again (`--retry-failed` does it for every such import).
    """
    setup_logging()
    from archiver.sync.jobs import run_import
    from archiver.sync.runner import CancelFlag

    if retry_failed:
        if args:
            raise click.UsageError("--retry-failed takes no PATH (importing a PATH again already retries its "
                                   "missing files)")
        sys.exit(retry_failed_imports(archive, config_path, wait))
    if len(args) == 1:
        platform, path = None, args[0]
    elif len(args) == 2:
        platform, path = args
    else:
        raise click.UsageError("give PATH, or PLATFORM PATH")
    ws = open_workspace(archive, config_path)
    cancel = CancelFlag()
    with cancel.on_signals():
        with progress(Path(path).name) as shown:
            result = run_import(ws, Path(path).expanduser(), platform=platform, account_name=account_name,
                                cancel=cancel, progress=shown, wait=wait)
    # An export carrying another platform's (Threads' in an Instagram download) filled
    # several accounts: one report each.
    parts = result.get("parts") or [result]
    sys.exit(max(print_result(f"{part['account']} ← {Path(path).name}", part) for part in parts))


def retry_failed_imports(archive, config_path, wait: float) -> int:
    """`archiver import --retry-failed`: each earlier import with files missing, again from
    its export file where that is still at hand."""
    from archiver.config import AccountConfig
    from archiver.sync.imports import ExportFileError
    from archiver.sync.jobs import imports_with_holes, run_import
    from archiver.sync.runner import CancelFlag

    ws = open_workspace(archive, config_path)
    pending = imports_with_holes(ws)
    if not pending:
        echo("no import has files missing; nothing to retry")
        return 0
    worst = 0
    cancel = CancelFlag()
    with cancel.on_signals():
        for entry in pending:
            platform, _, name = entry["account_id"].partition(":")
            path = Path(entry["path"]) if entry["path"] else None
            label = f"{entry['account_id']} ← {entry['file_name']}"
            if path is None or not path.exists():
                echo(f"{label}: {entry['holes']} file(s) still missing, but the export file is no longer at "
                     f"{path or 'a known place'}; import it again from where it is now "
                     f"(`archiver import PATH`)")
                worst = max(worst, EXIT_FAILED)
                continue
            account = next((a for a in ws.config.accounts if a.account_id == entry["account_id"]), None)
            try:
                with progress(entry["file_name"]) as shown:
                    result = run_import(ws, path, platform=platform, cancel=cancel, progress=shown, wait=wait,
                                        account=account or AccountConfig(name=name, platform=platform),
                                        expect_sha256=entry["sha256"])
            except ExportFileError as error:   # one file that cannot be retried; the others still are
                echo(f"{label}: {error}")
                worst = max(worst, EXIT_FAILED)
                continue
            worst = max(worst, print_result(label, result))
            if cancel():
                break
    return worst


@click.command()
@common_options
@guard
def inbox(archive, config_path):
    """Import the export files waiting in the config's [inbox] folder, once.

    What the daemon does every [inbox] interval, for use without the daemon: a file is
    imported once it has stopped changing for [inbox] settle seconds (this command waits
    for that), then moved to done/; a file that cannot be imported goes to failed/ with
    a .error.txt beside it saying why.
    """
    setup_logging()
    from archiver.ops.inbox import inbox_folder, scan_until_settled
    from archiver.sync.runner import CancelFlag

    ws = open_workspace(archive, config_path)
    folder = inbox_folder(ws)
    cancel = CancelFlag()
    with cancel.on_signals():
        outcomes = scan_until_settled(ws, cancel=cancel)
    if not outcomes:
        echo(f"{folder}: nothing to import")
    for outcome in outcomes:
        where = f" → {outcome['moved_to']}" if outcome["moved_to"] else ""
        echo(f"{outcome['file']}: {outcome['status']}{where}")
        echo(f"  {outcome['message']}")
    sys.exit(EXIT_FAILED if any(o["status"] == "failed" for o in outcomes) else 0)
