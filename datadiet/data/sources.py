"""Where raw arrays come from. Each source returns inputs and int labels in the source's own
order: an example's id is its index here, everywhere in the project. Inputs: uint8/float NHWC
images, float [N, D] tabular features, or int32 [N, L] token ids (text, see text.py)."""
import contextlib
import os
import zipfile

import numpy as np

from datadiet.data.text import hash_tokenize

TFDS_IMAGES = ("cifar10", "cifar100", "svhn_cropped", "mnist", "fashion_mnist")
TFDS_TABULAR = {"penguins": ("features", "species")}  # name -> (feature key, label key)
TFDS_TEXT = {"imdb_reviews": ("text",), "ag_news_subset": ("title", "description")}  # text keys
TFDS_NAMES = TFDS_IMAGES + tuple(TFDS_TABULAR) + tuple(TFDS_TEXT)
# TFDS datasets with a train split only: the test split is this share of it (a fixed draw)
TFDS_TEST_SHARE = {"penguins": 0.2}
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


DIGITS_SIZES = (1437, 360)  # load_digits' split (checked by a test)


def load_npz(cfg):
    """A .npz file holding x_train, y_train, x_test, y_test (the format of ../shared/data)."""
    path = _existing_path(cfg, "data.path")
    with _reading(path):
        with np.load(path) as f:
            missing = [k for k in SPLIT_FILES if k not in f.files]
            if missing:
                raise ValueError(f"data.path={path!r} lacks arrays {missing}; "
                                 f"it must hold {list(SPLIT_FILES)}")
            return {k: f[k] for k in SPLIT_FILES}


def load_npy_dir(cfg):
    """A folder with x_train.npy, y_train.npy, x_test.npy, y_test.npy (e.g. CINIC-10)."""
    files = _npy_files(cfg)
    # The host pipeline reads examples by id from the files: memory-mapped, never loaded whole.
    mmap_mode = "r" if cfg.get("pipeline", "device") == "host" else None
    out = {}
    for k, f in files.items():
        try:
            out[k] = np.load(f, mmap_mode=mmap_mode)
        except (ValueError, OSError) as e:
            raise ValueError(f"data.path: {f} is not a readable .npy file ({e})") from e
    for split in ("train", "test"):
        x, y = out["x_" + split], out["y_" + split]
        if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"data.path: {files['x_' + split]} has shape {x.shape} but "
                             f"{files['y_' + split]} has shape {y.shape}: expected one label "
                             "per example, x as [N, ...]")
    return out


def _npy_files(cfg):
    path = _existing_path(cfg, "data.path")
    files = {k: os.path.join(path, k + ".npy") for k in SPLIT_FILES}
    missing = [f for f in files.values() if not os.path.isfile(f)]
    if missing:
        raise ValueError(f"data.path={path!r} lacks files {missing}")
    return files


@contextlib.contextmanager
def _reading(path):
    """numpy's errors for a damaged file name no file (and one speaks of pickled data)."""
    try:
        yield
    except ValueError as e:
        if str(e).startswith("data.path="):
            raise
        raise ValueError(f"data.path: {path!r} is not a readable numpy file (damaged or "
                         f"not .npz/.npy: {e})") from e
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"data.path: {path!r} could not be read ({type(e).__name__}: {e}); "
                         "is it a complete .npz/.npy file?") from e


def peek_sizes(cfg):
    """(n_train, n_test) from the files' headers, without loading the data; None when the
    source cannot tell cheaply (TFDS not yet prepared). For the config checks that need them."""
    if cfg.source == "digits":
        return DIGITS_SIZES
    if cfg.source == "npz":
        path = _existing_path(cfg, "data.path")
        with _reading(path), zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            missing = [k for k in SPLIT_FILES if k + ".npy" not in names]
            if missing:
                raise ValueError(f"data.path={path!r} lacks arrays {missing}; "
                                 f"it must hold {list(SPLIT_FILES)}")
            return tuple(_npy_length(z.open(f"y_{s}.npy"), path) for s in ("train", "test"))
    if cfg.source == "npy_dir":
        files = _npy_files(cfg)
        sizes = []
        for split in ("train", "test"):
            with open(files["y_" + split], "rb") as f:
                sizes.append(_npy_length(f, files["y_" + split]))
        return tuple(sizes)
    return None


