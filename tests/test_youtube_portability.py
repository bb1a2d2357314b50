"""`archiver export` for YouTube with a Google Data Portability grant (EEA accounts), in
process: the real connector, runner, writer and media store against the stateful fake
(httpx.MockTransport), whose archive jobs answer Takeout zips of its own world. Each
test checks the archive's rows, sync_state and what the fake saw."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from archiver_connectors.youtube import YouTubeConnector
from archiver_connectors.youtube.api import PORTABILITY_GROUPS, PORTABILITY_SCOPES, SCOPE
from archiver_connectors.youtube.sim.fake import FakeYouTubeConfig
from test_youtube_api import BASE_URL, YouTubeHarness
from tiktok_sync_harness import ticking_clock

INITIATE = "/v1/portabilityArchive:initiate"
GRANT = " ".join([SCOPE, *PORTABILITY_SCOPES])


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())
    monkeypatch.setattr("archiver_connectors.youtube._now", ticking_clock())


def harness(tmp_path, monkeypatch, options: dict | None = None, **config) -> YouTubeHarness:
    defaults = dict(videos=8, followers=6, comment_threads=8, seed=11, granted_scopes=GRANT,
                    portability_polls_in_progress=0)
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(**{**defaults, **config}), options=options)
    h.account.portability = True
    return h


def sent(h: YouTubeHarness, path_part: str, since: int = 0) -> list[tuple]:
    return [entry for entry in list(h.fake.log)[since:] if path_part in entry[1]]


def initiated_groups(h: YouTubeHarness, since: int = 0) -> list[str]:
    """The resource groups of the initiate calls the fake accepted, in order."""
    jobs = list(h.fake.portability_jobs.values())
    accepted = [e for e in sent(h, INITIATE, since) if e[2] == 200]
    return [g for job in jobs[len(jobs) - len(accepted):] for g in job["resources"]] if accepted else []


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_export_imported(h: YouTubeHarness) -> None:
    """Every upload once, with its video file from the archive, merged with the API row;
    the owner's comments; the subscriptions as a complete following snapshot."""
    world = h.fake.portability_world()
    assert h.post_ids() == {v["id"] for v in h.fake.videos}
    assert h.value("SELECT count(*) FROM posts WHERE post_id LIKE 'provisional:%'") == 0
    for video in world.videos:
        assert h.value("SELECT sha256 FROM post_media WHERE post_id=? AND role='video'", video.video_id) \
            == sha256(video.content)
        sources = json.loads(h.value("SELECT sources FROM posts WHERE post_id=?", video.video_id))
        assert sources[0] == "api" and len(sources) == 2 and sources[1].startswith("export:"), sources
    # The owner's replies came through the API and the comments archive: one row each.
    assert world.comments
    for comment in world.comments:
        sources = json.loads(h.value("SELECT sources FROM comments WHERE comment_id=?", comment.comment_id))
        assert "api" in sources and any(s.startswith("export:") for s in sources)
    following = h.rows("SELECT member_count, complete, source FROM snapshots WHERE kind='following'")
    assert len(following) == 1 and following[0]["member_count"] == len(world.subscriptions) == 4
    assert following[0]["complete"] == 1 and following[0]["source"].startswith("export:")
    assert not list((h.archive.folder / ".tmp").glob("youtube-portability-*")), "downloaded parts are removed"


