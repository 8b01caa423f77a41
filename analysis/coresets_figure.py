"""Accuracy against total wall time for each coreset method and fraction.

  python analysis/coresets_figure.py runs/coresets/results_coresets.json   # coresets.png beside it
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis import figure_text  # noqa: E402


def draw(results_path):
    with open(results_path) as f:
        results = json.load(f)
    summary = results["summary"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = {0.1: "o", 0.3: "s", 1.0: "*"}
    for i, method in enumerate(sorted({s["method"] for s in summary})):
        points = sorted((s for s in summary if s["method"] == method),
                        key=lambda s: s["fraction"])
        for s in points:
            ax.errorbar(s["wall_time_mean"], s["test_accuracy_mean"],
                        yerr=s["test_accuracy_std"], color=f"C{i}",
                        marker=markers.get(s["fraction"], "^"), markersize=8, capsize=3,
                        label=method if s is points[0] else None)
    ax.set_xlabel("total wall time per run, selection included (s)")
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.set_title(figure_text.title(results, "coresets: circles 10%, squares 30%, star full "
                                   "data; bars: std over seeds"), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out = os.path.join(os.path.dirname(results_path), "coresets.png")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def table(results):
    """Markdown: accuracy, wall time and selection share per method and fraction."""
    lines = ["| method | fraction | seeds | test accuracy (mean ± std) | wall time (s) | "
             "selection share |", "|---|---|---|---|---|---|"]
    for s in results["summary"]:
        lines.append(f"| {s['method']} | {s['fraction']} | {s['seeds']} | "
                     f"{s['test_accuracy_mean']:.4f} ± {s['test_accuracy_std']:.4f} | "
                     f"{s['wall_time_mean']:.1f} | {100 * s['selection_share']:.1f}% |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(draw(sys.argv[1]))
