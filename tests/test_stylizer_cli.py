"""Feed-forward stylizer and AdaIN end to end: train via the CLI, stylize images/GIFs/frames, ONNX, errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pixelforge.api import load
from pixelforge.cli import main
from pixelforge.pipelines.style import load_rgb
from pixelforge.pipelines.stylizer import OnnxStylizer, StylizerPipeline, export_onnx, load_stylizer
from tests.synthetic import UNUSUAL_MODES, save_claiming_size, save_in_mode

TINY_STYLIZER = ["--widths", "4,8,8", "--blocks", "1", "--outer-kernel", "3", "--shuffle", "2"]
TRAIN = ["--crop", "32", "--size", "64", "--style-size", "48", "--batch-size", "2", "--max-steps", "2",
         "--no-progress", "--precision", "fp32"]

# AdaIN's ONNX graph against torch fp32: under one 8-bit level. The histogram colour matching (the default)
# maps the nearly flat output of these 2-step models onto the style's whole range, so its steep map
# stretches the runtimes' rounding differences (up to 2e-3 over 30 random inputs; 1e-5 before it)
ADAIN_ONNX_TOLERANCE = 1 / 255


def _picture(h, w, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx / w, yy / h, 0.5 + 0.4 * np.sin(xx / (3 + seed))], -1)
    img[(yy - h // 2) ** 2 + (xx - w // 3) ** 2 < (h // 4) ** 2] = rng.random(3)
    return Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("style-data")
    (root / "photos").mkdir()
    for i in range(3):
        _picture(72, 80, i).save(root / "photos" / f"p{i}.png")
    (root / "styles").mkdir()
    for i in range(2):
        rng = np.random.default_rng(10 + i)
        Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)).save(
            root / "styles" / f"s{i}.png")
    _picture(45, 61, 7).save(root / "content.png")
    _picture(8, 8, 8).save(root / "tiny.png")
    (root / "notes.png").write_text("not an image")
    frames = [_picture(40, 48, k) for k in range(3)]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:], duration=[80, 120, 100], loop=0)
    (root / "frames").mkdir()
    for name, frame in zip(["f_010.png", "f_002.png", "f_001.png"], frames):
        frame.save(root / "frames" / name)
    return root


@pytest.fixture(scope="module")
def stylizer_run(files, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "ff"
    assert main(["train", "stylizer", "--data", f"folder:{files / 'photos'}", "--style", str(files / "styles/s0.png"),
                 "--run-dir", str(run), *TINY_STYLIZER, *TRAIN]) == 0
    return run


@pytest.fixture(scope="module")
def adain_run(files, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "adain"
    assert main(["train", "adain", "--data", f"folder:{files / 'photos'}", "--styles", f"folder:{files / 'styles'}",
                 "--run-dir", str(run), "--widths", "8,8", "--refine", "r2", *TRAIN]) == 0
    return run


def test_trained_stylizer_run_rebuilds_and_stylizes_via_the_cli(stylizer_run, files, tmp_path, capsys):
    config = json.loads((stylizer_run / "config.json").read_text())
    assert config["family"] == "style" and config["model"]["name"] == "johnson"
    assert config["model"]["config"]["widths"] == [4, 8, 8]
    assert (stylizer_run / "style.png").is_file() and (stylizer_run / "samples" / "final.png").is_file()
    records = [json.loads(line) for line in (stylizer_run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 2 and {"content", "style", "tv", "colour", "loss"} <= records[-1].keys()
    pipe = load(stylizer_run, device="cpu")
    assert isinstance(pipe, StylizerPipeline) and pipe.kind == "feed-forward"

    out = tmp_path / "ff.png"
    assert main(["stylize", str(files / "content.png"), "--model", str(stylizer_run), "-o", str(out)]) == 0
    with Image.open(out) as img:
        assert img.size == (61, 45) and img.mode == "RGB"
        expected = pipe.stylize(files / "content.png")
        assert np.abs(np.asarray(img, dtype=int) - np.asarray(expected, dtype=int)).max() <= 1
    assert "feed-forward model" in capsys.readouterr().out


def test_adain_run_takes_any_style_and_alpha(adain_run, files, tmp_path):
    assert (adain_run / "styles" / "style_001.png").is_file()
    records = [json.loads(line) for line in (adain_run / "metrics.jsonl").read_text().splitlines()]
    assert {"content", "style", "colour", "loss"} <= records[-1].keys()
    outs = {}
    for alpha in ("0", "1"):
        outs[alpha] = tmp_path / f"a{alpha}.png"
        assert main(["stylize", str(files / "content.png"), "--model", str(adain_run), "--style",
                     str(files / "content.png"), "--alpha", alpha, "-o", str(outs[alpha]), "--size", "40"]) == 0
    with Image.open(outs["0"]) as a, Image.open(outs["1"]) as b:
        assert a.size == b.size == (40, 30)
    pipe = load_stylizer(adain_run, device="cpu")
    # alpha 0 decodes the content's own features: the style image does not matter.
    x = torch.rand(3, 32, 32)
    s1, s2 = torch.rand(3, 24, 24), torch.rand(3, 40, 40) * 0.2
    assert torch.allclose(pipe.run_tensor(x, s1, 0.0), pipe.run_tensor(x, s2, 0.0), atol=1e-6)
    assert not torch.allclose(pipe.run_tensor(x, s1, 1.0), pipe.run_tensor(x, s2, 1.0), atol=1e-3)


def test_stylize_sets_the_refine_strength_of_an_adain_model(adain_run, stylizer_run, files, tmp_path, capsys):
    content = str(files / "content.png")
    argv = ["stylize", content, "--model", str(adain_run), "--style", content, "--size", "40"]
    outs = []
    for strength in ("0", "1"):
        outs.append(tmp_path / f"r{strength}.png")
        assert main([*argv, "--refine-alpha", strength, "-o", str(outs[-1])]) == 0
    with Image.open(outs[0]) as weak, Image.open(outs[1]) as strong:
        assert np.abs(np.asarray(weak, dtype=int) - np.asarray(strong, dtype=int)).max() > 2
    assert main([*argv, "--refine-alpha", "1.5", "-o", str(tmp_path / "bad.png")]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
    assert main(["stylize", content, "--model", str(stylizer_run), "--refine-alpha", "0.5",
                 "-o", str(tmp_path / "ff.png")]) == 2
    assert "has no refine pass" in capsys.readouterr().err
    assert main([*argv, "--runtime", "onnx", "--refine-alpha", "0.5", "-o", str(tmp_path / "onnx.png")]) == 2
    assert "needs the torch runtime" in capsys.readouterr().err


def test_stylize_sets_the_content_scale_of_an_adain_model(adain_run, stylizer_run, files, tmp_path, capsys):
    """--content-scale S: AdaIN stylises the photo at S times its size and enlarges the result back to the
    photo's size (torch and ONNX Runtime alike); out of range or for a feed-forward model it is refused."""
    content = str(files / "content.png")
    argv = ["stylize", content, "--model", str(adain_run), "--style", content]
    outs = {}
    for scale in ("1", "0.5"):
        outs[scale] = tmp_path / f"s{scale}.png"
        assert main([*argv, "--content-scale", scale, "-o", str(outs[scale])]) == 0
    with Image.open(outs["1"]) as full, Image.open(outs["0.5"]) as half:
        assert full.size == half.size == Image.open(content).size
        assert np.abs(np.asarray(full, dtype=int) - np.asarray(half, dtype=int)).max() > 2
    onnx_out = tmp_path / "onnx.png"  # (its pixels against torch's: test_an_adain_export_records_its_content_scale)
    assert main([*argv, "--runtime", "onnx", "--content-scale", "0.5", "-o", str(onnx_out)]) == 0
    with Image.open(onnx_out) as onnx_half:
        assert onnx_half.size == Image.open(content).size
    assert main([*argv, "--content-scale", "0.1", "-o", str(tmp_path / "bad.png")]) == 2
    assert "between 0.25 and 1" in capsys.readouterr().err
    assert main(["stylize", content, "--model", str(stylizer_run), "--content-scale", "0.5",
                 "-o", str(tmp_path / "ff.png")]) == 2
    assert "for AdaIN models" in capsys.readouterr().err
    assert main(["stylize", content, "--style", content, "--content-scale", "0.5", "-o", str(tmp_path / "g.png")]) == 2
    assert "for trained models" in capsys.readouterr().err


