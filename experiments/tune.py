"""AUTOMATA's experiment: the same search, scheduler and seeds with trials on the full data and
on GRAD-MATCH subsets; each chosen configuration retrained on the full data and tested.

  python -m experiments.tune --config=configs/fashion_mnist_tune_experiment.py --workdir=ROOT \
      [--config.experiment.fractions=0.1,0.3] [--config.hpo.n_trials=12 ...]

The config is a tune config plus an `experiment` section (fractions, subset_evaluation).
Each arm is an ordinary tune job in ROOT/<arm> (resumable: re-run the command after a kill).
Writes ROOT/results_tune.json and, through analysis/tuning_report.py, ROOT/tuning.png and
ROOT/tuning.md. Tuning wall time = the sum of the arm's trial durations (one worker: the wall
time of its search; data loading and the final retraining are not part of it).
The arms share one compilation cache (ROOT/jax_cache) and the full-data arm runs last: what it
reuses from the subset arms can only shorten the baseline, so the speedup is not overstated.
(An arm may also be run alone first, `train.py --config=... --workdir=ROOT/<arm>`, with its
own cache; this command then reuses its finished study.)
"""
import copy
import json
import os

from analysis import tuning_report
from datadiet.config import validate_config
from datadiet.data import load_dataset
from datadiet.jobs.tune import tune
from experiments import common

def arm_configs(base, fractions, evaluation, candidate_pool=0.0):
    """(name, config): one per fraction, then the full-data arm; only the evaluation differs
    (same space, search, scheduler, seeds, budget). candidate_pool > 0: each subset arm's
    selections look at that many times its budget (hpo.candidate_fraction = min(1,
    candidate_pool x fraction)), so a larger fraction does not get a pool no larger than it."""
    out = []
    for name, ev, fraction in [(f"{evaluation}_{f:g}", evaluation, f) for f in fractions] + [
            ("full", "full", 1.0)]:
        config = copy.deepcopy(base)
        config.unlock()
        config.hpo.evaluation, config.hpo.fraction = ev, fraction
        if candidate_pool and ev != "full":
            config.hpo.candidate_fraction = min(1.0, candidate_pool * fraction)
        config.hpo.retrain = True
        validate_config(config)
        out.append((name, config))
    return out


EVALUATIONS = ("subset", "random")


def main(config, workdir):
    e = config.experiment
    if e.subset_evaluation not in EVALUATIONS:
        raise ValueError(f"experiment.subset_evaluation={e.subset_evaluation!r} is not one of "
                         f"{list(EVALUATIONS)}")
    base = copy.deepcopy(config)
    base.unlock()
    del base["experiment"]  # each arm is an ordinary tune config
    arms = arm_configs(base, [float(f) for f in e.fractions], e.subset_evaluation,
                       e.candidate_pool)
    common.cache_compilations(workdir)
    dataset = load_dataset(base.data, base.seed)  # loaded once for every arm
    rows = []
    for name, config in arms:
        s = tune(config, os.path.join(workdir, name), dataset=dataset)
        rows.append({"name": name, "evaluation": config.hpo.evaluation,
                     "fraction": config.hpo.fraction, "tuning_seconds": s["tuning_seconds"],
                     "epochs_trained": s["epochs_trained"], "trials": s["trials"],
                     "energy_kwh": s["energy_kwh"], "best_params": s["best_params"],
                     "best_value": s["best_value"], "test_accuracy": s["retrain"]["test_accuracy"]})
        print(f"{name:12s} tuning {s['tuning_seconds']:7.1f} s, trials {s['trials']}, best "
              f"{s['best_params']} (val {s['best_value']:.4f}), retrained test acc "
              f"{s['retrain']['test_accuracy']:.4f}", flush=True)
    rows = rows[-1:] + rows[:-1]  # the full-data arm first in the table
    full = rows[0]
    for r in rows:
        r["speedup"] = full["tuning_seconds"] / r["tuning_seconds"]
        r["accuracy_gap"] = r["test_accuracy"] - full["test_accuracy"]
    h = base.hpo
    results = {"arms": rows, "settings": {
        "search": h.search, "scheduler": h.scheduler, "n_trials": h.n_trials,
        "reduction_factor": h.reduction_factor, "min_epochs": h.min_epochs,
        "max_epochs": h.max_epochs, "seed": h.seed, "power_watts": h.power_watts,
        "mode": h.mode, "every_epochs": h.every_epochs, "warm_start": h.warm_start,
        "candidate_fraction": h.candidate_fraction, "candidate_pool": e.candidate_pool,
        "eval_every_epochs": h.eval_every_epochs}}
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "results_tune.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    png, md = tuning_report.draw(path)
    print(tuning_report.table(results))
    print(f"wrote {path}, {png} and {md}")


if __name__ == "__main__":
    common.run(main)
