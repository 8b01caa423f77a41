"""The host input pipeline (data.pipeline = "host"): the examples stay on the host (in memory,
memory-mapped .npy files, or a TFDS data_source) and Grain reads them by id, a global batch at
a time, each process only the rows of the batch that live on its own devices. The batches are
put on the devices a few steps ahead of the step that needs them.

Every global batch is split over the 1-D "data" mesh of datadiet.parallel.data_mesh(); its
global array is assembled with `jax.make_array_from_process_local_data`, so under several
processes (jax.distributed) no process reads or holds another's rows.
"""
import grain
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

READ_THREADS = 2  # Grain threads gathering batches (numpy copies; two cores here)
HOST_BUFFER = 4  # batches read ahead on the host
DEVICE_BUFFER = 2  # batches already on the devices ahead of the step


def local_rows(mesh, n):
    """(lo, hi): the rows [lo, hi) of a global batch of n rows (split over the "data" axis)
    whose shards live on this process's devices."""
    spans = sorted({index[0].indices(n)[:2] for index in NamedSharding(mesh, P("data"))
                    .addressable_devices_indices_map((n,)).values()})
    lo, hi = spans[0][0], spans[-1][1]
    if sum(b - a for a, b in spans) != hi - lo:  # jax.make_mesh keeps a process's devices together
        raise ValueError(f"this process's devices hold rows {spans} of the batch: not one block")
    return lo, hi


def to_global(mesh, local, n):
    """This process's rows of a global batch of n rows -> the global array split over "data"."""
    local = np.asarray(local)
    return jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")), local,
                                                  (n,) + local.shape[1:])


def host_values(array):
    """A global (row-split) jax array as one numpy array on every process."""
    if jax.process_count() == 1:
        return np.asarray(array)
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


class _Gather:
    """Grain map: step s -> this process's rows of batch s, read from the host arrays."""

    def __init__(self, x, y, ids, weights):
        self.x, self.y, self.ids, self.weights = x, y, ids, weights

    def __call__(self, s):
        ids = self.ids[s]
        # numpy fancy indexing reads only these rows (of a memory map: their pages)
        return {"x": np.asarray(self.x[ids]), "y": np.asarray(self.y[ids], np.int32),
                "w": self.weights[s], "ids": ids}


def _prefetched(ds, mesh, n):
    """Grain iteration of `ds` (a MapDataset of host batches) with the global arrays built
    on a background thread, DEVICE_BUFFER batches ahead."""
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=READ_THREADS,
                                              prefetch_buffer_size=HOST_BUFFER))
    it = it.map(lambda batch: {k: to_global(mesh, v, n) for k, v in batch.items()})
    return iter(grain.experimental.ThreadPrefetchIterDataset(it, prefetch_buffer_size=DEVICE_BUFFER))


def epoch_batches(x, y, ids, weights, mesh):
    """Iterator over the rows of `ids`/`weights` ([steps, B], host): per step a dict of global
    device arrays "x" (raw inputs [B, ...]), "y" (int32 labels), "w" (weights), "ids"."""
    steps, b = ids.shape
    lo, hi = local_rows(mesh, b)
    gather = _Gather(x, y, np.asarray(ids)[:, lo:hi], np.asarray(weights, np.float32)[:, lo:hi])
    return _prefetched(grain.MapDataset.range(steps).map(gather), mesh, b)


class _Chunk:
    """Grain map: chunk c -> this process's rows of source-order rows [c * length, ...), padded
    with zero rows (valid = 0) to the chunk length."""

    def __init__(self, x, y, length, lo, hi):
        self.x, self.y, self.length, self.lo, self.hi = x, y, length, lo, hi

    def __call__(self, c):
        n = len(self.y)
        start = min(c * self.length + self.lo, n)
        stop = min(c * self.length + self.hi, n)
        rows = self.hi - self.lo
        x, y = np.asarray(self.x[start:stop]), np.asarray(self.y[start:stop], np.int32)
        pad = rows - len(y)
        valid = np.concatenate([np.ones(len(y), np.float32), np.zeros(pad, np.float32)])
        if pad:
            x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
            y = np.concatenate([y, np.zeros(pad, np.int32)])
        return {"x": x, "y": y, "valid": valid}


def source_chunks(x, y, length, mesh):
    """Iterator over (start, stop, batch) for the chunks of `length` rows of x, y in source order
    (the last padded with zero rows); batch holds global arrays "x", "y", "valid" (1 = a row of
    the data). `length` must be a multiple of the device count."""
    n = len(y)
    lo, hi = local_rows(mesh, length)
    chunks = -(-n // length)
    it = _prefetched(grain.MapDataset.range(chunks).map(_Chunk(x, y, length, lo, hi)), mesh, length)
    for c, batch in enumerate(it):
        yield c * length, min((c + 1) * length, n), batch


def map_source_chunks(fn, replicated, x, y, length, mesh):
    """fn(*replicated, x_chunk, y_chunk) over all of x, y in source order (fn row-wise, as
    pergrad.chunks.map_chunks'), outputs gathered to the host and concatenated (leaf by leaf)."""
    outs = []
    for start, stop, batch in source_chunks(x, y, length, mesh):
        out = fn(*replicated, batch["x"], batch["y"])
        outs.append(jax.tree.map(lambda a: host_values(a)[: stop - start], out))
    return jax.tree.map(lambda *a: np.concatenate(a), *outs)


def gather_ids(x, y, ids, mesh):
    """The global batch of examples `ids` (host, length a multiple of the device count):
    (x, int32 y) global arrays, each process reading its own rows."""
    n = len(ids)
    lo, hi = local_rows(mesh, n)
    mine = np.asarray(ids)[lo:hi]
    return to_global(mesh, x[mine], n), to_global(mesh, np.asarray(y[mine], np.int32), n)
