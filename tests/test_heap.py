"""glibc told to keep freed arrays for reuse (attncli.core.heap): set for a command's
process unless the user tunes malloc, and then the memory of a freed array of a few MiB is
handed out again instead of being returned to the system and faulted in afresh."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from attncli.core.heap import USER_SETTINGS, keep_freed_memory

GLIBC = hasattr(os, "confstr") and bool(
    os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names else ""
)


@pytest.mark.parametrize("name", USER_SETTINGS)
def test_a_users_malloc_setting_is_left_alone(monkeypatch, name):
    monkeypatch.setenv(name, "65536")
    assert keep_freed_memory(unless_set=True) is False


FAULTS = """
import resource
import numpy as np
from attncli.core.heap import keep_freed_memory
{call}
np.ones(3 << 20, np.uint8)  # once, to settle glibc's own adaptive thresholds
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = np.ones(3 << 20, np.uint8)  # 3 MiB written, then freed: 768 pages if faulted in afresh
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_freed_arrays_are_reused_not_faulted_in_again():
    """Under a trim threshold of 64 KiB (what Dask's nanny gives its workers) every freed
    3 MiB array goes back to the system; once set, its pages are used again."""
    env = {**{k: v for k, v in os.environ.items() if k not in USER_SETTINGS}, "MALLOC_TRIM_THRESHOLD_": "65536"}

    def faults(call: str) -> int:
        code = FAULTS.format(call=call)
        return int(
            subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
        )

    assert faults("pass") > 20 * 500
    assert faults("assert keep_freed_memory()") < 20 * 50


SHOW = """
import os, sys
from attncli.cli.process import DEFAULTS, short_lived
sys.argv = ["attncli", "tokens", "x"]
short_lived(lambda: print(" ".join(os.environ.get(k, "-") for k in sorted(DEFAULTS))))
"""


def test_a_commands_process_gets_its_defaults_and_keeps_the_users():
    """Ordinary pages for numpy and OpenBLAS threads that sleep when idle (both read when
    numpy loads), unless the user set them."""
    from attncli.cli.process import DEFAULTS

    base = {k: v for k, v in os.environ.items() if k not in DEFAULTS}

    def shown(**env: str) -> str:
        proc = subprocess.run([sys.executable, "-c", SHOW], env={**base, **env}, capture_output=True, text=True)
        return proc.stdout.strip()

    assert shown() == " ".join(DEFAULTS[k] for k in sorted(DEFAULTS)) == "0 4"
    assert shown(NUMPY_MADVISE_HUGEPAGE="1", OPENBLAS_THREAD_TIMEOUT="28") == "1 28"
