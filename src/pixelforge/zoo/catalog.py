"""The shipped weights: small networks the project trained with its own commands.

Each entry is ``NAME.safetensors`` (fp16 weights) beside ``NAME.json`` (registry model
name, config, classes, the command that trained it and its measured metrics); the model
card ``MODEL_CARDS.md`` describes them for people. The Fashion-MNIST and MNIST
classifiers are the default *judges* of generated images: their pooled features are the
embedding for FID/KID/precision-recall, so every number is comparable across runs and
machines as long as the versioned name is the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import load_file, save_file

from ..data.splits import LEGACY_TRAIN_SPLIT
from ..errors import PixelforgeError
from ..registry import get_entry, stored_config
from ..runs import Run

ZOO_DIR = Path(__file__).parent
ZOO_PREFIX = "zoo:"

# Which shipped judge to use for a dataset spec (class selectors share their dataset's judge).
# fashion-mnist-cnn-v2 trained on the train split only; v1 (all 60,000 training images) stays
# shipped so that the results measured with it can be reproduced.
JUDGES = {"fashion-mnist": "fashion-mnist-cnn-v2", "mnist": "mnist-cnn-v1"}
# Judges beside the default, for reports: an independently trained second judge (another
# architecture and seed), then earlier defaults kept for reproducing their results.
OTHER_JUDGES = {"fashion-mnist": ("fashion-mnist-cnn-gn-v1", "fashion-mnist-cnn-v1")}


def list_pretrained(family: str | None = None) -> list[str]:
    """Shipped model names, optionally only those of one family ("classifier", "sr")."""
    names = sorted(p.stem for p in ZOO_DIR.glob("*.json") if (ZOO_DIR / f"{p.stem}.safetensors").is_file())
    if family is None:
        return names
    return [n for n in names if json.loads((ZOO_DIR / f"{n}.json").read_text()).get("family", "classifier") == family]


def shipped_name(spec: str | os.PathLike) -> str:
    """The shipped model's name in ``spec``: ``zoo:NAME``, the one spelling everywhere, or the
    bare NAME that older commands took."""
    spec = str(spec)
    return spec[len(ZOO_PREFIX):] if spec.startswith(ZOO_PREFIX) else spec


def card(name: str) -> dict:
    path = ZOO_DIR / f"{name}.json"
    if not path.is_file() or not (ZOO_DIR / f"{name}.safetensors").is_file():
        raise PixelforgeError(f"no shipped model {name!r}; shipped: {', '.join(list_pretrained()) or 'none'}")
    return json.loads(path.read_text())


def load_network(name: str, family: str):
    """A shipped model's network (fp32 weights, on the CPU) and its card; refuses another family's model."""
    info = card(name)
    if info.get("family", "classifier") != family:
        raise PixelforgeError(f"shipped model {name!r} is a {info.get('family', 'classifier')} model, "
                              f"not a {family} model; load it with pixelforge.load('zoo:{name}')")
    entry = get_entry(info["model"])
    net = entry.builder(stored_config(entry.config_cls, info["config"]))
    weights = {k: v.float() if v.is_floating_point() else v
               for k, v in load_file(str(ZOO_DIR / f"{name}.safetensors")).items()}
    net.load_state_dict(weights)
    return net, info


def judge_for(data_spec: str) -> str:
    base = data_spec.split(":")[0]
    if base not in JUDGES:
        raise PixelforgeError(f"no shipped judge network for {base!r}; pass --extractor inception "
                              "or --extractor CLASSIFIER_RUN")
    return JUDGES[base]


def judges_for(data_spec: str) -> list[str]:
    """Every shipped judge for a dataset spec, the default first."""
    return [judge_for(data_spec), *OTHER_JUDGES.get(data_spec.split(":")[0], ())]


def export(run_dir: str | os.PathLike, name: str, command: str, dest: Path = ZOO_DIR) -> Path:
    """Copy a classifier run's weights (as fp16) and its test evaluation into the zoo; the card
    records the split it trained on (``data_split``: "train", or "train+val" for older runs)."""
    run = Run.open(run_dir)
    cfg = run.config
    if cfg.get("family") != "classifier":
        raise PixelforgeError(f"{run_dir} is not a classifier run")
    evaluation = json.loads((run.path / "evaluation.json").read_text())
    if "test_accuracy" not in evaluation:
        raise PixelforgeError(f"{run_dir} has no test accuracy to put on the card (its data has no test split)")
    weights = run.load_weights("classifier")
    half = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    save_file(half, str(dest / f"{name}.safetensors"), metadata={"name": name, "format": "pixelforge-zoo-1"})
    info = {"name": name, "model": cfg["model"]["name"], "config": cfg["model"]["config"],
            "classes": cfg["data"]["classes"], "data": cfg["data"]["spec"],
            "data_split": cfg["data"].get("split", LEGACY_TRAIN_SPLIT), "command": command,
            "trained": cfg.get("created"), "test_accuracy": evaluation["test_accuracy"],
            "test_images": evaluation["test_images"], "dtype": "float16"}
    (dest / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    return dest / f"{name}.safetensors"


def export_run(run_dir: str | os.PathLike, name: str, family: str, command: str, extra: dict | None = None,
               dest: Path | None = None) -> Path:
    """Copy a run's latest weights into the zoo as fp16 safetensors (integer tensors, such as a
    codec's coding tables, as they are) beside a JSON card: model, config, data, command, steps."""
    dest = dest or ZOO_DIR
    run = Run.open(run_dir)
    cfg = run.config
    if cfg.get("family") != family:
        raise PixelforgeError(f"{run_dir} is not a {family} run")
    weights = run.load_weights(family)
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()}
    path = dest / f"{name}.safetensors"
    save_file(half, str(path), metadata={"name": name, "format": "pixelforge-zoo-1"})
    metrics = run.read_metrics()
    info = {"name": name, "family": family, "model": cfg["model"]["name"], "config": cfg["model"]["config"],
            "data": cfg["data"]["spec"], "data_size": cfg["data"]["size"], "command": command,
            "trained": cfg.get("created"), "steps": metrics[-1].get("step") if metrics else None,
            "task": cfg["task"], "train": {k: cfg["train"][k] for k in ("batch_size", "minutes", "max_steps")},
            "runtime": cfg.get("runtime"), "dtype": "float16", **(extra or {})}
    (dest / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    return path
