"""A tenant's archives, for reading: what `archiver serve --tenant T` shows.

The accounts are the tenant's rows of ``fleet_accounts``; each one's archive is where the
workers keep it — in a folder of archives (``archiver worker --archives DIR`` without object
storage: ``DIR/<tenant>/<platform>/<name>/archive.db``, fleet/worker.py's LocalArchives), or
in object storage by generation (fleet/storage.py): the current generation is downloaded
into a cache of its own (never a worker's working copy) and read as it is, the pointer never
moved and no fence taken, so a view never disturbs a run. Media of a stored archive are
fetched one by one when first asked for (fleet/media.py checks each against its name).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from archiver.fleet import accounts as fleet_accounts
from archiver.fleet.accounts import FleetAccount
from archiver.fleet.db import FleetError

ARCHIVE_FILE_NAME = "archive.db"


@dataclass
class TenantArchive:
    """One account's archive as it can be read now."""

    account: FleetAccount
    db_path: Path
    media_root: Path
    generation: int | None = None                       # object storage: the generation read
    fetch_media: Callable[[str], None] | None = None    # object storage: lays one media file into media_root


@dataclass
class TenantArchives:
    tenant: str
    found: list[TenantArchive]
    missing: list[FleetAccount]     # accounts with no archive yet (never run, or never uploaded)


def tenant_accounts(connection, tenant: str) -> list[FleetAccount]:
    """The tenant's accounts (enabled or not: a disabled account's archive is still kept)."""
    found = [account for account in fleet_accounts.load(connection) if account.tenant == tenant]
    if not found:
        raise FleetError(f"tenant {tenant!r} has no accounts in the fleet's database "
                         "(`archiver fleet status` lists the tenants)")
    return found


def folder_archives(tenant_accounts: list[FleetAccount], folder: Path) -> TenantArchives:
    """The accounts' archives in a folder of archives, as ``archiver worker --archives`` keeps
    them without object storage."""
    found, missing = [], []
    for account in tenant_accounts:
        archive_folder = Path(folder) / account.tenant / account.platform / account.name
        if (archive_folder / ARCHIVE_FILE_NAME).is_file():
            found.append(TenantArchive(account, archive_folder / ARCHIVE_FILE_NAME, archive_folder / "media"))
        else:
            missing.append(account)
    return TenantArchives(tenant_accounts[0].tenant if tenant_accounts else "", found, missing)


def stored_archives(connection, objects, tenant_accounts: list[FleetAccount], cache_dir: Path) -> TenantArchives:
    """The accounts' current generations in object storage, each downloaded into
    ``cache_dir/<account id>/`` unless there already (a later call reads newer generations).
    ``connection``: an autocommit connection to the fleet's database."""
    from archiver.fleet import media as fleet_media
    from archiver.fleet.storage import ArchiveStore

    store = ArchiveStore(connection, objects, Path(cache_dir), worker="serve")
    found, missing = [], []
    for account in tenant_accounts:
        pointer, path = store.read_only_copy(account.id)
        if path is None:
            missing.append(account)
            continue
        media_root = Path(cache_dir) / str(account.id) / "media"

        def fetch(relative: str, media_root: Path = media_root) -> None:
            fleet_media.fetch(objects, media_root, relative)

        found.append(TenantArchive(account, path, media_root, pointer.generation, fetch))
    return TenantArchives(tenant_accounts[0].tenant if tenant_accounts else "", found, missing)
