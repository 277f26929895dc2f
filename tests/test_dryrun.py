"""The fast mode (PIXELFORGE_DRY_RUN / --dry-run): each cap, in the one place that applies it."""

from __future__ import annotations

import json

import pytest
import torch

import pixelforge
from pixelforge import dryrun
from pixelforge.cli import main
from tests.conftest import TINY


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setenv(dryrun.VARIABLE, "1")


def _steps(run) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def judge(fast, tmp_path) -> str:
    """A digits classifier (two steps: the fast mode) as the evaluations' judge network."""
    pixelforge.train_classifier("digits", tmp_path / "judge", size=28, epochs=1, width=8, progress=False)
    return str(tmp_path / "judge")


def test_trainer_stops_after_two_steps_of_each_invocation_and_evaluates(judge, tmp_path):
    run = tmp_path / "gan"
    pixelforge.train_gan("digits", run, epochs=50, eval_every=1000, eval_samples=2000, extractor=judge, **TINY)
    assert (run / "checkpoints" / "step_00000002").is_dir()
    assert (run / "checkpoints" / "best").exists()  # --eval-every 1000 evaluated at step 2
    best = json.loads((run / "checkpoints" / "best" / "best.json").read_text())
    assert best["step"] == 2 and "fid" in best
    pixelforge.train_gan("digits", run, epochs=50, resume=True, extractor=judge, **TINY)  # two more steps
    assert max(_steps(run)) == 4


def test_no_budget_is_fine_in_the_fast_mode(fast, tmp_path):
    pixelforge.train_gan("digits", tmp_path / "r", **TINY)
    assert max(_steps(tmp_path / "r")) == 2


def test_without_the_fast_mode_the_budget_rules(monkeypatch, tmp_path):
    monkeypatch.delenv(dryrun.VARIABLE, raising=False)
    pixelforge.train_gan("digits", tmp_path / "r", max_steps=5, **TINY)
    assert max(_steps(tmp_path / "r")) == 5


def test_datasets_evaluations_and_sampling_steps_are_capped(fast, monkeypatch):
    assert len(pixelforge.load_dataset("digits")) == dryrun.LIMITS["images"]
    assert len(pixelforge.load_dataset("digits", limit=7)) == 7

    from pixelforge import schedulers

    calls = []
    schedule = schedulers.NoiseSchedule("cosine", 1000)

    def denoise(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    schedulers.sample(denoise, schedule, "eps", (2, 1, 8, 8), steps=250, resample=4)
    assert len(set(calls)) == dryrun.LIMITS["sampling_steps"]  # 2 steps instead of 250
    assert len(calls) == 3  # the first step resampled twice (RePaint jumps capped at 2), the last once


def test_evaluation_takes_few_samples(judge, tiny_run):
    from pixelforge.evaluation import evaluate_run

    result = evaluate_run(tiny_run, n=10000, extractor=judge, metrics=("fid",), progress=False)
    assert result["n_fake"] == dryrun.LIMITS["samples"]


def test_cli_dry_run_flag_is_the_same_mode_and_does_not_leak(monkeypatch, tmp_path):
    monkeypatch.delenv(dryrun.VARIABLE, raising=False)
    run = tmp_path / "r"
    assert main(["train", "gan", "--data", "digits", "--size", "28", "--width", "8", "--dry-run",
                 "--run-dir", str(run), "--no-progress"]) == 0
    assert max(_steps(run)) == 2
    assert not dryrun.active()


def test_serve_builds_the_studio_and_returns(fast, tmp_path, capsys):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    assert main(["serve", "--runs-dir", str(tmp_path), "--port", "1"]) == 0
    assert "not listening" in capsys.readouterr().out
