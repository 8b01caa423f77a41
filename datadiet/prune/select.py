"""Which examples a pruned run keeps, from per-example scores (higher = harder, see
datadiet/scores/definitions.py). Ranking is by descending score, ties broken by id."""
import numpy as np

from datadiet.data.subset import largest_remainder
from datadiet.prune.ccs import ccs_pick

METHODS = ("high", "low", "window", "random", "ccs")


def keep_ids(scores, keep, method, *, offset=0.0, labels=None, class_balanced=False, seed=0,
             ccs_beta=0.1, ccs_strata=50):
    """Sorted ids of the kept examples.

    keep: fraction of the examples kept, in (0, 1]. method:
      high    the top `keep` of the ranking          low     the bottom `keep`
      window  ranks [offset, offset + keep) as fractions of N (offset 0 = the highest scores)
      random  a uniform draw (scores only give N), seeded by `seed`
      ccs     coverage-centric: drop the hardest `ccs_beta`, sample `ccs_strata` score strata
              (datadiet/prune/ccs.py)
    class_balanced: the same rule within each class, each class keeping a share proportional
    to its size (largest remainders make the shares sum to round(keep * N)).
    """
    scores = np.asarray(scores)
    _check(scores, keep, method, offset)
    n = len(scores)
    if not class_balanced:
        return np.sort(_pick(scores, np.arange(n), int(round(keep * n)), method, offset, seed,
                             (ccs_beta, ccs_strata)))
    if labels is None or len(labels) != n:
        raise ValueError("class_balanced=True needs labels with one entry per score")
    labels = np.asarray(labels)
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    budgets = largest_remainder([len(m) for m in members], int(round(keep * n)))
    kept = [_pick(scores[m], m, k, method, offset, seed + int(c), (ccs_beta, ccs_strata))
            for c, m, k in zip(classes, members, budgets)]
    return np.sort(np.concatenate(kept))


def _check(scores, keep, method, offset):
    if method not in METHODS:
        raise ValueError(f"prune method {method!r} is not one of {list(METHODS)}")
    if not 0 < keep <= 1:
        raise ValueError(f"keep={keep} must be a fraction in (0, 1]")
    if method == "window" and not 0 <= offset <= 1 - keep + 1e-9:
        raise ValueError(f"window offset={offset} must be in [0, 1 - keep={1 - keep:.3g}]")
    if scores.ndim != 1 or not np.all(np.isfinite(scores)):
        raise ValueError(f"scores must be a finite 1-D array, got shape {scores.shape}")


def _pick(scores, ids, k, method, offset, seed, ccs=(0.1, 50)):
    """k of `ids` (whose scores are `scores`) by `method`."""
    k = min(k, len(ids))
    if method == "ccs":
        return ccs_pick(scores, ids, k, *ccs, seed)
    if method == "random":
        return np.random.default_rng([seed, 0x9a1]).choice(ids, size=k, replace=False)
    ranked = ids[np.lexsort((ids, -scores))]  # descending score, then ascending id
    if method == "high":
        return ranked[:k]
    if method == "low":
        return ranked[len(ranked) - k:]
    start = min(int(round(offset * len(ranked))), len(ranked) - k)
    return ranked[start:start + k]
