"""Offline cartopy maps drawn from the shipped Natural Earth boundaries.

Cartopy downloads Natural Earth data on first use of ``ax.coastlines()`` or
``cartopy.feature``. Importing this module replaces cartopy's downloaders by one
that refuses with a clear message, so no map can reach the internet; every map
draws the country polygons shipped in ``data/reference/ne_110m_admin0.gpkg``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cartopy
import cartopy.crs as ccrs
import geopandas as gpd
import matplotlib.pyplot as plt
from cartopy.io import Downloader
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nepkit import regions

__all__ = ["OfflineError", "base_map", "map_figure", "extent_of", "PLATE"]

PLATE = ccrs.PlateCarree()
#: Colours of land inside and outside the BRI.
BRI_COLOUR, OTHER_COLOUR, EDGE_COLOUR = "#f1ead8", "#e6e6e6", "#8c8c8c"


class OfflineError(RuntimeError):
    """Cartopy tried to download data; nepkit maps are offline by design."""


class _RefuseDownload(Downloader):
    def __init__(self) -> None:  # noqa: D107 - nothing to configure
        super().__init__("", "", "")

    def path(self, format_dict):  # noqa: ANN001 - cartopy's signature
        raise OfflineError(
            f"cartopy asked to download Natural Earth {format_dict.get('name')!r}; nepkit draws maps offline from "
            "data/reference/ne_110m_admin0.gpkg (use nepkit.plotting.maps.base_map)"
        )


def _disable_downloads() -> None:
    cartopy.config["downloaders"] = {key: _RefuseDownload() for key in cartopy.config["downloaders"]}


_disable_downloads()


def extent_of(gdf: gpd.GeoDataFrame, pad_deg: float = 2.0) -> tuple[float, float, float, float]:
    """``(lon_min, lon_max, lat_min, lat_max)`` of ``gdf`` padded by ``pad_deg`` degrees."""
    x0, y0, x1, y1 = gdf.total_bounds
    return (max(x0 - pad_deg, -180), min(x1 + pad_deg, 180), max(y0 - pad_deg, -60), min(y1 + pad_deg, 85))


def base_map(
    ax: Axes,
    *,
    extent: Sequence[float] | None = None,
    highlight: Sequence[str] | None = None,
    gridlines: bool = True,
) -> Axes:
    """Draw country polygons on a cartopy axis, BRI partners (or ``highlight``) shaded.

    Parameters
    ----------
    ax : cartopy.mpl.geoaxes.GeoAxes
        An axis created with a cartopy projection.
    extent : sequence of 4 floats, optional
        ``(lon_min, lon_max, lat_min, lat_max)`` in degrees; default the BRI
        countries' extent.
    highlight : sequence of str, optional
        ISO3 codes to shade; default every BRI partner.
    gridlines : bool
        Draw labelled graticules.

    Returns
    -------
    Axes
        ``ax``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(subplot_kw={"projection": PLATE})
    >>> _ = base_map(ax, extent=(60, 140, 10, 55))
    """
    world = regions.boundaries()
    shaded = world["bri"] if highlight is None else world["iso3"].isin(list(highlight))
    for mask, colour in ((~shaded, OTHER_COLOUR), (shaded, BRI_COLOUR)):
        ax.add_geometries(
            world.geometry[mask], crs=PLATE, facecolor=colour, edgecolor=EDGE_COLOUR, linewidth=0.3
        )
    ax.set_extent(list(extent) if extent is not None else [-120, 180, -50, 75], crs=PLATE)
    if gridlines:
        gl = ax.gridlines(draw_labels=True, linewidth=0.2, color="grey", alpha=0.5)
        gl.top_labels = gl.right_labels = False
    return ax


def map_figure(
    *, extent: Sequence[float] | None = None, figsize: tuple[float, float] = (11, 5.5), **kwargs
) -> tuple[Figure, Axes]:
    """A figure with one PlateCarree map axis prepared by :func:`base_map`."""
    fig, ax = plt.subplots(figsize=figsize, subplot_kw={"projection": PLATE})
    base_map(ax, extent=extent, **kwargs)
    return fig, ax
