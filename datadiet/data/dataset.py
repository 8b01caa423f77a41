"""The in-memory dataset: validated arrays in source order, normalisation statistics, label noise."""
import dataclasses
import os

import ml_collections
import numpy as np
from absl import logging

from datadiet.data import label_noise, sources

# Per-channel mean/std of the training images in [0, 1] pixel units.
NORM_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "cinic10": ((0.4789, 0.4723, 0.4305), (0.2421, 0.2383, 0.2587)),
    "svhn_cropped": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
}
# data.num_classes=0 takes these for the digits and TFDS sources (whose label sets are known)
KNOWN_CLASSES = {"cifar10": 10, "cifar100": 100, "svhn_cropped": 10, "mnist": 10,
                 "fashion_mnist": 10, "digits": 10}
AUGMENTS = ("auto", "none", "crop", "flip", "crop_flip")
# device: the training set is put on the devices whole, batches gathered there by id;
# host: it stays in host memory (npy_dir: memory-mapped; tfds images: read by id from the
# data_source) and the host pipeline (data/pipeline.py) reads each batch by id.
PIPELINES = ("device", "host")
MODALITIES = ("image", "tabular", "text")


def default_data_config():
    c = ml_collections.ConfigDict()
    c.source = "digits"  # one of sources.SOURCES
    c.name = "digits"  # selects normalisation stats and the TFDS dataset
    c.path = ""  # npz file, npy folder, or TFDS data_dir
    c.num_classes = 0  # 0: infer (KNOWN_CLASSES for digits/TFDS, else largest label + 1)
    c.augment = "auto"  # auto = crop_flip for 32x32 colour images, none otherwise
    c.crop_pad = 4  # reflect padding of the random crop
    c.label_noise = 0.0  # fraction of training labels to corrupt
    c.label_noise_seed = -1  # -1: use config.seed
    c.text_vocab = 2**14  # text: hash buckets of the tokenizer (id 0 pads)
    c.text_length = 128  # text: tokens kept per example
    c.pipeline = "device"  # one of PIPELINES: where the training set lives (see README)
    return c


@dataclasses.dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    mean: np.ndarray  # per channel, in the raw pixel units of x
    std: np.ndarray
    augment: str  # resolved: none, crop, flip or crop_flip
    crop_pad: int
    label_noise: dict | None = None  # {"ids", "old_labels", "new_labels"} when noise is on
    # image: [N, H, W, C]; tabular: float [N, D] (standardised per feature); text: int32 [N, L]
    # token ids (mean 0, std 1: the shared batch path casts them to float32, exact below 2^24,
    # and the text model casts them back)
    modality: str = "image"
    pipeline: str = "device"  # "host": x_train / x_test stay on the host (data/pipeline.py)

    @property
    def n_train(self):
        return len(self.y_train)

    @property
    def input_shape(self):
        return tuple(self.x_train.shape[1:])


def validate_data_config(cfg):
    """Checks the fields themselves, before anything is loaded."""
    if cfg.source not in sources.SOURCES:
        raise ValueError(f"data.source={cfg.source!r} is not one of {sorted(sources.SOURCES)}")
    if cfg.get("pipeline", "device") not in PIPELINES:
        raise ValueError(f"data.pipeline={cfg.pipeline!r} is not one of {list(PIPELINES)}")
    if cfg.augment not in AUGMENTS:
        raise ValueError(f"data.augment={cfg.augment!r} is not one of {list(AUGMENTS)}")
    if not 0.0 <= cfg.label_noise < 1.0:
        raise ValueError(f"data.label_noise={cfg.label_noise} must be in [0, 1)")
    if cfg.crop_pad < 0:
        raise ValueError(f"data.crop_pad={cfg.crop_pad} must be >= 0")
    if cfg.num_classes < 0:
        raise ValueError(f"data.num_classes={cfg.num_classes} must be >= 0 (0 = infer)")
    if cfg.text_vocab < 2 or cfg.text_vocab > 2**24 or cfg.text_length < 1:
        raise ValueError(f"data.text_vocab={cfg.text_vocab} must be in [2, 2^24] (ids travel "
                         f"as float32) and data.text_length={cfg.text_length} >= 1")
    if cfg.source in ("npz", "npy_dir") and not os.path.exists(os.path.expanduser(cfg.path)):
        raise ValueError(f"data.path={cfg.path!r} does not exist (data.source={cfg.source!r} "
                         "reads it)")
    if cfg.source == "tfds" and cfg.name not in sources.TFDS_NAMES:
        raise ValueError(f"data.name={cfg.name!r} is not a supported TFDS dataset; "
                         f"accepted: {list(sources.TFDS_NAMES)}")


