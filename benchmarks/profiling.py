"""Where the time goes: an operator-level profile of the hot loops on this CPU.

For each workload (the default GAN training step at 28 px, conditional; the default
conditional diffusion U-Net training step; the x4 upscaler on a 256x256 input; the
feed-forward style network on a 512x512 photo) this runs the real code of the package under
``torch.profiler`` and groups the operators' own time into

- phase: forward, backward (inside the autograd engine), optimizer (inside
  ``Optimizer.step``/``zero_grad``), EMA (the weight average after the step);
- group: convolution, matmul, normalisation, activation, copies (dtype and memory-format
  conversions, ``copy_``/``_to_copy``/``contiguous``), other element-wise.

FLOPs come from ``torch.utils.flop_counter`` (convolutions and matmuls); achieved GFLOP/s
per group is set against the machine's own matmul peak in bf16 and fp32, measured in the
same run. The profiler adds overhead per operator, so the wall time per step is measured
again without it.

    python benchmarks/profiling.py [--workloads gan,gan64,diffusion,upscale,style] [--steps 10]
    PIXELFORGE_DATA=../shared/data python benchmarks/profiling.py --probes   # the micro-measurements

Writes benchmarks/results/profile.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from _common import RESULTS, write_results
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

# An operator belongs to the first group one of whose words its name contains ...
GROUPS = {
    "convolution": ("conv",),
    "matmul": ("mm", "matmul", "linear", "scaled_dot_product"),
    "normalisation": ("batch_norm", "group_norm", "layer_norm", "instance_norm"),
    "activation": ("relu", "threshold", "silu", "gelu", "tanh", "sigmoid", "elu"),
}
# ... or, failing that, to "copies" when it is one of these (memory movement, no arithmetic).
COPIES = {"copy_", "_to_copy", "to", "contiguous", "clone", "empty", "empty_strided", "empty_like", "as_strided",
          "_reshape_alias", "view", "reshape", "permute", "transpose", "t", "expand"}
FLOP_GROUPS = {"convolution": "convolution", "convolution_backward": "convolution", "mm": "matmul",
               "addmm": "matmul", "bmm": "matmul", "baddbmm": "matmul",
               "_scaled_dot_product_efficient_attention": "matmul",
               "_scaled_dot_product_flash_attention": "matmul",
               "_scaled_dot_product_flash_attention_for_cpu": "matmul"}


def op_group(name: str) -> str:
    base = name.split("::")[-1]
    for group, words in GROUPS.items():
        if any(word in base for word in words):
            return group
    return "copies" if base in COPIES else "elementwise/other"


def phase_of(event) -> str:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("autograd::engine::evaluate_function"):
            return "backward"
        if parent.name.startswith("Optimizer."):
            return "optimizer"
        if parent.name == "pixelforge::ema":
            return "ema"
        parent = parent.cpu_parent
    return "forward"


# -- workloads: each returns a callable that runs one step of the real code ------------------

def gan_workload(conditional: bool = True, size: int = 28, label_ema: bool = True):
    from pixelforge.registry import create_model
    from pixelforge.runtime import Runtime
    from pixelforge.training.gan import GANTask, GANTrainConfig

    torch.manual_seed(0)
    channels, n_cls = (1, 10 if conditional else 0) if size == 28 else (3, 0)
    rt = Runtime.create("cpu", "auto")
    task = GANTask(create_model("dcgan", image_size=size, channels=channels, num_classes=n_cls),
                   GANTrainConfig(), rt)
    if label_ema:
        _label_ema(task)
    real = rt.tensor(torch.rand(64, channels, size, size) * 2 - 1)
    labels = torch.randint(0, n_cls, (64,)) if n_cls else None
    return lambda: task.step(real, labels)


def diffusion_workload(label_ema: bool = True):
    from pixelforge.registry import create_model
    from pixelforge.runtime import Runtime
    from pixelforge.training.diffusion import DiffusionTask, DiffusionTrainConfig

    torch.manual_seed(0)
    rt = Runtime.create("cpu", "auto")
    task = DiffusionTask(create_model("unet", image_size=28, channels=1, num_classes=10), DiffusionTrainConfig(), rt)
    if label_ema:
        _label_ema(task)
    x = rt.tensor(torch.rand(64, 1, 28, 28) * 2 - 1)
    labels = torch.randint(0, 10, (64,))
    return lambda: task.step(x, labels)


def upscale_workload():
    from pixelforge.pipelines.sr import open_upscaler

    torch.manual_seed(0)
    pipe = open_upscaler(None, 4)
    x = torch.rand(3, 256, 256)
    return lambda: pipe.upscale_tensor(x)


def style_workload():
    from pixelforge.registry import create_model

    torch.manual_seed(0)
    net = create_model("johnson").eval()
    x = torch.rand(1, 3, 512, 512)

    def run():
        with torch.no_grad():
            return net(x)

    return run


def adain_workload():
    """AdaIN inference as ``pixelforge stylize --model`` runs it: a 512x512 photo, the style at 128 px."""
    from pixelforge.pipelines.stylizer import StylizerPipeline
    from pixelforge.registry import create_model

    torch.manual_seed(0)
    pipe = StylizerPipeline(create_model("adain"))
    photo, style = torch.rand(3, 512, 512), torch.rand(3, 128, 96)
    return lambda: pipe.run_tensor(photo, style, 1.0)


WORKLOADS = {
    "gan": ("GAN training step, 28 px, conditional (default), batch 64", gan_workload),
    "gan64": ("GAN training step, 64 px RGB, unconditional, batch 64", lambda: gan_workload(False, 64)),
    "diffusion": ("diffusion U-Net training step, 28 px, conditional (default), batch 64", diffusion_workload),
    "upscale": ("x4 upscaler (photos-sr-x4-v1), 256x256 input -> 1024x1024", upscale_workload),
    "style": ("feed-forward style network (johnson), 512x512, inference", style_workload),
}


def _label_ema(task) -> None:
    """Mark the EMA update in the profile (it runs after the optimizer step)."""
    update = task.ema.update

    def labelled(model):
        with torch.profiler.record_function("pixelforge::ema"):
            update(model)

    task.ema.update = labelled


# -- measuring ----------------------------------------------------------------------------

def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def seconds_per_step(step, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps


def flops_by_group(step) -> dict[str, float]:
    with FlopCounterMode(display=False) as counter:
        step()
    out: dict[str, float] = defaultdict(float)
    for op, flops in counter.get_flop_counts().get("Global", {}).items():
        name = str(op).split(".")[-1]
        group = FLOP_GROUPS.get(name, "other")
        # a matrix product's op does not say its phase (linear layers' backward, and the weight gradients of
        # pixelforge.nn.gemm_conv, are products too), so matmuls are counted over both phases together
        phase = "all" if group == "matmul" else "backward" if name.endswith("backward") else "forward"
        out[f"{group}_{phase}"] += flops
    return dict(out)


def profile_workload(step, steps: int) -> dict:
    wall = seconds_per_step(step, steps)
    flops = flops_by_group(step)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    table: dict[tuple[str, str], float] = defaultdict(float)
    for ev in prof.events():
        if ev.name.startswith(("autograd::engine", "Optimizer.", "pixelforge::")) or ev.name.endswith("Backward0"):
            continue  # wrappers: their work is in the operators beneath them
        table[(phase_of(ev), op_group(ev.name))] += ev.self_cpu_time_total / 1e6 / steps
    profiled = sum(table.values())
    rows = [{"phase": p, "group": g, "ms_per_step": round(s * 1e3, 2), "share": round(s / profiled, 3)}
            for (p, g), s in sorted(table.items(), key=lambda kv: -kv[1])]
    achieved = {}
    for key, fl in flops.items():
        group, direction = key.rsplit("_", 1)
        phases = {"backward": ("backward",), "forward": ("forward",)}.get(direction, ("forward", "backward"))
        secs = sum(s for (p, g), s in table.items() if g == group and p in phases)
        if secs > 0 and group != "other":
            achieved[key] = {"gflop_per_step": round(fl / 1e9, 3), "ms_per_step": round(secs * 1e3, 2),
                             "gflop_s": round(fl / 1e9 / secs, 1)}
    total_flops = sum(flops.values())
    return {"wall_ms_per_step": round(wall * 1e3, 2), "profiled_ms_per_step": round(profiled * 1e3, 2),
            "gflop_per_step": round(total_flops / 1e9, 3), "gflop_s_overall": round(total_flops / 1e9 / wall, 1),
            "rows": rows, "group_shares": group_shares(table, profiled), "achieved": achieved}


def group_shares(table: dict, profiled: float) -> dict:
    """Each group's share of the profiled time, all phases together."""
    totals: dict[str, float] = defaultdict(float)
    for (_, group), secs in table.items():
        totals[group] += secs
    return {group: round(secs / profiled, 3) for group, secs in sorted(totals.items(), key=lambda kv: -kv[1])}


