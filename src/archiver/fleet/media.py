"""Media of the fleet's archives in the object store, content-addressed and create-only.

A media file keeps the name it has in an archive's media folder (``aa/bb/<sha256>.<ext>``,
archive/media.py) under ``<prefix>media/``. The name is the sha256 of the bytes, so an
object already under that key holds the same bytes: uploading it again is skipped and
counts as success, whichever worker (or account: the same picture in two accounts) put it
there first. Nothing here ever overwrites or deletes a media object.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Collection

from archiver.fleet.objects import ObjectStore, StorageError, file_sha256

MEDIA_PREFIX = "media/"
_MEDIA_NAME = re.compile(r"^([0-9a-f]{64})(\.[A-Za-z0-9]{1,8})?$")


def media_key(store: ObjectStore, relative: str) -> str:
    return store.key(MEDIA_PREFIX + relative)


def put(store: ObjectStore, media_root: Path, relative: str) -> bool:
    """Upload one file of ``media_root`` (``relative`` = aa/bb/<sha256>.<ext>) unless its key
    exists. Its bytes are hashed first: a file whose name is not its sha256 (damaged on the
    worker's disk) is refused, never stored under a name it does not match.
    Returns True when this call stored it, False when it was there already."""
    match = _MEDIA_NAME.match(Path(relative).name)
    if not match:
        raise StorageError(f"{media_root / relative}: not a media file name (<sha256>.<ext>)")
    path = media_root / relative
    sha256, _ = file_sha256(path)
    if sha256 != match.group(1):
        raise StorageError(f"{path}: its bytes do not match its name (sha256 {sha256}); "
                           "the file is damaged: run `archiver verify` on the archive")
    return store.put_file(media_key(store, relative), path, create_only=True)


def upload_folder(store: ObjectStore, media_root: Path, *, skip: Collection[str] = ()) -> set[str]:
    """Upload every media file under ``media_root`` but those in ``skip`` (relative names
    uploaded earlier by this worker); returns the relative names now known to be stored."""
    done: set[str] = set()
    for path in sorted(media_root.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or not _MEDIA_NAME.match(path.name):
            continue   # .part files of a download in progress, and anything not a media file
        relative = path.relative_to(media_root).as_posix()
        if relative not in skip:
            put(store, media_root, relative)
        done.add(relative)
    return done


def fetch(store: ObjectStore, media_root: Path, relative: str) -> Path:
    """Lay one media file into ``media_root`` from the store (for a view, an export or a
    restore); its bytes are checked against its name."""
    match = _MEDIA_NAME.match(Path(relative).name)
    if not match:
        raise StorageError(f"{relative}: not a media file name (<sha256>.<ext>)")
    dest = media_root / relative
    if not dest.exists():
        store.get_file(media_key(store, relative), dest)
        sha256, _ = file_sha256(dest)
        if sha256 != match.group(1):
            dest.unlink()
            raise StorageError(f"{store.where(media_key(store, relative))}: its bytes do not match its name "
                               f"(sha256 {sha256}); the object was damaged in the store")
    return dest
