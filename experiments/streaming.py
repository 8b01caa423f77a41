"""Streaming samplers against uniform sampling: steps and training wall time to reach a target
test accuracy, and accuracy at a fixed budget of steps, over seeds.

  python -m experiments.streaming --config=configs/fashion_mnist_streaming.py --workdir=runs/stream

Each (method, seed) is an ordinary run directory WORKDIR/runs/<method>_s<seed> (finished ones are
reused, interrupted ones resume). Then WORKDIR/results_streaming.json (per run its test-accuracy
and diagnostics curves; per method the mean and 16-84 percentile band of steps and seconds to the
target, and of the accuracy at the full and the half budget) and WORKDIR/streaming.png through
analysis/streaming_figures.py. Seconds are `train_time`: training alone, without the evaluations
and diagnostics every method pays alike (the base-value methods' initial forward pass is in it).
"""
import copy
import json
import os


from analysis import streaming_figures
from datadiet.config import validate_config
from datadiet.data import load_dataset
from datadiet.jobs.train import train_and_evaluate
from experiments import common


def run_config(config, method, init, seed):
    c = copy.deepcopy(config)
    with c.unlocked():
        del c["experiment"]
    c.seed, c.sampling.method, c.sampling.init = seed, method, init
    return c


def curves(workdir):
    """(test curve [(step, train_time, accuracy)], diagnostics [(step, {...})]) of one run."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        events = [json.loads(line) for line in f]
    train_time = {e["step"]: e["train_time"] for e in events if e["split"] == "train"}
    test = [(e["step"], train_time[e["step"]], e["accuracy"]) for e in events
            if e["split"] == "test"]
    diag = [(e["step"], {k: e[k] for k in ("order_agreement", "hardest_decile_share",
                                           "sample_entropy")})
            for e in events if e["split"] == "train"]
    return test, diag


def first_reaching(test, target):
    """(step, seconds) of the first evaluation at or above target, or (None, None)."""
    for step, seconds, acc in test:
        if acc >= target:
            return step, seconds
    return None, None


def accuracy_at(test, step):
    """Test accuracy of the last evaluation at or before step."""
    return [acc for s, _, acc in test if s <= step][-1]


def run_all(config, workdir):
    e = config.experiment
    dataset = load_dataset(config.data, config.seed)
    runs, methods = [], []
    for label, method, init in e.methods:
        per_seed = []
        for seed in e.seeds:
            rdir = os.path.join(workdir, "runs", f"{method}_s{seed}")
            final = train_and_evaluate(run_config(config, method, init, seed), rdir, dataset)
            test, diag = curves(rdir)
            step, seconds = first_reaching(test, e.target_accuracy)
            print(f"{label} seed {seed}: final {final['test']['accuracy']:.4f}, "
                  f"{e.target_accuracy:.0%} at step {step} ({seconds} s)", flush=True)
            per_seed.append({"seed": seed, "test": test, "diagnostics": diag,
                             "steps_to_target": step, "seconds_to_target": seconds})
        budget = per_seed[0]["test"][-1][0]
        runs.append({"method": label, "runs": per_seed})
        methods.append({
            "method": label, "sampling": method, "budget_steps": budget,
            "steps_to_target": common.band([r["steps_to_target"] for r in per_seed]),
            "seconds_to_target": common.band([r["seconds_to_target"] for r in per_seed]),
            "accuracy_at_budget": common.band([accuracy_at(r["test"], budget) for r in per_seed]),
            "accuracy_at_half_budget": common.band([accuracy_at(r["test"], budget // 2)
                                                    for r in per_seed]),
            "total_train_seconds": common.band([r["test"][-1][1] for r in per_seed])})
    return {"target_accuracy": e.target_accuracy, "methods": methods, "runs": runs}


def main(config, workdir):
    for _, method, init in config.experiment.methods:  # every bad method fails before training
        validate_config(run_config(config, method, init, config.seed))
    common.cache_compilations(workdir)
    results = run_all(config, workdir)
    results.update(seeds=list(config.experiment.seeds))
    common.write_results(results, config, workdir, "streaming", streaming_figures)


if __name__ == "__main__":
    common.run(main)
