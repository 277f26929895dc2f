"""What every ``train_*`` function shares: create or reopen a run directory, rebuild its
configs, check that a resume asks for nothing the run cannot give, load the data.

config.json sections: ``family``, ``model`` (registry name + config), ``task`` (the
family's training options), ``train`` (the generic loop's budget), ``data`` (spec, size,
channels, classes, limit, split, random_crops), ``seed``. ``data.split`` is the split training uses,
"train" (the validation images left out); a run without it predates validation splits and
trained, and resumes, on "train+val". ``data.random_crops`` (folders: train on random crops
of whole photos, :mod:`pixelforge.data.crops`) only changes the training data: validation and
evaluation images are centre crops either way.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .. import __version__
from ..data import CropData, ImageData, load_dataset, report_split
from ..data.splits import LEGACY_TRAIN_SPLIT
from ..errors import DataError, PixelforgeError, RunError
from ..registry import get_entry, stored_config
from ..runs import Run, atomic_write_json
from ..runtime import Runtime
from ..training import TrainConfig
from ..training.task import Task

log = logging.getLogger("pixelforge")


@dataclass
class Session:
    run: Run
    runtime: Runtime
    data: ImageData | CropData
    model_name: str
    model_cfg: Any
    task_cfg: Any
    train_cfg: TrainConfig
    seed: int
    prepared: Any = None  # what start_session's ``prepare`` returned (new runs only)

    @property
    def classes(self) -> list[str]:
        return self.run.config["data"].get("classes", [])


def fields_of(options: dict, cls) -> dict:
    """The entries of ``options`` that are fields of dataclass ``cls`` and not None."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in options.items() if k in names and v is not None}


def data_defaults(dataset: ImageData, data: str | None, conditional: bool) -> dict:
    """The model config entries a generator takes from its data: size, channels and, for a
    conditional model, the number of classes (refused when the data has none)."""
    if conditional and dataset.num_classes == 0:
        raise PixelforgeError(f"--conditional needs labels, but {data} has no classes "
                              "(a folder dataset gets classes from its subfolders)")
    return {"image_size": dataset.size, "channels": dataset.channels,
            "num_classes": dataset.num_classes if conditional else 0}


def check_resumed_conditioning(session: Session, conditional: bool | None, has_labels: bool | None = None) -> None:
    """On resume: refuse a request for labels (True) the run has none for, or to drop (False)
    the labels a class-conditional run was trained on; None accepts either. ``has_labels``:
    whether the run was trained on its data's labels (default: its model has classes)."""
    if has_labels is None:
        has_labels = session.model_cfg.num_classes > 0
    if conditional is not None and conditional != has_labels:
        wanted, actual = ("conditional", "unconditional") if conditional else ("unconditional", "class-conditional")
        raise RunError(f"cannot resume {session.run.path} as {wanted}: the run is {actual}")


def default_run_dir(family: str, data: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in data.split(":")[0])
    return Path("runs") / f"{family}-{safe}-{stamp}"


