"""Pruning selectors on planted scores, noise detection, and pruned runs end to end."""
import os

import numpy as np
import pytest

from tiny_config import tiny_config
from datadiet.config import validate_config
from datadiet.data import load_dataset
from datadiet.prune import keep_ids, noise_detection
from datadiet.jobs import scores as job
from datadiet.jobs.train import train_and_evaluate

# 20 examples, score = 100 - id (id 0 highest), two classes of 12 and 8.
SCORES = 100.0 - np.arange(20)
LABELS = np.array([0] * 12 + [1] * 8)


@pytest.mark.parametrize("method,keep,offset,expected", [
    ("high", 0.25, 0.0, np.arange(5)),
    ("low", 0.25, 0.0, np.arange(15, 20)),
    ("window", 0.25, 0.0, np.arange(5)),
    ("window", 0.25, 0.5, np.arange(10, 15)),
    ("window", 0.25, 0.75, np.arange(15, 20)),
    ("high", 1.0, 0.0, np.arange(20)),
])
def test_selectors_keep_the_planted_ranks(method, keep, offset, expected):
    shuffle = np.random.default_rng(1).permutation(20)  # ids in any order: ranks follow scores
    scores = np.empty(20)
    scores[shuffle] = SCORES
    kept = keep_ids(scores, keep, method, offset=offset)
    np.testing.assert_array_equal(kept, np.sort(shuffle[expected]))


def test_class_balanced_selectors_keep_each_class_share():
    for method, expected in [("high", np.r_[0:6, 12:16]), ("low", np.r_[6:12, 16:20]),
                             ("window", np.r_[3:9, 14:18])]:
        kept = keep_ids(SCORES, 0.5, method, offset=0.25, labels=LABELS, class_balanced=True)
        np.testing.assert_array_equal(kept, expected, err_msg=method)
    kept = keep_ids(SCORES, 0.5, "random", labels=LABELS, class_balanced=True, seed=3)
    assert len(kept) == 10 and (LABELS[kept] == 0).sum() == 6
    # shares by largest remainder: 7 of 12/8 examples (35%) -> 4.2 / 2.8 -> 4 and 3
    kept = keep_ids(SCORES, 0.35, "high", labels=LABELS, class_balanced=True)
    np.testing.assert_array_equal(kept, np.r_[0:4, 12:15])


def test_random_selector_is_seeded_and_uniform():
    a = keep_ids(np.zeros(1000), 0.3, "random", seed=0)
    assert len(a) == 300 and len(np.unique(a)) == 300
    np.testing.assert_array_equal(a, keep_ids(np.zeros(1000), 0.3, "random", seed=0))
    assert not np.array_equal(a, keep_ids(np.zeros(1000), 0.3, "random", seed=1))
    counts = np.zeros(1000)
    for seed in range(200):
        counts[keep_ids(np.zeros(1000), 0.3, "random", seed=seed)] += 1
    assert abs(counts[:500].sum() / counts.sum() - 0.5) < 0.01  # no half favoured


@pytest.mark.parametrize("kwargs,message", [
    (dict(method="top"), "not one of"), (dict(keep=0.0), "keep"), (dict(keep=1.5), "keep"),
    (dict(method="window", keep=0.5, offset=0.6), "offset"),
])
def test_selector_rejects_bad_arguments(kwargs, message):
    args = dict(method="high", keep=0.5) | kwargs
    with pytest.raises(ValueError, match=message):
        keep_ids(SCORES, args.pop("keep"), args.pop("method"), **args)


def test_noise_detection_counts_planted_noisy_examples():
    scores = np.array([9.0, 8, 7, 6, 5, 4, 3, 2])
    report = noise_detection(scores, [0, 2, 7])  # k = 3: top ids 0, 1, 2 -> 2 hits
    assert report == {"k": 3, "precision": 2 / 3, "recall": 2 / 3}
    report = noise_detection(scores, [0, 2, 7], k=8)
    assert report["recall"] == 1.0 and report["precision"] == 3 / 8


@pytest.fixture(scope="module")
def el2n_scores(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("scores"))
    c = tiny_config(epochs=1.0)
    c.job = "scores"
    c.scores.names, c.scores.epochs, c.scores.num_seeds = ("el2n",), (1,), 1
    job.compute_scores(c, workdir)
    return os.path.join(workdir, "scores", "el2n_epoch1.npy")


def test_pruned_run_trains_iteration_matched_on_the_kept_examples(el2n_scores, tmp_path):
    full = train_and_evaluate(tiny_config(), str(tmp_path / "full"))
    c = tiny_config()
    c.prune.update(method="high", keep=0.3, scores=el2n_scores)
    pruned = train_and_evaluate(c, str(tmp_path / "pruned"))
    assert pruned["test"]["step"] == full["test"]["step"]  # same number of iterations
    dataset = load_dataset(c.data, 0)
    from datadiet.prune import pruned_subset
    kept = pruned_subset(c, dataset).ids
    scores = np.load(el2n_scores)
    assert len(kept) == round(0.3 * dataset.n_train)
    assert scores[kept].min() >= np.delete(scores, kept).max()


def test_prune_config_is_checked_before_training(el2n_scores, tmp_path):
    c = tiny_config()
    c.prune.update(method="high", keep=0.5, scores=str(tmp_path / "missing.npy"))
    with pytest.raises(ValueError, match="prune.scores"):
        validate_config(c)
    c.prune.update(method="window", scores=el2n_scores, offset=0.7)
    with pytest.raises(ValueError, match="prune.offset"):
        validate_config(c)
    c.prune.update(method="high", offset=0.0)
    c.coreset.method = "random"
    with pytest.raises(ValueError, match="choose one"):
        validate_config(c)
    # Scores taken without label noise must not prune a noisy run (or one with other noise).
    c.coreset.method = "none"
    c.data.label_noise = 0.1
    with pytest.raises(ValueError, match="label noise"):
        train_and_evaluate(c, str(tmp_path / "noisy"))
