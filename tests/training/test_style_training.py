"""The style-transfer training tasks' losses (the CLI runs are in tests/test_stylizer_cli.py)."""

import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.models.style import colour_loss
from pixelforge.registry import create_model
from pixelforge.runtime import Runtime
from pixelforge.training.style import StylizerTask, StylizerTrainConfig


def test_colour_weight_pulls_the_stylizer_to_the_styles_palette():
    """With only the colour term, a few steps move the network's output histogram to the style's."""
    torch.manual_seed(0)
    style = torch.stack([torch.full((32, 32), 0.8), torch.rand(32, 32) * 0.3, torch.full((32, 32), 0.2)])
    cfg = StylizerTrainConfig(crop=32, content_weight=0, style_weight=0, tv_weight=0, colour_weight=1, lr=1e-2)
    net = create_model("johnson", widths=(4, 8, 8), blocks=1, outer_kernel=3)
    task = StylizerTask(net, cfg, Runtime.create("cpu", "fp32", seed=0), style)
    task.progress = 0.5  # past the warm-up
    photos = torch.rand(4, 3, 40, 40) * 2 - 1

    def distance() -> float:
        with torch.no_grad():
            return float(colour_loss(net(photos[:, :, :32, :32] / 2 + 0.5), style[None]))

    before = distance()
    records = [task.step(photos, None) for _ in range(40)]
    assert {"content", "style", "tv", "colour", "loss"} <= records[-1].keys()
    assert distance() < 0.5 * before


def test_content_layer_chooses_where_the_content_loss_compares():
    """``content_layer`` moves the content term to another backbone layer; an unknown one is refused."""
    torch.manual_seed(0)
    style = torch.rand(3, 32, 32)
    net = create_model("johnson", widths=(4, 8, 8), blocks=1, outer_kernel=3)
    rt = Runtime.create("cpu", "fp32", seed=0)
    photo, output = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    default = StylizerTask(net, StylizerTrainConfig(crop=32), rt, style)
    finer = StylizerTask(net, StylizerTrainConfig(crop=32, content_layer="r2"), rt, style)
    assert (default.content_layer, finer.content_layer) == ("r3", "r2")
    target = finer.backbone(photo, ["r2"])["r2"]
    expected = (finer.backbone(output, ["r2"])["r2"] - target).pow(2).mean() / target.pow(2).mean()
    assert torch.allclose(finer.losses(photo, output)["content"], expected, rtol=1e-4)
    assert not torch.allclose(default.losses(photo, output)["content"], expected, rtol=1e-2)
    with pytest.raises(PixelforgeError, match="no layer 'r9'"):
        StylizerTask(net, StylizerTrainConfig(crop=32, content_layer="r9"), rt, style)


def test_adain_decoder_trains_on_the_chosen_feature_transform(monkeypatch):
    """``train_transform`` picks what makes the decoder's input during training (AdaIN by default); an
    unknown one is refused."""
    import pixelforge.training.style as style_training
    from pixelforge.training.style import AdaINTask, AdaINTrainConfig

    used = []
    for name in ("adain", "wct"):
        original = style_training.FEATURE_TRANSFORMS[name]
        monkeypatch.setitem(style_training.FEATURE_TRANSFORMS, name,
                            lambda c, s, name=name, original=original: used.append(name) or original(c, s))
    torch.manual_seed(0)
    styles = (torch.rand(2, 3, 40, 40) * 255).to(torch.uint8)
    photos = torch.rand(2, 3, 40, 40) * 2 - 1
    for transform in ("adain", "wct"):
        task = AdaINTask(create_model("adain", widths=(8, 8)), AdaINTrainConfig(crop=32, train_transform=transform),
                         Runtime.create("cpu", "fp32", seed=0), styles)
        record = task.step(photos, None)
        assert used[-1] == transform and all(torch.isfinite(torch.tensor(v)) for v in record.values())
    assert AdaINTrainConfig().train_transform == "adain"
    with pytest.raises(PixelforgeError, match="feature transform"):
        AdaINTrainConfig(train_transform="whiten")


def test_adain_refine_decoder_learns_to_reconstruct_in_the_same_steps():
    """With a refine layer the task also trains the refiner, on reconstruction alone (L_r); the record
    logs it, and both decoders move."""
    from pixelforge.training.style import AdaINTask, AdaINTrainConfig

    torch.manual_seed(0)
    net = create_model("adain", widths=(8, 8), refine="r2")
    styles = (torch.rand(2, 3, 40, 40) * 255).to(torch.uint8)
    photos = torch.rand(2, 3, 40, 40) * 2 - 1
    task = AdaINTask(net, AdaINTrainConfig(crop=32), Runtime.create("cpu", "fp32", seed=0), styles)
    before = {k: v.clone() for k, v in net.state_dict().items() if k.startswith(("decoder", "refiner"))}
    records = [task.step(photos, None) for _ in range(3)]
    assert all(r["loss"] > r["reconstruction"] > 0 for r in records)
    after = net.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
    # the term is the refiner's alone: it gives the main decoder no gradient
    net.zero_grad()
    crops = torch.rand(2, 3, 32, 32)
    task.reconstruction_term(net, crops, net.encode(crops, ["r2"])["r2"]).backward()
    assert all(p.grad is None for p in net.decoder.parameters())
    assert all(p.grad is not None for p in net.refiner.parameters())


