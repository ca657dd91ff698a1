"""Start-up and one run, each as a ratio against a floor measured in the same run.

    python bench/bench_core.py

1. `attncli --help` against `python -c "import typer"`      target: ratio <= 1.5
2. `attncli run` of a 12-token sentence with 8 heads to PNGs against a plain
   matplotlib script that saves the same 8 heatmaps          target: ratio <= 1.0
"""

import tempfile

from common import HERE, PY, attncli_cmd, compare

SENTENCE = "The quick brown fox jumps over the lazy dog near the river"

if __name__ == "__main__":
    attncli = attncli_cmd()
    compare(
        "start-up (attncli --help)",
        attncli + ["--help"],
        [PY, "-c", "import typer"],
        repeats=15,
        target="(target <= 1.5)",
    )
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        compare(
            "run, 12 tokens, 8 heads, PNG",
            attncli + ["run", SENTENCE, "-H", "8", "-q", "-o", a],
            [PY, str(HERE / "plain_heatmaps.py"), b],
            repeats=5,
            target="(target <= 1.0)",
        )
