"""End-to-end helpers: the REAL `archiver` command run as subprocesses, against
`archiver simulate tiktok|instagram|facebook|threads|youtube|bluesky|mastodon|linkedin|pinterest` served in
another process over real loopback HTTP.

Used by test_e2e_crash.py, test_secret_leak.py, test_cli.py and test_platforms_e2e.py
(every helper takes ``platform=``, TikTok by default; Instagram, Facebook, Threads, YouTube,
Bluesky and Mastodon work the same way):

    sim = start_simulator(tmp_path, videos=60, followers=200)   # a fake TikTok process
    write_account_config(archive_dir, sim.base_url)              # [accounts.main] -> sim
    env = cli_env(tmp_path / "state")                            # env secrets, no keyring
    authorize(archive_dir, env)                                  # `archiver auth`, we play the browser
    run_cli(["export", "--platform", "tiktok", "--archive", str(archive_dir)], env)

Every test gets its own simulator process and state folder, so nothing leaks between
tests and nothing touches a real keyring.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

FAKE_CLIENT_KEY = "fake-client-key"
FAKE_CLIENT_SECRET = "fake-client-secret"
AUTHORIZE_URL = re.compile(r"http://127\.0\.0\.1:\d+/v2/auth/authorize/\?\S+")

# What differs between the platforms for these helpers: the app id each fake accepts by
# default (and the secret name it goes by), and where its login window lives.
FAKE_CLIENT_IDS = {
    "tiktok": FAKE_CLIENT_KEY,
    "instagram": "1000000000000001",                              # FakeInstagramConfig.client_id
    "youtube": "fake-client-id.apps.googleusercontent.com",       # FakeYouTubeConfig.client_id
    "facebook": "2000000000000002",                               # FakeFacebookConfig.client_id
    "threads": "2000000000000002",                                # FakeThreadsConfig.client_id
}
# The fakes added last say theirs on their config class (FakeLinkedInConfig.client_id …).
FAKE_CONFIG_CLASSES = {"linkedin": "FakeLinkedInConfig", "pinterest": "FakePinterestConfig", "x": "FakeXConfig"}
CLIENT_ID_KEYS = {"tiktok": "client_key", "instagram": "client_id", "youtube": "client_id",
                  "facebook": "client_id", "threads": "client_id", "linkedin": "client_id",
                  "pinterest": "client_id", "x": "client_id"}
AUTHORIZE_URLS = {
    "tiktok": AUTHORIZE_URL,
    "instagram": re.compile(r"http://127\.0\.0\.1:\d+/oauth/authorize\?\S+"),
    "facebook": re.compile(r"http://127\.0\.0\.1:\d+/(?:v\d+\.\d+/)?dialog/oauth\?\S+"),
    "threads": re.compile(r"http://127\.0\.0\.1:\d+/oauth/authorize\?\S+"),
    "youtube": re.compile(r"http://127\.0\.0\.1:\d+/o/oauth2/v2/auth\?\S+"),
    "mastodon": re.compile(r"http://127\.0\.0\.1:\d+/oauth/authorize\?\S+"),
    "linkedin": re.compile(r"http://127\.0\.0\.1:\d+/oauth/v2/authorization\?\S+"),
    "pinterest": re.compile(r"http://127\.0\.0\.1:\d+/oauth/?\?\S+"),
    "x": re.compile(r"http://127\.0\.0\.1:\d+/i/oauth2/authorize\?\S+"),
}
# The open platforms need no app of ours: Mastodon registers one on the instance during
# `archiver auth` (its client id and secret go to the SecretStore), Bluesky logs in with
# the user's handle and an app password (connectors/archiver_connectors/bluesky/sim/fake.py FakeBlueskyConfig).
BLUESKY_HANDLE = "alice.test"
BLUESKY_APP_PASSWORD = "abcd-efgh-ijkl-mnop"
# The Facebook Page a simulated Facebook account archives (the fake's first Page, by name;
# its id works too). A Facebook account without `page` is the person's own profile.
FACEBOOK_PAGE = "Roof Cam Studio"
# How each simulator is told its number of posts (the others take --videos).
POSTS_OPTION = {"facebook": "--posts", "threads": "--posts", "linkedin": "--posts", "pinterest": "--posts",
                "x": "--posts"}


def fake_client_id(platform: str) -> str:
    """The app id ``platform``'s fake accepts by default."""
    if platform in FAKE_CONFIG_CLASSES:
        from importlib import import_module

        module = import_module(f"archiver_connectors.{platform}.sim.fake")
        return getattr(module, FAKE_CONFIG_CLASSES[platform]).client_id
    return FAKE_CLIENT_IDS[platform]


