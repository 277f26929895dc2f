"""Does generated data help when labelled images are scarce? The per-budget lever study.

For a per-class budget k and a seed, k labelled images of every class are drawn from the
training split and written to a folder (``ROOT/k{k}-s{seed}/images``, one subfolder per class).
The folder's fixed validation fraction (:mod:`pixelforge.data.splits`: the files whose path
hashes into the lowest tenth, so about k images in all) is the only validation data: every choice - each arm's classifier
steps, the best classic and the best generative arm - is made on it. The test split is touched
once per arm and seed, for the reported number.

Each arm (:data:`ARMS`) is a way to train the classifier on the folder's training images:
classic augmentation (none; flips and shifts; plus mixup) or generated images added at a ratio
to the real ones (optionally filtered by a classifier's confidence or by their nearest real
neighbours, or with mixup), or used to pre-train the classifier before the real images
fine-tune it (with mixup in both phases, or without; the pre-training on the generated images
alone, or on them mixed with the real ones: a schedule of the mixing ratio). The generator of the "budget" arms is
trained on the folder's training images only, so it has seen exactly what the classifier sees:
a class-conditional GAN with DiffAugment, or a class-conditional diffusion model sampled with
classifier-free guidance (:data:`DIFFUSION_SAMPLER`; its arms run at the target budgets only, as
each diffusion model takes tens of CPU minutes to train and sample). A "full" generator (optional,
``full_generator``) was trained on the whole training split: a different experiment, since it
brings the knowledge of tens of thousands of labelled images, reported apart.

The verdict compares, per seed, the test accuracy of the best generative arm with that of the
best classic arm (both chosen on validation): at 50 and 100 images per class the generative one
should win by :data:`TARGET_GAIN` (mean minus one standard deviation of the per-seed gains), and
at other budgets its mean should not fall below the classic one's by more than that arm's
standard deviation over the seeds.

Every fit is cached in ``ROOT/study.json`` and every run is kept, so an interrupted study
resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from .. import dryrun
from ..data import ImageData, load_dataset
from ..data.splits import MIN_FOLDER_FILES
from ..errors import PixelforgeError
from ..images import pyplot, save_figure, save_grid, save_png
from ..pipelines.classifier import fit_classifier
from ..runs import Run, atomic_write_bytes, atomic_write_json
from ..training.loop import TrainConfig
from .augment import check_per_class_budget, concat, conditional_pipe, generated_dataset, real_subset


@dataclass(frozen=True)
class Arm:
    name: str
    augment: str = "flip,crop"  # the classifier's on-the-fly augmentation
    mixup: float = 0.0
    synthetic: int = 0  # generated images per real training image, class by class
    generator: str = ""  # "budget" (trained on the same scarce images) or "full" (on the whole split)
    # keep the generated images a real-data classifier is surest of ("confidence") or whose
    # nearest real neighbour in its feature space is of their class by the widest margin ("neighbour")
    filtered: str = ""
    pretrain: bool = False  # the generated images pre-train the classifier, then the real ones fine-tune it
    # the pre-training mixes the real images in with the generated ones: a schedule of the mixing ratio
    # (synthetic:1 for the first phase, real images alone after)
    pretrain_with_real: bool = False
    family: str = "gan"  # of a "budget" generator: "gan" or "diffusion"
    budgets: tuple[int, ...] = ()  # the per-class budgets the arm runs at (empty: every budget)

    def runs_at(self, k: int) -> bool:
        return not self.budgets or k in self.budgets

    @property
    def kind(self) -> str:
        return {"": "classic", "budget": "generative", "full": "full-split generator"}[self.generator]


TARGET_BUDGETS = (50, 100)  # where generated data must win by TARGET_GAIN; at other budgets not lose
CLASSIC = Arm("flips + shifts")
ARMS = (
    Arm("no augmentation", augment=""),
    CLASSIC,
    Arm("flips + shifts + mixup", mixup=0.2),
    Arm("flips + shifts + generated 1:1", synthetic=1, generator="budget"),
    Arm("flips + shifts + generated 4:1", synthetic=4, generator="budget"),
    Arm("flips + shifts + generated 4:1, confidence-filtered", synthetic=4, generator="budget", filtered="confidence"),
    Arm("flips + shifts + generated 4:1, nearest-neighbour-filtered", synthetic=4, generator="budget",
        filtered="neighbour"),
    Arm("flips + shifts + mixup + generated 1:1", mixup=0.2, synthetic=1, generator="budget"),
    Arm("generated 10:1 pre-training, then flips + shifts on real", synthetic=10, generator="budget", pretrain=True),
    # mixup, the best classic lever at 50 and 100 per class, in both phases of the pre-training arm
    Arm("generated 10:1 pre-training, then flips + shifts on real, mixup in both", mixup=0.2, synthetic=10,
        generator="budget", pretrain=True),
    # the mixing ratio's schedule: real and generated mixed for a first phase, real alone after
    Arm("real + generated 10:1 pre-training, then flips + shifts on real", synthetic=10, generator="budget",
        pretrain=True, pretrain_with_real=True, budgets=TARGET_BUDGETS),
    Arm("real + generated 10:1 pre-training, then flips + shifts on real, mixup in both", mixup=0.2, synthetic=10,
        generator="budget", pretrain=True, pretrain_with_real=True, budgets=TARGET_BUDGETS),
    Arm("flips + shifts + diffusion 1:1", synthetic=1, generator="budget", family="diffusion", budgets=TARGET_BUDGETS),
    Arm("diffusion 10:1 pre-training, then flips + shifts on real", synthetic=10, generator="budget",
        family="diffusion", pretrain=True, budgets=TARGET_BUDGETS),
    Arm("flips + shifts + generated 4:1 from the full split", synthetic=4, generator="full"),  # a different experiment
)
BUDGETS = (10, 50, 100, 500)  # real images per class
SEEDS = (0, 1, 2)
STEPS = (300, 900)  # the classifier step counts each arm chooses from on validation
GAN_STEPS = 2000
GAN_DIFFAUG = "translation,cutout"
DIFFUSION_STEPS = 3000
DIFFUSION_MODEL: dict = {}  # U-Net options of the budget diffusion model (empty: the family's defaults)
# The budget diffusion model's sampler, fixed (the scale docs/diffusion.md chose on the full
# split) rather than chosen per budget: every choice would mean sampling each arm's images again.
DIFFUSION_SAMPLER = {"solver": "dpm++", "steps": 15, "guidance": 1.5}
FILTER_POOL = 2  # the filtered arm draws this many times the images it keeps
TARGET_GAIN = 0.02


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def write_budget_folder(data: ImageData, per_class: int, seed: int, folder: Path) -> Path:
    """``per_class`` images of every class of ``data`` (:func:`real_subset`) as PNGs in one
    subfolder per class, named ``NN-class`` so that the folder's sorted classes keep the
    dataset's label order. Written once; an existing folder is reused."""
    if (folder / ".complete").exists():
        return folder
    subset = real_subset(data, per_class, seed)
    digits = max(2, len(str(data.num_classes - 1)))
    for i, (image, label) in enumerate(zip(subset.images, subset.labels.tolist())):
        arr = image.permute(1, 2, 0).numpy()
        save_png(arr[:, :, 0] if arr.shape[2] == 1 else arr,
                 folder / f"{label:0{digits}d}-{_slug(data.classes[label])}" / f"{i:05d}.png")
    (folder / ".complete").write_text("")
    return folder


