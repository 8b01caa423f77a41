"""The scores job: train S seeds (own init and data order), score each at the configured epochs,
track forgetting events over the whole run, and write the means over seeds.

  WORKDIR/scores/<name>.npy    float32 [n_train], source order: mean over seeds
  WORKDIR/scores/<name>.json   {score, epoch, step, seeds, dataset, model, n_train, config}
  WORKDIR/scores/labels.npy    the training labels scored with (label noise included)
  WORKDIR/seeds/seed_<s>/      each seed's own run directory (checkpoints, metrics, its scores)
  WORKDIR/label_noise.json     when data.label_noise > 0 (the same corrupted labels for all seeds)

<name> is `<score>_epoch<t>` for the epoch-wise scores (el2n, grand, loss, entropy, margin),
`forgetting` (over the whole run) and `input_norm`. A killed job resumes: each seed run resumes
from its checkpoint and the forgetting counts from the snapshot of the same epoch; scores already
written are kept. Without `forgetting`, each seed trains only up to the last scored epoch
(the schedule is still that of the whole run).
"""
import copy
import json
import os

import ml_collections
import numpy as np

from datadiet.data import Subset, load_dataset
from datadiet.scores import compute, definitions
from datadiet.scores.forgetting import ForgettingTracker
from datadiet.training.rundir import RunDir

EPOCH_SCORES = definitions.FORWARD_SCORES + ("grand",)
SCORES = EPOCH_SCORES + ("forgetting", "input_norm")


def default_scores_config():
    c = ml_collections.ConfigDict()
    c.names = ("el2n", "grand", "forgetting", "input_norm")  # any of SCORES
    c.epochs = (0, 1)  # epoch-wise scores are taken after these many epochs (0 = at init)
    c.num_seeds = 3  # seeds config.seed, config.seed + 1, ...
    c.chunk_size = 256  # examples per jitted forward chunk
    c.grand_chunk_size = 64  # examples per jitted per-example-gradient chunk
    return c


def validate_scores_config(config):
    s = config.scores
    bad = [n for n in s.names if n not in SCORES]
    if bad or not s.names:
        raise ValueError(f"scores.names={tuple(s.names)} must be a non-empty selection of "
                         f"{list(SCORES)}")
    if s.num_seeds < 1:
        raise ValueError(f"scores.num_seeds={s.num_seeds} must be >= 1")
    if config.job != "scores":
        return
    epochs = config.train.epochs
    if epochs <= 0 or epochs != int(epochs):
        raise ValueError(f"train.epochs={epochs} must be a whole number of epochs for the "
                         "scores job (scores are taken at epoch ends)")
    if not s.epochs or any(int(t) != t or not 0 <= t <= epochs for t in s.epochs):
        raise ValueError(f"scores.epochs={tuple(s.epochs)} must be whole epochs in "
                         f"[0, train.epochs={int(epochs)}]")
    if config.coreset.method != "none" or config.prune.method != "none":
        raise ValueError("the scores job trains on the full data: set coreset.method and "
                         "prune.method to 'none'")


def score_file_names(scores_cfg):
    epoch_wise = [n for n in scores_cfg.names if n in EPOCH_SCORES]
    names = [f"{n}_epoch{int(t)}" for n in epoch_wise for t in scores_cfg.epochs]
    return names + [n for n in ("forgetting", "input_norm") if n in scores_cfg.names]


def compute_scores(config, workdir):
    """Runs (or resumes) the scores job; returns {file name: mean scores}."""
    from datadiet.config import validate_config
    validate_config(config)
    run = RunDir(workdir, config)
    run.set_status("running")
    try:
        # One dataset for every seed: with label noise, all seeds see the same corrupted labels.
        dataset = load_dataset(config.data, config.seed)
        if dataset.label_noise is not None:
            run.write_json("label_noise.json", dataset.label_noise)
        seeds = [config.seed + i for i in range(config.scores.num_seeds)]
        per_seed = {}
        for seed in seeds:
            per_seed[seed] = _score_seed(config, dataset, seed, run.file(f"seeds/seed_{seed}"))
        means = _write_means(config, dataset, run, seeds, per_seed)
    except BaseException as e:
        run.set_status("failed", error=repr(e))
        raise
    run.set_status("done", scores=sorted(means))
    return means


