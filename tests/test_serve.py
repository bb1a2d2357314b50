"""`archiver serve`: a real Datasette process on loopback over a real archive, and what a
person sees in a real (headless) Chromium."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from archiver.archive import Archive
from archiver.views.serve import DATABASE, build_metadata, canned_queries
from png_pixels import count_pixels, make_png
from serve_process import serving

# Its module fixtures are built once: the module's tests run in one worker (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("serve")

# The test picture: a solid colour no web page uses, so its pixels are easy to find in a
# screenshot.
MAGENTA = (255, 0, 255)
PICTURE_SIZE = 200
CHROMIUM = "/usr/bin/chromium"
NOW = "2024-05-01T12:00:00Z"


# -- an archive with a little of everything ----------------------------------------------


PICTURE = make_png(PICTURE_SIZE, PICTURE_SIZE, MAGENTA)
PICTURE_SHA = hashlib.sha256(PICTURE).hexdigest()
PICTURE_PATH = f"{PICTURE_SHA[:2]}/{PICTURE_SHA[2:4]}/{PICTURE_SHA}.png"


def build_archive(folder: Path) -> Archive:
    archive = Archive(folder)
    db = archive.db
    provenance = {"sources": '["api"]', "first_seen_at": NOW, "last_seen_at": NOW}
    long_raw = json.dumps({"api": {"id": "7001", "desc": "golden light " * 20}})

    def insert(table: str, **row):
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        db.execute(f"insert into {table} ({columns}) values ({marks})", list(row.values()))

    insert("accounts", account_id="tiktok:main", platform="tiktok", name="main", username="me",
           avatar_sha256=PICTURE_SHA, raw="{}", **provenance)
    insert("posts", platform="tiktok", post_id="7001", account_id="tiktok:main", kind="video",
           created_at="2024-04-01T10:00:00Z", title="Sunset over the harbour",
           text="golden light #harbour", view_count=4000, raw=long_raw, **provenance)
    insert("posts", platform="tiktok", post_id="7002", account_id="tiktok:main", kind="video",
           created_at="2024-04-02T10:00:00Z", title="Morning coffee", text="espresso time",
           view_count=9000, raw="{}", **provenance)
    # 7001 was counted twice since; the newest reading is what the canned query must show.
    insert("post_metrics", platform="tiktok", post_id="7001", observed_at="2024-04-10T00:00:00Z",
           view_count=4500)
    insert("post_metrics", platform="tiktok", post_id="7001", observed_at="2024-04-20T00:00:00Z",
           view_count=12000)

    (archive.media_root / PICTURE_PATH).parent.mkdir(parents=True)
    (archive.media_root / PICTURE_PATH).write_bytes(PICTURE)
    insert("media", sha256=PICTURE_SHA, path=PICTURE_PATH, mime="image/png", size=len(PICTURE),
           first_seen_at=NOW)
    insert("post_media", platform="tiktok", post_id="7001", role="cover", position=0,
           sha256=PICTURE_SHA, source_url="https://cdn.example/cover.png", status="ok", updated_at=NOW)

    insert("people", platform="tiktok", person_id="u1", handle="harbourfan",
           display_name="Harbour Fan", url="https://www.tiktok.com/@harbourfan", raw="{}", **provenance)
    insert("people", platform="tiktok", person_id="u2", handle="beanbag",
           display_name="Coffee Lover", url="https://www.tiktok.com/@beanbag", raw="{}", **provenance)
    insert("comments", platform="tiktok", comment_id="c1", account_id="tiktok:main", post_id="7001",
           author_id="u1", text="what a beautiful sunset", raw="{}", **provenance)
    insert("comments", platform="tiktok", comment_id="c2", account_id="tiktok:main", post_id="7002",
           author_id="u2", text="I need this espresso", raw="{}", **provenance)

    insert("snapshots", snapshot_id=1, account_id="tiktok:main", kind="followers",
           taken_at="2024-04-05T00:00:00Z", source="api", member_count=2, new_count=2, lost_count=0, complete=1)
    insert("audience_events", account_id="tiktok:main", kind="followers", person_id="u2", event="new",
           at="2024-04-03T00:00:00Z", snapshot_id=1)
    insert("audience_events", account_id="tiktok:main", kind="followers", person_id="u1", event="new",
           at="2024-04-04T00:00:00Z", snapshot_id=1)
    insert("audience_events", account_id="tiktok:main", kind="followers", person_id="u2", event="lost",
           at="2024-04-06T00:00:00Z", snapshot_id=1)
    insert("runs", run_id=1, account_id="tiktok:main", platform="tiktok", kind="export",
           mode="incremental", started_at="2024-04-05T00:00:00Z", status="ok")
    archive.close()
    return archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Archive:
    return build_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def server(archive):
    """`archiver serve` in its own process; yields its base URL."""
    with serving(archive) as base:
        yield base


def get_json(server: str, path: str):
    response = httpx.get(server + path, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


# -- metadata ----------------------------------------------------------------------------


def test_every_table_has_a_title_and_description(tmp_path):
    archive = Archive(tmp_path)
    tables = [name for name in archive.db.table_names()
              if "_fts" not in name and not name.startswith("_")]
    metadata = build_metadata(archive)["databases"][DATABASE]["tables"]
    for name in tables:
        assert metadata.get(name, {}).get("title"), name
        assert metadata[name].get("description"), name
    assert metadata["posts"]["sort_desc"] == "created_at"
    assert set(canned_queries()) >= {"most_viewed_videos", "recent_followers", "recent_runs", "lost_followers"}


# -- the server --------------------------------------------------------------------------


def test_full_text_search_finds_posts_comments_and_people(server):
    posts = get_json(server, f"/{DATABASE}/posts.json?_search=sunset&_shape=array")
    assert [p["post_id"] for p in posts] == ["7001"]
    posts = get_json(server, f"/{DATABASE}/posts.json?_search=espresso&_shape=array")
    assert [p["post_id"] for p in posts] == ["7002"]

    comments = get_json(server, f"/{DATABASE}/comments.json?_search=espresso&_shape=array")
    assert [c["comment_id"] for c in comments] == ["c2"]

    people = get_json(server, f"/{DATABASE}/people.json?_search=harbourfan&_shape=array")
    assert [p["person_id"] for p in people] == ["u1"]
    people = get_json(server, f"/{DATABASE}/people.json?_search=coffee&_shape=array")
    assert [p["person_id"] for p in people] == ["u2"]


def test_posts_are_newest_first(server):
    posts = get_json(server, f"/{DATABASE}/posts.json?_shape=array")
    assert [p["post_id"] for p in posts] == ["7002", "7001"]


def test_sees_writes_made_while_serving(server, archive):
    db = Archive(archive.folder).db
    db.execute(
        "insert into posts (platform, post_id, account_id, title, first_seen_at, last_seen_at) "
        "values ('tiktok', '7003', 'tiktok:main', 'Lighthouse at dawn', ?, ?)", [NOW, NOW])
    db.conn.commit()
    db.close()
    posts = get_json(server, f"/{DATABASE}/posts.json?_search=lighthouse&_shape=array")
    assert [p["post_id"] for p in posts] == ["7003"]


def test_canned_queries_answer(server):
    videos = get_json(server, f"/{DATABASE}/most_viewed_videos.json?_shape=array")
    # 7001's newest metrics reading (12000) beats 7002's own count (9000).
    assert [(v["post_id"], v["views"]) for v in videos[:2]] == [("7001", 12000), ("7002", 9000)]
    assert videos[0]["cover"] == PICTURE_PATH
    assert videos[1]["cover"] is None

    followers = get_json(server, f"/{DATABASE}/recent_followers.json?_shape=array")
    assert [(f["handle"], f["url"]) for f in followers] == [
        ("harbourfan", "https://www.tiktok.com/@harbourfan"),
        ("beanbag", "https://www.tiktok.com/@beanbag"),
    ]
    lost = get_json(server, f"/{DATABASE}/lost_followers.json?_shape=array")
    assert [f["handle"] for f in lost] == ["beanbag"]
    runs = get_json(server, f"/{DATABASE}/recent_runs.json?_shape=array")
    assert [(r["run_id"], r["status"]) for r in runs] == [(1, "ok")]


def test_media_files_are_served_and_nothing_else(server):
    response = httpx.get(f"{server}/media/{PICTURE_PATH}", timeout=10)
    assert response.status_code == 200
    assert response.content == PICTURE
    assert response.headers["content-type"] == "image/png"

    # The database sits next to media/: a "../" must not reach it. http.client sends the
    # path as written (httpx would normalise the dots away).
    host, port = server.removeprefix("http://").split(":")
    for path in ("/media/../archive.db", "/media/%2e%2e/archive.db", "/media/..%2farchive.db"):
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", path)
        reply = connection.getresponse()
        body = reply.read()
        connection.close()
        assert reply.status != 200 or not body.startswith(b"SQLite format 3"), path


def test_pictures_show_as_images_in_tables_and_queries(server):
    img = f'<img src="/media/{PICTURE_PATH}"'
    for page in (f"/{DATABASE}/post_media", f"/{DATABASE}/media", f"/{DATABASE}/accounts",
                 f"/{DATABASE}/most_viewed_videos"):
        html = httpx.get(server + page, timeout=10).text
        assert img in html, page


def test_post_ids_link_to_the_post_page(server):
    for page in (f"/{DATABASE}/comments", f"/{DATABASE}/post_media", f"/{DATABASE}/most_viewed_videos"):
        html = httpx.get(server + page, timeout=10).text
        assert f'<a href="/{DATABASE}/posts/tiktok,7001">7001</a>' in html, page
    post_page = httpx.get(f"{server}/{DATABASE}/posts/tiktok,7001", timeout=10)
    assert post_page.status_code == 200 and "Sunset over the harbour" in post_page.text


def test_listens_on_loopback_only(server):
    port = int(server.rsplit(":", 1)[1])
    proc_net = Path("/proc/net/tcp")
    if not proc_net.exists():
        pytest.skip("needs Linux /proc/net/tcp")
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                listening.append(address)
    # 127.0.0.1 as /proc writes it: little-endian hex.
    assert listening == ["0100007F"]


# -- what a person sees ------------------------------------------------------------------


def chromium_or_skip() -> str:
    if Path(CHROMIUM).exists() or shutil.which("chromium"):
        return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if os.environ.get("ARCHIVER_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"chromium not found at {CHROMIUM} and ARCHIVER_REQUIRE_CHROMIUM=1")
    pytest.skip("chromium is not installed")


def screenshot(chromium: str, url: str, folder: Path) -> bytes:
    shot = folder / "shot.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--user-data-dir={folder / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,1600", url],
        check=True, timeout=120, capture_output=True,
    )
    return shot.read_bytes()


def test_post_page_shows_its_cover(server, tmp_path):
    chromium = chromium_or_skip()
    url = f"{server}/{DATABASE}/posts/tiktok,7001"
    html = httpx.get(url, timeout=10).text
    assert f'<img src="/media/{PICTURE_PATH}"' in html
    assert "<details>" in html  # the long raw JSON is folded

    png = screenshot(chromium, url, tmp_path)
    if os.environ.get("ARCHIVER_KEEP_SCREENSHOT"):
        Path(os.environ["ARCHIVER_KEEP_SCREENSHOT"]).write_bytes(png)
    # The whole picture is on screen, at its own size.
    assert count_pixels(png, MAGENTA) >= PICTURE_SIZE * PICTURE_SIZE * 0.95


def test_post_without_media_shows_no_picture(server, tmp_path):
    chromium = chromium_or_skip()
    url = f"{server}/{DATABASE}/posts/tiktok,7002"
    assert "/media/" not in httpx.get(url, timeout=10).text
    assert count_pixels(screenshot(chromium, url, tmp_path), MAGENTA) == 0


# -- the audience views: canned queries over a real archive ---------------------------------
#
# The "this week" queries measure from the real clock (Datasette's SQL has no `now`
# parameter), so this archive is dated relative to the time the test runs.


def days_ago(days: float) -> str:
    import datetime as dt

    moment = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_audience_archive(folder: Path) -> Archive:
    from archiver.archive.writer import ArchiveWriter, StoredFile
    from archiver.views.audience import link, unlink
    from archiver.records import Comment, Membership, Person, Post, Profile, Snapshot

    archive = Archive(folder)
    db = archive.db

    def person(platform: str, handle: str) -> Person:
        return Person(handle, handle=handle, display_name=handle.title(), url=f"https://{platform}.example/@{handle}",
                      avatar_url=f"https://cdn.{platform}.example/{handle}.jpg")

    def write(account: str, now: str, *records, source: str = "api"):
        with archive.writing():
            writer = ArchiveWriter(db, platform=account.split(":")[0], account_id=account, source=source, now=now)
            for record in records:
                if isinstance(record, Profile):
                    writer.write_profile(record)
                elif isinstance(record, Post):
                    writer.write_post(record)
                elif isinstance(record, Comment):
                    writer.write_comment(record)
                elif isinstance(record, Snapshot):
                    writer.write_snapshot(record)

    def followers(platform: str, taken_at: str, *handles: str, complete: bool = True) -> Snapshot:
        return Snapshot("followers", taken_at, [Membership(person(platform, h)) for h in handles], complete)

    for days, count in ((30, 10), (12, 12), (3, 11)):
        write("tiktok:main", days_ago(days), Profile("tt1", "me", followers=count))
    # Lists 20 and 10 days ago, then 2 days ago: this week ivy and jo came, bea left;
    # a partial list yesterday (a failed run) must not make anyone lost.
    write("tiktok:main", days_ago(20), followers("tiktok", days_ago(20), "ann", "bea", "cal"), source="export:" + "1" * 64)
    write("tiktok:main", days_ago(10), followers("tiktok", days_ago(10), "ann", "bea", "dan"), source="export:" + "2" * 64)
    write("tiktok:main", days_ago(2), followers("tiktok", days_ago(2), "ann", "dan", "ivy", "jo"), source="export:" + "3" * 64)
    write("tiktok:main", days_ago(1), followers("tiktok", days_ago(1), "ann", complete=False), source="api")

    write("tiktok:main", days_ago(5), Post("t1", days_ago(40), title="Harbour"),
          *[Comment(f"tc{n}", "nice", days_ago(d), post_native_id="t1", author=person("tiktok", who))
            for n, (who, d) in enumerate([("ann", 2), ("ann", 30), ("dan", 1), ("cal", 200)])],
          Comment("own", "thanks", days_ago(1), post_native_id="t1", author=Person("tt1", "me"), by_owner=True))
    write("youtube:channel", days_ago(5), Post("y1", days_ago(50), title="Trailer"),
          Comment("yc1", "great", days_ago(3), post_native_id="y1", author=person("youtube", "annie")),
          Comment("yc2", "hm", days_ago(4), post_native_id="y1", author=person("youtube", "zoe")))
    with archive.writing():
        link(db, "tiktok:ann", "youtube:annie", now=days_ago(1))      # confirmed: one person
        link(db, "tiktok:dan", "youtube:zoe", now=days_ago(1))
        unlink(db, "tiktok:dan", "youtube:zoe", now=days_ago(0.5))  # rejected again
        db.execute("INSERT OR IGNORE INTO person_links (a_platform, a_person, b_platform, b_person, confidence, "
                   "reason, status, updated_at) VALUES ('tiktok', 'cal', 'youtube', 'zoe', 0.6, 'same_handle', "
                   "'suggested', ?)", [days_ago(1)])

    # A stored avatar for ann (people.avatar_sha256, migration m005).
    (archive.media_root / PICTURE_PATH).parent.mkdir(parents=True, exist_ok=True)
    (archive.media_root / PICTURE_PATH).write_bytes(PICTURE)
    with archive.writing():
        ArchiveWriter(db, platform="tiktok", account_id="tiktok:main", source="api").record_media(
            StoredFile(PICTURE_SHA, PICTURE_PATH, "image/png", len(PICTURE)))
        db.execute("UPDATE people SET avatar_sha256 = ? WHERE platform = 'tiktok' AND person_id = 'ann'",
                   [PICTURE_SHA])
    archive.close()
    return archive


@pytest.fixture(scope="module")
def audience_archive(tmp_path_factory) -> Archive:
    return build_audience_archive(tmp_path_factory.mktemp("audience"))


@pytest.fixture(scope="module")
def audience_server(audience_archive):
    with serving(audience_archive) as base:
        yield base


def test_audience_views_have_canned_queries_and_facets(tmp_path):
    assert set(canned_queries()) >= {"top_fans", "new_followers_this_week", "lost_followers_this_week",
                                     "people_on_several_platforms", "followers_over_time"}
    tables = build_metadata(Archive(tmp_path))["databases"][DATABASE]["tables"]
    assert "platform" in tables["people"]["facets"]
    assert "status" in tables["person_links"]["facets"]


def test_top_fans_query_is_the_audience_top_fans(audience_server, audience_archive):
    from archiver.views.audience import top_fans

    served = get_json(audience_server, f"/{DATABASE}/top_fans.json?_shape=array")
    expected = top_fans(Archive(audience_archive.folder).db, limit=100)
    assert [(r["person_key"], r["comments"]) for r in served] == \
        [(f["person_key"], f["comment_count"]) for f in expected]
    assert [r["score"] for r in served] == pytest.approx([f["score"] for f in expected], rel=1e-4)
    # ann on TikTok and annie on YouTube are one person (a confirmed link): 3 comments.
    assert served[0]["person_key"] == "tiktok:ann" and served[0]["comments"] == 3
    assert served[0]["identities"].split() == ["tiktok:ann", "youtube:annie"] or \
        sorted(served[0]["identities"].split()) == ["tiktok:ann", "youtube:annie"]
    # The owner's own reply is nobody's fan.
    assert "tiktok:tt1" not in [r["person_key"] for r in served]


def test_this_weeks_new_and_lost_followers(audience_server, audience_archive):
    from archiver.views.audience import lost_followers

    db = Archive(audience_archive.folder).db
    new = get_json(audience_server, f"/{DATABASE}/new_followers_this_week.json?_shape=array")
    lost = get_json(audience_server, f"/{DATABASE}/lost_followers_this_week.json?_shape=array")
    assert sorted(r["handle"] for r in new) == ["ivy", "jo"]
    assert [r["handle"] for r in lost] == ["bea"]  # the partial list of yesterday lost nobody
    assert [r["person_id"] for r in lost] == [r["person_id"] for r in lost_followers(db, days=7)]
    week_ago = days_ago(7)
    in_sql = db.execute("SELECT count(*) FROM audience_events WHERE kind = 'followers' AND event = 'new' "
                        "AND at >= ?", [week_ago]).fetchone()[0]
    assert len(new) == in_sql


def test_people_on_several_platforms_are_the_confirmed_links(audience_server):
    rows = get_json(audience_server, f"/{DATABASE}/people_on_several_platforms.json?_shape=array")
    assert [(r["a_platform"], r["a_person"], r["b_platform"], r["b_person"]) for r in rows] == [
        ("tiktok", "ann", "youtube", "annie")]  # not the rejected one, not the suggestion
    assert rows[0]["a_handle"] == "ann" and rows[0]["b_url"] == "https://youtube.example/@annie"


def test_followers_over_time_query(audience_server, audience_archive):
    rows = get_json(audience_server, f"/{DATABASE}/followers_over_time.json?_shape=array")
    db = Archive(audience_archive.folder).db
    counts = db.execute("SELECT account_id, observed_at, followers FROM account_metrics").fetchall()
    lists = db.execute("SELECT account_id, taken_at, member_count FROM snapshots "
                       "WHERE kind = 'followers' AND complete = 1").fetchall()
    assert sorted((r["account_id"], r["at"], r["followers"]) for r in rows) == \
        sorted([tuple(r) for r in counts] + [tuple(r) for r in lists])
    assert [r["followers"] for r in rows if r["source"] == "count"] == [11, 12, 10]  # newest first


def test_avatars_stored_show_as_images_remote_ones_as_links(audience_server):
    img = f'<img src="/media/{PICTURE_PATH}"'
    for page, remote in ((f"/{DATABASE}/people", "https://cdn.youtube.example/zoe.jpg"),
                         (f"/{DATABASE}/top_fans", "https://cdn.tiktok.example/dan.jpg"),
                         (f"/{DATABASE}/people_on_several_platforms", "https://cdn.youtube.example/annie.jpg")):
        html = httpx.get(audience_server + page, timeout=10).text
        assert img in html, page  # ann's stored picture
        # Everyone else's picture is on the platform's CDN: a link, never fetched by the page.
        assert not re.search(r'<img[^>]+src="https?://', html), page
        assert f'<a href="{remote}" rel="noreferrer noopener"' in html, page
    lost = httpx.get(f"{audience_server}/{DATABASE}/lost_followers_this_week", timeout=10).text
    assert 'href="https://cdn.tiktok.example/bea.jpg"' in lost and "picture on the platform" in lost
