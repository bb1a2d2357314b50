"""fleet.storage and fleet.media against real parts: moto's S3 server on loopback and a
PostgreSQL started by the tests. Archives by generation (checkout from a worker's cache when
current, checkpoint = VACUUM INTO + upload + fenced pointer update; a zombie's checkpoint is
refused and its upload removed), media create-only under their sha256."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)
from s3_server import s3_bucket, s3_server  # noqa: F401  (pytest fixtures)

pytest.importorskip("boto3")
psycopg = pytest.importorskip("psycopg")

from archiver.fleet import media as fleet_media  # noqa: E402
from archiver.fleet import schema  # noqa: E402
from archiver.fleet.objects import StorageError, open_object_store  # noqa: E402
from archiver.fleet.storage import ArchiveStore, FencedOut  # noqa: E402


@pytest.fixture
def objects(s3_bucket):
    return open_object_store(s3_bucket.url("fleet/"), endpoint_url=s3_bucket.endpoint_url)


@pytest.fixture
def conn(fleet_database):
    """The fleet's tables (the queue's own are not needed here) and two accounts, ids 1 and 2."""
    with psycopg.connect(fleet_database, autocommit=True) as connection:
        for part in schema.PARTS:
            connection.execute(part.sql)
        connection.execute("INSERT INTO fleet_accounts (tenant, platform, name) VALUES ('t', 'p', 'a'), ('t', 'p', 'b')")
        yield connection


def start_run(conn, account_id=1) -> int:
    """What the ledger's run start does to the fence: raise it, and the run keeps the value."""
    return conn.execute("UPDATE fleet_accounts SET fence = fence + 1 WHERE id = %s RETURNING fence",
                        (account_id,)).fetchone()[0]


class Worker:
    """One worker's store (its own cache) checking the account out for a new run."""

    def __init__(self, conn, objects, tmp_path, name):
        self.store = ArchiveStore(conn, objects, tmp_path / f"cache-{name}", worker=name)
        self.conn, self.work = conn, tmp_path / f"work-{name}"

    def run(self, account_id=1):
        return self.store.checkout(account_id, self.work, fence=start_run(self.conn, account_id))


def add_posts(db_path, *texts):
    """Rows written the way a run writes them: WAL mode, one transaction per page."""
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS posts (text TEXT)")
    with db:
        db.executemany("INSERT INTO posts VALUES (?)", [(t,) for t in texts])
    db.close()


def posts(db_path):
    db = sqlite3.connect(db_path)
    try:
        return sorted(row[0] for row in db.execute("SELECT text FROM posts"))
    finally:
        db.close()


def test_the_store_url_is_checked():
    store = open_object_store("s3://bucket/some/prefix", endpoint_url="http://127.0.0.1:9")
    assert (store.bucket, store.prefix, store.endpoint_url) == ("bucket", "some/prefix/", "http://127.0.0.1:9")
    with pytest.raises(StorageError, match="not an s3://bucket/prefix URL"):
        open_object_store("https://bucket.example/prefix")
    with pytest.raises(StorageError, match="ARCHIVER_FLEET_STORAGE"):
        open_object_store(None)


def test_a_missing_bucket_is_named_with_what_to_do(s3_server, tmp_path):
    store = open_object_store("s3://no-such-bucket/x", endpoint_url=s3_server.endpoint_url)
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(StorageError, match=r"s3://no-such-bucket/x/y.*NoSuchBucket.*create the bucket"):
        store.put_file("x/y", tmp_path / "f")


def media_file(root, data: bytes, ext="jpg"):
    sha = hashlib.sha256(data).hexdigest()
    relative = f"{sha[:2]}/{sha[2:4]}/{sha}.{ext}"
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_bytes(data)
    return relative


def test_media_are_created_once_under_their_sha256_and_an_existing_key_is_success(objects, s3_bucket, tmp_path):
    root = tmp_path / "media"
    relative = media_file(root, b"a picture")
    assert fleet_media.put(objects, root, relative) is True
    assert fleet_media.put(objects, root, relative) is False          # there already: success, no upload
    key = f"fleet/media/{relative}"
    assert s3_bucket.client().get_object(Bucket=s3_bucket.name, Key=key)["Body"].read() == b"a picture"

    # Create-only holds even when the key appears between the look-up and the upload (another
    # worker's): the conditional PUT is refused by the store and that counts as success.
    other = media_file(root, b"another picture")
    other_key = f"fleet/media/{other}"
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=other_key, Body=b"another picture")
    objects.exists = lambda key: False   # the look-up missed it
    assert objects.put_file(other_key, root / other, create_only=True) is False


