"""`archiver export` / `archiver auth` for Mastodon, in-process: the real connector, runner,
writer and media store against the stateful fake instance through httpx.MockTransport.
Every test checks archive rows and what the fake was asked."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.sync.jobs import Workspace, run_export
from archiver.net.oauth import OAuthError
from archiver.secrets import open_secret_store
from archiver_connectors.mastodon import MastodonConnector
from archiver_connectors.mastodon.api import (
    MastodonTokens, comments_from_context, html_to_text, normalize_instance, person_key, post_from_status)
from archiver_connectors.mastodon.sim.fake import FakeMastodon, FakeMastodonConfig
from tiktok_sync_harness import ticking_clock

BASE_URL = "http://127.0.0.1:8798"     # never contacted: MockTransport answers in-process
ACCOUNT = "main"
ACCOUNT_ID = f"mastodon:{ACCOUNT}"
STATUSES_PATH = "/api/v1/accounts/1091/statuses"


def key(status_id: str) -> str:
    """The archive's key of a status of the fake instance: ids are local to an instance."""
    return f"127.0.0.1:{status_id}"


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())
    # Snapshots are dated by the connector; two runs in one second would share a date.
    monkeypatch.setattr("archiver_connectors.mastodon.now_utc", ticking_clock())
    monkeypatch.setattr("archiver.archive.lists.now_utc", ticking_clock())


class Harness:
    def __init__(self, tmp_path: Path, config: FakeMastodonConfig | None = None, *, base_url: str = BASE_URL,
                 account: str = ACCOUNT, **options):
        self.fake = FakeMastodon(config or FakeMastodonConfig(), base_url=base_url)
        self.secrets = open_secret_store("memory")
        self.token = self.fake.issue_token()
        MastodonTokens(self.secrets, account).save({"access_token": self.token, "instance": base_url,
                                                    "account_id": "1091", "acct": "alice"})
        self.account = AccountConfig(name=account, platform="mastodon", base_url=base_url, options=options)
        self.archive = Archive(tmp_path / "archive")
        self.ws = Workspace(self.archive, Config(path=None, accounts=[self.account]), self.secrets)
        self.sleeps: list[float] = []
        self.faults: list = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request):
        for fault in self.faults:
            answer = fault(request)
            if answer is not None:
                return answer
        return self.fake.handle(request)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.fake.advance(seconds)

    def run(self, full: bool = False, cancel=lambda: False, progress=None) -> dict:
        return run_export(self.ws, self.account, full=full, cancel=cancel, transport=self.transport,
                          sleep=self.sleep, progress=progress or (lambda line: None))

    def rows(self, sql: str, *params) -> list[dict]:
        cursor = self.archive.db.execute(sql, list(params))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def value(self, sql: str, *params):
        return self.archive.db.execute(sql, list(params)).fetchone()[0]

    def api_requests(self, since: int = 0) -> list[tuple]:
        return [e for e in list(self.fake.log)[since:] if e[1].startswith("/api/")]

    def state(self, stream: str):
        row = self.archive.db.execute("SELECT state FROM sync_state WHERE account_id=? AND stream=?",
                                      [ACCOUNT_ID, stream]).fetchone()
        return json.loads(row[0]) if row else None


def own_ids(fake: FakeMastodon) -> set[str]:
    return {key(s["id"]) for s in fake.own_statuses()}


# --------------------------------------------------------------------------- first run


def test_first_run_pages_by_link_header_and_archives_every_status_once(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=95, followers=170, following=30, seed=3))
    result = h.run()
    assert result["status"] == "ok", result
    assert {r["post_id"] for r in h.rows("SELECT post_id FROM posts")} == own_ids(h.fake)
    listing = [e for e in h.fake.log if e[1] == STATUSES_PATH]
    # 96 statuses, 40 a page: 3 pages by rel="next"; the 2nd and 3rd carry the Link's max_id.
    assert [e[2].get("max_id") is not None for e in listing[:3]] == [False, True, True]
    assert all(e[2].get("limit") == "40" for e in listing)
    # Only max_id values the fake itself put in its Link headers were ever sent.
    statuses = sorted((int(s["id"]) for s in h.fake.own_statuses()), reverse=True)
    assert {int(e[2]["max_id"]) for e in listing if "max_id" in e[2]} <= set(statuses)
    account = h.rows("SELECT * FROM accounts")[0]
    assert account["native_id"] == "1091" and account["username"] == "alice"
    assert account["followers"] == 170 and account["bio"] == "Gardener & maker."
    assert h.value("SELECT count(*) FROM account_metrics") == 1


def test_boosts_replies_and_originals_get_their_kinds(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=12, seed=4))
    h.run()
    by_id = {r["post_id"]: r for r in h.rows("SELECT * FROM posts")}
    for status in h.fake.own_statuses():
        row = by_id[key(status["id"])]
        if status["reblog_of"]:
            target = h.fake.statuses[status["reblog_of"]]
            uri, _url = h.fake._status_uri(target)
            assert row["kind"] == "boost" and row["url"] == uri and row["text"] == uri
            assert row["like_count"] is None
        elif status["in_reply_to_id"]:
            assert row["kind"] == "reply"
        else:
            assert row["kind"] == "text"
            assert row["text"] == html_to_text(status["versions"][-1]["content"].replace("{base}", BASE_URL))
    assert {r["kind"] for r in by_id.values()} == {"boost", "reply", "text"}


