"""data.pipeline = "host" against the device path: the same config gives the same batches, so
the same losses, test accuracy, scores and coreset selections; memory-mapped npy files; bad
files fail before anything compiles; 2 forced CPU devices."""
import gc
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from datadiet.config import validate_config
from datadiet.data import load_dataset
from datadiet.jobs.scores import compute_scores
from datadiet.jobs.train import train_and_evaluate
from tiny_config import tiny_config

# Both paths run the same jitted step on the same batch values; only where the batch is
# gathered differs. Seen: bitwise equal; allowed: float32 rounding.
RTOL, ATOL = 1e-5, 1e-6
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _events(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _run_both(config, tmp_path):
    """{pipeline: [(split, epoch, loss, accuracy) per logged event]} of one config."""
    out = {}
    for pipeline in ("device", "host"):
        c = config.copy_and_resolve_references()
        c.data.pipeline = pipeline
        workdir = str(tmp_path / pipeline)
        train_and_evaluate(c, workdir)
        out[pipeline] = [(e["split"], e["epoch"], e["loss"], e["accuracy"])
                         for e in _events(workdir) if "kind" not in e]
    return out


def _assert_same_events(out):
    device, host = out["device"], out["host"]
    assert [e[:2] for e in device] == [e[:2] for e in host]
    np.testing.assert_allclose([e[2:] for e in host], [e[2:] for e in device], RTOL, ATOL)


def _write_npy_dir(path, arrays):
    os.makedirs(path, exist_ok=True)
    for k, v in arrays.items():
        np.save(os.path.join(path, k + ".npy"), v)
    return str(path)


@pytest.fixture
def fashion_npy(shared_data, tmp_path):
    """A short Fashion-MNIST subset (512 train, 200 test, [N, 28, 28] uint8) as an npy_dir."""
    with np.load(os.path.join(shared_data, "fashion_mnist.npz")) as f:
        arrays = {"x_train": f["x_train"][:512], "y_train": f["y_train"][:512],
                  "x_test": f["x_test"][:200], "y_test": f["y_test"][:200]}
    return _write_npy_dir(tmp_path / "fashion", arrays)


def test_host_matches_device_on_digits(tmp_path):
    _assert_same_events(_run_both(tiny_config(epochs=2.0), tmp_path))


def test_host_matches_device_on_fashion_mnist_npy_dir(fashion_npy, tmp_path):
    c = tiny_config(epochs=2.0, batch_size=128)
    c.data.source, c.data.name, c.data.path = "npy_dir", "fashion_mnist", fashion_npy
    c.data.augment = "crop_flip"  # augmentation on device, the same keys on both paths
    _assert_same_events(_run_both(c, tmp_path))


def test_npy_dir_is_memory_mapped_on_host_and_not_on_device(fashion_npy, tmp_path):
    c = tiny_config(epochs=1.0)
    c.data.source, c.data.name, c.data.path = "npy_dir", "fashion_mnist", fashion_npy
    c.data.pipeline = "host"
    ds = load_dataset(c.data, 0)
    assert isinstance(ds.x_train, np.memmap) and isinstance(ds.x_test, np.memmap)
    c.data.pipeline = "device"
    assert not isinstance(load_dataset(c.data, 0).x_train, np.memmap)
    # trained on the host path, no device array it made holds the training (or test) set (the
    # arrays other tests of this process left alive do not count: jax.live_arrays is global)
    c.data.pipeline = "host"
    gc.collect()
    before = {id(a) for a in jax.live_arrays()}
    train_and_evaluate(c, str(tmp_path / "run"), dataset=ds)
    gc.collect()
    shapes = {a.shape for a in jax.live_arrays() if id(a) not in before}
    assert ds.x_train.shape not in shapes and ds.x_train.shape + (1,) not in shapes
    assert (512,) not in shapes and ds.x_test.shape + (1,) not in shapes


def test_scores_job_same_on_both_paths(tmp_path):
    scores = {}
    for pipeline in ("device", "host"):
        c = tiny_config(epochs=1.0)
        c.job, c.data.pipeline = "scores", pipeline
        c.scores.names, c.scores.epochs, c.scores.num_seeds = (
            ("el2n", "grand", "loss", "forgetting", "input_norm"), (0, 1), 1)
        c.scores.embeddings = 1
        scores[pipeline] = compute_scores(c, str(tmp_path / pipeline))
        emb = np.load(tmp_path / pipeline / "scores" / "embeddings_epoch1.npy")
        scores[pipeline]["embeddings"] = emb
    assert sorted(scores["host"]) == sorted(scores["device"])
    for name, values in scores["device"].items():
        assert values.shape[0] == 1437  # digits' training set, source order
        np.testing.assert_allclose(scores["host"][name], values, RTOL, ATOL, err_msg=name)


def test_coreset_selection_same_on_both_paths(tmp_path):
    c = tiny_config(epochs=3.0)
    c.coreset.method, c.coreset.fraction, c.coreset.every_epochs = "gradmatch", 0.3, 1
    c.coreset.warm_start, c.coreset.chunk_size = 1 / 3, 256
    out = _run_both(c, tmp_path)
    _assert_same_events(out)
    for epoch in (1, 2):
        name = f"selections/epoch_{epoch:04d}.npz"
        with np.load(tmp_path / "device" / name) as d, np.load(tmp_path / "host" / name) as h:
            np.testing.assert_array_equal(h["ids"], d["ids"])
            np.testing.assert_allclose(h["weights"], d["weights"], 1e-4, 1e-6)


def test_bad_pipeline_and_sampling_combination_rejected():
    c = tiny_config()
    c.data.pipeline = "disk"
    with pytest.raises(ValueError, match=r"data.pipeline='disk' is not one of \['device', 'host'\]"):
        validate_config(c)
    c.data.pipeline, c.sampling.method = "host", "uniform"
    with pytest.raises(ValueError, match="data.pipeline='host' does not support sampling.method"):
        validate_config(c)


def _good_arrays(n=40):
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 255, (n, 8, 8), np.uint8),
            "y_train": rng.integers(0, 3, n), "x_test": rng.integers(0, 255, (10, 8, 8), np.uint8),
            "y_test": rng.integers(0, 3, 10)}


