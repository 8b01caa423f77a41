"""Soak: kill -9 one quickstart run at random moments, restart it each time, and check that the
result is the uninterrupted run's: metrics.jsonl identical (every field but the clock's) and a
complete TensorBoard history.

  python benchmarks/soak_kill_resume.py [--cycles=20] [--config=configs/quickstart.py]

Prints each cycle, the wall time of the interrupted run against the uninterrupted one (ratio),
and ends with one JSON line of its figures.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from analysis import tensorboard_history  # noqa: E402

CLOCK_FIELDS = ("time", "train_time")  # seconds since the start: differ between any two runs


def train(workdir, config):
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), f"--config={config}",
           f"--workdir={workdir}", "--config.log.progress=False", "--config.log.tensorboard=True"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def events(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if k not in CLOCK_FIELDS}
                for line in f]


def last_epoch(workdir):
    """The last epoch logged in workdir's metrics.jsonl (0: none)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        done = [json.loads(line)["epoch"] for line in f if line.endswith("\n")]
    return max(done, default=0)


def n_events(workdir):
    path = os.path.join(workdir, "metrics.jsonl")
    return sum(1 for _ in open(path)) if os.path.exists(path) else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "quickstart.py"))
    parser.add_argument("--seed", type=int, default=0, help="of the kill moments")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = tempfile.mkdtemp(prefix="soak_")
    reference, killed = os.path.join(root, "reference"), os.path.join(root, "killed")
    try:
        started, startup = time.time(), None
        proc = train(reference, args.config)
        while proc.poll() is None:  # start-up: until the first epoch is logged
            if startup is None and os.path.exists(os.path.join(reference, "metrics.jsonl")):
                startup = time.time() - started
            time.sleep(0.01)
        assert proc.returncode == 0
        uninterrupted = time.time() - started
        startup = startup or 0.0
        print(f"uninterrupted run: {uninterrupted:.1f} s ({startup:.1f} s start-up)", flush=True)
        # The kill moments spread over the whole run: sorted random points of its epochs, each
        # reached (or, when the resumed run starts past it, a kill during start-up: imports,
        # restore, compilation) plus a random part of an epoch (training, evaluation, logging,
        # checkpoints).
        epochs = max(e["epoch"] for e in events(reference))
        epoch_s = (uninterrupted - startup) / epochs
        targets = sorted(rng.uniform(0, epochs) for _ in range(args.cycles))
        started, kills = time.time(), []
        for cycle, target in enumerate(targets):
            proc = train(killed, args.config)
            started_cycle = time.time()
            if last_epoch(killed) >= int(target):
                time.sleep(rng.uniform(0.5, startup))
            else:
                while proc.poll() is None and last_epoch(killed) < int(target) \
                        and time.time() - started_cycle < 120:
                    time.sleep(0.005)
                time.sleep((target - int(target)) * epoch_s)
            delay = time.time() - started_cycle
            alive = proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            lines = n_events(killed)
            kills.append({"cycle": cycle, "target_epoch": round(target, 2),
                          "after_s": round(delay, 2), "killed_alive": alive,
                          "events_on_disk": lines})
            print(f"cycle {cycle}: kill -9 at epoch {target:.2f} after {delay:.1f} s "
                  f"({'running' if alive else 'ended'}), {lines} events on disk", flush=True)
            if not alive:  # it finished before the kill: nothing left to interrupt
                break
        assert train(killed, args.config).wait() == 0
        interrupted = time.time() - started
        same_metrics = events(killed) == events(reference)
        ref_tb = tensorboard_history.scalars(os.path.join(reference, "tb"))
        tb = tensorboard_history.scalars(os.path.join(killed, "tb"))
        logged = {(e["split"], e["step"]) for e in events(reference)}
        shown = {(tag.split("/")[0], step) for tag, points in tb.items() for step in points}
        tb_complete = tb.keys() == ref_tb.keys() and all(
            tb[t].keys() == ref_tb[t].keys() for t in tb) and logged <= shown
        with open(os.path.join(killed, "status.json")) as f:
            state = json.load(f)["state"]
        figures = {"benchmark": "soak_kill_resume", "config": os.path.relpath(args.config, ROOT),
                   "cycles": len(kills), "kills_while_running": sum(k["killed_alive"] for k in kills),
                   "metrics_identical": same_metrics, "tensorboard_complete": tb_complete,
                   "events": len(events(killed)), "final_state": state,
                   "uninterrupted_s": round(uninterrupted, 1),
                   "interrupted_total_s": round(interrupted, 1),
                   "wall_ratio_interrupted_vs_uninterrupted": round(interrupted / uninterrupted, 2),
                   "kills": kills}
        print(f"metrics identical: {same_metrics}; TensorBoard complete: {tb_complete}; "
              f"wall time {interrupted / uninterrupted:.2f}x the uninterrupted run")
        print(json.dumps(figures))
        return 0 if same_metrics and tb_complete and state == "done" else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
