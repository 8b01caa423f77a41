"""Per-example gradients over a list of training ids, in fixed-size jitted chunks.

Eval-mode BatchNorm, no augmentation; the chunk's batch axis is split over all devices.
Returns a device array [len(ids), D] in the order of `ids`.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from datadiet import parallel
from datadiet.coresets.config import GRAD_MODES
from datadiet.data import pipeline
from datadiet.data.augment import normalize
from datadiet.pergrad.grads import per_example_grads
from datadiet.pergrad.last_layer import last_layer_grads
from datadiet.training.evaluate import chunk_length, pad_rows


@functools.partial(jax.jit, static_argnames=("graphdef", "fn"))
def _chunk(graphdef, fn, params, batch_stats, images, labels, idx, mean, std):
    x = normalize(images[idx], mean, std)
    return fn(graphdef, params, batch_stats, x, labels[idx])


@functools.partial(jax.jit, static_argnames=("graphdef", "fn"))
def _gathered_chunk(graphdef, fn, params, batch_stats, x, labels, mean, std):
    return fn(graphdef, params, batch_stats, normalize(x, mean, std), labels)


@functools.lru_cache(maxsize=None)  # the same function object each time: no recompiles
def grads_fn(mode, proj_dim=1024, seed=0):
    """The per-example gradient function of a mode: (graphdef, params, stats, x, y) -> [B, D]."""
    if mode == "last_layer":
        return last_layer_grads
    if mode == "full":  # flattened [B, P]: only for small models (a selection needs a matrix)
        return _flat_full
    if mode == "projection":
        return functools.partial(per_example_grads, mode="projection",
                                 proj_dim=proj_dim, seed=seed)
    raise ValueError(f"grads={mode!r} is not one of {list(GRAD_MODES)}")


def _flat_full(graphdef, params, batch_stats, x, y):
    tree = per_example_grads(graphdef, params, batch_stats, x, y, mode="full")
    return jnp.concatenate([g.reshape(g.shape[0], -1) for g in jax.tree.leaves(tree)], axis=1)


def example_grads(context, dataset, ids, cfg):
    """Gradients of `ids` (numpy) with the model state in `context` (a SelectionContext)."""
    fn = grads_fn(cfg.grads, cfg.proj_dim)
    mesh = context.mesh
    chunk = chunk_length(len(ids), cfg.chunk_size, mesh.size)
    n_chunks = -(-len(ids) // chunk)
    padded = pad_rows(np.asarray(ids), n_chunks * chunk)
    images, labels = context.images, context.labels
    mean, std = jnp.asarray(dataset.mean), jnp.asarray(dataset.std)
    state = context.state
    if images is None:  # data.pipeline = "host": the host gathers each chunk's examples
        out = [_gathered_chunk(context.graphdef, fn, state.params, state.batch_stats,
                               *pipeline.gather_ids(dataset.x_train, dataset.y_train,
                                                    padded[i * chunk:(i + 1) * chunk], mesh),
                               mean, std)
               for i in range(n_chunks)]
        return jnp.concatenate(out)[: len(ids)]
    out = [_chunk(context.graphdef, fn, state.params, state.batch_stats, images, labels,
                  parallel.put_global(padded[i * chunk:(i + 1) * chunk], mesh, batch_axis=0),
                  mean, std)
           for i in range(n_chunks)]
    return jnp.concatenate(out)[: len(ids)]