def budget_generator(folder: Path, run: Path, size: int, channels: int, seed: int, steps: int = GAN_STEPS,
                     progress: bool = False, family: str = "gan"):
    """The class-conditional generator trained on the training images of ``folder`` for
    ``steps`` steps (in batches no larger than those images): the default GAN recipe plus
    DiffAugment, or (``family="diffusion"``) the default diffusion recipe, sampled with
    :data:`DIFFUSION_SAMPLER`. Resumed where a run stopped, reused when done."""
    from ..api import load
    from ..pipelines.diffusion import train_diffusion
    from ..pipelines.gan import train_gan

    sampler = DIFFUSION_SAMPLER if family == "diffusion" else {}
    if _finished(run, steps):
        return load(run, **sampler)
    resume = Run.resumable(run)
    new_run = {}
    if not resume:
        images = load_dataset(f"folder:{folder}", size=size, channels=channels)
        new_run = {"size": size, "channels": channels, "batch_size": min(TrainConfig.batch_size, len(images))}
    common = {"resume": resume, "overwrite": not resume, "conditional": True, "max_steps": dryrun.cap(steps, "steps"),
              "seed": seed, "progress": progress, **new_run}
    data = None if resume else f"folder:{folder}"
    if family == "diffusion":
        train_diffusion(data, run, **common, **({} if resume else DIFFUSION_MODEL))
        return load(run, **sampler)
    return train_gan(data, run, diffaug=GAN_DIFFAUG, **common)


