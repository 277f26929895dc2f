"""Commands on generator runs: sample, inpaint, interpolate, eval, augment, cas."""

from __future__ import annotations

import inspect
from pathlib import Path

from ..defaults import FromAPI
from ..errors import PixelforgeError
from .arguments import (Help, add_overwrite_arg, add_sampling_args, given, new_output, png_output, positive_int,
                        sampling_options, whole_number_up_to)

MAX_GRID_IMAGES = 4096  # sample -n: a 64 x 64 grid
MAX_WALK_ROWS, MAX_WALK_FRAMES = 64, 500  # interpolate --rows, --frames
DIFFUSION = "pixelforge.pipelines.diffusion"
LATENT_WALK = "pixelforge.pipelines.gan:GANPipeline.interpolate"  # the two kinds of walk (Family.interpolates)
CODE_WALK = "pixelforge.pipelines.autoencoder:AutoencoderPipeline.save_interpolation"
EVALUATE = "pixelforge.evaluation:evaluate_run"
STUDY = "pixelforge.apps.scarce_data:budget_study"
CAS = "pixelforge.apps.augment:classification_accuracy_score"


def add_parsers(sub) -> None:
    s = sub.add_parser("sample", help="sample an image grid from a trained run")
    s.add_argument("run")
    s.add_argument("-n", type=whole_number_up_to(MAX_GRID_IMAGES), default=64,
                   help=f"number of images (default 64, at most {MAX_GRID_IMAGES})")
    s.add_argument("-o", "--output", default=None, help="output PNG (default RUN/samples/sample.png)")
    s.add_argument("--labels", default=None, help="conditional runs: class ids or names, comma separated, or 'all'")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--nrow", type=whole_number_up_to(MAX_GRID_IMAGES), default=None, help="images per row")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
    s.add_argument("--best", action="store_true", help="the best checkpoint by validation FID (from --eval-every)")
    s.add_argument("--device", default="auto")
    add_overwrite_arg(s)
    add_sampling_args(s)
    s.set_defaults(handler=cmd_sample)
    ip = sub.add_parser("inpaint", help="fill a region of images with a diffusion model")
    ip.add_argument("run")
    ip.add_argument("images", nargs="+")
    where = ip.add_mutually_exclusive_group(required=True)
    where.add_argument("--box", help="x,y,w,h of the region to fill, in model pixels")
    where.add_argument("--mask", help="mask image: white = keep, black = fill (resized to the model's size)")
    ip.add_argument("-o", "--output", required=True, help="output PNG: original | masked | filled, one row per image")
    ip.add_argument("--steps", type=positive_int, default=FromAPI(f"{DIFFUSION}:load_diffusion", "steps"),
                    help="sampling steps (default %(default)s)")
    ip.add_argument("--resample", type=positive_int,
                    default=FromAPI(f"{DIFFUSION}:DiffusionPipeline.inpaint", "resample"), help="RePaint re-noising jumps per step (default %(default)s)")
    ip.add_argument("--labels", default=None)
    ip.add_argument("--guidance", type=float, default=None)
    ip.add_argument("--seed", type=int, default=0)
    ip.add_argument("--device", default="auto")
    add_overwrite_arg(ip)
    ip.set_defaults(handler=cmd_inpaint)
    i = sub.add_parser("interpolate", help="latent-space walk: GIF (GAN); PNG grid or GIF (autoencoder)")
    i.add_argument("run")
    i.add_argument("-o", "--output", default=None, help="output GIF, or for autoencoders a PNG grid "
                                                        "(default RUN/samples/walk.gif or interpolation.png)")
    i.add_argument("--between", nargs="+", metavar="IMAGE", default=None,
                   help="autoencoders: walk between the codes of these images, taken in pairs")
    i.add_argument("--rows", type=whole_number_up_to(MAX_WALK_ROWS), default=None,
                   help=Help("images walking side by side (default {}, at most {})", FromAPI(LATENT_WALK, "rows"),
                             MAX_WALK_ROWS))
    i.add_argument("--frames", type=whole_number_up_to(MAX_WALK_FRAMES), default=None,
                   help=Help("frames (GAN, default {}) or steps per walk (autoencoder, default {}); at most {}",
                             FromAPI(LATENT_WALK, "frames"), FromAPI(CODE_WALK, "steps"), MAX_WALK_FRAMES))
    i.add_argument("--fps", type=positive_int, default=None,
                   help=Help("GIF frames per second (GAN, default {}; autoencoder, default {})",
                             FromAPI(LATENT_WALK, "fps"), FromAPI(CODE_WALK, "fps")))
    i.add_argument("--labels", default=None)
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--device", default="auto")
    add_overwrite_arg(i)
    i.set_defaults(handler=cmd_interpolate)
    ev = sub.add_parser("eval", help="FID, KID, IS and precision/recall of a generator run; writes RUN/metrics.json")
    ev.add_argument("run")
    ev.add_argument("-n", "--n", type=positive_int, default=FromAPI(EVALUATE, "n"),
                    help="samples (and real images) to compare (default %(default)s)")
    ev.add_argument("--extractor", default=None, help="auto (shipped judge for the dataset), inception, "
                                                      "a shipped model name or a classifier run")
    ev.add_argument("--metrics", default=FromAPI(EVALUATE, "metrics", then=",".join),
                    help="comma separated (default %(default)s)")
    ev.add_argument("--split", choices=("test", "val"), default=None,
                    help="real images to compare with: test (default; the number to report) or val (to choose "
                         "settings by); folder datasets have only val")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="auto")
    add_sampling_args(ev)
    ev.set_defaults(handler=cmd_eval)
    a = sub.add_parser("augment", help="does generated data help a classifier trained on few real images? "
                                       "(classic augmentation against generated images, budget by budget)")
    a.add_argument("run", nargs="?", default=None,
                   help="optional: a class-conditional GAN run trained elsewhere (e.g. on the whole training split), "
                        "added as one more arm; the study trains its own generator on each budget's images")
    a.add_argument("--data", default=FromAPI(STUDY, "data"), help="a labelled dataset with a test split "
                                                                  "(default %(default)s)")
    a.add_argument("--size", type=positive_int, default=None, help="image size (default: the dataset's)")
    a.add_argument("--per-class", default=FromAPI(STUDY, "budgets", then=lambda sizes: ",".join(map(str, sizes))),
                   help="real images per class, comma separated (default %(default)s)")
    a.add_argument("--seeds", type=positive_int, default=FromAPI(STUDY, "seeds", then=len),
                   help="repetitions per budget (default %(default)s)")
    a.add_argument("--steps", default=FromAPI(STUDY, "steps", then=lambda steps: ",".join(map(str, steps))),
                   help="classifier step counts each arm chooses from on validation (default %(default)s)")
    a.add_argument("--gan-steps", type=positive_int, default=FromAPI(STUDY, "gan_steps"),
                   help="training steps of each budget's GAN (default %(default)s)")
    a.add_argument("--diffusion-steps", type=positive_int, default=FromAPI(STUDY, "diffusion_steps"),
                   help="training steps of each budget's diffusion model (default %(default)s)")
    a.add_argument("-o", "--output", default="runs/augment",
                   help="study folder: budget images, runs, cache and report; a stopped study resumes there "
                        "(default %(default)s)")
    a.set_defaults(handler=cmd_augment)
    cas = sub.add_parser("cas", help="Classification Accuracy Score of a conditional GAN")
    cas.add_argument("run")
    cas.add_argument("--per-class", type=positive_int, default=FromAPI(CAS, "per_class"),
                     help="generated (and real) images per class (default %(default)s)")
    cas.add_argument("--steps", type=positive_int, default=FromAPI(CAS, "steps"),
                     help="classifier training steps (default %(default)s)")
    cas.set_defaults(handler=cmd_cas)


