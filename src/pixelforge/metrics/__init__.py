"""Evaluation metrics for generated and reconstructed images.

Sample-based metrics compare a generated set with a real one through a feature
extractor (:class:`FeatureExtractor`, e.g. :class:`InceptionV3FID` from
:func:`load_inception`):

* FID (:func:`fid_from_features`): Gaussian distance; biased with small N.
* KID (:func:`kid_from_features`): unbiased kernel MMD, usable on small sets.
* Inception Score (:func:`inception_score_from_logits`): confident, varied
  classes; ignores the real data.
* Precision / recall (:func:`precision_recall_from_features`): fidelity and
  diversity, separately.

:func:`calculate_metrics` extracts features once per set and computes any of
them. Per-image full-reference metrics (:func:`psnr`, :func:`ssim`) compare each
output with its own target.
"""

from .extractor import FeatureExtractor, extract
from .fidelity import (
    METRICS,
    calculate_metrics,
    fid_from_features,
    inception_score_from_logits,
    kid_from_features,
    precision_recall_from_features,
)
from .image_quality import psnr, ssim
from .inception import InceptionV3FID, load_inception

__all__ = [
    "METRICS", "FeatureExtractor", "InceptionV3FID", "calculate_metrics", "extract", "fid_from_features",
    "inception_score_from_logits", "kid_from_features", "load_inception", "precision_recall_from_features",
    "psnr", "ssim",
]
