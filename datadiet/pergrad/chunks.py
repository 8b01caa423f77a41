"""Run a jitted per-example function over a dataset in fixed-size chunks, sharded over devices.

Every chunk has the same shape (the last one is padded with zeros and trimmed after),
so each jitted function compiles once per (model, chunk size). Each chunk's batch axis is split
over the 1-D "data" mesh of `datadiet.parallel.data_mesh()` with a NamedSharding; the parameters
and BatchNorm statistics are replicated once, up front. Per-example work needs no communication
(eval-mode BatchNorm): XLA's SPMD partitioner runs each device's share of the chunk locally.
The functions also work when called inside `jax.jit` (x traced): the chunks then become
consecutive sub-computations of the caller's program.
"""
from __future__ import annotations

from typing import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from datadiet import parallel
from datadiet.data import pipeline
from datadiet.training import evaluate


def check_chunk_size(chunk_size) -> int:
    if (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
            or chunk_size < 1):
        raise ValueError(f"chunk_size={chunk_size!r} must be a positive integer")
    return int(chunk_size)


def chunk_length(n: int, chunk_size: int) -> int:
    """min(chunk_size, n) rounded up to a multiple of the device count."""
    return evaluate.chunk_length(n, check_chunk_size(chunk_size), jax.device_count())


def iter_chunks(fn: Callable, replicated, x, y,
                chunk_size: int) -> Iterator[tuple[int, int, object]]:
    """Yields (start, stop, fn(*replicated, x_chunk, y_chunk) trimmed to stop - start rows).

    `replicated` is a tuple of pytrees (parameters, statistics, ...) passed to every call;
    `fn` must be row-wise (row i of its outputs depends on row i of x and y only).
    """
    n = int(np.shape(x)[0])
    if int(np.shape(y)[0]) != n:
        raise ValueError(f"x has {n} examples but y has {np.shape(y)[0]}")
    if n == 0:
        return
    length = chunk_length(n, chunk_size)
    mesh = parallel.data_mesh()
    replicated = parallel.replicate(replicated, mesh, reuse_placed=True)  # nothing donates them
    for start in range(0, n, length):
        stop = min(start + length, n)
        xc = parallel.put_global(evaluate.pad_rows(jnp.asarray(x[start:stop]), length), mesh, 0,
                                 reuse_placed=True)
        yc = parallel.put_global(evaluate.pad_rows(jnp.asarray(y[start:stop]).astype(jnp.int32),
                                                   length), mesh, 0, reuse_placed=True)
        out = fn(*replicated, xc, yc)
        if stop - start < length:
            out = jax.tree.map(lambda a: a[: stop - start], out)
        yield start, stop, out


def map_chunks(fn: Callable, replicated, x, y, chunk_size: int):
    """fn over all chunks, outputs concatenated along the batch axis (leaf by leaf)."""
    outs = [out for _, _, out in iter_chunks(fn, replicated, x, y, chunk_size)]
    if not outs:
        raise ValueError("x holds no examples")
    if len(outs) == 1:
        return outs[0]
    return jax.tree.map(lambda *a: jnp.concatenate(a), *outs)


def map_host_chunks(fn: Callable, replicated, x, y, chunk_size: int):
    """map_chunks for inputs kept on the host (data.pipeline = "host"): each process reads only
    its rows of every chunk (data/pipeline.py); the outputs come back to the host, in source
    order."""
    mesh = parallel.data_mesh()
    replicated = parallel.replicate(replicated, mesh, reuse_placed=True)
    return pipeline.map_source_chunks(fn, replicated, x, y, chunk_length(len(y), chunk_size), mesh)
