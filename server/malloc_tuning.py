"""Large buffers go back to the operating system when freed (glibc's malloc; a no-op elsewhere).

glibc serves an allocation above its mmap threshold (128 KiB) with its own mapping, unmapped when
freed. But the threshold is dynamic: each such free raises it to the freed size, up to 32 MiB. After
one 19 MiB image had come and gone, the next ones were carved from the heap, which glibc rarely
hands back while small objects live above them: the process kept the peak of a media burst for good
(issue #20 saw 1.5 GB ten seconds after one request). Setting the threshold fixes it, which turns
the dynamic raise off: buffers of MMAP_THRESHOLD bytes or more are mapped and unmapped, every time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["MMAP_THRESHOLD", "return_large_buffers"]

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
MMAP_THRESHOLD = 1024 * 1024


def return_large_buffers() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD; False where that is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # musl and others have no mallopt: their allocators already unmap
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
