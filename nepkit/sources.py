"""The data sources of a run: the ``sources.yml`` manifest and the mine polygons.

A manifest names where each dataset lies on disk (DESIGN.md section 2); paths
are relative to the manifest's folder. :func:`load_manifest` validates it at
once, opening every raster's header: a missing key, an unknown covariate, a
missing year file, an unreadable file or a raster without a coordinate
reference system (CRS) each raise :class:`ManifestError` with one line naming
the file and the fix. The synthetic world is read through exactly this path:
it writes a ``sources.yml`` of its own.

Rasters
    NEP is one raster per year (any raster GDAL reads, a ``{year}`` pattern
    in ``path``) or one NetCDF/Zarr file with a time dimension (``variable``
    names the variable). A covariate is a single raster, a ``{year}`` pattern
    or a time series; per-year values are averaged over the run's years.
    Options per entry: ``variable``, ``band``, ``crs`` (declare the CRS of a
    file that lacks one), ``nodata`` (value or list of values read as missing,
    besides the file's own), ``scale`` and ``offset`` (unit conversion after
    the file's own packing: ``value * scale + offset``), ``aggregate`` (``mean``
    or ``sum`` of the time steps within a year, per pixel), ``per_area``
    (divide by the cell area in km2: counts per cell to densities) and
    ``years`` (``[first, last]`` the data cover, with ``step``).

Mines
    :func:`read_mines` reads the polygons with pyogrio, repairs invalid
    geometries, computes geodesic areas and keeps the BRI mines of at least
    ``min_area_km2`` in the run's region; each exclusion is counted in an
    :class:`ExclusionReport`.

Examples
--------
>>> from nepkit.sources import load_manifest, read_mines  # doctest: +SKIP
>>> manifest = load_manifest("data/sources.yml")  # doctest: +SKIP
>>> mines, mining, report = read_mines(manifest, RunParams(region="Africa"))  # doctest: +SKIP
>>> report.to_frame()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import rasterio
import shapely
import yaml
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError

from nepkit import regions
from nepkit.artifacts import INDICATORS
from nepkit.params import RunParams
from nepkit.paths import shown

__all__ = [
    "SourceError",
    "ManifestError",
    "COVARIATES",
    "Grid",
    "BandRef",
    "RasterSpec",
    "DerivedSpec",
    "LandcoverSpec",
    "MinesSpec",
    "Manifest",
    "ExclusionReport",
    "load_manifest",
    "resolve_manifest",
    "truth_table",
    "truth_meta",
    "read_mines",
]

#: The indicators read from rasters (``area_km2`` is computed from the polygons).
COVARIATES = tuple(name for name in INDICATORS if name != "area_km2")
#: Covariates that may be derived from another one instead of read.
DERIVABLE = {"curvature": "elevation"}

#: ``truth`` is written by the synthetic world only (its injected effect); the loader keeps its paths.
_TOP_KEYS = {"years", "baseline_year", "mines", "nep", "covariates", "landcover", "description", "truth"}
_RASTER_KEYS = {"path", "variable", "band", "crs", "nodata", "scale", "offset", "aggregate", "per_area", "years", "step"}
_MINES_KEYS = {"path", "layer", "iso3_column", "id_column"}
_MULTIDIM = {".nc": "NETCDF", ".nc4": "NETCDF", ".cdf": "NETCDF", ".netcdf": "NETCDF", ".zarr": "ZARR"}
_EXAMPLE = "see data/README.md and data/sources.example.yml"
_GEOD = pyproj.Geod(ellps="WGS84")


class SourceError(ValueError):
    """An input file is missing, unreadable or unusable (one line: the file and the fix)."""


class ManifestError(SourceError):
    """A ``sources.yml`` manifest is invalid (one line: the file and the fix)."""


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class Grid:
    """A raster's pixel grid: CRS, affine transform and size in pixels.

    Examples
    --------
    >>> from affine import Affine
    >>> g = Grid("EPSG:4326", Affine(0.5, 0, 100, 0, -0.5, 40), 4, 2)
    >>> g.bounds
    (100.0, 39.0, 102.0, 40.0)
    """

    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in the grid's CRS."""
        t = self.transform
        return (t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel width and height (positive), CRS units."""
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def is_geographic(self) -> bool:
        return CRS.from_user_input(self.crs).is_geographic


@dataclass(frozen=True)
class BandRef:
    """One band of one raster file: what a single read returns.

    ``path`` is what GDAL opens (a file, or ``NETCDF:"file":var``).
    """

    path: str
    band: int


@dataclass(frozen=True)
class RasterSpec:
    """A validated raster entry of the manifest.

    Attributes
    ----------
    name : str
        ``nep``, a covariate name or ``landcover``.
    entry : str
        The manifest's ``path`` as written (for messages).
    grid : Grid
        The common grid of every band.
    bands : dict
        Year to the bands of that year (several when a time series has
        sub-annual steps); the single key ``None`` for a static raster.
    nodata : tuple of float
        Values read as missing besides the file's own nodata.
    scale, offset : float
        ``value * scale + offset`` after the file's own packing.
    aggregate : {"mean", "sum"}
        How the time steps of a year combine, per pixel.
    per_area : bool
        Divide by the cell area in km2.
    files : tuple of str
        Every file read (for cache fingerprints).
    """

    name: str
    entry: str
    grid: Grid
    bands: Mapping[int | None, tuple[BandRef, ...]]
    nodata: tuple[float, ...] = ()
    scale: float = 1.0
    offset: float = 0.0
    aggregate: Literal["mean", "sum"] = "mean"
    per_area: bool = False
    files: tuple[str, ...] = ()

    @property
    def is_static(self) -> bool:
        """True when the raster has no time axis (one value for every year)."""
        return None in self.bands

    def years_in(self, years: list[int]) -> list[int | None]:
        """The keys of :attr:`bands` used for ``years`` (``[None]`` when static)."""
        if self.is_static:
            return [None]
        return [y for y in years if y in self.bands]

    def options(self) -> dict[str, Any]:
        """The reading options, as a JSON-ready dict (for cache keys)."""
        return {
            "nodata": list(self.nodata),
            "scale": self.scale,
            "offset": self.offset,
            "aggregate": self.aggregate,
            "per_area": self.per_area,
            "bands": {str(k): [(b.path, b.band) for b in v] for k, v in self.bands.items()},
            "crs": self.grid.crs,
        }


@dataclass(frozen=True)
class DerivedSpec:
    """A covariate computed from another one (``curvature: {derive: elevation}``)."""

    name: str
    source: str


@dataclass(frozen=True)
class LandcoverSpec:
    """An optional land-cover raster whose ``exclude`` classes are removed from rings."""

    raster: RasterSpec
    exclude: tuple[int, ...]


@dataclass(frozen=True)
class MinesSpec:
    """Where the mine polygons are: file, layer, ISO3 column, optional id column."""

    path: Path
    layer: str | None = None
    iso3_column: str = "ISO3_CODE"
    id_column: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A validated ``sources.yml``: every path resolved, every raster's header read.

    Build it with :func:`load_manifest`.
    """

    path: Path
    years: tuple[int, int]
    baseline_year: int | None
    mines: MinesSpec
    nep: RasterSpec
    covariates: Mapping[str, RasterSpec | DerivedSpec]
    landcover: LandcoverSpec | None = None
    truth: Mapping[str, Path] | None = None

    @property
    def folder(self) -> Path:
        """The manifest's folder (relative paths start there)."""
        return self.path.parent

    def rasters(self) -> Iterator[RasterSpec]:
        """Every raster entry: NEP, the covariates read from files, land cover."""
        yield self.nep
        yield from (s for s in self.covariates.values() if isinstance(s, RasterSpec))
        if self.landcover is not None:
            yield self.landcover.raster

    def check_years(self, years: list[int]) -> None:
        """Fail unless the manifest's NEP covers every year of ``years``."""
        missing = [y for y in years if y not in self.nep.bands]
        if missing:
            raise ManifestError(
                f"{self.path}: the run needs NEP for {missing[0]}-{missing[-1]} but the manifest "
                f"covers {self.years[0]}-{self.years[1]}: narrow the run's years or add the data"
            )

    def fingerprint(self) -> str:
        """A hash of every input file (path, size, modification time) and reading option.

        Files referenced by a VRT count too, so replacing a tile of a mosaic
        changes the fingerprint.
        """
        files = {str(self.mines.path)} | {f for spec in self.rasters() for f in spec.files}
        stats = [_file_stat(Path(f)) for f in sorted(_expand_vrts(files))]
        content = {
            "mines": [str(self.mines.path), self.mines.layer, self.mines.iso3_column, self.mines.id_column],
            "rasters": {s.name: s.options() for s in self.rasters()},
            "derived": {k: v.source for k, v in self.covariates.items() if isinstance(v, DerivedSpec)},
            "landcover_exclude": list(self.landcover.exclude) if self.landcover else None,
            "files": stats,
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _file_stat(path: Path) -> list[Any]:
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def _expand_vrts(files: set[str]) -> set[str]:
    """``files`` plus every file a VRT among them references (recursively)."""
    out, todo = set(), list(files)
    while todo:
        f = todo.pop()
        if f in out or not os.path.exists(f):
            continue
        out.add(f)
        if f.lower().endswith(".vrt"):
            for node in ET.parse(f).iter("SourceFilename"):
                src = node.text or ""
                if node.get("relativeToVRT") == "1":
                    src = os.path.join(os.path.dirname(f), src)
                todo.append(os.path.normpath(src))
    return out


# ------------------------------------------------------------------ manifest parsing


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Load and validate a ``sources.yml`` manifest.

    Parameters
    ----------
    path : path-like
        The manifest. Relative paths inside it are taken from its folder.

    Returns
    -------
    Manifest
        Every path resolved, every raster opened once (header only) to check
        it is readable, has a CRS and covers the years it should.

    Raises
    ------
    ManifestError
        One line naming the file and the fix: a missing or unknown key, an
        unknown covariate name, a missing year file, an unreadable raster, a
        raster with no CRS.

    Examples
    --------
    >>> m = load_manifest("data/synthetic/small/sources.yml")  # doctest: +SKIP
    >>> m.years, sorted(m.covariates)[:2]  # doctest: +SKIP
    ((2000, 2020), ['curvature', 'elevation'])
    """
    path = Path(path).resolve()
    raw = _read_yaml(path)
    unknown = sorted(str(k) for k in set(raw) - _TOP_KEYS)  # keys may be any YAML scalar
    if unknown:
        raise ManifestError(f"{path}: unknown key(s) {', '.join(unknown)}: use only {', '.join(sorted(_TOP_KEYS))}")
    for key in ("years", "mines", "nep", "covariates"):
        if key not in raw:
            raise ManifestError(f"{path}: missing key '{key}': add it ({_EXAMPLE})")
    years = _years(path, raw["years"], "years")
    baseline = raw.get("baseline_year")
    if baseline is not None and not (isinstance(baseline, int) and years[0] <= baseline < years[1]):
        raise ManifestError(f"{path}: baseline_year must be a year in [{years[0]}, {years[1]}), got {baseline!r}")
    nep = _raster_spec(path, "nep", raw["nep"], years, require_years=True)
    if nep.is_static:
        raise ManifestError(
            f"{path}: nep {nep.entry} has no time axis: use a {{year}} pattern or a NetCDF/Zarr with a time dimension"
        )
    landcover = _landcover_spec(path, raw["landcover"], years) if raw.get("landcover") is not None else None
    return Manifest(
        path=path,
        years=years,
        baseline_year=baseline,
        mines=_mines_spec(path, raw["mines"]),
        nep=nep,
        covariates=_covariate_specs(path, raw["covariates"], years),
        landcover=landcover,
        truth=_truth(path, raw.get("truth")),
    )


def _truth(path: Path, value: Any) -> dict[str, Path] | None:
    """The synthetic world's truth files (``{path: ..., json: ...}``), resolved; None for real data."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ManifestError(f"{path}: truth must be a mapping of names to files, got {value!r}")
    return {k: _resolve(path, v) for k, v in value.items()}


def resolve_manifest(params: RunParams) -> Manifest:
    """The manifest of a run: the synthetic world's (generated if missing) or ``params.sources``."""
    return load_manifest(_manifest_path(params))


def _manifest_path(params: RunParams) -> Path:
    """Where the run's ``sources.yml`` lies (the synthetic world generated first if missing)."""
    if params.sources != "synthetic":
        return Path(params.sources)
    from nepkit.synth import ensure_world  # local: only the synthetic source needs the generator

    return Path(ensure_world(preset=params.synthetic_preset, seed=params.seed))


def truth_table(params: RunParams) -> tuple[pd.DataFrame | None, str]:
    """The injected truth of the world a run reads (``truth.parquet``), if it has one.

    Every synthetic world names its truth files in the ``truth`` entry of its
    manifest; real data have none.

    Parameters
    ----------
    params : RunParams
        Uses ``sources``, ``synthetic_preset`` and ``seed``.

    Returns
    -------
    truth : pandas.DataFrame or None
        ``mine_id, year, true_loss, true_attainable_gain, ...`` (g C m-2 a-1), or
        None when the world has no truth.
    note : str
        Where it came from, or why there is none.
    """
    path = _truth_file(params, "path")
    if path is None:
        return None, "the run's sources name no truth table (real data): there is no truth to compare with"
    return pd.read_parquet(path), f"the truth table of the synthetic world ({shown(path)})"


def truth_meta(params: RunParams) -> dict[str, Any] | None:
    """The synthetic world's ``truth.json`` (driver weights, null indicators, ...); None for real data."""
    path = _truth_file(params, "json")
    return json.loads(path.read_text(encoding="utf-8")) if path is not None else None


def _truth_file(params: RunParams, key: str) -> Path | None:
    """One truth file the run's manifest names (its ``truth`` entry only: no raster is opened)."""
    manifest = _manifest_path(params)
    files = (_truth(manifest, _read_yaml(manifest).get("truth")) or {}) if manifest.is_file() else {}
    path = files.get(key)
    return path if path is not None and path.exists() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found: check the path, or use sources='synthetic'")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ManifestError(f"{path}: not valid YAML{line}: fix the syntax") from None
    if raw is None:
        raise ManifestError(f"{path}: the file is empty: write the keys years, mines, nep and covariates ({_EXAMPLE})")
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: expected a mapping of keys (years, mines, nep, covariates), got {type(raw).__name__}")
    return raw


def _years(path: Path, value: Any, key: str) -> tuple[int, int]:
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value)
    if not ok or value[0] > value[1]:
        raise ManifestError(f"{path}: {key} must be [first, last] (inclusive integers), got {value!r}")
    return int(value[0]), int(value[1])


def _entry(path: Path, name: str, value: Any, allowed: set[str]) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict):
        raise ManifestError(f"{path}: {name} must be a mapping such as {{path: ...}}, got {value!r}")
    unknown = sorted(str(k) for k in set(value) - allowed)
    if unknown:
        raise ManifestError(f"{path}: {name} has unknown option(s) {', '.join(unknown)}: use {', '.join(sorted(allowed))}")
    if "path" not in value:
        raise ManifestError(f"{path}: {name} lacks 'path': add path: <file> ({_EXAMPLE})")
    return value


