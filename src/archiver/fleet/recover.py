"""`archiver fleet recover`: after the fleet's database was restored from an older backup,
adopt the generations the object store holds and the database does not know.

Restoring PostgreSQL takes every account back to the generation that was current at backup
time, and its fence and generation numbers back with it. The generations uploaded since are
still in the store (objects ``archives/<account>/<generation>-<fence>.sqlite``, never changed),
but no row names them: they hold every night since the backup, and posts the platform has
deleted meanwhile exist nowhere else. For each account whose store holds a generation numbered
above every one the database knows, this

1. sets aside, by their names alone, the uploads of runs that were cut off (zombies killed
   before they removed them): live runs' generations have fences that never go down (a run's
   checkpoint counts only while its fence is the account's, and a later run gets a higher
   one), so walking up from the generations the database knows, an object whose fence is
   below one of a lower or equal number is a zombie's (named, not adopted, left for the sweep);
2. checks the rest, newest first: downloaded, their sha256 computed, SQLite opens them and
   ``PRAGMA quick_check`` passes (a bad one is named, and the next older one is tried);
3. in one transaction holding the account's row: records the good ones in
   fleet_archive_generations, moves the pointer to the newest good one, and raises the account's
   fence above every fence its objects' names carry — so no later run can write a name that
   exists, and a run still going (there should be none: recover before starting the workers)
   is fenced off, as a checkpoint would fence it.

Accounts whose objects only carry a higher fence get the fence raised. Objects of accounts the
database lacks (added after the backup) are named and left alone, and new accounts are numbered
above them. Running it again does nothing: what it adopted is known then.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import socket
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from archiver.fleet.objects import StorageError, file_sha256
from archiver.fleet.storage import CLOCK_SLACK, ArchiveStore

log = logging.getLogger(__name__)



@dataclass
class StoredGeneration:
    """One archive object in the store, as its name and listing describe it."""

    key: str
    generation: int
    fence: int
    written: dt.datetime
    sha256: str | None = None   # once checked
    size: int | None = None


@dataclass
class AccountRecovery:
    """What recover found and did (or, dry, would do) for one account."""

    account_id: int
    label: str                       # tenant/platform:name, or "(not in the database)"
    pointer: int                     # the generation current before
    newest_known: int                # the newest generation the database knew
    fence_before: int
    fence_after: int | None = None   # None: not raised
    adopted: StoredGeneration | None = None
    recorded: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)   # "s3://…: why"
    dropped: list[StoredGeneration] = field(default_factory=list)   # cut-off runs' uploads
    dropped_why: list[str] = field(default_factory=list)            # "s3://… not adopted: why"
    note: str | None = None

    def lines(self, dry_run: bool) -> list[str]:
        head = f"account {self.account_id} {self.label}"
        lines = [f"{head}: {why}" for why in self.refused + self.dropped_why]
        would = "would " if dry_run else ""
        if self.note:
            lines.append(f"{head}: {self.note}")
        elif self.adopted is not None:
            recorded = ", ".join(str(g) for g in self.recorded)
            lines.append(f"{head}: {would}adopt generation {self.adopted.generation} ({self.adopted.key}, "
                         f"{self.adopted.size} bytes, sha256 {self.adopted.sha256}): the pointer was at "
                         f"{self.pointer}; generations recorded: {recorded}; fence {self.fence_before} -> "
                         f"{self.fence_after}")
        elif self.fence_after is not None:
            lines.append(f"{head}: nothing newer to adopt; fence {self.fence_before} -> {self.fence_after} "
                         f"(objects in the store carry fences up to {self.fence_after - 1})")
        elif self.refused:
            lines.append(f"{head}: no newer generation passed the checks; the pointer stays at {self.pointer}")
        elif self.dropped:
            lines.append(f"{head}: nothing newer to adopt; the pointer stays at {self.pointer}")
        return lines


@dataclass
class Recovery:
    accounts: list[AccountRecovery]
    unknown_accounts: dict[int, int]   # account number the database lacks -> objects of it
    dry_run: bool

    @property
    def refused(self) -> int:
        return sum(len(found.refused) for found in self.accounts)

    def lines(self) -> list[str]:
        lines = [line for found in self.accounts for line in found.lines(self.dry_run)]
        for account, count in sorted(self.unknown_accounts.items()):
            lines.append(f"account {account}: {count} objects in the store, but the database has no account "
                         f"{account} (added after the backup?): left in place, the sweep keeps them; new accounts "
                         f"are numbered above {account}")
        adopted = [found for found in self.accounts if found.adopted is not None]
        raised = [found for found in self.accounts if found.fence_after is not None]
        dropped = sum(len(found.dropped) for found in self.accounts)
        lines.append(f"{'dry run, nothing written: ' if self.dry_run else ''}{len(adopted)} accounts "
                     f"{'to recover' if self.dry_run else 'recovered'} "
                     f"({sum(len(found.recorded) for found in adopted)} generations), "
                     f"{len(raised)} fences {'to raise' if self.dry_run else 'raised'}, "
                     + (f"{dropped} cut-off runs' uploads not adopted (the sweep's), " if dropped else "")
                     + f"{self.refused} objects refused" + (
                         " (left in the store: an account's runs do not start while one newer than its generations "
                         "is there; look at them, then delete them by hand)" if self.refused else ""))
        return lines


def recover(store: ArchiveStore, *, account_id: int | None = None, tenant: str | None = None,
            dry_run: bool = False) -> Recovery:
    """Adopt the generations the database does not know, for one account, a tenant's, or
    (both None) every account in the store."""
    conn = store.conn
    if account_id is None and tenant is None:
        prefixes = ["archives/"]
    else:
        ids = [account_id] if account_id is not None else [row[0] for row in conn.execute(
            "SELECT id FROM fleet_accounts WHERE tenant = %s ORDER BY id", (tenant,))]
        prefixes = [f"archives/{account}/" for account in ids]
    stored: dict[int, list[StoredGeneration]] = {}
    for prefix in prefixes:
        for key, written in store.objects.listing(prefix):
            parts = store.archive_key_parts(key)
            if parts is not None:
                stored.setdefault(parts[0], []).append(StoredGeneration(key, parts[1], parts[2], written))

    # The generation of the highest fence the database knows, per account: where the walk starts.
    highest_known = {row[0]: (row[1], row[2]) for row in conn.execute(
        "SELECT DISTINCT ON (account_id) account_id, generation, fence FROM fleet_archive_generations "
        "WHERE account_id = ANY(%s) ORDER BY account_id, fence DESC, generation DESC", (list(stored),))}
    known = {row[0]: row[1:] for row in conn.execute(
        "SELECT f.id, f.tenant || '/' || f.platform || ':' || f.name, f.fence, f.created_at, "
        "coalesce(a.generation, 0), (SELECT coalesce(max(g.generation), 0) FROM fleet_archive_generations g "
        "WHERE g.account_id = f.id) FROM fleet_accounts f LEFT JOIN fleet_archives a ON a.account_id = f.id "
        "WHERE f.id = ANY(%s)", (list(stored),))}
    unknown = {account: len(objects) for account, objects in stored.items() if account not in known}
    if unknown and not dry_run:
        _number_new_accounts_above(conn, max(unknown))

    found_all = []
    with tempfile.TemporaryDirectory(prefix="archiver-recover-") as scratch:
        for account in sorted(set(stored) & set(known)):
            label, fence, created_at, pointer, newest_known = known[account]
            found = AccountRecovery(account, label, pointer, newest_known, fence)
            highest_fence = max(obj.fence for obj in stored[account])
            unknown_objects = [obj for obj in stored[account] if obj.generation > newest_known]
            if not unknown_objects and highest_fence <= fence:
                continue   # nothing the database does not know
            older_than_account = [obj for obj in unknown_objects if _older_than_account(obj, created_at)]
            newer, found.dropped, found.dropped_why = _live_generations(
                [obj for obj in unknown_objects if obj not in older_than_account],
                highest_known.get(account, (0, 0)), store)
            for obj in found.dropped:
                log.warning("account %s: %s not adopted: a cut-off run's upload", account, obj.key)
            good = []
            for obj in sorted(older_than_account + newer, key=lambda obj: obj.generation, reverse=True):
                why = _check(store, obj, created_at, Path(scratch))
                if why:
                    found.refused.append(f"{store.objects.where(obj.key)} refused: {why}")
                    log.warning("account %s: %s refused: %s", account, obj.key, why)
                else:
                    good.append(obj)
            if good:
                found.adopted = good[0]
                found.recorded = sorted(obj.generation for obj in good)
            if good or highest_fence > fence:
                found.fence_after = max(fence, highest_fence) + 1
                if not dry_run and not _adopt(store, found, good):
                    found.note = ("changed while it was checked (a run checkpointed it: stop the workers); "
                                  "nothing written, run recover again")
                    found.adopted, found.fence_after = None, None
            found_all.append(found)
    return Recovery(found_all, unknown, dry_run)


def _live_generations(objects: list[StoredGeneration], highest_known: tuple[int, int], store: ArchiveStore
                      ) -> tuple[list[StoredGeneration], list[StoredGeneration], list[str]]:
    """The objects live runs can have written (one per number), and those only a run that was
    cut off can have written, with why. A checkpoint moves the pointer only while its run's fence
    is the account's, and a run started later gets a higher one: live generations' fences never
    go down as their numbers go up. A zombie numbers its upload one above the newest generation
    it saw, so when the run that took over checkpointed first, the zombie's number is above
    that run's generation and its fence below. Walking up from ``highest_known`` (the
    generation of the highest fence the database knows, and that fence), an object whose fence
    is below the highest met so far is a zombie's; of one number, the higher fence is the later run."""
    floor_generation, floor = highest_known
    live: list[StoredGeneration] = []
    dropped: list[StoredGeneration] = []
    why: list[str] = []
    for obj in sorted(objects, key=lambda obj: (obj.generation, -obj.fence)):
        if obj.fence < floor or (live and live[-1].generation == obj.generation):
            dropped.append(obj)
            why.append(f"{store.objects.where(obj.key)} not adopted: a cut-off run's upload (fence {obj.fence}, "
                       f"below fence {floor} of generation {floor_generation}, a later run's); left in the store, "
                       "it keeps no run from starting, and the sweep removes it once its number is the database's")
        else:
            live.append(obj)
            floor_generation, floor = obj.generation, obj.fence
    return live, dropped, why