def _score_seed(config, dataset, seed, seed_dir):
    """{name: (scores, step)} for one seed, training (or resuming) its run as needed."""
    from datadiet.training.loop import build_model, train
    from datadiet.training.state import split_model
    seed_config = copy.deepcopy(config)
    seed_config.seed, seed_config.job = seed, "train"
    seed_run = RunDir(seed_dir, seed_config)
    score_dir = seed_run.file("scores")
    os.makedirs(score_dir, exist_ok=True)
    s = config.scores
    epoch_wise = [n for n in s.names if n in EPOCH_SCORES]
    graphdef = split_model(build_model(seed_config, dataset))[0]
    tracker = ForgettingTracker(dataset.n_train, score_dir) if "forgetting" in s.names else None

    def on_epoch(epoch, state):
        if tracker is not None:
            if tracker.counts is None:  # the first call: the state we start (or resume) from
                tracker.restore(epoch)
            else:
                tracker.snapshot(epoch)
        if epoch in s.epochs and epoch_wise:
            todo = [n for n in epoch_wise
                    if not os.path.exists(os.path.join(score_dir, f"{n}_epoch{epoch}.npy"))]
            if todo:
                scores = compute.state_scores(graphdef, state.params, state.batch_stats,
                                              dataset, todo, s.chunk_size, s.grand_chunk_size)
                for name, values in scores.items():
                    _save(score_dir, f"{name}_epoch{epoch}", values, {"step": int(state.step)})

    seed_run.set_status("running")
    # Forgetting events need the whole run; the other scores only up to their last epoch.
    stop = None if tracker is not None else int(max(s.epochs))
    final = train(seed_config, dataset, Subset.full(dataset.n_train), seed_run,
                  on_step=tracker.step if tracker is not None else None, on_epoch=on_epoch,
                  stop_epoch=stop)
    if tracker is not None:
        _save(score_dir, "forgetting", tracker.scores(), {"step": int(final["train"]["step"])})
    seed_run.set_status("done", final=final)
    out = {}
    for name in score_file_names(s):
        if name == "input_norm":
            continue
        with open(os.path.join(score_dir, name + ".json")) as f:
            out[name] = (np.load(os.path.join(score_dir, name + ".npy")), json.load(f)["step"])
    return out


def _write_means(config, dataset, run, seeds, per_seed):
    out_dir = run.file("scores")
    os.makedirs(out_dir, exist_ok=True)
    np.save(os.path.join(out_dir, "labels.npy"), dataset.y_train)  # scoreset.load, prune checks
    meta = {"seeds": seeds, "dataset": config.data.name, "model": config.model.name,
            "n_train": dataset.n_train, "config": json.loads(config.to_json_best_effort())}
    means = {}
    for name in score_file_names(config.scores):
        if name == "input_norm":  # no parameters: the same for every seed
            values, info = compute.input_norms(dataset), {"epoch": None, "step": None}
        else:
            values = np.mean([per_seed[s][name][0] for s in seeds], axis=0, dtype=np.float64)
            epoch = None if name == "forgetting" else int(name.rsplit("_epoch", 1)[1])
            info = {"epoch": epoch, "step": per_seed[seeds[0]][name][1]}
        score = name.split("_epoch")[0]
        means[name] = _save(out_dir, name, values, {"score": score, **info, **meta})
    return means


def _save(directory, name, values, info):
    values = np.asarray(values, np.float32)
    tmp = os.path.join(directory, name + ".tmp.npy")
    np.save(tmp, values)
    os.replace(tmp, os.path.join(directory, name + ".npy"))
    tmp = os.path.join(directory, name + ".json.tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
    os.replace(tmp, os.path.join(directory, name + ".json"))
    return values

