"""The fleet's accounts (src/archiver/fleet/accounts.py): what a name may be, what `fleet
import` changes of an existing account (only the columns its header names), a row the
database cannot store reported by its line, and `archiver fleet accounts` listing them.
Also the database URL's password kept out of messages and the config wherever it sits."""

from __future__ import annotations

import pytest

from archiver.fleet import accounts
from archiver.fleet.db import FleetError

KNOWN = {"mastodon": object(), "tiktok": object()}


@pytest.mark.parametrize("name", [".", "..", "...", ""])
def test_dot_names_are_refused_for_a_tenant_or_an_account(name):
    # A tenant or an account is a folder name (LocalArchives, browse): ".." would climb out of it.
    for tenant, account in ((name, "news"), ("acme", name)):
        with pytest.raises(FleetError, match="expected letters"):
            accounts.check(tenant, "mastodon", account, known_platforms=KNOWN)
    assert accounts.check("acme.org", "mastodon", "a.b..c", known_platforms=KNOWN) == "mastodon"
    assert accounts.check(".acme", "mastodon", "news.", known_platforms=KNOWN) == "mastodon"
