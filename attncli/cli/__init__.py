"""The command line: Typer commands that parse options, call the library and render.

``entry`` (the console script) installs the signal handlers first, then imports the
commands: a Ctrl-C while Typer and Rich load still ends with one line and exit 130."""

from __future__ import annotations

__all__ = ["app", "entry", "main"]


def entry() -> None:
    from attncli import stop

    stop.install()
    try:
        from attncli.cli.app import entry as run_entry
    except stop.Interrupted as exc:
        stop.exit_now(exc)
    run_entry()


def __getattr__(name: str) -> object:  # object, as attncli's own: no typing import at start-up
    if name in ("app", "main"):
        from attncli.cli import app as module

        return getattr(module, name)
    raise AttributeError(f"module 'attncli.cli' has no attribute {name!r}")
