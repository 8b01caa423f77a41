"""Data Diet scores: EL2N, GraNd, forgetting events, loss/entropy/margin, input norm.

  config.py       the `scores` config section and the score files it asks for
  definitions.py  per-example scores from logits (pure jnp)
  compute.py      one model state's scores over the training set (eval mode, source order)
  forgetting.py   forgetting events tracked on device inside the training loop
  scoreset.py     load(path): a written score set with its per-seed values and provenance
  export.py       python -m datadiet.scores.export SCORES_DIR --out=FILE (.parquet or .csv)

The scores job itself (seeds, epochs, the means in WORKDIR/scores) is datadiet/jobs/scores.py.
"""
from datadiet.scores.config import SCORES, default_scores_config, score_file_names
from datadiet.scores.definitions import FORWARD_SCORES, el2n, entropy, input_norm, loss, margin
from datadiet.scores.forgetting import ForgettingTracker, forgetting_scores
from datadiet.scores.scoreset import ScoreSet, load

__all__ = ["FORWARD_SCORES", "SCORES", "ForgettingTracker", "ScoreSet", "default_scores_config",
           "el2n", "entropy", "forgetting_scores", "input_norm", "load", "loss", "margin",
           "score_file_names"]
