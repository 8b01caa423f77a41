"""GraNd against our batch gradient with the other core quiet and loaded, interleaved in one
process, so that both states sample the same stretch of the machine's time.

  taskset -c 1 python benchmarks/pergrad_load.py [--load-core=0] [--models=small_cnn,resnet18]
      [--input-shape=32x32x3] [--repeats=10] [--malloc=glibc|hugepages|jemalloc|tcmalloc]

The load is a second `benchmarks/pergrad.py --no-torch` on the small CNN, in a loop, pinned to
--load-core. Every repeat runs each method once with the load paused (SIGSTOP to its process
group, then 2 s before timing) and once with it running (SIGCONT). Separate quiet and loaded
runs of benchmarks/pergrad.py, minutes apart, differed by more than the load does on the VM of
README's figures, whose speed drifted over minutes. One thread (as pergrad.py --threads=1),
same models, inputs and methods as pergrad.py. Prints medians and min-max per state and ends
with one JSON line of the figures.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from timing import timed_call, use_threads  # noqa: E402

use_threads(1)
import pergrad  # noqa: E402  (after use_threads: it imports jax)

STATES = ("quiet", "loaded")


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--load-core", type=int, default=0)
    parser.add_argument("--models", default="small_cnn,resnet18")
    parser.add_argument("--input-shape", default="32x32x3", choices=["28x28x1", "32x32x3"])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--malloc", default="glibc", choices=list(pergrad.MALLOCS))
    args = parser.parse_args()
    for m in args.models.split(","):
        if m not in pergrad.SETUPS:
            parser.error(f"--models: {m!r} is not one of {', '.join(pergrad.SETUPS)}")
    if not 0 <= args.load_core < os.cpu_count():
        parser.error(f"--load-core={args.load_core}: this machine has cores 0-{os.cpu_count() - 1}")
    if args.load_core in os.sched_getaffinity(0):
        parser.error(f"--load-core={args.load_core} is one of this process's cores "
                     f"{sorted(os.sched_getaffinity(0))}: pin it elsewhere (taskset -c 1)")
    if args.repeats < 1:
        parser.error(f"--repeats={args.repeats} must be >= 1")
    return args


def start_load(core, shape):
    loop = (f"while true; do taskset -c {core} {sys.executable} {HERE}/pergrad.py --no-torch "
            f"--models=small_cnn --input-shape={shape} --threads=1 --repeats=50 "
            ">/dev/null 2>&1; done")
    return subprocess.Popen(["bash", "-c", loop], start_new_session=True)


def set_load(load, running):
    os.killpg(load.pid, signal.SIGCONT if running else signal.SIGSTOP)
    time.sleep(2)


def bench_model(name, shape, repeats, load):
    jax, np, nnx = pergrad.jax, pergrad.np, pergrad.nnx
    batch = pergrad.SETUPS[name][1]
    model = pergrad.get_model(name, 10, shape, seed=0)
    graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    x = jax.random.normal(jax.random.key(0), (batch,) + shape)
    y = jax.random.randint(jax.random.key(1), (batch,), 0, 10)
    methods, _ = pergrad.make_methods(graphdef, params, batch_stats, x, y, all_methods=False)
    methods = {k: methods[k] for k in ("batch_grad", "grand")}
    for f in methods.values():
        jax.block_until_ready(f())
    rates = {(k, s): [] for k in methods for s in STATES}
    for _ in range(repeats):
        for state in STATES:
            set_load(load, state == "loaded")
            for k, f in methods.items():
                rates[k, state].append(batch / timed_call(lambda: jax.block_until_ready(f()))[1])
    result = {"model": name, "batch_size": batch}
    for state in STATES:
        med = {k: float(np.median(rates[k, state])) for k in methods}
        result[state] = {k: {"examples_per_s": round(med[k], 1),
                             "min_max": [round(min(rates[k, state]), 1),
                                         round(max(rates[k, state]), 1)]} for k in methods}
        result[state]["grand_over_batch_grad"] = round(med["grand"] / med["batch_grad"], 3)
        print(f"{name} {state:6s}: " + "  ".join(
            f"{k} {med[k]:.1f} ({min(rates[k, state]):.1f}-{max(rates[k, state]):.1f})"
            for k in methods) + f"  grand / batch_grad {result[state]['grand_over_batch_grad']:.2f}x",
            flush=True)
    return result


def main(args):
    shape = tuple(int(v) for v in args.input_shape.split("x"))
    load = start_load(args.load_core, args.input_shape)
    try:
        time.sleep(30)  # the load compiles and enters its timed loop
        results = [bench_model(m, shape, args.repeats, load) for m in args.models.split(",")]
    finally:
        os.killpg(load.pid, signal.SIGCONT)
        os.killpg(load.pid, signal.SIGKILL)
    print(json.dumps({"benchmark": "pergrad_load", "repeats": args.repeats,
                      "load_core": args.load_core, "malloc": args.malloc,
                      "affinity": sorted(os.sched_getaffinity(0)), "results": results}))


if __name__ == "__main__":
    ARGS = parse_args()
    pergrad.use_malloc(ARGS.malloc)
    main(ARGS)