def test_an_adain_export_records_its_content_scale(adain_run, tmp_path):
    pipe = load_stylizer(adain_run, device="cpu", precision="fp32")
    pipe.net.cfg.transform = "adain"  # what the ONNX graph runs
    pipe.set_content_scale(0.5)
    ort_pipe = OnnxStylizer(export_onnx(pipe, tmp_path / "model.onnx"))
    assert ort_pipe.content_scale == 0.5
    torch.manual_seed(0)
    image, style = torch.rand(3, 37, 50), torch.rand(3, 30, 26)
    got, expected = ort_pipe.run_tensor(image, style, 1.0), pipe.run_tensor(image, style, 1.0)
    assert got.shape == expected.shape == (3, 37, 50)
    assert (got - expected).abs().max() < ADAIN_ONNX_TOLERANCE


@pytest.mark.parametrize("which", ["stylizer_run", "adain_run"])
def test_onnx_runtime_matches_torch(which, request, tmp_path):
    run = request.getfixturevalue(which)
    pipe = load_stylizer(run, device="cpu", precision="fp32")
    path = export_onnx(run, tmp_path / "model.onnx")
    ort_pipe = OnnxStylizer(path)
    assert ort_pipe.kind == pipe.kind
    # AdaIN's mirrored margin is applied around the ONNX graph as in torch
    assert ort_pipe.border == (pipe.net.cfg.border if pipe.kind == "adain" else 0)
    torch.manual_seed(0)
    image, style = torch.rand(3, 37, 50), torch.rand(3, 30, 26)
    style = None if pipe.kind == "feed-forward" else style
    if style is not None:
        pipe.net.cfg.transform = "adain"  # what the ONNX graph runs (ONNX has no eigendecomposition)
    for alpha in ([1.0] if style is None else [1.0, 0.4]):
        expected = pipe.run_tensor(image, style, alpha)
        got = ort_pipe.run_tensor(image, style, alpha)
        assert got.shape == expected.shape == (3, 37, 50)
        assert (got - expected).abs().max() < (ADAIN_ONNX_TOLERANCE if style is not None else 1e-4)


