"""Media: retried like API calls, repaired by later runs, expired links not fetched, one
summary line per cause. The real runner, downloader, writer and media store; the CDN is an
httpx.MockTransport (or a platform's stateful fake), waits and "now" are fake clocks.

What is proved, on archive rows and on the requests the CDN saw:
- a 503 with Retry-After on a media file waits exactly that long (through the connector's
  sleep) and then stores the file — the API's retry policy, not a bare client;
- a signed link whose own expiry has passed is never requested; its slot says
  "link expired on DATE" and the run ends with one line per cause saying what to do;
- every API run first tries the failed slots again, oldest attempt first, a capped number,
  with fresh links from ``Connector.refresh_media`` where the connector gives them
  (TikTok: /v2/video/query/; Instagram: the media id endpoint);
- `archiver status` counts the holes left by cause; `archiver status --errors` lists them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path

import httpx
import pytest

from archiver.config import AccountConfig
from archiver.connector import Connector
from archiver.records import MediaRef, Page, Post
from archiver.sync.runner import Runner
from archive_rows import one, rows

PNG = b"\x89PNG\r\n\x1a\n" + b"\x11" * 400
JPEG = b"\xff\xd8\xff\xe0" + b"\x22" * 400
NOW = dt.datetime(2025, 12, 10, 12, 0, tzinfo=dt.timezone.utc)
EXPIRED = int(dt.datetime(2025, 12, 1, 8, 0, tzinfo=dt.timezone.utc).timestamp())
VALID = int(dt.datetime(2025, 12, 11, 8, 0, tzinfo=dt.timezone.utc).timestamp())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Cdn:
    """A CDN: path -> body; ``script`` gives per-path answers to use first (status codes,
    with headers), then the body. Every request is kept."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.script: dict[str, list[tuple[int, dict]]] = {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queued = self.script.get(request.url.path)
        if queued:
            status, headers = queued.pop(0)
            return httpx.Response(status, headers=headers)
        body = self.files.get(request.url.path)
        if body is None:
            return httpx.Response(404)
        return httpx.Response(200, content=body, headers={"ETag": f'"{sha(body)[:12]}"'})

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


class CdnConnector(Connector):
    """A connector with nothing of its own: the core's media client and repair hook."""

    name = "cdnland"
    title = "CDN land"
    default_base_url = "http://127.0.0.1:9"

    def __init__(self, cdn: Cdn, sleeps: list[float], fresh: dict[str, list[MediaRef]] | None = None):
        super().__init__(AccountConfig(name="main", platform="cdnland"), secrets=None,
                         transport=httpx.MockTransport(cdn), sleep=sleeps.append)
        self.fresh = fresh
        self.asked: list[list[str]] = []

    def refresh_media(self, post_ids):
        self.asked.append(list(post_ids))
        if self.fresh is None:
            return super().refresh_media(post_ids)
        return {post_id: refs for post_id, refs in self.fresh.items() if post_id in post_ids}


def post(post_id: str, *urls: str, created: str = "2025-11-01T00:00:00Z") -> Post:
    return Post(native_id=post_id, created_at=created,
                media=[MediaRef(url, "image", position) for position, url in enumerate(urls)])


def run(archive, connector, records, *, kind="export", source="api", limit=None) -> dict:
    runner = Runner(archive, connector, progress=lambda line: None)
    runner.downloads.clock = lambda: NOW
    if limit is not None:
        connector.account.repairs_per_run = limit
    return runner.run(lambda ctx: iter([Page("posts", records)]), kind=kind, mode="incremental", source=source)


def slots(archive) -> dict[tuple[str, int], tuple]:
    return {(r[0], r[1]): r[2:] for r in rows(
        archive.db, "SELECT post_id, position, status, cause, error, sha256 FROM post_media ORDER BY 1, 2")}


# --------------------------------------------------------------------------- retry policy


