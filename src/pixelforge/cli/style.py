"""Style transfer commands: stylize, texture, export."""

from __future__ import annotations

from pathlib import Path

from ..errors import PixelforgeError
from .arguments import positive_int, non_negative_float


def add_parsers(sub) -> None:
    st = sub.add_parser("stylize", help="neural style transfer: CONTENT painted in the style of --style "
                                        "(Gatys optimisation, or a trained --model)")
    st.add_argument("content", nargs="?", default=None,
                    help="content image (with --model also a .gif or a folder of frames; leave out, or --texture, "
                         "for a texture)")
    st.add_argument("--style", default=None, help="style image(s), comma-separated: a.png or a.png,b.png")
    _add_style_args(st, default_size=None, tv_default=None)
    ml = st.add_argument_group("trained models (--model)")
    ml.add_argument("--model", default=None, help="a style run (train stylizer / train adain) or an exported .onnx")
    ml.add_argument("--runtime", choices=["torch", "onnx"], default="torch",
                    help="onnx: run the model's ONNX export with ONNX Runtime (exported to RUN/model.onnx)")
    ml.add_argument("--alpha", type=float, default=None, help="AdaIN: 0 = content ... 1 = full style (default 1)")
    ml.add_argument("--max-size", type=positive_int, default=None,
                    help="downscale larger images to this longest side (default 2048)")
    ml.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="fp32",
                    help="torch runtime: fp32 (default) or bf16 autocast with channels_last")
    st.add_argument("--style-mix", default=None, help="weights of the styles, e.g. 0.7,0.3 (default equal)")
    st.add_argument("--content-weight", type=non_negative_float, default=None, help="default 10")
    st.add_argument("--init", choices=["content", "noise"], default=None,
                    help="start from the content image (default) or from noise")
    st.add_argument("--preserve-color", action="store_true",
                    help="luminance-only transfer: keep the content's colours (Cb, Cr) exactly")
    st.add_argument("--texture", action="store_true", help="synthesise a texture from --style (no content)")
    st.set_defaults(handler=cmd_stylize)
    tx = sub.add_parser("texture", help="texture synthesis: a new image with the Gram statistics of STYLE")
    tx.add_argument("style", help="example texture / style image(s), comma-separated")
    _add_style_args(tx, default_size=256, tv_default=1.0)
    tx.add_argument("--style-mix", default=None, help="weights of the styles, e.g. 0.7,0.3 (default equal)")
    tx.set_defaults(handler=cmd_texture)
    ex = sub.add_parser("export", help="export a style run to ONNX (run it with stylize --model FILE.onnx)")
    ex.add_argument("run")
    ex.add_argument("-o", "--output", required=True, help="output .onnx file")
    ex.set_defaults(handler=cmd_export)


