"""NEP change of mines against their reference rings (the paper's sections 1.4.1 and 2.1).

Equations 1-4 of the paper, per mine and year ``t``, with ``base`` the baseline
year (the first year unless ``baseline_year`` is set)::

    P_t = Q_t - Q_base        change of the mine's NEP          (eq. 1)
    W_t = O_t - O_base        change of the reference ring's NEP (eq. 2)
    L_t = W_t - P_t           NEP loss, positive = loss          (eq. 3)
    H_t = L_t * U             total loss of the mine, g C a-1    (eq. 4)

with ``Q`` and ``O`` the coverage-weighted mean NEP (g C m-2 a-1) of the mine
and of its ring, and ``U`` the mine's area in m2.

Sign convention. The paper prints equation 3 as ``S_t = P_t - W_t`` yet calls
``S_t`` the NEP *loss* and reads positive values of its figure 6 as losses. With
``P_t - W_t``, a mine whose NEP rose more than its ring's would show a positive
"loss". This module uses ``L_t = W_t - P_t``: positive means the mine lost NEP
relative to its undisturbed surroundings, which is what the paper's text and
figures mean.

The estimate is a before-after-control-impact (difference-in-differences) one:
the ring stands for what the mine would have done without mining, so the
estimate assumes that mine and ring would have followed parallel trends. A
common year effect (a drought, a wet year) cancels; a trend of the ring's own
(e.g. urban growth inside it) does not, and biases the loss by that trend.

Rules for missing data (stated, counted and reported by :func:`run`):

* a mine without a valid NEP of the mine *or* of the ring in the baseline year
  cannot be differenced: it has no row in ``nep_change`` and is counted;
* a mine-year without a valid NEP of the mine or of the ring has NaN ``P``,
  ``W`` and ``loss``; period statistics use the mine's valid years only;
* the yearly NEP total uses every mine with at least one valid year; a missing
  mine-year is filled by linear interpolation in time between the mine's valid
  years (the nearest valid year at the ends), so the set of mines stays the
  same in every year and a gap cannot show up as a drop of the total. The
  number of filled mine-years and the total over observed mine-years only are
  reported beside it.

Units: NEP per area in g C m-2 a-1, totals in Gg C (1 Gg = 1e9 g) per year.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import stats

from nepkit import regions
from nepkit.artifacts import artifact_path, read_artifact
from nepkit.io import update_summary, write_table
from nepkit.params import RunParams
from nepkit.sources import truth_table

__all__ = [
    "CLASSIFY_BY",
    "PHASES",
    "LOSS_BINS",
    "N_BOOT",
    "NepChangeError",
    "NepChangeResult",
    "compute_change",
    "classify",
    "nep_totals",
    "extremes",
    "phase_fits",
    "period_stats",
    "group_stats",
    "loss_distribution",
    "yearly_loss",
    "bootstrap",
    "classify_sensitivity",
    "truth_recovery",
    "run",
    "comparison",
]

#: Statistics that classify a mine over the period (``RunParams.classify_by``).
CLASSIFY_BY = ("mean", "final", "trend")
#: The paper's three phases of the NEP total (section 2.1): label, first, last year.
PHASES = (("2000-2006", 2000, 2006), ("2007-2014", 2007, 2014), ("2015-2020", 2015, 2020))
#: Bin edges (g C m-2 a-1) of the distribution of the losing mines' loss.
LOSS_BINS = (0.0, 100.0, 200.0, 400.0, 800.0, np.inf)
#: Upper bound (g C m-2 a-1) of the paper's class of small losses ("0-200").
SMALL_LOSS_MAX = 200.0
#: Bootstrap replicates (resampling mines) of the headline numbers.
N_BOOT = 1000
#: Two-sided level of the bootstrap percentile intervals.
CI_LEVEL = 0.95
G_PER_GG = 1e9
M2_PER_KM2 = 1e6
PANEL_COLUMNS = ("mine_id", "year", "nep_mine", "nep_ref")
CHANGE_COLUMNS = ("mine_id", "year", "P", "W", "loss", "loss_total_g")
TRUTH_COLUMNS = ("mine_id", "year", "true_loss")
ATTRIBUTES = ("iso3", "country", "continent", "subregion", "area_km2")

ClassifyBy = Literal["mean", "final", "trend"]


class NepChangeError(ValueError):
    """An input of the NEP-change stage is missing, malformed or inconsistent."""


# ----------------------------------------------------------------------------- checks


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise NepChangeError(
            f"{what} lacks column(s) {', '.join(missing)}; it needs {', '.join(columns)} "
            "(re-run the data chapter, which writes it)"
        )


def _check_unique(df: pd.DataFrame, what: str) -> None:
    dup = df.duplicated(["mine_id", "year"])
    if dup.any():
        first = df.loc[dup, ["mine_id", "year"]].iloc[0].tolist()
        raise NepChangeError(
            f"{what} has {int(dup.sum())} duplicate (mine_id, year) row(s), e.g. {first}; "
            "each mine and year must appear once"
        )


def _areas(mines: pd.DataFrame) -> pd.Series:
    """``area_km2`` indexed by ``mine_id``; an error on missing or non-positive areas."""
    _require(mines, ("mine_id", "area_km2"), "mines")
    area = mines.set_index("mine_id")["area_km2"].astype(float)
    bad = ~(area > 0)
    if bad.any():
        raise NepChangeError(
            f"mines has {int(bad.sum())} mine(s) with a missing or non-positive area_km2 "
            f"(e.g. mine_id {area.index[bad][0]}); the data chapter computes it from the polygons"
        )
    return area


def _wide(panel: pd.DataFrame, column: str) -> pd.DataFrame:
    """A mines x years matrix of ``column`` (NaN where the panel has no value)."""
    return panel.pivot(index="mine_id", columns="year", values=column).sort_index()


# ----------------------------------------------------------------------------- equations


def compute_change(panel: pd.DataFrame, mines: pd.DataFrame, *, baseline: int) -> pd.DataFrame:
    """Equations 1-4: the NEP change of each mine and year against the baseline.

    Parameters
    ----------
    panel : pandas.DataFrame
        ``mine_id, year, nep_mine, nep_ref`` (g C m-2 a-1; NaN where no valid pixel).
    mines : pandas.DataFrame
        ``mine_id, area_km2``; panel mines missing here are left out.
    baseline : int
        The reference year of equations 1-2.

    Returns
    -------
    pandas.DataFrame
        ``mine_id, year, P, W, loss, loss_total_g`` for every year but the
        baseline (whose change is zero by construction), sorted by mine and
        year: ``P = Q_t - Q_base``, ``W = O_t - O_base``, ``loss = W - P``
        (g C m-2 a-1, positive = NEP loss) and ``loss_total_g = loss * area``
        (g C a-1). Mines without a valid baseline of mine and ring have no row;
        mine-years without valid NEP have NaN.

    Raises
    ------
    NepChangeError
        On missing columns, duplicate rows or a baseline year absent from the panel.

    Examples
    --------
    >>> panel = pd.DataFrame({"mine_id": [1, 1], "year": [2000, 2001],
    ...                       "nep_mine": [100.0, 80.0], "nep_ref": [90.0, 95.0]})
    >>> mines = pd.DataFrame({"mine_id": [1], "area_km2": [2.0]})
    >>> compute_change(panel, mines, baseline=2000)[["P", "W", "loss", "loss_total_g"]].iloc[0].tolist()
    [-20.0, 5.0, 25.0, 50000000.0]
    """
    _require(panel, PANEL_COLUMNS, "nep_panel")
    _check_unique(panel, "nep_panel")
    if baseline not in set(panel["year"]):
        raise NepChangeError(
            f"nep_panel has no rows for the baseline year {baseline} (it holds "
            f"{int(panel['year'].min())}-{int(panel['year'].max())}); set baseline_year to a year it holds"
        )
    area = _areas(mines)
    years = sorted(panel["year"].unique())
    panel = panel[panel["mine_id"].isin(area.index)]
    q, o = (_wide(panel, column).reindex(columns=years) for column in ("nep_mine", "nep_ref"))
    valid = q[baseline].notna() & o[baseline].notna()
    q, o = q[valid], o[valid]
    p = q.sub(q[baseline], axis=0)
    w = o.sub(o[baseline], axis=0)
    parts = {"P": p, "W": w, "loss": w - p}
    long = pd.concat({k: v.drop(columns=baseline).stack() for k, v in parts.items()}, axis=1)
    long = long.reset_index()
    long["loss_total_g"] = long["loss"] * long["mine_id"].map(area).to_numpy() * M2_PER_KM2
    long = long.astype({"mine_id": "int64", "year": "int64"})
    return long[list(CHANGE_COLUMNS)].sort_values(["mine_id", "year"], ignore_index=True)


def classify(change: pd.DataFrame, *, by: ClassifyBy = "mean") -> pd.DataFrame:
    """The period statistic of each mine's loss and its status, loss or gain.

    Parameters
    ----------
    change : pandas.DataFrame
        ``mine_id, year, loss`` (as from :func:`compute_change`: the baseline
        year excluded).
    by : {"mean", "final", "trend"}
        ``"mean"`` (default): the mean loss over the mine's valid years after
        the baseline; ``"final"``: the loss of the table's last year;
        ``"trend"``: the Theil-Sen slope of loss on year times
        ``(n_years - 1)``, with ``n_years`` the years the table spans, i.e. the
        loss the trend implies across the period.

    Returns
    -------
    pandas.DataFrame
        ``mine_id, loss_stat, status``: ``loss_stat`` in g C m-2 a-1 (positive =
        loss; the observed gain is ``-loss_stat``), ``status`` ``"loss"`` if
        ``loss_stat > 0`` else ``"gain"``. Mines whose statistic cannot be
        computed (no valid year; for ``"final"`` a missing last year; for
        ``"trend"`` fewer than two valid years) are left out: callers count them.

    Examples
    --------
    >>> change = pd.DataFrame({"mine_id": [1, 1, 2, 2], "year": [2001, 2002] * 2,
    ...                        "loss": [10.0, 20.0, -5.0, -15.0]})
    >>> classify(change, by="mean")
       mine_id  loss_stat status
    0        1       15.0   loss
    1        2      -10.0   gain
    """
    if by not in CLASSIFY_BY:
        raise NepChangeError(f"by must be one of {', '.join(CLASSIFY_BY)}, got {by!r}")
    _require(change, ("mine_id", "year", "loss"), "nep_change")
    valid = change.loc[change["loss"].notna(), ["mine_id", "year", "loss"]]
    if by == "mean":
        stat = valid.groupby("mine_id")["loss"].mean()
    elif by == "final":
        stat = valid[valid["year"] == change["year"].max()].set_index("mine_id")["loss"]
    else:
        span = change["year"].max() - change["year"].min()
        stat = pd.Series({m: _theil_sen_slope(g) for m, g in valid.groupby("mine_id")}, dtype=float) * span
    stat = stat.dropna().sort_index()
    out = pd.DataFrame({"mine_id": stat.index.astype("int64"), "loss_stat": stat.to_numpy(dtype=float)})
    out["status"] = np.where(out["loss_stat"] > 0, "loss", "gain")
    return out


def _theil_sen_slope(g: pd.DataFrame) -> float:
    """Theil-Sen slope of ``loss`` on ``year`` (NaN with fewer than two years)."""
    if len(g) < 2:
        return np.nan
    return float(stats.theilslopes(g["loss"].to_numpy(), g["year"].to_numpy()).slope)


# ----------------------------------------------------------------------------- NEP totals


def _filled_nep(panel: pd.DataFrame, years: Sequence[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The mines x years NEP matrix with gaps interpolated, and the mask of filled cells.

    Mines without any valid year are dropped.
    """
    q = _wide(panel, "nep_mine").reindex(columns=list(years))
    q = q[q.notna().any(axis=1)]
    filled = q.isna()
    x = np.asarray(years, dtype=float)
    values = q.to_numpy(dtype=float, copy=True)
    for i in np.flatnonzero(filled.any(axis=1).to_numpy()):
        ok = ~np.isnan(values[i])
        values[i] = np.interp(x, x[ok], values[i, ok])
    return pd.DataFrame(values, index=q.index, columns=q.columns), filled


