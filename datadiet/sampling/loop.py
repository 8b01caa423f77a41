"""Streaming training: every step draws its batch from a sampler over the whole training set.

One jitted function per step draws the ids, gathers and augments the batch, runs the shared
weighted train step and updates the sampler's state, all on device: the host only counts steps.
Randomness depends on (seed, step) alone, and the sampler state is checkpointed with the train
state, so a killed run resumes exactly. An "epoch" is ceil(N / B) steps (N examples drawn):
train metrics, the sampler diagnostics and (every train.eval_every_epochs) the test metrics are
logged at its end, with the same event keys as the epoch loop (sampling.log_every_steps sets a
shorter block). Train events also carry train_time: the elapsed seconds minus those spent on
diagnostics, evaluation and checkpoints.
"""
import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import tqdm
from jax.sharding import NamedSharding, PartitionSpec as P

from datadiet import parallel
from datadiet.data import augment
from datadiet.sampling.diagnostics import diagnostics
from datadiet.sampling.methods import make_sampler
from datadiet.training import optim
from datadiet.training.checkpoint import Checkpointer
from datadiet.training.durations import resolve_duration
from datadiet.training.loop import _evaluator, _tensorboard, build_model, log_epoch
from datadiet.training.state import apply_model, create_state
from datadiet.training.step import make_batch_fn, make_train_step, prediction_entropy

SAMPLING_STREAM = 0x5A3  # the sampler's keys: fold_in(fold_in(key, SAMPLING_STREAM), step)
PROBE_STREAM = 0x9BE


class StreamCheckpointer(Checkpointer):
    """The epoch loop's checkpoints plus a `sampler` item (the sampler's state)."""

    def save(self, step, state, meta, sampler_state):
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), sampler=ocp.args.StandardSave(sampler_state),
            meta=ocp.args.JsonSave(meta)))

    def restore_latest(self, like_state, like_sampler):
        step = self.manager.latest_step()
        if step is None:
            return None
        r = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(like_state),
            sampler=ocp.args.StandardRestore(like_sampler), meta=ocp.args.JsonRestore()))
        return r.state, r.sampler, r.meta


def make_stream_step(graphdef, tx, dataset, sampler, seed, mesh=None):
    """step(state, sampler_state, images, labels, step) -> (state, sampler_state, out).
    With a mesh, the trained batch is split over its "data" axis (as the epoch loop's)."""
    train_step = make_train_step(graphdef, tx, sampler.reduction)
    make_batch = make_batch_fn(dataset)
    key = jax.random.key(seed)  # augmentation: fold_in(key, step), exactly as the epoch loop
    sample_key = jax.random.fold_in(key, SAMPLING_STREAM)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def stream_step(state, sstate, images, labels, step):
        k_draw, k_select = jax.random.split(jax.random.fold_in(sample_key, step))
        ids, weights, sstate = sampler.draw(sstate, k_draw, step)
        batch, weights = make_batch(images, labels, ids[None], weights[None], 0, key, step)
        if sampler.select is not None:  # Selective-Backprop: forward the candidates first
            logits, _ = apply_model(graphdef, state.params, state.batch_stats, batch["x"], True)
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])
            rows, weights, sstate = sampler.select(sstate, k_select, ids, losses)
            ids, batch = ids[rows], jax.tree.map(lambda a: a[rows], batch)
        if mesh is not None:
            split = NamedSharding(mesh, P("data"))
            batch, weights = jax.lax.with_sharding_constraint((batch, weights), split)
        state, out = train_step(state, batch, weights)
        sstate = sampler.update(sstate, ids, weights, out)
        return state, sstate, {"loss": out["loss"], "correct": out["correct"],
                               "weights": weights, "ids": ids}

    return stream_step


def make_outputs_fn(graphdef, dataset, chunk):
    """outputs(state, images, labels, ids) -> eval-mode {"loss", "entropy", "correct"} of ids
    (host array), in fixed-size padded chunks so it compiles once."""
    mean, std = jnp.asarray(dataset.mean), jnp.asarray(dataset.std)

    @jax.jit
    def chunk_outputs(params, batch_stats, images, labels, ids):
        logits, _ = apply_model(graphdef, params, batch_stats,
                                augment.normalize(images[ids], mean, std), False)
        y = labels[ids]
        return {"loss": optax.softmax_cross_entropy_with_integer_labels(logits, y),
                "entropy": prediction_entropy(logits), "correct": jnp.argmax(logits, -1) == y}

    def outputs(state, images, labels, ids):
        n = len(ids)
        size = min(chunk, n)
        padded = np.concatenate([ids, np.zeros(-n % size, ids.dtype)]).astype(np.int32)
        parts = [chunk_outputs(state.params, state.batch_stats, images, labels,
                               padded[i:i + size]) for i in range(0, len(padded), size)]
        return {k: jnp.concatenate([p[k] for p in parts])[:n] for k in parts[0]}

    return outputs


def probe_ids(n, size, seed):
    rng = np.random.default_rng([seed, PROBE_STREAM])
    return np.sort(rng.choice(n, min(size, n), replace=False)).astype(np.int32)


