"""Noise schedules and samplers, checked against closed forms: with an oracle denoiser the
samplers must reproduce the data distribution they are built for."""

import math

import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.schedulers import SCHEDULES, NoiseSchedule, sample


@pytest.mark.parametrize("kind", SCHEDULES)
def test_schedule_shape(kind):
    s = NoiseSchedule(kind, 1000)
    a = s.alphas_cumprod
    assert a.shape == (1000,) and torch.all(a[1:] < a[:-1])  # signal only ever decreases
    assert a[0] > 0.999 and a[-1] < 1e-3
    if kind == "linear":
        assert a[0].item() == pytest.approx(1 - 1e-4)
        assert a[-1].item() == pytest.approx(math.prod(1 - (1e-4 + (0.02 - 1e-4) * i / 999) for i in range(1000)), rel=1e-6)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_split_inverts_target(prediction):
    s = NoiseSchedule("cosine", 100)
    x0, eps = torch.rand(5, 1, 4, 4) * 2 - 1, torch.randn(5, 1, 4, 4)
    t = torch.tensor([0, 10, 50, 90, 99])
    x_t = s.add_noise(x0, eps, t)
    x0_hat, eps_hat = s.split(prediction, s.target(prediction, x0, eps, t), x_t, t)
    assert torch.allclose(x0_hat, x0, atol=1e-3) and torch.allclose(eps_hat, eps, atol=1e-3)


def test_sampling_steps():
    s = NoiseSchedule("linear", 1000)
    ts = s.sampling_steps(50)
    assert len(ts) == 50 and ts[0] == 999 and ts == sorted(ts, reverse=True) and ts[-1] >= 0
    assert s.sampling_steps(1000) == list(range(999, -1, -1))
    for bad in (0, 1001):
        with pytest.raises(PixelforgeError):
            s.sampling_steps(bad)
    with pytest.raises(PixelforgeError):
        NoiseSchedule("quadratic")


def gaussian_oracle(schedule, mu, std):
    """The exact eps-prediction for data x_0 ~ N(mu, std^2) per pixel."""
    def denoise(x, t):
        a = schedule.alphas_cumprod[t].float().view(-1, 1, 1, 1)
        x0 = mu + a.sqrt() * std ** 2 / (a * std ** 2 + 1 - a) * (x - a.sqrt() * mu)
        return (x - a.sqrt() * x0) / (1 - a).sqrt()
    return denoise


@pytest.mark.parametrize("eta,steps,rel", [(0.0, 250, 0.05), (0.0, 1000, 0.01), (1.0, 1000, 0.03)])
def test_samplers_reproduce_a_gaussian(eta, steps, rel):
    """DDIM (probability-flow ODE) and DDPM (ancestral) both land on the data distribution;
    with few DDIM steps the discretisation shrinks the spread (0.2 -> 0.17 at 50 steps)."""
    s = NoiseSchedule("linear", 1000)
    mu, std = 0.3, 0.2
    g = torch.Generator().manual_seed(0)
    x = sample(gaussian_oracle(s, mu, std), s, "eps", (2000, 1, 2, 2), steps=steps, eta=eta, generator=g, clip=False)
    assert x.mean().item() == pytest.approx(mu, abs=0.01)
    assert x.std().item() == pytest.approx(std, rel=rel)


