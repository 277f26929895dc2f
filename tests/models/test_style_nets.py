"""The learned style-transfer networks: Johnson's transformer net and AdaIN."""

import pytest
import torch
import torch.nn.functional as F

from pixelforge.errors import PixelforgeError
from pixelforge.models.style import AdaINConfig, StylizerConfig, adain, channel_stats, whiten_colour
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


def test_whitening_and_colouring_gives_the_content_the_style_covariance():
    torch.manual_seed(0)
    mix = torch.randn(5, 5)
    content = torch.randn(2, 5, 9, 7) * 3 + 1
    style = torch.einsum("dc,nchw->ndhw", mix, torch.randn(2, 5, 8, 11)) + torch.randn(1, 5, 1, 1)

    out = whiten_colour(content, style)
    assert out.shape == content.shape and out.dtype == torch.float32
    # Mean and whole covariance are the style's (AdaIN matches only the diagonal of the latter).
    assert torch.allclose(channel_stats(out)[0], channel_stats(style)[0], atol=1e-4)
    assert torch.allclose(_covariance(out), _covariance(style), atol=1e-3, rtol=1e-3)
    assert not torch.allclose(_covariance(adain(content, style)), _covariance(style), atol=1e-1)


def test_whitening_of_a_large_or_bf16_map_matches_the_textbook_transform():
    """The one-product form (uncentred second moment, bias) is the centred transform of the docstring,
    in fp32 on a large map and in bf16 (the refine pass's precision) to bf16's rounding."""
    torch.manual_seed(0)
    content = F.interpolate(torch.randn(1, 6, 40, 40), size=(300, 300), mode="bilinear") * 2 + 1
    style = torch.einsum("dc,nchw->ndhw", torch.randn(6, 6), torch.randn(1, 6, 30, 30)) + 3

    def textbook(x, y):  # float64, centred, as in Li et al.
        x, y = x.double().flatten(2), y.double().flatten(2)
        xc, yc = x - x.mean(-1, keepdim=True), y - y.mean(-1, keepdim=True)
        (dx, ex), (dy, ey) = (torch.linalg.eigh(f @ f.transpose(1, 2) / (f.shape[-1] - 1)) for f in (xc, yc))
        whiten = ex @ torch.diag_embed(dx.rsqrt()) @ ex.transpose(1, 2)
        colour = ey @ torch.diag_embed(dy.sqrt()) @ ey.transpose(1, 2)
        return (colour @ whiten @ xc + y.mean(-1, keepdim=True)).view(1, 6, 300, 300)

    expected = textbook(content, style)
    out = whiten_colour(content, style)
    assert out.dtype == torch.float32 and (out.double() - expected).abs().max() < 1e-3 * expected.abs().max()
    half = whiten_colour(content.to(torch.bfloat16).contiguous(memory_format=torch.channels_last), style)
    assert half.dtype == torch.bfloat16 and half.is_contiguous(memory_format=torch.channels_last)
    assert (half.double() - expected).norm() < 0.02 * expected.norm()
    assert (_covariance(out) - _covariance(style)).norm() < 1e-3 * _covariance(style).norm()


def _covariance(f):
    flat = f.double().flatten(2)
    flat = flat - flat.mean(-1, keepdim=True)
    return flat @ flat.transpose(1, 2) / (flat.shape[-1] - 1)


def test_whitening_with_a_relative_floor_leaves_out_the_weak_directions():
    torch.manual_seed(0)
    # content: two strong channels and one of almost no variance (1e-4 of the largest eigenvalue)
    content = torch.randn(1, 3, 16, 16) * torch.tensor([1.0, 0.7, 0.01]).view(1, 3, 1, 1)
    style = torch.randn(1, 3, 16, 16)
    full = whiten_colour(content, style)
    floored = whiten_colour(content, style, relative_floor=1e-3)
    assert torch.allclose(whiten_colour(content, style, relative_floor=0.0), full)
    # without the weak direction the result has only two dimensions of variance left
    spread = torch.linalg.svdvals((floored - floored.mean((2, 3), keepdim=True)).reshape(3, -1))
    assert spread[-1] < 1e-3 * spread[0] and torch.linalg.svdvals(full.reshape(3, -1))[-1] > 0.1
    with pytest.raises(PixelforgeError, match="wct_floor"):
        AdaINConfig(wct_floor=1.5)
    net = create_model("adain", widths=(8, 8), wct_floor=1e-2).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_adain_net_wct_transform_and_config_check():
    net = create_model("adain", widths=(8, 8), transform="wct").eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 33, 45), torch.rand(1, 3, 48, 48))
    assert out.shape == (1, 3, 33, 45) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(PixelforgeError, match="feature transform"):
        AdaINConfig(transform="whiten")


