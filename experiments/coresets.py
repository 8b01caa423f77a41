"""GRAD-MATCH against its baselines on Fashion-MNIST: test accuracy and total wall time
(selection included) at each subset fraction, over several seeds.

  python experiments/coresets.py --root=runs/coresets [--seeds=0,1,2] [--fractions=0.1,0.3]

Each run is an ordinary run directory under --root (resumable; finished runs are reused), all in
one process so the solver compiles once. Writes ROOT/results.json and, through
analysis/coresets_figure.py, ROOT/coresets.png.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from analysis import coresets_figure  # noqa: E402
from configs import fashion_mnist_coresets  # noqa: E402
from datadiet.training.loop import train_and_evaluate  # noqa: E402
from datadiet.training.rundir import RunDir  # noqa: E402

# name -> coreset overrides
METHODS = {
    "GRAD-MATCH": dict(method="gradmatch", mode="per_class"),
    "GRAD-MATCH-PB": dict(method="gradmatch", mode="per_batch"),
    "GRAD-MATCH-PB-Warm": dict(method="gradmatch", mode="per_batch", warm_start=0.25),
    # the same, each selection over a fresh random 20% of the candidates (candidate_fraction)
    "GRAD-MATCH-Sub": dict(method="gradmatch", mode="per_class", candidate_fraction=0.2),
    "GRAD-MATCH-PB-Sub": dict(method="gradmatch", mode="per_batch", candidate_fraction=0.2),
    "GRAD-MATCH-PB-Warm-Sub": dict(method="gradmatch", mode="per_batch", warm_start=0.25,
                                   candidate_fraction=0.2),
    "Random": dict(method="random"),
    "RandomOnline": dict(method="random_online"),
}


def run_one(root, name, overrides, fraction, seed, args):
    config = fashion_mnist_coresets.get_config()
    config.seed = seed
    config.data.path = args.data
    config.log.progress = False
    config.train.epochs = float(args.epochs)
    config.coreset.every = args.every
    config.coreset.update(fraction=fraction, **overrides)
    workdir = os.path.join(root, f"{name}_f{fraction}_s{seed}")
    final = train_and_evaluate(config, workdir)
    events = RunDir(workdir, config).metrics()
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", default="runs/coresets")
    p.add_argument("--data", default="../shared/data/fashion_mnist.npz")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--fractions", default="0.1,0.3")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--every", type=int, default=10)
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    rows = []
    for seed in seeds:
        rows.append(run_one(args.root, "Full", dict(method="full"), 1.0, seed, args))
        for fraction in fractions:
            for name in args.methods.split(","):
                rows.append(run_one(args.root, name, METHODS[name], fraction, seed, args))
    results = {"runs": rows, "summary": summarise(rows),
               "settings": {"epochs": args.epochs, "every": args.every, "seeds": seeds}}
    path = os.path.join(args.root, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    png = coresets_figure.draw(path)
    for s in results["summary"]:
        print(f"{s['method']:20s} f={s['fraction']}: acc {s['test_accuracy_mean']:.4f} "
              f"± {s['test_accuracy_std']:.4f}, wall {s['wall_time_mean']:.1f} s, selection "
              f"{100 * s['selection_share']:.1f}% of wall time")
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    main()
