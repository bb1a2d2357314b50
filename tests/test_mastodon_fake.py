"""The fake Mastodon instance answers like the notes say Mastodon does, and refuses what
Mastodon refuses (shared/platforms/mastodon.md, fixture checklist §8)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import subprocess
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from archiver_connectors.mastodon.sim.fake import FakeMastodon, FakeMastodonConfig

BASE = "http://127.0.0.1:8797"
REDIRECT = "http://127.0.0.1:5555/callback/"
SCOPES = "read:accounts read:statuses read:follows"
INVALID = {"error": "The access token is invalid"}


def client(fake: FakeMastodon, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(transport=httpx.MockTransport(fake.handle), base_url=BASE, headers=headers)


@pytest.fixture
def fake():
    return FakeMastodon(FakeMastodonConfig(statuses=60, followers=170, following=20, seed=2), base_url=BASE)


def register(http: httpx.Client, **form) -> dict:
    response = http.post("/api/v1/apps", data={"client_name": "archiver", "redirect_uris": REDIRECT,
                                               "scopes": SCOPES, **form})
    assert response.status_code == 200, response.text
    return response.json()


def authorize(http: httpx.Client, app: dict, **params) -> httpx.Response:
    return http.get("/oauth/authorize", params={"response_type": "code", "client_id": app["client_id"],
                                                "redirect_uri": REDIRECT, "scope": SCOPES, "state": "s1",
                                                **params})


def code_of(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def exchange(http: httpx.Client, app: dict, code: str, **form) -> httpx.Response:
    return http.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                           "client_id": app["client_id"], "client_secret": app["client_secret"],
                                           "redirect_uri": REDIRECT, **form})


# --------------------------------------------------------------------------- apps and OAuth


def test_app_registration_validates_like_mastodon(fake):
    with client(fake) as http:
        assert http.post("/api/v1/apps", data={"redirect_uris": REDIRECT}).status_code == 422
        bad = http.post("/api/v1/apps", data={"client_name": "x", "redirect_uris": "not a uri"})
        assert bad.status_code == 422 and bad.json() == {"error": "Validation failed: Redirect URI must be an absolute URI."}
        assert http.post("/api/v1/apps", data={"client_name": "x", "redirect_uris": REDIRECT,
                                               "scopes": "read:everything"}).status_code == 422
        app = register(http)
        assert app["scopes"] == SCOPES.split() and app["redirect_uris"] == [REDIRECT]
        assert http.get("/api/v1/apps").status_code == 404          # no such route for GET
        json_app = http.post("/api/v1/apps", json={"client_name": "x", "redirect_uris": [REDIRECT]})
        assert json_app.status_code == 200


def test_code_flow_with_pkce_and_every_refusal(fake):
    with client(fake) as http:
        app = register(http)
        verifier = "v" * 50
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        assert authorize(http, {"client_id": "nobody"}).status_code == 401
        assert authorize(http, app, redirect_uri="http://127.0.0.1:1/other/").status_code == 400
        too_wide = authorize(http, app, scope="read write")
        assert "error=invalid_scope" in too_wide.headers["location"]
        # Wrong client secret.
        code = code_of(authorize(http, app, code_challenge=challenge, code_challenge_method="S256"))
        wrong = exchange(http, {**app, "client_secret": "nope"}, code, code_verifier=verifier)
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        # Wrong verifier: refused, and the code is spent.
        assert exchange(http, app, code, code_verifier="w" * 50).json()["error"] == "invalid_grant"
        assert exchange(http, app, code, code_verifier=verifier).status_code == 400
        # Wrong redirect_uri.
        code = code_of(authorize(http, app))
        assert exchange(http, app, code, redirect_uri="http://127.0.0.1:1/x/").json()["error"] == "invalid_grant"
        # The right exchange works once; the code cannot be used twice.
        code = code_of(authorize(http, app, code_challenge=challenge, code_challenge_method="S256"))
        token = exchange(http, app, code, code_verifier=verifier)
        assert token.status_code == 200 and token.json()["scope"] == SCOPES
        assert "refresh_token" not in token.json() and "expires_in" not in token.json()
        assert exchange(http, app, code, code_verifier=verifier).json()["error"] == "invalid_grant"
        # An expired code.
        code = code_of(authorize(http, app))
        fake.advance(601)
        assert exchange(http, app, code).json()["error"] == "invalid_grant"
    access = token.json()["access_token"]
    with client(fake, access) as api:
        assert api.get("/api/v1/accounts/verify_credentials").json()["acct"] == "alice"
    with client(fake) as http:
        assert http.post("/oauth/revoke", data={"client_id": app["client_id"], "client_secret": app["client_secret"],
                                                "token": access}).json() == {}
    with client(fake, access) as api:
        refused = api.get("/api/v1/accounts/verify_credentials")
        assert refused.status_code == 401 and refused.json() == INVALID


def test_before_4_3_there_is_no_pkce_and_no_metadata():
    fake = FakeMastodon(FakeMastodonConfig(statuses=1, version="4.2.10"), base_url=BASE)
    with client(fake) as http:
        assert http.get("/.well-known/oauth-authorization-server").status_code == 404
        app = register(http)
        assert "redirect_uris" not in app and app["redirect_uri"] == REDIRECT
        code = code_of(authorize(http, app, code_challenge="ignored", code_challenge_method="S256"))
        assert exchange(http, app, code).status_code == 200          # the challenge was ignored
    new = FakeMastodon(FakeMastodonConfig(statuses=1), base_url=BASE)
    with client(new) as http:
        metadata = http.get("/.well-known/oauth-authorization-server").json()
        assert metadata["code_challenge_methods_supported"] == ["S256"]


def test_tokens_scopes_and_app_tokens(fake):
    with client(fake, "made-up") as api:
        answer = api.get("/api/v1/accounts/1091/statuses")        # even a public endpoint
        assert answer.status_code == 401 and answer.json() == INVALID
    with client(fake, fake.issue_token("read:follows")) as api:
        answer = api.get("/api/v1/accounts/verify_credentials")
        assert answer.status_code == 403 and answer.json() == {"error": "This action is outside the authorized scopes"}
        assert api.get("/api/v1/accounts/1091/statuses").status_code == 403
    with client(fake, fake.issue_token("read")) as api:               # read implies read:*
        assert api.get("/api/v1/accounts/verify_credentials").status_code == 200
    with client(fake) as http:
        app = register(http)
        app_token = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": app["client_id"],
                                                    "client_secret": app["client_secret"]}).json()["access_token"]
    with client(fake, app_token) as api:
        answer = api.get("/api/v1/accounts/verify_credentials")
        assert answer.status_code == 422 and answer.json() == {"error": "This method requires an authenticated user"}


# --------------------------------------------------------------------------- lists and paging


def test_status_pages_link_headers_limits_and_cursors(fake):
    with client(fake, fake.issue_token()) as api:
        first = api.get("/api/v1/accounts/1091/statuses", params={"limit": 500})
        items = first.json()
        assert len(items) == 40 and all(isinstance(s["id"], str) for s in items)       # clamped to 40
        ids = [int(s["id"]) for s in items]
        assert ids == sorted(ids, reverse=True)
        assert first.links["next"]["url"].endswith(f"max_id={items[-1]['id']}")
        assert first.links["prev"]["url"].endswith(f"min_id={items[0]['id']}")
        last = api.get(first.links["next"]["url"])
        assert 0 < len(last.json()) < 40 and "next" not in last.links   # a short page ends the list
        # min_id: the page just above the cursor; since_id: the newest page above it.
        pivot = items[30]["id"]
        above = api.get("/api/v1/accounts/1091/statuses", params={"limit": 5, "min_id": pivot}).json()
        assert [s["id"] for s in above] == [s["id"] for s in items[25:30]]
        newest = api.get("/api/v1/accounts/1091/statuses", params={"limit": 5, "since_id": pivot}).json()
        assert [s["id"] for s in newest] == [s["id"] for s in items[:5]]
        empty = api.get("/api/v1/accounts/1091/statuses", params={"min_id": items[0]["id"]})
        assert empty.json() == [] and "link" not in empty.headers
        no_boosts = api.get("/api/v1/accounts/1091/statuses", params={"limit": 40, "exclude_reblogs": "true"}).json()
        assert any(s["reblog"] for s in items) and not any(s["reblog"] for s in no_boosts)
        assert api.get("/api/v1/accounts/999999/statuses").status_code == 404


def test_private_statuses_need_the_owners_token(fake):
    private = [s for s in fake.own_statuses() if s["visibility"] == "private"]
    assert private
    with client(fake) as anonymous:
        listed = {s["id"] for s in anonymous.get("/api/v1/accounts/1091/statuses", params={"limit": 40}).json()}
        assert not listed & {s["id"] for s in private}
        answer = anonymous.get(f"/api/v1/statuses/{private[0]['id']}")
        assert answer.status_code == 404 and answer.json() == {"error": "Record not found"}
    with client(fake, fake.issue_token()) as api:
        assert api.get(f"/api/v1/statuses/{private[0]['id']}").status_code == 200


def test_follower_pages_are_keyed_by_follow_relationship_ids(fake):
    with client(fake, fake.issue_token()) as api:
        page = api.get("/api/v1/accounts/1091/followers", params={"limit": 1000})
        accounts = page.json()
        assert len(accounts) == 80                                          # clamped to 80
        cursor = parse_qs(urlsplit(page.links["next"]["url"]).query)["max_id"][0]
        assert cursor not in {a["id"] for a in accounts}                    # not an account id
        assert int(cursor) in {f["follow_id"] for f in fake.followers}
        assert "since_id=" in page.links["prev"]["url"]
        seen, url = [a["id"] for a in accounts], page.links["next"]["url"]
        while url:
            answer = api.get(url)
            seen += [a["id"] for a in answer.json()]
            url = answer.links.get("next", {}).get("url")
        assert sorted(seen) == sorted(f["account_id"] for f in fake.followers)
        assert api.get("/api/v1/accounts/1091/following").json()[0]["acct"].count("@") == 1


def test_edits_history_and_nested_context(fake):
    edited = [s for s in fake.own_statuses() if len(s["versions"]) > 1][0]
    with client(fake, fake.issue_token()) as api:
        status = api.get(f"/api/v1/statuses/{edited['id']}").json()
        history = api.get(f"/api/v1/statuses/{edited['id']}/history").json()
        assert status["edited_at"] and len(history) >= 2
        assert history[-1]["content"] == status["content"]                 # the current one last
        assert [h["created_at"] for h in history] == sorted(h["created_at"] for h in history)
        root = min(fake.own_statuses(), key=lambda s: int(s["id"]))
        context = api.get(f"/api/v1/statuses/{root['id']}/context").json()
        by_id = {d["id"]: d for d in context["descendants"]}
        nested = [d for d in by_id.values() if d["in_reply_to_id"] in by_id]
        assert nested and context["ancestors"] == []


def test_media_files_are_served_with_their_type(fake):
    status = next(s for s in fake.own_statuses() if s["media"])
    with client(fake, fake.issue_token()) as api:
        attachment = api.get(f"/api/v1/statuses/{status['id']}").json()["media_attachments"][0]
    with client(fake) as cdn:
        file = cdn.get(attachment["url"])
        assert file.status_code == 200 and file.headers["content-type"] in ("image/png", "video/mp4")
        assert cdn.get("/system/media_attachments/files/000/000/000/original/nothing.png").status_code == 404


# --------------------------------------------------------------------------- limits and faults


def test_rate_limit_headers_report_an_iso_reset_and_429_when_spent():
    fake = FakeMastodon(FakeMastodonConfig(statuses=5, rate_limit=2, rate_window=300, retry_after="7"),
                        base_url=BASE)
    with client(fake, fake.issue_token()) as api:
        first = api.get("/api/v1/accounts/verify_credentials")
        assert first.headers["x-ratelimit-limit"] == "2" and first.headers["x-ratelimit-remaining"] == "1"
        reset = dt.datetime.fromisoformat(first.headers["x-ratelimit-reset"].replace("Z", "+00:00"))
        assert 0 < (reset - dt.datetime.now(dt.timezone.utc)).total_seconds() <= 300 + 1 + fake.clock_offset
        api.get("/api/v1/accounts/verify_credentials")
        refused = api.get("/api/v1/accounts/verify_credentials")
        assert refused.status_code == 429 and refused.json() == {"error": "Too many requests"}
        assert refused.headers["x-ratelimit-remaining"] == "0" and refused.headers["retry-after"] == "7"
        fake.advance(300)
        assert api.get("/api/v1/accounts/verify_credentials").status_code == 200


def test_paged_requests_have_their_own_stricter_limit():
    fake = FakeMastodon(FakeMastodonConfig(statuses=5, paged_limit=1, paged_window=900), base_url=BASE)
    with client(fake, fake.issue_token()) as api:
        assert api.get("/api/v1/accounts/1091/statuses", params={"max_id": "9" * 18}).status_code == 200
        assert api.get("/api/v1/accounts/1091/statuses", params={"max_id": "9" * 18}).status_code == 429
        assert api.get("/api/v1/accounts/1091/statuses").status_code == 200    # not paged: still fine


@pytest.mark.parametrize("vanish,status", [("401", 401), ("403", 403), ("404", 404), ("410", 410)])
def test_vanish_knob(vanish, status):
    fake = FakeMastodon(FakeMastodonConfig(statuses=3, vanish=vanish), base_url=BASE)
    with client(fake, fake.issue_token()) as api:
        assert api.get("/api/v1/accounts/verify_credentials").status_code == status
    fake.config.vanish = "closed"
    with client(fake) as api, pytest.raises(httpx.ConnectError):
        api.get("/api/v1/accounts/verify_credentials")


def test_fail_rate_answers_503_html():
    fake = FakeMastodon(FakeMastodonConfig(statuses=3, fail_rate=1.0), base_url=BASE)
    with client(fake, fake.issue_token()) as api:
        answer = api.get("/api/v1/accounts/verify_credentials")
        assert answer.status_code == 503 and answer.headers["content-type"].startswith("text/html")


def test_state_carries_over_between_runs(fake):
    token = fake.issue_token()
    before = len(fake.own_statuses())
    new = fake.add_status("<p>hello</p>", media=[("image", "alt")])
    fake.edit_status(new["id"], "<p>hello again</p>")
    fake.add_reply(new["id"])
    with client(fake, token) as api:
        top = api.get("/api/v1/accounts/1091/statuses", params={"limit": 1}).json()[0]
        assert top["id"] == new["id"] and top["replies_count"] == 1 and top["edited_at"]
        assert top["media_attachments"][0]["description"] == "alt"
        assert api.get("/api/v1/accounts/verify_credentials").json()["statuses_count"] == before + 1


def test_simulate_serves_the_fake_over_loopback(tmp_path):
    from cli_world import archiver_command, cli_env

    token_file = tmp_path / "token"
    process = subprocess.Popen([*archiver_command(), "simulate", "mastodon", "--port", "0", "--videos", "7",
                                "--followers", "9", "--token-file", str(token_file)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=cli_env(tmp_path / "state"))
    try:
        line = process.stdout.readline()
        base = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)[1]
        token = token_file.read_text()
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as api:
            me = api.get("/api/v1/accounts/verify_credentials").json()
            assert me["followers_count"] == 9
            assert len(api.get("/api/v1/accounts/1091/statuses", params={"limit": 40}).json()) >= 7
    finally:
        process.terminate()
        process.communicate(timeout=10)
