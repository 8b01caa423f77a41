"""AUTOMATA tuning on Fashion-MNIST: TPE + ASHA, trials on 10% per-batch GRAD-MATCH subsets.
The base of experiments/tune.py (which runs it on the full data and on 10% / 30% subsets).

  python train.py --config=configs/fashion_mnist_tune.py --workdir=runs/fm_tune \
      [--config.hpo.evaluation=full] [--config.hpo.fraction=0.3] [--config.hpo.search=random]

Model: small CNN at width 8, hidden 64 (configs/fashion_mnist_prune.py: ~8 s per full-data
epoch on 2 quiet CPU cores). 12 trials, ASHA with eta 2 deciding at epochs 1 and 2, at most 4
epochs a trial; trials are scored on 6,000 training examples held out (hpo.val_fraction), the
chosen configuration is retrained on all 60,000 for 4 epochs and tested on the test set.
Warm start is off: with 4-epoch trials it would be one whole full-data epoch, as much as the
whole 10% trial (see the README's tuning section).
Runtime: not yet measured; estimated from the epoch time above, ~5-8 min for full-data tuning
and ~1-3 min for 10% subsets on 2 quiet CPU cores. Expected result: not yet measured.
"""
from configs import fashion_mnist_prune


def get_config():
    c = fashion_mnist_prune.get_config()
    c.job = "tune"
    c.optim.schedule.name = "cosine"
    c.optim.schedule.warmup_epochs = 0.0
    c.train.epochs = 4.0  # (the trials' length is hpo.max_resource; this is the base run's)
    c.train.eval_every_epochs = 1
    c.log.progress = False
    c.log.tensorboard = False
    s = c.hpo.space
    s.lr = {"type": "log_float", "low": 3e-3, "high": 0.3, "path": "optim.lr"}
    s.optimizer = {"type": "categorical", "choices": ("momentum", "adam"), "path": "optim.name"}
    s.batch_size = {"type": "categorical", "choices": (64, 128, 256), "path": "train.batch_size"}
    s.weight_decay = {"type": "log_float", "low": 1e-5, "high": 1e-3,
                      "path": "optim.weight_decay"}
    s.momentum = {"type": "float", "low": 0.8, "high": 0.95, "path": "optim.momentum"}
    c.hpo.update(search="tpe", n_startup_trials=5, scheduler="asha", reduction_factor=2,
                 min_resource=1, max_resource=4, n_trials=12, evaluation="subset", fraction=0.1,
                 mode="per_batch", warm_start=0.0, every=2, val_fraction=0.1, seed=0,
                 power_watts=30.0)
    return c
