import dataclasses
import json

import pytest
import torch

import pixelforge
from pixelforge.apps import scarce_data
from pixelforge.apps.augment import real_subset
from pixelforge.apps.scarce_data import (ARMS, Arm, budget_study, confidence_filtered, neighbour_filtered, verdict,
                                        write_budget_folder)
from pixelforge.cli import main
from pixelforge.data import ImageData, load_dataset
from pixelforge.errors import PixelforgeError

STUDY = dict(budgets=(5,), seeds=(0, 1), steps=(2, 3), gan_steps=2, diffusion_steps=2, size=28)


def test_budget_folder_keeps_the_images_and_the_label_order(tmp_path):
    digits = load_dataset("digits")
    folder = write_budget_folder(digits, 3, seed=4, folder=tmp_path / "images")
    loaded = load_dataset(f"folder:{folder}", size=8, channels=1, split="train+val")
    subset = real_subset(digits, 3, seed=4)
    assert loaded.classes == [f"{i:02d}-{name}" for i, name in enumerate(digits.classes)]
    assert torch.equal(loaded.images, subset.images) and torch.equal(loaded.labels, subset.labels)
    write_budget_folder(load_dataset("digits", limit=1), 3, seed=5, folder=folder)  # written once, then reused
    assert torch.equal(load_dataset(f"folder:{folder}", size=8, channels=1, split="train+val").images, subset.images)


