"""The selector strings of the `selectors` pruning experiment (experiments/pruning.py), and how
each selector compares with random pruning.

A selector is one of
  random                  a uniform draw
  high:<score>            keep the hardest by <score>          low:<score>  the easiest
  ccs:<score>             coverage-centric (prune.ccs_beta, prune.ccs_strata)
  d2:<score>              D2-Pruning on the embeddings with <score> as the node values
  moderate                Moderate-DS on the embeddings
  prototypes_hard, prototypes_easy   Sorscher et al.'s prototypes, keeping the far / near ones
where <score> is a score file of the experiment's scores job (`el2n_epoch1`, `aum`, `dyn_unc`,
...: datadiet/scores/config.py score_file_names). The selectors read a score as a difficulty
(higher = harder); `aum` and `margin` grow with ease, so they are negated first: `high:aum` keeps
the lowest AUM and `ccs:aum` drops the lowest AUM first, as in the CCS paper.
"""
import json
import os
import shutil

import numpy as np

from datadiet import fileio
from datadiet.scores.config import score_file_names

SCORE_METHODS = ("high", "low", "ccs", "d2")  # <method>:<score>
PLAIN = ("random", "moderate", "prototypes_hard", "prototypes_easy")
GEOMETRIC = ("d2", "moderate", "prototypes_hard", "prototypes_easy")  # need scores.embeddings
NEGATED = ("aum", "margin")  # low = hard: negated into a difficulty


def accepted_forms(scores_cfg):
    return (f"{list(PLAIN)} or <method>:<score> with <method> in {list(SCORE_METHODS)} and "
            f"<score> in {score_file_names(scores_cfg)} (the scores job's files, from scores.names "
            "and scores.epochs)")


def parse(selector, scores_cfg):
    """{selector, method, score} of one selector string (score "" for those without one);
    ValueError naming experiment.selectors and the accepted forms for anything else."""
    method, sep, score = str(selector).partition(":")
    known = score_file_names(scores_cfg)
    ok = (not sep and method in PLAIN) or (sep and method in SCORE_METHODS and score in known)
    if not ok:
        raise ValueError(f"experiment.selectors: {selector!r} is not a selector; accepted: "
                         f"{accepted_forms(scores_cfg)}")
    if method in GEOMETRIC and scores_cfg.embeddings < 0:
        raise ValueError(f"experiment.selectors: {selector!r} needs the embeddings; set "
                         "scores.embeddings to the epoch they are taken at")
    return {"selector": str(selector), "method": method, "score": score}


def parse_all(selectors, scores_cfg):
    if not selectors or len(set(selectors)) != len(selectors):
        raise ValueError(f"experiment.selectors={tuple(selectors)} must be distinct selectors, "
                         f"at least one; accepted: {accepted_forms(scores_cfg)}")
    if "random" not in selectors:
        raise ValueError(f"experiment.selectors={tuple(selectors)} must include 'random': the "
                         "table compares every selector with it")
    return [parse(s, scores_cfg) for s in selectors]


def validate(e, scores_cfg):
    """The experiment section of the `selectors` kind, before any training."""
    parse_all(tuple(e.selectors), scores_cfg)
    if not e.fractions_pruned or any(not 0 < f < 1 for f in e.fractions_pruned):
        raise ValueError(f"experiment.fractions_pruned={tuple(e.fractions_pruned)} must be "
                         "fractions in (0, 1) (the full data is run anyway)")
    if not 0 <= e.label_noise < 1:
        raise ValueError(f"experiment.label_noise={e.label_noise} must be in [0, 1) (0: no "
                         "noise-detection part)")
    if e.label_noise > 0:
        known = score_file_names(scores_cfg)
        bad = [n for n in e.noise_scores if n not in known]
        if bad or not e.noise_scores:
            raise ValueError(f"experiment.noise_scores={tuple(e.noise_scores)} must be a "
                             f"non-empty selection of the scores job's files {known}")


def difficulty_path(scores_dir, score):
    """The file a selector reads for `score`: the scores job's own, or for a NEGATED score its
    negation in SCORES_DIR/difficulty/ (with the provenance and labels files beside it, so the
    run still checks they belong to its training set)."""
    src = os.path.join(scores_dir, "scores", score + ".npy")
    if score.split("_epoch")[0] not in NEGATED:
        return src
    out = os.path.join(scores_dir, "difficulty")
    path = os.path.join(out, score + ".npy")
    if not os.path.exists(path):
        os.makedirs(out, exist_ok=True)
        shutil.copyfile(os.path.join(scores_dir, "scores", "labels.npy"),
                        os.path.join(out, "labels.npy"))
        with open(src[:-len(".npy")] + ".json") as f:
            info = json.load(f)
        fileio.write_json(path[:-len(".npy")] + ".json", {**info, "negated": True})
        fileio.write_npy(path, -np.load(src))
    return path


def prune_fields(parsed, scores_path, embeddings_path):
    """The `prune` fields of one selector's runs (keep is added per rate)."""
    method = parsed["method"]
    if method.startswith("prototypes_"):
        return {"method": "prototypes", "prototypes_keep": method.split("_")[1],
                "embeddings": embeddings_path}
    fields = {"method": method}
    if parsed["score"]:
        fields["scores"] = scores_path
    if method in GEOMETRIC:
        fields["embeddings"] = embeddings_path
    return fields


def half_width(band):
    return (band["p84"] - band["p16"]) / 2


def compare_with_random(points):
    """Per fraction pruned: which selectors beat random and which fall below it. A selector is
    `above` when its mean minus random's is larger than the larger of the two 16-84 half-widths
    (over seeds), `below` when it is lower than minus that, `within` otherwise. With one seed
    both half-widths are 0, so any difference counts."""
    by_rate = {}
    for p in points:
        by_rate.setdefault(p["fraction_pruned"], {})[p["selector"]] = p
    out = []
    for rate in sorted(by_rate):
        rows, random = by_rate[rate], by_rate[rate]["random"]
        entry = {"fraction_pruned": rate, "random_mean": random["mean"], "above": [],
                 "below": [], "within": [], "differences": {}}
        for name, p in rows.items():
            if name == "random":
                continue
            diff = p["mean"] - random["mean"]
            margin = max(half_width(p), half_width(random))
            entry["differences"][name] = {"difference": diff, "margin": margin}
            entry["above" if diff > margin else "below" if diff < -margin else "within"].append(name)
        out.append(entry)
    return out

