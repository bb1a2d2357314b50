"""Text values on their way into the archive: no NUL character ever reaches the database.

SQLite stores a NUL inside TEXT, but much of what reads an archive cuts a string at it
(the sqlite3 shell, C extensions, Datasette's filters, other programs given a CSV), so a
caption "abc\\0<hidden>" would show as "abc" in one place and in full in another. Every
record passes through ``without_nul`` in the writer, whatever its origin (an API page or an
export file); NUL becomes U+FFFD, the Unicode replacement character, so the place where
something was removed stays visible.

The other control characters are kept: they are valid text, SQLite and JSON carry them
unchanged, and the archive is a faithful copy of what the platform held. Exports for other
programs make them inert where those programs need it (archiver.inert).
"""

from __future__ import annotations

import dataclasses
from typing import Any

NUL = "\x00"
REPLACEMENT = "\ufffd"


def without_nul(value: Any) -> Any:
    """``value`` with every NUL in its text replaced: strings, dict keys and values, list and
    tuple items and the fields of a record (a dataclass), at any depth. Anything else
    (numbers, None, bytes, an opener, a stream of members) is returned as it is. An
    unchanged value is returned itself, not a copy (callers may key things by ``id()``)."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT) if NUL in value else value
    # Plain loops, not comprehensions: a comprehension is a frame of its own, and a value
    # nested to the JSON depth limit (512) must stay below Python's recursion limit.
    if isinstance(value, dict):
        cleaned = {}
        changed = False
        for key, item in value.items():
            new_key, new_item = without_nul(key), without_nul(item)
            changed = changed or new_key is not key or new_item is not item
            cleaned[new_key] = new_item
        return cleaned if changed or len(cleaned) < len(value) else value
    if isinstance(value, (list, tuple)):
        items = []
        unchanged = True
        for item in value:
            new = without_nul(item)
            unchanged = unchanged and new is item
            items.append(new)
        if unchanged:
            return value
        if isinstance(value, list):
            return items
        return value._make(items) if hasattr(value, "_make") else tuple(items)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            old = getattr(value, field.name)
            new = without_nul(old)
            if new is not old:
                changes[field.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value
