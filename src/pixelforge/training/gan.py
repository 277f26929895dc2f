"""The GAN training task: one discriminator update (or ``d_steps`` of them), then one
generator update, under the runtime's autocast; an EMA copy of G is kept for sampling.

Speed on the CPU: bf16 autocast + channels_last (from :mod:`pixelforge.runtime`), G's
forward pass shared between the D and G updates, and D's weights frozen during the G
update so backward skips their gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PixelforgeError
from ..family import flag
from ..images import save_grid
from ..models.gan import (GAN, LOSSES, discriminator_loss, generator_loss, gradient_penalty, r1_penalty,
                          rotated_quarters)
from ..nn import EMA, diff_augment, no_sync_unless
from ..nn.augment import BLACK, parse_policy
from ..runs import Run
from ..runtime import Runtime, make_optimizer
from .task import Task


@dataclass
class GANTrainConfig:
    loss: str = flag("ns", help="GAN loss", choices=("ns", "hinge", "lsgan", "wgan-gp"))
    # 5x the DCGAN paper's 2e-4: at 5,264 steps FID 2.06 with 2e-4, 1.64 with 5e-4, 1.51 with 1e-3
    # (docs/gan.md). A faster D (TTUR, --lr-d 2x --lr-g) did not help the ns loss (1.57).
    lr_g: float = flag(1e-3, help="generator learning rate", check="positive")
    lr_d: float = flag(1e-3, help="discriminator learning rate", check="positive")
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = flag(1, help="D updates per G update", check="positive")
    ema_decay: float = flag(0.999, help="EMA decay of generator weights")
    # comma list of color,translation,cutout
    diffaug: str = flag("", help="DiffAugment policy, e.g. color,translation,cutout")
    gp_weight: float = 10.0
    r1_gamma: float = flag(0.0, help="R1 penalty weight on real images, 0 for none (D without batch norm)",
                           check="non-negative")
    # the R1 penalty runs on every r1_every-th D update, weighted by r1_every (lazy regularisation)
    r1_every: int = flag(16, help="D updates between R1 penalties", check="positive")
    # self-supervised D (Chen et al. 2019): D's weight on rotation prediction of real images; G's, on its
    # own images, is ROTATION_G_SHARE of it (the paper's 1 and 0.2). A new run's D gets the head.
    rotation: float = flag(0.0, help="weight of D's rotation-prediction loss, 0 for none", check="non-negative")
    # balanced consistency regularisation (Zhao et al. 2021): D's logits on an image and on a changed
    # copy pulled together, on real and generated images alike. The paper's weight is 10 and its change
    # flip + translation; flips teach D that a shoe pointing right is as real as one pointing left.
    consistency: float = flag(0.0, help="weight of D's consistency regularisation (bCR), 0 for none",
                              check="non-negative")
    consistency_policy: str = flag("flip,translation", help="the changes D's consistency regularisation "
                                   "must not notice (DiffAugment policy names)")

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise PixelforgeError(f"unknown GAN loss {self.loss!r}; use one of {', '.join(LOSSES)}")
        for name in ("lr_g", "lr_d"):
            v = getattr(self, name)
            if not (0 < v < 1):
                raise PixelforgeError(f"{name.replace('_', '-')} must be in (0, 1), not {v}")
        if self.d_steps < 1:
            raise PixelforgeError(f"d-steps must be at least 1, not {self.d_steps}")
        if self.r1_gamma < 0:
            raise PixelforgeError(f"r1-gamma must be >= 0, not {self.r1_gamma}")
        if self.r1_every < 1:
            raise PixelforgeError(f"r1-every must be at least 1, not {self.r1_every}")
        if self.rotation < 0:
            raise PixelforgeError(f"rotation must be >= 0, not {self.rotation}")
        if self.consistency < 0:
            raise PixelforgeError(f"consistency must be >= 0, not {self.consistency}")
        if not (0 <= self.ema_decay < 1):
            raise PixelforgeError(f"ema-decay must be in [0, 1), not {self.ema_decay}")
        parse_policy(self.diffaug)
        if self.consistency and not parse_policy(self.consistency_policy):
            raise PixelforgeError("--consistency needs a --consistency-policy to change the images by")


ROTATION_G_SHARE = 0.2


def check_penalty_norm(loss: str, r1_gamma: float, d_norm: str | None) -> None:
    """Refuse a gradient penalty (wgan-gp's, R1) with a batch-norm D: the penalties are per sample."""
    if (loss == "wgan-gp" or r1_gamma) and d_norm == "bn":
        raise PixelforgeError("gradient penalties (wgan-gp, R1) are per sample and batch norm breaks them; "
                              "use --d-norm sn or none")


class GANTask(Task):
    loss_keys = ("d_loss", "g_loss")
    best_metric = ("fid", "min")

    def __init__(self, model: GAN, cfg: GANTrainConfig, runtime: Runtime, seed: int = 0, grid_size: int = 64,
                 sync_bn: bool = False, evaluator=None):
        check_penalty_norm(cfg.loss, cfg.r1_gamma, model.cfg.d_norm)
        if cfg.rotation and not model.cfg.rotation_head:
            raise PixelforgeError("--rotation needs a discriminator with a rotation head; this run's has none")
        if model.cfg.rotation_head and not cfg.rotation:  # an untrained head (and unused parameters under DDP)
            raise PixelforgeError("a discriminator with a rotation head trains with --rotation > 0")
        if cfg.loss == "wgan-gp" and runtime.distributed:
            raise PixelforgeError("wgan-gp's double backward does not run under DistributedDataParallel; "
                                  "use --loss hinge with --d-norm sn for multi-process training")
        if cfg.r1_gamma and runtime.distributed:
            raise PixelforgeError("the R1 penalty's double backward does not run under DistributedDataParallel; "
                                  "drop --r1-gamma for multi-process training")
        self.model, self.cfg, self.rt = model, cfg, runtime
        self.G = runtime.module(model.generator)
        self.D = runtime.module(model.discriminator)
        # G_train/D_train are the DDP wrappers under torchrun (gradient all-reduce); self.G/self.D
        # hold the weights. The G update reads D through self.D: D's weights are frozen there.
        self.G_train = runtime.wrap(self.G, sync_bn)
        self.D_train = runtime.wrap(self.D, sync_bn)
        self.ema = EMA(self.G, cfg.ema_decay)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = make_optimizer(torch.optim.Adam, self.G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_d = make_optimizer(torch.optim.Adam, self.D.parameters(), lr=cfg.lr_d, betas=betas)
        self.scaler = runtime.grad_scaler()
        self.augment = parse_policy(cfg.diffaug)
        self.consistency_policy = parse_policy(cfg.consistency_policy)
        n_cls = model.cfg.num_classes
        if n_cls:
            grid_size = n_cls * max(1, grid_size // n_cls)  # whole rows of one sample per class
        g = torch.Generator().manual_seed(seed)
        self.fixed_z = torch.randn(grid_size, model.cfg.latent_dim, generator=g)
        self.fixed_labels = (torch.arange(grid_size) % n_cls) if n_cls else None
        self.conditional = n_cls > 0
        self.evaluator = evaluator
        self.d_updates = 0  # counts D updates for the lazy R1 penalty

    def evaluate_checkpoint(self) -> dict:
        was_training = self.ema.module.training
        try:
            return super().evaluate_checkpoint()
        finally:
            self.ema.module.train(was_training)

    # -- Task protocol ----------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.G, "generator_ema": self.ema.module, "discriminator": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def extra_state(self) -> dict:
        return {"ema_updates": self.ema.num_updates, "scaler": self.scaler.state_dict(), "d_updates": self.d_updates}

    def load_extra_state(self, state: dict) -> None:
        self.ema.num_updates = int(state.get("ema_updates", 0))
        self.d_updates = int(state.get("d_updates", 0))
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def set_progress(self, fraction: float) -> None:
        pass  # constant learning rates

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.augment) if self.augment else x

    def step(self, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        if self.conditional and labels is None:
            raise PixelforgeError("a conditional GAN needs a labelled dataset")
        k = self.grad_accum
        chunks = list(zip(real.chunk(k), labels.chunk(k) if self.conditional else [None] * k))
        latent = self.model.cfg.latent_dim
        stats = dict.fromkeys(("d_loss", "d_real", "d_fake", "g_loss"), 0.0)
        for d_step in range(self.cfg.d_steps):
            last_d_step = d_step == self.cfg.d_steps - 1
            r1_now = self.cfg.r1_gamma > 0 and self.d_updates % self.cfg.r1_every == 0
            self.opt_d.zero_grad(set_to_none=True)
            fakes = []
            for i, (r, y) in enumerate(chunks):
                z = torch.randn(r.shape[0], latent, device=self.rt.device)
                with no_sync_unless(self.D_train, i == k - 1), self.rt.autocast():
                    if k == 1:  # keep G's graph: the G update reuses this forward pass
                        fake = self.G_train(z, y)
                    else:  # micro-batches: G runs again, under its own no_sync, in the G update
                        with torch.no_grad():
                            fake = self.G(z, y)
                    seen_real, seen_fake = self._aug(r), self._aug(fake.detach())
                    d_real = self.D_train(seen_real, y)
                    d_fake = self.D_train(seen_fake, y)
                    d_loss = discriminator_loss(self.cfg.loss, d_real, d_fake)
                    if self.cfg.loss == "wgan-gp":
                        d_loss = d_loss + self.cfg.gp_weight * gradient_penalty(self.D_train, r, fake.detach(), y)
                    # R1 on a fresh augmentation draw of the reals: an extra D forward, once in r1_every updates
                    r1 = r1_penalty(self.D_train, self._aug(r), y) if r1_now else None
                    d_objective = d_loss if r1 is None else d_loss + self.cfg.r1_gamma / 2 * self.cfg.r1_every * r1
                    if self.cfg.rotation:
                        rot_d = self._rotation_loss(self.D_train, r)
                        d_objective = d_objective + self.cfg.rotation * rot_d
                    if self.cfg.consistency:
                        cr = (self._consistency_loss(seen_real, d_real, y)
                              + self._consistency_loss(seen_fake, d_fake, y))
                        d_objective = d_objective + self.cfg.consistency * cr
                self.scaler.scale(d_objective / k).backward()
                fakes.append((z, fake))
                if last_d_step:
                    stats["d_loss"] += d_loss.item() / k
                    stats["d_real"] += d_real.float().mean().item() / k
                    stats["d_fake"] += d_fake.float().mean().item() / k
                    if r1 is not None:
                        stats["r1"] = stats.get("r1", 0.0) + r1.item() / k
                    if self.cfg.rotation:
                        stats["rotation_d"] = stats.get("rotation_d", 0.0) + rot_d.item() / k
                    if self.cfg.consistency:
                        stats["consistency"] = stats.get("consistency", 0.0) + cr.item() / k
            self.scaler.step(self.opt_d)
            self.scaler.update()
            self.d_updates += 1

        self.D.requires_grad_(False)
        try:
            self.opt_g.zero_grad(set_to_none=True)
            for i, ((_, y), (z, fake)) in enumerate(zip(chunks, fakes)):
                with no_sync_unless(self.G_train, i == k - 1), self.rt.autocast():
                    if k > 1:
                        fake = self.G_train(z, y)
                    g_loss = generator_loss(self.cfg.loss, self.D(self._aug(fake), y))
                    g_objective = g_loss
                    if self.cfg.rotation:
                        rot_g = self._rotation_loss(self.D, fake)
                        g_objective = g_loss + ROTATION_G_SHARE * self.cfg.rotation * rot_g
                        stats["rotation_g"] = stats.get("rotation_g", 0.0) + rot_g.item() / k
                self.scaler.scale(g_objective / k).backward()
                stats["g_loss"] += g_loss.item() / k
            self.scaler.step(self.opt_g)
            self.scaler.update()
        finally:
            self.D.requires_grad_(True)
        self.ema.update(self.G)
        return stats

    def _rotation_loss(self, D: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of D's rotation head on the batch turned in quarters (after DiffAugment)."""
        turned, turns = rotated_quarters(self._aug(images))
        return F.cross_entropy(D(turned, rotation=True).float(), turns)

    def _consistency_loss(self, seen: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Mean squared difference of D's logits on the images it saw and on a changed copy of them."""
        changed = self.D_train(diff_augment(seen, self.consistency_policy, background=BLACK), labels)
        return (changed.float() - logits.float()).pow(2).mean()

    @torch.no_grad()
    def _grid(self, path) -> None:
        G = self.ema.module
        z = self.fixed_z.to(self.rt.device)
        y = self.fixed_labels.to(self.rt.device) if self.fixed_labels is not None else None
        images = G(z, y).float().add(1).div(2)
        nrow = self.model.cfg.num_classes if self.conditional and self.model.cfg.num_classes <= 16 else None
        save_grid(images, path, nrow=nrow, scale=2 if self.model.cfg.image_size <= 32 else 1)

    def on_epoch_end(self, run: Run, epoch: int, step: int) -> None:
        self._grid(run.samples_dir / f"epoch_{epoch:03d}.png")

    def on_train_end(self, run: Run, step: int) -> None:
        self._grid(run.samples_dir / "final.png")