def _sampling_pipeline(args):
    """The run's pipeline for ``sample``, with the loader options its family takes."""
    from ..api import load
    from ..families import generator_families, run_family
    from ..pipelines.evaluate import check_sampling_options

    family = run_family(args.run)
    if not family.generates:
        raise PixelforgeError(f"{args.run} is a {family.name} run; sample needs a generator run "
                              f"({', '.join(generator_families())})")
    sampling = sampling_options(args)
    check_sampling_options(args.run, family, sampling)
    options = {k: v for k, v in (("ema", not args.no_ema), ("best", args.best)) if family.loader_takes(k)}
    return load(args.run, device=args.device, **options, **sampling)


def cmd_sample(args) -> int:
    from ..images import save_grid

    out = png_output(args.output or Path(args.run) / "samples" / "sample.png", args.overwrite)
    pipe = _sampling_pipeline(args)
    shows_progress = "progress" in inspect.signature(pipe.sample).parameters  # the iterative samplers (diffusion)
    images = pipe.sample(args.n, seed=args.seed, labels=args.labels, **({"progress": True} if shows_progress else {}))
    nrow = args.nrow or (pipe.num_classes if pipe.num_classes and args.labels in (None, "all") else None)
    save_grid(images, out, nrow=nrow, scale=2 if pipe.image_size <= 32 else 1)
    print(out)
    return 0


