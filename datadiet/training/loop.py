"""The epoch trainer: the training set on device (or, data.pipeline="host", batches from the
host pipeline, data/pipeline.py), each epoch's examples picked by a selector,
one jitted weighted step per batch, run by the shared driver (training/driver.py)."""
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from datadiet import parallel
from datadiet.data import pipeline
from datadiet.models import get_model
from datadiet.training import optim, preemption
from datadiet.training.checkpoint import Checkpointer
from datadiet.training.driver import drive
from datadiet.training.durations import resolve_duration
from datadiet.training.evaluate import make_evaluator
from datadiet.training.finite import check_block
from datadiet.training.rundir import RunDir
from datadiet.training.state import create_state
from datadiet.training.step import make_batch_fn, make_gathered_batch_fn, make_train_step


class SelectionContext(NamedTuple):
    """What a selector may look at when it picks an epoch's subset."""
    graphdef: Any
    state: Any
    mesh: Any
    run: RunDir
    started: float  # time.time() of the run's start (resumes included): for event times
    images: Any  # the training set on device, in source order (None: data.pipeline="host")
    labels: Any


def build_model(config, dataset):
    return get_model(config.model.name, dataset.num_classes, dataset.input_shape, config.seed,
                     dtype=config.model.dtype, **config.model.kwargs)


def check_batch_split(batch_size, mesh):
    if batch_size % mesh.size:
        raise ValueError(f"train.batch_size={batch_size} must be divisible by the "
                         f"{mesh.size} devices")


def restore_state(config, dataset, workdir, step=None):
    """(graphdef, state, meta) of run `workdir`'s checkpoint at global `step` (None: the newest).

    The state template (and so the optimiser state's structure) is rebuilt from `config` as
    `train` builds it; its arrays are replicated over the devices.
    """
    path = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(path):
        raise ValueError(f"workdir={workdir!r} has no checkpoints/ directory")
    duration = resolve_duration(config.train, dataset.n_train, dataset.n_train)
    tx = optim.make_optimizer(config.optim, duration.schedule_steps_per_epoch, duration.total_steps)
    graphdef, like = create_state(build_model(config, dataset), tx)
    checkpointer = Checkpointer(path, max_to_keep=None)  # reading only: never prune
    try:
        steps = checkpointer.steps()
        step = steps[-1] if step is None and steps else step
        if step not in steps:
            raise ValueError(f"step={step!r}: {workdir} has checkpoints at steps {steps} only "
                             "(keep more with train.max_checkpoints)")
        items, meta = checkpointer.restore(
            {"state": parallel.replicate(like, parallel.data_mesh())}, step)
    finally:
        checkpointer.close()
    return graphdef, items["state"], meta


class FixedSelector:
    """The same subset (with its weights) every epoch: full data, a pruned subset, a random one."""

    def __init__(self, subset):
        self.subset = subset
        self.epoch_sizes = None  # fixed size: durations come from len(subset) (iteration matching)

    def subset_for_epoch(self, epoch, context):
        return self.subset


