"""config.toml -> typed settings. Every error names the file, line, key, the value found
and what is expected, so the user can fix it without reading code."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archiver.net.limits import DownloadLimits

CONFIG_NAME = "config.toml"
SECRET_BACKENDS = ("keyring", "env", "systemd", "memory")
# Keys an account table understands besides its connector's own (Connector.config_options).
ACCOUNT_KEYS: dict[str, type | tuple[type, ...]] = {
    "platform": str,
    "base_url": str,
    "schedule": str,
    "portability": bool,
    "scopes": str,
    "enabled": bool,
    "full_every_days": int,
    "max_deleted_percent": (int, float),
    "repairs_per_run": int,
}
_SECRET_LOOKING = re.compile(r"(secret|token|password|client_key)", re.I)
# How a type error says what is expected, in TOML's words rather than Python's.
_EXPECTED_TYPE = {
    str: 'a string in double quotes, e.g. "text"',
    bool: "true or false (without quotes)",
    int: "a whole number, e.g. 7",
    (int, float): "a number, e.g. 20",
}
_TYPE_WORDS = {int: "a whole number", float: "a number", list: 'a list such as ["a", "b"]',
               dict: 'a table such as { name = "value" }'}


class ConfigError(Exception):
    pass


@dataclass
class AccountConfig:
    name: str
    platform: str
    base_url: str | None = None
    schedule: str | None = None
    portability: bool = False
    scopes: str | None = None
    enabled: bool = True
    # The daemon runs a full listing (the only kind that finds deletions) this often.
    full_every_days: int = 7
    # A full listing that no longer lists more than this share of the account's posts
    # marks none of them deleted and opens an alert instead (a platform glitch, not a purge).
    max_deleted_percent: float = 20
    # How many files that failed earlier each API run tries again before reading anything
    # new (the longest untried first): a run must not spend its night on an old backlog.
    repairs_per_run: int = 50
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def account_id(self) -> str:
        return f"{self.platform}:{self.name}"


@dataclass
class InboxConfig:
    """A folder the daemon watches for official export files dropped by hand."""

    path: Path
    interval: int = 60          # seconds between looks
    settle: int = 10            # a file's size must stay unchanged this long before import


@dataclass
class AlertsConfig:
    failed_runs: int = 3            # consecutive failed runs of an account before an alert
    unreachable_hours: float = 24   # a platform unreachable this long raises an alert
    export_max_age_days: int = 30   # remind when the newest manual export is older
    auth_expiry_days: int = 14      # warn this long before an authorization archiver cannot renew runs out


@dataclass
class NotifyConfig:
    """Where alerts go. Each is optional; the e-mail password comes from the SecretStore
    (platform "notify", account "email", key "password")."""

    command: list[str] | None = None       # argv; the alert JSON arrives on stdin
    webhook_url: str | None = None         # POST of the alert JSON
    email: dict[str, Any] | None = None    # host, port, starttls, username, from, to


@dataclass
class DaemonConfig:
    max_parallel: int = 2                   # accounts of different platforms at once
    log_file: str = "daemon.log"            # in the archive folder, rotated
    stop_timeout: int = 60                  # seconds to wait for a run to stop on SIGTERM


@dataclass
class FleetConfig:
    """[fleet]: the PostgreSQL of many workers (archiver.fleet); no password here (libpq's
    PGPASSWORD, ~/.pgpass or ARCHIVER_FLEET_DATABASE carry it)."""

    database: str | None = None             # postgresql://user@host:port/db


@dataclass
class OwnerConfig:
    """The person the archive is of, for `archiver site`'s about page: their name, a short
    bio, their own channels (newsletter, shop, blog) and their profiles elsewhere, as
    (platform or label, URL) pairs in the order written (the label is None for a bare URL)."""

    name: str | None = None
    bio: str | None = None
    newsletter: str | None = None
    shop: str | None = None
    blog: str | None = None
    profiles: list[tuple[str | None, str]] = field(default_factory=list)


@dataclass
class Config:
    path: Path | None
    archive_path: Path | None = None
    secrets_backend: str = "keyring"
    accounts: list[AccountConfig] = field(default_factory=list)
    inbox: InboxConfig | None = None
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    downloads: DownloadLimits = field(default_factory=DownloadLimits)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    owner: OwnerConfig = field(default_factory=OwnerConfig)

    def find_accounts(self, platform: str | None = None, name: str | None = None) -> list[AccountConfig]:
        found = [
            a for a in self.accounts
            if (platform is None or a.platform == platform) and (name is None or a.name == name)
        ]
        if name is not None and not found:
            known = ", ".join(f"{a.name} ({a.platform})" for a in self.accounts) or "none"
            raise ConfigError(
                f"{self.path or 'config'}: no account named {name!r}"
                + (f" on {platform}" if platform else "")
                + f". Configured accounts: {known}. Add an [accounts.{name}] table or pick one of those."
            )
        return found


def default_archive_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("archiver", appauthor=False))


def resolve_archive_dir(option: str | Path | None) -> Path:
    """--archive DIR beats ARCHIVER_HOME beats the platformdirs default."""
    if option:
        return Path(option).expanduser()
    if os.environ.get("ARCHIVER_HOME"):
        return Path(os.environ["ARCHIVER_HOME"]).expanduser()
    return default_archive_dir()


def _line_of(text: str, table: str | None, key: str | None) -> int | None:
    """Best-effort line number of ``key`` inside ``[table]`` (tomllib gives none)."""
    lines = text.splitlines()
    start = 0
    if table:
        header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(re.escape, table.split("."))) + r"\s*\]")
        for i, line in enumerate(lines):
            if header.match(line):
                start = i
                break
        else:
            return None
        if key is None:
            return start + 1
    for i in range(start, len(lines)):
        if i > start and table and lines[i].lstrip().startswith("["):
            break
        if key and re.match(r"^\s*" + re.escape(key) + r"\s*=", lines[i]):
            return i + 1
    return None


def _toml_error_message(path: Path, text: str, error: tomllib.TOMLDecodeError) -> str:
    """tomllib only says e.g. "Invalid value (at line 2, column 12)": add the key and the
    value written on that line, and what TOML expects there."""
    message = str(error)
    position = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", message)
    if not position:
        return f"{path}: not valid TOML: {message}. Fix that line and try again."
    number, problem = int(position[1]), message[:position.start()]
    lines = text.splitlines()
    line = lines[number - 1].strip() if 0 < number <= len(lines) else ""
    where = f"{path}, line {number}"
    assignment = re.match(r"""^([A-Za-z0-9_.'"-]+)\s*=\s*(.*)$""", line)
    if assignment:
        key, value = assignment[1], assignment[2]
        table = None  # the [table] the line sits in: the nearest header above it
        for earlier in reversed(lines[:number - 1]):
            header = re.match(r"^\s*\[([^\[\]]+)\]", earlier)
            if header:
                table = header[1].strip()
                break
        dotted = f"{table}.{key}" if table else key
        return (f"{where}: {dotted} = {value}: not valid TOML ({problem}, column {position[2]}); expected a value "
                'such as "text in double quotes", true, false or a number.')
    return (f"{where}: {line!r} is not valid TOML ({problem}, column {position[2]}); expected "
            "key = value lines and [table] headers.")


def load_config(path: Path, known_platforms: dict[str, Any] | None = None) -> Config:
    """Read and check a config file. ``known_platforms`` maps installed connector names
    to their classes; an unknown platform is an error listing them."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no config file here. Run `archiver init` to write one.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(_toml_error_message(path, text, error)) from None

    def fail(table: str | None, key: str | None, found: Any, expected: str) -> ConfigError:
        line = _line_of(text, table, key)
        where = f"{path}" + (f", line {line}" if line else "")
        dotted = ".".join(x for x in (table, key) if x)
        return ConfigError(f"{where}: {dotted} = {found!r}: expected {expected}.")

    config = Config(path=path)
    for top in data:
        if top not in ("archive", "secrets", "accounts", "inbox", "notify", "daemon", "alerts", "downloads",
                       "fleet", "owner"):
            raise fail(None, top, data[top], "one of the tables [archive], [secrets], [accounts.<name>], "
                       "[inbox], [alerts], [notify.*], [daemon], [downloads], [fleet], [owner]")

    archive = data.get("archive", {})
    if "path" in archive:
        if not isinstance(archive["path"], str) or not archive["path"].strip():
            raise fail("archive", "path", archive["path"], "a folder path as a string")
        config.archive_path = Path(archive["path"]).expanduser()

    backend = data.get("secrets", {}).get("backend", "keyring")
    if backend not in SECRET_BACKENDS:
        raise fail("secrets", "backend", backend, "one of " + ", ".join(SECRET_BACKENDS))
    config.secrets_backend = backend

    accounts = data.get("accounts", {})
    # An installed platform for the examples in messages (the first by name).
    example = min(known_platforms) if known_platforms else "NAME"
    if not isinstance(accounts, dict):
        raise fail(None, "accounts", accounts, f"tables like [accounts.main] with platform = \"{example}\"")
    for name, table in accounts.items():
        where = f"accounts.{name}"
        if not isinstance(table, dict):
            raise fail(None, where, table, f"a table [{where}] with platform = \"...\"")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise fail(where, None, name, "an account name of letters, digits, '-', '_' or '.'")
        if "platform" not in table:
            raise fail(where, None, None, f"a platform key, e.g. platform = \"{example}\"")
        options = {}
        for key, value in table.items():
            expected = ACCOUNT_KEYS.get(key)
            if expected is None:
                if _SECRET_LOOKING.search(key):
                    raise fail(where, key, "<hidden>", "no secrets in the config file: use `archiver auth` "
                               "(keyring) or ARCHIVER_SECRET_* variables, see README \"Secrets\"")
                options[key] = value
                continue
            # TOML's true/false are ints to Python: only a bool key takes them.
            if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
                raise fail(where, key, value, _EXPECTED_TYPE[expected])
        if table.get("full_every_days", 1) < 1:
            raise fail(where, "full_every_days", table["full_every_days"],
                       "a whole number of days, 1 or more (how often the daemon lists everything to find deletions)")
        if not 0 <= table.get("max_deleted_percent", 0) <= 100:
            raise fail(where, "max_deleted_percent", table["max_deleted_percent"],
                       "a percentage from 0 to 100 (the most of the account's posts one run may mark deleted)")
        if table.get("repairs_per_run", 0) < 0:
            raise fail(where, "repairs_per_run", table["repairs_per_run"],
                       "a whole number, 0 or more (how many files that failed earlier one run tries again; "
                       "0: none)")
        platform = table["platform"]
        for known, cls in (known_platforms or {}).items():   # an alias ("twitter") is stored by its name
            if isinstance(platform, str) and platform.strip().lower() in getattr(cls, "platform_aliases", ()):
                platform = known
        if known_platforms is not None and platform not in known_platforms:
            installed = ", ".join(sorted(known_platforms)) or "none"
            raise fail(where, "platform", platform, f"an installed connector: {installed}")
        if known_platforms is not None:
            _check_connector_options(where, platform, options, known_platforms[platform], fail)
        base_url = table.get("base_url")
        if base_url is not None and not re.match(r"^https?://[^/\s]+", base_url):
            raise fail(where, "base_url", base_url, "an http(s) URL such as http://127.0.0.1:8765")
        if base_url and base_url.startswith("http://") and not _is_loopback_url(base_url):
            raise fail(where, "base_url", base_url, "https://, or plain http:// on a loopback address only")
        schedule = table.get("schedule")
        if schedule is not None:
            # Five cron fields, or six with seconds first (for runs seconds apart, e.g. tests).
            # APScheduler (imported only here) checks each field, so "99 3 * * *" fails now,
            # with its line, not at 3 a.m.
            cron_expected = ("a cron line with five fields (minute hour day month weekday), e.g. \"17 3 * * *\", "
                        "or six with seconds first, e.g. \"*/30 * * * * *\"")
            if len(schedule.split()) not in (5, 6):
                raise fail(where, "schedule", schedule, cron_expected)
            from archiver.ops.schedule import schedule_trigger

            try:
                schedule_trigger(schedule)
            except ValueError as error:
                raise fail(where, "schedule", schedule, f"{cron_expected} ({error})") from None
        config.accounts.append(
            AccountConfig(
                name=name,
                platform=platform,
                base_url=base_url.rstrip("/") if base_url else None,
                schedule=schedule,
                portability=table.get("portability", False),
                scopes=table.get("scopes"),
                enabled=table.get("enabled", True),
                full_every_days=table.get("full_every_days", 7),
                max_deleted_percent=table.get("max_deleted_percent", 20),
                repairs_per_run=table.get("repairs_per_run", 50),
                options=options,
            )
        )
    _load_service_tables(data, config, fail)
    config.owner = _load_owner(data, fail)
    return config


_HTTP_URL = re.compile(r"^https?://[^/\s?#\x00-\x1f\x7f]+[^\s\x00-\x1f\x7f]*$", re.IGNORECASE)


def _load_owner(data: dict, fail) -> OwnerConfig:
    """[owner]: who the archive is of (`archiver site`'s about page). Every link is an
    http(s) URL: the site links nothing else."""
    owner = _check_table(data, "owner", {"name": str, "bio": str, "newsletter": str, "shop": str, "blog": str,
                                         "profiles": (list, dict)}, fail)
    url_expected = 'an http(s) URL in double quotes, e.g. "https://example.org/"'
    for key in ("newsletter", "shop", "blog"):
        if key in owner and not _HTTP_URL.match(owner[key]):
            raise fail("owner", key, owner[key], url_expected)
    profiles: list[tuple[str | None, str]] = []
    written = owner.get("profiles", [])
    if isinstance(written, list):
        for index, url in enumerate(written):
            if not isinstance(url, str) or not _HTTP_URL.match(url):
                raise fail("owner", "profiles", url, f"{url_expected} as item {index + 1} of the list")
            profiles.append((None, url))
    else:
        for platform, url in written.items():
            if not isinstance(url, str) or not _HTTP_URL.match(url):
                raise fail("owner.profiles", platform, url, f"{url_expected} (your profile's page)")
            profiles.append((platform, url))
    return OwnerConfig(name=owner.get("name"), bio=owner.get("bio"), newsletter=owner.get("newsletter"),
                       shop=owner.get("shop"), blog=owner.get("blog"), profiles=profiles)


def _check_connector_options(where: str, platform: str, options: dict[str, Any], connector: Any, fail) -> None:
    """The keys of an account table that are not the core's: each must be one of its
    connector's ``config_options``, with a value of the declared type."""
    declared = {option.name: option for option in getattr(connector, "config_options", ())}
    for key, value in options.items():
        option = declared.get(key)
        if option is None:
            allowed = ", ".join(sorted([*ACCOUNT_KEYS, *declared]))
            raise fail(where, key, value, f"one of the keys a {platform} account understands: {allowed}")
        expected = (int, float) if option.type is float else option.type
        # TOML's true/false are ints to Python: only a bool key takes them.
        if not isinstance(value, expected) or (isinstance(value, bool) and option.type is not bool):
            raise fail(where, key, value, _EXPECTED_TYPE[expected])


def _check_table(data: dict, name: str, keys: dict[str, type | tuple], fail) -> dict:
    """A table's known keys with the right types; an unknown key or a wrong type fails."""
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise fail(None, name, table, f"a table [{name}]")
    for key, value in table.items():
        if key not in keys:
            raise fail(name, key, value, "one of " + ", ".join(sorted(keys)))
        spec = keys[key]
        allowed = spec if isinstance(spec, tuple) else (spec,)
        # TOML's true/false are ints to Python: only a bool key takes them.
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise fail(name, key, value, " or ".join(_EXPECTED_TYPE.get(t, _TYPE_WORDS.get(t, t.__name__))
                                                     for t in allowed))
    return table


def _load_service_tables(data: dict, config: Config, fail) -> None:
    """[inbox], [alerts], [notify.*] and [daemon]: what the daemon needs."""
    inbox = _check_table(data, "inbox", {"path": str, "interval": int, "settle": int}, fail)
    if inbox:
        if "path" not in inbox:
            raise fail("inbox", None, None, 'a path key, e.g. path = "~/archiver-inbox"')
        config.inbox = InboxConfig(Path(inbox["path"]).expanduser(), inbox.get("interval", 60), inbox.get("settle", 10))
        for key in ("interval", "settle"):
            if getattr(config.inbox, key) < 1:
                raise fail("inbox", key, inbox[key], "a whole number of seconds, 1 or more")
    alerts = _check_table(data, "alerts", {"failed_runs": int, "unreachable_hours": (int, float),
                                            "export_max_age_days": int, "auth_expiry_days": int}, fail)
    config.alerts = AlertsConfig(**alerts)
    for key, value in alerts.items():
        if value <= 0:
            raise fail("alerts", key, value, "a number above 0")
    daemon = _check_table(data, "daemon", {"max_parallel": int, "log_file": str, "stop_timeout": int}, fail)
    config.daemon = DaemonConfig(**daemon)
    downloads = _check_table(data, "downloads", {"max_file_gb": (int, float), "max_file_hours": (int, float),
                                                  "min_kb_per_second": (int, float)}, fail)
    for key, value in downloads.items():
        if value <= 0:
            raise fail("downloads", key, value, "a number above 0")
    config.downloads = DownloadLimits(**downloads)
    fleet = _check_table(data, "fleet", {"database": str}, fail)
    if "database" in fleet:
        from urllib.parse import urlsplit

        url = urlsplit(fleet["database"])
        if url.scheme not in ("postgresql", "postgres"):
            shown = "<hidden>" if database_url_has_password(fleet["database"]) else fleet["database"]
            raise fail("fleet", "database", shown, 'a PostgreSQL URL, e.g. "postgresql://archiver@db.example/archiver"')
        if database_url_has_password(fleet["database"]):
            raise fail("fleet", "database", "<hidden>", "a URL without a password: no secrets in the config file; "
                       "use PGPASSWORD, ~/.pgpass or ARCHIVER_FLEET_DATABASE (docs/fleet.md)")
        config.fleet = FleetConfig(database=fleet["database"])
    notify = data.get("notify", {})
    if not isinstance(notify, dict):
        raise fail(None, "notify", notify, "tables [notify.command], [notify.webhook], [notify.email]")
    for kind in notify:
        if kind not in ("command", "webhook", "email"):
            raise fail("notify", kind, notify[kind], "one of [notify.command], [notify.webhook], [notify.email]")
    command = _check_table(notify, "command", {"run": list}, _sub(fail, "notify"))
    if command:
        if not command.get("run") or not all(isinstance(a, str) for a in command["run"]):
            raise fail("notify.command", "run", command.get("run"), 'a list of strings, e.g. ["notify-send", "archiver"]')
        config.notify.command = command["run"]
    webhook = _check_table(notify, "webhook", {"url": str}, _sub(fail, "notify"))
    if webhook:
        if not re.match(r"^https?://", webhook.get("url", "")):
            raise fail("notify.webhook", "url", webhook.get("url"), "an http(s) URL")
        config.notify.webhook_url = webhook["url"]
    email = _check_table(notify, "email", {"host": str, "port": int, "starttls": bool, "username": str,
                                           "from": str, "to": (list, str)}, _sub(fail, "notify"))
    if email:
        for key in ("host", "from", "to"):
            if key not in email:
                raise fail("notify.email", key, None, "set (host, from and to are needed to send e-mail)")
        to = email["to"] if isinstance(email["to"], list) else [email["to"]]
        config.notify.email = {"port": 587, "starttls": True, **email, "to": to}


# libpq's connection parameters that hold a secret: a database URL may carry them in its
# query string (postgresql://u@h/db?password=…) as well as in user:password@.
_SECRET_URL_PARAMETERS = frozenset({"password", "sslpassword"})


def secret_url_parameter(pair: str) -> bool:
    """Whether ``pair`` (a ``key=value`` of a URL's query) is one libpq reads a secret from
    (libpq percent-decodes keys too: ``pass%77ord`` is ``password``)."""
    from urllib.parse import unquote

    return unquote(pair.partition("=")[0]) in _SECRET_URL_PARAMETERS


def database_url_has_password(url: str) -> bool:
    """Whether a database URL carries a password: ``user:password@`` or in its query."""
    import re
    from urllib.parse import urlsplit

    if re.search(r"(?:^|\s)(?:ssl)?password\s*=", url, re.IGNORECASE):   # libpq's "host=… password=…" form
        return True
    parts = urlsplit(url)
    return parts.password is not None or any(secret_url_parameter(pair) for pair in parts.query.split("&"))


def _sub(fail, parent: str):
    """``fail`` for a table nested in ``parent`` (e.g. [notify.email])."""
    return lambda table, key, found, expected: fail(f"{parent}.{table}" if table else parent, key, found, expected)


def _is_loopback_url(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def example_config_text() -> str:
    from importlib.resources import files

    return files("archiver").joinpath("config.example.toml").read_text(encoding="utf-8")
