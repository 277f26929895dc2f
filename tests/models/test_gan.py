import pytest
import torch

from pixelforge.errors import PixelforgeError
import pixelforge.training.gan as training_gan
from pixelforge.models.gan import (LOSSES, SIZES, GANConfig, discriminator_loss, generator_loss, minibatch_std,
                                   gradient_penalty, r1_penalty, rotated_quarters)
from pixelforge.registry import create_model, list_models
from pixelforge.runtime import Runtime
from pixelforge.training.gan import GANTask, GANTrainConfig


@pytest.mark.parametrize("name", list_models(family="gan"))
@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("num_classes", [0, 5])
@pytest.mark.parametrize("upsample, arch", [("transposed", "dcgan"), ("resize", "dcgan"), ("transposed", "resnet")])
def test_shapes(name, size, channels, num_classes, upsample, arch):
    gan = create_model(name, image_size=size, channels=channels, num_classes=num_classes, width=8, latent_dim=12,
                       upsample=upsample, arch=arch)
    z = torch.randn(3, 12)
    y = torch.tensor([0, 4, 2]) if num_classes else None
    x = gan.generator(z, y)
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1  # tanh output
    assert gan.discriminator(x, y).shape == (3,)


def test_label_as_a_bias_of_the_first_feature_map():
    """``label_input="bias"``: the label adds a learnt per-class map to G's first layer instead
    of entering it beside z; the same images per label, far fewer parameters with few classes."""
    concat = create_model("dcgan", num_classes=3, width=8, latent_dim=8).generator
    bias = create_model("dcgan", num_classes=3, width=8, latent_dim=8, label_input="bias").generator.eval()
    assert GANConfig().label_input == "concat"  # runs saved before the option load as they were made
    assert sum(p.numel() for p in bias.parameters()) < sum(p.numel() for p in concat.parameters())
    z = torch.randn(1, 8).repeat(2, 1)
    x = bias(z, torch.tensor([0, 2]))
    assert x.shape == (2, 1, 28, 28) and not torch.allclose(x[0], x[1])
    expected = (bias.project(z) + bias.embed.weight[[0, 2]]).view(2, *bias.base_shape)
    torch.testing.assert_close(bias.body(expected), x)
    with pytest.raises(PixelforgeError, match="label input"):
        GANConfig(num_classes=3, label_input="film")


def test_conditional_generator_uses_labels():
    gan = create_model("dcgan", num_classes=3, width=8, latent_dim=8).eval()
    z = torch.randn(1, 8).repeat(2, 1)
    x = gan.generator(z, torch.tensor([0, 2]))
    assert not torch.allclose(x[0], x[1])
    with pytest.raises(PixelforgeError):
        gan.generator(z, None)


def test_projection_term_is_each_images_own_class_embedding_dot_its_features():
    num_classes = 3
    gan = create_model("dcgan", num_classes=num_classes, width=8, latent_dim=8).eval()
    D = gan.discriminator
    x = torch.randn(4, 1, 28, 28)
    y = torch.tensor([0, 2, 1, 2])
    features = D.body(x).flatten(1)
    expected = D.head(features).squeeze(1) + (features * D.embed.weight[y]).sum(dim=1)
    torch.testing.assert_close(D(x, y), expected)
    D(x, y).sum().backward()  # only the classes seen get gradient
    seen = torch.zeros(num_classes, dtype=torch.bool)
    seen[y] = True
    row_grads = D.embed.weight.grad.abs().sum(dim=1)
    assert (row_grads[~seen] == 0).all() and (row_grads[seen] > 0).all()


@pytest.mark.parametrize("d_norm", ["sn", "bn"])
def test_residual_gan_trains_and_its_blocks_add_a_shortcut(d_norm):
    from pixelforge.models.gan import _DBlock, _GBlock

    gan = create_model("dcgan", arch="resnet", d_norm=d_norm, width=8, latent_dim=8)
    assert sum(isinstance(m, _GBlock) for m in gan.generator.modules()) == 2  # 7 -> 14 -> 28 px
    assert sum(isinstance(m, _DBlock) for m in gan.discriminator.modules()) == 2  # 28 -> 14 -> 7 px
    block = next(m for m in gan.generator.modules() if isinstance(m, _GBlock))
    x = torch.randn(2, block.shortcut[1].in_channels, 7, 7)
    assert block(x).shape == (2, block.shortcut[1].out_channels, 14, 14)  # doubles the resolution
    assert not torch.allclose(block(x), block.residual(x))  # the shortcut adds its own path
    task = GANTask(gan, GANTrainConfig(loss="hinge"), Runtime.create("cpu"))
    before = [p.detach().clone() for p in task.G.parameters()]
    metrics = task.step(torch.rand(4, 1, 28, 28) * 2 - 1, None)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, task.G.parameters()))


