"""The shape of the code, as claims: core → result → views → cli with no upward import and
no cycle; every view works on a `run` result and a `model` result alike; small signatures."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import write_bert
from rich.console import Console

PACKAGE = Path(__file__).resolve().parents[1] / "attncli"

# the layers, lowest first; a module may import from its own layer or a lower one
LAYERS = {
    "core": ["attncli.errors", "attncli.limits", "attncli.stop", "attncli.core"],
    "views": [
        "attncli.labels",
        "attncli.files",
        "attncli.view",
        "attncli.export",
        "attncli.export_stream",
        "attncli.show",
        "attncli.figures",
        "attncli.html",
    ],
    "cli": ["attncli.cli", "attncli.__main__"],
}
ORDER = ["core", "views", "cli"]


def layer_of(module: str) -> str | None:
    for layer, prefixes in LAYERS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return layer
    return None


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    known = modules()
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("attncli"):
            subs = {f"{node.module}.{a.name}" for a in node.names} & known.keys()
            found.update(subs if len(subs) == len(node.names) else subs | {node.module})
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("attncli"))
    return {m for m in found if m in known}


def test_no_module_imports_a_higher_layer():
    """core imports no view and no CLI; views import no CLI (inside functions too)."""
    upward = []
    for name, path in modules().items():
        mine = layer_of(name)
        if mine is None:
            continue
        for target in imports(path):
            theirs = layer_of(target)
            if theirs is not None and ORDER.index(theirs) > ORDER.index(mine):
                upward.append(f"{name} → {target}")
    assert not upward, upward


def test_every_module_has_a_layer():
    assert [m for m in modules() if m != "attncli" and layer_of(m) is None] == []


def test_module_level_imports_have_no_cycle():
    graph = {name: imports(path, top_level_only=True) - {name} for name, path in modules().items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " → ".join(trail + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_no_function_takes_more_than_six_positional_parameters():
    wide = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                params = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                if len(params) > 6:
                    wide.append(f"{name}.{node.name} ({len(params)})")
    assert not wide, wide


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The same kind of result from both commands: a run and a checkpoint."""
    from attncli.core.models.forward import run_model
    from attncli.core.pipeline import run
    from attncli.core.settings import Settings

    folder = tmp_path_factory.mktemp("m") / "bert"
    write_bert(folder)
    text = "the cat sat on the mat ."
    return {
        "run": run(text, Settings(heads=2)),
        "model": run_model(folder, text, layers=[1, 2], heads=[1, 3], mean_heads=True, rollout=True),
    }


@pytest.mark.parametrize("kind", ["run", "model"])
def test_every_view_reads_a_run_and_a_model_result(results, kind, tmp_path):
    """One function per view, no per-command code: each holds the result's own numbers."""
    from attncli.core.stats import head_stats
    from attncli.export import arrays, dumps, to_json
    from attncli.figures.select import figures
    from attncli.figures.style import Style
    from attncli.show.preview import preview
    from attncli.show.tables import print_result
    from attncli.view import Shown

    result = results[kind]
    pairs = result.pairs()
    stats = head_stats(result)
    assert [(s.get("layer", 1), s["head"]) for s in stats] == pairs

    obj = json.loads(dumps(to_json(result, [], stats=stats, mean_heads=True)))
    if result.is_model:
        got = [np.array(h["A_prime"]) for layer in obj["layers"] for h in layer["heads"]]
    else:
        got = [np.array(h["A_prime"]) for h in obj["heads"]]
    want = [result.matrix("A_prime", l, h) for l, h in pairs]
    assert all(np.allclose(g, w, atol=1e-6) for g, w in zip(got, want)) and len(got) == len(want)

    z = arrays(result, mean_heads=True)
    assert np.allclose(np.asarray(z["A_prime"]).reshape(-1, result.n, result.n), np.stack(want))

    console = Console(width=200, record=True, color_system=None)
    print_result(console, result, values=True, stats=stats)
    preview(console, Shown(result), Style())
    text = console.export_text()
    assert "dimension trace" in text and "r×n → q×n → n×n → v×n" in text

    files = figures(Shown(result), tmp_path, Style(), mean_heads=True)
    stems = {p.stem for p in files}
    per_head = {f"layer_{l}_head_{h}" if result.is_model else f"head_{h}" for l, h in pairs}
    assert per_head <= stems and ("model" if result.is_model else "heads") in stems
    assert all(p.stat().st_size > 0 for p in files)