def test_a_damaged_media_file_is_never_stored_or_laid_down(objects, s3_bucket, tmp_path):
    root = tmp_path / "media"
    relative = media_file(root, b"the bytes")
    (root / relative).write_bytes(b"changed on disk")
    with pytest.raises(StorageError, match="do not match its name.*archiver verify"):
        fleet_media.put(objects, root, relative)
    assert list(objects.keys("media/")) == []

    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=f"fleet/media/{relative}", Body=b"damaged in the store")
    elsewhere = tmp_path / "restore"
    with pytest.raises(StorageError, match="damaged in the store"):
        fleet_media.fetch(objects, elsewhere, relative)
    assert not (elsewhere / relative).exists()


def test_media_folder_upload_skips_partial_downloads_and_what_was_uploaded(objects, tmp_path):
    root = tmp_path / "media"
    first = media_file(root, b"one")
    (root / ".tmp").mkdir()
    (root / ".tmp" / "x.part").write_bytes(b"half")
    assert fleet_media.upload_folder(objects, root) == {first}
    second = media_file(root, b"two", "mp4")
    assert fleet_media.upload_folder(objects, root, skip={first}) == {first, second}
    assert sorted(objects.keys("media/")) == sorted(f"fleet/media/{r}" for r in (first, second))
    restored = tmp_path / "restored"
    assert fleet_media.fetch(objects, restored, second).read_bytes() == b"two"


def test_generations_go_up_and_the_next_run_elsewhere_downloads_the_current_one(conn, objects, tmp_path):
    one = Worker(conn, objects, tmp_path, "w1")
    copy = one.run()
    assert (copy.generation, copy.fence, copy.path.exists()) == (0, 1, False)   # a new account
    add_posts(copy.path, "first")
    media = media_file(copy.folder / "media", b"photo bytes")
    assert copy.checkpoint() == 1
    add_posts(copy.path, "second")
    assert copy.checkpoint() == 2                 # a long run checkpoints more than once
    assert f"fleet/media/{media}" in set(objects.keys("media/"))   # media go up with (before) the generation

    pointer = one.store.pointer(1)
    assert pointer.generation == 2
    assert pointer.object_key == "fleet/archives/1/0000000002-1.sqlite"
    assert sorted(objects.keys("archives/")) == ["fleet/archives/1/0000000001-1.sqlite",
                                                 "fleet/archives/1/0000000002-1.sqlite"]
    assert one.store.pointer(2).generation == 0   # the other account has none yet

    theirs = Worker(conn, objects, tmp_path, "w2").run()
    assert (theirs.generation, theirs.fence, theirs.from_cache) == (2, 2, False)
    assert posts(theirs.path) == ["first", "second"]
    for private in (theirs.folder, tmp_path / "cache-w2" / "1", tmp_path / "cache-w1" / "1"):
        assert private.stat().st_mode & 0o077 == 0, private    # personal data: the worker's user's alone
    assert theirs.path.stat().st_mode & 0o077 == 0


def test_media_uploaded_by_earlier_runs_on_this_worker_are_not_asked_about_again(conn, objects, tmp_path):
    worker = Worker(conn, objects, tmp_path, "w")
    copy = worker.run()
    add_posts(copy.path, "x")
    first = media_file(copy.folder / "media", b"first night's photo")
    copy.checkpoint()
    asked = []
    real_put = objects.put_file
    objects.put_file = lambda key, path, **kw: asked.append(key) or real_put(key, path, **kw)
    again = worker.run()                                   # the next night, same worker, same folder
    second = media_file(again.folder / "media", b"second night's photo")
    again.checkpoint()
    assert [key for key in asked if "/media/" in key] == [f"fleet/media/{second}"]   # not the first one again
    assert set((again.folder / ".uploaded-media").read_text().split()) == {first, second}


def test_the_cached_copy_is_used_when_current_and_replaced_when_not(conn, objects, tmp_path):
    one, two = Worker(conn, objects, tmp_path, "w1"), Worker(conn, objects, tmp_path, "w2")
    copy = one.run()
    add_posts(copy.path, "a")
    copy.checkpoint()

    # Current: no download at all (the object could be gone and the checkout still works).
    objects.delete(list(objects.keys("archives/")))
    again = one.run()
    assert (again.from_cache, again.generation) == (True, 1)
    assert posts(again.path) == ["a"]
    add_posts(again.path, "b")
    again.checkpoint()

    # A run on another worker moves the archive on; the first one's cache is then stale.
    theirs = two.run()
    add_posts(theirs.path, "c")
    theirs.checkpoint()
    third = one.run()
    assert (third.from_cache, third.generation) == (False, 3)
    assert posts(third.path) == ["a", "b", "c"]
    assert len(list((tmp_path / "cache-w1").rglob("*.sqlite"))) == 1   # one cached generation per account


