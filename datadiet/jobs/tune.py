"""The tune job: search (on held-out validation accuracy), then retrain the best configuration on
the full training set and test it.

  python train.py --config=configs/fashion_mnist_tune.py --workdir=DIR

WORKDIR/study.db (default storage), WORKDIR/trials/<n>/ (trial runs), WORKDIR/retrain/ (the
best configuration on all training data, tested on the test set), WORKDIR/hpo.json (summary).
The same command resumes an interrupted study; workers sharing a storage URL run with
hpo.retrain=False, and one final run of the command (retrain on) retrains the best.
"""
import os

from datadiet import distributed, fileio
from datadiet.config import check_loaded, default_config, validate_config
from datadiet.data import load_dataset
from datadiet.hpo import space as space_lib
from datadiet.hpo.holdout import holdout_split
from datadiet.hpo.objective import Objective, evaluation_config
from datadiet.hpo.study import open_study, run_study, storage_url, summarise
from datadiet.jit_cache import use_compilation_cache
from datadiet.jobs.train import make_selector, train_and_evaluate


def tune(config, workdir, dataset=None):
    """Runs (or resumes) the study of `config` in `workdir`; returns the summary (hpo.json)."""
    validate_config(config)
    hpo = config.hpo
    # every trial compiles the same few programs (hyper-parameters are data in the step)
    use_compilation_cache(os.path.join(workdir, "jax_cache"))
    if dataset is None:
        dataset = load_dataset(config.data, config.seed)
        check_loaded(config, dataset)  # sizes a TFDS source tells only now
    objective = Objective(config, holdout_split(dataset, hpo.val_fraction, hpo.seed), workdir,
                          validate_config, default_config(), make_selector)
    # Multi-process: only process 0 opens the study; the others train the trials it sends.
    summary = None
    if distributed.is_primary():
        study = open_study(config, workdir)  # before any compute: refuses a mismatched study
        try:
            run_study(study, objective, hpo.n_trials, hpo.grace_seconds)
        finally:
            objective.end_follow()
        summary = summarise(study)
        summary.update(storage=storage_url(hpo, workdir).split("@")[-1],  # no password
                       study_name=hpo.study_name, evaluation=hpo.evaluation,
                       fraction=hpo.fraction, search=hpo.search, scheduler=hpo.scheduler,
                       energy_kwh=summary["tuning_seconds"] * hpo.power_watts / 3.6e6)
    else:
        objective.follow()
    summary = distributed.broadcast_json("summary", summary)
    if hpo.retrain and "best_params" in summary:
        final = retrain(config, summary["best_params"], os.path.join(workdir, "retrain"), dataset)
        summary["retrain"] = {"test_accuracy": final["test"]["accuracy"],
                              "test_loss": final["test"]["loss"], "step": final["test"]["step"],
                              "time": final["test"]["time"]}
    fileio.write_json(os.path.join(workdir, "hpo.json"), summary)
    return summary


def retrain_config(config, params):
    """The best configuration on all training data (no held-out split, no subset)."""
    hpo = config.hpo
    full = hpo.copy_and_resolve_references()
    full.evaluation = "full"
    epochs = hpo.retrain_epochs or hpo.max_epochs
    out = evaluation_config(space_lib.apply(config, hpo.space, params), full, epochs)
    out.train.checkpoint_every_epochs = 1  # an ordinary resumable run
    out.train.eval_every_epochs = max(1, int(epochs))
    out.train.max_checkpoints = config.train.max_checkpoints
    return out


def retrain(config, params, workdir, dataset):
    return train_and_evaluate(retrain_config(config, params), workdir, dataset=dataset)


def tune_job(config, workdir):
    summary = tune(config, workdir)
    print({k: summary.get(k) for k in ("trials", "tuning_seconds", "best_value", "best_params",
                                        "retrain")})
    return summary
