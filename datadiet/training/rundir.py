"""The run directory contract that analysis, tools and users rely on (see README):

  config.json       the resolved config
  metrics.jsonl     one strict-JSON object per event: step, epoch, split (train|test), loss, ...
  status.json       {"state": "running"|"done"|"failed"|"preempted"|"pruned", "pid", "host",
                     "started", "heartbeat", "updated", ...}; read it with `read_status`, which
                     reports a "running" whose job is gone as "aborted"
  lock              held by the one job working here (runlock.py)
  checkpoints/      Orbax checkpoints (see checkpoint.py)
  label_noise.json  ids whose labels were changed, with old and new labels (when noise is on)
  tb/               TensorBoard event files

In a multi-process run every process opens the RunDir and reads it; only the primary process
(0) writes (`primary`; fileio's writers and `log` obey it), see datadiet/distributed.py.
"""
import contextlib
import json
import math
import os
import shutil
import threading
import time
import warnings

from datadiet import config_tree, distributed, fileio
from datadiet.training import preemption, runlock


# Config fields that change no result (what is logged and shown): a rerun may change them.
RESULT_FREE_PREFIXES = ("log.",)
HEARTBEAT_SECONDS = 10.0  # how often a running job refreshes status.json's heartbeat
# What a job that failed before its first checkpoint leaves: such a directory is not claimed,
# and a corrected command (a different config) takes it over.
UNCLAIMED = ("config.json", "status.json", "metrics.jsonl", "label_noise.json", "tb", "lock",
             "jax_cache")


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
        self._status_lock, self._status = threading.Lock(), None
        self.config_json = json.loads(config.to_json_best_effort())
        self.defaults_json = {} if defaults is None else json.loads(defaults.to_json_best_effort())
        self._check_config(claim=True)

    def _check_config(self, claim, locked=False):
        """Refuses a directory holding another run; writes config.json when it is ours.
        locked: this process holds the directory's lock (no other live job can be there)."""
        cfg_path = self.file("config.json")
        if os.path.exists(cfg_path):
            with open(cfg_path) as f:
                old = json.load(f)
            diff = sorted(_conflicting_keys(old, self.config_json, self.defaults_json))
            if not diff:
                return
            holder = None if locked else runlock.live_holder(self.file("lock"), self._heartbeat)
            if holder is not None:
                raise runlock.RunDirLocked(runlock.describe(self.file("lock"), holder))
            if not claim or self.claimed():
                raise RunDirConflict(
                    f"workdir {self.path} holds a run with a different config (fields {diff}); "
                    "use a new --workdir, or delete this one yourself")
            if self.primary:
                warnings.warn(f"{self.path}: the run there (fields {diff} differ) failed before "
                              "its first checkpoint; this run replaces it", stacklevel=3)
                for name in ("metrics.jsonl", "label_noise.json", "status.json"):
                    if os.path.exists(self.file(name)):
                        os.remove(self.file(name))
                shutil.rmtree(self.file("tb"), ignore_errors=True)
        if claim:
            fileio.write_json(cfg_path, self.config_json)

    def claimed(self):
        """Whether the directory holds results: a finished run, or anything past its setup
        (a checkpoint, seed runs, trials, scores)."""
        if self.status().get("state") == "done":
            return True
        for name in os.listdir(self.path):
            if name == "checkpoints":
                if os.listdir(self.file(name)):
                    return True
            elif name not in UNCLAIMED and not name.endswith(".tmp"):
                return True
        return False

    def file(self, name):
        return os.path.join(self.path, name)

    # status.json
    def status(self):
        return read_status(self.path)

    def set_status(self, state, **info):
        """Writes status.json; while a job holds the directory (`active`), its pid, host, start
        and heartbeat are kept in every status it writes."""
        with self._status_lock:
            keep = {} if self._status is None else {
                k: self._status[k] for k in ("pid", "host", "started", "heartbeat")}
            now = time.time()
            status = {**keep, "state": state, "updated": now, **info}
            if self._status is not None:
                self._status = status
            # no barrier: error paths write it, and other processes may not be failing
            fileio.write_json(self.file("status.json"), status, sync=False)

    def _heartbeat(self):
        # the raw file: read_status would consult the lock again (this is its liveness input)
        return _status_file(self.path).get("heartbeat")

    @contextlib.contextmanager
    def active(self, **info):
        """Holds the directory for one job: takes its lock (failing at once if a live job has
        it), sets status "running" with pid, host, start and a heartbeat refreshed every
        HEARTBEAT_SECONDS, and turns SIGTERM / SIGINT into Preempted at the loops' next step.
        A block that raises leaves status "preempted" or "failed" (unless it set another state
        itself, e.g. "pruned"); the block sets "done" itself. Multi-process: process 0 holds
        the lock and writes the status; every process handles the signals."""
        lock = self.file("lock")
        if self.primary:
            runlock.acquire(lock, self._heartbeat)
        stop = threading.Event()
        try:
            self._check_config(claim=True, locked=True)  # a job may have come in just before us
            holder = runlock.holder_info()
            with self._status_lock:
                self._status = {**holder, "heartbeat": holder["started"]}
            self.set_status("running", **info)
            if self.primary:
                threading.Thread(target=self._beat, args=(stop,), daemon=True).start()
            with preemption.handling():
                try:
                    yield self
                except preemption.Preempted as e:
                    self.set_status("preempted", error=str(e),
                                    resume="rerun the same command: it resumes from the last "
                                           "checkpoint")
                    raise
                except BaseException as e:
                    if self._status["state"] == "running":
                        self.set_status("failed", error=f"{type(e).__name__}: {e}")
                    raise
        finally:
            stop.set()
            with self._status_lock:
                self._status = None
            if self.primary:
                runlock.release(lock)

    def _beat(self, stop):
        while not stop.wait(HEARTBEAT_SECONDS):
            with self._status_lock:
                if self._status is None or self._status["state"] != "running":
                    return
                self._status.update(heartbeat=time.time())
                # from a thread: never a barrier (every process's synced writes keep one order)
                fileio.write_json(self.file("status.json"), self._status, sync=False)

    # metrics.jsonl
    def log(self, **event):
        if self.primary:
            with open(self.file("metrics.jsonl"), "a") as f:
                f.write(_strict_json(event) + "\n")

    def metrics(self):
        if not os.path.exists(self.file("metrics.jsonl")):
            return []
        with open(self.file("metrics.jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def truncate_metrics(self, after_step):
        """On resume, drop events logged after the checkpoint we restart from (they recur)."""
        kept = [e for e in self.metrics() if e["step"] <= after_step]
        fileio.write_text(self.file("metrics.jsonl"), "".join(_strict_json(e) + "\n" for e in kept))

    def write_json(self, name, obj):
        fileio.write_json(self.file(name), obj)


def read_status(path):
    """Run directory `path`'s status.json ({} if none), where a "running" whose job is gone
    reads "aborted". A job killed outright (SIGKILL, out of memory, or jaxlib aborting it in
    C++ when a peer process stops beating its heartbeat) runs no finally block, so it cannot
    record its own end: its lock's holder is dead (same host: no such pid; another host: no
    heartbeat for runlock.STALE_SECONDS), or the lock is gone."""
    status = _status_file(path)
    if status.get("state") == "running" and runlock.live_holder(
            os.path.join(path, "lock"), lambda: status.get("heartbeat")) is None:
        status = {**status, "state": "aborted", "error": (
            f"the job (pid {status.get('pid')} on host {status.get('host')!r}) ended without "
            "recording its end: killed (SIGKILL, out of memory) or aborted by JAX (another "
            "process of the run died)"),
            "resume": "rerun the same command: it resumes from the last checkpoint"}
    return status


def _status_file(path):
    status_path = os.path.join(path, "status.json")
    if not os.path.exists(status_path):
        return {}
    with open(status_path) as f:
        return json.load(f)


def _strict_json(event):
    """One line of strict JSON: a non-finite float (never a train loss: the loops stop on
    those, training/finite.py) is written as null, not as the invalid NaN / Infinity."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(event), sort_keys=True, allow_nan=False)


def _conflicting_keys(old, new, defaults):
    """Fields that differ, except those added to the codebase after the run was made and left
    at their default: such a run is still the same run (no resume is lost to an upgrade)."""
    old, new, defaults = (config_tree.flatten(t) for t in (old, new, defaults))
    missing = object()
    return [key for key in set(old) | set(new)
            if not key.startswith(RESULT_FREE_PREFIXES)
            and old.get(key, missing) != new.get(key, missing)
            and not (key not in old and new.get(key, missing) == defaults.get(key, missing))]
