"""Links taken from data cannot reach the person's own network, and every download is
bounded (issue 11, points 2 and 3). Real HTTP over 127.0.0.1 to servers built for the
attack, the real runner, downloader, media store and archive.

What is proved:
- an export naming 127.0.0.1, imported for an account whose platform is public, fetches
  nothing there; each file is reported as not fetched (the same export for an account on
  loopback, the simulators' case, is fetched: tests/test_inbox.py and others);
- a public-looking name that resolves to 127.0.0.1 (or to a public and a private address)
  is refused when the connection is made: the server sees no connection at all. The
  resolver is injected (there is no DNS here); that the connection goes to the very
  address the resolver gave is shown by the same name fetched for a loopback account;
- a redirect from an allowed host to a private address, or to a name resolving to one, is
  refused at that hop;
- values that are no http(s) link (no scheme, file:, data:, ftp:, javascript:) are never
  fetched, and say so;
- an endless response stops at the size cap (a small cap here) and leaves no bytes; a
  size announced above the cap is not downloaded; a server trickling a byte a second is
  cut off, and so is a file over its total time (fake clocks, no waiting);
- a full disk (ENOSPC injected at the one write of media bytes) removes the partial file
  and fails the run with "disk full: N MB needed in …; nothing of the unfinished page was
  kept"; the next run, with space, stores everything.
"""

from __future__ import annotations

import errno
import hashlib
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from archiver.archive import Archive
from archiver.config import AccountConfig, ConfigError, DownloadLimits, load_config
from archiver.connector import Connector
from archiver.net.links import LinkPolicy, is_public_address
from archiver.archive.media import MediaError, MediaStore
from archiver.net.client import ApiClient
from archiver.records import MediaRef, Page, Post
from archiver.sync.runner import Runner

JPEG = b"\xff\xd8\xff\xe0" + b"\x33" * 3000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x44" * 3000


# --------------------------------------------------------------------------- a server built for it


