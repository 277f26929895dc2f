"""The family contract: every registered family trains through the public API, saves, loads back
with ``pixelforge.load`` and runs; every public name resolves; and a family defined only here
shows up in training, loading, evaluation, the CLI, the studio and the exports by registering
its descriptor alone."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import pixelforge
import pixelforge.api
from pixelforge import dryrun, families
from pixelforge.cli import main
from pixelforge.family import Family, TrainCommand, flag
from pixelforge.models.registration import register_model
from pixelforge.pipelines.common import load_weights_into, open_model, start_session
from pixelforge.registry import create_model, list_models
from pixelforge.training import SingleNetTask, Trainer
from tests.synthetic import synthetic_photo

PHOTO_SIZE = 160


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(synthetic_photo(rng, PHOTO_SIZE, PHOTO_SIZE)).save(folder / f"p{i}.png")
    return folder


def _train_inputs(command: str, photos) -> dict:
    """Data a command needs; everything else keeps its default (tiny images only where data decide)."""
    folder = {"data": f"folder:{photos}", "size": PHOTO_SIZE, "batch_size": 2}
    return {
        "stylizer": {**folder, "style": str(photos / "p0.png")},
        "adain": {**folder, "styles": f"folder:{photos}"},
        "sr": folder, "codec": folder, "pix2pix": folder,
        "cyclegan": {"data": "digits:1", "b_data": "digits:7", "size": 32, "batch_size": 2},
        "gan": {"data": "digits", "size": 28, "batch_size": 16},  # DCGAN sizes: 28, 32, 64
    }.get(command, {"data": "digits", "size": 16, "batch_size": 16})


def _use(pipe, command: str, photos):
    """Run a loaded pipeline once: sample a generator, else do the family's job on one image."""
    photo = Image.open(photos / "p1.png")
    if command == "ae":
        return pipe.reconstruct(torch.rand(2, 1, 16, 16))
    if getattr(pipe, "sample", None) is not None:
        return pipe.sample(2, seed=0)
    uses = {"classifier": lambda: pipe.topk(torch.randint(0, 255, (2, 1, 16, 16), dtype=torch.uint8), 1),
            "sr": lambda: pipe.upscale(photo.resize((32, 32))),
            "codec": lambda: pipe.decompress(pipe.compress(photo.resize((64, 64)))),
            "stylizer": lambda: pipe.stylize(photo.resize((32, 32))),
            "adain": lambda: pipe.stylize(photo.resize((32, 32)), style=photo.resize((32, 32))),
            "pix2pix": lambda: pipe.translate(photo.resize((32, 32))),
            "cyclegan": lambda: pipe.translate(Image.new("L", (32, 32)))}
    return uses[command]()


def _commands():
    return [pytest.param(f, c, id=c.name) for f in families.all_families() for c in f.commands]


@pytest.mark.parametrize("family,command", _commands())
def test_every_family_trains_saves_loads_and_runs(family, command, photos, tmp_path):
    run = tmp_path / command.name
    inputs = _train_inputs(command.name, photos)
    train = getattr(pixelforge, command.train.__name__)  # through the public API
    with dryrun.enabled(True):  # two steps, and two sampling steps
        pipe = train(inputs.pop("data"), run=run, progress=False, **command.fixed, **inputs)
        assert (run / "config.json").is_file() and any((run / "checkpoints").glob("step_*"))
        loaded = pixelforge.load(run, device="cpu")
        assert type(loaded) is type(pipe)
        assert families.run_family(run) is family
        assert _use(loaded, command.name, photos) is not None


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_builds_with_defaults(name):
    assert isinstance(create_model(name), nn.Module)


def test_every_public_name_resolves():
    for name in pixelforge.__all__:
        assert getattr(pixelforge, name) is not None, name
    for name in pixelforge.api.__all__:
        assert getattr(pixelforge.api, name) is not None, name
    # the names a new user tries first
    for name in ("train_codec", "train_stylizer", "train_adain", "load_gan", "load_diffusion", "load_classifier"):
        assert name in pixelforge.__all__ and callable(getattr(pixelforge, name))
    with pytest.raises(AttributeError):
        pixelforge.train_nothing


