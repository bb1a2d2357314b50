"""Boards, sections and a post's outside link, stored on a real archive file.

What is proved, on archive rows:
- a page of Collection records (a board with its cover, a section of it) and a Post with a
  link and its collections go through the real runner, downloads and writer: the cover is
  a file in media/ named by collections.cover_sha256, the post's link is posts.link, its
  memberships are collection_posts rows;
- a second run that moves the Pin to another board keeps the old membership with its
  last_seen_at and adds the new one; a renamed board and a replaced link keep their old
  values (collection_versions, post_versions); the same cover link is not fetched again;
  Datasette (`archiver serve`) shows the three tables;
- an export only fills blanks: it never makes an old board look current for a post the
  API placed, and a provisional post's memberships follow it when the API names it;
- an archive made before these tables gains them (and posts.link) when opened.
"""

from __future__ import annotations

import itertools
import json

import httpx
import pytest

from archiver.archive import Archive
from archiver.archive.writer import ArchiveWriter
from archiver.config import AccountConfig
from archiver.connector import Connector
from archiver.records import Collection, MediaRef, Page, Post
from archiver.secrets import open_secret_store
from archiver.sync.runner import Runner

from archive_rows import one, rows

CDN = "http://127.0.0.1:9"      # never contacted: MockTransport answers in-process
COVER = b"\x89PNG\r\n\x1a\n a board cover"


@pytest.fixture(autouse=True)
def ticking_clock(monkeypatch):
    """Rows are stamped to the second; these runs follow each other within one."""
    import datetime as dt

    ticks = itertools.count()
    start = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)

    def now():
        return (start + dt.timedelta(hours=next(ticks))).strftime("%Y-%m-%dT%H:%M:%SZ")

    monkeypatch.setattr("archiver.archive.writer.now_utc", now)


