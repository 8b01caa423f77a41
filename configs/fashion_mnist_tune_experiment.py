"""AUTOMATA's experiment on Fashion-MNIST: configs/fashion_mnist_tune.py's search on the full
data and on 10% / 30% GRAD-MATCH subsets (see experiments/tune.py).

  python -m experiments.tune --config=configs/fashion_mnist_tune_experiment.py --workdir=runs/tune \
      [--config.experiment.fractions=0.1,0.3] [--config.experiment.subset_evaluation=random]

Runtime: ~40 min per search seed on one CPU core, the full-data arm two thirds of it (the
README's tuning section has the measured arms).
"""
import ml_collections

from configs import fashion_mnist_tune


def get_config():
    c = fashion_mnist_tune.get_config()
    c.experiment = ml_collections.ConfigDict()
    c.experiment.fractions = (0.1, 0.3)  # one subset arm per fraction, then the full-data arm
    c.experiment.subset_evaluation = "subset"  # subset (GRAD-MATCH) | random
    # each subset arm's selections look at 2x its budget: candidate_fraction 0.2 at 10%, 0.6
    # at 30% (0: hpo.candidate_fraction for every arm)
    c.experiment.candidate_pool = 2.0
    return c
