"""Autoencoders end to end on digits: train ae/vae, reconstruct, encode/decode, sample,
restore (denoise, inpaint), interpolate, latent map, eval, and the bad inputs."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import pixelforge
from pixelforge.cli import main
from pixelforge.data import load_dataset
from pixelforge.metrics import psnr
from pixelforge.training.autoencoder import Corruption

TINY = ["--data", "digits", "--size", "28", "--width", "8", "--batch-size", "32", "--no-progress"]


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    """A denoising + inpainting AE, trained long enough to beat its noisy input."""
    run = tmp_path_factory.mktemp("ae") / "ae"
    assert main(["train", "ae", *TINY, "--latent-dim", "32", "--max-steps", "100", "--corrupt",
                 "gaussian:0.2-0.4,box", "--run-dir", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory):
    """A conditional beta-VAE with a 2-D latent (for the manifold grid)."""
    run = tmp_path_factory.mktemp("vae") / "cvae"
    assert main(["train", "vae", *TINY, "--latent-dim", "2", "--max-steps", "20", "--conditional", "--beta", "2",
                 "--run-dir", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = load_dataset("digits", size=28, split="test", limit=6)
    folder = tmp_path_factory.mktemp("files")
    paths = []
    for i in range(6):
        p = folder / f"d{i}.png"
        Image.fromarray(d.images[i, 0].numpy()).save(p)
        paths.append(p)
    Image.new("RGB", (28, 28), (200, 30, 30)).save(folder / "red.png")
    Image.new("L", (20, 20), 255).save(folder / "mask20.png")
    mask = np.zeros((28, 28), np.uint8)
    mask[4:12, 6:20] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    return folder, paths, d


def test_training_artefacts(ae_run, cvae_run, capsys):
    ev = json.loads((ae_run / "evaluation.json").read_text())
    assert ev["test_images"] == 360 and ev["corrupt"] == "gaussian:0.2-0.4,box" and ev["test_psnr"] > 10
    assert (ae_run / "samples" / "final_reconstruction.png").is_file() and (ae_run / "loss.png").is_file()
    cfg = json.loads((cvae_run / "config.json").read_text())
    assert cfg["family"] == "autoencoder" and cfg["model"]["name"] == "conv-vae"
    assert cfg["task"]["beta"] == 2 and cfg["model"]["config"]["num_classes"] == 10
    ev = json.loads((cvae_run / "evaluation.json").read_text())
    assert 0 < ev["test_bpd"] < 8.5  # a (poor) bound, but a real one: below 8 bits/dim + slack
    assert (cvae_run / "samples" / "final_samples.png").is_file()


def test_denoising_beats_the_noisy_input(ae_run):
    pipe = pixelforge.load(ae_run)
    clean = load_dataset("digits", size=28, split="test", limit=200).images.float() / 255
    noisy, _ = Corruption("gaussian:0.3")(clean * 2 - 1, torch.Generator().manual_seed(0))
    noisy = noisy.add(1).div(2)
    restored = pipe.restore(noisy, "denoise")
    assert psnr(restored, clean).mean() > psnr(noisy, clean).mean() + 3


def test_reconstruct_encode_decode(ae_run, files, tmp_path, capsys):
    folder, paths, _ = files
    grid = tmp_path / "grid.png"
    assert main(["reconstruct", str(ae_run), *map(str, paths[:3]), "-o", str(grid)]) == 0
    w, h = Image.open(grid).size
    assert w > 2 * h  # three originals, each beside its reconstruction
    codes = tmp_path / "codes.npy"
    assert main(["encode", str(ae_run), *map(str, paths), "-o", str(codes)]) == 0
    z = np.load(codes)
    assert z.shape == (6, 32) and z.dtype == np.float32
    out = tmp_path / "decoded"
    assert main(["decode", str(ae_run), str(codes), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"decoded_{i:04d}.png" for i in range(6)] + ["grid.png"]
    # decode(encode(x)) is the reconstruction.
    pipe = pixelforge.load(ae_run)
    images = pipe.load_images(paths)
    decoded = torch.from_numpy(np.array(Image.open(out / "decoded_0002.png"))).float() / 255
    assert torch.allclose(decoded, pipe.reconstruct(images)[2, 0], atol=1 / 255 + 1e-6)


def test_restore_commands(ae_run, files, tmp_path, capsys):
    folder, paths, d = files
    out, cmp = tmp_path / "den.png", tmp_path / "cmp.png"
    assert main(["restore", str(ae_run), str(paths[0]), "--task", "denoise", "--corrupt", "gaussian:0.3",
                 "-o", str(out), "--compare", str(cmp)]) == 0
    assert Image.open(out).size == (28, 28) and Image.open(cmp).size[0] > 2 * Image.open(cmp).size[1] - 20
    for how in (["--box", "7,7,14,14"], ["--mask", str(folder / "mask.png")]):
        out = tmp_path / f"inp{how[0]}.png"
        assert main(["restore", str(ae_run), str(paths[1]), "--task", "inpaint", *how, "-o", str(out)]) == 0
        restored = np.asarray(Image.open(out)).astype(int)
        original = d.images[1, 0].numpy().astype(int)
        hole = np.zeros((28, 28), bool)
        if how[0] == "--box":
            hole[7:21, 7:21] = True
        else:
            hole[4:12, 6:20] = True
        assert np.abs(restored - original)[~hole].max() <= 1  # known pixels are kept
        assert np.abs(restored - original)[hole].mean() < 80  # the hole is filled with something digit-like


def test_restore_api_inpaint_beats_the_hole(ae_run):
    pipe = pixelforge.load(ae_run)
    clean = load_dataset("digits", size=28, split="test", limit=200).images.float() / 255
    from pixelforge.training.autoencoder import center_box_mask

    mask = center_box_mask(28, 14)
    holed = torch.where(mask, torch.full_like(clean, 0.5), clean)
    restored = pipe.restore(clean, "inpaint", mask=mask)
    assert psnr(restored, clean).mean() > psnr(holed, clean).mean() + 1


def test_vae_sampling_interpolation_and_map(cvae_run, ae_run, files, tmp_path, capsys):
    folder, paths, _ = files
    s = tmp_path / "s.png"
    assert main(["sample", str(cvae_run), "-n", "20", "--labels", "3,4", "-o", str(s)]) == 0
    assert Image.open(s).size[0] > 0
    pipe = pixelforge.load(cvae_run)
    a, b = pipe.sample(4, seed=1, labels=3), pipe.sample(4, seed=1, labels=3)
    assert torch.equal(a, b) and a.shape == (4, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    walk = tmp_path / "walk.png"
    assert main(["interpolate", str(cvae_run), "--rows", "3", "--frames", "7", "--labels", "1", "-o", str(walk)]) == 0
    w, h = Image.open(walk).size
    assert w > 2 * h  # 3 rows of 7 steps
    gif = tmp_path / "walk.gif"
    assert main(["interpolate", str(ae_run), "--between", str(paths[0]), str(paths[1]), "-o", str(gif)]) == 0
    assert Image.open(gif).n_frames == 18  # 10 steps there and 8 back
    ends = pixelforge.load(ae_run).interpolate(*pixelforge.load(ae_run).load_images(paths[:2]), steps=5)
    rec = pixelforge.load(ae_run).reconstruct(pixelforge.load(ae_run).load_images(paths[:2]))
    assert torch.allclose(ends[0], rec[0], atol=1e-5) and torch.allclose(ends[-1], rec[1], atol=1e-5)
    lm = tmp_path / "map.png"
    assert main(["latent-map", str(cvae_run), "-o", str(lm), "-n", "200", "--grid", "5"]) == 0
    assert lm.is_file() and (tmp_path / "map_manifold.png").is_file()
    lm2 = tmp_path / "ae_map.png"
    assert main(["latent-map", str(ae_run), "-o", str(lm2), "-n", "100"]) == 0
    assert lm2.is_file() and not (tmp_path / "ae_map_manifold.png").exists()  # 32-D: PCA map only


def test_map_code(files, tmp_path, capsys):
    """--code map (with --res-blocks): train a few steps, codes are (N, C, 7, 7) maps, decode checks their shape,
    restore works."""
    folder, paths, d = files
    run = tmp_path / "map"
    assert main(["train", "ae", *TINY, "--code", "map", "--latent-dim", "4", "--max-steps", "3", "--res-blocks", "1",
                 "--corrupt", "gaussian:0.3,box", "--run-dir", str(run)]) == 0
    model = json.loads((run / "config.json").read_text())["model"]["config"]
    assert model["code"] == "map" and model["res_blocks"] == 1
    codes = tmp_path / "codes.npy"
    assert main(["encode", str(run), *map(str, paths[:3]), "-o", str(codes)]) == 0
    assert "3 codes of 196 numbers (4x7x7 maps)" in capsys.readouterr().out
    z = np.load(codes)
    assert z.shape == (3, 4, 7, 7) and z.dtype == np.float32
    out = tmp_path / "decoded"
    assert main(["decode", str(run), str(codes), "-o", str(out)]) == 0
    assert len(list(out.glob("decoded_*.png"))) == 3
    assert main(["decode", str(run), str(codes), "-o", str(out)]) == 2  # its files are there: not replaced unasked
    assert "grid.png exists; pass --overwrite" in capsys.readouterr().err
    pipe = pixelforge.load(run)
    assert pipe.code_shape == (4, 7, 7) and pipe.cfg.res_blocks == 1
    images = pipe.load_images(paths[:3])
    rec = pipe.reconstruct(images)
    assert torch.allclose(pipe.decode(z), rec, atol=1e-5) and pipe.decode(z[0]).shape == (1, 1, 28, 28)
    for shape in ((3, 196), (3, 4, 14, 14), (3, 5, 7, 7)):
        np.save(codes, np.zeros(shape, np.float32))
        assert main(["decode", str(run), str(codes), "-o", str(out), "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert "codes must have shape (N, 4, 7, 7)" in err and "4-channel 7x7 code map" in err and str(shape) in err
    walk = pipe.interpolate(images[0], images[1], steps=4)
    assert walk.shape == (4, 1, 28, 28) and torch.allclose(walk[0], rec[0], atol=1e-5)
    den = tmp_path / "den.png"
    assert main(["restore", str(run), str(paths[0]), "--task", "denoise", "--corrupt", "gaussian:0.3",
                 "-o", str(den)]) == 0
    assert Image.open(den).size == (28, 28)
    inp = tmp_path / "inp.png"
    assert main(["restore", str(run), str(paths[1]), "--task", "inpaint", "--box", "7,7,14,14", "-o", str(inp)]) == 0
    restored, original = np.asarray(Image.open(inp)).astype(int), d.images[1, 0].numpy().astype(int)
    hole = np.zeros((28, 28), bool)
    hole[7:21, 7:21] = True
    assert np.abs(restored - original)[~hole].max() <= 1
    assert main(["latent-map", str(run), "-o", str(tmp_path / "m.png"), "-n", "50"]) == 0  # PCA of the flat maps
    vae = pixelforge.train_autoencoder("digits", tmp_path / "mvae", variational=True, code="map", latent_dim=2,
                                       size=28, width=8, batch_size=32, max_steps=2, progress=False)
    assert vae.sample(3, seed=0).shape == (3, 1, 28, 28) and vae.encode(images).shape == (3, 2, 7, 7)
    assert 0 < vae.elbo_bits_per_dim(images) < 30
    with pytest.raises(pixelforge.PixelforgeError, match="unknown code shape 'grid'; use vector or map"):
        pixelforge.train_autoencoder("digits", tmp_path / "g", size=28, code="grid", max_steps=1, progress=False)
    assert main(["train", "ae", *TINY, "--res-blocks", "-1", "--max-steps", "1", "--run-dir", str(tmp_path / "r")]) == 2
    assert "res_blocks >= 0" in capsys.readouterr().err


def test_eval_fid_of_a_vae(cvae_run, tmp_path, capsys):
    clf = tmp_path / "judge"
    pixelforge.train_classifier("digits", clf, size=28, max_steps=3, batch_size=32, progress=False)
    assert main(["eval", str(cvae_run), "-n", "40", "--extractor", str(clf), "--metrics", "fid,kid"]) == 0
    m = json.loads((cvae_run / "metrics.json").read_text())
    assert m["fid"] > 0 and "kid_mean" in m


def test_resume_continues(tmp_path):
    run = tmp_path / "r"
    assert main(["train", "vae", *TINY, "--latent-dim", "4", "--max-steps", "4", "--run-dir", str(run)]) == 0
    assert main(["train", "vae", *TINY[:-1], "--max-steps", "6", "--run-dir", str(run), "--resume",
                 "--no-progress"]) == 0
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 6
    assert main(["train", "ae", "--max-steps", "8", "--run-dir", str(run), "--resume", "--no-progress"]) == 2


def test_resume_refuses_another_code_shape(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "ae", *TINY, "--latent-dim", "4", "--max-steps", "2", "--run-dir", str(run)]) == 0
    args = ["train", "ae", "--max-steps", "4", "--run-dir", str(run), "--resume", "--no-progress", "--code", "map"]
    assert main(args) == 2
    assert "code='map' (run has 'vector')" in capsys.readouterr().err
    # A run written before --code existed has no "code" entry: it is a vector run all the same.
    cfg_path = run / "config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["model"]["config"]["code"]
    cfg_path.write_text(json.dumps(cfg))
    assert main(args) == 2
    assert "code='map' (run has 'vector')" in capsys.readouterr().err


def test_bad_inputs(ae_run, cvae_run, files, tmp_path, capsys):
    folder, paths, _ = files
    bad_codes = tmp_path / "bad.npy"
    np.save(bad_codes, np.zeros((3, 5), np.float32))
    assert main(["decode", str(ae_run), str(bad_codes), "-o", str(tmp_path / "o")]) == 2
    assert "codes must have shape (N, 32)" in capsys.readouterr().err
    assert main(["decode", str(ae_run), str(paths[0]), "-o", str(tmp_path / "o")]) == 2
    assert "NumPy .npy" in capsys.readouterr().err
    assert main(["restore", str(ae_run), str(paths[0]), "--task", "inpaint", "--mask", str(folder / "mask20.png"),
                 "-o", str(tmp_path / "x.png")]) == 2
    assert "mask" in (err := capsys.readouterr().err) and "20x20" in err and "28x28" in err
    assert main(["restore", str(ae_run), str(folder / "red.png"), "--task", "denoise", "-o", str(tmp_path / "x.png")]) == 2
    assert "colour image" in capsys.readouterr().err
    assert main(["restore", str(ae_run), str(paths[0]), "--task", "inpaint", "-o", str(tmp_path / "x.png")]) == 2
    assert "--box" in capsys.readouterr().err
    assert main(["restore", str(ae_run), str(paths[0]), "--task", "inpaint", "--box", "20,20,14,14",
                 "-o", str(tmp_path / "x.png")]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert main(["sample", str(ae_run)]) == 2
    assert "no prior" in capsys.readouterr().err
    assert main(["encode", str(cvae_run), str(paths[0]), "-o", str(tmp_path / "c.npy")]) == 2
    assert "class-conditional" in capsys.readouterr().err
    assert main(["train", "ae", *TINY, "--max-steps", "2", "--corrupt", "blur", "--run-dir", str(tmp_path / "b")]) == 2
    assert "unknown corruption" in capsys.readouterr().err
    pipe = pixelforge.load(ae_run)
    with pytest.raises(pixelforge.PixelforgeError, match="1-channel"):
        pipe.encode(torch.rand(2, 4, 28, 28))
    with pytest.raises(pixelforge.PixelforgeError, match="28x28"):
        pipe.encode(torch.rand(2, 1, 32, 32))
    with pytest.raises(pixelforge.PixelforgeError, match="beta"):
        pixelforge.train_autoencoder("digits", tmp_path / "nb", beta=2.0, max_steps=1)
