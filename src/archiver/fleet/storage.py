"""Archives of the fleet in S3-compatible object storage, by generation.

Every account keeps its archive in the usual format (one SQLite file, see docs/schema.md);
the fleet keeps that file in an object store (AWS S3, MinIO, Ceph, R2 …) as a series of
**generations**: immutable objects ``<prefix>archives/<account>/<generation>-<fence>.sqlite``.
Which generation is current lives in PostgreSQL (table ``fleet_archives``, the **pointer**).
Every run start raises the account's **fence** (``fleet_accounts.fence``, fleet/ledger.py);
the run keeps the value it got.

A run goes::

    checkout  the current generation: the worker's cached copy when it is that
              generation, else a download (its sha256 checked); the run writes a working copy.
              Refused when the store holds an object the database cannot have written
              (restored from an older backup: fleet/recover.py adopts those first)
    checkpoint (during long runs and at the end) media first (fleet.media), then
              ``VACUUM INTO`` a snapshot, upload it, and move the pointer to it only while
              the account's fence is still the run's and the pointer is still the
              generation the copy started from (the upload is create-only: an object
              is never overwritten)

A worker that was cut off (a zombie: its job was given to another worker, whose run raised
the fence) can still upload, but its pointer update matches no row: ``FencedOut``, and the
object it uploaded is removed. Old generations stay in the bucket until ``prune`` removes
them (retention: docs/fleet.md).

The object store itself (boto3) is fleet/objects.py; media go up through fleet/media.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import shutil
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

from archiver.fleet import media as fleet_media
from archiver.fleet.objects import ObjectStore, StorageError, file_sha256

log = logging.getLogger(__name__)

ARCHIVE_FILE_NAME = "archive.db"
# Beside a working copy: the media files of its folder known to be in the store, so a run
# does not ask the store again about every file earlier runs on this worker uploaded.
UPLOADED_MEDIA_FILE = ".uploaded-media"
# Retention (docs/fleet.md): generations kept per account by the daily job unless told
# otherwise, and how old an object no generation names must be before a sweep removes it.
KEEP_GENERATIONS = 14
SWEEP_AFTER = dt.timedelta(days=1)
PRUNE_BATCH = 1000   # objects deleted (one S3 request) and marked pruned at a time
# Comparing the store's clock (when an object was written) with the database's.
CLOCK_SLACK = dt.timedelta(minutes=10)


class FencedOut(StorageError):
    """Another run of this account has started since this one (its worker was cut off and
    the job moved on): this run's writes must not count, and it makes no more requests
    (fleet/limiter.py raises it too)."""


@dataclass
class Pointer:
    """The current generation of one account's archive, as PostgreSQL holds it."""

    account_id: int
    generation: int          # 0: nothing uploaded yet
    object_key: str | None = None
    sha256: str | None = None
    size: int | None = None


@dataclass
class CheckedOut:
    """One run's working copy of an account's archive, under the run's fence."""

    store: ArchiveStore
    account_id: int
    fence: int
    generation: int          # what the working copy holds (0: a new archive)
    folder: Path             # the archive folder the run uses: archive.db (+ media/)
    from_cache: bool
    uploaded_media: set[str] = field(default_factory=set)

    @property
    def path(self) -> Path:
        return self.folder / ARCHIVE_FILE_NAME

    def checkpoint(self) -> int:
        """Upload what the working copy holds as the next generation; returns its number.
        Raises FencedOut when another run of the account has started since."""
        return self.store.checkpoint(self)

    def has_media(self, relative: str) -> bool:
        """Whether media/``relative`` is in the store (an Archive's ``media_elsewhere``): a file
        an earlier run archived, on any worker, counts as held — asked with a HEAD, never
        downloaded, and not fetched from the platform again."""
        if relative in self.uploaded_media:
            return True
        try:
            kept = self.store.objects.exists(fleet_media.media_key(self.store.objects, relative))
        except StorageError as error:
            log.info("account %s: could not ask the store for media/%s (%s)", self.account_id, relative, error)
            return False
        if kept:
            self.uploaded_media.add(relative)
        return kept


