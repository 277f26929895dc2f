"""Image grids, PNG/GIF writing and loss plots: the results people would rather look at."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .errors import PixelforgeError
from .imageio import normalise_mode, read_image, write_frames, write_image  # noqa: F401  (read_image, normalise_mode: their old home)
from .runs import atomic_write_bytes


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> one (H', W', C) uint8 array, ``nrow`` images per row."""
    images = images.detach().float().cpu().clamp(0, 1)
    n, c, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    grid = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value)
    for i in range(n):
        r, k = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        grid[:, y:y + h, x:x + w] = images[i]
    arr = (grid * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return arr[:, :, 0] if c == 1 else arr


def to_pil(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(arr, mode="L" if arr.ndim == 2 else "RGB")


def save_png(arr_or_img, path: str | os.PathLike) -> Path:
    """Write a PNG atomically (a viewer never sees half a file)."""
    return write_image(arr_or_img if isinstance(arr_or_img, Image.Image) else to_pil(arr_or_img), path, "PNG")


LABEL_FONT_SIZE = 14
LABEL_MARGIN = 4  # white space around the labels in their band


def grid_image(images: torch.Tensor, nrow: int | None = None, scale: int = 1, columns: Sequence[str] | None = None,
               rows: Sequence[str] | None = None, padding: int = 2) -> Image.Image:
    """:func:`make_grid` as a PIL image, enlarged ``scale`` times (nearest), with a label per column on a
    white band above the grid and a label per row on a white band to its left. A column label wraps
    at spaces to its column's width; "\\n" breaks a label anywhere."""
    n, _, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    for labels, count, what in ((columns, nrow, "column"), (rows, int(math.ceil(n / nrow)), "row")):
        if labels is not None and len(labels) != count:
            raise PixelforgeError(f"{len(labels)} {what} labels for a grid of {count} {what}s")
    img = to_pil(make_grid(images, nrow, padding))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    if columns is None and rows is None:
        return img
    h, w, padding = h * scale, w * scale, padding * scale
    font = ImageFont.load_default(size=LABEL_FONT_SIZE)
    measure = ImageDraw.Draw(img)

    def box(text: str) -> tuple[int, int, int, int]:
        return measure.multiline_textbbox((0, 0), text, font=font)

    def extent(text: str) -> tuple[int, int]:
        left, top, right, bottom = box(text)
        return right - left, bottom - top

    columns = [_wrap(label, lambda line: extent(line)[0], w) for label in columns or []]
    rows = list(rows or [])
    band_h = max((extent(t)[1] + 2 * LABEL_MARGIN for t in columns), default=0)
    band_w = max((extent(t)[0] + 2 * LABEL_MARGIN for t in rows), default=0)
    out = Image.new(img.mode, (img.width + band_w, img.height + band_h), "white")
    out.paste(img, (band_w, band_h))
    draw = ImageDraw.Draw(out)
    for k, text in enumerate(columns):  # centred on the column, resting on the grid's top edge
        left, _, right, bottom = box(text)
        x = band_w + padding + k * (w + padding) + (w - left - right) / 2
        draw.multiline_text((x, band_h - LABEL_MARGIN - bottom), text, fill="black", font=font, align="center")
    for k, text in enumerate(rows):  # right-aligned against the grid, centred on the row
        _, top, right, bottom = box(text)
        y = band_h + padding + k * (h + padding) + (h - top - bottom) / 2
        draw.multiline_text((band_w - LABEL_MARGIN - right, y), text, fill="black", font=font, align="right")
    return out


def _wrap(label: str, width_of, width: int) -> str:
    """``label`` with its spaces turned into line breaks where a line would grow wider than ``width``."""
    lines = []
    for paragraph in label.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            if line and width_of(f"{line} {word}") > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return "\n".join(lines)


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None, scale: int = 1,
              columns: Sequence[str] | None = None, rows: Sequence[str] | None = None) -> Path:
    """Write :func:`grid_image` as a PNG."""
    return save_png(grid_image(images, nrow, scale, columns, rows), path)


def save_gif(frames: list[np.ndarray], path: str | os.PathLike, fps: int = 12, scale: int = 1) -> Path:
    pil = [to_pil(f) for f in frames]
    if scale > 1:
        pil = [p.resize((p.width * scale, p.height * scale), Image.NEAREST) for p in pil]
    return write_frames(pil, path, int(1000 / fps))


def plot_curves(records: list[dict], keys: list[str], path: str | os.PathLike, title: str = "") -> Path | None:
    """Plot ``keys`` of metric records against their ``step``; smoothed lines over raw points."""
    plt = pyplot()
    present = [k for k in keys if any(k in r for r in records)]
    if not present:
        return None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for k in present:
        pts = [(r["step"], r[k]) for r in records if k in r and "step" in r]
        steps, vals = np.array([p[0] for p in pts]), np.array([p[1] for p in pts], dtype=float)
        line, = ax.plot(steps, vals, alpha=0.25)
        if len(vals) >= 5:
            win = max(2, len(vals) // 20)
            smooth = np.convolve(vals, np.ones(win) / win, mode="valid")
            ax.plot(steps[win - 1:], smooth, color=line.get_color(), label=k)
        else:
            line.set_label(k)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(confusion: torch.Tensor, names: list[str], path: str | os.PathLike, title: str = "") -> Path:
    """A row-normalised confusion matrix with the raw counts written in the cells."""
    plt = pyplot()
    k = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.8 + 0.55 * k), dpi=100)
    norm = confusion.float() / confusion.sum(1, keepdim=True).clamp(min=1)
    ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if confusion[i, j]:
                ax.text(j, i, str(int(confusion[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return save_figure(fig, path)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image -> float (C, H, W) in [0, 1]."""
    arr = np.asarray(image)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)
