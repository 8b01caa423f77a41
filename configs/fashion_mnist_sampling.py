"""Streaming sampling on Fashion-MNIST (small CNN): batches drawn by difficulty instead of epochs.

  python train.py --config=configs/fashion_mnist_sampling.py --workdir=runs/fm_plb \
      [--config.sampling.method=plb|peb|owc|lb|nlb|uniform|selective_backprop|infobatch] \
      [--config.sampling.init=forward --config.sampling.importance_weights=True]

Base: configs/fashion_mnist_cnn.py (data at ../shared/data/fashion_mnist.npz). Every method
trains the same number of steps (train.epochs x ceil(60,000 / 128)): equal compute, as the
uniform sampler; each "epoch" logs train metrics and the sampler diagnostics (sample_entropy,
hardest_decile_share, order_agreement) and evaluates the test set.
Runtime: like the base config (~8.5 min on 2 CPU cores for 15 epoch equivalents), plus about
1.7x per step for Selective-Backprop (it forwards 2B candidates per step with sb_beta = 1).
Expected result: not measured yet (only smoke-run for a few steps); the uniform sampler should
land near the base config's ~0.92.
"""
from configs import fashion_mnist_cnn


def get_config():
    c = fashion_mnist_cnn.get_config()
    c.sampling.method = "plb"
    c.sampling.init = "forward"
    c.sampling.probe_size = 1000
    return c
