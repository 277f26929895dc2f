"""Overfitted image coding (the Cool-chic / C3 family): a small neural representation of *one*
image, fitted at encode time, is the compressed file.

The representation of an H x W image:

- latent grids ``y_0 .. y_{L-1}``, one channel each, ``y_k`` of size ceil(H / 2^k) x
  ceil(W / 2^k) (full resolution down to 1/64 with the default 7 levels), quantized to
  integers in [-LATENT_MAX, LATENT_MAX];
- an upsampler ``U`` that brings every grid to full resolution (coarsest first, a fixed
  bicubic x2 step at a time, each finer grid stacked on as a new channel);
- a synthesis network ``f`` (two 1x1 layers, then two 3x3 residual layers) from the L
  stacked channels to RGB;
- an autoregressive entropy model ``g``: for every latent, a tiny MLP reads the 16
  already-decoded neighbours in its own grid (:data:`CONTEXT`, zeros outside the grid) and
  gives the mean ``mu`` and log-scale of a Laplace distribution; the latent's probability is
  that distribution's mass on its integer bin.

Fitting minimises the rate-distortion Lagrangian (the project's convention)

    L = R / (H W) + lambda * 255^2 * D,   R = sum_i -log2 P(y_hat_i | context_i),
                                          D = mean((x - f(U(y_hat)))^2),  x in [0, 1]

with ``y_hat`` replaced by the proxy ``s_T(s_T(y) + u)``, ``u ~ U(-1/2, 1/2)`` (:func:`soft_round`,
the temperature T falling), in the first phase and by ``round(y)`` with a straight-through
gradient at the end. The bits of the quantized
network parameters are added to R in the file (they are coded with it).

Decoding is exact: :func:`fixed_point_forward` runs the context model, the upsampler and the
synthesis in fixed-point arithmetic (integer-valued float64 tensors: every product and sum
is an integer below 2^53, so any summation order, thread count or BLAS gives the same
result), and the coder's probabilities come from an integer table indexed by integers
(:func:`pmf_table`). See pipelines/overfit_codec.py for the fitting and the bitstream.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LATENT_MAX = 31
# Causal neighbours (row offset, column offset) the context model reads; all lie above or to
# the left, and none further right than 3 columns in the rows above, so a wavefront
# t = column + WAVE_SLOPE * row decodes in parallel every latent whose context is known.
CONTEXT = ((0, -1), (0, -2), (0, -3),
           (-1, -3), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2), (-1, 3),
           (-2, -2), (-2, -1), (-2, 0), (-2, 1), (-2, 2), (-3, 0))
WAVE_SLOPE = 4
ACT_BITS = 12  # fixed-point fraction bits of every activation in the exact decoder
MU_BITS = 4  # the coder's mean has a resolution of 1/16
LOG_SCALE_MIN, LOG_SCALE_BITS, SCALE_LEVELS = -3, 3, 64  # scales exp(-3 + i/8), i < 64
PMF_BITS = 20
# bicubic (Keys, a = -1/2) weights at the quarter phases of a x2 upsampling, in 1/128ths
_EVEN, _ODD = (-3, 29, 111, -9), (-9, 111, 29, -3)


@dataclass
class OverfitConfig:
    levels: int = 7
    synth_hidden: int = 40
    arm_hidden: int = 16
    arm_layers: int = 2

    def check(self) -> None:
        if not (1 <= self.levels <= 8 and 1 <= self.synth_hidden <= 64 and 1 <= self.arm_hidden <= 64
                and 1 <= self.arm_layers <= 4):
            raise ValueError(f"overfitted codec configuration out of range: {self}")


def level_shapes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    return [(-(-height // 2 ** k), -(-width // 2 ** k)) for k in range(levels)]


# -- the networks ------------------------------------------------------------------------------

class Synthesis(nn.Module):
    """f: L stacked latent channels -> RGB (two 1x1 layers, then two 3x3 residual layers)."""

    def __init__(self, levels: int, hidden: int, out_channels: int = 3):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(levels, hidden), nn.Linear(hidden, out_channels),
                                     nn.Conv2d(out_channels, out_channels, 3),
                                     nn.Conv2d(out_channels, out_channels, 3)])
        for conv in self.layers[2:]:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        nn.init.constant_(self.layers[1].bias, 0.5)

    def forward(self, feat: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        """(L, H, W) -> (1, 3, H, W). The 1x1 layers are matrix products over all pixels at
        once, (C_out, C_in) @ (C_in, H*W), in bf16 if asked; the 3x3 layers stay in fp32 and
        run channels_last, which oneDNN does twice as fast as NCHW for 3 channels."""
        l1, l2, r1, r2 = self.layers
        c, h, w = feat.shape
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            hidden = F.relu(torch.addmm(l1.bias[:, None], l1.weight, feat.reshape(c, h * w)))
            x = torch.addmm(l2.bias[:, None], l2.weight, hidden)
        x = x.float().reshape(1, -1, h, w).contiguous(memory_format=torch.channels_last)
        x = x + F.relu(r1(replicate_pad(x)))
        return x + r2(replicate_pad(x))


def replicate_pad(x: torch.Tensor) -> torch.Tensor:
    """Pad the last two axes by one, repeating the edge (F.pad's replicate mode, by
    concatenation: its backward is a slice sum rather than a scatter)."""
    x = torch.cat([x[..., :1, :], x, x[..., -1:, :]], -2)
    return torch.cat([x[..., :1], x, x[..., -1:]], -1)


class ContextModel(nn.Module):
    """g: the 16 causal neighbours of a latent -> (mu, log-scale) of its Laplace distribution."""

    def __init__(self, hidden: int, layers: int):
        super().__init__()
        dims = [len(CONTEXT)] + [hidden] * layers
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(dims, dims[1:])] + [nn.Linear(hidden, 2)])
        nn.init.zeros_(self.layers[-1].weight)
        nn.init.constant_(self.layers[-1].bias, 0.0)

    def forward(self, ctx: torch.Tensor, bf16: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """ctx (16, N), one column per latent -> mu (N,), log-scale (N,). ``bf16``: the hidden
        layers in bf16 (3x faster); the output layer stays fp32, as the coder's means need
        more than bf16's 8 bits."""
        h = ctx
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for layer in self.layers[:-1]:
                h = F.relu(torch.addmm(layer.bias[:, None], layer.weight, h))
        out = self.layers[-1]
        mu, log_scale = torch.addmm(out.bias[:, None], out.weight, h.float())
        return mu, log_scale