def test_adain_target_features_are_fp32_under_autocast_and_the_decoder_is_not():
    net = create_model("adain", widths=(8, 8), transform="wct").eval()
    content, style = torch.rand(1, 3, 32, 40), torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        fp32 = net.target_features(content, style)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            island = net.target_features(content, style)
            unstyled = net.target_features(content, style, 0.0)
            decoded = net.decoder(island)
    # the content's features are fp32's exactly; the style's statistics come from bf16 features
    assert unstyled.dtype == torch.float32 and torch.equal(unstyled, net.target_features(content, style, 0.0))
    assert island.dtype == torch.float32 and (island - fp32).norm() < 0.02 * fp32.norm()
    assert decoded.dtype == torch.bfloat16


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
    assert cfg.refine == "" == AdaINConfig().refine  # one pass by default (chosen on validation)
    assert AdaINConfig(refine="auto").refine == "r2" and AdaINConfig(backbone="vgg16", refine="auto").refine == ""
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


@pytest.mark.parametrize("shuffle", [1, 2, 4])
@pytest.mark.parametrize("h, w", [(37, 53), (16, 16)])
def test_adain_decoder_shuffle_keeps_sizes_and_works_below_full_resolution(shuffle, h, w):
    net = create_model("adain", widths=(8, 4), shuffle=shuffle).eval()
    with torch.no_grad():
        y = net(torch.rand(1, 3, h, w), torch.rand(1, 3, 24, 24))
    assert y.shape == (1, 3, h, w) and 0 <= y.min() and y.max() <= 1
    convs = [m for m in net.decoder if isinstance(m, torch.nn.Conv2d)]
    assert convs[-1].out_channels == 3 * shuffle ** 2
    # the convolutions that run at full resolution: the last level's second one and the output's, unless shuffled
    sizes, x = [], torch.rand(1, net.encoder(torch.zeros(1, 3, 32, 32), ["r3"])["r3"].shape[1], 8, 8)
    for module in net.decoder:
        if isinstance(module, torch.nn.Conv2d):
            sizes.append(x.shape[-1] - 2)  # reflection padding of 1 before each 3x3 convolution
        x = module(x)
    assert sizes.count(32) == {1: 2, 2: 0, 4: 0}[shuffle]
    with pytest.raises(PixelforgeError, match="shuffle"):
        AdaINConfig(shuffle=3)


def test_runs_from_before_an_option_rebuild_as_they_were_made():
    from pixelforge.registry import stored_config

    from pixelforge.training.style import StylizerTrainConfig

    cfg = stored_config(AdaINConfig, {"backbone": "offline", "layer": "r3", "widths": [64, 32]})
    assert not cfg.match_colours and AdaINConfig().match_colours  # absent in the run: as it was trained
    assert stored_config(AdaINConfig, {"match_colours": True}).match_colours
    assert cfg.colour_match == "rgb"  # the colour matching runs made before colour_match had
    assert stored_config(StylizerTrainConfig, {"style": "s.png"}).colour_weight == 0 < StylizerTrainConfig().colour_weight


def test_offline_backbone_fused_stem_is_the_three_convolutions():
    """One 7x7 convolution with the per-channel scale folded in = the three stem convolutions, concatenated,
    rectified and scaled; and the Gram matrix of channels_last features = that of contiguous ones."""
    import torch.nn.functional as F

    from pixelforge.models.style import RandomFeatures, gram_matrix

    net = RandomFeatures(seed=3)
    x = (torch.rand(2, 3, 20, 28) - net.mean) / net.std
    reference = F.relu(torch.cat([conv(x) for conv in net.stem], dim=1)) * net.scale0
    fused = F.relu(F.conv2d(x, *net._stem_kernel(), padding=3))
    torch.testing.assert_close(fused, reference, atol=1e-5, rtol=1e-5)
    net.channels_last = True  # as AdaIN's encoder runs it
    features = net(torch.rand(2, 3, 20, 28), ["r2"])["r2"]
    assert features.stride(1) == 1
    torch.testing.assert_close(gram_matrix(features), gram_matrix(features.contiguous()), atol=1e-5, rtol=1e-5)