def _older_than_account(obj: StoredGeneration, created_at: dt.datetime) -> bool:
    """Written before its account was added: another account's, whose number was given again."""
    return obj.written < created_at - CLOCK_SLACK


def _check(store: ArchiveStore, obj: StoredGeneration, created_at: dt.datetime, scratch: Path) -> str | None:
    """Why ``obj`` cannot be adopted, or None (then its sha256 and size are set)."""
    if _older_than_account(obj, created_at):
        return (f"written {obj.written:%Y-%m-%d %H:%M} UTC, before the account was added "
                f"({created_at:%Y-%m-%d %H:%M} UTC): another account's, whose number was given again")
    local = scratch / f"{obj.generation}-{obj.fence}.sqlite"
    try:
        store.objects.get_file(obj.key, local)
        sha256, size = file_sha256(local)
        problem = _quick_check(local)
    except StorageError as error:
        return str(error)
    finally:
        with contextlib.suppress(FileNotFoundError):
            local.unlink()
    if problem:
        return f"not a sound SQLite archive ({problem})"
    obj.sha256, obj.size = sha256, size
    return None


def _quick_check(path: Path) -> str | None:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = [row[0] for row in db.execute("PRAGMA quick_check")]
        finally:
            db.close()
    except sqlite3.DatabaseError as error:
        return f"SQLite: {error}"
    return None if rows == ["ok"] else "quick_check: " + "; ".join(str(row) for row in rows[:3])


