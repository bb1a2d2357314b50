"""The command line: the `archiver` group, assembled from one module per group of commands.

    _common    what every command shares (--archive/--config, the error guard, progress)
    setup      init, connectors, auth, secret
    runs       export, import, inbox
    look       serve, status, verify, report
    site       site (a static website of the owner's posts)
    ops        daemon
    sim        simulate, demo
    audience   audience …
    content    content gaps, content bundle
    fleet      fleet init|add|import|accounts|status|rate|prune|sweep|recover|secrets, worker, enqueue
               (the fleet extra)

Each command imports the heavy modules (httpx, sqlite-utils, datasette, rich) it needs
inside itself, so `archiver --help` stays fast.
"""

from __future__ import annotations

import click

from archiver.cli import audience, content, fleet, look, ops, runs, setup, sim, site


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archiver")
def main():
    """Keep a complete copy of your own social-media accounts on your own disk."""


for command in (setup.init, setup.connectors, setup.auth, setup.secret,
                runs.export, runs.import_, runs.inbox,
                look.serve, look.status, look.verify, look.report, site.site,
                ops.daemon,
                sim.simulate, sim.demo,
                audience.audience, content.content,
                fleet.fleet, fleet.worker, fleet.enqueue):
    main.add_command(command)


if __name__ == "__main__":
    main()
