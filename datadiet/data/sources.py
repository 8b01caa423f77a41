"""Where raw arrays come from. Each source returns uint8/float NHWC images and int labels
in the source's own order: an example's id is its index here, everywhere in the project."""
import os

import numpy as np

TFDS_NAMES = ("cifar10", "cifar100", "svhn_cropped", "mnist", "fashion_mnist")
SPLIT_FILES = ("x_train", "y_train", "x_test", "y_test")


def load_digits(cfg):
    """scikit-learn's bundled 8x8 digits (no download): the embedded default dataset.

    Split as in ../shared/data/sklearn_digits.npz: stratified, test_size=360, random_state=0.
    """
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    digits = sk_digits()
    x = digits.images.astype(np.uint8)[..., None]  # values 0..16
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=360, random_state=0, stratify=y)
    return dict(x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)


def load_npz(cfg):
    """A .npz file holding x_train, y_train, x_test, y_test (the format of ../shared/data)."""
    path = _existing_path(cfg, "data.path")
    with np.load(path) as f:
        missing = [k for k in SPLIT_FILES if k not in f.files]
        if missing:
            raise ValueError(f"data.path={path!r} lacks arrays {missing}; "
                             f"it must hold {list(SPLIT_FILES)}")
        return {k: f[k] for k in SPLIT_FILES}


def load_npy_dir(cfg):
    """A folder with x_train.npy, y_train.npy, x_test.npy, y_test.npy (e.g. CINIC-10)."""
    path = _existing_path(cfg, "data.path")
    files = {k: os.path.join(path, k + ".npy") for k in SPLIT_FILES}
    missing = [f for f in files.values() if not os.path.isfile(f)]
    if missing:
        raise ValueError(f"data.path={path!r} lacks files {missing}")
    return {k: np.load(f) for k, f in files.items()}


def load_tfds(cfg):
    """TFDS through `tfds.data_source` (array_record; random access, no TensorFlow needed to read).

    Preparing a dataset the first time (download + build) needs TensorFlow:
    `pip install -e .[tfds]`.
    """
    import tensorflow_datasets as tfds

    if cfg.name not in TFDS_NAMES:
        raise ValueError(f"data.name={cfg.name!r} is not a supported TFDS dataset; "
                         f"accepted: {list(TFDS_NAMES)}")
    out = {}
    for split, tfds_split in (("train", "train"), ("test", "test")):
        source = tfds.data_source(cfg.name, split=tfds_split, data_dir=cfg.get("path") or None,
                                  download=True)
        examples = [source[i] for i in range(len(source))]
        out["x_" + split] = np.stack([np.asarray(e["image"]) for e in examples])
        out["y_" + split] = np.asarray([int(e["label"]) for e in examples], np.int64)
    return out


def _existing_path(cfg, field):
    path = cfg.get("path")
    if not path:
        raise ValueError(f"{field} is empty; source {cfg.source!r} needs a path")
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        raise ValueError(f"{field}={path!r} does not exist")
    return path


SOURCES = {"digits": load_digits, "npz": load_npz, "npy_dir": load_npy_dir, "tfds": load_tfds}
