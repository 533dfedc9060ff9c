"""Every constant of the synthetic world, with its unit and its justification.

Each constant is a module attribute (used by the generator) and a row of
:func:`constants_table` (shown in the data chapter). ``basis`` says where the
value comes from:

``paper``
    follows a number Chen et al. (2025) report (``data/paper_reported.yml``) or
    the design contract built on it;
``literature``
    a textbook or product value (units, resolutions, physical rates);
``design``
    chosen to give the world the structure a method can get wrong;
``calibrated``
    tuned so that the world's aggregates land near the paper's (the
    benchmark ``benchmarks/synth.py`` prints them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["Constant", "constants_table"]


@dataclass(frozen=True)
class Constant:
    """A named constant: value, unit, basis (paper/literature/design/calibrated), reason."""

    name: str
    value: Any
    unit: str
    basis: str
    why: str


_REGISTRY: dict[str, Constant] = {}


def _c(name: str, value: Any, unit: str, basis: str, why: str) -> Any:
    _REGISTRY[name] = Constant(name, value, unit, basis, why)
    return value


def constants_table() -> pd.DataFrame:
    """All constants as a table: ``name, value, unit, basis, why``.

    Examples
    --------
    >>> from nepkit.synth.constants import constants_table
    >>> t = constants_table()
    >>> t.loc[t.name == "NEP_PER_DEGREE", "value"].item()
    240
    """
    return pd.DataFrame([c.__dict__ for c in _REGISTRY.values()])


# --- Time --------------------------------------------------------------------------
YEARS = _c("YEARS", (2000, 2020), "year", "paper", "the study period, both ends included (sec. 1.2)")
BASELINE_YEAR = _c("BASELINE_YEAR", 2000, "year", "paper", "the reference year of eqs. 1-2 (sec. 1.4.1)")

# --- Earth geometry ----------------------------------------------------------------
KM_PER_DEG_LAT = _c("KM_PER_DEG_LAT", 110.574, "km per degree", "literature", "WGS84 meridian degree at the equator")
KM_PER_DEG_LON = _c("KM_PER_DEG_LON", 111.320, "km per degree", "literature", "WGS84 parallel degree at the equator, times cos(latitude)")

# --- Mines ---------------------------------------------------------------------------
MEAN_AREA_KM2 = _c(
    "MEAN_AREA_KM2", 3.125, "km2", "paper",
    "mean area of mines of at least 1 km2: 30,000 km2 over 9,600 mines (DESIGN.md section 2)",
)
AREA_LOG_SD = _c(
    "AREA_LOG_SD", 1.0, "ln km2", "design",
    "spread of the lognormal polygon areas; Maus et al. (2022) polygons span three orders of magnitude",
)
AREA_RANGE_KM2 = _c(
    "AREA_RANGE_KM2", (0.05, 150.0), "km2", "design",
    "smallest and largest polygon; the largest open-pit complexes reach a few hundred km2",
)
SMALL_PER_MINE = _c(
    "SMALL_PER_MINE", 0.8, "polygons < 1 km2 per polygon >= 1 km2", "design",
    "most Maus v2 polygons are small (44,929 polygons, mean 2.26 km2); the area filter must drop them",
)
TOUCH_SHARE = _c(
    "TOUCH_SHARE", 0.03, "share of mines", "design",
    "mines of at least SPLIT_MIN_AREA_KM2 cut in two adjacent polygons (pit and dump digitised apart)",
)
SPLIT_MIN_AREA_KM2 = _c("SPLIT_MIN_AREA_KM2", 2.4, "km2", "design", "only mines whose halves stay above 1 km2 are split")
COASTAL_SHARE = _c(
    "COASTAL_SHARE", 0.05, "share of a coastal district's mines", "design",
    "mines placed within COAST_BAND_KM of the coast, so their reference ring reaches the sea (nodata)",
)
COAST_SEARCH_KM = _c(
    "COAST_SEARCH_KM", 60.0, "km", "design",
    "coastal mines are sought on the shore up to this far beyond the district disc (port-side mines)",
)
COASTAL_MAX_AREA_KM2 = _c("COASTAL_MAX_AREA_KM2", 10.0, "km2", "design", "only mines smaller than this are placed on the coast")
COAST_BAND_KM = _c(
    "COAST_BAND_KM", (0.5, 2.5), "km beyond the mine's radius", "design",
    "distance of coastal mines from the shore: the 1-5 km ring crosses it",
)
BORDER_MARGIN_KM = _c(
    "BORDER_MARGIN_KM", 0.3, "km", "design", "a polygon lies at least this far inside its country (110m boundaries)",
)
PLACEMENT_GAP_KM = _c(
    "PLACEMENT_GAP_KM", 0.25, "km", "design", "least gap between the bounding circles of two mines that do not touch",
)
RADIUS_SCALE = _c(
    "RADIUS_SCALE", 0.8, "", "design",
    "shrinks the districts' nominal radii: mines then cover ~5 % of a district disc and up to ~30 % of its "
    "sub-clusters, so rings often meet other mines (and rasters stay small)",
)
SUBCLUSTER_SPREAD = _c(
    "SUBCLUSTER_SPREAD", (0.12, 0.30), "fraction of district radius", "design",
    "standard deviation of the Gaussian sub-clusters (mining towns, basins) inside a district",
)
SUBCLUSTERS = _c(
    "SUBCLUSTERS", (120, 2, 10), "(polygons per sub-cluster, least, most)", "design",
    "a district has one sub-cluster per 120 polygons, 2 to 10 of them, centred within 0.7 of its radius",
)
SCATTER_SHARE = _c(
    "SCATTER_SHARE", 0.15, "share of candidates", "design", "candidate sites spread uniformly over the district disc",
)
N_VERTICES = _c("N_VERTICES", 18, "vertices", "design", "polygon vertices (digitised outlines)")
SHAPE_HARMONIC_MAX = _c(
    "SHAPE_HARMONIC_MAX", 0.12, "relative radius", "design",
    "amplitude of the 2nd-4th harmonics of a polygon's radius: irregular, still star-shaped (valid)",
)
ELONGATION_MAX = _c("ELONGATION_MAX", 2.2, "aspect ratio", "design", "elongated pits and dumps")

# --- Raster grids --------------------------------------------------------------------
NEP_PER_DEGREE = _c("NEP_PER_DEGREE", 240, "cells per degree", "paper", "the NEP product's 500 m grid (sec. 1.2): 1/240 degree")
CELL_DEG = _c(
    "CELL_DEG", 0.25, "degree", "design",
    "granularity of the raster tiles; every grid below divides it, so tiles of all layers align",
)
COVARIATE_PER_DEGREE = _c(
    "COVARIATE_PER_DEGREE",
    {"spei": 4, "precip": 24, "tmax": 24, "tmin": 24, "gpp": 20, "soc": 120, "elevation": 120,
     "pop_density": 120, "gdp": 120},
    "cells per degree", "literature",
    "near the products of Table 1: SPEIbase 0.5 deg (here 0.25), WorldClim-like 2.5', GPP 0.05 deg, "
    "GSOCmap, DEM, GHSL and the GDP grid at 30\"",
)
RASTER_MARGIN_KM = _c(
    "RASTER_MARGIN_KM", 10.0, "km", "design", "rasters reach this far beyond a district's mines (ring 5 km plus reads)",
)
NODATA = _c("NODATA", -9999.0, "", "design", "nodata of every raster but SPEI")
SPEI_NODATA = _c("SPEI_NODATA", 1e30, "", "literature", "SPEIbase marks oceans with 1e30")
BLOCK_SIZE = _c("BLOCK_SIZE", 256, "pixels", "design", "GeoTIFF internal tiles (zstd, floating-point predictor)")

# --- Climate and land covariates ---------------------------------------------------
BLEND_KM = _c(
    "BLEND_KM", 250.0, "km", "design",
    "district climates blend with Gaussian weights of this length: fields are continuous between districts",
)
LAPSE_RATE = _c("LAPSE_RATE", 6.5, "degC per km", "literature", "standard-atmosphere temperature lapse rate")
ELEVATION_OCTAVES = _c(
    "ELEVATION_OCTAVES", ((0.5, 0.6), (0.125, 0.35), (1 / 30, 0.2), (1 / 60, 0.1)),
    "(degree, fraction of relief)", "design",
    "relief from 50 km to 2 km wavelengths: curvature derived from the 30\" DEM is meaningful",
)
PRECIP_OCTAVES = _c(
    "PRECIP_OCTAVES", ((1.0, 0.25), (0.25, 0.12)), "(degree, sd of ln precip)", "design",
    "spatially autocorrelated precipitation around the district mean",
)
TEMP_NOISE_SD = _c("TEMP_NOISE_SD", 0.6, "degC", "design", "local mean-temperature anomaly (0.5 deg lattice)")
DTR_NOISE_SD = _c("DTR_NOISE_SD", 0.8, "degC", "design", "local anomaly of the diurnal range: tmax and tmin correlate but differ")
GPP_MAX = _c("GPP_MAX", 3300.0, "g C m-2 a-1", "literature", "GPP of humid tropical forest (Beer et al. 2010: ~3,000-3,500)")
GPP_PRECIP_SCALE = _c("GPP_PRECIP_SCALE", 1500.0, "mm a-1", "literature", "e-folding precipitation of GPP saturation")
GPP_TEMP_RANGE = _c(
    "GPP_TEMP_RANGE", (-10.0, 15.0), "degC", "literature",
    "mean temperature where GPP starts and where it stops being temperature-limited",
)
GPP_LOG_SD = _c("GPP_LOG_SD", 0.12, "sd of ln GPP", "design", "GPP anomaly (0.1 deg lattice) not explained by climate")
SOC_OCTAVES = _c(
    "SOC_OCTAVES", ((0.25, 0.35), (1 / 30, 0.2)), "(degree, sd of ln SOC)", "design",
    "soil organic carbon varies independently of climate inside a district: SOC is a driver of its own",
)
POP_OCTAVES = _c("POP_OCTAVES", ((0.25, 0.9), (1 / 30, 0.6)), "(degree, sd of ln density)", "design", "towns and empty land")
GDP_LOG_SD = _c("GDP_LOG_SD", 0.3, "sd of ln GDP", "design", "regional income anomaly (0.5 deg lattice); GDP = people x income")
SPEI_WET_LOADING = _c(
    "SPEI_WET_LOADING", 0.6, "SPEI per sd of ln precip", "design",
    "period-mean SPEI follows standardised ln precipitation: a null indicator correlated with a driver",
)
SPEI_ANOMALY_LOADING = _c(
    "SPEI_ANOMALY_LOADING", 0.8, "SPEI per sd of the year anomaly", "design",
    "yearly climate anomaly; with SPEI_WET_LOADING the SPEI has unit variance (0.6^2 + 0.8^2 = 1)",
)
YEAR_OCTAVES = _c(
    "YEAR_OCTAVES", ((4.0, 0.6), (1.0, 0.8)), "(degree, weight)", "design",
    "yearly anomaly field: synoptic (400 km) and regional (100 km) patterns, shared by a mine and its ring",
)
SOC_HOLE_SHARE = _c("SOC_HOLE_SHARE", 0.004, "share of land cells", "design", "gaps of the soil map (nodata)")

# --- NEP -----------------------------------------------------------------------------
NEP_GPP_RATIO = _c(
    "NEP_GPP_RATIO", 0.13, "", "calibrated",
    "undisturbed NEP as a fraction of GPP (ecosystem carbon-use: NEP is ~5-15 % of GPP); sets the "
    "mean NEP of the mines near the paper's 1,900-2,700 Gg C over 30,000 km2 (about 60-90 g C m-2 a-1)",
)
NEP_OFFSET = _c("NEP_OFFSET", 10.0, "g C m-2 a-1", "design", "deserts are weak sources")
NEP_PATCH_OCTAVES = _c(
    "NEP_PATCH_OCTAVES", ((0.1, 20.0), (1 / 60, 12.0)), "(degree, g C m-2 a-1)", "design",
    "static landscape heterogeneity: mine and ring differ in level (removed by the difference-in-differences)",
)
NEP_TREND = _c(
    "NEP_TREND", (0.5, 1.0), "(mean, sd) g C m-2 a-2", "design",
    "greening trend field (1 deg lattice): common to a mine and its ring, to first order",
)
NEP_CLIMATE_SENS = _c(
    "NEP_CLIMATE_SENS", (8.0, 0.2), "(g C m-2 a-1, fraction of NEP) per SPEI unit", "design",
    "interannual response to the yearly climate anomaly; productive land swings more",
)
NEP_NOISE = _c(
    "NEP_NOISE", (12.0, 0.06), "(g C m-2 a-1, fraction of NEP)", "literature",
    "independent pixel-year error of the product (its cross-validated RMSE is of this order)",
)
NEP_QUANTUM = _c(
    "NEP_QUANTUM", 1 / 64, "g C m-2 a-1", "design",
    "NEP is stored in multiples of 1/64 (exact in binary floating point): the files compress to half",
)
CLOUD_SHARE = _c("CLOUD_SHARE", 0.015, "share of pixels per year", "design", "nodata blobs (gaps of the product)")
CLOUD_SPACING = _c("CLOUD_SPACING", 0.05, "degree", "design", "size of the nodata blobs (~5 km)")

# --- Mining effect -------------------------------------------------------------------
SPOIL_SOURCE = _c(
    "SPOIL_SOURCE", 100.0, "g C m-2 a-1", "literature",
    "bare spoil and exposed soil are net carbon sources (heterotrophic respiration of disturbed soil, "
    "~100-300 g C m-2 a-1 in the first years): full disturbance removes the NEP plus this",
)
CLASS_SHARES = _c(
    "CLASS_SHARES",
    {"new": 0.30, "expanding": 0.20, "stable": 0.05, "restored": 0.33, "recovering": 0.12},
    "share of mines", "calibrated",
    "trajectories 2000-2020 before the district's restoration propensity; give ~53 % of mines a net "
    "loss and ~47 % a gain (paper: 53.1 % / 46.9 %) and ~2,000 mines a mean gain above 100 g C m-2 a-1 "
    "(the paper's training sample)",
)
DISTURBED_2000 = _c(
    "DISTURBED_2000", (2.0, 3.0), "Beta(a, b) of the full disturbance", "calibrated",
    "share of a pre-2000 mine's full disturbance present in 2000 (mean 0.4): mapped mine polygons are partly "
    "vegetated; sets the mines' mean NEP near the paper's",
)
NEW_DEPTH = _c("NEW_DEPTH", (8.0, 2.0), "Beta(a, b) of the full disturbance", "design", "depth reached by a new mine (mean 0.8)")
EXPANSION_DEPTH = _c(
    "EXPANSION_DEPTH", (3.0, 2.0), "Beta(a, b) of the remaining vegetation", "design",
    "extra disturbance of an expanding mine (mean 0.6 of what was left)",
)
NEW_ONSET_YEARS = _c(
    "NEW_ONSET_YEARS", (2002, 2019, -0.04, 1.15), "(first, last, growth per year, factor from 2013)", "paper",
    "opening years of new mines: spread over the period, 15 % more per year after the Belt and Road "
    "Initiative (2013); with the early restorations the mines' NEP total peaks near 2007 and then falls "
    "by about a third (paper, Fig. 4: maximum 2007, decline 30.6 %)",
)
NEW_RAMP_YEARS = _c("NEW_RAMP_YEARS", (1, 4), "years", "design", "clearing a new mine takes 1-4 years")
EXPANSION_ONSET_YEARS = _c("EXPANSION_ONSET_YEARS", (2001, 2018), "years", "design", "expansions start any year")
EXPANSION_RAMP_YEARS = _c("EXPANSION_RAMP_YEARS", (3, 10), "years", "design", "expansions are slower")
RESTORATION_START_YEARS = _c(
    "RESTORATION_START_YEARS", (2001, 2008, -0.1), "(first, last, growth per year)", "paper",
    "restoration starts early in the period (fewer each year): the NEP total first rises, as in Fig. 4",
)
RESTORATION_RAMP_YEARS = _c(
    "RESTORATION_RAMP_YEARS", (2, 4), "years", "design",
    "assisted revegetation reaches its attainable gain in 2-4 years: restored mines show it in the data "
    "(their mean gain over 2001-2020 is ~80 % of it)",
)
REALIZATION_SD = _c(
    "REALIZATION_SD", 0.08, "fraction of the attainable gain", "design", "restored mines realise their attainable gain to within ~8 %",
)
RECOVERY_FRACTION = _c(
    "RECOVERY_FRACTION", 0.4, "fraction of the attainable gain", "design",
    "natural recovery of abandoned mines reaches only part of the attainable gain",
)
RECOVERY_START_YEARS = _c("RECOVERY_START_YEARS", (2001, 2012), "years", "design", "abandonment years of recovering mines")
RECOVERY_RAMP_YEARS = _c("RECOVERY_RAMP_YEARS", (12, 25), "years", "design", "natural recovery is slow")

# --- Attainable gain -------------------------------------------------------------------
DRIVER_WEIGHTS = _c(
    "DRIVER_WEIGHTS",
    {"soc": 50.0, "precip": 40.0, "gpp": 35.0, "tmax": 12.0, "elevation": -10.0, "area_km2": -8.0,
     "pop_density": -8.0, "spei": 0.0, "tmin": 0.0, "curvature": 0.0, "gdp": 0.0},
    "g C m-2 a-1 per sd of the (transformed) indicator", "paper",
    "SOC, precipitation and GPP drive the attainable gain most (paper sec. 2.3); four indicators have no "
    "effect, three of them correlated with a driver (SPEI-precip, tmin-tmax, GDP-population)",
)
DRIVER_TRANSFORMS = _c(
    "DRIVER_TRANSFORMS",
    {"soc": "log", "precip": "log", "gpp": "log", "tmax": "identity", "elevation": "identity",
     "area_km2": "log", "pop_density": "log", "spei": "identity", "tmin": "identity", "curvature": "identity",
     "gdp": "log"},
    "", "design", "skewed indicators act on their logarithm; each is then standardised over all mines",
)
GAIN_CENTRE = _c(
    "GAIN_CENTRE", 165.0, "g C m-2 a-1", "calibrated",
    "attainable gain of a mine with average indicators; restored mines then gain ~130 on average "
    "(paper: mean gain 133.7) and enough of them exceed the 100 g C m-2 a-1 training threshold",
)
GAIN_NOISE_SD = _c("GAIN_NOISE_SD", 15.0, "g C m-2 a-1", "design", "site factors no indicator captures")
GAIN_SOFTNESS = _c(
    "GAIN_SOFTNESS", 20.0, "g C m-2 a-1", "design",
    "the gain is softplus(linear predictor) with this scale: never negative, linear when large",
)