def test_a_media_file_answered_503_with_retry_after_waits_that_long_and_is_stored(archive):
    cdn = Cdn({"/a.png": PNG})
    cdn.script["/a.png"] = [(503, {"Retry-After": "7"}), (429, {"Retry-After": "3"})]
    sleeps: list[float] = []
    result = run(archive, CdnConnector(cdn, sleeps), [post("p1", "https://cdn.test/a.png?sig=1")])

    assert result["status"] == "ok" and result["errors"] == []
    assert cdn.paths() == ["/a.png"] * 3
    assert sleeps[:2] == [7, 3]
    assert slots(archive)[("p1", 0)] == ("ok", None, None, sha(PNG))


def test_a_media_server_down_for_good_is_given_up_after_the_api_policy_attempts(archive):
    from archiver.net.client import RetryPolicy

    cdn = Cdn({})
    cdn.script["/a.png"] = [(502, {})] * 50
    sleeps: list[float] = []
    result = run(archive, CdnConnector(cdn, sleeps), [post("p1", "https://cdn.test/a.png")])

    assert result["status"] == "ok"
    assert len(cdn.requests) == RetryPolicy().attempts
    assert slots(archive)[("p1", 0)][:2] == ("failed", "unreachable")
    assert result["summary"] == ["1 file: the media server did not answer, even after retries — "
                                 "tried again at the start of the next run"]


def test_a_media_host_that_does_not_answer_is_not_asked_again_in_the_same_run(archive):
    """Minutes of backoff for one file are enough: the host's other files wait for the
    repair pass of a later run instead of each waiting as long."""
    from archiver.net.client import RetryPolicy

    from archiver.sync.downloads import MediaDownloader

    down = MediaDownloader.HOST_DOWN_AFTER
    cdn = Cdn({"/g.png": PNG})
    for i in range(down + 2):
        cdn.script[f"/f{i}.png"] = [(503, {})] * 50
    result = run(archive, CdnConnector(cdn, []),
                 [post(f"p{i}", f"https://cdn.test/f{i}.png") for i in range(down + 2)]
                 + [post("elsewhere", "https://other.test/g.png")])
    assert cdn.paths() == [p for i in range(down) for p in [f"/f{i}.png"] * RetryPolicy().attempts] + ["/g.png"]
    assert [slots(archive)[(f"p{i}", 0)][:2] for i in range(down + 2)] == [("failed", "unreachable")] * (down + 2)
    assert slots(archive)[("elsewhere", 0)][0] == "ok"
    assert result["summary"] == [f"{down + 2} files: the media server did not answer, even after retries — "
                                 "tried again at the start of the next run"]


def test_a_media_host_where_nothing_listens_is_not_asked_again_in_the_same_run(archive):
    from archiver.net.client import RetryPolicy

    asked = []

    def refused(request):
        asked.append(request.url.path)
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    connector = CdnConnector(Cdn({}), [])
    connector.transport = httpx.MockTransport(refused)
    run(archive, connector, [post(f"p{i}", f"https://cdn.test/f{i}.png") for i in range(5)])
    assert asked == ["/f0.png"] * RetryPolicy().attempts
    assert [s[:2] for s in slots(archive).values()] == [("failed", "unreachable")] * 5


# --------------------------------------------------------------------------- expired links


