"""Old code against new code, side by side in one run: what the speed work bought.

The baseline is a git revision of this repository (``--baseline``, by default the last commit
before the profile-driven speed work). Its ``src/`` is exported to a temporary folder and each
side runs in a process of its own with either tree first on ``PYTHONPATH``, for ``--rounds``
rounds. The training workloads (diffusion, GAN) start both processes at once and let them take
turns in ``--blocks`` blocks of ``--steps`` steps: load on this shared machine drifts on a scale
of seconds, and a pair of neighbouring blocks meets the same load, so a round's ratio is the
median of its blocks' new/old ratios. The codec and the upscale command run in fresh processes,
old and new back to back; the upscale command ``--command-pairs`` times per round and image, the
round's ratio the median of its pairs'. Each side's figure is its best round (load only ever
slows a run down; per round, the median of its blocks or pairs); a target is judged on the
rounds' own ratios: met when their mean minus one standard deviation clears it.

Measured:
- ``diffusion``: training steps per second of the default conditional U-Net (28 px, batch 64),
  the real ``DiffusionTask.step`` after a warm-up;
- ``gan``: the same for the default conditional GAN step;
- ``codec``: fitting steps per second of the overfitted codec (the encoder's own loop, both
  quantisation-proxy phases, no warm start) on a 1024x640 crop of the test photo;
- ``upscale``: the whole ``pixelforge upscale --scale 4`` command (process start, import,
  reading, the network, writing the PNG) in seconds per output megapixel, on a 512x512 and a
  1024x640 photo; the PNG's size is recorded beside it.

    python benchmarks/speedup.py [--baseline REV] [--rounds 4] [--blocks 8] [--steps 30] [--command-pairs 3]

Writes benchmarks/results/speedup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "3943a0b"  # main before the speed work of issue #33
TARGET = 1.5


# -- workers: run inside a process whose PYTHONPATH picks the tree ---------------------------

def codec_fit_rate(steps: int) -> float:
    """Fitting steps per second of the overfitted codec's own loop (``fit``: both proxy phases,
    the optimizer, no warm start) on a 1024x640 crop of the test photo, quality 3's lambda."""
    import torch
    from pixelforge.pipelines.overfit_codec import Effort, fit

    x = torch.from_numpy(np.asarray(test_photo((0, 0, 1024, 640))).copy())
    x = x.permute(2, 0, 1)[None].float() / 255
    fit(x, 0.006, Effort(3))  # warm-up
    t = time.perf_counter()
    fit(x, 0.006, Effort(steps))
    return steps / (time.perf_counter() - t)


def training_step(family: str):
    """The default step of ``family`` (diffusion or gan) as benchmarks/profiling.py builds it, from
    whichever tree ``PYTHONPATH`` puts first, warmed up."""
    from profiling import diffusion_workload, gan_workload

    step = diffusion_workload(label_ema=False) if family == "diffusion" else gan_workload(label_ema=False)
    for _ in range(3):
        step()
    return step


def serve_steps(family: str) -> None:
    """Worker loop for the training workloads: build the step once, then for each number of steps
    read from stdin run that many and answer with the steps per second, until stdin closes."""
    import pixelforge

    step = training_step(family)
    print(json.dumps({"source": str(Path(pixelforge.__file__).parent)}), flush=True)
    for line in sys.stdin:
        t = time.perf_counter()
        for _ in range(int(line)):
            step()
        print(json.dumps({"steps_per_s": int(line) / (time.perf_counter() - t)}), flush=True)


def worker_codec(steps: int) -> dict:
    import pixelforge

    return {"steps_per_s": codec_fit_rate(steps), "source": str(Path(pixelforge.__file__).parent)}


