"""Benchmark of the extraction: nepkit against the I/O floor, exactextract and rasterstats.

Worlds: the synthetic ``paper`` world, and a large raster world built here
whose NEP rasters are 10,000 x 5,000 and 40,000 x 20,000 px per year with the
same mines (so that memory can be seen not to grow with the raster). For each
world, each method runs in a fresh process whose whole process tree (Dask
workers included) is sampled for memory:

``nepkit``
    :func:`nepkit.extract.run_extraction` with a cold cache on a local Dask
    cluster of ``--workers`` processes: mines and rings, every year, the 11
    indicators.
``floor``
    A plain read (decode) of the same windows of the same rasters, in
    ``--workers`` processes, band by band as nepkit reads: the I/O floor.
``exactextract``
    A plain exactextract call on the files (default strategy, mines in the
    layer's order, rings precomputed and not timed), the features split
    between ``--workers`` processes.
``rasterstats``
    ``rasterstats.zonal_stats`` on a random sample of mines (and their rings),
    extrapolated to all mines and to ``--workers`` processes (perfect scaling
    assumed), and labelled as such.

Throughput is mine-years per second: mines x years / seconds, where seconds
is the wall time of the process for nepkit and the floor (start-up
included), the timed calls for exactextract, the extrapolation for
rasterstats. Every method does the same work: mines and rings, 21 years, the
indicators.

Usage::

    .venv/bin/python benchmarks/extract.py                     # paper world + large raster
    .venv/bin/python benchmarks/extract.py --worlds paper --methods nepkit,floor
    .venv/bin/python benchmarks/extract.py --worlds large --large-size 8000x4000

The large world is written once to ``runs/.bench/`` (about 2.6 GB for
40,000 x 20,000 px; ``--data`` moves it) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

METHODS = ("nepkit", "floor", "exactextract", "rasterstats")
TARGETS = {
    "floor": "nepkit within 1.3x the I/O floor",
    "rasterstats": "nepkit >= 15x the throughput of rasterstats",
    "exactextract": "nepkit never slower than the plain exactextract call",
}


# ----------------------------------------------------------------- the large world


def make_large_world(folder: Path, *, width: int, height: int, n_mines: int = 2000, seed: int = 0) -> Path:
    """A world whose NEP rasters are ``width`` x ``height`` px (1/240 degree), 2000-2020.

    One NEP GeoTIFF (tiled, DEFLATE) holds the base field; each year is a VRT of
    it with a yearly offset, so every read decodes the file. Covariates come
    from one 1/120-degree GeoTIFF through VRTs. Mines sit in 40 clustered
    districts. Returns the manifest path.
    """
    import geopandas as gpd
    import rasterio
    import shapely
    import yaml
    from affine import Affine

    manifest = folder / "sources.yml"
    if manifest.exists():
        return manifest
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    res, x0, y0 = 1 / 240, 20.0, 60.0
    nep = _write_field(folder / "nep_base.tif", width, height, Affine(res, 0, x0, 0, -res, y0), rng, mean=70.0)
    cov = _write_field(folder / "cov_base.tif", width // 2, height // 2, Affine(2 * res, 0, x0, 0, -2 * res, y0), rng, mean=10.0)
    for year in range(2000, 2021):
        _vrt(folder / "nep" / f"nep_{year}.vrt", nep, offset=2.0 * (year - 2000) - 20.0, scale=1.0)
        _vrt(folder / "cov" / f"spei_{year}.vrt", cov, offset=0.1 * (year - 2010), scale=0.1)
    covariates = {"spei": {"path": "cov/spei_{year}.vrt"}, "curvature": {"derive": "elevation"}}
    for k, name in enumerate(("precip", "tmax", "tmin", "gpp", "soc", "elevation", "pop_density", "gdp")):
        _vrt(folder / "cov" / f"{name}.vrt", cov, offset=float(k), scale=1.0 + k)
        covariates[name] = {"path": f"cov/{name}.vrt"}
    lon0, lat0 = x0 + width * res * 0.05, y0 - height * res * 0.95
    lon1, lat1 = x0 + width * res * 0.95, y0 - height * res * 0.05
    centres = np.column_stack([rng.uniform(lon0, lon1, 40), rng.uniform(lat0, lat1, 40)])
    district = rng.integers(0, 40, n_mines * 5 // 4)
    xy = centres[district] + rng.normal(0, 0.25, (len(district), 2))
    side_km = np.sqrt(np.exp(rng.normal(0.9, 0.9, len(district))))  # many of 1-5 km2, some below 1 km2
    half = side_km / 2 / 111.0
    geoms = shapely.box(xy[:, 0] - half / np.cos(np.radians(xy[:, 1])), xy[:, 1] - half, xy[:, 0] + half / np.cos(np.radians(xy[:, 1])), xy[:, 1] + half)
    iso3 = rng.choice(["CHN", "MNG", "KAZ", "RUS", "IDN", "IRN"], len(geoms))
    gpd.GeoDataFrame({"ISO3_CODE": iso3}, geometry=geoms, crs="EPSG:4326").to_file(
        folder / "mines.gpkg", layer="mining_polygons", engine="pyogrio"
    )
    content = {
        "years": [2000, 2020],
        "mines": {"path": "mines.gpkg", "layer": "mining_polygons", "iso3_column": "ISO3_CODE"},
        "nep": {"path": "nep/nep_{year}.vrt"},
        "covariates": covariates,
    }
    manifest.write_text(yaml.safe_dump(content, sort_keys=False))
    del rasterio
    return manifest


def _write_field(path: Path, width: int, height: int, transform, rng: np.random.Generator, *, mean: float) -> Path:
    """A smooth field plus noise (0.01 steps) with nodata holes, written strip by strip."""
    import rasterio

    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32", "crs": "EPSG:4326",
        "transform": transform, "nodata": -9999.0, "tiled": True, "blockxsize": 512, "blockysize": 512,
        "compress": "deflate", "predictor": 3, "zlevel": 1, "bigtiff": "yes",
    }
    cols = np.arange(width)
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, height, 512):
            rows = np.arange(r0, min(r0 + 512, height))[:, None]
            values = mean + 30 * np.sin(cols / 700.0) * np.cos(rows / 500.0) + rng.normal(0, 5, (len(rows), width))
            values = np.round(values, 2).astype(np.float32)
            values[(rows % 3000 < 40) & (cols % 5000 < 60)] = -9999.0
            dst.write(values, 1, window=rasterio.windows.Window(0, r0, width, len(rows)))
    return path


def _vrt(path: Path, source: Path, *, offset: float, scale: float) -> None:
    import rasterio

    with rasterio.open(source) as ds:
        w, h, gt = ds.width, ds.height, ds.transform.to_gdal()
    path.parent.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(source, path.parent)
    path.write_text(
        f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>EPSG:4326</SRS>'
        f"<GeoTransform>{', '.join(repr(v) for v in gt)}</GeoTransform>"
        '<VRTRasterBand dataType="Float32" band="1"><NoDataValue>-9999</NoDataValue><ComplexSource>'
        f'<SourceFilename relativeToVRT="1">{rel}</SourceFilename><SourceBand>1</SourceBand>'
        f"<ScaleOffset>{offset}</ScaleOffset><ScaleRatio>{scale}</ScaleRatio><NODATA>-9999</NODATA>"
        "</ComplexSource></VRTRasterBand></VRTDataset>\n"
    )


# -------------------------------------------------------------------- the methods


def _mines(manifest_path: str):
    from nepkit.sources import bri_mines, load_manifest

    manifest = load_manifest(manifest_path)
    mines, mining, _ = bri_mines(manifest, min_area_km2=1.0)
    return manifest, mines, mining


def run_nepkit(manifest_path: str, workers: int) -> dict:
    from nepkit.extract import run_extraction
    from nepkit.params import RunParams

    params = RunParams(sources=manifest_path, region="all", n_workers=workers)
    with tempfile.TemporaryDirectory() as cache:
        ex = run_extraction(params, cache_dir=cache, progress=False)
    steps = ex.report.set_index("step")["count"]
    extracted = int(steps[["mines", "antimeridian", "ring_pixels", "nep_baseline"]].sum())
    return {"mines": extracted, "years": len(params.year_range), "tasks": ex.stats["tasks"]}


def _floor_task(args: tuple) -> int:
    """Read every window of one task: NEP years on mines and rings, covariates on mines.

    Band by band across the task's windows, as nepkit reads, so that blocks
    shared by neighbouring windows are decoded once: the fastest plain read.
    """
    import rasterio

    from nepkit.extract import GDAL_CACHE_BYTES, _to_crs, _window
    from nepkit.rings import ring_envelopes
    from nepkit.sources import DerivedSpec

    manifest, mines, outer_km, years = args
    specs = [(manifest.nep, years, [ring_envelopes(g, outer_km) for g in mines])]
    specs += [(s, s.years_in(years), mines) for s in manifest.covariates.values() if not isinstance(s, DerivedSpec)]
    pixels = 0
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        for spec, keys, shapes in specs:
            windows = [_window(spec.grid, _to_crs(g, spec.grid.crs)) for g in shapes]
            for key in keys:
                for ref in spec.bands[key]:
                    if ref.path not in _OPEN:  # kept open across tasks, as nepkit does
                        _OPEN[ref.path] = rasterio.open(ref.path)
                    for window in windows:
                        pixels += _OPEN[ref.path].read(ref.band, window=window).size
    return pixels


_OPEN: dict = {}


def run_floor(manifest_path: str, workers: int) -> dict:
    from multiprocessing import get_context

    from nepkit.extract import plan_tasks

    manifest, mines, mining = _mines(manifest_path)
    tasks = sorted(plan_tasks(mines, mining, manifest.nep.grid, outer_km=5.0), key=lambda t: t.cost, reverse=True)
    years = list(range(manifest.years[0], manifest.years[1] + 1))
    jobs = [(manifest, [t.mines[w] for w in t.windows], 5.0, years) for t in tasks]
    with get_context("spawn").Pool(workers) as pool:  # nepkit's tasks, in nepkit's order
        pixels = sum(pool.imap_unordered(_floor_task, jobs, chunksize=1))
    return {"mines": len(mines), "years": len(years), "pixels_read": pixels}


def _ee_part(args: tuple) -> int:
    import geopandas as gpd
    from exactextract import exact_extract

    nep_files, cov_files, mines, rings = args
    frame = gpd.GeoDataFrame(geometry=list(mines), crs="EPSG:4326")
    exact_extract(nep_files, frame, ["mean", "count"], output="pandas")
    exact_extract(nep_files, gpd.GeoDataFrame(geometry=list(rings), crs="EPSG:4326"), ["mean", "count"], output="pandas")
    exact_extract(cov_files, frame, ["mean"], output="pandas")
    return len(mines)


def run_exactextract(manifest_path: str, workers: int) -> dict:
    from multiprocessing import get_context

    from nepkit.rings import reference_rings
    from nepkit.sources import DerivedSpec

    manifest, mines, mining = _mines(manifest_path)
    mines = mines.sort_values("mine_id")  # the layer's order
    rings = reference_rings(mines.geometry.values, mining.geometry.values, inner_km=1, outer_km=5)
    years = range(manifest.years[0], manifest.years[1] + 1)
    nep_files = [manifest.nep.bands[y][0].path for y in years]
    cov_files = sorted(
        {ref.path for s in manifest.covariates.values() if not isinstance(s, DerivedSpec) for k in s.years_in(list(years)) for ref in s.bands[k]}
    )
    parts = np.array_split(np.arange(len(mines)), workers)
    geoms = mines.geometry.values
    start = time.perf_counter()
    with get_context("spawn").Pool(workers) as pool:
        pool.map(_ee_part, [(nep_files, cov_files, geoms[p], rings[p]) for p in parts])
    return {"mines": len(mines), "years": len(years), "seconds_timed": time.perf_counter() - start, "note": "rings precomputed, not timed"}


def run_rasterstats(manifest_path: str, workers: int, sample: int) -> dict:
    from rasterstats import zonal_stats

    from nepkit.rings import reference_rings
    from nepkit.sources import DerivedSpec

    manifest, mines, mining = _mines(manifest_path)
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(mines), size=min(sample, len(mines)), replace=False))
    geoms = mines.geometry.values[pick]
    rings = reference_rings(geoms, mining.geometry.values, inner_km=1, outer_km=5)
    years = list(range(manifest.years[0], manifest.years[1] + 1))
    covs = [ref.path for s in manifest.covariates.values() if not isinstance(s, DerivedSpec) for k in s.years_in(years) for ref in s.bands[k]]
    start = time.perf_counter()
    for y in years:
        zonal_stats(list(geoms), manifest.nep.bands[y][0].path, stats=["mean", "count"])
        zonal_stats(list(rings), manifest.nep.bands[y][0].path, stats=["mean", "count"])
    for path in covs:
        zonal_stats(list(geoms), path, stats=["mean"])
    seconds = time.perf_counter() - start
    extrapolated = seconds * len(mines) / len(pick) / workers
    return {"mines": len(mines), "years": len(years), "sample": len(pick), "seconds_sample": seconds,
            "seconds_extrapolated": extrapolated, "note": f"extrapolated from {len(pick)} mines, 1 process, perfect scaling to {workers}"}


# -------------------------------------------------------------------- measurement


def _sample_tree(proc, cpu: dict[int, float]) -> int:
    """Resident memory of ``proc`` and its descendants, bytes; records each one's CPU seconds in ``cpu``."""
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
            times = p.cpu_times()
            cpu[p.pid] = times.user + times.system
        except psutil.Error:
            pass
    return total


