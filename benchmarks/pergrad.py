"""Examples/s of GraNd (per-example gradient norms over all parameters) against a batch gradient,
and, when torch + opacus are installed (`pip install -e ".[bench]"`), against PyTorch's
per-sample-norm methods on exact torch replicas of the same models (benchmarks/torch_peers.py).

  taskset -c 0 python benchmarks/pergrad.py [--models=small_cnn,resnet18] [--batch=N]
      [--input-shape=28x28x1|32x32x3] [--threads=1] [--repeats=7] [--all-methods] [--no-torch]
      [--profile] [--malloc=glibc|hugepages|jemalloc|tcmalloc]

Defaults: small CNN (28x28x1) at batch 128, ResNet-18 (32x32x3) at batch 32; --batch and
--input-shape override them for every model listed. 10 classes, BatchNorm in eval mode,
random inputs and labels, the models' seed-0 initial weights (the torch replicas get the same
weights and BatchNorm statistics).
  batch_grad   jax.grad of the mean loss over the batch (our reference throughput);
  grand        `per_example_grad_norms(method="auto")`, the public call;
  vmap         `per_example_grad_norms(method="vmap")`;
  loop         (--all-methods) a jitted single-example grad + sum of squares per example;
  ghost, materialize (--all-methods): every multi-position kernel by one method;
  torch_batch_grad, torch_func_vmap, opacus_hooks (GradSampleModule), opacus_fast_clipping,
  opacus_ghost_clipping (GradSampleModuleFastGradientClipping without / with ghost clipping).
Every norm method is checked against the per-example loop (<= 1e-3 relative) before timing.
The PyTorch peers run in a process of their own (`torch_peers.py --serve`, started here, idle
while JAX runs): one process per framework, neither one's allocator or threads in the other's.
Each repeat runs every method once in turn (interleaved, so a change of load hits all of
them); the median and the min-max over repeats are printed, with each method's minor page
faults per call (fresh pages the kernel zeroes: XLA:CPU allocates its temporaries anew at every
call) and the 1-minute load average before and after (the cores are shared). --profile then
times, per model, the forward + backward to every layer output (the part GraNd shares with a
batch gradient) and each layer's norm by both ghost and materialised forms. Ends with one
JSON line of all figures.

--threads N (set before jax / torch are imported): XLA_FLAGS gets
`--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=N` when N=1 (Eigen's thread
pool off), and intra_op_parallelism_threads=N otherwise; OMP_NUM_THREADS / MKL_NUM_THREADS = N;
torch.set_num_threads(N) and set_num_interop_threads(1). For one core, run under `taskset -c 0`.
--malloc: the allocator of both processes (the benchmark restarts itself with it; the torch
process inherits it). glibc (default, as is); hugepages: GLIBC_TUNABLES=glibc.malloc.hugetlb=1
(glibc >= 2.35), glibc's large allocations ask for transparent huge pages, 512x fewer faults
(THP "madvise" or "always" in /sys/kernel/mm/transparent_hugepage/enabled); jemalloc /
tcmalloc: LD_PRELOAD of Debian's libjemalloc2 / libtcmalloc-minimal4, which keep freed memory
for reuse instead of unmapping it at every call.
"""
import argparse
import ctypes.util
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models", default="small_cnn,resnet18")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--input-shape", default=None, help="HxWxC, e.g. 28x28x1 or 32x32x3")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--all-methods", action="store_true")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peers")
    parser.add_argument("--profile", action="store_true",
                        help="also time the taps pass and each layer's norm by both methods")
    parser.add_argument("--malloc", default="glibc", choices=list(MALLOCS),
                        help="the processes' allocator (see the docstring)")
    args = parser.parse_args()
    for m in args.models.split(","):
        if m not in SETUPS:
            parser.error(f"--models: {m!r} is not one of {', '.join(SETUPS)}")
    if args.input_shape is not None:
        try:
            shape = tuple(int(v) for v in args.input_shape.lower().split("x"))
        except ValueError:
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            parser.error(f"--input-shape={args.input_shape!r} must be HxWxC, e.g. 32x32x3")
        args.input_shape = shape
    if args.batch is not None and args.batch < 1:
        parser.error(f"--batch={args.batch} must be >= 1")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads={args.threads} must be >= 1")
    return args


SETUPS = {"small_cnn": ((28, 28, 1), 128), "resnet18": ((32, 32, 3), 32)}
# --malloc: (environment variable, value, library to find first or None, its Debian package)
MALLOCS = {"glibc": None,
           "hugepages": ("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1", None, None),
           "jemalloc": ("LD_PRELOAD", "libjemalloc.so.2", "jemalloc", "libjemalloc2"),
           "tcmalloc": ("LD_PRELOAD", "libtcmalloc_minimal.so.4", "tcmalloc_minimal",
                        "libtcmalloc-minimal4")}


