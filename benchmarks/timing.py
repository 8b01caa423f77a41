"""One timed call, as benchmarks/pergrad.py and its torch peer process both measure it, and
the thread settings the per-example benchmarks share (no jax import here: they must precede it)."""
import os
import resource
import time


def use_threads(n):
    """Environment for n compute threads, set before jax / torch are imported: XLA_FLAGS gets
    intra_op_parallelism_threads=n (and Eigen's thread pool off when n=1); OMP_NUM_THREADS,
    MKL_NUM_THREADS and OPENBLAS_NUM_THREADS = n."""
    flags = "--xla_cpu_multi_thread_eigen=false " if n == 1 else ""
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags
                               + f"intra_op_parallelism_threads={n}").strip()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)


def timed_call(fn):
    """(fn(), wall seconds of the call, minor page faults of this process during it)."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    return out, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
