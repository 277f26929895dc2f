"""Run directories: everything a training run leaves behind, written so a crash loses nothing.

Layout of ``runs/NAME/``::

    config.json                 family, model name + config, training config, data spec
    checkpoints/latest          name of the newest complete checkpoint (replaced atomically)
    checkpoints/step_0001234/   <module>.safetensors for each module, trainer_state.pt
    metrics.jsonl               one JSON object per logged step
    samples/epoch_001.png ...   fixed-noise sample grids; samples/final.png
    loss.png                    loss curves
    tb/                         TensorBoard events (when tensorboard is installed)

A checkpoint is first written to a hidden temporary folder and then renamed into place,
and ``latest`` is switched only afterwards, so a process killed at any moment leaves the
previous checkpoint intact. Weights load only through safetensors and the trainer state
only through ``torch.load(weights_only=True)``, so a run folder can never execute code.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import PixelforgeError, RunError

CONFIG = "config.json"
STATE = "trainer_state.pt"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Run:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # -- creation / opening -----------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, config: dict, overwrite: bool = False) -> "Run":
        run = cls(path)
        if run.path.exists() and any(run.path.iterdir()):
            if not overwrite:
                raise RunError(f"run directory {run.path} already exists; use --resume to continue it, "
                               "--overwrite to replace it, or choose another --run")
            shutil.rmtree(run.path)
        run.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run.path / CONFIG, config)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Run":
        run = cls(path)
        if not run.path.is_dir():
            raise RunError(f"no run directory at {run.path}")
        if not (run.path / CONFIG).is_file():
            raise RunError(f"{run.path} is not a pixelforge run (no {CONFIG})")
        return run

    @property
    def config(self) -> dict:
        try:
            return json.loads((self.path / CONFIG).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise RunError(f"cannot read {self.path / CONFIG}: {e}") from None

    @property
    def samples_dir(self) -> Path:
        d = self.path / "samples"
        d.mkdir(exist_ok=True)
        return d

    # -- checkpoints ------------------------------------------------------------------
    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def save_checkpoint(self, step: int, modules: dict[str, dict[str, torch.Tensor]],
                        state: dict, keep: int = 2) -> Path:
        """Write module state dicts (safetensors) and trainer state; return the checkpoint dir."""
        root = self.checkpoints_dir
        root.mkdir(exist_ok=True)
        name = f"step_{step:08d}"
        final = root / name
        tmp = root / f".tmp-{name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        meta = {"step": str(step), "format": "pixelforge-1"}
        for mod_name, sd in modules.items():
            tensors = {k: v.detach().cpu().contiguous() for k, v in sd.items()}
            save_file(tensors, str(tmp / f"{mod_name}.safetensors"), metadata=meta)
        torch.save(state, tmp / STATE)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():  # re-saving the same step (e.g. stop right after an epoch end)
            self._discard(final)
        os.replace(tmp, final)
        _fsync_dir(root)
        atomic_write_bytes(root / "latest", (name + "\n").encode())
        self._prune(keep)
        return final

    def _discard(self, checkpoint: Path) -> None:
        # Rename first: a kill during rmtree must not leave a half-deleted folder that looks like a checkpoint.
        doomed = checkpoint.with_name(f".old-{checkpoint.name}-{os.getpid()}")
        os.replace(checkpoint, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def _prune(self, keep: int) -> None:
        ckpts = self.list_checkpoints()
        for old in ckpts[:-keep] if keep > 0 else []:
            self._discard(old)
        for stale in [*self.checkpoints_dir.glob(".tmp-*"), *self.checkpoints_dir.glob(".old-*")]:  # killed writers
            if stale.is_dir() and not stale.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(stale, ignore_errors=True)

    def mark_best(self, checkpoint: Path, metrics: dict) -> Path:
        """Copy ``checkpoint`` to ``checkpoints/best`` (replaced atomically) with its metrics."""
        best = self.checkpoints_dir / "best"
        tmp = self.checkpoints_dir / f".tmp-best-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(checkpoint, tmp)
        atomic_write_json(tmp / "best.json", {"checkpoint": checkpoint.name, **metrics})
        old = self.checkpoints_dir / f".old-best-{os.getpid()}"
        if best.exists():
            os.replace(best, old)
        os.replace(tmp, best)
        shutil.rmtree(old, ignore_errors=True)
        return best

    def best_checkpoint(self) -> Path | None:
        best = self.checkpoints_dir / "best"
        return best if (best / "best.json").is_file() else None

    def list_checkpoints(self) -> list[Path]:
        if not self.checkpoints_dir.is_dir():
            return []
        return sorted(p for p in self.checkpoints_dir.glob("step_*") if (p / STATE).is_file())

    @classmethod
    def resumable(cls, path: str | os.PathLike) -> bool:
        """Whether ``path`` is a run with a checkpoint to continue from; a run stopped before its
        first checkpoint is not (there is nothing to resume: it starts over)."""
        return (Path(path) / CONFIG).is_file() and cls(path).latest_checkpoint() is not None

    def latest_checkpoint(self) -> Path | None:
        pointer = self.checkpoints_dir / "latest"
        if pointer.is_file():
            cand = self.checkpoints_dir / pointer.read_text().strip()
            if (cand / STATE).is_file():
                return cand
        ckpts = self.list_checkpoints()
        return ckpts[-1] if ckpts else None

    def require_checkpoint(self) -> Path:
        ckpt = self.latest_checkpoint()
        if ckpt is None:
            raise RunError(f"run {self.path} has no checkpoint yet")
        return ckpt

    def load_weights(self, module_name: str, checkpoint: Path | None = None) -> dict[str, torch.Tensor]:
        ckpt = checkpoint or self.require_checkpoint()
        path = ckpt / f"{module_name}.safetensors"
        if not path.is_file():
            raise RunError(f"checkpoint {ckpt} has no {module_name} weights")
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise RunError(f"cannot load {path}: {e}") from None

    def load_state(self, checkpoint: Path | None = None) -> dict:
        ckpt = checkpoint or self.require_checkpoint()
        try:
            return torch.load(ckpt / STATE, map_location="cpu", weights_only=True)
        except Exception as e:  # unpickling errors have many types; none may escape as a traceback
            raise RunError(f"cannot load trainer state {ckpt / STATE}: {str(e).splitlines()[0]}") from None

    # -- metrics ----------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def log_metrics(self, record: dict) -> None:
        line = (json.dumps({"time": round(time.time(), 3), **record}) + "\n").encode()
        # One write() on an O_APPEND descriptor: a kill can truncate the last line, never interleave.
        fd = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.is_file():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a crash
        return records

    def truncate_metrics(self, step: int) -> None:
        """On resume: drop records logged after the checkpoint we continue from."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        atomic_write_bytes(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept).encode())


def read_weights_file(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A third-party ``.pth`` state dict (Inception, VGG) read with ``torch.load(weights_only=True)``:
    a pickle carrying code is refused, and a broken file becomes a one-line error."""
    import pickle

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = next((line.strip() for line in str(exc).splitlines() if "Unsupported" in line), _first_line(exc))
        raise PixelforgeError(f"refusing to load {path}: not a plain tensor checkpoint ({reason})") from exc
    except Exception as exc:  # torch.load raises many types for truncated or foreign files
        raise PixelforgeError(f"cannot read {what} weights {path}: {_first_line(exc)}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PixelforgeError(f"{path} does not hold a state dict of tensors")
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
