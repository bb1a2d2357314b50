"""The fake YouTube keeps to the notes (shared/platforms/youtube.md): OAuth with PKCE and the
testing-mode 7-day refresh limit, part/fields/maxResults validation, page tokens, the
Google error envelope, quota per Pacific day, signed thumbnails, truncated embedded
replies, partial subscribers; and `archiver auth youtube` works against it."""

from __future__ import annotations

import subprocess
import sys

import httpx

from archiver.config import AccountConfig
from archiver.secrets import open_secret_store
from archiver_connectors.youtube import YouTubeConnector
from archiver_connectors.youtube.sim.fake import FakeYouTube, FakeYouTubeConfig, apply_fields, parse_fields

BASE = "http://127.0.0.1:8797"


def client_for(fake: FakeYouTube) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(fake.handle), base_url=BASE)


def api(fake: FakeYouTube, client: httpx.Client, resource: str, token: str | None = None, **params):
    token = token or fake.issue_tokens()["access_token"]
    return client.get(f"/youtube/v3/{resource}", params=params, headers={"Authorization": f"Bearer {token}"})


def reason(response: httpx.Response) -> str:
    return response.json()["error"]["errors"][0]["reason"]


def test_fields_selection_parses_nested_and_slash_paths():
    tree = parse_fields("nextPageToken,items(id,snippet/title)")
    data = {"nextPageToken": "x", "etag": "e", "items": [{"id": 1, "kind": "k", "snippet": {"title": "t", "x": 1}}]}
    assert apply_fields(data, tree) == {"nextPageToken": "x", "items": [{"id": 1, "snippet": {"title": "t"}}]}


def test_parts_maxresults_tokens_and_error_envelope():
    fake = FakeYouTube(FakeYouTubeConfig(videos=12, seed=2), base_url=BASE)
    token = fake.issue_tokens()["access_token"]
    with client_for(fake) as c:
        uploads = fake.channel["uploads"]
        assert reason(api(fake, c, "playlistItems", token, playlistId=uploads)) == "missingRequiredParameter"
        assert reason(api(fake, c, "playlistItems", token, part="snippet,bogus", playlistId=uploads)) == "unknownPart"
        bad = api(fake, c, "playlistItems", token, part="snippet", playlistId=uploads, maxResults=51)
        assert bad.status_code == 400 and reason(bad) == "invalidParameter"
        assert bad.json()["error"]["status"] == "INVALID_ARGUMENT"
        first = api(fake, c, "playlistItems", token, part="contentDetails", playlistId=uploads).json()
        assert len(first["items"]) == 5 and first["nextPageToken"]          # default maxResults 5
        ids = []
        page_token = None
        while True:
            extra = {"pageToken": page_token} if page_token else {}
            body = api(fake, c, "playlistItems", token, part="contentDetails", playlistId=uploads,
                       maxResults=5, **extra).json()
            ids += [i["contentDetails"]["videoId"] for i in body["items"]]
            page_token = body.get("nextPageToken")
            if not page_token:
                break
        assert ids == [v["id"] for v in fake.videos]
        wrong = api(fake, c, "playlistItems", token, part="id", playlistId=uploads, pageToken="garbage")
        assert reason(wrong) == "invalidPageToken"
        assert reason(api(fake, c, "videos", token, part="id", id=",".join(["x"] * 51))) == "invalidParameter"
        missing = api(fake, c, "videos", token, part="statistics", id=f"{ids[0]},nope").json()
        assert [i["id"] for i in missing["items"]] == [ids[0]]
        assert set(missing["items"][0]) == {"kind", "etag", "id", "statistics"}
        unauth = c.get("/youtube/v3/channels", params={"part": "id", "mine": "true"})
        assert unauth.status_code == 401 and reason(unauth) == "authError"


def test_quota_is_counted_per_pacific_day_and_then_refused():
    fake = FakeYouTube(FakeYouTubeConfig(videos=3, daily_quota=3), base_url=BASE)
    token = fake.issue_tokens()["access_token"]
    with client_for(fake) as c:
        assert api(fake, c, "channels", token, part="id", mine="true").status_code == 200
        assert api(fake, c, "channels", token, part="bogus", mine="true").status_code == 400  # costs too
        assert api(fake, c, "channels", token, part="id", mine="true").status_code == 200
        refused = api(fake, c, "channels", token, part="id", mine="true")
        assert refused.status_code == 403 and reason(refused) == "quotaExceeded"
        assert refused.json()["error"]["errors"][0]["domain"] == "youtube.quota"
        assert fake.units_today() == 3
        fake.advance(86400)
        assert api(fake, c, "channels", fake.issue_tokens()["access_token"], part="id", mine="true").status_code == 200
        assert fake.units_today() == 1