def load_dataset(cfg, seed):
    """Loads, validates and (optionally) corrupts labels. Raises before any training starts."""
    validate_data_config(cfg)
    arrays = sources.SOURCES[cfg.source](cfg)
    arrays, modality = _validated_arrays(arrays, cfg.source)
    known = KNOWN_CLASSES.get(cfg.name) if cfg.source in ("digits", "tfds") else None
    num_classes = cfg.num_classes or known or _inferred_classes(arrays["y_train"])
    for split in ("train", "test"):
        y = arrays["y_" + split]
        if y.min() < 0 or y.max() >= num_classes:
            raise ValueError(f"y_{split} holds labels outside [0, {num_classes}) "
                             f"(found {y.min()}..{y.max()}); check data.num_classes")
    x_train = arrays["x_train"]
    if modality != "image" and cfg.augment not in ("auto", "none"):
        raise ValueError(f"data.augment={cfg.augment!r} is for images; {cfg.name!r} is "
                         f"{modality} data: use 'auto' or 'none'")
    if modality == "text":  # token ids: no normalisation
        mean, std = np.zeros(1, np.float32), np.ones(1, np.float32)
        if x_train.max() >= cfg.text_vocab or arrays["x_test"].max() >= cfg.text_vocab:
            raise ValueError(f"token ids reach {max(x_train.max(), arrays['x_test'].max())}: "
                             f"data.text_vocab={cfg.text_vocab} is too small")
    elif cfg.name in NORM_STATS:
        scale = 255.0 if x_train.dtype == np.uint8 else 1.0
        mean, std = (np.asarray(s, np.float32) * scale for s in NORM_STATS[cfg.name])
        if len(mean) != x_train.shape[-1]:
            raise ValueError(f"data.name={cfg.name!r} has {len(mean)} channels, "
                             f"x_train has {x_train.shape[-1]}")
    else:  # unknown dataset: standardise with the training set's own statistics
        flat = x_train.reshape(-1, x_train.shape[-1]).astype(np.float64)
        mean, std = flat.mean(0).astype(np.float32), flat.std(0).astype(np.float32) + 1e-6
    augment = cfg.augment
    if modality != "image":
        augment = "none"
    elif augment == "auto":
        augment = "crop_flip" if x_train.shape[1:] == (32, 32, 3) else "none"
    y_train, record = arrays["y_train"], None
    if cfg.label_noise > 0:
        noise_seed = seed if cfg.label_noise_seed < 0 else cfg.label_noise_seed
        y_train, record = label_noise.corrupt_labels(y_train, num_classes, cfg.label_noise, noise_seed)
    return Dataset(name=cfg.name, x_train=x_train, y_train=y_train, x_test=arrays["x_test"],
                   y_test=arrays["y_test"], num_classes=num_classes, mean=mean, std=std,
                   augment=augment, crop_pad=cfg.crop_pad, label_noise=record,
                   modality=modality, pipeline=cfg.get("pipeline", "device"))


def _inferred_classes(y):
    """data.num_classes=0: one more than the largest label, when every class in between has
    examples; a gap (a stray label) is an error, as it would silently add empty classes."""
    present = np.unique(y)
    k = int(present[-1]) + 1
    if present[0] < 0:
        return k  # the range check below names the negative labels
    if len(present) != k:
        absent = sorted(set(range(k)) - set(present.tolist()))
        raise ValueError(f"y_train's labels are not contiguous: they reach {k - 1} but classes "
                         f"{absent[:10]}{'...' if len(absent) > 10 else ''} have no example "
                         "(a stray label?); fix the labels, or set data.num_classes to the "
                         "true class count")
    logging.warning("data.num_classes=0: inferred %d classes from y_train (labels 0..%d)", k,
                    k - 1)
    return k


def _first_nonfinite(x, chunk=4096):
    """Index of the first example of float array x holding a NaN or inf (None if none), read in
    chunks so that a memory-mapped array is never copied whole."""
    for start in range(0, len(x), chunk):
        bad = ~np.isfinite(np.asarray(x[start:start + chunk])).reshape(
            min(chunk, len(x) - start), -1).all(axis=1)
        if bad.any():
            return start + int(np.argmax(bad))
    return None


def _modality(x):
    """By shape and dtype: [N, H, W(, C)] images; [N, D] floats tabular; [N, L] ints text."""
    if x.ndim in (3, 4):
        return "image"
    if x.ndim == 2:
        return "text" if np.issubdtype(x.dtype, np.integer) else "tabular"
    return None


def _validated_arrays(arrays, source):
    """(arrays, modality), or a ValueError saying what is wrong."""
    # a memory map stays an np.memmap (asanyarray); a LazyImages source is read by id only
    as_array = lambda a: a if isinstance(a, sources.LazyImages) else np.asanyarray(a)
    out, modality = {}, _modality(as_array(arrays["x_train"]))
    for split in ("train", "test"):
        x, y = as_array(arrays["x_" + split]), np.asarray(arrays["y_" + split])
        if _modality(x) != modality or modality is None:
            raise ValueError(f"x_{split} from source {source!r} has shape {x.shape}, dtype "
                             f"{x.dtype}; expected [N, H, W, C] (or [N, H, W]) images, float "
                             "[N, D] features or int [N, L] token ids, the same for both splits")
        if x.ndim == 3:  # grayscale stored without a channel axis
            x = x[..., None]
        if modality == "image" and not (x.dtype == np.uint8
                                        or np.issubdtype(x.dtype, np.floating)):
            raise ValueError(f"x_{split} has dtype {x.dtype}; accepted: uint8 or float")
        if np.issubdtype(x.dtype, np.floating):
            bad = _first_nonfinite(x)
            if bad is not None:
                raise ValueError(f"x_{split} from source {source!r} holds a NaN or infinite "
                                 f"value at example {bad} (its index in x_{split})")
        if modality == "text":
            if x.min() < 0:
                raise ValueError(f"x_{split} holds negative token ids")
            x = x.astype(np.int32, copy=False)  # copy=False: a memory map stays one
        elif modality == "tabular":
            x = x.astype(np.float32, copy=False)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y_{split} must be a 1-D integer array, got shape {y.shape} "
                             f"dtype {y.dtype}")
        if len(x) != len(y):
            raise ValueError(f"x_{split} has {len(x)} examples but y_{split} has {len(y)}")
        if len(x) == 0:
            raise ValueError(f"x_{split} is empty")
        out["x_" + split], out["y_" + split] = x, y.astype(np.int32)
    if out["x_train"].shape[1:] != out["x_test"].shape[1:]:
        raise ValueError(f"x_train examples have shape {out['x_train'].shape[1:]} but x_test "
                         f"examples {out['x_test'].shape[1:]}")
    return out, modality
