"""Forgetting events (Toneva et al. 2019), tracked on device from the train-mode predictions of
each mini-batch: an event is a correct prediction followed, at the example's next presentation,
by a wrong one. Examples never predicted correctly rank highest."""
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from datadiet import fileio

FIELDS = ("previous", "learned", "forgets", "presentations")


@functools.partial(jax.jit, donate_argnums=0)
def _update(counts, epoch_ids, batch_weights, s, correct):
    n = counts["forgets"].shape[0]
    ids = jnp.where(batch_weights > 0, epoch_ids[s], n)  # padding -> out of range, dropped
    previous = counts["previous"].at[ids].get(mode="fill", fill_value=False)
    forgot = previous & ~correct
    return {
        "previous": counts["previous"].at[ids].set(correct, mode="drop"),
        "learned": counts["learned"].at[ids].set(counts["learned"].at[ids].get(
            mode="fill", fill_value=False) | correct, mode="drop"),
        "forgets": counts["forgets"].at[ids].add(forgot.astype(jnp.int32), mode="drop"),
        "presentations": counts["presentations"].at[ids].add(1, mode="drop"),
    }


def forgetting_scores(forgets, learned, presentations):
    """Forgetting counts; a never-learned example gets presentations + 1, more than any learned
    one can reach (at most presentations / 2 events)."""
    forgets = np.asarray(forgets, np.float32)
    return np.where(np.asarray(learned), forgets,
                    np.asarray(presentations, np.float32) + 1).astype(np.float32)


class ForgettingTracker:
    """`step` is the training loop's on_step callback; `snapshot`/`restore` make it resumable."""

    def __init__(self, n_train, directory):
        self.n, self.directory = n_train, directory
        self.counts = None

    def _zeros(self):
        return {"previous": jnp.zeros(self.n, bool), "learned": jnp.zeros(self.n, bool),
                "forgets": jnp.zeros(self.n, jnp.int32),
                "presentations": jnp.zeros(self.n, jnp.int32)}

    def _path(self, epoch):
        return os.path.join(self.directory, f"forgetting_epoch{epoch:04d}.npz")

    def restore(self, epoch):
        """The counts after `epoch` epochs (saved by `snapshot`); zeros at epoch 0."""
        if epoch == 0:
            self.counts = self._zeros()
            return
        with np.load(self._path(epoch)) as f:
            self.counts = {k: jnp.asarray(f[k]) for k in FIELDS}

    def snapshot(self, epoch):
        os.makedirs(self.directory, exist_ok=True)
        fileio.write_npz(self._path(epoch), **{k: np.asarray(v) for k, v in self.counts.items()})

    def step(self, step, s, epoch_ids, batch_weights, out):
        del step
        self.counts = _update(self.counts, epoch_ids, batch_weights, s, out["correct"])

    def scores(self):
        c = self.counts
        return forgetting_scores(c["forgets"], c["learned"], c["presentations"])
