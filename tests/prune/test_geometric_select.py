"""D2-Pruning on a hand-computed 6-node graph, Moderate and prototypes on planted clusters."""
import numpy as np
import pytest
from sklearn.cluster import KMeans

from datadiet.prune import default_prune_config, geometric, validate_prune_config

# Six points on a line; with k = 2 (ties to the lower id) the kNN lists, worked by hand, are
# 0:{1 (d 1), 2 (3)}  1:{0 (1), 2 (2)}  2:{1 (2), 0 (3)}  3:{2 (3), 4 (4)}  4:{3 (4), 5 (5)}
# 5:{4 (5), 3 (9)}.
X = np.array([[0.0], [1.0], [3.0], [6.0], [10.0], [15.0]], np.float32)
S = np.array([1.0, 2.0, 1.0, 3.0, 1.0, 2.0], np.float32)
e = np.exp


def test_d2_forward_message_passing_by_hand():
    dist, nbrs = geometric.knn(X, 2)
    assert nbrs.tolist() == [[1, 2], [0, 2], [1, 0], [2, 4], [3, 5], [4, 3]]
    hand = [1 + e(-1) * 2 + e(-3) * 1, 2 + e(-1) * 1 + e(-2) * 1, 1 + e(-2) * 2 + e(-3) * 1,
            3 + e(-3) * 1 + e(-4) * 1, 1 + e(-4) * 3 + e(-5) * 2, 2 + e(-5) * 1 + e(-9) * 3]
    np.testing.assert_allclose(geometric.d2_values(S, dist, nbrs, 1.0), hand, rtol=1e-5)


def test_d2_greedy_selection_by_hand():
    # Values above: v3 = 3.068 is picked; its neighbours 2 and 4 lose e^-3 v3 and e^-4 v3. Then
    # v1 = 2.503 (0 and 2 lose e^-1 v1, e^-2 v1), so v0 drops to 0.865 and v5 = 2.007 is next;
    # 4 loses e^-5 v5 and, at 0.999, beats v0 = 0.865 and v2 = 0.829. Without the reverse
    # messages the order would be 3, 1, 5, 0.
    picked = geometric.d2_pick(S, X, 4, neighbors=2, gamma_f=1.0, gamma_r=1.0)
    assert picked.tolist() == [3, 1, 5, 4]
    no_reverse = geometric.d2_pick(S, X, 4, neighbors=2, gamma_f=1.0, gamma_r=1e6)
    assert no_reverse.tolist() == [3, 1, 5, 0]


def _shells(centre, radii, rng):
    """Points at the planted distances from `centre`, in +/- pairs so the mean is `centre`."""
    u = rng.normal(size=(len(radii), len(centre)))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    pts = np.concatenate([centre + radii[:, None] * u, centre - radii[:, None] * u])
    return pts, np.concatenate([radii, radii])


def test_moderate_keeps_the_median_distance_shell_per_class():
    rng = np.random.default_rng(0)
    a, ra = _shells(np.zeros(4), np.array([1.0, 2, 3, 4, 5]), rng)
    b, rb = _shells(np.full(4, 20.0), np.array([0.5, 1, 2, 7, 9]), rng)
    emb, radius = np.concatenate([a, b]), np.concatenate([ra, rb])
    labels = np.repeat([0, 1], 10)
    ids = geometric.geometric_keep_ids("moderate", emb, labels, 0.3)  # 3 per class
    # class 0: median 3 -> radii 3, 3, then the lower id of the 2/4 tie at distance 1
    assert sorted(radius[ids[labels[ids] == 0]].tolist()) == [2, 3, 3]
    # class 1: median 2 -> radii 2, 2, then 1 (|1 - 2| = 1 < |0.5 - 2|, |7 - 2|)
    assert sorted(radius[ids[labels[ids] == 1]].tolist()) == [1, 2, 2]


@pytest.mark.parametrize("keep", ["hard", "easy"])
def test_prototypes_keep_the_far_or_near_points(keep):
    rng = np.random.default_rng(1)
    blobs = [c + 0.05 * rng.normal(size=(20, 3)) for c in ([0, 0, 0], [5, 0, 0])]
    outliers = np.array([[0, 3, 0], [5, -3, 0]], float)  # far from both centroids
    emb = np.concatenate([*blobs, outliers])
    labels = np.zeros(len(emb), int)
    ids = geometric.geometric_keep_ids("prototypes", emb, labels, 2 / 42, prototypes_keep=keep,
                                       prototypes_clusters=2)
    # reference: scikit-learn's k-means on the same points, distance to the nearest centroid
    ref = KMeans(2, n_init=10, random_state=0).fit(emb)
    d = np.linalg.norm(emb - ref.cluster_centers_[ref.labels_], axis=1)
    expected = np.argsort(-d if keep == "hard" else d)[:2]
    assert ids.tolist() == sorted(expected.tolist())
    if keep == "hard":
        assert ids.tolist() == [40, 41]


@pytest.mark.parametrize("field,value", [("prototypes_keep", "medium"), ("embeddings", "/nope.npy"),
                                         ("d2_neighbors", 0)])
def test_bad_geometric_config_is_refused(field, value, tmp_path):
    c = default_prune_config()
    c.method = "prototypes" if field == "prototypes_keep" else "d2"
    c.keep = 0.5
    np.save(tmp_path / "e.npy", np.zeros((4, 2)))
    c.embeddings, c.scores = str(tmp_path / "e.npy"), str(tmp_path / "e.npy")
    c[field] = value
    with pytest.raises(ValueError, match=f"prune.{field}"):
        validate_prune_config(c)
