"""Closed-form per-example gradients of the cross-entropy w.r.t. the final linear layer.

With features h (penultimate activations), logits z = h W + b and e = softmax(z) - onehot(y),
dl/dW = h e^T and dl/db = e: no backward pass at all. BatchNorm runs in eval mode. Float32
results under either compute dtype (h is cast up, the logits are float32).
"""
import jax
import jax.numpy as jnp
from flax import nnx


def features_and_errors(graphdef, params, batch_stats, x, y):
    """(h [B, F], e = softmax(logits) - onehot(y) [B, C]) with the model in eval mode."""
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    h = model.features(x, train=False)
    logits = model.head(h)  # float32 logits whatever the compute dtype
    return h.astype(jnp.float32), jax.nn.softmax(logits) - jax.nn.one_hot(y, logits.shape[-1])


def last_layer_grads(graphdef, params, batch_stats, x, y):
    """[B, F*C + C]: the flattened kernel gradient h e^T (row-major [F, C]) then the bias's e."""
    h, e = features_and_errors(graphdef, params, batch_stats, x, y)
    kernel = (h[:, :, None] * e[:, None, :]).reshape(h.shape[0], -1)
    return jnp.concatenate([kernel, e], axis=1)

