"""Style-transfer backbones and losses: Gram matrices, the offline network, VGG weights over HTTP, colour."""

import hashlib

import numpy as np
import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.models.style import (
    RandomFeatures, VGGFeatures, build_backbone, gram_matrix, load_vgg, style_loss, total_variation,
    vgg_layer_names,
)
from pixelforge.pipelines.style import parse_style_mix, rgb_to_ycbcr, stylize, synthesize_texture, ycbcr_to_rgb

VGG16_UP_TO_RELU4_1 = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


@pytest.fixture(autouse=True)
def _no_user_weights(monkeypatch):
    for variable in ("PIXELFORGE_VGG19_WEIGHTS", "PIXELFORGE_VGG16_WEIGHTS"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture(scope="module")
def offline():
    return RandomFeatures(seed=0)


def _pattern(h=32, w=32, seed=0):
    """A (3, h, w) image: colour gradients, stripes and a disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([xx, yy, 0.5 + 0.4 * np.sin(xx * 25)], 0)
    img[:, (yy - 0.5) ** 2 + (xx - 0.4) ** 2 < 0.05] = rng.random((3, 1))
    return torch.tensor(img, dtype=torch.float32).clamp(0, 1)


def test_gram_matrix_matches_a_hand_computation():
    # Two channels over a 2x2 map: F = [[1, 2, 3, 4], [0, 1, 0, -1]] (rows = channels).
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, -1.0]]]])
    # G = F F^T / (H W): [1+4+9+16, 0+2+0-4; ..., 0+1+0+1] / 4
    expected = torch.tensor([[[30.0, -2.0], [-2.0, 2.0]]]) / 4
    assert torch.allclose(gram_matrix(features), expected)
    # And the style loss is the mean squared Gram difference, weighted per layer.
    target = torch.zeros(1, 2, 2)
    loss = style_loss({"a": features}, {"a": target}, {"a": 0.5})
    assert loss.item() == pytest.approx(0.5 * float((expected ** 2).mean()))


def test_total_variation_of_a_step_edge():
    image = torch.zeros(1, 1, 4, 4)
    image[..., 2:] = 1.0  # one vertical edge: 4 of the 12 horizontal differences are 1
    assert total_variation(image).item() == pytest.approx(4 / 12)


def test_offline_backbone_is_deterministic_multiscale_and_normalised(offline):
    image = _pattern(64, 64)[None]
    feats = offline(image)
    assert [tuple(f.shape[2:]) for f in feats.values()] == [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4)]
    again = RandomFeatures(seed=0)(image)
    assert all(torch.equal(feats[k], again[k]) for k in feats)
    other = RandomFeatures(seed=1)(image)
    assert not torch.allclose(feats["r1"], other["r1"])
    # Calibrated to unit RMS per channel on pink noise: on a natural-ish image every level is O(1).
    for name, f in feats.items():
        rms = f.pow(2).mean().sqrt().item()
        assert 0.1 < rms < 10, (name, rms)
    assert not any(p.requires_grad for p in offline.parameters())
    with pytest.raises(PixelforgeError, match="no layer 'relu1_1'"):
        offline(image, ["relu1_1"])


def test_style_loss_decreases_under_optimisation(offline):
    result = synthesize_texture(_pattern(32, 32), size=32, steps=15, optimizer="adam", backbone=offline,
                                progress=False)
    styles = [h["style"] for h in result.history]
    assert styles[-1] < 0.5 * styles[0]
    assert result.image.shape == (3, 32, 32) and 0 <= result.image.min() and result.image.max() <= 1


def test_lbfgs_stylize_reduces_the_total_loss(offline):
    result = stylize(_pattern(32, 48, seed=1), _pattern(32, 32, seed=2), size=48, steps=10, backbone=offline,
                     progress=False)
    totals = [h["total"] for h in result.history]
    assert min(totals[1:]) < totals[0]
    assert result.image.shape == (3, 32, 48)


def test_lbfgs_keeps_going_when_gradients_are_tiny(offline):
    # Large images give per-pixel gradients below torch's default tolerance_grad (1e-7), which made
    # L-BFGS return without moving; scaling all weights down reproduces that on a small image.
    # One scale, so that the losses are all at the same size (a coarser scale's are not comparable). At such
    # weights the loss wanders from step to step (by how much depends on the CPU's kernels), so the test asks
    # that every step ran and that the optimisation got well below where it started.
    result = stylize(_pattern(32, 32, seed=1), _pattern(32, 32, seed=2), size=32, steps=40, content_weight=1e-6,
                     style_weight=1e-6, tv_weight=1e-6, scales=1, backbone=offline, progress=False)
    style = [entry["style"] for entry in result.history]
    assert len(style) == 40 and min(style) < 0.8 * style[0]


def test_preserve_color_keeps_the_contents_chroma(offline):
    content, style = _pattern(32, 32, seed=3), torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    kept = stylize(content, style, size=32, steps=8, preserve_color=True, backbone=offline, progress=False)
    free = stylize(content, style, size=32, steps=8, backbone=offline, progress=False)

    def chroma_error(image):
        return (rgb_to_ycbcr(image)[1:] - rgb_to_ycbcr(content)[1:]).abs().mean().item()

    # Identical up to the clamp into [0, 1] of colours that leave the RGB cube.
    assert chroma_error(kept.image) < 0.01
    assert chroma_error(free.image) > 3 * chroma_error(kept.image)
    assert (rgb_to_ycbcr(kept.image)[0] - rgb_to_ycbcr(content)[0]).abs().mean() > 1e-3  # the luminance changed


def test_ycbcr_round_trip():
    rgb = torch.rand(3, 8, 8)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-5)


def test_style_mix_weights():
    assert parse_style_mix("3,1", 2) == [0.75, 0.25]
    assert parse_style_mix(None, 4) == [0.25] * 4
    with pytest.raises(PixelforgeError, match="2 weights for 3 style"):
        parse_style_mix("1,1", 3)
    with pytest.raises(PixelforgeError, match="non-negative"):
        parse_style_mix([1, -1], 2)


def test_style_mix_targets_the_mixed_gram_matrix(offline):
    # The mixed objective is minimised by matching the weighted mean of the Gram matrices: a texture made
    # from (a, b) with weights (1, 0) matches a's statistics better than b's.
    a, b = _pattern(32, 32, seed=4), torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(5))
    result = synthesize_texture([a, b], style_mix=[1.0, 0.0], size=32, steps=15, optimizer="adam",
                                backbone=offline, progress=False)
    feats = offline(result.image[None])

    def distance(target):
        t = offline(target[None])
        return sum(((gram_matrix(feats[k]) - gram_matrix(t[k])) ** 2).mean().item() / gram_matrix(t[k]).pow(2).mean().item()
                   for k in feats)

    assert distance(a) < distance(b)


def test_vgg_layer_indices_follow_torchvision():
    vgg19 = dict(vgg_layer_names("vgg19"))
    assert vgg19["relu1_1"] == 1 and vgg19["relu4_2"] == 22 and vgg19["relu5_1"] == 29
    vgg16 = dict(vgg_layer_names("vgg16"))
    assert vgg16["relu4_1"] == 18 and vgg16["relu5_3"] == 29
    net = VGGFeatures("vgg19")
    assert len(net.features) == 30  # built only up to relu5_1, the deepest default layer
    assert net.features[4].__class__.__name__ == "AvgPool2d"


def _serve_vgg16(root, extra_key=True):
    """Save a random VGG-16 state dict truncated after relu4_1 (+ a classifier key) as torchvision names it."""
    state = VGGFeatures("vgg16", layers=VGG16_UP_TO_RELU4_1).state_dict()
    for key, value in state.items():
        value.copy_(torch.randn(value.shape, generator=torch.Generator().manual_seed(len(key))) * 0.01)
    if extra_key:
        state["classifier.0.weight"] = torch.zeros(2, 2)
    path = root / "vgg16-397923af.pth"
    torch.save(state, path)
    return state, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_vgg_weights_download_once_verified_cached_and_loaded(http_server, tmp_path, monkeypatch):
    root, base, requests, _ = http_server
    state, spec = _serve_vgg16(root)
    monkeypatch.setenv("PIXELFORGE_WEIGHTS_MIRROR", base + "/")

    net = load_vgg("vgg16", layers=VGG16_UP_TO_RELU4_1, hash_spec=spec)

    assert requests == ["/vgg16-397923af.pth"]
    cached = tmp_path / "cache" / "weights" / "vgg16-397923af.pth"
    assert cached.is_file()
    assert torch.equal(net.features[17].weight, state["features.17.weight"])  # conv4_1
    assert len(net.features) == 19
    feats = net(torch.rand(1, 3, 32, 32), ["relu2_1", "relu4_1"])
    assert feats["relu4_1"].shape == (1, 512, 4, 4)

    again = load_vgg("vgg16", layers=VGG16_UP_TO_RELU4_1, hash_spec=spec)  # from the cache: no request
    assert requests == ["/vgg16-397923af.pth"]
    assert torch.equal(again.features[0].weight, state["features.0.weight"])

    # The loaded network drives the optimisation like the offline one.
    result = stylize(_pattern(32, 32), _pattern(32, 32, seed=6), size=32, steps=3, optimizer="adam", backbone=net,
                     content_layer="relu3_1", style_layers=VGG16_UP_TO_RELU4_1, progress=False)
    assert result.image.shape == (3, 32, 32)


def test_vgg_hash_prefix_is_checked_and_a_mismatch_leaves_no_file(http_server, tmp_path, monkeypatch):
    root, base, _, _ = http_server
    _, spec = _serve_vgg16(root)
    monkeypatch.setenv("PIXELFORGE_WEIGHTS_MIRROR", base)
    wrong = "sha256:" + ("0" if spec[7] != "0" else "1") + spec[8:22]
    with pytest.raises(PixelforgeError) as info:
        load_vgg("vgg16", layers=VGG16_UP_TO_RELU4_1, hash_spec=wrong)
    message = str(info.value)
    assert "failed verification" in message and "--weights" in message and "PIXELFORGE_VGG16_WEIGHTS" in message
    assert not (tmp_path / "cache" / "weights" / "vgg16-397923af.pth").exists()
    # torch hub's 8-digit prefix convention is accepted.
    net = load_vgg("vgg16", layers=VGG16_UP_TO_RELU4_1, hash_spec=spec[:15])
    assert len(net.features) == 19


def test_vgg_from_a_local_path_and_env_var(tmp_path, monkeypatch):
    state, _ = _serve_vgg16(tmp_path, extra_key=False)
    path = tmp_path / "vgg16-397923af.pth"
    net = load_vgg("vgg16", path, layers=VGG16_UP_TO_RELU4_1, download=False)
    assert torch.equal(net.features[10].bias, state["features.10.bias"])
    monkeypatch.setenv("PIXELFORGE_VGG16_WEIGHTS", str(path))
    assert len(load_vgg("vgg16", layers=VGG16_UP_TO_RELU4_1, download=False).features) == 19
    # A truncated file cannot serve deeper layers; the error names the missing key.
    with pytest.raises(PixelforgeError, match=r"missing keys \(e.g. features.19.weight\)"):
        load_vgg("vgg16", path, layers=("relu5_1",))


def test_vgg_errors_are_one_line_and_say_how_to_provide_the_file(tmp_path):
    with pytest.raises(PixelforgeError) as info:
        load_vgg("vgg19", download=False)
    message = str(info.value)
    assert "\n" not in message
    for hint in ("--weights", "PIXELFORGE_VGG19_WEIGHTS", "vgg19-dcbb9e9d.pth", "download.pytorch.org",
                 "sha256:dcbb9e9d", "PIXELFORGE_WEIGHTS_MIRROR"):
        assert hint in message
    bad = tmp_path / "junk.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(PixelforgeError, match="refusing to load|cannot read vgg19 weights"):
        load_vgg("vgg19", bad)
    with pytest.raises(PixelforgeError, match="unknown backbone 'resnet'"):
        build_backbone("resnet")
    with pytest.raises(PixelforgeError, match="no weights file"):
        build_backbone("offline", weights=bad)


def test_noise_init_starts_away_from_the_content(offline):
    content, style = _pattern(32, 32, seed=7), _pattern(32, 32, seed=8)
    from_noise = stylize(content, style, size=32, steps=2, init="noise", optimizer="adam", backbone=offline,
                         progress=False)
    from_content = stylize(content, style, size=32, steps=2, optimizer="adam", backbone=offline, progress=False)
    assert from_noise.history[0]["content"] > 0.1 and from_content.history[0]["content"] == 0.0
    with pytest.raises(PixelforgeError, match="textures start from noise"):
        stylize(None, style, init="content", size=32, steps=1, backbone=offline, progress=False)
    with pytest.raises(PixelforgeError, match="unknown optimizer"):
        stylize(content, style, optimizer="sgd", size=32, steps=1, backbone=offline, progress=False)


def test_scale_plan_halves_the_image_and_weights_steps_towards_coarse_scales():
    from pixelforge.pipelines.style import scale_plan

    assert scale_plan((300, 400), 70, 3, shortest=16) == [((75, 100), 40), ((150, 200), 20), ((300, 400), 10)]
    assert scale_plan((300, 400), 70, 1, shortest=16) == [((300, 400), 70)]
    # Scales the feature network cannot see are left out, and the coarsest when steps are fewer than scales.
    assert scale_plan((40, 64), 9, 3, shortest=16) == [((20, 32), 6), ((40, 64), 3)]
    assert scale_plan((300, 400), 2, 3, shortest=16) == [((150, 200), 1), ((300, 400), 1)]


def test_coarse_scales_a_style_image_could_not_be_seen_at_are_left_out(offline):
    from pixelforge.pipelines.style import scale_plan

    # A 4:1 style is 16 px tall at 64 px: every coarser scale would shrink it below the 16 px minimum.
    assert scale_plan((64, 64), 9, 3, shortest=16, others=[(16, 64)]) == [((64, 64), 9)]
    result = stylize(_pattern(64, 64, seed=1), _pattern(16, 64, seed=2), size=64, steps=3, scales=3,
                     backbone=offline, progress=False)
    assert result.image.shape == (3, 64, 64) and {h["side"] for h in result.history} == {64}


def test_intermediate_saves_are_at_the_full_size(offline):
    saved = []
    stylize(_pattern(32, 48, seed=1), _pattern(32, 32, seed=2), size=48, steps=6, scales=2, save_every=2,
            on_save=lambda step, r: saved.append((step, tuple(r.image.shape))), backbone=offline, progress=False)
    assert saved == [(2, (3, 32, 48)), (4, (3, 32, 48))]


def test_coarse_to_fine_optimises_every_scale_and_ends_at_full_size(offline):
    result = stylize(_pattern(32, 48, seed=1), _pattern(32, 32, seed=2), size=48, steps=9, scales=2,
                     backbone=offline, progress=False)
    assert result.image.shape == (3, 32, 48)
    assert [h["side"] for h in result.history] == [24] * 6 + [48] * 3
    assert [h["step"] for h in result.history] == list(range(1, 10))


def test_match_colors_takes_the_styles_palette(offline):
    from pixelforge.metrics.style import colour_histogram_distance

    content = _pattern(32, 32, seed=3)
    style = torch.stack([torch.full((32, 32), 0.9), torch.rand(32, 32, generator=torch.Generator().manual_seed(1)) * 0.3,
                         torch.full((32, 32), 0.2)])
    matched = stylize(content, style, size=32, steps=4, match_colors=True, backbone=offline, progress=False)
    plain = stylize(content, style, size=32, steps=4, match_colors=False, backbone=offline, progress=False)
    assert colour_histogram_distance(matched.image, style) < 0.5 * colour_histogram_distance(plain.image, style)
    with pytest.raises(PixelforgeError, match="preserve-color"):
        stylize(content, style, size=32, steps=1, match_colors=True, preserve_color=True, backbone=offline,
                progress=False)


def test_defaults_are_the_ones_chosen_on_validation():
    """stylize's defaults are what `benchmarks/style_transfer.py --tune` chose (its `tune.chosen`)."""
    import inspect
    import json
    from pathlib import Path

    from pixelforge.pipelines import style

    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "style_transfer.json"
    chosen = json.loads(results.read_text())["tune"]["chosen"]
    defaults = {name: p.default for name, p in inspect.signature(stylize).parameters.items()}
    defaults["match_colors"] = style.DEFAULT_MATCH_COLORS
    assert {name: defaults[name] for name in chosen} == chosen


def test_learned_defaults_are_the_ones_chosen_on_validation():
    """The feed-forward and AdaIN training defaults, AdaIN's decoder and colour matching and the side its
    style image is read at are those of the runs `benchmarks/style_transfer.py --tune-learned` chose (AdaIN's
    over its three validation folds of four styles each, ``--validation-styles``, ``--paired-with``, or over
    fewer folds where those are not pooled). AdaIN's mirrored margin is not a choice of the
    measures (they do not see the frame it takes off; test_the_margin_takes_the_frame_off_the_shipped_adain_model)."""
    import dataclasses
    import json
    from pathlib import Path

    from pixelforge.models.style import AdaINConfig
    from pixelforge.training.style import AdaINTrainConfig, StylizerTrainConfig

    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "style_transfer.json"
    results = json.loads(results.read_text())
    tune = results["tune_learned"]
    adain_tune = (results.get("tune_learned_three_folds") or results.get("tune_learned_folds")
                  or results["tune_learned_more_styles"])
    feed_forward = tune["feed-forward"][tune["chosen"]["feed-forward"]["method"]]
    adain = adain_tune["adain"][adain_tune["chosen"]["adain"]["method"]]
    defaults = {f.name: f.default for f in dataclasses.fields(StylizerTrainConfig)}
    for name in ("content_weight", "style_weight", "tv_weight", "colour_weight"):
        assert defaults[name] == feed_forward["task"].get(name, 0.0), name
    assert defaults["content_layer"] == feed_forward["task"].get("content_layer")
    defaults = {f.name: f.default for f in dataclasses.fields(AdaINTrainConfig)}
    for name in ("style_weight", "colour_weight", "style_jitter"):
        assert defaults[name] == adain["task"].get(name, 0.0), name
    model = {f.name: f.default for f in dataclasses.fields(AdaINConfig)}
    assert model["shuffle"] == adain["model"]["shuffle"] and model["match_colours"] == adain["model"]["match_colours"]
    assert model["transform"] == adain["model"].get("transform", "adain")
    assert model["wct_floor"] == adain["model"].get("wct_floor", 0.0)
    assert list(model["widths"]) == adain["model"]["widths"]
    assert model["refine"] == adain["model"].get("refine", "")
    assert model["upsample"] == adain["model"].get("upsample", "nearest")
    assert model["colour_match"] == adain["model"].get("colour_match", "rgb")
    assert model["luma_spread"] == adain["model"].get("luma_spread", 0.0)
    assert model["style_film"] == adain["model"].get("style_film", False)
    assert model["style_side"] == adain["style_side"]
    if adain["model"].get("refine"):  # the refine pass's strength, where the choice has one
        assert model["refine_alpha"] == adain["model"].get("refine_alpha", 1.0)
