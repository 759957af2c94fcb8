"""Charts as inline SVG: matplotlib's Agg backend, text kept as text, no external reference, a few kB each."""
from __future__ import annotations

import datetime as dt
import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt

from .fetch import PanelData

matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "mlscope", "font.size": 8})
PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)


def _time(t: float) -> float:
    """Unix seconds as matplotlib's date numbers (days since its 1970 epoch)."""
    return t / 86400.0


def svg(data: PanelData, marks: tuple[float, ...] = (), window: tuple[float, float] | None = None) -> str:
    """The panel's drawn lines (its ``top`` when it ranks), thresholds dashed, ``marks`` as vertical lines, the
    x axis over ``window`` (the page's: every chart spans it, whatever its own data) with ticks that say the
    date once and then the time."""
    drawn = data.lines[: data.panel.top] if data.panel.top else data.lines
    names = {x.label for x in drawn}
    fig, ax = plt.subplots(figsize=(7.5, 2.4), dpi=72)
    try:
        for line in drawn:
            if line.values:
                ax.plot([_time(t) for t, _ in line.values], [v for _, v in line.values], label=line.label,
                        linewidth=1.2)
        for line in data.thresholds:
            owner = line.label.removeprefix("threshold").strip()
            if line.values and (not owner or owner in names or not data.panel.by):
                ax.plot([_time(t) for t, _ in line.values], [v for _, v in line.values], linestyle="--",
                        linewidth=0.9, color="#b00", label=line.label if len(data.thresholds) == 1 else None)
        for t in marks:
            ax.axvline(_time(t), color="#555", linewidth=0.8, linestyle=":")
        ax.set_ylabel(data.panel.unit)
        if window is not None:
            ax.set_xlim(_time(window[0]), _time(window[1]))
        locator = mdates.AutoDateLocator(tz=dt.timezone.utc, minticks=4, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=dt.timezone.utc))
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(loc="upper left", fontsize=7, ncol=3, frameon=False)
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    return PROLOGUE.sub("", out.getvalue(), count=1)
