"""Figures of the data chapter: the paper's figure 1 (countries and mines)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from nepkit.plotting.maps import BRI_COLOUR, PLATE, map_figure

__all__ = ["fig1_study_area"]


def fig1_study_area(mines: gpd.GeoDataFrame | None = None, *, extent=None) -> Figure:
    """The paper's figure 1: BRI partner countries and the mines of the run.

    Parameters
    ----------
    mines : geopandas.GeoDataFrame, optional
        Mines (EPSG:4326) with ``area_km2``; drawn as centroid points sized by
        area. ``None`` draws the countries only.
    extent : sequence of 4 floats, optional
        ``(lon_min, lon_max, lat_min, lat_max)``; default the whole BRI.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = map_figure(extent=extent)
    handles = [Patch(facecolor=BRI_COLOUR, edgecolor="grey", label="BRI partner country")]
    if mines is not None and len(mines):
        pts = mines.geometry.representative_point()
        size = 2 + 6 * np.sqrt(mines["area_km2"].to_numpy() / max(mines["area_km2"].median(), 1e-9))
        ax.scatter(pts.x, pts.y, s=np.clip(size, 1, 60), c="#b2182b", alpha=0.5, linewidths=0, transform=PLATE)
        handles.append(
            Line2D([], [], marker="o", ls="", color="#b2182b", alpha=0.6, label=f"mine ({len(mines):,}), size ~ area")
        )
    ax.legend(handles=handles, loc="lower left", fontsize=8, frameon=True)
    return fig
