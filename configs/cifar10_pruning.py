"""The Data Diet CIFAR-10 scores and pruning experiments at paper scale (ResNet-18, 200 epochs,
scores at epoch 20, 10 scoring seeds, 4 retraining seeds), for users' GPUs:

  python train.py --config=configs/cifar10_pruning.py:scores --workdir=runs/c10_prune
  python -m experiments.pruning --config=configs/cifar10_pruning.py:curve --workdir=runs/c10_prune
  python -m experiments.pruning --config=configs/cifar10_pruning.py:epochs --workdir=runs/c10_prune
  python -m experiments.pruning --config=configs/cifar10_pruning.py:window --workdir=runs/c10_prune

(The experiments run the scores job themselves, in WORKDIR/scores_noise<K>; running it first
with train.py as above needs `--workdir=runs/c10_prune/scores_noise0.0` to be reused.)
Runtime: a GPU job: the scores job is 10 full 200-epoch runs (forgetting events need the whole
run; drop "forgetting" from scores.names and each seed stops at epoch 20), each retraining run
one 200-epoch run (iteration-matched). Expected (paper, Figure 1): EL2N at epoch 20 prunes 50%
of CIFAR-10 without losing accuracy (~95%); random pruning loses ~1 point there.
"""
import ml_collections

from configs import cifar10_resnet18

SCORE_EPOCH = 20


def get_config(kind="scores"):
    c = cifar10_resnet18.get_config()
    c.job = "scores"
    c.log.progress = False
    c.train.max_checkpoints = 2
    c.scores.names = ("el2n", "grand", "loss", "entropy", "margin", "forgetting", "input_norm")
    c.scores.epochs = (0, 1, 5, 10, SCORE_EPOCH, 40)
    c.scores.num_seeds = 10
    c.scores.grand_chunk_size = 32
    if kind == "scores":
        return c
    e = c.experiment = ml_collections.ConfigDict()
    e.kind, e.scores_root, e.seeds = kind, "", (0, 1, 2, 3)
    if kind == "curve":
        e.fractions_pruned = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9)
        e.methods = ((f"EL2N (epoch {SCORE_EPOCH})", f"el2n_epoch{SCORE_EPOCH}"),
                     ("GraNd (init)", "grand_epoch0"),
                     (f"GraNd (epoch {SCORE_EPOCH})", f"grand_epoch{SCORE_EPOCH}"),
                     ("Forgetting", "forgetting"), ("Input norm", "input_norm"),
                     ("Random", "random"))
    elif kind == "epochs":
        e.fraction_pruned = 0.5
        e.methods = (("EL2N", "el2n"), ("GraNd", "grand"))
    elif kind == "window":
        e.score, e.keep = f"el2n_epoch{SCORE_EPOCH}", 0.4
        e.offsets = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
        e.label_noise = (0.0, 0.1)
    else:
        raise ValueError(f"config kind {kind!r} is not one of scores, curve, epochs, window")
    return c
