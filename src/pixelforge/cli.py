"""The ``pixelforge`` command: a thin shell over :mod:`pixelforge.api`.

Every user-caused problem surfaces as ``pixelforge: error: <one line>`` and exit status 2;
an interrupted training run saves a checkpoint and exits with 128 + the signal number.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import dryrun
from .errors import Interrupted, PixelforgeError


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {s}")
    return v


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:N")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16 autocast on CPUs that have it, fp16/bf16 AMP on CUDA")


def _add_common_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None,
                   help="fashion-mnist, mnist, digits, folder:PATH, or NAME:CLASSES (e.g. fashion-mnist:7,9)")
    # --run-dir, not only --run: torchrun's parser rejects "--run" as an abbreviation of its --run-path.
    p.add_argument("--run-dir", "--run", dest="run", default=None,
                   help="run directory (default runs/FAMILY-DATA-TIMESTAMP); under torchrun spell it --run-dir")
    p.add_argument("--resume", action="store_true", help="continue the run in --run where it stopped")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    d = p.add_argument_group("data")
    d.add_argument("--size", type=_positive_int, help="image size (default: the dataset's)")
    d.add_argument("--channels", type=int, choices=[1, 3], help="1 (grayscale) or 3 (RGB)")
    d.add_argument("--limit", type=_positive_int, help="use only the first N images (quick tries)")
    b = p.add_argument_group("budget (training stops at the first one reached)")
    b.add_argument("--epochs", type=_positive_int, help="total epochs for the run")
    b.add_argument("--minutes", type=_positive_float, help="wall-clock minutes for this invocation")
    b.add_argument("--max-steps", type=_positive_int, help="total optimisation steps for the run")
    b.add_argument("--batch-size", type=_positive_int, help="images per micro-batch and process (default 64)")
    b.add_argument("--grad-accum", type=_positive_int,
                   help="micro-batches per optimisation step (gradient accumulation, default 1)")
    b.add_argument("--checkpoint-minutes", type=_positive_float, help="checkpoint interval (default 5)")
    b.add_argument("--sync-bn", action="store_true", default=None,
                   help="under torchrun on CUDA: batch-norm statistics over the global batch")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--dry-run", action="store_true",
                   help="fast mode (as PIXELFORGE_DRY_RUN=1): 2 steps on 512 images, tiny evaluation; checks the set-up")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_runtime_args(p)


def _add_gan_train_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--conditional", action=argparse.BooleanOptionalAction, default=None,
                   help="class-conditional G and projection D (default: when the data has classes)")
    m.add_argument("--latent-dim", type=_positive_int)
    m.add_argument("--width", type=_positive_int, help="base channel width (default 64)")
    m.add_argument("--d-norm", choices=["bn", "sn", "none"], help="discriminator normalisation")
    m.add_argument("--spectral-norm", action="store_true", help="same as --d-norm sn")
    t = p.add_argument_group("training")
    t.add_argument("--loss", choices=["ns", "hinge", "lsgan", "wgan-gp"], help="GAN loss (default ns)")
    t.add_argument("--lr-g", type=_positive_float, help="generator learning rate (default 1e-3)")
    t.add_argument("--lr-d", type=_positive_float, help="discriminator learning rate (default 1e-3)")
    t.add_argument("--d-steps", type=_positive_int, help="D updates per G update (default 1)")
    t.add_argument("--ema-decay", type=float, help="EMA decay of generator weights (default 0.999)")
    t.add_argument("--diffaug", help="DiffAugment policy, e.g. color,translation,cutout")
    v = p.add_argument_group("evaluation during training")
    v.add_argument("--eval-every", type=_positive_int, help="track FID/KID every N steps; keep the best checkpoint")
    v.add_argument("--eval-samples", type=_positive_int, default=2000, help="samples per evaluation (default 2000)")
    v.add_argument("--extractor", default=None, help="judge network: auto (shipped classifier), inception, "
                                                     "a shipped model name or a classifier run")
    _add_common_train_args(p)


def _add_classifier_train_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--width", type=_positive_int, help="channels of the first stage (default 32)")
    m.add_argument("--blocks", type=_positive_int, help="conv stages, each halving the resolution (default 3)")
    m.add_argument("--dropout", type=float, help="dropout before the last layer (default 0.2)")
    m.add_argument("--norm", choices=["bn", "gn", "none"], help="batch norm (default), group norm or none")
    t = p.add_argument_group("training")
    t.add_argument("--lr", type=_positive_float, help="peak learning rate of the one-cycle schedule (default 0.05)")
    t.add_argument("--weight-decay", type=float, help="default 5e-4")
    t.add_argument("--label-smoothing", type=float, help="default 0.1")
    t.add_argument("--augment", help="comma list of flip,crop,translation,cutout,color; '' for none (default flip,crop: "
                                      "mirror, shift by up to 1/16 of the size)")
    _add_common_train_args(p)


def _int_list(s: str) -> list[int]:
    try:
        values = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a comma-separated list of whole numbers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{s!r}: give one or more positive whole numbers, e.g. 1,2,2")
    return values


def _add_diffusion_train_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model (U-Net)")
    m.add_argument("--conditional", action="store_true", help="class-conditional, for classifier-free guidance")
    m.add_argument("--width", type=_positive_int, help="channels at the first level (default 48)")
    m.add_argument("--channel-mult", type=_int_list, help="width multiplier per level (default 1,2; 1,2,2 above 32 px)")
    m.add_argument("--num-res-blocks", type=_positive_int, help="residual blocks per level (default 1)")
    m.add_argument("--patch-size", type=int, choices=[1, 2, 4], help="pixels per side the net sees as one (default 2)")
    m.add_argument("--dropout", type=float, help="default 0")
    t = p.add_argument_group("training")
    t.add_argument("--prediction", choices=["eps", "v"], help="what the net predicts: noise (default) or velocity")
    t.add_argument("--schedule", choices=["cosine", "linear"], help="noise schedule (default cosine)")
    t.add_argument("--timesteps", type=_positive_int, help="diffusion steps T (default 1000)")
    t.add_argument("--lr", type=_positive_float, help="AdamW learning rate (default 2e-3)")
    t.add_argument("--warmup-steps", type=int, help="linear learning-rate warm-up (default 200)")
    t.add_argument("--cooldown", type=float,
                   help="share of the budget over which the learning rate falls linearly to 0 (default 0.5)")
    t.add_argument("--ema-decay", type=float, help="EMA decay of the weights (default 0.999)")
    t.add_argument("--min-snr", type=float, help="Min-SNR-gamma loss weighting, 0 = plain MSE (default 5)")
    t.add_argument("--p-uncond", type=float, help="conditional: share of unlabelled steps for guidance (default 0.1)")
    v = p.add_argument_group("evaluation during training")
    v.add_argument("--eval-every", type=_positive_int, help="track FID/KID every N steps; keep the best checkpoint")
    v.add_argument("--eval-samples", type=_positive_int, default=2000, help="samples per evaluation (default 2000)")
    v.add_argument("--eval-steps", type=_positive_int, default=25, help="DDIM steps per evaluation sample (default 25)")
    v.add_argument("--extractor", default=None, help="judge network: auto, inception, a shipped model or a run")
    _add_common_train_args(p)


def _add_autoencoder_train_args(p: argparse.ArgumentParser, variational: bool) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--latent-dim", type=_positive_int,
                   help="size of the code (default 32); with --code map: channels of the code map")
    m.add_argument("--code", choices=["vector", "map"],
                   help="code shape: vector (latent_dim numbers, default) or map (a latent_dim-channel feature "
                        "map at 1/4 of the image size, 7x7 at 28 px: keeps detail for denoising / inpainting)")
    m.add_argument("--width", type=_positive_int, help="channels of the first level (default 32)")
    m.add_argument("--res-blocks", type=int, help="residual blocks at the deepest level, in the encoder and the "
                                                  "decoder each (default 0; 1 gives a stronger denoiser)")
    m.add_argument("--conditional", action="store_true",
                   help="class-conditional encoder and decoder" + (" (CVAE)" if variational else ""))
    t = p.add_argument_group("training")
    t.add_argument("--lr", type=_positive_float, help="Adam learning rate, cosine-decayed (default 2e-3)")
    t.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 0)")
    if variational:
        t.add_argument("--beta", type=float, help="weight of the KL term (default 1; > 1: beta-VAE)")
    t.add_argument("--corrupt", help="corrupt inputs on the fly (denoising / inpainting training): comma list of "
                                     "gaussian[:sigma|lo-hi], saltpepper[:p], box[:fraction], boxes[:n], "
                                     "freeform[:n], e.g. gaussian:0.3 or box,boxes,freeform")
    _add_common_train_args(p)


def _add_sr_train_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--arch", choices=["edsr", "espcn"], default="edsr",
                   help="edsr (residual network, default) or espcn (3 convolutions, fastest)")
    m.add_argument("--scale", type=int, choices=[2, 3, 4], help="upscaling factor (default 4)")
    m.add_argument("--width", type=_positive_int, help="feature channels (default 32)")
    m.add_argument("--blocks", type=int, help="residual blocks, edsr only (default 6)")
    t = p.add_argument_group("training")
    t.add_argument("--crop", type=_positive_int, help="high-resolution crop size, a multiple of the scale (default 96)")
    t.add_argument("--loss", choices=["l1", "l2"], help="pixel loss (default l1)")
    t.add_argument("--lr", type=_positive_float, help="Adam's peak learning rate (default 1e-3)")
    _add_common_train_args(p)


def _float_list(s: str) -> list[float]:
    try:
        values = [float(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a comma-separated list of numbers") from None
    if not values or any(not 0 < v < 10 for v in values):
        raise argparse.ArgumentTypeError(f"give numbers in (0, 10), comma separated, not {s!r}")
    return values


def _add_codec_train_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--prior", choices=["hyperprior", "factorized"], help="entropy model (default hyperprior)")
    m.add_argument("--width", type=_positive_int, help="channels inside the transforms (default 96)")
    m.add_argument("--latent", type=_positive_int, help="latent channels (default 128)")
    m.add_argument("--lmbda", dest="lmbdas", type=_float_list,
                   help="rate-distortion trade-offs, one per quality level, low to high "
                        "(default 0.0018,0.0035,0.0067,0.013,0.025)")
    m.add_argument("--quantization", choices=["mixed", "noise"],
                   help="what the decoder sees in training: rounded latents (mixed, default) or noisy ones")
    t = p.add_argument_group("training")
    t.add_argument("--crop", type=_positive_int, help="training crop, a multiple of 64 (default 128)")
    t.add_argument("--lr", type=_positive_float, help="Adam's peak learning rate (default 3e-4)")
    _add_common_train_args(p)


def _add_style_train_args(p: argparse.ArgumentParser, adain: bool) -> None:
    m = p.add_argument_group("model")
    if adain:
        p.add_argument("--styles", default=None, help="style images: folder:PATH or a.png,b.png (required)")
        m.add_argument("--backbone", choices=["offline", "vgg19", "vgg16"], default=None,
                       help="encoder: offline (built in, default) or VGG (needs --weights or a download)")
        m.add_argument("--widths", type=_int_list, help="decoder channels per upsampling, deepest first (default 64,32)")
    else:
        p.add_argument("--style", default=None, help="the style image (required)")
        m.add_argument("--widths", type=_int_list,
                       help="channels at 1/1, 1/2, 1/4 of the (shuffled) resolution (default 32,64,64)")
        m.add_argument("--blocks", type=int, help="residual blocks (default 4)")
        m.add_argument("--outer-kernel", type=_positive_int, help="first/last convolution kernel (default 5)")
        m.add_argument("--shuffle", type=int, choices=[1, 2, 4],
                       help="space-to-depth factor; 1 = Johnson's full-resolution first/last layers (default 2)")
    t = p.add_argument_group("training")
    t.add_argument("--crop", type=_positive_int, help="content crop size per step (default 160)")
    t.add_argument("--style-size", type=_positive_int, help="style image size in pixels (default 256)")
    t.add_argument("--style-weight", type=_non_negative_float, help="style loss weight" +
                   (" lambda (default 2)" if adain else " (default 3)"))
    if not adain:
        t.add_argument("--content-weight", type=_non_negative_float, help="content loss weight (default 5)")
        t.add_argument("--tv-weight", type=_non_negative_float, help="total-variation weight (default 30)")
        t.add_argument("--backbone", choices=["offline", "vgg19", "vgg16"], default=None,
                       help="loss network: offline (built in, default), vgg19 or vgg16")
    t.add_argument("--weights", default=None, help="VGG weights file for --backbone vgg19/vgg16")
    t.add_argument("--lr", type=_positive_float, help="Adam's peak learning rate")
    _add_common_train_args(p)


def _add_translation_model_args(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    m = p.add_argument_group("model")
    m.add_argument("--width", type=_positive_int, help="U-Net channels at the first level (default 32)")
    m.add_argument("--depth", type=_positive_int, help="U-Net levels (default 5 pix2pix, 4 CycleGAN)")
    m.add_argument("--d-width", type=_positive_int, help="PatchGAN channels at the first layer (default 32)")
    m.add_argument("--d-layers", type=_positive_int, help="PatchGAN stride-2 layers (3: 70x70 px patches)")
    t = p.add_argument_group("training")
    t.add_argument("--crop", type=int, help="random training crop in px (0: whole images)")
    t.add_argument("--gan-loss", choices=["ns", "lsgan", "hinge"], help="adversarial loss")
    t.add_argument("--lr", type=_positive_float, help="Adam's learning rate (default 2e-4, halved to 0 linearly)")
    return t


def _add_pix2pix_train_args(p: argparse.ArgumentParser) -> None:
    t = _add_translation_model_args(p)
    t.add_argument("--pairs", default=None,
                   help="how inputs are paired with the --data images: edges, gray, blur, lowres (made on the fly "
                        "from the targets), or folder:B (--data is A; files matched by name) (default edges)")
    t.add_argument("--lambda-l1", type=float, help="weight of the L1 term (default 100)")
    t.add_argument("--gan-weight", type=float, help="weight of the adversarial term; 0 = plain L1 U-Net (default 1)")
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=None,
                   help="G(x) = x + U-Net(x) (default: on for gray, blur, lowres; off for edges and folder pairs)")
    _add_common_train_args(p)


def _add_cyclegan_train_args(p: argparse.ArgumentParser) -> None:
    t = _add_translation_model_args(p)
    p.add_argument("--a", dest="data", default=None, metavar="SPEC",
                   help="domain A: folder:PATH, fashion-mnist:7, ... (same as --data)")
    p.add_argument("--b", dest="b_data", default=None, metavar="SPEC",
                   help="domain B: folder:PATH, fashion-mnist:9, ...")
    t.add_argument("--lambda-cyc", type=float, help="cycle-consistency weight (default 10)")
    t.add_argument("--lambda-id", type=float, help="identity weight relative to --lambda-cyc (default 0.5)")
    t.add_argument("--pool-size", type=int, help="generated images kept for the discriminators (default 50)")
    _add_common_train_args(p)


def _add_translate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a pix2pix or cyclegan run directory")
    p.add_argument("image")
    p.add_argument("-o", "--output", default=None, help="output image (default IMAGE_translated.png beside the input)")
    p.add_argument("--direction", choices=["a2b", "b2a"], default="a2b", help="CycleGAN: A -> B or B -> A")
    p.add_argument("--derive", action="store_true",
                   help="pix2pix with a built-in pairing: make the input from IMAGE first (e.g. its edges)")
    p.add_argument("--tile", type=_positive_int, default=None,
                   help="translate in tiles of N px (default: whole image up to 4 MP)")
    p.add_argument("--device", default="auto")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="pixelforge", description="Deep-learning image generation workbench.")
    parser.add_argument("--version", action="version", version=f"pixelforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model").add_subparsers(dest="family", required=True, metavar="FAMILY")
    _add_gan_train_args(train.add_parser("gan", help="train a GAN (DCGAN family)"))
    _add_classifier_train_args(train.add_parser("classifier", help="train a CNN classifier"))
    _add_diffusion_train_args(train.add_parser("diffusion", help="train a diffusion model (DDPM U-Net)"))
    _add_autoencoder_train_args(train.add_parser("ae", help="train a convolutional autoencoder "
                                                            "(denoising / inpainting with --corrupt)"), False)
    _add_autoencoder_train_args(train.add_parser("vae", help="train a VAE (beta-VAE, conditional VAE)"), True)
    _add_sr_train_args(train.add_parser("sr", help="train a super-resolution network on photos (folder:PATH)"))
    _add_codec_train_args(train.add_parser("codec", help="train a learned image codec on photos (folder:PATH)"))
    _add_style_train_args(train.add_parser("stylizer", help="train a fast feed-forward style network for one "
                                                            "--style on photos (folder:PATH)"), False)
    _add_style_train_args(train.add_parser("adain", help="train an AdaIN decoder: any style image at inference"),
                          True)
    _add_pix2pix_train_args(train.add_parser("pix2pix", help="train pix2pix (paired image-to-image translation)"))
    _add_cyclegan_train_args(train.add_parser("cyclegan", help="train a CycleGAN (unpaired domains --a and --b)"))
    _add_translate_args(sub.add_parser("translate", help="translate an image with a pix2pix or CycleGAN run"))

    s = sub.add_parser("sample", help="sample an image grid from a trained run")
    s.add_argument("run")
    s.add_argument("-n", type=_positive_int, default=64, help="number of images (default 64)")
    s.add_argument("-o", "--output", default=None, help="output PNG (default RUN/samples/sample.png)")
    s.add_argument("--labels", default=None, help="conditional runs: class ids or names, comma separated, or 'all'")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--nrow", type=_positive_int, default=None, help="images per row")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
    s.add_argument("--best", action="store_true", help="the best checkpoint by FID (from --eval-every)")
    s.add_argument("--device", default="auto")
    _add_diffusion_sampling_args(s)

    ip = sub.add_parser("inpaint", help="fill a region of images with a diffusion model")
    ip.add_argument("run")
    ip.add_argument("images", nargs="+")
    where = ip.add_mutually_exclusive_group(required=True)
    where.add_argument("--box", help="x,y,w,h of the region to fill, in model pixels")
    where.add_argument("--mask", help="mask image: white = keep, black = fill (resized to the model's size)")
    ip.add_argument("-o", "--output", required=True, help="output PNG: original | masked | filled, one row per image")
    ip.add_argument("--steps", type=_positive_int, default=50)
    ip.add_argument("--resample", type=_positive_int, default=4, help="RePaint re-noising jumps per step (default 4)")
    ip.add_argument("--labels", default=None)
    ip.add_argument("--guidance", type=float, default=None)
    ip.add_argument("--seed", type=int, default=0)
    ip.add_argument("--device", default="auto")

    i = sub.add_parser("interpolate", help="latent-space walk: GIF (GAN); PNG grid or GIF (autoencoder)")
    i.add_argument("run")
    i.add_argument("-o", "--output", default=None, help="output GIF, or for autoencoders a PNG grid "
                                                        "(default RUN/samples/walk.gif or interpolation.png)")
    i.add_argument("--between", nargs="+", metavar="IMAGE", default=None,
                   help="autoencoders: walk between the codes of these images, taken in pairs")
    i.add_argument("--rows", type=_positive_int, default=8, help="images walking side by side")
    i.add_argument("--frames", type=_positive_int, default=None, help="frames (GAN, default 48) or steps "
                                                                      "per walk (autoencoder, default 10)")
    i.add_argument("--fps", type=_positive_int, default=12)
    i.add_argument("--labels", default=None)
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--device", default="auto")

    c = sub.add_parser("classify", help="top-k labels of images with a trained classifier")
    c.add_argument("run")
    c.add_argument("images", nargs="+")
    c.add_argument("-k", type=_positive_int, default=3, help="labels per image (default 3)")
    c.add_argument("--tta", choices=["none", "flip", "flip-shift"],
                   help="test-time augmentation: average the logits over the image alone, with its mirror, or over "
                        "10 views (mirror and 1-px shifts; slower, a little more accurate). Default: flip for a "
                        "classifier trained with flips, else none")
    c.add_argument("--device", default="auto")

    e = sub.add_parser("explain", help="filters, feature maps and Grad-CAM of a classifier on one image")
    e.add_argument("run")
    e.add_argument("image")
    e.add_argument("-o", "--output", default=None, help="output folder (default RUN/explain/IMAGE_NAME)")
    e.add_argument("--device", default="auto")

    ev = sub.add_parser("eval", help="FID, KID, IS and precision/recall of a generator run; writes RUN/metrics.json")
    ev.add_argument("run")
    ev.add_argument("-n", "--n", type=_positive_int, default=10000, help="samples (and real images) to compare")
    ev.add_argument("--extractor", default=None, help="auto (shipped judge for the dataset), inception, "
                                                      "a shipped model name or a classifier run")
    ev.add_argument("--metrics", default="fid,kid,is,precision,recall")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="auto")
    _add_diffusion_sampling_args(ev)

    a = sub.add_parser("augment", help="does a conditional GAN's data help a classifier trained on few real images?")
    a.add_argument("run", help="a class-conditional GAN run")
    a.add_argument("--per-class", default="50,100,500", help="real images per class, comma separated")
    a.add_argument("--seeds", type=_positive_int, default=3, help="repetitions per size (default 3)")
    a.add_argument("--synthetic", type=_positive_int, default=500, help="generated images per class (default 500)")
    a.add_argument("--steps", type=_positive_int, default=400, help="classifier training steps (default 400)")
    a.add_argument("-o", "--output", default=None, help="output folder (default RUN/augmentation)")

    cas = sub.add_parser("cas", help="Classification Accuracy Score of a conditional GAN")
    cas.add_argument("run")
    cas.add_argument("--per-class", type=_positive_int, default=1000, help="generated (and real) images per class")
    cas.add_argument("--steps", type=_positive_int, default=600, help="classifier training steps (default 600)")

    r = sub.add_parser("reconstruct", help="autoencoder: each image beside its reconstruction, as one grid")
    r.add_argument("run")
    r.add_argument("images", nargs="+", help="image files or folders of them")
    r.add_argument("-o", "--output", required=True, help="output PNG")
    r.add_argument("--labels", default=None, help="conditional runs: one label per image (ids or names, comma separated)")
    r.add_argument("--device", default="auto")

    en = sub.add_parser("encode", help="autoencoder: images -> codes (.npy, N x latent_dim; a map code: "
                                       "N x latent_dim x H/4 x W/4)")
    en.add_argument("run")
    en.add_argument("images", nargs="+", help="image files or folders of them")
    en.add_argument("-o", "--output", required=True, help="output .npy file")
    en.add_argument("--labels", default=None, help="conditional runs: one label per image")
    en.add_argument("--device", default="auto")

    de = sub.add_parser("decode", help="autoencoder: codes (.npy) -> images")
    de.add_argument("run")
    de.add_argument("codes", help=".npy file of the shape encode writes: (N, latent_dim) or (N, latent_dim, H/4, W/4)")
    de.add_argument("-o", "--output", required=True, help="output folder (one PNG per code and grid.png)")
    de.add_argument("--labels", default=None, help="conditional runs: labels, cycled over the codes")
    de.add_argument("--device", default="auto")

    rs = sub.add_parser("restore", help="denoise an image or inpaint a region of it")
    rs.add_argument("run")
    rs.add_argument("image")
    rs.add_argument("--task", required=True, choices=["denoise", "inpaint"])
    where = rs.add_mutually_exclusive_group()
    where.add_argument("--mask", default=None, help="inpaint: mask PNG of the image's size, white = missing")
    where.add_argument("--box", default=None, help="inpaint: the region x,y,w,h in the image's pixels")
    rs.add_argument("-o", "--output", required=True, help="output PNG (at the model's size)")
    rs.add_argument("--corrupt", default=None, help="first damage the image with this corruption spec "
                                                    "(a demonstration on clean images), e.g. gaussian:0.3")
    rs.add_argument("--compare", default=None, help="also write input | restored side by side to this PNG")
    rs.add_argument("--labels", default=None, help="conditional runs: the image's label")
    rs.add_argument("--seed", type=int, default=0)
    rs.add_argument("--device", default="auto")

    lm = sub.add_parser("latent-map", help="autoencoder: 2-D map of test-set codes coloured by class "
                                           "(and the decoded manifold for a 2-D latent)")
    lm.add_argument("run")
    lm.add_argument("-o", "--output", default=None, help="output PNG (default RUN/latent_map.png)")
    lm.add_argument("-n", type=_positive_int, default=2000, help="test images to encode (default 2000)")
    lm.add_argument("--data", default=None, help="dataset to map (default: the run's)")
    lm.add_argument("--grid", type=_positive_int, default=15, help="manifold grid side (2-D latents, default 15)")
    lm.add_argument("--label", default=None, help="conditional runs: class of the manifold grid")
    lm.add_argument("--device", default="auto")

    u = sub.add_parser("upscale", help="super-resolve an image of any size (tiled), x2 or x4")
    u.add_argument("image")
    u.add_argument("--scale", type=int, choices=[2, 3, 4], default=4, help="upscaling factor (default 4)")
    u.add_argument("--model", default=None,
                   help="an sr run directory or a shipped model name (default: the shipped model for --scale)")
    u.add_argument("-o", "--output", default=None, help="output image (default IMAGE_xSCALE.png beside the input)")
    u.add_argument("--tile", type=_positive_int, default=None, help="tile size in input pixels (default 192)")
    u.add_argument("--max-pixels", type=_positive_int, default=None,
                   help="refuse outputs with more pixels than this (default 200000000)")
    u.add_argument("--device", default="auto")

    st = sub.add_parser("stylize", help="neural style transfer: CONTENT painted in the style of --style "
                                        "(Gatys optimisation, or a trained --model)")
    st.add_argument("content", nargs="?", default=None,
                    help="content image (with --model also a .gif or a folder of frames; leave out, or --texture, "
                         "for a texture)")
    st.add_argument("--style", default=None, help="style image(s), comma-separated: a.png or a.png,b.png")
    _add_style_args(st, default_size=None, tv_default=None)
    ml = st.add_argument_group("trained models (--model)")
    ml.add_argument("--model", default=None, help="a style run (train stylizer / train adain) or an exported .onnx")
    ml.add_argument("--runtime", choices=["torch", "onnx"], default="torch",
                    help="onnx: run the model's ONNX export with ONNX Runtime (exported to RUN/model.onnx)")
    ml.add_argument("--alpha", type=float, default=None, help="AdaIN: 0 = content ... 1 = full style (default 1)")
    ml.add_argument("--max-size", type=_positive_int, default=None,
                    help="downscale larger images to this longest side (default 2048)")
    ml.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="fp32",
                    help="torch runtime: fp32 (default) or bf16 autocast with channels_last")
    st.add_argument("--style-mix", default=None, help="weights of the styles, e.g. 0.7,0.3 (default equal)")
    st.add_argument("--content-weight", type=_non_negative_float, default=None, help="default 10")
    st.add_argument("--init", choices=["content", "noise"], default=None,
                    help="start from the content image (default) or from noise")
    st.add_argument("--preserve-color", action="store_true",
                    help="luminance-only transfer: keep the content's colours (Cb, Cr) exactly")
    st.add_argument("--texture", action="store_true", help="synthesise a texture from --style (no content)")

    tx = sub.add_parser("texture", help="texture synthesis: a new image with the Gram statistics of STYLE")
    tx.add_argument("style", help="example texture / style image(s), comma-separated")
    _add_style_args(tx, default_size=256, tv_default=1.0)
    tx.add_argument("--style-mix", default=None, help="weights of the styles, e.g. 0.7,0.3 (default equal)")

    cp = sub.add_parser("compress", help="compress an image to a .pfc file with a learned codec")
    cp.add_argument("image")
    cp.add_argument("-o", "--output", default=None, help="output .pfc file (default IMAGE.pfc beside the input)")
    cp.add_argument("--quality", type=_positive_int, default=None,
                    help="quality level, 1 (smallest file) .. the codec's highest (5 for the shipped codec); "
                         "default: the middle level")
    cp.add_argument("--model", default=None, help="a codec run directory or a shipped codec (default photos-codec-v1)")
    cp.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    dc = sub.add_parser("decompress", help="decode a .pfc file to an image")
    dc.add_argument("file")
    dc.add_argument("-o", "--output", default=None, help="output image (default FILE.png beside the input)")
    dc.add_argument("--model", default=None, help="the codec run the file was compressed with "
                                                  "(shipped codecs are found from the file's header)")
    dc.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    ex = sub.add_parser("export", help="export a style run to ONNX (run it with stylize --model FILE.onnx)")
    ex.add_argument("run")
    ex.add_argument("-o", "--output", required=True, help="output .onnx file")

    sv = sub.add_parser("serve", help="the web studio in the browser (needs pixelforge[web])")
    sv.add_argument("--runs-dir", default="runs", help="folder whose runs the studio lists (default runs)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=7860, help="default 7860")
    sv.add_argument("--output-dir", default=None, help="where generated images go (default: a temporary folder)")
    sv.add_argument("--max-upload-mb", type=_positive_float, default=8.0, help="largest accepted upload (default 8)")
    sv.add_argument("--max-megapixels", type=_positive_float, default=16.0,
                    help="largest accepted image in megapixels (default 16)")
    sv.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    sub.add_parser("datasets", help="list the named datasets and where each was found")
    sub.add_parser("models", help="list the registered models")
    return parser


def _non_negative_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {s}")
    return v


def _add_style_args(p, *, default_size: int, tv_default) -> None:
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, ...)")
    p.add_argument("--size", type=_positive_int, default=default_size,
                   help=f"longest side of the result in pixels (default {default_size or '512; with --model: as is'})")
    p.add_argument("--steps", type=_positive_int, default=300, help="optimisation steps (default 300)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="default lbfgs")
    p.add_argument("--style-weight", type=_non_negative_float, default=None, help="default 3")
    p.add_argument("--tv-weight", type=_non_negative_float, default=tv_default,
                   help=f"total-variation weight (default {tv_default or 10})")
    p.add_argument("--backbone", default="offline",
                   help="feature network: offline (built in, no download; default), vgg19 or vgg16")
    p.add_argument("--weights", default=None, help="VGG weights file (torchvision's vgg19-dcbb9e9d.pth format)")
    p.add_argument("--save-every", type=_positive_int, default=None,
                   help="also write OUTPUT_stepNNNN.png every K steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")


_COMMON_TRAIN_OPTIONS = ("batch_size", "epochs", "minutes", "max_steps", "checkpoint_minutes", "sync_bn",
                         "grad_accum")
_FAMILY_OPTIONS = {
    "gan": ("latent_dim", "width", "d_norm", "loss", "lr_g", "lr_d", "d_steps", "ema_decay", "diffaug",
            "eval_every"),
    "classifier": ("width", "blocks", "dropout", "norm", "lr", "weight_decay", "label_smoothing", "augment"),
    "diffusion": ("width", "channel_mult", "num_res_blocks", "patch_size", "dropout", "prediction", "schedule",
                  "timesteps", "lr", "warmup_steps", "cooldown", "ema_decay", "min_snr", "p_uncond", "eval_every"),
    "ae": ("latent_dim", "code", "width", "res_blocks", "lr", "weight_decay", "corrupt"),
    "vae": ("latent_dim", "code", "width", "res_blocks", "lr", "weight_decay", "corrupt", "beta"),
    "sr": ("scale", "width", "blocks", "crop", "loss", "lr"),
    "codec": ("prior", "width", "latent", "lmbdas", "quantization", "crop", "lr"),
    "stylizer": ("widths", "blocks", "outer_kernel", "shuffle", "crop", "style_size", "content_weight",
                 "style_weight", "tv_weight", "backbone", "weights", "lr"),
    "adain": ("backbone", "widths", "crop", "style_size", "style_weight", "lr"),
    "pix2pix": ("width", "depth", "d_width", "d_layers", "crop", "gan_loss", "lr", "pairs", "lambda_l1", "gan_weight",
                "residual"),
    "cyclegan": ("width", "depth", "d_width", "d_layers", "crop", "gan_loss", "lr", "b_data", "lambda_cyc",
                 "lambda_id", "pool_size"),
}


def cmd_train(args) -> int:
    from . import api

    options = {k: getattr(args, k) for k in _COMMON_TRAIN_OPTIONS + _FAMILY_OPTIONS[args.family]}
    extra = {}
    if args.family == "gan":
        if args.spectral_norm:
            if args.d_norm not in (None, "sn"):
                raise PixelforgeError("--spectral-norm contradicts --d-norm " + args.d_norm)
            options["d_norm"] = "sn"
        if options["loss"] == "wgan-gp" and options["d_norm"] is None and not args.resume:
            options["d_norm"] = "none"  # the gradient penalty needs a D without batch norm
        extra.update(conditional=args.conditional, eval_samples=args.eval_samples, extractor=args.extractor)
    if args.family == "diffusion":
        extra.update(conditional=args.conditional, eval_samples=args.eval_samples, eval_steps=args.eval_steps,
                     extractor=args.extractor)
    if args.family in ("ae", "vae"):
        extra.update(conditional=args.conditional, variational=args.family == "vae")
    if args.resume and args.run is None:
        raise PixelforgeError("--resume needs --run-dir RUN_DIR")
    if args.family == "sr":
        extra.update(model=args.arch)
    if args.family == "stylizer":
        extra.update(style=args.style)
    if args.family == "adain":
        extra.update(styles=args.styles, weights=args.weights)
    train = {"gan": api.train_gan, "classifier": api.train_classifier, "diffusion": api.train_diffusion,
             "ae": api.train_autoencoder, "vae": api.train_autoencoder, "sr": api.train_sr,
             "codec": api.train_codec, "stylizer": api.train_stylizer, "adain": api.train_adain,
             "pix2pix": api.train_pix2pix, "cyclegan": lambda a, run, **kw: api.train_cyclegan(a, None, run, **kw),
             }[args.family]
    with dryrun.enabled(args.dry_run):
        pipe = train(args.data, args.run, resume=args.resume, overwrite=args.overwrite, size=args.size,
                     channels=args.channels, limit=args.limit, device=args.device, precision=args.precision,
                     seed=args.seed, progress=not args.no_progress, **extra, **options)
    print(f"run: {pipe.path}")
    if args.family in ("gan", "diffusion", "sr", "codec", "stylizer", "adain", "pix2pix", "cyclegan"):
        print(f"samples: {pipe.path / 'samples' / 'final.png'}")
    elif args.family in ("ae", "vae"):
        if (pipe.path / "evaluation.json").is_file():
            import json

            ev = json.loads((pipe.path / "evaluation.json").read_text())
            what = "restoration" if ev.get("corrupt") else "reconstruction"
            line = f"test {what} PSNR: {ev['test_psnr']:.2f} dB on {ev['test_images']} images"
            if "test_bpd" in ev:
                line += f"; test ELBO: {ev['test_bpd']:.3f} bits/dim"
            print(line)
        print(f"reconstructions: {pipe.path / 'samples' / 'final_reconstruction.png'}")
    elif (pipe.path / "evaluation.json").is_file():
        import json

        ev = json.loads((pipe.path / "evaluation.json").read_text())
        print(f"test accuracy: {ev['test_accuracy']:.2%} on {ev['test_images']} images "
              f"(confusion matrix: {pipe.path / 'confusion.png'})")
    return 0


def _add_diffusion_sampling_args(parser) -> None:
    d = parser.add_argument_group("diffusion runs")
    d.add_argument("--steps", type=_positive_int, default=None, help="sampling steps (default 50)")
    d.add_argument("--sampler", default=None, metavar="NAME",  # checked against schedulers.SAMPLERS
                   help="ddim: deterministic (default); ddpm: ancestral, fresh noise at every step; "
                        "dpm++: DPM-Solver++(2M), deterministic and second order (better at few steps)")
    d.add_argument("--eta", type=float, default=None, help="noise level between DDIM (0) and DDPM (1)")
    d.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale for conditional runs (default 3; 1 = none)")


def _diffusion_sampling_options(args) -> dict:
    """The loader options of --steps/--sampler/--eta/--guidance that were given."""
    from .schedulers import SAMPLERS  # here, not at the top: the CLI starts without torch

    if args.sampler is not None and args.eta is not None:
        raise PixelforgeError("give --sampler or --eta, not both")
    if args.sampler is not None and args.sampler not in SAMPLERS:
        raise PixelforgeError(f"unknown sampler {args.sampler!r}; use one of {', '.join(SAMPLERS)}")
    named = SAMPLERS[args.sampler] if args.sampler else {"eta": args.eta}
    return {k: v for k, v in {"steps": args.steps, "guidance": args.guidance, **named}.items() if v is not None}


def _sampling_pipeline(args):
    """The run's pipeline for ``sample``: each generative family adds its loader options here."""
    from . import api
    from .pipelines.evaluate import check_sampling_options
    from .runs import Run

    family = Run.open(args.run).config.get("family")
    options = {"gan": {"ema": not args.no_ema, "best": args.best},
               "diffusion": {"ema": not args.no_ema, "best": args.best},
               "autoencoder": {}}
    if family not in options:
        raise PixelforgeError(f"{args.run} is a {family} run; sample needs a generator run "
                              f"({', '.join(options)})")
    sampling = _diffusion_sampling_options(args)
    check_sampling_options(args.run, family, sampling)
    return api.load(args.run, device=args.device, **options[family], **sampling)


