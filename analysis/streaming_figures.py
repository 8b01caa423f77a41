"""Figure and table of experiments/streaming.py results: test accuracy vs steps and vs training
seconds (mean over seeds, per method), and the stored values' ordering agreement over time.

  python analysis/streaming_figures.py runs/stream/results_streaming.json  # writes streaming.png
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis import figure_text  # noqa: E402


def _mean_curve(per_seed, column):
    """Mean over seeds at each evaluation (every run of a method evaluates at the same steps)."""
    rows = np.array([[point[column] for point in r["test"]] for r in per_seed], np.float64)
    return rows.mean(0)


def _accuracy_range(curves, target):
    """The y-range of the accuracy panels: every curve's second half and the target in view (a
    range fixed around the target left panels empty when runs ended far from it)."""
    tails = [c[len(c) // 2:] for c in curves if len(c)] or [np.array([target])]
    values = np.concatenate(tails + [np.array([target])])
    low, high = float(values.min()), float(values.max())
    pad = max(0.01, 0.1 * (high - low))
    return max(0.0, low - pad), min(1.0, high + pad)


def draw(results_path):
    with open(results_path) as f:
        results = json.load(f)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    accuracies = []
    for entry in results["runs"]:
        label, per_seed = entry["method"], entry["runs"]
        steps, seconds = _mean_curve(per_seed, 0), _mean_curve(per_seed, 1)
        acc = _mean_curve(per_seed, 2)
        accuracies.append(acc)
        axes[0].plot(steps, acc, label=label)
        axes[1].plot(seconds, acc, label=label)
        agreement = np.array([[d["order_agreement"] for _, d in r["diagnostics"]]
                              for r in per_seed]).mean(0)
        axes[2].plot([s for s, _ in per_seed[0]["diagnostics"]], agreement, label=label)
    target = results["target_accuracy"]
    low, high = _accuracy_range(accuracies, target)
    for ax, xlabel in zip(axes[:2], ("steps", "training seconds (mean over seeds)")):
        ax.axhline(target, ls="--", color="gray", lw=0.8)
        ax.set_ylim(low, high)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (mean over seeds)")
    axes[2].axhline(0.5, ls="--", color="gray", lw=0.8)
    axes[2].set_xlabel("steps")
    axes[2].set_ylabel("stored values' order agreement with current losses")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(figure_text.title(results, f"streaming (dashed: target {target:.0%})"),
                 fontsize=10)
    fig.tight_layout()
    png = os.path.join(os.path.dirname(results_path), "streaming.png")
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


def _cell(b, fmt):
    if b["mean"] is None:
        return "not reached"
    reached = "" if b["n"] == len(b["values"]) else f" ({b['n']}/{len(b['values'])} reached)"
    return f"{b['mean']:{fmt}} ({b['p16']:{fmt}}-{b['p84']:{fmt}}){reached}"


def table(results):
    """Markdown: per method, mean (16-84 band) over seeds."""
    t = results["target_accuracy"]
    lines = [f"| method | steps to {t:.0%} | train s to {t:.0%} | acc @ half budget | "
             f"acc @ budget | train s total |", "|---|---|---|---|---|---|"]
    for m in results["methods"]:
        lines.append(f"| {m['method']} | {_cell(m['steps_to_target'], '.0f')} | "
                     f"{_cell(m['seconds_to_target'], '.1f')} | "
                     f"{_cell(m['accuracy_at_half_budget'], '.4f')} | "
                     f"{_cell(m['accuracy_at_budget'], '.4f')} | "
                     f"{_cell(m['total_train_seconds'], '.1f')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print("wrote", draw(sys.argv[1]))
