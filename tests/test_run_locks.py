"""One run per account, one refresh per token, each run its own temporary folder, and
imports whose files could not all be stored kept open (issue 10, point 5).

Runs side by side are real processes (the `archiver` command, or tests/one_file_run.py).
Nothing is timed: a process is held at a known point (a loopback request the test answers
only when told to, or a lock the test holds) and the test waits for what that process
says or leaves on disk before it lets go.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from cli_world import archiver_command, cli_env, query, run_cli, write_account_config

HERE = Path(__file__).parent


def wait_until(condition, what: str, timeout: float = 60, process: subprocess.Popen | None = None) -> None:
    """Wait for ``condition()`` (polled): a state another process reaches, not a time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


class Output:
    """Everything a process prints on one stream, collected as it comes."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.lines.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def text(self) -> str:
        self._thread.join(10)
        return "".join(self.lines)


def start(args: list[str], env: dict) -> tuple[subprocess.Popen, Output, Output]:
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, Output(process.stdout), Output(process.stderr)


def finish(process: subprocess.Popen, out: Output, err: Output, timeout: float = 120) -> tuple[int, str]:
    process.wait(timeout)
    return process.returncode, out.text() + err.text()


# --------------------------------------------------------------------------- a fake TikTok served here


class HeldTikTok:
    """The TikTok fake on loopback in this process; requests whose path starts with
    ``hold`` wait until ``release()`` (``reached`` is set when the first one arrives)."""

    def __init__(self, *, videos: int = 3, hold: str | None = None):
        from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig, serve

        self.fake = FakeTikTok(FakeTikTokConfig(videos=videos, followers=3, following=2))
        self.hold = hold
        self.reached = threading.Event()
        self._gate = threading.Event()
        self.requests: list[tuple[str, str]] = []
        answer = self.fake.handle

        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append((request.method, request.url.path))
            if self.hold and request.url.path.startswith(self.hold) and not self._gate.is_set():
                self.reached.set()
                self._gate.wait(120)
            return answer(request)

        self.fake.handle = handle
        self.server, _ = serve(self.fake)
        self.base_url = self.fake.base_url

    def release(self) -> None:
        self._gate.set()

    def close(self) -> None:
        self._gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tiktok():
    worlds: list[HeldTikTok] = []

    def make(**options) -> HeldTikTok:
        worlds.append(HeldTikTok(**options))
        return worlds[-1]

    yield make
    for world in worlds:
        world.close()


def store_tokens(state_dir: Path, fake, *, expired: bool) -> dict:
    """A TikTok authorization in the env backend's tokens.json, as `archiver auth` leaves
    it; ``expired``: its access token is past its time (the next call refreshes first)."""
    from archiver.secrets import EnvSecretStore, RotatedTokensFile

    answer = fake.issue_tokens()
    now = time.time()
    record = {"access_token": answer["access_token"], "refresh_token": answer["refresh_token"],
              "access_expires_at": 0 if expired else now + answer["expires_in"],
              "refresh_expires_at": now + answer["refresh_expires_in"], "open_id": answer.get("open_id"),
              "scope": answer.get("scope", "")}
    EnvSecretStore(RotatedTokensFile(state_dir)).set("tiktok", "main", "tokens", json.dumps(record))
    return record


# --------------------------------------------------------------------------- one run per account

# A process that holds an account (ARCHIVE, ACCOUNT ID) until its stdin closes, as a run would.
HOLD_ACCOUNT = ("import sys, archiver.sync.locks as l\n"
                "with l.account_lock(sys.argv[1], sys.argv[2], doing='export'):\n"
                "    print('held', flush=True); sys.stdin.read()")



def test_a_second_run_of_a_busy_account_says_who_holds_it_and_with_wait_runs_after_it(tmp_path, tiktok):
    world = tiktok(hold="/v2/video/list")
    archive = tmp_path / "archive"
    write_account_config(archive, world.base_url)
    env = cli_env(tmp_path / "state")
    store_tokens(tmp_path / "state", world.fake, expired=False)
    export = [*archiver_command(), "export", "--platform", "tiktok", "--archive", str(archive)]

    first, first_out, first_err = start(export, env)
    try:
        wait_until(world.reached.is_set, "the first export to list videos", process=first)

        refused = run_cli(["export", "--platform", "tiktok", "--archive", str(archive)], env)
        assert refused.returncode == 75, refused.describe()
        assert (f"account tiktok:main is being archived by pid {first.pid} (archiver export: export) since"
                in refused.stderr), refused.describe()
        assert "--wait SECONDS" in refused.stderr

        waiting, waiting_out, waiting_err = start([*export, "--wait", "300"], env)
        wait_until(lambda: waiting_err.has("waiting up to 300 s"), "the second export to say it waits",
                   process=waiting)
        assert waiting_err.has(f"pid {first.pid} (archiver export: export)")
        world.release()
        code, printed = finish(first, first_out, first_err)
        assert code == 0, printed
        code, printed = finish(waiting, waiting_out, waiting_err)
        assert code == 0, printed
    finally:
        world.release()
        for process in (first, locals().get("waiting")):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    runs = query(archive, "SELECT status, started_at, ended_at FROM runs ORDER BY run_id")
    assert [status for status, _, _ in runs] == ["ok", "ok"], "the refused run left no record"
    assert runs[1][1] >= runs[0][2], "the waiting run started after the first one ended"


def test_an_import_of_a_busy_account_is_refused_naming_the_export_that_holds_it(tmp_path, tiktok):
    world = tiktok(hold="/v2/video/list")
    archive = tmp_path / "archive"
    write_account_config(archive, world.base_url)
    env = cli_env(tmp_path / "state")
    store_tokens(tmp_path / "state", world.fake, expired=False)
    export_file = tmp_path / "TikTok_Data.zip"
    export_file.write_bytes(world.fake.export_zip())

    first, first_out, first_err = start(
        [*archiver_command(), "export", "--platform", "tiktok", "--archive", str(archive)], env)
    try:
        wait_until(world.reached.is_set, "the export to list videos", process=first)
        refused = run_cli(["import", str(export_file), "--archive", str(archive)], env)
        assert refused.returncode == 75, refused.describe()
        assert f"account tiktok:main is being archived by pid {first.pid} (archiver export" in refused.stderr
        world.release()
        assert finish(first, first_out, first_err)[0] == 0
    finally:
        world.release()
        if first.poll() is None:
            first.kill()
            first.wait()
    assert query(archive, "SELECT count(*) FROM imports") == [(0,)], "the refused import is not recorded as done"
    done = run_cli(["import", str(export_file), "--archive", str(archive)], env)
    assert done.returncode == 0, done.describe()


def test_the_daemon_defers_an_account_another_process_is_archiving_without_failing_it(tmp_path, tiktok):
    from archiver.config import AccountConfig
    from archiver.ops.daemon import Daemon
    from archiver.sync.jobs import Workspace

    world = tiktok()
    archive_dir = tmp_path / "archive"
    write_account_config(archive_dir, world.base_url)
    from archiver.secrets import open_secret_store

    ws = Workspace.open(archive_dir, require_config=True, secrets=open_secret_store("memory"))
    daemon = Daemon(ws)
    daemon.scheduler = daemon._make_scheduler()   # not started: jobs added wait in it
    account: AccountConfig = ws.config.accounts[0]

    holder = subprocess.Popen(  # another process holds the account, as `archiver export` would
        [sys.executable, "-c", HOLD_ACCOUNT, str(archive_dir), "tiktok:main"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert daemon.run_account(account.account_id) is None
    finally:
        holder.stdin.close()
        holder.wait(30)
    assert ws.archive.db.execute("SELECT count(*) FROM runs").fetchone() == (0,), "no failed run is recorded"
    assert ws.archive.db.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
    retry = daemon.scheduler.get_job(f"busy:{account.account_id}")
    assert retry is not None, "the account is tried again soon"
    ws.archive.close()


def test_the_inbox_leaves_an_export_of_a_busy_account_for_its_next_look(tmp_path, tiktok, loopback):
    from archiver.archive import Archive
    from archiver.config import Config, InboxConfig
    from archiver.ops.inbox import InboxState, scan_inbox
    from archiver.sync.jobs import Workspace
    from archiver.secrets import open_secret_store

    world = tiktok()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    dropped = inbox / "TikTok_Data.zip"
    dropped.write_bytes(world.fake.export_zip())
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None, inbox=InboxConfig(inbox, settle=0)),
                   open_secret_store("memory"))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_ACCOUNT, str(ws.archive.folder), "tiktok:main"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    state = InboxState()
    try:
        assert holder.stdout.readline().strip() == "held"
        scan_inbox(ws, state, now=1000.0, transport=loopback)          # sees it
        [outcome] = scan_inbox(ws, state, now=1000.0, transport=loopback)   # would import it
        assert outcome["status"] == "waiting", outcome
        assert f"account tiktok:main is being archived by pid {holder.pid}" in outcome["message"]
        assert dropped.exists() and not (inbox / "failed" / dropped.name).exists()
    finally:
        holder.stdin.close()
        holder.wait(30)
    [outcome] = scan_inbox(ws, state, now=1000.0, transport=loopback)
    assert outcome["status"] == "imported", outcome
    ws.archive.close()


def test_a_lock_left_by_a_killed_process_is_free(tmp_path):
    from archiver.sync.locks import account_lock

    archive_dir = tmp_path / "archive"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_ACCOUNT, str(archive_dir), "tiktok:main"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    with account_lock(archive_dir, "tiktok:main"):   # no wait: free at once
        pass


# --------------------------------------------------------------------------- one refresh per token


def _served_with_expired_tokens(platform: str, state: Path):
    """(fake, server, requests seen, the token record stored, the refresh request) for
    ``platform``'s fake on loopback, its authorization of account "main" stored in the env
    backend's tokens.json with an access token that is no longer good."""
    requests: list[tuple[str, str]] = []
    if platform == "tiktok":
        from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig, serve

        fake = FakeTikTok(FakeTikTokConfig(videos=3, followers=3, following=2))
        refresh_request = ("POST", "/v2/oauth/token/")
    else:
        from archiver_connectors.bluesky.sim.fake import FakeBluesky, FakeBlueskyConfig, serve

        fake = FakeBluesky(FakeBlueskyConfig(posts=3, followers=3, following=2, likes=1))
        refresh_request = ("POST", "/xrpc/com.atproto.server.refreshSession")
    answer = fake.handle

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append((request.method, request.url.path))
        return answer(request)

    fake.handle = handle
    server, _ = serve(fake)
    if platform == "tiktok":
        before = store_tokens(state, fake, expired=True)   # refreshed before the first call
    else:
        from archiver.secrets import EnvSecretStore, RotatedTokensFile

        session = fake.issue_session()
        before = {"access_token": session["accessJwt"], "refresh_token": session["refreshJwt"], "did": session["did"],
                  "handle": session["handle"], "session_url": fake.base_url}
        EnvSecretStore(RotatedTokensFile(state)).set("bluesky", "main", "tokens", json.dumps(before))
        fake.expire_access_tokens()   # the PDS answers ExpiredToken: refreshed after the first call
    return fake, server, requests, before, refresh_request


