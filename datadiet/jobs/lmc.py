"""Linear-mode-connectivity runs: two (or more) children spawned from a parent at a step,
each trained to the end of the schedule as an ordinary run (the barrier maths is
datadiet/dynamics/barrier.py)."""
import copy
import json
import os
from typing import Any, NamedTuple

import numpy as np

from datadiet import distributed
from datadiet.jobs.train import open_run, train_and_evaluate
from datadiet.training.checkpoint import Checkpointer
from datadiet.training.durations import resolve_duration
from datadiet.training.loop import restore_state
from datadiet.training.state import TrainState


class Child(NamedTuple):
    config: Any  # the parent's config with this child's seed
    workdir: str  # its run directory (restore_state(config, dataset, workdir) loads it)
    final: dict  # its final metrics


def spawn_children(config, dataset, parent, spawn_step, child_seeds, workdir):
    """Trains one child per seed in `child_seeds` from the parent's state at `spawn_step` to the
    end of `config`'s schedule, in `workdir/seed_<seed>`; returns their `Child` records.

    parent: the parent's run directory (it must hold a checkpoint at `spawn_step`: keep them with
    `train.max_checkpoints`) or its TrainState at that step (e.g. a fresh init for spawn_step 0).
    `spawn_step` must end an epoch of the parent's schedule (the loop resumes at epoch ends).
    A child is the parent's config with `seed` = its seed, which changes its data order and
    augmentation only: its run directory starts from a copy of the parent's checkpoint, so the
    training loop resumes from it as from its own. Re-running resumes unfinished children and
    leaves finished ones untouched. The dataset is shared (label noise from the parent's seed).
    """
    seeds = list(child_seeds)
    if (len(seeds) < 1 or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                       for s in seeds)):
        raise ValueError(f"child_seeds={seeds!r} must be distinct integers")
    duration = resolve_duration(config.train, dataset.n_train, dataset.n_train)
    starts = list(duration.epoch_starts[:-1])
    if spawn_step not in starts:
        raise ValueError(f"spawn_step={spawn_step!r} must be the start of an epoch before the "
                         f"end of training, one of {starts[:5]}{'...' if len(starts) > 5 else ''}")
    configs = []
    for seed in seeds:
        child_config = copy.deepcopy(config)
        child_config.seed = int(seed)
        if child_config.data.label_noise_seed < 0:  # keep the parent's corrupted labels
            child_config.data.label_noise_seed = config.seed
        configs.append((child_config, os.path.join(workdir, f"seed_{seed}")))
    # The parent is read (and checked) before any child directory is written.
    state = meta = None
    if not all(_has_checkpoint(d) for _, d in configs):
        state, meta = _parent_state(config, dataset, parent, spawn_step, starts)
    children = []
    for child_config, child_dir in configs:
        open_run(child_dir, child_config)  # refuses a directory holding another run
        if not _has_checkpoint(child_dir):
            checkpointer = Checkpointer(os.path.join(child_dir, "checkpoints"),
                                        config.train.max_checkpoints)
            checkpointer.save(spawn_step, {"state": state}, meta)
            checkpointer.close()
        final = train_and_evaluate(child_config, child_dir, dataset)
        children.append(Child(child_config, os.path.abspath(child_dir), final))
    return children


def _has_checkpoint(run_dir):
    """Whether `run_dir` holds a finished checkpoint (Orbax renames a step's directory to its
    number once written), as process 0 sees it: every process gets the same answer, so all of
    them make the same collective Orbax calls after it (a process that looked while process 0
    was writing would otherwise take the other branch)."""
    path = os.path.join(run_dir, "checkpoints")
    found = os.path.isdir(path) and any(name.isdigit() for name in os.listdir(path))
    return distributed.broadcast_json(f"checkpointed {run_dir}", found)


def _parent_state(config, dataset, parent, spawn_step, starts):
    if isinstance(parent, TrainState):
        if int(parent.step) != spawn_step:
            raise ValueError(f"parent state is at step {int(parent.step)}, not "
                             f"spawn_step={spawn_step}")
        meta = {"epoch": starts.index(spawn_step) - 1, "step": spawn_step, "elapsed": 0.0}
        return parent, meta
    if not isinstance(parent, (str, os.PathLike)):
        raise ValueError(f"parent must be a run directory or a TrainState, got {type(parent)}")
    config_path = os.path.join(parent, "config.json")
    if os.path.exists(config_path):
        with open(config_path) as f:
            if json.load(f) != json.loads(config.to_json_best_effort()):
                raise ValueError(f"parent {parent} was run with a different config than the one "
                                 "given")
    _, state, meta = restore_state(config, dataset, parent, spawn_step)
    return state, meta
