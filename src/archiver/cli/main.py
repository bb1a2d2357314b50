"""The command line: a thin click layer over the library.

Heavy modules (httpx, sqlite-utils, datasette, rich) are imported inside the commands
that need them, so `archiver --help` stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
from pathlib import Path

import click

from archiver.inert import echo, terminal_text

EXIT_FAILED = 1
EXIT_INTERRUPTED = 3
EXIT_BUSY = 75   # EX_TEMPFAIL: another run holds the account; try again later


def _archive_dir(archive: str | None) -> Path:
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


def _setup_logging(verbose: bool = False) -> None:
    from archiver.net.client import install_log_scrubbing

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger("archiver")
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    install_log_scrubbing(root)


def _fail(message: str, code: int = EXIT_FAILED):
    from archiver.net.client import scrubber

    echo(f"error: {scrubber.text(message)}", err=True)
    sys.exit(code)


@functools.lru_cache(maxsize=None)
def _known_errors() -> tuple:
    from archiver.config import ConfigError
    from archiver.connector import UnknownPlatform
    from archiver.sync.imports import ExportFileError
    from archiver.sync.locks import LockBusy
    from archiver.net.oauth import OAuthError
    from archiver.secrets import SecretStoreError

    return (ConfigError, UnknownPlatform, ExportFileError, SecretStoreError, OAuthError, LockBusy)


def _workspace(archive, config_path, *, require_config=False, secrets=None):
    from archiver.sync.jobs import Workspace

    folder = _archive_dir(archive)
    ws = Workspace.open(folder, Path(config_path) if config_path else None,
                        require_config=require_config, secrets=secrets)
    if not archive and not os.environ.get("ARCHIVER_HOME") and ws.config.archive_path:
        ws = Workspace(type(ws.archive)(ws.config.archive_path), ws.config, ws._secrets)
    return ws


def _guard(func):
    """Turn the errors a user can fix into one clear line instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except _known_errors() as error:
            from archiver.sync.locks import LockBusy

            _fail(str(error), EXIT_BUSY if isinstance(error, LockBusy) else EXIT_FAILED)

    return wrapper


@contextlib.contextmanager
def _progress(label: str, console=None):
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
            yield _TerminalProgress(bars, label)
    else:
        log = logging.getLogger("archiver.progress")
        yield lambda line: log.info("%s: %s", label, line)


class _TerminalProgress:
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
        self._bars.update(self._file, description=terminal_text(f"  {name}", one_line=True), completed=done, total=total, size=size,
                          visible=not finished)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archiver")
def main():
    """Keep a complete copy of your own social-media accounts on your own disk."""


# -- set-up -------------------------------------------------------------------------------


@main.command()
@common_options
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@_guard
def init(archive, config_path, force):
    """Write a commented config and create the archive folder."""
    from archiver.archive import Archive
    from archiver.config import CONFIG_NAME, example_config_text

    folder = _archive_dir(archive)
    store = Archive(folder).create()
    store.db  # creates archive.db with its schema
    target = Path(config_path) if config_path else folder / CONFIG_NAME
    if target.exists() and not force:
        echo(f"{target} exists already; left as it is (use --force to overwrite).")
    else:
        from archiver.private_files import open_private

        with open_private(target, "w", encoding="utf-8") as config_file:   # 0600 from its creation
            config_file.write(example_config_text())
        echo(f"wrote {target}")
    echo(f"archive folder: {folder} (archive.db, media/)")
    echo("next: edit the config, then `archiver auth tiktok` and `archiver export --platform tiktok`.")


@main.command()
def connectors():
    """List the installed connectors."""
    from archiver.connector import installed_connectors

    for name, cls in sorted(installed_connectors().items()):
        echo(f"{name}\t{cls.title}\t{cls.__module__}")


@main.command()
@common_options
@click.argument("platform")
@click.option("--account", "account_name", metavar="NAME", help="Account from the config (default: the only one).")
@click.option("--client-key", "--client-id", "client_key",
              help="Your app's client key / client id (asked for when missing).")
@click.option("--client-secret", help="Your app's client secret (asked for when missing; prefer the prompt).")
@click.option("--no-browser", is_flag=True, help="Print the authorization URL instead of opening a browser.")
@click.option("--port", type=int, default=0, help="Loopback port for the redirect (0 = any free port).")
@click.option("--instance", metavar="URL", help="Mastodon: your instance, e.g. https://mastodon.social.")
@click.option("--handle", metavar="HANDLE", help="Bluesky: your handle, e.g. alice.bsky.social.")
@click.option("--token-stdin", is_flag=True,
              help="Read the token (Mastodon access token, Bluesky app password) from standard input.")
