"""What the owned channels' simulators share: a fake export written to a file.

These providers have no API archiver calls, so a simulator is a builder of their CSV export,
faithful to the columns docs/owned-channels.md lists, with a knob for each detail marked [U]
there. `archiver simulate PROVIDER --out FILE [--contacts N] [--seed N] [its knobs]` writes
one; tests call the builders directly. Addresses are on ``example.com``.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from archiver.sim import DemoWorld, Simulator

FIRST = ["Ada", "Bo", "Chloé", "Dev", "Émile", "Farah", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea"]
LAST = ["Ng", "Okafor", "Pérez", "Quist", "Rossi", "Sato", "Tan", "Ueda", "Varga", "Wu"]


@dataclass
class FakeContact:
    """One person of a fake list: the facts every provider's file is written from."""

    email: str
    first: str
    last: str
    status: str          # subscribed | unsubscribed | cleaned | pending
    joined: str          # "YYYY-MM-DD HH:MM:SS", UTC
    left: str | None = None
    consent: bool = True
    orders: int = 0


def fake_contacts(count: int, seed: int = 7) -> list[FakeContact]:
    """``count`` people, joined over two years, a few gone (unsubscribed, cleaned) or pending."""
    rng = random.Random(seed)
    people = []
    for index in range(count):
        day = 1 + index * 700 // max(count, 1)
        joined = f"2024-{1 + day // 60 % 12:02d}-{1 + day % 28:02d} 10:{index % 60:02d}:00"
        joined = f"{2024 + day // 365}-{joined[5:]}"
        roll = rng.random()
        status = "subscribed" if roll < 0.75 else "unsubscribed" if roll < 0.87 else "cleaned" if roll < 0.94 \
            else "pending"
        left = None if status in ("subscribed", "pending") else f"2025-{1 + index % 12:02d}-15 08:00:00"
        people.append(FakeContact(f"reader{index}@example.com", rng.choice(FIRST), rng.choice(LAST), status, joined,
                                  left, consent=rng.random() < 0.8, orders=rng.randrange(0, 6)))
    return people


def csv_bytes(header: list[str], rows: list[list[str]], *, bom: bool = False, line_end: str = "\r\n") -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + text.getvalue().encode("utf-8")


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


class CsvExportDemo(DemoWorld):
    """`archiver demo` of a provider without an API: no fake is served (``base_url`` stays
    empty), the demo imports the export file alone."""

    def __init__(self, simulator: "CsvExportSimulator", people: list[FakeContact]) -> None:
        self.simulator, self.people = simulator, people
        self.username = simulator.name
        self.simulate_options = ["--contacts", str(len(people))]

    def export_file(self, folder: Path) -> Path:
        return type(self.simulator).builder(folder / f"{self.simulator.name}-{self.simulator.demo_file}", self.people)


class CsvExportSimulator(Simulator):
    """`archiver simulate PROVIDER --out FILE`: writes the provider's fake export."""

    # (path, people, knobs) -> the written file
    builder: Callable[..., Path]
    knobs: dict[str, str] = {}   # option name -> help, each a string value passed to the builder
    demo_file = "export.csv"     # the name `archiver demo` gives the builder's default layout

    def start_demo(self, *, posts: int, followers: int) -> CsvExportDemo:
        """A list of ``followers`` people (at least 4: some subscribed, some gone), as the
        provider's export file."""
        return CsvExportDemo(self, fake_contacts(max(followers, 4)))

    def main(self, argv: list[str]) -> None:
        parser = argparse.ArgumentParser(prog=f"archiver simulate {self.name}",
                                         description=f"Write a fake {self.name} export (no server: the provider "
                                                     "has no API archiver calls).")
        parser.add_argument("--out", required=True, help="the file to write")
        parser.add_argument("--contacts", type=int, default=20, help="how many people (default 20)")
        parser.add_argument("--seed", type=int, default=7)
        for knob, text in self.knobs.items():
            parser.add_argument(f"--{knob.replace('_', '-')}", dest=knob, help=text)
        options = vars(parser.parse_args(argv))
        out, count, seed = Path(options.pop("out")), options.pop("contacts"), options.pop("seed")
        knobs = {k: v for k, v in options.items() if v is not None}
        written = type(self).builder(out, fake_contacts(count, seed), **knobs)
        print(f"wrote {written}", flush=True)