def archiver_command() -> list[str]:
    """The installed console script (what a user runs), next to this interpreter."""
    script = Path(sys.executable).with_name("archiver")
    if script.exists():
        return [str(script)]
    found = shutil.which("archiver")
    if found:
        return [found]
    return [sys.executable, "-c", "from archiver.cli.main import main; main()"]


def cli_env(state_dir: Path, *, client_key: str | None = None, client_secret: str = FAKE_CLIENT_SECRET,
            platform: str = "tiktok", **extra: str) -> dict[str, str]:
    """Environment for an `archiver` subprocess: env secrets + a private state folder,
    keyring forced to its failing backend, no ARCHIVER_HOME inherited from the caller.

    The app credentials are those of ``platform``'s account "main" (TikTok calls the id a
    client key, Meta and Google a client id); ``client_key`` defaults to what its fake
    accepts. Bluesky and Mastodon get none (see BLUESKY_APP_PASSWORD)."""
    prefix = f"ARCHIVER_SECRET_{platform.upper()}_MAIN_"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env.update({
        "ARCHIVER_SECRETS": "env",
        "ARCHIVER_STATE_DIR": str(state_dir),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
    })
    if platform in CLIENT_ID_KEYS:
        env[prefix + CLIENT_ID_KEYS[platform].upper()] = client_key or fake_client_id(platform)
        env[prefix + "CLIENT_SECRET"] = client_secret
    env.update(extra)
    return env


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        return (f"archiver {' '.join(self.args)} -> exit {self.returncode}\n"
                f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}")


def run_cli(args: list[str], env: dict[str, str] | None = None, *, timeout: float = 60,
            cwd: Path | None = None, stdin: str | None = None) -> CliResult:
    """Run `archiver ARGS` to its end and capture everything it printed (``stdin``: what
    is piped to it, e.g. for --token-stdin)."""
    started = time.monotonic()
    if env is None:  # no secrets needed: still no keyring and no inherited ARCHIVER_* settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
        env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    done = subprocess.run([*archiver_command(), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, input=stdin)
    return CliResult(list(args), done.returncode, done.stdout, done.stderr, time.monotonic() - started)


# --------------------------------------------------------------------------- the simulator


@dataclass
class Simulator:
    """`archiver simulate <platform>` running in its own process."""

    process: subprocess.Popen
    base_url: str
    stderr_path: Path
    options: dict = field(default_factory=dict)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


def start_simulator(folder: Path, *, videos: int = 60, followers: int = 200, latency_ms: int = 0,
                    seed: int = 1, fail_rate: float = 0.0, extra: list[str] = (), env=None,
                    platform: str = "tiktok") -> Simulator:
    """Start `archiver simulate PLATFORM --port 0 …` and wait for its "listening on" line.
    (``videos`` is the number of posts: Instagram's simulator takes it as its media count,
    Facebook's as its Page's posts.)"""
    folder.mkdir(parents=True, exist_ok=True)
    stderr_path = folder / "simulate.stderr"
    args = ["simulate", platform, "--port", "0", POSTS_OPTION.get(platform, "--videos"), str(videos),
            "--followers", str(followers), "--latency-ms", str(latency_ms), "--seed", str(seed),
            "--fail-rate", str(fail_rate), *extra]
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen([*archiver_command(), *args], stdout=subprocess.PIPE, stderr=stderr,
                                   text=True, env=env or cli_env(folder / "sim-state"))
    printed: list[str] = []
    match = None
    while match is None and len(printed) < 5:   # a simulator may say a line or two first
        line = _read_line_with_timeout(process, timeout=20)
        if not line:
            break
        printed.append(line)
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
    if not match:
        process.kill()
        process.wait()
        raise AssertionError(f"`archiver simulate` did not start: {''.join(printed)!r}\n{stderr_path.read_text()}")
    return Simulator(process, match[1], stderr_path,
                     dict(videos=videos, followers=followers, seed=seed, latency_ms=latency_ms, platform=platform))


def _read_line_with_timeout(process: subprocess.Popen, timeout: float) -> str | None:
    """One stdout line from ``process``, or None if none came in time (no hang on a dead child)."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else None


# --------------------------------------------------------------------------- an account


def simulated_account_options(platform: str, base_url: str) -> str:
    """The TOML lines an account needs, beyond base_url, to be served wholly by `archiver
    simulate PLATFORM` at ``base_url``. Bluesky's account talks to three services (the
    PLC directory for its DID, its PDS, the AppView): the one simulator plays all three."""
    if platform == "bluesky":
        return (f'handle = "{BLUESKY_HANDLE}"\nplc_url = "{base_url}"\npds_url = "{base_url}"\n'
                f'appview_url = "{base_url}"\n')
    if platform == "facebook":
        return f'page = "{FACEBOOK_PAGE}"\n'
    if platform == "pinterest":   # a budget as large as the simulator's tests give it (Trial's is 1,000)
        return "daily_requests = 1000000\n"
    if platform == "x":           # X's API runs only within a budget the account sets (dollars a run)
        return "max_cost_usd = 1000\n"
    return ""


def write_account_config(archive_dir: Path, base_url: str, *, account: str = "main",
                         platform: str = "tiktok", options: str | None = None) -> Path:
    """config.toml with one ``platform`` account served by `archiver simulate`;
    ``options`` are extra TOML lines for the account's table (by default what the platform
    needs to be served wholly by the simulator, see simulated_account_options)."""
    if options is None:
        options = simulated_account_options(platform, base_url)
    archive_dir.mkdir(parents=True, exist_ok=True)
    path = archive_dir / "config.toml"
    path.write_text(
        f"# written by the end-to-end tests: one {platform} account served by `archiver simulate`\n"
        f'[accounts.{account}]\nplatform = "{platform}"\nbase_url = "{base_url}"\n{options}',
        encoding="utf-8")
    return path


def configured_base_url(archive_dir: Path, account: str = "main") -> str:
    """base_url of [accounts.ACCOUNT] in the archive's config.toml."""
    import tomllib

    with open(archive_dir / "config.toml", "rb") as config:
        return tomllib.load(config)["accounts"][account]["base_url"]


