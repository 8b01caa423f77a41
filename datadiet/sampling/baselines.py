"""The baselines users compare against, as pure jittable functions.

Selective-Backprop (Jiang et al. 2019): forward a candidate, backprop it with probability
P = percentile(loss)^beta, the percentile taken over a history of the most recent losses.

InfoBatch (Qin et al. 2024): at the start of each pass over the data, of the examples whose
stored loss is below the mean, prune a random fraction r (floor(r * count), InfoBatch's own
rounding keeps int((1 - r) * count)); the kept below-mean examples get loss weight 1/(1-r);
stored losses are updated for the examples trained on; passes starting in the last delta
fraction of training use all data with weight 1.
"""
import jax
import jax.numpy as jnp


# --- Selective-Backprop --------------------------------------------------------------------

def sb_push(history, count, losses):
    """Ring buffer of the last len(history) losses; count = losses pushed so far."""
    idx = (count + jnp.arange(losses.shape[0])) % history.shape[0]
    return history.at[idx].set(losses), count + losses.shape[0]


def sb_percentile(history, count, losses):
    """Fraction of the filled history <= each loss (scipy's percentileofscore kind="weak" / 100).
    Sorted once, then a binary search per loss: cheap even for all N examples."""
    filled = jnp.arange(history.shape[0]) < count
    ordered = jnp.sort(jnp.where(filled, history, jnp.inf))
    below = jnp.searchsorted(ordered, losses, side="right")
    return jnp.minimum(below, jnp.sum(filled)) / jnp.maximum(jnp.sum(filled), 1)


def sb_select(key, history, count, losses, beta, batch_size):
    """Selects up to batch_size of the candidates; returns (rows [B], weights [B] in {0, 1}).

    The candidates' losses are pushed first (as in Jiang et al.'s code), so the history is never
    empty. Candidates are kept with probability P = percentile^beta; the batch is filled with the
    first B kept ones in candidate order (candidates are drawn at random), and if fewer than B
    were kept the rest is padding with weight 0.
    """
    history, count = sb_push(history, count, losses)
    prob = sb_percentile(history, count, losses) ** beta
    keep = jax.random.uniform(key, losses.shape) < prob
    rows = jnp.argsort(~keep, stable=True)[:batch_size]
    return rows, keep[rows].astype(jnp.float32), history, count


# --- InfoBatch -----------------------------------------------------------------------------

def infobatch_plan(key, scores, ratio, prune):
    """One pass: (order [N] with the kept ids first in random order, weights [N], n_kept).

    weights: 0 for pruned, 1/(1-ratio) for kept below-mean examples, 1 otherwise.
    """
    n = scores.shape[0]
    k_prune, k_order = jax.random.split(key)
    below = (scores < jnp.mean(scores)) & prune
    n_keep_below = jnp.floor((1.0 - ratio) * jnp.sum(below)).astype(jnp.int32)
    # A uniformly random n_keep_below-subset of the below-mean examples: the smallest random keys.
    keys = jnp.where(below, jax.random.uniform(k_prune, (n,)), 2.0)
    rank = jnp.zeros(n, jnp.int32).at[jnp.argsort(keys)].set(jnp.arange(n, dtype=jnp.int32))
    kept_below = below & (rank < n_keep_below)
    kept = ~below | kept_below
    weights = jnp.where(kept_below, 1.0 / (1.0 - ratio), jnp.where(kept, 1.0, 0.0))
    # An independent key for the order: the kept-below ones must not cluster at the pass start.
    order = jnp.argsort(jnp.where(kept, jax.random.uniform(k_order, (n,)), 2.0))
    return order.astype(jnp.int32), weights.astype(jnp.float32), jnp.sum(kept).astype(jnp.int32)