def test_style_jitter_changes_palettes_and_scales_but_keeps_luma_and_shapes():
    """``style_jitter``: each style crop's chroma is rotated and scaled and its contrast changed about the
    same mean brightness; 0 leaves the crops as they are; the strength is a fraction."""
    from pixelforge.colour import rgb_to_ycbcr
    from pixelforge.training.style import AdaINTask, AdaINTrainConfig, jitter_styles

    torch.manual_seed(0)
    images = 0.3 + 0.4 * torch.rand(6, 3, 16, 16)  # mid-range: no clipping
    assert torch.allclose(jitter_styles(images, 0.0), images, atol=1e-5)
    jittered = jitter_styles(images, 1.0)
    before, after = rgb_to_ycbcr(images), rgb_to_ycbcr(jittered)
    assert torch.allclose(before[:, 0].mean((1, 2)), after[:, 0].mean((1, 2)), atol=0.02)
    chroma_ratio = (after[:, 1:] - 0.5).norm(dim=1).mean((1, 2)) / (before[:, 1:] - 0.5).norm(dim=1).mean((1, 2))
    assert ((chroma_ratio > 0.55) & (chroma_ratio < 1.8)).all()
    hue_shift = torch.atan2(after[:, 2] - 0.5, after[:, 1] - 0.5) - torch.atan2(before[:, 2] - 0.5, before[:, 1] - 0.5)
    assert hue_shift.cos().mean((1, 2)).std() > 0.1  # the images got different rotations
    styles = (torch.rand(3, 3, 64, 64) * 255).to(torch.uint8)
    task = AdaINTask(create_model("adain", widths=(8, 8)), AdaINTrainConfig(crop=32, style_jitter=1.0),
                     Runtime.create("cpu", "fp32", seed=0), styles)
    crops = task.style_crops(torch.tensor([0, 1, 2, 0]))
    assert crops.shape == (4, 3, 32, 32) and 0 <= crops.min() and crops.max() <= 1
    assert all(torch.isfinite(torch.tensor(v)) for v in task.step(torch.rand(2, 3, 40, 40) * 2 - 1, None).values())
    with pytest.raises(PixelforgeError, match="between 0 and 1"):
        AdaINTrainConfig(style_jitter=1.5)


def test_adain_training_moves_the_style_film_with_the_decoder():
    """With ``style_film`` the task trains the FiLM layers (they start at zero) together with the decoder."""
    from pixelforge.training.style import AdaINTask, AdaINTrainConfig

    torch.manual_seed(0)
    net = create_model("adain", widths=(8, 8), style_film=True)
    styles = (torch.rand(2, 3, 40, 40) * 255).to(torch.uint8)
    photos = torch.rand(2, 3, 40, 40) * 2 - 1
    task = AdaINTask(net, AdaINTrainConfig(crop=32), Runtime.create("cpu", "fp32", seed=0), styles)
    assert all(not p.any() for p in net.film.parameters())
    records = [task.step(photos, None) for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records)
    assert all(p.abs().sum() > 0 for p in net.film.parameters())


def test_adain_correlation_weight_adds_the_channel_correlation_loss():
    """``correlation_weight`` adds rho times the style layers' channel-correlation distance to the step's
    loss (logged as ``correlation``); 0, the default, leaves the paper's loss; a negative weight is refused."""
    from pixelforge.models.style import channel_correlations
    from pixelforge.training.style import AdaINTask, AdaINTrainConfig

    styles = (torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
    photos = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(2)) * 2 - 1
    records = {}
    for weight in (0.0, 5.0):
        torch.manual_seed(0)  # the same decoder and the same crops for both
        task = AdaINTask(create_model("adain", widths=(8, 8)), AdaINTrainConfig(crop=32, correlation_weight=weight),
                         Runtime.create("cpu", "fp32", seed=0), styles)
        records[weight] = task.step(photos, None)
    plain, weighted = records[0.0], records[5.0]
    assert "correlation" not in plain and weighted["correlation"] > 0
    assert weighted["loss"] == pytest.approx(plain["loss"] + 5.0 * weighted["correlation"], rel=1e-5)
    assert AdaINTrainConfig().correlation_weight == 0
    with pytest.raises(PixelforgeError, match="correlation weight"):
        AdaINTrainConfig(correlation_weight=-1)
    # the matrices it compares: ones on the diagonal, symmetric, blind to each channel's scale and offset
    features = torch.randn(2, 4, 6, 5)
    r = channel_correlations(features)
    torch.testing.assert_close(r.diagonal(dim1=1, dim2=2), torch.ones(2, 4), atol=1e-4, rtol=0)
    torch.testing.assert_close(r, r.transpose(1, 2))
    rescaled = features * torch.tensor([3.0, 0.5, 2.0, 7.0]).view(1, 4, 1, 1) + 4
    torch.testing.assert_close(channel_correlations(rescaled), r, atol=1e-4, rtol=0)
