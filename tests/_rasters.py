"""Tiny rasters, polygons and manifests that the tests build themselves.

The tiny world: a 0.01-degree grid (about 1 km) of 60 x 60 pixels at 100-100.6 E,
30-30.6 N, a few mines in China (CHN, a BRI partner) and one in a non-partner
(USA: excluded), NEP rasters for 2000-2002 with known values, and the ten
covariates as single rasters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
import yaml
from affine import Affine

from nepkit.sources import COVARIATES

#: The tiny world's grid.
X0, Y0, RES, SIZE = 100.0, 30.6, 0.01, 60
TRANSFORM = Affine(RES, 0.0, X0, 0.0, -RES, Y0)
YEARS = (2000, 2002)


def write_raster(
    path: Path,
    values: np.ndarray,
    *,
    transform: Affine = TRANSFORM,
    crs: str | None = "EPSG:4326",
    nodata: float | None = None,
    **options: Any,
) -> Path:
    """Write a GeoTIFF of one band per leading index of ``values`` (2-D or 3-D)."""
    values = np.asarray(values)
    bands = values[None] if values.ndim == 2 else values
    profile = {
        "driver": "GTiff",
        "height": bands.shape[1],
        "width": bands.shape[2],
        "count": bands.shape[0],
        "dtype": bands.dtype.name,
        "transform": transform,
        "nodata": nodata,
    } | options
    if crs is not None:
        profile["crs"] = crs
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


def pixel_box(col0: float, row0: float, col1: float, row1: float) -> shapely.Polygon:
    """A lon/lat box given in fractional pixel coordinates of the tiny grid."""
    x0, y0 = X0 + RES * col0, Y0 - RES * row0
    x1, y1 = X0 + RES * col1, Y0 - RES * row1
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def nep_values(year: int) -> np.ndarray:
    """Known NEP of ``year``: a smooth ramp plus 10 per year, float32."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    return (50.0 + cols + 0.5 * rows + 10.0 * (year - YEARS[0])).astype(np.float32)


def default_mines() -> gpd.GeoDataFrame:
    """Five mines: three usable CHN mines, a CHN mine below 1 km2, one USA mine."""
    geoms = [
        pixel_box(10, 10, 12, 12),  # about 4.3 km2
        pixel_box(30.5, 30.5, 31.5, 31.75),  # four pixels, known fractions
        pixel_box(45, 12, 47, 13),
        pixel_box(20, 40, 20.5, 40.5),  # about 0.27 km2: below 1 km2
        pixel_box(40, 40, 42, 42),  # a non-partner country
    ]
    return gpd.GeoDataFrame(
        {
            "ISO3_CODE": ["CHN", "CHN", "CHN", "CHN", "USA"],
            "COUNTRY_NAME": ["China"] * 4 + ["United States"],
            "AREA": [4.3, 1.3, 2.1, 0.27, 4.3],
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


def write_mines(path: Path, mines: gpd.GeoDataFrame | None = None, **kwargs: Any) -> Path:
    """Write mines as a GeoPackage layer ``mining_polygons`` (fid = 1, 2, ...)."""
    mines = default_mines() if mines is None else mines
    path.parent.mkdir(parents=True, exist_ok=True)
    mines.to_file(path, layer=kwargs.pop("layer", "mining_polygons"), driver="GPKG", engine="pyogrio", **kwargs)
    return path


def tiny_world(
    folder: Path,
    *,
    mines: gpd.GeoDataFrame | None = None,
    nep: dict[int, np.ndarray] | None = None,
    manifest: dict[str, Any] | None = None,
) -> Path:
    """Write the tiny world into ``folder`` and return its ``sources.yml``.

    ``manifest`` entries replace the default ones (top-level keys).
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_mines(folder / "mines.gpkg", mines)
    for year in range(YEARS[0], YEARS[1] + 1):
        values = nep_values(year) if nep is None else nep[year]
        write_raster(folder / "nep" / f"nep_{year}.tif", values, nodata=-9999.0)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    covariates = {}
    for k, name in enumerate(COVARIATES):
        if name == "curvature":
            covariates[name] = {"derive": "elevation"}
            continue
        values = (k + 1.0) * 100 + 0.1 * rows * cols if name == "elevation" else np.full((SIZE, SIZE), k + 1.0)
        write_raster(folder / "covariates" / f"{name}.tif", values.astype(np.float32))
        covariates[name] = {"path": f"covariates/{name}.tif"}
    content: dict[str, Any] = {
        "years": list(YEARS),
        "mines": {"path": "mines.gpkg", "iso3_column": "ISO3_CODE"},
        "nep": {"path": "nep/nep_{year}.tif"},
        "covariates": covariates,
    }
    content.update(manifest or {})
    path = folder / "sources.yml"
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path
