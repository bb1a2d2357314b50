"""An AT Protocol repository, read from its CAR file, and mapped to archiver records.

The same bytes come from two places: ``com.atproto.sync.getRepo`` (the API connector)
and the file Bluesky's settings page exports (``archiver import``). Both go through
``read_repo`` and ``records_from_repo``, so a post seen either way is the same row.

What a repository CAR is (shared/platforms/bluesky.md §7, atproto.com/specs/repository):

    CAR v1   varint(len) + DAG-CBOR header {version: 1, roots: [<commit CID>]}
             then blocks: varint(len) + CID bytes + block bytes, in no defined order
    commit   {did, version: 3, data: <CID of the MST root>, rev: <TID>, prev, sig}
    MST      node {l: <CID|null>, e: [{p: <prefix length>, k: <key suffix>, v: <record
             CID>, t: <CID|null>}]}; full key = previous key in the node[:p] + k, and a
             key is "<collection>/<rkey>". In order: l subtree, then each entry followed
             by its t subtree.
    record   DAG-CBOR of the record (blobs are referenced by CID, never inside the CAR)

Decoding is done by libipld (DAG-CBOR, CIDs). The CAR framing around the blocks is read
here, block by block, for one reason: each block's bytes are checked against the sha256
in its CID, so a damaged block is *reported and skipped* (``Repo.problems``) while the
rest of the repository still decodes. ``libipld.decode_car`` would take the file whole
or not at all, and does not check the hashes.

Only what the MST reaches is a record: a CAR may carry duplicate or unreferenced blocks.

Memory does not grow with the repository: the CAR is read as a stream, a block at a time,
into a private temporary SQLite database keyed by CID (SQLite keeps a few MB of it in
memory and the rest in a temporary file), because the blocks come "in no defined order"
and the MST walk needs them by CID. The walk writes the records it reaches to the same
database; ``Repo.records`` and ``Repo.collection`` read them back one at a time.

Record values are given in the atproto *JSON* form, the one ``com.atproto.repo.listRecords``
returns: a CID link is ``{"$link": "bafy…"}`` and a byte string ``{"$bytes": "<base64>"}``.
So the mapping below works the same on a listRecords value, and values store as JSON.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterator

import libipld

from archiver.records import Interaction, MediaRef, Membership, Person, Post, Profile, iso_utc, visibility
from archiver.sync.imports import ExportLimits

log = logging.getLogger("archiver.bluesky")

# Multiformats codes (https://github.com/multiformats/multicodec).
CODEC_DAG_CBOR = 0x71
CODEC_RAW = 0x55
HASH_SHA2_256 = 0x12
HASH_IDENTITY = 0x00

PROFILE_COLLECTION = "app.bsky.actor.profile"
POST_COLLECTION = "app.bsky.feed.post"
LIKE_COLLECTION = "app.bsky.feed.like"
REPOST_COLLECTION = "app.bsky.feed.repost"
FOLLOW_COLLECTION = "app.bsky.graph.follow"

WEB_URL = "https://bsky.app"

# A header longer than this is not a repository CAR's (it holds one root CID).
_MAX_HEADER_BYTES = 64 * 1024
# An MST is about log4(records) deep; anything deeper is a loop or a forged file.
_MAX_MST_DEPTH = 128
# A record is mapped and stored as JSON by recursive code: deeper than the limit JSON
# exports have (archiver.sync.imports), it is one bad item.
_MAX_NESTING = ExportLimits.max_json_depth


class RepoError(ValueError):
    """The file is not a repository CAR at all (or nothing in it can be used). The
    message names the file and says what to do."""


# --------------------------------------------------------------------------- CIDs


def cid_to_str(cid: bytes | bytearray) -> str:
    """Raw CID bytes (as libipld gives links) -> "bafy…" text. Bytes that are no CID (a
    damaged CAR's framing) give "unreadable-cid:<hex>": naming a damaged block must not
    fail in turn."""
    try:
        return libipld.encode_cid(bytes(cid))
    except ValueError:
        return f"unreadable-cid:{bytes(cid)[:40].hex()}"


def cid_to_bytes(cid: str | bytes) -> bytes:
    """"bafy…" text -> raw CIDv1 bytes (what libipld encodes as a DAG-CBOR link)."""
    if isinstance(cid, (bytes, bytearray, memoryview)):
        return bytes(cid)
    info = libipld.decode_cid(cid)
    digest = info["hash"]["digest"]
    return (_varint(info["version"]) + _varint(info["codec"]) + _varint(info["hash"]["code"])
            + _varint(len(digest)) + digest)


def blob_sha256(cid: str | bytes | None) -> str | None:
    """The hex sha256 a blob CID names (sha2-256 multihash), or None for another hash.

    A blob's CID is the hash of the file's bytes, so the runner can refuse a download
    whose bytes are not the blob (MediaRef.sha256)."""
    if not cid:
        return None
    try:
        text = cid if isinstance(cid, str) else cid_to_str(cid)
        info = libipld.decode_cid(text)
    except (ValueError, TypeError):
        return None
    if info["hash"]["code"] != HASH_SHA2_256 or len(info["hash"]["digest"]) != 32:
        return None
    return info["hash"]["digest"].hex()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: memoryview, offset: int) -> tuple[int, int]:
    """(value, offset after it); ValueError when the data ends inside it."""
    value, shift = 0, 0
    while True:
        if offset >= len(data):
            raise ValueError("the data ends inside a varint")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
        if shift > 63:
            raise ValueError("a varint longer than 9 bytes")


def _split_cid(section: memoryview) -> tuple[bytes, int, int, bytes]:
    """Parse the CID at the start of a block section: (cid bytes, codec, hash code, digest)."""
    if len(section) >= 34 and section[0] == 0x12 and section[1] == 0x20:  # CIDv0: bare sha256 multihash
        return bytes(section[:34]), CODEC_DAG_CBOR, HASH_SHA2_256, bytes(section[2:34])
    version, offset = _read_varint(section, 0)
    if version != 1:
        raise ValueError(f"unknown CID version {version}")
    codec, offset = _read_varint(section, offset)
    hash_code, offset = _read_varint(section, offset)
    digest_len, offset = _read_varint(section, offset)
    if offset + digest_len > len(section):
        raise ValueError("the CID's hash runs past the block")
    end = offset + digest_len
    return bytes(section[:end]), codec, hash_code, bytes(section[offset:end])


def _hash_problem(hash_code: int, digest: bytes, data: memoryview) -> str | None:
    if hash_code == HASH_SHA2_256:
        if hashlib.sha256(data).digest() != digest:
            return "its bytes do not match the sha256 in its CID (the block is damaged)"
    elif hash_code == HASH_IDENTITY:
        if bytes(data) != digest:
            return "its bytes do not match its identity CID (the block is damaged)"
    return None  # another hash function: accepted unchecked (not used by atproto)


# --------------------------------------------------------------------------- JSON form


def _looks_like_cid(value: bytes | bytearray) -> bool:
    """libipld decodes a CID link (CBOR tag 42) to plain bytes, like a byte string. A link
    in a repository is a CIDv1 with a sha256 multihash, exactly 36 bytes: nothing else in
    a record has that shape."""
    return (len(value) == 36 and value[0] == 0x01 and value[1] in (CODEC_DAG_CBOR, CODEC_RAW)
            and value[2] == HASH_SHA2_256 and value[3] == 0x20)


def to_json_form(value: Any) -> Any:
    """A decoded DAG-CBOR value -> the atproto JSON form ({"$link"}, {"$bytes"})."""
    if isinstance(value, dict):
        return {key: to_json_form(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json_form(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        if _looks_like_cid(value):
            return {"$link": cid_to_str(value)}
        return {"$bytes": base64.b64encode(value).decode("ascii").rstrip("=")}
    return value


def from_json_form(value: Any) -> Any:
    """The atproto JSON form -> what libipld.encode_dag_cbor writes as links and bytes."""
    if isinstance(value, dict):
        if set(value) == {"$link"} and isinstance(value["$link"], str):
            return cid_to_bytes(value["$link"])
        if set(value) == {"$bytes"} and isinstance(value["$bytes"], str):
            text = value["$bytes"]
            return base64.b64decode(text + "=" * (-len(text) % 4))
        return {key: from_json_form(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_json_form(item) for item in value]
    return value


# --------------------------------------------------------------------------- TIDs

_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def tid_time(tid: str | None) -> str | None:
    """The moment a TID (record key, repo rev) was made, ISO UTC; None if it is not a TID."""
    if not tid or len(tid) != 13 or any(c not in _TID_ALPHABET for c in tid):
        return None
    number = 0
    for char in tid:
        number = (number << 5) | _TID_ALPHABET.index(char)
    micros = (number >> 10) & ((1 << 53) - 1)
    try:
        return iso_utc(micros / 1_000_000)
    except (OverflowError, ValueError, OSError):
        return None


def make_tid(micros: int, clock_id: int = 0) -> str:
    """A TID for a moment in microseconds since the epoch (for fakes and tests)."""
    number = ((micros & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[number & 31])
        number >>= 5
    return "".join(reversed(chars))


# --------------------------------------------------------------------------- the repository


@dataclass
class RepoRecord:
    """One record of the repository: its key ("collection/rkey"), CID and value (JSON form)."""

    collection: str
    rkey: str
    cid: str
    value: dict[str, Any]

    def uri(self, did: str) -> str:
        return f"at://{did}/{self.collection}/{self.rkey}"


@dataclass
class Repo:
    """A decoded repository. ``problems`` lists (item, why) for what could not be read;
    everything else was decoded. ``records`` (every record, in key order) and
    ``collection(name)`` read the records one at a time from the repository's temporary
    store; ``close()`` drops it (it also goes with the Repo)."""

    did: str | None
    rev: str | None
    commit_cid: str | None
    data_cid: str | None = None
    version: int | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)
    block_count: int = 0
    store: Any = field(default=None, repr=False)  # the _BlockStore the records are read from

    @property
    def records(self) -> "_StoredRecords":
        return _StoredRecords(self.store, None)

    def collection(self, name: str) -> "_StoredRecords":
        return _StoredRecords(self.store, name)

    def records_after(self, collections: tuple[str, ...], after: str | None, limit: int) -> list[RepoRecord]:
        """Up to ``limit`` records of ``collections`` whose key ("collection/rkey") comes
        after ``after``, in key order: a keyed walk over any size of repository."""
        import json

        if self.store is None:
            return []
        marks = ",".join("?" * len(collections))
        rows = self.store.db.execute(
            f"SELECT collection, rkey, cid, value FROM records WHERE collection IN ({marks}) AND key > ? "
            "ORDER BY key LIMIT ?", [*collections, after or "", limit]).fetchall()
        return [RepoRecord(collection, rkey, cid, json.loads(value)) for collection, rkey, cid, value in rows]

    def collections(self) -> list[str]:
        """The names of the collections that hold records."""
        if self.store is None:
            return []
        return [row[0] for row in self.store.db.execute("SELECT DISTINCT collection FROM records ORDER BY 1")]

    @property
    def rev_time(self) -> str | None:
        """When this revision was committed (a rev is a TID)."""
        return tid_time(self.rev)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


class _StoredRecords:
    """The records of a repository (or of one collection), in key order, read one at a
    time; iterable any number of times, with ``len``."""

    def __init__(self, store: "_BlockStore | None", collection: str | None):
        self._store = store
        self._collection = collection

    def _where(self) -> tuple[str, list]:
        return ("WHERE collection=?", [self._collection]) if self._collection else ("", [])

    def __iter__(self) -> Iterator[RepoRecord]:
        if self._store is None:
            return
        import json

        where, args = self._where()
        for collection, rkey, cid, value in self._store.db.execute(
                f"SELECT collection, rkey, cid, value FROM records {where} ORDER BY key", args):
            yield RepoRecord(collection, rkey, cid, json.loads(value))

    def __len__(self) -> int:
        if self._store is None:
            return 0
        where, args = self._where()
        return self._store.db.execute(f"SELECT count(*) FROM records {where}", args).fetchone()[0]


class _BlockStore:
    """A private temporary SQLite database: the CAR's blocks by CID, the damaged ones
    with why, and the records the MST walk reached. SQLite's empty file name makes a
    temporary database that lives in its page cache (a few MB) and spills the rest to a
    temporary file, deleted when it closes."""

    def __init__(self) -> None:
        import sqlite3

        self.db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8192;"
            "CREATE TABLE blocks (cid BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;"
            "CREATE TABLE damaged (cid BLOB PRIMARY KEY, why TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0) "
            "WITHOUT ROWID;"
            "CREATE TABLE records (key TEXT PRIMARY KEY, collection TEXT, rkey TEXT, cid TEXT, value TEXT);"
            "CREATE INDEX records_by_collection ON records (collection, key);"
            "BEGIN;")

    def add_block(self, cid: bytes, data: bytes) -> None:
        self.db.execute("INSERT OR IGNORE INTO blocks VALUES (?, ?)", [cid, data])  # the first copy counts

    def add_damaged(self, cid: bytes, why: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO damaged (cid, why) VALUES (?, ?)", [cid, why])

    def block(self, cid: bytes) -> bytes | None:
        row = self.db.execute("SELECT data FROM blocks WHERE cid=?", [cid]).fetchone()
        return row[0] if row else None

    def damage(self, cid: bytes) -> str | None:
        row = self.db.execute("SELECT why FROM damaged WHERE cid=?", [cid]).fetchone()
        if row is None:
            return None
        self.db.execute("UPDATE damaged SET used=1 WHERE cid=?", [cid])
        return row[0]

    def blocks_read(self) -> int:
        """The blocks stored, the damaged ones included."""
        return self.db.execute("SELECT (SELECT count(*) FROM blocks) + (SELECT count(*) FROM damaged)").fetchone()[0]

    def close(self) -> None:
        self.db.close()


# A block longer than this is no repository block (records are capped far below): the
# length is damaged or forged, and reading it would only fill memory.
_MAX_BLOCK_BYTES = 16 * 2**20
_READ_CHUNK = 1 << 16


def read_repo(source: bytes | bytearray | memoryview | BinaryIO, *, name: str | None = None,
              diff: bool = False) -> Repo:
    """Decode a repository CAR (bytes or a binary stream, read forward once) and walk
    commit -> MST -> records.

    ``name`` names the file in errors (a stream's ``.name`` is used otherwise). ``diff``:
    the CAR is a ``getRepo?since=`` diff, where unchanged blocks are missing by design and
    are not problems.

    Raises RepoError when the data is not a CAR at all. A damaged or missing block is a
    problem in ``Repo.problems`` (naming the record or node it held), and the rest is read.
    """
    import io

    stream_name = getattr(source, "name", None)  # a TemporaryFile's name is a file descriptor
    label = name or (stream_name if isinstance(stream_name, str) else None) or "the repository CAR"
    stream = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source
    reader = _CarReader(stream, str(label), diff=diff)
    try:
        return reader.read()
    except BaseException:
        reader.store.close()
        raise


class _CarReader:
    def __init__(self, stream: BinaryIO, label: str, *, diff: bool):
        self.stream = stream
        self.label = label
        self.diff = diff
        self.store = _BlockStore()
        self.problems: list[tuple[str, str]] = []
        self.offset = 0

    def fail(self, problem: str) -> RepoError:
        return RepoError(
            f"{self.label}: {problem}. This is not an AT Protocol repository CAR file; export it again "
            "from Bluesky (Settings → Account → Export my data) or give the .car file it downloaded.")

    # -- framing ----------------------------------------------------------------------

    def _read_exactly(self, count: int) -> bytes:
        parts, left = [], count
        while left:
            chunk = self.stream.read(min(left, _READ_CHUNK))
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
        data = b"".join(parts)
        self.offset += len(data)
        return data

    def _read_varint(self) -> int | None:
        """The next varint, None at a clean end of the file; ValueError inside one."""
        value, shift = 0, 0
        while True:
            byte = self.stream.read(1)
            if not byte:
                if shift == 0:
                    return None
                raise ValueError("the data ends inside a varint")
            self.offset += 1
            value |= (byte[0] & 0x7F) << shift
            if not byte[0] & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ValueError("a varint longer than 9 bytes")

    def read(self) -> Repo:
        roots = self.read_header()
        self.read_blocks()
        if not self.store.blocks_read():
            raise self.fail("it holds no blocks")
        return self.walk_repo(roots)

    def read_header(self) -> list[bytes]:
        try:
            length = self._read_varint()
        except ValueError:
            length = None
        if length is None or not 0 < length <= _MAX_HEADER_BYTES:
            raise self.fail("it does not start with a CAR header")
        data = self._read_exactly(length)
        if len(data) < length:
            raise self.fail("it does not start with a CAR header")
        try:
            header = libipld.decode_dag_cbor(data)
        except (ValueError, RecursionError) as exc:
            raise self.fail(f"its header is not DAG-CBOR ({exc})") from None
        if not isinstance(header, dict) or "version" not in header:
            raise self.fail("its header is not a CAR header")
        if header["version"] == 2:
            raise RepoError(f"{self.label}: a CAR version 2 file; Bluesky exports CAR version 1 — "
                            "export the repository again from Bluesky")
        if header["version"] != 1 or not isinstance(header.get("roots"), list):
            raise self.fail(f"its header says version {header['version']!r}, expected 1 with roots")
        return [bytes(root) for root in header["roots"] if isinstance(root, (bytes, bytearray))]

    def read_blocks(self) -> None:
        index = 0
        while True:
            try:
                length = self._read_varint()
            except ValueError:
                length = -1
            if length is None:
                return
            if length <= 0 or length > _MAX_BLOCK_BYTES:
                self.problems.append(("car", f"block {index + 1} is damaged (its length cannot be read); "
                                             f"the {index} blocks before it were read"))
                return
            section = self._read_exactly(length)
            if len(section) < length:
                self.problems.append(("car", f"the file ends inside block {index + 1} (it is truncated); "
                                             f"the {index} blocks before it were read"))
                return
            index += 1
            view = memoryview(section)
            try:
                cid, _codec, hash_code, digest = _split_cid(view)
            except ValueError as exc:
                self.problems.append((f"block {index}", f"its CID cannot be read ({exc}); skipped"))
                continue
            block = view[len(cid):]
            why = _hash_problem(hash_code, digest, block)
            if why:
                self.store.add_damaged(cid, why)
                continue
            self.store.add_block(cid, bytes(block))

    # -- blocks -----------------------------------------------------------------------

    def decode(self, cid: bytes, item: str, *, optional: bool = False) -> Any:
        """The decoded block, or None after reporting why it cannot be had."""
        block = self.store.block(cid)
        if block is None:
            why = self.store.damage(cid)
            if why is not None:
                self.problems.append((item, f"block {cid_to_str(cid)}: {why}; skipped"))
            elif not (self.diff or optional):
                self.problems.append((item, f"block {cid_to_str(cid)} is missing from the CAR; skipped"))
            return None
        try:
            value = libipld.decode_dag_cbor(block)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested past libipld's own limit
            self.problems.append((item, f"block {cid_to_str(cid)} is not valid DAG-CBOR ({exc}); skipped"))
            return None
        if _nested_deeper_than(value, _MAX_NESTING):
            self.problems.append((item, f"block {cid_to_str(cid)} is nested more than {_MAX_NESTING} levels deep "
                                  "(no real record is; the file is damaged or made to exhaust memory); skipped"))
            return None
        return value

    # -- commit, MST, records -----------------------------------------------------------

    def walk_repo(self, roots: list[bytes]) -> Repo:
        if not roots:
            raise self.fail("its header names no root")
        commit_cid = roots[0]
        commit = self.decode(commit_cid, "commit")
        repo = Repo(did=None, rev=None, commit_cid=cid_to_str(commit_cid), problems=self.problems,
                    block_count=self.store.blocks_read(), store=self.store)
        tree_roots: list[bytes] = []
        if isinstance(commit, dict) and isinstance(commit.get("data"), bytes):
            repo.did = commit.get("did") if isinstance(commit.get("did"), str) else None
            repo.rev = commit.get("rev") if isinstance(commit.get("rev"), str) else None
            repo.version = commit.get("version") if isinstance(commit.get("version"), int) else None
            tree_roots = [commit["data"]]
            repo.data_cid = cid_to_str(commit["data"])
        else:
            if commit is not None:
                self.problems.append(("commit", "the root block is not a repository commit"))
            # Without the commit the tree's root is unknown: the MST nodes that no other
            # node points to are its root (one, unless the CAR is a jumble).
            tree_roots = self.orphan_mst_nodes()
            if not tree_roots:
                raise RepoError(f"{self.label}: its commit block is damaged or missing and no record tree "
                                "was found; nothing can be imported. Export the repository again from Bluesky.")
        import json

        db = self.store.db
        for root in tree_roots:
            for key, record_cid in self.walk_mst(root, 0, set()):
                if db.execute("SELECT 1 FROM records WHERE key=?", [key]).fetchone():
                    continue  # the first tree to reach a key counts
                record = self.read_record(repo.did, key, record_cid)
                # A record that cannot be read still takes its key (as before: seen once).
                db.execute("INSERT INTO records VALUES (?,?,?,?,?)",
                           [key, *(([record.collection, record.rkey, record.cid, json.dumps(record.value)])
                                   if record is not None else [None, None, None, None])])
        db.execute("DELETE FROM records WHERE value IS NULL")
        for cid, why in db.execute("SELECT cid, why FROM damaged WHERE NOT used").fetchall():
            self.problems.append((f"block {cid_to_str(cid)}", f"{why} (not part of the record tree)"))
        return repo

    def walk_mst(self, cid: bytes, depth: int, visiting: set[bytes]) -> Iterator[tuple[str, bytes]]:
        item = f"MST node {cid_to_str(cid)}"
        if depth > _MAX_MST_DEPTH or cid in visiting:
            self.problems.append((item, "the record tree loops back on itself; this branch is skipped"))
            return
        node = self.decode(cid, item + " (the records under it are lost)")
        if node is None:
            return
        if not _is_mst_node(node):
            self.problems.append((item, "not a record-tree node; the records under it are lost"))
            return
        visiting = visiting | {cid}
        if node.get("l"):
            yield from self.walk_mst(node["l"], depth + 1, visiting)
        key = b""
        for position, entry in enumerate(node["e"]):
            prefix, suffix, value = entry.get("p"), entry.get("k"), entry.get("v")
            if (not isinstance(prefix, int) or not isinstance(suffix, bytes) or not isinstance(value, bytes)
                    or prefix > len(key)):
                self.problems.append((item, f"entry {position} is malformed; the rest of this node is skipped"))
                return
            key = key[:prefix] + suffix
            try:
                text = key.decode("utf-8")
            except UnicodeDecodeError:
                self.problems.append((item, f"entry {position} has a key that is not UTF-8; skipped"))
            else:
                yield text, value
            if entry.get("t"):
                yield from self.walk_mst(entry["t"], depth + 1, visiting)

    def read_record(self, did: str | None, key: str, cid: bytes) -> RepoRecord | None:
        collection, slash, rkey = key.partition("/")
        item = f"at://{did or '?'}/{key}"
        if not slash or not collection or not rkey:
            self.problems.append((item, "its key is not <collection>/<record key>; skipped"))
            return None
        value = self.decode(cid, item)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problems.append((item, "the record is not an object; skipped"))
            return None
        return RepoRecord(collection, rkey, cid_to_str(cid), to_json_form(value))

    def orphan_mst_nodes(self) -> list[bytes]:
        """The MST nodes no other node links to, found a block at a time."""
        db = self.store.db
        db.execute("CREATE TEMP TABLE mst_nodes (cid BLOB PRIMARY KEY) WITHOUT ROWID")
        db.execute("CREATE TEMP TABLE mst_children (cid BLOB PRIMARY KEY) WITHOUT ROWID")
        for cid, block in _rows(db):
            try:
                value = libipld.decode_dag_cbor(block)
            except (ValueError, RecursionError):
                continue
            if _is_mst_node(value):
                db.execute("INSERT OR IGNORE INTO temp.mst_nodes VALUES (?)", [cid])
                db.executemany("INSERT OR IGNORE INTO temp.mst_children VALUES (?)",
                               [(link,) for link in _node_links(value)])
        return [row[0] for row in db.execute(
            "SELECT cid FROM temp.mst_nodes WHERE cid NOT IN (SELECT cid FROM temp.mst_children)").fetchall()]


def _nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and maps inside ``value`` nest more than ``limit`` levels (walked
    without recursion, so a hostile value cannot exhaust the stack here)."""
    pending = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        children = current.values() if isinstance(current, dict) else current if isinstance(current, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                pending.append((child, depth + 1))
    return False


def _rows(db) -> Iterator[tuple[bytes, bytes]]:
    """Every block, read in CID order a batch at a time (memory stays at one batch)."""
    last = b""
    while True:
        batch = db.execute("SELECT cid, data FROM blocks WHERE cid > ? ORDER BY cid LIMIT 500", [last]).fetchall()
        if not batch:
            return
        yield from batch
        last = batch[-1][0]


def _is_mst_node(value: Any) -> bool:
    return (isinstance(value, dict) and set(value) == {"l", "e"} and isinstance(value["e"], list)
            and all(isinstance(entry, dict) for entry in value["e"]))


def _node_links(node: dict) -> Iterator[bytes]:
    if node.get("l"):
        yield node["l"]
    for entry in node["e"]:
        if entry.get("t"):
            yield entry["t"]


# --------------------------------------------------------------------------- mapping

# Builds the download URL of a blob from its CID (the API connector's getBlob), or None.
BlobUrl = Callable[[str], str]


@dataclass
class RepoRecords:
    """A repository as archiver records. ``other`` holds records of collections the
    archive has no table for yet (blocks, lists, non-Bluesky apps): kept in the raw CAR,
    counted here. ``problems`` lists records that could not be mapped."""

    profile: Profile | None = None
    posts: list[Post] = field(default_factory=list)
    reposts: list[Post] = field(default_factory=list)
    likes: list[Interaction] = field(default_factory=list)
    following: list[Membership] = field(default_factory=list)
    other: list[RepoRecord] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def at_uri(did: str, collection: str, rkey: str) -> str:
    return f"at://{did}/{collection}/{rkey}"


def profile_url(handle_or_did: str) -> str:
    return f"{WEB_URL}/profile/{handle_or_did}"


def post_web_url(uri: str | None) -> str | None:
    """at://<did>/app.bsky.feed.post/<rkey> -> the bsky.app page of that post."""
    if not isinstance(uri, str) or not uri.startswith("at://"):
        return None
    parts = uri[len("at://"):].split("/")
    if len(parts) != 3 or parts[1] != POST_COLLECTION:
        return None
    return f"{WEB_URL}/profile/{parts[0]}/post/{parts[2]}"


def record_time(value: dict, rkey: str | None = None) -> str | None:
    """``createdAt`` as ISO UTC. It is client-supplied and sometimes odd (no zone,
    nanoseconds, year 0): what cannot be read falls back to the time in a TID record
    key, else None (the raw record keeps the original)."""
    created = value.get("createdAt")
    if isinstance(created, str) and created.strip():
        try:
            return iso_utc(created)
        except (ValueError, OverflowError):
            pass
    return tid_time(rkey)


def blob_cid_of(blob: Any) -> str | None:
    """The CID of a blob reference, in either shape: {"$type": "blob", "ref": {"$link"}}
    or the legacy {"cid": "…", "mimeType": …}."""
    if not isinstance(blob, dict):
        return None
    ref = blob.get("ref")
    if isinstance(ref, dict) and isinstance(ref.get("$link"), str):
        return ref["$link"]
    if isinstance(ref, str):
        return ref
    if isinstance(blob.get("cid"), str):
        return blob["cid"]
    return None


def blob_media(blob: Any, *, role: str, position: int, blob_url: BlobUrl | None,
               description: str | None = None, extra: dict | None = None) -> MediaRef | None:
    """A MediaRef for a blob, checked against its CID's sha256; None when no URL can be
    built (the import path: a CAR file holds no blob bytes) or the reference is broken."""
    cid = blob_cid_of(blob)
    if cid is None or blob_url is None:
        return None
    meta: dict[str, Any] = {"cid": cid}
    for key in ("mimeType", "size"):
        if blob.get(key) is not None:
            meta[key] = blob[key]
    if extra:
        meta.update({k: v for k, v in extra.items() if v is not None})
    return MediaRef(url=blob_url(cid), role=role, position=position, mime_hint=blob.get("mimeType"),
                    description=description if isinstance(description, str) and description else None,
                    meta=meta, sha256=blob_sha256(cid))


def embed_media(embed: Any, blob_url: BlobUrl | None) -> list[MediaRef]:
    """The owner's blobs in a post's embed: images, video (and its captions), a link
    card's thumbnail; recordWithMedia carries one of those beside its quote."""
    if not isinstance(embed, dict):
        return []
    kind = embed.get("$type")
    refs: list[MediaRef | None] = []
    if kind == "app.bsky.embed.recordWithMedia":
        return embed_media(embed.get("media"), blob_url)
    if kind == "app.bsky.embed.images":
        for position, image in enumerate(embed.get("images") or []):
            if isinstance(image, dict):
                refs.append(blob_media(image.get("image"), role="image", position=position, blob_url=blob_url,
                                       description=image.get("alt"), extra={"aspectRatio": image.get("aspectRatio")}))
    elif kind == "app.bsky.embed.video":
        refs.append(blob_media(embed.get("video"), role="video", position=0, blob_url=blob_url,
                               description=embed.get("alt"), extra={"aspectRatio": embed.get("aspectRatio")}))
        for position, caption in enumerate(embed.get("captions") or []):
            if isinstance(caption, dict):
                refs.append(blob_media(caption.get("file"), role="captions", position=position, blob_url=blob_url,
                                       extra={"lang": caption.get("lang")}))
    elif kind == "app.bsky.embed.external":
        found = embed.get("external")
        external = found if isinstance(found, dict) else {}
        refs.append(blob_media(external.get("thumb"), role="thumb", position=0, blob_url=blob_url))
    return [ref for ref in refs if ref is not None]


def post_from_record(did: str, handle: str, rkey: str, value: dict, *, cid: str | None = None,
                     blob_url: BlobUrl | None = None) -> Post:
    """An app.bsky.feed.post record (from the CAR or listRecords) -> Post.

    The native id is the record's at:// URI: what other people's replies, likes and
    getPostThread name the post by. Facets, embeds and reply references stay in raw."""
    uri = at_uri(did, POST_COLLECTION, rkey)
    text = value.get("text")
    return Post(
        native_id=uri,
        created_at=record_time(value, rkey),
        kind="reply" if isinstance(value.get("reply"), dict) else "text",
        text=text if isinstance(text, str) else None,
        url=f"{WEB_URL}/profile/{handle}/post/{rkey}",
        media=embed_media(value.get("embed"), blob_url),
        visibility=visibility("public"),  # every record of a repository is public
        raw={"uri": uri, "cid": cid, "value": value},
    )


def repost_from_record(did: str, rkey: str, value: dict, *, cid: str | None = None) -> Post:
    """An app.bsky.feed.repost -> a Post of kind "boost" pointing at the reposted post."""
    uri = at_uri(did, REPOST_COLLECTION, rkey)
    found = value.get("subject")
    subject = found if isinstance(found, dict) else {}
    target = subject.get("uri") if isinstance(subject.get("uri"), str) else None
    return Post(native_id=uri, created_at=record_time(value, rkey), kind="boost", text=target,
                url=post_web_url(target), visibility=visibility("public"), raw={"uri": uri, "cid": cid, "value": value})


def like_from_record(did: str, rkey: str, value: dict, *, cid: str | None = None) -> Interaction | None:
    found = value.get("subject")
    subject = found if isinstance(found, dict) else {}
    target = subject.get("uri")
    if not isinstance(target, str) or not target:
        return None
    uri = at_uri(did, LIKE_COLLECTION, rkey)
    return Interaction(kind="like", target=target, target_url=post_web_url(target), native_id=uri,
                       created_at=record_time(value, rkey), raw={"uri": uri, "cid": cid, "value": value})


def follow_from_record(rkey: str, value: dict) -> Membership | None:
    """An app.bsky.graph.follow -> the followed person (keyed by DID) and since when."""
    subject = value.get("subject")
    if not isinstance(subject, str) or not subject.startswith("did:"):
        return None
    person = Person(native_id=subject, url=profile_url(subject), raw={"did": subject})
    return Membership(person=person, since=record_time(value, rkey))


def profile_from_record(did: str, handle: str | None, value: dict | None, *,
                        blob_url: BlobUrl | None = None) -> Profile:
    """app.bsky.actor.profile/self -> Profile. Counts are not in the repository (None).
    The avatar and the banner are blobs: downloaded with getBlob, checked against their CID."""
    value = value or {}
    known_handle = handle if handle and not handle.startswith("did:") else None
    display_name, description = value.get("displayName"), value.get("description")
    return Profile(
        native_id=did,
        username=known_handle,
        display_name=display_name if isinstance(display_name, str) else None,
        bio=description if isinstance(description, str) else None,
        url=profile_url(known_handle or did),
        avatar=blob_media(value.get("avatar"), role="avatar", position=0, blob_url=blob_url),
        banner=blob_media(value.get("banner"), role="banner", position=0, blob_url=blob_url),
        raw={"did": did, "handle": known_handle, "value": value},
    )


def records_from_repo(repo: Repo, *, did: str, handle: str | None, pds_url: str | None = None,
                      blob_url: BlobUrl | None = None) -> RepoRecords:
    """Map a decoded repository to archiver records.

    Blob URLs: ``blob_url(cid)`` when given; else, with ``pds_url``, the PDS's
    ``com.atproto.sync.getBlob``; else (``archiver import`` of a CAR file, which holds
    no blob bytes) posts carry no MediaRefs — the blob CIDs stay in each post's raw
    record, and the next API run attaches the files to the same rows.
    """
    if blob_url is None and pds_url:
        from urllib.parse import urlencode

        base = pds_url.rstrip("/")
        blob_url = lambda cid: f"{base}/xrpc/com.atproto.sync.getBlob?{urlencode({'did': did, 'cid': cid})}"  # noqa: E731
    name = handle or did
    out = RepoRecords()
    following: dict[str, Membership] = {}
    for record in repo.records:
        item = record.uri(did)
        try:
            if record.collection == POST_COLLECTION:
                out.posts.append(post_from_record(did, name, record.rkey, record.value, cid=record.cid,
                                                  blob_url=blob_url))
            elif record.collection == REPOST_COLLECTION:
                out.reposts.append(repost_from_record(did, record.rkey, record.value, cid=record.cid))
            elif record.collection == LIKE_COLLECTION:
                like = like_from_record(did, record.rkey, record.value, cid=record.cid)
                if like is None:
                    out.problems.append((item, "a like without a subject URI; skipped"))
                else:
                    out.likes.append(like)
            elif record.collection == FOLLOW_COLLECTION:
                member = follow_from_record(record.rkey, record.value)
                if member is None:
                    out.problems.append((item, "a follow without a subject DID; skipped"))
                    continue
                # The same person followed twice (two records): the earlier date counts.
                known = following.get(member.person.native_id)
                if known is None or (member.since and (known.since is None or member.since < known.since)):
                    following[member.person.native_id] = member
            elif record.collection == PROFILE_COLLECTION and record.rkey == "self":
                out.profile = profile_from_record(did, handle, record.value, blob_url=blob_url)
            else:
                out.other.append(record)
        except Exception as error:  # one odd record never stops the others
            out.problems.append((item, f"cannot be mapped ({type(error).__name__}: {error}); skipped"))
    out.following = list(following.values())
    return out


def following_of(repo: Repo, report: Callable[[str, str], None], *, did: str) -> Iterator[Membership]:
    """The people the repository follows, a person once with the earliest date of their
    follow records (as ``records_from_repo``), streamed through the repository's store so
    memory stays at one record however long the list."""
    db = repo.store.db
    db.execute("CREATE TEMP TABLE IF NOT EXISTS following (did TEXT PRIMARY KEY, since TEXT, seq INTEGER)")
    db.execute("DELETE FROM temp.following")
    for seq, record in enumerate(repo.collection(FOLLOW_COLLECTION)):
        try:
            member = follow_from_record(record.rkey, record.value)
        except Exception as error:  # one odd record never stops the others
            report(record.uri(did), f"cannot be mapped ({type(error).__name__}: {error}); skipped")
            continue
        if member is None:
            report(record.uri(did), "a follow without a subject DID; skipped")
            continue
        db.execute("INSERT INTO temp.following VALUES (?,?,?) ON CONFLICT(did) DO UPDATE SET since=excluded.since "
                   "WHERE excluded.since IS NOT NULL AND (since IS NULL OR excluded.since < since)",
                   [member.person.native_id, member.since, seq])
    last = -1
    while True:  # a batch at a time: the cursor is not held across the caller's writes
        batch = db.execute("SELECT did, since, seq FROM temp.following WHERE seq > ? ORDER BY seq LIMIT 500",
                           [last]).fetchall()
        if not batch:
            return
        for subject, since, _seq in batch:
            yield Membership(Person(native_id=subject, url=profile_url(subject), raw={"did": subject}), since=since)
        last = batch[-1][2]


__all__ = [
    "RepoError", "Repo", "RepoRecord", "RepoRecords", "read_repo", "records_from_repo", "following_of",
    "post_from_record", "repost_from_record", "like_from_record", "follow_from_record",
    "profile_from_record", "embed_media", "blob_media", "blob_sha256", "cid_to_str", "cid_to_bytes",
    "to_json_form", "from_json_form", "tid_time", "make_tid", "at_uri", "post_web_url", "profile_url",
]
