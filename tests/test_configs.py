"""Every shipped config file loads and passes validation (a typo in a field fails here)."""
import glob
import importlib
import inspect
import os

import pytest

from conftest import ROOT
from datadiet.config import validate_config
from datadiet.sampling.config import METHODS as SAMPLING_METHODS

FILES = sorted(f for f in glob.glob(os.path.join(ROOT, "configs", "*.py"))
               if not f.endswith("__init__.py"))


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_config_file_is_valid(path):
    name = os.path.basename(path)[:-3]
    module = importlib.import_module(f"configs.{name}")
    kinds = [None]
    if inspect.signature(module.get_config).parameters:  # file.py:<kind> configs
        kinds = ["scores", "curve", "epochs", "window"]
    for kind in kinds:
        config = module.get_config() if kind is None else module.get_config(kind)
        validate_config(config)
        if "experiment" in config and "scores_root" in config.experiment:
            assert config.job == "scores"  # pruning experiments start from the scores job's
        for entry in config.get("experiment", {}).get("methods", ()):
            if len(entry) == 3 and entry[1] in SAMPLING_METHODS:  # streaming: (label, method,
                config.sampling.method, config.sampling.init = entry[1:]  # init) each valid
                validate_config(config)
