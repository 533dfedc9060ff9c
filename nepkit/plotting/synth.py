"""Figures of the synthetic world for the data chapter.

Each function takes the world's folder (the folder of its ``sources.yml``) and
returns a matplotlib Figure; the caller saves or shows it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import shapely
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from rasterio.features import geometry_mask
from rasterio.windows import from_bounds

from nepkit import regions

__all__ = ["district_map", "covariate_fields", "mine_closeup"]

_COVARIATES = (
    ("precip", "precipitation (mm a$^{-1}$)", "Blues"),
    ("tmax", "tmax ($^\\circ$C)", "inferno"),
    ("tmin", "tmin ($^\\circ$C)", "inferno"),
    ("gpp", "GPP (g C m$^{-2}$ a$^{-1}$)", "Greens"),
    ("soc", "SOC (t C ha$^{-1}$)", "copper_r"),
    ("elevation", "elevation (m)", "terrain"),
    ("pop_density", "population (km$^{-2}$, log10)", "magma"),
    ("spei_2010", "SPEI 2010", "RdBu"),
)


def _folder(world: str | os.PathLike[str]) -> Path:
    path = Path(world)
    return path.parent if path.suffix in (".yml", ".yaml") else path


def _mines(folder: Path):
    return pyogrio.read_dataframe(folder / "mines.gpkg", layer="mining_polygons", fid_as_index=True)


def district_map(world: str | os.PathLike[str]) -> Figure:
    """World map of the mines (BRI and other countries) and the raster tiles.

    Parameters
    ----------
    world : path-like
        The world's folder or its ``sources.yml``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = district_map("data/synthetic/paper-42")  # doctest: +SKIP
    """
    folder = _folder(world)
    mines = _mines(folder)
    centre = shapely.centroid(shapely.make_valid(mines.geometry.values))
    bri = mines["ISO3_CODE"].isin(regions.bri_countries()["iso3"]).values
    fig, ax = plt.subplots(figsize=(11, 5.5))
    countries = regions.boundaries()
    countries.plot(ax=ax, color=np.where(countries["bri"], "#e8e2d0", "#f4f4f4"), edgecolor="#999999", linewidth=0.3)
    for tile in sorted((folder / "nep" / "tiles").glob("*.tif")):
        with rasterio.open(tile) as src:
            w, s, e, n = src.bounds
        ax.add_patch(Rectangle((w, s), e - w, n - s, fill=False, edgecolor="#3060a0", linewidth=0.5))
    x, y = shapely.get_x(centre), shapely.get_y(centre)
    ax.scatter(x[bri], y[bri], s=1, color="#b0302a", label=f"mines in BRI countries ({bri.sum():,})")
    ax.scatter(x[~bri], y[~bri], s=1, color="#555555", label=f"mines elsewhere ({(~bri).sum():,})")
    ax.plot([], [], color="#3060a0", linewidth=0.8, label="raster tiles")
    ax.set(xlim=(-180, 180), ylim=(-60, 85), xlabel="longitude", ylabel="latitude", aspect="equal")
    ax.legend(loc="lower left", fontsize=8, markerscale=6)
    ax.set_title("Synthetic mining districts")
    return fig


def covariate_fields(world: str | os.PathLike[str], *, tile: str = "r000") -> Figure:
    """The covariate rasters of one tile, in their units and resolutions.

    Parameters
    ----------
    world : path-like
        The world's folder or its ``sources.yml``.
    tile : str
        Tile name (``nep/tiles/<tile>.tif``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    folder = _folder(world)
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.2), constrained_layout=True)
    mines = _mines(folder)
    for ax, (key, label, cmap) in zip(axes.ravel(), _COVARIATES, strict=True):
        path = (folder / "covariates" / "spei" / f"{tile}.tif" if key.startswith("spei")
                else folder / "covariates" / key / f"{tile}.tif")
        with rasterio.open(path) as src:
            band = 1 if not key.startswith("spei") else src.descriptions.index(key.split("_")[1]) + 1
            a = src.read(band, masked=True)
            w, s, e, n = src.bounds
        a = np.ma.log10(a) if key == "pop_density" else a
        im = ax.imshow(a, extent=(w, e, s, n), cmap=cmap, interpolation="nearest")
        near = mines.cx[w:e, s:n]
        near.boundary.plot(ax=ax, color="black", linewidth=0.3)
        ax.set(xlim=(w, e), ylim=(s, n), title=label)
        ax.tick_params(labelsize=7)
        ax.locator_params(nbins=4)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"Covariates of tile {tile} (mine outlines in black)")
    return fig


