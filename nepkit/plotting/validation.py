"""Figures of the validation chapter: estimates against the synthetic world's truth.

Every function takes tables of :class:`nepkit.validation.ValidationResult` and
returns a :class:`matplotlib.figure.Figure`; the chapter saves it with
:func:`nepkit.plotting.save`.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = ["recovery_scatter", "driver_ranks", "worlds_panel", "sensitivity_panel", "no_truth"]

UNIT = "g C m$^{-2}$ a$^{-1}$"
POINT_COLOUR, FLAG_COLOUR, LINE_COLOUR = "0.25", "#e67e22", "#c0392b"
METHOD_STYLE = {"cpi": ("o", "#1b4f72"), "permutation": ("s", "#48c9b0"), "shap": ("^", "#af7ac5")}


def no_truth(note: str) -> Figure:
    """A placeholder saying why nothing is compared (real data: no injected truth)."""
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.text(0.5, 0.5, f"No injected truth to compare with:\n{note}", ha="center", va="center", wrap=True,
            transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _limits(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.nanpercentile(values, [0.5, 99.5]) if np.isfinite(values).any() else (0.0, 1.0)
    pad = max(0.05 * (hi - lo), 1.0)
    return float(lo - pad), float(hi + pad)


def recovery_scatter(
    pairs: pd.DataFrame, table: pd.DataFrame, *, x: str, y: str, what: str, flag: str | None = None,
    flag_label: str = "",
) -> Figure:
    """Estimate against truth, one panel per continent, with the agreement of each.

    Parameters
    ----------
    pairs : pandas.DataFrame
        ``continent``, ``x`` (the truth) and ``y`` (the estimate), g C m-2 a-1.
    table : pandas.DataFrame
        ``group, n, r, bias`` (:func:`nepkit.validation.agreement` per continent).
    x, y : str
        Columns of the truth and of the estimate.
    what : str
        The quantity, for the axis labels (e.g. ``"period loss"``).
    flag : str, optional
        A boolean column of ``pairs`` drawn in a second colour (e.g. ``out_of_domain``).
    flag_label : str
        Legend entry of the flagged points.

    Returns
    -------
    matplotlib.figure.Figure
    """
    groups = list(pairs.groupby("continent", sort=True)) if len(pairs) else []
    n = max(len(groups), 1)
    ncols = min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.4 * nrows), squeeze=False)
    stats = table.set_index("group")
    lims = _limits(pairs[[x, y]].to_numpy(dtype=float).ravel()) if len(pairs) else (0.0, 1.0)
    for ax, (name, g) in zip(axes.ravel(), groups, strict=False):
        marked = g[flag].astype(bool).to_numpy() if flag else np.zeros(len(g), bool)
        size = float(np.clip(3000 / max(len(g), 1), 3, 16))
        ax.scatter(g[x][~marked], g[y][~marked], s=size, color=POINT_COLOUR, alpha=0.35, lw=0)
        if marked.any():
            ax.scatter(g[x][marked], g[y][marked], s=size, color=FLAG_COLOUR, alpha=0.6, lw=0)
        ax.plot(lims, lims, color=LINE_COLOUR, lw=1)
        ax.set_xlim(lims)
        ax.set_ylim(lims)
        s = stats.loc[name]
        ax.set_title(f"{name}: n = {int(s['n'])}, r = {s['r']:.2f}, bias = {s['bias']:+.1f}", fontsize=9)
    for ax in axes.ravel()[len(groups):]:
        ax.set_axis_off()
    for ax in axes[-1]:
        ax.set_xlabel(f"true {what} ({UNIT})")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"estimated {what} ({UNIT})")
    handles = [Line2D([], [], color=LINE_COLOUR, lw=1, label="1:1")]
    if flag and pairs[flag].astype(bool).any():
        handles.append(Line2D([], [], marker="o", ls="", color=FLAG_COLOUR, label=flag_label))
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False, fontsize=8)
    return fig


def driver_ranks(ranks: pd.DataFrame) -> Figure:
    """Each method's importance rank of every indicator beside its true rank.

    Parameters
    ----------
    ranks : pandas.DataFrame
        :func:`nepkit.validation.driver_recovery`'s ``ranks``: ``indicator,
        true_weight, true_rank, null`` and ``<method>_rank``.

    Returns
    -------
    matplotlib.figure.Figure
        Indicators from the strongest true driver (top) to the indicators
        without effect (grey band); rank 1 = most important.
    """
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(ranks) + 1.4))
    ypos = np.arange(len(ranks))[::-1]
    nulls = ranks["null"].to_numpy(bool)
    if nulls.any():
        ax.axhspan(ypos[nulls].min() - 0.5, ypos[nulls].max() + 0.5, color="0.92", zorder=0)
    ax.scatter(ranks["true_rank"], ypos, marker="|", s=250, color="k", label="true rank", zorder=3)
    for i, (method, (marker, colour)) in enumerate(METHOD_STYLE.items()):
        col = f"{method}_rank"
        if col in ranks:
            ax.scatter(ranks[col] + (i - 1) * 0.15, ypos, marker=marker, color=colour, s=30, label=method, zorder=4)
    labels = [f"{r.indicator} ({r.true_weight:+g})" for r in ranks.itertuples()]
    ax.set_yticks(ypos, labels)
    ax.set_xticks(range(1, len(ranks) + 1))
    ax.set_xlabel("importance rank (1 = most important)")
    ax.set_xlim(0.5, len(ranks) + 0.5)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def worlds_panel(table: pd.DataFrame) -> Figure:
    """The truth checks of every world side by side.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per world (``world`` and the columns of :func:`nepkit.validation.world_row`).

    Returns
    -------
    matplotlib.figure.Figure
        Four panels: recovery of the loss (r per mine and per mine-year) and of
        the attainable gain (r and slope), the model's RMSE under random CV,
        spatial CV and on the test mines, and the driver ranking (Spearman's rho
        with the true weights; share of (driver, null) pairs ranked right).
    """
    panels = (
        ("loss recovery", [("loss_r", "r per mine"), ("loss_r_mine_year", "r per mine-year"),
                           ("status_agreement", "status agreement")], (0, 1)),
        ("attainable gain recovery", [("gain_r", "r"), ("gain_slope", "slope")], (0, 1.1)),
        (f"model RMSE ({UNIT})", [("rmse_cv", "random CV"), ("rmse_spatial_cv", "spatial CV"),
                                  ("rmse_test", "test")], None),
        ("driver ranking (CPI)", [("cpi_spearman", "Spearman rho with the true weights"),
                                  ("cpi_ordered_share", "(driver, null) pairs ordered right")], (-1, 1)),
    )
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    x = np.arange(len(table))
    for ax, (title, columns, ylim) in zip(axes.ravel(), panels, strict=True):
        width = 0.8 / len(columns)
        for k, (col, label) in enumerate(columns):
            ax.bar(x + (k - (len(columns) - 1) / 2) * width, table[col].astype(float), width, label=label)
        ax.set_xticks(x, table["world"], rotation=20, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.axhline(0, color="k", lw=0.6)
        if ylim:
            ax.set_ylim(*ylim)
        ax.legend(frameon=False, fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def sensitivity_panel(table: pd.DataFrame, *, columns: Mapping[str, str], units: Mapping[str, str]) -> Figure:
    """The headline numbers under each setting, one panel per number.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`nepkit.validation.sensitivity`: ``parameter, setting, default`` and
        the numbers; the ``paper`` row is drawn as a dashed line.
    columns : mapping
        The numbers to draw: column -> panel title.
    units : mapping
        Unit of each number (axis labels).

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = table[table["parameter"] != "paper"].reset_index(drop=True)
    paper = table[table["parameter"] == "paper"]
    labels = [f"{r.parameter}: {r.setting}" for r in rows.itertuples()]
    ypos = np.arange(len(rows))[::-1]
    fig, axes = plt.subplots(1, len(columns), figsize=(2.6 * len(columns) + 2.5, 0.32 * len(rows) + 1.6),
                             sharey=True, squeeze=False)
    for ax, col in zip(axes[0], columns, strict=True):
        values = rows[col].astype(float).to_numpy()
        default = rows["default"].to_numpy(bool)
        ax.scatter(values[~default], ypos[~default], color=POINT_COLOUR, s=22)
        ax.scatter(values[default], ypos[default], color=LINE_COLOUR, s=30, marker="D")
        if len(paper) and np.isfinite(float(paper[col].iloc[0])):
            ax.axvline(float(paper[col].iloc[0]), color=LINE_COLOUR, ls="--", lw=1)
        ax.set_title(columns[col], fontsize=9)
        ax.set_xlabel(units.get(col, ""), fontsize=8)
        ax.grid(axis="y", color="0.9")
    axes[0, 0].set_yticks(ypos, labels, fontsize=8)
    handles = [Line2D([], [], marker="D", ls="", color=LINE_COLOUR, label="default"),
               Line2D([], [], color=LINE_COLOUR, ls="--", label="paper")]
    fig.legend(handles=handles, loc="upper right", frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig
