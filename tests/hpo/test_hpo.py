"""AUTOMATA tuning: planted objectives for the searches, hand-worked successive halving for the
schedulers, resume, up-front config errors, and one tiny end-to-end study on digits."""
import binascii
import json
import os

import pytest

from datadiet.config import validate_config
from datadiet.hpo import space as space_lib
from datadiet.hpo.objective import report_epoch, trial_run_config
from datadiet.hpo.search import make_pruner, make_sampler
from datadiet.hpo.study import open_study, run_study
from tiny_config import tiny_config
from tiny_tune_config import tiny_tune_config

optuna = pytest.importorskip("optuna")
PRUNED, CONTINUE, DONE = "pruned", "continue", "done"


# ---- search: a planted objective whose best configuration is known ----

def planted_config(search, n_trials, seed=0):
    c = tiny_config()
    c.job = "tune"
    c.hpo.space.lr = {"type": "log_float", "low": 1e-4, "high": 1.0, "path": "optim.lr"}
    c.hpo.space.opt = {"type": "categorical", "choices": ("sgd", "momentum", "adam"),
                       "path": "optim.name"}
    c.hpo.space.width = {"type": "int", "low": 4, "high": 7, "path": "model.kwargs.width"}
    c.hpo.update(search=search, scheduler="none", n_trials=n_trials, seed=seed,
                 n_startup_trials=10)
    return c


def planted_value(run_config):
    """Best at lr = 1e-2, adam, width 6 (value 0). Read from the run config a trial would
    train, so the test also checks that each value lands on its path."""
    import math
    lr, name = run_config.optim.lr, run_config.optim.name
    width = run_config.model.kwargs.width
    return -(math.log10(lr) + 2) ** 2 - 2.0 * (name != "adam") - 0.5 * abs(width - 6)


def planted_objective(config, calls, interrupt_at=None):
    def objective(trial):
        calls.append(trial.number)
        if interrupt_at is not None and len(calls) == interrupt_at:
            raise KeyboardInterrupt  # Ctrl-C / a stopped job in the middle of a trial
        params = space_lib.suggest(trial, config.hpo.space)
        return planted_value(trial_run_config(config, config.hpo, params))
    return objective


def is_planted_optimum(params):
    import math
    return (params["opt"] == "adam" and params["width"] == 6
            and abs(math.log10(params["lr"]) + 2) < 0.5)