def cmd_sample(args) -> int:
    from .images import save_grid

    pipe = _sampling_pipeline(args)
    images = pipe.sample(args.n, seed=args.seed, labels=args.labels)
    nrow = args.nrow or (pipe.num_classes if pipe.num_classes and args.labels in (None, "all") else None)
    out = Path(args.output) if args.output else pipe.path / "samples" / "sample.png"
    save_grid(images, out, nrow=nrow, scale=2 if pipe.image_size <= 32 else 1)
    print(out)
    return 0


def cmd_inpaint(args) -> int:
    import torch

    from .api import load_diffusion
    from .images import save_grid

    pipe = load_diffusion(args.run, device=args.device)
    images = pipe.load_images(args.images)
    mask = pipe.mask_from_box(args.box) if args.box else pipe.load_mask(args.mask)
    filled = pipe.inpaint(images, mask, seed=args.seed, labels=args.labels, steps=args.steps,
                          resample=args.resample, guidance=args.guidance)
    shown = images.float() / 255
    rows = [t for triple in zip(shown, shown * mask, filled) for t in triple]
    out = Path(args.output)
    save_grid(torch.stack(rows), out, nrow=3, scale=4 if pipe.image_size <= 32 else 2)
    print(out)
    return 0


def cmd_interpolate(args) -> int:
    from .api import load, load_gan
    from .runs import Run

    if Run.open(args.run).config.get("family") == "autoencoder":
        pipe = load(args.run, device=args.device)
        out = Path(args.output) if args.output else pipe.path / "samples" / "interpolation.png"
        if out.suffix.lower() not in (".png", ".gif"):
            raise PixelforgeError(f"interpolate writes a .png grid or a .gif; not {out.name}")
        images = pipe.load_images(args.between) if args.between else None
        print(pipe.save_interpolation(out, images, rows=args.rows, steps=args.frames or 10, seed=args.seed,
                                      labels=args.labels, fps=args.fps))
        return 0
    if args.between:
        raise PixelforgeError("--between is for autoencoder runs")
    pipe = load_gan(args.run, device=args.device)
    out = Path(args.output) if args.output else pipe.path / "samples" / "walk.gif"
    if out.suffix.lower() != ".gif":
        raise PixelforgeError(f"interpolate writes a GIF; give an output ending in .gif, not {out.name}")
    print(pipe.interpolate(out, rows=args.rows, frames=args.frames or 48, seed=args.seed, labels=args.labels,
                           fps=args.fps))
    return 0


