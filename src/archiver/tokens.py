"""An account's OAuth tokens, kept as one JSON record in the SecretStore.

Every connector's token provider shares this: reading the record once per run, saving a
new one atomically (a rotated refresh token is stored before it is used), and telling the
scrubber about every token so none reaches a log or the archive. What a record holds and
how it is refreshed stays with each platform (``_refresh_locked``).

It is a net.TokenProvider: ``header()`` gives the bearer header, refreshing first (once,
under the lock) when the record's ``access_expires_at`` is within ``refresh_margin``;
``refresh()`` is what the ApiClient calls after the platform refused the token.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, ClassVar

from archiver.net import NetError, scrubber

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

    def _expiring(self) -> bool:
        expires_at = self.load().get("access_expires_at")
        return expires_at is not None and expires_at - self.now() < self.refresh_margin

    def header(self) -> dict[str, str]:
        if self._expiring():
            with self._lock:
                if self._expiring():   # another thread may have refreshed meanwhile
                    self._refresh_locked()
        return {"Authorization": f"Bearer {self.load()['access_token']}"}

    def refresh(self) -> None:
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        """Get and ``save`` new tokens (the lock is held), or raise NetError(kind="auth")."""
        raise NotImplementedError

    @staticmethod
    def _register(tokens: dict[str, Any]) -> None:
        scrubber.add(*(value for key, value in tokens.items() if key.endswith("_token") and isinstance(value, str)))
