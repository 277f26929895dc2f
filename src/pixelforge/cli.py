"""The ``pixelforge`` command: a thin shell over :mod:`pixelforge.api`.

Every user-caused problem surfaces as ``pixelforge: error: <one line>`` and exit status 2;
an interrupted training run saves a checkpoint and exits with 128 + the signal number.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import PixelforgeError


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {s}")
    return v


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:N")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16 autocast on CPUs that have it, fp16/bf16 AMP on CUDA")


def _add_common_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None,
                   help="fashion-mnist, mnist, digits, folder:PATH, or NAME:CLASSES (e.g. fashion-mnist:7,9)")
    # --run-dir, not only --run: torchrun's parser rejects "--run" as an abbreviation of its --run-path.
    p.add_argument("--run-dir", "--run", dest="run", default=None,
                   help="run directory (default runs/FAMILY-DATA-TIMESTAMP); under torchrun spell it --run-dir")
    p.add_argument("--resume", action="store_true", help="continue the run in --run where it stopped")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    d = p.add_argument_group("data")
    d.add_argument("--size", type=_positive_int, help="image size (default: the dataset's)")
    d.add_argument("--channels", type=int, choices=[1, 3], help="1 (grayscale) or 3 (RGB)")
    d.add_argument("--limit", type=_positive_int, help="use only the first N images (quick tries)")
    b = p.add_argument_group("budget (training stops at the first one reached)")
    b.add_argument("--epochs", type=_positive_int, help="total epochs for the run")
    b.add_argument("--minutes", type=_positive_float, help="wall-clock minutes for this invocation")
    b.add_argument("--max-steps", type=_positive_int, help="total optimisation steps for the run")
    b.add_argument("--batch-size", type=_positive_int, help="images per micro-batch and process (default 64)")
    b.add_argument("--grad-accum", type=_positive_int,
                   help="micro-batches per optimisation step (gradient accumulation, default 1)")
    b.add_argument("--checkpoint-minutes", type=_positive_float, help="checkpoint interval (default 5)")
    b.add_argument("--sync-bn", action="store_true", default=None,
                   help="under torchrun on CUDA: batch-norm statistics over the global batch")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--dry-run", action="store_true", help="a few steps on 512 images: checks the set-up")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_runtime_args(p)


def _add_gan_train_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--conditional", action="store_true", help="class-conditional G and projection D")
    m.add_argument("--latent-dim", type=_positive_int)
    m.add_argument("--width", type=_positive_int, help="base channel width (default 64)")
    m.add_argument("--d-norm", choices=["bn", "sn", "none"], help="discriminator normalisation")
    m.add_argument("--spectral-norm", action="store_true", help="same as --d-norm sn")
    t = p.add_argument_group("training")
    t.add_argument("--loss", choices=["ns", "hinge", "lsgan", "wgan-gp"], help="GAN loss (default ns)")
    t.add_argument("--lr-g", type=_positive_float, help="generator learning rate (default 2e-4)")
    t.add_argument("--lr-d", type=_positive_float, help="discriminator learning rate (default 2e-4)")
    t.add_argument("--d-steps", type=_positive_int, help="D updates per G update (default 1)")
    t.add_argument("--ema-decay", type=float, help="EMA decay of generator weights (default 0.999)")
    t.add_argument("--diffaug", help="DiffAugment policy, e.g. color,translation,cutout")
    v = p.add_argument_group("evaluation during training")
    v.add_argument("--eval-every", type=_positive_int, help="track FID/KID every N steps; keep the best checkpoint")
    v.add_argument("--eval-samples", type=_positive_int, default=2000, help="samples per evaluation (default 2000)")
    v.add_argument("--extractor", default=None, help="judge network: auto (shipped classifier), inception, "
                                                     "a shipped model name or a classifier run")
    _add_common_train_args(p)


def _add_classifier_train_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--width", type=_positive_int, help="channels of the first stage (default 32)")
    m.add_argument("--blocks", type=_positive_int, help="conv stages, each halving the resolution (default 3)")
    m.add_argument("--dropout", type=float, help="dropout before the last layer (default 0.2)")
    m.add_argument("--norm", choices=["bn", "gn", "none"], help="batch norm (default), group norm or none")
    t = p.add_argument_group("training")
    t.add_argument("--lr", type=_positive_float, help="peak learning rate of the one-cycle schedule (default 0.05)")
    t.add_argument("--weight-decay", type=float, help="default 5e-4")
    t.add_argument("--label-smoothing", type=float, help="default 0.1")
    t.add_argument("--augment", help="comma list of flip,translation,cutout,color; '' for none (default flip,translation)")
    _add_common_train_args(p)


def _add_sr_train_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--arch", choices=["edsr", "espcn"], default="edsr",
                   help="edsr (residual network, default) or espcn (3 convolutions, fastest)")
    m.add_argument("--scale", type=int, choices=[2, 3, 4], help="upscaling factor (default 4)")
    m.add_argument("--width", type=_positive_int, help="feature channels (default 32)")
    m.add_argument("--blocks", type=int, help="residual blocks, edsr only (default 6)")
    t = p.add_argument_group("training")
    t.add_argument("--crop", type=_positive_int, help="high-resolution crop size, a multiple of the scale (default 96)")
    t.add_argument("--loss", choices=["l1", "l2"], help="pixel loss (default l1)")
    t.add_argument("--lr", type=_positive_float, help="Adam's peak learning rate (default 1e-3)")
    _add_common_train_args(p)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="pixelforge", description="Deep-learning image generation workbench.")
    parser.add_argument("--version", action="version", version=f"pixelforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model").add_subparsers(dest="family", required=True, metavar="FAMILY")
    _add_gan_train_args(train.add_parser("gan", help="train a GAN (DCGAN family)"))
    _add_classifier_train_args(train.add_parser("classifier", help="train a CNN classifier"))
    _add_sr_train_args(train.add_parser("sr", help="train a super-resolution network on photos (folder:PATH)"))

    s = sub.add_parser("sample", help="sample an image grid from a trained run")
    s.add_argument("run")
    s.add_argument("-n", type=_positive_int, default=64, help="number of images (default 64)")
    s.add_argument("-o", "--output", default=None, help="output PNG (default RUN/samples/sample.png)")
    s.add_argument("--labels", default=None, help="conditional runs: class ids or names, comma separated, or 'all'")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--nrow", type=_positive_int, default=None, help="images per row")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
    s.add_argument("--best", action="store_true", help="the best checkpoint by FID (from --eval-every)")
    s.add_argument("--device", default="auto")

    i = sub.add_parser("interpolate", help="animated latent-space walk (GIF)")
    i.add_argument("run")
    i.add_argument("-o", "--output", default=None, help="output GIF (default RUN/samples/walk.gif)")
    i.add_argument("--rows", type=_positive_int, default=8, help="images walking side by side")
    i.add_argument("--frames", type=_positive_int, default=48)
    i.add_argument("--fps", type=_positive_int, default=12)
    i.add_argument("--labels", default=None)
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--device", default="auto")

    c = sub.add_parser("classify", help="top-k labels of images with a trained classifier")
    c.add_argument("run")
    c.add_argument("images", nargs="+")
    c.add_argument("-k", type=_positive_int, default=3, help="labels per image (default 3)")
    c.add_argument("--device", default="auto")

    e = sub.add_parser("explain", help="filters, feature maps and Grad-CAM of a classifier on one image")
    e.add_argument("run")
    e.add_argument("image")
    e.add_argument("-o", "--output", default=None, help="output folder (default RUN/explain/IMAGE_NAME)")
    e.add_argument("--device", default="auto")

    ev = sub.add_parser("eval", help="FID, KID, IS and precision/recall of a generator run; writes RUN/metrics.json")
    ev.add_argument("run")
    ev.add_argument("-n", "--n", type=_positive_int, default=10000, help="samples (and real images) to compare")
    ev.add_argument("--extractor", default=None, help="auto (shipped judge for the dataset), inception, "
                                                      "a shipped model name or a classifier run")
    ev.add_argument("--metrics", default="fid,kid,is,precision,recall")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="auto")

    a = sub.add_parser("augment", help="does a conditional GAN's data help a classifier trained on few real images?")
    a.add_argument("run", help="a class-conditional GAN run")
    a.add_argument("--per-class", default="50,100,500", help="real images per class, comma separated")
    a.add_argument("--seeds", type=_positive_int, default=3, help="repetitions per size (default 3)")
    a.add_argument("--synthetic", type=_positive_int, default=500, help="generated images per class (default 500)")
    a.add_argument("--steps", type=_positive_int, default=400, help="classifier training steps (default 400)")
    a.add_argument("-o", "--output", default=None, help="output folder (default RUN/augmentation)")

    cas = sub.add_parser("cas", help="Classification Accuracy Score of a conditional GAN")
    cas.add_argument("run")
    cas.add_argument("--per-class", type=_positive_int, default=1000, help="generated (and real) images per class")
    cas.add_argument("--steps", type=_positive_int, default=600, help="classifier training steps (default 600)")

    u = sub.add_parser("upscale", help="super-resolve an image of any size (tiled), x2 or x4")
    u.add_argument("image")
    u.add_argument("--scale", type=int, choices=[2, 3, 4], default=4, help="upscaling factor (default 4)")
    u.add_argument("--model", default=None,
                   help="an sr run directory or a shipped model name (default: the shipped model for --scale)")
    u.add_argument("-o", "--output", default=None, help="output image (default IMAGE_xSCALE.png beside the input)")
    u.add_argument("--tile", type=_positive_int, default=None, help="tile size in input pixels (default 192)")
    u.add_argument("--max-pixels", type=_positive_int, default=None,
                   help="refuse outputs with more pixels than this (default 200000000)")
    u.add_argument("--device", default="auto")

    sub.add_parser("datasets", help="list the named datasets and where each was found")
    sub.add_parser("models", help="list the registered models")
    return parser


_COMMON_TRAIN_OPTIONS = ("batch_size", "epochs", "minutes", "max_steps", "checkpoint_minutes", "sync_bn",
                         "grad_accum")
_FAMILY_OPTIONS = {
    "gan": ("latent_dim", "width", "d_norm", "loss", "lr_g", "lr_d", "d_steps", "ema_decay", "diffaug",
            "eval_every"),
    "classifier": ("width", "blocks", "dropout", "norm", "lr", "weight_decay", "label_smoothing", "augment"),
    "sr": ("scale", "width", "blocks", "crop", "loss", "lr"),
}


def cmd_train(args) -> int:
    from . import api

    options = {k: getattr(args, k) for k in _COMMON_TRAIN_OPTIONS + _FAMILY_OPTIONS[args.family]}
    extra = {}
    if args.family == "gan":
        if args.spectral_norm:
            if args.d_norm not in (None, "sn"):
                raise PixelforgeError("--spectral-norm contradicts --d-norm " + args.d_norm)
            options["d_norm"] = "sn"
        if options["loss"] == "wgan-gp" and options["d_norm"] is None and not args.resume:
            options["d_norm"] = "none"  # the gradient penalty needs a D without batch norm
        extra.update(conditional=args.conditional, eval_samples=args.eval_samples, extractor=args.extractor)
    limit = args.limit
    if args.dry_run:
        limit = min(limit or 512, 512)
        options.update(batch_size=min(options["batch_size"] or 64, 64), max_steps=options["max_steps"] or 4)
    if args.resume and args.run is None:
        raise PixelforgeError("--resume needs --run-dir RUN_DIR")
    if args.family == "sr":
        extra.update(model=args.arch)
    train = {"gan": api.train_gan, "classifier": api.train_classifier, "sr": api.train_sr}[args.family]
    pipe = train(args.data, args.run, resume=args.resume, overwrite=args.overwrite, size=args.size,
                 channels=args.channels, limit=limit, device=args.device, precision=args.precision,
                 seed=args.seed, progress=not args.no_progress, **extra, **options)
    print(f"run: {pipe.path}")
    if args.family in ("gan", "sr"):
        print(f"samples: {pipe.path / 'samples' / 'final.png'}")
    elif (pipe.path / "evaluation.json").is_file():
        import json

        ev = json.loads((pipe.path / "evaluation.json").read_text())
        print(f"test accuracy: {ev['test_accuracy']:.2%} on {ev['test_images']} images "
              f"(confusion matrix: {pipe.path / 'confusion.png'})")
    return 0


def _sampling_pipeline(args):
    """The run's pipeline for ``sample``: each generative family adds its loader options here."""
    from . import api
    from .runs import Run

    family = Run.open(args.run).config.get("family")
    options = {"gan": {"ema": not args.no_ema, "best": args.best}}
    if family not in options:
        raise PixelforgeError(f"{args.run} is a {family} run; sample needs a generator run "
                              f"({', '.join(options)})")
    return api.load(args.run, device=args.device, **options[family])


