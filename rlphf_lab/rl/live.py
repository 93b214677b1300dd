"""Figures for PPO runs: a live plot that redraws after every iteration, and after-the-fact curves.

    live = LivePlot(total=config.iterations)          # reward, KL and response length, one panel each
    PPOTrainer(config, model, tok, prompts, callback=live, **objective.trainer_kwargs()).train()
    PPOTrainer(..., callback=live.for_run("P2B"))     # several runs in one figure, a line each

PPOTrainer calls `callback(metrics)` after every iteration (on the main process); LivePlot keeps
the rows, redraws its figure and, in a notebook, replaces the image in place. It uses a plain
matplotlib Figure (not pyplot), so nothing is drawn twice and it also works in scripts and tests.
"""
from __future__ import annotations

import io
import math
from typing import Sequence

# (metrics key, panel title): PPOTrainer's metric names
DEFAULT_PANELS = (("reward/score", "reward (reward model, scalarized)"),
                  ("kl/response", "KL to the reference (nats / response)"),
                  ("response/length", "response length (tokens)"))


class LivePlot:
    """A PPOTrainer callback: one panel per metric, redrawn after every iteration.

    panels: (key, title) pairs, keys from the trainer's metrics (e.g. "reward/P2A", "response/eos_fraction").
    total: the number of iterations, to fix the x axis from the start. show=False: only keep the
    history and draw the figure (tests, scripts). xlabel: what a step is (DPO: "DPO step").
    """

    def __init__(self, panels: Sequence[tuple[str, str]] = DEFAULT_PANELS, total: int | None = None,
                 title: str = "", show: bool = True, xlabel: str = "PPO iteration"):
        from matplotlib.figure import Figure

        if not panels:
            raise ValueError("LivePlot needs at least one (metric key, title) panel, e.g. ('kl/response', 'KL').")
        self.panels, self.total, self.title, self.show, self.xlabel = list(panels), total, title, show, xlabel
        self.history: list[dict] = []
        self.figure = Figure(figsize=(3.6 * len(self.panels), 2.8))
        self.axes = self.figure.subplots(1, len(self.panels), squeeze=False)[0]
        self._handle = None
        self.draw()

    def __call__(self, metrics: dict) -> None:
        self.history.append(dict(metrics))
        self.draw()
        if self.show:
            self._display()

    def for_run(self, name: str):
        """A callback that tags every row with run=name: several runs share one figure, a line each."""
        def callback(metrics: dict) -> None:
            self({**metrics, "run": name})
        return callback

    def runs(self) -> list:
        """The run names seen so far, in order (None for untagged rows)."""
        return list(dict.fromkeys(m.get("run") for m in self.history))

    def series(self, key: str, run=None) -> tuple[list[float], list[float]]:
        """(iterations, values) of one metric of one run so far; rows without the key are skipped."""
        rows = [m for m in self.history if key in m and m.get("run") == run]
        return [m.get("iteration", i + 1) for i, m in enumerate(rows)], [float(m[key]) for m in rows]

    def draw(self):
        """Redraw every panel from the history; returns the Figure."""
        from matplotlib.ticker import MaxNLocator

        for ax, (key, title) in zip(self.axes, self.panels):
            ax.clear()
            for run in self.runs() or [None]:
                xs, ys = self.series(key, run)
                ax.plot(xs, ys, "-o", markersize=3, label=run)
            if len(self.runs()) > 1 and ax is self.axes[0]:
                ax.legend(fontsize=7)
            if key.startswith("kl/"):
                ax.axhline(0, color="k", linewidth=0.6)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(self.xlabel, fontsize=8)
            ax.tick_params(labelsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if self.total:
                ax.set_xlim(0.5, self.total + 0.5)
            ax.grid(alpha=0.3)
        if self.title:
            self.figure.suptitle(self.title, fontsize=10)
        self.figure.tight_layout()
        return self.figure

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=80)
        return buf.getvalue()

    def _display(self) -> None:
        """Show the figure once, then replace that same output in place (IPython display_id)."""
        from IPython.display import Image, display

        image = Image(data=self.png(), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)

    def _repr_png_(self) -> bytes:        # `live` as the last line of a cell shows the final figure
        return self.png()


def plot_curves(runs: dict[str, list[dict]], key: str = "reward/score", x: str = "iteration", ax=None,
                xlabel: str | None = None, ylabel: str | None = None, title: str | None = None):
    """One line per run: metric `key` against `x` ("iteration", or "seconds" for wall-clock time).
    runs: {label: history rows}; rows without the key are skipped. Returns the Figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, rows in runs.items():
        pts = [(r[x], r[key]) for r in rows if key in r and x in r and not math.isnan(float(r[key]))]
        if pts:
            ax.plot(*zip(*pts), "-o", markersize=3, label=label)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or key)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def plot_policy_scores(summary: list[dict], columns: Sequence[str], ax=None, title: str | None = None):
    """Grouped bars: each policy's mean reward on each reward column (rows from compare.means_by_label)."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(min(14.0, 2.0 + 0.25 * len(columns) * max(1, len(summary))), 3.8))
    width = 0.8 / max(1, len(summary))
    x = np.arange(len(columns))
    for i, row in enumerate(summary):
        ax.bar(x + i * width - 0.4 + width / 2, [row.get(c, float("nan")) for c in columns], width, label=row["label"])
    ax.set_xticks(x, list(columns))
    ax.axhline(0, color="k", linewidth=0.6)
    ax.set_ylabel("mean reward on eval prompts (normalised)")
    ax.set_title(title or "Which policy does each reward model like?", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.figure.tight_layout()
    return ax.figure