def nep_totals(panel: pd.DataFrame, mines: pd.DataFrame, *, years: Sequence[int]) -> pd.DataFrame:
    """NEP total of the mines per year, Gg C.

    ``NEP total_t = sum over mines of Q_t * area_m2 / 1e9``, every mine with at
    least one valid year included, missing mine-years interpolated in time (see
    the module's rules).

    Parameters
    ----------
    panel : pandas.DataFrame
        ``mine_id, year, nep_mine`` (g C m-2 a-1).
    mines : pandas.DataFrame
        ``mine_id, area_km2``.
    years : sequence of int
        The years of the run.

    Returns
    -------
    pandas.DataFrame
        ``year, nep_total_Gg`` (gaps filled), ``nep_total_observed_Gg`` (observed
        mine-years only), ``n_mines`` (mines in the total), ``n_filled`` (filled
        mine-years) and ``area_filled_km2`` (their area).

    Examples
    --------
    >>> panel = pd.DataFrame({"mine_id": [1, 1, 1], "year": [2000, 2001, 2002],
    ...                       "nep_mine": [100.0, np.nan, 300.0]})
    >>> mines = pd.DataFrame({"mine_id": [1], "area_km2": [1.0]})
    >>> nep_totals(panel, mines, years=[2000, 2001, 2002])["nep_total_Gg"].tolist()
    [0.1, 0.2, 0.3]
    """
    _require(panel, ("mine_id", "year", "nep_mine"), "nep_panel")
    gg, filled = _nep_contributions(panel, mines, years=years)
    area = _areas(mines).reindex(gg.index)
    return pd.DataFrame(
        {
            "year": np.asarray(years, dtype="int64"),
            "nep_total_Gg": gg.sum(min_count=1).to_numpy(),
            "nep_total_observed_Gg": gg.where(~filled).sum(min_count=1).to_numpy(),
            "n_mines": len(gg),
            "n_filled": filled.sum().to_numpy(dtype="int64"),
            "area_filled_km2": filled.mul(area, axis=0).sum().to_numpy(),
        }
    )


