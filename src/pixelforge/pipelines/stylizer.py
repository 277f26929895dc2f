"""Learned style transfer from Python: train a feed-forward stylizer (one style) or an AdaIN
decoder (any style), apply either to images, GIFs and folders of video frames, export to ONNX and
run the export with ONNX Runtime.

    pipe = train_stylizer("folder:photos", "runs/mosaic", style="mosaic.png", minutes=5)
    pipe = load_stylizer("runs/mosaic")                       # or an AdaIN run: pipe.stylize(img, style=...)
    pipe.stylize("photo.png").save("out.png")
    export_onnx("runs/mosaic", "mosaic.onnx"); OnnxStylizer("mosaic.onnx").stylize("photo.png")

Both kinds of run are family ``style``; ``config.json`` names the model (``johnson`` or ``adain``)
and the weights are ``checkpoints/*/style.safetensors``, so a run rebuilds from its directory alone.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from ..data import ImageData, load_dataset, load_image
from ..errors import PixelforgeError, RunError
from ..imageio import read_frames, read_image, to_mode, write_frames, write_image
from ..family import Family, Option, TrainCommand
from ..images import save_png
from ..models.style import (AdaINConfig, AdaINNet, StylizerConfig, TransformerNet, at_scale, check_content_scale,
                            pad_with_border)
from ..registry import create_model
from ..runs import Run
from ..runtime import Runtime
from ..training import Trainer
from ..data.transforms import patches
from ..training.style import AdaINTask, AdaINTrainConfig, StylizerTask, StylizerTrainConfig
from ..zoo.catalog import export_run, list_pretrained, load_network, shipped_name
from .common import load_weights_into, open_model, samples_report, start_session
from .style import fitted_shape, load_rgb, stylize, synthesize_texture

log = logging.getLogger("pixelforge.style")

DEFAULT_PHOTO_SIZE = 512  # training photos: shorter side, centre crop
MIN_SIDE = 16  # smallest image side the learned models take
DEFAULT_MAX_SIZE = 2048  # larger images are downscaled to this longest side (with a message)
DEFAULT_ALPHA = 1.0  # AdaIN: 0 = the content's features, 1 = the full style
RUNTIMES = ("torch", "onnx")
FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
ONNX_MAGIC = "pixelforge-stylizer-1"
SHIPPED_ADAIN = "photos-adain-v12"  # the studio's Style tab starts with it (pixelforge/zoo/MODEL_CARDS.md)


# ----------------------------------------------------------------------------- training

def _photos(session) -> ImageData:
    tiles = patches(session.data.images, session.task_cfg.crop)
    return ImageData(tiles, None, [], session.data.name, session.data.source)


def _defaults(options: dict, resume: bool, size: int | None, channels: int | None) -> int | None:
    if channels not in (None, 3):
        raise PixelforgeError("style transfer works on RGB photos; leave out --channels")
    if not resume:
        if options.get("batch_size") is None:
            options["batch_size"] = 4
        size = size or DEFAULT_PHOTO_SIZE
    return size


def train_stylizer(data: str | None, run: str | os.PathLike | None = None, *, style: str | os.PathLike | None = None,
                   resume: bool = False, overwrite: bool = False, size: int | None = None, channels: int | None = None,
                   limit: int | None = None, device: str = "auto", precision: str = "auto", seed: int = 0,
                   progress: bool = True, **options: Any) -> "StylizerPipeline":
    """Train (or continue) a feed-forward network that paints photos in the style of ``style``.

    ``data`` is a folder of content photos (``folder:PATH``), loaded at ``size`` (shorter side, centre
    crop; default 512) and cut into random ``crop`` windows. ``options``: fields of
    :class:`~pixelforge.models.style.StylizerConfig`, :class:`~pixelforge.training.style.StylizerTrainConfig`
    and the loop's budget (minutes, max_steps, batch_size, ...). The run keeps the style as style.png.
    """
    size = _defaults(options, resume, size, channels)
    if not resume:
        if data is None or style is None:
            raise PixelforgeError("a stylizer needs content photos (--data folder:PATH) and --style IMAGE")
        style_size = options.get("style_size") or StylizerTrainConfig.style_size
        style_image = load_rgb(style, style_size)  # a bad style file fails before the run is created
        options["style"] = str(style)
    elif style is not None:
        raise PixelforgeError("--style cannot change when resuming; the run keeps its style.png")
    s = start_session("style", StylizerTrainConfig, data, run, model="johnson", options=options, resume=resume,
                      task=StylizerTask,
                      overwrite=overwrite, size=size, channels=3, limit=limit, device=device, precision=precision,
                      seed=seed, keep_classes=False, model_defaults=lambda d: {})
    if s.model_name != "johnson":
        raise RunError(f"{s.run.path} is an {s.model_name} run, not a feed-forward stylizer run")
    if resume:
        style_image = load_rgb(s.run.path / "style.png", None)
    else:
        save_png(_to_pil(style_image), s.run.path / "style.png")
    net = create_model(s.model_name, **dataclasses.asdict(s.model_cfg))
    task = StylizerTask(net, s.task_cfg, s.runtime, style_image)
    Trainer(task, _photos(s), s.run, s.train_cfg, s.runtime, seed=s.seed, progress=progress).fit(resume=resume)
    return StylizerPipeline(task.net.float().eval(), s.run.path)


def load_style_set(spec: str, size: int) -> Tensor:
    """Style images as a uint8 (N, 3, size, size) tensor: ``folder:PATH`` or image files separated by commas."""
    spec = str(spec).strip()
    if spec.startswith("folder:"):
        return load_dataset(spec, size=size, channels=3, split="train+val").images  # every style, none held out
    files = [part.strip() for part in spec.split(",") if part.strip()]
    if not files:
        raise PixelforgeError("give style images: --styles folder:PATH or a.png,b.png")
    return torch.stack([load_image(f, size=size, channels=3) for f in files])


def train_adain(data: str | None, run: str | os.PathLike | None = None, *, styles: str | None = None,
                resume: bool = False, overwrite: bool = False, size: int | None = None, channels: int | None = None,
                limit: int | None = None,
                device: str = "auto", precision: str = "auto", seed: int = 0, progress: bool = True,
                weights: str | os.PathLike | None = None, **options: Any) -> "StylizerPipeline":
    """Train (or continue) an AdaIN decoder over content photos x style images (``styles``: folder:PATH or
    a.png,b.png). ``weights``: the VGG file when ``backbone`` is vgg19/vgg16 (then stored in the run)."""
    size = _defaults(options, resume, size, channels)
    if not resume:
        if data is None or styles is None:
            raise PixelforgeError("AdaIN needs content photos (--data folder:PATH) and style images "
                                  "(--styles folder:PATH or a.png,b.png)")
        style_set = load_style_set(styles, options.get("style_size") or AdaINTrainConfig.style_size)
        options["styles"] = str(styles)
    elif styles is not None:
        raise PixelforgeError("--styles cannot change when resuming; the run keeps its styles/ folder")
    s = start_session("style", AdaINTrainConfig, data, run, model="adain", options=options, resume=resume,
                      task=AdaINTask,
                      overwrite=overwrite, size=size, channels=3, limit=limit, device=device, precision=precision,
                      seed=seed, keep_classes=False, model_defaults=lambda d: {},
                      prepare=lambda model_cfg, task_cfg: _new_adain_net(model_cfg, task_cfg, weights))
    if s.model_name != "adain":
        raise RunError(f"{s.run.path} is a {s.model_name} run, not an AdaIN run")
    folder = s.run.path / "styles"
    if resume:
        style_set = load_style_set(f"folder:{folder}", s.task_cfg.style_size)
    else:
        for i, image in enumerate(style_set):
            save_png(image.permute(1, 2, 0).numpy(), folder / f"style_{i:03d}.png")
    net = s.prepared if s.prepared is not None else create_model(s.model_name, **dataclasses.asdict(s.model_cfg))
    task = AdaINTask(net, s.task_cfg, s.runtime, style_set)
    Trainer(task, _photos(s), s.run, s.train_cfg, s.runtime, seed=s.seed, progress=progress).fit(resume=resume)
    return StylizerPipeline(task.net.float().eval(), s.run.path)


def _new_adain_net(model_cfg: AdaINConfig, task_cfg: AdaINTrainConfig, weights) -> AdaINNet:
    """A new run's network: its decoder from ``decoder_from``, or a VGG encoder from ``weights``."""
    net = create_model("adain", **dataclasses.asdict(model_cfg))
    if task_cfg.decoder_from:
        _start_decoder_from(net, task_cfg.decoder_from)
    elif model_cfg.backbone != "offline":
        from ..models.style import load_vgg

        vgg = load_vgg(model_cfg.backbone, weights, layers=net.style_layers)
        net.encoder.load_state_dict(vgg.state_dict())
    return net


