"""Base-value samplers (Duda et al.): p_i = b_i / sum_j b_j over the whole training set.

Pure jittable functions over a [N] float32 array `base` on device. Base values are set from
the train-mode outputs of the examples just trained on, and only for those:
  uniform  b_i = 1 (never changes)
  owc      b_i = 1 + alpha * [misclassified]      ("raise p of misclassified examples by alpha")
  lb       b_i = 1 + alpha * loss_i
  nlb      b_i = 1 + alpha * tanh(loss_i)         (bounded: one example can only weigh 1 + alpha)
  plb      b_i = loss_i                           (the last loss is the base value itself)
  peb      b_i = entropy(softmax(f(x_i)))
each floored at `floor` > 0 so no example becomes undrawable. OWC/LB/NLB raise a uniform
start by alpha times a difficulty; PLB/PEB use the difficulty itself.
"""
import jax
import jax.numpy as jnp

BLOCK = 1024  # two-level inverse CDF: examples per block


def base_values(method, loss, entropy, correct, alpha, floor):
    """b from per-example train-mode outputs (arrays of one shape)."""
    wrong = 1.0 - correct.astype(jnp.float32)
    value = {"uniform": lambda: jnp.ones_like(loss),
             "owc": lambda: 1.0 + alpha * wrong,
             "lb": lambda: 1.0 + alpha * loss,
             "nlb": lambda: 1.0 + alpha * jnp.tanh(loss),
             "plb": lambda: loss,
             "peb": lambda: entropy}[method]()
    return jnp.maximum(value, floor).astype(jnp.float32)


def uniform_init(method, n, num_classes, alpha, floor):
    """Every b_i the value of an uninformed prediction: loss = entropy = log K, not (yet) counted
    as misclassified. All equal, so the first draws are uniform whatever the method."""
    log_k = jnp.full((n,), jnp.log(num_classes), jnp.float32)
    return base_values(method, log_k, log_k, jnp.ones(n, bool), alpha, floor)


def probabilities(base):
    return base / jnp.sum(base)


def set_values(base, ids, values):
    """b[ids] = values. An id drawn twice in one batch gets the larger of its values (scatter-max
    is order-independent, so the result is deterministic); all values are >= floor > 0."""
    return base.at[ids].set(0.0).at[ids].max(values)


def importance_weights(base, ids):
    """w_i = 1 / (N p_i) for the drawn ids: E_{i~p}[w_i g_i] = mean_i g_i."""
    return jnp.sum(base) / (base.shape[0] * base[ids])


def draw(key, base, batch_size, block=BLOCK):
    """batch_size ids drawn with replacement with p_i = b_i / sum_j b_j, by a two-level inverse
    CDF: pick a block by the cumulative sums of N/block block totals, then an example inside it.

    Why not one cumsum over N (as jax.random.choice does): in float32 the running sum near the
    total T has a resolution of ~6e-8 T, so at N = 1e6 each example's interval (b_i ~ T/N) is
    quantised by several percent. Block totals and in-block sums stay ~1000x finer. It is also
    no slower: one reduction over N plus B small cumsums (see benchmarks/sampling.py).
    """
    n = base.shape[0]
    n_blocks = -(-n // block)
    blocks = jnp.pad(base, (0, n_blocks * block - n)).reshape(n_blocks, block)
    block_cdf = jnp.cumsum(jnp.sum(blocks, axis=1))
    k1, k2 = jax.random.split(key)
    # u < 1 strictly, so u * cdf[-1] < cdf[-1] and side="right" never lands on an empty tail.
    u1 = jax.random.uniform(k1, (batch_size,)) * block_cdf[-1]
    b = jnp.minimum(jnp.searchsorted(block_cdf, u1, side="right"), n_blocks - 1)
    inner_cdf = jnp.cumsum(blocks[b], axis=1)  # [B, block]
    u2 = jax.random.uniform(k2, (batch_size,)) * inner_cdf[:, -1]
    j = jax.vmap(lambda c, u: jnp.searchsorted(c, u, side="right"))(inner_cdf, u2)
    return (b * block + jnp.minimum(j, block - 1)).astype(jnp.int32)


def draw_uniform(key, n, batch_size):
    return jax.random.randint(key, (batch_size,), 0, n, dtype=jnp.int32)
