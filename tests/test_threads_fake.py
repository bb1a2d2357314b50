"""The fake Threads API refuses what Threads refuses (shared/platforms/threads.md §7), so the
connector's tests prove something. In-process: every request goes through ``fake.handle``."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from archiver_connectors.threads.sim.fake import API_EPOCH, READ_SCOPES, FakeThreads, FakeThreadsConfig

BASE = "http://127.0.0.1:8796"
DAY = 86400


def ask(fake: FakeThreads, path: str, token: str | None = None, *, host: str = BASE, method: str = "GET",
        **params) -> httpx.Response:
    query = {**params, **({"access_token": token} if token else {})}
    return fake.handle(httpx.Request(method, f"{host}{path}", params=query))


def error_of(response: httpx.Response) -> tuple[int, int | None]:
    error = response.json()["error"]
    return error["code"], error.get("error_subcode")


@pytest.fixture
def fake() -> FakeThreads:
    return FakeThreads(FakeThreadsConfig(posts=8, seed=2), base_url=BASE)


@pytest.fixture
def token(fake) -> str:
    return fake.issue_tokens()["access_token"]


# --------------------------------------------------------------------------- hosts and OAuth


@pytest.mark.parametrize("host", ["https://graph.threads.net", "https://graph.threads.com", BASE])
@pytest.mark.parametrize("version", ["/v1.0", ""])
def test_both_hosts_versioned_and_unversioned(fake, token, host, version):
    answer = ask(fake, f"{version}/me", token, host=host, fields="id,username")
    assert answer.status_code == 200 and answer.json() == {"id": fake.user["id"], "username": fake.user["username"]}
    assert ask(fake, "/me", token, host="https://graph.example.com").status_code == 404


def authorize(fake: FakeThreads, redirect_uri: str = "http://127.0.0.1:5555/callback/",
              scope: str = READ_SCOPES) -> str:
    answer = ask(fake, "/oauth/authorize", host="https://www.threads.net", client_id=fake.config.client_id,
                 redirect_uri=redirect_uri, scope=scope, response_type="code", state="s1")
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.endswith("#_")
    query = parse_qs(urlsplit(location.removesuffix("#_")).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def exchange(fake: FakeThreads, code: str, *, redirect_uri: str = "http://127.0.0.1:5555/callback/",
             method: str = "POST") -> httpx.Response:
    form = {"client_id": fake.config.client_id, "client_secret": fake.config.client_secret,
            "grant_type": "authorization_code", "redirect_uri": redirect_uri, "code": code}
    if method == "GET":
        return fake.handle(httpx.Request("GET", f"{BASE}/oauth/access_token", params=form))
    return fake.handle(httpx.Request("POST", f"{BASE}/oauth/access_token", data=form))


@pytest.mark.parametrize("shape", ["number", "string"])
def test_code_exchange_is_a_single_use_post_form_checking_the_redirect(fake, shape):
    fake.config.code_user_id = shape
    code = authorize(fake)
    assert error_of(exchange(fake, code, method="GET"))[0] == 100
    assert error_of(exchange(fake, code, redirect_uri="http://127.0.0.1:6666/callback/"))[0] == 100
    answer = exchange(fake, code)
    assert answer.status_code == 200
    body = answer.json()
    assert body["user_id"] == (int(fake.user["id"]) if shape == "number" else fake.user["id"])
    assert fake.token_info(body["access_token"])["kind"] == "short"
    assert error_of(exchange(fake, code))[0] == 100           # single-use
    bad = ask(fake, "/oauth/authorize", host="https://www.threads.net", client_id="nope",
              redirect_uri="http://127.0.0.1:1/", scope=READ_SCOPES, response_type="code")
    assert bad.status_code == 400


def test_scopes_granted_are_what_the_login_window_allowed(fake):
    fake.config.granted_scopes = "threads_basic"
    token = exchange(fake, authorize(fake)).json()["access_token"]
    assert fake.token_info(token)["scopes"] == "threads_basic"
    assert ask(fake, "/oauth/authorize", host="https://www.threads.net", client_id=fake.config.client_id,
               redirect_uri="http://127.0.0.1:1/", scope="threads_read_replies",
               response_type="code").status_code == 400          # threads_basic is always needed


def test_long_lived_exchange_and_refresh_rules(fake):
    short = exchange(fake, authorize(fake)).json()["access_token"]
    grant = {"grant_type": "th_exchange_token", "client_secret": fake.config.client_secret}
    assert error_of(ask(fake, "/access_token", short, **{**grant, "client_secret": "wrong"}))[0] == 101
    assert error_of(ask(fake, "/access_token", short, grant_type="ig_exchange_token",
                        client_secret=fake.config.client_secret))[0] == 100
    long = ask(fake, "/access_token", short, **grant).json()
    assert long["token_type"] == "bearer" and long["expires_in"] > 59 * DAY
    assert error_of(ask(fake, "/access_token", long["access_token"], **grant))[0] == 100   # not a short one

    refresh = {"grant_type": "th_refresh_token"}
    assert error_of(ask(fake, "/refresh_access_token", long["access_token"], **refresh))[0] == 190  # < 24 h old
    assert error_of(ask(fake, "/refresh_access_token", short, **refresh))[0] == 190                # short
    fake.advance(2 * DAY)
    fresh = ask(fake, "/refresh_access_token", long["access_token"], **refresh).json()
    assert fake.token_info(fresh["access_token"])["kind"] == "long"
    fake.advance(61 * DAY)
    assert error_of(ask(fake, "/refresh_access_token", fresh["access_token"], **refresh)) == (190, 463)
    assert error_of(ask(fake, "/me", fresh["access_token"])) == (190, 463)


def test_revoked_and_unknown_tokens(fake, token):
    assert error_of(ask(fake, "/me", "THQWJnot-a-token")) == (190, 467)
    fake.revoke_all()
    assert error_of(ask(fake, "/me", token)) == (190, 460)
    assert error_of(ask(fake, "/me"))[0] == 190


def test_debug_token_names_the_scopes(fake, token):
    data = ask(fake, "/debug_token", token, input_token=token).json()["data"]
    assert data["scopes"] == READ_SCOPES.split(",") and data["user_id"] == fake.user["id"]


# --------------------------------------------------------------------------- scopes and parameters


@pytest.mark.parametrize("code", [10, 200])
def test_each_endpoint_needs_its_scope(fake, code):
    fake.config.permission_code = code
    post = fake.newest_first()[0]["id"]
    basic = fake.issue_tokens("threads_basic")["access_token"]
    assert ask(fake, "/me/threads", basic).status_code == 200
    for path in ("/me/replies", f"/{post}/replies", f"/{post}/conversation"):
        assert error_of(ask(fake, path, basic))[0] == code
    for path, params in ((f"/{post}/insights", {"metric": "views"}), ("/me/threads_insights", {"metric": "views"})):
        assert error_of(ask(fake, path, basic, **params))[0] == code
    no_basic = fake.issue_tokens("threads_read_replies,threads_manage_insights")["access_token"]
    assert error_of(ask(fake, "/me", no_basic))[0] == code


def test_since_until_and_limit(fake, token):
    assert error_of(ask(fake, "/me/threads", token, since=API_EPOCH - 1))[0] == 100
    assert error_of(ask(fake, "/me/threads", token, since=API_EPOCH + 10, until=API_EPOCH + 10))[0] == 100
    assert error_of(ask(fake, "/me/threads", token, until=int(time.time()) + 7 * DAY))[0] == 100
    middle = sorted(p["timestamp"] for p in fake.posts)[4]
    found = ask(fake, "/me/threads", token, since=middle, fields="id").json()["data"]
    assert len(found) == len([p for p in fake.posts if p["timestamp"] >= middle])

    fake.config.max_limit = 3
    assert len(ask(fake, "/me/threads", token, limit=50).json()["data"]) == 3            # clamped
    fake.config.over_limit = "error"
    assert error_of(ask(fake, "/me/threads", token, limit=50))[0] == 100
    assert error_of(ask(fake, "/me/threads", token, limit="x"))[0] == 100


def test_paging_with_opaque_cursors_and_no_next_on_the_last_page(fake, token):
    seen, after, pages = [], None, 0
    while True:
        body = ask(fake, "/v1.0/me/threads", token, fields="id", limit=3, **({"after": after} if after else {})).json()
        pages += 1
        seen += [item["id"] for item in body["data"]]
        paging = body["paging"]
        if "next" not in paging:
            break
        assert token in paging["next"]                 # Graph repeats the token in paging.next
        after = paging["cursors"]["after"]
        assert fake.posts[0]["id"] not in after
    assert seen == [p["id"] for p in fake.newest_first()] and pages == 3
    assert error_of(ask(fake, "/me/threads", token, after="not-a-cursor"))[0] == 100


def test_no_follower_list_or_other_guessed_edge(fake, token):
    for path in ("/me/followers", "/me/following", f"/{fake.user['id']}/followers", "/me/likes"):
        assert error_of(ask(fake, path, token))[0] == 100


# --------------------------------------------------------------------------- fields


def test_field_projection_and_omission_rules(fake, token):
    fake_posts = {p["id"]: p for p in fake.posts}
    fields = "id,media_type,text,permalink,owner,children{id,media_type,media_url},media_url,thumbnail_url," \
             "quoted_post,reposted_post,timestamp"
    items = ask(fake, "/me/threads", token, fields=fields, limit=100).json()["data"]
    kinds = {item["media_type"] for item in items}
    assert {"TEXT_POST", "IMAGE", "VIDEO", "CAROUSEL_ALBUM", "REPOST_FACADE"} <= kinds
    for item in items:
        source = fake_posts[item["id"]]
        assert set(item) <= set(fields.replace("{id,media_type,media_url}", "").split(","))
        assert item["owner"] == {"id": fake.user["id"]}
        assert ("permalink" in item) == (not source["copyrighted"])
        assert ("children" in item) == (item["media_type"] == "CAROUSEL_ALBUM")
        assert ("media_url" in item) == (item["media_type"] in ("IMAGE", "VIDEO"))
        assert ("thumbnail_url" in item) == (item["media_type"] == "VIDEO")
        assert ("reposted_post" in item) == (item["media_type"] == "REPOST_FACADE")
        assert ("quoted_post" in item) == source["is_quote_post"]
        assert item["timestamp"].endswith("+0000")
    replies = ask(fake, "/me/replies", token, fields="id,owner,is_reply,root_post,replied_to,username").json()["data"]
    assert replies and all("owner" not in r and r["is_reply"] and r["username"] == fake.user["username"]
                           for r in replies)
    assert error_of(ask(fake, "/me/threads", token, fields="id,like_count"))[0] == 100
    assert error_of(ask(fake, "/me/threads", token, fields="id,children{id"))[0] == 100
    fake.config.timestamp_style = "Z"
    assert ask(fake, "/me/threads", token, fields="timestamp").json()["data"][0]["timestamp"].endswith("Z")


def test_replies_are_top_level_only_and_conversation_every_depth(fake, token):
    post = max(fake.posts, key=lambda p: len(fake.descendants_of(p["id"])) - len(fake.children_of(p["id"])))
    deep = fake.descendants_of(post["id"])
    top = fake.children_of(post["id"])
    assert len(deep) > len(top) > 0
    fields = "id,username,replied_to,root_post,has_replies,hide_status"
    listed = ask(fake, f"/{post['id']}/replies", token, fields=fields, limit=100).json()["data"]
    assert {r["id"] for r in listed} == {r["id"] for r in top}
    everything = ask(fake, f"/v1.0/{post['id']}/conversation", token, fields=fields, limit=100).json()["data"]
    assert {r["id"] for r in everything} == {r["id"] for r in deep}
    assert all(r["root_post"] == {"id": post["id"]} for r in everything)
    newest = ask(fake, f"/{post['id']}/conversation", token, fields="id,timestamp", reverse="true").json()["data"]
    assert [r["timestamp"] for r in newest] == sorted((r["timestamp"] for r in newest), reverse=True)

    fake.config.reply_edges = "replies"
    assert error_of(ask(fake, f"/{post['id']}/conversation", token))[0] == 100
    fake.config.reply_edges = "conversation"
    assert error_of(ask(fake, f"/{post['id']}/replies", token))[0] == 100


# --------------------------------------------------------------------------- insights


def test_insights_shapes(fake, token):
    post = next(p for p in fake.posts if p["media_type"] != "REPOST_FACADE")
    body = ask(fake, f"/{post['id']}/insights", token, metric="views,likes,replies,reposts,quotes,shares").json()
    values = {entry["name"]: entry["values"][0]["value"] for entry in body["data"]}
    assert values == {**post["counts"], "replies": fake.reply_count(post["id"])}
    assert error_of(ask(fake, f"/{post['id']}/insights", token, metric="impressions"))[0] == 100

    user = ask(fake, "/me/threads_insights", token, metric="views,likes,clicks,followers_count").json()["data"]
    by_name = {entry["name"]: entry for entry in user}
    assert isinstance(by_name["views"]["values"], list) and "end_time" in by_name["views"]["values"][0]
    assert "value" in by_name["likes"]["total_value"]
    assert by_name["followers_count"]["total_value"]["value"] == fake.config.followers
    assert sum(v["value"] for v in by_name["clicks"]["link_total_values"]) >= 0
    assert error_of(ask(fake, "/me/threads_insights", token, metric="follower_demographics"))[0] == 100
    assert error_of(ask(fake, "/me/threads_insights", token, metric="views", since=API_EPOCH - 5))[0] == 100


# --------------------------------------------------------------------------- CDN, usage, throttles


def test_cdn_links_are_signed_and_expire(fake, token):
    item = ask(fake, "/me/threads", token, fields="id,media_url", limit=100).json()["data"]
    url = next(i["media_url"] for i in item if "media_url" in i)
    assert "oe=" in url and "oh=" in url
    assert fake.handle(httpx.Request("GET", url)).status_code == 200
    tampered = url.replace("oh=00_", "oh=00_x")
    assert fake.handle(httpx.Request("GET", tampered)).status_code == 403
    fake.advance(fake.config.media_url_ttl + 10)
    assert fake.handle(httpx.Request("GET", url)).status_code == 403


@pytest.mark.parametrize("code,status", [(4, 400), (17, 403), (613, 429)])
def test_usage_headers_and_throttles(fake, token, code, status):
    fake.config.rate_limit, fake.config.throttle_code, fake.config.throttle_status = 4, code, status
    fake.config.retry_after = True
    answers = [ask(fake, "/me", token) for _ in range(5)]
    assert [a.status_code for a in answers[:4]] == [200] * 4
    usage = json.loads(answers[3].headers["x-app-usage"])
    assert usage["call_count"] == 100
    assert error_of(answers[4])[0] == code and answers[4].status_code == status
    assert int(answers[4].headers["retry-after"]) > 0
    regain = json.loads(answers[4].headers["x-business-use-case-usage"])[fake.user["id"]][0]
    assert regain["estimated_time_to_regain_access"] > 0
    fake.advance(3601)
    assert ask(fake, "/me", token).status_code == 200


def test_fail_rate_answers_transient_errors(token):
    fake = FakeThreads(FakeThreadsConfig(posts=2, seed=3, fail_rate=0.5), base_url=BASE)
    token = fake.issue_tokens()["access_token"]
    answers = [ask(fake, "/me", token) for _ in range(20)]
    failed = [a for a in answers if a.status_code == 500]
    assert failed and all(error_of(a)[0] == 2 and a.json()["error"]["is_transient"] for a in failed)


# --------------------------------------------------------------------------- world and simulator


def test_same_seed_same_world_and_world_changes():
    one, two = FakeThreads(FakeThreadsConfig(posts=6, seed=9)), FakeThreads(FakeThreadsConfig(posts=6, seed=9))
    assert one.posts == two.posts and one.replies == two.replies and one.user == two.user
    post = one.add_post("hello", "IMAGE")
    assert one.newest_first()[0] is post and one.children_of(post["id"]) == []
    reply = one.add_reply(post["id"], "hi there")
    assert one.reply_count(post["id"]) == 1 and reply["author"] in one.fans
    one.set_counts(post["id"], likes=5, views=50)
    assert post["counts"]["likes"] == 5
    one.delete_reply(reply["id"])
    one.delete_post(post["id"])
    assert post not in one.posts and reply["id"] not in one.replies


def test_write_export_matches_the_api_world(tmp_path):
    import zipfile

    from archiver_connectors.threads.sim.fake import main, write_matching_export

    fake = FakeThreads(FakeThreadsConfig(posts=6, seed=4, followers=5))
    path = write_matching_export(fake, tmp_path / "threads.zip")
    names = zipfile.ZipFile(path).namelist()
    assert "threads/threads_and_replies.json" in names and "threads/followers_1.json" in names
    posts = json.loads(zipfile.ZipFile(path).read("threads/threads_and_replies.json"))["text_post_app_text_posts"]
    stamps = sorted(item.get("creation_timestamp") or item["media"][0]["creation_timestamp"] for item in posts)
    expected = [p["timestamp"] for p in fake.posts if p["media_type"] != "REPOST_FACADE"]
    assert stamps == sorted(expected + [r["timestamp"] for r in fake.owner_replies()])
    inside = write_matching_export(fake, tmp_path / "instagram.zip", inside_instagram=True)
    assert any(n.startswith("your_instagram_activity/threads/") for n in zipfile.ZipFile(inside).namelist())
    with pytest.raises(SystemExit):
        main(["--help"])
