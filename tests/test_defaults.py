"""One source of defaults: the command line's defaults, choices and "(default X)" help texts are
those of the Python API (read here from the API itself), and the command line still starts
without importing torch."""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys
from importlib import import_module

import pytest

from pixelforge.cli import build_parser, main
from pixelforge.defaults import FromAPI, default_in, default_text


def _default(function, name):
    return inspect.signature(function).parameters[name].default


def _api_defaults():
    """(argv, option) -> the API's own default, for the options whose default the API defines."""
    from pixelforge.apps.augment import classification_accuracy_score
    from pixelforge.apps.scarce_data import budget_study
    from pixelforge.evaluation import evaluate_run
    from pixelforge.models.sr import SRConfig
    from pixelforge.pipelines.autoencoder import AutoencoderPipeline
    from pixelforge.pipelines.classifier import ClassifierPipeline
    from pixelforge.pipelines.diffusion import DiffusionPipeline, load_diffusion
    from pixelforge.pipelines.sr import DEFAULT_MAX_PIXELS, SRPipeline
    from pixelforge.pipelines.style import stylize, synthesize_texture
    from pixelforge.pipelines.stylizer import open_stylizer
    from pixelforge.pipelines.translation import DIRECTIONS
    from pixelforge.web import Studio

    gatys = ["stylize", "c.png", "--style", "s.png", "-o", "o.png"]
    texture = ["texture", "s.png", "-o", "o.png"]
    return {
        **{(("classify", "r", "i.png"), "k"): _default(ClassifierPipeline.topk, "k"),
           (("upscale", "i.png"), "scale"): SRConfig().scale,
           (("upscale", "i.png"), "tile"): _default(SRPipeline.upscale, "tile"),
           (("upscale", "i.png"), "max_pixels"): DEFAULT_MAX_PIXELS,
           (("translate", "r", "i.png"), "direction"): DIRECTIONS[0],
           (("inpaint", "r", "i.png", "--box", "0,0,2,2", "-o", "o.png"), "steps"): _default(load_diffusion, "steps"),
           (("inpaint", "r", "i.png", "--box", "0,0,2,2", "-o", "o.png"), "resample"):
               _default(DiffusionPipeline.inpaint, "resample"),
           (("eval", "r"), "n"): _default(evaluate_run, "n"),
           (("eval", "r"), "metrics"): ",".join(_default(evaluate_run, "metrics")),
           (("augment",), "per_class"): ",".join(map(str, _default(budget_study, "budgets"))),
           (("augment",), "seeds"): len(_default(budget_study, "seeds")),
           (("augment",), "steps"): ",".join(map(str, _default(budget_study, "steps"))),
           (("augment",), "gan_steps"): _default(budget_study, "gan_steps"),
           (("augment",), "data"): _default(budget_study, "data"),
           (("cas", "r"), "per_class"): _default(classification_accuracy_score, "per_class"),
           (("cas", "r"), "steps"): _default(classification_accuracy_score, "steps"),
           (("latent-map", "r"), "n"): _default(AutoencoderPipeline.latent_map, "n"),
           (("latent-map", "r"), "grid"): _default(AutoencoderPipeline.latent_map, "grid"),
           (("serve",), "runs_dir"): _default(Studio, "runs_dir"),
           (("serve",), "max_upload_mb"): _default(Studio, "max_upload_mb"),
           (("serve",), "max_megapixels"): _default(Studio, "max_pixels") / 1e6,
           (("serve",), "device"): _default(Studio, "device"),
           ((*gatys,), "content_weight"): _default(stylize, "content_weight"),
           ((*gatys,), "runtime"): _default(open_stylizer, "runtime"),
           ((*gatys,), "precision"): _default(open_stylizer, "precision")},
        **{((*gatys,), name): _default(stylize, name)
           for name in ("steps", "optimizer", "backbone", "seed", "device")},  # style weight, scales: by --texture
        **{((*texture,), name): _default(synthesize_texture, name)
           for name in ("size", "steps", "optimizer", "style_weight", "tv_weight", "scales", "backbone", "seed",
                        "device")},
    }


def test_command_line_defaults_are_the_apis():
    parser = build_parser(with_training=False)
    for (argv, option), expected in _api_defaults().items():
        assert getattr(parser.parse_args(list(argv)), option) == expected, (argv[0], option)
        # not written again: named in the API, looked up when the command is parsed
        assert isinstance(_action(argv[0], option, parser).default, FromAPI), (argv[0], option)


def _action(command: str, dest: str, parser: argparse.ArgumentParser | None = None) -> argparse.Action:
    parser = parser or build_parser(with_training=False)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return next(a for a in commands.choices[command]._actions if a.dest == dest)