def _npy_length(f, path):
    with _reading(path):
        major, _ = np.lib.format.read_magic(f)
        read = (np.lib.format.read_array_header_1_0 if major == 1
                else np.lib.format.read_array_header_2_0)
        shape = read(f)[0]
    return shape[0] if shape else 0


def load_tfds(cfg):
    """TFDS through `tfds.data_source` (array_record; random access, no TensorFlow needed to read).

    Images: `image`/`label`. Tabular (penguins, processed): the float feature vector. Text
    (imdb_reviews, ag_news_subset: title + description): hashed to `data.text_length` ids of
    `data.text_vocab` buckets. Preparing a dataset the first time (download + build) needs
    TensorFlow: `pip install -e .[tfds]`.
    """
    if cfg.name not in TFDS_NAMES:
        raise ValueError(f"data.name={cfg.name!r} is not a supported TFDS dataset; "
                         f"accepted: {list(TFDS_NAMES)}")
    if cfg.name in TFDS_TEST_SHARE:  # one split, cut in two by a fixed permutation
        x, y = _tfds_split(cfg, "train")
        order = np.random.default_rng(0).permutation(len(y))
        n_test = max(1, round(TFDS_TEST_SHARE[cfg.name] * len(y)))
        test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
        return dict(x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])
    out = {}
    for split in ("train", "test"):
        out["x_" + split], out["y_" + split] = _tfds_split(cfg, split)
    return out


def _tfds_split(cfg, split):
    import tensorflow_datasets as tfds

    source = tfds.data_source(cfg.name, split=split, data_dir=cfg.get("path") or None,
                              download=True)
    if cfg.get("pipeline", "device") == "host" and cfg.name in TFDS_IMAGES:
        # images stay in the data_source, read by id; the labels are read once
        labels = [int(source[i]["label"]) for i in range(len(source))]
        return LazyImages(source), np.asarray(labels, np.int64)
    examples = [source[i] for i in range(len(source))]
    if cfg.name in TFDS_TABULAR:
        x_key, y_key = TFDS_TABULAR[cfg.name]
        x = np.stack([np.asarray(e[x_key], np.float32) for e in examples])
    elif cfg.name in TFDS_TEXT:
        y_key = "label"
        texts = [" ".join(_as_str(e[k]) for k in TFDS_TEXT[cfg.name]) for e in examples]
        x = hash_tokenize(texts, cfg.text_vocab, cfg.text_length)
    else:
        y_key = "label"
        x = np.stack([np.asarray(e["image"]) for e in examples])
    return x, np.asarray([int(e[y_key]) for e in examples], np.int64)


class LazyImages:
    """A TFDS data_source's images as a read-only [N, H, W, C] array, read by id (an int, an
    int array or a slice): what the host pipeline gathers its batches from."""

    def __init__(self, source, key="image"):
        self.source, self.key = source, key
        first = np.asarray(source[0][key])
        self.shape, self.dtype = (len(source),) + first.shape, first.dtype
        self.ndim = len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, ids):
        if isinstance(ids, slice):
            ids = np.arange(*ids.indices(len(self)))
        if np.ndim(ids) == 0:
            return np.asarray(self.source[int(ids)][self.key])
        ids = np.asarray(ids)
        images = [np.asarray(self.source[int(i)][self.key]) for i in ids.reshape(-1)]
        return np.stack(images).reshape(ids.shape + self.shape[1:]) if images else \
            np.zeros((0,) + self.shape[1:], self.dtype)


def _as_str(value):
    value = value.item() if isinstance(value, np.ndarray) else value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _existing_path(cfg, field):
    path = cfg.get("path")
    if not path:
        raise ValueError(f"{field} is empty; source {cfg.source!r} needs a path")
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        raise ValueError(f"{field}={path!r} does not exist")
    return path


SOURCES = {"digits": load_digits, "npz": load_npz, "npy_dir": load_npy_dir, "tfds": load_tfds}