@pytest.mark.parametrize("url, expected", [
    (f"https://p16-sign.tiktokcdn-us.com/obj~tplv-noop.image?x-expires={EXPIRED}&x-signature=Zx9",
     dt.datetime.fromtimestamp(EXPIRED, dt.timezone.utc)),
    (f"https://scontent.cdninstagram.com/v/4455_n.jpg?_nc_cat=1&oh=00_AYC&oe={EXPIRED:X}",
     dt.datetime.fromtimestamp(EXPIRED, dt.timezone.utc)),
    ("https://storage.googleapis.com/b/archive-part-001.zip?X-Goog-Algorithm=GOOG4-RSA-SHA256"
     "&X-Goog-Date=20251201T080000Z&X-Goog-Expires=21600&X-Goog-Signature=ab12",
     dt.datetime(2025, 12, 1, 14, 0, tzinfo=dt.timezone.utc)),
    ("https://bucket.s3.amazonaws.com/k?X-Amz-Date=20251201T080000Z&X-Amz-Expires=60&X-Amz-Signature=1",
     dt.datetime(2025, 12, 1, 8, 1, tzinfo=dt.timezone.utc)),
    (f"https://d111.cloudfront.net/v.mp4?Expires={EXPIRED}&Signature=x&Key-Pair-Id=K",
     dt.datetime.fromtimestamp(EXPIRED, dt.timezone.utc)),
    ("https://www.google.com/search?q=x&oe=utf8", None),          # a parameter that is no expiry
    ("https://files.mastodon.social/media_attachments/files/1/original/a.png", None),
])
def test_link_expiry_reads_the_expiry_a_signed_link_carries(url, expected):
    from archiver.sync.downloads import link_expiry

    assert link_expiry(url) == expected


def test_an_expired_signed_link_is_not_fetched_and_its_slot_says_when(archive):
    cdn = Cdn({"/v/old.jpg": JPEG, "/v/new.jpg": JPEG[:-1]})
    connector = CdnConnector(cdn, [])
    result = run(archive, connector, [post("p1", f"https://cdn.test/v/old.jpg?oe={EXPIRED:X}&oh=sig",
                                           f"https://cdn.test/v/new.jpg?oe={VALID:X}&oh=sig")],
                 kind="import", source="export:abc")

    assert cdn.paths() == ["/v/new.jpg"]              # the dead link was never asked for
    status, cause, error, stored = slots(archive)[("p1", 0)]
    assert (status, cause, error, stored) == ("failed", "expired", "link expired on 2025-12-01", None)
    assert slots(archive)[("p1", 1)][0] == "ok"
    assert result["summary"] == [
        "1 file: links expired on 2025-12-01 — request a new export (its links work for a few days only), "
        "or run the API export (`archiver export`) where the platform's API gives the files"]
    (summary,) = one(archive.db, "SELECT summary FROM runs WHERE run_id=?", result["run_id"]),
    assert json.loads(summary) == result["summary"]


def test_an_expired_link_with_a_refresh_hook_is_replaced_before_any_request(archive):
    cdn = Cdn({"/v/a.jpg": JPEG})
    ref = MediaRef(f"https://cdn.test/v/a.jpg?oe={EXPIRED:X}", "image",
                   refresh=lambda: f"https://cdn.test/v/a.jpg?oe={VALID:X}")
    run(archive, CdnConnector(cdn, []), [Post(native_id="p1", created_at="2025-11-01T00:00:00Z", media=[ref])])
    assert [r.url.params["oe"] for r in cdn.requests] == [f"{VALID:X}"]
    assert slots(archive)[("p1", 0)][0] == "ok"


def test_many_failed_files_end_in_one_line_per_cause_not_a_log_line_per_file(archive, caplog):
    files = {f"/ok{i}.png": PNG + bytes([i]) for i in range(3)}
    cdn = Cdn(files)
    records = [post(f"old{i}", f"https://cdn.test/x{i}.jpg?x-expires={EXPIRED}") for i in range(36)]
    records += [post(f"gone{i}", f"https://cdn.test/missing{i}.png") for i in range(4)]
    records += [post(f"fine{i}", f"https://cdn.test/ok{i}.png") for i in range(3)]
    with caplog.at_level(logging.INFO):
        result = run(archive, CdnConnector(cdn, []), records, kind="import", source="export:abc")

    assert result["summary"] == [
        "36 files: links expired on 2025-12-01 — request a new export (its links work for a few days only), "
        "or run the API export (`archiver export`) where the platform's API gives the files",
        "4 files: refused by the server (HTTP 404) — tried again at the start of the next run"]
    # The full list stays in the run's record, one entry per file with its cause.
    assert len(result["errors"]) == 40 and {e["cause"] for e in result["errors"]} == {"expired", "refused"}
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged == result["summary"]


