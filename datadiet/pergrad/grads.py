"""`per_example_grads`: one entry point for the three kinds of per-example gradient."""
from __future__ import annotations

import functools

import jax

from datadiet.pergrad import last_layer
from datadiet.pergrad.chunks import map_chunks
from datadiet.pergrad.full import GRAD_METHODS, check_choice, iter_per_example_grads
from datadiet.pergrad.projection import check_proj_dim, projected_grads_fn

MODES = ("full", "last_layer", "projection")

_last_layer_jit = jax.jit(last_layer.last_layer_grads, static_argnums=0)


def per_example_grads(graphdef, params, batch_stats, x, y, *, mode="full", proj_dim=None, seed=0,
                      chunk_size=32, method="auto"):
    """Per-example gradients of the cross-entropy, BatchNorm in eval mode, `chunk_size` examples
    at a time (each chunk split over all devices).

    mode="full":       a pytree shaped like `params` whose leaves are [B, *leaf shape] (example i
                       in row i). It holds B x P floats: pass a chunk's worth of x, or iterate
                       with `iter_per_example_grads` for bounded memory.
    mode="last_layer": [B, F*C + C], the final Linear's kernel gradient (row-major [F, C]) then
                       its bias gradient, in closed form (`last_layer.py`).
    mode="projection": [B, proj_dim], ravel(g_i) @ R with R [P, proj_dim] i.i.d. N(0, 1/proj_dim)
                       drawn from `seed` (see `projection.py`; `projection_matrix` materialises
                       R for small models).
    method ("auto" | "layerwise" | "vmap") chooses how full / projected gradients are computed.
    Bad mode / method / proj_dim / chunk_size values raise ValueError.
    """
    check_choice("mode", mode, MODES)
    check_choice("method", method, GRAD_METHODS)
    if mode == "full":
        chunks = [g for _, _, g in iter_per_example_grads(
            graphdef, params, batch_stats, x, y, method=method, chunk_size=chunk_size)]
        if not chunks:
            raise ValueError("x holds no examples")
        if len(chunks) == 1:
            return chunks[0]
        return jax.tree.map(lambda *a: jax.numpy.concatenate(a), *chunks)
    if mode == "last_layer":
        fn = functools.partial(_last_layer_jit, graphdef)
        return map_chunks(fn, (params, batch_stats), x, y, chunk_size)
    proj_dim = check_proj_dim(proj_dim)
    fn, extra = projected_grads_fn(graphdef, params, method, proj_dim, seed)
    return map_chunks(fn, (params, batch_stats, extra), x, y, chunk_size)
