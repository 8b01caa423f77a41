"""Data Diet Figure 1 (bottom) on Fashion-MNIST: final test accuracy vs fraction pruned, keeping
the highest scores, for EL2N and GraNd at epoch 1, GraNd at init, forgetting events, input norm
and random pruning; mean and 16-84 percentile band over 3 retraining seeds (scores: mean over 3
scoring seeds).

  python -m experiments.pruning --config=configs/fashion_mnist_prune_curve.py --workdir=runs/fig1b

Runtime: see the README's pruning section (31 runs per seed of ~20 s each on 2 CPU cores).
"""
import ml_collections

from configs import fashion_mnist_scores


def get_config():
    c = fashion_mnist_scores.get_config()
    c.experiment = ml_collections.ConfigDict()
    c.experiment.kind = "curve"
    c.experiment.scores_root = ""  # "" = the workdir; share one scores job between experiments
    c.experiment.seeds = (0, 1, 2)
    c.experiment.fractions_pruned = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9)
    c.experiment.methods = (("EL2N (epoch 1)", "el2n_epoch1"), ("GraNd (init)", "grand_epoch0"),
                            ("GraNd (epoch 1)", "grand_epoch1"), ("Forgetting", "forgetting"),
                            ("Input norm", "input_norm"), ("Random", "random"))
    return c
