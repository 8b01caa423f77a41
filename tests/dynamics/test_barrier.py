import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tiny_config import tiny_config
from datadiet.dynamics import barrier
from datadiet.jobs import lmc as lmc_job
from datadiet.data import Dataset, augment, load_dataset
from datadiet.jobs.train import train_and_evaluate
from datadiet.training.loop import restore_state
from datadiet.training.state import TrainState, apply_model

SPAWN_STEP = 23  # the end of epoch 1: ceil(1437 digits / batch 64)


@pytest.fixture(scope="module")
def lmc(tmp_path_factory):
    """A 2-epoch parent on digits and two children spawned from its epoch-1 checkpoint: one with
    the parent's own seed (0), one with another data order (seed 1)."""
    root = tmp_path_factory.mktemp("lmc")
    config = tiny_config(epochs=2.0, max_checkpoints=5)
    dataset = load_dataset(config.data, config.seed)
    parent = str(root / "parent")
    train_and_evaluate(config, parent, dataset)
    children = lmc_job.spawn_children(config, dataset, parent, SPAWN_STEP, [0, 1],
                                      str(root / "children"))
    states = [restore_state(c.config, dataset, c.workdir)[1:] for c in children]
    graphdef, parent_state, _ = restore_state(config, dataset, parent)
    ids = np.random.default_rng(0).choice(dataset.n_train, 60, replace=False)
    return dict(config=config, dataset=dataset, parent=parent, root=root, children=children,
                states=[s for s, _ in states], metas=[m for _, m in states],
                graphdef=graphdef, parent_state=parent_state, ids=ids)


def _leaves_equal(a, b):
    return all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_children_continue_the_parent(lmc):
    child0, child1 = lmc["states"]
    assert int(child0.step) == int(child1.step) == int(lmc["parent_state"].step) == 2 * SPAWN_STEP
    # Same seed as the parent: resuming from its epoch-1 checkpoint retraces its epoch 2 exactly.
    assert _leaves_equal(child0.params, lmc["parent_state"].params)
    assert not _leaves_equal(child1.params, child0.params)  # another data order
    events = [json.loads(line) for line in open(os.path.join(lmc["children"][1].workdir,
                                                             "metrics.jsonl"))]
    assert min(e["step"] for e in events) == 2 * SPAWN_STEP  # epoch 1 was not retrained
    # Re-running leaves finished children untouched.
    before = open(os.path.join(lmc["children"][1].workdir, "metrics.jsonl")).read()
    again = lmc_job.spawn_children(lmc["config"], lmc["dataset"], lmc["parent"], SPAWN_STEP,
                                   [0, 1], str(lmc["root"] / "children"))
    assert [c.final for c in again] == [c.final for c in lmc["children"]]
    assert open(os.path.join(lmc["children"][1].workdir, "metrics.jsonl")).read() == before


def test_spawning_from_a_state_equals_spawning_from_the_run_directory(lmc):
    config, dataset = lmc["config"], lmc["dataset"]
    _, state, _ = restore_state(config, dataset, lmc["parent"], SPAWN_STEP)
    (child,) = lmc_job.spawn_children(config, dataset, state, SPAWN_STEP, [1],
                                      str(lmc["root"] / "from_state"))
    got = restore_state(child.config, dataset, child.workdir)[1]
    assert _leaves_equal(got.params, lmc["states"][1].params)


def test_recomputed_statistics_are_the_subsets_full_batch_statistics(lmc):
    graphdef, dataset, ids = lmc["graphdef"], lmc["dataset"], lmc["ids"]
    child = lmc["states"][1]
    got = barrier.recompute_batch_stats(graphdef, child.params, child.batch_stats, dataset, ids,
                                        chunk_size=16)  # 4 chunks, the last one padded
    # Reference: ONE train-mode forward of the whole subset, BatchNorm momentum 0, so the
    # running statistics become that batch's statistics.
    x = augment.normalize(jnp.asarray(dataset.x_train[ids]), dataset.mean, dataset.std)
    model = nnx.merge(graphdef, child.params, child.batch_stats, copy=True)
    for _, module in nnx.iter_modules(model):
        if isinstance(module, nnx.BatchNorm):
            module.momentum = 0.0
    train_logits = model(x, train=True)
    want = nnx.state(model, nnx.BatchStat)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-4, atol=1e-5)
    # ... so eval mode on the recomputed statistics reproduces that full-batch forward.
    eval_logits, _ = apply_model(graphdef, child.params, got, x, False)
    np.testing.assert_allclose(np.asarray(eval_logits), np.asarray(train_logits), rtol=1e-3,
                               atol=1e-3)


@pytest.mark.parametrize("recompute_bn", [False, True])
def test_interpolation_endpoints_reproduce_each_childs_error(lmc, recompute_bn):
    graphdef, dataset, ids = lmc["graphdef"], lmc["dataset"], lmc["ids"]
    c1, c2 = lmc["states"][1], lmc["parent_state"]  # w1, w2
    out = barrier.barrier_between(c1, c2, graphdef, dataset, ids, alphas=[0.0, 0.5, 1.0],
                                  recompute_bn=recompute_bn, chunk_size=32)

    def own_error(c):
        stats = c.batch_stats
        if recompute_bn:
            stats = barrier.recompute_batch_stats(graphdef, c.params, stats, dataset, ids,
                                                  chunk_size=32)
        return barrier.error_on_subset(graphdef, c.params, stats, dataset, ids, chunk_size=32)

    assert out["errors"][2] == own_error(c1)  # a = 1: w1
    assert out["errors"][0] == own_error(c2)  # a = 0: w2
    mix = [out["errors"][0] + a * (out["errors"][2] - out["errors"][0]) for a in (0.0, 0.5, 1.0)]
    assert out["barrier"] == max(e - m for e, m in zip(out["errors"], mix))


