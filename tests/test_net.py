"""ApiClient request policy, Pacer and secret scrubbing, through httpx.MockTransport."""

from __future__ import annotations

import email.utils
import json
import logging
import time

import httpx
import pytest

from archiver.net import client as net
from archiver.net.client import (
    ApiClient,
    AuthExpired,
    Cancelled,
    NetError,
    Pacer,
    RetryPolicy,
    ScrubbingFilter,
    install_log_scrubbing,
    scrubber,
)

BASE = "https://api.example.test"


class FakeClock:
    """Time that moves only when someone sleeps; records every sleep."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now


class Script:
    """A MockTransport handler that plays a list of responses (or exceptions) in order."""

    def __init__(self, *steps) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


def ok(body=None, **headers) -> httpx.Response:
    return httpx.Response(200, json=body if body is not None else {"ok": True}, headers=headers)


def make_client(script: Script, clock: FakeClock | None = None, **kw) -> ApiClient:
    clock = clock or FakeClock()
    kw.setdefault("pacer", Pacer(clock=clock.monotonic, wall_clock=clock.wall))
    return ApiClient(BASE, transport=httpx.MockTransport(script), sleep=clock.sleep, **kw)


class FakeTokens:
    def __init__(self, token: str = "tok-one-aaaaaaaa", new_token: str = "tok-two-bbbbbbbb"):
        self.token = token
        self.new_token = new_token
        self.refreshes = 0
        scrubber.add(token, new_token)

    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def refresh(self) -> None:
        self.refreshes += 1
        self.token = self.new_token


# ------------------------------------------------------------------ Retry-After, backoff


def test_429_with_retry_after_waits_that_long():
    clock = FakeClock()
    script = Script(httpx.Response(429, headers={"Retry-After": "2"}), ok({"n": 1}))
    client = make_client(script, clock)
    assert client.get_json("/v2/x/") == {"n": 1}
    assert len(script.requests) == 2
    assert clock.sleeps == [pytest.approx(2.0)]


def test_retry_after_http_date_is_honoured():
    clock = FakeClock()
    # HTTP dates are compared with the real wall clock.
    in_30s = email.utils.formatdate(time.time() + 30, usegmt=True)
    script = Script(httpx.Response(503, headers={"Retry-After": in_30s}), ok())
    client = make_client(script, clock)
    client.get_json("/v2/x/")
    assert 28 <= clock.sleeps[0] <= 31


def test_retry_after_zero_is_not_a_tight_loop():
    clock = FakeClock()
    policy = RetryPolicy(attempts=5, min_retry_after=0.5)
    script = Script(httpx.Response(429, headers={"Retry-After": "0"}))
    client = make_client(script, clock, retry=policy)
    with pytest.raises(NetError) as caught:
        client.get_json("/v2/x/")
    assert caught.value.kind == "rate_limited"
    assert caught.value.status == 429
    assert len(script.requests) == 5  # bounded
    assert len(clock.sleeps) == 4
    assert all(s >= 0.5 for s in clock.sleeps)
    assert clock.sleeps == sorted(clock.sleeps) and clock.sleeps[-1] > clock.sleeps[0]


def test_429_without_header_backs_off_exponentially():
    clock = FakeClock()
    policy = RetryPolicy(attempts=4, base_delay=1.0, max_delay=120)
    script = Script(httpx.Response(429), httpx.Response(429), httpx.Response(429), ok())
    client = make_client(script, clock, retry=policy)
    client.get_json("/v2/x/")
    assert len(clock.sleeps) == 3
    # 1, 2, 4 seconds plus up to base_delay of jitter
    for expected, slept in zip([1, 2, 4], clock.sleeps):
        assert expected <= slept <= expected + 1.0


def test_server_error_burst_then_success():
    clock = FakeClock()
    script = Script(httpx.Response(500), httpx.Response(502), httpx.Response(503), ok({"v": 3}))
    client = make_client(script, clock)
    assert client.get_json("/v2/x/") == {"v": 3}
    assert len(script.requests) == 4


def test_server_errors_give_up_after_attempts():
    script = Script(httpx.Response(500))
    client = make_client(script, retry=RetryPolicy(attempts=3))
    with pytest.raises(NetError) as caught:
        client.get_json("/v2/x/")
    assert caught.value.kind == "server"
    assert len(script.requests) == 3


def test_total_cap_stops_before_a_wait_that_would_exceed_it():
    clock = FakeClock()
    script = Script(httpx.Response(429, headers={"Retry-After": "600"}))
    client = make_client(script, clock, retry=RetryPolicy(total_cap=300))
    with pytest.raises(NetError):
        client.get_json("/v2/x/")
    assert len(script.requests) == 1
    assert clock.sleeps == []


def test_timeout_is_retried():
    script = Script(httpx.ReadTimeout("slow"), ok({"fine": 1}))
    client = make_client(script)
    assert client.get_json("/v2/x/") == {"fine": 1}
    assert len(script.requests) == 2


def test_connection_error_gives_transport_kind():
    script = Script(httpx.ConnectError("refused"))
    client = make_client(script, retry=RetryPolicy(attempts=2))
    with pytest.raises(NetError) as caught:
        client.get_json("/v2/x/")
    assert caught.value.kind == "transport"
    assert len(script.requests) == 2


def test_non_idempotent_post_is_not_retried():
    script = Script(httpx.Response(503), ok())
    client = make_client(script)
    with pytest.raises(NetError) as caught:
        client.post_json("/v2/user/data/add/", json={"a": 1})
    assert caught.value.kind == "server"
    assert len(script.requests) == 1


def test_post_marked_idempotent_is_retried():
    script = Script(httpx.Response(503), ok({"videos": []}))
    client = make_client(script)
    assert client.post_json("/v2/video/list/", json={}, idempotent=True) == {"videos": []}
    assert len(script.requests) == 2


def test_plain_4xx_is_returned_for_the_connector_to_map():
    envelope = {"error": {"code": "invalid_params"}}
    script = Script(httpx.Response(400, json=envelope))
    client = make_client(script)
    response = client.request("GET", "/v2/x/")
    assert response.status_code == 400
    assert client.get_json("/v2/x/") == envelope
    assert len(script.requests) == 2  # no retries


def test_truncated_json_is_retried_when_expecting_json():
    script = Script(httpx.Response(200, content=b'{"data": {"vid'), ok({"data": {}}))
    client = make_client(script)
    assert client.get_json("/v2/x/") == {"data": {}}
    assert len(script.requests) == 2


def test_truncated_json_not_retried_without_expect_json():
    script = Script(httpx.Response(200, content=b'{"data": {"vid'), ok())
    client = make_client(script)
    assert client.request("GET", "/v2/x/").content == b'{"data": {"vid'
    assert len(script.requests) == 1


# ------------------------------------------------------------------ auth


def test_auth_error_refreshes_once_and_retries_with_new_token():
    tokens = FakeTokens()
    script = Script(httpx.Response(401), ok({"me": 1}))
    client = make_client(script, tokens=tokens)
    assert client.get_json("/v2/user/info/") == {"me": 1}
    assert tokens.refreshes == 1
    assert script.requests[0].headers["Authorization"] == "Bearer tok-one-aaaaaaaa"
    assert script.requests[1].headers["Authorization"] == "Bearer tok-two-bbbbbbbb"


def test_second_auth_error_raises_auth():
    tokens = FakeTokens()
    script = Script(httpx.Response(401))
    client = make_client(script, tokens=tokens)
    with pytest.raises(NetError) as caught:
        client.get_json("/v2/user/info/")
    assert caught.value.kind == "auth"
    assert tokens.refreshes == 1
    assert len(script.requests) == 2


def test_auth_check_may_read_the_envelope_and_raise_auth_expired():
    def tiktok_auth_check(response: httpx.Response) -> bool:
        if response.json().get("error", {}).get("code") == "access_token_invalid":
            raise AuthExpired(status=response.status_code)
        return False

    tokens = FakeTokens()
    script = Script(httpx.Response(200, json={"error": {"code": "access_token_invalid"}}),
                    ok({"error": {"code": "ok"}}))
    client = make_client(script, tokens=tokens, is_auth_error=tiktok_auth_check)
    assert client.get_json("/v2/user/info/") == {"error": {"code": "ok"}}
    assert tokens.refreshes == 1


def test_unauthenticated_request_sends_no_token():
    tokens = FakeTokens()
    script = Script(ok())
    client = make_client(script, tokens=tokens)
    client.request("GET", "/public", authenticated=False)
    assert "Authorization" not in script.requests[0].headers
    assert script.requests[0].headers["User-Agent"].startswith("archiver/")


# ------------------------------------------------------------------ secrets


@pytest.fixture
def process_wide_log_scrubbing(monkeypatch):
    """install_log_scrubbing() for one test; the previous record factory comes back after."""
    monkeypatch.setattr(net, "_record_factory_installed", False)
    previous = logging.getLogRecordFactory()
    install_log_scrubbing()
    yield
    logging.setLogRecordFactory(previous)


def test_secrets_never_reach_exceptions_or_logs(caplog, process_wide_log_scrubbing):
    secret = "s3cr3t-token-zzzz!9"
    scrubber.add(secret)
    caplog.set_level(logging.DEBUG)

    class Tokens(FakeTokens):
        def header(self):
            return {"Authorization": f"Bearer {secret}"}

    script = Script(httpx.Response(500), httpx.Response(401))
    client = make_client(script, tokens=Tokens(), retry=RetryPolicy(attempts=2))
    url = f"/v2/list/{secret}/?access_token={secret}&cursor=1"
    with pytest.raises(NetError) as caught:
        client.get_json(url)
    logging.getLogger("archiver.sync.runner").warning("token was %s", secret)
    try:
        raise RuntimeError(f"boom {secret}")
    except RuntimeError:
        logging.getLogger("archiver.sync.runner").exception("failed")
    text = caplog.text + str(caught.value) + repr(caught.value)
    assert caplog.records  # something was logged, so the check means something
    assert secret not in text
    assert "s3cr3t-token-zzzz%219" not in text  # URL-encoded form too
    assert "access_token" not in text  # log lines name the path, never the query
    assert "[secret]" in text


def test_scrubber_helpers():
    scrubber.add("abc-secret-123", None, "")
    assert scrubber.text("x abc-secret-123 y") == "x [secret] y"
    assert scrubber.obj({"k": ["abc-secret-123", 1, None], "abc-secret-123": True}) == {
        "k": ["[secret]", 1, None], "[secret]": True
    }
    assert (
        scrubber.url("https://u:p@cdn.test/a/b.jpg?x-signature=abc&token=abc-secret-123#f")
        == "https://cdn.test/a/b.jpg"
    )
    assert scrubber.text("nothing to hide") == "nothing to hide"


def test_scrubbing_filter_on_a_handler():
    records: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    scrubber.add("handler-secret-42")
    logger = logging.getLogger("test_net_handler_scrub")
    logger.propagate = False
    handler = ListHandler()
    logger.addHandler(handler)
    install_log_scrubbing(logger)
    assert any(isinstance(f, ScrubbingFilter) for f in handler.filters)
    logger.warning("GET %s", "https://x.test/p?sig=handler-secret-42")
    assert records == ["GET https://x.test/p"]


# ------------------------------------------------------------------ pacing


def test_pacer_sleeps_until_reset_when_remaining_is_zero():
    clock = FakeClock()
    script = Script(
        ok(**{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(clock.now) + 40)}),
        ok(),
    )
    client = make_client(script, clock)
    client.get_json("/a")
    assert clock.sleeps == []
    client.get_json("/b")
    assert clock.sleeps == [pytest.approx(40, abs=1)]


@pytest.mark.parametrize(
    "headers",
    [
        {"RateLimit-Remaining": "0", "RateLimit-Reset": "15"},  # delta seconds
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "2023-11-14T22:13:35Z"},  # ISO
    ],
)
def test_pacer_understands_reset_formats(headers):
    clock = FakeClock(start=1_700_000_000.0)  # 2023-11-14T22:13:20Z
    pacer = Pacer(clock=clock.monotonic, wall_clock=clock.wall)
    pacer.observe("api.test", httpx.Headers(headers))
    assert pacer.delay_for("api.test") == pytest.approx(15, abs=0.01)
    assert pacer.delay_for("other.test") == 0


def test_pacer_ignores_remaining_above_zero():
    clock = FakeClock()
    pacer = Pacer(clock=clock.monotonic, wall_clock=clock.wall)
    pacer.observe("api.test", httpx.Headers({"X-RateLimit-Remaining": "5",
                                             "X-RateLimit-Reset": "60"}))
    assert pacer.delay_for("api.test") == 0


def test_pacer_min_interval():
    clock = FakeClock()
    script = Script(ok())
    client = make_client(script, clock, pacer=Pacer(requests_per_minute=30,
                                                    clock=clock.monotonic,
                                                    wall_clock=clock.wall))
    for _ in range(3):
        client.get_json("/a")
    assert clock.sleeps == [pytest.approx(2.0), pytest.approx(2.0)]


# ------------------------------------------------------------------ cancellation


def test_cancel_stops_during_a_long_retry_after():
    clock = FakeClock()
    script = Script(httpx.Response(429, headers={"Retry-After": "600"}), ok())
    client = make_client(script, clock, retry=RetryPolicy(total_cap=3600),
                         cancel=lambda: clock.now - 1_700_000_000.0 >= 5)
    with pytest.raises(Cancelled):
        client.get_json("/a")
    assert len(script.requests) == 1
    assert 5 <= sum(clock.sleeps) <= 6  # noticed within about a second


def test_cancel_before_first_attempt_sends_nothing():
    script = Script(ok())
    client = make_client(script, cancel=lambda: True)
    with pytest.raises(Cancelled):
        client.get_json("/a")
    assert script.requests == []


def test_stream_sends_no_auth_by_default_and_retries_opening():
    tokens = FakeTokens()
    script = Script(httpx.Response(503), httpx.Response(200, content=b"bytes!"))
    client = make_client(script, tokens=tokens)
    with client.stream("GET", "https://cdn.test/v.mp4?sig=1") as response:
        assert response.read() == b"bytes!"
    assert len(script.requests) == 2
    assert all("Authorization" not in r.headers for r in script.requests)


def test_json_body_is_sent():
    script = Script(ok())
    client = make_client(script)
    client.post_json("/v2/video/list/", json={"max_count": 20}, idempotent=True)
    assert json.loads(script.requests[0].content) == {"max_count": 20}
