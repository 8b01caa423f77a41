"""Atomic file writes: a kill (or a full disk) never leaves a half-written file in place of a
good one, because each file is written beside its destination and then renamed over it.

In a multi-process run only process 0 writes, between barriers (see `distributed.write`):
sync=False skips the barriers (status.json, written on error paths too).
"""
import json
import os

import numpy as np

from datadiet import distributed


def _replace_with(path, tmp, save):
    def write():
        save(tmp)
        os.replace(tmp, path)
    return write


def write_text(path, text, sync=True):
    def save(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    distributed.write(path, _replace_with(path, f"{path}.tmp", save), sync)


def write_json(path, obj, indent=1, sync=True):
    write_text(path, json.dumps(obj, indent=indent, sort_keys=True), sync)


def write_npy(path, array):
    # np.save appends .npy to names without it
    distributed.write(path, _replace_with(path, f"{path}.tmp.npy", lambda t: np.save(t, array)))


def write_npz(path, **arrays):
    distributed.write(path, _replace_with(path, f"{path}.tmp.npz",
                                          lambda t: np.savez(t, **arrays)))
