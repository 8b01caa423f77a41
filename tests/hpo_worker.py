"""A tuning worker with a planted objective (no training: seconds, not minutes), run as a
subprocess by tests/hpo/test_hpo_workers.py:

  python tests/hpo_worker.py STORAGE_URL WORKDIR N_TRIALS

It goes through the same study code as the tune job (open_study, run_study, report_epoch) and,
like the real objective, records its host:pid in the trial so the test can kill it mid-trial.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datadiet.hpo import space as space_lib  # noqa: E402
from datadiet.hpo.objective import report_epoch  # noqa: E402
from datadiet.hpo.study import open_study, run_study  # noqa: E402
from tiny_tune_config import tiny_tune_config  # noqa: E402

EPOCH_SECONDS = 0.3


def worker_config(storage, n_trials):
    c = tiny_tune_config()
    c.hpo.update(storage=storage, n_trials=n_trials, max_epochs=4, heartbeat_seconds=1,
                 grace_seconds=3, study_name="workers")
    return c


def main(storage, workdir, n_trials):
    config = worker_config(storage, n_trials)
    hpo = config.hpo

    def objective(trial):
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        lr = space_lib.suggest(trial, hpo.space)["lr"]
        value = 0.0
        for epoch in range(1, hpo.max_epochs + 1):
            time.sleep(EPOCH_SECONDS)  # "training"
            value = epoch / hpo.max_epochs - abs(lr - 0.03)
            report_epoch(trial, epoch, value, hpo.max_epochs)
        return value

    run_study(open_study(config, workdir), objective, hpo.n_trials, hpo.grace_seconds,
              poll_seconds=0.5, gc_after_trial=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
