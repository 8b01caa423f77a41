"""Schedules against their closed forms, optimisers against hand-written numpy update rules
(PyTorch's conventions), and config validation."""
import math
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from datadiet.training import optim


def make_cfg(**overrides):
    """The default config with overrides; 'schedule.x' keys go to the schedule section. Built
    from a plain dict, so it can hold values ConfigDict's type checks would refuse."""
    d = optim.default_optim_config().to_dict()
    for key, value in overrides.items():
        section, name = (d["schedule"], key[len("schedule."):]) if key.startswith(
            "schedule.") else (d, key)
        section[name] = value
    return ml_collections.ConfigDict(d)


# ------------------------------------------------------------------ schedules, in plain python
A0, SPE, TOTAL = 0.4, 7, 150


def closed_form(name, step, *, a0=A0, spe=SPE, total=TOTAL, warm=0, boundaries=(2, 5),
                factor=0.2, decay=0.5, gamma=0.9, k=2.0, final=0.1):
    if step < warm:
        return a0 * step / warm
    s = step - warm
    epoch = s // spe
    if name == "constant":
        return a0
    if name == "steps":
        return a0 * factor ** sum(s >= b * spe for b in boundaries)
    if name == "cosine":
        t, T = min(s, total - warm), total - warm
        return a0 * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t / T)))
    if name == "inverse_time":
        return a0 / (1 + decay * epoch)
    if name == "exponential":
        return gamma ** epoch * a0
    if name == "inverse_sqrt":
        return k / math.sqrt(max(epoch, 1)) * a0
    raise AssertionError(name)


def sched_cfg(name, warmup_epochs=0.0):
    return make_cfg(lr=A0, **{
        "schedule.name": name, "schedule.warmup_epochs": warmup_epochs,
        "schedule.boundaries_epochs": (2, 5), "schedule.decay_factor": 0.2,
        "schedule.decay": 0.5, "schedule.gamma": 0.9, "schedule.k": 2.0,
        "schedule.final_lr_fraction": 0.1})


@pytest.mark.parametrize("warmup_epochs, warm", [(0.0, 0), (1.5, 10), (0.01, 1)])
@pytest.mark.parametrize("name", sorted(optim.SCHEDULES))
def test_schedule_matches_closed_form(name, warmup_epochs, warm):
    # warm-up: round(1.5 * 7) = 10 steps; 0.01 epochs rounds to 0 steps but asks for a warm-up: 1.
    schedule = optim.make_schedule(sched_cfg(name, warmup_epochs), SPE, TOTAL)
    steps = np.arange(TOTAL + 5)
    expected = np.array([closed_form(name, int(t), warm=warm) for t in steps])
    # eager, one python int at a time, at the interesting steps (epoch and warm-up edges) ...
    for t in [0, 1, warm - 1, warm, warm + 1, warm + 6, warm + 7, warm + 13, warm + 14,
              warm + 34, warm + 35, TOTAL - 1, TOTAL, TOTAL + 3]:
        if t >= 0:
            np.testing.assert_allclose(float(schedule(t)), expected[t], rtol=1e-6, atol=1e-9)
    # ... and jitted over every step as int32 (the training loop's view)
    got = jax.jit(schedule)(jnp.asarray(steps, jnp.int32))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6, atol=1e-9)


def test_epoch_schedules_are_constant_within_an_epoch():
    for name in ["steps", "inverse_time", "exponential", "inverse_sqrt"]:
        lr = np.asarray(optim.make_schedule(sched_cfg(name), SPE, TOTAL)(jnp.arange(70)))
        per_epoch = lr.reshape(10, SPE)
        assert (per_epoch == per_epoch[:, :1]).all(), name


def test_data_diet_cifar_steps():
    # lr 0.1, x0.2 at epochs 60/120/160 (391 steps per epoch at batch 128)
    cfg = optim.default_optim_config()
    schedule = optim.make_schedule(cfg, 391, 200 * 391)
    for epoch, lr in [(0, 0.1), (59, 0.1), (60, 0.02), (119, 0.02), (120, 0.004), (160, 0.0008),
                      (199, 0.0008)]:
        for t in [epoch * 391, epoch * 391 + 390]:
            np.testing.assert_allclose(float(schedule(t)), lr, rtol=1e-6)


