"""`archiver demo` for every simulator, and `archiver demo --platform all`: ONE archive with an
account per installed simulator that has a demo (its API run, then its export file where the
platform has one; a newsletter's or shop's CSV export alone), tried as a new user would — the real command in a fresh environment, then
`archiver status` and the `archiver serve` pages over the result.

The worlds are tiny (2 posts, 3 followers a platform): the whole run costs ~10-20 s."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from archiver.sim import DemoWorld, Simulator, demo_simulators, has_demo, installed_simulators
from cli_world import cli_env, run_cli

POSTS, FOLLOWERS = 2, 3
# The tests of the one `--platform all` run share one xdist worker, which makes it once.
pytestmark = pytest.mark.xdist_group("demo_all")


@pytest.fixture(scope="module")
def all_demo(tmp_path_factory):
    """`archiver demo --platform all` run once by a new user (no ARCHIVER_HOME, env secrets,
    a state folder of its own), with what it printed."""
    root = tmp_path_factory.mktemp("demo-all")
    env = cli_env(root / "state", platform="none", ARCHIVER_HOME=str(root / "home"))
    folder = root / "everything"
    result = run_cli(["demo", "--platform", "all", "--dir", str(folder), "--posts", str(POSTS),
                      "--followers", str(FOLLOWERS)], env, timeout=300)
    return folder, env, result


def rows(folder: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{folder / 'archive.db'}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


# The platforms with an API: each simulator serves a fake of it.
WITH_API = ("bluesky", "facebook", "instagram", "linkedin", "mastodon", "pinterest", "threads", "tiktok", "x",
            "youtube")
# Newsletters and shops: archived from their CSV exports alone.
LISTS = ("buttondown", "mailchimp", "shopify", "substack", "woocommerce")


def test_every_built_in_simulator_has_a_demo():
    from archiver.connector import installed_connectors

    simulators = installed_simulators()
    assert [name for name in installed_connectors() if not has_demo(simulators[name])] == []
    assert {s.name for s in demo_simulators()} >= set(WITH_API + LISTS)


def test_all_builds_one_archive_with_an_account_per_platform(all_demo):
    folder, _env, result = all_demo
    assert result.returncode == 0, result.describe()
    assert "SIMULATED" in result.stdout and "no real account is contacted" in result.stdout
    platforms = [s.name for s in demo_simulators()]
    accounts = dict(rows(folder, "SELECT account_id, platform FROM accounts"))   # a list has no profile
    assert accounts == {f"{p}:{p}": p for p in platforms if p not in LISTS}
    # Every platform's API run put posts in, and every one ran at least one job that went well.
    with_posts = {platform for (platform,) in rows(folder, "SELECT DISTINCT platform FROM posts")}
    assert with_posts == set(WITH_API)
    # The newsletters' and shops' lists, from their export files: what `audience reach` counts.
    with_contacts = {platform for (platform,) in rows(folder, "SELECT DISTINCT platform FROM owned_contacts")}
    assert with_contacts == set(LISTS)
    # The export files went through the importer too (where the platform has one): import runs.
    imported = {account for (account,) in rows(
        folder, "SELECT DISTINCT account_id FROM runs WHERE kind='import' AND status='ok'")}
    assert {f"{platform}:{platform}" for platform in WITH_API + LISTS} <= imported
    # Followers from several platforms: what `audience reach` and the report compare.
    with_followers = {account for (account,) in rows(
        folder, "SELECT DISTINCT account_id FROM follows WHERE kind='followers' AND ended_at IS NULL")}
    assert len(with_followers) >= 8, with_followers
    # The exports sit in a folder of their own, not beside archive.sqlite.
    assert (folder / "simulated-exports").is_dir()
    assert not list(folder.glob("*.zip"))


def test_its_config_names_each_account_where_archiver_simulate_serves_it(all_demo):
    from archiver.config import load_config
    from archiver.connector import installed_connectors

    folder, _env, _result = all_demo
    config = load_config(folder / "config.toml", installed_connectors())
    by_name = {account.name: account for account in config.accounts}
    assert sorted(by_name) == [s.name for s in demo_simulators()]
    assert all(a.platform == name for name, a in by_name.items())
    ports = [a.base_url for a in by_name.values() if a.platform not in LISTS]
    assert len(set(ports)) == len(ports) and all(p.startswith("http://127.0.0.1:") for p in ports)
    assert all(not by_name[name].base_url for name in LISTS)   # no API: nothing to serve
    # Settings that named the (gone) fake follow base_url (Bluesky's PLC directory, AppView).
    bluesky = by_name["bluesky"]
    assert bluesky.options["plc_url"] == bluesky.options["appview_url"] == bluesky.base_url
    text = (folder / "config.toml").read_text()
    # ... and the command that serves the same world again is in its comment.
    assert f"archiver simulate bluesky --port {bluesky.base_url.rsplit(':', 1)[1]} --posts {POSTS} " \
           f"--followers {FOLLOWERS} --seed 7`" in text


def test_status_and_serve_take_the_archive(all_demo):
    folder, env, _result = all_demo
    status = run_cli(["status", "--archive", str(folder)], env)
    assert status.returncode == 0, status.describe()
    for simulator in demo_simulators():
        assert f"{simulator.name}:{simulator.name}" in status.stdout

    from archiver.archive import Archive
    from archiver.views.serve import DATABASE, canned_queries, make_datasette

    datasette = make_datasette(Archive(folder))

    async def pages() -> dict[str, int]:
        paths = [f"/{DATABASE}", f"/{DATABASE}/accounts", f"/{DATABASE}/posts",
                 *(f"/{DATABASE}/{query}" for query in canned_queries())]
        return {path: (await datasette.client.get(path)).status_code for path in paths}

    answered = asyncio.run(pages())
    assert set(answered.values()) == {200}, answered


# --------------------------------------------------------------------------- without a real run


class _NoDemo(Simulator):
    """A third party's simulator that offers no demo."""

    name = "tiktok"


