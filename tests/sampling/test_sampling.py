"""Streaming samplers: draws against their closed-form distributions (chi-square), the
baselines against their papers' rules, diagnostics against brute force, and tiny runs."""
import collections
import itertools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from tiny_config import tiny_config
from datadiet.data import load_dataset
from datadiet.sampling import baselines, diagnostics, samplers
from datadiet.sampling import loop as sampling_loop
from datadiet.sampling.config import BASE_METHODS, default_sampling_config
from datadiet.sampling.methods import make_sampler
from datadiet.training import optim
from datadiet.jobs.train import train_and_evaluate
from datadiet.training.checkpoint import Checkpointer
from datadiet.training.loop import build_model
from datadiet.training.state import create_state
from datadiet.training.step import weighted_loss

ALPHA, FLOOR, K = 2.0, 0.05, 10


def _values(n, seed=0):
    """Per-example outputs, some losses/entropies below the floor."""
    rng = np.random.default_rng(seed)
    return {"loss": rng.exponential(1.0, n).astype(np.float32) * (rng.random(n) > 0.1),
            "entropy": rng.uniform(0, np.log(K), n).astype(np.float32),
            "correct": rng.random(n) < 0.6}


def _closed_form(method, v):
    wrong = 1.0 - v["correct"]
    b = {"uniform": np.ones_like(v["loss"]), "owc": 1 + ALPHA * wrong,
         "lb": 1 + ALPHA * v["loss"], "nlb": 1 + ALPHA * np.tanh(v["loss"]),
         "plb": v["loss"], "peb": v["entropy"]}[method]
    b = np.maximum(b, FLOOR).astype(np.float64)
    return b / b.sum()


def _sampling_config(method, **fields):
    c = default_sampling_config()
    c.method, c.alpha, c.floor = method, ALPHA, FLOOR
    c.update(fields)
    return c


def _counts(ids, n):
    return np.bincount(np.asarray(ids).ravel(), minlength=n)


@pytest.mark.parametrize("method", BASE_METHODS)
def test_draws_match_the_distribution(method):
    n, b, rounds = 50, 500, 80
    v = _values(n)
    sampler = make_sampler(_sampling_config(method), n, b, K, total_steps=1)
    state = sampler.init({k: jnp.asarray(a) for k, a in v.items()})
    keys = jax.random.split(jax.random.key(0), rounds)
    ids = jax.jit(jax.vmap(lambda k: sampler.draw(state, k, 0)[0]))(keys)
    counts, p = _counts(ids, n), _closed_form(method, v)
    assert stats.chisquare(counts, n * 0 + rounds * b * p).pvalue > 1e-3
    if method != "uniform":  # the test has power: the same draws are far from uniform
        assert stats.chisquare(counts).pvalue < 1e-6


def test_two_level_draw_across_blocks_and_padding():
    """Small blocks: 7 blocks of 8, the last one mostly padding; a few zero-probability ids."""
    n, rounds, b = 50, 80, 500
    base = np.random.default_rng(1).uniform(0.1, 3.0, n).astype(np.float32)
    base[[3, 17, 49]] = 0.0
    keys = jax.random.split(jax.random.key(1), rounds)
    ids = jax.vmap(lambda k: samplers.draw(k, jnp.asarray(base), b, block=8))(keys)
    counts = _counts(ids, n)
    assert counts[[3, 17, 49]].sum() == 0
    live = base > 0
    expected = rounds * b * base[live].astype(np.float64) / base[live].astype(np.float64).sum()
    assert stats.chisquare(counts[live], expected).pvalue > 1e-3


def _tiny_setup(method, **fields):
    config = tiny_config()
    config.sampling = _sampling_config(method, **fields)
    dataset = load_dataset(config.data, config.seed)
    tx = optim.make_optimizer(config.optim, 23, 230)
    graphdef, state = create_state(build_model(config, dataset), tx)
    sampler = make_sampler(config.sampling, dataset.n_train, 64, dataset.num_classes, 230)
    step = sampling_loop.make_stream_step(graphdef, tx, dataset, sampler, config.seed)
    return dataset, state, sampler, step


