"""Argument types, the argument groups several commands share, and the parser that takes its
defaults from the Python API (:class:`~pixelforge.defaults.FromAPI`) without importing it early."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..defaults import FromAPI
from ..errors import PixelforgeError

LOAD_DIFFUSION = "pixelforge.pipelines.diffusion:load_diffusion"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser (and its subcommands') whose defaults may be :class:`FromAPI`: they are
    looked up after parsing, for the command given only, so the command line starts without
    torch. Help texts name them as ``%(default)s`` / ``%(choices)s`` or through :class:`Help`;
    a ``choices=FromAPI(...)`` needs a ``metavar`` (argparse would list the choices at once)."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        for name, value in vars(namespace).items():
            if isinstance(value, FromAPI):
                setattr(namespace, name, value.value)
        return namespace, extras

    def format_help(self) -> str:
        for action in self._actions:
            if isinstance(action.help, Help):
                action.help = str(action.help)
        return super().format_help()


class Help:
    """A help text naming values of the API, written out only when the help is shown:
    ``Help("tile size in input pixels (default {})", FromAPI("pixelforge.pipelines.sr:DEFAULT_TILE"))``."""

    def __init__(self, text: str, *values):
        self.text, self.values = text, values

    def __str__(self) -> str:
        return self.text.format(*self.values)


def add_overwrite_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def new_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """An output file that is not there yet, or that the user asked to replace (``--overwrite``):
    a command never writes over a file, the input photo among them, without being told to."""
    out = Path(path)
    if out.exists() and not overwrite:
        raise PixelforgeError(f"{out} exists; pass --overwrite to replace it")
    return out


def png_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """:func:`new_output` for a command that writes a PNG, checked before any work."""
    if Path(path).suffix.lower() != ".png":
        raise PixelforgeError(f"this command writes a PNG; give an output ending in .png, not {Path(path).name}")
    return new_output(path, overwrite)


def given(**options) -> dict:
    """The options that were given (not None): the API's own defaults apply to the others."""
    return {k: v for k, v in options.items() if v is not None}


def _number(s: str, convert, what: str, valid, requirement: str):
    try:
        v = convert(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a {what}") from None
    if not valid(v):
        raise argparse.ArgumentTypeError(requirement.format(v=v, s=s))
    return v


def positive_int(s: str) -> int:
    return _number(s, int, "whole number", lambda v: v >= 1, "must be at least 1, got {v}")


def whole_number_up_to(high: int):
    """An argument type: a whole number from 1 to ``high`` (a limit that keeps a grid or an animation
    within memory; beyond it the command would fail late, for lack of it)."""
    def convert(s: str) -> int:
        return _number(s, int, "whole number", lambda v: 1 <= v <= high, f"must be from 1 to {high}, got {{v}}")
    return convert


def positive_float(s: str) -> float:
    return _number(s, float, "number", lambda v: v > 0 and v != float("inf"), "must be a positive number, got {s}")


def non_negative_float(s: str) -> float:
    return _number(s, float, "number", lambda v: v >= 0 and v != float("inf"),
                   "must be a non-negative number, got {s}")


def int_list(s: str) -> list[int]:
    try:
        values = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a comma-separated list of whole numbers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{s!r}: give one or more positive whole numbers, e.g. 1,2,2")
    return values


def float_list(s: str) -> list[float]:
    try:
        values = [float(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a comma-separated list of numbers") from None
    if not values or any(not 0 < v < float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"give positive numbers, comma separated, not {s!r}")
    return values


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:N")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16 autocast on CPUs that have it, fp16/bf16 AMP on CUDA")


def add_sampling_args(parser: argparse.ArgumentParser) -> None:
    """The sampler options of diffusion and GAN runs (``sample`` and ``eval``)."""
    g = parser.add_argument_group("GAN runs")
    g.add_argument("--latent-scale", type=positive_float, default=None, metavar="S",
                   help="draw latents from N(0, S^2 I): below 1 likelier, more alike images, above 1 more varied "
                        "ones (default 1, or the chosen spread for a GAN conditioned on clusters)")
    d = parser.add_argument_group("diffusion runs")
    d.add_argument("--steps", type=positive_int, default=None,
                   help=Help("sampling steps (default {})", FromAPI(LOAD_DIFFUSION, "steps")))
    d.add_argument("--sampler", default=None, metavar="NAME",  # checked against schedulers.SAMPLERS
                   help=Help("ddim: deterministic; ddpm: ancestral, fresh noise at every step; dpm++: "
                             "DPM-Solver++(2M), deterministic and second order (better at few steps); default {}",
                             FromAPI(LOAD_DIFFUSION, "solver")))
    d.add_argument("--eta", type=float, default=None,
                   help=Help("noise level between DDIM (0) and DDPM (1) (default {})", FromAPI(LOAD_DIFFUSION, "eta")))
    d.add_argument("--guidance", type=float, default=None,
                   help=Help("classifier-free guidance scale for conditional runs (default {}; 1 = none)",
                             FromAPI(LOAD_DIFFUSION, "guidance")))


def sampling_options(args) -> dict:
    """The loader options of --steps/--sampler/--eta/--guidance/--latent-scale that were given."""
    from ..schedulers import SAMPLERS  # here, not at the top: the CLI starts without torch

    if args.sampler is not None and args.eta is not None:
        raise PixelforgeError("give --sampler or --eta, not both")
    if args.sampler is not None and args.sampler not in SAMPLERS:
        raise PixelforgeError(f"unknown sampler {args.sampler!r}; use one of {', '.join(SAMPLERS)}")
    named = SAMPLERS[args.sampler] if args.sampler else {"eta": args.eta}
    return given(steps=args.steps, guidance=args.guidance, latent_scale=args.latent_scale, **named)
