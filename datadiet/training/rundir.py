"""The run directory contract that analysis, tools and users rely on (see README):

  config.json       the resolved config
  metrics.jsonl     one JSON object per event: step, epoch, split (train|test), loss, accuracy, ...
  status.json       {"state": "running"|"done"|"failed", ...}
  checkpoints/      Orbax checkpoints (see checkpoint.py)
  label_noise.json  ids whose labels were changed, with old and new labels (when noise is on)
  tb/               TensorBoard event files
"""
import json
import os
import time


class RunDirConflict(RuntimeError):
    pass


def _write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)  # a kill never leaves a half-written file


class RunDir:
    def __init__(self, path, config):
        """Opens (or creates) a run directory for `config`; never clobbers a different run."""
        self.path = os.path.abspath(path)
        os.makedirs(self.path, exist_ok=True)
        config_json = json.loads(config.to_json_best_effort())
        cfg_path = self.file("config.json")
        if os.path.exists(cfg_path):
            with open(cfg_path) as f:
                old = json.load(f)
            diff = sorted(_conflicting_keys(old, config_json))
            if diff:
                raise RunDirConflict(
                    f"workdir {self.path} holds a run with a different config (fields {diff}); "
                    "use a new --workdir, or delete this one yourself")
        else:
            _write_json_atomic(cfg_path, config_json)

    def file(self, name):
        return os.path.join(self.path, name)

    # status.json
    def status(self):
        if not os.path.exists(self.file("status.json")):
            return {}
        with open(self.file("status.json")) as f:
            return json.load(f)

    def set_status(self, state, **info):
        _write_json_atomic(self.file("status.json"),
                           {"state": state, "updated": time.time(), **info})

    # metrics.jsonl
    def log(self, **event):
        with open(self.file("metrics.jsonl"), "a") as f:
            f.write(json.dumps(event, sort_keys=True) + "\n")

    def metrics(self):
        if not os.path.exists(self.file("metrics.jsonl")):
            return []
        with open(self.file("metrics.jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def truncate_metrics(self, after_step):
        """On resume, drop events logged after the checkpoint we restart from (they recur)."""
        kept = [e for e in self.metrics() if e["step"] <= after_step]
        tmp = self.file("metrics.jsonl.tmp")
        with open(tmp, "w") as f:
            f.writelines(json.dumps(e, sort_keys=True) + "\n" for e in kept)
        os.replace(tmp, self.file("metrics.jsonl"))

    def write_json(self, name, obj):
        _write_json_atomic(self.file(name), obj)


def _conflicting_keys(old, new):
    """Fields that differ, except those added to the codebase after the run was made and left
    at their default: such a run is still the same run (no resume is lost to an upgrade)."""
    from datadiet.config import default_config
    defaults = json.loads(default_config().to_json_best_effort())
    return [key for key in _diff_keys(old, new)
            if not (_lookup(old, key) is _MISSING and _lookup(new, key) == _lookup(defaults, key))]


_MISSING = object()


def _lookup(tree, dotted):
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return _MISSING
        tree = tree[part]
    return tree


def _diff_keys(a, b, prefix=""):
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [prefix.rstrip(".") or "<root>"] if a != b else []
    out = []
    for key in set(a) | set(b):
        out += _diff_keys(a.get(key, _MISSING), b.get(key, _MISSING), f"{prefix}{key}.")
    return out
