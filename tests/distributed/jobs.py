"""The distributed tests' runs: `python tests/distributed/jobs.py OUTDIR NAME...` runs the named
tiny jobs one after another in OUTDIR/NAME, in one process (so they share its compiled
programs): started under `python -m datadiet.launch -n 2`, or alone with forced host devices.

DATADIET_TEST_KILL_EPOCH=e: process 1 SIGKILLs itself once epoch e of the "epochs" run has
trained (before its checkpoint).
"""
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(os.path.dirname(HERE)), os.path.dirname(HERE)]

from datadiet import distributed  # noqa: E402

distributed.initialize()  # the launcher's DATADIET_* variables; a no-op alone

import jax  # noqa: E402
import numpy as np  # noqa: E402
from tiny_config import tiny_config  # noqa: E402
from tiny_tune_config import tiny_tune_config  # noqa: E402

from datadiet import fileio  # noqa: E402
from datadiet.data import load_dataset  # noqa: E402
from datadiet.dynamics import barrier  # noqa: E402
from datadiet.jobs import JOBS  # noqa: E402
from datadiet.jobs.lmc import spawn_children  # noqa: E402
from datadiet.jobs.train import train_and_evaluate  # noqa: E402
from datadiet.training.durations import resolve_duration  # noqa: E402
from datadiet.training.loop import restore_state  # noqa: E402


def epochs():
    return tiny_config(epochs=3.0)


def epochs_host():  # the epochs run through the host pipeline: each process reads its share
    c = epochs()
    c.data.pipeline = "host"
    return c


def stream():
    c = tiny_config(epochs=2.0)
    c.sampling.method = "plb"
    return c


def scores():  # every kind of score: forward, per-example gradient, over the run, embeddings
    c = tiny_config(epochs=2.0)
    c.job = "scores"
    c.scores.names = ("el2n", "grand", "forgetting", "aum", "dyn_unc")
    c.scores.epochs, c.scores.num_seeds, c.scores.embeddings = (1,), 1, 2
    return c


def gradmatch():
    c = tiny_config(epochs=2.0)
    c.coreset.update(method="gradmatch", fraction=0.3, every_epochs=1)
    return c


def tune():
    c = tiny_tune_config()
    c.hpo.update(n_trials=1, min_epochs=1, max_epochs=1, retrain_epochs=1.0)
    return c


def lmc():  # a parent, two children spawned after epoch 1, their error barrier
    c = tiny_config(epochs=2.0)
    c.train.max_checkpoints = 3
    return c


def run_lmc(config, workdir):
    dataset = load_dataset(config.data, config.seed)
    parent = os.path.join(workdir, "parent")
    train_and_evaluate(config, parent, dataset)
    spawn = resolve_duration(config.train, dataset.n_train, dataset.n_train).epoch_starts[1]
    children = spawn_children(config, dataset, parent, spawn, (1, 2),
                              os.path.join(workdir, "children"))
    graphdef, first, _ = restore_state(config, dataset, children[0].workdir)
    second = restore_state(config, dataset, children[1].workdir)[1]
    out = barrier.barrier_between(first, second, graphdef, dataset, np.arange(300),
                                  barrier.default_alphas(5))
    fileio.write_json(os.path.join(workdir, "barrier.json"), out)


def oddbatch():  # not divisible by the 2 devices: must fail before compute
    return tiny_config(epochs=1.0, batch_size=63)


CONFIGS = {f.__name__: f for f in (oddbatch, epochs, epochs_host, stream, scores, gradmatch,
                                    tune, lmc)}


def kill_at(epoch):
    def on_epoch(e, state, metrics):
        if e == epoch and metrics is not None and jax.process_index() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    return on_epoch


def main(outdir, names):
    kill_epoch = int(os.environ.get("DATADIET_TEST_KILL_EPOCH", "-1"))
    for name in names:
        config, workdir = CONFIGS[name](), os.path.join(outdir, name)
        start = time.perf_counter()
        if name == "oddbatch":
            try:
                train_and_evaluate(config, workdir)
            except ValueError as e:
                print(f"oddbatch: {e}")
        elif name == "lmc":
            run_lmc(config, workdir)
        elif name == "epochs" and kill_epoch >= 0:
            train_and_evaluate(config, workdir, on_epoch=kill_at(kill_epoch))
        else:
            JOBS[config.job](config, workdir)
        print(f"job {name}: {time.perf_counter() - start:.1f} s", flush=True)  # where CI time goes


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
