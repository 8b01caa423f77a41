"""Random projection of per-example gradients to `proj_dim` dimensions, P x d never formed.

The projection is a fixed Gaussian matrix R [P, d] with i.i.d. N(0, 1/d) entries, so
E ||R^T g||^2 = ||g||^2 (Johnson-Lindenstrauss) and inner products are preserved in expectation.
Its rows follow `jax.flatten_util.ravel_pytree(params)` order: example i's projection is
ravel(g_i) @ R. R is never formed: it is generated per parameter leaf and, inside a leaf, per
block of `ROWS_PER_KEY` rows, each block from its own key

    R[leaf, rows j*ROWS_PER_KEY ...] = normal(fold_in(fold_in(key(seed), crc32(leaf path)), j),
                                               (rows in block j, d)) / sqrt(d)

(the leaf path is e.g. "blocks/0/conv1/kernel"), and the projection accumulates
sum over leaves and blocks of g[:, block] @ R_block. So R depends only on (seed, leaf path,
leaf shape, d): not on the chunk size, the batch, the device count or on other leaves, and a
layer's block of R does not change when unrelated layers are added.

Cost: P x d Gaussian draws and a [C, P] x [P, d] product per chunk of C examples. When R fits
in CACHE_BYTES it is drawn once per call and reused by every chunk; otherwise (ResNet-18 at
d = 512 would need 23 GB) each chunk draws it again, block by block, and a large chunk amortises
the draws (5.7e9 of them per chunk for ResNet-18 at d = 512). The per-example gradients come
from `full.py` one chunk at a time (C x P floats, one leaf consumed after another).
"""
from __future__ import annotations

import functools
import zlib

import jax
import jax.numpy as jnp

from datadiet.pergrad.full import grads_chunk, param_path

ROWS_PER_KEY = 4096
CACHE_BYTES = 512 * 2**20  # largest R drawn once per call and reused by every chunk


def check_proj_dim(proj_dim) -> int:
    if isinstance(proj_dim, bool) or not isinstance(proj_dim, int) or proj_dim < 1:
        raise ValueError(f"proj_dim={proj_dim!r} must be a positive integer for mode='projection'")
    return proj_dim


def leaf_key(seed, path):
    name = "/".join(str(p) for p in path)
    return jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)


def _block(key, j, rows, proj_dim, dtype):
    r = jax.random.normal(jax.random.fold_in(key, j), (rows, proj_dim), dtype)
    return r / jnp.sqrt(jnp.asarray(proj_dim, dtype))


def leaf_matrix(seed, path, size, proj_dim, dtype=jnp.float32):
    """R's rows for one leaf, [size, proj_dim] (materialised: for tests and small leaves)."""
    key = leaf_key(seed, path)
    full, rest = divmod(size, ROWS_PER_KEY)
    blocks = [_block(key, j, ROWS_PER_KEY, proj_dim, dtype) for j in range(full)]
    if rest:
        blocks.append(_block(key, full, rest, proj_dim, dtype))
    return jnp.concatenate(blocks)


def project_leaf(g, seed, path, proj_dim):
    """g [B, ...] (one leaf's per-example gradients) -> [B, proj_dim], R generated block-wise."""
    g = g.reshape(g.shape[0], -1)
    b, size = g.shape
    key = leaf_key(seed, path)
    full, rest = divmod(size, ROWS_PER_KEY)
    out = jnp.zeros((b, proj_dim), g.dtype)
    if full:
        def body(j, acc):
            gj = jax.lax.dynamic_slice_in_dim(g, j * ROWS_PER_KEY, ROWS_PER_KEY, axis=1)
            return acc + gj @ _block(key, j, ROWS_PER_KEY, proj_dim, g.dtype)

        out = jax.lax.fori_loop(0, full, body, out)
    if rest:
        out = out + g[:, full * ROWS_PER_KEY:] @ _block(key, full, rest, proj_dim, g.dtype)
    return out


def project(grads, seed, proj_dim):
    """[B, proj_dim] = ravel(g_i) @ R for a per-example gradient pytree (leaves [B, ...])."""
    leaves = jax.tree_util.tree_flatten_with_path(grads)[0]
    return sum(project_leaf(g, seed, param_path(kp), proj_dim) for kp, g in leaves)


def projection_matrix(params, proj_dim, seed):
    """The materialised R [P, proj_dim], rows in `ravel_pytree(params)` order (small models)."""
    return _projection_matrix(params, check_proj_dim(proj_dim), seed)


@functools.partial(jax.jit, static_argnums=1)
def _projection_matrix(params, proj_dim, seed):
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return jnp.concatenate([leaf_matrix(seed, param_path(kp), leaf.size, proj_dim, leaf.dtype)
                            for kp, leaf in leaves])


def projection_chunk(graphdef, method, proj_dim, params, batch_stats, seed, x, y):
    """[C, proj_dim] for one chunk, R generated block by block inside (nothing P x d held)."""
    grads = grads_chunk(graphdef, method, params, batch_stats, x, y)
    return project(grads, seed, proj_dim)


def projection_chunk_cached(graphdef, method, params, batch_stats, matrices, x, y):
    """[C, proj_dim] for one chunk with R's leaves given (`leaf_matrices`): no draws."""
    grads = grads_chunk(graphdef, method, params, batch_stats, x, y)
    return sum(g.reshape(g.shape[0], -1) @ r
               for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(matrices)))


@functools.partial(jax.jit, static_argnums=1)
def leaf_matrices(params, proj_dim, seed):
    """R split by leaf: a pytree like `params` of [leaf size, proj_dim] blocks."""
    return jax.tree_util.tree_map_with_path(
        lambda kp, leaf: leaf_matrix(seed, param_path(kp), leaf.size, proj_dim, leaf.dtype), params)


_projection_chunk_jit = jax.jit(projection_chunk, static_argnums=(0, 1, 2))
_projection_chunk_cached_jit = jax.jit(projection_chunk_cached, static_argnums=(0, 1))


def projected_grads_fn(graphdef, params, method, proj_dim, seed):
    """(fn, extra): fn(params, batch_stats, extra, x, y) -> [C, proj_dim] for one chunk.

    R is drawn once and reused by every chunk when it fits in `CACHE_BYTES` (the draws cost more
    than the product: small CNN, d = 1024, 128 examples per chunk: 33 examples/s drawing R per
    chunk), otherwise per chunk inside the jitted function. Same R, same numbers either way.
    """
    size = sum(leaf.size * jnp.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(params))
    if size * proj_dim <= CACHE_BYTES:
        fn = functools.partial(_projection_chunk_cached_jit, graphdef, method)
        return fn, leaf_matrices(params, proj_dim, seed)
    return functools.partial(_projection_chunk_jit, graphdef, method, proj_dim), seed