@pytest.mark.parametrize("method", ["plb", "infobatch"])
def test_stored_values_change_only_for_trained_examples(method):
    dataset, state, sampler, stream_step = _tiny_setup(method, init="uniform")
    images, labels = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    sstate = sampler.init(None)
    name = "base" if method == "plb" else "scores"
    for s in range(3):
        before = np.asarray(sstate[name])
        state, sstate, out = stream_step(state, sstate, images, labels, np.int32(s))
        after, ids = np.asarray(sstate[name]), np.asarray(out["ids"])
        trained = ids[np.asarray(out["weights"]) > 0]
        assert set(np.flatnonzero(after != before)) <= set(trained)
        # each trained example now holds its loss (the largest, if drawn twice): closed form
        latest = collections.defaultdict(lambda: -np.inf)
        for i, loss in zip(ids, np.asarray(out["loss"])):
            latest[i] = max(latest[i], loss)
        expected = {i: max(v, FLOOR) if method == "plb" else v for i, v in latest.items()}
        np.testing.assert_allclose([after[i] for i in trained], [expected[i] for i in trained],
                                   rtol=1e-6)
    assert stream_step._cache_size() == 1  # one compile: no shape or value specialisation


def test_importance_weights_give_the_full_data_gradient():
    """Softmax regression on 8 examples: the exact expectation over all ordered pairs of draws
    (batch of 2, with replacement) of the train step's loss gradient equals the full-data mean
    gradient with the "mean" reduction; the self-normalised one is biased."""
    rng = np.random.default_rng(0)
    n, d, k = 8, 3, 3
    x, y = rng.normal(size=(n, d)), rng.integers(0, k, n)
    theta = jnp.asarray(rng.normal(size=(d, k)))
    base = jnp.asarray(rng.uniform(0.2, 2.0, n), jnp.float32)
    p = np.asarray(samplers.probabilities(base), np.float64)
    w = np.asarray(samplers.importance_weights(base, jnp.arange(n)), np.float64)

    def losses(th, idx):
        logits = jnp.asarray(x)[idx] @ th
        return -jax.nn.log_softmax(logits)[jnp.arange(len(idx)), jnp.asarray(y)[idx]]

    per_example = jax.vmap(lambda i: jax.grad(lambda th: losses(th, i[None])[0])(theta))(
        jnp.arange(n))
    full = np.mean(per_example, axis=0)
    np.testing.assert_allclose(np.einsum("i,i,i...->...", p, w, per_example), full, atol=1e-6)
    sampler = make_sampler(_sampling_config("plb", importance_weights=True), n, 2, k, 1)
    pairs = jnp.asarray(list(itertools.product(range(n), repeat=2)))
    prob = jnp.asarray(p[pairs].prod(axis=1))
    for reduction, unbiased in ((sampler.reduction, True), ("weighted_mean", False)):
        grads = jax.vmap(lambda idx: jax.grad(lambda th: weighted_loss(
            losses(th, idx), jnp.asarray(w)[idx], reduction))(theta))(pairs)
        expected = np.einsum("p,p...->...", prob, grads)
        assert np.allclose(expected, full, atol=1e-5) == unbiased, reduction


def test_infobatch_keeps_the_configured_fraction_and_rescales():
    n, ratio = 1000, 0.3
    scores = np.random.default_rng(0).exponential(1.0, n).astype(np.float32)
    below = scores < scores.mean()
    order, weights, n_kept = map(np.asarray, baselines.infobatch_plan(
        jax.random.key(0), jnp.asarray(scores), ratio, True))
    kept = weights > 0
    assert (kept & below).sum() == int((1 - ratio) * below.sum())  # InfoBatch's rounding
    assert kept[~below].all() and np.allclose(weights[~below], 1.0)
    np.testing.assert_allclose(weights[kept & below], 1 / (1 - ratio))
    assert n_kept == kept.sum() and set(order[:n_kept]) == set(np.flatnonzero(kept))
    _, full_weights, n_full = baselines.infobatch_plan(jax.random.key(0), jnp.asarray(scores),
                                                        ratio, False)
    assert n_full == n and np.all(np.asarray(full_weights) == 1.0)
    # which below-mean examples are pruned is uniform: each kept with probability 1 - ratio
    plans = jax.vmap(lambda k: baselines.infobatch_plan(k, jnp.asarray(scores), ratio, True)[1])
    freq = (np.asarray(plans(jax.random.split(jax.random.key(1), 200))) > 0)[:, below].mean(0)
    assert abs(freq.mean() - (1 - ratio)) < 0.01
    assert stats.chisquare(freq * 200).pvalue > 1e-3

    # Through the sampler: a pass trains each kept example once with its weight; late passes
    # (the last delta of training) are full and unweighted.
    b, total = 64, 200
    c = _sampling_config("infobatch", infobatch_ratio=ratio, infobatch_delta=0.25)
    sampler = make_sampler(c, n, b, K, total)
    state = sampler.init({"loss": jnp.asarray(scores)})
    draw = jax.jit(sampler.draw)
    for start in (0, 150):
        state = dict(state, pos=state["n_kept"])  # force a new pass at this step
        seen = {}
        for s in range(start, start + 16):
            ids, w, state = draw(state, jax.random.key(s), s)
            seen.update((int(i), float(x)) for i, x in zip(ids, w) if x > 0)
            if state["pos"] >= state["n_kept"]:
                break
        want = weights if start < round(0.75 * total) else None
        if want is None:
            assert len(seen) == n and set(seen.values()) == {1.0}
        else:
            assert len(seen) == (kept & below).sum() + (~below).sum()
            assert len(seen) == int(state["n_kept"])
            assert {round(x, 5) for x in seen.values()} == {1.0, round(1 / (1 - ratio), 5)}