# ------------------------------------------------------------------ optimisers, in numpy
# loss(w) = 0.5 * sum(a * w**2) - sum(b * w): grad = a * w - b, in two leaves.
A = {"x": np.array([1.0, 3.0, 0.5]), "y": np.array([[2.0, -1.0]])}
B = {"x": np.array([0.3, -0.2, 1.0]), "y": np.array([[0.5, 0.1]])}
W0 = {"x": np.array([1.0, -2.0, 0.5]), "y": np.array([[0.7, 1.5]])}


def grad(w):
    return {k: A[k] * w[k] - B[k] for k in w}


def run_optax(cfg, n_steps, steps_per_epoch=1, total=100):
    tx = optim.make_optimizer(cfg, steps_per_epoch, total)
    params = {k: jnp.asarray(v, jnp.float32) for k, v in W0.items()}
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        g = {k: A[k] * params[k] - B[k] for k in params}
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    lrs = []
    for _ in range(n_steps):
        params, state = step(params, state)
        lrs.append(float(optim.last_lr(state)))
    return {k: np.asarray(v) for k, v in params.items()}, lrs


def run_numpy(rule, n_steps, lrs, wd=0.0, clip=0.0):
    """`rule(g, slots, lr, t) -> (update, slots)`; g gets clipping then weight decay first."""
    w = {k: v.copy() for k, v in W0.items()}
    slots = {k: {} for k in w}
    for t in range(1, n_steps + 1):
        g = grad(w)
        if clip > 0:
            norm = math.sqrt(sum(float((v ** 2).sum()) for v in g.values()))
            g = {k: v * min(1.0, clip / norm) for k, v in g.items()}
        for k in w:
            gk = g[k] + wd * w[k]
            update, slots[k] = rule(gk, slots[k], lrs[t - 1], t)
            w[k] = w[k] + update
    return w


def sgd_rule(g, s, lr, t):
    return -lr * g, s


def momentum_rule(mu, nesterov):
    def rule(g, s, lr, t):  # torch.optim.SGD (dampening 0)
        v = mu * s.get("v", 0.0) + g
        return -lr * (g + mu * v if nesterov else v), {"v": v}
    return rule


def rmsprop_rule(alpha, eps, mu=0.0):
    def rule(g, s, lr, t):  # torch.optim.RMSprop (not centered); lr constant here
        sq = alpha * s.get("sq", 0.0) + (1 - alpha) * g ** 2
        step = g / (np.sqrt(sq) + eps)
        buf = mu * s.get("buf", 0.0) + step
        return -lr * buf, {"sq": sq, "buf": buf}
    return rule


def adam_rule(b1, b2, eps):
    def rule(g, s, lr, t):  # torch.optim.Adam
        m = b1 * s.get("m", 0.0) + (1 - b1) * g
        v = b2 * s.get("v", 0.0) + (1 - b2) * g ** 2
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        return -lr * m_hat / (np.sqrt(v_hat) + eps), {"m": m, "v": v}
    return rule


CASES = {
    "sgd": (dict(name="sgd"), sgd_rule),
    "momentum": (dict(name="momentum", momentum=0.8, nesterov=False), momentum_rule(0.8, False)),
    "nesterov": (dict(name="momentum", momentum=0.8, nesterov=True), momentum_rule(0.8, True)),
    "rmsprop": (dict(name="rmsprop", rmsprop_decay=0.7, eps=1e-3), rmsprop_rule(0.7, 1e-3)),
    "rmsprop_momentum": (dict(name="rmsprop", rmsprop_decay=0.7, eps=1e-3, rmsprop_momentum=0.5),
                         rmsprop_rule(0.7, 1e-3, 0.5)),
    "adam": (dict(name="adam", b1=0.8, b2=0.9, eps=1e-3), adam_rule(0.8, 0.9, 1e-3)),
}


@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("case", sorted(CASES))
def test_update_rules(case, wd):
    overrides, rule = CASES[case]
    cfg = make_cfg(lr=0.05, weight_decay=wd, **{"schedule.name": "constant"}, **overrides)
    got, lrs = run_optax(cfg, 3)
    assert lrs == pytest.approx([0.05] * 3)
    want = run_numpy(rule, 3, [0.05] * 3, wd=wd)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=2e-5, atol=1e-6)


