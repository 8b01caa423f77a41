"""The score-set part of the report: per-class histograms, the Spearman matrix between scores,
and galleries of the k hardest / easiest training examples per class for every score."""
import html
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import scipy.stats

from analysis.report.page import table
from datadiet.scores import scoreset

# Scores where a LOW value marks a hard example (the label's probability margin); input_norm
# has no hard/easy reading, its galleries are its highest and lowest values.
LOW_IS_HARD = ("margin",)


def section(score_set, out_dir, k=10, data_path=None):
    """HTML for one score set; writes its PNGs into out_dir (relative links)."""
    parts = [f"<h2>Score set {html.escape(score_set.directory)}</h2>", _provenance(score_set)]
    parts.append(_histograms(score_set, out_dir))
    parts.append(_spearman(score_set, out_dir))
    dataset = scoreset.dataset_of(score_set.provenance["config"], data_path)
    if dataset.modality != "image":
        parts.append(f"<p>No galleries: {html.escape(dataset.name)} is {dataset.modality} "
                     "data, not images.</p>")
    else:
        parts.append(_galleries(score_set, dataset.x_train, out_dir, k))
    return "\n".join(parts)


def _provenance(s):
    p = s.provenance
    noise = p["label_noise"]
    rows = [("dataset", p["dataset"]), ("model", p["model"]), ("n_train", p["n_train"]),
            ("seeds", p["seeds"]), ("scores", ", ".join(s.names)),
            ("label noise", f"{len(noise['ids'])} corrupted labels" if noise else "none")]
    rows += [(name, f"{values.shape[0]} x {values.shape[1]} (not a score: no histogram)")
             for name, values in sorted(s.embeddings.items())]
    return table(["field", "value"], rows)


def _histograms(s, out_dir):
    classes = np.unique(s.labels)
    cols = 4
    rows = -(-len(s.names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, s.names):
        values = s.scores[name]
        bins = np.histogram_bin_edges(values, bins=40)
        for c in classes:
            ax.stairs(np.histogram(values[s.labels == c], bins)[0], bins, label=str(c))
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(s.names):]:
        ax.axis("off")
    axes.flat[0].legend(title="class", fontsize=6, title_fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "histograms.png"), dpi=90)
    plt.close(fig)
    return ('<h3>Histograms per class</h3><img class="figure" src="histograms.png" '
            'alt="score histograms per class">')


def _spearman(s, out_dir):
    names = s.names
    if len(names) < 2:
        return "<p>One score: no Spearman matrix.</p>"
    rho = scipy.stats.spearmanr(np.stack([s.scores[n] for n in names], axis=1)).statistic
    rho = np.atleast_2d(rho)
    fig, ax = plt.subplots(figsize=(1 + 0.45 * len(names), 0.8 + 0.4 * len(names)))
    im = ax.imshow(rho, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "spearman.png"), dpi=90)
    plt.close(fig)
    rows = [[n, *(f"{r:.2f}" for r in row)] for n, row in zip(names, rho)]
    return ('<h3>Agreement between scores (Spearman rank correlation)</h3>'
            '<img class="figure" src="spearman.png" alt="Spearman matrix">'
            f'<details><summary>values</summary>{table(["", *names], rows)}</details>')


def ranked_per_class(values, labels, k, low_first=False):
    """{class: the ids of its k highest values, highest first} (lowest with low_first)."""
    out = {}
    for c in np.unique(labels):
        ids = np.flatnonzero(labels == c)
        key = values[ids] if low_first else -values[ids]
        out[int(c)] = ids[np.argsort(key, kind="stable")[:k]]
    return out


def _galleries(s, images, out_dir, k):
    corrupted = s.corrupted
    img_dir = os.path.join(out_dir, "img")
    os.makedirs(img_dir, exist_ok=True)
    lo, hi = float(images.min()), float(images.max())
    written = set()
    parts = [f"<h3>Galleries: the {k} hardest and easiest examples per class</h3>"]
    if corrupted is not None:
        parts.append("<p>Red frame: a corrupted label (label noise).</p>")
    summary = []
    for name in s.names:
        low_hard = name.split("_epoch")[0] in LOW_IS_HARD
        ends = (("highest", False), ("lowest", True)) if name == "input_norm" else \
            (("hardest", low_hard), ("easiest", not low_hard))
        for end, low_first in ends:
            picked = ranked_per_class(s.scores[name], s.labels, k, low_first)
            parts.append(f'<h4>{html.escape(name)}: {end}</h4>'
                         f'<div class="gallery" data-score="{html.escape(name)}" '
                         f'data-end="{end}" data-k="{k}">')
            for c, ids in picked.items():
                parts.append(f'<div class="row" data-class="{c}"><span class="cls">class {c}'
                             '</span>')
                for i in ids:
                    if i not in written:
                        _save_image(images[i], os.path.join(img_dir, f"{i}.png"), lo, hi)
                        written.add(i)
                    bad = corrupted is not None and corrupted[i]
                    flag = " corrupted" if bad else ""
                    caption = f"id {i}<br>label {s.labels[i]}<br>{s.scores[name][i]:.3g}{flag}"
                    parts.append(f'<figure class="{flag.strip()}"><img src="img/{i}.png" '
                                 f'alt="id {i}"><figcaption>{caption}</figcaption></figure>')
                parts.append("</div>")
            parts.append("</div>")
            if corrupted is not None and end == "hardest":
                hits = sum(int(corrupted[ids].sum()) for ids in picked.values())
                total = sum(len(ids) for ids in picked.values())
                summary.append((name, f"{hits}/{total}", f"{hits / total:.2f}"))
    if summary:
        parts.insert(2, f"<h4>Corrupted labels among the {k} hardest per class</h4>"
                     + table(["score", "corrupted / shown", "share"], summary)
                     + f"<p>Share of corrupted labels in the whole set: "
                       f"{corrupted.mean():.3f}.</p>")
    return "\n".join(parts)


def _save_image(x, path, lo, hi):
    """One training image as a PNG, scaled by the whole set's pixel range (Pillow: ~10x faster
    than plt.imsave for thousands of small images)."""
    x = (np.asarray(x, np.float32) - lo) / max(hi - lo, 1e-12)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    PIL.Image.fromarray(np.round(255 * np.clip(x, 0, 1)).astype(np.uint8)).save(path)

