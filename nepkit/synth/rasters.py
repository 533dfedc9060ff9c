"""Raster tiles and VRT mosaics of the synthetic world.

Rasters cover only the neighbourhoods of the mining districts: each district's
mines' bounding box plus ``RASTER_MARGIN_KM``, snapped outwards to a global
grid of ``CELL_DEG`` cells. The union of these boxes is cut into disjoint
rectangles (tiles); every layer has one GeoTIFF per tile (the NEP and the SPEI
with one band per year) and a VRT mosaic per layer and year. All grids are
aligned to the global grid of their resolution, so the tiles of a layer fit
exactly and the fields join without seams.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.transform import Affine

from nepkit.synth import constants as C
from nepkit.synth.effects import YEARS
from nepkit.synth.fields import World
from nepkit.synth.lattice import Grid

__all__ = ["Rect", "rectangles", "write_nep", "write_covariates", "write_vrt"]

_CRS = CRS.from_epsg(4326)
_CELLS_PER_DEGREE = int(round(1 / C.CELL_DEG))


@dataclass(frozen=True)
class Rect:
    """A tile: a rectangle of ``CELL_DEG`` cells of the global grid (row 0 at 90 N, col 0 at 180 W)."""

    index: int
    row0: int
    col0: int
    nrows: int
    ncols: int

    @property
    def name(self) -> str:
        return f"r{self.index:03d}"

    def grid(self, per_degree: int) -> Grid:
        """The tile's window of the global grid with ``per_degree`` cells per degree."""
        k = per_degree // _CELLS_PER_DEGREE
        return Grid(self.row0 * k, self.col0 * k, self.nrows * k, self.ncols * k, per_degree)


