import pytest
import torch

from pixelforge.data.clusters import cluster_features, cluster_labels, kmeans
from pixelforge.errors import PixelforgeError


def _blobs(seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [5.0, 5.0], [0.0, 5.0]])
    truth = torch.arange(3).repeat_interleave(100)
    return centres[truth] + 0.3 * torch.randn(300, 2, generator=g), truth, centres


def test_kmeans_recovers_separated_blobs():
    x, truth, centres = _blobs()
    found, assign = kmeans(x, 3, seed=1)
    # every found cluster is one blob, whatever the numbering
    for c in range(3):
        assert assign[truth == c].unique().numel() == 1
    assert torch.bincount(assign).tolist() == [100, 100, 100]
    order = torch.cdist(centres, found).argmin(1)
    assert torch.allclose(found[order], centres, atol=0.1)


def test_kmeans_is_deterministic_for_a_seed_and_keeps_every_cluster():
    x, _, _ = _blobs()
    a, b = kmeans(x, 7, seed=2), kmeans(x, 7, seed=2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    dup = torch.cat([torch.zeros(10, 2), torch.ones(10, 2)])  # more clusters than distinct points
    _, assign = kmeans(dup, 4, seed=0)
    assert torch.bincount(assign, minlength=4).min() >= 1


def test_kmeans_refuses_impossible_k():
    with pytest.raises(PixelforgeError, match="cannot make 5 clusters of 3 images"):
        kmeans(torch.rand(3, 2), 5)
    with pytest.raises(PixelforgeError, match="cannot make 0 clusters"):
        kmeans(torch.rand(3, 2), 0)


def test_cluster_labels_group_images_by_shape():
    bright = torch.zeros(20, 1, 28, 28, dtype=torch.uint8)
    bright[:10, :, :14] = 255  # top half lit
    bright[10:, :, :, :14] = 255  # left half lit
    assert cluster_features(bright).shape == (20, 256)  # 28 px pooled to 16x16
    labels = cluster_labels(bright, 2, seed=0)
    assert labels[:10].unique().numel() == 1 and labels[10:].unique().numel() == 1 and labels[0] != labels[10]
