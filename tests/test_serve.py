"""`archiver serve`: a real Datasette process on loopback over a real archive, and what a
person sees in a real (headless) Chromium."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest

from archiver.archive import Archive
from archiver.serve import DATABASE, build_metadata, canned_queries

# The test picture: a solid colour no web page uses, so its pixels are easy to find in a
# screenshot.
MAGENTA = (255, 0, 255)
PICTURE_SIZE = 200
CHROMIUM = "/usr/bin/chromium"
NOW = "2024-05-01T12:00:00Z"


# -- PNG, by hand (no Pillow) ------------------------------------------------------------


def make_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour RGB PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    scanline = b"\x00" + bytes(rgb) * width  # filter type 0: the bytes as they are
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(scanline * height)) + chunk(b"IEND", b""))


def count_pixels(png: bytes, rgb: tuple[int, int, int]) -> int:
    """How many pixels of an 8-bit RGB or RGBA, non-interlaced PNG are exactly `rgb`."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, "unsupported PNG flavour"
    bpp = 3 if colour_type == 2 else 4
    stride = width * bpp
    data = zlib.decompress(b"".join(idat))
    previous = bytearray(stride)
    found = 0
    for y in range(height):
        start = y * (stride + 1)
        filter_type = data[start]
        line = bytearray(data[start + 1:start + 1 + stride])
        # Undo the PNG row filters (spec section 9): each byte was stored as a difference.
        if filter_type == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif filter_type == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif filter_type == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif filter_type == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + predictor) & 0xFF
        pixels = bytes(line)
        found += sum(1 for x in range(0, stride, bpp) if pixels[x:x + 3] == bytes(rgb))
        previous = line
    return found


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Archive:
    return build_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def server(archive):
    """`archiver serve` in its own process; yields its base URL."""
    port = free_port()
    env = {**os.environ, "ARCHIVER_SECRETS": "memory",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    env.pop("ARCHIVER_HOME", None)
    env.pop("ARCHIVER_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "archiver.cli", "serve", "--archive", str(archive.folder), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"archiver serve exited with {process.returncode}: {process.stdout.read()}")
            try:
                if httpx.get(f"{base}/-/versions.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("archiver serve did not answer within 30 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


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
