"""Setting up: `archiver init`, `connectors`, `auth`, `secret set`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from archiver.cli._common import archive_dir, common_options, fail, guard, open_workspace, setup_logging
from archiver.cli.fleet import fleet_guard
from archiver.inert import echo


@click.command()
@common_options
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@guard
def init(archive, config_path, force):
    """Write a commented config and create the archive folder."""
    from archiver.archive import Archive
    from archiver.config import CONFIG_NAME, example_config_text

    folder = archive_dir(archive)
    store = Archive(folder).create()
    store.db  # noqa: B018 (opening it creates archive.db with its schema)
    target = Path(config_path) if config_path else folder / CONFIG_NAME
    if target.exists() and not force:
        echo(f"{target} exists already; left as it is (use --force to overwrite).")
    else:
        from archiver.private_files import open_private

        with open_private(target, "w", encoding="utf-8") as config_file:   # 0600 from its creation
            config_file.write(example_config_text())
        echo(f"wrote {target}")
    echo(f"archive folder: {folder} (archive.db, media/)")
    echo("next: edit the config, then `archiver auth PLATFORM` and `archiver export --platform PLATFORM` "
         "(`archiver connectors` lists the platforms).")


@click.command()
def connectors():
    """List the installed connectors."""
    from archiver.connector import installed_connectors

    for name, cls in sorted(installed_connectors().items()):
        echo(f"{name}\t{cls.title}\t{cls.__module__}")


class AuthCommand(click.Group):
    """`archiver auth PLATFORM [OPTIONS]`: one subcommand per installed connector, whose options
    are the connector's declared ``auth_options`` besides the core's. Each is built when it is
    asked for, so `archiver --help` imports no connector."""

    def list_commands(self, ctx):
        from archiver.connector import installed_connectors

        return sorted(installed_connectors())   # those that load (a broken plug-in is skipped, with a warning)

    def get_command(self, ctx, name):
        from archiver.connector import UnknownPlatform, get_connector

        try:
            return platform_auth_command(get_connector(name))
        except UnknownPlatform as error:
            fail(str(error))


@click.group(cls=AuthCommand, subcommand_metavar="PLATFORM [OPTIONS]")
def auth():
    """Authorize archiver to read an account (OAuth through a loopback redirect).

    Each platform has its own options: `archiver auth PLATFORM --help` lists them.
    Mastodon and Bluesky accounts need no config entry first: `archiver auth mastodon
    --instance https://mastodon.social` or `archiver auth bluesky --handle alice.bsky.social`
    adds [accounts.<--account, default "main">] to the config.
    """


# The options every platform's `archiver auth` has; a connector's own may not reuse these names.
CORE_AUTH_OPTIONS = ("archive", "config", "account", "no_browser", "port", "tenant", "database")


def fleet_options(func):
    """--tenant and --database: the secret goes to a fleet account's sealed store (docs/fleet.md)."""
    func = click.option("--database", metavar="URL",
                        help="With --tenant: the fleet's PostgreSQL. Default: $ARCHIVER_FLEET_DATABASE, "
                             "else [fleet] database in the config.")(func)
    return click.option("--tenant", metavar="T",
                        help="A fleet account of this tenant (`archiver fleet add` it first): the secrets go "
                             "to the fleet's database, sealed with its master key.")(func)


def fleet_secrets(archive, config_path, tenant: str, database: str | None):
    """The tenant's sealed secret store in the fleet's database and a connection to it."""
    from archiver.fleet import db
    from archiver.fleet.secrets import FleetSecretStore, load_master_keys

    if database:
        url = db.database_url(database)
    else:
        url = db.database_url(None, open_workspace(archive, config_path).config)
    key, previous = load_master_keys()   # before connecting: no key, nothing to do
    connection = db.connect(url)
    return FleetSecretStore(connection, tenant, key, previous), connection