def cmd_sample(args) -> int:
    from .images import save_grid

    pipe = _sampling_pipeline(args)
    images = pipe.sample(args.n, seed=args.seed, labels=args.labels)
    nrow = args.nrow or (pipe.num_classes if pipe.num_classes and args.labels in (None, "all") else None)
    out = Path(args.output) if args.output else pipe.path / "samples" / "sample.png"
    save_grid(images, out, nrow=nrow, scale=2 if pipe.image_size <= 32 else 1)
    print(out)
    return 0


def cmd_interpolate(args) -> int:
    from .api import load_gan

    pipe = load_gan(args.run, device=args.device)
    out = Path(args.output) if args.output else pipe.path / "samples" / "walk.gif"
    if out.suffix.lower() != ".gif":
        raise PixelforgeError(f"interpolate writes a GIF; give an output ending in .gif, not {out.name}")
    print(pipe.interpolate(out, rows=args.rows, frames=args.frames, seed=args.seed, labels=args.labels, fps=args.fps))
    return 0


def cmd_classify(args) -> int:
    from .api import load_classifier

    pipe = load_classifier(args.run, device=args.device)
    images = pipe.load_images(args.images)
    for path, top in zip(args.images, pipe.topk(images, args.k)):
        print(f"{path}: " + ", ".join(f"{name} {p:.1%}" for name, p in top))
    return 0


