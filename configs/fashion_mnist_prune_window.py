"""Data Diet Figure 2 on Fashion-MNIST: keep a sliding window of 40% of the examples over the
EL2N (epoch 1) ranking, offset 0 = the highest scores, with 0% and 10% label noise; 3 retraining
seeds. Also reports how well each score finds the corrupted labels (precision/recall among the
highest 10%).

  python -m experiments.pruning --config=configs/fashion_mnist_prune_window.py --workdir=runs/fig2

Runtime: see the README's pruning section (2 scores jobs and 42 runs of ~20 s on 2 CPU cores).
"""
import ml_collections

from configs import fashion_mnist_scores


def get_config():
    c = fashion_mnist_scores.get_config()
    c.experiment = ml_collections.ConfigDict()
    c.experiment.kind = "window"
    c.experiment.scores_root = ""
    c.experiment.seeds = (0, 1, 2)
    c.experiment.score = "el2n_epoch1"
    c.experiment.keep = 0.4
    c.experiment.offsets = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    c.experiment.label_noise = (0.0, 0.1)
    return c
