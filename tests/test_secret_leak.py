"""No secret ends up anywhere a person (or a backup) could read it: not in the archive
database (nor its WAL), not in media/, not in anything a command printed, not in the
config, not in a log file. Signed CDN links are never stored whole either.

Real commands in subprocesses against `archiver simulate tiktok` over loopback HTTP:
the client secret is a distinctive random value handed over the way a server would
(ARCHIVER_SECRET_* environment variables); the access and refresh tokens are the real
ones `archiver auth` obtained. The simulator fails a share of requests with 500s (so
retries and errors get logged), expires access tokens quickly (so every run refreshes and
rotates them, sending the client secret each time), and at the end the grant is revoked,
so the last export fails with an authorization error — the path where messages are most
tempted to quote what was rejected.

The scenario runs once per module; each test looks at one kind of leak.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest

from cli_world import (FAKE_CLIENT_KEY, CliResult, authorize, cli_env, query, run_cli, start_simulator,
                       stored_tokens, write_account_config)

# Its module fixtures are built once: the module's tests run in one worker (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("secret-leak")

VIDEOS = 25
FOLLOWERS = 30
FAIL_RATE = 0.2          # share of data requests answered 500 internal_error (each is retried)
ACCESS_TTL = 120         # seconds; below the client's refresh margin, so every run refreshes first


@dataclass
class Scenario:
    archive: Path
    state: Path
    config_path: Path
    client_secret: str
    outputs: dict[str, CliResult] = field(default_factory=dict)   # label -> what the command printed
    seen_tokens: list[dict] = field(default_factory=list)         # tokens.json after each command

    @property
    def secrets(self) -> set[str]:
        found = {self.client_secret}
        for tokens in self.seen_tokens:
            found |= {tokens["access_token"], tokens["refresh_token"]}
        return found


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    root = tmp_path_factory.mktemp("leak")
    client_secret = f"SECRET-client-{secrets.token_hex(12)}"
    simulator = start_simulator(root / "sim", videos=VIDEOS, followers=FOLLOWERS, fail_rate=FAIL_RATE,
                                extra=["--client-secret", client_secret, "--access-ttl", str(ACCESS_TTL)])
    try:
        archive, state = root / "archive", root / "state"
        scene = Scenario(archive, state, write_account_config(archive, simulator.base_url), client_secret)
        env = cli_env(state, client_secret=client_secret)

        def archiver(label: str, *args: str, expect: int = 0) -> CliResult:
            result = run_cli([*args, "--archive", str(archive)], env)
            scene.outputs[label] = result
            assert result.returncode == expect, result.describe()
            scene.seen_tokens.append(stored_tokens(state))
            return result

        scene.outputs["auth"] = authorize(archive, env)
        scene.seen_tokens.append(stored_tokens(state))
        archiver("export --full", "export", "--platform", "tiktok", "--full")
        archiver("export", "export", "--platform", "tiktok")
        # The official export too: its items carry signed, expiring media links. A fake
        # with the simulator's seed builds the same world and signs links it accepts.
        from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig

        twin = FakeTikTok(FakeTikTokConfig(videos=VIDEOS, followers=FOLLOWERS), base_url=simulator.base_url)
        export_file = root / "TikTok_Data.zip"
        export_file.write_bytes(twin.export_zip(layout="new"))
        archiver("import", "import", str(export_file))
        archiver("status", "status")
        archiver("status --json", "status", "--json")
        archiver("verify", "verify")
        # Revoke the grant (as the person would in TikTok's settings): the next run fails
        # on authorization.
        revoked = httpx.post(f"{simulator.base_url}/v2/oauth/revoke/", data={
            "client_key": FAKE_CLIENT_KEY, "client_secret": client_secret,
            "token": scene.seen_tokens[-1]["access_token"]})
        assert revoked.status_code == 200, revoked.text
        archiver("export after revoke", "export", "--platform", "tiktok", expect=1)
        archiver("status after revoke", "status")
        archiver("status --json after revoke", "status", "--json")
        return scene
    finally:
        simulator.stop()


def encoded_forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)}


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_the_scenario_went_where_leaks_happen(scenario):
    """The knobs did their job, else the leak checks below would prove little."""
    logged = scenario.outputs["export --full"].output + scenario.outputs["export"].output
    assert "HTTP 500" in logged, logged                              # errors were logged (and retried)
    assert "refreshed the TikTok access token" in logged, logged     # the client secret was used
    assert len({t["refresh_token"] for t in scenario.seen_tokens}) >= 3  # auth + a rotation per run
    failed = scenario.outputs["export after revoke"]
    assert "archiver auth tiktok" in failed.output, failed.describe()
    assert "FAILED" in scenario.outputs["status after revoke"].stdout
    last = json.loads(scenario.outputs["status --json after revoke"].stdout)[0]["last_run"]
    assert last["status"] == "failed" and "auth" in last["message"]
    # The secrets are real and in the one place they belong, so the searches below look
    # for the right strings.
    tokens_file = (scenario.state / "tokens.json").read_text()
    assert scenario.seen_tokens[-1]["refresh_token"] in tokens_file
    # A client secret given through the environment stays there: it is not copied.
    assert scenario.client_secret not in tokens_file


def test_no_secret_in_the_archive_the_media_the_config_the_logs_or_the_output(scenario):
    needles = sorted({form for secret in scenario.secrets for form in encoded_forms(secret)})
    # Every file in the archive folder: archive.db, its -wal and -shm, media/, config.toml.
    haystacks = {str(path): path.read_bytes() for path in files_under(scenario.archive)}
    assert str(scenario.archive / "archive.db") in haystacks
    assert str(scenario.config_path) in haystacks
    assert sum("/media/" in name for name in haystacks) > VIDEOS
    # Any log file archiver may have written next to its state (none is expected; if one
    # appears, it must be clean). tokens.json is where secrets belong.
    for path in files_under(scenario.state):
        if path.name not in ("tokens.json", "tokens.json.lock"):
            haystacks[str(path)] = path.read_bytes()
    for label, result in scenario.outputs.items():
        haystacks[f"stdout+stderr of `archiver {label}`"] = result.output.encode()
    leaks = [(where, needle) for where, content in haystacks.items() for needle in needles
             if needle.encode() in content]
    assert not leaks, f"secrets found: {leaks}"


def test_no_signed_link_is_stored(scenario):
    """CDN links carry x-expires / x-signature: stored, they would be useless (expired)
    and still a credential until then. Only the link without its query is kept."""
    stored_urls = query(scenario.archive, "SELECT source_url FROM post_media WHERE source_url IS NOT NULL")
    assert len(stored_urls) > VIDEOS
    assert [url for (url,) in stored_urls if "?" in url or "x-signature" in url] == []
    for table in ("posts", "accounts", "comments", "people"):
        signed = query(scenario.archive, f"SELECT raw FROM {table} WHERE raw LIKE '%x-signature%'")
        assert signed == [], f"{table}.raw keeps a signed link: {signed[0][0][:300]}"
    for name in ("archive.db", "archive.db-wal"):
        path = scenario.archive / name
        content = path.read_bytes() if path.exists() else b""
        assert b"x-signature" not in content, f"{name} holds a signed link"
