"""The downloads of platforms' export files are bounded like media files (issue 11.3):
TikTok's Data Portability zip and YouTube's Data Portability archive parts go through the
same bounded copy (media.copy_bounded) with the same [downloads] limits. Each fake answers
the download with a hostile body (fakeserver.hostile_download): endless, a trickle of a byte
per read, or a size announced far above the cap. The run fails naming the file and the
config key to raise, no partial file is left, and the next run (a sane server) imports.
The clock of the bounds is a fake (one second per read): no waiting."""

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

    monkeypatch.setattr("archiver.media.download_clock", clock)
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