def test_command_line_choices_are_the_apis():
    from pixelforge.models.classifier import TTA_MODES
    from pixelforge.models.sr import SCALES
    from pixelforge.pipelines.overfit_codec import EFFORTS
    from pixelforge.pipelines.style import INITS, OPTIMIZERS
    from pixelforge.pipelines.stylizer import RUNTIMES
    from pixelforge.pipelines.translation import DIRECTIONS

    parser = build_parser(with_training=False)
    for command, dest, choices in (("compress", "effort", list(EFFORTS)), ("classify", "tta", TTA_MODES),
                                   ("upscale", "scale", SCALES), ("stylize", "optimizer", OPTIMIZERS),
                                   ("texture", "optimizer", OPTIMIZERS), ("stylize", "init", INITS),
                                   ("stylize", "runtime", RUNTIMES), ("translate", "direction", DIRECTIONS)):
        action = _action(command, dest, parser)
        assert isinstance(action.choices, FromAPI) and list(action.choices) == list(choices), (command, dest)


def test_a_new_effort_preset_reaches_the_command_line(monkeypatch, capsys):
    from pixelforge.pipelines import overfit_codec

    monkeypatch.setitem(overfit_codec.EFFORTS, "turbo", overfit_codec.Effort(2))
    args = build_parser(with_training=False).parse_args(["compress", "x.png", "--effort", "turbo"])
    assert args.effort == "turbo"
    with pytest.raises(SystemExit):
        main(["compress", "x.png", "--effort", "hardest"])
    assert "invalid choice: 'hardest' (choose from 'fast', 'default', 'best', 'turbo')" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compress", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(fast, default, best, turbo)" in help_text and overfit_codec.EFFORT_TIMES in help_text
    assert f"(default: {overfit_codec.DEFAULT_EFFORT})" in help_text
    assert f"({overfit_codec.OverfitCodecPipeline.qualities} for the overfitted codec)" in help_text


def _pipelines(name: str):
    return import_module(f"pixelforge.pipelines.{name}")


@pytest.mark.parametrize("command,expected", [
    ("upscale", lambda: [f"tile size in input pixels (default {_pipelines('sr').DEFAULT_TILE})",
                         f"(default {_pipelines('sr').DEFAULT_MAX_PIXELS})"]),
    ("interpolate", lambda: [
        f"frames (GAN, default {_default(_pipelines('gan').GANPipeline.interpolate, 'frames')}) or steps per walk "
        f"(autoencoder, default {_default(_pipelines('autoencoder').AutoencoderPipeline.save_interpolation, 'steps')}",
        f"(GAN, default {_default(_pipelines('gan').GANPipeline.interpolate, 'fps')}; autoencoder, default "
        f"{_default(_pipelines('autoencoder').AutoencoderPipeline.save_interpolation, 'fps')})"]),
    ("stylize", lambda: [f"(default {default_text(_pipelines('stylizer').DEFAULT_ALPHA)})",
                         f"(default {_pipelines('stylizer').DEFAULT_MAX_SIZE})",
                         f"(default {_default(_pipelines('style').stylize, 'size')}; with --model: as is)"]),
    ("sample", lambda: [f"sampling steps (default {_default(_pipelines('diffusion').load_diffusion, 'steps')})"]),
])
def test_help_texts_say_the_apis_defaults(command, expected, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for text in expected():
        assert text in help_text, text


def test_the_command_line_starts_without_torch():
    code = ("import sys; from pixelforge.cli import build_parser; build_parser(with_training=False); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_from_api_reads_signatures_fields_and_constants():
    from pixelforge.models.sr import SRConfig
    from pixelforge.pipelines.style import OPTIMIZERS, stylize

    steps = FromAPI("pixelforge.pipelines.style:stylize", "steps")
    assert steps.value == _default(stylize, "steps") and f"{steps}" == str(steps.value)
    assert FromAPI("pixelforge.models.sr:SRConfig", "scale").value == SRConfig().scale == default_in(SRConfig, "scale")
    optimizers = FromAPI("pixelforge.pipelines.style:OPTIMIZERS")
    assert list(optimizers) == list(OPTIMIZERS) and "adam" in optimizers
    assert FromAPI("pixelforge.pipelines.overfit_codec:OverfitCodecPipeline.qualities").value >= 1
    assert FromAPI("pixelforge.pipelines.style:OPTIMIZERS", then=len).value == len(OPTIMIZERS)
    assert f"{FromAPI('pixelforge.pipelines.sr:DEFAULT_MAX_PIXELS', then=lambda p: p / 1e6):g}" == "200"
