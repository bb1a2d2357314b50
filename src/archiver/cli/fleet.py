"""The fleet's commands (docs/fleet.md): `archiver fleet init|add|import|accounts|rate|status|
prune|sweep|recover|secrets`, `archiver worker`, `archiver enqueue`. They need the ``fleet`` extra;
nothing of it (procrastinate, psycopg) is imported until a command runs, so `archiver --help`
stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from pathlib import Path

import click

from archiver.cli._common import common_options, fail, guard
from archiver.inert import echo


def database_option(func):
    @click.option("--database", metavar="URL",
                  help="The fleet's PostgreSQL (postgresql://user@host/db). Default: $ARCHIVER_FLEET_DATABASE, "
                       "else [fleet] database in the config.")
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def fleet_guard(func):
    """FleetError and a missing extra as one line, like the other commands' mistakes."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from archiver.fleet.db import FleetError  # no third-party import in that module

        try:
            return func(*args, **kwargs)
        except FleetError as error:
            fail(str(error))
        except ModuleNotFoundError as error:
            if error.name and error.name.split(".")[0] in ("procrastinate", "psycopg", "psycopg_pool"):
                fail(f"the fleet needs its extra ({error.name} is missing): pip install 'archiver[fleet]'")
            raise

    return guard(wrapper)


def _url(archive, config_path, database) -> str:
    from archiver.cli._common import open_workspace
    from archiver.fleet.db import database_url

    if database:
        return database_url(database)
    return database_url(None, open_workspace(archive, config_path).config)


@click.group()
def fleet():
    """Many accounts, many workers: accounts and the job queue in PostgreSQL (docs/fleet.md)."""


@fleet.command()
@common_options
@database_option
@fleet_guard
def init(archive, config_path, database):
    """Apply the job queue's schema and the fleet's tables (again after an upgrade: harmless)."""
    from archiver.fleet import db, schema

    url = _url(archive, config_path, database)
    with db.connect(url) as connection:
        done = schema.apply(connection)
    echo(f"fleet database {db.shown_url(url)} ready: " + ", ".join(done))


