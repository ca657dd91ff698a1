"""`attncli explain`: one query's steps, for a run or a checkpoint's layer, as tables,
JSON or (``-o DIR``) slide figures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from attncli.cli import flow
from attncli.cli.output import emit_line, warn

if TYPE_CHECKING:
    from attncli.cli.inputs import Sentence
    from attncli.core.result import AttentionResult
    from attncli.figures.style import Style


@dataclass(frozen=True)
class ExplainViews:
    """What `explain` shows of each sentence."""

    query: int
    head: int
    precision: int = 3
    json: bool = False
    out: Optional[Path] = None  # slide figures go here when given
    style: Optional[Style] = None
    clean: bool = False


def explain_results(
    text: Optional[str],
    encoding: str,
    compute: Callable[[Sentence, Any], AttentionResult],
    views: ExplainViews,
    *,
    fail_fast: bool = False,
    prefetch: Optional[Callable[[list[Sentence], Any], None]] = None,
) -> None:
    """Read → compute → explain query j of head h → tables, JSON and figures."""
    loop = flow.Loop(quiet=views.json, out=views.out, clean=views.clean, command="explain")

    def deliver(result: AttentionResult, sentence: Sentence, console: Any) -> list[str]:
        return explain_one(result, sentence, views, console)

    flow.each_result(text, encoding, compute, deliver, loop, fail_fast=fail_fast, prefetch=prefetch)


def explain_one(result: AttentionResult, sentence: Sentence, views: ExplainViews, console: Any) -> list[str]:
    """One sentence: the explanation, its figures, then JSON or the tables."""
    from attncli.core.explain import explain
    from attncli.export import dumps, explain_json

    e = explain(result, views.query, views.head)
    files: list[str] = []
    if views.out is not None and views.style is not None:
        from attncli.figures.explain import explain_figures
        from attncli.files import ensure_dir

        notes: list[str] = []
        files = [str(p) for p in explain_figures(e, ensure_dir(views.out), views.style, sentence.index, notes=notes)]
        for note in notes:
            warn(note)
    if views.json:
        obj = explain_json(e)
        if files:
            obj["files"] = files
        emit_line(dumps(obj))
        return files
    from rich.text import Text

    from attncli.show.explain import print_explanation

    print_explanation(console, e, views.precision)
    for f in files:
        console.print(Text(f"wrote {f}"))
    return files
