"""OMP speed: the project's jitted OMP against a CORDS-style loop, scikit-learn and the floor.

On the same gradient matrices (rows shaped like last-layer gradients of a 10-class net with 512
features: g_i = (softmax_i - onehot_i) x [h_i, 1], d = 5,130; target = their mean, as GRAD-MATCH
matches the mean gradient), each size solved whole-dataset and per-class (one problem per class,
budget proportional to class size; ours runs them batched) by:
  (a) datadiet.coresets.omp (non-negative, ridge lam, float32),
  (b) a straightforward OMP that re-solves the ridge NNLS on the selected set from scratch at every
      step, the way CORDS' numpy OrthogonalMP_REG does (rebuild the Gram matrix, scipy nnls on the
      s x s system; see `cords_style`), stopped after --baseline-limit seconds (then its ratio is
      a lower bound, and ours is also timed on the steps the baseline got through),
  (c) scikit-learn's orthogonal_mp (unconstrained, no ridge: a speed reference),
  (d) the floor: k matrix-vector products with the N x d matrix (what any OMP must do).
(a) and (d) run alternately --repeat times and the fastest of each counts (the machine is shared).
Every method is timed in wall-clock seconds and in CPU seconds of this process (process_time):
pinned to one core that other jobs share, wall time also counts their time slices, which differ
between (b), (c) and the (a)/(d) pairs that run minutes apart; CPU time does not (all four run
on the one core; JAX's and BLAS's threads count in full). The speedup over (b) can be at most
(b) / (d): the ceiling, reported with it.
Errors are ||G_S^T w - b|| / ||b|| recomputed here in float64 from each method's indices and
weights (per-class: over all classes together). Ends with one line of JSON holding every figure.

    python benchmarks/omp.py            # N=5,000 k=500 and N=50,000 k=1,000 (~25 min, 2 cores)
    python benchmarks/omp.py --quick    # small sizes, a smoke run (~1 min)
    python benchmarks/omp.py --sizes 5000:500 --stacked-baseline
"""
import argparse
import json
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.optimize
from sklearn.linear_model import orthogonal_mp

from datadiet.coresets.omp import omp, omp_batched

CLASSES = 10


