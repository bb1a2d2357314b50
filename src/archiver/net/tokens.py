"""An account's OAuth tokens, kept as one JSON record in the SecretStore.

Every connector's token provider shares this: reading the record once per run, saving a
new one atomically (a rotated refresh token is stored before it is used), and telling the
scrubber about every token so none reaches a log or the archive. What a record holds and
how it is refreshed stays with each platform (``_refresh_locked``).

It is a net.TokenProvider: ``header()`` gives the bearer header, refreshing first (once,
under the lock) when the record's ``access_expires_at`` is within ``refresh_margin``;
``refresh()`` is what the ApiClient calls after the platform refused the token.

Several platforms rotate refresh tokens: the old one dies at its first use. Two processes
holding the same record (the daemon and an `archiver export`, two archives of one account)
must not both spend it, or the second one loses the authorization. So a refresh holds a
lock shared by every process (archiver.sync.locks.token_lock) and, once it has it, reads the
stored record again: when another process has refreshed meanwhile, its tokens are used
and the old refresh token is never sent.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from typing import Any, ClassVar, Iterator

from archiver.net.client import NetError, scrubber

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
            with self._refreshing():
                self._reread()
                if self._expiring():   # neither another thread nor another process refreshed
                    self._refresh_locked()
        return {"Authorization": f"Bearer {self.load()['access_token']}"}

    def refresh(self) -> None:
        """The platform refused the access token held: get a new one, unless another
        thread or process already has (then the stored record is used as it is)."""
        refused = self.load()
        with self._refreshing():
            if self._tokens is refused and not self._reread():
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
