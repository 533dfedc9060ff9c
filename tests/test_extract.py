"""Coverage-weighted extraction: hand-computed pixels, exactextract, CRS, masks, cache, Dask."""

from __future__ import annotations

import contextlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
import xarray as xr
import yaml
from _rasters import RES, SIZE, X0, Y0, YEARS, nep_values, pixel_box, tiny_world, write_raster
from exactextract import exact_extract
from numpy.testing import assert_allclose
from rasterio.warp import Resampling, calculate_default_transform, reproject

from nepkit import extract
from nepkit.artifacts import INDICATORS
from nepkit.extract import Chunking, curvature, run_extraction, write_artifacts
from nepkit.params import RunParams
from nepkit.rings import reference_rings
from nepkit.sources import SourceError, load_manifest, read_mines

SYNC = RunParams(region="CHN", years=list(YEARS), scheduler="synchronous", min_ring_pixels=10)


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return tiny_world(tmp_path / "world")


def run(manifest: Path, params: RunParams = SYNC, **kwargs: object) -> extract.Extraction:
    return run_extraction(params, manifest=load_manifest(manifest), progress=False, **kwargs)


def ee_mean(raster: Path | str, geoms: list[shapely.Geometry], crs: str = "EPSG:4326") -> np.ndarray:
    """An independent, plain exactextract call on a file."""
    frame = gpd.GeoDataFrame(geometry=list(geoms), crs=crs)
    return exact_extract(str(raster), frame, "mean", output="pandas")["mean"].to_numpy()


def rings_of(manifest: Path, params: RunParams = SYNC) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    mines, mining, _ = read_mines(load_manifest(manifest), params)
    rings = reference_rings(
        mines.geometry.values, mining.geometry.values, inner_km=params.ring_inner_km, outer_km=params.ring_outer_km
    )
    return mines, rings


# ---------------------------------------------------------------- the numbers


def test_hand_computed_partial_pixels(world: Path) -> None:
    """Mine 2 covers 1/4, 1/4, 3/8 and 3/8 of four pixels (cols 30-31, rows 30-31)."""
    ex = run(world)
    row = ex.nep_panel.query("mine_id == 2 and year == 2000").iloc[0]
    values = np.array([50 + 30 + 15, 50 + 31 + 15, 50 + 30 + 15.5, 50 + 31 + 15.5])  # 50 + col + 0.5 row
    fractions = np.array([0.25, 0.25, 0.375, 0.375])
    assert_allclose(row["nep_mine"], (fractions * values).sum() / fractions.sum(), rtol=1e-12)  # 95.8
    assert row["cov_mine"] == pytest.approx(1.0)
    # centre-of-pixel sampling would give the plain mean of the pixels whose centre is inside: none
    assert pixel_box(30.5, 30.5, 31.5, 31.75).contains(shapely.Point(X0 + 30.5 * RES, Y0 - 30.5 * RES)) is False


def test_nodata_is_ignored_and_valid_coverage_recorded(tmp_path: Path) -> None:
    nep = {y: nep_values(y) for y in range(YEARS[0], YEARS[1] + 1)}
    nep[2001][31, 31] = -9999.0  # one of the four pixels of mine 2 (3/8 of it covered)
    nep[2001][30, 30] = np.nan
    world = tiny_world(tmp_path / "w", nep=nep)
    row = run(world).nep_panel.query("mine_id == 2 and year == 2001").iloc[0]
    values = np.array([50 + 31 + 15, 50 + 30 + 15.5]) + 10
    fractions = np.array([0.25, 0.375])
    assert_allclose(row["nep_mine"], (fractions * values).sum() / fractions.sum(), rtol=1e-12)
    assert_allclose(row["cov_mine"], (0.25 + 0.375) / 1.25, rtol=1e-9)


