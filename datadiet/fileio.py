"""Atomic file writes: a kill (or a full disk) never leaves a half-written file in place of a
good one, because each file is written beside its destination and then renamed over it."""
import json
import os

import numpy as np


def write_text(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path, obj, indent=1):
    write_text(path, json.dumps(obj, indent=indent, sort_keys=True))


def write_npy(path, array):
    tmp = f"{path}.tmp.npy"  # np.save appends .npy to names without it
    np.save(tmp, array)
    os.replace(tmp, path)


def write_npz(path, **arrays):
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