def cmd_explain(args) -> int:
    from .api import load_classifier

    pipe = load_classifier(args.run, device=args.device)
    image = pipe.load_images([args.image])[0]
    out = Path(args.output) if args.output else pipe.path / "explain" / Path(args.image).stem
    for name, path in pipe.explain(image, out).items():
        print(f"{name}: {path}")
    return 0


def cmd_eval(args) -> int:
    from .pipelines.evaluate import evaluate_run

    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    result = evaluate_run(args.run, n=args.n, extractor=args.extractor, metrics=metrics, seed=args.seed,
                          device=args.device)
    for k, v in result.items():
        print(f"{k:<12} {v:.4f}" if isinstance(v, float) else f"{k:<12} {v}")
    print(f"wrote {Path(args.run) / 'metrics.json'}")
    return 0


def cmd_augment(args) -> int:
    from .apps.augment import augmentation_study

    try:
        sizes = tuple(int(x) for x in args.per_class.split(","))
    except ValueError:
        raise PixelforgeError(f"--per-class takes whole numbers, e.g. 50,100,500, not {args.per_class!r}") from None
    if not sizes or min(sizes) < 1:
        raise PixelforgeError("--per-class sizes must be at least 1")
    out = Path(args.output) if args.output else Path(args.run) / "augmentation"
    augmentation_study(args.run, out, sizes=sizes, seeds=tuple(range(args.seeds)), synthetic_per_class=args.synthetic,
                       steps=args.steps, progress=True)
    print((out / "augmentation.md").read_text(), end="")
    print(f"wrote {out}/augmentation.json, augmentation.md, augmentation.png")
    return 0