# -- probes: the micro-measurements behind the changes in docs/performance.md -----------------

def _micro(fn, reps: int = 30) -> float:
    for _ in range(3):
        fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps * 1e3


def _timed(fn) -> float:
    """Seconds one call of ``fn`` takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# DCGAN's strided 4x4 layers whose maps pixelforge.nn.gemm_conv computes as matrix products:
# (batch, input channels, input size, output channels)
CONV_PROBES = ((64, 64, 14, 128), (64, 128, 16, 256), (64, 256, 8, 512))


def conv_path_probes() -> dict:
    """oneDNN's bf16 kernels against the matrix products of pixelforge.nn.gemm_conv, per pass,
    in ms and GFLOP/s, for the layers of CONV_PROBES."""
    import torch.nn.functional as F

    from pixelforge.nn.gemm_conv import as_rows, col2im, conv_weight_grad, im2col, weight_matrix

    rows = []
    for n, c, size, o in CONV_PROBES:
        cl = torch.channels_last
        x = torch.randn(n, c, size, size, dtype=torch.bfloat16).contiguous(memory_format=cl)
        w = torch.randn(o, c, 4, 4, dtype=torch.bfloat16).contiguous(memory_format=cl)
        out = size // 2
        g = torch.randn(n, o, out, out, dtype=torch.bfloat16).contiguous(memory_format=cl)
        w_rows, g_rows = weight_matrix(w), as_rows(g)

        def onednn(mask):
            return lambda: torch.ops.aten.convolution_backward(g, x, w, None, [2, 2], [1, 1], [1, 1], False, [0, 0], 1,
                                                               mask)
        passes = {
            "forward": (lambda: F.conv2d(x, w, None, 2, 1),
                        lambda: im2col(x, (4, 4), (2, 2), (1, 1), (out, out)) @ w_rows.t()),
            "weight_gradient": (onednn([False, True, False]), lambda: conv_weight_grad(x, g, (4, 4), (2, 2), (1, 1))),
            "input_gradient": (onednn([True, False, False]),
                               lambda: col2im(g_rows @ w_rows, n, (out, out), (4, 4), (2, 2), (1, 1), (size, size))),
        }
        gflop = 2 * n * out * out * o * c * 16 / 1e9
        row = {"layer": f"{n}x{c}x{size}x{size} -> {o} channels, 4x4 stride 2", "output_positions": out * out}
        for name, (plain, product) in passes.items():
            ms = {"onednn_ms": round(_micro(plain), 2), "product_ms": round(_micro(product), 2)}
            row[name] = {**ms, **{k.replace("_ms", "_gflop_s"): round(gflop / v * 1e3, 1) for k, v in ms.items()}}
        rows.append(row)
    return {"precision": "bf16, channels_last", "layers": rows}


def label_input_probe(rounds: int = 8, steps: int = 25) -> dict:
    """The clusters recipe's whole training step (50 clusters, 28 px, batch 64) with G taking the
    label concatenated to z (the default) and as a per-class bias (``--label-input bias``), taking
    turns for ``rounds`` rounds; medians in ms."""
    import statistics

    from pixelforge.registry import create_model
    from pixelforge.runtime import Runtime
    from pixelforge.training.gan import GANTask, GANTrainConfig

    rt = Runtime.create("cpu", "auto")
    real = rt.tensor(torch.rand(64, 1, 28, 28) * 2 - 1)
    labels = torch.randint(0, 50, (64,))
    steps_by_input = {}
    for label_input in ("concat", "bias"):
        torch.manual_seed(0)
        gan = create_model("dcgan", num_classes=50, clusters=50, label_input=label_input)
        task = GANTask(gan, GANTrainConfig(), rt)
        steps_by_input[label_input] = lambda task=task: task.step(real, labels)
    times: dict[str, list[float]] = {k: [] for k in steps_by_input}
    for _ in range(rounds):
        for k, step in steps_by_input.items():
            times[k].append(_micro(step, steps))
    return {"rounds": rounds, "steps_per_round": steps,
            **{f"{k}_ms": round(statistics.median(v), 2) for k, v in times.items()}}


def probes() -> dict:
    import io

    import torch.nn.functional as F

    out = {"generator_label_input_step": label_input_probe()}
    cl = torch.channels_last
    x = torch.randn(64, 64, 14, 14, dtype=torch.bfloat16).contiguous(memory_format=cl)
    grads = {"matching": torch.randn_like(x), "mixed": torch.randn(64, 64, 14, 14, dtype=torch.bfloat16)}
    out["leaky_relu_backward_ms"] = {
        "shape": "64x64x14x14 bf16, activation channels_last",
        **{f"{k}_formats": round(_micro(lambda g=g: torch.ops.aten.leaky_relu_backward(g, x, 0.2, True)), 3)
           for k, g in grads.items()}}
    out["strided_conv_bf16"] = conv_path_probes()
    img = torch.rand(1, 3, 256, 256)
    out["bicubic_x4_256px_ms"] = {
        fmt: round(_micro(lambda t=t: F.interpolate(t, scale_factor=4, mode="bicubic", align_corners=False), 10), 2)
        for fmt, t in (("nchw", img), ("channels_last", img.contiguous(memory_format=cl)))}
    photo = Path(os.environ.get("PIXELFORGE_DATA", "")) / "photos" / "dune.png"
    if photo.is_file():
        from PIL import Image

        with Image.open(photo) as im:
            big = im.convert("RGB").resize((im.width * 2, im.height * 2), Image.BICUBIC)
        from pixelforge.imageio import encode_png

        def pillow(level: int) -> bytes:
            buf = io.BytesIO()
            big.save(buf, format="PNG", compress_level=level)
            return buf.getvalue()

        rows = {}
        for name, encode in (("level_1", lambda: pillow(1)), ("level_6", lambda: pillow(6)),
                             ("pixelforge_level_1", lambda: encode_png(big, 1))):
            best = min(_timed(encode) for _ in range(3))
            rows[name] = {"seconds": round(best, 3), "mb": round(len(encode()) / 1e6, 2)}
        out["png_encode"] = {"image": f"photos/dune.png upscaled to {big.width}x{big.height}",
                             "kept": "best of 3", **rows}
    out["process_exit_s"] = exit_probe()
    out["keep_freed_memory"] = freed_memory_probe()
    return out


def freed_memory_probe(rounds: int = 4, repeats: int = 5) -> dict:
    """Milliseconds per call of each workload (median of ``repeats`` after a warm-up call) in fresh
    processes taking turns, with malloc keeping freed memory (``pixelforge.runtime.keep_freed_memory``,
    which every CPU Runtime sets) and as the C library leaves it (``PIXELFORGE_KEEP_FREED_MEMORY=0``);
    each arm's median over the rounds."""
    names = ["gan", "diffusion", "upscale", "style", "adain"]
    program = ("import statistics, sys, time, torch\n"
               f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
               "import profiling\nfrom pixelforge.runtime import Runtime, keep_freed_memory\n"
               "Runtime.create('cpu', 'fp32')\n"
               "step = (profiling.WORKLOADS.get(sys.argv[1]) or (None, profiling.adain_workload))[1]()\n"
               "step()\ntimes = []\n"
               f"for _ in range({repeats}):\n"
               "    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)\n"
               "print(keep_freed_memory(), statistics.median(times) * 1000)\n")
    arms = {"kept": "1", "system": "0"}
    times: dict[str, dict[str, list[float]]] = {n: defaultdict(list) for n in names}
    kept_flags = set()
    for _ in range(rounds):
        for name in names:
            for arm, flag in arms.items():
                env = {**os.environ, "PIXELFORGE_KEEP_FREED_MEMORY": flag}
                done = subprocess.run([sys.executable, "-c", program, name], env=env, check=True,
                                      capture_output=True, text=True)
                kept, ms = done.stdout.split()[-2:]
                kept_flags.add((arm, kept))
                times[name][arm].append(float(ms))
    out = {"rounds": rounds, "repeats": repeats, "set": sorted(f"{a}={k}" for a, k in kept_flags)}
    for name in names:
        medians = {arm: statistics.median(v) for arm, v in times[name].items()}
        out[name] = {**{f"{arm}_ms": round(m, 2) for arm, m in medians.items()},
                     "speedup": round(medians["system"] / medians["kept"], 3)}
    return out