def warm_page_cache(manifest: Path) -> None:
    """Read every input file once, so that no method pays (or is spared) the disk reads of another."""
    from nepkit.sources import _expand_vrts, load_manifest

    m = load_manifest(manifest)
    for path in sorted(_expand_vrts({str(m.mines.path)} | {f for spec in m.rasters() for f in spec.files})):
        with open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass


def measure(method: str, manifest: Path, workers: int, sample: int) -> dict:
    """Run one method in a fresh process: wall time, CPU time and peak memory of its whole process tree."""
    import psutil

    warm_page_cache(manifest)

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    cmd = [sys.executable, __file__, "--child", method, "--manifest", str(manifest), "--workers", str(workers),
           "--sample", str(sample), "--json", str(out)]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT)
    proc, peak, cpu, stop = psutil.Process(child.pid), [0], {}, threading.Event()

    def sample_tree() -> None:
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], _sample_tree(proc, cpu))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample_tree, daemon=True)
    sampler.start()
    code = child.wait()
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    if code:
        raise SystemExit(f"{method} failed (exit {code})")
    result = json.loads(out.read_text())
    out.unlink()
    seconds = result.get("seconds_extrapolated", result.get("seconds_timed", wall))
    result |= {"method": method, "wall_s": wall, "seconds": seconds, "peak_mb": peak[0] / 2**20,
               "cpu_s": sum(cpu.values()), "load": load,
               "mine_years_per_s": result["mines"] * result["years"] / seconds}
    return result


