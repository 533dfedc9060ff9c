"""Tests of the synthetic world (nepkit.synth)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
import yaml
from numpy.testing import assert_allclose
from pyproj import Geod
from rasterio.features import geometry_mask
from rasterio.windows import from_bounds

from nepkit import regions
from nepkit.artifacts import INDICATORS
from nepkit.synth import PRESETS, SynthError, constants_table, ensure_world, generate, world_is_current
from nepkit.synth import build as synth_build
from nepkit.synth import constants as C
from nepkit.synth.districts import DISTRICTS, district
from nepkit.synth.effects import indicators_at
from nepkit.synth.fields import World
from nepkit.synth.lattice import Grid, Points, noise
from nepkit.synth.rasters import Rect, rectangles

SEED = 7
YEARS = list(range(2000, 2021))
GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("worlds")


@pytest.fixture(scope="module")
def world(root) -> Path:
    """A small world, generated once for the module."""
    manifest = generate(root / f"small-{SEED}", preset="small", seed=SEED, progress=False)
    return manifest.parent


@pytest.fixture(scope="module")
def mines(world) -> pd.DataFrame:
    return pyogrio.read_dataframe(world / "mines.gpkg", layer="mining_polygons", fid_as_index=True)


@pytest.fixture(scope="module")
def truth(world) -> pd.DataFrame:
    return pd.read_parquet(world / "truth.parquet")


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _geodesic_km2(geoms) -> np.ndarray:
    return np.array([abs(GEOD.geometry_area_perimeter(g)[0]) for g in shapely.make_valid(np.asarray(geoms))]) / 1e6


# --- determinism and completeness ------------------------------------------------------------
def test_same_seed_gives_byte_identical_files(world, tmp_path):
    again = generate(tmp_path / "again", preset="small", seed=SEED, progress=False).parent
    first, second = _hashes(world), _hashes(again)
    assert len(first) > 50
    assert first == second


def test_other_seed_gives_other_mines(world, tmp_path):
    other = generate(tmp_path / "other", preset="small", seed=SEED + 1, progress=False).parent
    assert _hashes(other)["mines.gpkg"] != _hashes(world)["mines.gpkg"]


def test_world_json_is_complete_and_current(world):
    info = json.loads((world / "world.json").read_text())
    assert info["preset"]["name"] == "small" and info["seed"] == SEED
    assert world_is_current(world, "small", SEED)
    assert not world_is_current(world, "small", SEED + 1)


def test_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth_build, "write_vrt", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        generate(tmp_path / "broken", preset="small", seed=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_ensure_world_reuses_a_current_world(root, world, monkeypatch):
    calls = []
    monkeypatch.setattr(synth_build, "generate", lambda out, **kw: calls.append(out) or Path(out) / "sources.yml")
    assert ensure_world(preset="small", seed=SEED, root=root) == world / "sources.yml"
    assert calls == []


def test_ensure_world_regenerates_a_stale_world(root, world, monkeypatch, tmp_path):
    stale = tmp_path / f"small-{SEED}"
    stale.mkdir()
    (stale / "sources.yml").write_text("years: [2000, 2020]\n")
    (stale / "world.json").write_text(json.dumps({"fingerprint": "old"}))
    calls = []
    monkeypatch.setattr(synth_build, "generate", lambda out, **kw: calls.append(Path(out)) or Path(out) / "sources.yml")
    ensure_world(preset="small", seed=SEED, root=tmp_path, progress=False)
    assert calls == [stale]


def test_concurrent_callers_generate_a_world_once(tmp_path):
    """Two processes' worth of callers at once: one generates, the other waits and reuses it."""
    from concurrent.futures import ThreadPoolExecutor

    calls = []
    real = synth_build.generate

    def counting(out, **kw):
        calls.append(Path(out))
        return real(out, **kw)

    original, synth_build.generate = synth_build.generate, counting
    try:
        with ThreadPoolExecutor(2) as pool:
            paths = list(pool.map(lambda _: ensure_world(preset="small", seed=SEED, root=tmp_path, progress=False),
                                  range(2)))
    finally:
        synth_build.generate = original
    assert calls == [tmp_path / f"small-{SEED}"]
    assert paths[0] == paths[1] and world_is_current(paths[0].parent, "small", SEED)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"preset": "huge"}, "unknown synthetic preset 'huge'"),
    ({"preset": "small", "seed": -1}, "seed must be a non-negative integer"),
    ({"preset": "small", "seed": 1.5}, "seed must be a non-negative integer"),
])
def test_bad_arguments_are_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(SynthError, match=message):
        generate(tmp_path / "w", progress=False, **kwargs)


