"""Figures of the NEP-change chapter: the paper's figures 4, 5 and 6, and the truth check.

Every function takes tables of :class:`nepkit.nepchange.NepChangeResult` and
returns a :class:`matplotlib.figure.Figure`; the chapter saves it with
:func:`nepkit.plotting.save`.
"""

from __future__ import annotations

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from nepkit.plotting.maps import PLATE, base_map, extent_of

__all__ = [
    "fig4_nep_total",
    "fig5_loss_map",
    "fig6_yearly_loss",
    "truth_scatter",
    "LOSS_COLOUR",
    "GAIN_COLOUR",
]

LOSS_COLOUR, GAIN_COLOUR, NONE_COLOUR = "#c0392b", "#2471a3", "#9e9e9e"
PHASE_COLOURS = ("#fdf2e9", "#eaf2f8", "#eafaf1")


def fig4_nep_total(totals: pd.DataFrame, phases: pd.DataFrame, *, title: str | None = None) -> Figure:
    """NEP total of the mines per year with the phases and their linear fits (paper's Fig. 4).

    Parameters
    ----------
    totals : pandas.DataFrame
        ``year, nep_total_Gg`` (Gg C) and optionally ``lo, hi`` (a bootstrap
        interval, drawn as a band).
    phases : pandas.DataFrame
        :func:`nepkit.nepchange.phase_fits`.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from nepkit.nepchange import phase_fits
    >>> t = pd.DataFrame({"year": range(2000, 2021), "nep_total_Gg": np.linspace(2000, 2500, 21)})
    >>> fig = fig4_nep_total(t, phase_fits(t))
    """
    fig, ax = plt.subplots(figsize=(9, 4.5))
    x, y = totals["year"].to_numpy(), totals["nep_total_Gg"].to_numpy()
    for (_, ph), colour in zip(phases.iterrows(), PHASE_COLOURS * len(phases), strict=False):
        ax.axvspan(ph["first"] - 0.5, ph["last"] + 0.5, color=colour, zorder=0)
        ax.text(
            (ph["first"] + ph["last"]) / 2,
            0.97,
            ph["phase"],
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=9,
            color="0.3",
        )
        if np.isfinite(ph["slope_Gg_per_a"]):
            xs = np.array([max(ph["first"], x.min()), min(ph["last"], x.max())], dtype=float)
            ax.plot(xs, ph["intercept_Gg"] + ph["slope_Gg_per_a"] * xs, "--", color="0.25", lw=1.2)
            ax.text(
                xs.mean(),
                0.06,
                f"{ph['slope_Gg_per_a']:+.1f} Gg/a\n$R^2$ = {ph['r2']:.2f}",
                transform=ax.get_xaxis_transform(),
                ha="center",
                fontsize=8,
                color="0.25",
            )
    if {"lo", "hi"} <= set(totals.columns):
        ax.fill_between(
            x,
            totals["lo"],
            totals["hi"],
            color="#1e8449",
            alpha=0.18,
            lw=0,
            label="95% bootstrap interval (mines resampled)",
        )
    ax.plot(x, y, "o-", color="#1e8449", lw=1.8, ms=4, label="NEP total")
    for idx, label in ((np.nanargmax(y), "max"), (np.nanargmin(y), "min")):
        ax.annotate(
            f"{label} {y[idx]:,.0f} ({x[idx]})",
            (x[idx], y[idx]),
            textcoords="offset points",
            xytext=(0, 8 if label == "max" else -14),
            ha="center",
            fontsize=8,
        )
    ax.plot([], [], "--", color="0.25", label="linear fit per phase")
    # room below the data for the fits' labels and above it for the phases' names
    band = [y, *(totals[c].to_numpy() for c in ("lo", "hi") if c in totals)]
    low, high = np.nanmin(band), np.nanmax(band)
    span = (high - low) or 1.0
    ax.set_ylim(low - 0.35 * span, high + 0.25 * span)
    ax.set_xlim(x.min() - 0.5, x.max() + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("year")
    ax.set_ylabel("NEP total of the mines (Gg C)")
    ax.legend(loc="lower left", fontsize=8, frameon=False, bbox_to_anchor=(0, 0.12))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def fig5_loss_map(mines: gpd.GeoDataFrame, countries: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Map of losing (red) and gaining (blue) mines, with the per-country loss share (paper's Fig. 5).

    Parameters
    ----------
    mines : geopandas.GeoDataFrame
        EPSG:4326 polygons with ``status`` (``"loss"``, ``"gain"`` or missing =
        unclassified) and ``area_km2``; drawn as points at a representative
        point, sized by area.
    countries : pandas.DataFrame
        :func:`nepkit.nepchange.group_stats` per country: ``loss_share``.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Map on the left; on the right the histogram of the countries' share of
        losing mines.
    """
    fig = plt.figure(figsize=(13, 5.2))
    grid = GridSpec(1, 2, width_ratios=[3.3, 1], wspace=0.12, figure=fig)
    ax = fig.add_subplot(grid[0], projection=PLATE)
    base_map(ax, extent=extent_of(mines, pad_deg=4.0))
    points = mines.geometry.representative_point()
    size = _marker_size(mines["area_km2"].to_numpy(dtype=float))
    status = mines["status"].fillna("none")
    handles, labels = [], []
    for key, colour, label in (
        ("none", NONE_COLOUR, "unclassified"),
        ("gain", GAIN_COLOUR, "NEP gain"),
        ("loss", LOSS_COLOUR, "NEP loss"),
    ):
        m = (status == key).to_numpy()
        if m.any():
            ax.scatter(
                points.x[m],
                points.y[m],
                s=size[m],
                c=colour,
                alpha=0.6,
                lw=0.2,
                edgecolor="white",
                transform=PLATE,
                zorder=3,
            )
            handles.append(Line2D([], [], ls="", marker="o", color=colour, alpha=0.6, markersize=7))
            labels.append(f"{label} ({int(m.sum())})")
    for a in (1, 10, 100):
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                color="0.5",
                alpha=0.6,
                markersize=float(np.sqrt(_marker_size(np.array([a]))[0])),
            )
        )
        labels.append(f"{a} km²")
    ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08),
        ncol=len(labels),
        fontsize=8,
        frameon=False,
        columnspacing=1.2,
        handletextpad=0.3,
    )
    if title:
        ax.set_title(title)
    _country_histogram(fig.add_subplot(grid[1]), countries)
    return fig


def _marker_size(area_km2: np.ndarray) -> np.ndarray:
    """Marker area (points^2) growing with the square root of the mine's area."""
    return 4.0 + 6.0 * np.sqrt(np.clip(area_km2, 0, None))


def _country_histogram(ax: plt.Axes, countries: pd.DataFrame) -> None:
    share = countries["loss_share"].dropna().to_numpy()
    ax.hist(share, bins=np.linspace(0, 1, 11), color=LOSS_COLOUR, alpha=0.75, edgecolor="white")
    ax.axvline(0.5, color="0.2", lw=1, ls="--")
    above = int((share > 0.5).sum())
    ax.text(
        0.98,
        0.97,
        f"{above} of {share.size} countries:\nmore than half\nof their mines lose NEP",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=8,
    )
    ax.set_xlabel("share of losing mines in the country")
    ax.set_ylabel("countries")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, 1)


def fig6_yearly_loss(yearly: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Yearly NEP loss of the mines: distribution and mean (paper's Fig. 6).

    Parameters
    ----------
    yearly : pandas.DataFrame
        :func:`nepkit.nepchange.yearly_loss` (g C m-2 a-1, positive = loss).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Top: the 5-95 % and 25-75 % bands across mines and the median; bottom:
        the mean loss over mines, plain and area-weighted.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[1.3, 1])
    x = yearly["year"].to_numpy()
    top.fill_between(
        x, yearly["q05"], yearly["q95"], color=LOSS_COLOUR, alpha=0.15, lw=0, label="5-95 % of mines"
    )
    top.fill_between(
        x, yearly["q25"], yearly["q75"], color=LOSS_COLOUR, alpha=0.3, lw=0, label="25-75 % of mines"
    )
    top.plot(x, yearly["median"], color=LOSS_COLOUR, lw=1.5, label="median")
    top.axhline(0, color="0.3", lw=0.8)
    top.set_ylabel("NEP loss (g C m$^{-2}$ a$^{-1}$)\npositive = loss")
    top.legend(fontsize=8, frameon=False, loc="upper left")
    bottom.plot(x, yearly["mean"], "o-", color="0.15", ms=3.5, label="mean over mines")
    bottom.plot(x, yearly["mean_area_weighted"], "s--", color="#7d3c98", ms=3, label="area-weighted mean")
    bottom.axhline(0, color="0.3", lw=0.8)
    bottom.set_ylabel("mean NEP loss\n(g C m$^{-2}$ a$^{-1}$)")
    bottom.set_xlabel("year")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.legend(fontsize=8, frameon=False, loc="upper left")
    if title:
        top.set_title(title)
    fig.tight_layout()
    return fig


def truth_scatter(pairs: pd.DataFrame | None, *, note: str = "", title: str | None = None) -> Figure:
    """Estimated against injected period loss per mine (the synthetic world's truth).

    Parameters
    ----------
    pairs : pandas.DataFrame or None
        ``loss_stat`` (estimate) and ``loss_stat_true`` (truth), g C m-2 a-1;
        None when there is no truth (real data): the figure then says so, with ``note``.
    note : str
        Why there is no truth.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.set_xlabel("injected loss (g C m$^{-2}$ a$^{-1}$)")
    ax.set_ylabel("estimated loss (g C m$^{-2}$ a$^{-1}$)")
    if pairs is None or pairs.empty:
        ax.text(
            0.5,
            0.5,
            "No injected truth to compare with" + (f":\n{note}" if note else ""),
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            wrap=True,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        return fig
    est, true = pairs["loss_stat"].to_numpy(), pairs["loss_stat_true"].to_numpy()
    ax.scatter(true, est, s=float(np.clip(4000 / len(pairs), 4, 20)), alpha=0.4, color="0.2", lw=0)
    lims = np.nanpercentile(np.concatenate([est, true]), [0.5, 99.5])
    lims = lims + np.array([-1, 1]) * max(0.05 * np.ptp(lims), 1.0)
    ax.plot(lims, lims, color=LOSS_COLOUR, lw=1, label="1:1")
    ax.set_xlim(lims)
    ax.set_ylim(lims)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