@_guard
def auth(archive, config_path, platform, account_name, client_key, client_secret, no_browser, port,
         instance, handle, token_stdin):
    """Authorize archiver to read an account (OAuth through a loopback redirect).

    Mastodon and Bluesky accounts need no config entry first: `archiver auth mastodon
    --instance https://mastodon.social` or `archiver auth bluesky --handle alice.bsky.social`
    adds [accounts.<--account, default "main">] to the config.
    """
    _setup_logging()
    from archiver.connector import get_connector

    # Read first: a failed command must not have changed the config.
    token = None
    if token_stdin:
        token = sys.stdin.read().strip()
        if not token:
            _fail("--token-stdin: standard input was empty; pipe the token in, e.g. "
                  "`printf %s \"$TOKEN\" | archiver auth ... --token-stdin`")
    ws = _workspace(archive, config_path)
    cls = get_connector(platform)
    settings = cls.account_settings_from_auth(instance=instance, handle=handle)
    if settings and not [a for a in ws.config.accounts if a.platform == platform
                         and (account_name is None or a.name == account_name)]:
        name = account_name or ("main" if "main" not in {a.name for a in ws.config.accounts} else platform)
        target = _add_account_to_config(ws, name, platform, settings, config_path)
        echo(f"added [accounts.{name}] ({platform}) to {target}")
        ws = _workspace(archive, config_path)
        account_name = name
    accounts = ws.config.find_accounts(platform, account_name)
    if len(accounts) > 1:
        _fail(f"several {platform} accounts are configured; pick one with --account "
              f"({', '.join(a.name for a in accounts)})")
    if not accounts:
        _fail(f"no {platform} account in {ws.config.path or 'the config'}: add [accounts.main] with "
              f"platform = \"{platform}\" (`archiver init` writes an example)")
    account = accounts[0]
    prompt = None
    if sys.stdin.isatty():
        prompt = lambda key: click.prompt(f"{cls.title} {key.replace('_', ' ')}", hide_input=key.endswith(("secret", "password")))
    connector = cls(account, ws.secrets)
    # Platforms name the app's id differently (TikTok: client key; Google, Meta: client id).
    message = connector.authorize(echo=echo, open_browser=False if no_browser else None,
                                  client_key=client_key, client_id=client_key, client_secret=client_secret,
                                  prompt=prompt, port=port, instance=instance, handle=handle, token=token)
    echo(message)


def _add_account_to_config(ws, name: str, platform: str, settings: dict, config_path) -> Path:
    """Append an [accounts.NAME] table to the config file (a new one if missing).
    Appending keeps the user's comments and layout untouched."""
    import json

    from archiver.config import CONFIG_NAME

    target = Path(config_path) if config_path else (ws.config.path or ws.archive.folder / CONFIG_NAME)
    if not target.exists():
        from archiver.private_files import open_private

        target.parent.mkdir(parents=True, exist_ok=True)
        with open_private(target, "w", encoding="utf-8") as config_file:   # 0600 from its creation
            config_file.write("# archiver configuration: every option is explained in config.example.toml "
                              "(README).\n")
    lines = [f"\n[accounts.{name}]", f"platform = {json.dumps(platform)}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]  # JSON strings are TOML strings
    with open(target, "a", encoding="utf-8") as config_file:
        config_file.write("\n".join(lines) + "\n")
    return target


@main.group()
def secret():
    """Store a secret archiver needs (e.g. the e-mail password for alerts)."""


@secret.command(name="set")
@common_options
@click.argument("platform")
@click.argument("account")
@click.argument("key")
@_guard
def secret_set(archive, config_path, platform, account, key):
    """Store KEY for PLATFORM ACCOUNT in the configured secret store.

    The value is asked for without echo on a terminal, else read from standard input
    (`printf %s "$PASSWORD" | archiver secret set notify email password`). It never
    goes on the command line, where other users could see it in the process list.
    Example: archiver secret set notify email password
    """
    ws = _workspace(archive, config_path)
    if sys.stdin.isatty():
        value = click.prompt(f"{platform} {account} {key}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")  # the newline `echo` adds is not part of it
    if not value:
        _fail(f"no value given for {platform} {account} {key}: nothing stored")
    store = ws.secrets
    store.set(platform, account, key, value)
    echo(f"stored {key} for {platform} {account} ({store.backend_name})")


# -- archiving ------------------------------------------------------------------------------


@main.command()
@common_options
@click.option("--platform", required=True, help="Platform to export (e.g. tiktok).")
@click.option("--account", "account_name", metavar="NAME", help="Only this account (default: every one of the platform).")
@click.option("--full", is_flag=True, help="Re-list everything; the only run that marks vanished posts as deleted.")
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=0, metavar="SECONDS",
              help="When another run (the daemon, the inbox, another command) is archiving the account, "
                   "wait up to SECONDS for it to finish instead of stopping at once.")
