"""Orthogonal matching pursuit for gradient matching (GRAD-MATCH, AUTOMATA): jitted, batched.

Given per-example gradients as the rows of G [N, d] and a target gradient b [d], find a support S
(|S| <= k, never the same row twice) and weights w >= 0 that minimise

    || G_S^T w - b ||^2 + lam ||w||^2

greedily: pick the row most correlated with the residual (non-negative variant: the largest
*positive* correlation; plain OMP: the largest |correlation|, as scikit-learn), refit w on S,
repeat until |S| = budget, the relative error ||r|| / ||b|| < eps, or no row can help any more.

How the cost stays near the floor of one N x d matrix-vector product (G @ r) per step:
- The refit works on the small ridge Gram system A = G_S G_S^T + lam I, h = G_S b; the exact
  non-negative solution comes from Lawson-Hanson's active-set method on it, warm-started from the
  previous step's solution (usually one solve per step; scipy's nnls re-starts from scratch).
- The factorisation is updated one column at a time, never recomputed. We keep M = L^{-1}, the
  inverse of the Cholesky factor of A restricted to the passive set (rows of S with w > 0), so
  every solve is two matrix-vector products (x = M^T M h): XLA's CPU triangular solve is 10-25x
  slower than a matrix-vector product of the same size (0.8 ms vs 0.07 ms at 1000 x 1000), and an
  explicit inverse of A (matrix inversion lemma) lost 5% accuracy in float32 where M lost 0.015%
  (a Gram matrix of condition number 5e3).
- M is stored in selection order; rows of S outside the passive set (w = 0) and unused slots are
  identity rows, so the active-set method can drop or re-admit a row anywhere in the middle with a
  closed-form rank-one update of M (see `_rank_one`): O(C^2) work, no refactorisation.
- Arrays grow in phases (capacities 32, 64, 128, ..., k): besides G @ r a step costs O(C d + C^2)
  with the capacity C < 2 |S|, not O(k d + k^2) from step 1 (a first version that padded its
  factor to k x k took 711 s at N=50,000, k=5,000 against a floor of ~150 s).
"""
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

_FIRST_CAPACITY = 32


class OMPResult(NamedTuple):
    """One solution (or a batch of them, with leading batch axes).

    indices: [k] int32, the chosen rows in the order chosen, -1 after the last one.
    weights: [k], the weight of each chosen row (0 where padded; may be 0 for a chosen row in the
        non-negative variant, exactly as an NNLS refit on the support gives).
    errors: [k], relative matching error ||G_S^T w - b|| / ||b|| after each step; after the solver
        stops it repeats the final error.
    n_selected: int32, the number of chosen rows (<= budget <= k).
    """
    indices: jax.Array
    weights: jax.Array
    errors: jax.Array
    n_selected: jax.Array


def omp(G, b, k, lam=0.0, eps=0.0, nonneg=True, valid=None, budget=None):
    """OMP on one problem: rows of G [N, d] matched to b [d]. k is the static maximal budget (a
    new k compiles anew); lam, eps, valid [N] bool (rows that may be chosen) and budget (<= k)
    are traced, so changing them does not recompile. Computes in G's dtype (float32 unless you
    pass float64 with x64 enabled). nonneg=False gives plain OMP (largest |correlation|)."""
    valid = jnp.ones(G.shape[0], bool) if valid is None else valid
    budget = k if budget is None else budget
    return _omp(G, b, valid, budget, lam, eps, k=k, nonneg=nonneg)


def omp_batched(G, b, k, lam=0.0, eps=0.0, nonneg=True, valid=None, budgets=None):
    """Independent problems solved together (e.g. one per class): G [P, n, d], b [P, d],
    valid [P, n] (pad smaller problems with invalid rows), budgets [P] each <= k; shared lam and
    eps. Results have a leading [P] axis."""
    valid = jnp.ones(G.shape[:2], bool) if valid is None else valid
    budgets = jnp.full(G.shape[0], k) if budgets is None else budgets
    return _omp_batched(G, b, valid, budgets, lam, eps, k=k, nonneg=nonneg)


@partial(jax.jit, static_argnames=("k", "nonneg"))
def _omp(G, b, valid, budget, lam, eps, *, k, nonneg):
    return _solve(G, b, valid, budget, lam, eps, k=k, nonneg=nonneg, batched=False)


