"""glibc's heap, set for generation's scratch tensors, and handed back when the model is idle.

Reading prompts makes and frees tens of MB of scratch tensors per layer. glibc's defaults
hand much of it back to the system at once (a fresh mapping per large tensor, and the top of
each thread's heap trimmed on free), so the next layer's tensors fault in new, zeroed pages:
a 30-row admission of lead-ins faulted 110-270 thousand pages (0.4-1 GB), and a burst of 30
spent 0.71-0.78 s of its ~4.7 CPU seconds in the kernel. Tensors up to 32 MB now come from
the heap and up to 128 MB of freed memory stays there for the next ones (138-157 thousand
faults, 0.40-0.50 s; bench_slack, traced). What a round kept is handed back once the
generator is idle (`return_freed_memory`), so memory between rounds is lower than before:
eight answers to 1,900-token prompts left a bare generator at 1.7-2.0 GB until the next long
round, now at 1.1 GB.

Only on glibc, and not where the operator set glibc's malloc variables themselves.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os

__all__ = ["keep_scratch_memory", "return_freed_memory"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
LARGEST_FROM_HEAP = 32 << 20  # bytes: a larger tensor is mapped on its own, and handed back when freed
FREE_KEPT = 128 << 20  # bytes of freed memory a heap keeps for the next tensors
_OPERATOR_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc's, or not glibc at all
        return libc
    except (OSError, AttributeError):
        return None


@functools.cache
def keep_scratch_memory() -> bool:
    """Set the heap for scratch tensors (once per process); whether it was set."""
    libc = _libc()
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if libc is None or any(name in os.environ for name in _OPERATOR_SETTINGS) or "glibc.malloc." in tunables:
        return False
    done = bool(libc.mallopt(_M_MMAP_THRESHOLD, LARGEST_FROM_HEAP)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, FREE_KEPT))
    log.debug("heap kept for scratch tensors: %s", done)
    return done


def return_freed_memory() -> None:
    """Hand the heap's freed memory back to the system (a no-op off glibc)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