def test_selective_backprop_follows_the_loss_percentile():
    rng = np.random.default_rng(0)
    h, beta, c = 64, 2.0, 24
    old = rng.exponential(1.0, 40).astype(np.float32)
    history, count = baselines.sb_push(jnp.zeros(h), jnp.int32(0), jnp.asarray(old))
    losses = rng.exponential(1.0, c).astype(np.float32)
    recent = np.asarray(list(collections.deque(list(old) + list(losses), maxlen=h)))
    pct = np.array([stats.percentileofscore(recent, l, kind="weak") / 100 for l in losses])
    pushed, pushed_count = baselines.sb_push(history, count, jnp.asarray(losses))
    np.testing.assert_allclose(baselines.sb_percentile(pushed, pushed_count, jnp.asarray(losses)),
                               pct, rtol=1e-6)
    trials = 4000
    select = jax.vmap(lambda k: baselines.sb_select(k, history, count, jnp.asarray(losses),
                                                    beta, c)[:2])
    rows, weights = select(jax.random.split(jax.random.key(0), trials))
    kept = np.zeros(c)
    for r, w in zip(np.asarray(rows), np.asarray(weights)):
        kept[r[w > 0]] += 1
    prob = pct ** beta
    sigma = np.sqrt(trials * prob * (1 - prob)) + 1e-9
    assert np.all(np.abs(kept - trials * prob) < 5 * sigma)


def test_diagnostics_against_brute_force():
    rng = np.random.default_rng(0)
    true = rng.normal(size=30)
    stored = np.round(true + rng.normal(0, 0.7, 30), 1)  # with ties
    true[:2] = true[2]  # ties in the truth are skipped
    score = total = 0
    for i, j in itertools.combinations(range(30), 2):
        if true[i] != true[j]:
            total += 1
            s = np.sign(stored[i] - stored[j]) * np.sign(true[i] - true[j])
            score += 1.0 if s > 0 else 0.5 if s == 0 else 0.0
    np.testing.assert_allclose(diagnostics.order_agreement(stored, true), score / total, rtol=1e-6)
    distinct = rng.normal(size=30)
    tau = stats.kendalltau(distinct, true[2:].tolist() + [5.0, 6.0]).statistic
    np.testing.assert_allclose(
        diagnostics.order_agreement(distinct, np.array(true[2:].tolist() + [5.0, 6.0])),
        (tau + 1) / 2, rtol=1e-5)
    p = rng.dirichlet(np.ones(30))
    np.testing.assert_allclose(diagnostics.entropy(jnp.asarray(p)), stats.entropy(p), rtol=1e-5)
    hardest = np.argsort(true)[-3:]
    np.testing.assert_allclose(diagnostics.hardest_decile_share(jnp.asarray(p), true),
                               p[hardest].sum() / p.sum(), rtol=1e-5)


def _events(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if k not in ("time", "train_time")}
                for line in f]


@pytest.mark.parametrize("method,fields,steps", [
    ("plb", {"init": "forward", "importance_weights": True}, [23, 46]),
    ("selective_backprop", {"sb_beta": 1.0, "sb_history": 256, "log_every_steps": 10},
     [10, 20, 30, 40, 46])])
def test_tiny_streaming_run(tmp_path, method, fields, steps):
    config = tiny_config(epochs=2.0)
    config.sampling = _sampling_config(method, **fields)
    final = train_and_evaluate(config, str(tmp_path))
    assert json.load(open(tmp_path / "status.json"))["state"] == "done"
    with open(tmp_path / "metrics.jsonl") as f:
        train = [e for e in map(json.loads, f) if e["split"] == "train"]
    assert [e["step"] for e in train] == steps and final["test"]["step"] == 46
    times = [e["train_time"] for e in train]  # training alone: below the total, increasing
    assert all(0 < a < b for a, b in zip(times, times[1:]))
    assert all(e["train_time"] <= e["time"] for e in train)
    for e in train:
        assert {"loss", "accuracy", "lr", "epoch", "sample_entropy", "hardest_decile_share",
                "order_agreement"} <= set(e)
        assert 0 < e["sample_entropy"] <= np.log(1437) + 1e-5
    assert final["test"]["accuracy"] > 0.5  # it learns


