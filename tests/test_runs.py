import json
import os
import pickle

import pytest
import torch

from pixelforge.errors import RunError
from pixelforge.runs import Run


def test_create_refuses_to_overwrite(tmp_path):
    Run.create(tmp_path / "r", {"family": "gan"})
    with pytest.raises(RunError, match="already exists"):
        Run.create(tmp_path / "r", {"family": "gan"})
    r = Run.create(tmp_path / "r", {"family": "x"}, overwrite=True)
    assert r.config == {"family": "x"}


def test_open_errors(tmp_path):
    with pytest.raises(RunError, match="no run directory"):
        Run.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(RunError, match="not a pixelforge run"):
        Run.open(tmp_path / "plain")


def test_checkpoints_rotate_and_point_to_latest(tmp_path):
    r = Run.create(tmp_path / "r", {})
    for step in (1, 2, 3):
        r.save_checkpoint(step, {"m": {"w": torch.full((2,), float(step))}}, {"step": step}, keep=2)
    assert [p.name for p in r.list_checkpoints()] == ["step_00000002", "step_00000003"]
    assert r.latest_checkpoint().name == "step_00000003"
    assert r.load_weights("m")["w"].tolist() == [3.0, 3.0]
    assert r.load_state()["step"] == 3
    with pytest.raises(RunError, match="no x weights"):
        r.load_weights("x")


def test_half_written_checkpoint_is_ignored(tmp_path):
    r = Run.create(tmp_path / "r", {})
    r.save_checkpoint(1, {"m": {"w": torch.ones(1)}}, {"step": 1})
    # A writer killed mid-way leaves a hidden temp folder and never switches `latest`.
    stale = r.checkpoints_dir / ".tmp-step_00000002-99999"
    stale.mkdir()
    (stale / "m.safetensors").write_bytes(b"\x00" * 10)
    assert r.latest_checkpoint().name == "step_00000001"
    r.save_checkpoint(2, {"m": {"w": torch.ones(1)}}, {"step": 2})
    assert not stale.exists()


def test_channels_last_tensors_are_saved(tmp_path):
    r = Run.create(tmp_path / "r", {})
    w = torch.randn(4, 3, 2, 2).contiguous(memory_format=torch.channels_last)
    r.save_checkpoint(1, {"m": {"w": w}}, {})
    assert torch.equal(r.load_weights("m")["w"], w)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/pixelforge-pwned",))


def test_pickle_with_code_is_refused(tmp_path):
    r = Run.create(tmp_path / "r", {})
    ckpt = r.save_checkpoint(1, {"m": {"w": torch.ones(1)}}, {"step": 1})
    with open(ckpt / "trainer_state.pt", "wb") as f:
        pickle.dump({"step": _Evil()}, f)
    with pytest.raises(RunError, match="cannot load trainer state"):
        r.load_state()
    (ckpt / "m.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(RunError, match="cannot load"):
        r.load_weights("m")


def test_metrics_skip_torn_lines_and_truncate(tmp_path):
    r = Run.create(tmp_path / "r", {})
    for s in (10, 20, 30):
        r.log_metrics({"step": s, "loss": 1.0})
    with open(r.metrics_path, "a") as f:
        f.write('{"step": 40, "lo')  # killed mid-write
    assert [m["step"] for m in r.read_metrics()] == [10, 20, 30]
    r.truncate_metrics(20)
    lines = r.metrics_path.read_text().splitlines()
    assert [json.loads(l)["step"] for l in lines] == [10, 20]
