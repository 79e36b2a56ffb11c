"""Process memory tuning that must happen before the first thread starts."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("deskclone.memory")

# glibc's mallopt parameter number for the arena limit (malloc.h: M_ARENA_MAX).
M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas. By default each thread that allocates may get an arena of
    its own (up to 8 per core), and the worker has dozens of threads: its activity pool and
    the Temporal core's runtime. Memory freed in one arena is not reused by another, so the
    worker's resident size grew with the threads rather than with the mailboxes
    (docs/benchmarks.md §3). Returns False where the C library is not glibc (nothing done)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    done = bool(mallopt(M_ARENA_MAX, arenas))
    if not done:
        log.warning("could not cap malloc arenas at %d", arenas)
    return done
