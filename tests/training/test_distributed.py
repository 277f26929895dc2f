"""torchrun + DistributedDataParallel on the CPU (gloo): the same weights as one process with
the same global batch, resume under another world size, rank-0-only outputs."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from pixelforge.runs import Run

CLASSIFIER = ["train", "classifier", "--data", "digits", "--size", "16", "--width", "8", "--norm", "gn",
              "--dropout", "0", "--augment", "", "--precision", "fp32", "--no-progress"]


def pixelforge(*argv, nproc=1, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "pixelforge.cli", *argv]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "pixelforge.cli", *argv]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    if check:
        assert res.returncode == 0, res.stderr[-3000:]
    return res


def weights(run):
    return load_file(str(Run.open(run).latest_checkpoint() / "classifier.safetensors"))


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ddp") / "two"
    pixelforge(*CLASSIFIER, "--batch-size", "16", "--max-steps", "6", "--run-dir", str(run), nproc=2)
    return run


def test_two_processes_match_one_with_the_same_global_batch(two_process_run, tmp_path):
    one = tmp_path / "one"
    pixelforge(*CLASSIFIER, "--batch-size", "32", "--max-steps", "6", "--run-dir", str(one))
    a, b = weights(one), weights(two_process_run)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=f"{k} differs")
    # The parameters moved, so the comparison is not trivially between two initialisations.
    init = tmp_path / "init"
    pixelforge(*CLASSIFIER, "--batch-size", "32", "--max-steps", "1", "--run-dir", str(init))
    assert any(not torch.allclose(a[k], weights(init)[k]) for k in a if a[k].is_floating_point())


def test_rank_zero_writes_once(two_process_run):
    steps = [json.loads(l)["step"] for l in (two_process_run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [6]  # one record for the final step, not one per rank
    state = Run.open(two_process_run).load_state()
    assert state["world_size"] == 2 and state["images_per_step"] == 32


def test_resume_in_one_process(two_process_run, tmp_path):
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(two_process_run, run)
    pixelforge("train", "classifier", "--run-dir", str(run), "--resume", "--max-steps", "9", "--batch-size", "32",
               "--no-progress", "--precision", "fp32")
    state = Run.open(run).load_state()
    assert state["step"] == 9 and state["world_size"] == 1
    assert state["batch_in_epoch"] == 9  # 6 steps of 2x16 images, then 3 of 32: same place in the epoch


def test_gan_under_torchrun(tmp_path):
    run = tmp_path / "gan"
    pixelforge("train", "gan", "--data", "digits", "--size", "28", "--width", "8", "--batch-size", "16",
               "--max-steps", "4", "--run-dir", str(run), "--no-progress", nproc=2)
    assert Run.open(run).load_state()["step"] == 4
    assert (run / "samples" / "final.png").is_file()


def test_sync_bn_on_cpu_is_a_clear_error(tmp_path):
    res = pixelforge(*CLASSIFIER, "--sync-bn", "--max-steps", "2", "--run-dir", str(tmp_path / "s"), nproc=2, check=False)
    assert res.returncode != 0 and "SyncBatchNorm needs CUDA" in res.stderr


def test_gradient_accumulation_matches_the_big_batch(tmp_path):
    big, accum = tmp_path / "big", tmp_path / "accum"
    pixelforge(*CLASSIFIER, "--batch-size", "32", "--max-steps", "4", "--run-dir", str(big))
    pixelforge(*CLASSIFIER, "--batch-size", "8", "--grad-accum", "2", "--max-steps", "4", "--run-dir", str(accum),
               nproc=2)
    a, b = weights(big), weights(accum)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=f"{k} differs")
    assert Run.open(accum).load_state()["images_per_step"] == 32