class _Broken(Simulator):
    """A simulator whose demo fails at the start (``where="start"``) or while storing the
    credentials (``where="credentials"``)."""

    def __init__(self, name: str, where: str):
        self.name, self.where = name, where

    def start_demo(self, *, posts: int, followers: int) -> DemoWorld:
        if self.where == "start":
            raise RuntimeError("the fake could not start")
        world = DemoWorld()
        world.base_url = "http://127.0.0.1:9"
        world.store_credentials = lambda secrets, account: (_ for _ in ()).throw(OSError("no credentials"))
        return world


class _ExportOnly(Simulator):
    """A provider without an API: its demo world is an export file and nothing else."""

    name = "mailchimp"

    def start_demo(self, *, posts: int, followers: int) -> DemoWorld:
        from archiver_connectors.mailchimp.sim import write_export
        from archiver_connectors.owned.sim import fake_contacts

        world = DemoWorld()
        world.export_file = lambda folder: write_export(folder / "members_export.zip", fake_contacts(followers))
        return world


def test_a_provider_without_an_api_is_imported_from_its_export_alone(tmp_path):
    from archiver.config import load_config
    from archiver.connector import installed_connectors
    from archiver.sim.demo import run_all_demos

    said: list[str] = []
    folder = tmp_path / "demo"
    code = run_all_demos(folder, posts=1, followers=5, echo=said.append, simulators=[_ExportOnly()])
    text = "\n".join(said)
    assert code == 0, text
    assert "through the (simulated) API" not in text and "1/1  importing" in text
    assert rows(folder, "SELECT count(DISTINCT contact_id) FROM owned_contacts") == [(5,)]
    account, = load_config(folder / "config.toml", installed_connectors()).accounts
    assert account.platform == "mailchimp" and not account.base_url


def test_one_failing_platform_is_reported_and_the_next_still_runs(tmp_path):
    from archiver.sim.demo import run_all_demos

    said: list[str] = []
    code = run_all_demos(tmp_path / "demo", posts=1, followers=1, echo=said.append,
                         simulators=[_Broken("tiktok", "start"), _Broken("x", "credentials")])
    text = "\n".join(said)
    assert code == 1
    assert "FAILED: RuntimeError: the fake could not start" in text
    assert "FAILED: OSError: no credentials" in text          # x ran after TikTok failed
    assert "FAILED: tiktok, x" in text


def test_a_simulator_without_a_demo_is_left_out_of_all_and_named_alone(monkeypatch, tmp_path):
    import archiver.sim as sim
    from click.testing import CliRunner

    from archiver.cli.sim import demo

    assert not has_demo(_NoDemo())
    monkeypatch.setattr(sim, "installed_simulators", lambda: {"tiktok": _NoDemo()})
    assert sim.demo_simulators() == []
    alone = CliRunner().invoke(demo, ["--platform", "tiktok", "--dir", str(tmp_path / "one")])
    assert alone.exit_code == 1 and "the tiktok simulator has no demo" in alone.output, alone.output
    every = CliRunner().invoke(demo, ["--platform", "all", "--dir", str(tmp_path / "all")])
    assert every.exit_code == 1 and "no installed simulator offers a demo" in every.output, every.output