@pytest.mark.parametrize("recompute_bn", [False, True])
def test_identical_children_have_no_barrier(lmc, recompute_bn):
    c = lmc["states"][1]
    out = barrier.barrier_between(c, c, lmc["graphdef"], lmc["dataset"], lmc["ids"],
                                  recompute_bn=recompute_bn)
    assert len(out["errors"]) == 11 and out["alphas"][0] == 0.0 and out["alphas"][-1] == 1.0
    assert len(set(out["errors"])) == 1
    assert out["barrier"] == 0.0


class Square(nnx.Module):
    """Two logits (w^2, t) for an input t: class 0 is predicted iff w^2 >= t."""

    def __init__(self, w):
        self.w = nnx.Param(jnp.float32(w))

    def __call__(self, x, train, mask=None):
        t = x.reshape(x.shape[0])
        return jnp.stack([jnp.broadcast_to(self.w[...] ** 2, t.shape), t], -1)


def test_one_dimensional_barrier_equals_the_hand_computed_value():
    t = np.array([0.5, 1.5, 2.5, 3.5], np.float32)
    line = Dataset(name="line", x_train=t.reshape(4, 1, 1, 1), y_train=np.zeros(4, np.int32),
                   x_test=t.reshape(4, 1, 1, 1), y_test=np.zeros(4, np.int32), num_classes=2,
                   mean=np.zeros(1, np.float32), std=np.ones(1, np.float32), augment="none",
                   crop_pad=0)
    graphdef, p1, stats = nnx.split(Square(2.0), nnx.Param, nnx.BatchStat)
    _, p2, _ = nnx.split(Square(-1.0), nnx.Param, nnx.BatchStat)
    w1, w2 = (TrainState(step=0, params=p, batch_stats=stats, opt_state=None) for p in (p1, p2))
    out = barrier.barrier_between(w1, w2, graphdef, line, np.arange(4))
    # w(a) = 2a - (1 - a) = 3a - 1; an example t is wrong iff w(a)^2 < t.
    alphas = np.linspace(0, 1, 11)
    closed_form = [float(np.mean(t > (3 * a - 1) ** 2)) for a in alphas]
    np.testing.assert_allclose(out["errors"], closed_form, atol=1e-12)
    # By hand: R(w1) = 0 (w1^2 = 4), R(w2) = 3/4 (w2^2 = 1); at a = 0.5, w = 0.5 and all four
    # are wrong: 1 - (0.5 * 0 + 0.5 * 0.75) = 0.625, the largest gap on the 11-point grid
    # (a = 0.4: 1 - 0.6 * 0.75 = 0.55; a = 0.6: w^2 = 0.64, 0.75 - 0.4 * 0.75 = 0.45).
    assert out["barrier"] == pytest.approx(0.625, abs=1e-12)
    assert out["argmax_alpha"] == pytest.approx(0.5)
    assert barrier.error_barrier([0.1, 0.5, 0.3], [0.0, 0.5, 1.0]) == pytest.approx((0.3, 0.5))


def test_interpolate_is_exact_at_the_endpoints(lmc):
    c1, c2 = lmc["states"][1], lmc["parent_state"]
    assert _leaves_equal(barrier.interpolate(c1.params, c2.params, 1.0), c1.params)
    assert _leaves_equal(barrier.interpolate(c1.params, c2.params, 0.0), c2.params)
    mid = barrier.interpolate(c1.params, c2.params, 0.25)
    for m, u, v in zip(*(jax.tree.leaves(p) for p in (mid, c1.params, c2.params))):
        np.testing.assert_allclose(m, 0.25 * np.asarray(u) + 0.75 * np.asarray(v), rtol=1e-6,
                                   atol=1e-7)


def test_bad_arguments_raise(lmc, tmp_path):
    c, graphdef, dataset = lmc["states"][1], lmc["graphdef"], lmc["dataset"]
    with pytest.raises(ValueError, match=r"alphas=.*both endpoints"):
        barrier.barrier_between(c, c, graphdef, dataset, lmc["ids"], alphas=[0.0, 0.5])
    with pytest.raises(ValueError, match="subset_ids"):
        barrier.barrier_between(c, c, graphdef, dataset, [dataset.n_train])
    with pytest.raises(ValueError, match="recompute_bn"):
        barrier.barrier_between(c, c, graphdef, dataset, lmc["ids"], recompute_bn="yes")
    with pytest.raises(ValueError, match="same length|one length"):
        barrier.error_barrier([0.1, 0.2], [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="structures"):
        barrier.interpolate(c.params, c.batch_stats, 0.5)
    config = lmc["config"]
    with pytest.raises(ValueError, match=r"spawn_step=5 .*one of \[0, 23\]"):
        lmc_job.spawn_children(config, dataset, lmc["parent"], 5, [1, 2], str(tmp_path))
    with pytest.raises(ValueError, match="child_seeds"):
        lmc_job.spawn_children(config, dataset, lmc["parent"], SPAWN_STEP, [1, 1], str(tmp_path))
    with pytest.raises(ValueError, match=r"step=0: .*checkpoints at steps \[23, 46\]"):
        lmc_job.spawn_children(config, dataset, lmc["parent"], 0, [1], str(tmp_path))
    assert not os.path.exists(tmp_path / "seed_1")  # the parent is checked before any write
