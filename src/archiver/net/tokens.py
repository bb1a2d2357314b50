"""An account's OAuth tokens, kept as one JSON record in the SecretStore.

Every connector's token provider shares this: reading the record once per run, saving a
new one atomically (a rotated refresh token is stored before it is used), and telling the
scrubber about every token so none reaches a log or the archive. How a record is
refreshed is ``_refresh_locked``'s: ``OAuth2Tokens`` below does it for the platforms that
follow OAuth 2.0 (the code exchange and the refresh_token grant, once for all of them);
others (a session API, a token that is exchanged for a fresh one) write their own.

In a fleet's run (a ``net.client.RunLimits`` installed when the record is made) a refresh
first asks the run's limits: it takes a slot of the shared rate limit, and a run that another
worker has taken over (fenced off) sends none — a zombie spending a rotating refresh token
would cut the live run off.

It is a net.TokenProvider: ``header()`` gives the bearer header, refreshing first (once,
under the lock) when ``refresh_due()`` (by default: the record's ``access_expires_at`` is
within ``refresh_margin``); ``refresh()`` is what the ApiClient calls after the platform
refused the token.

Several platforms rotate refresh tokens: the old one dies at its first use. Two processes
holding the same record (the daemon and an `archiver export`, two archives of one account)
must not both spend it, or the second one loses the authorization. So a refresh holds a
lock shared by every process (archiver.sync.locks.token_lock) and, once it has it, reads the
stored record again: when another process has refreshed meanwhile, its tokens are used
and the old refresh token is never sent.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, ClassVar, Iterator

from archiver.net.client import NetError, current_run_limits, scrubber
from archiver.net.oauth import pkce_pair, run_loopback_flow, token_request

TOKENS_KEY = "tokens"   # the SecretStore key of the whole record


class StoredTokens:
    platform: ClassVar[str]   # "tiktok": the SecretStore's platform and the `archiver auth` argument
    title: ClassVar[str]      # "TikTok": for messages
    refresh_margin: ClassVar[float] = 300   # refresh this many seconds before the access token expires

    def __init__(self, secrets, account: str):
        self.secrets = secrets
        self.account = account
        self._lock = threading.Lock()   # refreshes are serialized
        self._tokens: dict[str, Any] | None = None
        # A fleet run's limits, as an ApiClient keeps the ones it was made under (None: a single user's run).
        self._run_limits = current_run_limits()

    def load(self) -> dict[str, Any]:
        if self._tokens is None:
            raw = self.secrets.get(self.platform, self.account, TOKENS_KEY)
            if not raw:
                raise NetError(f"no {self.title} authorization stored for account {self.account!r}. "
                               f"Run `archiver auth {self.platform} --account {self.account}` first.", kind="auth")
            self._tokens = json.loads(raw)
            self._register(self._tokens)
        return self._tokens

    def save(self, tokens: dict[str, Any]) -> dict[str, Any]:
        """Store the whole record (durable before this returns), then use it."""
        self._register(tokens)
        self.secrets.set(self.platform, self.account, TOKENS_KEY, json.dumps(tokens))
        self._tokens = tokens
        return tokens

    def now(self) -> float:
        """The clock expiry times are compared with (platforms override it for tests)."""
        return time.time()

    def refresh_due(self) -> bool:
        """Whether to refresh before the next call: by default, when the access token
        expires within ``refresh_margin`` (platforms with other rules override it)."""
        expires_at = self.load().get("access_expires_at")
        return expires_at is not None and expires_at - self.now() < self.refresh_margin

    def refresh_when_due(self) -> None:
        """Refresh first when ``refresh_due``, once: under the lock, and only when neither
        another thread nor another process has refreshed meanwhile."""
        if self.refresh_due():
            with self._refreshing():
                self._reread()
                if self.refresh_due():
                    self._refresh_now()

    def header(self) -> dict[str, str]:
        self.refresh_when_due()
        return {"Authorization": f"Bearer {self.load()['access_token']}"}

    def refresh(self) -> None:
        """The platform refused the access token held: get a new one, unless another
        thread or process already has (then the stored record is used as it is)."""
        refused = self.load()
        with self._refreshing():
            if self._tokens is refused and not self._reread():
                self._refresh_now()

    def refresh_url(self) -> str | None:
        """The token endpoint a refresh posts to, when known (a fleet run's limits key it)."""
        return None

    def _refresh_now(self) -> None:
        """``_refresh_locked`` (the lock is held), once the run's limits let it leave."""
        if self._run_limits is not None:
            self._run_limits.token_refresh(self.refresh_url())
        self._refresh_locked()

    @contextmanager
    def _refreshing(self) -> Iterator[None]:
        """This process's threads, then every process sharing the secret store."""
        from archiver.sync.locks import token_lock

        folder = getattr(self.secrets, "lock_folder", lambda: None)()
        with self._lock, token_lock(folder, self.platform, self.account, self.title):
            yield

    def _reread(self) -> bool:
        """Read the stored record again; True when another process has replaced the one
        this process holds (it is then the one held)."""
        raw = self.secrets.get(self.platform, self.account, TOKENS_KEY)
        stored = json.loads(raw) if raw else None
        held = self.load()
        if not stored or all(stored.get(key) == held.get(key) for key in ("access_token", "refresh_token")):
            return False
        self._register(stored)
        self._tokens = stored
        return True

    def _refresh_locked(self) -> None:
        """Get and ``save`` new tokens (the lock is held), or raise NetError(kind="auth")."""
        raise NotImplementedError

    @staticmethod
    def _register(tokens: dict[str, Any]) -> None:
        scrubber.add(*(value for key, value in tokens.items() if key.endswith("_token") and isinstance(value, str)))


class OAuth2Tokens(StoredTokens):
    """Tokens from an OAuth 2.0 token endpoint (RFC 6749), renewed with the refresh_token
    grant: what is the same for every platform that follows the RFC. The authorization
    code grant with PKCE (``authorize``, ``exchange_code``) and the refresh (``_refresh_locked``)
    send the same form everywhere; a platform's subclass says what differs — the name of
    its client id, the lifetimes it leaves unsaid, what it keeps besides the tokens
    (``record``), its words for "authorize again" (``reauth_message``).

    Rotation is handled as RFC 6749 §6 allows both: a refresh answer with a new refresh
    token replaces the old one (stored before use, see StoredTokens), one without keeps it.
    A stored ``refresh_expires_at`` that has passed means authorizing again, without asking.
    """

    server: ClassVar[str]                        # names the token endpoint in messages: "Google"
    client_id_key: ClassVar[str] = "client_id"   # the app id's name in the form and the SecretStore
    default_expires_in: ClassVar[int] = 0        # seconds an access token lives when the answer does not say
    refusal_without_json: ClassVar[str] = "server"   # NetError kind of a non-5xx answer without JSON
    # The OAuth errors of a refresh that mean the grant is gone (RFC 6749 §5.2).
    grant_gone_errors: ClassVar[frozenset[str]] = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})

    def __init__(self, secrets, account: str, token_url: str, client):
        super().__init__(secrets, account)
        self.token_url = token_url
        self.client = client   # an httpx.Client for the token endpoint; its owner closes it

    # -- the platform's part ---------------------------------------------------------
    def reauth_message(self, detail: str = "") -> str:
        """What to tell the person when the grant is gone (``detail``: the server's words)."""
        raise NotImplementedError

    def record(self, answer: dict[str, Any], previous: dict[str, Any], now: float) -> dict[str, Any]:
        """The record to store for a token answer (``previous``: the one held, if any).
        Platforms add what else they keep."""
        return {
            "access_token": answer["access_token"],
            "access_expires_at": now + int(answer.get("expires_in", self.default_expires_in)),
            # Not rotated: the refresh token held lives on.
            "refresh_token": answer.get("refresh_token") or previous.get("refresh_token"),
            # RFC 6749 §5.1: no scope in the answer means the scope granted before.
            "scope": answer.get("scope", previous.get("scope", "")),
        }

    def credentials_hint(self, key: str) -> str:
        return f"run `archiver auth {self.platform} --account {self.account}` to enter your app's {key.replace('_', ' ')}"

    def refresh_url(self) -> str | None:
        return self.token_url

    # -- the grants --------------------------------------------------------------------
    def store(self, answer: dict[str, Any]) -> dict[str, Any]:
        """A token endpoint's answer -> the stored record, with absolute expiry times."""
        return self.save(self.record(answer, self._tokens or {}, self.now()))

    def client_credentials(self) -> tuple[str, str]:
        """The app's (client id, client secret) from the SecretStore; the secret is scrubbed."""
        client_id = self.secrets.require(self.platform, self.account, self.client_id_key,
                                         hint=self.credentials_hint(self.client_id_key))
        client_secret = self.secrets.require(self.platform, self.account, "client_secret",
                                             hint=self.credentials_hint("client_secret"))
        scrubber.add(client_secret)
        return client_id, client_secret

    def request(self, form: dict[str, str]) -> dict[str, Any]:
        """POST the token endpoint (``archiver.net.oauth.token_request``)."""
        return token_request(self.client, self.token_url, form, server=self.server,
                             refusal_without_json=self.refusal_without_json)

    def exchange_code(self, code: str, redirect_uri: str, verifier: str, client_id: str,
                      client_secret: str) -> dict[str, Any]:
        """The authorization code grant (RFC 6749 §4.1.3, with RFC 7636's verifier): the
        endpoint's answer as it is, an OAuth error included (the caller tells the person)."""
        return self.request({
            self.client_id_key: client_id,
            "client_secret": client_secret,
            "code": code,
            "grant_type": "authorization_code",
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        })

    def authorize(self, authorize_url: Callable[[str, str, str], str], *, client_id: str, client_secret: str,
                  pkce_encoding: str = "base64url", **loopback) -> dict[str, Any]:
        """Send the person to the platform (``authorize_url(redirect_uri, state, challenge)``),
        wait for the code on the loopback (``loopback``: run_loopback_flow's options) and
        exchange it: the token endpoint's answer, not stored yet (see ``exchange_code``)."""
        verifier, challenge = pkce_pair(pkce_encoding)
        result = run_loopback_flow(lambda redirect_uri, state: authorize_url(redirect_uri, state, challenge),
                                   **loopback)
        return self.exchange_code(result.code, result.redirect_uri, verifier, client_id, client_secret)

    def _refresh_locked(self) -> None:
        tokens = self.load()
        if not tokens.get("refresh_token"):
            raise NetError(self.reauth_message("no refresh token stored"), kind="auth")
        if tokens.get("refresh_expires_at") and tokens["refresh_expires_at"] <= self.now():
            raise NetError(self.reauth_message("the refresh token has expired"), kind="auth")
        client_id, client_secret = self.client_credentials()
        answer = self.request({
            self.client_id_key: client_id,
            "client_secret": client_secret,
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
        })
        if "error" in answer:
            detail = f"{answer['error']}: {answer.get('error_description', '')}"
            if answer["error"] in self.grant_gone_errors:
                raise NetError(self.reauth_message(detail), kind="auth")
            raise NetError(f"{self.server} token refresh failed: {detail}", kind="server")
        self.store(answer)
        logging.getLogger(f"archiver.{self.platform}").info(
            "refreshed the %s access token for %s", self.title, self.account)
