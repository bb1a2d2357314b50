"""The OAuth 2.0 grants the core does once for every platform that follows the RFC
(archiver.net.tokens.OAuth2Tokens, archiver.net.oauth.token_request), checked with a
made-up platform: what the form holds, what is stored, when the person must authorize
again, and what a broken answer means. The platforms' own tests (test_tiktok_sync,
test_youtube_api …) check the same through their fakes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
import pytest

from archiver.net.client import NetError
from archiver.net.tokens import OAuth2Tokens
from archiver.secrets import SecretStoreError, open_secret_store

TOKEN_URL = "https://auth.example/token"


class ExampleTokens(OAuth2Tokens):
    platform, title = "example", "Example"
    server = "Example"
    client_id_key = "client_key"          # named otherwise than RFC 6749, like some platforms do
    default_expires_in = 600
    clock = 1_000_000.0

    def now(self) -> float:
        return self.clock

    def reauth_message(self, detail: str = "") -> str:
        return f"run `archiver auth example --account {self.account}` again ({detail})"


class Endpoint:
    """The token endpoint: answers in turn, and every form it was sent."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.forms: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == TOKEN_URL and request.method == "POST"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        self.forms.append(dict(parse_qsl(request.content.decode())))
        answer = self.answers.pop(0)
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)


def tokens_with(endpoint, record: dict | None = None, *, credentials: bool = True) -> ExampleTokens:
    secrets = open_secret_store("memory")
    if credentials:
        secrets.set("example", "main", "client_key", "the-key")
        secrets.set("example", "main", "client_secret", "the-secret")
    if record is not None:
        secrets.set("example", "main", "tokens", json.dumps(record))
    return ExampleTokens(secrets, "main", TOKEN_URL, httpx.Client(transport=httpx.MockTransport(endpoint)))


def stored(tokens: ExampleTokens) -> dict:
    return json.loads(tokens.secrets.get("example", "main", "tokens"))


HELD = {"access_token": "a1", "access_expires_at": 1_000_000.0 - 1, "refresh_token": "r1", "scope": "read"}


def test_a_refresh_sends_the_refresh_grant_and_stores_a_rotated_refresh_token_before_it_is_used():
    endpoint = Endpoint({"access_token": "a2", "refresh_token": "r2", "expires_in": 3600})
    tokens = tokens_with(endpoint, HELD)

    assert tokens.header() == {"Authorization": "Bearer a2"}     # expired: refreshed first

    assert endpoint.forms == [{"client_key": "the-key", "client_secret": "the-secret",
                               "grant_type": "refresh_token", "refresh_token": "r1"}]
    assert stored(tokens) == {"access_token": "a2", "access_expires_at": 1_000_000.0 + 3600,
                              "refresh_token": "r2", "scope": "read"}   # no scope in the answer: the one granted


def test_a_refresh_answer_without_a_refresh_token_keeps_the_one_held_and_the_lifetime_left_unsaid_is_the_platforms():
    endpoint = Endpoint({"access_token": "a2", "scope": "read write"})
    tokens = tokens_with(endpoint, HELD)

    tokens.refresh()

    assert stored(tokens) == {"access_token": "a2", "access_expires_at": 1_000_000.0 + 600,
                              "refresh_token": "r1", "scope": "read write"}


def test_a_token_far_from_expiry_is_not_refreshed():
    endpoint = Endpoint()
    tokens = tokens_with(endpoint, {**HELD, "access_expires_at": 1_000_000.0 + 3600})
    assert tokens.header() == {"Authorization": "Bearer a1"}
    assert endpoint.forms == []


@pytest.mark.parametrize("error", ["invalid_grant", "invalid_client", "unauthorized_client"])
def test_a_grant_the_server_no_longer_knows_means_authorizing_again(error):
    endpoint = Endpoint(httpx.Response(400, json={"error": error, "error_description": "Token revoked."}))
    tokens = tokens_with(endpoint, HELD)

    with pytest.raises(NetError) as refused:
        tokens.header()

    assert refused.value.kind == "auth"
    assert str(refused.value) == f"run `archiver auth example --account main` again ({error}: Token revoked.)"
    assert stored(tokens) == HELD


