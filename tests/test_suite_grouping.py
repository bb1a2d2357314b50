"""`make test` runs `--dist loadgroup`: tests sharing a costly module fixture (a leak scenario,
the all-platforms demo, a PostgreSQL) carry one `xdist_group` mark so one worker builds it once.
pytest 9.2 silently broke that (pytest-xdist#1386: every fixture built on every worker, minutes
of CI); pyproject.toml's test extra pins pytest below it, and this test says when grouping fails."""

from __future__ import annotations

import pytest


@pytest.mark.xdist_group("grouping-check")
def test_a_grouped_test_runs_as_part_of_its_group(request):
    if getattr(request.config.option, "loadgroup", False):
        assert request.node.nodeid.endswith("@grouping-check"), (
            f"{request.node.nodeid}: --dist loadgroup ignores xdist_group marks with this pytest and pytest-xdist")