def _finished(run: Path, steps: int) -> bool:
    """Whether ``run`` holds a checkpoint at ``steps`` steps or more."""
    if not Run.resumable(run):
        return False
    return Run(run).load_state()["step"] >= dryrun.cap(steps, "steps")


def confidence_filtered(pool: ImageData, judge, per_class: int) -> ImageData:
    """``per_class`` generated images of every class: the surest of the generated ``pool``, by
    the probability ``judge`` (a classifier trained on the same real images) gives the class they
    were generated for."""
    return _best_of_each_class(pool, judge.predict(pool.images).gather(1, pool.labels[:, None]).squeeze(1), per_class)


def neighbour_filtered(pool: ImageData, judge, real: ImageData, per_class: int) -> ImageData:
    """``per_class`` generated images of every class: those of the generated ``pool`` whose
    nearest real image (in ``judge``'s feature space, by cosine distance) of the class they were
    generated for is nearest compared with the nearest real image of any other class."""
    fake_f = torch.nn.functional.normalize(judge.features(pool.images), dim=1)
    real_f = torch.nn.functional.normalize(judge.features(real.images), dim=1)
    distance = torch.cdist(fake_f, real_f)
    same = pool.labels[:, None] == real.labels[None, :]
    to_own = distance.masked_fill(~same, float("inf")).min(1).values
    to_other = distance.masked_fill(same, float("inf")).min(1).values
    return _best_of_each_class(pool, to_other - to_own, per_class)


def _best_of_each_class(pool: ImageData, score: torch.Tensor, per_class: int) -> ImageData:
    keep = []
    for c in range(pool.num_classes):
        members = (pool.labels == c).nonzero().flatten()
        keep.append(members[score[members].argsort(descending=True)[:per_class]])
    keep = torch.cat(keep)
    return dataclasses.replace(pool, images=pool.images[keep], labels=pool.labels[keep])


