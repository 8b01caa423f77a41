"""Label-noise injection that records exactly which examples it changed."""
import numpy as np


def corrupt_labels(labels, num_classes, fraction, seed):
    """Moves round(fraction * N) labels, chosen at random, to a different random class.

    Returns the new labels and {"ids", "old_labels", "new_labels"} (ids in source order, sorted).
    """
    rng = np.random.default_rng([seed, 0x1abe1])  # its own stream: the data order stays unchanged
    n = len(labels)
    ids = np.sort(rng.choice(n, size=int(round(fraction * n)), replace=False))
    shift = rng.integers(1, num_classes, size=len(ids))  # never 0: the label really changes
    new_labels = labels.copy()
    new_labels[ids] = (labels[ids] + shift) % num_classes
    record = {"ids": ids.tolist(), "old_labels": labels[ids].tolist(),
              "new_labels": new_labels[ids].tolist()}
    return new_labels, record