def _start_decoder_from(net: AdaINNet, source: str) -> None:
    """``net``'s decoder (and a VGG encoder) from the AdaIN run or ``zoo:NAME`` ``source``; a refine decoder
    that ``source`` lacks keeps its fresh weights."""
    other = open_stylizer(source, precision="fp32")
    if other.kind != "adain":
        raise PixelforgeError(f"--decoder-from {source} is a {other.kind} model, not an AdaIN one")
    theirs, ours = other.net.cfg, net.cfg
    differ = [k for k in ("backbone", "layer", "widths", "shuffle") if getattr(theirs, k) != getattr(ours, k)]
    if theirs.style_film and not ours.style_film:  # the other way is fine: the new FiLM starts as the identity
        differ.append("style_film")
    if differ:
        raise PixelforgeError(f"--decoder-from {source}: its decoder does not fit this model ("
                              + ", ".join(f"{k} {getattr(theirs, k)} vs {getattr(ours, k)}" for k in differ) + ")")
    net.decoder.load_state_dict(other.net.decoder.state_dict())
    if ours.backbone != "offline":
        net.encoder.load_state_dict(other.net.encoder.state_dict())
    if net.refiner is not None and other.net.refiner is not None and theirs.refine == ours.refine:
        net.refiner.load_state_dict(other.net.refiner.state_dict())
    if net.film is not None and other.net.film is not None:
        net.film.load_state_dict(other.net.film.state_dict())


