"""Selectors that read penultimate embeddings (datadiet/scores/embeddings.py) as well as, or
instead of, a score:

  d2          D2-Pruning (Maharana et al., ICLR 2024): kNN graph on the embeddings, node value
              s_i + sum_{j in kNN(i)} exp(-gamma_f d_ij) s_j (forward message passing), then
              greedily the highest node, whose kNN neighbours j lose exp(-gamma_r d_ij) times its
              value (reverse message passing; the subtractive `weighted` update of the authors'
              GraphDensitySampler), to the budget.
  moderate    Moderate-DS (Xia et al., ICLR 2023): per class, the distance of each embedding to
              the class mean; keep the examples whose distance is closest to the class median.
  prototypes  Sorscher et al. (NeurIPS 2022): per class, k-means on the embeddings, score = the
              distance to the nearest centroid; keep the farthest (hard) or the nearest (easy).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from datadiet.geometry import kmeans, knn
from datadiet.data.subset import largest_remainder

from datadiet.prune.config import GEOMETRIC_METHODS as METHODS  # noqa: E402


def d2_values(scores, dist, nbrs, gamma_f):
    """Forward message passing: s_i + sum_j exp(-gamma_f d_ij) s_j over i's kNN."""
    s = jnp.asarray(scores, jnp.float32)
    return s + jnp.sum(jnp.exp(-gamma_f * jnp.asarray(dist)) * s[jnp.asarray(nbrs)], axis=1)


@functools.partial(jax.jit, static_argnames="budget")
def _greedy(values, dist, nbrs, gamma_r, budget):
    def body(t, carry):
        v, chosen = carry
        best = jnp.argmax(v)  # ties: the lowest id
        v = v.at[nbrs[best]].add(-jnp.exp(-gamma_r * dist[best]) * v[best])
        return v.at[best].set(-jnp.inf), chosen.at[t].set(best)

    return jax.lax.fori_loop(0, budget, body, (values, jnp.zeros(budget, jnp.int32)))[1]


def d2_pick(scores, emb, k, *, neighbors=10, gamma_f=1.0, gamma_r=-1.0):
    """k ids by D2-Pruning; gamma_r < 0 means 1 / embedding dim (the authors' default)."""
    if k == 0:
        return np.zeros(0, int)
    gamma_r = 1.0 / emb.shape[1] if gamma_r < 0 else gamma_r
    dist, nbrs = knn(emb, min(neighbors, len(emb) - 1))
    v = d2_values(scores, dist, nbrs, gamma_f)
    return np.asarray(_greedy(v, jnp.asarray(dist), jnp.asarray(nbrs), gamma_r, int(k)))


def moderate_pick(emb, k):
    """k ids (of this class's rows) closest to the median distance to the class mean."""
    d = np.linalg.norm(emb - emb.mean(0), axis=1)
    return np.lexsort((np.arange(len(d)), np.abs(d - np.median(d))))[:k]


def prototype_distances(emb, clusters, seed):
    c, assign, _ = kmeans(emb, min(clusters, len(emb)), seed=seed)
    return np.linalg.norm(emb - c[assign], axis=1)


def prototypes_pick(emb, k, *, clusters=10, keep="hard", seed=0):
    d = prototype_distances(emb, clusters, seed)
    order = np.lexsort((np.arange(len(d)), -d if keep == "hard" else d))
    return order[:k]


def geometric_keep_ids(method, emb, labels, keep, *, scores=None, class_balanced=False, seed=0,
                       d2_neighbors=10, d2_gamma_f=1.0, d2_gamma_r=-1.0, prototypes_keep="hard",
                       prototypes_clusters=10):
    """Sorted kept ids. moderate and prototypes are per class as in their papers (each class
    keeps a share proportional to its size); d2 is over all data unless class_balanced."""
    emb = np.asarray(emb, np.float32)
    n = len(emb)
    if method not in METHODS:
        raise ValueError(f"geometric method {method!r} is not one of {list(METHODS)}")
    per_class = class_balanced or method != "d2"
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if per_class else [np.arange(n)]
    budgets = largest_remainder([len(g) for g in groups], int(round(keep * n)))
    kept = []
    for g, b in zip(groups, budgets):
        if method == "d2":
            local = d2_pick(scores[g], emb[g], b, neighbors=d2_neighbors, gamma_f=d2_gamma_f,
                            gamma_r=d2_gamma_r)
        elif method == "moderate":
            local = moderate_pick(emb[g], b)
        else:
            local = prototypes_pick(emb[g], b, clusters=prototypes_clusters,
                                    keep=prototypes_keep, seed=seed)
        kept.append(g[local])
    return np.sort(np.concatenate(kept))

