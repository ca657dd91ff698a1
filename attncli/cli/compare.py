"""`attncli compare`: run the sentence under each setting, draw one figure, print a table
(or one JSON line per setting)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from attncli.cli import flow
from attncli.cli.output import emit_line, warn

if TYPE_CHECKING:
    from attncli.cli.inputs import Sentence
    from attncli.core.result import AttentionResult
    from attncli.core.settings import Settings
    from attncli.figures.style import Style


@dataclass(frozen=True)
class CompareViews:
    style: Style
    out: Path
    head: int = 1
    plot: bool = True
    json: bool = False
    quiet: bool = False
    clean: bool = False


def compare_results(
    text: Optional[str], encoding: str, base: Settings, lists: dict[str, list[Any]], views: CompareViews
) -> None:
    """Every sentence under every setting: the figure, then a table or JSON lines."""
    from attncli.core import pipeline
    from attncli.core.compare import compare

    loop = flow.Loop(
        quiet=views.quiet or views.json, out=views.out if views.plot else None, clean=views.clean, command="compare"
    )
    flow.each_result(
        text,
        encoding,
        lambda sentence, progress: compare(sentence.text, base, lists, progress),
        lambda results, sentence, console: deliver(results, sentence, views, console),
        loop,
        prefetch=lambda block, progress: pipeline.prefetch([s.text for s in block], base, progress),
        warnings=lambda results: dict.fromkeys(w for _, r in results for w in r.warnings),
    )


def deliver(
    results: list[tuple[str, AttentionResult]], sentence: Sentence, views: CompareViews, console: Any
) -> list[str]:
    from attncli.core.stats import head_stats
    from attncli.export import dumps, to_json

    head = views.head
    if head not in results[0][1].heads:
        from attncli.errors import AttnError

        raise AttnError(f"--head {head}: the run has {results[0][1].dims.heads} (count from 1)")
    files: list[str] = []
    if views.plot:
        from attncli.figures.compare import compare_figure

        notes: list[str] = []
        files.append(str(compare_figure(results, views.out, views.style, head, sentence.index, notes=notes)))
        for note in notes:
            warn(note)
    if views.json:
        for name, result in results:
            obj = to_json(result, files, stats=head_stats(result))
            obj["setting"] = {
                "label": name,
                "norm": result.norm,
                "causal": result.causal,
                "temperature": result.settings.temperature if result.settings else 1.0,
            }
            emit_line(dumps(obj))
    elif views.quiet:
        for f in files:
            emit_line(f)
    else:
        console.print(table(results, head))
        from rich.text import Text

        for f in files:
            console.print(Text(f"wrote {f}"))
    return files


def table(results: list[tuple[str, AttentionResult]], head: int) -> Any:
    """One row per setting: how spread out query j's weights are."""
    from rich.table import Table
    from rich.text import Text

    from attncli.core.stats import head_stats

    first = results[0][1]
    t = Table(title=Text(f"{first.text!r}: head {head} under each setting"), title_justify="left", header_style="bold")
    for col in ("setting", "entropy mean", "max weight", "→ self", "→ previous", "→ first"):
        t.add_column(col, justify="left" if col == "setting" else "right", no_wrap=True)
    for name, result in results:
        s = head_stats(result)[result.heads.index(head)]
        t.add_row(
            Text(name),
            f"{s['entropy_mean']:.3f}",
            f"{s['max_weight']:.3f}",
            f"{s['self']:.1%}",
            f"{s['previous']:.1%}",
            f"{s['first']:.1%}",
        )
    return t