# ----------------------------------------------------------------------------- images

def _to_pil(image: Tensor) -> Image.Image:
    array = (image.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, mode="RGB")


def _to_tensor(image: Image.Image) -> Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def fit_size(image: Image.Image, size: int | None, max_size: int | None, what: str = "the image") -> Image.Image:
    """``image`` resized to longest side ``size`` (if given), downscaled to ``max_size`` with a message if
    larger, refused if a side is below :data:`MIN_SIDE`."""
    max_size = DEFAULT_MAX_SIZE if max_size is None else max_size

    def resized(side: int) -> tuple[int, int]:  # (width, height) at longest side ``side``
        return fitted_shape(image, side)[::-1]

    side = max(image.size) if size is None else size
    if side > max_size:  # capped before any resize, so a huge --size never allocates its image
        new = resized(max_size)
        shown = (f"{image.width}x{image.height} px" if size is None
                 else "{}x{} px at --size {}".format(*resized(size), size))
        print(f"pixelforge: note: {what} is {shown}; downscaled to {new[0]}x{new[1]} (--max-size {max_size})",
              file=sys.stderr)
        side = max_size
    if side != max(image.size):
        image = image.resize(resized(side), Image.LANCZOS)
    if min(image.size) < MIN_SIDE:
        raise PixelforgeError(f"{what} is {image.width}x{image.height} px; the style networks need at least "
                              f"{MIN_SIDE} px on each side")
    return image


def _open(image) -> Image.Image:
    """A path or PIL image as RGB by :func:`~pixelforge.imageio.to_mode`'s rules (grey -> RGB, 16-bit
    scaled, transparency composited on white)."""
    return to_mode(image if isinstance(image, Image.Image) else read_image(image), "RGB")


# ----------------------------------------------------------------------------- the pipelines

