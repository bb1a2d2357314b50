"""A TikTok account wired for in-process export tests (test_tiktok_sync, test_faults).

``TikTokHarness`` holds a stateful fake TikTok, an archive in a temporary folder, an
in-memory secret store with tokens the fake minted, and the account config. Its runs go
through the real ``archiver.sync.jobs.run_export`` — connector, runner, writer, media store —
with the network replaced by ``httpx.MockTransport`` and the waits between retries
replaced by a recorder (instant; it moves the fake's clock forward instead, so a
rate-limit window or a Retry-After really passes for the fake).

Between the client and the fake sits a small switchboard: ``faults`` may answer or raise
instead of the fake (timeouts, cut bodies, a vanished platform), ``after`` hooks see every
answer (to expire tokens or revoke the grant between two pages). Every request and wait is
recorded in ``events`` and every exchange in ``exchanges``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx

from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.sync.jobs import Workspace, run_export
from archiver.secrets import open_secret_store
from archiver_connectors.tiktok.api import TikTokTokens
from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig

BASE_URL = "http://127.0.0.1:8799"  # never contacted: MockTransport answers in-process
ACCOUNT = "main"
ACCOUNT_ID = f"tiktok:{ACCOUNT}"
TOKEN_PATH = "/v2/oauth/token/"
LIST_PATH = "/v2/video/list/"
QUERY_PATH = "/v2/video/query/"
DATA_PATHS = ("/v2/user/info/", LIST_PATH, QUERY_PATH, "/v2/user/data/add/",
              "/v2/user/data/check/", "/v2/user/data/download/")
DEFAULT_SCOPES = "user.info.basic,user.info.profile,user.info.stats,video.list"


@dataclass
class Exchange:
    """One request the client sent and what it got back (``response`` None if raised)."""

    method: str
    path: str
    body: Any                     # parsed JSON request body, if any
    response: httpx.Response | None
    answered_by: str              # "fake" | "fault"

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None

    def json(self) -> Any:
        """The response body parsed with exact integers (int64 ids stay exact)."""
        return json.loads(self.response.content)


class TikTokHarness:
    def __init__(self, tmp_path: Path, config: FakeTikTokConfig | None = None, *,
                 scopes: str | None = None, portability: bool = False, folder: str = "archive"):
        self.fake = FakeTikTok(config or FakeTikTokConfig(), base_url=BASE_URL)
        self.secrets = open_secret_store("memory")
        self.secrets.set("tiktok", ACCOUNT, "client_key", self.fake.config.client_key)
        self.secrets.set("tiktok", ACCOUNT, "client_secret", self.fake.config.client_secret)
        self.faults: list[Callable[[httpx.Request], httpx.Response | None]] = []
        self.after: list[Callable[[httpx.Request, httpx.Response], None]] = []
        self.events: list[tuple[str, Any]] = []      # ("request", path) | ("sleep", seconds)
        self.exchanges: list[Exchange] = []
        self.transport = httpx.MockTransport(self._handle)
        self.initial_tokens = self.authorize(scopes)
        self.account = AccountConfig(name=ACCOUNT, platform="tiktok", base_url=BASE_URL,
                                     portability=portability)
        self.archive = Archive(tmp_path / folder)
        self.ws = Workspace(self.archive, Config(path=None, accounts=[self.account]), self.secrets)

    # -- authorization ---------------------------------------------------------------
    def authorize(self, scopes: str | None = None) -> dict:
        """What `archiver auth tiktok` leaves behind: fresh tokens in the secret store."""
        tokens = self.fake.issue_tokens(scopes)
        with httpx.Client(transport=self.transport) as client:
            TikTokTokens(self.secrets, ACCOUNT, BASE_URL + TOKEN_PATH, client).store(tokens)
        return tokens

    def stored_tokens(self) -> dict:
        return json.loads(self.secrets.get("tiktok", ACCOUNT, "tokens"))

    def edit_stored_tokens(self, **changes) -> None:
        tokens = self.stored_tokens() | changes
        self.secrets.set("tiktok", ACCOUNT, "tokens", json.dumps(tokens))

    def refresh_token_alive(self, refresh_token: str) -> bool:
        """Ask the fake directly (not through the switchboard) whether it still accepts
        ``refresh_token``. Careful: a yes rotates it, so use this on dead tokens only."""
        response = self.fake.handle(httpx.Request("POST", BASE_URL + TOKEN_PATH, data={
            "client_key": self.fake.config.client_key,
            "client_secret": self.fake.config.client_secret,
            "grant_type": "refresh_token", "refresh_token": refresh_token}))
        return "access_token" in response.json()

    # -- running ---------------------------------------------------------------------
    def run(self, *, full: bool = False, cancel: Callable[[], bool] = lambda: False,
            progress: Callable[[str], None] | None = None) -> dict:
        return run_export(self.ws, self.account, full=full, cancel=cancel,
                          progress=progress or (lambda line: None),
                          transport=self.transport, sleep=self.sleep)

    def sleep(self, seconds: float) -> None:
        self.events.append(("sleep", seconds))
        self.fake.advance(seconds)  # the wait really passes, for the fake

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.events.append(("request", request.url.path))
        body = None
        if request.headers.get("content-type", "").startswith("application/json") and request.content:
            body = json.loads(request.content)
        exchange = Exchange(request.method, request.url.path, body, None, "fake")
        self.exchanges.append(exchange)
        for fault in list(self.faults):
            answer = fault(request)  # may raise, e.g. httpx.ReadTimeout
            if answer is not None:
                exchange.response, exchange.answered_by = answer, "fault"
                return answer
        response = self.fake.handle(request)
        exchange.response = response
        for hook in list(self.after):
            hook(request, response)
        return response

    # -- what happened -----------------------------------------------------------------
    def mark(self) -> int:
        """A position in the exchange log; pass it to ``sent(since=...)``."""
        return len(self.exchanges)

    def sent(self, path: str, since: int = 0) -> list[Exchange]:
        return [e for e in self.exchanges[since:] if e.path == path]

    def waits(self) -> list[float]:
        """Each wait between two requests, as one total (the client sleeps in slices of
        at most a second so that it can notice a cancel)."""
        waits: list[float] = []
        sleeping = False
        for kind, value in self.events:
            if kind == "sleep":
                if sleeping:
                    waits[-1] += value
                else:
                    waits.append(value)
                sleeping = True
            else:
                sleeping = False
        return [round(w, 6) for w in waits]

    # -- the archive ---------------------------------------------------------------------
    @property
    def db(self):
        return self.archive.db

    def rows(self, sql: str, *params) -> list[dict]:
        cursor = self.db.execute(sql, list(params))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def value(self, sql: str, *params):
        return self.db.execute(sql, list(params)).fetchone()[0]

    def post_ids(self) -> set[str]:
        return {r["post_id"] for r in self.rows("SELECT post_id FROM posts")}

    def fake_ids(self) -> set[str]:
        return {v["id"] for v in self.fake.videos}

    def state(self, stream: str) -> dict | None:
        row = self.db.execute("SELECT state FROM sync_state WHERE account_id=? AND stream=?",
                              [ACCOUNT_ID, stream]).fetchone()
        return json.loads(row[0]) if row else None

    def last_run(self) -> dict:
        return self.rows("SELECT * FROM runs ORDER BY run_id DESC LIMIT 1")[0]

    def media_file(self, sha256: str) -> Path:
        path = self.value("SELECT path FROM media WHERE sha256=?", sha256)
        return self.archive.media_root / path

    def cover_bytes(self, video_ids: list[str]) -> dict[str, bytes]:
        """The covers the fake's CDN serves for these videos, fetched the way a client
        would (fresh links from /v2/video/query/), straight from the fake."""
        token = self.fake.issue_tokens()["access_token"]
        covers = {}
        for start in range(0, len(video_ids), 20):
            query = self.fake.handle(httpx.Request(
                "POST", BASE_URL + QUERY_PATH, params={"fields": "id,cover_image_url"},
                json={"filters": {"video_ids": video_ids[start:start + 20]}},
                headers={"Authorization": f"Bearer {token}"}))
            for video in query.json()["data"]["videos"]:
                image = self.fake.handle(httpx.Request("GET", video["cover_image_url"]))
                assert image.status_code == 200
                covers[video["id"]] = image.content
        return covers


# -- archive snapshots -------------------------------------------------------------------

POST_COLUMNS = ("post_id", "account_id", "kind", "created_at", "title", "text", "url", "duration",
                "width", "height", "visibility", "like_count", "comment_count", "share_count",
                "view_count", "deleted_at", "first_seen_at")


def archive_snapshot(harness: TikTokHarness) -> dict[str, list]:
    """What must never be damaged: posts (content, counts, tombstones), their media, the
    media files themselves (hashed again from disk), versions, count history, account."""
    db = harness.db
    files = {}
    for row in harness.rows("SELECT sha256, path FROM media"):
        path = harness.archive.media_root / row["path"]
        files[row["sha256"]] = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None

    def table(sql):
        return [tuple(r) for r in db.execute(sql).fetchall()]

    return {
        "posts": table(f"SELECT {', '.join(POST_COLUMNS)} FROM posts ORDER BY post_id"),
        "post_media": table("SELECT post_id, role, position, sha256, status FROM post_media ORDER BY 1, 2, 3"),
        "media": table("SELECT sha256, path, size, mime FROM media ORDER BY sha256"),
        "files": sorted(files.items()),
        "post_versions": table("SELECT post_id, title, text FROM post_versions ORDER BY 1, 2, 3"),
        "post_metrics": table("SELECT post_id, observed_at, like_count, comment_count, share_count, view_count "
                              "FROM post_metrics ORDER BY 1, 2"),
        "accounts": table("SELECT account_id, native_id, username, display_name, bio, followers, following, "
                          "likes, posts FROM accounts"),
    }


def integrity_ok(harness: TikTokHarness) -> bool:
    return [r[0] for r in harness.db.execute("PRAGMA integrity_check").fetchall()] == ["ok"]


def ticking_clock(start: dt.datetime | None = None) -> Callable[[], str]:
    """A now_utc() that moves one second per call.

    The archive stamps rows to the second; two runs inside one second would give two
    count samples the same observed_at. Tests run faster than a person, so they tick.
    """
    moment = [start or dt.datetime.now(dt.timezone.utc)]

    def now_utc() -> str:
        moment[0] += dt.timedelta(seconds=1)
        return moment[0].strftime("%Y-%m-%dT%H:%M:%SZ")

    return now_utc