def test_media_files_are_downloaded_with_alt_text_and_meta(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=10, seed=5))
    h.run()
    rows = h.rows("SELECT pm.*, m.mime FROM post_media pm JOIN media m USING (sha256)")
    expected = [(key(s["id"]), i, m) for s in h.fake.own_statuses() for i, m in enumerate(s["media"])]
    assert len(rows) == len(expected) > 0
    by_key = {(r["post_id"], r["position"]): r for r in rows}
    for status_id, position, media in expected:
        row = by_key[(status_id, position)]
        assert row["status"] == "ok" and row["description"] == media["description"]
        assert row["role"] == media["type"] and row["mime"] == ("image/png" if media["type"] == "image" else "video/mp4")
        assert json.loads(row["meta"])["meta"]["original"]["width"] == 16
    assert any(r["description"] == "Tomato seedlings on a windowsill" for r in rows)
    avatar = h.value("SELECT avatar_sha256 FROM accounts")
    assert avatar is not None


def test_edit_history_lands_in_post_versions(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=8, seed=6))
    h.run()
    edited = [s for s in h.fake.own_statuses() if len(s["versions"]) > 1]
    assert edited
    for status in edited:
        versions = h.rows("SELECT * FROM post_versions WHERE post_id=? ORDER BY replaced_at", key(status["id"]))
        earlier = status["versions"][:-1]
        assert [v["text"] for v in versions] == [html_to_text(e["content"].replace("{base}", BASE_URL)) for e in earlier]
        # Each earlier text was replaced at the next version's time.
        from archiver.records import iso_utc
        assert [v["replaced_at"] for v in versions] == [iso_utc(n["created_at"]) for n in status["versions"][1:]]
    histories = [e for e in h.fake.log if e[1].endswith("/history")]
    assert len(histories) == len(edited)        # only edited statuses are asked


def test_replies_from_others_become_comments_linked_to_people(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=6, seed=7))
    h.run()
    first = min(h.fake.own_statuses(), key=lambda s: int(s["id"]))     # status 0: a nested thread
    comments = {c["comment_id"]: c for c in h.rows("SELECT * FROM comments")}
    others = [s for s in h.fake.statuses.values() if s["account_id"] != "1091" and s["in_reply_to_id"]]
    replies_to_own = [s for s in others if h.fake.statuses[s["in_reply_to_id"]]["account_id"] == "1091"
                      or h.fake.statuses[s["in_reply_to_id"]]["in_reply_to_id"]]
    assert {key(s["id"]) for s in replies_to_own} <= set(comments)
    direct = [s for s in others if s["in_reply_to_id"] == first["id"]][0]
    nested = [s for s in others if s["in_reply_to_id"] == direct["id"]][0]
    # A reply to the post answers no comment; a reply to a reply answers that comment.
    assert comments[key(direct["id"])]["post_id"] == key(first["id"]) and comments[key(direct["id"])]["parent_id"] is None
    assert comments[key(nested["id"])]["parent_id"] == key(direct["id"])
    assert comments[key(nested["id"])]["post_id"] == key(first["id"])
    # A reply under the owner's own reply belongs to that reply (a post of kind "reply").
    owner_reply = [s for s in h.fake.own_statuses() if s["in_reply_to_id"] == direct["id"]][0]
    under = [s for s in others if s["in_reply_to_id"] == owner_reply["id"]][0]
    assert comments[key(under["id"])]["post_id"] == key(owner_reply["id"]) and comments[key(under["id"])]["parent_id"] is None
    assert key(owner_reply["id"]) not in comments                 # the owner's reply is a post
    # Authors are people keyed "user@domain".
    author = h.fake.accounts[nested["account_id"]]
    person = h.rows("SELECT * FROM people WHERE person_id=?", comments[key(nested["id"])]["author_id"])[0]
    assert person["person_id"] == f"{author['username']}@{author['domain'] or '127.0.0.1'}".lower()
    assert all(c["by_owner"] == 0 for c in comments.values())


def test_second_run_with_nothing_new_makes_a_few_requests(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=60, followers=200, following=90, seed=8))
    assert h.run()["status"] == "ok"
    mark = len(h.fake.log)
    result = h.run()
    assert result["status"] == "ok", result
    asked = [(e[1], e[2]) for e in h.api_requests(mark)]
    # verify_credentials, one min_id page (empty), the newest page: nothing else.
    assert [p for p, _ in asked] == ["/api/v1/accounts/verify_credentials", STATUSES_PATH, STATUSES_PATH]
    assert asked[1][1]["min_id"] == h.state("statuses")["newest_id"]
    assert result["counts"].get("posts_new", 0) == 0


def test_incremental_run_fetches_new_statuses_edits_and_replies_only(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=50, seed=9))
    h.run()
    newest_before = h.state("statuses")["newest_id"]
    new = [h.fake.add_status(f"<p>new {i}</p>") for i in range(45)]     # more than one page
    recent = new[-1]
    h.fake.add_reply(new[0]["id"], "<p>first!</p>")
    h.fake.edit_status(recent["id"], "<p>new 44, edited</p>")
    mark = len(h.fake.log)
    result = h.run()
    assert result["status"] == "ok", result
    assert result["counts"]["posts_new"] == 45
    forward = [e for e in h.api_requests(mark) if e[1] == STATUSES_PATH and "min_id" in e[2]]
    assert forward[0][2]["min_id"] == newest_before and len(forward) == 3   # 40 + 5 + empty
    assert h.value("SELECT text FROM posts WHERE post_id=?", key(recent["id"])) == "new 44, edited"
    assert h.value("SELECT count(*) FROM post_versions WHERE post_id=?", key(recent["id"])) == 1
    assert h.value("SELECT count(*) FROM comments WHERE post_id=?", key(new[0]["id"])) == 1
    contexts = [e for e in h.api_requests(mark) if e[1].endswith("/context")]
    assert {e[1].split("/")[4] for e in contexts} == {new[0]["id"]}    # the only one with a reply


