"""The `prune` config section and its validation."""
import os

import ml_collections

from datadiet.prune.select import METHODS

# selectors on the scores job's penultimate embeddings (datadiet/prune/geometric.py)
GEOMETRIC_METHODS = ("d2", "moderate", "prototypes")
ALL_METHODS = METHODS + GEOMETRIC_METHODS


def default_prune_config():
    c = ml_collections.ConfigDict()
    c.method = "none"  # none (all data) or one of select.METHODS
    c.scores = ""  # a <name>.npy written by the scores job (not needed for random)
    c.keep = 1.0  # fraction of the training set kept
    c.offset = 0.0  # window: start of the kept ranks, as a fraction (0 = highest scores)
    c.class_balanced = False
    c.seed = -1  # random draws; -1: config.seed
    c.ccs_beta = 0.1  # ccs: fraction of the hardest (highest) scores dropped first
    c.ccs_strata = 50  # ccs: equal-width score strata
    c.embeddings = ""  # d2 / moderate / prototypes: an embeddings_epoch<t>.npy of the scores job
    c.d2_neighbors = 10  # d2: k of the kNN graph
    c.d2_gamma_f = 1.0  # d2: forward messages exp(-gamma_f d) (the authors' code: 1)
    c.d2_gamma_r = -1.0  # d2: reverse messages exp(-gamma_r d); < 0: 1 / embedding dim
    c.prototypes_keep = "hard"  # prototypes: hard (far from the centroids) or easy (near)
    c.prototypes_clusters = 10  # prototypes: k-means clusters per class
    return c


def validate_prune_config(cfg):
    if cfg.method == "none":
        return
    if cfg.method not in ALL_METHODS:
        raise ValueError(f"prune.method={cfg.method!r} is not one of {['none', *ALL_METHODS]}")
    if not 0 < cfg.keep <= 1:
        raise ValueError(f"prune.keep={cfg.keep} must be a fraction in (0, 1]")
    if cfg.method == "window" and not 0 <= cfg.offset <= 1 - cfg.keep + 1e-9:
        raise ValueError(f"prune.offset={cfg.offset} must be in [0, 1 - prune.keep]")
    if cfg.method == "ccs" and not 0 <= cfg.ccs_beta < 1:
        raise ValueError(f"prune.ccs_beta={cfg.ccs_beta} must be in [0, 1)")
    if cfg.method == "ccs" and (int(cfg.ccs_strata) != cfg.ccs_strata or cfg.ccs_strata < 1):
        raise ValueError(f"prune.ccs_strata={cfg.ccs_strata} must be a whole number >= 1")
    if cfg.method == "prototypes" and cfg.prototypes_keep not in ("hard", "easy"):
        raise ValueError(f"prune.prototypes_keep={cfg.prototypes_keep!r} is not one of "
                         "['hard', 'easy']")
    if cfg.method == "prototypes" and cfg.prototypes_clusters < 1:
        raise ValueError(f"prune.prototypes_clusters={cfg.prototypes_clusters} must be >= 1")
    if cfg.method == "d2" and cfg.d2_neighbors < 1:
        raise ValueError(f"prune.d2_neighbors={cfg.d2_neighbors} must be >= 1")
    if cfg.method == "d2" and cfg.d2_gamma_f < 0:
        raise ValueError(f"prune.d2_gamma_f={cfg.d2_gamma_f} must be >= 0")
    if cfg.method in GEOMETRIC_METHODS and not os.path.isfile(cfg.embeddings):
        raise ValueError(f"prune.embeddings={cfg.embeddings!r} is not a file; give an "
                         "embeddings_epoch<t>.npy written by the scores job (scores.embeddings)")
    if cfg.method in ("random", "moderate", "prototypes"):
        return
    if not os.path.isfile(cfg.scores):
        raise ValueError(f"prune.scores={cfg.scores!r} is not a file; give a <name>.npy written "
                         "by the scores job")
