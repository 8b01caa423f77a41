"""What every experiment command shares: its two flags, the compilation cache kept in the
workdir, and writing WORKDIR/results_<name>.json with its figure and table."""
import json
import os
import sys

import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from datadiet import distributed
from datadiet.jit_cache import use_compilation_cache
from datadiet.jobs import cli


def run(main):
    """`app.run(main)` with --config and --workdir, errors as one line (datadiet/jobs/cli.py).
    Called under __main__ only: tests import several experiment modules, and flags may be
    defined once per process."""
    cli.take_model_kwargs()
    config_flags.DEFINE_config_file(
        "config", None, "An experiment config (configs/): its `experiment` section, plus the "
        "run fields of train.py's --config, overridable the same way (python train.py --help "
        "lists them).")
    flags.DEFINE_string("workdir", None, "Experiment directory (created; resumed if it exists).")
    flags.DEFINE_bool("distributed", False, "Multi-host: jax.distributed.initialize() detects "
                      "the cluster (see README, Running on many hosts).")
    flags.mark_flags_as_required(["config", "workdir"])
    for name in ("config", "workdir", "distributed"):  # --help shows them as the command's own
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])

    def start(argv):
        # the launcher's DATADIET_* variables (or --distributed) join the processes first
        distributed.initialize(auto=flags.FLAGS.distributed)
        cli.run_command(main, cli.apply_model_kwargs(flags.FLAGS.config), flags.FLAGS.workdir)
    app.run(start, flags_parser=cli.flags_parser)


def cache_compilations(workdir):
    """Every run of an experiment compiles the same programs: keep them across runs (and
    restarts) in WORKDIR/jax_cache. Also quiets absl's INFO logging (orbax's per-save lines)."""
    logging.set_verbosity(logging.WARNING)
    use_compilation_cache(os.path.join(workdir, "jax_cache"))


def band(values):
    """Mean and 16-84 percentile band over seeds; None values (e.g. a target never reached)
    are left out, and n says how many counted."""
    v = np.asarray([x for x in values if x is not None], np.float64)
    if len(v) == 0:
        return {"mean": None, "p16": None, "p84": None, "n": 0, "values": list(values)}
    return {"mean": v.mean(), "p16": np.percentile(v, 16), "p84": np.percentile(v, 84),
            "n": len(v), "values": list(values)}


def write_results(results, config, workdir, name, figures):
    """Writes the results (with the config) and the figure; prints the table. Multi-process:
    process 0 only."""
    if not distributed.is_primary():
        return
    results["config"] = json.loads(config.to_json_best_effort())
    path = os.path.join(workdir, f"results_{name}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    png = figures.draw(path)
    print(figures.table(results))
    print(f"wrote {path} and {png}")
