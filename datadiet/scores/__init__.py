"""Data Diet scores: EL2N, GraNd, forgetting events, loss/entropy/margin, input norm.

  definitions.py  per-example scores from logits (pure jnp)
  compute.py      one model state's scores over the training set (eval mode, source order)
  forgetting.py   forgetting events tracked on device inside the training loop
  job.py          the scores job: S seeds, scores at chosen epochs, means written to WORKDIR/scores
"""
from datadiet.scores.definitions import (
                                 FORWARD_SCORES,
                                 el2n,
                                 entropy,
                                 input_norm,
                                 loss,
                                 margin,
)
from datadiet.scores.forgetting import ForgettingTracker, forgetting_scores
from datadiet.scores.job import (
                                 SCORES,
                                 compute_scores,
                                 default_scores_config,
                                 load_scores,
                                 score_file_names,
)

__all__ = ["FORWARD_SCORES", "SCORES", "ForgettingTracker", "compute_scores",
           "default_scores_config", "el2n", "entropy", "forgetting_scores", "input_norm",
           "load_scores", "loss", "margin", "score_file_names"]