def _mines_spec(path: Path, value: Any) -> MinesSpec:
    e = _entry(path, "mines", value, _MINES_KEYS)
    file = _resolve(path, e["path"])
    if not file.exists():
        raise ManifestError(f"{path}: mines file {file} not found: fix mines.path")
    return MinesSpec(file, e.get("layer"), e.get("iso3_column", "ISO3_CODE"), e.get("id_column"))


def _covariate_specs(path: Path, value: Any, years: tuple[int, int]) -> dict[str, RasterSpec | DerivedSpec]:
    if not isinstance(value, dict):
        raise ManifestError(f"{path}: covariates must be a mapping of name to {{path: ...}}")
    if "area_km2" in value:
        raise ManifestError(f"{path}: covariates.area_km2 is computed from the polygons: remove it")
    unknown = sorted(str(k) for k in set(value) - set(COVARIATES))
    if unknown:
        raise ManifestError(
            f"{path}: unknown covariate(s) {', '.join(unknown)}: the names are fixed: {', '.join(COVARIATES)}"
        )
    missing = [c for c in COVARIATES if c not in value]
    if missing:
        raise ManifestError(f"{path}: covariate(s) {', '.join(missing)} missing: add them ({_EXAMPLE})")
    specs: dict[str, RasterSpec | DerivedSpec] = {}
    for name in COVARIATES:
        entry = value[name]
        if isinstance(entry, dict) and "derive" in entry:
            specs[name] = _derived_spec(path, name, entry)
        else:
            specs[name] = _raster_spec(path, name, entry, years, require_years=False)
    return specs


