"""CIFAR-100 with ResNet-50, the Data Diet schedule (SGD + Nesterov, lr 0.1, x0.2 at 60/120/160).

  pip install -e .[tfds]
  python train.py --config=configs/cifar100_resnet50.py --workdir=runs/c100_r50

Runtime: a GPU job (~4-5 h on one modern GPU).
Expected result: test accuracy ~0.78-0.79.
"""
from configs import cifar10_resnet18


def get_config():
    c = cifar10_resnet18.get_config()
    c.data.name = "cifar100"
    c.model.name = "resnet50"
    return c