def test_a_flaky_media_server_leaves_no_log_line_per_attempt(archive, caplog):
    """Retries of media are told at DEBUG: what a person reads is the summary."""
    cdn = Cdn({f"/f{i}.png": PNG + bytes([i]) for i in range(4)})
    for i in range(4):
        cdn.script[f"/f{i}.png"] = [(503, {"Retry-After": "1"}), (502, {})]
    cdn.script["/f3.png"] = [(503, {})] * 50
    with caplog.at_level(logging.INFO):
        result = run(archive, CdnConnector(cdn, []), [post(f"p{i}", f"https://cdn.test/f{i}.png") for i in range(4)])
    assert [s[0] for s in slots(archive).values()] == ["ok", "ok", "ok", "failed"]
    # (What archiver's loggers say: the command line shows those, at INFO and above.)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("archiver")]
    assert logged == result["summary"] == ["1 file: the media server did not answer, even after retries — "
                                           "tried again at the start of the next run"]


# --------------------------------------------------------------------------- repair


def test_every_run_first_repairs_failed_slots_oldest_first_and_capped(archive, monkeypatch):
    import itertools

    ticks = itertools.count()
    monkeypatch.setattr("archiver.archive.writer.now_utc",
                        lambda: f"2025-12-10T12:{next(ticks) // 60:02d}:{next(ticks) % 60:02d}Z")
    cdn = Cdn({})
    connector = CdnConnector(cdn, [])
    # Five posts whose files fail (the server has none of them yet), one run after another.
    for i in range(5):
        run(archive, connector, [post(f"p{i}", f"https://cdn.test/f{i}.png")])
    assert [s[0] for s in slots(archive).values()] == ["failed"] * 5
    # The files appear; the next run reads nothing new but repairs the 2 oldest holes first.
    cdn.files.update({f"/f{i}.png": PNG + bytes([i]) for i in range(5)})
    cdn.requests.clear()
    result = run(archive, connector, [], limit=2)
    assert cdn.paths() == ["/f0.png", "/f1.png"]
    assert result["counts"]["media_repaired"] == 2
    assert [slots(archive)[(f"p{i}", 0)][0] for i in range(5)] == ["ok", "ok", "failed", "failed", "failed"]
    # The run after goes on with the rest.
    result = run(archive, connector, [], limit=2)
    assert result["counts"]["media_repaired"] == 2
    result = run(archive, connector, [], limit=2)
    assert result["counts"]["media_repaired"] == 1
    assert [s[0] for s in slots(archive).values()] == ["ok"] * 5
    assert one(archive.db, "SELECT count(*) FROM media") == 5


def test_the_repair_cap_is_the_accounts_repairs_per_run_key(tmp_path, archive):
    from archiver.config import load_config

    config = tmp_path / "config.toml"
    config.write_text('[accounts.main]\nplatform = "cdnland"\nrepairs_per_run = 1\n\n'
                      '[accounts.other]\nplatform = "cdnland"\n', encoding="utf-8")
    accounts = {a.name: a for a in load_config(config).accounts}
    assert (accounts["main"].repairs_per_run, accounts["other"].repairs_per_run) == (1, 50)
    assert "repairs_per_run" not in accounts["main"].options

    cdn = Cdn({})
    connector = CdnConnector(cdn, [])
    connector.account = accounts["main"]
    for i in range(3):
        run(archive, connector, [post(f"p{i}", f"https://cdn.test/f{i}.png")])
    cdn.files.update({f"/f{i}.png": PNG + bytes([i]) for i in range(3)})
    cdn.requests.clear()
    assert run(archive, connector, [])["counts"]["media_repaired"] == 1
    assert len(cdn.paths()) == 1


