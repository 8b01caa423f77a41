"""The Data Diet training-dynamics analyses, one command each (the config's `experiment.kind`):

  velocity  NTK velocity: kernel distance between the empirical NTKs of consecutive epochs on
            groups of examples with adjacent EL2N scores, per epoch, with and without label
            noise (paper Figure 3)
  barrier   linear-mode-connectivity error barrier between two children spawned from a parent
            at epoch t*, on the lowest-EL2N, highest-EL2N and a random subset (Figure 4)

  python -m experiments.training_dynamics --config=configs/fashion_mnist_ntk_velocity.py --workdir=runs/dyn
  python -m experiments.training_dynamics --config=configs/fashion_mnist_error_barrier.py --workdir=runs/dyn

Both first run (or reuse) the scores job of the config (EXPERIMENT.scores_root, default the
workdir) and a parent run that keeps a checkpoint after every epoch (WORKDIR/parent_noise<K>);
children live in WORKDIR/children/. Writes WORKDIR/results_<kind>.json and WORKDIR/<kind>.png
(analysis/dynamics_figures.py). Every run directory resumes when interrupted.
"""
import os

import jax.numpy as jnp
import numpy as np

from analysis import dynamics_figures
from datadiet.dynamics import barrier, ntk
from datadiet.jobs import lmc
from datadiet.data import augment, load_dataset
from datadiet.training import optim
from datadiet.training.durations import resolve_duration
from datadiet.jobs.train import train_and_evaluate
from datadiet.training.loop import build_model, restore_state
from datadiet.training.state import create_state
from experiments import common
from experiments.pruning import run_config, run_scores_job

KINDS = ("velocity", "barrier")


def parent_run(config, workdir, noise):
    """(config, dataset, run dir, epoch start steps) of a full-data run keeping every epoch."""
    c = run_config(config)
    c.job, c.data.label_noise = "train", noise
    if c.data.label_noise_seed < 0:
        c.data.label_noise_seed = config.seed  # the scores job's corrupted labels
    c.train.checkpoint_every_epochs = 1
    c.train.max_checkpoints = int(c.train.epochs) + 1
    dataset = load_dataset(c.data, c.seed)
    path = os.path.join(workdir, f"parent_noise{noise}")
    train_and_evaluate(c, path, dataset)
    duration = resolve_duration(c.train, dataset.n_train, dataset.n_train)
    return c, dataset, path, duration.epoch_starts


def state_at_epoch(config, dataset, path, starts, epoch):
    """(graphdef, state) after `epoch` epochs; epoch 0 is the seed's fresh initialisation."""
    if epoch == 0:
        duration = resolve_duration(config.train, dataset.n_train, dataset.n_train)
        tx = optim.make_optimizer(config.optim, duration.schedule_steps_per_epoch,
                                  duration.total_steps)
        return create_state(build_model(config, dataset), tx)
    graphdef, state, _ = restore_state(config, dataset, path, starts[epoch])
    return graphdef, state


def velocity(config, workdir):
    e = config.experiment
    rows = []
    for noise in e.label_noise:
        sdir = run_scores_job(config, workdir, noise)
        scores = np.load(os.path.join(sdir, "scores", e.score + ".npy"))
        c, dataset, path, starts = parent_run(config, workdir, noise)
        groups = ntk.score_groups(scores, e.group_size, n_groups=e.n_groups)
        ranks = np.argsort(np.argsort(scores, kind="stable"), kind="stable")
        percentiles = [100.0 * (ranks[g].mean() + 0.5) / len(scores) for g in groups]
        x = augment.normalize(jnp.asarray(dataset.x_train), dataset.mean, dataset.std)
        states = [state_at_epoch(c, dataset, path, starts, t) for t in range(len(starts))]
        graphdef = states[0][0]
        for t in range(len(starts) - 1):
            (_, s_t), (_, s_u) = states[t], states[t + 1]
            distances = ntk.ntk_velocity(graphdef, (s_t.params, s_t.batch_stats),
                                         (s_u.params, s_u.batch_stats), x, groups,
                                         trace=e.trace, chunk_size=e.group_size)
            for g, (p, d) in enumerate(zip(percentiles, distances)):
                rows.append({"label_noise": noise, "epoch": t, "group": g,
                             "score_percentile": p, "kernel_distance": float(d)})
            print(f"noise {noise} epoch {t}->{t + 1}: " + " ".join(f"{d:.4f}" for d in distances),
                  flush=True)
    return {"points": rows, "score": e.score, "group_size": e.group_size, "trace": e.trace}


def barrier_experiment(config, workdir):
    e = config.experiment
    sdir = run_scores_job(config, workdir, 0.0)
    scores = np.load(os.path.join(sdir, "scores", e.score + ".npy"))
    c, dataset, path, starts = parent_run(config, workdir, 0.0)
    order = np.argsort(scores, kind="stable")
    subsets = {"lowest": np.sort(order[:e.subset_size]),
               "highest": np.sort(order[-e.subset_size:]),
               "random": np.sort(np.random.default_rng(config.seed).choice(
                   len(scores), e.subset_size, replace=False))}
    alphas = barrier.default_alphas(e.alphas)
    rows = []
    for t in e.spawn_epochs:
        graphdef, parent_state = state_at_epoch(c, dataset, path, starts, t)
        parent = parent_state if t == 0 else path
        for pair, seeds in enumerate(e.child_seeds):
            children = lmc.spawn_children(c, dataset, parent, starts[t], seeds,
                                              os.path.join(workdir, "children", f"epoch{t}"))
            states = [restore_state(ch.config, dataset, ch.workdir)[1] for ch in children]
            for name, ids in subsets.items():
                out = barrier.barrier_between(states[0], states[1], graphdef, dataset, ids,
                                              alphas, recompute_bn=e.recompute_bn)
                rows.append({"spawn_epoch": t, "pair": pair, "subset": name, **out})
                print(f"t*={t} pair {pair} {name:8s}: barrier {out['barrier']:.4f}", flush=True)
    return {"points": rows, "score": e.score, "subset_size": e.subset_size,
            "recompute_bn": e.recompute_bn}


def main(config, workdir):
    kind = config.experiment.kind
    if kind not in KINDS:
        raise ValueError(f"experiment.kind={kind!r} is not one of {list(KINDS)}")
    load_dataset(config.data, config.seed)  # a bad data path fails before any training
    common.cache_compilations(workdir)
    results = (velocity if kind == "velocity" else barrier_experiment)(config, workdir)
    results.update(kind=kind)
    common.write_results(results, config, workdir, kind, dynamics_figures)


if __name__ == "__main__":
    common.run(main)