def _add_style_args(p, *, default_size: int, tv_default) -> None:
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, ...)")
    p.add_argument("--size", type=positive_int, default=default_size,
                   help=f"longest side of the result in pixels (default {default_size or '512; with --model: as is'})")
    p.add_argument("--steps", type=positive_int, default=300, help="optimisation steps (default 300)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="default lbfgs")
    p.add_argument("--style-weight", type=non_negative_float, default=None, help="default 3")
    p.add_argument("--tv-weight", type=non_negative_float, default=tv_default,
                   help=f"total-variation weight (default {tv_default or 10})")
    p.add_argument("--backbone", default="offline",
                   help="feature network: offline (built in, no download; default), vgg19 or vgg16")
    p.add_argument("--weights", default=None, help="VGG weights file (torchvision's vgg19-dcbb9e9d.pth format)")
    p.add_argument("--save-every", type=positive_int, default=None,
                   help="also write OUTPUT_stepNNNN.png every K steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")


def _style_output(path: str) -> Path:
    out = Path(path)
    if not out.suffix:
        raise PixelforgeError(f"give the output a file extension (e.g. {out}.png)")
    from PIL import Image

    if out.suffix.lower() not in Image.registered_extensions():
        raise PixelforgeError(f"cannot write {out.suffix} images; use .png or .jpg")
    return out


def _run_style(args, content) -> int:
    from ..imageio import write_image
    from ..pipelines.style import DEFAULT_CONTENT_WEIGHT, DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT, stylize

    out = _style_output(args.output)
    styles = [part.strip() for part in args.style.split(",") if part.strip()]
    if not styles:
        raise PixelforgeError("--style needs at least one image")
    texture = content is None

    def save_step(step, result):
        write_image(result.to_pil(), out.with_name(f"{out.stem}_step{step:04d}.png"))

    def weight(value, default):
        return default if value is None else value

    tv_default = 1.0 if texture else DEFAULT_TV_WEIGHT
    result = stylize(content, styles, style_mix=args.style_mix, size=args.size, steps=args.steps,
                     optimizer=args.optimizer, content_weight=weight(getattr(args, "content_weight", None),
                                                                     DEFAULT_CONTENT_WEIGHT),
                     style_weight=weight(args.style_weight, DEFAULT_STYLE_WEIGHT),
                     tv_weight=weight(args.tv_weight, tv_default), init=getattr(args, "init", None),
                     preserve_color=getattr(args, "preserve_color", False), backbone=args.backbone,
                     weights=args.weights, save_every=args.save_every, on_save=save_step, seed=args.seed,
                     device=args.device)
    write_image(result.to_pil(), out)
    last = result.history[-1]
    losses = ", ".join(f"{k} {last[k]:.3g}" for k in ("content", "style", "tv") if not (texture and k == "content"))
    print(f"{out} ({result.image.shape[2]}x{result.image.shape[1]}, {args.steps} {args.optimizer} steps, "
          f"{args.backbone} backbone; {losses})")
    return 0


def cmd_stylize(args) -> int:
    if args.model is not None:
        return _run_model_style(args)
    for flag, value in (("--runtime", args.runtime != "torch"), ("--alpha", args.alpha is not None),
                        ("--max-size", args.max_size is not None), ("--precision", args.precision != "fp32")):
        if value:
            raise PixelforgeError(f"{flag} is for trained models: add --model RUN")
    if args.style is None:
        raise PixelforgeError("give the style image(s) with --style (or a trained model with --model RUN)")
    if args.content is not None and (Path(args.content).is_dir() or Path(args.content).suffix.lower() == ".gif"):
        raise PixelforgeError("GIFs and frame folders need a trained model (--model RUN): optimising every "
                              "frame with Gatys' method would take minutes per frame")
    args.size = args.size or 512
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
    pipe = open_stylizer(args.model, runtime=args.runtime, device=args.device, precision=args.precision)
    source = Path(args.content)
    start = time.perf_counter()
    if source.is_dir() or source.suffix.lower() == ".gif":
        out, count = pipe.stylize_frames(source, args.output, style=args.style, alpha=args.alpha, size=args.size,
                                         max_size=args.max_size)
        print(f"{out} ({count} frames, {pipe.kind} model {pipe.name}, {time.perf_counter() - start:.1f} s)")
        return 0
    out = _style_output(args.output)
    result = pipe.stylize(source, style=args.style, alpha=args.alpha, size=args.size, max_size=args.max_size)
    seconds = time.perf_counter() - start
    write_image(result, out)
    print(f"{out} ({result.width}x{result.height}, {pipe.kind} model {pipe.name}, {seconds:.2f} s)")
    return 0


def cmd_export(args) -> int:
    from ..pipelines.stylizer import export_onnx
    from ..runs import Run

    family = Run.open(args.run).config.get("family")
    if family != "style":
        raise PixelforgeError(f"{args.run} is a {family} run; export writes ONNX for style runs "
                              "(train stylizer / train adain)")
    print(export_onnx(args.run, args.output))
    return 0


def cmd_texture(args) -> int:
    return _run_style(args, None)
