"""Setting up: `archiver init`, `connectors`, `auth`, `secret set`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from archiver.cli._common import archive_dir, common_options, fail, guard, open_workspace, setup_logging
from archiver.inert import echo


@click.command()
@common_options
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@guard
def init(archive, config_path, force):
    """Write a commented config and create the archive folder."""
    from archiver.archive import Archive
    from archiver.config import CONFIG_NAME, example_config_text
    from archiver.connector import installed_connectors

    folder = archive_dir(archive)
    store = Archive(folder, connectors=installed_connectors).create()
    store.db  # creates archive.db with its schema
    target = Path(config_path) if config_path else folder / CONFIG_NAME
    if target.exists() and not force:
        echo(f"{target} exists already; left as it is (use --force to overwrite).")
    else:
        from archiver.private_files import open_private

        with open_private(target, "w", encoding="utf-8") as config_file:   # 0600 from its creation
            config_file.write(example_config_text())
        echo(f"wrote {target}")
    echo(f"archive folder: {folder} (archive.db, media/)")
    echo("next: edit the config, then `archiver auth tiktok` and `archiver export --platform tiktok`.")


@click.command()
def connectors():
    """List the installed connectors."""
    from archiver.connector import installed_connectors

    for name, cls in sorted(installed_connectors().items()):
        echo(f"{name}\t{cls.title}\t{cls.__module__}")


@click.command()
@common_options
@click.argument("platform")
@click.option("--account", "account_name", metavar="NAME", help="Account from the config (default: the only one).")
@click.option("--client-key", "--client-id", "client_key",
              help="Your app's client key / client id (asked for when missing).")
@click.option("--client-secret", help="Your app's client secret (asked for when missing; prefer the prompt).")
@click.option("--no-browser", is_flag=True, help="Print the authorization URL instead of opening a browser.")
@click.option("--port", type=int, default=0, help="Loopback port for the redirect (0 = any free port).")
@click.option("--instance", metavar="URL", help="Mastodon: your instance, e.g. https://mastodon.social.")
@click.option("--handle", metavar="HANDLE", help="Bluesky: your handle, e.g. alice.bsky.social.")
@click.option("--token-stdin", is_flag=True,
              help="Read the token (Mastodon access token, Bluesky app password) from standard input.")
@guard
def auth(archive, config_path, platform, account_name, client_key, client_secret, no_browser, port,
         instance, handle, token_stdin):
    """Authorize archiver to read an account (OAuth through a loopback redirect).

    Mastodon and Bluesky accounts need no config entry first: `archiver auth mastodon
    --instance https://mastodon.social` or `archiver auth bluesky --handle alice.bsky.social`
    adds [accounts.<--account, default "main">] to the config.
    """
    setup_logging()
    from archiver.connector import get_connector

    # Read first: a failed command must not have changed the config.
    token = None
    if token_stdin:
        token = sys.stdin.read().strip()
        if not token:
            fail("--token-stdin: standard input was empty; pipe the token in, e.g. "
                 "`printf %s \"$TOKEN\" | archiver auth ... --token-stdin`")
    ws = open_workspace(archive, config_path)
    cls = get_connector(platform)
    settings = cls.account_settings_from_auth(instance=instance, handle=handle)
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
    account = accounts[0]
    prompt = None
    if sys.stdin.isatty():
        prompt = lambda key: click.prompt(f"{cls.title} {key.replace('_', ' ')}", hide_input=key.endswith(("secret", "password")))
    connector = cls(account, ws.secrets)
    # Platforms name the app's id differently (TikTok: client key; Google, Meta: client id).
    message = connector.authorize(echo=echo, open_browser=False if no_browser else None,
                                  client_key=client_key, client_id=client_key, client_secret=client_secret,
                                  prompt=prompt, port=port, instance=instance, handle=handle, token=token)
    echo(message)


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
@guard
def secret_set(archive, config_path, platform, account, key):
    """Store KEY for PLATFORM ACCOUNT in the configured secret store.

    The value is asked for without echo on a terminal, else read from standard input
    (`printf %s "$PASSWORD" | archiver secret set notify email password`). It never
    goes on the command line, where other users could see it in the process list.
    Example: archiver secret set notify email password
    """
    ws = open_workspace(archive, config_path)
    if sys.stdin.isatty():
        value = click.prompt(f"{platform} {account} {key}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")  # the newline `echo` adds is not part of it
    if not value:
        fail(f"no value given for {platform} {account} {key}: nothing stored")
    store = ws.secrets
    store.set(platform, account, key, value)
    echo(f"stored {key} for {platform} {account} ({store.backend_name})")
