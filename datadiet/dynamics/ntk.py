"""Empirical neural tangent kernel on a group of examples, kernel distance, NTK velocity.

    ntk_gram(graphdef, params, batch_stats, x, *, trace=False, chunk_size=16)
        -> [n*C, n*C] (row i*C + c: example i, logit c), or [n, n] with trace=True
    kernel_distance(K1, K2) -> 1 - <K1, K2>_F / (||K1||_F ||K2||_F)
    ntk_velocity(graphdef, (params_t, stats_t), (params_u, stats_u), x, groups, ...)
        -> one kernel distance per group
    score_groups(scores, group_size, *, n_groups=None, percentiles=None, seed=0)
        -> [G, group_size] example ids

K = J J^T with J the Jacobian of the logits f(w, x_i) (BatchNorm in eval mode: running
statistics, so row i depends on example i alone) with respect to every trainable parameter;
`trace=True` gives sum_c K[(i, c), (j, c)]. `(graphdef, params, batch_stats) = nnx.split(model,
nnx.Param, nnx.BatchStat)`; x are normalised inputs.

Memory: the group is cut into chunks of `chunk_size` examples (padded to one fixed shape, so the
two jitted kernels compile once per model and chunk size) and each block J_a J_b^T is a sum of
per-parameter-leaf contractions of two chunks' Jacobians: at most 2 x chunk_size x C x P floats
are held, never the group's n x C x P (nor any concatenation of all parameters). The price is
recomputing Jacobians: m chunks cost m (m + 1) / 2 chunk Jacobians, so use the largest chunk
that fits (one chunk for the whole group costs one Jacobian).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from datadiet import parallel
from datadiet.pergrad.chunks import check_chunk_size, chunk_length


def _example_logits(graphdef, params, batch_stats, x1):
    """Logits [C] of ONE example (no batch axis), BatchNorm in eval mode."""
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    return model(x1[None], train=False)[0]


@functools.partial(jax.jit, static_argnums=0)
def _chunk_jacobian(graphdef, params, batch_stats, x):
    """Per-example logit Jacobians of a chunk: a pytree like `params`, leaves [L, C, *leaf]."""
    jac = jax.jacrev(functools.partial(_example_logits, graphdef))
    return jax.vmap(jac, in_axes=(None, None, 0))(params, batch_stats, x)


@functools.partial(jax.jit, static_argnums=0)
def _gram_block(trace, ja, jb):
    """J_a J_b^T as [La, C, Lb, C] (or [La, Lb] summed over the logit), leaf by leaf."""
    def leaf(a, b):
        a, b = a.reshape(a.shape[:2] + (-1,)), b.reshape(b.shape[:2] + (-1,))
        if trace:
            return jnp.einsum("icp,jcp->ij", a, b, precision="highest")
        return jnp.einsum("icp,jdp->icjd", a, b, precision="highest")

    return sum(jax.tree.leaves(jax.tree.map(leaf, ja, jb)))


def ntk_gram(graphdef, params, batch_stats, x, *, trace=False, chunk_size=16):
    """The empirical NTK Gram matrix of the examples `x` (normalised inputs [n, ...]).

    Full: [n*C, n*C] float32, example-major (row i*C + c is logit c of example i).
    trace=True: [n, n], entry (i, j) = sum_c <d f_c(x_i)/dw, d f_c(x_j)/dw>.
    """
    if not isinstance(trace, bool):
        raise ValueError(f"trace={trace!r} must be True or False")
    check_chunk_size(chunk_size)
    n = int(np.shape(x)[0])
    if n == 0:
        raise ValueError("x holds no examples")
    length = chunk_length(n, chunk_size)
    m = -(-n // length)
    x = jnp.asarray(x, jnp.float32)
    x = jnp.concatenate([x, jnp.zeros((m * length - n,) + x.shape[1:], x.dtype)])
    # Shardings as in pergrad.chunks: parameters replicated once, each chunk's rows split over
    # the devices (padded rows are computed and then dropped: every chunk has one shape).
    mesh = parallel.data_mesh()
    params, batch_stats = parallel.replicate((params, batch_stats), mesh)

    def jacobian(i):
        return _chunk_jacobian(graphdef, params, batch_stats,
                               parallel.put_global(x[i * length:(i + 1) * length], mesh, 0))

    gram = None
    for i in range(m):
        ja = jacobian(i)
        si = slice(i * length, min((i + 1) * length, n))
        for j in range(i, m):
            jb = ja if j == i else jacobian(j)
            sj = slice(j * length, min((j + 1) * length, n))
            block = np.asarray(_gram_block(trace, ja, jb))
            if gram is None:
                shape = (n, n) if trace else (n, block.shape[1], n, block.shape[1])
                gram = np.zeros(shape, np.float32)
            block = block[: si.stop - si.start]
            if trace:
                block = block[:, : sj.stop - sj.start]
                gram[si, sj] = block
                gram[sj, si] = block.T
            else:
                block = block[:, :, : sj.stop - sj.start]
                gram[si, :, sj] = block
                gram[sj, :, si] = block.transpose(2, 3, 0, 1)
            del jb
    return gram if trace else gram.reshape(n * gram.shape[1], n * gram.shape[1])


def kernel_distance(k1, k2):
    """S(K1, K2) = 1 - <K1, K2>_F / (||K1||_F ||K2||_F): 0 for kernels equal up to a positive
    scale, 1 for orthogonal ones. Computed in float64, so that the small distances between
    consecutive epochs are not lost to float32 rounding."""
    k1, k2 = np.asarray(k1, np.float64), np.asarray(k2, np.float64)
    if k1.shape != k2.shape:
        raise ValueError(f"kernel shapes differ: {k1.shape} and {k2.shape}")
    n1, n2 = np.linalg.norm(k1), np.linalg.norm(k2)
    if n1 == 0 or n2 == 0 or not (np.isfinite(n1) and np.isfinite(n2)):
        raise ValueError(f"kernel norms must be finite and non-zero, got {n1} and {n2}")
    return float(1.0 - np.vdot(k1, k2) / (n1 * n2))


def ntk_velocity(graphdef, variables_t, variables_u, x, groups, *, trace=False, chunk_size=16):
    """Kernel distance between the NTKs of two checkpoints (e.g. epochs t and t+1), per group.

    variables_t, variables_u: (params, batch_stats) of the two checkpoints (same graphdef);
    x: normalised inputs of the whole training set [N, ...] (host or device array);
    groups: a sequence of example-id arrays (e.g. `score_groups(...)`), ids indexing x.
    Returns float64 [len(groups)]. Groups of one size share one compilation.
    """
    n_total = int(np.shape(x)[0])
    groups = [np.asarray(ids) for ids in groups]
    for g, ids in enumerate(groups):  # all checked before anything is computed
        if ids.ndim != 1 or len(ids) == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"groups[{g}] must be a non-empty 1-D integer array of example ids")
        if ids.min() < 0 or ids.max() >= n_total:
            raise ValueError(f"groups[{g}] has ids outside [0, {n_total})")
    out = []
    for ids in groups:
        xg = x[ids]
        k_t = ntk_gram(graphdef, *variables_t, xg, trace=trace, chunk_size=chunk_size)
        k_u = ntk_gram(graphdef, *variables_u, xg, trace=trace, chunk_size=chunk_size)
        out.append(kernel_distance(k_t, k_u))
    return np.asarray(out, np.float64)


def score_groups(scores, group_size, *, n_groups=None, percentiles=None, seed=0):
    """Groups of `group_size` example ids by score, as an int64 array [G, group_size].

    Default (adjacent scores): ids sorted by score (ties by id) and cut into consecutive groups
    (a remainder smaller than a group is dropped); `n_groups` keeps that many of them, evenly
    spread from the lowest to the highest (None: all).
    `percentiles=[p_0 < p_1 < ...]` in [0, 100): one group per percentile bin [p_k, p_k+1)
    (the last bin ends at 100) of the score ranks, `group_size` ids drawn at random (`seed`)
    from the bin. Each group's ids are listed in increasing score.
    """
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 1 or len(scores) == 0 or not np.all(np.isfinite(scores)):
        raise ValueError("scores must be a non-empty 1-D array of finite numbers")
    n = len(scores)
    if (isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer))
            or not 1 <= group_size <= n):
        raise ValueError(f"group_size={group_size!r} must be an integer in [1, {n}]")
    if n_groups is not None and percentiles is not None:
        raise ValueError("pass n_groups (adjacent groups) or percentiles (one sampled group per "
                         "bin), not both")
    order = np.argsort(scores, kind="stable")  # ids by increasing score, ties by id
    if percentiles is None:
        available = n // group_size
        if n_groups is None:
            n_groups = available
        if (isinstance(n_groups, bool) or not isinstance(n_groups, (int, np.integer))
                or not 1 <= n_groups <= available):
            raise ValueError(f"n_groups={n_groups!r} must be an integer in [1, {available}] "
                             f"({n} scores in groups of {group_size})")
        starts = np.round(np.linspace(0, available - 1, n_groups)).astype(np.int64)
        return np.stack([order[s * group_size:(s + 1) * group_size] for s in starts])
    edges = np.asarray(percentiles, np.float64)
    if (edges.ndim != 1 or len(edges) == 0 or edges[0] < 0 or edges[-1] >= 100
            or np.any(np.diff(edges) <= 0)):
        raise ValueError(f"percentiles={list(np.atleast_1d(percentiles))} must be a non-empty, "
                         "strictly increasing sequence in [0, 100)")
    bounds = np.floor(np.append(edges, 100.0) / 100.0 * n).astype(np.int64)
    rng = np.random.default_rng(seed)
    groups = []
    for k in range(len(edges)):
        lo, hi = bounds[k], bounds[k + 1]
        if hi - lo < group_size:
            raise ValueError(f"percentile bin [{edges[k]}, {np.append(edges, 100)[k + 1]}) holds "
                             f"{hi - lo} examples, fewer than group_size={group_size}")
        ranks = np.sort(rng.choice(np.arange(lo, hi), group_size, replace=False))
        groups.append(order[ranks])
    return np.stack(groups)
