"""Figures of the scenarios chapter: the paper's Figure 10 made quantitative.

* :func:`fig_ramps`: each strategy's ramp and expected restored fraction over time;
* :func:`fig_cumulative`: cumulative sequestration per strategy and region, with the
  band from the potential's prediction interval;
* :func:`fig_assignment_map`: the strategy of every mine under the paper's
  assignment and under the data-driven one (offline cartopy maps).
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nepkit.plotting.maps import PLATE, base_map, extent_of
from nepkit.scenarios import ScenarioConfig, ramp, restored_fraction, to_tco2e

__all__ = ["strategy_colours", "fig_ramps", "fig_cumulative", "fig_assignment_map"]

_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d")
_BASELINE_COLOUR, _NONE_COLOUR = "#9e9e9e", "#d9d9d9"


def strategy_colours(config: ScenarioConfig) -> dict[str, str]:
    """A fixed colour per strategy (file order), grey for the baseline.

    Examples
    --------
    >>> from nepkit.scenarios import load_config
    >>> strategy_colours(load_config())["business_as_usual"]
    '#9e9e9e'
    """
    others = [k for k in config.scenarios if k != config.baseline]
    colours = {k: _PALETTE[i % len(_PALETTE)] for i, k in enumerate(others)}
    colours[config.baseline] = _BASELINE_COLOUR
    return colours


def fig_ramps(config: ScenarioConfig) -> Figure:
    """Each restoring strategy's ramp (left) and expected restored fraction ``F(t)`` (right).

    Parameters
    ----------
    config : ScenarioConfig
        The strategies (:func:`nepkit.scenarios.load_config`).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from nepkit.scenarios import load_config
    >>> fig = fig_ramps(load_config())
    """
    colours = strategy_colours(config)
    restoring = [s for s in config.scenarios.values() if s.share_per_year > 0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    age = np.linspace(0, max([s.years_to_attainable for s in restoring] + [1]) * 1.2, 200)
    years = np.asarray(config.years)
    for s in restoring:
        left.plot(age, ramp(age, s.ramp, s.years_to_attainable, k=s.ramp_k), color=colours[s.name],
                  label=f"{s.label} ({s.ramp}, T = {s.years_to_attainable:g} a)")
        right.plot(years, restored_fraction(s, years), color=colours[s.name],
                   label=f"{s.label} ({s.share_per_year:.0%} of mines a-1)")
    left.set(xlabel="years since restoration", ylabel="share of the attainable gain", ylim=(0, 1.05),
             title="Ramp of one restored mine")
    right.set(xlabel="year", ylabel="expected share of the full gain", ylim=(0, 1.05),
              title="Restored share times ramp, all mines")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return fig


def _band_axis(ax, projection: pd.DataFrame) -> None:
    """Lines of cumulative Gg C per region with their bands on ``ax``."""
    for i, (region, g) in enumerate(projection.groupby("region", sort=True)):
        colour = plt.get_cmap("tab10")(i % 10)
        ax.fill_between(g["year"], g["lo"], g["hi"], color=colour, alpha=0.2, linewidth=0)
        ax.plot(g["year"], g["cumulative_GgC"], color=colour, label=f"{region} ({int(g['n_mines'].iloc[0]):,} mines)")


def fig_cumulative(projection: pd.DataFrame, config: ScenarioConfig, *, assignment: str = "paper") -> Figure:
    """Cumulative sequestration over business as usual per strategy and region.

    One panel per restoring strategy that has mines; one line per region with the
    band of the potential's prediction interval. Left axis Gg C, right axis Mt CO2e.

    Parameters
    ----------
    projection : pandas.DataFrame
        ``scenarios.csv`` (:attr:`nepkit.scenarios.ScenariosResult.projection`).
    config : ScenarioConfig
        The strategies (labels and order).
    assignment : {"paper", "data"}
        Which assignment's rows to draw.

    Returns
    -------
    matplotlib.figure.Figure
        With a single explanatory panel when no restoring strategy has mines.

    Examples
    --------
    >>> from nepkit import scenarios
    >>> res = scenarios.run(params)  # doctest: +SKIP
    >>> fig = fig_cumulative(res.projection, res.config, assignment="data")  # doctest: +SKIP
    """
    rows = projection[(projection["assignment"] == assignment) & (projection["strategy"] != config.baseline)]
    strategies = [k for k in config.scenarios if k in set(rows["strategy"])]
    if not strategies:
        fig, ax = plt.subplots(figsize=(8, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"No mine of this run falls under a restoring strategy ({assignment} assignment).",
                ha="center", va="center")
        return fig
    fig, axes = plt.subplots(1, len(strategies), figsize=(4.6 * len(strategies), 4), squeeze=False,
                             constrained_layout=True)
    for ax, name in zip(axes[0], strategies, strict=True):
        _band_axis(ax, rows[rows["strategy"] == name])
        ax.set(title=config.scenarios[name].label, xlabel="year", ylabel="cumulative gain, Gg C")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        ax.secondary_yaxis("right", functions=(lambda g: to_tco2e(g) / 1e6, lambda t: t * 1e6 / to_tco2e(1.0))
                           ).set_ylabel("Mt CO2e")
    return fig


def _strategy_points(ax, mines: gpd.GeoDataFrame, column: str, colours: Mapping[str, str]) -> None:
    pts = mines.geometry.representative_point()
    colour = mines[column].map(colours).fillna(_NONE_COLOUR)
    size = 18 if len(mines) < 2000 else 8
    ax.scatter(pts.x, pts.y, s=size, c=colour.tolist(), alpha=0.9, edgecolors="black", linewidths=0.2,
               transform=PLATE, zorder=3)


def fig_assignment_map(mines: gpd.GeoDataFrame, config: ScenarioConfig, *, extent=None) -> Figure:
    """The strategy of every mine: the paper's assignment (top) and the data's (bottom).

    Parameters
    ----------
    mines : geopandas.GeoDataFrame
        Mines (EPSG:4326) with ``paper_strategy`` and ``data_strategy``
        (:attr:`nepkit.scenarios.ScenariosResult.mines`); points at their
        representative points.
    config : ScenarioConfig
        The strategies (labels and colours).
    extent : sequence of 4 floats, optional
        ``(lon_min, lon_max, lat_min, lat_max)``; default the mines' extent.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from nepkit import scenarios
    >>> res = scenarios.run(params)  # doctest: +SKIP
    >>> fig = fig_assignment_map(res.mines, res.config)  # doctest: +SKIP
    """
    colours = strategy_colours(config)
    if extent is None and len(mines):
        extent = extent_of(mines, pad_deg=5.0)
    fig, axes = plt.subplots(2, 1, figsize=(11, 10), subplot_kw={"projection": PLATE}, constrained_layout=True)
    titles = {"paper_strategy": "The paper's assignment (section 3.2)",
              "data_strategy": "Assigned from this run's data (per subregion)"}
    for ax, (column, title) in zip(axes, titles.items(), strict=True):
        base_map(ax, extent=extent)
        if len(mines):
            _strategy_points(ax, mines, column, colours)
        ax.set_title(title)
    handles = [Line2D([], [], marker="o", ls="", color=colours[k], label=config.scenarios[k].label) for k in colours]
    handles.append(Line2D([], [], marker="o", ls="", color=_NONE_COLOUR, label="no potential estimated"))
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return fig
