"""The fake Facebook Graph API rejects what Facebook rejects (facebook.md §7): a fake that
accepts anything proves nothing. In-process, through httpx.MockTransport."""

from __future__ import annotations

import json
import math
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tiktok_sync_harness import ticking_clock

from archiver_connectors.facebook.sim.fake import (
    LONG_TTL,
    SHORT_TTL,
    FakeFacebook,
    FakeFacebookConfig,
    parse_fields,
)

BASE = "http://127.0.0.1:8796"


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


def world(**knobs) -> tuple[FakeFacebook, httpx.Client]:
    fake = FakeFacebook(FakeFacebookConfig(**{"posts": 7, "comments_max": 3, "replies_max": 2, **knobs}), base_url=BASE)
    return fake, httpx.Client(transport=httpx.MockTransport(fake.handle), base_url=BASE)


def error_of(response: httpx.Response) -> tuple[int, int | None]:
    body = response.json()["error"]
    return body["code"], body.get("error_subcode")


def user_and_page(fake: FakeFacebook, scopes: str | None = None, kind: str = "long") -> tuple[str, str]:
    user = fake.issue_user_token(scopes, kind=kind)["access_token"]
    return user, fake.page_token_for(user)


# --------------------------------------------------------------------------- tokens


def test_page_tokens_come_only_from_me_accounts_and_user_tokens_cannot_read_page_edges():
    fake, http = world()
    user = fake.issue_user_token()["access_token"]
    page = fake.page()
    accounts = http.get("/v25.0/me/accounts", params={"access_token": user,
                                                      "fields": "id,name,access_token,tasks"}).json()
    entries = {e["id"]: e for e in accounts["data"]}
    assert set(entries) == {p["id"] for p in fake.pages} and "MODERATE" in entries[page["id"]]["tasks"]
    page_token = entries[page["id"]]["access_token"]
    assert page_token != user and fake.token_info(page_token)["kind"] == "page"
    # The user token on a Page's edge: 200 (or 190, a knob).
    refused = http.get(f"/v25.0/{page['id']}/published_posts", params={"access_token": user})
    assert refused.status_code == 400 and error_of(refused)[0] == 200
    fake190, http190 = world(user_token_on_page_code=190)
    user190 = fake190.issue_user_token()["access_token"]
    assert error_of(http190.get(f"/v25.0/{fake190.page()['id']}/published_posts",
                                params={"access_token": user190}))[0] == 190
    # The Page token reads them; it is not accepted for another Page.
    assert http.get(f"/v25.0/{page['id']}/published_posts", params={"access_token": page_token}).status_code == 200
    other = fake.pages[1]["id"]
    assert error_of(http.get(f"/v25.0/{other}/published_posts", params={"access_token": page_token})) == (100, 33)
    # /me with a Page token is the Page itself.
    assert http.get("/v25.0/me", params={"access_token": page_token, "fields": "id,name"}).json() == {
        "id": page["id"], "name": page["name"]}


def test_short_and_long_lived_tokens_expire_with_190_463_and_page_tokens_of_long_ones_never():
    fake, http = world()
    short, short_page = user_and_page(fake, kind="short")
    long, long_page = user_and_page(fake)
    assert fake.token_info(long_page)["expires_at"] == math.inf
    assert fake.token_info(short_page)["expires_at"] == fake.token_info(short)["expires_at"]   # 1 hour
    fake.advance(SHORT_TTL + 1)
    for token in (short, short_page):
        answer = http.get("/v25.0/me", params={"access_token": token})
        assert answer.status_code == 400 and error_of(answer) == (190, 463)
    assert http.get("/v25.0/me", params={"access_token": long}).status_code == 200
    fake.advance(LONG_TTL)
    assert error_of(http.get("/v25.0/me", params={"access_token": long})) == (190, 463)
    assert http.get("/v25.0/me", params={"access_token": long_page}).status_code == 200


def test_fb_exchange_token_gives_a_60_day_token_and_refuses_an_expired_one():
    fake, http = world()
    short = fake.issue_user_token(kind="short")["access_token"]
    params = {"grant_type": "fb_exchange_token", "client_id": fake.config.client_id,
              "client_secret": fake.config.client_secret, "fb_exchange_token": short}
    answer = http.get("/v25.0/oauth/access_token", params=params).json()
    assert fake.token_info(answer["access_token"])["kind"] == "long"
    assert LONG_TTL - 5 <= answer["expires_in"] <= LONG_TTL and answer["token_type"] == "bearer"
    assert error_of(http.get("/v25.0/oauth/access_token", params={**params, "client_secret": "wrong"}))[0] == 1
    fake.advance(SHORT_TTL + 1)
    assert error_of(http.get("/v25.0/oauth/access_token", params=params)) == (190, 463)


