"""`archiver export` and `archiver auth` for LinkedIn through the Member Data Portability
API, in-process: the real connector, runner and writer against the stateful FakeLinkedIn
through httpx.MockTransport. Every test checks archive rows and what the fake was asked."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import httpx
import pytest
from tiktok_sync_harness import ticking_clock

import archiver.crashpoints as crashpoints
from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.net.oauth import OAuthError
from archiver.secrets import open_secret_store
from archiver.sync.jobs import Workspace, run_export
from archiver_connectors.linkedin import LinkedInConnector
from archiver_connectors.linkedin.api import LinkedInTokens
from archiver_connectors.linkedin.sim.fake import DAY, FakeLinkedIn, FakeLinkedInConfig

BASE_URL = "http://127.0.0.1:8798"   # never contacted: MockTransport answers in-process
ACCOUNT = "main"
ACCOUNT_ID = f"linkedin:{ACCOUNT}"


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


class Harness:
    """A fake LinkedIn, an archive, an in-memory secret store holding what `archiver auth`
    would have stored (a token the fake minted, stored by the connector's own token class),
    ``faults`` that answer instead of the fake. The connector's clock is the fake's."""

    def __init__(self, tmp_path: Path, monkeypatch, config: FakeLinkedInConfig | None = None, *,
                 options: dict | None = None, token_age: float = 0):
        self.fake = FakeLinkedIn(config or FakeLinkedInConfig(posts=7, followers=5, page_size=3), base_url=BASE_URL)
        monkeypatch.setattr("archiver_connectors.linkedin.api.now", self.fake.now)
        self.secrets = open_secret_store("memory")
        self.faults: list[Callable[[httpx.Request], httpx.Response | None]] = []
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []
        self.sleeps: list[float] = []
        self.account = AccountConfig(name=ACCOUNT, platform="linkedin", base_url=BASE_URL, options=options or {})
        self.token = self.fake.issue_token(age=token_age)
        with httpx.Client() as unused:
            LinkedInTokens(self.secrets, ACCOUNT, f"{BASE_URL}/oauth/v2/accessToken", unused,
                           clock=self.fake.now).store(self.token)
        self.archive = Archive(tmp_path / "archive")
        self.ws = Workspace(self.archive, Config(path=None, accounts=[self.account]), self.secrets)

    def run(self, *, full: bool = False, cancel=lambda: False, progress=None) -> dict:
        return run_export(self.ws, self.account, full=full, cancel=cancel, progress=progress or (lambda line: None),
                          transport=httpx.MockTransport(self._handle), sleep=self.sleep)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.fake.advance(seconds)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for fault in list(self.faults):
            answer = fault(request)
            if answer is not None:
                self.statuses.append(answer.status_code)
                return answer
        answer = self.fake.handle(request)
        self.statuses.append(answer.status_code)
        return answer

    def rows(self, sql: str, *params) -> list[dict]:
        cursor = self.archive.db.execute(sql, list(params))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def value(self, sql: str, *params):
        return self.archive.db.execute(sql, list(params)).fetchone()[0]

    def state(self, stream: str) -> dict | None:
        row = self.archive.db.execute("SELECT state FROM sync_state WHERE account_id=? AND stream=?",
                                      [ACCOUNT_ID, stream]).fetchone()
        return json.loads(row[0]) if row else None

    def paths(self, since: int = 0) -> list[str]:
        return [r.url.path for r in self.requests[since:]]

    def contents(self) -> dict:
        """What the archive holds, without the times of writing: two archives of the same
        data compare equal."""
        return {
            "posts": self.rows("SELECT post_id, text, url, link, visibility, created_at, deleted_at FROM posts "
                               "ORDER BY post_id"),
            "comments": self.rows("SELECT post_id, text, created_at, by_owner FROM comments ORDER BY text"),
            "likes": self.rows("SELECT kind, target, created_at FROM interactions ORDER BY target"),
            "snapshots": self.rows("SELECT kind, member_count, complete FROM snapshots s WHERE taken_at = "
                                   "(SELECT max(taken_at) FROM snapshots WHERE kind=s.kind) ORDER BY kind"),
            "people": self.rows("SELECT person_id, display_name, url FROM people ORDER BY person_id"),
            "profile": self.rows("SELECT display_name, username, bio FROM accounts"),
        }


def vanities(fake: FakeLinkedIn) -> set[str]:
    return {c.member.vanity for c in fake.world.connections if c.member.vanity}


# --------------------------------------------------------------------------- the snapshot


def test_first_run_reads_every_domain_page_by_page_into_the_export_records(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch)
    result = h.run()
    assert result["status"] == "ok", result
    # every call: the version LinkedIn wants, Rest.li 2.0, the bearer token; never a query token
    assert all(r.headers["LinkedIn-Version"] == "202602" and r.headers["X-Restli-Protocol-Version"] == "2.0.0"
               and r.headers["Authorization"].startswith("Bearer ") for r in h.requests)
    assert not any("access_token" in str(r.url) for r in h.requests)
    shares = [r for r in h.requests if r.url.params.get("domain") == "MEMBER_SHARE_INFO"]
    assert [r.url.params.get("start", "0") for r in shares] == ["0", "1", "2"]      # 7 posts, 3 a page
    posts = h.rows("SELECT post_id, url, link, visibility, text FROM posts ORDER BY post_id")
    assert {p["post_id"] for p in posts} == set(h.fake.posts)
    assert all(p["post_id"].startswith(("urn:li:share:", "urn:li:ugcPost:")) for p in posts)
    assert any(p["link"] == "https://example.org/article" for p in posts)
    assert {p["visibility"] for p in posts} == {"public", "friends"}
    assert h.value("SELECT count(*) FROM comments WHERE by_owner=1") == len(h.fake.world.comments)
    assert h.value("SELECT count(*) FROM interactions WHERE kind='like'") == len(h.fake.world.reactions)
    snapshots = {r["kind"]: r for r in h.rows("SELECT kind, member_count, complete FROM snapshots")}
    assert snapshots["friends"]["member_count"] == 5 and snapshots["friends"]["complete"] == 1
    assert {snapshots[k]["member_count"] for k in ("invitations_received", "invitations_sent")} == {1}
    assert snapshots["following"]["member_count"] == 4           # 2 members + 2 companies
    people = {r["person_id"] for r in h.rows("SELECT person_id FROM people")}
    assert vanities(h.fake) <= people and any(p.startswith("name:") for p in people)
    assert any(p.startswith("company:") for p in people)
    account = h.rows("SELECT display_name, username, bio FROM accounts")[0]
    assert account["display_name"] == "Ada Example" and account["username"] == "ada-example-1234"
    assert h.state("snapshot")["completed_at"] and h.state("changelog")["read_at_ms"]
    assert h.paths()[-1] == "/rest/memberChangeLogs"
    dump = "\n".join(line for line in h.archive.db.conn.iterdump())
    assert h.token["access_token"] not in dump
    assert h.fake.world.owner.address not in dump and h.fake.world.owner.birth_date not in dump


@pytest.mark.parametrize("quirk", [False, True])
def test_multi_line_posts_read_the_same_with_or_without_the_exports_quote_quirk(tmp_path, monkeypatch, quirk):
    h = Harness(tmp_path, monkeypatch, FakeLinkedInConfig(posts=3, followers=1, share_quirk=quirk))
    h.run()
    texts = {r["post_id"]: r["text"] for r in h.rows("SELECT post_id, text FROM posts")}
    assert {p.urn: p.text or None for p in h.fake.world.posts} == texts


def test_a_quiet_second_run_asks_only_the_changelog(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch)
    h.run()
    before = h.contents()
    mark = len(h.requests)
    assert h.run()["status"] == "ok"
    assert h.paths(mark) == ["/rest/memberChangeLogs"]
    assert h.contents() == before


def test_the_changelog_brings_what_changed_since_the_last_run_as_the_snapshot_would(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch)
    h.run()
    h.fake.advance(3600)
    urn = h.fake.add_post("Fresh thoughts,\non two lines", link="https://example.org/new")
    h.fake.add_comment("Nicely put")
    h.fake.add_reaction("urn:li:activity:99", "PRAISE")
    mark = len(h.requests)
    assert h.run()["status"] == "ok"
    assert h.paths(mark) == ["/rest/memberChangeLogs"]
    since = int(h.requests[-1].url.params["startTime"])
    assert since <= int(h.fake.now() * 1000) - 3600 * 1000          # from where the last run stood
    post = h.rows("SELECT text, link, visibility FROM posts WHERE post_id=?", urn)[0]
    assert post == {"text": "Fresh thoughts,\non two lines", "link": "https://example.org/new", "visibility": "public"}
    assert h.value("SELECT count(*) FROM comments WHERE text='Nicely put'") == 1
    assert h.value("SELECT count(*) FROM interactions WHERE target='urn:li:activity:99'") == 1
    # the next snapshot gives the same rows: nothing twice
    changed = h.contents()
    assert h.run(full=True)["status"] == "ok"
    assert h.contents() == changed


def test_an_edit_in_the_changelog_makes_a_version_a_delete_deletes_nothing(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch)
    h.run()
    urn = h.fake.add_post("draft")
    h.run()
    h.fake.edit_post(urn, "final words")
    h.fake.delete_post(h.fake.posts[-1])
    h.run()
    assert h.value("SELECT text FROM posts WHERE post_id=?", urn) == "final words"
    assert h.value("SELECT count(*) FROM post_versions WHERE post_id=?", urn) == 1
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0


def test_only_a_full_pass_marks_a_post_linkedin_no_longer_has_as_deleted(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch, options={"snapshot_days": 0})
    h.run()
    gone = h.fake.posts[2]
    h.fake.world.posts[:] = [p for p in h.fake.world.posts if p.urn != gone]
    assert h.run()["status"] == "ok"                           # a new pass (snapshot_days = 0), incremental
    assert h.value("SELECT deleted_at FROM posts WHERE post_id=?", gone) is None
    assert h.run(full=True)["status"] == "ok"
    assert h.value("SELECT deleted_at FROM posts WHERE post_id=?", gone) is not None
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 1


def test_connections_lost_and_gained_between_two_passes_are_dated(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch, options={"snapshot_days": 0})
    h.run()
    lost = sorted(vanities(h.fake))[0]
    h.fake.remove_connection(lost)
    new = h.fake.add_connection()
    h.fake.advance(DAY)
    assert h.run()["status"] == "ok"
    events = {(r["event"], r["person_id"]) for r in h.rows(
        "SELECT event, person_id FROM audience_events WHERE kind='friends' AND snapshot_id = "
        "(SELECT max(snapshot_id) FROM audience_events WHERE kind='friends')")}
    assert events == {("lost", lost), ("new", new)}      # dated by the second pass


def test_an_empty_list_domain_never_empties_the_list(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch, options={"snapshot_days": 0})
    h.run()
    h.fake.world.connections.clear()                # CONNECTIONS answers 404 "No data found"
    assert h.run()["status"] == "ok"
    assert h.value("SELECT count(*) FROM snapshots WHERE kind='friends'") == 1
    assert h.value("SELECT count(*) FROM audience_events WHERE kind='friends' AND event='lost'") == 0


def test_lying_totals_do_not_stop_the_walk_and_a_next_link_going_back_is_refused(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch, FakeLinkedInConfig(posts=8, followers=7, page_size=2, lying_total=True))
    assert h.run()["status"] == "ok"
    assert h.value("SELECT count(*) FROM posts") == 8
    h.fake.advance(DAY)

    def back_to_the_start(request):
        if request.url.params.get("domain") == "CONNECTIONS" and request.url.params.get("start") == "1":
            answer = h.fake.handle(request)
            body = answer.json()
            body["paging"]["links"] = [{"rel": "next", "href": "/rest/memberSnapshotData?q=criteria&start=0"}]
            return httpx.Response(200, json=body)
        return None

    h.faults.append(back_to_the_start)
    h.fake.remove_connection(sorted(vanities(h.fake))[-1])   # on a page the walk never reaches
    before = h.contents()
    result = h.run(full=True)
    assert result["status"] == "failed" and "names page 0" in result["message"]
    assert h.contents()["snapshots"] == before["snapshots"]    # no list taken from a cut walk


def test_a_domain_linkedin_does_not_know_by_that_name_is_reported_and_its_list_left_incomplete(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch, FakeLinkedInConfig(posts=3, followers=3,
                                                          unknown_domains=("MEMBER_FOLLOWS", "INVITATIONS")))
    result = h.run()
    assert result["status"] == "ok" and h.state("snapshot")["completed_at"]
    assert {e["item"] for e in result["errors"]} == {"MEMBER_FOLLOWS domain", "INVITATIONS domain"}
    snapshots = {r["kind"]: r for r in h.rows("SELECT kind, member_count, complete FROM snapshots")}
    assert snapshots["following"] == {"kind": "following", "member_count": 2, "complete": 0}   # the companies only
    assert "invitations_received" not in snapshots and snapshots["friends"]["complete"] == 1


# --------------------------------------------------------------------------- processing, limits, errors


def test_while_linkedin_processes_after_consent_the_run_says_so_and_changes_nothing(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch, FakeLinkedInConfig(posts=4, followers=3, processing_seconds=3600))
    result = h.run()
    assert result["status"] == "ok", result
    assert any("while it prepares your data" in line for line in result["summary"])
    assert h.value("SELECT count(*) FROM posts") == 0 and h.value("SELECT count(*) FROM snapshots") == 0
    assert not (h.state("snapshot") or {}).get("completed_at")
    h.fake.advance(3601)
    assert h.run()["status"] == "ok"
    assert h.value("SELECT count(*) FROM posts") == 4 and h.state("snapshot")["completed_at"]


def test_a_429_stops_the_run_cleanly_and_the_next_day_goes_on_without_asking_twice(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch, FakeLinkedInConfig(posts=7, followers=5, page_size=3, rate_limit=8))
    first = h.run()
    assert first["status"] == "ok" and first["errors"][0]["item"] == "throttled"
    assert "429" in first["errors"][0]["error"] and "next one goes on" in first["errors"][0]["error"]
    assert 0 < h.value("SELECT count(*) FROM posts") and not h.state("snapshot").get("completed_at")
    read = {(r.url.params.get("domain"), r.url.params.get("start")) for r, status in zip(h.requests, h.statuses,
                                                                                         strict=True) if status == 200}
    mark = len(h.requests)
    h.fake.advance(DAY)
    for _day in range(5):
        if (h.state("snapshot") or {}).get("completed_at"):
            break
        h.run()
        h.fake.advance(DAY)
    later = [(r.url.params.get("domain"), r.url.params.get("start")) for r in h.requests[mark:]]
    assert h.value("SELECT count(*) FROM posts") == 7 and h.value("SELECT count(*) FROM snapshots") == 4
    # pages read once are not read again (but page 0 of the posts: the probe of each run)
    assert set(later) & read <= {("MEMBER_SHARE_INFO", None)}


def test_an_expired_token_fails_without_asking_linkedin_and_says_what_to_do(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch, token_age=61 * DAY)
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth"
    assert "60 days" in result["message"] and "archiver auth linkedin --account main" in result["message"]
    assert h.requests == []


@pytest.mark.parametrize("how, words", [("revoked", "REVOKED_ACCESS_TOKEN"), ("expired", "EXPIRED_ACCESS_TOKEN")])
def test_a_token_linkedin_refuses_is_an_auth_failure_naming_the_command(tmp_path, monkeypatch, how, words):
    h = Harness(tmp_path, monkeypatch)
    h.fake.revoke_all() if how == "revoked" else h.fake.expire_tokens()
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth"
    assert words in result["message"] and "archiver auth linkedin --account main" in result["message"]
    assert h.token["access_token"] not in json.dumps(result)
    assert len(h.requests) == 1                          # no retry of a refused token


def test_403_outside_the_eea_names_the_product_scope_and_the_limit(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch, FakeLinkedInConfig(outside_eea=True))
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth"
    assert all(w in result["message"] for w in ("ACCESS_DENIED", "Member Data Portability", "EEA",
                                                "r_dma_portability_member", "archiver import"))


def test_the_version_and_scope_come_from_the_account(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch, options={"api_version": "202001"})
    result = h.run()
    assert result["status"] == "failed" and "202001" in result["message"]
    assert {r.headers["LinkedIn-Version"] for r in h.requests} == {"202001"}


def test_the_expiry_is_told_to_the_alerts_a_week_ahead(tmp_path, monkeypatch):
    import datetime as dt

    from archiver.ops.alerts import evaluate_account

    h = Harness(tmp_path, monkeypatch, token_age=55 * DAY)
    assert h.run()["status"] == "ok"
    said = h.state("authorization")
    end = said["expires_at"]
    assert "archiver auth linkedin --account main" in said["renew"]
    assert abs(dt.datetime.fromisoformat(end.replace("Z", "+00:00")).timestamp() - (h.fake.now() + 5 * DAY)) < 5
    evaluate_account(h.ws, h.account, now=dt.datetime.now(dt.timezone.utc))
    assert h.value("SELECT count(*) FROM alerts WHERE kind='auth_expiring' AND resolved_at IS NULL") == 1


@pytest.mark.parametrize("answer", [
    httpx.Response(404, text="<html><h1>Not Found</h1></html>"),
    httpx.Response(404, json={"status": 404, "serviceErrorCode": 0, "code": "RESOURCE_NOT_FOUND",
                              "message": "No virtual resource found"}),
])
def test_a_404_that_is_not_linkedins_no_data_fails_the_run_and_keeps_the_archive(tmp_path, monkeypatch, answer):
    h = Harness(tmp_path, monkeypatch)
    h.run()
    before = h.contents()
    h.faults.append(lambda request: answer)
    result = h.run(full=True)
    assert result["status"] == "failed" and result["failure_kind"] == "gone" and "404" in result["message"]
    assert h.contents() == before


def test_every_domain_answering_no_data_changes_nothing(tmp_path, monkeypatch):
    h = Harness(tmp_path, monkeypatch)
    h.run()
    before = h.contents()

    def no_data(request):
        if request.url.path == "/rest/memberSnapshotData":
            return httpx.Response(404, json={"status": 404, "serviceErrorCode": 404,
                                             "message": "No data found for this memberId"})
        return None

    h.faults.append(no_data)
    result = h.run(full=True)
    assert result["status"] == "ok" and any("no data" in line for line in result["summary"])
    assert h.contents() == before


# --------------------------------------------------------------------------- a killed run


class Killed(BaseException):
    """The process died here (raised at a crash point, like os._exit, past every handler)."""


def kill_at(monkeypatch, n: int):
    """Die right after the n-th committed write transaction (the "commit" crash point)."""
    original, passed = crashpoints.reached, [0]

    def reached(point, cut=None, stopped=None):
        if point == "commit":
            passed[0] += 1
            if passed[0] == n:
                raise Killed(f"commit {n}")
        return original(point, cut) if stopped is None else original(point, cut, stopped)

    monkeypatch.setattr(crashpoints, "reached", reached)


def commits(tmp_path, monkeypatch) -> tuple[int, dict]:
    """How many commits an uninterrupted first run makes, and the archive it leaves."""
    h = Harness(tmp_path / "whole", monkeypatch)
    passed = [0]
    original = crashpoints.reached

    def count(point, cut=None, stopped=None):
        passed[0] += point == "commit"
        return original(point, cut) if stopped is None else original(point, cut, stopped)

    monkeypatch.setattr(crashpoints, "reached", count)
    assert h.run()["status"] == "ok"
    monkeypatch.setattr(crashpoints, "reached", original)
    return passed[0], h.contents()


def test_a_run_killed_after_any_commit_resumes_and_converges(tmp_path, monkeypatch):
    total, whole = commits(tmp_path, monkeypatch)
    # Every point under ARCHIVER_SOAK; a few spread over the run otherwise (posts, lists, profile).
    points = range(1, total + 1) if os.environ.get("ARCHIVER_SOAK") else sorted({2, total // 3, total // 2, total - 2})
    original = crashpoints.reached
    for n in points:
        h = Harness(tmp_path / f"kill-{n}", monkeypatch)
        kill_at(monkeypatch, n)
        with pytest.raises(Killed):
            h.run()
        monkeypatch.setattr(crashpoints, "reached", original)
        h.archive.close()
        h.archive = Archive(tmp_path / f"kill-{n}" / "archive")
        h.ws = Workspace(h.archive, Config(path=None, accounts=[h.account]), h.secrets)
        mark = len(h.requests)
        assert h.run()["status"] == "ok", n
        assert h.contents() == whole, n
        assert h.paths(mark)[-1] == "/rest/memberChangeLogs"
        h.archive.close()


# --------------------------------------------------------------------------- authorization


def play_browser(fake: FakeLinkedIn):
    """Open the consent URL on the fake and follow its redirect to the loopback callback."""
    def browser(url: str) -> None:
        answer = fake.handle(httpx.Request("GET", url))
        assert answer.status_code == 302, answer.text
        with httpx.Client(timeout=10) as real:     # the loopback server is real
            real.get(answer.headers["location"])
    return browser


def authorize(fake: FakeLinkedIn, options: dict | None = None):
    secrets = open_secret_store("memory")
    connector = LinkedInConnector(AccountConfig(name=ACCOUNT, platform="linkedin", base_url=BASE_URL,
                                                options=options or {}),
                                  secrets, transport=httpx.MockTransport(fake.handle))
    printed: list[str] = []
    message = connector.authorize(echo=printed.append, open_browser=play_browser(fake),
                                  client_id=fake.config.client_id, client_secret=fake.config.client_secret, timeout=10)
    return message, secrets, printed


def test_auth_stores_the_60_day_token_and_the_app_credentials(monkeypatch):
    fake = FakeLinkedIn(FakeLinkedInConfig(), base_url=BASE_URL)
    monkeypatch.setattr("archiver_connectors.linkedin.api.now", fake.now)
    message, secrets, printed = authorize(fake)
    stored = json.loads(secrets.get("linkedin", ACCOUNT, "tokens"))
    assert stored["access_token"] in fake.tokens and stored["scope"] == "r_dma_portability_member"
    assert abs(stored["access_expires_at"] - (fake.now() + 60 * DAY)) < 5
    assert not stored.get("refresh_token")
    assert secrets.get("linkedin", ACCOUNT, "client_secret") == fake.config.client_secret
    assert "valid until" in message and stored["access_token"] not in message + "".join(printed)
    assert any("/oauth/v2/authorization?" in line and "scope=r_dma_portability_member" in line for line in printed)


def test_auth_asks_for_the_configured_scope_name(monkeypatch):
    fake = FakeLinkedIn(FakeLinkedInConfig(accepted_scopes=("r_dma_portability_self_serve",)), base_url=BASE_URL)
    _message, secrets, _printed = authorize(fake, {"scope": "r_dma_portability_self_serve"})
    assert json.loads(secrets.get("linkedin", ACCOUNT, "tokens"))["scope"] == "r_dma_portability_self_serve"


def test_auth_outside_the_eea_is_refused_with_the_reason(monkeypatch):
    fake = FakeLinkedIn(FakeLinkedInConfig(outside_eea=True), base_url=BASE_URL)
    with pytest.raises(OAuthError) as refused:
        authorize(fake)
    assert "access_denied" in str(refused.value) and "EEA" in str(refused.value)


def test_an_app_with_refresh_tokens_renews_the_access_token_itself(tmp_path, monkeypatch):
    """Partner apps get refresh tokens (programmatic refresh): the core's refresh grant renews
    the 60-day token before it runs out, and the alerts watch the refresh token's end."""
    h = Harness(tmp_path, monkeypatch, FakeLinkedInConfig(posts=2, followers=2, programmatic_refresh=True))
    h.secrets.set("linkedin", ACCOUNT, "client_id", h.fake.config.client_id)
    h.secrets.set("linkedin", ACCOUNT, "client_secret", h.fake.config.client_secret)
    old = json.loads(h.secrets.get("linkedin", ACCOUNT, "tokens"))
    assert old["refresh_token"]
    h.fake.advance(60 * DAY - 10)                       # the access token has seconds left
    assert h.run()["status"] == "ok"
    new = json.loads(h.secrets.get("linkedin", ACCOUNT, "tokens"))
    assert new["access_token"] != old["access_token"] and new["refresh_token"] == old["refresh_token"]
    assert "/oauth/v2/accessToken" in h.paths()
    assert h.value("SELECT count(*) FROM posts") == 2
    import datetime as dt

    end = dt.datetime.fromisoformat(h.state("authorization")["expires_at"].replace("Z", "+00:00")).timestamp()
    assert end > h.fake.now() + 200 * DAY                 # the refresh token's end (a year), not the access token's


def test_the_export_of_the_same_member_adds_nothing_twice(tmp_path, monkeypatch):
    """The contract of issue 14: API rows and export rows go through rows.py alike, so an
    import of the "Get a copy of your data" zip over an API archive finds every post,
    comment, reaction and person already there."""
    from archiver.sync.jobs import run_import
    from archiver_connectors.linkedin.sim.fake import write_matching_export

    h = Harness(tmp_path, monkeypatch)
    h.fake.advance(3600)
    h.fake.add_post("After consent, from the changelog")
    assert h.run()["status"] == "ok"
    before = h.contents()
    events = h.value("SELECT count(*) FROM audience_events")
    zipped = write_matching_export(h.fake, str(tmp_path / "Complete_LinkedInDataExport_12-01-2026.zip"))
    result = run_import(h.ws, zipped, platform="linkedin", account_name=ACCOUNT)
    assert result["status"] == "ok", result
    after = h.contents()
    for table in ("posts", "comments", "likes", "people", "profile"):
        assert after[table] == before[table], table
    assert h.value("SELECT count(*) FROM audience_events") == events       # nobody new, nobody lost


@pytest.mark.parametrize("paging", ["offset", "index"])
def test_the_changelog_is_followed_by_its_next_links_whatever_start_counts(tmp_path, monkeypatch, paging):
    h = Harness(tmp_path, monkeypatch, FakeLinkedInConfig(posts=2, followers=2, changelog_page_size=2,
                                                          changelog_paging=paging))
    h.run()
    for n in range(5):
        h.fake.add_reaction(f"urn:li:activity:{n}")
    mark = len(h.requests)
    assert h.run()["status"] == "ok"
    assert h.paths(mark) == ["/rest/memberChangeLogs"] * 3
    assert h.value("SELECT count(*) FROM interactions WHERE target LIKE 'urn:li:activity:_'") == 5
