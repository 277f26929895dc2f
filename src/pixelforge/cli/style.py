"""Style transfer commands: stylize, texture, export."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..defaults import FromAPI, default_in, resolve
from ..errors import PixelforgeError
from .arguments import Help, add_overwrite_arg, given, new_output, non_negative_float, positive_int

STYLE = "pixelforge.pipelines.style"
STYLIZER = "pixelforge.pipelines.stylizer"
# Options for trained models only, and their defaults (what they are when not given).
MODEL_ONLY = {"runtime": FromAPI(f"{STYLIZER}:open_stylizer", "runtime"), "alpha": None, "max_size": None,
              "precision": FromAPI(f"{STYLIZER}:open_stylizer", "precision"), "refine_alpha": None,
              "content_scale": None}


def add_parsers(sub) -> None:
    st = sub.add_parser("stylize", help="neural style transfer: CONTENT painted in the style of --style "
                                        "(Gatys optimisation, or a trained --model)")
    st.add_argument("content", nargs="?", default=None,
                    help="content image (with --model also a .gif or a folder of frames; leave out, or --texture, "
                         "for a texture)")
    st.add_argument("--style", default=None, help="style image(s), comma-separated: a.png or a.png,b.png")
    _add_style_args(st, texture=False)
    ml = st.add_argument_group("trained models (--model)")
    ml.add_argument("--model", default=None, help="a style run (train stylizer / train adain), an exported .onnx, or "
                                                   "a shipped model (zoo:photos-adain-v12, zoo:photos-stylizer-mosaic-v3)")
    ml.add_argument("--runtime", choices=FromAPI(f"{STYLIZER}:RUNTIMES"), metavar="RUNTIME",
                    default=MODEL_ONLY["runtime"],
                    help="%(choices)s (default %(default)s); onnx: run the model's ONNX export with ONNX Runtime "
                         "(exported to RUN/model.onnx)")
    ml.add_argument("--alpha", type=float, default=None,
                    help=Help("AdaIN: 0 = content ... 1 = full style (default {})",
                              FromAPI(f"{STYLIZER}:DEFAULT_ALPHA")))
    ml.add_argument("--refine-alpha", type=float, default=None,
                    help="AdaIN with a refine pass: its strength, 0 (the first pass only) ... 1 (default: the "
                         "model's)")
    ml.add_argument("--content-scale", type=float, default=None,
                    help="AdaIN: stylise the photo at this fraction of its size (0.25 to 1) and enlarge the result "
                         "back: larger strokes, less detail (default: the model's, 1)")
    ml.add_argument("--max-size", type=positive_int, default=None,
                    help=Help("downscale larger images to this longest side (default {})",
                              FromAPI(f"{STYLIZER}:DEFAULT_MAX_SIZE")))
    ml.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=MODEL_ONLY["precision"],
                    help="torch runtime: fp32, bf16 autocast with channels_last (AdaIN: the style's encoding and the "
                         "decoder; the photo's features stay fp32), or auto: bf16 where the CPU runs it fast "
                         "(default: the model's, AdaIN auto, feed-forward fp32)")
    st.add_argument("--style-mix", default=None, help="weights of the styles, e.g. 0.7,0.3 (default equal)")
    st.add_argument("--content-weight", type=non_negative_float,
                    default=FromAPI(f"{STYLE}:stylize", "content_weight"), help="default %(default)s")
    st.add_argument("--init", choices=FromAPI(f"{STYLE}:INITS"), metavar="INIT", default=None,
                    help="start from the content image (default) or from noise: %(choices)s")
    st.add_argument("--preserve-color", action="store_true",
                    help="luminance-only transfer: keep the content's colours (Cb, Cr) exactly")
    st.add_argument("--match-colors", action=argparse.BooleanOptionalAction, default=None,
                    help=Help("give the photo the style's colour distribution before optimising (default: {}; "
                              "never with --preserve-color)", FromAPI(f"{STYLE}:DEFAULT_MATCH_COLORS")))
    st.add_argument("--texture", action="store_true", help="synthesise a texture from --style (no content)")
    st.set_defaults(handler=cmd_stylize)
    tx = sub.add_parser("texture", help="texture synthesis: a new image with the Gram statistics of STYLE")
    tx.add_argument("style", help="example texture / style image(s), comma-separated")
    _add_style_args(tx, texture=True)
    tx.add_argument("--style-mix", default=None, help="weights of the styles, e.g. 0.7,0.3 (default equal)")
    tx.set_defaults(handler=cmd_texture)
    ex = sub.add_parser("export", help="export a run to ONNX (a style run: run the file with "
                                       "stylize --model FILE.onnx)")
    ex.add_argument("run")
    ex.add_argument("-o", "--output", required=True, help="output .onnx file")
    add_overwrite_arg(ex)
    ex.set_defaults(handler=cmd_export)


def _add_style_args(p, texture: bool) -> None:
    """The options of Gatys' optimisation; their defaults are those of ``synthesize_texture`` (the texture
    command) or ``stylize``, but for stylize's --size and --tv-weight, which depend on --model / --texture."""
    api = f"{STYLE}:{'synthesize_texture' if texture else 'stylize'}"
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, ...)")
    p.add_argument("--size", type=positive_int, default=FromAPI(api, "size") if texture else None,
                   help="longest side of the result in pixels (default %(default)s)" if texture else
                   Help("longest side of the result in pixels (default {}; with --model: as is)", FromAPI(api, "size")))
    p.add_argument("--steps", type=positive_int, default=FromAPI(api, "steps"),
                   help="optimisation steps (default %(default)s)")
    texture_api = f"{STYLE}:synthesize_texture"
    p.add_argument("--scales", type=positive_int, default=FromAPI(api, "scales") if texture else None,
                   help="coarse to fine: optimise at 1/2, 1/4, ... of --size first (default %(default)s)" if texture
                   else Help("coarse to fine: optimise at 1/2, 1/4, ... of --size first (default {}; {} with "
                             "--texture)", FromAPI(api, "scales"), FromAPI(texture_api, "scales")))
    p.add_argument("--optimizer", choices=FromAPI(f"{STYLE}:OPTIMIZERS"), metavar="OPTIMIZER",
                   default=FromAPI(api, "optimizer"), help="%(choices)s (default %(default)s)")
    p.add_argument("--style-weight", type=non_negative_float, default=FromAPI(api, "style_weight") if texture else None,
                   help="default %(default)s" if texture else
                   Help("default {}; {} with --texture", FromAPI(api, "style_weight"),
                        FromAPI(texture_api, "style_weight")))
    p.add_argument("--tv-weight", type=non_negative_float, default=FromAPI(api, "tv_weight") if texture else None,
                   help="total-variation weight (default %(default)s)" if texture else
                   Help("total-variation weight (default {}; {} with --texture)", FromAPI(api, "tv_weight"),
                        FromAPI(texture_api, "tv_weight")))
    p.add_argument("--backbone", default=FromAPI(api, "backbone"),
                   help="feature network: offline (built in, no download), vgg19 or vgg16 (default %(default)s)")
    p.add_argument("--weights", default=None, help="VGG weights file (torchvision's vgg19-dcbb9e9d.pth format)")
    p.add_argument("--save-every", type=positive_int, default=None,
                   help="also write OUTPUT_stepNNNN.png every K steps")
    p.add_argument("--seed", type=int, default=FromAPI(api, "seed"))
    p.add_argument("--device", default=FromAPI(api, "device"), help="cpu, cuda, cuda:N (default %(default)s)")
    add_overwrite_arg(p)


