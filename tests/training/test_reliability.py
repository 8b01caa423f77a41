"""Issue 14's cases, each reproduced as a user met it: divergence, two jobs on one directory,
SIGTERM, fields checked up front, a failed run's directory, stray labels, the command line."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT
from tiny_config import tiny_config
from datadiet.config import default_config, validate_config
from datadiet.data import load_dataset
from datadiet.data.sources import DIGITS_SIZES, load_digits
from datadiet.jobs.train import train_and_evaluate
from datadiet.training import logging as run_logging
from datadiet.training import rundir as rundir_lib
from datadiet.training.finite import Diverged
from datadiet.training.rundir import RunDir
from datadiet.training.runlock import RunDirLocked


def _strict_lines(path):
    """metrics.jsonl parsed as strict JSON (Python's json accepts NaN unless told not to)."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    with open(path) as f:
        return [json.loads(line, parse_constant=refuse) for line in f]


def _status(workdir):
    with open(os.path.join(workdir, "status.json")) as f:
        return json.load(f)


def _train_cmd(workdir, *overrides, config="tests/tiny_config.py"):
    return [sys.executable, os.path.join(ROOT, "train.py"), f"--config={os.path.join(ROOT, config)}",
            f"--workdir={workdir}", *overrides]


# 1. divergence
@pytest.mark.parametrize("sampling, pipeline", [("none", "device"), ("plb", "device"),
                                                ("none", "host")],
                         ids=["epochs", "streaming", "host_pipeline"])
def test_divergence_stops_the_run_naming_the_step(tmp_path, sampling, pipeline):
    c = tiny_config(epochs=2.0)
    c.optim.name, c.optim.lr, c.sampling.method = "sgd", 1e6, sampling
    c.data.pipeline = pipeline
    with pytest.raises(Diverged, match=r"diverged at step \d+ \(epoch 1\): the (train loss|"
                                       r"parameter norm) is not finite"):
        train_and_evaluate(c, str(tmp_path))
    status = _status(tmp_path)
    assert status["state"] == "failed" and "diverged at step" in status["error"]
    assert not os.path.exists(tmp_path / "metrics.jsonl") or _strict_lines(
        tmp_path / "metrics.jsonl") == []  # nothing of the diverged epoch was logged
    assert not os.listdir(tmp_path / "checkpoints")  # nor checkpointed


def test_the_first_nonfinite_step_and_quantity_are_named():
    from datadiet.training.finite import check_block
    flags = np.ones((5, 2), bool)
    check_block(flags, 100, 3)  # all finite: nothing raised
    flags[3, 1] = False  # the parameters after step 4 of the block
    flags[4, 0] = False
    with pytest.raises(Diverged, match=r"at step 104 \(epoch 4\): the parameter norm"):
        check_block(flags, 100, 3)


def test_nonfinite_inputs_are_refused_when_the_data_loads(tmp_path):
    x = np.random.default_rng(0).random((40, 4, 4, 1)).astype(np.float32)
    x[17, 2, 1, 0] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, x_train=x, y_train=np.arange(40) % 4, x_test=x[:8] * 0,
             y_test=np.arange(8) % 4)
    cfg = default_config().data
    cfg.source, cfg.path, cfg.name = "npz", str(path), "mystery"
    with pytest.raises(ValueError, match="x_train from source 'npz' holds a NaN or infinite "
                                         "value at example 17"):
        load_dataset(cfg, 0)


def test_metrics_lines_stay_strict_json(tmp_path):
    run = RunDir(str(tmp_path), tiny_config(), default_config())
    run.log(step=1, split="test", loss=float("nan"), accuracy=float("inf"), extra=[float("-inf")])
    assert _strict_lines(tmp_path / "metrics.jsonl") == [
        {"step": 1, "split": "test", "loss": None, "accuracy": None, "extra": [None]}]


