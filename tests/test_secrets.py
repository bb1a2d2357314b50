"""SecretStore: explicit backends, no plaintext fallback, durable rotated tokens."""

import json
import os
import stat

import keyring
import keyring.core
import pytest
from keyring.compat import properties
from keyring.errors import KeyringLocked

import keyring_memory
from archiver.secrets import (
    SecretStoreError,
    env_variable_name,
    open_secret_store,
)

ROTATED = "rft.rotated-0001"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("ARCHIVER_") or name in ("CREDENTIALS_DIRECTORY", "STATE_DIRECTORY"):
            monkeypatch.delenv(name)


def use_keyring_backend(monkeypatch, dotted_name):
    """Make keyring load `dotted_name` on next use, as CI does; restored after the test."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", dotted_name)
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)


@pytest.fixture
def memory_keyring(monkeypatch):
    use_keyring_backend(monkeypatch, "keyring_memory.MemoryKeyring")
    backend = keyring.get_keyring()
    assert isinstance(backend, keyring_memory.MemoryKeyring)
    return backend


# --- keyring -----------------------------------------------------------------


def test_keyring_is_the_default_and_uses_service_and_username(memory_keyring):
    store = open_secret_store()
    store.set("tiktok", "main", "refresh_token", ROTATED)

    assert memory_keyring.passwords == {("archiver:tiktok:main", "refresh_token"): ROTATED}
    assert store.get("tiktok", "main", "refresh_token") == ROTATED
    assert store.get("tiktok", "other", "refresh_token") is None

    store.delete("tiktok", "main", "refresh_token")
    assert store.get("tiktok", "main", "refresh_token") is None
    store.delete("tiktok", "main", "refresh_token")  # already gone: not an error


def test_no_keyring_backend_fails_with_the_fix(monkeypatch):
    use_keyring_backend(monkeypatch, "keyring.backends.fail.Keyring")
    with pytest.raises(SecretStoreError) as caught:
        open_secret_store("keyring")
    message = str(caught.value)
    assert "no keyring backend" in message
    assert "ARCHIVER_SECRETS=env" in message
    assert "ARCHIVER_SECRET_TIKTOK_MAIN_CLIENT_SECRET" in message
    assert "CREDENTIALS_DIRECTORY" in message


def test_null_keyring_is_refused(monkeypatch):
    use_keyring_backend(monkeypatch, "keyring.backends.null.Keyring")
    with pytest.raises(SecretStoreError, match="no keyring backend"):
        open_secret_store("keyring")


class PlaintextKeyring(keyring_memory.MemoryKeyring):
    """Looks like keyrings.alt's file backend (which is not installed here)."""

    __module__ = "keyrings.alt.file"

    @properties.classproperty
    def priority(cls):
        return -5  # never chosen by auto-detection in other tests


def test_keyrings_alt_plaintext_is_refused_not_used(monkeypatch):
    backend = PlaintextKeyring()
    monkeypatch.setattr(keyring.core, "_keyring_backend", backend)
    with pytest.raises(SecretStoreError, match="keyrings.alt.file.PlaintextKeyring"):
        open_secret_store("keyring")
    assert backend.passwords == {}


def test_unloadable_keyring_backend_is_reported(monkeypatch):
    use_keyring_backend(monkeypatch, "no_such_module_here.Keyring")
    with pytest.raises(SecretStoreError, match="PYTHON_KEYRING_BACKEND"):
        open_secret_store("keyring")


class LockedKeyring(keyring_memory.MemoryKeyring):
    @properties.classproperty
    def priority(cls):
        return -5

    def set_password(self, service, username, password):
        raise KeyringLocked("the collection is locked")


def test_keyring_errors_become_secret_store_errors_without_the_value(monkeypatch):
    monkeypatch.setattr(keyring.core, "_keyring_backend", LockedKeyring())
    store = open_secret_store("keyring")
    with pytest.raises(SecretStoreError) as caught:
        store.set("tiktok", "main", "refresh_token", ROTATED)
    assert "refresh_token" in str(caught.value)
    assert "Unlock" in str(caught.value)
    assert ROTATED not in str(caught.value)