def test_jobs_per_group_are_polled_across_runs_then_imported_and_merged_with_the_api(tmp_path, monkeypatch):
    h = harness(tmp_path, monkeypatch, portability_polls_in_progress=2)

    first = h.run()
    assert first["status"] == "ok" and first["errors"] == [], first
    # One initiate per group the grant covers, one group each (Google's advice).
    assert initiated_groups(h) == list(PORTABILITY_GROUPS)
    bodies = [job["resources"] for job in h.fake.portability_jobs.values()]
    assert all(len(b) == 1 for b in bodies)
    state = h.state("portability")
    assert {g: j["id"] for g, j in state["jobs"].items()} == {
        job["resources"][0]: job_id for job_id, job in h.fake.portability_jobs.items()}
    assert sent(h, "/dataportability-prod/") == []

    # Still IN_PROGRESS: polled again, nothing initiated again.
    mark = h.mark()
    assert h.run()["status"] == "ok"
    assert sent(h, INITIATE, mark) == []
    assert len(sent(h, "/portabilityArchiveState", mark)) == len(PORTABILITY_GROUPS)
    assert h.state("portability")["jobs"] == state["jobs"]
    assert h.value("SELECT count(*) FROM post_media WHERE role='video'") == 0

    # COMPLETE: every part downloaded and imported.
    mark = h.mark()
    third = h.run()
    assert third["status"] == "ok" and third["errors"] == [], third
    assert sent(h, INITIATE, mark) == []
    assert len(sent(h, "/dataportability-prod/", mark)) == len(PORTABILITY_GROUPS)
    assert_export_imported(h)
    done = h.state("portability")
    assert "jobs" not in done and done["completed_at"] and done["access_type"] == "ACCESS_TYPE_ONE_TIME"
    assert done["groups"] == sorted(PORTABILITY_GROUPS)

    # Data Portability costs no YouTube units: the fake counted only Data API requests.
    api_requests = [e for e in h.fake.log if e[1].startswith("/youtube/v3/") and e[2] != 401]
    assert h.fake.units_today() == len(api_requests)

    # The one-time grant is used: later runs neither initiate nor poll.
    mark = h.mark()
    assert h.run()["status"] == "ok"
    assert sent(h, "/v1/", mark) == []
    assert h.value("SELECT count(*) FROM posts") == len(h.fake.videos)


def test_the_parts_a_data_portability_import_did_not_read_are_named_in_the_runs_summary(tmp_path, monkeypatch):
    """Google's archive of a group holds files the importer does not read (here the
    archive's own archive_browser.html): the run that imported it names them in its
    summary, shown at its end and kept for `archiver status`, not only in the log."""
    import io
    import zipfile

    h = harness(tmp_path, monkeypatch)

    def with_a_browser_page(request):
        # Takeout-style archives carry their own archive_browser.html beside the data.
        if not request.url.path.startswith("/dataportability-prod/"):
            return None
        job = h.fake.portability_jobs.get(request.url.path.split("/")[2]) or {}
        if job.get("resources") != ["youtube.channel"]:
            return None
        answer = h.fake.handle(request)
        if answer.status_code != 200:
            return answer
        buffer = io.BytesIO(answer.content)
        with zipfile.ZipFile(buffer, "a") as part:
            part.writestr("Takeout/archive_browser.html", "<html><body>Your archive</body></html>")
        return httpx.Response(200, content=buffer.getvalue(), headers={"content-type": "application/zip"})

    h.faults.append(with_a_browser_page)
    for _ in range(3):
        result = h.run()
        assert result["status"] == "ok", result
        if h.state("portability").get("completed_at"):
            break
    assert_export_imported(h)
    notes = [line for line in result["summary"] if "Data Portability export of" in line]
    assert notes and all("not imported: 1 file(s)" in line and "archive_browser.html" in line for line in notes)
    stored = json.loads(h.value("SELECT summary FROM runs WHERE run_id=?", result["run_id"]))
    assert notes[0] in stored


def test_an_exhausted_one_time_grant_is_reported_with_the_renewal_steps_and_renewed_by_auth(tmp_path, monkeypatch):
    h = harness(tmp_path, monkeypatch, portability_refused_status="FAILED_PRECONDITION")
    h.fake.exhaust_portability()     # e.g. its one export was made by another tool

    result = h.run()

    assert result["status"] == "ok", result
    [error] = [e for e in result["errors"] if e["item"] == "portability"]
    assert "FAILED_PRECONDITION" in error["error"] and "one-time" in error["error"]
    assert f"archiver auth youtube --account {h.account.name}" in error["error"]
    state = h.state("portability")
    assert set(state) == {"grant", "exhausted_at"}
    assert h.post_ids() == {v["id"] for v in h.fake.videos}        # the API part ran as always

    # Not asked again (nor reported again) with the same grant.
    mark = h.mark()
    again = h.run()
    assert again["status"] == "ok" and again["errors"] == []
    assert sent(h, "/v1/", mark) == []

    # `archiver auth youtube` resets the used grant before the new consent …
    connector = YouTubeConnector(h.account, h.secrets, transport=h.transport)
    said: list[str] = []
    connector._reset_portability_grant(said.append, BASE_URL)
    assert h.fake.portability_resets == 1 and not h.fake.exhausted_groups and said
    h.authorize()                    # … and the consent gives a new grant
    mark = h.mark()
    renewed = h.run()
    assert renewed["status"] == "ok" and renewed["errors"] == [], renewed
    assert initiated_groups(h, mark) == list(PORTABILITY_GROUPS)
    assert_export_imported(h)


