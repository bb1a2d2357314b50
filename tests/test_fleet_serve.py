"""`archiver serve --tenant T` with real parts: a PostgreSQL started by the tests holds the
fleet's accounts of two tenants, a real Datasette process on loopback serves the latest
archive of each account of one tenant — from a folder of archives as `archiver worker
--archives` keeps them, and from object storage by generation (moto's S3 server) — and
nothing of the other tenant's."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)
from png_pixels import make_png
from s3_server import s3_bucket, s3_server  # noqa: F401  (pytest fixtures)
from serve_process import serving

pytest.importorskip("boto3")
psycopg = pytest.importorskip("psycopg")

from archiver.archive import Archive  # noqa: E402
from archiver.fleet import schema  # noqa: E402
from archiver.fleet.objects import StorageError, open_object_store  # noqa: E402
from archiver.fleet.storage import ArchiveStore  # noqa: E402

NOW = "2026-12-01T12:00:00Z"
# (tenant, platform, name): acme has two accounts and one never archived; rival has one.
ACCOUNTS = [("acme", "tiktok", "alice"), ("acme", "x", "bob"), ("acme", "tiktok", "newcomer"),
            ("rival", "tiktok", "carol")]


def picture(colour) -> tuple[bytes, str]:
    data = make_png(4, 4, colour)
    sha = hashlib.sha256(data).hexdigest()
    return data, f"{sha[:2]}/{sha[2:4]}/{sha}.png"


def write_archive(folder: Path, platform: str, name: str) -> str:
    """An archive with one post of the account (its text names it) and one picture;
    returns the picture's media path."""
    archive = Archive(folder)
    db = archive.db
    data, path = picture({"alice": (255, 0, 0), "bob": (0, 255, 0)}.get(name, (0, 0, 255)))
    account_id = f"{platform}:{name}"
    provenance = {"sources": '["api"]', "first_seen_at": NOW, "last_seen_at": NOW}

    def insert(table: str, **row):
        db.execute(f"insert into {table} ({', '.join(row)}) values ({', '.join('?' for _ in row)})",
                   list(row.values()))

    insert("accounts", account_id=account_id, platform=platform, name=name, username=name, raw="{}", **provenance)
    insert("posts", platform=platform, post_id=f"{name}-1", account_id=account_id, kind="text",
           created_at=NOW, text=f"post of {name}", raw="{}", **provenance)
    (archive.media_root / path).parent.mkdir(parents=True)
    (archive.media_root / path).write_bytes(data)
    insert("media", sha256=Path(path).stem, path=path, mime="image/png", size=len(data), first_seen_at=NOW)
    insert("owned_contacts", account_id="mailchimp:news", contact_id="fan@example.org", platform="mailchimp",
           channel="newsletter", email="fan@example.org", status="subscribed", as_of=NOW, **provenance)
    archive.close()
    return path


@pytest.fixture
def fleet(fleet_database):
    """The fleet's tables and ACCOUNTS; yields (url, {(tenant, platform, name): id})."""
    with psycopg.connect(fleet_database, autocommit=True) as connection:
        for part in schema.PARTS:
            connection.execute(part.sql)
        ids = {}
        for tenant, platform, name in ACCOUNTS:
            ids[(tenant, platform, name)] = connection.execute(
                "INSERT INTO fleet_accounts (tenant, platform, name) VALUES (%s, %s, %s) RETURNING id",
                (tenant, platform, name)).fetchone()[0]
    yield fleet_database, ids


def get(base: str, path: str) -> httpx.Response:
    return httpx.get(base + path, timeout=10)


def posts(base: str, database: str) -> list[str]:
    response = get(base, f"/{database}/posts.json?_shape=array")
    assert response.status_code == 200, response.text
    return [row["text"] for row in response.json()]


def assert_serves_acme_only(base: str, media: dict[str, str]) -> None:
    databases = get(base, "/.json").json()
    assert sorted(databases) == ["tiktok-alice", "x-bob"]   # no rival, no in-memory database
    assert posts(base, "tiktok-alice") == ["post of alice"]
    assert posts(base, "x-bob") == ["post of bob"]
    page = get(base, "/x-bob/posts/x,bob-1")   # a post's page: the archive's own template
    assert page.status_code == 200 and "archiver-post-media" in page.text
    # The other tenant's account is not there: not its database, not its pictures (not even
    # through an account of this tenant: the store's media are shared by sha256).
    for path in ("/tiktok-carol/posts.json", f"/media/tiktok-carol/{media['carol']}",
                 f"/media/tiktok-alice/{media['carol']}"):
        assert get(base, path).status_code == 404, path
    # Each account's pictures, and the owned contacts unreadable even through SQL.
    for database, name in (("tiktok-alice", "alice"), ("x-bob", "bob")):
        response = get(base, f"/media/{database}/{media[name]}")
        assert response.status_code == 200 and hashlib.sha256(response.content).hexdigest() in media[name]
    # Not the database file either (Datasette offers an immutable one for download by default).
    for database in ("tiktok-alice", "x-bob"):
        assert get(base, f"/{database}.db").status_code in (403, 404), database
    rows = get(base, "/tiktok-alice.json?sql=select+email+from+owned_contacts&_shape=array").json()
    assert rows == [{"email": None}]
    assert get(base, "/tiktok-alice/posts.json").headers["content-security-policy"]
    assert httpx.get(base + "/tiktok-alice/posts.json", headers={"Host": "evil.example"}, timeout=10).status_code == 400