@pytest.mark.parametrize("platform", ["tiktok", "bluesky"])
def test_two_processes_refresh_one_rotating_token_once_and_both_go_on(tmp_path, platform):
    """Two archives of one account (one token record, shared by the env backend's
    tokens.json) start together with an access token that is no longer good. TikTok and
    Bluesky kill a refresh token at its first use: only one of them may spend it (TikTok:
    refreshed before the first call, as the token is known to be expired; Bluesky: after
    the server refused it)."""
    from archiver.sync.locks import token_lock
    from cli_world import simulated_account_options, stored_tokens

    state = tmp_path / "state"
    env = cli_env(state, platform=platform)
    fake, server, requests, before, refresh_request = _served_with_expired_tokens(platform, state)
    archives = [tmp_path / "one", tmp_path / "two"]
    for archive in archives:
        write_account_config(archive, fake.base_url, platform=platform,
                             options=simulated_account_options(platform, fake.base_url))
    processes = []
    title = {"tiktok": "TikTok", "bluesky": "Bluesky"}[platform]
    try:
        with token_lock(state, platform, "main", title):   # both reach the refresh, then wait here
            for archive in archives:
                processes.append(start([*archiver_command(), "export", "--platform", platform, "--archive",
                                        str(archive)], env))
            for process, _, err in processes:
                wait_until(lambda: err.has(f"to finish refreshing the {title} authorization"),
                           "both exports to wait for the refresh lock", process=process)
        results = [finish(*p) for p in processes]
    finally:
        for process, _, _ in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        server.shutdown()
        server.server_close()
    for code, printed in results:
        assert code == 0, printed
    assert requests.count(refresh_request) == 1, requests
    after = stored_tokens(state, platform=platform)
    assert after["refresh_token"] != before["refresh_token"]
    for archive in archives:
        assert query(archive, "SELECT status FROM runs") == [("ok",)]


