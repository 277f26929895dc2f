"""The generic loop's time budget: a wall-clock LR schedule spans the run, not one invocation."""

import torch
from torch import nn

from pixelforge.data.imagedata import ImageData
from pixelforge.runs import Run
from pixelforge.runtime import Runtime
from pixelforge.training.loop import TrainConfig, Trainer
from pixelforge.training.task import SingleNetTask


class ProgressRecorder(SingleNetTask):
    """One linear layer; remembers the schedule fraction the loop gave each step."""

    name = "net"

    def __init__(self):
        self.net = nn.Linear(4, 1)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01)
        self.seen: list[float] = []

    def step(self, images, labels):
        self.seen.append(self.progress)
        loss = self.net(images.flatten(1)[:, :4]).square().mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}


def fit(run_dir, minutes, resume=False):
    data = ImageData(torch.zeros(8, 1, 2, 2, dtype=torch.uint8), None, [], "zeros", "memory")
    run = Run.open(run_dir) if resume else Run.create(run_dir, {"family": "toy"})
    task = ProgressRecorder()
    trainer = Trainer(task, data, run, TrainConfig(minutes=minutes, batch_size=4), Runtime.create("cpu", "fp32"),
                      progress=False)
    trainer.fit(resume=resume)
    return task.seen, run.load_state()["trained_seconds"]


def test_time_budget_schedule_continues_over_a_resume(tmp_path):
    seen, trained = fit(tmp_path / "run", minutes=0.01)
    assert 0.6 <= trained < 5 and seen[0] < 0.5 and seen[-1] > 0.9
    # A second invocation of the same budget: its schedule covers both invocations' time.
    seen, total = fit(tmp_path / "run", minutes=0.01, resume=True)
    assert total >= trained + 0.6
    assert abs(seen[0] - trained / (trained + 0.6)) < 0.1 and seen[-1] > 0.9
