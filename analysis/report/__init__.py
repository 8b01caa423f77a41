"""The HTML report of a scores job, a run, an experiment or a tuning study:

    python -m analysis.report DIR [--k=10] [--data_path=...]   # -> DIR/report/index.html

  build.py   which sections a directory gets; runs, figures, results tables, tuning trials
  scores.py  per-class histograms, Spearman matrix, galleries of the hardest / easiest examples
  page.py    the static HTML page (no scripts, no network; images are PNG files beside it)
"""
from analysis.report.build import build

__all__ = ["build"]
