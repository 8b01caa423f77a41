"""Training-dynamics scores beyond forgetting:

  AUM (Pleiss et al. 2020): the mean over training of the logit margin z_y - max_{c != y} z_c
      (`logit_margin` in datadiet/training/step.py, emitted by the train step),
      from the train-mode outputs of each example's mini-batches (low = likely mislabelled).
  Dyn-Unc (He et al. 2024): with p_y(t) the probability of the label after epoch t (eval mode,
      the whole training set), the mean over the sliding windows of J consecutive epochs of the
      standard deviation (ddof 1, as in the paper) of p_y inside each window.
"""
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from datadiet import fileio


def aum_scores(margin_sum, presentations):
    """Mean margin per example (0 for an example never presented)."""
    return (np.asarray(margin_sum, np.float64)
            / np.maximum(np.asarray(presentations), 1)).astype(np.float32)


def dyn_unc_scores(p_true, window):
    """p_true: [T, N] probability of the label after epochs 1..T; window J <= T."""
    p = np.asarray(p_true, np.float64)
    if not 2 <= window <= len(p):
        raise ValueError(f"Dyn-Unc window J={window} needs 2 <= J <= {len(p)} scored epochs")
    views = np.lib.stride_tricks.sliding_window_view(p, window, axis=0)  # [T-J+1, N, J]
    return views.std(axis=-1, ddof=1).mean(axis=0).astype(np.float32)


@functools.partial(jax.jit, donate_argnums=0)
def _update(acc, epoch_ids, batch_weights, s, margin):
    n = acc["margin_sum"].shape[0]
    ids = jnp.where(batch_weights > 0, epoch_ids[s], n)  # padding -> out of range, dropped
    return {"margin_sum": acc["margin_sum"].at[ids].add(margin, mode="drop"),
            "presentations": acc["presentations"].at[ids].add(1, mode="drop")}


class AUMTracker:
    """Accumulates the train-mode logit margins; `step` is the loop's on_step callback,
    `snapshot`/`restore` make it resumable like ForgettingTracker."""

    def __init__(self, n_train, directory):
        self.n, self.directory, self.acc = n_train, directory, None

    def _path(self, epoch):
        return os.path.join(self.directory, f"aum_epoch{epoch:04d}.npz")

    def restore(self, epoch):
        if epoch == 0:
            self.acc = {"margin_sum": jnp.zeros(self.n, jnp.float32),
                        "presentations": jnp.zeros(self.n, jnp.int32)}
            return
        with np.load(self._path(epoch)) as f:
            self.acc = {k: jnp.asarray(f[k]) for k in ("margin_sum", "presentations")}

    def snapshot(self, epoch):
        os.makedirs(self.directory, exist_ok=True)
        fileio.write_npz(self._path(epoch), **{k: np.asarray(v) for k, v in self.acc.items()})

    def step(self, step, s, epoch_ids, batch_weights, out):
        del step
        self.acc = _update(self.acc, epoch_ids, batch_weights, s, out["logit_margin"])

    def scores(self):
        return aum_scores(self.acc["margin_sum"], self.acc["presentations"])
