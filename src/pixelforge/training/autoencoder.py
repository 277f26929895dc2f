"""The autoencoder training task (AE, denoising/inpainting AE, VAE, conditional VAE) and the
corruptions applied to its inputs on the fly.

One Adam step per batch under the runtime's autocast, the learning rate on a cosine
decay over the run's budget. An AE minimises the mean squared error between its output
and the *clean* image; with ``corrupt`` the input is first corrupted (a fresh corruption
every step), which trains a denoising or inpainting autoencoder. A VAE minimises the
negative ELBO with the KL term weighted by ``beta``; its metrics are per dimension:
``recon`` (nats), ``kl`` (nats) and ``bpd`` (the beta = 1 bound in bits/dim).

Corruption spec: a comma list of kinds, each with an optional ``:value`` (a number, or a
range ``lo-hi`` drawn uniformly per image); every image draws one kind of the list.

    gaussian[:sigma]     additive N(0, sigma^2) noise, sigma in [0, 1] pixel units (default 0.3)
    saltpepper[:p]       a fraction p of the pixels set to black or white (default 0.1)
    box[:f]              one square hole of side f * image size at a random place (default 0.5)
    boxes[:n]            n holes of random sizes (1/8 to 1/3 of the side) (default 3)
    freeform[:n]         n random brush strokes (default 3)

Holes are filled with mid-grey (0 in [-1, 1]); noisy pixels are clipped to the valid range.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PixelforgeError
from ..family import flag
from ..images import save_grid
from ..models.autoencoder import ConvAutoencoder, bits_per_dim, discretized_logistic_nll, kl_standard_normal
from ..nn import no_sync_unless
from ..runs import Run, atomic_write_json
from ..runtime import Runtime, make_optimizer
from .task import SingleNetTask
from .lr_schedules import cosine_lr

HOLE_FILL = 0.0  # value of masked pixels in the model's [-1, 1] range (mid-grey)
NOISE_KINDS = ("gaussian", "saltpepper")
HOLE_KINDS = ("box", "boxes", "freeform")
DEFAULTS = {"gaussian": 0.3, "saltpepper": 0.1, "box": 0.5, "boxes": 3, "freeform": 3}


@dataclass(frozen=True)
class CorruptionKind:
    kind: str
    lo: float
    hi: float

    def draw(self, n: int, g: torch.Generator | None) -> torch.Tensor:
        return self.lo + (self.hi - self.lo) * torch.rand(n, generator=g)


def parse_corruption(spec: str | None) -> list[CorruptionKind]:
    """``"gaussian:0.1-0.5,box"`` -> its kinds; "" or None -> no corruption."""
    if not spec:
        return []
    kinds = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        name, _, value = item.partition(":")
        name = name.strip().lower().replace("-", "").replace("_", "")
        if name == "salt":
            name = "saltpepper"
        if name not in DEFAULTS:
            raise PixelforgeError(f"unknown corruption {item!r}; use {', '.join(DEFAULTS)} "
                                  "(e.g. gaussian:0.3,saltpepper:0.1,box:0.5,boxes:3,freeform:3)")
        if not value:
            lo = hi = float(DEFAULTS[name])
        else:
            m = re.fullmatch(r"\s*([0-9.]+)\s*(?:-\s*([0-9.]+))?\s*", value)
            try:
                lo = float(m.group(1)) if m else None
                hi = float(m.group(2)) if m and m.group(2) else lo
            except ValueError:
                lo = None
            if lo is None or hi < lo:
                raise PixelforgeError(f"corruption {item!r}: give a number or a range lo-hi after the colon")
        limits = {"gaussian": (0, 2), "saltpepper": (0, 1), "box": (0, 1), "boxes": (1, 64), "freeform": (1, 64)}
        a, b = limits[name]
        if not (a <= lo and hi <= b) or (name in ("box",) and lo <= 0):
            raise PixelforgeError(f"corruption {item!r}: the value must lie in ({a}, {b}]" if name == "box"
                                  else f"corruption {item!r}: the value must lie in [{a}, {b}]")
        kinds.append(CorruptionKind(name, lo, hi))
    return kinds


# -- masks (True = missing pixel), (N, 1, H, W) ------------------------------------------------

def box_mask(n: int, size: int, side: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """One square hole per image, ``side`` (N,) in pixels, at a uniformly random place."""
    side = side.round().long().clamp(1, size)
    top = (torch.rand(n, generator=g) * (size - side + 1)).floor().long()
    left = (torch.rand(n, generator=g) * (size - side + 1)).floor().long()
    return rect_mask(size, top, left, side, side)


def rect_mask(size: int, top: torch.Tensor, left: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    ys = torch.arange(size).view(1, size, 1)
    xs = torch.arange(size).view(1, 1, size)
    m = ((ys >= top.view(-1, 1, 1)) & (ys < (top + h).view(-1, 1, 1)) &
         (xs >= left.view(-1, 1, 1)) & (xs < (left + w).view(-1, 1, 1)))
    return m.unsqueeze(1)


def center_box_mask(size: int, side: int) -> torch.Tensor:
    """A (1, 1, size, size) mask with a ``side`` x ``side`` hole in the middle."""
    t = torch.tensor([(size - side) // 2])
    return rect_mask(size, t, t, torch.tensor([side]), torch.tensor([side]))


def random_boxes_mask(n: int, size: int, count: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    k = int(count.round().max().item())
    mask = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i in range(k):
        lo, hi = max(1, size // 8), max(2, size // 3)
        h = (lo + torch.rand(n, generator=g) * (hi - lo + 1)).floor().long()
        w = (lo + torch.rand(n, generator=g) * (hi - lo + 1)).floor().long()
        top = (torch.rand(n, generator=g) * (size - h + 1)).floor().long()
        left = (torch.rand(n, generator=g) * (size - w + 1)).floor().long()
        keep = (i < count.round()).view(-1, 1, 1, 1)
        mask |= rect_mask(size, top, left, h, w) & keep
    return mask


def free_form_mask(n: int, size: int, strokes: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Random brush strokes: polylines of 3-6 segments with a brush of 1/14-1/8 of the side."""
    k = int(strokes.round().max().item())
    vertices = 6
    # A random walk per stroke: start anywhere, turn by random angles, segments of 1/6-1/3 the side.
    start = torch.rand(n, k, 1, 2, generator=g) * size
    angle = torch.rand(n, k, 1, generator=g) * 2 * math.pi + torch.cumsum(
        (torch.rand(n, k, vertices - 1, generator=g) - 0.5) * math.pi, dim=2)
    length = (1 / 6 + torch.rand(n, k, vertices - 1, generator=g) / 6) * size
    steps = torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1) * length.unsqueeze(-1)
    pts = torch.cat([start, start + torch.cumsum(steps, dim=2)], dim=2)  # (n, k, V, 2)
    # Dense points along each segment, then a disc of the brush radius around each of them.
    t = torch.linspace(0, 1, max(4, size // 2)).view(1, 1, 1, -1, 1)
    dense = (pts[:, :, :-1, None] * (1 - t) + pts[:, :, 1:, None] * t).flatten(2, 3)  # (n, k, P, 2)
    radius = (size / 14 + torch.rand(n, k, 1, generator=g) * size / 18).clamp(min=1.0)
    active = (torch.arange(k).view(1, k) < strokes.round().view(n, 1))  # (n, k)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    mask = torch.zeros(n, size, size, dtype=torch.bool)
    for s in range(k):
        p = dense[:, s]  # (n, P, 2) as (x, y)
        dx = coords.view(1, 1, size) - p[..., 0:1]  # (n, P, size)
        dy = coords.view(1, 1, size) - p[..., 1:2]
        r2 = radius[:, s].view(n, 1, 1, 1) ** 2
        hit = ((dy.unsqueeze(-1) ** 2 + dx.unsqueeze(-2) ** 2) <= r2).any(dim=1)  # (n, size(y), size(x))
        mask |= hit & active[:, s].view(n, 1, 1)
    return mask.unsqueeze(1)


class Corruption:
    """Applies a parsed corruption spec to batches of images in [-1, 1]."""

    def __init__(self, spec: str | None):
        self.spec = spec or ""
        self.kinds = parse_corruption(spec)

    def __bool__(self) -> bool:
        return bool(self.kinds)

    @property
    def has_noise(self) -> bool:
        return any(k.kind in NOISE_KINDS for k in self.kinds)

    @property
    def has_holes(self) -> bool:
        return any(k.kind in HOLE_KINDS for k in self.kinds)

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(corrupted images, hole mask (N, 1, H, W), True where a pixel was removed)."""
        n, size = x.shape[0], x.shape[-1]
        mask = torch.zeros(n, 1, *x.shape[-2:], dtype=torch.bool)
        if not self.kinds:
            return x, mask.to(x.device)
        out = x.clone()
        choice = torch.randint(len(self.kinds), (n,), generator=g)
        for i, k in enumerate(self.kinds):
            idx = (choice == i).nonzero().flatten()
            if not len(idx):
                continue
            v = k.draw(len(idx), g)
            sub = x[idx.to(x.device)]
            if k.kind == "gaussian":
                noise = torch.randn(sub.shape, generator=g).to(x.device, sub.dtype)
                sub = (sub + noise * (2 * v).view(-1, 1, 1, 1).to(x.device, sub.dtype)).clamp(-1, 1)
            elif k.kind == "saltpepper":
                r = torch.rand(len(idx), 1, *sub.shape[-2:], generator=g)
                hit = (r < v.view(-1, 1, 1, 1)).to(x.device)
                salt = (torch.rand(r.shape, generator=g) < 0.5).to(x.device, sub.dtype) * 2 - 1
                sub = torch.where(hit, salt, sub)
            else:
                if k.kind == "box":
                    m = box_mask(len(idx), size, v * size, g)
                elif k.kind == "boxes":
                    m = random_boxes_mask(len(idx), size, v, g)
                else:
                    m = free_form_mask(len(idx), size, v, g)
                mask[idx] = m
                sub = sub.masked_fill(m.to(x.device), HOLE_FILL)
            out[idx.to(x.device)] = sub
        return out, mask.to(x.device)


def apply_mask(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Images with the pixels under ``mask`` (True = missing) replaced by the hole fill."""
    return x.masked_fill(mask.to(x.device), HOLE_FILL)


# -- the task ------------------------------------------------------------------------------

@dataclass
class AutoencoderTrainConfig:
    # Adam; cosine decay to 2% over the budget
    lr: float = flag(2e-3, help="Adam learning rate, cosine-decayed", check="positive")
    weight_decay: float = flag(0.0, help="AdamW weight decay")
    # VAE: weight of the KL term (beta-VAE when > 1)
    beta: float = flag(1.0, help="weight of the KL term (> 1: beta-VAE)")
    # corruption spec for denoising / inpainting training, see the module docstring
    corrupt: str = flag(
        "", help="corrupt inputs on the fly (denoising / inpainting training): comma list of gaussian[:sigma|lo-"
                  "hi], saltpepper[:p], box[:fraction], boxes[:n], freeform[:n], e.g. gaussian:0.3 or "
                  "box,boxes,freeform")

    def __post_init__(self):
        if not 0 < self.lr < 1:
            raise PixelforgeError(f"lr must be in (0, 1), not {self.lr}")
        if not (self.beta >= 0 and math.isfinite(self.beta)):
            raise PixelforgeError(f"beta must be a non-negative number, not {self.beta}")
        if self.weight_decay < 0:
            raise PixelforgeError(f"weight decay must be >= 0, not {self.weight_decay}")
        parse_corruption(self.corrupt)


class AutoencoderTask(SingleNetTask):
    name = "autoencoder"
    def __init__(self, model: ConvAutoencoder, cfg: AutoencoderTrainConfig, runtime: Runtime,
                 eval_data=None, sync_bn: bool = False, seed: int = 0, val_data=None):
        """``eval_data``: the split the final PSNR is reported on (test); ``val_data``: the
        validation split, measured after every epoch."""
        self.model, self.cfg, self.rt = model, cfg, runtime
        self.net = runtime.module(model)
        self.net_train = runtime.wrap(self.net, sync_bn)
        self.opt = make_optimizer(torch.optim.AdamW, self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.corruption = Corruption(cfg.corrupt)
        self.eval_data = eval_data
        self.val_data = val_data
        self.progress = 0.0
        self.variational = model.variational
        self.loss_keys = ("loss", "recon", "kl", "val_psnr") if self.variational else ("loss", "val_psnr")
        self.dims = model.cfg.channels * model.cfg.image_size ** 2
        self.seed = seed

    # -- Task protocol --------------------------------------------------------------------
    def losses(self, net: nn.Module, clean: torch.Tensor, inputs: torch.Tensor,
               labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training objective on one batch and its parts (per-dimension values)."""
        with self.rt.autocast():
            out = net(inputs, labels, True)
        if not self.variational:
            mse = F.mse_loss(out.float(), clean.float())
            return mse, {"loss": mse}
        mu, logvar, mean, log_scale = out
        nll = discretized_logistic_nll(clean, mean, log_scale)
        kl = kl_standard_normal(mu, logvar)
        loss = (nll + self.cfg.beta * kl).mean() / self.dims
        return loss, {"loss": loss, "recon": nll.mean() / self.dims, "kl": kl.mean() / self.dims,
                      "bpd": bits_per_dim((nll + kl).mean(), self.dims)}

    def step(self, images: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        if self.model.conditional and labels is None:
            raise PixelforgeError("a conditional autoencoder needs a labelled dataset")
        if not self.model.conditional:
            labels = None
        lr = self.cfg.lr * cosine_lr(self.progress, warmup=0.0, floor=0.02)
        for grp in self.opt.param_groups:
            grp["lr"] = lr
        self.net_train.train()
        inputs, _ = self.corruption(images)
        k = self.grad_accum
        self.opt.zero_grad(set_to_none=True)
        stats: dict[str, float] = {}
        y_chunks = labels.chunk(k) if labels is not None else [None] * k
        for i, (x, xin, y) in enumerate(zip(images.chunk(k), inputs.chunk(k), y_chunks)):
            with no_sync_unless(self.net_train, i == k - 1):
                loss, parts = self.losses(self.net_train, x, xin, y)
                (loss * (x.shape[0] / images.shape[0])).backward()
            for name, v in parts.items():
                stats[name] = stats.get(name, 0.0) + v.item() * x.shape[0] / images.shape[0]
        self.opt.step()
        stats["lr"] = lr
        return stats

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, d, limit: int = 2000) -> dict:
        """Reconstruction PSNR on the first ``limit`` images of ``d`` (and, for a VAE, the ELBO in
        bits/dim), under the split's name: ``{"test_psnr": ...}``."""
        from ..metrics import psnr

        self.net.eval()
        images = d.images[:limit]
        labels = d.labels[:limit] if self.model.conditional else None
        g = torch.Generator().manual_seed(self.seed)
        psnrs, bpds = [], []
        for i in range(0, len(images), 500):
            x = self.rt.tensor(images[i:i + 500].float().div(127.5).sub(1))
            y = labels[i:i + 500].to(self.rt.device) if labels is not None else None
            xin, _ = self.corruption(x, g)
            with self.rt.autocast():
                out = self.model(xin, y).float()
            psnrs.append(psnr(out.add(1).div(2).cpu(), x.add(1).div(2).float().cpu()))
            if self.variational:
                _, parts = self.losses(self.net, x, x, y)
                bpds.append(parts["bpd"].item() * len(x))
        self.net.train()
        split = d.split or "test"
        result = {f"{split}_psnr": torch.cat(psnrs).mean().item()}
        if self.variational:
            result[f"{split}_bpd"] = sum(bpds) / len(images)
        return result

    @torch.no_grad()
    def _grids(self, run: Run, name: str) -> None:
        shown = self.eval_data if self.eval_data is not None else self.val_data
        if shown is None:
            return
        self.net.eval()
        n = 32
        x = self.rt.tensor(shown.images[:n].float().div(127.5).sub(1))
        y = shown.labels[:n].to(self.rt.device) if self.model.conditional else None
        xin, _ = self.corruption(x, torch.Generator().manual_seed(0))
        with self.rt.autocast():
            out = self.model(xin, y).float()
        rows = [x.float(), xin.float(), out] if self.corruption else [x.float(), out]
        grid = torch.cat([r.view(4, 8, *r.shape[1:]) for r in rows], dim=1).flatten(0, 1)
        scale = 2 if self.model.cfg.image_size <= 32 else 1
        save_grid(grid.add(1).div(2), run.samples_dir / f"{name}_reconstruction.png", nrow=8, scale=scale)
        if self.variational:
            g = torch.Generator().manual_seed(0)
            k = self.model.cfg.num_classes
            m = k * max(1, 64 // k) if k else 64
            z = torch.randn(m, *self.model.cfg.code_shape, generator=g).to(self.rt.device)
            yy = (torch.arange(m) % k).to(self.rt.device) if k else None
            with self.rt.autocast():
                samples = self.model.decode(z, yy).float()
            save_grid(samples.add(1).div(2), run.samples_dir / f"{name}_samples.png",
                      nrow=k if k and k <= 16 else None, scale=scale)
        self.net.train()

    def on_epoch_end(self, run: Run, epoch: int, step: int) -> None:
        if self.val_data is not None:
            ev = self.evaluate(self.val_data, limit=1000)
            run.log_metrics({"step": step, "epoch": epoch, **{k: round(v, 6) for k, v in ev.items()}})
        self._grids(run, f"epoch_{epoch:03d}")

    def on_train_end(self, run: Run, step: int) -> None:
        d = self.eval_data
        if d is not None:
            split = d.split or "test"
            atomic_write_json(run.path / "evaluation.json", {
                "step": step, "split": split, f"{split}_images": min(2000, len(d)), "corrupt": self.cfg.corrupt,
                **self.evaluate(d)})
        self._grids(run, "final")
