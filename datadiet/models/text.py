"""A small text model: a bag of embeddings (the AUTOMATA text experiments' model class).

Input: token ids [B, L] (id 0 pads; they arrive cast to float32 by the shared batch path, exact
below 2^24, and are cast back here). Output: mean of the non-padding tokens' embeddings,
optionally one hidden ReLU layer, then the head. Same interface as the other models:
`model(x, train, mask=None)`, `features`, `head`; only Param variables (no BatchNorm).
Under a bfloat16 `dtype` the ids stay float32 until cast to int (bfloat16 holds integers exactly
only up to 256) and the pooling sums and counts are float32.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from datadiet.models.resnet import head, linear


class EmbeddingBag(nnx.Module):
    def __init__(self, num_classes: int, input_shape: Sequence[int], *, vocab_size: int = 2**14,
                 dim: int = 64, hidden: int = 0, dtype=jnp.float32, rngs: nnx.Rngs):
        if len(input_shape) != 1:
            raise ValueError(f"embedding_bag needs token ids [L] per example, got input_shape "
                             f"{tuple(input_shape)}")
        self.embed = nnx.Embed(vocab_size, dim, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
        self.hidden = linear(dim, hidden, dtype=dtype, rngs=rngs) if hidden else None
        self.num_features = hidden or dim
        self.head = head(self.num_features, num_classes, dtype=dtype, rngs=rngs)

    def features(self, x, train: bool, mask=None):
        ids = x.astype(jnp.int32)
        vectors = self.embed(ids)  # [B, L, dim]
        present = (ids > 0)[..., None].astype(vectors.dtype)
        pooled = ((vectors * present).sum(1, dtype=jnp.float32)
                  / jnp.maximum(present.sum(1, dtype=jnp.float32), 1.0)).astype(vectors.dtype)
        if self.hidden is not None:
            pooled = jax.nn.relu(self.hidden(pooled))
        return pooled

    def __call__(self, x, train: bool, mask=None):
        return self.head(self.features(x, train, mask))


def embedding_bag(num_classes: int, input_shape: Sequence[int], *, vocab_size: int = 2**14,
                  dim: int = 64, hidden: int = 0, dtype=jnp.float32, rngs: nnx.Rngs):
    return EmbeddingBag(num_classes, input_shape, vocab_size=vocab_size, dim=dim, hidden=hidden,
                        dtype=dtype, rngs=rngs)