@partial(jax.jit, static_argnames=("k", "nonneg"))
def _omp_batched(G, b, valid, budgets, lam, eps, *, k, nonneg):
    return _solve(G, b, valid, budgets, lam, eps, k=k, nonneg=nonneg, batched=True)


class _Problem(NamedTuple):
    G: jax.Array
    b: jax.Array
    budget: jax.Array
    bnorm: jax.Array
    tol: jax.Array      # scores and KKT gradients below this are rounding noise


class _State(NamedTuple):
    s: jax.Array        # rows chosen so far
    done: jax.Array
    idx: jax.Array      # [k] chosen rows, -1 padded
    errors: jax.Array   # [k]
    err: jax.Array      # current relative error
    chosen: jax.Array   # [N] bool, rows in S or invalid: never chosen (again)
    c: jax.Array        # [N] correlations G @ r of the current residual
    Gs: jax.Array       # [C, d] chosen rows of G, in selection order ("slots")
    A: jax.Array        # [C, C] ridge Gram G_S G_S^T + lam I (valid on the first s slots)
    M: jax.Array        # [C, C] inverse Cholesky factor of A on the passive slots, else identity
    P: jax.Array        # [C] bool, passive slots (in the fit; the others have w = 0)
    w: jax.Array        # [C]
    h: jax.Array        # [C] G_S b


def _solve(G, b, valid, budget, lam, eps, *, k, nonneg, batched):
    """One problem, or a batch along a leading axis. The per-problem pieces are vmapped but the
    loops are shared: vmapping a whole while loop makes JAX select between the old and new carry
    of every problem at every step, rewriting every [C, d] buffer (30% on top of the floor)."""
    vec = jax.vmap if batched else (lambda f: f)
    lam, eps = jnp.asarray(lam, G.dtype), jnp.asarray(eps, G.dtype)
    st, prob = vec(partial(_init, eps=eps, k=k, nonneg=nonneg))(G, b, valid, budget)
    for C in _capacities(k):  # one loop per capacity: array shapes grow with the support
        step = vec(partial(_step, lam=lam, eps=eps, C=C, nonneg=nonneg))
        st = lax.while_loop(lambda st, C=C: jnp.any(_live(st, C)), lambda st: step(st, prob),
                            vec(partial(_grow, C=C))(st))
    return vec(partial(_result, nonneg=nonneg))(st)


def _init(G, b, valid, budget, *, eps, k, nonneg):
    N, d = G.shape
    dt = G.dtype
    b = b.astype(dt)
    bnorm = jnp.maximum(jnp.linalg.norm(b), jnp.finfo(dt).tiny)
    c = G @ b
    prob = _Problem(G, b, budget, bnorm,
                    100 * jnp.finfo(dt).eps * jnp.max(jnp.where(valid, jnp.abs(c), 0)))
    st = _State(
        s=jnp.int32(0), done=jnp.bool_(False), idx=jnp.full(k, -1, jnp.int32),
        errors=jnp.zeros(k, dt), err=jnp.linalg.norm(b) / bnorm, chosen=~valid, c=c,
        Gs=jnp.zeros((0, d), dt), A=jnp.zeros((0, 0), dt), M=jnp.zeros((0, 0), dt),
        P=jnp.zeros(0, bool), w=jnp.zeros(0, dt), h=jnp.zeros(0, dt))
    return st._replace(done=_finished(st, prob, eps, nonneg)), prob


def _result(st, *, nonneg):
    k = st.errors.shape[0]
    errors = jnp.where(jnp.arange(k) < st.s, st.errors, st.err)
    w = jnp.maximum(st.w, 0) if nonneg else st.w
    w = jnp.pad(jnp.where(st.P, w, 0), (0, k - w.shape[0]))
    return OMPResult(st.idx, w, errors, st.s)


def _live(st, C):
    return ~st.done & (st.s < C)


def _capacities(k):
    caps, C = [], _FIRST_CAPACITY
    while C < k:
        caps.append(C)
        C *= 2
    return caps + [k]


def _grow(st, C):
    """Pads the support-sized arrays to capacity C (identity rows in M for the new slots)."""
    n = C - st.w.shape[0]
    eye = jnp.eye(C, dtype=st.M.dtype)
    M = eye.at[:C - n, :C - n].set(st.M)
    return st._replace(Gs=jnp.pad(st.Gs, ((0, n), (0, 0))), A=jnp.pad(st.A, ((0, n), (0, n))), M=M,
                       P=jnp.pad(st.P, (0, n)), w=jnp.pad(st.w, (0, n)), h=jnp.pad(st.h, (0, n)))