def test_a_zombie_cannot_move_the_pointer_and_its_upload_is_removed(conn, objects, tmp_path):
    zombie_worker, new_worker = Worker(conn, objects, tmp_path, "zombie"), Worker(conn, objects, tmp_path, "new")
    zombie = zombie_worker.run()
    add_posts(zombie.path, "before")
    zombie.checkpoint()

    taker = new_worker.run()    # the job moved on: a new run raised the fence
    add_posts(zombie.path, "zombie's late page")
    with pytest.raises(FencedOut, match="another run of it started after this one.*checkpoint does not count"):
        zombie.checkpoint()
    # Even when the zombie passes the early check (fenced just after it), the update decides.
    zombie_worker.store.still_holds = lambda account, fence: True
    with pytest.raises(FencedOut, match="upload of generation 2 was discarded"):
        zombie.checkpoint()
    assert sorted(objects.keys("archives/")) == ["fleet/archives/1/0000000001-1.sqlite"]
    assert new_worker.store.pointer(1).generation == 1
    with pytest.raises(FencedOut, match="does not check the archive out"):
        new_worker.store.checkout(1, tmp_path / "late", fence=zombie.fence)

    add_posts(taker.path, "taker's page")
    assert taker.checkpoint() == 2
    assert posts(Worker(conn, objects, tmp_path, "check").run().path) == ["before", "taker's page"]


def test_a_checkpoint_takes_committed_pages_only_while_the_run_writes(conn, objects, tmp_path):
    copy = Worker(conn, objects, tmp_path, "w").run()
    add_posts(copy.path, "committed")
    writer = sqlite3.connect(copy.path)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO posts VALUES ('in flight')")
    copy.checkpoint()                                  # the writer holds its transaction open
    writer.commit()
    writer.close()
    assert posts(Worker(conn, objects, tmp_path, "other").run().path) == ["committed"]


def test_a_stale_wal_beside_the_working_copy_is_not_replayed(conn, objects, tmp_path):
    worker = Worker(conn, objects, tmp_path, "w")
    copy = worker.run()
    add_posts(copy.path, "kept")
    copy.checkpoint()
    (worker.work / "archive.db-wal").write_bytes(b"left by a killed run" * 100)
    again = worker.run()
    assert not (worker.work / "archive.db-wal").exists()
    assert posts(again.path) == ["kept"]


def test_a_generation_damaged_in_the_store_is_refused_by_name(conn, objects, s3_bucket, tmp_path):
    worker = Worker(conn, objects, tmp_path, "w")
    copy = worker.run()
    add_posts(copy.path, "x")
    copy.checkpoint()
    key = worker.store.pointer(1).object_key
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=key, Body=b"not the archive")
    with pytest.raises(StorageError, match=r"account 1: generation 1 .* does not match its sha256"):
        Worker(conn, objects, tmp_path, "other").run()


def test_prune_keeps_the_newest_generations(conn, objects, tmp_path):
    worker = Worker(conn, objects, tmp_path, "w")
    copy = worker.run()
    for n in range(4):
        add_posts(copy.path, f"p{n}")
        copy.checkpoint()
    removed = worker.store.prune(1, keep=2)
    assert removed == ["fleet/archives/1/0000000001-1.sqlite", "fleet/archives/1/0000000002-1.sqlite"]
    assert sorted(objects.keys("archives/")) == ["fleet/archives/1/0000000003-1.sqlite",
                                                 "fleet/archives/1/0000000004-1.sqlite"]
    assert worker.store.prune(1, keep=2) == []
    with pytest.raises(StorageError, match="keep >= 1"):
        worker.store.prune(1, keep=0)


def test_sweep_removes_old_objects_no_generation_names(conn, objects, s3_bucket, tmp_path):
    import datetime as dt

    worker = Worker(conn, objects, tmp_path, "w")
    copy = worker.run()
    add_posts(copy.path, "x")
    copy.checkpoint()
    orphan = "fleet/archives/1/0000000001-7.sqlite"          # a zombie killed after its upload
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=orphan, Body=b"orphan")
    assert worker.store.sweep(1) == []                       # young: maybe a live run's upload
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    assert worker.store.sweep(1, now=later) == [orphan]
    assert list(objects.keys("archives/")) == ["fleet/archives/1/0000000001-1.sqlite"]