def _nep_contributions(
    panel: pd.DataFrame, mines: pd.DataFrame, *, years: Sequence[int]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each mine's share of the NEP total per year (``Q_t * area_m2 / 1e9``, Gg C, gaps filled) and the filled cells."""
    area = _areas(mines)
    nep, filled = _filled_nep(panel[panel["mine_id"].isin(area.index)], years)
    return nep.mul(area.reindex(nep.index) * M2_PER_KM2 / G_PER_GG, axis=0), filled


def _decline_pct(high: np.ndarray | float, low: np.ndarray | float) -> np.ndarray | float:
    """``(max - min) / max * 100`` (NaN where max is 0 or NaN)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(high) - np.asarray(low)) / np.asarray(high) * 100.0


def extremes(totals: pd.DataFrame) -> dict[str, Any]:
    """Maximum, minimum and the max-to-min decline of the NEP total.

    Parameters
    ----------
    totals : pandas.DataFrame
        ``year, nep_total_Gg`` (as from :func:`nep_totals`).

    Returns
    -------
    dict
        ``nep_total_max`` and ``nep_total_min`` (each ``{"year", "value"}``, Gg C),
        ``decline_pct`` = (max - min) / max * 100, and ``min_after_max`` (whether
        the minimum comes after the maximum, i.e. whether it is a decline in time).

    Examples
    --------
    >>> t = pd.DataFrame({"year": [2007, 2019], "nep_total_Gg": [2713.0, 1883.0]})
    >>> round(extremes(t)["decline_pct"], 1)
    30.6
    """
    s = totals.set_index("year")["nep_total_Gg"].dropna()
    if s.empty:
        none = {"year": None, "value": np.nan}
        return {"nep_total_max": none, "nep_total_min": none, "decline_pct": np.nan, "min_after_max": False}
    hi, lo = int(s.idxmax()), int(s.idxmin())
    return {
        "nep_total_max": {"year": hi, "value": float(s[hi])},
        "nep_total_min": {"year": lo, "value": float(s[lo])},
        "decline_pct": float(_decline_pct(s[hi], s[lo])),
        "min_after_max": lo > hi,
    }


def phase_fits(totals: pd.DataFrame, *, phases: Sequence[tuple[str, int, int]] = PHASES) -> pd.DataFrame:
    """Linear fits of the NEP total within each phase.

    Parameters
    ----------
    totals : pandas.DataFrame
        ``year, nep_total_Gg``.
    phases : sequence of (label, first, last)
        Default: the paper's 2000-2006, 2007-2014, 2015-2020.

    Returns
    -------
    pandas.DataFrame
        One row per phase: ``phase, first, last, n_years, slope_Gg_per_a``,
        ``intercept_Gg`` (at year 0), ``r2``, ``p_value``, ``start_Gg``, ``end_Gg``,
        ``change_pct`` = (end - start) / start * 100 from the totals of the
        phase's first and last year (negative = decline), and ``fit_change_pct``,
        the same from the fitted line. Phases with fewer than three years in
        ``totals`` have NaN fits.

    Examples
    --------
    >>> t = pd.DataFrame({"year": range(2000, 2021), "nep_total_Gg": np.arange(21.0) + 100})
    >>> phase_fits(t)["slope_Gg_per_a"].round(6).tolist()
    [1.0, 1.0, 1.0]
    """
    s = totals.set_index("year")["nep_total_Gg"]
    return pd.DataFrame([_fit_phase(s, *phase) for phase in phases])


def _fit_phase(s: pd.Series, label: str, first: int, last: int) -> dict[str, Any]:
    part = s[(s.index >= first) & (s.index <= last)]
    row: dict[str, Any] = {"phase": label, "first": first, "last": last, "n_years": len(part)}
    if len(part) < 3:
        nan = dict.fromkeys(("slope_Gg_per_a", "intercept_Gg", "r2", "p_value"), np.nan)
        return (
            row | nan | {"start_Gg": np.nan, "end_Gg": np.nan, "change_pct": np.nan, "fit_change_pct": np.nan}
        )
    fit = stats.linregress(part.index.to_numpy(dtype=float), part.to_numpy())
    x0, x1 = float(part.index.min()), float(part.index.max())
    start, end = float(part.iloc[0]), float(part.iloc[-1])
    fit0, fit1 = fit.intercept + fit.slope * x0, fit.intercept + fit.slope * x1
    return row | {
        "slope_Gg_per_a": float(fit.slope),
        "intercept_Gg": float(fit.intercept),
        "r2": float(fit.rvalue**2),
        "p_value": float(fit.pvalue),
        "start_Gg": start,
        "end_Gg": end,
        "change_pct": (end - start) / start * 100.0,
        "fit_change_pct": (fit1 - fit0) / fit0 * 100.0,
    }


# ----------------------------------------------------------------------------- period statistics


def _period_arrays(stat: np.ndarray, area_m2: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Period statistics of mines weighted by ``weights`` (1 each, or bootstrap counts).

    ``stat`` and ``area_m2`` have shape ``(n,)``, ``weights`` ``(..., n)``; NaN
    ``stat`` (unclassified mines) carries no weight. Every output has shape ``weights.shape[:-1]``.
    """
    ok = ~np.isnan(stat)
    s = np.where(ok, stat, 0.0)
    w = weights * ok
    loss, gain = ok & (s > 0), ok & (s <= 0)
    low = loss & (s <= SMALL_LOSS_MAX)
    n, n_loss, n_gain = w.sum(-1), w @ loss, w @ gain
    loss_g, gain_g = w @ np.where(loss, s * area_m2, 0.0), w @ np.where(gain, -s * area_m2, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "n_mines": n,
            "n_loss": n_loss,
            "loss_share": n_loss / n,
            "gain_share": n_gain / n,
            "loss_total_Gg_per_a": loss_g / G_PER_GG,
            "gain_total_Gg_per_a": gain_g / G_PER_GG,
            "net_loss_Gg_per_a": (loss_g - gain_g) / G_PER_GG,
            "loss_mean_g_m2_a": (w @ np.where(loss, s, 0.0)) / n_loss,
            "gain_mean_g_m2_a": (w @ np.where(gain, -s, 0.0)) / n_gain,
            "loss_mean_area_weighted_g_m2_a": loss_g / (w @ np.where(loss, area_m2, 0.0)),
            "gain_mean_area_weighted_g_m2_a": gain_g / (w @ np.where(gain, area_m2, 0.0)),
            "loss_0_200_share_of_losing_mines": (w @ low) / n_loss,
            "loss_0_200_share_of_loss_total": (w @ np.where(low, s * area_m2, 0.0)) / loss_g,
        }


def period_stats(mine_stats: pd.DataFrame) -> dict[str, float]:
    """Headline statistics of the mines' period loss (the paper's figure 5 numbers).

    Parameters
    ----------
    mine_stats : pandas.DataFrame
        ``loss_stat`` (g C m-2 a-1, positive = loss; NaN = unclassified, ignored)
        and ``area_km2``.

    Returns
    -------
    dict
        ``n_mines`` (classified), ``n_loss``, ``loss_share`` and ``gain_share``
        (shares of mines); ``loss_total_Gg_per_a`` = sum of loss_stat x area over
        losing mines / 1e9, ``gain_total_Gg_per_a`` the same of ``-loss_stat``
        over gaining mines (a positive magnitude), ``net_loss_Gg_per_a`` = loss
        total - gain total (Gg C a-1); ``loss_mean_g_m2_a`` and ``gain_mean_g_m2_a``,
        plain means over losing / gaining mines (gain as a positive magnitude),
        and their ``*_area_weighted_*`` versions; ``loss_0_200_share_of_losing_mines``
        and ``loss_0_200_share_of_loss_total``, the share of the losing mines with a
        loss of at most 200 g C m-2 a-1 and their share of the loss total. A mine
        with ``loss_stat == 0`` counts as gaining.

    Examples
    --------
    >>> s = pd.DataFrame({"loss_stat": [10.0, -20.0, 30.0, 0.0], "area_km2": [1.0, 2.0, 3.0, 4.0]})
    >>> r = period_stats(s)
    >>> r["loss_share"], round(r["loss_total_Gg_per_a"], 6), round(r["net_loss_Gg_per_a"], 6)
    (0.5, 0.1, 0.06)
    """
    _require(mine_stats, ("loss_stat", "area_km2"), "mine statistics")
    out = _period_arrays(
        mine_stats["loss_stat"].to_numpy(dtype=float),
        mine_stats["area_km2"].to_numpy(dtype=float) * M2_PER_KM2,
        np.ones(len(mine_stats)),
    )
    return {k: (int(v) if k in ("n_mines", "n_loss") else float(v)) for k, v in out.items()}


def group_stats(mine_stats: pd.DataFrame, *, by: str | Sequence[str] = "iso3") -> pd.DataFrame:
    """:func:`period_stats` per group (country, continent, subregion).

    Parameters
    ----------
    mine_stats : pandas.DataFrame
        ``loss_stat, area_km2`` and the grouping column(s).
    by : str or sequence of str
        Grouping column(s), e.g. ``"iso3"`` or ``["iso3", "country", "continent"]``.

    Returns
    -------
    pandas.DataFrame
        One row per group: the grouping columns, ``n_mines_all`` (mines in the
        group, classified or not), ``area_km2`` and the keys of
        :func:`period_stats`; sorted by ``n_mines_all`` descending.

    Examples
    --------
    >>> s = pd.DataFrame({"iso3": ["CHN", "CHN", "MNG"], "loss_stat": [5.0, -1.0, 2.0],
    ...                   "area_km2": [1.0, 1.0, 2.0]})
    >>> group_stats(s)[["iso3", "loss_share"]].values.tolist()
    [['CHN', 0.5], ['MNG', 1.0]]
    """
    keys = [by] if isinstance(by, str) else list(by)
    rows = []
    for name, g in mine_stats.groupby(keys, sort=True, dropna=False):
        head = dict(zip(keys, name if isinstance(name, tuple) else (name,), strict=True))
        rows.append(head | {"n_mines_all": len(g), "area_km2": float(g["area_km2"].sum())} | period_stats(g))
    columns = [*keys, "n_mines_all", "area_km2", *period_stats(mine_stats.iloc[:0])]
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["n_mines_all", *keys], ascending=[False] + [True] * len(keys), ignore_index=True)


