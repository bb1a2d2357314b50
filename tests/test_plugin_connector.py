"""A platform added without touching archiver: the ten steps of docs/architecture.md
("How to add a platform"), done for real.

The test writes a tiny connector for an imaginary platform, "example", as its own package
in a folder outside this repository (``archiver_example/`` plus the ``*.dist-info`` folder
pip would write for it), puts that folder on PYTHONPATH and drives the real `archiver`
command in subprocesses: the connector and its simulator are found through their entry
points, `archiver simulate example` serves the fake platform on 127.0.0.1, the connector's
declared options reach `archiver auth` and the config check, the token goes through the
real secret store, and `archiver export` archives the fake's posts (and their one picture)
in SQLite. A post deleted on the platform is marked deleted only by a `--full` run, and
`archiver import` recognizes the platform's export file by asking the connector.

Comments "step N" refer to the numbered steps of docs/architecture.md.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path

import httpx
from cli_world import _read_line_with_timeout, archiver_command, cli_env, query, run_cli

# -- step 1: a package of its own (any import name; the platform's name comes from step 2).
CONNECTOR = '''
"""Example: an imaginary platform, archived by a connector that lives outside archiver."""

from __future__ import annotations

from typing import Iterator

# The library API (`import archiver`, its __all__) where it has the name; the rest from its module.
from archiver import ApiClient, Connector, MediaRef, NetError, Option, Page, Post, Profile, iso_utc, pages_of
from archiver.net.client import scrubber


# -- step 4: how the API client sends the token (a net.client.TokenProvider).
class BearerToken:
    """Example's access tokens do not expire: there is nothing to refresh."""

    def __init__(self, token: str):
        scrubber.add(token)                  # never in a log line, an error or the archive
        self.token = token

    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def refresh(self) -> None:
        raise NetError("Example refused the token: run `archiver auth example --token-stdin` again", kind="auth")


# -- step 5: one platform item -> records.
def post_from_item(item: dict) -> Post:
    media = [MediaRef(url=item["image"], role="image")] if item.get("image") else []
    return Post(native_id=item["id"], created_at=iso_utc(item["created"]), kind="text",
                text=item["text"], url=item["url"], like_count=item["likes"], media=media, raw=item)


# -- step 2: the Connector subclass and its class attributes.
class ExampleConnector(Connector):
    name = "example"
    title = "Example"
    default_base_url = "https://api.example.invalid"
    secret_keys = ("token",)
    post_noun = "notes"

    # -- step 3: options, as data. `archiver auth example --token-stdin` reads the token
    # from standard input; an [accounts.X] table of this platform may hold `page_size = 2`.
    auth_options = (Option("token", "An access token from Example's settings page.", secret=True, stdin=True),)
    config_options = (Option("page_size", "Posts asked for per request (default 20).", type=int),)

    def _api(self, token: str, cancel=None) -> ApiClient:
        return ApiClient(self.base_url, tokens=BearerToken(token), transport=self.transport, cancel=cancel)

    # -- step 4: check the credentials, then keep them in the SecretStore.
    def authorize(self, *, echo, prompt=None, token=None, **_) -> str:
        from archiver import OAuthError

        token = token or (prompt("token") if prompt else None)
        if not token:
            raise OAuthError("no token: pipe one to `archiver auth example --token-stdin`")
        try:
            with self._api(token) as api:
                me = api.get_json("/api/me")
        except NetError as error:
            raise OAuthError(f"Example refused the token ({error}); nothing was stored") from None
        self.secrets.set("example", self.account.name, "token", token)
        return f"Example account @{me['handle']} ({self.account.name!r}) authorized."

    # -- step 6: pages(ctx): the profile, then the posts through the core's listing walker.
    def pages(self, ctx) -> Iterator[Page]:
        from archiver import Batch, Listing

        token = self.secrets.require("example", self.account.name, "token",
                                     hint="run `archiver auth example --token-stdin`")
        page_size = self.account.options.get("page_size", 20)
        with self._api(token, cancel=ctx.cancel) as api:
            me = api.get_json("/api/me")
            yield Page("profile", [Profile(native_id=me["id"], username=me["handle"],
                                           display_name=me["name"], raw=me)])

            def fetch(cursor) -> Batch:     # one page of the list, newest first
                params = {"limit": page_size, **({"before": cursor} if cursor else {})}
                body = api.get_json("/api/posts", params=params)
                return Batch(body["posts"], body["next"])

            walk = Listing(ctx, "posts", fetch=fetch, item_id=lambda item: item["id"],
                           map_item=lambda item: [post_from_item(item)])
            yield from walk.pages()

    # -- step 7: the platform's "download your data" file.
    @classmethod
    def detect_export(cls, source) -> bool:
        return bool(source.find("example-posts.json"))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        name = source.find("example-posts.json")[0]      # streamed: an export may be bigger than memory
        yield from pages_of("export", (post_from_item(item) for item in source.iter_json(name, "posts.item")), 500)
