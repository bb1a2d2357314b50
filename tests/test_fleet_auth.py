"""A fleet account's secrets get in the way a single user's do: `archiver secret set … --tenant T`
and `archiver auth PLATFORM --tenant T --account A` (the real CLI, a simulated TikTok on
loopback, the tests' PostgreSQL) seal them in the fleet's database, where a worker's run reads
them; no value is stored readable, and mistakes (no master key, an account the fleet does not
have) are refused with what to do."""

from __future__ import annotations

import datetime as dt

import pytest
from cli_world import authorize
from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)

pytest.importorskip("psycopg")
pytest.importorskip("cryptography")

SLOT = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.timezone.utc)


def _env(url: str, master_key: str | None) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env.update({"ARCHIVER_FLEET_DATABASE": url, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                "NO_COLOR": "1"})
    if master_key:
        env["ARCHIVER_FLEET_MASTER_KEY"] = master_key
    return env


def _cli(env, *args, stdin: str = ""):
    """The CLI in this process (quick); `archiver auth` below runs as a real process."""
    from click.testing import CliRunner

    from archiver.cli.main import main

    unset = {"ARCHIVER_HOME": None, "ARCHIVER_FLEET_MASTER_KEY": None, "CREDENTIALS_DIRECTORY": None}
    return CliRunner().invoke(main, list(args), input=stdin, env={**unset, **env})


def test_secrets_and_an_authorization_are_sealed_for_a_fleet_account_and_a_run_uses_them(fleet_database, tmp_path,
                                                                                          monkeypatch):
    from archiver.fleet import db
    from archiver.fleet.secrets import FleetSecretStore, generate_master_key, load_master_keys
    from archiver.fleet.worker import FleetServices, LocalArchives
    from archiver.sim import installed_simulators

    key = generate_master_key()
    env = _env(fleet_database, key)
    monkeypatch.setenv("ARCHIVER_FLEET_MASTER_KEY", key)   # this process reads them too
    keys = load_master_keys()
    with installed_simulators()["tiktok"].start_demo(posts=3, followers=2) as world:
        assert _cli(env, "fleet", "init").exit_code == 0
        added = _cli(env, "fleet", "add", "acme", "tiktok", "main", "--option", f"base_url={world.base_url}")
        assert added.exit_code == 0, added.output
        config = world.fake.config

        refused = _cli(_env(fleet_database, None), "secret", "set", "tiktok", "main", "client_key", "--tenant", "acme",
                       stdin=config.client_key)
        assert refused.exit_code != 0 and "ARCHIVER_FLEET_MASTER_KEY" in refused.output
        typo = _cli(env, "secret", "set", "tiktok", "mian", "client_key", "--tenant", "acme", stdin=config.client_key)
        assert typo.exit_code != 0 and "acme/tiktok:mian" in typo.output and "fleet accounts" in typo.output
        for name, value in (("client_key", config.client_key), ("client_secret", config.client_secret)):
            stored = _cli(env, "secret", "set", "tiktok", "main", name, "--tenant", "acme", stdin=value)
            assert stored.exit_code == 0 and "(fleet)" in stored.output, stored.output

        result = authorize(tmp_path / "unused", env, extra_args=("--tenant", "acme", "--account", "main"))
        assert "sealed in the fleet's database for acme/tiktok:main" in result.stdout

        with db.connect(fleet_database) as connection:
            rows = connection.execute("SELECT key, sealed FROM fleet_secrets ORDER BY key").fetchall()
            assert [name for name, _ in rows] == ["client_key", "client_secret", "tokens"]
            assert not any(config.client_secret.encode() in bytes(sealed) for _, sealed in rows)
            tokens = FleetSecretStore(connection, "acme", *keys).get("tiktok", "main", "tokens")
            assert tokens and bytes(rows[2][1]).find(b"access_token") == -1
            assert "access_token" in tokens

            # A worker's run reads them (and would fail without: no token, no API request).
            services = FleetServices(fleet_database, LocalArchives(
                tmp_path / "archives", secrets_for=lambda tenant: FleetSecretStore(connection, tenant, *keys)))
            assert services.run_job(1, SLOT, full=False, job_id=None) == "ok"
        assert config.client_secret not in result.output   # the client key is public: the authorize URL has it


def test_an_instance_given_to_a_fleet_accounts_auth_must_be_the_accounts(fleet_database):
    """`archiver auth mastodon --tenant T --account A --instance X`: X must be the fleet
    account's instance, never put in its place (a token of another instance sealed over the
    account's working one); the same for Bluesky's --handle below."""
    from archiver.fleet.secrets import generate_master_key

    env = _env(fleet_database, generate_master_key())
    assert _cli(env, "fleet", "init").exit_code == 0
    assert _cli(env, "fleet", "add", "acme", "mastodon", "news", "--option",
                "base_url=http://127.0.0.1:9").exit_code == 0
    other = _cli(env, "auth", "mastodon", "--tenant", "acme", "--account", "news", "--no-browser",
                 "--instance", "http://127.0.0.1:8")
    assert other.exit_code != 0 and "has base_url = 'http://127.0.0.1:9', not 'http://127.0.0.1:8'" in other.output, \
        other.output


def test_a_handle_given_to_a_fleet_accounts_auth_must_be_the_accounts(fleet_database):
    from archiver.fleet.secrets import generate_master_key

    env = _env(fleet_database, generate_master_key())
    assert _cli(env, "fleet", "init").exit_code == 0
    assert _cli(env, "fleet", "add", "acme", "bluesky", "desk", "--option", "handle=alice.test").exit_code == 0
    other = _cli(env, "auth", "bluesky", "--tenant", "acme", "--account", "desk", "--handle", "bob.test",
                 "--token-stdin", stdin="app-password")
    assert other.exit_code != 0 and "acme/bluesky:desk has handle = 'alice.test', not 'bob.test'" in other.output, \
        other.output
