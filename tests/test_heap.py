"""The heap setting for generation's scratch tensors: made once per process on glibc, and
left alone where the operator set glibc's malloc variables (adapters_lora.heap)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CHECK = "from adapters_lora.heap import keep_scratch_memory as keep; print(keep(), keep())"
GLIBC = platform.libc_ver()[0] == "glibc"


def settings_made(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", CHECK], env={**clean, **env}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only")
def test_the_heap_is_set_once_per_process_on_glibc() -> None:
    assert settings_made() == "True True"


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only")
def test_an_operators_own_malloc_settings_are_left_alone() -> None:
    assert settings_made(MALLOC_TRIM_THRESHOLD_="1048576") == "False False"
    assert settings_made(MALLOC_MMAP_THRESHOLD_="1048576") == "False False"
    assert settings_made(GLIBC_TUNABLES="glibc.malloc.trim_threshold=1048576") == "False False"
    assert settings_made(GLIBC_TUNABLES="glibc.rtld.optional_static_tls=2048") == "True True"  # not malloc's


RETAINED = """
from adapters_lora.heap import keep_scratch_memory, return_freed_memory
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
keep_scratch_memory()
scratch = [bytearray(1 << 20) for _ in range(96)]  # 96 MB of tensors-to-be, below what the heap keeps
before = rss_mb()
del scratch
kept = rss_mb()
return_freed_memory()
print(before, kept, rss_mb())
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only")
def test_freed_scratch_stays_in_the_heap_until_handed_back() -> None:
    done = subprocess.run([sys.executable, "-c", RETAINED], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    before, kept, returned = map(int, done.stdout.split())
    assert kept > before - 16  # freed, but kept for the next tensors
    assert returned < kept - 80  # handed back once the generator is idle