def _autoencoder(args):
    from .api import load_autoencoder

    return load_autoencoder(args.run, device=args.device)


def cmd_reconstruct(args) -> int:
    pipe = _autoencoder(args)
    images = pipe.load_images(args.images)
    print(pipe.reconstruction_grid(images, args.output, labels=args.labels))
    return 0


def cmd_encode(args) -> int:
    from .pipelines.autoencoder import save_codes

    pipe = _autoencoder(args)
    codes = pipe.encode(pipe.load_images(args.images), args.labels)
    shape = "x".join(map(str, codes.shape[1:]))
    print(f"{save_codes(codes, args.output)}: {codes.shape[0]} codes of {codes[0].numel()} numbers"
          + (f" ({shape} maps)" if codes.dim() == 4 else ""))
    return 0


def cmd_decode(args) -> int:
    from .images import save_grid
    from .pipelines.autoencoder import load_codes, save_image

    pipe = _autoencoder(args)
    images = pipe.decode(load_codes(args.codes), args.labels)
    out = Path(args.output)
    for k, img in enumerate(images):
        save_image(img, out / f"decoded_{k:04d}.png")
    save_grid(images, out / "grid.png", scale=2 if pipe.image_size <= 32 else 1)
    print(f"{out}: {len(images)} images (decoded_0000.png ..., grid.png)")
    return 0


