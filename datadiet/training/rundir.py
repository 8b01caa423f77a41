"""The run directory contract that analysis, tools and users rely on (see README):

  config.json       the resolved config
  metrics.jsonl     one JSON object per event: step, epoch, split (train|test), loss, accuracy, ...
  status.json       {"state": "running"|"done"|"failed", ...}
  checkpoints/      Orbax checkpoints (see checkpoint.py)
  label_noise.json  ids whose labels were changed, with old and new labels (when noise is on)
  tb/               TensorBoard event files

In a multi-process run every process opens the RunDir and reads it; only the primary process
(0) writes (`primary`; fileio's writers and `log` obey it), see datadiet/distributed.py.
"""
import json
import os
import time

from datadiet import config_tree, distributed, fileio


# Config fields that change no result (what is logged and shown): a rerun may change them.
RESULT_FREE_PREFIXES = ("log.",)


class RunDirConflict(RuntimeError):
    pass


class RunDir:
    def __init__(self, path, config, defaults=None):
        """Opens (or creates) a run directory for `config`; never clobbers a different run.

        defaults: the base config (`datadiet.config.default_config()`): a field the existing
        run's config.json lacks (added to the code later) and that `config` leaves at its
        default is the same run. Without it, any difference refuses the directory."""
        self.path = os.path.abspath(path)
        self.primary = distributed.is_primary()  # the one process that writes (multi-process)
        os.makedirs(self.path, exist_ok=True)
        config_json = json.loads(config.to_json_best_effort())
        cfg_path = self.file("config.json")
        if os.path.exists(cfg_path):
            with open(cfg_path) as f:
                old = json.load(f)
            defaults_json = {} if defaults is None else json.loads(defaults.to_json_best_effort())
            diff = sorted(_conflicting_keys(old, config_json, defaults_json))
            if diff:
                raise RunDirConflict(
                    f"workdir {self.path} holds a run with a different config (fields {diff}); "
                    "use a new --workdir, or delete this one yourself")
        else:
            fileio.write_json(cfg_path, config_json)

    def file(self, name):
        return os.path.join(self.path, name)

    # status.json
    def status(self):
        if not os.path.exists(self.file("status.json")):
            return {}
        with open(self.file("status.json")) as f:
            return json.load(f)

    def set_status(self, state, **info):
        # no barrier: error paths write it, and other processes may not be failing
        fileio.write_json(self.file("status.json"),
                          {"state": state, "updated": time.time(), **info}, sync=False)

    # metrics.jsonl
    def log(self, **event):
        if self.primary:
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
        fileio.write_text(self.file("metrics.jsonl"),
                          "".join(json.dumps(e, sort_keys=True) + "\n" for e in kept))

    def write_json(self, name, obj):
        fileio.write_json(self.file(name), obj)


def _conflicting_keys(old, new, defaults):
    """Fields that differ, except those added to the codebase after the run was made and left
    at their default: such a run is still the same run (no resume is lost to an upgrade)."""
    old, new, defaults = (config_tree.flatten(t) for t in (old, new, defaults))
    missing = object()
    return [key for key in set(old) | set(new)
            if not key.startswith(RESULT_FREE_PREFIXES)
            and old.get(key, missing) != new.get(key, missing)
            and not (key not in old and new.get(key, missing) == defaults.get(key, missing))]