@pytest.mark.parametrize("change,message", [
    ({"y_test": None}, r"lacks files \[.*y_test.npy"),
    ({"y_train": np.zeros(39, np.int64)}, r"x_train.npy has shape \(40, 8, 8\) but .*y_train.npy "
                                          r"has shape \(39,\)"),
    ({"x_train": np.zeros(40, np.uint8)}, r"x_train.npy has shape \(40,\)"),
    ({"x_test": b"not a numpy file"}, r"x_test.npy is not a readable .npy file"),
])
def test_bad_npy_dir_fails_before_compute(tmp_path, change, message):
    arrays = {**_good_arrays(), **change}
    path = tmp_path / "data"
    os.makedirs(path)
    for k, v in arrays.items():
        if isinstance(v, bytes):
            (path / (k + ".npy")).write_bytes(v)
        elif v is not None:
            np.save(path / (k + ".npy"), v)
    c = tiny_config(batch_size=8)  # 40 examples
    c.data.source, c.data.name, c.data.path, c.data.pipeline = "npy_dir", "x", str(path), "host"
    with pytest.raises(ValueError, match=message):
        train_and_evaluate(c, str(tmp_path / "run"))
    run = tmp_path / "run"
    assert not (run / "checkpoints").exists()  # nothing trained
    # refused by the config check (it reads the files' headers) before the run directory
    # exists, or when the data loads: either way the directory is not claimed
    assert not run.exists() or json.load(open(run / "status.json"))["state"] == "failed"


TWO_DEVICES = """
import json, sys, tempfile
sys.path.insert(0, {tests!r})
import jax
from tiny_config import tiny_config
from datadiet.jobs.train import train_and_evaluate
assert jax.device_count() == 2, jax.devices()
out = {{}}
for pipeline in ("device", "host"):
    c = tiny_config(epochs=2.0)
    c.data.pipeline = pipeline
    d = tempfile.mkdtemp()
    train_and_evaluate(c, d)
    out[pipeline] = [(e["split"], e["epoch"], e["loss"], e["accuracy"])
                     for e in map(json.loads, open(d + "/metrics.jsonl"))]
print("RESULT" + json.dumps(out))
"""


def test_two_forced_cpu_devices_host_matches_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT}
    script = TWO_DEVICES.format(tests=os.path.join(ROOT, "tests"))
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    _assert_same_events(json.loads(line[len("RESULT"):]))


def test_tfds_images_read_by_id_on_host(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    c = tiny_config(epochs=2.0, batch_size=16, eval_batch_size=16)
    c.data.source, c.data.name, c.data.num_classes = "tfds", "cifar10", 10
    c.model.name, c.model.kwargs = "mlp", {"hidden": (32,)}
    with tfds.testing.mock_data(num_examples=40):
        c.data.pipeline = "host"
        lazy = load_dataset(c.data, 0)
        assert type(lazy.x_train).__name__ == "LazyImages"  # not read whole
        c.data.pipeline = "device"
        np.testing.assert_array_equal(lazy.x_train[np.arange(40)], load_dataset(c.data, 0).x_train)
        out = _run_both(c, tmp_path)
    _assert_same_events(out)
