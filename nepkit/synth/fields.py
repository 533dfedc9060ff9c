"""The continuous fields of the synthetic world: climate, land, people and NEP.

Every function takes a :class:`World` and a sampler (a raster :class:`Grid` or
the mines' :class:`Points`) and returns the field there, in real units. The
same function feeds the covariate rasters, the NEP rasters and the truth, so
they agree by construction. See the package docstring for the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from nepkit.synth import constants as C
from nepkit.synth.districts import District
from nepkit.synth.lattice import Grid, Points, noise

__all__ = ["World", "COVARIATE_UNITS"]

Sampler = Grid | Points

#: Units of the covariate rasters (written to truth.json and the manifest's comments).
COVARIATE_UNITS = {
    "spei": "unitless (standardised), one raster per year",
    "precip": "mm a-1 (mean annual precipitation)",
    "tmax": "degC (mean daily maximum temperature)",
    "tmin": "degC (mean daily minimum temperature)",
    "gpp": "g C m-2 a-1 (annual gross primary production)",
    "soc": "t C ha-1 (topsoil 0-30 cm organic carbon stock)",
    "elevation": "m above sea level",
    "pop_density": "people km-2",
    "gdp": "USD (2017 PPP) per 30 arc-second cell",
}

_LOG_ATTRS = {"precip", "soc", "pop", "gdp_pc"}
_BLEND_SPACING = C.CELL_DEG


def _softplus(x: np.ndarray, scale: float) -> np.ndarray:
    return scale * np.logaddexp(0.0, x / scale)


@dataclass(frozen=True)
class World:
    """The districts and seed that define every field; ``wet_mean``/``wet_sd``
    standardise ln precipitation for the SPEI (set from the mines)."""

    seed: int
    districts: tuple[District, ...]
    wet_mean: float = 0.0
    wet_sd: float = 1.0

    # --- building blocks ---------------------------------------------------------------
    def noise(self, s: Sampler, key: str, spacing: float) -> np.ndarray:
        """Unit-variance smooth noise of stream ``key``."""
        return noise(s, self.seed, key, spacing)

    def _octaves(self, s: Sampler, key: str, octaves) -> np.ndarray:
        return sum(amp * self.noise(s, f"{key}{k}", spacing) for k, (spacing, amp) in enumerate(octaves))

    def blend(self, s: Sampler, attr: str) -> np.ndarray:
        """District attribute ``attr`` blended with Gaussian weights of length BLEND_KM.

        Log-scale attributes (precip, soc, pop, gdp_pc) are blended as logarithms
        and returned as logarithms.
        """
        values = np.array([getattr(d, attr) for d in self.districts], dtype=float)
        if attr in _LOG_ATTRS:
            values = np.log(values)
        lon0 = np.array([d.lon for d in self.districts])
        lat0 = np.array([d.lat for d in self.districts])

        def nodes(i: np.ndarray, j: np.ndarray) -> np.ndarray:
            key = np.ravel(i).astype(np.int64) * (1 << 32) + np.ravel(j).astype(np.int64)
            key, inverse = np.unique(key, return_inverse=True)
            ii, jj = np.divmod(key + (1 << 31), 1 << 32)
            lon, lat = ii[:, None] * _BLEND_SPACING, (jj[:, None] - (1 << 31)) * _BLEND_SPACING
            dx = (lon - lon0) * C.KM_PER_DEG_LON * np.cos(np.radians((lat + lat0) / 2))
            dy = (lat - lat0) * C.KM_PER_DEG_LAT
            e = -(dx * dx + dy * dy) / C.BLEND_KM**2
            w = np.exp(e - e.max(axis=-1, keepdims=True))
            blended = (w * values).sum(axis=-1) / w.sum(axis=-1)
            return blended[inverse.ravel()].reshape(np.shape(i))

        return s.sample(nodes, _BLEND_SPACING)

    # --- land and climate ---------------------------------------------------------------
    def elevation(self, s: Sampler) -> np.ndarray:
        """Elevation, m (smoothly kept above 1 m)."""
        relief = self.blend(s, "relief") * self._octaves(s, "elevation", C.ELEVATION_OCTAVES)
        return 1.0 + _softplus(self.blend(s, "elevation") + relief - 1.0, 20.0)

    def tmean(self, s: Sampler, elevation: np.ndarray | None = None) -> np.ndarray:
        """Mean annual temperature, degC (district mean, lapse rate, local anomaly)."""
        elev = self.elevation(s) if elevation is None else elevation
        lapse = C.LAPSE_RATE * (elev - self.blend(s, "elevation")) / 1000.0
        return self.blend(s, "tmean") - lapse + C.TEMP_NOISE_SD * self.noise(s, "tmean", 0.5)

    def dtr(self, s: Sampler) -> np.ndarray:
        """Mean diurnal temperature range, degC."""
        return np.maximum(self.blend(s, "dtr") + C.DTR_NOISE_SD * self.noise(s, "dtr", 0.5), 2.0)

    def tmax_tmin(self, s: Sampler, tmean: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean daily maximum and minimum temperature, degC."""
        t = self.tmean(s) if tmean is None else tmean
        half = self.dtr(s) / 2
        return t + half, t - half

    def log_precip(self, s: Sampler) -> np.ndarray:
        """ln of mean annual precipitation (mm a-1)."""
        return self.blend(s, "precip") + self._octaves(s, "precip", C.PRECIP_OCTAVES)

    def precip(self, s: Sampler) -> np.ndarray:
        """Mean annual precipitation, mm a-1."""
        return np.exp(self.log_precip(s))

    def gpp(self, s: Sampler, precip: np.ndarray | None = None, tmean: np.ndarray | None = None) -> np.ndarray:
        """Annual GPP, g C m-2 a-1: water- and temperature-limited, with a local anomaly."""
        p = self.precip(s) if precip is None else precip
        t = self.tmean(s) if tmean is None else tmean
        t0, t1 = C.GPP_TEMP_RANGE
        f_water = 1.0 - np.exp(-p / C.GPP_PRECIP_SCALE)
        f_temp = np.clip((t - t0) / (t1 - t0), 0.05, 1.0)
        return C.GPP_MAX * f_water * f_temp * np.exp(C.GPP_LOG_SD * self.noise(s, "gpp", 0.1))

    def soc(self, s: Sampler) -> np.ndarray:
        """Topsoil organic carbon stock, t C ha-1."""
        return np.exp(self.blend(s, "soc") + self._octaves(s, "soc", C.SOC_OCTAVES))

    def soc_gap(self, s: Sampler) -> np.ndarray:
        """True where the soil map has no data (SOC_HOLE_SHARE of the land)."""
        return self.noise(s, "soc_gap", C.CLOUD_SPACING) > ndtri(1.0 - C.SOC_HOLE_SHARE)

    def pop_density(self, s: Sampler) -> np.ndarray:
        """Population density, people km-2."""
        return np.exp(self.blend(s, "pop") + self._octaves(s, "pop", C.POP_OCTAVES))

    def gdp(self, s: Sampler, pop_density: np.ndarray | None = None) -> np.ndarray:
        """GDP per 30 arc-second cell, USD (2017 PPP): people in the cell times income per head."""
        pop = self.pop_density(s) if pop_density is None else pop_density
        lat = s.lat
        cell_km2 = (C.KM_PER_DEG_LAT / 120) * (C.KM_PER_DEG_LON / 120) * np.cos(np.radians(lat))
        income = np.exp(self.blend(s, "gdp_pc") + C.GDP_LOG_SD * self.noise(s, "gdp", 0.5))
        return pop * cell_km2 * income

    def year_anomaly(self, s: Sampler, year: int) -> np.ndarray:
        """Unit-variance climate anomaly of ``year`` (shared by all layers)."""
        weights = np.array([w for _, w in C.YEAR_OCTAVES])
        field = sum(w * self.noise(s, f"year{year}_{k}", sp) for k, (sp, w) in enumerate(C.YEAR_OCTAVES))
        return field / np.sqrt((weights**2).sum())

    def spei(self, s: Sampler, year: int, log_precip: np.ndarray | None = None) -> np.ndarray:
        """SPEI of ``year`` (unitless): local wetness plus the year's anomaly."""
        lp = self.log_precip(s) if log_precip is None else log_precip
        wet = (lp - self.wet_mean) / self.wet_sd
        return C.SPEI_WET_LOADING * wet + C.SPEI_ANOMALY_LOADING * self.year_anomaly(s, year)

    # --- NEP ------------------------------------------------------------------------------
    def nep_background(self, s: Sampler, gpp: np.ndarray | None = None) -> np.ndarray:
        """Undisturbed NEP of the baseline climate, g C m-2 a-1."""
        g = self.gpp(s) if gpp is None else gpp
        return C.NEP_GPP_RATIO * g - C.NEP_OFFSET + self._octaves(s, "nep", C.NEP_PATCH_OCTAVES)

    def nep_trend(self, s: Sampler) -> np.ndarray:
        """Greening trend, g C m-2 a-2."""
        mean, sd = C.NEP_TREND
        return mean + sd * self.noise(s, "trend", 1.0)

    def cloud(self, s: Sampler, year: int) -> np.ndarray:
        """True on the nodata blobs of ``year``."""
        return self.noise(s, f"cloud{year}", C.CLOUD_SPACING) > ndtri(1.0 - C.CLOUD_SHARE)

    @staticmethod
    def climate_sensitivity(background: np.ndarray) -> np.ndarray:
        """NEP response per unit of the year anomaly, g C m-2 a-1."""
        base, frac = C.NEP_CLIMATE_SENS
        return base + frac * np.maximum(background, 0.0)

    @staticmethod
    def noise_sd(background: np.ndarray) -> np.ndarray:
        """Sd of the independent pixel-year error, g C m-2 a-1."""
        base, frac = C.NEP_NOISE
        return base + frac * np.abs(background)
