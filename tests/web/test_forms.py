"""One source of defaults in the studio: every form field's default, limit and option list that
the Python API defines is taken from it (read here from the API itself); the few starting points
that are the studio's own are listed, so a default written again by hand fails here."""

from __future__ import annotations

import inspect

from pixelforge.defaults import FromAPI
from pixelforge.web.tabs import TABS, get_tab

# (tab, action, field): why the studio starts elsewhere than the API (or where the API has no default)
STUDIO_OWN = {
    ("generate", "sample", "n"): "a 16-image grid answers at once (the API's default is 64)",
    ("restore", "denoise", "noise"): "the noise the studio itself adds",
    ("restore", "denoise", "seed"): "the seed of that noise",
    ("upscale", "upscale", "model"): "the x4 shipped model",
    ("upscale", "upscale", "reference"): "a studio check (PSNR against the upload)",
    ("style", "stylize", "steps"): "an answer in seconds on a CPU",
    ("style", "stylize", "size"): "an answer in seconds on a CPU",
    ("style", "texture", "method"): "Adam from flat noise at small sizes",
    ("style", "texture", "steps"): "an answer in seconds on a CPU",
    ("style", "texture", "size"): "an answer in seconds on a CPU",
    ("compress", "overfit", "effort"): "the fast preset: a result in about a minute",
}


def _default(function, name):
    return inspect.signature(function).parameters[name].default


def _api_defaults() -> dict:
    from pixelforge.pipelines.codec import load_shipped_codec
    from pixelforge.pipelines.diffusion import DiffusionPipeline, load_diffusion
    from pixelforge.pipelines.gan import GANPipeline
    from pixelforge.pipelines.overfit_codec import OverfitCodecPipeline
    from pixelforge.pipelines import style as style_pipeline
    from pixelforge.pipelines import stylizer as stylizer_pipeline
    from pixelforge.pipelines.style import stylize
    from pixelforge.pipelines.stylizer import StylizerPipeline

    return {("generate", "sample", "seed"): _default(GANPipeline.sample, "seed"),
            ("generate", "sample", "steps"): _default(load_diffusion, "steps"),
            ("generate", "sample", "sampler"): _default(load_diffusion, "solver"),
            ("generate", "sample", "guidance"): _default(load_diffusion, "guidance"),
            ("generate", "interpolate", "rows"): _default(GANPipeline.interpolate, "rows"),
            ("generate", "interpolate", "frames"): _default(GANPipeline.interpolate, "frames"),
            ("generate", "interpolate", "seed"): _default(GANPipeline.interpolate, "seed"),
            ("inpaint", "inpaint", "steps"): _default(load_diffusion, "steps"),
            ("inpaint", "inpaint", "seed"): _default(DiffusionPipeline.inpaint, "seed"),
            ("style", "stylize", "method"): _default(stylize, "optimizer"),
            ("style", "stylize", "strength"): _default(stylize, "style_weight"),
            ("style", "stylize", "preserve_color"): _default(stylize, "preserve_color"),
            ("style", "stylize", "match_colors"): style_pipeline.DEFAULT_MATCH_COLORS,
            ("style", "texture", "seed"): _default(stylize, "seed"),
            ("style", "model", "alpha"): _default(StylizerPipeline.run_tensor, "alpha"),
            ("style", "model", "model"): "zoo:" + stylizer_pipeline.SHIPPED_ADAIN,
            ("compress", "overfit", "quality"): OverfitCodecPipeline.default_quality,
            ("compress", "compress", "model"): "zoo:" + _default(load_shipped_codec, "name")}


def _fields():
    return {(tab.name, action.name, f.name): f for tab in TABS for action in tab.actions for f in action.fields}


def test_every_form_default_is_the_apis_or_the_studios_own():
    expected = _api_defaults()
    with_default = {key: f for key, f in _fields().items() if f.default is not None}
    for key, f in with_default.items():
        if key in STUDIO_OWN:
            assert not isinstance(f.default, FromAPI), f"{key} takes the API's default: not the studio's own"
            continue
        assert isinstance(f.default, FromAPI), (f"{key}: a default written by hand ({f.default!r}); name the API's "
                                                "(FromAPI) or list it in STUDIO_OWN")
        assert f.resolved().default == expected[key], key
    assert set(expected) | set(STUDIO_OWN) == set(with_default)  # no stale entries


def test_option_lists_and_limits_are_the_apis():
    from pixelforge.pipelines.overfit_codec import EFFORTS, OverfitCodecPipeline
    from pixelforge.pipelines.style import OPTIMIZERS
    from pixelforge.schedulers import SAMPLERS

    fields = _fields()
    selects = {key: f for key, f in fields.items() if f.type == "select"}
    expected = {("generate", "sample", "sampler"): list(SAMPLERS), ("style", "stylize", "method"): list(OPTIMIZERS),
                ("style", "texture", "method"): list(OPTIMIZERS), ("compress", "overfit", "effort"): list(EFFORTS)}
    assert set(selects) == set(expected)
    for key, f in selects.items():
        assert isinstance(f.options, FromAPI) and f.spec()["options"] == expected[key], key
    quality = fields["compress", "overfit", "quality"]
    assert isinstance(quality.max, FromAPI) and quality.spec()["max"] == OverfitCodecPipeline.qualities


def test_a_new_effort_preset_reaches_the_studio(monkeypatch):
    from pixelforge.pipelines import overfit_codec
    from pixelforge.web.app import _convert

    monkeypatch.setitem(overfit_codec.EFFORTS, "turbo", overfit_codec.Effort(2))
    effort = next(f for f in get_tab("compress").action("overfit").fields if f.name == "effort")
    assert effort.spec()["options"][-1] == "turbo" and _convert(effort, "turbo") == "turbo"
    assert overfit_codec.EFFORT_TIMES in effort.spec()["help"]
