"""Penultimate-layer embeddings (`model.features`, eval mode) of the whole training set."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from datadiet.data import augment
from datadiet.pergrad.chunks import map_chunks, map_host_chunks


@functools.partial(jax.jit, static_argnums=0)
def _features(graphdef, params, batch_stats, mean, std, images, labels):
    del labels
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    return model.features(augment.normalize(images, mean, std), train=False).astype(jnp.float32)


def embeddings(graphdef, params, batch_stats, dataset, chunk_size=256):
    """float32 [n_train, F] in source order."""
    fn = functools.partial(_features, graphdef)
    replicated = (params, batch_stats, np.asarray(dataset.mean), np.asarray(dataset.std))
    chunks = map_host_chunks if dataset.pipeline == "host" else map_chunks
    return np.asarray(chunks(fn, replicated, dataset.x_train, dataset.y_train, chunk_size),
                      np.float32)