# -- shared geometry -----------------------------------------------------------------------------

class _GatherContext(torch.autograd.Function):
    """Grids [(H_k, W_k)] -> (16, sum H_k W_k) neighbours in CONTEXT order, zero outside each
    grid, written straight into one buffer of ``dtype``: a slice copy per neighbour forward and
    a slice sum backward (F.unfold's col2im was 25x slower, and a cat of the levels and a cast
    to bf16 would each copy the whole buffer again)."""

    @staticmethod
    def forward(ctx, dtype, *grids):
        out = torch.empty(len(CONTEXT), sum(g.numel() for g in grids), dtype=dtype)
        start = 0
        for grid in grids:
            h, w = grid.shape
            padded = F.pad(grid, (3, 3, 3, 0))
            view = out[:, start:start + h * w].view(len(CONTEXT), h, w)
            for j, (dr, dc) in enumerate(CONTEXT):
                view[j] = padded[3 + dr:3 + dr + h, 3 + dc:3 + dc + w]
            start += h * w
        ctx.shapes, ctx.grid_dtype = [g.shape for g in grids], grids[0].dtype
        return out

    @staticmethod
    def backward(ctx, grad):
        grads, start = [], 0
        for h, w in ctx.shapes:
            view = grad[:, start:start + h * w].view(len(CONTEXT), h, w)
            padded = torch.zeros(h + 3, w + 6, dtype=ctx.grid_dtype)
            for j, (dr, dc) in enumerate(CONTEXT):
                padded[3 + dr:3 + dr + h, 3 + dc:3 + dc + w] += view[j]
            grads.append(padded[3:, 3:3 + w])
            start += h * w
        return (None, *grads)