# --- formats -------------------------------------------------------------------------------------
def test_manifest_follows_the_contract(world):
    m = yaml.safe_load((world / "sources.yml").read_text())
    assert m["years"] == [2000, 2020]
    assert m["mines"] == {"path": "mines.gpkg", "iso3_column": "ISO3_CODE", "layer": "mining_polygons"}
    assert set(m["covariates"]) == set(INDICATORS) - {"area_km2"}
    assert m["covariates"]["curvature"] == {"derive": "elevation"}
    assert m["truth"] == {"path": "truth.parquet", "json": "truth.json"}
    paths = [m["nep"]["path"].format(year=y) for y in YEARS]
    paths += [m["covariates"]["spei"]["path"].format(year=y) for y in YEARS]
    paths += [v["path"] for k, v in m["covariates"].items() if "path" in v and k != "spei"]
    for p in paths + [m["mines"]["path"], m["truth"]["path"], m["truth"]["json"]]:
        assert (world / p).is_file(), p


def test_mines_layer_reads_like_the_maus_polygons(world, mines):
    assert pyogrio.list_layers(world / "mines.gpkg")[0][0] == "mining_polygons"
    assert mines.crs.to_epsg() == 4326
    assert list(mines.columns) == ["ISO3_CODE", "COUNTRY_NAME", "AREA", "geometry"]
    assert list(mines.index) == list(range(1, len(mines) + 1))
    assert 250 < len(mines) < 600
    assert_allclose(mines["AREA"], _geodesic_km2(mines.geometry.values), rtol=1e-5)


def test_rasters_open_with_crs_nodata_and_grid(world):
    paths = sorted(world.glob("nep/*.vrt")) + sorted(world.glob("covariates/*.vrt"))
    paths += sorted(world.glob("nep/tiles/*.tif")) + sorted(world.glob("covariates/*/*.tif"))
    assert len(paths) > 60
    for p in paths:
        with rasterio.open(p) as src:
            assert src.crs.to_epsg() == 4326, p
            assert src.nodata is not None, p
            assert src.dtypes[0] == "float32", p
            if p.suffix == ".tif":
                assert src.profile["tiled"] and src.compression is not None, p
    with rasterio.open(world / "nep" / "nep_2010.vrt") as src:
        assert_allclose(src.res, (1 / 240, 1 / 240))
        assert src.nodata == -9999
    with rasterio.open(world / "nep" / "tiles" / "r000.tif") as src:
        assert src.count == 21 and src.descriptions[0] == "2000"
    with rasterio.open(world / "covariates" / "spei_2010.vrt") as src:
        assert src.nodata == float(np.float32(1e30))
        assert_allclose(src.res, (0.25, 0.25))
    with rasterio.open(world / "covariates" / "elevation.vrt") as src:
        assert_allclose(src.res, (1 / 120, 1 / 120))


def test_nep_and_covariates_have_plausible_values(world, mines):
    """Read windows around a few mines: real units, nodata holes, mean NEP of order 100."""
    sample = mines[mines["AREA"] >= 1].sample(20, random_state=0)
    ranges = {"precip": (1, 6000), "tmax": (-15, 45), "tmin": (-30, 35), "gpp": (0, 5000), "soc": (1, 400),
              "elevation": (0, 6000), "pop_density": (0, 1e5), "gdp": (0, 1e10)}
    for geom in sample.geometry.values:
        w, s, e, n = shapely.buffer(geom, 0.05).bounds
        for key, (lo, hi) in ranges.items():
            with rasterio.open(world / "covariates" / f"{key}.vrt") as src:
                a = src.read(1, window=from_bounds(w, s, e, n, src.transform).round_lengths(), masked=True,
                             boundless=True)
                valid = a.compressed()
                assert valid.size and lo <= valid.min() and valid.max() <= hi, key
    nep = []
    for y in (2000, 2010, 2020):
        with rasterio.open(world / "nep" / f"nep_{y}.vrt") as src:
            for geom in sample.geometry.values:
                w, s, e, n = shapely.buffer(geom, 0.05).bounds
                nep.append(src.read(1, window=from_bounds(w, s, e, n, src.transform), masked=True).compressed())
    nep = np.concatenate(nep)
    assert 30 < nep.mean() < 250
    assert -600 < nep.min() and nep.max() < 1500