def _adopt(store: ArchiveStore, found: AccountRecovery, good: list[StoredGeneration]) -> bool:
    """Write it, fenced like a checkpoint: in one transaction holding the account's row, only
    while the database still knows what it knew when the objects were chosen."""
    conn = store.conn
    assert found.fence_after is not None
    with conn.transaction():
        row = conn.execute("SELECT fence, (SELECT coalesce(max(generation), 0) FROM fleet_archive_generations "
                           "WHERE account_id = %s) FROM fleet_accounts WHERE id = %s FOR UPDATE",
                           (found.account_id, found.account_id)).fetchone()
        if row is None or row[0] > found.fence_before or row[1] != found.newest_known:
            return False
        conn.execute("UPDATE fleet_accounts SET fence = %s WHERE id = %s", (found.fence_after, found.account_id))
        for obj in good:
            conn.execute("INSERT INTO fleet_archive_generations (account_id, generation, object_key, sha256, size, "
                         "fence) VALUES (%s, %s, %s, %s, %s, %s)",
                         (found.account_id, obj.generation, obj.key, obj.sha256, obj.size, obj.fence))
        if good:
            new = good[0]
            conn.execute(
                "INSERT INTO fleet_archives (account_id, generation, object_key, sha256, size, fence, worker) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (account_id) DO UPDATE SET "
                "generation = excluded.generation, object_key = excluded.object_key, sha256 = excluded.sha256, "
                "size = excluded.size, fence = excluded.fence, worker = excluded.worker, updated_at = now()",
                (found.account_id, new.generation, new.key, new.sha256, new.size, new.fence,
                 f"recover@{socket.gethostname()}"))
    log.info("account %s: recovered generation %s, fence %s -> %s", found.account_id,
             found.adopted.generation if found.adopted else None, found.fence_before, found.fence_after)
    return True


def _number_new_accounts_above(conn, highest: int) -> None:
    """Accounts added from now on get numbers above ``highest`` (the restored sequence would
    give the numbers of accounts the backup lacks, and their objects would look like theirs)."""
    conn.execute("SELECT setval(pg_get_serial_sequence('fleet_accounts', 'id'), %s) "
                 "WHERE %s >= (SELECT last_value FROM fleet_accounts_id_seq)", (highest, highest))
