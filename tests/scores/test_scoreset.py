"""Score sets read back (datadiet.scores.load) against the job's raw files and the dataset,
Parquet / CSV round trips, and pruning refusing a score set from another training set."""
import csv
import dataclasses
import json
import os
import shutil

import numpy as np
import pyarrow.parquet
import pytest

from datadiet import scores
from datadiet.data import load_dataset
from datadiet.prune import pruned_subset
from datadiet.scores import export

NAMES = ("el2n_epoch1", "input_norm", "margin_epoch1")


def _raw(workdir, name, seed=None):
    sub = "scores" if seed is None else f"seeds/seed_{seed}/scores"
    return np.load(os.path.join(workdir, sub, name + ".npy"))


def test_load_returns_the_job_files_labels_and_provenance(noisy_scores_job):
    config, workdir = noisy_scores_job
    dataset = load_dataset(config.data, config.seed)
    with open(os.path.join(workdir, "label_noise.json")) as f:
        record = json.load(f)
    for path in (workdir, os.path.join(workdir, "scores"),
                 os.path.join(workdir, "scores", "el2n_epoch1.npy")):
        s = scores.load(path)
        assert s.names == sorted(NAMES)
        np.testing.assert_array_equal(s.ids, np.arange(dataset.n_train))
        np.testing.assert_array_equal(s.labels, dataset.y_train)
        for name in NAMES:
            np.testing.assert_array_equal(s.scores[name], _raw(workdir, name))
        for seed in (0, 1):
            np.testing.assert_array_equal(s.per_seed["el2n_epoch1"][seed],
                                          _raw(workdir, "el2n_epoch1", seed))
        assert s.per_seed["input_norm"] == {}  # no parameters: one value for every seed
        assert list(s.embeddings) == ["embeddings_epoch1"]  # rows of features, not a score
        np.testing.assert_array_equal(s.embeddings["embeddings_epoch1"],
                                      _raw(workdir, "embeddings_epoch1"))
        np.testing.assert_allclose(s.scores["margin_epoch1"],
                                   np.mean([s.per_seed["margin_epoch1"][i] for i in (0, 1)], 0),
                                   rtol=1e-6, atol=1e-7)
        p = s.provenance
        assert (p["dataset"], p["model"], p["n_train"], p["seeds"]) == \
            ("digits", "small_cnn", dataset.n_train, [0, 1])
        assert p["epochs"] == {"el2n_epoch1": 1, "margin_epoch1": 1, "input_norm": None,
                               "embeddings_epoch1": 1}
        assert p["config"]["data"]["label_noise"] == 0.1 and p["label_noise"] == record
        assert sorted(np.flatnonzero(s.corrupted)) == record["ids"]
        # the corrupted labels are exactly those that differ from the clean source labels
        clean = config.data.copy_and_resolve_references()
        clean.label_noise = 0.0
        clean_y = load_dataset(clean, config.seed).y_train
        np.testing.assert_array_equal(s.corrupted, s.labels != clean_y)


def test_score_sets_without_labels_file_rebuild_them_from_the_config(noisy_scores_job,
                                                                    tmp_path):
    _, workdir = noisy_scores_job
    old = str(tmp_path / "old")
    shutil.copytree(workdir, old)
    os.remove(os.path.join(old, "scores", "labels.npy"))  # as written before labels.npy existed
    os.remove(os.path.join(old, "label_noise.json"))
    s, reference = scores.load(old), scores.load(workdir)
    np.testing.assert_array_equal(s.labels, reference.labels)
    assert s.provenance["label_noise"] == reference.provenance["label_noise"]


def test_parquet_round_trip_keeps_every_column_and_the_provenance(noisy_scores_job, tmp_path):
    _, workdir = noisy_scores_job
    out = str(tmp_path / "scores.parquet")
    export.main([workdir, f"--out={out}"])
    table = pyarrow.parquet.read_table(out)
    s = scores.load(workdir)
    expected = {"id": s.ids, "label": s.labels, "corrupted": s.corrupted}
    for name in NAMES:
        expected[name] = _raw(workdir, name)
        if name != "input_norm":
            for seed in (0, 1):
                expected[f"{name}_seed{seed}"] = _raw(workdir, name, seed)
    embedded = _raw(workdir, "embeddings_epoch1")
    dims = [f"embeddings_epoch1_{j}" for j in range(embedded.shape[1])]
    expected.update({name: embedded[:, j] for j, name in enumerate(dims)})
    assert table.column_names == ["id", "label", "corrupted", "el2n_epoch1", "el2n_epoch1_seed0",
                                  "el2n_epoch1_seed1", "input_norm", "margin_epoch1",
                                  "margin_epoch1_seed0", "margin_epoch1_seed1", *dims]
    for name, values in expected.items():
        np.testing.assert_array_equal(table.column(name).to_numpy(), values, err_msg=name)
    assert json.loads(table.schema.metadata[b"datadiet"]) == \
        json.loads(json.dumps(s.provenance))


def test_csv_round_trip_is_exact_and_keeps_the_provenance_beside_it(noisy_scores_job, tmp_path):
    _, workdir = noisy_scores_job
    out = str(tmp_path / "scores.csv")
    export.main([os.path.join(workdir, "scores"), f"--out={out}"])
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    s = scores.load(workdir)
    assert [int(r["id"]) for r in rows] == list(range(len(s.ids)))
    assert [int(r["label"]) for r in rows] == s.labels.tolist()
    assert [r["corrupted"] == "true" for r in rows] == s.corrupted.tolist()
    for column, values in (("el2n_epoch1", _raw(workdir, "el2n_epoch1")),
                           ("margin_epoch1_seed1", _raw(workdir, "margin_epoch1", 1))):
        parsed = np.array([float(r[column]) for r in rows], np.float32)
        np.testing.assert_array_equal(parsed, values, err_msg=column)  # float32 text is exact
    with open(out + ".json") as f:
        assert json.load(f) == json.loads(json.dumps(s.provenance))


def test_export_refuses_an_unknown_extension(noisy_scores_job, tmp_path):
    _, workdir = noisy_scores_job
    with pytest.raises(SystemExit):
        export.main([workdir, f"--out={tmp_path / 'scores.xlsx'}"])
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("change,field", [
    (lambda d: dataclasses.replace(d, name="mnist"), "'dataset'"),
    (lambda d: dataclasses.replace(d, y_train=d.y_train[:-1], x_train=d.x_train[:-1]),
     "'n_train'"),
    # one pair of labels swapped: same dataset, same length, another label order
    (lambda d: dataclasses.replace(d, y_train=_swap_first_unequal(d.y_train)), "'labels'"),
])
def test_pruning_refuses_a_score_set_of_another_training_set(noisy_scores_job, change, field):
    config, workdir = noisy_scores_job
    c = config.copy_and_resolve_references()
    c.job = "train"
    c.prune.update(method="high", keep=0.5, scores=os.path.join(workdir, "scores",
                                                                 "el2n_epoch1.npy"))
    dataset = load_dataset(c.data, c.seed)
    assert len(pruned_subset(c, dataset).ids) == dataset.n_train // 2  # the matching set is kept
    with pytest.raises(ValueError, match=f"prune.scores=.*field {field} differs"):
        pruned_subset(c, change(dataset))


def _swap_first_unequal(y):
    y = y.copy()
    j = int(np.flatnonzero(y != y[0])[0])
    y[0], y[j] = y[j], y[0]
    return y
