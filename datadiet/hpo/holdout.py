"""The validation split trials are scored on: held out of the training set, never the test set
(the test set only scores the retrained best configuration)."""
import dataclasses

import numpy as np


def holdout_split(dataset, val_fraction, seed):
    """A Dataset whose training set lacks a random `val_fraction` of the examples and whose
    "test" split is that held-out part (the training loop evaluates it every
    hpo.eval_every_epochs epochs).

    The held-out ids depend on `seed` alone, so the full-data and subset searches score their
    trials on the same examples.
    """
    n = dataset.n_train
    n_val = max(1, round(val_fraction * n))
    if n_val >= n:
        raise ValueError(f"hpo.val_fraction={val_fraction} leaves no training examples "
                         f"(n_train={n})")
    perm = np.random.default_rng([seed, 0x7a1]).permutation(n)
    val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])  # source order kept in both
    return dataclasses.replace(dataset, x_train=dataset.x_train[train],
                               y_train=dataset.y_train[train], x_test=dataset.x_train[val],
                               y_test=dataset.y_train[val], label_noise=None)