def test_a_killed_first_run_resumes_at_its_link_and_converges(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=100, seed=10))
    from archiver.sync.runner import CancelFlag

    flag = CancelFlag()
    pages = []

    def progress(line):
        if line.startswith("statuses:"):
            pages.append(line)
            if len(pages) == 1:
                flag.set()

    first = h.run(cancel=flag, progress=progress)
    assert first["status"] == "interrupted"
    cursor = h.state("statuses")["cursor"]
    assert "max_id=" in cursor
    assert h.value("SELECT count(*) FROM posts") == 40
    mark = len(h.fake.log)
    assert h.run()["status"] == "ok"
    listing = [e for e in h.api_requests(mark) if e[1] == STATUSES_PATH]
    assert listing[0][2].get("max_id") == cursor.split("max_id=")[1]   # went on where it was
    assert {r["post_id"] for r in h.rows("SELECT post_id FROM posts")} == own_ids(h.fake)


def test_full_listing_tombstones_deleted_statuses_incremental_never(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=30, seed=11))
    h.run()
    gone = sorted(h.fake.own_statuses(), key=lambda s: int(s["id"]))[5]["id"]
    h.fake.delete_status(gone)
    h.run()
    assert h.value("SELECT deleted_at FROM posts WHERE post_id=?", key(gone)) is None
    result = h.run(full=True)
    assert result["status"] == "ok"
    assert h.value("SELECT deleted_at FROM posts WHERE post_id=?", key(gone)) is not None
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 1


def test_counts_are_a_time_series(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=10, seed=12))
    h.run()
    newest = max(h.fake.own_statuses(), key=lambda s: int(s["id"]))
    h.fake.set_counts(newest["id"], favourites=999)
    h.fake.gain_followers(3)
    h.run()
    likes = [r["like_count"] for r in h.rows("SELECT like_count FROM post_metrics WHERE post_id=? ORDER BY observed_at",
                                             key(newest["id"]))]
    assert likes[-1] == 999 and len(likes) == 2
    assert [r["followers"] for r in h.rows("SELECT followers FROM account_metrics ORDER BY observed_at")][-2:] == [50, 53]


# --------------------------------------------------------------------------- followers


def test_followers_and_following_snapshots_follow_link_headers(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=3, followers=170, following=81, seed=13))
    h.run()
    snaps = {r["kind"]: r for r in h.rows("SELECT * FROM snapshots")}
    assert snaps["followers"]["member_count"] == 170 and snaps["followers"]["complete"] == 1
    assert snaps["following"]["member_count"] == 81 and snaps["following"]["complete"] == 1
    followers = [e for e in h.fake.log if e[1].endswith("/followers")]
    assert len(followers) == 3 and followers[0][2] == {"limit": "80"}
    # Cursors are follow-relationship ids from the Link header, never account ids.
    follow_ids = {str(f["follow_id"]) for f in h.fake.followers}
    assert {e[2]["max_id"] for e in followers[1:]} <= follow_ids
    assert not {e[2]["max_id"] for e in followers[1:]} & set(h.fake.accounts)
    # A new follower changes the count: the next run takes a new list and sees who came.
    h.fake.lose_followers(2)
    h.fake.gain_followers(1)
    h.run()
    events = h.rows("SELECT event, count(*) AS n FROM audience_events WHERE kind='followers' GROUP BY event")
    assert {e["event"]: e["n"] for e in events} == {"new": 1, "lost": 2}


@pytest.mark.parametrize("hidden_from_owner", [False, True])
def test_hidden_follower_list_is_complete_only_when_the_owner_still_gets_it(tmp_path, hidden_from_owner):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=3, followers=30, following=5, seed=14,
                                             hide_collections=True, hidden_from_owner=hidden_from_owner))
    result = h.run()
    assert result["status"] == "ok", result
    snaps = {r["kind"]: r for r in h.rows("SELECT * FROM snapshots")}
    if hidden_from_owner:
        assert snaps == {}                         # nothing listed: no snapshot, nobody lost
        assert any(e["item"] == "followers" for e in result["errors"])
        h.fake.config.hidden_from_owner = False
        h.run()
        assert h.value("SELECT complete FROM snapshots WHERE kind='followers'") == 1
    else:
        assert snaps["followers"]["complete"] == 1 and snaps["followers"]["member_count"] == 30


def test_a_follower_list_cut_off_midway_is_kept_and_the_next_run_goes_on_from_its_cursor(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=3, followers=200, seed=15))
    h.run()
    h.fake.lose_followers(100)

    def cut(request):
        if request.url.path.endswith("/followers") and "max_id" in request.url.params:
            return httpx.Response(404, json={"error": "Record not found"})
        return None

    h.faults.append(cut)
    result = h.run(full=True)
    assert result["status"] == "failed"
    # The first page waits in the staging with its cursor: no partial snapshot, nobody lost.
    assert h.value("SELECT count(*) FROM snapshots WHERE kind='followers'") == 1
    assert h.rows("SELECT pages, members FROM staged_lists WHERE kind='followers'") == [{"pages": 1, "members": 80}]
    assert h.value("SELECT count(*) FROM audience_events WHERE event='lost'") == 0
    h.faults.clear()
    before = len(h.fake.log)
    assert h.run()["status"] == "ok"
    asked = [e for e in list(h.fake.log)[before:] if e[1].endswith("/followers")]
    assert len(asked) == 1 and "max_id" in asked[0][2]        # only the page after the staged one
    latest = h.rows("SELECT * FROM snapshots WHERE kind='followers' ORDER BY snapshot_id DESC LIMIT 1")[0]
    assert latest["complete"] == 1 and latest["member_count"] == 100
    assert h.value("SELECT count(*) FROM audience_events WHERE event='lost'") == 100
    assert h.value("SELECT count(*) FROM staged_members") == 0


