"""The command line: outputs of each command, and clear one-line errors for bad input."""

import subprocess
import sys

import pytest
from PIL import Image

from pixelforge.cli import main


def run_cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code, err, pattern):
    assert code == 2
    assert "Traceback" not in err
    assert pattern in err
    assert err.strip().splitlines()[-1].startswith(("pixelforge: error:", "usage:")) or "error:" in err


def test_sample_grid(tiny_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    code, stdout, _ = run_cli(capsys, "sample", str(tiny_run), "-n", "16", "-o", str(out), "--nrow", "4")
    assert code == 0 and str(out) in stdout
    img = Image.open(out)
    assert img.size == (4 * (28 + 2) + 2,) * 2 * 1 or img.size[0] == img.size[1]
    assert img.size[0] == (4 * 30 + 2) * 2  # 4 images per row, 2x upscaled


def test_sample_conditional_by_class_name(tiny_conditional_run, tmp_path, capsys):
    out = tmp_path / "twos.png"
    code, _, err = run_cli(capsys, "sample", str(tiny_conditional_run), "-n", "4", "--labels", "2,7", "-o", str(out))
    assert code == 0, err
    code, _, err = run_cli(capsys, "sample", str(tiny_conditional_run), "--labels", "42", "-o", str(out), "--overwrite")
    assert_clean_error(code, err, "out of range")


def test_sample_latent_scale(tiny_run, tmp_path, monkeypatch, capsys):
    """``--latent-scale`` reaches the GAN's sampler (z ~ N(0, s^2 I)); a scale that is not positive
    is refused by the parser."""
    from pixelforge.pipelines.gan import GANPipeline

    scales, generate = [], GANPipeline.generate
    monkeypatch.setattr(GANPipeline, "generate",
                        lambda self, z, *a, **kw: scales.append(float(z.std())) or generate(self, z, *a, **kw))
    for scale in ("1", "0.5"):
        code, _, err = run_cli(capsys, "sample", str(tiny_run), "-n", "256", "--latent-scale", scale,
                               "-o", str(tmp_path / f"x{scale}.png"))
        assert code == 0, err
    assert abs(scales[0] - 1) < 0.1 and abs(scales[1] - 0.5) < 0.05, scales
    code, _, err = run_cli(capsys, "sample", str(tiny_run), "--latent-scale", "0", "-o", str(tmp_path / "x.png"))
    assert_clean_error(code, err, "--latent-scale")


def test_labels_on_unconditional_run(tiny_run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "sample", str(tiny_run), "--labels", "1", "-o", str(tmp_path / "x.png"))
    assert_clean_error(code, err, "unconditional")


def test_interpolate_gif(tiny_run, tmp_path, capsys):
    out = tmp_path / "walk.gif"
    code, _, err = run_cli(capsys, "interpolate", str(tiny_run), "-o", str(out), "--rows", "3", "--frames", "6")
    assert code == 0, err
    gif = Image.open(out)
    assert gif.n_frames == 6
    code, _, err = run_cli(capsys, "interpolate", str(tiny_run), "-o", str(tmp_path / "walk.png"))
    assert_clean_error(code, err, ".gif")


def test_outputs_are_not_replaced_unasked_and_limits_are_checked_first(tiny_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    code, _, err = run_cli(capsys, "sample", str(tiny_run), "-n", "4", "-o", str(out))
    assert code == 0, err
    before = out.read_bytes()
    code, _, err = run_cli(capsys, "sample", str(tiny_run), "-n", "9", "-o", str(out))
    assert_clean_error(code, err, "exists; pass --overwrite")
    assert out.read_bytes() == before
    code, _, err = run_cli(capsys, "sample", str(tiny_run), "-n", "9", "-o", str(out), "--overwrite")
    assert code == 0 and out.read_bytes() != before
    code, _, err = run_cli(capsys, "sample", str(tiny_run), "-o", str(tmp_path / "grid.xyz"))
    assert_clean_error(code, err, "ending in .png")
    code, _, err = run_cli(capsys, "sample", str(tiny_run), "-n", "100000000", "-o", str(tmp_path / "big.png"))
    assert_clean_error(code, err, "must be from 1 to 4096")
    walk = tmp_path / "walk.gif"
    walk.write_bytes(b"mine")
    code, _, err = run_cli(capsys, "interpolate", str(tiny_run), "-o", str(walk), "--frames", "4")
    assert_clean_error(code, err, "exists; pass --overwrite")
    assert walk.read_bytes() == b"mine"
    code, _, err = run_cli(capsys, "interpolate", str(tiny_run), "-o", str(walk), "--frames", "100000000")
    assert_clean_error(code, err, "must be from 1 to 500")


def test_datasets_and_models(capsys):
    code, out, _ = run_cli(capsys, "datasets")
    assert code == 0 and "fashion-mnist" in out and "digits" in out and "search path" in out
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "dcgan" in out


def test_train_dry_run(tmp_path, capsys):
    run = tmp_path / "dry"
    code, out, err = run_cli(capsys, "train", "gan", "--data", "digits", "--size", "32", "--channels", "3",
                             "--width", "8", "--dry-run", "--run", str(run), "--no-progress")
    assert code == 0, err
    assert (run / "samples" / "final.png").is_file()


@pytest.mark.parametrize("argv,pattern", [
    (["train", "gan", "--data", "imagenet-21k", "--max-steps", "1"], "unknown dataset"),
    (["train", "gan", "--data", "digits", "--size", "48", "--max-steps", "1"], "not supported"),
    (["train", "gan", "--data", "digits", "--size", "0"], "at least 1"),
    (["train", "gan", "--data", "digits", "--epochs", "-3"], "at least 1"),
    (["train", "gan", "--data", "digits", "--minutes", "nan"], "positive number"),
    (["train", "gan", "--data", "digits", "--size", "28", "--batch-size", "100000000", "--max-steps", "1"],
     "batch size"),
    (["train", "gan", "--data", "digits", "--max-steps", "1"], "pass --size"),
    (["train", "gan", "--resume", "--run", "/nonexistent/run", "--max-steps", "1"], "no run directory"),
    (["train", "gan", "--resume", "--max-steps", "1"], "--resume needs --run-dir"),
    (["sample", "/nonexistent/run"], "no run directory"),
    (["train", "gan", "--data", "digits", "--size", "28", "--loss", "wgan-gp", "--d-norm", "bn", "--max-steps", "1"],
     "batch norm"),
    (["train", "gan", "--data", "digits", "--size", "28", "--r1-gamma", "1", "--d-norm", "bn", "--max-steps", "1"],
     "batch norm"),
    (["train", "gan", "--data", "digits", "--size", "28", "--r1-gamma", "-1", "--max-steps", "1"], "r1-gamma"),
    (["train", "gan", "--data", "digits", "--size", "28", "--no-conditional", "--clusters", "99999",
      "--max-steps", "1"],
     "cannot make 99999 clusters"),
    (["train", "gan", "--data", "digits", "--size", "28", "--clusters", "5", "--conditional", "--max-steps", "1"],
     "does not combine with --conditional"),
])
def test_bad_input_clean_errors(argv, pattern, tmp_path, capsys):
    if "--run" not in argv and argv[:2] == ["train", "gan"] and "--resume" not in argv:
        argv = argv + ["--run", str(tmp_path / "r")]
    code, _, err = run_cli(capsys, *argv)
    assert_clean_error(code, err, pattern)
    if "batch norm" in pattern or "clusters" in pattern:  # refused before a run folder is made
        assert not (tmp_path / "r").exists()


def test_empty_folder_and_existing_run(tmp_path, tiny_run, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "train", "gan", "--data", f"folder:{tmp_path / 'empty'}", "--size", "32",
                           "--max-steps", "1", "--run", str(tmp_path / "r"))
    assert_clean_error(code, err, "no readable images")
    code, _, err = run_cli(capsys, "train", "gan", "--data", "digits", "--size", "28", "--max-steps", "1",
                           "--run", str(tiny_run))
    assert_clean_error(code, err, "already exists")


def test_console_script_entry_point():
    res = subprocess.run([sys.executable, "-m", "pixelforge.cli", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "pixelforge" in res.stdout


@pytest.mark.parametrize("argv, status, stream, expected", [
    (["models"], 0, "stdout", "dcgan"),
    (["upscale", "missing.png", "--scale", "4"], 2, "stderr", "pixelforge: error:"),
])
def test_program_exit_keeps_status_output_and_exit_handlers(argv, status, stream, expected):
    """The program ends the process itself once torch is imported (no interpreter teardown):
    its exit status, everything it printed and the exit handlers all survive that."""
    program = ("import atexit, sys, torch\n"
               "atexit.register(lambda: print('exit handler ran'))\n"
               "from pixelforge.cli import run\n"
               f"sys.argv = ['pixelforge', *{argv!r}]\n"
               "run()\n")
    res = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert res.returncode == status
    assert expected in getattr(res, stream)
    assert res.stdout.rstrip().endswith("exit handler ran")


@pytest.mark.parametrize("command", [
    ["upscale", "IMAGE", "--scale", "4"],
    ["translate", "RUN", "IMAGE"],
    ["stylize", "IMAGE", "--style", "IMAGE"],
    ["stylize", "IMAGE", "--model", "zoo:photos-adain-v12", "--style", "IMAGE"],
    ["restore", "RUN", "IMAGE", "--task", "denoise"],
])
def test_an_existing_output_is_not_replaced_unasked(command, tmp_path, capsys):
    image = tmp_path / "photo.png"
    Image.new("RGB", (32, 32), (200, 100, 50)).save(image)
    before = image.read_bytes()
    argv = [str(image) if a == "IMAGE" else str(tmp_path / "no-run") if a == "RUN" else a for a in command]
    code, _, err = run_cli(capsys, *argv, "-o", str(image))  # the output named is the input photo itself
    assert_clean_error(code, err, f"{image} exists; pass --overwrite to replace it")
    assert image.read_bytes() == before


def test_overwrite_replaces_an_existing_output(tmp_path, capsys):
    image, out = tmp_path / "photo.png", tmp_path / "big.png"
    Image.new("RGB", (20, 20), (200, 100, 50)).save(image)
    out.write_bytes(b"an older result")
    code, _, err = run_cli(capsys, "upscale", str(image), "--scale", "4", "-o", str(out), "--overwrite")
    assert code == 0, err
    assert Image.open(out).size == (80, 80)