@_guard
def export(archive, config_path, platform, account_name, full, wait):
    """Archive accounts through the platform's official API."""
    _setup_logging()
    from archiver.connector import get_connector
    from archiver.sync.jobs import run_export
    from archiver.sync.runner import CancelFlag

    get_connector(platform)  # a mistyped platform is named (with the installed ones) before any config problem
    ws = _workspace(archive, config_path, require_config=True)
    accounts = ws.accounts(platform, account_name)
    worst = 0
    cancel = CancelFlag()
    with cancel.on_signals():
        for account in accounts:
            with _progress(account.account_id) as progress:
                result = run_export(ws, account, full=full, cancel=cancel, progress=progress, wait=wait)
            worst = max(worst, _report(account.account_id, result))
            if cancel():
                break
    sys.exit(worst)


def _report(label: str, result: dict) -> int:
    counts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(result["counts"].items()) if v) or "nothing new"
    echo(f"{label}: {result['status']} — {counts}")
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


@main.command(name="import")
@common_options
@click.argument("args", nargs=-1, metavar="[PLATFORM] PATH")
@click.option("--account", "account_name", metavar="NAME", help="Account the export belongs to.")
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=0, metavar="SECONDS",
              help="When another run is archiving the account, wait up to SECONDS for it to finish.")
@click.option("--retry-failed", is_flag=True,
              help="Without PATH: try again the files earlier imports could not store, from the export "
                   "files where they were imported from.")
@_guard
def import_(archive, config_path, args, account_name, wait, retry_failed):
    """Import an official "download your data" export (zip, tar.gz, json or folder).

    The platform is detected from the file's content; `archiver import tiktok PATH` forces it.
    Importing a file again does nothing, unless some of its files could not be stored the
    first time: then only those are tried again (`--retry-failed` does it for every such import).
    """
    _setup_logging()
    from archiver.sync.jobs import run_import
    from archiver.sync.runner import CancelFlag

    if retry_failed:
        if args:
            raise click.UsageError("--retry-failed takes no PATH (importing a PATH again already retries its "
                                   "missing files)")
        sys.exit(_retry_failed_imports(archive, config_path, wait))
    if len(args) == 1:
        platform, path = None, args[0]
    elif len(args) == 2:
        platform, path = args
    else:
        raise click.UsageError("give PATH, or PLATFORM PATH")
    ws = _workspace(archive, config_path)
    cancel = CancelFlag()
    with cancel.on_signals():
        with _progress(Path(path).name) as progress:
            result = run_import(ws, Path(path).expanduser(), platform=platform, account_name=account_name,
                                cancel=cancel, progress=progress, wait=wait)
    sys.exit(_report(f"{result['account']} ← {Path(path).name}", result))


def _retry_failed_imports(archive, config_path, wait: float) -> int:
    """`archiver import --retry-failed`: each earlier import with files missing, again from
    its export file where that is still at hand."""
    from archiver.config import AccountConfig
    from archiver.sync.imports import ExportFileError
    from archiver.sync.jobs import imports_with_holes, run_import
    from archiver.sync.runner import CancelFlag

    ws = _workspace(archive, config_path)
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
                with _progress(entry["file_name"]) as progress:
                    result = run_import(ws, path, platform=platform, cancel=cancel, progress=progress, wait=wait,
                                        account=account or AccountConfig(name=name, platform=platform),
                                        expect_sha256=entry["sha256"])
            except ExportFileError as error:   # one file that cannot be retried; the others still are
                echo(f"{label}: {error}")
                worst = max(worst, EXIT_FAILED)
                continue
            worst = max(worst, _report(label, result))
            if cancel():
                break
    return worst


@main.command()
@common_options
@_guard
def inbox(archive, config_path):
    """Import the export files waiting in the config's [inbox] folder, once.

    What the daemon does every [inbox] interval, for use without the daemon: a file is
    imported once it has stopped changing for [inbox] settle seconds (this command waits
    for that), then moved to done/; a file that cannot be imported goes to failed/ with
    a .error.txt beside it saying why.
    """
    _setup_logging()
    from archiver.ops.inbox import inbox_folder, scan_until_settled
    from archiver.sync.runner import CancelFlag

    ws = _workspace(archive, config_path)
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


# -- looking at it -------------------------------------------------------------------------


@main.command()
@common_options
@click.option("--port", type=int, default=8001, show_default=True, help="Port on 127.0.0.1.")
@click.option("--open", "open_browser", is_flag=True, help="Open a browser.")
@_guard
def serve(archive, config_path, port, open_browser):
    """Browse and search the archive with Datasette on 127.0.0.1."""
    from archiver.views.serve import serve_archive

    ws = _workspace(archive, config_path)
    if not ws.archive.exists:
        _fail(f"no archive at {ws.archive.folder}: run `archiver init` or `archiver demo` first")
    serve_archive(ws.archive, port=port, open_browser=open_browser)