def _style_output(path: str, overwrite: bool) -> Path:
    out = new_output(path, overwrite)
    if not out.suffix:
        raise PixelforgeError(f"give the output a file extension (e.g. {out}.png)")
    from PIL import Image

    if out.suffix.lower() not in Image.registered_extensions():
        raise PixelforgeError(f"cannot write {out.suffix} images; use .png or .jpg")
    return out


def _run_style(args, content) -> int:
    from ..imageio import write_image
    from ..pipelines.style import stylize, synthesize_texture

    out = _style_output(args.output, args.overwrite)
    styles = [part.strip() for part in args.style.split(",") if part.strip()]
    if not styles:
        raise PixelforgeError("--style needs at least one image")
    texture = content is None

    def save_step(step, result):
        write_image(result.to_pil(), out.with_name(f"{out.stem}_step{step:04d}.png"))

    # Options left out take the defaults of the API call that matches: synthesize_texture's for a texture.
    defaults_of = synthesize_texture if texture else stylize
    style_weight, tv_weight, scales = (default_in(defaults_of, name) if getattr(args, name) is None
                                       else getattr(args, name) for name in ("style_weight", "tv_weight", "scales"))
    result = stylize(content, styles, style_mix=args.style_mix, size=args.size, steps=args.steps,
                     optimizer=args.optimizer, style_weight=style_weight, tv_weight=tv_weight,
                     init=getattr(args, "init", None), preserve_color=getattr(args, "preserve_color", False),
                     match_colors=getattr(args, "match_colors", None), scales=scales,
                     backbone=args.backbone, weights=args.weights, save_every=args.save_every, on_save=save_step,
                     seed=args.seed, device=args.device, **given(content_weight=getattr(args, "content_weight", None)))
    write_image(result.to_pil(), out)
    last = result.history[-1]
    losses = ", ".join(f"{k} {last[k]:.3g}" for k in ("content", "style", "tv") if not (texture and k == "content"))
    print(f"{out} ({result.image.shape[2]}x{result.image.shape[1]}, {args.steps} {args.optimizer} steps, "
          f"{args.backbone} backbone; {losses})")
    return 0


