"""Scores of one model state on the whole training set, in source order, BatchNorm in eval mode,
no augmentation."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from datadiet.data import augment
from datadiet.pergrad import per_example_grad_norms
from datadiet.pergrad.chunks import map_chunks, map_host_chunks
from datadiet.scores import definitions
from datadiet.training.state import apply_model

# Normalised images are made this many at a time (bounds host memory for large datasets).
BLOCK = 8192


@functools.partial(jax.jit, static_argnums=0)
def _forward_scores(graphdef, params, batch_stats, mean, std, images, labels):
    logits, _ = apply_model(graphdef, params, batch_stats,
                            augment.normalize(images, mean, std), False)
    return {name: fn(logits, labels) for name, fn in definitions.FORWARD.items()}


def _normalized_blocks(dataset):
    mean, std = jnp.asarray(dataset.mean), jnp.asarray(dataset.std)
    for start in range(0, dataset.n_train, BLOCK):
        stop = min(start + BLOCK, dataset.n_train)
        x = augment.normalize(jnp.asarray(dataset.x_train[start:stop]), mean, std)
        yield x, dataset.y_train[start:stop]


def input_norms(dataset):
    return np.concatenate([np.asarray(definitions.input_norm(x))
                           for x, _ in _normalized_blocks(dataset)])


def state_scores(graphdef, params, batch_stats, dataset, names, chunk_size=256,
                 grand_chunk_size=64):
    """{name: float32 [n_train]} for `names` among FORWARD_SCORES + ("grand",)."""
    out = {}
    forward = [n for n in names if n in definitions.FORWARD_SCORES]
    replicated = (params, batch_stats, jnp.asarray(dataset.mean), jnp.asarray(dataset.std))
    if forward:
        fn = functools.partial(_forward_scores, graphdef)
        chunks = map_host_chunks if dataset.pipeline == "host" else map_chunks
        scores = chunks(fn, replicated, dataset.x_train, dataset.y_train, chunk_size)
        out.update({n: np.asarray(scores[n], np.float32) for n in forward})
    if "grand" in names and dataset.pipeline == "host":
        def grand(params, batch_stats, mean, std, x, y):
            return per_example_grad_norms(graphdef, params, batch_stats,
                                          augment.normalize(x, mean, std), y,
                                          chunk_size=grand_chunk_size)

        out["grand"] = map_host_chunks(grand, replicated, dataset.x_train, dataset.y_train,
                                       grand_chunk_size).astype(np.float32)
    elif "grand" in names:
        out["grand"] = np.concatenate([
            np.asarray(per_example_grad_norms(graphdef, params, batch_stats, x, y,
                                              chunk_size=grand_chunk_size))
            for x, y in _normalized_blocks(dataset)]).astype(np.float32)
    return out

