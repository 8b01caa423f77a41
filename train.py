"""Entry point: python train.py --config=configs/<file>.py --workdir=DIR [--config.a.b=v ...]"""
import jax
from absl import app, flags, logging
from ml_collections import config_flags

from datadiet.config import validate_config
from datadiet.jobs import JOBS

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (created; resumed if it exists).")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False,
                                 "Call jax.distributed.initialize() first (multi-host runs).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    if _DISTRIBUTED.value:
        jax.distributed.initialize()
    validate_config(_CONFIG.value)
    JOBS[_CONFIG.value.job](_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
