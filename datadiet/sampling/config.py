"""The `config.sampling` section: streaming samplers instead of epochs (see the README)."""
import math

import ml_collections

BASE_METHODS = ("uniform", "owc", "lb", "nlb", "plb", "peb")  # draw with p_i = b_i / sum_j b_j
METHODS = ("none",) + BASE_METHODS + ("selective_backprop", "infobatch")
INITS = ("uniform", "forward")


def default_sampling_config():
    c = ml_collections.ConfigDict()
    c.method = "none"  # none: the epoch loop (no sampler); see METHODS
    c.alpha = 1.0  # owc / lb / nlb: b_i = 1 + alpha * d_i (d = misclassified, loss, tanh(loss))
    c.init = "uniform"  # base values before training: uniform, or one eval-mode forward pass
    c.importance_weights = False  # base-value methods: weight example i by 1 / (N p_i)
    c.floor = 1e-3  # b_i = max(value, floor) > 0: every example stays drawable
    c.sb_beta = 1.0  # Selective-Backprop: P(backprop) = percentile(loss) ** sb_beta
    c.sb_history = 1024  # Selective-Backprop: recent losses the percentile is taken over
    c.infobatch_ratio = 0.5  # InfoBatch: fraction r of the below-mean examples pruned per pass
    c.infobatch_delta = 0.125  # InfoBatch: the last delta fraction of training uses all data
    c.probe_size = 1000  # fixed training examples on which the diagnostics are measured
    # Log (train metrics, diagnostics, test eval every train.eval_every_epochs blocks) and
    # checkpoint in blocks of this many steps; 0 = an "epoch" of ceil(N / B) steps. Finer blocks
    # measure steps-to-accuracy more finely (experiments/streaming.py).
    c.log_every_steps = 0
    return c


def sb_pool_size(batch_size, beta):
    """Selective-Backprop's candidates per step: with percentiles ~ U(0, 1), E[P] = 1/(1+beta),
    so (1+beta) B candidates yield B selected examples on average (Jiang et al. fill each batch)."""
    return math.ceil(batch_size * (1.0 + beta))


def validate_sampling_config(c, batch_size):
    for field, value, accepted in (("method", c.method, METHODS), ("init", c.init, INITS)):
        if value not in accepted:
            raise ValueError(f"sampling.{field}={value!r} is not one of {list(accepted)}")
    if c.method == "none":
        return
    checks = (("alpha", c.alpha >= 0, ">= 0"), ("floor", c.floor > 0, "> 0"),
              ("sb_beta", c.sb_beta >= 0, ">= 0"),
              ("infobatch_ratio", 0 <= c.infobatch_ratio < 1, "in [0, 1)"),
              ("infobatch_delta", 0 <= c.infobatch_delta <= 1, "in [0, 1]"),
              ("probe_size", c.probe_size >= 2, ">= 2"),
              ("log_every_steps", c.log_every_steps >= 0, ">= 0 (0 = every epoch)"))
    for field, ok, rule in checks:
        if not ok:
            raise ValueError(f"sampling.{field}={c[field]} must be {rule}")
    if c.importance_weights not in (True, False):
        raise ValueError(f"sampling.importance_weights={c.importance_weights!r} must be a bool")
    if c.importance_weights and c.method not in BASE_METHODS:
        raise ValueError(f"sampling.importance_weights=True applies to the methods "
                         f"{list(BASE_METHODS)} only, not sampling.method={c.method!r}")
    pool = sb_pool_size(batch_size, c.sb_beta)
    if c.method == "selective_backprop" and c.sb_history < pool:
        raise ValueError(f"sampling.sb_history={c.sb_history} must be >= the {pool} candidates "
                         f"a step forwards (train.batch_size * (1 + sampling.sb_beta))")
