"""Tabular and text data besides images (AUTOMATA's three kinds of data): TFDS sources under
tfds.testing.mock_data, the hashing tokenizer, the bag-of-embeddings model, and a short training
run of each modality, one of them on GRAD-MATCH subsets."""
import zlib

import numpy as np
import pytest

from datadiet.data import default_data_config, load_dataset
from datadiet.data.text import hash_tokenize
from datadiet.models import get_model
from datadiet.jobs.train import train_and_evaluate
from tiny_config import tiny_config

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.mark.parametrize("name,modality,shape,dtype", [
    ("penguins", "tabular", (4,), np.float32),
    ("imdb_reviews", "text", (16,), np.int32),
    ("ag_news_subset", "text", (16,), np.int32),
])
def test_tfds_tabular_and_text_sources_under_mock_data(name, modality, shape, dtype):
    cfg = default_data_config()
    cfg.source, cfg.name, cfg.text_vocab, cfg.text_length = "tfds", name, 64, 16
    with tfds.testing.mock_data(num_examples=20):
        ds = load_dataset(cfg, seed=0)
        again = load_dataset(cfg, seed=0)
    assert (ds.modality, ds.input_shape, ds.x_train.dtype, ds.augment) == \
        (modality, shape, dtype, "none")
    np.testing.assert_array_equal(ds.x_train, again.x_train)  # a stable source order
    if name == "penguins":  # one TFDS split, cut 16 / 4 by a fixed draw
        assert (ds.n_train, len(ds.y_test)) == (16, 4)
        np.testing.assert_allclose(ds.mean, ds.x_train.mean(0), rtol=1e-5)  # per feature
    else:
        assert ds.n_train == 20 and 0 <= ds.x_train.min() and ds.x_train.max() < 64
        assert (ds.mean, ds.std) == (0, 1) and ds.x_train.max() > 0  # ids are not normalised


def test_hash_tokenizer_is_case_blind_padded_and_truncated():
    ids = hash_tokenize(["Hello, hello WORLD!", b"a b c d e f"], vocab_size=1000, length=4)
    hello, world = (1 + zlib.crc32(w) % 999 for w in (b"hello", b"world"))
    np.testing.assert_array_equal(ids[0], [hello, hello, world, 0])
    assert ids.dtype == np.int32 and ids[1].min() >= 1  # 6 words cut to 4, none is padding
    assert ids.max() < 1000


def test_embedding_bag_averages_the_non_padding_tokens():
    model = get_model("embedding_bag", 3, (4,), seed=0, vocab_size=10, dim=5)
    table = np.asarray(model.embed.embedding[...])
    x = np.array([[2, 7, 0, 0], [2, 7, 7, 0]], np.float32)  # float-cast ids, as batches carry
    h = np.asarray(model.features(x, train=False))
    np.testing.assert_allclose(h[0], (table[2] + table[7]) / 2, rtol=1e-6)
    np.testing.assert_allclose(h[1], (table[2] + 2 * table[7]) / 3, rtol=1e-6)
    assert model(x, train=True).shape == (2, 3)


@pytest.mark.parametrize("name,model,kwargs,coreset", [
    ("penguins", "mlp", {"hidden": (16,)}, False),
    ("imdb_reviews", "embedding_bag", {"vocab_size": 128, "dim": 8}, True),
])
def test_short_training_on_each_modality(tmp_path, name, model, kwargs, coreset):
    config = tiny_config(epochs=2.0, batch_size=8, eval_batch_size=16)
    config.data.source, config.data.name = "tfds", name
    config.data.text_vocab, config.data.text_length = 128, 12
    config.model.name, config.model.kwargs = model, kwargs
    config.optim.name, config.optim.lr = "adam", 0.01
    if coreset:  # AUTOMATA's trial evaluation: per-batch GRAD-MATCH with weights
        config.coreset.update(method="gradmatch", mode="per_batch", fraction=0.5, every_epochs=1)
    with tfds.testing.mock_data(num_examples=32):
        final = train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(final["train"]["loss"]) and 0 <= final["test"]["accuracy"] <= 1
    if coreset:
        assert final["train"]["step"] == 2 * 2  # two epochs over 16 of the 32 examples
