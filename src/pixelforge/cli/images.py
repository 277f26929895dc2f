"""Commands on single images: classify, explain, upscale, translate, compress, decompress."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..defaults import FromAPI
from ..errors import PixelforgeError
from .arguments import Help, add_overwrite_arg, new_output, positive_int

OVERFIT = "pixelforge.pipelines.overfit_codec"
SR = "pixelforge.pipelines.sr"
TRANSLATION = "pixelforge.pipelines.translation"


def add_parsers(sub) -> None:
    c = sub.add_parser("classify", help="top-k labels of images with a trained classifier")
    c.add_argument("run")
    c.add_argument("images", nargs="+")
    c.add_argument("-k", type=positive_int, default=FromAPI("pixelforge.pipelines.classifier:ClassifierPipeline.topk",
                                                            "k"), help="labels per image (default %(default)s)")
    c.add_argument("--tta", choices=FromAPI("pixelforge.models.classifier:TTA_MODES"), metavar="TTA",
                   help="test-time augmentation (%(choices)s): average the logits over the image alone, with its "
                        "mirror, or over 10 views (mirror and 1-px shifts; slower, a little more accurate). Default: "
                        "flip for a classifier trained with flips, else none")
    c.add_argument("--device", default="auto")
    c.set_defaults(handler=cmd_classify)
    e = sub.add_parser("explain", help="filters, feature maps and Grad-CAM of a classifier on one image")
    e.add_argument("run")
    e.add_argument("image")
    e.add_argument("-o", "--output", default=None, help="output folder (default RUN/explain/IMAGE_NAME)")
    e.add_argument("--device", default="auto")
    e.set_defaults(handler=cmd_explain)
    u = sub.add_parser("upscale", help="super-resolve an image of any size (tiled), x2 or x4")
    u.add_argument("image")
    u.add_argument("--scale", type=int, choices=FromAPI("pixelforge.models.sr:SCALES"), metavar="SCALE",
                   default=FromAPI("pixelforge.models.sr:SRConfig", "scale"),
                   help="upscaling factor, %(choices)s (default %(default)s)")
    u.add_argument("--model", default=None,
                   help="an sr run directory or a shipped model, zoo:NAME (default: the shipped model for --scale)")
    u.add_argument("-o", "--output", default=None, help="output image (default IMAGE_xSCALE.png beside the input)")
    u.add_argument("--tile", type=positive_int, default=FromAPI(f"{SR}:SRPipeline.upscale", "tile"),
                   help="tile size in input pixels (default %(default)s)")
    u.add_argument("--max-pixels", type=positive_int, default=FromAPI(f"{SR}:DEFAULT_MAX_PIXELS"),
                   help="refuse outputs with more pixels than this (default %(default)s)")
    u.add_argument("--device", default="auto")
    add_overwrite_arg(u)
    u.set_defaults(handler=cmd_upscale)
    cp = sub.add_parser("compress", help="compress an image to a .pfc file with a learned codec")
    cp.add_argument("image")
    cp.add_argument("-o", "--output", default=None, help="output .pfc file (default IMAGE.pfc beside the input)")
    cp.add_argument("--quality", type=positive_int, default=None,
                    help=Help("quality level, 1 (smallest file) .. the codec's highest ({} for the overfitted codec); "
                              "default: {} for the overfitted codec, the middle level for an amortized one",
                              FromAPI(f"{OVERFIT}:OverfitCodecPipeline.qualities"),
                              FromAPI(f"{OVERFIT}:OverfitCodecPipeline.default_quality")))
    cp.add_argument("--model", default=None,
                    help="overfit (default: fits a small network to the image, no weights needed), a codec run "
                         "directory or a shipped amortized codec, zoo:NAME (zoo:photos-codec-v1)")
    cp.add_argument("--effort", choices=FromAPI(f"{OVERFIT}:EFFORTS"), metavar="EFFORT", default=None,
                    help=Help("overfitted codec: encoding effort (%(choices)s), {} (default: {})",
                              FromAPI(f"{OVERFIT}:EFFORT_TIMES"), FromAPI(f"{OVERFIT}:DEFAULT_EFFORT")))
    add_overwrite_arg(cp)
    cp.set_defaults(handler=cmd_compress)
    dc = sub.add_parser("decompress", help="decode a .pfc file to an image")
    dc.add_argument("file")
    dc.add_argument("-o", "--output", default=None, help="output image (default FILE.png beside the input)")
    dc.add_argument("--model", default=None, help="the codec run the file was compressed with (the overfitted "
                                                  "and shipped codecs are found from the file's header)")
    add_overwrite_arg(dc)
    dc.set_defaults(handler=cmd_decompress)
    t = sub.add_parser("translate", help="translate an image with a pix2pix or CycleGAN run")
    _add_translate_args(t)
    t.set_defaults(handler=cmd_translate)


def cmd_classify(args) -> int:
    from ..api import load_classifier

    pipe = load_classifier(args.run, device=args.device, tta=args.tta)
    images = pipe.load_images(args.images)
    for path, top in zip(args.images, pipe.topk(images, args.k)):
        print(f"{path}: " + ", ".join(f"{name} {p:.1%}" for name, p in top))
    return 0


def cmd_explain(args) -> int:
    from ..api import load_classifier

    pipe = load_classifier(args.run, device=args.device)
    image = pipe.load_images([args.image])[0]
    out = Path(args.output) if args.output else pipe.path / "explain" / Path(args.image).stem
    for name, path in pipe.explain(image, out).items():
        print(f"{name}: {path}")
    return 0


def cmd_upscale(args) -> int:

    from ..imageio import read_image, write_image
    from ..pipelines.sr import open_upscaler

    image = read_image(args.image)  # a bad file fails before a model is loaded
    src = Path(args.image)
    out = _output_path(args.output, src.with_name(f"{src.stem}_x{args.scale}.png"), args.overwrite)
    if not out.suffix:
        raise PixelforgeError(f"give the output a file extension (e.g. {out}.png)")
    pipe = open_upscaler(args.model, args.scale, device=args.device)
    result = pipe.upscale(image, scale=args.scale, tile=args.tile, max_pixels=args.max_pixels, progress=True)
    write_image(result, out)
    print(f"{out} ({image.width}x{image.height} -> {result.width}x{result.height}, x{pipe.scale} with {pipe.name})")
    return 0


def _output_path(given: str | None, default: Path, overwrite: bool) -> Path:
    return new_output(given or default, overwrite)


def cmd_compress(args) -> int:
    from ..pipelines.codec import open_codec

    src = Path(args.image)
    out = _output_path(args.output, src.with_suffix(".pfc"), args.overwrite)
    codec = open_codec(args.model, args.effort)
    if codec.model_id == "overfit":
        from .. import dryrun

        info = codec.compress_file(src, out, args.quality, overwrite=True, progress=True)
        label = codec.effort + (" (dry run)" if dryrun.active() else "")
        extra = f", {info['psnr']:.2f} dB PSNR, effort {label}, {info['seconds']:.0f} s"
    else:
        info = codec.compress_file(src, out, args.quality, overwrite=True)
        extra = ""
    print(f"{out}: {info['bytes']} bytes, {info['bpp']:.3f} bits per pixel "
          f"({info['width']}x{info['height']} {info['mode']}, quality {info['quality']}, {codec.model_id}{extra})")
    return 0


def cmd_decompress(args) -> int:
    from ..imageio import write_image
    from ..pipelines.codec import codec_for_file

    src = Path(args.file)
    codec = codec_for_file(src, args.model)
    out = _output_path(args.output, src.with_suffix(".png"), args.overwrite)
    image = codec.decompress(src)
    write_image(image, out)
    print(f"{out} ({image.width}x{image.height} {image.mode})")
    return 0


def cmd_translate(args) -> int:

    from ..imageio import read_image, write_image
    from ..pipelines.translation import load_translation

    image = read_image(args.image)  # a bad file fails before a model is loaded
    src = Path(args.image)
    out = _output_path(args.output, src.with_name(f"{src.stem}_translated.png"), args.overwrite)
    if not out.suffix:
        raise PixelforgeError(f"give the output a file extension (e.g. {out}.png)")
    pipe = load_translation(args.run, device=args.device)
    result = pipe.translate(image, direction=args.direction, derive=args.derive, tile=args.tile)
    write_image(result, out)
    print(f"{out} ({result.width}x{result.height}, {pipe.kind} {args.direction if pipe.kind == 'cyclegan' else 'a2b'})")
    return 0


def _add_translate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a pix2pix or cyclegan run directory")
    p.add_argument("image")
    p.add_argument("-o", "--output", default=None, help="output image (default IMAGE_translated.png beside the input)")
    p.add_argument("--direction", choices=FromAPI(f"{TRANSLATION}:DIRECTIONS"), metavar="DIRECTION",
                   default=FromAPI(f"{TRANSLATION}:DIRECTIONS", then=lambda d: d[0]),
                   help="CycleGAN: %(choices)s (A -> B or B -> A; default %(default)s)")
    p.add_argument("--derive", action="store_true",
                   help="pix2pix with a built-in pairing: make the input from IMAGE first (e.g. its edges)")
    p.add_argument("--tile", type=positive_int, default=None,
                   help=Help("translate in tiles of N px (default: the whole image up to {:g} MP, else tiles of {} px)",
                             FromAPI(f"{TRANSLATION}:WHOLE_IMAGE_PIXELS", then=lambda n: n / 1e6),
                             FromAPI(f"{TRANSLATION}:DEFAULT_TILE")))
    p.add_argument("--device", default="auto")
    add_overwrite_arg(p)
