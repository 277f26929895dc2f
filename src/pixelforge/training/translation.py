"""Training tasks for image-to-image translation (see :mod:`pixelforge.models.translation`
for the objectives): :class:`Pix2PixTask` and :class:`CycleGANTask`, both run by the one
generic :class:`~pixelforge.training.Trainer`.

Batches: the loop hands out equally sized uint8 images scaled to [-1, 1]. For pix2pix they
are either channel-concatenated A||B pairs (folder pairs) or targets whose input the
task derives after cropping (built-in pairings); for CycleGAN they are domain A, and the
task draws an equally large random batch of domain B itself (from the global RNG, which
the loop checkpoints, so a resumed run draws the same batches). Every step takes one
random ``crop`` window per image, flipped at random.

Learning rates: Adam (2e-4, beta1 0.5) constant for the first half of the budget, then
decaying linearly to zero, as in both papers. bf16 autocast and channels_last come from
the runtime; losses are computed in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.paired import PAIRINGS, Pairing, make_input, random_crops
from ..errors import PixelforgeError
from ..family import flag
from ..images import save_grid
from ..models.gan import discriminator_loss, generator_loss
from ..models.translation import CycleGAN, Pix2Pix, cycle_loss, identity_loss
from ..runs import Run
from ..runtime import Runtime, make_optimizer
from .lr_schedules import cooldown
from .task import Task

GAN_LOSSES = ("ns", "lsgan", "hinge")


def _check_common(gan_loss: str, lr: float, crop: int) -> None:
    if gan_loss not in GAN_LOSSES:
        raise PixelforgeError(f"unknown GAN loss {gan_loss!r}; use one of {', '.join(GAN_LOSSES)}")
    if not 0 < lr < 1:
        raise PixelforgeError(f"lr must be in (0, 1), not {lr}")
    if crop < 0 or 0 < crop < 8:
        raise PixelforgeError(f"crop must be 0 (whole images) or at least 8 px, not {crop}")


@dataclass
class Pix2PixTrainConfig:
    # edges, gray, blur, lowres, or folder:PATH_TO_B (matched by file name)
    pairs: str = flag(
        "edges", help="how inputs are paired with the --data images: edges, gray, blur, lowres (made on the fly from "
                  "the targets), or folder:B (--data is A; files matched by name)")
    # random training crop (0 or larger than the images: whole images)
    crop: int = flag(64, help="random training crop in px (0: whole images)")
    lambda_l1: float = flag(100.0, help="weight of the L1 term")
    # 0: a plain L1 U-Net, no discriminator (the baseline)
    gan_weight: float = flag(1.0, help="weight of the adversarial term; 0 = plain L1 U-Net")
    gan_loss: str = flag("ns", help="adversarial loss", choices=("ns", "lsgan", "hinge"))
    lr: float = flag(2e-4, help="Adam's learning rate, halved to 0 linearly", check="positive")
    beta1: float = 0.5

    def __post_init__(self):
        Pairing.parse(self.pairs)
        _check_common(self.gan_loss, self.lr, self.crop)
        if self.lambda_l1 < 0 or self.gan_weight < 0 or self.lambda_l1 + self.gan_weight == 0:
            raise PixelforgeError("lambda_l1 and gan_weight must be >= 0 and not both 0")


@dataclass
class CycleGANTrainConfig:
    # the spec of domain B (domain A is the run's --data / --a)
    b_data: str = flag("", help="domain B: folder:PATH, fashion-mnist:9, ...", flag="--b", metavar="SPEC", group="")
    crop: int = flag(0, help="random training crop in px (0: whole images)")
    lambda_cyc: float = flag(10.0, help="cycle-consistency weight")
    # identity weight, relative to lambda_cyc
    lambda_id: float = flag(0.5, help="identity weight relative to --lambda-cyc")
    pool_size: int = flag(50, help="generated images kept for the discriminators")
    gan_loss: str = flag("lsgan", help="adversarial loss", choices=("ns", "lsgan", "hinge"))
    lr: float = flag(2e-4, help="Adam's learning rate, halved to 0 linearly", check="positive")
    beta1: float = 0.5

    def __post_init__(self):
        if not self.b_data:
            raise PixelforgeError("CycleGAN needs domain B: --b SPEC (e.g. folder:PATH or fashion-mnist:9)")
        _check_common(self.gan_loss, self.lr, self.crop)
        if self.lambda_cyc < 0 or self.lambda_id < 0:
            raise PixelforgeError("lambda_cyc and lambda_id must be >= 0")
        if self.pool_size < 0:
            raise PixelforgeError(f"pool size must be >= 0, not {self.pool_size}")


class ImagePool:
    """A history of generated images (Shrivastava et al. 2017): :meth:`query` returns, for each
    new image, the image itself while the pool fills up; afterwards, with probability 1/2, a
    random older image (which the new one replaces in the pool), else the new image."""

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(0, self.size, ()))
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.cat(out)

    def state(self) -> torch.Tensor | None:
        return torch.cat(self.images).float().cpu() if self.images else None

    def load(self, t: torch.Tensor | None) -> None:
        self.images = [] if t is None else [x.unsqueeze(0) for x in t]


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    x = x.detach().float().cpu().add(1).div(2).clamp(0, 1)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class _TranslationTask(Task):
    """Shared bookkeeping: Adam optimizers, the LR schedule, sample grids."""

    nets: dict[str, nn.Module]
    opts: dict[str, torch.optim.Optimizer]
    lr: float
    accumulates = False

    def modules(self) -> dict[str, nn.Module]:
        return self.nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.opts

    def set_progress(self, fraction: float) -> None:
        for opt in self.opts.values():
            for g in opt.param_groups:
                g["lr"] = self.lr * cooldown(fraction, 0.5)

    def _crops(self, images: torch.Tensor, crop: int) -> torch.Tensor:
        return self.rt.tensor(random_crops(images, crop) if crop else images)

    def on_epoch_end(self, run: Run, epoch: int, step: int) -> None:
        if epoch == 1 or epoch % 10 == 0:
            self._grid(run.samples_dir / f"epoch_{epoch:03d}.png")

    def on_train_end(self, run: Run, step: int) -> None:
        self._grid(run.samples_dir / "final.png")

    def _grid(self, path) -> None:
        if self.last_rows:
            rows = [_to_unit(r[:8]) for r in self.last_rows]
            save_grid(torch.cat(rows), path, nrow=rows[0].shape[0], scale=2 if rows[0].shape[-1] <= 32 else 1)


class Pix2PixTask(_TranslationTask):
    loss_keys = ("d_loss", "g_adv", "l1")

    def __init__(self, model: Pix2Pix, cfg: Pix2PixTrainConfig, runtime: Runtime):
        self.model, self.cfg, self.rt = model, cfg, runtime
        self.pairing = Pairing.parse(cfg.pairs)
        self.in_channels = model.cfg.in_channels
        self.G = runtime.module(model.generator)
        self.D = runtime.module(model.discriminator)
        self.adversarial = cfg.gan_weight > 0
        betas = (cfg.beta1, 0.999)
        self.lr = cfg.lr
        self.nets = {"generator": self.G, "discriminator": self.D}
        self.opts = {"generator": make_optimizer(torch.optim.Adam, self.G.parameters(), lr=cfg.lr, betas=betas)}
        if self.adversarial:
            self.opts["discriminator"] = make_optimizer(torch.optim.Adam, self.D.parameters(), lr=cfg.lr, betas=betas)
        self.last_rows: list[torch.Tensor] = []

    def split(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) in [-1, 1] from a cropped batch."""
        if self.pairing.kind == "folder":
            return batch[:, :self.in_channels], batch[:, self.in_channels:]
        assert self.pairing.kind in PAIRINGS
        return make_input(self.pairing.kind, batch), batch

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def step(self, images: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        a, b = self.split(self._crops(images, self.cfg.crop))
        a, b = self.rt.tensor(a), self.rt.tensor(b)
        stats = {"d_loss": 0.0, "g_adv": 0.0}
        with self.rt.autocast():
            fake = self.G(a)
        if self.adversarial:
            opt_d = self.opts["discriminator"]
            opt_d.zero_grad(set_to_none=True)
            with self.rt.autocast():
                d_real = self.D(torch.cat([a, b], 1))
                d_fake = self.D(torch.cat([a, fake.detach().to(a.dtype)], 1))
            d_loss = 0.5 * discriminator_loss(self.cfg.gan_loss, d_real, d_fake)
            d_loss.backward()
            opt_d.step()
            stats["d_loss"] = d_loss.item()
        opt_g = self.opts["generator"]
        opt_g.zero_grad(set_to_none=True)
        l1 = F.l1_loss(fake.float(), b.float())
        loss = self.cfg.lambda_l1 * l1
        if self.adversarial:
            self.D.requires_grad_(False)
            try:
                with self.rt.autocast():
                    g_adv = generator_loss(self.cfg.gan_loss, self.D(torch.cat([a, fake.to(a.dtype)], 1)))
            finally:
                self.D.requires_grad_(True)
            loss = loss + self.cfg.gan_weight * g_adv
            stats["g_adv"] = g_adv.item()
        loss.backward()
        opt_g.step()
        self.last_rows = [a.detach(), fake.detach(), b.detach()]
        mse = F.mse_loss(fake.detach().float().clamp(-1, 1), b.float()).item() / 4  # in [0, 1] units
        return {**stats, "l1": l1.item(), "psnr": 10 * torch.log10(torch.tensor(1 / max(mse, 1e-12))).item()}


class CycleGANTask(_TranslationTask):
    loss_keys = ("d_loss", "g_adv", "cycle", "identity")

    def __init__(self, model: CycleGAN, cfg: CycleGANTrainConfig, runtime: Runtime, b_images: torch.Tensor):
        if len(b_images) == 0:
            raise PixelforgeError("domain B is empty")
        if cfg.lambda_id > 0 and model.cfg.channels_a != model.cfg.channels_b:
            raise PixelforgeError(f"the identity loss needs domains with the same channels (A has "
                                  f"{model.cfg.channels_a}, B {model.cfg.channels_b}); pass --lambda-id 0")
        self.model, self.cfg, self.rt = model, cfg, runtime
        self.b_images = b_images  # uint8 (N, C, H, W)
        self.g_ab, self.g_ba = runtime.module(model.g_ab), runtime.module(model.g_ba)
        self.d_a, self.d_b = runtime.module(model.d_a), runtime.module(model.d_b)
        betas = (cfg.beta1, 0.999)
        self.lr = cfg.lr
        self.nets = {"g_ab": self.g_ab, "g_ba": self.g_ba, "d_a": self.d_a, "d_b": self.d_b}
        gen_params = [*self.g_ab.parameters(), *self.g_ba.parameters()]
        self.opts = {"generators": make_optimizer(torch.optim.Adam, gen_params, lr=cfg.lr, betas=betas),
                     "discriminators": make_optimizer(torch.optim.Adam, [*self.d_a.parameters(), *self.d_b.parameters()],
                                                        lr=cfg.lr, betas=betas)}
        self.pool_a, self.pool_b = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)
        self.last_rows: list[torch.Tensor] = []

    def extra_state(self) -> dict:
        return {"pool_a": self.pool_a.state(), "pool_b": self.pool_b.state()}

    def load_extra_state(self, state: dict) -> None:
        self.pool_a.load(state.get("pool_a"))
        self.pool_b.load(state.get("pool_b"))

    def sample_b(self, n: int) -> torch.Tensor:
        idx = torch.randint(0, len(self.b_images), (n,))
        return self.b_images[idx].float().div_(127.5).sub_(1.0)

    def step(self, images: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        cfg = self.cfg
        a = self._crops(images, cfg.crop)
        b = self._crops(self.sample_b(images.shape[0]), cfg.crop)
        if a.shape[-2:] != b.shape[-2:]:
            raise PixelforgeError(f"domains A and B give images of different sizes ({tuple(a.shape[-2:])} vs "
                                  f"{tuple(b.shape[-2:])}); load both at one --size or train on --crop windows")
        # Generators: adversarial + cycle + identity, with both discriminators frozen.
        opt_g, opt_d = self.opts["generators"], self.opts["discriminators"]
        opt_g.zero_grad(set_to_none=True)
        self.d_a.requires_grad_(False)
        self.d_b.requires_grad_(False)
        try:
            with self.rt.autocast():
                fake_b, fake_a = self.g_ab(a), self.g_ba(b)
                g_adv = (generator_loss(cfg.gan_loss, self.d_b(fake_b)) +
                         generator_loss(cfg.gan_loss, self.d_a(fake_a)))
                cyc = cycle_loss(self.g_ab, self.g_ba, a, b, fake_b=fake_b, fake_a=fake_a)
                loss = g_adv + cfg.lambda_cyc * cyc
                idt = torch.zeros(())
                if cfg.lambda_id > 0:
                    idt = identity_loss(self.g_ab, self.g_ba, a, b)
                    loss = loss + cfg.lambda_id * cfg.lambda_cyc * idt
            loss.backward()
            opt_g.step()
        finally:
            self.d_a.requires_grad_(True)
            self.d_b.requires_grad_(True)
        # Discriminators, on pooled fakes.
        opt_d.zero_grad(set_to_none=True)
        pooled_b = self.pool_b.query(fake_b.detach())
        pooled_a = self.pool_a.query(fake_a.detach())
        with self.rt.autocast():
            d_b = 0.5 * discriminator_loss(cfg.gan_loss, self.d_b(b), self.d_b(pooled_b.to(b.dtype)))
            d_a = 0.5 * discriminator_loss(cfg.gan_loss, self.d_a(a), self.d_a(pooled_a.to(a.dtype)))
        (d_a + d_b).backward()
        opt_d.step()
        self.last_rows = [a.detach(), fake_b.detach(), b.detach(), fake_a.detach()]
        return {"d_loss": d_a.item() + d_b.item(), "g_adv": g_adv.item(), "cycle": cyc.item(),
                "identity": float(idt.detach())}