def test_login_redirect_appends_the_fragment_and_codes_are_single_use():
    fake, http = world()
    redirect = "http://127.0.0.1:9999/callback/"
    login = http.get("/v25.0/dialog/oauth", params={"client_id": fake.config.client_id, "redirect_uri": redirect,
                                                    "state": "s1", "scope": "pages_show_list,user_posts",
                                                    "response_type": "code"})
    assert login.status_code == 302 and login.headers["location"].endswith("#_=_")
    code = parse_qs(urlsplit(login.headers["location"]).query)["code"][0]
    params = {"client_id": fake.config.client_id, "client_secret": fake.config.client_secret,
              "redirect_uri": redirect, "code": code}
    first = http.get("/v25.0/oauth/access_token", params={**params, "redirect_uri": redirect + "x"})
    assert error_of(first)[0] == 100                                   # redirect_uri must match
    short = http.get("/v25.0/oauth/access_token", params=params).json()
    assert fake.token_info(short["access_token"])["kind"] == "short"
    assert error_of(http.get("/v25.0/oauth/access_token", params=params))[0] == 100   # used
    bad = http.get("/v25.0/dialog/oauth", params={"client_id": fake.config.client_id, "redirect_uri": redirect,
                                                  "scope": "publish_everything"})
    assert bad.status_code == 400


def test_password_change_kills_user_and_page_tokens_with_460_and_a_lost_role_the_page_only():
    fake, http = world()
    user, page = user_and_page(fake)
    fake.remove_page_role()
    assert error_of(http.get("/v25.0/me", params={"access_token": page}))[0] == 190
    assert http.get("/v25.0/me", params={"access_token": user}).status_code == 200
    listed = http.get("/v25.0/me/accounts", params={"access_token": user, "fields": "id"}).json()["data"]
    assert [e["id"] for e in listed] == [fake.pages[1]["id"]]
    other_page = fake.page_token_for(user, fake.pages[1]["id"])
    fake.change_password()
    for token in (user, other_page):
        assert error_of(http.get("/v25.0/me", params={"access_token": token})) == (190, 460)


# --------------------------------------------------------------------------- permissions


def test_missing_permissions_are_code_200_and_without_moderate_comments_lose_their_ids():
    fake, http = world(moderate=False)
    page_id = fake.page()["id"]
    _, weak = user_and_page(fake, "public_profile,pages_show_list")
    assert error_of(http.get(f"/v25.0/{page_id}/published_posts", params={"access_token": weak}))[0] == 200
    user, page = user_and_page(fake, "public_profile,pages_show_list,pages_read_engagement")
    post = next(p for p in fake.page()["posts"] if p["comments"])
    assert error_of(http.get(f"/v25.0/{post['id']}/comments", params={"access_token": page}))[0] == 200
    assert error_of(http.get("/v25.0/me/posts", params={"access_token": user}))[0] == 200
    _, full = user_and_page(fake)
    comments = http.get(f"/v25.0/{post['id']}/comments", params={
        "access_token": full, "fields": "id,message,from,parent", "filter": "stream"}).json()["data"]
    assert comments and all("id" not in c and "parent" not in c for c in comments)
    assert all(c["message"] for c in comments)


def test_a_profile_posts_comments_by_others_are_omitted():
    fake, http = world(profile_posts=6)
    user = fake.issue_user_token()["access_token"]
    post = next(p for p in fake.profile_posts if any(c["from"]["id"] != fake.person["id"] for c in p["comments"]))
    listed = http.get(f"/v25.0/{post['id']}/comments", params={"access_token": user, "fields": "id,from",
                                                                "filter": "stream"}).json()["data"]
    assert {c["from"]["id"] for c in listed} <= {fake.person["id"]}


# --------------------------------------------------------------------------- fields


def test_fields_projection_unknown_and_deprecated_fields_and_summaries_only_when_asked():
    fake, http = world(shares_when_zero="absent")
    _, page = user_and_page(fake)
    edge = f"/v25.0/{fake.page()['id']}/published_posts"
    body = http.get(edge, params={"access_token": page, "fields": "message,created_time"}).json()
    assert all(set(p) <= {"id", "message", "created_time"} for p in body["data"])
    assert all(p["created_time"].endswith("+0000") for p in body["data"])
    unknown = http.get(edge, params={"access_token": page, "fields": "id,colour"})
    assert error_of(unknown)[0] == 100 and "nonexisting field (colour)" in unknown.json()["error"]["message"]
    for deprecated in ("type", "link", "object_id"):
        assert error_of(http.get(edge, params={"access_token": page, "fields": f"id,{deprecated}"}))[0] == 100
    plain = http.get(edge, params={"access_token": page, "fields": "reactions,comments"}).json()["data"]
    assert all("summary" not in p["reactions"] and "summary" not in p["comments"] for p in plain)
    counted = http.get(edge, params={"access_token": page, "fields": "reactions.summary(total_count).limit(0),"
                                                                     "comments.summary(true).limit(0),shares"}).json()
    assert all(p["reactions"]["data"] == [] and "total_count" in p["reactions"]["summary"] for p in counted["data"])
    never_shared = [p for p in fake.newest_first()[:len(counted["data"])] if p["shares"] == 0]
    assert never_shared and all("shares" not in p for p in counted["data"] if p["id"] in {q["id"] for q in never_shared})
    fake0, http0 = world(shares_when_zero="zero")
    _, page0 = user_and_page(fake0)
    zero = http0.get(f"/v25.0/{fake0.page()['id']}/published_posts", params={"access_token": page0, "fields": "shares"})
    assert all("shares" in p for p in zero.json()["data"])
    with pytest.raises(ValueError):
        parse_fields("attachments{media")


