"""Coreset selection during training: GRAD-MATCH and its baselines as a loop selector.

Schedule (AUTOMATA Algorithm 2): the first `warm_start * epochs` epochs train on all candidates;
then a subset of k = fraction * candidates is selected at the first subset epoch and again every
`every_epochs` epochs after it, from the model as it is at that moment. Without warm start, GRAD-MATCH
starts from a random subset (unit weights) and runs OMP at epochs R, 2R, ... (Algorithm 2's
`t % R == 0 and t > 0`; CORDS starts every strategy this way): the gradients of an untrained
model carry no information to choose by, and a selection costs a forward pass over all
candidates. Each selection is saved in
WORKDIR/selections/epoch_XXXX.npz (ids, weights) and logged in metrics.jsonl as an event with
kind="selection" and its wall time, so a resumed run reloads it instead of selecting anew.
Methods: gradmatch (per_class / per_batch / whole), random (one draw, kept), random_online
(redrawn at every selection epoch), full (all candidates; the reference).
"""
import os
import time

import jax
import numpy as np

from datadiet import fileio
from datadiet.coresets import gradmatch
from datadiet.coresets.grad_features import example_grads
from datadiet.data import Subset


def warm_epochs(c, epochs):
    """Full-data epochs before the first selection: warm_start x T, or AUTOMATA's
    kappa x T x f (Killamsetty et al. 2022, Sec. 3), never all of them."""
    if c.warm_start_kappa:
        return min(round(c.warm_start_kappa * epochs * c.fraction), max(int(epochs) - 1, 0))
    return round(c.warm_start * epochs)


