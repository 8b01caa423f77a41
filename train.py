"""Entry point: python train.py --config=configs/<file>.py --workdir=DIR [--config.a.b=v ...]"""
from absl import app, flags, logging
from ml_collections import config_flags

from datadiet import distributed
from datadiet.config import validate_config
from datadiet.jobs import JOBS

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (created; resumed if it exists).")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Multi-host run: jax.distributed.initialize() detects SLURM / Open MPI "
    "/ TPU pods (the DATADIET_* variables of datadiet.launch, or the flags below, if set).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's id in [0, num_processes).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                           auto=_DISTRIBUTED.value)  # no-op for a single process
    validate_config(_CONFIG.value)
    JOBS[_CONFIG.value.job](_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
