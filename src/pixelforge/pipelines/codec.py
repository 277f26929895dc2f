"""Learned image compression from Python: ``train_codec``, :class:`CodecPipeline` (compress
to / decompress from ``.pfc`` bytes) and ``load_codec`` (a run directory or a shipped codec).

The ``.pfc`` file (all integers little-endian)::

    magic "PXFC" | version u8 | model-id length u8 | model id (UTF-8)
    quality u8 (1-based) | mode u8 (0 L, 1 LA, 2 RGB, 3 RGBA) | width u32 | height u32
    alpha length u32 | alpha plane, zlib-compressed (LA/RGBA only: alpha is kept losslessly)
    stream length u32 (32-bit words) | range-coded symbols (constriction's RangeEncoder)
    CRC-32 u32 of everything before it

The stream holds, in order, the hyper-latents ``z`` (channel by channel, each channel with
its own learned, integer pmf table) and the latents ``y`` (zero-mean quantized Gaussians
whose scales the decoder recomputes from ``z``); a factorized-prior codec has only ``y``,
coded like ``z``. Determinism: the pmf tables are integers stored with the weights, Gaussian
scales are snapped to a fixed table, and the scale network runs in float64, so decoding in
another process (or with another thread count) picks the same coding distributions and
yields the same pixels. The CRC turns any corruption into a clear error instead of a
garbage image.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..data import ImageData
from ..errors import PixelforgeError, RunError
from ..family import Family, TrainCommand
from ..imageio import join_alpha, normalise_mode, read_image, split_alpha
from ..images import to_tensor
from ..models.codec import CodecConfig, ImageCodec, scale_table
from ..registry import create_model
from ..training import Trainer
from ..training.codec import CodecTask, CodecTrainConfig
from ..zoo.catalog import export_run, list_pretrained, load_network, shipped_name
from .common import load_weights_into, open_model, samples_report, start_session
from .overfit_bitstream import VERSION as OVERFIT_VERSION
from .overfit_codec import MODEL_ID as OVERFIT_ID
from .overfit_codec import OverfitCodecPipeline

MAGIC = b"PXFC"
VERSION = 1
MODES = ("L", "LA", "RGB", "RGBA")
MAX_PIXELS = 40_000_000  # the transforms' activations of a 40 MP image need a few GB
Y_RADIUS = 4095  # latents are coded within [-R, R]; larger values are clipped (never seen in practice)
SHIPPED = "photos-codec-v1"
DEFAULT_SIZE = 512


class BitstreamError(PixelforgeError):
    """A .pfc file that is not one, is damaged, or needs another model."""


def train_codec(data: str | None, run: str | os.PathLike | None = None, *, resume: bool = False,
                overwrite: bool = False, size: int | None = None, channels: int | None = None,
                limit: int | None = None, model: str = "codec",
                device: str = "auto", precision: str = "auto", seed: int = 0, progress: bool = True,
                **options: Any) -> "CodecPipeline":
    """Train (or with ``resume=True`` continue) a codec on a folder of photos.

    ``options`` are fields of :class:`CodecConfig` (width, latent, prior, lmbdas,
    quantization), :class:`CodecTrainConfig` (crop, lr) and the loop's budget. Photos are
    loaded at ``size`` px (shorter side, centre crop; default 512) and cut into patches.
    """
    from ..data.transforms import patches

    if not resume:
        if data is None:
            raise PixelforgeError("a codec needs photos: --data folder:PATH")
        if options.get("batch_size") is None:
            options["batch_size"] = 8
        size = size or DEFAULT_SIZE
    s = start_session("codec", CodecTrainConfig, data, run, model=model, options=options, resume=resume,
                      task=CodecTask,
                      overwrite=overwrite, size=size, channels=None if resume else (channels or 3), limit=limit, device=device,
                      precision=precision, seed=seed, keep_classes=False,
                      model_defaults=lambda d: {"channels": d.channels})
    net = create_model(s.model_name, **dataclasses.asdict(s.model_cfg))
    task = CodecTask(net, s.task_cfg, s.runtime)
    tiles = patches(s.data.images, s.task_cfg.crop)
    Trainer(task, ImageData(tiles, None, [], s.data.name, s.data.source), s.run, s.train_cfg, s.runtime,
            seed=s.seed, progress=progress).fit(resume=resume)
    return CodecPipeline(net.float().eval(), s.model_cfg, run_model_id(s.run.path), s.run.path)


# -- the header ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Header:
    model_id: str
    quality: int
    mode: str
    width: int
    height: int


def pack(header: Header, alpha: bytes, words: np.ndarray) -> bytes:
    model_id = header.model_id.encode()
    if len(model_id) > 255:
        raise PixelforgeError("model id longer than 255 bytes")
    out = io.BytesIO()
    out.write(MAGIC + struct.pack("<BB", VERSION, len(model_id)) + model_id)
    out.write(struct.pack("<BBII", header.quality, MODES.index(header.mode), header.width, header.height))
    out.write(struct.pack("<I", len(alpha)) + alpha)
    out.write(struct.pack("<I", len(words)) + words.astype("<u4").tobytes())
    body = out.getvalue()
    return body + struct.pack("<I", zlib.crc32(body))


def unpack(data: bytes) -> tuple[Header, bytes, np.ndarray]:
    """Parse and check a .pfc file; every defect is a :class:`BitstreamError`."""
    if len(data) < 4 or data[:4] != MAGIC:
        raise BitstreamError("not a pixelforge compressed image (.pfc): wrong magic bytes")
    if len(data) < 6:
        raise BitstreamError("truncated .pfc file: the header is incomplete")
    version, id_len = data[4], data[5]
    if version != VERSION:
        raise BitstreamError(f".pfc format version {version} is not supported (this pixelforge reads version {VERSION})")
    if len(data) < 4 + 2 + id_len + 10 + 4 + 4 + 4:
        raise BitstreamError("truncated .pfc file: the header is incomplete")
    if zlib.crc32(data[:-4]) != struct.unpack("<I", data[-4:])[0]:
        raise BitstreamError("corrupted or truncated .pfc file: checksum mismatch")
    pos = 6
    try:
        model_id = data[pos:pos + id_len].decode()
    except UnicodeDecodeError:
        raise BitstreamError("corrupted .pfc file: the model id is not text") from None
    pos += id_len
    quality, mode, width, height = struct.unpack_from("<BBII", data, pos)
    pos += 10
    if mode >= len(MODES) or width < 1 or height < 1 or quality < 1:
        raise BitstreamError("corrupted .pfc file: impossible header values")
    if width * height > MAX_PIXELS:
        raise BitstreamError(f".pfc image of {width}x{height} px exceeds the {MAX_PIXELS / 1e6:.0f} MP limit")
    (alpha_len,) = struct.unpack_from("<I", data, pos)
    pos += 4
    alpha = data[pos:pos + alpha_len]
    pos += alpha_len
    if len(alpha) != alpha_len or pos + 4 > len(data) - 4:
        raise BitstreamError("corrupted .pfc file: section lengths do not add up")
    (n_words,) = struct.unpack_from("<I", data, pos)
    pos += 4
    if pos + 4 * n_words != len(data) - 4:
        raise BitstreamError("corrupted .pfc file: section lengths do not add up")
    words = np.frombuffer(data, dtype="<u4", count=n_words, offset=pos).astype(np.uint32)
    return Header(model_id, quality, MODES[mode], width, height), alpha, words


def read_header(path: str | os.PathLike) -> Header:
    return unpack(_read_file(path))[0]


def _read_file(path: str | os.PathLike) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise PixelforgeError(f"no file at {path}")
    return path.read_bytes()


# -- entropy coding ---------------------------------------------------------------------------

def _categorical(pmf_row: torch.Tensor):
    import constriction

    return constriction.stream.model.Categorical(pmf_row.double().numpy(), perfect=False)


def _encode_factorized(encoder, symbols: torch.Tensor, pmf: torch.Tensor, offset: int) -> None:
    """symbols (C, L) int -> encoded channel by channel with each channel's table."""
    idx = (symbols + offset).clamp_(0, pmf.shape[1] - 1).to(torch.int32)
    for c in range(symbols.shape[0]):
        encoder.encode(idx[c].numpy(), _categorical(pmf[c]))


