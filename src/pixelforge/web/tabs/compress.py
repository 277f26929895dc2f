"""Compress: the overfitted codec (a background job the page polls: it fits a network to the
image for minutes) or an amortized codec (a shipped codec or a codec run), beside JPEG at the
same file size; bits per pixel and PSNR of both."""

from __future__ import annotations

import io

from PIL import Image

from ...defaults import FromAPI
from ...imageio import open_image
from ...metrics.image_quality import psnr
from ..studio import to_tensor
from ..forms import Action, Field, Result, Tab, module_exists

FAMILIES = ["codec"]
CODEC = "pixelforge.pipelines.codec"
OVERFIT = "pixelforge.pipelines.overfit_codec"
DEFAULT_MODEL = FromAPI(f"{CODEC}:SHIPPED", then=lambda name: f"zoo:{name}")
EFFORT = "fast"  # the studio's: its answer in about a minute per megapixel


def _jpeg_of_size(image: Image.Image, size: int) -> tuple[int, Image.Image]:
    """The JPEG whose file is closest to ``size`` bytes (quality found by bisection)."""
    lo, hi, best = 1, 95, None
    while lo <= hi:
        q = (lo + hi) // 2
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=q, optimize=True)
        n = buf.tell()
        if best is None or abs(n - size) < abs(best[0] - size):
            best = (n, buf.getvalue())
        lo, hi = (q + 1, hi) if n < size else (lo, q - 1)
    return best[0], open_image(best[1]).convert("RGB")


def _beside_jpeg(studio, image: Image.Image, data: bytes, decoded: Image.Image, metrics: dict) -> Result:
    jpeg_bytes, jpeg = _jpeg_of_size(image, len(data))
    pixels = image.width * image.height
    ref = to_tensor(image)
    metrics = {**metrics, "size": f"{image.width}x{image.height}",
               "pixelforge (bpp)": round(8 * len(data) / pixels, 3),
               "PSNR pixelforge (dB)": round(float(psnr(to_tensor(decoded), ref)[0]), 2),
               "JPEG same size (bpp)": round(8 * jpeg_bytes / pixels, 3),
               "PSNR JPEG (dB)": round(float(psnr(to_tensor(jpeg), ref)[0]), 2)}
    return Result(images=[("original", studio.save(image)), ("pixelforge", studio.save(decoded)),
                          ("JPEG, same size", studio.save(jpeg))], metrics=metrics, layout="compare",
                  message=f".pfc file: {len(data)} bytes")


def compress(studio, v: dict) -> Result:
    from ...pipelines.codec import load_codec_run

    codec = studio.load(v["model"], FAMILIES, loader=load_codec_run)
    image = v["image"].convert("RGB")
    quality = codec.default_quality if v.get("quality") is None else min(max(1, int(v["quality"])), codec.qualities)
    data = codec.compress(image, quality)
    return _beside_jpeg(studio, image, data, codec.decompress(data),
                        {"model": v["model"].removeprefix("zoo:"), "quality": f"{quality} of {codec.qualities}"})


def compress_overfitted(studio, v: dict, report) -> Result:
    from ...pipelines.overfit_codec import OverfitCodecPipeline

    codec = OverfitCodecPipeline(effort=v["effort"])
    image = v["image"].convert("RGB")
    quality = min(max(1, int(v["quality"])), codec.qualities)
    result = codec.encode(image, quality, report=report)
    report(1.0, "decoding")
    return _beside_jpeg(studio, image, result.data, codec.decompress(result.data),
                        {"model": "overfit", "quality": f"{quality} of {codec.qualities}", "effort": v["effort"],
                         "encode (s)": round(result.seconds, 1)})


TAB = Tab(
    "compress", "Compress", "Compress an image; bits per pixel and PSNR beside JPEG at the same size.",
    available=module_exists("pixelforge.pipelines.codec"),
    unavailable="Learned compression is not part of this version of pixelforge.",
    actions=[
        Action("overfit", "Compress (overfitted codec)", [
            Field("image", "image", "Image"),
            Field("quality", "int", "Quality", FromAPI(f"{OVERFIT}:OverfitCodecPipeline.default_quality"), min=1,
                  max=FromAPI(f"{OVERFIT}:OverfitCodecPipeline.qualities"), help="1 = smallest file"),
            Field("effort", "select", "Effort", EFFORT, options=FromAPI(f"{OVERFIT}:EFFORTS"),
                  help=FromAPI(f"{OVERFIT}:EFFORT_TIMES", then=lambda times: f"encoding time: {times}")),
        ], compress_overfitted, background=True),
        Action("compress", "Compress (amortized codec)", [
            Field("model", "run", "Codec", DEFAULT_MODEL, families=FAMILIES,
                  help="the shipped codec (photos-codec-v1) or a codec run"),
            Field("image", "image", "Image"),
            Field("quality", "int", "Quality", min=1, max=8, required=False, placeholder="the codec's middle level",
                  help="1 = smallest file; empty: the codec's middle level (the shipped codec has 5 levels)"),
        ], compress)])