class BudgetStudy:
    """One study: ``root`` holds the budget folders, the generator and classifier runs, and the cache."""

    def __init__(self, root: str | os.PathLike, data: str = "fashion-mnist", arms=None, steps=STEPS,
                 full_generator: str | os.PathLike | None = None, gan_steps: int = GAN_STEPS,
                 diffusion_steps: int = DIFFUSION_STEPS, cache: str | os.PathLike | None = None,
                 size: int | None = None, progress: bool = False):
        """``data``: a labelled dataset with a test split, at its own size or ``size``;
        ``full_generator``: a class-conditional GAN run for the full-split arm (left out without one);
        ``cache``: the JSON file of every fit's accuracies (default ``root/study.json``)."""
        self.root = Path(root)
        self.data_spec = data
        self.arms = tuple(a for a in arms or ARMS if a.generator != "full" or full_generator)
        self.steps = tuple(steps)
        self.full_generator = full_generator
        self.gan_steps = gan_steps
        self.diffusion_steps = diffusion_steps
        self.progress = progress
        self.train = load_dataset(data, size=size)
        if not self.train.num_classes:
            raise PixelforgeError(f"{data} has no classes; the augmentation study needs labelled images")
        try:
            self.test = load_dataset(data, split="test", size=self.train.size, channels=self.train.channels)
        except PixelforgeError as e:
            raise PixelforgeError(f"the augmentation study reports on a test split, which {data} lacks ({e})") from None
        self.cache_path = Path(cache) if cache else self.root / "study.json"
        try:
            self.cache = json.loads(self.cache_path.read_text()) if self.cache_path.exists() else {}
        except (OSError, json.JSONDecodeError) as e:
            raise PixelforgeError(f"cannot read the study cache {self.cache_path} ({e}); give another output "
                                  "folder") from None
        if not isinstance(self.cache, dict):
            raise PixelforgeError(f"{self.cache_path} is not a study cache; give another output folder")
        self.selection_seed = SEEDS[0]
        self._check_settings()
        self._pipes: dict = {}
        if full_generator and Path(full_generator).exists():  # checked now, before any long fit
            self._pipes["full"] = self._full_generator()
        self._splits: dict = {}
        self._drawn: dict = {}

    def _check_settings(self) -> None:
        """Refuse to mix fits of other settings into a cached study (its runs would be reused)."""
        settings = {"data": self.data_spec, "size": self.train.size, "channels": self.train.channels,
                    "gan_steps": self.gan_steps, "gan_diffaug": GAN_DIFFAUG, "fast_mode": dryrun.active()}
        saved = self.cache.setdefault("settings", settings)
        for key, value in self.diffusion_recipe().items():  # a study cached before the diffusion arms had none
            settings[f"diffusion_{key}"] = value
            saved.setdefault(f"diffusion_{key}", value)
        if self.full_generator:  # as given (a cache travels with the repository), compared resolved
            settings["full_generator"] = str(self.full_generator)
            saved.setdefault("full_generator", settings["full_generator"])

        def same(key, value):
            if key == "full_generator":
                return Path(saved[key]).resolve() == Path(value).resolve()
            return saved.get(key) == value

        changed = [f"{k} {saved.get(k)} (not {v})" for k, v in settings.items() if not same(k, v)]
        if changed:
            raise PixelforgeError(f"{self.cache_path} holds a study with {', '.join(changed)}; "
                                  "give another output folder")

    def diffusion_recipe(self) -> dict:
        return {"steps": self.diffusion_steps, "sampler": dict(DIFFUSION_SAMPLER), "model": dict(DIFFUSION_MODEL)}

    # -- data and generators --------------------------------------------------------------
    def folder(self, k: int, seed: int) -> Path:
        return write_budget_folder(self.train, k, seed, self.root / f"k{k}-s{seed}" / "images")

    def split(self, k: int, seed: int, split: str) -> ImageData:
        """The budget folder's ``split`` ("train" or "val"), read once."""
        key = (k, seed, split)
        if key not in self._splits:
            d = load_dataset(f"folder:{self.folder(k, seed)}", size=self.train.size, channels=self.train.channels,
                             split=split)
            self._splits[key] = dataclasses.replace(d, classes=list(self.train.classes))
        return self._splits[key]

    def _full_generator(self):
        pipe = conditional_pipe(self.full_generator)
        if pipe.classes != list(self.train.classes):
            raise PixelforgeError(f"{self.full_generator} draws the classes {', '.join(pipe.classes)}; "
                                  f"{self.data_spec} has {', '.join(self.train.classes)}")
        if (pipe.cfg.image_size, pipe.cfg.channels, pipe.cfg.num_classes) != (
                self.train.size, self.train.channels, self.train.num_classes):
            raise PixelforgeError(
                f"{self.full_generator} makes {pipe.cfg.image_size} px, {pipe.cfg.channels}-channel images of "
                f"{pipe.cfg.num_classes} classes; {self.data_spec} has {self.train.size} px, "
                f"{self.train.channels}-channel images of {self.train.num_classes}")
        return pipe

    def generator(self, arm: Arm, k: int, seed: int):
        if arm.generator == "full":  # a cached study resumes without the run where its fits are cached
            if "full" not in self._pipes:
                self._pipes["full"] = self._full_generator()
            return self._pipes["full"]
        key = (arm.family, k, seed)
        if key not in self._pipes:
            run = self.root / f"k{k}-s{seed}" / arm.family
            steps = self.diffusion_steps if arm.family == "diffusion" else self.gan_steps
            pipe = budget_generator(self.folder(k, seed), run, self.train.size, self.train.channels, seed,
                                    steps, self.progress, family=arm.family)
            self._pipes[key] = pipe
            if not (run / "per_class.png").exists():  # a row of ten per class
                save_grid(generated_dataset(pipe, 10, seed=0).images.float() / 255, run / "per_class.png", nrow=10)
        return self._pipes[key]

    def drawn(self, arm: Arm, k: int, seed: int, per_class: int) -> ImageData:
        """``per_class`` images of every class from the arm's generator (sampling seed 1000 +
        ``seed``), drawn once: a budget generator's draws are kept in its run folder, since a
        diffusion model takes minutes to sample them."""
        key = (arm.generator, arm.family, k, seed, per_class)
        if key in self._drawn:
            return self._drawn[key]
        pipe = self.generator(arm, k, seed)
        file = Path(pipe.path) / "drawn" / f"{per_class}-per-class-s{1000 + seed}.safetensors"
        if arm.generator == "budget" and file.is_file():
            kept = load_file(file)
            data = ImageData(kept["images"], kept["labels"], list(pipe.classes), "generated",
                             f"{arm.family}:{pipe.path}")  # as generated_dataset names its draws
        else:
            data = generated_dataset(pipe, per_class, seed=1000 + seed)
            if arm.generator == "budget":
                file.parent.mkdir(exist_ok=True)
                atomic_write_bytes(file, save({"images": data.images.contiguous(), "labels": data.labels}))
        self._drawn[key] = data
        return data

    def generated(self, arm: Arm, k: int, seed: int) -> ImageData:
        """The arm's generated images: ``arm.synthetic`` per real training image, class by class."""
        real = self.split(k, seed, "train")
        per_class = arm.synthetic * max(1, round(len(real) / real.num_classes))
        if not arm.filtered:
            return self.drawn(arm, k, seed, per_class)
        pool = self.drawn(arm, k, seed, per_class * FILTER_POOL)
        judge, _ = self.classifier(CLASSIC, k, seed, self.chosen_steps(CLASSIC, k))
        if arm.filtered == "confidence":
            return confidence_filtered(pool, judge, per_class)
        return neighbour_filtered(pool, judge, real, per_class)

    def training_set(self, arm: Arm, k: int, seed: int) -> ImageData:
        """The images the arm's classifier is trained (for a pre-training arm: fine-tuned) on."""
        real = self.split(k, seed, "train")
        if not arm.synthetic or arm.pretrain:
            return real
        return concat(real, self.generated(arm, k, seed))

    def pretrained(self, arm: Arm, k: int, seed: int):
        """A pre-training arm's classifier after as many steps on its generated images alone as
        the longest fit of the step grid (trained once, then loaded)."""
        from ..api import load

        run = self.root / f"k{k}-s{seed}" / "classifiers" / f"{_slug(arm.name)}-pretraining"
        steps = max(self.steps)
        if _finished(run, steps):
            return load(run)
        fake = self.generated(arm, k, seed)
        if arm.pretrain_with_real:
            fake = concat(self.split(k, seed, "train"), fake)
        pipe, _ = fit_classifier(fake, None, run, max_steps=steps, batch_size=min(64, len(fake)), seed=seed,
                                 augment=arm.augment, mixup=arm.mixup, progress=self.progress)
        return pipe

    # -- classifiers and the cache --------------------------------------------------------
    def _key(self, arm: Arm, k: int, seed: int, steps: int) -> str:
        return f"{k}|{seed}|{arm.name}|{steps}"

    def _save(self) -> None:
        atomic_write_json(self.cache_path, self.cache)

    def classifier(self, arm: Arm, k: int, seed: int, steps: int):
        """The arm's classifier for budget ``k`` and ``seed`` at ``steps`` steps (trained once,
        then loaded), with its cache entry (validation accuracy)."""
        from ..api import load

        key = self._key(arm, k, seed, steps)
        run = self.root / f"k{k}-s{seed}" / "classifiers" / f"{_slug(arm.name)}-{steps}"
        entry = self.cache.get(key)
        finished = _finished(run, steps)
        if entry is not None and finished:
            return load(run), entry
        train = self.training_set(arm, k, seed)
        if finished:  # trained to the end, stopped before its accuracy was cached: measured again
            pipe = load(run)
        else:
            self.cache.pop(key, None)  # a stale entry of an unfinished or lost run
            init = self.pretrained(arm, k, seed) if arm.pretrain else None
            pipe, _ = fit_classifier(train, None, run, max_steps=steps, batch_size=min(64, len(train)), seed=seed,
                                     augment=arm.augment, mixup=arm.mixup, init=init, progress=self.progress)
        val = self.split(k, seed, "val")
        entry = {"val_accuracy": pipe.accuracy(val.images, val.labels), "train_images": len(train),
                 "val_images": len(val)}
        self.cache[key] = entry
        self._save()
        return pipe, entry

    def _entry(self, arm: Arm, k: int, seed: int, steps: int) -> dict:
        """The cached accuracies of a fit, fitting it first if there are none."""
        return self.cache.get(self._key(arm, k, seed, steps)) or self.classifier(arm, k, seed, steps)[1]

    def chosen_steps(self, arm: Arm, k: int) -> int:
        """The arm's step count with the best validation accuracy on the selection seed (the study's
        first; fewer steps on a tie)."""
        scores = {s: self._entry(arm, k, self.selection_seed, s)["val_accuracy"] for s in self.steps}
        return max(self.steps, key=lambda s: (scores[s], -s))

    def test_accuracy(self, arm: Arm, k: int, seed: int) -> tuple[float, float]:
        """(validation, test) accuracy of the arm at its chosen steps; the test split is scored once."""
        steps = self.chosen_steps(arm, k)
        entry = self._entry(arm, k, seed, steps)
        if "test_accuracy" not in entry:
            pipe, entry = self.classifier(arm, k, seed, steps)
            n = dryrun.cap(len(self.test), "scored")
            entry["test_accuracy"] = pipe.accuracy(self.test.images[:n], self.test.labels[:n])
            self._save()
        return entry["val_accuracy"], entry["test_accuracy"]

    # -- the study ------------------------------------------------------------------------
    def run(self, budgets=BUDGETS, seeds=SEEDS) -> dict:
        seeds = tuple(dict.fromkeys(seeds))[:dryrun.cap(len(seeds), "repeats")]
        budgets = sorted(set(budgets))
        if not seeds or not budgets:
            raise PixelforgeError("the augmentation study needs at least one budget and one seed")
        self.selection_seed = seeds[0]
        for k in budgets:
            check_per_class_budget(self.train, k)
            if k * self.train.num_classes < MIN_FOLDER_FILES:
                raise PixelforgeError(f"--per-class {k} gives {k * self.train.num_classes} images, too few to hold "
                                      f"a tenth out for validation; use at least "
                                      f"{-(-MIN_FOLDER_FILES // self.train.num_classes)}")
        for k in budgets:  # every budget's folder has validation images before anything trains
            for seed in seeds:
                self.split(k, seed, "val")
        rows = []
        for k in budgets:
            arms = []
            for arm in (a for a in self.arms if a.runs_at(k)):
                val, test = zip(*(self.test_accuracy(arm, k, s) for s in seeds))
                arms.append({"arm": arm.name, "kind": arm.kind, "steps": self.chosen_steps(arm, k),
                             "val": _stats(val), "test": _stats(test)})
            rows.append({"per_class": k, "arms": arms, **verdict(arms, k)})
        return {"data": self.data_spec, "budgets": list(budgets), "seeds": list(seeds), "steps_grid": list(self.steps),
                "gan_steps": self.gan_steps, "gan_diffaug": GAN_DIFFAUG,
                "diffusion": self.diffusion_recipe(),
                "full_generator": str(self.full_generator or ""), "test_images": len(self.test), "rows": rows}


