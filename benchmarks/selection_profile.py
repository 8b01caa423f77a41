"""Where one GRAD-MATCH selection's time goes: forward pass, gradient features, OMP, host
transfers; exact (every candidate) against candidate subsampling, side by side in one process.

  python benchmarks/selection_profile.py [--candidate_fraction=0.2] [--chunk_sizes=1024,4096]
      [--mode=per_batch] [--fraction=0.1] [--repeats=3]

configs/fashion_mnist_coresets.py's model and data (60,000 candidates), the freshly initialised
model (a selection's cost does not depend on the weights' values). Parts, each timed to its
device result:
  forward    eval-mode features h and output errors e = softmax - onehot over the pool (chunked),
  features   the gradient rows [h e^T, e] from them (the rest of `example_grads`),
  omp        the OMP solve (per-batch: batch means, then one OMP; per-class: batched OMP),
  transfer   host -> device id chunks and device -> host of the result.
Rounds alternate exact and subsampled (the first round compiles and is dropped); the median
counts. Ends with one JSON line.
"""
import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import fashion_mnist_coresets  # noqa: E402
from datadiet import parallel  # noqa: E402
from datadiet.coresets import gradmatch  # noqa: E402
from datadiet.data import load_dataset  # noqa: E402
from datadiet.data.augment import normalize  # noqa: E402
from datadiet.coresets.grad_features import example_grads  # noqa: E402
from datadiet.pergrad.last_layer import features_and_errors  # noqa: E402
from datadiet.training.loop import SelectionContext, build_model  # noqa: E402
from datadiet.training.state import create_state  # noqa: E402


def _forward(graphdef, params, batch_stats, images, labels, idx, mean, std):
    return features_and_errors(graphdef, params, batch_stats, normalize(images[idx], mean, std),
                               labels[idx])


forward_chunk = jax.jit(_forward, static_argnames=("graphdef",))


def profile(context, dataset, pool, cfg, mode, k, batch_size, rng):
    """Seconds of each part of one selection over candidate rows `pool`."""
    mesh, st = context.mesh, context.state
    mean, std = jnp.asarray(dataset.mean), jnp.asarray(dataset.std)
    chunk = min(cfg.chunk_size, len(pool))
    n_chunks = -(-len(pool) // chunk)
    padded = np.concatenate([pool, np.zeros(n_chunks * chunk - len(pool), pool.dtype)])
    t0 = time.perf_counter()
    idx = [jax.block_until_ready(parallel.put_global(padded[i * chunk:(i + 1) * chunk], mesh,
                                                     batch_axis=0)) for i in range(n_chunks)]
    t1 = time.perf_counter()
    jax.block_until_ready([forward_chunk(context.graphdef, st.params, st.batch_stats,
                                         context.images, context.labels, i, mean, std)
                           for i in idx])
    t2 = time.perf_counter()
    grads = jax.block_until_ready(example_grads(context, dataset, pool, cfg))
    t3 = time.perf_counter()
    y = dataset.y_train[pool]
    if mode == "per_batch":
        nb = len(pool) // batch_size
        rows = rng.permutation(len(pool))[: nb * batch_size].reshape(nb, batch_size)
        res = gradmatch.select_per_batch(grads, grads.sum(0) / batch_size, rows,
                                         max(1, k // batch_size), cfg.lam, cfg.eps)
    else:
        targets = jax.nn.one_hot(y, dataset.num_classes).T @ grads
        budgets = gradmatch.class_budgets(np.bincount(y), k)
        res = gradmatch.select_per_class(grads, y, targets, k, cfg.lam, cfg.eps, budgets)
    t4 = time.perf_counter()
    np.asarray(res[0]), np.asarray(res[1])
    t5 = time.perf_counter()
    # example_grads = forward + features in one pass; its id transfers are timed on their own
    return {"forward": t2 - t1, "features": max(t3 - t2 - (t2 - t1), 0.0), "omp": t4 - t3,
            "transfer": (t1 - t0) + (t5 - t4)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--candidate_fraction", type=float, default=0.2)
    p.add_argument("--chunk_sizes", default="1024")
    p.add_argument("--mode", default="per_batch", choices=["per_batch", "per_class"])
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    config = fashion_mnist_coresets.get_config()
    dataset = load_dataset(config.data, config.seed)
    mesh = parallel.data_mesh()
    graphdef, state = create_state(build_model(config, dataset), optax.identity())
    context = SelectionContext(graphdef, state, mesh, None, 0.0,
                               parallel.put_global(dataset.x_train, mesh),
                               parallel.put_global(dataset.y_train, mesh))
    n, B = dataset.n_train, config.train.batch_size
    k = round(args.fraction * n)
    rng = np.random.default_rng(0)
    arms = {}
    for cs in [int(c) for c in args.chunk_sizes.split(",")]:
        arms[f"exact_chunk{cs}"] = (1.0, cs)
        arms[f"subsample{args.candidate_fraction:g}_chunk{cs}"] = (args.candidate_fraction, cs)
    times = {name: [] for name in arms}
    for r in range(args.repeats + 1):
        for name, (cf, cs) in arms.items():
            cfg = config.coreset.copy_and_resolve_references()
            cfg.chunk_size = cs
            pool = np.sort(rng.choice(n, max(k, round(cf * n)), replace=False))
            t = profile(context, dataset, pool, cfg, args.mode, k, B, rng)
            if r:  # round 0 compiles
                times[name].append(t)
    out = {}
    print(f"{args.mode}, {n} candidates, k={k}, batch {B}; median of {args.repeats} rounds")
    for name, ts in times.items():
        med = {part: float(np.median([t[part] for t in ts])) for part in ts[0]}
        total = sum(med.values())
        out[name] = dict(med, total=total)
        print(f"{name:24s} total {total:6.2f} s: " + ", ".join(
            f"{part} {s:.2f} s ({s / total:.0%})" for part, s in med.items()))
    for name in out:
        if name.startswith("subsample"):
            exact = "exact_" + name.split("_", 1)[1]
            out[name]["speedup_vs_exact"] = out[exact]["total"] / out[name]["total"]
            print(f"{name}: {out[name]['speedup_vs_exact']:.2f}x faster than {exact}")
    print(json.dumps({"benchmark": "selection_profile", "mode": args.mode, "k": k, "arms": out}))


if __name__ == "__main__":
    main()