def loss_distribution(mine_stats: pd.DataFrame, *, bins: Sequence[float] = LOSS_BINS) -> pd.DataFrame:
    """Distribution of the losing mines' period loss over bins of g C m-2 a-1.

    Parameters
    ----------
    mine_stats : pandas.DataFrame
        ``loss_stat, area_km2``; only mines with ``loss_stat > 0`` enter.
    bins : sequence of float
        Bin edges, left-open and right-closed: ``(0, 100]``, ``(100, 200]``, ...

    Returns
    -------
    pandas.DataFrame
        ``bin, n_mines, share_of_losing_mines, loss_Gg_per_a, share_of_loss_total``.

    Examples
    --------
    >>> s = pd.DataFrame({"loss_stat": [50.0, 150.0, 500.0, -3.0], "area_km2": [1.0, 1.0, 1.0, 1.0]})
    >>> loss_distribution(s, bins=[0, 200, np.inf])["n_mines"].tolist()
    [2, 1]
    """
    losing = mine_stats[mine_stats["loss_stat"] > 0]
    cut = pd.cut(losing["loss_stat"], bins=list(bins), right=True)
    loss_gg = losing["loss_stat"] * losing["area_km2"] * M2_PER_KM2 / G_PER_GG
    table = pd.DataFrame(
        {"n_mines": cut.value_counts(sort=False), "loss_Gg_per_a": loss_gg.groupby(cut, observed=False).sum()}
    )
    labels = [_bin_label(lo, hi) for lo, hi in zip(bins[:-1], bins[1:], strict=True)]
    total_n, total_gg = max(len(losing), 1), loss_gg.sum()
    return pd.DataFrame(
        {
            "bin": labels,
            "n_mines": table["n_mines"].to_numpy(dtype="int64"),
            "share_of_losing_mines": table["n_mines"].to_numpy() / total_n,
            "loss_Gg_per_a": table["loss_Gg_per_a"].to_numpy(),
            "share_of_loss_total": table["loss_Gg_per_a"].to_numpy() / total_gg if total_gg > 0 else np.nan,
        }
    )