def test_threads_embed_a_subset_of_replies_and_comments_list_has_them_all():
    fake = FakeYouTube(FakeYouTubeConfig(videos=5, comment_threads=8, embedded_replies_max=2, seed=5), base_url=BASE)
    with client_for(fake) as c:
        body = api(fake, c, "commentThreads", part="snippet,replies", maxResults=100,
                   allThreadsRelatedToChannelId=fake.channel["id"]).json()
        big = next(t for t in body["items"] if t["snippet"]["totalReplyCount"] > 2)
        assert len(big["replies"]["comments"]) == 2
        replies = api(fake, c, "comments", part="snippet", parentId=big["id"], maxResults=100).json()["items"]
        assert len(replies) == big["snippet"]["totalReplyCount"]
        assert all(r["id"].startswith(big["id"] + ".") and r["snippet"]["parentId"] == big["id"] for r in replies)


def test_subscribers_are_public_ones_only_and_capped():
    fake = FakeYouTube(FakeYouTubeConfig(followers=60, subscriber_cap=20, seed=6), base_url=BASE)
    with client_for(fake) as c:
        body = api(fake, c, "subscriptions", part="subscriberSnippet", mySubscribers="true", maxResults=50).json()
        assert len(body["items"]) == 20 and "nextPageToken" not in body
        channels = api(fake, c, "channels", part="statistics", mine="true").json()
        assert channels["items"][0]["statistics"]["subscriberCount"] == "60"


def test_thumbnails_are_signed_and_expire():
    fake = FakeYouTube(FakeYouTubeConfig(videos=2, thumbnail_ttl=100), base_url=BASE)
    with client_for(fake) as c:
        video = api(fake, c, "videos", part="snippet", id=fake.videos[0]["id"]).json()["items"][0]
        url = video["snippet"]["thumbnails"]["high"]["url"]
        assert c.get(url).status_code == 200
        assert c.get(url.replace("sig=", "sig=0")).status_code == 403
        fake.advance(101)
        assert c.get(url).status_code == 403


def test_auth_youtube_runs_pkce_against_the_fake_and_testing_mode_kills_refresh_after_7_days(tmp_path):
    fake = FakeYouTube(FakeYouTubeConfig(publishing_status="testing"), base_url=BASE)
    transport = httpx.MockTransport(fake.handle)
    secrets = open_secret_store("memory")
    account = AccountConfig(name="main", platform="youtube", base_url=BASE)
    connector = YouTubeConnector(account, secrets, transport=transport)
    seen = {}

    def browser(url: str) -> None:
        seen["url"] = url
        with httpx.Client(transport=transport) as c:
            answer = c.get(url)
        assert answer.status_code == 302
        httpx.get(answer.headers["Location"], trust_env=False)      # the browser comes back to the loopback

    summary = connector.authorize(echo=lambda *_: None, open_browser=browser, client_id=fake.config.client_id,
                                  client_secret=fake.config.client_secret, timeout=10)
    assert "authorized" in summary and "7 days" in summary
    assert "code_challenge_method=S256" in seen["url"] and "access_type=offline" in seen["url"]
    assert "youtube.readonly" in seen["url"]
    import json
    tokens = json.loads(secrets.get("youtube", "main", "tokens"))
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": fake.config.client_id, "client_secret": fake.config.client_secret}
    with httpx.Client(transport=transport, base_url=BASE) as c:
        ok = c.post("/token", data=form).json()
        assert "access_token" in ok and "refresh_token" not in ok   # Google keeps the refresh token
        fake.advance(7 * 86400)
        dead = c.post("/token", data=form)
        assert dead.status_code == 400 and dead.json() == {
            "error": "invalid_grant", "error_description": "Token has been expired or revoked."}


def test_simulate_serves_over_loopback(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "archiver_connectors.youtube.sim.fake", "--port", "0",
                                "--videos", "3", "--followers", "4", "--seed", "2"],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        base = line.removeprefix("listening on ")
        answer = httpx.get(f"{base}/youtube/v3/channels", params={"part": "id", "mine": "true"}, trust_env=False)
        assert answer.status_code == 401 and answer.json()["error"]["errors"][0]["reason"] == "authError"
    finally:
        process.terminate()
        process.wait(timeout=10)
