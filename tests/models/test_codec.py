"""The codec's pieces: GDN, the learned and Gaussian entropy models, the rate estimate against
the real bitstream, and the .pfc container's refusals (including fuzzed files)."""

import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pixelforge.errors import PixelforgeError
from pixelforge.models.codec import GDN, CodecConfig, FactorizedDensity, ImageCodec, gaussian_likelihood
from pixelforge.pipelines.codec import MAGIC, BitstreamError, CodecPipeline, Header, pack, unpack


def _tiny(prior="hyperprior", seed=0, **kw) -> ImageCodec:
    torch.manual_seed(seed)
    return ImageCodec(CodecConfig(width=12, latent=12, prior=prior, lmbdas=[0.01, 0.05], **kw))


def _image(h=70, w=90, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 5.0)], -1) + rng.normal(0, 0.05, (h, w, 3))
    return Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8))


def test_gdn_divides_by_the_pooled_energy():
    gdn = GDN(3)
    x = torch.randn(2, 3, 5, 5)
    beta = torch.nn.functional.softplus(gdn.beta_raw)
    gamma = torch.nn.functional.softplus(gdn.gamma_raw)
    norm = beta[None, :, None, None] + torch.einsum("ij,bjhw->bihw", gamma, x * x)
    assert torch.allclose(gdn(x), x / norm.sqrt(), atol=1e-5)
    assert torch.allclose(GDN(3, inverse=True)(x), x * norm.sqrt(), atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gdn(x.bfloat16()).dtype == torch.bfloat16


def test_factorized_density_is_a_distribution_over_the_integers():
    torch.manual_seed(0)
    density = FactorizedDensity(4)
    grid = torch.arange(-600, 601, dtype=torch.float32)
    p = density.likelihood(grid.view(1, 1, 1, -1).expand(1, 4, 1, -1).contiguous())
    assert torch.allclose(p.sum(-1), torch.ones(1, 4, 1), atol=1e-4)
    density.update_tables()
    assert density.pmf.dtype == torch.int32 and density.pmf.shape[0] == 4
    assert (density.pmf >= 1).all() and ((density.pmf.sum(1) - (1 << 16)).abs() <= density.pmf.shape[1]).all()
    assert density.pmf.shape[1] == 2 * int(density.offset) + 1


@pytest.mark.parametrize("scale", [0.11, 0.5, 3.0, 40.0])
def test_gaussian_bins_sum_to_one(scale):
    grid = torch.arange(-400, 401, dtype=torch.float32)
    p = gaussian_likelihood(grid, torch.full_like(grid, scale))
    assert abs(p.sum().item() - 1) < 1e-4
    assert p[400] == p.max()  # the zero bin is the most likely


def test_rate_estimate_matches_the_real_bitstream():
    """The entropy model's -log2 p of the rounded latents is what the coder writes (to a few %)."""
    net = _tiny().eval()
    pipe = CodecPipeline(net, net.cfg, "test")
    image = _image(128, 192)
    x = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = pipe._analysis(x, 2)
        y_hat = torch.round(y)
        z_hat = torch.round(net.h_a(y.abs()))
        bits = -torch.log2(gaussian_likelihood(y_hat, net.scales(z_hat))).sum()
        bits += -torch.log2(net.density.likelihood(z_hat)).sum()
    data = pipe.compress(image, 2)
    header_bytes = 4 + 2 + 4 + 10 + 4 + 4 + 4
    # Snapping scales up to the table and the integer pmfs cost a little over the ideal estimate.
    assert bits.item() / 8 <= len(data) - header_bytes + 16
    assert len(data) - header_bytes <= bits.item() / 8 * 1.10 + 32


@pytest.mark.parametrize("prior", ["hyperprior", "factorized"])
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P"])
def test_round_trip_is_the_model_with_rounded_latents(prior, mode):
    net = _tiny(prior).eval()
    pipe = CodecPipeline(net, net.cfg, "test")
    image = _image().convert(mode)
    if mode in ("RGBA", "LA"):
        image.putalpha(Image.fromarray(np.arange(70 * 90, dtype=np.uint32).reshape(70, 90).astype(np.uint8)))
    data = pipe.compress(image, 2)
    out = pipe.decompress(data)
    assert out.size == image.size
    assert out.mode == {"P": "RGB"}.get(mode, mode)
    if mode in ("RGBA", "LA"):
        assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(image.getchannel("A")))
    colour = image.convert("RGB") if mode == "P" else image
    x = torch.from_numpy(np.asarray(colour.convert("RGB")).copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y_hat = torch.round(pipe._analysis(x, 2))
        _, inverse_gain = net.gains(torch.tensor([1]))
        ref = net.g_s(y_hat * inverse_gain)[0, :, :70, :90].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0)
    ref = Image.fromarray(ref.numpy())
    if out.mode in ("L", "LA"):
        ref = ref.convert("L")
    got = out.convert("L" if out.mode in ("L", "LA") else "RGB")
    assert np.array_equal(np.asarray(got), np.asarray(ref))


