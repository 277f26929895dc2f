"""Autoencoder family: model shapes, the VAE objective, corruptions, the training task."""

import math

import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.models.autoencoder import (AutoencoderConfig, ConvAutoencoder, discretized_logistic_nll,
                                           kl_standard_normal)
from pixelforge.registry import create_model, list_models
from pixelforge.runtime import Runtime
from pixelforge.training.autoencoder import (HOLE_FILL, AutoencoderTask, AutoencoderTrainConfig, Corruption,
                                             center_box_mask, free_form_mask, parse_corruption)


def test_registered():
    assert {"conv-ae", "conv-vae"} <= set(list_models("autoencoder"))
    assert create_model("conv-vae", latent_dim=4, width=4).variational
    assert not create_model("conv-ae", latent_dim=4, width=4).variational


@pytest.mark.parametrize("size", [16, 28, 32, 40, 48, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(size, channels):
    cfg = AutoencoderConfig(image_size=size, channels=channels, latent_dim=5, width=4)
    x = torch.rand(2, channels, size, size) * 2 - 1
    ae = ConvAutoencoder(cfg).eval()
    assert ae.code(x).shape == (2, 5)
    out = ae(x)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    vae = ConvAutoencoder(cfg, variational=True).eval()
    mu, logvar, mean, log_scale = vae(x, None, True)
    assert mu.shape == logvar.shape == (2, 5) and mean.shape == log_scale.shape == x.shape


@pytest.mark.parametrize("size", [16, 28, 32, 64])
@pytest.mark.parametrize("num_classes", [0, 3])
def test_map_code_shapes(size, num_classes):
    """code="map": a latent_dim-channel code at 1/4 of the size, for the AE, the VAE and conditional models."""
    cfg = AutoencoderConfig(image_size=size, latent_dim=3, width=4, code="map", num_classes=num_classes)
    assert cfg.code_shape == (3, size // 4, size // 4) and AutoencoderConfig(latent_dim=3).code_shape == (3,)
    x = torch.rand(2, 1, size, size) * 2 - 1
    y = torch.tensor([0, 2]) if num_classes else None
    ae = ConvAutoencoder(cfg).eval()
    z = ae.code(x, y)
    assert z.shape == (2, *cfg.code_shape)
    assert ae.decode(z, y).shape == x.shape and ae(x, y).shape == x.shape
    vae = ConvAutoencoder(cfg, variational=True).eval()
    mu, logvar, mean, log_scale = vae(x, y, True)
    assert mu.shape == logvar.shape == (2, *cfg.code_shape) and mean.shape == x.shape
    assert kl_standard_normal(mu, logvar).shape == (2,)  # summed over the whole map


def test_map_code_is_spatial():
    """A change in one corner of the image changes the code map only within its receptive field (the map keeps where)."""
    torch.manual_seed(0)
    ae = ConvAutoencoder(AutoencoderConfig(latent_dim=4, width=4, code="map")).eval()
    x = torch.zeros(1, 1, 28, 28)
    x2 = x.clone()
    x2[..., :4, :4] = 1
    diff = (ae.code(x2) - ae.code(x)).abs().sum(1)[0]  # (7, 7)
    assert diff[:2, :2].sum() > 0 and diff[5:, 5:].sum() == 0  # outside the receptive field


@pytest.mark.parametrize("code", ["vector", "map"])
def test_res_blocks(code):
    """Residual blocks at the deepest level keep the shapes, add parameters, and still pass everything through the
    code: the decoder's output depends on the image only through it."""
    base = AutoencoderConfig(latent_dim=3, width=4, code=code)
    deep = AutoencoderConfig(latent_dim=3, width=4, code=code, res_blocks=2)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    ae, plain = ConvAutoencoder(deep).eval(), ConvAutoencoder(base)
    res_params = 2 * 2 * (2 * (8 * 8 * 9) + 2 * 2 * 8)  # per side: 2 blocks of two 8->8 convs and two batch norms
    assert count(ae) == count(plain) + res_params
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    z = ae.code(x)
    assert z.shape == (2, *deep.code_shape) and ae(x).shape == x.shape
    assert torch.equal(ae(x), ae.decode(z))


def test_conditional_needs_labels():
    cfg = AutoencoderConfig(latent_dim=3, width=4, num_classes=4)
    vae = ConvAutoencoder(cfg, variational=True).eval()
    x = torch.zeros(2, 1, 28, 28)
    with pytest.raises(PixelforgeError, match="class-conditional"):
        vae.code(x)
    with pytest.raises(PixelforgeError, match="0..3"):
        vae.code(x, torch.tensor([0, 4]))
    z = torch.zeros(2, 3)
    # The label changes the decoded image.
    assert not torch.allclose(vae.decode(z, torch.tensor([0, 0])), vae.decode(z, torch.tensor([1, 1])))


@pytest.mark.parametrize("kwargs", [dict(image_size=30), dict(image_size=128), dict(image_size=12),
                                    dict(channels=4), dict(latent_dim=0), dict(code="grid"),
                                    dict(res_blocks=-1)])
def test_bad_config(kwargs):
    with pytest.raises(PixelforgeError):
        AutoencoderConfig(**kwargs)


def test_discretized_logistic_is_a_distribution():
    # Over the 256 levels the probabilities of one sub-pixel sum to 1, for any mean and scale.
    levels = torch.arange(256).float().div(127.5).sub(1).view(256, 1, 1, 1)
    for mean, log_scale in [(0.0, -3.0), (0.9, -5.0), (-1.0, -1.0), (0.3, -6.5)]:
        nll = discretized_logistic_nll(levels, torch.full_like(levels, mean), torch.full_like(levels, log_scale))
        assert torch.exp(-nll).sum().item() == pytest.approx(1.0, abs=2e-3)
    # A sharp distribution on the right level costs almost nothing; on a wrong one, a lot.
    x = torch.full((1, 1, 2, 2), 0.2)
    assert discretized_logistic_nll(x, x, torch.full_like(x, -7.0)).item() < 0.15  # 4 sub-pixels, ~97% mass each
    assert discretized_logistic_nll(x, -x, torch.full_like(x, -7.0)).item() > 100


def test_kl_term():
    mu, logvar = torch.zeros(3, 4), torch.zeros(3, 4)
    assert torch.allclose(kl_standard_normal(mu, logvar), torch.zeros(3))
    mu[0, 0], logvar[1, 1] = 2.0, math.log(4.0)
    kl = kl_standard_normal(mu, logvar)
    assert kl[0].item() == pytest.approx(2.0)  # mu^2 / 2
    assert kl[1].item() == pytest.approx(0.5 * (4 - math.log(4) - 1))


# -- corruptions -----------------------------------------------------------------------------

def test_parse_corruption():
    kinds = parse_corruption("gaussian:0.1-0.5, saltpepper, box:0.25,boxes:2,freeform")
    assert [(k.kind, k.lo, k.hi) for k in kinds] == [("gaussian", 0.1, 0.5), ("saltpepper", 0.1, 0.1),
                                                     ("box", 0.25, 0.25), ("boxes", 2, 2), ("freeform", 3, 3)]
    assert parse_corruption("") == [] and not Corruption(None)
    for bad in ("blur", "gaussian:abc", "gaussian:0.5-0.1", "box:0", "box:2", "saltpepper:1.5"):
        with pytest.raises(PixelforgeError):
            parse_corruption(bad)


def test_gaussian_noise_level():
    x = torch.zeros(64, 1, 28, 28)
    noisy, mask = Corruption("gaussian:0.1")(x, torch.Generator().manual_seed(0))
    assert not mask.any()
    assert (noisy - x).div(2).std().item() == pytest.approx(0.1, rel=0.05)  # sigma in [0, 1] units
    noisy, _ = Corruption("gaussian:0.3")(x, torch.Generator().manual_seed(0))
    assert noisy.min() == -1 and noisy.max() == 1  # clipped to the valid range


def test_salt_and_pepper_fraction():
    x = torch.zeros(32, 1, 28, 28)
    out, _ = Corruption("saltpepper:0.2")(x, torch.Generator().manual_seed(0))
    hit = out != 0
    assert hit.float().mean().item() == pytest.approx(0.2, abs=0.02)
    assert set(out[hit].unique().tolist()) == {-1.0, 1.0}


def test_holes():
    g = torch.Generator().manual_seed(0)
    x = torch.full((16, 1, 28, 28), -1.0)
    out, mask = Corruption("box:0.5")(x, g)
    assert (mask.flatten(1).sum(1) == 14 * 14).all()
    assert torch.equal(out == HOLE_FILL, mask)
    c = center_box_mask(28, 14)
    assert c.sum() == 196 and c[0, 0, 7:21, 7:21].all()
    ff = free_form_mask(8, 28, torch.full((8,), 3.0), g)
    frac = ff.float().flatten(1).mean(1)
    assert (frac > 0.02).all() and (frac < 0.8).all()
    _, mixed = Corruption("boxes:2,freeform:2")(x, g)
    assert mixed.flatten(1).any(1).all()


# -- the task --------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["vector", "map"])
@pytest.mark.parametrize("variational", [False, True])
def test_task_learns_a_batch(variational, code):
    torch.manual_seed(0)
    model = ConvAutoencoder(AutoencoderConfig(latent_dim=8, width=8, code=code), variational)
    task = AutoencoderTask(model, AutoencoderTrainConfig(lr=3e-3), Runtime.create("cpu", "fp32"))
    x = (torch.rand(16, 1, 28, 28) > 0.7).float() * 2 - 1
    first = task.step(x, None)
    for _ in range(40):
        last = task.step(x, None)
    assert last["loss"] < 0.7 * first["loss"]
    if variational:
        assert {"recon", "kl", "bpd"} <= set(last) and last["kl"] >= 0


def test_beta_weights_the_kl_term():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    out = {}
    for beta in (1.0, 5.0):
        torch.manual_seed(0)
        model = ConvAutoencoder(AutoencoderConfig(latent_dim=4, width=4), True)
        task = AutoencoderTask(model, AutoencoderTrainConfig(beta=beta), Runtime.create("cpu", "fp32"))
        torch.manual_seed(1)
        loss, parts = task.losses(task.net, x, x, None)
        out[beta] = (loss.item(), parts["recon"].item(), parts["kl"].item())
    assert out[5.0][0] - out[1.0][0] == pytest.approx(4 * out[1.0][2], rel=1e-3)


def test_bad_train_config():
    for kwargs in (dict(lr=0), dict(beta=-1), dict(corrupt="smudge")):
        with pytest.raises(PixelforgeError):
            AutoencoderTrainConfig(**kwargs)