def report(world: str, rows: list[dict]) -> None:
    by = {r["method"]: r for r in rows}
    print(f"\n== {world} ==")
    print(f"{'method':<13}{'wall s':>8}{'seconds':>9}{'CPU s':>8}{'peak MB':>9}{'mine-years/s':>14}{'load':>6}  note")
    for r in rows:
        print(
            f"{r['method']:<13}{r['wall_s']:>8.1f}{r['seconds']:>9.1f}{r['cpu_s']:>8.1f}{r['peak_mb']:>9.0f}"
            f"{r['mine_years_per_s']:>14.0f}{r['load']:>6.1f}  {r.get('note', '')}"
        )
    print("(seconds: the time throughput is computed on; wall s and CPU s: the whole process tree,\n"
          " start-up included; load: the machine's 1-minute load average when the method started)")
    if "nepkit" not in by:
        return
    nk = by["nepkit"]
    print(f"mines {nk['mines']}, years {nk['years']}, tasks {nk.get('tasks')}")
    if "floor" in by:
        print(f"nepkit / floor time:          {nk['seconds'] / by['floor']['seconds']:.2f}  (target <= 1.3)"
              f"  [CPU time: {nk['cpu_s'] / by['floor']['cpu_s']:.2f}]")
    if "exactextract" in by:
        print(f"nepkit / exactextract time:   {nk['seconds'] / by['exactextract']['seconds']:.2f}  (target <= 1)")
    if "rasterstats" in by:
        print(f"nepkit / rasterstats speed:   {nk['mine_years_per_s'] / by['rasterstats']['mine_years_per_s']:.1f}x  (target >= 15)")


