"""The fleet's accounts (src/archiver/fleet/accounts.py): what a name may be, what `fleet
import` changes of an existing account (only the columns its header names), a row the
database cannot store reported by its line, and `archiver fleet accounts` listing them.
Also the database URL's password kept out of messages and the config wherever it sits."""

from __future__ import annotations

import pytest
from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)

from archiver.fleet import accounts
from archiver.fleet.db import FleetError

KNOWN = {"mastodon": object(), "tiktok": object()}


@pytest.mark.parametrize("name", [".", "..", "...", ""])
def test_dot_names_are_refused_for_a_tenant_or_an_account(name):
    # A tenant or an account is a folder name (LocalArchives, browse): ".." would climb out of it.
    for tenant, account in ((name, "news"), ("acme", name)):
        with pytest.raises(FleetError, match="expected letters"):
            accounts.check(tenant, "mastodon", account, known_platforms=KNOWN)
    assert accounts.check("acme.org", "mastodon", "a.b..c", known_platforms=KNOWN) == "mastodon"
    assert accounts.check(".acme", "mastodon", "news.", known_platforms=KNOWN) == "mastodon"


@pytest.mark.parametrize("query", ["password=hunter2", "sslmode=require&sslpassword=hunter2",
                                   "pass%77ord=hunter2", "password=hunter2&password=hunter2"])
