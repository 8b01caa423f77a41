"""What a sampler is doing, measured against the model's true current losses.

  sample_entropy        entropy (nats) of the draw distribution p over all N examples
                        (log N for uniform draws)
  hardest_decile_share  of the draws landing on a fixed probe set, the share that goes to its
                        hardest tenth by current loss (0.1 for uniform draws)
  order_agreement       fraction of probe pairs with different current losses that the stored
                        values order the same way (ties in the stored values count 1/2); 0.5 is
                        chance, 1 a perfect ordering
The current losses are eval-mode losses of the probe examples at the moment of measurement.
"""
import jax.numpy as jnp


def entropy(p):
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))


def hardest_decile_share(p_probe, true_losses):
    k = -(-true_losses.shape[0] // 10)
    hardest = jnp.argsort(-true_losses)[:k]
    return jnp.sum(p_probe[hardest]) / jnp.maximum(jnp.sum(p_probe), 1e-30)


def order_agreement(stored, true_losses):
    """O(P^2) pairwise comparison on device: P ~ 1000 probe examples is ~1e6 pairs."""
    ds = jnp.sign(stored[:, None] - stored[None, :])
    dt = jnp.sign(true_losses[:, None] - true_losses[None, :])
    pairs = dt != 0
    score = jnp.where(ds == dt, 1.0, jnp.where(ds == 0, 0.5, 0.0))
    return jnp.sum(jnp.where(pairs, score, 0.0)) / jnp.maximum(jnp.sum(pairs), 1)


def diagnostics(p, stored, probe_ids, probe_losses):
    """p: [N] draw distribution; stored: [N] the sampler's per-example values."""
    return {"sample_entropy": entropy(p),
            "hardest_decile_share": hardest_decile_share(p[probe_ids], probe_losses),
            "order_agreement": order_agreement(stored[probe_ids], probe_losses)}
