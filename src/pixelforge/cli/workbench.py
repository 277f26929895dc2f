"""The studio, the listings and the example images: serve, datasets, models, examples."""

from __future__ import annotations

from ..errors import PixelforgeError
from ..defaults import FromAPI
from .arguments import positive_float

STUDIO = "pixelforge.web:Studio"


def add_parsers(sub) -> None:
    sv = sub.add_parser("serve", help="the web studio in the browser (needs pixelforge[web])")
    sv.add_argument("--runs-dir", default=FromAPI(STUDIO, "runs_dir"),
                    help="folder whose runs the studio lists (default %(default)s)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=7860, help="default 7860")
    sv.add_argument("--output-dir", default=None, help="where generated images go (default: a temporary folder)")
    sv.add_argument("--max-upload-mb", type=positive_float, default=FromAPI(STUDIO, "max_upload_mb"),
                    help="largest accepted upload (default %(default)s)")
    sv.add_argument("--max-megapixels", type=positive_float,
                    default=FromAPI(STUDIO, "max_pixels", then=lambda pixels: pixels / 1e6),
                    help="largest accepted image in megapixels (default %(default)s)")
    sv.add_argument("--device", default=FromAPI(STUDIO, "device"),
                    help="auto, cpu, cuda, cuda:N (default %(default)s)")
    sv.set_defaults(handler=cmd_serve)
    sub.add_parser("datasets", help="list the named datasets and where each was found").set_defaults(handler=cmd_datasets)
    sub.add_parser("models", help="list the registered models").set_defaults(handler=cmd_models)
    ex = sub.add_parser("examples", help="write example images to try the commands on (Fashion-MNIST items, "
                                         "two photos, two style pictures)")
    ex.add_argument("-o", "--output", default="examples", help="folder to write them to (default examples)")
    ex.add_argument("--no-download", action="store_true",
                    help="use only a local copy of Fashion-MNIST (without one its images are left out)")
    ex.set_defaults(handler=cmd_examples)


def cmd_serve(args) -> int:
    from ..web import serve

    if not 0 <= args.port <= 65535:
        raise PixelforgeError(f"--port must be 0..65535, not {args.port}")
    serve(args.runs_dir, host=args.host, port=args.port, output_dir=args.output_dir, device=args.device,
          max_upload_mb=args.max_upload_mb, max_pixels=int(args.max_megapixels * 1e6))
    return 0


def cmd_datasets(args) -> int:
    from ..data import list_datasets, search_path

    print("search path: " + ", ".join(str(p) for p in search_path()))
    for d in list_datasets():
        where = d.get("location") or f"not found: will download from {d.get('url')}"
        print(f"  {d['name']:<15} {d['description']}\n  {'':<15} -> {where}")
    print("  folder:PATH     any image folder (recursive; class subfolders become labels)")
    return 0


def cmd_models(args) -> int:
    from ..registry import get_entry, list_models

    for name in list_models():
        e = get_entry(name)
        print(f"{name:<12} [{e.family}] {e.description}")
    return 0


def cmd_examples(args) -> int:
    from ..data import write_examples

    written = write_examples(args.output, download=not args.no_download)
    for path in written:
        print(path)
    print(f"{len(written) - 1} images in {args.output}/ (fashion/, photos/, styles/); sources and licences in "
          f"{args.output}/CREDITS.txt")
    return 0
