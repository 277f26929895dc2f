"""What every benchmark records beside its figures: when, on what, and where it writes."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def speed_class() -> str:
    """What a minute of training buys here: the accelerator, or the CPU's bf16 support, and the
    cores. Time-budgeted caches key their entries by it, so that results from machines of
    different speeds are never compared in one table."""
    from pixelforge.runtime import cpu_supports_bf16

    kind = "cuda" if torch.cuda.is_available() else ("cpu-bf16" if cpu_supports_bf16() else "cpu-fp32")
    return f"{kind}-{os.cpu_count()}c"


# The machine the project's headline figures come from: results measured on other speed classes
# go to their own files (NAME_SPEED.json), so that neither replaces the other.
REFERENCE_SPEED = "cpu-bf16-2c"


def results_name(name: str, speed: str) -> str:
    return name if speed == REFERENCE_SPEED else f"{name}_{speed}"


def machine() -> str:
    return (f"{platform.machine()}, {cpu_model()}, {speed_class()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads")


def write_json(path: Path, data: dict, indent: int = 2) -> Path:
    """``data`` as JSON, written atomically (a killed sitting keeps the old file)."""
    # Imported here: speedup.py's workers import this module under another tree's pixelforge.
    from pixelforge.runs import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(data, indent=indent) + "\n").encode())
    return path


def write_results(name: str, figures: dict) -> Path:
    """``benchmarks/results/NAME.json`` with the date and the machine in front of ``figures``."""
    path = write_json(RESULTS / f"{name}.json", {"benchmark": name, "date": dt.date.today().isoformat(),
                                                 "machine": machine(), **figures})
    print(f"wrote {path}")
    return path


def commit() -> str:
    """The checkout's short commit, recorded beside cached measurements."""
    out = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def save_cache(path: Path, cache: dict) -> None:
    """A benchmark's resumable measurements, written atomically."""
    write_json(path, cache, indent=1)


def summarise(values: list[float], digits: int = 5) -> dict:
    """Mean, sample standard deviation (None for one value) and count, as results record repeats."""
    return {"mean": round(statistics.fmean(values), digits),
            "std": round(statistics.stdev(values), digits) if len(values) > 1 else None, "n": len(values)}
