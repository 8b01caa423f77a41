"""Multi-process runs: joining the processes (`initialize`), and the one rule for files: only
process 0 writes, and every write is a barrier, so all processes read the same run directory.

How a process learns its place (first match wins):
  1. explicit arguments (train.py --coordinator_address/--num_processes/--process_id);
  2. the DATADIET_* variables set by the local launcher (`python -m datadiet.launch`):
     DATADIET_COORDINATOR_ADDRESS (host:port of process 0), DATADIET_NUM_PROCESSES,
     DATADIET_PROCESS_ID;
  3. `auto=True` (train.py --distributed) and nothing else given: `jax.distributed.initialize()`
     with no arguments, which reads SLURM, Open MPI or the Cloud TPU metadata itself.

Failure detection: each process beats a heartbeat to the coordination service; when one dies
(SIGKILL, lost host), the others abort within about `heartbeat_timeout_seconds` instead of
hanging in a collective (DATADIET_HEARTBEAT_TIMEOUT, default 30 s). A process that never
joins fails every other after `initialization_timeout_seconds` (DATADIET_INIT_TIMEOUT, 300 s).
"""
import itertools
import json
import os
import sys
import threading

import jax

ENV_ADDRESS, ENV_COUNT, ENV_ID = ("DATADIET_COORDINATOR_ADDRESS", "DATADIET_NUM_PROCESSES",
                                  "DATADIET_PROCESS_ID")
ENV_HEARTBEAT, ENV_INIT_TIMEOUT = "DATADIET_HEARTBEAT_TIMEOUT", "DATADIET_INIT_TIMEOUT"
BARRIER_TIMEOUT_MS = 30 * 60 * 1000  # a write waits this long for the slowest process

_barriers = itertools.count()  # every process makes the same barriers in the same order


def _env_int(name, value):
    if value is not None:
        return int(value)
    raw = os.environ.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} must be an integer") from None


def initialize(coordinator_address=None, num_processes=None, process_id=None, auto=False,
               heartbeat_timeout_seconds=None, initialization_timeout_seconds=None):
    """Joins the other processes (see the module docstring); returns True if it did.

    Does nothing (False) when no address, count or id is given, in arguments or environment,
    and `auto` is off: a single-process run.
    """
    address = coordinator_address or os.environ.get(ENV_ADDRESS)
    count = _env_int(ENV_COUNT, num_processes)
    pid = _env_int(ENV_ID, process_id)
    given = {ENV_ADDRESS: address, ENV_COUNT: count, ENV_ID: pid}
    if all(v is None for v in given.values()):
        if not auto:
            return False
        jax.distributed.initialize()  # SLURM / Open MPI / TPU pod detection
        return True
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ValueError(f"multi-process run: {missing} not set (set all of {list(given)}, "
                         "or the train.py flags --coordinator_address/--num_processes/"
                         "--process_id, or none for a single process)")
    if count < 1:
        raise ValueError(f"{ENV_COUNT}={count} must be >= 1")
    if not 0 <= pid < count:
        raise ValueError(f"{ENV_ID}={pid} must be in [0, {ENV_COUNT}={count})")
    heartbeat = _env_int(ENV_HEARTBEAT, heartbeat_timeout_seconds) or 30
    init_timeout = _env_int(ENV_INIT_TIMEOUT, initialization_timeout_seconds) or 300
    # CPU collectives across processes need a transport (gloo ships with jaxlib); the option
    # only concerns the CPU backend, and asking which backend is used would start it too early
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # When fewer processes join than expected, jaxlib aborts the process at the timeout
    # (DEADLINE_EXCEEDED in RegisterTask, no Python exception): say why just before.
    hint = threading.Timer(max(init_timeout - 1, 0.5), _print, [
        f"datadiet: process {pid} is still waiting for the others at {address} after "
        f"{init_timeout - 1} s ({ENV_INIT_TIMEOUT}={init_timeout}): were {ENV_COUNT}={count} "
        f"processes started, each with its own {ENV_ID} in [0, {count}), all with the same "
        f"{ENV_ADDRESS}?"])
    hint.daemon = True
    hint.start()
    try:
        jax.distributed.initialize(coordinator_address=address, num_processes=count,
                                   process_id=pid, initialization_timeout=init_timeout,
                                   heartbeat_timeout_seconds=heartbeat)
    finally:
        hint.cancel()
    if jax.process_count() != count:  # the coordinator was started with another count
        raise ValueError(f"{ENV_COUNT}={count}, but the coordinator at {address} has "
                         f"{jax.process_count()} processes")
    return True


def _print(message):
    print(message, file=sys.stderr, flush=True)


def is_primary():
    """Process 0 writes the run's files (see `write`)."""
    return jax.process_index() == 0


def barrier(name):
    """Waits until every process has reached the same barrier (a no-op for one process)."""
    if jax.process_count() == 1:
        return
    # The coordination service's barrier (as Orbax uses it): no device computation, so it is
    # safe between any two steps, and a missing process times out with the barrier's name.
    from jax._src import distributed as jax_distributed
    jax_distributed.global_state.client.wait_at_barrier(
        f"datadiet/{next(_barriers)}/{name}", BARRIER_TIMEOUT_MS)


def write(name, fn, sync=True):
    """Calls `fn()` (which writes `name`) on process 0 only.

    sync: barriers before and after, so that what any process reads before the write (does
    the file exist?) and after it (its content) is the same everywhere; every process must
    then make the same sequence of synced writes, which holds as long as their decisions come
    from what they read. sync=False for files no decision reads mid-run (status.json, whose
    writers include error paths that other processes may not share).
    """
    if jax.process_count() == 1:
        fn()
        return
    if sync:
        barrier(f"before {name}")
    if is_primary():
        fn()
    if sync:
        barrier(f"after {name}")


def broadcast_json(name, obj):
    """Process 0's `obj` (JSON-serialisable) on every process; others pass anything."""
    if jax.process_count() == 1:
        return obj
    from jax._src import distributed as jax_distributed
    client = jax_distributed.global_state.client
    key = f"datadiet/{next(_barriers)}/{name}"
    if is_primary():
        client.key_value_set(key, json.dumps(obj))
        return obj
    return json.loads(client.blocking_key_value_get(key, BARRIER_TIMEOUT_MS))
