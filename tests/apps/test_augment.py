import torch

import pixelforge
from pixelforge.apps.augment import check_per_class_budget, classification_accuracy_score, generated_dataset, real_subset
from pixelforge.cli import main
from pixelforge.data import load_dataset


def test_generated_dataset_is_balanced(tiny_conditional_run):
    data = generated_dataset(pixelforge.load(tiny_conditional_run), per_class=3, seed=0)
    assert data.images.shape == (30, 1, 28, 28) and data.images.dtype == torch.uint8
    assert torch.bincount(data.labels).tolist() == [3] * 10
    again = generated_dataset(pixelforge.load(tiny_conditional_run), per_class=3, seed=0)
    assert torch.equal(data.images, again.images)


def test_real_subset_counts():
    d = load_dataset("digits")
    sub = real_subset(d, 4, seed=1)
    assert torch.bincount(sub.labels).tolist() == [4] * 10
    assert not torch.equal(sub.images, real_subset(d, 4, seed=2).images)


def test_cas(tiny_conditional_run):
    r = classification_accuracy_score(tiny_conditional_run, per_class=4, steps=3, batch_size=16)
    assert 0 <= r["cas"] <= 1 and 0 <= r["real_accuracy"] <= 1
    assert r["train_images"] == 40 and r["test_images"] == 360


def test_unconditional_gan_is_refused(tiny_run, capsys):
    assert main(["cas", str(tiny_run), "--per-class", "2", "--steps", "1"]) == 2
    assert "not a class-conditional" in capsys.readouterr().err


def test_conditional_runs_of_other_families_are_refused(tmp_path, capsys):
    run = tmp_path / "cvae"
    assert main(["train", "vae", "--data", "digits", "--size", "28", "--width", "8", "--batch-size", "32",
                 "--latent-dim", "2", "--max-steps", "1", "--conditional", "--no-progress", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    for command in (["cas", str(run), "--per-class", "2", "--steps", "1"],
                    ["augment", str(run), "--data", "digits", "--size", "28", "-o", str(tmp_path / "study")]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "is a autoencoder run; CAS and the augmentation study need a class-conditional GAN run" in err
        assert "Traceback" not in err


def _smallest_training_class():
    counts = torch.bincount(load_dataset("digits").labels)  # the tiny GANs' training images
    return str(int(counts.argmin())), int(counts.min())


def test_per_class_budget_above_the_smallest_class_is_refused(tiny_conditional_run, tmp_path, capsys):
    name, available = _smallest_training_class()
    expected = f"--per-class {available + 1} is more than the {available} training images of class {name!r}"
    assert main(["cas", str(tiny_conditional_run), "--per-class", str(available + 1), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert expected in err and f"use at most {available}" in err and "Traceback" not in err


def test_per_class_budget_up_to_the_smallest_class_is_taken(monkeypatch):
    data = load_dataset("digits")
    _, available = _smallest_training_class()
    check_per_class_budget(data, available)
    assert torch.bincount(real_subset(data, available, seed=0).labels).tolist() == [available] * 10
    monkeypatch.setenv("PIXELFORGE_DRY_RUN", "1")  # the fast mode cuts datasets, so it takes what there is
    check_per_class_budget(data, available + 1)
