"""SIGTERM (a scheduler's preemption, `timeout`) and SIGINT end a run cleanly.

The handler only records the signal; the loops call `check()` between steps (a Python flag,
no device round trip). When the rest of the epoch fits in GRACE_SECONDS (at the epoch's pace so
far) the loop finishes it and the driver checkpoints it; otherwise it raises Preempted at once
(the epoch's progress is lost, as with a kill). Either way the driver's cleanup waits for a
checkpoint being written and the status says "preempted". A second SIGINT interrupts at once
(KeyboardInterrupt), as usual.
"""
import contextlib
import os
import signal
import threading
import time

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Schedulers give 30 s or more between SIGTERM and SIGKILL (SLURM, Kubernetes, spot VMs): finish
# the epoch when that leaves time for its checkpoint.
GRACE_SECONDS = float(os.environ.get("DATADIET_PREEMPT_GRACE_SECONDS", 15))
_received = []  # the signals received while handling is on
_depth = 0  # nested `handling()` blocks (a scores job's seed runs inside the job)


class Preempted(Exception):
    def __init__(self, signum):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self):
        return 128 + self.signum  # the shell's convention for a death by signal


def _handler(signum, frame):
    if signum == signal.SIGINT and _received:
        raise KeyboardInterrupt
    _received.append(signum)


@contextlib.contextmanager
def handling():
    """Records SIGTERM / SIGINT inside the block (main thread only: elsewhere a no-op, as
    Python delivers signals to the main thread alone)."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS} if _depth == 0 else None
    if _depth == 0:
        _received.clear()
        for s in SIGNALS:
            signal.signal(s, _handler)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            for s, h in previous.items():
                signal.signal(s, h)


def requested():
    return bool(_received)


def check(done=0, total=0, since=None):
    """Raises Preempted when a stop was asked for, unless the block's remaining total - done
    steps take less than GRACE_SECONDS at the pace of its first `done` (begun at `since`)."""
    if not _received:
        return
    if since is not None and done > 0:
        remaining = (time.time() - since) / done * (total - done)
        if remaining <= GRACE_SECONDS:
            return
    raise Preempted(_received[0])