def cmd_inpaint(args) -> int:
    import torch

    from ..api import load_diffusion
    from ..images import save_grid

    out = png_output(args.output, args.overwrite)
    pipe = load_diffusion(args.run, device=args.device)
    images = pipe.load_images(args.images)
    mask = pipe.mask_from_box(args.box) if args.box else pipe.load_mask(args.mask)
    filled = pipe.inpaint(images, mask, seed=args.seed, labels=args.labels, steps=args.steps,
                          resample=args.resample, guidance=args.guidance, progress=True)
    shown = images.float() / 255
    rows = [t for triple in zip(shown, shown * mask, filled) for t in triple]
    save_grid(torch.stack(rows), out, nrow=3, scale=4 if pipe.image_size <= 32 else 2)
    print(out)
    return 0


def cmd_interpolate(args) -> int:
    """A walk of the kind the run's family declares (:attr:`~pixelforge.family.Family.interpolates`)."""
    from ..api import load
    from ..families import interpolating_families, run_family

    family = run_family(args.run)
    if not family.interpolates:
        raise PixelforgeError(f"{args.run} is a {family.name} run; interpolate walks runs of "
                              f"{', '.join(interpolating_families())}")
    if args.between and family.interpolates != "codes":
        raise PixelforgeError(f"--between is for runs of {', '.join(interpolating_families('codes'))}")
    codes = family.interpolates == "codes"
    out = Path(args.output or Path(args.run) / "samples" / ("interpolation.png" if codes else "walk.gif"))
    if codes and out.suffix.lower() not in (".png", ".gif"):
        raise PixelforgeError(f"interpolate writes a .png grid or a .gif; not {out.name}")
    if not codes and out.suffix.lower() != ".gif":
        raise PixelforgeError(f"interpolate writes a GIF; give an output ending in .gif, not {out.name}")
    new_output(out, args.overwrite)
    pipe = load(args.run, device=args.device)
    options = given(rows=args.rows, fps=args.fps, seed=args.seed, labels=args.labels)
    if codes:
        images = pipe.load_images(args.between) if args.between else None
        print(pipe.save_interpolation(out, images, **options, **given(steps=args.frames)))
        return 0
    print(pipe.interpolate(out, **options, **given(frames=args.frames)))
    return 0


def cmd_eval(args) -> int:
    from ..evaluation import evaluate_run

    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    result = evaluate_run(args.run, n=args.n, extractor=args.extractor, metrics=metrics, seed=args.seed,
                          device=args.device, split=args.split, **sampling_options(args))
    for k, v in result.items():
        print(f"{k:<12} {v:.4f}" if isinstance(v, float) else f"{k:<12} {v}")
    print(f"wrote {Path(args.run) / 'metrics.json'}")
    return 0


def _whole_numbers(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise PixelforgeError(f"{option} takes whole numbers separated by commas, not {text!r}") from None
    if min(values) < 1:
        raise PixelforgeError(f"{option} values must be at least 1")
    return values


def cmd_augment(args) -> int:
    from ..apps.scarce_data import budget_study

    budgets = _whole_numbers(args.per_class, "--per-class")
    steps = _whole_numbers(args.steps, "--steps")
    out = Path(args.output)
    budget_study(out, args.data, budgets=budgets, seeds=tuple(range(args.seeds)), steps=steps,
                 gan_steps=args.gan_steps, diffusion_steps=args.diffusion_steps, generator=args.run, size=args.size,
                 progress=True)
    print((out / "augmentation.md").read_text(), end="")
    print(f"wrote {out}/augmentation.json, augmentation.md, augmentation.png")
    return 0


def cmd_cas(args) -> int:
    from ..apps.augment import classification_accuracy_score

    r = classification_accuracy_score(args.run, per_class=args.per_class, steps=args.steps, progress=True)
    print(f"CAS (trained on {r['train_images']} generated images): {r['cas']:.2%}; "
          f"same budget on real images: {r['real_accuracy']:.2%} (test set of {r['test_images']})")
    return 0
