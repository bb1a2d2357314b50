"""The fleet's PostgreSQL: where its URL comes from and how a connection is opened.

The URL comes from, first to last: the command's ``--database`` option, the environment
variable ARCHIVER_FLEET_DATABASE, the config's ``[fleet] database``. The config holds no
password (it is no place for secrets): give it through libpq's own means — PGPASSWORD, a
~/.pgpass file, or the environment variable's URL.

psycopg is imported inside the functions: `archiver --help` and single-user commands never
load it (it comes with the ``fleet`` extra).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from archiver.config import secret_url_parameter

if TYPE_CHECKING:
    import psycopg

ENV_DATABASE = "ARCHIVER_FLEET_DATABASE"
CONNECT_TIMEOUT_SECONDS = 10
APPLICATION_NAME = "archiver-fleet"


class FleetError(Exception):
    """A fleet command cannot go on; the message says why and what to do."""


class DatabaseUnavailable(FleetError):
    """The fleet database did not answer (down, restarting, failing over): try again later."""


def database_gone(error: BaseException) -> bool:
    """Whether ``error`` says the database went away (not that a query was wrong)."""
    if isinstance(error, DatabaseUnavailable):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(error, psycopg.OperationalError)


def database_url(option: str | None = None, config=None) -> str:
    """The fleet database's URL (see the module's note for the order)."""
    url = option or os.environ.get(ENV_DATABASE) or (config.fleet.database if config is not None and
                                                     getattr(config, "fleet", None) else None)
    if not url:
        raise FleetError(f"no fleet database: set [fleet] database = \"postgresql://user@host/db\" in the config, "
                         f"or {ENV_DATABASE}, or pass --database.")
    if urlsplit(url).scheme not in ("postgresql", "postgres"):
        # Not shown: libpq's other form ("host=… password=…") may hold a password.
        raise FleetError("the fleet database (--database, $ARCHIVER_FLEET_DATABASE or [fleet] database) is not a "
                         "postgresql:// URL; write it as postgresql://user@host/db (the password in PGPASSWORD or "
                         "~/.pgpass)")
    return url


def shown_url(url: str) -> str:
    """The URL for messages and logs: without its password (``user:***@``, ``password=***``)."""
    parts = urlsplit(url)
    if parts.password is not None:
        netloc = parts.netloc.rsplit("@", 1)
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{netloc[-1]}")
    if parts.query:
        parts = parts._replace(query="&".join(pair.partition("=")[0] + "=***" if secret_url_parameter(pair) else pair
                                              for pair in parts.query.split("&")))
    return urlunsplit(parts)


def connect(url: str, *, autocommit: bool = True) -> "psycopg.Connection":
    """A psycopg connection, bounded: a database that does not answer fails in
    CONNECT_TIMEOUT_SECONDS with its URL (password hidden) in the message.

    Autocommit by default: each statement stands alone, and ``with connection.transaction():``
    makes a real transaction (without autocommit it would only be a savepoint inside the
    transaction psycopg opened implicitly, committed by no one)."""
    try:
        import psycopg
    except ImportError:
        raise FleetError("the fleet needs its extra: pip install 'archiver[fleet]'") from None
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                               application_name=APPLICATION_NAME)
    except psycopg.OperationalError as error:
        raise DatabaseUnavailable(f"cannot connect to the fleet database {shown_url(url)}: {str(error).strip()}") from None