def test_colour_loss_sees_the_histogram_not_the_layout():
    from pixelforge.models.style import colour_loss

    torch.manual_seed(0)
    image = torch.rand(1, 3, 24, 24)
    shuffled = image.reshape(1, 3, -1)[:, :, torch.randperm(24 * 24)].reshape(1, 3, 24, 24)
    assert colour_loss(shuffled, image) < 1e-6  # same pixels, other places
    assert colour_loss(image, image[:, :, :12]) < 0.05  # another pixel count: quantiles of the reference
    warmer = (image + torch.tensor([0.2, 0.0, -0.2]).view(1, 3, 1, 1)).clamp(0, 1)
    assert colour_loss(warmer, image) > 0.05
    moving = image.clone().requires_grad_()
    colour_loss(moving, warmer).backward()
    assert moving.grad[:, 0].mean() < 0 < moving.grad[:, 2].mean()  # descent makes red up, blue down


def test_adain_match_colours_gives_the_output_the_styles_pixel_statistics():
    torch.manual_seed(0)
    content = torch.rand(1, 3, 32, 32)
    style = 0.5 + 0.1 * torch.randn(1, 3, 40, 40) + torch.tensor([0.2, 0.0, -0.2]).view(1, 3, 1, 1)
    matched = create_model("adain", widths=(8, 4), match_colours=True, colour_match="rgb").eval()
    for module in matched.decoder:  # a decoder whose output varies (a fresh one's is nearly flat)
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data.normal_(0, 0.3)
    plain = create_model("adain", widths=(8, 4), match_colours=False).eval()
    plain.load_state_dict(matched.state_dict())
    with torch.no_grad():
        out, raw = matched(content, style, 1.0), plain(content, style, 1.0)
        half = matched(content, style, 0.5)
    out_mean, out_std = channel_stats(out)
    style_mean, style_std = channel_stats(style)
    torch.testing.assert_close(out_mean, style_mean, atol=1e-2, rtol=0)
    torch.testing.assert_close(out_std, style_std, atol=1e-2, rtol=0)
    # alpha blends the pixel statistics as it blends the features
    assert channel_stats(half)[0][0, 0] < out_mean[0, 0] and channel_stats(half)[0][0, 2] > out_mean[0, 2]
    assert not torch.allclose(out, raw)