def test_a_failed_job_is_reported_forgotten_and_its_group_initiated_again_next_run(tmp_path, monkeypatch):
    h = harness(tmp_path, monkeypatch)
    h.fake.fail_next_jobs(1)         # the first group's job

    first = h.run()

    assert first["status"] == "ok"
    failed_group = PORTABILITY_GROUPS[0]
    [error] = [e for e in first["errors"] if e["item"] == "portability"]
    assert "FAILED" in error["error"] and failed_group in error["error"]
    state = h.state("portability")
    assert state["jobs"] == {} and state["pending"] == [failed_group]
    assert sorted(state["done"]) == sorted(PORTABILITY_GROUPS[1:])

    mark = h.mark()
    second = h.run()
    assert second["status"] == "ok" and second["errors"] == [], second
    assert initiated_groups(h, mark) == [failed_group]
    assert_export_imported(h)
    assert h.state("portability")["groups"] == sorted(PORTABILITY_GROUPS)


@pytest.mark.parametrize("expired_status", [400, 403])
def test_an_expired_signed_link_is_reported_and_the_job_polled_again_for_fresh_links(tmp_path, monkeypatch,
                                                                                   expired_status):
    h = harness(tmp_path, monkeypatch, portability_url_ttl=-60, portability_expired_status=expired_status)

    first = h.run()

    assert first["status"] == "ok", first
    errors = [e for e in first["errors"] if e["item"] == "portability"]
    assert len(errors) == len(PORTABILITY_GROUPS)
    assert all(str(expired_status) in e["error"] and "fresh download links" in e["error"] for e in errors)
    assert all("X-Goog-Signature" not in e["error"] for e in errors)      # the signed link is never shown
    jobs = h.state("portability")["jobs"]
    assert set(jobs) == set(PORTABILITY_GROUPS)
    assert h.value("SELECT count(*) FROM post_media WHERE role='video'") == 0
    assert not list((h.archive.folder / ".tmp").glob("youtube-portability-*"))

    h.fake.config.portability_url_ttl = 6 * 3600
    mark = h.mark()
    second = h.run()
    assert second["status"] == "ok" and second["errors"] == [], second
    assert sent(h, INITIATE, mark) == []          # the same jobs, with fresh links
    assert_export_imported(h)


def test_a_part_of_video_files_only_is_imported_after_its_metadata_even_when_the_quota_is_spent(
        tmp_path, monkeypatch):
    # A budget of 1 unit: channels.list only, no uploads from the API. Data Portability
    # spends no units, so it still runs; its video parts are listed before their CSVs.
    h = harness(tmp_path, monkeypatch, options={"quota_units": 1}, portability_parts=2,
                portability_access_type="ACCESS_TYPE_TIME_BASED")

    result = h.run()

    assert result["status"] == "ok", result
    assert [e["item"] for e in result["errors"]] == ["quota"]
    assert len(h.calls("playlistItems")) == 0
    world = h.fake.portability_world()
    assert h.post_ids() == {v.video_id for v in world.videos}
    for video in world.videos:
        assert h.value("SELECT sha256 FROM post_media WHERE post_id=? AND role='video'", video.video_id) \
            == sha256(video.content)
    assert h.value("SELECT count(*) FROM posts WHERE post_id LIKE 'provisional:%'") == 0
    # A time-based grant exports again only after portability_repeat_days.
    mark = h.mark()
    h.run()
    assert sent(h, INITIATE, mark) == []


def test_portability_without_the_scopes_is_reported_and_auth_asks_for_them(tmp_path, monkeypatch):
    h = harness(tmp_path, monkeypatch, granted_scopes=SCOPE)

    result = h.run()

    assert result["status"] == "ok"
    [error] = [e for e in result["errors"] if e["item"] == "portability"]
    assert "archiver auth youtube" in error["error"] and "EEA" in error["error"]
    assert sent(h, "/v1/") == []

    # `archiver auth youtube` with portability = true asks for every group archiver imports.
    seen: dict[str, str] = {}

    def browser(url: str) -> None:
        seen["url"] = url
        raise RuntimeError("stop here")

    connector = YouTubeConnector(h.account, h.secrets, transport=h.transport)
    with pytest.raises(Exception):
        connector.authorize(echo=lambda *_: None, open_browser=browser, timeout=5)
    from urllib.parse import parse_qs, urlsplit
    asked = parse_qs(urlsplit(seen["url"]).query)["scope"][0].split()
    assert set(asked) == {SCOPE, *PORTABILITY_SCOPES}
    assert h.state("portability") is None
