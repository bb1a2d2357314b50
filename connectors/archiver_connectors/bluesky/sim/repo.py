"""Builds real AT Protocol repository CAR files, for the Bluesky fake and the tests.

Not a mock of the format: the bytes are what a PDS serves from ``com.atproto.sync.getRepo``
(atproto.com/specs/repository), so the reader is tested against the real structure.

- records are DAG-CBOR (``libipld.encode_dag_cbor``), each block named by a CIDv1
  dag-cbor sha2-256 computed here: 0x01 0x71 0x12 0x20 + sha256(bytes);
- the Merkle Search Tree is the deterministic one of the spec: a key's layer is the
  number of leading zero 2-bit groups of sha256(key); a node holds the keys of its
  layer, ``l`` and each entry's ``t`` point to the subtrees between them (one layer
  down, an entry-less node when that layer has no key there), keys are
  prefix-compressed within a node (``p`` shared bytes with the previous key, ``k`` the
  rest). It reproduces the reference implementation's published root CIDs (tests);
- the commit is {did, version: 3, data, rev, prev: null, sig}; the signature is 64
  stand-in bytes (nothing here verifies signatures);
- CAR v1: varint-framed header {version: 1, roots: [commit]}, then varint-framed
  CID + block sections.

Records are given by key "<collection>/<rkey>" in the atproto JSON form (what
``listRecords`` returns: blob refs as {"$link": …}) or with raw CID bytes.

Fault knobs: ``break_block`` corrupts one block (its bytes no longer match its CID),
``drop_block`` leaves one out; each takes a block index (0 is the commit) or a CID.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import libipld

from archiver_connectors.bluesky.repo import (
    CODEC_DAG_CBOR,
    CODEC_RAW,
    HASH_SHA2_256,
    _varint,
    cid_to_bytes,
    cid_to_str,
    from_json_form,
)


def cid_for_block(data: bytes, codec: int = CODEC_DAG_CBOR) -> bytes:
    """Raw CIDv1 bytes of a block: version 1, codec, sha2-256 multihash of 32 bytes."""
    return bytes([0x01, codec, HASH_SHA2_256, 0x20]) + hashlib.sha256(data).digest()


def blob_cid(data: bytes) -> tuple[str, bytes]:
    """A blob's CID (raw codec 0x55, sha2-256), as ("bafkrei…", raw CID bytes). The bytes
    are the DAG-CBOR link form; the string is what getBlob's ``cid`` and listBlobs use."""
    link = cid_for_block(data, CODEC_RAW)
    return cid_to_str(link), link


def blob_ref(data: bytes, mime_type: str) -> dict[str, Any]:
    """The blob reference a record holds for these bytes (JSON form)."""
    cid, _ = blob_cid(data)
    return {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime_type, "size": len(data)}


def key_depth(key: str | bytes) -> int:
    """The MST layer of a key: leading zero bits of sha256(key), in 2-bit groups."""
    digest = hashlib.sha256(key.encode() if isinstance(key, str) else key).digest()
    zeros = 0
    for byte in digest:
        if byte == 0:
            zeros += 8
            continue
        zeros += 8 - byte.bit_length()
        break
    return zeros // 2


@dataclass
class BuiltRepo:
    car: bytes
    commit_cid: str
    data_cid: str
    record_cids: dict[str, str] = field(default_factory=dict)  # "collection/rkey" -> CID
    block_cids: list[str] = field(default_factory=list)        # in CAR order; 0 is the commit
    node_cids: list[str] = field(default_factory=list)         # MST nodes, root first


class _Blocks:
    """Blocks in the order they go into the CAR, each once."""

    def __init__(self) -> None:
        self.order: list[bytes] = []
        self.data: dict[bytes, bytes] = {}

    def add(self, value: Any) -> bytes:
        data = libipld.encode_dag_cbor(value)
        cid = cid_for_block(data)
        if cid not in self.data:
            self.data[cid] = data
            self.order.append(cid)
        return cid


def build_mst(entries: dict[str, bytes], blocks: _Blocks | None = None) -> tuple[bytes, list[bytes], _Blocks]:
    """The MST of ``entries`` (key -> record CID bytes): (root CID, node CIDs, blocks)."""
    blocks = blocks or _Blocks()
    nodes: list[bytes] = []
    items = sorted((key.encode("utf-8"), value, key_depth(key)) for key, value in entries.items())
    if not items:
        root = blocks.add({"l": None, "e": []})
        return root, [root], blocks
    root = _build_node(items, max(depth for _, _, depth in items), blocks, nodes)
    return root, nodes, blocks