def test_repair_asks_the_connector_for_fresh_links_where_links_expire(archive):
    cdn = Cdn({"/v/a.jpg": JPEG})
    connector = CdnConnector(cdn, [])
    run(archive, connector, [post("p1", f"https://cdn.test/v/a.jpg?oe={EXPIRED:X}&oh=old")])
    assert slots(archive)[("p1", 0)][:2] == ("failed", "expired") and cdn.requests == []

    connector.fresh = {"p1": [MediaRef(f"https://cdn.test/v/a.jpg?oe={VALID:X}&oh=new", "image", 0)]}
    result = run(archive, connector, [])
    assert connector.asked[-1] == ["p1"]
    assert [r.url.params["oh"] for r in cdn.requests] == ["new"]
    assert result["counts"]["media_repaired"] == 1
    assert slots(archive)[("p1", 0)] == ("ok", None, None, sha(JPEG))
    # The stored link has no query: the signature never lands in the archive.
    assert one(archive.db, "SELECT source_url FROM post_media") == "https://cdn.test/v/a.jpg"


def test_an_expired_hole_without_a_fresh_link_is_not_requested_again(archive):
    cdn = Cdn({"/v/a.jpg": JPEG})
    connector = CdnConnector(cdn, [])
    run(archive, connector, [post("p1", f"https://cdn.test/v/a.jpg?oe={EXPIRED:X}&oh=old")])
    result = run(archive, connector, [])
    assert cdn.requests == []            # its link without the signature would only be refused
    assert "media_repaired" not in result["counts"]
    assert slots(archive)[("p1", 0)][:2] == ("failed", "expired")


def test_an_import_run_does_not_repair(archive):
    cdn = Cdn({})
    connector = CdnConnector(cdn, [])
    run(archive, connector, [post("p1", "https://cdn.test/a.png")])
    cdn.files["/a.png"] = PNG
    cdn.requests.clear()
    run(archive, connector, [], kind="import", source="export:abc")
    assert cdn.requests == []


# --------------------------------------------------------------------------- platforms


def test_tiktok_repairs_failed_covers_with_fresh_links_from_video_query(tmp_path):
    from archiver_connectors.tiktok.sim.fake import FakeTikTokConfig
    from tiktok_sync_harness import TikTokHarness

    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=8, seed=41))
    broken: set[str] = set()

    def two_covers_refused(request):
        if request.url.path.startswith("/cdn/img/") and (len(broken) < 2 or request.url.path in broken):
            broken.add(request.url.path)
            return httpx.Response(404)
        return None

    h.faults.append(two_covers_refused)
    assert h.run()["status"] == "ok"
    failed = {r["post_id"] for r in h.rows("SELECT post_id FROM post_media WHERE status='failed'")}
    assert failed                                    # (the other refused picture may be the avatar)
    # Hours later every link of the first run has expired; the CDN works again.
    h.faults.clear()
    h.fake.advance(8 * 3600)
    mark = len(h.exchanges)
    result = h.run()
    assert result["status"] == "ok" and result["counts"]["media_repaired"] == len(failed)
    queried = [e.body["filters"]["video_ids"] for e in h.exchanges[mark:] if e.path == "/v2/video/query/"]
    assert sorted(queried[0]) == sorted(failed)     # the first call of the run asks for those
    assert h.value("SELECT count(*) FROM post_media WHERE status='failed'") == 0


def test_instagram_repairs_failed_files_with_fresh_links_from_the_media_endpoint(tmp_path):
    from archiver_connectors.instagram.sim.fake import FakeInstagramConfig
    from test_instagram_api import InstagramHarness

    h = InstagramHarness(tmp_path, FakeInstagramConfig())
    broken: set[str] = set()

    def two_files_refused(request):
        if request.url.path.startswith("/cdn/v/") and (len(broken) < 2 or request.url.path in broken):
            broken.add(request.url.path)
            return httpx.Response(404)
        return None

    h.faults.append(two_files_refused)
    assert h.run()["status"] == "ok"
    failed = {r["post_id"] for r in h.rows("SELECT post_id FROM post_media WHERE status='failed'")}
    holes = h.value("SELECT count(*) FROM post_media WHERE status='failed'")
    assert failed                                    # (the other refused picture may be the avatar)
    h.faults.clear()
    mark = len(h.requests)
    result = h.run()
    assert result["status"] == "ok" and result["counts"]["media_repaired"] == holes
    asked = {r.url.path.rsplit("/", 1)[1] for r in h.requests[mark:]
             if "media_url" in r.url.params.get("fields", "") and "/me/" not in r.url.path}
    assert failed <= asked
    assert h.value("SELECT count(*) FROM post_media WHERE status='failed'") == 0


