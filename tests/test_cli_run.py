"""`attncli run` end to end through the test runner: trace, figures, JSON, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, one_error_line

SENTENCE = "The cat sat on the mat ."


def test_run_prints_the_trace_and_writes_one_heatmap():
    ran = cli("run", SENTENCE)
    assert ran.code == 0, ran.stderr
    assert "8×7" in ran.stdout and "7×7" in ran.stdout
    assert "r×n → q×n → n×n → v×n" in ran.stdout
    assert "8×7 → 8×7 → 7×7 → 8×7" in ran.stdout
    assert Path("attn_out/head_1.png").is_file()
    assert not Path("attn_out/heads.png").exists()


def test_two_heads_write_two_heatmaps_and_the_grid_with_per_head_shapes():
    ran = cli("run", SENTENCE, "-H", "2")
    assert ran.code == 0, ran.stderr
    for name in ("head_1.png", "head_2.png", "heads.png"):
        assert (Path("attn_out") / name).is_file()
    assert "4×7" in ran.stdout
    assert "8×7 → 4×7 → 7×7 → 4×7 → 8×7" in ran.stdout


def test_json_is_the_only_thing_on_stdout_and_columns_sum_to_one():
    ran = cli("run", SENTENCE, "-H", "3", "--json")
    assert ran.code == 0, ran.stderr
    obj = json.loads(ran.stdout)
    assert obj["n"] == 7 and obj["tokens"][0] == "The"
    assert obj["dims"] == {"r": 8, "q": 2, "v": 2, "heads": 3}
    assert [s["name"] for s in obj["trace"]][:2] == ["I", "Wq_1"]
    assert {s["symbolic"] for s in obj["trace"]} >= {"r×n", "q×r", "q×n", "n×n", "v×n"}
    for head in obj["heads"]:
        assert np.allclose(np.array(head["A_prime"]).sum(axis=0), 1.0)
    assert np.array(obj["O"]).shape == (8, 7)
    assert obj["files"] == [f"attn_out/head_{h}.png" for h in (1, 2, 3)] + ["attn_out/heads.png"]


def test_same_seed_gives_identical_bytes_and_another_seed_other_numbers(tmp_path):
    a = cli("run", SENTENCE, "-H", "2", "--json", "-o", "a")
    b = cli("run", SENTENCE, "-H", "2", "--json", "-o", "b")
    c = cli("run", SENTENCE, "-H", "2", "--json", "-o", "c", "--seed", "1")
    ja, jb, jc = (json.loads(x.stdout) for x in (a, b, c))
    del ja["files"], jb["files"], jc["files"]
    assert ja == jb
    assert ja["heads"][0]["A_prime"] != jc["heads"][0]["A_prime"]
    for name in ("head_1.png", "head_2.png", "heads.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()


def test_causal_no_scale_and_norms_change_values_not_shapes():
    base = json.loads(cli("run", SENTENCE, "--json", "--no-plot").stdout)
    for extra in (
        ["--causal"],
        ["--no-scale"],
        ["--norm", "relu"],
        ["--norm", "sparsemax"],
        ["--positions", "sinusoidal"],
    ):
        other = json.loads(cli("run", SENTENCE, "--json", "--no-plot", *extra).stdout)
        assert other["dims"] == base["dims"]
        assert other["heads"][0]["A_prime"] != base["heads"][0]["A_prime"], extra
    causal = json.loads(cli("run", SENTENCE, "--json", "--no-plot", "--causal").stdout)
    A = causal["heads"][0]["A"]
    assert A[1][0] is None  # key 2 is masked for query 1: null in JSON, never -Infinity


def test_values_prints_every_matrix_with_token_labels():
    ran = cli("run", "a b c", "--values", "--no-plot", "-H", "2")
    assert ran.code == 0
    for title in ("I = [a^1 … a^n]", "Q_1 = W^q_1 I", "A'_2", "O = W^o"):
        assert title in ran.stdout


def test_no_plot_writes_nothing():
    assert cli("run", SENTENCE, "--no-plot").code == 0
    assert not Path("attn_out").exists()


def test_q_and_v_dims_and_dim_options():
    obj = json.loads(
        cli("run", SENTENCE, "-r", "12", "-H", "3", "--q-dim", "5", "--v-dim", "2", "--json", "--no-plot").stdout
    )
    assert obj["dims"] == {"r": 12, "q": 5, "v": 2, "heads": 3}
    assert np.array(obj["O"]).shape == (12, 7)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", ""], "empty"),
        (["run", "   "], "empty"),
        (["run", "a b c d e", "--max-tokens", "4"], "--max-tokens 4"),
        (["run", "a b", "--heads", "0"], "--heads"),
        (["run", "a b", "--q-dim", "0"], "--q-dim"),
        (["run", "a b", "--q-dim", "-3"], "--q-dim"),
        (["run", "a b", "--v-dim", "0"], "--v-dim"),
        (["run", "a b", "--dim", "0"], "--dim"),
        (["run", "a b", "--tokenizer", "nonsense"], "--tokenizer"),
        (["run", "a b", "--norm", "tanh"], "--norm"),
        (["run", "a b", "--positions", "learned"], "--positions"),
        (["run", "a b", "--heads", "x"], "--heads"),
        (["run", "a b", "--no-such-option"], "--no-such-option"),
        (["run", "a b", "-r", "2", "-H", "4"], "--heads 4"),
        (["run", "a b", "--temperature", "0"], "--temperature"),
    ],
)
def test_bad_input_is_one_error_line_exit_2_and_writes_nothing(args, fragment):
    ran = cli(*args)
    assert ran.code == 2, (ran.code, ran.stderr)
    assert fragment in one_error_line(ran.stderr)
    assert ran.stdout == ""
    assert not Path("attn_out").exists()


def test_unwritable_output_is_exit_1(tmp_path):
    Path("blocker").write_text("a file, not a folder")
    ran = cli("run", SENTENCE, "-o", "blocker/sub")
    assert ran.code == 1
    assert "blocker/sub" in one_error_line(ran.stderr)


def test_debug_shows_the_traceback():
    proc = subprocess.run([sys.executable, "-m", "attncli", "run", "", "--debug"], capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_help_imports_neither_matplotlib_nor_tokenizers():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "attncli", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "run" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in ("matplotlib", "tokenizers", "numpy", "safetensors")}
    assert "typer" in imported  # the check would be vacuous if -X importtime printed nothing


def test_version():
    ran = cli("--version")
    assert ran.code == 0 and ran.stdout.startswith("attncli ")


def test_library_use_matches_the_cli():
    from attncli import Settings, run

    result = run(SENTENCE, Settings(heads=2))
    obj = json.loads(cli("run", SENTENCE, "-H", "2", "--json", "--no-plot").stdout)
    assert np.allclose(result.A_prime[0, 1], obj["heads"][1]["A_prime"])


def test_no_command_shows_the_help():
    ran = cli()
    assert ran.code == 0 and "Commands" in ran.stdout and "run" in ran.stdout and ran.stderr == ""


def test_no_text_at_a_terminal_is_a_clear_error():
    import io

    from attncli.cli.inputs import read_sentences
    from attncli.errors import AttnError

    class Tty(io.BytesIO):
        def isatty(self):
            return True

    with pytest.raises(AttnError, match="no text"):
        read_sentences(None, stdin=Tty(b""))


def test_odd_option_values_give_a_result_or_one_error_line():
    """Fuzzed numeric options: exit 0, or exit 2 with one `error:` line; never a crash,
    a NumPy warning on stderr or a file left behind by a refused run."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -1.0, 1e-300, 1e300])
    options = {
        "--dim": st.integers(-3, 600),
        "--heads": st.integers(-2, 40),
        "--q-dim": st.integers(-2, 300),
        "--v-dim": st.integers(-2, 300),
        "--temperature": floats,
        "--norm": st.sampled_from(["softmax", "relu", "sparsemax", "max"]),
        "--seed": st.integers(-(2**70), 2**70),
        "--max-tokens": st.integers(-1, 10),
        "--positions": st.sampled_from(["none", "sinusoidal", "learned"]),
    }
    flags = st.lists(st.sampled_from(["--causal", "--no-scale", "--mean-heads", "--values"]), unique=True)

    @settings(max_examples=int(os.environ.get("ATTNCLI_FUZZ", "80")), deadline=None)
    @given(st.dictionaries(st.sampled_from(sorted(options)), st.just(None), min_size=1, max_size=4), flags, st.data())
    def check(chosen, extra, data):
        args = [a for name in chosen for a in (name, str(data.draw(options[name])))]
        draw = data.draw(st.integers(0, 9)) == 0  # figures for one case in ten: drawing is the slow part
        ran = cli("run", "The cat sat on the mat .", "--json", *args, *extra, *([] if draw else ["--no-plot"]))
        assert ran.code in (0, 2), (args, extra, ran.stderr)
        if ran.code == 2:
            one_error_line(ran.stderr)
            assert ran.stdout == ""
        else:
            assert ran.stderr == "" or ran.stderr.startswith("warning:"), ran.stderr
            json.loads(ran.stdout)

    check()
