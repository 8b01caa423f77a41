"""Pruning by score: keep high / low / a sliding window / random, optionally class-balanced;
noise-detection metrics.

  select.py  keep_ids: which examples a pruned run keeps
  config.py  the `prune` config section and its validation
  subset.py  the `prune` section -> the run's fixed Subset
  noise_detection.py  precision/recall of the corrupted labels among the highest scores
"""
from datadiet.prune.noise_detection import noise_detection
from datadiet.prune.select import METHODS, keep_ids
from datadiet.prune.config import default_prune_config, validate_prune_config
from datadiet.prune.subset import pruned_subset

__all__ = ["METHODS", "default_prune_config", "keep_ids", "noise_detection", "pruned_subset",
           "validate_prune_config"]