@main.command()
@common_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--errors", "show_errors", is_flag=True,
              help="Every error of the last run and every file still missing, one per line.")
@_guard
def status(archive, config_path, as_json, show_errors):
    """Per account: last run and result, next run, what the archive holds, files still
    missing, open alerts, export age."""
    from archiver.ops.status import account_status, media_hole_list, open_folder_warning, render_status

    ws = _workspace(archive, config_path)
    if not ws.archive.exists:
        _fail(f"no archive at {ws.archive.folder}: run `archiver init` or `archiver demo` first")
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


@main.command()
@common_options
@_guard
def verify(archive, config_path):
    """Re-hash every media file and run SQLite's integrity check."""
    from archiver.ops.status import verify_archive

    ws = _workspace(archive, config_path)
    problems = verify_archive(ws.archive, echo=echo)
    sys.exit(EXIT_FAILED if problems else 0)


# -- running unattended ---------------------------------------------------------------------------


@main.command()
@common_options
@click.option("--install-systemd", is_flag=True,
              help="Write a systemd user unit that runs this daemon, print how to enable it, and exit.")
@click.option("--install-launchd", is_flag=True,
              help="Write a launchd agent (macOS) that runs this daemon, print how to load it, and exit.")
@_guard
def daemon(archive, config_path, install_systemd, install_launchd):
    """Keep every configured account archived on its schedule, until stopped.

    Each account runs on its `schedule` (cron; default nightly between 02:00 and 05:00),
    runs missed while the daemon was down are caught up at start, the [inbox] folder is
    watched. One daemon per archive. SIGTERM/SIGINT stop it cleanly (a running account
    resumes next time), SIGHUP reloads the config. Logs go to stdout and to a rotating
    daemon.log in the archive folder.
    """
    ws = _workspace(archive, config_path)
    if install_systemd or install_launchd:
        try:
            from archiver.ops import service
        except ImportError:
            _fail("installing a service is not available in this version of archiver")
        if install_systemd:
            service.install_systemd(ws, echo)
        if install_launchd:
            service.install_launchd(ws, echo)
        return
    from archiver.ops.daemon import DaemonAlreadyRunning, run_daemon

    try:
        sys.exit(run_daemon(ws, config_path=Path(config_path) if config_path else None))
    except DaemonAlreadyRunning as error:
        _fail(str(error))


# -- trying it ----------------------------------------------------------------------------------


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("platform")
@click.option("--port", type=int, default=8765, show_default=True, help="Port on 127.0.0.1 (0 = any free port).")
@click.option("--videos", type=int, default=30, show_default=True)
@click.option("--followers", type=int, default=50, show_default=True)
@click.option("--latency-ms", type=int, default=0, show_default=True)
@click.option("--fail-rate", type=float, default=0.0, show_default=True, help="Share of requests answered with a 500.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.pass_context
def simulate(ctx, platform, port, videos, followers, latency_ms, fail_rate, seed):
    """Serve a simulated platform API on 127.0.0.1 (point an account's base_url at it).

    Other options go to the platform's simulator as they are (for TikTok e.g.
    --client-secret, --access-ttl, --rate-limit, --retry-after).
    """
    from archiver.connector import get_connector

    try:
        cls = get_connector(platform)
    except Exception as error:
        _fail(str(error))
    import importlib

    try:
        fake = importlib.import_module(cls.__module__ + ".fake")
    except ImportError:
        _fail(f"the {platform} connector has no simulator")
    fake.main(["--port", str(port), "--videos", str(videos), "--followers", str(followers),
               "--latency-ms", str(latency_ms), "--fail-rate", str(fail_rate), "--seed", str(seed),
               *ctx.args])


@main.command()
@click.option("--dir", "folder", default="demo-archive", show_default=True, type=click.Path(file_okay=False),
              help="Archive folder to create; every other command can use it with --archive.")
@click.option("--videos", type=int, default=24, show_default=True)
@click.option("--followers", type=int, default=120, show_default=True)
def demo(folder, videos, followers):
    """Archive a SIMULATED TikTok account end to end, with no account needed."""
    _setup_logging()
    from archiver.sim.demo import run_demo

    sys.exit(run_demo(Path(folder), videos=videos, followers=followers, echo=echo))


# The audience commands and the report live in their own modules (each keeps its heavy
# imports inside its commands, so `archiver --help` stays fast).
from archiver.cli.audience import audience  # noqa: E402
from archiver.views.report import report as _report_command  # noqa: E402

main.add_command(audience)
main.add_command(_report_command)


if __name__ == "__main__":
    main()
