"""The downloads of platforms' export files are bounded like media files (issue 11.3):
TikTok's Data Portability zip and YouTube's Data Portability archive parts go through the
same bounded copy (media.copy_bounded) with the same [downloads] limits. Each fake answers
the download with a hostile body (fakeserver.hostile_download): endless, a trickle of a byte
per read, or a size announced far above the cap. The run fails naming the file and the
config key to raise, no partial file is left, and the next run (a sane server) imports.
The clock of the bounds is a fake (one second per read): no waiting. The same attacks over
real HTTP on 127.0.0.1 (test_safe_fetch's attack server) against YouTube's part download
and Bluesky's repository download, under a 50 MB write guard."""

from __future__ import annotations

import re

import pytest

from archiver.config import DownloadLimits
from test_tiktok_sync import DOWNLOAD_PATH, portability_harness
from test_youtube_portability import assert_export_imported, harness as youtube_harness
from tiktok_sync_harness import ticking_clock

CUTS = {
    # fault: (limits, what the run's message says)
    "endless": (DownloadLimits(max_file_gb=0.0002),
                r"goes on past the cap of 200000 bytes \(downloads.max_file_gb in the config\): cut off, nothing kept"),
    "trickle": (DownloadLimits(),
                r"bytes/s for 60 s, below downloads.min_kb_per_second = 1"),
    "oversize": (DownloadLimits(),
                 r"announces 50\.0 GB, above the cap of 20\.0 GB \(downloads.max_file_gb in the config\): "
                 r"not downloaded"),
}


@pytest.fixture(autouse=True)
def fake_download_clock(monkeypatch):
    """Every read of the downloads' clock is a second later."""
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    monkeypatch.setattr("archiver.archive.media.download_clock", clock)
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())
    return now


def leftovers(folder) -> list:
    return [p for p in folder.rglob("*") if "portability" in p.name or p.name.endswith(".part")]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", sorted(CUTS))
def test_tiktoks_export_zip_download_is_bounded(tmp_path, fault):
    limits, message = CUTS[fault]
    h = portability_harness(tmp_path, "single")
    h.ws.config.downloads = limits
    for _ in range(2):                 # pending, processing
        assert h.run()["status"] == "ok"
    h.fake.download_fault = fault
    mark = h.mark()
    failed = h.run()
    assert [e.status for e in h.sent(DOWNLOAD_PATH, mark)] == [200]
    assert failed["status"] == "failed", failed
    assert "TikTok's export zip (request " in failed["message"], failed["message"]
    assert re.search(message, failed["message"]), failed["message"]
    assert leftovers(h.archive.folder) == [], "no partial zip is left"
    assert h.state("portability")["request_id"], "the request is kept for the next run"

    h.fake.download_fault = None       # a sane server: the next run imports the export
    h.ws.config.downloads = DownloadLimits()
    assert h.run()["status"] == "ok"
    assert h.value("SELECT count(*) FROM follows WHERE kind='followers'") == 40


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", sorted(CUTS))
def test_youtubes_data_portability_part_download_is_bounded(tmp_path, monkeypatch, fault):
    limits, message = CUTS[fault]
    h = youtube_harness(tmp_path, monkeypatch)
    h.ws.config.downloads = limits
    h.fake.part_fault = fault
    failed = h.run()
    assert failed["status"] == "failed", failed
    assert "a Data Portability archive part: " in failed["message"], failed["message"]
    assert re.search(message, failed["message"]), failed["message"]
    assert "X-Goog-Signature" not in failed["message"], "the signed part of the link is never shown"
    assert leftovers(h.archive.folder) == [], "no partial part is left"
    assert h.state("portability")["jobs"], "the jobs are kept: the next run asks for fresh links"

    h.fake.part_fault = None
    h.ws.config.downloads = DownloadLimits()
    assert h.run()["status"] == "ok"
    assert_export_imported(h)


# --------------------------------------------------------------------------- over real HTTP

from test_safe_fetch import Target, disk_guard, target  # noqa: E402,F401 - the attack server and its fixtures


def served_bounds(target: Target, fault: str):
    """(path, limits, clock) for the loopback attack server: its trickle sends a byte each
    time the clock is read (lockstep), the clock moving a second a read."""
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        target.trickle_permits.release()
        return now[0]

    path = {"endless": "/endless", "trickle": "/trickle", "oversize": "/huge"}[fault]
    return path, CUTS[fault][0], clock


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", sorted(CUTS))
def test_a_data_portability_part_from_a_hostile_server_over_loopback_is_bounded(tmp_path, target, disk_guard, fault):
    from archiver.net.links import LinkPolicy
    from archiver.archive.media import DownloadCut
    from archiver_connectors.youtube.api import PortabilityApi

    path, limits, clock = served_bounds(target, fault)
    portability = PortabilityApi("http://127.0.0.1", tokens=None, links=LinkPolicy.for_account("http://127.0.0.1"),
                                 sleep=lambda s: None)
    with open(tmp_path / "part.zip", "wb") as dest, pytest.raises(DownloadCut, match=CUTS[fault][1]):
        portability.download(target.url(path), dest, limits=limits, clock=clock)
    portability.client.close()
    assert (tmp_path / "part.zip").stat().st_size <= 200_000 + 65536


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", sorted(CUTS))
def test_a_bluesky_repository_from_a_hostile_server_over_loopback_is_bounded(tmp_path, target, disk_guard, fault):
    from archiver.archive.media import DownloadCut
    from archiver_connectors.bluesky.api import BlueskyApi

    path, limits, clock = served_bounds(target, fault)
    target.redirects["/xrpc/com.atproto.sync.getRepo?did=did%3Aplc%3Ahostile"] = path
    api = BlueskyApi(tokens=None, pds_url=target.url(""), appview_url=target.url(""), sleep=lambda s: None)
    with open(tmp_path / "repo.car", "wb") as into, pytest.raises(DownloadCut, match=CUTS[fault][1]):
        api.get_repo("did:plc:hostile", into, limits=limits, clock=clock)
    api.client.close()