'''

# -- step 8: the simulator: a fake of the platform's API served on 127.0.0.1, and the
# Simulator `archiver simulate example` runs.
SIMULATOR = r'''
"""The simulated Example platform: GET /api/me, GET /api/posts (newest first, paged with
a ``before`` cursor), DELETE /api/posts/ID, and the pictures under /media/. Every API
call needs the bearer token TOKEN; media links, like a CDN's, need none."""

from __future__ import annotations

import argparse
import threading

import httpx

from archiver import Simulator
from archiver.sim.server import serve_fake, serve_until_signalled

TOKEN = "example-token-0123"
PICTURE = b"\x89PNG\r\n\x1a\n" + b"example picture"


class FakeExample:
    def __init__(self, posts: int = 5):
        self.base_url = "http://127.0.0.1"            # serve_fake sets the bound address
        self._lock = threading.Lock()                  # requests are served in threads
        self.post_ids = [str(n) for n in range(posts, 0, -1)]   # newest first

    def item(self, post_id: str) -> dict:
        return {"id": post_id, "text": f"Example post {post_id}", "created": f"2024-01-{int(post_id):02d}T12:00:00Z",
                "url": f"{self.base_url}/posts/{post_id}", "likes": int(post_id) * 10,
                "image": f"{self.base_url}/media/{post_id}.png" if post_id == "1" else None}

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/media/"):
            return httpx.Response(200, content=PICTURE, headers={"Content-Type": "image/png"})
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "invalid or missing token"})
        if request.method == "GET" and path == "/api/me":
            return httpx.Response(200, json={"id": "u1", "handle": "ada", "name": "Ada Example"})
        if request.method == "GET" and path == "/api/posts":
            before, limit = request.url.params.get("before"), int(request.url.params.get("limit", 20))
            with self._lock:
                older = [i for i in self.post_ids if before is None or int(i) < int(before)]
            page = older[:limit]
            return httpx.Response(200, json={"posts": [self.item(i) for i in page],
                                             "next": page[-1] if len(older) > limit else None})
        if request.method == "DELETE" and path.startswith("/api/posts/"):
            with self._lock:
                self.post_ids.remove(path.rsplit("/", 1)[1])
            return httpx.Response(204)
        return httpx.Response(404, json={"error": "no such endpoint"})


class ExampleSimulator(Simulator):
    name = "example"

    def main(self, argv: list[str]) -> None:
        parser = argparse.ArgumentParser(prog="archiver simulate example")
        parser.add_argument("--port", type=int, default=8765, help="0: any free port")
        parser.add_argument("--posts", type=int, default=5)
        args = parser.parse_args(argv)
        fake = FakeExample(args.posts)
        server, _thread = serve_fake(fake, port=args.port, name="example",
                                     crash_response=lambda error: httpx.Response(500, json={"error": "internal"}))
        serve_until_signalled(server, fake)      # prints "listening on URL", serves until Ctrl-C