def exit_probe(repeats: int = 5) -> dict:
    """Seconds a process that imported torch and the CLI takes to start and end, leaving with a
    normal interpreter teardown or as ``pixelforge.cli.run`` does (exit handlers, then ``os._exit``);
    fresh processes in turns, the median of each."""
    body = "import atexit, os, sys, torch, pixelforge.cli\n"
    programs = {"teardown": body + "sys.exit(0)\n", "without_teardown": body + "atexit._run_exitfuncs()\nos._exit(0)\n"}
    times = defaultdict(list)
    for _ in range(repeats):
        for name, program in programs.items():
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", program], check=True)
            times[name].append(time.perf_counter() - t)
    medians = {name: round(statistics.median(ts), 3) for name, ts in times.items()}
    return {**medians, "saved": round(medians["teardown"] - medians["without_teardown"], 3), "repeats": repeats}


def markdown_table(results: dict) -> str:
    """docs/performance.md's profile table, every figure marked with its place in profile.json."""
    groups = ("convolution", "matmul", "copies", "elementwise/other", "normalisation", "activation")
    peak = results["matmul_peak_gflop_s"]["bf16"]
    lines = ["| workload | GFLOP per step | " + " | ".join(g.replace("elementwise/other", "other element-wise")
                                                       for g in groups)
             + " | conv forward / backward, GFLOP/s | matmul, GFLOP/s |",
             "|---|---:|" + "---:|" * len(groups) + "---|---|"]
    for name, w in results["workloads"].items():
        at = f"profile.json:workloads.{name}"
        cells = [w["workload"], f"{w['gflop_per_step']:.1f}<!-- {at}.gflop_per_step -->"]
        for g in groups:
            share = w["group_shares"].get(g)
            cells.append("-" if not share else f"{share:.0%}<!-- {at}.group_shares[\"{g}\"]*100 -->")

        def rate(key):
            a = w["achieved"].get(key)
            if not a:
                return "-"
            return f"{a['gflop_s']:.0f}<!-- {at}.achieved.{key}.gflop_s --> ({a['gflop_s'] / peak:.0%})"
        cells += [f"{rate('convolution_forward')} / {rate('convolution_backward')}", rate("matmul_all")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--probes", action="store_true",
                    help="only the micro-measurements (G's label input, memory formats, bicubic, PNG levels), kept "
                         "beside the profile")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="print the docs table of the saved profile and stop")
    args = ap.parse_args()
    if args.markdown:
        print(markdown_table(json.loads((RESULTS / "profile.json").read_text())))
        return
    if args.probes:
        found = probes()
        print(json.dumps(found, indent=2))
        if not args.no_save:
            previous = RESULTS / "profile.json"
            figures = json.loads(previous.read_text()) if previous.exists() else {}
            figures = {k: v for k, v in figures.items() if k not in ("benchmark", "date", "machine")}
            write_results("profile", {**figures, "probes": found})
        return
    names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    peaks = {"bf16": round(matmul_peak(torch.bfloat16), 1), "fp32": round(matmul_peak(torch.float32), 1)}
    print(f"matmul peak 2048^3: bf16 {peaks['bf16']} GFLOP/s, fp32 {peaks['fp32']} GFLOP/s")
    results = {}
    for name in names:
        what, make = WORKLOADS[name]
        r = profile_workload(make(), args.steps)
        r["workload"] = what
        results[name] = r
        print(f"\n{name}: {what}\n  wall {r['wall_ms_per_step']} ms/step, {r['gflop_per_step']} GFLOP/step, "
              f"{r['gflop_s_overall']} GFLOP/s overall ({r['gflop_s_overall'] / peaks['bf16']:.0%} of the bf16 peak)")
        for row in r["rows"][:12]:
            print(f"  {row['phase']:<9} {row['group']:<18} {row['ms_per_step']:>8.2f} ms  {row['share']:>6.1%}")
        for key, a in r["achieved"].items():
            print(f"  achieved {key:<22} {a['gflop_s']:>7.1f} GFLOP/s over {a['ms_per_step']} ms")
    if not args.no_save:
        write_results("profile", {"matmul_peak_gflop_s": peaks, "workloads": results})


if __name__ == "__main__":
    main()
