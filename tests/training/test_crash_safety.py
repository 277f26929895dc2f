"""SIGKILL at random moments, including during checkpoint writes: every resume continues,
the run ends at the expected step, every checkpoint on disk loads, metrics.jsonl parses."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import torch

from pixelforge.runs import Run

MAX_STEPS = 400


def test_random_sigkills_then_resume(tmp_path):
    run = tmp_path / "crashy"
    # Checkpoint every step (0.0001 min), so many kills land inside a checkpoint write.
    base = [sys.executable, "-m", "pixelforge.cli", "train", "gan", "--data", "digits", "--size", "28",
            "--width", "4", "--latent-dim", "8", "--batch-size", "8", "--limit", "256",
            "--max-steps", str(MAX_STEPS), "--checkpoint-minutes", "0.0001", "--run", str(run), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(1234)
    kills = 0
    for _ in range(12):
        cmd = base + (["--resume"] if Run(run).latest_checkpoint() is not None else ["--overwrite"])
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Wait until training is under way (a checkpoint newer than when we started), then kill.
        before = Run(run).latest_checkpoint()
        deadline = time.monotonic() + 60
        while Run(run).latest_checkpoint() == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        err = proc.stderr.read()
        assert "Traceback" not in err, err
        for ckpt in Run(run).list_checkpoints():  # whatever survived the kill loads
            Run(run).load_weights("generator", ckpt)
            Run(run).load_state(ckpt)
    assert kills >= 10
    state_before = Run(run).load_state()["step"]
    assert 0 < state_before < MAX_STEPS
    done = subprocess.run(base + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    r = Run.open(run)
    assert r.load_state()["step"] == MAX_STEPS
    for ckpt in r.list_checkpoints():
        assert set(r.load_weights("generator", ckpt)) == set(r.load_weights("generator"))
    lines = r.metrics_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # no torn line survives a resume
    steps = [rec["step"] for rec in records]
    assert steps == sorted(steps) and steps[-1] == MAX_STEPS
    assert not list(r.checkpoints_dir.glob(".tmp-*"))
    assert torch.isfinite(r.load_weights("generator_ema")["project.weight"]).all()
