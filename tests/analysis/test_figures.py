"""The experiment figures: their y-range shows the curves, their titles say what was run."""
import json

import matplotlib.pyplot as plt
import pytest

from analysis import figure_text, pruning_figures, streaming_figures


@pytest.fixture
def kept_figures(monkeypatch):
    """The figures draw() makes, kept open for inspection."""
    figures, close = [], plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    yield figures
    for fig in figures:
        close(fig)


def _streaming_results(tmp_path, accuracies, target):
    def seed_run(offset):
        test = [[100 * (i + 1), 2.0 * (i + 1), a + offset] for i, a in enumerate(accuracies)]
        return {"test": test, "diagnostics": [[100, {"order_agreement": 0.7}]]}
    results = {"target_accuracy": target, "seeds": [0, 1],
               "config": {"data": {"name": "fashion_mnist"}, "model": {"name": "small_cnn"}},
               "runs": [{"method": "plb", "runs": [seed_run(0.0), seed_run(0.01)]}]}
    path = tmp_path / "results_streaming.json"
    path.write_text(json.dumps(results))
    return str(path)


def test_streaming_panels_show_runs_far_from_the_target(tmp_path, kept_figures):
    # every accuracy is >= 0.3 below the target: a range fixed around the target shows nothing
    path = _streaming_results(tmp_path, [0.30, 0.40, 0.45, 0.50], target=0.9)
    streaming_figures.draw(path)
    fig = kept_figures[-1]
    for ax in fig.axes[:2]:
        low, high = ax.get_ylim()
        assert low <= 0.45 and high >= 0.9  # the curves' second half and the target in view
    assert fig._suptitle.get_text().endswith("fashion_mnist, small_cnn, seeds 0, 1")


def test_pruning_figure_titles_name_dataset_model_seeds_and_the_band(tmp_path, kept_figures):
    point = {"method": "el2n", "fraction_pruned": 0.5, "mean": 0.9, "p16": 0.89, "p84": 0.91}
    results = {"kind": "curve", "points": [point, {**point, "fraction_pruned": 0.7}],
               "config": {"data": {"name": "fashion_mnist"}, "model": {"name": "small_cnn"},
                          "experiment": {"seeds": [0, 1, 2]}}}
    path = tmp_path / "results_curve.json"
    path.write_text(json.dumps(results))
    pruning_figures.draw(str(path))
    ax = kept_figures[-1].axes[0]
    assert ax.get_title() == "pruning: curve - fashion_mnist, small_cnn, seeds 0, 1, 2"
    assert ax.get_legend().get_title().get_text() == figure_text.BAND