def test_another_oauth_error_of_a_refresh_is_the_servers_fault_and_changes_nothing():
    endpoint = Endpoint({"error": "temporarily_unavailable", "error_description": "try later"})
    tokens = tokens_with(endpoint, HELD)
    with pytest.raises(NetError) as failed:
        tokens.refresh()
    assert failed.value.kind == "server"
    assert str(failed.value) == "Example token refresh failed: temporarily_unavailable: try later"
    assert stored(tokens) == HELD


@pytest.mark.parametrize("record, detail", [
    ({**HELD, "refresh_token": None}, "no refresh token stored"),
    ({**HELD, "refresh_expires_at": 1_000_000.0 - 5}, "the refresh token has expired"),
])
def test_a_refresh_token_known_to_be_gone_is_not_sent(record, detail):
    endpoint = Endpoint()
    tokens = tokens_with(endpoint, record)
    with pytest.raises(NetError) as refused:
        tokens.header()
    assert refused.value.kind == "auth" and detail in str(refused.value)
    assert endpoint.forms == []


def test_a_refresh_without_the_apps_credentials_says_how_to_enter_them():
    endpoint = Endpoint()
    tokens = tokens_with(endpoint, HELD, credentials=False)
    with pytest.raises(SecretStoreError) as missing:
        tokens.refresh()
    assert "client_key" in str(missing.value)
    assert "run `archiver auth example --account main` to enter your app's client key" in str(missing.value)
    assert endpoint.forms == []


@pytest.mark.parametrize("answer, kind, refusal", [
    (httpx.Response(502, text="<html>Bad gateway</html>"), "server", "auth"),
    (httpx.Response(403, text="<html>Forbidden</html>"), "server", "server"),
    (httpx.Response(403, text="<html>Forbidden</html>"), "auth", "auth"),
    (httpx.Response(503, json={"message": "down"}), "server", "server"),
    (httpx.Response(200, json=["not", "an", "object"]), "bad_response", "server"),
])
def test_a_token_answer_that_is_no_oauth_answer_is_a_net_error_of_its_kind(answer, kind, refusal):
    tokens = tokens_with(Endpoint(answer), HELD)
    tokens.refusal_without_json = refusal
    with pytest.raises(NetError) as failed:
        tokens.refresh()
    assert failed.value.kind == kind and str(failed.value).startswith("Example token endpoint")
    assert stored(tokens) == HELD


def test_an_unreachable_token_endpoint_is_a_transport_error():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    tokens = tokens_with(refuse, HELD)
    with pytest.raises(NetError) as failed:
        tokens.refresh()
    assert failed.value.kind == "transport" and "Example token endpoint unreachable" in str(failed.value)


def test_an_empty_error_member_is_no_error():
    tokens = tokens_with(Endpoint({"error": "", "access_token": "a2", "refresh_token": "r2"}), HELD)
    tokens.refresh()
    assert stored(tokens)["access_token"] == "a2"


def test_authorize_sends_the_person_with_a_pkce_challenge_and_exchanges_the_code_with_its_verifier():
    endpoint = Endpoint({"access_token": "a1", "refresh_token": "r1", "expires_in": 60, "scope": "read"})
    tokens = tokens_with(endpoint)
    sent_to = []

    def authorize_url(redirect_uri: str, state: str, challenge: str) -> str:
        return "https://auth.example/authorize?" + urlencode(
            {"redirect_uri": redirect_uri, "state": state, "code_challenge": challenge})

    def browser(url: str) -> None:   # the platform approves and sends the browser back
        query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
        sent_to.append(query)
        httpx.get(query["redirect_uri"], params={"code": "the+code", "state": query["state"]}, trust_env=False)

    answer = tokens.authorize(authorize_url, client_id="the-key", client_secret="the-secret",
                              open_browser=browser, echo=lambda *_: None, timeout=10)

    assert answer["access_token"] == "a1"
    assert tokens.secrets.get("example", "main", "tokens") is None   # stored only when the caller says so
    [form] = endpoint.forms
    assert form["grant_type"] == "authorization_code" and form["code"] == "the+code"
    assert form["client_key"] == "the-key" and form["client_secret"] == "the-secret"
    assert form["redirect_uri"] == sent_to[0]["redirect_uri"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(form["code_verifier"].encode()).digest()).rstrip(b"=")
    assert sent_to[0]["code_challenge"] == challenge.decode()

    tokens.store(answer)
    assert stored(tokens) == {"access_token": "a1", "access_expires_at": 1_000_000.0 + 60, "refresh_token": "r1",
                              "scope": "read"}