def _child(args: argparse.Namespace) -> None:
    runners = {
        "nepkit": lambda: run_nepkit(args.manifest, args.workers),
        "floor": lambda: run_floor(args.manifest, args.workers),
        "exactextract": lambda: run_exactextract(args.manifest, args.workers),
        "rasterstats": lambda: run_rasterstats(args.manifest, args.workers, args.sample),
    }
    Path(args.json).write_text(json.dumps(runners[args.child]()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", default="paper,large", help="comma-separated: paper, small, large, or manifest paths")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=40, help="mines of the rasterstats sample")
    parser.add_argument("--seed", type=int, default=42, help="seed of the synthetic world")
    parser.add_argument("--large-size", default="10000x5000,40000x20000",
                        help="NEP raster sizes of the large world, WxH px, comma-separated (same mines)")
    parser.add_argument("--data", default=str(ROOT / "runs" / ".bench"), help="folder of the large world")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    memory = {}
    for world, manifest in _worlds(args):
        rows = [measure(m, manifest, args.workers, args.sample) for m in args.methods.split(",")]
        report(f"{world} ({manifest})", rows)
        memory.update((world, r["peak_mb"]) for r in rows if r["method"] == "nepkit")
    if len(memory) > 1:
        print("\nnepkit peak memory by world (flat when the raster grows): "
              + ", ".join(f"{w} {mb:.0f} MB" for w, mb in memory.items()))


def _worlds(args: argparse.Namespace) -> Iterator[tuple[str, Path]]:
    """(label, manifest) of each world asked for; the large world at each of its sizes."""
    for world in args.worlds.split(","):
        if world in ("paper", "small"):
            from nepkit.synth import ensure_world

            path = Path(ensure_world(preset=world, seed=args.seed))
            yield world, path / "sources.yml" if path.is_dir() else path
        elif world == "large":
            for size in args.large_size.split(","):
                width, height = (int(v) for v in size.split("x"))
                t = time.perf_counter()
                manifest = make_large_world(Path(args.data) / f"large-{width}x{height}", width=width, height=height)
                print(f"large world {width}x{height}: {manifest} ({time.perf_counter() - t:.0f} s to prepare)")
                yield f"large {size}", manifest
        else:
            yield world, Path(world)


if __name__ == "__main__":
    main()