def test_adain_refine_pass_restyles_at_a_shallower_layer_with_a_reconstruction_decoder():
    """``refine``: the decoded image is encoded again at the refine layer, transformed with the style's
    statistics there and turned back into pixels by the refiner, whose convolutions all run below full
    resolution; without it the net is the one-pass model (no refiner weights, so older runs load)."""
    torch.manual_seed(0)
    net = create_model("adain", widths=(8, 8), refine="r2", refine_alpha=1.0, transform="adain", border=0).eval()
    one_pass = create_model("adain", widths=(8, 8), transform="adain", border=0, refine="").eval()
    assert one_pass.refiner is None and not any(k.startswith("refiner") for k in one_pass.state_dict())
    one_pass.decoder.load_state_dict(net.decoder.state_dict())
    content, style = torch.rand(1, 3, 33, 45), torch.rand(1, 3, 48, 48)
    seen = []
    net.refiner.register_forward_hook(lambda module, args, out: seen.append((args[0], out.shape)))
    with torch.no_grad():
        out, first = net(content, style), one_pass(content, style)
        # what the refiner was given: the first pass's image at r2, with the style's r2 mean and spread
        f_s = net.encode(style, ["r2"])["r2"]
        code = net.style_code(net.encode(style))  # what the decoder's FiLM is given
        t = net._transformed(net.decode(net.target_features(F.pad(content, (0, 3, 0, 3), mode="replicate"),
                                                            style), code), f_s, 1.0, "r2")
    assert out.shape == first.shape == (1, 3, 33, 45) and 0 <= out.min() and out.max() <= 1
    assert not torch.allclose(out, first, atol=1e-3)
    assert torch.allclose(seen[0][0], t, atol=1e-5) and seen[0][1] == (1, 3, 36, 48) and t.shape[-2:] == (18, 24)
    assert all(m.stride == (1, 1) for m in net.refiner.modules() if isinstance(m, torch.nn.Conv2d))
    with pytest.raises(PixelforgeError, match="style layer before r3: r1, r2"):
        AdaINConfig(refine="r4")
    # refine_alpha scales the second pass's blend like alpha the whole: 0 gives the refiner the image's own features
    assert AdaINConfig().refine_alpha == 0.5  # the default, chosen on validation
    net.cfg.refine_alpha = 0.0
    with torch.no_grad():
        net(content, style)
        own = net.encode(net.decode(net.target_features(F.pad(content, (0, 3, 0, 3), mode="replicate"), style),
                                    code), ["r2"])["r2"]
    assert torch.allclose(seen[1][0], own, atol=1e-5) and not torch.allclose(seen[1][0], t, atol=1e-3)
    with pytest.raises(PixelforgeError, match="refine_alpha"):
        AdaINConfig(refine_alpha=1.5)
    from pixelforge.registry import stored_config

    assert stored_config(AdaINConfig, {"widths": [8, 8]}).refine == ""
    older = stored_config(AdaINConfig, {"widths": [8, 8], "refine": "r2"})  # a refine run from before the options
    assert (older.refine, older.refine_alpha, older.style_side) == ("r2", 1.0, 128)


def test_adain_refine_pass_encodes_under_autocast_and_whitens_outside_it():
    """Under bf16 autocast the refine pass encodes the first pass's image in bf16 (the main pass's content
    stays fp32) and whitens with fp32 covariances, so its result stays close to the fp32 model's."""
    torch.manual_seed(0)
    net = create_model("adain", widths=(8, 8), refine="r2", transform="wct", wct_floor=1e-3, border=0).eval()
    content, style = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 48, 48)
    given = []
    net.refiner.register_forward_hook(lambda module, args, out: given.append(args[0]))
    with torch.no_grad():
        fp32 = net(content, style)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = net(content, style)
    assert given[0].dtype == torch.float32 and given[1].dtype == torch.bfloat16
    assert (given[1].float() - given[0]).norm() < 0.05 * given[0].norm()
    assert (bf16 - fp32).abs().mean() < 0.02


@pytest.mark.parametrize("h, w", [(37, 53), (16, 16), (12, 40)])
def test_adain_stylises_with_a_mirrored_margin_and_cuts_it_off(h, w):
    """``border``: the content is mirrored outwards by that many pixels (fewer on an image too small to
    mirror them), stylised, and the margin cut off again; 0 is the plain forward pass."""
    from pixelforge.models.style import pad_with_border

    torch.manual_seed(0)
    net = create_model("adain", widths=(8, 4), border=16, transform="adain").eval()
    content, style = torch.rand(1, 3, h, w), torch.rand(1, 3, 24, 24)
    margin = min(16, h - 1, w - 1)
    mirrored = F.pad(content, (margin,) * 4, mode="reflect")
    ph, pw = -mirrored.shape[-2] % net.pad_to, -mirrored.shape[-1] % net.pad_to
    padded, m = pad_with_border(content, 16, net.pad_to)
    assert m == margin and torch.equal(padded, F.pad(mirrored, (0, pw, 0, ph), mode="replicate"))
    with torch.no_grad():
        out = net(content, style)
        assert out.shape == (1, 3, h, w)
        assert torch.allclose(out, net.transfer(padded, style)[..., m:m + h, m:m + w])
        net.cfg.border = 0
        plain = F.pad(content, (0, -w % net.pad_to, 0, -h % net.pad_to), mode="replicate")
        assert torch.allclose(net(content, style), net.transfer(plain, style)[..., :h, :w])
    with pytest.raises(PixelforgeError, match="border"):
        AdaINConfig(border=-1)


