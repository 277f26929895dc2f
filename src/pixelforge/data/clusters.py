"""Pseudo-labels for unlabelled images: k-means clusters of the training images.

A conditional GAN learns far better than an unconditional one on the same images, because
the labels split the data into modes that G need not mix and that D judges one at a time.
Clusters of the images themselves give much of that split without any label (the idea of
cluster-conditioned GANs: Sage et al. 2018, "Logo synthesis and manipulation with clustered
GANs"; Liu et al. 2020, "Diverse image generation via self-conditioned GANs", who cluster
D's features instead). Here the clusters are k-means (k-means++ seeding, Lloyd iterations) on
the pixels, downsampled to at most 16x16 so that the coarse shape decides, not the texture.
Nothing trained on labels is involved.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import PixelforgeError

CLUSTER_SIDE = 16  # images are area-downsampled to at most this side before clustering


def cluster_features(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) images -> float (N, D) features in [0, 1], at most 16x16 per channel."""
    x = images.float().div(255)
    if max(x.shape[-2:]) > CLUSTER_SIDE:
        x = F.adaptive_avg_pool2d(x, CLUSTER_SIDE)
    return x.flatten(1)


def _sq_distances(x: torch.Tensor, centroids: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
    return torch.cat([torch.cdist(x[i:i + chunk], centroids).square() for i in range(0, len(x), chunk)])


def kmeans(x: torch.Tensor, k: int, seed: int = 0, iters: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means of the rows of ``x``: (centroids (k, D), assignments (N,)). Deterministic for a seed.

    Seeding is k-means++ (Arthur & Vassilvitskii 2007): each next centre drawn with probability
    proportional to the squared distance to the nearest centre so far. A cluster left empty by
    an iteration takes the point farthest from its centre among clusters of two or more points, so
all k clusters stay in use.
    """
    n = x.shape[0]
    if not 1 <= k <= n:
        raise PixelforgeError(f"cannot make {k} clusters of {n} images; use --clusters between 1 and {n}")
    g = torch.Generator().manual_seed(seed)
    x = x.float()
    centroids = x[torch.randint(n, (1,), generator=g)]
    nearest = _sq_distances(x, centroids).squeeze(1)
    for _ in range(1, k):
        weights = nearest if nearest.sum() > 0 else torch.ones_like(nearest)
        c = x[torch.multinomial(weights, 1, generator=g)]
        centroids = torch.cat([centroids, c])
        nearest = torch.minimum(nearest, _sq_distances(x, c).squeeze(1))
    assign = torch.zeros(n, dtype=torch.long)
    for i in range(iters):
        dist = _sq_distances(x, centroids)
        best, new_assign = dist.min(dim=1)
        counts = torch.bincount(new_assign, minlength=k)
        for empty in (counts == 0).nonzero().flatten().tolist():
            # the farthest point of a cluster that keeps a member after giving it up
            donors = torch.where(counts[new_assign] > 1, best, torch.full_like(best, -1.0))
            far = int(donors.argmax())
            counts[new_assign[far]] -= 1
            counts[empty] += 1
            new_assign[far], best[far] = empty, -1.0
        if i > 0 and torch.equal(new_assign, assign):
            break
        assign = new_assign
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        centroids = sums / torch.bincount(assign, minlength=k).clamp_min(1).unsqueeze(1).to(x.dtype)
    return centroids, assign


def cluster_labels(images: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """Cluster ids (N,) of uint8 images, k-means on their downsampled pixels."""
    return kmeans(cluster_features(images), k, seed)[1]
