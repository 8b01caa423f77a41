"""Issue 17 on Fashion-MNIST: final test accuracy vs fraction pruned for the Data-Diet selector
and the later ones (CCS, D2, Moderate-DS, prototypes; AUM and Dyn-Unc scores), each compared
with random pruning, over 3 retraining seeds; plus, at 10% label noise, the share of the
corrupted labels among the k lowest-AUM / highest-EL2N / highest-loss examples.

  python -m experiments.pruning --config=configs/fashion_mnist_selectors.py --workdir=runs/selectors

(one seed: add --config.experiment.seeds=0,). The selector syntax is in experiments/selectors.py.
Writes runs/selectors/results_selectors.json, selectors.png and prints the table.

Runtime (2 CPU cores): two scores jobs (clean and noisy labels; 3 scoring seeds of the 3-epoch run,
no GraNd: about 2-3 min each, cf. configs/fashion_mnist_scores.py), then 1 full run + 10 selectors
x 5 rates = 51 retraining runs per seed (configs/fashion_mnist_prune.py), measured at ~50 s each
on one core (d2 / prototypes included: their kNN graph / k-means runs in each of their runs):
~2 h on one core for 3 seeds; split by selector over two processes, one per core, ~65 min.
Expected (3 seeds, README): full 0.910; at 90% pruned random 0.867, ccs:el2n_epoch1 0.886,
high:el2n_epoch1 0.276.
"""
import ml_collections

from configs import fashion_mnist_prune


def get_config():
    c = fashion_mnist_prune.get_config()
    c.job = "scores"
    # the one scores job: every score the selectors and the noise part read, means over 3 seeds
    c.scores.names = ("el2n", "loss", "aum", "dyn_unc")
    c.scores.epochs = (1,)
    c.scores.num_seeds = 3
    c.scores.embeddings = 3  # the penultimate features of the trained model (end of training)
    c.prune.ccs_beta = 0.1
    c.prune.ccs_strata = 50
    c.experiment = ml_collections.ConfigDict()
    c.experiment.kind = "selectors"
    c.experiment.scores_root = ""  # "" = the workdir
    c.experiment.seeds = (0, 1, 2)
    c.experiment.fractions_pruned = (0.3, 0.5, 0.7, 0.8, 0.9)
    c.experiment.selectors = ("random", "high:el2n_epoch1", "ccs:el2n_epoch1", "ccs:aum",
                              "d2:el2n_epoch1", "moderate", "prototypes_hard", "prototypes_easy",
                              "high:dyn_unc", "high:aum")
    c.experiment.label_noise = 0.1  # 0: no noise-detection part (and no second scores job)
    c.experiment.noise_scores = ("aum", "el2n_epoch1", "loss_epoch1")
    return c
