"""Background jobs: long actions (the overfitted codec's encoding) run in their own thread,
outside the inference lock, and the page polls their progress.

A job's handler gets ``report(fraction, note)`` to publish its progress; at most
``max_running`` jobs run at once (each keeps both CPU cores busy), and finished jobs are
forgotten after ``keep`` newer ones.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from typing import Any, Callable

from ..errors import PixelforgeError

log = logging.getLogger("pixelforge.web")


class JobLimit(Exception):
    """Too many jobs are running already."""


class Jobs:
    def __init__(self, max_running: int = 1, keep: int = 50):
        self.max_running = max_running
        self.keep = keep
        self._jobs: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def start(self, work: Callable[[Callable[[float, str], None]], Any], describe: Callable[[Any], dict]) -> str:
        """Run ``work(report)`` in a thread; ``describe(result)`` turns its result into JSON."""
        with self._lock:
            if sum(j["state"] == "running" for j in self._jobs.values()) >= self.max_running:
                raise JobLimit("another encoding job is running; wait for it to finish")
            job_id = f"job{next(self._ids)}"
            job = {"state": "running", "progress": 0.0, "note": "starting"}
            self._jobs[job_id] = job
            while len(self._jobs) > self.keep:
                oldest = next(iter(self._jobs))
                if self._jobs[oldest]["state"] == "running":
                    break
                self._jobs.pop(oldest)

        def report(fraction: float, note: str) -> None:
            job.update(progress=round(min(max(fraction, 0.0), 1.0), 4), note=note)

        def run() -> None:
            try:
                job.update(result=describe(work(report)), state="done", progress=1.0, note="done")
            except PixelforgeError as e:
                job.update(state="error", error=str(e))
            except Exception as e:  # a bug: the traceback to the log, a message to the page
                log.exception("studio: job %s failed", job_id)
                job.update(state="error", error=f"internal error: {type(e).__name__}")

        threading.Thread(target=run, name=f"pixelforge-{job_id}", daemon=True).start()
        return job_id

    def status(self, job_id: str) -> dict | None:
        job = self._jobs.get(job_id)
        return None if job is None else dict(job)
