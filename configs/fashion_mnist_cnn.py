"""Small CNN on Fashion-MNIST from ../shared/data/fashion_mnist.npz (or any npz path).

  python train.py --config=configs/fashion_mnist_cnn.py --workdir=runs/fmnist \
      [--config.data.path=/path/to/fashion_mnist.npz]

Runtime: ~8.5 minutes on 2 CPU cores (60,000 examples x 15 epochs; measured 8 min 21 s).
Expected result: test accuracy >= 0.91 (measured 0.9262, seed 0).
"""
from datadiet.config import default_config


def get_config():
    c = default_config()
    c.data.source = "npz"
    c.data.name = "fashion_mnist"
    c.data.path = "../shared/data/fashion_mnist.npz"
    c.model.name = "small_cnn"
    c.optim.name = "momentum"
    c.optim.nesterov = True
    c.optim.lr = 0.05
    c.optim.momentum = 0.9
    c.optim.weight_decay = 5e-4
    c.optim.schedule.name = "cosine"
    c.optim.schedule.warmup_epochs = 1.0
    c.train.batch_size = 128
    c.train.epochs = 15.0
    return c
