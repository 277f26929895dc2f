"""What every benchmark records beside its figures: when, on what, and where it writes."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")


def write_results(name: str, figures: dict) -> Path:
    """``benchmarks/results/NAME.json`` with the date and the machine in front of ``figures``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "date": dt.date.today().isoformat(), "machine": machine(),
                                **figures}, indent=2) + "\n")
    print(f"wrote {path}")
    return path
