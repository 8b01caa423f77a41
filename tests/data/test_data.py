import os

import jax
import numpy as np
import pytest

from datadiet.data import Subset, augment, default_data_config, load_dataset
from datadiet.data.label_noise import corrupt_labels


def _npz(tmp_path, **overrides):
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.integers(0, 256, (50, 6, 6, 1), dtype=np.uint8),
                  y_train=np.arange(50) % 3, x_test=rng.integers(0, 256, (9, 6, 6, 1), dtype=np.uint8),
                  y_test=np.arange(9) % 3)
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = str(tmp_path / "d.npz")
    np.savez(path, **arrays)
    cfg = default_data_config()
    cfg.source, cfg.name, cfg.path = "npz", "toy", path
    return cfg, arrays


def test_npz_keeps_source_order(tmp_path):
    cfg, arrays = _npz(tmp_path)
    ds = load_dataset(cfg, seed=0)
    np.testing.assert_array_equal(ds.x_train, arrays["x_train"])
    np.testing.assert_array_equal(ds.y_train, arrays["y_train"])
    assert ds.num_classes == 3 and ds.input_shape == (6, 6, 1) and ds.augment == "none"
    flat = arrays["x_train"].reshape(-1).astype(np.float64)  # unknown name: own statistics
    np.testing.assert_allclose(ds.mean, [flat.mean()], rtol=1e-5)


def test_digits_matches_the_shared_copy(shared_data):
    ds = load_dataset(default_data_config(), seed=0)
    with np.load(os.path.join(shared_data, "sklearn_digits.npz")) as f:
        np.testing.assert_array_equal(ds.x_train, f["x_train"])
        np.testing.assert_array_equal(ds.y_train, f["y_train"])
        np.testing.assert_array_equal(ds.y_test, f["y_test"])
    assert (ds.n_train, len(ds.y_test), ds.num_classes) == (1437, 360, 10)


@pytest.mark.parametrize("field,value,message", [
    ("source", "hdf5", "data.source='hdf5' is not one of"),
    ("augment", "mixup", "data.augment='mixup' is not one of"),
    ("label_noise", 1.5, "data.label_noise=1.5"),
    ("path", "/nonexistent.npz", "data.path='/nonexistent.npz' does not exist"),
])
def test_bad_config_fields_are_named(tmp_path, field, value, message):
    cfg, _ = _npz(tmp_path)
    cfg[field] = value
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_dataset(cfg, seed=0)


def test_unknown_tfds_name():
    cfg = default_data_config()
    cfg.source, cfg.name = "tfds", "imagenet2012"
    with pytest.raises(ValueError, match="data.name='imagenet2012' is not a supported TFDS"):
        load_dataset(cfg, seed=0)


@pytest.mark.parametrize("override,message", [
    # 2-D arrays are tabular features or token ids now, so the bad shape is 5-D
    (dict(x_train=np.zeros((50, 6, 6, 1, 1), np.uint8)), "x_train .* has shape"),
    (dict(x_train=np.zeros((50, 6, 6, 1), np.int16)), "x_train has dtype int16"),
    (dict(y_train=np.full(50, 7)), r"y_test holds labels outside|y_train holds labels outside"),
    (dict(y_train=-np.ones(50, np.int64)), "y_train holds labels outside"),
    (dict(y_train=np.zeros(49, np.int64)), "x_train has 50 examples but y_train has 49"),
    (dict(y_test=None), "lacks arrays \\['y_test'\\]"),
    (dict(x_test=np.zeros((9, 5, 5, 1), np.uint8)), "x_train examples have shape"),
])
def test_bad_arrays_are_named(tmp_path, override, message):
    cfg, _ = _npz(tmp_path, **override)
    if "y_train" in override and override["y_train"].max() == 7:
        cfg.num_classes = 3
    with pytest.raises(ValueError, match=message):
        load_dataset(cfg, seed=0)


def test_bad_subsets():
    with pytest.raises(ValueError, match="non-empty"):
        Subset.of([], 10)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        Subset.of([3, 10], 10)
    with pytest.raises(ValueError, match="unique"):
        Subset.of([3, 3], 10)
    with pytest.raises(ValueError, match=">= 0"):
        Subset.of([1, 2], 10, weights=[1.0, -1.0])


def test_label_noise_records_what_it_changed():
    y = np.arange(1000) % 10
    new, record = corrupt_labels(y, 10, 0.1, seed=3)
    changed = np.flatnonzero(new != y)
    np.testing.assert_array_equal(changed, record["ids"])  # every recorded id really changed
    assert len(changed) == 100
    np.testing.assert_array_equal(y[changed], record["old_labels"])
    np.testing.assert_array_equal(new[changed], record["new_labels"])
    again, _ = corrupt_labels(y, 10, 0.1, seed=3)
    np.testing.assert_array_equal(new, again)


def test_label_noise_through_config(tmp_path):
    cfg, arrays = _npz(tmp_path)
    cfg.label_noise = 0.2
    ds = load_dataset(cfg, seed=1)
    assert len(ds.label_noise["ids"]) == 10
    assert np.sum(ds.y_train != arrays["y_train"]) == 10


def test_epoch_batches_cover_the_subset_once_with_zero_weight_padding():
    subset = Subset.of([5, 1, 7, 9, 2], 10, weights=[1, 2, 3, 4, 5])
    ids, w = subset.epoch_batches(batch_size=2, seed=0, epoch=4)
    assert ids.shape == (3, 2)
    real = w.reshape(-1) > 0
    assert sorted(ids.reshape(-1)[real]) == [1, 2, 5, 7, 9]
    assert real.sum() == 5 and w.reshape(-1)[-1] == 0
    lookup = dict(zip(subset.ids, subset.weights))
    assert all(lookup[i] == wi for i, wi in zip(ids.reshape(-1)[real], w.reshape(-1)[real]))
    again = subset.epoch_batches(batch_size=2, seed=0, epoch=4)
    np.testing.assert_array_equal(ids, again[0])
    assert not np.array_equal(ids, subset.epoch_batches(2, seed=0, epoch=5)[0])


def test_random_crop_is_per_example_and_matches_numpy_reflect_pad():
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype(np.float32).repeat(64, 0)
    out = np.asarray(augment.random_crop(jax.random.key(0), x, 4))
    padded = np.pad(x[0], ((4, 4), (4, 4), (0, 0)), mode="reflect")
    windows = {(oy, ox): padded[oy:oy + 32, ox:ox + 32] for oy in range(9) for ox in range(9)}
    found = []
    for i in range(64):  # every crop is one window of the reflect-padded image
        matches = [o for o, win in windows.items() if np.array_equal(out[i], win)]
        assert len(matches) == 1
        found.append(matches[0])
    assert len(set(found)) > 20  # offsets differ between examples of one batch


def test_flip_is_per_example():
    x = np.random.default_rng(0).normal(size=(64, 4, 4, 1)).astype(np.float32)
    out = np.asarray(augment.random_flip(jax.random.key(1), x))
    flipped = [np.array_equal(out[i], x[i, :, ::-1]) for i in range(64)]
    kept = [np.array_equal(out[i], x[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 54
