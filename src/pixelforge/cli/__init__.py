"""The ``pixelforge`` command: thin commands over the Python API, one module per kind of work.

Every user-caused problem surfaces as ``pixelforge: error: <one line>`` and exit status 2;
an interrupted training run saves a checkpoint and exits with 128 + the signal number.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys

from ..errors import Interrupted, PixelforgeError
from . import autoencoder, generators, images, style, train, workbench
from .arguments import Parser

__all__ = ["build_parser", "main", "run"]


def build_parser(with_training: bool = True) -> argparse.ArgumentParser:
    """The whole command line; ``with_training=False`` leaves out the train subcommands, which
    import every family (and torch) to generate their flags."""
    from .. import __version__

    parser = Parser(prog="pixelforge", description="Deep-learning image generation workbench.")
    parser.add_argument("--version", action="version", version=f"pixelforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if with_training:
        train.add_train_parsers(sub)
    else:
        sub.add_parser("train", help="train a model")
    for commands in (images, generators, autoencoder, style, workbench):
        commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(with_training="train" in argv).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="pixelforge: %(levelname)s: %(message)s")
    try:
        return args.handler(args)
    except Interrupted as e:
        print(f"pixelforge: {e}", file=sys.stderr)
        return 128 + e.signum
    except PixelforgeError as e:
        print(f"pixelforge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pixelforge: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The ``pixelforge`` program: :func:`main`, then the process exits with its status.

    Once torch is imported the process ends without tearing the interpreter down (the output
    streams flushed and the exit handlers run first, as a normal exit does): tearing torch's
    modules down is a noticeable share of a short command such as upscaling a small photo
    (``benchmarks/profiling.py --probes``, ``process_exit_s``). A torchrun rank whose work is
    done and saved leaves the process group first (once the other ranks are done too, when it
    succeeded; a failed rank leaves at once and torchrun stops the rest) and then exits at once:
    running the exit handlers or the teardown with gloo's threads still in the process can abort
    it (SIGABRT) after the work is done."""
    code = main() or 0
    if "torch.distributed" in sys.modules:
        from ..runtime import leave_process_group

        if leave_process_group(wait=not code):
            _exit_now(code)
    if "torch" in sys.modules:
        atexit._run_exitfuncs()  # logging, multiprocessing's children, thread pools: what exit would run
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