def taking_turns(trees: dict, family: str, blocks: int, steps: int, first: str) -> dict[str, list[float]]:
    """Both trees' training steps in two live processes that take turns, ``blocks`` blocks of ``steps``
    steps each (``first`` starts every block pair): each side's steps/s per block."""
    procs: dict[str, subprocess.Popen] = {}

    def answer(side: str) -> dict:  # the worker's next line, which must be its JSON answer
        line = procs[side].stdout.readline()
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise SystemExit(f"{family} worker ({side}) failed or printed {line.strip()[:80]!r} "
                             "instead of its answer (its error is above)") from None

    try:
        for side, env in trees.items():
            procs[side] = subprocess.Popen([sys.executable, __file__, "--worker", family], env=env,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        sources = {side: answer(side)["source"] for side in procs}
        if sources["old"] == sources["new"]:
            raise SystemExit(f"both workers import pixelforge from {sources['old']}: check PYTHONPATH")
        rates: dict[str, list[float]] = {side: [] for side in procs}
        order = (first, "new" if first == "old" else "old")
        for _ in range(blocks):
            for side in order:
                procs[side].stdin.write(f"{steps}\n")
                procs[side].stdin.flush()
                rates[side].append(answer(side)["steps_per_s"])
        return rates
    finally:
        for proc in procs.values():
            try:
                proc.stdin.close()
            except OSError:  # a worker that died: its pipe is broken
                pass
        for proc in procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def upscale_command(env: dict, image: Path, out: Path) -> dict:
    out.unlink(missing_ok=True)  # the command refuses to overwrite its output (an earlier round's)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pixelforge.cli", "upscale", str(image), "--scale", "4",
                           "-o", str(out)], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"upscale failed: {proc.stderr.strip().splitlines()[-1]}")
    from PIL import Image

    with Image.open(out) as im:
        mp = im.width * im.height / 1e6
    return {"seconds": seconds, "output_mp": mp, "png_bytes": out.stat().st_size}


# -- driver -----------------------------------------------------------------------------------