class EpochTrainer:
    """The driver's trainer for epochs over what a selector picks (see driver.py)."""
    logs_train_time = False

    def __init__(self, config, dataset, selector, graphdef, tx, state, mesh, run, on_step):
        self.config, self.selector, self.graphdef, self.mesh, self.run = (
            config, selector, graphdef, mesh, run)
        self.state, self.on_step = state, on_step
        self.train_step = make_train_step(graphdef, tx)
        self.key = jax.random.key(config.seed)
        self.host = dataset.pipeline == "host"
        if self.host:  # the training set stays on the host: batches come gathered
            self.dataset, self.images = dataset, None
            self.labels, self.make_batch = None, make_gathered_batch_fn(dataset)
            return
        self.images = parallel.put_global(dataset.x_train, mesh)
        self.labels = parallel.put_global(dataset.y_train, mesh)
        self.make_batch = make_batch_fn(dataset)

    def items(self):
        return {"state": self.state}

    def load(self, items):
        self.state = items["state"]

    def fresh(self):
        pass

    def block_diagnostics(self):
        return {}

    def train_block(self, epoch, first_step, step, started, tick):
        bs, seed, mesh = self.config.train.batch_size, self.config.seed, self.mesh
        context = SelectionContext(self.graphdef, self.state, mesh, self.run, started,
                                   self.images, self.labels)
        subset = self.selector.subset_for_epoch(epoch, context)
        ids, weights = subset.epoch_batches(bs, seed, epoch)
        if len(ids) < step - first_step:
            raise RuntimeError(f"epoch {epoch}: the selector gave {len(subset)} examples, "
                               f"fewer than its epoch_sizes promised")
        n = step - first_step
        batches = (self._host_batches if self.host else self._device_batches)(
            ids[:n], weights[:n], first_step)
        losses, correct, finite, used = [], [], [], []
        state, began = self.state, time.time()
        for s, (batch, batch_weights, epoch_ids, s_in_ids) in enumerate(batches):
            # a Python flag: a SIGTERM stops the run between steps (or lets the epoch finish)
            preemption.check(s, n, began)
            state, out = self.train_step(state, batch, batch_weights)
            losses.append(out["loss"])
            correct.append(out["correct"])
            finite.append(out["finite"])
            used.append(batch_weights)
            if self.on_step is not None:
                self.on_step(first_step + s, s_in_ids, epoch_ids, batch_weights, out)
            tick(1)
        check_block(jnp.stack(finite), first_step, epoch)  # before the state is kept
        self.state = state
        real = jnp.stack(used) > 0  # padding and zero-weight examples do not count in metrics
        n_real = jnp.maximum(real.sum(), 1)
        return {"loss": float((jnp.stack(losses) * real).sum() / n_real),
                "accuracy": float((jnp.stack(correct) * real).sum() / n_real)}

    def _device_batches(self, ids, weights, first_step):
        """(batch, weights, epoch ids, row of the batch in them) per step, gathered on device
        from the on-device training set."""
        ids_dev = parallel.put_global(ids, self.mesh, batch_axis=1)
        w_dev = parallel.put_global(weights, self.mesh, batch_axis=1)
        for s in range(len(ids)):
            batch, batch_weights = self.make_batch(self.images, self.labels, ids_dev, w_dev, s,
                                                   self.key, first_step + s)
            yield batch, batch_weights, ids_dev, s

    def _host_batches(self, ids, weights, first_step):
        """The same batches from the host pipeline (each its own [1, B] ids, row 0)."""
        batches = pipeline.epoch_batches(self.dataset.x_train, self.dataset.y_train, ids,
                                         weights, self.mesh)
        for s, b in enumerate(batches):
            batch, batch_weights = self.make_batch(b["x"], b["y"], b["w"], self.key,
                                                   first_step + s)
            yield batch, batch_weights, b["ids"][None], 0


def train(config, dataset, selector, run, on_step=None, on_epoch=None, stop_epoch=None):
    """Trains a fresh model on what `selector` picks each epoch, resuming from run's checkpoint.

    `selector` is a Subset (the same every epoch) or an object with
    `subset_for_epoch(epoch, context) -> Subset` (context: a SelectionContext; it may run a
    selection there and log it) and `epoch_sizes(num_epochs) -> [size per epoch]`.
    on_step(step, s, epoch_ids, batch_weights, out) is an optional host callback (trackers): batch
    s of the epoch's [steps, B] ids (data.pipeline="host": the batch's own [1, B] ids and s = 0);
    it gets device arrays and should not block on them.
    on_epoch(epoch, state, metrics) and stop_epoch: see driver.drive.
    """
    if not hasattr(selector, "subset_for_epoch"):
        selector = FixedSelector(selector)
    t = config.train
    mesh = parallel.data_mesh()
    check_batch_split(t.batch_size, mesh)
    fixed_size = len(selector.subset) if isinstance(selector, FixedSelector) else None
    duration = resolve_duration(t, fixed_size, dataset.n_train, selector.epoch_sizes)
    tx = optim.make_optimizer(config.optim, duration.schedule_steps_per_epoch, duration.total_steps)
    lr_at = optim.make_schedule(config.optim, duration.schedule_steps_per_epoch,
                                duration.total_steps)
    graphdef, state = create_state(build_model(config, dataset), tx)
    state = parallel.replicate(state, mesh)
    trainer = EpochTrainer(config, dataset, selector, graphdef, tx, state, mesh, run, on_step)
    evaluate = make_evaluator(graphdef, dataset, t.eval_batch_size, mesh)
    return drive(config, run, trainer, duration, lr_at, evaluate, on_epoch, stop_epoch)
