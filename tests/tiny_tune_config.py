"""The tests' tiny tuning study (digits, width-8 CNN, 3 trials of <= 2 epochs). Also a config
file for the workers of tests/hpo/test_hpo_workers.py:

  python train.py --config=tests/tiny_tune_config.py --workdir=/tmp/tiny_tune
"""
from tiny_config import tiny_config


def tiny_tune_config():
    c = tiny_config(epochs=2.0)
    c.job = "tune"
    c.hpo.space.lr = {"type": "log_float", "low": 1e-3, "high": 0.3, "path": "optim.lr"}
    c.hpo.space.optimizer = {"type": "categorical", "choices": ("momentum", "adam"),
                             "path": "optim.name"}
    c.hpo.update(search="random", scheduler="asha", n_trials=3, min_epochs=1, max_epochs=2,
                 reduction_factor=2, evaluation="subset", fraction=0.3, every_epochs=1)
    return c


def get_config():
    return tiny_tune_config()
