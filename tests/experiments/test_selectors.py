"""The `selectors` pruning experiment end to end on the tiny digits run (1 seed, 2 rates, 4
selectors, 20% label noise): its results against the run directories and score files they come
from, the comparison with random and the noise precision recounted by hand."""
import json
import os

import ml_collections
import numpy as np
import pytest

from tiny_config import tiny_config
from analysis import pruning_figures
from experiments import pruning, selectors

SELECTORS = ("random", "high:el2n_epoch1", "ccs:aum", "moderate")


def _config(**experiment):
    c = tiny_config(epochs=2.0)
    c.job = "scores"
    c.scores.names, c.scores.epochs, c.scores.num_seeds = ("el2n", "loss", "aum"), (1,), 1
    c.scores.embeddings = 2
    c.experiment = ml_collections.ConfigDict(dict(
        kind="selectors", scores_root="", seeds=(0,), fractions_pruned=(0.5, 0.8),
        selectors=SELECTORS, label_noise=0.2, noise_scores=("aum", "el2n_epoch1", "loss_epoch1"))
        | experiment)
    return c


def _json(*parts):
    with open(os.path.join(*parts)) as f:
        return json.load(f)


@pytest.mark.parametrize("bad, what", [
    (dict(selectors=("random", "highest:el2n_epoch1")), "'highest:el2n_epoch1' is not a selector"),
    (dict(selectors=("random", "high:grand_epoch1")), "'high:grand_epoch1' is not a selector"),
    (dict(selectors=("high:el2n_epoch1",)), "must include 'random'"),
    (dict(fractions_pruned=(0.0, 0.5)), "experiment.fractions_pruned"),
    (dict(noise_scores=("aum", "forgetting")), "experiment.noise_scores"),
])
def test_bad_experiment_fields_fail_before_any_training(tmp_path, bad, what):
    with pytest.raises(ValueError, match="experiment.") as err:
        pruning.selectors(_config(**bad), str(tmp_path))
    assert what in str(err.value)
    assert os.listdir(tmp_path) == []  # no scores job started


def test_geometric_selectors_need_the_embeddings(tmp_path):
    c = _config()
    c.scores.embeddings = -1
    with pytest.raises(ValueError, match="experiment.selectors: 'moderate' needs the embeddings"):
        pruning.selectors(c, str(tmp_path))


def test_compare_with_random_uses_the_larger_half_width():
    def point(name, mean, half):
        return {"selector": name, "fraction_pruned": 0.5, "mean": mean, "p16": mean - half,
                "p84": mean + half}
    points = [point("random", 0.80, 0.01), point("a", 0.83, 0.02), point("b", 0.815, 0.005),
              point("c", 0.77, 0.02), point("d", 0.785, 0.02)]
    [c] = selectors.compare_with_random(points)
    # a: +0.03 > max(0.02, 0.01); b: +0.015 > 0.01; c: -0.03 < -0.02; d: -0.015 within 0.02
    assert (c["above"], c["below"], c["within"]) == (["a", "b"], ["c"], ["d"])
    assert c["differences"]["d"]["margin"] == pytest.approx(0.02)


def test_selectors_experiment(tmp_path):
    workdir = str(tmp_path)
    results = pruning.selectors(_config(), workdir)
    results.update(kind="selectors", seeds=[0])
    path = os.path.join(workdir, "results_selectors.json")
    with open(path, "w") as f:
        json.dump(results, f)
    assert os.path.getsize(pruning_figures.draw(path)) > 0
    text = pruning_figures.table(results)
    assert "vs random" in text and "lowest aum" in text

    points = {(p["selector"], p["fraction_pruned"]): p for p in results["points"]}
    assert sorted(points) == sorted((s, r) for s in SELECTORS for r in (0.5, 0.8))
    assert results["full"]["values"] == [
        _json(workdir, "runs/full_s0/status.json")["final"]["test"]["accuracy"]]
    for (name, rate), p in points.items():
        rdir = os.path.join(workdir, "runs", f"{name.replace(':', '_')}_pruned{rate}_s0")
        assert p["n"] == 1 and p["values"] == [
            _json(rdir, "status.json")["final"]["test"]["accuracy"]]
        prune = _json(rdir, "config.json")["prune"]
        assert prune["keep"] == pytest.approx(1 - rate)
        assert prune["method"] == name.split(":")[0]
    # ccs:aum read the negated AUM (low AUM = hard); moderate the scores job's embeddings.
    sdir = os.path.join(workdir, "scores_noise0.0")
    ccs = _json(workdir, "runs/ccs_aum_pruned0.5_s0/config.json")["prune"]
    assert ccs["scores"] == os.path.join(sdir, "difficulty", "aum.npy")
    np.testing.assert_array_equal(np.load(ccs["scores"]),
                                  -np.load(os.path.join(sdir, "scores", "aum.npy")))
    assert _json(workdir, "runs/moderate_pruned0.8_s0/config.json")["prune"]["embeddings"] == \
        os.path.join(sdir, "scores", "embeddings_epoch2.npy")

    # above / below random, by hand from the run values (one seed: both half-widths are 0)
    for c in results["comparison"]:
        rate = c["fraction_pruned"]
        random = points["random", rate]["values"][0]
        others = [s for s in SELECTORS if s != "random"]
        assert c["above"] == [s for s in others if points[s, rate]["values"][0] > random]
        assert c["below"] == [s for s in others if points[s, rate]["values"][0] < random]
    assert [c["fraction_pruned"] for c in results["comparison"]] == [0.5, 0.8]

    # noise precision, recounted from the noisy scores job's files
    ndir = os.path.join(workdir, "scores_noise0.2")
    noisy = set(_json(ndir, "label_noise.json")["ids"])
    k = len(noisy)
    detection = results["noise_detection"]["0.2"]
    for name, lowest in (("aum", True), ("el2n_epoch1", False), ("loss_epoch1", False)):
        s = np.load(os.path.join(ndir, "scores", name + ".npy")).astype(np.float64)
        order = sorted(range(len(s)), key=lambda i: (s[i] if lowest else -s[i], i))
        hits = sum(i in noisy for i in order[:k])
        assert detection[name]["k"] == k
        assert detection[name]["precision"] == pytest.approx(hits / k)
        assert detection[name]["ranking"] == ("lowest" if lowest else "highest")
    # a planted check of the direction: the lowest AUM finds the noise far better than chance
    assert detection["aum"]["precision"] > 2 * 0.2