class CoresetSelector:
    def __init__(self, config, dataset):
        self.c, self.config, self.dataset = config.coreset, config, dataset
        self.batch_size = config.train.batch_size
        ids = np.arange(dataset.n_train)
        self.val_ids = np.array([], np.int64)
        if self.c.target == "val":
            rng = np.random.default_rng([config.seed, 0xba1])
            self.val_ids = np.sort(rng.choice(ids, round(self.c.val_fraction * len(ids)), False))
        self.candidates = np.setdiff1d(ids, self.val_ids)
        self.k = max(1, round(self.c.fraction * len(self.candidates)))
        self.warm = warm_epochs(self.c, config.train.epochs)
        self._current = (None, None)  # (selection epoch, Subset)

    def epoch_sizes(self, num_epochs):
        if self.c.method == "full":
            return [len(self.candidates)] * num_epochs
        return [len(self.candidates)] * self.warm + [self.k] * (num_epochs - self.warm)

    def selection_epoch(self, epoch):
        if self.c.method == "random":
            return self.warm
        return self.warm + (epoch - self.warm) // self.c.every_epochs * self.c.every_epochs

    def subset_for_epoch(self, epoch, context):
        if self.c.method == "full" or epoch < self.warm:
            return Subset.of(self.candidates, self.dataset.n_train)
        sel_epoch = self.selection_epoch(epoch)
        if self._current[0] != sel_epoch:
            self._current = (sel_epoch, self._load_or_select(sel_epoch, context))
        return self._current[1]

    def _load_or_select(self, sel_epoch, context):
        path = context.run.file(os.path.join("selections", f"epoch_{sel_epoch:04d}.npz"))
        if os.path.exists(path):  # resumed run: the selection made before the kill
            with np.load(path) as f:
                return Subset.of(f["ids"], self.dataset.n_train, f["weights"])
        start = time.time()
        ids, weights, error = self._select(sel_epoch, context)
        seconds = time.time() - start
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fileio.write_npz(path, ids=ids, weights=weights)
        context.run.log(kind="selection", split="train", epoch=sel_epoch,
                        step=int(context.state.step), method=self._method_at(sel_epoch),
                        n_selected=len(ids),
                        matching_error=error, selection_time=round(seconds, 4),
                        time=round(time.time() - context.started, 3))
        return Subset.of(ids, self.dataset.n_train, weights)

    def _method_at(self, sel_epoch):
        """GRAD-MATCH's first subset is random when there is no warm start (see above)."""
        return "random" if self.c.method == "gradmatch" and sel_epoch == 0 else self.c.method

    def _select(self, sel_epoch, context):
        rng = np.random.default_rng([self.config.seed, sel_epoch, 0x5e1])
        if self._method_at(sel_epoch) in ("random", "random_online"):
            ids = np.sort(rng.choice(self.candidates, self.k, replace=False))
            return ids, np.ones(self.k, np.float32), float("nan")
        nb = len(self.candidates) // self.batch_size
        if self.c.mode == "per_batch":  # a fresh random partition of the candidates into batches
            batch_rows = rng.permutation(len(self.candidates))[: nb * self.batch_size]
            batch_rows = batch_rows.reshape(nb, self.batch_size)
            k_batches = max(1, self.k // self.batch_size)
            pool = np.arange(len(self.candidates))  # exact: every candidate, as before
            if self.c.candidate_fraction < 1:  # the first batches of the fresh partition
                batch_rows = batch_rows[: self._pool_size(nb, k_batches)]
                pool = np.sort(batch_rows.reshape(-1))
        else:
            pool = self._class_pool(sel_epoch)
        # Only the pool's gradients are computed: that forward pass is the selection's cost.
        grads = example_grads(context, self.dataset, self.candidates[pool], self.c)
        y = self.dataset.y_train[self.candidates[pool]]
        scale = len(self.candidates) / len(pool)  # pool sums estimate the candidates' sums
        val = None
        if self.c.target == "val":  # rescaled to the size of the candidate set
            val_grads = example_grads(context, self.dataset, self.val_ids, self.c)
            val = (val_grads, self.dataset.y_train[self.val_ids],
                   len(self.candidates) / len(self.val_ids))
        if self.c.mode == "per_class":
            targets = _class_sums(grads, y, self.dataset.num_classes, val, self._class_scale(pool))
            rows, weights, error = gradmatch.select_per_class(grads, y, targets, self.k,
                                                              self.c.lam, self.c.eps,
                                                              budgets=self._class_budgets())
        elif self.c.mode == "whole":
            target = _total(grads, val, scale)
            rows, weights, error = gradmatch.select_whole(grads, target, self.k, self.c.lam,
                                                          self.c.eps)
        else:
            # the target is the sum of the batch-mean gradients: each column is on its scale
            target = _total(grads, val, scale) / self.batch_size
            rows, weights, error = gradmatch.select_per_batch(
                grads, target, np.searchsorted(pool, batch_rows), k_batches, self.c.lam,
                self.c.eps)
        ids = self.candidates[pool[rows]]
        if self.c.mode == "per_class":  # OMP stopped short in a class: top up within it
            pool_ids = self.candidates[pool]  # (the pool holds every class's budget)
            ids, weights = gradmatch.fill_per_class(ids, weights, pool_ids,
                                                    self.dataset.y_train[pool_ids],
                                                    self._class_budgets(), rng)
        ids, weights = gradmatch.fill_budget(ids, weights, self.candidates, self.k, rng)
        return ids, weights, error

    def _pool_size(self, n, need):
        return max(need, round(self.c.candidate_fraction * n))

    def _class_members(self):
        y = self.dataset.y_train[self.candidates]
        return [np.flatnonzero(y == c) for c in np.unique(y)]

    def _class_budgets(self):
        """Per-class budgets from the candidates' class sizes, whatever the pool."""
        return gradmatch.class_budgets([len(m) for m in self._class_members()], self.k)

    def _class_pool(self, sel_epoch):
        """Rows of the candidates to select from: all of them at candidate_fraction 1, else a
        class-stratified random share (each class keeps at least its budget)."""
        if self.c.candidate_fraction == 1:
            return np.arange(len(self.candidates))
        rng = np.random.default_rng([self.config.seed, sel_epoch, 0xcf])
        members, budgets = self._class_members(), self._class_budgets()
        return np.sort(np.concatenate([rng.choice(m, self._pool_size(len(m), b), replace=False)
                                       for m, b in zip(members, budgets)]))

    def _class_scale(self, pool):
        """[C] candidates / pool examples of each class: pool class sums estimate the full."""
        y = self.dataset.y_train[self.candidates]
        C = self.dataset.num_classes
        pool_sizes = np.maximum(np.bincount(y[pool], minlength=C), 1)
        return (np.bincount(y, minlength=C) / pool_sizes).astype(np.float32)


def _total(grads, val, scale=1.0):
    if val is None:
        return grads.sum(axis=0) * scale
    val_grads, _, scale = val
    return val_grads.sum(axis=0) * scale


def _class_sums(grads, labels, num_classes, val, class_scale=1.0):
    if val is not None:
        grads, labels, scale = val
    else:
        scale = class_scale[:, None]
    onehot = jax.nn.one_hot(labels, num_classes, dtype=grads.dtype)  # [n, C]
    return (onehot.T @ grads) * scale  # [C, d]
