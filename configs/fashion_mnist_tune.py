"""AUTOMATA tuning on Fashion-MNIST: TPE + ASHA, trials on 10% per-batch GRAD-MATCH subsets.
The base of experiments/tune.py (which runs it on the full data and on 10% / 30% subsets).

  python train.py --config=configs/fashion_mnist_tune.py --workdir=runs/fm_tune \
      [--config.hpo.evaluation=full] [--config.hpo.search=random] \
      [--config.hpo.fraction=0.3 --config.hpo.candidate_fraction=0.6]

Model: small CNN at width 8, hidden 64 (configs/fashion_mnist_prune.py). 12 trials, ASHA with
eta 2 deciding at epochs 4 and 8, at most 16 epochs a trial, validated every 4 epochs (ASHA
reads epochs 4 and 8); trials are scored on 6,000 training examples held out
(hpo.val_fraction); the chosen configuration is retrained on all 60,000 for 16 epochs and
tested on the test set.
GRAD-MATCH starts from a random subset and runs OMP every R = 4 epochs (at epochs 4, 8, 12),
each selection over a random 20% of the candidate batches (hpo.candidate_fraction: twice the
budget; it must exceed hpo.fraction, so --config.hpo.fraction=0.3 needs e.g. 0.6). Warm start
is off: AUTOMATA's warm start is whole full-data epochs here, and one costs more than a 10%
trial's first rung (4 epochs of 10%).

Runtime (measured, one CPU core, the other running a second tune job): 10% trials 177 s /
182 s (search seeds 0 / 1; full-data trials 1236 s / 1253 s, 6.99x / 6.88x), plus a ~220 s
retraining; retrained test accuracy 0.9188 / 0.9194 (full-data choice 0.9156 / 0.9163). A
selection over 20% of the candidates costs 1.2-1.6 s. See the README's tuning section.
"""
from configs import fashion_mnist_prune


def get_config():
    c = fashion_mnist_prune.get_config()
    c.job = "tune"
    c.optim.schedule.name = "cosine"
    c.optim.schedule.warmup_epochs = 0.0
    c.train.epochs = 16.0  # (the trials' length is hpo.max_epochs; this is the base run's)
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
                 min_epochs=4, max_epochs=16, n_trials=12, evaluation="subset", fraction=0.1,
                 mode="per_batch", warm_start=0.0, every_epochs=4, candidate_fraction=0.2,
                 eval_every_epochs=4,
                 val_fraction=0.1, seed=0,
                 power_watts=30.0)
    return c
