"""FakePinterest refuses what Pinterest refuses (shared/platforms/pinterest.md §7): client
auth and codes at the token endpoint, rotated refresh tokens, expired tokens, scopes,
page sizes and bookmarks, the Trial day's limit; and serves what it serves: media variants,
the CDN's sizes, usernames-only lists, no comments. In-process, on the fake's own clock."""

from __future__ import annotations

import base64
import subprocess
import sys
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from archiver_connectors.pinterest.sim.fake import (
    ALL_SCOPES,
    CODE_TTL,
    FakePinterest,
    FakePinterestConfig,
    pinimg_path,
)

BASE = "http://127.0.0.1:8799"
REDIRECT = "http://127.0.0.1:5555/"


def make(**config) -> FakePinterest:
    return FakePinterest(FakePinterestConfig(**{"posts": 8, "followers": 4, "following": 2, **config}), base_url=BASE)


def basic(fake: FakePinterest, secret: str | None = None) -> dict:
    pair = f"{fake.config.client_id}:{secret or fake.config.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def token(fake: FakePinterest, form: dict, headers: dict | None = None, *, as_json: bool = False) -> httpx.Response:
    if as_json:
        return fake.handle(httpx.Request("POST", BASE + "/v5/oauth/token", json=form,
                                         headers=headers if headers is not None else basic(fake)))
    return fake.handle(httpx.Request("POST", BASE + "/v5/oauth/token", data=form,
                                     headers=headers if headers is not None else basic(fake)))


def consent(fake: FakePinterest, scope: str = ALL_SCOPES, redirect_uri: str = REDIRECT) -> str:
    answer = fake.handle(httpx.Request("GET", BASE + "/oauth/?" + urlencode({
        "client_id": fake.config.client_id, "redirect_uri": redirect_uri, "response_type": "code",
        "scope": scope, "state": "s1"})))
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def get(fake: FakePinterest, path: str, access: str, **params) -> httpx.Response:
    return fake.handle(httpx.Request("GET", BASE + path, params=params, headers={"Authorization": f"Bearer {access}"}))


# --------------------------------------------------------------------------- OAuth


def test_the_code_exchange_needs_basic_auth_a_form_the_same_redirect_uri_and_a_fresh_code():
    fake = make()
    form = {"grant_type": "authorization_code", "code": consent(fake), "redirect_uri": REDIRECT}
    # The secret in the form instead of Basic auth: refused, as a wrong secret is.
    refused = token(fake, {**form, "client_id": fake.config.client_id, "client_secret": fake.config.client_secret},
                    headers={})
    assert refused.status_code == 401 and refused.json() == {"code": 2, "message": "Authentication failed."}
    assert token(fake, form, basic(fake, "wrong")).status_code == 401
    assert token(fake, form, as_json=True).status_code == 400
    answer = token(fake, form)
    assert answer.status_code == 200
    body = answer.json()
    assert body["access_token"].startswith("pina_") and body["refresh_token"].startswith("pinr_")
    assert body["scope"] == ALL_SCOPES and body["expires_in"] == 30 * 86400
    assert body["refresh_token_expires_at"] > fake.now()
    assert token(fake, form).status_code == 400                     # single use
    other = {**form, "code": consent(fake), "redirect_uri": "http://127.0.0.1:5556/"}
    assert token(fake, other).status_code == 400                    # another redirect_uri
    assert token(fake, {**other, "redirect_uri": REDIRECT}).status_code == 400   # and it was spent by that
    late = {**form, "code": consent(fake)}
    fake.advance(CODE_TTL + 1)
    assert token(fake, late).status_code == 400                     # ten minutes old


def test_the_consent_page_checks_the_app_the_redirect_and_the_scopes():
    fake = make(granted_scopes="user_accounts:read,boards:read,pins:read")
    ask = {"client_id": fake.config.client_id, "redirect_uri": REDIRECT, "response_type": "code",
           "scope": ALL_SCOPES, "state": "x"}
    for change in ({"client_id": "999"}, {"response_type": "token"}, {"redirect_uri": "https://evil.example/"},
                   {"scope": "boards:write"}):
        assert fake.handle(httpx.Request("GET", BASE + "/oauth/?" + urlencode({**ask, **change}))).status_code == 400
    code = consent(fake)
    body = token(fake, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}).json()
    assert body["scope"] == "user_accounts:read,boards:read,pins:read"   # what the person allowed


