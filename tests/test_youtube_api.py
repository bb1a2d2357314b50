"""`archiver export` for YouTube, in-process: the real connector, runner, writer and media
store against the stateful fake YouTube (httpx.MockTransport). Every test checks the
archive's rows and what the fake saw (its request log and its per-day quota counter)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import httpx
import pytest

from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.ops.status import account_status, render_status
from archiver.sync.jobs import Workspace, run_export
from archiver.secrets import open_secret_store
from archiver_connectors.youtube import api as yt_api
from archiver_connectors.youtube.api import YouTubeTokens
from archiver_connectors.youtube.sim.fake import FakeYouTube, FakeYouTubeConfig, fake_png
from tiktok_sync_harness import ticking_clock

BASE_URL = "http://127.0.0.1:8798"   # never contacted: MockTransport answers in-process
ACCOUNT = "main"
ACCOUNT_ID = f"youtube:{ACCOUNT}"


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())
    # Snapshots are dated by the connector, to the second, like every archive row.
    monkeypatch.setattr("archiver_connectors.youtube._now", ticking_clock())
    monkeypatch.setattr("archiver.archive.lists.now_utc", ticking_clock())


class YouTubeHarness:
    """A fake YouTube, an archive in tmp_path, tokens the fake minted in a memory store.
    The connector's clock is the fake's, so ``fake.advance`` moves days for both."""

    def __init__(self, tmp_path: Path, monkeypatch, config: FakeYouTubeConfig | None = None,
                 options: dict | None = None, folder: str = "archive"):
        self.fake = FakeYouTube(config or FakeYouTubeConfig(), base_url=BASE_URL)
        monkeypatch.setattr(yt_api, "wall_clock", self.fake.now)
        self.secrets = open_secret_store("memory")
        self.secrets.set("youtube", ACCOUNT, "client_id", self.fake.config.client_id)
        self.secrets.set("youtube", ACCOUNT, "client_secret", self.fake.config.client_secret)
        self.faults: list = []
        self.sleeps: list[float] = []
        self.transport = httpx.MockTransport(self._handle)
        self.authorize()
        self.account = AccountConfig(name=ACCOUNT, platform="youtube", base_url=BASE_URL, options=options or {})
        self.archive = Archive(tmp_path / folder)
        self.ws = Workspace(self.archive, Config(path=None, accounts=[self.account]), self.secrets)

    def authorize(self) -> dict:
        tokens = self.fake.issue_tokens()
        with httpx.Client(transport=self.transport) as client:
            YouTubeTokens(self.secrets, ACCOUNT, BASE_URL + "/token", client).store(tokens)
        return tokens

    def _handle(self, request: httpx.Request) -> httpx.Response:
        for fault in self.faults:
            answer = fault(request)
            if answer is not None:
                return answer
        return self.fake.handle(request)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.fake.advance(seconds)

    def run(self, *, full: bool = False) -> dict:
        return run_export(self.ws, self.account, full=full, progress=lambda line: None,
                          transport=self.transport, sleep=self.sleep)

    # -- what happened ---------------------------------------------------------------
    def mark(self) -> int:
        return len(self.fake.log)

    def calls(self, resource: str, since: int = 0) -> list[dict]:
        """Params of the Data API requests for ``resource`` (answered or not)."""
        return [entry[3] for entry in list(self.fake.log)[since:] if entry[1] == f"/youtube/v3/{resource}"]

    def rows(self, sql: str, *params) -> list[dict]:
        cursor = self.archive.db.execute(sql, list(params))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def value(self, sql: str, *params):
        return self.archive.db.execute(sql, list(params)).fetchone()[0]

    def state(self, stream: str) -> dict | None:
        row = self.archive.db.execute("SELECT state FROM sync_state WHERE account_id=? AND stream=?",
                                      [ACCOUNT_ID, stream]).fetchone()
        return json.loads(row[0]) if row else None

    def post_ids(self) -> set[str]:
        return {r["post_id"] for r in self.rows("SELECT post_id FROM posts")}

    def fake_comment_ids(self) -> set[str]:
        return {c["id"] for t in self.fake.threads for c in [t["top"], *t["replies"]]}


def archive_tables(h: YouTubeHarness) -> dict:
    def table(sql):
        return [tuple(r) for r in h.archive.db.execute(sql).fetchall()]
    return {
        "posts": table("SELECT post_id, title, text, like_count, view_count, deleted_at FROM posts ORDER BY 1"),
        "post_media": table("SELECT post_id, role, sha256, status FROM post_media ORDER BY 1, 2"),
        "comments": table("SELECT comment_id, parent_id, author_id, text FROM comments ORDER BY 1"),
        "people": table("SELECT person_id, handle FROM people ORDER BY 1"),
        "follows": table("SELECT person_id, ended_at FROM follows ORDER BY 1"),
        "accounts": table("SELECT native_id, username, followers, posts FROM accounts"),
    }


# --------------------------------------------------------------------------- first run


def test_first_run_archives_channel_uploads_thumbnails_comments_and_partial_subscribers(tmp_path, monkeypatch):
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=120, followers=40, comment_threads=130, seed=3))
    result = h.run()
    assert result["status"] == "ok", result
    assert result["errors"] == []

    channel = h.fake.channel
    account = h.rows("SELECT * FROM accounts WHERE account_id=?", ACCOUNT_ID)[0]
    assert (account["native_id"], account["username"], account["display_name"]) == (
        channel["id"], channel["customUrl"][1:], channel["title"])
    assert (account["followers"], account["posts"]) == (40, 120)
    assert h.rows("SELECT followers, posts FROM account_metrics") == [{"followers": 40, "posts": 120}]

    # Every upload once, through 3 playlist pages of 50 and one videos.list per page.
    assert h.post_ids() == {v["id"] for v in h.fake.videos}
    assert len(h.calls("playlistItems")) == 3 and len(h.calls("videos")) == 3
    assert all(int(c["maxResults"]) == 50 for c in h.calls("playlistItems"))
    for video in h.fake.videos:
        post = h.rows("SELECT * FROM posts WHERE post_id=?", video["id"])[0]
        assert (post["title"], post["text"], post["duration"], post["visibility"]) == (
            video["title"], video["description"], video["duration"], video["privacyStatus"])
        assert post["like_count"] == (None if video["likes_hidden"] else video["likeCount"])
        assert post["view_count"] == video["viewCount"]
        metrics = h.rows("SELECT view_count FROM post_metrics WHERE post_id=?", video["id"])
        assert metrics == [{"view_count": video["viewCount"]}]
        media = h.rows("SELECT * FROM post_media WHERE post_id=?", video["id"])
        assert [(m["role"], m["status"]) for m in media] == [("cover", "ok")]
        stored = h.archive.media_root / h.value("SELECT path FROM media WHERE sha256=?", media[0]["sha256"])
        assert stored.read_bytes() == h.fake.thumbnail_bytes(video["id"])
        assert "?" not in media[0]["source_url"]
    assert "sig=" not in h.value("SELECT group_concat(raw) FROM posts")

    # Every comment and every reply (the embedded ones are only a subset), with authors.
    assert {r["comment_id"] for r in h.rows("SELECT comment_id FROM comments")} == h.fake_comment_ids()
    truncated = [t for t in h.fake.threads if len(t["replies"]) > h.fake.config.embedded_replies_max]
    assert truncated and {c["parentId"] for c in h.calls("comments")} == {t["id"] for t in truncated}
    for thread in h.fake.threads:
        for reply in thread["replies"]:
            row = h.rows("SELECT * FROM comments WHERE comment_id=?", reply["id"])[0]
            assert (row["parent_id"], row["post_id"], row["author_id"]) == (
                thread["id"], thread["video_id"], reply["author"]["channel_id"])
            assert row["by_owner"] == int(reply["author"]["channel_id"] == channel["id"])
    orphans = h.value("SELECT count(*) FROM comments c LEFT JOIN people p ON p.platform='youtube' "
                      "AND p.person_id=c.author_id WHERE p.person_id IS NULL")
    assert orphans == 0

    # The public subscribers, as a partial snapshot.
    public = {s["channel_id"] for s in h.fake.public_subscribers()}
    assert 0 < len(public) < 40
    snapshot = h.rows("SELECT * FROM snapshots")
    assert [(s["kind"], s["member_count"], s["complete"]) for s in snapshot] == [("followers", len(public), 0)]
    assert {r["person_id"] for r in h.rows("SELECT person_id FROM follows WHERE kind='followers'")} == public

    assert h.state("quota")["spent"] == h.fake.units_today()
    assert h.value("PRAGMA integrity_check") == "ok"


def test_a_subscriber_missing_from_a_later_partial_snapshot_is_not_lost(tmp_path, monkeypatch):
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=5, followers=20, comment_threads=3, seed=4))
    assert h.run()["status"] == "ok"
    gone = h.fake.lose_subscribers(2)
    new = h.fake.gain_subscribers(1)
    assert h.run()["status"] == "ok"
    assert h.value("SELECT count(*) FROM snapshots WHERE complete=0") == 2
    assert h.value("SELECT count(*) FROM audience_events WHERE event='lost'") == 0
    ended = h.value("SELECT count(*) FROM follows WHERE ended_at IS NOT NULL")
    assert ended == 0
    assert {g["channel_id"] for g in gone} <= {r["person_id"] for r in h.rows("SELECT person_id FROM follows")}
    assert new[0]["channel_id"] in {r["person_id"] for r in h.rows("SELECT person_id FROM follows")}


# --------------------------------------------------------------------------- incremental


def test_incremental_run_stops_at_a_known_page_and_gets_new_uploads_and_replies(tmp_path, monkeypatch):
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=160, followers=5, comment_threads=250, seed=5))
    assert h.run()["status"] == "ok"
    new_videos = [h.fake.add_video(), h.fake.add_video()]
    thread = h.fake.add_thread(new_videos[0]["id"], replies=8)
    mark = h.mark()
    result = h.run()
    assert result["status"] == "ok", result
    assert result["counts"]["posts_new"] == 2
    assert h.post_ids() == {v["id"] for v in h.fake.videos}
    # Page 1 held the new uploads, page 2 was wholly known: the walk stopped there.
    assert len(h.calls("playlistItems", mark)) == 2
    assert len(h.calls("commentThreads", mark)) == 2   # 251 threads, 100 a page: page 2 all known
    assert [c["parentId"] for c in h.calls("comments", mark)] == [thread["id"]]
    assert {r["comment_id"] for r in h.rows("SELECT comment_id FROM comments")} == h.fake_comment_ids()


def test_edited_title_keeps_the_old_one_in_post_versions(tmp_path, monkeypatch):
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=10, followers=3, comment_threads=2, seed=6))
    assert h.run()["status"] == "ok"
    video = h.fake.videos[0]
    old_title, old_text = video["title"], video["description"]
    h.fake.edit_video(video["id"], title="A better title", description="New words")
    h.fake.set_counts(video["id"], viewCount=video["viewCount"] + 1000)
    assert h.run()["status"] == "ok"
    assert h.rows("SELECT title, text FROM post_versions WHERE post_id=?", video["id"]) == [
        {"title": old_title, "text": old_text}]
    assert h.rows("SELECT title, text FROM posts WHERE post_id=?", video["id"]) == [
        {"title": "A better title", "text": "New words"}]
    views = [r["view_count"] for r in h.rows("SELECT view_count FROM post_metrics WHERE post_id=? "
                                             "ORDER BY observed_at", video["id"])]
    assert views == [video["viewCount"] - 1000, video["viewCount"]]


def test_full_run_tombstones_a_deleted_upload_and_an_incremental_one_does_not(tmp_path, monkeypatch):
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=70, followers=3, comment_threads=2, seed=7))
    assert h.run(full=True)["status"] == "ok"
    victim = h.fake.videos[60]                   # on the second page
    h.fake.delete_video(victim["id"])
    assert h.run()["status"] == "ok"
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0
    result = h.run(full=True)
    assert result["status"] == "ok" and result["counts"]["posts_tombstoned"] == 1
    assert h.value("SELECT deleted_at FROM posts WHERE post_id=?", victim["id"]) is not None
    assert h.value("SELECT count(*) FROM post_media WHERE post_id=? AND status='ok'", victim["id"]) == 1


def test_comments_gone_from_a_complete_channel_listing_are_tombstoned_only_on_videos_it_covered(tmp_path, monkeypatch):
    """commentThreads.list?allThreadsRelatedToChannelId lists the threads of the whole
    channel: a complete full walk of it (every reply fetched) marks deleted the comments it
    no longer lists, but only of videos it listed a thread of (a video whose threads are
    all gone may be private or have comments turned off: not judged), never on an
    incremental run, and never more than max_deleted_percent in one run."""
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=6, followers=5, comment_threads=150, seed=21))
    lone_video = h.fake.add_video()
    lone = h.fake.add_thread(lone_video["id"], replies=2)
    assert h.run(full=True)["status"] == "ok"
    assert {r["comment_id"] for r in h.rows("SELECT comment_id FROM comments")} == h.fake_comment_ids()

    long_thread = next(t for t in h.fake.threads[60:] if len(t["replies"]) > h.fake.config.embedded_replies_max)
    reply = long_thread["replies"][-1]               # only comments.list gives it
    thread = next(t for t in h.fake.threads[120:] if t["replies"] and t is not long_thread)
    gone = {reply["id"], thread["id"], *(r["id"] for r in thread["replies"])}
    for comment in (reply["id"], thread["id"], lone["id"]):
        h.fake.delete_comment(comment)

    assert h.run()["status"] == "ok"                 # incremental: never
    assert h.value("SELECT count(*) FROM comments WHERE deleted_at IS NOT NULL") == 0
    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert result["counts"]["comments_tombstoned"] == len(gone)
    assert {r["comment_id"] for r in h.rows("SELECT comment_id FROM comments WHERE deleted_at IS NOT NULL")} == gone
    # The lone thread's video had no thread left in the listing: its comments are kept live.
    assert h.value("SELECT count(*) FROM comments WHERE post_id=? AND deleted_at IS NULL", lone_video["id"]) == 3

    # Far more than the allowed share gone at once: nothing marked, the run says why.
    for doomed in list(h.fake.threads)[:60]:
        h.fake.delete_comment(doomed["id"])
    result = h.run(full=True)
    assert result["status"] == "ok"
    assert any(e["item"] == "comment_threads listing" and "max_deleted_percent" in e["error"]
               for e in result["errors"]), result["errors"]
    assert h.value("SELECT count(*) FROM comments WHERE deleted_at IS NOT NULL") == len(gone)
    assert h.value("SELECT count(*) FROM alerts WHERE kind='deletions_held' AND resolved_at IS NULL") == 1
    # Still held the next time: the one alert stays open (the uploads listing, which found
    # nothing wrong, does not close it for the comments listing to open, and send, anew).
    assert h.run(full=True)["status"] == "ok"
    assert h.rows("SELECT state FROM alerts WHERE kind='deletions_held'") == [{"state": "open"}]


def test_an_upload_videos_list_does_not_return_is_reported_and_never_tombstoned(tmp_path, monkeypatch):
    """The uploads playlist lists it, videos.list leaves it out (processing, or private to
    the wrong account): a --full run must not call it deleted, and must say so."""
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=70, followers=3, comment_threads=2, seed=17))
    assert h.run(full=True)["status"] == "ok"
    hidden = h.fake.videos[55]["id"]             # on the second page
    gone = h.fake.videos[5]["id"]
    h.fake.delete_video(gone)

    def without_hidden(request: httpx.Request):
        if not request.url.path.endswith("/videos") or hidden not in request.url.params.get("id", ""):
            return None
        answer = h.fake.handle(request)
        body = json.loads(answer.content)
        body["items"] = [v for v in body.get("items") or [] if v.get("id") != hidden]
        return httpx.Response(answer.status_code, json=body)

    h.faults.append(without_hidden)
    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert h.value("SELECT deleted_at FROM posts WHERE post_id=?", hidden) is None
    [reported] = [e for e in result["errors"] if hidden in e["item"]]
    assert "videos.list did not return it" in reported["error"]
    assert any(e["item"] == "uploads listing" and "nothing was marked deleted" in e["error"] for e in result["errors"])

    h.faults.clear()
    result = h.run(full=True)
    assert result["status"] == "ok" and result["counts"]["posts_tombstoned"] == 1
    assert h.rows("SELECT post_id FROM posts WHERE deleted_at IS NOT NULL") == [{"post_id": gone}]


# --------------------------------------------------------------------------- quota


def test_a_run_that_hits_the_budget_stops_cleanly_and_resumes_next_day_without_paying_twice(tmp_path, monkeypatch):
    config = dict(videos=260, followers=120, comment_threads=40, seed=8)
    # The same world archived in one go: what the whole job costs.
    reference = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(**config), folder="reference")
    assert reference.run()["status"] == "ok"
    whole_job = reference.fake.units_today()
    assert whole_job > 20

    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(**config), options={"quota_units": 9})
    day1 = h.fake.today()
    result = h.run()
    assert result["status"] == "ok", result          # a clean end, not a failure
    assert any(e["item"] == "quota" and "midnight Pacific" in e["error"] for e in result["errors"])
    assert h.fake.units_by_day[day1] == 9            # stopped before the quota ran out
    assert h.state("quota") == {"day": day1, "spent": 9, "budget": 9, "unit": "units", "zone": "America/Los_Angeles"}
    assert h.state("uploads")["cursor"]              # where it stopped
    status = account_status(h.archive, h.ws.config, now=dt.datetime.fromtimestamp(h.fake.now(), dt.timezone.utc))
    assert status[0]["api_budget"] == "0 of 9 units left today (a new day starts at midnight America/Los_Angeles)"
    assert f"API budget: {status[0]['api_budget']}" in render_status(status)
    posts_day1 = h.post_ids()
    assert 0 < len(posts_day1) < 260

    assert h.run()["status"] == "ok"                 # same day: nothing more is spent
    assert h.fake.units_by_day[day1] == 9

    days = []
    for _ in range(20):
        h.fake.advance(86400)
        days.append(h.fake.today())
        result = h.run()
        assert result["status"] == "ok", result
        assert h.fake.units_by_day[days[-1]] <= 9
        if not any(e["item"] == "quota" for e in result["errors"]):
            break
    else:
        pytest.fail("the job never finished")
    # Nothing asked twice across the days; channels.list is the one call every run makes.
    asked = [(e[1], e[3].get("pageToken"), e[3].get("parentId"), e[3].get("id")) for e in h.fake.log
             if e[1].startswith("/youtube/v3/") and e[1] != "/youtube/v3/channels"]
    assert len(asked) == len(set(asked)), [k for k in set(asked) if asked.count(k) > 1]
    runs = 1 + len(days)
    total = sum(h.fake.units_by_day.values())
    assert total == whole_job + (runs - 1)           # only the extra channels.list calls
    assert h.post_ids() == reference.post_ids()
    assert {r["comment_id"] for r in h.rows("SELECT comment_id FROM comments")} == h.fake_comment_ids()
    assert h.value("SELECT count(*) FROM post_media WHERE status='ok'") == 260
    # The subscriber list, cut by the quota, was staged and continued: one (partial) list,
    # as in the run that was never cut.
    subscribers = "SELECT member_count, complete FROM snapshots WHERE kind='followers'"
    assert h.rows(subscribers) == reference.rows(subscribers)


def test_a_subscriber_list_cut_by_the_quota_goes_on_from_its_page_token_into_one_snapshot(tmp_path, monkeypatch):
    config = dict(videos=3, followers=120, comment_threads=2, seed=12)     # 3 pages of subscribers
    reference = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(**config), folder="reference")
    assert reference.run()["status"] == "ok"
    whole_job = reference.fake.units_today()
    pages = [e for e in reference.fake.log if e[1] == "/youtube/v3/subscriptions"]
    assert len(pages) >= 2 and reference.fake.log[-1][1] == "/youtube/v3/subscriptions"
    # YouTube refuses the last request of the job: the last page of subscribers.
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(**config, daily_quota=whole_job - 1))
    result = h.run()
    assert any(e["item"] == "quota" for e in result["errors"]), result
    assert h.value("SELECT pages FROM staged_lists") == len(pages) - 1
    assert h.value("SELECT count(*) FROM snapshots") == 0
    h.fake.advance(86400)
    mark = h.mark()
    assert h.run()["status"] == "ok"
    asked = [e for e in list(h.fake.log)[mark:] if e[1] == "/youtube/v3/subscriptions"]
    assert len(asked) == 1 and asked[0][3].get("pageToken")       # only the page that was refused
    subscribers = "SELECT member_count, complete FROM snapshots WHERE kind='followers'"
    assert h.rows(subscribers) == reference.rows(subscribers)           # one partial list, all of it


def test_quota_exceeded_from_youtube_ends_the_run_cleanly_and_rate_limits_are_retried(tmp_path, monkeypatch):
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=60, followers=3, comment_threads=2,
                                                                 daily_quota=4, seed=9))
    h.fake.throttle(2, "rateLimitExceeded")
    result = h.run()
    assert result["status"] == "ok", result
    assert len(h.sleeps) >= 2                        # backed off twice on the 403 rateLimitExceeded
    assert any(e["item"] == "quota" for e in result["errors"])
    assert h.state("quota")["spent"] == h.state("quota")["budget"]   # nothing more today
    mark = h.mark()
    assert h.run()["status"] == "ok"
    assert len(h.fake.log) == mark                   # the same day: not a single request


# --------------------------------------------------------------------------- auth


def test_testing_mode_refresh_token_dies_after_7_days_with_a_message_that_says_so(tmp_path, monkeypatch):
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=5, followers=3, comment_threads=2, seed=10,
                                                                publishing_status="testing"))
    assert h.run()["status"] == "ok"
    h.fake.advance(2 * 3600)                          # access token expired: a refresh works
    assert h.run()["status"] == "ok"
    h.fake.advance(7 * 86400)
    before = archive_tables(h)
    result = h.run()
    assert result["status"] == "failed"
    assert result["failure_kind"] == "auth"
    message = result["message"]
    assert "invalid_grant" in message and "7 days" in message and "Testing" in message
    assert "Publish app" in message and "archiver auth youtube" in message
    assert archive_tables(h) == before
    refresh_token = json.loads(h.secrets.get("youtube", ACCOUNT, "tokens"))["refresh_token"]
    assert refresh_token not in h.value("SELECT group_concat(coalesce(message,'')) FROM runs")


# --------------------------------------------------------------------------- vanished


@pytest.mark.parametrize("answer", [
    lambda r: httpx.Response(404, text="<html>Not Found</html>", headers={"Content-Type": "text/html"}),
    lambda r: httpx.Response(200, json={"kind": "youtube#channelListResponse", "items": []})
    if r.url.path.startswith("/youtube/") else None,
    lambda r: httpx.Response(200, json={}) if r.url.path.startswith("/youtube/") else None,
])
def test_a_vanished_platform_changes_nothing(tmp_path, monkeypatch, answer):
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=60, followers=10, comment_threads=10, seed=11))
    assert h.run(full=True)["status"] == "ok"
    before = archive_tables(h)
    h.faults.append(answer)
    for full in (False, True):
        result = h.run(full=full)
        assert result["status"] == "failed", result
        assert archive_tables(h) == before
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0


# --------------------------------------------------------------------------- commenters' pictures


def picture_requests(h: YouTubeHarness, since: int = 0) -> list[str]:
    """Paths of the requests for other people's pictures (the fake's yt3 host)."""
    return [entry[1] for entry in list(h.fake.log)[since:] if entry[1].startswith("/yt3/")]


def api_requests(h: YouTubeHarness, since: int = 0) -> int:
    return sum(1 for entry in list(h.fake.log)[since:] if entry[1].startswith("/youtube/v3/"))


def first_page_authors(h: YouTubeHarness) -> dict[str, int]:
    """channel id -> comments by them in the first commentThreads page (the top comments
    and the embedded replies): the page every incremental run reads again."""
    seen: dict[str, int] = {}
    for thread in h.fake.threads[:100]:
        for comment in [thread["top"], *thread["replies"][: h.fake.config.embedded_replies_max]]:
            seen[comment["author"]["channel_id"]] = seen.get(comment["author"]["channel_id"], 0) + 1
    return seen


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_commenters_pictures_land_once_on_loopback_and_cost_no_quota(tmp_path, monkeypatch):
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=8, followers=40, comment_threads=8, seed=21))
    hosts: list[str] = []
    h.faults.append(lambda request: hosts.append(f"{request.url.scheme}://{request.url.netloc.decode()}"))
    result = h.run()
    assert result["status"] == "ok" and result["errors"] == [], result
    # Every link the fake handed out and the run followed is on its own base URL.
    assert set(hosts) == {BASE_URL}

    commenters = {c["author"]["channel_id"] for t in h.fake.threads for c in [t["top"], *t["replies"]]}
    assert len(commenters) >= 5
    for channel_id in commenters:
        path = h.fake.picture_path(channel_id)
        (stored, source), = h.archive.db.execute(
            "SELECT avatar_sha256, avatar_source FROM people WHERE platform='youtube' AND person_id=?",
            [channel_id]).fetchall()
        assert (stored, source) == (sha(fake_png(path)), BASE_URL + path)
        assert (h.archive.media_root / h.value("SELECT path FROM media WHERE sha256=?", stored)).read_bytes() \
            == fake_png(path)
    # One request per commenter; subscribers who never commented get none.
    assert sorted(picture_requests(h)) == sorted(h.fake.picture_path(c) for c in commenters)
    silent = {s["channel_id"] for s in h.fake.public_subscribers()} - commenters
    assert silent and h.value(
        f"SELECT count(*) FROM people WHERE avatar_sha256 IS NOT NULL AND person_id IN "
        f"({','.join('?' * len(silent))})", *silent) == 0
    # Pictures are not Data API calls: the meter charged the API requests only, as the fake counted.
    assert h.state("quota")["spent"] == h.fake.units_today() == api_requests(h)

    # A second run reads the newest thread page again (same links): no picture request.
    mark, spent = h.mark(), h.state("quota")["spent"]
    assert h.run()["status"] == "ok"
    assert h.calls("commentThreads", mark) and picture_requests(h, mark) == []
    assert h.state("quota")["spent"] - spent == api_requests(h, mark)


def test_a_changed_picture_is_downloaded_once_and_the_old_file_stays(tmp_path, monkeypatch):
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=6, followers=6, comment_threads=10, seed=22))
    assert h.run()["status"] == "ok"
    # Someone with several comments in the page read again: their new picture is one request.
    channel_id = max((c for c in first_page_authors(h) if c != h.fake.channel["id"]),
                     key=lambda c: first_page_authors(h)[c])
    assert first_page_authors(h)[channel_id] >= 2
    old_path = h.fake.picture_path(channel_id)
    new_path = h.fake.change_picture(channel_id)
    assert new_path != old_path
    mark = h.mark()
    assert h.run()["status"] == "ok"
    assert picture_requests(h, mark) == [new_path]
    assert h.rows("SELECT avatar_sha256, avatar_source FROM people WHERE person_id=?", channel_id) == [
        {"avatar_sha256": sha(fake_png(new_path)), "avatar_source": BASE_URL + new_path}]
    for path in (old_path, new_path):
        assert (h.archive.media_root / h.value("SELECT path FROM media WHERE sha256=?", sha(fake_png(path)))).is_file()
    # And not again on the run after.
    mark = h.mark()
    assert h.run()["status"] == "ok"
    assert picture_requests(h, mark) == []


def test_a_failing_picture_host_is_one_summary_line_and_the_comments_still_land(tmp_path, monkeypatch):
    from archiver.sync.downloads import _AvatarProblems

    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=6, followers=10, comment_threads=12, seed=23))
    h.fake.picture_fault = 503
    result = h.run()
    assert result["status"] == "ok", result
    assert {r["comment_id"] for r in h.rows("SELECT comment_id FROM comments")} == h.fake_comment_ids()
    assert h.value("SELECT count(*) FROM people WHERE avatar_sha256 IS NOT NULL") == 0
    # The owner's own picture is reported on its own line; everyone else's share one.
    own = [e for e in result["errors"] if e["item"].startswith("avatar of profile")]
    others = [e for e in result["errors"] if e not in own]
    assert len(own) == 1
    assert [e["item"] for e in others] == ["avatars of other people"]
    assert "HTTP 503" in others[0]["error"] and "tried again next run" in others[0]["error"]
    assert result["counts"]["avatars_failed"] >= len(first_page_authors(h)) > _AvatarProblems.GIVE_UP_AFTER
    # A few failures on the host (each retried by the API's policy), then the rest wait
    # for the next run.
    from archiver.net.client import RetryPolicy

    assert len(picture_requests(h)) == _AvatarProblems.GIVE_UP_AFTER * RetryPolicy().attempts
    assert h.state("quota")["spent"] == api_requests(h)

    # The host is back: the page read again fetches its commenters' pictures.
    h.fake.picture_fault = None
    mark = h.mark()
    result = h.run()
    assert result["status"] == "ok" and result["errors"] == [], result
    assert sorted(picture_requests(h, mark)) == sorted(h.fake.picture_path(c) for c in first_page_authors(h))
    for channel_id in first_page_authors(h):
        assert h.value("SELECT avatar_sha256 FROM people WHERE person_id=?", channel_id) == \
            sha(fake_png(h.fake.picture_path(channel_id)))


@pytest.mark.parametrize("picture", [None, "", "//yt3.ggpht.com/x=s48", "data:image/png;base64,AAAA", 48])
def test_a_comment_author_without_a_web_link_has_no_picture_to_fetch(picture):
    item = {"id": "Ugz1", "snippet": {"authorChannelId": {"value": "UCabc"}, "authorDisplayName": "@fan",
                                      "authorProfileImageUrl": picture, "textOriginal": "hi",
                                      "publishedAt": "2024-05-01T00:00:00Z", "videoId": "v1"}}
    author = yt_api.comment_from_item(item, owner_channel="UCowner").author
    assert author.native_id == "UCabc" and author.avatar is None and author.avatar_url == picture


def test_a_comment_authors_picture_link_is_kept_and_fetched_as_is():
    link = "https://yt3.ggpht.com/ytc/AIdro_abc=s48-c-k-c0x00ffffff-no-rj"
    item = {"id": "Ugz1", "snippet": {"authorChannelId": {"value": "UCabc"}, "authorProfileImageUrl": link,
                                      "textOriginal": "hi", "publishedAt": "2024-05-01T00:00:00Z"}}
    author = yt_api.comment_from_item(item, owner_channel="UCowner").author
    assert author.avatar_url == link
    assert (author.avatar.url, author.avatar.role) == (link, "avatar")


@pytest.mark.parametrize("shown, handle, name", [("@kitefan", "@kitefan", None), ("Kite Fan", "Kite Fan", "Kite Fan")])
def test_an_at_handle_shown_as_the_authors_name_is_kept_as_the_handle_only(shown, handle, name):
    # A "@handle" must not overwrite the channel title the subscriber list gives.
    item = {"id": "Ugz1", "snippet": {"authorChannelId": {"value": "UCabc"}, "authorDisplayName": shown,
                                      "textOriginal": "hi", "publishedAt": "2024-05-01T00:00:00Z"}}
    author = yt_api.comment_from_item(item, owner_channel="UCowner").author
    assert (author.handle, author.display_name) == (handle, name)


def test_a_saved_page_token_youtube_refuses_starts_the_listing_again_from_the_top(tmp_path, monkeypatch):
    """A cut-off walk resumes at its saved pageToken; when YouTube no longer accepts it
    (400 invalidPageToken), the run says so and lists from the top: nothing is skipped."""
    h = YouTubeHarness(tmp_path, monkeypatch, FakeYouTubeConfig(videos=120, followers=3, comment_threads=2, seed=21),
                       options={"quota_units": 6})
    assert h.run()["status"] == "ok"
    state = h.state("uploads")
    assert state["cursor"] and len(h.post_ids()) < 120          # cut off by the quota
    state["cursor"] = "bm9wZXwx"                                  # a token of another listing
    with h.archive.writing():
        h.archive.db.execute("UPDATE sync_state SET state=? WHERE account_id=? AND stream='uploads'",
                             [json.dumps(state), ACCOUNT_ID])
    h.account.options["quota_units"] = 10_000
    h.fake.advance(86400)

    result = h.run()
    assert result["status"] == "ok", result
    assert any(e["item"] == "uploads" and "the saved cursor was refused" in e["error"] for e in result["errors"])
    assert h.post_ids() == {v["id"] for v in h.fake.videos}
