"""A tenant's archives, for reading: what `archiver serve --tenant T` shows.

The accounts are the tenant's rows of ``fleet_accounts``; each one's archive is where the
workers keep it — in a folder of archives (``archiver worker --archives DIR`` without object
storage: ``DIR/<tenant>/<platform>/<name>/archive.db``, fleet/worker.py's LocalArchives), or
in object storage by generation (fleet/storage.py): the current generation is downloaded
into a cache of its own (never a worker's working copy) and read as it is, the pointer never
moved and no fence taken, so a view never disturbs a run. Media of a stored archive are
fetched one by one when first asked for (fleet/media.py checks each against its name).

``TenantView`` finds them again whenever asked (`archiver serve --tenant` asks every
``--refresh-seconds``): new generations, new and removed accounts. Its cache keeps what is
served now and what was served before (a request may still be reading it) and removes the
rest: older generations, accounts no longer the tenant's.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from archiver.fleet import accounts as fleet_accounts
from archiver.fleet.accounts import FleetAccount
from archiver.fleet.db import FleetError

log = logging.getLogger("archiver.fleet.browse")

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


def folder_archives(tenant_accounts: list[FleetAccount], folder: Path, *, tenant: str = "") -> TenantArchives:
    """The accounts' archives in a folder of archives, as ``archiver worker --archives`` keeps
    them without object storage."""
    found, missing = [], []
    for account in tenant_accounts:
        archive_folder = Path(folder) / account.tenant / account.platform / account.name
        if (archive_folder / ARCHIVE_FILE_NAME).is_file():
            found.append(TenantArchive(account, archive_folder / ARCHIVE_FILE_NAME, archive_folder / "media"))
        else:
            missing.append(account)
    return TenantArchives(tenant_accounts[0].tenant if tenant_accounts else tenant, found, missing)


def stored_archives(connection, objects, tenant_accounts: list[FleetAccount], cache_dir: Path, *,
                    tenant: str = "") -> TenantArchives:
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
    return TenantArchives(tenant_accounts[0].tenant if tenant_accounts else tenant, found, missing)


class TenantView:
    """A tenant's archives as they are now, each time ``archives()`` is called: from object
    storage (``objects``; downloads cached in ``folder``/serve/<tenant>/, this view's alone) or
    from a folder of archives (``folder``, as `archiver worker --archives` keeps them).

    A stored view holds a lock on its cache folder: a second view of the same tenant on the
    same folder would remove files the first one serves (give it another --archives)."""

    def __init__(self, database_url: str, tenant: str, folder: Path, objects=None):
        self.database_url, self.tenant, self.folder, self.objects = database_url, tenant, Path(folder), objects
        self.cache_dir = self.folder / "serve" / tenant
        self._lock = _lock_folder(self.cache_dir) if objects is not None else None
        self._served: set[Path] = set()    # the files of the last answer (still served, maybe)

    def archives(self, *, must_exist: bool = False) -> TenantArchives:
        """The tenant's accounts and their current archives. ``must_exist``: a tenant with no
        accounts is an error (at start); later it is an empty view (its accounts removed)."""
        from archiver.fleet import db

        with db.connect(self.database_url) as connection:
            if must_exist:
                accounts = tenant_accounts(connection, self.tenant)
            else:
                accounts = [a for a in fleet_accounts.load(connection) if a.tenant == self.tenant]
            if self.objects is None:
                return folder_archives(accounts, self.folder, tenant=self.tenant)
            found = stored_archives(connection, self.objects, accounts, self.cache_dir, tenant=self.tenant)
        serving = {archive.db_path for archive in found.found}
        self._clean_cache(keep=serving | self._served)
        self._served = serving
        return found

    def _clean_cache(self, keep: set[Path]) -> None:
        """Remove cached generations and account folders that neither this answer nor the last
        one holds (a request the last one began may still read its file; two answers back, none)."""
        keep_folders = {path.parent for path in keep}
        for account_folder in self.cache_dir.iterdir():
            if not account_folder.is_dir():
                continue
            if account_folder not in keep_folders:
                log.info("%s: %s is no longer one of its archives: its cached copy removed", self.tenant,
                         account_folder.name)
                shutil.rmtree(account_folder, ignore_errors=True)
                continue
            for generation in [*account_folder.glob("*.sqlite"), *account_folder.glob("*.loading")]:
                if generation not in keep:
                    with contextlib.suppress(FileNotFoundError):
                        generation.unlink()


def _lock_folder(folder: Path):
    """An exclusive lock on ``folder``/.lock for this process's life (the open file holds it)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)   # downloaded archives: personal data
    handle = open(folder / ".lock", "a+b")   # noqa: SIM115 - kept open: the lock lives as long as the view
    try:
        import fcntl
    except ImportError:   # no fcntl (Windows): one view per folder is then up to the operator
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FleetError(f"another `archiver serve` uses {folder} for its downloaded archives: give this one "
                         "its own --archives folder") from None
    return handle
