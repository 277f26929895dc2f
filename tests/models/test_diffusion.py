import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.models.diffusion import UNetConfig, timestep_embedding
from pixelforge.registry import create_model, list_models
from pixelforge.runtime import Runtime
from pixelforge.training.diffusion import DiffusionTask, DiffusionTrainConfig


@pytest.mark.parametrize("name", list_models(family="diffusion"))
@pytest.mark.parametrize("size,mult,patch", [(28, [1, 2], 2), (32, [1, 2], 1), (64, [1, 2, 2], 2), (16, [1], 4)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("num_classes", [0, 3])
def test_shapes(name, size, mult, patch, channels, num_classes):
    net = create_model(name, image_size=size, channels=channels, width=8, channel_mult=mult, num_res_blocks=1,
                       patch_size=patch, attention_levels=[len(mult) - 1], num_classes=num_classes)
    x = torch.randn(2, channels, size, size)
    y = torch.tensor([0, 2]) if num_classes else None
    out = net(x, torch.tensor([0, 999]), y)
    assert out.shape == x.shape
    assert torch.all(out == 0)  # zero-initialised output layer: an untrained net predicts no noise


def _perturbed(net):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net.eval()


def test_net_depends_on_time_and_label():
    net = _perturbed(create_model("unet", image_size=16, width=8, num_classes=3, channel_mult=[1, 2]))
    x = torch.randn(1, 1, 16, 16).repeat(3, 1, 1, 1)
    out = net(x, torch.tensor([5, 500, 5]), torch.tensor([0, 0, 1]))
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[0], out[2])
    null = net(x[:1], torch.tensor([5]), None)  # no label = the null class
    assert torch.allclose(null, net(x[:1], torch.tensor([5]), torch.tensor([3])))
    with pytest.raises(PixelforgeError):
        create_model("unet", image_size=16, width=8, channel_mult=[1, 2])(x, torch.tensor([1, 2, 3]), torch.tensor([0, 0, 1]))


@pytest.mark.parametrize("side", [7, 17])  # 49 tokens: the explicit product; 289: the fused kernel
def test_attention_paths_agree(side):
    from pixelforge.models.diffusion import PLAIN_ATTENTION_MAX_TOKENS, Attention

    assert (side * side <= PLAIN_ATTENTION_MAX_TOKENS) == (side == 7)  # one side per path
    torch.manual_seed(0)
    att = Attention(16, heads=4)
    torch.nn.init.normal_(att.proj.weight, std=0.2)
    x = torch.randn(2, 16, side, side)
    q, k, v = att.qkv(att.norm(x)).reshape(2, 3, 4, 4, side * side).transpose(-1, -2).unbind(1)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(-1, -2).reshape(2, 16, side, side)
    torch.testing.assert_close(att(x), x + att.proj(ref), rtol=1e-4, atol=1e-5)


def test_timestep_embedding():
    e = timestep_embedding(torch.tensor([0, 1, 500]), 16)
    assert e.shape == (3, 16)
    assert torch.allclose(e[0, :8], torch.ones(8)) and torch.allclose(e[0, 8:], torch.zeros(8))


@pytest.mark.parametrize("bad", [dict(image_size=30), dict(channels=2), dict(width=4), dict(attention_levels=[5]),
                                 dict(patch_size=3), dict(dropout=1.0), dict(channel_mult=[])])
def test_bad_config(bad):
    with pytest.raises(PixelforgeError):
        UNetConfig(**bad)


@pytest.mark.parametrize("bad", [dict(prediction="x0"), dict(schedule="sqrt"), dict(timesteps=1), dict(lr=2),
                                 dict(ema_decay=1), dict(p_uncond=1), dict(min_snr=-1),
                                 dict(cooldown=1.5), dict(cooldown=-0.1)])
def test_bad_train_config(bad):
    with pytest.raises(PixelforgeError):
        DiffusionTrainConfig(**bad)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_training_step_fits_a_batch(prediction):
    """Repeated steps on one batch drive the (noisy) objective down: the gradients are right."""
    torch.manual_seed(0)
    net = create_model("unet", image_size=16, width=16, channel_mult=[1, 2], num_classes=2)
    task = DiffusionTask(net, DiffusionTrainConfig(prediction=prediction, lr=2e-3, warmup_steps=0, min_snr=0,
                                                   timesteps=100), Runtime.create("cpu", "fp32"))
    x = torch.zeros(16, 1, 16, 16)
    x[:, :, 4:12, 4:12] = 1
    x = x * 2 - 1
    y = torch.zeros(16, dtype=torch.long)
    losses = []
    for _ in range(60):
        task.set_progress(0.0)
        losses.append(task.step(x, y)["loss"])
    assert sum(losses[-10:]) < 0.7 * sum(losses[:10])
    assert task.ema.num_updates == 60


@pytest.mark.parametrize("cool, end_lr", [(0.3, 0.0), (0.0, 1e-3)])
def test_learning_rate_warms_up_then_cools_down(cool, end_lr):
    task = DiffusionTask(create_model("unet", image_size=16, width=8, channel_mult=[1]),
                         DiffusionTrainConfig(lr=1e-3, warmup_steps=10, cooldown=cool), Runtime.create("cpu", "fp32"))
    task.set_progress(0.0)
    assert task.opt.param_groups[0]["lr"] == pytest.approx(1e-4)  # first of 10 warm-up updates
    task.updates = 10
    for fraction, want in ((0.5, 1e-3), (0.85, 1e-3 if not cool else 5e-4), (1.0, end_lr)):
        task.set_progress(fraction)
        assert task.opt.param_groups[0]["lr"] == pytest.approx(want)


def test_min_snr_weights():
    task = DiffusionTask(create_model("unet", image_size=16, width=8, channel_mult=[1]),
                         DiffusionTrainConfig(min_snr=5.0), Runtime.create("cpu", "fp32"))
    a = task.schedule.alphas_cumprod
    t = torch.tensor([0, 999])
    snr = a[t] / (1 - a[t])
    w = task._weights(t)
    assert w[0].item() == pytest.approx(5.0 / snr[0].item(), rel=1e-2)  # low noise: clamped, down-weighted
    assert w[1].item() == pytest.approx(1.0)  # high noise: SNR < 5, weight 1
