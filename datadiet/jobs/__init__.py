"""The jobs: the only layer that composes the others. `train.py` runs
`JOBS[config.job](config, workdir)` after validating the config.

  train.py   one run: epochs over all data / a pruned subset / a coreset, or a streaming sampler
  scores.py  the scores job: seeds, scores at chosen epochs, their means
  tune.py    AUTOMATA tuning: the study, then the best configuration retrained
  lmc.py     linear-mode-connectivity children spawned from a parent run
"""
from datadiet.jobs.scores import scores_job
from datadiet.jobs.train import train_job
from datadiet.jobs.tune import tune_job

JOBS = {"train": train_job, "scores": scores_job, "tune": tune_job}

__all__ = ["JOBS"]
