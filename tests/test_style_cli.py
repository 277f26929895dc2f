"""``pixelforge stylize`` and ``pixelforge texture`` end to end on tiny images, and their refusals."""

import functools
import socket

import numpy as np
import pytest
import torch
from PIL import Image

from pixelforge.cli import main
from pixelforge.pipelines.style import load_rgb, rgb_to_ycbcr
from tests.synthetic import UNUSUAL_MODES, save_claiming_size, save_in_mode


@pytest.fixture(autouse=True)
def _no_user_weights(monkeypatch):
    for variable in ("PIXELFORGE_VGG19_WEIGHTS", "PIXELFORGE_VGG16_WEIGHTS"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:60, 0:90]
    content = np.stack([xx / 90, yy / 60, 0.5 + 0.4 * np.sin(xx / 5)], -1)
    content[(yy - 30) ** 2 + (xx - 40) ** 2 < 200] = [0.9, 0.2, 0.1]
    style = rng.random((8, 8, 3)).repeat(6, 0).repeat(6, 1)  # coloured blocks
    paths = {}
    for name, array in (("content", content), ("style", style), ("style2", 1 - style)):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray((array.clip(0, 1) * 255).astype(np.uint8)).save(paths[name])
    (tmp_path / "notes.png").write_text("not an image")
    paths["text"] = tmp_path / "notes.png"
    return paths


def test_stylize_writes_the_image_and_intermediate_steps(images, tmp_path, capsys):
    out = tmp_path / "out" / "result.png"
    code = main(["stylize", str(images["content"]), "--style", f"{images['style']},{images['style2']}",
                 "--style-mix", "0.7,0.3", "-o", str(out), "--size", "48", "--steps", "6", "--save-every", "3"])
    assert code == 0
    with Image.open(out) as img:
        assert img.size == (48, 32) and img.mode == "RGB"
    assert (tmp_path / "out" / "result_step0003.png").is_file()
    assert "content" in capsys.readouterr().out


def test_preserve_color_via_the_cli_keeps_the_chroma(images, tmp_path):
    out = tmp_path / "kept.png"
    assert main(["stylize", str(images["content"]), "--style", str(images["style"]), "-o", str(out), "--size", "45",
                 "--steps", "6", "--optimizer", "adam", "--preserve-color"]) == 0
    with Image.open(images["content"]) as c:
        content = c.convert("RGB").resize((45, 30), Image.LANCZOS)
    import torch

    def ycc(img):
        return rgb_to_ycbcr(torch.tensor(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1))

    with Image.open(out) as img:
        diff = (ycc(img)[1:] - ycc(content)[1:]).abs().mean().item()
    assert diff < 0.01  # uint8 rounding and the RGB clamp only


def test_coarse_to_fine_with_the_styles_colours_via_the_cli(images, tmp_path, capsys):
    out = tmp_path / "c2f.png"
    assert main(["stylize", str(images["content"]), "--style", str(images["style"]), "-o", str(out), "--size", "64",
                 "--steps", "6", "--scales", "2", "--match-colors"]) == 0
    with Image.open(out) as img:
        assert img.size == (64, 43)
        result = np.asarray(img.convert("RGB"), dtype=np.float32) / 255
    with Image.open(images["style"]) as s, Image.open(images["content"]) as c:
        style, content = (np.asarray(i.convert("RGB"), dtype=np.float32) / 255 for i in (s, c))
    # The mean colour moves from the photo's to the style's.
    assert np.abs(result.mean((0, 1)) - style.mean((0, 1))).sum() < 0.5 * np.abs(content.mean((0, 1))
                                                                               - style.mean((0, 1))).sum()