def test_serves_a_tenants_archives_from_the_workers_folder(fleet, tmp_path):
    url, _ = fleet
    archives = tmp_path / "archives"
    media = {name: write_archive(archives / tenant / platform / name, platform, name)
             for tenant, platform, name in ACCOUNTS if name != "newcomer"}

    with serving(None, args=["--archive", str(tmp_path / "home"), "--tenant", "acme", "--database", url,
                             "--archives", str(archives), "--refresh-seconds", "0.2"]) as base:
        assert_serves_acme_only(base, media)
        # A folder archive is live: what a worker writes meanwhile shows.
        db = sqlite3.connect(archives / "acme" / "x" / "bob" / "archive.db")
        with db:
            db.execute("update posts set text = 'post of bob, edited'")
        db.close()
        assert posts(base, "x-bob") == ["post of bob, edited"]
        # The newcomer's first run wrote its archive: the next refresh serves it too.
        write_archive(archives / "acme" / "tiktok" / "newcomer", "tiktok", "newcomer")
        deadline = time.monotonic() + 30
        while "tiktok-newcomer" not in get(base, "/.json").json():
            assert time.monotonic() < deadline, "the new archive was not served within 30 s"
            time.sleep(0.1)
        assert posts(base, "tiktok-newcomer") == ["post of newcomer"]
        assert posts(base, "x-bob") == ["post of bob, edited"]


def test_serves_the_current_generations_from_object_storage_read_only(fleet, s3_bucket, tmp_path):
    url, ids = fleet
    objects = open_object_store(s3_bucket.url("fleet/"), endpoint_url=s3_bucket.endpoint_url)
    media = {}
    with psycopg.connect(url, autocommit=True) as connection:
        store = ArchiveStore(connection, objects, tmp_path / "worker-cache", worker="test")
        for tenant, platform, name in ACCOUNTS:
            if name == "newcomer":
                continue
            copy = store.checkout(ids[(tenant, platform, name)], tmp_path / "work" / name, fence=0)
            media[name] = write_archive(copy.folder, platform, name)
            copy.checkpoint()                       # generation 1
            if name == "alice":                     # a second generation: the newest is served
                db = sqlite3.connect(copy.path)
                with db:
                    db.execute("update posts set text = 'post of alice'")   # same text, generation 2
                db.close()
                assert copy.checkpoint() == 2
        before = connection.execute("SELECT account_id, generation, fence FROM fleet_archives "
                                    "ORDER BY account_id").fetchall()
        fences = connection.execute("SELECT id, fence FROM fleet_accounts ORDER BY id").fetchall()

    env = {"ARCHIVER_FLEET_STORAGE_ENDPOINT": s3_bucket.endpoint_url}
    cache = tmp_path / "serve-archives"
    with serving(None, env=env, args=["--archive", str(tmp_path / "home"), "--tenant", "acme", "--database", url,
                                      "--archives", str(cache), "--storage", s3_bucket.url("fleet/")]) as base:
        assert_serves_acme_only(base, media)
        title = get(base, "/tiktok-alice.json").json()
        assert "generation 2" in str(title) or "generation 2" in get(base, "/tiktok-alice").text

    # Read only: the pointers and fences are as they were; only acme's generations were fetched.
    with psycopg.connect(url, autocommit=True) as connection:
        assert connection.execute("SELECT account_id, generation, fence FROM fleet_archives "
                                  "ORDER BY account_id").fetchall() == before
        assert connection.execute("SELECT id, fence FROM fleet_accounts ORDER BY id").fetchall() == fences
    fetched = sorted(p.name for p in (cache / "serve" / "acme").iterdir() if p.is_dir())
    assert fetched == sorted(str(ids[("acme", platform, name)]) for platform, name in (("tiktok", "alice"), ("x", "bob")))


def test_a_tenant_without_accounts_or_archives_is_an_error(fleet, tmp_path):
    from click.testing import CliRunner

    from archiver.cli.main import main

    url, _ = fleet
    runner = CliRunner()
    home = ["--archive", str(tmp_path / "home")]
    result = runner.invoke(main, ["serve", *home, "--tenant", "nobody", "--database", url])
    assert result.exit_code != 0 and "tenant 'nobody' has no accounts" in result.output
    result = runner.invoke(main, ["serve", *home, "--tenant", "acme", "--database", url,
                                  "--archives", str(tmp_path / "empty")])
    assert result.exit_code != 0 and "none of its 3 accounts has an archive yet" in result.output
    assert "acme/tiktok:newcomer: no archive yet" in result.output
    result = runner.invoke(main, ["serve", *home, "--storage", "s3://b/p"])
    assert result.exit_code != 0 and "go with --tenant" in result.output


