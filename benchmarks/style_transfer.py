"""Style transfer and texture synthesis with the offline backbone on the shared photos and styles.

    PIXELFORGE_DATA=/work/shared/data flock /tmp/pixelforge-heavy.lock python benchmarks/style_transfer.py

Each generation is the exact library call behind ``pixelforge stylize`` / ``pixelforge texture``
(defaults except --size and --steps). Writes docs/images/style_*.png and
benchmarks/results/style_transfer.json (seconds and final relative losses per generation).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from pixelforge.images import save_grid  # noqa: E402
from pixelforge.pipelines.style import load_rgb, stylize, synthesize_texture  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"


def _fit(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(image[None], size=like.shape[1:], mode="bilinear", antialias=True, align_corners=False)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    data = Path(os.environ.get("PIXELFORGE_DATA", "data").split(os.pathsep)[0])
    photos, styles = data / "photos", data / "styles"
    rows = []

    def run(name, fn, *a, **kw):
        start = time.perf_counter()
        result = fn(*a, size=args.size, steps=args.steps, progress=False, **kw)
        seconds = time.perf_counter() - start
        last = result.history[-1]
        rows.append({"name": name, "seconds": round(seconds, 1), "size": list(result.image.shape[1:]),
                     "steps": args.steps, **{k: round(last[k], 4) for k in ("content", "style", "tv")}})
        print(f"{name:<40} {seconds:6.1f} s  content {last['content']:.3f}  style {last['style']:.3f}", flush=True)
        return result.image

    pairs = [("garden", ["udnie", "mosaic"]), ("bythewater", ["kokkini", "licorice"])]
    for photo, style_names in pairs:
        content = load_rgb(photos / f"{photo}.png", args.size)
        panels = [content]
        for style in style_names:
            panels += [_fit(load_rgb(styles / f"{style}.png", args.size), content),
                       run(f"{photo} x {style}", stylize, photos / f"{photo}.png", styles / f"{style}.png")]
        save_grid(torch.stack(panels), DOCS / f"style_{photo}.png", nrow=len(panels))

    content = load_rgb(photos / "garden.png", args.size)
    panels = [content,
              run("garden x mosaic, preserve colour", stylize, photos / "garden.png", styles / "mosaic.png",
                  preserve_color=True),
              run("garden x udnie 0.5 + mosaic 0.5", stylize, photos / "garden.png",
                  [styles / "udnie.png", styles / "mosaic.png"], style_mix=[0.5, 0.5])]
    save_grid(torch.stack(panels), DOCS / "style_color_and_mix.png", nrow=len(panels))

    panels = []
    for style in ("truchet", "honeywave"):
        example = load_rgb(styles / f"{style}.png", args.size)
        square = F.interpolate(example[None], size=(args.size, args.size), mode="bilinear", antialias=True)[0]
        panels += [square, run(f"texture {style}", synthesize_texture, styles / f"{style}.png")]
    save_grid(torch.stack(panels), DOCS / "style_textures.png", nrow=len(panels))

    write_results("style_transfer", {"backbone": "offline", "threads": torch.get_num_threads(), "runs": rows})


if __name__ == "__main__":
    main()
