"""Pinterest's "Request your data" export (shared/platforms/pinterest.md §6): the builder of
fake exports (pinterest/sim/export.py) and the importer (pinterest/export.py)."""

from __future__ import annotations

import re
from pathlib import Path

from archiver_connectors.pinterest.sim.export import ExportPin, ExportSection, export_html

NOTES = Path("/work/shared/platforms/pinterest.md")
LEMON_TART = ExportPin("813744226420795884", title="Lemon tart", details="Weekend bake",
                       image_signature="0df6f1f0bfe7aaca849c1bbc3607a34b", board_id="549755885175",
                       board_name="Baking", username="roofcam", link="https://example.org/recipe",
                       created_at="2024-05-01T18:22:31Z")
# The notes' example, verbatim (made-up values, real shape).
NOTES_EXAMPLE = """<div id="contents"><h1 id=q8k2z>Pins</h1>
<a href="https://www.pinterest.com/pin/813744226420795884/">https://www.pinterest.com/pin/813744226420795884/</a>
<br>Title: Lemon tart,
<br>Details: Weekend bake,
<br>Image: 0df6f1f0bfe7aaca849c1bbc3607a34b,
<br>Is Native: No data,
<br>Board Id: 549755885175,
<br>Board Name: Baking,
<br>Is Video: No data,
<br>Ip Address: 203.0.113.7,
<br>Username: roofcam,
<br>Alt Text: No data,
<br>Canonical Link: <a href="https://example.org/recipe">https://example.org/recipe</a>,
<br>Story Pin Media: No data,
<br>Video: No data,
<br>Created at: 2024/05/01 18:22:31
<br>Alive: True
<br>Is a repin: False
<br>Private: False<br><br><h1 id=x7y3a>Boards</h1>
</div>
"""


def test_the_builder_writes_the_notes_example_exactly():
    written = export_html([LEMON_TART], extra_sections=[ExportSection("Boards", [], h1_id="x7y3a")],
                          pins_h1_id="q8k2z")
    assert written == NOTES_EXAMPLE
    if NOTES.exists():   # the notes themselves, where they are at hand
        assert re.search(r"```html\n(.*?)```", NOTES.read_text(), re.S).group(1) == NOTES_EXAMPLE


def test_h1_ids_are_random_and_unique():
    written = export_html([LEMON_TART], extra_sections=[ExportSection("Boards"), ExportSection("Followers")], seed=7)
    ids = re.findall(r"<h1 id=(\w+)>", written)
    assert len(ids) == len(set(ids)) == 3
    assert ids != re.findall(r"<h1 id=(\w+)>", export_html([LEMON_TART], extra_sections=[ExportSection("Boards"),
                                                                                      ExportSection("Followers")], seed=8))