_IN_BOUNDS = "promise_in_bounds"


def _put(x, i, v):
    """x.at[i].set(v) for an index known to be in bounds. The default mode (drop out-of-bounds
    writes) made XLA rewrite the whole [C, d] buffer with a select, plus two copies, every step."""
    return x.at[i].set(v, mode=_IN_BOUNDS)


def _scores(c, nonneg):
    return c if nonneg else jnp.abs(c)


def _finished(st, prob, eps, nonneg):
    """Stop at the budget, below eps, or when no unchosen row has a score above rounding noise
    (non-negative variant: a row with correlation <= 0 cannot lower the error)."""
    best = jnp.max(jnp.where(st.chosen, -jnp.inf, _scores(st.c, nonneg)))
    return (st.s >= prob.budget) | (st.err < eps) | ~(best > prob.tol)


def _step(st, prob, *, lam, eps, C, nonneg):
    """One greedy step: choose a row, append it to the factor, refit, update the residual. In a
    batch, problems that are not live (done, or at this phase's capacity) run it too but change
    nothing: every write is masked."""
    live = _live(st, C)
    j = jnp.argmax(jnp.where(st.chosen, -jnp.inf, _scores(st.c, nonneg))).astype(jnp.int32)
    g = prob.G[j]
    q = jnp.minimum(st.s, C - 1)  # the new slot (slots >= s are not read until written)

    def put(x, v):  # writes row q, or rewrites what is there if not live
        start = (q,) + (q * 0,) * v.ndim
        return lax.dynamic_update_slice(x, jnp.where(live, v, x[q])[None], start)

    # Write g first and read Gs only afterwards: reading the old buffer after the write made XLA
    # copy the whole [C, d] buffer every step.
    Gs = put(st.Gs, g)
    a = (Gs @ g).at[q].add(lam, mode=_IN_BOUNDS)  # its ridge Gram column with the support
    A = put(st.A, a).at[:, q].set(jnp.where(live, a, st.A[:, q]), mode=_IN_BOUNDS)
    # A row numerically in the span of the support (possible only with lam = 0) ends the run, as
    # in scikit-learn: the factor cannot take it. (Updates are masked rather than put under a
    # lax.cond, which would copy the [C, d] and [C, C] buffers every step.)
    M, ok = _insert(st.M, A, st.P, q, append=True, allow=live)
    st = st._replace(s=st.s + ok, idx=_put(st.idx, q, jnp.where(ok, j, st.idx[q])),
                     chosen=_put(st.chosen, j, st.chosen[j] | live), Gs=Gs, A=A, M=M,
                     P=_put(st.P, q, st.P[q] | ok), h=put(st.h, g @ prob.b))
    st = _refit_nonneg(st, prob.tol) if nonneg else st._replace(w=_passive_solve(st.M, st.h, st.P))
    r = prob.b - st.w @ st.Gs
    err = jnp.linalg.norm(r) / prob.bnorm
    st = st._replace(err=err, errors=_put(st.errors, q, jnp.where(live, err, st.errors[q])),
                     c=prob.G @ r)
    return st._replace(done=st.done | (live & (~ok | _finished(st, prob, eps, nonneg))))


def _passive_solve(M, h, P):
    """x = A_PP^{-1} h_P (0 off P): two matrix-vector products with the inverse factor."""
    return (M @ jnp.where(P, h, 0)) @ M


