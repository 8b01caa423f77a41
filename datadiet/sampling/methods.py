"""Each sampling method as the same five pure functions, for the streaming loop.

  init(values)                      state; values: eval-mode {"loss", "entropy", "correct"} of
                                    all N examples (init="forward"), or None (init="uniform")
  draw(state, key, step)            (ids, weights, state): the examples to gather this step
  select(state, key, ids, losses)   Selective-Backprop only: (rows, weights, state) picks the
                                    batch from the drawn candidates given their losses
  update(state, ids, weights, out)  state after training on ids (out: the train step's outputs)
  distribution(state)               (p [N], stored [N]): draw distribution and stored values,
                                    for the diagnostics
States are dicts of device arrays (checkpointed with the train state).
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from datadiet.sampling import baselines, samplers
from datadiet.sampling.config import BASE_METHODS, sb_pool_size


class Sampler(NamedTuple):
    init: Callable
    draw: Callable
    select: Any  # None, or Selective-Backprop's selection
    update: Callable
    distribution: Callable
    reduction: str  # the train step's loss reduction (see training/step.py)


def make_sampler(c, n, batch_size, num_classes, total_steps):
    """c: the config.sampling section."""
    if c.method in BASE_METHODS:
        return _base_sampler(c, n, batch_size, num_classes)
    if c.method == "selective_backprop":
        return _selective_backprop(c, n, batch_size, num_classes)
    if c.method == "infobatch":
        return _infobatch(c, n, batch_size, total_steps)
    raise ValueError(f"sampling.method={c.method!r} has no sampler")


def _base_sampler(c, n, batch_size, num_classes):
    method = c.method

    def init(values):
        if values is None:
            return {"base": samplers.uniform_init(method, n, num_classes, c.alpha, c.floor)}
        return {"base": samplers.base_values(method, values["loss"], values["entropy"],
                                             values["correct"], c.alpha, c.floor)}

    def draw(state, key, step):
        base = state["base"]
        if method == "uniform":  # the baseline step: no O(N) work at all
            ids = samplers.draw_uniform(key, n, batch_size)
        else:
            ids = samplers.draw(key, base, batch_size)
        if c.importance_weights:
            return ids, samplers.importance_weights(base, ids), state
        return ids, jnp.ones(batch_size, jnp.float32), state

    def update(state, ids, weights, out):
        if method == "uniform":
            return state
        values = samplers.base_values(method, out["loss"], out["entropy"], out["correct"],
                                      c.alpha, c.floor)
        return {"base": samplers.set_values(state["base"], ids, values)}

    def distribution(state):
        return samplers.probabilities(state["base"]), state["base"]

    reduction = "mean" if c.importance_weights else "weighted_mean"
    return Sampler(init, draw, None, update, distribution, reduction)


def _selective_backprop(c, n, batch_size, num_classes):
    pool = sb_pool_size(batch_size, c.sb_beta)

    def init(values):
        last = jnp.full((n,), jnp.log(num_classes), jnp.float32) if values is None \
            else values["loss"].astype(jnp.float32)
        return {"last_loss": last, "history": jnp.zeros(c.sb_history, jnp.float32),
                "count": jnp.zeros((), jnp.int32)}

    def draw(state, key, step):  # candidates, uniformly with replacement
        return samplers.draw_uniform(key, n, pool), jnp.ones(pool, jnp.float32), state

    def select(state, key, ids, losses):
        rows, weights, history, count = baselines.sb_select(
            key, state["history"], state["count"], losses, c.sb_beta, batch_size)
        last = state["last_loss"].at[ids].set(-jnp.inf).at[ids].max(losses)
        return rows, weights, {"last_loss": last, "history": history, "count": count}

    def update(state, ids, weights, out):
        return state

    def distribution(state):
        # Candidates are uniform, so backprops go to i with probability proportional to P_i.
        prob = baselines.sb_percentile(state["history"], state["count"],
                                       state["last_loss"]) ** c.sb_beta
        return prob / jnp.maximum(jnp.sum(prob), 1e-30), state["last_loss"]

    return Sampler(init, draw, select, update, distribution, "weighted_mean")


def _infobatch(c, n, batch_size, total_steps):
    prune_until = round((1.0 - c.infobatch_delta) * total_steps)  # passes starting later: full

    def init(values):
        # InfoBatch starts its scores at 1: all equal, so nothing is below the mean in pass 1.
        scores = jnp.ones(n, jnp.float32) if values is None else values["loss"].astype(jnp.float32)
        return {"scores": scores, "order": jnp.zeros(n + batch_size, jnp.int32),
                "weights": jnp.ones(n, jnp.float32), "n_kept": jnp.zeros((), jnp.int32),
                "pos": jnp.zeros((), jnp.int32)}

    def new_pass(state, key, step):
        order, weights, n_kept = baselines.infobatch_plan(
            key, state["scores"], c.infobatch_ratio, step < prune_until)
        # Padded by one batch: dynamic_slice clamps its start, which would repeat ids.
        order = jnp.concatenate([order, jnp.zeros(batch_size, jnp.int32)])
        return dict(state, order=order, weights=weights, n_kept=n_kept,
                    pos=jnp.zeros((), jnp.int32))

    def draw(state, key, step):
        state = jax.lax.cond(state["pos"] >= state["n_kept"], new_pass,
                             lambda s, k, t: s, state, key, step)
        pos = state["pos"]
        ids = jax.lax.dynamic_slice(state["order"], (pos,), (batch_size,))
        # A pass's last batch is padded with weight 0 (as the epoch loop's last batch).
        valid = pos + jnp.arange(batch_size) < state["n_kept"]
        weights = jnp.where(valid, state["weights"][ids], 0.0)
        return ids, weights, dict(state, pos=pos + batch_size)

    def update(state, ids, weights, out):
        scores = state["scores"].at[jnp.where(weights > 0, ids, n)].set(out["loss"], mode="drop")
        return dict(state, scores=scores)

    def distribution(state):
        kept = (state["weights"] > 0).astype(jnp.float32)
        return kept / jnp.maximum(jnp.sum(kept), 1.0), state["scores"]

    return Sampler(init, draw, None, update, distribution, "mean")
