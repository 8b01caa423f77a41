"""Optimisers and learning-rate schedules from the `config.optim` section.

Everything is built from optax; this module only converts the config (durations in epochs) into
optax objects (durations in steps), in one place.

Optimiser (`make_optimizer`), applied to the loss gradient `g` in this order:
  1. `grad_clip_norm > 0`: clip `g` to that global norm (optax.clip_by_global_norm) -- the raw loss
     gradient, as `torch.nn.utils.clip_grad_norm_` before `optimizer.step()`;
  2. `weight_decay > 0`: `g + weight_decay * param` for *all* parameters, BN scales and biases
     included (optax.add_decayed_weights; L2 as in PyTorch SGD/Adam `weight_decay` and Data Diet,
     not AdamW's decoupled decay);
  3. the optimiser, with the learning rate of the step:
     - sgd:      update = -lr g                                          (optax.sgd)
     - momentum: v = momentum v + g; update = -lr v, or with nesterov
                 update = -lr (g + momentum v)  (PyTorch's convention; optax.sgd)
     - rmsprop:  s = rmsprop_decay s + (1 - rmsprop_decay) g^2; update = -lr g / (sqrt(s) + eps)
                 (PyTorch's eps placement: optax.rmsprop(eps_in_sqrt=False)). `rmsprop_momentum > 0`
                 adds heavy-ball momentum on top; it is a field of its own so that the shared
                 `momentum` (0.9 by default) never silently turns it on. optax accumulates the
                 lr-scaled step (TF convention), which equals PyTorch's only while lr is constant.
     - adam:     bias-corrected Adam, update = -lr m_hat / (sqrt(v_hat) + eps)  (optax.adam)
  `momentum`/`nesterov` are used by `momentum` only; `b1`/`b2` by adam only; `rmsprop_*` by
  rmsprop only; `eps` by adam and rmsprop.

Learning rate: the optimiser is wrapped in `optax.inject_hyperparams`, so after each update
`last_lr(opt_state)` is the learning rate *used by that update* (the schedule at the count before
the update). `make_schedule` returns the same schedule for plotting it ahead.

Schedules (`schedule.name`; a0 = `lr`; E = steps_per_epoch, the schedule's epoch length
(`Duration.schedule_steps_per_epoch` for iteration-matched subsets); `round` is Python's; epoch =
s // E for the step count s after warm-up, so the epoch-based schedules are piecewise constant
within an epoch, like PyTorch's per-epoch schedulers):
  constant:      a0
  steps:         a0 * decay_factor ** #{b in boundaries_epochs : s >= round(b * E)}
  cosine:        a0 * (f + (1 - f) * (1 + cos(pi * min(s, T) / T)) / 2), f = final_lr_fraction,
                 T = total_steps - warm-up steps (per step, not per epoch)
  inverse_time:  a0 / (1 + decay * epoch)
  exponential:   a0 * gamma ** epoch
  inverse_sqrt:  a0 * k / sqrt(max(epoch, 1))   (epoch 0 uses the value of epoch 1)
Warm-up (`warmup_epochs > 0`): W = max(1, round(warmup_epochs * E)) steps of linear warm-up from 0
to a0 (step s < W gets a0 * s / W, so the very first update has lr 0), then the schedule above
evaluated at s - W: the schedule's clock starts when warm-up ends (optax.join_schedules, like
PyTorch's SequentialLR), so `boundaries_epochs` count epochs *after* warm-up.
`make_schedule` and `make_optimizer` call `validate_optim_config` first, so bad values fail before
any compute.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import ml_collections
import optax

OPTIMIZERS = ("adam", "momentum", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine", "exponential", "inverse_sqrt", "inverse_time", "steps")


def default_optim_config() -> ml_collections.ConfigDict:
    """All `config.optim` fields. Defaults: the Data Diet CIFAR-10 ResNet-18 setup (SGD with
    Nesterov momentum 0.9, lr 0.1, weight decay 5e-4, lr x0.2 at epochs 60/120/160 of 200)."""
    return ml_collections.ConfigDict({
        "name": "momentum",
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 5e-4,
        "rmsprop_decay": 0.9,
        "rmsprop_momentum": 0.0,
        "eps": 1e-8,
        "b1": 0.9,
        "b2": 0.999,
        "grad_clip_norm": 0.0,
        "schedule": {
            "name": "steps",
            "warmup_epochs": 0.0,
            "boundaries_epochs": (60, 120, 160),
            "decay_factor": 0.2,
            "decay": 0.1,
            "gamma": 0.95,
            "k": 1.0,
            "final_lr_fraction": 0.0,
        },
    })


def _check_number(name, value, lo, hi, lo_open=False, hi_open=True):
    """Raises unless `value` is a finite real number in the interval (lo or [lo, hi) or hi]."""
    interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (is_real and math.isfinite(value)
            and (value > lo if lo_open else value >= lo)
            and (value < hi if hi_open else value <= hi)):
        raise ValueError(f"{name}={value!r} must be a number in {interval}")


def _check_keys(prefix, cfg, expected):
    keys, want = set(cfg.keys()), set(expected.keys())
    if keys != want:
        raise ValueError(f"{prefix}: unknown fields {sorted(keys - want)}, missing fields "
                         f"{sorted(want - keys)}; the fields are {sorted(want)}")


def validate_optim_config(optim_cfg) -> None:
    """Raises ValueError naming the first bad field of `config.optim` and the accepted values."""
    defaults = default_optim_config()
    _check_keys("optim", optim_cfg, defaults)
    if not isinstance(optim_cfg.schedule, (ml_collections.ConfigDict, dict)):
        raise ValueError(f"optim.schedule={optim_cfg.schedule!r} must be a ConfigDict")
    _check_keys("optim.schedule", optim_cfg.schedule, defaults.schedule)
    c, s, inf = optim_cfg, optim_cfg.schedule, math.inf

    if c.name not in OPTIMIZERS:
        raise ValueError(f"optim.name={c.name!r} is not one of {sorted(OPTIMIZERS)}")
    _check_number("optim.lr", c.lr, 0, inf, lo_open=True)
    _check_number("optim.momentum", c.momentum, 0, 1)
    if not isinstance(c.nesterov, bool):
        raise ValueError(f"optim.nesterov={c.nesterov!r} must be True or False")
    _check_number("optim.weight_decay", c.weight_decay, 0, inf)
    _check_number("optim.rmsprop_decay", c.rmsprop_decay, 0, 1)
    _check_number("optim.rmsprop_momentum", c.rmsprop_momentum, 0, 1)
    _check_number("optim.eps", c.eps, 0, inf, lo_open=True)
    _check_number("optim.b1", c.b1, 0, 1)
    _check_number("optim.b2", c.b2, 0, 1)
    _check_number("optim.grad_clip_norm", c.grad_clip_norm, 0, inf)

    if s.name not in SCHEDULES:
        raise ValueError(f"optim.schedule.name={s.name!r} is not one of {sorted(SCHEDULES)}")
    _check_number("optim.schedule.warmup_epochs", s.warmup_epochs, 0, inf)
    b = s.boundaries_epochs
    if isinstance(b, str) or not isinstance(b, Sequence):
        raise ValueError(f"optim.schedule.boundaries_epochs={b!r} must be a list of epochs")
    for x in b:
        _check_number(f"optim.schedule.boundaries_epochs={tuple(b)!r}: entry", x, 0, inf,
                      lo_open=True)
    if any(x >= y for x, y in zip(b[:-1], b[1:])):
        raise ValueError(f"optim.schedule.boundaries_epochs={tuple(b)!r} must be strictly "
                         "increasing")
    _check_number("optim.schedule.decay_factor", s.decay_factor, 0, inf, lo_open=True)
    _check_number("optim.schedule.decay", s.decay, 0, inf)
    _check_number("optim.schedule.gamma", s.gamma, 0, inf, lo_open=True)
    _check_number("optim.schedule.k", s.k, 0, inf, lo_open=True)
    _check_number("optim.schedule.final_lr_fraction", s.final_lr_fraction, 0, 1, hi_open=False)


def warmup_steps(optim_cfg, steps_per_epoch: int) -> int:
    """Warm-up length in steps: 0 if off, else max(1, round(warmup_epochs * steps_per_epoch))."""
    w = optim_cfg.schedule.warmup_epochs
    return 0 if w == 0 else max(1, round(w * steps_per_epoch))


def _per_epoch(fn: Callable, steps_per_epoch: int) -> optax.Schedule:
    """A schedule of the integer epoch step // steps_per_epoch (exact integer arithmetic)."""
    return lambda step: fn(jnp.floor_divide(jnp.asarray(step), steps_per_epoch))


