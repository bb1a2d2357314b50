"""archiver as a library: keep a copy of social-media accounts in an archive folder.

The names below are the public API (``__all__``); everything else is internal and may
change. The command line (``archiver …``) is a layer over the same functions::

    import archiver

    result = archiver.import_file("my-archive", "TikTok_Data.zip")   # an official export
    result = archiver.export_account("my-archive", "main")           # [accounts.main] in its config.toml
    archive = archiver.Archive("my-archive")                          # archive.db: a sqlite_utils Database
    print(archive.db.execute("SELECT count(*) FROM posts").fetchone())

A connector (a platform) subclasses Connector and yields Pages of the records below; see
docs/architecture.md. The attributes load on first use, so ``import archiver`` (and the
``archiver`` command's start) stays fast.
"""

from __future__ import annotations

import importlib

# typing.TYPE_CHECKING without importing typing (a third of `import archiver`'s time);
# type checkers take any name TYPE_CHECKING as true.
TYPE_CHECKING = False

__all__ = [
    # the archive: archive.db (SQLite) and its media folder
    "Archive", "MediaStore",
    # running: export an account through its API, import an official export file
    "export_account", "import_file", "AccountBusy", "ExportFileError",
    # configuration (config.toml)
    "load_config", "Config", "AccountConfig", "ConfigError",
    # secrets (tokens, client secrets): never in the archive or the config
    "SecretStore", "open_secret_store", "SecretStoreError",
    # the connector contract: what a platform implements, and what it is given
    "Connector", "Option", "installed_connectors", "get_connector", "UnknownPlatform", "SyncContext", "ExportSource",
    # the records a connector yields, in Pages
    "Page", "Profile", "Post", "PostVersion", "Comment", "CommentsListed", "Person", "Interaction",
    "Membership", "Snapshot", "ListPage", "MediaRef", "Unmapped",
    # what a connector builds its pages with: timestamps, pages of a stream, resumable listings
    "iso_utc", "pages_of", "PageBuffer", "Listing", "Batch",
    # the HTTP client connectors use (retries, pacing, scrubbed logs) and its errors
    "ApiClient", "NetError", "AuthExpired", "OAuthError",
    # a connector's simulator (its fake platform), for `archiver simulate` and `archiver demo`
    "Simulator", "DemoWorld",
]

# Where each name is defined. They are imported from there, never through this package
# (`from archiver import X` inside src/ would be an import cycle).
_DEFINED_IN = {
    "archiver.archive": ("Archive",),
    "archiver.archive.media": ("MediaStore",),
    "archiver.sync.jobs": ("export_account", "import_file"),
    "archiver.sync.locks": ("AccountBusy",),
    "archiver.sync.imports": ("ExportFileError", "ExportSource"),
    "archiver.config": ("load_config", "Config", "AccountConfig", "ConfigError"),
    "archiver.secrets": ("SecretStore", "open_secret_store", "SecretStoreError"),
    "archiver.connector": ("Connector", "Option", "installed_connectors", "get_connector", "UnknownPlatform"),
    "archiver.sync.runner": ("SyncContext",),
    "archiver.records": ("Page", "Profile", "Post", "PostVersion", "Comment", "CommentsListed", "Person",
                         "Interaction", "Membership", "Snapshot", "ListPage", "MediaRef", "Unmapped",
                         "iso_utc", "pages_of", "PageBuffer"),
    "archiver.sync.listing": ("Listing", "Batch"),
    "archiver.net.client": ("ApiClient", "NetError", "AuthExpired"),
    "archiver.net.oauth": ("OAuthError",),
    "archiver.sim": ("Simulator", "DemoWorld"),
}
_MODULE_OF = {name: module for module, names in _DEFINED_IN.items() for name in names}

if TYPE_CHECKING:   # what type checkers and editors see; at run time __getattr__ loads them
    from archiver.archive import Archive
    from archiver.archive.media import MediaStore
    from archiver.config import AccountConfig, Config, ConfigError, load_config
    from archiver.connector import Connector, Option, UnknownPlatform, get_connector, installed_connectors
    from archiver.net.client import ApiClient, AuthExpired, NetError
    from archiver.net.oauth import OAuthError
    from archiver.records import (
        Comment,
        CommentsListed,
        Interaction,
        ListPage,
        MediaRef,
        Membership,
        Page,
        PageBuffer,
        Person,
        Post,
        PostVersion,
        Profile,
        Snapshot,
        Unmapped,
        iso_utc,
        pages_of,
    )
    from archiver.secrets import SecretStore, SecretStoreError, open_secret_store
    from archiver.sim import DemoWorld, Simulator
    from archiver.sync.imports import ExportFileError, ExportSource
    from archiver.sync.jobs import export_account, import_file
    from archiver.sync.listing import Batch, Listing
    from archiver.sync.locks import AccountBusy
    from archiver.sync.runner import SyncContext


def __getattr__(name: str) -> object:
    """A public name, imported from its module on first use (PEP 562)."""
    try:
        module = _MODULE_OF[name]
    except KeyError:
        raise AttributeError(f"module 'archiver' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value   # the next lookup finds it without coming here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