def gather_context(grids: list[torch.Tensor], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Grids [(H_k, W_k)] -> (16, sum H_k W_k): each latent's neighbours in CONTEXT order,
    zero outside its grid, the grids' latents one after another."""
    return _GatherContext.apply(dtype, *grids)


def _up2_last(x: torch.Tensor, even_taps, odd_taps) -> torch.Tensor:
    """x2 upsampling along the last axis (edges repeated): output 2i is sum_k even_taps[k] *
    x[i - 2 + k], output 2i + 1 is sum_k odd_taps[k] * x[i - 1 + k]. It writes into its output
    (``out=``), which autograd cannot trace: the float path goes through :class:`_Up2`, the
    exact one runs without gradients."""
    n = x.shape[-1]
    p = torch.cat([x[..., :1], x[..., :1], x, x[..., -1:], x[..., -1:]], -1)
    out = x.new_empty(*x.shape[:-1], n, 2)
    for phase, (taps, start) in enumerate(((even_taps, 0), (odd_taps, 1))):
        acc = torch.mul(p[..., start:start + n], taps[0], out=out[..., phase])
        for k in (1, 2, 3):
            acc.add_(p[..., start + k:start + k + n], alpha=taps[k])
    return out.view(*x.shape[:-1], 2 * n)


_FLOAT_EVEN, _FLOAT_ODD = [c / 128 for c in _EVEN], [c / 128 for c in _ODD]


class _Up2(torch.autograd.Function):
    """The float x2 bicubic step along the last axis, with its transpose written out as the
    backward (autograd's own, through the shifted slices, spent most of its time zero-filling)."""

    @staticmethod
    def forward(ctx, x):
        return _up2_last(x, _FLOAT_EVEN, _FLOAT_ODD)

    @staticmethod
    def backward(ctx, grad):
        n = grad.shape[-1] // 2
        grad = grad.reshape(*grad.shape[:-1], n, 2)
        padded = grad.new_zeros(*grad.shape[:-2], n + 4)
        for k in range(4):
            padded[..., k:k + n].add_(grad[..., 0], alpha=_FLOAT_EVEN[k])
            padded[..., k + 1:k + 1 + n].add_(grad[..., 1], alpha=_FLOAT_ODD[k])
        out = padded[..., 2:n + 2].clone()
        out[..., 0] += padded[..., 0] + padded[..., 1]
        out[..., -1] += padded[..., n + 2] + padded[..., n + 3]
        return out


def _up2(x: torch.Tensor, exact: bool) -> torch.Tensor:
    if exact:  # integer taps, then floor: the decoder's fixed-point step
        return torch.floor(_up2_last(x, _EVEN, _ODD) / 128)
    return _Up2.apply(x)


def upsample(latents: list[torch.Tensor], exact: bool = False) -> torch.Tensor:
    """[(H_k, W_k)] finest first -> (L, H, W), coarsest channel first."""
    feat = latents[-1][None]
    for grid in reversed(latents[:-1]):
        h, w = grid.shape
        feat = _up2(feat.transpose(1, 2), exact).transpose(1, 2)[:, :h]  # rows, then columns:
        feat = _up2(feat, exact)[:, :, :w]  # the order the decoder's floors were defined in
        feat = torch.cat([feat, grid[None]], 0)
    return feat


# -- rate ---------------------------------------------------------------------------------------

def laplace_bits(symbols: torch.Tensor, mu: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """-log2 of the Laplace(mu, scale) mass on [symbol - 1/2, symbol + 1/2], floored at 2^-16."""
    a = (symbols - mu).abs()
    # each branch sees only its own range of a: the other branch's overflow would otherwise
    # turn into NaN gradients through torch.where (inf * 0)
    far, close = a.clamp_min(0.5), a.clamp_max(0.5)
    log_far = math.log(0.5) - (far - 0.5) / scale + torch.log(-torch.expm1(-1 / scale))
    near = 1 - 0.5 * torch.exp(-(0.5 - close) / scale) - 0.5 * torch.exp(-(0.5 + close) / scale)
    log_near = torch.log(near.clamp_min(1e-12))
    log_p = torch.where(a >= 0.5, log_far, log_near)
    return -log_p.clamp_min(-16 * math.log(2)) / math.log(2)


def soft_round(y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft rounding (Agustsson & Theis 2020, as C3 uses it): floor(y) + 1/2 + tanh((r - 1/2) / T)
    / (2 tanh(1 / (2T))), r = y - floor(y). Continuous and increasing, it keeps integers and
    half-integers in place and tends to rounding as T -> 0, to the identity as T grows."""
    m = torch.floor(y) + 0.5
    return m + torch.tanh((y - m) / temperature) / (2 * math.tanh(1 / (2 * temperature)))


def coder_scale(log_scale: torch.Tensor) -> torch.Tensor:
    return torch.exp(log_scale.clamp(LOG_SCALE_MIN, LOG_SCALE_MIN + (SCALE_LEVELS - 1) / 2 ** LOG_SCALE_BITS))


@lru_cache(maxsize=1)
def pmf_table() -> tuple[np.ndarray, int]:
    """Integer coding frequencies ``T[f, s, d + 2M]`` of the offset ``d = y - floor(mu)`` for the
    mean's sixteenth ``f`` and scale index ``s``, and the table's CRC-32 (written in every file,
    so a decoder whose table differed would say so instead of decoding garbage)."""
    m2 = 2 * LATENT_MAX
    d = np.arange(-m2, m2 + 1, dtype=np.float64)[None, None, :]
    frac = (np.arange(2 ** MU_BITS, dtype=np.float64) / 2 ** MU_BITS)[:, None, None]
    scales = np.exp(LOG_SCALE_MIN + np.arange(SCALE_LEVELS, dtype=np.float64) / 2 ** LOG_SCALE_BITS)[None, :, None]

    def cdf(v):
        return np.where(v < 0, 0.5 * np.exp(np.minimum(v, 0) / scales), 1 - 0.5 * np.exp(-np.maximum(v, 0) / scales))

    p = cdf(d + 0.5 - frac) - cdf(d - 0.5 - frac)
    table = np.maximum(1, np.round(p * 2 ** PMF_BITS)).astype(np.int64)
    return table, zlib.crc32(table.astype("<i8").tobytes())


# -- the model ------------------------------------------------------------------------------------

class OverfitCodec(nn.Module):
    """Latent grids plus the two networks, for one image of ``height`` x ``width``."""

    def __init__(self, height: int, width: int, cfg: OverfitConfig):
        super().__init__()
        cfg.check()
        self.cfg, self.height, self.width = cfg, height, width
        self.shapes = level_shapes(height, width, cfg.levels)
        self.latents = nn.ParameterList([nn.Parameter(torch.zeros(h, w)) for h, w in self.shapes])
        self.synthesis = Synthesis(cfg.levels, cfg.synth_hidden)
        self.arm = ContextModel(cfg.arm_hidden, cfg.arm_layers)

    def quantized_latents(self, mode: str, temperature: float = 0.1) -> list[torch.Tensor]:
        """'noise': y + u, u ~ U(-1/2, 1/2); 'soft': s_T(s_T(y) + u) with :func:`soft_round` at
        ``temperature`` T (C3's proxy: between the smooth noisy one and rounding, closer to
        rounding as T falls); 'hard': round(y) with a straight-through gradient."""
        out = []
        for y in self.latents:
            y = y.clamp(-LATENT_MAX, LATENT_MAX)
            if mode == "noise":
                out.append(y + torch.rand_like(y) - 0.5)
            elif mode == "soft":
                out.append(soft_round(soft_round(y, temperature) + torch.rand_like(y) - 0.5, temperature))
            else:
                out.append(y + (torch.round(y) - y).detach())
        return out

    def forward(self, mode: str = "hard", autocast: bool = False,
                temperature: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (reconstruction (1, 3, H, W), total latent bits). ``autocast``: the gathered
        contexts and the hidden layers of both networks in bf16."""
        q = self.quantized_latents(mode, temperature)
        ctx = gather_context(q, torch.bfloat16 if autocast else torch.float32)
        symbols = torch.cat([y.flatten() for y in q])
        mu, log_scale = self.arm(ctx, bf16=autocast)
        bits = laplace_bits(symbols, mu, coder_scale(log_scale)).sum()
        return self.synthesis(upsample(q), bf16=autocast), bits


# -- the exact (fixed-point) decoder path ------------------------------------------------------------

@dataclass
class QuantizedNet:
    """A network's parameters as integers: weights ``w * 2^w_bits``, biases at the scale of the
    products they are added to (``2^(ACT_BITS + w_bits)``, or ``2^w_bits`` for the context
    model's first layer, whose inputs are the integer latents)."""

    w_bits: int
    tensors: list[np.ndarray]  # int64, in layer order: weight, bias, weight, bias, ...


def param_shapes(cfg: OverfitConfig) -> dict[str, list[tuple[int, ...]]]:
    """The parameter shapes of each network, in coding order (what a decoder allocates)."""
    arm_dims = [len(CONTEXT)] + [cfg.arm_hidden] * cfg.arm_layers + [2]
    arm = [s for a, b in zip(arm_dims, arm_dims[1:]) for s in ((b, a), (b,))]
    synth = [(cfg.synth_hidden, cfg.levels), (cfg.synth_hidden,), (3, cfg.synth_hidden), (3,),
             (3, 3, 3, 3), (3,), (3, 3, 3, 3), (3,)]
    return {"arm": arm, "synthesis": synth}


def quantize_net(net: nn.Module, w_bits: int, first_input_bits: int) -> QuantizedNet:
    tensors = []
    for i, layer in enumerate(net.layers):
        in_bits = first_input_bits if i == 0 else ACT_BITS
        tensors.append(np.round(layer.weight.detach().double().numpy() * 2.0 ** w_bits).astype(np.int64))
        tensors.append(np.round(layer.bias.detach().double().numpy() * 2.0 ** (w_bits + in_bits)).astype(np.int64))
    return QuantizedNet(w_bits, tensors)


def _rescale(acc, from_bits: int, to_bits: int):
    """floor(acc * 2^(to - from)): exact, as acc holds integers and the factor is a power of 2."""
    scaled = acc * 2.0 ** (to_bits - from_bits)
    return torch.floor(scaled) if isinstance(scaled, torch.Tensor) else np.floor(scaled)


def fixed_arm(qnet: QuantizedNet, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer contexts (N, 16) -> (mu in 1/16ths, scale index), both int64, exactly."""
    h, in_bits = ctx.astype(np.float64), 0
    pairs = list(zip(qnet.tensors[::2], qnet.tensors[1::2]))
    for i, (w, b) in enumerate(pairs):
        h = _rescale(h @ w.T.astype(np.float64) + b.astype(np.float64), in_bits + qnet.w_bits, ACT_BITS)
        in_bits = ACT_BITS
        if i < len(pairs) - 1:
            np.maximum(h, 0, out=h)
    h = np.nan_to_num(h)  # only a forged file's parameters overflow; its latents decode to garbage, not a crash
    mu16 = np.floor((h[:, 0] + 2 ** (ACT_BITS - MU_BITS - 1)) / 2 ** (ACT_BITS - MU_BITS))
    mu16 = np.clip(mu16, -LATENT_MAX * 2 ** MU_BITS, LATENT_MAX * 2 ** MU_BITS).astype(np.int64)
    s = np.floor((h[:, 1] - LOG_SCALE_MIN * 2 ** ACT_BITS + 2 ** (ACT_BITS - LOG_SCALE_BITS - 1))
                 / 2 ** (ACT_BITS - LOG_SCALE_BITS))
    return mu16, np.clip(s, 0, SCALE_LEVELS - 1).astype(np.int64)


def fixed_synthesis(qnet: QuantizedNet, latents: list[np.ndarray], chunk: int = 1 << 15) -> np.ndarray:
    """Integer latent grids [(H_k, W_k)] -> 8-bit RGB (H, W, 3), exactly. The 1x1 layers run
    over ``chunk`` pixels at a time so that their wide hidden layer stays in the cache."""
    with torch.no_grad():
        feat = upsample([torch.from_numpy(y).double() * 2 ** ACT_BITS for y in latents], exact=True)
        w1, b1, w2, b2, w3, b3, w4, b4 = [torch.from_numpy(t).double() for t in qnet.tensors]
        shift = 2.0 ** -qnet.w_bits  # products carry ACT_BITS + w_bits fraction bits; keep ACT_BITS
        c, h, w = feat.shape
        feat = feat.reshape(c, h * w)
        x = torch.empty(3, h * w, dtype=torch.float64)
        for lo in range(0, h * w, chunk):
            hidden = torch.addmm(b1[:, None], w1, feat[:, lo:lo + chunk]).mul_(shift).floor_().clamp_min_(0)
            x[:, lo:lo + chunk] = torch.addmm(b2[:, None], w2, hidden).mul_(shift).floor_()
        x = x.reshape(1, 3, h, w)

        def conv(v, weight, bias):
            return F.conv2d(F.pad(v, (1, 1, 1, 1), mode="replicate"), weight, bias).mul_(shift).floor_()

        x = x + conv(x, w3, b3).clamp_min_(0)
        x = torch.nan_to_num(x + conv(x, w4, b4))
        pixels = torch.floor((x[0] * 255 + 2 ** (ACT_BITS - 1)) / 2 ** ACT_BITS).clamp(0, 255)
        return pixels.permute(1, 2, 0).to(torch.uint8).numpy()
