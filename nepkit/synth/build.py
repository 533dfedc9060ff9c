"""Writing a synthetic world to disk: :func:`generate` and :func:`ensure_world`."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import rasterio
import scipy
import shapely
from tqdm import tqdm

from nepkit import regions
from nepkit.io import file_lock, read_json, write_json
from nepkit.paths import SYNTHETIC_DIR
from nepkit.synth import constants as C
from nepkit.synth.districts import district
from nepkit.synth.effects import YEARS, truth_panel, truth_tables
from nepkit.synth.fields import COVARIATE_UNITS, World
from nepkit.synth.mines import place_mines
from nepkit.synth.presets import Preset
from nepkit.synth.presets import preset as get_preset
from nepkit.synth.rasters import rectangles, write_covariates, write_nep, write_vrt

__all__ = ["generate", "ensure_world", "fingerprint", "world_is_current", "SynthError"]

_PACKAGE_DIR = Path(__file__).resolve().parent
#: GeoPackages carry a "last change" timestamp; a fixed one keeps files byte-identical.
_GPKG_DATE = "2000-01-01T00:00:00.000Z"
MINES_LAYER = "mining_polygons"


class SynthError(ValueError):
    """Bad arguments to the synthetic-world generator."""


def fingerprint(preset: str, seed: int) -> str:
    """Hash of everything a world depends on: generator code, preset, seed, reference data, libraries.

    Examples
    --------
    >>> fingerprint("small", 1) == fingerprint("small", 1)
    True
    >>> fingerprint("small", 1) == fingerprint("small", 2)
    False
    """
    p = get_preset(preset)
    h = hashlib.sha256()
    for f in sorted(_PACKAGE_DIR.glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    h.update(json.dumps({"preset": p.as_dict(), "seed": int(seed)}, sort_keys=True).encode())
    for f in (regions.BRI_CSV, regions.BOUNDARIES_GPKG):
        h.update(Path(f).read_bytes())
    versions = [np.__version__, scipy.__version__, shapely.__version__, rasterio.__version__,
                rasterio.__gdal_version__, pyogrio.__gdal_version_string__]
    h.update(" ".join(versions).encode())
    return h.hexdigest()


def world_is_current(out: str | os.PathLike[str], preset: str, seed: int) -> bool:
    """Whether ``out`` holds a complete world of this preset, seed and generator."""
    info = Path(out) / "world.json"
    if not info.exists() or not (Path(out) / "sources.yml").exists():
        return False
    return read_json(info).get("fingerprint") == fingerprint(preset, seed)


def ensure_world(*, preset: str = "paper", seed: int = 42, root: str | os.PathLike[str] = SYNTHETIC_DIR,
                 progress: bool = True) -> Path:
    """The ``sources.yml`` of ``root/<preset>-<seed>/``, generated only when missing or stale.

    The world is regenerated when its ``world.json`` is missing (an interrupted
    generation never writes it) or its fingerprint (generator code, preset,
    seed, reference data, library versions) differs from the current one.

    Parameters
    ----------
    preset : str
        The world's preset (:data:`nepkit.synth.PRESETS`).
    seed : int
        Random seed.
    root : path-like
        Parent folder (default ``data/synthetic``).
    progress : bool
        Report progress on stderr when generating.

    Returns
    -------
    pathlib.Path
        The manifest, ``root/<preset>-<seed>/sources.yml``.

    Examples
    --------
    >>> from nepkit.synth import ensure_world
    >>> manifest = ensure_world(preset="small", seed=1, root="/tmp/worlds")  # doctest: +SKIP
    """
    out = Path(root) / f"{preset}-{seed}"
    with file_lock(out.with_name(f".{out.name}.lock")):  # one generation at a time; the others wait, then reuse it
        if world_is_current(out, preset, seed):
            return out / "sources.yml"
        return generate(out, preset=preset, seed=seed, progress=progress)


def generate(out: str | os.PathLike[str], *, preset: str = "paper", seed: int = 42, progress: bool = True) -> Path:
    """Write a synthetic world into ``out`` and return its ``sources.yml``.

    The world is built in a temporary sibling folder, which is renamed to
    ``out`` at the end (replacing an older ``out``); ``world.json`` is written
    last, so a killed generation never looks complete. The same preset and seed
    give byte-identical files.

    Parameters
    ----------
    out : path-like
        Target folder.
    preset : str
        The world's preset (:data:`nepkit.synth.PRESETS`).
    seed : int
        Random seed (a non-negative integer).
    progress : bool
        Report progress on stderr.

    Returns
    -------
    pathlib.Path
        ``out/sources.yml``.

    Raises
    ------
    SynthError
        For an unknown preset or a bad seed.

    Examples
    --------
    >>> from nepkit.synth import generate
    >>> manifest = generate("/tmp/world", preset="small", seed=1, progress=False)  # doctest: +SKIP
    >>> manifest.name  # doctest: +SKIP
    'sources.yml'
    """
    try:
        p = get_preset(preset)
    except ValueError as exc:
        raise SynthError(str(exc)) from None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SynthError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with p.constants():
            _build(tmp, p, seed, progress)
        _swap(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / "sources.yml"


def _swap(tmp: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


class _Log:
    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled, self.label, self.t0 = enabled, label, time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"synth[{self.label}] {time.perf_counter() - self.t0:6.1f}s  {message}", file=sys.stderr, flush=True)


def _build(out: Path, p: Preset, seed: int, progress: bool) -> None:
    log = _Log(progress, f"{p.name}/{seed}")
    mines, placement = place_mines(p, seed)
    log(f"{len(mines):,} mine polygons placed")
    world = World(seed, tuple(district(n) for n in p.districts))
    per_mine, deficit, meta, world = truth_tables(mines, world, seed)
    _write_mines(out / "mines.gpkg", mines)
    truth = truth_panel(per_mine, deficit)
    truth.to_parquet(out / "truth.parquet", index=False)
    log("mines.gpkg and truth.parquet written")
    land = regions.boundaries().geometry.values
    bounds = {name: tuple(group.total_bounds) for name, group in mines.groupby("district", sort=True)}
    rects = rectangles(bounds)
    for rect in tqdm(rects, desc="synth rasters", unit="tile", disable=not progress, file=sys.stderr):
        write_nep(out, rect, world, mines, deficit, land)
        write_covariates(out, rect, world, land)
    _write_vrts(out, rects)
    log(f"{len(rects)} raster tiles and their VRTs written")
    stats = _scale(mines, per_mine, deficit, world)
    write_json(out / "truth.json", _truth_meta(p, seed, mines, meta, world))
    _write_manifest(out / "sources.yml", p, seed)
    write_json(out / "world.json", {
        "generator": "nepkit.synth", "preset": p.as_dict(), "seed": seed,
        "fingerprint": fingerprint(p.name, seed), "n_tiles": len(rects),
        "failed_placements": placement["failed_placements"], "scale": stats,
    })
    log("done")


@contextlib.contextmanager
def _gdal_config(**options: str) -> Iterator[None]:
    previous = {k: pyogrio.get_gdal_config_option(k) for k in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(previous)


def _write_mines(path: Path, mines: gpd.GeoDataFrame) -> None:
    """The polygons as the Maus et al. (2022) v2 layer: fid = mine id, AREA in km2 (geodesic)."""
    layer = gpd.GeoDataFrame(
        {"ISO3_CODE": mines["iso3"].values, "COUNTRY_NAME": mines["country"].values,
         "AREA": mines["area_km2"].round(6).values},
        geometry=mines.geometry.values, crs="EPSG:4326",
    )
    with _gdal_config(OGR_CURRENT_DATE=_GPKG_DATE):
        pyogrio.write_dataframe(layer, path, layer=MINES_LAYER, driver="GPKG", promote_to_multi=True)


def _write_vrts(out: Path, rects) -> None:
    nep = [(out / "nep" / "tiles" / f"{r.name}.tif", r) for r in rects]
    spei = [(out / "covariates" / "spei" / f"{r.name}.tif", r) for r in rects]
    spei_nodata = float(np.float32(C.SPEI_NODATA))
    for band, year in enumerate(YEARS, start=1):
        write_vrt(out / "nep" / f"nep_{year}.vrt", nep, C.NEP_PER_DEGREE, band, C.NODATA)
        write_vrt(out / "covariates" / f"spei_{year}.vrt", spei, C.COVARIATE_PER_DEGREE["spei"], band, spei_nodata)
    for key, per_degree in C.COVARIATE_PER_DEGREE.items():
        if key != "spei":
            tiles = [(out / "covariates" / key / f"{r.name}.tif", r) for r in rects]
            write_vrt(out / "covariates" / f"{key}.vrt", tiles, per_degree, 1, C.NODATA)


def _write_manifest(path: Path, p: Preset, seed: int) -> None:
    units = COVARIATE_UNITS
    lines = [
        f"# Synthetic world written by nepkit.synth (preset {p.name}, seed {seed}).",
        "# Paths are relative to this file. Rasters: EPSG:4326, float32; nodata -9999 (SPEI: 1e30).",
        f"years: [{C.YEARS[0]}, {C.YEARS[1]}]",
        f"mines: {{path: mines.gpkg, iso3_column: ISO3_CODE, layer: {MINES_LAYER}}}  # AREA: km2, geodesic (WGS84)",
        'nep: {path: "nep/nep_{year}.vrt"}  # g C m-2 a-1, 1/240 degree (500 m)',
        "covariates:",
        f'  spei: {{path: "covariates/spei_{{year}}.vrt"}}  # {units["spei"]}',
    ]
    for key in ("precip", "tmax", "tmin", "gpp", "soc", "elevation"):
        lines.append(f"  {key}: {{path: covariates/{key}.vrt}}  # {units[key]}")
    lines.append("  curvature: {derive: elevation}")
    for key in ("pop_density", "gdp"):
        lines.append(f"  {key}: {{path: covariates/{key}.vrt}}  # {units[key]}")
    lines.append("truth: {path: truth.parquet, json: truth.json}  # synthetic only: the injected effect")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _truth_meta(p: Preset, seed: int, mines, meta: dict, world: World) -> dict:
    weights = dict(C.DRIVER_WEIGHTS)
    bri = set(regions.bri_countries()["iso3"])
    return {
        "preset": p.name,
        "seed": seed,
        "baseline_year": C.BASELINE_YEAR,
        "years": list(C.YEARS),
        "driver_weights": weights,
        "null_indicators": [k for k, w in weights.items() if w == 0],
        "drivers_by_weight": [k for k, w in sorted(weights.items(), key=lambda kv: -abs(kv[1])) if w != 0],
        "transforms": dict(C.DRIVER_TRANSFORMS),
        "standardisation": meta["standardisation"],
        "gain_model": {
            "formula": "G = s * ln(1 + exp((c + sum_k w_k * (T_k(x_k) - mean_k) / sd_k + e) / s)), e ~ N(0, sd)",
            "c": C.GAIN_CENTRE, "s": C.GAIN_SOFTNESS, "sd": C.GAIN_NOISE_SD,
            "indicators_at": "mine centroid (area_km2: geodesic polygon area)",
        },
        "loss_convention": "true_loss = D(t) - D(baseline_year) = W - P: positive = NEP loss (g C m-2 a-1)",
        "class_counts": meta["class_counts"],
        "class_definitions": {
            "new": "undisturbed in 2000; opens in NEW_ONSET_YEARS, deficit ramps to NEW_DEPTH x full",
            "expanding": "partly disturbed in 2000; disturbs part of the rest (EXPANSION_*)",
            "stable": "partly disturbed in 2000; unchanged",
            "restored": "partly disturbed in 2000; restoration from RESTORATION_START_YEARS removes ~G in 2-4 years",
            "recovering": "partly disturbed in 2000; natural recovery reaches RECOVERY_FRACTION x G slowly",
        },
        "spei_standardisation": {"ln_precip_mean": world.wet_mean, "ln_precip_sd": world.wet_sd},
        "units": {
            "true_loss": "g C m-2 a-1", "true_deficit": "g C m-2 a-1", "true_attainable_gain": "g C m-2 a-1",
            "nep": "g C m-2 a-1", "AREA": "km2 (geodesic, WGS84)", **COVARIATE_UNITS,
            "curvature": "derived from elevation by the pipeline",
        },
        "nodata": {"nep": C.NODATA, "spei": float(np.float32(C.SPEI_NODATA)), "other covariates": C.NODATA},
        "mine_flags": {
            "invalid": mines.loc[mines["invalid"], "mine_id"].tolist(),
            "touching": mines.loc[mines["touching"], "mine_id"].tolist(),
            "coastal": mines.loc[mines["coastal"], "mine_id"].tolist(),
            "outside_bri": mines.loc[~mines["iso3"].isin(bri), "mine_id"].tolist(),
        },
    }


def _scale(mines, per_mine, deficit: np.ndarray, world: World) -> dict:
    """The world's scale figures for mines >= 1 km2 in BRI countries, from the truth."""
    from nepkit.synth.lattice import Points

    bri = set(regions.bri_countries()["iso3"])
    sel = ((mines["area_km2"] >= 1) & mines["iso3"].isin(bri)).values
    area_m2 = mines["area_km2"].values[sel] * 1e6
    trend = world.nep_trend(Points(mines["lon"].values[sel], mines["lat"].values[sel]))
    nep = (per_mine["nep_background"].values[sel, None] + trend[:, None] * (YEARS - C.BASELINE_YEAR)
           - deficit[sel])
    total = (nep * area_m2[:, None]).sum(0) / 1e9
    stat = (deficit[sel] - deficit[sel, :1])[:, 1:].mean(1)
    loss, gain = stat > 0, stat < 0
    return {
        "n_polygons": int(len(mines)),
        "n_mines_bri_ge_1km2": int(sel.sum()),
        "area_km2_bri_ge_1km2": float(mines["area_km2"].values[sel].sum()),
        "n_below_1km2": int((mines["area_km2"] < 1).sum()),
        "n_outside_bri": int((~mines["iso3"].isin(bri)).sum()),
        "n_invalid": int(mines["invalid"].sum()),
        "n_touching": int(mines["touching"].sum()),
        "n_coastal": int(mines["coastal"].sum()),
        "n_countries_bri": int(mines.loc[sel, "iso3"].nunique()),
        "expected_nep_mean_g_m2_a": float((nep * area_m2[:, None]).sum() / area_m2.sum() / len(YEARS)),
        "expected_nep_total_Gg": {int(y): round(float(v), 1) for y, v in zip(YEARS, total, strict=True)},
        "true_loss_share": float(loss.mean()),
        "true_loss_mean_g_m2_a": float(stat[loss].mean()) if loss.any() else None,
        "true_gain_mean_g_m2_a": float(-stat[gain].mean()) if gain.any() else None,
        "true_gain_above_100": int((stat < -100).sum()),
    }
