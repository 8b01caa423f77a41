"""Tuning on subsets against tuning on the full data: wall time, speedup, the chosen
configuration, its retrained full-data test accuracy and an energy estimate.

  python analysis/tuning_report.py runs/tune/results_tune.json
      # writes tuning.png and tuning.md beside it
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def table(results):
    rows = ["| trials on | tuning wall time (s) | speedup | epochs trained | energy (Wh) | "
            "chosen configuration | val acc (trial) | retrained test acc | vs full (points) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for arm in results["arms"]:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(arm["best_params"].items()))
        rows.append(f"| {arm['name']} | {arm['tuning_seconds']:.1f} | {arm['speedup']:.2f}x | "
                    f"{arm['epochs_trained']} | {1000 * arm['energy_kwh']:.2f} | {params} | "
                    f"{arm['best_value']:.4f} | {arm['test_accuracy']:.4f} | "
                    f"{100 * arm['accuracy_gap']:+.2f} |")
    return "\n".join(rows) + "\n"


def _fmt(v):
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def draw(results_path):
    with open(results_path) as f:
        results = json.load(f)
    arms = results["arms"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, arm in enumerate(arms):
        ax.scatter(arm["tuning_seconds"], 100 * arm["test_accuracy"], s=80, color=f"C{i}",
                   label=f"{arm['name']} ({arm['speedup']:.1f}x)")
    ax.set_xlabel("tuning wall time (s)")
    ax.set_ylabel("test accuracy of the chosen config, retrained on full data (%)")
    ax.set_title(f"{results['settings']['search']} + {results['settings']['scheduler']}, "
                 f"{results['settings']['n_trials']} trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    base = os.path.dirname(os.path.abspath(results_path))
    png, md = os.path.join(base, "tuning.png"), os.path.join(base, "tuning.md")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    with open(md, "w") as f:
        f.write(table(results))
    return png, md


if __name__ == "__main__":
    print(draw(sys.argv[1]))
