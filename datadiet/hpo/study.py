"""The study: storage, create-or-resume, running trials to the budget, and the summary.

Storage: "" = an SQLite file WORKDIR/study.db (one machine; the same command resumes it), or any
Optuna RDB URL (postgresql://..., mysql://...) shared by workers on one machine or many. Running
trials beat a heartbeat into the storage; a trial silent for `grace_seconds` (its worker was
killed) is marked FAIL by the next worker that starts a trial, and does not count as finished.
"""
import json
import os
import time
import warnings

import optuna
import sqlalchemy

from datadiet import config_tree
from datadiet.hpo.search import make_pruner, make_sampler

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
COUNTED = FINISHED + (optuna.trial.TrialState.RUNNING,)  # trials holding a place in the budget
# hpo fields that may change between runs of one study (how to run it, not what it searches)
RUN_ONLY_FIELDS = ("n_trials", "storage", "retrain", "retrain_epochs", "heartbeat_seconds",
                   "grace_seconds", "power_watts")


def storage_url(hpo, workdir):
    return hpo.storage or "sqlite:///" + os.path.join(os.path.abspath(workdir), "study.db")


def open_storage(hpo, workdir):
    url = storage_url(hpo, workdir)
    if url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(url[len("sqlite:///"):]) or ".", exist_ok=True)
        # several local workers on one file wait for its lock instead of failing
        engine = {"connect_args": {"timeout": 120}}
    else:
        engine = {"pool_pre_ping": True}  # a server-side dropped connection is reopened
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs=engine,
                                          heartbeat_interval=hpo.heartbeat_seconds,
                                          grace_period=hpo.grace_seconds)


def open_study(config, workdir):
    """Creates the study, or loads it if it exists (any worker, any restart).

    Refuses a study that was created for a different search (space, scheduler, evaluation,
    base run config): resuming must not mix two experiments in one study.
    """
    hpo = config.hpo
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for attempt in range(5):
        try:
            study = optuna.create_study(storage=open_storage(hpo, workdir),
                                        study_name=hpo.study_name, sampler=make_sampler(hpo),
                                        pruner=make_pruner(hpo), direction="maximize",
                                        load_if_exists=True)
            break
        except sqlalchemy.exc.SQLAlchemyError:
            # workers starting together race to create the schema and the study: the loser
            # finds them made on its next try
            if attempt == 4:
                raise
            time.sleep(0.5 + attempt)
    fingerprint = search_fingerprint(config)
    stored = study.user_attrs.get("search")
    if stored is None:
        study.set_user_attr("search", fingerprint)
    elif stored != fingerprint:
        diff = sorted(k for k in set(stored) | set(fingerprint)
                      if stored.get(k) != fingerprint.get(k))
        raise ValueError(f"study {hpo.study_name!r} in {storage_url(hpo, workdir)} was made for a "
                         f"different search (fields {diff}); use another hpo.study_name or "
                         "storage")
    return study


def search_fingerprint(config):
    """The flattened config fields that define the search (JSON-comparable)."""
    cfg = json.loads(config.to_json_best_effort())
    for field in RUN_ONLY_FIELDS:
        cfg["hpo"].pop(field, None)
    cfg.pop("log", None)
    return config_tree.flatten(cfg)


def n_finished(study):
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def run_study(study, objective, n_trials, grace_seconds, poll_seconds=1.0, gc_after_trial=True):
    """Runs trials until exactly `n_trials` have finished (complete or pruned) in the whole study,
    whatever the number of workers.

    Trials that finished before a restart are not run again. A worker starts a trial only while
    finished + running trials are below the budget, and a new trial goes on only if fewer than
    `n_trials` trials numbered below it are running or finished (the storage numbers trials
    atomically): of two workers racing for the last place, the later-numbered trial is marked
    FAIL before it trains (user attribute over_budget) and does not count. A worker whose
    trials are all placed waits for the running ones; if one of them dies (its heartbeat goes
    stale) its place is run again. gc_after_trial: collect garbage after each trial (~0.1 s
    here; frees a trial's buffers).
    """
    def within_budget(trial):
        earlier = study.get_trials(deepcopy=False, states=COUNTED)
        if sum(t.number < trial.number for t in earlier) >= n_trials:
            trial.set_user_attr("over_budget", True)
            raise _OverBudget(trial.number)
        return objective(trial)

    while n_finished(study) < n_trials:
        _fail_stale(study)
        if len(study.get_trials(deepcopy=False, states=COUNTED)) >= n_trials:
            time.sleep(poll_seconds)  # the rest of the budget is running elsewhere
            continue
        study.optimize(within_budget, n_trials=1, catch=(_OverBudget,),
                       gc_after_trial=gc_after_trial)
    settle(study, grace_seconds, poll_seconds)


class _OverBudget(Exception):
    """A trial created after the budget was placed (it never trains)."""


def _fail_stale(study):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def settle(study, grace_seconds, poll_seconds=1.0):
    """Waits (at most the grace period) for the other running trials: live ones finish, those of
    killed workers go stale and are marked FAIL, so the study ends without phantom RUNNING
    trials and the best trial is read from a settled study."""
    deadline = time.time() + grace_seconds + 2 * poll_seconds
    while study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if time.time() > deadline:
            break
        time.sleep(poll_seconds)
        _fail_stale(study)


def summarise(study):
    """Counts, best trial and tuning time. Tuning time = the sum of the trials' durations (for
    one worker, the wall time of the search; for many, their total compute time), and the study
    span (first start to last end)."""
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.datetime_complete is not None and t.datetime_start is not None]
    states = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    out = {"trials": states,
           "tuning_seconds": sum((t.datetime_complete - t.datetime_start).total_seconds()
                                 for t in done),
           "span_seconds": ((max(t.datetime_complete for t in done)
                             - min(t.datetime_start for t in done)).total_seconds()
                            if done else 0.0),
           "epochs_trained": sum((t.last_step or 0) for t in done)}
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        out.update(best_trial=best.number, best_value=best.value, best_params=best.params)
    return out
