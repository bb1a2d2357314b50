"""How installed connectors are found: a built-in one that cannot be loaded is an error
that says so; a third party's broken plug-in is skipped with a warning."""

from __future__ import annotations

import importlib.metadata
import logging

import pytest

from archiver.connector import ENTRY_POINT_GROUP, ConnectorLoadError, installed_connectors


def entry(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def with_entry_points(monkeypatch, *extra: importlib.metadata.EntryPoint) -> None:
    real = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [*real, *extra] if group == ENTRY_POINT_GROUP else [])


def test_every_built_in_connector_loads():
    assert sorted(installed_connectors()) == ["bluesky", "buttondown", "facebook", "instagram", "linkedin", "mailchimp",
                                              "mastodon", "pinterest", "shopify", "substack", "threads", "tiktok",
                                              "woocommerce", "x", "youtube"]


def test_a_built_in_connector_that_fails_to_load_is_an_error_naming_it(monkeypatch):
    with_entry_points(monkeypatch, entry("threads", "archiver_connectors.threads_missing:ThreadsConnector"))
    with pytest.raises(ConnectorLoadError) as raised:
        installed_connectors()
    message = str(raised.value)
    assert "built-in threads connector (archiver_connectors.threads_missing:ThreadsConnector)" in message
    assert "ModuleNotFoundError" in message and "reinstall" in message


def test_a_third_party_connector_that_fails_to_load_is_skipped_with_a_warning(monkeypatch, caplog):
    with_entry_points(monkeypatch, entry("myspace", "archiver_myspace_plugin:Connector"))
    with caplog.at_level(logging.WARNING, logger="archiver"):
        found = installed_connectors()
    assert "myspace" not in found and "tiktok" in found
    assert "connector 'myspace' (archiver_myspace_plugin:Connector) could not be loaded and is skipped" in caplog.text
