"""`archiver serve` in its own process on a free loopback port, for tests that browse it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerOutput:
    """What the server printed, readable once the `serving` block has ended."""

    text = ""


@contextlib.contextmanager
def serving(archive, output: ServerOutput | None = None, *, args: list[str] | None = None,
            env: dict[str, str] | None = None):
    """`archiver serve` over `archive` in its own process, until the block ends; yields its base URL.
    ``args``: the command's arguments instead of ``--archive <folder>`` (``--port`` is added);
    ``env``: more environment.

    The server's output goes to a file (a pipe nobody reads would block a server that prints
    much, e.g. tracebacks) and is put in `output` at the end.
    """
    port = free_port()
    more_env = env or {}
    env = {**os.environ, "ARCHIVER_SECRETS": "memory",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    env.pop("ARCHIVER_HOME", None)
    env.pop("ARCHIVER_CONFIG", None)
    env.update(more_env)
    if args is None:
        args = ["--archive", str(archive.folder)]
    with tempfile.TemporaryFile() as printed:
        process = subprocess.Popen(
            [sys.executable, "-m", "archiver.cli", "serve", *args, "--port", str(port)],
            env=env, stdout=printed, stderr=subprocess.STDOUT,
        )

        def printed_text() -> str:
            printed.seek(0)
            return printed.read().decode(errors="replace")

        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    pytest.fail(f"archiver serve exited with {process.returncode}: {printed_text()}")
                try:
                    if httpx.get(f"{base}/-/versions.json", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("archiver serve did not answer within 30 s")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if output is not None:
                output.text = printed_text()