def test_a_refused_token_already_refreshed_by_another_process_is_not_refreshed_again(tmp_path):
    """In-process view of the same promise: the record this process holds is stale (another
    process rotated it); a 401 makes it re-read the store and use the new one."""
    from archiver.secrets import open_secret_store
    from archiver.net.tokens import StoredTokens

    spent: list[str] = []

    class Tokens(StoredTokens):
        platform, title = "tiktok", "TikTok"

        def _refresh_locked(self) -> None:
            spent.append(self.load()["refresh_token"])
            self.save({**self.load(), "access_token": "a3", "refresh_token": "r3"})

    secrets = open_secret_store("env", state_dir=tmp_path / "state")
    secrets.set("tiktok", "main", "tokens", json.dumps({"access_token": "a1", "refresh_token": "r1"}))
    mine = Tokens(secrets, "main")
    assert mine.header() == {"Authorization": "Bearer a1"}
    # Another process refreshes: the store now holds a2/r2, r1 is dead.
    secrets.set("tiktok", "main", "tokens", json.dumps({"access_token": "a2", "refresh_token": "r2"}))
    mine.refresh()   # the platform refused a1
    assert spent == []
    assert mine.header() == {"Authorization": "Bearer a2"}
    mine.refresh()   # now a2 is refused: this one is ours to refresh
    assert spent == ["r2"]


