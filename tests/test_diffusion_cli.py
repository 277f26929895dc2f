"""The diffusion family end to end on tiny runs: train, resume, sample (DDIM/DDPM, guidance),
inpaint, eval, and the errors users meet."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import pixelforge
from pixelforge.cli import main
from pixelforge.errors import PixelforgeError

TINY_UNET = dict(size=28, width=8, num_res_blocks=1, batch_size=32, progress=False)


@pytest.fixture(scope="module")
def diffusion_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("diff") / "uncond"
    pixelforge.train_diffusion("digits", run, max_steps=4, seed=0, **TINY_UNET)
    return run


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("diff") / "cond"
    pixelforge.train_diffusion("digits", run, max_steps=3, conditional=True, seed=1, **TINY_UNET)
    return run


def test_train_writes_a_run(diffusion_run):
    cfg = json.loads((diffusion_run / "config.json").read_text())
    assert cfg["family"] == "diffusion" and cfg["model"]["name"] == "unet"
    assert cfg["task"]["schedule"] == "cosine" and cfg["task"]["prediction"] == "eps" and cfg["task"]["cooldown"] == 0.5
    assert (diffusion_run / "samples" / "final.png").is_file() and (diffusion_run / "loss.png").is_file()
    losses = [json.loads(line)["loss"] for line in (diffusion_run / "metrics.jsonl").read_text().splitlines()]
    assert losses and all(np.isfinite(losses))


def test_short_epochs_share_the_sample_grid(tmp_path):
    """The epoch's grid runs the sampler, so short epochs share it over more steps than a GAN's."""
    from pixelforge.training.diffusion import DiffusionTask
    from pixelforge.training.gan import GANTask

    assert DiffusionTask.epoch_work_steps > GANTask.epoch_work_steps
    run = tmp_path / "short"
    pixelforge.train_diffusion("digits", run, epochs=3, limit=16, seed=0, **{**TINY_UNET, "size": 16, "batch_size": 16})
    assert sorted(p.name for p in (run / "samples").glob("epoch_*.png")) == ["epoch_001.png", "epoch_003.png"]


def test_cli_train_resume_and_sample(tmp_path, capsys):
    run = tmp_path / "cli"
    args = ["train", "diffusion", "--data", "digits", "--size", "16", "--width", "8", "--channel-mult", "1,2",
            "--num-res-blocks", "1", "--batch-size", "16", "--no-progress", "--run-dir", str(run)]
    assert main(args + ["--max-steps", "2", "--prediction", "v", "--schedule", "linear", "--cooldown", "0.2"]) == 0
    assert json.loads((run / "config.json").read_text())["task"]["cooldown"] == 0.2
    assert main(["train", "diffusion", "--run-dir", str(run), "--resume", "--max-steps", "4", "--no-progress"]) == 0
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 4
    assert main(["train", "diffusion", "--run-dir", str(run), "--resume", "--max-steps", "5", "--prediction", "eps"]) == 2
    assert "different settings" in capsys.readouterr().err
    out = tmp_path / "s.png"
    for sampler in (["--sampler", "ddim"], ["--sampler", "ddpm"], ["--sampler", "dpm++"], ["--eta", "0.5"]):
        assert main(["sample", str(run), "-n", "6", "--steps", "5", "-o", str(out), "--overwrite", *sampler]) == 0
        assert Image.open(out).size[0] > 16
        assert "sample: 100%" in capsys.readouterr().err  # a progress bar over the sampler's steps


def test_sampling_is_seeded(diffusion_run):
    pipe = pixelforge.load(diffusion_run)
    a = pipe.sample(3, seed=5, steps=4)
    assert a.shape == (3, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, pipe.sample(3, seed=5, steps=4))
    dpm = pipe.sample(3, seed=5, steps=4, solver="dpm++")
    assert torch.equal(dpm, pipe.sample(3, seed=5, steps=4, solver="dpm++")) and not torch.allclose(a, dpm)
    assert torch.equal(dpm, pixelforge.load(diffusion_run, solver="dpm++").sample(3, seed=5, steps=4))
    with pytest.raises(PixelforgeError, match="deterministic"):
        pipe.sample(3, steps=4, solver="dpm++", eta=1.0)
    assert not torch.equal(a, pipe.sample(3, seed=6, steps=4))


def test_guidance_mixes_conditional_and_unconditional(conditional_run):
    pipe = pixelforge.load(conditional_run)
    with torch.no_grad():
        for p in pipe.unet.parameters():  # a few steps leave the output layer near zero
            p.add_(torch.randn_like(p) * 0.05)
    x, t, y = torch.randn(2, 1, 28, 28), torch.tensor([10, 500]), torch.tensor([3, 7])
    cond = pipe._denoiser(y, 1.0)(x, t)
    uncond = pipe._denoiser(torch.full_like(y, 10), 1.0)(x, t)
    guided = pipe._denoiser(y, 3.0)(x, t)
    # bf16 autocast on capable CPUs: compare at its precision
    assert torch.allclose(guided, uncond + 3 * (cond - uncond), atol=0.05 * guided.abs().max().item())
    images = pipe.sample(4, labels="1,2", steps=3, guidance=2.0)
    assert images.shape == (4, 1, 28, 28)


def test_inpaint_keeps_the_known_region(diffusion_run, tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray((np.arange(28 * 28).reshape(28, 28) % 256).astype(np.uint8)).save(src)
    out = tmp_path / "filled.png"
    assert main(["inpaint", str(diffusion_run), str(src), "--box", "7,7,14,14", "-o", str(out), "--steps", "4",
                 "--resample", "2"]) == 0
    assert "inpaint: 100%" in capsys.readouterr().err
    pipe = pixelforge.load(diffusion_run)
    images = pipe.load_images([src])
    mask = pipe.mask_from_box("7,7,14,14")
    filled = pipe.inpaint(images, mask, steps=4, resample=2)
    keep = mask.bool().expand_as(filled)
    assert torch.allclose(filled[keep], images.float()[keep] / 255, atol=1e-6)
    assert not torch.allclose(filled[~keep], images.float()[~keep] / 255, atol=0.05)
    mask_file = tmp_path / "mask.png"
    m = np.full((56, 56), 255, np.uint8)
    m[10:30, 10:30] = 0
    Image.fromarray(m).save(mask_file)
    assert main(["inpaint", str(diffusion_run), str(src), "--mask", str(mask_file), "-o", str(out), "--steps", "3",
                 "--overwrite"]) == 0
    Image.fromarray(np.full((20, 30), 0, np.uint8)).save(mask_file)
    assert main(["inpaint", str(diffusion_run), str(src), "--mask", str(mask_file), "-o", str(out), "--overwrite"]) == 2
    assert "must be square" in capsys.readouterr().err
    assert main(["inpaint", str(diffusion_run), str(src), "--box", "20,20,14,14", "-o", str(out), "--overwrite"]) == 2
    assert "does not fit" in capsys.readouterr().err


def test_bad_inputs(diffusion_run, tiny_run, capsys):
    assert main(["sample", str(diffusion_run), "--steps", "5000"]) == 2
    assert "steps must lie in 1..1000" in capsys.readouterr().err
    assert main(["sample", str(diffusion_run), "--labels", "3"]) == 2
    assert "unconditional" in capsys.readouterr().err
    assert main(["sample", str(tiny_run), "--steps", "5"]) == 2
    assert "sampling option(s) steps do not apply to" in capsys.readouterr().err
    assert main(["sample", str(diffusion_run), "--latent-scale", "1.2"]) == 2
    assert "latent_scale do not apply to" in capsys.readouterr().err
    assert main(["sample", str(diffusion_run), "--sampler", "ddpm", "--eta", "0.3"]) == 2
    assert main(["sample", str(diffusion_run), "--sampler", "euler"]) == 2
    assert "unknown sampler 'euler'; use one of ddim, ddpm, dpm++" in capsys.readouterr().err
    assert main(["inpaint", str(tiny_run), "x.png", "--box", "1,1,2,2", "-o", "o.png"]) == 2
    assert "needs a diffusion run" in capsys.readouterr().err
    assert main(["train", "diffusion", "--data", "digits", "--size", "30", "--dry-run"]) == 2
    assert "divisible" in capsys.readouterr().err


def test_eval_accepts_diffusion_runs(diffusion_run, tmp_path, capsys, monkeypatch):
    judge = tmp_path / "judge"
    pixelforge.train_classifier("digits", judge, size=28, epochs=1, batch_size=64, width=8, progress=False)
    assert main(["eval", str(diffusion_run), "-n", "20", "--extractor", str(judge), "--metrics", "fid,kid"]) == 0
    m = json.loads((diffusion_run / "metrics.json").read_text())
    assert m["fid"] > 0 and m["sampling"] == {"steps": 50, "eta": 0.0, "solver": "ddim"}  # the defaults used
    assert main(["eval", str(diffusion_run), "-n", "20", "--extractor", str(judge), "--metrics", "fid",
                 "--sampler", "dpm++", "--steps", "3"]) == 0
    m2 = json.loads((diffusion_run / "metrics.json").read_text())
    assert m2["sampling"] == {"steps": 3, "eta": 0.0, "solver": "dpm++"}
    # ... and the options reach the sampler itself (an untrained model's samples saturate, so the
    # two FIDs can be equal: look at the calls instead).
    from pixelforge.pipelines.diffusion import DiffusionPipeline

    calls, sample = [], DiffusionPipeline.sample
    monkeypatch.setattr(DiffusionPipeline, "sample",
                        lambda self, *a, **kw: calls.append((kw.get("steps") or self.steps,
                                                             kw.get("solver") or self.solver)) or sample(self, *a, **kw))
    assert main(["eval", str(diffusion_run), "-n", "20", "--extractor", str(judge), "--metrics", "fid",
                 "--sampler", "dpm++", "--steps", "3"]) == 0
    assert calls and set(calls) == {(3, "dpm++")}, calls
    assert main(["eval", str(judge), "-n", "20", "--steps", "3"]) == 2
    assert "do not apply to" in capsys.readouterr().err
