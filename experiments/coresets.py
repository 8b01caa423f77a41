"""GRAD-MATCH against its baselines on Fashion-MNIST: test accuracy and total wall time
(selection included) at each subset fraction, over several seeds.

  python -m experiments.coresets --config=configs/fashion_mnist_coresets_experiment.py \
      --workdir=ROOT [--config.experiment.seeds=0,1,2] [--config.experiment.fractions=0.1,0.3]

The config is a coreset run config plus an `experiment` section (seeds, fractions, methods).
Each run is an ordinary run directory under ROOT (resumable; finished runs are reused), all in
one process so the solver compiles once. Writes ROOT/results.json and, through
analysis/coresets_figure.py, ROOT/coresets.png.
"""
import copy
import os

import numpy as np

from analysis import coresets_figure
from datadiet.jobs.train import open_run, train_and_evaluate
from experiments import common

POOL_OVER_BUDGET = 2.0
# name -> coreset overrides ("pool": candidate_fraction as a multiple of the fraction)
METHODS = {
    "GRAD-MATCH": dict(method="gradmatch", mode="per_class"),
    "GRAD-MATCH-PB": dict(method="gradmatch", mode="per_batch"),
    "GRAD-MATCH-PB-Warm": dict(method="gradmatch", mode="per_batch", warm_start=0.25),
    # the same, each selection over a fresh random pool of POOL_OVER_BUDGET x its budget
    # (candidate_fraction = min(1, 2 x fraction): 20% of the candidates at 10%, 60% at 30%)
    "GRAD-MATCH-Sub": dict(method="gradmatch", mode="per_class", pool=POOL_OVER_BUDGET),
    "GRAD-MATCH-PB-Sub": dict(method="gradmatch", mode="per_batch", pool=POOL_OVER_BUDGET),
    "GRAD-MATCH-PB-Warm-Sub": dict(method="gradmatch", mode="per_batch", warm_start=0.25,
                                   pool=POOL_OVER_BUDGET),
    "Random": dict(method="random"),
    "RandomOnline": dict(method="random_online"),
}


def run_one(base, root, name, overrides, fraction, seed):
    config = copy.deepcopy(base)
    config.seed = seed
    overrides = dict(overrides)
    if "pool" in overrides:
        overrides["candidate_fraction"] = min(1.0, overrides.pop("pool") * fraction)
    config.coreset.update(fraction=fraction, **overrides)
    workdir = os.path.join(root, f"{name}_f{fraction}_s{seed}")
    final = train_and_evaluate(config, workdir)
    events = open_run(workdir, config).metrics()
    selection = sum(e["selection_time"] for e in events if e.get("kind") == "selection")
    wall = max(e["time"] for e in events)
    print(f"{name:20s} f={fraction} seed={seed}: test acc {final['test']['accuracy']:.4f}, "
          f"wall {wall:.1f} s (selection {selection:.1f} s)", flush=True)
    return {"method": name, "fraction": fraction, "seed": seed,
            "test_accuracy": final["test"]["accuracy"], "wall_time": wall,
            "selection_time": selection, "steps": final["test"]["step"]}


def summarise(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r["method"], r["fraction"]), []).append(r)
    out = []
    for (method, fraction), rs in sorted(groups.items()):
        acc = np.array([r["test_accuracy"] for r in rs])
        wall = np.array([r["wall_time"] for r in rs])
        sel = np.array([r["selection_time"] for r in rs])
        out.append({"method": method, "fraction": fraction, "seeds": len(rs),
                    "test_accuracy_mean": acc.mean(), "test_accuracy_std": acc.std(),
                    "wall_time_mean": wall.mean(), "selection_time_mean": sel.mean(),
                    "selection_share": float((sel / wall).mean())})
    return out


def main(config, workdir):
    e = config.experiment
    unknown = [m for m in e.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"experiment.methods: {unknown[0]!r} is not one of {list(METHODS)}")
    base = copy.deepcopy(config)
    base.unlock()
    del base["experiment"]  # each run is an ordinary run config
    rows = []
    for seed in e.seeds:
        if e.full:  # False: the full-data runs exist already (another invocation, same seeds)
            rows.append(run_one(base, workdir, "Full", dict(method="full"), 1.0, seed))
        for fraction in e.fractions:
            for name in e.methods:
                rows.append(run_one(base, workdir, name, METHODS[name], fraction, seed))
    results = {"runs": rows, "summary": summarise(rows),
               "settings": {"epochs": base.train.epochs, "every": base.coreset.every_epochs,
                            "seeds": list(e.seeds)}}
    os.makedirs(workdir, exist_ok=True)
    common.write_results(results, config, workdir, "coresets", coresets_figure)
    for s in results["summary"]:
        print(f"{s['method']:20s} f={s['fraction']}: acc {s['test_accuracy_mean']:.4f} "
              f"± {s['test_accuracy_std']:.4f}, wall {s['wall_time_mean']:.1f} s, selection "
              f"{100 * s['selection_share']:.1f}% of wall time")


if __name__ == "__main__":
    common.run(main)