class _Stylizer:
    """What the torch and ONNX Runtime stylizers share: PIL in, PIL out, frames."""

    kind: str  # "feed-forward" or "adain"
    name: str

    def check_options(self, style, alpha) -> None:
        if self.kind == "feed-forward":
            if style is not None:
                raise PixelforgeError(f"{self.name} is a feed-forward stylizer with its style built in; leave out "
                                      "--style (an AdaIN run takes any style image)")
            if alpha is not None:
                raise PixelforgeError("--alpha is for AdaIN models; a feed-forward stylizer has one fixed style")
        else:
            if style is None:
                raise PixelforgeError(f"{self.name} is an AdaIN model: give the style image with --style")
            if isinstance(style, (list, tuple)) or (isinstance(style, str) and "," in style):
                raise PixelforgeError("an AdaIN model takes one --style image")
            if alpha is not None and not 0 <= alpha <= 1:
                raise PixelforgeError(f"--alpha must be between 0 (content) and 1 (full style), not {alpha}")

    style_side: int | None = None  # AdaIN: the model's (AdaINConfig.style_side)

    def set_content_scale(self, scale: float) -> None:
        """AdaIN: stylise the content at this fraction of its size (0.25 to 1) and enlarge the result back, so the
        style's strokes come out larger (``AdaINConfig.content_scale``)."""
        if self.kind != "adain":
            raise PixelforgeError(f"{self.name} is a feed-forward stylizer; a content scale is for AdaIN models")
        self._set_content_scale(check_content_scale(scale))

    def prepare_style(self, style, style_size: int | None = None):
        """The AdaIN style image as a tensor, longest side at most ``style_size`` (default: the model's
        ``style_side``; its statistics do not need more), at least :data:`MIN_SIDE` px."""
        if style is None:
            return None
        style_size = style_size or self.style_side or AdaINConfig().style_side
        image = fit_size(_open(style), None, None, "the style image")
        return _to_tensor(fit_size(image, min(style_size, max(image.size)), None, "the style image"))

    def stylize(self, image, style=None, alpha: float | None = None, size: int | None = None,
                max_size: int | None = None, _style_tensor=None, _checked: bool = False) -> Image.Image:
        """One image (path or PIL) -> the stylised PIL image (RGB, same size unless ``size``/``max_size``)."""
        if not _checked:
            self.check_options(style, alpha)
            _style_tensor = self.prepare_style(style)
        picture = fit_size(_open(image), size, max_size)
        style_tensor = _style_tensor
        return _to_pil(self.run_tensor(_to_tensor(picture), style_tensor, DEFAULT_ALPHA if alpha is None else alpha))

    def stylize_frames(self, source: str | os.PathLike, output: str | os.PathLike, style=None,
                       alpha: float | None = None, size: int | None = None, max_size: int | None = None,
                       progress: bool = True) -> tuple[Path, int]:
        """A GIF -> a GIF (same frame count, durations and loop), or a folder of frames -> a folder of
        frames with the same (sorted) file names. Returns (output, number of frames)."""
        self.check_options(style, alpha)
        source, output = Path(source), Path(output)
        style_tensor = self.prepare_style(style)
        if source.is_dir():
            files = sorted(p for p in source.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file())
            if not files:
                raise PixelforgeError(f"no image frames ({', '.join(sorted(FRAME_SUFFIXES))}) in {source}")
            if output.suffix:
                raise PixelforgeError(f"a folder of frames goes to a folder; {output} looks like a file")
            output.mkdir(parents=True, exist_ok=True)
            for file in tqdm(files, desc="frames", unit="frame", file=sys.stderr, disable=not progress or None):
                result = self.stylize(file, alpha=alpha, size=size, max_size=max_size, _style_tensor=style_tensor,
                                       _checked=True)
                save_png(result, output / f"{file.stem}.png") if file.suffix.lower() == ".png" else \
                    _save(result, output / file.name)
            return output, len(files)
        if source.suffix.lower() != ".gif":
            raise PixelforgeError(f"frames in means a .gif or a folder of images, not {source}")
        if output.suffix.lower() != ".gif":
            raise PixelforgeError(f"a GIF goes to a GIF: give an output ending in .gif, not {output.name}")
        frames, durations, loop = read_frames(source)
        styled = [self.stylize(frame, alpha=alpha, size=size, max_size=max_size, _style_tensor=style_tensor,
                               _checked=True)
                  for frame in tqdm(frames, desc="frames", unit="frame", file=sys.stderr, disable=not progress or None)]
        write_frames(styled, output, durations, loop)
        return output, len(frames)


def _save(image: Image.Image, path: Path) -> None:
    write_image(image, path)