def test_workers_run_a_simulated_account_from_the_object_store_with_its_secrets_sealed(fleet_database, objects,
                                                                                      tmp_path, monkeypatch):
    """The pieces together, as a worker uses them (worker.StoredArchives): a real connector run (TikTok's simulator)
    whose tokens come from the fleet's sealed secrets, on worker A, its archive and media
    uploaded; the next night's run on worker B starts from A's generation."""
    import datetime as dt

    from archiver.fleet import accounts as fleet_accounts
    from archiver.fleet import db
    from archiver.fleet.secrets import ENV_MASTER_KEY, FleetSecretStore, generate_master_key
    from archiver.fleet.worker import FleetServices, StoredArchives
    from archiver.sim import installed_simulators

    monkeypatch.setenv(ENV_MASTER_KEY, generate_master_key())
    night = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.timezone.utc)
    with installed_simulators()["tiktok"].start_demo(posts=3, followers=4) as world, \
            db.connect(fleet_database) as connection:
        for part in schema.PARTS:
            connection.execute(part.sql)
        account, _ = fleet_accounts.add(connection, "acme", "tiktok", "one", schedule="0 3 * * *", timezone="UTC",
                                        options={"base_url": world.base_url, **world.settings})
        secrets = FleetSecretStore(connection, "acme")
        world.store_credentials(secrets, "one")
        runs = {name: FleetServices(fleet_database, StoredArchives(fleet_database, objects, tmp_path / name,
                                                                   secrets_for=lambda tenant: secrets), name=name)
                for name in ("A", "B")}
        assert runs["A"].run_job(account.id, night, full=False, job_id=None) == "ok"
        fetched_by_a = [path for _, path, _ in world.fake.log if path.startswith("/cdn/")]
        world.fake.log.clear()
        downloaded: list[str] = []
        get_file = objects.get_file
        objects.get_file = lambda key, dest: (downloaded.append(key), get_file(key, dest))[1]
        assert runs["B"].run_job(account.id, night + dt.timedelta(days=1), full=False, job_id=None) == "ok"
        # B never held the account: the files A archived count as held (the store has them), not fetched
        # from the platform again (but the owner's picture, which every run fetches, a single user's
        # too: it may have changed) nor downloaded from the store.
        fetched_by_b = [path for _, path, _ in world.fake.log if path.startswith("/cdn/")]
        assert len(fetched_by_a) == 4 and fetched_by_b == fetched_by_a[:1]
        assert downloaded == [f"fleet/archives/{account.id}/0000000001-1.sqlite"]   # the archive, no media

        assert connection.execute("SELECT generation, fence FROM fleet_archives").fetchone() == (2, 2)
    # Each run's working folder goes once its last checkpoint is in: a worker's disk does not
    # keep every account's media; the generation it uploaded stays in its cache.
    assert not (tmp_path / "A" / "runs" / str(account.id)).exists()
    assert not (tmp_path / "B" / "runs" / str(account.id)).exists()
    [cached] = (tmp_path / "B" / "cache" / str(account.id)).glob("2-*.sqlite")
    archive = sqlite3.connect(cached)
    try:
        assert archive.execute("SELECT count(*) FROM posts").fetchone()[0] == 3
        # B's run went on from A's archive: an incremental run after A's first, full one.
        assert archive.execute("SELECT status, mode FROM runs ORDER BY rowid").fetchall() == [
            ("ok", "full"), ("ok", "incremental")]
        media = [row[0] for row in archive.execute("SELECT path FROM media")]
    finally:
        archive.close()
    assert media and {f"fleet/media/{path}" for path in media} <= set(objects.keys("media/"))
    assert sorted(objects.keys("archives/")) == [f"fleet/archives/{account.id}/0000000001-1.sqlite",
                                                 f"fleet/archives/{account.id}/0000000002-2.sqlite"]


def checkpoints(worker, account_id, count):
    copy = worker.run(account_id)
    for n in range(count):
        add_posts(copy.path, f"p{n}")
        copy.checkpoint()


def test_prune_and_sweep_over_a_tenant_or_the_whole_store(conn, objects, s3_bucket, tmp_path):
    import datetime as dt

    conn.execute("INSERT INTO fleet_accounts (tenant, platform, name) VALUES ('u', 'p', 'c')")   # id 3
    worker = Worker(conn, objects, tmp_path, "w")
    for account in (1, 2, 3):
        checkpoints(worker, account, 3)
    assert worker.store.prune(keep=2, tenant="u") == ["fleet/archives/3/0000000001-1.sqlite"]
    assert worker.store.prune(keep=1) == [f"fleet/archives/{a}/{g:010d}-1.sqlite" for a in (1, 2) for g in (1, 2)] + \
        ["fleet/archives/3/0000000002-1.sqlite"]
    assert sorted(objects.keys("archives/")) == [f"fleet/archives/{a}/0000000003-1.sqlite" for a in (1, 2, 3)]
    assert conn.execute("SELECT count(*) FROM fleet_archive_generations WHERE pruned_at IS NULL").fetchone()[0] == 3

    orphans = ["fleet/archives/1/0000000003-9.sqlite", "fleet/archives/3/0000000003-9.sqlite"]
    for key in orphans:
        s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=key, Body=b"orphan")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    assert worker.store.sweep(tenant="u", now=later) == orphans[1:]
    assert worker.store.sweep(now=later) == orphans[:1]          # the whole store, one listing
    assert worker.store.sweep(now=later) == []
    assert [posts(Worker(conn, objects, tmp_path, "reader").run(a).path) for a in (1, 3)] == [["p0", "p1", "p2"]] * 2


