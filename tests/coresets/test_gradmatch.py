import json
import os

import numpy as np
import pytest
from scipy.optimize import nnls

from datadiet.coresets import gradmatch
from datadiet.coresets.selector import CoresetSelector
from datadiet.data import load_dataset
from datadiet.jobs.train import train_and_evaluate
from tiny_config import tiny_config


@pytest.mark.parametrize("sizes,k", [([100, 100, 100], 30), ([500, 300, 200], 101),
                                     ([7, 13, 980], 50), ([1, 1, 8], 10)])
def test_class_budgets_sum_to_k_and_follow_class_sizes(sizes, k):
    budgets = gradmatch.class_budgets(sizes, k)
    assert budgets.sum() == k and np.all(budgets <= sizes)
    exact = k * np.asarray(sizes) / sum(sizes)
    assert np.all(np.abs(budgets - exact) < 1)  # proportional, up to rounding


def test_per_class_recovers_planted_combinations():
    """Each class's target is a non-negative combination of 3 of its own columns."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], [40, 60])
    G = rng.normal(size=(100, 50)).astype(np.float32)
    planted = {0: [3, 17, 30], 1: [45, 70, 99]}
    targets = np.stack([G[planted[c]].T @ np.array([1.0, 2.0, 0.5]) for c in (0, 1)])
    ids, w, err = gradmatch.select_per_class(G, labels, targets.astype(np.float32), 10,
                                             lam=0.0, eps=1e-4)
    assert err < 1e-4
    assert set(ids[w > 1e-4]) == set(planted[0] + planted[1])
    for c in (0, 1):  # weights = NNLS refit on the chosen rows of that class
        chosen = ids[labels[ids] == c]
        ref, _ = nnls(G[chosen].T.astype(np.float64), targets[c].astype(np.float64))
        np.testing.assert_allclose(w[labels[ids] == c], ref, atol=1e-3)


def test_per_batch_members_share_their_batch_weight():
    rng = np.random.default_rng(1)
    G = rng.normal(size=(64, 20)).astype(np.float32)
    batch_rows = rng.permutation(64).reshape(8, 8)
    target = G[batch_rows].mean(1)[[1, 6]].sum(0) * 2.0  # planted: batches 1 and 6, weight 2
    ids, w, err = gradmatch.select_per_batch(G, target, batch_rows, 2, lam=0.0, eps=1e-5)
    assert len(ids) == 16 and set(ids) == set(batch_rows[[1, 6]].reshape(-1))
    for b in (1, 6):
        members = np.isin(ids, batch_rows[b])
        np.testing.assert_allclose(w[members], 2.0, rtol=1e-3)
    assert err < 1e-4


def test_fill_budget_tops_up_with_unchosen_examples():
    rng = np.random.default_rng(0)
    ids, w = gradmatch.fill_budget(np.array([4, 9]), np.array([2.0, 4.0]), np.arange(20), 6, rng)
    assert len(ids) == len(set(ids)) == 6 and list(ids[:2]) == [4, 9]
    np.testing.assert_array_equal(w, [2, 4, 3, 3, 3, 3])


def _coreset_config(**coreset):
    config = tiny_config(epochs=4.0, batch_size=16)
    config.coreset.update(dict(method="gradmatch", fraction=0.2, every_epochs=2), **coreset)
    return config


@pytest.mark.parametrize("mode", ["per_class", "per_batch"])
def test_gradmatch_run_saves_and_logs_each_selection(tmp_path, mode):
    config = _coreset_config(mode=mode, warm_start=0.25)
    train_and_evaluate(config, str(tmp_path))
    events = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    selections = [e for e in events if e.get("kind") == "selection"]
    assert [e["epoch"] for e in selections] == [1, 3]  # warm epoch 0, then every 2 epochs
    assert all(e["selection_time"] > 0 for e in selections)
    k = round(0.2 * 1437)
    for e in selections:
        with np.load(tmp_path / "selections" / f"epoch_{e['epoch']:04d}.npz") as f:
            assert len(f["ids"]) == len(set(f["ids"])) == k and np.all(f["weights"] >= 0)
    train_steps = [e["step"] for e in events if e["split"] == "train" and "kind" not in e]
    assert train_steps == [90, 90 + 18, 90 + 36, 90 + 54]  # full warm epoch, then k-sized ones



def test_without_warm_start_gradmatch_starts_random_and_runs_omp_at_r(tmp_path):
    # GRAD-MATCH / AUTOMATA Algorithm 2: S_0 random with unit weights, OMP at t = R, 2R, ...
    for method in ("gradmatch", "random_online"):
        train_and_evaluate(_coreset_config(method=method, mode="per_batch"),
                           str(tmp_path / method))
    events = [json.loads(line) for line in open(tmp_path / "gradmatch" / "metrics.jsonl")]
    selections = [(e["epoch"], e["method"]) for e in events if e.get("kind") == "selection"]
    assert selections == [(0, "random"), (2, "gradmatch")]
    load = lambda m, epoch: np.load(tmp_path / m / "selections" / f"epoch_{epoch:04d}.npz")
    first, baseline = load("gradmatch", 0), load("random_online", 0)
    np.testing.assert_array_equal(first["ids"], baseline["ids"])  # the same seeded draw
    np.testing.assert_array_equal(first["weights"], 1.0)
    # at R the OMP subset: whole batches of 16 with their batch weights, not the random draw
    omp = load("gradmatch", 2)
    assert not np.array_equal(np.sort(omp["ids"]), np.sort(load("random_online", 2)["ids"]))
    assert len(np.unique(omp["weights"])) > 1

def test_random_keeps_one_draw_and_random_online_redraws(tmp_path):
    for method in ("random", "random_online"):
        train_and_evaluate(_coreset_config(method=method), str(tmp_path / method))
    files = lambda m: sorted(os.listdir(tmp_path / m / "selections"))
    assert files("random") == ["epoch_0000.npz"]
    assert files("random_online") == ["epoch_0000.npz", "epoch_0002.npz"]
    a, b = (np.load(tmp_path / "random_online" / "selections" / f)["ids"]
            for f in files("random_online"))
    assert not np.array_equal(a, b)


def test_a_resumed_run_reloads_its_selection_instead_of_reselecting(tmp_path):
    config = _coreset_config(method="random_online")
    dataset = load_dataset(config.data, config.seed)
    selector = CoresetSelector(config, dataset)
    os.makedirs(tmp_path / "selections")
    planted = np.arange(0, 2 * selector.k, 2)
    np.savez(tmp_path / "selections" / "epoch_0002.npz", ids=planted,
             weights=np.full(len(planted), 3.0, np.float32))

    class Context:  # only .run.file is used when the selection exists
        class run:
            file = staticmethod(lambda name: str(tmp_path / name))
    subset = selector.subset_for_epoch(3, Context)
    np.testing.assert_array_equal(subset.ids, planted)
    np.testing.assert_array_equal(subset.weights, 3.0)


def test_bad_coreset_fields_are_named(tmp_path):
    for field, value, message in (("method", "craig", "coreset.method='craig'"),
                                  ("mode", "per_layer", "coreset.mode='per_layer'"),
                                  ("fraction", 0.0, "coreset.fraction=0.0"),
                                  ("every", 5, "coreset.every was renamed coreset.every_epochs")):
        config = _coreset_config(**{field: value})
        with pytest.raises(ValueError, match=message):
            train_and_evaluate(config, str(tmp_path / field))


def test_selection_gradient_modes_match_a_per_example_grad():
    """grads='full' rows equal jax.grad of one example's loss; projection has proj_dim columns."""
    import jax
    import jax.numpy as jnp
    import optax
    from datadiet.models import get_model
    from datadiet.coresets.grad_features import grads_fn
    from datadiet.training.state import apply_model, split_model

    g, p, b = split_model(get_model("mlp", 3, (4, 4, 1), 0, hidden=(5,)))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(6, 4, 4, 1)), jnp.float32)
    y = jnp.arange(6) % 3

    def loss(params, xi, yi):
        logits, _ = apply_model(g, params, b, xi[None], False)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yi[None]).sum()

    full = grads_fn("full")(g, p, b, x, y)
    for i in range(6):
        ref = jnp.concatenate([leaf.reshape(-1) for leaf in
                               jax.tree.leaves(jax.grad(loss)(p, x[i], y[i]))])
        np.testing.assert_allclose(full[i], ref, atol=1e-6)
    assert grads_fn("projection", 8)(g, p, b, x, y).shape == (6, 8)
    with pytest.raises(ValueError, match="grads='hessian'"):
        grads_fn("hessian")
