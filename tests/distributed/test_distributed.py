"""Real multi-process runs: 2 processes x 1 CPU device (started by `python -m datadiet.launch`,
joined by jax.distributed over gloo) against 1 process x 2 forced host devices, on the tiny jobs
of jobs.py: the epoch loop (device and host pipelines), the streaming loop (plb), the scores
job (EL2N, GraNd, forgetting, AUM, Dyn-Unc, embeddings), a GRAD-MATCH selection, one tuning
trial (+ its retrain), and LMC children spawned from a parent with their error barrier. Both
runs are the same SPMD program on a 2-device mesh, so results agree to float rounding: RTOL below. Only
process 0 writes: each run directory holds exactly the 1-process run's files and metrics.jsonl
lines. A SIGKILLed process stops the other (JAX's heartbeat), and the same command then resumes
to the same result.
"""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from datadiet.distributed import ENV_ADDRESS, ENV_COUNT, ENV_ID, initialize
from datadiet.training import rundir

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
JOBS = ["oddbatch", "epochs", "epochs_host", "stream", "scores", "gradmatch", "tune", "lmc"]
RTOL, ATOL = 1e-5, 1e-6  # 2 processes vs 1 process x 2 devices: float rounding only
TIME_FIELDS = ("time", "train_time", "selection_time", "updated")
TIMEOUT = 900  # a run that hangs fails the test instead of the suite


# Eigen's intra-op threads off: three or more processes share the 2 cores here, and each
# would otherwise run one thread per core. XLA's backend optimisation off: these tiny jobs
# are compile-bound (a 2-process launch of all JOBS took 103 s of CPU with it, 73 s without),
# and both sides of every comparison are compiled with the same flags.
XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false --xla_backend_optimization_level=0"


def env(xla_flags=XLA_FLAGS, **extra):
    """The subprocesses' environment. It keeps conftest.py's JAX_COMPILATION_CACHE_DIR: every
    launch shares the session's persistent compilation cache (process 0 writes it), so the full
    launch reuses the killed launch's programs."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("DATADIET_")}
    out.update(JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, DATADIET_HEARTBEAT_TIMEOUT="10",
               XLA_FLAGS=xla_flags, **extra)
    return out


def launch_cmd(outdir, *names, grace=10):
    return [sys.executable, "-m", "datadiet.launch", "-n", "2", "--grace", str(grace), "--",
            sys.executable, os.path.join(HERE, "jobs.py"), outdir, *names]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"two": dir, "one": dir, "log": the launch's output, "killed": the killed launch's
    output and status}: the jobs, run both ways at once. The 2-process "epochs" run is first
    killed (process 1 SIGKILLs itself at epoch 2), then resumed by the full launch, so every
    test of its files and metrics also checks the resumed run."""
    two, one = (str(tmp_path_factory.mktemp(n)) for n in ("two_processes", "one_process"))
    single = subprocess.Popen([sys.executable, os.path.join(HERE, "jobs.py"), one, *JOBS],
                              env=env(XLA_FLAGS + " --xla_force_host_platform_device_count=2"),
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # grace 60: the survivor must exit by itself (heartbeat 10 s), not be terminated by launch
    killed = subprocess.run(launch_cmd(two, "epochs", grace=60), cwd=ROOT, capture_output=True,
                            text=True, timeout=TIMEOUT, env=env(DATADIET_TEST_KILL_EPOCH="2"))
    with open(os.path.join(two, "epochs", "status.json")) as f:
        raw = json.load(f)["state"]
    killed = {"returncode": killed.returncode, "log": killed.stdout, "raw_state": raw,
              "read_state": rundir.read_status(os.path.join(two, "epochs"))["state"],
              "events": events(os.path.join(two, "epochs", "metrics.jsonl"))}
    multi = subprocess.run(launch_cmd(two, *JOBS), env=env(), cwd=ROOT, capture_output=True,
                           text=True, timeout=TIMEOUT)
    single_out = single.communicate(timeout=TIMEOUT)[0].decode()
    assert single.returncode == 0, single_out[-3000:]
    assert multi.returncode == 0, multi.stdout[-3000:]
    return {"two": two, "one": one, "log": multi.stdout, "killed": killed}


def files(root):
    return sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "**"),
                                                              recursive=True)
                  if os.path.isfile(p) and "/checkpoints/" not in p and "/jax_cache/" not in p)


