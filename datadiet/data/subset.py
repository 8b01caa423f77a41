"""A subset of the training set: ids (source order) with per-example weights."""
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Subset:
    ids: np.ndarray  # int, unique, in [0, n_train)
    weights: np.ndarray  # float32, >= 0, same length

    @classmethod
    def full(cls, n_train):
        return cls(np.arange(n_train), np.ones(n_train, np.float32))

    @classmethod
    def of(cls, ids, n_train, weights=None):
        """Validated constructor: a bad subset fails here, before any training."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or len(ids) == 0:
            raise ValueError(f"subset ids must be a non-empty 1-D array, got shape {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"subset ids must be integers, got dtype {ids.dtype}")
        if ids.min() < 0 or ids.max() >= n_train:
            raise ValueError(f"subset ids must lie in [0, {n_train}), got {ids.min()}..{ids.max()}")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("subset ids must be unique")
        weights = np.ones(len(ids), np.float32) if weights is None else np.asarray(weights, np.float32)
        if weights.shape != ids.shape:
            raise ValueError(f"subset weights shape {weights.shape} != ids shape {ids.shape}")
        if not np.all(np.isfinite(weights)) or weights.min() < 0:
            raise ValueError("subset weights must be finite and >= 0")
        return cls(ids.astype(np.int64), weights)

    def __len__(self):
        return len(self.ids)

    def epoch_batches(self, batch_size, seed, epoch):
        """One epoch's [steps, batch_size] ids and weights, shuffled by (seed, epoch) alone.

        The last batch is padded with weight-0 entries so every step has the same static shape.
        """
        order = np.random.default_rng([seed, epoch]).permutation(len(self.ids))
        steps = -(-len(order) // batch_size)
        pad = steps * batch_size - len(order)
        ids = np.concatenate([self.ids[order], np.zeros(pad, np.int64)])
        weights = np.concatenate([self.weights[order], np.zeros(pad, np.float32)])
        return ids.reshape(steps, batch_size).astype(np.int32), weights.reshape(steps, batch_size)


def largest_remainder(sizes, total):
    """Integer shares of `total` proportional to `sizes` that sum to `total` exactly: the
    floors, plus one for the largest remainders (ties: the earlier entry)."""
    sizes = np.asarray(sizes, np.float64)
    exact = sizes * total / sizes.sum()
    shares = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - shares), kind="stable")
    shares[order[:total - shares.sum()]] += 1
    return shares