def test_resize_upsampling_has_no_transposed_convolutions():
    resize = create_model("dcgan", width=8, upsample="resize").generator
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in resize.modules())
    assert sum(isinstance(m, torch.nn.Upsample) for m in resize.modules()) == 2  # 7 -> 14 -> 28


@pytest.mark.parametrize("bad", [dict(image_size=48), dict(channels=2), dict(d_norm="ln"), dict(width=0), dict(arch="vit"),
                                 dict(upsample="bilinear")])
def test_bad_config(bad):
    with pytest.raises(PixelforgeError):
        GANConfig(**bad)


def test_spectral_norm_bounds_weights():
    gan = create_model("dcgan", d_norm="sn", width=8)
    gan.discriminator.train()
    x = torch.randn(4, 1, 28, 28)
    for _ in range(20):  # power iterations converge
        gan.discriminator(x)
    conv = gan.discriminator.body[0]
    w = conv.weight.flatten(1)
    assert torch.linalg.matrix_norm(w.detach(), ord=2).item() == pytest.approx(1.0, abs=0.1)


def test_losses_reference_values():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    sp = torch.nn.functional.softplus
    assert discriminator_loss("ns", real, fake) == pytest.approx((sp(-real).mean() + sp(fake).mean()).item())
    assert discriminator_loss("hinge", real, fake).item() == pytest.approx((0 + 1) / 2 + (0 + 2) / 2)
    assert discriminator_loss("lsgan", real, fake).item() == pytest.approx((1 + 1) / 2 + (1 + 1) / 2)
    assert discriminator_loss("wgan-gp", real, fake).item() == pytest.approx(0.0 - 1.0)
    assert generator_loss("hinge", fake).item() == pytest.approx(0.0)
    assert generator_loss("lsgan", fake).item() == pytest.approx((4 + 0) / 2)


def test_gradient_penalty_of_linear_critic():
    # D(x) = sum(w * x) has gradient w everywhere: penalty = (||w|| - 1)^2.
    w = torch.full((1, 2, 2), 0.25)
    critic = lambda x, y=None: (x * w).flatten(1).sum(1)  # noqa: E731
    gp = gradient_penalty(critic, torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2))
    assert gp.item() == pytest.approx((0.5 - 1) ** 2, abs=1e-6)


def test_r1_penalty_of_quadratic_critic():
    # D(x) = sum(x^2) / 2 has gradient x: penalty = E ||x||^2, independent of the fakes.
    critic = lambda x, y=None: (x ** 2).flatten(1).sum(1) / 2  # noqa: E731
    real = torch.randn(5, 1, 2, 2)
    assert r1_penalty(critic, real).item() == pytest.approx(real.square().flatten(1).sum(1).mean().item(), rel=1e-5)


def test_r1_runs_lazily(monkeypatch):
    torch.manual_seed(0)
    gan = create_model("dcgan", width=8, latent_dim=8, d_norm="sn")
    task = GANTask(gan, GANTrainConfig(loss="hinge", r1_gamma=10.0, r1_every=2), Runtime.create("cpu"))
    penalties = []
    monkeypatch.setattr(training_gan, "r1_penalty", lambda *a: penalties.append(r1_penalty(*a)) or penalties[-1])
    for _ in range(4):
        m = task.step(torch.rand(8, 1, 28, 28) * 2 - 1, None)
        assert all(torch.isfinite(torch.tensor(v)) for v in m.values())
    assert len(penalties) == 2 and all(p.item() > 0 for p in penalties)
    assert "r1" in task.step(torch.rand(8, 1, 28, 28) * 2 - 1, None)  # the 5th update: 4 % 2 == 0 and task.d_updates == 4 and task.extra_state()["d_updates"] == 4
    with pytest.raises(PixelforgeError, match="batch norm"):
        GANTask(create_model("dcgan", width=8), GANTrainConfig(r1_gamma=1.0), Runtime.create("cpu"))
    with pytest.raises(PixelforgeError, match="r1-gamma"):
        GANTrainConfig(r1_gamma=-1.0)