@pytest.fixture(scope="module", autouse=True)
def quick_diffusion_arms():
    """The diffusion arms at the tests' budget, with a narrow U-Net and two sampling steps."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scarce_data, "ARMS", tuple(dataclasses.replace(a, budgets=(5,)) if a.budgets else a for a in ARMS))
        mp.setattr(scarce_data, "DIFFUSION_SAMPLER", {**scarce_data.DIFFUSION_SAMPLER, "steps": 2})
        mp.setattr(scarce_data, "DIFFUSION_MODEL", {"width": 8, "num_res_blocks": 1})
        yield


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_conditional_run):
    out = tmp_path_factory.mktemp("study")
    return out, budget_study(out, "digits", generator=tiny_conditional_run, **STUDY)


def test_study_measures_every_arm_on_validation_then_test(study):
    out, result = study
    (row,) = result["rows"]
    assert row["per_class"] == 5 and [a["arm"] for a in row["arms"]] == [a.name for a in ARMS]
    for a in row["arms"]:
        assert a["steps"] in (2, 3) and len(a["test"]["runs"]) == 2 and 0 <= a["test"]["mean"] <= 1
    assert row["best_classic"] in {a.name for a in ARMS if a.kind == "classic"}
    assert row["best_generative"] in {a.name for a in ARMS if a.kind == "generative"}
    cache = json.loads((out / "study.json").read_text())
    selection = [key for key in cache if key.startswith("5|0|")]  # and "settings"
    assert len(selection) == 2 * len(ARMS)  # every arm at every step count on the selection seed
    chosen = {a["arm"]: a["steps"] for a in row["arms"]}
    for key in selection:  # the test split is scored at the chosen steps only
        _, _, arm, steps = key.split("|")
        assert ("test_accuracy" in cache[key]) == (int(steps) == chosen[arm]), key
    for family in ("gan", "diffusion"):  # each budget and seed: its own generators
        assert (out / "k5-s1" / family / "per_class.png").is_file()
    assert json.loads((out / "augmentation.json").read_text())["rows"][0]["per_class"] == 5
    assert "| 5 | flips + shifts |" in (out / "augmentation.md").read_text()
    assert (out / "augmentation.png").is_file()


def test_study_resumes_from_its_cache(study, tiny_conditional_run, monkeypatch):
    out, result = study

    def refuse(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(scarce_data, "fit_classifier", refuse)
    monkeypatch.setattr(scarce_data, "budget_generator", refuse)
    again = budget_study(out, "digits", generator=tiny_conditional_run, **STUDY)
    assert again["rows"] == result["rows"]


def test_budget_generator_trains_on_the_budget_only(study):
    out, _ = study
    for family in ("gan", "diffusion"):
        run = pixelforge.runs.Run.open(out / "k5-s0" / family)
        cfg = run.config
        assert cfg["data"]["spec"] == f"folder:{out / 'k5-s0' / 'images'}" and cfg["data"]["split"] == "train"
        assert cfg["family"] == family and cfg["model"]["config"]["num_classes"] == 10 and run.load_state()["step"] == 2
    assert pixelforge.runs.Run.open(out / "k5-s0" / "gan").config["task"]["diffaug"] == scarce_data.GAN_DIFFAUG
    diffusion = scarce_data.budget_generator(out / "k5-s0" / "images", out / "k5-s0" / "diffusion", 28, 1, seed=0,
                                             steps=2, family="diffusion")  # done: loaded with the study's sampler
    assert {"solver": diffusion.solver, "steps": diffusion.steps,
            "guidance": diffusion.guidance} == scarce_data.DIFFUSION_SAMPLER
    drawn = sorted(p.name for p in (out / "k5-s0" / "diffusion" / "drawn").iterdir())
    assert drawn and all(p.endswith("-per-class-s1000.safetensors") for p in drawn)  # kept, not sampled again


def _arm(name, kind, val, test):
    return {"arm": name, "kind": kind, "val": {"mean": val}, "test": {"runs": test}}


def test_verdict_chooses_on_validation_and_judges_the_per_seed_gain():
    arms = [_arm("a", "classic", 0.80, [0.80, 0.81, 0.82]), _arm("b", "classic", 0.70, [0.90, 0.90, 0.90]),
            _arm("g", "generative", 0.85, [0.83, 0.84, 0.85])]
    v = verdict(arms, 50)
    assert (v["best_classic"], v["best_generative"]) == ("a", "g")  # b is better on test, but not on validation
    assert v["gain"]["mean"] == pytest.approx(0.03) and v["met"]
    arms[2]["test"]["runs"] = [0.81, 0.82, 0.86]  # the same mean gain, less steady: mean - std < 2 points
    assert not verdict(arms, 50)["met"]
    arms[2]["test"]["runs"] = [0.795, 0.805, 0.815]  # at 500: a loss within the baseline's std is no failure
    assert verdict(arms, 500)["met"] and not verdict(arms, 100)["met"]


class _Generator:
    cfg = type("cfg", (), {"num_classes": 2, "latent_dim": 1})()
    classes = ["a", "b"]
    path = "fake"

    def generate(self, z, labels):
        return z.view(-1, 1, 1, 1).clamp(0, 1).expand(-1, 1, 2, 2)  # brightness = the latent


class _Judge:
    """Sure of class 0 for bright images and of class 1 for dark ones; its features are the
    brightness and the darkness."""

    def predict(self, images):
        p0 = images.float().mean((1, 2, 3)) / 255
        return torch.stack([p0, 1 - p0], 1)

    features = predict


@pytest.mark.parametrize("kind", ["confidence", "neighbour"])
def test_filters_keep_the_images_most_like_their_class(kind):
    pool = scarce_data.generated_dataset(_Generator(), 5 * scarce_data.FILTER_POOL, seed=0)
    if kind == "confidence":
        kept = confidence_filtered(pool, _Judge(), per_class=5)
    else:  # one white real image of class 0, one black of class 1
        real = ImageData(torch.tensor([255, 0], dtype=torch.uint8).view(2, 1, 1, 1).expand(-1, 1, 2, 2),
                         torch.tensor([0, 1]), ["a", "b"], "real", "test")
        kept = neighbour_filtered(pool, _Judge(), real, per_class=5)
    assert torch.bincount(kept.labels).tolist() == [5, 5]
    brightness = kept.images.float().mean((1, 2, 3))
    pool_brightness = pool.images.float().mean((1, 2, 3))
    assert brightness[kept.labels == 0].min() >= pool_brightness[pool.labels == 0].median()
    assert brightness[kept.labels == 1].max() <= pool_brightness[pool.labels == 1].median()


def test_arms_say_their_kind():
    assert Arm("x").kind == "classic" and Arm("x", synthetic=1, generator="budget").kind == "generative"
    assert Arm("x", synthetic=1, generator="full").kind == "full-split generator"


def test_augment_command(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["augment", "--data", "digits", "--size", "28", "--per-class", "5", "--seeds", "1", "--steps", "2",
                 "--gan-steps", "1", "--diffusion-steps", "1", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| 5 | flips + shifts + generated 4:1 |" in printed and "from the full split" not in printed
    assert (out / "augmentation.png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--per-class", "1"], "--per-class 1 gives 10 images, too few to hold a tenth out for validation; use at least 2"),
    (["--per-class", "2,x"], "--per-class takes whole numbers"),
    (["--steps", "0"], "--steps values must be at least 1"),
    (["--per-class", "100000"], "--per-class 100000 is more than the"),
])
def test_augment_refuses_bad_budgets(argv, message, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["augment", "--data", "digits", "--size", "28", *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_augment_refuses_unconditional_generators_and_data_without_a_test_split(tiny_run, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["augment", str(tiny_run), "--data", "digits", "--size", "28", "-o", str(out)]) == 2
    assert "not a class-conditional GAN" in capsys.readouterr().err
    folder = tmp_path / "photos"
    write_budget_folder(load_dataset("digits"), 3, seed=0, folder=folder)
    assert main(["augment", "--data", f"folder:{folder}", "--size", "28", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the augmentation study reports on a test split" in err and "Traceback" not in err
    assert not out.exists()


def test_generated_images_join_the_real_ones(study):
    out, _ = study
    real = load_dataset(f"folder:{out / 'k5-s0' / 'images'}", size=28, channels=1)
    cache = json.loads((out / "study.json").read_text())
    one_to_one = next(v for k, v in cache.items() if k.startswith("5|0|flips + shifts + generated 1:1|"))
    assert one_to_one["train_images"] == len(real) + 10 * round(len(real) / 10)
    filtered = next(v for k, v in cache.items() if k.startswith("5|0|flips + shifts + generated 4:1, confidence"))
    assert filtered["train_images"] == len(real) + 40 * round(len(real) / 10)
    neighbours = next(v for k, v in cache.items() if k.startswith("5|0|flips + shifts + generated 4:1, nearest"))
    assert neighbours["train_images"] == filtered["train_images"]


def test_a_pretraining_arm_fine_tunes_on_the_real_images_only(study):
    out, _ = study
    real = load_dataset(f"folder:{out / 'k5-s0' / 'images'}", size=28, channels=1)
    cache = json.loads((out / "study.json").read_text())
    classifiers = out / "k5-s0" / "classifiers"
    arms = [a for a in ARMS if a.pretrain]
    assert {a.family for a in arms} == {"gan", "diffusion"}
    for arm in arms:
        assert all(v["train_images"] == len(real) for k, v in cache.items() if k.startswith(f"5|0|{arm.name}|"))
        slug = scarce_data._slug(arm.name)
        pretraining = classifiers / f"{slug}-pretraining"
        spec = pixelforge.runs.Run.open(pretraining).config["data"]["spec"]
        if arm.pretrain_with_real:  # the budget's real images and the generated ones, mixed
            assert spec.startswith("memory:") and spec.endswith("+generated") and spec != "memory:generated"
        else:
            assert spec == "memory:generated", arm.name
        tuned = pixelforge.runs.Run.open(next(p for p in classifiers.glob(f"{slug}-*")
                                              if p.name.removeprefix(f"{slug}-").isdigit()))
        assert tuned.config["init"] == str(pretraining) and "generated" not in tuned.config["data"]["spec"]
        tuned_mixup = tuned.config["task"]["mixup"]
        assert pixelforge.runs.Run.open(pretraining).config["task"]["mixup"] == tuned_mixup == arm.mixup
    assert any(a.mixup for a in arms)  # an arm with mixup in both phases
    assert any(a.pretrain_with_real for a in arms)  # a schedule: real and generated mixed, then real alone


def test_verdict_at_large_budgets_allows_a_loss_within_the_baselines_spread():
    arms = [_arm("a", "classic", 0.80, [0.80, 0.81, 0.82]), _arm("g", "generative", 0.85, [0.79, 0.79, 0.79])]
    assert not verdict(arms, 500)["met"]  # 0.79 < 0.81 - 0.01


def test_a_study_folder_keeps_its_settings(study, tiny_conditional_run, capsys):
    out, _ = study
    settings = json.loads((out / "study.json").read_text())["settings"]
    assert settings["gan_steps"] == 2 and settings["full_generator"] == str(tiny_conditional_run)
    assert main(["augment", str(tiny_conditional_run), "--data", "digits", "--size", "28", "--per-class", "5",
                 "--gan-steps", "3", "--diffusion-steps", "2", "-o", str(out)]) == 2
    assert "holds a study with gan_steps 2 (not 3); give another output folder" in capsys.readouterr().err
    assert main(["augment", str(tiny_conditional_run), "--data", "digits", "--size", "32", "--per-class", "5",
                 "--gan-steps", "2", "--diffusion-steps", "2", "-o", str(out)]) == 2
    assert "size 28 (not 32)" in capsys.readouterr().err
    assert main(["augment", str(tiny_conditional_run), "--data", "digits", "--size", "28", "--per-class", "5",
                 "--gan-steps", "2", "--diffusion-steps", "3", "-o", str(out)]) == 2
    assert "holds a study with diffusion_steps 2 (not 3); give another output folder" in capsys.readouterr().err


def test_a_study_refuses_another_generator_and_an_unreadable_cache(study, tiny_conditional_run, tmp_path, capsys):
    import shutil

    out, _ = study
    other = tmp_path / "other-gan"
    shutil.copytree(tiny_conditional_run, other)
    assert main(["augment", str(other), "--data", "digits", "--size", "28", "--per-class", "5", "--gan-steps", "2",
                 "-o", str(out)]) == 2
    assert f"full_generator {tiny_conditional_run} (not {other})" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "study.json").write_text("{half")
    assert main(["augment", "--data", "digits", "--size", "28", "-o", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "cannot read the study cache" in err and "Traceback" not in err


def test_a_generator_run_without_a_checkpoint_starts_over(tmp_path):
    folder = write_budget_folder(load_dataset("digits", size=28), 3, seed=0, folder=tmp_path / "images")
    run = tmp_path / "gan"
    run.mkdir()
    (run / "config.json").write_text("{}")  # killed before its first checkpoint
    pipe = scarce_data.budget_generator(folder, run, 28, 1, seed=0, steps=1)
    assert pipe.conditional and pixelforge.runs.Run.open(run).load_state()["step"] == 1


def test_diffusion_arms_run_at_the_target_budgets_only(tmp_path):
    diffusion = [a for a in ARMS if a.family == "diffusion"]
    assert diffusion and all(a.kind == "generative" and a.runs_at(100) and not a.runs_at(500) for a in diffusion)
    assert Arm("x").runs_at(500)
    cell = {"kind": "classic", "steps": 3, "val": {"mean": 0.5}, "test": {"mean": 0.6, "std": 0.01}}
    result = {"rows": [{"per_class": 100, "arms": [{"arm": "a", **cell}, {"arm": "d", **cell}]},
                       {"per_class": 500, "arms": [{"arm": "a", **cell}]}]}
    scarce_data.write_report(result, tmp_path)
    table = (tmp_path / "augmentation.md").read_text()
    assert "| 100 | d |" in table and "| 500 | d |" not in table and "| 500 | a |" in table
    assert (tmp_path / "augmentation.png").stat().st_size > 0


def test_drawn_images_are_kept_and_not_sampled_again(study, tiny_conditional_run, monkeypatch):
    out, _ = study
    again = scarce_data.BudgetStudy(out, "digits", steps=STUDY["steps"], full_generator=tiny_conditional_run,
                                    gan_steps=2, diffusion_steps=2, size=28)

    def refuse(*args, **kwargs):
        raise AssertionError("sampled again")

    monkeypatch.setattr(scarce_data, "generated_dataset", refuse)
    arm = next(a for a in ARMS if a.family == "diffusion" and not a.pretrain)
    real = again.split(5, 0, "train")
    drawn = again.generated(arm, 5, 0)
    assert len(drawn) == 10 * round(len(real) / 10) and drawn.images.dtype == torch.uint8
    assert torch.equal(torch.bincount(drawn.labels), torch.full((10,), round(len(real) / 10)))


def test_a_cached_study_resumes_without_the_full_split_generator_run(study, tiny_conditional_run, tmp_path):
    import shutil

    out, result = study
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    gone = tmp_path / "gan-that-was-deleted"
    cache = json.loads((moved / "study.json").read_text())
    cache["settings"]["full_generator"] = str(gone)
    (moved / "study.json").write_text(json.dumps(cache))
    again = scarce_data.BudgetStudy(moved, "digits", steps=STUDY["steps"], full_generator=gone, gan_steps=2,
                                    diffusion_steps=2, size=28)
    assert again.run([5], [0, 1])["rows"] == result["rows"]  # every fit, the full split's too, from the cache
    with pytest.raises(PixelforgeError, match="gan-that-was-deleted"):  # a fit that needs the run says so
        again.run([5], [0, 1, 2])
