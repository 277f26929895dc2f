"""Fit the overfitted codec's warm start (zoo: overfit-prior-v1): one context model and one
synthesis fitted jointly to random crops of the training photos ($PIXELFORGE_DATA/photos minus
the held-out benchmark photos), each crop with its own latents. Encoding starts its networks
from these weights instead of random ones, so fewer steps reach the same quality; the file
still carries the image's own networks, so decoding never needs the prior.

    python benchmarks/codec_prior.py [--iterations 1200] [--crops 8] [--size 192]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from codec_data import HELD_OUT, photos_dir  # noqa: E402

from pixelforge.images import read_image  # noqa: E402
from pixelforge.pipelines.overfit_codec import PRIOR, PRIOR_LAMBDA, Effort, _image_tensor, fit_prior  # noqa: E402
from pixelforge.zoo import ZOO_DIR  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=1200)
    p.add_argument("--crops", type=int, default=8)
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    photos = sorted(f for f in photos_dir().glob("*.png") if f.stem not in HELD_OUT)
    rng = np.random.default_rng(args.seed)
    chosen = [photos[i] for i in sorted(rng.choice(len(photos), args.crops, replace=False))]
    crops = []
    for photo in chosen:
        image = read_image(photo).convert("RGB")
        left, top = rng.integers(0, image.width - args.size), rng.integers(0, image.height - args.size)
        crops.append(_image_tensor(image.crop((left, top, left + args.size, top + args.size)))[0])
    prior, reached = fit_prior(crops, PRIOR_LAMBDA, Effort(args.iterations), seed=args.seed)
    from safetensors.torch import save_file

    save_file({k: v.half().contiguous() for k, v in prior.items()}, str(ZOO_DIR / f"{PRIOR}.safetensors"))
    command = "python benchmarks/codec_prior.py " + " ".join(sys.argv[1:])
    card = {"family": "codec-prior", "model": "overfit-codec networks (context model + synthesis)",
            "command": command.strip(), "lambda": PRIOR_LAMBDA, "iterations": args.iterations,
            "crops": f"{args.crops} random {args.size}x{args.size} crops, seed {args.seed}",
            "photos": [f.name for f in chosen], "held_out_never_used": list(HELD_OUT),
            "parameters": int(sum(v.numel() for v in prior.values())), "date": dt.date.today().isoformat(),
            "metrics": {"on_its_crops_last_step": reached,
                        "effect": "benchmarks/results/codec_compare.json (encodes start from this prior)"}}
    (ZOO_DIR / f"{PRIOR}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {ZOO_DIR / PRIOR}.safetensors and .json ({card['parameters']} parameters)")


if __name__ == "__main__":
    main()