def test_dpm_solver_follows_the_exact_ode_more_closely_than_ddim():
    """For Gaussian data the probability-flow ODE is linear: each x_T maps to
    sqrt(abar_t) mu + (s_t / s_T)(x_T - sqrt(abar_T) mu), s_t^2 = abar_t std^2 + 1 - abar_t. After
    the walk's last step both samplers jump to the posterior mean of x_0. DDIM's error per sample
    falls like 1/steps; DPM-Solver++(2M) starts several times lower and falls faster. Its first
    step, with no history yet, is DDIM's: two steps of each (that step, then the jump) agree."""
    s = NoiseSchedule("linear", 1000)
    mu, std = 0.0, 0.5
    den = gaussian_oracle(s, mu, std)

    def error(solver, steps):
        x = sample(den, s, "eps", (4000, 1, 1, 1), steps=steps, solver=solver, clip=False,
                   generator=torch.Generator().manual_seed(0))
        x_T = torch.randn((4000, 1, 1, 1), generator=torch.Generator().manual_seed(0))
        a_T, a = float(s.alphas_cumprod[-1]), float(s.alphas_cumprod[s.sampling_steps(steps)[-1]])
        s_T, s_t = math.sqrt(a_T * std ** 2 + 1 - a_T), math.sqrt(a * std ** 2 + 1 - a)
        x_t = math.sqrt(a) * mu + s_t / s_T * (x_T - math.sqrt(a_T) * mu)
        exact = mu + math.sqrt(a) * std ** 2 / s_t ** 2 * (x_t - math.sqrt(a) * mu)
        return (x - exact.clamp(-1, 1)).abs().max().item()

    for steps in (10, 25, 100):
        assert error("dpm++", steps) < error("ddim", steps) / 3
    assert error("dpm++", 250) < 0.003 < error("ddim", 250)
    assert error("dpm++", 100) / error("dpm++", 250) > 3.5  # second order: 2.5x the steps, about 6x less error
    two = [sample(den, s, "eps", (8, 1, 2, 2), steps=2, solver=k, generator=torch.Generator().manual_seed(3))
           for k in ("ddim", "dpm++")]
    assert torch.allclose(*two, atol=1e-5)


def test_seeds_make_samples_reproducible():
    s = NoiseSchedule("cosine", 100)
    den = gaussian_oracle(s, 0.0, 0.5)

    def run(eta, seed):
        return sample(den, s, "eps", (4, 1, 3, 3), steps=10, eta=eta, generator=torch.Generator().manual_seed(seed))

    for eta in (0.0, 1.0):
        assert torch.equal(run(eta, 1), run(eta, 1))
        assert not torch.allclose(run(eta, 1), run(eta, 2))


def test_inpainting_keeps_known_pixels_and_fills_consistently():
    """Data: every pixel equals one shared value v ~ N(0, 0.5^2) per image. Given the left half,
    the filled right half must take the same value."""
    s = NoiseSchedule("linear", 1000)
    n, side = 8, 4

    def oracle(x, t):  # exact posterior mean of a fully-correlated Gaussian image
        a = s.alphas_cumprod[t].float().view(-1, 1, 1, 1)
        var = 0.25
        d = side * side
        mean_xt = x.mean(dim=(1, 2, 3), keepdim=True)
        v_hat = a.sqrt() * var * d * mean_xt / (a * var * d + 1 - a)
        return (x - a.sqrt() * v_hat) / (1 - a).sqrt()

    values = torch.linspace(-0.6, 0.6, n).view(n, 1, 1, 1)
    known = values.expand(n, 1, side, side).clone()
    mask = torch.zeros(1, 1, side, side)
    mask[..., :, :2] = 1
    g = torch.Generator().manual_seed(0)
    x = sample(oracle, s, "eps", (n, 1, side, side), steps=50, generator=g, known=known, mask=mask.expand(n, 1, side, side),
               resample=4)
    assert torch.allclose(x[..., :2], known[..., :2], atol=1e-6)
    assert torch.allclose(x[..., 2:], known[..., 2:], atol=0.08)


def test_bad_sampler_arguments():
    s = NoiseSchedule("linear", 10)
    den = gaussian_oracle(s, 0.0, 1.0)
    with pytest.raises(PixelforgeError):
        sample(den, s, "eps", (1, 1, 2, 2), steps=5, eta=-1)
    with pytest.raises(PixelforgeError):
        sample(den, s, "eps", (1, 1, 2, 2), steps=11)
    with pytest.raises(PixelforgeError, match="unknown sampler"):
        sample(den, s, "eps", (1, 1, 2, 2), steps=5, solver="euler")
    with pytest.raises(PixelforgeError, match="deterministic"):
        sample(den, s, "eps", (1, 1, 2, 2), steps=5, solver="dpm++", eta=1)
