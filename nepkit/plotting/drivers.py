"""Figures of the drivers chapter: the three importances, their sensitivity to the
conditioning threshold, and the paper's figure 9 (each driver against the predicted
attainable gain).

Every function takes tables of :class:`nepkit.drivers.DriversResult` and returns a
:class:`matplotlib.figure.Figure`; the caller saves it with :func:`nepkit.plotting.save`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter

__all__ = [
    "INDICATOR_GROUPS",
    "importance_bars",
    "threshold_ranks",
    "correlation_heatmap",
    "fig9_partial_dependence",
    "unavailable",
]

UNIT = "g C m$^{-2}$ a$^{-1}$"
#: The paper's Table 1 groups of the indicators, with their colours.
INDICATOR_GROUPS = {
    "climate": (("spei", "precip", "tmax", "tmin"), "#3b75af"),
    "ecological": (("gpp", "soc", "elevation", "curvature"), "#4c9a5b"),
    "economic": (("area_km2", "pop_density", "gdp"), "#c2843a"),
}
_COLOUR = {name: colour for names, colour in INDICATOR_GROUPS.values() for name in names}
_METHODS = (
    ("cpi", "Conditional permutation\n(out-of-bag)", f"increase in MSE, ({UNIT})$^2$"),
    ("permutation", "Plain permutation\n(held-out test rows)", f"increase in MSE, ({UNIT})$^2$"),
    ("shap", "SHAP (TreeExplainer)", f"mean |SHAP|, {UNIT}"),
)


def _group_legend(fig: Figure, nulls: Sequence[str]) -> None:
    handles = [Patch(color=colour, label=group) for group, (_, colour) in INDICATOR_GROUPS.items()]
    if nulls:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="no effect (truth)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)


def importance_bars(table: pd.DataFrame, *, nulls: Sequence[str] = ()) -> Figure:
    """The three importances side by side, each panel ranked by its own method.

    Parameters
    ----------
    table : pandas.DataFrame
        ``drivers.csv``: ``indicator, cpi, cpi_sd, permutation, permutation_sd, shap``.
    nulls : sequence of str
        Indicators without effect (the synthetic world's truth), drawn hatched.

    Returns
    -------
    matplotlib.figure.Figure
        Three horizontal bar charts (largest on top) with the sd over repeats as
        error bars; bars coloured by the paper's indicator groups.

    Examples
    --------
    >>> fig = importance_bars(res.table)  # doctest: +SKIP
    """
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), layout="constrained")
    for ax, (col, title, xlabel) in zip(axes, _METHODS, strict=True):
        t = table.sort_values(col, ascending=True)
        err = t[f"{col}_sd"] if f"{col}_sd" in t else None
        bars = ax.barh(t["indicator"], t[col], xerr=err, color=[_COLOUR.get(i, "grey") for i in t["indicator"]],
                       error_kw={"lw": 0.8, "capsize": 2})
        for bar, name in zip(bars, t["indicator"], strict=True):
            if name in nulls:
                bar.set_hatch("///")
                bar.set_edgecolor("black")
        ax.axvline(0, color="black", lw=0.6)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=8)
    _group_legend(fig, nulls)
    return fig


def threshold_ranks(
    sensitivity: pd.DataFrame, *, threshold: float | None = None, rho_cutoffs: Mapping[float, float] | None = None
) -> Figure:
    """Ranks of the conditional importance across thresholds, and how full the grid's cells are.

    Parameters
    ----------
    sensitivity : pandas.DataFrame
        :func:`nepkit.drivers.threshold_sensitivity`'s table (``threshold,
        indicator, rank, rows_per_cell, moved_share``).
    threshold : float, optional
        The run's threshold, marked by a vertical band.
    rho_cutoffs : mapping, optional
        Threshold -> the ``|rho|`` above which a predictor conditions another
        (:func:`nepkit.drivers.rho_cutoff`), written under the threshold.

    Returns
    -------
    matplotlib.figure.Figure
        (a) rank (1 = most important) of each indicator per threshold; (b) mean
        number of out-of-bag rows in a row's cell of the conditioning grid (log
        scale); (c) share of out-of-bag rows whose bin the permutation changes
        (0: the permutation can change nothing and the importance collapses).

    Examples
    --------
    >>> fig = threshold_ranks(res.sensitivity, threshold=0.95)  # doctest: +SKIP
    """
    thresholds = sorted(sensitivity["threshold"].unique())
    labels = [f"{t:g}" if rho_cutoffs is None or t not in rho_cutoffs or t == 1 else f"{t:g}\n>{rho_cutoffs[t]:.2f}"
              for t in thresholds]
    pos = {t: k for k, t in enumerate(thresholds)}
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), layout="constrained",
                             gridspec_kw={"width_ratios": [1.4, 1, 1]})
    panels = (("rank", "(a) rank of the conditional importance"),
              ("rows_per_cell", "(b) out-of-bag rows per cell"),
              ("moved_share", "(c) share of rows the permutation moves"))
    for ax, (col, title) in zip(axes, panels, strict=True):
        for name, g in sensitivity.groupby("indicator", sort=False):
            g = g.sort_values("threshold")
            x = g["threshold"].map(pos)
            ax.plot(x, g[col].astype(float), marker="o", ms=3, lw=1.2, color=_COLOUR.get(name, "grey"))
            if col == "rank":
                ax.annotate(name, (x.iloc[-1], float(g[col].iloc[-1])), xytext=(4, 0), textcoords="offset points",
                            va="center", fontsize=7, color=_COLOUR.get(name, "grey"))
        if threshold is not None and threshold in pos:
            ax.axvspan(pos[threshold] - 0.3, pos[threshold] + 0.3, color="#eeeeee", zorder=0)
        ax.set_xticks(range(len(thresholds)), labels)
        ax.set_xlabel("threshold (1 - p)" + ("; |rho| cutoff" if rho_cutoffs else "") + "; 1 = no conditioning",
                      fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=8)
    axes[0].invert_yaxis()
    axes[0].set_ylabel("rank")
    axes[0].set_xlim(-0.3, len(thresholds) - 0.3)
    axes[1].set_yscale("log")
    axes[2].set_ylim(-0.02, 1.02)
    return fig


def correlation_heatmap(corr: pd.DataFrame) -> Figure:
    """Spearman correlation between the indicators, with the values printed.

    Parameters
    ----------
    corr : pandas.DataFrame
        Square correlation matrix (indicator x indicator).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = correlation_heatmap(res.correlation)  # doctest: +SKIP
    """
    fig, ax = plt.subplots(figsize=(6.4, 5.4), layout="constrained")
    values = corr.to_numpy(dtype=float)
    im = ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(corr)), corr.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(corr)), corr.index, fontsize=8)
    for i, j in np.ndindex(values.shape):
        if i != j and np.isfinite(values[i, j]):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if abs(values[i, j]) > 0.6 else "black")
    fig.colorbar(im, ax=ax, label="Spearman's rank correlation", shrink=0.8)
    return fig


def _log_axis(values: pd.Series) -> bool:
    """A positive, strongly skewed indicator is drawn on a log axis."""
    v = values.dropna()
    return bool(len(v) and v.min() > 0 and v.quantile(0.98) > 50 * v.quantile(0.02))


def _density(ax: plt.Axes, values: pd.Series, bins: np.ndarray, **style: object) -> None:
    """Histogram of ``values`` on a hidden twin axis, filling the lower third of the panel."""
    counts, _ = np.histogram(values.dropna(), bins=bins)
    ax.stairs(counts / max(counts.max(), 1), bins, **style)
    ax.set_ylim(0, 3)
    ax.set_yticks([])


def fig9_partial_dependence(
    curves: pd.DataFrame,
    covariates: pd.DataFrame,
    *,
    train: pd.DataFrame | None = None,
    order: Sequence[str] | None = None,
    ranks: pd.Series | None = None,
) -> Figure:
    """The paper's Figure 9: the predicted attainable gain against each driver.

    Parameters
    ----------
    curves : pandas.DataFrame
        :func:`nepkit.drivers.partial_dependence_curves` (``indicator, value, mean,
        lo, hi``; g C m-2 a-1).
    covariates : pandas.DataFrame
        The indicators of every mine of the run (their density, grey).
    train : pandas.DataFrame, optional
        The indicators of the training mines (their density, outlined).
    order : sequence of str, optional
        Panel order (default: the order of ``curves``), e.g. by conditional importance.
    ranks : pandas.Series, optional
        Conditional-importance rank per indicator, written in the panel titles.

    Returns
    -------
    matplotlib.figure.Figure
        Small multiples sharing the y axis: the partial dependence (line) with the
        10-90 % range of the centred individual conditional expectations (band), over
        histograms of the data.

    Examples
    --------
    >>> fig = fig9_partial_dependence(res.pd_curves, res.covariates, train=res.train)  # doctest: +SKIP
    """
    order = list(order) if order is not None else list(dict.fromkeys(curves["indicator"]))
    ncols = 4
    nrows = int(np.ceil((len(order) + 1) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(12, 2.7 * nrows), layout="constrained", sharey=True)
    axes = axes.ravel()
    for ax, name in zip(axes, order, strict=False):
        c = curves[curves["indicator"] == name]
        log = _log_axis(covariates[name])
        lo, hi = c["value"].min(), c["value"].max()
        bins = np.geomspace(lo, hi, 25) if log and lo > 0 else np.linspace(lo, hi, 25)
        dens = ax.twinx()
        _density(dens, covariates[name].clip(lo, hi), bins, fill=True, color="#dddddd")
        if train is not None:
            _density(dens, train[name].clip(lo, hi), bins, color="#555555", lw=0.8)
        dens.set_zorder(0)
        ax.set_zorder(1)
        ax.patch.set_visible(False)
        colour = _COLOUR.get(name, "black")
        ax.fill_between(c["value"], c["lo"], c["hi"], color=colour, alpha=0.18, lw=0)
        ax.plot(c["value"], c["mean"], color=colour, lw=2)
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        title = name if ranks is None or name not in ranks else f"{name} (CPI rank {int(ranks[name])})"
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[: len(order)][::ncols]:
        ax.set_ylabel(f"attainable gain, {UNIT}", fontsize=7)
    legend_ax = axes[len(order)]
    legend_ax.axis("off")
    legend_ax.legend(
        handles=[
            plt.Line2D([], [], color="black", lw=2, label="partial dependence"),
            Patch(color="black", alpha=0.18, label="10-90 % of the centred individual curves"),
            Patch(color="#dddddd", label="all mines (density)"),
            Patch(facecolor="none", edgecolor="#555555", label="training mines (density)"),
        ],
        loc="center", frameon=False, fontsize=8,
    )
    for ax in axes[len(order) + 1:]:
        ax.axis("off")
    return fig


def unavailable(message: str) -> Figure:
    """A placeholder figure saying why a region's figure could not be drawn.

    Examples
    --------
    >>> fig = unavailable("no model for this region")
    >>> fig.axes[0].texts[0].get_text()
    'no model for this region'
    """
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=10)
    return fig