def test_shipped_models_load_as_zoo_names():
    sr = pixelforge.load("zoo:photos-sr-x2-v1", device="cpu")
    assert sr.scale == 2
    judge = pixelforge.load("zoo:fashion-mnist-cnn-v1", device="cpu")
    assert len(judge.classes) == 10


# -- a family that exists only in this test --------------------------------------------------

@dataclasses.dataclass
class ToyConfig:
    image_size: int = 28
    channels: int = 1
    toy_width: int = flag(4, help="hidden channels of the toy generator", check="positive")


@dataclasses.dataclass
class ToyTrainConfig:
    toy_lr: float = flag(1e-3, help="toy learning rate", check="positive")


class ToyNet(nn.Module):
    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.cfg = cfg
        self.net = nn.Sequential(nn.Conv2d(cfg.channels, cfg.toy_width, 3, padding=1), nn.Tanh(),
                                 nn.Conv2d(cfg.toy_width, cfg.channels, 3, padding=1), nn.Tanh())

    def forward(self, x):
        return self.net(x)


register_model("toy-net", family="toy", config=ToyConfig, description="a test's toy generator")(ToyNet)


class ToyTask(SingleNetTask):
    name = "toy"
    loss_keys = ("loss",)

    def __init__(self, net: ToyNet, cfg: ToyTrainConfig, runtime):
        self.net = runtime.module(net)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.toy_lr)

    def step(self, images, labels):
        loss = (self.net(torch.randn_like(images)) - images).pow(2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}

    def on_epoch_end(self, run, epoch, step):
        pass

    def on_train_end(self, run, step):
        pass


class ToyPipeline:
    num_classes = 0

    def __init__(self, net: ToyNet, path):
        self.net, self.path, self.image_size = net.eval(), path, net.cfg.image_size

    @torch.no_grad()
    def sample(self, n: int = 64, seed: int | None = 0, labels=None) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed or 0)
        shape = (n, self.net.cfg.channels, self.image_size, self.image_size)
        return self.net(torch.randn(shape, generator=g)).add(1).div(2)

    def interpolate(self, path, rows: int = 2, frames: int = 3, seed: int = 0, labels=None, fps: int = 5):
        """A latent walk of the toy's own kind: one sample grid per frame, as a GIF."""
        pictures = [Image.fromarray(self.sample(rows, seed=seed + k)[:, 0].flatten(0, 1).mul(255).byte().numpy())
                    for k in range(frames)]
        pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=1000 // fps, loop=0)
        return path


def train_toy(data, run=None, *, resume=False, overwrite=False, size=None, channels=None, limit=None,
              device="auto", precision="auto", seed=0, progress=True, **options) -> ToyPipeline:
    s = start_session("toy", ToyTrainConfig, data, run, model="toy-net", options=options, resume=resume,
                      overwrite=overwrite, size=size, channels=channels, limit=limit, device=device,
                      precision=precision, seed=seed,
                      model_defaults=lambda d: {"image_size": d.size, "channels": d.channels})
    task = ToyTask(create_model(s.model_name, **dataclasses.asdict(s.model_cfg)), s.task_cfg, s.runtime)
    Trainer(task, s.data, s.run, s.train_cfg, s.runtime, seed=s.seed, progress=progress).fit(resume=resume)
    return ToyPipeline(task.net, s.run.path)


def load_toy(run_dir, device="auto") -> ToyPipeline:
    r, _, net, _ = open_model(run_dir, "toy", device)
    load_weights_into(r, net, "toy")
    return ToyPipeline(net, r.path)


def export_toy(run_dir, output):
    """The toy's "ONNX export": a file naming the run (``pixelforge export`` only calls it)."""
    Path(output).write_text(f"toy export of {run_dir}")
    return output


TOY = Family("toy", load_toy, generates=True, interpolates="latent", export_onnx=export_toy,
             exports=(ToyPipeline,), commands=(
    TrainCommand("toy", "train the toy family", train_toy, (ToyConfig, ToyTrainConfig),
                 report=lambda pipe: [f"toy samples: {pipe.path}"]),))


@pytest.fixture
def toy_family():
    families.register_family(TOY)
    yield TOY
    families.unregister_family(TOY.name)