# --------------------------------------------------------------------------- temporary folders


class HalfThenWait:
    """A loopback server whose one file is sent half, then the rest when told to."""

    def __init__(self, body: bytes):
        self.body = body
        self.half_sent = threading.Event()
        self.go_on = threading.Event()
        world = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(world.body)))
                self.end_headers()
                half = len(world.body) // 2
                self.wfile.write(world.body[:half])
                self.wfile.flush()
                world.half_sent.set()
                world.go_on.wait(120)
                self.wfile.write(world.body[half:])

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video.mp4"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.go_on.set()
        self.server.shutdown()
        self.server.server_close()


def _parts(archive: Path) -> list[Path]:
    return sorted((archive / "media" / ".tmp").rglob("*.part"))


def test_a_partial_file_of_a_live_run_survives_another_runs_success(tmp_path):
    body = b"\x00\x00\x00\x18ftypisom" + os.urandom(256 * 1024)
    server = HalfThenWait(body)
    archive = tmp_path / "archive"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    script = [sys.executable, str(HERE / "one_file_run.py"), str(archive)]
    slow = start([*script, "a", server.url], env)
    try:
        wait_until(server.half_sent.is_set, "the first run to get half its file", process=slow[0])
        wait_until(lambda: any(p.stat().st_size > 0 for p in _parts(archive)),
                   "the first bytes in a .part", process=slow[0])
        live_parts = _parts(archive)

        code, printed = finish(*start([*script, "b"], env))   # another account's run, to its end
        assert code == 0 and '"status": "ok"' in printed, printed
        assert all(part.exists() for part in live_parts), "the live run's partial file is still there"

        server.go_on.set()
        code, printed = finish(*slow)
        assert code == 0 and '"status": "ok"' in printed, printed
    finally:
        server.close()
        if slow[0].poll() is None:
            slow[0].kill()
            slow[0].wait()
    stored = query(archive, "SELECT sha256, status FROM post_media WHERE post_id='a-1'")
    assert stored == [(hashlib.sha256(body).hexdigest(), "ok")]
    assert _parts(archive) == [], "each run removed its own folder when it ended well"


def test_only_stale_partial_files_of_ended_runs_are_swept(tmp_path):
    from archiver.sync.run_folders import RunFolder

    archive = tmp_path / "archive"
    tmp = archive / "media" / ".tmp"
    tmp.mkdir(parents=True)
    two_days_ago = time.time() - 2 * 86400

    def left(path: Path, *, old: bool) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
        if old:
            os.utime(path, (two_days_ago, two_days_ago))
        return path

    stale = left(tmp / "stale.part", old=True)             # from before run folders, two days old
    young = left(tmp / "young.part", old=False)       # an ended run's, from an hour ago: kept
    dead_folder = tmp / "mastodon-other.run-7"     # an ended run's folder (no lock held on it)
    stale_in_folder = left(dead_folder / "stale.part", old=True)
    live = RunFolder(tmp, "mastodon:busy", 99).open()   # a run in progress, its file untouched for days
    live_old = left(live.path / "old-but-live.part", old=True)
    try:
        code, printed = finish(*start([sys.executable, str(HERE / "one_file_run.py"), str(archive), "b"],
                                      {**os.environ}))
        assert code == 0 and '"status": "ok"' in printed, printed
        assert not stale.exists() and not stale_in_folder.exists(), "stale files of ended runs are swept"
        assert young.exists(), "a young file of an ended run is kept (its run's account may resume it)"
        assert live_old.exists(), "a live run's files are never swept, however old"
    finally:
        live.close(keep_parts=False)


