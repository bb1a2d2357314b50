"""OAuth 2.0 authorization code + PKCE through a loopback redirect (RFC 8252 §7.3), and
the requests to a token endpoint.

Shared by every platform connector. This module gets the authorization *code* and posts
token requests (``token_request``); the grants themselves (code exchange, refresh) and
the stored record are ``archiver.net.tokens.OAuth2Tokens``', what a platform names
differently is its subclass's.

    verifier, challenge = pkce_pair()
    result = run_loopback_flow(
        lambda redirect_uri, state: authorize_url(redirect_uri, state, challenge)
    )
    answer = tokens.exchange_code(result.code, result.redirect_uri, verifier, client_id, client_secret)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import http.server
import ipaddress
import os
import queue
import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["LoopbackResult", "OAuthError", "pkce_challenge", "pkce_pair", "run_loopback_flow", "token_request"]


class OAuthError(Exception):
    """The authorization did not complete; the message says why and what to do."""


def token_request(client, url: str, form: dict[str, str], *, server: str,
                  refusal_without_json: str = "server") -> dict[str, Any]:
    """POST a token endpoint, form-encoded (RFC 6749 §4.1.3 and §6), and return its JSON
    object. An OAuth error (§5.2, ``{"error", "error_description"}``) is returned like any
    answer, for the caller to judge: some servers send it with a 200, so the body decides,
    not the status. Never retried: a code, and a rotating refresh token, dies at first use.

    ``server`` names the endpoint in messages ("Google"). Raises NetError: "transport"
    when unreachable; "server" for a 5xx without an OAuth error; for an answer that is no
    JSON, "server" with a 5xx and ``refusal_without_json`` with any other status."""
    import httpx

    from archiver.net.client import NetError

    try:
        response = client.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.TransportError as error:
        raise NetError(f"{server} token endpoint unreachable: {type(error).__name__}", kind="transport") from None
    try:
        body = response.json()
    except ValueError:
        raise NetError(f"{server} token endpoint: HTTP {response.status_code} without JSON",
                       kind="server" if response.status_code >= 500 else refusal_without_json) from None
    if not isinstance(body, dict):
        raise NetError(f"{server} token endpoint: unexpected answer", kind="bad_response")
    if response.status_code >= 500 and "error" not in body:
        raise NetError(f"{server} token endpoint: HTTP {response.status_code}", kind="server")
    if "error" in body and not body["error"]:
        body.pop("error")  # some answers carry an empty error member
    return body


def app_credentials(secrets, platform: str, account: str, given: dict[str, str | None], *,
                    prompt: Callable[[str], str] | None, missing: Callable[[str], str]) -> list[str]:
    """The app's credentials (client id/key, client secret) for an ``archiver auth`` run:
    each as given on the command line, else stored, else asked for when there is a
    terminal; one newly given is stored, and the secret is registered with the scrubber.
    ``missing(key)`` is the message when one is nowhere. Returns the values in order."""
    from archiver.net.client import scrubber

    values = []
    for key, new in given.items():
        value = new or secrets.get(platform, account, key)
        if not value and prompt is not None:
            value = new = prompt(key)
        if not value:
            raise OAuthError(missing(key))
        if new:  # from the user: keep it; one read from the store stays where it is
            secrets.set(platform, account, key, value)
        if key.endswith("secret"):
            scrubber.add(value)
        values.append(value)
    return values


def pkce_challenge(verifier: str, encoding: str = "base64url") -> str:
    """The code challenge for `verifier`, method S256.

    "base64url" is RFC 7636: base64url(sha256(verifier)) without padding.
    "hex" is the hex digest of sha256(verifier), which TikTok's desktop flow is
    reported to expect instead.
    """
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    if encoding == "base64url":
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    if encoding == "hex":
        return digest.hex()
    raise ValueError(f"unknown PKCE encoding {encoding!r}; use 'base64url' or 'hex'")


def pkce_pair(encoding: str = "base64url") -> tuple[str, str]:
    """A fresh (verifier, challenge) pair. The verifier is 86 characters from the
    URL-safe alphabet (RFC 7636 allows 43 to 128)."""
    verifier = secrets.token_urlsafe(64)
    return verifier, pkce_challenge(verifier, encoding)


@dataclass
class LoopbackResult:
    code: str  # URL-decoded, ready for the token exchange
    state: str
    params: dict[str, str]  # every query parameter of the callback (e.g. "scopes")
    redirect_uri: str  # the token exchange must send exactly this value


LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def run_loopback_flow(
    build_authorize_url: Callable[[str, str], str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/callback/",
    timeout: float = 300,
    open_browser: bool | Callable[[str], object] | None = None,
    echo: Callable[[str], object] = print,
) -> LoopbackResult:
    """Send the person to the authorize page and wait for the redirect back.

    `build_authorize_url(redirect_uri, state)` returns the platform's authorize URL.
    `port=0` picks a free port. `open_browser`: None opens a browser when this
    machine has a graphical session, True/False force it, and a callable is called
    with the URL instead (tests use it to play the browser). The URL is always
    printed through `echo` too, so it can be opened by hand.
    """
    if host not in LOOPBACK_NAMES and not _is_loopback_ip(host):
        raise ValueError(f"the redirect host must be a loopback address, not {host!r}")
    if not path.startswith("/"):
        raise ValueError(f"the callback path must start with '/', got {path!r}")

    state = secrets.token_urlsafe(32)
    outcomes: queue.Queue[LoopbackResult | OAuthError] = queue.Queue()
    bind_address = "127.0.0.1" if host == "localhost" else host
    server = _CallbackServer((bind_address, port), _CallbackHandler)
    server.expected_path = path
    server.expected_state = state
    server.outcomes = outcomes
    actual_port = server.server_address[1]
    redirect_uri = f"http://{host}:{actual_port}{path}"
    server.redirect_uri = redirect_uri

    # Threads, so a browser's idle pre-opened connection cannot block the real callback.
    serving = threading.Thread(target=server.serve_forever, name="oauth-loopback", daemon=True)
    serving.start()
    try:
        authorize_url = build_authorize_url(redirect_uri, state)
        echo(
            "Open this address in a browser and approve access:\n\n"
            f"  {authorize_url}\n\n"
            f"Waiting for the browser to come back to {redirect_uri} "
            f"(for up to {int(timeout)} seconds).\n"
            "If the browser runs on another machine, forward the port first: "
            f"ssh -L {actual_port}:127.0.0.1:{actual_port} <this machine>"
        )
        _open_in_browser(authorize_url, open_browser)
        try:
            outcome = outcomes.get(timeout=timeout)
        except queue.Empty:
            raise OAuthError(
                f"no answer from the browser within {int(timeout)} seconds; "
                "run the command again to start a new authorization"
            ) from None
    finally:
        server.shutdown()
        server.server_close()
        serving.join(timeout=5)
    if isinstance(outcome, OAuthError):
        raise outcome
    return outcome


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False


def _open_in_browser(url: str, open_browser: bool | Callable[[str], object] | None) -> None:
    if callable(open_browser):
        open_browser(url)
        return
    if open_browser is None:
        open_browser = _graphical_browser_available()
    if open_browser:
        try:
            webbrowser.open(url)
        except webbrowser.Error:
            pass  # the printed URL is the fallback


def _graphical_browser_available() -> bool:
    # Without a graphical session, webbrowser may pick a text browser (lynx, w3m)
    # that takes over the terminal: then printing the URL is better.
    has_session = (
        sys.platform in ("darwin", "win32")
        or bool(os.environ.get("DISPLAY"))
        or bool(os.environ.get("WAYLAND_DISPLAY"))
    )
    if not has_session:
        return False
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


class _CallbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Set by run_loopback_flow:
    expected_path: str
    expected_state: str
    redirect_uri: str
    outcomes: queue.Queue


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = 10  # seconds a connection may sit idle before it is dropped

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != self.server.expected_path:
            self._reply(404, "Not found", "This is not the authorization callback.")
            return
        outcome = self._outcome_of(url.query)
        if outcome is None:
            self._reply(400, "Waiting", "This request does not answer this authorization request "
                        "(no code, or not its state); still waiting for the platform's answer.")
            return
        if isinstance(outcome, OAuthError):
            self._reply(400, "Authorization failed", f"{outcome} You can close this tab.")
        else:
            self._reply(200, "Authorization received", "You can close this tab and go back to the terminal.")
        # Answer the browser first, then hand over: the caller shuts the server down.
        self.server.outcomes.put(outcome)

    def _outcome_of(self, query: str) -> LoopbackResult | OAuthError | None:
        """The platform's answer in this callback, or None when it is not one.

        Only a request carrying our `state` is the platform's answer (RFC 6749 §4.1.2 and
        §4.1.2.1 send it back with a code and with an error alike). Any web page the person
        visits can make their browser request this address: with a wrong or missing state it
        is answered and ignored, so no page can cancel the flow or slip its own code in.
        """
        params = dict(parse_qsl(query, keep_blank_values=True))
        if not hmac.compare_digest(params.get("state", "").encode(), self.server.expected_state.encode()):
            return None
        if "error" in params:
            description = params.get("error_description", "")
            return OAuthError(
                f"the platform refused the authorization: {params['error']}"
                + (f" ({description})" if description else "")
                + ". Run the command again to retry."
            )
        if "code" not in params:
            return None
        return LoopbackResult(
            code=_raw_query_value(query, "code"),
            state=params["state"],
            params=params,
            redirect_uri=self.server.redirect_uri,
        )

    def _reply(self, status: int, title: str, message: str) -> None:
        body = (
            "<!doctype html><meta charset=utf-8>"
            f"<title>archiver: {html.escape(title)}</title>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        # The default logs the request line to stderr, and that line holds the code.
        pass


def _raw_query_value(query: str, name: str) -> str:
    """Percent-decode one parameter without turning '+' into a space.

    parse_qsl follows HTML forms, where '+' means space; an authorization code
    never contains a space, but a server that leaves a '+' unescaped in a code
    means a literal '+'.
    """
    found = None
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if unquote(key) == name:
            found = unquote(value)  # the last one wins, as in parse_qsl
    if found is None:
        raise KeyError(name)
    return found