class StylizerPipeline(_Stylizer):
    """A trained feed-forward stylizer or AdaIN model in torch (fp32, or bf16 autocast + channels_last;
    AdaIN's content features and feature transform stay fp32 under it)."""

    def __init__(self, net: TransformerNet | AdaINNet, path: Path | None = None, precision: str = "fp32",
                 name: str | None = None):
        self.net = net.eval()
        self.path = path  # the run directory; None for shipped weights
        self.kind = net.family_kind
        self.name = name or (f"run:{path}" if path else self.kind)
        self.device = next(net.parameters()).device
        self.precision = precision
        if precision == "bf16":
            self.net = self.net.to(memory_format=torch.channels_last)

    @property
    def style_side(self) -> int | None:
        return self.net.cfg.style_side if self.kind == "adain" else None

    def set_refine_strength(self, strength: float) -> None:
        """An AdaIN model with a refine pass: how strongly that pass restyles, 0 (the first pass's image) to 1
        (``AdaINConfig.refine_alpha``, checked as the config checks it)."""
        if self.kind != "adain" or self.net.refiner is None:
            raise PixelforgeError(f"{self.name} has no refine pass; a refine strength is for AdaIN models trained "
                                  "with one (train adain --refine r2)")
        self.net.cfg = dataclasses.replace(self.net.cfg, refine_alpha=float(strength))

    def _set_content_scale(self, scale: float) -> None:
        self.net.cfg = dataclasses.replace(self.net.cfg, content_scale=scale)

    @torch.no_grad()
    def run_tensor(self, image: Tensor, style: Tensor | None = None, alpha: float = DEFAULT_ALPHA) -> Tensor:
        """(3, H, W) in [0, 1] (and a (3, h, w) style for AdaIN) -> (3, H, W) in [0, 1]."""
        x = image[None].to(self.device)
        if self.precision == "bf16":
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        with autocast:
            if self.kind == "feed-forward":
                out = self.net(x)
            else:
                out = self.net(x, style[None].to(self.device), alpha)
        return out[0].float().clamp(0, 1).cpu()


def load_stylizer(run_dir: str | os.PathLike, device: str = "auto", precision: str | None = None) -> StylizerPipeline:
    """A style run (feed-forward or AdaIN) rebuilt from config.json and its latest safetensors. ``precision``:
    fp32, bf16, auto (bf16 where the device runs it fast), or None: the model's default (AdaIN auto,
    feed-forward fp32)."""
    r, _, net, runtime = open_model(run_dir, "style", device)
    load_weights_into(r, net, "style")
    return StylizerPipeline(net.to(runtime.device), r.path, _precision(precision, device, net))


def load_shipped_stylizer(name: str, device: str = "auto", precision: str | None = None) -> StylizerPipeline:
    """Shipped style weights, feed-forward or AdaIN (see ``pixelforge/zoo/MODEL_CARDS.md``); ``precision`` as
    for :func:`load_stylizer`."""
    net, _ = load_network(name, "style")
    runtime = Runtime.create(device, "fp32")
    return StylizerPipeline(net.to(runtime.device), None, _precision(precision, device, net), name=f"zoo:{name}")


def _precision(precision: str | None, device: str, net: TransformerNet | AdaINNet) -> str:
    precision = precision or net.default_precision
    if precision == "auto":
        precision = Runtime.create(device, "auto").precision
    if precision not in ("fp32", "bf16"):
        raise PixelforgeError(f"style models run in fp32 or bf16, not {precision}")
    return precision


def export_stylizer(run_dir: str | os.PathLike, name: str, command: str, extra: dict | None = None,
                    dest: Path | None = None) -> Path:
    """Copy a style run's weights (fp16 safetensors) and a JSON card into the zoo."""
    return export_run(run_dir, name, "style", command, extra, dest)


# ----------------------------------------------------------------------------- ONNX

class _AdaINGraph(torch.nn.Module):
    def __init__(self, net: AdaINNet, transform: str):
        super().__init__()
        self.net = copy.copy(net)  # the same weights, its own config: the pipeline's model is left as it is
        self.net.cfg = dataclasses.replace(net.cfg, transform=transform)

    def forward(self, content: Tensor, style: Tensor, alpha: Tensor) -> Tensor:
        return self.net.transfer(content, style, alpha)


