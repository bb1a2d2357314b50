"""Secrets of the fleet (tokens, app secrets), encrypted in PostgreSQL.

A fleet's workers run on many machines, so the tokens of its accounts cannot live in one
machine's keyring; they live in the fleet's database, table ``fleet_secrets``, each value
sealed with AES-256-GCM (the ``cryptography`` library) under a **master key** that the
database never sees:

* ``ARCHIVER_FLEET_MASTER_KEY`` in the environment (a Kubernetes Secret, a vault agent), or
* the systemd credential ``archiver_fleet_master_key`` (``LoadCredential=`` or, better,
  ``SetCredentialEncrypted=`` / ``LoadCredentialEncrypted=``: sealed by the machine's TPM).

The key is 32 random bytes in base64 (``generate_master_key()``). Each row is bound to its
place (tenant, platform, account, key) as associated data: a value copied to another row
does not decrypt. Rotation: the new key as the current one, the old one in
``ARCHIVER_FLEET_MASTER_KEY_PREVIOUS`` (or the credential ``archiver_fleet_master_key_previous``)
until ``rotate_all()`` (`archiver fleet secrets rotate`) has sealed every row again under the
new key.

``FleetSecretStore`` is a ``SecretStore``: connectors read and store tokens through it as
through the keyring. A rotated refresh token is durable when ``set`` returns (one committed
statement). A worker's stores (every tenant's, every thread's) share one ``SecretsDatabase``,
which connects again after the database restarted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from archiver.secrets import SecretStore, SecretStoreError

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

ENV_MASTER_KEY = "ARCHIVER_FLEET_MASTER_KEY"
ENV_PREVIOUS_KEY = "ARCHIVER_FLEET_MASTER_KEY_PREVIOUS"
CREDENTIAL_NAME = "archiver_fleet_master_key"
PREVIOUS_CREDENTIAL_NAME = "archiver_fleet_master_key_previous"
NONCE_BYTES = 12    # AES-GCM's standard nonce, random for every value written


def generate_master_key() -> str:
    """A new master key: 32 random bytes, base64."""
    return base64.b64encode(os.urandom(32)).decode()


@dataclass(frozen=True)
class MasterKey:
    key: bytes = b""
    source: str = ""    # where it came from, for messages (never the key)

    @property
    def key_id(self) -> str:
        """Names the key in each row (which key sealed it), and reveals nothing of it."""
        return hashlib.sha256(b"archiver fleet master key id\0" + self.key).hexdigest()[:16]


def _parse_key(text: str, source: str) -> MasterKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.urlsafe_b64decode(text.strip())
        except (binascii.Error, ValueError):
            raw = b""
    if len(raw) != 32:
        raise SecretStoreError(f"the fleet's master key in {source} is not 32 bytes in base64; make one with "
                               "`python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'`")
    return MasterKey(raw, source)


def _from_env_or_credential(variable: str, credential: str) -> MasterKey | None:
    if os.environ.get(variable):
        return _parse_key(os.environ[variable], f"${variable}")
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        path = Path(credentials) / credential
        try:
            return _parse_key(path.read_text(encoding="utf-8"), f"the systemd credential {path}")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretStoreError(f"cannot read the systemd credential {path}: {exc.strerror}") from None
    return None


def load_master_keys() -> tuple[MasterKey, list[MasterKey]]:
    """The current master key and the previous ones still accepted for reading."""
    current = _from_env_or_credential(ENV_MASTER_KEY, CREDENTIAL_NAME)
    if current is None:
        raise SecretStoreError(
            f"no master key for the fleet's secrets: set {ENV_MASTER_KEY} (32 random bytes, base64), or run "
            f"under systemd with LoadCredentialEncrypted={CREDENTIAL_NAME}:/path (CREDENTIALS_DIRECTORY)")
    previous = _from_env_or_credential(ENV_PREVIOUS_KEY, PREVIOUS_CREDENTIAL_NAME)
    return current, [previous] if previous else []


class SecretsDatabase:
    """The fleet database for a long-lived process's secret stores (a worker's: every
    tenant, every thread): one autocommit connection, made when first needed. Statements take
    turns (a lock: a run reads its secrets at its start and writes one when a token rotates,
    so they are few), and one that finds the connection broken (the database restarted) is
    sent once more on a new connection: each is a read, an upsert or a delete, safe twice."""

    def __init__(self, url: str):
        self.url = url
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            from archiver.fleet import db

            self._conn = db.connect(self.url)
        return self._conn

    def execute(self, sql: str, params=None) -> psycopg.Cursor:
        import psycopg

        with self._lock:
            try:
                return self._connection().execute(sql, params)
            except psycopg.OperationalError as error:
                log.warning("the fleet database's connection for secrets broke (%s); connecting again",
                            str(error).strip() or type(error).__name__)
                self.close()
                return self._connection().execute(sql, params)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:   # closing a broken connection: nothing more to do
                pass
            self._conn = None


class FleetSecretStore(SecretStore):
    """Secrets of one tenant in the fleet's database, sealed with the master key.
    ``conn``: an autocommit connection, or a SecretsDatabase (a worker's, shared by its
    threads and tenants)."""

    backend_name = "fleet"

    def __init__(self, conn: psycopg.Connection | SecretsDatabase, tenant: str, key: MasterKey | None = None,
                 previous: list[MasterKey] | None = None):
        if key is None:
            key, previous = load_master_keys()
        self.conn, self.tenant, self.key = conn, tenant, key
        self.keys = {k.key_id: k for k in [key, *(previous or [])]}

    def where(self, platform: str, account: str, key: str) -> str:
        return f"the fleet database's fleet_secrets (tenant {self.tenant!r}, {platform} account {account!r}, key {key!r})"

    def lock_folder(self) -> Path | None:
        return None   # the fleet's queue runs one job per account at a time: no file lock across machines

    def _place(self, platform: str, account: str, key: str) -> bytes:
        return "\0".join(("archiver-fleet-secret", self.tenant, platform, account, key)).encode()

    def _read(self, platform: str, account: str, key: str) -> str | None:
        row = self.conn.execute(
            "SELECT key_id, nonce, sealed FROM fleet_secrets WHERE tenant = %s AND platform = %s AND account = %s "
            "AND key = %s", (self.tenant, platform, account, key)).fetchone()
        if row is None:
            return None
        return self._open(row[0], bytes(row[1]), bytes(row[2]), platform, account, key)

    def _open(self, key_id: str, nonce: bytes, sealed: bytes, platform: str, account: str, key: str) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        master = self.keys.get(key_id)
        if master is None:
            raise SecretStoreError(
                f"{self.where(platform, account, key)} was sealed with another master key (id {key_id}) than "
                f"{self.key.source}: give that key as {ENV_PREVIOUS_KEY}, or store the secret again "
                f"(`archiver auth`)")
        try:
            return AESGCM(master.key).decrypt(nonce, sealed, self._place(platform, account, key)).decode()
        except InvalidTag:
            raise SecretStoreError(
                f"{self.where(platform, account, key)} does not decrypt: the row was changed or copied from "
                "another account; store the secret again (`archiver auth`)") from None

    def _seal(self, value: str, platform: str, account: str, key: str) -> tuple[bytes, bytes]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(NONCE_BYTES)
        return nonce, AESGCM(self.key.key).encrypt(nonce, value.encode(), self._place(platform, account, key))

    def _write(self, platform: str, account: str, key: str, value: str) -> None:
        nonce, sealed = self._seal(value, platform, account, key)
        self.conn.execute(
            "INSERT INTO fleet_secrets (tenant, platform, account, key, key_id, nonce, sealed) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant, platform, account, key) DO UPDATE SET "
            "key_id = excluded.key_id, nonce = excluded.nonce, sealed = excluded.sealed, updated_at = now()",
            (self.tenant, platform, account, key, self.key.key_id, nonce, sealed))

    def _erase(self, platform: str, account: str, key: str) -> None:
        self.conn.execute("DELETE FROM fleet_secrets WHERE tenant = %s AND platform = %s AND account = %s AND key = %s",
                          (self.tenant, platform, account, key))

    def rotate(self, problems: list[str] | None = None) -> int:
        """Seal again under the current key every row of this tenant that an older key
        sealed; returns how many. A row rewritten meanwhile (a token refreshed by a run) is
        left as that run wrote it. A row that does not open (its key is not given) raises,
        or is skipped and described in ``problems`` when given."""
        rows = self.conn.execute(
            "SELECT platform, account, key, key_id, nonce, sealed FROM fleet_secrets WHERE tenant = %s AND key_id <> %s",
            (self.tenant, self.key.key_id)).fetchall()
        done = 0
        for platform, account, key, key_id, nonce, sealed in rows:
            try:
                value = self._open(key_id, bytes(nonce), bytes(sealed), platform, account, key)
            except SecretStoreError as error:
                if problems is None:
                    raise
                problems.append(str(error))
                continue
            new_nonce, new_sealed = self._seal(value, platform, account, key)
            done += self.conn.execute(
                "UPDATE fleet_secrets SET key_id = %s, nonce = %s, sealed = %s, updated_at = now() WHERE tenant = %s "
                "AND platform = %s AND account = %s AND key = %s AND nonce = %s",
                (self.key.key_id, new_nonce, new_sealed, self.tenant, platform, account, key, nonce)).rowcount
        return done


@dataclass
class Rotation:
    """What `archiver fleet secrets rotate` did: rows sealed again, and what is left under
    another key than the current one (a row that did not open; a row a worker still on the
    old key wrote meanwhile)."""

    key_id: str
    resealed: int = 0
    tenants: int = 0
    problems: list[str] = field(default_factory=list)
    left: int = 0    # rows still sealed by another key after the pass

    @property
    def done(self) -> bool:
        """Every row is under the current key: the previous key may be dropped."""
        return self.left == 0 and not self.problems


def rotate_all(conn: psycopg.Connection, key: MasterKey | None = None, previous: list[MasterKey] | None = None) -> Rotation:
    """Seal every tenant's secrets again under the current master key (the previous ones
    read the old rows). Safe to run again, and while workers run: a row a run rewrites is
    left as it wrote it."""
    if key is None:
        key, previous = load_master_keys()
    rotation = Rotation(key.key_id)
    tenants = [row[0] for row in conn.execute(
        "SELECT DISTINCT tenant FROM fleet_secrets WHERE key_id <> %s ORDER BY tenant", (key.key_id,))]
    for tenant in tenants:
        rotation.resealed += FleetSecretStore(conn, tenant, key, previous).rotate(rotation.problems)
    rotation.tenants = len(tenants)
    left = conn.execute("SELECT count(*) FROM fleet_secrets WHERE key_id <> %s", (key.key_id,)).fetchone()
    rotation.left = left[0] if left else 0
    return rotation