@pytest.mark.parametrize("extra, expected", [
    ([], {"style_weight": 100.0, "tv_weight": 10.0, "scales": 3}),
    (["--texture"], {"style_weight": 3.0, "tv_weight": 1.0, "scales": 1}),
    (["--texture", "--style-weight", "7", "--scales", "2"], {"style_weight": 7.0, "tv_weight": 1.0, "scales": 2}),
])
def test_left_out_options_take_the_defaults_of_the_matching_api_call(images, tmp_path, monkeypatch, extra,
                                                                      expected):
    from pixelforge.defaults import default_in
    from pixelforge.pipelines import style

    calls = []

    @functools.wraps(style.stylize)  # keeps the signature, whose defaults the command reads
    def recording(*a, **kw):
        calls.append(kw)
        return style.StyleResult(torch.zeros(3, 8, 8), [{"content": 0.0, "style": 0.0, "tv": 0.0}])

    monkeypatch.setattr(style, "stylize", recording)
    content = [] if "--texture" in extra else [str(images["content"])]
    assert main(["stylize", *content, "--style", str(images["style"]), "-o", str(tmp_path / "o.png"), *extra]) == 0
    api = style.synthesize_texture if "--texture" in extra else style.stylize
    assert {k: calls[0][k] for k in expected} == expected
    assert all(expected[k] == default_in(api, k) for k in expected if f"--{k.replace('_', '-')}" not in extra)


def test_texture_command_and_stylize_texture_flag(images, tmp_path):
    out = tmp_path / "tex.png"
    assert main(["texture", str(images["style"]), "-o", str(out), "--size", "32", "--steps", "4"]) == 0
    with Image.open(out) as img:
        assert img.size == (32, 32)
    out2 = tmp_path / "tex2.png"
    assert main(["stylize", "--texture", "--style", str(images["style"]), "-o", str(out2), "--size", "32",
                 "--steps", "3", "--optimizer", "adam"]) == 0
    assert out2.is_file()


def _refused_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize("extra, message", [
    (["--style", "{missing}"], "no image file at"),
    (["--style", "{text}"], "cannot read"),
    (["--style", "{style},{style2}", "--style-mix", "1"], "1 weights for 2 style image(s)"),
    (["--style", "{style}", "--backbone", "alexnet"], "unknown backbone 'alexnet'"),
    (["--style", "{style}", "--backbone", "vgg19"], "pass --weights PATH"),
    (["--style", "{style}", "--backbone", "vgg16", "--weights", "{missing}"], "vgg16 weights not found at"),
    (["--style", "{style}", "--texture"], "leave out the content image"),
    (["--style", "{style}", "-o", "{out}.xyz"], "cannot write .xyz images"),
    (["--style", "{style}", "--preserve-color", "--match-colors"], "cannot also take the style's"),
])
def test_bad_input_is_one_clear_line(images, tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.setenv("PIXELFORGE_WEIGHTS_MIRROR", _refused_url())
    fields = {k: str(v) for k, v in images.items()} | {"missing": str(tmp_path / "missing.png"),
                                                       "out": str(tmp_path / "o")}
    args = [a.format(**fields) for a in extra]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "o.png")]
    code = main(["stylize", str(images["content"]), *args, "--size", "32", "--steps", "2"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("pixelforge: error")]) == 1
    assert not (tmp_path / "o.png").exists()


def test_missing_content_image(images, tmp_path, capsys):
    assert main(["stylize", str(tmp_path / "nope.jpg"), "--style", str(images["style"]), "-o",
                 str(tmp_path / "o.png")]) == 2
    assert "no image file at" in capsys.readouterr().err


def test_stylize_with_vgg16_weights_from_a_file(images, tmp_path, capsys):
    import torch

    from pixelforge.models.style import VGGFeatures

    net = VGGFeatures("vgg16")  # up to relu5_1, the deepest default layer: the part of the file that is read
    weights = tmp_path / "vgg16-397923af.pth"
    torch.save(net.state_dict(), weights)
    out = tmp_path / "vgg.png"
    assert main(["stylize", str(images["content"]), "--style", str(images["style"]), "-o", str(out), "--size", "32",
                 "--steps", "2", "--backbone", "vgg16", "--weights", str(weights)]) == 0
    assert out.is_file() and "vgg16 backbone" in capsys.readouterr().out

    truncated = tmp_path / "short.pth"
    torch.save({k: v for k, v in net.state_dict().items() if int(k.split(".")[1]) < 19}, truncated)
    assert main(["stylize", str(images["content"]), "--style", str(images["style"]), "-o", str(out), "--size", "32",
                 "--steps", "2", "--backbone", "vgg16", "--weights", str(truncated), "--overwrite"]) == 2
    assert "missing keys (e.g. features.19.weight)" in capsys.readouterr().err


