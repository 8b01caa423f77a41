"""Exact k nearest neighbours: candidates on the device, exact ranking on the host.

The device takes, per chunk of query rows, float32 squared distances from one matmul
(||a||^2 - 2 a.b + ||b||^2, memory chunk x N) and keeps the k + extra smallest with `lax.top_k`.
That form rounds at the scale of ||a||^2, not of the distance, so near-equal neighbours can swap.
The host then ranks these few candidates by float64 distances in the difference form (exact up
to ~1e-14 relative for float32 inputs), ties to the lower id, and checks that no point outside
the candidates can be nearer: float32 rounding moves a matmul-form distance by at most
`_tol(d) * (||a|| + ||b||)^2`, so a row is certain if its last candidate's float32 distance minus
that bound still exceeds its k-th exact distance. Other rows (rare: duplicates, norms large
against the distances) are redone by a float64 brute force over all points.

scikit-learn's brute force computes in float64 too (float32 inputs are upcast), so its ids are
these ids except where distances tie within float64 rounding; on exact ties its order and even
which tied point it keeps follow its heap, not the id."""
import functools

import jax
import jax.numpy as jnp
import numpy as np


def _tol(dim):
    """Bound on |float32 matmul-form d^2 - d^2| in units of (||a|| + ||b||)^2: the squared norms
    and the (dim + 2)-term dot product each err by at most (dim + 2) * u times their size
    (u = 2^-24, any summation order); doubled to spare."""
    return 2.0 * 2 * (dim + 2) * 2.0 ** -24


@functools.partial(jax.jit, static_argnames=("c", "chunk", "exclude_self"))
def _candidates(x, c, chunk, exclude_self):
    n = x.shape[0]
    sq = jnp.sum(x * x, axis=1, keepdims=True)
    # [a, ||a||^2, 1] . [2b, -1, -||b||^2] = -||a - b||^2: the matmul yields what top_k reads, with
    # no elementwise pass over the chunk x N block (without it: ~1.6x faster on 1 CPU core)
    q = jnp.concatenate([x, sq, jnp.ones_like(sq)], axis=1)
    b = jnp.concatenate([2.0 * x, -jnp.ones_like(sq), -sq], axis=1)
    pad = (-n) % chunk
    rows = jnp.pad(jnp.arange(n), (0, pad)).reshape(-1, chunk)

    def one(r):
        # HIGHEST: full float32 products also on GPU/TPU (the default there may be TF32/bf16)
        neg = jnp.matmul(q[r], b.T, precision=jax.lax.Precision.HIGHEST)
        if exclude_self:  # a point is not its own neighbour
            neg = neg.at[jnp.arange(chunk), r].set(-jnp.inf)
        neg, idx = jax.lax.top_k(neg, c)
        return -neg, idx

    d, idx = jax.lax.map(one, rows)
    return d.reshape(-1, c)[:n], idx.reshape(-1, c)[:n]


def _rank(d2, ids):
    """Sort each row by (distance, id)."""
    o = np.lexsort((ids, d2), axis=-1)
    return np.take_along_axis(d2, o, 1), np.take_along_axis(ids, o, 1)


def knn(x, k, *, chunk=1024, exclude_self=True, extra=None):
    """(distances [N, k] float32, ids [N, k]) of each row's k nearest rows of x (Euclidean),
    nearest first, ties to the lower id. exclude_self: each row's own index is left out (the kNN
    graph). extra: candidates beyond k taken on the device (default k); only speed depends on it."""
    x = np.ascontiguousarray(x, np.float32)
    n, dim = x.shape
    chunk = int(min(chunk, n))
    others = n - (1 if exclude_self else 0)
    if not 0 < k <= others:
        raise ValueError(f"k={k} must be in [1, N{' - 1' if exclude_self else ''}] for N={n}")
    c = min(k + (k if extra is None else extra), others)
    f, ids = (np.asarray(a) for a in _candidates(jnp.asarray(x), c, chunk, exclude_self))
    d2 = np.empty(ids.shape)
    for s in range(0, n, 256):  # small blocks: the gathered candidates (256 x c x dim) stay in cache
        diff = np.subtract(x[ids[s:s + 256]], x[s:s + 256, None, :], dtype=np.float64)
        d2[s:s + 256] = np.einsum("ijk,ijk->ij", diff, diff)
    d2, ids = _rank(d2, ids)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    bound = _tol(dim) * (norm + norm.max()) ** 2
    unsure = np.flatnonzero(f[:, -1] - bound <= d2[:, k - 1]) if c < others else []
    for i in unsure:  # exact brute force for the rows the certificate does not cover
        diff = np.subtract(x, x[i], dtype=np.float64)
        e = np.einsum("ij,ij->i", diff, diff)
        if exclude_self:
            e[i] = np.inf
        o = np.lexsort((np.arange(n), e))[:c]
        d2[i], ids[i] = e[o], o
    return np.sqrt(d2[:, :k]).astype(np.float32), ids[:, :k]
