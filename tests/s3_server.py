"""An S3-compatible object store for the fleet tests: moto in server mode, listening on
127.0.0.1 on a free port, started by the tests (one per pytest process, i.e. per xdist
worker; a daemon thread that ends with the process). It speaks S3's HTTP API, so the code under test goes
through boto3, botocore's signing and real HTTP exactly as it would against AWS, MinIO or
Ceph.

Use it from a test module by importing the fixtures::

    from s3_server import s3_bucket, s3_server  # noqa: F401  (pytest fixtures)

    def test_something(s3_bucket):     # a fresh, empty bucket: (endpoint_url, bucket name)
        ...

Without moto installed (the ``test`` extra brings it) the tests that use it skip, unless
ARCHIVER_REQUIRE_S3=1 (CI sets it), which makes that a failure.
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass

import pytest

# Fixed, fake credentials: moto accepts any, and the code under test must get them the way
# it would in production (boto3's own chain: here, the environment of this process).
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "fleet-test-key", "AWS_SECRET_ACCESS_KEY": "fleet-test-secret",
                    "AWS_DEFAULT_REGION": "us-east-1"}

_bucket_numbers = itertools.count(1)
# Each test module imports the fixture (one fixture per module to pytest): the server is kept
# here, so every module of this process shares one. Its thread is a daemon: it ends with the process.
_server: MotoServer | None = None


@dataclass(frozen=True)
class S3Bucket:
    endpoint_url: str
    name: str

    def url(self, prefix: str = "") -> str:
        """The store's location as the fleet's config names it: s3://bucket/prefix."""
        return f"s3://{self.name}/{prefix}"

    def client(self):
        """A plain boto3 client, for tests that look at the bucket behind the code's back."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")


class MotoServer:
    """moto's threaded server on 127.0.0.1 (port 0: the kernel picks a free one)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)   # not a line per request

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture(scope="session")
def s3_server():
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError:
        if os.environ.get("ARCHIVER_REQUIRE_S3"):
            raise
        pytest.skip("moto[server] and boto3 are not installed (pip install -e '.[test]')")
    global _server
    os.environ.update(TEST_CREDENTIALS)   # this process is a test session: no real credentials to keep
    if _server is None:
        _server = MotoServer()
    yield _server


@pytest.fixture
def s3_bucket(s3_server) -> S3Bucket:
    """A new, empty bucket for one test."""
    bucket = S3Bucket(s3_server.endpoint_url, f"fleet-test-{os.getpid()}-{next(_bucket_numbers)}")
    bucket.client().create_bucket(Bucket=bucket.name)
    return bucket
