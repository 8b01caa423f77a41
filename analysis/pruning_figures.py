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


def _plot(ax, rows, x, label, **style):
    xs = [r[x] for r in rows]
    line, = ax.plot(xs, [r["mean"] for r in rows], style.pop("fmt", "o-"), label=label, **style)
    ax.fill_between(xs, [r["p16"] for r in rows], [r["p84"] for r in rows], alpha=0.2,
                    color=line.get_color())


def _selectors(ax, results):
    markers = "osD^v<>ph*X"
    series = _series(results["points"], "selector", "fraction_pruned")
    for i, (name, rows) in enumerate(series.items()):
        # random is the baseline every selector is compared with: black, dashed, on top
        style = (dict(fmt="k--", lw=2.5, zorder=5) if name == "random"
                 else dict(fmt=f"{markers[i % len(markers)]}-", lw=1.2))
        _plot(ax, rows, "fraction_pruned", name, **style)
    ax.axhline(results["full"]["mean"], ls=":", color="gray", label="full data")
    ax.set_xlabel("fraction of the training set pruned")


def draw(results_path):
    with open(results_path) as f:
        results = json.load(f)
    kind = results["kind"]
    fig, ax = plt.subplots(figsize=(7, 5) if kind == "selectors" else (6, 4.2))
    if kind == "selectors":
        _selectors(ax, results)
    elif kind == "curve":
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


def _band(p):
    return f"{p['mean']:.4f} ({p['p16']:.4f}-{p['p84']:.4f})"


def selectors_table(results):
    """One row per selector, one column per fraction pruned (mean and 16-84 band), then per
    fraction the selectors above and below random (experiments/selectors.py
    compare_with_random: mean difference beyond the larger 16-84 half-width)."""
    series = _series(results["points"], "selector", "fraction_pruned")
    rates = sorted({p["fraction_pruned"] for p in results["points"]})
    lines = ["| selector | " + " | ".join(f"{r:.0%} pruned" for r in rates) + " |",
             "|---|" + "---|" * len(rates)]
    lines += [f"| {name} | " + " | ".join(_band(r) for r in rows) + " |"
              for name, rows in series.items()]
    lines.append(f"\nfull data: {_band(results['full'])}")
    lines.append("\nvs random (above/below: mean difference beyond the larger of the two 16-84 "
                 "half-widths over seeds; with one seed, any difference):")
    for c in results["comparison"]:
        lines.append(f"  {c['fraction_pruned']:.0%} pruned (random {c['random_mean']:.4f}): "
                     f"above {', '.join(c['above']) or '-'}; below {', '.join(c['below']) or '-'}; "
                     f"within {', '.join(c['within']) or '-'}")
    for noise, by_score in results.get("noise_detection", {}).items():
        lines.append(f"\ncorrupted labels found at {noise} label noise (precision among the k "
                     "lowest / highest, k = number of corrupted labels; chance = the noise rate):")
        lines += [f"  {d['ranking']} {name}: precision {d['precision']:.3f} (k={d['k']})"
                  for name, d in by_score.items()]
    return "\n".join(lines)


def table(results):
    """A markdown table of every point: mean and 16-84 band."""
    kind = results["kind"]
    if kind == "selectors":
        return selectors_table(results)
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
