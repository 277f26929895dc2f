"""Fixtures for the metrics tests (the environment is isolated by tests/conftest.py):
single-threaded torch and a tiny deterministic feature extractor."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn


@pytest.fixture(autouse=True)
def single_thread():
    # These tests run many small tensor ops; on a busy 2-core machine, OpenMP
    # threads waiting for each other made them up to 100x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyExtractor(nn.Module):
    """A fixed random conv net implementing the FeatureExtractor protocol."""

    name = "tiny-test-cnn"
    feature_dim = 8

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, self.feature_dim, 3, stride=2)
            self.head = nn.Linear(self.feature_dim, 5)
        self.requires_grad_(False)

    def features(self, images):
        x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
        return F.relu(self.conv(x)).mean(dim=(2, 3))

    def logits(self, images):
        return self.head(self.features(images)) * 10


@pytest.fixture
def tiny_extractor():
    return TinyExtractor()
