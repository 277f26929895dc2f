"""GAN training throughput: pixelforge's DCGAN step vs a plain fp32 NCHW step, side by side.

Both train the same architecture (``create_model("dcgan")``) at the same batch size on the
same random data, unconditional and class-conditional (10 classes; the default on labelled
data). The baseline is the textbook loop (pytorch/examples' DCGAN): fp32,
NCHW, D's weights receiving gradients during the G update. The pixelforge side is the
real training task (`GANTask.step`) with the runtime's defaults (bf16 autocast where the
CPU has it, channels_last, D frozen during the G update).

    python benchmarks/gan_throughput.py [--steps 15] [--sizes 28,64]

Writes benchmarks/results/gan_throughput.json.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import write_results
import torch.nn.functional as F

from pixelforge.models.gan import GANConfig
from pixelforge.registry import create_model
from pixelforge.runtime import Runtime
from pixelforge.training.gan import GANTask, GANTrainConfig

GOALS = {28: 2.5, 64: 3.0}


def plain_step_fn(gan, batch_size: int, latent: int):
    G, D = gan.generator, gan.discriminator
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(real, y):
        z = torch.randn(batch_size, latent)
        fake = G(z, y)
        d_loss = F.softplus(-D(real, y)).mean() + F.softplus(D(fake.detach(), y)).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = F.softplus(-D(fake, y)).mean()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()

    return step


def images_per_second(step, real, labels, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        step(real, labels)
    t = time.perf_counter()
    for _ in range(steps):
        step(real, labels)
    return steps * real.shape[0] / (time.perf_counter() - t)


def measure(size: int, channels: int, num_classes: int, batch_size: int, steps: int, rounds: int) -> dict:
    cfg = dict(image_size=size, channels=channels, num_classes=num_classes)
    real = torch.rand(batch_size, channels, size, size) * 2 - 1
    labels = torch.randint(0, num_classes, (batch_size,)) if num_classes else None
    latent = GANConfig().latent_dim
    rt = Runtime.create("cpu", "auto")
    torch.manual_seed(0)
    plain_step = plain_step_fn(create_model("dcgan", **cfg), batch_size, latent)
    torch.manual_seed(0)
    task = GANTask(create_model("dcgan", **cfg), GANTrainConfig(), rt)
    real_rt = rt.tensor(real)
    plain, fast = [], []
    # Short blocks of steps, the two sides taking turns, and the median of the per-round ratios:
    # load on this shared machine drifts on a scale of seconds and hits both sides of a round alike.
    for _ in range(rounds):
        plain.append(images_per_second(plain_step, real, labels, steps, warmup=1))
        fast.append(images_per_second(task.step, real_rt, labels, steps, warmup=1))
    ratio = statistics.median(f / p for f, p in zip(fast, plain))
    return {"size": size, "channels": channels, "conditional": bool(num_classes), "batch_size": batch_size,
            "precision": rt.precision, "channels_last": rt.channels_last, "rounds": rounds, "steps_per_round": steps,
            "plain_fp32_nchw_img_s": round(statistics.median(plain), 1),
            "pixelforge_img_s": round(statistics.median(fast), 1),
            "ratio": round(ratio, 2), "goal_ratio": GOALS.get(size), "goal_met": ratio >= GOALS.get(size, 0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10, help="steps per side and round")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--sizes", default="28,64")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        channels = 1 if size == 28 else 3
        batch = args.batch_size if size <= 32 else min(args.batch_size, 64)
        for num_classes in (0, 10):
            rows.append(measure(size, channels, num_classes, batch, args.steps, args.rounds))
            r = rows[-1]
            kind = "conditional" if num_classes else "unconditional"
            print(f"{size:>3}px x{channels} {kind:<13} batch {batch:>3}: plain fp32 NCHW "
                  f"{r['plain_fp32_nchw_img_s']:>7.1f} img/s | pixelforge ({r['precision']}, channels_last) "
                  f"{r['pixelforge_img_s']:>7.1f} img/s | ratio {r['ratio']:.2f}x (goal {r['goal_ratio']}x)")
    if not args.no_save:
        write_results("gan_throughput", {"goal_ratio": GOALS, "results": rows})


if __name__ == "__main__":
    main()
