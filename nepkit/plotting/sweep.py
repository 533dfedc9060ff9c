"""The sweep page's figure: headline numbers per region."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["sweep_figure"]

PANELS = (
    ("loss_share", "share of mines losing NEP", 1.0),
    ("loss_mean_g_m2_a", "mean loss of losing mines\n(g C m-2 a-1)", 1.0),
    ("potential_mean", "mean restoration potential\n(g C m-2 a-1)", 1.0),
)


def sweep_figure(table: pd.DataFrame) -> Figure:
    """Bar charts of the headline numbers of each region of a sweep.

    Parameters
    ----------
    table : pandas.DataFrame
        ``runs/sweep.csv``: one row per region with ``region, status`` and the
        summary keys of :data:`nepkit.runner.SWEEP_KEYS`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ok = table[table["status"] == "ok"]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(12, 3.8), sharey=True)
    for ax, (key, label, scale) in zip(axes, PANELS, strict=True):
        values = pd.to_numeric(ok.get(key), errors="coerce") * scale if key in ok else pd.Series(dtype=float)
        ax.barh(ok["region"], values, color="#4575b4")
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig
