"""What the commands (train.py, experiments/) share on the command line: the config fields in
--help, `--config.model.kwargs.<option>=v` for any model option, and errors as one line.

Exit status: 2 for a bad config, input or run directory (the message names the field or file),
1 for a run that diverged, 128 + signal for a run stopped by SIGTERM / SIGINT (it resumes).
"""
import ast
import json
import os
import re
import sys
import traceback

from absl import flags

from datadiet import config_tree
from datadiet.config import default_config
from datadiet.training.finite import Diverged
from datadiet.training.preemption import Preempted
from datadiet.training.rundir import RunDirConflict
from datadiet.training.runlock import RunDirLocked

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# model.kwargs holds only what a config file sets: options given on the command line are added
KWARGS_FLAG = re.compile(r"^--config\.model\.kwargs\.(\w+)=(.*)$")
_model_kwargs = {}  # the options flags_parser pulled out of the command line


def config_help(config=None):
    """The help text of --config: every field of the base config with its default."""
    fields = config_tree.flatten(json.loads((config or default_config()).to_json_best_effort()))
    lines = [f"  {key} = {value!r}" for key, value in sorted(fields.items())
             if value is not None]  # None: a renamed field's placeholder (renamed.py)
    return ("Path to a config file (configs/). Any field can be overridden with "
            "--config.<section>.<field>=<value>, model options with "
            "--config.model.kwargs.<option>=<value>. The fields and their defaults:\n"
            + "\n".join(lines))


def take_model_kwargs(argv=sys.argv):
    """Removes the --config.model.kwargs.<option>=<value> arguments from `argv` (in place) and
    keeps them for `apply_model_kwargs`. Call it before DEFINE_config_file: ml_collections
    registers an override for every --config.* argument it sees at definition time, and one
    for a field the config file does not set fails."""
    kept = []
    for arg in argv:
        m = KWARGS_FLAG.match(arg)
        if m:
            _model_kwargs[m.group(1)] = _literal(m.group(2))
        else:
            kept.append(arg)
    argv[:] = kept


def flags_parser(argv):
    """absl's flag parsing, a bad override reported as one line (exit status 2)."""
    try:
        return flags.FLAGS(argv)
    except (flags.Error, KeyError, AttributeError, ValueError, TypeError) as e:
        fail(_override_message(e, argv))


def apply_model_kwargs(config):
    """Adds the --config.model.kwargs.<option> values (validation checks their names)."""
    if _model_kwargs:
        with config.unlocked():
            for name, value in _model_kwargs.items():
                config.model.kwargs[name] = value
    return config


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a plain string


def _override_message(e, argv):
    """One line for a bad --config.* argument: ml_collections raises a KeyError /
    AttributeError naming the missing field (with its "did you mean"), absl a flags.Error."""
    message = e.args[0] if isinstance(e, KeyError) and e.args else e
    message = str(message).replace("\n", "; ").strip()
    if not isinstance(e, (KeyError, AttributeError)):
        return f"bad command line: {message}"
    field = re.match(r"^['\"]*(\w+)", message)
    flag = next((a.split("=")[0] for a in argv if a.startswith("--config.") and field
                 and re.search(rf"\.{field.group(1)}(\.|=|$)", a.split("=")[0])), None)
    return f"{flag + ': ' if flag else ''}no such config field ({message})"


def fail(message, status=2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


def run_command(job, *args):
    """Runs job(*args), turning the errors a user can act on into one line and an exit status
    (a ValueError raised by datadiet's own checks; not one from inside a library: those keep
    their traceback). DATADIET_TRACEBACK=1 shows every traceback."""
    if os.environ.get("DATADIET_TRACEBACK"):
        return job(*args)
    try:
        return job(*args)
    except (RunDirConflict, RunDirLocked) as e:
        fail(str(e))
    except Diverged as e:
        fail(str(e), status=1)
    except Preempted as e:
        fail(f"{e}; rerun the same command to resume from the last checkpoint",
             status=e.exit_code)
    except ValueError as e:
        if not _raised_by_datadiet(e):
            raise
        fail(str(e))


def _raised_by_datadiet(e):
    frames = traceback.extract_tb(e.__traceback__)
    return bool(frames) and os.path.abspath(frames[-1].filename).startswith(PACKAGE_DIR + os.sep)
