import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.registry import create_model, list_models
from pixelforge.runtime import Runtime
from pixelforge.training.classifier import ClassifierTask, ClassifierTrainConfig
from pixelforge.training.lr_schedules import one_cycle


@pytest.mark.parametrize("name", list_models(family="classifier"))
@pytest.mark.parametrize("size,channels", [(8, 1), (28, 1), (32, 3), (64, 3)])
def test_shapes(name, size, channels):
    net = create_model(name, image_size=size, channels=channels, num_classes=7, width=4)
    x = torch.randn(2, channels, size, size)
    assert net(x).shape == (2, 7)
    assert net.features(x).shape == (2, net.cfg.feature_dim)
    maps = net.feature_maps(x)
    assert [m.shape[-1] for m in maps] == [size // 2 ** (i + 1) for i in range(net.cfg.blocks)]


@pytest.mark.parametrize("bad", [dict(num_classes=1), dict(channels=4), dict(image_size=4), dict(dropout=1.0)])
def test_bad_config(bad):
    with pytest.raises(PixelforgeError):
        create_model("cnn", **bad)


def test_one_cycle_schedule():
    assert one_cycle(0.0, 0.2) == pytest.approx(0.04)
    assert one_cycle(0.2, 0.2) == pytest.approx(1.0)
    assert one_cycle(0.6, 0.2) == pytest.approx(0.5)
    assert one_cycle(1.0, 0.2) == pytest.approx(0.0)


def test_learns_a_separable_problem():
    """Bright vs dark images: a few steps must drive accuracy to 100%."""
    torch.manual_seed(0)
    task = ClassifierTask(create_model("cnn", image_size=8, num_classes=2, width=4, blocks=2),
                          ClassifierTrainConfig(lr=0.1, augment=""), Runtime.create("cpu", "fp32"))
    y = torch.randint(0, 2, (64,))
    x = (y.view(-1, 1, 1, 1).float() * 2 - 1) * 0.8 + 0.1 * torch.randn(64, 1, 8, 8)
    task.set_progress(0.5)
    for _ in range(30):
        m = task.step(x, y)
    assert m["train_acc"] == 1.0
    assert m["loss"] < 0.5


def test_augmentation_pads_with_the_background():
    """Shifted images are padded with black (-1, the Fashion-MNIST background), not mid-grey (0)."""
    torch.manual_seed(0)
    task = ClassifierTask(create_model("cnn", image_size=16, num_classes=2, width=4, blocks=2),
                          ClassifierTrainConfig(augment="flip,translation,cutout"), Runtime.create("cpu", "fp32"))
    out = task.augment_batch(torch.ones(32, 1, 16, 16))
    assert set(out.unique().tolist()) == {-1.0, 1.0}
    assert (out == -1).any(dim=(1, 2, 3)).all()  # every image lost something to the shift or the cutout square


def test_test_time_augmentation():
    """Trained with flips, the task and the pipeline average the image and its mirror: an image
    and its mirror get the same logits; without flips in the augmentation they do not.
    flip-shift averages 10 views: the mirror and 1-px shifts padded with black."""
    from pixelforge.pipelines.classifier import ClassifierPipeline

    torch.manual_seed(0)
    net = create_model("cnn", image_size=16, num_classes=3, width=4, blocks=2)
    x = torch.randint(0, 256, (4, 1, 16, 16), dtype=torch.uint8)
    for augment, invariant in (("flip,translation", True), ("translation", False)):
        task = ClassifierTask(net, ClassifierTrainConfig(augment=augment), Runtime.create("cpu", "fp32"))
        assert task.tta == ("flip" if invariant else "none")
        assert torch.allclose(task.predict(x), task.predict(x.flip(3)), atol=1e-5) is invariant
        pipe = ClassifierPipeline(net, net.cfg, ["a", "b", "c"], tta=task.tta)
        assert torch.allclose(pipe.logits(x), pipe.logits(x.flip(3)), atol=1e-5) is invariant
    single = task.predict(x, tta="none")
    assert torch.allclose(ClassifierPipeline(net, net.cfg, ["a", "b", "c"]).logits(x), single, atol=1e-5)
    # flip-shift, written out: the mean of the logits of 10 views.
    net.eval()
    xf = x.float() / 127.5 - 1
    padded = torch.nn.functional.pad(xf, (1, 1, 1, 1), value=-1.0)
    views = [xf] + [padded[..., 1 + dy:17 + dy, 1 + dx:17 + dx] for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    views += [v.flip(3) for v in views]
    with torch.no_grad():
        expected = torch.stack([net(v) for v in views]).mean(0)
    got = ClassifierPipeline(net, net.cfg, ["a", "b", "c"], tta="flip-shift").logits(x)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(task.predict(x, tta="flip-shift"), expected, atol=1e-5)
    with pytest.raises(PixelforgeError, match="unknown test-time augmentation 'crop10'"):
        ClassifierPipeline(net, net.cfg, ["a", "b", "c"], tta="crop10")


def test_mixup_blends_pairs_of_images_and_their_labels():
    from pixelforge.nn.augment import mixup

    torch.manual_seed(0)
    x = torch.randn(16, 1, 4, 4)
    mixed, perm, lam = mixup(x, 0.2)
    assert 0 <= lam <= 1 and sorted(perm.tolist()) == list(range(16))
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm])


