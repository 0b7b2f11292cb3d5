"""Arrow's memory pool for run processes: jemalloc, returning freed memory to the system at once.

Arrow's default pool here (mimalloc) keeps the blocks a streaming load frees, so a step's resident
memory settles tens of MB above the data it holds (bench/bench_mysql.py: a 2M-row mirror step peaked
at 302 MB with mimalloc, 276 MB with jemalloc and immediate decay). A pool named in
``ARROW_DEFAULT_MEMORY_POOL`` is left alone, as is a pyarrow built without jemalloc.
"""

import os

import pyarrow as pa


def use_returning_pool() -> None:
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(0)
    except NotImplementedError:
        return
    pa.set_memory_pool(pool)
