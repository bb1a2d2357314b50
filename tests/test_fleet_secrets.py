"""fleet.secrets against the tests' PostgreSQL: values sealed with the master key (from the
environment or a systemd credential), bound to their row, separate per tenant, readable
through a key rotation; messages never carry a secret or the key."""

from __future__ import annotations

import pytest
from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("cryptography")

from archiver.fleet import schema  # noqa: E402
from archiver.fleet.secrets import (  # noqa: E402
    ENV_MASTER_KEY,
    ENV_PREVIOUS_KEY,
    FleetSecretStore,
    generate_master_key,
    load_master_keys,
)
from archiver.secrets import SecretStoreError  # noqa: E402

TOKEN = "refresh-token-0123456789-very-secret"


@pytest.fixture
def conn(fleet_database):
    with psycopg.connect(fleet_database, autocommit=True) as connection:
        for part in schema.PARTS:
            connection.execute(part.sql)
        yield connection


@pytest.fixture
def master_key(monkeypatch):
    key = generate_master_key()
    monkeypatch.setenv(ENV_MASTER_KEY, key)
    monkeypatch.delenv(ENV_PREVIOUS_KEY, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    return key


def test_a_secret_is_sealed_in_the_database_and_read_back(conn, master_key):
    store = FleetSecretStore(conn, "agency-client-1")
    store.set("youtube", "main", "refresh_token", TOKEN)
    assert store.get("youtube", "main", "refresh_token") == TOKEN
    assert store.get("youtube", "main", "other") is None
    nonce, sealed = conn.execute("SELECT nonce, sealed FROM fleet_secrets").fetchone()
    dump = "".join(str(v) for v in conn.execute("SELECT * FROM fleet_secrets").fetchone())
    assert TOKEN not in dump and TOKEN.encode() not in bytes(sealed) and master_key not in dump
    store.set("youtube", "main", "refresh_token", TOKEN)      # the same value again: a new nonce
    assert bytes(conn.execute("SELECT nonce FROM fleet_secrets").fetchone()[0]) != bytes(nonce)
    store.delete("youtube", "main", "refresh_token")
    assert store.get("youtube", "main", "refresh_token") is None
    with pytest.raises(SecretStoreError, match=r"missing secret 'refresh_token'.*fleet_secrets.*run archiver auth"):
        store.require("youtube", "main", "refresh_token", "run archiver auth")


def test_tenants_are_apart_and_a_value_copied_to_another_row_does_not_decrypt(conn, master_key):
    one, two = FleetSecretStore(conn, "tenant-1"), FleetSecretStore(conn, "tenant-2")
    one.set("x", "acct", "token", TOKEN)
    assert two.get("x", "acct", "token") is None
    two.set("x", "acct", "token", "tenant two's own")
    conn.execute("UPDATE fleet_secrets AS t SET nonce = s.nonce, sealed = s.sealed FROM fleet_secrets AS s "
                 "WHERE t.tenant = 'tenant-2' AND s.tenant = 'tenant-1'")
    with pytest.raises(SecretStoreError, match="does not decrypt: the row was changed or copied") as raised:
        two.get("x", "acct", "token")
    assert TOKEN not in str(raised.value)


def test_the_master_key_comes_from_the_environment_or_a_systemd_credential(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_MASTER_KEY, raising=False)
    monkeypatch.delenv(ENV_PREVIOUS_KEY, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(SecretStoreError, match=f"set {ENV_MASTER_KEY}.*LoadCredentialEncrypted=archiver_fleet_master_key"):
        load_master_keys()

    key = generate_master_key()
    (tmp_path / "archiver_fleet_master_key").write_text(key + "\n")   # as `echo` writes it
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    current, previous = load_master_keys()
    assert (len(current.key), previous) == (32, [])
    assert "systemd credential" in current.source

    monkeypatch.setenv(ENV_MASTER_KEY, "too-short")                   # the environment wins, and is checked
    with pytest.raises(SecretStoreError, match=f"in \\${ENV_MASTER_KEY} is not 32 bytes") as raised:
        load_master_keys()
    assert "too-short" not in str(raised.value)


def test_another_master_key_is_named_and_a_rotation_keeps_every_secret(conn, master_key, monkeypatch):
    old = FleetSecretStore(conn, "t")
    old.set("x", "a", "token", TOKEN)
    old.set("x", "b", "token", "second")

    new_key = generate_master_key()
    monkeypatch.setenv(ENV_MASTER_KEY, new_key)
    with pytest.raises(SecretStoreError, match=f"sealed with another master key.*give that key as {ENV_PREVIOUS_KEY}"):
        FleetSecretStore(conn, "t").get("x", "a", "token")

    monkeypatch.setenv(ENV_PREVIOUS_KEY, master_key)
    during = FleetSecretStore(conn, "t")
    assert during.get("x", "a", "token") == TOKEN                    # old rows still read
    during.set("x", "c", "token", "written during the rotation")     # new rows under the new key
    assert during.rotate() == 2
    assert during.rotate() == 0

    monkeypatch.delenv(ENV_PREVIOUS_KEY)
    after = FleetSecretStore(conn, "t")
    assert [after.get("x", n, "token") for n in "abc"] == [TOKEN, "second", "written during the rotation"]


def test_the_rotate_command_reseals_every_tenant_and_says_when_the_old_key_may_go(conn, master_key, fleet_database,
                                                                                 monkeypatch, tmp_path):
    from click.testing import CliRunner

    from archiver.cli.main import main

    def rotate_command():
        result = CliRunner().invoke(main, ["fleet", "secrets", "rotate", "--database", fleet_database,
                                           "--archive", str(tmp_path)], catch_exceptions=False)
        return result.exit_code, result.output

    FleetSecretStore(conn, "acme").set("x", "a", "token", TOKEN)
    FleetSecretStore(conn, "beta").set("y", "b", "token", "second")
    monkeypatch.setenv(ENV_MASTER_KEY, generate_master_key())             # a key nobody has any more
    FleetSecretStore(conn, "beta").set("y", "lost", "token", "sealed under a lost key")

    new_key = CliRunner().invoke(main, ["fleet", "secrets", "new-key"]).output.strip()
    monkeypatch.setenv(ENV_MASTER_KEY, new_key)
    monkeypatch.setenv(ENV_PREVIOUS_KEY, master_key)
    code, out = rotate_command()
    assert code == 1 and "2 secrets of 2 tenants sealed again" in out
    assert "not rotated: " in out and "tenant 'beta', y account 'lost'" in out and "sealed with another master key" in out
    assert "not done: 1 secrets are still under another key" in out
    assert TOKEN not in out and master_key not in out and new_key not in out

    FleetSecretStore(conn, "beta").delete("y", "lost", "token")            # (or stored again: `archiver auth`)
    code, out = rotate_command()
    assert code == 0 and "0 secrets of 0 tenants" in out and f"done: every secret is under the current key; " \
        f"{ENV_PREVIOUS_KEY} may be dropped" in out
    monkeypatch.delenv(ENV_PREVIOUS_KEY)
    assert FleetSecretStore(conn, "acme").get("x", "a", "token") == TOKEN
    assert FleetSecretStore(conn, "beta").get("y", "b", "token") == "second"
    monkeypatch.delenv(ENV_MASTER_KEY)
    code, out = rotate_command()
    assert code == 1 and f"set {ENV_MASTER_KEY}" in out


def test_a_workers_secrets_survive_a_database_restart_and_are_shared_by_its_threads(conn, fleet_database, postgres,
                                                                                     master_key, monkeypatch):
    """Review: `archiver worker` read every tenant's secrets through one connection made at its
    start, never made again: after a PostgreSQL restart every run failed ("the connection is
    closed") until the worker was restarted. Its stores now share a SecretsDatabase that
    connects again, once for all its threads."""
    import threading

    from archiver.cli.fleet import _tenant_secrets
    from archiver.fleet import db

    connects = []
    real_connect = db.connect
    monkeypatch.setattr(db, "connect", lambda url, **kw: connects.append(url) or real_connect(url, **kw))
    secrets_for = _tenant_secrets(fleet_database)       # what the worker's runs get their stores from
    secrets_for("acme").set("tiktok", "main", "tokens", TOKEN)
    secrets_for("beta").set("tiktok", "news", "tokens", "beta's")
    assert len(connects) == 1

    postgres.restart("fast")                              # every connection breaks
    threads, start, read = [], threading.Barrier(4), []

    def run(tenant, account):                             # four runs of a worker with --concurrency 4
        start.wait(timeout=30)
        read.append(secrets_for(tenant).get("tiktok", account, "tokens"))

    for tenant, account in [("acme", "main"), ("beta", "news")] * 2:
        threads.append(threading.Thread(target=run, args=(tenant, account)))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(read) == sorted([TOKEN, "beta's"] * 2)
    assert len(connects) == 2                             # connected again once, not once per thread
    secrets_for("acme").set("tiktok", "main", "tokens", "rotated after the restart")
    with psycopg.connect(fleet_database, autocommit=True) as another:
        assert FleetSecretStore(another, "acme").get("tiktok", "main", "tokens") == "rotated after the restart"
