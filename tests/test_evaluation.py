"""Judging generators: the zoo, `pixelforge eval`, and --eval-every keeping the best checkpoint;
choices on the validation split, reported numbers on the test split."""

import json
import shutil

import pytest
import torch

import pixelforge
from pixelforge import zoo
from pixelforge.cli import main
from pixelforge.errors import PixelforgeError
from pixelforge.data import load_dataset
from pixelforge.pipelines import evaluate as evaluate_module
from pixelforge.pipelines.evaluate import fid_evaluator, resolve_extractor

from tests.conftest import TINY
from tests.test_cli import assert_clean_error, run_cli


@pytest.fixture(scope="module")
def judge_run(tmp_path_factory):
    """A tiny digits classifier to serve as the judge network."""
    run = tmp_path_factory.mktemp("judge") / "clf"
    pixelforge.train_classifier("digits", run, size=28, epochs=1, batch_size=64, width=8, progress=False)
    return run


def test_zoo_export_and_load(judge_run, tmp_path):
    path = zoo.export(judge_run, "digits-test-v0", command="test", dest=tmp_path)
    card = json.loads((tmp_path / "digits-test-v0.json").read_text())
    assert card["classes"] == [str(i) for i in range(10)] and card["dtype"] == "float16"
    from safetensors.torch import load_file

    assert all(v.dtype == torch.float16 for v in load_file(str(path)).values() if v.is_floating_point())


@pytest.mark.parametrize("name", zoo.list_pretrained("classifier"))
def test_shipped_judges_load_and_classify(name, shared_data):
    from pixelforge.data import load_dataset
    from pixelforge.errors import DataError

    card = zoo.card(name)
    pipe = zoo.load_pretrained(name)
    try:
        test = load_dataset(card["data"], split="test", limit=500, download=False)
    except DataError:
        pytest.skip(f"{card['data']} is not in PIXELFORGE_DATA")
    acc = pipe.accuracy(test.images, test.labels)
    assert acc >= card["test_accuracy"] - 0.03  # fp16 storage and a 500-image subset
    assert pipe.features(test.images[:4]).shape == (4, pipe.feature_dim)


def mnist_style_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits framed as MNIST frames its digits: scaled to a 20x20 box
    in the middle of a black 28x28 image."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16
    x = F.pad(F.interpolate(x, size=20, mode="bilinear", align_corners=False), (4, 4, 4, 4))
    return (x * 255).round().clamp(0, 255).to(torch.uint8), torch.tensor(digits.target)


def test_shipped_mnist_judge_reads_other_handwriting():
    """The MNIST judge works offline (no MNIST files needed): it recognises a different
    digit collection framed the MNIST way (86% measured; the Fashion judge scores ~10%)."""
    assert zoo.judge_for("mnist") == "mnist-cnn-v1" and zoo.judge_for("mnist:3,8") == "mnist-cnn-v1"
    images, labels = mnist_style_digits()
    judge = resolve_extractor(None, "mnist")
    assert judge.classes == [str(d) for d in range(10)]
    assert judge.accuracy(images, labels) > 0.75
    assert judge.features(images[:3]).shape == (3, judge.feature_dim)


def test_shipped_fashion_judges_never_saw_validation_or_test_images(shared_data):
    """The default Fashion-MNIST judge and the second one were trained on the train split only,
    by the command on their cards, and read the test images as their cards say."""
    assert zoo.judge_for("fashion-mnist") == "fashion-mnist-cnn-v2" == zoo.judge_for("fashion-mnist:0,1")
    assert zoo.judges_for("fashion-mnist:0,1")[0] == "fashion-mnist-cnn-v2" and zoo.judges_for("mnist") == ["mnist-cnn-v1"]
    assert set(zoo.judges_for("fashion-mnist")) <= set(zoo.list_pretrained("classifier"))
    test = load_dataset("fashion-mnist", split="test", limit=2000)
    dims = set()
    for name in ("fashion-mnist-cnn-v2", "fashion-mnist-cnn-gn-v1"):
        info = zoo.card(name)
        assert info["data_split"] == "train" and "benchmarks/train_judges.py" in info["command"]
        judge = resolve_extractor(name, "fashion-mnist")
        assert judge.accuracy(test.images, test.labels) == pytest.approx(info["test_accuracy"], abs=0.02)
        dims.add(judge.feature_dim)
    assert len(dims) == 2  # another architecture: another feature space


def test_resolve_extractor(judge_run):
    assert resolve_extractor(str(judge_run), "digits").feature_dim == 32
    with pytest.raises(PixelforgeError, match="no shipped judge"):
        resolve_extractor(None, "digits")
    with pytest.raises(PixelforgeError, match="unknown extractor"):
        resolve_extractor("no-such-judge", "digits")


def test_eval_command_writes_metrics(tiny_run, judge_run, capsys):
    code = main(["eval", str(tiny_run), "-n", "60", "--extractor", str(judge_run), "--metrics", "fid,kid,precision,recall,is"])
    assert code == 0, capsys.readouterr().err
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert m["n_fake"] == 60 and m["step"] == 6 and m["split"] == "test"  # the reported number: test images
    for k in ("fid", "kid_mean", "precision", "recall", "is_mean"):
        assert k in m and m[k] == m[k]  # present and not NaN
    assert m["fid"] > 0
    assert main(["eval", str(tiny_run), "-n", "5", "--extractor", str(judge_run)]) == 2
    assert "at least 10" in capsys.readouterr().err
    # --split val: the number to choose settings by, recorded as such.
    assert main(["eval", str(tiny_run), "-n", "20", "--extractor", str(judge_run), "--metrics", "fid",
                 "--split", "val"]) == 0
    assert json.loads((tiny_run / "metrics.json").read_text())["split"] == "val"
    assert "split        val" in capsys.readouterr().out