def _derived_spec(path: Path, name: str, entry: dict[str, Any]) -> DerivedSpec:
    source = DERIVABLE.get(name)
    if source is None or entry != {"derive": source}:
        hint = f"{{derive: {source}}}" if source else "a {path: ...} entry"
        raise ManifestError(f"{path}: covariates.{name} cannot be derived as {entry!r}: use {hint}")
    return DerivedSpec(name, source)


def _landcover_spec(path: Path, value: Any, years: tuple[int, int]) -> LandcoverSpec:
    if not isinstance(value, dict) or "exclude" not in value:
        raise ManifestError(f"{path}: landcover needs path and exclude: [codes], e.g. {{path: lc.tif, exclude: [50, 80]}}")
    exclude = value["exclude"]
    if not isinstance(exclude, list) or not exclude or not all(isinstance(c, int) for c in exclude):
        raise ManifestError(f"{path}: landcover.exclude must be a non-empty list of integer class codes, got {exclude!r}")
    rest = {k: v for k, v in value.items() if k != "exclude"}
    raster = _raster_spec(path, "landcover", rest, years, require_years=False)
    if not raster.is_static:
        raster = _single_year(raster, years)
    return LandcoverSpec(raster, tuple(exclude))


def _single_year(spec: RasterSpec, years: tuple[int, int]) -> RasterSpec:
    """Land cover is one map: take the latest year not after the period's first (or the first)."""
    keys = sorted(k for k in spec.bands if k is not None)
    before = [k for k in keys if k <= years[0]]
    year = before[-1] if before else keys[0]
    return dataclasses.replace(spec, bands={None: spec.bands[year]})