# --- structure a method can get wrong -------------------------------------------------------------
def test_polygons_include_the_traps(world, mines):
    flags = json.loads((world / "truth.json").read_text())["mine_flags"]
    valid = shapely.is_valid(mines.geometry.values)
    assert sorted(mines.index[~valid]) == sorted(flags["invalid"])
    assert len(flags["invalid"]) == PRESETS["small"].n_invalid
    assert (mines["AREA"] < 1).sum() > 50
    bri = set(regions.bri_countries()["iso3"])
    outside = mines.index[~mines["ISO3_CODE"].isin(bri)]
    assert len(outside) > 10 and sorted(outside) == sorted(flags["outside_bri"])
    assert len(flags["coastal"]) > 0
    touching = mines.loc[flags["touching"]].geometry.values
    pairs = shapely.STRtree(touching).query(touching, predicate="touches")
    assert (pairs[0] != pairs[1]).sum() >= len(touching)  # every split part touches its twin


def test_polygons_lie_inside_their_country(mines):
    countries = regions.boundaries().set_index("iso3").geometry
    geoms = shapely.make_valid(mines.geometry.values)
    assert shapely.within(geoms, countries.loc[mines["ISO3_CODE"]].values).all()
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    shared = shapely.area(shapely.intersection(geoms[i[i != j]], geoms[j[i != j]]))
    assert shared.max() < 1e-9  # mines meet at most along an edge


def test_coastal_rings_reach_the_sea(world, mines):
    """A coastal mine's 5 km neighbourhood holds sea pixels (nodata every year)."""
    flags = json.loads((world / "truth.json").read_text())["mine_flags"]
    with rasterio.open(world / "nep" / "nep_2005.vrt") as src:
        for geom in mines.loc[flags["coastal"]].geometry.values:
            w, s, e, n = shapely.buffer(geom, 0.045).bounds
            a = src.read(1, window=from_bounds(w, s, e, n, src.transform), masked=True)
            assert a.mask.mean() > 0.05


def test_covariates_are_correlated_where_designed(world, truth, mines):
    centre = shapely.centroid(shapely.make_valid(mines.geometry.values))
    w = World(SEED, tuple(district(n) for n in PRESETS["small"].districts))
    ind, _ = indicators_at(w, shapely.get_x(centre), shapely.get_y(centre), mines["AREA"].values)
    r = np.corrcoef(np.c_[ind["spei"], np.log(ind["precip"]), np.log(ind["gpp"]), ind["tmax"], ind["tmin"]].T)
    assert r[0, 1] > 0.8  # SPEI (null) with precipitation (driver)
    assert r[1, 2] > 0.7  # GPP with precipitation
    assert r[3, 4] > 0.8  # tmin (null) with tmax (driver)


# --- truth -----------------------------------------------------------------------------------------
def test_truth_matches_mines_and_years(truth, mines):
    assert set(truth["mine_id"]) == set(mines.index)
    assert len(truth) == len(mines) * 21
    assert (truth.groupby("mine_id")["year"].apply(list) == pd.Series([YEARS] * len(mines), index=mines.index)).all()
    base = truth[truth["year"] == 2000]
    assert (base["true_loss"] == 0).all()
    d0 = truth["mine_id"].map(base.set_index("mine_id")["true_deficit"])
    assert_allclose(truth["true_loss"], truth["true_deficit"] - d0)
    gain = truth.groupby("mine_id")["true_attainable_gain"]
    assert (gain.nunique() == 1).all() and (gain.first() >= 0).all()
    assert set(truth["district"]) == set(PRESETS["small"].districts)


def test_truth_json_names_weights_and_nulls(world):
    t = json.loads((world / "truth.json").read_text())
    assert t["baseline_year"] == 2000
    assert set(t["driver_weights"]) == set(INDICATORS)
    assert set(t["null_indicators"]) == {k for k, w in t["driver_weights"].items() if w == 0}
    assert {"spei", "tmin"} <= set(t["null_indicators"])
    assert t["drivers_by_weight"][:3] == ["soc", "precip", "gpp"]
    assert t["units"]["true_loss"] == "g C m-2 a-1"