def authorize(archive_dir: Path, env: dict[str, str], *, timeout: float = 30, platform: str = "tiktok",
              app_password: str = BLUESKY_APP_PASSWORD, extra_args: tuple[str, ...] = ()) -> CliResult:
    """`archiver auth PLATFORM` the way a user of that platform runs it.

    OAuth platforms (TikTok, Instagram, Facebook, Threads, YouTube, Mastodon): `--no-browser`, with this test
    playing the browser. The command prints the authorize URL and waits on its loopback
    callback. We GET the URL from the fake (which approves at once and answers 302 to the
    callback), then GET the callback; the command exchanges the code and stores the
    tokens. Mastodon is named its instance (`--instance`, the account's base_url) and
    registers its app there first.

    Bluesky: `--handle H --token-stdin` with the app password piped in.
    """
    if platform == "bluesky":
        result = run_cli(["auth", "bluesky", "--handle", BLUESKY_HANDLE, "--token-stdin",
                          "--archive", str(archive_dir)], env, timeout=timeout, stdin=app_password)
        assert result.returncode == 0, result.describe()
        return result
    started = time.monotonic()
    args = ["auth", platform, "--no-browser", "--archive", str(archive_dir), *extra_args]
    if platform == "mastodon":
        args += ["--instance", configured_base_url(archive_dir)]
    process = subprocess.Popen([*archiver_command(), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    printed: list[str] = []
    url = None
    try:
        while url is None:
            line = _read_line_with_timeout(process, timeout=timeout)
            if not line:
                break
            printed.append(line)
            found = AUTHORIZE_URLS[platform].search(line)
            url = found[0] if found else None
        assert url, f"`archiver auth` printed no authorize URL:\n{''.join(printed)}{process.stderr.read()}"
        with httpx.Client(timeout=10, follow_redirects=False) as browser:
            approval = browser.get(url)
            assert approval.status_code == 302, approval.text
            callback = approval.headers["location"].split("#", 1)[0]   # Meta appends "#_" or "#_=_"
            assert callback.startswith("http://127.0.0.1:"), callback
            landing = browser.get(callback)
            assert landing.status_code == 200, landing.text
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    result = CliResult(args, process.returncode,
                       "".join(printed) + stdout, stderr, time.monotonic() - started)
    assert result.returncode == 0, result.describe()
    return result


def stored_tokens(state_dir: Path, account: str = "main", platform: str = "tiktok") -> dict:
    """The token record `archiver auth` / a refresh left in the state folder's tokens.json."""
    entries = json.loads((state_dir / "tokens.json").read_text(encoding="utf-8"))
    return json.loads(entries[f"{platform}:{account}:tokens"]["value"])


# --------------------------------------------------------------------------- reading an archive


def query(archive_dir: Path, sql: str, params=()) -> list[tuple]:
    """Read the archive with plain sqlite3 (no archiver code between the test and the file)."""
    db = sqlite3.connect(archive_dir / "archive.db")
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


class LoopbackOnly(httpx.BaseTransport):
    """Real HTTP to 127.0.0.1; anything else is refused (404) and remembered, so a test
    can never reach the internet and can tell what the importer tried."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.refused: list[str] = []
        self.fetched: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "127.0.0.1":
            self.refused.append(str(request.url))
            return httpx.Response(404, content=b"refused by the test: not loopback")
        self.fetched.append(request.url.path)
        return self._inner.handle_request(request)

    def close(self) -> None:
        pass  # the connector closes its clients after every run; the test closes us

    def really_close(self) -> None:
        self._inner.close()
