"""The studio's state, independent of the web framework: which runs exist, the loaded
models, the output folder, upload validation and the one-at-a-time inference lock."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from ..api import load, shipped_family
from ..errors import PixelforgeError
from ..imageio import UnreadableImage, open_image, resize_crop, to_mode
from ..images import make_grid, save_png, to_pil
from ..zoo import card, list_pretrained
from .jobs import Jobs

log = logging.getLogger("pixelforge.web")

IMAGE_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"}
SERVED_SUFFIXES = {".png", ".gif", ".jpg", ".jpeg", ".webp"}
OUTPUT_NAME = re.compile(r"^[0-9a-f]{32}\.(png|gif)$")
RUN_DEPTH = 3  # runs may be nested: runs/NAME/config.json ... runs/A/B/C/config.json
STUDY_REPORT = "augmentation.json"  # what `pixelforge augment` writes in its study folder


def _is_study_report(result) -> bool:
    """Whether a parsed augmentation.json has the form the studio shows (reports of other forms,
    e.g. hand-made or from older versions, are left out)."""
    def figures(cell):
        return isinstance(cell, dict) and all(isinstance(cell.get(k), (int, float)) for k in ("mean", "std"))

    if not isinstance(result, dict) or not isinstance(result.get("rows"), list) \
            or not isinstance(result.get("seeds", []), list):
        return False
    return all(isinstance(row, dict) and isinstance(row.get("per_class"), int) and isinstance(row.get("arms"), list)
               and all(isinstance(a, dict) and isinstance(a.get("arm"), str) and figures(a.get("val"))
                       and figures(a.get("test")) for a in row["arms"])
               for row in result["rows"])


class Busy(Exception):
    """Another inference holds the lock for longer than the caller may wait."""


class Studio:
    """Everything the web app needs; every method raises :class:`PixelforgeError` for user errors."""

    def __init__(self, runs_dir: str | os.PathLike = "runs", output_dir: str | os.PathLike | None = None, *,
                 device: str = "auto", max_upload_mb: float = 8.0, max_pixels: int = 16_000_000,
                 busy_timeout: float = 30.0, max_outputs: int = 500, cache_models: int = 4):
        self.runs_dir = Path(runs_dir).expanduser().resolve()
        self.temporary_output = output_dir is None
        if output_dir is None:
            output_dir = tempfile.mkdtemp(prefix="pixelforge-studio-")
        self.output_dir = Path(output_dir).expanduser().resolve()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.device = device
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self.max_pixels = max_pixels
        self.busy_timeout = busy_timeout
        self.max_outputs = max_outputs
        self._lock = threading.Lock()
        self.jobs = Jobs()
        self._models: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_size = cache_models

    # -- runs and shipped models ------------------------------------------------------
    def _folders_holding(self, name: str, describe: Callable[[Path], dict | None]) -> list[dict]:
        """``describe(folder)`` of every folder below ``runs_dir`` (at most RUN_DEPTH levels down)
        that holds a file ``name``, where it describes one."""
        found = []
        if self.runs_dir.is_dir():
            for depth in range(1, RUN_DEPTH + 1):
                for file in self.runs_dir.glob("/".join(["*"] * depth) + "/" + name):
                    info = describe(file.parent)
                    if info is not None:
                        found.append(info)
        return found

    def list_runs(self) -> list[dict]:
        """Every run below ``runs_dir`` (config.json at most RUN_DEPTH levels down), newest first."""
        found = self._folders_holding("config.json", self._run_info)
        found.sort(key=lambda r: (r.get("created") or "", r["id"]), reverse=True)
        return found

    def list_studies(self) -> list[dict]:
        """Every augmentation study below ``runs_dir`` (a folder holding :data:`STUDY_REPORT`, as
        ``pixelforge augment -o runs/NAME`` writes it): its budgets, every arm's figures per budget,
        the verdicts and its plot."""
        return sorted(self._folders_holding(STUDY_REPORT, self._study_info), key=lambda s: s["id"])

    def _study_info(self, path: Path) -> dict | None:
        try:
            result = json.loads((path / STUDY_REPORT).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if not _is_study_report(result):
            return None
        rel = path.relative_to(self.runs_dir).as_posix()
        plot = path / "augmentation.png"
        return {"id": rel, "data": result.get("data", ""), "seeds": len(result.get("seeds", [])),
                "budgets": [r.get("per_class") for r in result["rows"]], "rows": result["rows"],
                "plot": f"{rel}/augmentation.png" if plot.is_file() else None}

    def list_models(self, families: list[str] | None = None) -> list[dict]:
        """Runs with a checkpoint plus the shipped models, optionally only of ``families``."""
        models = [r for r in self.list_runs() if r["checkpoint"]]
        models += self._shipped()
        return [m for m in models if not families or m["family"] in families]

    def _shipped(self) -> list[dict]:
        out = []
        for name in list_pretrained():
            info = card(name)
            try:
                family = shipped_family(name)
            except PixelforgeError:  # a card naming a model this version does not register
                continue
            out.append({"id": f"zoo:{name}", "name": f"{name} (shipped)", "family": family,
                        "data": info.get("data", ""), "classes": info.get("classes", []),
                        "num_classes": len(info.get("classes", [])), "checkpoint": True, "shipped": True})
        return out

    def _run_info(self, path: Path) -> dict | None:
        try:
            cfg = json.loads((path / "config.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(cfg, dict) or "family" not in cfg:
            return None
        data = cfg.get("data") or {}
        model_cfg = (cfg.get("model") or {}).get("config") or {}
        num_classes = int(model_cfg.get("num_classes") or 0)
        latest = path / "checkpoints" / "latest"
        step = None
        if latest.is_file():
            m = re.search(r"step_(\d+)", latest.read_text())
            step = int(m.group(1)) if m else None
        return {"id": path.relative_to(self.runs_dir).as_posix(), "name": path.relative_to(self.runs_dir).as_posix(),
                "family": cfg["family"], "model": (cfg.get("model") or {}).get("name", ""),
                "data": data.get("spec", ""), "image_size": model_cfg.get("image_size"),
                "classes": data.get("classes", []) if num_classes else [], "num_classes": num_classes,
                "created": cfg.get("created", ""), "step": step, "checkpoint": step is not None, "shipped": False}

    def run_dir(self, run_id: str) -> Path:
        """The folder of run ``run_id`` (a path relative to runs_dir); nothing outside it."""
        if not isinstance(run_id, str) or not run_id or run_id.startswith(("/", "\\")) or "\\" in run_id \
                or any(part in ("", ".", "..") for part in run_id.split("/")):
            raise PixelforgeError(f"no run {run_id!r}")
        path = (self.runs_dir / run_id).resolve()
        if not path.is_relative_to(self.runs_dir) or not (path / "config.json").is_file():
            raise PixelforgeError(f"no run {run_id!r} in {self.runs_dir.name}/")
        return path

    def load(self, model_id: str, families: list[str] | None = None, loader: Callable | None = None):
        """The pipeline of a run or shipped model, cached (reloaded when the run has a newer checkpoint)."""
        if model_id.startswith("zoo:"):
            shipped = {m["id"]: m for m in self._shipped()}
            if model_id not in shipped:
                raise PixelforgeError(f"no shipped model {model_id[4:]!r}")
            family, key = shipped[model_id]["family"], (model_id, None)
            if families and family not in families:
                raise PixelforgeError(f"{model_id[4:]} is a {family} model; this needs {' or '.join(families)}")
        else:
            path = self.run_dir(model_id)
            info = self._run_info(path)
            family = info["family"] if info else None
            if families and family not in families:
                raise PixelforgeError(f"{model_id} is a {family} run; this needs a {' or '.join(families)} run")
            if info is None or not info["checkpoint"]:
                raise PixelforgeError(f"run {model_id} has no checkpoint yet")
            key = (model_id, info["step"])
        key = (*key, loader)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        if model_id.startswith("zoo:"):
            pipe = load(model_id, device=self.device)
        else:
            pipe = (loader or load)(path, device=self.device)
        self._models[key] = pipe
        while len(self._models) > self._cache_size:
            self._models.popitem(last=False)
        return pipe

    # -- run browser -------------------------------------------------------------------
    def run_details(self, run_id: str, max_points: int = 400) -> dict:
        path = self.run_dir(run_id)
        info = self._run_info(path) or {}
        from ..runs import Run

        records = Run(path).read_metrics()
        series: dict[str, list] = {}
        for r in records:
            for k, v in r.items():
                if k in ("time", "step", "epoch") or not isinstance(v, (int, float)) or isinstance(v, bool):
                    continue
                if math.isfinite(v):
                    series.setdefault(k, []).append((r.get("step", 0), v))
        table = []
        for k, pts in series.items():
            values = [v for _, v in pts]
            table.append({"metric": k, "last": values[-1], "min": min(values), "max": max(values),
                          "step": pts[-1][0], "count": len(values)})
            if len(pts) > max_points:  # keep the shape: evenly spaced points plus the last
                stride = len(pts) / max_points
                pts = [pts[int(i * stride)] for i in range(max_points)] + [pts[-1]]
            series[k] = pts
        evaluation = {}
        for name in ("metrics.json", "evaluation.json"):
            f = path / name
            if f.is_file():
                try:
                    evaluation[name] = json.loads(f.read_text())
                except (OSError, json.JSONDecodeError):
                    pass
        samples_dir = path / "samples"
        samples = sorted(p.name for p in samples_dir.glob("epoch_*.png")) if samples_dir.is_dir() else []
        extra = [p.name for p in sorted(path.glob("*.png")) if p.name != "loss.png"]
        rel = path.relative_to(self.runs_dir).as_posix()
        return {**info, "config": _summary(path), "series": series, "table": table, "evaluation": evaluation,
                "samples": [f"{rel}/samples/{s}" for s in samples],
                "final": f"{rel}/samples/final.png" if (samples_dir / "final.png").is_file() else None,
                "loss_png": f"{rel}/loss.png" if (path / "loss.png").is_file() else None,
                "images": [f"{rel}/{p}" for p in extra]}

    def run_file(self, rel: str) -> Path:
        """A picture inside a run or study folder; anything else (or outside runs_dir) is 'not found'."""
        parts = rel.split("/")
        if not rel or "\\" in rel or "\x00" in rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise FileNotFoundError(rel)
        path = (self.runs_dir / rel).resolve()
        if not path.is_relative_to(self.runs_dir) or path.suffix.lower() not in SERVED_SUFFIXES or not path.is_file():
            raise FileNotFoundError(rel)
        # It must belong to a run or a study: a folder with config.json or a study report between it
        # and runs_dir.
        for parent in path.parents:
            if parent == self.runs_dir or not parent.is_relative_to(self.runs_dir):
                break
            if (parent / "config.json").is_file() or self._study_info(parent) is not None:
                return path
        raise FileNotFoundError(rel)

    def output_file(self, name: str) -> Path:
        if not OUTPUT_NAME.match(name or ""):
            raise FileNotFoundError(name)
        path = self.output_dir / name
        if not path.is_file():
            raise FileNotFoundError(name)
        return path

    # -- outputs -----------------------------------------------------------------------
    def new_output(self, suffix: str = ".png") -> Path:
        self._prune_outputs()
        return self.output_dir / f"{uuid.uuid4().hex}{suffix}"

    def save(self, images: torch.Tensor | Image.Image | np.ndarray, nrow: int | None = None) -> str:
        """Save images ((N, C, H, W) in [0, 1] become a grid) as a PNG; return its file name."""
        if isinstance(images, torch.Tensor):
            images = make_grid(images, nrow) if images.shape[0] > 1 else make_grid(images, 1, padding=0)
        return save_png(images if isinstance(images, Image.Image) else to_pil(images), self.new_output()).name

    def _prune_outputs(self) -> None:
        files = sorted(self.output_dir.glob("*.*"), key=lambda p: p.stat().st_mtime)
        for old in files[:max(0, len(files) - self.max_outputs + 1)]:
            old.unlink(missing_ok=True)

    # -- uploads -----------------------------------------------------------------------
    def decode_upload(self, data: bytes, what: str = "image") -> Image.Image:
        """Validated upload bytes -> a fully decoded PIL image (L or RGB)."""
        if not data:
            raise PixelforgeError(f"{what}: the file is empty")
        if len(data) > self.max_upload_bytes:
            raise PixelforgeError(f"{what}: {len(data) / 2**20:.1f} MB is over the {self.max_upload_bytes / 2**20:.0f} MB "
                                  "upload limit")
        try:
            im = open_image(data, max_pixels=self.max_pixels, formats=IMAGE_FORMATS, name=what)
        except UnreadableImage as e:
            if e.reason == "format":
                raise PixelforgeError(f"{what}: {e.detail} files are not accepted "
                                      f"(use {', '.join(sorted(IMAGE_FORMATS))})") from None
            if e.reason == "too large" and e.size:
                w, h = e.size
                raise PixelforgeError(f"{what}: {w}x{h} is over the {self.max_pixels / 1e6:.0f} megapixel limit") \
                    from None
            if e.reason == "corrupt or truncated":
                raise PixelforgeError(f"{what}: the image is corrupt or truncated ({e.detail})") from None
            raise PixelforgeError(f"{what}: not an image file this studio can read") from None
        return to_mode(im, "L" if im.mode in ("1", "L", "I", "I;16", "F", "LA") else "RGB")

    # -- the lock ------------------------------------------------------------------------
    def exclusive(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` while holding the inference lock; :class:`Busy` if it stays taken too long."""
        if not self._lock.acquire(timeout=self.busy_timeout):
            raise Busy(f"the studio is busy with another request (waited {self.busy_timeout:g} s); try again shortly")
        try:
            with torch.inference_mode():
                return fn()
        finally:
            self._lock.release()


def _summary(path: Path) -> dict:
    """The parts of config.json a person wants to see."""
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    out = {"family": cfg.get("family"), "model": (cfg.get("model") or {}).get("name"),
           "data": (cfg.get("data") or {}).get("spec"), "created": cfg.get("created")}
    for section in ("model", "train", "task"):
        block = cfg.get(section) or {}
        block = block.get("config", block) if section == "model" else block
        if isinstance(block, dict):
            out.update({f"{section}.{k}": v for k, v in block.items() if isinstance(v, (int, float, str, bool, list))})
    return out


def to_model_tensor(image: Image.Image, size: int, channels: int) -> torch.Tensor:
    """A PIL image -> uint8 (1, C, size, size): shorter side scaled to ``size``, centre-cropped."""
    im = resize_crop(to_mode(image, "L" if channels == 1 else "RGB"), size)
    arr = np.asarray(im).reshape(size, size, channels)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].contiguous()


def to_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL image -> float (1, C, H, W) in [0, 1] at its own size."""
    arr = np.asarray(image, dtype=np.float32) / 255
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)[None]
