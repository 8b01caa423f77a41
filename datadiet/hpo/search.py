"""Optuna's samplers (Random, TPE) and pruners (ASHA, Hyperband) from the `hpo` section.

Samplers are reseeded per trial from (hpo.seed, trial number): a trial's draw does not depend on
which worker runs it, on how many trials this process ran before, or on a resume, so a resumed
study continues where it stopped instead of replaying the first draws, and two workers started
with the same seed do not propose the same configurations.
"""
import warnings

import numpy as np
import optuna


def make_sampler(hpo):
    if hpo.search == "random":
        build = lambda seed: optuna.samplers.RandomSampler(seed=seed)
    else:
        def build(seed):
            with warnings.catch_warnings():  # constant_liar is "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # constant_liar: running trials count as bad guesses, so parallel workers
                # spread out instead of all sampling the same promising point
                return optuna.samplers.TPESampler(seed=seed, n_startup_trials=hpo.n_startup_trials,
                                                  constant_liar=True)
    return TrialSeededSampler(build, hpo.seed)


def make_pruner(hpo):
    if hpo.scheduler == "none":
        return optuna.pruners.NopPruner()
    if hpo.scheduler == "asha":
        # ASHA (Li et al. 2020): at epoch min_resource * eta^k a trial goes on iff its value is
        # in the top 1/eta of all values reported at that rung so far (it alone: the best so far)
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=hpo.min_epochs, reduction_factor=hpo.reduction_factor,
            min_early_stopping_rate=0)
    # Hyperband (Li et al. 2018): brackets s = 0..floor(log_eta(max/min)) of successive halving
    # whose first rung is at min_resource * eta^s; a trial joins one bracket (a hash of its number,
    # weighted by the bracket's budget) and competes only with the trials of that bracket.
    return optuna.pruners.HyperbandPruner(
        min_resource=hpo.min_epochs, max_resource=hpo.max_epochs,
        reduction_factor=hpo.reduction_factor)


def trial_seed(seed, number):
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """Delegates to a sampler built afresh for each trial with seed f(seed, trial number)."""

    def __init__(self, build, seed):
        self._build, self._seed = build, seed
        self._inner = build(seed)

    def before_trial(self, study, trial):
        self._inner = self._build(trial_seed(self._seed, trial.number))
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self):
        self._inner.reseed_rng()