def _resolve(manifest: Path, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{manifest}: a path must be a non-empty string, got {value!r}")
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else manifest.parent / p


def _raster_spec(
    manifest: Path, name: str, value: Any, years: tuple[int, int], *, require_years: bool
) -> RasterSpec:
    """Validate one raster entry: files exist, headers readable, one grid, a CRS."""
    label = name if name in ("nep", "landcover") else f"covariates.{name}"
    e = _entry(manifest, label, value, _RASTER_KEYS)
    band = e.get("band", 1)
    if isinstance(band, bool) or not isinstance(band, int) or band < 1:
        raise ManifestError(f"{manifest}: {label} band must be a positive integer (1 = the first band), got {band!r}")
    opts = _options(manifest, label, e)
    pattern = str(_resolve(manifest, e["path"]))
    if "{year}" in pattern:
        bands = _pattern_bands(manifest, label, pattern, e, years, require_years)
    else:
        bands = _file_bands(manifest, label, Path(pattern), e, years, require_years)
    refs = [r for refs in bands.values() for r in refs]
    grid = _common_grid(manifest, label, refs, e.get("crs"))
    if opts["per_area"] and not grid.is_geographic and CRS.from_user_input(grid.crs).linear_units not in ("metre", "meter"):
        raise ManifestError(f"{manifest}: {label} per_area needs a geographic or metre-based CRS: reproject the raster")
    files = tuple(sorted({_plain_file(r.path) for r in refs}))
    return RasterSpec(name=name, entry=str(e["path"]), grid=grid, bands=bands, files=files, **opts)


def _options(manifest: Path, label: str, e: dict[str, Any]) -> dict[str, Any]:
    nodata = e.get("nodata", [])
    nodata = nodata if isinstance(nodata, list) else [nodata]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in [*nodata, e.get("scale", 1.0), e.get("offset", 0.0)])
    if not numbers:
        raise ManifestError(f"{manifest}: {label} nodata, scale and offset must be numbers")
    aggregate = e.get("aggregate", "mean")
    if aggregate not in ("mean", "sum"):
        raise ManifestError(f"{manifest}: {label} aggregate must be 'mean' or 'sum', got {aggregate!r}")
    if not isinstance(e.get("per_area", False), bool):
        raise ManifestError(f"{manifest}: {label} per_area must be true or false")
    return {
        "nodata": tuple(float(v) for v in nodata),
        "scale": float(e.get("scale", 1.0)),
        "offset": float(e.get("offset", 0.0)),
        "aggregate": aggregate,
        "per_area": e.get("per_area", False),
    }


