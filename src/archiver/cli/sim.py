"""Trying archiver without an account: `archiver simulate` (a fake platform API),
`demo` (a simulated account archived end to end)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from archiver.cli._common import fail, setup_logging
from archiver.inert import echo


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("platform")
@click.option("--port", type=int, default=8765, show_default=True, help="Port on 127.0.0.1 (0 = any free port).")
@click.option("--videos", type=int, default=30, show_default=True)
@click.option("--followers", type=int, default=50, show_default=True)
@click.option("--latency-ms", type=int, default=0, show_default=True)
@click.option("--fail-rate", type=float, default=0.0, show_default=True, help="Share of requests answered with a 500.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.pass_context
def simulate(ctx, platform, port, videos, followers, latency_ms, fail_rate, seed):
    """Serve a simulated platform API on 127.0.0.1 (point an account's base_url at it).

    Other options go to the platform's simulator as they are (for TikTok e.g.
    --client-secret, --access-ttl, --rate-limit, --retry-after).
    """
    from archiver.connector import get_connector

    try:
        cls = get_connector(platform)
    except Exception as error:
        fail(str(error))
    import importlib

    try:
        fake = importlib.import_module(cls.__module__ + ".sim.fake")
    except ImportError:
        fail(f"the {platform} connector has no simulator")
    fake.main(["--port", str(port), "--videos", str(videos), "--followers", str(followers),
               "--latency-ms", str(latency_ms), "--fail-rate", str(fail_rate), "--seed", str(seed),
               *ctx.args])


@click.command()
@click.option("--dir", "folder", default="demo-archive", show_default=True, type=click.Path(file_okay=False),
              help="Archive folder to create; every other command can use it with --archive.")
@click.option("--videos", type=int, default=24, show_default=True)
@click.option("--followers", type=int, default=120, show_default=True)
def demo(folder, videos, followers):
    """Archive a SIMULATED TikTok account end to end, with no account needed."""
    setup_logging()
    from archiver.sim.demo import run_demo

    sys.exit(run_demo(Path(folder), videos=videos, followers=followers, echo=echo))
