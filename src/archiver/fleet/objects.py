"""An S3-compatible object store (AWS S3, MinIO, Ceph, R2 …) for the fleet: one bucket and a
key prefix in it, through boto3. fleet/storage.py keeps archives there by generation,
fleet/media.py the media files by sha256.

boto3 is imported inside functions: it comes with the ``fleet`` extra, and `archiver --help`
never loads it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

ENV_STORAGE = "ARCHIVER_FLEET_STORAGE"                    # s3://bucket/prefix
ENV_STORAGE_ENDPOINT = "ARCHIVER_FLEET_STORAGE_ENDPOINT"  # https://minio.example:9000 (not AWS)
SINGLE_PUT_LIMIT = 64 * 1024 * 1024   # larger files go up in parts (boto3's managed transfer)
CHUNK = 1 << 20


class StorageError(Exception):
    """The object store or the archive pointer cannot be used; the message names the bucket,
    the key or the account, and what to do."""


@dataclass
class ObjectStore:
    """One bucket (and a key prefix in it) of an S3-compatible store, through boto3.

    Credentials come from boto3's own chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
    a profile, an instance or pod role), never from the archiver's config."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    _client: Any = field(default=None, repr=False)

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region,
                config=Config(retries={"mode": "standard", "max_attempts": 5},
                              connect_timeout=10, read_timeout=60, max_pool_connections=16))
        return self._client

    def key(self, relative: str) -> str:
        return self.prefix + relative

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            with self._errors("look up", key):
                raise
        return True

    def put_file(self, key: str, path: Path, *, create_only: bool = False) -> bool:
        """Upload ``path`` to ``key``. ``create_only``: an object already there is left as it is
        (False is returned); for content-addressed keys, where it holds the same bytes."""
        size = path.stat().st_size
        if create_only and self.exists(key):
            return False
        with self._errors("upload", key):
            if size <= SINGLE_PUT_LIMIT:
                extra = {"IfNoneMatch": "*"} if create_only else {}
                try:
                    with open(path, "rb") as body:
                        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
                except Exception as exc:
                    # Another worker stored the same content-addressed object meanwhile.
                    if create_only and _error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                        return False
                    raise
            else:
                self.client.upload_file(str(path), self.bucket, key)
        return True

    def get_file(self, key: str, dest: Path) -> None:
        """Download ``key`` to ``dest``: into ``dest.part`` first, fsynced, then renamed, so a
        crash leaves either no ``dest`` or a whole one."""
        part = dest.with_name(dest.name + f".{uuid.uuid4().hex[:8]}.part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._errors("download", key):
                self.client.download_file(self.bucket, key, str(part))
            with open(part, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(part, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):   # S3's DeleteObjects takes 1,000 at most
            batch = keys[start:start + 1000]
            with self._errors("delete", batch[0]):
                answer = self.client.delete_objects(Bucket=self.bucket,
                                                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            # A 200 may still refuse some keys one by one (Object Lock, a policy): they are not gone.
            refused = answer.get("Errors") or []
            if refused:
                first = refused[0]
                raise StorageError(f"could not delete {self.where(first.get('Key', '?'))} and {len(refused) - 1} "
                                   f"more: {first.get('Code', '?')} ({first.get('Message', '')}); nothing of them "
                                   "is marked removed")

    def keys(self, relative_prefix: str = "") -> Iterator[str]:
        """Every key under the store's prefix + ``relative_prefix``."""
        for key, _ in self.listing(relative_prefix):
            yield key

    def listing(self, relative_prefix: str = "") -> Iterator[tuple[str, dt.datetime]]:
        """Every key under the store's prefix + ``relative_prefix``, with when it was written."""
        prefix = self.key(relative_prefix)
        with self._errors("list", prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"], item["LastModified"]

    @contextlib.contextmanager
    def _errors(self, action: str, key: str):
        """botocore's errors as a StorageError naming the object and the cause (its messages
        carry no credentials; ours name no secret either)."""
        try:
            yield
        except Exception as exc:
            if isinstance(exc, StorageError) or type(exc).__module__.split(".")[0] not in ("botocore", "boto3", "s3transfer"):
                raise
            code = _error_code(exc)
            hint = {"NoSuchBucket": f"create the bucket, or fix the store's URL (--storage, {ENV_STORAGE})",
                    "AccessDenied": "check the store's credentials and the bucket's policy",
                    "InvalidAccessKeyId": "check AWS_ACCESS_KEY_ID (or the worker's role)",
                    "SignatureDoesNotMatch": "check AWS_SECRET_ACCESS_KEY"}.get(code or "", "")
            raise StorageError(f"could not {action} {self.where(key)}: {type(exc).__name__}"
                               f"{f' ({code})' if code else ''}{'; ' + hint if hint else ''}") from None


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "") or None
    return None


def open_object_store(url: str | None = None, *, endpoint_url: str | None = None,
                      region: str | None = None) -> ObjectStore:
    """The store at ``url`` (``s3://bucket/prefix``; else $ARCHIVER_FLEET_STORAGE).
    ``endpoint_url`` (else $ARCHIVER_FLEET_STORAGE_ENDPOINT) for stores that are not AWS."""
    url = url or os.environ.get(ENV_STORAGE)
    if not url:
        raise StorageError(f"no object store: pass --storage s3://bucket/prefix or set {ENV_STORAGE}")
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise StorageError(f"the object store {url!r} is not an s3://bucket/prefix URL")
    prefix = parts.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return ObjectStore(parts.netloc, prefix, endpoint_url or os.environ.get(ENV_STORAGE_ENDPOINT) or None, region)


def file_sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# --------------------------------------------------------------------------- archives