def _decode_factorized(decoder, channels: int, count: int, pmf: torch.Tensor, offset: int) -> torch.Tensor:
    out = np.empty((channels, count), dtype=np.int32)
    for c in range(channels):
        out[c] = decoder.decode(_categorical(pmf[c]), count)
    return torch.from_numpy(out).float() - offset


def _gaussian_family():
    import constriction

    return constriction.stream.model.QuantizedGaussian(-Y_RADIUS, Y_RADIUS)


# -- the pipeline -------------------------------------------------------------------------------

class CodecPipeline:
    """A trained codec: ``compress(image, quality) -> bytes`` and ``decompress(bytes) -> image``."""

    def __init__(self, net: ImageCodec, cfg: CodecConfig, model_id: str, path: Path | None = None):
        self.net = net.float().eval()
        self.cfg = cfg
        self.model_id = model_id
        self.path = path
        if not net.ready:
            net.update_tables()
        self._h_s64 = copy.deepcopy(net.h_s).double().eval() if cfg.prior == "hyperprior" else None
        self._scales = torch.from_numpy(scale_table())

    @property
    def qualities(self) -> int:
        return self.net.levels

    @property
    def default_quality(self) -> int:
        return (self.qualities + 1) // 2

    def _check_quality(self, quality: int) -> None:
        if not 1 <= quality <= self.qualities:
            raise PixelforgeError(f"quality must be 1..{self.qualities} for {self.model_id}, not {quality}")

    def _scale_indices(self, z_hat: torch.Tensor) -> torch.Tensor:
        """Index of each latent's coding scale: sigma from h_s in float64, snapped up to the table."""
        sigma = F.softplus(self._h_s64(z_hat.double()))
        return torch.searchsorted(self._scales, sigma.contiguous()).clamp_(0, len(self._scales) - 1)

    @torch.no_grad()
    def compress(self, image: Image.Image | str | os.PathLike, quality: int | None = None) -> bytes:
        """An image (PIL or a file; L, LA, RGB, RGBA or convertible) -> .pfc bytes at ``quality``
        (1 = smallest file .. :attr:`qualities`; default the middle level)."""
        import constriction

        quality = self.default_quality if quality is None else quality
        self._check_quality(quality)
        image = read_image(image) if isinstance(image, (str, os.PathLike)) else normalise_mode(image)
        if image.width * image.height > MAX_PIXELS:
            raise PixelforgeError(f"{image.width}x{image.height} px is above the codec's {MAX_PIXELS / 1e6:.0f} MP limit")
        colour, mode, alpha = split_alpha(image)
        x = to_tensor(colour)
        if x.shape[0] != self.cfg.channels:
            if self.cfg.channels == 3:
                x = x.expand(3, -1, -1)  # gray through an RGB codec; decoded back to gray
            else:
                raise PixelforgeError(f"{self.model_id} codes gray images; convert the image to gray first")
        y = self._analysis(x[None], quality)
        encoder = constriction.stream.queue.RangeEncoder()
        net = self.net
        if self.cfg.prior == "hyperprior":
            z = net.h_a(y.abs())
            z_sym = torch.round(z).clamp_(-net.density.offset.item(), net.density.pmf.shape[1] - 1
                                          - net.density.offset.item())
            _encode_factorized(encoder, z_sym[0].flatten(1), net.density.pmf, int(net.density.offset))
            idx = self._scale_indices(z_sym)
            y_sym = torch.round(y).clamp_(-Y_RADIUS, Y_RADIUS)
            stds = self._scales[idx.flatten()].numpy()
            encoder.encode(y_sym.flatten().to(torch.int32).numpy(), _gaussian_family(),
                           np.zeros(stds.shape), stds)
        else:
            y_sym = torch.round(y)
            _encode_factorized(encoder, y_sym[0].flatten(1), net.density.pmf, int(net.density.offset))
        header = Header(self.model_id, quality, mode, image.width, image.height)
        return pack(header, alpha, encoder.get_compressed())

    def _analysis(self, x: torch.Tensor, quality: int) -> torch.Tensor:
        s = self.cfg.stride
        h, w = x.shape[2:]
        pad = (0, -w % s, 0, -h % s)
        x = F.pad(x, pad, mode="replicate") if any(pad) else x
        gain, _ = self.net.gains(torch.tensor([quality - 1]))
        return self.net.g_a(x) * gain

    @torch.no_grad()
    def decompress(self, data: bytes | str | os.PathLike) -> Image.Image:
        """.pfc bytes (or a .pfc file) -> the decoded PIL image in the original mode."""
        import constriction

        if isinstance(data, (str, os.PathLike)):
            data = _read_file(data)
        header, alpha, words = unpack(data)
        if header.model_id != self.model_id:
            raise BitstreamError(f"this file was compressed with {header.model_id!r}, not {self.model_id!r}; "
                                 "decompress it with that model (--model)")
        self._check_quality(header.quality)
        s, net = self.cfg.stride, self.net
        hp, wp = -(-header.height // s) * s, -(-header.width // s) * s
        latent_shape = (1, self.cfg.latent, hp // 16, wp // 16)
        decoder = constriction.stream.queue.RangeDecoder(words)
        try:
            if self.cfg.prior == "hyperprior":
                zc = net.density.channels
                zh, zw = hp // 64, wp // 64
                z_hat = _decode_factorized(decoder, zc, zh * zw, net.density.pmf, int(net.density.offset))
                idx = self._scale_indices(z_hat.reshape(1, zc, zh, zw))
                stds = self._scales[idx.flatten()].numpy()
                y_sym = decoder.decode(_gaussian_family(), np.zeros(stds.shape), stds)
                y_hat = torch.from_numpy(y_sym.astype(np.float32)).reshape(latent_shape)
            else:
                count = latent_shape[2] * latent_shape[3]
                y_hat = _decode_factorized(decoder, self.cfg.latent, count, net.density.pmf,
                                           int(net.density.offset)).reshape(latent_shape)
        except Exception as e:  # constriction signals a stream it cannot decode with ValueError/AssertionError
            raise BitstreamError(f"corrupted .pfc stream: {e}") from None
        _, inverse_gain = net.gains(torch.tensor([header.quality - 1]))
        x_hat = net.g_s(y_hat * inverse_gain)[0, :, :header.height, :header.width].clamp(0, 1)
        arr = x_hat.mul(255).round_().to(torch.uint8).permute(1, 2, 0).numpy()
        colour = Image.fromarray(arr[:, :, 0] if header.mode in ("L", "LA") and arr.shape[2] == 1 else arr,
                                 mode="RGB" if arr.shape[2] == 3 else "L")
        return join_alpha(colour, header.mode, alpha, BitstreamError, ".pfc file")

    def compress_file(self, src: str | os.PathLike, dest: str | os.PathLike, quality: int | None = None,
                      overwrite: bool = False) -> dict:
        """Compress an image file to ``dest`` (.pfc); returns sizes and bits per pixel."""
        from ..runs import atomic_write_bytes

        dest = Path(dest)
        if dest.exists() and not overwrite:
            raise PixelforgeError(f"{dest} exists; pass --overwrite to replace it")
        image = read_image(src)
        quality = self.default_quality if quality is None else quality
        data = self.compress(image, quality)
        atomic_write_bytes(dest, data)
        return {"bytes": len(data), "bpp": 8 * len(data) / (image.width * image.height),
                "width": image.width, "height": image.height, "mode": image.mode, "quality": quality}


# -- loading --------------------------------------------------------------------------------------

def run_model_id(run_dir: str | os.PathLike, checkpoint: Path | None = None) -> str:
    """A run's codec id: ``run:`` + the first 16 hex digits of its weights' SHA-256, so a file
    is never decoded with other weights than it was coded with."""
    from ..runs import Run

    r = Run.open(run_dir)
    ckpt = checkpoint or r.require_checkpoint()
    weights = sorted(ckpt.glob("codec*.safetensors"))
    if not weights:
        raise RunError(f"{ckpt} holds no codec weights")
    return "run:" + hashlib.sha256(weights[0].read_bytes()).hexdigest()[:16]


def load_codec_run(run_dir: str | os.PathLike, device: str = "cpu") -> CodecPipeline:
    """A codec run's latest weights (on the CPU, whatever ``device`` says: see load_shipped_codec)."""
    r, cfg, net, _ = open_model(run_dir, "codec", "cpu")
    load_weights_into(r, net, "codec")
    return CodecPipeline(net, cfg, run_model_id(r.path), r.path)


def load_shipped_codec(name: str = SHIPPED, device: str = "cpu") -> CodecPipeline:
    """A shipped codec (it always runs on the CPU: decoding must give the same pixels everywhere)."""
    net, _ = load_network(name, "codec")
    return CodecPipeline(net, net.cfg, name)


def open_codec(model: str | os.PathLike | None = None, effort: str | None = None):
    """``--model``: None or ``overfit`` for the overfitted codec (the default: it fits each image
    and needs no weights), a codec run directory, or a shipped amortized codec (``zoo:NAME``).
    ``effort`` (fast, default, best) applies to the overfitted codec only."""
    if model is None or str(model) == OVERFIT_ID:
        return OverfitCodecPipeline(**({"effort": effort} if effort else {}))
    if effort is not None:
        raise PixelforgeError(f"--effort applies to the overfitted codec only, not to {model}")
    if Path(model).is_dir():
        return load_codec_run(model)
    name = shipped_name(model)
    if name not in list_pretrained("codec"):
        shipped = ", ".join("zoo:" + n for n in list_pretrained("codec")) or "none"
        raise RunError(f"codec {name!r}: neither a run directory nor a shipped codec (shipped: {shipped})")
    return load_shipped_codec(name)


def codec_for_file(path: str | os.PathLike, model: str | os.PathLike | None = None) -> CodecPipeline:
    """The codec a .pfc file needs: the overfitted codec for a version-2 file, else ``model`` if
    given, else the shipped codec its header names."""
    head = _read_file(path)[:5]
    if head[:4] == MAGIC and len(head) == 5 and head[4] == OVERFIT_VERSION:
        return OverfitCodecPipeline()
    header = read_header(path)
    if model is None:
        if header.model_id.startswith("run:"):
            raise BitstreamError(f"{path} was compressed with a trained run ({header.model_id}); "
                                 "pass that run with --model")
        if header.model_id not in list_pretrained("codec"):
            raise BitstreamError(f"{path} needs codec {header.model_id!r}, which this pixelforge does not ship")
        return load_shipped_codec(header.model_id)
    return open_codec(model)


def export_codec(run_dir: str | os.PathLike, name: str, command: str, extra: dict | None = None,
                 dest: Path | None = None) -> Path:
    """Copy a codec run's weights (fp16 safetensors) and a JSON card into the zoo."""
    return export_run(run_dir, name, "codec", command, extra, dest)


FAMILY = Family(
    "codec", load_codec_run, load_shipped=load_shipped_codec,
    exports=(CodecPipeline, open_codec, OverfitCodecPipeline),
    description="learned image compression",
    commands=(TrainCommand("codec", "train a learned image codec on photos (folder:PATH)", train_codec,
                           (CodecConfig, CodecTrainConfig), report=samples_report),))