def _ring(geom, every, inner_km: float, outer_km: float):
    km = 111.32 * np.cos(np.radians(shapely.centroid(geom).y))
    ring = shapely.difference(shapely.buffer(geom, outer_km / km), shapely.buffer(geom, inner_km / km))
    return shapely.difference(ring, every)


def mine_closeup(world: str | os.PathLike[str], mine_id: int, *, year: int = 2020, inner_km: float = 1.0,
                 outer_km: float = 5.0) -> Figure:
    """A mine and its reference ring on the NEP raster, with mine, ring and loss over the years.

    Left: NEP of ``year`` around the mine, the mine (black), other mines
    (grey), the ring between ``inner_km`` and ``outer_km`` minus all mines
    (dashed). Right: mean NEP of the pixels the mine touches and of the ring,
    and the difference-in-differences loss beside the injected ``true_loss``.

    Parameters
    ----------
    world : path-like
        The world's folder or its ``sources.yml``.
    mine_id : int
        The mine (fid of ``mines.gpkg``).
    year : int
        Year of the map.
    inner_km, outer_km : float
        The ring, km from the polygon.

    Returns
    -------
    matplotlib.figure.Figure
    """
    folder = _folder(world)
    mines = _mines(folder)
    if mine_id not in mines.index:
        raise KeyError(f"mine {mine_id} is not in {folder / 'mines.gpkg'} (ids 1..{len(mines)})")
    valid = shapely.make_valid(mines.geometry.values)
    geom = valid[mines.index.get_loc(mine_id)]
    ring = _ring(geom, shapely.union_all(valid), inner_km, outer_km)
    truth = pd.read_parquet(folder / "truth.parquet", filters=[("mine_id", "==", int(mine_id))])
    years = truth["year"].to_numpy()
    w, s, e, n = shapely.buffer(geom, 1.3 * outer_km / 111.32 / np.cos(np.radians(geom.centroid.y))).bounds
    q, o = [], []
    for y in years:
        with rasterio.open(folder / "nep" / f"nep_{y}.vrt") as src:
            win = from_bounds(w, s, e, n, src.transform).round_offsets().round_lengths()
            a = src.read(1, window=win, masked=True)
            tr = src.window_transform(win)
        in_mine = ~geometry_mask([geom], a.shape, tr, all_touched=True)
        in_ring = ~geometry_mask([ring], a.shape, tr)
        q.append(a[in_mine].mean() if in_mine.any() else np.nan)
        o.append(a[in_ring].mean() if in_ring.any() else np.nan)
        if y == year:
            shown, extent = a, (tr.c, tr.c + tr.a * a.shape[1], tr.f + tr.e * a.shape[0], tr.f)
    q, o = np.ma.filled(np.ma.array(q, dtype=float), np.nan), np.ma.filled(np.ma.array(o, dtype=float), np.nan)
    loss = (o - o[0]) - (q - q[0])
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    im = ax.imshow(shown, extent=extent, cmap="YlGn", interpolation="nearest")
    fig.colorbar(im, ax=ax, label=f"NEP {year} (g C m$^{{-2}}$ a$^{{-1}}$)")
    mines.cx[w:e, s:n].boundary.plot(ax=ax, color="#777777", linewidth=0.6)
    for part in shapely.get_parts(shapely.boundary(geom)):
        ax.plot(*part.xy, color="black", linewidth=1.2)
    for part in shapely.get_parts(shapely.boundary(ring)):
        ax.plot(*part.xy, color="#1f4e9c", linewidth=0.8, linestyle="--")
    ax.set(xlim=(w, e), ylim=(s, n), title=f"mine {mine_id} and its {inner_km:g}-{outer_km:g} km ring")
    bx.plot(years, q, "o-", color="black", label="mine (pixels it touches)")
    bx.plot(years, o, "s-", color="#1f4e9c", label="ring")
    bx.plot(years, loss, "^-", color="#b0302a", label="loss = W - P (estimated)")
    bx.plot(years, truth["true_loss"], color="#b0302a", linestyle=":", linewidth=2, label="true loss (injected)")
    bx.axhline(0, color="#999999", linewidth=0.5)
    info = json.loads((folder / "truth.json").read_text())
    bx.set(xlabel="year", ylabel="g C m$^{-2}$ a$^{-1}$",
           title=f"class {truth['mine_class'].iloc[0]}, attainable gain "
                 f"{truth['true_attainable_gain'].iloc[0]:.0f} (baseline {info['baseline_year']})")
    bx.xaxis.set_major_locator(MaxNLocator(integer=True))
    bx.legend(fontsize=8)
    return fig