# 2. one job per run directory
def _hold_lock(workdir):
    """A live process holding workdir's lock (as a running job would)."""
    code = ("import sys, time; from datadiet.training import runlock; "
            "runlock.acquire(sys.argv[1], lambda: None); print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, os.path.join(workdir, "lock")],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_job_on_a_directory_fails_at_once_and_a_dead_holder_is_taken_over(tmp_path):
    workdir = str(tmp_path)
    holder = _hold_lock(workdir)
    try:
        started = time.time()
        with pytest.raises(RunDirLocked, match=rf"in use by pid {holder.pid} on host"):
            train_and_evaluate(tiny_config(epochs=1.0), workdir)
        assert time.time() - started < 10  # at once: nothing was loaded or trained
        assert not os.path.exists(os.path.join(workdir, "metrics.jsonl"))
    finally:
        holder.kill()
        holder.wait()
    with pytest.warns(UserWarning, match="took over the stale lock"):
        final = train_and_evaluate(tiny_config(epochs=1.0), workdir)
    assert len(_strict_lines(os.path.join(workdir, "metrics.jsonl"))) == 2  # once, not twice
    assert final["test"]["epoch"] == 1 and not os.path.exists(os.path.join(workdir, "lock"))


def test_two_commands_at_once_on_one_directory(tmp_path):
    workdir = str(tmp_path / "run")
    first = subprocess.Popen(_train_cmd(workdir), cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(workdir, "lock")) and time.time() < deadline:
            time.sleep(0.05)
        second = subprocess.run(_train_cmd(workdir), cwd=ROOT, capture_output=True, text=True)
        assert second.returncode == 2 and "Traceback" not in second.stderr
        last = second.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and f"in use by pid {first.pid}" in last
    finally:
        assert first.wait(timeout=180) == 0
    lines = _strict_lines(os.path.join(workdir, "metrics.jsonl"))
    assert len(lines) == 2 * 6  # 6 epochs, train + test each, once
    assert _status(workdir)["state"] == "done"


# 4. SIGTERM: status, checkpoint, exit status, resume
def test_sigterm_marks_the_run_preempted_and_a_rerun_resumes(tmp_path):
    reference, stopped = str(tmp_path / "ref"), str(tmp_path / "stopped")
    subprocess.run(_train_cmd(reference), check=True, capture_output=True, cwd=ROOT)
    proc = subprocess.Popen(_train_cmd(stopped), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    metrics = os.path.join(stopped, "metrics.jsonl")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(metrics) and sum(1 for _ in open(metrics)) >= 3:
            break
        time.sleep(0.01)
    status = _status(stopped)
    assert status["state"] == "running" and status["pid"] == proc.pid
    assert {"host", "started", "heartbeat"} <= status.keys()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in err and "rerun the same command" in err
    status = _status(stopped)
    assert status["state"] == "preempted" and "SIGTERM" in status["error"]
    assert os.listdir(os.path.join(stopped, "checkpoints"))
    assert not os.path.exists(os.path.join(stopped, "lock"))
    subprocess.run(_train_cmd(stopped), check=True, capture_output=True, cwd=ROOT)
    keys = ("step", "epoch", "split", "loss", "accuracy")
    assert [{k: e[k] for k in keys} for e in _strict_lines(metrics)] == [
        {k: e[k] for k in keys} for e in _strict_lines(os.path.join(reference, "metrics.jsonl"))]
    assert _status(stopped)["state"] == "done"


def test_a_stop_finishes_the_epoch_only_when_its_rest_fits_in_the_grace_time(monkeypatch):
    from datadiet.training import preemption
    preemption.check(5, 10, time.time() - 100)  # no signal: nothing happens
    monkeypatch.setattr(preemption, "_received", [signal.SIGTERM])
    monkeypatch.setattr(preemption, "GRACE_SECONDS", 15.0)
    preemption.check(5, 10, time.time() - 1.0)  # 5 steps at 0.2 s: 1 s left, it finishes
    with pytest.raises(preemption.Preempted, match="SIGTERM") as stopped:
        preemption.check(5, 10, time.time() - 100.0)  # 100 s left: it stops now
    assert stopped.value.exit_code == 143
    with pytest.raises(preemption.Preempted):
        preemption.check()  # between epochs (the driver): always


def test_the_heartbeat_is_refreshed_while_running(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir_lib, "HEARTBEAT_SECONDS", 0.05)
    run = RunDir(str(tmp_path), tiny_config(), default_config())
    with run.active():
        first = run.status()["heartbeat"]
        time.sleep(0.5)
        assert run.status()["heartbeat"] > first and run.status()["state"] == "running"
        run.set_status("done")
    assert run.status()["state"] == "done" and run.status()["pid"] == os.getpid()


def _leave_running(path, holder, heartbeat):
    """What a job killed outright leaves: status "running" and its lock file."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "status.json"), "w") as f:
        json.dump({"state": "running", **holder, "heartbeat": heartbeat}, f)
    with open(os.path.join(path, "lock"), "w") as f:
        json.dump(holder, f)


def test_a_running_status_whose_job_is_gone_reads_aborted(tmp_path):
    import socket
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that existed on this host and no longer does
    here, now = socket.gethostname(), time.time()
    cases = {  # (lock holder, heartbeat) -> the state a reader sees
        "dead_pid": ({"pid": dead.pid, "host": here, "started": now}, now, "aborted"),
        "live_pid": ({"pid": os.getppid(), "host": here, "started": now}, now, "running"),
        "other_host_silent": ({"pid": 1, "host": "elsewhere", "started": now - 3600},
                              now - 2 * rundir_lib.runlock.STALE_SECONDS, "aborted"),
        "other_host_beating": ({"pid": 1, "host": "elsewhere", "started": now - 3600},
                               now - 1.0, "running"),
    }
    for name, (holder, heartbeat, expected) in cases.items():
        _leave_running(str(tmp_path / name), holder, heartbeat)
        status = rundir_lib.read_status(str(tmp_path / name))
        assert status["state"] == expected, name
        if expected == "aborted":
            assert f"pid {holder['pid']}" in status["error"] and "rerun" in status["resume"]
    os.remove(tmp_path / "live_pid" / "lock")  # "running" with no lock: its holder is gone
    assert rundir_lib.read_status(str(tmp_path / "live_pid"))["state"] == "aborted"
    assert rundir_lib.read_status(str(tmp_path / "none")) == {}


# 5. every field checked before compute
@pytest.mark.parametrize("overrides, message", [
    ({"coreset.method": "gradmatch", "coreset.target": "val", "coreset.val_fraction": 0.0},
     r"coreset.val_fraction=0.0 must be in \(0, 1\) with coreset.target='val'"),
    ({"coreset.method": "gradmatch", "coreset.target": "val", "coreset.val_fraction": 1.5},
     r"coreset.val_fraction=1.5 must be in \(0, 1\)"),
    ({"coreset.method": "gradmatch", "coreset.target": "val", "coreset.val_fraction": 0.0003},
     r"coreset.val_fraction=0.0003 holds out 0 of the 1437 training examples"),
    ({"seed": -3}, r"seed=-3 must be a whole number in \[0, 2147483647\]"),
    ({"prune.seed": -2}, r"prune.seed=-2 must be a whole number in \[-1, "),
    ({"prune.method": "random", "prune.keep": 0.0001},
     r"prune.keep=0.0001 keeps no example of the 1437 training examples"),
    ({"coreset.method": "random", "coreset.fraction": 0.0001},
     r"coreset.fraction=0.0001 selects no example of the 1437"),
    ({"train.batch_size": 100000},
     r"train.batch_size=100000 is larger than the 1437 training examples .*accepted: 1..1437"),
    ({"data.source": "npz", "data.path": "/no/such.npz"}, r"data.path='/no/such.npz' does not exist"),
    ({"model.kwargs": {"width": "8"}}, r"model.kwargs.width='8' must be a int like its default"),
])
def test_fields_are_checked_up_front(overrides, message):
    c = tiny_config()
    for key, value in overrides.items():
        section, _, field = key.rpartition(".")
        target = c
        for part in section.split(".") if section else []:
            target = target[part]
        target[field] = value
    with pytest.raises(ValueError, match=message):
        validate_config(c)


def test_digits_sizes_are_the_loaded_ones():
    arrays = load_digits(None)
    assert (len(arrays["y_train"]), len(arrays["y_test"])) == DIGITS_SIZES


# 6. a failed run does not claim its directory; logging fields change no result
def test_a_run_that_failed_before_its_first_checkpoint_does_not_claim_the_directory(tmp_path):
    bad = tiny_config(epochs=1.0)
    bad.optim.name, bad.optim.lr = "sgd", 1e6
    with pytest.raises(Diverged):
        train_and_evaluate(bad, str(tmp_path))
    with pytest.warns(UserWarning, match="failed before its first checkpoint; this run replaces"):
        final = train_and_evaluate(tiny_config(epochs=1.0), str(tmp_path))
    assert final["test"]["epoch"] == 1
    other = tiny_config(epochs=1.0)
    other.optim.lr = 0.01  # a finished run is claimed: a different config is refused
    with pytest.raises(rundir_lib.RunDirConflict, match=r"fields \['optim.lr'\]"):
        train_and_evaluate(other, str(tmp_path))
    logging_only = tiny_config(epochs=1.0)
    logging_only.log.progress, logging_only.log.tensorboard = True, True
    assert train_and_evaluate(logging_only, str(tmp_path)) == final  # the same run


# 7. stray labels
def _digits_npz(tmp_path, labels_fn):
    arrays = load_digits(None)
    arrays["y_train"] = labels_fn(arrays["y_train"].copy())
    path = tmp_path / "digits.npz"
    np.savez(path, **arrays)
    cfg = default_config().data
    cfg.source, cfg.path = "npz", str(path)
    return cfg


def test_a_stray_label_is_an_error_not_a_new_class(tmp_path):
    def stray(y):
        y[5] = 12
        return y
    with pytest.raises(ValueError, match=r"not contiguous: they reach 12 but classes \[10, 11\] "
                                         "have no example"):
        load_dataset(_digits_npz(tmp_path, stray), 0)


def test_the_inferred_class_count_is_named(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        ds = load_dataset(_digits_npz(tmp_path, lambda y: y), 0)
    assert ds.num_classes == 10 and "inferred 10 classes" in caplog.text


# 9. the command line
def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd)


def test_command_line_errors_are_one_line(tmp_path):
    workdir = str(tmp_path / "w")
    cases = [
        (["--config.trian.batch_size=3"], r"^error: --config.trian.batch_size: no such config "
                                          r"field .*did you mean \"train\""),
        (["--config.seed=-3"], r"^error: seed=-3 must be a whole number"),
        (["--config.model.kwargs.widht=8"], r"^error: model.kwargs.widht: unknown option for "
                                            r"model.name='small_cnn'; accepted: \['hidden', 'width'\]"),
    ]
    for overrides, pattern in cases:
        out = _cli(*_train_cmd(workdir, *overrides)[1:])
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert "Traceback" not in out.stderr, out.stderr
        assert re.search(pattern, lines[-1], re.IGNORECASE), lines[-1]
    assert not os.path.exists(workdir)  # nothing was written


def test_corrupt_npz_error_names_the_path(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"PK\x03\x04 this is not a zip")
    cfg = default_config().data
    cfg.source, cfg.path = "npz", str(path)
    with pytest.raises(ValueError, match=f"data.path: '{path}' could not be read"):
        load_dataset(cfg, 0)
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match=f"data.path: '{path}'"):
        load_dataset(cfg, 0)


def test_model_kwargs_can_be_given_on_the_command_line(tmp_path):
    workdir = str(tmp_path / "w")
    out = _cli(*_train_cmd(workdir, "--config.model.kwargs.width=4", "--config.train.epochs=1")[1:])
    assert out.returncode == 0, out.stderr
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["model"]["kwargs"] == {"width": 4}


def test_help_lists_the_config_fields_and_the_experiments_flags():
    out = _cli("train.py", "--help")
    assert "train.batch_size = 128" in out.stdout and "coreset.candidate_fraction = 1.0" in out.stdout
    out = _cli("-m", "experiments.pruning", "--help")
    assert "--config:" in out.stdout and "--workdir:" in out.stdout


def test_the_progress_bar_shows_no_test_accuracy_before_the_first_evaluation():
    class Bar:
        def set_postfix(self, **shown):
            self.shown = shown
    bar = Bar()
    run_logging.show_progress(bar, {"loss": 1.25}, {})
    assert bar.shown == {"loss": "1.250"}
    run_logging.show_progress(bar, {"loss": 1.0}, {"test": {"accuracy": 0.5}})
    assert bar.shown == {"loss": "1.000", "test_acc": "0.500"}
