"""Serving a platform fake over real loopback HTTP, shared by every connector's fake.py.

A fake is an object with ``handle(httpx.Request) -> httpx.Response`` (the same callable
tests hand to ``httpx.MockTransport``) and a ``base_url`` it hands out in its links
(CDN files, paging). ``serve_fake`` puts it behind a threaded ``http.server`` on
127.0.0.1 for end-to-end tests, `archiver demo` and `archiver simulate`.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import httpx


class FakeClock:
    """A fake's own clock: real time plus what a test moved it forward by, so tokens, signed
    links and rate windows age without waiting. The fake sets ``clock_offset = 0.0`` and
    has a ``_lock``."""

    clock_offset: float
    _lock: threading.RLock

    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward: tokens, links and rate windows age accordingly."""
        with self._lock:
            self.clock_offset += seconds


class LoggedFake(FakeClock):
    """A fake whose ``handle`` (usable as ``httpx.MockTransport(fake.handle)``) waits its
    ``config.latency_ms`` outside the lock (requests overlap, as on a real server), then
    answers one request at a time from ``_dispatch``, logging (method, path, status, query
    parameters) in ``log`` for tests that count what a client asked."""

    config: Any
    log: Any

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)
        with self._lock:
            response = self._dispatch(request)
            self.log.append((request.method, request.url.path, response.status_code, dict(request.url.params)))
            return response


# What a hostile or broken file server can answer a download with (the fakes' faults):
# "endless" sends 64 KB chunks without end; "trickle" one byte per chunk read, without
# end (lockstep with the client: each byte arrives when the client asks for the next, so a
# fake clock decides the rate); "oversize" announces 50 GB and sends a few bytes.
HOSTILE_BODIES = ("endless", "trickle", "oversize")
SAFETY_STOP = {"endless": 50_000_000, "trickle": 200_000}


def hostile_download(kind: str, head: bytes, content_type: str) -> httpx.Response:
    """A download answer of the ``kind`` above, starting with the bytes ``head`` (a zip's
    "PK…"). Its body is a stream: for httpx.MockTransport (serve_fake reads bodies whole)."""
    if kind == "oversize":
        return httpx.Response(200, headers={"Content-Type": content_type, "Content-Length": str(50 * 10**9)},
                              content=iter([head]))

    def body():
        # "Without end" up to a safety stop (50 MB, or 200,000 trickled bytes): a client
        # whose bounds do not hold then fails its test instead of filling the disk or hanging.
        yield head
        sent = 0
        while sent < SAFETY_STOP[kind]:
            chunk = b"\x00" * 65536 if kind == "endless" else b"\x00"
            sent += len(chunk)
            yield chunk

    if kind not in HOSTILE_BODIES:
        raise ValueError(f"unknown hostile body {kind!r}; one of {HOSTILE_BODIES}")
    return httpx.Response(200, headers={"Content-Type": content_type}, content=body())


def serve_fake(fake, host: str = "127.0.0.1", port: int = 0, *,
               crash_response: Callable[[Exception], httpx.Response], name: str = "fake"):
    """Serve ``fake`` in a daemon thread; returns ``(server, thread)``.

    ``fake.base_url`` is set to the bound address so the links it hands out work.
    ``crash_response`` turns a bug in the fake into the platform's own 500 answer, so a
    client never hangs on it. Stop with ``server.shutdown(); server.server_close()``.
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real API front end

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = httpx.Request(self.command, fake.base_url + self.path,
                                    headers=list(self.headers.items()), content=body)
            try:
                response = fake.handle(request)
            except Exception as error:  # a fake bug must not hang the client
                response = crash_response(error)
            payload = response.content
            self.send_response(response.status_code)
            for header, value in response.headers.items():
                if header.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(header, value)
            # HEAD answers carry the length the GET body would have.
            length_header = response.headers.get("content-length", str(len(payload)))
            self.send_header("Content-Length", length_header if self.command == "HEAD" else str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = _forward

        def log_message(self, format, *args):  # noqa: A002 - quiet; URLs may carry codes
            pass

    # Headers and body go out in separate writes; with Nagle's algorithm on, each answer
    # then waits ~40 ms for the client's delayed ACK, which swamps any latency knob.
    Handler.disable_nagle_algorithm = True
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    bound_host, bound_port = server.server_address[:2]
    fake.base_url = f"http://{bound_host!s}:{bound_port}"
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return server, thread


def serve_until_signalled(server, fake) -> None:
    """For `archiver simulate`: announce the address (tests wait for this line), then
    serve until SIGTERM or SIGINT, and close cleanly."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"listening on {fake.base_url}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.shutdown()
        server.server_close()
    sys.stdout.flush()


def log_requests(fake, path: str) -> None:
    """Have ``fake`` append "METHOD PATH STATUS" to the file ``path`` for every request it
    answers (the path only: a query string could carry a code or a token)."""
    # Open for the life of the process; line-buffered, so it is readable mid-run.
    from archiver.private_files import open_private

    log_file = open_private(path, "a", buffering=1, encoding="utf-8")
    writing = threading.Lock()                                  # requests are served in threads
    answer = fake.handle

    def write(line: str) -> None:
        with writing:
            log_file.write(line + "\n")

    def handle(request: httpx.Request) -> httpx.Response:
        try:
            response = answer(request)
        except httpx.TransportError:
            write(f"{request.method} {request.url.path} refused")
            raise
        write(f"{request.method} {request.url.path} {response.status_code}")
        return response

    fake.handle = handle