class _Killed(BaseException):
    """The process dying: nothing after it runs (not an error the run could record)."""


def _audience_of(h: Harness) -> dict:
    """What the follower lists left in the archive, without the moments (each run has its own)."""
    return {
        "people": h.rows("SELECT person_id, handle, display_name, url FROM people ORDER BY person_id"),
        "follows": h.rows("SELECT kind, person_id, ended_at IS NULL AS open FROM follows ORDER BY kind, person_id"),
        "events": h.rows("SELECT kind, person_id, event FROM audience_events ORDER BY kind, person_id, event"),
        "snapshots": h.rows("SELECT kind, member_count, new_count, lost_count, complete FROM snapshots "
                            "ORDER BY kind, snapshot_id"),
    }


@pytest.mark.parametrize("killed_after_pages", [1, 3])
def test_a_run_killed_inside_a_follower_list_resumes_it_and_ends_as_an_uninterrupted_run(
        tmp_path, killed_after_pages):
    config = dict(statuses=3, followers=410, following=5, seed=21)   # 6 pages of 80
    whole = Harness(tmp_path / "whole", FakeMastodonConfig(**config))
    assert whole.run()["status"] == "ok"

    h = Harness(tmp_path / "killed", FakeMastodonConfig(**config))
    pages = {"n": 0}

    def die(request):
        if request.url.path.endswith("/followers"):
            if pages["n"] == killed_after_pages:
                raise _Killed()
            pages["n"] += 1
        return None

    h.faults.append(die)
    with pytest.raises(_Killed):
        h.run()
    assert h.rows("SELECT pages, members FROM staged_lists WHERE kind='followers'") == [
        {"pages": killed_after_pages, "members": 80 * killed_after_pages}]
    h.faults.clear()
    before = len(h.fake.log)
    assert h.run()["status"] == "ok"
    asked = [e for e in list(h.fake.log)[before:] if e[1].endswith("/followers")]
    assert len(asked) == 6 - killed_after_pages            # the remaining pages, no more
    assert all("max_id" in e[2] for e in asked)
    assert _audience_of(h) == _audience_of(whole)
    assert h.value("SELECT count(*) FROM staged_members") == 0


def test_a_follower_list_left_unfinished_for_days_is_kept_as_partial_and_read_again(tmp_path, monkeypatch):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=3, followers=200, seed=22))

    def cut(request):
        if request.url.path.endswith("/followers") and "max_id" in request.url.params:
            return httpx.Response(503, json={"error": "down"})
        return None

    h.faults.append(cut)
    assert h.run()["status"] == "failed"
    assert h.rows("SELECT members FROM staged_lists WHERE kind='followers'") == [{"members": 80}]
    h.faults.clear()
    monkeypatch.setattr("archiver.archive.lists._days_since", lambda when: 4.0)
    before = len(h.fake.log)
    result = h.run()
    assert result["status"] == "ok", result
    assert any("never finished" in e["error"] for e in result["errors"])
    # What the old reading held is a partial snapshot (nobody lost from it); the list is
    # read again from its first page and becomes a complete one.
    assert h.rows("SELECT member_count, complete FROM snapshots WHERE kind='followers' ORDER BY snapshot_id") == [
        {"member_count": 80, "complete": 0}, {"member_count": 200, "complete": 1}]
    asked = [e for e in list(h.fake.log)[before:] if e[1].endswith("/followers")]
    assert "max_id" not in asked[0][2] and len(asked) == 3
    assert h.value("SELECT count(*) FROM audience_events WHERE event='lost'") == 0


# --------------------------------------------------------------------------- pacing and faults


def test_paged_requests_are_paced_ahead_of_the_stricter_limit(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=200, seed=16, paged_limit=3, paged_window=900),
                paged_requests_per_15min=3)
    result = h.run()
    assert result["status"] == "ok", result
    assert not [e for e in h.fake.log if e[3] == 429]
    assert sum(h.sleeps) >= 800                     # waited for the 15-minute window
    assert h.value("SELECT count(*) FROM posts") == len(own_ids(h.fake))


def test_rate_limit_headers_pause_the_run_until_the_iso_reset(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=90, seed=17, rate_limit=3, rate_window=300))
    result = h.run()
    assert result["status"] == "ok", result
    assert sum(h.sleeps) >= 250                     # "Remaining: 0" waits for the window's reset
    assert h.value("SELECT count(*) FROM posts") == len(own_ids(h.fake))