def test_the_next_run_of_an_account_resumes_a_killed_runs_partial_download(tmp_path):
    """Each run has its own folder, yet a download cut by a killed run is resumed, not
    started over: the next run of the account takes over its partial files."""
    from archiver.sync.run_folders import RunFolder

    body = b"\x00\x00\x00\x18ftypisom" + os.urandom(64 * 1024)
    asked: list[str | None] = []

    def cdn(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("Range"))
        start_at = int(request.headers["Range"][6:-1]) if "Range" in request.headers else 0
        if start_at and request.headers.get("If-Range") == '"v1"':   # the same file: go on
            return httpx.Response(206, content=body[start_at:], headers={
                "Content-Range": f"bytes {start_at}-{len(body) - 1}/{len(body)}", "Content-Type": "video/mp4"})
        return httpx.Response(200, content=body, headers={"Content-Type": "video/mp4", "ETag": '"v1"'})

    from archiver.archive import Archive
    from archiver.config import AccountConfig
    from archiver.records import MediaRef, Page, Post
    from archiver.secrets import open_secret_store
    from archiver.sync.runner import Runner
    from archiver_connectors.mastodon import MastodonConnector

    class OnePost(MastodonConnector):
        def pages(self, ctx):
            yield Page("posts", [Post("1", "2026-01-01T00:00:00Z", media=[
                MediaRef("http://127.0.0.1:9/v.mp4", "video")])], state={"done": True})

    archive = Archive(tmp_path / "archive")
    account = AccountConfig(name="main", platform="mastodon", base_url="http://127.0.0.1:9")
    # What a run killed mid-download leaves: its folder, no lock on it, half the file.
    key = f"{account.account_id}:1:video:0"
    killed = RunFolder(archive.media_root / ".tmp", account.account_id, 1).open()
    (killed.path / (hashlib.sha1(key.encode()).hexdigest() + ".part")).write_bytes(body[:1000])
    # … and beside it the ETag of the file those bytes came from (sent as If-Range).
    (killed.path / (hashlib.sha1(key.encode()).hexdigest() + ".part.validator")).write_text('"v1"')
    killed.close(keep_parts=True)

    connector = OnePost(account, open_secret_store("memory"), transport=httpx.MockTransport(cdn))
    result = Runner(archive, connector).run(connector.pages, kind="export", mode="incremental")
    connector.close()
    assert result["status"] == "ok", result
    assert asked == ["bytes=1000-"]
    assert archive.db.execute("SELECT sha256 FROM post_media").fetchone()[0] == hashlib.sha256(body).hexdigest()
    archive.close()


# --------------------------------------------------------------------------- imports with holes


def test_an_import_with_files_missing_stays_open_and_a_second_import_retries_only_them(tmp_path, tiktok, loopback):
    from archiver.sync.jobs import Workspace, run_import

    world = tiktok(videos=4)
    export_file = tmp_path / "TikTok_Data.zip"
    export_file.write_bytes(world.fake.export_zip())
    media_paths = sorted({path for method, path in _media_requests(world, export_file, loopback, tmp_path)})
    assert len(media_paths) >= 4
    lost = media_paths[0]
    world.requests.clear()

    refuse = {lost}
    answer = world.fake.handle

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path in refuse:
            return httpx.Response(404, content=b"gone for now")
        return answer(request)

    world.fake.handle = handle
    ws = _import_workspace(tmp_path / "archive", world.base_url)
    first = run_import(ws, export_file, transport=loopback)
    assert first["status"] == "ok" and first["counts"].get("media_failed") == 1, first
    assert "--retry-failed" in first["message"]
    assert ws.archive.db.execute("SELECT holes FROM imports").fetchone() == (1,)
    from archiver.ops.status import account_status, render_status

    shown = render_status(account_status(ws.archive, ws.config))
    assert "incomplete: 1 file(s) of TikTok_Data.zip" in shown and "--retry-failed" in shown, shown

    refuse.clear()
    world.requests.clear()
    second = run_import(ws, export_file, transport=loopback)
    assert second["status"] == "ok", second
    assert second["counts"].get("media_saved") == 1 and not second["counts"].get("posts_new"), second
    assert [path for _, path in world.requests] == [lost], "only the missing file is fetched again"
    assert ws.archive.db.execute("SELECT holes FROM imports").fetchone() == (0,)
    assert ws.archive.db.execute("SELECT count(*) FROM post_media WHERE status='failed'").fetchone() == (0,)
    third = run_import(ws, export_file, transport=loopback)
    assert third["status"] == "skipped"
    ws.archive.close()