def _stats(values) -> dict:
    values = [float(v) for v in values]
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "runs": values}


def verdict(arms: list[dict], k: int) -> dict:
    """The best classic and the best generative arm (by mean validation accuracy) and the
    per-seed test gain of the second over the first, against the target for budget ``k``."""
    def best(kind):
        candidates = [a for a in arms if a["kind"] == kind]
        return max(candidates, key=lambda a: a["val"]["mean"]) if candidates else None

    classic, generative = best("classic"), best("generative")
    if classic is None or generative is None:
        return {}
    gains = [g - c for g, c in zip(generative["test"]["runs"], classic["test"]["runs"])]
    gain = _stats(gains)
    if k in TARGET_BUDGETS:
        target, met = f"gain >= {TARGET_GAIN:+.0%}", gain["mean"] - gain["std"] >= TARGET_GAIN
    else:  # not below the baseline by more than the baseline's own spread over seeds
        baseline = _stats(classic["test"]["runs"])
        target, met = "not below by > 1 std", _stats(generative["test"]["runs"])["mean"] >= baseline["mean"] - baseline["std"]
    return {"best_classic": classic["arm"], "best_generative": generative["arm"], "gain": gain,
            "target": target, "met": met}


def budget_study(out: str | os.PathLike, data: str = "fashion-mnist", budgets=BUDGETS, seeds=SEEDS, steps=STEPS,
                 gan_steps: int = GAN_STEPS, diffusion_steps: int = DIFFUSION_STEPS,
                 generator: str | os.PathLike | None = None, size: int | None = None, progress: bool = False) -> dict:
    """The whole study in ``out`` (its budget folders, runs and cache there, so that a stopped
    study resumes), then its report: ``augmentation.json``, ``.md`` and ``.png``. ``generator``:
    a class-conditional GAN run trained elsewhere, added as the full-split arm."""
    study = BudgetStudy(out, data, steps=steps, full_generator=generator, gan_steps=gan_steps,
                        diffusion_steps=diffusion_steps, size=size, progress=progress)
    result = study.run(budgets, seeds)
    write_report(result, out)
    return result