def platform_auth_command(cls) -> click.Command:
    """The `archiver auth NAME` command of the connector class ``cls``."""

    def authorize_platform(archive, config_path, account_name, no_browser, port, tenant, database, **options):
        if tenant:
            authorize_fleet_account(cls, archive, config_path, tenant, database, account_name, no_browser, port,
                                    options)
        else:
            authorize_account(cls, archive, config_path, account_name, no_browser, port, options)

    command = fleet_guard(authorize_platform)
    for option in reversed(cls.auth_options):
        command = click_option(option, cls.name)(command)
    command = click.option("--port", type=int, default=0, help="Loopback port for the redirect (0 = any free port).")(command)
    command = click.option("--no-browser", is_flag=True,
                           help="Print the authorization URL instead of opening a browser.")(command)
    command = click.option("--account", "account_name", metavar="NAME",
                           help="Account from the config (default: the only one); with --tenant, the fleet "
                                "account's name.")(command)
    command = fleet_options(command)
    return click.command(cls.name, help=f"Authorize archiver to read your {cls.title} account.")(common_options(command))


def click_option(option, platform: str):
    """A connector's declared auth ``Option`` as a click option."""
    if option.name in CORE_AUTH_OPTIONS:
        raise ValueError(f"the {platform} connector declares the auth option {option.name!r}, which the core "
                         f"has already ({', '.join(CORE_AUTH_OPTIONS)})")
    dashed = "--" + option.name.replace("_", "-")
    if option.stdin:   # the value itself is read at the start of the command (see read_stdin_options)
        return click.option(f"{dashed}-stdin", f"{option.name}_stdin", is_flag=True,
                            help=f"{option.help} Read from standard input.")
    if option.flag:
        return click.option(dashed, option.name, is_flag=True, help=option.help)
    names = [dashed, *("--" + alias.replace("_", "-") for alias in option.aliases), option.name]
    value_type = click.BOOL if option.type is bool else option.type
    return click.option(*names, type=value_type, required=option.required, metavar=option.metavar,
                        help=option.help)


def read_stdin_options(cls, options: dict) -> None:
    """Replace each given `--NAME-stdin` flag by NAME = what standard input holds."""
    for option in cls.auth_options:
        if not option.stdin:
            continue
        value = None
        if options.pop(f"{option.name}_stdin"):
            value = sys.stdin.read().strip()
            if not value:
                flag = "--" + option.name.replace("_", "-") + "-stdin"
                fail(f"{flag}: standard input was empty; pipe the {option.name.replace('_', ' ')} in, e.g. "
                     f"`printf %s \"${option.name.upper()}\" | archiver auth {cls.name} ... {flag}`")
        options[option.name] = value


def authorize_account(cls, archive, config_path, account_name, no_browser, port, options: dict) -> None:
    """`archiver auth NAME`: find (or add) the account, then let the connector authorize it."""
    setup_logging()
    platform = cls.name
    # Read first: a failed command must not have changed the config.
    read_stdin_options(cls, options)
    ws = open_workspace(archive, config_path)
    settings = cls.account_settings_from_auth(options)
    if settings and not [a for a in ws.config.accounts if a.platform == platform
                         and (account_name is None or a.name == account_name)]:
        name = account_name or ("main" if "main" not in {a.name for a in ws.config.accounts} else platform)
        target = add_account_to_config(ws, name, platform, settings, config_path)
        echo(f"added [accounts.{name}] ({platform}) to {target}")
        ws = open_workspace(archive, config_path)
        account_name = name
    accounts = ws.config.find_accounts(platform, account_name)
    if len(accounts) > 1:
        fail(f"several {platform} accounts are configured; pick one with --account "
             f"({', '.join(a.name for a in accounts)})")
    if not accounts:
        fail(f"no {platform} account in {ws.config.path or 'the config'}: add [accounts.main] with "
             f"platform = \"{platform}\" (`archiver init` writes an example)")
    # Hidden: what the connector declares secret, and any key it asks for that names a
    # secret or a password (e.g. an app password).
    hidden = {option.name for option in cls.auth_options if option.secret}

    def ask(key: str) -> str:
        return click.prompt(f"{cls.title} {key.replace('_', ' ')}",
                            hide_input=key in hidden or key.endswith(("secret", "password")))

    prompt = ask if sys.stdin.isatty() else None
    connector = cls(accounts[0], ws.secrets)
    echo(connector.authorize(echo=echo, open_browser=False if no_browser else None, port=port, prompt=prompt,
                             **options))