class Target:
    """A loopback server standing for what an attacker would reach: it counts every
    connection it accepts, and serves files, an endless body, a trickle, redirects."""

    def __init__(self) -> None:
        self.connections = 0
        self.paths: list[str] = []
        self.files = {"/a.jpg": JPEG, "/b.png": PNG}
        self.redirects: dict[str, str] = {}
        # The trickle sends its next byte only when the client's clock lets it (lockstep:
        # each read gets a byte, however busy the machine).
        self.trickle_permits = threading.Semaphore(0)
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                target.connections += 1
                super().setup()

            def do_GET(self) -> None:
                target.paths.append(self.path)
                if self.path in target.redirects:
                    self.send_response(302)
                    self.send_header("Location", target.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path == "/endless":
                    self._chunked(lambda: True, b"\x00" * 65536)
                elif self.path == "/trickle":
                    self._chunked(lambda: target.trickle_permits.acquire(timeout=60), b"x")
                elif self.path == "/huge":
                    self.send_response(200)
                    self.send_header("Content-Length", str(50 * 10**9))
                    self.end_headers()
                    self.wfile.write(b"\xff\xd8\xff" + b"\x00" * 1000)
                elif self.path in target.files:
                    body = target.files[self.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()[:8]}"')
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def _chunked(self, go_on, chunk: bytes) -> None:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    while go_on():
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                except OSError:
                    pass   # the client hung up: what a cut-off looks like from here
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target():
    server = Target()
    yield server
    server.close()


def resolver(names: dict[str, list[str]]):
    """An injected DNS: name -> addresses; every question is kept."""
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if host in names:
            return names[host]
        try:   # an address written as such resolves to itself, as with getaddrinfo
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
            return [host]
        except OSError:
            raise AssertionError(f"the test asked no DNS for {host}") from None

    resolve.asked = asked
    return resolve


class Platform(Connector):
    """A connector with nothing of its own: the core's media client, the account's base
    URL deciding where links may lead. ``resolve``: the injected DNS."""

    name = "linkland"
    title = "Link land"
    default_base_url = "https://api.linkland.example"

    def __init__(self, base_url: str | None = None, resolve=None):
        super().__init__(AccountConfig(name="main", platform="linkland", base_url=base_url), secrets=None,
                         sleep=lambda seconds: None)
        self.resolve = resolve

    def link_policy(self):
        return LinkPolicy.for_account(self.base_url, resolve=self.resolve)


def run(archive: Archive, connector: Connector, *urls: str, limits: DownloadLimits | None = None) -> dict:
    runner = Runner(archive, connector, progress=lambda line: None, limits=limits)
    post = Post(native_id="1", created_at="2026-11-01T00:00:00Z",
                media=[MediaRef(url, "image", position) for position, url in enumerate(urls)])
    return runner.run(lambda ctx: iter([Page("posts", [post], state={"done": True})]),
                      kind="export", mode="incremental")


def slots(archive: Archive) -> list[tuple]:
    return archive.db.execute("SELECT position, status, cause, error FROM post_media ORDER BY position").fetchall()


# --------------------------------------------------------------------------- 11.2 private networks


def test_an_export_naming_loopback_is_not_fetched_for_an_account_on_a_public_platform(tmp_path):
    """A TikTok export whose every media link is on 127.0.0.1 (the fake's CDN), imported
    for an account of the real TikTok (no base URL): nothing is fetched there; the posts
    are archived and each file is reported as not fetched."""
    from cli_world import LoopbackOnly

    from archiver.config import Config
    from archiver.sync.jobs import Workspace, run_import
    from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig, serve

    fake = FakeTikTok(FakeTikTokConfig(videos=3, followers=1, following=1))
    server, _ = serve(fake)
    loopback = LoopbackOnly()
    try:
        export = tmp_path / "TikTok_Data.zip"
        export.write_bytes(fake.export_zip())
        ws = Workspace(Archive(tmp_path / "archive"), Config(path=None))
        result = run_import(ws, export, transport=loopback)
    finally:
        server.shutdown()
        server.server_close()
        loopback.really_close()
    assert result["status"] == "ok", result
    assert loopback.fetched == [], "nothing on loopback may be fetched for this account"
    db = ws.archive.db
    assert db.execute("SELECT count(*) FROM posts").fetchone()[0] == 3
    causes = db.execute("SELECT DISTINCT status, cause FROM post_media").fetchall()
    assert causes == [("failed", "blocked")], causes
    errors = db.execute("SELECT DISTINCT error FROM post_media").fetchall()
    assert all("is a private or local address" in e for (e,) in errors), errors
    assert any("not fetched" in line for line in result["summary"]), result["summary"]
    ws.archive.close()


def test_a_public_looking_name_resolving_to_loopback_is_refused_at_connect(tmp_path, target):
    """cdn.linkland.example resolves to 127.0.0.1 (a rebinding name, or a planted record):
    for an account on a public platform the connection is never made. A name with one
    private address among public ones is refused too (the system may pick either). For an
    account on loopback the same name is fetched, from the address the resolver gave."""
    resolve = resolver({"cdn.linkland.example": ["127.0.0.1"],
                        "mixed.linkland.example": ["93.184.215.14", "127.0.0.1"]})
    archive = Archive(tmp_path / "archive")
    result = run(archive, Platform(resolve=resolve),
                 target.url("/a.jpg", "cdn.linkland.example"), target.url("/b.png", "mixed.linkland.example"))
    assert result["status"] == "ok", result
    assert target.connections == 0, "refused before connecting"
    assert resolve.asked == ["cdn.linkland.example", "mixed.linkland.example"]
    (first, second) = [error for _, _, _, error in slots(archive)]
    assert [row[:3] for row in slots(archive)] == [(0, "failed", "blocked"), (1, "failed", "blocked")]
    assert "cdn.linkland.example (resolves to 127.0.0.1) is a private or local address" in first
    assert "mixed.linkland.example (resolves to 127.0.0.1)" in second

    at_home = Archive(tmp_path / "simulator")
    result = run(at_home, Platform(base_url=f"http://127.0.0.1:{target.port}", resolve=resolve),
                 target.url("/a.jpg", "cdn.linkland.example"))
    assert result["status"] == "ok" and result["counts"]["media_saved"] == 1, result
    assert target.paths == ["/a.jpg"]
    archive.close()
    at_home.close()


def test_a_redirect_from_an_allowed_host_to_a_private_one_is_refused(target):
    """A public CDN answers with a redirect to 127.0.0.1, or to a name resolving there:
    that hop is refused; the private server sees nothing. (The public CDN is a stand-in
    transport: nothing public is reachable from a test.)"""
    resolve = resolver({"inside.linkland.example": ["10.0.0.7"], "loop.linkland.example": ["127.0.0.1"]})
    policy = LinkPolicy.for_account("https://api.linkland.example", resolve=resolve)
    network = policy.transport()   # the real, checking network transport

    class PublicCdnThenNetwork(httpx.BaseTransport):
        def handle_request(self, request):
            if request.url.host == "cdn.linkland.example":
                return httpx.Response(302, headers={"Location": redirect_to})
            return network.handle_request(request)

    client = ApiClient(transport=PublicCdnThenNetwork(), links=policy, sleep=lambda s: None)
    for redirect_to in (target.url("/a.jpg"), target.url("/a.jpg", "loop.linkland.example"),
                        f"http://[::ffff:127.0.0.1]:{target.port}/a.jpg", "http://inside.linkland.example/a.jpg",
                        "file:///etc/passwd"):
        with pytest.raises(Exception) as raised:
            with client.stream("GET", "https://cdn.linkland.example/a.jpg"):
                pass
        assert "not fetched" in str(raised.value), (redirect_to, raised.value)
    assert target.connections == 0
    client.close()


@pytest.mark.parametrize("value", [
    "javascript:alert(document.cookie)", "file:///etc/passwd", "data:image/png;base64,iVBORw0KGgo=",
    "ftp://127.0.0.1/a.jpg", "/cdn/a.jpg", "cdn.linkland.example/a.jpg", "//127.0.0.1/a.jpg", "http:///a.jpg",
])
def test_values_that_are_not_web_links_are_never_fetched(tmp_path, value):
    archive = Archive(tmp_path / "archive")
    result = run(archive, Platform(base_url="http://127.0.0.1:9", resolve=resolver({})), value)
    assert result["status"] == "ok", result
    [(position, status, cause, error)] = slots(archive)
    assert (status, cause) == ("failed", "blocked") and error.startswith("not fetched:"), (status, cause, error)
    archive.close()


@pytest.mark.parametrize("address, public", [
    ("127.0.0.1", False), ("10.1.2.3", False), ("192.168.1.1", False), ("172.16.0.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("::1", False),
    ("::ffff:127.0.0.1", False), ("fe80::1%eth0", False), ("fc00::1", False), ("2002:7f00:1::", False),
    ("64:ff9b::a00:1", False), ("224.0.0.1", False), ("93.184.215.14", True), ("2606:4700::1111", True),
])
def test_what_counts_as_a_public_address(address, public):
    assert is_public_address(address) is public


# --------------------------------------------------------------------------- 11.3 bounded downloads


@pytest.fixture
def disk_guard(monkeypatch):
    """The hostile servers send without end: should a bound not hold, the test fails at
    50 MB written instead of filling the disk (and pytest-timeout stops a hang)."""
    import archiver.archive.media

    real_write = archiver.archive.media.write_bytes
    written = [0]

    def guarded(out, chunk: bytes) -> None:
        written[0] += len(chunk)
        assert written[0] < 50_000_000, "a bound did not hold: 50 MB written"
        real_write(out, chunk)

    monkeypatch.setattr(archiver.archive.media, "write_bytes", guarded)


def store(tmp_path: Path, **limits) -> MediaStore:
    return MediaStore(tmp_path / "media", limits=DownloadLimits(**limits))


def loopback_client() -> ApiClient:
    return ApiClient(links=LinkPolicy.for_account("http://127.0.0.1"), sleep=lambda s: None)


def parts(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith((".part", ".validator"))]


@pytest.mark.timeout(60)
def test_an_endless_response_stops_at_the_size_cap_and_leaves_nothing(tmp_path, target, disk_guard):
    media = store(tmp_path, max_file_gb=0.0002)   # 200 KB
    with loopback_client() as client, pytest.raises(MediaError, match="past the cap of 200000 bytes"):
        media.download(client, target.url("/endless"), key="k")
    assert parts(tmp_path) == []
    assert not any(p.is_file() for p in (tmp_path / "media").rglob("*"))


@pytest.mark.timeout(60)
def test_a_size_announced_above_the_cap_is_not_downloaded(tmp_path, target, disk_guard):
    media = store(tmp_path)   # the default cap: 20 GB
    with loopback_client() as client, pytest.raises(MediaError, match=r"announces 50\.0 GB, above the cap of 20\.0 GB"):
        media.download(client, target.url("/huge"), key="k")
    assert parts(tmp_path) == []


@pytest.mark.timeout(60)
def test_a_server_trickling_a_byte_a_second_is_cut_off(tmp_path, target, disk_guard):
    """Each read of the clock is one second later and lets the server send its next byte:
    a byte a second, as the server would really send it, with no waiting."""
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        target.trickle_permits.release()
        return now[0]

    media = MediaStore(tmp_path / "media", limits=DownloadLimits(), clock=clock)
    with loopback_client() as client, pytest.raises(MediaError, match=r"bytes/s for 60 s, below downloads.min_kb_per_second"):
        media.download(client, target.url("/trickle"), key="k")
    assert now[0] < 200, "cut off after about a minute of its time"


@pytest.mark.timeout(60)
def test_one_file_may_not_take_longer_than_its_total_time(tmp_path, target, disk_guard):
    now = [0.0]

    def clock() -> float:   # an hour passes with every read (fast enough: 64 KB per chunk)
        now[0] += 3600.0
        return now[0]

    media = MediaStore(tmp_path / "media", limits=DownloadLimits(max_file_hours=2, min_kb_per_second=0.001),
                       clock=clock)
    with loopback_client() as client, pytest.raises(MediaError, match=r"still downloading after 2 h"):
        media.download(client, target.url("/endless"), key="k")


def test_a_full_disk_removes_the_partial_file_fails_the_run_and_the_next_run_works(tmp_path, target, monkeypatch):
    import archiver.archive.media

    archive = Archive(tmp_path / "archive")
    platform = lambda: Platform(base_url=f"http://127.0.0.1:{target.port}")  # noqa: E731
    urls = (target.url("/a.jpg"), target.url("/b.png"))
    real_write = archiver.archive.media.write_bytes
    written: list[int] = []

    def disk_fills_up(out, chunk: bytes) -> None:
        if written:   # the first file fits; the disk is full in the middle of the second
            real_write(out, chunk[:100])
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(chunk))
        real_write(out, chunk)

    monkeypatch.setattr(archiver.archive.media, "write_bytes", disk_fills_up)
    failed = run(archive, platform(), *urls)
    assert failed["status"] == "failed", failed
    assert re.fullmatch(r"disk full: \d+ MB needed in .+; nothing of the unfinished page was kept; "
                        r"free some space and run again", failed["message"]), failed["message"]
    assert str(archive.media_root) in failed["message"]
    assert parts(archive.media_root) == [], "no partial file is left"
    assert archive.db.execute("SELECT count(*) FROM posts").fetchone()[0] == 0

    monkeypatch.setattr(archiver.archive.media, "write_bytes", real_write)   # space again
    again = run(archive, platform(), *urls)
    assert again["status"] == "ok" and again["counts"]["media_saved"] == 2, again
    assert [row[:2] for row in slots(archive)] == [(0, "ok"), (1, "ok")]
    assert parts(archive.media_root) == []
    archive.close()


def test_the_downloads_table_of_the_config(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[downloads]\nmax_file_gb = 4.5\nmax_file_hours = 2\nmin_kb_per_second = 8\n")
    limits = load_config(path).downloads
    assert (limits.max_file_bytes, limits.max_file_seconds, limits.min_bytes_per_second) == (4_500_000_000, 7200, 8000)
    assert load_config(tmp_path / "config.toml").downloads == DownloadLimits(4.5, 2, 8)
    path.write_text("[downloads]\nmax_file_gb = 0\n")
    with pytest.raises(ConfigError, match=r"line 2: downloads.max_file_gb = 0: expected a number above 0"):
        load_config(path)
    path.write_text("[archive]\n")
    assert load_config(path).downloads.max_file_bytes == 20 * 10**9


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "2130706433", "0x7f000001", "127.1",
                                  "0.0.0.0", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"])
def test_every_spelling_of_loopback_is_refused(tmp_path, target, host):
    """Spellings of this machine that the system's resolver turns into 127.0.0.1 (or ::1)
    without asking any DNS: the real resolver is used, and the check is on its answer."""
    media = MediaStore(tmp_path / "media")
    client = ApiClient(links=LinkPolicy.for_account("https://api.linkland.example"), sleep=lambda s: None)
    with client, pytest.raises(MediaError, match="not fetched: .* is a private or local address"):
        media.download(client, target.url("/a.jpg", host), key="k", attempts=1)
    assert target.connections == 0


def test_a_full_disk_while_copying_a_file_out_of_an_export_fails_the_run_and_leaves_nothing(tmp_path, monkeypatch):
    import io

    import archiver.archive.media

    archive = Archive(tmp_path / "archive")
    real_write = archiver.archive.media.write_bytes

    def no_space(out, chunk: bytes) -> None:
        real_write(out, chunk[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    def page() -> Page:
        refs = [MediaRef(name, "image", position, opener=lambda body=body: io.BytesIO(body))
                for position, (name, body) in enumerate([("media/a.jpg", JPEG), ("media/b.png", PNG)])]
        return Page("posts", [Post(native_id="1", created_at="2026-11-01T00:00:00Z", media=refs)],
                    state={"done": True})

    def import_once() -> dict:
        runner = Runner(archive, Platform(), progress=lambda line: None)
        return runner.run(lambda ctx: iter([page()]), kind="import", mode="export.zip", source="export:" + "0" * 64)

    monkeypatch.setattr(archiver.archive.media, "write_bytes", no_space)
    failed = import_once()
    assert failed["status"] == "failed" and failed["message"].startswith("disk full: 1 MB needed in "), failed
    assert parts(archive.media_root) == [] and archive.db.execute("SELECT count(*) FROM posts").fetchone()[0] == 0
    monkeypatch.setattr(archiver.archive.media, "write_bytes", real_write)
    again = import_once()
    assert again["status"] == "ok" and again["counts"]["media_saved"] == 2, again
    archive.close()


def test_a_signed_download_link_from_a_payload_is_held_to_the_accounts_policy(tmp_path, target):
    """YouTube's Data Portability answer names the links its archive parts download from:
    for an account on the real Google (no base URL), a link to 127.0.0.1 is not fetched."""
    from archiver.net.links import BlockedLink
    from archiver_connectors.youtube import YouTubeConnector
    from archiver_connectors.youtube.api import PortabilityApi

    connector = YouTubeConnector(AccountConfig(name="main", platform="youtube"), secrets=None)
    portability = PortabilityApi("https://dataportability.googleapis.com", tokens=None,
                                 links=connector.link_policy(), sleep=lambda s: None)
    with open(tmp_path / "part.zip", "wb") as dest, pytest.raises(BlockedLink, match="127.0.0.1 is a private"):
        portability.download(target.url("/a.jpg"), dest)
    portability.client.close()
    assert target.connections == 0