def test_matches_independent_exactextract_on_the_files(world: Path) -> None:
    ex = run(world)
    mines, rings = rings_of(world)
    for year in range(YEARS[0], YEARS[1] + 1):
        panel = ex.nep_panel[ex.nep_panel["year"] == year].set_index("mine_id").loc[mines["mine_id"]]
        raster = world.parent / "nep" / f"nep_{year}.tif"
        assert_allclose(panel["nep_mine"], ee_mean(raster, mines.geometry), rtol=1e-9)
        assert_allclose(panel["nep_ref"], ee_mean(raster, rings), rtol=1e-9)
    soc = ex.covariates.set_index("mine_id").loc[mines["mine_id"], "elevation"]
    assert_allclose(soc, ee_mean(world.parent / "covariates" / "elevation.tif", mines.geometry), rtol=1e-9)


def test_tables_follow_the_contract(world: Path, tmp_path: Path) -> None:
    ex = run(world)
    assert ex.mines.columns.tolist() == ["mine_id", "iso3", "country", "continent", "subregion", "area_km2", "geometry"]
    assert ex.nep_panel.columns.tolist() == ["mine_id", "year", "nep_mine", "nep_ref", "cov_mine", "cov_ref"]
    assert ex.covariates.columns.tolist() == ["mine_id", *INDICATORS]
    assert ex.nep_panel[["mine_id", "year"]].to_numpy().tolist() == [[m, y] for m in (1, 2, 3) for y in (2000, 2001, 2002)]
    assert_allclose(ex.covariates["area_km2"], ex.mines["area_km2"])
    assert_allclose(ex.covariates["soc"], 6.0)  # sixth covariate raster is constant 6
    paths = write_artifacts(ex, tmp_path / "run")
    assert gpd.read_parquet(paths["mines"]).crs.to_epsg() == 4326
    pd.testing.assert_frame_equal(pd.read_parquet(paths["nep_panel"]), ex.nep_panel)
    assert pd.read_csv(paths["report"])["step"].tolist()[-1] == "mines"


