"""The codec end to end: train on a tiny folder, compress/decompress files through the CLI,
decode in another process bit for bit, and the refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pixelforge
from pixelforge.cli import main
from pixelforge.pipelines.codec import CodecPipeline, load_codec_run


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(3):
        yy, xx = np.mgrid[0:96, 0:128]
        img = np.stack([xx / 128, yy / 96, 0.5 + 0.5 * np.sin(xx / (3 + i))], -1) + rng.normal(0, 0.03, (96, 128, 3))
        Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture(scope="module")
def codec_run(photos, tmp_path_factory):
    run = tmp_path_factory.mktemp("codec") / "run"
    assert main(["train", "codec", "--data", f"folder:{photos}", "--size", "96", "--width", "8", "--latent", "8",
                 "--lmbda", "0.005,0.05", "--crop", "64", "--max-steps", "4", "--batch-size", "2",
                 "--run-dir", str(run), "--no-progress"]) == 0
    return run


def test_training_run(codec_run):
    cfg = json.loads((codec_run / "config.json").read_text())
    assert cfg["family"] == "codec" and cfg["model"]["config"]["lmbdas"] == [0.005, 0.05]
    records = [json.loads(line) for line in (codec_run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 4 and {"bpp", "psnr", "loss"} <= set(records[-1])
    assert (codec_run / "samples" / "final.png").is_file()
    pipe = pixelforge.load(codec_run)
    assert isinstance(pipe, CodecPipeline) and pipe.qualities == 2 and pipe.model_id.startswith("run:")


def test_resume_continues(codec_run, tmp_path):
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(codec_run, run)
    assert main(["train", "codec", "--run-dir", str(run), "--resume", "--max-steps", "6", "--no-progress"]) == 0
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 6


def test_compress_decompress_files(codec_run, photos, tmp_path, capsys):
    src = photos / "p0.png"
    pfc, png = tmp_path / "p0.pfc", tmp_path / "p0.png"
    assert main(["compress", str(src), "-o", str(pfc), "--quality", "2", "--model", str(codec_run)]) == 0
    assert "bits per pixel" in capsys.readouterr().out
    assert main(["decompress", str(pfc), "-o", str(png), "--model", str(codec_run)]) == 0
    out = Image.open(png)
    assert out.size == (128, 96) and out.mode == "RGB"
    # nothing is overwritten without asking
    assert main(["compress", str(src), "-o", str(pfc), "--model", str(codec_run), "--quality", "1"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["compress", str(src), "-o", str(pfc), "--model", str(codec_run), "--quality", "1",
                 "--overwrite"]) == 0


def test_decoding_in_another_process_is_bit_exact(codec_run, photos, tmp_path):
    """Encode in one process, decode in a fresh one (another thread count): the same pixels."""
    pfc = tmp_path / "x.pfc"
    pipe = load_codec_run(codec_run)
    pfc.write_bytes(pipe.compress(photos / "p1.png", 2))
    here = np.asarray(pipe.decompress(pfc))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(pixelforge.__file__).parents[1])}
    out = tmp_path / "other.png"
    subprocess.run([sys.executable, "-m", "pixelforge.cli", "decompress", str(pfc), "-o", str(out),
                    "--model", str(codec_run)], check=True, env=env, capture_output=True)
    assert np.array_equal(np.asarray(Image.open(out)), here)
    encoded_elsewhere = tmp_path / "y.pfc"
    subprocess.run([sys.executable, "-m", "pixelforge.cli", "compress", str(photos / "p1.png"), "-o",
                    str(encoded_elsewhere), "--quality", "2", "--model", str(codec_run)], check=True, env=env,
                   capture_output=True)
    assert encoded_elsewhere.read_bytes() == pfc.read_bytes()


@pytest.mark.parametrize("argv, message", [
    (["compress", "{photos}/missing.png", "--model", "{run}"], "no image file"),
    (["compress", "{photos}/p0.png", "--model", "{run}", "--quality", "7", "-o", "{tmp}/a.pfc"], "quality must be 1..2"),
    (["compress", "{photos}/p0.png", "--model", "nonexistent-codec", "-o", "{tmp}/a.pfc"], "neither a run directory"),
    (["decompress", "{photos}/p0.png", "-o", "{tmp}/a.png", "--model", "{run}"], "wrong magic"),
    (["decompress", "{tmp}/none.pfc", "-o", "{tmp}/a.png"], "no file"),
])
def test_refusals(codec_run, photos, tmp_path, capsys, argv, message):
    argv = [a.format(photos=photos, run=codec_run, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_run_file_needs_its_run(codec_run, photos, tmp_path, capsys):
    pfc = tmp_path / "x.pfc"
    assert main(["compress", str(photos / "p0.png"), "-o", str(pfc), "--model", str(codec_run)]) == 0
    assert main(["decompress", str(pfc), "-o", str(tmp_path / "x.png")]) == 2
    assert "pass that run with --model" in capsys.readouterr().err


def test_a_non_image_is_refused(codec_run, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    assert main(["compress", str(bad), "--model", str(codec_run)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_export_to_the_zoo_keeps_the_coding_tables(codec_run, photos, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    import pixelforge.zoo as zoo
    from pixelforge.pipelines.codec import export_codec, open_codec

    path = export_codec(codec_run, "tiny-codec-v0", "pixelforge train codec ...", dest=tmp_path)
    weights = load_file(str(path))
    assert weights["density.pmf"].dtype.is_floating_point is False  # integer tables, not halved
    assert weights["g_a.0.weight"].dtype.itemsize == 2
    card = json.loads((tmp_path / "tiny-codec-v0.json").read_text())
    assert card["family"] == "codec" and card["model"] == "codec" and card["steps"] == 4
    monkeypatch.setattr(zoo.catalog, "ZOO_DIR", tmp_path)  # the catalogue (cards, networks) reads it
    shipped = open_codec("tiny-codec-v0")
    out = shipped.decompress(shipped.compress(photos / "p2.png", 1))
    assert out.size == (128, 96) and shipped.model_id == "tiny-codec-v0"


# -- the overfitted codec (the default) -------------------------------------------------------------

def test_the_default_codec_fits_each_image_and_needs_no_model(photos, tmp_path, capsys):
    small = tmp_path / "small.png"
    Image.open(photos / "p0.png").crop((0, 0, 48, 32)).save(small)
    pfc, png = tmp_path / "small.pfc", tmp_path / "small_decoded.png"
    assert main(["compress", str(small), "-o", str(pfc), "--quality", "4", "--effort", "fast"]) == 0
    out = capsys.readouterr().out
    assert "overfit" in out and "dB PSNR" in out and "effort fast" in out
    assert pfc.read_bytes()[4] == 2  # a version-2 .pfc file
    assert main(["decompress", str(pfc), "-o", str(png)]) == 0  # found from the header, no --model
    decoded = np.asarray(Image.open(png), dtype=float)
    psnr = 10 * np.log10(255 ** 2 / np.mean((decoded - np.asarray(Image.open(small), dtype=float)) ** 2))
    assert f"{psnr:.2f} dB PSNR" in out


def test_effort_is_for_the_overfitted_codec_only(codec_run, photos, tmp_path, capsys):
    argv = ["compress", str(photos / "p0.png"), "-o", str(tmp_path / "a.pfc"), "--model", str(codec_run),
            "--effort", "best"]
    assert main(argv) == 2
    assert "--effort applies to the overfitted codec only" in capsys.readouterr().err