def _pattern_bands(
    manifest: Path, label: str, pattern: str, e: dict[str, Any], years: tuple[int, int], require: bool
) -> dict[int | None, tuple[BandRef, ...]]:
    """One file per year: every year the entry claims (within the manifest's) must exist."""
    first, last = _years(manifest, e["years"], f"{label}.years") if "years" in e else years
    step = e.get("step", 1)
    if not isinstance(step, int) or step < 1:
        raise ManifestError(f"{manifest}: {label}.step must be a positive integer, got {step!r}")
    wanted = [y for y in range(first, last + 1, step) if years[0] <= y <= years[1]]
    if require and wanted != list(range(years[0], years[1] + 1)):
        raise ManifestError(
            f"{manifest}: {label} must cover every year {years[0]}-{years[1]}: fix its years/step or the manifest's years"
        )
    if not wanted:
        raise ManifestError(f"{manifest}: {label} has no year inside {years[0]}-{years[1]}: fix its years")
    bands: dict[int | None, tuple[BandRef, ...]] = {}
    for year in wanted:
        file = Path(pattern.replace("{year}", str(year)))  # other braces are part of the name
        if not file.exists():
            raise ManifestError(
                f"{manifest}: {label} file for {year} not found: {file}: add it or narrow the years in the manifest"
            )
        gdal_path = _gdal_path(manifest, label, file, e.get("variable"))
        band_years = _time_years(manifest, label, file, e.get("variable"))
        if band_years is None:
            bands[year] = (BandRef(gdal_path, int(e.get("band", 1))),)
            continue
        steps = tuple(BandRef(gdal_path, i) for i, y in enumerate(band_years, start=1) if y == year)
        if not steps:
            raise ManifestError(f"{manifest}: {label} {file} has no time step in {year}: check the file or the pattern")
        bands[year] = steps
    return bands


def _file_bands(
    manifest: Path, label: str, file: Path, e: dict[str, Any], years: tuple[int, int], require: bool
) -> dict[int | None, tuple[BandRef, ...]]:
    """A single file: static (one band) or a time series (bands grouped by year)."""
    if not file.exists():
        raise ManifestError(f"{manifest}: {label} file {file} not found: fix its path")
    gdal_path = _gdal_path(manifest, label, file, e.get("variable"))
    band_years = _time_years(manifest, label, file, e.get("variable"))
    if band_years is None:
        return {None: (BandRef(gdal_path, int(e.get("band", 1))),)}
    bands: dict[int | None, list[BandRef]] = {}
    for i, year in enumerate(band_years, start=1):
        if years[0] <= year <= years[1]:
            bands.setdefault(int(year), []).append(BandRef(gdal_path, i))
    have = sorted(k for k in bands if k is not None)
    if require and have != list(range(years[0], years[1] + 1)):
        gap = sorted(set(range(years[0], years[1] + 1)) - set(have))
        raise ManifestError(
            f"{manifest}: {label} {file} has no time step in {gap[0]}"
            f"{'-' + str(gap[-1]) if len(gap) > 1 else ''}: narrow the manifest's years or use another file"
        )
    if not have:
        raise ManifestError(f"{manifest}: {label} {file} has no time step inside {years[0]}-{years[1]}")
    return {k: tuple(v) for k, v in bands.items()}


