"""Shared fixtures and paths of the tests (the folders mirror datadiet/)."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")
sys.path.insert(0, ROOT)  # configs/ is imported as a package by some config files
# the test folders mirror datadiet/; their shared modules (tiny_config, ...) live here
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"{SHARED_DATA} is absent (real datasets only ship beside the project)")
    return SHARED_DATA
