"""The train job: one run (all data, a pruned subset, a coreset, or a streaming sampler)."""
from datadiet.config import check_loaded, default_config, validate_config
from datadiet.coresets.selector import CoresetSelector
from datadiet.data import Subset, load_dataset
from datadiet.prune import pruned_subset
from datadiet.sampling.loop import train_streaming
from datadiet.training.loop import train
from datadiet.training.rundir import RunDir


def make_selector(config, dataset):
    """What the epoch loop trains on: a pruned subset, a coreset selector, or all the data."""
    if config.prune.method != "none":
        return pruned_subset(config, dataset)
    if config.coreset.method == "none":
        return Subset.full(dataset.n_train)
    return CoresetSelector(config, dataset)


def open_run(workdir, config):
    """The run directory of `config` (refusing one that holds a different run)."""
    return RunDir(workdir, config, default_config())


def train_and_evaluate(config, workdir, dataset=None, on_epoch=None):
    """Runs (or resumes) the run described by `config` in `workdir`; returns the final metrics.

    `dataset`: the already loaded `load_dataset(config.data, config.seed)`, to skip loading it.
    """
    validate_config(config)
    run = open_run(workdir, config)
    if run.status().get("state") == "done":
        print(f"{run.path} is already done; nothing to do.")
        return run.status()["final"]
    with run.active():  # the lock, status and heartbeat; a stop or failure is recorded
        if dataset is None:
            dataset = load_dataset(config.data, config.seed)
            check_loaded(config, dataset)  # sizes a TFDS source tells only now
        if dataset.label_noise is not None:
            run.write_json("label_noise.json", dataset.label_noise)
        # The one place the streaming-vs-epochs choice is made.
        if config.sampling.method != "none":  # streaming: batches drawn by a sampler
            final = train_streaming(config, dataset, run, on_epoch=on_epoch)
        else:
            final = train(config, dataset, make_selector(config, dataset), run, on_epoch=on_epoch)
        run.set_status("done", final=final)
    return final


def train_job(config, workdir):
    final = train_and_evaluate(config, workdir)
    print({split: {k: event[k] for k in ("step", "loss", "accuracy")}
           for split, event in final.items()})
    return final
