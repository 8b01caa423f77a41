"""coreset.candidate_fraction: each GRAD-MATCH selection looks at a fresh random share of the
candidates; 1.0 is the exact selection."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from datadiet.coresets import gradmatch, selector
from datadiet.data import load_dataset
from datadiet.jobs.train import train_and_evaluate
from tiny_config import tiny_config


def _config(**coreset):
    config = tiny_config(epochs=4.0, batch_size=16)
    config.coreset.update(dict(method="gradmatch", fraction=0.2, every_epochs=2, warm_start=0.25),
                          **coreset)
    return config


def _run(tmp_path, name, monkeypatch, **coreset):
    """Runs training; returns the saved selections and each selection's (ids, grads) seen."""
    seen, real = [], selector.example_grads

    def recording(context, dataset, ids, cfg):
        grads = real(context, dataset, ids, cfg)
        seen.append((np.array(ids), np.asarray(grads)))
        return grads

    monkeypatch.setattr(selector, "example_grads", recording)
    config = _config(**coreset)
    train_and_evaluate(config, str(tmp_path / name))
    events = [json.loads(line) for line in open(tmp_path / name / "metrics.jsonl")]
    epochs = [e["epoch"] for e in events if e.get("kind") == "selection"]
    saved = [dict(np.load(tmp_path / name / "selections" / f"epoch_{t:04d}.npz")) for t in epochs]
    return config, epochs, saved, seen


def test_fraction_one_is_the_exact_selection_bit_for_bit(tmp_path, monkeypatch):
    # Rebuilt independently from its parts: OMP over every candidate's gradient, with the
    # selection's seeded partition into batches, exactly as before subsampling existed.
    config, epochs, saved, seen = _run(tmp_path, "exact", monkeypatch, mode="per_batch",
                                       candidate_fraction=1.0)
    n, B = 1437, 16
    k = round(0.2 * n)
    for t, sel, (ids, grads) in zip(epochs, saved, seen):
        np.testing.assert_array_equal(ids, np.arange(n))
        rng = np.random.default_rng([config.seed, t, 0x5e1])
        rows = rng.permutation(n)[: n // B * B].reshape(-1, B)
        target = jnp.asarray(grads).sum(0) / B  # summed on device, as a selection does
        chosen, w, _ = gradmatch.select_per_batch(grads, target, rows, k // B,
                                                  0.5, config.coreset.eps)
        ids, w = gradmatch.fill_budget(chosen, w, np.arange(n), k, rng)
        np.testing.assert_array_equal(sel["ids"], ids)
        np.testing.assert_array_equal(sel["weights"], w)


@pytest.mark.parametrize("mode", ["per_class", "per_batch"])
def test_subsampled_selections_keep_budgets_and_draw_fresh_pools(tmp_path, monkeypatch, mode):
    config, epochs, saved, seen = _run(tmp_path, mode, monkeypatch, mode=mode,
                                       candidate_fraction=0.5)
    y = load_dataset(config.data, config.seed).y_train
    n, k = len(y), round(0.2 * len(y))
    assert len(epochs) == len(seen) == 2
    pools = [ids for ids, _ in seen]
    for pool, sel in zip(pools, saved):
        assert len(sel["ids"]) == len(set(sel["ids"])) == k
        if mode == "per_class":  # a stratified half: each class keeps half its examples
            np.testing.assert_allclose(np.bincount(y[pool], minlength=10),
                                       np.bincount(y, minlength=10) / 2, atol=0.5)
            # per-class proportions of the selection: k n_c / n, up to rounding
            np.testing.assert_allclose(np.bincount(y[sel["ids"]], minlength=10),
                                       k * np.bincount(y, minlength=10) / n, atol=1)
        else:  # half of the batches of 16, whole batches only
            assert len(pool) == round(0.5 * (n // 16)) * 16
        assert np.isin(sel["ids"][: k // 16 * 16 if mode == "per_batch" else k], pool).all()
    assert not np.array_equal(pools[0], pools[1])  # a fresh pool at every selection


def test_subsampled_selections_compile_once(tmp_path, monkeypatch):
    # The pool has the same size at every selection, so the second selection compiles nothing.
    # (A pool size no other test uses: the first selection must compile, whatever ran before,
    # or load its programs from the tests' persistent compilation cache, left by an earlier run.)
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, *a, **kw: compiles.append(event) if "backend_compile" in event else None)
    jax.monitoring.register_event_listener(
        lambda event, *a, **kw: compiles.append(event) if event.endswith("/cache_hits") else None)
    counts = []
    real = selector.CoresetSelector._select

    def counting(self, sel_epoch, context):
        before = len(compiles)
        out = real(self, sel_epoch, context)
        counts.append(len(compiles) - before)
        return out

    monkeypatch.setattr(selector.CoresetSelector, "_select", counting)
    train_and_evaluate(_config(mode="per_batch", candidate_fraction=0.35), str(tmp_path))
    assert len(counts) == 2 and counts[0] > 0 and counts[1] == 0


def test_bad_candidate_fraction_is_named(tmp_path):
    for value in (0.0, 1.5):
        with pytest.raises(ValueError, match=rf"coreset.candidate_fraction={value} must be in"):
            train_and_evaluate(_config(candidate_fraction=value), str(tmp_path / str(value)))
    # a pool no larger than the budget (fraction 0.2) would be chosen whole
    with pytest.raises(ValueError, match=r"coreset.candidate_fraction=0.2 must exceed "
                                         r"coreset.fraction=0.2 \(or be 1"):
        train_and_evaluate(_config(candidate_fraction=0.2), str(tmp_path / "pool"))


def test_automata_warm_start_is_kappa_epochs_fraction_full_epochs(tmp_path):
    # AUTOMATA: kappa x T x f full-data epochs, here 5 x 4 x 0.1 = 2, then subsets of k.
    config = _config(mode="per_batch", warm_start=0.0, warm_start_kappa=5.0, fraction=0.1)
    train_and_evaluate(config, str(tmp_path))
    events = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [e["epoch"] for e in events if e.get("kind") == "selection"] == [2]
    steps = [e["step"] for e in events if e["split"] == "train" and "kind" not in e]
    full, sub = -(-1437 // 16), -(-round(0.1 * 1437) // 16)
    assert steps == [full, 2 * full, 2 * full + sub, 2 * full + 2 * sub]
    with pytest.raises(ValueError, match="coreset.warm_start_kappa=5.0 must be >= 0, and 0"):
        train_and_evaluate(_config(warm_start=0.25, warm_start_kappa=5.0), str(tmp_path / "b"))


def test_fill_per_class_tops_each_class_up_to_its_budget():
    rng = np.random.default_rng(0)
    candidates, labels = np.arange(100, 130), np.arange(30) % 3
    ids, w = gradmatch.fill_per_class(np.array([100, 103, 101]), np.array([2.0, 4.0, 1.0]),
                                      candidates, labels, [4, 3, 2], rng)
    assert len(set(ids)) == len(ids) == 9 and np.isin(ids, candidates).all()
    np.testing.assert_array_equal(np.bincount((ids - 100) % 3), [4, 3, 2])
    assert {100, 101, 103} <= set(ids)
    # fills carry their class's mean OMP weight: class 0 chose weights 2 and 4, class 1 one 1
    np.testing.assert_array_equal(sorted(w[(ids - 100) % 3 == 0]), [2, 3, 3, 4])
    np.testing.assert_array_equal(w[(ids - 100) % 3 == 1], 1)