def test_the_daily_retention_job_prunes_and_sweeps_once_a_day_on_the_control_queue(fleet_database, objects, tmp_path):
    """Two control workers defer the day's retention job: one job (as the tick); a worker of
    the control queue runs it: old generations pruned, an old orphan swept."""
    import asyncio
    import datetime as dt

    from procrastinate.periodic import PeriodicDeferrer

    from archiver.fleet.tasks import CONTROL_QUEUE, RETENTION_TASK, make_app, run_retention
    from archiver.fleet.worker import FleetServices, LocalArchives, StoredArchives, run_worker

    with psycopg.connect(fleet_database, autocommit=True) as connection:
        schema.apply(connection)   # the queue's tables too
        connection.execute("INSERT INTO fleet_accounts (tenant, platform, name) VALUES ('t', 'p', 'a')")
        checkpoints(Worker(connection, objects, tmp_path, "w"), 1, 4)
    objects.put_file(objects.key("archives/1/0000000004-9.sqlite"), tmp_path / "work-w" / "archive.db")
    # The day's fire time two days from now, so that the orphan uploaded just now is old by then.
    day_after = int((dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2, hours=1)).timestamp())

    async def defer_retention(app) -> int:
        async with app.open_async():
            deferrer = PeriodicDeferrer(app.periodic_registry, max_delay=10 ** 9)
            due = [(task, ts) for task, ts in deferrer.get_previous_tasks(at=day_after) if task.periodic_id == "retention"]
            await deferrer.defer_jobs(due)
            return due[0][1]

    stamps = {asyncio.run(defer_retention(make_app(fleet_database))) for _ in range(2)}   # two control workers
    assert len(stamps) == 1 and dt.datetime.fromtimestamp(stamps.pop(), dt.timezone.utc).strftime("%H:%M") == "13:40"
    with psycopg.connect(fleet_database) as connection:
        jobs = connection.execute("SELECT queue_name, status FROM procrastinate_jobs WHERE task_name = %s",
                                  [RETENTION_TASK]).fetchall()
    assert jobs == [(CONTROL_QUEUE, "todo")]
    services = FleetServices(fleet_database, StoredArchives(fleet_database, objects, tmp_path / "worker",
                                                            secrets_for=lambda tenant: None), keep_generations=3)
    run_worker(services, queues=[CONTROL_QUEUE], wait=False, install_signal_handlers=False)
    with psycopg.connect(fleet_database) as connection:
        assert connection.execute("SELECT status FROM procrastinate_jobs WHERE task_name = %s",
                                  [RETENTION_TASK]).fetchall() == [("succeeded",)]
    assert sorted(objects.keys("archives/")) == [f"fleet/archives/1/{g:010d}-1.sqlite" for g in (2, 3, 4)]

    later = dt.datetime.fromtimestamp(day_after, dt.timezone.utc)
    services.keep_generations = 0
    assert run_retention(services, later) == "0 old generations pruned (keeping all), 0 orphaned objects swept"
    # A control worker given no storage, in a fleet whose archives are in one: it says so, not "nothing to do".
    assert "no object storage" in run_retention(FleetServices(fleet_database, LocalArchives(tmp_path)), later)


def test_an_archive_taken_back_to_an_older_generation_goes_on_from_there(conn, objects, tmp_path):
    """Retention's restore (docs/fleet.md): the pointer set back to a kept generation; the next
    checkpoint gets a number no generation had (the newer ones still exist), not the old one's + 1."""
    worker = Worker(conn, objects, tmp_path, "w")
    checkpoints(worker, 1, 3)
    conn.execute("UPDATE fleet_archives a SET generation = g.generation, object_key = g.object_key, "
                 "sha256 = g.sha256, size = g.size, updated_at = now() FROM fleet_archive_generations g "
                 "WHERE g.account_id = a.account_id AND a.account_id = 1 AND g.generation = 1 AND g.pruned_at IS NULL")
    copy = worker.run()
    assert (copy.generation, posts(copy.path)) == (1, ["p0"])
    add_posts(copy.path, "after the restore")
    assert copy.checkpoint() == 4
    assert copy.checkpoint() == 5
    assert worker.store.pointer(1).object_key == "fleet/archives/1/0000000005-2.sqlite"
    assert posts(Worker(conn, objects, tmp_path, "other").run().path) == ["after the restore", "p0"]
    assert len(list(objects.keys("archives/"))) == 5          # the generations left behind are kept (prune's)