def test_curvature_of_the_dem(world: Path) -> None:
    z = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    assert curvature(z, 10.0, 10.0)[1, 1] == pytest.approx(-2 * (0.01 + 0.01) * 100)
    assert np.isnan(curvature(z, 10.0, 10.0)[0, 0])
    # a paraboloid z = (x^2 + y^2) / 200 m has Laplacian 2/100: curvature -2 (D + E) * 100 = -2
    y, x = np.mgrid[-5:6, -5:6] * 30.0
    assert_allclose(curvature((x**2 + y**2) / 200, 30.0, 30.0)[1:-1, 1:-1], -2.0, rtol=1e-12)
    # derived from the manifest's DEM: compare with exactextract on the curvature raster computed by hand
    ex = run(world)
    with rasterio.open(world.parent / "covariates" / "elevation.tif") as ds:
        dem = ds.read(1).astype(float)
    from nepkit.extract import _cell_sizes_m  # the metric cell sizes of each row

    grid = load_manifest(world).covariates["elevation"].grid
    dx, dy = _cell_sizes_m(grid, rasterio.windows.Window(0, 0, SIZE, SIZE))
    write_raster(world.parent / "curv.tif", curvature(dem, dx, dy))
    mines = ex.mines
    assert_allclose(ex.covariates["curvature"], ee_mean(world.parent / "curv.tif", mines.geometry), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------- other inputs


def test_raster_in_another_crs_is_read_with_reprojected_polygons(world: Path) -> None:
    folder = world.parent
    for year in range(YEARS[0], YEARS[1] + 1):
        src = folder / "nep" / f"nep_{year}.tif"
        with rasterio.open(src) as ds:
            transform, width, height = calculate_default_transform(ds.crs, "EPSG:3857", ds.width, ds.height, *ds.bounds)
            out = np.zeros((height, width), np.float32)
            reproject(ds.read(1), out, src_transform=ds.transform, src_crs=ds.crs, dst_transform=transform,
                      dst_crs="EPSG:3857", resampling=Resampling.bilinear, dst_nodata=-9999.0)
        write_raster(folder / "nep3857" / f"nep_{year}.tif", out, transform=transform, crs="EPSG:3857", nodata=-9999.0)
    content = yaml.safe_load(world.read_text())
    content["nep"] = {"path": "nep3857/nep_{year}.tif"}
    world.write_text(yaml.safe_dump(content))
    ex = run(world, SYNC.replace(min_ring_pixels=1))
    mines, rings = rings_of(world)
    panel = ex.nep_panel[ex.nep_panel["year"] == 2002].set_index("mine_id").loc[mines["mine_id"]]
    raster = folder / "nep3857" / "nep_2002.tif"
    merc = gpd.GeoSeries(list(mines.geometry), crs=4326).to_crs(3857)
    assert_allclose(panel["nep_mine"], ee_mean(raster, merc, "EPSG:3857"), rtol=1e-9)
    assert_allclose(panel["nep_ref"], ee_mean(raster, gpd.GeoSeries(list(rings), crs=4326).to_crs(3857), "EPSG:3857"), rtol=1e-9)


def test_netcdf_time_series_summed_to_years(world: Path) -> None:
    """Monthly NEP in one NetCDF, summed per year, gives the annual GeoTIFF's numbers."""
    folder = world.parent
    months = pd.date_range("2000-01-01", "2002-12-01", freq="MS")
    lat = Y0 - RES / 2 - RES * np.arange(SIZE)
    lon = X0 + RES / 2 + RES * np.arange(SIZE)
    data = np.stack([nep_values(t.year).astype(np.float64) / 12 for t in months])
    ds = xr.Dataset({"NEP": (("time", "lat", "lon"), data)}, coords={"time": months, "lat": lat, "lon": lon})
    ds.to_netcdf(folder / "nep.nc")
    expected = run(world).nep_panel
    content = yaml.safe_load(world.read_text())
    content["nep"] = {"path": "nep.nc", "variable": "NEP", "aggregate": "sum", "crs": "EPSG:4326"}
    world.write_text(yaml.safe_dump(content))
    got = run(world).nep_panel
    assert_allclose(got[["nep_mine", "nep_ref"]], expected[["nep_mine", "nep_ref"]], rtol=1e-6)


def test_nodata_override_scale_and_per_area(world: Path) -> None:
    folder = world.parent
    rows = np.arange(SIZE)
    top, bottom = Y0 - RES * rows, Y0 - RES * (rows + 1)
    import pyproj

    geod = pyproj.Geod(ellps="WGS84")
    cell_km2 = np.array([abs(geod.polygon_area_perimeter([0, RES, RES, 0], [t, t, b, b])[0]) / 1e6 for t, b in zip(top, bottom, strict=True)])
    people = np.repeat((250.0 * cell_km2)[:, None], SIZE, axis=1)  # 250 people per km2 everywhere
    people[:14, :40] = 1e30  # an "ocean" flagged by a fill value the file does not declare
    write_raster(folder / "covariates" / "pop_density.tif", people.astype(np.float32))
    content = yaml.safe_load(world.read_text())
    content["covariates"]["pop_density"] = {"path": "covariates/pop_density.tif", "per_area": True, "nodata": 1e30}
    content["covariates"]["gdp"] = {"path": "covariates/gdp.tif", "scale": 1e-3, "offset": 1.0}
    world.write_text(yaml.safe_dump(content))
    ex = run(world)
    cov = ex.covariates.set_index("mine_id")
    assert np.isnan(cov.loc[1, "pop_density"])  # mine 1 (rows 10-12, cols 10-12): all fill value
    assert_allclose(cov.loc[[2, 3], "pop_density"], 250.0, rtol=1e-6)
    assert_allclose(cov["gdp"], 10.0 * 1e-3 + 1.0)
    report = ex.report.set_index("step")
    assert report.loc["nan_pop_density", "count"] == 1 and not report.loc["nan_pop_density", "excluded"]


def test_per_year_covariate_is_averaged_over_the_run_years(world: Path) -> None:
    folder = world.parent
    for year in range(YEARS[0], YEARS[1] + 1):
        write_raster(folder / "covariates" / f"spei_{year}.tif", np.full((SIZE, SIZE), float(year - 2000), np.float32))
    content = yaml.safe_load(world.read_text())
    content["covariates"]["spei"] = {"path": "covariates/spei_{year}.tif"}
    world.write_text(yaml.safe_dump(content))
    assert_allclose(run(world).covariates["spei"], 1.0)  # mean of 0, 1, 2
    assert_allclose(run(world, SYNC.replace(years=[2001, 2002])).covariates["spei"], 1.5)


def test_per_year_netcdf_of_8_day_steps(world: Path) -> None:
    """GPP as one NetCDF of 8-day mean daily rates per year: annual mean rate times 365, averaged."""
    folder = world.parent
    lat = Y0 - RES / 2 - RES * np.arange(SIZE)
    lon = X0 + RES / 2 + RES * np.arange(SIZE)
    for year in range(YEARS[0], YEARS[1] + 1):
        steps = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="8D")
        rate = np.arange(len(steps), dtype=np.float64) / 10 + (year - 2000)  # g C m-2 d-1
        data = np.broadcast_to(rate[:, None, None], (len(steps), SIZE, SIZE)).copy()
        data[3] = np.nan  # a missing step: the mean skips it
        ds = xr.Dataset({"GPP": (("time", "lat", "lon"), data)}, coords={"time": steps, "lat": lat, "lon": lon})
        ds.to_netcdf(folder / f"gpp_{year}.nc")
    content = yaml.safe_load(world.read_text())
    content["covariates"]["gpp"] = {"path": "gpp_{year}.nc", "variable": "GPP", "crs": "EPSG:4326", "scale": 365}
    world.write_text(yaml.safe_dump(content))
    rates = np.delete(np.arange(46) / 10, 3)
    expected = np.mean([365 * (rates + k).mean() for k in range(3)])
    assert_allclose(run(world).covariates["gpp"], expected, rtol=1e-12)