class _BoardsConnector(Connector):
    """Yields what ``world`` holds now: boards (with covers), a section, and one Pin."""

    name, title, default_base_url = "pinterest", "Pinterest", CDN

    def __init__(self, *args, world: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.world = world

    def pages(self, ctx):
        w = self.world
        boards = [Collection("b1", w["b1_title"], url="https://www.pinterest.com/alice/roofs/",
                             visibility="public", post_count=1, raw={"id": "b1", "privacy": "PUBLIC"},
                             cover=MediaRef(f"{CDN}/covers/b1.png?sig=secret", "cover")),
                  Collection("b2", "Gardens", visibility="private", raw={"id": "b2", "privacy": "SECRET"}),
                  Collection("s1", "Red roofs", kind="section", parent_native_id="b1", raw={"id": "s1"})]
        yield Page("boards", boards, state={"boards": "done"})
        pin = Post("p1", "2026-02-01T10:00:00Z", kind="image", title="Roof", link=w["link"],
                   collections=w["pin_in"], raw={"id": "p1", "link": w["link"], "board_id": w["pin_in"][0]})
        yield Page("pins", [pin], state={"pins": "done"})


def test_boards_sections_and_a_pin_moved_to_another_board(tmp_path):
    covers: list[str] = []

    def cdn(request: httpx.Request) -> httpx.Response:
        covers.append(str(request.url))
        return httpx.Response(200, content=COVER, headers={"Content-Type": "image/png"})

    world = {"b1_title": "Roofs", "link": "https://roofs.example/red", "pin_in": ["b1", "s1"]}
    account = AccountConfig(name="main", platform="pinterest")
    connector = _BoardsConnector(account, open_secret_store("memory"), transport=httpx.MockTransport(cdn), world=world)
    archive = Archive(tmp_path / "archive")

    def run() -> dict:
        result = Runner(archive, connector).run(connector.pages, kind="export", mode="incremental")
        assert result["status"] == "ok", result
        return result

    first = run()
    assert first["counts"].get("collections_new") == 3 and first["counts"].get("collection_posts_new") == 2
    db = archive.db
    assert rows(db, "SELECT collection_id, account_id, kind, parent_id, title, visibility, post_count "
                    "FROM collections ORDER BY collection_id") == [
        ("b1", "pinterest:main", "board", None, "Roofs", "public", 1),
        ("b2", "pinterest:main", "board", None, "Gardens", "private", None),
        ("s1", "pinterest:main", "section", "b1", "Red roofs", None, None)]
    # The cover, like a profile picture: a file in media/, its link kept without the query.
    cover, source = rows(db, "SELECT cover_sha256, cover_source FROM collections WHERE collection_id='b1'")[0]
    assert source == f"{CDN}/covers/b1.png"
    assert (archive.media_root / one(db, "SELECT path FROM media WHERE sha256=?", cover)).read_bytes() == COVER
    assert json.loads(one(db, "SELECT raw FROM collections WHERE collection_id='b2'")) == {
        "api": {"id": "b2", "privacy": "SECRET"}}
    assert rows(db, "SELECT link FROM posts") == [("https://roofs.example/red",)]
    memberships = rows(db, "SELECT collection_id, post_id, sources, first_seen_at = last_seen_at "
                           "FROM collection_posts ORDER BY collection_id")
    assert memberships == [("b1", "p1", '["api"]', 1), ("s1", "p1", '["api"]', 1)]
    before = dict(rows(db, "SELECT collection_id, last_seen_at FROM collection_posts"))

    # The Pin moves to the other board, its link changes, the board is renamed.
    world.update(b1_title="Roofs and towers", link="https://roofs.example/blue", pin_in=["b2"])
    second = run()
    assert second["counts"].get("collection_posts_new") == 1
    after = rows(db, "SELECT collection_id, last_seen_at FROM collection_posts ORDER BY collection_id")
    assert [c for c, _ in after] == ["b1", "b2", "s1"]
    # Nothing is deleted: the old board and section keep when the Pin was last seen there,
    # and the board it is in now was seen later.
    assert dict(after)["b1"] == before["b1"] and dict(after)["s1"] == before["s1"]
    assert dict(after)["b2"] > before["b1"]
    current = rows(db, "SELECT collection_id FROM collection_posts WHERE post_id='p1' "
                       "AND last_seen_at = (SELECT max(last_seen_at) FROM collection_posts WHERE post_id='p1')")
    assert current == [("b2",)]
    # Old values stay: the board's earlier title, the Pin's earlier link.
    assert rows(db, "SELECT title FROM collections WHERE collection_id='b1'") == [("Roofs and towers",)]
    assert rows(db, "SELECT title, cover_sha256 FROM collection_versions") == [("Roofs", cover)]
    assert rows(db, "SELECT link FROM posts") == [("https://roofs.example/blue",)]
    assert rows(db, "SELECT title, link FROM post_versions") == [("Roof", "https://roofs.example/red")]
    # The same cover link (its query aside) is not fetched again.
    assert len(covers) == 1 and rows(db, "SELECT cover_sha256 FROM collections WHERE collection_id='b1'") == [(cover,)]

    # `archiver serve` shows the tables: the cover as a picture, a membership's post as a link.
    boards = page(archive, "/archive/collections")
    assert "Boards and sections" in boards and "Roofs and towers" in boards and "/media/" in boards
    members = page(archive, "/archive/collection_posts")
    assert 'href="/archive/posts/pinterest,p1"' in members
    assert "Roofs" in page(archive, "/archive/collection_versions")
    archive.close()


def page(archive: Archive, path: str) -> str:
    import asyncio

    from archiver.views.serve import make_datasette

    async def fetch():
        response = await make_datasette(archive).client.get(path)
        assert response.status_code == 200, response.text
        return response.text

    return asyncio.run(fetch())


# --------------------------------------------------------------------------- API and exports


def write(archive, source: str, *records) -> ArchiveWriter:
    with archive.writing() as db:
        writer = ArchiveWriter(db, platform="pinterest", account_id="pinterest:main", source=source)
        for record in records:
            if isinstance(record, Collection):
                writer.write_collection(record)
            else:
                writer.write_post(record)
    return writer


def pin(native_id: str | None, collections: list[str], link: str | None = None) -> Post:
    return Post(native_id, "2026-02-01T10:00:00Z", kind="image", title="Roof", link=link,
                collections=collections, raw={"id": native_id, "board": collections})


EXPORT = "export:" + "ab" * 32


def test_an_export_fills_blanks_only(archive):
    db = archive.db
    write(archive, "api", Collection("b1", "Roofs", visibility="public", raw={"id": "b1"}),
          pin("p1", ["b2"], link="https://roofs.example/now"))
    api_seen = one(db, "SELECT last_seen_at FROM collection_posts WHERE collection_id='b2'")
    # An old export says the Pin was on b1, with another link and another board title.
    write(archive, EXPORT, Collection("b1", "Old roofs", description="from the export", raw={"name": "Old roofs"}),
          pin("p1", ["b1"], link="https://roofs.example/old"))
    assert rows(db, "SELECT collection_id FROM collection_posts") == [("b2",)]
    assert rows(db, "SELECT link FROM posts") == [("https://roofs.example/now",)]
    assert rows(db, "SELECT title, description, sources FROM collections") == [
        ("Roofs", "from the export", json.dumps(["api", EXPORT]).replace(" ", ""))]
    raw = json.loads(one(db, "SELECT raw FROM posts"))
    assert raw[EXPORT]["board"] == ["b1"]       # what the export said is kept, in its payload
    assert not rows(db, "SELECT * FROM post_versions") and not rows(db, "SELECT * FROM collection_versions")
    # An export that confirms the API's board adds its source, and is no new sighting.
    write(archive, EXPORT, pin("p1", ["b2"]))
    assert rows(db, "SELECT sources, last_seen_at FROM collection_posts") == [
        (json.dumps(["api", EXPORT]).replace(" ", ""), api_seen)]
    # A Pin only an export knows gets the export's boards.
    write(archive, EXPORT, pin("p9", ["b1"]))
    assert rows(db, "SELECT collection_id, sources FROM collection_posts WHERE post_id='p9'") == [
        ("b1", json.dumps([EXPORT]))]


def test_a_provisional_posts_memberships_follow_it_when_the_api_names_it(archive):
    db = archive.db
    write(archive, EXPORT, pin(None, ["b1"]))
    assert rows(db, "SELECT post_id FROM collection_posts") == [("provisional:2026-02-01T10:00:00Z",)]
    write(archive, "api", pin("p1", ["b1", "b2"]))
    assert rows(db, "SELECT collection_id, post_id, sources FROM collection_posts ORDER BY 1") == [
        ("b1", "p1", json.dumps([EXPORT, "api"]).replace(" ", "")), ("b2", "p1", '["api"]')]


# --------------------------------------------------------------------------- migration


def test_an_archive_made_before_collections_gains_them(tmp_path):
    from sqlite_utils import Database

    from archiver.archive.schema import migrations

    path = tmp_path / "old" / "archive.db"
    path.parent.mkdir()
    old = Database(path)
    migrations.apply(old, stop_before="m016_links_collections")
    old.execute("INSERT INTO posts (platform, post_id, account_id, title, sources, first_seen_at, last_seen_at, raw) "
                "VALUES ('pinterest', 'p1', 'pinterest:main', 'Roof', '[\"api\"]', 'x', 'x', '{}')")
    old.conn.commit()
    assert "collections" not in old.table_names()
    old.close()
    upgraded = Archive(path.parent)
    db = upgraded.db
    assert {"collections", "collection_posts", "collection_versions"} <= set(db.table_names())
    assert rows(db, "SELECT post_id, link FROM posts") == [("p1", None)]
    write(upgraded, "api", Collection("b1", "Roofs"), pin("p1", ["b1"], link="https://roofs.example/red"))
    assert rows(db, "SELECT title, link FROM posts") == [("Roof", "https://roofs.example/red")]
    assert not rows(db, "SELECT * FROM post_versions")     # a link filling a blank is no edit
    assert rows(db, "SELECT collection_id, post_id FROM collection_posts") == [("b1", "p1")]
    upgraded.close()
