"""The `.js` data files of X's archive, read as JSON streams (../shared/platforms/x-twitter.md §1).

Each data file is a line of JavaScript, ``window.YTD.<snake_name>.part<N> = `` followed by a
JSON array (``manifest.js``: ``window.__THAR_CONFIG = `` and an object). Nothing is evaluated:
the wrapper is checked and skipped, and what follows the ``=`` goes to ijson through the
core's checked reader (``ExportSource.open_json``: nesting depth, NUL bytes and UTF-8 checked
on every byte), so a tweets file of several hundred MB streams one item at a time.

Every problem is an ``ExportFileError`` naming the archive, the entry and what to do.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from archiver.sync.imports import ExportFileError, plain_values

# The wrapper is "window.YTD.<name>.part<N> " (about 60 bytes); anything much longer before
# the "=" is not X's wrapper (and an endless first line must not be read into memory).
MAX_WRAPPER_BYTES = 512
# One element of a data file: a tweet is a few KB, a long post's tens of KB.
MAX_ITEM_BYTES = 4 * 2**20
_WRAPPER = re.compile(rb"^\s*window\s*\.\s*(?:YTD\s*\.\s*[A-Za-z0-9_]+\s*\.\s*part\d+|__THAR_CONFIG)\s*$")
_FIX = "download the archive again from X (Settings > Your account > Download an archive of your data)"


def _error(source, name: str, problem: str, fix: str = _FIX) -> ExportFileError:
    error = ExportFileError(f"{source.path}, entry {name!r}: {problem}; {fix}.", path=source.path, entry=name)
    source.read_problems.append(error)
    return error


class _AfterWrapper:
    """``read`` of one entry from just after its wrapper's ``=``: what ijson is given. It
    also bounds one item: ijson holds an item (and a string) whole until it ends, so more
    than ``MAX_ITEM_BYTES`` read since the last item handed out fails the file there."""

    def __init__(self, source, name: str, reader, head: bytes):
        self._source, self._name = source, name
        self._reader = reader
        self._head = head
        self._since_item = 0

    def item_done(self) -> None:
        self._since_item = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 64 * 1024
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
        else:
            data = self._reader.read(size)
        self._since_item += len(data)
        if self._since_item > MAX_ITEM_BYTES + 2 * size:   # what ijson read ahead counts too
            raise _error(self._source, self._name,
                         f"one of its items is longer than {MAX_ITEM_BYTES // 2**20} MiB (near byte "
                         f"{self._reader.bytes_read}); no item of X's archive is: the file is damaged or made to "
                         "exhaust memory, and was not read further")
        return data


def _open_value(source, name: str, opening: bytes):
    """The checked reader of one entry and a stream of its JSON value, the wrapper skipped.
    ``opening``: what the value must start with (``b"["`` or ``b"{"``). A file that already
    starts with the value (its wrapper removed by hand) is read as it is."""
    reader = source.open_json(name)
    try:
        head = b""
        while len(head) < MAX_WRAPPER_BYTES and b"=" not in head:
            chunk = reader.read(MAX_WRAPPER_BYTES - len(head))
            if not chunk:
                break
            head += chunk
        stripped = head.lstrip()
        if stripped[:1] in (b"[", b"{"):
            value = head
        else:
            equals = head.find(b"=")
            if equals < 0 or not _WRAPPER.match(head[:equals]):
                # Only the wrapper's words are quoted, never the data (account.js holds the email).
                seen = re.match(rb"[\w. ]{0,40}", head.lstrip()).group(0).decode("ascii", "replace")  # type: ignore[union-attr]
                raise _error(source, name, "it does not start with X's wrapper `window.YTD.<name>.partN = ` "
                             f"(it starts {seen!r}); it is not a data file of an X archive, or it is damaged")
            value = head[equals + 1:]
        # The value's first byte must be there (more of the file is read if it is not yet).
        while not value.strip():
            more = reader.read(4096)
            if not more:
                raise _error(source, name, "nothing follows the wrapper's `=`: the file is empty or cut short")
            value += more
        first = value.lstrip()[:1]
        if first != opening:
            raise _error(source, name, f"it holds {first.decode('utf-8', 'replace')!r} where X writes "
                         f"{opening.decode()!r} (a JSON {'list' if opening == b'[' else 'object'}): the file is damaged")
        return reader, _AfterWrapper(source, name, reader, value)
    except BaseException:
        reader.close()
        raise


def _malformed(source, name: str, reader, exc: Exception) -> ExportFileError:
    detail = exc.args[0] if exc.args else exc
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    detail = str(detail).strip().splitlines()[0] if str(detail).strip() else type(exc).__name__
    return _error(source, name, f"malformed JSON within its first {reader.bytes_read} bytes ({detail}); "
                  "the file may be truncated")


def iter_items(source, name: str) -> Iterator[Any]:
    """The elements of one ``window.YTD.<name>.partN = [...]`` file, one at a time, as
    plain values (``plain_values``: no Decimals, no lone surrogates). Raises
    ExportFileError for a damaged file, after the items before the damage."""
    import ijson  # here: `archiver --help` must not import it

    reader, stream = _open_value(source, name, b"[")
    with reader:
        try:
            for item in ijson.items(stream, "item"):
                stream.item_done()
                yield plain_values(item)
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise _malformed(source, name, reader, exc) from exc


def load_value(source, name: str, opening: bytes = b"{") -> Any:
    """The whole value of one small wrapped file (``manifest.js``'s object)."""
    import ijson

    reader, stream = _open_value(source, name, opening)
    with reader:
        try:
            for value in ijson.items(stream, ""):
                return plain_values(value)
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise _malformed(source, name, reader, exc) from exc
    raise _error(source, name, "it holds no JSON value after its wrapper")


def looks_wrapped(source, name: str) -> bool:
    """Whether an entry starts as X's data files do (a look: not counted as read)."""
    try:
        head = source.peek(name, 64)
    except ExportFileError:
        return False
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"window.")