# ------------------------------------------------------------------- exclusions


def test_ring_without_enough_valid_pixels_excludes_the_mine(tmp_path: Path) -> None:
    nep = {y: nep_values(y) for y in range(YEARS[0], YEARS[1] + 1)}
    nep[2002][:, 38:] = -9999.0  # mine 3 (cols 45-47) and all its ring: no data in 2002
    world = tiny_world(tmp_path / "w", nep=nep)
    ex = run(world)
    assert ex.mines["mine_id"].tolist() == [1, 2]
    report = ex.report.set_index("step")
    assert report.loc["ring_pixels", "count"] == 1 and report.loc["ring_pixels", "excluded"]
    assert report.loc["mines", "count"] == 2


def test_mine_without_nep_in_the_baseline_year_is_excluded(tmp_path: Path) -> None:
    nep = {y: nep_values(y) for y in range(YEARS[0], YEARS[1] + 1)}
    nep[2000][9:13, 9:13] = np.nan  # mine 1 only (its ring keeps plenty of pixels)
    ex = run(tiny_world(tmp_path / "w", nep=nep))
    assert ex.mines["mine_id"].tolist() == [2, 3]
    assert ex.report.set_index("step").loc["nep_baseline", "count"] == 1


def test_landcover_mask_removes_classes_from_rings_only(world: Path) -> None:
    folder = world.parent
    lc = np.full((SIZE, SIZE), 10, np.uint8)
    lc[:, :11] = 50  # "built-up" west of column 11: half of mine 1 and part of its ring
    write_raster(folder / "landcover.tif", lc, nodata=0)
    plain = run(world)
    content = yaml.safe_load(world.read_text())
    content["landcover"] = {"path": "landcover.tif", "exclude": [50, 80]}
    world.write_text(yaml.safe_dump(content))
    masked = run(world)
    pd.testing.assert_series_equal(masked.nep_panel["nep_mine"], plain.nep_panel["nep_mine"])
    mines, rings = rings_of(world)
    values = nep_values(2000).astype(float)
    values[lc == 50] = np.nan
    write_raster(folder / "masked.tif", values)
    got = masked.nep_panel.query("year == 2000").set_index("mine_id").loc[mines["mine_id"]]
    assert_allclose(got["nep_ref"], ee_mean(folder / "masked.tif", rings), rtol=1e-9)
    assert got.loc[1, "cov_ref"] < 0.9 and got.loc[3, "cov_ref"] == pytest.approx(1.0)


