"""``pixelforge train NAME``: one subcommand per :class:`~pixelforge.family.TrainCommand` of the
registered families. Its flags are generated from the command's config dataclasses (fields with
``help`` metadata), the loop's :class:`~pixelforge.training.TrainConfig` and the train function's
signature, so every default is written once, where the dataclass or function declares it.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

from .. import dryrun
from ..defaults import default_in, default_text
from ..errors import PixelforgeError
from ..family import Option
from .arguments import (add_runtime_args, float_list, int_list, non_negative_float, positive_float,
                        positive_int)

GROUP_TITLES = {"model": "model", "training": "training",
                "budget": "budget (training stops at the first one reached)",
                "evaluation": "evaluation during training"}
EVALUATION_OPTIONS = (
    Option("eval_samples", "samples per evaluation", group="evaluation", check="positive"),
    Option("extractor", "judge network: auto (shipped classifier), inception, a shipped model name or a classifier "
                        "run", group="evaluation"),
)


def add_train_parsers(sub) -> None:
    from ..families import all_families

    train = sub.add_parser("train", help="train a model").add_subparsers(dest="family", required=True,
                                                                         metavar="FAMILY")
    for family in all_families():
        for command in family.commands:
            p = train.add_parser(command.name, help=command.help)
            flags = _Flags(p)
            for i, config in enumerate(command.configs):
                flags.add_fields(config, "model" if i == 0 else "training", skip=command.skip)
            for option in (*command.options, *(EVALUATION_OPTIONS if command.evaluates else ())):
                flags.add_option(command, option)
            flags.add_loop_fields(command.evaluates)
            _add_common_args(p, command.data_aliases, flags.group("data"))
            p.set_defaults(handler=cmd_train, train_command=command, train_options=tuple(flags.names))


def cmd_train(args) -> int:
    command = args.train_command
    if args.resume and args.run is None:
        raise PixelforgeError("--resume needs --run-dir RUN_DIR")
    options = {name: getattr(args, name) for name in args.train_options if hasattr(args, name)}
    with dryrun.enabled(args.dry_run):
        pipe = command.train(args.data, run=args.run, resume=args.resume, overwrite=args.overwrite, size=args.size,
                             channels=args.channels, limit=args.limit, device=args.device, precision=args.precision,
                             seed=args.seed, progress=not args.no_progress, **command.fixed, **options)
    print(f"run: {pipe.path}")
    for line in command.report(pipe) if command.report else ():
        print(line)
    return 0


class _Flags:
    """Adds the generated flags to one train parser; an option not given stays out of ``args``."""

    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser
        self.groups: dict[str, argparse._ArgumentGroup] = {}
        self.names: list[str] = []

    def add_fields(self, config: type, group: str, skip: tuple[str, ...] = ()) -> None:
        hints = typing.get_type_hints(config)
        for f in dataclasses.fields(config):
            if "help" not in f.metadata or f.name in skip:
                continue
            meta = {**f.metadata, "group": f.metadata.get("group", group)}
            self._add(f.name, hints[f.name], default_in(config, f.name), meta)

    def add_loop_fields(self, evaluates: bool) -> None:
        from ..training import TrainConfig

        skip = () if evaluates else ("eval_every",)
        self.add_fields(TrainConfig, "budget", skip=skip)

    def add_option(self, command, option) -> None:
        hints = typing.get_type_hints(command.train)
        meta = {"help": option.help, "group": option.group, "flag": option.flag, "choices": option.choices,
                "check": option.check}
        self._add(option.name, hints.get(option.name, str), command.default_of(option.name), meta)

    def _add(self, name: str, hint, default, meta: dict) -> None:
        flag = meta.get("flag") or "--" + name.replace("_", "-")
        text = _default_text(meta, default)
        kwargs = {"dest": name, "default": argparse.SUPPRESS,
                  "help": f"{meta['help']} (default {text})" if text else meta["help"],
                  **_conversion(hint, meta, default)}
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
        self.group(meta.get("group", "")).add_argument(flag, **kwargs)
        self.names.append(name)

    def group(self, name: str):
        """The parser's argument group ``name`` (made at first use), or the parser for ""."""
        if not name:
            return self.parser
        if name not in self.groups:
            self.groups[name] = self.parser.add_argument_group(GROUP_TITLES.get(name, name))
        return self.groups[name]


def _conversion(hint, meta: dict, default) -> dict:
    """argparse's type/action/choices for a field of type ``hint``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        negatable = default is not False or meta.get("negatable")
        return {"action": argparse.BooleanOptionalAction if negatable else "store_true"}
    if typing.get_origin(hint) in (list, tuple):
        return {"type": float_list if typing.get_args(hint)[0] is float else int_list}
    check = meta.get("check", "")
    converters = {int: positive_int if check == "positive" else int,
                  float: {"positive": positive_float, "non-negative": non_negative_float}.get(check, float)}
    out = {"type": converters.get(hint, str)}
    if meta.get("choices"):
        out["choices"] = list(meta["choices"])
    return out


def _default_text(meta: dict, default) -> str | None:
    return meta["default_text"] if "default_text" in meta else default_text(default)


def _add_common_args(p: argparse.ArgumentParser, data_aliases: tuple[str, ...], d) -> None:
    """--data, --run-dir, ... and into the "data" group ``d`` (which may hold the command's own
    data options) --size, --channels and --limit."""
    p.add_argument("--data", *data_aliases, dest="data", default=None,
                   help="fashion-mnist, mnist, digits, folder:PATH, or NAME:CLASSES (e.g. fashion-mnist:7,9)")
    # --run-dir, not only --run: torchrun's parser rejects "--run" as an abbreviation of its --run-path.
    p.add_argument("--run-dir", "--run", dest="run", default=None,
                   help="run directory (default runs/FAMILY-DATA-TIMESTAMP); under torchrun spell it --run-dir")
    p.add_argument("--resume", action="store_true", help="continue the run in --run where it stopped")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    d.add_argument("--size", type=positive_int, help="image size (default: the dataset's)")
    d.add_argument("--channels", type=int, choices=[1, 3], help="1 (grayscale) or 3 (RGB)")
    d.add_argument("--limit", type=positive_int, help="use only the first N images (quick tries)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dry-run", action="store_true",
                   help="fast mode (as PIXELFORGE_DRY_RUN=1): 2 steps on 512 images, tiny evaluation; checks the set-up")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_runtime_args(p)