def cmd_cas(args) -> int:
    from .apps.augment import classification_accuracy_score

    r = classification_accuracy_score(args.run, per_class=args.per_class, steps=args.steps, progress=True)
    print(f"CAS (trained on {r['train_images']} generated images): {r['cas']:.2%}; "
          f"same budget on real images: {r['real_accuracy']:.2%} (test set of {r['test_images']})")
    return 0


def cmd_upscale(args) -> int:
    import os

    from .pipelines.sr import DEFAULT_TILE, open_upscaler, read_image

    image = read_image(args.image)  # a bad file fails before a model is loaded
    pipe = open_upscaler(args.model, args.scale, device=args.device)
    src = Path(args.image)
    out = Path(args.output) if args.output else src.with_name(f"{src.stem}_x{args.scale}.png")
    if not out.suffix:
        raise PixelforgeError(f"give the output a file extension (e.g. {out}.png)")
    result = pipe.upscale(image, scale=args.scale, tile=args.tile or DEFAULT_TILE, max_pixels=args.max_pixels,
                          progress=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    try:
        result.save(tmp)
    except (KeyError, ValueError, OSError) as e:
        tmp.unlink(missing_ok=True)
        raise PixelforgeError(f"cannot write {out}: {e}") from None
    os.replace(tmp, out)
    print(f"{out} ({image.width}x{image.height} -> {result.width}x{result.height}, x{pipe.scale} with {pipe.name})")
    return 0


def cmd_datasets(args) -> int:
    from .data import list_datasets, search_path

    print("search path: " + ", ".join(str(p) for p in search_path()))
    for d in list_datasets():
        where = d.get("location") or f"not found: will download from {d.get('url')}"
        print(f"  {d['name']:<15} {d['description']}\n  {'':<15} -> {where}")
    print("  folder:PATH     any image folder (recursive; class subfolders become labels)")
    return 0


def cmd_models(args) -> int:
    from .registry import get_entry, list_models

    for name in list_models():
        e = get_entry(name)
        print(f"{name:<12} [{e.family}] {e.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="pixelforge: %(levelname)s: %(message)s")
    from .training import Interrupted

    handler = {"train": cmd_train, "sample": cmd_sample, "interpolate": cmd_interpolate,
               "classify": cmd_classify, "explain": cmd_explain, "eval": cmd_eval,
               "augment": cmd_augment, "cas": cmd_cas, "upscale": cmd_upscale,
               "datasets": cmd_datasets, "models": cmd_models}[args.command]
    try:
        return handler(args)
    except Interrupted as e:
        print(f"pixelforge: {e}", file=sys.stderr)
        return 128 + e.signum
    except PixelforgeError as e:
        print(f"pixelforge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pixelforge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
