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