def cmd_restore(args) -> int:
    pipe = _autoencoder(args)
    print(pipe.restore_file(args.image, args.output, task=args.task, mask=args.mask, box=args.box,
                            labels=args.labels, corrupt=args.corrupt, seed=args.seed, compare=args.compare))
    if args.compare:
        print(args.compare)
    return 0


def cmd_latent_map(args) -> int:
    pipe = _autoencoder(args)
    out = Path(args.output) if args.output else pipe.path / "latent_map.png"
    for path in pipe.latent_map(out, n=args.n, data=args.data, grid=args.grid, label=args.label).values():
        print(path)
    return 0


def cmd_classify(args) -> int:
    from .api import load_classifier

    pipe = load_classifier(args.run, device=args.device, tta=args.tta)
    images = pipe.load_images(args.images)
    for path, top in zip(args.images, pipe.topk(images, args.k)):
        print(f"{path}: " + ", ".join(f"{name} {p:.1%}" for name, p in top))
    return 0


def cmd_explain(args) -> int:
    from .api import load_classifier

    pipe = load_classifier(args.run, device=args.device)
    image = pipe.load_images([args.image])[0]
    out = Path(args.output) if args.output else pipe.path / "explain" / Path(args.image).stem
    for name, path in pipe.explain(image, out).items():
        print(f"{name}: {path}")
    return 0


