"""AUTOMATA tuning on Fashion-MNIST: TPE + ASHA, trials on 10% per-batch GRAD-MATCH subsets.
The base of experiments/tune.py (which runs it on the full data and on 10% / 30% subsets).

  python train.py --config=configs/fashion_mnist_tune.py --workdir=runs/fm_tune \
      [--config.hpo.evaluation=full] [--config.hpo.fraction=0.3] [--config.hpo.search=random]

Model: small CNN at width 8, hidden 64 (configs/fashion_mnist_prune.py). 12 trials, ASHA with
eta 2 deciding at epochs 2 and 4, at most 8 epochs a trial; trials are scored on 6,000 training
examples held out (hpo.val_fraction); the chosen configuration is retrained on all 60,000 for 8
epochs and tested on the test set. GRAD-MATCH reselects every R = 4 epochs (at epochs 0 and 4).
Warm start is off: AUTOMATA's warm start is whole full-data epochs here, and one costs as much
as a whole 10% trial.

Measured pieces (2 CPU cores shared with other jobs; a 1-trial, 2-epoch smoke run): a full-data
epoch of 54,000 examples ~19 s, a 10% epoch ~3 s, a 30% epoch ~6.5 s; one GRAD-MATCH selection
~7 s (last-layer gradients of all 54,000 candidates: a forward pass over them) plus ~5 s of
compilation the first time; ~4 s of compilation per trial in every arm.
Runtime (measured, each arm on one CPU core): full-data tuning 633 s, 10% subsets 223 s, 30%
subsets 316 s, plus a ~95 s retraining per arm.
Result (measured): speedups 2.83x (10%) and 2.01x (30%); retrained test accuracy 0.9188 (full),
0.9155 (10%), 0.9159 (30%). See the README's tuning section.
"""
from configs import fashion_mnist_prune


def get_config():
    c = fashion_mnist_prune.get_config()
    c.job = "tune"
    c.optim.schedule.name = "cosine"
    c.optim.schedule.warmup_epochs = 0.0
    c.train.epochs = 16.0  # (the trials' length is hpo.max_resource; this is the base run's)
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
                 min_resource=4, max_resource=16, n_trials=12, evaluation="subset", fraction=0.1,
                 mode="per_batch", warm_start=0.0, every=4, val_fraction=0.1, seed=0,
                 power_watts=30.0)
    return c
