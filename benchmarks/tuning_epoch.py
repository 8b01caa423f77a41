"""What one tuning-trial epoch costs on a subset against one on the full data, side by side in
one process: the ceiling of the speedup subset-based tuning can reach when both arms train the
same number of epochs (the trial's per-epoch validation pass is paid by both).

  python benchmarks/tuning_epoch.py [--fractions=0.1,0.3] [--batch_size=128] [--repeats=3]

The run config is configs/fashion_mnist_tune.py's trial config at the given batch size.

Times, through the shared training loop, an epoch of weighted training + the validation pass
on the held-out split (hpo.val_fraction) for the full training data and for random subsets of
each fraction (a GRAD-MATCH subset costs the same per step), and one GRAD-MATCH selection's
forward pass over all candidates (last-layer gradients) and its per-batch OMP. Epochs are timed
round-robin (`--repeats` rounds, median kept) after a compiling epoch, so load changes hit all
alike. Ceiling on equal epochs = full epoch / subset epoch; with a selection every R epochs the
subset epoch also carries selection / R. Ends with one JSON line of the figures.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import jax
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import fashion_mnist_tune  # noqa: E402
from datadiet import parallel  # noqa: E402
from datadiet.coresets import gradmatch  # noqa: E402
from datadiet.data import Subset, load_dataset  # noqa: E402
from datadiet.hpo.holdout import holdout_split  # noqa: E402
from datadiet.hpo.objective import evaluation_config  # noqa: E402
from datadiet.coresets.grad_features import example_grads  # noqa: E402
from datadiet.training.loop import SelectionContext, build_model, train  # noqa: E402
from datadiet.training.rundir import RunDir  # noqa: E402
from datadiet.training.state import create_state  # noqa: E402


def epoch_seconds(config, dataset, subset, workdir):
    """Seconds of the second epoch (train + validation) of a 2-epoch run; the first compiles."""
    run = RunDir(workdir, config)
    marks = []
    train(config, dataset, subset, run, on_epoch=lambda epoch, state, metrics: marks.append(
        (time.perf_counter(), state)))
    return marks[2][0] - marks[1][0], marks[-1][1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fractions", default="0.1,0.3")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    base = fashion_mnist_tune.get_config()
    base.train.batch_size = args.batch_size
    full_hpo = base.hpo.copy_and_resolve_references()
    full_hpo.evaluation = "full"
    config = evaluation_config(base, full_hpo, 2)
    config.train.checkpoint_every_epochs = 100  # no checkpoint inside the timed epoch
    config.train.iteration_matched = False  # an epoch is a pass over the subset, as in a trial
    dataset = holdout_split(load_dataset(base.data, base.seed), base.hpo.val_fraction,
                            base.hpo.seed)
    n = dataset.n_train
    rng = np.random.default_rng(0)
    fractions = [float(f) for f in args.fractions.split(",")]
    arms = {"full": Subset.full(n)}
    for f in fractions:
        ids = np.sort(rng.choice(n, round(f * n), replace=False))
        arms[f"subset_{f:g}"] = Subset.of(ids, n, np.ones(len(ids), np.float32))
    times = {name: [] for name in arms}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, subset in arms.items():
                seconds, state = epoch_seconds(config, dataset, subset,
                                               os.path.join(tmp, f"{name}_{r}"))
                times[name].append(seconds)
        # one selection: last-layer gradients of every candidate, then the per-batch OMP
        mesh = parallel.data_mesh()
        graphdef, _ = create_state(build_model(config, dataset), optax.identity())
        context = SelectionContext(graphdef, state, mesh, None, 0.0,
                                   parallel.put_global(dataset.x_train, mesh),
                                   parallel.put_global(dataset.y_train, mesh))
        ids = np.arange(n)
        forward, omp = [], []
        for r in range(args.repeats + 1):
            start = time.perf_counter()
            grads = jax.block_until_ready(example_grads(context, dataset, ids, config.coreset))
            mid = time.perf_counter()
            nb = n // args.batch_size
            batches = rng.permutation(n)[: nb * args.batch_size].reshape(nb, args.batch_size)
            gradmatch.select_per_batch(grads, grads.sum(0) / args.batch_size, batches,
                                       round(fractions[0] * n) // args.batch_size, 0.5, 1e-10)
            if r:  # the first one compiles
                forward.append(mid - start)
                omp.append(time.perf_counter() - mid)
    med = {name: float(np.median(t)) for name, t in times.items()}
    selection = float(np.median(forward) + np.median(omp))
    print(f"batch {args.batch_size}, {n} training examples, validation on "
          f"{len(dataset.y_test)}; epoch = training + validation; median of {args.repeats}")
    print(f"{'arm':12s} {'epoch s':>8s} {'ceiling (equal epochs)':>23s}")
    for name, t in med.items():
        print(f"{name:12s} {t:8.2f} {med['full'] / t:22.2f}x")
    print(f"one selection: forward {np.median(forward):.2f} s + OMP {np.median(omp):.2f} s = "
          f"{selection:.2f} s ({selection / med['full']:.2f} of a full-data epoch)")
    for name in list(med)[1:]:
        for every in (4, 8):
            print(f"{name} with a selection every {every} epochs: ceiling "
                  f"{med['full'] / (med[name] + selection / every):.2f}x")
    print(json.dumps({"batch_size": args.batch_size, "epoch_seconds": med,
                      "selection_seconds": selection,
                      "ceiling": {k: med["full"] / v for k, v in med.items()}}))


if __name__ == "__main__":
    main()