@pytest.mark.parametrize("colour_match", ["rgb", "chroma", "histogram"])
def test_the_onnx_graph_matches_colours_as_torch_does(adain_run, tmp_path, colour_match):
    pipe = load_stylizer(adain_run, device="cpu", precision="fp32")
    pipe.net.cfg.transform = "adain"  # what the ONNX graph runs
    pipe.net.cfg.match_colours, pipe.net.cfg.colour_match = True, colour_match
    ort_pipe = OnnxStylizer(export_onnx(pipe, tmp_path / "model.onnx"))
    torch.manual_seed(0)
    image, style = torch.rand(3, 37, 50), 0.2 + 0.6 * torch.rand(3, 30, 26)
    tolerance = ADAIN_ONNX_TOLERANCE if colour_match == "histogram" else 1e-4
    assert (ort_pipe.run_tensor(image, style, 1.0) - pipe.run_tensor(image, style, 1.0)).abs().max() < tolerance


def test_an_adain_export_without_a_recorded_margin_runs_with_the_default(adain_run, tmp_path):
    """Exports from before the margin or the style side was recorded in the metadata get the defaults, as runs
    do (the style side's, 128 px, is the one those models had)."""
    import onnx

    from pixelforge.models.style import AdaINConfig

    path = export_onnx(adain_run, tmp_path / "model.onnx")
    model = onnx.load(str(path))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in ("border", "style_side")]
    del model.metadata_props[:]
    for key, value in kept:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    older = OnnxStylizer(path)
    assert older.border == AdaINConfig().border > 0 and older.style_side == 128


def test_adain_reads_the_style_at_its_models_side_in_torch_and_onnx(adain_run, tmp_path):
    from pixelforge.models.style import AdaINConfig

    big = tmp_path / "big.png"
    Image.fromarray(np.full((300, 400, 3), 100, np.uint8)).save(big)
    pipe = load_stylizer(adain_run, device="cpu")
    assert pipe.style_side == AdaINConfig().style_side and max(pipe.prepare_style(big).shape[1:]) == pipe.style_side
    pipe.net.cfg.style_side = 64  # the pipeline follows its model's setting
    assert max(pipe.prepare_style(big).shape[1:]) == 64 and max(pipe.prepare_style(big, 32).shape[1:]) == 32
    exported = OnnxStylizer(export_onnx(pipe, tmp_path / "model.onnx"))
    assert exported.style_side == 64 and max(exported.prepare_style(big).shape[1:]) == 64


