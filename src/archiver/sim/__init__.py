"""Simulators: a fake platform per connector, for tests, `archiver simulate` and `archiver demo`.

A connector's package ships its simulator (the built-in ones in ``archiver_connectors.<name>.sim``)
and registers an instance of a ``Simulator`` subclass in the entry-point group
``archiver.simulators``, under the connector's name. The core finds them here and knows
no platform: server.py is the loopback HTTP server every fake shares, demo.py runs the
demo against whichever simulator offers one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import archiver.plugins as plugins

if TYPE_CHECKING:
    from archiver.secrets import SecretStore

ENTRY_POINT_GROUP = plugins.SIMULATORS


class DemoWorld:
    """A running fake platform with one account on it, for `archiver demo`; a context manager
    that stops the fake on exit."""

    base_url: str = ""                  # the running fake, on 127.0.0.1; "" for a provider archived from
                                        # its export alone (no API): the demo only imports export_file
    settings: dict[str, Any] = {}       # extra [accounts.demo] keys the account needs (besides base_url)
    username: str = "demo"              # the simulated account's handle, for the demo's messages
    auth_hint: str = ""                 # for the demo config's comments: what `archiver auth` against
                                        # `archiver simulate NAME` is given, e.g. the fake's client id
    simulate_options: list[str] = []    # the `archiver simulate NAME` options that serve this same world
                                        # again (sizes, seed), for the demo config's comments
    server: Any = None                  # the fake's loopback HTTP server, if any: close() stops it

    def store_credentials(self, secrets: "SecretStore", account_name: str) -> None:
        """Put what `archiver auth` would have stored for the account into ``secrets``
        (nothing, for a provider without an API)."""
        if self.base_url:
            raise NotImplementedError

    def export_file(self, folder: Path) -> Path | None:
        """Write an official "download your data" export of the account into ``folder`` and
        return its path; None when the platform has no such export."""
        return None

    def close(self) -> None:
        """Stop the fake: its loopback server (``server``), when it has one."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> "DemoWorld":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Simulator:
    """What a connector's simulator offers the command line."""

    name: str                    # the connector it simulates
    # `archiver demo` without --platform uses the installed simulator that sets this (the
    # first by name if several do, or if none does).
    demo_default: bool = False

    def main(self, argv: list[str]) -> None:
        """`archiver simulate NAME [ARGS]`: serve the fake on 127.0.0.1, print
        "listening on URL", serve until SIGTERM or SIGINT. ``argv``: the platform's own
        options (--port, sizes, faults), as the user gave them."""
        raise NotImplementedError

    def start_demo(self, *, posts: int, followers: int) -> DemoWorld:
        """A fake with one account of ``posts`` posts and ``followers`` followers, served."""
        raise NotImplementedError(f"the {self.name} simulator has no demo")


def has_demo(simulator: Simulator) -> bool:
    """Whether ``simulator`` offers `archiver demo` (it overrides ``start_demo``)."""
    return type(simulator).start_demo is not Simulator.start_demo


def installed_simulators() -> dict[str, Simulator]:
    """name -> simulator, from the entry-point group (third parties' included). One that
    fails to load is skipped with a warning (only `simulate` and `demo` need them)."""
    return plugins.load(ENTRY_POINT_GROUP, built_in_must_load=False)


def demo_simulator(name: str | None = None) -> Simulator:
    """The simulator `archiver demo` uses: ``name``'s, else the default one."""
    simulators = installed_simulators()
    if name is not None:
        if name not in simulators:
            raise LookupError(f"no simulator for {name!r}; installed: {', '.join(sorted(simulators)) or 'none'}")
        return simulators[name]
    if not simulators:
        raise LookupError("no simulator is installed: `archiver demo` needs one (the built-in connectors ship "
                          "theirs; reinstall archiver)")
    ranked = sorted(simulators.values(), key=lambda simulator: (not simulator.demo_default, simulator.name))
    return ranked[0]


def demo_simulators() -> list[Simulator]:
    """Every installed simulator that offers a demo, by name: what `archiver demo --platform
    all` archives, one account each."""
    simulators = installed_simulators()
    return [simulators[name] for name in sorted(simulators) if has_demo(simulators[name])]