def cmd_stylize(args) -> int:
    if args.model is not None:
        return _run_model_style(args)
    for name, default in MODEL_ONLY.items():
        if getattr(args, name) != resolve(default):
            raise PixelforgeError(f"--{name.replace('_', '-')} is for trained models: add --model RUN")
    if args.style is None:
        raise PixelforgeError("give the style image(s) with --style (or a trained model with --model RUN)")
    if args.content is not None and (Path(args.content).is_dir() or Path(args.content).suffix.lower() == ".gif"):
        raise PixelforgeError("GIFs and frame folders need a trained model (--model RUN): optimising every "
                              "frame with Gatys' method would take minutes per frame")
    if args.size is None:
        from ..pipelines.style import stylize

        args.size = default_in(stylize, "size")
    if args.texture and args.content is not None:
        raise PixelforgeError("--texture makes a texture from --style alone; leave out the content image")
    return _run_style(args, None if args.texture else args.content)


def _run_model_style(args) -> int:
    import time

    from ..imageio import write_image
    from ..pipelines.stylizer import open_stylizer

    if args.texture:
        raise PixelforgeError("--texture is Gatys texture synthesis; it takes no --model")
    if args.content is None:
        raise PixelforgeError("give the content image (or .gif, or folder of frames) to stylize with --model")
    if args.refine_alpha is not None and (args.runtime == "onnx" or Path(args.model).suffix.lower() == ".onnx"):
        raise PixelforgeError("--refine-alpha needs the torch runtime: an ONNX export has its refine strength "
                              "built in")
    pipe = open_stylizer(args.model, runtime=args.runtime, device=args.device, precision=args.precision)
    if args.refine_alpha is not None:
        pipe.set_refine_strength(args.refine_alpha)
    if args.content_scale is not None:
        pipe.set_content_scale(args.content_scale)
    source = Path(args.content)
    start = time.perf_counter()
    if source.is_dir() or source.suffix.lower() == ".gif":
        out, count = pipe.stylize_frames(source, args.output, style=args.style, alpha=args.alpha, size=args.size,
                                         max_size=args.max_size)
        print(f"{out} ({count} frames, {pipe.kind} model {pipe.name}, {time.perf_counter() - start:.1f} s)")
        return 0
    out = _style_output(args.output, args.overwrite)
    result = pipe.stylize(source, style=args.style, alpha=args.alpha, size=args.size, max_size=args.max_size)
    seconds = time.perf_counter() - start
    write_image(result, out)
    print(f"{out} ({result.width}x{result.height}, {pipe.kind} model {pipe.name}, {seconds:.2f} s)")
    return 0


def cmd_export(args) -> int:
    from ..families import exporting_families, run_family

    family = run_family(args.run)
    if family.export_onnx is None:
        raise PixelforgeError(f"{args.run} is a {family.name} run; export writes ONNX for runs of "
                              f"{', '.join(exporting_families())}")
    print(family.export_onnx(args.run, new_output(args.output, args.overwrite)))
    return 0


def cmd_texture(args) -> int:
    return _run_style(args, None)