def test_r1_weight_is_gamma_over_two_times_the_interval(monkeypatch):
    gan = create_model("dcgan", width=8, latent_dim=8, d_norm="none")
    task = GANTask(gan, GANTrainConfig(r1_gamma=4.0, r1_every=3), Runtime.create("cpu"))
    bias = gan.discriminator.head.bias
    monkeypatch.setattr(training_gan, "discriminator_loss", lambda kind, real, fake: real.float().sum() * 0)
    monkeypatch.setattr(training_gan, "r1_penalty", lambda D, x, y: bias.sum())  # d/d bias = 1
    grads = []
    monkeypatch.setattr(task.opt_d, "step", lambda *a, **k: grads.append(bias.grad.clone()))
    task.step(torch.rand(4, 1, 28, 28) * 2 - 1, None)
    assert grads[0].item() == pytest.approx(4.0 / 2 * 3)


@pytest.mark.parametrize("loss", LOSSES)
def test_one_training_step_per_loss(loss):
    torch.manual_seed(0)
    d_norm = "none" if loss == "wgan-gp" else "bn"
    gan = create_model("dcgan", width=8, latent_dim=8, d_norm=d_norm)
    task = GANTask(gan, GANTrainConfig(loss=loss, diffaug="color,translation,cutout"), Runtime.create("cpu"))
    before = [p.detach().clone() for p in task.G.parameters()]
    ema_before = [p.detach().clone() for p in task.ema.module.parameters()]
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    m = task.step(real, None)
    assert set(m) >= {"d_loss", "g_loss"} and all(torch.isfinite(torch.tensor(v)) for v in m.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, task.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(ema_before, task.ema.module.parameters()))
    assert all(p.requires_grad for p in task.D.parameters())  # unfrozen after the G update


def test_wgan_gp_refuses_batch_norm():
    with pytest.raises(PixelforgeError, match="batch norm"):
        GANTask(create_model("dcgan", width=8), GANTrainConfig(loss="wgan-gp"), Runtime.create("cpu"))


def test_gradient_accumulation_step():
    torch.manual_seed(0)
    task = GANTask(create_model("dcgan", width=8, latent_dim=8, num_classes=3), GANTrainConfig(), Runtime.create("cpu"))
    task.grad_accum = 2
    m = task.step(torch.rand(8, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    assert set(m) == {"d_loss", "d_real", "d_fake", "g_loss"}
    assert all(torch.isfinite(torch.tensor(v)) for v in m.values())


def test_rotated_quarters_turns_each_part_and_labels_it():
    x = torch.arange(8 * 4, dtype=torch.float).view(8, 1, 2, 2)
    turned, turns = rotated_quarters(x)
    assert turns.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(turned[:2], x[:2])
    assert torch.equal(turned[2:4], torch.rot90(x[2:4], 1, dims=(2, 3)))
    assert torch.equal(turned[6:], torch.rot90(x[6:], 3, dims=(2, 3)))
    assert not torch.equal(turned[2], x[2])


def test_rotation_self_supervision_trains_the_head_and_reaches_g(monkeypatch):
    torch.manual_seed(0)
    gan = create_model("dcgan", width=8, latent_dim=8, rotation_head=True)
    task = GANTask(gan, GANTrainConfig(rotation=1.0), Runtime.create("cpu"))
    head = gan.discriminator.rotation.weight  # a batch-norm D: no spectral-norm parametrisation
    before = head.detach().clone()
    m = task.step(torch.rand(8, 1, 28, 28) * 2 - 1, None)
    assert {"rotation_d", "rotation_g"} <= set(m) and all(torch.isfinite(torch.tensor(v)) for v in m.values())
    assert m["rotation_d"] > 0 and not torch.equal(before, head)
    # G's objective carries ROTATION_G_SHARE of the weight: with the GAN loss zeroed, G still gets gradients
    monkeypatch.setattr(training_gan, "generator_loss", lambda kind, d: d.float().sum() * 0)
    task.step(torch.rand(8, 1, 28, 28) * 2 - 1, None)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.G.parameters())
    monkeypatch.setattr(training_gan, "ROTATION_G_SHARE", 0.0)
    task.step(torch.rand(8, 1, 28, 28) * 2 - 1, None)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in task.G.parameters())
    turned, _ = rotated_quarters(torch.rand(8, 1, 28, 28).contiguous(memory_format=torch.channels_last))
    assert turned.is_contiguous(memory_format=torch.channels_last)
    assert gan.discriminator(torch.rand(4, 1, 28, 28), rotation=True).shape == (4, 4)
    with pytest.raises(PixelforgeError, match="rotation head"):
        GANTask(create_model("dcgan", width=8), GANTrainConfig(rotation=1.0), Runtime.create("cpu"))
    with pytest.raises(PixelforgeError, match="rotation head trains with"):
        GANTask(create_model("dcgan", width=8, rotation_head=True), GANTrainConfig(), Runtime.create("cpu"))
    with pytest.raises(PixelforgeError, match="rotation head"):
        create_model("dcgan", width=8).discriminator(torch.rand(2, 1, 28, 28), rotation=True)
    with pytest.raises(PixelforgeError, match="rotation"):
        GANTrainConfig(rotation=-1.0)