def test_videos_carry_their_source_in_the_attachment_or_only_on_their_node():
    for knob in ("attachment", "node"):
        fake, http = world(video_source=knob)
        _, page = user_and_page(fake)
        post = next(p for p in fake.page()["posts"] if p["kind"] == "video")
        attachment = http.get(f"/v25.0/{post['id']}", params={"access_token": page, "fields": "attachments"}).json()[
            "attachments"]["data"][0]
        assert ("source" in attachment["media"]) == (knob == "attachment")
        node = http.get(f"/v25.0/{post['parts'][0]['id']}", params={"access_token": page, "fields": "source"}).json()
        assert "/cdn/o1/" in node["source"]


# --------------------------------------------------------------------------- paging


def test_paging_with_opaque_cursors_limit_and_no_next_on_the_last_page():
    fake, http = world(posts=7)
    _, page = user_and_page(fake)
    edge = f"/v25.0/{fake.page()['id']}/published_posts"
    seen, after, pages = [], None, 0
    while True:
        body = http.get(edge, params={"access_token": page, "limit": 3, **({"after": after} if after else {})}).json()
        seen += [p["id"] for p in body["data"]]
        pages += 1
        if "next" not in body.get("paging", {}):
            break
        assert page in body["paging"]["next"]                        # the token travels in paging.next
        after = body["paging"]["cursors"]["after"]
        assert fake.page()["id"] not in after and not after.isdigit()
    assert pages == 3 and seen == [p["id"] for p in fake.newest_first()]
    assert error_of(http.get(edge, params={"access_token": page, "limit": 101}))[0] == 100
    # An edge whose own maximum is lower clamps to it (the end-to-end tests page a small world so).
    fake, http = world(posts=7, max_limit=2)
    _, page = user_and_page(fake)
    body = http.get(f"/v25.0/{fake.page()['id']}/published_posts", params={"access_token": page, "limit": 50}).json()
    assert len(body["data"]) == 2 and page in body["paging"]["next"]
    assert error_of(http.get(edge, params={"access_token": page, "after": "garbage"}))[0] == 100


def test_comments_toplevel_by_default_stream_with_parent_and_order():
    fake, http = world(posts=5, comments_max=4, replies_max=2, seed=3)
    _, page = user_and_page(fake)
    post = next(p for p in fake.page()["posts"] if any(c["parent"] for c in p["comments"]))
    edge = f"/v25.0/{post['id']}/comments"
    fields = "id,message,created_time,parent"
    top = http.get(edge, params={"access_token": page, "fields": fields}).json()
    assert {c["id"] for c in top["data"]} == {c["id"] for c in post["comments"] if not c["parent"]}
    assert "summary" not in top
    stream = http.get(edge, params={"access_token": page, "fields": fields, "filter": "stream",
                                    "summary": "true", "limit": 100}).json()
    assert {c["id"] for c in stream["data"]} == {c["id"] for c in post["comments"]}
    assert {c["id"]: c.get("parent", {}).get("id") for c in stream["data"]} == {
        c["id"]: c["parent"] for c in post["comments"]}
    assert stream["summary"]["total_count"] == len(post["comments"])
    times = [c["created_time"] for c in stream["data"]]
    assert times == sorted(times)
    newest = http.get(edge, params={"access_token": page, "fields": fields, "filter": "stream",
                                    "order": "reverse_chronological", "limit": 100}).json()["data"]
    assert [c["created_time"] for c in newest] == sorted(times, reverse=True)
    assert error_of(http.get(edge, params={"access_token": page, "filter": "everything"}))[0] == 100
    replies = http.get(f"/v25.0/{next(c['parent'] for c in post['comments'] if c['parent'])}/comments",
                       params={"access_token": page, "fields": "id,parent"}).json()["data"]
    assert replies and all("parent" in r for r in replies)


# --------------------------------------------------------------------------- CDN and usage


