import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.nn import gemm_conv
from pixelforge.nn.gemm_conv import GemmConv2d, GemmConvTranspose2d, col2im, conv_weight_grad, use_gemm_convolutions
from pixelforge.runtime import Runtime

CL = torch.channels_last
GEOMETRIES = [
    ((3, 5, 14, 14), (4, 4), (2, 2), (1, 1)),  # DCGAN's strided 4x4
    ((2, 4, 7, 9), (3, 3), (1, 1), (1, 1)),    # the U-Net's 3x3, a non-square map
    ((2, 1, 28, 28), (4, 4), (2, 2), (1, 1)),  # one input channel
    ((2, 3, 8, 8), (3, 2), (1, 2), (0, 1)),    # uneven kernel, stride and padding
    ((2, 3, 8, 8), (3, 3), (2, 2), (0, 0)),    # the last input row and column reach no output
    ((2, 3, 6, 6), (3, 3), (2, 2), (3, 3)),    # padding wider than the kernel
]


@pytest.mark.parametrize("shape,kernel,stride,padding", GEOMETRIES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_weight_gradient_and_col2im_as_products_match_the_convolutions(shape, kernel, stride, padding, channels_last):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    w = torch.randn(6, shape[1], *kernel, dtype=torch.float64)
    out = F.conv2d(x, w, stride=stride, padding=padding)
    grad_out = torch.randn_like(out)
    expected_x, expected_w, _ = torch.ops.aten.convolution_backward(
        grad_out, x, w, None, list(stride), list(padding), [1, 1], False, [0, 0], 1, [True, True, False])
    if channels_last:
        x, grad_out = x.contiguous(memory_format=CL), grad_out.contiguous(memory_format=CL)
    torch.testing.assert_close(conv_weight_grad(x, grad_out, kernel, stride, padding), expected_w)
    rows = grad_out.permute(0, 2, 3, 1).reshape(-1, 6) @ w.permute(0, 2, 3, 1).reshape(6, -1)
    got_x = col2im(rows, shape[0], out.shape[-2:], kernel, stride, padding, shape[-2:])
    torch.testing.assert_close(got_x, expected_x.float(), check_dtype=False)


def _layers():
    return [(nn.Conv2d(16, 24, 4, 2, 1), (4, 16, 14, 14)),              # 7x7 output: weight gradient as a product
            (nn.Conv2d(16, 24, 4, 2, 1), (4, 16, 8, 6)),                # 4x3 output: everything as products
            (nn.Conv2d(8, 8, 3, 2, 1, bias=False), (4, 8, 9, 7)),
            (nn.ConvTranspose2d(24, 16, 4, 2, 1), (4, 24, 7, 7)),       # 7x7 input: weight gradient
            (nn.ConvTranspose2d(24, 16, 4, 2, 1), (4, 24, 4, 4)),       # 4x4 input: everything
            (nn.ConvTranspose2d(8, 3, 3, 2, 1, output_padding=1), (2, 8, 3, 5)),
            (nn.Conv2d(4, 6, 3, 2, 0), (2, 4, 8, 8)),                   # 3x3 output, input rows no output reaches
            (nn.Conv2d(8, 8, 3, 1, 1, bias=False), (4, 8, 7, 7)),       # stride 1: oneDNN's
            (nn.Conv2d(4, 8, 4, 2, 1), (2, 4, 32, 32))]                 # 16x16 output: oneDNN's


def _expected_path(layer, x_shape, y_shape) -> str:
    positions = (x_shape[-2] * x_shape[-1] if isinstance(layer, nn.ConvTranspose2d)
                 else y_shape[-2] * y_shape[-1])
    if layer.stride == (1, 1) or positions > gemm_conv.WEIGHT_GRAD_POSITIONS:
        return "onednn"
    return "full" if positions <= gemm_conv.FULL_POSITIONS else "weight"


@pytest.mark.parametrize("index", range(len(_layers())))
def test_switched_layers_compute_the_same_outputs_and_gradients_under_bf16_autocast(index, monkeypatch):
    torch.manual_seed(index)
    plain, shape = _layers()[index]
    plain = plain.to(memory_format=CL)
    fast = use_gemm_convolutions(copy.deepcopy(plain))
    assert type(fast) in (GemmConv2d, GemmConvTranspose2d)
    paths = []
    original = gemm_conv._GemmConv.apply
    monkeypatch.setattr(gemm_conv._GemmConv, "apply", lambda *a: paths.append("full" if a[-1] else "weight")
                        or original(*a))
    x = torch.randn(shape).contiguous(memory_format=CL)
    outputs, input_grads = [], []
    for layer in (plain, fast):
        xi = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(xi)
        assert y.dtype == torch.bfloat16
        y.float().square().sum().backward()
        outputs.append(y.float())
        input_grads.append(xi.grad)
    assert (paths or ["onednn"]) == [_expected_path(fast, shape, outputs[0].shape)]
    torch.testing.assert_close(outputs[1], outputs[0], rtol=2e-2, atol=2e-2 * outputs[0].abs().max().item())
    torch.testing.assert_close(input_grads[1], input_grads[0], rtol=2e-2,
                               atol=2e-2 * input_grads[0].abs().max().item())
    for name in ("weight", "bias"):
        if getattr(plain, name) is not None:
            a, b = getattr(plain, name).grad, getattr(fast, name).grad
            torch.testing.assert_close(b, a, rtol=2e-2, atol=2e-2 * a.abs().max().item())


def test_products_are_used_only_while_training_under_cpu_bf16(monkeypatch):
    calls = []
    original = gemm_conv._GemmConv.apply
    monkeypatch.setattr(gemm_conv._GemmConv, "apply", lambda *a: calls.append(1) or original(*a))
    layer = use_gemm_convolutions(nn.Conv2d(4, 4, 4, 2, 1))
    x = torch.randn(2, 4, 8, 8)
    layer(x).sum().backward()  # fp32: the plain layer
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x)
    layer.weight.requires_grad_(False)  # frozen (a GAN's D during the G update): nothing to gain
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x.requires_grad_(True)).float().sum().backward()
    assert not calls
    layer.weight.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x).float().sum().backward()
    assert calls == [1]


