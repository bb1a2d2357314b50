"""``archiver import`` of a Bluesky repository CAR file (Settings → Account → Export my
data, or a ``com.atproto.sync.getRepo`` download): the same records as the API path,
written into the same rows.

The CAR is decoded by ``repo.read_repo`` and mapped by the record mappers of repo.py, the
code the API connector uses for getRepo, so keys agree by construction: posts and
reposts by their at:// URI, likes by the liked post's URI, people by DID.

What a repository file cannot give, and how that is handled:

- **the handle**: a repository names its owner by DID only. The account's ``handle``
  option (config.toml) is used when set; otherwise links use the DID
  (https://bsky.app/profile/did:plc:… works) and the profile's user name stays empty
  for the API to fill.
- **blob bytes** (images, video, avatar): not in the CAR. The import yields no MediaRefs
  (a link that cannot be downloaded would only record a failure per file, at every
  import); each post's raw record keeps its blob CIDs, and the next API run downloads
  the files through getBlob, checked against those CIDs, onto the same post rows.
- **followers**: they are follow records in *other* people's repositories; only the
  AppView lists them. The following list is whole, and is written as a complete
  snapshot dated at the repository's revision — unless blocks were damaged, when it is
  written as partial (a lost follow record must not read as an unfollow).

A damaged or missing block is one bad item: reported through ``ctx.report`` and
skipped; everything else is imported.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any, Iterator

from archiver.records import Page, Snapshot, now_utc, pages_of
from archiver.sync.runner import RunFailed
from archiver_connectors.bluesky.repo import (
    FOLLOW_COLLECTION,
    LIKE_COLLECTION,
    POST_COLLECTION,
    PROFILE_COLLECTION,
    REPOST_COLLECTION,
    Repo,
    RepoError,
    following_of,
    like_from_record,
    post_from_record,
    profile_from_record,
    read_repo,
    repost_from_record,
)

if TYPE_CHECKING:
    from archiver.sync.imports import ExportSource
    from archiver.sync.runner import SyncContext

log = logging.getLogger("archiver.bluesky")

PAGE_SIZE = 200
_CAR_MAGIC_FIELDS = (b"roots", b"version")


def car_entries(source: "ExportSource") -> list[str]:
    """The entries of ``source`` that are repository CAR files."""
    if getattr(source, "kind", None) == "car":
        return source.names()
    found = []
    for name in source.find("*.car"):
        try:
            with source.open(name) as stream:
                head = stream.read(512)
        except Exception:  # an entry that cannot be opened is reported at import time
            found.append(name)
            continue
        if all(field in head for field in _CAR_MAGIC_FIELDS):
            found.append(name)
    return found


def looks_like_repo(source: "ExportSource") -> bool:
    """A bare CAR file, or a folder / zip / tar holding one."""
    return bool(car_entries(source))


def _option(ctx: "SyncContext", key: str) -> str | None:
    value = ctx.account.options.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RunFailed(f"config.toml [accounts.{ctx.account.name}] {key} = {value!r}: expected a text value "
                        f"(e.g. {key} = \"{'alice.bsky.social' if key == 'handle' else 'did:plc:…'}\")")
    return value.strip().removeprefix("@")


def import_pages(source: "ExportSource", ctx: "SyncContext") -> Iterator[Page]:
    """Pages of every repository CAR in ``source``: profile, posts and reposts, likes,
    and the following list."""
    names = car_entries(source)
    if not names:
        raise RunFailed(f"{source.path}: no repository CAR file inside; give the .car file Bluesky exported "
                        "(Settings → Account → Export my data)")
    for name in names:
        label = str(source.path) if getattr(source, "kind", None) == "car" else f"{source.path}, entry {name!r}"
        try:
            with source.open(name) as stream:
                repo = read_repo(stream, name=label)
        except RepoError as error:
            raise RunFailed(str(error)) from None
        try:
            yield from repo_pages(repo, ctx, label=label)
        finally:
            repo.close()


def repo_pages(repo: Repo, ctx: "SyncContext", *, label: str = "the repository") -> Iterator[Page]:
    """Pages of one decoded repository (also usable by the API connector for getRepo)."""
    configured_did = _option(ctx, "did")
    did = repo.did or configured_did
    if did is None:
        raise RunFailed(f"{label}: its commit block is damaged, so whose repository it is cannot be read; "
                        f"set did = \"did:plc:…\" in config.toml [accounts.{ctx.account.name}] and import again")
    if configured_did and repo.did and configured_did != repo.did:
        raise RunFailed(f"{label}: this repository belongs to {repo.did}, but account {ctx.account.account_id} "
                        f"is {configured_did} (config.toml did); import it with --account naming its own account")
    handle = _option(ctx, "handle")
    name = handle or did
    # Read a record at a time from the repository's store (repo.py): memory holds a page.
    for item, why in repo.problems:
        ctx.report(item, why)
    known = {POST_COLLECTION, REPOST_COLLECTION, LIKE_COLLECTION, FOLLOW_COLLECTION, PROFILE_COLLECTION}
    other = set(repo.collections()) - known
    if other:
        log.info("%s: records of collections the archive does not store yet: %s", label, ", ".join(sorted(other)))

    def mapped(collection: str, mapper, what: str) -> Iterator[Any]:
        for record in repo.collection(collection):
            try:
                value = mapper(record)
            except Exception as error:  # one odd record never stops the others
                ctx.report(record.uri(did), f"cannot be mapped ({type(error).__name__}: {error}); skipped")
                continue
            if value is None:
                ctx.report(record.uri(did), f"{what}; skipped")
            else:
                yield value

    # No blob URLs: the file holds no blobs.
    for record in repo.collection(PROFILE_COLLECTION):
        if record.rkey != "self":
            continue
        try:
            yield Page("profile", [profile_from_record(did, handle, record.value)])
        except Exception as error:  # noqa: BLE001 - one odd record never stops the others
            ctx.report(record.uri(did), f"cannot be mapped ({type(error).__name__}: {error}); skipped")
    yield from pages_of("posts", itertools.chain(
        mapped(POST_COLLECTION, lambda r: post_from_record(did, name, r.rkey, r.value, cid=r.cid), ""),
        mapped(REPOST_COLLECTION, lambda r: repost_from_record(did, r.rkey, r.value, cid=r.cid), "")), PAGE_SIZE)
    yield from pages_of("likes", mapped(LIKE_COLLECTION, lambda r: like_from_record(did, r.rkey, r.value, cid=r.cid),
                                        "a like without a subject URI"), PAGE_SIZE)
    # A repository is whole, so its following list is too — unless blocks were lost.
    snapshot = Snapshot(kind="following", taken_at=repo.rev_time or now_utc(),
                        members=following_of(repo, ctx.report, did=did), complete=not repo.problems)
    yield Page("following", [snapshot])




__all__ = ["car_entries", "import_pages", "looks_like_repo", "repo_pages"]