def _multidim_driver(file: Path) -> str | None:
    return _MULTIDIM.get(file.suffix.lower())


def _gdal_path(manifest: Path, label: str, file: Path, variable: str | None) -> str:
    """What GDAL opens: the file, or ``DRIVER:"file":variable`` for NetCDF/Zarr."""
    driver = _multidim_driver(file)
    if driver is None:
        if variable is not None:
            raise ManifestError(f"{manifest}: {label} 'variable' applies to NetCDF/Zarr only: remove it for {file.name}")
        return str(file)
    variable = variable or _only_variable(manifest, label, file)
    return f'{driver}:"{file}":{"/" if driver == "ZARR" else ""}{variable}'


def _open_dataset(manifest: Path, label: str, file: Path):
    import xarray as xr

    engine = "zarr" if _multidim_driver(file) == "ZARR" else None
    try:
        return xr.open_dataset(file, engine=engine, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    except ImportError:
        raise ManifestError(f"{manifest}: reading {file.name} needs the 'zarr' package: install it or convert to NetCDF") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{manifest}: {label} {file} is not readable ({exc}): check the file") from None


def _only_variable(manifest: Path, label: str, file: Path) -> str:
    with _open_dataset(manifest, label, file) as ds:
        grids = [v for v in ds.data_vars if ds[v].ndim >= 2]
    if len(grids) != 1:
        raise ManifestError(f"{manifest}: {label} {file.name} holds {', '.join(grids) or 'no grid'}: set 'variable'")
    return grids[0]


def _time_years(manifest: Path, label: str, file: Path, variable: str | None) -> list[int] | None:
    """Year of each band of a NetCDF/Zarr variable with a time dimension; None for other files."""
    if _multidim_driver(file) is None:
        return None
    variable = variable or _only_variable(manifest, label, file)
    with _open_dataset(manifest, label, file) as ds:
        if variable not in ds:
            raise ManifestError(f"{manifest}: {label} {file.name} has no variable {variable!r} (it has {', '.join(ds.data_vars)})")
        var = ds[variable]
        if var.ndim == 2:
            return None
        if var.ndim != 3 or var.dims[0] not in ds.coords or "time" not in var.dims[0].lower():
            raise ManifestError(
                f"{manifest}: {label} {file.name}:{variable} must have dims (time, y, x), has {var.dims}: select or reorder"
            )
        return [int(y) for y in var[var.dims[0]].dt.year.values]


def _plain_file(gdal_path: str) -> str:
    return gdal_path.split('"')[1] if '"' in gdal_path else gdal_path


def _common_grid(manifest: Path, label: str, refs: list[BandRef], crs_override: Any) -> Grid:
    """Open each distinct file once; all must be readable, share one grid and have a CRS."""
    grids: dict[str, Grid] = {}
    for path in dict.fromkeys(r.path for r in refs):
        grids[path] = _grid_of(manifest, label, path, max(r.band for r in refs if r.path == path), crs_override)
    first = next(iter(grids.values()))
    for path, grid in grids.items():
        if grid != first:
            raise ManifestError(
                f"{manifest}: {label} {_plain_file(path)} has another grid than {_plain_file(next(iter(grids)))}: "
                "give every year the same grid (gdalwarp -te/-tr)"
            )
    return first


def _grid_of(manifest: Path, label: str, path: str, band: int, crs_override: Any) -> Grid:
    try:
        with rasterio.open(path) as ds:
            if band > ds.count:
                raise ManifestError(f"{manifest}: {label} {_plain_file(path)} has {ds.count} band(s), not band {band}: fix 'band'")
            if ds.transform.b != 0 or ds.transform.d != 0:
                raise ManifestError(f"{manifest}: {label} {_plain_file(path)} is rotated: warp it to a north-up grid")
            crs = ds.crs
            transform, width, height = ds.transform, ds.width, ds.height
    except RasterioIOError as exc:
        raise ManifestError(
            f"{manifest}: {label} {_plain_file(path)} is not a readable raster ({str(exc).splitlines()[0]}): check the file"
        ) from None
    if crs_override is not None:
        try:
            crs = CRS.from_user_input(crs_override)
        except Exception:  # noqa: BLE001 - pyproj/rasterio raise several types
            raise ManifestError(f"{manifest}: {label} crs {crs_override!r} is not a CRS: use e.g. EPSG:4326") from None
    if crs is None or not crs.to_wkt():
        raise ManifestError(
            f"{manifest}: {label} {_plain_file(path)} has no CRS: set it in the file (gdal_edit.py -a_srs) "
            "or declare it in the manifest (crs: EPSG:4326)"
        )
    return Grid(crs.to_wkt(), transform, width, height)


# ---------------------------------------------------------------------- exclusions


@dataclass
class ExclusionReport:
    """An ordered record of what each step kept or excluded, and why.

    Examples
    --------
    >>> r = ExclusionReport()
    >>> r.add("read", 10, "mining polygons in the layer")
    >>> r.add("area", 3, "geodesic area below 1 km2", excluded=True)
    >>> r.to_frame()[["step", "count", "excluded"]].values.tolist()
    [['read', 10, False], ['area', 3, True]]
    """

    steps: list[tuple[str, int, str, bool]] = field(default_factory=list)
    repaired: int = 0

    def add(self, step: str, count: int, reason: str, *, excluded: bool = False) -> None:
        """Record a step: ``count`` items kept (``excluded=False``) or dropped."""
        self.steps.append((step, int(count), reason, excluded))

    def to_frame(self) -> pd.DataFrame:
        """The steps as a table: ``step, count, reason, excluded``."""
        return pd.DataFrame(self.steps, columns=["step", "count", "reason", "excluded"])


# --------------------------------------------------------------------------- mines


def read_mines(manifest: Manifest, params: RunParams) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, ExclusionReport]:
    """Read the mine polygons and keep the BRI mines of the run's region.

    Steps, each counted in the report: read the layer with pyogrio; repair
    invalid geometries (``make_valid``, polygonal part kept); drop empty
    geometries; keep the BRI partner countries; compute the geodesic area
    (WGS84) and keep ``area_km2 >= params.min_area_km2``; attach continent and
    subregion; keep the run's region.

    Parameters
    ----------
    manifest : Manifest
        From :func:`load_manifest`.
    params : RunParams
        Uses ``region`` and ``min_area_km2``.

    Returns
    -------
    mines : geopandas.GeoDataFrame
        ``mine_id, iso3, country, continent, subregion, area_km2, geometry``
        (EPSG:4326), sorted by ``mine_id``.
    mining : geopandas.GeoDataFrame
        Every repaired polygon of the layer (``mine_id, iso3, geometry``),
        whatever its country or area: the rings exclude all mining land.
    report : ExclusionReport
        Counts per step.

    Raises
    ------
    SourceError
        Unreadable file, missing layer, no CRS, no ISO3 column, duplicate ids,
        or no mine left in the region.

    Examples
    --------
    >>> mines, mining, report = read_mines(load_manifest(path), RunParams())  # doctest: +SKIP
    """
    mines, mining, report = bri_mines(manifest, min_area_km2=params.min_area_km2)
    mines = restrict_region(mines, params, report, source=manifest.mines.path)
    report.add("mines", len(mines), "mines kept")
    return mines, mining, report