def cmd_eval(args) -> int:
    from .evaluation import evaluate_run

    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    result = evaluate_run(args.run, n=args.n, extractor=args.extractor, metrics=metrics, seed=args.seed,
                          device=args.device, **_diffusion_sampling_options(args))
    for k, v in result.items():
        print(f"{k:<12} {v:.4f}" if isinstance(v, float) else f"{k:<12} {v}")
    print(f"wrote {Path(args.run) / 'metrics.json'}")
    return 0


def cmd_augment(args) -> int:
    from .apps.augment import augmentation_study

    try:
        sizes = tuple(int(x) for x in args.per_class.split(","))
    except ValueError:
        raise PixelforgeError(f"--per-class takes whole numbers, e.g. 50,100,500, not {args.per_class!r}") from None
    if not sizes or min(sizes) < 1:
        raise PixelforgeError("--per-class sizes must be at least 1")
    out = Path(args.output) if args.output else Path(args.run) / "augmentation"
    augmentation_study(args.run, out, sizes=sizes, seeds=tuple(range(args.seeds)), synthetic_per_class=args.synthetic,
                       steps=args.steps, progress=True)
    print((out / "augmentation.md").read_text(), end="")
    print(f"wrote {out}/augmentation.json, augmentation.md, augmentation.png")
    return 0