def test_require_names_key_place_and_hint(memory_keyring):
    store = open_secret_store("keyring")
    with pytest.raises(SecretStoreError) as caught:
        store.require("tiktok", "main", "refresh_token", "run `archiver auth tiktok`")
    message = str(caught.value)
    assert "refresh_token" in message and "tiktok" in message and "'main'" in message
    assert "archiver:tiktok:main" in message
    assert "run `archiver auth tiktok`" in message

    store.set("tiktok", "main", "refresh_token", ROTATED)
    assert store.require("tiktok", "main", "refresh_token", "unused") == ROTATED


# --- choosing a backend ---------------------------------------------------------


def test_archiver_secrets_variable_chooses_the_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("ARCHIVER_SECRETS", "env")
    monkeypatch.setenv("ARCHIVER_SECRET_TIKTOK_MAIN_CLIENT_KEY", "key-from-env")
    store = open_secret_store(state_dir=tmp_path)
    assert store.backend_name == "env"
    assert store.get("tiktok", "main", "client_key") == "key-from-env"
    # the argument wins over the variable
    assert open_secret_store("memory").backend_name == "memory"


def test_unknown_backend_lists_the_choices():
    with pytest.raises(SecretStoreError, match="keyring, env, systemd, memory"):
        open_secret_store("plaintext")


def test_empty_values_are_refused():
    store = open_secret_store("memory")
    with pytest.raises(SecretStoreError):
        store.set("tiktok", "main", "refresh_token", "")


def test_memory_backend_round_trip():
    store = open_secret_store("memory")
    store.set("tiktok", "main", "access_token", "act.1")
    assert store.get("tiktok", "main", "access_token") == "act.1"
    assert store.get("tiktok", "main", "refresh_token") is None
    store.delete("tiktok", "main", "access_token")
    assert store.get("tiktok", "main", "access_token") is None


# --- env -----------------------------------------------------------------------


def test_env_variable_names():
    assert env_variable_name("tiktok", "main", "client_secret") == "ARCHIVER_SECRET_TIKTOK_MAIN_CLIENT_SECRET"
    assert env_variable_name("bluesky", "me.bsky-social", "app password") == (
        "ARCHIVER_SECRET_BLUESKY_ME_BSKY_SOCIAL_APP_PASSWORD"
    )


def test_env_rotated_token_is_persisted_privately_and_survives_a_restart(monkeypatch, tmp_path):
    state = tmp_path / "state"
    monkeypatch.setenv("ARCHIVER_SECRET_TIKTOK_MAIN_REFRESH_TOKEN", "rft.first")
    store = open_secret_store("env", state_dir=state)
    assert store.get("tiktok", "main", "refresh_token") == "rft.first"

    store.set("tiktok", "main", "refresh_token", ROTATED)

    assert store.get("tiktok", "main", "refresh_token") == ROTATED
    assert os.environ["ARCHIVER_SECRET_TIKTOK_MAIN_REFRESH_TOKEN"] == "rft.first"
    tokens = state / "tokens.json"
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert ROTATED in tokens.read_text()
    assert [p.name for p in state.iterdir() if p.name.endswith(".tmp")] == []

    restarted = open_secret_store("env", state_dir=state)
    assert restarted.get("tiktok", "main", "refresh_token") == ROTATED


def test_env_value_changed_by_hand_wins_over_an_older_rotation(monkeypatch, tmp_path):
    monkeypatch.setenv("ARCHIVER_SECRET_TIKTOK_MAIN_REFRESH_TOKEN", "rft.first")
    store = open_secret_store("env", state_dir=tmp_path)
    store.set("tiktok", "main", "refresh_token", ROTATED)

    monkeypatch.setenv("ARCHIVER_SECRET_TIKTOK_MAIN_REFRESH_TOKEN", "rft.pasted-after-reauth")
    assert store.get("tiktok", "main", "refresh_token") == "rft.pasted-after-reauth"


