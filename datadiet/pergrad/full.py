"""Per-example gradients of every trainable parameter, as a pytree shaped like `params` with a
leading batch axis on every leaf (never concatenated into one [B, P] matrix).

Two ways, same numbers:
  * "layerwise" (the default where the model is supported, see `taps.py`): one batched forward
    and one backward to the layer outputs, then each layer's per-example gradient from its input
    and output gradient (`layers.grads`: a_i d_i^T for Linear, one batched GEMM per kernel offset
    for convs, sums over positions for BatchNorm);
  * "vmap": `vmap(grad)` of the single-example loss (any model; 3-4x a batch gradient on CPU).
BatchNorm runs in eval mode (running statistics), the loss is softmax cross-entropy with integer
labels, so these equal `jax.grad` applied to one example at a time.

Memory: a chunk of C examples holds C x P gradient floats (ResNet-50: 94 MB per example), so
`per_example_grads(mode="full")` on a large x is bounded by the size of its own result; iterate
with `iter_per_example_grads` to keep C x P at a time.
"""
from __future__ import annotations

import functools

import jax
from flax import nnx

from datadiet.pergrad import layers as layers_lib
from datadiet.pergrad import taps
from datadiet.pergrad.chunks import iter_chunks

GRAD_METHODS = ("auto", "layerwise", "vmap")


def check_choice(name, value, accepted):
    if value not in accepted:
        raise ValueError(f"{name}={value!r} is not accepted; accepted values: "
                         + ", ".join(repr(a) for a in accepted))
    return value


def param_path(keypath):
    """Module path + param name of a leaf of an nnx.State of Params, e.g. ('blocks', 0, 'conv1',
    'kernel')."""
    return tuple(k.key for k in keypath if isinstance(k, jax.tree_util.DictKey))


def resolve(graphdef, params, batch_stats, x, y, method):
    """'layerwise' or 'vmap' for `method` in ("auto", "layerwise", ...). Shape evaluation only."""
    if method == "vmap":
        return "vmap"
    _, problems = taps.trace_layers(graphdef, params, batch_stats, x, y)
    if not problems:
        return "layerwise"
    if method == "auto":
        return "vmap"
    raise ValueError(f"method={method!r} needs a model made of Linear/Conv/BatchNorm layers, "
                     f"each called once: {'; '.join(problems)} (use method='auto' or 'vmap')")


def example_loss(graphdef, params, batch_stats, x1, y1):
    """Cross-entropy of ONE example (x1 without batch axis), BatchNorm in eval mode."""
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    return taps.example_losses(model(x1[None], train=False), y1[None])[0]


def grads_vmap(graphdef, params, batch_stats, x, y):
    grad = jax.grad(functools.partial(example_loss, graphdef), argnums=0)
    return jax.vmap(grad, in_axes=(None, None, 0, 0))(params, batch_stats, x, y)


def grads_layerwise(graphdef, params, batch_stats, x, y):
    found, inputs, deltas, _ = taps.inputs_and_output_grads(graphdef, params, batch_stats, x, y)
    by_path = {}
    for layer, a, d in zip(found, inputs, deltas):
        for name, g in layers_lib.grads(layer, a, d).items():
            by_path[tuple(layer.path) + (name,)] = g
    return jax.tree_util.tree_map_with_path(
        lambda kp, leaf: by_path[param_path(kp)].astype(leaf.dtype), params)


def grads_chunk(graphdef, method, params, batch_stats, x, y):
    """Per-example gradient pytree of one chunk (method 'auto' | 'layerwise' | 'vmap')."""
    if resolve(graphdef, params, batch_stats, x, y, method) == "layerwise":
        return grads_layerwise(graphdef, params, batch_stats, x, y)
    return grads_vmap(graphdef, params, batch_stats, x, y)


_grads_chunk_jit = jax.jit(grads_chunk, static_argnums=(0, 1))


def iter_per_example_grads(graphdef, params, batch_stats, x, y, *, method="auto", chunk_size=32):
    """Yields (start, stop, grads) with grads a pytree like `params`, leaves [stop - start, ...]:
    the per-example gradients of examples start..stop-1, one chunk in memory at a time."""
    check_choice("method", method, GRAD_METHODS)
    fn = functools.partial(_grads_chunk_jit, graphdef, method)
    yield from iter_chunks(fn, (params, batch_stats), x, y, chunk_size)