def test_a_family_registered_alone_appears_everywhere(toy_family, tmp_path, capsys):
    # exports
    assert {"train_toy", "load_toy", "ToyPipeline"} <= set(pixelforge.__all__)
    assert pixelforge.train_toy is train_toy and pixelforge.api.load_toy is load_toy
    # the CLI: flags and defaults from the dataclass fields
    with pytest.raises(SystemExit):
        main(["train", "toy", "--help"])
    assert "--toy-width TOY_WIDTH" in (out := capsys.readouterr().out) and "(default 4)" in out
    run = tmp_path / "runs" / "toy"
    assert main(["train", "toy", "--data", "digits", "--size", "16", "--toy-width", "3", "--max-steps", "2",
                 "--batch-size", "8", "--run-dir", str(run), "--no-progress"]) == 0
    assert f"toy samples: {run}" in capsys.readouterr().out
    # loading and sampling
    pipe = pixelforge.load(run)
    assert isinstance(pipe, ToyPipeline) and pipe.net.cfg.toy_width == 3
    assert main(["sample", str(run), "-n", "4", "-o", str(tmp_path / "grid.png")]) == 0
    # evaluation (a two-step classifier as the judge)
    with dryrun.enabled(True):
        pixelforge.train_classifier("digits", tmp_path / "judge", size=16, width=8, progress=False)
        result = pixelforge.evaluate_run(run, n=20, extractor=str(tmp_path / "judge"), metrics=("fid",),
                                         progress=False)
    assert result["fid"] >= 0
    # the studio: listed among generators, loadable, offered in the Generate tab
    from pixelforge.web import Studio
    from pixelforge.web.tabs import get_tab

    studio = Studio(tmp_path / "runs", tmp_path / "out")
    generators = families.generator_families()
    assert "toy" in generators
    assert [m["id"] for m in studio.list_models(generators)] == ["toy"]
    assert isinstance(studio.load("toy", generators), ToyPipeline)
    model_field = get_tab("generate").action("sample").fields[0]
    assert "toy" in model_field.spec()["families"]


def test_registering_a_clashing_family_is_refused():
    gan = families.get_family("gan")
    with pytest.raises(ValueError, match="registered twice"):
        families.register_family(gan)
    with pytest.raises(ValueError, match="already belongs"):
        families.register_family(dataclasses.replace(TOY, name="toy2", commands=gan.commands))


def test_interpolate_and_export_take_a_family_by_its_capabilities(toy_family, tmp_path, capsys):
    run = tmp_path / "runs" / "toy"
    with dryrun.enabled(True):
        pixelforge.train_toy("digits", run=run, size=16, progress=False)
    # interpolate: a latent walk, with the toy pipeline's own defaults (3 frames)
    assert main(["interpolate", str(run), "-o", str(tmp_path / "walk.gif")]) == 0
    assert Image.open(tmp_path / "walk.gif").n_frames == 3
    assert main(["interpolate", str(run), "--between", str(tmp_path / "walk.gif")]) == 2
    assert "--between is for runs of autoencoder" in capsys.readouterr().err  # walks between codes
    # export: the family's own writer
    assert main(["export", str(run), "-o", str(tmp_path / "toy.onnx")]) == 0
    assert (tmp_path / "toy.onnx").read_text() == f"toy export of {run}"
    # the studio's latent walks offer it
    from pixelforge.web.tabs import get_tab

    assert "toy" in get_tab("generate").action("interpolate").fields[0].spec()["families"]
    # without the capabilities, both commands refuse it and name the families that have them
    families.unregister_family("toy")
    families.register_family(dataclasses.replace(TOY, interpolates="", export_onnx=None))
    assert main(["interpolate", str(run), "-o", str(tmp_path / "walk2.gif")]) == 2
    err = capsys.readouterr().err
    assert "is a toy run; interpolate walks runs of" in err
    assert "gan" in err.split("walks runs of")[1] and "toy" not in err.split("walks runs of")[1]
    assert main(["export", str(run), "-o", str(tmp_path / "toy2.onnx")]) == 2
    err = capsys.readouterr().err
    assert "is a toy run; export writes ONNX for runs of" in err and "style" in err
