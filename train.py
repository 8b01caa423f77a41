"""Entry point: python train.py --config=configs/<file>.py --workdir=DIR [--config.a.b=v ...]"""
from absl import app, flags, logging
from ml_collections import config_flags

from datadiet import distributed
from datadiet.config import validate_config
from datadiet.jobs import JOBS, cli

cli.take_model_kwargs()  # before the config flag is defined (see there)
_CONFIG = config_flags.DEFINE_config_file("config", None, cli.config_help(), lock_config=True)
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
    config = cli.apply_model_kwargs(_CONFIG.value)
    cli.run_command(validate_config, config)  # every field, before any data loads
    cli.run_command(distributed.initialize, _COORDINATOR.value, _NUM_PROCESSES.value,
                    _PROCESS_ID.value, _DISTRIBUTED.value)  # no-op for a single process
    cli.run_command(JOBS[config.job], config, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.flags_parser)
