"""Memory-format helpers: gradients come back in the activations' format, values unchanged."""

import pytest
import torch
from torch import nn

from pixelforge.models.gan import GANConfig, Discriminator, Generator
from pixelforge.nn import GroupNorm, grad_like_input, like_weights
from pixelforge.nn.memory_format import ReflectionPad2d, is_channels_last, reflection_pad_channels_last
from pixelforge.runtime import cpu_supports_bf16, make_optimizer

CL = torch.channels_last


def test_grad_like_input_gives_back_a_channels_last_gradient():
    x = torch.randn(2, 3, 4, 5).contiguous(memory_format=CL).requires_grad_()
    y = grad_like_input(x)
    assert torch.equal(y, x)
    (y.flatten(1) * torch.arange(60.0)).sum().backward()  # flatten hands back an NCHW gradient...
    assert is_channels_last(x.grad)  # ... which the helper turned round
    assert torch.equal(x.grad.flatten(1), torch.arange(60.0).expand(2, -1))
    nchw = torch.randn(2, 3, 4, 5, requires_grad=True)
    assert grad_like_input(nchw) is nchw  # nothing to do


def test_like_weights_follows_the_convolution():
    conv = nn.Conv2d(3, 4, 3)
    x = torch.randn(2, 3, 8, 8)
    assert like_weights(x, conv) is x
    conv.to(memory_format=CL)
    assert is_channels_last(like_weights(x, conv))


def test_gan_gradients_unchanged_by_the_format_fixes():
    """The discriminator and generator give the same gradients in channels_last as in NCHW."""
    cfg = GANConfig(num_classes=3)
    grads = []
    for fmt in (torch.contiguous_format, CL):
        torch.manual_seed(0)
        G, D = Generator(cfg).to(memory_format=fmt), Discriminator(cfg).to(memory_format=fmt)
        z, y = torch.randn(4, cfg.latent_dim), torch.tensor([0, 1, 2, 0])
        D(G(z, y), y).sum().backward()
        grads.append([p.grad.clone() for p in [*G.parameters(), *D.parameters()]])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # summation order differs


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bf16")
def test_group_norm_under_autocast_returns_the_input_precision_and_format():
    gn = GroupNorm(4, 8)
    x = torch.randn(2, 8, 6, 6, dtype=torch.bfloat16).contiguous(memory_format=CL).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = gn(x)
    assert y.dtype == torch.bfloat16 and is_channels_last(y)
    y.float().square().sum().backward()
    assert is_channels_last(x.grad)
    ref = nn.functional.group_norm(x.detach().float(), 4, gn.weight, gn.bias, gn.eps)
    torch.testing.assert_close(y.float(), ref, atol=0.02, rtol=0.01)


def test_make_optimizer_uses_the_fused_kernel_and_falls_back():
    p = nn.Parameter(torch.randn(10))
    adam = make_optimizer(torch.optim.Adam, [p], lr=1e-3)
    assert adam.defaults["fused"] is True
    lbfgs = make_optimizer(torch.optim.LBFGS, [p], lr=1.0)
    assert isinstance(lbfgs, torch.optim.LBFGS)
    # The fused step is the same update as the reference one.
    q = nn.Parameter(p.detach().clone())
    ref = torch.optim.Adam([q], lr=1e-3, foreach=False)
    for opt, param in ((adam, p), (ref, q)):
        param.grad = torch.linspace(-1, 1, 10)
        opt.step()
    torch.testing.assert_close(p, q)


@pytest.mark.parametrize("shape, pad", [((2, 5, 9, 11), 1), ((1, 3, 6, 4), 2), ((1, 8, 7, 9), 3), ((1, 2, 2, 2), 1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_channels_last_reflection_padding_is_torchs(shape, pad, dtype):
    x = torch.randn(shape).to(dtype).contiguous(memory_format=CL)
    expected = nn.functional.pad(x, (pad,) * 4, mode="reflect")
    padded = reflection_pad_channels_last(x, pad)
    assert torch.equal(padded, expected) and is_channels_last(padded)
    with torch.no_grad():
        assert torch.equal(ReflectionPad2d(pad)(x), expected)


def test_reflection_pad_module_trains_through_torchs_own():
    x = torch.randn(1, 3, 6, 6).contiguous(memory_format=CL).requires_grad_()
    ReflectionPad2d(2)(x).square().sum().backward()
    reference = x.detach().clone().requires_grad_()
    nn.ReflectionPad2d(2)(reference).square().sum().backward()
    assert torch.equal(x.grad, reference.grad)
