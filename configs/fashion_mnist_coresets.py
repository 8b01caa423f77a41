"""GRAD-MATCH coresets on Fashion-MNIST (small CNN); the base of experiments/coresets.py.

  python train.py --config=configs/fashion_mnist_coresets.py --workdir=runs/fm_gm \
      [--config.coreset.method=gradmatch --config.coreset.mode=per_batch --config.coreset.fraction=0.1]

Every method trains `train.epochs` passes over its (current) subset; a 10% subset costs about a
tenth of the full run, plus its selections. Reselection every `coreset.every_epochs` epochs.
Runtime: ~1-2 min for a 10% run, ~5 min for the full data, on 2 CPU cores.
Expected result: full data ~0.91; 10% GRAD-MATCH / random subsets ~0.84-0.87 (see the README).
"""
from configs import fashion_mnist_cnn


def get_config():
    c = fashion_mnist_cnn.get_config()
    c.train.epochs = 20.0
    c.train.eval_every_epochs = 20
    c.train.checkpoint_every_epochs = 5
    c.optim.schedule.warmup_epochs = 0.0
    c.coreset.method = "gradmatch"
    c.coreset.mode = "per_class"
    c.coreset.fraction = 0.1
    c.coreset.every_epochs = 10
    c.coreset.lam = 0.5
    return c
