"""Classifier end to end: train on digits, classify files, explain, evaluation artefacts."""

import json

import pytest
from PIL import Image

import pixelforge
from pixelforge.api import load_classifier
from pixelforge.cli import main
from pixelforge.data import load_dataset


@pytest.fixture(scope="module")
def clf_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("clf") / "digits"
    assert main(["train", "classifier", "--data", "digits", "--size", "16", "--epochs", "4", "--batch-size", "64",
                 "--run", str(run), "--no-progress"]) == 0
    return run


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    d = load_dataset("digits", size=16, split="test", limit=20)
    folder = tmp_path_factory.mktemp("digits")
    paths = []
    for i in range(20):
        p = folder / f"d{i}_label{int(d.labels[i])}.png"
        Image.fromarray(d.images[i, 0].numpy()).resize((40, 40)).convert("RGB").save(p)  # other size and mode
        paths.append(p)
    return paths, d.labels


def test_training_artefacts(clf_run):
    ev = json.loads((clf_run / "evaluation.json").read_text())
    assert ev["split"] == "test" and ev["test_images"] == 360
    assert ev["test_accuracy"] > 0.8  # 4 short epochs on 8x8 digits
    assert set(ev["per_class_accuracy"]) == {str(i) for i in range(10)}
    assert sum(map(sum, ev["confusion_matrix"])) == 360
    assert (clf_run / "confusion.png").is_file() and (clf_run / "loss.png").is_file()
    # The per-epoch curve is on the validation split: the test split is measured once, at the end.
    records = [json.loads(l) for l in (clf_run / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in records if "val_acc" in r]) == 4 and not any("test_acc" in r for r in records)
    assert json.loads((clf_run / "config.json").read_text())["data"]["split"] == "train"
    # Trained with flips (the default augmentation): the loaded pipeline averages each image and
    # its mirror as the final evaluation did, so it reproduces the run's test accuracy.
    pipe = pixelforge.load(clf_run)
    assert pipe.tta == "flip"
    # The test split is scored once, with the recipe's views; no per-view-set test scores to choose by.
    assert ev["tta"] == "flip" and not any(k.startswith("test_accuracy_by") for k in ev)
    test = load_dataset("digits", size=16, split="test")
    assert pipe.accuracy(test.images, test.labels) == pytest.approx(ev["test_accuracy"], abs=0.015)
    # Choices (which test-time views) are made on the validation split, recorded beside the test.
    val = load_dataset("digits", size=16, split="val")
    assert ev["val_images"] == len(val) == 120 and set(ev["val_accuracy_by_tta"]) == {"none", "flip", "flip-shift"}
    assert ev["val_accuracy_by_tta"]["flip"] == ev["val_accuracy"]
    assert pipe.accuracy(val.images, val.labels) == pytest.approx(ev["val_accuracy"], abs=1e-6)


def test_classify_files(clf_run, digit_files, capsys):
    paths, labels = digit_files
    assert main(["classify", str(clf_run), *map(str, paths[:5]), "-k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and all(l.count("%") == 2 for l in lines)
    pipe = pixelforge.load(clf_run)
    preds = [top[0][0] for top in pipe.topk(pipe.load_images(paths), 1)]
    correct = sum(p == str(int(l)) for p, l in zip(preds, labels))
    assert correct >= 14  # resized RGB files are converted, not refused
    for tta in ("none", "flip-shift"):  # --tta picks the test-time views the probabilities average
        assert main(["classify", str(clf_run), str(paths[0]), "-k", "2", "--tta", tta]) == 0
        single = load_classifier(clf_run, tta=tta)
        top = single.topk(single.load_images(paths[:1]), 2)[0]
        assert capsys.readouterr().out.strip() == f"{paths[0]}: " + ", ".join(f"{n} {p:.1%}" for n, p in top)


def test_explain_writes_images(clf_run, digit_files, tmp_path, capsys):
    out = tmp_path / "explain"
    assert main(["explain", str(clf_run), str(digit_files[0][0]), "-o", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["feature_maps_stage1.png", "feature_maps_stage2.png", "feature_maps_stage3.png",
                     "filters.png", "gradcam.png"]
    pipe = pixelforge.load(clf_run)
    cam, target = pipe.grad_cam(pipe.load_images(digit_files[0][:1])[0])
    assert cam.shape == (16, 16) and 0 <= cam.min() and cam.max() <= 1 and 0 <= target < 10


def test_bad_inputs(clf_run, tiny_run, tmp_path, capsys):
    bad = tmp_path / "not_an_image.png"
    bad.write_text("hello")
    assert main(["classify", str(clf_run), str(bad)]) == 2
    assert "cannot use" in capsys.readouterr().err
    assert main(["classify", str(clf_run), str(tmp_path / "missing.png")]) == 2
    assert "no image file" in capsys.readouterr().err
    assert main(["classify", str(tiny_run), str(bad)]) == 2
    assert "needs a classifier run" in capsys.readouterr().err
    assert main(["sample", str(clf_run)]) == 2
    assert "sample needs a generator run" in capsys.readouterr().err


def test_folder_classifier_reports_its_validation_images(tmp_path, capsys):
    """A folder has no test split: the final accuracy is on its held-out (validation) files."""
    data = tmp_path / "data"
    for i in range(40):
        folder = data / ("dark" if i % 2 else "light")
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8), 0 if i % 2 else 255).save(folder / f"{i}.png")
    run = tmp_path / "r"
    assert main(["train", "classifier", "--data", f"folder:{data}", "--size", "8", "--max-steps", "2",
                 "--batch-size", "8", "--run", str(run), "--no-progress"]) == 0
    ev = json.loads((run / "evaluation.json").read_text())
    val = load_dataset(f"folder:{data}", size=8, split="val")
    assert ev["split"] == "val" and ev["val_images"] == len(val) and "test_accuracy" not in ev
    assert f"val accuracy: {ev['val_accuracy']:.2%} on {len(val)} images" in capsys.readouterr().out


def test_unlabelled_folder_is_refused(tmp_path, capsys):
    for i in range(3):
        Image.new("L", (8, 8), i * 50).save(tmp_path / f"{i}.png")
    code = main(["train", "classifier", "--data", f"folder:{tmp_path}", "--size", "8", "--max-steps", "1",
                 "--run", str(tmp_path / "r")])
    assert code == 2 and "no class labels" in capsys.readouterr().err
