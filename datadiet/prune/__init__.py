"""Pruning by score: keep high / low / a sliding window / random, optionally class-balanced;
noise-detection metrics.

  select.py  keep_ids: which examples a pruned run keeps
  subset.py  the `prune` config section -> the run's fixed Subset
  noise.py   precision/recall of the corrupted labels among the highest scores
"""
from datadiet.prune.noise import noise_detection
from datadiet.prune.select import METHODS, keep_ids
from datadiet.prune.subset import (
           default_prune_config,
           pruned_subset,
           validate_prune_config,
)

__all__ = ["METHODS", "default_prune_config", "keep_ids", "noise_detection", "pruned_subset",
           "validate_prune_config"]