def make_schedule(optim_cfg: ml_collections.ConfigDict, steps_per_epoch: int,
                  total_steps: int) -> optax.Schedule:
    """The learning rate as a function of the update count (see the module docstring)."""
    validate_optim_config(optim_cfg)
    for name, v in (("steps_per_epoch", steps_per_epoch), ("total_steps", total_steps)):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name}={v!r} must be a positive integer")
    s, a0, spe = optim_cfg.schedule, float(optim_cfg.lr), int(steps_per_epoch)
    n_warm = warmup_steps(optim_cfg, spe)

    if s.name == "constant":
        main = optax.constant_schedule(a0)
    elif s.name == "steps":
        bounds = [round(b * spe) for b in s.boundaries_epochs]
        if len(set(bounds)) != len(bounds):
            raise ValueError(f"optim.schedule.boundaries_epochs={tuple(s.boundaries_epochs)!r} "
                             f"fall on the same step with steps_per_epoch={spe}")
        main = optax.piecewise_constant_schedule(a0, {b: float(s.decay_factor) for b in bounds})
    elif s.name == "cosine":
        if total_steps <= n_warm:
            raise ValueError(f"optim.schedule.warmup_epochs={s.warmup_epochs!r} ({n_warm} steps) "
                             f"leaves no steps for the cosine decay (total_steps={total_steps})")
        main = optax.cosine_decay_schedule(a0, int(total_steps) - n_warm,
                                           alpha=float(s.final_lr_fraction))
    elif s.name == "inverse_time":
        decay = float(s.decay)
        main = _per_epoch(lambda e: a0 / (1.0 + decay * e), spe)
    elif s.name == "exponential":
        gamma_pow = optax.exponential_decay(a0, transition_steps=1, decay_rate=float(s.gamma))
        main = _per_epoch(gamma_pow, spe)
    else:  # inverse_sqrt
        k = float(s.k)
        main = _per_epoch(lambda e: a0 * k / jnp.sqrt(jnp.maximum(e, 1).astype(jnp.float32)), spe)

    if n_warm == 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, a0, n_warm), main], [n_warm])