def test_env_delete_forgets_the_rotation_only(monkeypatch, tmp_path):
    monkeypatch.setenv("ARCHIVER_SECRET_TIKTOK_MAIN_REFRESH_TOKEN", "rft.first")
    store = open_secret_store("env", state_dir=tmp_path)
    store.set("tiktok", "main", "refresh_token", ROTATED)
    store.set("tiktok", "other", "refresh_token", "rft.other")

    store.delete("tiktok", "main", "refresh_token")

    assert store.get("tiktok", "main", "refresh_token") == "rft.first"
    assert store.get("tiktok", "other", "refresh_token") == "rft.other"
    assert ROTATED not in (tmp_path / "tokens.json").read_text()


def test_env_state_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ARCHIVER_STATE_DIR", str(tmp_path))
    open_secret_store("env").set("tiktok", "main", "access_token", "act.1")
    saved = json.loads((tmp_path / "tokens.json").read_text())
    assert saved["tiktok:main:access_token"]["value"] == "act.1"


def test_env_require_names_the_variable(tmp_path):
    store = open_secret_store("env", state_dir=tmp_path)
    with pytest.raises(SecretStoreError, match="ARCHIVER_SECRET_TIKTOK_MAIN_CLIENT_SECRET"):
        store.require("tiktok", "main", "client_secret", "set it from the developer portal")


def test_set_fsyncs_before_returning(monkeypatch, tmp_path):
    store = open_secret_store("env", state_dir=tmp_path)
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    store.set("tiktok", "main", "refresh_token", ROTATED)
    assert len(synced) >= 2  # the new file, then the directory holding the rename
    if os.path.exists("/proc/self/fd"):
        assert synced[-1] == str(tmp_path)


def test_corrupt_tokens_file_is_reported_without_contents(tmp_path):
    (tmp_path / "tokens.json").write_text('{"tiktok:main:refresh_token": {"value": "rft.sec')
    store = open_secret_store("env", state_dir=tmp_path)
    with pytest.raises(SecretStoreError) as caught:
        store.get("tiktok", "main", "refresh_token")
    assert "tokens.json" in str(caught.value)
    assert "rft.sec" not in str(caught.value)


# --- systemd -------------------------------------------------------------------


def test_systemd_reads_credentials_and_persists_rotations(monkeypatch, tmp_path):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "tiktok_main_client_secret").write_text("secret-from-systemd\n")
    (credentials / "tiktok_main_refresh_token").write_text("rft.first\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    state = tmp_path / "state"

    store = open_secret_store("systemd", state_dir=state)
    assert store.get("tiktok", "main", "client_secret") == "secret-from-systemd"
    assert store.get("tiktok", "main", "missing") is None

    store.set("tiktok", "main", "refresh_token", ROTATED)
    assert (credentials / "tiktok_main_refresh_token").read_text() == "rft.first\n"
    assert open_secret_store("systemd", state_dir=state).get("tiktok", "main", "refresh_token") == ROTATED


def test_systemd_credential_names_cannot_escape_the_directory(monkeypatch, tmp_path):
    credentials = tmp_path / "credentials"
    (credentials / "x_").mkdir(parents=True)
    (tmp_path / "outside_key").write_text("not a credential")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    store = open_secret_store("systemd", state_dir=tmp_path / "state")
    # unsanitized, "x_/../../outside_key" would resolve to tmp_path/outside_key
    assert store.get("x", "/../../outside", "key") is None


def test_systemd_without_credentials_directory_says_how(monkeypatch, tmp_path):
    with pytest.raises(SecretStoreError, match="LoadCredential"):
        open_secret_store("systemd", state_dir=tmp_path)