def test_momentum_with_schedule_and_clipping():
    # lr per step: 0.2 for the first 2 epochs of 1 step, then x0.5 (torch: v accumulates raw g).
    cfg = make_cfg(name="momentum", lr=0.2, momentum=0.9, nesterov=True, weight_decay=0.01,
                   grad_clip_norm=1.0, **{"schedule.name": "steps",
                                          "schedule.boundaries_epochs": (2, 3),
                                          "schedule.decay_factor": 0.5})
    got, lrs = run_optax(cfg, 4)
    assert lrs == pytest.approx([0.2, 0.2, 0.1, 0.05])  # the lr used by each update, logged
    want = run_numpy(momentum_rule(0.9, True), 4, [0.2, 0.2, 0.1, 0.05], wd=0.01, clip=1.0)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=2e-5, atol=1e-6)
    # clipping really happened: the initial gradient norm is above 1
    assert math.sqrt(sum(float((v ** 2).sum()) for v in grad(W0).values())) > 1.0


def test_logged_lr_follows_warmup():
    cfg = make_cfg(name="sgd", lr=0.3, **{"schedule.name": "constant",
                                          "schedule.warmup_epochs": 2.0})
    _, lrs = run_optax(cfg, 5, steps_per_epoch=2)
    assert lrs == pytest.approx([0.0, 0.075, 0.15, 0.225, 0.3])



def lowered_update(cfg):
    """The compiled program's text of one jitted update with optimiser `cfg`."""
    tx = optim.make_optimizer(cfg, 5, 100)
    params = {k: jnp.asarray(v, jnp.float32) for k, v in W0.items()}
    return jax.jit(tx.update).lower(params, tx.init(params), params).as_text()


@pytest.mark.parametrize("name", ["momentum", "adam", "rmsprop"])
def test_hyperparameter_values_are_data_not_constants(name):
    # Tuning trials that differ only in values must compile one program: the values may not
    # be baked into it. A structural change (weight decay switched off) does change it.
    base = dict(name=name, **{"schedule.name": "cosine"})
    a = lowered_update(make_cfg(lr=0.1, momentum=0.9, weight_decay=1e-4, b1=0.9, eps=1e-8,
                                rmsprop_decay=0.9, **base))
    b = lowered_update(make_cfg(lr=0.03, momentum=0.8, weight_decay=3e-3, b1=0.8, eps=1e-6,
                                rmsprop_decay=0.99, **base))
    assert a == b
    assert lowered_update(make_cfg(lr=0.1, weight_decay=0.0, **base)) != a

