"""Data Diet Figure 3 on Fashion-MNIST: NTK velocity (kernel distance between the empirical NTKs
of consecutive epochs) on 10 groups of 100 examples with adjacent EL2N (epoch 1) scores, evenly
spread over the ranking, for each epoch of the 3-epoch schedule of configs/fashion_mnist_prune.py,
with 0% and 10% label noise. Full n*C x n*C kernels.

  python -m experiments.training_dynamics --config=configs/fashion_mnist_ntk_velocity.py --workdir=runs/dyn

Runtime: see the README's training-dynamics section.
"""
import ml_collections

from configs import fashion_mnist_scores


def get_config():
    c = fashion_mnist_scores.get_config()
    c.experiment = ml_collections.ConfigDict()
    c.experiment.kind = "velocity"
    c.experiment.scores_root = ""
    c.experiment.score = "el2n_epoch1"
    c.experiment.group_size = 100
    c.experiment.n_groups = 10
    c.experiment.trace = False
    c.experiment.label_noise = (0.0, 0.1)
    return c
