"""The training loop: data on device, one jitted weighted step, eval, checkpoints, logging."""
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from datadiet import parallel
from datadiet.config import validate_config
from datadiet.data import Subset, load_dataset
from datadiet.models import get_model
from datadiet.training import optim
from datadiet.training.checkpoint import Checkpointer
from datadiet.training.durations import resolve_duration
from datadiet.training.rundir import RunDir
from datadiet.training.state import create_state
from datadiet.training.step import make_batch_fn, make_eval_step, make_train_step


class SelectionContext(NamedTuple):
    """What a selector may look at when it picks an epoch's subset."""
    graphdef: Any
    state: Any
    mesh: Any
    run: RunDir
    started: float  # time.time() of the run's start (resumes included): for event times
    images: Any  # the training set on device, in source order
    labels: Any


def train_and_evaluate(config, workdir, dataset=None):
    """Runs (or resumes) the job described by `config` in `workdir`; returns the final metrics.

    `dataset`: the already loaded `load_dataset(config.data, config.seed)`, to skip loading it.
    """
    validate_config(config)
    run = RunDir(workdir, config)
    if run.status().get("state") == "done":
        print(f"{run.path} is already done; nothing to do.")
        return run.status()["final"]
    run.set_status("running")
    try:
        if dataset is None:
            dataset = load_dataset(config.data, config.seed)
        if dataset.label_noise is not None:
            run.write_json("label_noise.json", dataset.label_noise)
        if config.sampling.method != "none":  # streaming: batches drawn by a sampler
            from datadiet.sampling.loop import train_streaming
            final = train_streaming(config, dataset, run)
        else:
            final = train(config, dataset, make_selector(config, dataset), run)
    except BaseException as e:  # incl. KeyboardInterrupt: the status must not say "running"
        run.set_status("failed", error=repr(e))
        raise
    run.set_status("done", final=final)
    return final


def make_selector(config, dataset):
    if config.prune.method != "none":
        from datadiet.prune import pruned_subset
        return pruned_subset(config, dataset)
    if config.coreset.method == "none":
        return Subset.full(dataset.n_train)
    from datadiet.coresets.selector import CoresetSelector
    return CoresetSelector(config, dataset)


def build_model(config, dataset):
    return get_model(config.model.name, dataset.num_classes, dataset.input_shape, config.seed,
                     **config.model.kwargs)


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
        state, meta = checkpointer.restore(parallel.replicate(like, parallel.data_mesh()), step)
    finally:
        checkpointer.close()
    return graphdef, state, meta


class FixedSelector:
    """The same subset (with its weights) every epoch: full data, a pruned subset, a random one."""

    def __init__(self, subset):
        self.subset = subset
        self.epoch_sizes = None  # fixed size: durations come from len(subset) (iteration matching)

    def subset_for_epoch(self, epoch, context):
        return self.subset


