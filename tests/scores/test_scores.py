"""Scores: closed forms, forgetting on a hand-written sequence, GraNd at init = step-0
parameters, source order, the scores job's files, resume and validation."""
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

from tiny_config import tiny_config
from datadiet.config import validate_config
from datadiet.data import load_dataset
from datadiet.data.augment import normalize
from datadiet.pergrad import per_example_grad_norms
from datadiet.jobs import scores as job
from datadiet.scores import compute, definitions, forgetting
from datadiet.training.loop import build_model
from datadiet.training.state import split_model

LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-3.0, 4.0, 1.0], [5.0, 5.0, -2.0]],
                  np.float32)
LABELS = np.array([0, 2, 0, 1])


def test_forward_scores_equal_their_closed_forms():
    p = scipy.special.softmax(LOGITS.astype(np.float64), axis=1)
    onehot = np.eye(3)[LABELS]
    expected = {
        "el2n": np.sqrt(((p - onehot) ** 2).sum(1)),
        "loss": -np.log(p[np.arange(4), LABELS]),
        "entropy": scipy.stats.entropy(p, axis=1),
        "margin": np.array([p[i, LABELS[i]] - max(p[i, j] for j in range(3) if j != LABELS[i])
                            for i in range(4)]),
    }
    for name, fn in definitions.FORWARD.items():
        np.testing.assert_allclose(fn(jnp.asarray(LOGITS), jnp.asarray(LABELS)), expected[name],
                                   rtol=1e-5, atol=1e-6, err_msg=name)
    x = np.arange(24, dtype=np.float32).reshape(2, 2, 3, 2)
    np.testing.assert_allclose(definitions.input_norm(jnp.asarray(x)),
                               [np.sqrt((x[i] ** 2).sum()) for i in range(2)], rtol=1e-6)


def _feed(tracker, batches):
    """batches: [(ids, weights, correct)] as the training loop would hand them over."""
    for step, (ids, weights, correct) in enumerate(batches):
        tracker.step(step, 0, jnp.asarray([ids], jnp.int32), jnp.asarray(weights, jnp.float32),
                     {"correct": jnp.asarray(correct)})


def test_forgetting_counts_a_hand_written_sequence(tmp_path):
    # Example 0: right, wrong, right, wrong -> 2 events. Example 1: wrong, right, right -> 0.
    # Example 2: never right -> unlearned, ranks highest (presentations + 1 = 4).
    # Example 3: right once, then only in a padded slot (weight 0: must not count) -> 0.
    t = forgetting.ForgettingTracker(4, str(tmp_path))
    t.restore(0)
    _feed(t, [([0, 1, 2, 3], [1, 1, 1, 1], [True, False, False, True]),
              ([0, 1, 2, 3], [1, 1, 1, 0], [False, True, False, False]),
              ([2, 0, 1, 3], [1, 1, 1, 0], [False, True, True, False]),
              ([0, 3, 3, 3], [1, 0, 0, 0], [False, False, False, False])])
    np.testing.assert_array_equal(t.scores(), [2, 0, 4, 0])
    np.testing.assert_array_equal(t.counts["presentations"], [4, 3, 3, 1])
    t.snapshot(1)
    resumed = forgetting.ForgettingTracker(4, str(tmp_path))
    resumed.restore(1)
    _feed(resumed, [([1, 0, 2, 3], [1, 1, 1, 1], [False, True, False, True])])
    np.testing.assert_array_equal(resumed.scores(), [2, 1, 5, 0])


def _fresh(config, dataset):
    return split_model(build_model(config, dataset))


def test_state_scores_are_in_source_order():
    config = tiny_config()
    dataset = load_dataset(config.data, 0)
    graphdef, params, stats = _fresh(config, dataset)
    names = ("el2n", "loss", "entropy", "margin", "grand")
    scores = compute.state_scores(graphdef, params, stats, dataset, names, chunk_size=100,
                                  grand_chunk_size=64)
    perm = np.random.default_rng(0).permutation(dataset.n_train)
    dataset.x_train, dataset.y_train = dataset.x_train[perm], dataset.y_train[perm]
    permuted = compute.state_scores(graphdef, params, stats, dataset, names, chunk_size=128,
                                    grand_chunk_size=48)
    for name in names:
        np.testing.assert_allclose(permuted[name], scores[name][perm], rtol=2e-5, atol=1e-6,
                                   err_msg=name)


def _job_config(**scores):
    c = tiny_config(epochs=2.0)
    c.job = "scores"
    c.scores.names = ("el2n", "grand", "loss", "forgetting", "input_norm")
    c.scores.epochs = (0, 2)
    c.scores.num_seeds = 2
    c.scores.update(scores)
    return c


@pytest.fixture(scope="module")
def scores_job(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("scores"))
    config = _job_config()
    return config, workdir, job.compute_scores(config, workdir)