def bri_mines(manifest: Manifest, *, min_area_km2: float) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, ExclusionReport]:
    """All BRI mines of at least ``min_area_km2`` (any region), the whole layer, the report.

    The step before :func:`restrict_region`; :func:`read_mines` does both.
    """
    report = ExclusionReport()
    mining = _read_layer(manifest.mines, report)
    bri = regions.bri_countries().set_index("iso3")
    in_bri = mining["iso3"].isin(bri.index)
    report.add("not_bri", int((~in_bri).sum()), "ISO3 missing or not a BRI partner", excluded=True)
    mines = mining[in_bri].copy()
    mines["area_km2"] = geodesic_area_km2(mines.geometry.values)
    small = mines["area_km2"] < min_area_km2
    report.add("area", int(small.sum()), f"geodesic area below {min_area_km2:g} km2", excluded=True)
    mines = mines[~small]
    info = bri.loc[mines["iso3"], ["name", "continent", "subregion"]].to_numpy()
    mines["country"], mines["continent"], mines["subregion"] = info.T if len(mines) else ([], [], [])
    columns = ["mine_id", "iso3", "country", "continent", "subregion", "area_km2", "geometry"]
    mines = gpd.GeoDataFrame(mines[columns], geometry="geometry", crs="EPSG:4326")
    return mines.sort_values("mine_id", ignore_index=True), mining, report


