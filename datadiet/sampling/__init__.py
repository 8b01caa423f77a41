"""Streaming samplers: draw each mini-batch from a distribution over the whole training set."""
from datadiet.sampling.config import (BASE_METHODS, METHODS, default_sampling_config,
                                      validate_sampling_config)
