"""Streaming samplers against uniform sampling on Fashion-MNIST (small CNN at width 8): steps and
wall time to reach 90% test accuracy, and accuracy at a fixed budget of steps, over 3 seeds.

  python -m experiments.streaming --config=configs/fashion_mnist_streaming.py --workdir=runs/stream

Every method trains the same 1,876 steps of 128 (4 epoch equivalents) and evaluates the test set
every 94 steps (sampling.log_every_steps). The base-value methods start from one eval-mode
forward pass (its time counts); uniform, Selective-Backprop and InfoBatch need none.
Runtime and results: see the README's streaming section.
"""
import ml_collections

from configs import fashion_mnist_prune


def get_config():
    c = fashion_mnist_prune.get_config()  # width-8 small CNN, warmup 0.3 epochs, no progress bar
    c.train.epochs = 4.0
    c.train.eval_every_epochs = 1  # with log_every_steps: a test evaluation every block
    c.train.checkpoint_every_epochs = 5
    c.sampling.method = "uniform"  # each run sets its own
    c.sampling.log_every_steps = 94
    c.sampling.probe_size = 1000
    c.experiment = ml_collections.ConfigDict()
    c.experiment.seeds = (0, 1, 2)
    c.experiment.target_accuracy = 0.90
    # (label, sampling.method, sampling.init)
    c.experiment.methods = (
        ("Uniform", "uniform", "uniform"), ("OWC", "owc", "forward"), ("LB", "lb", "forward"),
        ("NLB", "nlb", "forward"), ("PLB", "plb", "forward"), ("PEB", "peb", "forward"),
        ("Selective-Backprop", "selective_backprop", "uniform"),
        ("InfoBatch", "infobatch", "uniform"))
    return c
