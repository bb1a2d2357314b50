"""An account's OAuth tokens, kept as one JSON record in the SecretStore.

Every connector's token provider shares this: reading the record once per run, saving a
new one atomically (a rotated refresh token is stored before it is used), and telling the
scrubber about every token so none reaches a log or the archive. What a record holds and
how it is refreshed stays with each platform.
"""

from __future__ import annotations

import json
import threading
from typing import Any, ClassVar

from archiver.net import NetError, scrubber

TOKENS_KEY = "tokens"   # the SecretStore key of the whole record


class StoredTokens:
    platform: ClassVar[str]   # "tiktok": the SecretStore's platform and the `archiver auth` argument
    title: ClassVar[str]      # "TikTok": for messages

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

    @staticmethod
    def _register(tokens: dict[str, Any]) -> None:
        scrubber.add(*(value for key, value in tokens.items() if key.endswith("_token") and isinstance(value, str)))
