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

import numpy as np

from datadiet import fileio
from datadiet.config import check_loaded, default_config, validate_config
from datadiet.data import Subset, load_dataset
from datadiet.scores import compute
from datadiet.scores.config import EPOCH_SCORES, RUN_SCORES, score_file_names
from datadiet.scores.dynamics import AUMTracker, dyn_unc_scores
from datadiet.scores.embeddings import embeddings
from datadiet.scores.forgetting import ForgettingTracker
from datadiet.training.loop import build_model, train
from datadiet.training.rundir import RunDir
from datadiet.training.state import split_model

__all__ = ["compute_scores", "scores_job", "score_file_names"]

def compute_scores(config, workdir):
    """Runs (or resumes) the scores job; returns {file name: mean scores}."""
    validate_config(config)
    run = RunDir(workdir, config, default_config())
    with run.active():
        # One dataset for every seed: with label noise, all seeds see the same corrupted labels.
        dataset = load_dataset(config.data, config.seed)
        check_loaded(config, dataset)  # sizes a TFDS source tells only now
        if dataset.label_noise is not None:
            run.write_json("label_noise.json", dataset.label_noise)
        seeds = [config.seed + i for i in range(config.scores.num_seeds)]
        per_seed = {}
        for seed in seeds:
            per_seed[seed] = _score_seed(config, dataset, seed, run.file(f"seeds/seed_{seed}"))
        means = _write_means(config, dataset, run, seeds, per_seed)
        run.set_status("done", scores=sorted(means))
    return means


def _score_seed(config, dataset, seed, seed_dir):
    """{name: (scores, step)} for one seed, training (or resuming) its run as needed."""
    seed_config = copy.deepcopy(config)
    seed_config.seed, seed_config.job = seed, "train"
    seed_run = RunDir(seed_dir, seed_config, default_config())
    score_dir = seed_run.file("scores")
    os.makedirs(score_dir, exist_ok=True)
    s = config.scores
    epoch_wise = [n for n in s.names if n in EPOCH_SCORES]
    graphdef = split_model(build_model(seed_config, dataset))[0]
    tracker = ForgettingTracker(dataset.n_train, score_dir) if "forgetting" in s.names else None
    aum = AUMTracker(dataset.n_train, score_dir) if "aum" in s.names else None
    on_step = [t.step for t in (tracker, aum) if t is not None]

    def on_epoch(epoch, state, metrics):
        if tracker is not None:
            if tracker.counts is None:  # the first call: the state we start (or resume) from
                tracker.restore(epoch)
            else:
                tracker.snapshot(epoch)
        if aum is not None:
            aum.restore(epoch) if aum.acc is None else aum.snapshot(epoch)
        p_path = os.path.join(score_dir, f"p_true_epoch{epoch}.npy")
        if "dyn_unc" in s.names and epoch >= 1 and not os.path.exists(p_path):
            loss = compute.state_scores(graphdef, state.params, state.batch_stats, dataset,
                                        ["loss"], s.chunk_size)["loss"]
            fileio.write_npy(p_path, np.exp(-loss.astype(np.float64)).astype(np.float32))
        e_path = os.path.join(score_dir, f"embeddings_epoch{epoch}.npy")
        if epoch == s.embeddings and not os.path.exists(e_path):
            fileio.write_npy(e_path, embeddings(graphdef, state.params, state.batch_stats,
                                                dataset, s.chunk_size))
        if epoch in s.epochs and epoch_wise:
            todo = [n for n in epoch_wise
                    if not os.path.exists(os.path.join(score_dir, f"{n}_epoch{epoch}.npy"))]
            if todo:
                scores = compute.state_scores(graphdef, state.params, state.batch_stats,
                                              dataset, todo, s.chunk_size, s.grand_chunk_size)
                for name, values in scores.items():
                    _save(score_dir, f"{name}_epoch{epoch}", values, {"step": int(state.step)})

    # Forgetting events need the whole run; the other scores only up to their last epoch.
    whole_run = any(n in s.names for n in RUN_SCORES)
    stop = None if whole_run else int(max(s.epochs + ((s.embeddings,) if s.embeddings >= 0 else ())))
    with seed_run.active():
        final = train(seed_config, dataset, Subset.full(dataset.n_train), seed_run,
                      on_step=(lambda *a: [f(*a) for f in on_step]) if on_step else None,
                      on_epoch=on_epoch, stop_epoch=stop)
        last = {"step": int(final["train"]["step"])}
        if tracker is not None:
            _save(score_dir, "forgetting", tracker.scores(), last)
        if aum is not None:
            _save(score_dir, "aum", aum.scores(), last)
        if "dyn_unc" in s.names:
            p_true = [np.load(os.path.join(score_dir, f"p_true_epoch{t}.npy"))
                      for t in range(1, int(config.train.epochs) + 1)]
            _save(score_dir, "dyn_unc", dyn_unc_scores(p_true, s.dyn_unc_window), last)
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
    fileio.write_npy(os.path.join(out_dir, "labels.npy"), dataset.y_train)  # scoreset.load, pruning
    meta = {"seeds": seeds, "dataset": config.data.name, "model": config.model.name,
            "n_train": dataset.n_train, "config": json.loads(config.to_json_best_effort())}
    means = {}
    for name in score_file_names(config.scores):
        if name == "input_norm":  # no parameters: the same for every seed
            values, info = compute.input_norms(dataset), {"epoch": None, "step": None}
        else:
            values = np.mean([per_seed[s][name][0] for s in seeds], axis=0, dtype=np.float64)
            epoch = None if name in RUN_SCORES else int(name.rsplit("_epoch", 1)[1])
            info = {"epoch": epoch, "step": per_seed[seeds[0]][name][1]}
        score = name.split("_epoch")[0]
        means[name] = _save(out_dir, name, values, {"score": score, **info, **meta})
    if config.scores.embeddings >= 0:
        # Embeddings are not averaged (each seed's features live in their own basis): the
        # first seed's, [n_train, F] float32.
        t, seed = int(config.scores.embeddings), seeds[0]
        values = np.load(run.file(f"seeds/seed_{seed}/scores/embeddings_epoch{t}.npy"))
        _save(out_dir, f"embeddings_epoch{t}", values,
              {"score": "embeddings", "epoch": t, "seeds": [seed],
               **{k: v for k, v in meta.items() if k != "seeds"}})
    return means


def _save(directory, name, values, info):
    values = np.asarray(values, np.float32)
    fileio.write_npy(os.path.join(directory, name + ".npy"), values)
    fileio.write_json(os.path.join(directory, name + ".json"), info)
    return values


def scores_job(config, workdir):
    scores = compute_scores(config, workdir)
    print(f"wrote {len(scores)} score files to {workdir}/scores: {sorted(scores)}")