class _StylizerGraph(torch.nn.Module):
    def __init__(self, net: TransformerNet):
        super().__init__()
        self.net = net

    def forward(self, image: Tensor) -> Tensor:
        return self.net.core(image - 0.5)


def _require_onnx(what: str):
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise PixelforgeError(f"{what} needs the onnx and onnxruntime packages: pip install 'pixelforge[onnx]'") from None
    return onnx, onnxruntime


def export_onnx(run_or_pipe, output: str | os.PathLike, opset: int = 17) -> Path:
    """Export a style run (or a :class:`StylizerPipeline`) to ONNX with dynamic height and width.

    Feed-forward: input ``image`` (1, 3, H, W) in [0, 1] with H and W multiples of the model's
    ``multiple`` (metadata), output ``stylized``. AdaIN: inputs ``content`` (H, W multiples of
    ``multiple``), ``style`` (any size) and ``alpha`` (a float32 scalar); the graph is
    :meth:`AdaINNet.transfer`, so the mirrored margin (``border`` in the metadata, px) is for the caller
    to add around the content and cut off the output, as :class:`OnnxStylizer` does. The metadata says which.
    """
    onnx, _ = _require_onnx("ONNX export")
    pipe = run_or_pipe if isinstance(run_or_pipe, StylizerPipeline) else load_stylizer(run_or_pipe, device="cpu")
    net = pipe.net.float().to("cpu", memory_format=torch.contiguous_format).eval()
    output = Path(output)
    if output.suffix.lower() != ".onnx":
        raise PixelforgeError(f"give the ONNX file a .onnx name, not {output.name}")
    output.parent.mkdir(parents=True, exist_ok=True)
    if pipe.kind == "feed-forward":
        multiple = net.multiple
        graph, args = _StylizerGraph(net), (torch.rand(1, 3, 2 * multiple, 3 * multiple),)
        names, outputs = ["image"], ["stylized"]
        axes = {"image": {2: "height", 3: "width"}, "stylized": {2: "height", 3: "width"}}
    else:
        multiple = net.pad_to
        if net.cfg.transform != "adain":
            log.warning("ONNX has no eigendecomposition: the exported graph gives the features the style's "
                        "mean and spread (AdaIN), not the %s transform this model runs in torch", net.cfg.transform)
        graph = _AdaINGraph(net, "adain")
        args = (torch.rand(1, 3, 8 * multiple, 8 * multiple), torch.rand(1, 3, 64, 64), torch.tensor(1.0))
        names, outputs = ["content", "style", "alpha"], ["stylized"]
        axes = {"content": {2: "height", 3: "width"}, "style": {2: "style_height", 3: "style_width"},
                "stylized": {2: "height", 3: "width"}}
    tmp = output.with_name(f".{output.stem}.tmp.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, args, str(tmp), input_names=names, output_names=outputs, dynamic_axes=axes,
                          opset_version=opset, dynamo=False)
    model = onnx.load(str(tmp))
    border = net.cfg.border if pipe.kind == "adain" else 0
    adain_options = ([("style_side", str(net.cfg.style_side)), ("content_scale", str(net.cfg.content_scale))]
                     if pipe.kind == "adain" else [])
    for key, value in (("format", ONNX_MAGIC), ("kind", pipe.kind), ("multiple", str(multiple)),
                       ("border", str(border)), *adain_options, ("source", str(pipe.path or ""))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(tmp))
    os.replace(tmp, output)
    return output