def test_gradient_penalties_differentiate_through_the_switched_layers():
    torch.manual_seed(0)
    # 16 -> 8 (weight gradient as a product), 8 -> 4 (all products), then back up: 4 -> 8 (all), 8 -> 16 (weight)
    plain = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 4, 4, 2, 1), nn.LeakyReLU(0.2),
                          nn.ConvTranspose2d(4, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.ConvTranspose2d(4, 2, 4, 2, 1))
    exact = copy.deepcopy(plain).double()
    fast = use_gemm_convolutions(copy.deepcopy(plain))
    x = torch.randn(4, 3, 16, 16)
    for net in (exact, fast):  # R1 as the GAN trainer computes it: under autocast, then backward
        xi = x.clone().to(next(net.parameters()).dtype).requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=net is fast):
            out = net(xi).float().square().sum()
            (grad,) = torch.autograd.grad(out, xi, create_graph=True)
        grad.square().sum().backward()
    # bf16 errors compound through four layers and their second derivatives (plain layers are off by up to
    # 3% on this input, the switched ones by up to 8%); a wrong formula would be off by about 100%
    for a, b in zip(exact.parameters(), fast.parameters()):
        assert b.grad is not None and (b.grad.double() - a.grad).norm() <= 0.15 * a.grad.norm()


def test_switching_keeps_parameters_and_checkpoints():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ConvTranspose2d(4, 2, 4, 2, 1), nn.Linear(3, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    use_gemm_convolutions(model)
    assert [type(m) for m in model] == [GemmConv2d, GemmConvTranspose2d, nn.Linear]
    assert before.keys() == model.state_dict().keys()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_runtime_switches_layers_for_bf16_on_the_cpu_only():
    assert type(Runtime.create("cpu", "bf16").module(nn.Conv2d(1, 1, 3))) is GemmConv2d
    assert type(Runtime.create("cpu", "fp32").module(nn.Conv2d(1, 1, 3))) is nn.Conv2d


@pytest.mark.parametrize("transposed", [False, True])  # both on all-product paths: the output is made there
def test_outputs_can_be_changed_in_place_by_the_next_layer(transposed):
    torch.manual_seed(0)
    layer, shape = ((nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False), (2, 8, 4, 4)) if transposed
                    else (nn.Conv2d(4, 8, 4, 2, 1, bias=False), (2, 4, 8, 8)))
    fast = use_gemm_convolutions(layer)
    in_place = nn.Sequential(fast, nn.ReLU(inplace=True))
    out_of_place = nn.Sequential(copy.deepcopy(fast), nn.ReLU())
    x = torch.randn(shape)
    for net in (in_place, out_of_place):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            net(x).float().sum().backward()
    torch.testing.assert_close(in_place[0].weight.grad, out_of_place[0].weight.grad)


def test_string_padding_and_output_size_work_as_in_torch():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    for plain in (nn.Conv2d(3, 4, 3, 1, padding="same"), nn.Conv2d(3, 4, 4, 2, padding="valid")):
        fast = use_gemm_convolutions(copy.deepcopy(plain))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.testing.assert_close(fast(x).float(), plain(x).float())
    plain = nn.ConvTranspose2d(3, 2, 3, 2, 1)
    fast = use_gemm_convolutions(copy.deepcopy(plain))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fast(x[:, :, :4, :4], output_size=(8, 8))
        torch.testing.assert_close(y.float(), plain(x[:, :, :4, :4], output_size=(8, 8)).float(), rtol=2e-2,
                                   atol=2e-2)
    assert y.shape[-2:] == (8, 8)
