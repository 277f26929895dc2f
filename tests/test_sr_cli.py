"""Super-resolution end to end: train on a tiny folder, upscale files (RGB, gray, RGBA), refusals."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import pixelforge
from pixelforge.cli import main
from pixelforge.pipelines.sr import SHIPPED, SRPipeline, load_shipped_sr
from tests.synthetic import synthetic_photo


_photo = synthetic_photo


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(_photo(rng, 80, 96)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture(scope="module")
def sr_run(photos, tmp_path_factory):
    run = tmp_path_factory.mktemp("sr") / "x2"
    assert main(["train", "sr", "--data", f"folder:{photos}", "--size", "64", "--scale", "2", "--arch", "espcn",
                 "--width", "8", "--crop", "32", "--max-steps", "6", "--batch-size", "4", "--run-dir", str(run),
                 "--no-progress"]) == 0
    return run


def test_training_run(sr_run):
    cfg = json.loads((sr_run / "config.json").read_text())
    assert cfg["family"] == "sr" and cfg["model"]["name"] == "espcn" and cfg["model"]["config"]["scale"] == 2
    assert cfg["task"]["crop"] == 32 and cfg["data"]["size"] == 64
    records = [json.loads(line) for line in (sr_run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 6 and "psnr_gain" in records[-1]
    assert Image.open(sr_run / "samples" / "final.png").height == 3 * (32 + 2) + 2  # bicubic, network, original
    assert isinstance(pixelforge.load(sr_run), SRPipeline)
    assert isinstance(pixelforge.load_sr(sr_run), pixelforge.SRPipeline) and pixelforge.train_sr


def test_resume_continues(sr_run, tmp_path):
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(sr_run, run)
    assert main(["train", "sr", "--run-dir", str(run), "--resume", "--max-steps", "8", "--no-progress"]) == 0
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 8


@pytest.mark.parametrize("mode,channels", [("RGB", 3), ("L", 1), ("RGBA", 4), ("P", 3)])
def test_upscale_file(sr_run, tmp_path, mode, channels, capsys):
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(_photo(rng, 37, 50))
    src = tmp_path / "in.png"
    if mode == "RGBA":
        alpha = Image.fromarray((np.linspace(0, 255, 50)[None].repeat(37, 0)).astype(np.uint8))
        rgb.putalpha(alpha)
        rgb.save(src)
    else:
        rgb.convert(mode).save(src)
    out = tmp_path / "out.png"
    assert main(["upscale", str(src), "--scale", "2", "--model", str(sr_run), "-o", str(out), "--tile", "16"]) == 0
    assert "(50x37 -> 100x74, x2 with run:" in capsys.readouterr().out
    img = Image.open(out)
    assert img.size == (100, 74) and len(img.getbands()) == channels
    # Tiles or not, the same picture.
    whole = pixelforge.load(sr_run).upscale(src, tile=1000)
    assert np.abs(np.asarray(img, dtype=int) - np.asarray(whole, dtype=int)).max() <= 1
    if mode == "RGBA":
        a = np.asarray(img)[:, :, 3].astype(int)
        assert a[:, 0].mean() < 10 and a[:, -1].mean() > 245  # the alpha ramp survives


def test_default_output_name(sr_run, tmp_path):
    src = tmp_path / "pic.png"
    Image.fromarray(_photo(np.random.default_rng(2), 20, 20)).save(src)
    assert main(["upscale", str(src), "--scale", "2", "--model", str(sr_run)]) == 0
    assert Image.open(tmp_path / "pic_x2.png").size == (40, 40)


def _err(capsys):
    return capsys.readouterr().err


def test_refusals(sr_run, tmp_path, capsys):
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 40, 3), np.uint8)).save(small)
    ok = tmp_path / "ok.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(ok)
    out = str(tmp_path / "o.png")
    assert main(["upscale", str(small), "--scale", "2", "--model", str(sr_run), "-o", out]) == 2
    assert "smaller than one tile" in _err(capsys)
    assert main(["upscale", str(ok), "--scale", "4", "--model", str(sr_run), "-o", out]) == 2
    assert "x2, not x4" in _err(capsys)
    assert main(["upscale", str(ok), "--scale", "2", "--model", str(sr_run), "-o", out, "--max-pixels", "5000"]) == 2
    assert "above the limit" in _err(capsys)
    assert main(["upscale", str(ok), "--scale", "3", "-o", out]) == 2
    assert "no shipped model for x3" in _err(capsys)
    assert main(["upscale", str(ok), "--scale", "2", "--model", "no-such-model", "-o", out]) == 2
    assert "neither a run directory nor a shipped super-resolution model" in _err(capsys)
    assert main(["upscale", str(tmp_path / "missing.png"), "-o", out]) == 2
    assert "no image file" in _err(capsys)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert main(["upscale", str(tmp_path / "junk.png"), "-o", out]) == 2
    assert "cannot read" in _err(capsys)
    assert not (tmp_path / "o.png").exists()
    with pytest.raises(SystemExit):
        main(["upscale", str(ok), "--scale", "5"])


def test_train_refusals(photos, tmp_path, capsys):
    run = str(tmp_path / "r")
    assert main(["train", "sr", "--data", f"folder:{photos}", "--size", "64", "--scale", "4", "--crop", "30",
                 "--max-steps", "1", "--run-dir", run, "--no-progress"]) == 2
    assert "multiple of scale" in _err(capsys)
    assert main(["train", "sr", "--data", f"folder:{photos}", "--size", "32", "--crop", "48",
                 "--max-steps", "1", "--run-dir", run, "--overwrite", "--no-progress"]) == 2
    assert "smaller than the 48 px training crop" in _err(capsys)


@pytest.mark.parametrize("scale", sorted(SHIPPED))
def test_shipped_weights(scale, tmp_path, capsys):
    """`pixelforge upscale IMG --scale S` with no --model uses the shipped weights, which beat bicubic."""
    from pixelforge.models.sr import downscale, upscale_bicubic

    pipe = load_shipped_sr(SHIPPED[scale], device="cpu")
    assert pipe.scale == scale
    hr = torch.from_numpy(_photo(np.random.default_rng(3), 96, 96)).permute(2, 0, 1).float() / 255
    lr = downscale(hr[None], scale)[0]
    sr = pipe.upscale_tensor(lr)
    bic = upscale_bicubic(lr[None], scale)[0].clamp(0, 1)
    assert ((sr - hr) ** 2).mean() < ((bic - hr) ** 2).mean()
    src = tmp_path / "lr.png"
    Image.fromarray((lr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(src)
    assert main(["upscale", str(src), "--scale", str(scale), "-o", str(tmp_path / "hr.png")]) == 0
    assert Image.open(tmp_path / "hr.png").size == (96, 96)
    assert SHIPPED[scale] in capsys.readouterr().out


def test_shipped_sr_is_not_a_judge():
    from pixelforge import zoo
    from pixelforge.errors import PixelforgeError

    assert zoo.list_pretrained("sr") == ["photos-sr-x2-v1", "photos-sr-x4-v1"]
    assert "photos-sr-x4-v1" not in zoo.list_pretrained("classifier")
    with pytest.raises(PixelforgeError, match="not a classifier"):
        zoo.load_pretrained("photos-sr-x4-v1")
