"""Bluesky connector (being built)."""

from archiver.connector import Connector


class BlueskyConnector(Connector):
    name = "bluesky"
    title = "Bluesky"
    default_base_url = ""