def test_a_429_without_retry_after_waits_for_the_iso_reset_and_retries(tmp_path):
    import datetime as dt

    h = Harness(tmp_path, FakeMastodonConfig(statuses=60, seed=17))
    refused = []

    def throttle(request):
        if request.url.path == STATUSES_PATH and "max_id" in request.url.params and not refused:
            reset = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=120)
            refused.append(request.url)
            return httpx.Response(429, json={"error": "Too many requests"}, headers={
                "X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
        return None

    h.faults.append(throttle)
    result = h.run()
    assert result["status"] == "ok", result
    assert refused and sum(h.sleeps) >= 100         # waited about until the reset, then went on
    again = [e for e in h.fake.log if e[1] == STATUSES_PATH and e[2].get("max_id") == refused[0].params["max_id"]]
    assert again and again[0][3] == 200
    assert h.value("SELECT count(*) FROM posts") == len(own_ids(h.fake))


def test_server_errors_are_retried(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=20, seed=18, fail_rate=0.3))
    assert h.run()["status"] == "ok"
    assert [e for e in h.fake.log if e[3] == 503]
    assert h.value("SELECT count(*) FROM posts") == len(own_ids(h.fake))


@pytest.mark.parametrize("vanish,status", [("401", "failed"), ("404", "failed"), ("410", "failed"),
                                           ("closed", "failed"), ("empty", "ok")])
@pytest.mark.parametrize("full", [False, True])
def test_vanished_instance_changes_nothing(tmp_path, vanish, status, full):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=12, followers=20, seed=19))
    h.run()
    before = h.rows("SELECT post_id, deleted_at, text FROM posts ORDER BY post_id")
    follows_before = h.value("SELECT count(*) FROM follows WHERE ended_at IS NULL")
    h.fake.config.vanish = vanish
    result = h.run(full=full)
    assert result["status"] == status, result
    assert h.rows("SELECT post_id, deleted_at, text FROM posts ORDER BY post_id") == before
    assert h.value("SELECT count(*) FROM follows WHERE ended_at IS NULL") == follows_before
    if vanish == "401":
        assert result["failure_kind"] == "auth" and "archiver auth mastodon" in result["message"]


def test_revoked_token_fails_with_reauth_message_and_leaks_nothing(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    h = Harness(tmp_path, FakeMastodonConfig(statuses=5, seed=20))
    h.run()
    h.fake.revoke_all()
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth"
    assert "archiver auth mastodon --account main" in result["message"]
    dump = "\n".join(str(v) for t in ("posts", "comments", "people", "accounts", "runs", "sync_state", "post_media")
                     for row in h.rows(f"SELECT * FROM {t}") for v in row.values())
    assert h.token not in dump and h.token not in caplog.text
    raw_db = (tmp_path / "archive").rglob("*")
    for path in raw_db:
        if path.is_file():
            assert h.token.encode() not in path.read_bytes()


def test_a_link_header_to_another_server_is_refused(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=60, seed=21))

    def evil(request):
        if request.url.path == STATUSES_PATH and "max_id" not in request.url.params:
            answer = h.fake.handle(request)
            return httpx.Response(200, json=answer.json(),
                                  headers={"Link": '<https://evil.example/steal?max_id=1>; rel="next"'})
        return None

    h.faults.append(evil)
    result = h.run()
    assert result["status"] == "failed" and "another server" in result["message"]
    assert not [e for e in h.fake.log if "evil" in e[1]]


def test_token_issued_by_another_instance_is_never_sent(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=3))
    MastodonTokens(h.secrets, ACCOUNT).save({"access_token": h.token, "instance": "https://other.example"})
    result = h.run()
    assert result["status"] == "failed" and "issued by https://other.example" in result["message"]
    assert not h.fake.log


# --------------------------------------------------------------------------- auth


def play_browser(fake: FakeMastodon):
    def browser(url: str) -> None:
        answer = fake.handle(httpx.Request("GET", url))
        assert answer.status_code == 302, answer.text
        with httpx.Client(timeout=10) as real:      # the loopback server is real
            real.get(answer.headers["location"])
    return browser


@pytest.mark.parametrize("version", ["4.3.0", "4.2.10"])
def test_authorize_registers_an_app_and_exchanges_the_code(tmp_path, version):
    fake = FakeMastodon(FakeMastodonConfig(statuses=2, version=version), base_url=BASE_URL)
    secrets = open_secret_store("memory")
    connector = MastodonConnector(AccountConfig(name=ACCOUNT, platform="mastodon", base_url=BASE_URL), secrets,
                                  transport=httpx.MockTransport(fake.handle))
    printed = []
    message = connector.authorize(echo=printed.append, open_browser=play_browser(fake), timeout=10)
    stored = json.loads(secrets.get("mastodon", ACCOUNT, "tokens"))
    assert fake.tokens[stored["access_token"]]["user"] is True
    assert stored["instance"] == BASE_URL and stored["account_id"] == "1091"
    [app] = fake.apps.values()
    assert app["scopes"] == ["read:accounts", "read:statuses", "read:follows"]
    assert app["redirect_uris"][0].startswith("http://127.0.0.1:")
    assert secrets.get("mastodon", ACCOUNT, "client_secret") == app["client_secret"]
    [code] = fake.codes.values()
    assert code["used"] and (code["challenge"] is not None) == (version == "4.3.0")   # PKCE only on 4.3+
    assert "@alice@127.0.0.1" in message
    everything = message + "".join(printed)
    assert stored["access_token"] not in everything and app["client_secret"] not in everything


