"""A score set read back from disk: the public format of the scores job's output.

    from datadiet import scores
    s = scores.load("runs/fm_scores")       # the job's workdir, its scores/ folder or one .npy
    s.scores["el2n_epoch1"]                 # float32 [n_train] mean over seeds, source order
    s.per_seed["el2n_epoch1"][0]            # seed 0's values
    s.labels, s.corrupted                   # labels scored with; bool mask of noisy labels or None
    s.embeddings["embeddings_epoch3"]       # float32 [n_train, d] (scores.embeddings), if saved

On disk (written by datadiet/jobs/scores.py): WORKDIR/scores/<name>.npy + <name>.json (mean over seeds and its
provenance), WORKDIR/scores/labels.npy (the training labels used, noise included),
WORKDIR/seeds/seed_<s>/scores/<name>.npy (each seed's values; `input_norm` has none: it does
not depend on a seed) and WORKDIR/label_noise.json. Score sets written before labels.npy
existed get their labels by loading the dataset again from the saved config.
"""
import dataclasses
import glob
import json
import os

import ml_collections
import numpy as np

from datadiet.data import load_dataset

LABELS_FILE = "labels.npy"


@dataclasses.dataclass
class ScoreSet:
    ids: np.ndarray  # int64 [n_train]: source-order ids, 0..n_train-1
    labels: np.ndarray  # int64 [n_train]: the labels the scores were computed with
    scores: dict  # name -> float32 [n_train], mean over seeds
    per_seed: dict  # name -> {seed: float32 [n_train]} (empty for input_norm)
    provenance: dict  # dataset, model, n_train, seeds, epochs {name: epoch}, config, label_noise
    directory: str = ""  # the scores/ folder read
    embeddings: dict = dataclasses.field(default_factory=dict)  # name -> float32 [n_train, d]

    @property
    def names(self):
        return sorted(self.scores)

    @property
    def corrupted(self):
        """Bool [n_train]: True where label noise moved the label; None without label noise."""
        record = self.provenance.get("label_noise")
        if not record:
            return None
        mask = np.zeros(len(self.ids), bool)
        mask[np.asarray(record["ids"], np.int64)] = True
        return mask


def scores_dir(path):
    """The scores/ folder of a job workdir, the folder itself, or the folder of one score file."""
    path = os.path.abspath(path)
    if os.path.isfile(path):
        return os.path.dirname(path)
    if os.path.isdir(os.path.join(path, "scores")):
        return os.path.join(path, "scores")
    return path


def load(path, data_path=None):
    """The ScoreSet at `path` (see scores_dir). `data_path` replaces the saved config's
    data.path when labels have to be rebuilt (a relative path saved on another machine)."""
    directory = scores_dir(path)
    infos = {}
    for info_path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        name = os.path.basename(info_path)[:-len(".json")]
        if os.path.exists(os.path.join(directory, name + ".npy")):
            with open(info_path) as f:
                infos[name] = json.load(f)
    if not infos:
        raise FileNotFoundError(f"{path!r} holds no score files (<name>.npy + <name>.json "
                                "written by the scores job)")
    first = infos[min(infos)]
    n = int(first["n_train"])
    job_dir = os.path.dirname(directory)
    scores, per_seed, embeddings = {}, {}, {}
    for name in infos:
        values = np.load(os.path.join(directory, name + ".npy"))
        if values.ndim != 1:  # a row per example (penultimate features), not a score
            embeddings[name] = values
            continue
        scores[name] = values
        per_seed[name] = {}
        for seed in first["seeds"]:
            seed_file = os.path.join(job_dir, f"seeds/seed_{seed}/scores/{name}.npy")
            if name != "input_norm" and os.path.exists(seed_file):
                per_seed[name][int(seed)] = np.load(seed_file)
    provenance = {key: first[key] for key in ("dataset", "model", "n_train", "seeds", "config")}
    provenance["epochs"] = {name: info["epoch"] for name, info in infos.items()}
    record_path = os.path.join(job_dir, "label_noise.json")
    record = None
    if os.path.exists(record_path):
        with open(record_path) as f:
            record = json.load(f)
    labels_path = os.path.join(directory, LABELS_FILE)
    if os.path.exists(labels_path):
        labels = np.load(labels_path).astype(np.int64)
    else:  # written before labels.npy: the same config and seed give the same labels
        dataset = dataset_of(first["config"], data_path)
        labels = dataset.y_train.astype(np.int64)
        record = record if record is not None else dataset.label_noise
    provenance["label_noise"] = record
    if len(labels) != n:
        raise ValueError(f"{labels_path}: {len(labels)} labels for n_train={n} scores")
    return ScoreSet(ids=np.arange(n, dtype=np.int64), labels=labels, scores=scores,
                    per_seed=per_seed, provenance=provenance, directory=directory,
                    embeddings=embeddings)


def dataset_of(config, data_path=None):
    """The training set a score set was computed on, from its saved config (a JSON dict)."""
    data = ml_collections.ConfigDict(config["data"])
    if data_path:
        data.path = data_path
    return load_dataset(data, config["seed"])


def check_matches(score_set, dataset, what="prune.scores"):
    """Refuses a score set computed on another training set, naming the field that differs."""
    p = score_set.provenance
    if p["dataset"] != dataset.name:
        raise ValueError(f"{what}: field 'dataset' differs: the scores were computed on "
                         f"{p['dataset']!r}, this run trains on {dataset.name!r}")
    if int(p["n_train"]) != dataset.n_train:
        raise ValueError(f"{what}: field 'n_train' differs: {p['n_train']} scores, the "
                         f"training set has {dataset.n_train} examples")
    differ = np.flatnonzero(score_set.labels != np.asarray(dataset.y_train))
    if len(differ):
        raise ValueError(f"{what}: field 'labels' differs at {len(differ)} of {dataset.n_train} "
                         f"ids (first id {differ[0]}: scored with label "
                         f"{score_set.labels[differ[0]]}, this run has {dataset.y_train[differ[0]]}"
                         "): another label order or label noise")
