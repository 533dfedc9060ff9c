"""Coverage-weighted NEP of mines and reference rings, and the 11 indicators.

Per mine and year, the mean NEP inside the mine polygon (``nep_mine``) and
inside its reference ring (``nep_ref``, see :mod:`nepkit.rings`); per mine, the
11 indicators of the paper's Table 1. Means are coverage-weighted: a pixel
counts by the fraction of it the polygon covers (exactextract), nodata pixels
are ignored, and the valid-coverage fraction (covered valid pixels over the
polygon's area in pixels) is recorded as ``cov_mine`` / ``cov_ref``. The
estimate the next stage builds on these is a before-after-control-impact
(difference-in-differences) one: it assumes mine and ring would have followed
parallel NEP trends without mining.

How it runs
    Mines are sorted along a Hilbert curve and cut into *windows*: groups of
    nearby mines whose rings fit one rectangle of at most
    ``Chunking.max_window_px`` pixels. Each raster is read once per window
    (mines and rings together), so memory is bounded by the window size, not
    the raster size. exactextract computes the coverage on the raster's full
    grid (a raster source that serves reads from the window in memory), so the
    numbers are those of a plain exactextract call on the file, whichever
    window a mine falls in. Consecutive windows form *tasks* that run on Dask
    distributed: a ``LocalCluster`` by default, any scheduler address through
    ``RunParams.scheduler``, or in-process with ``scheduler="synchronous"``.

Rasters in another CRS than the mines (EPSG:4326)
    The polygons are reprojected to the raster's CRS, never the raster: no
    pixel is resampled.

Cache
    Each task's result is a Parquet file under
    ``<manifest folder>/.nepkit-cache/extract-<key>/`` (``runs/.cache/`` when
    that folder is not writable), where ``key`` hashes every input file's
    path, size and modification time, the reading options, the ring distances
    and the years. Tasks are planned over all BRI mines, whatever the region:
    a per-region run computes only the tasks holding its mines and later
    runs of any region reuse them. Files are written atomically, so a run
    interrupted mid-way resumes with the tasks it finished and never reads a
    half-written file; each file carries a SHA-256 checksum of its table, so
    a file damaged later (a flipped bit, a truncated copy) is detected,
    recomputed and counted (``stats["tasks_rejected"]``), never read.

Examples
--------
>>> from nepkit.params import RunParams
>>> from nepkit.extract import run_extraction, write_artifacts
>>> ex = run_extraction(RunParams(region="Africa", synthetic_preset="small"))  # doctest: +SKIP
>>> write_artifacts(ex, "runs/Africa")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import rasterio
import shapely
from affine import Affine
from exactextract import exact_extract
from exactextract._exactextract import Feature
from exactextract.feature import FeatureSource
from exactextract.operation import Operation
from exactextract.raster import RasterSource
from exactextract.writer import Writer
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.windows import Window
from scipy import sparse

from nepkit.artifacts import INDICATORS, artifact_path
from nepkit.io import atomic_path, write_table
from nepkit.params import RunParams
from nepkit.paths import RUNS_DIR
from nepkit.rings import crosses_antimeridian, reference_rings, ring_envelopes
from nepkit.sources import (
    COVARIATES,
    DerivedSpec,
    ExclusionReport,
    Grid,
    LandcoverSpec,
    Manifest,
    RasterSpec,
    SourceError,
    bri_mines,
    resolve_manifest,
    restrict_region,
)

__all__ = ["Chunking", "Extraction", "run_extraction", "write_artifacts", "curvature"]

#: Bump when a change of this module changes the numbers (invalidates caches).
EXTRACT_VERSION = 2
#: GDAL's block cache per process while extracting, bytes (keeps memory flat).
GDAL_CACHE_BYTES = 64 * 2**20
_WGS84 = CRS.from_epsg(4326)
_GEOD = pyproj.Geod(ellps="WGS84")


@dataclass(frozen=True)
class Chunking:
    """How mines are grouped into windows and tasks (results never depend on it).

    Parameters
    ----------
    max_window_px : int
        Largest window, NEP pixels: memory holds one window of one band.
    join_px : int
        A window grows to the next mine (in Hilbert order) while the pixels
        the grown window reads beyond its two parts stay below this.
    task_mines : int
        Mines per Dask task (a task reads each band across all its windows
        before the next band, and opens each file once).
    """

    max_window_px: int = 2**21
    join_px: int = 2**15
    task_mines: int = 200


@dataclass(frozen=True)
class Extraction:
    """What :func:`run_extraction` returns.

    Attributes
    ----------
    mines : geopandas.GeoDataFrame
        ``mine_id, iso3, country, continent, subregion, area_km2, geometry``.
    nep_panel : pandas.DataFrame
        ``mine_id, year, nep_mine, nep_ref`` (g C m-2 a-1), ``cov_mine, cov_ref`` (0-1).
    covariates : pandas.DataFrame
        ``mine_id`` and the 11 indicators.
    report : pandas.DataFrame
        ``step, count, reason, excluded``: every step and exclusion, in order.
    stats : dict
        Tasks planned, computed and reused, the cache folder, seconds.
    """

    mines: gpd.GeoDataFrame
    nep_panel: pd.DataFrame
    covariates: pd.DataFrame
    report: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------- public API


def run_extraction(
    params: RunParams,
    *,
    manifest: Manifest | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    chunking: Chunking = Chunking(),
) -> Extraction:
    """Extract mine and ring NEP for every year, and the indicators, for a run.

    Parameters
    ----------
    params : RunParams
        Uses ``sources``, ``region``, ``years``, ``baseline_year``,
        ``ring_inner_km``, ``ring_outer_km``, ``min_ring_pixels``,
        ``min_area_km2``, ``scheduler`` and ``n_workers``.
    manifest : Manifest, optional
        Already loaded; default: from ``params.sources``.
    cache_dir : path-like, optional
        Default ``<manifest folder>/.nepkit-cache`` (``runs/.cache`` if not writable).
    progress : bool
        Show a progress bar (mines done).
    chunking : Chunking
        Window and task sizes (memory and speed; never the numbers).

    Returns
    -------
    Extraction
        Sorted by ``mine_id`` (and ``year``). Mines are excluded, and counted
        in ``report``, when their ring crosses the antimeridian, when their
        ring has fewer than ``min_ring_pixels`` valid pixels (coverage-weighted)
        in any year, or when the mine has no valid NEP pixel in the baseline
        year. Indicators without a valid pixel stay NaN and are counted.

    Raises
    ------
    SourceError
        Bad inputs (see :mod:`nepkit.sources`) or no mine left in the region.

    Examples
    --------
    >>> ex = run_extraction(RunParams(region="CHN"), progress=False)  # doctest: +SKIP
    >>> ex.nep_panel.columns.tolist()  # doctest: +SKIP
    ['mine_id', 'year', 'nep_mine', 'nep_ref', 'cov_mine', 'cov_ref']
    """
    start = time.perf_counter()
    manifest = manifest or resolve_manifest(params)
    manifest.check_years(params.year_range)
    mines, mining, report = bri_mines(manifest, min_area_km2=params.min_area_km2)
    if mines.empty:
        raise SourceError(f"{manifest.mines.path}: no BRI mine of at least {params.min_area_km2:g} km2 in the layer: "
                          "lower min_area_km2 or check the layer's ISO3 codes")
    wraps = crosses_antimeridian(mines.geometry.values)  # their windows would span the globe
    tasks = plan_tasks(mines[~wraps], mining, manifest.nep.grid, outer_km=params.ring_outer_km, chunking=chunking)
    region = restrict_region(mines, params, report, source=manifest.mines.path)
    needed = [t for t in tasks if np.isin(t.mine_ids, region["mine_id"].to_numpy()).any()]
    folder = _cache_folder(manifest, params, cache_dir)
    results, computed, rejected = _run_tasks(needed, folder, manifest, params, progress=progress)
    wide = pd.concat(results, ignore_index=True).set_index("mine_id") if results else pd.DataFrame()
    mines_out, panel, covariates = _assemble(region, wide.reindex(region["mine_id"]), params, report)
    stats = {
        "tasks": len(tasks),
        "tasks_run": len(needed),
        "tasks_computed": computed,
        "tasks_reused": len(needed) - computed,
        "tasks_rejected": rejected,
        "cache": str(folder),
        "seconds": round(time.perf_counter() - start, 2),
    }
    return Extraction(mines_out, panel, covariates, report.to_frame(), stats)


def write_artifacts(extraction: Extraction, run_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``mines.parquet`` (GeoParquet), ``nep_panel.parquet``, ``covariates.parquet``.

    Also ``extraction_report.csv`` (the exclusions). Every write is atomic.

    Examples
    --------
    >>> paths = write_artifacts(ex, "runs/all")  # doctest: +SKIP
    """
    paths = {
        "mines": write_table(extraction.mines, artifact_path(run_dir, "mines")),
        "nep_panel": write_table(extraction.nep_panel, artifact_path(run_dir, "nep_panel")),
        "covariates": write_table(extraction.covariates, artifact_path(run_dir, "covariates")),
    }
    paths["report"] = write_table(extraction.report, Path(run_dir) / "extraction_report.csv")
    return paths


