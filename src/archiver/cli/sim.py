"""Trying archiver without an account: `archiver simulate` (a fake platform API),
`demo` (a simulated account archived end to end). Both find the simulators through the
entry-point group ``archiver.simulators`` (archiver.sim)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from archiver.cli._common import fail, setup_logging
from archiver.inert import echo


# Everything after PLATFORM is the simulator's own (its --help included).
@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("platform")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[SIMULATOR OPTIONS]")
def simulate(platform, args):
    """Serve a simulated platform API on 127.0.0.1 (point an account's base_url at it).

    The options after PLATFORM are the simulator's own (`archiver simulate PLATFORM --help`
    lists them), e.g. --port (default 8765; 0 = any free port), the sizes (--videos,
    --followers), faults (--latency-ms, --fail-rate) and, for TikTok, --client-secret,
    --access-ttl, --rate-limit, --retry-after.
    """
    simulator = _simulator(platform)
    simulator.main(list(args))


def _simulator(platform: str):
    from archiver.connector import UnknownPlatform, canonical_platform, get_connector
    from archiver.sim import installed_simulators

    simulators = installed_simulators()
    platform = canonical_platform(platform)
    if platform not in simulators:
        try:
            get_connector(platform)
        except UnknownPlatform as error:
            fail(str(error))
        fail(f"the {platform} connector has no simulator")
    return simulators[platform]


@click.command()
@click.option("--dir", "folder", default="demo-archive", show_default=True, type=click.Path(file_okay=False),
              help="Archive folder to create; every other command can use it with --archive.")
@click.option("--platform", metavar="NAME",
              help="The simulated platform (default: TikTok's simulator); `all`: every simulator with a demo, "
                   "one account each, into one archive.")
@click.option("--posts", "--videos", "posts", type=click.IntRange(min=0), default=24, show_default=True,
              help="Posts of each simulated account.")
@click.option("--followers", type=click.IntRange(min=0), default=120, show_default=True,
              help="Followers of each simulated account (people on a newsletter's or shop's list).")
def demo(folder, platform, posts, followers):
    """Archive a SIMULATED account (TikTok's, by default) end to end, with no account needed.

    `--platform all` archives one simulated account of every platform, and a list of every
    newsletter and shop provider, into one archive."""
    setup_logging()
    from archiver.sim.demo import run_all_demos, run_demo

    if platform is not None and platform.strip().lower() == "all":
        try:
            sys.exit(run_all_demos(Path(folder), posts=posts, followers=followers, echo=echo))
        except LookupError as error:
            fail(str(error))
    if platform is not None:
        _simulator(platform)   # a mistyped or simulator-less platform is one clear line
    from archiver.sim import demo_simulator

    try:
        simulator = demo_simulator(platform)
    except LookupError as error:
        fail(str(error))
    try:
        sys.exit(run_demo(Path(folder), posts=posts, followers=followers, echo=echo, simulator=simulator))
    except NotImplementedError as error:
        fail(str(error))
