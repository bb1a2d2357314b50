"""The Instagram fake behaves as shared/platforms/instagram.md says Instagram does:
OAuth steps and their refusals, Graph error codes, paging with the token inside
paging.next, usage headers, expiring CDN links, and the [U] knobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from archiver_connectors.instagram.sim.fake import FakeInstagram, FakeInstagramConfig, parse_fields, serve

BASE = "http://127.0.0.1:0"
REDIRECT = "http://127.0.0.1:8765/callback/"


def make(**config) -> tuple[FakeInstagram, httpx.Client]:
    fake = FakeInstagram(FakeInstagramConfig(**config), base_url=BASE)
    return fake, httpx.Client(transport=httpx.MockTransport(fake.handle), base_url=BASE)


def error_of(response: httpx.Response) -> tuple[int, int | None]:
    error = response.json()["error"]
    return error["code"], error.get("error_subcode")


def code_for(fake, client, **overrides) -> str:
    params = {"client_id": fake.config.client_id, "redirect_uri": REDIRECT, "response_type": "code",
              "scope": "instagram_business_basic,instagram_business_manage_comments", "state": "s1", **overrides}
    answer = client.get("/oauth/authorize", params=params)
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.endswith("#_")
    return parse_qs(urlsplit(location).query)["code"][0]


def exchange(client, fake, the_code, **overrides) -> httpx.Response:
    form = {"client_id": fake.config.client_id, "client_secret": fake.config.client_secret,
            "grant_type": "authorization_code", "redirect_uri": REDIRECT, "code": the_code, **overrides}
    return client.post("/oauth/access_token", data=form)


# --------------------------------------------------------------------------- OAuth


def test_code_to_short_to_long_lived_and_code_is_single_use():
    fake, client = make()
    code = code_for(fake, client)
    answer = exchange(client, fake, code)
    assert answer.status_code == 200
    entry = answer.json()["data"][0]
    assert entry["user_id"] == fake.user["user_id"] and "instagram_business_basic" in entry["permissions"]
    assert fake.token_info(entry["access_token"])["kind"] == "short"
    assert exchange(client, fake, code).status_code == 400          # single use
    long = client.get("/access_token", params={"grant_type": "ig_exchange_token",
                                               "client_secret": fake.config.client_secret,
                                               "access_token": entry["access_token"]})
    assert long.status_code == 200 and long.json()["token_type"] == "bearer"
    assert 59 * 86400 < long.json()["expires_in"] <= 60 * 86400
    fake.advance(3601)                                              # the short token lives 1 h
    again = client.get("/access_token", params={"grant_type": "ig_exchange_token",
                                                "client_secret": fake.config.client_secret,
                                                "access_token": entry["access_token"]})
    assert error_of(again) == (190, 463)


def test_flat_code_response_has_a_numeric_user_id():
    fake, client = make(code_response="flat")
    body = exchange(client, fake, code_for(fake, client)).json()
    assert isinstance(body["user_id"], int) and str(body["user_id"]) == fake.user["user_id"]


@pytest.mark.parametrize("overrides", [{"client_secret": "wrong"}, {"redirect_uri": "http://127.0.0.1:1/x/"},
                                       {"grant_type": "refresh_token"}, {"code": "AQBnope"}])
def test_code_exchange_rejections(overrides):
    fake, client = make()
    answer = exchange(client, fake, code_for(fake, client), **overrides)
    assert answer.status_code == 400 and answer.json()["error_type"] == "OAuthException"


@pytest.mark.parametrize("overrides", [{"client_id": "1"}, {"response_type": "token"}, {"scope": "user_profile"}])
def test_authorize_rejections(overrides):
    fake, client = make()
    params = {"client_id": fake.config.client_id, "redirect_uri": REDIRECT, "response_type": "code",
              "scope": "instagram_business_basic", **overrides}
    assert client.get("/oauth/authorize", params=params).status_code == 400


def test_refresh_rules_24_hours_and_expiry():
    fake, client = make(young_refresh_code=190)
    young = fake.issue_tokens()["access_token"]
    refresh = lambda token: client.get("/refresh_access_token",  # noqa: E731
                                       params={"grant_type": "ig_refresh_token", "access_token": token})
    assert error_of(refresh(young))[0] == 190
    old = fake.issue_tokens(age=2 * 86400)["access_token"]
    fresh = refresh(old)
    assert fresh.status_code == 200 and fresh.json()["expires_in"] > 59 * 86400
    fake.advance(61 * 86400)
    assert error_of(refresh(fresh.json()["access_token"])) == (190, 463)


def test_expired_revoked_and_unknown_tokens_get_the_documented_subcodes():
    fake, client = make()
    token = fake.issue_tokens()["access_token"]
    assert error_of(client.get("/me", params={"access_token": "IGAAnope"})) == (190, 467)
    fake.revoke_all()
    assert error_of(client.get("/me", params={"access_token": token})) == (190, 460)
    token = fake.issue_tokens()["access_token"]
    fake.expire_tokens()
    answer = client.get("/v23.0/me", params={"access_token": token})
    assert answer.status_code == 400 and error_of(answer) == (190, 463)


# --------------------------------------------------------------------------- data


def test_media_paging_carries_the_token_in_next_and_ends_without_next():
    fake, client = make(media=7)
    token = fake.issue_tokens()["access_token"]
    seen, after, pages = [], None, []
    while True:
        answer = client.get("/v23.0/me/media", params={"access_token": token, "fields": "id,timestamp", "limit": 3,
                                                       **({"after": after} if after else {})})
        body = answer.json()
        pages.append(body)
        seen += [m["id"] for m in body["data"]]
        if "next" not in body.get("paging", {}):
            break
        assert f"access_token={token}" in body["paging"]["next"]
        after = body["paging"]["cursors"]["after"]
    assert seen == [m["id"] for m in fake.newest_first()] and len(pages) == 3
    assert "previous" in pages[1]["paging"]


@pytest.mark.parametrize("params,code", [({"fields": "id,bogus"}, 100), ({"after": "zzz"}, 100),
                                         ({"limit": "0"}, 100), ({"limit": "101"}, 100), ({"fields": "id,children{x"}, 100)])
def test_bad_parameters_are_code_100(params, code):
    fake, client = make()
    token = fake.issue_tokens()["access_token"]
    answer = client.get("/me/media", params={"access_token": token, **params})
    assert answer.status_code == 400 and error_of(answer)[0] == code


def test_reel_without_media_url_and_carousel_children():
    fake, client = make(media=40, copyrighted_reels=1.0)
    token = fake.issue_tokens()["access_token"]
    body = client.get("/me/media", params={"access_token": token, "limit": 100, "fields":
                                           "id,media_type,media_product_type,media_url,thumbnail_url,permalink,"
                                           "children{id,media_type,media_url,permalink}"}).json()
    reels = [m for m in body["data"] if m["media_product_type"] == "REELS"]
    assert reels and all("media_url" not in r and "oe=" in r["thumbnail_url"] for r in reels)
    carousels = [m for m in body["data"] if m["media_type"] == "CAROUSEL_ALBUM"]
    assert carousels and all(len(c["children"]["data"]) >= 2 for c in carousels)
    assert all("permalink" not in child for c in carousels for child in c["children"]["data"])
    edge = client.get(f"/{carousels[0]['id']}/children", params={"access_token": token, "fields": "id,media_url"}).json()
    assert [c["id"] for c in edge["data"]] == [c["id"] for c in carousels[0]["children"]["data"]]


def test_comments_replies_paging_and_permission():
    fake, client = make(media=5, replies_expansion_limit=1)
    media = fake.find_media(fake.newest_first()[0]["id"])
    top = fake.add_comment(media["id"], "first!")
    for n in range(3):
        fake.add_reply(top["id"], f"reply {n}")
    token = fake.issue_tokens()["access_token"]
    body = client.get(f"/{media['id']}/comments", params={
        "access_token": token, "fields": "id,text,from,replies{id,text,parent_id}"}).json()
    mine = next(c for c in body["data"] if c["id"] == top["id"])
    assert mine["from"]["username"] and len(mine["replies"]["data"]) == 1
    assert token in mine["replies"]["paging"]["next"]
    rest = client.get(f"/{top['id']}/replies", params={"access_token": token, "fields": "id,parent_id",
                                                       "after": mine["replies"]["paging"]["cursors"]["after"]}).json()
    assert [r["parent_id"] for r in rest["data"]] == [top["id"]] * 2
    basic = fake.issue_tokens("instagram_business_basic")["access_token"]
    assert error_of(client.get(f"/{media['id']}/comments", params={"access_token": basic}))[0] == 10


def test_usage_headers_and_throttle_code_status_and_regain_time():
    fake, client = make(rate_limit=4, throttle_code=613, throttle_status=403)
    token = fake.issue_tokens()["access_token"]
    answers = [client.get("/me", params={"access_token": token}) for _ in range(5)]
    usage = [json.loads(a.headers["x-app-usage"])["call_count"] for a in answers]
    assert usage[:4] == [25, 50, 75, 100]
    assert answers[4].status_code == 403 and error_of(answers[4])[0] == 613
    business = json.loads(answers[4].headers["x-business-use-case-usage"])[fake.user["user_id"]][0]
    assert business["type"] == "instagram" and business["estimated_time_to_regain_access"] == 60
    fake.advance(3601)
    assert client.get("/me", params={"access_token": token}).status_code == 200


def test_fail_rate_gives_transient_500s():
    fake, client = make(fail_rate=1.0)
    answer = client.get("/me", params={"access_token": fake.issue_tokens()["access_token"]})
    assert answer.status_code == 500 and error_of(answer)[0] == 2 and answer.json()["error"]["is_transient"]


def test_bearer_header_is_a_knob():
    for supported, status in ((True, 200), (False, 400)):
        fake, client = make(bearer_supported=supported)
        token = fake.issue_tokens()["access_token"]
        assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == status


def test_personal_account_knobs():
    fake, client = make(account_type="PERSONAL", personal_refusal="authorize")
    answer = client.get("/oauth/authorize", params={"client_id": fake.config.client_id, "redirect_uri": REDIRECT,
                                                    "response_type": "code", "scope": "instagram_business_basic"})
    assert "error=access_denied" in answer.headers["location"]
    fake, client = make(account_type="PERSONAL", personal_refusal="api")
    token = fake.issue_tokens()["access_token"]
    assert client.get("/me", params={"access_token": token, "fields": "account_type"}).json()["account_type"] == "PERSONAL"
    assert error_of(client.get("/me/media", params={"access_token": token}))[0] == 10


def test_cdn_links_are_signed_and_expire():
    fake, client = make(media=10, copyrighted_reels=0.0, media_url_ttl=3600)
    token = fake.issue_tokens()["access_token"]
    item = client.get("/me/media", params={"access_token": token, "fields": "media_url"}).json()["data"][0]
    url = item["media_url"]
    assert int(parse_qs(urlsplit(url).query)["oe"][0], 16) > fake.now()
    assert client.get(url).status_code == 200
    assert client.get(url.replace("oh=00_", "oh=00_0")).status_code == 403
    ranged = client.get(url, headers={"Range": "bytes=10-"})
    assert ranged.status_code == 206
    fake.advance(3601)
    assert client.get(url).status_code == 403


def test_world_changes():
    fake, client = make(media=5)
    token = fake.issue_tokens()["access_token"]
    new = fake.add_media(caption="hello")
    fake.edit_caption(new["id"], "edited")
    first = client.get("/me/media", params={"access_token": token, "fields": "id,caption"}).json()["data"][0]
    assert first == {"id": new["id"], "caption": "edited"}
    fake.delete_media(new["id"])
    assert error_of(client.get(f"/{new['id']}", params={"access_token": token}))[0] == 100


def test_parse_fields():
    assert parse_fields("id,children{id,media_url},caption") == {
        "id": None, "children": {"id": None, "media_url": None}, "caption": None}
    for bad in ("id,{", "id}", "children{id"):
        with pytest.raises(ValueError):
            parse_fields(bad)


def test_serve_and_main_over_loopback():
    fake = FakeInstagram(FakeInstagramConfig(media=3))
    server, _ = serve(fake)
    try:
        token = fake.issue_tokens()["access_token"]
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{fake.base_url}/me", params={"access_token": token}).status_code == 200
    finally:
        server.shutdown()
        server.server_close()
    process = subprocess.Popen([sys.executable, "-m", "archiver_connectors.instagram.sim.fake", "--port", "0",
                                "--videos", "4", "--followers", "9", "--latency-ms", "0", "--fail-rate", "0",
                                "--seed", "2"], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
