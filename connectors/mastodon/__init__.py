"""Mastodon connector (being built)."""

from archiver.connector import Connector


class MastodonConnector(Connector):
    name = "mastodon"
    title = "Mastodon"
    default_base_url = ""
