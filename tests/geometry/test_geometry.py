"""Device kNN and k-means against scikit-learn."""
import numpy as np
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


def test_kmeans_objective_matches_sklearn_on_blobs():
    x, _ = make_blobs(n_samples=2000, centers=8, n_features=5, cluster_std=1.0, random_state=0)
    _, assign, inertia = kmeans(x, 8, seed=0)
    ref = KMeans(8, n_init=10, random_state=0).fit(x).inertia_
    assert abs(inertia - ref) <= 0.01 * ref
    assert len(np.unique(assign)) == 8
