"""End-to-end training on tiny data: artefacts, exact resume, budgets, divergence, signals."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import pixelforge
from pixelforge.errors import PixelforgeError, RunError
from pixelforge.training import TrainingDiverged

from tests.conftest import TINY


def _weights(run: Path, name="generator"):
    ckpt = pixelforge.runs.Run.open(run).latest_checkpoint()
    return load_file(str(ckpt / f"{name}.safetensors"))


def test_run_directory_contents(tiny_run):
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["family"] == "gan" and cfg["model"]["name"] == "dcgan"
    assert cfg["model"]["config"]["image_size"] == 28 and cfg["model"]["config"]["width"] == 8
    ckpt = pixelforge.runs.Run.open(tiny_run).latest_checkpoint()
    assert ckpt.name == "step_00000006"
    for f in ("generator", "generator_ema", "discriminator"):
        assert (ckpt / f"{f}.safetensors").is_file()
    state = torch.load(ckpt / "trainer_state.pt", weights_only=True)
    assert state["step"] == 6 and set(state["optimizers"]) == {"generator", "discriminator"}
    assert (tiny_run / "samples" / "final.png").is_file()
    assert (tiny_run / "loss.png").is_file()
    metrics = [json.loads(l) for l in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert metrics and {"step", "d_loss", "g_loss", "images_per_s"} <= set(metrics[-1])


def test_load_rebuilds_model_from_run_alone(tiny_run):
    pipe = pixelforge.load(tiny_run)
    x = pipe.sample(10, seed=3)
    assert x.shape == (10, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert torch.equal(x, pipe.sample(10, seed=3))
    assert not torch.equal(x, pipe.sample(10, seed=4))


def test_resume_is_exact(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    pixelforge.train_gan("digits", straight, max_steps=8, seed=3, **TINY)
    pixelforge.train_gan("digits", split, max_steps=4, seed=3, **TINY)
    pixelforge.train_gan(None, split, resume=True, max_steps=8, progress=False)
    for name in ("generator", "generator_ema", "discriminator"):
        a, b = _weights(straight, name), _weights(split, name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}.{k} differs after resume"
    steps = [json.loads(l)["step"] for l in (split / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # no duplicated steps after resume


def test_same_seed_same_weights(tmp_path):
    for name in ("a", "b"):
        pixelforge.train_gan("digits", tmp_path / name, max_steps=3, seed=11, **TINY)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_epoch_grids_and_epoch_budget(tmp_path):
    run = tmp_path / "ep"
    # digits train split: 1437 images; limit 96 with batch 32 -> 3 steps per epoch.
    pixelforge.train_gan("digits", run, epochs=2, limit=96, seed=0, **TINY)
    assert sorted(p.name for p in (run / "samples").glob("epoch_*.png")) == ["epoch_001.png", "epoch_002.png"]
    assert pixelforge.runs.Run.open(run).load_state()["step"] == 6


def test_epochs_of_one_step_do_not_each_checkpoint(tmp_path):
    """On a dataset of one batch every step ends an epoch: the end-of-epoch work (checkpoint,
    curve, grid) runs after the first, every epoch_work_steps-th and the last."""
    from pixelforge.training.gan import GANTask

    run = tmp_path / "tiny"
    pixelforge.train_gan("digits", run, epochs=40, limit=32, seed=0, **TINY)  # 32 images, batch 32
    grids = sorted(p.name for p in (run / "samples").glob("epoch_*.png"))
    every = [f"epoch_{e:03d}.png" for e in range(GANTask.epoch_work_steps, 40, GANTask.epoch_work_steps)]
    assert grids == ["epoch_001.png", *every, "epoch_040.png"]
    assert pixelforge.runs.Run.open(run).load_state()["step"] == 40


def test_minutes_budget_stops(tmp_path):
    t = time.monotonic()
    pixelforge.train_gan("digits", tmp_path / "m", minutes=0.03, seed=0, **TINY)
    assert time.monotonic() - t < 60
    assert pixelforge.runs.Run.open(tmp_path / "m").latest_checkpoint() is not None


def test_no_budget_is_an_error(tmp_path):
    with pytest.raises(PixelforgeError, match="budget"):
        pixelforge.train_gan("digits", tmp_path / "nb", **TINY)


def test_divergence_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from pixelforge.training import gan as gan_task

    run = tmp_path / "nan"
    pixelforge.train_gan("digits", run, max_steps=2, seed=0, **TINY)
    good = _weights(run)
    original = gan_task.GANTask.step

    def poisoned(self, real, labels):
        out = original(self, real, labels)
        return {**out, "d_loss": float("nan")}

    monkeypatch.setattr(gan_task.GANTask, "step", poisoned)
    with pytest.raises(TrainingDiverged, match="diverged at step 3.*step_00000002"):
        pixelforge.train_gan(None, run, resume=True, max_steps=5, progress=False)
    after = _weights(run)
    assert all(torch.equal(good[k], after[k]) for k in good)


def test_resume_errors(tmp_path, tiny_run):
    with pytest.raises(RunError, match="no run directory"):
        pixelforge.train_gan(None, tmp_path / "nothing", resume=True, max_steps=3)
    with pytest.raises(RunError, match="different settings.*width"):
        pixelforge.train_gan(None, tiny_run, resume=True, max_steps=3, width=16)


def test_conditional_when_the_data_has_classes(tmp_path, tiny_conditional_run):
    """The default trains on the labels when there are some; --no-conditional ignores them;
    a resume cannot switch between the two."""
    labelled = pixelforge.train_gan("digits", tmp_path / "auto", max_steps=1, seed=0, **TINY)
    assert labelled.num_classes == 10 and len(labelled.classes) == 10
    plain = pixelforge.train_gan("digits", tmp_path / "off", max_steps=1, conditional=False, clusters=0, seed=0, **TINY)
    assert plain.num_classes == 0 and not plain.classes
    images = tmp_path / "flat"
    images.mkdir()
    for i in range(8):  # a folder without class subfolders has no labels
        Image.fromarray(np.full((28, 28), 30 * i, np.uint8)).save(images / f"{i}.png")
    flat = pixelforge.train_gan(f"folder:{images}", tmp_path / "flat-run", max_steps=1, seed=0,
                                **{**TINY, "batch_size": 4})
    assert flat.num_classes == 0
    with pytest.raises(RunError, match="as unconditional: the run is class-conditional"):
        pixelforge.train_gan(None, tiny_conditional_run, resume=True, max_steps=9, conditional=False)
    with pytest.raises(RunError, match="as conditional: the run is unconditional"):
        pixelforge.train_gan(None, plain.path, resume=True, max_steps=9, conditional=True)


def test_sigterm_saves_and_resumes(tmp_path):
    run = tmp_path / "sig"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "pixelforge.cli", "train", "gan", "--data", "digits", "--size", "28",
           "--width", "8", "--batch-size", "32", "--max-steps", "100000", "--run", str(run), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.stat().st_size > 0):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "checkpoint saved" in err and "Traceback" not in err
    step = pixelforge.runs.Run.open(run).load_state()["step"]
    assert step >= 20
    pixelforge.train_gan(None, run, resume=True, max_steps=step + 2, progress=False)
    assert pixelforge.runs.Run.open(run).load_state()["step"] == step + 2


def test_sampling_degrades_to_smaller_batches_when_memory_runs_out(tiny_run):
    pipe = pixelforge.load(tiny_run)
    real_forward = pipe.generator.forward
    seen = []

    def forward(z, labels=None):
        seen.append(z.shape[0])
        if z.shape[0] > 4:
            raise torch.cuda.OutOfMemoryError("simulated: batch too large")
        return real_forward(z, labels)

    pipe.generator.forward = forward
    out = pipe.sample(10, seed=0, batch_size=16)
    assert out.shape == (10, 1, 28, 28)
    assert seen[:3] == [10, 8, 4]  # 16 -> 8 -> 4: halved until a batch fits
    assert sum(n for n in seen if n <= 4) == 10 and seen[-1] == 2  # then kept small: 4 + 4 + 2
    pipe.generator.forward = real_forward
    assert torch.allclose(out, pipe.sample(10, seed=0), atol=1e-5)  # same images as one batch


def test_r1_run_gets_a_spectral_norm_discriminator_and_resumes_its_schedule(tmp_path):
    run = tmp_path / "r1"
    pixelforge.train_gan("digits", run, max_steps=3, conditional=False, seed=0, r1_gamma=1.0, r1_every=2, **TINY)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["config"]["d_norm"] == "sn" and cfg["task"]["r1_gamma"] == 1.0
    state = torch.load(pixelforge.runs.Run.open(run).latest_checkpoint() / "trainer_state.pt", weights_only=True)
    assert state["task"]["d_updates"] == 3


def test_rotation_run_gets_a_rotation_head_and_samples(tmp_path):
    run = tmp_path / "rot"
    pipe = pixelforge.train_gan("digits", run, max_steps=2, conditional=False, clusters=0, seed=0, rotation=0.5,
                                **TINY)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["config"]["rotation_head"] is True and cfg["task"]["rotation"] == 0.5
    assert any(k.startswith("rotation.") for k in _weights(run, "discriminator"))
    assert pipe.sample(3).shape[0] == 3
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("rotation_d" in m for m in metrics)


def test_consistency_run_records_its_weight_and_logs_the_term(tmp_path):
    run = tmp_path / "cr"
    pixelforge.train_gan("digits", run, max_steps=2, conditional=False, clusters=0, seed=0, consistency=1.0,
                         consistency_policy="crop", **TINY)
    task = json.loads((run / "config.json").read_text())["task"]
    assert task["consistency"] == 1.0 and task["consistency_policy"] == "crop"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(m.get("consistency", 0) > 0 for m in metrics)


def test_minibatch_std_run_keeps_its_discriminator_and_resumes(tmp_path):
    run = tmp_path / "mbstd"
    pixelforge.train_gan("digits", run, max_steps=2, conditional=False, clusters=0, seed=0, minibatch_std=4, **TINY)
    assert json.loads((run / "config.json").read_text())["model"]["config"]["minibatch_std"] == 4
    assert _weights(run, "discriminator")["std_weight"].abs().item() > 0  # learnt from 0
    pipe = pixelforge.train_gan("digits", run, max_steps=3, resume=True, **TINY)
    assert pixelforge.runs.Run.open(run).load_state()["step"] == 3 and pipe.sample(2).shape[0] == 2
    with pytest.raises(PixelforgeError, match="divides into groups of 3"):
        pixelforge.train_gan("digits", tmp_path / "odd", max_steps=1, conditional=False, minibatch_std=3,
                             **{**TINY, "batch_size": 8})
    assert not (tmp_path / "odd").exists()  # refused before the run folder


def test_cluster_conditioned_gan_trains_without_labels_and_samples_by_cluster_share(tmp_path):
    run = tmp_path / "clusters"
    pipe = pixelforge.train_gan("digits", run, max_steps=2, conditional=False, clusters=5, seed=0, **TINY)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["config"]["clusters"] == 5 and cfg["model"]["config"]["num_classes"] == 5
    assert cfg["data"]["classes"] == []  # the digits' labels were not used
    prior = _weights(run, "generator_ema")["label_prior"]
    assert prior.shape == (5,) and abs(float(prior.sum()) - 1) < 1e-5 and float(prior.min()) > 0
    loaded = pixelforge.load(run)
    x = loaded.sample(12, seed=1)
    assert x.shape == (12, 1, 28, 28) and torch.equal(x, loaded.sample(12, seed=1))
    assert loaded.sample(3, labels="4").shape == (3, 1, 28, 28)  # one cluster on request
    # resumable, and still unconditional to its user
    pixelforge.train_gan(None, run, resume=True, max_steps=3, conditional=False, progress=False)
    assert torch.equal(_weights(run, "generator_ema")["label_prior"], prior)
    with pytest.raises(PixelforgeError, match="does not combine with --conditional"):
        pixelforge.train_gan("digits", tmp_path / "both", max_steps=1, conditional=True, clusters=3, **TINY)
    with pytest.raises(PixelforgeError, match="cannot make 5000 clusters"):
        pixelforge.train_gan("digits", tmp_path / "many", max_steps=1, conditional=False, clusters=5000, **TINY)
    assert not (tmp_path / "many").exists()
    assert pipe.num_classes == 5


def test_unconditional_runs_get_clusters_by_default_when_the_data_is_large_enough(tmp_path, monkeypatch):
    import pixelforge.pipelines.gan as gan_pipeline

    monkeypatch.setattr(gan_pipeline, "AUTO_CLUSTERS", 3)
    monkeypatch.setattr(gan_pipeline, "IMAGES_PER_CLUSTER", 100)  # digits' training split: over 300 images
    auto = pixelforge.train_gan("digits", tmp_path / "auto", max_steps=1, conditional=False, seed=0, **TINY)
    assert auto.cfg.clusters == 3 and auto.num_classes == 3
    assert pixelforge.train_gan("digits", tmp_path / "off", max_steps=1, conditional=False, clusters=0,
                                seed=0, **TINY).cfg.clusters == 0
    labelled = pixelforge.train_gan("digits", tmp_path / "labels", max_steps=1, seed=0, **TINY)
    assert labelled.cfg.clusters == 0 and labelled.num_classes == 10  # labels win over clusters
    monkeypatch.setattr(gan_pipeline, "IMAGES_PER_CLUSTER", 500)  # 1,317 images: 2 clusters, not 3
    assert pixelforge.train_gan("digits", tmp_path / "fewer", max_steps=1, conditional=False, seed=0,
                                **TINY).cfg.clusters == 2
    monkeypatch.setattr(gan_pipeline, "IMAGES_PER_CLUSTER", 1_000)  # too few images: plain unconditional
    assert pixelforge.train_gan("digits", tmp_path / "few", max_steps=1, conditional=False, seed=0,
                                **TINY).cfg.clusters == 0
    with pytest.raises(RunError, match="with --clusters 4: the run has 3"):
        pixelforge.train_gan(None, tmp_path / "auto", resume=True, max_steps=2, clusters=4)
    with pytest.raises(PixelforgeError, match="--clusters must be >= 0"):
        pixelforge.train_gan("digits", tmp_path / "neg", max_steps=1, conditional=False, clusters=-1, **TINY)


def test_cluster_draws_follow_the_shares_or_a_power_of_them():
    """``cluster_power`` 1 draws clusters by their training shares, 0 draws every non-empty one
    equally often; an empty cluster is never drawn."""
    from types import SimpleNamespace

    from pixelforge.pipelines.gan import GANPipeline

    generator = torch.nn.Linear(1, 1)
    generator.register_buffer("label_prior", torch.tensor([0.9, 0.1, 0.0]))
    pipe = GANPipeline(generator, SimpleNamespace(latent_dim=4, num_classes=3, clusters=3), [])
    pipe.generate = lambda z, labels, batch_size: labels  # the drawn clusters, not images
    by_share = torch.bincount(pipe.sample(4000, seed=0), minlength=3)
    pipe.cluster_power = 0.0
    uniform = torch.bincount(pipe.sample(4000, seed=0), minlength=3)
    assert 3400 < by_share[0] < 3800 and by_share[2] == 0
    assert 1800 < uniform[0] < 2200 and uniform[2] == 0


def test_latent_scale_scales_the_drawn_latents():
    """``latent_scale`` s draws z from N(0, s^2 I), same seed same directions; 1 by default, the
    chosen spread for a cluster-conditioned generator; a scale that is not positive is refused."""
    from types import SimpleNamespace

    from pixelforge.pipelines.gan import CLUSTER_LATENT_SCALE, GANPipeline

    clustered = GANPipeline(torch.nn.Linear(1, 1), SimpleNamespace(latent_dim=8, num_classes=3, clusters=3), [])
    assert clustered.latent_scale == CLUSTER_LATENT_SCALE > 1
    pipe = GANPipeline(torch.nn.Linear(1, 1), SimpleNamespace(latent_dim=8, num_classes=0, clusters=0), [])
    assert pipe.latent_scale == 1.0
    pipe.generate = lambda z, labels, batch_size=256: z  # the drawn latents, not images
    plain = pipe.sample(2000, seed=3)
    pipe.latent_scale = 0.5
    torch.testing.assert_close(pipe.sample(2000, seed=3), plain * 0.5)
    assert 0.45 < pipe.sample(2000, seed=4).std() < 0.55
    torch.testing.assert_close(pipe.sample(2000, seed=3, latent_scale=2.0), plain * 2.0)  # for one call only
    assert pipe.latent_scale == 0.5
    pipe.latent_scale = 0.0
    with pytest.raises(PixelforgeError, match="latent_scale must be positive"):
        pipe.sample(4)