def use_malloc(name):
    """Restart this process with allocator `name` unless it runs with it already: glibc reads
    its tunables and the loader LD_PRELOAD at process start, before jax is imported."""
    if MALLOCS[name] is None:
        return
    var, value, lib, package = MALLOCS[name]
    if value in os.environ.get(var, ""):
        return
    if lib is not None and ctypes.util.find_library(lib) is None:
        sys.exit(f"--malloc={name}: {value} is not installed (Debian: apt-get install {package})")
    joined = ":".join(v for v in (os.environ.get(var), value) if v)
    os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, **{var: joined}))


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    use_malloc(ARGS.malloc)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import timed_call, use_threads  # noqa: E402

if ARGS is not None and ARGS.threads is not None:  # must precede the jax / torch imports
    use_threads(ARGS.threads)

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from datadiet.models import get_model
from datadiet.pergrad import layers as layers_lib
from datadiet.pergrad import per_example_grad_norms, taps

# optional peers, in their own process (never imported here)
MISSING = [m for m in ("torch", "opacus") if importlib.util.find_spec(m) is None]
TORCH_MISSING = f"no module named {', '.join(MISSING)}" if MISSING else None
PEER_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_peers.py")

NORM_PEERS = ("torch_func_vmap", "opacus_hooks", "opacus_fast_clipping", "opacus_ghost_clipping")


def make_methods(graphdef, params, batch_stats, x, y, all_methods):
    def mean_loss(p):
        model = nnx.merge(graphdef, p, batch_stats, copy=True)
        return optax.softmax_cross_entropy_with_integer_labels(model(x, train=False), y).mean()

    batch_grad = jax.jit(jax.grad(mean_loss))

    @jax.jit
    def one_norm(p, x1, y1):
        def loss(p):
            model = nnx.merge(graphdef, p, batch_stats, copy=True)
            return optax.softmax_cross_entropy_with_integer_labels(
                model(x1[None], train=False), y1[None])[0]
        return jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(jax.grad(loss)(p))))

    def norms(method):
        return lambda: per_example_grad_norms(graphdef, params, batch_stats, x, y, method=method,
                                              chunk_size=x.shape[0])

    loop = lambda: np.array([one_norm(params, x[i], y[i]) for i in range(x.shape[0])])
    methods = {"batch_grad": lambda: batch_grad(params), "grand": norms("auto"),
               "vmap": norms("vmap")}
    if all_methods:
        methods.update({"loop": loop, "ghost": norms("ghost"),
                        "materialize": norms("materialize")})
    return methods, loop


