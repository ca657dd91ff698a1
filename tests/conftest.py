"""Shared helpers: run the CLI in-process through Typer's test runner, or as a real
console script in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attncli.cli.app import main


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


def cli(*args: str, input: str | bytes | None = None) -> Ran:
    """Call the console-script entry point in-process, as Typer's runner isolates it."""
    runner = CliRunner()
    with runner.isolation(input=input) as (out, err, _):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        stdout, stderr = out.getvalue(), err.getvalue()
    return Ran(code, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"))


def script(
    *args: str, input: bytes | str | None = None, env: dict | None = None, cwd=None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run the installed ``attncli`` console script in a subprocess."""
    exe = Path(sys.executable).with_name("attncli")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "attncli"]
    full_env = {**os.environ, **(env or {})}
    data = input.encode() if isinstance(input, str) else input
    return subprocess.run(
        cmd + [str(a) for a in args], input=data, capture_output=True, env=full_env, cwd=cwd, timeout=timeout
    )


def one_error_line(stderr: str) -> str:
    """The error output is exactly one line starting with ``error:``; return it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got: {stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Every test runs in its own folder, so attn_out/ lands there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
    yield
