"""The command line: Typer commands that parse options, call the library and render."""

from attncli.cli.app import app, entry, main

__all__ = ["app", "entry", "main"]