@pytest.mark.parametrize("old_refresh", ["rejected", "until_new_used"])
def test_a_refresh_rotates_the_refresh_token(old_refresh):
    fake = make(old_refresh_after_rotation=old_refresh)
    first = fake.issue_tokens()
    answer = token(fake, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                          "continuous_refresh": "true"}).json()
    assert answer["refresh_token"] != first["refresh_token"] and "refresh_token_expires_at" in answer
    assert fake.continuous_refresh_seen == 1
    assert fake.refresh_token_alive(first["refresh_token"]) == (old_refresh == "until_new_used")
    # Once the new pair is used, the old refresh token is dead either way.
    assert get(fake, "/v5/user_account", answer["access_token"]).status_code == 200
    assert not fake.refresh_token_alive(first["refresh_token"])
    again = token(fake, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert again.status_code == 400 and again.json()["code"] == 2


def test_an_older_app_must_ask_for_continuous_refresh():
    fake = make(require_continuous_refresh=True)
    tokens = fake.issue_tokens()
    assert token(fake, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).status_code == 400
    assert token(fake, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                        "continuous_refresh": "true"}).status_code == 200


def test_access_tokens_expire_by_the_fakes_clock_and_revocation_ends_everything():
    fake = make()
    tokens = fake.issue_tokens()
    assert get(fake, "/v5/user_account", tokens["access_token"]).status_code == 200
    fake.advance(30 * 86400 + 1)
    expired = get(fake, "/v5/user_account", tokens["access_token"])
    assert expired.status_code == 401 and expired.json() == {"code": 2, "message": "Authentication failed."}
    fresh = token(fake, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).json()
    assert get(fake, "/v5/user_account", fresh["access_token"]).status_code == 200
    fake.revoke_all()
    assert get(fake, "/v5/user_account", fresh["access_token"]).status_code == 401
    assert token(fake, {"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"]}).status_code == 400


# --------------------------------------------------------------------------- the API


def test_scopes_are_checked_per_endpoint_and_secret_boards_need_their_scope():
    fake = make(boards=3)
    narrow = fake.issue_tokens("user_accounts:read,boards:read")["access_token"]
    denied = get(fake, "/v5/pins", narrow)
    assert denied.status_code == 403 and set(denied.json()) == {"code", "message"}
    boards = get(fake, "/v5/boards", narrow).json()["items"]
    secret = [b for b in fake.boards.values() if b["privacy"] == "SECRET"]
    assert secret and {b["privacy"] for b in boards} == {"PUBLIC", "PROTECTED"}
    assert get(fake, f"/v5/boards/{secret[0]['id']}", narrow).status_code == 404
    wide = fake.issue_tokens()["access_token"]
    assert {b["privacy"] for b in get(fake, "/v5/boards", wide).json()["items"]} == {"PUBLIC", "PROTECTED", "SECRET"}
    only_profile = fake.issue_tokens("boards:read")["access_token"]
    assert get(fake, "/v5/user_account", only_profile).json() == {
        "code": 3, "message": "Not authorized to access the user account."}


def test_pins_need_the_secret_scope_and_protected_ones_the_parameter():
    fake = make(boards=3, posts=9)
    privacy = {p.id: fake.boards[p.board_id]["privacy"] for p in fake.pins.values()}
    wide = fake.issue_tokens()["access_token"]
    everything = {p["id"] for p in get(fake, "/v5/pins", wide, page_size=250, include_protected_pins="true")
                  .json()["items"]}
    assert everything == set(fake.pins)
    default = {p["id"] for p in get(fake, "/v5/pins", wide, page_size=250).json()["items"]}
    assert default == {i for i, word in privacy.items() if word != "PROTECTED"}
    no_secret = fake.issue_tokens("user_accounts:read,boards:read,pins:read")["access_token"]
    shown = {p["id"] for p in get(fake, "/v5/pins", no_secret, page_size=250, include_protected_pins="true")
             .json()["items"]}
    assert shown == {i for i, word in privacy.items() if word != "SECRET"}


@pytest.mark.parametrize("size", ["0", "251", "-1", "ten"])
def test_page_size_outside_1_to_250_is_refused(size):
    fake = make()
    answer = get(fake, "/v5/pins", fake.issue_tokens()["access_token"], page_size=size)
    assert answer.status_code == 400 and set(answer.json()) == {"code", "message"}