def train(config, dataset, selector, run, on_step=None, on_epoch=None, stop_epoch=None):
    """Trains a fresh model on what `selector` picks each epoch, resuming from run's checkpoint.

    `selector` is a Subset (the same every epoch) or an object with
    `subset_for_epoch(epoch, context) -> Subset` (context: a SelectionContext; it may run a
    selection there and log it) and `epoch_sizes(num_epochs) -> [size per epoch]`.
    on_step(step, s, epoch_ids, batch_weights, out) is an optional host callback (trackers): batch
    s of the epoch's [steps, B] ids; it gets device arrays and should not block on them.
    on_epoch(epoch, state) is an optional host callback with the state after `epoch` epochs: once
    before training (epoch 0 = the initial parameters, or the resumed epoch) and after every
    epoch, before that epoch's checkpoint; it must be idempotent (a resume repeats a call).
    stop_epoch: end after this many epochs of the schedule (its LR schedule unchanged), e.g. to
    score a run at an early epoch without paying for the rest.
    """
    if not hasattr(selector, "subset_for_epoch"):
        selector = FixedSelector(selector)
    t = config.train
    mesh = parallel.data_mesh()
    if t.batch_size % mesh.size:
        raise ValueError(f"train.batch_size={t.batch_size} must be divisible by the "
                         f"{mesh.size} devices")
    fixed_size = len(selector.subset) if isinstance(selector, FixedSelector) else None
    duration = resolve_duration(t, fixed_size, dataset.n_train, selector.epoch_sizes)
    tx = optim.make_optimizer(config.optim, duration.schedule_steps_per_epoch, duration.total_steps)
    lr_at = optim.make_schedule(config.optim, duration.schedule_steps_per_epoch,
                                duration.total_steps)
    graphdef, state = create_state(build_model(config, dataset), tx)
    state = parallel.replicate(state, mesh)

    checkpointer = Checkpointer(run.file("checkpoints"), t.max_checkpoints)
    meta = {"epoch": -1, "step": 0, "elapsed": 0.0}
    restored = checkpointer.restore_latest(state)
    if restored is not None:
        state, meta = restored
    # Events logged after the checkpoint we restart from will be logged again.
    run.truncate_metrics(meta["step"])
    start_epoch, elapsed = meta["epoch"] + 1, meta["elapsed"]

    images = parallel.put_global(dataset.x_train, mesh)
    labels = parallel.put_global(dataset.y_train, mesh)
    train_step, make_batch = make_train_step(graphdef, tx), make_batch_fn(dataset)
    evaluate = _evaluator(graphdef, dataset, t.eval_batch_size, mesh)
    key = jax.random.key(config.seed)
    writer = _tensorboard(run, config, int(state.step))

    started = time.time() - elapsed
    bar = tqdm.tqdm(total=duration.total_steps * t.batch_size, unit="ex", unit_scale=True,
                    initial=int(state.step) * t.batch_size, disable=not config.log.progress,
                    desc=run.path.split("/")[-1])
    final = {}
    # A callback may stop training by raising (e.g. a pruned tuning trial): close the
    # checkpointer (pending saves) and the writers on every way out.
    try:
        if on_epoch is not None:
            on_epoch(start_epoch, state)
        end_epoch = duration.num_epochs if stop_epoch is None else min(stop_epoch,
                                                                        duration.num_epochs)
        for epoch in range(start_epoch, end_epoch):
            context = SelectionContext(graphdef, state, mesh, run, started, images, labels)
            subset = selector.subset_for_epoch(epoch, context)
            first_step, step = duration.epoch_starts[epoch], duration.epoch_starts[epoch + 1]
            ids, weights = subset.epoch_batches(t.batch_size, config.seed, epoch)
            if len(ids) < step - first_step:
                raise RuntimeError(f"epoch {epoch}: the selector gave {len(subset)} examples, "
                                   f"fewer than its epoch_sizes promised")
            ids_dev = parallel.put_global(ids[:step - first_step], mesh, batch_axis=1)
            w_dev = parallel.put_global(weights[:step - first_step], mesh, batch_axis=1)
            losses, correct = [], []
            for s in range(step - first_step):
                batch, batch_weights = make_batch(images, labels, ids_dev, w_dev, s, key,
                                                  first_step + s)
                state, out = train_step(state, batch, batch_weights)
                losses.append(out["loss"])
                correct.append(out["correct"])
                if on_step is not None:
                    on_step(first_step + s, s, ids_dev, batch_weights, out)
                bar.update(t.batch_size)
            real = w_dev > 0  # padding and zero-weight examples do not count in train metrics
            n_real = jnp.maximum(real.sum(), 1)
            train_metrics = {"loss": float((jnp.stack(losses) * real).sum() / n_real),
                             "accuracy": float((jnp.stack(correct) * real).sum() / n_real)}
            now = time.time() - started
            last = epoch == end_epoch - 1
            test = evaluate(state) if last or (epoch + 1) % t.eval_every_epochs == 0 else None
            log_epoch(run, writer, final, step, epoch, now,
                      dict(lr=float(lr_at(step - 1)), **train_metrics), test)
            if on_epoch is not None:
                on_epoch(epoch + 1, state)
            if last or (epoch + 1) % t.checkpoint_every_epochs == 0:
                checkpointer.save(step, state, {"epoch": epoch, "step": step, "elapsed": now})
            bar.set_postfix(loss=f"{train_metrics['loss']:.3f}",
                            test_acc=f"{final.get('test', {}).get('accuracy', float('nan')):.3f}")
    finally:
        bar.close()
        checkpointer.close()
        if writer is not None:
            writer.close()
    if not final:  # everything was already done before a restart
        final = {e["split"]: e for e in run.metrics() if "kind" not in e}
    return final


def _evaluator(graphdef, dataset, eval_batch_size, mesh):
    """Test loss/accuracy over the whole test set in fixed-size padded chunks (one compile)."""
    eval_step = make_eval_step(graphdef, dataset)
    n = len(dataset.y_test)
    eb = -(-min(eval_batch_size, n) // mesh.size) * mesh.size
    chunks = -(-n // eb)
    pad = chunks * eb - n
    x = np.concatenate([dataset.x_test, np.zeros((pad,) + dataset.x_test.shape[1:],
                                                 dataset.x_test.dtype)])
    y = np.concatenate([dataset.y_test, np.zeros(pad, dataset.y_test.dtype)])
    valid = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
    x, y, valid = (parallel.put_global(a.reshape((chunks, eb) + a.shape[1:]), mesh, batch_axis=1)
                   for a in (x, y, valid))

    def evaluate(state):
        sums = [eval_step(state.params, state.batch_stats, x[i], y[i], valid[i])
                for i in range(chunks)]
        loss, correct = (float(sum(s[j] for s in sums)) for j in range(2))
        return {"loss": loss / n, "accuracy": correct / n}

    return evaluate


def log_epoch(run, writer, final, step, epoch, now, train, test=None):
    """Logs the epoch's train event (and test metrics, when evaluated) with its step, epoch and
    time, to metrics.jsonl and TensorBoard; `final` keeps the latest event of each split."""
    events = [dict(split="train", **train)] + ([] if test is None else [dict(split="test", **test)])
    for event in events:
        event.update(step=step, epoch=epoch + 1, time=round(now, 3))
        run.log(**event)
        _write_tb(writer, event)
        final[event["split"]] = event


def _tensorboard(run, config, step):
    if not config.log.tensorboard:
        return None
    from tensorboardX import SummaryWriter
    return SummaryWriter(run.file("tb"), purge_step=step or None)


def _write_tb(writer, event):
    if writer is None:
        return
    for name in ("loss", "accuracy", "lr"):
        if name in event:
            writer.add_scalar(f"{event['split']}/{name}", event[name], event["step"])