class TorchPeers:
    """The PyTorch peers in a child process (`torch_peers.serve`); `run(k)` calls peer k there
    and returns its norms (None for the batch gradient), seconds and page faults."""

    def __init__(self, name, shape, flat_params, flat_stats, x, y, threads):
        self.proc = subprocess.Popen([sys.executable, PEER_SERVER, "--serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.names = self._ask(("setup", name, shape, flat_params, flat_stats, x, y, threads))

    def _ask(self, request):
        pickle.dump(request, self.proc.stdin)
        self.proc.stdin.flush()
        try:
            return pickle.load(self.proc.stdout)
        except EOFError:
            raise RuntimeError(f"the torch peer process exited ({self.proc.wait()}); "
                               "its error is above") from None

    def run(self, k):
        return self._ask(("run", k))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def flat(state):
    return {tuple(path): np.asarray(v.get_value() if hasattr(v, "get_value") else v)
            for path, v in nnx.to_flat_state(state)}


def median_ms(f, *args, repeats=5):
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - start)
    return round(1e3 * float(np.median(times)), 2)


def profile_layers(graphdef, params, batch_stats, x, y):
    """Milliseconds of the forward + backward to the layer outputs (taps) and of each layer's
    squared norm by ghost norm and by materialisation, each jitted on its own."""
    tapped = jax.jit(lambda p: taps.inputs_and_output_grads(graphdef, p, batch_stats, x, y)[1:3])
    out = {"taps_ms": median_ms(tapped, params), "layers": []}
    print(f"  profile: forward + backward to every layer output (taps) {out['taps_ms']:.1f} ms")
    found, inputs, deltas, _ = taps.inputs_and_output_grads(graphdef, params, batch_stats, x, y)
    for layer, a, d in zip(found, inputs, deltas):
        row = {"path": "/".join(map(str, layer.path)), "in": list(layer.in_shape[1:]),
               "out": list(layer.out_shape[1:]), "auto": layers_lib.layer_strategy(layer)}
        for how in ("ghost", "materialize") if layer.kind != "batchnorm" else ("batchnorm",):
            fn = jax.jit(lambda a, d, how=how, layer=layer: layers_lib.sq_norm(
                layer, a, d, "auto" if how == "batchnorm" else how))
            row[f"{how}_ms"] = median_ms(fn, a, d)
        out["layers"].append(row)
        print("    " + "  ".join(f"{k} {v}" for k, v in row.items()))
    return out


def bench_model(name, shape, batch, repeats, all_methods, use_torch, profile, threads):
    model = get_model(name, 10, shape, seed=0)
    graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    x = jax.random.normal(jax.random.key(0), (batch,) + shape)
    y = jax.random.randint(jax.random.key(1), (batch,), 0, 10)
    jax_methods, loop = make_methods(graphdef, params, batch_stats, x, y, all_methods)
    methods = {k: (lambda f=f: timed_call(lambda: jax.block_until_ready(f())))
               for k, f in jax_methods.items()}
    peers = None
    if use_torch:
        peers = TorchPeers(name, shape, flat(params), flat(batch_stats), np.asarray(x),
                           np.asarray(y), threads)
        methods.update({k: (lambda k=k: peers.run(k)) for k in peers.names})
    ref = loop()
    errors, failed = {}, []
    for k, f in methods.items():  # compile + warm up + check
        out = f()[0]
        if "batch_grad" in k:
            continue
        errors[k] = float(np.max(np.abs(np.asarray(out) - ref) / ref))
        if errors[k] > 1e-3:
            if not k.startswith(("torch", "opacus")):
                raise AssertionError(f"{name}: {k} differs from the loop by {errors[k]:.2e}")
            print(f"  {k}: NOT TIMED, its norms differ from the per-example loop by "
                  f"{errors[k]:.2e} (> 1e-3 relative)")
            failed.append(k)
    for k in failed:
        del methods[k]
    times, faults = {k: [] for k in methods}, {k: [] for k in methods}
    load_before = os.getloadavg()[0]
    for _ in range(repeats):
        for k, f in methods.items():
            _, seconds, n = f()
            times[k].append(seconds)
            faults[k].append(n)
    load_after = os.getloadavg()[0]
    if peers is not None:
        peers.close()
    rate = {k: batch / float(np.median(v)) for k, v in times.items()}
    lo_hi = {k: (batch / max(v), batch / min(v)) for k, v in times.items()}
    result = {"model": name, "failed_check": failed, "input_shape": list(shape), "batch_size": batch,
              "load_avg_1min": [round(load_before, 2), round(load_after, 2)],
              "max_rel_err_vs_loop": {k: float(f"{e:.2e}") for k, e in errors.items()}}
    print(f"{name} {'x'.join(map(str, shape))} batch {batch}  (load average {load_before:.2f} -> "
          f"{load_after:.2f}, {os.cpu_count()} cores visible, affinity "
          f"{sorted(os.sched_getaffinity(0))}, {jax.device_count()} device(s))")
    for k, r in rate.items():
        base = "torch_batch_grad" if k.startswith(("torch", "opacus")) else "batch_grad"
        ratio = r / rate[base]
        err = f"  max rel err {errors[k]:.1e}" if k in errors else ""
        n_faults = int(np.median(faults[k]))
        print(f"  {k:22s} {r:8.1f} examples/s (min-max {lo_hi[k][0]:7.1f}-{lo_hi[k][1]:7.1f})"
              f"   {ratio:5.2f}x {base}  {n_faults:7d} faults/call{err}")
        result[k] = {"examples_per_s": round(r, 1),
                     "min_max": [round(lo_hi[k][0], 1), round(lo_hi[k][1], 1)],
                     f"over_{base}": round(ratio, 3), "minor_faults_per_call": n_faults}
    result["grand_over_vmap"] = round(rate["grand"] / rate["vmap"], 3)
    if use_torch:
        best = max((k for k in NORM_PEERS if k in rate), key=lambda k: rate[k])
        result["best_torch_norm_method"] = best
        result["grand_over_best_torch"] = round(rate["grand"] / rate[best], 3)
        result["batch_grad_over_torch_batch_grad"] = round(
            rate["batch_grad"] / rate["torch_batch_grad"], 3)
        print(f"  grand / best torch ({best}): {result['grand_over_best_torch']:.2f}x   "
              f"batch_grad / torch_batch_grad: {result['batch_grad_over_torch_batch_grad']:.2f}x")
    print(f"  grand / vmap: {result['grand_over_vmap']:.2f}x", flush=True)
    if profile:
        result["profile"] = profile_layers(graphdef, params, batch_stats, x, y)
    return result


def main(args):
    use_torch = not args.no_torch and TORCH_MISSING is None
    if not args.no_torch and TORCH_MISSING is not None:
        print(f"PyTorch peers skipped: {TORCH_MISSING} (pip install -e \".[bench]\")")
    results = []
    for name in args.models.split(","):
        shape, batch = SETUPS[name]
        results.append(bench_model(name, args.input_shape or shape, args.batch or batch,
                                   args.repeats, args.all_methods, use_torch,
                                   args.profile, args.threads))
    print(json.dumps({"benchmark": "pergrad", "repeats": args.repeats, "threads": args.threads,
                      "xla_flags": os.environ.get("XLA_FLAGS", ""),
                      "malloc": args.malloc,
                      "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
                      "ld_preload": os.environ.get("LD_PRELOAD", ""),
                      "torch_peers": use_torch, "results": results}))


if __name__ == "__main__":
    main(ARGS)
