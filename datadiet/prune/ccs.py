"""Coverage-centric coreset selection (Zheng et al., ICLR 2023, Algorithm 1): drop the hardest
`beta` fraction, split the remaining score range into `strata` equal-width bins, and fill the
budget bin by bin from the smallest, each bin taking an equal share of what is left (the
leftover of a small bin goes on to the larger ones), drawn at random inside each bin. The budget
counts all examples (keep * N), as in the paper's code."""
import numpy as np


def strata_of(scores, strata):
    """Bin index in [0, strata) of each score: equal-width bins over [min, max], the max in the
    last bin."""
    lo, hi = float(scores.min()), float(scores.max())
    if hi == lo:
        return np.zeros(len(scores), int)
    width = (hi - lo) / strata
    return np.minimum(((scores - lo) / width).astype(int), strata - 1)


def stratum_budgets(sizes, budget):
    """How many each bin gives: bins in ascending size (ties by index) each take
    min(size, remaining // bins left)."""
    sizes = np.asarray(sizes, int)
    out = np.zeros(len(sizes), int)
    left = int(budget)
    for i, b in enumerate(np.argsort(sizes, kind="stable")):
        out[b] = min(sizes[b], left // (len(sizes) - i))
        left -= out[b]
    return out


def ccs_pick(scores, ids, k, beta, strata, seed):
    """k of `ids` (scores `scores`, higher = harder) by CCS."""
    n_drop = int(round(beta * len(ids)))
    order = np.lexsort((ids, -scores))  # hardest first, ties by id
    rest = np.sort(order[n_drop:])
    if len(rest) == 0:
        return ids[:0]
    bins = strata_of(scores[rest], strata)
    budgets = stratum_budgets(np.bincount(bins, minlength=strata), min(k, len(rest)))
    rng = np.random.default_rng([seed, 0xcc5])
    kept = [rng.choice(rest[bins == b], size=budgets[b], replace=False)
            for b in range(strata) if budgets[b]]
    return ids[np.concatenate(kept)] if kept else ids[:0]
