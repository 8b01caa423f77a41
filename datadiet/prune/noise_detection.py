"""How well a score finds the corrupted labels: precision and recall among the k highest."""
import numpy as np


def noise_detection(scores, noisy_ids, k=None):
    """{k, precision, recall} of the `noisy_ids` among the k highest scores (k defaults to the
    number of noisy examples, where precision = recall)."""
    scores, noisy_ids = np.asarray(scores), np.asarray(noisy_ids, np.int64)
    if len(noisy_ids) == 0:
        raise ValueError("noisy_ids is empty: no label noise to detect")
    k = len(noisy_ids) if k is None else int(k)
    if not 0 < k <= len(scores):
        raise ValueError(f"k={k} must be in [1, {len(scores)}]")
    top = np.lexsort((np.arange(len(scores)), -scores))[:k]
    hits = np.isin(top, noisy_ids).sum()
    return {"k": k, "precision": float(hits / k), "recall": float(hits / len(noisy_ids))}