def test_eval_every_keeps_best_checkpoint(tmp_path, judge_run):
    run = tmp_path / "tracked"
    pixelforge.train_gan("digits", run, max_steps=6, eval_every=3, eval_samples=40, extractor=str(judge_run),
                         seed=0, **TINY)
    fids = [json.loads(l)["fid"] for l in (run / "metrics.jsonl").read_text().splitlines() if '"fid"' in l]
    assert len(fids) == 2
    best = json.loads((run / "checkpoints" / "best" / "best.json").read_text())
    assert best["fid"] == pytest.approx(min(fids), rel=1e-5)
    assert best["split"] == "val"  # chosen on validation images, never on the test split
    pipe = pixelforge.load(run, best=True)
    assert pipe.sample(4).shape == (4, 1, 28, 28)


def test_fid_evaluator_measures_on_the_validation_split(monkeypatch, judge_run, tmp_path):
    loaded = []

    def spy(spec, **kwargs):
        loaded.append(kwargs["split"])
        return load_dataset(spec, **kwargs)

    monkeypatch.setattr(evaluate_module, "load_dataset", spy)
    data = {"spec": "digits", "size": 28, "channels": 1, "split": "train"}
    samples = load_dataset("digits", size=28, split="val").images

    class Pipe:
        def sample(self, n, seed=0):
            return samples[:n].float() / 255  # the validation images themselves: a perfect score

    evaluate = fid_evaluator(data, 40, str(judge_run), lambda task: Pipe())
    out = evaluate(None)
    assert loaded == ["val"] and out["split"] == "val" and out["fid"] < 1e-6
    # Reported numbers: the test split; a folder has none, so its held-out files (no longer its training images).
    assert evaluate_module.real_images({"spec": "digits", "size": 8, "channels": 1}, 5).shape == (5, 1, 8, 8)
    assert loaded[-1] == "test"
    from PIL import Image

    for i in range(40):
        Image.new("L", (8, 8), i).save(tmp_path / f"{i}.png")
    folder = {"spec": f"folder:{tmp_path}", "size": 8, "channels": 1, "split": "train"}
    real = evaluate_module.real_images(folder, 100)
    assert loaded[-1] == "val" and torch.equal(real, load_dataset(folder["spec"], size=8, channels=1, split="val").images)
    fid_evaluator(folder, 40, str(judge_run), lambda task: Pipe())
    assert loaded[-1] == "val"


def test_best_needs_validation_metrics(tiny_run, tmp_path, capsys):
    """--best on a run without --eval-every, or on one whose best checkpoint was chosen on the test
    split (runs from before validation splits), is a one-line error, not a traceback."""
    code, _, err = run_cli(capsys, "sample", str(tiny_run), "--best", "-n", "4", "-o", str(tmp_path / "a.png"))
    assert_clean_error(code, err, "has no validation metrics for --best: train it with --eval-every")
    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    latest = sorted((old / "checkpoints").glob("step_*"))[-1]
    shutil.copytree(latest, old / "checkpoints" / "best")
    (old / "checkpoints" / "best" / "best.json").write_text(json.dumps({"checkpoint": latest.name, "fid": 1.0}))
    code, _, err = run_cli(capsys, "sample", str(old), "--best", "-n", "4", "-o", str(tmp_path / "b.png"))
    assert_clean_error(code, err, "its best checkpoint was chosen on the test split")


def test_runs_from_before_validation_splits(tiny_run, judge_run, tmp_path, capsys):
    """A run whose config.json has no data.split trained on the whole training set: it still loads,
    samples, resumes on the same images and reports on test; it is never measured on validation."""
    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    config = json.loads((old / "config.json").read_text())
    del config["data"]["split"]
    (old / "config.json").write_text(json.dumps(config))
    assert pixelforge.load(old).sample(2).shape == (2, 1, 28, 28)
    code, _, err = run_cli(capsys, "eval", str(old), "-n", "20", "--extractor", str(judge_run), "--split", "val")
    assert_clean_error(code, err, "which this run trained on")
    assert main(["eval", str(old), "-n", "20", "--extractor", str(judge_run), "--metrics", "fid"]) == 0
    with pytest.raises(PixelforgeError, match="--eval-every measures on the validation split, which this run"):
        pixelforge.train_gan(None, old, resume=True, max_steps=8, eval_every=1, extractor=str(judge_run),
                             progress=False)
    pixelforge.train_gan(None, old, resume=True, max_steps=7, progress=False)
    assert "split" not in json.loads((old / "config.json").read_text())["data"]  # still the old full set
    # One trained with --eval-every resumes with it off (its validation images were training images).
    config["train"]["eval_every"] = 3
    (old / "config.json").write_text(json.dumps(config))
    pixelforge.train_gan(None, old, resume=True, max_steps=9, progress=False)
    assert json.loads((old / "config.json").read_text())["train"]["eval_every"] is None
    assert not (old / "checkpoints" / "best").exists()


def test_too_small_for_a_validation_split(tmp_path, capsys):
    from PIL import Image

    for i in range(5):
        Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(tmp_path / f"{i}.png")
    code, _, err = run_cli(capsys, "train", "gan", "--data", f"folder:{tmp_path}", "--size", "32", "--max-steps", "1",
                           "--eval-every", "1", "--run-dir", str(tmp_path / "run"), "--no-progress")
    assert_clean_error(code, err, "is too small for a validation split")
