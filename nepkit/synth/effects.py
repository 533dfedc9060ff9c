"""The truth: indicators, attainable gain and the mining effect of every mine.

A mine's *deficit* ``D_i(t)`` (g C m-2 a-1, positive = the mine's NEP lies
that far below the undisturbed NEP of the same place) is subtracted from every
pixel the polygon touches. The difference-in-differences of the NEP-change
stage then estimates ``true_loss_i(t) = D_i(t) - D_i(2000)`` (loss = W - P,
positive = NEP loss). See the package docstring for the trajectories.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from nepkit.synth import constants as C
from nepkit.synth.districts import district
from nepkit.synth.fields import World
from nepkit.synth.lattice import Points

__all__ = ["indicators_at", "attainable_gain", "deficits", "truth_tables", "truth_panel", "YEARS", "CLASSES"]

YEARS = np.arange(C.YEARS[0], C.YEARS[1] + 1)
CLASSES = tuple(C.CLASS_SHARES)


def indicators_at(world: World, lon: np.ndarray, lat: np.ndarray, area_km2: np.ndarray) -> tuple[pd.DataFrame, World]:
    """The indicators at the mines' centroids (the truth's view of Table 1).

    Returns the table (``curvature`` is left out: the pipeline derives it from
    the DEM; it has no effect) and the world with its SPEI standardisation set
    from the mines' precipitation.
    """
    pts = Points(np.asarray(lon), np.asarray(lat))
    elevation = world.elevation(pts)
    tmean = world.tmean(pts, elevation)
    log_p = world.log_precip(pts)
    world = dataclasses.replace(world, wet_mean=float(log_p.mean()), wet_sd=float(log_p.std()))
    tmax, tmin = world.tmax_tmin(pts, tmean)
    precip = np.exp(log_p)
    pop = world.pop_density(pts)
    table = pd.DataFrame({
        "spei": np.mean([world.spei(pts, y, log_p) for y in YEARS], axis=0),
        "precip": precip,
        "tmax": tmax,
        "tmin": tmin,
        "gpp": world.gpp(pts, precip, tmean),
        "soc": world.soc(pts),
        "elevation": elevation,
        "area_km2": np.asarray(area_km2),
        "pop_density": pop,
        "gdp": world.gdp(pts, pop),
    })
    table["nep_background"] = world.nep_background(pts, table["gpp"].values)
    return table, world


def attainable_gain(rng: np.random.Generator, ind: pd.DataFrame) -> tuple[np.ndarray, dict]:
    """True attainable gain per mine (g C m-2 a-1) and the standardisation used.

    ``G = softplus(GAIN_CENTRE + sum_k w_k z_k + e)`` with ``z_k`` the indicator
    ``k`` after its transform, standardised over all mines, ``w_k`` from
    ``DRIVER_WEIGHTS`` and ``e ~ N(0, GAIN_NOISE_SD)``.
    """
    lin = np.full(len(ind), C.GAIN_CENTRE)
    scale = {}
    for name, weight in C.DRIVER_WEIGHTS.items():
        if name not in ind:
            scale[name] = None
            continue
        x = ind[name].to_numpy(float)
        x = np.log(x) if C.DRIVER_TRANSFORMS[name] == "log" else x
        mean, sd = float(x.mean()), float(x.std())
        scale[name] = {"mean": mean, "sd": sd}
        lin += weight * (x - mean) / sd
    lin += rng.normal(0, C.GAIN_NOISE_SD, len(ind))
    return C.GAIN_SOFTNESS * np.logaddexp(0.0, lin / C.GAIN_SOFTNESS), scale


def _ramp(start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """(n, years) linear ramp from 0 before ``start`` to 1 after ``length`` years."""
    return np.clip((YEARS[None, :] - start[:, None] + 1) / length[:, None], 0.0, 1.0)


def _year_draw(rng, n: int, spec, boost_from: int | None = None) -> np.ndarray:
    first, last, growth = spec[0], spec[1], spec[2]
    years = np.arange(first, last + 1)
    w = np.maximum(1.0 + growth * (years - first), 0.05)
    if boost_from is not None:
        w = w * np.where(years >= boost_from, spec[3], 1.0)
    return rng.choice(years, size=n, p=w / w.sum())


def _classes(rng, districts: pd.Series) -> np.ndarray:
    base = np.array([C.CLASS_SHARES[c] for c in CLASSES])
    restored = CLASSES.index("restored")
    out = np.empty(len(districts), dtype=object)
    for name in sorted(districts.unique()):
        idx = np.flatnonzero((districts == name).values)
        p = base.copy()
        p[restored] *= district(name).restore
        out[idx] = np.asarray(CLASSES, dtype=object)[rng.choice(len(CLASSES), size=len(idx), p=p / p.sum())]
    return out


def deficits(rng: np.random.Generator, classes: np.ndarray, background: np.ndarray,
             gain: np.ndarray) -> np.ndarray:
    """The deficit ``D_i(t)`` (n, years), g C m-2 a-1, of each mine by its class."""
    n = len(classes)
    full = np.maximum(background, 0.0) + C.SPOIL_SOURCE
    d0 = rng.beta(*C.DISTURBED_2000, n) * full
    out = np.repeat(d0[:, None], len(YEARS), axis=1)
    is_ = {c: classes == c for c in CLASSES}

    m = is_["new"]
    onset = _year_draw(rng, n, C.NEW_ONSET_YEARS, boost_from=2013)
    ramp = _ramp(onset, rng.integers(C.NEW_RAMP_YEARS[0], C.NEW_RAMP_YEARS[1] + 1, n))
    out[m] = (rng.beta(*C.NEW_DEPTH, n) * full)[m, None] * ramp[m]

    m = is_["expanding"]
    onset = rng.integers(C.EXPANSION_ONSET_YEARS[0], C.EXPANSION_ONSET_YEARS[1] + 1, n)
    ramp = _ramp(onset, rng.integers(C.EXPANSION_RAMP_YEARS[0], C.EXPANSION_RAMP_YEARS[1] + 1, n))
    extra = rng.beta(*C.EXPANSION_DEPTH, n) * (full - d0)
    out[m] += extra[m, None] * ramp[m]

    m = is_["restored"]
    start = _year_draw(rng, n, C.RESTORATION_START_YEARS)
    ramp = _ramp(start, rng.integers(C.RESTORATION_RAMP_YEARS[0], C.RESTORATION_RAMP_YEARS[1] + 1, n))
    realized = gain * rng.normal(1.0, C.REALIZATION_SD, n)
    out[m] -= realized[m, None] * ramp[m]

    m = is_["recovering"]
    start = rng.integers(C.RECOVERY_START_YEARS[0], C.RECOVERY_START_YEARS[1] + 1, n)
    ramp = _ramp(start, rng.integers(C.RECOVERY_RAMP_YEARS[0], C.RECOVERY_RAMP_YEARS[1] + 1, n))
    out[m] -= (C.RECOVERY_FRACTION * gain)[m, None] * ramp[m]
    return out


def truth_tables(mines: pd.DataFrame, world: World, seed: int) -> tuple[pd.DataFrame, np.ndarray, dict, World]:
    """Per-mine truth, the deficit matrix and the truth's metadata.

    Returns
    -------
    per_mine : pandas.DataFrame
        ``mine_id, district, mine_class, nep_background, true_attainable_gain``
        and the indicators at the centroid.
    deficit : numpy.ndarray
        (n_mines, n_years) deficits, g C m-2 a-1, rows in mine order.
    meta : dict
        Standardisation of the indicators, class counts.
    world : World
        With its SPEI standardisation set.
    """
    ind, world = indicators_at(world, mines["lon"].values, mines["lat"].values, mines["area_km2"].values)
    gain, scale = attainable_gain(np.random.default_rng([seed, 201]), ind)
    rng = np.random.default_rng([seed, 202])
    classes = _classes(rng, mines["district"])
    deficit = deficits(rng, classes, ind["nep_background"].values, gain)
    per_mine = pd.concat([
        pd.DataFrame({"mine_id": mines["mine_id"].values, "district": mines["district"].values,
                      "mine_class": classes.astype(str), "true_attainable_gain": gain}),
        ind,
    ], axis=1)
    meta = {"standardisation": scale, "class_counts": per_mine["mine_class"].value_counts().sort_index().to_dict()}
    return per_mine, deficit, meta, world


def truth_panel(per_mine: pd.DataFrame, deficit: np.ndarray) -> pd.DataFrame:
    """``truth.parquet``: one row per mine and year.

    Columns: ``mine_id, year, district, mine_class, true_deficit, true_loss,
    true_attainable_gain`` (g C m-2 a-1; ``true_loss = D(t) - D(2000)``,
    positive = NEP loss, the sign of ``loss = W - P``).
    """
    n, t = deficit.shape
    base = np.flatnonzero(YEARS == C.BASELINE_YEAR)[0]
    return pd.DataFrame({
        "mine_id": np.repeat(per_mine["mine_id"].to_numpy(np.int64), t),
        "year": np.tile(YEARS.astype(np.int64), n),
        "district": np.repeat(per_mine["district"].to_numpy(str), t),
        "mine_class": np.repeat(per_mine["mine_class"].to_numpy(str), t),
        "true_deficit": deficit.ravel(),
        "true_loss": (deficit - deficit[:, [base]]).ravel(),
        "true_attainable_gain": np.repeat(per_mine["true_attainable_gain"].to_numpy(float), t),
    })
