"""One trial: the run config from the base config, the sampled values and the evaluation mode;
training through the shared loop; validation accuracy reported to Optuna every
hpo.eval_every_epochs epochs.

The trial's run directory is WORKDIR/trials/<trial number> (the usual run-directory contract;
its "test" events are the validation split's, and status.json may say "pruned").
"""
import copy
import os
import socket

import optuna

from datadiet import distributed
from datadiet.hpo import space as space_lib
from datadiet.training.finite import Diverged
from datadiet.training.loop import train
from datadiet.training.rundir import RunDir


def evaluation_config(config, hpo, epochs):
    """`config` set up to train a trial for `epochs` epochs the way hpo.evaluation says."""
    config = copy.deepcopy(config)
    config.unlock()
    config.job = "train"
    config.train.epochs, config.train.steps = float(epochs), -1
    # The pruner needs a value at each of its rungs (hpo.eval_every_epochs divides them all);
    # validation in between is a fixed cost per epoch, and a large one on small subsets.
    config.train.eval_every_epochs = hpo.eval_every_epochs
    config.train.checkpoint_every_epochs = max(1, int(epochs))  # a killed trial is not resumed
    config.train.max_checkpoints = 1
    c = config.coreset
    if hpo.evaluation == "full":
        c.method = "none"
    else:
        # AUTOMATA's subset evaluation: GRAD-MATCH (or a random subset, redrawn at each
        # selection: the baseline at equal compute) of `fraction`, after warm start, every R
        # epochs, weighted training; an epoch is a pass over the subset.
        c.method = "gradmatch" if hpo.evaluation == "subset" else "random_online"
        c.mode, c.fraction, c.every_epochs, c.warm_start = (hpo.mode, hpo.fraction,
                                                             hpo.every_epochs, hpo.warm_start)
        c.warm_start_kappa, c.candidate_fraction = hpo.warm_start_kappa, hpo.candidate_fraction
        c.target = "train"
    return config


def trial_run_config(base, hpo, params):
    return evaluation_config(space_lib.apply(base, hpo.space, params), hpo, hpo.max_epochs)


def report_epoch(trial, epoch, value, max_resource):
    """Reports `value` at step `epoch`; raises TrialPruned when the pruner stops the trial.

    At max_resource the trial has had its whole budget: it completes whatever the rung says.
    """
    trial.report(value, step=epoch)
    prune = bool(epoch < max_resource and trial.should_prune())
    if distributed.broadcast_json("prune", prune):  # process 0's decision, on every process
        raise optuna.TrialPruned(f"stopped after epoch {epoch} (validation accuracy {value:.4f})")


class Objective:
    """Callable for `study.optimize`: trains one trial and returns its final validation
    accuracy. `dataset` is the held-out split of `holdout.holdout_split` (loaded once per
    worker); `validate` checks each trial's run config, `defaults` is the base config its run
    directory is compared against (RunDir), and `make_selector(config, dataset)` gives what the
    trial trains on."""

    def __init__(self, base_config, dataset, workdir, validate, defaults, make_selector):
        self.base, self.hpo, self.dataset = base_config, base_config.hpo, dataset
        self.workdir, self.validate, self.defaults = workdir, validate, defaults
        self.make_selector = make_selector

    def __call__(self, trial):
        params = space_lib.suggest(trial, self.hpo.space)
        distributed.broadcast_json("trial", {"number": trial.number, "params": params})
        return self._run(trial, params)

    def follow(self):
        """A process other than 0: trains the trials process 0 sends until it sends None
        (`end_follow`)."""
        while (message := distributed.broadcast_json("trial", None)) is not None:
            try:
                self._run(_FollowedTrial(message["number"]), message["params"])
            except optuna.TrialPruned:
                pass  # process 0 records it

    @staticmethod
    def end_follow():
        distributed.broadcast_json("trial", None)

    def _run(self, trial, params):
        config = trial_run_config(self.base, self.hpo, params)
        self.validate(config)
        run = RunDir(os.path.join(self.workdir, "trials", str(trial.number)), config,
                     self.defaults)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("run_dir", run.path)
        reporter = _Reporter(trial, run, self.hpo.max_epochs)
        with run.active(trial=trial.number):  # a failure or a stop is recorded there
            try:
                train(config, self.dataset, self.make_selector(config, self.dataset), run,
                      on_epoch=reporter)
            except optuna.TrialPruned:
                run.set_status("pruned", epoch=reporter.last_epoch, value=reporter.last_value)
                raise
            except Diverged as e:  # a result of its hyper-parameters: it keeps its budget place
                run.set_status("diverged", error=str(e), epoch=reporter.last_epoch)
                trial.set_user_attr("diverged", str(e))
                raise optuna.TrialPruned(str(e)) from e
            run.set_status("done", value=reporter.last_value, epoch=reporter.last_epoch)
        return reporter.last_value


class _FollowedTrial:
    """Process 0's trial as the other processes see it: its number, and its pruning decisions
    through report_epoch's broadcast."""

    def __init__(self, number):
        self.number = number

    def set_user_attr(self, key, value):
        pass

    def report(self, value, step):
        pass

    def should_prune(self):
        return False  # unused: report_epoch takes process 0's decision


class _Reporter:
    """on_epoch callback: reports the validation accuracy of the epoch just evaluated."""

    def __init__(self, trial, run, max_resource):
        self.trial, self.run, self.max_resource = trial, run, max_resource
        self.last_epoch, self.last_value = 0, float("nan")

    def __call__(self, epoch, state, metrics):
        if metrics is None or metrics["test"] is None:  # before training / not evaluated
            return
        self.last_epoch, self.last_value = epoch, float(metrics["test"]["accuracy"])
        report_epoch(self.trial, epoch, self.last_value, self.max_resource)