class ArchiveStore:
    """Archives by generation: the pointer in PostgreSQL (``conn``, an autocommit
    connection), the files in ``objects``, this worker's cached generations in ``cache_dir``.

    The fence is the account's (``fleet_accounts.fence``, raised by every run start): a run
    passes the value it got, and may move the pointer only while it is still current."""

    def __init__(self, conn: psycopg.Connection, objects: ObjectStore, cache_dir: Path | None = None, *,
                 worker: str):
        # No cache_dir: a store for retention only (prune, sweep), which reads no archive.
        self.conn, self.objects, self.worker = conn, objects, worker
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None

    @property
    def cache_dir(self) -> Path:
        if self._cache_dir is None:
            raise StorageError("this archive store was opened without a cache folder (for retention only)")
        return self._cache_dir

    # -- the pointer ---------------------------------------------------------------

    def pointer(self, account_id: int) -> Pointer:
        row = self.conn.execute(
            "SELECT generation, object_key, sha256, size FROM fleet_archives WHERE account_id = %s",
            (account_id,)).fetchone()
        return Pointer(account_id, *row) if row else Pointer(account_id, 0)

    def still_holds(self, account_id: int, fence: int) -> bool:
        """Whether ``fence`` is still the account's (no other run of it started since)."""
        row = self.conn.execute("SELECT fence FROM fleet_accounts WHERE id = %s", (account_id,)).fetchone()
        return row is not None and row[0] == fence

    def _fenced_out(self, account_id: int, fence: int, what: str) -> FencedOut:
        return FencedOut(f"account {account_id}: another run of it started after this one (fence {fence} is no "
                         f"longer current); {what}")

    # -- checkout --------------------------------------------------------------------

    def checkout(self, account_id: int, work_dir: Path, *, fence: int) -> CheckedOut:
        """Lay the account's current generation in ``work_dir`` as archive.db: from this
        worker's cache when it holds that generation, else downloaded (its sha256 checked).
        A stale -wal/-shm beside it is removed first: SQLite would replay it into the new file."""
        if not self.still_holds(account_id, fence):
            raise self._fenced_out(account_id, fence, "it does not check the archive out")
        self._refuse_a_store_newer_than_the_database(account_id, fence)
        pointer = self.pointer(account_id)
        work_dir = Path(work_dir)
        _private_folder(work_dir)
        target = work_dir / ARCHIVE_FILE_NAME
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                (work_dir / (ARCHIVE_FILE_NAME + suffix)).unlink()
        from_cache = False
        if pointer.generation > 0:
            cached = self._cached_path(pointer)
            from_cache = cached.exists()
            if not from_cache:
                self._download(pointer, cached)
            shutil.copyfile(cached, target)
            os.chmod(target, 0o600)
        log.info("account %s: checked out generation %d (fence %d, %s)", account_id, pointer.generation,
                 fence, "cached copy" if from_cache else ("downloaded" if pointer.generation else "new"))
        return CheckedOut(self, account_id, fence, pointer.generation, work_dir, from_cache,
                          _read_uploaded(work_dir / UPLOADED_MEDIA_FILE))

    def _refuse_a_store_newer_than_the_database(self, account_id: int, fence: int) -> None:
        """The run does not start when the account's objects show that the database went back
        in time (restored from a backup) while the store kept the generations since: it would
        number its own among them, and they are the nights since the backup. The signs, none
        possible otherwise: a fence not below the one this run just got (fences only go up); a
        generation two or more above the newest the database knows (a checkpoint numbers its
        upload one above it, a zombie's included); or one above it that no run of this
        database's ledger can have written (a zombie's run is in the ledger, started before
        its upload; a restore gives the lost runs' fences again, to runs started since).
        Never a sign: an object whose fence is below one of the generations the database knows.
        Live generations' fences never go down as their numbers go up, so that is the upload of
        a run cut off (a zombie killed before it removed it), as `fleet recover` judges it too;
        the sweep removes it once its number is known."""
        (newest, known_fence) = self.conn.execute(
            "SELECT coalesce(max(generation), 0), coalesce(max(fence), 0) FROM fleet_archive_generations "
            "WHERE account_id = %s", (account_id,)).fetchone() or (0, 0)
        for key, written in self.objects.listing(f"archives/{account_id}/"):
            parts = self.archive_key_parts(key)
            if parts is None:
                continue
            _, generation, object_fence = parts
            if object_fence < known_fence:
                continue
            if object_fence >= fence or generation > newest + 1 or (generation == newest + 1 and not self.conn.execute(
                    "SELECT 1 FROM fleet_runs WHERE account_id = %s AND fence = %s AND started_at <= %s",
                    (account_id, object_fence, written + CLOCK_SLACK)).fetchone()):
                raise StorageError(
                    f"account {account_id}: the store holds {self.objects.where(key)} (generation {generation}, "
                    f"fence {object_fence}), which no run of this database wrote (its newest generation is "
                    f"{newest}, this run's fence {fence}): the database is older than the store (restored from "
                    "a backup?); run `archiver fleet recover` before the workers (docs/fleet.md, Backup and restore)")

    def read_only_copy(self, account_id: int) -> tuple[Pointer, Path | None]:
        """The current generation as a file of this store's cache, for reading only (a view:
        `archiver serve --tenant`): no fence, no working copy, the pointer never moves.
        Downloaded (its sha256 checked) unless the cache holds it; it appears under its name
        only whole and checked. None before any upload. Older generations in the cache are
        left alone: a reader may still be serving one (fleet/browse.py removes them)."""
        pointer = self.pointer(account_id)
        if pointer.generation == 0:
            return pointer, None
        cached = self._cached_path(pointer)
        if not cached.exists():
            self._download(pointer, cached, forget_others=False)
        return pointer, cached

    def _cached_path(self, pointer: Pointer) -> Path:
        # The sha256 in the name: a cached file is the generation only if its bytes are.
        return self.cache_dir / str(pointer.account_id) / f"{pointer.generation}-{pointer.sha256}.sqlite"

    def _download(self, pointer: Pointer, cached: Path, *, forget_others: bool = True) -> None:
        assert pointer.object_key
        _private_folder(cached.parent)
        loading = cached.with_name(cached.name + ".loading")
        self.objects.get_file(pointer.object_key, loading)
        sha256, size = file_sha256(loading)
        if sha256 != pointer.sha256:
            loading.unlink()
            raise StorageError(f"account {pointer.account_id}: generation {pointer.generation} "
                               f"({self.objects.where(pointer.object_key)}) does not match its sha256 "
                               f"({size} bytes downloaded): the object was changed or damaged in the store; "
                               "restore it, or point the account at an older generation (docs/fleet.md)")
        os.replace(loading, cached)
        if forget_others:
            self._forget_other_generations(cached)

    def _forget_other_generations(self, keep: Path) -> None:
        """A worker caches one generation per account: the newest it saw."""
        for other in keep.parent.glob("*.sqlite"):
            if other != keep:
                with contextlib.suppress(FileNotFoundError):
                    other.unlink()

    # -- checkpoint ---------------------------------------------------------------

    def checkpoint(self, copy: CheckedOut) -> int:
        if not self.still_holds(copy.account_id, copy.fence):   # an early answer; the pointer update decides
            raise self._fenced_out(copy.account_id, copy.fence, "its checkpoint does not count")
        # Media first: a generation never names a file the store lacks.
        media_folder = copy.folder / "media"
        if media_folder.is_dir():
            uploaded = fleet_media.upload_folder(self.objects, media_folder, skip=copy.uploaded_media)
            if uploaded - copy.uploaded_media:
                copy.uploaded_media |= uploaded
                _write_uploaded(copy.folder / UPLOADED_MEDIA_FILE, copy.uploaded_media)
        generation = self._next_generation(copy)
        folder = self.cache_dir / str(copy.account_id)
        _private_folder(folder)
        snapshot = folder / f".snapshot-{generation}-{uuid.uuid4().hex[:8]}.sqlite"
        try:
            _vacuum_into(copy.path, snapshot)
            sha256, size = file_sha256(snapshot)
            key = self.objects.key(archive_key(copy.account_id, generation, copy.fence))
            # Create-only: a name that exists already is never overwritten. It can only be
            # there when the database went back in time (restored from a backup) while the
            # store kept the newer generations: those are the nights since the backup.
            if not self.objects.put_file(key, snapshot, create_only=True):
                raise StorageError(
                    f"account {copy.account_id}: {self.objects.where(key)} exists already, and was left as it "
                    "is: the store holds generations the database does not know (was the database restored "
                    "from a backup?); run `archiver fleet recover` before the workers (docs/fleet.md, Backup "
                    "and restore)")
            if not self._move_pointer(copy, generation, key, sha256, size):
                with contextlib.suppress(StorageError):
                    self.objects.delete([key])
                raise self._fenced_out(copy.account_id, copy.fence,
                                       f"its upload of generation {generation} was discarded")
            cached = self._cached_path(Pointer(copy.account_id, generation, key, sha256, size))
            os.replace(snapshot, cached)
            self._forget_other_generations(cached)
        finally:
            with contextlib.suppress(FileNotFoundError):
                snapshot.unlink()
        copy.generation = generation
        log.info("account %s: checkpoint, generation %d (%d bytes)", copy.account_id, generation, size)
        return generation

    def _next_generation(self, copy: CheckedOut) -> int:
        """One more than any generation the account ever had, not than the copy's: after the
        archive was taken back to an older generation (docs/fleet.md, Retention) the newer
        ones still exist, and a number is never given twice."""
        (newest,) = self.conn.execute("SELECT coalesce(max(generation), 0) FROM fleet_archive_generations "
                                      "WHERE account_id = %s", (copy.account_id,)).fetchone() or (0,)
        return max(newest, copy.generation) + 1

    def _move_pointer(self, copy: CheckedOut, generation: int, key: str, sha256: str, size: int) -> bool:
        """The fenced update: in one transaction that holds the account's row (FOR SHARE: a run
        starting meanwhile waits to raise the fence until this commits), only while the
        fence is the run's and the pointer is still the generation the copy started from."""
        with self.conn.transaction():
            row = self.conn.execute("SELECT fence FROM fleet_accounts WHERE id = %s FOR SHARE",
                                    (copy.account_id,)).fetchone()
            if not row or row[0] != copy.fence:
                return False
            moved = self.conn.execute(
                "INSERT INTO fleet_archives AS a (account_id, generation, object_key, sha256, size, fence, worker) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (account_id) DO UPDATE SET "
                "generation = excluded.generation, object_key = excluded.object_key, sha256 = excluded.sha256, "
                "size = excluded.size, fence = excluded.fence, worker = excluded.worker, updated_at = now() "
                "WHERE a.generation = %s",
                (copy.account_id, generation, key, sha256, size, copy.fence, self.worker, copy.generation)).rowcount
            if moved != 1:
                return False
            self.conn.execute(
                "INSERT INTO fleet_archive_generations (account_id, generation, object_key, sha256, size, fence) "
                "VALUES (%s, %s, %s, %s, %s, %s)", (copy.account_id, generation, key, sha256, size, copy.fence))
        return True

    def archive_key_parts(self, key: str) -> tuple[int, int, int] | None:
        """(account, generation, fence) of a generation's object key, as checkpoints name them;
        None for any other key."""
        if not key.startswith(self.objects.prefix):
            return None
        found = ARCHIVE_KEY.fullmatch(key[len(self.objects.prefix):])
        return (int(found["account"]), int(found["generation"]), int(found["fence"])) if found else None

    # -- retention --------------------------------------------------------------------

    def prune(self, account_id: int | None = None, *, keep: int, tenant: str | None = None) -> list[str]:
        """Remove the objects of all but the newest ``keep`` generations of an account, or of
        every account (of ``tenant``) when ``account_id`` is None. The current one is always
        kept (keep >= 1). Returns the keys removed. One query finds them all, whatever the
        number of accounts; a checkpoint meanwhile only makes the current generation newer."""
        if keep < 1:
            raise StorageError("prune keeps at least the current generation (keep >= 1)")
        rows = self.conn.execute(
            "SELECT g.account_id, g.generation, g.object_key FROM fleet_archive_generations g "
            "JOIN fleet_archives a ON a.account_id = g.account_id JOIN fleet_accounts f ON f.id = g.account_id "
            "WHERE g.pruned_at IS NULL AND g.generation <= a.generation - %s "
            "AND (%s::bigint IS NULL OR g.account_id = %s) AND (%s::text IS NULL OR f.tenant = %s) "
            "ORDER BY g.account_id, g.generation", (keep, account_id, account_id, tenant, tenant)).fetchall()
        keys = [key for _, _, key in rows]
        for start in range(0, len(rows), PRUNE_BATCH):
            batch = rows[start:start + PRUNE_BATCH]
            self.objects.delete([key for _, _, key in batch])
            # Marked after the objects are gone: a prune cut short is done again next time.
            with self.conn.transaction():
                for account, generations in _by_account(batch).items():
                    self.conn.execute("UPDATE fleet_archive_generations SET pruned_at = now() "
                                      "WHERE account_id = %s AND generation = ANY(%s)", (account, generations))
        return keys

    def sweep(self, account_id: int | None = None, *, tenant: str | None = None,
              older_than: dt.timedelta = SWEEP_AFTER, now: dt.datetime | None = None) -> list[str]:
        """Remove the archive objects that no generation names (a zombie killed between its
        upload and its removal) once older than ``older_than``: a younger one may be a live
        run's upload whose pointer update is still to come. One account's, a tenant's, or
        (both None) the whole store's, read in one listing.

        Never removed, however old: an object numbered above every generation the database
        knows for its account (or of an account it does not know), and a key not named the
        way checkpoints name them. A zombie's leftover always has a number the database
        knows or will know (the run that took over checkpoints that number); one above them
        all is a database restored from an older backup, and it holds the nights since the
        backup (`archiver fleet recover` adopts it)."""
        if account_id is None and tenant is None:
            prefixes = ["archives/"]
            rows = self.conn.execute("SELECT account_id, generation, object_key FROM fleet_archive_generations")
        else:
            ids = [account_id] if account_id is not None else [row[0] for row in self.conn.execute(
                "SELECT id FROM fleet_accounts WHERE tenant = %s ORDER BY id", (tenant,))]
            prefixes = [f"archives/{account}/" for account in ids]
            rows = self.conn.execute("SELECT account_id, generation, object_key FROM fleet_archive_generations "
                                     "WHERE account_id = ANY(%s)", (ids,))
        named: set[str] = set()
        newest_known: dict[int, int] = {}
        for account, generation, key in rows:
            named.add(key)
            newest_known[account] = max(generation, newest_known.get(account, 0))
        cutoff = (now or dt.datetime.now(dt.timezone.utc)) - older_than
        orphans = []
        for prefix in prefixes:
            for key, written in self.objects.listing(prefix):
                parts = self.archive_key_parts(key)
                if key in named or written >= cutoff or parts is None:
                    continue
                account, generation, _ = parts
                if generation > newest_known.get(account, 0):
                    log.warning("sweep: %s kept: numbered above every generation the database knows of "
                                "account %s (a run's upload still to be recorded, or a generation a database "
                                "restored from a backup lacks: `archiver fleet recover` adopts those)",
                                self.objects.where(key), account)
                    continue
                orphans.append(key)
        if orphans:
            self.objects.delete(orphans)
        return orphans