def _bin_label(lo: float, hi: float) -> str:
    return f"> {lo:g}" if np.isinf(hi) else f"{lo:g}-{hi:g}"


def yearly_loss(change: pd.DataFrame, mines: pd.DataFrame) -> pd.DataFrame:
    """The yearly distribution of the mines' loss (the paper's figure 6).

    Parameters
    ----------
    change : pandas.DataFrame
        ``mine_id, year, loss`` (g C m-2 a-1, positive = loss).
    mines : pandas.DataFrame
        ``mine_id, area_km2``.

    Returns
    -------
    pandas.DataFrame
        Per year: ``n`` (mines with a valid loss), ``mean`` (plain mean over
        mines, the paper's "mean loss"), ``mean_area_weighted``, ``median``,
        quantiles ``q05, q25, q75, q95``, ``max_loss`` (largest loss),
        ``max_gain`` (largest gain, as a positive magnitude) and ``loss_share``.

    Examples
    --------
    >>> change = pd.DataFrame({"mine_id": [1, 2], "year": [2001, 2001], "loss": [10.0, -4.0]})
    >>> mines = pd.DataFrame({"mine_id": [1, 2], "area_km2": [1.0, 3.0]})
    >>> yearly_loss(change, mines)[["mean", "mean_area_weighted", "max_gain"]].values.tolist()
    [[3.0, -0.5, 4.0]]
    """
    area = _areas(mines)
    valid = change.loc[change["loss"].notna(), ["mine_id", "year", "loss"]].copy()
    valid["area"] = valid["mine_id"].map(area)
    valid["weighted"] = valid["loss"] * valid["area"]
    g = valid.groupby("year")
    out = pd.DataFrame(
        {
            "n": g.size(),
            "mean": g["loss"].mean(),
            "mean_area_weighted": g["weighted"].sum() / g["area"].sum(),
            "median": g["loss"].median(),
            **{f"q{round(q * 100):02d}": g["loss"].quantile(q) for q in (0.05, 0.25, 0.75, 0.95)},
            "max_loss": g["loss"].max(),
            "max_gain": -g["loss"].min(),
            "loss_share": g["loss"].apply(lambda s: float((s > 0).mean())),
        }
    )
    out.index = out.index.astype("int64")
    return out.reset_index()


# ----------------------------------------------------------------------------- uncertainty


