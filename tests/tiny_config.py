"""The tests' tiny run (digits, width-8 CNN): a few seconds on a CPU. Also a config file:

  python train.py --config=tests/tiny_config.py --workdir=/tmp/tiny
"""
from datadiet.config import default_config


def tiny_config(**train):
    """Digits + small CNN for a few epochs: seconds on a CPU, with BatchNorm in the model."""
    c = default_config()
    c.model.kwargs = {"width": 8}
    c.optim.name = "momentum"
    c.optim.lr = 0.05
    c.train.batch_size = 64
    c.train.epochs = 3.0
    c.train.eval_batch_size = 200
    c.log.progress = False
    c.log.tensorboard = False
    c.train.update(train)
    return c


def get_config():
    return tiny_config(epochs=6.0)