def start_session(family: str, task_cls: type, data: str | None, run: str | os.PathLike | None, *,
                  model: str, options: dict, resume: bool, overwrite: bool, size: int | None,
                  channels: int | None, limit: int | None, device: str, precision: str, seed: int,
                  model_defaults: Callable[[ImageData | CropData], dict], keep_classes: bool = True,
                  channels_last: bool | None = None, task: type[Task] = Task,
                  random_crops: bool | None = None, prepare: Callable[[Any, Any], Any] | None = None) -> Session:
    """Create a new run (or reopen one with ``resume``) and load its data.

    ``model_defaults(dataset)`` gives the model config entries the data decides (size,
    channels, number of classes); ``options`` may override the rest. ``task``: the training
    task's class, whose refusals (--grad-accum, --eval-every) come before a run directory is made.
    ``random_crops``: train on random crops of a folder's whole photos (None: off for a new run,
    the run's choice on resume). ``prepare(model_cfg, task_cfg)``, for a new run: work that may refuse
    the settings (loading weights to start from), done before the run directory is made or replaced;
    its result is the session's ``prepared``.
    """
    model_cls = get_entry(model).config_cls
    known = {f.name for c in (model_cls, task_cls, TrainConfig) for f in dataclasses.fields(c)}
    unknown = set(options) - known
    if unknown:
        raise PixelforgeError(f"unknown {family} option(s): {', '.join(sorted(unknown))}")
    budget = fields_of(options, TrainConfig)
    task.check_grad_accum(budget.get("grad_accum"))
    task.check_eval_every(budget.get("eval_every"))
    if resume:
        if run is None:
            raise RunError("--resume needs the run directory to continue")
        r = Run.open(run)
        cfg = r.config
        if cfg.get("family") != family:
            raise RunError(f"{run} is a {cfg.get('family')} run, not a {family} run")
        _check_compatible(cfg, task_cls, options, data, size, channels, random_crops)
        model_name = cfg["model"]["name"]
        model_cfg = stored_config(get_entry(model_name).config_cls, cfg["model"]["config"])
        task_cfg = stored_config(task_cls, cfg["task"])
        # --minutes is a budget for this invocation; epochs and steps count over the whole run.
        train_cfg = TrainConfig(**{**cfg["train"], **budget, "minutes": options.get("minutes")})
        train_cfg.validate()
        d = cfg["data"]
        if train_cfg.eval_every and trained_on_val(d):
            if budget.get("eval_every"):
                check_unseen(d, "val", "--eval-every")
            log.warning("--eval-every is off from here: this run trained on its validation images (it predates "
                        "validation splits)")
            train_cfg = dataclasses.replace(train_cfg, eval_every=None)
        runtime = Runtime.create(device, precision, seed=None, channels_last=channels_last)
        dataset = load_dataset(d["spec"], size=d["size"], channels=d["channels"], limit=d.get("limit"),
                               split=d.get("split", LEGACY_TRAIN_SPLIT), random_crops=d.get("random_crops", False))
        cfg["train"] = dataclasses.asdict(train_cfg)
        if runtime.is_main:
            atomic_write_json(r.path / "config.json", cfg)
        runtime.barrier()
        return Session(r, runtime, dataset, model_name, model_cfg, task_cfg, train_cfg, cfg.get("seed", seed))

    train_cfg = TrainConfig(**budget)
    train_cfg.validate()
    task_cfg = task_cls(**fields_of(options, task_cls))
    runtime = Runtime.create(device, precision, seed=seed, channels_last=channels_last)
    data = data or "fashion-mnist"
    random_crops = bool(random_crops)
    dataset = load_dataset(data, size=size, channels=channels, limit=limit, split="train", random_crops=random_crops)
    model_cfg = model_cls(**{**model_defaults(dataset), **fields_of(options, model_cls)})
    prepared = prepare(model_cfg, task_cfg) if prepare is not None else None
    if run is None and runtime.distributed:
        raise RunError("under torchrun give the run directory (--run-dir): every rank must agree on it")
    path = run or default_run_dir(family, data)
    config = {
        "family": family, "pixelforge_version": __version__,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "model": {"name": model, "config": dataclasses.asdict(model_cfg)},
        "task": dataclasses.asdict(task_cfg), "train": dataclasses.asdict(train_cfg),
        "data": {"spec": data, "size": dataset.size, "channels": dataset.channels,
                 "classes": dataset.classes if keep_classes else [], "limit": limit, "split": "train",
                 "random_crops": random_crops},
        "seed": seed, "runtime": runtime.describe(),
    }
    # Under torchrun rank 0 creates the run directory; the other ranks open it once it exists.
    r = Run.create(path, config, overwrite=overwrite) if runtime.is_main else None
    runtime.barrier()
    r = r or Run.open(path)
    return Session(r, runtime, dataset, model, model_cfg, task_cfg, train_cfg, seed, prepared)


def _check_compatible(cfg: dict, task_cls: type, options: dict, data, size, channels, random_crops) -> None:
    # Fields a run predates (written before the option existed) hold what the resumed run's configs
    # will: their ABSENT_IN_OLDER values where a config names them (pixelforge.registry.stored_config),
    # else their defaults.
    classes = (get_entry(cfg["model"]["name"]).config_cls, task_cls)
    defaults = {f.name: f.default for c in classes for f in dataclasses.fields(c)
                if f.default is not dataclasses.MISSING}
    for c in classes:
        defaults.update(getattr(c, "ABSENT_IN_OLDER", {}))
    stored = {**defaults, **cfg["model"]["config"], **cfg["task"]}
    clashes = [f"{k}={v!r} (run has {stored[k]!r})" for k, v in options.items()
               if v is not None and k in stored and stored[k] != v]
    d = cfg["data"]
    if data is not None and data != d["spec"]:
        clashes.append(f"data={data!r} (run has {d['spec']!r})")
    for k, v in (("size", size), ("channels", channels)):
        if v is not None and v != d[k]:
            clashes.append(f"{k}={v} (run has {d[k]})")
    if random_crops is not None and random_crops != d.get("random_crops", False):
        clashes.append(f"random_crops={random_crops} (run has {d.get('random_crops', False)})")
    if clashes:
        raise RunError(f"cannot resume {cfg['model']['name']} run with different settings: " + "; ".join(clashes))


