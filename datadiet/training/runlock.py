"""One job per run directory: an exclusive lock file recording its holder (pid, host, start).

A lock whose holder is dead is stale and taken over with a warning: on the same host when the
pid no longer exists, on another host when the run's heartbeat (status.json, refreshed by the
holder every few seconds) is older than STALE_SECONDS. The takeover renames the stale file away
first, so that of two jobs taking over the same stale lock only one gets it.
"""
import json
import os
import socket
import time
import warnings

STALE_SECONDS = 600.0  # another host's lock without a heartbeat for this long is stale
_held = set()  # the lock files this process holds


class RunDirLocked(RuntimeError):
    pass


def holder_info():
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}


def live_holder(path, heartbeat_of):
    """The holder of lock `path` if it is alive, else None (no lock, or a stale one).

    heartbeat_of(): the holder's last heartbeat (seconds since the epoch) or None."""
    holder = _read(path)
    return holder if holder is not None and _alive(path, holder, heartbeat_of()) else None


def acquire(path, heartbeat_of):
    """Takes the lock file `path`, or raises RunDirLocked naming its live holder."""
    for _ in range(10):  # only a race with another taker repeats the loop
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is None and _age(path) < 5.0:  # being written, or just removed: again
                time.sleep(0.05)
                continue
            holder = holder or {}  # a lock its writer was killed while writing is stale
            if holder and _alive(path, holder, heartbeat_of()):
                raise RunDirLocked(describe(path, holder))
            stale = f"{path}.stale.{os.getpid()}"
            try:
                os.rename(path, stale)
            except FileNotFoundError:
                continue  # another job took it over first
            os.remove(stale)
            warnings.warn(f"took over the stale lock of {os.path.dirname(path)} (pid "
                          f"{holder.get('pid')} on {holder.get('host')!r} is gone)", stacklevel=3)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(holder_info(), f)
        _held.add(path)
        return
    raise RunDirLocked(f"could not take the lock {path}: other jobs keep taking it")


def describe(path, holder):
    return (f"{os.path.dirname(path)} is in use by pid {holder.get('pid')} on host "
            f"{holder.get('host')!r} (since {_when(holder.get('started'))}); wait for it to end, "
            "stop it, or use another --workdir")


def release(path):
    if path in _held:
        _held.discard(path)
        os.remove(path)


def _read(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _alive(path, holder, heartbeat):
    if holder.get("host") == socket.gethostname():
        pid = holder.get("pid")
        if pid == os.getpid():  # held here (a second job in this process), or a recycled pid
            return path in _held
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by another user
            return True
        return True
    last = heartbeat if heartbeat is not None else holder.get("started", 0)
    return time.time() - last < STALE_SECONDS


def _age(path):
    try:
        return time.time() - os.path.getmtime(path)
    except FileNotFoundError:
        return 0.0


def _when(t):
    return "?" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