def cmd_cas(args) -> int:
    from .apps.augment import classification_accuracy_score

    r = classification_accuracy_score(args.run, per_class=args.per_class, steps=args.steps, progress=True)
    print(f"CAS (trained on {r['train_images']} generated images): {r['cas']:.2%}; "
          f"same budget on real images: {r['real_accuracy']:.2%} (test set of {r['test_images']})")
    return 0


def cmd_upscale(args) -> int:

    from .pipelines.sr import DEFAULT_TILE, open_upscaler, read_image

    image = read_image(args.image)  # a bad file fails before a model is loaded
    pipe = open_upscaler(args.model, args.scale, device=args.device)
    src = Path(args.image)
    out = Path(args.output) if args.output else src.with_name(f"{src.stem}_x{args.scale}.png")
    if not out.suffix:
        raise PixelforgeError(f"give the output a file extension (e.g. {out}.png)")
    result = pipe.upscale(image, scale=args.scale, tile=args.tile or DEFAULT_TILE, max_pixels=args.max_pixels,
                          progress=True)
    _save_image(result, out)
    print(f"{out} ({image.width}x{image.height} -> {result.width}x{result.height}, x{pipe.scale} with {pipe.name})")
    return 0


def _output_path(given: str | None, default: Path, overwrite: bool) -> Path:
    out = Path(given) if given else default
    if out.exists() and not overwrite:
        raise PixelforgeError(f"{out} exists; pass --overwrite to replace it")
    return out


