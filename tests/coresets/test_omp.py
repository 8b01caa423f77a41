"""OMP against independent references: scikit-learn's orthogonal_mp (plain OMP), scipy's nnls
refit on the chosen support (non-negative, with and without ridge), a planted sparse solution,
a fresh Cholesky factorisation (the factor updates), and the per-problem calls (batching).
Exactness checks run in float64; the shapes are shared so the solver compiles only a few times."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from sklearn.linear_model import orthogonal_mp

from datadiet.coresets import omp as omp_module
from datadiet.coresets.omp import omp, omp_batched

N, D, K = 200, 60, 40  # K > 32: the solver's arrays grow once (capacities 32, 40)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def gaussian(seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)), rng.standard_normal(D)


def correlated(seed):
    """Low-rank-plus-noise rows with the mean as target: the non-negative fit then sets some
    chosen rows' weights to 0 on the way, which exercises the active-set drops and re-entries."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((N, 8)) @ rng.standard_normal((8, D))
    G += 0.5 * rng.standard_normal((N, D))
    return G, G.mean(0)


def support(res):
    idx = np.asarray(res.indices)
    return idx[idx >= 0]


def nnls_refit(G, b, S, lam):
    stacked = np.vstack([G[S].T, np.sqrt(lam) * np.eye(len(S))])
    return scipy.optimize.nnls(stacked, np.concatenate([b, np.zeros(len(S))]))[0]


def test_plain_omp_matches_sklearn_order_and_coefficients():
    G, b = gaussian(0)
    res = omp(jnp.asarray(G), jnp.asarray(b), K, nonneg=False)
    path = orthogonal_mp(G.T, b, n_nonzero_coefs=K, return_path=True)  # [N, K]: coefs per step
    sk_order = [int(np.flatnonzero((path[:, t] != 0) & (path[:, t - 1] == 0 if t else True))[0])
                for t in range(K)]
    np.testing.assert_array_equal(support(res), sk_order)
    np.testing.assert_allclose(np.asarray(res.weights), path[sk_order, -1], rtol=1e-9, atol=1e-12)
    # The error history is that of the sklearn path.
    sk_err = [np.linalg.norm(G.T @ path[:, t] - b) / np.linalg.norm(b) for t in range(K)]
    np.testing.assert_allclose(np.asarray(res.errors), sk_err, rtol=1e-9)


