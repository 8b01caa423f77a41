"""GRAD-MATCH subset selection (Killamsetty et al. 2021): weighted subsets whose weighted
gradient sum matches the full training (or validation) gradient, solved by OMP.

Three ways to cut the problem:
- whole:     one OMP over all candidate examples, budget k;
- per_class: one OMP per class (batched with vmap), budgets proportional to class sizes,
             targets the class's own gradient sum;
- per_batch: columns are mini-batch mean gradients of a random partition into batches of B,
             budget k // B batches; every member of a chosen batch gets its batch's weight.
When OMP stops before the budget (tolerance reached, or no column correlates positively any
more, e.g. k > gradient dimension), the rest of the budget is filled with random unchosen
examples, as CORDS does; they get the mean OMP weight (CORDS gives 1, which under its
gradient-sum target makes them about N/k times lighter than the chosen ones).
"""
import numpy as np
import jax.numpy as jnp

from datadiet.coresets.omp import omp, omp_batched
from datadiet.data.subset import largest_remainder



def class_budgets(class_sizes, k):
    """Budgets proportional to class sizes that sum to k exactly (largest remainders)."""
    sizes = np.asarray(class_sizes, np.int64)
    if k > sizes.sum():
        raise ValueError(f"budget k={k} exceeds the {sizes.sum()} candidates")
    return np.minimum(largest_remainder(sizes, k), sizes)


def select_whole(grads, target, k, lam, eps):
    res = omp(jnp.asarray(grads), jnp.asarray(target), k, lam=lam, eps=eps)
    chosen = np.asarray(res.indices)[: int(res.n_selected)]
    return chosen, np.asarray(res.weights)[: len(chosen)], float(res.errors[-1])


def select_per_class(grads, labels, targets, k, lam, eps, budgets=None):
    """grads [N, d] (numpy or device), labels [N], targets [C, d] (one per class); budgets
    (one per class present, in label order) default to proportional to the class sizes here."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    if budgets is None:
        budgets = class_budgets([len(m) for m in members], k)
    n_max, k_max = max(len(m) for m in members), int(budgets.max())
    rows = np.stack([np.pad(m, (0, n_max - len(m))) for m in members])  # [C, n_max]
    valid = np.stack([np.arange(n_max) < len(m) for m in members])
    G = jnp.asarray(grads)[jnp.asarray(rows)]  # [C, n_max, d], gathered on device
    res = omp_batched(G, jnp.asarray(targets)[classes], k_max, lam=lam, eps=eps,
                      valid=jnp.asarray(valid), budgets=jnp.asarray(budgets))
    indices, weights, n_sel = (np.asarray(a) for a in (res.indices, res.weights, res.n_selected))
    ids = np.concatenate([rows[c, indices[c, :n_sel[c]]] for c in range(len(classes))])
    w = np.concatenate([weights[c, :n_sel[c]] for c in range(len(classes))])
    errors = np.asarray(res.errors)[:, -1]
    return ids, w, float(np.mean(errors))


def select_per_batch(grads, target, batch_ids, k_batches, lam, eps):
    """grads [N, d] of the candidates; batch_ids [nb, B] rows of grads (a random partition);
    columns are the batches' mean gradients. Returns member rows and their batches' weights."""
    G = jnp.asarray(grads)[jnp.asarray(batch_ids)].mean(axis=1)  # [nb, d]
    res = omp(G, jnp.asarray(target), k_batches, lam=lam, eps=eps)
    chosen = np.asarray(res.indices)[: int(res.n_selected)]
    weights = np.asarray(res.weights)[: len(chosen)]
    ids = np.asarray(batch_ids)[chosen].reshape(-1)
    return ids, np.repeat(weights, batch_ids.shape[1]), float(res.errors[-1])


def fill_budget(ids, weights, candidates, k, rng):
    """Top up a selection to exactly k with random unchosen candidates (mean OMP weight)."""
    ids, weights = np.asarray(ids), np.asarray(weights, np.float32)
    missing = k - len(ids)
    if missing <= 0:
        return ids[:k], weights[:k]
    rest = np.setdiff1d(candidates, ids)
    extra = rng.choice(rest, size=missing, replace=False)
    fill = weights.mean() if len(weights) and weights.sum() > 0 else 1.0
    return (np.concatenate([ids, extra]),
            np.concatenate([weights, np.full(missing, fill, np.float32)]))


def fill_per_class(ids, weights, candidates, labels, budgets, rng):
    """fill_budget class by class: each class topped up to its budget from its own unchosen
    candidates (its mean OMP weight), so the selection keeps the class proportions.
    labels: of `candidates`; budgets: one per class present, in label order."""
    ids, weights = np.asarray(ids), np.asarray(weights, np.float32)
    label_of = dict(zip(candidates.tolist(), labels.tolist()))
    chosen = np.array([label_of[i] for i in ids.tolist()], dtype=labels.dtype)
    parts = [fill_budget(ids[chosen == c], weights[chosen == c], candidates[labels == c], b, rng)
             for c, b in zip(np.unique(labels), budgets)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