def archive_key(account_id: int, generation: int, fence: int) -> str:
    """A generation's object name (under the store's prefix). The fence in it: two runs never
    write the same object, whatever happens."""
    return f"archives/{account_id}/{generation:010d}-{fence}.sqlite"


ARCHIVE_KEY = re.compile(r"archives/(?P<account>[0-9]+)/(?P<generation>[0-9]+)-(?P<fence>[0-9]+)\.sqlite")


def _by_account(rows: list[tuple[int, int, str]]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for account, generation, _ in rows:
        found.setdefault(account, []).append(generation)
    return found


def _private_folder(folder: Path) -> None:
    """Archives are personal data: their folders on a worker are the worker's user's alone
    (as archive.Archive makes its folder), so no file in them is readable by others."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)


def _read_uploaded(path: Path) -> set[str]:
    try:
        return set(path.read_text(encoding="utf-8").split())
    except FileNotFoundError:
        return set()


def _write_uploaded(path: Path, names: set[str]) -> None:
    """Replaced whole (a temporary file renamed): a crash leaves the old list, which at worst
    makes the next run ask the store about a few files again."""
    part = path.with_name(path.name + ".part")
    part.write_text("".join(f"{name}\n" for name in sorted(names)), encoding="utf-8")
    os.replace(part, path)


def _vacuum_into(source: Path, snapshot: Path) -> None:
    """A consistent, compact copy of ``source`` while other connections may write to it (a
    read transaction: in WAL mode the writer goes on)."""
    if not source.is_file():   # sqlite3 would create an empty one, and that would be uploaded
        raise StorageError(f"no archive at {source} to checkpoint")
    conn = sqlite3.connect(source, timeout=60)
    try:
        conn.execute("VACUUM INTO ?", (str(snapshot),))
    finally:
        conn.close()
    with open(snapshot, "rb+") as f:
        os.fsync(f.fileno())
