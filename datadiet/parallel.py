"""Data parallelism over all local devices with `jax.sharding` (multi-host ready).

Parameters and the dataset are replicated; every batch axis is split over the "data" mesh
axis. Arrays are built with `make_array_from_callback`, which works unchanged when
`jax.distributed.initialize()` has joined several hosts (each host holds the same arrays).
"""
import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P


def data_mesh():
    # Auto axes: XLA propagates shardings (e.g. through the gather of a batch from the
    # replicated dataset) without explicit out_sharding annotations at every op.
    return jax.make_mesh((jax.device_count(),), ("data",),
                         axis_types=(jax.sharding.AxisType.Auto,))


def replicate(tree, mesh):
    return jax.device_put(tree, NamedSharding(mesh, P()))


def put_global(array, mesh, batch_axis=None):
    """Host numpy array -> global jax array, split over devices along `batch_axis` (or replicated)."""
    array = np.asarray(array)
    spec = [None] * array.ndim
    if batch_axis is not None:
        spec[batch_axis] = "data"
    sharding = NamedSharding(mesh, P(*spec))
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])