def test_the_margin_takes_the_frame_off_the_shipped_adain_model():
    """With no margin the shipped model's first pass draws a frame in a band a few pixels inside the edges of a
    smooth picture (the encoder's zero padding reads the edges as strong features); with the default margin
    the pixels near the edges change no more than the inside does."""
    from pixelforge.pipelines.stylizer import load_shipped_stylizer

    pipe = load_shipped_stylizer("photos-adain-v12", precision="fp32")
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 128), indexing="ij")
    content = torch.stack([0.3 + 0.4 * xx, 0.5 + 0.3 * yy, 0.6 - 0.3 * xx * yy])
    i = torch.arange(64.0)
    style = torch.stack([(torch.sin(i / 3) + 1)[None].expand(64, 64) / 2, torch.full((64, 64), 0.2),
                         (torch.cos(i / 5) + 1)[:, None].expand(64, 64) / 2])

    def edge_to_inside(image, ring=12):  # mean absolute pixel step in the outer band / inside
        dy, dx = (image[:, 1:] - image[:, :-1]).abs().mean(0), (image[:, :, 1:] - image[:, :, :-1]).abs().mean(0)
        edge = torch.cat([dy[:ring].flatten(), dy[-ring:].flatten(), dx[:, :ring].flatten(), dx[:, -ring:].flatten()])
        inside = torch.cat([dy[16:-16, 16:-16].flatten(), dx[16:-16, 16:-16].flatten()])
        return (edge.mean() / inside.mean()).item()

    def ratios():  # without and with the margin
        found = []
        for border in (0, AdaINConfig().border):
            pipe.net.cfg.border = border
            found.append(edge_to_inside(pipe.run_tensor(content, style, 1.0)))
        return found

    assert pipe.net.refiner is None  # one pass, where the frame arises
    framed, clean = ratios()
    assert framed > 1.5 and clean < 1.2, (framed, clean)


def test_adain_at_a_deeper_layer_mirrors_one_more_downsampling():
    """``--layer r4``: AdaIN on the offline encoder's 1/8-resolution features (larger-scale style), decoded
    by one more upsampling level; an unknown layer is a one-line error naming the backbone's layers."""
    net = create_model("adain", layer="r4", widths=(16, 8, 8), transform="adain", border=0).eval()
    assert net.pad_to == 8 and net.style_layers == ("r1", "r2", "r3", "r4")
    upsamplings = [m for m in net.decoder if isinstance(m, torch.nn.Upsample)]
    assert len(upsamplings) == 3
    with torch.no_grad():
        f = net.target_features(torch.rand(1, 3, 40, 48), torch.rand(1, 3, 32, 32))
        y = net(torch.rand(1, 3, 37, 50), torch.rand(1, 3, 32, 32))
    assert f.shape[-2:] == (5, 6) and y.shape == (1, 3, 37, 50)
    with pytest.raises(PixelforgeError, match="no layer 'r9'"):
        create_model("adain", layer="r9")