# -- a database restored from an older backup (docs/fleet.md, Backup and restore) ---------------

BACKED_UP = ("fleet_archives", "fleet_archive_generations", "fleet_runs")


def backup(conn):
    """What a database backup holds of the archives: pointers, generations, fences (and the ledger)."""
    return {table: conn.execute(f"SELECT * FROM {table}").fetchall() for table in BACKED_UP} | {
        "fences": conn.execute("SELECT id, fence FROM fleet_accounts").fetchall()}


def restore(conn, saved):
    for table in BACKED_UP:
        conn.execute(f"DELETE FROM {table}")
        for row in saved[table]:
            conn.execute(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(row))})", row)
    for account, fence in saved["fences"]:
        conn.execute("UPDATE fleet_accounts SET fence = %s WHERE id = %s", (fence, account))


def night(worker, n, account_id=1):
    copy = worker.run(account_id)
    add_posts(copy.path, f"night {n}")
    return copy.checkpoint()


def test_sweep_keeps_objects_newer_than_any_generation_the_database_knows(conn, objects, s3_bucket, tmp_path):
    import datetime as dt

    worker = Worker(conn, objects, tmp_path, "w")
    night(worker, 1)
    zombie = "fleet/archives/1/0000000001-0.sqlite"          # a known number: a zombie's leftover
    kept = ["fleet/archives/1/0000000002-5.sqlite",           # above the newest generation known
            "fleet/archives/2/0000000001-1.sqlite",           # an account without any generation yet
            "fleet/archives/9/0000000001-1.sqlite",           # an account the database lacks
            "fleet/archives/1/notes.txt"]                     # not a generation's name
    for key in [zombie, *kept]:
        s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=key, Body=b"x")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    assert worker.store.sweep(2, now=later) == []
    assert worker.store.sweep(now=later) == [zombie]
    assert sorted(objects.keys("archives/")) == sorted(["fleet/archives/1/0000000001-1.sqlite", *kept])


def test_a_database_restored_from_an_older_backup_loses_no_night(conn, objects, tmp_path):
    import datetime as dt

    from archiver.fleet.recover import recover

    worker = Worker(conn, objects, tmp_path, "w")
    night(worker, 1)
    night(worker, 2)
    saved = backup(conn)
    night(worker, 3)
    assert night(worker, 4) == 4
    restore(conn, saved)                       # the database is back at night 2, the store is not
    assert worker.store.pointer(1).generation == 2

    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    assert worker.store.sweep(now=later) == []           # nights 3 and 4 are nobody's orphans
    # A run before `recover` does not start: it would number its generations among nights 3 and 4.
    with pytest.raises(StorageError, match=r"holds s3://\S+/archives/1/0000000003-3.sqlite \(generation 3, fence 3\)"
                                           r".*newest generation is 2, this run's fence 3.*archiver fleet recover"):
        worker.run()
    for _ in range(2):   # fences 4 and 5: night 3's fence is no run's of this ledger, night 4 is two above
        with pytest.raises(StorageError, match=r"which no run of this database wrote"):
            worker.run()
    assert len(list(objects.keys("archives/"))) == 4

    dry = recover(worker.store, dry_run=True)
    assert "account 1 t/p:a: would adopt generation 4" in "\n".join(dry.lines())
    assert worker.store.pointer(1).generation == 2

    done = recover(worker.store)
    [found] = done.accounts
    assert (found.adopted.generation, found.recorded, found.fence_before, found.fence_after) == (4, [3, 4], 5, 6)
    assert "fence 5 -> 6" in done.lines()[0] and done.refused == 0
    assert worker.store.pointer(1).object_key == "fleet/archives/1/0000000004-4.sqlite"
    assert recover(worker.store).accounts == []          # again: nothing to do

    copy = worker.run()                                  # the next night goes on from night 4
    assert (copy.fence, posts(copy.path)) == (7, ["night 1", "night 2", "night 3", "night 4"])
    assert copy.checkpoint() == 5
    assert worker.store.pointer(1).object_key == "fleet/archives/1/0000000005-7.sqlite"


