"""The `config.hpo` section (AUTOMATA tuning) and its up-front validation.

Every field is checked before any data is loaded or anything compiled; a bad value raises a
ValueError naming the field and the accepted values.
"""
import numbers

import ml_collections

from datadiet.coresets.config import validate_subset_fields
from datadiet.hpo.space import validate_space
from datadiet.renamed import add_placeholders, check_placeholders

SEARCHES = ("random", "tpe")
SCHEDULERS = ("none", "asha", "hyperband")
EVALUATIONS = ("subset", "full", "random")
SUBSET_MODES = ("per_batch", "per_class", "whole")
RENAMED = {"min_resource": ("min_epochs", int), "max_resource": ("max_epochs", int),
           "every": ("every_epochs", int)}


def default_hpo_config():
    c = ml_collections.ConfigDict()
    c.search = "tpe"  # random | tpe (Optuna's samplers)
    c.n_startup_trials = 5  # tpe: trials sampled at random before TPE takes over
    c.scheduler = "asha"  # none | asha | hyperband (Optuna's pruners)
    c.reduction_factor = 2  # eta: about 1/eta of the trials at a rung go on to the next
    c.min_epochs = 1  # ASHA's min resource: epochs before the first promotion decision
    c.max_epochs = 4  # ASHA's max resource: epochs a trial trains for unless it is stopped
    c.eval_every_epochs = 1  # a trial's validation every this many epochs (it must divide
    # min_epochs and max_epochs: every rung min_epochs x eta^k is then an evaluated epoch)
    c.n_trials = 12  # trials that finish (complete or pruned); failed ones do not count
    c.evaluation = "subset"  # subset (GRAD-MATCH) | random (random subset) | full (baseline)
    c.fraction = 0.1  # subset / random: share of the trial's training examples
    c.mode = "per_batch"  # subset: GRAD-MATCH mode (AUTOMATA: per_batch)
    c.warm_start = 0.0  # subset / random: share of the epochs trained on all data first
    c.warm_start_kappa = 0.0  # subset / random: AUTOMATA's kappa x epochs x fraction instead
    c.candidate_fraction = 1.0  # subset: share of candidates each selection looks at
    c.every_epochs = 2  # subset / random: R, reselect every R epochs
    c.val_fraction = 0.1  # share of the training set held out to score trials
    c.storage = ""  # "" = sqlite:///WORKDIR/study.db; else any Optuna RDB URL (postgresql://...)
    c.study_name = "datadiet"
    c.seed = 0  # sampler seed (per trial: seed and trial number) and the validation split
    c.heartbeat_seconds = 10  # a running trial's liveness beat in the storage
    c.grace_seconds = 60  # a trial silent this long belongs to a dead worker: marked FAIL
    c.retrain = True  # after the search: retrain the best configuration on the full data
    c.retrain_epochs = 0.0  # 0: max_epochs
    c.power_watts = 30.0  # energy estimate = tuning wall time x this power
    c.space = ml_collections.ConfigDict()  # name -> {type, low, high, choices, path}
    add_placeholders(c, RENAMED)
    return c


def validate_hpo_config(hpo, config=None, validate=None):
    """Checks `hpo` (and, given the whole run config, that every search-space path exists there
    and, given `validate` (the run-config validator), that the space's corner values give valid
    configs)."""
    check_placeholders("hpo", hpo, RENAMED)
    for field, accepted in (("search", SEARCHES), ("scheduler", SCHEDULERS),
                            ("evaluation", EVALUATIONS), ("mode", SUBSET_MODES)):
        if hpo[field] not in accepted:
            raise ValueError(f"hpo.{field}={hpo[field]!r} is not one of {list(accepted)}")
    _positive_int("hpo.reduction_factor", hpo.reduction_factor, 2)
    _positive_int("hpo.min_epochs", hpo.min_epochs, 1)
    _positive_int("hpo.max_epochs", hpo.max_epochs, hpo.min_epochs,
                  f"hpo.min_epochs={hpo.min_epochs}")
    _positive_int("hpo.eval_every_epochs", hpo.eval_every_epochs, 1)
    if hpo.min_epochs % hpo.eval_every_epochs or hpo.max_epochs % hpo.eval_every_epochs:
        raise ValueError(f"hpo.eval_every_epochs={hpo.eval_every_epochs} must divide "
                         f"hpo.min_epochs={hpo.min_epochs} and hpo.max_epochs="
                         f"{hpo.max_epochs}: the scheduler decides at those epochs")
    _positive_int("hpo.n_trials", hpo.n_trials, 1)
    _positive_int("hpo.n_startup_trials", hpo.n_startup_trials, 0)
    _positive_int("hpo.every_epochs", hpo.every_epochs, 1)
    _positive_int("hpo.heartbeat_seconds", hpo.heartbeat_seconds, 1)
    if hpo.grace_seconds <= hpo.heartbeat_seconds:
        raise ValueError(f"hpo.grace_seconds={hpo.grace_seconds} must exceed "
                         f"hpo.heartbeat_seconds={hpo.heartbeat_seconds}")
    validate_subset_fields("hpo", hpo, selects=hpo.evaluation == "subset")
    if not 0 < hpo.val_fraction < 1:
        raise ValueError(f"hpo.val_fraction={hpo.val_fraction} must be in (0, 1)")
    if hpo.retrain_epochs < 0 or hpo.power_watts < 0:
        raise ValueError(f"hpo.retrain_epochs={hpo.retrain_epochs} and "
                         f"hpo.power_watts={hpo.power_watts} must be >= 0")
    if not isinstance(hpo.storage, str) or not isinstance(hpo.study_name, str) \
            or not hpo.study_name:
        raise ValueError(f"hpo.storage={hpo.storage!r} must be a string (\"\" = SQLite file in "
                         f"the workdir) and hpo.study_name={hpo.study_name!r} a non-empty one")
    if hpo.storage and "://" not in hpo.storage:
        raise ValueError(f"hpo.storage={hpo.storage!r} must be an RDB URL such as "
                         "sqlite:///path/study.db or postgresql://user@host:port/db, or \"\"")
    validate_space(hpo.space, config, validate)


def _positive_int(name, value, low, low_name=None):
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool)) or value < low:
        raise ValueError(f"{name}={value!r} must be an integer >= {low_name or low}")