def test_mixup_loss_mixes_the_two_labels(monkeypatch):
    """With mixup the loss is lam * CE(y) + (1 - lam) * CE(y[perm]) of the blended batch."""
    import torch.nn.functional as F

    import pixelforge.training.classifier as training

    perm = torch.arange(8).flip(0)
    monkeypatch.setattr(training, "mixup", lambda x, alpha: (0.3 * x + 0.7 * x[perm], perm, 0.3))
    torch.manual_seed(0)
    net = create_model("cnn", image_size=8, num_classes=2, width=4, blocks=2)
    task = ClassifierTask(net, ClassifierTrainConfig(augment="", mixup=0.2, label_smoothing=0.0, lr=1e-9),
                          Runtime.create("cpu", "fp32"))
    x, y = torch.randn(8, 1, 8, 8), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    net.train()  # batch statistics and dropout as in the step, with the same seed
    with torch.no_grad():
        torch.manual_seed(1)
        logits = net(0.3 * x + 0.7 * x[perm])
    expected = 0.3 * F.cross_entropy(logits, y) + 0.7 * F.cross_entropy(logits, y[perm])
    torch.manual_seed(1)
    assert task.step(x, y)["loss"] == pytest.approx(expected.item(), rel=1e-4)


def test_mixup_is_checked():
    with pytest.raises(PixelforgeError, match="mixup must be in"):
        ClassifierTrainConfig(mixup=-1)


def test_fine_tuning_starts_from_the_given_classifier(tmp_path):
    from pixelforge.data import load_dataset
    from pixelforge.pipelines.classifier import fit_classifier

    digits = load_dataset("digits", limit=64)
    first, _ = fit_classifier(digits, None, tmp_path / "first", max_steps=3, batch_size=16, seed=0)
    # a vanishing learning rate: the weights stay where training started
    tuned, _ = fit_classifier(digits, None, tmp_path / "tuned", max_steps=2, batch_size=16, seed=1, lr=1e-9, init=first)
    fresh, _ = fit_classifier(digits, None, tmp_path / "fresh", max_steps=2, batch_size=16, seed=1, lr=1e-9)
    weights = [n for n, w in first.net.state_dict().items() if n.endswith("weight") and w.dim() > 1]
    assert weights and all(torch.allclose(first.net.state_dict()[n], tuned.net.state_dict()[n], atol=1e-6)
                           for n in weights)
    assert not torch.allclose(first.net.state_dict()[weights[0]], fresh.net.state_dict()[weights[0]], atol=1e-3)
    with pytest.raises(PixelforgeError, match="cannot be its starting point"):
        fit_classifier(digits, None, tmp_path / "wider", max_steps=1, batch_size=16, width=16, init=first)
    assert not (tmp_path / "wider").exists()
