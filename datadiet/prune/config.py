"""The `prune` config section and its validation."""
import os

import ml_collections

from datadiet.prune.select import METHODS


def default_prune_config():
    c = ml_collections.ConfigDict()
    c.method = "none"  # none (all data) or one of select.METHODS
    c.scores = ""  # a <name>.npy written by the scores job (not needed for random)
    c.keep = 1.0  # fraction of the training set kept
    c.offset = 0.0  # window: start of the kept ranks, as a fraction (0 = highest scores)
    c.class_balanced = False
    c.seed = -1  # random draws; -1: config.seed
    return c


def validate_prune_config(cfg):
    if cfg.method == "none":
        return
    if cfg.method not in METHODS:
        raise ValueError(f"prune.method={cfg.method!r} is not one of {['none', *METHODS]}")
    if not 0 < cfg.keep <= 1:
        raise ValueError(f"prune.keep={cfg.keep} must be a fraction in (0, 1]")
    if cfg.method == "window" and not 0 <= cfg.offset <= 1 - cfg.keep + 1e-9:
        raise ValueError(f"prune.offset={cfg.offset} must be in [0, 1 - prune.keep]")
    if cfg.method != "random" and not os.path.isfile(cfg.scores):
        raise ValueError(f"prune.scores={cfg.scores!r} is not a file; give a <name>.npy written "
                         "by the scores job")
