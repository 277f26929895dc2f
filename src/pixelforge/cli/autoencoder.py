"""Autoencoder commands: reconstruct, encode, decode, restore, latent-map."""

from __future__ import annotations

from pathlib import Path

from ..defaults import FromAPI
from .arguments import add_overwrite_arg, new_output, positive_int

LATENT_MAP = "pixelforge.pipelines.autoencoder:AutoencoderPipeline.latent_map"


def add_parsers(sub) -> None:
    for name, help_, handler, inputs, output, labels in (
            ("reconstruct", "autoencoder: each image beside its reconstruction, as one grid", cmd_reconstruct,
             "images", "output PNG", "conditional runs: one label per image (ids or names, comma separated)"),
            ("encode", "autoencoder: images -> codes (.npy, N x latent_dim; a map code: N x latent_dim x H/4 x W/4)",
             cmd_encode, "images", "output .npy file", "conditional runs: one label per image"),
            ("decode", "autoencoder: codes (.npy) -> images", cmd_decode, "codes",
             "output folder (one PNG per code and grid.png)", "conditional runs: labels, cycled over the codes")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("run")
        if inputs == "images":
            p.add_argument("images", nargs="+", help="image files or folders of them")
        else:
            p.add_argument("codes", help=".npy file of the shape encode writes: (N, latent_dim) or "
                                         "(N, latent_dim, H/4, W/4)")
        p.add_argument("-o", "--output", required=True, help=output)
        p.add_argument("--labels", default=None, help=labels)
        p.add_argument("--device", default="auto")
        add_overwrite_arg(p)
        p.set_defaults(handler=handler)
    rs = sub.add_parser("restore", help="denoise an image or inpaint a region of it")
    rs.add_argument("run")
    rs.add_argument("image")
    rs.add_argument("--task", required=True, choices=["denoise", "inpaint"])
    where = rs.add_mutually_exclusive_group()
    where.add_argument("--mask", default=None, help="inpaint: mask PNG of the image's size, white = missing")
    where.add_argument("--box", default=None, help="inpaint: the region x,y,w,h in the image's pixels")
    rs.add_argument("-o", "--output", required=True, help="output PNG (at the model's size)")
    rs.add_argument("--corrupt", default=None, help="first damage the image with this corruption spec "
                                                    "(a demonstration on clean images), e.g. gaussian:0.3")
    rs.add_argument("--compare", default=None, help="also write input | restored side by side to this PNG")
    rs.add_argument("--labels", default=None, help="conditional runs: the image's label")
    rs.add_argument("--seed", type=int, default=0)
    rs.add_argument("--device", default="auto")
    add_overwrite_arg(rs)
    rs.set_defaults(handler=cmd_restore)
    lm = sub.add_parser("latent-map", help="autoencoder: 2-D map of test-set codes coloured by class "
                                           "(and the decoded manifold for a 2-D latent)")
    lm.add_argument("run")
    lm.add_argument("-o", "--output", default=None, help="output PNG (default RUN/latent_map.png)")
    lm.add_argument("-n", type=positive_int, default=FromAPI(LATENT_MAP, "n"),
                    help="test images to encode (default %(default)s)")
    lm.add_argument("--data", default=None, help="dataset to map (default: the run's)")
    lm.add_argument("--grid", type=positive_int, default=FromAPI(LATENT_MAP, "grid"),
                    help="manifold grid side (2-D latents, default %(default)s)")
    lm.add_argument("--label", default=None, help="conditional runs: class of the manifold grid")
    lm.add_argument("--device", default="auto")
    add_overwrite_arg(lm)
    lm.set_defaults(handler=cmd_latent_map)


def _autoencoder(args):
    from ..api import load_autoencoder

    return load_autoencoder(args.run, device=args.device)


def cmd_reconstruct(args) -> int:
    new_output(args.output, args.overwrite)
    pipe = _autoencoder(args)
    images = pipe.load_images(args.images)
    print(pipe.reconstruction_grid(images, args.output, labels=args.labels))
    return 0


def cmd_encode(args) -> int:
    from ..pipelines.autoencoder_files import save_codes

    new_output(args.output, args.overwrite)
    pipe = _autoencoder(args)
    codes = pipe.encode(pipe.load_images(args.images), args.labels)
    shape = "x".join(map(str, codes.shape[1:]))
    print(f"{save_codes(codes, args.output)}: {codes.shape[0]} codes of {codes[0].numel()} numbers"
          + (f" ({shape} maps)" if codes.dim() == 4 else ""))
    return 0


def cmd_decode(args) -> int:
    from ..images import save_grid
    from ..pipelines.autoencoder_files import load_codes, save_image

    codes, out = load_codes(args.codes), Path(args.output)
    files = [out / f"decoded_{k:04d}.png" for k in range(len(codes))]
    for path in (out / "grid.png", *files):
        new_output(path, args.overwrite)
    pipe = _autoencoder(args)
    images = pipe.decode(codes, args.labels)
    for path, img in zip(files, images):
        save_image(img, path)
    save_grid(images, out / "grid.png", scale=2 if pipe.image_size <= 32 else 1)
    print(f"{out}: {len(images)} images (decoded_0000.png ..., grid.png)")
    return 0


def cmd_restore(args) -> int:
    for path in (args.output, args.compare):
        if path is not None:
            new_output(path, args.overwrite)
    pipe = _autoencoder(args)
    print(pipe.restore_file(args.image, args.output, task=args.task, mask=args.mask, box=args.box,
                            labels=args.labels, corrupt=args.corrupt, seed=args.seed, compare=args.compare))
    if args.compare:
        print(args.compare)
    return 0


def cmd_latent_map(args) -> int:
    out = new_output(args.output or Path(args.run) / "latent_map.png", args.overwrite)
    pipe = _autoencoder(args)
    for path in pipe.latent_map(out, n=args.n, data=args.data, grid=args.grid, label=args.label).values():
        print(path)
    return 0
