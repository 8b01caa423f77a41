"""Several worker processes share one study; a worker killed mid-trial (SIGKILL) leaves that
trial FAIL (its heartbeat stops) and the study still reaches its budget.

SQLite (one machine) always; PostgreSQL when DATADIET_TEST_POSTGRES_URL points at a server
(.ci/postgres.sh starts one on loopback in CI), where the workers are real tune jobs
(train.py, tiny digits study).
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

optuna = pytest.importorskip("optuna")
POSTGRES = os.environ.get("DATADIET_TEST_POSTGRES_URL", "")
FINISHED = ("COMPLETE", "PRUNED")


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT, os.path.join(ROOT, "tests"), os.environ.get("PYTHONPATH", "")]))


def _wait_for_running_trial(study, worker_pids, timeout):
    """(trial number, worker pid) of a trial one of the workers is running right now. Either
    worker may be the first one mid-trial: on a loaded machine one of them can start late."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for t in study.get_trials(deepcopy=False):
            pid = t.user_attrs.get("worker", "").split(":")[-1]
            if t.state.name == "RUNNING" and pid in worker_pids and \
                    t.intermediate_values:  # mid-trial: at least one epoch reported
                return t.number, pid
        time.sleep(0.2)
    raise AssertionError(f"workers {sorted(worker_pids)} ran no trial within {timeout} s")


def _kill_one_and_finish(commands, study, n_trials, timeout):
    workers = [subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for cmd in commands]
    try:
        by_pid = {str(w.pid): w for w in workers}
        killed_trial, pid = _wait_for_running_trial(study, set(by_pid), timeout)
        victim = by_pid.pop(pid)
        survivor, = by_pid.values()
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        out, _ = survivor.communicate(timeout=timeout)
        assert survivor.returncode == 0, out
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    trials = {t.number: t for t in study.get_trials()}
    assert trials[killed_trial].state.name == "FAIL"  # marked by the survivor's heartbeat check
    assert not [t for t in trials.values() if t.state.name == "RUNNING"]
    finished = [t for t in trials.values() if t.state.name in FINISHED]
    assert len(finished) == n_trials  # exactly the budget: no overshoot by the second worker
    # a trial that lost the race for the last place was marked FAIL before it trained
    assert all(t.state.name == "FAIL" and not t.intermediate_values
               for t in trials.values() if t.user_attrs.get("over_budget"))
    workers_seen = {t.user_attrs["worker"].split(":")[-1] for t in trials.values()}
    assert {str(victim.pid), str(survivor.pid)} <= workers_seen  # both worked on the study
    return trials, killed_trial


def test_two_local_workers_share_a_sqlite_study_and_survive_a_kill(tmp_path):
    from hpo_worker import worker_config
    from datadiet.hpo.study import open_study
    url = f"sqlite:///{tmp_path}/shared.db"
    n = 4
    cmd = [sys.executable, os.path.join(ROOT, "tests", "hpo_worker.py"), url, str(tmp_path), str(n)]
    study = open_study(worker_config(url, n), str(tmp_path))
    _kill_one_and_finish([cmd, cmd], study, n, timeout=60)


def test_two_sqlite_workers_run_exactly_n_trials(tmp_path):
    from hpo_worker import worker_config
    from datadiet.hpo.study import open_study
    url = f"sqlite:///{tmp_path}/shared.db"
    n = 3  # odd: the two workers race for the last place
    cmd = [sys.executable, os.path.join(ROOT, "tests", "hpo_worker.py"), url, str(tmp_path), str(n)]
    workers = [subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    for w in workers:
        out, _ = w.communicate(timeout=120)
        assert w.returncode == 0, out
    trials = open_study(worker_config(url, n), str(tmp_path)).get_trials()
    finished = [t for t in trials if t.state.name in FINISHED]
    assert len(finished) == n and all(len(t.intermediate_values) > 0 for t in finished)
    for t in trials:  # the rest lost the race for a place and never trained
        assert t.state.name in FINISHED or (t.user_attrs.get("over_budget")
                                            and not t.intermediate_values)


@pytest.mark.skipif(not POSTGRES, reason="DATADIET_TEST_POSTGRES_URL is unset: no PostgreSQL "
                    "server to test against (CI starts one with .ci/postgres.sh)")
def test_two_tune_jobs_share_a_postgres_study_and_survive_a_kill(tmp_path):
    from datadiet.hpo.study import open_study
    from tiny_tune_config import tiny_tune_config
    name = f"workers_{os.getpid()}_{int(time.time())}"  # a fresh study on a shared server
    n = 3
    overrides = [f"--config.hpo.storage={POSTGRES}", f"--config.hpo.study_name={name}",
                 f"--config.hpo.n_trials={n}", "--config.hpo.heartbeat_seconds=1",
                 "--config.hpo.grace_seconds=4", "--config.hpo.retrain=False"]
    commands = [[sys.executable, os.path.join(ROOT, "train.py"),
                 f"--config={os.path.join(ROOT, 'tests', 'tiny_tune_config.py')}",
                 f"--workdir={tmp_path / f'worker{i}'}"] + overrides for i in range(2)]
    config = tiny_tune_config()
    config.hpo.update(storage=POSTGRES, study_name=name, n_trials=n, heartbeat_seconds=1,
                      grace_seconds=4, retrain=False)
    study = open_study(config, str(tmp_path))
    try:
        trials, killed = _kill_one_and_finish(commands, study, n, timeout=240)
        # the survivor's trials are ordinary run directories of the tune job (either worker
        # may be the one killed: its workdir holds the killed trial, WORKDIR/trials/<n>)
        def workdir(t):
            return os.path.dirname(os.path.dirname(t.user_attrs["run_dir"]))

        survivor_runs = [t.user_attrs["run_dir"] for t in trials.values()
                         if t.state.name in FINISHED and workdir(t) != workdir(trials[killed])]
        assert survivor_runs
        for run in survivor_runs:
            status = json.load(open(os.path.join(run, "status.json")))["state"]
            assert status in ("done", "pruned")
    finally:
        optuna.delete_study(study_name=name, storage=POSTGRES)
