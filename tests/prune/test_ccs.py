"""CCS against a brute-force re-implementation of the paper's Algorithm 1 on planted scores."""
import numpy as np
import pytest

from datadiet.prune import keep_ids
from datadiet.prune.ccs import ccs_pick


def _brute_counts(scores, k, beta, strata):
    """Per-stratum counts CCS must take: loop over every example and bin by hand."""
    n = len(scores)
    order = sorted(range(n), key=lambda i: (-scores[i], i))
    rest = sorted(order[int(round(beta * n)):])
    lo, hi = min(scores[i] for i in rest), max(scores[i] for i in rest)
    members = [[] for _ in range(strata)]
    for i in rest:
        b = strata - 1
        for j in range(strata):  # first bin whose upper edge is above the score
            if scores[i] < lo + (j + 1) * (hi - lo) / strata:
                b = j
                break
        members[b].append(i)
    left, taken = min(k, len(rest)), {}
    for pos, b in enumerate(sorted(range(strata), key=lambda j: (len(members[j]), j))):
        taken[b] = min(len(members[b]), left // (strata - pos))
        left -= taken[b]
    return members, taken


@pytest.mark.parametrize("beta,strata,keep", [(0.1, 5, 0.3), (0.0, 7, 0.1), (0.3, 4, 0.6)])
def test_ccs_matches_brute_force(beta, strata, keep):
    rng = np.random.default_rng(3)
    # planted: a skewed score distribution so strata have very different sizes
    scores = np.concatenate([rng.exponential(1.0, 300), rng.uniform(5, 6, 20)]).astype(np.float32)
    k = int(round(keep * len(scores)))
    ids = keep_ids(scores, keep, "ccs", ccs_beta=beta, ccs_strata=strata, seed=1)
    members, taken = _brute_counts(scores.tolist(), k, beta, strata)
    assert len(set(ids.tolist())) == len(ids) == sum(taken.values())
    for b in range(strata):
        assert len(set(ids.tolist()) & set(members[b])) == taken[b], b
    dropped = np.argsort(-scores, kind="stable")[:int(round(beta * len(scores)))]
    assert not set(ids.tolist()) & set(dropped.tolist())


def test_ccs_budget_carries_leftover_to_larger_strata():
    # bins of sizes 1, 2 and 100: budget 30 -> 1, 2 (both full), the rest 27 from the big one
    scores = np.array([0.0] + [1.5] * 2 + [3.0] * 100, np.float32)
    picked = ccs_pick(scores, np.arange(len(scores)), 30, 0.0, 3, seed=0)
    assert np.sum(picked == 0) == 1 and np.sum((picked >= 1) & (picked <= 2)) == 2
    assert np.sum(picked >= 3) == 27


def test_ccs_is_seeded_and_random_within_strata():
    scores = np.random.default_rng(0).normal(size=500).astype(np.float32)
    a = keep_ids(scores, 0.2, "ccs", seed=0)
    assert np.array_equal(a, keep_ids(scores, 0.2, "ccs", seed=0))
    assert not np.array_equal(a, keep_ids(scores, 0.2, "ccs", seed=1))
