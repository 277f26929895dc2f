"""The overfitted codec: its rate model, the exact fixed-point decoder, the wavefront order,
the parameter codes, real round trips in every image mode, bit-exact decoding in another
process with another thread count, and the refusals of damaged or forged files."""

import hashlib
import math
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import pixelforge
from pixelforge.errors import PixelforgeError
from pixelforge.models.overfit_codec import (ACT_BITS, CONTEXT, LATENT_MAX, MU_BITS, ContextModel, OverfitCodec,
                                             OverfitConfig, coder_scale, fixed_arm, gather_context, laplace_bits,
                                             pmf_table, quantize_net, soft_round, upsample)
from pixelforge.pipelines import overfit_bitstream as bs
from pixelforge.pipelines.overfit_codec import QUALITY_LAMBDAS, Effort, OverfitCodecPipeline, fit

TINY = Effort(25)


def _photo(h=24, w=40, mode="RGB", seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx / w, yy / h, 0.5 + 0.4 * np.sin(xx / 3)], -1) + rng.normal(0, 0.02, (h, w, 3))
    image = Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8))
    if mode in ("LA", "RGBA"):
        image = image.convert(mode[:-1])
        image.putalpha(Image.fromarray((xx * 255 // max(1, w - 1)).astype(np.uint8)))
        return image
    return image.convert(mode)


@pytest.fixture(scope="module")
def codec():
    return OverfitCodecPipeline(effort="fast")


@pytest.fixture(scope="module")
def encoded(codec):
    image = _photo()
    return image, codec.encode(image, 3, TINY)


# -- the rate model -----------------------------------------------------------------------------------

@pytest.mark.parametrize("mu, scale", [(0.0, 0.3), (0.3, 1.0), (-2.7, 4.0), (5.5, 20.0)])
def test_laplace_bins_sum_to_one(mu, scale):
    y = torch.arange(-200.0, 201.0)
    p = torch.pow(2.0, -laplace_bits(y.double(), torch.tensor(mu, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64)))
    floor = 2.0 ** -16  # the rate model's floor, which keeps every bin codable
    assert 1 - 1e-6 < p.sum().item() <= 1 + len(y) * floor
    assert abs(p.clamp_min(floor).sum().item() - p.sum().item()) < 1e-12
    if mu == 0.0:  # the central bin of a Laplace: 1 - exp(-1 / (2 b))
        assert abs(p[200].item() - (1 - math.exp(-0.5 / scale))) < 1e-9


def test_the_integer_table_follows_the_laplace_masses():
    table, crc = pmf_table()
    assert table.dtype == np.int64 and table.min() >= 1 and crc == pmf_table()[1]
    f, s = 5, 24  # mean 5/16, scale exp(-3 + 3)
    row = table[f, s] / table[f, s].sum()
    d = torch.arange(-2 * LATENT_MAX, 2 * LATENT_MAX + 1).double()
    exact = torch.pow(2.0, -laplace_bits(d, torch.tensor(f / 2 ** MU_BITS).double(),
                                         coder_scale(torch.tensor(0.0)).double()))
    assert np.abs(row - exact.numpy()).max() < 1e-4


def test_rate_falls_as_the_context_predicts_better():
    """A context model that predicts each latent from its left neighbour codes a smooth grid
    in fewer bits than one that knows nothing."""
    grid = torch.arange(12.0).repeat(12, 1)  # each value = its left neighbour + 1
    arm = ContextModel(4, 1)
    with torch.no_grad():
        blind = laplace_bits(grid.flatten(), *_mu_scale(arm, grid)).sum()
        arm.layers[0].weight.zero_()
        arm.layers[0].weight[0, 0] = 1.0  # hidden 0 = left neighbour (non-negative here)
        arm.layers[0].bias.fill_(1.0)
        arm.layers[1].weight.zero_()
        arm.layers[1].weight[0, 0] = 1.0  # mu = left + 1
        arm.layers[1].bias.copy_(torch.tensor([0.0, -2.0]))
        informed = laplace_bits(grid[:, 1:].flatten(), *_mu_scale(arm, grid, drop_first_column=True)).sum()
    assert informed < 0.2 * blind


def _mu_scale(arm, grid, drop_first_column=False):
    mu, log_scale = arm(gather_context([grid]))
    if drop_first_column:
        mu, log_scale = mu.reshape(grid.shape)[:, 1:].flatten(), log_scale.reshape(grid.shape)[:, 1:].flatten()
    return mu, coder_scale(log_scale)


def test_soft_rounding_runs_from_the_identity_to_rounding():
    y = torch.linspace(-3, 3, 601, dtype=torch.float64)
    assert torch.allclose(soft_round(y, 50.0), y, atol=1e-4)
    away_from_halves = (y - torch.floor(y) - 0.5).abs() > 0.05
    assert torch.allclose(soft_round(y, 0.01)[away_from_halves], torch.round(y)[away_from_halves], atol=1e-3)
    fixed = torch.tensor([-2.0, -1.5, 0.0, 0.5, 1.0], dtype=torch.float64)
    assert torch.allclose(soft_round(fixed, 0.3), fixed)
    assert (soft_round(y, 0.3).diff() > 0).all()


def test_the_hand_written_backwards_are_the_true_gradients():
    """gather_context and the float upsampler carry their own backward passes (for speed)."""
    torch.manual_seed(0)
    for shapes in ([(7, 11), (4, 6), (2, 3)], [(3, 1), (2, 1), (1, 1)], [(1, 5), (1, 3)]):
        grids = [torch.randn(s, dtype=torch.float64, requires_grad=True) for s in shapes]
        assert torch.autograd.gradcheck(lambda *g: gather_context(list(g), torch.float64), tuple(grids))
        assert torch.autograd.gradcheck(lambda *g: upsample(list(g)), tuple(grids))


def test_the_bf16_context_buffer_holds_the_same_neighbours():
    grids = [torch.randint(-20, 21, s).float() for s in [(9, 13), (5, 7)]]
    assert torch.equal(gather_context(grids, torch.bfloat16).float(), gather_context(grids))


def _reference_up2(x, dim):
    """The decoder's x2 step written plainly, one output at a time: output 2i is
    sum_k EVEN[k] x[i - 2 + k], output 2i + 1 is sum_k ODD[k] x[i - 1 + k], indices clamped
    to the edges, each floored after dividing by 128."""
    even, odd = (-3, 29, 111, -9), (-9, 111, 29, -3)
    x = x.movedim(dim, -1)
    n = x.shape[-1]
    out = torch.empty(*x.shape[:-1], 2 * n, dtype=x.dtype)
    for i in range(n):
        out[..., 2 * i] = sum(even[k] * x[..., min(max(i - 2 + k, 0), n - 1)] for k in range(4))
        out[..., 2 * i + 1] = sum(odd[k] * x[..., min(max(i - 1 + k, 0), n - 1)] for k in range(4))
    return torch.floor(out / 128).movedim(-1, dim)


@pytest.mark.parametrize("shape", [(13, 21), (1, 9), (6, 1), (3, 2)])
def test_the_decoders_upsampler_is_the_plain_definition(shape):
    """Files decode to what the format defines: rows first, then columns, a floor after each."""
    torch.manual_seed(0)
    h, w = shape
    grids = [torch.randint(-9, 10, (-(-h // 2 ** k), -(-w // 2 ** k))).double() * 2 ** ACT_BITS for k in range(4)]
    feat = grids[-1][None]
    for grid in reversed(grids[:-1]):
        feat = _reference_up2(_reference_up2(feat, 1), 2)[:, :grid.shape[0], :grid.shape[1]]
        feat = torch.cat([feat, grid[None]], 0)
    assert torch.equal(upsample(grids, exact=True), feat)


# -- the exact decoder path ----------------------------------------------------------------------------

def test_exact_upsampling_stays_within_a_step_of_the_float_one():
    torch.manual_seed(0)
    grids = [torch.randint(-5, 6, s).double() for s in [(13, 21), (7, 11), (4, 6), (2, 3)]]
    exact = upsample([g * 2 ** ACT_BITS for g in grids], exact=True)
    smooth = upsample(grids)
    assert torch.equal(exact, exact.floor())
    assert (exact / 2 ** ACT_BITS - smooth).abs().max() < 4 / 2 ** ACT_BITS
    assert exact.shape == (4, 13, 21)


def test_the_fixed_point_context_model_matches_the_float_one():
    torch.manual_seed(0)
    arm = ContextModel(16, 2)
    for layer in arm.layers:
        torch.nn.init.normal_(layer.weight, 0, 0.3)
    ctx = torch.randint(-6, 7, (500, len(CONTEXT))).float()
    mu, log_scale = arm(ctx.T)
    mu16, s = fixed_arm(quantize_net(arm, 12, 0), ctx.numpy().astype(np.int64))
    assert np.abs(mu16 / 2 ** MU_BITS - mu.detach().clamp(-LATENT_MAX, LATENT_MAX).numpy()).max() < 0.1
    expected = np.clip(np.round((log_scale.detach().numpy() + 3) * 8), 0, 63)
    assert np.mean(s == expected) > 0.95


def test_the_wavefront_decodes_every_context_before_its_latent():
    wave = bs.Wavefront(19, 27, 4)
    step_of = np.full(wave.buffer_size, -1)
    for t in range(len(wave.steps) - 1):
        step_of[wave.pos[wave.steps[t]:wave.steps[t + 1]]] = t
    assert len(wave) == sum(h * w for h, w in wave.shapes) and (step_of[wave.pos] >= 0).all()
    ctx_steps = step_of[wave.contexts(np.arange(wave.buffer_size), 0, len(wave))]
    own = step_of[wave.pos][:, None]
    assert ((ctx_steps == -1) | (ctx_steps < own)).all()  # padding, or decoded in an earlier step


@given(st.lists(st.integers(-3000, 3000), min_size=1, max_size=60))
def test_parameter_codes_round_trip(values):
    tensors = [np.array(values, dtype=np.int64), np.array(values[::-1], dtype=np.int64).reshape(-1, 1)]
    data = bs.encode_params(tensors)
    back = bs.decode_params(data, [t.shape for t in tensors])
    assert all(np.array_equal(a, b) for a, b in zip(tensors, back))


# -- fitting and real files --------------------------------------------------------------------------

def test_fitting_lowers_the_loss_and_quality_buys_bits():
    x = torch.from_numpy(np.asarray(_photo()).copy()).permute(2, 0, 1)[None].float() / 255
    psnrs, rates = [], []
    for lmbda in (0.0005, 0.02):
        model = fit(x, lmbda, Effort(60))
        with torch.no_grad():
            x_hat, bits = model("hard")
        psnrs.append(-10 * math.log10(torch.mean((x_hat - x) ** 2).item()))
        rates.append(bits.item())
    assert psnrs[1] > psnrs[0] + 2 and rates[1] > rates[0]
    assert psnrs[1] > 20


def test_round_trip_gives_the_encoders_pixels_and_its_rate(codec, encoded):
    image, result = encoded
    decoded = codec.decompress(result.data)
    assert decoded.size == image.size and decoded.mode == "RGB"
    mse = np.mean((np.asarray(decoded, dtype=float) - np.asarray(image, dtype=float)) ** 2)
    assert abs(10 * math.log10(255 ** 2 / mse) - result.psnr) < 1e-6
    assert result.bpp == 8 * len(result.data) / (image.width * image.height)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
def test_every_image_mode_comes_back_in_its_mode(codec, mode):
    image = _photo(20, 17, mode)
    out = codec.decompress(codec.compress(image, 2, TINY))
    assert out.mode == mode and out.size == image.size
    if mode.endswith("A"):
        assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(image.getchannel("A")))


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (70, 3)])
def test_any_image_size(codec, size):
    image = _photo(*size)
    assert codec.decompress(codec.compress(image, 1, Effort(5))).size == image.size


def test_bad_settings_are_refused(codec):
    top = len(QUALITY_LAMBDAS)
    with pytest.raises(PixelforgeError, match=f"quality must be 1..{top}"):
        codec.compress(_photo(), top + 1, TINY)
    with pytest.raises(PixelforgeError, match="effort must be one of fast, default, best"):
        codec.compress(_photo(), 2, "hardest")


_DECODE_ELSEWHERE = """
import hashlib, sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
from pixelforge.pipelines import overfit_bitstream as bs
from pixelforge.pipelines.overfit_codec import OverfitCodecPipeline
data = open(sys.argv[1], 'rb').read()
header, params, alpha, words = bs.unpack(data)
arm, synth = bs.decode_networks(header, params)
grids = bs.decode_latents(arm, bs.Wavefront(header.height, header.width, header.cfg.levels), words)
pixels = np.asarray(OverfitCodecPipeline().decompress(data))
print(hashlib.sha256(b''.join(g.tobytes() for g in grids)).hexdigest(), hashlib.sha256(pixels.tobytes()).hexdigest())
"""


def test_decoding_is_bit_exact_in_other_processes_and_thread_counts(encoded, tmp_path):
    _, result = encoded
    pfc = tmp_path / "x.pfc"
    pfc.write_bytes(result.data)
    env = {**os.environ, "PYTHONPATH": str(Path(pixelforge.__file__).parents[1])}
    outputs = {subprocess.run([sys.executable, "-c", _DECODE_ELSEWHERE, str(pfc), str(threads)], env=env,
                              check=True, capture_output=True, text=True).stdout for threads in (1, 2)}
    assert len(outputs) == 1


# -- the container's refusals ------------------------------------------------------------------------

def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _forge(data: bytes, offset: int, fmt: str, value) -> bytes:
    body = bytearray(data[:-4])
    struct.pack_into(fmt, body, offset, value)
    return _with_crc(bytes(body))


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"", "truncated"),
    (lambda d: d[:20], "truncated"),
    (lambda d: d[:-9], "checksum"),
    (lambda d: d + b"\0", "checksum"),
    (lambda d: _forge(d, 5, "<B", 7), "kind 7"),
    (lambda d: _forge(d, 7, "<I", 1_000_000), "MP limit"),  # width: 1,000,000 x 24 px
    (lambda d: _forge(d, 17, "<B", 200), "impossible network sizes"),  # a 200-wide synthesis
    (lambda d: _forge(d, 20, "<B", 99), "impossible header values"),  # weight bits
    (lambda d: _forge(d, 22, "<I", 12345), "other probability tables"),
    (lambda d: _forge(d, 26, "<I", 2 ** 31), "section lengths"),
])
def test_damaged_and_forged_files_are_refused(codec, encoded, mutate, message):
    with pytest.raises(bs.BitstreamError, match=message):
        codec.decompress(mutate(encoded[1].data))


@settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzzed_files_give_a_clear_error_or_an_image(codec, encoded, data):
    """Random flips behind the fixed header (with the checksum recomputed, as a forger would;
    the header's own fields are forged one by one above), truncations and raw bytes: a
    BitstreamError, or an image - never a crash or a hang."""
    original = encoded[1].data
    kind = data.draw(st.sampled_from(["flip", "truncate", "random"]))
    if kind == "flip":
        body = bytearray(original[:-4])
        for _ in range(data.draw(st.integers(1, 6))):
            i = data.draw(st.integers(26, len(body) - 1))
            body[i] ^= 1 << data.draw(st.integers(0, 7))
        blob = _with_crc(bytes(body))
    elif kind == "truncate":
        blob = original[:data.draw(st.integers(0, len(original) - 1))]
    else:
        blob = b"PXFC\x02" + data.draw(st.binary(max_size=200))
    try:
        out = codec.decompress(blob)
    except PixelforgeError:
        return
    assert out.width * out.height <= bs.MAX_PIXELS


def test_file_layout_is_version_2_with_the_overfitted_kind(encoded):
    data = encoded[1].data
    assert data[:4] == b"PXFC" and data[4] == 2 and data[5] == 1
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(encoded[1].data).hexdigest()
