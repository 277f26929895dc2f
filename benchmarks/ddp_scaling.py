"""Training throughput under torchrun: 1 process vs N processes (DistributedDataParallel),
same per-process batch, measured from each run's metrics.jsonl (images/s over the whole
world). On this 2-core CPU the figure is a CPU/gloo figure: it shows the machinery
working, not the scaling a multi-GPU machine gives.

    PIXELFORGE_DATA=../shared/data python benchmarks/ddp_scaling.py [--nproc 1,2] [--steps 200]

Writes benchmarks/results/ddp_scaling.json and ddp_scaling.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import RESULTS, write_results

from pixelforge.images import pyplot, save_figure

def run(nproc: int, steps: int, batch: int, family: str, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["train", family, "--data", "fashion-mnist", "--max-steps", str(steps), "--batch-size", str(batch),
                "--run-dir", f"{tmp}/r", "--no-progress"]
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        cmd = [*launcher, "-m", "pixelforge.cli", *argv]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        records = [json.loads(line) for line in Path(f"{tmp}/r/metrics.jsonl").read_text().splitlines()]
        rates = [r["images_per_s"] for r in records if "images_per_s" in r][1:]  # skip warm-up window
        return sum(rates) / len(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nproc", default="1,2")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--family", default="gan", choices=["gan", "classifier"])
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    for n in [int(x) for x in args.nproc.split(",")]:
        threads = max(1, cores // n)
        ips = run(n, args.steps, args.batch_size, args.family, threads)
        rows.append({"processes": n, "threads_per_process": threads, "images_per_s": round(ips, 1)})
        base = rows[0]["images_per_s"]
        print(f"{n} process(es) x {threads} thread(s): {ips:8.1f} img/s  ({ips / base:.2f}x of 1 process)")
    if not args.no_save:
        write_results("ddp_scaling", {"backend": "gloo (CPU)", "family": args.family,
                                      "per_process_batch": args.batch_size, "results": rows})
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
        ax.bar([str(r["processes"]) for r in rows], [r["images_per_s"] for r in rows])
        ax.set_xlabel("processes (torchrun, gloo, 2-core CPU)")
        ax.set_ylabel(f"{args.family} training images/s")
        ax.set_title("DDP throughput on this CPU (not a GPU figure)")
        save_figure(fig, RESULTS / "ddp_scaling.png")


if __name__ == "__main__":
    main()
