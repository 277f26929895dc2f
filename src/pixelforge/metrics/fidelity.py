"""Sample-based fidelity metrics: FID, KID, Inception Score and precision/recall.

These compare a set of generated ("fake") images with a set of real ones
through the eyes of a feature extractor (see :mod:`pixelforge.metrics.extractor`).
Each ``*_from_features`` / ``*_from_logits`` function works on what an extractor
already produced; :func:`calculate_metrics` extracts once per image set and
computes any subset of the metrics.

All of them depend on the extractor: numbers are comparable only between
results computed with the same extractor (its ``name`` is recorded) and similar
sample counts. The math comes from torchmetrics where it exists as a function
(FID's closed form, KID's polynomial-kernel MMD); the Inception Score and
precision/recall are written here, for the reasons in their docstrings.

Too few samples for a metric raise :class:`~pixelforge.errors.PixelforgeError`
instead of returning NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torchmetrics.image.kid import poly_mmd

from .. import dryrun
from ..errors import PixelforgeError
from .extractor import FeatureExtractor, extract

try:
    from torchmetrics.image.fid import _compute_fid
except ImportError:  # a private torchmetrics helper: keep working if a release drops it
    def _compute_fid(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> Tensor:
        # Tr(sqrt(S1 S2)) is the sum of the square roots of the eigenvalues of S1 S2.
        sqrt_trace = torch.linalg.eigvals(sigma1 @ sigma2).sqrt().real.sum()
        return (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * sqrt_trace

METRICS = ("fid", "kid", "is", "precision", "recall")
"""Metric names accepted by :func:`calculate_metrics`."""

# Blocks of pairwise distances hold at most this many entries (64 MiB in float32),
# so precision/recall on 10k x 10k samples never needs the full 10k x 10k matrix.
DISTANCE_BLOCK = 1 << 24


def _as_matrix(x, what: str, metric: str, min_samples: int, dtype: torch.dtype | None = None) -> Tensor:
    """``x`` as a finite 2-D (samples, dims) CPU tensor with at least ``min_samples`` rows.

    Without ``dtype`` float64 input stays float64 and everything else becomes float32.
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise PixelforgeError(f"{what} must be a tensor or numpy array, got {type(x).__name__}")
    if x.dim() != 2:
        raise PixelforgeError(f"{what} must be 2-D (samples, dims), got shape {tuple(x.shape)}")
    if len(x) < min_samples:
        raise PixelforgeError(f"{metric} needs at least {min_samples} samples, got {len(x)} {what}")
    x = x.detach().cpu().to(dtype or (torch.float64 if x.dtype == torch.float64 else torch.float32))
    if not torch.isfinite(x).all():
        raise PixelforgeError(f"{what} contain NaN or infinite values")
    return x


