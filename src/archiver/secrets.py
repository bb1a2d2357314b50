"""Where tokens and client secrets live: never in the archive, the config or the logs.

A `SecretStore` holds one value per (platform, account, key), for example
("tiktok", "main", "refresh_token"). The backend is chosen explicitly, by the
`backend` argument of `open_secret_store()` or the `ARCHIVER_SECRETS` environment
variable; there is no silent fallback, because the usual fallback (keyrings.alt)
writes secrets to a plaintext file.

Backends:

``keyring`` (default)
    The operating system's keyring through the `keyring` library. Service name
    ``archiver:<platform>:<account>``, username ``<key>``. A machine without a
    keyring (a headless server) gets a `SecretStoreError` that says how to use
    ``env`` or ``systemd`` instead.

``env``
    Reads ``ARCHIVER_SECRET_<PLATFORM>_<ACCOUNT>_<KEY>`` (upper case, anything not a
    letter or digit becomes ``_``), e.g. ``ARCHIVER_SECRET_TIKTOK_MAIN_CLIENT_SECRET``.

``systemd``
    Reads the file ``$CREDENTIALS_DIRECTORY/<platform>_<account>_<key>``, as
    provided by ``LoadCredential=`` / ``SetCredentialEncrypted=`` in a unit file.

``memory``
    An in-process dict, for tests.

Environment variables and credential files are read-only, but some platforms
rotate refresh tokens (the old one dies at first use), so a new token must survive
a restart. The ``env`` and ``systemd`` backends therefore write every `set()` to
``tokens.json`` (mode 0600) in a private state directory: the ``state_dir``
argument, else ``$ARCHIVER_STATE_DIR``, else systemd's ``$STATE_DIRECTORY``, else
the user state directory from platformdirs. A value in ``tokens.json`` wins over
the environment / credential file it replaced; if the environment value is later
changed by hand (a fresh token pasted in), the new environment value wins again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

BACKENDS = ("keyring", "env", "systemd", "memory")
TOKENS_FILE_NAME = "tokens.json"


class SecretStoreError(Exception):
    """A secret is missing or no usable secret backend exists. The message says how to fix it.

    Messages name keys, variables and files, never secret values.
    """


class SecretStore:
    """Get, set and delete secrets by (platform, account, key).

    Subclasses implement `_read`, `_write`, `_erase` and `where`.
    """

    backend_name = "?"

    def get(self, platform: str, account: str, key: str) -> str | None:
        """The stored value, or None when there is none."""
        return self._read(platform, account, key)

    def set(self, platform: str, account: str, key: str, value: str) -> None:
        """Store a value. When this returns, the value is durable (a rotated
        refresh token must outlive a crash right after the refresh)."""
        if not isinstance(value, str) or value == "":
            raise SecretStoreError(
                f"refusing to store an empty value for {key!r} ({platform} account {account!r})"
            )
        self._write(platform, account, key, value)

    def delete(self, platform: str, account: str, key: str) -> None:
        """Forget a value; deleting a value that does not exist is not an error."""
        self._erase(platform, account, key)

    def require(self, platform: str, account: str, key: str, hint: str) -> str:
        """The stored value; a `SecretStoreError` naming the key, where it was looked
        for and `hint` (e.g. "run `archiver auth tiktok`") when there is none."""
        value = self.get(platform, account, key)
        if value is None or value == "":
            raise SecretStoreError(
                f"missing secret {key!r} for {platform} account {account!r} "
                f"(looked in {self.where(platform, account, key)}); {hint}"
            )
        return value

    def where(self, platform: str, account: str, key: str) -> str:
        """Where this backend looks for the value, for error messages."""
        raise NotImplementedError

    def lock_folder(self) -> Path | None:
        """Where processes sharing this store keep the lock files that serialize token
        refreshes (archiver.sync.locks.token_lock); None when no other process can see it."""
        return _state_dir(None) / "locks"

    def _read(self, platform: str, account: str, key: str) -> str | None:
        raise NotImplementedError

    def _write(self, platform: str, account: str, key: str, value: str) -> None:
        raise NotImplementedError

    def _erase(self, platform: str, account: str, key: str) -> None:
        raise NotImplementedError


def open_secret_store(
    backend: str | None = None, *, state_dir: str | os.PathLike[str] | None = None
) -> SecretStore:
    """Open the secret store named by `backend`, else by `$ARCHIVER_SECRETS`, else "keyring".

    `state_dir` is where the env and systemd backends keep rotated tokens
    (see the module docstring for the fallbacks).
    """
    name = (backend or os.environ.get("ARCHIVER_SECRETS") or "keyring").strip().lower()
    if name == "keyring":
        return KeyringSecretStore()
    if name == "memory":
        return MemorySecretStore()
    if name == "env":
        return EnvSecretStore(RotatedTokensFile(_state_dir(state_dir)))
    if name == "systemd":
        credentials_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if not credentials_dir:
            raise SecretStoreError(
                "ARCHIVER_SECRETS=systemd but CREDENTIALS_DIRECTORY is not set: run archiver "
                "from a systemd unit with LoadCredential=<platform>_<account>_<key>:/path "
                "(or SetCredentialEncrypted=), or choose ARCHIVER_SECRETS=env or keyring"
            )
        return SystemdSecretStore(Path(credentials_dir), RotatedTokensFile(_state_dir(state_dir)))
    raise SecretStoreError(
        f"unknown secret backend {name!r}; set ARCHIVER_SECRETS to one of: {', '.join(BACKENDS)}"
    )


# --- keyring -----------------------------------------------------------------


def keyring_service_name(platform: str, account: str) -> str:
    return f"archiver:{platform}:{account}"


class KeyringSecretStore(SecretStore):
    """The OS keyring. Refuses backends that would not keep secrets safe."""

    backend_name = "keyring"

    def __init__(self, keyring_backend=None):
        # Imported here: `keyring` scans its plugins on import, and the CLI imports
        # this module just to show help.
        import keyring

        try:
            chosen = keyring_backend or keyring.get_keyring()
        except Exception as exc:  # e.g. PYTHON_KEYRING_BACKEND names a missing module
            raise SecretStoreError(
                f"could not load a keyring backend ({type(exc).__name__}: {exc}); "
                "check PYTHON_KEYRING_BACKEND, or set ARCHIVER_SECRETS=env or systemd"
            ) from exc
        self.keyring = _usable_keyring(chosen)

    def where(self, platform: str, account: str, key: str) -> str:
        return (
            f"keyring {type(self.keyring).__name__}, service "
            f"{keyring_service_name(platform, account)!r}, username {key!r}"
        )

    def _read(self, platform: str, account: str, key: str) -> str | None:
        with self._keyring_errors("read", platform, account, key):
            return self.keyring.get_password(keyring_service_name(platform, account), key)

    def _write(self, platform: str, account: str, key: str, value: str) -> None:
        with self._keyring_errors("store", platform, account, key):
            self.keyring.set_password(keyring_service_name(platform, account), key, value)

    def _erase(self, platform: str, account: str, key: str) -> None:
        from keyring.errors import PasswordDeleteError

        with self._keyring_errors("delete", platform, account, key):
            try:
                self.keyring.delete_password(keyring_service_name(platform, account), key)
            except PasswordDeleteError:
                pass  # it was not there: nothing to forget

    @contextlib.contextmanager
    def _keyring_errors(self, action: str, platform: str, account: str, key: str):
        from keyring.errors import KeyringError

        try:
            yield
        except KeyringError as exc:
            # The library's messages do not contain the secret; ours names only the key.
            raise SecretStoreError(
                f"the keyring could not {action} {self.where(platform, account, key)}: "
                f"{type(exc).__name__}: {exc}. Unlock the keyring, or set "
                "ARCHIVER_SECRETS=env or systemd"
            ) from exc


def _usable_keyring(chosen):
    """Return a keyring that stores secrets safely, or raise with the fix."""
    from keyring.backends import chainer, fail, null

    # A chain writes to its first member that accepts the write, which may be a
    # plaintext file. Use its best member directly so writes cannot drift.
    if isinstance(chosen, chainer.ChainerBackend):
        members = list(chosen.backends)
        chosen = members[0] if members else fail.Keyring()

    if isinstance(chosen, (fail.Keyring, null.Keyring)):
        raise SecretStoreError(
            "no keyring backend is available on this machine (usual on a headless "
            "server). Either set ARCHIVER_SECRETS=env and provide the secrets as "
            "environment variables such as ARCHIVER_SECRET_TIKTOK_MAIN_CLIENT_SECRET, "
            "or run under systemd with ARCHIVER_SECRETS=systemd (CREDENTIALS_DIRECTORY) "
            "and LoadCredential= lines such as LoadCredential=tiktok_main_client_secret:/path"
        )
    module = type(chosen).__module__
    if module == "keyrings.alt" or module.startswith("keyrings.alt."):
        # keyrings.alt's file backends either store base64 "plaintext" or prompt for
        # a password on the terminal (which would hang the daemon).
        raise SecretStoreError(
            f"the keyring backend {module}.{type(chosen).__name__} keeps secrets in a "
            "file (plaintext or prompting for a password), which archiver refuses. "
            "Use an OS keyring, or set ARCHIVER_SECRETS=env (environment variables such "
            "as ARCHIVER_SECRET_TIKTOK_MAIN_CLIENT_SECRET) or ARCHIVER_SECRETS=systemd "
            "(LoadCredential=..., CREDENTIALS_DIRECTORY)"
        )
    return chosen


# --- memory ------------------------------------------------------------------


class MemorySecretStore(SecretStore):
    """Secrets in a dict of this process; for tests."""

    backend_name = "memory"

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, str], str] = {}

    def where(self, platform: str, account: str, key: str) -> str:
        return "the in-memory secret store"

    def lock_folder(self) -> Path | None:
        return None  # this process's dict: its threads are all that share it

    def _read(self, platform, account, key):
        return self.values.get((platform, account, key))

    def _write(self, platform, account, key, value):
        self.values[(platform, account, key)] = value

    def _erase(self, platform, account, key):
        self.values.pop((platform, account, key), None)


# --- env and systemd: read-only sources + a file of rotated tokens -------------


def _state_dir(explicit: str | os.PathLike[str] | None) -> Path:
    if explicit:
        return Path(explicit)
    for variable in ("ARCHIVER_STATE_DIR", "STATE_DIRECTORY"):
        if os.environ.get(variable):
            # systemd's STATE_DIRECTORY may list several directories, ':'-separated.
            return Path(os.environ[variable].split(":")[0])
    import platformdirs

    return Path(platformdirs.user_state_dir("archiver"))


def _fingerprint(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


class RotatedTokensFile:
    """`tokens.json`, mode 0600, in a private directory: values written at run time.

    Each entry remembers a fingerprint (sha256) of the read-only value it replaced,
    so a value changed by hand in the environment later is noticed and wins.
    Every write goes to a temporary file that is fsynced and renamed over the old
    one, then the directory is fsynced: after `write()` returns, the token survives
    a crash or power cut.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = self.directory / TOKENS_FILE_NAME

    def read_all(self) -> dict[str, dict[str, str | None]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise SecretStoreError(
                f"cannot read the rotated-token file {self.path}: {type(exc).__name__}. "
                "Fix or remove it, then run `archiver auth` for the affected accounts"
            ) from exc
        return data if isinstance(data, dict) else {}

    def lookup(self, name: str, replaced_value: str | None) -> str | None:
        entry = self.read_all().get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), str):
            return None
        if replaced_value is not None and entry.get("replaces") != _fingerprint(replaced_value):
            return None  # the read-only source was changed by hand after this rotation
        return entry["value"]

    def write(self, name: str, value: str | None, replaced_value: str | None) -> None:
        """Store `value` under `name` (None removes the entry)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._locked():
            data = self.read_all()
            if value is None:
                if data.pop(name, None) is None:
                    return
            else:
                data[name] = {"value": value, "replaces": _fingerprint(replaced_value)}
            self._replace_file(data)

    def _replace_file(self, data: dict) -> None:
        # mkstemp creates the file with mode 0600 from the start: the token is
        # never readable by others, not even for an instant.
        fd, tmp_name = tempfile.mkstemp(prefix=".tokens-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        _fsync_directory(self.directory)

    @contextlib.contextmanager
    def _locked(self):
        """Serialize read-modify-write between processes (where fcntl exists)."""
        try:
            import fcntl
        except ImportError:  # Windows: one daemon per machine is the rule there
            yield
            return
        fd = os.open(self.directory / (TOKENS_FILE_NAME + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable. Not possible on Windows; there os.replace is enough.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _ReadOnlySourceWithRotations(SecretStore):
    """Shared logic of env and systemd: a read-only source plus `RotatedTokensFile`."""

    def __init__(self, rotated: RotatedTokensFile):
        self.rotated = rotated

    def source_name(self, platform: str, account: str, key: str) -> str:
        raise NotImplementedError

    def _read_source(self, platform: str, account: str, key: str) -> str | None:
        raise NotImplementedError

    def where(self, platform, account, key):
        return f"{self.source_name(platform, account, key)} and {self.rotated.path}"

    def lock_folder(self) -> Path | None:
        return self.rotated.directory   # beside tokens.json, which every such process shares

    def _entry_name(self, platform, account, key) -> str:
        return f"{platform}:{account}:{key}"

    def _read(self, platform, account, key):
        from_source = self._read_source(platform, account, key)
        rotated = self.rotated.lookup(self._entry_name(platform, account, key), from_source)
        return rotated if rotated is not None else from_source

    def _write(self, platform, account, key, value):
        from_source = self._read_source(platform, account, key)
        self.rotated.write(self._entry_name(platform, account, key), value, from_source)

    def _erase(self, platform, account, key):
        # The environment / credential file cannot be changed from here; only the
        # rotated value is forgotten.
        self.rotated.write(self._entry_name(platform, account, key), None, None)


def env_variable_name(platform: str, account: str, key: str) -> str:
    raw = f"ARCHIVER_SECRET_{platform}_{account}_{key}".upper()
    return re.sub(r"[^A-Z0-9]", "_", raw)


class EnvSecretStore(_ReadOnlySourceWithRotations):
    """Secrets from ARCHIVER_SECRET_<PLATFORM>_<ACCOUNT>_<KEY> environment variables."""

    backend_name = "env"

    def source_name(self, platform, account, key):
        return f"environment variable {env_variable_name(platform, account, key)}"

    def _read_source(self, platform, account, key):
        return os.environ.get(env_variable_name(platform, account, key)) or None


def systemd_credential_name(platform: str, account: str, key: str) -> str:
    # Credential names become file names: keep them to safe characters (no '/').
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{platform}_{account}_{key}")


class SystemdSecretStore(_ReadOnlySourceWithRotations):
    """Secrets from systemd credentials: files in $CREDENTIALS_DIRECTORY."""

    backend_name = "systemd"

    def __init__(self, credentials_dir: Path, rotated: RotatedTokensFile):
        super().__init__(rotated)
        self.credentials_dir = Path(credentials_dir)

    def source_name(self, platform, account, key):
        return f"systemd credential {self.credentials_dir / systemd_credential_name(platform, account, key)}"

    def _read_source(self, platform, account, key):
        path = self.credentials_dir / systemd_credential_name(platform, account, key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretStoreError(f"cannot read the {self.source_name(platform, account, key)}: {exc.strerror}") from exc
        # Files written with `echo` end in a newline that is not part of the secret.
        return text.rstrip("\r\n") or None
