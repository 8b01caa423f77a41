"""Data Diet Figure 1 (top) on Fashion-MNIST: prune a fixed 50% keeping the highest EL2N or
GraNd scores, the scores taken at init and after each of the 3 epochs; full-data and random
references; 3 retraining seeds.

  python -m experiments.pruning --config=configs/fashion_mnist_prune_epochs.py --workdir=runs/fig1a

Runtime: see the README's pruning section (~26 runs of ~20 s on 2 CPU cores).
"""
import ml_collections

from configs import fashion_mnist_scores


def get_config():
    c = fashion_mnist_scores.get_config()
    c.experiment = ml_collections.ConfigDict()
    c.experiment.kind = "epochs"
    c.experiment.scores_root = ""
    c.experiment.seeds = (0, 1, 2)
    c.experiment.fraction_pruned = 0.5
    c.experiment.methods = (("EL2N", "el2n"), ("GraNd", "grand"))
    return c