def test_mines_across_the_antimeridian_are_excluded_and_counted(tmp_path: Path) -> None:
    from _rasters import default_mines

    mines = default_mines()
    wrap = shapely.MultiPolygon([shapely.box(179.99, 60.0, 180.0, 60.02), shapely.box(-180.0, 60.0, -179.98, 60.02)])
    extra = gpd.GeoDataFrame({"ISO3_CODE": ["RUS"], "COUNTRY_NAME": ["Russia"], "AREA": [2.0]}, geometry=[wrap], crs=4326)
    world = tiny_world(tmp_path / "w", mines=pd.concat([mines, extra], ignore_index=True))
    ex = run(world, SYNC.replace(region="all"))
    assert ex.report.set_index("step").loc["antimeridian", "count"] == 1
    assert ex.mines["mine_id"].tolist() == [1, 2, 3]


def test_empty_region_after_all_exclusions(world: Path) -> None:
    with pytest.raises(SourceError, match="no mine of region 'CHN' has a usable reference ring"):
        run(world, SYNC.replace(min_ring_pixels=10_000))


# ---------------------------------------------------------- chunking and the cache


def test_results_do_not_depend_on_chunking(world: Path, tmp_path: Path) -> None:
    one = run(world, cache_dir=tmp_path / "a")
    many = run(world, cache_dir=tmp_path / "b", chunking=Chunking(max_window_px=1, join_px=0, task_mines=1))
    assert many.stats["tasks"] == 3 and one.stats["tasks"] == 1
    pd.testing.assert_frame_equal(one.nep_panel, many.nep_panel, check_exact=True)
    pd.testing.assert_frame_equal(one.covariates, many.covariates, check_exact=True)


