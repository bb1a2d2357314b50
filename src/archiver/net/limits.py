"""The [downloads] table's bounds, on their own: the config reads them and the media store
applies them, and neither needs the other for that."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DownloadLimits:
    """[downloads]: bounds on one media file, whoever serves it (an export may name any
    server; a server may send without end, or one byte a second)."""

    max_file_gb: float = 20                 # a file larger than this is not kept (a long 4K video is ~10 GB)
    max_file_hours: float = 6               # one file may take this long at most, resumes included
    min_kb_per_second: float = 1            # slower than this over a minute, a download is cut off

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_gb * 1_000_000_000)

    @property
    def max_file_seconds(self) -> float:
        return self.max_file_hours * 3600

    @property
    def min_bytes_per_second(self) -> float:
        return self.min_kb_per_second * 1000
