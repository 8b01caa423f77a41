"""The one weighted train step every selector feeds, and the evaluation step."""
import functools

import jax
import jax.numpy as jnp
import optax

from datadiet.data import augment
from datadiet.training.finite import finite_flags
from datadiet.training.state import apply_model


REDUCTIONS = ("weighted_mean", "mean")


def weighted_loss(losses, weights, reduction="weighted_mean"):
    """Zero-weight entries (padding, dropped examples) have no say under either reduction.

    weighted_mean: sum_i w_i l_i / sum_i w_i (subsets, coresets: the weights are relative).
    mean: sum_i w_i l_i / #{i: w_i > 0}, the mean of w_i l_i over the real entries: with
      importance weights w_i = 1/(N p_i) this is an unbiased estimate of the full-data loss
      (self-normalising by sum_i w_i would bias it), and InfoBatch's rescaled loss.
    """
    if reduction == "mean":
        return jnp.sum(weights * losses) / jnp.maximum(jnp.sum(weights > 0), 1)
    return jnp.sum(weights * losses) / jnp.maximum(jnp.sum(weights), 1e-12)


def make_train_step(graphdef, tx, reduction="weighted_mean"):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not one of {list(REDUCTIONS)}")

    def loss_fn(params, batch_stats, x, y, weights):
        logits, new_stats = apply_model(graphdef, params, batch_stats, x, True, mask=weights > 0)
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        return weighted_loss(losses, weights, reduction), (logits, losses, new_stats)

    @functools.partial(jax.jit, donate_argnums=0)
    def train_step(state, batch, weights):
        """batch: {"x": normalised images [B,...], "y": labels [B]}; weights: [B] >= 0."""
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (logits, losses, new_stats)), grads = grad_fn(
            state.params, state.batch_stats, batch["x"], batch["y"], weights)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                              batch_stats=new_stats, opt_state=opt_state)
        # Per-example outputs in train mode: forgetting events and samplers read these.
        out = {"loss": losses, "correct": jnp.argmax(logits, -1) == batch["y"],
               "entropy": prediction_entropy(logits), "batch_loss": loss,
               "logit_margin": logit_margin(logits, batch["y"]),
               "finite": finite_flags(loss, state.params)}
        return state, out

    return train_step


def logit_margin(logits, labels):
    """z_y - max_{c != y} z_c per example (AUM's margin, datadiet/scores/dynamics.py)."""
    z_y = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    others = jnp.where(jax.nn.one_hot(labels, logits.shape[-1], dtype=bool), -jnp.inf, logits)
    return z_y - others.max(-1)


def prediction_entropy(logits):
    """Entropy (nats) of softmax(logits) per example."""
    logp = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def make_batch_fn(dataset):
    """Jitted gather + normalise + per-example augmentation, all on device."""
    mean, std = jnp.asarray(dataset.mean), jnp.asarray(dataset.std)
    prepare = functools.partial(augment.prepare_batch, augment=dataset.augment,
                                crop_pad=dataset.crop_pad)

    @jax.jit
    def make_batch(images, labels, epoch_ids, epoch_weights, s, key, step):
        """Batch s of an epoch's [steps, B] ids/weights, indexed on device (no host round trip).

        Augmentation randomness depends on (seed key, global step) alone: resumable, reproducible.
        """
        idx, weights = epoch_ids[s], epoch_weights[s]
        rng = jax.random.fold_in(key, step)
        return {"x": prepare(images, mean, std, idx, rng), "y": labels[idx]}, weights

    return make_batch


def make_gathered_batch_fn(dataset):
    """make_batch_fn's twin for the host pipeline: the batch arrives gathered, [B, ...] raw
    inputs; normalisation and augmentation (the same keys) stay on device."""
    mean, std = jnp.asarray(dataset.mean), jnp.asarray(dataset.std)
    prepare = functools.partial(augment.prepare_gathered, augment=dataset.augment,
                                crop_pad=dataset.crop_pad)

    @jax.jit
    def make_batch(x, labels, weights, key, step):
        return {"x": prepare(x, mean, std, jax.random.fold_in(key, step)), "y": labels}, weights

    return make_batch


def make_eval_step(graphdef, dataset):
    mean, std = jnp.asarray(dataset.mean), jnp.asarray(dataset.std)

    @jax.jit
    def eval_step(params, batch_stats, images, labels, valid):
        x = augment.normalize(images, mean, std)
        logits, _ = apply_model(graphdef, params, batch_stats, x, False)
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        correct = jnp.argmax(logits, -1) == labels
        return jnp.sum(losses * valid), jnp.sum(correct * valid)

    return eval_step
