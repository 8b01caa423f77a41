"""Figures and tables of experiments/training_dynamics.py results (results_<kind>.json).

  python analysis/dynamics_figures.py runs/dyn/results_velocity.json   # writes velocity.png
"""
import json
import os
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis import figure_text  # noqa: E402


def _barrier_summary(points):
    """{(subset, spawn_epoch): (mean, min, max) over child pairs}."""
    groups = {}
    for p in points:
        groups.setdefault((p["subset"], p["spawn_epoch"]), []).append(p["barrier"])
    return {k: (float(np.mean(v)), float(np.min(v)), float(np.max(v)))
            for k, v in sorted(groups.items())}


def draw(results_path):
    with open(results_path) as f:
        results = json.load(f)
    kind = results["kind"]
    if kind == "velocity":
        noises = sorted({p["label_noise"] for p in results["points"]})
        fig, axes = plt.subplots(1, len(noises), figsize=(5 * len(noises), 4), squeeze=False)
        for ax, noise in zip(axes[0], noises):
            rows = [p for p in results["points"] if p["label_noise"] == noise]
            for t in sorted({p["epoch"] for p in rows}):
                pts = sorted((p for p in rows if p["epoch"] == t),
                             key=lambda p: p["score_percentile"])
                ax.plot([p["score_percentile"] for p in pts],
                        [p["kernel_distance"] for p in pts], "o-", label=f"epoch {t}->{t + 1}")
            ax.set_xlabel(f"{results['score']} percentile of the group")
            ax.set_ylabel("kernel distance (NTK velocity)")
            ax.set_title(f"{noise:.0%} label noise")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    else:
        fig, ax = plt.subplots(figsize=(6, 4.2))
        summary = _barrier_summary(results["points"])
        for subset in ("lowest", "random", "highest"):
            ks = sorted(t for s, t in summary if s == subset)
            mean = [summary[subset, t][0] for t in ks]
            ax.plot(ks, mean, "o-", label=f"{subset} {results['score']}")
            ax.fill_between(ks, [summary[subset, t][1] for t in ks],
                            [summary[subset, t][2] for t in ks], alpha=0.2)
        ax.set_xlabel("spawn epoch t*")
        ax.set_ylabel("error barrier (mean over child pairs)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="band: min-max over child pairs", title_fontsize=7)
    fig.suptitle(figure_text.title(results, f"training dynamics: {kind}"), fontsize=9)
    fig.tight_layout()
    png = os.path.join(os.path.dirname(results_path), f"{kind}.png")
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


def table(results):
    if results["kind"] == "velocity":
        lines = ["| noise | epoch | " + " | ".join(
            f"g{g}" for g in sorted({p["group"] for p in results["points"]})) + " |"]
        keys = sorted({(p["label_noise"], p["epoch"]) for p in results["points"]})
        for noise, t in keys:
            pts = sorted((p for p in results["points"]
                          if p["label_noise"] == noise and p["epoch"] == t),
                         key=lambda p: p["group"])
            lines.append(f"| {noise} | {t}->{t + 1} | " +
                         " | ".join(f"{p['kernel_distance']:.4f}" for p in pts) + " |")
        pct = sorted({(p["group"], round(p["score_percentile"], 1)) for p in results["points"]})
        lines.append("group percentiles: " + ", ".join(f"g{g}={p}" for g, p in pct))
        return "\n".join(lines)
    lines = ["| subset | spawn epoch | barrier mean | min | max |", "|---|---|---|---|---|"]
    for (subset, t), (mean, lo, hi) in _barrier_summary(results["points"]).items():
        lines.append(f"| {subset} | {t} | {mean:.4f} | {lo:.4f} | {hi:.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print("wrote", draw(sys.argv[1]))
