"""The search space, declared in the config: `hpo.space.<name> = {type, low, high, choices, path}`.

type: float (uniform in [low, high]), log_float (log-uniform, low > 0), int (uniform integers in
[low, high]), categorical (one of `choices`: bools, ints, floats or strings). `path` is the dotted
run-config field the value sets, e.g. "optim.lr", "train.batch_size", "model.kwargs.width".
Values are drawn through Optuna's `trial.suggest_*`, so the samplers see the true space.
"""
import copy

TYPES = ("float", "log_float", "int", "categorical")
# Fields a trial may not set: the tuning itself, and what hpo.evaluation decides.
RESERVED = ("hpo", "job", "coreset", "prune", "sampling")


def validate_space(space, config=None, validate=None):
    """`validate`: the run-config validator the corner values are checked with (none: skipped)."""
    for name, p in space.items():
        where = f"hpo.space.{name}"
        ptype = p.get("type")
        if ptype not in TYPES:
            raise ValueError(f"{where}.type={ptype!r} is not one of {list(TYPES)}")
        path = p.get("path")
        if not isinstance(path, str) or not path:
            raise ValueError(f"{where}.path={path!r} must name a config field, e.g. 'optim.lr'")
        if path.split(".")[0] in RESERVED:
            raise ValueError(f"{where}.path={path!r}: fields under {list(RESERVED)} are set by "
                             "the tuning itself, not by the search space")
        if ptype == "categorical":
            choices = p.get("choices")
            if not choices or not all(isinstance(c, (bool, int, float, str)) for c in choices):
                raise ValueError(f"{where}.choices={choices!r} must be a non-empty list of "
                                 "bools, ints, floats or strings")
        else:
            low, high = p.get("low"), p.get("high")
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                          for v in (low, high))
            if not numeric or not low < high:
                raise ValueError(f"{where}: low={low!r} must be a number below high={high!r}")
            if ptype == "log_float" and low <= 0:
                raise ValueError(f"{where}: log_float needs low={low!r} > 0")
            if ptype == "int" and not (float(low).is_integer() and float(high).is_integer()):
                raise ValueError(f"{where}: int needs whole low={low!r} and high={high!r}")
        if config is not None:
            _check_path(config, path, where)
            for value in corner_values(p) if validate else ():  # each gives a valid config
                _validate_with(config, path, value, where, validate)


def corner_values(p):
    if p["type"] == "categorical":
        return list(p["choices"])
    if p["type"] == "int":
        return [int(p["low"]), int(p["high"])]
    return [float(p["low"]), float(p["high"])]


def suggest(trial, space):
    """{name: value} drawn for `trial` (sorted names: the same order every time)."""
    out = {}
    for name in sorted(space):
        p = space[name]
        if p["type"] == "float":
            out[name] = trial.suggest_float(name, p["low"], p["high"])
        elif p["type"] == "log_float":
            out[name] = trial.suggest_float(name, p["low"], p["high"], log=True)
        elif p["type"] == "int":
            out[name] = trial.suggest_int(name, int(p["low"]), int(p["high"]))
        else:
            out[name] = trial.suggest_categorical(name, list(p["choices"]))
    return out


def apply(config, space, params):
    """A copy of `config` with each sampled value written at its param's path."""
    config = copy.deepcopy(config)
    config.unlock()
    for name, value in params.items():
        set_path(config, space[name]["path"], value)
    return config


def set_path(config, path, value):
    *parents, leaf = path.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[leaf] = value


def _check_path(config, path, where):
    *parents, leaf = path.split(".")
    node = config
    for i, part in enumerate(parents):
        if part not in node:
            raise ValueError(f"{where}.path={path!r}: the config has no field "
                             f"{'.'.join(parents[:i + 1])!r}")
        node = node[part]
    # model.kwargs holds the constructor's options, present or not: validate_config checks them
    if leaf not in node and ".".join(parents) != "model.kwargs":
        raise ValueError(f"{where}.path={path!r}: the config has no field {path!r}")


def _validate_with(config, path, value, where, validate_config):
    probe = copy.deepcopy(config)
    probe.unlock()
    try:
        set_path(probe, path, value)
        probe.job = "train"  # the run a trial makes
        probe.hpo.space = {}  # (the space itself is being checked here: no recursion)
        validate_config(probe)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{where}: value {value!r} at {path!r} gives an invalid run config: "
                         f"{e}") from e
