"""Every Data Diet score for Fashion-MNIST (small CNN, width 8), mean over 3 seeds, into
WORKDIR/scores/ (see datadiet/jobs/scores.py for the file layout):

  python train.py --config=configs/fashion_mnist_scores.py --workdir=runs/fm_scores \
      [--config.data.label_noise=0.1]   # also writes WORKDIR/label_noise.json

Each seed trains the 3-epoch schedule of configs/fashion_mnist_prune.py (the pruning
experiments' full run) and is scored at init and after each epoch.
Runtime: ~3 min on 2 CPU cores (measured: see the README's pruning section).
"""
from configs import fashion_mnist_prune


def get_config():
    c = fashion_mnist_prune.get_config()
    c.job = "scores"
    c.scores.names = ("el2n", "grand", "loss", "entropy", "margin", "forgetting", "input_norm")
    c.scores.epochs = (0, 1, 2, 3)
    c.scores.num_seeds = 3
    return c
