import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from analysis import tensorboard_history
from conftest import ROOT
from tiny_config import tiny_config
from datadiet.data import load_dataset
from datadiet.training import optim, rundir
from datadiet.training.durations import resolve_duration
from datadiet.jobs.train import train_and_evaluate
from datadiet.training.loop import build_model
from datadiet.training.rundir import RunDirConflict
from datadiet.training.state import create_state
from datadiet.training.step import make_batch_fn, make_train_step

METRIC_KEYS = ("step", "epoch", "split", "loss", "accuracy")


def _metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [{k: e[k] for k in METRIC_KEYS} for e in map(json.loads, f)]


def _step_fixture(config):
    dataset = load_dataset(config.data, config.seed)
    tx = optim.make_optimizer(config.optim, 10, 100)
    graphdef, state = create_state(build_model(config, dataset), tx)
    return dataset, graphdef, tx, state


def test_run_directory_contract(tmp_path):
    config = tiny_config()
    config.data.label_noise = 0.1
    final = train_and_evaluate(config, str(tmp_path))
    names = set(os.listdir(tmp_path))
    assert {"config.json", "metrics.jsonl", "status.json", "checkpoints", "label_noise.json"} <= names
    assert json.load(open(tmp_path / "status.json"))["state"] == "done"
    assert json.load(open(tmp_path / "config.json")) == json.loads(config.to_json_best_effort())
    events = _metrics(tmp_path)
    assert {e["split"] for e in events} == {"train", "test"}
    assert [e["epoch"] for e in events if e["split"] == "train"] == [1, 2, 3]
    assert final["test"]["step"] == 3 * 23  # ceil(1437 / 64) steps per epoch
    noise = json.load(open(tmp_path / "label_noise.json"))
    assert len(noise["ids"]) == round(0.1 * 1437)


def test_finished_run_is_not_overwritten(tmp_path):
    config = tiny_config(epochs=1.0)
    train_and_evaluate(config, str(tmp_path))
    before = open(tmp_path / "metrics.jsonl").read()
    train_and_evaluate(config, str(tmp_path))  # same command again: nothing happens
    assert open(tmp_path / "metrics.jsonl").read() == before
    config.optim.lr = 0.2
    with pytest.raises(RunDirConflict, match=r"different config \(fields \['optim.lr'\]\)"):
        train_and_evaluate(config, str(tmp_path))