def _feature_pair(real, fake, metric: str, min_samples: int, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    real = _as_matrix(real, "real features", metric, min_samples, dtype)
    fake = _as_matrix(fake, "fake features", metric, min_samples, dtype)
    if real.shape[1] != fake.shape[1]:
        raise PixelforgeError(f"real and fake features differ in size: {real.shape[1]} vs {fake.shape[1]}")
    dtype = torch.promote_types(real.dtype, fake.dtype)
    return real.to(dtype), fake.to(dtype)


def _mean_and_covariance(x: Tensor) -> tuple[Tensor, Tensor]:
    mean = x.mean(dim=0)
    centred = x - mean
    return mean, centred.T @ centred / (len(x) - 1)


def fid_from_features(real: Tensor | np.ndarray, fake: Tensor | np.ndarray) -> float:
    """Fréchet Inception Distance between two feature sets (Heusel et al. 2017); lower is better.

    Fits a Gaussian to each set and returns the Fréchet distance between them,
    ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))``, in float64 with
    unbiased covariances, using torchmetrics' eigenvalue-based closed form.
    One number for both fidelity and diversity.

    Pitfalls: FID is biased upwards for small sample counts (compare only
    values computed with the same N; 10k-50k is customary, and below the feature
    dimension the covariances are singular); it depends entirely on the
    extractor; and a Gaussian is a coarse summary of the feature distribution.
    Needs at least 2 samples per set.
    """
    real, fake = _feature_pair(real, fake, "FID", 2, torch.float64)
    value = float(_compute_fid(*_mean_and_covariance(real), *_mean_and_covariance(fake)))
    # The exact distance is >= 0; rounding leaves about -1e-12 for identical sets.
    return max(value, 0.0)


def kid_from_features(real: Tensor | np.ndarray, fake: Tensor | np.ndarray, subsets: int = 100,
                      subset_size: int = 1000, degree: int = 3, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): ``(mean, std)`` over random subsets; lower is better.

    The squared maximum mean discrepancy between the sets under the polynomial
    kernel ``k(x, y) = (x.y / dims + 1) ** degree``, with the unbiased estimator
    (torchmetrics' ``poly_mmd``), averaged over ``subsets`` pairs of random
    subsets of ``subset_size`` samples each (clipped to the smaller set),
    drawn reproducibly from ``seed``.

    Unlike FID it is unbiased, so values from different sample counts are
    comparable and small sets are usable; the price is variance, reported as
    the std over subsets. Being unbiased, it can come out slightly negative for
    matching distributions. Depends on the extractor like FID. Needs at least
    2 samples per set.
    """
    if subsets < 1:
        raise PixelforgeError(f"KID needs at least 1 subset, got subsets={subsets}")
    if subset_size < 2:
        raise PixelforgeError(f"KID needs subset_size >= 2, got {subset_size}")
    real, fake = _feature_pair(real, fake, "KID", 2)
    size = min(subset_size, len(real), len(fake))
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        real_subset = real[torch.randperm(len(real), generator=generator)[:size]]
        fake_subset = fake[torch.randperm(len(fake), generator=generator)[:size]]
        scores.append(poly_mmd(real_subset, fake_subset, degree=degree))
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(unbiased=False))


def inception_score_from_logits(logits: Tensor | np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016): ``(mean, std)`` over ``splits``; higher is better.

    ``exp(E_x KL(p(y|x) || p(y)))`` from classifier logits of generated images,
    computed per split of consecutive samples: high when each image gets a
    confident class and the classes are spread evenly. It ranges from 1 to the
    number of classes.

    Pitfalls: it ignores the real data entirely (a model that produces one
    perfect image per class scores the maximum), it only means something for
    images resembling the classifier's training domain, and it depends on the
    split size. Needs at least ``splits`` samples.

    Written here rather than through torchmetrics' ``InceptionScore`` class,
    which shuffles with the global RNG (irreproducible), may form fewer splits
    than asked (``torch.chunk``) and takes the log of a marginal that can
    underflow to 0; this version is deterministic and works in log space.
    """
    if splits < 1:
        raise PixelforgeError(f"the Inception Score needs at least 1 split, got splits={splits}")
    logits = _as_matrix(logits, "logits", f"the Inception Score with {splits} splits", splits, torch.float64)
    if logits.shape[1] < 2:
        raise PixelforgeError(f"the Inception Score needs logits for at least 2 classes, got {logits.shape[1]}")
    log_probs = torch.log_softmax(logits, dim=1)
    scores = []
    for part in torch.tensor_split(log_probs, splits):
        log_marginal = torch.logsumexp(part, dim=0) - math.log(len(part))
        kl = (part.exp() * (part - log_marginal)).sum(dim=1).mean()
        scores.append(kl.exp())
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(unbiased=False))


def _knn_radii(points: Tensor, k: int) -> Tensor:
    """Distance from every point to its k-th nearest neighbour among the other points."""
    radii = torch.empty(len(points), dtype=points.dtype)
    step = max(1, DISTANCE_BLOCK // len(points))
    for start in range(0, len(points), step):
        distances = torch.cdist(points[start:start + step], points)
        # k + 1: each point is its own nearest neighbour, at distance 0.
        radii[start:start + step] = distances.kthvalue(k + 1, dim=1).values
    return radii


def _coverage(manifold: Tensor, points: Tensor, k: int) -> float:
    """Fraction of ``points`` inside the k-NN manifold of ``manifold`` (within some sample's radius)."""
    radii = _knn_radii(manifold, k)
    inside = 0
    step = max(1, DISTANCE_BLOCK // len(manifold))
    for start in range(0, len(points), step):
        distances = torch.cdist(points[start:start + step], manifold)
        inside += int((distances <= radii).any(dim=1).sum())
    return inside / len(points)


def _pr_inputs(real, fake, k: int) -> tuple[Tensor, Tensor]:
    if k < 1:
        raise PixelforgeError(f"precision/recall needs k >= 1, got k={k}")
    return _feature_pair(real, fake, f"precision/recall with k={k}", k + 1)


def precision_recall_from_features(real: Tensor | np.ndarray, fake: Tensor | np.ndarray,
                                   k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): ``(precision, recall)`` in [0, 1].

    Each set spans a "manifold": the union of balls around its samples, each
    with the radius to that sample's k-th nearest neighbour. Precision is the
    fraction of fake samples inside the real manifold (fidelity: do the
    samples look real?); recall is the fraction of real samples inside the fake
    manifold (diversity: is all of the real data covered?). Reporting both
    separates blurry-but-varied models from sharp-but-mode-collapsed ones,
    which FID mixes into one number.

    Pitfalls: outliers inflate a manifold (a stray fake sample with a large
    radius raises recall), values depend on k and on the sample counts, and on
    the extractor. Distances are computed in blocks, so 10k x 10k sets fit in
    memory. Needs more than k samples per set.
    """
    real, fake = _pr_inputs(real, fake, k)
    return _coverage(real, fake, k), _coverage(fake, real, k)


def _requested(metrics) -> list[str]:
    if isinstance(metrics, str):
        metrics = [metrics]
    names = [str(name).lower() for name in metrics]
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise PixelforgeError(f"unknown metric(s) {', '.join(map(repr, unknown))}; valid names: {', '.join(METRICS)}")
    if not names:
        raise PixelforgeError(f"no metrics requested; valid names: {', '.join(METRICS)}")
    return [name for name in METRICS if name in names]


def _check_count(images, what: str, needed: int, requested: list[str]) -> None:
    """Fail before the (slow) extraction when a tensor set is already known to be too small."""
    if isinstance(images, (Tensor, np.ndarray)) and len(images) < needed:
        raise PixelforgeError(f"{len(images)} {what} images are too few for {', '.join(requested)}: "
                              f"at least {needed} needed")


def calculate_metrics(real, fake, extractor: FeatureExtractor, metrics=METRICS, batch_size: int = 256,
                      kid_subset_size: int = 1000, pr_k: int = 3, progress: bool = False, *,
                      is_splits: int = 10) -> dict:
    """Compute several metrics between real and generated images, extracting features once per set.

    ``real`` and ``fake`` are what :func:`~pixelforge.metrics.extractor.extract`
    accepts: (N, C, H, W) tensors (uint8 0..255 or float 0..1, quantised to 8 bits
    like the uint8 ones before the extractor sees them) or iterables of batches. ``metrics`` is any subset of :data:`METRICS`. Returns a dict with
    the requested entries among ``fid``, ``kid_mean``, ``kid_std``, ``is_mean``,
    ``is_std`` (on the fake set only), ``precision``, ``recall``, plus
    ``n_real``, ``n_fake`` and ``extractor`` (its name).
    """
    requested = _requested(metrics)
    if not isinstance(extractor, FeatureExtractor):
        raise PixelforgeError(f"extractor must implement FeatureExtractor (name, feature_dim, features(), "
                              f"logits()), got {type(extractor).__name__}")
    uses_pr = "precision" in requested or "recall" in requested
    pair_minimum = max(2 if {"fid", "kid"} & set(requested) else 0, pr_k + 1 if uses_pr else 0)
    _check_count(real, "real", pair_minimum, requested)
    _check_count(fake, "fake", max(pair_minimum, is_splits if "is" in requested else 0), requested)
    if dryrun.active():  # fast mode: the first few hundred images of each tensor set (see pixelforge.dryrun)
        real, fake = (x[:dryrun.cap(len(x), "samples")] if isinstance(x, (Tensor, np.ndarray)) else x
                      for x in (real, fake))

    real_features, _ = extract(extractor, real, batch_size, progress, with_logits=False)
    fake_features, fake_logits = extract(extractor, fake, batch_size, progress, with_logits="is" in requested)

    results: dict = {}
    if "fid" in requested:
        results["fid"] = fid_from_features(real_features, fake_features)
    if "kid" in requested:
        results["kid_mean"], results["kid_std"] = kid_from_features(real_features, fake_features,
                                                                    subset_size=kid_subset_size)
    if "is" in requested:
        results["is_mean"], results["is_std"] = inception_score_from_logits(fake_logits, splits=is_splits)
    if uses_pr:
        real_pr, fake_pr = _pr_inputs(real_features, fake_features, pr_k)
        if "precision" in requested:
            results["precision"] = _coverage(real_pr, fake_pr, pr_k)
        if "recall" in requested:
            results["recall"] = _coverage(fake_pr, real_pr, pr_k)
    results.update(n_real=len(real_features), n_fake=len(fake_features), extractor=extractor.name)
    return results