def test_authorize_with_a_pasted_token_verifies_it(tmp_path):
    fake = FakeMastodon(FakeMastodonConfig(statuses=2), base_url=BASE_URL)
    secrets = open_secret_store("memory")
    connector = MastodonConnector(AccountConfig(name=ACCOUNT, platform="mastodon"), secrets,
                                  transport=httpx.MockTransport(fake.handle))
    token = fake.issue_token()
    message = connector.authorize(echo=lambda t: None, instance=BASE_URL + "/", token=token)
    assert json.loads(secrets.get("mastodon", ACCOUNT, "tokens"))["access_token"] == token
    assert token not in message
    with pytest.raises(OAuthError) as refused:
        connector.authorize(echo=lambda t: None, instance=BASE_URL, token="not-a-token")
    assert "The access token is invalid" in str(refused.value) and "not-a-token" not in str(refused.value)
    narrow = fake.issue_token("read:statuses")
    with pytest.raises(OAuthError, match="HTTP 403"):
        connector.authorize(echo=lambda t: None, instance=BASE_URL, token=narrow)


def test_instance_addresses_are_normalized_and_plain_http_only_on_loopback():
    assert normalize_instance("Mastodon.Social/") == "https://mastodon.social"
    assert normalize_instance("https://mastodon.social/about") == "https://mastodon.social"
    assert normalize_instance("@alice@fosstodon.org") == "https://fosstodon.org"
    assert normalize_instance("http://127.0.0.1:8765") == "http://127.0.0.1:8765"
    with pytest.raises(ValueError, match="loopback"):
        normalize_instance("http://mastodon.social")
    assert MastodonConnector.account_settings_from_auth({"instance": "mastodon.social"}) == {
        "base_url": "https://mastodon.social"}
    assert MastodonConnector.account_settings_from_auth({}) is None
    with pytest.raises(OAuthError):
        MastodonConnector.account_settings_from_auth({"instance": "http://example.com"})


def test_authorize_refuses_an_instance_other_than_the_configured_one(tmp_path):
    connector = MastodonConnector(AccountConfig(name=ACCOUNT, platform="mastodon", base_url="https://a.example"),
                                  open_secret_store("memory"))
    with pytest.raises(OAuthError, match="base_url"):
        connector.authorize(echo=lambda t: None, instance="https://b.example", token="x")


# --------------------------------------------------------------------------- mapping


def test_mapping_of_the_notes_examples():
    status = {
        "id": "113400000000000042", "created_at": "2024-10-31T09:15:02.118Z", "edited_at": None,
        "in_reply_to_id": None, "spoiler_text": "", "visibility": "public",
        "uri": "https://social.example/users/alice/statuses/113400000000000042",
        "url": "https://social.example/@alice/113400000000000042",
        "replies_count": 2, "reblogs_count": 1, "favourites_count": 7,
        "content": "<p>Garden update <a href=\"https://social.example/tags/plants\" class=\"mention hashtag\" "
                   "rel=\"tag\">#<span>plants</span></a></p>",
        "reblog": None, "account": {"id": "1091", "username": "alice", "acct": "alice"},
        "media_attachments": [{"id": "22345792", "type": "image", "url": "https://files.social.example/a.jpeg",
                               "description": "Tomato seedlings on a windowsill", "blurhash": "U",
                               "meta": {"original": {"width": 1600}}}],
    }
    post = post_from_status(status, instance="social.example")
    assert (post.native_id, post.kind, post.text, post.created_at) == (
        "social.example:113400000000000042", "text", "Garden update #plants", "2024-10-31T09:15:02Z")
    assert (post.like_count, post.comment_count, post.share_count) == (7, 2, 1)
    assert post.media[0].description == "Tomato seedlings on a windowsill" and post.media[0].role == "image"
    context = {"ancestors": [], "descendants": [
        {"id": "113400000000000077", "in_reply_to_id": "113400000000000042",
         "account": {"id": "5", "acct": "bob@other.example"}, "content": "<p>Nice!</p>",
         "created_at": "2024-10-31T10:00:00.000Z"}]}
    [comment] = comments_from_context("113400000000000042", context, "1091", "social.example")
    assert comment.author.native_id == "bob@other.example" and comment.text == "Nice!"
    # Keyed on the instance that numbered it, under the post's key.
    assert (comment.native_id, comment.post_native_id) == ("social.example:113400000000000077",
                                                           "social.example:113400000000000042")
    assert person_key("Alice", "Social.Example") == "alice@social.example"
    assert html_to_text("<p>a<br>b</p><p>c &amp; d</p>") == "a\nb\n\nc & d"


# --------------------------------------------------------------------------- through the real CLI