def test_consistency_regularisation_pulls_d_logits_on_changed_images_together(monkeypatch):
    torch.manual_seed(0)
    task = GANTask(create_model("dcgan", width=8, latent_dim=8), GANTrainConfig(consistency=10.0),
                   Runtime.create("cpu"))
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    # with the GAN loss zeroed, D's gradients come from the consistency term alone
    monkeypatch.setattr(training_gan, "discriminator_loss", lambda kind, r, f: (r.sum() + f.sum()).float() * 0)
    m = task.step(real, None)
    assert m["consistency"] > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.D.parameters())
    # the term is both halves, each the mean squared logit difference under the change
    calls = []
    by_hand = GANTask._consistency_loss

    def spy(self, seen, logits, labels):
        calls.append((seen, by_hand(self, seen, logits, labels)))
        return calls[-1][1]

    monkeypatch.setattr(GANTask, "_consistency_loss", spy)
    m = task.step(real, None)
    assert len(calls) == 2 and torch.equal(calls[0][0], real) and not calls[1][0].requires_grad
    assert m["consistency"] == pytest.approx(sum(v.item() for _, v in calls), rel=1e-5)
    monkeypatch.setattr(training_gan, "diff_augment", lambda x, policy, background: x.flip(3))
    with torch.no_grad():
        expected = (task.D(real.flip(3)) - task.D(real)).pow(2).mean()
        assert by_hand(task, real, task.D(real), None) == pytest.approx(expected.item(), rel=1e-5)
    monkeypatch.undo()
    monkeypatch.setattr(training_gan, "discriminator_loss", lambda kind, r, f: (r.sum() + f.sum()).float() * 0)
    # an unchanged copy gets the same logits: the term is exactly zero and D gets no gradient
    task.consistency_policy = ()
    m = task.step(real, None)
    assert m["consistency"] == 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in task.D.parameters())
    with pytest.raises(PixelforgeError, match="consistency"):
        GANTrainConfig(consistency=-1.0)
    with pytest.raises(PixelforgeError, match="DiffAugment policy"):
        GANTrainConfig(consistency=1.0, consistency_policy="spin")
    with pytest.raises(PixelforgeError, match="needs a --consistency-policy"):
        GANTrainConfig(consistency=1.0, consistency_policy="")


def test_minibatch_std_tells_a_batch_of_look_alikes_from_a_varied_one():
    torch.manual_seed(0)
    varied = torch.randn(8, 5)
    column = minibatch_std(varied, 4)
    assert column.shape == (8, 1)
    expected = varied.view(2, 4, 5).var(dim=1, unbiased=False).add(1e-8).sqrt().mean(dim=1)
    assert torch.allclose(column[:4], expected[0].expand(4, 1)) and torch.allclose(column[4:], expected[1].expand(4, 1))
    alike = varied[:1].expand(8, 5)
    assert minibatch_std(alike, 4).max() < 1e-3 < column.min()
    with pytest.raises(PixelforgeError, match="divide into groups of 4; this one has 6"):
        minibatch_std(varied[:6], 4)
    D = create_model("dcgan", width=8, minibatch_std=4).discriminator
    assert D.std_weight is not None and create_model("dcgan", width=8).discriminator.std_weight is None
    with torch.no_grad():
        D.std_weight.fill_(1.0)  # learnt from 0; the test needs it to matter
    out = D(torch.rand(8, 1, 28, 28))
    assert out.shape == (8,) and torch.isfinite(out).all()
    # the logits of one image depend on the other images of its group, not on other groups
    x = torch.rand(8, 1, 28, 28)
    D.eval()
    y = x.clone()
    y[5] = torch.rand(1, 28, 28)
    a, b = D(x), D(y)
    assert torch.allclose(a[:4], b[:4]) and not torch.allclose(a[4], b[4])
    # and G is pushed through it: with the head silenced, the images get gradients from the std alone
    with torch.no_grad():
        D.head.weight.zero_()
    x.requires_grad_(True)
    D(x).sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(PixelforgeError, match="minibatch-std"):
        create_model("dcgan", minibatch_std=1)
