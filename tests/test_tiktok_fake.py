"""The TikTok fake behaves as shared/platforms/tiktok.md says TikTok does.

Most tests drive the fake in-process through httpx.MockTransport; one test goes over real
loopback HTTP via serve(), and one runs the module as a process (`python -m ...`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import zipfile
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from archiver_connectors.tiktok.sim.fake import (
    USER_FIELDS,
    VIDEO_FIELDS,
    FakeTikTok,
    FakeTikTokConfig,
    serve,
)

BASE = "http://127.0.0.1:0"
REDIRECT = "http://127.0.0.1:8765/callback/"
ALL_VIDEO_FIELDS = ",".join(VIDEO_FIELDS)


def client_for(fake: FakeTikTok) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(fake.handle), base_url=fake.base_url)


def make(**config) -> tuple[FakeTikTok, httpx.Client]:
    fake = FakeTikTok(FakeTikTokConfig(**config), base_url=BASE)
    return fake, client_for(fake)


def bearer(tokens: dict) -> dict:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def pkce_pair(encoding: str = "hex") -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    if encoding == "hex":
        return verifier, digest.hex()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(client: httpx.Client, challenge: str, **overrides) -> httpx.Response:
    params = {"client_key": "fake-client-key", "scope": "user.info.basic,video.list",
              "response_type": "code", "redirect_uri": REDIRECT, "state": "s-123",
              "code_challenge": challenge, "code_challenge_method": "S256"}
    params.update(overrides)
    params = {k: v for k, v in params.items() if v is not None}
    return client.get("/v2/auth/authorize/", params=params)


def code_from(response: httpx.Response) -> str:
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


def exchange(client: httpx.Client, code: str, verifier: str, **overrides) -> httpx.Response:
    form = {"client_key": "fake-client-key", "client_secret": "fake-client-secret", "code": code,
            "grant_type": "authorization_code", "redirect_uri": REDIRECT, "code_verifier": verifier}
    form.update(overrides)
    return client.post("/v2/oauth/token/", data=form)


def refresh(client: httpx.Client, refresh_token: str) -> httpx.Response:
    return client.post("/v2/oauth/token/", data={
        "client_key": "fake-client-key", "client_secret": "fake-client-secret",
        "grant_type": "refresh_token", "refresh_token": refresh_token})


def list_page(client, tokens, body=None, fields="id,create_time", **kwargs) -> httpx.Response:
    return client.post(f"/v2/video/list/?fields={fields}", json=body if body is not None else {},
                       headers=bearer(tokens), **kwargs)


def assert_api_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["log_id"]
    assert body["data"] == {}


# --------------------------------------------------------------------------- Login Kit


def test_authorize_redirects_with_a_code_that_needs_url_decoding():
    fake, client = make()
    verifier, challenge = pkce_pair()
    response = authorize(client, challenge)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    raw_code = re.search(r"code=([^&]+)", location).group(1)
    assert "%2A" in raw_code or "%21" in raw_code  # '*' / '!' arrive encoded
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["s-123"]
    assert query["scopes"] == ["user.info.basic,video.list"]
    # Sending the still-encoded code fails; the decoded one works.
    assert exchange(client, raw_code, verifier).json()["error"] == "invalid_grant"
    assert exchange(client, code_from(response), verifier).status_code == 200


@pytest.mark.parametrize("overrides", [
    {"redirect_uri": "https://127.0.0.1:8765/callback/"},
    {"redirect_uri": "http://example.com:8765/callback/"},
    {"redirect_uri": "http://127.0.0.1/callback/"},
    {"redirect_uri": "http://127.0.0.1:8765/callback/?x=1"},
    {"redirect_uri": "http://127.0.0.1:8765/callback/#frag"},
    {"client_key": "someone-else"},
    {"response_type": "token"},
    {"code_challenge_method": "plain"},
    {"code_challenge": None},
    {"scope": "user.info.basic video.list"},
    {"state": None},
])
def test_authorize_rejects_bad_params_with_a_400_page(overrides):
    _, client = make()
    _, challenge = pkce_pair()
    response = authorize(client, challenge, **overrides)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_authorize_accepts_localhost_with_any_port():
    _, client = make()
    _, challenge = pkce_pair()
    assert authorize(client, challenge, redirect_uri="http://localhost:51234/cb").status_code == 302


def test_user_grants_only_the_scopes_the_config_allows():
    fake, client = make(granted_scopes="user.info.basic")
    verifier, challenge = pkce_pair()
    response = authorize(client, challenge, scope="user.info.basic,video.list")
    tokens = exchange(client, code_from(response), verifier).json()
    assert tokens["scope"] == "user.info.basic"
    assert_api_error(list_page(client, tokens), 401, "scope_not_authorized")


def test_token_exchange_success_shape_and_code_is_single_use():
    fake, client = make()
    verifier, challenge = pkce_pair()
    code = code_from(authorize(client, challenge))
    response = exchange(client, code, verifier)
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access_token", "expires_in", "open_id", "refresh_expires_in",
                           "refresh_token", "scope", "token_type"}
    assert re.fullmatch(r"act\.[\w-]+![0-9]{4}\.va", tokens["access_token"])
    assert tokens["refresh_token"].startswith("rft.")
    assert (tokens["expires_in"], tokens["refresh_expires_in"]) == (7200, 180 * 86400)
    assert tokens["token_type"] == "Bearer" and tokens["open_id"] == fake.user["open_id"]
    again = exchange(client, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert set(again.json()) == {"error", "error_description", "log_id"}


def test_old_token_lifetimes_are_a_knob():
    _, client = make(access_ttl=86400, refresh_ttl=31536000)
    verifier, challenge = pkce_pair()
    tokens = exchange(client, code_from(authorize(client, challenge)), verifier).json()
    assert (tokens["expires_in"], tokens["refresh_expires_in"]) == (86400, 31536000)


@pytest.mark.parametrize("overrides, error", [
    ({"redirect_uri": "http://127.0.0.1:9999/callback/"}, "invalid_grant"),
    ({"code_verifier": "wrong" * 10}, "invalid_request"),
    ({"code_verifier": None}, "invalid_request"),
    ({"client_secret": "nope"}, "invalid_client"),
    ({"grant_type": "password"}, "unsupported_grant_type"),
])
def test_token_exchange_rejections(overrides, error):
    _, client = make()
    verifier, challenge = pkce_pair()
    code = code_from(authorize(client, challenge))
    form = {k: v for k, v in overrides.items() if v is not None}
    if overrides.get("code_verifier", "") is None:
        response = client.post("/v2/oauth/token/", data={
            "client_key": "fake-client-key", "client_secret": "fake-client-secret", "code": code,
            "grant_type": "authorization_code", "redirect_uri": REDIRECT})
    else:
        response = exchange(client, code, verifier, **form)
    assert response.status_code == 400
    assert response.json()["error"] == error
    # The failed attempt did not burn the code.
    assert exchange(client, code, verifier).status_code == 200


def test_token_endpoint_rejects_a_json_body():
    _, client = make()
    verifier, challenge = pkce_pair()
    code = code_from(authorize(client, challenge))
    response = client.post("/v2/oauth/token/", json={
        "client_key": "fake-client-key", "client_secret": "fake-client-secret", "code": code,
        "grant_type": "authorization_code", "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert response.json()["error"] == "invalid_request"
    assert exchange(client, code, verifier).status_code == 200


def test_oauth_error_status_is_a_knob():
    _, client = make(oauth_error_status=200)
    response = refresh(client, "rft.unknown")
    assert response.status_code == 200 and response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("mode, accepted", [
    ("hex", {"hex"}), ("base64url", {"base64url"}), ("either", {"hex", "base64url"}),
])
def test_pkce_encodings_follow_the_knob(mode, accepted):
    _, client = make(pkce=mode)
    for encoding in ("hex", "base64url"):
        verifier, challenge = pkce_pair(encoding)
        response = exchange(client, code_from(authorize(client, challenge)), verifier)
        if encoding in accepted:
            assert response.status_code == 200, (mode, encoding)
        else:
            assert response.json()["error_description"] == "Code verifier or code challenge is invalid."


def test_refresh_rotation_kills_the_old_refresh_token():
    fake, client = make()
    first = fake.issue_tokens()
    second = refresh(client, first["refresh_token"])
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert refresh(client, first["refresh_token"]).json()["error"] == "invalid_grant"
    third = refresh(client, second["refresh_token"])
    assert third.status_code == 200
    assert client.get("/v2/user/info/?fields=open_id", headers=bearer(third.json())).status_code == 200


def test_without_rotation_the_refresh_token_keeps_working():
    fake, client = make(rotate_refresh=False)
    first = fake.issue_tokens()
    for _ in range(2):
        response = refresh(client, first["refresh_token"])
        assert response.status_code == 200
        assert response.json()["refresh_token"] == first["refresh_token"]


def test_revoke_ends_the_grant():
    fake, client = make()
    tokens = fake.issue_tokens()
    response = client.post("/v2/oauth/revoke/", data={
        "client_key": "fake-client-key", "client_secret": "fake-client-secret",
        "token": tokens["access_token"]})
    assert response.status_code == 200 and response.json() == {}
    assert_api_error(client.get("/v2/user/info/?fields=open_id", headers=bearer(tokens)),
                     401, "access_token_invalid")
    assert refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_revoke_all_and_expire_access_tokens():
    fake, client = make()
    tokens = fake.issue_tokens()
    fake.expire_access_tokens()
    assert_api_error(client.get("/v2/user/info/?fields=open_id", headers=bearer(tokens)),
                     401, "access_token_invalid")
    fresh = refresh(client, tokens["refresh_token"]).json()
    assert client.get("/v2/user/info/?fields=open_id", headers=bearer(fresh)).status_code == 200
    fake.revoke_all()
    assert_api_error(client.get("/v2/user/info/?fields=open_id", headers=bearer(fresh)),
                     401, "access_token_invalid")
    assert refresh(client, fresh["refresh_token"]).json()["error"] == "invalid_grant"


def test_access_token_expires_with_the_clock():
    fake, client = make(access_ttl=100)
    tokens = fake.issue_tokens()
    assert client.get("/v2/user/info/?fields=open_id", headers=bearer(tokens)).status_code == 200
    fake.advance(101)
    assert client.get("/v2/user/info/?fields=open_id", headers=bearer(tokens)).status_code == 401


# --------------------------------------------------------------------------- Display API


def test_user_info_returns_the_requested_fields_only():
    fake, client = make(followers=7, following=3, videos=4)
    tokens = fake.issue_tokens()
    response = client.get(f"/v2/user/info/?fields={','.join(USER_FIELDS)}", headers=bearer(tokens))
    body = response.json()
    assert body["error"] == {"code": "ok", "message": "", "log_id": body["error"]["log_id"]}
    user = body["data"]["user"]
    assert set(user) == set(USER_FIELDS)
    assert (user["follower_count"], user["following_count"], user["video_count"]) == (7, 3, 4)
    fake.gain_followers(5)
    fake.lose_followers(2)
    user = client.get("/v2/user/info/?fields=open_id,follower_count",
                      headers=bearer(tokens)).json()["data"]["user"]
    assert user == {"open_id": fake.user["open_id"], "follower_count": 10}


@pytest.mark.parametrize("query, status, code", [
    ("", 400, "invalid_params"),
    ("?fields=", 400, "invalid_params"),
    ("?fields=open_id,shoe_size", 400, "invalid_params"),
])
def test_user_info_field_rejections(query, status, code):
    fake, client = make()
    assert_api_error(client.get(f"/v2/user/info/{query}", headers=bearer(fake.issue_tokens())),
                     status, code)


def test_field_needing_an_ungranted_scope_is_refused():
    fake, client = make()
    tokens = fake.issue_tokens("user.info.basic")
    assert client.get("/v2/user/info/?fields=open_id", headers=bearer(tokens)).status_code == 200
    assert_api_error(client.get("/v2/user/info/?fields=open_id,follower_count",
                                headers=bearer(tokens)), 401, "scope_permission_missed")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer act.nope!1234.va"},
                                     {"Authorization": "Basic abc"}])
def test_missing_or_bad_token_is_refused(headers):
    _, client = make()
    assert_api_error(client.get("/v2/user/info/?fields=open_id", headers=headers),
                     401, "access_token_invalid")


def test_wrong_method_is_a_405_invalid_params():
    fake, client = make()
    tokens = fake.issue_tokens()
    assert_api_error(client.post("/v2/user/info/?fields=open_id", json={}, headers=bearer(tokens)),
                     405, "invalid_params")
    assert_api_error(client.get("/v2/video/list/?fields=id", headers=bearer(tokens)),
                     405, "invalid_params")


def test_error_envelope_without_data_is_a_knob():
    fake, client = make(error_data="absent")
    response = client.get("/v2/user/info/?fields=open_id")
    assert response.status_code == 401 and "data" not in response.json()


def test_video_list_walks_every_video_once_newest_first_with_short_pages():
    for seed in (1, 2, 3):
        fake, client = make(videos=30, seed=seed)
        tokens = fake.issue_tokens()
        seen, short_pages_with_more, cursor = [], 0, None
        while True:
            body = {"max_count": 5} if cursor is None else {"max_count": 5, "cursor": cursor}
            data = list_page(client, tokens, body).json()["data"]
            seen += data["videos"]
            assert data["cursor"] == data["videos"][-1]["create_time"] * 1000
            if not data["has_more"]:
                break
            short_pages_with_more += len(data["videos"]) < 5
            cursor = data["cursor"]
        assert [v["id"] for v in seen] == [v["id"] for v in sorted(
            fake.videos, key=lambda v: v["create_time"], reverse=True)]
        assert len({v["id"] for v in seen}) == 30
        assert short_pages_with_more >= 1, f"seed {seed} produced no short page"


def test_short_pages_can_be_switched_off_and_cursor_means_before():
    fake, client = make(videos=12, short_pages=False)
    tokens = fake.issue_tokens()
    first = list_page(client, tokens).json()["data"]
    assert len(first["videos"]) == 10 and first["has_more"] is True  # default max_count
    newest = sorted(fake.videos, key=lambda v: v["create_time"], reverse=True)
    cursor = newest[3]["create_time"] * 1000
    page = list_page(client, tokens, {"cursor": cursor, "max_count": 20}).json()["data"]
    assert [v["id"] for v in page["videos"]] == [v["id"] for v in newest[4:]]
    assert page["has_more"] is False


def test_video_objects_carry_every_field_with_the_right_types():
    fake, client = make(videos=3)
    video = list_page(client, fake.issue_tokens(), fields=ALL_VIDEO_FIELDS).json()["data"]["videos"][0]
    assert set(video) == set(VIDEO_FIELDS)
    assert isinstance(video["id"], str) and re.fullmatch(r"[0-9]{19}", video["id"])
    assert isinstance(video["create_time"], int) and 10**9 < video["create_time"] < 10**10
    assert isinstance(video["is_aigc"], bool)
    cover = urlsplit(video["cover_image_url"])
    assert {"x-expires", "x-signature"} <= set(parse_qs(cover.query))
    assert video["id"] in video["share_url"] and video["id"] in video["embed_link"]


@pytest.mark.parametrize("body", [
    {"max_count": 21}, {"max_count": 0}, {"max_count": "5"},
    {"cursor": "abc"}, {"cursor": 1.5}, {"cursor": -1},
])
def test_video_list_body_rejections(body):
    fake, client = make()
    assert_api_error(list_page(client, fake.issue_tokens(), body), 400, "invalid_params")


def test_video_list_rejects_non_json_bodies_and_missing_or_unknown_fields():
    fake, client = make()
    tokens = fake.issue_tokens()
    assert_api_error(client.post("/v2/video/list/?fields=id", data={"max_count": "5"},
                                 headers=bearer(tokens)), 400, "invalid_params")
    assert_api_error(client.post("/v2/video/list/?fields=id", content=b"{nope",
                                 headers={**bearer(tokens), "Content-Type": "application/json"}),
                     400, "invalid_params")
    assert_api_error(client.post("/v2/video/list/", json={}, headers=bearer(tokens)),
                     400, "invalid_params")
    assert_api_error(list_page(client, tokens, fields="id,music"), 400, "invalid_params")


def test_video_query_reflects_world_changes():
    fake, client = make(videos=5)
    tokens = fake.issue_tokens()
    a, b, c = (v["id"] for v in fake.videos[:3])
    fake.edit_caption(a, "New title", "New description")
    fake.set_counts(b, like_count=12345, view_count=10**10)
    fake.delete_video(c)
    response = client.post("/v2/video/query/?fields=id,title,video_description,like_count,view_count",
                           json={"filters": {"video_ids": [a, b, c]}}, headers=bearer(tokens))
    videos = {v["id"]: v for v in response.json()["data"]["videos"]}
    assert set(videos) == {a, b}
    assert videos[a]["title"] == "New title" and videos[a]["video_description"] == "New description"
    assert (videos[b]["like_count"], videos[b]["view_count"]) == (12345, 10**10)
    new = fake.add_video(title="Fresh")
    first = list_page(client, tokens, fields="id,title").json()["data"]["videos"][0]
    assert first == {"id": new["id"], "title": "Fresh"}


def test_video_query_limits():
    fake, client = make(videos=25)
    tokens = fake.issue_tokens()
    ids = [v["id"] for v in fake.videos]
    for filters in ({"video_ids": ids[:21]}, {"video_ids": []}, {"video_ids": [int(ids[0])]}, {}):
        assert_api_error(client.post("/v2/video/query/?fields=id", json={"filters": filters},
                                     headers=bearer(tokens)), 400, "invalid_params")
    ok = client.post("/v2/video/query/?fields=id", json={"filters": {"video_ids": ids[:20]}},
                     headers=bearer(tokens))
    assert len(ok.json()["data"]["videos"]) == 20


@pytest.mark.parametrize("retry_after", [None, "0", "2"])
def test_rate_limit_is_per_endpoint_and_sliding(retry_after):
    fake, client = make(rate_limit_per_minute=3, retry_after=retry_after)
    tokens = fake.issue_tokens()
    for _ in range(3):
        assert list_page(client, tokens).status_code == 200
    limited = list_page(client, tokens)
    assert_api_error(limited, 429, "rate_limit_exceeded")
    assert limited.headers.get("retry-after") == retry_after
    # Another endpoint has its own window.
    assert client.get("/v2/user/info/?fields=open_id", headers=bearer(tokens)).status_code == 200
    fake.advance(61)
    assert list_page(client, tokens).status_code == 200


def test_fail_rate_gives_internal_errors():
    fake, client = make(fail_rate=1.0)
    assert_api_error(list_page(client, fake.issue_tokens()), 500, "internal_error")
    fake, client = make(fail_rate=0.5, seed=4)
    statuses = {list_page(client, fake.issue_tokens()).status_code for _ in range(40)}
    assert statuses == {200, 500}


def test_unknown_path_is_404():
    _, client = make()
    assert client.get("/v2/nothing/").status_code == 404


# --------------------------------------------------------------------------- Data Portability


def data_post(client, tokens, path, body, fields=None):
    query = f"?fields={fields}" if fields else ""
    return client.post(f"/v2/user/data/{path}/{query}", json=body, headers=bearer(tokens))


CHECK = "request_id,status,apply_time,collect_time,data_format,category_selection_list"


def test_portability_flow_add_check_download():
    fake, client = make(portability_statuses=["queued", "collecting", "done"])
    tokens = fake.issue_tokens("user.info.basic,portability.postsandprofile.ongoing")
    add = data_post(client, tokens, "add",
                    {"data_format": "json", "category_selection_list": ["video", "profile"]},
                    "request_id")
    assert add.status_code == 200
    raw_id = re.search(rb'"request_id":\s*([0-9]+)', add.content).group(1)
    request_id = int(raw_id)
    assert request_id > 2**53 and request_id < 2**63
    assert add.json()["data"]["request_id"] == request_id

    statuses = []
    for _ in range(4):
        data = data_post(client, tokens, "check", {"request_id": request_id}, CHECK).json()["data"]
        statuses.append(data["status"])
        if data["status"] != "done":
            early = data_post(client, tokens, "download", {"request_id": request_id})
            assert_api_error(early, 400, "invalid_params")
    assert statuses == ["queued", "collecting", "done", "done"]
    assert data["category_selection_list"] == ["video", "profile"] and data["collect_time"] > 0

    # A float request_id (what a JS-style client would send) is not the same request.
    assert_api_error(data_post(client, tokens, "download", {"request_id": float(request_id)}),
                     400, "invalid_params")
    download = data_post(client, tokens, "download", {"request_id": str(request_id)})
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    assert archive.namelist() == ["user_data_tiktok.json"]
    assert "Post" in json.loads(archive.read("user_data_tiktok.json"))


def test_portability_needs_a_portability_scope_and_single_allows_one_add():
    fake, client = make()
    body = {"data_format": "json", "category_selection_list": ["video"]}
    plain = fake.issue_tokens()
    assert_api_error(data_post(client, plain, "add", body, "request_id"), 401, "scope_not_authorized")
    single = fake.issue_tokens("portability.postsandprofile.single")
    assert_api_error(data_post(client, single, "add",
                               {"data_format": "json", "category_selection_list": ["direct_message"]},
                               "request_id"), 401, "scope_not_authorized")
    assert data_post(client, single, "add", body, "request_id").status_code == 200
    assert_api_error(data_post(client, single, "add", body, "request_id"), 400, "invalid_params")
    ongoing = fake.issue_tokens("portability.all.ongoing")
    for _ in range(2):
        assert data_post(client, ongoing, "add", body, "request_id").status_code == 200


def test_portability_cancel_and_expiry():
    fake, client = make()
    tokens = fake.issue_tokens("portability.all.ongoing")
    body = {"data_format": "json", "category_selection_list": ["all_data"]}
    first = data_post(client, tokens, "add", body, "request_id").json()["data"]["request_id"]
    second = data_post(client, tokens, "add", body, "request_id").json()["data"]["request_id"]
    cancel = data_post(client, tokens, "cancel", {"request_id": first})
    assert cancel.status_code == 200 and cancel.json()["error"]["code"] == "ok"
    check = data_post(client, tokens, "check", {"request_id": first}, "status").json()["data"]
    assert check == {"status": "cancelled"}
    fake.expire_data_requests()
    check = data_post(client, tokens, "check", {"request_id": second}, "status").json()["data"]
    assert check == {"status": "expired"}
    assert data_post(client, tokens, "download", {"request_id": second}).status_code == 400


# --------------------------------------------------------------------------- CDN


def cover_url(fake: FakeTikTok, client: httpx.Client, index: int = 0) -> str:
    tokens = fake.issue_tokens()
    videos = list_page(client, tokens, fields="id,cover_image_url").json()["data"]["videos"]
    return videos[index]["cover_image_url"]


def test_cdn_serves_distinct_png_covers_and_refuses_bad_signatures():
    fake, client = make()
    first, second = client.get(cover_url(fake, client, 0)), client.get(cover_url(fake, client, 1))
    assert first.status_code == 200 and first.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert first.headers["content-type"] == "image/png"
    assert first.content != second.content
    url = cover_url(fake, client, 0)
    tampered = re.sub(r"x-signature=[^&]+", "x-signature=AAAA", url)
    assert client.get(tampered).status_code == 403
    stretched = re.sub(r"x-expires=([0-9]+)", lambda m: f"x-expires={int(m[1]) + 9999}", url)
    assert client.get(stretched).status_code == 403
    assert client.get(url.split("?")[0]).status_code == 403


def test_cdn_links_expire_after_six_hours():
    fake, client = make()
    url = cover_url(fake, client)
    fake.advance(6 * 3600 - 60)
    assert client.get(url).status_code == 200
    fake.advance(120)
    assert client.get(url).status_code == 403
    assert client.get(cover_url(fake, client)).status_code == 200  # a fresh query fixes it


def test_cdn_range_requests_allow_resume():
    fake, client = make()
    post = next(p for p in fake.export_json("new")["Post"]["Posts"]["VideoList"]
                if "\n" not in p["Link"])
    whole = client.get(post["Link"])
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert whole.content[4:8] == b"ftyp" and len(whole.content) > 10_000
    size = len(whole.content)
    head = client.get(post["Link"], headers={"Range": "bytes=0-999"})
    tail = client.get(post["Link"], headers={"Range": "bytes=1000-", "If-Range": whole.headers["etag"]})
    assert (head.status_code, tail.status_code) == (206, 206)
    assert tail.headers["content-range"] == f"bytes 1000-{size - 1}/{size}"
    assert head.content + tail.content == whole.content
    suffix = client.get(post["Link"], headers={"Range": "bytes=-10"})
    assert suffix.status_code == 206 and suffix.content == whole.content[-10:]
    stale = client.get(post["Link"], headers={"Range": "bytes=1000-", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == whole.content
    beyond = client.get(post["Link"], headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"


# --------------------------------------------------------------------------- exports


def test_export_old_layout_key_paths():
    fake, _ = make(videos=6, followers=4, following=2)
    data = fake.export_json("old")
    posts = data["Video"]["Videos"]["VideoList"]
    assert len(posts) == 6
    for post in posts:
        assert set(post) == {"Date", "Link", "Likes"}
        assert re.fullmatch(r"https://www\.tiktokv\.com/share/video/[0-9]{19}/", post["Link"])
        assert isinstance(post["Likes"], str) and post["Likes"].isdigit()
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", post["Date"])
    by_id = {v["id"]: v for v in fake.videos}
    some = posts[0]
    video = by_id[some["Link"].rstrip("/").rsplit("/", 1)[1]]
    assert some["Likes"] == str(video["like_count"])
    fans = data["Activity"]["Follower List"]["FansList"]
    assert [f["UserName"] for f in fans] == [f["username"] for f in fake.followers]
    assert len(data["Activity"]["Following List"]["Following"]) == 2
    assert data["Activity"]["Like List"]["ItemFavoriteList"][0].keys() == {"Date", "Link"}
    assert data["Comment"]["Comments"]["CommentsList"][0].keys() == {"Date", "Comment"}
    assert data["Profile"]["Profile Information"]["ProfileMap"]["userName"] == fake.user["username"]
    assert data["Direct Messages"]["Chat History"]["ChatHistory"]


def test_export_new_layout_key_paths_and_quirks():
    fake, client = make(videos=30, followers=4)
    fake.delete_video(fake.videos[0]["id"])
    data = fake.export_json("new")
    posts = data["Post"]["Posts"]["VideoList"]
    assert len(posts) == 29
    text = json.dumps(posts)
    assert not any(v["id"] in text for v in fake.videos)  # no id anywhere in new posts
    photo_posts = [p for p in posts if "\n" in p["Link"]]
    assert photo_posts, "expected at least one photo-mode post"
    for link in photo_posts[0]["Link"].split("\n"):
        assert client.get(link).content.startswith(b"\x89PNG")
    for post in posts:
        assert {"Date", "Link", "Likes", "Title", "Sound", "Location", "CoverImage",
                "AlternateText", "AIGeneratedContent", "AddYoursText"} <= set(post)
        assert post["Location"] == "N/A" and isinstance(post["Likes"], str)
        assert "x-expires=" in post["CoverImage"] and "/cdn/" in post["Link"]
    assert any(p["Title"] == "N/A" for p in posts) or all(v["title"] for v in fake.videos)
    assert client.get(posts[0]["CoverImage"]).status_code == 200
    assert len(data["Post"]["Recently Deleted Posts"]["PostList"]) == 1
    activity = data["Your Activity"]
    assert [f["UserName"] for f in activity["Follower"]["FansList"]] == [
        f["username"] for f in fake.followers]
    assert activity["Following"]["Following"]
    assert activity["Watch History"]["VideoList"]
    assert activity["Searches"] is None and data["TikTok Shop"] is None
    comment = data["Comment"]["Comments"]["CommentsList"][0]
    assert set(comment) == {"date", "comment", "photo", "url"} and comment["photo"] == "N/A"
    assert data["Profile"]["Profile Info"]["ProfileMap"]["userName"] == fake.user["username"]
    assert data["Direct Message"]["Direct Messages"]["ChatHistory"]
    # Export links die too.
    fake.advance(fake.config.export_link_ttl + 1)
    assert client.get(posts[0]["CoverImage"]).status_code == 403


def test_export_zip_holds_the_json_under_the_given_name():
    fake, _ = make(videos=3)
    archive = zipfile.ZipFile(io.BytesIO(fake.export_zip("old", name="user_data.json")))
    assert archive.namelist() == ["user_data.json"]
    assert json.loads(archive.read("user_data.json"))["Video"]["Videos"]["VideoList"]


def test_world_is_deterministic_from_the_seed():
    one, two, other = (FakeTikTok(FakeTikTokConfig(seed=s)) for s in (5, 5, 6))
    assert one.videos == two.videos and one.followers == two.followers
    assert one.videos != other.videos


# --------------------------------------------------------------------------- real loopback


def test_full_flow_over_real_loopback_http():
    fake = FakeTikTok(FakeTikTokConfig(videos=8))
    server, thread = serve(fake)
    try:
        assert fake.base_url == f"http://127.0.0.1:{server.server_address[1]}"
        with httpx.Client(base_url=fake.base_url, timeout=10) as client:
            verifier, challenge = pkce_pair()
            code = code_from(authorize(client, challenge))
            tokens = exchange(client, code, verifier).json()
            page = list_page(client, tokens, {"max_count": 20}, fields="id,cover_image_url")
            videos = page.json()["data"]["videos"]
            assert len(videos) >= 1
            assert videos[0]["cover_image_url"].startswith(fake.base_url + "/cdn/")
            cover = client.get(videos[0]["cover_image_url"])
            assert cover.status_code == 200 and cover.content.startswith(b"\x89PNG")
            part = client.get(videos[0]["cover_image_url"], headers={"Range": "bytes=0-9"})
            assert part.status_code == 206 and part.content == cover.content[:10]
            assert_api_error(client.get("/v2/user/info/?fields=open_id"), 401, "access_token_invalid")
    finally:
        server.shutdown()
        server.server_close()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_module_runs_as_a_server_process_and_stops_on_sigterm():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "archiver_connectors.tiktok.sim.fake", "--port", "0", "--videos", "3"],
        stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:[0-9]+)\n", line)
        assert match, line
        response = httpx.get(match[1] + "/v2/user/info/?fields=open_id", timeout=10)
        assert response.status_code == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
