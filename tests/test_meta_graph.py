"""The Graph mechanics Instagram, Facebook and Threads share: the client side
(archiver_connectors.meta.graph) and the fake side (archiver_connectors.meta.sim.graph)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from archiver.net.client import NetError
from archiver_connectors.meta import graph
from archiver_connectors.meta.graph import (
    GraphApi,
    LongLivedTokens,
    error_class,
    exchange_code,
    next_cursor,
    scrub_token_url,
    scrubbed_payload,
    usage_of,
)
from archiver_connectors.meta.sim.graph import (
    CodeRefused,
    CursorPaging,
    GraphError,
    SignedCdn,
    TokenStore,
    UsageWindow,
    error_response,
    parse_fields,
)

BASE = "http://127.0.0.1:0"


class Clock:
    def __init__(self, start: float = 1_800_000_000.0):
        self.t = start

    def __call__(self) -> float:
        return self.t


# --------------------------------------------------------------------------- usage headers


def test_usage_of_reads_all_three_headers_and_the_page_keyed_business_form():
    assert usage_of(httpx.Headers({"X-App-Usage": json.dumps({"call_count": 80, "total_time": 3})})) == (80, 0)
    assert usage_of(httpx.Headers({"X-Page-Usage": json.dumps(
        {"call_count": 5, "total_cputime": 91, "total_time": 2})})) == (91, 0)
    page_keyed = {"112233": [{"type": "pages", "call_count": 97, "total_cputime": 10, "total_time": 12,
                              "estimated_time_to_regain_access": 7}],
                  "445566": [{"type": "pages", "call_count": 20, "estimated_time_to_regain_access": 0}]}
    assert usage_of(httpx.Headers({"X-Business-Use-Case-Usage": json.dumps(page_keyed)})) == (97, 7)
    # All three at once: the highest share and the longest wait win; junk is ignored.
    mixed = httpx.Headers({"X-App-Usage": json.dumps({"call_count": 10}),
                           "X-Page-Usage": json.dumps({"total_time": 60}),
                           "X-Business-Use-Case-Usage": json.dumps({"1": [{"type": "instagram", "call_count": 40}]})})
    assert usage_of(mixed) == (60, 0)
    assert usage_of(httpx.Headers({"X-App-Usage": "{not json", "X-Page-Usage": "[]"})) == (0, 0)


def test_the_fake_usage_window_emits_headers_the_client_reads():
    clock = Clock()
    window = UsageWindow(clock, limit=4, window=3600)
    for _ in range(3):
        window.hit()
    headers = httpx.Headers(window.headers(app=True, business_id="9", business_type="pages", page=True))
    assert json.loads(headers["x-business-use-case-usage"])["9"][0]["type"] == "pages"
    assert usage_of(headers) == (75, 0) and not window.full()
    window.hit()
    assert window.full() and usage_of(httpx.Headers(window.headers(business_id="9")))[1] == 60
    clock.t += 3601      # the rolling window moves on with the fake clock
    assert not window.full() and window.percent() == 0


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("code,subcode,expected", [
    (190, 463, "auth"), (190, None, "auth"), (463, None, "auth"),
    (4, None, "throttle"), (17, None, "throttle"), (32, None, "throttle"), (613, None, "throttle"),
    (80001, None, "throttle"), (80002, None, "throttle"),
    (10, None, "permission"), (200, None, "permission"),
    (100, 33, "not_found"), (100, None, None),
    (1, None, "transient"), (2, None, "transient"),
    (368, None, "blocked"),
])
def test_error_classes(code, subcode, expected):
    assert error_class(code, subcode) == expected


def graph_api(handler, clock=None) -> tuple[GraphApi, list[float]]:
    sleeps: list[float] = []

    class Tokens:
        account, platform = "main", "facebook"

        def access_token(self):
            return "TOKEN-SECRET"

    class Api(GraphApi):
        title = "Facebook"

    return Api(BASE, Tokens(), transport=httpx.MockTransport(handler), sleep=sleeps.append), sleeps


def envelope(code, subcode=None, status=400, headers=None):
    error = {"message": f"error {code}", "type": "OAuthException", "code": code, "fbtrace_id": "x"}
    if subcode:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers or {})


@pytest.mark.parametrize("code,subcode,kind", [
    (190, 463, "auth"), (10, None, "auth"), (200, None, "auth"), (100, 33, "gone"), (100, None, "client")])
def test_graph_api_maps_codes_to_kinds(code, subcode, kind):
    api, _ = graph_api(lambda request: envelope(code, subcode))
    with pytest.raises(NetError) as raised:
        api.get("/1234_5678/comments")
    assert raised.value.kind == kind
    assert "/{id}/comments" in str(raised.value) and "TOKEN-SECRET" not in str(raised.value)


def test_graph_api_waits_out_throttles_and_retries_transient_errors():
    answers = [envelope(32, headers={"X-Business-Use-Case-Usage": json.dumps(
                   {"1": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 2}]})}),
               envelope(368), envelope(2, status=500), httpx.Response(200, json={"id": "1"})]
    api, sleeps = graph_api(lambda request: answers.pop(0))
    assert api.get("/me") == {"id": "1"}
    assert sleeps and sum(sleeps) >= 120


def test_graph_api_stops_on_a_throttle_longer_than_the_cap():
    api, _ = graph_api(lambda request: envelope(80001, headers={"X-App-Usage": json.dumps(
        {"call_count": 100, "estimated_time_to_regain_access": 60})}))
    with pytest.raises(NetError) as raised:
        api.get("/me/posts")
    assert raised.value.kind == "rate_limited"


# --------------------------------------------------------------------------- paging and scrubbing


def test_paging_urls_and_payloads_lose_the_token():
    url = "https://graph.facebook.com/v23.0/1/feed?access_token=EAAB-secret&limit=25&after=QVFI&appsecret_proof=p"
    scrubbed = scrub_token_url(url)
    assert "secret" not in scrubbed and "appsecret_proof" not in scrubbed
    assert parse_qs(urlsplit(scrubbed).query) == {"limit": ["25"], "after": ["QVFI"]}
    body = {"id": "1", "link": url, "picture": "https://cdn.example/x.jpg?oh=sig&oe=ABC",
            "comments": {"data": [{"id": "2"}], "paging": {"next": url}}}
    kept = scrubbed_payload(body, ("picture",))
    assert "secret" not in json.dumps(kept) and "oh=" not in json.dumps(kept)
    assert kept["comments"] == {"data": [{"id": "2"}]}
    assert next_cursor({"paging": {"cursors": {"after": "A"}, "next": url}}) == "A"
    assert next_cursor({"paging": {"next": url}}) == "QVFI"
    assert next_cursor({"paging": {"cursors": {"after": "A"}}}) is None   # no next: last page


def test_fake_paging_carries_the_token_in_next_and_ends_without_it():
    paging = CursorPaging(default_limit=2, max_limit=3)
    items = [{"id": str(i), "timestamp": 100 + i} for i in range(5)]
    seen, params = [], {"fields": "id"}
    while True:
        body = paging.page(params, items, dict, base_url=BASE, edge="/1/feed", token="TKN")
        seen += [i["id"] for i in body["data"]]
        if "next" not in body["paging"]:
            break
        query = parse_qs(urlsplit(body["paging"]["next"]).query)
        assert query["access_token"] == ["TKN"] and body["paging"]["cursors"]["after"] == query["after"][0]
        params = {"fields": "id", "after": next_cursor(body)}
    assert seen == ["4", "3", "2", "1", "0"]
    with pytest.raises(GraphError):
        paging.page({"limit": "4"}, items, dict, base_url=BASE, edge="/1/feed", token="TKN")
    with pytest.raises(GraphError):
        paging.page({"after": "bogus"}, items, dict, base_url=BASE, edge="/1/feed", token="TKN")


def test_error_envelope():
    response = error_response(GraphError(200, "(#200) Permissions error", status=403), error_type="GraphMethodException")
    error = response.json()["error"]
    assert response.status_code == 403 and error["type"] == "GraphMethodException" and error["code"] == 200
    assert "error_subcode" not in error and error["fbtrace_id"]
    assert error_response(GraphError(190, "expired", 463)).json()["error"]["error_subcode"] == 463
    assert graph.graph_error_of(response.json()) == (200, None, "(#200) Permissions error")


# --------------------------------------------------------------------------- fake CDN and tokens


def test_fake_cdn_refuses_expired_and_tampered_links():
    clock = Clock()
    cdn = SignedCdn(b"secret", clock, ttl=600, body=lambda kind, key: (key.encode(), "image/png"))
    url = cdn.url(BASE, "image", "42")
    assert "oe=" in url and "oh=" in url
    assert cdn.handle(httpx.Request("GET", url)).status_code == 200
    assert cdn.handle(httpx.Request("GET", url.replace("oh=00_", "oh=01_"))).status_code == 403
    clock.t += 601
    assert cdn.handle(httpx.Request("GET", url)).status_code == 403
    assert cdn.handle(httpx.Request("GET", cdn.url(BASE, "image", "42"))).status_code == 200


def test_fake_token_store_codes_and_expiry():
    clock = Clock()
    store = TokenStore(clock, prefix="EAAB")
    code = store.new_code("http://127.0.0.1:1/cb", "pages_show_list")
    with pytest.raises(CodeRefused):
        store.take_code(code, "http://127.0.0.1:2/cb")
    assert store.take_code(code, "http://127.0.0.1:1/cb")["scopes"] == "pages_show_list"
    with pytest.raises(CodeRefused):
        store.take_code(code, "http://127.0.0.1:1/cb")        # single use
    stale = store.new_code("http://x/cb", "s")
    clock.t += 3601
    with pytest.raises(CodeRefused):
        store.take_code(stale, "http://x/cb")
    short, long = store.mint("short", "a"), store.mint("long", "a,b")
    clock.t += 3601
    with pytest.raises(GraphError) as expired:
        store.record(short)
    assert (expired.value.code, expired.value.subcode) == (190, 463)
    assert store.record(long)["scopes"] == "a,b"
    store.revoke_all()
    with pytest.raises(GraphError) as revoked:
        store.record(long)
    assert revoked.value.subcode == 460


# --------------------------------------------------------------------------- fields


def test_parse_fields_with_modifiers():
    fields = parse_fields("id,message,comments.summary(true).limit(0),"
                          "reactions.summary(total_count).limit(0),attachments{media,subattachments.limit(5){url}}")
    assert fields == {"id": None, "message": None, "comments": None, "reactions": None,
                      "attachments": {"media": None, "subattachments": {"url": None}}}
    assert fields.modifiers == {"comments": {"summary": "true", "limit": "0"},
                                "reactions": {"summary": "total_count", "limit": "0"}}
    assert fields.modifier("comments", "limit") == "0" and fields.modifier("id", "limit") is None
    assert fields["attachments"].modifiers == {"subattachments": {"limit": "5"}}
    for bad in ("id,{", "id}", "a{b", "comments.summary(true", "comments.(x)", "Bad"):
        with pytest.raises(ValueError):
            parse_fields(bad)
    with pytest.raises(ValueError):
        parse_fields("comments.limit(0)", allow_modifiers=False)


# --------------------------------------------------------------------------- auth helpers and tokens


def test_exchange_code_accepts_both_shapes_and_makes_the_user_id_text():
    for body in ({"access_token": "S1", "user_id": 1784100001}, {"data": [{"access_token": "S1", "user_id": "1784100001",
                                                                            "permissions": ["a", "b"]}]}):
        with httpx.Client(transport=httpx.MockTransport(lambda r, b=body: httpx.Response(200, json=b))) as client:
            token, user_id, _ = exchange_code(client, f"{BASE}/oauth/access_token", {"code": "c"})
        assert (token, user_id) == ("S1", "1784100001")
    assert graph.authorize_url("https://www.facebook.com", client_id="1", scopes="a", redirect_uri="r", state="s",
                               path="/v23.0/dialog/oauth").startswith("https://www.facebook.com/v23.0/dialog/oauth?")


def test_long_lived_tokens_refresh_with_the_configured_grant():
    from archiver.secrets import open_secret_store

    clock = Clock()
    asked: list[dict] = []

    def handler(request):
        asked.append(dict(request.url.params))
        return httpx.Response(200, json={"access_token": "NEW", "expires_in": 60 * 86400})

    class ThreadsLike(LongLivedTokens):
        platform, title, refresh_grant = "threads", "Threads", "th_refresh_token"

    tokens = ThreadsLike(open_secret_store("memory"), "main", BASE, httpx.Client(transport=httpx.MockTransport(handler)), clock=clock)
    tokens.store({"access_token": "OLD", "expires_in": 60 * 86400}, user_id="1")
    clock.t += 3600
    assert tokens.access_token() == "OLD" and not asked          # too young, too much time left
    clock.t += 20 * 86400
    assert tokens.access_token() == "NEW"
    assert asked == [{"grant_type": "th_refresh_token", "access_token": "OLD"}]
    clock.t += 61 * 86400
    with pytest.raises(NetError) as expired:
        tokens.access_token()
    assert expired.value.kind == "auth" and "archiver auth threads" in str(expired.value)

