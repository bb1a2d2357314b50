"""The X fake itself (x/sim/fake.py): it must refuse what X refuses and price what X prices,
or the connector's tests prove nothing. In-process through httpx.MockTransport; one
`archiver simulate x` process at the end."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from archiver_connectors.x.sim.fake import FakeX, FakeXConfig, media_key, write_matching_export

BASE = "http://127.0.0.1:8798"
FIELDS = {"tweet.fields": "created_at,public_metrics,note_tweet,entities,referenced_tweets",
          "expansions": "attachments.media_keys", "media.fields": "url,variants"}


def client(fake: FakeX, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(transport=httpx.MockTransport(fake.handle), base_url=BASE, headers=headers)


def authed(config: FakeXConfig | None = None) -> tuple[FakeX, httpx.Client]:
    fake = FakeX(config or FakeXConfig(posts=12), base_url=BASE)
    return fake, client(fake, fake.issue_tokens()["access_token"])


def timeline(http: httpx.Client, **params) -> httpx.Response:
    return http.get("/2/users/1234567890/tweets", params={**FIELDS, **params})


def test_it_refuses_what_x_refuses():
    fake, http = authed()
    assert client(fake).get("/2/users/me").status_code == 401
    assert client(fake, "not-a-token").get("/2/users/me").json()["title"] == "Unauthorized"
    for bad in ({"max_results": "4"}, {"max_results": "101"}, {"tweet.fields": "created_at,colour"},
                {"expansions": "author_name"}, {"since_id": "12ab"}, {"pagination_token": "forged"},
                {"count": "5"}):
        answer = timeline(http, **bad)
        assert answer.status_code == 400, bad
        assert answer.json()["title"] == "Invalid Request" and answer.json()["errors"][0]["parameters"], bad
    assert http.get("/2/users/1234567890/followers", params={"max_results": "1001"}).status_code == 400
    assert http.post("/2/users/me").status_code == 405
    fake.expire_tokens()
    assert http.get("/2/users/me").status_code == 401
    # A token without follows.read cannot list followers.
    narrow = client(fake, fake.issue_tokens("tweet.read users.read offline.access")["access_token"])
    assert narrow.get("/2/users/1234567890/followers").status_code == 403
    assert narrow.get("/2/users/me").status_code == 200


def test_it_prices_every_answer_by_what_it_returns():
    fake, http = authed(FakeXConfig(posts=12, followers=7))
    assert http.get("/2/users/me").status_code == 200
    first = timeline(http, max_results="5").json()
    assert first["meta"]["result_count"] == 5 and first["meta"]["next_token"]
    rest = timeline(http, max_results="100", pagination_token=first["meta"]["next_token"]).json()
    assert rest["meta"]["result_count"] == 7 and "next_token" not in rest["meta"]
    assert [t["id"] for t in first["data"] + rest["data"]] == [p.version_ids[-1] for p in fake.live_posts()]
    # A token from another listing (other bounds) is refused.
    assert timeline(http, max_results="5", since_id="1", pagination_token=first["meta"]["next_token"]).status_code == 400
    assert http.get("/2/users/1234567890/followers", params={"max_results": "1000"}).json()["meta"]["result_count"] == 7
    assert timeline(http, since_id=first["data"][0]["id"]).json() == {"meta": {"result_count": 0}}
    assert timeline(http, max_results="4").status_code == 400          # errors cost nothing
    assert fake.charges == [("/2/users/me", 10_000), ("/2/users/1234567890/tweets", 25_000),
                            ("/2/users/1234567890/tweets", 35_000), ("/2/users/1234567890/followers", 70_000),
                            ("/2/users/1234567890/tweets", 0)]
    assert fake.spent_micro == 140_000 and fake.spent_usd == pytest.approx(0.14)


def test_the_timeline_reaches_the_window_and_shows_an_edited_post_once():
    fake, http = authed(FakeXConfig(posts=12, window=8))
    newest = fake.posts[0]
    new_id = fake.edit_post(newest, "Edited text")
    data = timeline(http, max_results="100").json()["data"]
    assert len(data) == 8                                           # the 3,200 rule, here 8
    assert data[0]["id"] == new_id and data[0]["edit_history_tweet_ids"] == [newest, new_id]
    assert data[0]["text"].split(" https://t.co/")[0] == "Edited text"
    assert sum(1 for t in data if newest in t["edit_history_tweet_ids"]) == 1
    older = timeline(http, until_id=data[2]["id"], max_results="5").json()["data"]
    assert [t["id"] for t in older] == [t["id"] for t in data[3:8]]
    # Fields only when asked for.
    bare = http.get("/2/users/1234567890/tweets").json()["data"][0]
    assert set(bare) == {"id", "text", "edit_history_tweet_ids"}


def test_the_sample_world_in_v2_shape():
    fake, http = authed(FakeXConfig())
    body = timeline(http, max_results="100").json()
    by_id = {t["id"]: t for t in body["data"]}
    media = {m["media_key"]: m for m in body["includes"]["media"]}
    long_post = next(p for p in fake.world.posts if p.is_note)
    tweet = by_id[long_post.version_ids[-1]]
    assert len(tweet["text"]) <= 281 and tweet["note_tweet"]["text"].startswith("Why I keep an archive")
    video = next(p for p in fake.world.posts if p.media and p.media[0].kind == "video")
    variants = media[media_key(video.media[0])]["variants"]
    assert sum(v["content_type"] == "video/mp4" for v in variants) == 4 and all(
        "bit_rate" in v for v in variants if v["content_type"] == "video/mp4")
    first = next(p for p in fake.world.posts if "&" in p.text)
    assert "&amp;" in by_id[first.tweet_id]["text"] and "https://t.co/" in by_id[first.tweet_id]["text"]
    repost = next(p for p in fake.world.posts if p.repost_of)
    assert by_id[repost.tweet_id]["referenced_tweets"][0]["type"] == "retweeted"
    assert all(p.tweet_id not in by_id for p in fake.world.posts if p.deleted_at)


def test_the_cdn_serves_the_archives_bytes(tmp_path):
    fake, http = authed(FakeXConfig())
    body = timeline(http, max_results="100").json()
    archive = write_matching_export(fake, tmp_path / "twitter.zip")
    with zipfile.ZipFile(archive) as zipped:
        stored = {hashlib.sha256(zipped.read(name)).hexdigest() for name in zipped.namelist()
                  if "/tweets_media/" in name}
    served = set()
    for item in body["includes"]["media"]:
        url = item.get("url") or max((v for v in item["variants"] if v["content_type"] == "video/mp4"),
                                     key=lambda v: v["bit_rate"])["url"]
        answer = http.get(url)
        assert answer.status_code == 200, url
        served.add(hashlib.sha256(answer.content).hexdigest())
    missing = {hashlib.sha256(m.file_bytes()).hexdigest() for p in fake.world.posts for m in p.media
               if not m.in_archive}
    deleted = {hashlib.sha256(m.file_bytes()).hexdigest() for p in fake.world.posts for m in p.media if p.deleted_at}
    assert stored - deleted <= served and served - stored == missing


def _consent(fake: FakeX, host: str = "127.0.0.1", **params) -> httpx.Response:
    query = {"response_type": "code", "client_id": fake.config.client_id, "redirect_uri": "http://127.0.0.1:9/cb",
             "scope": "tweet.read users.read offline.access", "state": "s1", "code_challenge": params.pop(
                 "challenge", base64.urlsafe_b64encode(hashlib.sha256(b"v" * 43).digest()).decode().rstrip("=")),
             "code_challenge_method": "S256", **params}
    return httpx.Client(transport=httpx.MockTransport(fake.handle)).get(f"https://{host}/i/oauth2/authorize",
                                                                        params=query)


def _exchange(fake: FakeX, code: str, verifier: str = "v" * 43, *, basic: bool = True) -> httpx.Response:
    auth = httpx.BasicAuth(fake.config.client_id, fake.config.client_secret) if basic else None
    return httpx.Client(transport=httpx.MockTransport(fake.handle)).post(
        f"{BASE}/2/oauth2/token", auth=auth, data={"grant_type": "authorization_code", "code": code,
                                                   "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": verifier,
                                                   "client_id": fake.config.client_id})


def test_oauth_pkce_a_confidential_client_and_refresh_rotation():
    fake = FakeX(FakeXConfig(posts=1, authorize_hosts=("x.com",)), base_url=BASE)
    assert _consent(fake, "twitter.com").status_code == 404        # [U] the knob: x.com only here
    assert _consent(fake, "x.com", challenge="").status_code == 400
    code = parse_qs(urlsplit(_consent(fake, "x.com").headers["Location"]).query)["code"][0]
    assert _exchange(fake, code, basic=False).status_code == 401   # a confidential client: Basic auth
    code = parse_qs(urlsplit(_consent(fake, "x.com").headers["Location"]).query)["code"][0]
    assert _exchange(fake, code, "w" * 43).json()["error"] == "invalid_request"   # the wrong verifier
    code = parse_qs(urlsplit(_consent(fake, "x.com").headers["Location"]).query)["code"][0]
    tokens = _exchange(fake, code).json()
    assert tokens["expires_in"] == 7200 and tokens["refresh_token"]
    assert _exchange(fake, code).status_code == 400                # a code is used once
    post = httpx.Client(transport=httpx.MockTransport(fake.handle),
                        auth=httpx.BasicAuth(fake.config.client_id, fake.config.client_secret)).post
    refreshed = post(f"{BASE}/2/oauth2/token", data={"grant_type": "refresh_token",
                                                      "refresh_token": tokens["refresh_token"]}).json()
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert post(f"{BASE}/2/oauth2/token", data={"grant_type": "refresh_token",
                                                 "refresh_token": tokens["refresh_token"]}).status_code == 400
    fake.revoke_all()
    assert post(f"{BASE}/2/oauth2/token", data={"grant_type": "refresh_token",
                                                 "refresh_token": refreshed["refresh_token"]}).status_code == 400


@pytest.mark.parametrize("status", [402, 403])
def test_credits_the_monthly_cap_and_rate_windows(status):
    fake, http = authed(FakeXConfig(posts=12, credits_usd=0.02, credits_status=status, follows_rate_limit=2))
    assert timeline(http, max_results="5").status_code == 200             # $0.025: past the credits
    refused = timeline(http, max_results="5")
    assert refused.status_code == status and "credits" in refused.json()["detail"]
    assert fake.spent_micro == 25_000
    fake, http = authed(FakeXConfig(posts=12, monthly_post_cap=5, follows_rate_limit=2))
    assert timeline(http, max_results="5").status_code == 200
    capped = timeline(http, max_results="5")
    assert capped.status_code == 429 and capped.json()["title"] == "UsageCapExceeded"
    for _ in range(2):
        assert http.get("/2/users/1234567890/followers").status_code == 200
    limited = http.get("/2/users/1234567890/followers")
    assert limited.status_code == 429 and "retry-after" not in limited.headers      # [U] the default: none
    assert int(limited.headers["x-rate-limit-reset"]) > fake.now() and limited.headers["x-rate-limit-remaining"] == "0"
    fake.advance(15 * 60)
    assert http.get("/2/users/1234567890/followers").status_code == 200


def test_archiver_simulate_x_serves_and_writes_the_same_worlds_archive(tmp_path):
    from cli_world import archiver_command, cli_env

    archive = tmp_path / "x.zip"
    process = subprocess.Popen([*archiver_command(), "simulate", "x", "--port", "0", "--posts", "3",
                                "--write-export", str(archive)], stdout=subprocess.PIPE, text=True,
                               env=cli_env(tmp_path / "state"))
    try:
        lines = [process.stdout.readline(), process.stdout.readline()]   # type: ignore[union-attr]
        url = next(line.split()[-1] for line in lines if line.startswith("listening on"))
        assert httpx.get(url + "/2/users/me").status_code == 401
        assert archive.exists() and "data/tweets.js" in zipfile.ZipFile(archive).namelist()
    finally:
        process.terminate()
        process.wait(timeout=10)