def curvature(dem: np.ndarray, dx_m: np.ndarray | float, dy_m: np.ndarray | float) -> np.ndarray:
    """Curvature of a DEM (ArcGIS/Zevenbergen-Thorne), 1/(100 m); positive = convex.

    ``-2 (D + E) * 100`` with ``D = ((z_w + z_e)/2 - z) / dx**2`` and
    ``E = ((z_n + z_s)/2 - z) / dy**2`` (z in m, cell sizes in m). Border
    cells and cells next to nodata are NaN.

    Parameters
    ----------
    dem : numpy.ndarray
        Elevation, m; NaN for nodata.
    dx_m, dy_m : float or numpy.ndarray
        Cell width and height in m, scalars or one value per row (geographic grids).

    Returns
    -------
    numpy.ndarray
        Same shape as ``dem``.

    Examples
    --------
    >>> z = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)  # a pit: concave
    >>> float(curvature(z, 10.0, 10.0)[1, 1])
    -4.0
    """
    z = np.asarray(dem, dtype=np.float64)
    out = np.full(z.shape, np.nan)
    if min(z.shape) < 3:
        return out

    def per_row(size: np.ndarray | float) -> np.ndarray:
        return np.broadcast_to(np.asarray(size, dtype=np.float64).reshape(-1, 1), (z.shape[0], 1))[1:-1]

    centre = z[1:-1, 1:-1]
    d = ((z[1:-1, :-2] + z[1:-1, 2:]) / 2 - centre) / per_row(dx_m) ** 2
    e = ((z[:-2, 1:-1] + z[2:, 1:-1]) / 2 - centre) / per_row(dy_m) ** 2
    out[1:-1, 1:-1] = -2 * (d + e) * 100
    return out


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Task:
    """A batch of windows of nearby mines, run by one worker."""

    mine_ids: np.ndarray
    mines: np.ndarray
    windows: tuple[np.ndarray, ...]
    mining: np.ndarray
    mining_rank: np.ndarray
    pixels: int = 0  # NEP pixels of its windows (per band)

    @property
    def cost(self) -> float:
        """Relative work: pixels read per band plus a per-mine share (rings, coverage)."""
        return self.pixels + 1500.0 * len(self.mine_ids)

    @property
    def name(self) -> str:
        """A stable file name: a hash of the mine ids and their windows."""
        h = hashlib.sha256(self.mine_ids.astype(np.int64).tobytes())
        for w in self.windows:
            h.update(len(w).to_bytes(4, "little"))
        return f"task-{h.hexdigest()[:20]}"