# ------------------------------------------------------------------ validation
BAD = [
    (dict(name="adamx"),
     "optim.name='adamx' is not one of ['adam', 'momentum', 'rmsprop', 'sgd']"),
    ({"schedule.name": "linear"},
     "optim.schedule.name='linear' is not one of ['constant', 'cosine', 'exponential', "
     "'inverse_sqrt', 'inverse_time', 'steps']"),
    (dict(lr=-0.1), "optim.lr=-0.1 must be a number in (0, inf)"),
    (dict(lr=0.0), "optim.lr=0.0 must be a number in (0, inf)"),
    (dict(lr=float("nan")), "optim.lr=nan must be a number in (0, inf)"),
    (dict(lr="0.1"), "optim.lr='0.1' must be a number in (0, inf)"),
    (dict(momentum=1.0), "optim.momentum=1.0 must be a number in [0, 1)"),
    (dict(nesterov="yes"), "optim.nesterov='yes' must be True or False"),
    (dict(weight_decay=-1e-4), "optim.weight_decay=-0.0001 must be a number in [0, inf)"),
    (dict(rmsprop_decay=1.5), "optim.rmsprop_decay=1.5 must be a number in [0, 1)"),
    (dict(rmsprop_momentum=-0.5), "optim.rmsprop_momentum=-0.5 must be a number in [0, 1)"),
    (dict(eps=0.0), "optim.eps=0.0 must be a number in (0, inf)"),
    (dict(b1=-0.1), "optim.b1=-0.1 must be a number in [0, 1)"),
    (dict(b2=1.0), "optim.b2=1.0 must be a number in [0, 1)"),
    (dict(grad_clip_norm=-1.0), "optim.grad_clip_norm=-1.0 must be a number in [0, inf)"),
    ({"schedule.warmup_epochs": -1.0},
     "optim.schedule.warmup_epochs=-1.0 must be a number in [0, inf)"),
    ({"schedule.boundaries_epochs": (120, 60, 160)},
     "optim.schedule.boundaries_epochs=(120, 60, 160) must be strictly increasing"),
    ({"schedule.boundaries_epochs": (60, 60)},
     "optim.schedule.boundaries_epochs=(60, 60) must be strictly increasing"),
    ({"schedule.boundaries_epochs": (0, 60)},
     "optim.schedule.boundaries_epochs=(0, 60): entry=0 must be a number in (0, inf)"),
    ({"schedule.boundaries_epochs": "60,120"},
     "optim.schedule.boundaries_epochs='60,120' must be a list of epochs"),
    ({"schedule.decay_factor": 0.0}, "optim.schedule.decay_factor=0.0 must be a number in (0, inf)"),
    ({"schedule.decay": -0.1}, "optim.schedule.decay=-0.1 must be a number in [0, inf)"),
    ({"schedule.gamma": 0.0}, "optim.schedule.gamma=0.0 must be a number in (0, inf)"),
    ({"schedule.k": -1.0}, "optim.schedule.k=-1.0 must be a number in (0, inf)"),
    ({"schedule.final_lr_fraction": 1.5},
     "optim.schedule.final_lr_fraction=1.5 must be a number in [0, 1]"),
    (dict(momentun=0.9), "optim: unknown fields ['momentun'], missing fields []"),
    ({"schedule.warmup": 5}, "optim.schedule: unknown fields ['warmup'], missing fields []"),
]


@pytest.mark.parametrize("overrides, message", BAD, ids=[m.split("=")[0] for _, m in BAD])
def test_bad_fields_raise_naming_the_field(overrides, message):
    cfg = make_cfg(**overrides)
    with pytest.raises(ValueError, match=re.escape(message)):
        optim.validate_optim_config(cfg)
    with pytest.raises(ValueError, match=re.escape(message)):  # before building anything
        optim.make_optimizer(cfg, 10, 100)


def test_missing_field():
    d = optim.default_optim_config().to_dict()
    del d["b2"]
    with pytest.raises(ValueError, match=re.escape("missing fields ['b2']")):
        optim.validate_optim_config(ml_collections.ConfigDict(d))


def test_bad_durations():
    cfg = make_cfg(**{"schedule.name": "cosine", "schedule.warmup_epochs": 10.0})
    with pytest.raises(ValueError, match="optim.schedule.warmup_epochs=10.0 .100 steps. leaves"):
        optim.make_schedule(cfg, 10, 100)
    with pytest.raises(ValueError, match="steps_per_epoch=0 must be a positive integer"):
        optim.make_schedule(optim.default_optim_config(), 0, 100)
    with pytest.raises(ValueError, match="total_steps=0 must be a positive integer"):
        optim.make_schedule(optim.default_optim_config(), 10, 0)
    cfg = make_cfg(**{"schedule.boundaries_epochs": (0.1, 0.2)})
    with pytest.raises(ValueError, match=r"boundaries_epochs=\(0.1, 0.2\) fall on the same step"):
        optim.make_schedule(cfg, 1, 100)


def test_default_config_is_valid_and_overridable():
    cfg = optim.default_optim_config()
    optim.validate_optim_config(cfg)
    cfg.schedule.boundaries_epochs = (30, 60)
    cfg.lr = 1  # an int where a float is expected is fine
    optim.validate_optim_config(cfg)
    assert float(optim.make_schedule(cfg, 2, 200)(60)) == pytest.approx(0.2)
    frozen = ml_collections.FrozenConfigDict(cfg)  # the loop may hold a frozen config
    assert float(optim.make_schedule(frozen, 2, 200)(60)) == pytest.approx(0.2)
    optim.make_optimizer(frozen, 2, 200)
