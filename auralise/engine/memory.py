"""Process memory behaviour for the big temporaries of a projection.

A deconvnet pass allocates temporaries of hundreds of MB (a batch of features at full resolution). glibc serves
those with fresh ``mmap`` pages and unmaps them on free, so every allocation page-faults and the kernel zeroes the
pages again; that can double a long run. :func:`reuse_freed_memory` keeps freed memory in the heap instead.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_MALLOC_LOCK = threading.Lock()
_MALLOC_USERS = 0


@contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """While inside, ask glibc's malloc to keep freed memory for reuse instead of giving it back to the system.

    A deconvnet pass allocates temporaries of hundreds of MB (a batch of features at full resolution, 64 maps).
    glibc serves those with fresh ``mmap`` pages and unmaps them on free, so every allocation page-faults and the
    kernel zeroes it again: that more than doubled the study's run time. Disabling ``mmap`` for allocations and
    raising the trim threshold keeps the memory in the heap for the next signal. The defaults are restored and the
    heap trimmed on exit. A no-op where the C library is not glibc.
    """
    global _MALLOC_USERS
    libc = None
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            lib = ctypes.CDLL(None)
            if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim") and hasattr(lib, "gnu_get_libc_version"):
                libc = lib
        except OSError:  # pragma: no cover
            libc = None
    if libc is None:  # pragma: no cover
        yield
        return
    m_trim_threshold, m_mmap_max = -1, -4
    with _MALLOC_LOCK:
        if _MALLOC_USERS == 0:
            libc.mallopt(m_mmap_max, 0)
            libc.mallopt(m_trim_threshold, 2**31 - 1)
        _MALLOC_USERS += 1
    try:
        yield
    finally:
        with _MALLOC_LOCK:
            _MALLOC_USERS -= 1
            if _MALLOC_USERS == 0:
                libc.mallopt(m_mmap_max, 65536)  # glibc's defaults
                libc.mallopt(m_trim_threshold, 128 * 1024)
                libc.malloc_trim(0)
