"""AUTOMATA hyper-parameter tuning: Optuna's Random/TPE search and ASHA/Hyperband pruners, with
trials trained on gradient-matched subsets (or a random subset, or the full data).

  config.py     the `hpo` config section and its validation
  space.py      the search space declared in the config; sampling and applying values
  search.py     samplers (reseeded per trial) and pruners
  holdout.py    the validation split trials are scored on
  objective.py  one trial: run config, training, per-epoch reports, pruning
  study.py      storage, create-or-resume, running to the budget, stale trials, summary
  tune.py       the tune job: search, then retrain the best on the full data
"""
from datadiet.hpo.config import default_hpo_config, validate_hpo_config

__all__ = ["default_hpo_config", "validate_hpo_config"]
