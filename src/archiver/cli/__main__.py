"""`python -m archiver.cli`: the `archiver` command (service units written by every version run it so)."""

from archiver.cli.main import main

main()
