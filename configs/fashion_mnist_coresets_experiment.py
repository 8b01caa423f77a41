"""GRAD-MATCH against its baselines on Fashion-MNIST (see experiments/coresets.py).

  python -m experiments.coresets --config=configs/fashion_mnist_coresets_experiment.py \
      --workdir=runs/coresets [--config.experiment.seeds=0,1,2] [--config.experiment.fractions=0.1,0.3]

Runtime: ~1-2 min per 10% run, ~5 min per full run, on 2 CPU cores.
"""
import ml_collections

from configs import fashion_mnist_coresets


def get_config():
    c = fashion_mnist_coresets.get_config()
    c.log.progress = False
    c.experiment = ml_collections.ConfigDict()
    c.experiment.seeds = (0, 1, 2)
    c.experiment.fractions = (0.1, 0.3)
    c.experiment.full = True  # also train on all data once per seed (False: fractions only)
    # names of experiments.coresets.METHODS, run at every fraction (and "Full" once per seed)
    c.experiment.methods = ("GRAD-MATCH", "GRAD-MATCH-PB", "GRAD-MATCH-PB-Warm", "Random",
                            "RandomOnline")
    return c
