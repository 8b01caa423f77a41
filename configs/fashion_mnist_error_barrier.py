"""Data Diet Figure 4 on Fashion-MNIST: error barrier between two children spawned from the
parent (the 3-epoch schedule of configs/fashion_mnist_prune.py) at epoch t*, each trained to the
end with its own data order; on the 6,000 lowest-EL2N, the 6,000 highest-EL2N and 6,000 random
training examples; 11 points of a, BatchNorm statistics recomputed on the subset at each; two
child pairs per t*.

  python -m experiments.training_dynamics --config=configs/fashion_mnist_error_barrier.py --workdir=runs/dyn

Runtime: see the README's training-dynamics section.
"""
import ml_collections

from configs import fashion_mnist_scores


def get_config():
    c = fashion_mnist_scores.get_config()
    c.experiment = ml_collections.ConfigDict()
    c.experiment.kind = "barrier"
    c.experiment.scores_root = ""
    c.experiment.score = "el2n_epoch1"
    c.experiment.spawn_epochs = (0, 1, 2)
    c.experiment.child_seeds = ((100, 101), (102, 103))
    c.experiment.subset_size = 6000
    c.experiment.alphas = 11
    c.experiment.recompute_bn = True
    return c
