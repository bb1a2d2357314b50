"""What the archive's web pages (`archiver serve`, `archiver report`) may show of archived data.

Profile links, post links, links in bios and commenters' URLs were written by other people.
A link is made only from an http(s) URL: `javascript:` (in any case, after spaces or control
characters, with tabs inside, as browsers read it), `data:`, `vbscript:` or anything else
would run or open in the archive's own page when clicked.
"""

from __future__ import annotations

import re
from pathlib import Path

# Browsers drop leading spaces and C0 control characters from a link, and tabs and newlines
# anywhere in it, before reading its scheme; a URL holding any of them is not linked at all.
_WHITESPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f\s]")
_HTTP_URL = re.compile(r"https?://[^/?#\\]+", re.IGNORECASE)


def web_link(value: object) -> str | None:
    """`value` if it is an http(s) URL with a host, fit to be a link's href; else None."""
    if not isinstance(value, str) or _WHITESPACE_OR_CONTROL.search(value):
        return None
    if not _HTTP_URL.match(value):
        return None
    return value


def folder_label(folder: Path) -> str:
    """The archive folder as a page may show it: "~/…" under the home folder, else its name.

    A page can be shared or screenshotted; the absolute path names the person's user
    account and disk layout, and the page needs neither.
    """
    folder = Path(folder)
    try:
        inside_home = folder.resolve().relative_to(Path.home().resolve()).as_posix()
    except (ValueError, RuntimeError, OSError):  # not under home, or no home at all
        return folder.name
    return "~" if inside_home == "." else "~/" + inside_home