@pytest.mark.parametrize("role", ["content", "style"])
@pytest.mark.parametrize("mode", UNUSUAL_MODES)
def test_grey_alpha_and_16_bit_images_are_stylized_as_rgb(images, tmp_path, capsys, mode, role):
    odd = save_in_mode(tmp_path / f"{mode.replace(';', '')}.png", mode)
    content, style = (odd, images["style"]) if role == "content" else (images["content"], odd)
    out = tmp_path / "o.png"
    assert main(["stylize", str(content), "--style", str(style), "-o", str(out), "--size", "32", "--steps", "1",
                 "--optimizer", "adam"]) == 0, capsys.readouterr().err
    with Image.open(out) as img:
        assert img.mode == "RGB" and img.size == ((32, 24) if role == "content" else (32, 21))


def test_alpha_is_composited_on_white_and_16_bit_is_scaled(tmp_path):
    clear = Image.new("RGBA", (20, 20), (0, 0, 0, 0))  # transparent black: white once composited
    assert load_rgb(clear, None).min().item() == 1.0
    deep = Image.fromarray(np.full((20, 20), 128 * 257, np.uint16))  # mid grey in 16 bits, not clamped white
    assert deep.mode == "I;16"
    assert load_rgb(deep, None).unique().tolist() == pytest.approx([128 / 255])
    assert load_rgb(save_in_mode(tmp_path / "deep.png", "I;16"), None).std().item() > 0.1  # not a flat clamp


def test_tiny_images_are_upscaled_to_size(images, tmp_path):
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(tiny)
    out = tmp_path / "o.png"
    assert main(["stylize", str(tiny), "--style", str(tiny), "-o", str(out), "--size", "16", "--steps", "1",
                 "--optimizer", "adam"]) == 0
    with Image.open(out) as img:
        assert img.size == (16, 16)


@pytest.mark.parametrize("argv, message", [
    (["{thin}", "--style", "{style}", "--size", "32"], "the content image is 32x2 px at --size 32; the offline "
                                                       "feature network needs at least 16 px on each side"),
    (["{content}", "--style", "{thin}", "--size", "32"], "the style image thin.png is 32x2 px"),
    (["{content}", "--style", "{style}", "--size", "16"], "the content image is 16x11 px"),
    (["--texture", "--style", "{style}", "--size", "8"], "the texture is 8x8 px"),
    (["{huge}", "--style", "{style}", "--size", "16"], "too large: 9000x9000 px, more than 64 MP"),
    (["{content}", "--style", "{huge}", "--size", "16"], "too large: 9000x9000 px"),
])
def test_too_thin_too_small_and_huge_images_are_one_clear_line(images, tmp_path, capsys, argv, message):
    thin = tmp_path / "thin.png"
    Image.fromarray(np.zeros((2, 32, 3), np.uint8)).save(thin)
    fields = {"thin": thin, "huge": save_claiming_size(tmp_path / "huge.png", 9000, 9000), **images}
    args = [a.format(**{k: str(v) for k, v in fields.items()}) for a in argv]
    assert main(["stylize", *args, "-o", str(tmp_path / "o.png"), "--steps", "1", "--optimizer", "adam"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("argv", [["{content}", "--style", "{style}"], ["--texture", "--style", "{style}"]])
def test_a_size_beyond_the_free_memory_is_refused_before_any_resize(images, tmp_path, monkeypatch, capsys, argv):
    monkeypatch.setattr("pixelforge.pipelines.style.available_memory", lambda device: 8 << 30)
    args = [a.format(**{k: str(v) for k, v in images.items()}) for a in argv]
    assert main(["stylize", *args, "--size", "200000", "-o", str(tmp_path / "o.png"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "px result needs about" in err and "more than the 8.0 GiB free here; lower --size" in err
    assert "Traceback" not in err and not (tmp_path / "o.png").exists()


def test_device_auto_is_resolved(images, tmp_path):
    out = tmp_path / "auto.png"
    assert main(["stylize", str(images["content"]), "--style", str(images["style"]), "--size", "32", "--steps", "1",
                 "--device", "auto", "-o", str(out)]) == 0
    assert out.is_file()