def bootstrap(
    mine_stats: pd.DataFrame,
    nep_gg: pd.DataFrame,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = CI_LEVEL,
    chunk: int = 200,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Percentile bootstrap intervals of the headline numbers, resampling mines.

    Each replicate draws as many mines as there are, with replacement, from
    the union of the mines in the NEP totals and the classified mines, and
    recomputes every number from the same draw. The intervals describe how
    much the numbers depend on which mines the inventory happens to hold; they
    do not include the error of the NEP product or of the ring estimate.

    Parameters
    ----------
    mine_stats : pandas.DataFrame
        ``mine_id, loss_stat, area_km2`` of the classified mines.
    nep_gg : pandas.DataFrame
        Mines x years NEP total contributions, Gg C (``Q_t * area_m2 / 1e9``,
        gaps filled), indexed by ``mine_id``.
    n_boot : int
        Replicates.
    seed : int
        Seed of ``numpy.random.default_rng``.
    level : float
        Two-sided confidence level.
    chunk : int
        Replicates drawn at once (memory only: results do not depend on it).

    Returns
    -------
    intervals : pandas.DataFrame
        ``quantity, estimate, lo, hi`` for the keys of :func:`period_stats` that
        are shares, totals or means, and ``nep_total_max``, ``nep_total_min``,
        ``decline_pct``.
    yearly : pandas.DataFrame
        ``year, lo, hi`` of the NEP total per year, Gg C.

    Examples
    --------
    >>> s = pd.DataFrame({"mine_id": [1, 2], "loss_stat": [5.0, -5.0], "area_km2": [1.0, 1.0]})
    >>> nep = pd.DataFrame({2000: [0.1, 0.1], 2001: [0.1, 0.2]}, index=[1, 2])
    >>> ci, yearly = bootstrap(s, nep, n_boot=50, seed=1)
    >>> bool((ci["lo"] <= ci["estimate"]).all() and (ci["estimate"] <= ci["hi"]).all())
    True
    """
    if n_boot < 2:
        raise NepChangeError(f"n_boot must be at least 2, got {n_boot}")
    ids = nep_gg.index.union(pd.Index(mine_stats["mine_id"]))
    s = mine_stats.set_index("mine_id").reindex(ids)
    stat = s["loss_stat"].to_numpy(dtype=float)
    area_m2 = s["area_km2"].fillna(0.0).to_numpy() * M2_PER_KM2
    nep = nep_gg.reindex(ids).fillna(0.0)
    rng = np.random.default_rng(seed)
    n, reps = len(ids), []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(float)
        reps.append(_replicate(stat, area_m2, nep.to_numpy(), counts))
    boot = {k: np.concatenate([r[k] for r in reps]) for k in reps[0]}
    point = _replicate(stat, area_m2, nep.to_numpy(), np.ones((1, n)))
    tail = (1 - level) / 2 * 100
    rows = [
        {"quantity": k, "estimate": float(point[k][0]), "lo": _pct(v, tail), "hi": _pct(v, 100 - tail)}
        for k, v in boot.items()
        if k != "nep_total"
    ]
    yearly = pd.DataFrame(
        {
            "year": np.asarray(nep.columns, dtype="int64"),
            "lo": np.nanpercentile(boot["nep_total"], tail, axis=0),
            "hi": np.nanpercentile(boot["nep_total"], 100 - tail, axis=0),
        }
    )
    return pd.DataFrame(rows), yearly


_BOOT_KEYS = (
    "loss_share",
    "gain_share",
    "loss_total_Gg_per_a",
    "gain_total_Gg_per_a",
    "net_loss_Gg_per_a",
    "loss_mean_g_m2_a",
    "gain_mean_g_m2_a",
    "loss_mean_area_weighted_g_m2_a",
    "gain_mean_area_weighted_g_m2_a",
)


def _replicate(
    stat: np.ndarray, area_m2: np.ndarray, nep: np.ndarray, counts: np.ndarray
) -> dict[str, np.ndarray]:
    period = _period_arrays(stat, area_m2, counts)
    totals = counts @ nep
    high, low = totals.max(axis=1), totals.min(axis=1)
    decline = _decline_pct(high, low)
    return {k: period[k] for k in _BOOT_KEYS} | {
        "nep_total_max": high,
        "nep_total_min": low,
        "decline_pct": decline,
        "nep_total": totals,
    }


def _pct(values: np.ndarray, q: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, q)) if finite.size else np.nan


def classify_sensitivity(
    change: pd.DataFrame, mines: pd.DataFrame, *, default: ClassifyBy = "mean"
) -> pd.DataFrame:
    """The headline numbers under each classifying statistic.

    Parameters
    ----------
    change : pandas.DataFrame
        ``mine_id, year, loss``.
    mines : pandas.DataFrame
        ``mine_id, area_km2``.
    default : {"mean", "final", "trend"}
        The run's statistic; ``agreement`` is the share of mines (classified by
        both) whose status matches it.

    Returns
    -------
    pandas.DataFrame
        One row per statistic: ``classify_by``, ``agreement`` and the keys of
        :func:`period_stats`.

    Examples
    --------
    >>> change = pd.DataFrame({"mine_id": [1, 1], "year": [2001, 2002], "loss": [10.0, -5.0]})
    >>> mines = pd.DataFrame({"mine_id": [1], "area_km2": [1.0]})
    >>> classify_sensitivity(change, mines)["loss_share"].tolist()
    [1.0, 0.0, 0.0]
    """
    area = _areas(mines)
    by_stat = {by: classify(change, by=by) for by in CLASSIFY_BY}
    ref = by_stat[default].set_index("mine_id")["status"]
    rows = []
    for by, stat in by_stat.items():
        both = stat.set_index("mine_id")["status"].align(ref, join="inner")
        agreement = float((both[0] == both[1]).mean()) if len(both[0]) else np.nan
        stat = stat.assign(area_km2=stat["mine_id"].map(area))
        rows.append({"classify_by": by, "agreement": agreement} | period_stats(stat))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- truth


def truth_recovery(
    change: pd.DataFrame, truth: pd.DataFrame, *, baseline: int | None = None
) -> dict[str, float]:
    """How well the estimated loss recovers an injected (true) mining effect.

    Parameters
    ----------
    change : pandas.DataFrame
        ``mine_id, year, loss`` (the estimate, positive = loss).
    truth : pandas.DataFrame
        ``mine_id, year, true_loss``: the injected reduction of the mine's NEP
        by mining, g C m-2 a-1, positive = loss.
    baseline : int, optional
        The run's baseline year. The difference-in-differences estimate
        identifies the *change* of the effect since the baseline; when given
        and present in ``truth``, each mine's true effect of that year is
        subtracted before comparing (a no-op when the truth is already zero
        there).

    Returns
    -------
    dict
        ``r`` (Pearson correlation), ``bias`` (mean of estimate - truth),
        ``rmse`` (g C m-2 a-1) and ``n`` (mine-years compared: both finite).

    Examples
    --------
    >>> est = pd.DataFrame({"mine_id": [1, 1, 2], "year": [2001, 2002, 2001], "loss": [1.0, 3.0, 5.0]})
    >>> true = est.rename(columns={"loss": "true_loss"}).assign(true_loss=lambda d: d["true_loss"] - 1)
    >>> truth_recovery(est, true)
    {'r': 1.0, 'bias': 1.0, 'rmse': 1.0, 'n': 3}
    """
    _require(change, ("mine_id", "year", "loss"), "nep_change")
    truth = _relative_truth(truth, baseline)
    pairs = change[["mine_id", "year", "loss"]].merge(truth, on=["mine_id", "year"], how="inner")
    return _agreement(pairs["loss"].to_numpy(dtype=float), pairs["true_loss"].to_numpy(dtype=float))


def _relative_truth(truth: pd.DataFrame, baseline: int | None) -> pd.DataFrame:
    """``mine_id, year, true_loss`` minus each mine's true effect in ``baseline`` (when present)."""
    _require(truth, TRUTH_COLUMNS, "truth")
    truth = truth[list(TRUTH_COLUMNS)]
    if baseline is None or baseline not in set(truth["year"]):
        return truth
    base = truth[truth["year"] == baseline].set_index("mine_id")["true_loss"]
    out = truth[truth["year"] != baseline]
    return out.assign(true_loss=out["true_loss"] - out["mine_id"].map(base))


