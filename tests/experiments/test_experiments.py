"""The experiment runners end to end on the tiny digits run: every kind produces its results
and figure, and their numbers agree with the run directories they come from."""
import json
import os

import ml_collections
import numpy as np
import pytest

from tiny_config import tiny_config
from analysis import dynamics_figures, pruning_figures, streaming_figures
from experiments import pruning, streaming, training_dynamics


def _config(**experiment):
    c = tiny_config(epochs=2.0)
    c.job = "scores"
    c.scores.names = ("el2n", "grand", "forgetting", "input_norm")
    c.scores.epochs = (0, 1)
    c.scores.num_seeds = 1
    c.experiment = ml_collections.ConfigDict(dict(scores_root="", seeds=(0,)) | experiment)
    return c


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("experiments"))


def _finish(results, kind, workdir, module):
    results["kind"] = kind
    path = os.path.join(workdir, f"results_{kind}.json")
    with open(path, "w") as f:
        json.dump(results, f)
    assert os.path.getsize(module.draw(path)) > 0
    assert module.table(results)
    return results


def test_pruning_curve_and_epochs(workdir):
    c = _config(kind="curve", fractions_pruned=(0.0, 0.5),
                methods=(("EL2N", "el2n_epoch1"), ("Random", "random")))
    results = _finish(pruning.curve(c, workdir), "curve", workdir, pruning_figures)
    points = {(p["method"], p["fraction_pruned"]): p for p in results["points"]}
    full = json.load(open(os.path.join(workdir, "runs/full_s0/status.json")))["final"]
    assert points["EL2N", 0.0]["mean"] == full["test"]["accuracy"]
    assert points["Random", 0.5]["n"] == 1 and 0.1 < points["Random", 0.5]["mean"] <= 1
    c = _config(kind="epochs", fraction_pruned=0.5, methods=(("EL2N", "el2n"),))
    results = _finish(pruning.epochs(c, workdir), "epochs", workdir, pruning_figures)
    assert [p["epoch"] for p in results["points"]] == [0, 1]
    # The epoch-1 point is the curve's EL2N point: the same run directory, reused.
    assert results["points"][1]["mean"] == points["EL2N", 0.5]["mean"]


def test_pruning_window_with_label_noise(workdir):
    c = _config(kind="window", score="el2n_epoch1", keep=0.5, offsets=(0.0, 0.5),
                label_noise=(0.0, 0.2))
    results = _finish(pruning.window(c, workdir), "window", workdir, pruning_figures)
    assert len(results["points"]) == 4
    detection = results["noise_detection"]["0.2"]
    assert set(detection) >= {"el2n_epoch1", "forgetting", "input_norm"}
    noisy = json.load(open(os.path.join(workdir, "scores_noise0.2/label_noise.json")))["ids"]
    assert detection["el2n_epoch1"]["k"] == len(noisy)
    # Each noisy retraining run saw exactly the scores job's corrupted labels.
    run = json.load(open(os.path.join(workdir, "runs/el2n_epoch1_window0.5_keep0.5_noise0.2_s0/"
                                               "label_noise.json")))
    assert run["ids"] == noisy


def test_training_dynamics_velocity_and_barrier(workdir):
    c = _config(kind="velocity", score="el2n_epoch1", group_size=20, n_groups=3, trace=True,
                label_noise=(0.0,))
    results = _finish(training_dynamics.velocity(c, workdir), "velocity", workdir,
                      dynamics_figures)
    assert len(results["points"]) == 2 * 3  # two epoch transitions x three groups
    assert all(0 < p["kernel_distance"] < 1 for p in results["points"])
    c = _config(kind="barrier", score="el2n_epoch1", spawn_epochs=(1,), child_seeds=((5, 6),),
                subset_size=100, alphas=5, recompute_bn=True)
    results = _finish(training_dynamics.barrier_experiment(c, workdir), "barrier", workdir,
                      dynamics_figures)
    assert {p["subset"] for p in results["points"]} == {"lowest", "highest", "random"}
    for p in results["points"]:
        errors = np.array(p["errors"])
        a = np.array(p["alphas"])
        assert p["barrier"] == pytest.approx(
            np.max(errors - a * errors[-1] - (1 - a) * errors[0]))


def test_streaming_steps_and_seconds_to_target(workdir):
    c = tiny_config(epochs=2.0)
    c.sampling.log_every_steps, c.sampling.probe_size = 10, 100
    c.experiment = ml_collections.ConfigDict(dict(
        seeds=(0,), target_accuracy=0.6,
        methods=(("Uniform", "uniform", "uniform"), ("PLB", "plb", "forward"))))
    results = _finish(streaming.run_all(c, workdir), "streaming", workdir, streaming_figures)
    for m in results["methods"]:
        rdir = os.path.join(workdir, "runs", f"{m['sampling']}_s0")
        with open(os.path.join(rdir, "metrics.jsonl")) as f:
            events = [json.loads(line) for line in f]
        tests = [e for e in events if e["split"] == "test"]
        assert [e["step"] for e in tests] == [10, 20, 30, 40, 46]
        reached = [e for e in tests if e["accuracy"] >= 0.6]
        assert reached, "the tiny run should pass 60% test accuracy"
        train = {e["step"]: e for e in events if e["split"] == "train"}
        assert m["steps_to_target"]["values"] == [reached[0]["step"]]
        assert m["seconds_to_target"]["values"] == [train[reached[0]["step"]]["train_time"]]
        final = json.load(open(os.path.join(rdir, "status.json")))["final"]["test"]["accuracy"]
        assert m["accuracy_at_budget"]["values"] == [final]
        assert m["accuracy_at_half_budget"]["values"] == [
            [e for e in tests if e["step"] <= 23][-1]["accuracy"]]
