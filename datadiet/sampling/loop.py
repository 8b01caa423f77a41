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
from jax.sharding import NamedSharding, PartitionSpec as P

from datadiet import parallel
from datadiet.data import augment
from datadiet.sampling.diagnostics import diagnostics
from datadiet.sampling.methods import make_sampler
from datadiet.training import optim, preemption
from datadiet.training.driver import drive
from datadiet.training.durations import resolve_duration
from datadiet.training.evaluate import chunk_length, make_evaluator, pad_rows
from datadiet.training.finite import check_block
from datadiet.training.loop import build_model, check_batch_split
from datadiet.training.state import apply_model, create_state
from datadiet.training.step import make_batch_fn, make_train_step, prediction_entropy

SAMPLING_STREAM = 0x5A3  # the sampler's keys: fold_in(fold_in(key, SAMPLING_STREAM), step)
PROBE_STREAM = 0x9BE


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
                               "weights": weights, "ids": ids, "finite": out["finite"]}

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
        size = chunk_length(n, chunk)
        padded = pad_rows(np.asarray(ids), -(-n // size) * size).astype(np.int32)
        parts = [chunk_outputs(state.params, state.batch_stats, images, labels,
                               padded[i:i + size]) for i in range(0, len(padded), size)]
        return {k: jnp.concatenate([p[k] for p in parts])[:n] for k in parts[0]}

    return outputs


def probe_ids(n, size, seed):
    rng = np.random.default_rng([seed, PROBE_STREAM])
    return np.sort(rng.choice(n, min(size, n), replace=False)).astype(np.int32)


class StreamTrainer:
    """The driver's trainer for streaming (see training/driver.py): its checkpoints carry the
    sampler's state beside the train state; train events carry train_time and the sampler's
    diagnostics on a fixed probe set."""
    logs_train_time = True

    def __init__(self, config, dataset, graphdef, tx, state, duration, mesh):
        t, c = config.train, config.sampling
        n = dataset.n_train
        self.c, self.n, self.state = c, n, state
        self.sampler = make_sampler(c, n, t.batch_size, dataset.num_classes, duration.total_steps)
        self.sstate = parallel.replicate(self.sampler.init(None), mesh)
        self.images = parallel.put_global(dataset.x_train, mesh)
        self.labels = parallel.put_global(dataset.y_train, mesh)
        self.outputs = make_outputs_fn(graphdef, dataset, t.eval_batch_size)
        self.stream_step = make_stream_step(graphdef, tx, dataset, self.sampler, config.seed, mesh)
        self.probe = probe_ids(n, c.probe_size, config.seed)
        sampler = self.sampler
        self.measure = jax.jit(lambda s, losses: diagnostics(*sampler.distribution(s),
                                                             self.probe, losses))
        self.mesh = mesh

    def items(self):
        return {"state": self.state, "sampler": self.sstate}

    def load(self, items):
        self.state, self.sstate = items["state"], items["sampler"]

    def fresh(self):
        if self.c.init == "forward":  # one eval-mode pass of the initial model; its time counts
            self.sstate = parallel.replicate(self.sampler.init(
                self.outputs(self.state, self.images, self.labels, np.arange(self.n))), self.mesh)

    def train_block(self, epoch, first_step, step, started, tick):
        state, sstate, outs, began = self.state, self.sstate, [], time.time()
        for s in range(first_step, step):
            # a Python flag: a SIGTERM stops the run between steps (or lets the block finish)
            preemption.check(s - first_step, step - first_step, began)
            state, sstate, out = self.stream_step(state, sstate, self.images, self.labels,
                                                  np.int32(s))
            outs.append(out)
            tick(1)
        check_block(jnp.stack([o["finite"] for o in outs]), first_step, epoch)
        self.state, self.sstate = state, sstate
        real = jnp.stack([o["weights"] for o in outs]) > 0  # padding does not count
        n_real = jnp.maximum(real.sum(), 1)
        return {"loss": float((jnp.stack([o["loss"] for o in outs]) * real).sum() / n_real),
                "accuracy": float((jnp.stack([o["correct"] for o in outs]) * real).sum()
                                  / n_real)}

    def block_diagnostics(self):
        probe_losses = self.outputs(self.state, self.images, self.labels, self.probe)["loss"]
        return {k: round(float(v), 6) for k, v in self.measure(self.sstate, probe_losses).items()}


def train_streaming(config, dataset, run, on_epoch=None):
    """Trains a fresh model with config.sampling's sampler, resuming from run's checkpoint."""
    t, c = config.train, config.sampling
    mesh = parallel.data_mesh()
    check_batch_split(t.batch_size, mesh)
    n = dataset.n_train
    duration = resolve_duration(t, n, n)  # an epoch = ceil(N / B) steps of drawn examples
    if c.log_every_steps > 0:  # the driver's "epochs" become blocks of log_every_steps steps
        total = duration.total_steps
        duration = dataclasses.replace(duration, epoch_starts=tuple(
            range(0, total, c.log_every_steps)) + (total,))
    tx = optim.make_optimizer(config.optim, duration.schedule_steps_per_epoch, duration.total_steps)
    lr_at = optim.make_schedule(config.optim, duration.schedule_steps_per_epoch,
                                duration.total_steps)
    graphdef, state = create_state(build_model(config, dataset), tx)
    state = parallel.replicate(state, mesh)
    trainer = StreamTrainer(config, dataset, graphdef, tx, state, duration, mesh)
    evaluate = make_evaluator(graphdef, dataset, t.eval_batch_size, mesh)
    return drive(config, run, trainer, duration, lr_at, evaluate, on_epoch)