def test_a_password_in_the_database_urls_query_is_never_shown_nor_accepted_in_the_config(tmp_path, query):
    # libpq takes ?password= and ?sslpassword= (keys percent-decoded) as well as user:password@.
    from click.testing import CliRunner

    from archiver.cli.main import main
    from archiver.config import ConfigError, load_config
    from archiver.fleet import db

    url = f"postgresql://archiver@127.0.0.1:1/fleet?{query}"   # port 1: refused at once
    shown = db.shown_url(url)
    assert "hunter2" not in shown and shown.startswith("postgresql://archiver@127.0.0.1:1/fleet?")
    assert db.shown_url("postgresql://a@h/f?sslmode=require&application_name=x") == \
        "postgresql://a@h/f?sslmode=require&application_name=x"   # nothing else hidden
    result = CliRunner().invoke(main, ["fleet", "status", "--database", url, "--archive", str(tmp_path)],
                                env={"ARCHIVER_FLEET_DATABASE": ""})
    assert result.exit_code == 1 and "cannot connect" in result.output
    assert "hunter2" not in result.output and "127.0.0.1:1/fleet" in result.output

    config_file = tmp_path / "config.toml"
    config_file.write_text(f'[fleet]\ndatabase = "{url}"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(config_file)
    assert "fleet.database" in str(caught.value) and "hunter2" not in str(caught.value)


def _write_csv(folder, name, text):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(url):
    from fleet_world import fetch

    return {row[0]: row[1:] for row in fetch(url, "SELECT name, schedule, timezone, enabled, full_every_days, options "
                                                  "FROM fleet_accounts ORDER BY id")}


def test_an_import_changes_only_the_columns_its_header_names(fleet_database, tmp_path):
    from archiver.fleet import db, schema

    with db.connect(fleet_database) as connection:
        schema.apply(connection)
        first = accounts.import_csv(connection, _write_csv(tmp_path, "all.csv", (
            "tenant,platform,name,schedule,timezone,enabled,full_every_days,options\n"
            'acme,mastodon,news,30 3 * * *,Europe/Berlin,false,3,"{""instance"": ""social.example""}"\n')),
            known_platforms=KNOWN)
        assert (first.added, first.problems) == (1, [])
        # A file naming a new schedule only: the rest stays as it was
        # (a missing enabled column must not re-enable a disabled account, nor options vanish).
        second = accounts.import_csv(connection, _write_csv(tmp_path, "schedule.csv", (
            "tenant,platform,name,schedule\n"
            "acme,mastodon,news,0 4 * * *\n"
            "acme,mastodon,desk,0 5 * * *\n")), known_platforms=KNOWN)
        assert (second.added, second.updated, second.problems) == (1, 1, [])
        rows = _rows(fleet_database)
        assert rows["news"] == ("0 4 * * *", "Europe/Berlin", False, 3, {"instance": "social.example"})
        assert rows["desk"] == ("0 5 * * *", None, True, 7, {})   # a new account gets the defaults
        # Only the key columns: existing accounts are counted, nothing of them changes.
        third = accounts.import_csv(connection, _write_csv(tmp_path, "keys.csv", "tenant,platform,name\n"
                                                           "acme,mastodon,news\n"), known_platforms=KNOWN)
        assert (third.added, third.updated, third.problems) == (0, 1, [])
        assert _rows(fleet_database) == rows
        # A column named with an empty cell means its default, as for a new account.
        accounts.import_csv(connection, _write_csv(tmp_path, "blank.csv", "tenant,platform,name,timezone,enabled\n"
                                                   "acme,mastodon,news,,\n"), known_platforms=KNOWN)
        assert _rows(fleet_database)["news"] == ("0 4 * * *", None, True, 3, {"instance": "social.example"})


@pytest.mark.parametrize("checked", [True, False], ids=["checked", "refused-by-the-database"])
def test_a_nul_in_a_rows_options_is_that_rows_problem_named_by_its_line(fleet_database, tmp_path, monkeypatch,
                                                                       checked):
    # PostgreSQL's jsonb cannot hold \u0000: once it aborted the whole import with a traceback.
    # The check names it; past the check, what the database refuses is still one row's problem.
    from archiver.fleet import db, schema

    if not checked:
        monkeypatch.setattr(accounts, "_holds_nul", lambda value: False)

    csv_file = _write_csv(tmp_path, "nul.csv", (
        "tenant,platform,name,options\n"
        'acme,mastodon,first,"{""instance"": ""social.example""}"\n'
        'acme,mastodon,nul,"{""instance"": ""social\\u0000.example""}"\n'
        'acme,mastodon,key,"{""inst\\u0000ance"": ""social.example""}"\n'
        'acme,mastodon,after,"{""instance"": ""social.example""}"\n'))
    with db.connect(fleet_database) as connection:
        schema.apply(connection)
        result = accounts.import_csv(connection, csv_file, known_platforms=KNOWN)
    assert (result.added, result.updated) == (2, 0)
    assert [problem.split(": ", 1)[0] for problem in result.problems] == [f"{csv_file}, line 3", f"{csv_file}, line 4"]
    why = "holds a NUL character" if checked else "the database refused a value (unsupported Unicode escape"
    assert all(why in problem and problem.endswith("row skipped") for problem in result.problems), result.problems
    assert sorted(_rows(fleet_database)) == ["after", "first"]


def test_fleet_accounts_lists_them_with_their_last_run_and_the_unknown_account_error_points_there(fleet_database,
                                                                                                   tmp_path):
    import json

    from click.testing import CliRunner
    from fleet_world import fetch

    from archiver.cli.main import main
    from archiver.fleet import db, schema

    def cli(*args):
        result = CliRunner().invoke(main, [*args, "--database", fleet_database, "--archive", str(tmp_path)],
                                    env={"ARCHIVER_FLEET_DATABASE": ""}, catch_exceptions=False)
        return result.exit_code, result.output

    with db.connect(fleet_database) as connection:
        schema.apply(connection)
        news, _ = accounts.add(connection, "acme", "mastodon", "news", schedule="30 3 * * *", timezone="Europe/Berlin")
        desk, _ = accounts.add(connection, "acme", "tiktok", "desk", enabled=False)
        accounts.add(connection, "beta", "mastodon", "night")
        for slot, status in (("2026-12-06 02:30Z", "ok"), ("2026-12-07 02:30Z", "failed")):
            connection.execute("INSERT INTO fleet_runs (account_id, scheduled_for, fence, worker, status, started_at) "
                               "VALUES (%s, %s, 1, 'w', %s, %s)", [news.id, slot, status, slot])
    code, out = cli("fleet", "accounts")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["id", "account", "schedule", "timezone", "enabled", "last", "run"]
    assert lines[1].split() == [str(news.id), "acme/mastodon:news", "30", "3", "*", "*", "*", "Europe/Berlin", "yes",
                                "failed", "2026-12-07", "02:30", "UTC"]
    desk_line = lines[2].split()
    assert desk_line[:2] == [str(desk.id), "acme/tiktok:desk"] and "(nightly)" in lines[2]
    assert desk_line[-2:] == ["no", "never"]
    assert len(lines) == 4, out
    code, out = cli("fleet", "accounts", "--tenant", "acme", "--platform", "mastodon", "--json")
    listed = json.loads(out)
    assert [a["account"] for a in listed] == ["acme/mastodon:news"]
    assert listed[0] | {"last_run": None} == {
        "id": news.id, "account": "acme/mastodon:news", "tenant": "acme", "platform": "mastodon", "name": "news",
        "schedule": "30 3 * * *", "timezone": "Europe/Berlin", "enabled": True, "full_every_days": 7,
        "last_run": None}
    assert listed[0]["last_run"]["status"] == "failed"
    assert listed[0]["last_run"]["scheduled_for"].startswith("2026-12-07T02:30:00")
    code, out = cli("fleet", "accounts", "--tenant", "nobody")
    assert code == 0 and "no accounts" in out
    assert fetch(fleet_database, "SELECT count(*) FROM fleet_accounts")[0][0] == 3

    code, out = cli("enqueue", "--account", "acme/mastodon:nope")
    assert code == 1 and "`archiver fleet accounts` lists them" in out


def test_libpqs_keyword_form_of_the_database_is_refused_without_showing_it(tmp_path):
    # "host=… password=…" is libpq's other spelling: not a URL, and it may hold a password.
    from click.testing import CliRunner

    from archiver.cli.main import main
    from archiver.config import ConfigError, load_config

    dsn = "host=db.example user=archiver password=hunter2 dbname=archiver"
    result = CliRunner().invoke(main, ["fleet", "status", "--database", dsn, "--archive", str(tmp_path)],
                                env={"ARCHIVER_FLEET_DATABASE": ""})
    assert result.exit_code == 1 and "not a postgresql:// URL" in result.output and "hunter2" not in result.output
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'[fleet]\ndatabase = "{dsn}"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(config_file)
    assert "fleet.database" in str(caught.value) and "hunter2" not in str(caught.value)


def test_a_number_that_is_not_ascii_digits_is_one_rows_problem(fleet_database, tmp_path):
    # str.isdigit() takes "²": int() then failed, and the import stopped at that row.
    from archiver.fleet import db, schema

    csv_file = _write_csv(tmp_path, "days.csv", "tenant,platform,name,full_every_days\n"
                                                "acme,mastodon,good,3\nacme,mastodon,bad,²\nacme,mastodon,zero,0\n"
                                                "acme,mastodon,after,7\n")
    with db.connect(fleet_database) as connection:
        schema.apply(connection)
        result = accounts.import_csv(connection, csv_file, known_platforms=KNOWN)
        assert [problem.split(": ", 1)[0] for problem in result.problems] == [f"{csv_file}, line 3",
                                                                             f"{csv_file}, line 4"]
        with pytest.raises(FleetError, match="no fleet account '²'"):
            accounts.find(connection, "²")
    assert sorted(_rows(fleet_database)) == ["after", "good"]