def _hyperparameters(c) -> dict:
    """The numeric hyper-parameters the optimiser `c.name` (and its clip/decay switches) uses."""
    hp = {"peak_lr": float(c.lr)}
    if c.grad_clip_norm > 0:
        hp["grad_clip_norm"] = float(c.grad_clip_norm)
    if c.weight_decay > 0:
        hp["weight_decay"] = float(c.weight_decay)
    if c.name == "momentum":
        hp["momentum"] = float(c.momentum)
    elif c.name == "rmsprop":
        hp.update(rmsprop_decay=float(c.rmsprop_decay), eps=float(c.eps))
        if c.rmsprop_momentum > 0:
            hp["rmsprop_momentum"] = float(c.rmsprop_momentum)
    elif c.name == "adam":
        hp.update(b1=float(c.b1), b2=float(c.b2), eps=float(c.eps))
    return hp


def _optimizer(name, nesterov, learning_rate, hp) -> optax.GradientTransformation:
    """clip -> weight decay -> optimiser; `hp` as from `_hyperparameters` (floats or traced;
    None for the unused ones)."""
    if name == "sgd":
        opt = optax.sgd(learning_rate)
    elif name == "momentum":
        opt = optax.sgd(learning_rate, momentum=hp["momentum"], nesterov=nesterov)
    elif name == "rmsprop":
        opt = optax.rmsprop(learning_rate, decay=hp["rmsprop_decay"], eps=hp["eps"],
                            eps_in_sqrt=False, momentum=hp["rmsprop_momentum"])
    else:  # adam
        opt = optax.adam(learning_rate, b1=hp["b1"], b2=hp["b2"], eps=hp["eps"])
    parts = []
    if hp["grad_clip_norm"] is not None:
        parts.append(optax.clip_by_global_norm(hp["grad_clip_norm"]))
    if hp["weight_decay"] is not None:
        parts.append(optax.add_decayed_weights(hp["weight_decay"]))
    return optax.chain(*parts, opt)


def make_optimizer(optim_cfg: ml_collections.ConfigDict, steps_per_epoch: int,
                   total_steps: int) -> optax.GradientTransformation:
    """clip -> weight decay -> optimiser with the schedule, wrapped in `optax.inject_hyperparams`.

    The numeric hyper-parameters (peak lr, momentum, weight decay, betas, ...) are arrays in
    `opt_state.hyperparams`, not constants of the compiled step: runs that differ only in their
    values (tuning trials) compile the same program, which the persistent compilation cache
    then shares. The schedule's shape is `lr_factor` (the schedule at peak lr 1); the learning
    rate of the last update is `last_lr(opt_state)` = peak_lr * lr_factor.
    """
    validate_optim_config(optim_cfg)
    unit = ml_collections.ConfigDict(optim_cfg.to_dict())
    unit.lr = 1.0
    factor = make_schedule(unit, steps_per_epoch, total_steps)
    name, nesterov = optim_cfg.name, bool(optim_cfg.nesterov)

    # Named arguments: inject_hyperparams reads the hyper-parameters from the signature.
    def factory(lr_factor, peak_lr, grad_clip_norm=None, weight_decay=None, momentum=None,
                rmsprop_decay=None, rmsprop_momentum=None, eps=None, b1=None, b2=None):
        hp = dict(grad_clip_norm=grad_clip_norm, weight_decay=weight_decay, momentum=momentum,
                  rmsprop_decay=rmsprop_decay, rmsprop_momentum=rmsprop_momentum, eps=eps,
                  b1=b1, b2=b2)
        return _optimizer(name, nesterov, peak_lr * lr_factor, hp)

    return optax.inject_hyperparams(factory)(lr_factor=factor, **_hyperparameters(optim_cfg))


def last_lr(opt_state):
    """The learning rate of the last update (of the first one before any)."""
    hp = opt_state.hyperparams
    return hp["peak_lr"] * hp["lr_factor"]
