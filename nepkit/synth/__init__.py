"""The embedded synthetic world: the paper's data, simulated, with a known truth.

:func:`generate` writes a world, deterministically from a preset and a seed, in
the file formats of the real data (DESIGN.md section 2), so the pipeline reads
it through the same code path; :func:`ensure_world` keeps one in
``data/synthetic/<preset>-<seed>/`` and regenerates it only when its inputs
change. A world folder holds::

    sources.yml            the manifest (paths relative to it), plus a ``truth`` entry
    mines.gpkg             layer mining_polygons: fid (= mine id), ISO3_CODE, COUNTRY_NAME,
                           AREA (km2, geodesic on WGS84), MultiPolygon geometry, EPSG:4326
    nep/nep_{year}.vrt     annual NEP 2000-2020, g C m-2 a-1, 1/240 degree (500 m), float32,
                           nodata -9999; mosaics of nep/tiles/r*.tif (one band per year)
    covariates/            spei_{year}.vrt (0.25 deg, unitless, nodata 1e30 as SPEIbase),
                           precip (mm a-1), tmax and tmin (degC, mean daily extremes) at
                           1/24 deg; gpp (g C m-2 a-1) at 0.05 deg; soc (t C ha-1, 0-30 cm),
                           elevation (m), pop_density (people km-2), gdp (USD 2017 PPP per
                           30" cell) at 1/120 deg; curvature is derived from elevation
    truth.parquet          per mine and year: true_deficit, true_loss, true_attainable_gain,
                           district, mine_class
    truth.json             driver weights, null indicators, standardisation, units, flags
    world.json             preset, seed, fingerprint, scale figures (written last)

GeoTIFFs are tiled (256), zstd-compressed, without timestamps; the GeoPackage
gets a fixed "last change" date: the same seed gives byte-identical files.

Generative model
----------------
Every constant named here (CAPITALS) is defined, with its unit, its basis
(``paper``, ``literature``, ``design`` or ``calibrated``) and its reason, in
:mod:`nepkit.synth.constants`; :func:`constants_table` lists them all.

**Districts and mines.** Mines lie in 49 mining districts at their real
locations (:mod:`nepkit.synth.districts`: 44 in 30 Belt and Road countries,
from Shanxi, Ordos, Kuzbass and Kalimantan to the Atacama, the Copperbelt and
the Witwatersrand; 5 in Australia, the United States, India and Brazil, which
the BRI filter must drop). A preset's ``n_mines`` (paper: 9,600) mines of at
least 1 km2 are shared among its BRI districts by ``weight`` (other districts
get the same rate). Areas are lognormal (``AREA_LOG_SD``, within
``AREA_RANGE_KM2``) with mean ``MEAN_AREA_KM2`` above 1 km2, so the paper
preset has ~30,000 km2; ``SMALL_PER_MINE`` polygons below 1 km2 per mine come on
top. Outlines are irregular star shapes (``N_VERTICES``,
``SHAPE_HARMONIC_MAX``, ``ELONGATION_MAX``). Sites are drawn from Gaussian
sub-clusters (``SUBCLUSTERS``, ``SUBCLUSTER_SPREAD``) and a uniform scatter
(``SCATTER_SHARE``) in a disc of the district's radius times ``RADIUS_SCALE``;
each polygon lies inside its country's Natural Earth 1:110m polygon
(``BORDER_MARGIN_KM``) and clear of the others (``PLACEMENT_GAP_KM``).
``COASTAL_SHARE`` of a coastal district's mines lie within ``COAST_BAND_KM`` of
the shore, so their ring reaches the sea; ``TOUCH_SHARE`` of the mines are cut
in two adjacent polygons; ``n_invalid`` become self-intersecting bowties. Mine
ids are a random permutation.

**Fields.** Each field is a sum of smooth random octaves on lattices of given
spacing (:mod:`nepkit.synth.lattice`: seamless, the same at any resolution)
around district means blended over ``BLEND_KM``. Elevation = district mean +
relief x ``ELEVATION_OCTAVES``; mean temperature falls with ``LAPSE_RATE``
(+ ``TEMP_NOISE_SD``); tmax and tmin = mean +- half the diurnal range
(``DTR_NOISE_SD``), so they correlate strongly; ln precipitation has
``PRECIP_OCTAVES``; GPP = ``GPP_MAX`` x (1 - exp(-P / ``GPP_PRECIP_SCALE``)) x
a temperature ramp over ``GPP_TEMP_RANGE`` x a lognormal anomaly
(``GPP_LOG_SD``), so it correlates with precipitation; SOC, population have
their own octaves (``SOC_OCTAVES``, ``POP_OCTAVES``; SOC has
``SOC_HOLE_SHARE`` gaps); GDP per cell = people x income per head x a
lognormal anomaly (``GDP_LOG_SD``). The SPEI of a year =
``SPEI_WET_LOADING`` x standardised ln precipitation + ``SPEI_ANOMALY_LOADING``
x the year's climate anomaly (``YEAR_OCTAVES``, unit variance): it has mean ~0,
sd ~1 and its period mean correlates with precipitation.

**Attainable gain** (the truth of the potential stage). For mine i,
``G_i = s ln(1 + exp((GAIN_CENTRE + sum_k w_k z_ik + e_i) / s))`` with
``s = GAIN_SOFTNESS``, ``z_ik`` indicator k at the centroid after
``DRIVER_TRANSFORMS`` (logs of skewed ones) standardised over all mines,
``w_k`` = ``DRIVER_WEIGHTS`` (soc 50 > precip 40 > gpp 35 > tmax 12 >
elevation, area, population -8 to -10, as the paper ranks SOC, precipitation and
GPP first) and ``e_i ~ N(0, GAIN_NOISE_SD)``. SPEI, tmin, curvature and GDP
have weight 0: null indicators, three of them correlated with a driver.

**Mining effect.** Mine i's deficit ``D_i(t)`` (g C m-2 a-1 below the
undisturbed NEP) follows its class (``CLASS_SHARES``, restored share times the
district's restoration propensity). Full disturbance is the undisturbed NEP
plus ``SPOIL_SOURCE``. *new*: none in 2000, ramps (``NEW_RAMP_YEARS``) from an
onset in ``NEW_ONSET_YEARS`` to ``NEW_DEPTH`` of full; *expanding*, *stable*,
*restored*, *recovering* start partly disturbed (``DISTURBED_2000``);
expanding mines disturb part of the rest (``EXPANSION_*``); restored mines
lose ``G_i`` x N(1, ``REALIZATION_SD``) of deficit from a start in
``RESTORATION_START_YEARS`` over ``RESTORATION_RAMP_YEARS`` (they may end above
their surroundings, as young plantations do); recovering mines regain
``RECOVERY_FRACTION`` x ``G_i`` over ``RECOVERY_RAMP_YEARS``. The truth is
``true_loss_i(t) = D_i(t) - D_i(2000)``, the sign of ``loss = W - P``.

**NEP.** Pixel p in year t:
``NEP = B_p + trend_p (t - 2000) + k_p a_t(p) + sd_p eps - D_i(t)``, with the
undisturbed NEP ``B = NEP_GPP_RATIO x GPP - NEP_OFFSET + NEP_PATCH_OCTAVES``,
a greening trend (``NEP_TREND``), the year's climate anomaly ``a_t`` (the
SPEI's, so mine and ring share it) scaled by ``NEP_CLIMATE_SENS``, pixel-year
noise (``NEP_NOISE``), and ``D_i`` on every pixel polygon i touches (so a
coverage-weighted mean over the polygon holds exactly ``D_i``; the 1-5 km ring,
minus all mines, holds none). Values are stored in multiples of
``NEP_QUANTUM``; sea and cloud-like blobs (``CLOUD_SHARE``,
``CLOUD_SPACING``) are nodata. The difference-in-differences of eqs. 1-3 thus
recovers ``true_loss`` up to noise, gaps and neighbouring mines.

**Which values follow the paper.** The years, baseline, 500 m grid, the scale
(9,600 mines, 30,000 km2), the driver ranking; calibrated to the paper's
aggregates (paper preset, seed 42, from the truth): ``NEP_GPP_RATIO`` and
``DISTURBED_2000`` (mean NEP of the mines 64-95 g C m-2 a-1 over the years;
paper about 63-90), ``CLASS_SHARES`` (52 % of mines lose NEP, paper 53.1 %; ~2,000
mines gain more than 100), ``NEW_ONSET_YEARS`` and ``RESTORATION_START_YEARS``
(total NEP peaks in 2007 and falls by 32 %; paper 2007 and 30.6 %),
``GAIN_CENTRE`` (mean gain of gaining mines ~105; paper 133.7). Mean losses
(~83) stay below the paper's 151.2: its changes carry more noise than this
world's. ``benchmarks/synth.py`` prints these figures.

Examples
--------
>>> from nepkit.synth import PRESETS, generate
>>> sorted(PRESETS)
['autocorr', 'medium', 'nodata', 'paper', 'small', 'weak']
>>> manifest = generate("/tmp/world", preset="small", seed=1, progress=False)  # doctest: +SKIP
"""

from nepkit.synth.build import SynthError, ensure_world, fingerprint, generate, world_is_current
from nepkit.synth.constants import constants_table
from nepkit.synth.presets import PRESETS, Preset

__all__ = [
    "generate",
    "ensure_world",
    "fingerprint",
    "world_is_current",
    "PRESETS",
    "Preset",
    "SynthError",
    "constants_table",
]