SIMULATOR = ExampleSimulator()
'''

# -- step 9: what `pip install` writes for the package: its metadata and entry points.
METADATA = "Metadata-Version: 2.1\nName: archiver-example\nVersion: 0.1\n"
ENTRY_POINTS = """\
[archiver.connectors]
example = archiver_example:ExampleConnector

[archiver.simulators]
example = archiver_example.sim:SIMULATOR
"""
TOKEN = "example-token-0123"   # the one the fake accepts


def write_plugin_package(site: Path) -> None:
    package = site / "archiver_example"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(CONNECTOR).lstrip(), encoding="utf-8")
    (package / "sim.py").write_text(textwrap.dedent(SIMULATOR).lstrip(), encoding="utf-8")


def register_plugin(site: Path) -> None:
    dist_info = site / "archiver_example-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(METADATA, encoding="utf-8")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")


def start_simulator(env: dict[str, str], folder: Path) -> tuple[subprocess.Popen, str]:
    """`archiver simulate example --port 0` in its own process; returns it and its base URL."""
    with open(folder / "simulate.stderr", "wb") as stderr:
        process = subprocess.Popen([*archiver_command(), "simulate", "example", "--port", "0"],
                                   stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    line = _read_line_with_timeout(process, timeout=20) or ""
    found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
    if not found:
        process.kill()
        process.wait()
        raise AssertionError(f"`archiver simulate example` did not start: {line!r}\n"
                             f"{(folder / 'simulate.stderr').read_text()}")
    return process, found[1]


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)
    process.stdout.close()


def write_config(archive: Path, base_url: str, page_size: str) -> None:
    (archive / "config.toml").write_text(
        f'[accounts.main]\nplatform = "example"\nbase_url = "{base_url}"\npage_size = {page_size}\n',
        encoding="utf-8")


def posts(archive: Path) -> dict[str, tuple]:
    return {post_id: (text, deleted_at) for post_id, text, deleted_at in query(
        archive, "SELECT post_id, text, deleted_at FROM posts WHERE platform='example'")}


def test_a_platform_added_as_a_plugin_is_archived_by_the_real_cli(tmp_path):
    site = tmp_path / "site-packages"       # outside the repository: nothing of it is in connectors/
    archive = tmp_path / "archive"
    archive.mkdir()
    env = cli_env(tmp_path / "state", platform="example", PYTHONPATH=str(site))

    write_plugin_package(site)                                      # steps 1-8
    # The package alone is not a connector: archiver finds connectors by entry point only.
    listed = run_cli(["connectors"], env)
    assert listed.returncode == 0, listed.describe()
    assert "example" not in listed.stdout

    register_plugin(site)                                           # step 9
    # step 10: try it.
    listed = run_cli(["connectors"], env)
    assert listed.returncode == 0, listed.describe()
    assert "example\tExample\tarchiver_example" in listed.stdout.splitlines()
    help_text = run_cli(["auth", "example", "--help"], env)         # the declared auth option
    assert help_text.returncode == 0 and "--token-stdin" in help_text.stdout, help_text.describe()

    simulator, base_url = start_simulator(env, tmp_path)
    try:
        # The fake answers only with the right bearer token.
        assert httpx.get(f"{base_url}/api/me").status_code == 401
        assert httpx.get(f"{base_url}/api/me", headers={"Authorization": "Bearer wrong"}).status_code == 401

        # The declared config option is checked like the core's keys: a value of the wrong
        # type is an error naming the key.
        write_config(archive, base_url, page_size='"two"')
        refused = run_cli(["export", "--platform", "example", "--archive", str(archive)], env)
        assert refused.returncode != 0 and "page_size" in refused.stderr, refused.describe()
        write_config(archive, base_url, page_size="2")   # 5 posts: three requests, two cursors

        # The token goes through the connector's authorize() into the secret store; a
        # token the platform refuses is not stored.
        wrong = run_cli(["auth", "example", "--token-stdin", "--archive", str(archive)], env, stdin="wrong\n")
        assert wrong.returncode != 0 and "Example refused the token" in wrong.stderr, wrong.describe()
        authorized = run_cli(["auth", "example", "--token-stdin", "--archive", str(archive)], env, stdin=TOKEN)
        assert authorized.returncode == 0, authorized.describe()
        assert "Example account @ada ('main') authorized." in authorized.stdout

        exported = run_cli(["export", "--platform", "example", "--archive", str(archive)], env)
        assert exported.returncode == 0, exported.describe()
        assert posts(archive) == {str(n): (f"Example post {n}", None) for n in range(1, 6)}
        assert query(archive, "SELECT username, display_name FROM accounts WHERE account_id='example:main'") \
            == [("ada", "Ada Example")]
        [(status, sha256)] = query(archive, "SELECT status, sha256 FROM post_media WHERE platform='example'")
        [(path,)] = query(archive, "SELECT path FROM media WHERE sha256=?", [sha256])
        assert status == "ok" and (archive / "media" / path).read_bytes().startswith(b"\x89PNG")

        # Post 3 is deleted on the platform: an incremental run keeps it as it was, only a
        # complete full listing marks it deleted (and keeps the row).
        deleted = httpx.delete(f"{base_url}/api/posts/3", headers={"Authorization": f"Bearer {TOKEN}"})
        assert deleted.status_code == 204
        again = run_cli(["export", "--platform", "example", "--archive", str(archive)], env)
        assert again.returncode == 0, again.describe()
        assert posts(archive)["3"] == ("Example post 3", None)
        full = run_cli(["export", "--platform", "example", "--full", "--archive", str(archive)], env)
        assert full.returncode == 0, full.describe()
        after = posts(archive)
        assert after["3"][0] == "Example post 3" and after["3"][1] is not None
        assert [post_id for post_id, (_, deleted_at) in after.items() if deleted_at] == ["3"]
    finally:
        stop(simulator)

    # The platform's export file is recognized by the connector (step 7): no platform named.
    export_file = tmp_path / "example-posts.json"
    export_file.write_text('{"posts": [{"id": "0", "text": "An old post", "created": "2023-12-31T12:00:00Z", '
                           '"url": "https://example.invalid/posts/0", "likes": 1}]}', encoding="utf-8")
    imported = run_cli(["import", str(export_file), "--archive", str(archive)], env)
    assert imported.returncode == 0, imported.describe()
    assert posts(archive)["0"] == ("An old post", None)
    [(sources,)] = query(archive, "SELECT sources FROM posts WHERE platform='example' AND post_id='0'")
    assert '"export:' in sources
