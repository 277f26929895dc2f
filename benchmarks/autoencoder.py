"""Autoencoders on the Fashion-MNIST test set: reconstruction PSNR vs latent size, VAE test
ELBO (bits/dim) and FID, denoising at sigma = 0.3 and inpainting of a 14x14 center box.

    PIXELFORGE_DATA=../shared/data flock /tmp/pixelforge-heavy.lock python benchmarks/autoencoder.py

Every model is trained with the real API (`train_autoencoder`, bf16 autocast where the CPU
has it) for a short wall-clock budget, then measured on all 10,000 test images:

- AE reconstruction PSNR/SSIM for several latent sizes;
- VAE: the negative ELBO (beta = 1, one posterior sample per image) in bits/dim, and FID
  (and KID) of 10,000 samples against the test set through the project's shared metric
  (`evaluate_generator`, the shipped Fashion-MNIST judge network);
- a denoising AE (trained with `--corrupt gaussian:0.2-0.4,saltpepper:0.05-0.2`) on Gaussian
  noise sigma = 0.3 (in [0, 1] pixel units, clipped) and on 10% salt-and-pepper noise, and an
  inpainting AE (`--corrupt box,boxes,freeform`) on a 14x14 center box: PSNR/SSIM of the
  corrupted input and of the restored output against the clean image.

Target: denoising gain >= 10 dB PSNR over the noisy input. Writes
benchmarks/results/autoencoder.json and the result images in docs/images/autoencoder_*.png.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _common import write_results

import pixelforge
from pixelforge.data import load_dataset
from pixelforge.images import save_grid
from pixelforge.metrics import psnr, ssim
from pixelforge.pipelines.evaluate import evaluate_generator
from pixelforge.training.autoencoder import Corruption, center_box_mask

DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"


def train(name: str, minutes: float, runs: Path, **options) -> tuple[pixelforge.AutoencoderPipeline, float]:
    t = time.perf_counter()
    pipe = pixelforge.train_autoencoder("fashion-mnist", runs / name, overwrite=True, minutes=minutes,
                                        batch_size=128, progress=False, **options)
    return pipe, time.perf_counter() - t


def quality(pred: torch.Tensor, target: torch.Tensor) -> dict:
    return {"psnr": round(psnr(pred, target).mean().item(), 2), "ssim": round(ssim(pred, target).mean().item(), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latents", default="4,16,64,256", help="AE latent sizes for the PSNR sweep")
    ap.add_argument("--sweep-minutes", type=float, default=0.8, help="training budget per sweep AE (and the 2-D VAE)")
    ap.add_argument("--minutes", type=float, default=2.2, help="training budget of the VAE and restoration AEs")
    ap.add_argument("--test-limit", type=int, default=None, help="evaluate on the first N test images (quick checks)")
    ap.add_argument("--fid-samples", type=int, default=10000)
    ap.add_argument("--runs", default="runs/bench-autoencoder")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    runs = Path(args.runs)
    started = time.perf_counter()

    test = load_dataset("fashion-mnist", split="test", limit=args.test_limit)
    clean = test.images.float() / 255
    results: dict = {"test_images": len(clean), "batch_size": 128}
    show = torch.cat([torch.nonzero(test.labels == k).flatten()[:1] for k in range(10)])  # one image per class

    # 1. Reconstruction PSNR vs latent size.
    sweep, rows = [], []
    for d in (int(x) for x in args.latents.split(",")):
        pipe, secs = train(f"ae-z{d}", args.sweep_minutes, runs, latent_dim=d)
        rec = pipe.reconstruct(test.images)
        sweep.append({"latent_dim": d, **quality(rec, clean), "train_seconds": round(secs, 1)})
        rows.append(rec[show])
        print(f"AE latent {d:>4}: PSNR {sweep[-1]['psnr']:.2f} dB, SSIM {sweep[-1]['ssim']:.3f} ({secs:.0f} s)")
    results["reconstruction_vs_latent"] = sweep
    save_grid(torch.cat([clean[show], *rows]), DOCS / "autoencoder_latent_sweep.png", nrow=10, scale=2)

    # 2. VAE: test ELBO in bits/dim, FID/KID of samples, reconstruction PSNR.
    vae, secs = train("vae-z16", args.minutes, runs, variational=True, latent_dim=16)
    bpd = vae.elbo_bits_per_dim(test.images)
    fid = evaluate_generator(vae, vae.data, n=args.fid_samples, metrics=("fid", "kid"), progress=False)
    rec = vae.reconstruct(test.images)
    results["vae"] = {"latent_dim": 16, "beta": 1.0, "test_elbo_bits_per_dim": round(bpd, 4),
                      "fid": round(fid["fid"], 2), "kid": round(fid["kid_mean"], 5), "fid_samples": args.fid_samples,
                      "extractor": fid.get("extractor"), **{f"reconstruction_{k}": v for k, v in quality(rec, clean).items()},
                      "train_seconds": round(secs, 1)}
    print(f"VAE latent 16: ELBO {bpd:.3f} bits/dim, FID {fid['fid']:.2f}, KID {fid['kid_mean']:.4f} ({secs:.0f} s)")
    save_grid(vae.sample(100, seed=0), DOCS / "autoencoder_vae_samples.png", nrow=10, scale=2)
    vae.latent_map(DOCS / "autoencoder_vae_latent_map.png", n=3000)

    # A 2-D conditional-free VAE for the manifold picture (short run, not a headline figure).
    vae2, secs2 = train("vae-z2", args.sweep_minutes, runs, variational=True, latent_dim=2)
    vae2.latent_map(DOCS / "autoencoder_vae2d_map.png", n=3000, grid=16)
    results["vae_2d"] = {"test_elbo_bits_per_dim": round(vae2.elbo_bits_per_dim(test.images), 4),
                         "train_seconds": round(secs2, 1)}

    # 3. Denoising: Gaussian sigma = 0.3 and 10% salt-and-pepper.
    den, secs = train("denoise", args.minutes, runs, latent_dim=256, corrupt="gaussian:0.2-0.4,saltpepper:0.05-0.2")
    denoise = {"train_corrupt": "gaussian:0.2-0.4,saltpepper:0.05-0.2", "latent_dim": 256,
               "train_seconds": round(secs, 1)}
    grids = []
    for name, spec in (("gaussian_0.3", "gaussian:0.3"), ("saltpepper_0.1", "saltpepper:0.1")):
        noisy, _ = Corruption(spec)(clean * 2 - 1, torch.Generator().manual_seed(0))
        noisy = noisy.add(1).div(2)
        out = den.restore(noisy, "denoise")
        q_in, q_out = quality(noisy, clean), quality(out, clean)
        denoise[name] = {"input": q_in, "restored": q_out, "psnr_gain_db": round(q_out["psnr"] - q_in["psnr"], 2)}
        grids += [noisy[show], out[show]]
        print(f"denoise {name}: PSNR {q_in['psnr']:.2f} -> {q_out['psnr']:.2f} dB "
              f"(gain {denoise[name]['psnr_gain_db']:.2f}), SSIM {q_in['ssim']:.3f} -> {q_out['ssim']:.3f}")
    results["denoising"] = denoise
    save_grid(torch.cat([clean[show], *grids]), DOCS / "autoencoder_denoise.png", nrow=10, scale=2)

    # 4. Inpainting a 14x14 center box.
    inp, secs = train("inpaint", args.minutes, runs, latent_dim=256, corrupt="box,boxes,freeform")
    mask = center_box_mask(28, 14)
    holed = torch.where(mask, torch.full_like(clean, 0.5), clean)
    out = inp.restore(clean, "inpaint", mask=mask)
    q_in, q_out = quality(holed, clean), quality(out, clean)
    results["inpainting"] = {"train_corrupt": "box,boxes,freeform", "latent_dim": 256, "box": "14x14 center",
                             "hole_fill": "mid-grey", "input": q_in, "restored": q_out,
                             "psnr_gain_db": round(q_out["psnr"] - q_in["psnr"], 2), "train_seconds": round(secs, 1)}
    print(f"inpaint 14x14 center: PSNR {q_in['psnr']:.2f} -> {q_out['psnr']:.2f} dB, "
          f"SSIM {q_in['ssim']:.3f} -> {q_out['ssim']:.3f}")
    ff, ff_mask = Corruption("freeform:3")(clean[show] * 2 - 1, torch.Generator().manual_seed(1))
    ff_out = inp.restore(clean[show], "inpaint", mask=ff_mask)
    save_grid(torch.cat([clean[show], holed[show], out[show], ff.add(1).div(2), ff_out]),
              DOCS / "autoencoder_inpaint.png", nrow=10, scale=2)

    gain = denoise["gaussian_0.3"]["psnr_gain_db"]
    results["target"] = {"denoising_gain_db": 10.0, "measured_db": gain, "met": gain >= 10.0}
    results["total_minutes"] = round((time.perf_counter() - started) / 60, 1)

    print(f"\n{'':<28} {'input PSNR':>10} {'output PSNR':>11} {'gain':>6} {'in SSIM':>8} {'out SSIM':>8}")
    for label, r in (("denoise gaussian 0.3", denoise["gaussian_0.3"]),
                     ("denoise salt-pepper 0.1", denoise["saltpepper_0.1"]),
                     ("inpaint 14x14 center", results["inpainting"])):
        print(f"{label:<28} {r['input']['psnr']:>10.2f} {r['restored']['psnr']:>11.2f} {r['psnr_gain_db']:>6.2f} "
              f"{r['input']['ssim']:>8.3f} {r['restored']['ssim']:>8.3f}")
    print(f"denoising gain target >= 10 dB: {'met' if gain >= 10 else 'missed'} ({gain:.2f} dB); "
          f"total {results['total_minutes']} min")
    if not args.no_save:
        write_results("autoencoder", results)


if __name__ == "__main__":
    main()