def test_grand_at_init_scores_the_step0_parameters(scores_job):
    config, workdir, _ = scores_job
    dataset = load_dataset(config.data, config.seed)
    x = normalize(jnp.asarray(dataset.x_train), dataset.mean, dataset.std)
    fresh = {}
    for seed in (0, 1):
        c = config.copy_and_resolve_references()
        c.seed = seed
        graphdef, params, stats = _fresh(c, dataset)
        fresh[seed] = np.asarray(per_example_grad_norms(graphdef, params, stats, x,
                                                        dataset.y_train))
        seed_scores = os.path.join(workdir, f"seeds/seed_{seed}/scores")
        np.testing.assert_allclose(np.load(os.path.join(seed_scores, "grand_epoch0.npy")),
                                   fresh[seed], rtol=1e-4, atol=1e-6)
        trained = np.load(os.path.join(seed_scores, "grand_epoch2.npy"))
        assert np.abs(trained - fresh[seed]).mean() > 0.1 * fresh[seed].mean()
    # A fresh init per seed, and the written file is their mean.
    assert not np.allclose(fresh[0], fresh[1])
    np.testing.assert_allclose(np.load(os.path.join(workdir, "scores/grand_epoch0.npy")),
                               (fresh[0] + fresh[1]) / 2, rtol=1e-4, atol=1e-6)


def test_scores_job_writes_means_with_their_metadata(scores_job):
    config, workdir, means = scores_job
    n = load_dataset(config.data, 0).n_train
    expected = {"el2n_epoch0", "el2n_epoch2", "grand_epoch0", "grand_epoch2", "loss_epoch0",
                "loss_epoch2", "forgetting", "input_norm"}
    assert set(means) == expected
    for name in expected:
        values = np.load(os.path.join(workdir, "scores", name + ".npy"))
        assert values.dtype == np.float32 and values.shape == (n,)
        info = json.load(open(os.path.join(workdir, "scores", name + ".json")))
        assert info["seeds"] == [0, 1] and info["n_train"] == n
        assert info["model"] == "small_cnn" and info["dataset"] == "digits"
        assert info["config"]["scores"]["num_seeds"] == 2
    el2n = json.load(open(os.path.join(workdir, "scores", "el2n_epoch2.json")))
    assert el2n["epoch"] == 2 and el2n["step"] == 2 * -(-n // 64)
    per_seed = [np.load(os.path.join(workdir, f"seeds/seed_{s}/scores/el2n_epoch2.npy"))
                for s in (0, 1)]
    np.testing.assert_allclose(means["el2n_epoch2"], np.mean(per_seed, 0), rtol=1e-6)
    forgets = [np.load(os.path.join(workdir, f"seeds/seed_{s}/scores/forgetting.npy"))
               for s in (0, 1)]
    assert all(f.max() <= 3 for f in forgets)  # 2 presentations: unlearned = 3, else <= 1


def test_killed_scores_job_resumes_without_losing_scores(scores_job, tmp_path, monkeypatch):
    config, reference, _ = scores_job
    calls = {"n": 0}
    original = forgetting.ForgettingTracker.snapshot

    def dies_once(self, epoch):
        calls["n"] += 1
        if calls["n"] == 2:  # seed 0, after its second epoch's scores, before the checkpoint
            raise KeyboardInterrupt
        original(self, epoch)

    monkeypatch.setattr(forgetting.ForgettingTracker, "snapshot", dies_once)
    with pytest.raises(KeyboardInterrupt):
        job.compute_scores(config, str(tmp_path))
    assert json.load(open(tmp_path / "status.json"))["state"] == "failed"
    monkeypatch.setattr(forgetting.ForgettingTracker, "snapshot", original)
    job.compute_scores(config, str(tmp_path))
    for name in job.score_file_names(config.scores):
        np.testing.assert_array_equal(np.load(tmp_path / "scores" / f"{name}.npy"),
                                      np.load(os.path.join(reference, "scores", name + ".npy")),
                                      err_msg=name)


@pytest.mark.parametrize("field,value,message", [
    ("names", ("el2n", "gradnorm"), "scores.names"),
    ("epochs", (0, 5), "scores.epochs"),
    ("num_seeds", 0, "scores.num_seeds"),
])
def test_bad_scores_config_is_refused(field, value, message):
    config = _job_config(**{field: value})
    with pytest.raises(ValueError, match=message):
        validate_config(config)


def test_without_forgetting_seeds_stop_at_the_last_scored_epoch(tmp_path):
    full = _job_config(names=("el2n", "forgetting"), epochs=(1,), num_seeds=1)
    full.train.epochs = 3.0
    early = _job_config(names=("el2n",), epochs=(1,), num_seeds=1)
    early.train.epochs = 3.0
    a = job.compute_scores(full, str(tmp_path / "full"))
    b = job.compute_scores(early, str(tmp_path / "early"))
    np.testing.assert_array_equal(a["el2n_epoch1"], b["el2n_epoch1"])  # same LR schedule
    steps = [json.loads(line)["step"] for line in open(tmp_path / "early/seeds/seed_0/"
                                                               "metrics.jsonl")]
    n = load_dataset(early.data, 0).n_train
    assert max(steps) == -(-n // 64)  # one epoch of training, not three
