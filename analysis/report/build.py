"""Which sections a directory gets: a scores job (score sets), a run (its curves and status),
an experiment (its figures *.png and tables results_*.json) or a tuning study (trials table,
optuna-dashboard pointer). A directory can be several of these; each section found is shown."""
import glob
import html
import json
import os
import shutil

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from analysis.report import page, scores
from datadiet.scores import scoreset
from datadiet.training import rundir

REPORT = "report"


def build(directory, k=10, data_path=None):
    """Writes DIRECTORY/report/index.html (and its PNGs); returns the HTML file's path."""
    directory = os.path.abspath(directory)
    out_dir = os.path.join(directory, REPORT)
    os.makedirs(out_dir, exist_ok=True)
    parts = []
    config = _read_json(os.path.join(directory, "config.json"))
    if _has_scores(directory):
        parts.append(scores.section(scoreset.load(directory), out_dir, k, data_path))
    if config and config.get("job") == "tune":
        parts.append(_tuning(directory, config))
    if os.path.exists(os.path.join(directory, "metrics.jsonl")):
        parts.append(_run(directory, out_dir))
    parts.append(_figures(directory, out_dir))
    parts.append(_results(directory))
    parts = [p for p in parts if p]
    if not parts:
        raise ValueError(f"{directory}: no scores, run, figures (*.png), results_*.json or tuning "
                         "study found")
    path = os.path.join(out_dir, "index.html")
    page.write(path, f"datadiet report: {directory}", "\n".join(parts))
    return path


def _has_scores(directory):
    """A scores job's score set (its .json files carry the provenance; a seed run's own
    scores/ folder, with only the step, is not one)."""
    d = scoreset.scores_dir(directory)
    for p in glob.glob(os.path.join(d, "*.json")):
        if os.path.exists(p[:-len(".json")] + ".npy"):
            return "n_train" in (_read_json(p) or {})
    return False


def _read_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _run(directory, out_dir):
    with open(os.path.join(directory, "metrics.jsonl")) as f:
        events = [json.loads(line) for line in f]
    status = rundir.read_status(directory)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for split in ("train", "test"):
        ev = [e for e in events if e.get("split") == split]
        for ax, key in zip(axes, ("loss", "accuracy")):
            ax.plot([e["epoch"] for e in ev], [e[key] for e in ev], marker=".", label=split)
            ax.set_xlabel("epoch")
            ax.set_ylabel(key)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "curves.png"), dpi=90)
    plt.close(fig)
    final = status.get("final", {})
    rows = [(split, final[split].get("epoch"), f"{final[split]['loss']:.4f}",
             f"{final[split]['accuracy']:.4f}") for split in ("train", "test") if split in final]
    return (f"<h2>Run</h2><p>status: {html.escape(str(status.get('state', 'unknown')))}</p>"
            + (page.table(["split", "epoch", "loss", "accuracy"], rows) if rows else "")
            + '<img class="figure" src="curves.png" alt="training curves">')


def _figures(directory, out_dir):
    pngs = sorted(glob.glob(os.path.join(directory, "*.png")))
    if not pngs:
        return ""
    fig_dir = os.path.join(out_dir, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    parts = ["<h2>Figures</h2>"]
    for p in pngs:  # copied: the report folder stands alone
        name = os.path.basename(p)
        shutil.copyfile(p, os.path.join(fig_dir, name))
        parts.append(f'<h4>{html.escape(name)}</h4><img class="figure" '
                     f'src="figures/{html.escape(name)}" alt="{html.escape(name)}">')
    return "\n".join(parts)


def _results(directory):
    paths = sorted(glob.glob(os.path.join(directory, "results_*.json")))
    parts = ["<h2>Results</h2>"] if paths else []
    for p in paths:
        parts.append(f"<h3>{html.escape(os.path.basename(p))}</h3>")
        parts.append(_json_tables(_read_json(p)))
    return "\n".join(parts)


def _json_tables(value):
    """Lists of flat records become tables, flat dicts key/value tables, the rest JSON text."""
    if isinstance(value, dict):
        flat = [(k, v) for k, v in value.items() if not isinstance(v, (dict, list))]
        out = [page.table(["field", "value"], flat)] if flat else []
        for key, v in value.items():
            if isinstance(v, (dict, list)):
                out.append(f"<h4>{html.escape(str(key))}</h4>{_json_tables(v)}")
        return "\n".join(out)
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        cols = list(dict.fromkeys(k for r in value for k in r))
        rows = [[_cell(r.get(c, "")) for c in cols] for r in value]
        return page.table(cols, rows)
    return f"<pre>{html.escape(json.dumps(value, indent=1)[:20000])}</pre>"


def _cell(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return json.dumps(v) if isinstance(v, (dict, list)) else v


def _tuning(directory, config):
    import optuna  # the hpo extra: only tuning studies need it
    hpo = config["hpo"]
    url = hpo.get("storage") or "sqlite:///" + os.path.join(directory, "study.db")
    parts = ["<h2>Tuning study</h2>",
             (f"<p>Storage: <code>{html.escape(url)}</code>. Browse it live with "
              f"<code>optuna-dashboard {html.escape(url)}</code> "
              "(<code>pip install optuna-dashboard</code>).</p>")]
    try:
        study = optuna.load_study(study_name=hpo["study_name"], storage=url)
    except Exception as e:  # noqa: BLE001 - the page says why instead of failing the report
        return "\n".join(parts + [f"<p>Study not readable: {html.escape(repr(e))}</p>"])
    names = sorted({k for t in study.trials for k in t.params})
    rows = [[t.number, t.state.name, "" if t.value is None else f"{t.value:.4f}",
             *(_cell(t.params.get(n, "")) for n in names),
             "" if t.duration is None else f"{t.duration.total_seconds():.1f}"]
            for t in study.trials]
    parts.append(page.table(["trial", "state", "value", *names, "seconds"], rows))
    return "\n".join(parts)
