"""The learned style-transfer networks: Johnson's transformer net and AdaIN."""

import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.models.style import AdaINConfig, StylizerConfig, adain, channel_stats
from pixelforge.registry import create_model, get_entry


@pytest.mark.parametrize("shuffle", [1, 2])
@pytest.mark.parametrize("h, w", [(37, 53), (16, 16), (21, 8)])
def test_transformer_net_keeps_odd_sizes_and_range(shuffle, h, w):
    net = create_model("johnson", widths=(4, 8, 8), blocks=1, outer_kernel=3, shuffle=shuffle).eval()
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules()) == 2 * 1 + 5  # 3 down, 2 per block, 2 up
    x = torch.rand(2, 3, h, w)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 3, h, w)
    assert y.min() >= 0 and y.max() <= 1


def test_instance_norm_makes_the_stylizer_blind_to_global_contrast():
    torch.manual_seed(0)
    net = create_model("johnson", widths=(4, 8, 8), blocks=1, outer_kernel=3, shuffle=1).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        # (x - 0.5) * 2 + 0.5 doubles the contrast around the network's input offset: the first
        # instance norm removes it (up to its epsilon).
        a, b = net(x), net((x - 0.5) * 2 + 0.5)
    assert (a - b).abs().max() < 1e-3


def test_stylizer_config_refuses_bad_shapes():
    with pytest.raises(PixelforgeError, match="three positive numbers"):
        StylizerConfig(widths=(8, 8))
    with pytest.raises(PixelforgeError, match="shuffle"):
        StylizerConfig(shuffle=3)
    assert get_entry("johnson").family == get_entry("adain").family == "style"


def test_adain_gives_the_content_the_style_statistics():
    torch.manual_seed(0)
    content = torch.randn(2, 5, 9, 7) * 3 + 1
    style = torch.randn(2, 5, 6, 11) * torch.rand(1, 5, 1, 1) * 4 - 2
    out = adain(content, style)
    (om, os_), (sm, ss) = channel_stats(out), channel_stats(style)
    assert torch.allclose(om, sm, atol=1e-4) and torch.allclose(os_, ss, atol=1e-3)
    # The spatial layout is the content's: a per-channel affine map of it.
    flat_c, flat_o = content.flatten(2), out.flatten(2)
    corr = torch.nn.functional.cosine_similarity(flat_c - flat_c.mean(-1, keepdim=True),
                                                 flat_o - flat_o.mean(-1, keepdim=True), dim=-1)
    assert torch.allclose(corr, torch.ones_like(corr), atol=1e-4)


def test_adain_net_alpha_zero_is_the_content_and_alpha_one_the_style_statistics():
    net = create_model("adain", widths=(8, 8)).eval()
    content, style = torch.rand(1, 3, 32, 40), torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        f_c = net.encode(content, [net.cfg.layer])[net.cfg.layer]
        f_s = net.encode(style, [net.cfg.layer])[net.cfg.layer]
        assert torch.allclose(net.target_features(content, style, 0.0), f_c)
        t = net.target_features(content, style, 1.0)
        assert torch.allclose(channel_stats(t)[0], channel_stats(f_s)[0], atol=1e-4)
        half = net.target_features(content, style, 0.5)
        assert torch.allclose(half, 0.5 * t + 0.5 * f_c, atol=1e-5)
        out = net(torch.rand(1, 3, 33, 45), style)
    assert out.shape == (1, 3, 33, 45) and 0 <= out.min() and out.max() <= 1
    assert net.cfg.layer == "r3" and net.style_layers == ("r1", "r2", "r3")


def test_adain_config_layers_for_vgg():
    cfg = AdaINConfig(backbone="vgg16")
    assert cfg.layer == "relu4_1" and cfg.style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    with pytest.raises(PixelforgeError, match="unknown backbone"):
        AdaINConfig(backbone="resnet")


def test_adain_encoder_is_frozen_and_stays_in_eval_mode():
    net = create_model("adain", widths=(8, 8))
    net.train()
    assert not net.encoder.training and net.decoder.training
    assert all(not p.requires_grad for p in net.encoder.parameters())


def test_relative_losses_are_zero_for_the_content_itself_and_grow_with_the_change():
    from pixelforge.pipelines.style import relative_losses

    torch.manual_seed(0)
    content, style = torch.rand(3, 32, 40), torch.rand(3, 32, 32)
    same = relative_losses(content, content, style)
    noisy = relative_losses((content + 0.3 * torch.randn_like(content)).clamp(0, 1), content, style)
    assert same["content"] == 0 and noisy["content"] > 0.01
    assert relative_losses(style, content, style, size=32)["style"] < 1e-6
