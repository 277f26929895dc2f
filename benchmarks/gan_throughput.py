"""GAN training throughput: pixelforge's DCGAN step vs a plain fp32 NCHW step, side by side.

Both train the same architecture (``create_model("dcgan")``) at the same batch size on the
same random data, unconditional and class-conditional (10 classes; the default on labelled
data). The baseline is the textbook loop (pytorch/examples' DCGAN): fp32,
NCHW, D's weights receiving gradients during the G update. The pixelforge side is the
real training task (`GANTask.step`) with the runtime's defaults (bf16 autocast where the
CPU has it, channels_last, D frozen during the G update, malloc keeping freed memory). Each
side runs in a process of its own, the two taking turns, so the baseline is a plain PyTorch
process.

    python benchmarks/gan_throughput.py [--steps 15] [--sizes 28,64] [--repeats 3]

The ratio of one run moves with the shared host's load, so ``--repeats N`` measures every
setting N times (in turn, so that a busy spell spreads over the settings) and a goal counts as
met only when the runs' mean ratio minus their standard deviation clears it.

Where a goal is out of reach the rates say why: each side's FLOPs per step (counted by
``torch.utils.flop_counter``; the plain step has more, as it computes D's weight gradients in the
G update), its achieved GFLOP/s, and the rate pixelforge's step would need for the goal, set
against the machine's matrix-product peak in fp32 and bf16, measured in the same run.

Writes benchmarks/results/gan_throughput.json.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

import torch
import torch.nn.functional as F
from _common import summarise, write_results
from profiling import matmul_peak
from torch.utils.flop_counter import FlopCounterMode

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


def gflop_per_step(step, real, labels) -> float:
    """The matrix products' and convolutions' GFLOP in one call of ``step`` (the rest is a rounding error)."""
    with FlopCounterMode(display=False) as counter:
        step(real, labels)
    return counter.get_total_flops() / 1e9


def _side(side: str, cfg: dict, batch_size: int, conn) -> None:
    """One side of a measurement in a process of its own: build the step, then run a block of steps
    per request and answer with the images/s. The plain side never builds a pixelforge Runtime, so its
    process runs with malloc as a plain PyTorch program has it (a CPU Runtime keeps freed memory for
    reuse, :func:`pixelforge.runtime.keep_freed_memory`, which is part of what pixelforge's side measures)."""
    size, channels, num_classes = cfg["image_size"], cfg["channels"], cfg["num_classes"]
    torch.manual_seed(0)
    real = torch.rand(batch_size, channels, size, size) * 2 - 1
    labels = torch.randint(0, num_classes, (batch_size,)) if num_classes else None
    if side == "plain":
        step = plain_step_fn(create_model("dcgan", **cfg), batch_size, GANConfig().latent_dim)
        info = {}
    else:
        rt = Runtime.create("cpu", "auto")
        task = GANTask(create_model("dcgan", **cfg), GANTrainConfig(), rt)
        step, real = task.step, rt.tensor(real)
        info = {"precision": rt.precision, "channels_last": rt.channels_last}
    info["gflop_per_step"] = gflop_per_step(step, real, labels)
    conn.send(info)
    while (steps := conn.recv()) is not None:
        conn.send(images_per_second(step, real, labels, steps, warmup=1))


def measure(size: int, channels: int, num_classes: int, batch_size: int, steps: int, rounds: int) -> dict:
    cfg = dict(image_size=size, channels=channels, num_classes=num_classes)
    context = multiprocessing.get_context("spawn")
    conns, workers = {}, []
    for side in ("plain", "pixelforge"):
        parent, child = context.Pipe()
        worker = context.Process(target=_side, args=(side, cfg, batch_size, child), daemon=True)
        worker.start()
        conns[side] = parent
        workers.append(worker)
    infos = {side: conn.recv() for side, conn in conns.items()}
    flops = {side: info.pop("gflop_per_step") for side, info in infos.items()}
    info = infos["pixelforge"]
    times: dict[str, list[float]] = {"plain": [], "pixelforge": []}
    # Short blocks of steps, the two sides taking turns (one process runs while the other waits),
    # and the median of the per-round ratios: load on this shared machine drifts on a scale of
    # seconds and hits both sides of a round alike.
    for _ in range(rounds):
        for side, conn in conns.items():
            conn.send(steps)
            times[side].append(conn.recv())
    for conn in conns.values():
        conn.send(None)
    for worker in workers:
        worker.join()
    plain, fast = times["plain"], times["pixelforge"]
    ratio = statistics.median(f / p for f, p in zip(fast, plain))
    return {"size": size, "channels": channels, "conditional": bool(num_classes), "batch_size": batch_size,
            **info, "rounds": rounds, "steps_per_round": steps,
            "plain_fp32_nchw_img_s": round(statistics.median(plain), 1),
            "pixelforge_img_s": round(statistics.median(fast), 1),
            "ratio": round(ratio, 2), "goal_ratio": GOALS.get(size),
            "gflop_per_step": {side: round(f, 3) for side, f in flops.items()}}


def setting_row(runs: list[dict]) -> dict:
    """One row from the repeated runs of a setting: each run's ratio, their mean and standard
    deviation, the goal judged on mean minus one standard deviation, and each side's median
    images/s over the runs."""
    ratios = [r["ratio"] for r in runs]
    stats = summarise(ratios)
    mean, std = stats["mean"], stats["std"] or 0.0
    goal = runs[0]["goal_ratio"]
    plain = statistics.median(r["plain_fp32_nchw_img_s"] for r in runs)
    fast = statistics.median(r["pixelforge_img_s"] for r in runs)
    flops, batch = runs[0]["gflop_per_step"], runs[0]["batch_size"]
    rates = {"plain_gflop_s": round(flops["plain"] * plain / batch, 1),
             "pixelforge_gflop_s": round(flops["pixelforge"] * fast / batch, 1)}
    if goal is not None:  # pixelforge's step at the goal: goal x the plain side's images/s
        rates["goal_gflop_s"] = round(flops["pixelforge"] * goal * plain / batch, 1)
    return {**runs[0], "ratio": round(mean, 2), "ratio_std": round(std, 2), "run_ratios": ratios,
            "plain_fp32_nchw_img_s": round(plain, 1), "pixelforge_img_s": round(fast, 1), **rates,
            "goal_met": goal is not None and mean - std >= goal}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10, help="steps per side and round")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeats", type=int, default=3, help="runs of every setting")
    ap.add_argument("--sizes", default="28,64")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    settings = [(size, 1 if size == 28 else 3, num_classes)
                for size in (int(s) for s in args.sizes.split(",")) for num_classes in (0, 10)]
    runs: dict[tuple, list[dict]] = {s: [] for s in settings}
    for repeat in range(args.repeats):
        for size, channels, num_classes in settings:
            batch = args.batch_size if size <= 32 else min(args.batch_size, 64)
            r = measure(size, channels, num_classes, batch, args.steps, args.rounds)
            runs[(size, channels, num_classes)].append(r)
            kind = "conditional" if num_classes else "unconditional"
            print(f"run {repeat + 1}/{args.repeats} {size:>3}px x{channels} {kind:<13} batch {batch:>3}: plain fp32 "
                  f"NCHW {r['plain_fp32_nchw_img_s']:>7.1f} img/s | pixelforge ({r['precision']}, channels_last) "
                  f"{r['pixelforge_img_s']:>7.1f} img/s | ratio {r['ratio']:.2f}x", flush=True)
    rows = [setting_row(runs[s]) for s in settings]
    peaks = {"bf16": round(matmul_peak(torch.bfloat16), 1), "fp32": round(matmul_peak(torch.float32), 1)}
    print(f"\nmatmul peak 2048^3: bf16 {peaks['bf16']} GFLOP/s, fp32 {peaks['fp32']} GFLOP/s")
    for r in rows:
        kind = "conditional" if r["conditional"] else "unconditional"
        goal = (f"; {r['goal_ratio']}x needs {r['goal_gflop_s']:.0f} ({r['goal_gflop_s'] / peaks['bf16']:.0%})"
                if "goal_gflop_s" in r else "")
        print(f"{r['size']} px {kind}: plain fp32 at {r['plain_gflop_s']:.0f} GFLOP/s ({r['plain_gflop_s'] / peaks['fp32']:.0%} "
              f"of the fp32 peak), pixelforge at {r['pixelforge_gflop_s']:.0f} ({r['pixelforge_gflop_s'] / peaks['bf16']:.0%} "
              f"of the bf16 peak){goal}")
    print(f"\n| setting | plain fp32 NCHW img/s | pixelforge img/s | ratio, mean +- std of {args.repeats} | goal |")
    print("|---|---:|---:|---|---|")
    for r in rows:
        kind = "conditional" if r["conditional"] else "unconditional"
        verdict = "met" if r["goal_met"] else "missed"
        print(f"| {r['size']} px, {kind} | {r['plain_fp32_nchw_img_s']} | {r['pixelforge_img_s']} | "
              f"{r['ratio']:.2f} +- {r['ratio_std']:.2f} ({', '.join(f'{x:.2f}' for x in r['run_ratios'])}) | "
              f"{r['goal_ratio']}x: {verdict} |")
    if not args.no_save:
        write_results("gan_throughput", {"goal_ratio": GOALS, "repeats": args.repeats, "matmul_peak_gflop_s": peaks,
                                         "results": rows})


if __name__ == "__main__":
    main()