def write_report(result: dict, out: str | os.PathLike) -> None:
    """study.json's figures as ``augmentation.json``, a Markdown table and a plot in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "augmentation.json", result)
    lines = ["| real images per class | arm | steps | validation | test (mean +- std) |", "|---:|---|---:|---:|---:|"]
    for row in result["rows"]:
        for a in row["arms"]:
            lines.append(f"| {row['per_class']} | {a['arm']} | {a['steps']} | {a['val']['mean']:.2%} | "
                         f"{a['test']['mean']:.2%} +- {a['test']['std']:.2%} |")
        if row.get("gain"):
            lines.append(f"| {row['per_class']} | **best generative - best classic** | | | "
                         f"{row['gain']['mean']:+.2%} +- {row['gain']['std']:.2%} "
                         f"({row['target']}: {'met' if row['met'] else 'missed'}) |")
    (out / "augmentation.md").write_text("\n".join(lines) + "\n")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    budgets = [r["per_class"] for r in result["rows"]]
    names = list(dict.fromkeys(a["arm"] for r in result["rows"] for a in r["arms"]))  # some skip large budgets
    for i, name in enumerate(names):
        at = [(r["per_class"], a) for r in result["rows"] for a in r["arms"] if a["arm"] == name]
        cells = [a for _, a in at]
        shift = 1 + 0.025 * (i - (len(names) - 1) / 2)  # side by side around each budget
        ax.errorbar([b * shift for b, _ in at], [c["test"]["mean"] for c in cells],
                    yerr=[c["test"]["std"] for c in cells], marker="o", capsize=3, label=name,
                    linestyle="--" if cells[0]["kind"] != "classic" else "-")
    ax.set_xscale("log")
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("real labelled images per class")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_figure(fig, out / "augmentation.png")
