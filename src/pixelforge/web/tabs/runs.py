"""Runs: browse the runs folder; loss curves, sample history and metrics of one run
(refreshed while it trains). The page has its own panel; the data comes from
``Studio.run_details``."""

from ..forms import Tab

TAB = Tab("runs", "Runs", "Training runs: loss curves, samples across epochs, metrics.",
          available=lambda: True, panel="runs")
