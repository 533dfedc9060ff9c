"""Figures of the potential chapter: the paper's figures 7 and 8 and the model's checks.

Every function takes the tables of :class:`nepkit.potential.PotentialResult` and
returns a :class:`matplotlib.figure.Figure`; the caller saves it with
:func:`nepkit.plotting.save`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from nepkit.plotting.maps import PLATE, extent_of, map_figure

__all__ = [
    "potential_map",
    "potential_by_region",
    "observed_vs_predicted",
    "cv_comparison",
    "definition_sensitivity",
    "no_model",
]

UNIT = "g C m$^{-2}$ a$^{-1}$"
PAPER_COLOUR, RUN_COLOUR = "#c0392b", "#2e7d5b"


def potential_map(
    potential: pd.DataFrame, *, extent: Sequence[float] | None = None, zoom: bool = False, vmax: float | None = None
) -> Figure:
    """The paper's Figure 7: restoration potential per mine on a map.

    Parameters
    ----------
    potential : pandas.DataFrame
        ``lon, lat, potential`` (g C m-2 a-1) and ``out_of_domain`` per mine.
    extent : sequence of 4 floats, optional
        ``(lon_min, lon_max, lat_min, lat_max)``; default the BRI extent, or the
        mines' extent padded by 3 degrees with ``zoom``.
    zoom : bool
        Fit the map to the mines (for a region smaller than the BRI).
    vmax : float, optional
        Top of the colour scale; default the 99th percentile of the potential.

    Returns
    -------
    matplotlib.figure.Figure
        Mines with no potential as small grey dots, the others coloured by their
        potential (largest on top); mines outside the area of applicability ringed.

    Examples
    --------
    >>> fig = potential_map(res.potential)  # doctest: +SKIP
    """
    if zoom and extent is None and len(potential):
        extent = extent_of(gpd.GeoDataFrame(geometry=gpd.points_from_xy(potential["lon"], potential["lat"])), 3.0)
    fig, ax = map_figure(extent=extent)
    p = potential.dropna(subset=["potential"]).sort_values("potential")
    none = p["potential"] <= 0
    ax.scatter(p.loc[none, "lon"], p.loc[none, "lat"], s=2, color="#9e9e9e", transform=PLATE,
               label=f"no potential ({none.mean():.0%})", zorder=3)
    top = vmax if vmax is not None else float(np.nanpercentile(p["potential"], 99)) if len(p) else 1.0
    sc = ax.scatter(p.loc[~none, "lon"], p.loc[~none, "lat"], c=p.loc[~none, "potential"], s=5, cmap="YlGnBu",
                    norm=Normalize(0, max(top, 1e-9)), transform=PLATE, zorder=4)
    ood = p[p["out_of_domain"].astype(bool)]
    ax.scatter(ood["lon"], ood["lat"], s=12, facecolor="none", edgecolor="#d35400", linewidth=0.4, alpha=0.7,
               transform=PLATE, label=f"outside the area of applicability ({len(ood)} mines)", zorder=5)
    fig.colorbar(sc, ax=ax, shrink=0.7, extend="max", label=f"restoration potential ({UNIT})")
    ax.legend(loc="lower left", fontsize=8, markerscale=2, framealpha=0.9)
    return fig


def _bars(ax, table: pd.DataFrame, key: str, paper: Mapping[str, float]) -> None:
    t = table.sort_values("potential_mean")
    y = np.arange(len(t))
    err = np.vstack([t["potential_mean"] - t["potential_lo_mean"], t["potential_hi_mean"] - t["potential_mean"]])
    ax.barh(y, t["potential_mean"], color=RUN_COLOUR, alpha=0.8, label="this run (mean)")
    ax.errorbar(t["potential_mean"], y, xerr=np.clip(err, 0, None), fmt="none", ecolor="k", lw=0.8, capsize=2,
                label="mean of the 5-95 % interval bounds")
    ref = [(i, paper[name]) for i, name in enumerate(t[key]) if name in paper]
    if ref:
        ax.scatter([v for _, v in ref], [i for i, _ in ref], marker="D", color=PAPER_COLOUR, zorder=5,
                   label="paper")
    ax.set_yticks(y, [f"{name} ({n})" for name, n in zip(t[key], t["mines"], strict=True)], fontsize=8)
    ax.set_xlabel(f"mean restoration potential ({UNIT})")


def potential_by_region(
    by_continent: pd.DataFrame,
    by_subregion: pd.DataFrame,
    *,
    paper_continent: Mapping[str, float],
    paper_subregion: Mapping[str, float],
) -> Figure:
    """The paper's Figure 8: mean potential by continent and by subregion, the paper's values beside.

    Parameters
    ----------
    by_continent, by_subregion : pandas.DataFrame
        ``continent`` / ``subregion``, ``mines``, ``potential_mean``,
        ``potential_lo_mean``, ``potential_hi_mean`` (g C m-2 a-1).
    paper_continent, paper_subregion : mapping
        The paper's values by name (g C m-2 a-1), drawn as red diamonds.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = potential_by_region(res.by_continent, res.by_subregion, paper_continent={"Asia": 10.0},
    ...                           paper_subregion={})  # doctest: +SKIP
    """
    n_sub = max(len(by_subregion), 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, max(3.5, 0.25 * n_sub + 1)),
                                 gridspec_kw={"width_ratios": [1, 1.3]})
    _bars(a1, by_continent, "continent", paper_continent)
    a1.set_title("by continent (mines)")
    _bars(a2, by_subregion, "subregion", paper_subregion)
    a2.set_title("by subregion (mines)")
    handles, labels = a1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def observed_vs_predicted(test: pd.DataFrame, *, rmse: float, r2: float) -> Figure:
    """Observed against predicted gain of the held-out mines, with the prediction intervals.

    Parameters
    ----------
    test : pandas.DataFrame
        ``observed, attainable, attainable_lo, attainable_hi`` (g C m-2 a-1).
    rmse, r2 : float
        Test RMSE (g C m-2 a-1) and R2, printed on the figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = observed_vs_predicted(res.model.test, rmse=30.0, r2=0.7)  # doctest: +SKIP
    """
    fig, ax = plt.subplots(figsize=(5.5, 5.2))
    err = np.vstack([test["attainable"] - test["attainable_lo"], test["attainable_hi"] - test["attainable"]])
    ax.errorbar(test["observed"], test["attainable"], yerr=np.clip(err, 0, None), fmt="o", ms=3, color=RUN_COLOUR,
                ecolor="#9e9e9e", elinewidth=0.6, alpha=0.8)
    lims = [min(test["observed"].min(), test["attainable_lo"].min()),
            max(test["observed"].max(), test["attainable_hi"].max())]
    ax.plot(lims, lims, "k--", lw=0.8, label="1:1")
    ax.set_xlabel(f"observed gain ({UNIT})")
    ax.set_ylabel(f"predicted attainable gain ({UNIT})")
    ax.set_title(f"test mines: RMSE {rmse:.1f}, R$^2$ {r2:.2f}, n = {len(test)}")
    ax.legend(loc="upper left")
    return fig


def cv_comparison(cv: pd.DataFrame, *, rmse_test: float) -> Figure:
    """Per-fold RMSE of random and spatially blocked cross-validation, the test RMSE beside.

    Parameters
    ----------
    cv : pandas.DataFrame
        ``scheme, fold, rmse`` (g C m-2 a-1), as :func:`nepkit.potential.spatial_cv` returns.
    rmse_test : float
        The held-out RMSE, drawn as a horizontal line.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = cv_comparison(res.cv, rmse_test=30.0)  # doctest: +SKIP
    """
    fig, ax = plt.subplots(figsize=(5.5, 4))
    schemes = [s for s in ("random", "spatial") if (cv["scheme"] == s).any()]
    for i, scheme in enumerate(schemes):
        r = cv.loc[cv["scheme"] == scheme, "rmse"]
        ax.scatter(np.full(len(r), i), r, color="#555555", zorder=3, label="folds" if i == 0 else None)
        ax.bar(i, r.mean(), width=0.5, color=RUN_COLOUR if scheme == "random" else "#d35400", alpha=0.6)
    ax.axhline(rmse_test, color="k", ls="--", lw=0.8, label="held-out test")
    ax.set_xticks(range(len(schemes)), [f"{s} CV" for s in schemes])
    ax.set_ylabel(f"RMSE ({UNIT})")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def definition_sensitivity(sensitivity: pd.DataFrame, *, threshold: float) -> Figure:
    """How the headline numbers move with the potential definition and the gain threshold.

    Parameters
    ----------
    sensitivity : pandas.DataFrame
        :func:`nepkit.potential.sensitivity`'s table.
    threshold : float
        The run's gain threshold (g C m-2 a-1): the continent panel uses it.

    Returns
    -------
    matplotlib.figure.Figure
        Mean potential and share of mines with none against the threshold, one
        line per definition; mean potential per continent at ``threshold``.

    Examples
    --------
    >>> fig = definition_sensitivity(res.sensitivity, threshold=100)  # doctest: +SKIP
    """
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    definitions = list(dict.fromkeys(sensitivity["definition"]))
    for definition in definitions:
        d = sensitivity[sensitivity["definition"] == definition]
        axes[0].plot(d["gain_threshold"], d["potential_mean"], "o-", label=definition)
        axes[1].plot(d["gain_threshold"], d["no_potential_share"], "o-", label=definition)
    axes[0].set_ylabel(f"mean potential ({UNIT})")
    axes[1].set_ylabel("share of mines with no potential")
    for ax in axes[:2]:
        ax.set_xlabel(f"gain threshold of the sample ({UNIT})")
        ax.axvline(threshold, color="#9e9e9e", lw=0.8, ls=":")
    axes[0].legend(fontsize=8)
    own = sensitivity[sensitivity["gain_threshold"] == threshold].set_index("definition")
    continents = [c for c in own.columns if c.startswith("mean_")]
    x, width = np.arange(len(continents)), 0.8 / max(len(definitions), 1)
    for i, definition in enumerate(definitions):
        axes[2].bar(x + i * width, own.loc[definition, continents].astype(float), width, label=definition)
    axes[2].set_xticks(x + width * (len(definitions) - 1) / 2, [c.removeprefix("mean_") for c in continents],
                       rotation=30, ha="right", fontsize=8)
    axes[2].set_ylabel(f"mean potential ({UNIT})")
    axes[2].set_title(f"by continent, threshold {threshold:g}", fontsize=9)
    fig.tight_layout()
    return fig


def no_model(message: str, *, figsize: tuple[float, float] = (8, 2.5)) -> Figure:
    """A figure that says why there is nothing to draw (a region without a model).

    Examples
    --------
    >>> fig = no_model("only 12 mines: no model for this region")
    """
    fig, ax = plt.subplots(figsize=figsize)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=10)
    return fig