def events(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def assert_close_events(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert sorted(x) == sorted(y)
        for k in x:
            if k in TIME_FIELDS:
                continue
            if isinstance(x[k], float):
                np.testing.assert_allclose(x[k], y[k], rtol=RTOL, atol=ATOL, err_msg=k)
            else:
                assert x[k] == y[k], k


def test_batch_size_not_divisible_fails_before_compute(runs):
    assert "oddbatch: train.batch_size=63 must be divisible by the 2 devices" in runs["log"]


@pytest.mark.parametrize("job", JOBS[1:])
def test_same_files_and_metrics_as_one_process(runs, job):
    two, one = os.path.join(runs["two"], job), os.path.join(runs["one"], job)
    assert files(two) == files(one)  # no file only a second process would write
    metrics = [f for f in files(one) if f.endswith("metrics.jsonl")]
    assert metrics
    for name in metrics:  # same events, none doubled
        assert_close_events(events(os.path.join(two, name)), events(os.path.join(one, name)))
    for name in files(one):
        if name.endswith(".npy"):
            a, b = np.load(os.path.join(two, name)), np.load(os.path.join(one, name))
            # scores near 0 (AUM margins) get an absolute tolerance on the score's own scale
            scale = float(np.max(np.abs(b))) if b.size else 0.0
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=max(ATOL, RTOL * scale), err_msg=name)
        if name == "barrier.json":  # the LMC children's error barrier
            with open(os.path.join(two, name)) as f, open(os.path.join(one, name)) as g:
                a, b = json.load(f), json.load(g)
            assert a["alphas"] == b["alphas"]
            np.testing.assert_allclose(a["errors"] + [a["barrier"]], b["errors"] + [b["barrier"]],
                                       rtol=RTOL, atol=ATOL)
        if name.endswith("status.json"):
            with open(os.path.join(two, name)) as f, open(os.path.join(one, name)) as g:
                assert json.load(f)["state"] == json.load(g)["state"]


def test_host_pipeline_gives_the_device_paths_metrics(runs):
    """Each of the 2 processes reads only its half of every batch from the host: the same
    batches as the replicated device path, so the same losses."""
    for procs in ("two", "one"):
        host = events(os.path.join(runs[procs], "epochs_host", "metrics.jsonl"))
        device = events(os.path.join(runs[procs], "epochs", "metrics.jsonl"))
        assert_close_events(host, device)


def test_tune_summary_same(runs):
    with open(os.path.join(runs["two"], "tune", "hpo.json")) as f:
        two = json.load(f)
    with open(os.path.join(runs["one"], "tune", "hpo.json")) as f:
        one = json.load(f)
    assert two["trials"] == one["trials"] == {"COMPLETE": 1}
    assert two["best_params"] == one["best_params"]
    np.testing.assert_allclose(two["retrain"]["test_accuracy"], one["retrain"]["test_accuracy"],
                               rtol=RTOL)


def test_killed_process_stops_the_other_and_the_run_resumes(runs):
    """The killed launch (see `runs`); its resumption is the 2-process "epochs" run, which
    test_same_files_and_metrics_as_one_process compares with the 1-process run."""
    killed = runs["killed"]
    log = killed["log"]
    assert killed["returncode"] != 0, log[-3000:]
    assert "[launch] process 1 exited with -9" in log, log[-3000:]
    assert "[launch] terminating" not in log, log[-3000:]
    survivor = "\n".join(line for line in log.splitlines() if line.startswith("[0]"))
    assert any(s in survivor for s in ("heartbeat", "detected fatal errors", "Gloo")), \
        survivor[-3000:]
    # The survivor, process 0 (the writer), either got a Python error from a collective
    # ("failed") or was aborted by jaxlib in C++, where no finally block runs: status.json
    # still says "running", and readers are told "aborted".
    assert (killed["raw_state"], killed["read_state"]) in {("failed", "failed"),
                                                           ("running", "aborted")}, killed
    # The rerun resumed instead of starting over: it kept the killed run's first events as
    # they were (wall times included), and ended with the uninterrupted run's events.
    resumed = events(os.path.join(runs["two"], "epochs", "metrics.jsonl"))
    kept = [e for e in killed["events"] if e in resumed]
    assert kept and kept == resumed[:len(kept)] and len(kept) < len(resumed), killed["events"]
    assert_close_events(resumed, events(os.path.join(runs["one"], "epochs", "metrics.jsonl")))


@pytest.mark.parametrize("variables, message", [
    ({ENV_ADDRESS: "127.0.0.1:1", ENV_COUNT: "2", ENV_ID: "2"}, f"{ENV_ID}=2 must be in"),
    ({ENV_ADDRESS: "127.0.0.1:1", ENV_COUNT: "2"}, f"['{ENV_ID}'] not set"),
    ({ENV_ADDRESS: "127.0.0.1:1", ENV_COUNT: "two", ENV_ID: "0"}, f"{ENV_COUNT}='two'"),
])
def test_bad_settings_fail_naming_them(monkeypatch, variables, message):
    for k, v in variables.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValueError) as e:  # raised before JAX is touched
        initialize()
    assert message in str(e.value)


def test_missing_process_fails_naming_the_count(tmp_path):
    """num_processes=2 but only process 0 ever joins: it stops at the init timeout, saying why."""
    code = "from datadiet import distributed; distributed.initialize()"
    from datadiet.launch import free_port
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env(**{ENV_ADDRESS: f"127.0.0.1:{free_port()}",
                                                  ENV_COUNT: "2", ENV_ID: "0",
                                                  "DATADIET_INIT_TIMEOUT": "3"}))
    assert done.returncode != 0
    assert f"{ENV_COUNT}=2 processes started" in done.stderr, done.stderr[-2000:]