def test_only_media_names_are_fetched():
    from archiver.views.serve import is_media_name

    good = "ab/cd/" + "ab" * 32
    assert is_media_name(good) and is_media_name(good + ".png")
    for bad in ("../" + good, good + "/../x", "ab/cd/" + "AB" * 32, "ab/cd/x.png", "/ab/cd/" + "ab" * 32,
                good + ".png.part", good.replace("/", "\\")):
        assert not is_media_name(bad), bad


def test_a_refresh_serves_new_generations_and_accounts_and_cleans_the_cache(fleet, s3_bucket, tmp_path):
    """In-process (no server): what `serve --tenant` does every --refresh-seconds. New
    generations and accounts are served, an account moved to another tenant is not; the cache
    keeps what is served and what was served just before, then lets go; a generation damaged in
    the store is never served (the old one stays)."""
    from archiver.cli.look import served_archives
    from archiver.fleet.browse import TenantView
    from archiver.fleet.db import FleetError
    from archiver.views.serve import ChangingArchives

    url, ids = fleet
    objects = open_object_store(s3_bucket.url("fleet/"), endpoint_url=s3_bucket.endpoint_url)
    connection = psycopg.connect(url, autocommit=True)
    store = ArchiveStore(connection, objects, tmp_path / "worker-cache", worker="test")
    copies = {}

    def upload(name, text=None):
        tenant, platform = next((t, p) for t, p, n in ACCOUNTS if n == name)
        if name not in copies:
            copies[name] = store.checkout(ids[(tenant, platform, name)], tmp_path / "work" / name, fence=0)
            write_archive(copies[name].folder, platform, name)
        if text:
            db = sqlite3.connect(copies[name].path)
            with db:
                db.execute("update posts set text = ?", [text])
            db.close()
        return copies[name].checkpoint()

    def served_posts(app) -> dict[str, list[str]]:
        """{database: its posts' texts} of what the app serves now (in-process, no server)."""
        async def ask():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                found = {}
                for database in (await client.get("/.json")).json():
                    response = await client.get(f"/{database}/posts.json?_shape=array")
                    found[database] = [row["text"] for row in response.json()]
                return found
        return asyncio.run(ask())

    upload("alice")
    upload("bob")
    view = TenantView(url, "acme", tmp_path / "serve-folder", objects)
    with pytest.raises(FleetError, match="another `archiver serve` uses .* its own --archives"):
        TenantView(url, "acme", tmp_path / "serve-folder", objects)
    app = ChangingArchives(served_archives(view.archives(must_exist=True)), title="acme", description="",
                           template_dir=tmp_path)
    assert served_posts(app) == {"tiktok-alice": ["post of alice"], "x-bob": ["post of bob"]}
    assert not app.update(served_archives(view.archives()))   # nothing new: the same Datasette

    upload("alice", "alice, generation 2")
    upload("newcomer")
    connection.execute("UPDATE fleet_accounts SET tenant = 'rival' WHERE id = %s", [ids[("acme", "x", "bob")]])
    assert app.update(served_archives(view.archives()))
    assert served_posts(app) == {"tiktok-alice": ["alice, generation 2"], "tiktok-newcomer": ["post of newcomer"]}
    cache = tmp_path / "serve-folder" / "serve" / "acme"
    alice, bob = (cache / str(ids[("acme", "tiktok", "alice")]), cache / str(ids[("acme", "x", "bob")]))
    assert len(list(alice.glob("*.sqlite"))) == 2 and bob.is_dir()   # the last answer's files stay one more round

    # Generation 3 of alice is damaged in the store: refused, and generation 2 stays served.
    upload("alice", "alice, generation 3")
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=store.pointer(ids[("acme", "tiktok", "alice")]).object_key,
                                  Body=b"half a file")
    with pytest.raises(StorageError, match="does not match its sha256"):
        view.archives()
    assert served_posts(app)["tiktok-alice"] == ["alice, generation 2"]
    connection.execute("UPDATE fleet_archives SET generation = 2, object_key = g.object_key, sha256 = g.sha256, "
                       "size = g.size FROM fleet_archive_generations g WHERE g.account_id = fleet_archives.account_id "
                       "AND g.generation = 2 AND fleet_archives.account_id = %s", [ids[("acme", "tiktok", "alice")]])
    assert not app.update(served_archives(view.archives()))
    assert [p.name.split("-")[0] for p in alice.glob("*.sqlite")] == ["2"] and not bob.exists()
    assert not list(cache.rglob("*.loading"))
    connection.close()