def test_bad_field_fails_before_anything_is_written(tmp_path):
    config = tiny_config()
    config.model.name = "vgg"
    with pytest.raises(ValueError, match="model.name='vgg' is not one of"):
        train_and_evaluate(config, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run")


def test_same_seed_same_metrics(tmp_path):
    config = tiny_config(epochs=2.0)
    train_and_evaluate(config, str(tmp_path / "a"))
    train_and_evaluate(config, str(tmp_path / "b"))
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
    config.seed = 1
    train_and_evaluate(config, str(tmp_path / "c"))
    assert _metrics(tmp_path / "a") != _metrics(tmp_path / "c")


def _train_cmd(workdir, *overrides):
    return [sys.executable, os.path.join(ROOT, "train.py"),
            f"--config={os.path.join(ROOT, 'tests', 'tiny_config.py')}", f"--workdir={workdir}",
            *overrides]


# The epoch loop and the streaming loop run through the same driver: both resume exactly.
@pytest.mark.parametrize("overrides", [[], ["--config.sampling.method=plb"]],
                         ids=["epochs", "streaming"])
def test_killed_run_resumes_to_the_same_final_metrics(tmp_path, overrides):
    overrides = [*overrides, "--config.log.tensorboard=True"]
    reference, killed = str(tmp_path / "ref"), str(tmp_path / "killed")
    subprocess.run(_train_cmd(reference, *overrides), check=True, capture_output=True, cwd=ROOT)
    proc = subprocess.Popen(_train_cmd(killed, *overrides), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    metrics = os.path.join(killed, "metrics.jsonl")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # kill mid-run, after epoch 2 logged
        if os.path.exists(metrics) and sum(1 for _ in open(metrics)) >= 3:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.load(open(os.path.join(killed, "status.json")))["state"] == "running"
    assert rundir.read_status(killed)["state"] == "aborted"  # what readers are told
    assert len(_metrics(killed)) < len(_metrics(reference))  # it really was cut short
    subprocess.run(_train_cmd(killed, *overrides), check=True, capture_output=True, cwd=ROOT)
    assert _metrics(killed) == _metrics(reference)
    assert json.load(open(os.path.join(killed, "status.json")))["state"] == "done"
    # TensorBoard's history is complete too: every logged loss, once, at its step
    events = _metrics(killed)
    assert tensorboard_history.scalars(os.path.join(killed, "tb")) == tensorboard_history.scalars(
        os.path.join(reference, "tb"))
    for split in ("train", "test"):
        logged = {e["step"]: e["loss"] for e in events if e["split"] == split}
        shown = tensorboard_history.scalars(os.path.join(killed, "tb"))[f"{split}/loss"]
        assert shown.keys() == logged.keys()
        np.testing.assert_allclose([shown[s] for s in logged], list(logged.values()), rtol=1e-6)


def test_two_devices_give_the_same_losses_as_one(tmp_path):
    runs = {}
    for n in (1, 2):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
        workdir = str(tmp_path / f"dev{n}")
        out = subprocess.run(_train_cmd(workdir, "--config.train.epochs=2"), env=env,
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-2000:]
        runs[n] = _metrics(workdir)
    assert len(runs[1]) == len(runs[2])
    for a, b in zip(runs[1], runs[2]):
        assert (a["step"], a["split"]) == (b["step"], b["split"])
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=2e-4)


def test_train_step_compiles_once():
    config = tiny_config()
    dataset, graphdef, tx, state = _step_fixture(config)
    train_step, make_batch = make_train_step(graphdef, tx), make_batch_fn(dataset)
    images, labels = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    key = jax.random.key(0)
    for step in range(12):
        ids = jnp.arange(step * 64, step * 64 + 64).reshape(2, 32)
        weights = jnp.where(jnp.arange(64) < 64 - step, 1.0, 0.0).reshape(2, 32)
        batch, batch_weights = make_batch(images, labels, ids, weights, step % 2, key, step)
        state, _ = train_step(state, batch, batch_weights)
    assert int(state.step) == 12
    assert train_step._cache_size() == 1 and make_batch._cache_size() == 1


def test_zero_weight_examples_have_no_influence():
    """Replacing the images and labels of zero-weight examples leaves the update bit-identical
    (loss and BatchNorm statistics both ignore them)."""
    config = tiny_config()
    dataset, graphdef, tx, state = _step_fixture(config)
    train_step = make_train_step(graphdef, tx)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    weights = np.array([1.0, 0.5, 2.0, 1.0] * 2 + [0.0] * 8, np.float32)
    x2, y2 = x.copy(), y.copy()
    x2[8:] = rng.normal(size=(8, 8, 8, 1)) * 5
    y2[8:] = (y[8:] + 3) % 10
    copy = lambda s: jax.tree.map(jnp.array, s)
    s1, out1 = train_step(copy(state), {"x": x, "y": y}, weights)
    s2, out2 = train_step(copy(state), {"x": x2, "y": y2}, weights)
    assert float(out1["batch_loss"]) == float(out2["batch_loss"])
    for a, b in zip(jax.tree.leaves((s1.params, s1.batch_stats)),
                    jax.tree.leaves((s2.params, s2.batch_stats))):
        np.testing.assert_array_equal(a, b)
    # and they differ from an update where those examples count
    s3, _ = train_step(copy(state), {"x": x2, "y": y2}, np.ones(16, np.float32))
    assert not np.array_equal(jax.tree.leaves(s1.params)[0], jax.tree.leaves(s3.params)[0])


def test_iteration_matched_subsets_take_the_full_runs_steps():
    t = tiny_config(epochs=10.0).train
    full = resolve_duration(t, 1000, 1000)
    sub = resolve_duration(t, 100, 1000)
    assert full.total_steps == sub.total_steps == 10 * 16
    assert sub.epoch_starts[:3] == (0, 2, 4) and sub.num_epochs == 80
    assert sub.schedule_steps_per_epoch == 16
    t.iteration_matched = False
    assert resolve_duration(t, 100, 1000).total_steps == 20
    t.steps, t.epochs = 7, -1.0
    assert resolve_duration(t, 100, 1000).total_steps == 7


def test_reselected_subsets_have_epochs_of_their_own_size():
    t = tiny_config(epochs=4.0, batch_size=10).train
    d = resolve_duration(t, None, 1000, epoch_sizes=lambda n: [1000, 1000] + [95] * (n - 2))
    assert d.epoch_starts == (0, 100, 200, 210, 220) and d.schedule_steps_per_epoch == 10
    t.epochs = 2.5
    with pytest.raises(ValueError, match="whole number of epochs"):
        resolve_duration(t, None, 1000, epoch_sizes=lambda n: [10] * n)


def test_fields_added_later_at_their_default_do_not_orphan_a_run(tmp_path):
    from datadiet.config import default_config
    from datadiet.training.rundir import RunDir
    config = tiny_config()
    RunDir(str(tmp_path), config, default_config()).set_status("done")  # a finished run
    path = tmp_path / "config.json"
    old = json.load(open(path))
    del old["prune"]  # as written by a version of the code without the `prune` section
    json.dump(old, open(path, "w"))
    RunDir(str(tmp_path), config, default_config())  # the same run: prune is at its default
    config.prune.method = "random"
    with pytest.raises(RunDirConflict, match="prune"):
        RunDir(str(tmp_path), config, default_config())

