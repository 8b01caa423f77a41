"""Device kNN and k-means against scikit-learn."""
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.neighbors import NearestNeighbors

from datadiet.geometry import kmeans, knn


def test_knn_ids_equal_sklearn_brute_force():
    x = np.random.default_rng(0).normal(size=(1000, 16)).astype(np.float32)
    d, ids = knn(x, 10, chunk=128)  # 1000 is not a multiple of the chunk: padding is exercised
    ref_d, ref_ids = NearestNeighbors(n_neighbors=11, algorithm="brute").fit(x).kneighbors(x)
    assert np.array_equal(ids, ref_ids[:, 1:])  # sklearn's first neighbour is the point itself
    np.testing.assert_allclose(d, ref_d[:, 1:], rtol=1e-3, atol=1e-3)


def test_knn_ties_go_to_the_lower_index():
    x = np.array([[0.0], [1.0], [-1.0], [2.0], [-2.0]], np.float32)  # 1 and 2 tie for 0
    _, ids = knn(x, 2, exclude_self=True)
    assert ids[0].tolist() == [1, 2]


def _brute_force(x, k):
    """float64 difference-form distances, self excluded, ties to the lower id."""
    x = x.astype(np.float64)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    ids = np.array([np.lexsort((np.arange(len(x)), row))[:k] for row in d2])
    return np.sqrt(np.take_along_axis(d2, ids, 1)), ids


def test_knn_orders_planted_near_ties_that_float32_cannot_resolve():
    # 40 groups: an integer centre (coordinates up to 100, so ||c||^2 ~ 5e4 and the float32
    # matmul form rounds at ~4e-3) and 10 points at distances 1 + j / 2^16 along distinct axes
    # (exact in float32; squared distances 3e-5 apart). The centre's neighbours are its points
    # in the planted order; all other rows have no exact ties, so scikit-learn's float64 ids
    # must be equal too.
    rng = np.random.default_rng(0)
    pts, planted = [], []
    for g in range(40):
        c = rng.integers(-100, 101, 16).astype(np.float64)
        r = 1 + rng.permutation(np.arange(1, 11)) / 2 ** 16
        shell = c + np.eye(16)[rng.permutation(16)[:10]] * (r * rng.choice([-1, 1], 10))[:, None]
        base = 11 * g
        pts += [c, *shell]
        planted.append(base + 1 + np.argsort(r))
    x = np.array(pts, np.float32)
    d, ids = knn(x, 10, chunk=64)
    assert np.array_equal(ids[::11], np.array(planted))
    ref_d, ref_ids = NearestNeighbors(n_neighbors=10, algorithm="brute").fit(x).kneighbors()
    assert np.array_equal(ids, ref_ids)
    np.testing.assert_allclose(d, ref_d, rtol=1e-6)


@pytest.mark.parametrize("extra", [None, 0])  # 0: most rows go to the exact fallback
def test_knn_exact_ties_and_duplicates_go_to_the_lower_id(extra):
    x = np.random.default_rng(1).integers(0, 3, (300, 3)).astype(np.float32)  # 27 sites, many ties
    d, ids = knn(x, 8, chunk=128, extra=extra)
    ref_d, ref_ids = _brute_force(x, 8)
    assert np.array_equal(ids, ref_ids)
    np.testing.assert_allclose(d, ref_d, rtol=1e-6)
    # scikit-learn keeps and orders tied points by its heap, not by id: only distances agree
    sk_d, _ = NearestNeighbors(n_neighbors=8, algorithm="brute").fit(x).kneighbors()
    np.testing.assert_allclose(d, sk_d, rtol=1e-6)


def test_kmeans_objective_matches_sklearn_on_blobs():
    x, _ = make_blobs(n_samples=2000, centers=8, n_features=5, cluster_std=1.0, random_state=0)
    _, assign, inertia = kmeans(x, 8, seed=0)
    ref = KMeans(8, n_init=10, random_state=0).fit(x).inertia_
    assert abs(inertia - ref) <= 0.01 * ref
    assert len(np.unique(assign)) == 8
