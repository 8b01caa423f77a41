"""The Data Diet CIFAR-10 setup: ResNet-18, SGD + Nesterov momentum, 200 epochs.

  pip install -e .[tfds]   # first download/build of the dataset needs TensorFlow
  python train.py --config=configs/cifar10_resnet18.py --workdir=runs/c10_r18

Runtime: a GPU job (~1.5-2 h on one modern GPU); far too slow for a CPU.
Expected result: test accuracy ~0.95 (the Data Diet paper's full-data baseline is 95.5%).
"""
from datadiet.config import default_config


def get_config():
    c = default_config()
    c.data.source = "tfds"
    c.data.name = "cifar10"
    c.data.augment = "crop_flip"
    c.model.name = "resnet18"
    c.optim.name = "momentum"
    c.optim.nesterov = True
    c.optim.lr = 0.1
    c.optim.momentum = 0.9
    c.optim.weight_decay = 5e-4
    c.optim.schedule.name = "steps"
    c.optim.schedule.boundaries_epochs = [60, 120, 160]
    c.optim.schedule.decay_factor = 0.2
    c.train.batch_size = 128
    c.train.epochs = 200.0
    c.train.eval_every_epochs = 5
    c.train.checkpoint_every_epochs = 5
    return c
