"""The scores job: train S seeds (own init and data order), score each at the configured epochs,
track forgetting events over the whole run, and write the means over seeds.

  WORKDIR/scores/<name>.npy    float32 [n_train], source order: mean over seeds
  WORKDIR/scores/<name>.json   {score, epoch, step, seeds, dataset, model, n_train, config}
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
from datadiet.scores.dynamics import AUMTracker, dyn_unc_scores
from datadiet.scores.embeddings import embeddings
from datadiet.scores.forgetting import ForgettingTracker
from datadiet.training.rundir import RunDir

EPOCH_SCORES = definitions.FORWARD_SCORES + ("grand",)
RUN_SCORES = ("forgetting", "aum", "dyn_unc")  # over the whole run
SCORES = EPOCH_SCORES + RUN_SCORES + ("input_norm",)


def default_scores_config():
    c = ml_collections.ConfigDict()
    c.names = ("el2n", "grand", "forgetting", "input_norm")  # any of SCORES
    c.epochs = (0, 1)  # epoch-wise scores are taken after these many epochs (0 = at init)
    c.num_seeds = 3  # seeds config.seed, config.seed + 1, ...
    c.chunk_size = 256  # examples per jitted forward chunk
    c.grand_chunk_size = 64  # examples per jitted per-example-gradient chunk
    c.dyn_unc_window = 2  # dyn_unc: J consecutive epochs per window
    c.embeddings = -1  # save the penultimate embeddings after this epoch (-1: not saved)
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
    if "dyn_unc" in s.names and not 2 <= s.dyn_unc_window <= epochs:
        raise ValueError(f"scores.dyn_unc_window={s.dyn_unc_window} must be in [2, "
                         f"train.epochs={int(epochs)}]")
    if s.embeddings != -1 and (int(s.embeddings) != s.embeddings or not 0 <= s.embeddings <= epochs):
        raise ValueError(f"scores.embeddings={s.embeddings} must be -1 (off) or a whole epoch in "
                         f"[0, train.epochs={int(epochs)}]")
    if config.coreset.method != "none" or config.prune.method != "none":
        raise ValueError("the scores job trains on the full data: set coreset.method and "
                         "prune.method to 'none'")


def score_file_names(scores_cfg):
    epoch_wise = [n for n in scores_cfg.names if n in EPOCH_SCORES]
    names = [f"{n}_epoch{int(t)}" for n in epoch_wise for t in scores_cfg.epochs]
    return names + [n for n in RUN_SCORES + ("input_norm",) if n in scores_cfg.names]


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
    aum = AUMTracker(dataset.n_train, score_dir) if "aum" in s.names else None
    on_step = [t.step for t in (tracker, aum) if t is not None]

    def on_epoch(epoch, state):
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
            np.save(p_path, np.exp(-loss.astype(np.float64)).astype(np.float32))
        e_path = os.path.join(score_dir, f"embeddings_epoch{epoch}.npy")
        if epoch == s.embeddings and not os.path.exists(e_path):
            np.save(e_path, embeddings(graphdef, state.params, state.batch_stats, dataset,
                                       s.chunk_size))
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
    whole_run = any(n in s.names for n in RUN_SCORES)
    stop = None if whole_run else int(max(s.epochs + ((s.embeddings,) if s.embeddings >= 0 else ())))
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
    tmp = os.path.join(directory, name + ".tmp.npy")
    np.save(tmp, values)
    os.replace(tmp, os.path.join(directory, name + ".npy"))
    tmp = os.path.join(directory, name + ".json.tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
    os.replace(tmp, os.path.join(directory, name + ".json"))
    return values


def load_scores(path):
    """(scores [n_train] float32, info dict) from a `<name>.npy` written by this job."""
    values = np.load(path)
    info_path = path[:-len(".npy")] + ".json" if path.endswith(".npy") else None
    info = {}
    if info_path and os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
    return values, info