def rectangles(bounds_by_district: dict[str, tuple[float, float, float, float]]) -> list[Rect]:
    """Disjoint tiles covering every district's box (west, south, east, north) plus the margin.

    The union of the snapped boxes is cut row by row into runs of cells; runs
    with the same columns in consecutive rows merge into one rectangle.
    """
    mask = np.zeros((180 * _CELLS_PER_DEGREE, 360 * _CELLS_PER_DEGREE), bool)
    for west, south, east, north in bounds_by_district.values():
        lat = max(abs(south), abs(north))
        dlat = C.RASTER_MARGIN_KM / C.KM_PER_DEG_LAT
        dlon = C.RASTER_MARGIN_KM / (C.KM_PER_DEG_LON * np.cos(np.radians(min(lat + dlat, 89.0))))
        c0 = int(np.floor((west - dlon + 180) * _CELLS_PER_DEGREE))
        c1 = int(np.ceil((east + dlon + 180) * _CELLS_PER_DEGREE))
        r0 = int(np.floor((90 - north - dlat) * _CELLS_PER_DEGREE))
        r1 = int(np.ceil((90 - south + dlat) * _CELLS_PER_DEGREE))
        mask[r0:r1, c0:c1] = True
    rects: list[tuple[int, int, int, int]] = []
    open_runs: dict[tuple[int, int], int] = {}  # (first col, end col) -> first row
    for r in range(mask.shape[0] + 1):
        row = mask[r] if r < mask.shape[0] else np.zeros(mask.shape[1], bool)
        edges = np.flatnonzero(np.diff(np.r_[0, row.astype(np.int8), 0]))
        runs = set(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
        for c0, c1 in sorted(set(open_runs) - runs):
            start = open_runs.pop((c0, c1))
            rects.append((start, c0, r - start, c1 - c0))
        for run in sorted(runs - set(open_runs)):
            open_runs[run] = r
    return [Rect(i, *r) for i, r in enumerate(sorted(rects))]


# --- writing ---------------------------------------------------------------------------------
def _transform(grid: Grid) -> Affine:
    west, _, _, north = grid.bounds
    res = 1.0 / grid.per_degree
    return Affine(res, 0.0, west, 0.0, -res, north)


def _profile(grid: Grid, count: int, nodata: float) -> dict:
    return {
        "driver": "GTiff", "dtype": "float32", "count": count, "width": grid.ncols, "height": grid.nrows,
        "crs": _CRS, "transform": _transform(grid), "nodata": nodata,
        "tiled": True, "blockxsize": C.BLOCK_SIZE, "blockysize": C.BLOCK_SIZE,
        "compress": "zstd", "zstd_level": 1, "predictor": 3, "interleave": "band",
    }


def _land(grid: Grid, land: np.ndarray, all_touched: bool) -> np.ndarray:
    west, south, east, north = grid.bounds
    near = [g for g in shapely.clip_by_rect(land, west, south, east, north) if not g.is_empty]
    if not near:
        return np.zeros(grid.shape, bool)
    return rasterize(((g, 1) for g in near), out_shape=grid.shape, transform=_transform(grid),
                     fill=0, all_touched=all_touched, dtype="uint8").astype(bool)


def _write_bands(path: Path, grid: Grid, bands: Iterator[tuple[str, np.ndarray]], count: int,
                 nodata: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **_profile(grid, count, nodata)) as dst:
        for b, (label, values) in enumerate(bands, start=1):
            dst.write(values.astype(np.float32, copy=False), b)
            dst.set_band_description(b, label)


def write_nep(out: Path, rect: Rect, world: World, mines, deficit: np.ndarray, land: np.ndarray) -> None:
    """Write the 21-band NEP tile of ``rect`` (g C m-2 a-1, nodata NODATA).

    ``mines`` is the mine table in id order (ids 1..N) and ``deficit`` its
    (N, years) deficit matrix.
    """
    g = rect.grid(C.NEP_PER_DEGREE)
    west, south, east, north = g.bounds
    on_land = _land(g, land, all_touched=False)
    box = mines.geometry.bounds
    near = mines[(box["minx"] < east) & (box["maxx"] > west) & (box["miny"] < north) & (box["maxy"] > south)]
    near = near.sort_values("area_km2", ascending=False, kind="stable")
    mine_id = np.zeros(g.shape, np.int32)
    if len(near):
        mine_id = rasterize(zip(near.geometry.values, near["mine_id"].values, strict=True), out_shape=g.shape,
                            transform=_transform(g), fill=0, all_touched=True, dtype="int32")
    table = np.vstack([np.zeros((1, deficit.shape[1])), deficit]).astype(np.float32).T.copy()
    elevation = world.elevation(g)
    tmean = world.tmean(g, elevation)
    background = world.nep_background(g, world.gpp(g, world.precip(g), tmean))
    trend = world.nep_trend(g).astype(np.float32)
    sens = World.climate_sensitivity(background).astype(np.float32)
    sd = World.noise_sd(background).astype(np.float32)
    background = background.astype(np.float32)
    rng = np.random.default_rng([world.seed, 301, rect.index])

    def bands():
        for t, year in enumerate(YEARS):
            nep = rng.standard_normal(g.shape, dtype=np.float32)
            nep *= sd
            nep += background
            nep += trend * np.float32(year - C.BASELINE_YEAR)
            nep += sens * world.year_anomaly(g, year).astype(np.float32)
            nep -= table[t][mine_id]
            nep = np.round(nep / np.float32(C.NEP_QUANTUM)) * np.float32(C.NEP_QUANTUM)
            nep[~on_land | world.cloud(g, year)] = C.NODATA
            yield str(year), nep

    _write_bands(out / "nep" / "tiles" / f"{rect.name}.tif", g, bands(), len(YEARS), C.NODATA)


def _covariate(world: World, g: Grid, key: str) -> np.ndarray:
    if key == "precip":
        return world.precip(g)
    if key in ("tmax", "tmin"):
        return world.tmax_tmin(g)[0 if key == "tmax" else 1]
    if key == "soc":
        return np.where(world.soc_gap(g), C.NODATA, world.soc(g))
    return getattr(world, key)(g)


def write_covariates(out: Path, rect: Rect, world: World, land: np.ndarray) -> None:
    """Write the covariate tiles of ``rect`` (units: ``fields.COVARIATE_UNITS``).

    SPEI has one band per year (nodata ``SPEI_NODATA``, as SPEIbase); the
    other layers one band (nodata ``NODATA``). Cells touching land carry values.
    """
    name = f"{rect.name}.tif"
    for key, per_degree in C.COVARIATE_PER_DEGREE.items():
        g = rect.grid(per_degree)
        on = _land(g, land, all_touched=True)
        path = out / "covariates" / key / name
        if key == "spei":
            log_p = world.log_precip(g)
            nodata = float(np.float32(C.SPEI_NODATA))
            bands = ((str(y), np.where(on, world.spei(g, y, log_p), nodata)) for y in YEARS)
            _write_bands(path, g, bands, len(YEARS), nodata)
        else:
            _write_bands(path, g, iter([(key, np.where(on, _covariate(world, g, key), C.NODATA))]), 1, C.NODATA)


def write_vrt(path: Path, tiles: list[tuple[Path, Rect]], per_degree: int, band: int, nodata: float) -> None:
    """A VRT mosaic of band ``band`` of ``tiles`` (paths relative to the VRT's folder)."""
    k = per_degree // _CELLS_PER_DEGREE
    r_min = min(r.row0 for _, r in tiles)
    c_min = min(r.col0 for _, r in tiles)
    height = (max(r.row0 + r.nrows for _, r in tiles) - r_min) * k
    width = (max(r.col0 + r.ncols for _, r in tiles) - c_min) * k
    res = 1.0 / per_degree
    west, north = -180.0 + c_min * k * res, 90.0 - r_min * k * res
    sources = []
    for tile, r in tiles:
        w, h = r.ncols * k, r.nrows * k
        rel = os.path.relpath(tile, path.parent).replace(os.sep, "/")
        sources.append(
            "    <SimpleSource>\n"
            f'      <SourceFilename relativeToVRT="1">{escape(rel)}</SourceFilename>\n'
            f"      <SourceBand>{band}</SourceBand>\n"
            f'      <SourceProperties RasterXSize="{w}" RasterYSize="{h}" DataType="Float32" '
            f'BlockXSize="{C.BLOCK_SIZE}" BlockYSize="{C.BLOCK_SIZE}" />\n'
            f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}" />\n'
            f'      <DstRect xOff="{(r.col0 - c_min) * k}" yOff="{(r.row0 - r_min) * k}" xSize="{w}" ySize="{h}" />\n'
            "    </SimpleSource>\n"
        )
    text = (
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">\n'
        f'  <SRS dataAxisToSRSAxisMapping="2,1">{escape(_CRS.to_wkt())}</SRS>\n'
        f"  <GeoTransform>{west!r}, {res!r}, 0.0, {north!r}, 0.0, {-res!r}</GeoTransform>\n"
        '  <VRTRasterBand dataType="Float32" band="1">\n'
        f"    <NoDataValue>{nodata!r}</NoDataValue>\n"
        + "".join(sources)
        + "  </VRTRasterBand>\n</VRTDataset>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