def test_adain_runs_its_decoder_in_bf16_by_default_where_the_cpu_is_fast(stylizer_run, adain_run):
    from pixelforge.runtime import Runtime

    fast = Runtime.create("cpu", "auto").precision
    assert load_stylizer(adain_run, device="cpu").precision == fast
    assert load_stylizer(stylizer_run, device="cpu").precision == "fp32"
    assert load_stylizer(adain_run, device="cpu", precision="fp32").precision == "fp32"
    assert load_stylizer(stylizer_run, device="cpu", precision="auto").precision == fast
    fp32, bf16 = (load_stylizer(adain_run, device="cpu", precision=p) for p in ("fp32", "bf16"))
    for pipe in (fp32, bf16):
        pipe.net.cfg.transform = "wct"
        # the tiny run's nearly flat output: matching its colours would scale its rounding up too
        pipe.net.cfg.match_colours = False
    image, style = torch.rand(3, 32, 40), torch.rand(3, 30, 26)
    # the decoder's and the style statistics' bf16 rounding only: the whitened content features are fp32's
    assert (bf16.run_tensor(image, style, 1.0) - fp32.run_tensor(image, style, 1.0)).abs().max() < 0.05


def test_onnx_export_of_a_wct_adain_model_says_it_exports_adain(adain_run, tmp_path, caplog):
    pipe = load_stylizer(adain_run, device="cpu", precision="fp32")
    pipe.net.cfg.transform = "wct"
    with caplog.at_level("WARNING", logger="pixelforge.style"):
        path = export_onnx(pipe, tmp_path / "model.onnx")
    assert "no eigendecomposition" in caplog.text
    assert pipe.net.cfg.transform == "wct"  # the pipeline's own model is left as it was
    torch.manual_seed(0)
    image, style = torch.rand(3, 32, 40), torch.rand(3, 30, 26)
    got = OnnxStylizer(path).run_tensor(image, style, 1.0)
    wct = pipe.run_tensor(image, style, 1.0)
    pipe.net.cfg.transform = "adain"
    assert (got - pipe.run_tensor(image, style, 1.0)).abs().max() < ADAIN_ONNX_TOLERANCE
    assert (got - wct).abs().max() > 1e-3


