"""FakeBluesky refuses what Bluesky refuses (notes §9, §10), so tests against it prove something."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import httpx
import pytest

from archiver_connectors.bluesky.api import sha256_of_blob_cid
from archiver_connectors.bluesky.sim.fake import FakeBluesky, FakeBlueskyConfig
from archiver_connectors.bluesky.repo import read_repo

BASE = "http://127.0.0.1:8798"


def call(fake, method, nsid, params=None, *, token=None, json=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return fake.handle(httpx.Request(method, f"{BASE}/xrpc/{nsid}", params=params, headers=headers, json=json))


@pytest.fixture
def fake():
    return FakeBluesky(FakeBlueskyConfig(), base_url=BASE)


def login(fake, password=None):
    return call(fake, "POST", "com.atproto.server.createSession",
                json={"identifier": fake.user_handle, "password": password or fake.config.app_password})


def test_xrpc_method_params_and_unknown_methods_are_refused(fake):
    assert call(fake, "POST", "com.atproto.sync.getRepo", {"did": fake.did}).status_code == 400
    missing = call(fake, "GET", "com.atproto.sync.getRepo")
    assert missing.status_code == 400 and missing.json()["error"] == "InvalidRequest"
    assert call(fake, "GET", "com.atproto.sync.getRepo", {"did": "did:plc:nobody"}).json()["error"] == "RepoNotFound"
    assert call(fake, "GET", "com.example.nothing").json()["error"] == "XRPCNotSupported"
    assert call(fake, "GET", "com.atproto.server.createSession").status_code == 400


def test_create_session_checks_the_app_password(fake):
    bad = login(fake, "wrong-wrong-wrong-wrong")
    assert bad.status_code == 401 and bad.json() == {"error": "AuthenticationRequired",
                                                      "message": "Invalid identifier or password"}
    good = login(fake).json()
    assert good["did"] == fake.did and good["accessJwt"] and good["refreshJwt"]
    assert good["didDoc"]["service"][0]["serviceEndpoint"] == BASE


def test_expired_access_token_is_400_expiredtoken_and_refresh_rotates(fake):
    session = login(fake).json()
    ok = call(fake, "GET", "com.atproto.sync.getLatestCommit", {"did": fake.did}, token=session["accessJwt"])
    assert ok.status_code == 200 and ok.json()["rev"] == fake.rev
    fake.advance(fake.config.access_ttl + 1)
    expired = call(fake, "GET", "com.atproto.sync.getLatestCommit", {"did": fake.did}, token=session["accessJwt"])
    assert expired.status_code == 400 and expired.json()["error"] == "ExpiredToken"
    # An access token is no refresh token.
    assert call(fake, "POST", "com.atproto.server.refreshSession",
                token=session["accessJwt"]).json()["error"] == "InvalidToken"
    new = call(fake, "POST", "com.atproto.server.refreshSession", token=session["refreshJwt"]).json()
    assert new["refreshJwt"] != session["refreshJwt"]
    reused = call(fake, "POST", "com.atproto.server.refreshSession", token=session["refreshJwt"])
    assert reused.status_code == 400 and reused.json() == {"error": "ExpiredToken", "message": "Token has been revoked"}
    # No token at all is fine for sync reads; a bad one is not.
    assert call(fake, "GET", "com.atproto.sync.getLatestCommit", {"did": fake.did}).status_code == 200
    assert call(fake, "GET", "com.atproto.sync.getLatestCommit", {"did": fake.did},
                token="nonsense").json()["error"] == "InvalidToken"


def test_public_appview_refuses_a_session_token(fake):
    session = login(fake).json()
    answer = call(fake, "GET", "app.bsky.actor.getProfile", {"actor": fake.did}, token=session["accessJwt"])
    assert answer.status_code == 400
    assert call(fake, "GET", "app.bsky.actor.getProfile", {"actor": fake.did}).json()["followersCount"] == 30


def test_get_repo_is_a_real_car_of_the_current_records(fake):
    answer = call(fake, "GET", "com.atproto.sync.getRepo", {"did": fake.did})
    assert answer.headers["content-type"] == "application/vnd.ipld.car"
    repo = read_repo(answer.content)
    assert repo.did == fake.did and repo.rev == fake.rev and not repo.problems
    assert {f"{r.collection}/{r.rkey}" for r in repo.records} == set(fake.records)
    before = fake.rev
    fake.add_post("another")
    assert fake.rev != before
    assert read_repo(call(fake, "GET", "com.atproto.sync.getRepo", {"did": fake.did}).content).rev == fake.rev


def test_list_blobs_pages_with_a_cursor_and_get_blob_serves_the_bytes_of_the_cid(fake):
    cids, cursor, pages = [], None, 0
    while True:
        params = {"did": fake.did, "limit": 2, **({"cursor": cursor} if cursor else {})}
        body = call(fake, "GET", "com.atproto.sync.listBlobs", params).json()
        pages += 1
        cids += body["cids"]
        cursor = body.get("cursor")
        if not body["cids"]:
            assert cursor is None   # the reference PDS: a cursor on every non-empty page, then an empty one
            break
    assert sorted(cids) == sorted(fake.blobs) and pages == len(fake.blobs) // 2 + 1 + (len(fake.blobs) % 2)
    blob = call(fake, "GET", "com.atproto.sync.getBlob", {"did": fake.did, "cid": cids[0]})
    assert blob.headers["content-type"] == "image/png"
    assert hashlib.sha256(blob.content).hexdigest() == sha256_of_blob_cid(cids[0])
    assert call(fake, "GET", "com.atproto.sync.getBlob",
                {"did": fake.did, "cid": "bafkreinothere"}).json()["error"] == "BlobNotFound"


@pytest.mark.parametrize("cursor_on_last_page", [True, False])
def test_appview_lists_end_as_configured(cursor_on_last_page):
    fake = FakeBluesky(FakeBlueskyConfig(followers=150, cursor_on_last_page=cursor_on_last_page), base_url=BASE)
    first = call(fake, "GET", "app.bsky.graph.getFollowers", {"actor": fake.did, "limit": 100}).json()
    last = call(fake, "GET", "app.bsky.graph.getFollowers",
                {"actor": fake.did, "limit": 100, "cursor": first["cursor"]}).json()
    assert len(last["followers"]) == 50
    assert ("cursor" in last) is cursor_on_last_page
    assert call(fake, "GET", "app.bsky.graph.getFollowers", {"actor": fake.did, "limit": 101}).status_code == 400


def test_thread_holds_replies_from_others_nested(fake):
    uri = fake.post_uris()[1]
    top = fake.add_reply(uri, text="top")
    fake.add_reply(uri, text="under", parent=top)
    thread = call(fake, "GET", "app.bsky.feed.getPostThread", {"uri": uri, "depth": 10}).json()["thread"]
    assert thread["post"]["replyCount"] == 2
    assert thread["replies"][0]["post"]["uri"] == top
    assert thread["replies"][0]["replies"][0]["post"]["record"]["text"] == "under"
    assert call(fake, "GET", "app.bsky.feed.getPostThread",
                {"uri": f"at://{fake.did}/app.bsky.feed.post/nope"}).json()["error"] == "NotFound"


def test_rate_limit_answers_429_with_ratelimit_headers(fake):
    fake.config.rate_limit = 2
    for _ in range(2):
        ok = call(fake, "GET", "com.atproto.sync.getLatestCommit", {"did": fake.did})
        assert ok.headers["ratelimit-limit"] == "2"
    limited = call(fake, "GET", "com.atproto.sync.getLatestCommit", {"did": fake.did})
    assert limited.status_code == 429 and limited.json()["error"] == "RateLimitExceeded"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert int(limited.headers["ratelimit-reset"]) > fake.now()
    assert limited.headers["ratelimit-policy"] == "2;w=300"
    fake.advance(301)
    assert call(fake, "GET", "com.atproto.sync.getLatestCommit", {"did": fake.did}).status_code == 200


def test_fail_rate_and_vanish(fake):
    fake.config.fail_rate = 1.0
    assert call(fake, "GET", "com.atproto.sync.getLatestCommit", {"did": fake.did}).status_code == 500
    fake.config.vanished = True
    with pytest.raises(httpx.ConnectError):
        call(fake, "GET", "com.atproto.sync.getLatestCommit", {"did": fake.did})


def test_plc_and_did_web_documents():
    plc = FakeBluesky(FakeBlueskyConfig(), base_url=BASE)
    doc = plc.handle(httpx.Request("GET", f"{BASE}/{plc.did}")).json()
    assert doc["id"] == plc.did and doc["alsoKnownAs"] == ["at://alice.test"]
    assert plc.handle(httpx.Request("GET", f"{BASE}/did:plc:unknown")).status_code == 404
    web = FakeBluesky(FakeBlueskyConfig(did_method="web"), base_url=BASE)
    assert web.did == "did:web:127.0.0.1%3A8798"
    assert web.handle(httpx.Request("GET", f"{BASE}/.well-known/did.json")).json()["id"] == web.did


def test_simulate_serves_over_loopback():
    process = subprocess.Popen([sys.executable, "-m", "archiver_connectors.bluesky.sim.fake", "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        base = line.split()[-1]
        with httpx.Client(timeout=10) as client:
            body = client.get(f"{base}/xrpc/com.atproto.identity.resolveHandle", params={"handle": "alice.test"}).json()
            doc = client.get(f"{base}/{body['did']}").json()
            assert doc["service"][0]["serviceEndpoint"] == base
    finally:
        process.terminate()
        process.wait(timeout=10)
