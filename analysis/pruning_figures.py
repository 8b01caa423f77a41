"""Figures and tables of experiments/pruning.py results (a results.json per experiment).

  python analysis/pruning_figures.py runs/fig1b/results.json   # writes runs/fig1b/curve.png
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis import figure_text  # noqa: E402


def _series(points, key, x):
    groups = {}
    for p in points:
        groups.setdefault(p[key], []).append(p)
    return {k: sorted(v, key=lambda p: p[x]) for k, v in groups.items()}


def _plot(ax, rows, x, label):
    xs = [r[x] for r in rows]
    ax.plot(xs, [r["mean"] for r in rows], "o-", label=label)
    ax.fill_between(xs, [r["p16"] for r in rows], [r["p84"] for r in rows], alpha=0.2)


def draw(results_path):
    with open(results_path) as f:
        results = json.load(f)
    kind = results["kind"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    if kind == "curve":
        for method, rows in _series(results["points"], "method", "fraction_pruned").items():
            _plot(ax, rows, "fraction_pruned", method)
        ax.set_xlabel("fraction of the training set pruned")
    elif kind == "epochs":
        for method, rows in _series(results["points"], "method", "epoch").items():
            _plot(ax, rows, "epoch", f"{method} (keep highest)")
        for ref in ("full", "random"):
            ax.axhline(results[ref]["mean"], ls="--", color="k" if ref == "full" else "gray",
                       label=f"{ref} ({'all data' if ref == 'full' else 'same size'})")
        ax.set_xlabel(f"epoch the scores are taken at ({results['fraction_pruned']:.0%} pruned)")
    else:
        for noise, rows in _series(results["points"], "label_noise", "offset").items():
            _plot(ax, rows, "offset", f"{noise:.0%} label noise")
        ax.set_xlabel(f"window offset in the {results['score']} ranking "
                      f"(keep {results['keep']:.0%}; 0 = highest scores)")
    ax.set_ylabel("final test accuracy (mean over seeds)")
    ax.set_title(figure_text.title(results, f"pruning: {kind}"), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=figure_text.BAND, title_fontsize=7)
    fig.tight_layout()
    png = os.path.join(os.path.dirname(results_path), f"{kind}.png")
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


def table(results):
    """A markdown table of every point: mean and 16-84 band."""
    kind = results["kind"]
    keys = {"curve": ("method", "fraction_pruned"), "epochs": ("method", "epoch"),
            "window": ("label_noise", "offset")}[kind]
    lines = [f"| {keys[0]} | {keys[1]} | mean | 16-84 band |", "|---|---|---|---|"]
    for p in results["points"]:
        lines.append(f"| {p[keys[0]]} | {p[keys[1]]} | {p['mean']:.4f} | "
                     f"{p['p16']:.4f}-{p['p84']:.4f} |")
    for ref in ("full", "random"):
        if ref in results:
            r = results[ref]
            lines.append(f"| {ref} | | {r['mean']:.4f} | {r['p16']:.4f}-{r['p84']:.4f} |")
    for noise, by_score in results.get("noise_detection", {}).items():
        lines.append(f"\nnoise detection at {noise} label noise (k = number of noisy labels):")
        lines += [f"  {name}: precision {d['precision']:.3f} recall {d['recall']:.3f} (k={d['k']})"
                  for name, d in by_score.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print("wrote", draw(sys.argv[1]))