def train_streaming(config, dataset, run):
    """Trains a fresh model with config.sampling's sampler, resuming from run's checkpoint."""
    t, c = config.train, config.sampling
    mesh = parallel.data_mesh()
    if t.batch_size % mesh.size:
        raise ValueError(f"train.batch_size={t.batch_size} must be divisible by the "
                         f"{mesh.size} devices")
    n = dataset.n_train
    duration = resolve_duration(t, n, n)  # an epoch = ceil(N / B) steps of drawn examples
    if c.log_every_steps > 0:  # the loop's "epochs" become blocks of log_every_steps steps
        total = duration.total_steps
        duration = dataclasses.replace(duration, epoch_starts=tuple(
            range(0, total, c.log_every_steps)) + (total,))
    tx = optim.make_optimizer(config.optim, duration.schedule_steps_per_epoch, duration.total_steps)
    lr_at = optim.make_schedule(config.optim, duration.schedule_steps_per_epoch,
                                duration.total_steps)
    graphdef, state = create_state(build_model(config, dataset), tx)
    state = parallel.replicate(state, mesh)
    sampler = make_sampler(c, n, t.batch_size, dataset.num_classes, duration.total_steps)
    sstate = parallel.replicate(sampler.init(None), mesh)
    images = parallel.put_global(dataset.x_train, mesh)
    labels = parallel.put_global(dataset.y_train, mesh)
    outputs = make_outputs_fn(graphdef, dataset, t.eval_batch_size)

    checkpointer = StreamCheckpointer(run.file("checkpoints"), t.max_checkpoints)
    # overhead: seconds spent on diagnostics, evaluation and checkpoints (not training), so
    # that train_time = elapsed - overhead compares samplers' training alone.
    meta = {"epoch": -1, "step": 0, "elapsed": 0.0, "overhead": 0.0}
    restored = checkpointer.restore_latest(state, sstate)
    started = time.time()
    if restored is not None:
        state, sstate, meta = restored
        started -= meta["elapsed"]
    elif c.init == "forward":  # one eval-mode pass of the initial model; its time counts
        sstate = parallel.replicate(
            sampler.init(outputs(state, images, labels, np.arange(n))), mesh)
    overhead = meta.get("overhead", 0.0)
    run.truncate_metrics(meta["step"])  # events after the checkpoint will be logged again

    stream_step = make_stream_step(graphdef, tx, dataset, sampler, config.seed, mesh)
    probe = probe_ids(n, c.probe_size, config.seed)
    measure = jax.jit(lambda s, losses: diagnostics(*sampler.distribution(s), probe, losses))
    evaluate = _evaluator(graphdef, dataset, t.eval_batch_size, mesh)
    writer = _tensorboard(run, config, int(state.step))
    bar = tqdm.tqdm(total=duration.total_steps * t.batch_size, unit="ex", unit_scale=True,
                    initial=int(state.step) * t.batch_size, disable=not config.log.progress,
                    desc=run.path.split("/")[-1])
    final = {}
    for epoch in range(meta["epoch"] + 1, duration.num_epochs):
        first_step, step = duration.epoch_starts[epoch], duration.epoch_starts[epoch + 1]
        outs = []
        for s in range(first_step, step):
            state, sstate, out = stream_step(state, sstate, images, labels, np.int32(s))
            outs.append(out)
            bar.update(t.batch_size)
        real = jnp.stack([o["weights"] for o in outs]) > 0  # padding does not count
        n_real = jnp.maximum(real.sum(), 1)
        train_metrics = {
            "loss": float((jnp.stack([o["loss"] for o in outs]) * real).sum() / n_real),
            "accuracy": float((jnp.stack([o["correct"] for o in outs]) * real).sum() / n_real)}
        trained = time.time()  # the float()s above waited for the block's steps
        train_time = round(trained - started - overhead, 3)
        probe_losses = outputs(state, images, labels, probe)["loss"]
        diag = {k: round(float(v), 6) for k, v in measure(sstate, probe_losses).items()}
        now = time.time() - started
        last = epoch == duration.num_epochs - 1
        test = evaluate(state) if last or (epoch + 1) % t.eval_every_epochs == 0 else None
        log_epoch(run, writer, final, step, epoch, now,
                  dict(lr=float(lr_at(step - 1)), train_time=train_time, **train_metrics, **diag),
                  test)
        if last or (epoch + 1) % t.checkpoint_every_epochs == 0:
            saving = time.time()  # elapsed and overhead both up to here: a resume continues both
            checkpointer.save(step, state, {"epoch": epoch, "step": step,
                                            "elapsed": saving - started,
                                            "overhead": overhead + saving - trained}, sstate)
        overhead += time.time() - trained
        bar.set_postfix(loss=f"{train_metrics['loss']:.3f}",
                        test_acc=f"{final.get('test', {}).get('accuracy', float('nan')):.3f}")
    bar.close()
    checkpointer.close()
    if writer is not None:
        writer.close()
    if not final:  # everything was already done before a restart
        final = {e["split"]: e for e in run.metrics() if "kind" not in e}
    return final
