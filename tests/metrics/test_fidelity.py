"""FID, KID, Inception Score, precision/recall and calculate_metrics on fixed inputs."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn
from torchmetrics.image.inception import InceptionScore

from pixelforge.errors import PixelforgeError
from pixelforge.metrics import (
    METRICS,
    calculate_metrics,
    extract,
    fid_from_features,
    inception_score_from_logits,
    kid_from_features,
    precision_recall_from_features,
)
from pixelforge.metrics import fidelity


def _gaussian(rng, n, dim, shift, scale):
    return rng.normal(size=(n, dim)) @ (scale * rng.normal(size=(dim, dim))) + shift


def _reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The closed form with scipy's matrix square root, independent of torch."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def _one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


# FID

def test_fid_matches_the_scipy_closed_form():
    rng = np.random.default_rng(0)
    real = _gaussian(rng, 200, 16, shift=0.0, scale=1.0)
    fake = _gaussian(rng, 300, 16, shift=0.7, scale=0.6)

    expected = _reference_fid(real, fake)
    assert expected > 1
    assert fid_from_features(real, fake) == pytest.approx(expected, rel=1e-6)
    assert fid_from_features(torch.from_numpy(real).float(), torch.from_numpy(fake).float()) == pytest.approx(
        expected, rel=1e-4)  # float32 input, float64 math


def test_fid_of_a_set_with_itself_is_zero():
    features = _gaussian(np.random.default_rng(1), 200, 16, shift=0.3, scale=1.0)
    assert abs(fid_from_features(features, features)) < 1e-6


def test_fid_refuses_mismatched_feature_sizes():
    with pytest.raises(PixelforgeError, match="differ in size"):
        fid_from_features(np.zeros((5, 4)), np.zeros((5, 3)))


# KID

def test_kid_is_near_zero_for_one_distribution_and_positive_for_shifted_ones():
    rng = np.random.default_rng(2)
    real, same = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))

    mean, std = kid_from_features(real, same, subsets=50, subset_size=200)
    assert std > 0 and abs(mean) < 3 * std

    shifted_mean, shifted_std = kid_from_features(real, same + 1.0, subsets=50, subset_size=200)
    assert shifted_mean > 0.1 and shifted_mean > 10 * shifted_std


def test_kid_is_reproducible_and_clips_the_subset_size():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(30, 4)), rng.normal(size=(20, 4)) + 0.5
    first = kid_from_features(real, fake, subsets=10, subset_size=1000, seed=7)
    assert first == kid_from_features(real, fake, subsets=10, subset_size=1000, seed=7)
    assert all(math.isfinite(v) for v in first)


# Inception Score

def test_inception_score_of_confident_evenly_spread_predictions_is_the_class_count():
    labels = torch.arange(1000) % 10
    logits = 30.0 * nn.functional.one_hot(labels, 10).double()
    mean, std = inception_score_from_logits(logits, splits=10)
    assert mean == pytest.approx(10, rel=1e-6) and std == pytest.approx(0, abs=1e-6)


def test_inception_score_of_identical_predictions_is_one():
    logits = torch.randn(1, 10).repeat(100, 1)
    mean, std = inception_score_from_logits(logits, splits=5)
    assert mean == pytest.approx(1, abs=1e-9) and std == pytest.approx(0, abs=1e-9)


@pytest.mark.filterwarnings("ignore::UserWarning")  # its memory notice and the std of a single split
def test_inception_score_agrees_with_torchmetrics():
    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(4)) * 3
    metric = InceptionScore(feature=nn.Identity(), splits=1)  # one split: its shuffling does not matter
    metric.update(logits.double())
    expected = float(metric.compute()[0])
    assert inception_score_from_logits(logits, splits=1)[0] == pytest.approx(expected, rel=1e-6)


def test_inception_score_never_underflows_to_nan():
    # Probabilities of exp(-1000) underflow to 0 even in float64.
    logits = torch.tensor([[1000.0, 0.0], [0.0, 1000.0]] * 5)
    mean, std = inception_score_from_logits(logits, splits=5)
    assert mean == pytest.approx(2) and std == pytest.approx(0)


# precision / recall

def test_precision_recall_of_identical_sets_is_one():
    features = torch.randn(200, 8, generator=torch.Generator().manual_seed(5))
    assert precision_recall_from_features(features, features.clone()) == (1.0, 1.0)


def test_precision_is_zero_for_a_fake_set_far_from_the_real_one():
    real = torch.randn(100, 8, generator=torch.Generator().manual_seed(6))
    precision, recall = precision_recall_from_features(real, real + 100)
    assert precision == 0.0 and recall == 0.0


def test_mode_collapse_keeps_precision_and_loses_recall():
    generator = torch.Generator().manual_seed(7)
    centres = 20 * torch.randn(5, 8, generator=generator)
    real = torch.cat([c + torch.randn(60, 8, generator=generator) for c in centres])
    fake = real[:60]  # one of the five clusters
    precision, recall = precision_recall_from_features(real, fake, k=3)
    assert precision > 0.95 and recall < 0.3


def test_precision_recall_do_not_depend_on_the_block_size(monkeypatch):
    generator = torch.Generator().manual_seed(8)
    real, fake = torch.randn(150, 6, generator=generator), torch.randn(120, 6, generator=generator) + 0.5
    whole = precision_recall_from_features(real, fake, k=5)
    monkeypatch.setattr(fidelity, "DISTANCE_BLOCK", 500)  # a few rows per block
    assert precision_recall_from_features(real, fake, k=5) == whole
    assert 0 < whole[0] < 1 and 0 < whole[1] < 1


# too few samples: a clear error, never NaN

@pytest.mark.parametrize("compute, pattern", [
    (lambda: fid_from_features(np.ones((1, 4)), np.ones((5, 4))), "FID needs at least 2"),
    (lambda: kid_from_features(np.ones((5, 4)), np.ones((1, 4))), "KID needs at least 2"),
    (lambda: inception_score_from_logits(torch.randn(5, 10), splits=10), "at least 10 samples"),
    (lambda: precision_recall_from_features(torch.randn(3, 4), torch.randn(9, 4), k=3), "at least 4 samples"),
    (lambda: fid_from_features(np.full((3, 2), np.nan), np.ones((3, 2))), "NaN"),
])
def test_too_few_or_bad_samples_raise_one_line_errors(compute, pattern):
    with pytest.raises(PixelforgeError, match=pattern) as excinfo:
        compute()
    _one_line_error(excinfo)


# calculate_metrics and extract

def test_calculate_metrics_returns_every_entry(tiny_extractor):
    real = torch.rand(40, 1, 12, 12, generator=torch.Generator().manual_seed(9))
    fake = torch.randint(0, 256, (30, 3, 12, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(10))

    results = calculate_metrics(real, fake, tiny_extractor, batch_size=16, kid_subset_size=20)

    assert set(results) == {"fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall",
                            "n_real", "n_fake", "extractor"}
    assert results["n_real"] == 40 and results["n_fake"] == 30 and results["extractor"] == "tiny-test-cnn"
    assert all(math.isfinite(results[key]) for key in results if key not in ("extractor",))
    assert results["fid"] > 0 and 1 <= results["is_mean"] <= 5


def test_calculate_metrics_computes_only_what_is_asked(tiny_extractor):
    images = torch.rand(12, 3, 8, 8, generator=torch.Generator().manual_seed(11))
    results = calculate_metrics(images, images, tiny_extractor, metrics=["fid", "recall"])
    assert set(results) == {"fid", "recall", "n_real", "n_fake", "extractor"}
    assert results["fid"] < 1e-6 and results["recall"] == 1.0


def test_calculate_metrics_in_fast_mode_uses_the_first_few_hundred_images(tiny_extractor, monkeypatch):
    from pixelforge import dryrun

    real = torch.rand(300, 1, 8, 8, generator=torch.Generator().manual_seed(13))
    monkeypatch.setenv(dryrun.VARIABLE, "1")
    results = calculate_metrics(real, real[:200], tiny_extractor, metrics=["fid", "precision"])
    n = dryrun.LIMITS["samples"]
    assert results["n_real"] == n and results["n_fake"] == n and results["fid"] < 1e-6  # the same first n
    with pytest.raises(PixelforgeError, match="4 fake images are too few"):  # still checked as in a real run
        calculate_metrics(real, real[:4], tiny_extractor, metrics=("is",))


def test_calculate_metrics_rejects_unknown_names_and_small_sets(tiny_extractor):
    images = torch.rand(4, 1, 8, 8)
    with pytest.raises(PixelforgeError, match="unknown metric.*'fdi'.*valid names: " + ", ".join(METRICS)):
        calculate_metrics(images, images, tiny_extractor, metrics=("fdi",))
    with pytest.raises(PixelforgeError, match="4 fake images are too few") as excinfo:
        calculate_metrics(images, images, tiny_extractor, metrics=("is",))
    _one_line_error(excinfo)


def test_extract_accepts_uint8_floats_and_batches_of_pairs(tiny_extractor):
    images = torch.randint(0, 256, (10, 1, 9, 9), dtype=torch.uint8, generator=torch.Generator().manual_seed(12))
    features, logits = extract(tiny_extractor, images, batch_size=3)
    assert features.shape == (10, 8) and logits.shape == (10, 5) and features.dtype == torch.float32

    as_floats = images.float() / 255
    loader = [(as_floats[:4], torch.zeros(4)), (as_floats[4:], torch.zeros(6))]
    batched_features, batched_logits = extract(tiny_extractor, loader, batch_size=5)
    torch.testing.assert_close(batched_features, features)
    torch.testing.assert_close(batched_logits, logits)


def test_generated_images_are_quantised_to_8_bits_like_real_ones(tiny_extractor):
    """Float samples reach the judge on the 8-bit grid real images live on: round(x * 255) / 255,
    so a metric never rewards a precision no real (or saved) image has."""
    seen = []

    class Recording:
        name, feature_dim = "recording", 8

        def features(self, images):
            seen.append(images.clone())
            return tiny_extractor.features(images)

        def logits(self, images):
            return tiny_extractor.logits(images)

    generator = torch.Generator().manual_seed(3)
    fake = torch.rand(20, 1, 9, 9, generator=generator)
    quantised = (fake * 255).round() / 255
    real = torch.randint(0, 256, (20, 1, 9, 9), dtype=torch.uint8, generator=generator)
    result = calculate_metrics(real, fake, Recording(), metrics=("fid", "kid"), kid_subset_size=10)
    fake_seen = seen[-1]
    assert not torch.equal(fake, quantised) and torch.equal(fake_seen, quantised)
    assert torch.equal(fake_seen * 255, (fake_seen * 255).round())
    assert torch.equal(seen[0], real.float() / 255)
    again = calculate_metrics(real, quantised, Recording(), metrics=("fid", "kid"), kid_subset_size=10)
    assert again["fid"] == result["fid"] and again["kid_mean"] == result["kid_mean"]
    as_uint8 = calculate_metrics(real, (fake * 255).round().to(torch.uint8), Recording(), metrics=("fid",))
    assert as_uint8["fid"] == pytest.approx(result["fid"], rel=1e-6)


@pytest.mark.parametrize("images, pattern", [
    (torch.rand(2, 4, 8, 8), "1 or 3 channels"),
    (torch.rand(2, 8, 8, 3), "channels-last"),
    (torch.rand(3, 8, 8), r"\(N, C, H, W\).*images\[None\]"),
    (torch.rand(2, 1, 8, 8) * 2 - 1, r"\[0, 1\].*\(x \+ 1\) / 2"),
    (torch.zeros(2, 1, 8, 8, dtype=torch.int64), "uint8.*or float"),
    (torch.full((2, 1, 8, 8), float("nan")), "NaN"),
    ([["not", "images"]], "batches of image tensors"),
])
def test_extract_refuses_images_it_cannot_convert(tiny_extractor, images, pattern):
    with pytest.raises(PixelforgeError, match=pattern) as excinfo:
        extract(tiny_extractor, images)
    _one_line_error(excinfo)
