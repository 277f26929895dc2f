"""Denoising diffusion: the U-Net that predicts the noise (Ho et al. 2020; Nichol & Dhariwal 2021).

Forward process: a fixed noise schedule beta_1..beta_T turns an image x_0 into pure noise,

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),   abar_t = prod_{s<=t} (1 - beta_s).

The network learns the reverse: given x_t and t (and optionally a class y) it predicts either
the noise eps (``prediction="eps"``) or the velocity v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0
(``prediction="v"``, Salimans & Ho 2022). Training minimises the simple objective

    L = E_{x_0, t, eps} || target - net(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t, y) ||^2.

The schedule and the samplers (DDPM, DDIM, guidance, inpainting) live apart from the weights in
:mod:`pixelforge.schedulers`; this file holds only the network.

Architecture: a compact U-Net. Residual blocks (group norm, SiLU, 3x3 convs) receive the
sinusoidal time embedding (plus a class embedding) as a per-channel scale and shift;
self-attention runs at the lowest resolutions; the encoder's activations are concatenated into
the decoder (skip connections). With ``patch_size=2`` the net sees 2x2 pixel blocks as channels
(space-to-depth), which makes it about four times cheaper: what makes training fit a CPU. The last conv starts at zero so the untrained net predicts 0.
A class-conditional net has one extra "null" class, used for classifier-free guidance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PixelforgeError
from ..family import flag
from ..nn import GroupNorm
from .registration import register_model


@dataclass
class UNetConfig:
    image_size: int = 28
    channels: int = 1
    # Channels at the first level. 48 beat 64 on a CPU budget: 1.3x the steps, and after 10 minutes
    # FID 0.49 against 0.54 (conditional, guidance 2.5); dropping the level's attention instead was worse.
    width: int = flag(48, help="channels at the first level", check="positive")
    # per resolution level
    channel_mult: list[int] = flag(
        default_factory=lambda: [1, 2], help="width multiplier per level", default_text="1,2; 1,2,2 above 32 px")
    # per level in the encoder (the decoder has one more); 1 beat 2 on a CPU budget
    num_res_blocks: int = flag(1, help="residual blocks per level", check="positive")
    attention_levels: list[int] | None = None  # level indices with self-attention (default: the lowest)
    heads: int = 4
    dropout: float = flag(0.0, help="dropout in the residual blocks")
    num_classes: int = 0  # > 0: class-conditional (+1 null class for classifier-free guidance)
    # 2: the U-Net works on 2x2 pixel blocks (space-to-depth), ~4x cheaper
    patch_size: int = flag(2, help="pixels per side the net sees as one", choices=(1, 2, 4))

    def __post_init__(self):
        self.channel_mult = list(self.channel_mult)
        levels = len(self.channel_mult)
        self.attention_levels = [levels - 1] if self.attention_levels is None else list(self.attention_levels)
        if self.channels not in (1, 3):
            raise PixelforgeError(f"diffusion models take 1 or 3 channels, not {self.channels}")
        if levels < 1 or self.width < 8 or self.num_res_blocks < 1 or min(self.channel_mult) < 1:
            raise PixelforgeError("the U-Net needs width >= 8, at least one level and one block per level")
        if self.patch_size not in (1, 2, 4):
            raise PixelforgeError(f"patch size must be 1, 2 or 4, not {self.patch_size}")
        factor = self.patch_size * 2 ** (levels - 1)
        if self.image_size < 8 or self.image_size % factor:
            raise PixelforgeError(f"image size {self.image_size} must be at least 8 and divisible by {factor} "
                                  f"for a U-Net with {levels} levels and patch size {self.patch_size}")
        if any(not 0 <= a < levels for a in self.attention_levels):
            raise PixelforgeError(f"attention levels must lie in 0..{levels - 1}")
        if not 0 <= self.dropout < 1 or self.num_classes < 0:
            raise PixelforgeError("dropout must lie in [0, 1) and num_classes be >= 0")


# Up to this many tokens the CPU attention is a plain product: PyTorch's fused CPU kernel is
# built for long sequences, and its backward was a quarter of a training step at 7x7 tokens.
PLAIN_ATTENTION_MAX_TOKENS = 256


def _groups(ch: int) -> int:
    return next(g for g in (32, 16, 8, 4, 2, 1) if ch % g == 0 and ch // g >= 4 or g == 1)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, as in the Transformer."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1 = GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = GroupNorm(_groups(c_out), c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    def __init__(self, ch: int, heads: int):
        super().__init__()
        self.heads = heads if ch % heads == 0 else 1
        self.norm = GroupNorm(_groups(ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        if h * w <= PLAIN_ATTENTION_MAX_TOKENS and x.device.type == "cpu":
            att = (q @ k.transpose(-1, -2)) * (c // self.heads) ** -0.5
            out = att.softmax(dim=-1) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v)  # (b, heads, hw, c/heads)
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        emb_dim = 4 * w
        self.time_mlp = nn.Sequential(nn.Linear(w, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(cfg.num_classes + 1, emb_dim) if cfg.num_classes else None
        c_pix = cfg.channels * cfg.patch_size ** 2
        self.conv_in = nn.Conv2d(c_pix, w, 3, padding=1)

        self.down = nn.ModuleList()
        skips = [w]
        ch = w
        levels = len(cfg.channel_mult)
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                block = nn.ModuleList([ResBlock(ch, w * mult, emb_dim, cfg.dropout)])
                ch = w * mult
                if level in cfg.attention_levels:
                    block.append(Attention(ch, cfg.heads))
                self.down.append(block)
                skips.append(ch)
            if level < levels - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)

        self.mid = nn.ModuleList([ResBlock(ch, ch, emb_dim, cfg.dropout), Attention(ch, cfg.heads),
                                  ResBlock(ch, ch, emb_dim, cfg.dropout)])

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                block = nn.ModuleList([ResBlock(ch + skips.pop(), w * mult, emb_dim, cfg.dropout)])
                ch = w * mult
                if level in cfg.attention_levels:
                    block.append(Attention(ch, cfg.heads))
                if level > 0 and i == cfg.num_res_blocks:
                    block.append(nn.Upsample(scale_factor=2, mode="nearest"))
                    block.append(nn.Conv2d(ch, ch, 3, padding=1))
                self.up.append(block)

        self.norm_out = GroupNorm(_groups(ch), ch)
        self.conv_out = nn.Conv2d(ch, c_pix, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: noisy images (B, C, H, W); ``t``: timesteps (B,); ``labels``: class ids, the
        null class ``num_classes`` meaning "no label" (unconditional branch of guidance)."""
        emb = self.time_mlp(timestep_embedding(t, self.cfg.width).to(x.dtype))
        if self.class_emb is not None:
            if labels is None:
                labels = torch.full((x.shape[0],), self.cfg.num_classes, device=x.device, dtype=torch.long)
            emb = emb + self.class_emb(labels)
        elif labels is not None:
            raise PixelforgeError("this diffusion model is unconditional: it takes no labels")
        if self.cfg.patch_size > 1:
            x = F.pixel_unshuffle(x, self.cfg.patch_size)
        h = self.conv_in(x)
        hs = [h]
        for block in self.down:
            for layer in block:
                h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        for block in self.up:
            h = torch.cat([h, hs.pop()], dim=1)
            for layer in block:
                h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        out = self.conv_out(F.silu(self.norm_out(h)))
        return F.pixel_shuffle(out, self.cfg.patch_size) if self.cfg.patch_size > 1 else out


@register_model("unet", family="diffusion", config=UNetConfig,
                description="compact DDPM U-Net: residual blocks, group norm, time embedding, attention")
def build_unet(cfg: UNetConfig) -> UNet:
    return UNet(cfg)
