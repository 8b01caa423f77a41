"""Shared fixtures and paths of the tests (the folders mirror datadiet/)."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One persistent XLA compilation cache for the session, both xdist workers and every subprocess
# the tests start (they inherit the environment): the tiny jobs build the same programs over and
# over (each run jits its own steps), and a hit loads a program instead of compiling it. Set
# before JAX is imported, which reads these variables. In the checkout, so a fresh clone starts
# cold. tests/training/test_loop.py on one core: 293 s without it, 136 s with it, cold.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(ROOT, ".cache", "jax_tests"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")
sys.path.insert(0, ROOT)  # configs/ is imported as a package by some config files
# the test folders mirror datadiet/; their shared modules (tiny_config, ...) live here
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tiny_config import tiny_config  # noqa: E402  (found through the path above)

from datadiet.jit_cache import use_compilation_cache  # noqa: E402
from datadiet.jobs.scores import compute_scores  # noqa: E402

use_compilation_cache(os.environ["JAX_COMPILATION_CACHE_DIR"])  # if JAX came in before us


@pytest.fixture
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"{SHARED_DATA} is absent (real datasets only ship beside the project)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def noisy_scores_job(tmp_path_factory):
    """A small digits scores job with 10% label noise: 2 seeds, EL2N and margin after 1 epoch,
    input norms, the penultimate embeddings after epoch 1. Shared by the score-set and report
    tests (one job per test session)."""
    workdir = str(tmp_path_factory.mktemp("noisy_scores"))
    c = tiny_config(epochs=1.0)
    c.job = "scores"
    c.scores.names, c.scores.epochs, c.scores.num_seeds = ("el2n", "margin", "input_norm"), (1,), 2
    c.scores.embeddings = 1  # a [n, d] file beside the scores: not a score, but exported
    c.data.label_noise = 0.1
    compute_scores(c, workdir)
    return c, workdir
