"""The overfitted codec from Python: :class:`OverfitCodecPipeline` fits a small neural
representation to each image it compresses (models/overfit_codec.py) and writes it as a
version-2 ``.pfc`` file (pipelines/overfit_bitstream.py); decompressing runs the exact
fixed-point decoder. No training set and no shipped weights are needed.

    codec = OverfitCodecPipeline()
    data = codec.compress("photo.png", quality=3, effort="default")
    image = codec.decompress(data)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .. import dryrun
from ..errors import PixelforgeError
from ..images import read_image, to_tensor
from ..imageio import join_alpha, split_alpha
from ..models.overfit_codec import ACT_BITS, LATENT_MAX, OverfitCodec, OverfitConfig, fixed_synthesis, quantize_net
from ..runtime import make_optimizer
from . import overfit_bitstream as bs

MODEL_ID = "overfit"
PRIOR = "overfit-prior-v1"  # the networks' warm start, in the zoo (benchmarks/codec_prior.py)
PRIOR_LAMBDA = 0.006
# lambda per quality level (1 = smallest file), in the project's R + lambda * 255^2 * D convention
QUALITY_LAMBDAS = (0.001, 0.0025, 0.006, 0.015, 0.04, 0.1, 0.25, 0.6)
# the weight steps 2^-k tried for each network: the context model's best k is often 2-4 (its
# parameters cost more bits than finer weights save on the latents); the synthesis's 5-8
ARM_WEIGHT_BITS, SYNTH_WEIGHT_BITS = range(2, 13), range(5, 13)


@dataclasses.dataclass(frozen=True)
class Effort:
    """How hard the encoder works: optimisation steps and when the hard-rounding phase starts."""

    iterations: int
    hard_fraction: float = 0.2
    lr: float = 1e-2
    latent_lr: float = 5e-2
    # the first phase's proxy: "soft" (soft rounding of noisy latents, its temperature falling
    # geometrically from the first value to the second) or "noise" (additive uniform noise)
    proxy: str = "soft"
    temperatures: tuple[float, float] = (0.3, 0.1)
    # the latents' rate grows with lambda: latent_lr * max(1, lambda / PRIOR_LAMBDA) ** growth. High-rate
    # fits must move their latents much further from the warm start than the steps of a short preset allow
    latent_lr_growth: float = 0.0


# best's hard phase is shorter: 500 straight-through steps let the latents drift (training-photo
# probe: RD cost 17-22% higher than with 250)
EFFORTS = {"fast": Effort(120, hard_fraction=1.0), "default": Effort(620, latent_lr_growth=0.25),
           "best": Effort(2500, hard_fraction=0.1, latent_lr_growth=0.25)}
DEFAULT_EFFORT = "default"
EFFORT_TIMES = "about 1 / 5 / 20 minutes per megapixel on a 2-core CPU"  # of the presets, in their order


@dataclasses.dataclass
class EncodeResult:
    data: bytes
    bpp: float
    psnr: float
    seconds: float
    iterations: int


def _image_tensor(image: Image.Image) -> tuple[torch.Tensor, str, bytes]:
    """An image in any supported mode -> (RGB tensor (1, 3, H, W), mode, zlib'd alpha plane)."""
    colour, mode, alpha = split_alpha(image)
    return to_tensor(colour).expand(3, -1, -1)[None].contiguous(), mode, alpha


def _psnr(mse: float) -> float:
    return 10 * math.log10(1 / max(mse, 1e-12))


def fit(x: torch.Tensor, lmbda: float, effort: Effort, cfg: OverfitConfig | None = None, seed: int = 0,
        progress: bool = False, autocast: bool = True, report=None, prior: dict | None = None) -> OverfitCodec:
    """Fit latents and networks to ``x`` (1, 3, H, W): noisy latents first, then hard rounding
    with a straight-through gradient, Adam with a cosine learning-rate decay. ``prior``: the
    networks' starting weights (a warm start, see :func:`fit_prior`). ``report(fraction,
    note)``, if given, hears the progress every 10 steps (the studio's job polling)."""
    torch.manual_seed(seed)
    model = OverfitCodec(x.shape[2], x.shape[3], cfg or OverfitConfig())
    if prior is not None:
        load_prior(model, prior)
    _optimise([model], [x], lmbda, effort, progress, autocast, report)
    return model


def fit_prior(images: list[torch.Tensor], lmbda: float, effort: Effort, cfg: OverfitConfig | None = None,
              seed: int = 0, progress: bool = True) -> tuple[dict, dict]:
    """One context model and one synthesis fitted jointly to several images (each with its own
    latents): a warm start for :func:`fit`, which then needs fewer steps.
    -> (their weights, the bpp and PSNR of the last step)."""
    torch.manual_seed(seed)
    cfg = cfg or OverfitConfig()
    models = [OverfitCodec(x.shape[2], x.shape[3], cfg) for x in images]
    for m in models[1:]:
        m.arm, m.synthesis = models[0].arm, models[0].synthesis
    reached = _optimise(models, images, lmbda, effort, progress, True, None)
    weights = {f"{name}.{k}": v.detach().clone() for name in ("arm", "synthesis")
               for k, v in getattr(models[0], name).state_dict().items()}
    return weights, reached


def load_prior(model: OverfitCodec, prior: dict) -> None:
    for name in ("arm", "synthesis"):
        getattr(model, name).load_state_dict({k.split(".", 1)[1]: v.float() for k, v in prior.items()
                                              if k.startswith(name + ".")})


def _optimise(models: list[OverfitCodec], targets: list[torch.Tensor], lmbda: float, effort: Effort,
              progress: bool, autocast: bool, report) -> dict:
    from tqdm.auto import tqdm

    torch.set_flush_denormal(True)  # tiny Adam moments otherwise slow every step down ~10x
    networks = [p for net in (models[0].arm, models[0].synthesis) for p in net.parameters()]
    latents = [y for m in models for y in m.latents]
    latent_lr = effort.latent_lr * max(1.0, lmbda / PRIOR_LAMBDA) ** effort.latent_lr_growth
    opt = make_optimizer(torch.optim.Adam, [{"params": latents, "peak": latent_lr},
                                            {"params": networks, "peak": effort.lr}])
    hard_from = int(effort.iterations * (1 - effort.hard_fraction))
    pixels = sum(x.shape[2] * x.shape[3] for x in targets)
    bar = tqdm(range(effort.iterations), desc="encoding", unit="it", disable=not progress, leave=False)
    hot, cold = effort.temperatures
    for it in bar:
        temperature = hot * (cold / hot) ** (it / max(1, hard_from))
        for group in opt.param_groups:
            group["lr"] = group["peak"] * 0.5 * (1 + math.cos(math.pi * it / effort.iterations))
        bits = sq_err = 0
        for model, x in zip(models, targets):
            x_hat, b = model(effort.proxy if it < hard_from else "hard", autocast=autocast, temperature=temperature)
            bits = bits + b
            sq_err = sq_err + F.mse_loss(x_hat, x, reduction="sum") / 3
        mse, bpp = sq_err / pixels, bits / pixels
        loss = bpp + lmbda * 255 ** 2 * mse
        opt.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            continue  # a rare noise draw; the next step draws anew
        loss.backward()
        latent_norm = torch.nn.utils.clip_grad_norm_(latents, float("inf"))
        if not (torch.isfinite(torch.nn.utils.clip_grad_norm_(networks, 1.0)) and torch.isfinite(latent_norm)):
            continue  # never let one bad gradient into Adam's moments
        opt.step()
        if it % 10 == 0 and (progress or report):
            note = f"{bpp.item():.3f} bpp, {_psnr(mse.item()):.2f} dB"
            bar.set_postfix_str(note)
            if report:
                report(it / effort.iterations, f"step {it} of {effort.iterations}: {note}")
    return {"bpp": round(bpp.item(), 4), "psnr": round(_psnr(mse.item()), 3)}


@functools.lru_cache(maxsize=1)
def shipped_prior() -> dict | None:
    """The shipped warm start, or None in an installation without it (encoding starts cold)."""
    from safetensors.torch import load_file

    from ..zoo import ZOO_DIR

    path = ZOO_DIR / f"{PRIOR}.safetensors"
    return {k: v.float() for k, v in load_file(str(path)).items()} if path.is_file() else None


def _grids(model: OverfitCodec) -> list[np.ndarray]:
    return [torch.round(y.detach().clamp(-LATENT_MAX, LATENT_MAX)).long().numpy() for y in model.latents]


def quantize_networks(model: OverfitCodec, x: torch.Tensor, lmbda: float, grids: list[np.ndarray],
                      wave: bs.Wavefront):
    """Choose each network's weight step 2^-k by rate-distortion: the context model's k by its
    parameter bits plus the latents' bits, the synthesis's by its bits plus lambda-weighted error.
    -> (context model, synthesis, the chosen synthesis's squared error per pixel in [0, 1] units)."""
    target = (x[0].permute(1, 2, 0).numpy() * 255).round()
    pixels = x.shape[2] * x.shape[3]

    def arm_cost(k):
        q = quantize_net(model.arm, k, 0)
        return bs.param_bits(q) + bs.latent_bits(q, wave, grids), q

    def synth_cost(k):
        q = quantize_net(model.synthesis, k, ACT_BITS)
        mse = float(np.mean((fixed_synthesis(q, grids).astype(np.float64) - target) ** 2)) / 255 ** 2
        return bs.param_bits(q) + lmbda * 255 ** 2 * mse * pixels, q, mse

    arm = min((arm_cost(k) for k in ARM_WEIGHT_BITS), key=lambda c: c[0])[1]
    _, synth, mse = min((synth_cost(k) for k in SYNTH_WEIGHT_BITS), key=lambda c: c[0])
    return arm, synth, mse


class OverfitCodecPipeline:
    """``compress(image, quality, effort) -> bytes`` and ``decompress(bytes) -> image``."""

    model_id = MODEL_ID
    qualities = len(QUALITY_LAMBDAS)
    default_quality = QUALITY_LAMBDAS.index(PRIOR_LAMBDA) + 1  # the level the warm start was fitted at

    def __init__(self, cfg: OverfitConfig | None = None, effort: str = DEFAULT_EFFORT, warm_start: bool = True):
        self.cfg = cfg or OverfitConfig()
        self.effort = effort
        self.prior = shipped_prior() if warm_start and self.cfg == OverfitConfig() else None

    def _effort(self, effort: str | Effort | None) -> Effort:
        """A preset by name (or an Effort as given); in the dry-run mode it fits for two steps."""
        effort = effort or self.effort
        if not isinstance(effort, Effort):
            if effort not in EFFORTS:
                raise PixelforgeError(f"effort must be one of {', '.join(EFFORTS)}, not {effort!r}")
            effort = EFFORTS[effort]
        return dataclasses.replace(effort, iterations=dryrun.cap(effort.iterations, "steps"))

    def encode(self, image: Image.Image | str | os.PathLike, quality: int | None = None,
               effort: str | Effort | None = None, progress: bool = False, seed: int = 0,
               report=None) -> EncodeResult:
        quality = self.default_quality if quality is None else quality
        if not 1 <= quality <= self.qualities:
            raise PixelforgeError(f"quality must be 1..{self.qualities} for the overfitted codec, not {quality}")
        effort = self._effort(effort)
        image = read_image(image) if isinstance(image, (str, os.PathLike)) else image
        if image.width * image.height > bs.MAX_PIXELS:
            raise PixelforgeError(f"{image.width}x{image.height} px is above the codec's "
                                  f"{bs.MAX_PIXELS / 1e6:.0f} MP limit")
        start = time.perf_counter()
        x, mode, alpha = _image_tensor(image)
        lmbda = QUALITY_LAMBDAS[quality - 1]
        model = fit(x, lmbda, effort, self.cfg, seed=seed, progress=progress, report=report, prior=self.prior)
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            raise PixelforgeError("the encoder's optimisation diverged on this image; try another quality or effort")
        grids = _grids(model)
        wave = bs.Wavefront(image.height, image.width, self.cfg.levels)
        arm, synth, mse = quantize_networks(model, x, lmbda, grids, wave)  # mse: of the decoder's exact pixels
        header = bs.OverfitHeader(mode, image.width, image.height, quality, self.cfg, arm.w_bits, synth.w_bits)
        data = bs.pack(header, bs.encode_params(arm.tensors + synth.tensors), alpha,
                       bs.encode_latents(arm, wave, grids))
        return EncodeResult(data, 8 * len(data) / (image.width * image.height), _psnr(mse),
                            time.perf_counter() - start, effort.iterations)

    def compress(self, image: Image.Image | str | os.PathLike, quality: int | None = None,
                 effort: str | Effort | None = None, progress: bool = False) -> bytes:
        return self.encode(image, quality, effort, progress).data

    def compress_file(self, src: str | os.PathLike, dest: str | os.PathLike, quality: int | None = None,
                      overwrite: bool = False, effort: str | None = None, progress: bool = False) -> dict:
        """Compress an image file to ``dest`` (.pfc); returns sizes, bits per pixel, PSNR and time."""
        from ..runs import atomic_write_bytes

        dest = Path(dest)
        if dest.exists() and not overwrite:
            raise PixelforgeError(f"{dest} exists; pass --overwrite to replace it")
        image = read_image(src)
        quality = self.default_quality if quality is None else quality
        result = self.encode(image, quality, effort, progress)
        atomic_write_bytes(dest, result.data)
        return {"bytes": len(result.data), "bpp": result.bpp, "psnr": result.psnr, "seconds": result.seconds,
                "width": image.width, "height": image.height, "mode": image.mode, "quality": quality,
                "effort": effort or self.effort}

    def decompress(self, data: bytes | str | os.PathLike) -> Image.Image:
        if isinstance(data, (str, os.PathLike)):
            path = Path(data)
            if not path.is_file():
                raise PixelforgeError(f"no file at {path}")
            data = path.read_bytes()
        header, params, alpha, words = bs.unpack(data)
        arm, synth = bs.decode_networks(header, params)
        wave = bs.Wavefront(header.height, header.width, header.cfg.levels)
        grids = bs.decode_latents(arm, wave, words)
        colour = Image.fromarray(fixed_synthesis(synth, grids), mode="RGB")
        return join_alpha(colour, header.mode, alpha, bs.BitstreamError, ".pfc file")