@fleet.command()
@common_options
@database_option
@click.argument("tenant")
@click.argument("platform")
@click.argument("name")
@click.option("--schedule", help="Cron line (5 fields, or 6 with seconds first). Default: nightly, 02:00-05:00.")
@click.option("--timezone", help="Time zone of the schedule, e.g. Europe/Berlin. Default: the worker's.")
@click.option("--full-every-days", type=click.IntRange(min=1), default=7, show_default=True,
              help="A full listing (finds deleted posts) this often.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="A connector option (repeatable).")
@click.option("--disabled", is_flag=True, help="Add it disabled (not scheduled).")
@fleet_guard
def add(archive, config_path, database, tenant, platform, name, schedule, timezone, full_every_days, options,
        disabled):
    """Add the account NAME on PLATFORM for TENANT."""
    from archiver.fleet import accounts, db

    parsed = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            fail(f"--option {option!r}: expected KEY=VALUE")
        parsed[key] = value
    with db.connect(_url(archive, config_path, database)) as connection:
        account, _ = accounts.add(connection, tenant, platform, name, schedule=schedule, timezone=timezone,
                                  enabled=not disabled, full_every_days=full_every_days, options=parsed)
    echo(f"added account {account.id}: {account.label()}")


@fleet.command(name="import")
@common_options
@database_option
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@fleet_guard
def import_(archive, config_path, database, csv_file):
    """Add or update accounts from a CSV file (columns: tenant, platform, name; optional:
    schedule, timezone, enabled, full_every_days, options as JSON). Importing it again
    changes nothing; a bad row is reported and skipped."""
    from archiver.fleet import accounts, db

    with db.connect(_url(archive, config_path, database)) as connection:
        result = accounts.import_csv(connection, csv_file)
    for problem in result.problems:
        echo(f"skipped: {problem}", err=True)
    echo(f"{result.added} added, {result.updated} updated, {len(result.problems)} skipped")
    if result.problems:
        sys.exit(1)


@fleet.command()
@common_options
@database_option
@click.argument("platform", required=False)
@click.option("--per-minute", type=click.FloatRange(min=0, min_open=True),
              help="Requests a minute every worker together sends to the platform's API (per API host).")
@click.option("--burst", type=click.IntRange(min=1), default=1, show_default=True, help="At most this many at once.")
@click.option("--app", default="*", show_default=True,
              help="Only for accounts whose option app is this (their app registration); '*': all.")
@click.option("--clear", is_flag=True, help="Remove the rate set here: the connector's declared one applies again.")
@fleet_guard
def rate(archive, config_path, database, platform, per_minute, burst, app, clear):
    """Show the rates the workers keep for each platform's API (or PLATFORM's), or set PLATFORM's
    with --per-minute (runs that start afterwards use it)."""
    from archiver.connector import canonical_platform, installed_connectors
    from archiver.fleet import db
    from archiver.fleet.limiter import Rate, rates_table, set_rate

    with db.connect(_url(archive, config_path, database), autocommit=True) as connection:
        if platform is not None:
            platform = canonical_platform(platform)
            if platform not in installed_connectors():
                fail(f"unknown platform {platform!r} (`archiver connectors` lists them)")
            if per_minute is not None or clear:
                set_rate(connection, platform, None if clear else Rate(per_minute, burst), app=app)
        for row in rates_table(connection):
            if platform is None or row["platform"] == platform:
                echo(f"{row['platform']:<12} app {row['app']:<10} {row['per_minute']:g}/min, burst {row['burst']}"
                     f"{', per account' if row['per_user'] else ''} ({row['from']})")


@fleet.command()
@common_options
@database_option
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@fleet_guard
def status(archive, config_path, database, as_json):
    """Per tenant and platform: done, running, failed, overdue, queued; stalled workers."""
    import datetime as dt

    from archiver.fleet import db
    from archiver.fleet.status import fleet_status, status_lines

    with db.connect(_url(archive, config_path, database)) as connection:
        found = fleet_status(connection, dt.datetime.now(dt.timezone.utc))
    if as_json:
        echo(json.dumps(found.as_dict(), indent=2))
    else:
        for line in status_lines(found):
            echo(line)


@fleet.command(name="accounts")
@common_options
@database_option
@click.option("--tenant", help="Only this tenant's accounts.")
@click.option("--platform", help="Only accounts on this platform.")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@fleet_guard
def accounts_(archive, config_path, database, tenant, platform, as_json):
    """List the accounts: number, tenant/platform:name (what --account takes), schedule, time
    zone, enabled, and their last run (status, when it started)."""
    from archiver.fleet import accounts, db

    with db.connect(_url(archive, config_path, database)) as connection:
        listed = accounts.listing(connection, tenant=tenant, platform=platform)
    if as_json:
        echo(json.dumps(listed, indent=2))
    else:
        for line in accounts.listing_lines(listed):
            echo(line)


def storage_option(func):
    @click.option("--storage", metavar="URL", help="Object storage of the archives, s3://bucket/prefix. Default: "
                                                   "$ARCHIVER_FLEET_STORAGE (and $ARCHIVER_FLEET_STORAGE_ENDPOINT "
                                                   "for a store that is not AWS).")
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def scope_options(func):
    """--tenant and --account: the accounts a storage command works on (default: all)."""
    func = click.option("--account", "account_ref", metavar="ID",
                        help="Only this account (its number or tenant/platform:name).")(func)
    return click.option("--tenant", help="Only this tenant's accounts.")(func)


@contextlib.contextmanager
def _archive_store(archive, config_path, database, storage, account_ref):
    """(store for retention, account id or None) — the object store's and the database's
    mistakes as one line."""
    from archiver.fleet import accounts, db
    from archiver.fleet.objects import StorageError, open_object_store
    from archiver.fleet.storage import ArchiveStore
    from archiver.fleet.worker import worker_name

    url = _url(archive, config_path, database)
    try:
        objects = open_object_store(storage)
        with db.connect(url) as connection:
            account_id = accounts.find(connection, account_ref).id if account_ref else None
            yield ArchiveStore(connection, objects, worker=worker_name()), account_id
    except StorageError as error:
        fail(str(error))


@fleet.command()
@common_options
@database_option
@storage_option
@click.option("--keep", type=click.IntRange(min=1), default=None, metavar="N",
              help="Generations kept per account, the current one included. Default: 14.")
@scope_options
@fleet_guard
def prune(archive, config_path, database, storage, keep, tenant, account_ref):
    """Remove old generations of the archives from object storage: all but the newest N of
    each account (the daily retention job does this with the workers' --keep-generations)."""
    from archiver.fleet.storage import KEEP_GENERATIONS

    keep = keep or KEEP_GENERATIONS
    with _archive_store(archive, config_path, database, storage, account_ref) as (store, account_id):
        removed = store.prune(account_id, keep=keep, tenant=tenant)
        accounts = len({key.rsplit("/", 2)[-2] for key in removed})
    echo(f"pruned {len(removed)} generations of {accounts} accounts (keeping the newest {keep} of each)")


@fleet.command()
@common_options
@database_option
@storage_option
@scope_options
@fleet_guard
def sweep(archive, config_path, database, storage, tenant, account_ref):
    """Remove archive objects no generation names (uploads of runs killed before their
    pointer moved), once older than a day (a younger one may be a live run's)."""
    with _archive_store(archive, config_path, database, storage, account_ref) as (store, account_id):
        removed = store.sweep(account_id, tenant=tenant)
    for key in removed:
        echo(f"removed {key}")
    echo(f"swept {len(removed)} objects no generation names")


@fleet.command()
@common_options
@database_option
@storage_option
@scope_options
@click.option("--dry-run", is_flag=True, help="Check and say what it would adopt; write nothing.")
@fleet_guard
def recover(archive, config_path, database, storage, tenant, account_ref, dry_run):
    """After the database was restored from a backup, before starting the workers: adopt the
    generations the store holds and the database does not know (the nights since the backup).
    Each is checked (sha256, SQLite's quick_check) before the pointer moves to the newest good
    one; fences are raised above every one in the store. Running it again does nothing."""
    from archiver.fleet.recover import recover as recover_archives

    with _archive_store(archive, config_path, database, storage, account_ref) as (store, account_id):
        recovery = recover_archives(store, account_id=account_id, tenant=tenant, dry_run=dry_run)
    for line in recovery.lines():
        echo(line)
    if recovery.refused:
        sys.exit(1)


@fleet.group()
def secrets():
    """The fleet's sealed secrets: a new master key, and rotating to it (docs/fleet.md, Secrets)."""


@secrets.command(name="new-key")
def new_key():
    """Print a new master key (32 random bytes, base64) for ARCHIVER_FLEET_MASTER_KEY or a
    systemd credential (`archiver fleet secrets new-key | systemd-creds encrypt - master.key`)."""
    from archiver.fleet.secrets import generate_master_key

    echo(generate_master_key())


@secrets.command()
@common_options
@database_option
@fleet_guard
def rotate(archive, config_path, database):
    """Seal every tenant's secrets again under the current master key
    (ARCHIVER_FLEET_MASTER_KEY), reading old rows with the previous one
    (ARCHIVER_FLEET_MASTER_KEY_PREVIOUS). Run it once every worker has both keys; when it says
    done, drop the previous key. Safe to run again, and while workers run."""
    from archiver.fleet import db
    from archiver.fleet.secrets import ENV_PREVIOUS_KEY, load_master_keys, rotate_all
    from archiver.secrets import SecretStoreError

    try:
        key, previous = load_master_keys()
    except SecretStoreError as error:
        fail(str(error))
    with db.connect(_url(archive, config_path, database)) as connection:
        rotation = rotate_all(connection, key, previous)
    for problem in rotation.problems[:SHOWN_PROBLEMS]:
        echo(f"not rotated: {problem}", err=True)
    if len(rotation.problems) > SHOWN_PROBLEMS:
        echo(f"… and {len(rotation.problems) - SHOWN_PROBLEMS} more not rotated", err=True)
    echo(f"{rotation.resealed} secrets of {rotation.tenants} tenants sealed again under the master key "
         f"{rotation.key_id} ({key.source})")
    if rotation.done:
        echo(f"done: every secret is under the current key; {ENV_PREVIOUS_KEY} may be dropped")
        return
    echo(f"not done: {rotation.left} secrets are still under another key (rows that did not open, above, or "
         f"written meanwhile by a worker still on the old key): keep {ENV_PREVIOUS_KEY} and run this again "
         "once every worker has the new key")
    sys.exit(1)


SHOWN_PROBLEMS = 20


@click.command()
@common_options
@database_option
@click.option("--queues", help="Comma-separated queues to take jobs from: accounts (runs), control (the tick, "
                               "stalled jobs). Default: all.")
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs at once in this worker.")
@click.option("--archives", "archives", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="This worker's folder for archives: its working copies and cached generations (with object "
                   "storage), or the archives themselves (without). Default: <archive folder>/fleet.")
@click.option("--storage", metavar="URL", help="Object storage of the archives, s3://bucket/prefix. Default: "
                                               "$ARCHIVER_FLEET_STORAGE; without either, archives stay in --archives.")
@click.option("--checkpoint-seconds", type=click.FloatRange(min=0), default=None, metavar="S",
              help="With object storage: upload a running account's archive this often (after a page). "
                   "Default: 300. A run killed resumes from the last upload.")
@click.option("--keep-generations", type=click.IntRange(min=0), default=None, metavar="N",
              help="With object storage: the daily retention job (on a control worker) keeps this many "
                   "generations of each archive. Default: 14; 0: it prunes none (it still sweeps).")
@fleet_guard
def worker(archive, config_path, database, queues, concurrency, archives, storage, checkpoint_seconds,
           keep_generations):
    """Take jobs from the fleet's queue and run them, until SIGTERM/SIGINT (a running account
    stops at its next page and resumes later, on any worker). Secrets come from the fleet's
    database when a master key is set (ARCHIVER_FLEET_MASTER_KEY or a systemd credential),
    else from the config's secret store."""
    import logging
    import os

    from archiver.cli._common import open_workspace, setup_logging
    from archiver.fleet.worker import CHECKPOINT_SECONDS, FleetServices, LocalArchives, StoredArchives, run_worker

    setup_logging()
    log = logging.getLogger("archiver.fleet.worker")
    ws = open_workspace(archive, config_path)
    url = _url(archive, config_path, database)
    folder = archives or ws.archive.folder / "fleet"
    secrets_for = _tenant_secrets(url)
    if secrets_for is None:
        log.info("secrets: the config's store (%s); no fleet master key is set", ws.config.secrets_backend)
        secrets_for = lambda tenant: ws.secrets  # noqa: E731
    storage = storage or os.environ.get("ARCHIVER_FLEET_STORAGE")
    if storage:
        from archiver.fleet.objects import open_object_store

        runner = StoredArchives(url, open_object_store(storage), folder, secrets_for=secrets_for,
                                checkpoint_seconds=CHECKPOINT_SECONDS if checkpoint_seconds is None else checkpoint_seconds)
        log.info("archives: %s (working copies and cache in %s)", storage, folder)
    else:
        runner = LocalArchives(folder, secrets_for=secrets_for)
        log.info("archives: in %s (no object storage set)", folder)
    services = FleetServices(url, runner)
    if keep_generations is not None:
        services.keep_generations = keep_generations
    run_worker(services, queues=[q.strip() for q in queues.split(",") if q.strip()] if queues else None,
               concurrency=concurrency)


def _tenant_secrets(url: str):
    """tenant -> the tenant's secrets in the fleet database, or None without a master key."""
    from archiver.fleet.secrets import FleetSecretStore, SecretsDatabase, load_master_keys
    from archiver.secrets import SecretStoreError

    try:
        key, previous = load_master_keys()
    except SecretStoreError:
        return None
    database = SecretsDatabase(url)   # one for the process: it connects again after a database restart
    return lambda tenant: FleetSecretStore(database, tenant, key, previous)


@click.command()
@common_options
@database_option
@click.option("--account", "account_ref", metavar="ID", help="This account (its number or tenant/platform:name), now.")
@click.option("--due", is_flag=True, help="Every account whose schedule says it is due (what the tick does).")
@click.option("--full", is_flag=True, help="Full listings (they find deleted posts).")
@fleet_guard
def enqueue(archive, config_path, database, account_ref, due, full):
    """Queue runs: one account now, or every due account. Idempotent: an account with a
    run waiting already is not queued twice, and a scheduled time already done is not run again."""
    import datetime as dt

    from archiver.fleet import accounts, db, dispatch
    from archiver.fleet.tasks import make_app

    if bool(account_ref) == due:
        fail("give either --account ID or --due")
    url = _url(archive, config_path, database)
    now = dt.datetime.now(dt.timezone.utc)
    app = make_app(url)
    with app.open(), db.connect(url) as connection:
        if due:
            result = dispatch.enqueue_due(app, connection, now, full=full)
        else:
            result = dispatch.enqueue_now(app, accounts.find(connection, account_ref), now, full=full)
    echo(result.summary())