def test_bookmarks_are_opaque_page_on_and_end_with_null():
    fake = make(posts=5, pins_order="newest")
    access = fake.issue_tokens()["access_token"]
    seen, bookmark, pages = [], None, 0
    while True:
        body = get(fake, "/v5/pins", access, page_size=2, include_protected_pins="true",
                   **({"bookmark": bookmark} if bookmark else {})).json()
        seen += [p["created_at"] for p in body["items"]]
        pages += 1
        bookmark = body["bookmark"]
        if bookmark is None:
            break
        assert not bookmark.isdigit()
    assert pages == 3 and len(seen) == 5 and seen == sorted(seen, reverse=True)    # newest first
    tampered = get(fake, "/v5/pins", access, page_size=2, bookmark="MTIz")
    assert tampered.status_code == 400
    other = get(fake, "/v5/user_account/followers", access, page_size=2).json()["bookmark"]
    assert get(fake, "/v5/pins", access, page_size=2, bookmark=other).status_code == 400   # another list's
    assert make(posts=5, max_page_size=1).handle(httpx.Request("GET", BASE + "/v5/pins")).status_code == 401


def test_trial_access_allows_so_many_calls_a_utc_day_then_429():
    fake = make(daily_limit=3, ratelimit_headers=True)
    access = fake.issue_tokens()["access_token"]
    answers = [get(fake, "/v5/user_account", access) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json()["code"] == 8 and answers[2].headers["x-ratelimit-remaining"] == "0"
    assert get(fake, "/v5/user_account", "pina_unknown").status_code == 401     # not counted
    assert fake.calls_today() == 3
    fake.advance(86400)
    assert get(fake, "/v5/user_account", access).status_code == 200


def test_standard_access_throttles_a_minute_with_retry_after():
    fake = make(access="standard", rate_limit=2)
    access = fake.issue_tokens()["access_token"]
    answers = [get(fake, "/v5/boards", access) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 61
    assert get(fake, "/v5/user_account/followers", access).status_code == 200   # another category (ads_read)
    fake.advance(61)
    assert get(fake, "/v5/boards", access).status_code == 200


def test_media_variants_and_the_cdn():
    fake = make(posts=10)
    access = fake.issue_tokens()["access_token"]
    pins = get(fake, "/v5/pins", access, page_size=250, pin_metrics="true", include_protected_pins="true")
    kinds = {p["media"]["media_type"] for p in pins.json()["items"]}
    assert kinds == {"image", "video", "multiple_images"}
    videos = [p["media"] for p in pins.json()["items"] if p["media"]["media_type"] == "video"]
    assert {v["video_url"] is None for v in videos} == {True, False}          # nullable video_url
    carousel = next(p for p in pins.json()["items"] if p["media"]["media_type"] == "multiple_images")
    assert len(carousel["media"]["items"]) == 3
    image = next(p for p in pins.json()["items"] if p["media"]["media_type"] == "image")
    url = image["media"]["images"]["1200x"]["url"]
    assert image["pin_metrics"]["lifetime_metrics"]["reaction"] >= 0
    path = urlsplit(url).path
    assert fake.handle(httpx.Request("GET", url)).content == fake.file_bytes(path)
    original = url.replace("/1200x/", "/originals/")
    assert fake.handle(httpx.Request("GET", original)).status_code == 200
    assert make(originals=False).handle(httpx.Request("GET", original)).status_code == 403
    # A path whose folders do not match its signature is no pinimg file.
    wrong = BASE + pinimg_path("1200x", "ff" + urlsplit(url).path.rsplit("/", 1)[1][2:34])
    assert fake.handle(httpx.Request("GET", wrong)).status_code == 404


def test_lists_give_usernames_only_and_there_is_no_comments_endpoint():
    fake = make()
    access = fake.issue_tokens()["access_token"]
    followers = get(fake, "/v5/user_account/followers", access, page_size=250).json()
    assert followers == {"items": [{"type": "user", "username": u} for u in fake.followers], "bookmark": None}
    assert get(fake, "/v5/user_account/following", access).json()["items"][0]["username"] == fake.following[0]
    pin = next(iter(fake.pins))
    assert get(fake, f"/v5/pins/{pin}/comments", access).status_code == 404
    assert get(fake, f"/v5/pins/{pin}", access).json()["id"] == pin


def test_the_simulator_serves_and_writes_the_matching_export(tmp_path):
    """`archiver simulate pinterest --write-export`: the same Pin ids in the HTML export."""
    export = tmp_path / "pinterest.html"
    process = subprocess.Popen([sys.executable, "-m", "archiver_connectors.pinterest.sim.fake", "--port", "0",
                                "--posts", "3", "--followers", "2", "--write-export", str(export)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [process.stdout.readline(), process.stdout.readline()]
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert "wrote the account's export" in lines[0] and "listening on http://127.0.0.1:" in lines[1]
    html = export.read_text(encoding="utf-8")
    fake = FakePinterest(FakePinterestConfig(posts=3, followers=2))
    for pin_id in fake.pins:
        assert f"https://www.pinterest.com/pin/{pin_id}/" in html
    assert "Followers" in html and fake.followers[0] in html
