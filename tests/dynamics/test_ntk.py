import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

from datadiet.dynamics import ntk
from random_models import random_model

MODELS = [("mlp", (8, 8, 1), {"hidden": (12,), "batch_norm": True}),
          ("small_cnn", (8, 8, 1), {"width": 4, "hidden": 8})]
N = 5


@pytest.fixture(scope="module", params=MODELS, ids=[m[0] for m in MODELS])
def small(request):
    from datadiet.models import get_model
    name, shape, kwargs = request.param
    graphdef, params, batch_stats = random_model(lambda: get_model(name, 3, shape, 0, **kwargs))
    x = jnp.asarray(np.random.default_rng(1).standard_normal((N,) + shape), jnp.float32)
    return (graphdef, params, batch_stats, x), loop_jacobian(graphdef, params, batch_stats, x)


def loop_jacobian(graphdef, params, batch_stats, x):
    """Reference J [n*C, P]: jax.jacrev of ONE example's logits, example after example, each
    class row flattened over all parameters (row i*C + c)."""
    def logits(p, x1):
        return nnx.merge(graphdef, p, batch_stats, copy=True)(x1[None], train=False)[0]

    rows = []
    for i in range(x.shape[0]):
        jac = jax.jacrev(logits)(params, x[i])  # leaves [C, *leaf]
        for c in range(jax.tree.leaves(jac)[0].shape[0]):
            rows.append(ravel_pytree(jax.tree.map(lambda a: a[c], jac))[0])
    return np.asarray(jnp.stack(rows), np.float64)


@pytest.mark.parametrize("chunk_size", [2, 8], ids=["chunked", "one_chunk"])
def test_gram_equals_explicit_jacobian_product(small, chunk_size):
    data, j = small
    want = j @ j.T
    c = want.shape[0] // N
    want_trace = np.einsum("icjc->ij", want.reshape(N, c, N, c))
    got = ntk.ntk_gram(*data, chunk_size=chunk_size)  # chunk_size 2: chunks 2, 2, 1 + padding
    got_trace = ntk.ntk_gram(*data, trace=True, chunk_size=chunk_size)
    assert got.shape == (N * c, N * c) and got_trace.shape == (N, N)
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(got_trace, want_trace, rtol=1e-4, atol=1e-5 * scale)


def test_gram_compiles_once_per_chunk_size(small):
    data, _ = small
    graphdef, params, batch_stats, x = data
    ntk.ntk_gram(*data, chunk_size=2)
    jac, block = ntk._chunk_jacobian._cache_size(), ntk._gram_block._cache_size()
    x7 = jnp.concatenate([x, x[:2]])
    ntk.ntk_gram(graphdef, params, batch_stats, x7, chunk_size=2)  # 4 chunks of 2: cached
    ntk.ntk_gram(graphdef, params, batch_stats, x[:3], chunk_size=2)
    assert ntk._chunk_jacobian._cache_size() == jac
    assert ntk._gram_block._cache_size() == block


def test_kernel_distance():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 4))
    k = a @ a.T
    assert abs(ntk.kernel_distance(k, k)) < 1e-12
    assert abs(ntk.kernel_distance(k, 3.7 * k)) < 1e-12
    b = rng.standard_normal((6, 4))
    k2 = b @ b.T
    np.testing.assert_allclose(ntk.kernel_distance(0.2 * k, 5.0 * k2),
                               ntk.kernel_distance(k, k2), rtol=1e-12)
    # Orthogonal kernels (disjoint blocks): <K1, K2>_F = 0.
    k1, k2 = np.zeros((4, 4)), np.zeros((4, 4))
    k1[:2, :2], k2[2:, 2:] = k[:2, :2], k[2:4, 2:4]
    assert ntk.kernel_distance(k1, k2) == 1.0
    # Hand-computed: <I, e1 e1^T> = 1, ||I|| = sqrt(2), ||e1 e1^T|| = 1.
    np.testing.assert_allclose(ntk.kernel_distance(np.eye(2), np.diag([1.0, 0.0])),
                               1 - 1 / np.sqrt(2), rtol=1e-12)
    with pytest.raises(ValueError, match="shapes differ"):
        ntk.kernel_distance(k, k[:3, :3])
    with pytest.raises(ValueError, match="non-zero"):
        ntk.kernel_distance(k, np.zeros_like(k))