def plan_tasks(
    mines: gpd.GeoDataFrame,
    mining: gpd.GeoDataFrame,
    grid: Grid,
    *,
    outer_km: float,
    chunking: Chunking = Chunking(),
) -> list[Task]:
    """Cut the mines into spatially compact windows and tasks (Hilbert order).

    Parameters
    ----------
    mines : geopandas.GeoDataFrame
        ``mine_id`` and geometry (EPSG:4326).
    mining : geopandas.GeoDataFrame
        Every mining polygon of the layer (its rings' exclusions).
    grid : Grid
        The NEP grid (window sizes are counted in its pixels).
    outer_km : float
        The rings' outer distance (their extent around the mines).
    chunking : Chunking
        Window and task sizes.

    Returns
    -------
    list of Task
    """
    geoms = np.asarray(mines.geometry.values, dtype=object)
    boxes = _pixel_boxes(geoms, grid, outer_km)
    order = np.argsort(_hilbert((boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2), kind="stable")
    windows = _windows(boxes, order, chunking)
    ids = mines["mine_id"].to_numpy()
    mining_geoms = np.asarray(mining.geometry.values, dtype=object)
    tree = shapely.STRtree(mining_geoms)
    tasks = []
    for batch in _batches(windows, chunking.task_mines):
        members = np.concatenate(batch)
        local = np.empty(members.max() + 1, dtype=np.int64)
        local[members] = np.arange(len(members))
        near = np.unique(tree.query(ring_envelopes(geoms[members], outer_km))[1])
        tasks.append(
            Task(
                mine_ids=ids[members],
                mines=geoms[members],
                windows=tuple(local[w] for w in batch),
                mining=mining_geoms[near],
                mining_rank=near,
                pixels=int(sum(_box_area(boxes[w]) for w in batch)),
            )
        )
    return tasks


def _pixel_boxes(geoms: np.ndarray, grid: Grid, outer_km: float) -> np.ndarray:
    """Each mine's ring envelope in the grid's fractional pixel coordinates (col0, row0, col1, row1)."""
    env = _to_crs(ring_envelopes(geoms, outer_km), grid.crs)
    b = shapely.bounds(env)
    c0, r0 = _pixel(grid, b[:, 0], b[:, 3])
    c1, r1 = _pixel(grid, b[:, 2], b[:, 1])
    return np.column_stack([np.minimum(c0, c1), np.minimum(r0, r1), np.maximum(c0, c1), np.maximum(r0, r1)])


def _pixel(grid: Grid, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (col, row) of CRS coordinates on a north-up grid."""
    t = grid.transform
    return (np.asarray(x) - t.c) / t.a, (np.asarray(y) - t.f) / t.e


def _hilbert(x: np.ndarray, y: np.ndarray, order: int = 16) -> np.ndarray:
    """Position along a Hilbert curve of points (scaled to a 2**order grid)."""
    n = 1 << order

    def scale(v: np.ndarray) -> np.ndarray:
        span = max(float(np.ptp(v)), 1e-9)
        return np.clip(((v - v.min()) / span * (n - 1)).astype(np.int64), 0, n - 1)

    x, y = scale(np.asarray(x, float)), scale(np.asarray(y, float))
    d = np.zeros(len(x), dtype=np.int64)
    s = n >> 1
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        x = np.where(flip, n - 1 - x, x)
        y = np.where(flip, n - 1 - y, y)
        x, y = np.where(~ry, y, x), np.where(~ry, x, y)
        s >>= 1
    return d


def _box_area(boxes: np.ndarray) -> float:
    """Pixels of the box holding ``boxes`` (one box, or several as rows)."""
    b = np.atleast_2d(boxes)
    return float(max(b[:, 2].max() - b[:, 0].min(), 1.0) * max(b[:, 3].max() - b[:, 1].min(), 1.0))


def _windows(boxes: np.ndarray, order: np.ndarray, chunking: Chunking) -> list[np.ndarray]:
    """Greedy runs along ``order``: join the next box while the window stays small and dense."""
    area = _box_area
    windows, current, box = [], [order[0]], boxes[order[0]].copy()
    for i in order[1:]:
        b = boxes[i]
        joined = np.array([min(box[0], b[0]), min(box[1], b[1]), max(box[2], b[2]), max(box[3], b[3])])
        if area(joined) <= chunking.max_window_px and area(joined) - area(box) - area(b) <= chunking.join_px:
            current.append(i)
            box = joined
        else:
            windows.append(np.array(current))
            current, box = [i], b.copy()
    windows.append(np.array(current))
    return windows


def _batches(windows: list[np.ndarray], task_mines: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    size = 0
    for w in windows:
        if batch and size + len(w) > task_mines:
            yield batch
            batch, size = [], 0
        batch.append(w)
        size += len(w)
    if batch:
        yield batch


# ------------------------------------------------------------------------ execution


def _cache_folder(manifest: Manifest, params: RunParams, cache_dir: str | os.PathLike[str] | None) -> Path:
    key = hashlib.sha256(
        json.dumps(
            {
                "version": EXTRACT_VERSION,
                "inputs": manifest.fingerprint(),
                "ring_km": [params.ring_inner_km, params.ring_outer_km],
                "years": params.year_range,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:24]
    root = Path(cache_dir) if cache_dir is not None else _default_cache(manifest)
    folder = root / f"extract-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _default_cache(manifest: Manifest) -> Path:
    root = manifest.folder / ".nepkit-cache"
    try:
        root.mkdir(exist_ok=True)
        probe = root / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
        return root
    except OSError:
        return RUNS_DIR / ".cache"


def _run_tasks(
    tasks: list[Task], folder: Path, manifest: Manifest, params: RunParams, *, progress: bool
) -> tuple[list[pd.DataFrame], int, int]:
    """Results of ``tasks``: valid cached files where present, the rest computed and cached.

    Also returns how many were computed and how many of those replace a damaged file.
    """
    results: dict[str, pd.DataFrame] = {}
    todo = []
    for task in tasks:
        cached = _read_cached(folder / f"{task.name}.parquet", task)
        if cached is None:
            todo.append(task)
        else:
            results[task.name] = cached
    rejected = sum((folder / f"{task.name}.parquet").exists() for task in todo)
    args = (manifest, params.year_range, params.ring_inner_km, params.ring_outer_km, folder.name)

    def done(task: Task, frame: pd.DataFrame) -> None:
        _write_cached(folder / f"{task.name}.parquet", frame)
        results[task.name] = frame

    if todo:
        _execute(todo, args, params, done, progress=progress)
    return [results[t.name] for t in tasks], len(todo), rejected


#: Schema-metadata key of a cache file's checksum (:func:`_frame_digest` of its table).
_DIGEST_KEY = b"nepkit_sha256"


def _frame_digest(frame: pd.DataFrame) -> bytes:
    """SHA-256 of a table's column names, types and values."""
    h = hashlib.sha256(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest().encode()


def _write_cached(path: Path, frame: pd.DataFrame) -> None:
    """Write a task's table atomically, its checksum in the Parquet schema metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _DIGEST_KEY: _frame_digest(frame)})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _read_cached(path: Path, task: Task) -> pd.DataFrame | None:
    """A cached task's table, or None when missing, unreadable, not matching its checksum or not the task's mines."""
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
        frame = table.to_pandas()
        valid = (table.schema.metadata or {}).get(_DIGEST_KEY) == _frame_digest(frame)
        valid = valid and np.array_equal(np.sort(frame["mine_id"].to_numpy()), np.sort(task.mine_ids))
    except Exception:  # noqa: BLE001 - a damaged cache file is recomputed, whatever the error
        return None
    return frame if valid else None


def _execute(
    tasks: list[Task],
    args: tuple[Any, ...],
    params: RunParams,
    done: Callable[[Task, pd.DataFrame], None],
    *,
    progress: bool,
) -> None:
    """Run ``tasks`` in-process (``scheduler="synchronous"``) or on Dask; call ``done`` as each ends."""
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(len(t.mine_ids) for t in tasks), unit="mine", desc="extract", disable=not progress)
    with bar:
        if params.scheduler == "synchronous":
            try:
                for task in tasks:
                    done(task, extract_task(task, *args))
                    bar.update(len(task.mine_ids))
            finally:
                _close_datasets()
            return
        from distributed import as_completed

        with _client(params) as client:
            # the costliest tasks first, so that the workers finish together; the arguments
            # (a few kB) travel with each task: scattered data would tie tasks to its worker
            ranked = sorted(tasks, key=lambda t: t.cost, reverse=True)
            futures = {
                client.submit(extract_task, task, *args, pure=False, priority=len(ranked) - k): task
                for k, task in enumerate(ranked)
            }
            for future in as_completed(futures):
                task = futures[future]
                done(task, future.result())
                bar.update(len(task.mine_ids))


#: Settings of the local cluster's workers. Dask sets ``MALLOC_TRIM_THRESHOLD_=65536``
#: in workers, which makes glibc return every large temporary array to the system
#: and costs this workload about a third more CPU; its statistical profiler costs
#: a few percent more. Both are off (an environment variable of the same name
#: still wins).
_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}


@contextlib.contextmanager
def _client(params: RunParams) -> Iterator[Any]:
    """A Dask client: of ``params.scheduler``, or of a fresh local cluster (closed after)."""
    import dask
    from distributed import Client, LocalCluster

    if params.scheduler:
        with Client(params.scheduler) as client:
            yield client
        return
    with warnings.catch_warnings(), dask.config.set(_WORKER_CONFIG):
        warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")  # another cluster holds it
        cluster = LocalCluster(n_workers=params.n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster as running, Client(running) as client:
        client.wait_for_workers(params.n_workers)
        yield client


# ---------------------------------------------------------------------- one task


def extract_task(
    task: Task, manifest: Manifest, years: list[int], inner_km: float, outer_km: float, run: str = ""
) -> pd.DataFrame:
    """Extract one task: one row per mine, wide (``nep_mine_<year>``, ..., indicators).

    Runs on a Dask worker. Each band is read for every window of the task
    before the next band, so raster blocks shared by neighbouring windows are
    decoded once (GDAL's small block cache holds them); each raster is read
    once per window, and memory holds one window of one band at a time.
    """
    rings = reference_rings(task.mines, task.mining, inner_km=inner_km, outer_km=outer_km, mining_order=task.mining_rank)
    antimeridian = crosses_antimeridian(rings)
    rings[antimeridian] = shapely.Polygon()
    mines = [task.mines[w] for w in task.windows]
    readers = _Readers(run)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        columns = _nep(mines, [rings[w] for w in task.windows], manifest, years, readers)
        for names in _by_grid(manifest).values():
            for out, part in zip(columns, _covariates(mines, names, manifest, years, readers), strict=True):
                out |= part
    frame = pd.concat([pd.DataFrame(c) for c in columns], ignore_index=True)
    order = np.concatenate(task.windows)
    frame.insert(0, "mine_id", task.mine_ids[order])
    frame["ring_antimeridian"] = antimeridian[order]
    return frame


def _nep(
    mines: list[np.ndarray], rings: list[np.ndarray], manifest: Manifest, years: list[int], readers: _Readers
) -> list[dict[str, np.ndarray]]:
    """NEP means and valid-coverage fractions of mines and rings, per window of the task.

    Coverage is computed once per window (mines and rings together); then each
    year is read window after window and reduced at once, so memory holds one
    window of one band.
    """
    spec = manifest.nep
    grid = spec.grid
    shapes = [(_to_crs(m, grid.crs), _to_crs(r, grid.crs)) for m, r in zip(mines, rings, strict=True)]
    windows = [_window(grid, np.concatenate(pair)) for pair in shapes]
    cells = [_coverage(np.concatenate(pair), grid, w) for pair, w in zip(shapes, windows, strict=True)]
    if manifest.landcover is not None:  # excluded classes leave the rings' cells (not the mines')
        for i, (window, c) in enumerate(zip(windows, cells, strict=True)):
            excluded = readers.landcover_mask(manifest.landcover, grid, window).ravel()
            in_ring = np.repeat(np.arange(c.matrix.shape[0]) >= len(shapes[i][0]), np.diff(c.matrix.indptr))
            cells[i] = c.without(excluded[c.matrix.indices] & in_ring)
    cell = grid.res[0] * grid.res[1]
    areas = [(shapely.area(m) / cell, shapely.area(r) / cell) for m, r in shapes]
    columns: list[dict[str, np.ndarray]] = [{} for _ in windows]
    for y in years:
        for i, window in enumerate(windows):
            mean, count = _mean(cells[i], readers.read(spec, y, window))
            n, (mine_px, ring_px), out = len(shapes[i][0]), areas[i], columns[i]
            out[f"nep_mine_{y}"], out[f"nep_ref_{y}"] = mean[:n], mean[n:]
            out[f"cov_mine_{y}"] = _fraction(count[:n], mine_px)
            out[f"cov_ref_{y}"] = _fraction(count[n:], ring_px)
            out[f"ring_px_{y}"] = count[n:]
    return columns


def _fraction(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.clip(count / total, 0.0, 1.0), 0.0)


def _by_grid(manifest: Manifest) -> dict[Grid, list[str]]:
    """Covariate names grouped by the grid they are read on (derived ones on their source's)."""
    groups: dict[Grid, list[str]] = {}
    for name, spec in manifest.covariates.items():
        source = manifest.covariates[spec.source] if isinstance(spec, DerivedSpec) else spec
        groups.setdefault(source.grid, []).append(name)
    return groups


def _covariates(
    mines: list[np.ndarray], names: list[str], manifest: Manifest, years: list[int], readers: _Readers
) -> list[dict[str, np.ndarray]]:
    """Indicators of one grid, per window: per-year means averaged over the run's years (NaN ignored)."""
    first = manifest.covariates[names[0]]
    grid = (manifest.covariates[first.source] if isinstance(first, DerivedSpec) else first).grid
    shapes = [_to_crs(m, grid.crs) for m in mines]
    windows = [_window(grid, m) for m in shapes]
    cells = [_coverage(m, grid, w) for m, w in zip(shapes, windows, strict=True)]
    columns: list[dict[str, np.ndarray]] = [{} for _ in windows]
    for name in names:
        spec = manifest.covariates[name]
        if isinstance(spec, DerivedSpec):
            source = manifest.covariates[spec.source]
            for out, c, window in zip(columns, cells, windows, strict=True):
                out[name] = _mean(c, readers.curvature(source, window))[0]
            continue
        keys = spec.years_in(years)
        if not keys:
            raise SourceError(f"{manifest.path}: covariates.{name} has no year inside {years[0]}-{years[-1]}: add data")
        per_key: list[list[np.ndarray]] = [[] for _ in windows]
        for key in keys:
            for means, c, window in zip(per_key, cells, windows, strict=True):
                means.append(_mean(c, readers.read(spec, key, window))[0])
        for out, means in zip(columns, per_key, strict=True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[name] = np.nanmean(np.column_stack(means), axis=1)
    return columns


# ------------------------------------------------------------------ rasters and windows


def _to_crs(geoms: np.ndarray, crs: str) -> np.ndarray:
    """Lon/lat geometries into ``crs`` (unchanged when it is lon/lat WGS84)."""
    target = CRS.from_user_input(crs)
    if target == _WGS84 or target.to_epsg() == 4326:
        return geoms
    transformer = _transformer(target.to_wkt())

    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, apply)


_TRANSFORMERS: dict[str, pyproj.Transformer] = {}


def _transformer(wkt: str) -> pyproj.Transformer:
    if wkt not in _TRANSFORMERS:
        _TRANSFORMERS[wkt] = pyproj.Transformer.from_crs("EPSG:4326", wkt, always_xy=True)
    return _TRANSFORMERS[wkt]


def _window(grid: Grid, geoms: np.ndarray) -> Window:
    """The pixel window holding ``geoms`` (one pixel of margin), clipped to the grid; may be empty."""
    present = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if not len(present):
        return Window(0, 0, 0, 0)
    xmin, ymin, xmax, ymax = shapely.total_bounds(present)
    cols, rows = _pixel(grid, np.array([xmin, xmax]), np.array([ymin, ymax]))
    c0, c1 = int(np.floor(cols.min())) - 1, int(np.ceil(cols.max())) + 1
    r0, r1 = int(np.floor(rows.min())) - 1, int(np.ceil(rows.max())) + 1
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, grid.width), min(r1, grid.height)
    return Window(c0, r0, max(c1 - c0, 0), max(r1 - r0, 0))


#: Datasets open in this process, kept across the tasks of one run (``_RUN`` names it):
#: a VRT mosaic costs about a millisecond to open, and a task reads tens of files.
_DATASETS: dict[str, Any] = {}
_RUN: list[str] = [""]


def _close_datasets() -> None:
    for ds in _DATASETS.values():
        ds.close()
    _DATASETS.clear()
    _RUN[0] = ""


@dataclass(frozen=True)
class _Band:
    """How to turn one band's raw values into values with NaN for nodata (per file, band and options)."""

    missing: tuple[Any, ...]  # nodata values in the band's type (NaN is left to the reader)
    masked: bool  # the file has a mask band or alpha: read it
    scale: float
    offset: float
    floating: bool


class _Readers:
    """Windowed reads; each file is opened once per process and run (``run``, e.g. the cache key)."""

    def __init__(self, run: str) -> None:
        if run != _RUN[0]:
            _close_datasets()
            _RUN[0] = run
        self._bands: dict[tuple[Any, ...], _Band] = {}

    def dataset(self, path: str) -> Any:
        if path not in _DATASETS:
            _DATASETS[path] = rasterio.open(path)
        return _DATASETS[path]

    def read(self, spec: RasterSpec, key: int | None, window: Window) -> np.ndarray:
        """The values of ``spec`` for year ``key`` in ``window``: NaN for nodata, options applied."""
        steps = [self._band(spec, ref.path, ref.band, window) for ref in spec.bands[key]]
        if len(steps) == 1:
            values = steps[0]
        elif spec.aggregate == "sum":
            values = np.sum(steps, axis=0)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                values = np.nanmean(steps, axis=0)
        if spec.per_area:
            values = values / _cell_area_km2(spec.grid, window)
        return values

    def _band(self, spec: RasterSpec, path: str, band: int, window: Window) -> np.ndarray:
        ds = self.dataset(path)
        info = self._info(ds, path, band, spec)
        raw = ds.read(band, window=window)
        invalid = None
        for value in info.missing:
            hit = raw == value
            invalid = hit if invalid is None else invalid | hit
        if info.masked:
            hit = ds.read_masks(band, window=window) == 0
            invalid = hit if invalid is None else invalid | hit
        values = raw
        if not info.floating or (info.scale, info.offset) != (1.0, 0.0):
            values = raw.astype(np.float64)
            values *= info.scale
            values += info.offset
        if invalid is not None:
            values[invalid] = np.nan  # ``values`` is a fresh array: changed in place
        return values

    def _info(self, ds: Any, path: str, band: int, spec: RasterSpec) -> _Band:
        key = (path, band, spec.nodata, spec.scale, spec.offset)
        if key not in self._bands:
            dtype = np.dtype(ds.dtypes[band - 1])
            values = [v for v in (ds.nodatavals[band - 1], *spec.nodata) if v is not None and not np.isnan(v)]
            flags = ds.mask_flag_enums[band - 1]
            self._bands[key] = _Band(
                missing=tuple(
                    np.asarray(v).astype(dtype)[()]
                    for v in values
                    if dtype.kind == "f" or np.can_cast(np.min_scalar_type(v), dtype)
                ),
                masked=MaskFlags.per_dataset in flags or MaskFlags.alpha in flags,
                scale=ds.scales[band - 1] * spec.scale,
                offset=ds.offsets[band - 1] * spec.scale + spec.offset,
                floating=dtype.kind == "f",
            )
        return self._bands[key]

    def curvature(self, dem_spec: RasterSpec, window: Window) -> np.ndarray:
        """Curvature (see :func:`curvature`) of the DEM in ``window`` (a one-pixel border read around it)."""
        grid = dem_spec.grid
        outer = _grow(window, grid)
        dem = self.read(dem_spec, None if dem_spec.is_static else max(k for k in dem_spec.bands), outer)
        dx, dy = _cell_sizes_m(grid, outer)
        curv = curvature(dem, dx, dy)
        r, c = window.row_off - outer.row_off, window.col_off - outer.col_off
        return curv[r : r + window.height, c : c + window.width]

    def landcover_mask(self, spec: LandcoverSpec, grid: Grid, window: Window) -> np.ndarray:
        """True where the land cover (nearest pixel) is an excluded class, on ``grid``'s ``window``."""
        from rasterio.warp import reproject

        lc = spec.raster
        ref = lc.bands[None][0]
        ds = self.dataset(ref.path)
        codes = np.full((window.height, window.width), np.nan, dtype=np.float64)
        if codes.size:
            reproject(
                rasterio.band(ds, ref.band),
                codes,
                src_crs=lc.grid.crs,
                src_nodata=ds.nodatavals[ref.band - 1],
                dst_transform=_window_transform(grid, window),
                dst_crs=grid.crs,
                dst_nodata=np.nan,
                resampling=Resampling.nearest,
            )
        return np.isin(codes, np.asarray(spec.exclude, dtype=np.float64))


def _window_transform(grid: Grid, window: Window) -> Affine:
    t = grid.transform
    return Affine(t.a, 0.0, t.c + t.a * window.col_off, 0.0, t.e, t.f + t.e * window.row_off)


def _grow(window: Window, grid: Grid) -> Window:
    c0, r0 = max(window.col_off - 1, 0), max(window.row_off - 1, 0)
    c1 = min(window.col_off + window.width + 1, grid.width)
    r1 = min(window.row_off + window.height + 1, grid.height)
    return Window(c0, r0, max(c1 - c0, 0), max(r1 - r0, 0))


def _row_latitudes(grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(window.row_off, window.row_off + window.height)
    t = grid.transform
    return t.f + t.e * rows, t.f + t.e * (rows + 1)


def _cell_sizes_m(grid: Grid, window: Window) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Cell width and height of each row of ``window``, metres (geodesic on geographic grids)."""
    if not grid.is_geographic:
        return grid.res[0], grid.res[1]
    top, bottom = _row_latitudes(grid, window)
    mid = (top + bottom) / 2
    _, _, dx = _GEOD.inv(np.zeros_like(mid), mid, np.full_like(mid, grid.res[0]), mid)
    _, _, dy = _GEOD.inv(np.zeros_like(mid), top, np.zeros_like(mid), bottom)
    return dx, dy


def _cell_area_km2(grid: Grid, window: Window) -> np.ndarray | float:
    """Cell area per row (geodesic on geographic grids), km2, shaped to broadcast over a window."""
    if not grid.is_geographic:
        return grid.res[0] * grid.res[1] / 1e6
    top, bottom = _row_latitudes(grid, window)
    w = grid.res[0]
    areas = [abs(_GEOD.polygon_area_perimeter([0, w, w, 0], [t, t, b, b])[0]) / 1e6 for t, b in zip(top, bottom, strict=True)]
    return np.asarray(areas).reshape(-1, 1)


# --------------------------------------------------------------------- exactextract


class _WindowSource(RasterSource):
    """A raster source with the full grid's geometry whose pixels come from one window in memory.

    exactextract computes coverage on the full grid, exactly as on the file,
    while the pixels were read once for all the window's polygons.
    """

    def __init__(self, grid: Grid, window: Window, values: np.ndarray, name: str) -> None:
        super().__init__()
        self._grid, self._win, self._values = grid, window, values
        self.label = name
        self.set_name(name)

    def res(self) -> tuple[float, float]:
        return self._grid.res

    def extent(self) -> tuple[float, float, float, float]:
        return self._grid.bounds

    def nodata_value(self) -> None:
        return None

    def srs_wkt(self) -> str:
        return self._grid.crs

    def read_window(self, x0: int, y0: int, nx: int, ny: int) -> np.ndarray:
        if nx == 0 or ny == 0:
            return self._values[:ny, :nx]
        r, c = y0 - self._win.row_off, x0 - self._win.col_off
        if r < 0 or c < 0 or r + ny > self._values.shape[0] or c + nx > self._values.shape[1]:
            raise RuntimeError(f"pixels ({x0}, {y0}, {nx}, {ny}) requested outside the window {self._win}")
        return self._values[r : r + ny, c : c + nx]


class _Geoms(FeatureSource):
    """Shapely geometries as exactextract features (WKB, feature index ``i``)."""

    def __init__(self, geoms: np.ndarray, crs_wkt: str) -> None:
        super().__init__()
        self._wkb, self._crs = shapely.to_wkb(geoms), crs_wkt

    def count(self) -> int:
        return len(self._wkb)

    def __iter__(self) -> Iterator[Feature]:
        for i, wkb in enumerate(self._wkb):
            yield _GeomFeature(wkb, i)

    def srs_wkt(self) -> str:
        return self._crs


class _GeomFeature(Feature):
    def __init__(self, wkb: bytes, i: int) -> None:
        Feature.__init__(self)
        self._wkb, self.results = wkb, {"i": i}

    def geometry(self) -> bytes:
        return self._wkb

    def set_geometry_format(self) -> str:
        return "wkb"

    def get(self, name: str) -> Any:
        return self.results[name]

    def set(self, name: str, value: Any) -> None:
        self.results[name] = value

    def fields(self) -> list[str]:
        return list(self.results)

    def set_geometry(self, wkb: bytes) -> None:
        self._wkb = wkb


@dataclass(frozen=True)
class _Cells:
    """The covered fraction of each window cell by each feature (exactextract's, on the full grid).

    A sparse (features x window cells) matrix whose rows hold each feature's
    cells in exactextract's order, and its row sums.
    """

    matrix: sparse.csr_array
    full: np.ndarray

    @classmethod
    def build(cls, coverage: np.ndarray, flat: np.ndarray, lengths: np.ndarray, size: int) -> _Cells:
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        matrix = sparse.csr_array((coverage, flat, indptr), shape=(len(lengths), size))
        return cls(matrix, matrix @ np.ones(size))

    def without(self, drop: np.ndarray) -> _Cells:
        """The same cells with those flagged in ``drop`` (one flag per stored cell) removed."""
        m = self.matrix
        data = np.where(drop, 0.0, m.data)
        return _Cells.build(data, m.indices, np.diff(m.indptr), m.shape[1])


def _coverage(geoms: np.ndarray, grid: Grid, window: Window) -> _Cells:
    """Cells and covered fractions of every geometry, by exactextract; empty geometries have none."""
    keep = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    lengths = np.zeros(len(geoms), dtype=np.int64)
    size = window.width * window.height
    if not len(keep) or size == 0:
        return _Cells.build(np.zeros(0), np.zeros(0, np.int64), lengths, size)
    # a constant source: every cell is valid, so every covered cell is listed
    source = _WindowSource(grid, window, np.zeros((window.height, window.width), np.float32), "cells")
    ops = [Operation("cell_id", "cell_id", source), Operation("coverage", "coverage", source)]
    rows = exact_extract([source], _Geoms(geoms[keep], grid.crs), ops, output=_Rows())
    ids = np.concatenate([np.asarray(r["cell_id"], dtype=np.int64) for r in rows])
    coverage = np.concatenate([np.asarray(r["coverage"], dtype=np.float64) for r in rows])
    row, col = np.divmod(ids, grid.width)
    flat = (row - window.row_off) * window.width + (col - window.col_off)
    lengths[keep] = [len(r["cell_id"]) for r in rows]
    return _Cells.build(coverage, flat, lengths, size)


def _mean(cells: _Cells, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per feature, the coverage-weighted mean of ``values`` (a window) and its covered valid cells.

    ``mean = sum(v * c) / sum(c)`` and ``count = sum(c)`` over the covered cells
    whose value is not NaN: exactextract's ``mean`` and ``count``, with its
    coverage fractions, summed in the same order. No valid cell: NaN mean,
    count 0.
    """
    v = values.ravel()
    missing = np.isnan(v)
    count = cells.full
    if missing.any():
        count = cells.matrix @ (~missing).astype(np.float64)
        v = np.where(missing, 0.0, v)
    total = cells.matrix @ v.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan), count


class _Rows(Writer):
    """Collects each feature's results as a dict, in feature order (no copies, no DataFrame)."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[dict[str, Any]] = []

    def add_operation(self, op: Operation) -> None:
        pass

    def add_column(self, name: str) -> None:  # pragma: no cover - no include_cols
        pass

    def add_geometry(self) -> None:  # pragma: no cover - include_geom is never set
        pass

    def write(self, feature: Feature) -> None:
        row = _GeomFeature(b"", -1)
        feature.copy_to(row)
        self._rows.append(row.results)

    def features(self) -> list[dict[str, Any]]:
        return self._rows


# ------------------------------------------------------------------------ assembly


def _assemble(
    region: gpd.GeoDataFrame, wide: pd.DataFrame, params: RunParams, report: ExclusionReport
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Apply the ring and NEP exclusions; shape the three tables."""
    years = params.year_range
    ring_px = wide.reindex(columns=[f"ring_px_{y}" for y in years]).to_numpy(dtype=np.float64)
    anti = wide.reindex(columns=["ring_antimeridian"])["ring_antimeridian"].ne(False).to_numpy()  # missing: wraps
    few = ~anti & (ring_px.min(axis=1) < params.min_ring_pixels)
    no_nep = ~anti & ~few & wide[f"nep_mine_{params.baseline}"].isna().to_numpy()
    report.add("antimeridian", int(anti.sum()), "mine or reference ring crosses the antimeridian", excluded=True)
    report.add(
        "ring_pixels",
        int(few.sum()),
        f"reference ring with fewer than {params.min_ring_pixels} valid pixels (coverage-weighted) in some year",
        excluded=True,
    )
    report.add("nep_baseline", int(no_nep.sum()), f"no valid NEP pixel in the mine in {params.baseline}", excluded=True)
    keep = ~(anti | few | no_nep)
    wide = wide[keep]
    mines = region[keep].reset_index(drop=True)
    if mines.empty:
        raise SourceError(
            f"no mine of region {params.region!r} has a usable reference ring and NEP: "
            "lower min_ring_pixels, widen the ring or check the NEP rasters' extent"
        )
    for name in COVARIATES:
        missing = int(wide[name].isna().sum())
        if missing:
            report.add(f"nan_{name}", missing, f"mines without a valid {name} pixel (kept, value NaN)")
    report.add("mines", len(mines), "mines with NEP, reference ring and indicators")
    return mines, _panel(wide, years), _indicator_table(wide, mines)


def _panel(wide: pd.DataFrame, years: list[int]) -> pd.DataFrame:
    n = len(wide)
    columns = {"mine_id": np.repeat(wide.index.to_numpy(dtype=np.int64), len(years)), "year": np.tile(np.asarray(years, dtype=np.int64), n)}
    for stem in ("nep_mine", "nep_ref", "cov_mine", "cov_ref"):
        columns[stem] = wide[[f"{stem}_{y}" for y in years]].to_numpy(dtype=np.float64).reshape(-1)
    return pd.DataFrame(columns)


def _indicator_table(wide: pd.DataFrame, mines: gpd.GeoDataFrame) -> pd.DataFrame:
    table = pd.DataFrame({"mine_id": wide.index.to_numpy(dtype=np.int64)})
    for name in INDICATORS:
        table[name] = mines["area_km2"].to_numpy() if name == "area_km2" else wide[name].to_numpy(dtype=np.float64)
    return table