def authorize_fleet_account(cls, archive, config_path, tenant, database, account_name, no_browser, port,
                            options: dict) -> None:
    """`archiver auth NAME --tenant T --account A`: the fleet account's tokens and app secrets,
    sealed in the fleet's database, where every worker's runs read them."""
    from archiver.fleet import accounts as fleet_accounts

    setup_logging()
    read_stdin_options(cls, options)
    if not account_name:
        fail(f"--tenant {tenant}: name the fleet account with --account (`archiver fleet status` lists them)")
    store, connection = fleet_secrets(archive, config_path, tenant, database)
    with connection:
        account = fleet_accounts.find(connection, f"{tenant}/{cls.name}:{account_name}")
        # The account as the fleet has it: an --instance or --handle given here must be its own
        # (authorizing another would seal that one's tokens over the account's working ones).
        config = account.config()
        for key, given in (cls.account_settings_from_auth(options) or {}).items():
            have = config.base_url if key == "base_url" else config.options.get(key)
            if have is not None and have != given:
                fail(f"{account.label()} has {key} = {have!r}, not {given!r}: authorize the account it is, or change "
                     "it with `archiver fleet import` (a new account: `archiver fleet add`)")
        hidden = {option.name for option in cls.auth_options if option.secret}

        def ask(key: str) -> str:
            return click.prompt(f"{cls.title} {key.replace('_', ' ')}",
                                hide_input=key in hidden or key.endswith(("secret", "password")))

        connector = cls(config, store)
        echo(connector.authorize(echo=echo, open_browser=False if no_browser else None, port=port,
                                 prompt=ask if sys.stdin.isatty() else None, **options))
        echo(f"sealed in the fleet's database for {account.label()} ({store.backend_name})")


def add_account_to_config(ws, name: str, platform: str, settings: dict, config_path) -> Path:
    """Append an [accounts.NAME] table to the config file (a new one if missing).
    Appending keeps the user's comments and layout untouched."""
    import json

    from archiver.config import CONFIG_NAME

    target = Path(config_path) if config_path else (ws.config.path or ws.archive.folder / CONFIG_NAME)
    if not target.exists():
        from archiver.private_files import open_private

        target.parent.mkdir(parents=True, exist_ok=True)
        with open_private(target, "w", encoding="utf-8") as config_file:   # 0600 from its creation
            config_file.write("# archiver configuration: every option is explained in config.example.toml "
                              "(README).\n")
    lines = [f"\n[accounts.{name}]", f"platform = {json.dumps(platform)}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]  # JSON strings are TOML strings
    with open(target, "a", encoding="utf-8") as config_file:
        config_file.write("\n".join(lines) + "\n")
    return target


@click.group()
def secret():
    """Store a secret archiver needs (e.g. the e-mail password for alerts)."""


@secret.command(name="set")
@common_options
@click.argument("platform")
@click.argument("account")
@click.argument("key")
@fleet_options
@fleet_guard
def secret_set(archive, config_path, platform, account, key, tenant, database):
    """Store KEY for PLATFORM ACCOUNT in the configured secret store.

    The value is asked for without echo on a terminal, else read from standard input
    (`printf %s "$PASSWORD" | archiver secret set notify email password`). It never
    goes on the command line, where other users could see it in the process list.
    Example: archiver secret set notify email password

    With --tenant T: a fleet account's secret, sealed in the fleet's database
    (`archiver secret set tiktok main client_secret --tenant acme`).
    """
    if tenant:
        store, connection = fleet_secrets(archive, config_path, tenant, database)
    else:
        store, connection = open_workspace(archive, config_path).secrets, None
    if sys.stdin.isatty():
        value = click.prompt(f"{platform} {account} {key}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")  # the newline `echo` adds is not part of it
    if not value:
        fail(f"no value given for {platform} {account} {key}: nothing stored")
    if connection is not None:
        from archiver.fleet import accounts as fleet_accounts

        with connection:   # only an account the fleet has (a typo would seal a secret nobody reads)
            fleet_accounts.find(connection, f"{tenant}/{platform}:{account}")
            store.set(platform, account, key, value)
    else:
        store.set(platform, account, key, value)
    echo(f"stored {key} for {platform} {account} ({store.backend_name})")