def cmd_compress(args) -> int:
    from .pipelines.codec import open_codec

    src = Path(args.image)
    out = _output_path(args.output, src.with_suffix(".pfc"), args.overwrite)
    codec = open_codec(args.model)
    info = codec.compress_file(src, out, args.quality, overwrite=True)
    print(f"{out}: {info['bytes']} bytes, {info['bpp']:.3f} bits per pixel "
          f"({info['width']}x{info['height']} {info['mode']}, quality {info['quality']}, {codec.model_id})")
    return 0


def cmd_decompress(args) -> int:
    from .pipelines.codec import codec_for_file

    src = Path(args.file)
    codec = codec_for_file(src, args.model)
    out = _output_path(args.output, src.with_suffix(".png"), args.overwrite)
    image = codec.decompress(src)
    _save_image(image, out)
    print(f"{out} ({image.width}x{image.height} {image.mode})")
    return 0


def _save_image(image, out: Path) -> None:
    """Write a PIL image atomically (temporary file, then rename); a bad extension is a clear error."""
    import os

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    try:
        image.save(tmp)
    except (KeyError, ValueError, OSError) as e:
        tmp.unlink(missing_ok=True)
        raise PixelforgeError(f"cannot write {out}: {e}") from None
    os.replace(tmp, out)

def cmd_translate(args) -> int:

    from .pipelines.sr import read_image
    from .pipelines.translation import load_translation

    image = read_image(args.image)  # a bad file fails before a model is loaded
    pipe = load_translation(args.run, device=args.device)
    src = Path(args.image)
    out = Path(args.output) if args.output else src.with_name(f"{src.stem}_translated.png")
    if not out.suffix:
        raise PixelforgeError(f"give the output a file extension (e.g. {out}.png)")
    result = pipe.translate(image, direction=args.direction, derive=args.derive, tile=args.tile)
    _save_image(result, out)
    print(f"{out} ({result.width}x{result.height}, {pipe.kind} {args.direction if pipe.kind == 'cyclegan' else 'a2b'})")
    return 0


