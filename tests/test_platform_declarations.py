"""What a connector declares as data reaches the core's checks and commands: its config
options (an unknown or mistyped key of an account table is an error naming it, as for the
core's keys), its auth options (the options of `archiver auth NAME`), and its simulator
(found through the entry-point group ``archiver.simulators``)."""

from __future__ import annotations

import pytest
from cli_world import run_cli

from archiver.config import ConfigError, load_config
from archiver.connector import Option, installed_connectors


def config_with(tmp_path, table: str):
    path = tmp_path / "config.toml"
    path.write_text("[accounts.main]\n" + table, encoding="utf-8")
    return path


def test_an_account_key_no_one_declares_is_an_error_naming_the_table_and_key(tmp_path):
    path = config_with(tmp_path, 'platform = "tiktok"\npkce_encodnig = "hex"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(path, installed_connectors())
    message = str(raised.value)
    assert f"{path}, line 3: accounts.main.pkce_encodnig = 'hex'" in message, message
    assert "pkce_encoding" in message and "schedule" in message, message   # the keys it does understand


def test_another_platforms_option_is_unknown_to_this_one(tmp_path):
    path = config_with(tmp_path, 'platform = "tiktok"\nquota_units = 500\n')
    with pytest.raises(ConfigError, match=r"accounts\.main\.quota_units = 500: expected one of the keys a tiktok "):
        load_config(path, installed_connectors())


def test_a_declared_option_of_the_wrong_type_is_an_error_naming_the_key_and_the_type(tmp_path):
    path = config_with(tmp_path, 'platform = "youtube"\nquota_units = "lots"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(path, installed_connectors())
    assert "accounts.main.quota_units = 'lots': expected a whole number, e.g. 7." in str(raised.value)
    path = config_with(tmp_path, 'platform = "mastodon"\nfollows_every_hours = true\n')
    with pytest.raises(ConfigError, match=r"follows_every_hours = True: expected a number, e.g. 20\."):
        load_config(path, installed_connectors())


def test_declared_options_of_the_right_type_are_the_accounts_options(tmp_path):
    path = config_with(tmp_path, 'platform = "mastodon"\nbase_url = "https://example.social"\n'
                                 'follows_every_hours = 6\npaged_requests_per_15min = 12.5\n')
    account = load_config(path, installed_connectors()).accounts[0]
    assert account.options == {"follows_every_hours": 6, "paged_requests_per_15min": 12.5}


def test_a_secret_in_the_config_is_still_refused_as_a_secret(tmp_path):
    path = config_with(tmp_path, 'platform = "tiktok"\nclient_secret = "s3cret"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(path, installed_connectors())
    assert "no secrets in the config file" in str(raised.value) and "s3cret" not in str(raised.value)


def test_the_commands_refuse_such_a_config(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    config_with(archive, 'platform = "bluesky"\nhandle = "alice.test"\nappview = "https://x.example"\n')
    result = run_cli(["export", "--platform", "bluesky", "--archive", str(archive)])
    assert result.returncode == 1 and "accounts.main.appview = 'https://x.example'" in result.stderr, result.describe()


def test_every_connector_declares_its_options_as_data():
    for name, cls in installed_connectors().items():
        for option in (*cls.auth_options, *cls.config_options):
            assert isinstance(option, Option) and option.help, (name, option)
            assert option.type in (str, int, float, bool), (name, option)


@pytest.mark.parametrize("platform, has, lacks", [
    ("mastodon", ["--instance URL", "--token-stdin", "--account", "--no-browser", "--port"],
     ["--handle", "--client-key", "--client-secret"]),
    ("bluesky", ["--handle HANDLE", "--token-stdin"], ["--instance", "--client-key"]),
    ("tiktok", ["--client-key, --client-id", "--client-secret"], ["--instance", "--handle", "--token-stdin"]),
    ("youtube", ["--client-id, --client-key", "--client-secret"], ["--instance", "--handle"]),
])
def test_auth_shows_the_platforms_own_options(platform, has, lacks):
    result = run_cli(["auth", platform, "--help"])
    assert result.returncode == 0, result.describe()
    for option in has:
        assert option in result.stdout, result.stdout
    for option in lacks:
        assert option not in result.stdout, result.stdout


def test_auth_of_an_unknown_platform_names_the_installed_ones():
    result = run_cli(["auth", "myspace", "--no-browser"])
    assert result.returncode == 1 and "unknown platform 'myspace'" in result.stderr, result.describe()
    assert "tiktok" in result.stderr


def test_every_built_in_connector_has_a_simulator_registered():
    from archiver.sim import Simulator, demo_simulator, installed_simulators

    simulators = installed_simulators()
    assert set(installed_connectors()) <= set(simulators)
    assert all(isinstance(s, Simulator) and s.name == name for name, s in simulators.items())
    assert demo_simulator().name == "tiktok"   # the demo the README shows


def test_simulate_of_an_unknown_platform_names_the_installed_ones():
    result = run_cli(["simulate", "myspace"])
    assert result.returncode == 1 and "unknown platform 'myspace'" in result.stderr, result.describe()


def test_simulate_passes_the_simulators_own_help_through():
    result = run_cli(["simulate", "tiktok", "--help"])
    assert result.returncode == 0 and "--access-ttl" in result.stdout, result.describe()