def last_layer_gradients(n, hidden, seed=0):
    """Rows g_i = (p_i - y_i) outer [h_i, 1] of a softmax layer on ReLU features with class
    structure, part-trained (most examples fit, a few do not), float32; returns (G, labels)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    means = rng.standard_normal((CLASSES, hidden)).astype(np.float32)
    h = np.maximum(0, 0.5 * means[labels] + rng.standard_normal((n, hidden), dtype=np.float32))
    onehot = np.eye(CLASSES, dtype=np.float32)[labels]
    logits = h @ (0.1 * rng.standard_normal((hidden, CLASSES), dtype=np.float32))
    logits += 3 * onehot * rng.uniform(0, 2, (n, 1)).astype(np.float32)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    features = np.concatenate([h, np.ones((n, 1), np.float32)], 1)
    G = ((p - onehot)[:, :, None] * features[:, None, :]).reshape(n, -1)
    return G, labels


def rel_error(G, b, idx, w):
    """Squared residual and squared target norm, in float64."""
    idx, w = np.asarray(idx), np.asarray(w, np.float64)
    keep = idx >= 0
    r = b.astype(np.float64) - G[idx[keep]].astype(np.float64).T @ w[keep]
    return float(r @ r), float(b.astype(np.float64) @ b)


def errors_of(parts):
    num = sum(p[0] for p in parts)
    den = sum(p[1] for p in parts)
    return float(np.sqrt(num / den))


def cords_style(G, b, k, lam, deadline, stacked=False):
    """(b): every step correlates, picks the largest positive correlation and re-solves the ridge
    NNLS on the selected rows from scratch, as CORDS' numpy OrthogonalMP_REG does (it rebuilds
    the Gram matrix and calls scipy nnls on that s x s system every step). CORDS' nnls(A, h)
    minimises ||A w - h||, not the ridge objective; here nnls(R, R^-T h) with A = R^T R solves
    the right one at the same cost. stacked=True instead calls nnls on the (d + s) x s system
    [G_S^T; sqrt(lam) I] w = [b; 0] (slower). Returns (indices, weights, steps, stopped early)."""
    S, w, r = [], np.zeros(0), b.astype(np.float32)
    chosen = np.zeros(G.shape[0], bool)
    for step in range(k):
        if time.perf_counter() > deadline:
            return np.array(S, int), w, step, True
        c = G @ r
        c[chosen] = -np.inf
        j = int(np.argmax(c))
        if not c[j] > 0:
            break
        S.append(j)
        chosen[j] = True
        GS = G[S]
        if stacked:
            rows = np.vstack([GS.T.astype(np.float64), np.sqrt(lam) * np.eye(len(S))])
            w = scipy.optimize.nnls(rows, np.concatenate([b, np.zeros(len(S))]),
                                    maxiter=50 * len(S))[0]
        else:
            A = (GS @ GS.T).astype(np.float64) + lam * np.eye(len(S))
            R = scipy.linalg.cholesky(A)  # upper, A = R^T R
            rhs = scipy.linalg.solve_triangular(R, GS.astype(np.float64) @ b, trans="T")
            w = scipy.optimize.nnls(R, rhs, maxiter=50 * len(S))[0]
        r = (b - GS.T.astype(np.float64) @ w).astype(np.float32)
    return np.array(S, int), w, len(S), False


def floor_fn(steps):
    """(d): `steps` dependent matrix-vector products G @ r (batched over problems if G is 3-D)."""
    def run(G, r):
        def body(i, r):
            c = jnp.einsum("...nd,...d->...n", G, r)
            return r.at[..., i % r.shape[-1]].add(1e-30 * c[..., 0])
        return jax.lax.fori_loop(0, steps, body, r)
    return jax.jit(run)


def timed(f, *args):
    """Returns (output, wall seconds, CPU seconds of this process)."""
    t, p = time.perf_counter(), time.process_time()
    out = f(*args)
    jax.block_until_ready(out)
    return out, time.perf_counter() - t, time.process_time() - p


def best_of(repeat, *fns):
    """Runs the (already compiled) fns in turn `repeat` times, returns each one's last output,
    fastest wall time and fastest CPU time: the machine is shared, alternating keeps ours and the
    floor under like loads."""
    outs, times, cpus = [None] * len(fns), [float("inf")] * len(fns), [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, f in enumerate(fns):
            outs[i], t, c = timed(f)
            times[i], cpus[i] = min(times[i], t), min(cpus[i], c)
    return outs, times, cpus


def bench(n, k, hidden, lam, baseline_limit, stacked, repeat, log):
    G, labels = last_layer_gradients(n, hidden)
    d = G.shape[1]
    out = {"N": n, "d": d, "k": k, "lam": lam}
    Gj = jnp.asarray(G)

    # ------------------------------------------------------------------ whole dataset
    b = G.mean(0)
    bj = jnp.asarray(b)
    # Warm-up: the budget is traced, so a 1-step run compiles everything the full run needs.
    _, compile_s, _ = timed(lambda: omp(Gj, bj, k, lam=lam, budget=1))
    floor = floor_fn(k).lower(Gj, bj).compile()
    (res, _), (ta, td), (ca, cd) = best_of(repeat, lambda: omp(Gj, bj, k, lam=lam),
                                           lambda: floor(Gj, bj))
    ea = errors_of([rel_error(G, b, res.indices, res.weights)])
    ours_hist = np.asarray(res.errors)

    t, p = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ended prematurely" if it ever happens
        coef = orthogonal_mp(G.T, b, n_nonzero_coefs=k)
    tc, cc = time.perf_counter() - t, time.process_time() - p
    sk_idx = np.flatnonzero(coef)
    ec = errors_of([rel_error(G, b, sk_idx, coef[sk_idx])])

    t, p = time.perf_counter(), time.process_time()
    idx_b, w_b, steps_b, cut_b = cords_style(G, b, k, lam, t + baseline_limit, stacked)
    tb, cb = time.perf_counter() - t, time.process_time() - p
    eb = errors_of([rel_error(G, b, idx_b, w_b)])
    # Where the baseline was stopped: ours timed on the same number of steps (budget is traced).
    _, ta_equal, _ = (timed(lambda: omp(Gj, bj, k, lam=lam, budget=steps_b)) if cut_b
                      else (None, ta, ca))
    out["whole"] = dict(
        ours_s=ta, ours_warmup_s=compile_s, ours_selected=int(res.n_selected), ours_err=ea,
        ours_err_at_baseline_steps=float(ours_hist[max(steps_b, 1) - 1]),
        baseline_s=tb, baseline_steps=steps_b, baseline_stopped=cut_b, baseline_err=eb,
        sklearn_s=tc, sklearn_err=ec, floor_s=td,
        speedup_vs_baseline=tb / ta, speedup_is_lower_bound=cut_b,
        ours_s_at_baseline_steps=ta_equal, speedup_at_equal_steps=tb / ta_equal,
        ratio_to_sklearn=ta / tc, ratio_to_floor=ta / td, **cpu_figures(ca, cb, cc, cd, tb / td))
    log(f"N={n} k={k} whole: ours {ta:.2f}s (warm-up/compile {compile_s:.1f}s, err {ea:.4f}); "
        f"baseline {tb:.1f}s for {steps_b} steps{' (stopped)' if cut_b else ''} (err {eb:.4f}; "
        f"ours at that step {ours_hist[max(steps_b, 1) - 1]:.4f}); sklearn {tc:.2f}s "
        f"(err {ec:.4f}); "
        f"floor {td:.2f}s")
    log(f"  ours/baseline {ta / tb:.4f} ({'<=' if cut_b else '='} 1/{tb / ta:.1f}), "
        f"ours/sklearn {ta / tc:.2f}, ours/floor {ta / td:.2f}"
        + (f"; on the baseline's {steps_b} steps ours took {ta_equal:.2f}s "
           f"(1/{tb / ta_equal:.1f})" if cut_b else ""))
    log_cpu(log, out["whole"])
    del floor

    # ------------------------------------------------------------------ per class
    members = [np.flatnonzero(labels == c) for c in range(CLASSES)]
    budgets = np.array([max(1, round(k * len(m) / n)) for m in members])
    k_max, n_max = int(budgets.max()), max(len(m) for m in members)
    Gp = np.zeros((CLASSES, n_max, d), np.float32)
    valid = np.zeros((CLASSES, n_max), bool)
    for c, m in enumerate(members):
        Gp[c, :len(m)] = G[m]
        valid[c, :len(m)] = True
    bp = np.stack([G[m].mean(0) for m in members])
    Gpj, bpj, vj, kj = map(jnp.asarray, (Gp, bp, valid, budgets))
    ones = jnp.ones_like(kj)
    _, compile_s, _ = timed(lambda: omp_batched(Gpj, bpj, k_max, lam=lam, valid=vj, budgets=ones))
    floor = floor_fn(k_max).lower(Gpj, bpj).compile()
    (res, _), (ta, td), (ca, cd) = best_of(
        repeat, lambda: omp_batched(Gpj, bpj, k_max, lam=lam, valid=vj, budgets=kj),
        lambda: floor(Gpj, bpj))
    ea = errors_of([rel_error(Gp[c], bp[c], res.indices[c], res.weights[c])
                    for c in range(CLASSES)])

    t, p = time.perf_counter(), time.process_time()
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c, m in enumerate(members):
            coef = orthogonal_mp(G[m].T, bp[c], n_nonzero_coefs=int(budgets[c]))
            nz = np.flatnonzero(coef)
            parts.append(rel_error(G[m], bp[c], nz, coef[nz]))
    tc, cc = time.perf_counter() - t, time.process_time() - p
    ec = errors_of(parts)

    t, p = time.perf_counter(), time.process_time()
    parts, steps_b, cut_b = [], 0, False
    for c, m in enumerate(members):
        idx_c, w_c, steps_c, cut_c = cords_style(G[m], bp[c], int(budgets[c]), lam,
                                                 t + baseline_limit, stacked)
        parts.append(rel_error(G[m], bp[c], idx_c, w_c))
        steps_b += steps_c
        cut_b |= cut_c
    tb, cb = time.perf_counter() - t, time.process_time() - p
    eb = errors_of(parts)
    out["per_class"] = dict(
        k_max=k_max, n_max=n_max, ours_s=ta, ours_warmup_s=compile_s,
        ours_selected=int(res.n_selected.sum()), ours_err=ea,
        baseline_s=tb, baseline_steps=steps_b, baseline_stopped=cut_b, baseline_err=eb,
        sklearn_s=tc, sklearn_err=ec, floor_s=td,
        speedup_vs_baseline=tb / ta, speedup_is_lower_bound=cut_b,
        ratio_to_sklearn=ta / tc, ratio_to_floor=ta / td, **cpu_figures(ca, cb, cc, cd, tb / td))
    log(f"N={n} k={k} per-class (10 x ~{n_max}, k_max {k_max}): ours {ta:.2f}s "
        f"(warm-up/compile {compile_s:.1f}s, err {ea:.4f}); baseline {tb:.1f}s for {steps_b} steps"
        f"{' (stopped)' if cut_b else ''} (err {eb:.4f}); sklearn {tc:.2f}s (err {ec:.4f}); "
        f"floor {td:.2f}s")
    log(f"  ours/baseline {ta / tb:.4f} ({'<=' if cut_b else '='} 1/{tb / ta:.1f}), "
        f"ours/sklearn {ta / tc:.2f}, ours/floor {ta / td:.2f}")
    log_cpu(log, out["per_class"])
    return out


def cpu_figures(ca, cb, cc, cd, ceiling):
    """CPU-second figures of ours (a), the baseline (b), sklearn (c), the floor (d), and the
    speedup ceiling (b) / (d) in wall and CPU time."""
    return dict(ours_cpu_s=ca, baseline_cpu_s=cb, sklearn_cpu_s=cc, floor_cpu_s=cd,
                speedup_vs_baseline_cpu=cb / ca, ratio_to_sklearn_cpu=ca / cc,
                ratio_to_floor_cpu=ca / cd, speedup_ceiling=ceiling, speedup_ceiling_cpu=cb / cd)


def log_cpu(log, f):
    log(f"  CPU s: ours {f['ours_cpu_s']:.2f}, baseline {f['baseline_cpu_s']:.1f}, sklearn "
        f"{f['sklearn_cpu_s']:.2f}, floor {f['floor_cpu_s']:.2f}; ours/baseline "
        f"1/{f['speedup_vs_baseline_cpu']:.1f} (ceiling baseline/floor 1/{f['speedup_ceiling_cpu']:.1f}"
        f", wall 1/{f['speedup_ceiling']:.1f}), ours/sklearn {f['ratio_to_sklearn_cpu']:.2f}, "
        f"ours/floor {f['ratio_to_floor_cpu']:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--sizes", default=None,
                        help="comma-separated N:k pairs (default 5000:500,50000:1000)")
    parser.add_argument("--hidden", type=int, default=None,
                        help="feature width; d = 10 * (hidden + 1) (default 512, quick 63)")
    parser.add_argument("--lam", type=float, default=0.5, help="ridge (GRAD-MATCH's default)")
    parser.add_argument("--baseline-limit", type=float, default=600.0,
                        help="seconds after which the CORDS-style loop is stopped")
    parser.add_argument("--repeat", type=int, default=2,
                        help="ours and the floor run alternately this often; the fastest counts")
    parser.add_argument("--stacked-baseline", action="store_true",
                        help="baseline calls nnls on the stacked (d + s) x s system (slower)")
    args = parser.parse_args()
    sizes = args.sizes or ("2000:100" if args.quick else "5000:500,50000:1000")
    hidden = args.hidden or (63 if args.quick else 512)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; float32; lam={args.lam}; "
          f"baseline nnls on the {'stacked' if args.stacked_baseline else 'Gram'} system",
          flush=True)
    results = []
    for pair in sizes.split(","):
        n, k = map(int, pair.split(":"))
        results.append(bench(n, k, hidden, args.lam, args.baseline_limit, args.stacked_baseline,
                             args.repeat, lambda s: print(s, flush=True)))
    print(json.dumps({"benchmark": "omp", "results": results}))


if __name__ == "__main__":
    main()