def _import_workspace(folder: Path, base_url: str):
    """An archive whose TikTok account lives on the fake at ``base_url``: the export's
    media links are on loopback, which only such an account may reach (links.py)."""
    from archiver.sync.jobs import Workspace

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(f'[accounts.main]\nplatform = "tiktok"\nbase_url = "{base_url}"\n')
    return Workspace.open(folder)


def _media_requests(world, export_file: Path, loopback, tmp_path: Path) -> list[tuple[str, str]]:
    """The files an import of ``export_file`` downloads (found by importing it into a
    scratch archive)."""
    from archiver.sync.jobs import Workspace, run_import

    world.requests.clear()
    scratch = _import_workspace(tmp_path / "scratch", world.base_url)
    assert run_import(scratch, export_file, transport=loopback)["status"] == "ok"
    scratch.archive.close()
    return [(m, p) for m, p in world.requests if m == "GET"]


def test_retry_failed_retries_every_import_with_holes_from_its_file(tmp_path):
    """`archiver import --retry-failed`, the command: an import whose media failed (its
    CDN was down) is retried from the file it was imported from; a file that is gone, or
    is another file now, is named with what to do."""
    from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig, serve

    fake = FakeTikTok(FakeTikTokConfig(videos=2, followers=1, following=1))
    server, _ = serve(fake)
    port = int(fake.base_url.rsplit(":", 1)[1])
    try:
        export_file = tmp_path / "TikTok_Data.zip"
        export_file.write_bytes(fake.export_zip())
    finally:
        server.shutdown()
        server.server_close()

    class Gone(BaseHTTPRequestHandler):
        def do_GET(self):   # the CDN has lost every file for now: refused, not retried
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    archive = tmp_path / "archive"
    _import_workspace(archive, fake.base_url).archive.close()   # its account lives on the fake
    env = cli_env(tmp_path / "state")
    cdn = ThreadingHTTPServer(("127.0.0.1", port), Gone)
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    try:
        first = run_cli(["import", str(export_file), "--archive", str(archive)], env)
    finally:
        cdn.shutdown()
        cdn.server_close()
    assert first.returncode == 0, first.describe()
    holes = query(archive, "SELECT holes FROM imports")[0][0]
    assert holes > 0
    assert f"{holes} file(s) could not be stored" in first.stdout, first.describe()

    original = export_file.read_bytes()
    export_file.rename(tmp_path / "moved.zip")
    gone = run_cli(["import", "--retry-failed", "--archive", str(archive)], env)
    assert gone.returncode == 1 and f"the export file is no longer at {export_file}" in gone.stdout, gone.describe()
    export_file.write_bytes(b"PK\x05\x06" + bytes(18))   # another file under the same name
    changed = run_cli(["import", "--retry-failed", "--archive", str(archive)], env)
    assert changed.returncode == 1 and "no longer the file imported from there" in changed.stdout, \
        changed.describe()
    export_file.write_bytes(original)

    server, _ = serve(fake, port=port)   # the CDN has its files again
    try:
        again = run_cli(["import", "--retry-failed", "--archive", str(archive)], env)
    finally:
        server.shutdown()
        server.server_close()
    assert again.returncode == 0, again.describe()
    assert query(archive, "SELECT holes FROM imports") == [(0,)]
    assert query(archive, "SELECT count(*) FROM post_media WHERE status='failed'") == [(0,)]

    export_file.unlink()
    nothing = run_cli(["import", "--retry-failed", "--archive", str(archive)], env)
    assert nothing.returncode == 0 and "nothing to retry" in nothing.stdout, nothing.describe()