def export_tree(rev: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / "src"


def env_for(src: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src)
    return env


def run_codec_worker(env: dict, steps: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", "codec", "--steps", str(steps)], env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"codec worker failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def photo_path() -> Path:
    """The test photo, PIXELFORGE_DATA/photos/dune.png (a clear exit when it is missing)."""
    data = os.environ.get("PIXELFORGE_DATA")
    photo = Path(data) / "photos" / "dune.png" if data else None
    if photo is None or not photo.exists():
        raise SystemExit("set PIXELFORGE_DATA to the shared data folder (photos/dune.png is the test photo)")
    return photo


def test_photo(box: tuple[int, int, int, int]):
    """The test photo's ``box`` crop, RGB."""
    from PIL import Image

    with Image.open(photo_path()) as im:
        return im.convert("RGB").crop(box)


def test_images(tmp: Path) -> list[Path]:
    paths = [tmp / "photo_512x512.png", tmp / "photo_1024x640.png"]
    test_photo((0, 0, 512, 512)).save(paths[0])
    test_photo((0, 0, 1024, 640)).save(paths[1])
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=BASELINE, help=f"git revision of the old code (default {BASELINE})")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30, help="steps per measurement (training: per block)")
    ap.add_argument("--blocks", type=int, default=8,
                    help="training workloads: blocks of steps per round, the two trees taking turns")
    ap.add_argument("--command-pairs", type=int, default=3,
                    help="upscale: old/new pairs of whole commands per round (the round takes their median)")
    ap.add_argument("--workloads", default="diffusion,gan,codec,upscale",
                    help="comma list; rows of workloads left out are kept from the last results file")
    ap.add_argument("--worker", default=None, choices=("diffusion", "gan", "codec"), help=argparse.SUPPRESS)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    if args.worker == "codec":
        print(json.dumps(worker_codec(args.steps)))
        return
    if args.worker:  # a training workload: serves blocks of steps
        serve_steps(args.worker)
        return
    if min(args.rounds, args.steps, args.blocks, args.command_pairs) < 1:
        ap.error("--rounds, --steps, --blocks and --command-pairs must be at least 1")

    from _common import summarise, write_results

    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "old").mkdir()
        trees = {"old": env_for(export_tree(args.baseline, tmp / "old")), "new": env_for(ROOT / "src")}
        if "codec" in workloads:
            photo_path()  # before any worker starts
        images = test_images(tmp) if "upscale" in workloads else []
        raw: dict[str, dict[str, list]] = {}
        for r in range(args.rounds):
            first = "old" if r % 2 == 0 else "new"
            for family in ("diffusion", "gan"):
                if family in workloads:
                    rates = taking_turns(trees, family, args.blocks, args.steps, first)
                    per_block = [n / o for o, n in zip(rates["old"], rates["new"])]
                    entry = raw.setdefault(family, {"old": [], "new": [], "ratio": []})
                    for side in ("old", "new"):
                        entry[side].append(statistics.median(rates[side]))
                    entry["ratio"].append(statistics.median(per_block))
                    print(f"round {r + 1} {family:<9} old {entry['old'][-1]:.2f} new {entry['new'][-1]:.2f} steps/s "
                          f"(medians of {args.blocks} blocks), ratio {entry['ratio'][-1]:.3f}")
            if "codec" in workloads:
                for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    res = run_codec_worker(trees[side], args.steps)
                    raw.setdefault("codec", {}).setdefault(side, []).append(res["steps_per_s"])
                    print(f"round {r + 1} {side:<3} codec     {res['steps_per_s']:.2f} steps/s")
            for image in images:
                key = f"upscale_{image.stem.split('_')[1]}"
                entry = raw.setdefault(key, {"old": [], "new": [], "ratio": [], "png_bytes": {}})
                runs: dict[str, list[float]] = {"old": [], "new": []}
                for pair in range(args.command_pairs):  # old and new back to back, the order alternating
                    for side in ("old", "new") if (r + pair) % 2 == 0 else ("new", "old"):
                        res = upscale_command(trees[side], image, tmp / f"{side}_{image.name}")
                        runs[side].append(res["seconds"] / res["output_mp"])
                        entry["png_bytes"][side] = res["png_bytes"]
                entry["ratio"].append(statistics.median(o / n for o, n in zip(runs["old"], runs["new"])))
                for side in ("old", "new"):
                    entry[side].append(statistics.median(runs[side]))
                print(f"round {r + 1} {key:<16} old {entry['old'][-1]:.3f} new {entry['new'][-1]:.3f} s per output MP "
                      f"(medians of {args.command_pairs} pairs), ratio {entry['ratio'][-1]:.3f}")

    rows = []
    for key, sides in raw.items():
        if key.startswith("upscale"):
            old, new = min(sides["old"]), min(sides["new"])
            rounds = sides["ratio"]  # each round's median over its pairs of commands
            rows.append({"workload": key, "measure": "seconds per output MP (whole command)",
                         "old": round(old, 3), "new": round(new, 3), "speedup": round(old / new, 2),
                         "png_mb_old": round(sides["png_bytes"]["old"] / 1e6, 2),
                         "png_mb_new": round(sides["png_bytes"]["new"] / 1e6, 2)})
        else:
            old, new = max(sides["old"]), max(sides["new"])
            # training workloads: each round's median ratio over its blocks; the codec: each round's pair
            rounds = sides.get("ratio") or [n / o for o, n in zip(sides["old"], sides["new"])]
            measure = "fitting steps per second (1024x640)" if key == "codec" else "training steps per second"
            rows.append({"workload": key, "measure": measure, "old": round(old, 2),
                         "new": round(new, 2), "speedup": round(new / old, 2)})
        # Each round's pair ran back to back, so its ratio shares the host's load of the moment.
        spread = summarise(rounds, 3)
        rows[-1].update(round_speedups=[round(x, 3) for x in rounds], speedup_mean=spread["mean"],
                        speedup_std=spread["std"])
        if key not in ("gan", "codec"):  # the GAN's goal is a ratio to a plain fp32 step (gan_throughput.py);
            # the codec's is rate-distortion within time caps (codec_compare.py)
            rows[-1]["target_met"] = spread["mean"] - (spread["std"] or 0) >= TARGET
    print(f"\n{'workload':<16} {'measure':<38} {'old':>8} {'new':>8} {'speedup':>8}")
    for row in rows:
        print(f"{row['workload']:<16} {row['measure']:<38} {row['old']:>8} {row['new']:>8} {row['speedup']:>7}x")
    today = time.strftime("%Y-%m-%d")
    for row in rows:
        per_round = ({"blocks": args.blocks} if row["workload"] in ("diffusion", "gan") else
                     {"command_pairs": args.command_pairs} if row["workload"].startswith("upscale") else {})
        row.update(date=today, rounds=args.rounds, steps=args.steps, **per_round)
    path = ROOT / "benchmarks" / "results" / "speedup.json"
    if path.exists():  # rows of workloads this run left out stay, if measured against the same baseline
        old = json.loads(path.read_text())
        if old.get("baseline") == args.baseline:
            fresh = {r["workload"]: r for r in rows}
            merged = [fresh.pop(r["workload"], {"date": old["date"], "rounds": old["rounds"], "steps": old["steps"], **r})
                      for r in old["results"]]
            rows = merged + list(fresh.values())
    if not args.no_save:
        write_results("speedup", {"baseline": args.baseline, "rounds": args.rounds, "steps": args.steps,
                                  "blocks": args.blocks,
                                  "command_pairs": args.command_pairs,
                                  "kept": "best round of each side (training: each round's median over its blocks; "
                                          "upscale: over its pairs of commands); the target is judged on the "
                                          "per-round ratios' mean minus std (training, upscale: each round's median "
                                          "of its blocks' or pairs' ratios)",
                                  "target_speedup": TARGET, "results": rows})


if __name__ == "__main__":
    main()
