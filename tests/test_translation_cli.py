"""Image-to-image translation end to end: `train pix2pix`, `train cyclegan`, `translate`, resume,
and the refusals (unmatched pairs, misaligned pairs, empty domains, wrong directions)."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import pixelforge
from pixelforge.cli import main
from pixelforge.pipelines.translation import TranslationPipeline
from tests.synthetic import synthetic_photo

TINY = ["--width", "4", "--d-width", "4", "--depth", "3", "--d-layers", "2", "--batch-size", "2", "--no-progress"]


def _photo(rng, h, w):
    return synthetic_photo(rng, h, w, discs=1, max_radius=10, stripe_period=5.0, dark_columns=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(_photo(rng, 40, 48)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture(scope="module")
def pix2pix_run(photos, tmp_path_factory):
    run = tmp_path_factory.mktemp("p2p") / "gray"
    assert main(["train", "pix2pix", "--data", f"folder:{photos}", "--pairs", "gray", "--size", "32",
                 "--crop", "24", "--max-steps", "2", "--run-dir", str(run), *TINY]) == 0
    return run


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cyc") / "digits"
    assert main(["train", "cyclegan", "--a", "digits:1", "--b", "digits:7", "--size", "16", "--limit", "20",
                 "--max-steps", "2", "--run-dir", str(run), *TINY]) == 0
    return run


def test_pix2pix_train_then_translate(pix2pix_run, photos, tmp_path, capsys):
    cfg = json.loads((pix2pix_run / "config.json").read_text())
    assert cfg["family"] == "translation" and cfg["model"]["name"] == "pix2pix"
    assert cfg["model"]["config"]["in_channels"] == 1 and cfg["model"]["config"]["out_channels"] == 3
    assert cfg["task"]["pairs"] == "gray" and cfg["task"]["crop"] == 24
    assert cfg["model"]["config"]["residual"] is True  # the default for colourisation
    records = [json.loads(line) for line in (pix2pix_run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 2 and {"d_loss", "g_adv", "l1", "psnr"} <= set(records[-1])
    assert (pix2pix_run / "samples" / "final.png").is_file()
    out = tmp_path / "colour.png"
    # Any size: 45x37 is no multiple of the U-Net's 8; a colour input is turned gray first.
    src = tmp_path / "in.png"
    Image.fromarray(_photo(np.random.default_rng(1), 37, 45)).save(src)
    assert main(["translate", str(pix2pix_run), str(src), "-o", str(out)]) == 0
    img = Image.open(out)
    assert img.size == (45, 37) and img.mode == "RGB"
    assert "pix2pix" in capsys.readouterr().out
    # --derive and tiles give images of the input's size too.
    jpg = tmp_path / "sub" / "colour.jpg"
    assert main(["translate", str(pix2pix_run), str(src), "-o", str(jpg), "--derive", "--tile", "16"]) == 0
    assert Image.open(jpg).size == (45, 37) and Image.open(jpg).format == "JPEG"
    pipe = pixelforge.load(pix2pix_run)
    assert isinstance(pipe, TranslationPipeline) and pipe.directions == ["a2b"]


def test_pix2pix_resume_continues(pix2pix_run, tmp_path):
    run = tmp_path / "resumed"
    shutil.copytree(pix2pix_run, run)
    assert main(["train", "pix2pix", "--run-dir", str(run), "--resume", "--max-steps", "3", "--no-progress"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 3
    assert (run / "checkpoints" / "step_00000003").is_dir()
    # A resume that asks for another pairing is refused.
    assert main(["train", "pix2pix", "--run-dir", str(run), "--resume", "--pairs", "edges",
                 "--max-steps", "4", "--no-progress"]) == 2


def test_pix2pix_folder_pairs(tmp_path):
    rng = np.random.default_rng(2)
    for i in range(3):
        photo = _photo(rng, 32, 32)
        (tmp_path / "A").mkdir(exist_ok=True)
        (tmp_path / "B").mkdir(exist_ok=True)
        Image.fromarray(255 - photo).save(tmp_path / "A" / f"img{i}.png")
        Image.fromarray(photo).save(tmp_path / "B" / f"img{i}.jpg")
    run = tmp_path / "run"
    assert main(["train", "pix2pix", "--data", f"folder:{tmp_path / 'A'}", "--pairs", f"folder:{tmp_path / 'B'}",
                 "--size", "32", "--crop", "0", "--max-steps", "2", "--run-dir", str(run), *TINY]) == 0
    assert json.loads((run / "config.json").read_text())["model"]["config"]["residual"] is False
    out = tmp_path / "out.png"
    assert main(["translate", str(run), str(tmp_path / "A" / "img0.png"), "-o", str(out)]) == 0
    assert Image.open(out).size == (32, 32)
    assert main(["train", "pix2pix", "--run-dir", str(run), "--resume", "--max-steps", "3", "--no-progress"]) == 0


def test_cyclegan_train_translate_both_ways(cyclegan_run, tmp_path):
    cfg = json.loads((cyclegan_run / "config.json").read_text())
    assert cfg["model"]["name"] == "cyclegan" and cfg["task"]["b_data"] == "digits:7"
    records = [json.loads(line) for line in (cyclegan_run / "metrics.jsonl").read_text().splitlines()]
    assert {"d_loss", "g_adv", "cycle", "identity"} <= set(records[-1])
    src = tmp_path / "digit.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 20), dtype=np.uint8)).save(src)
    for direction in ("a2b", "b2a"):
        out = tmp_path / f"{direction}.png"
        assert main(["translate", str(cyclegan_run), str(src), "--direction", direction, "-o", str(out)]) == 0
        img = Image.open(out)
        assert img.size == (20, 20) and img.mode == "L"
    run = tmp_path / "resumed"
    shutil.copytree(cyclegan_run, run)
    assert main(["train", "cyclegan", "--run-dir", str(run), "--resume", "--max-steps", "3", "--no-progress"]) == 0
    assert (run / "checkpoints" / "step_00000003").is_dir()


def test_bad_inputs_are_one_line_errors(tmp_path, photos, pix2pix_run, capsys):
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    (tmp_path / "empty").mkdir()
    Image.new("RGB", (20, 20)).save(tmp_path / "A" / "x.png")
    Image.new("RGB", (40, 40)).save(tmp_path / "B" / "x.png")
    Image.new("RGB", (20, 20)).save(tmp_path / "B" / "y.png")
    cases = [
        (["train", "pix2pix", "--data", f"folder:{tmp_path / 'A'}", "--pairs", f"folder:{tmp_path / 'B'}"],
         "different sizes"),
        (["train", "pix2pix", "--data", f"folder:{photos}", "--pairs", f"folder:{tmp_path / 'B'}"],
         "no matching pairs"),
        (["train", "cyclegan", "--a", f"folder:{tmp_path / 'empty'}", "--b", "digits:7"], "domain A"),
        (["train", "cyclegan", "--a", "digits:1", "--b", f"folder:{tmp_path / 'empty'}"], "domain B"),
        (["train", "cyclegan", "--a", "digits:1"], "two domains"),
        (["train", "pix2pix", "--data", f"folder:{photos}", "--pairs", "sepia"], "unknown pairing"),
        (["translate", str(pix2pix_run), str(tmp_path / "A" / "x.png"), "--direction", "b2a"], "not b2a"),
        (["translate", str(pix2pix_run), str(tmp_path / "nothing.png")], "no image file"),
        (["train", "pix2pix", "--data", f"folder:{photos}", "--grad-accum", "2"], "--batch-size"),
    ]
    for argv, message in cases:
        run = tmp_path / "r"
        assert main([*argv, "--max-steps", "1", "--run-dir", str(run)] if argv[0] == "train" else argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert not run.exists()  # refused before a run directory was made
