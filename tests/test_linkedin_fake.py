"""The LinkedIn fake (linkedin/sim/fake.py) refuses what LinkedIn refuses (notes §3): a
fake that accepts anything would prove nothing about the connector. Each test asks the
fake directly, in-process."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from archiver_connectors.linkedin.sim.fake import DAY, FakeLinkedIn, FakeLinkedInConfig

BASE = "http://127.0.0.1:8799"
VERSION = "202602"


def fake(**config) -> FakeLinkedIn:
    return FakeLinkedIn(FakeLinkedInConfig(**{"posts": 7, "followers": 4, "page_size": 3, **config}), base_url=BASE)


def get(f: FakeLinkedIn, path: str, token: str | None, *, version: str | None = VERSION, **params) -> httpx.Response:
    headers = {"X-Restli-Protocol-Version": "2.0.0"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if version:
        headers["LinkedIn-Version"] = version
    return f.handle(httpx.Request("GET", f"{BASE}{path}", params=params, headers=headers))


def snapshot(f: FakeLinkedIn, token: str, **params) -> httpx.Response:
    return get(f, "/rest/memberSnapshotData", token, **{"q": "criteria", **params})


def test_the_version_header_is_required_and_must_be_one_linkedin_serves():
    f = fake()
    token = f.issue_token()["access_token"]
    missing = get(f, "/rest/memberSnapshotData", token, version=None, q="criteria", domain="CONNECTIONS")
    assert missing.status_code == 400 and "LinkedIn-Version" in missing.json()["message"]
    old = get(f, "/rest/memberSnapshotData", token, version="202001", q="criteria", domain="CONNECTIONS")
    assert old.status_code == 400 and old.json()["code"] == "NONEXISTENT_VERSION"
    assert snapshot(f, token, domain="CONNECTIONS").status_code == 200


def test_a_token_without_the_portability_scope_or_a_member_outside_the_eea_is_refused():
    f = fake()
    wrong = f.issue_token("r_liteprofile")["access_token"]
    refused = snapshot(f, wrong, domain="CONNECTIONS")
    assert refused.status_code == 403 and refused.json()["code"] == "ACCESS_DENIED"
    alias = fake(accepted_scopes=("r_dma_portability_self_serve",))
    assert snapshot(alias, alias.issue_token()["access_token"], domain="CONNECTIONS").status_code == 200
    outside = fake(outside_eea=True)
    answer = snapshot(outside, outside.issue_token()["access_token"], domain="CONNECTIONS")
    assert answer.status_code == 403 and "EEA" in answer.json()["message"]
    consent = outside.handle(httpx.Request("GET", f"{BASE}/oauth/v2/authorization?" + urlencode({
        "response_type": "code", "client_id": outside.config.client_id, "state": "s1",
        "redirect_uri": "http://127.0.0.1:4567/callback/", "scope": "r_dma_portability_member"})))
    assert consent.status_code == 302
    back = parse_qs(urlsplit(consent.headers["location"]).query)
    assert back["error"] == ["access_denied"] and back["state"] == ["s1"] and "code" not in back


def test_q_criteria_is_mandatory_an_unknown_domain_is_400_and_an_empty_one_404():
    f = fake()
    token = f.issue_token()["access_token"]
    assert get(f, "/rest/memberSnapshotData", token, domain="CONNECTIONS").status_code == 400
    assert snapshot(f, token, domain="FRIENDS_OF_FRIENDS").status_code == 400
    empty = snapshot(f, token, domain="PATENTS")
    assert empty.status_code == 404 and "No data found" in empty.json()["message"]
    assert get(f, "/rest/memberChangeLogs", token).status_code == 400      # q=memberAndApplication missing


def test_start_is_a_page_index_count_is_ignored_and_next_links_end_the_walk():
    f = fake(posts=7, page_size=3)
    token = f.issue_token()["access_token"]
    pages, start, hrefs = [], 0, []
    while True:
        body = snapshot(f, token, domain="MEMBER_SHARE_INFO", start=start, count=50).json()
        pages.append([row["ShareLink"] for row in body["elements"][0]["snapshotData"]])
        nexts = [link["href"] for link in body["paging"]["links"] if link["rel"] == "next"]
        if not nexts:
            break
        hrefs.append(nexts[0])
        start = int(parse_qs(urlsplit(nexts[0]).query)["start"][0])
    assert [len(p) for p in pages] == [3, 3, 1]                       # count=50 changed nothing
    assert [parse_qs(urlsplit(h).query)["start"] for h in hrefs] == [["1"], ["2"]]   # 1, 2: pages, not rows
    assert len({link for page in pages for link in page}) == 7
    assert snapshot(f, token, domain="MEMBER_SHARE_INFO", start=3).status_code == 404   # past the end


def test_total_can_lie_and_values_are_strings_only():
    f = fake(posts=7, page_size=3, lying_total=True)
    token = f.issue_token()["access_token"]
    body = snapshot(f, token, domain="MEMBER_SHARE_INFO").json()
    assert body["paging"]["total"] == 1                                 # there are 3 pages
    rows = [row for element in body["elements"] for row in element["snapshotData"]]
    rows += snapshot(f, token, domain="CONNECTIONS").json()["elements"][0]["snapshotData"]
    assert rows and all(isinstance(v, str) for row in rows for v in row.values())
    assert {"First Name", "Last Name", "URL", "Connected On"} <= set(rows[-1])    # the export's column names


def test_without_a_domain_every_domains_pages_follow_one_another():
    f = fake(posts=4, followers=2, page_size=3)
    token = f.issue_token()["access_token"]
    seen, start = [], 0
    while True:
        body = snapshot(f, token, start=start).json()
        seen += [e["snapshotDomain"] for e in body["elements"]]
        nexts = [link for link in body["paging"]["links"] if link["rel"] == "next"]
        if not nexts:
            break
        start += 1
    assert seen.count("MEMBER_SHARE_INFO") == 2 and "CONNECTIONS" in seen and "PROFILE" in seen


def test_tokens_expire_after_60_days_by_the_fake_clock_and_revoked_ones_say_so():
    f = fake()
    token = f.issue_token()["access_token"]
    assert get(f, "/rest/memberSnapshotData", None, q="criteria").status_code == 401
    f.advance(59 * DAY)
    assert snapshot(f, token, domain="PROFILE").status_code == 200
    f.advance(DAY + 1)
    expired = snapshot(f, token, domain="PROFILE")
    assert expired.status_code == 401 and expired.json()["serviceErrorCode"] == 65600
    fresh = f.issue_token()["access_token"]
    f.revoke_all()
    revoked = snapshot(f, fresh, domain="PROFILE")
    assert revoked.status_code == 401 and revoked.json()["serviceErrorCode"] == 65601
    assert revoked.json()["code"] == "REVOKED_ACCESS_TOKEN"


def test_the_daily_limit_answers_429_until_the_next_utc_day():
    f = fake(rate_limit=3)
    token = f.issue_token()["access_token"]
    assert [snapshot(f, token, domain="PROFILE").status_code for _ in range(4)] == [200, 200, 200, 429]
    f.advance(DAY)
    assert snapshot(f, token, domain="PROFILE").status_code == 200


def test_right_after_consent_every_domain_is_404_while_linkedin_processes():
    f = fake(processing_seconds=600)
    token = f.issue_token()["access_token"]
    assert {snapshot(f, token, domain=d).status_code for d in ("PROFILE", "CONNECTIONS", "MEMBER_SHARE_INFO")} == {404}
    f.advance(601)
    assert snapshot(f, token, domain="PROFILE").status_code == 200


def test_the_changelog_holds_events_after_consent_within_28_days_in_milliseconds():
    f = fake()
    early = f.add_post("before consent")            # the member posted before consenting
    f.advance(60)
    token = f.issue_token()["access_token"]
    f.advance(60)
    urn = f.add_post("first after consent", link="https://example.org/a")
    f.add_comment("Well said", on="urn:li:activity:42")
    f.add_reaction("urn:li:activity:43", "PRAISE")
    events = get(f, "/rest/memberChangeLogs", token, q="memberAndApplication").json()["elements"]
    assert [e["resourceName"] for e in events] == ["ugcPosts", "socialActions/comments", "socialActions/likes"]
    assert events[0]["resourceId"] == urn and early not in json.dumps(events)
    assert events[0]["capturedAt"] > 1e12                                # milliseconds
    # The fake's clock runs with the real one: events a millisecond apart are possible, so
    # the window starts after the newest of them.
    newest = max(e["capturedAt"] for e in events)
    assert get(f, "/rest/memberChangeLogs", token, q="memberAndApplication",
               startTime=str(newest + 1)).json()["elements"] == []
    assert [e["resourceName"] for e in get(f, "/rest/memberChangeLogs", token, q="memberAndApplication",
                                           startTime=str(events[0]["capturedAt"] + 1)).json()["elements"]
            ] == [e["resourceName"] for e in events if e["capturedAt"] > events[0]["capturedAt"]]
    # the post is in the snapshot too, as a row of the export's columns
    shares = snapshot(f, token, domain="MEMBER_SHARE_INFO").json()["elements"][0]["snapshotData"]
    assert any(row["ShareCommentary"] == "first after consent" and "urn%3Ali%3Ashare" in row["ShareLink"]
               for row in shares)
    f.advance(29 * DAY)
    f.issue_token()                                  # still consented; the old token lives 60 days
    assert get(f, "/rest/memberChangeLogs", token, q="memberAndApplication").json()["elements"] == []


def test_the_changelog_pages_and_names_the_next_page():
    f = fake(changelog_page_size=2)
    token = f.issue_token()["access_token"]
    for n in range(5):
        f.add_reaction(f"urn:li:activity:{n}")
    body = get(f, "/rest/memberChangeLogs", token, q="memberAndApplication").json()
    assert len(body["elements"]) == 2
    href = next(link["href"] for link in body["paging"]["links"] if link["rel"] == "next")
    assert parse_qs(urlsplit(href).query)["start"] == ["2"]


@pytest.mark.parametrize("change, status, error", [
    ({"client_secret": "wrong"}, 401, "invalid_client"),
    ({"redirect_uri": "http://127.0.0.1:1/elsewhere/"}, 400, "invalid_redirect_uri"),
    ({"code": "made-up"}, 400, "invalid_request"),
])
def test_the_token_endpoint_checks_secret_code_and_redirect(change, status, error):
    f = fake()
    redirect = "http://127.0.0.1:4567/callback/"
    consent = f.handle(httpx.Request("GET", f"{BASE}/oauth/v2/authorization?" + urlencode({
        "response_type": "code", "client_id": f.config.client_id, "state": "s",
        "redirect_uri": redirect, "scope": "r_dma_portability_member"})))
    code = parse_qs(urlsplit(consent.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "client_id": f.config.client_id,
            "client_secret": f.config.client_secret, "redirect_uri": redirect, **change}
    answer = f.handle(httpx.Request("POST", f"{BASE}/oauth/v2/accessToken", data=form))
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    form.update({"client_secret": f.config.client_secret, "redirect_uri": redirect, "code": code})
    good = f.handle(httpx.Request("POST", f"{BASE}/oauth/v2/accessToken", data=form))
    assert good.status_code == 200 and good.json()["expires_in"] == 60 * DAY
    assert "refresh_token" not in good.json()
    again = f.handle(httpx.Request("POST", f"{BASE}/oauth/v2/accessToken", data=form))
    assert again.status_code == 400                                   # a code is used once


def test_the_consent_page_refuses_a_scope_the_app_does_not_have():
    f = fake()
    consent = f.handle(httpx.Request("GET", f"{BASE}/oauth/v2/authorization?" + urlencode({
        "response_type": "code", "client_id": f.config.client_id, "state": "s",
        "redirect_uri": "http://127.0.0.1:4567/callback/", "scope": "r_dma_portability_self_serve"})))
    assert parse_qs(urlsplit(consent.headers["location"]).query)["error"] == ["unauthorized_scope_error"]
    bad_client = f.handle(httpx.Request("GET", f"{BASE}/oauth/v2/authorization?client_id=nobody"))
    assert bad_client.status_code == 400