def mastodon_env(state_dir: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env.update({"ARCHIVER_SECRETS": "env", "ARCHIVER_STATE_DIR": str(state_dir),
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "PYTHONUNBUFFERED": "1"})
    return env


def test_cli_auth_with_instance_adds_the_account_and_exports(tmp_path):
    """`archiver auth mastodon --instance URL`: app registration, loopback code flow, the
    [accounts.main] table appended, then `archiver export` over real loopback HTTP."""
    import re
    import subprocess

    from cli_world import archiver_command, query, run_cli, start_simulator

    simulator = start_simulator(tmp_path / "sim", platform="mastodon", videos=15, followers=30)
    try:
        archive, env = tmp_path / "archive", mastodon_env(tmp_path / "state")
        process = subprocess.Popen([*archiver_command(), "auth", "mastodon", "--instance", simulator.base_url,
                                    "--no-browser", "--archive", str(archive)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        printed = ""
        while True:
            line = process.stdout.readline()
            assert line, printed + process.stderr.read()
            printed += line
            found = re.search(r"http://127\.0\.0\.1:\d+/oauth/authorize\?\S+", line)
            if found:
                break
        with httpx.Client(timeout=10) as browser:
            approval = browser.get(found[0])
            assert approval.status_code == 302, approval.text
            assert browser.get(approval.headers["location"]).status_code == 200
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, printed + stdout + stderr
        assert "@alice@127.0.0.1" in stdout
        config = (archive / "config.toml").read_text()
        assert 'platform = "mastodon"' in config and f'base_url = "{simulator.base_url}"' in config
        tokens = json.loads(json.loads((tmp_path / "state" / "tokens.json").read_text())
                            ["mastodon:main:tokens"]["value"])
        done = run_cli(["export", "--platform", "mastodon", "--archive", str(archive)], env)
        assert done.returncode == 0, done.describe()
        assert query(archive, "SELECT count(*) FROM posts")[0][0] >= 15
        assert query(archive, "SELECT member_count, complete FROM snapshots WHERE kind='followers'") == [(30, 1)]
        everything = printed + stdout + stderr + done.output + config
        for path in archive.rglob("*"):
            if path.is_file():
                assert tokens["access_token"].encode() not in path.read_bytes(), path
        assert tokens["access_token"] not in everything
    finally:
        simulator.stop()


# --------------------------------------------------------------------------- API + archive = one row


def archive_of(fake: FakeMastodon, folder: Path) -> Path:
    """The account archive Mastodon would give for the fake's world (notes §7), as an
    extracted folder: outbox.json with Create and Announce items, the media files."""
    from archiver_connectors.tiktok.sim.fake import fake_mp4, fake_png

    public, actor = "https://www.w3.org/ns/activitystreams#Public", f"{BASE_URL}/users/alice"
    audience = {"public": ([public], [actor + "/followers"]), "unlisted": ([actor + "/followers"], [public]),
                "private": ([actor + "/followers"], []), "direct": ([], [])}
    items = []
    for status in sorted(fake.own_statuses(), key=lambda s: int(s["id"])):
        uri, url = fake._status_uri(status)
        to, cc = audience[status["visibility"]]
        if status["reblog_of"]:
            target_uri, _ = fake._status_uri(fake.statuses[status["reblog_of"]])
            items.append({"id": uri + "/activity", "type": "Announce", "actor": actor, "to": to, "cc": cc,
                          "published": dt_iso(status["created_at"]), "object": target_uri})
            continue
        current = status["versions"][-1]
        attachments = []
        for media in status["media"]:
            name = media["path"].removeprefix("/system/")
            body = fake_png(media["path"]) if name.endswith(".png") else fake_mp4(media["path"], 8 * 1024)
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(body)
            attachments.append({"type": "Document", "mediaType": "image/png" if name.endswith(".png") else "video/mp4",
                                "url": "/system/" + name, "name": media["description"]})
        parent = fake.statuses.get(status["in_reply_to_id"]) if status["in_reply_to_id"] else None
        items.append({"id": uri + "/activity", "type": "Create", "actor": actor, "to": to, "cc": cc,
                      "published": dt_iso(status["created_at"]),
                      "object": {"id": uri, "type": "Note", "url": url, "attributedTo": actor, "to": to, "cc": cc,
                                 "summary": current["spoiler_text"] or None,
                                 "inReplyTo": fake._status_uri(parent)[0] if parent else None,
                                 "published": dt_iso(status["created_at"]),
                                 "content": current["content"].replace("{base}", BASE_URL),
                                 "attachment": attachments}})
    (folder / "outbox.json").write_text(json.dumps({
        "@context": "https://www.w3.org/ns/activitystreams", "id": "outbox.json", "type": "OrderedCollection",
        "totalItems": len(items), "orderedItems": items}))
    (folder / "actor.json").write_text(json.dumps({
        "@context": "https://www.w3.org/ns/activitystreams", "id": actor, "type": "Person",
        "preferredUsername": "alice", "name": "Alice", "summary": fake.accounts["1091"]["note"],
        "url": f"{BASE_URL}/@alice", "outbox": "outbox.json"}))
    return folder


def dt_iso(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_archive_imported_after_the_api_adds_nothing_twice(tmp_path):
    from archiver.sync.jobs import run_import

    h = Harness(tmp_path, FakeMastodonConfig(statuses=25, seed=22))
    assert h.run()["status"] == "ok"
    tables = ("posts", "post_media", "post_versions", "media")
    before = {t: h.value(f"SELECT count(*) FROM {t}") for t in tables}
    texts = h.rows("SELECT post_id, kind, title, text, url, visibility FROM posts ORDER BY post_id")
    folder = archive_of(h.fake, tmp_path / "archive-20241101090000-0123456789abcdef0123456789abcdef")
    result = run_import(h.ws, folder)
    assert result["status"] == "ok", result
    assert result["platform"] == "mastodon"
    assert {t: h.value(f"SELECT count(*) FROM {t}") for t in tables} == before
    assert h.rows("SELECT post_id, kind, title, text, url, visibility FROM posts ORDER BY post_id") == texts
    sources = {s for (s,) in h.archive.db.execute("SELECT sources FROM posts").fetchall()}
    assert all("api" in s and "export:" in s for s in sources)
    # And the API after the archive: still one row each, no edit invented.
    assert h.run(full=True)["status"] == "ok"
    assert {t: h.value(f"SELECT count(*) FROM {t}") for t in tables} == before


# --------------------------------------------------------------------------- two instances


def test_two_accounts_on_two_instances_never_share_a_status_key(tmp_path):
    """Status ids are numbered by each instance: two instances may hand out the same ids
    (here: two fakes of one seed). Keyed "<host>:<id>", each account keeps its own posts,
    comments and versions."""
    first = Harness(tmp_path, FakeMastodonConfig(statuses=8, seed=21))
    second = Harness(tmp_path, FakeMastodonConfig(statuses=8, seed=21), base_url="http://localhost:8799",
                     account="other")
    assert first.run()["status"] == "ok" and second.run()["status"] == "ok"
    per_account = first.rows("SELECT account_id, count(*) AS n FROM posts GROUP BY account_id ORDER BY 1")
    owned = len(first.fake.own_statuses())
    assert [(r["account_id"], r["n"]) for r in per_account] == [("mastodon:main", owned), ("mastodon:other", owned)]
    assert {r["post_id"] for r in first.rows("SELECT post_id FROM posts WHERE account_id='mastodon:other'")} == \
        {f"localhost:{s['id']}" for s in second.fake.own_statuses()}
    comments = first.rows("SELECT account_id, count(*) AS n FROM comments GROUP BY account_id ORDER BY 1")
    assert len(comments) == 2 and comments[0]["n"] == comments[1]["n"] > 0


def test_the_migration_keys_an_older_archives_statuses_by_instance(tmp_path):
    from sqlite_utils import Database

    from archiver.archive.schema import migrations

    path = tmp_path / "old" / "archive.db"
    path.parent.mkdir()
    db = Database(path)
    migrations.apply(db, stop_before="m008_small_promises_instance_keys")
    db.execute("INSERT INTO accounts (account_id, platform, name, url, first_seen_at, last_seen_at) "
               "VALUES ('mastodon:main', 'mastodon', 'main', 'https://Social.Example/@alice', 'x', 'x')")
    for post_id in ("11", "12"):
        db.execute("INSERT INTO posts (platform, post_id, account_id, first_seen_at, last_seen_at) "
                   "VALUES ('mastodon', ?, 'mastodon:main', 'x', 'x')", [post_id])
    db.execute("INSERT INTO post_versions (platform, post_id, replaced_at, text) VALUES ('mastodon', '11', 't', 'old')")
    db.execute("INSERT INTO post_media (platform, post_id, role, position, status, updated_at) "
               "VALUES ('mastodon', '12', 'image', 0, 'failed', 't')")
    db.execute("INSERT INTO comments (platform, comment_id, account_id, post_id, parent_id, first_seen_at, last_seen_at) "
               "VALUES ('mastodon', '31', 'mastodon:main', '11', NULL, 'x', 'x'), "
               "('mastodon', '32', 'mastodon:main', '11', '31', 'x', 'x')")
    db.execute("INSERT INTO posts (platform, post_id, account_id, first_seen_at, last_seen_at) "
               "VALUES ('tiktok', '11', 'tiktok:main', 'x', 'x')")
    db.conn.commit()
    db.close()
    upgraded = Archive(path.parent)
    got = lambda sql: [tuple(r) for r in upgraded.db.execute(sql).fetchall()]  # noqa: E731
    assert got("SELECT platform, post_id FROM posts ORDER BY 1, 2") == [
        ("mastodon", "social.example:11"), ("mastodon", "social.example:12"), ("tiktok", "11")]
    assert got("SELECT post_id FROM post_versions") == [("social.example:11",)]
    assert got("SELECT post_id FROM post_media") == [("social.example:12",)]
    assert got("SELECT comment_id, post_id, parent_id FROM comments ORDER BY 1") == [
        ("social.example:31", "social.example:11", None), ("social.example:32", "social.example:11", "social.example:31")]
    upgraded.close()


# --------------------------------------------------------------------------- completeness


def test_a_status_whose_replies_cannot_be_read_is_reported_and_never_tombstoned(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=30, seed=31))
    assert h.run(full=True)["status"] == "ok"
    own = sorted(h.fake.own_statuses(), key=lambda s: int(s["id"]))
    refused, gone = own[3]["id"], own[10]["id"]
    h.fake.delete_status(gone)
    h.faults.append(lambda request: httpx.Response(422, json={"error": "Validation failed"})
                    if request.url.path == f"/api/v1/statuses/{refused}/context" else None)

    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert h.value("SELECT deleted_at FROM posts WHERE post_id=?", key(refused)) is None
    assert any(refused in e["item"] for e in result["errors"])
    assert any(e["item"] == "statuses listing" and "nothing was marked deleted" in e["error"] for e in result["errors"])
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0

    h.faults.clear()
    result = h.run(full=True)
    assert result["status"] == "ok" and result["counts"]["posts_tombstoned"] == 1
    assert h.rows("SELECT post_id FROM posts WHERE deleted_at IS NOT NULL") == [{"post_id": key(gone)}]


def test_a_reply_deleted_on_mastodon_is_tombstoned_once_its_status_is_listed_again(tmp_path):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=20, seed=32))
    assert h.run()["status"] == "ok"
    status = h.fake.add_status("<p>Ask me anything</p>")
    kept, deleted = h.fake.add_reply(status["id"]), h.fake.add_reply(status["id"])
    assert h.run()["status"] == "ok"
    assert h.value("SELECT count(*) FROM comments WHERE post_id=?", key(status["id"])) == 2

    h.fake.delete_status(deleted["id"])        # its author deleted it
    result = h.run()
    assert result["status"] == "ok", result
    assert h.rows("SELECT comment_id FROM comments WHERE deleted_at IS NOT NULL") == [{"comment_id": key(deleted["id"])}]
    assert h.value("SELECT deleted_at FROM comments WHERE comment_id=?", key(kept["id"])) is None
    assert result["counts"]["comments_tombstoned"] == 1