def _build_node(items: list[tuple[bytes, bytes, int]], layer: int, blocks: _Blocks, nodes: list[bytes]) -> bytes:
    """One node at ``layer`` over ``items`` (all at this layer or below), children first
    so their CIDs are known; ``nodes`` gets the node CIDs root first."""
    slot = len(nodes)
    nodes.append(b"")  # reserved: this node is listed before its children
    left: bytes | None = None
    entries: list[dict[str, Any]] = []
    segment: list[tuple[bytes, bytes, int]] = []
    previous_key = b""

    def subtree(below: list) -> bytes | None:
        return _build_node(below, layer - 1, blocks, nodes) if below else None

    for key, value, depth in items:
        if depth < layer:
            segment.append((key, value, depth))
            continue
        if entries:
            entries[-1]["t"] = subtree(segment)
        else:
            left = subtree(segment)
        segment = []
        prefix = _shared_prefix(previous_key, key)
        entries.append({"p": prefix, "k": key[prefix:], "v": value, "t": None})
        previous_key = key
    if entries:
        entries[-1]["t"] = subtree(segment)
    else:
        left = subtree(segment)
    cid = blocks.add({"l": left, "e": entries})
    nodes[slot] = cid
    return cid


def _shared_prefix(a: bytes, b: bytes) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):   # keys of any lengths
        if x != y:
            break
        count += 1
    return count


def build_repo(did: str, records: dict[str, dict], *, rev: str, break_block: int | str | bytes | None = None,
               drop_block: int | str | bytes | None = None) -> BuiltRepo:
    """A whole repository as CAR bytes, with the CIDs of its parts (see the module doc)."""
    record_blocks = _Blocks()
    record_cids: dict[str, bytes] = {}
    for key, value in records.items():
        collection, slash, rkey = key.partition("/")
        if not slash or not collection or not rkey:
            raise ValueError(f"record key {key!r} is not <collection>/<rkey>")
        record_cids[key] = record_blocks.add(from_json_form(value))
    tree = _Blocks()
    root, nodes, tree = build_mst(record_cids, tree)
    unsigned = {"did": did, "version": 3, "data": root, "rev": rev, "prev": None}
    # 64 bytes like a real k256/p256 signature; a stand-in, never verified here.
    signature = hashlib.sha512(libipld.encode_dag_cbor(unsigned)).digest()
    commit_data = libipld.encode_dag_cbor({**unsigned, "sig": signature})
    commit = cid_for_block(commit_data)

    # The PDS's order: commit, then the tree, then the records in key order.
    order = [commit, *nodes, *(record_cids[key] for key in sorted(record_cids))]
    data = {commit: commit_data, **tree.data, **record_blocks.data}
    order = list(dict.fromkeys(order))   # each block once, where it first appears
    broken, dropped = _select(break_block, order), _select(drop_block, order)

    header = libipld.encode_dag_cbor({"version": 1, "roots": [commit]})
    out = bytearray(_varint(len(header)) + header)
    for cid in order:
        if cid == dropped:
            continue
        block = data[cid]
        if cid == broken:
            damaged = bytearray(block)
            damaged[len(damaged) // 2] ^= 0xFF  # same length: the framing stays intact
            block = bytes(damaged)
        out += _varint(len(cid) + len(block)) + cid + block
    return BuiltRepo(
        car=bytes(out), commit_cid=cid_to_str(commit), data_cid=cid_to_str(root),
        record_cids={key: cid_to_str(cid) for key, cid in record_cids.items()},
        block_cids=[cid_to_str(cid) for cid in order], node_cids=[cid_to_str(cid) for cid in nodes])


def build_repo_car(did: str, records: dict[str, dict], *, rev: str, break_block: int | str | bytes | None = None,
                   drop_block: int | str | bytes | None = None) -> bytes:
    """The CAR bytes of ``build_repo``: what ``com.atproto.sync.getRepo`` serves."""
    return build_repo(did, records, rev=rev, break_block=break_block, drop_block=drop_block).car


def _select(which: int | str | bytes | None, order: list[bytes]) -> bytes | None:
    if which is None:
        return None
    if isinstance(which, int):
        return order[which]
    cid = cid_to_bytes(which)
    if cid not in order:
        raise ValueError(f"no block {which!r} in this repository")
    return cid


__all__ = ["BuiltRepo", "blob_cid", "blob_ref", "build_mst", "build_repo", "build_repo_car", "cid_for_block",
           "key_depth"]