def test_velocity_is_the_distance_of_each_groups_kernels(small):
    data, _ = small
    graphdef, params, batch_stats, x = data
    moved = jax.tree.map(lambda p: p * 1.1 + 0.01, params)
    groups = [np.array([0, 2]), np.array([4, 1])]
    got = ntk.ntk_velocity(graphdef, (params, batch_stats), (moved, batch_stats), x, groups,
                           trace=True, chunk_size=2)
    for g, ids in enumerate(groups):
        want = ntk.kernel_distance(
            ntk.ntk_gram(graphdef, params, batch_stats, x[ids], trace=True),
            ntk.ntk_gram(graphdef, moved, batch_stats, x[ids], trace=True))
        np.testing.assert_allclose(got[g], want, rtol=1e-6, atol=1e-9)
        assert got[g] > 1e-6
    same = ntk.ntk_velocity(graphdef, (params, batch_stats), (params, batch_stats), x, groups)
    np.testing.assert_allclose(same, 0.0, atol=1e-6)


def test_score_groups_adjacent_and_per_percentile():
    rng = np.random.default_rng(0)
    scores = rng.permutation(100).astype(float)  # id i has rank scores[i]
    groups = ntk.score_groups(scores, 10)
    assert groups.shape == (10, 10)
    for k, g in enumerate(groups):  # group k: exactly the ranks 10k .. 10k + 9, in order
        np.testing.assert_array_equal(scores[g], np.arange(10 * k, 10 * k + 10))
    spread = ntk.score_groups(scores, 10, n_groups=3)
    np.testing.assert_array_equal(spread, groups[[0, 4, 9]])  # round(linspace(0, 9, 3))
    sampled = ntk.score_groups(scores, 5, percentiles=[0, 50, 90], seed=1)
    assert sampled.shape == (3, 5)
    for g, (lo, hi) in zip(sampled, [(0, 50), (50, 90), (90, 100)]):
        assert np.all((scores[g] >= lo) & (scores[g] < hi)) and len(set(g)) == 5
        assert np.all(np.diff(scores[g]) > 0)
    np.testing.assert_array_equal(
        sampled, ntk.score_groups(scores, 5, percentiles=[0, 50, 90], seed=1))
    assert not np.array_equal(
        sampled, ntk.score_groups(scores, 5, percentiles=[0, 50, 90], seed=2))


def test_bad_arguments_raise(small):
    data, _ = small
    with pytest.raises(ValueError, match="chunk_size"):
        ntk.ntk_gram(*data, chunk_size=0)
    with pytest.raises(ValueError, match="trace"):
        ntk.ntk_gram(*data, trace="yes")
    with pytest.raises(ValueError, match=r"groups\[1\]"):
        ntk.ntk_velocity(data[0], data[1:3], data[1:3], data[3], [[0], [7]])
    scores = np.arange(20.0)
    with pytest.raises(ValueError, match=r"group_size=0 .*\[1, 20\]"):
        ntk.score_groups(scores, 0)
    with pytest.raises(ValueError, match=r"n_groups=5 .*\[1, 4\]"):
        ntk.score_groups(scores, 5, n_groups=5)
    with pytest.raises(ValueError, match="not both"):
        ntk.score_groups(scores, 2, n_groups=2, percentiles=[0])
    with pytest.raises(ValueError, match="strictly increasing"):
        ntk.score_groups(scores, 2, percentiles=[50, 10])
    with pytest.raises(ValueError, match="fewer than group_size"):
        ntk.score_groups(scores, 3, percentiles=[0, 90])
