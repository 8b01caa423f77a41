"""The TFDS path end to end, under tfds.testing.mock_data (no download, no TensorFlow)."""
import json
import os

import numpy as np
import pytest

from datadiet.data import default_data_config, load_dataset
from datadiet.jobs.train import train_and_evaluate
from tiny_config import tiny_config

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.mark.parametrize("name,shape,augment", [("cifar10", (32, 32, 3), "crop_flip"),
                                                ("fashion_mnist", (28, 28, 1), "none")])
def test_tfds_source_under_mock_data(name, shape, augment):
    cfg = default_data_config()
    cfg.source, cfg.name = "tfds", name
    with tfds.testing.mock_data(num_examples=24):
        ds = load_dataset(cfg, seed=0)
        again = load_dataset(cfg, seed=0)
    assert ds.input_shape == shape and ds.n_train == 24 and ds.augment == augment
    np.testing.assert_array_equal(ds.x_train, again.x_train)  # a stable source order
    assert ds.x_train.dtype == np.uint8 and ds.y_train.max() < ds.num_classes


def test_training_end_to_end_on_mock_cifar10(tmp_path):
    config = tiny_config(epochs=2.0, batch_size=16, eval_batch_size=16)
    config.data.source, config.data.name, config.data.num_classes = "tfds", "cifar10", 10
    config.model.name, config.model.kwargs = "mlp", {"hidden": (32,)}
    with tfds.testing.mock_data(num_examples=40):
        final = train_and_evaluate(config, str(tmp_path))
    assert final["test"]["step"] == 2 * 3  # ceil(40 / 16) steps per epoch
    assert json.load(open(os.path.join(tmp_path, "status.json")))["state"] == "done"
    assert np.isfinite(final["train"]["loss"]) and 0 <= final["test"]["accuracy"] <= 1


def test_a_batch_larger_than_a_tfds_training_set_is_refused_before_training(tmp_path):
    """TFDS sources tell their size only once loaded: the jobs check it right then."""
    config = tiny_config(epochs=1.0, batch_size=32)
    config.data.source, config.data.name = "tfds", "cifar10"
    with tfds.testing.mock_data(num_examples=24):
        with pytest.raises(ValueError, match=r"train.batch_size=32 is larger than the 24 "
                                             r"training examples of data.source='tfds'"):
            train_and_evaluate(config, str(tmp_path))
    assert not (tmp_path / "checkpoints").exists()  # nothing trained
