"""The README's option tables and each command's --help name the same options, both ways,
so they cannot drift apart again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from attncli.cli.app import app

README = Path(__file__).resolve().parents[1] / "README.md"
COMMANDS = ["run", "explain", "model", "tokens", "compare", "survey"]


def readme_options(command: str) -> set[str]:
    """Every option named in the first column of the README's "`command` options" table."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"### `{command}` options")
    lines = text[start:].splitlines()[1:]
    table = []
    for line in lines:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    found: set[str] = set()
    for line in table[2:]:
        first = re.split(r"(?<!\\)\|", line)[1]
        for span in re.findall(r"`([^`]+)`", first):
            for word in re.split(r"[\s,/]+", span):
                if re.fullmatch(r"--?[A-Za-z][\w-]*", word):
                    found.add(word)
    return found


def help_options(command: str) -> set[str]:
    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    names = {o for p in cmd.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)}
    return names - {"-h", "--help"}


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_table_lists_exactly_the_options_of_help(command):
    in_readme, in_help = readme_options(command), help_options(command)
    assert not in_readme - in_help, f"README lists options {command} does not have"
    assert not in_help - in_readme, f"{command} --help has options the README does not list"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_mentions_no_option_the_command_lacks(command):
    from conftest import cli

    text = cli(command, "--help").stdout
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", text))
    assert mentioned <= help_options(command) | {"--help"}, mentioned - help_options(command)
    assert "{" not in text.splitlines()[0]  # usage: DIR, not {DIR}
    assert "--debug" in text


def test_commands_table_lists_every_command():
    text = README.read_text(encoding="utf-8")
    for command in typer.main.get_command(app).commands:  # type: ignore[attr-defined]
        assert f"`attncli {command}" in text