def test_chroma_colour_match_gives_the_styles_colours_and_keeps_the_contrast():
    """colour_match chroma: in YCbCr every channel's mean is the style's, the chroma's spread the style's too,
    and the luma's spread the picture's own; the model applies it, rgb (per RGB channel) is another output."""
    from pixelforge.colour import YCBCR_MATRIX, match_chroma

    torch.manual_seed(0)
    image = torch.rand(2, 3, 20, 24)
    style = 0.3 + 0.2 * torch.rand(2, 3, 16, 16) + torch.tensor([0.3, 0.0, -0.2]).view(1, 3, 1, 1)

    def ycbcr_stats(x):
        return channel_stats(torch.einsum("ij,njhw->nihw", YCBCR_MATRIX, x))

    (out_mean, out_std), (style_mean, style_std), (_, image_std) = map(ycbcr_stats, (match_chroma(image, style),
                                                                                    style, image))
    torch.testing.assert_close(out_mean, style_mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(out_std[:, 1:], style_std[:, 1:], atol=0, rtol=1e-2)  # eps in both spreads
    torch.testing.assert_close(out_std[:, :1], image_std[:, :1], atol=1e-5, rtol=0)
    assert (out_std[:, 0] - style_std[:, 0]).abs().min() > 0.05  # the style's luma spread was not taken
    for spread in (0.5, 1.0):  # luma_spread moves it part or all of the way, geometrically
        moved = ycbcr_stats(match_chroma(image, style, luma_spread=spread))[1][:, 0]
        torch.testing.assert_close(moved, image_std[:, 0] ** (1 - spread) * style_std[:, 0] ** spread, atol=0, rtol=1e-2)
    # (nearest upsampling: with these random weights the bilinear decoder's output comes out flat)
    chroma = create_model("adain", widths=(8, 4), colour_match="chroma", upsample="nearest").eval()
    for module in chroma.decoder:  # a decoder whose output varies (a fresh one's is nearly flat)
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data.normal_(0, 0.3)
    rgb = create_model("adain", widths=(8, 4), colour_match="rgb", upsample="nearest").eval()
    rgb.load_state_dict(chroma.state_dict())
    with torch.no_grad():
        out_chroma, out_rgb = chroma(image[:1], style[:1], 1.0), rgb(image[:1], style[:1], 1.0)
    torch.testing.assert_close(ycbcr_stats(out_chroma)[0][:, 1:], style_mean[:1, 1:], atol=2e-2, rtol=0)
    assert not torch.allclose(out_chroma, out_rgb, atol=1e-3)
    with pytest.raises(PixelforgeError, match="colour_match"):
        AdaINConfig(colour_match="lab")
    with pytest.raises(PixelforgeError, match="luma_spread"):
        AdaINConfig(luma_spread=1.5)


def test_adain_decoder_upsamples_nearest_or_bilinear_with_the_same_weights():
    nearest = create_model("adain", widths=(8, 4), upsample="nearest").eval()
    bilinear = create_model("adain", widths=(8, 4)).eval()  # the default

    def modes(net):
        return {m.mode for m in net.decoder if isinstance(m, torch.nn.Upsample)}

    assert modes(nearest) == {"nearest"} and modes(bilinear) == {"bilinear"}
    for module in nearest.decoder:  # a decoder whose output varies (a fresh one's is nearly flat)
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data.normal_(0, 0.3)
    bilinear.load_state_dict(nearest.state_dict())  # the same parameters, only the upsampling differs
    image, style = torch.rand(1, 3, 32, 40), torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert not torch.allclose(nearest(image, style, 1.0), bilinear(image, style, 1.0), atol=1e-3)
    assert AdaINConfig.ABSENT_IN_OLDER["upsample"] == "nearest"  # the runs and cards made before the option
    with pytest.raises(PixelforgeError, match="upsample"):
        AdaINConfig(upsample="bicubic")


def test_content_scale_stylises_a_smaller_picture_and_enlarges_it_back():
    import torch.nn.functional as F

    torch.manual_seed(0)
    scaled = create_model("adain", widths=(8, 4), content_scale=0.5).eval()
    for module in scaled.decoder:  # a decoder whose output varies (a fresh one's is nearly flat)
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data.normal_(0, 0.3)
    full = create_model("adain", widths=(8, 4)).eval()
    full.load_state_dict(scaled.state_dict())
    image, style = torch.rand(1, 3, 40, 56), torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        got = scaled(image, style, 1.0)
        small = F.interpolate(image, size=(20, 28), mode="bilinear", antialias=True, align_corners=False)
        expected = F.interpolate(full(small, style, 1.0), size=(40, 56), mode="bilinear", align_corners=False)
    assert got.shape == image.shape
    torch.testing.assert_close(got, expected.clamp(0, 1), atol=1e-6, rtol=0)
    assert AdaINConfig.ABSENT_IN_OLDER["content_scale"] == 1.0 == AdaINConfig().content_scale
    for bad in (0.1, 1.5):
        with pytest.raises(PixelforgeError, match="content scale"):
            AdaINConfig(content_scale=bad)


def test_histogram_colour_match_takes_the_styles_chroma_histogram_and_moves_the_luma_part_way():
    """colour_match histogram: in YCbCr the chroma's whole distribution is the style's; the luma is the
    picture's shifted to the style's mean (luma_spread 0), the style's distribution (1), or half way."""
    from pixelforge.colour import YCBCR_MATRIX, match_chroma_histogram

    torch.manual_seed(0)
    image = torch.rand(1, 3, 40, 48) ** 1.5
    style = (0.3 + 0.4 * torch.rand(1, 3, 30, 30) ** 3 + torch.tensor([0.2, 0.0, -0.2]).view(1, 3, 1, 1)).clamp(0, 1)

    def ycbcr(x):
        return (YCBCR_MATRIX @ x.flatten(2)).float()

    levels = torch.linspace(0.05, 0.95, 19)
    quantiles = lambda x: ycbcr(x).quantile(levels, dim=-1)  # noqa: E731
    kept, full = match_chroma_histogram(image, style), match_chroma_histogram(image, style, luma_spread=1.0)
    torch.testing.assert_close(quantiles(kept)[:, :, 1:], quantiles(style)[:, :, 1:], atol=5e-3, rtol=0)
    torch.testing.assert_close(ycbcr(kept)[:, 0], ycbcr(image)[:, 0] - ycbcr(image)[:, 0].mean() + ycbcr(style)[:, 0].mean(),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(quantiles(full), quantiles(style), atol=5e-3, rtol=0)
    half = match_chroma_histogram(image, style, luma_spread=0.5)
    torch.testing.assert_close(ycbcr(half)[:, 0], (ycbcr(kept)[:, 0] + ycbcr(full)[:, 0]) / 2, atol=1e-5, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # computed in fp32 all the same
        assert match_chroma_histogram(image, style).dtype == torch.float32
    histogram = create_model("adain", widths=(8, 4), colour_match="histogram").eval()
    for module in histogram.decoder:
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data.normal_(0, 0.3)
    chroma = create_model("adain", widths=(8, 4), colour_match="chroma").eval()
    chroma.load_state_dict(histogram.state_dict())
    with torch.no_grad():
        out_histogram, out_chroma = histogram(image, style, 1.0), chroma(image, style, 1.0)
    assert not torch.allclose(out_histogram, out_chroma, atol=1e-3)


def test_style_film_starts_as_the_plain_decoder_and_then_conditions_it_on_the_style():
    """``style_film``: zero-initialised FiLM after each upsampled stage, so a decoder taken from a plain run
    starts unchanged; once trained, the finer stages depend on the style's statistics at every style layer
    (not only the AdaIN layer's), by alpha, and alpha 0 is the plain decoder's picture."""
    torch.manual_seed(0)
    film = create_model("adain", widths=(8, 4)).eval()  # the default
    plain = create_model("adain", widths=(8, 4), style_film=False).eval()
    assert film.film is not None and plain.film is None
    assert plain.style_code(plain.encode(torch.rand(1, 3, 24, 24))) is None  # nothing to condition
    for module in plain.decoder:  # a decoder whose output varies (a fresh one's is nearly flat)
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data.normal_(0, 0.3)
    film.decoder.load_state_dict(plain.decoder.state_dict())
    channels = sum(film.encode(torch.zeros(1, 3, 32, 32))[n].shape[1] for n in film.style_layers)
    assert len(film.film) == 2 and all(m.in_features == 2 * channels for m in film.film.values())
    image, style = torch.rand(1, 3, 32, 40), torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(film(image, style, 1.0), plain(image, style, 1.0))
        for linear in film.film.values():
            linear.weight.data.normal_(0, 0.02)
        assert not torch.allclose(film(image, style, 1.0), plain(image, style, 1.0), atol=1e-3)
        torch.testing.assert_close(film(image, style, 0.0), plain(image, style, 0.0))
        # the code is the style's means and spreads: a style with other fine statistics gives another picture
        # from the same AdaIN-layer features
        t = film.target_features(image, style)
        code = film.style_code(film.encode(style))
        other = film.style_code(film.encode(torch.rand(1, 3, 24, 24) ** 3))
        assert code.shape == (1, 2 * channels)
        assert not torch.allclose(film.decode(t, code), film.decode(t, other), atol=1e-3)
    with pytest.raises(PixelforgeError, match="style code"):
        film.decode(t)
    assert AdaINConfig.ABSENT_IN_OLDER["style_film"] is False
    # a decoder whose every upsampling is the pixel shuffle has no upsampled stage to modulate
    assert create_model("adain", widths=(8, 4), shuffle=4).film is None
