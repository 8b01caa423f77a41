"""Exact k nearest neighbours on the device. Squared distances come from one matmul per chunk
of query rows (||a||^2 - 2 a.b + ||b||^2), so memory is chunk x N; `lax.top_k` on the negated
distances picks the k smallest, and ties go to the lower index (top_k keeps the earlier of
equal values), as scikit-learn's brute-force search does."""
import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.partial(jax.jit, static_argnames=("k", "chunk", "exclude_self"))
def _knn(x, k, chunk, exclude_self):
    n = x.shape[0]
    sq = jnp.sum(x * x, axis=1)
    pad = (-n) % chunk
    rows = jnp.pad(jnp.arange(n), (0, pad)).reshape(-1, chunk)

    def one(r):
        d = sq[r][:, None] - 2.0 * (x[r] @ x.T) + sq[None, :]
        d = jnp.maximum(d, 0.0)
        if exclude_self:  # a point is not its own neighbour
            d = d.at[jnp.arange(chunk), r].set(jnp.inf)
        neg, idx = jax.lax.top_k(-d, k)
        return -neg, idx

    d, idx = jax.lax.map(one, rows)
    return jnp.sqrt(d.reshape(-1, k)[:n]), idx.reshape(-1, k)[:n]


def knn(x, k, *, chunk=1024, exclude_self=True):
    """(distances [N, k], ids [N, k]) of each row's k nearest rows of x (Euclidean), nearest
    first. exclude_self: each row's own index is left out (the kNN graph)."""
    x = jnp.asarray(x, jnp.float32)
    chunk = int(min(chunk, x.shape[0]))
    if not 0 < k < x.shape[0] + (0 if exclude_self else 1):
        raise ValueError(f"k={k} must be in [1, N{' - 1' if exclude_self else ''}] for N={x.shape[0]}")
    d, idx = _knn(x, k, chunk, exclude_self)
    return np.asarray(d), np.asarray(idx)
