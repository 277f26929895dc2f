"""Noise schedules and samplers for diffusion models, kept apart from the network weights.

Schedules (``T`` steps, ``abar_t`` = share of the signal's variance left at step t):
- ``linear``: beta from 1e-4 to 0.02 (Ho et al. 2020).
- ``cosine``: abar_t = f(t) / f(0) with f(t) = cos^2(((t/T + s) / (1 + s)) * pi/2), s = 0.008,
  betas capped at 0.999
  (Nichol & Dhariwal 2021): less signal is destroyed early on, better for small images.

Sampling walks a decreasing sub-sequence t_S > ... > t_1 of the T training steps. At each step
the network's output gives the noise estimate eps and the clean estimate
x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t); the DDIM update (Song et al. 2021) is

    x_prev = sqrt(abar_prev) x_0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z,
    sigma  = eta * sqrt((1 - abar_prev) / (1 - abar_t)) * sqrt(1 - abar_t / abar_prev).

``eta = 0`` is deterministic DDIM; ``eta = 1`` is ancestral DDPM sampling (on all T steps it is
exactly the DDPM posterior). Classifier-free guidance (Ho & Salimans 2022) mixes conditional and
unconditional predictions, eps = eps_u + s (eps_c - eps_u); ``s = 1`` is plain conditioning.
``dpm++`` is DPM-Solver++(2M) (Lu et al. 2022), a second-order multistep solver of the same
probability-flow ODE in lambda = log(alpha / sigma): with h = lambda_prev - lambda_t and the
previous step's ratio r = h_last / h,

    x_prev = (sigma_prev / sigma_t) x_t + alpha_prev (1 - e^-h) D,
    D      = (1 + 1/(2r)) x_0 - 1/(2r) x_0_last      (D = x_0 on the first and last step).

Its first-order form is exactly DDIM; the second-order term removes most of DDIM's
discretisation error, so 25 steps land close to what DDIM needs many more for.
Inpainting replaces the known pixels by a correctly-noised copy of the original after every
step and re-noises a few times per step so the two regions agree (RePaint, Lugmayr et al. 2022).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from . import dryrun
from .errors import PixelforgeError

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "v")
SOLVERS = ("ddim", "dpm++")
# The samplers users pick by name (CLI --sampler, the studio): a solver and its eta.
SAMPLERS = {"ddim": {"solver": "ddim", "eta": 0.0}, "ddpm": {"solver": "ddim", "eta": 1.0},
            "dpm++": {"solver": "dpm++", "eta": 0.0}}


@dataclass
class NoiseSchedule:
    kind: str = "cosine"
    timesteps: int = 1000

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise PixelforgeError(f"unknown noise schedule {self.kind!r}; use one of {', '.join(SCHEDULES)}")
        if not 2 <= self.timesteps <= 100_000:
            raise PixelforgeError(f"diffusion needs 2..100000 timesteps, not {self.timesteps}")
        T = self.timesteps
        if self.kind == "linear":
            betas = torch.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T, dtype=torch.float64)
            abar = torch.cumprod(1 - betas, 0)
        else:
            s = 0.008
            f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
            abar = torch.cumprod(1 - betas, 0)
        self.alphas_cumprod = abar  # float64, index t = 0..T-1

    def _abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return self.alphas_cumprod.to(like.device)[t].to(torch.float32).view(-1, *([1] * (like.dim() - 1)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Sample q(x_t | x_0)."""
        a = self._abar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def target(self, prediction: str, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the network is trained to output."""
        if prediction == "eps":
            return noise
        a = self._abar(t, x0)
        return a.sqrt() * noise - (1 - a).sqrt() * x0

    def split(self, prediction: str, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
        """(x_0 estimate, eps estimate) from the network output ``out``."""
        a = self._abar(t, x_t)
        if prediction == "eps":
            eps = out
            x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
        else:
            x0 = a.sqrt() * x_t - (1 - a).sqrt() * out
            eps = (1 - a).sqrt() * x_t + a.sqrt() * out
        return x0, eps

    def sampling_steps(self, steps: int) -> list[int]:
        """``steps`` timesteps from T-1 down to 0, evenly spaced ("trailing" spacing)."""
        if not 1 <= steps <= self.timesteps:
            raise PixelforgeError(f"steps must lie in 1..{self.timesteps} (the training schedule's length), not {steps}")
        T = self.timesteps
        ts = (torch.arange(T, 0, -T / steps, dtype=torch.float64).round().long() - 1).clamp(min=0).tolist()
        return sorted(set(ts), reverse=True)


Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> network output


def check_solver(solver: str, eta: float = 0.0, resample: int = 1) -> None:
    if solver not in SOLVERS:
        raise PixelforgeError(f"unknown sampler {solver!r}; use one of {', '.join(SOLVERS)}")
    if eta < 0:
        raise PixelforgeError(f"eta must be >= 0, not {eta}")
    if resample < 1:
        raise PixelforgeError(f"resample must be at least 1, not {resample}")
    if solver == "dpm++" and (eta > 0 or resample > 1):
        raise PixelforgeError("the dpm++ sampler is deterministic: it takes no eta and no inpainting resampling")


def _log_snr_half(abar: float) -> float:
    """lambda = log(alpha / sigma) = log(abar / (1 - abar)) / 2."""
    return 0.5 * math.log(abar / (1 - abar))


@torch.inference_mode()
def sample(denoise: Denoiser, schedule: NoiseSchedule, prediction: str, shape: tuple, steps: int = 50,
           eta: float = 0.0, generator: torch.Generator | None = None, device: torch.device | str = "cpu",
           known: torch.Tensor | None = None, mask: torch.Tensor | None = None, resample: int = 1,
           clip: bool = True, progress: Callable[[int], None] | None = None, solver: str = "ddim") -> torch.Tensor:
    """Run the reverse process from pure noise; returns x_0 in [-1, 1] (float32, on ``device``).

    ``known``/``mask``: inpainting; ``mask`` is 1 where ``known`` holds the pixels to keep.
    ``resample``: RePaint jumps per step (1 = none). ``progress(i)`` is called after each step.
    ``solver``: ``ddim`` (any ``eta``) or ``dpm++`` (deterministic, ``eta`` 0, no RePaint jumps).
    """
    check_solver(solver, eta, resample)
    steps, resample = dryrun.cap(steps, "sampling_steps"), dryrun.cap(resample, "sampling_steps")
    ts = schedule.sampling_steps(steps)
    abar = schedule.alphas_cumprod

    def noise_like(x):
        return torch.randn(x.shape, generator=generator, dtype=torch.float32).to(device)

    x = torch.randn(shape, generator=generator, dtype=torch.float32).to(device)
    x0_last, h_last = None, None  # dpm++: the previous step's x_0 estimate and log-SNR step
    if known is not None:
        known, mask = known.to(device, torch.float32), mask.to(device, torch.float32)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        a_t = float(abar[t])
        a_prev = float(abar[t_prev]) if t_prev >= 0 else 1.0
        for r in range(resample):
            tt = torch.full((shape[0],), t, device=device, dtype=torch.long)
            x0, eps = schedule.split(prediction, denoise(x, tt).float(), x, tt)
            if clip:
                x0 = x0.clamp(-1, 1)
                eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
            sigma = eta * math.sqrt((1 - a_prev) / (1 - a_t)) * math.sqrt(max(0.0, 1 - a_t / a_prev))
            if solver == "dpm++" and t_prev >= 0:
                h = _log_snr_half(a_prev) - _log_snr_half(a_t)
                d = x0
                if x0_last is not None:
                    half_over_r = h / (2 * h_last)
                    d = (1 + half_over_r) * x0 - half_over_r * x0_last
                x_prev = math.sqrt((1 - a_prev) / (1 - a_t)) * x + math.sqrt(a_prev) * -math.expm1(-h) * d
                x0_last, h_last = x0, h
            else:  # DDIM, and dpm++'s last step (to t = -1, where x_prev = x_0)
                x_prev = math.sqrt(a_prev) * x0 + math.sqrt(max(0.0, 1 - a_prev - sigma ** 2)) * eps
            if sigma > 0:
                x_prev = x_prev + sigma * noise_like(x)
            if known is not None:
                on_known = math.sqrt(a_prev) * known + math.sqrt(1 - a_prev) * noise_like(x) if t_prev >= 0 else known
                x_prev = mask * on_known + (1 - mask) * x_prev
            if r + 1 < resample and t_prev >= 0:
                # Jump back to t: x_t ~ q(x_t | x_prev), then denoise again.
                ratio = a_t / a_prev
                x = math.sqrt(ratio) * x_prev + math.sqrt(1 - ratio) * noise_like(x)
            else:
                x = x_prev
                break
        if progress is not None:
            progress(i + 1)
    return x.clamp(-1, 1)