def test_a_checkpoint_never_overwrites_an_object(conn, objects, s3_bucket, tmp_path):
    worker = Worker(conn, objects, tmp_path, "w")
    copy = worker.run()
    add_posts(copy.path, "mine")
    key = "fleet/archives/1/0000000001-1.sqlite"           # there already, however it came
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=key, Body=b"already there")
    with pytest.raises(StorageError, match=r"s3://\S+/fleet/archives/1/0000000001-1.sqlite exists already, and was "
                                           r"left as it is.*archiver fleet recover"):
        copy.checkpoint()
    assert s3_bucket.client().get_object(Bucket=s3_bucket.name, Key=key)["Body"].read() == b"already there"
    assert worker.store.pointer(1).generation == 0


def test_recover_refuses_a_damaged_generation_and_an_object_older_than_its_account(fleet_database, conn, objects,
                                                                                   s3_bucket, tmp_path):
    from click.testing import CliRunner

    from archiver.cli.main import main

    worker = Worker(conn, objects, tmp_path, "w")
    night(worker, 1)
    saved = backup(conn)
    night(worker, 2)
    night(worker, 3)
    restore(conn, saved)
    client = s3_bucket.client()
    client.put_object(Bucket=s3_bucket.name, Key="fleet/archives/1/0000000003-3.sqlite", Body=b"damaged")
    client.put_object(Bucket=s3_bucket.name, Key="fleet/archives/9/0000000001-1.sqlite", Body=b"x")  # no account 9
    client.put_object(Bucket=s3_bucket.name, Key="fleet/archives/2/0000000001-1.sqlite", Body=b"x")
    conn.execute("UPDATE fleet_accounts SET created_at = now() + interval '1 day' WHERE id = 2")   # added later

    def cli(*args):
        result = CliRunner().invoke(main, ["fleet", "recover", "--database", fleet_database, "--storage",
                                           s3_bucket.url("fleet/"), "--archive", str(tmp_path), *args],
                                    env={"ARCHIVER_FLEET_STORAGE_ENDPOINT": s3_bucket.endpoint_url},
                                    catch_exceptions=False)
        return result.exit_code, result.output

    code, out = cli()
    assert code == 1, out
    assert "account 1 t/p:a: s3://" in out and "0000000003-3.sqlite refused: not a sound SQLite archive" in out
    assert "account 1 t/p:a: adopt generation 2 (fleet/archives/1/0000000002-2.sqlite" in out
    assert "0000000001-1.sqlite refused: written" in out and "before the account was added" in out
    assert "account 9: 1 objects in the store, but the database has no account 9" in out
    assert out.rstrip().endswith("1 accounts recovered (1 generations), 2 fences raised, 2 objects refused (left in "
                                 "the store: an account's runs do not start while one newer than its generations "
                                 "is there; look at them, then delete them by hand)"), out
    assert worker.store.pointer(1).generation == 2 and worker.store.pointer(2).generation == 0
    new = conn.execute("INSERT INTO fleet_accounts (tenant, platform, name) VALUES ('t', 'p', 'c') RETURNING id")
    assert new.fetchone()[0] == 10                        # never 9: its objects are not the new account's
    # The damaged night stays in the store: the account's runs do not start until someone looked.
    with pytest.raises(StorageError, match=r"0000000003-3.sqlite \(generation 3, fence 3\), which no run"):
        worker.run()
    objects.delete(["fleet/archives/1/0000000003-3.sqlite"])
    assert posts(worker.run().path) == ["night 1", "night 2"]


def test_a_single_night_the_database_lacks_is_told_from_a_zombies_upload_by_the_ledger(conn, objects, s3_bucket,
                                                                                      tmp_path):
    """One generation above the newest known is what a zombie killed after its upload leaves too;
    the zombie's run is in the ledger, started before its upload. A lost night's fence, given
    again by the restored database, belongs to a run started after the night was written."""
    store = ArchiveStore(conn, objects, tmp_path / "cache", worker="w")

    def ledger_run(started="now()"):
        """A run start as the ledger makes it: the fence raised and the run's row, with its fence."""
        fence = start_run(conn)
        conn.execute(f"INSERT INTO fleet_runs (account_id, scheduled_for, fence, worker, status, started_at) "
                     f"VALUES (1, now(), %s, 'w', 'failed', {started})", (fence,))
        return fence

    def checkout(started="now()"):
        return store.checkout(1, tmp_path / "work", fence=ledger_run(started))

    copy = checkout()
    add_posts(copy.path, "night 1")
    copy.checkpoint()
    ledger_run()                                                      # fence 2: a run about to be a zombie
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="fleet/archives/1/0000000002-2.sqlite", Body=b"z")
    copy = checkout()                                                 # fence 3 takes over: the zombie's is no sign
    add_posts(copy.path, "night 2")
    assert copy.checkpoint() == 2
    saved = backup(conn)
    copy = checkout()                                                 # fence 4: night 3, lost by the restore
    add_posts(copy.path, "night 3")
    assert copy.checkpoint() == 3
    restore(conn, saved)

    # The runs after the restore start an hour later (the restore takes a while).
    with pytest.raises(StorageError, match=r"0000000003-4.sqlite \(generation 3, fence 4\), which no run"):
        checkout("now() + interval '1 hour'")                        # fence 4 again
    with pytest.raises(StorageError, match=r"0000000003-4.sqlite \(generation 3, fence 4\), which no run"):
        checkout("now() + interval '1 hour'")                        # fence 5: fence 4's run started after it
    from archiver.fleet.recover import recover

    assert recover(store).accounts[0].adopted.generation == 3
    assert posts(checkout().path) == ["night 1", "night 2", "night 3"]