@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_nonneg_weights_equal_scipy_nnls_on_support(lam):
    G, b = correlated(1)
    res = omp(jnp.asarray(G), jnp.asarray(b), K, lam=lam)
    S = support(res)
    assert len(S) == K
    w = np.asarray(res.weights)
    assert (w >= 0).all()
    ref = nnls_refit(G, b, S, lam)
    np.testing.assert_allclose(w, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    # Every step's error is that of the exact NNLS refit on the support so far; on the way some
    # rows leave the fit (weight 0) and some come back, so both active-set moves were taken.
    zero_before, left, came_back = set(), 0, 0
    for t in range(1, K + 1):
        ref_t = nnls_refit(G, b, S[:t], lam)
        err_t = np.linalg.norm(G[S[:t]].T @ ref_t - b) / np.linalg.norm(b)
        np.testing.assert_allclose(float(res.errors[t - 1]), err_t, rtol=1e-8)
        zero = set(S[:t][ref_t == 0].tolist())
        left, came_back = left + len(zero - zero_before), came_back + len(zero_before - zero)
        zero_before = zero
    assert left > 0 and came_back > 0


def test_planted_nonneg_combination_is_recovered():
    G, _ = gaussian(2)
    rng = np.random.default_rng(2)
    planted = rng.choice(N, 5, replace=False)
    w_true = rng.uniform(1, 2, 5)
    b = G[planted].T @ w_true
    res = omp(jnp.asarray(G), jnp.asarray(b), K, eps=1e-9)
    assert int(res.n_selected) == 5
    order = np.argsort(support(res))
    np.testing.assert_array_equal(support(res)[order], np.sort(planted))
    np.testing.assert_allclose(np.asarray(res.weights)[:5][order], w_true[np.argsort(planted)],
                               rtol=1e-9)
    assert float(res.errors[4]) < 1e-9


def test_eps_stops_early():
    G, b = correlated(3)
    eps = 0.5
    res = omp(jnp.asarray(G), jnp.asarray(b), K, lam=0.1, eps=eps)
    n = int(res.n_selected)
    errors = np.asarray(res.errors)
    assert 1 < n < K
    assert errors[n - 1] < eps <= errors[n - 2]
    np.testing.assert_array_equal(errors[n:], errors[n - 1])  # constant after the stop
    np.testing.assert_array_equal(np.asarray(res.indices)[n:], -1)
    np.testing.assert_array_equal(np.asarray(res.weights)[n:], 0)
    assert np.all(np.diff(errors[:n]) <= 1e-12)  # the error never rises


@pytest.mark.parametrize("nonneg", [True, False])
def test_no_repeats_and_invalid_rows_never_chosen(nonneg):
    G, b = correlated(4)
    G[7] = G[3]  # an exact duplicate row: numerically dependent once row 3 is in
    valid = np.zeros(N, bool)
    valid[:12] = True  # fewer usable rows than the budget
    res = omp(jnp.asarray(G), jnp.asarray(b), K, nonneg=nonneg, valid=jnp.asarray(valid),
              budget=K)
    S = support(res)
    assert len(S) == len(set(S.tolist())) <= 12
    assert valid[S].all()
    assert np.isfinite(np.asarray(res.weights)).all()
    # Without the mask, more rows than useful ones: still no repeats, all K chosen.
    res = omp(jnp.asarray(G), jnp.asarray(b), K, nonneg=nonneg, valid=jnp.ones(N, bool), budget=K)
    S = support(res)
    assert len(S) == len(set(S.tolist()))


def test_batched_equals_unbatched_and_respects_budgets():
    problems = [correlated(10), correlated(11), gaussian(12)]
    G = np.stack([p[0] for p in problems])
    b = np.stack([p[1] for p in problems])
    valid = np.ones((3, N), bool)
    valid[1, 150:] = False  # a smaller problem, padded
    budgets = np.array([K, 7, 12])
    res = omp_batched(jnp.asarray(G), jnp.asarray(b), K, lam=0.5, valid=jnp.asarray(valid),
                      budgets=jnp.asarray(budgets))
    np.testing.assert_array_equal(np.asarray(res.n_selected), budgets)
    for p in range(3):
        one = omp(jnp.asarray(G[p]), jnp.asarray(b[p]), K, lam=0.5, valid=jnp.asarray(valid[p]),
                  budget=int(budgets[p]))
        for batched, single in zip(res, one):
            np.testing.assert_allclose(np.asarray(batched[p]), np.asarray(single), rtol=1e-10,
                                       atol=1e-12)
    assert (np.asarray(res.indices[1]) < 150).all()


def test_compiles_once_for_repeated_calls(monkeypatch):
    traces = []
    solve = omp_module._solve
    monkeypatch.setattr(omp_module, "_solve", lambda *a, **kw: traces.append(1) or solve(*a, **kw))
    rng = np.random.default_rng(5)
    for lam, eps, budget in [(0.0, 0.0, 9), (0.5, 0.1, 5), (2.0, 0.0, 3)]:  # all traced
        G = jnp.asarray(rng.standard_normal((50, 17)), jnp.float32)  # the default dtype
        res = omp(G, G.mean(0), 9, lam=lam, eps=eps, nonneg=False, budget=budget)
        assert res.weights.dtype == jnp.float32
        assert int(res.n_selected) <= budget
    assert len(traces) == 1


def test_factor_updates_match_a_fresh_cholesky():
    """Adding and removing rows of the passive set anywhere keeps M = inverse Cholesky factor of
    the Gram matrix with identity rows and columns outside the passive set."""
    rng = np.random.default_rng(6)
    C = 9
    X = rng.standard_normal((C, 30))
    A = jnp.asarray(X @ X.T + 0.1 * np.eye(C))
    insert = jax.jit(omp_module._insert, static_argnames="append")
    delete = jax.jit(omp_module._delete)
    M, P = jnp.eye(C), np.zeros(C, bool)
    for op, p in [("+", 0), ("+", 1), ("+", 2), ("+", 6), ("+", 3), ("+", 8), ("-", 2), ("-", 0),
                  ("+", 2), ("-", 8), ("+", 5)]:
        if op == "+":
            M, ok = insert(M, A, jnp.asarray(P), p, append=False)
            assert ok
        else:
            M = delete(M, p)
        P[p] = op == "+"
        masked = np.where(np.outer(P, P), np.asarray(A), 0) + np.diag(~P * 1.0)
        np.testing.assert_allclose(M, np.linalg.inv(np.linalg.cholesky(masked)), atol=1e-12)