def restrict_region(
    mines: gpd.GeoDataFrame, params: RunParams, report: ExclusionReport, *, source: Any
) -> gpd.GeoDataFrame:
    """Keep the mines of ``params.region``; count the others; fail when none is left."""
    codes = regions.select(params.region)
    inside = mines["iso3"].isin(codes)
    report.add("region", int((~inside).sum()), f"outside region {params.region!r}", excluded=True)
    mines = mines[inside].reset_index(drop=True)
    if mines.empty:
        raise SourceError(
            f"{source}: no mine left in region {params.region!r} after filtering: "
            "choose another region, lower min_area_km2 or check the ISO3 codes of the layer"
        )
    return mines


def geodesic_area_km2(geoms: Any) -> np.ndarray:
    """Geodesic area on the WGS84 ellipsoid of lon/lat polygons, km2.

    Examples
    --------
    >>> import shapely
    >>> round(float(geodesic_area_km2([shapely.box(0, 0, 0.01, 0.01)])[0]), 4)
    1.2309
    """
    return np.array([abs(_GEOD.geometry_area_perimeter(g)[0]) / 1e6 for g in geoms], dtype=np.float64)


def _read_layer(spec: MinesSpec, report: ExclusionReport) -> gpd.GeoDataFrame:
    """Every polygon of the layer: ``mine_id, iso3, geometry`` (EPSG:4326, repaired)."""
    info = _layer_info(spec)
    columns = [spec.iso3_column] + ([spec.id_column] if spec.id_column else [])
    for col in columns:
        if col not in info["fields"]:
            key = "iso3_column" if col == spec.iso3_column else "id_column"
            raise SourceError(
                f"{spec.path}: the layer has no column {col!r} (it has {', '.join(info['fields'])}): "
                f"set mines.{key} in the manifest"
            )
    frame = pyogrio.read_dataframe(spec.path, layer=spec.layer, columns=columns, fid_as_index=True)
    report.add("read", len(frame), f"polygons in {spec.path.name}")
    ids = frame[spec.id_column] if spec.id_column else pd.Series(frame.index, index=frame.index)
    if not pd.api.types.is_integer_dtype(ids):
        raise SourceError(f"{spec.path}: mine ids ({spec.id_column}) are not integers: set mines.id_column to an integer column")
    if ids.duplicated().any():
        raise SourceError(f"{spec.path}: mine ids are not unique: set mines.id_column to a unique column")
    iso3 = frame[spec.iso3_column].astype("string").str.strip().str.upper()
    geoms = frame.geometry.to_crs("EPSG:4326").values if frame.crs and not frame.crs.equals("EPSG:4326") else frame.geometry.values
    geoms, repaired = _repair(np.asarray(geoms, dtype=object))
    report.repaired = repaired
    report.add("repaired", repaired, "invalid geometries repaired (make_valid, polygonal part kept)")
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    report.add("empty", int(empty.sum()), "empty or non-polygonal geometry", excluded=True)
    out = gpd.GeoDataFrame(
        {"mine_id": ids.to_numpy().astype(np.int64), "iso3": iso3.to_numpy()}, geometry=geoms, crs="EPSG:4326"
    )
    return out[~empty].reset_index(drop=True)


def _layer_info(spec: MinesSpec) -> dict[str, Any]:
    try:
        layers = pyogrio.list_layers(spec.path)[:, 0]
        if spec.layer is None and len(layers) > 1:
            raise SourceError(f"{spec.path}: holds layers {', '.join(layers)}: set mines.layer in the manifest")
        info = pyogrio.read_info(spec.path, layer=spec.layer)
    except pyogrio.errors.DataLayerError:
        raise SourceError(f"{spec.path}: no layer {spec.layer!r} (layers: {', '.join(layers)}): set mines.layer") from None
    except pyogrio.errors.DataSourceError as exc:
        reason = str(exc).splitlines()[0].split("; It might help")[0]  # drop GDAL's hint about driver prefixes
        raise SourceError(f"{spec.path}: not a readable vector file ({reason}): check the file "
                          "(a GeoPackage, shapefile or any format GDAL reads)") from None
    if not info.get("crs"):
        raise SourceError(
            f"{spec.path}: the layer has no CRS: assign one (ogr2ogr -a_srs EPSG:4326 out.gpkg {spec.path.name})"
        )
    info["fields"] = list(info["fields"])
    return info


def _repair(geoms: np.ndarray) -> tuple[np.ndarray, int]:
    """Make invalid geometries valid, keeping their polygonal part; count them."""
    present = ~shapely.is_missing(geoms)
    invalid = present & ~shapely.is_valid(geoms)
    out = geoms.copy()
    out[invalid] = shapely.make_valid(geoms[invalid])
    not_polygonal = present & ~np.isin(shapely.get_type_id(out), (3, 6))
    for i in np.flatnonzero(not_polygonal):
        out[i] = _polygonal(out[i])
    return out, int(invalid.sum())


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return shapely.Polygon()
    return shapely.union_all(parts) if len(parts) > 1 else parts[0]
