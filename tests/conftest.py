import os
import sys

import pytest

from tiny_config import tiny_config  # noqa: F401  (re-exported for the tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")
sys.path.insert(0, ROOT)  # configs/ is imported as a package by some config files


@pytest.fixture
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"{SHARED_DATA} is absent (real datasets only ship beside the project)")
    return SHARED_DATA
