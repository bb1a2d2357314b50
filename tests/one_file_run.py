"""A real run in its own process, for tests of runs side by side (test_run_locks.py):

    python tests/one_file_run.py ARCHIVE ACCOUNT [URL]

runs Runner.run for the Mastodon account ACCOUNT in ARCHIVE with one page: one post whose
file is downloaded from URL over loopback (none without URL). Prints the run's status as
JSON on its last line. Only the platform is stood in for (the post and its link); the
runner, media store, locks and archive are the real ones.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    from archiver.archive import Archive
    from archiver.config import AccountConfig
    from archiver.records import MediaRef, Page, Post
    from archiver.secrets import open_secret_store
    from archiver.sync.runner import Runner
    from archiver_connectors.mastodon import MastodonConnector

    archive_dir, account_name = sys.argv[1], sys.argv[2]
    url = sys.argv[3] if len(sys.argv) > 3 else None

    class OnePostConnector(MastodonConnector):
        def pages(self, ctx):
            media = [MediaRef(url, "video", mime_hint="video/mp4")] if url else []
            yield Page("posts", [Post(f"{account_name}-1", "2026-01-01T00:00:00Z", media=media)],
                       state={"done": True})

    account = AccountConfig(name=account_name, platform="mastodon", base_url="http://127.0.0.1:9")
    connector = OnePostConnector(account, open_secret_store("memory"))
    archive = Archive(Path(archive_dir))
    try:
        result = Runner(archive, connector).run(connector.pages, kind="export", mode="incremental")
    finally:
        connector.close()
        archive.close()
    print(json.dumps({"status": result["status"], "counts": result["counts"], "errors": result["errors"]}),
          flush=True)


if __name__ == "__main__":
    main()
