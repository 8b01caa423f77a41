"""The Data Diet CIFAR-100 scores and pruning experiments (ResNet-50, 200 epochs, scores at
epoch 20), for users' GPUs; the same commands as configs/cifar10_pruning.py:

  python -m experiments.pruning --config=configs/cifar100_pruning.py:curve --workdir=runs/c100_prune

Runtime: a GPU job (each run ~4-5 h on one modern GPU). Expected (paper, Figure 1): EL2N keeps
the full-data accuracy (~78%) up to ~20-30% pruned; at high pruning random wins.
"""
from configs import cifar10_pruning


def get_config(kind="scores"):
    c = cifar10_pruning.get_config(kind)
    c.data.name = "cifar100"
    c.model.name = "resnet50"
    c.scores.grand_chunk_size = 16
    return c