@pytest.mark.parametrize("size", [(1, 1), (3, 70), (65, 1), (64, 64)])
def test_any_image_size(size):
    net = _tiny().eval()
    pipe = CodecPipeline(net, net.cfg, "test")
    w, h = size
    image = Image.fromarray(np.full((h, w, 3), 120, np.uint8))
    assert pipe.decompress(pipe.compress(image, 1)).size == (w, h)


def test_quality_levels_are_checked():
    net = _tiny().eval()
    pipe = CodecPipeline(net, net.cfg, "test")
    with pytest.raises(PixelforgeError, match="quality must be 1..2"):
        pipe.compress(_image(), 3)


def test_training_lowers_the_rate_distortion_loss():
    net = _tiny()
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    x = torch.from_numpy(np.asarray(_image(64, 64)).copy()).permute(2, 0, 1)[None].float().div(255).repeat(2, 1, 1, 1)
    q = torch.tensor([0, 1])
    torch.manual_seed(1)
    first = None
    for _ in range(60):
        out = net.rate_distortion(x, q)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = first if first is not None else out["loss"].item()
    assert out["loss"].item() < 0.5 * first
    # the higher level (larger lambda) spends more bits on the same image
    with torch.no_grad():
        lo, hi = (net.rate_distortion(x[:1], torch.tensor([k])) for k in (0, 1))
    assert hi["bpp"] > lo["bpp"] and hi["mse"] < lo["mse"]


def test_tables_travel_with_the_weights():
    net = _tiny()
    state = net.state_dict()
    fresh = _tiny(seed=5)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.density.pmf, state["density.pmf"]) and fresh.ready


# -- the container -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def valid_file() -> tuple[CodecPipeline, bytes]:
    net = _tiny().eval()
    pipe = CodecPipeline(net, net.cfg, "test")
    return pipe, pipe.compress(_image(40, 50).convert("RGBA"), 1)


def test_header_round_trip():
    header = Header("photos-codec-v1", 3, "RGBA", 640, 480)
    data = pack(header, b"alpha", np.arange(5, dtype=np.uint32))
    h, alpha, words = unpack(data)
    assert h == header and alpha == b"alpha" and words.tolist() == [0, 1, 2, 3, 4]


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"", "wrong magic"),
    (lambda d: b"GIF89a" + d[6:], "wrong magic"),
    (lambda d: d[:5], "truncated"),
    (lambda d: d[:-7], "checksum|truncated|lengths"),
    (lambda d: _with_crc(d[:4] + bytes([9]) + d[5:-4]), "version 9"),
    (lambda d: d[:30] + bytes([d[30] ^ 0x10]) + d[31:], "checksum"),
    (lambda d: d + b"\0", "checksum"),
])
def test_damaged_files_are_refused(valid_file, mutate, message):
    pipe, data = valid_file
    with pytest.raises(BitstreamError, match=message):
        pipe.decompress(mutate(data))


def test_another_models_file_is_refused(valid_file):
    pipe, data = valid_file
    other = CodecPipeline(pipe.net, pipe.cfg, "run:0123456789abcdef")
    with pytest.raises(BitstreamError, match="compressed with 'test'"):
        other.decompress(data)


def test_a_valid_checksum_over_a_garbled_stream_is_still_an_error_not_a_crash(valid_file):
    """Even with a recomputed CRC (a deliberate forgery), bad sections give a clear error."""
    pipe, data = valid_file
    body = bytearray(data[:-4])
    body[-9] ^= 0xFF  # inside the range-coded words
    try:
        out = pipe.decompress(_with_crc(bytes(body)))
    except PixelforgeError:
        return
    assert out.size == (50, 40)  # decodes to *an* image of the declared size, never crashes


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzzed_files_give_a_clear_error(valid_file, data):
    """Random flips, truncations, insertions and raw bytes: only BitstreamError, quickly."""
    pipe, original = valid_file
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "random", "header"]))
    buf = bytearray(original)
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(buf) - 1))
            buf[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "truncate":
        buf = buf[:data.draw(st.integers(0, len(buf) - 1))]
    elif kind == "insert":
        i = data.draw(st.integers(0, len(buf)))
        buf[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    elif kind == "random":
        buf = bytearray(MAGIC + data.draw(st.binary(max_size=200)))
    else:  # a forged header with a valid checksum: huge sizes, bad modes, bad lengths
        body = bytearray(original[:-4])
        i = data.draw(st.integers(4, min(len(body) - 1, 40)))
        body[i] = data.draw(st.integers(0, 255))
        buf = bytearray(_with_crc(bytes(body)))
    if bytes(buf) == original:
        return
    try:
        pipe.decompress(bytes(buf))
    except BitstreamError:
        pass
    except PixelforgeError as e:  # e.g. a quality level the model lacks, named clearly
        assert "quality" in str(e) or "compressed with" in str(e)

