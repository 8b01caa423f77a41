"""The Data Diet pruning experiments, one command each (the config's `experiment.kind`):

  curve   final test accuracy vs fraction pruned, per score (paper Figure 1, bottom)
  epochs  a fixed kept fraction, scores taken at different epochs (Figure 1, top)
  window  sliding window over score ranks, with and without label noise (Figure 2)
  selectors  the curve for the selectors of experiments/selectors.py (issue 17), each compared
          with random; with experiment.label_noise, how well low AUM / high EL2N / high loss
          find the corrupted labels

  python -m experiments.pruning --config=configs/fashion_mnist_prune_curve.py --workdir=runs/fig1b

It runs the scores job(s) first (one per label-noise level, in EXPERIMENT.scores_root, default
the workdir: reused when finished, resumed when interrupted), then every retraining run as an
ordinary run directory under WORKDIR/runs/ (finished ones are reused), then writes
WORKDIR/results_<kind>.json (every run, and per point the mean and 16-84 percentile band over seeds)
and WORKDIR/<kind>.png through analysis/pruning_figures.py.
"""
import copy
import json
import os

import numpy as np

from analysis import pruning_figures
from datadiet.data import load_dataset
from datadiet.prune import noise_detection
from datadiet.jobs.scores import compute_scores
from datadiet.jobs.train import train_and_evaluate
from experiments import common
from experiments import selectors as sel


def scores_dir(config, workdir, noise):
    root = config.experiment.scores_root or workdir
    return os.path.join(root, f"scores_noise{noise}")


def run_config(config):
    """The experiment config without its `experiment` section: an ordinary run config."""
    c = copy.deepcopy(config)
    with c.unlocked():
        del c["experiment"]
    return c


def run_scores_job(config, workdir, noise):
    c = run_config(config)
    c.data.label_noise = noise
    path = scores_dir(config, workdir, noise)
    compute_scores(c, path)
    return path


def retrain(config, workdir, name, seed, noise=0.0, **prune):
    """One run from a fresh init on the kept subset (iteration-matched): its test accuracy."""
    c = run_config(config)
    c.job, c.seed, c.data.label_noise = "train", seed, noise
    # Every retraining seed must see the labels the scores job corrupted (its seed's draw).
    if c.data.label_noise_seed < 0:
        c.data.label_noise_seed = config.seed
    c.prune.update(prune)
    final = train_and_evaluate(c, os.path.join(workdir, "runs", f"{name}_s{seed}"))
    acc = final["test"]["accuracy"]
    print(f"{name} seed {seed}: test accuracy {acc:.4f}", flush=True)
    return acc


def curve(config, workdir):
    e = config.experiment
    sdir = run_scores_job(config, workdir, 0.0)
    full = [retrain(config, workdir, "full", s) for s in e.seeds]
    points = []
    for label, score in e.methods:
        for pruned in e.fractions_pruned:
            if pruned == 0:
                accs = full
            else:
                kw = dict(method="random") if score == "random" else dict(
                    method="high", scores=os.path.join(sdir, "scores", score + ".npy"))
                accs = [retrain(config, workdir, f"{score}_pruned{pruned}", s, keep=1 - pruned,
                                **kw) for s in e.seeds]
            points.append({"method": label, "score": score, "fraction_pruned": pruned,
                           **common.band(accs)})
    return {"points": points}


def epochs(config, workdir):
    e = config.experiment
    sdir = run_scores_job(config, workdir, 0.0)
    full = common.band([retrain(config, workdir, "full", s) for s in e.seeds])
    random = common.band([retrain(config, workdir, f"random_pruned{e.fraction_pruned}", s,
                                  method="random", keep=1 - e.fraction_pruned)
                          for s in e.seeds])
    points = []
    for label, score in e.methods:
        for t in config.scores.epochs:
            name = f"{score}_epoch{t}"
            accs = [retrain(config, workdir, f"{name}_pruned{e.fraction_pruned}", s,
                            method="high", keep=1 - e.fraction_pruned,
                            scores=os.path.join(sdir, "scores", name + ".npy")) for s in e.seeds]
            points.append({"method": label, "score": score, "epoch": t, **common.band(accs)})
    return {"points": points, "full": full, "random": random,
            "fraction_pruned": e.fraction_pruned}


def window(config, workdir):
    e = config.experiment
    points, detection = [], {}
    for noise in e.label_noise:
        sdir = run_scores_job(config, workdir, noise)
        path = os.path.join(sdir, "scores", e.score + ".npy")
        for offset in e.offsets:
            accs = [retrain(config, workdir, f"{e.score}_window{offset}_keep{e.keep}_noise{noise}",
                            s, noise, method="window", keep=e.keep, offset=offset, scores=path)
                    for s in e.seeds]
            points.append({"label_noise": noise, "offset": offset, **common.band(accs)})
        if noise > 0:
            with open(os.path.join(sdir, "label_noise.json")) as f:
                noisy = json.load(f)["ids"]
            detection[str(noise)] = {
                name[:-4]: noise_detection(np.load(os.path.join(sdir, "scores", name)), noisy)
                for name in sorted(os.listdir(os.path.join(sdir, "scores")))
                if name.endswith(".npy") and not name.startswith("margin")}
    return {"points": points, "keep": e.keep, "score": e.score, "noise_detection": detection}


def selectors(config, workdir):
    e = config.experiment
    sel.validate(e, config.scores)  # before any training
    parsed = sel.parse_all(tuple(e.selectors), config.scores)
    sdir = run_scores_job(config, workdir, 0.0)
    emb = os.path.join(sdir, "scores", f"embeddings_epoch{int(config.scores.embeddings)}.npy")
    full = common.band([retrain(config, workdir, "full", s) for s in e.seeds])
    points = []
    for p in parsed:
        fields = sel.prune_fields(p, p["score"] and sel.difficulty_path(sdir, p["score"]), emb)
        for pruned in e.fractions_pruned:
            name = f"{p['selector'].replace(':', '_')}_pruned{pruned}"
            accs = [retrain(config, workdir, name, s, keep=1 - pruned, **fields) for s in e.seeds]
            points.append({**p, "fraction_pruned": pruned, **common.band(accs)})
    detection = {}
    if e.label_noise > 0:
        ndir = run_scores_job(config, workdir, e.label_noise)
        with open(os.path.join(ndir, "label_noise.json")) as f:
            noisy = json.load(f)["ids"]
        # k = the number of corrupted labels; aum is ranked by -aum (its lowest values)
        detection[str(e.label_noise)] = {
            name: {**noise_detection(np.load(sel.difficulty_path(ndir, name)), noisy),
                   "ranking": "lowest" if name.split("_epoch")[0] in sel.NEGATED else "highest"}
            for name in e.noise_scores}
    return {"points": points, "full": full, "comparison": sel.compare_with_random(points),
            "noise_detection": detection, "embeddings_epoch": int(config.scores.embeddings)}


KINDS = {"curve": curve, "epochs": epochs, "window": window, "selectors": selectors}


def main(config, workdir):
    kind = config.experiment.kind
    if kind not in KINDS:
        raise ValueError(f"experiment.kind={kind!r} is not one of {list(KINDS)}")
    load_dataset(config.data, config.seed)  # a bad data path fails before any training
    common.cache_compilations(workdir)
    results = KINDS[kind](config, workdir)
    results.update(kind=kind, seeds=list(config.experiment.seeds))
    common.write_results(results, config, workdir, kind, pruning_figures)


if __name__ == "__main__":
    common.run(main)