def test_export_command_and_runtime_onnx(stylizer_run, files, tmp_path, capsys):
    onnx_file = tmp_path / "m.onnx"
    assert main(["export", str(stylizer_run), "-o", str(onnx_file)]) == 0
    out1, out2 = tmp_path / "o1.png", tmp_path / "o2.png"
    assert main(["stylize", str(files / "content.png"), "--model", str(onnx_file), "-o", str(out1)]) == 0
    assert main(["stylize", str(files / "content.png"), "--model", str(stylizer_run), "--runtime", "onnx",
                 "-o", str(out2)]) == 0
    assert (stylizer_run / "model.onnx").is_file()
    with Image.open(out1) as a, Image.open(out2) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_gif_in_gif_out_keeps_frames_and_timing(stylizer_run, files, tmp_path):
    out = tmp_path / "out.gif"
    assert main(["stylize", str(files / "anim.gif"), "--model", str(stylizer_run), "-o", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 3 and gif.size == (48, 40)
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
    assert durations == [80, 120, 100]


def test_frame_folder_in_folder_out_keeps_names(adain_run, files, tmp_path):
    out = tmp_path / "styled"
    assert main(["stylize", str(files / "frames"), "--model", str(adain_run), "--style", str(files / "styles/s1.png"),
                 "-o", str(out), "--alpha", "0.5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["f_001.png", "f_002.png", "f_010.png"]


def test_huge_images_are_downscaled_with_a_message(stylizer_run, files, tmp_path, capsys):
    out = tmp_path / "small.png"
    assert main(["stylize", str(files / "content.png"), "--model", str(stylizer_run), "-o", str(out),
                 "--max-size", "32"]) == 0
    with Image.open(out) as img:
        assert max(img.size) == 32
    assert "downscaled to 32x24" in capsys.readouterr().err


def test_a_size_over_the_cap_is_capped_before_the_image_is_resized(stylizer_run, files, tmp_path, capsys):
    out = tmp_path / "capped.png"
    assert main(["stylize", str(files / "content.png"), "--model", str(stylizer_run), "-o", str(out),
                 "--size", "200000", "--max-size", "32"]) == 0
    with Image.open(out) as img:
        assert max(img.size) == 32
    assert "at --size 200000; downscaled to 32x24" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["{content}", "--model", "{ff}", "--style", "{style}"], "style built in"),
    (["{content}", "--model", "{ff}", "--alpha", "0.5"], "--alpha is for AdaIN"),
    (["{content}", "--model", "{adain}"], "give the style image with --style"),
    (["{content}", "--model", "{adain}", "--style", "{style}", "--alpha", "1.5"], "--alpha must be between"),
    (["{content}", "--model", "{gan}"], "is a gan run; --model needs a style run"),
    (["{content}", "--model", "{notes}"], "neither a run directory, an .onnx file nor a shipped style model"),
    (["{content}", "--model", "{fake_onnx}"], "cannot load"),
    (["{notes}", "--model", "{ff}"], "cannot read"),
    (["{tiny}", "--model", "{ff}"], "need at least 16 px"),
    (["{huge}", "--model", "{ff}"], "too large: 9000x9000 px"),
    (["{content}", "--model", "{adain}", "--style", "{huge}"], "too large: 9000x9000 px"),
    (["{content}", "--model", "{adain}", "--style", "{tiny}"], "the style image is 8x8 px"),
    (["{gif}", "--style", "{style}"], "need a trained model"),
    (["{content}", "--style", "{style}", "--alpha", "0.5"], "--alpha is for trained models"),
    (["{content}"], "give the style image(s) with --style"),
])
def test_bad_input_is_one_clear_line(args, message, stylizer_run, adain_run, tiny_run, files, tmp_path, capsys):
    (tmp_path / "fake.onnx").write_bytes(b"not onnx")
    fields = {"content": files / "content.png", "ff": stylizer_run, "adain": adain_run, "gan": tiny_run,
              "style": files / "styles/s0.png", "notes": files / "notes.png", "tiny": files / "tiny.png",
              "gif": files / "anim.gif", "fake_onnx": tmp_path / "fake.onnx",
              "huge": save_claiming_size(tmp_path / "huge.png", 9000, 9000)}
    argv = ["stylize", *[a.format(**{k: str(v) for k, v in fields.items()}) for a in args], "-o", str(tmp_path / "o.png")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("role", ["content", "style"])
@pytest.mark.parametrize("mode", UNUSUAL_MODES)
def test_grey_alpha_and_16_bit_images_are_stylized_as_rgb(stylizer_run, adain_run, files, tmp_path, capsys, mode,
                                                           role):
    odd = save_in_mode(tmp_path / f"{mode.replace(';', '')}.png", mode)
    out = tmp_path / "o.png"
    if role == "content":  # the feed-forward model: content only
        argv = [str(odd), "--model", str(stylizer_run)]
    else:  # AdaIN: any style image
        argv = [str(files / "content.png"), "--model", str(adain_run), "--style", str(odd)]
    assert main(["stylize", *argv, "-o", str(out)]) == 0, capsys.readouterr().err
    with Image.open(out) as img:
        assert img.mode == "RGB" and img.size == ((32, 24) if role == "content" else (61, 45))


def test_transparency_is_composited_on_white(stylizer_run):
    pipe = load_stylizer(stylizer_run, device="cpu")
    rgb = np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    alpha = np.zeros((24, 32, 1), np.uint8)
    alpha[:, :16] = 255  # left half opaque, right half transparent (over colours that must not show)
    on_white = np.where(alpha == 255, rgb, 255).astype(np.uint8)
    assert np.array_equal(np.asarray(pipe.stylize(Image.fromarray(np.dstack([rgb, alpha])))),
                          np.asarray(pipe.stylize(Image.fromarray(on_white))))


def test_export_refuses_other_runs_and_onnx_files_of_other_models(tiny_run, tmp_path, capsys):
    assert main(["export", str(tiny_run), "-o", str(tmp_path / "g.onnx")]) == 2
    assert "is a gan run" in capsys.readouterr().err
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(tmp_path / "other.onnx"))
    with pytest.raises(Exception, match="not a pixelforge style model export"):
        OnnxStylizer(tmp_path / "other.onnx")


def test_missing_onnxruntime_is_a_clear_error(stylizer_run, files, tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("no onnxruntime")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    assert main(["stylize", str(files / "content.png"), "--model", str(stylizer_run), "--runtime", "onnx",
                 "-o", str(tmp_path / "o.png")]) == 2
    assert "pip install 'pixelforge[onnx]'" in capsys.readouterr().err


def test_training_refusals(files, tmp_path, capsys):
    assert main(["train", "stylizer", "--data", f"folder:{files / 'photos'}", "--run-dir", str(tmp_path / "r"),
                 *TRAIN]) == 2
    assert "--style IMAGE" in capsys.readouterr().err
    assert main(["train", "stylizer", "--data", f"folder:{files / 'photos'}", "--style", str(files / "notes.png"),
                 "--run-dir", str(tmp_path / "r"), *TRAIN]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["train", "adain", "--data", f"folder:{files / 'photos'}", "--styles", str(files / "missing.png"),
                 "--run-dir", str(tmp_path / "r2"), *TRAIN]) == 2
    assert "missing.png" in capsys.readouterr().err


def test_resume_continues_from_the_run_alone(files, tmp_path):
    run = tmp_path / "ff"
    first = [*TRAIN[:TRAIN.index("--max-steps")], "--max-steps", "1", "--no-progress", "--precision", "fp32"]
    assert main(["train", "stylizer", "--data", f"folder:{files / 'photos'}", "--style", str(files / "styles/s1.png"),
                 "--run-dir", str(run), *TINY_STYLIZER, *first]) == 0
    assert main(["train", "stylizer", "--resume", "--run-dir", str(run), "--max-steps", "2", "--no-progress"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert main(["train", "stylizer", "--resume", "--run-dir", str(run), "--max-steps", "3", "--no-progress",
                 "--style", str(files / "styles/s0.png")]) == 2


def test_shipped_style_weights_load_from_the_zoo_in_the_cli_and_the_api(stylizer_run, adain_run, files, tmp_path,
                                                                        monkeypatch, capsys):
    from safetensors.torch import load_file

    import pixelforge.zoo as zoo
    from pixelforge.pipelines.stylizer import export_stylizer

    for run, name in ((stylizer_run, "tiny-ff-v0"), (adain_run, "tiny-adain-v0")):
        path = export_stylizer(run, name, "pixelforge train ...", {"data": "three photos"}, dest=tmp_path)
        card = json.loads((tmp_path / f"{name}.json").read_text())
        assert card["family"] == "style" and card["data"] == "three photos" and card["steps"] == 2
        assert all(t.dtype == torch.float16 for t in load_file(str(path)).values() if t.is_floating_point())
    monkeypatch.setattr(zoo.catalog, "ZOO_DIR", tmp_path)
    content = load_rgb(files / "content.png", None)
    for name, run, style in (("tiny-ff-v0", stylizer_run, None), ("tiny-adain-v0", adain_run,
                                                                    load_rgb(files / "styles/s1.png", None))):
        shipped, own = (load(f"zoo:{name}", device="cpu", precision="fp32"),
                        load_stylizer(run, device="cpu", precision="fp32"))
        assert shipped.name == f"zoo:{name}" and shipped.path is None
        if style is not None:  # the weights' fp16 rounding seen through the smooth chroma map: the histogram
            for pipe in (shipped, own):  # map (the default) stretches the nearly flat output of a 2-step model
                assert pipe.net.cfg.colour_match == "histogram"
                pipe.net.cfg.colour_match = "chroma"
        assert (shipped.run_tensor(content, style) - own.run_tensor(content, style)).abs().max() < 0.02  # fp16
    out = tmp_path / "shipped.png"
    assert main(["stylize", str(files / "content.png"), "--model", "zoo:tiny-adain-v0", "--style",
                 str(files / "styles/s1.png"), "-o", str(out)]) == 0
    assert Image.open(out).size == (61, 45)
    assert main(["stylize", str(files / "content.png"), "--model", "zoo:nope", "-o", str(out)]) == 2
    assert "shipped: zoo:tiny-adain-v0, zoo:tiny-ff-v0" in capsys.readouterr().err
    assert main(["stylize", str(files / "content.png"), "--model", "zoo:tiny-ff-v0", "--runtime", "onnx",
                 "-o", str(out)]) == 2
    assert "shipped style models run in torch" in capsys.readouterr().err


def test_adain_refine_run_starts_its_decoder_from_another_run(adain_run, stylizer_run, files, tmp_path, capsys):
    """--refine r2 --decoder-from RUN: the new run's decoder starts as RUN's (its refiner fresh), trains,
    and stylizes; a feed-forward run or a decoder of another shape is refused in one line."""
    from pixelforge.pipelines.stylizer import load_stylizer

    run = tmp_path / "refined"
    args = ["train", "adain", "--data", f"folder:{files / 'photos'}", "--styles", f"folder:{files / 'styles'}",
            "--widths", "8,8", "--refine", "r2", *TRAIN]
    assert main([*args, "--run-dir", str(run), "--decoder-from", str(adain_run), "--lr", "1e-12"]) == 0
    source, refined = load_stylizer(adain_run, precision="fp32").net, load_stylizer(run, precision="fp32").net
    assert refined.cfg.refine == "r2" and refined.refiner is not None
    for k, v in source.decoder.state_dict().items():  # a learning rate of ~0 leaves the start as it was
        assert torch.allclose(refined.decoder.state_dict()[k].float(), v.float(), atol=1e-6), k
    out = tmp_path / "out.png"
    assert main(["stylize", str(files / "content.png"), "--model", str(run), "--style", str(files / "styles/s1.png"),
                 "-o", str(out)]) == 0 and out.is_file()
    assert main([*args, "--run-dir", str(tmp_path / "r2"), "--decoder-from", str(stylizer_run)]) == 2
    assert "not an AdaIN one" in capsys.readouterr().err
    assert main([*args, "--widths", "8,4", "--run-dir", str(tmp_path / "r3"),
                 "--decoder-from", str(adain_run)]) == 2
    assert "does not fit" in capsys.readouterr().err
    # a decoder with style FiLM (the default) may start from a plain one (its FiLM starts as the identity),
    # not the reverse
    plain = tmp_path / "plain"
    assert main([*args, "--no-style-film", "--run-dir", str(plain), "--decoder-from", str(adain_run)]) == 2
    assert "style_film True vs False" in capsys.readouterr().err
    assert not plain.exists()  # a refused start leaves no run behind
    assert main([*args, "--no-style-film", "--run-dir", str(plain)]) == 0
    # ... and replaces nothing: a refused --overwrite keeps the run that was there
    before = (plain / "config.json").read_text()
    assert main([*args, "--no-style-film", "--run-dir", str(plain), "--overwrite", "--decoder-from",
                 str(adain_run)]) == 2
    assert "style_film True vs False" in capsys.readouterr().err
    assert (plain / "config.json").read_text() == before and (plain / "styles").is_dir()
    assert main([*args, "--run-dir", str(tmp_path / "film"), "--decoder-from", str(plain)]) == 0


def test_an_adain_decoder_with_style_film_exports_to_onnx_as_it_runs_in_torch(tmp_path):
    """The style code and the FiLM layers are in the exported graph: ONNX Runtime gives torch's picture."""
    from pixelforge.registry import create_model

    torch.manual_seed(0)
    net = create_model("adain", widths=(8, 4), style_film=True, transform="adain").eval()
    for linear in net.film.values():  # a FiLM that acts (a fresh one is the identity)
        linear.weight.data.normal_(0, 0.02)
    pipe = StylizerPipeline(net)
    ort_pipe = OnnxStylizer(export_onnx(pipe, tmp_path / "film.onnx"))
    image, style = torch.rand(3, 37, 50), torch.rand(3, 30, 26)
    for alpha in (1.0, 0.4):
        expected, got = pipe.run_tensor(image, style, alpha), ort_pipe.run_tensor(image, style, alpha)
        assert (got - expected).abs().max() < ADAIN_ONNX_TOLERANCE


def test_resuming_a_run_from_before_an_option_compares_with_what_the_run_was_made_with():
    """A run written before an option existed resumes with the option's ABSENT_IN_OLDER value (as
    stored_config rebuilds it), so restating that value is accepted and asking for today's default is a
    clash, not a silent change."""
    from pixelforge.errors import RunError
    from pixelforge.pipelines.common import _check_compatible
    from pixelforge.training.style import AdaINTrainConfig

    older = {"model": {"name": "adain", "config": {"widths": [8, 8]}}, "task": {},
             "data": {"spec": "folder:x", "size": 64, "channels": 3}}
    _check_compatible(older, AdaINTrainConfig, {"style_film": False, "upsample": "nearest"}, None, None, None, None)
    with pytest.raises(RunError, match="style_film=True"):
        _check_compatible(older, AdaINTrainConfig, {"style_film": True}, None, None, None, None)
