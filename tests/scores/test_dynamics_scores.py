"""AUM and Dyn-Unc against hand-written logit / probability sequences computed in numpy, and
the scores job writing them (and the embeddings) in the usual layout."""
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
from tiny_config import tiny_config

from datadiet.config import validate_config
from datadiet.jobs import scores as job
from datadiet.scores.dynamics import AUMTracker, dyn_unc_scores
from datadiet.training.step import logit_margin


def test_logit_margin_is_label_logit_minus_the_largest_other():
    logits = np.array([[2.0, 5.0, 1.0], [0.5, -1.0, 3.0], [4.0, 4.0, 0.0]], np.float32)
    labels = np.array([1, 0, 0])
    expected = [5.0 - 2.0, 0.5 - 3.0, 4.0 - 4.0]
    np.testing.assert_allclose(logit_margin(jnp.asarray(logits), jnp.asarray(labels)), expected)


def test_aum_averages_the_margins_of_each_presentation(tmp_path):
    # Three steps of logits for examples (ids) in shuffled batches; weight 0 = padding.
    steps = [([0, 1, 2], [1, 1, 1], [[3, 1], [0, 2], [1, 1]]),
             ([2, 0, 1], [1, 1, 0], [[0, 4], [5, 0], [9, 9]]),
             ([1, 2, 0], [1, 1, 1], [[1, -1], [2, 0], [-1, 1]])]
    labels = np.array([0, 1, 0])
    t = AUMTracker(3, str(tmp_path))
    t.restore(0)
    sums, counts = np.zeros(3), np.zeros(3)
    for s, (ids, w, z) in enumerate(steps):
        z = np.array(z, np.float32)
        y = labels[ids]
        margin = z[np.arange(3), y] - z[np.arange(3), 1 - y]  # two classes: the other one
        for i, wi, m in zip(ids, w, margin):
            if wi:
                sums[i] += m
                counts[i] += 1
        out = {"logit_margin": logit_margin(jnp.asarray(z), jnp.asarray(y))}
        t.step(s, 0, jnp.asarray([ids]), jnp.asarray(w, jnp.float32), out)
        if s == 0:  # resume half-way from a snapshot
            t.snapshot(1)
            t = AUMTracker(3, str(tmp_path))
            t.restore(1)
    np.testing.assert_allclose(t.scores(), sums / counts, rtol=1e-6)


def test_dyn_unc_is_the_mean_windowed_std():
    p = np.array([[0.1, 0.9, 0.5], [0.4, 0.9, 0.1], [0.2, 0.9, 0.9], [0.8, 0.9, 0.3]])
    J = 3
    expected = [np.mean([np.std(p[k:k + J, i], ddof=1) for k in range(len(p) - J + 1)])
                for i in range(3)]
    np.testing.assert_allclose(dyn_unc_scores(p, J), expected, rtol=1e-6)
    assert dyn_unc_scores(p, J)[1] == 0  # a constant probability is certain
    with pytest.raises(ValueError, match="window"):
        dyn_unc_scores(p, 5)


def test_scores_job_writes_aum_dyn_unc_and_embeddings(tmp_path):
    c = tiny_config(epochs=2.0)
    c.job = "scores"
    c.scores.names = ("el2n", "aum", "dyn_unc")
    c.scores.epochs = (1,)
    c.scores.num_seeds = 2
    c.scores.embeddings = 1
    job.compute_scores(c, str(tmp_path))
    out = tmp_path / "scores"
    n = json.loads((out / "aum.json").read_text())["n_train"]
    for name in ("aum", "dyn_unc"):
        per_seed = [np.load(tmp_path / f"seeds/seed_{s}/scores/{name}.npy") for s in (0, 1)]
        np.testing.assert_allclose(np.load(out / f"{name}.npy"), np.mean(per_seed, 0), rtol=1e-5)
        assert json.loads((out / f"{name}.json").read_text())["seeds"] == [0, 1]
    p = [np.load(tmp_path / f"seeds/seed_0/scores/p_true_epoch{t}.npy") for t in (1, 2)]
    np.testing.assert_allclose(np.load(tmp_path / "seeds/seed_0/scores/dyn_unc.npy"),
                               np.abs(p[1] - p[0]) / np.sqrt(2), rtol=1e-5, atol=1e-7)
    emb = np.load(out / "embeddings_epoch1.npy")
    assert emb.shape[0] == n and emb.ndim == 2 and np.isfinite(emb).all()
    assert os.path.exists(out / "embeddings_epoch1.json")


@pytest.mark.parametrize("field,value", [("dyn_unc_window", 5), ("embeddings", 7)])
def test_bad_dynamics_config_is_refused(field, value):
    c = tiny_config(epochs=2.0)
    c.job = "scores"
    c.scores.names = ("aum", "dyn_unc")
    c.scores[field] = value
    with pytest.raises(ValueError, match=f"scores.{field}"):
        validate_config(c)