@pytest.mark.parametrize("search,budget", [("random", 250), ("tpe", 60)])
def test_search_finds_the_planted_optimum(search, budget):
    # Random: each trial hits the optimum region with p = 1/3 * 1/4 * 1/4 = 1/48, so 250
    # trials miss it with probability (47/48)^250 < 0.6%; TPE must get there in far fewer.
    config = planted_config(search, budget)
    validate_config(config)
    # in memory: the search does not depend on the storage, and SQLite commits cost ~70 ms a trial
    study = optuna.create_study(direction="maximize", sampler=make_sampler(config.hpo))
    calls = []
    run_study(study, planted_objective(config, calls), budget, 1, gc_after_trial=False)
    assert len(calls) == budget
    assert is_planted_optimum(study.best_params), study.best_params
    if search == "tpe":  # TPE spends most of its budget near the optimum, random does not
        assert study.best_value > -0.05  # lr within a factor 10^0.22 of 1e-2
        late = [t.params for t in study.trials[budget // 2:]]
        assert sum(p["opt"] == "adam" for p in late) > 0.6 * len(late)


def test_resume_continues_the_study_without_repeating_finished_trials(tmp_path):
    n = 8
    config = planted_config("random", n, seed=3)
    calls = []
    with pytest.raises(KeyboardInterrupt):
        run_study(open_study(config, str(tmp_path)), planted_objective(config, calls, 4), n, 1,
                  gc_after_trial=False)
    assert calls == [0, 1, 2, 3]  # trial 3 was interrupted
    before = {t.number: t.params for t in open_study(config, str(tmp_path)).trials
              if t.state.name == "COMPLETE"}
    assert sorted(before) == [0, 1, 2]

    calls.clear()
    study = open_study(config, str(tmp_path))  # the same command again
    run_study(study, planted_objective(config, calls), n, 1, gc_after_trial=False)
    states = {t.number: t.state.name for t in study.trials}
    assert states[3] == "FAIL"
    assert calls == list(range(4, 4 + n - 3))  # only the missing trials ran
    assert sum(s == "COMPLETE" for s in states.values()) == n
    assert {t.number: t.params for t in study.trials if t.number < 3} == before
    # a trial's draw depends on (seed, trial number) alone: an uninterrupted study agrees
    other = open_study(config, str(tmp_path / "uninterrupted"))
    run_study(other, planted_objective(config, []), n, 1, gc_after_trial=False)
    for number in range(4, n):
        assert study.trials[number].params == other.trials[number].params
    assert len({json.dumps(t.params) for t in study.trials}) == len(study.trials)


def test_resume_refuses_a_study_made_for_another_search(tmp_path):
    config = planted_config("random", 2)
    open_study(config, str(tmp_path))
    config.hpo.space.lr.high = 0.5
    with pytest.raises(ValueError, match="hpo.space.lr.high"):
        open_study(config, str(tmp_path))
    config.hpo.space.lr.high, config.hpo.n_trials = 1.0, 20  # a bigger budget is the same search
    open_study(config, str(tmp_path))


# ---- schedulers: hand-worked successive halving ----

def play(study, max_resource, events):
    """Reports (trial, epoch, value) in the given order through the objective's report_epoch;
    returns what happened after each report."""
    trials = {}
    for _ in range(1 + max(e[0] for e in events)):
        trial = study.ask()
        trials[trial.number] = trial
    out = []
    for number, epoch, value in events:
        try:
            report_epoch(trials[number], epoch, value, max_resource)
        except optuna.TrialPruned:
            study.tell(trials[number], state=optuna.trial.TrialState.PRUNED)
            out.append(PRUNED)
            continue
        if epoch == max_resource:
            study.tell(trials[number], value)
            out.append(DONE)
        else:
            out.append(CONTINUE)
    return out


def scheduler_study(scheduler, name):
    c = planted_config("random", 10)
    c.hpo.update(scheduler=scheduler, min_epochs=1, max_epochs=4, reduction_factor=2)
    validate_config(c)
    return optuna.create_study(study_name=name, direction="maximize", pruner=make_pruner(c.hpo))


def test_asha_promotes_exactly_the_top_fraction_at_each_rung():
    # eta = 2, rungs at epochs 1 and 2 (4 = max_resource: the trial is complete). At a rung,
    # with n values recorded there so far (this one included, stopped trials too), a trial goes
    # on iff its value is among the top max(1, n // 2). Worked by hand:
    events = [
        (0, 1, 0.50, CONTINUE),  # rung 1: [.50] -> top 1 = .50
        (1, 1, 0.40, PRUNED),    # [.50 .40] top 1 = .50
        (2, 1, 0.60, CONTINUE),  # [.50 .40 .60] top 1 = .60
        (0, 2, 0.55, CONTINUE),  # rung 2: [.55]
        (3, 1, 0.45, PRUNED),    # rung 1: n = 4, top 2 = .60 .50
        (2, 2, 0.52, PRUNED),    # rung 2: [.55 .52] top 1 = .55
        (4, 1, 0.55, CONTINUE),  # rung 1: n = 5, top 2 = .60 .55 (a tie with itself goes on)
        (0, 3, 0.58, CONTINUE),  # epoch 3 is no rung
        (4, 2, 0.70, CONTINUE),  # rung 2: [.55 .52 .70] top 1 = .70
        (0, 4, 0.60, DONE),
        (4, 3, 0.71, CONTINUE),
        (4, 4, 0.72, DONE),
        (5, 1, 0.30, PRUNED),    # rung 1: n = 6, top 3 = .60 .55 .50
        (6, 1, 0.50, CONTINUE),  # n = 7, top 3 = .60 .55 .50 (.50 ties the third)
        (6, 2, 0.53, PRUNED),    # rung 2: n = 4, top 2 = .70 .55
    ]
    study = scheduler_study("asha", "asha")
    assert play(study, 4, [e[:3] for e in events]) == [e[3] for e in events]
    states = {t.number: t.state.name for t in study.trials}
    assert states == {0: "COMPLETE", 1: "PRUNED", 2: "PRUNED", 3: "PRUNED", 4: "COMPLETE",
                      5: "PRUNED", 6: "PRUNED"}


def test_hyperband_runs_successive_halving_within_each_bracket():
    # min 1, max 4, eta 2: floor(log2(4)) + 1 = 3 brackets; bracket s first decides at epoch
    # 2^s: s=0 at epochs 1 and 2, s=1 at epoch 2, s=2 never (its trials get the full 4 epochs).
    # Budgets ceil(3 * 2^(2-s) / (3-s)) = 4, 3, 3 trials of every 10; trial k of study "hyperband"
    # goes to the bracket holding crc32("hyperband_k") % 10 (0-3: s=0, 4-6: s=1, 7-9: s=2).
    brackets = {}
    for k in range(10):
        slot = binascii.crc32(f"hyperband_{k}".encode()) % 10
        brackets[k] = 0 if slot < 4 else 1 if slot < 7 else 2
    assert brackets == {0: 0, 1: 2, 2: 0, 3: 0, 4: 2, 5: 2, 6: 1, 7: 0, 8: 1, 9: 1}
    events = [
        (0, 1, 0.50, CONTINUE),  # s=0, epoch 1: [.50]
        (1, 1, 0.10, CONTINUE),  # s=2: no decision before epoch 4
        (2, 1, 0.40, PRUNED),    # s=0, epoch 1: [.50 .40] top 1 = .50
        (6, 1, 0.05, CONTINUE),  # s=1: no decision at epoch 1 (ASHA would stop it: .05 < .50)
        (6, 2, 0.20, CONTINUE),  # s=1, epoch 2: [.20] (bracket s=0's values do not compete)
        (3, 1, 0.60, CONTINUE),  # s=0, epoch 1: [.50 .40 .60] top 1 = .60
        (0, 2, 0.55, CONTINUE),  # s=0, epoch 2: [.55]
        (8, 1, 0.90, CONTINUE),  # s=1: no decision at epoch 1
        (8, 2, 0.15, PRUNED),    # s=1, epoch 2: [.20 .15] top 1 = .20
        (3, 2, 0.50, PRUNED),    # s=0, epoch 2: [.55 .50] top 1 = .55
        (1, 2, 0.10, CONTINUE), (1, 3, 0.10, CONTINUE), (1, 4, 0.12, DONE),
        (9, 2, 0.25, CONTINUE),  # s=1, epoch 2: [.20 .15 .25] top 1 = .25
        (6, 3, 0.30, CONTINUE), (6, 4, 0.35, DONE),
        (0, 3, 0.60, CONTINUE), (0, 4, 0.65, DONE),
    ]
    study = scheduler_study("hyperband", "hyperband")
    assert play(study, 4, [e[:3] for e in events]) == [e[3] for e in events]


def test_asha_decides_the_same_when_trials_are_validated_only_every_few_epochs():
    # hpo.eval_every_epochs = 2 with rungs at epochs 2 and 4 (max 8): the reports at the rung
    # epochs alone must give the same decisions as a report after every epoch. One worker:
    # each trial trains until it is stopped or done before the next starts.
    import numpy as np
    rng = np.random.default_rng(0)
    curves = rng.uniform(0.3, 0.9, size=(16, 8)).cumsum(axis=1) / np.arange(1, 9)
    outcomes = []
    for every in (1, 2):
        c = planted_config("random", 16)
        c.hpo.update(scheduler="asha", min_epochs=2, max_epochs=8, reduction_factor=2,
                     eval_every_epochs=every)
        validate_config(c)
        study = optuna.create_study(direction="maximize", pruner=make_pruner(c.hpo))
        for curve in curves:
            trial = study.ask()
            try:
                for epoch in range(every, 9, every):
                    report_epoch(trial, epoch, float(curve[epoch - 1]), 8)
                study.tell(trial, float(curve[-1]))
            except optuna.TrialPruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        outcomes.append([(t.state.name, t.last_step) for t in study.trials])
    assert outcomes[0] == outcomes[1]
    assert {s for s, _ in outcomes[0]} == {"PRUNED", "COMPLETE"}
    assert {step for _, step in outcomes[0]} >= {2, 4, 8}  # stopped at both rungs, and done


# ---- config errors, before any compute ----

@pytest.mark.parametrize("field,value,match", [
    ("search", "grid", "hpo.search='grid' is not one of \\['random', 'tpe'\\]"),
    ("scheduler", "median", "hpo.scheduler='median' is not one of"),
    ("evaluation", "coreset", "hpo.evaluation='coreset' is not one of"),
    ("reduction_factor", 1, "hpo.reduction_factor=1 must be an integer >= 2"),
    ("max_epochs", 0, "hpo.max_epochs=0 must be an integer >= hpo.min_epochs"),
    ("max_resource", 8, "hpo.max_resource was renamed hpo.max_epochs"),
    ("fraction", 1.5, "hpo.fraction=1.5 must be in"),
    ("storage", "study.db", "hpo.storage='study.db' must be an RDB URL"),
    ("candidate_fraction", 0.1, "hpo.candidate_fraction=0.1 must exceed hpo.fraction=0.3"),
    ("eval_every_epochs", 0, "hpo.eval_every_epochs=0 must be an integer >= 1"),
    ("eval_every_epochs", 2, "hpo.eval_every_epochs=2 must divide hpo.min_epochs=1"),
])
def test_bad_hpo_fields_are_refused_naming_the_field(field, value, match):
    c = tiny_tune_config()
    c.hpo[field] = value
    with pytest.raises(ValueError, match=match):
        validate_config(c)


@pytest.mark.parametrize("param,match", [
    ({"type": "loguniform", "low": 0.1, "high": 1.0, "path": "optim.lr"},
     "hpo.space.p.type='loguniform' is not one of"),
    ({"type": "float", "low": 0.1, "high": 1.0, "path": "optim.lrr"},
     "hpo.space.p.path='optim.lrr': the config has no field"),
    ({"type": "log_float", "low": 0.0, "high": 1.0, "path": "optim.lr"}, "low=0.0 > 0"),
    ({"type": "categorical", "choices": ("sgd", "adamw"), "path": "optim.name"},
     "value 'adamw' at 'optim.name' gives an invalid run config"),
    ({"type": "int", "low": 2, "high": 8, "path": "model.kwargs.depth"},
     "model.kwargs.depth: unknown option"),
    ({"type": "float", "low": 0.1, "high": 0.5, "path": "coreset.fraction"},
     "set by the tuning itself"),
])
def test_bad_search_space_is_refused_naming_the_param(param, match):
    c = tiny_tune_config()
    c.hpo.space.p = param
    with pytest.raises(ValueError, match=match):
        validate_config(c)


def test_evaluation_modes_set_up_the_trial_run():
    c = tiny_tune_config()
    c.hpo.update(every_epochs=3, warm_start=0.25, fraction=0.2, min_epochs=2, max_epochs=4,
                 eval_every_epochs=2)
    params = {"lr": 0.02, "optimizer": "adam"}
    expect = {"subset": ("gradmatch", "per_batch"), "random": ("random_online", "per_batch"),
              "full": ("none", None)}
    for evaluation, (method, mode) in expect.items():
        c.hpo.evaluation = evaluation
        run = trial_run_config(c, c.hpo, params)
        validate_config(run)
        assert (run.job, run.optim.lr, run.optim.name, run.train.epochs) == \
            ("train", 0.02, "adam", 4.0)
        assert run.coreset.method == method and run.train.eval_every_epochs == 2
        if mode:
            assert (run.coreset.mode, run.coreset.fraction, run.coreset.every_epochs,
                    run.coreset.warm_start) == (mode, 0.2, 3, 0.25)


# ---- one tiny study end to end ----

def test_tiny_study_on_digits_end_to_end(tmp_path):
    from datadiet.jobs.tune import tune
    config = tiny_tune_config()
    summary = tune(config, str(tmp_path))
    study = open_study(config, str(tmp_path))
    assert summary["trials"].get("COMPLETE", 0) + summary["trials"].get("PRUNED", 0) == 3
    for t in study.trials:
        run = os.path.join(tmp_path, "trials", str(t.number))
        events = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
        val = {e["epoch"]: e["accuracy"] for e in events if e["split"] == "test"
               and "kind" not in e}
        assert t.intermediate_values == val  # every epoch's validation accuracy was reported
        assert any(e.get("kind") == "selection" for e in events)  # trained on GRAD-MATCH subsets
        status = json.load(open(os.path.join(run, "status.json")))["state"]
        assert status == {"COMPLETE": "done", "PRUNED": "pruned"}[t.state.name]
    assert study.best_trial.number == summary["best_trial"]
    retrain = json.load(open(os.path.join(tmp_path, "retrain", "config.json")))
    assert retrain["optim"]["lr"] == summary["best_params"]["lr"]
    assert retrain["coreset"]["method"] == "none"
    assert summary["retrain"]["step"] == 2 * 23  # all 1,437 digits, 2 epochs of batch 64
    assert 0.5 < summary["retrain"]["test_accuracy"] <= 1
    assert summary["energy_kwh"] == pytest.approx(summary["tuning_seconds"] * 30 / 3.6e6)
