"""One timed call, as benchmarks/pergrad.py and its torch peer process both measure it."""
import resource
import time


def timed_call(fn):
    """(fn(), wall seconds of the call, minor page faults of this process during it)."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    return out, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
