"""The sources.yml manifest and the mine polygons: validation, errors, exclusions."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
import xarray as xr
import yaml
from _rasters import (
    SIZE,
    TRANSFORM,
    YEARS,
    default_mines,
    nep_values,
    pixel_box,
    tiny_world,
    write_mines,
    write_raster,
)
from numpy.testing import assert_allclose

from nepkit.params import RunParams
from nepkit.sources import (
    COVARIATES,
    DerivedSpec,
    ManifestError,
    SourceError,
    geodesic_area_km2,
    load_manifest,
    read_mines,
)

PARAMS = RunParams(region="CHN", years=list(YEARS))


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return tiny_world(tmp_path / "world")


def edit(manifest: Path, **changes: object) -> Path:
    content = yaml.safe_load(manifest.read_text())
    for key, value in changes.items():
        if value is None:
            content.pop(key, None)
        else:
            content[key] = value
    manifest.write_text(yaml.safe_dump(content))
    return manifest


# ------------------------------------------------------------------ valid manifests


def test_manifest_resolves_paths_against_its_folder(world: Path) -> None:
    m = load_manifest(world)
    assert m.years == YEARS and m.folder == world.parent
    assert m.mines.path == world.parent / "mines.gpkg"
    assert sorted(m.nep.bands) == list(range(YEARS[0], YEARS[1] + 1))
    assert m.nep.bands[2001][0].path == str(world.parent / "nep" / "nep_2001.tif")
    assert isinstance(m.covariates["curvature"], DerivedSpec)
    assert set(m.covariates) == set(COVARIATES)
    assert m.covariates["soc"].is_static


def test_manifest_loads_from_another_working_directory(world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_manifest(os.path.relpath(world, tmp_path)).nep.grid.width == SIZE


def test_netcdf_time_series_groups_steps_by_year(world: Path) -> None:
    folder = world.parent
    months = pd.date_range("2000-01-01", "2002-12-01", freq="MS")
    lat = 30.6 - 0.005 - 0.01 * np.arange(SIZE)
    lon = 100.0 + 0.005 + 0.01 * np.arange(SIZE)
    data = np.stack([nep_values(t.year) / 12 for t in months])
    xr.Dataset({"NEP": (("time", "lat", "lon"), data)}, coords={"time": months, "lat": lat, "lon": lon}).to_netcdf(
        folder / "nep.nc"
    )
    edit(world, nep={"path": "nep.nc", "variable": "NEP", "aggregate": "sum", "crs": "EPSG:4326"})
    m = load_manifest(world)
    assert [len(m.nep.bands[y]) for y in range(2000, 2003)] == [12, 12, 12]
    assert m.nep.aggregate == "sum"
    assert_allclose(m.nep.grid.transform.c, 100.0) and assert_allclose(m.nep.grid.transform.f, 30.6)


# ------------------------------------------------------------------------ bad input


def test_missing_manifest_key(world: Path) -> None:
    with pytest.raises(ManifestError, match=r"sources.yml: missing key 'nep': add it"):
        load_manifest(edit(world, nep=None))


def test_unknown_covariate_name(world: Path) -> None:
    content = yaml.safe_load(world.read_text())
    content["covariates"]["rain"] = content["covariates"].pop("precip")
    world.write_text(yaml.safe_dump(content))
    with pytest.raises(ManifestError, match=r"unknown covariate\(s\) rain: the names are fixed: spei, precip"):
        load_manifest(world)


def test_missing_covariate(world: Path) -> None:
    content = yaml.safe_load(world.read_text())
    del content["covariates"]["gdp"]
    world.write_text(yaml.safe_dump(content))
    with pytest.raises(ManifestError, match=r"covariate\(s\) gdp missing: add them"):
        load_manifest(world)


def test_area_is_never_read(world: Path) -> None:
    content = yaml.safe_load(world.read_text())
    content["covariates"]["area_km2"] = {"path": "covariates/soc.tif"}
    world.write_text(yaml.safe_dump(content))
    with pytest.raises(ManifestError, match="area_km2 is computed from the polygons: remove it"):
        load_manifest(world)


def test_missing_year_file(world: Path) -> None:
    missing = world.parent / "nep" / "nep_2001.tif"
    missing.unlink()
    with pytest.raises(ManifestError, match=rf"nep file for 2001 not found: {missing}: add it or narrow the years"):
        load_manifest(world)


def test_raster_without_crs(world: Path) -> None:
    write_raster(world.parent / "covariates" / "soc.tif", np.ones((SIZE, SIZE), "f4"), crs=None)
    with pytest.raises(ManifestError, match=r"covariates.soc .*soc.tif has no CRS: .*declare it in the manifest \(crs: EPSG:4326\)"):
        load_manifest(world)


def test_declared_crs_fixes_a_raster_without_crs(world: Path) -> None:
    write_raster(world.parent / "covariates" / "soc.tif", np.ones((SIZE, SIZE), "f4"), crs=None)
    content = yaml.safe_load(world.read_text())
    content["covariates"]["soc"]["crs"] = "EPSG:4326"
    world.write_text(yaml.safe_dump(content))
    assert pyproj.CRS(load_manifest(world).covariates["soc"].grid.crs).to_epsg() == 4326


def test_unreadable_raster(world: Path) -> None:
    (world.parent / "covariates" / "gpp.tif").write_bytes(b"not a raster at all")
    with pytest.raises(ManifestError, match=r"covariates.gpp .*gpp.tif is not a readable raster .*check the file"):
        load_manifest(world)


def test_years_of_different_grids(world: Path) -> None:
    write_raster(world.parent / "nep" / "nep_2002.tif", nep_values(2002)[:30])
    with pytest.raises(ManifestError, match="nep_2002.tif has another grid than .*nep_2000.tif"):
        load_manifest(world)


def test_nep_needs_a_time_axis(world: Path) -> None:
    with pytest.raises(ManifestError, match=r"nep covariates/soc.tif has no time axis: use a \{year\} pattern"):
        load_manifest(edit(world, nep={"path": "covariates/soc.tif"}))


def test_unknown_raster_option(world: Path) -> None:
    with pytest.raises(ManifestError, match=r"nep has unknown option\(s\) fill: use "):
        load_manifest(edit(world, nep={"path": "nep/nep_{year}.tif", "fill": 1}))


def test_invalid_yaml(world: Path) -> None:
    world.write_text("years: [2000, 2002\nnep: {")
    with pytest.raises(ManifestError, match="not valid YAML at line .*: fix the syntax"):
        load_manifest(world)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found: check the path"):
        load_manifest(tmp_path / "sources.yml")


def test_missing_mines_file(world: Path) -> None:
    with pytest.raises(ManifestError, match=r"mines file .*nowhere.gpkg not found: fix mines.path"):
        load_manifest(edit(world, mines={"path": "nowhere.gpkg"}))


def test_run_years_outside_the_manifest(world: Path) -> None:
    with pytest.raises(ManifestError, match="the run needs NEP for 2003-2005 but the manifest covers 2000-2002"):
        load_manifest(world).check_years([2002, 2003, 2004, 2005])


def test_mine_layer_without_iso3_column(world: Path) -> None:
    m = load_manifest(edit(world, mines={"path": "mines.gpkg", "iso3_column": "ISO"}))
    with pytest.raises(SourceError, match=r"mines.gpkg: the layer has no column 'ISO' \(it has ISO3_CODE, COUNTRY_NAME, AREA\): set mines.iso3_column"):
        read_mines(m, PARAMS)


def test_mine_layer_without_crs(world: Path) -> None:
    write_mines(world.parent / "mines.gpkg", default_mines().set_crs(None, allow_override=True))
    with pytest.raises(SourceError, match=r"mines.gpkg: the layer has no CRS: assign one \(ogr2ogr -a_srs EPSG:4326"):
        read_mines(load_manifest(world), PARAMS)


def test_missing_layer(world: Path) -> None:
    m = load_manifest(edit(world, mines={"path": "mines.gpkg", "layer": "mines"}))
    with pytest.raises(SourceError, match=r"no layer 'mines' \(layers: mining_polygons\): set mines.layer"):
        read_mines(m, PARAMS)


def test_unreadable_mine_file(world: Path) -> None:
    (world.parent / "mines.gpkg").write_bytes(b"garbage")
    with pytest.raises(SourceError, match="mines.gpkg: not a readable vector file"):
        read_mines(load_manifest(world), PARAMS)


def test_empty_region_after_filtering(world: Path) -> None:
    with pytest.raises(SourceError, match="no mine left in region 'Africa' after filtering: choose another region"):
        read_mines(load_manifest(world), PARAMS.replace(region="Africa"))


# --------------------------------------------------------------------------- mines


def test_read_mines_filters_and_counts_each_exclusion(world: Path) -> None:
    mines, mining, report = read_mines(load_manifest(world), PARAMS)
    assert mines.columns.tolist() == ["mine_id", "iso3", "country", "continent", "subregion", "area_km2", "geometry"]
    assert mines["mine_id"].tolist() == [1, 2, 3]  # GeoPackage fids
    assert mines[["country", "continent", "subregion"]].iloc[0].tolist() == ["China", "Asia", "Eastern Asia"]
    assert len(mining) == 5  # every polygon, whatever its country or area
    counts = report.to_frame().set_index("step")["count"]
    assert counts[["read", "repaired", "empty", "not_bri", "area", "region", "mines"]].tolist() == [5, 0, 0, 1, 1, 0, 3]


def test_geodesic_area(world: Path) -> None:
    mines, _, _ = read_mines(load_manifest(world), PARAMS)
    geod = pyproj.Geod(ellps="WGS84")
    expected = [abs(geod.geometry_area_perimeter(g)[0]) / 1e6 for g in mines.geometry]
    assert_allclose(mines["area_km2"], expected, rtol=1e-12)
    # a 0.01-degree cell at 30.595 N: (0.01 deg) * N cos(phi) by (0.01 deg) * M on WGS84
    a, f = 6378137.0, 1 / 298.257223563
    e2, phi = f * (2 - f), np.radians(30.595)
    n = a / np.sqrt(1 - e2 * np.sin(phi) ** 2)
    m = a * (1 - e2) / (1 - e2 * np.sin(phi) ** 2) ** 1.5
    expected = np.radians(0.01) * n * np.cos(phi) * np.radians(0.01) * m / 1e6
    assert_allclose(geodesic_area_km2([pixel_box(0, 0, 1, 1)])[0], expected, rtol=1e-5)


def test_invalid_geometries_are_repaired_and_counted(world: Path) -> None:
    mines = default_mines()
    x0, y0, x1, y1 = pixel_box(5, 50, 8, 53).bounds
    bowtie = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    assert not bowtie.is_valid
    extra = gpd.GeoDataFrame({"ISO3_CODE": ["CHN"], "COUNTRY_NAME": ["China"], "AREA": [9.0]}, geometry=[bowtie], crs=4326)
    write_mines(world.parent / "mines.gpkg", pd.concat([mines, extra], ignore_index=True))
    kept, mining, report = read_mines(load_manifest(world), PARAMS)
    assert report.repaired == 1
    assert mining.geometry.is_valid.all()
    assert 6 in kept["mine_id"].tolist()  # two triangles of 2.4 km2 each remain
    assert_allclose(kept.set_index("mine_id").loc[6, "area_km2"], geodesic_area_km2([bowtie.buffer(0)])[0] * 2, rtol=0.01)


def test_mines_in_another_crs_are_reprojected(world: Path) -> None:
    write_mines(world.parent / "mines.gpkg", default_mines().to_crs("EPSG:3857"))
    mines, _, _ = read_mines(load_manifest(world), PARAMS)
    assert mines.crs.to_epsg() == 4326
    assert_allclose(mines["area_km2"].iloc[0], geodesic_area_km2([pixel_box(10, 10, 12, 12)])[0], rtol=1e-6)


def test_id_column_and_min_area(world: Path) -> None:
    mines = default_mines()
    mines["mine"] = [101, 102, 103, 104, 105]
    write_mines(world.parent / "mines.gpkg", mines)
    m = load_manifest(edit(world, mines={"path": "mines.gpkg", "id_column": "mine"}))
    kept, _, report = read_mines(m, PARAMS.replace(min_area_km2=2.0))
    assert kept["mine_id"].tolist() == [101, 103]
    assert report.to_frame().set_index("step").loc["area", "count"] == 2


def test_fingerprint_follows_file_changes_and_vrt_tiles(world: Path) -> None:
    folder = world.parent
    before = load_manifest(world).fingerprint()
    assert load_manifest(world).fingerprint() == before
    write_raster(folder / "covariates" / "gdp.tif", np.full((SIZE, SIZE), 3.0, "f4"))
    os.utime(folder / "covariates" / "gdp.tif", ns=(1, 1))
    assert load_manifest(world).fingerprint() != before
    # a VRT mosaic: changing its tile changes the fingerprint although the VRT is untouched
    tile = folder / "tiles" / "t.tif"
    write_raster(tile, np.ones((SIZE, SIZE), "f4"), transform=TRANSFORM)
    vrt = folder / "soc.vrt"
    vrt.write_text(
        f'<VRTDataset rasterXSize="{SIZE}" rasterYSize="{SIZE}"><SRS>EPSG:4326</SRS>'
        f"<GeoTransform>{', '.join(map(str, TRANSFORM.to_gdal()))}</GeoTransform>"
        '<VRTRasterBand dataType="Float32" band="1"><SimpleSource>'
        '<SourceFilename relativeToVRT="1">tiles/t.tif</SourceFilename><SourceBand>1</SourceBand>'
        "</SimpleSource></VRTRasterBand></VRTDataset>"
    )
    content = yaml.safe_load(world.read_text())
    content["covariates"]["soc"] = {"path": "soc.vrt"}
    world.write_text(yaml.safe_dump(content))
    first = load_manifest(world).fingerprint()
    os.utime(tile, ns=(2, 2))
    assert load_manifest(world).fingerprint() != first


def test_mines_table_is_a_geodataframe_in_wgs84(world: Path) -> None:
    mines, _, _ = read_mines(load_manifest(world), PARAMS)
    assert isinstance(mines, gpd.GeoDataFrame) and mines.crs.to_epsg() == 4326
    assert mines["mine_id"].dtype == np.int64


def test_example_manifest_of_the_real_datasets_validates(tmp_path: Path) -> None:
    """data/sources.example.yml loads once tiny stand-ins sit at its paths."""
    from nepkit.paths import DATA_DIR

    example = yaml.safe_load((DATA_DIR / "sources.example.yml").read_text())
    folder = tmp_path / "real"
    (folder / "maus2022").mkdir(parents=True)
    write_mines(folder / "maus2022" / "global_mining_polygons_v2.gpkg")
    small = np.ones((4, 4), np.float32)
    for year in range(2000, 2021):
        write_raster(folder / "nep" / f"NEP_{year}.tif", small)
        for name in ("precip", "tmax", "tmin"):
            write_raster(folder / "climate" / f"{name}_{year}.tif", small)
    for year in range(2000, 2021, 5):
        write_raster(folder / "ghsl" / f"GHS_POP_E{year}_GLOBE_R2023A_4326_30ss_V1_0.tif", small)
    for year in range(2000, 2020):
        write_raster(folder / "gdp" / f"GDP{year}.tif", small)
    write_raster(folder / "glosis" / "GSOCmap1.5.0.tif", small)
    lat, lon = [30.5, 30.0], [100.0, 100.5]

    def netcdf(path: Path, name: str, times: pd.DatetimeIndex | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if times is None:
            ds = xr.Dataset({name: (("lat", "lon"), np.ones((2, 2)))}, coords={"lat": lat, "lon": lon})
        else:
            data = np.ones((len(times), 2, 2))
            ds = xr.Dataset({name: (("time", "lat", "lon"), data)}, coords={"time": times, "lat": lat, "lon": lon})
        ds.to_netcdf(path)

    netcdf(folder / "speibase" / "spei12.nc", "spei", pd.date_range("1999-01-01", "2021-12-01", freq="MS"))
    netcdf(folder / "vodca2gpp" / "VODCA2GPP.nc", "GPP", pd.date_range("2000-01-01", "2020-12-31", freq="8D"))
    netcdf(folder / "gebco" / "GEBCO_2023.nc", "elevation", None)
    (folder / "sources.yml").write_text(yaml.safe_dump(example))
    m = load_manifest(folder / "sources.yml")
    assert [len(m.covariates["spei"].bands[y]) for y in (2000, 2020)] == [12, 12]
    assert len(m.covariates["gpp"].bands[2000]) == 46 and m.covariates["gpp"].scale == 365
    assert sorted(m.covariates["pop_density"].bands) == [2000, 2005, 2010, 2015, 2020]
    assert max(m.covariates["gdp"].bands) == 2019
    assert m.covariates["elevation"].is_static and m.covariates["pop_density"].per_area


def test_layer_must_be_named_when_the_file_holds_several(world: Path) -> None:
    write_mines(world.parent / "mines.gpkg", default_mines().iloc[:1], layer="other", mode="a")
    with pytest.raises(SourceError, match=r"mines.gpkg: holds layers mining_polygons, other: set mines.layer"):
        read_mines(load_manifest(world), PARAMS)
    m = load_manifest(edit(world, mines={"path": "mines.gpkg", "layer": "mining_polygons"}))
    assert len(read_mines(m, PARAMS)[0]) == 3


def test_id_column_must_hold_integers(world: Path) -> None:
    m = load_manifest(edit(world, mines={"path": "mines.gpkg", "id_column": "COUNTRY_NAME"}))
    with pytest.raises(SourceError, match=r"mine ids \(COUNTRY_NAME\) are not integers: set mines.id_column"):
        read_mines(m, PARAMS)