class OnnxStylizer(_Stylizer):
    """An exported style model run with ONNX Runtime on the CPU."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        _, ort = _require_onnx("--runtime onnx")
        self.path = Path(path)
        if not self.path.is_file():
            raise PixelforgeError(f"no ONNX file at {self.path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise PixelforgeError(f"cannot load {self.path} as an ONNX model ({str(e).splitlines()[0][:120]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("format") != ONNX_MAGIC:
            raise PixelforgeError(f"{self.path} is not a pixelforge style model export "
                                  "(make one with pixelforge export RUN -o FILE.onnx)")
        self.kind = meta["kind"]
        self.multiple = int(meta["multiple"])
        # AdaIN's mirrored margin; exports from before it was recorded get today's default, as runs do
        self.border = int(meta.get("border", AdaINConfig().border if self.kind == "adain" else 0))
        if self.kind == "adain":  # exports from before the side was recorded ran at the side those models had
            self.style_side = int(meta.get("style_side", AdaINConfig.ABSENT_IN_OLDER["style_side"]))
            self.content_scale = float(meta.get("content_scale", AdaINConfig.ABSENT_IN_OLDER["content_scale"]))
        self.name = f"onnx:{self.path}"

    def _set_content_scale(self, scale: float) -> None:
        self.content_scale = scale  # applied around the graph, as the margin is

    def run_tensor(self, image: Tensor, style: Tensor | None = None, alpha: float = DEFAULT_ALPHA) -> Tensor:
        if self.kind == "adain":
            return at_scale(lambda images: self._run(images[0], style, alpha)[None], image[None], self.content_scale)[0]
        return self._run(image, style, alpha)

    def _run(self, image: Tensor, style: Tensor | None, alpha: float) -> Tensor:
        h, w = image.shape[1:]
        x, margin = pad_with_border(image[None], self.border, self.multiple)
        ph, pw = (max(0, 2 * self.multiple - s) for s in x.shape[-2:])  # and at least two multiples a side
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        feeds = {"image" if self.kind == "feed-forward" else "content": x.numpy().astype(np.float32)}
        if self.kind == "adain":
            feeds.update(style=style[None].numpy().astype(np.float32), alpha=np.array(alpha, dtype=np.float32))
        out = self.session.run(None, feeds)[0]
        return torch.from_numpy(out[0, :, margin:margin + h, margin:margin + w]).clamp(0, 1)


def open_stylizer(model: str | os.PathLike, runtime: str = "torch", device: str = "cpu",
                  precision: str | None = None) -> _Stylizer:
    """``--model``: a style run directory (torch, or ``runtime="onnx"``: its export, made on first use
    as RUN/model.onnx), an exported .onnx file, or shipped weights (``zoo:NAME``; torch only)."""
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        return OnnxStylizer(path)
    if not path.is_dir():
        shipped = list_pretrained("style")
        if shipped_name(model) in shipped:
            if runtime != "torch":
                raise PixelforgeError(f"shipped style models run in torch; for ONNX Runtime export one first "
                                      f"(pixelforge.export_onnx(pixelforge.load('zoo:{shipped_name(model)}'), FILE))")
            return load_shipped_stylizer(shipped_name(model), device=device, precision=precision)
        raise PixelforgeError(f"--model {model}: neither a run directory, an .onnx file nor a shipped style model "
                              f"(shipped: {', '.join('zoo:' + n for n in shipped) or 'none'})")
    family = Run.open(path).config.get("family")
    if family != "style":
        raise RunError(f"{path} is a {family} run; --model needs a style run "
                       "(pixelforge train stylizer / train adain)")
    if runtime == "onnx":
        onnx_file = path / "model.onnx"
        ckpt = Run.open(path).require_checkpoint()
        if not onnx_file.is_file() or onnx_file.stat().st_mtime < (ckpt / "style.safetensors").stat().st_mtime:
            export_onnx(path, onnx_file)
        return OnnxStylizer(onnx_file)
    if runtime not in RUNTIMES:
        raise PixelforgeError(f"unknown runtime {runtime!r}; use {' or '.join(RUNTIMES)}")
    return load_stylizer(path, device=device, precision=precision)


FAMILY = Family(
    "style", load_stylizer, load_shipped=load_shipped_stylizer, export_onnx=export_onnx,
    exports=(StylizerPipeline, OnnxStylizer, export_onnx, export_stylizer, stylize, synthesize_texture),
    description="style transfer: feed-forward and AdaIN networks (Gatys optimisation needs no run)",
    commands=(
        TrainCommand("stylizer", "train a fast feed-forward style network for one --style on photos (folder:PATH)",
                     train_stylizer, (StylizerConfig, StylizerTrainConfig), report=samples_report,
                     options=(Option("style", "the style image (required)", group=""),)),
        TrainCommand("adain", "train an AdaIN decoder: any style image at inference", train_adain,
                     (AdaINConfig, AdaINTrainConfig), report=samples_report,
                     options=(Option("styles", "style images: folder:PATH or a.png,b.png (required)", group=""),
                              Option("weights", "VGG weights file for --backbone vgg19/vgg16"))),
    ))