def test_cdn_links_are_signed_and_refused_after_oe():
    fake, http = world(media_url_ttl=60)
    _, page = user_and_page(fake)
    post = next(p for p in fake.page()["posts"] if p["kind"] == "photo")
    url = http.get(f"/v25.0/{post['id']}", params={"access_token": page, "fields": "attachments"}).json()[
        "attachments"]["data"][0]["media"]["image"]["src"]
    assert "oe=" in url and http.get(url).status_code == 200
    assert http.get(url.replace("oh=00_", "oh=00_x")).status_code == 403
    fake.advance(120)
    assert http.get(url).status_code == 403


def test_usage_headers_by_token_kind_and_throttle_codes():
    fake, http = world(rate_limit=3, page_throttle_code=80001, throttle_status=403)
    user, page = user_and_page(fake)
    fake.reset_usage()
    answer = http.get("/v25.0/me", params={"access_token": user})
    assert "x-app-usage" in answer.headers and "x-page-usage" not in answer.headers
    answer = http.get("/v25.0/me", params={"access_token": page})
    business = json.loads(answer.headers["x-business-use-case-usage"])
    assert business[fake.page()["id"]][0]["type"] == "pages" and "call_count" in json.loads(
        answer.headers["x-page-usage"])
    http.get("/v25.0/me", params={"access_token": page})
    throttled = http.get("/v25.0/me", params={"access_token": page})
    assert throttled.status_code == 403 and error_of(throttled)[0] == 80001
    regain = json.loads(throttled.headers["x-business-use-case-usage"])[fake.page()["id"]][0]
    assert regain["estimated_time_to_regain_access"] >= 1
    assert error_of(http.get("/v25.0/me", params={"access_token": user}))[0] == 4
    fake.advance(3601)
    fake.block_next(1)
    assert error_of(http.get("/v25.0/me", params={"access_token": user}))[0] == 368
    assert http.get("/v25.0/me", params={"access_token": user}).status_code == 200


# --------------------------------------------------------------------------- simulate and export


def test_simulator_writes_the_matching_export_whose_posts_merge_with_the_api_rows(tmp_path):
    """`archiver simulate facebook --write-export`: the profile's export from the same world
    (facebook/sim/export.py's builder); imported after an API run, every post is one row."""
    from archiver.archive import Archive
    from archiver.config import AccountConfig, Config
    from archiver.secrets import open_secret_store
    from archiver.sync.jobs import Workspace, run_export, run_import
    from archiver_connectors.facebook.api import FacebookApi, FacebookTokens
    from archiver_connectors.facebook.sim.fake import write_matching_export

    fake, _ = world(posts=1, profile_posts=4, seed=5)
    transport = httpx.MockTransport(fake.handle)
    secrets = open_secret_store("memory")
    tokens = FacebookTokens(secrets, "me")
    tokens.save(FacebookApi(BASE, tokens, transport=transport).account_record(
        fake.issue_user_token(), kind="profile", page_wanted=None, account="me"))
    account = AccountConfig(name="me", platform="facebook", base_url=BASE)
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None, accounts=[account]), secrets)
    assert run_export(ws, account, transport=transport, sleep=lambda s: None)["status"] == "ok"
    export = write_matching_export(fake, str(tmp_path / "facebook-me-2026-12-07-AbCd.zip"))
    result = run_import(ws, export, platform="facebook", account_name="me")
    assert result["status"] == "ok", result
    rows = ws.archive.db.execute("SELECT post_id, sources FROM posts").fetchall()
    assert len(rows) == len(fake.profile_posts) and {r[0] for r in rows} == {p["id"] for p in fake.profile_posts}
    assert all(set(json.loads(r[1])) >= {"api"} and len(json.loads(r[1])) == 2 for r in rows)
    friends = ws.archive.db.execute("SELECT count(*) FROM people WHERE platform='facebook'").fetchone()[0]
    assert friends >= len(fake.people)


def test_simulate_main_parses_instagram_like_knobs(tmp_path, monkeypatch):
    from archiver_connectors.facebook.sim import fake as module

    served = {}
    monkeypatch.setattr(module, "serve", lambda fake, host, port: served.update(fake=fake, port=port) or (None, None))
    monkeypatch.setattr("archiver.sim.server.serve_until_signalled", lambda server, fake: None)
    module.main(["--port", "0", "--posts", "3", "--followers", "9", "--seed", "4", "--latency-ms", "0",
                 "--fail-rate", "0", "--rate-limit", "50", "--client-id", "1", "--client-secret", "s",
                 "--write-export", str(tmp_path / "out.zip")])
    fake = served["fake"]
    assert (fake.config.posts, fake.config.followers, fake.config.rate_limit, fake.config.client_id) == (3, 9, 50, "1")
    assert (tmp_path / "out.zip").is_file()
    assert time.time() > 0