# --------------------------------------------------------------------------- status


def test_status_counts_the_holes_by_cause_and_lists_them_with_errors(tmp_path):
    from click.testing import CliRunner

    from archiver.archive import Archive
    from archiver.cli.main import main

    archive = Archive(tmp_path / "archive")
    cdn = Cdn({})
    run(archive, CdnConnector(cdn, []), [post("p1", f"https://cdn.test/v/a.jpg?oe={EXPIRED:X}"),
                                         post("p2", "https://cdn.test/b.png")], kind="import", source="export:1")
    archive.close()
    plain = CliRunner().invoke(main, ["status", "--archive", str(tmp_path / "archive")])
    assert plain.exit_code == 0, plain.output
    assert "holes:      2 files without their media (1 expired, 1 refused)" in plain.output
    assert "1 file: links expired on 2025-12-01" in plain.output
    detailed = CliRunner().invoke(main, ["status", "--errors", "--archive", str(tmp_path / "archive")])
    assert detailed.exit_code == 0, detailed.output
    assert "image of p1 (https://cdn.test/v/a.jpg): link expired on 2025-12-01" in detailed.output
    assert "image of p2 (https://cdn.test/b.png): HTTP 404" in detailed.output


# --------------------------------------------------------------------------- progress


def test_a_long_download_reports_its_bytes_to_a_progress_bar(archive):
    big = PNG + bytes(range(256)) * 2400                  # about 600 KB
    cdn = Cdn({"/v.mp4": big})

    class Reporter:
        def __init__(self):
            self.lines, self.seen = [], []

        def __call__(self, line):
            self.lines.append(line)

        def bytes(self, name, done, total):
            self.seen.append((name, done, total))

    reporter = Reporter()
    runner = Runner(archive, CdnConnector(cdn, []), progress=reporter)
    runner.run(lambda ctx: iter([Page("posts", [post("p1", "https://cdn.test/v.mp4")])]), kind="export",
               mode="incremental")
    assert reporter.seen and reporter.seen[-1] == ("image", len(big), len(big))
    assert [done for _, done, _ in reporter.seen] == sorted(done for _, done, _ in reporter.seen)
    assert reporter.lines and reporter.lines[-1].startswith("posts: +1 records")


def test_the_terminal_shows_a_bar_with_the_bytes_of_a_long_download():
    import io

    from rich.console import Console

    from archiver.cli._common import progress as _progress

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    with _progress("tiktok:main", console=console) as progress:
        progress("videos: +20 records")
        progress.bytes("video", 300_000, 600_000)
        progress.bytes("cover", 1_000, 2_000)             # a small file: no bar for it
    drawn = screen.getvalue()
    assert "tiktok:main: videos: +20 records" in drawn
    assert "0.3/0.6 MB" in drawn and "cover" not in drawn


def test_files_an_export_names_but_does_not_hold_are_one_line_of_their_own(archive):
    from archiver.sync.imports import NotInExport

    def absent(name):
        def opener():
            raise NotInExport(f"not in the export: it does not hold {name!r}")
        return opener

    records = [Post(native_id=f"v{i}", created_at="2025-11-01T00:00:00Z",
                    media=[MediaRef(f"videos/{i}.mp4", "video", opener=absent(f"videos/{i}.mp4"))]) for i in range(3)]
    result = run(archive, CdnConnector(Cdn({}), []), records, kind="import", source="export:abc")
    assert result["summary"] == ["3 files: named by the export but not in it — the platform left them out; "
                                 "a new export may hold them"]
    assert {s[1] for s in slots(archive).values()} == {"missing"}