def test_a_prune_whose_deletes_the_store_refuses_marks_nothing_pruned(conn, objects, tmp_path):
    """S3's DeleteObjects answers 200 and lists the keys it refused one by one (a policy, a
    lock): those objects are still there, so their generations must not be marked pruned."""
    worker = Worker(conn, objects, tmp_path, "w")
    checkpoints(worker, 1, 3)
    boto = objects.client

    class RefusingDeletes:
        def __getattr__(self, name):
            return getattr(boto, name)

        def delete_objects(self, Bucket, Delete):   # noqa: N803 (boto3's names)
            return {"Errors": [{"Key": item["Key"], "Code": "AccessDenied", "Message": "Access Denied"}
                               for item in Delete["Objects"]]}

    objects._client = RefusingDeletes()
    with pytest.raises(StorageError, match=r"could not delete s3://.*0000000001-1\.sqlite.*AccessDenied"):
        worker.store.prune(1, keep=1)
    objects._client = boto
    assert conn.execute("SELECT count(*) FROM fleet_archive_generations WHERE pruned_at IS NOT NULL").fetchone() == (0,)
    assert worker.store.prune(1, keep=1) == ["fleet/archives/1/0000000001-1.sqlite", "fleet/archives/1/0000000002-1.sqlite"]


def test_recover_never_adopts_a_cut_off_runs_upload_over_a_later_night(conn, objects, s3_bucket, tmp_path,
                                                                        monkeypatch):
    """A zombie numbers its upload above the night the run that took over checkpointed, and may
    be killed before it removes it. Live runs' generations have fences that never go down: one
    above a generation of a higher fence is a cut-off run's, whatever its number."""
    import datetime as dt

    from archiver.fleet.recover import recover

    worker = Worker(conn, objects, tmp_path, "w")
    night(worker, 1)                                      # generation 1, fence 1
    saved = backup(conn)
    zombie_worker = Worker(conn, objects, tmp_path, "zombie")
    zombie = zombie_worker.run()                          # fence 2, from generation 1; then cut off
    assert night(worker, 2) == 2                          # fence 3 takes over: generation 2
    add_posts(zombie.path, "zombie")
    with monkeypatch.context() as patch:                  # it passes the early check, is fenced out, and
        patch.setattr(zombie_worker.store, "still_holds", lambda account, fence: True)
        patch.setattr(objects, "delete", lambda keys: None)   # is killed before it removes its upload
        with pytest.raises(FencedOut, match="upload of generation 3 was discarded"):
            zombie.checkpoint()
    leftover = "fleet/archives/1/0000000003-2.sqlite"
    assert leftover in objects.keys("archives/")

    # Without a restore (recover run over the whole fleet): nothing adopted, nothing written.
    found = recover(worker.store)
    assert [account.adopted for account in found.accounts] == [None] and found.refused == 0
    assert "0000000003-2.sqlite not adopted: a cut-off run's upload (fence 2, below fence 3 of generation 2" in (
        "\n".join(found.lines()))
    assert worker.store.pointer(1).object_key == "fleet/archives/1/0000000002-3.sqlite"

    restore(conn, saved)                                  # back at night 1: nights 2 and the leftover unknown
    found = recover(worker.store)
    [account] = found.accounts
    assert (account.adopted.key, account.recorded, account.fence_after) == (
        "fleet/archives/1/0000000002-3.sqlite", [2], 4)
    assert [obj.key for obj in account.dropped] == [leftover] and found.refused == 0
    copy = worker.run()                                   # the leftover does not keep the runs from starting
    assert posts(copy.path) == ["night 1", "night 2"]
    add_posts(copy.path, "night 3")
    assert copy.checkpoint() == 3                         # its number is the database's now: the sweep's
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    assert worker.store.sweep(now=later) == [leftover]
    assert posts(Worker(conn, objects, tmp_path, "check").run().path) == ["night 1", "night 2", "night 3"]