def test_killed_infobatch_run_resumes_exactly(tmp_path, monkeypatch):
    """Interrupted after epoch 2's events were logged but before its checkpoint: the resumed
    run restores epoch 1 (model and sampler state, mid-pass: 23 steps of 64 do not divide the
    pruned passes), drops the stale events and logs the same ones again."""
    config = tiny_config(epochs=2.0)
    config.sampling = _sampling_config("infobatch", infobatch_ratio=0.5, infobatch_delta=0.2)
    train_and_evaluate(config, str(tmp_path / "ref"))
    save, calls = Checkpointer.save, []

    def killed_on_second_save(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return save(self, *args)

    monkeypatch.setattr(Checkpointer, "save", killed_on_second_save)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(config, str(tmp_path / "killed"))
    monkeypatch.setattr(Checkpointer, "save", save)
    assert len(_events(tmp_path / "killed")) == 4  # epochs 1 and 2 logged, 2 not checkpointed
    train_and_evaluate(config, str(tmp_path / "killed"))
    assert _events(tmp_path / "killed") == _events(tmp_path / "ref")


@pytest.mark.parametrize("field,value,message", [
    ("method", "plb2", r"sampling.method='plb2' is not one of \['none', 'uniform'"),
    ("init", "zeros", r"sampling.init='zeros' is not one of \['uniform', 'forward'\]"),
    ("alpha", -1.0, r"sampling.alpha=-1.0 must be >= 0"),
    ("floor", 0.0, r"sampling.floor=0.0 must be > 0"),
    ("infobatch_ratio", 1.0, r"sampling.infobatch_ratio=1.0 must be in \[0, 1\)"),
    ("infobatch_delta", 1.5, r"sampling.infobatch_delta=1.5 must be in \[0, 1\]"),
    ("probe_size", 1, r"sampling.probe_size=1 must be >= 2"),
    ("log_every_steps", -5, r"sampling.log_every_steps=-5 must be >= 0"),
    ("sb_history", 100, r"sampling.sb_history=100 must be >= the 128 candidates"),
    ("importance_weights", True, r"importance_weights=True applies to the methods"),
])
def test_bad_sampling_config_fails_before_anything_is_written(tmp_path, field, value, message):
    config = tiny_config()
    config.sampling.method = "selective_backprop" if field in ("sb_history", "importance_weights") \
        else "plb"
    config.sampling[field] = value
    with pytest.raises(ValueError, match=message):
        train_and_evaluate(config, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run")


def test_sampling_and_coresets_are_exclusive(tmp_path):
    config = tiny_config()
    config.sampling.method, config.coreset.method = "uniform", "random"
    with pytest.raises(ValueError, match="coreset.method='random' and sampling.method='uniform'"):
        train_and_evaluate(config, str(tmp_path / "run"))


def test_interrupted_streaming_run_closes_its_checkpointer_and_resumes_exactly(tmp_path,
                                                                               monkeypatch):
    """The streaming loop runs through the one driver: an exception mid-run (here in the
    second checkpoint save) still closes the checkpointer, as in the epoch loop, and the rerun
    resumes to the uninterrupted run's events."""
    config = tiny_config(epochs=3.0)
    config.sampling = _sampling_config("plb")
    train_and_evaluate(config, str(tmp_path / "ref"))
    save, close, saves, closes = Checkpointer.save, Checkpointer.close, [], []

    def failing_save(self, *args):
        saves.append(1)
        if len(saves) == 2:
            raise RuntimeError("disk gone")
        return save(self, *args)

    def counting_close(self):
        closes.append(1)
        return close(self)

    monkeypatch.setattr(Checkpointer, "save", failing_save)
    monkeypatch.setattr(Checkpointer, "close", counting_close)
    with pytest.raises(RuntimeError, match="disk gone"):
        train_and_evaluate(config, str(tmp_path / "killed"))
    assert closes == [1]
    monkeypatch.setattr(Checkpointer, "save", save)
    train_and_evaluate(config, str(tmp_path / "killed"))
    assert _events(tmp_path / "killed") == _events(tmp_path / "ref")