def _agreement(estimate: np.ndarray, true: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(estimate) & np.isfinite(true)
    e, t = estimate[ok], true[ok]
    if e.size < 2:
        return {"r": np.nan, "bias": np.nan, "rmse": np.nan, "n": int(e.size)}
    r = float(np.corrcoef(e, t)[0, 1]) if e.std() > 0 and t.std() > 0 else np.nan
    return {
        "r": r,
        "bias": float(np.mean(e - t)),
        "rmse": float(np.sqrt(np.mean((e - t) ** 2))),
        "n": int(e.size),
    }



# ----------------------------------------------------------------------------- the stage


@dataclass
class NepChangeResult:
    """Everything the NEP-change chapter shows.

    Attributes
    ----------
    params : RunParams
    mines : geopandas.GeoDataFrame
        The run's mines in the region, with ``loss_stat`` and ``status`` (NaN /
        None when unclassified).
    change : pandas.DataFrame
        The ``nep_change`` artifact.
    mine_stats : pandas.DataFrame
        Classified mines: ``mine_id, loss_stat, status`` and their attributes.
    totals : pandas.DataFrame
        NEP total per year (:func:`nep_totals`) with bootstrap ``lo, hi``.
    extremes : dict
        :func:`extremes`.
    phases : pandas.DataFrame
    period : dict
        :func:`period_stats` of the classified mines.
    yearly : pandas.DataFrame
    distribution : pandas.DataFrame
    countries, continents : pandas.DataFrame
        :func:`group_stats` per country and per continent.
    sensitivity : pandas.DataFrame
    intervals : pandas.DataFrame
        Bootstrap intervals.
    exclusions : pandas.DataFrame
        ``step, reason, n_mines``.
    truth : dict or None
        ``mine_year`` and ``mine`` recovery (:func:`truth_recovery`) and
        ``status_agreement``, when the truth is known.
    truth_pairs : pandas.DataFrame or None
        Per mine, estimated and true period loss.
    truth_note : str
    n_boot : int
        Bootstrap replicates behind ``intervals``.
    summary : dict
        What was merged into ``summary.json``.
    """

    params: RunParams
    mines: gpd.GeoDataFrame
    change: pd.DataFrame
    mine_stats: pd.DataFrame
    totals: pd.DataFrame
    extremes: dict[str, Any]
    phases: pd.DataFrame
    period: dict[str, float]
    yearly: pd.DataFrame
    distribution: pd.DataFrame
    countries: pd.DataFrame
    continents: pd.DataFrame
    sensitivity: pd.DataFrame
    intervals: pd.DataFrame
    exclusions: pd.DataFrame
    truth: dict[str, Any] | None = None
    truth_pairs: pd.DataFrame | None = None
    truth_note: str = ""
    n_boot: int = N_BOOT
    summary: dict[str, Any] = field(default_factory=dict)


def _load_inputs(params: RunParams) -> tuple[gpd.GeoDataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """The region's mines and their panel over the run's years, and what was left out."""
    mines = read_artifact(params.run_path, "mines")
    panel = read_artifact(params.run_path, "nep_panel")
    _require(mines, ("mine_id", *ATTRIBUTES), "mines.parquet")
    _require(panel, PANEL_COLUMNS, "nep_panel.parquet")
    _check_unique(panel, "nep_panel.parquet")
    in_region = mines["iso3"].isin(regions.select(params.region))
    region_mines = mines[in_region].sort_values("mine_id", ignore_index=True)
    if region_mines.empty:
        raise NepChangeError(
            f"mines.parquet in {params.run_path} holds no mine of region {params.region!r}; "
            "run the data chapter for this region first"
        )
    panel = panel[panel["mine_id"].isin(region_mines["mine_id"]) & panel["year"].isin(params.year_range)]
    base = panel[panel["year"] == params.baseline].set_index("mine_id")
    in_panel = region_mines["mine_id"].isin(panel["mine_id"])
    no_mine = region_mines["mine_id"].map(base["nep_mine"]).isna() & in_panel
    no_ring = region_mines["mine_id"].map(base["nep_ref"]).isna() & in_panel & ~no_mine
    excluded = [
        ("load", "mine outside the region", int((~in_region).sum())),
        ("load", "mine without NEP rows in nep_panel", int((~in_panel).sum())),
        ("change", f"no valid NEP of the mine in the baseline year {params.baseline}", int(no_mine.sum())),
        ("change", f"no valid NEP of the ring in the baseline year {params.baseline}", int(no_ring.sum())),
    ]
    return region_mines, panel, [dict(zip(("step", "reason", "n_mines"), e, strict=True)) for e in excluded]


def _truth_part(
    change: pd.DataFrame, truth: pd.DataFrame | None, *, baseline: int, by: ClassifyBy
) -> tuple[dict[str, Any] | None, pd.DataFrame | None]:
    """Recovery of the truth per mine-year and per mine (the period statistic)."""
    if truth is None:
        return None, None
    relative = _relative_truth(truth, baseline)
    relative = relative[relative["year"].isin(change["year"].unique())]
    est = classify(change, by=by)
    true = classify(relative.rename(columns={"true_loss": "loss"}), by=by)
    pairs = est.merge(true, on="mine_id", suffixes=("", "_true"))
    part = {
        "mine_year": truth_recovery(change, relative),
        "mine": _agreement(pairs["loss_stat"].to_numpy(), pairs["loss_stat_true"].to_numpy()),
        "status_agreement": float((pairs["status"] == pairs["status_true"]).mean()) if len(pairs) else np.nan,
    }
    return part, pairs


def _resolve_truth(params: RunParams, truth: pd.DataFrame | None | str) -> tuple[pd.DataFrame | None, str]:
    if isinstance(truth, str):
        if truth != "auto":
            raise NepChangeError(f"truth must be a DataFrame, None or 'auto', got {truth!r}")
        return truth_table(params)
    return truth, "a truth table given to nepkit.nepchange.run" if truth is not None else "no truth given"


def run(
    params: RunParams,
    *,
    n_boot: int = N_BOOT,
    truth: pd.DataFrame | None | Literal["auto"] = "auto",
) -> NepChangeResult:
    """The NEP-change stage: read the panel, compute, write ``nep_change.parquet`` and the summary.

    Parameters
    ----------
    params : RunParams
        The run; reads ``mines.parquet`` and ``nep_panel.parquet`` from
        ``params.run_path`` and keeps the mines of ``params.region`` and the
        years of ``params.years``.
    n_boot : int
        Bootstrap replicates of the headline numbers (seeded by ``params.seed``).
    truth : DataFrame, None or "auto"
        The injected truth (``mine_id, year, true_loss``); ``"auto"`` loads the
        synthetic world's when the sources are synthetic (:func:`nepkit.sources.truth_table`).

    Returns
    -------
    NepChangeResult

    Examples
    --------
    >>> res = run(RunParams(region="Africa", run_dir="runs/Africa"))  # doctest: +SKIP
    >>> res.summary["decline_pct"]  # doctest: +SKIP
    """
    mines, panel, excluded = _load_inputs(params)
    change = compute_change(panel, mines, baseline=params.baseline)
    stat = classify(change, by=params.classify_by)
    mines = mines.merge(stat, on="mine_id", how="left")
    table = pd.DataFrame(mines.drop(columns=mines.geometry.name))
    mine_stats = table[table["loss_stat"].notna()].reset_index(drop=True)
    nep_gg, _ = _nep_contributions(panel, mines, years=params.year_range)
    totals = nep_totals(panel, mines, years=params.year_range)
    excluded += [
        {
            "step": "classify",
            "reason": f"no valid {params.classify_by!r} statistic",
            "n_mines": change["mine_id"].nunique() - len(stat),
        },
        {
            "step": "nep total",
            "reason": "no valid NEP of the mine in any year",
            "n_mines": len(mines) - len(nep_gg),
        },
    ]
    intervals, yearly_ci = bootstrap(mine_stats, nep_gg, n_boot=n_boot, seed=params.seed)
    truth, truth_note = _resolve_truth(params, truth)
    truth_part, truth_pairs = _truth_part(change, truth, baseline=params.baseline, by=params.classify_by)
    result = NepChangeResult(
        params=params,
        mines=mines,
        change=change,
        mine_stats=mine_stats,
        totals=totals.merge(yearly_ci, on="year", how="left"),
        extremes=extremes(totals),
        phases=phase_fits(totals),
        period=period_stats(mine_stats),
        yearly=yearly_loss(change, mines),
        distribution=loss_distribution(mine_stats),
        countries=group_stats(table, by=["iso3", "country", "continent"]),
        continents=group_stats(table, by="continent"),
        sensitivity=classify_sensitivity(change, mines, default=params.classify_by),
        intervals=intervals,
        exclusions=pd.DataFrame(excluded),
        truth=truth_part,
        truth_pairs=truth_pairs,
        truth_note=truth_note,
        n_boot=n_boot,
    )
    result.summary = _summary(result, params)
    write_table(change, artifact_path(params.run_path, "nep_change"))
    update_summary(params.run_path, result.summary)
    return result


def _records(df: pd.DataFrame, key: str) -> dict[str, dict[str, Any]]:
    return {str(k): v for k, v in df.set_index(key).to_dict(orient="index").items()}


def _summary(res: NepChangeResult, params: RunParams) -> dict[str, Any]:
    """The run's ``summary.json`` keys of this stage (DESIGN.md section 4).

    ``n_countries`` counts the BRI partners (China included) of the run's region,
    the paper's study area; ``n_countries_with_mines`` those with a mine in the run.
    """
    p, ex = res.period, res.extremes
    headline = {
        "n_mines": int(len(res.mines)),
        "total_area_km2": float(res.mines["area_km2"].sum()),
        "n_countries": len(regions.select(params.region)),
        "n_countries_with_mines": int(res.mines["iso3"].nunique()),
        "nep_total_Gg": {
            str(int(y)): float(v) for y, v in zip(res.totals["year"], res.totals["nep_total_Gg"], strict=True)
        },
        "nep_total_max": ex["nep_total_max"],
        "nep_total_min": ex["nep_total_min"],
        "decline_pct": ex["decline_pct"],
        "net_loss_Gg_per_a": p["net_loss_Gg_per_a"],
        "loss_share": p["loss_share"],
        "loss_total_Gg_per_a": p["loss_total_Gg_per_a"],
        "loss_mean_g_m2_a": p["loss_mean_g_m2_a"],
        "gain_total_Gg_per_a": p["gain_total_Gg_per_a"],
        "gain_mean_g_m2_a": p["gain_mean_g_m2_a"],
    }
    yearly = res.yearly.set_index("year")
    extra = {
        "classify_by": res.params.classify_by,
        "baseline": res.params.baseline,
        "sign_convention": "loss = W - P (positive = NEP loss of the mine relative to its ring)",
        "period": p,
        "min_after_max": ex["min_after_max"],
        "phases": _records(res.phases, "phase"),
        "yearly_mean_loss_g_m2_a": {str(int(y)): float(v) for y, v in yearly["mean"].items()},
        "yearly_loss_max": float(yearly["max_loss"].max()),
        "yearly_gain_max": float(yearly["max_gain"].max()),
        "loss_distribution": _records(res.distribution, "bin"),
        "bootstrap": {
            "n_boot": res.n_boot,
            "level": CI_LEVEL,
            "intervals": _records(res.intervals, "quantity"),
        },
        "classify_sensitivity": _records(res.sensitivity, "classify_by"),
        "by_continent": _records(res.continents, "continent"),
        "exclusions": res.exclusions.to_dict(orient="records"),
        "n_filled_mine_years": int(res.totals["n_filled"].sum()),
        "truth_recovery": res.truth,
        "reported": _run_values(res),
    }
    return headline | {"nep_change": extra}


def comparison(res: NepChangeResult, reported: Mapping[str, Any]) -> pd.DataFrame:
    """The run's headline numbers beside the paper's (``data/paper_reported.yml``).

    Parameters
    ----------
    res : NepChangeResult
    reported : mapping
        :func:`nepkit.artifacts.paper_reported`.

    Returns
    -------
    pandas.DataFrame
        ``quantity, paper, this_run, lo, hi, unit, where``: every NEP-change
        number the paper reports (keys of ``reported``), ``lo, hi`` the bootstrap
        interval where there is one. Phase declines are positive for a decline
        (the paper's wording): ``-change_pct`` of :func:`phase_fits`.
    """
    ci = res.intervals.set_index("quantity")
    values = _run_values(res)
    rows = []
    for key, value in values.items():
        entry = reported.get(key, {})
        paper = entry.get("value")
        paper = paper["value"] if isinstance(paper, Mapping) else paper
        lo, hi = (ci.loc[key, "lo"], ci.loc[key, "hi"]) if key in ci.index else (np.nan, np.nan)
        rows.append(
            {
                "quantity": key,
                "paper": paper,
                "this_run": value,
                "lo": lo,
                "hi": hi,
                "unit": entry.get("unit", ""),
                "where": entry.get("where", ""),
            }
        )
    return pd.DataFrame(rows)


def _run_values(res: NepChangeResult) -> dict[str, float]:
    """This run's value of each NEP-change key of ``data/paper_reported.yml``."""
    p, ex = res.period, res.extremes
    yearly, totals = res.yearly.set_index("year"), res.totals.set_index("year")["nep_total_Gg"]
    phases = res.phases.set_index("phase")
    return {
        "nep_total_max": ex["nep_total_max"]["value"],
        "nep_total_min": ex["nep_total_min"]["value"],
        **{f"nep_total_{y}": float(totals.get(y, np.nan)) for y in (2001, 2006, 2014, 2020)},
        "decline_pct": ex["decline_pct"],
        "phase2_decline_pct": -float(phases["change_pct"].get("2007-2014", np.nan)),
        "phase2_r2": float(phases["r2"].get("2007-2014", np.nan)),
        "phase3_decline_pct": -float(phases["change_pct"].get("2015-2020", np.nan)),
        **{
            k: p[k]
            for k in (
                "net_loss_Gg_per_a",
                "loss_share",
                "gain_share",
                "loss_total_Gg_per_a",
                "gain_total_Gg_per_a",
                "loss_mean_g_m2_a",
                "gain_mean_g_m2_a",
            )
        },
        "loss_0_200_share": p["loss_0_200_share_of_loss_total"],
        "yearly_loss_max": float(yearly["max_loss"].max()),
        "yearly_gain_max": float(yearly["max_gain"].max()),
        "mean_loss_2019": float(yearly["mean"].get(2019, np.nan)),
        "mean_loss_2020": float(yearly["mean"].get(2020, np.nan)),
    }