def open_model(run_dir: str | os.PathLike, family: str, device: str = "auto"):
    """(run, model config, the rebuilt model with fresh weights, fp32 runtime) for a ``family`` run."""
    r = Run.open(run_dir)
    cfg = r.config
    if cfg.get("family") != family:
        raise RunError(f"{run_dir} is a {cfg.get('family')} run; this needs a {family} run")
    entry = get_entry(cfg["model"]["name"])
    try:
        model_cfg = stored_config(entry.config_cls, cfg["model"]["config"])
    except TypeError as e:
        raise RunError(f"{run_dir}/config.json does not describe a {entry.name} model: {e}") from None
    model = entry.builder(model_cfg)
    return r, model_cfg, model, Runtime.create(device, "fp32")


def trained_on_val(d: dict) -> bool:
    """Whether a run's training data (config.json ``data``) held its validation images: runs from
    before validation splits (no ``split``) trained on "train+val"."""
    return d.get("split", LEGACY_TRAIN_SPLIT) != "train"


def check_unseen(d: dict, split: str, what: str) -> None:
    """Refuse to measure a run on validation images it trained on (runs from before validation splits)."""
    if split == "val" and trained_on_val(d):
        raise RunError(f"{what} measures on the validation split, which this run trained on (it predates "
                       "validation splits: config.json has no data.split); train a new run")


def held_out(d: dict, split: str, limit: int | None = None) -> ImageData | None:
    """The ``split`` ("val" or "test") images of a run's dataset at its size and channels, or None
    (logged) when there are none to measure on: in-memory data, a folder's test split, a dataset
    too small for a validation split, or the validation images of a run that trained on them."""
    if d["spec"].startswith("memory:"):
        return None
    if split == "val" and trained_on_val(d):
        log.warning("no validation data: the run trained on its validation images (it predates validation splits)")
        return None
    try:
        return load_dataset(d["spec"], size=d["size"], channels=d["channels"], split=split, limit=limit)
    except DataError as e:
        log.warning("no %s data: %s", split, e)
        return None


def evaluation_data(d: dict, limit: int | None = None) -> tuple[ImageData | None, ImageData | None]:
    """(the validation images, the images results are reported on: test) of a run's dataset, each
    None where :func:`held_out` finds none; for a folder both are its validation images."""
    val = held_out(d, "val", limit)
    split = report_split(d["spec"])
    return val, (val if split == "val" else held_out(d, split, limit))


def best_checkpoint(run: Run) -> Path:
    """The checkpoint ``--best`` loads: the one ``--eval-every`` kept by its validation FID; a
    :class:`RunError` when the run has none, or only one chosen on the test split (older runs)."""
    best = run.best_checkpoint()
    if best is None:
        raise RunError(f"{run.path} has no validation metrics for --best: train it with --eval-every to keep the "
                       "best checkpoint")
    split = json.loads((best / "best.json").read_text()).get("split", "test")
    if split != "val":
        raise RunError(f"{run.path} has no validation metrics for --best: its best checkpoint was chosen on the "
                       f"{split} split (before validation splits); sample its latest checkpoint instead")
    return best


def load_weights_into(run: Run, module, weights_name: str, checkpoint: Path | None = None) -> None:
    try:
        module.load_state_dict(run.load_weights(weights_name, checkpoint))
    except RuntimeError as e:
        raise RunError(f"weights in {checkpoint or run.latest_checkpoint()} do not fit the model in config.json: "
                       f"{str(e).splitlines()[0]}") from None


class LabelParser:
    """Class labels for conditional generators: needs ``num_classes`` and ``classes``."""

    num_classes: int
    classes: list[str]

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def parse_labels(self, labels, n: int) -> torch.Tensor | None:
        """None / 'all' / an int / ints / class names / '0,3,5' / a tensor -> a (n,) label tensor
        cycling through them."""
        if not self.conditional:
            if labels is not None and not (isinstance(labels, (str, list, tuple)) and len(labels) == 0):
                raise PixelforgeError("this model is unconditional: it takes no labels")
            return None
        if isinstance(labels, torch.Tensor):
            items = labels.tolist()
        elif labels is None or labels == "all":
            items = list(range(self.num_classes))
        elif isinstance(labels, numbers.Integral):
            items = [labels]
        else:
            items = labels.split(",") if isinstance(labels, str) else list(labels)
        ids = [self._label_id(x) for x in items]
        if not ids:
            raise PixelforgeError("give at least one label")
        return torch.tensor([ids[i % len(ids)] for i in range(n)], dtype=torch.long)

    def _label_id(self, x) -> int:
        s = str(x).strip()
        if s.lstrip("-").isdigit():
            i = int(s)
        elif s in self.classes:
            i = self.classes.index(s)
        else:
            raise PixelforgeError(f"unknown label {s!r}; use 0..{self.num_classes - 1} or one of {self.classes}")
        if not 0 <= i < self.num_classes:
            raise PixelforgeError(f"label {i} out of range 0..{self.num_classes - 1}")
        return i


def samples_report(pipe) -> list[str]:
    """What ``pixelforge train`` prints after training a family that writes samples/final.png."""
    return [f"samples: {pipe.path / 'samples' / 'final.png'}"]