def _style_output(path: str) -> Path:
    out = Path(path)
    if not out.suffix:
        raise PixelforgeError(f"give the output a file extension (e.g. {out}.png)")
    from PIL import Image

    if out.suffix.lower() not in Image.registered_extensions():
        raise PixelforgeError(f"cannot write {out.suffix} images; use .png or .jpg")
    return out


def _run_style(args, content) -> int:
    from .pipelines.style import DEFAULT_CONTENT_WEIGHT, DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT, stylize

    out = _style_output(args.output)
    styles = [part.strip() for part in args.style.split(",") if part.strip()]
    if not styles:
        raise PixelforgeError("--style needs at least one image")
    texture = content is None

    def save_step(step, result):
        result.save(out.with_name(f"{out.stem}_step{step:04d}.png"))

    def weight(value, default):
        return default if value is None else value

    tv_default = 1.0 if texture else DEFAULT_TV_WEIGHT
    result = stylize(content, styles, style_mix=args.style_mix, size=args.size, steps=args.steps,
                     optimizer=args.optimizer, content_weight=weight(getattr(args, "content_weight", None),
                                                                     DEFAULT_CONTENT_WEIGHT),
                     style_weight=weight(args.style_weight, DEFAULT_STYLE_WEIGHT),
                     tv_weight=weight(args.tv_weight, tv_default), init=getattr(args, "init", None),
                     preserve_color=getattr(args, "preserve_color", False), backbone=args.backbone,
                     weights=args.weights, save_every=args.save_every, on_save=save_step, seed=args.seed,
                     device=args.device)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        result.to_pil().save(out)
    except (KeyError, ValueError, OSError) as e:
        raise PixelforgeError(f"cannot write {out}: {e}") from None
    last = result.history[-1]
    losses = ", ".join(f"{k} {last[k]:.3g}" for k in ("content", "style", "tv") if not (texture and k == "content"))
    print(f"{out} ({result.image.shape[2]}x{result.image.shape[1]}, {args.steps} {args.optimizer} steps, "
          f"{args.backbone} backbone; {losses})")
    return 0


def cmd_stylize(args) -> int:
    if args.model is not None:
        return _run_model_style(args)
    for flag, value in (("--runtime", args.runtime != "torch"), ("--alpha", args.alpha is not None),
                        ("--max-size", args.max_size is not None), ("--precision", args.precision != "fp32")):
        if value:
            raise PixelforgeError(f"{flag} is for trained models: add --model RUN")
    if args.style is None:
        raise PixelforgeError("give the style image(s) with --style (or a trained model with --model RUN)")
    if args.content is not None and (Path(args.content).is_dir() or Path(args.content).suffix.lower() == ".gif"):
        raise PixelforgeError("GIFs and frame folders need a trained model (--model RUN): optimising every "
                              "frame with Gatys' method would take minutes per frame")
    args.size = args.size or 512
    if args.texture and args.content is not None:
        raise PixelforgeError("--texture makes a texture from --style alone; leave out the content image")
    return _run_style(args, None if args.texture else args.content)


def _run_model_style(args) -> int:
    import time

    from .pipelines.stylizer import open_stylizer

    if args.texture:
        raise PixelforgeError("--texture is Gatys texture synthesis; it takes no --model")
    if args.content is None:
        raise PixelforgeError("give the content image (or .gif, or folder of frames) to stylize with --model")
    pipe = open_stylizer(args.model, runtime=args.runtime, device=args.device, precision=args.precision)
    source = Path(args.content)
    start = time.perf_counter()
    if source.is_dir() or source.suffix.lower() == ".gif":
        out, count = pipe.stylize_frames(source, args.output, style=args.style, alpha=args.alpha, size=args.size,
                                         max_size=args.max_size)
        print(f"{out} ({count} frames, {pipe.kind} model {pipe.name}, {time.perf_counter() - start:.1f} s)")
        return 0
    out = _style_output(args.output)
    result = pipe.stylize(source, style=args.style, alpha=args.alpha, size=args.size, max_size=args.max_size)
    seconds = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        result.save(out)
    except (KeyError, ValueError, OSError) as e:
        raise PixelforgeError(f"cannot write {out}: {e}") from None
    print(f"{out} ({result.width}x{result.height}, {pipe.kind} model {pipe.name}, {seconds:.2f} s)")
    return 0


def cmd_export(args) -> int:
    from .pipelines.stylizer import export_onnx
    from .runs import Run

    family = Run.open(args.run).config.get("family")
    if family != "style":
        raise PixelforgeError(f"{args.run} is a {family} run; export writes ONNX for style runs "
                              "(train stylizer / train adain)")
    print(export_onnx(args.run, args.output))
    return 0


def cmd_texture(args) -> int:
    return _run_style(args, None)


def cmd_datasets(args) -> int:
    from .data import list_datasets, search_path

    print("search path: " + ", ".join(str(p) for p in search_path()))
    for d in list_datasets():
        where = d.get("location") or f"not found: will download from {d.get('url')}"
        print(f"  {d['name']:<15} {d['description']}\n  {'':<15} -> {where}")
    print("  folder:PATH     any image folder (recursive; class subfolders become labels)")
    return 0


def cmd_serve(args) -> int:
    from .web import serve

    if not 0 <= args.port <= 65535:
        raise PixelforgeError(f"--port must be 0..65535, not {args.port}")
    serve(args.runs_dir, host=args.host, port=args.port, output_dir=args.output_dir, device=args.device,
          max_upload_mb=args.max_upload_mb, max_pixels=int(args.max_megapixels * 1e6))
    return 0


def cmd_models(args) -> int:
    from .registry import get_entry, list_models

    for name in list_models():
        e = get_entry(name)
        print(f"{name:<12} [{e.family}] {e.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="pixelforge: %(levelname)s: %(message)s")
    handler = {"train": cmd_train, "sample": cmd_sample, "interpolate": cmd_interpolate, "inpaint": cmd_inpaint,
               "classify": cmd_classify, "explain": cmd_explain, "eval": cmd_eval,
               "augment": cmd_augment, "cas": cmd_cas, "reconstruct": cmd_reconstruct, "encode": cmd_encode,
               "decode": cmd_decode, "restore": cmd_restore, "latent-map": cmd_latent_map, "upscale": cmd_upscale,
               "compress": cmd_compress, "decompress": cmd_decompress, "export": cmd_export,
               "stylize": cmd_stylize, "texture": cmd_texture, "serve": cmd_serve, "datasets": cmd_datasets,
               "models": cmd_models, "translate": cmd_translate}[args.command]
    try:
        return handler(args)
    except Interrupted as e:
        print(f"pixelforge: {e}", file=sys.stderr)
        return 128 + e.signum
    except PixelforgeError as e:
        print(f"pixelforge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pixelforge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
