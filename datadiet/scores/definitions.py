"""Per-example scores from logits (and inputs), as pure jnp functions.

Every score but `margin` grows with difficulty; `margin` is the usual p_y - max_{j != y} p_j,
small (or negative) for hard examples, so keep its *lowest* values to keep the hard ones.
"""
import jax
import jax.numpy as jnp
import optax

from datadiet.scores.config import FORWARD_SCORES  # noqa: F401  (the names defined here)
from datadiet.training.step import prediction_entropy


def el2n(logits, labels):
    """|| softmax(f(x)) - onehot(y) ||_2 (Paul et al. 2021)."""
    p = jax.nn.softmax(logits.astype(jnp.float32))
    return jnp.linalg.norm(p - jax.nn.one_hot(labels, logits.shape[-1]), axis=-1)


def loss(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


def entropy(logits, labels):
    """Entropy of the predicted distribution (the label is not used)."""
    del labels
    return prediction_entropy(logits.astype(jnp.float32))


def margin(logits, labels):
    """p_y - max_{j != y} p_j."""
    p = jax.nn.softmax(logits.astype(jnp.float32))
    p_y = jnp.take_along_axis(p, labels[:, None], axis=-1)[:, 0]
    others = jnp.where(jax.nn.one_hot(labels, p.shape[-1], dtype=bool), -jnp.inf, p)
    return p_y - others.max(-1)


def input_norm(x):
    """|| x ||_2 of the normalised input the model sees: the baseline GraNd at init mimics."""
    return jnp.linalg.norm(x.reshape(x.shape[0], -1).astype(jnp.float32), axis=-1)


FORWARD = {"el2n": el2n, "loss": loss, "entropy": entropy, "margin": margin}
