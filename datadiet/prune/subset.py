"""The fixed training subset of a pruned run (the `prune` config section)."""
import json
import os

import numpy as np

from datadiet.data import Subset
from datadiet.prune import geometric
from datadiet.prune.select import keep_ids
from datadiet.scores import scoreset


def pruned_subset(config, dataset):
    """The kept ids (source order) as a Subset; checks the scores belong to this training set."""
    cfg = config.prune
    seed = config.seed if cfg.seed < 0 else cfg.seed
    if cfg.method in ("random", "moderate", "prototypes"):
        scores = np.zeros(dataset.n_train, np.float32)
    else:
        scores = np.load(cfg.scores)
        _check_same_noise(cfg.scores, dataset)
        if os.path.exists(cfg.scores[:-len(".npy")] + ".json"):  # written by the scores job
            scoreset.check_matches(scoreset.load(cfg.scores), dataset,
                                   f"prune.scores={cfg.scores!r}")
        if scores.shape != (dataset.n_train,):
            raise ValueError(f"prune.scores={cfg.scores!r} has shape {scores.shape}; the "
                             f"training set has {dataset.n_train} examples")
    if cfg.method in geometric.METHODS:
        emb = np.load(cfg.embeddings)
        if emb.ndim != 2 or len(emb) != dataset.n_train:
            raise ValueError(f"prune.embeddings={cfg.embeddings!r} has shape {emb.shape}; need "
                             f"[{dataset.n_train}, F]")
        _check_same_noise(cfg.embeddings, dataset)
        ids = geometric.geometric_keep_ids(
            cfg.method, emb, np.asarray(dataset.y_train), cfg.keep, scores=scores,
            class_balanced=cfg.class_balanced, seed=seed, d2_neighbors=int(cfg.d2_neighbors),
            d2_gamma_f=cfg.d2_gamma_f, d2_gamma_r=cfg.d2_gamma_r,
            prototypes_keep=cfg.prototypes_keep, prototypes_clusters=int(cfg.prototypes_clusters))
        return Subset.of(ids, dataset.n_train)
    ids = keep_ids(scores, cfg.keep, cfg.method, offset=cfg.offset, labels=dataset.y_train,
                   class_balanced=cfg.class_balanced, seed=seed, ccs_beta=cfg.ccs_beta,
                   ccs_strata=int(cfg.ccs_strata))
    return Subset.of(ids, dataset.n_train)


def _check_same_noise(scores_path, dataset):
    """Scores taken on corrupted labels must prune a run with the very same corruption."""
    job_dir = os.path.dirname(os.path.dirname(os.path.abspath(scores_path)))
    record_path = os.path.join(job_dir, "label_noise.json")
    scored = None
    if os.path.exists(record_path):
        with open(record_path) as f:
            scored = json.load(f)
    elif not os.path.exists(os.path.join(job_dir, "config.json")):
        return  # scores from elsewhere: nothing to compare against
    if scored != dataset.label_noise:
        raise ValueError(f"prune.scores={scores_path!r} was computed with label noise "
                         f"{'on' if scored else 'off'} but this run has it "
                         f"{'on' if dataset.label_noise else 'off'} or with other ids; use the "
                         "same data.label_noise and data.label_noise_seed as the scores job")