def test_difference_in_differences_recovers_the_injected_loss(world, mines, truth):
    """Mine mean (pixels the polygon touches) minus ring mean (1-5 km, minus all mines) = -true loss."""
    every = shapely.union_all(shapely.make_valid(mines.geometry.values))
    ok = mines[(mines["AREA"] >= 1) & shapely.is_valid(mines.geometry.values)].sample(25, random_state=1)
    est, true = [], []
    srcs = [rasterio.open(world / "nep" / f"nep_{y}.vrt") for y in YEARS]
    try:
        for mine_id, geom in zip(ok.index, ok.geometry.values, strict=True):
            km = 111.32 * np.cos(np.radians(geom.centroid.y))
            ring = shapely.difference(shapely.buffer(geom, 5 / km), shapely.buffer(geom, 1 / km)).difference(every)
            window = from_bounds(*ring.bounds, srcs[0].transform).round_offsets().round_lengths()
            tr = srcs[0].window_transform(window)
            shape = (int(window.height), int(window.width))
            in_mine = ~geometry_mask([geom], shape, tr, all_touched=True)
            in_ring = ~geometry_mask([ring], shape, tr)
            q, o = [], []
            for src in srcs:
                a = src.read(1, window=window, masked=True).filled(np.nan)
                q.append(np.nanmean(a[in_mine]) if np.isfinite(a[in_mine]).any() else np.nan)
                o.append(np.nanmean(a[in_ring]))
            q, o = np.array(q), np.array(o)
            est.append(np.nanmean(((o - o[0]) - (q - q[0]))[1:]))
            true.append(truth.loc[truth["mine_id"] == mine_id, "true_loss"].to_numpy()[1:].mean())
    finally:
        for src in srcs:
            src.close()
    est, true = np.array(est), np.array(true)
    keep = np.isfinite(est)
    assert keep.sum() >= 20
    assert np.corrcoef(est[keep], true[keep])[0, 1] > 0.95
    assert np.median(np.abs(est[keep] - true[keep])) < 15


# --- building blocks ------------------------------------------------------------------------------
def test_lattice_fields_are_seamless_and_agree_with_points():
    whole = Grid(row0=12000, col0=70000, nrows=40, ncols=60, per_degree=240)
    left = Grid(row0=12000, col0=70000, nrows=40, ncols=25, per_degree=240)
    right = Grid(row0=12000, col0=70025, nrows=40, ncols=35, per_degree=240)
    f = noise(whole, 3, "k", 1 / 60)
    assert_allclose(np.hstack([noise(left, 3, "k", 1 / 60), noise(right, 3, "k", 1 / 60)]), f, rtol=0, atol=0)
    lon, lat = np.broadcast_to(whole.lon, whole.shape), np.broadcast_to(whole.lat, whole.shape)
    assert_allclose(noise(Points(lon.ravel(), lat.ravel()), 3, "k", 1 / 60), f.ravel(), atol=1e-12)


def test_lattice_noise_has_unit_variance():
    f = noise(Grid(row0=0, col0=0, nrows=400, ncols=400, per_degree=24), 1, "v", 0.1)
    assert abs(f.mean()) < 0.1 and 0.9 < f.std() < 1.1


def test_rectangles_cut_overlapping_boxes_into_disjoint_tiles():
    margin = C.RASTER_MARGIN_KM
    try:
        C.RASTER_MARGIN_KM = 0.0
        rects = rectangles({"a": (10.0, 40.0, 11.0, 41.0), "b": (10.5, 40.5, 11.5, 41.5)})
    finally:
        C.RASTER_MARGIN_KM = margin
    # 0.25-degree cells: box a spans rows 196-199 and columns 760-763, box b rows 194-197, columns 762-765
    assert rects == [Rect(0, 194, 762, 2, 4), Rect(1, 196, 760, 2, 6), Rect(2, 198, 760, 2, 4)]


def test_constants_are_documented():
    table = constants_table()
    assert table["name"].is_unique
    assert table["why"].str.len().min() > 10
    assert set(table["basis"]) <= {"paper", "literature", "design", "calibrated"}
    assert set(C.DRIVER_WEIGHTS) == set(INDICATORS)


def test_districts_lie_in_their_countries():
    countries = regions.boundaries().set_index("iso3").geometry
    for d in DISTRICTS:
        assert any(shapely.contains_xy(countries.loc[c], d.lon, d.lat) for c in d.countries), d.name


# --- the paper's scale ----------------------------------------------------------------------------
@pytest.mark.slow
def test_paper_preset_has_the_papers_scale(tmp_path):
    out = generate(tmp_path / "paper", preset="paper", seed=42, progress=False).parent
    mines = pyogrio.read_dataframe(out / "mines.gpkg", fid_as_index=True)
    area = _geodesic_km2(mines.geometry.values)
    bri = mines["ISO3_CODE"].isin(regions.bri_countries()["iso3"]).values
    keep = bri & (area >= 1)
    assert abs(keep.sum() / 9600 - 1) < 0.10
    assert abs(area[keep].sum() / 30000 - 1) < 0.10
    assert mines.loc[keep, "ISO3_CODE"].nunique() >= 25
    scale = json.loads((out / "world.json").read_text())["scale"]
    assert 0.45 < scale["true_loss_share"] < 0.60
    assert 50 < scale["expected_nep_mean_g_m2_a"] < 120
    assert scale["true_gain_above_100"] > 1500