def _refit_nonneg(st, tol):
    """Exact NNLS on the current support (Lawson-Hanson on the Gram system), warm-started: the
    previous w is optimal for S minus the new slot, which enters the passive set with w = 0.
    Each iteration either drops one passive slot that the unconstrained solve drives <= 0 (after
    stepping w towards that solve while it stays feasible), or re-admits the zero-weight slot
    whose gradient h - A w is largest if positive, or stops when both KKT conditions hold."""
    C = st.w.shape[0]
    in_s = jnp.arange(C) < st.s

    def body(carry):
        M, P, w, it, _ = carry
        x = _passive_solve(M, st.h, P)
        infeasible = P & (x <= 0)

        def drop(M, P, w):
            # Move from w towards x as far as feasibility allows; the blocking slot leaves P.
            gap = w - x
            ratio = jnp.where(infeasible, w / jnp.where(gap > 0, gap, 1), jnp.inf)
            p = jnp.argmin(ratio)
            alpha = jnp.clip(ratio[p], 0, 1)
            P = _put(P, p, False)
            return _delete(M, p), P, jnp.where(P, w + alpha * (x - w), 0), jnp.bool_(False)

        def admit_or_stop(M, P, w):
            grad = jnp.where(in_s & ~P, st.h - st.A @ x, -jnp.inf)
            t = jnp.argmax(grad)

            def admit(M, P):
                M, ok = _insert(M, st.A, P, t, append=False)
                return M, _put(P, t, ok), x, ~ok

            return lax.cond(grad[t] > tol, admit, lambda M, P: (M, P, x, jnp.bool_(True)), M, P)

        M, P, w, converged = lax.cond(jnp.any(infeasible), drop, admit_or_stop, M, P, w)
        return M, P, w, it + 1, converged

    carry = (st.M, st.P, st.w, jnp.int32(0), jnp.bool_(False))
    M, P, w, _, _ = lax.while_loop(lambda c: ~c[4] & (c[3] < 3 * C), body, carry)
    return st._replace(M=M, P=P, w=w)


def _insert(M, A, P, p, append, allow=True):
    """Adds slot p to the passive set: returns the updated inverse factor and whether the new
    pivot is safely positive (if not, M is returned unchanged). With L L^T the Cholesky factor
    and M = L^{-1}, and u = M a (a = A[:, p] on P): the new row p of M is (e_p - u_{<p} M) / delta
    with delta^2 = A_pp - |u_{<p}|^2, and the rows after p get a rank-one downdate by
    y = u_{>p} / delta (there are none when appending)."""
    C = M.shape[0]
    ar = jnp.arange(C)
    a = jnp.where(P & (ar != p), A[:, p], 0)
    u = M @ a
    before = ar < p
    delta2 = A[p, p] - jnp.sum(jnp.where(before, u, 0) ** 2)
    ok = allow & (delta2 > jnp.finfo(M.dtype).eps * A[p, p])
    delta = jnp.sqrt(jnp.where(ok, delta2, 1))
    e_p = (ar == p).astype(M.dtype)
    row = jnp.where(ok, (e_p - jnp.where(before, u, 0) @ M) / delta, e_p)
    M = _put(M, p, row)
    if not append:
        y = jnp.where(ok & (ar > p), u, 0) / delta
        M = _rank_one(M - jnp.outer(y, row), y, -1.0)
    return M, ok


def _delete(M, p):
    """Removes slot p from the passive set (row and column p of the factor become identity). The
    rows after p get a rank-one update by y = L[>p, p] = -M[>p, p] / M[p, p]."""
    ar = jnp.arange(M.shape[0])
    y = jnp.where(ar > p, -M[:, p] / M[p, p], 0)
    M = _rank_one(M + jnp.outer(y, M[p]), y, 1.0)
    e = (ar == p).astype(M.dtype)
    return _put(M, p, e).at[:, p].set(e, mode=_IN_BOUNDS)


def _rank_one(V, y, sign):
    """T^{-1} V for the lower-triangular T with T T^T = I + sign * y y^T, in closed form:
    with s_i = 1 + sign * sum_{j<=i} y_j^2,
    (T^{-1} V)_i = (V_i - sign * y_i / s_{i-1} * sum_{j<i} y_j V_j) / sqrt(s_i / s_{i-1}).
    If L L^T = A then L' = L T factors A + sign * (L y)(L y)^T, so M' = T^{-1} M. One scan over
    the rows carries the prefix sum; on CPU it ran faster and compiled 5x faster than an
    associative scan (jnp.cumsum's reduce-window was slower still)."""
    tiny = jnp.finfo(V.dtype).tiny

    def row(carry, v_y):
        prefix, s_prev = carry
        v, y_i = v_y
        s_i = jnp.maximum(s_prev + sign * y_i * y_i, tiny)
        out = (v - (sign * y_i / s_prev) * prefix) / jnp.sqrt(s_i / s_prev)
        return (prefix + y_i * v, s_i), out

    carry = (jnp.zeros(V.shape[1], V.dtype), jnp.ones((), V.dtype))
    return lax.scan(row, carry, (V, y))[1]