def test_cache_is_reused_and_an_interrupted_run_resumes(world: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    chunking = Chunking(max_window_px=1, join_px=0, task_mines=1)
    first = run(world, cache_dir=cache, chunking=chunking)
    assert first.stats["tasks_computed"] == 3
    folder = Path(first.stats["cache"])
    files = sorted(folder.glob("task-*.parquet"))
    assert len(files) == 3
    # an interruption: one task never finished (only a stray temporary file), one file damaged
    files[0].rename(folder / f".{files[0].name}.12345.tmp")
    files[1].write_bytes(b"PAR1 truncated")
    again = run(world, cache_dir=cache, chunking=chunking)
    assert again.stats["tasks_computed"] == 2 and again.stats["tasks_reused"] == 1
    pd.testing.assert_frame_equal(first.nep_panel, again.nep_panel, check_exact=True)
    assert run(world, cache_dir=cache, chunking=chunking).stats["tasks_computed"] == 0


def test_cache_key_follows_inputs_and_ring_parameters(world: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    base = run(world, cache_dir=cache)
    assert run(world, SYNC.replace(ring_outer_km=4.0), cache_dir=cache).stats["cache"] != base.stats["cache"]
    assert run(world, SYNC.replace(min_ring_pixels=5), cache_dir=cache).stats["tasks_computed"] == 0
    write_raster(world.parent / "nep" / "nep_2001.tif", nep_values(2001) + 1, nodata=-9999.0)
    changed = run(world, cache_dir=cache)
    assert changed.stats["cache"] != base.stats["cache"]
    assert_allclose(changed.nep_panel.query("year == 2001")["nep_mine"], base.nep_panel.query("year == 2001")["nep_mine"] + 1)


def test_default_cache_is_beside_the_manifest(world: Path) -> None:
    assert Path(run(world).stats["cache"]).parent == world.parent / ".nepkit-cache"


def test_region_runs_share_the_cache(world: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    chunking = Chunking(max_window_px=1, join_px=0, task_mines=1)
    part = run(world, SYNC.replace(region="Eastern Asia"), cache_dir=cache, chunking=chunking)
    assert part.stats["tasks_computed"] == 3
    whole = run(world, SYNC.replace(region="all"), cache_dir=cache, chunking=chunking)
    assert whole.stats["tasks_computed"] == 0
    pd.testing.assert_frame_equal(part.nep_panel, whole.nep_panel)


# ------------------------------------------------------------------------ Dask


@pytest.fixture(scope="module")
def cluster():
    """One local Dask cluster for this module (two single-threaded worker processes)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def test_dask_scheduler_address_gives_the_same_numbers(world: Path, tmp_path: Path, cluster) -> None:
    chunking = Chunking(max_window_px=1, join_px=0, task_mines=1)
    local = run(world, cache_dir=tmp_path / "a", chunking=chunking)
    remote = run(world, SYNC.replace(scheduler=cluster.scheduler_address), cache_dir=tmp_path / "b", chunking=chunking)
    pd.testing.assert_frame_equal(local.nep_panel, remote.nep_panel, check_exact=True)
    pd.testing.assert_frame_equal(local.covariates, remote.covariates, check_exact=True)


def test_default_path_starts_a_local_cluster(world: Path, tmp_path: Path, cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    import distributed

    calls = []

    def fake_local_cluster(**kwargs: object) -> contextlib.AbstractContextManager:
        calls.append(kwargs)
        return contextlib.nullcontext(cluster)  # the module's cluster stands in (one cluster per module)

    monkeypatch.setattr(distributed, "LocalCluster", fake_local_cluster)
    ex = run(world, SYNC.replace(scheduler=None, n_workers=2), cache_dir=tmp_path / "c")
    assert calls == [{"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None}]
    assert_allclose(ex.nep_panel["nep_mine"], run(world, cache_dir=tmp_path / "d").nep_panel["nep_mine"], rtol=0)


# --------------------------------------------------------------- the small world


@pytest.fixture(scope="module")
def small(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, extract.Extraction]:
    """The small synthetic world's extraction (in-process), read through its sources.yml."""
    params = RunParams(sources=str(small_world), region="all", scheduler="synchronous")
    return small_world, run_extraction(params, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)


def test_small_world_means_match_independent_exactextract(small: tuple[Path, extract.Extraction]) -> None:
    manifest, ex = small
    params = RunParams(sources=str(manifest), region="all")
    mines, rings = rings_of(manifest, params)
    kept = mines["mine_id"].isin(ex.mines["mine_id"]).to_numpy()
    mines, rings = mines[kept], rings[kept]
    folder = manifest.parent
    for year in (2000, 2010, 2020):
        panel = ex.nep_panel[ex.nep_panel["year"] == year].set_index("mine_id").loc[mines["mine_id"]]
        raster = folder / "nep" / f"nep_{year}.vrt"
        assert_allclose(panel["nep_mine"], ee_mean(raster, mines.geometry), rtol=1e-9)
        assert_allclose(panel["nep_ref"], ee_mean(raster, rings), rtol=1e-9)
    cov = ex.covariates.set_index("mine_id").loc[mines["mine_id"]]
    assert_allclose(cov["elevation"], ee_mean(folder / "covariates" / "elevation.vrt", mines.geometry), rtol=1e-9)
    spei = np.nanmean([ee_mean(folder / "covariates" / f"spei_{y}.vrt", mines.geometry) for y in range(2000, 2021)], axis=0)
    assert_allclose(cov["spei"], spei, rtol=1e-9)


def test_small_world_exclusions_are_counted(small: tuple[Path, extract.Extraction]) -> None:
    import pyogrio
    import pyproj

    from nepkit.regions import bri_countries

    manifest, ex = small
    layer = pyogrio.read_dataframe(manifest.parent / "mines.gpkg", layer="mining_polygons")
    bri = layer[layer["ISO3_CODE"].isin(bri_countries()["iso3"])]
    geod = pyproj.Geod(ellps="WGS84")
    areas = np.array([abs(geod.geometry_area_perimeter(g.buffer(0) if not g.is_valid else g)[0]) / 1e6 for g in bri.geometry])
    steps = ex.report.set_index("step")["count"]
    assert steps["read"] == len(layer)
    assert steps["repaired"] == (~layer.geometry.is_valid).sum() == 2
    assert steps["not_bri"] == len(layer) - len(bri) > 0
    assert steps["area"] == (areas < 1.0).sum() > 0
    assert steps["mines"] == len(ex.mines) == len(ex.covariates) == len(ex.nep_panel) // 21
    assert ex.mines["iso3"].isin(bri_countries()["iso3"]).all() and (ex.mines["area_km2"] >= 1).all()


def test_small_world_rings_avoid_all_mining_land(small: tuple[Path, extract.Extraction]) -> None:
    manifest, _ = small
    mines, rings = rings_of(manifest, RunParams(sources=str(manifest), region="all"))
    _, mining, _ = read_mines(load_manifest(manifest), RunParams(sources=str(manifest), region="all"))
    land = shapely.union_all(mining.geometry.values)
    overlap = shapely.area(shapely.intersection(rings, land))
    # only slivers of the projection round trip remain: below a thousandth of a 500 m pixel
    assert overlap.max() < 1e-3 / 240**2


def test_small_world_recovers_the_injected_mining_effect(small: tuple[Path, extract.Extraction]) -> None:
    """The difference in differences of mine and ring NEP is the truth's loss, up to noise."""
    manifest, ex = small
    p = ex.nep_panel
    base = p[p["year"] == 2000].set_index("mine_id")[["nep_mine", "nep_ref"]]
    p = p.join(base, on="mine_id", rsuffix="_base")
    p["loss"] = (p["nep_ref"] - p["nep_ref_base"]) - (p["nep_mine"] - p["nep_mine_base"])
    truth = pd.read_parquet(manifest.parent / "truth.parquet")
    both = p.merge(truth, on=["mine_id", "year"]).query("year > 2000").dropna(subset=["loss"])
    assert np.corrcoef(both["loss"], both["true_loss"])[0, 1] > 0.98
    assert (both["loss"] - both["true_loss"]).abs().median() < 15.0  # g C m-2 a-1


def test_small_world_on_dask_equals_in_process(small: tuple[Path, extract.Extraction], tmp_path: Path, cluster) -> None:
    manifest, ex = small
    params = RunParams(sources=str(manifest), region="all", scheduler=cluster.scheduler_address)
    chunked = Chunking(task_mines=60)
    dask_run = run_extraction(params, cache_dir=tmp_path, progress=False, chunking=chunked)
    assert dask_run.stats["tasks"] > 2
    pd.testing.assert_frame_equal(dask_run.nep_panel, ex.nep_panel, check_exact=True)
    pd.testing.assert_frame_equal(dask_run.covariates, ex.covariates, check_exact=True)
    pd.testing.assert_frame_equal(dask_run.mines.drop(columns="geometry"), ex.mines.drop(columns="geometry"))
