"""Process behaviour for long projections: memory for the big temporaries, threads for numpy's BLAS.

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


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """While inside, numpy's BLAS (OpenBLAS) runs each call on one thread (``threadpoolctl``); torch's own threads
    are untouched.

    An export's writer threads map each feature to the STFT grid with a matrix product (a mel front-end's pseudo-
    inverse), while the projection keeps both cores busy: OpenBLAS then split every small product over its own
    threads, which spun and queued behind its lock. One thread per call gives the same numbers (OpenBLAS splits
    rows and columns, not the sums), and the MTT_vgg export took 53 s instead of 63 s (94 CPU-s instead of 114).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
