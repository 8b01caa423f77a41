"""The report of a small digits scores job, opened in headless Chromium through Selenium: no
console errors, every image loaded, each gallery showing the expected examples per class.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them). In CI
(DATADIET_CI=1, set by .ci/run) a missing browser fails the test; elsewhere it skips, saying
how to install it."""
import json
import os
import re
import shutil

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optuna
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from analysis.report import build
from datadiet.scores import load

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
K = 4


@pytest.fixture
def browser(tmp_path):
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        message = (f"{CHROMIUM} / {DRIVER} missing: apt-get install chromium chromium-driver "
                   "(.ci/run does it)")
        if os.environ.get("DATADIET_CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _top_k(values, labels, c, k, low_first):
    """The ids of class c's k highest (or lowest) values, by a plain sort of (value, id)."""
    members = [(float(values[i]), i) for i in range(len(labels)) if labels[i] == c]
    members.sort(key=lambda t: (t[0] if low_first else -t[0], t[1]))
    return [i for _, i in members[:k]]


def test_report_of_a_scores_job_renders_in_chromium(noisy_scores_job, browser, tmp_path):
    _, workdir = noisy_scores_job
    work = tmp_path / "job"
    shutil.copytree(workdir, work)
    path = build(str(work), k=K)
    browser.get("file://" + path)
    assert browser.execute_script("return document.readyState") == "complete"
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    images = browser.find_elements(By.TAG_NAME, "img")
    widths = browser.execute_script(
        "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) == len(images) > 0 and min(widths) > 0

    s = load(str(work))
    classes = sorted(np.unique(s.labels).tolist())
    # the galleries as the browser laid them out, in one round trip
    galleries = browser.execute_script("""
        return Array.from(document.querySelectorAll('.gallery')).map(g => ({
            score: g.dataset.score, end: g.dataset.end,
            rows: Array.from(g.querySelectorAll('.row')).map(r => ({
                cls: Number(r.dataset.class), imgs: r.querySelectorAll('img').length,
                captions: Array.from(r.querySelectorAll('figure')).map(f => f.innerText)}))}))""")
    assert sorted((g["score"], g["end"]) for g in galleries) == sorted(
        [(n, e) for n in ("el2n_epoch1", "margin_epoch1") for e in ("hardest", "easiest")]
        + [("input_norm", "highest"), ("input_norm", "lowest")])
    for g in galleries:
        assert [r["cls"] for r in g["rows"]] == classes
        # hardest = highest, except for margin (a low margin is a hard example)
        low_first = (g["end"] in ("easiest", "lowest")) != (g["score"] == "margin_epoch1")
        for r in g["rows"]:
            assert r["imgs"] == len(r["captions"]) == K
            shown = [int(re.match(r"id (\d+)", t).group(1)) for t in r["captions"]]
            expected = _top_k(s.scores[g["score"]], s.labels, r["cls"], K, low_first)
            assert shown == expected, g["score"]
            for text, i in zip(r["captions"], shown):
                assert f"label {s.labels[i]}" in text
                assert ("corrupted" in text) == bool(s.corrupted[i])
    browser.set_window_size(1400, browser.execute_script("return document.body.scrollHeight"))
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_report_of_run_experiment_and_tuning_directories(noisy_scores_job, browser, tmp_path):
    _, workdir = noisy_scores_job
    # an experiment directory: a seed run of the job, a figure and a results table beside it
    exp = tmp_path / "exp"
    shutil.copytree(os.path.join(workdir, "seeds", "seed_0"), exp)
    plt.figure(figsize=(3, 2))
    plt.plot([0, 1], [1, 0])
    plt.savefig(exp / "curve.png")
    plt.close()
    planted = [{"keep": 0.3, "test_accuracy": 0.91}, {"keep": 0.5, "test_accuracy": 0.94}]
    (exp / "results_planted.json").write_text(json.dumps({"runs": planted, "seeds": 2}))
    # a tuning study: config.json with job = "tune" and an SQLite study of three trials
    study_dir = tmp_path / "tune"
    study_dir.mkdir()
    url = f"sqlite:///{study_dir / 'study.db'}"
    study = optuna.create_study(study_name="datadiet", storage=url, direction="maximize")
    for lr in (0.1, 0.01, 0.001):
        study.enqueue_trial({"lr": lr})
        study.optimize(lambda t: 1 - t.suggest_float("lr", 1e-4, 1, log=True), n_trials=1)
    (study_dir / "config.json").write_text(json.dumps(
        {"job": "tune", "hpo": {"storage": "", "study_name": "datadiet"}}))

    browser.get("file://" + build(str(exp)))
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    assert browser.find_elements(By.CSS_SELECTOR, ".gallery") == []  # a run has no score set
    sources = [i.get_attribute("src").rsplit("/", 1)[1]
               for i in browser.find_elements(By.TAG_NAME, "img")]
    assert sorted(sources) == ["curve.png", "curves.png"]
    assert min(browser.execute_script(
        "return Array.from(document.images).map(i => i.naturalWidth)")) > 0
    cells = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
             for tr in browser.find_elements(By.XPATH, "//h4[text()='runs']/following::table[1]//tr")]
    assert cells[1:] == [["0.3", "0.91"], ["0.5", "0.94"]]

    browser.get("file://" + build(str(study_dir)))
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    assert f"optuna-dashboard {url}" in browser.find_element(By.TAG_NAME, "body").text
    rows = browser.find_elements(By.XPATH, "//h2[text()='Tuning study']/following::table[1]//tr")
    assert [[td.text for td in r.find_elements(By.TAG_NAME, "td")][:4] for r in rows[1:]] == \
        [[str(i), "COMPLETE", f"{1 - lr:.4f}", f"{lr:.4g}"] for i, lr in
         enumerate((0.1, 0.01, 0.001))]
