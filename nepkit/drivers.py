"""Drivers of the restoration potential: conditional permutation importance, beside
plain permutation importance and SHAP, and the relation of each driver to the
predicted attainable gain (the paper's section 2.3 and figure 9).

The paper ranks its 11 indicators by the *conditional* permutation importance of
Strobl et al. (2008, BMC Bioinformatics 9:307), as refined by Debeer & Strobl (2020,
BMC Bioinformatics 21:307; the R package ``permimp``). Permuting a predictor freely
breaks its association with the other predictors too, so a predictor with no effect
of its own that is correlated with a strong one looks important. The conditional
scheme permutes a predictor only *within* the cells of a grid built, in each tree,
from that tree's split points on the predictors associated with it, so the
permutation keeps the association and measures what the predictor adds beyond them.

:func:`conditional_permutation_importance` computes it for scikit-learn forests. In
each tree, on the tree's out-of-bag rows:

1. *Which predictors condition predictor j.* ``selection="strength"`` (the default):
   ``v`` conditions ``j`` when ``1 - p`` of the test of Spearman's rank correlation
   between them, computed as if on ``effective_n`` independent rows
   (:func:`association`), exceeds ``threshold``: a fixed cutoff on the strength of
   the association, ``|rho| > sqrt(chi2_1(threshold) / (effective_n - 1))``. With
   :data:`EFFECTIVE_N` = 20, ``threshold`` 0.2, 0.5, 0.8, 0.95 and 0.99 mean
   ``|rho|`` above 0.06, 0.15, 0.29, 0.45 and 0.59 (:func:`rho_cutoff`).
   ``selection="tree"`` (``permimp``'s default) and ``"global"`` (party's) use the
   same threshold on ``1 - p`` of significance tests on all the rows: per tree,
   Pearson's chi-squared test of the predictors binned by the tree's split points;
   globally, the correlation test on all rows of X.
2. *The grid.* The tree's split points on the conditioning predictors are taken in
   the order the tree made them (level by level from the root, left to right) and
   added to the grid for as long as an out-of-bag row's cell still holds, on
   average over the rows, at least ``min_cell_rows`` rows; by default the square
   root of the tree's out-of-bag rows (about 25 of 620, 8 of 65), so that the grid
   has about as many cells as a cell has rows (the square-root rule of histogram
   bins). When the tree's full grid is that coarse already, it is ``permimp``'s
   grid; ``min_cell_rows=1`` always gives it.
3. ``j`` is permuted within the cells; the tree's importance is its increase in mean
   squared error; a tree that never splits on ``j`` contributes 0. The forest's
   importance is the mean over trees.

``threshold=1`` selects nothing: the plain out-of-bag permutation importance,
computed the same way.

Why not ``permimp``'s scheme as it stands: significance grows with the number of
rows. The mines cluster in mining districts and share their gridded climate, so on
a sample of 1,700 mines a rank correlation of 0.05 is already "significant", and the
per-tree chi-squared test on the finely binned predictors of deep trees conditions a
predictor on most of the others; a fully grown tree has a hundred split points per
predictor, so the grid of a few conditioning predictors has about one out-of-bag row
per cell, often rows of one district with the same climate: the permutation moves
nothing, and every conditional importance collapses towards zero (party's default
threshold of 0.2 collapses the same way). Step 1 makes ``threshold`` a strength of association that does not
drift with the sample size; step 2 keeps the cells full enough to permute within.
Both stay inside the grid scheme of Strobl et al.: the cells are made of the tree's
own split points, coarsened from the leaves up. The diagnostics returned beside the
importance (conditioning variables per tree, rows per cell, share of the split points
the grid keeps, share of rows whose bin the permutation changes) show how much
conditioning took place; the chapter compares the rankings across thresholds, as
Debeer & Strobl advise.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import pandas as pd
from scipy.special import chdtr
from scipy.stats import chi2, rankdata
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.ensemble._forest import ForestRegressor
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from nepkit.artifacts import INDICATORS, artifact_path, read_artifact
from nepkit.io import update_summary, write_table
from nepkit.params import RunParams
from nepkit.potential import MODEL_DATA_FILE, MODEL_FILE
from nepkit.sources import truth_meta

__all__ = [
    "DriversError",
    "DriversResult",
    "SENSITIVITY_THRESHOLDS",
    "N_REPEATS",
    "EFFECTIVE_N",
    "association",
    "rho_cutoff",
    "conditioning_sets",
    "conditional_permutation_importance",
    "threshold_sensitivity",
    "plain_permutation_importance",
    "shap_values",
    "partial_dependence_curves",
    "drivers_table",
    "null_rank_check",
    "run",
]

#: Thresholds of the sensitivity analysis: party's default (0.2), values in between,
#: permimp's default (0.95), beyond, and 1 (no conditioning: marginal OOB importance).
SENSITIVITY_THRESHOLDS = (0.2, 0.5, 0.8, 0.95, 0.99, 1.0)
#: Permutations per predictor (and tree) of every permutation importance.
N_REPEATS = 5
#: Independent rows the association test of ``selection="strength"`` assumes: permimp's
#: default threshold 0.95 then conditions on predictors with ``|rho| > 0.45`` (``rho**2 > 0.2``).
EFFECTIVE_N = 20
#: Rows explained by SHAP, rows averaged by the partial dependence, its grid size.
SHAP_ROWS, PD_ROWS, PD_GRID = 300, 300, 20
#: Below these sizes the model sample is too small to rank drivers.
MIN_TRAIN_ROWS, MIN_TEST_ROWS = 20, 5

Association = Literal["pearson", "spearman"]
Selection = Literal["strength", "tree", "global"]


class DriversError(ValueError):
    """The model or its data cannot be used to compute driver importances."""


# --------------------------------------------------------------------------- model


def _unwrap(estimator: Any) -> tuple[Pipeline | None, ForestRegressor]:
    """Split ``estimator`` into (preprocessing pipeline or None, fitted forest)."""
    pre = None
    forest = estimator
    if isinstance(estimator, Pipeline):
        forest = estimator.steps[-1][1]
        pre = estimator[:-1] if len(estimator.steps) > 1 else None
    if not isinstance(forest, ForestRegressor):
        raise DriversError(
            f"expected a fitted scikit-learn forest regressor (RandomForestRegressor, ExtraTreesRegressor, "
            f"quantile_forest.RandomForestQuantileRegressor) or a Pipeline ending in one, got "
            f"{type(forest).__name__}"
        )
    check_is_fitted(forest)
    return pre, forest


def _names(estimator: Any, X: pd.DataFrame | np.ndarray) -> list[str]:
    """The predictor names: the estimator's ``feature_names_in_``, X's columns or x0, x1, ..."""
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None:
        return [str(n) for n in fitted]
    if isinstance(X, pd.DataFrame):
        return [str(c) for c in X.columns]
    return [f"x{i}" for i in range(np.shape(X)[1])]


def _as_frame(estimator: Any, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    """X as a DataFrame with the estimator's columns, in its order."""
    names = _names(estimator, X)
    if not isinstance(X, pd.DataFrame):
        return pd.DataFrame(np.asarray(X), columns=names)
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise DriversError(f"X lacks the model's predictor(s) {', '.join(missing)}")
    return X[names]


def _model_space(estimator: Any, X: pd.DataFrame | np.ndarray) -> tuple[ForestRegressor, np.ndarray, list[str]]:
    """The forest, X in the forest's input space (float32, as trees see it) and the names."""
    pre, forest = _unwrap(estimator)
    frame = _as_frame(estimator, X)
    values = pre.transform(frame) if pre is not None else frame
    Xt = np.ascontiguousarray(np.asarray(values, dtype=np.float32))
    if not np.isfinite(Xt).all():
        raise DriversError("X holds missing or infinite values: drop or impute those rows first")
    if Xt.shape[1] != forest.n_features_in_:
        raise DriversError(f"X has {Xt.shape[1]} predictors, the forest expects {forest.n_features_in_}")
    return forest, Xt, list(frame.columns)


# ------------------------------------------------------------------ association


def association(
    X: pd.DataFrame | np.ndarray, *, method: Association = "pearson", effective_n: float | None = None
) -> pd.DataFrame:
    """Pairwise association of the predictors as ``1 - p`` of a test of independence.

    The statistic is party's conditional-inference statistic for two numeric
    variables, ``(n - 1) r**2``, referred to a chi-squared distribution with one
    degree of freedom (party's ``varimp`` selects conditioning variables with it).
    With ``effective_n``, ``n`` is that number instead of the number of rows: the
    test then measures the strength of the association, not how many rows show it.

    Parameters
    ----------
    X : DataFrame or array of shape (n, p)
        The predictors (in the space the forest sees them).
    method : {"pearson", "spearman"}
        Correlation ``r`` of the statistic: Pearson's, or Pearson's of the ranks.
    effective_n : float, optional
        Independent rows the test assumes (more than 1); default: the rows of X.

    Returns
    -------
    pandas.DataFrame
        ``p x p``, values in [0, 1], 0 on the diagonal and for constant predictors.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=200)
    >>> X = pd.DataFrame({"a": a, "b": a + rng.normal(size=200), "c": rng.normal(size=200)})
    >>> bool(association(X).loc["a", "b"] > 0.99)
    True
    >>> round(float(association(X, effective_n=20).loc["a", "b"]), 3)  # r = 0.66
    0.996
    >>> round(float(association(X, effective_n=20).loc["a", "c"]), 2)  # r = 0.06
    0.21
    """
    names = list(X.columns) if isinstance(X, pd.DataFrame) else [f"x{i}" for i in range(np.shape(X)[1])]
    A = np.asarray(X, dtype=float)
    if method == "spearman":
        A = rankdata(A, axis=0)
    elif method != "pearson":
        raise DriversError(f"association method must be 'pearson' or 'spearman', got {method!r}")
    n = len(A) if effective_n is None else effective_n
    if n <= 1:
        raise DriversError(f"effective_n must exceed 1 (independent rows of the association test), got {n}")
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(A, rowvar=False)
    crit = chi2.cdf((n - 1) * np.nan_to_num(r) ** 2, df=1)
    np.fill_diagonal(crit, 0.0)
    return pd.DataFrame(crit, index=names, columns=names)


def rho_cutoff(threshold: float, effective_n: float = EFFECTIVE_N) -> float:
    """The correlation above which :func:`association` at ``effective_n`` exceeds ``threshold``.

    ``sqrt(chi2_1(threshold) / (effective_n - 1))``, capped at 1; 1 for threshold 1.

    Examples
    --------
    >>> [round(rho_cutoff(t), 2) for t in (0.2, 0.5, 0.8, 0.95, 0.99)]
    [0.06, 0.15, 0.29, 0.45, 0.59]
    """
    _check_threshold(threshold)
    return float(min(1.0, np.sqrt(chi2.ppf(threshold, df=1) / (effective_n - 1))))


def conditioning_sets(assoc: pd.DataFrame, threshold: float) -> dict[str, list[str]]:
    """For each predictor, the others whose association (``1 - p``) exceeds ``threshold``.

    Examples
    --------
    >>> a = pd.DataFrame([[0, 0.99, 0.1], [0.99, 0, 0.3], [0.1, 0.3, 0]], index=list("abc"), columns=list("abc"))
    >>> conditioning_sets(a, 0.95)
    {'a': ['b'], 'b': ['a'], 'c': []}
    """
    _check_threshold(threshold)
    return {j: [v for v in assoc.columns if v != j and assoc.loc[j, v] > threshold] for j in assoc.index}


def _check_threshold(threshold: float) -> None:
    if not 0 <= threshold <= 1:
        raise DriversError(f"threshold must lie in [0, 1] (1 = no conditioning), got {threshold}")


def _binned_association(codes: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``1 - p`` of Pearson's chi-squared test of independence of each pair of binned predictors.

    ``codes`` (rows x k) holds dense bin numbers ``0 .. levels - 1``. The statistic is
    ``n * (sum O**2 / (R C) - 1)`` over the cells of the contingency table (empty ones
    add nothing), with ``(ra - 1)(rb - 1)`` degrees of freedom; a pair with a single
    occupied bin on either side has none and is not associated.
    """
    n, k = codes.shape
    margins = [np.bincount(codes[:, a], minlength=levels[a]) for a in range(k)]
    stat, df = np.zeros((k, k)), np.zeros((k, k))
    for a in range(k):
        for b in range(a + 1, k):
            counts = np.bincount(codes[:, a] * levels[b] + codes[:, b], minlength=levels[a] * levels[b])
            counts = counts.reshape(levels[a], levels[b])
            stat[a, b] = n * (np.sum(counts**2 / np.outer(margins[a], margins[b])) - 1.0)
            df[a, b] = (levels[a] - 1) * (levels[b] - 1)
    crit = np.where(df > 0, chdtr(np.maximum(df, 1), stat), 0.0)
    return crit + crit.T


# ----------------------------------------------------- conditional permutation


def _rows_per_tree(forest: ForestRegressor, n: int, data: str) -> list[np.ndarray]:
    """Rows each tree is evaluated on: its out-of-bag rows, or all rows (held-out data)."""
    if data == "holdout":
        return [np.arange(n)] * len(forest.estimators_)
    if data != "oob":
        raise DriversError(f"data must be 'oob' or 'holdout', got {data!r}")
    if not forest.bootstrap:
        raise DriversError("the forest was fitted without bootstrap, so it has no out-of-bag rows: use data='holdout'")
    n_fit = getattr(forest, "_n_samples", getattr(forest, "n_train_samples_", n))
    if n_fit != n:
        raise DriversError(
            f"data='oob' needs the forest's training rows in fitting order: the forest saw {n_fit} rows, X has {n}"
        )
    return [np.flatnonzero(np.bincount(inbag, minlength=n) == 0) for inbag in forest.estimators_samples_]


def _level_order(tree: Any) -> np.ndarray:
    """The tree's internal nodes in the order it made them: level by level from the root, left to right."""
    t = tree.tree_
    levels, level = [], np.array([0])
    while len(level):
        levels.append(level)
        children = np.column_stack([t.children_left[level], t.children_right[level]]).ravel()
        level = children[children >= 0]
    nodes = np.concatenate(levels)
    return nodes[t.feature[nodes] >= 0]


@dataclass(frozen=True)
class _TreeSplits:
    """A tree's split points and the evaluation rows binned by them.

    ``used``: predictors the tree splits on; ``values``: the rows' values of those
    predictors (columns follow ``used``); ``codes`` and ``levels``: the rows' dense
    bins by all split points of each used predictor; ``order`` and ``thresholds``:
    position in ``used`` of the predictor of each split, and its split point, in
    level order.
    """

    used: np.ndarray
    values: np.ndarray
    codes: np.ndarray
    levels: np.ndarray
    order: np.ndarray
    thresholds: np.ndarray


def _tree_splits(tree: Any, Xo: np.ndarray) -> _TreeSplits:
    """Bin the evaluation rows ``Xo`` by the tree's split points."""
    t = tree.tree_
    nodes = _level_order(tree)
    feats, thresholds = t.feature[nodes], t.threshold[nodes]
    used = np.unique(feats)
    values = Xo[:, used]
    codes = np.empty((len(Xo), len(used)), dtype=np.int64)
    levels = np.empty(len(used), dtype=np.int64)
    for a, v in enumerate(used):
        raw = np.searchsorted(np.unique(thresholds[feats == v]), values[:, a], side="left")
        occupied, codes[:, a] = np.unique(raw, return_inverse=True)
        levels[a] = len(occupied)
    return _TreeSplits(used, values, codes, levels, np.searchsorted(used, feats), thresholds)


def _cell_ids(codes: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Dense cell number of each row of a (rows x variables) bin matrix; 0 everywhere without variables.

    Mixed-radix numbers of the bins, made dense again whenever the next factor could
    overflow 64-bit integers.
    """
    ids = np.zeros(len(codes), dtype=np.int64)
    size = 1
    for c in range(codes.shape[1]):
        if size * int(levels[c]) >= 2**62:
            occupied, ids = np.unique(ids, return_inverse=True)
            size = len(occupied)
        ids = ids * levels[c] + codes[:, c]
        size *= int(levels[c])
    return np.unique(ids, return_inverse=True)[1].ravel()


def _rows_per_cell(cells: np.ndarray) -> float:
    """Mean, over rows, of the number of rows in a row's cell."""
    return float(np.bincount(cells)[cells].mean())


def _grid(splits: _TreeSplits, cond: Sequence[int], min_cell_rows: float) -> tuple[np.ndarray, float]:
    """The conditioning grid of one predictor: its cells and the share of split points it keeps.

    The grid of the first ``k`` split points on ``cond`` in level order, ``k`` as large
    as keeps :func:`_rows_per_cell` at least ``min_cell_rows`` (it only falls as ``k``
    grows: bisection). A row's bin on predictor ``v`` is the number of kept split
    points on ``v`` below its value (a tree sends ``x <= t`` left): rows share a bin
    exactly when no kept split point separates them. The share is NaN when the tree
    does not split on ``cond``.
    """
    candidates = np.flatnonzero(np.isin(splits.order, cond))
    if len(candidates) == 0:
        return np.zeros(len(splits.values), dtype=np.int64), np.nan
    on = splits.order[candidates]
    above = splits.values[:, on] > splits.thresholds[candidates]
    below = {a: np.cumsum(above[:, on == a], axis=1) for a in cond}  # bins by the first 1, 2, ... split points
    kept = {a: np.cumsum(on == a) for a in cond}  # split points on a among the first 1, 2, ... candidates

    def cells(k: int) -> np.ndarray:
        counts = np.array([kept[a][k - 1] if k else 0 for a in cond])
        codes = np.column_stack([below[a][:, c - 1] if c else np.zeros(len(above), dtype=np.int64)
                                 for a, c in zip(cond, counts, strict=True)])
        return _cell_ids(codes, counts + 1)

    full = cells(len(candidates))
    if _rows_per_cell(full) >= min_cell_rows:
        return full, 1.0
    lo, hi, best = 0, len(candidates) - 1, cells(0)
    while lo < hi:  # invariant: the first lo split points keep the cells full enough, the first hi + 1 do not
        mid = (lo + hi + 1) // 2
        trial = cells(mid)
        if _rows_per_cell(trial) >= min_cell_rows:
            lo, best = mid, trial
        else:
            hi = mid - 1
    return best, lo / len(candidates)


def _within_cell_permutations(
    cells: np.ndarray, rng: np.random.Generator, n_repeats: int, by_cell: np.ndarray | None = None
) -> np.ndarray:
    """``n_repeats`` rows of indices ``perm`` such that ``x[perm]`` permutes ``x`` at random within each cell.

    Sorting by cell plus a uniform random key lists each cell's rows in random order;
    a stable sort by cell (``by_cell``, computed when not given) lists them in their
    own order; pairing the two maps every row to a random row of its cell.
    """
    by_cell = np.argsort(cells, kind="stable") if by_cell is None else by_cell
    perms = np.empty((n_repeats, len(cells)), dtype=np.intp)
    perms[:, by_cell] = np.argsort(cells + rng.random((n_repeats, len(cells))), axis=1, kind="stable")
    return perms


@dataclass(frozen=True)
class _Scheme:
    """How conditioning variables are chosen (threshold, per-tree test or global sets) and the grid's floor."""

    threshold: float
    selection: Selection
    global_sets: list[list[int]]
    min_cell_rows: float | None

    def conditioning(self, state: _TreeState) -> list[list[int]]:
        """For each used predictor (position in ``state.splits.used``), the positions it is conditioned on."""
        used = state.splits.used
        if self.selection == "tree":
            return [list(np.flatnonzero(state.binned_association()[a] > self.threshold)) for a in range(len(used))]
        where = {v: a for a, v in enumerate(used)}
        return [[where[v] for v in self.global_sets[j] if v in where] for j in used]


@dataclass
class _TreeState:
    """One tree on its evaluation rows: predictions, split points, and the grids built so far."""

    tree: Any
    Xo: np.ndarray
    yo: np.ndarray
    base: np.ndarray
    splits: _TreeSplits
    grids: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, float]] = field(default_factory=dict)
    crit: np.ndarray | None = None

    def binned_association(self) -> np.ndarray:
        """:func:`_binned_association` of the tree's bins (computed once)."""
        if self.crit is None:
            self.crit = _binned_association(self.splits.codes, self.splits.levels)
        return self.crit

    def grid(self, cond: list[int], min_cell_rows: float | None) -> tuple[np.ndarray, np.ndarray, float]:
        """Cells, their stable sort order and the grid share of :func:`_grid` (computed once per set).

        ``min_cell_rows=None``: the square root of the tree's evaluation rows.
        """
        key = tuple(cond)
        if key not in self.grids:
            floor = np.sqrt(len(self.Xo)) if min_cell_rows is None else min_cell_rows
            cells, share = _grid(self.splits, cond, floor)
            self.grids[key] = (cells, np.argsort(cells, kind="stable"), share)
        return self.grids[key]


@dataclass
class _TreeResult:
    increase: np.ndarray  # (n_repeats, p): MSE increase of the tree
    used: np.ndarray  # (p,) bool: the tree splits on the predictor
    n_conditioning: np.ndarray  # (p,) conditioning variables in this tree
    rows_per_cell: np.ndarray  # (p,) mean number of rows in a row's cell
    grid_share: np.ndarray  # (p,) share of the conditioning variables' split points in the grid
    moved: np.ndarray  # (p,) share of rows whose bin the permutation changed


def _permute_tree(state: _TreeState, scheme: _Scheme, n_repeats: int, rng: np.random.Generator) -> _TreeResult:
    """Conditional permutation importance of one tree on its evaluation rows."""
    Xo, splits = state.Xo, state.splits
    m, p = Xo.shape
    cond = scheme.conditioning(state)
    out = _TreeResult(np.zeros((n_repeats, p)), np.isin(np.arange(p), splits.used), *np.full((4, p), np.nan))
    blocks, targets = [], []
    for a, j in enumerate(splits.used):
        cells, by_cell, out.grid_share[j] = state.grid(cond[a], scheme.min_cell_rows)
        out.n_conditioning[j] = len(cond[a])
        out.rows_per_cell[j] = _rows_per_cell(cells)
        perms = _within_cell_permutations(cells, rng, n_repeats, by_cell)
        moved = np.mean(splits.codes[perms, a] != splits.codes[:, a], axis=1)
        for r in np.flatnonzero(moved > 0):  # else the tree's prediction cannot change: increase 0
            Xp = Xo.copy()
            Xp[:, j] = Xo[perms[r], j]
            blocks.append(Xp)
            targets.append((r, j))
        out.moved[j] = moved.mean()
    if blocks:
        pred = state.tree.predict(np.concatenate(blocks), check_input=False).reshape(len(blocks), m)
        loss = np.mean((state.yo - pred) ** 2, axis=1) - np.mean((state.yo - state.base) ** 2)
        rr, jj = np.array(targets).T
        out.increase[rr, jj] = loss
    return out


def _check_oob_alignment(forest: ForestRegressor, rows: list[np.ndarray], preds: list[np.ndarray], n: int) -> None:
    """Compare our out-of-bag predictions with the forest's own when it stored them."""
    stored = getattr(forest, "oob_prediction_", None)
    if stored is None or not isinstance(forest, (RandomForestRegressor, ExtraTreesRegressor)):
        return
    total, count = np.zeros(n), np.zeros(n)
    for r, pr in zip(rows, preds, strict=True):
        total[r] += pr
        count[r] += 1
    ok = count > 0
    if not np.allclose(total[ok] / count[ok], np.ravel(stored)[ok], rtol=1e-5, atol=1e-6):
        raise DriversError(
            "the out-of-bag rows do not match the forest's own out-of-bag predictions: pass the training "
            "rows in the order the forest was fitted on, or use data='holdout' with held-out rows"
        )


def _global_sets(
    Xt: np.ndarray, names: list[str], threshold: float, selection: Selection, method: Association, effective_n: float
) -> list[list[int]]:
    """Conditioning variables of each predictor (positions) for the ``strength`` and ``global`` selections."""
    if selection == "tree":
        return []
    n = effective_n if selection == "strength" else None
    sets = conditioning_sets(association(pd.DataFrame(Xt, columns=names), method=method, effective_n=n), threshold)
    return [[names.index(v) for v in sets[j]] for j in names]


def _check_options(thresholds: Sequence[float], n_repeats: int, selection: str, min_cell_rows: float | None) -> None:
    for t in thresholds:
        _check_threshold(t)
    if n_repeats < 1:
        raise DriversError(f"n_repeats must be at least 1, got {n_repeats}")
    if selection not in ("strength", "tree", "global"):
        raise DriversError(f"selection must be 'strength', 'tree' or 'global', got {selection!r}")
    if min_cell_rows is not None and not min_cell_rows >= 1:
        raise DriversError(
            f"min_cell_rows must be None (square-root rule) or at least 1 (1 keeps the tree's full grid), "
            f"got {min_cell_rows}"
        )


def _importances(
    estimator: Any,
    X: pd.DataFrame | np.ndarray,
    y: pd.Series | np.ndarray,
    thresholds: Sequence[float],
    *,
    n_repeats: int = N_REPEATS,
    random_state: int | None = None,
    data: Literal["oob", "holdout"] = "oob",
    selection: Selection = "strength",
    association_method: Association = "spearman",
    effective_n: float = EFFECTIVE_N,
    min_cell_rows: float | None = None,
) -> list[pd.DataFrame]:
    """:func:`conditional_permutation_importance` at each threshold, in one pass over the trees.

    Each threshold gets its own generator seeded with ``random_state``, so the result
    at a threshold does not depend on the other thresholds; the trees' bins and grids
    are built once. Thresholds with the same conditioning sets (``strength`` and
    ``global`` selections) give the same table, computed once.
    """
    _check_options(thresholds, n_repeats, selection, min_cell_rows)
    forest, Xt, names = _model_space(estimator, X)
    yv = np.asarray(y, dtype=float).ravel()
    if len(yv) != len(Xt):
        raise DriversError(f"X has {len(Xt)} rows but y has {len(yv)}")
    schemes = [_Scheme(t, selection, _global_sets(Xt, names, t, selection, association_method, effective_n),
                       min_cell_rows) for t in thresholds]
    # thresholds with the same conditioning sets share one computation (not so for per-tree selection)
    keys = [t if selection == "tree" else repr(s.global_sets) for t, s in zip(thresholds, schemes, strict=True)]
    distinct = {k: schemes[keys.index(k)] for k in keys}
    rows = _rows_per_tree(forest, len(Xt), data)
    rngs = {k: np.random.default_rng(random_state) for k in distinct}
    results: dict[Any, list[_TreeResult]] = {k: [] for k in distinct}
    preds = []
    for tree, r in zip(forest.estimators_, rows, strict=True):
        if len(r) == 0:
            continue
        state = _TreeState(tree, Xt[r], yv[r], tree.predict(Xt[r], check_input=False), _tree_splits(tree, Xt[r]))
        preds.append(state.base)
        for k, scheme in distinct.items():
            results[k].append(_permute_tree(state, scheme, n_repeats, rngs[k]))
    if not preds:
        raise DriversError("no tree has out-of-bag rows: too few training rows for importances")
    if data == "oob":
        _check_oob_alignment(forest, [r for r in rows if len(r)], preds, len(Xt))
    tables = []
    for t, k in zip(thresholds, keys, strict=True):
        settings = {"threshold": t, "data": data, "selection": selection, "n_trees": len(preds),
                    "min_cell_rows": min_cell_rows}
        if selection == "strength":
            settings.update(effective_n=effective_n, rho_cutoff=rho_cutoff(t, effective_n))
        tables.append(_cpi_table(names, results[k], n_repeats).pipe(_with_attrs, **settings))
    return tables


def conditional_permutation_importance(
    estimator: Any,
    X: pd.DataFrame | np.ndarray,
    y: pd.Series | np.ndarray,
    *,
    threshold: float = 0.95,
    n_repeats: int = N_REPEATS,
    random_state: int | None = None,
    data: Literal["oob", "holdout"] = "oob",
    selection: Selection = "strength",
    association_method: Association = "spearman",
    effective_n: float = EFFECTIVE_N,
    min_cell_rows: float | None = None,
) -> pd.DataFrame:
    """Conditional permutation importance (Strobl et al. 2008; Debeer & Strobl 2020).

    Parameters
    ----------
    estimator : fitted forest regressor or Pipeline ending in one
        ``RandomForestRegressor``, ``ExtraTreesRegressor`` or
        ``RandomForestQuantileRegressor`` (whose trees' mean is used), bare or as the
        last step of a Pipeline (the earlier steps transform X; split points, grids
        and associations are then in the transformed space).
    X : DataFrame or array of shape (n, p)
        With ``data="oob"``: the forest's training predictors, in fitting order.
        With ``data="holdout"``: held-out rows, evaluated by every tree.
    y : array of shape (n,)
        The response, in the forest's units.
    threshold : float
        A variable conditions a predictor when their association ``1 - p`` exceeds
        it. 1 conditions on nothing (marginal permutation importance, computed the
        same way). ``permimp``'s default is 0.95, party's 0.2. Under the default
        ``selection="strength"`` it is a cutoff on ``|rho|`` (:func:`rho_cutoff`).
    n_repeats : int
        Permutations per predictor and tree; the reported sd is over repeats.
    random_state : int or None
        Seed of the permutations.
    data : {"oob", "holdout"}
        Evaluate each tree on its out-of-bag rows (``permimp``'s default) or every
        tree on all rows of ``X``.
    selection : {"strength", "tree", "global"}
        ``"strength"``: the correlation test of :func:`association` at
        ``effective_n`` rows (a fixed cutoff on the correlation). ``"tree"``: in
        each tree, Pearson's chi-squared test of independence of the two predictors
        binned by the tree's split points, on the evaluation rows (``permimp``'s
        default). ``"global"``: the correlation test of :func:`association` on all
        rows of X (party's scheme, which uses Pearson's correlation).
    association_method : {"spearman", "pearson"}
        Correlation of the ``strength`` and ``global`` tests.
    effective_n : float
        Independent rows assumed by the ``strength`` test (more than 1).
    min_cell_rows : float or None
        Floor of the mean number of evaluation rows in a row's grid cell: the grid
        keeps the tree's split points on the conditioning variables, in level
        order, only as far as the floor allows. None: the square root of the tree's
        evaluation rows. 1 keeps them all (``permimp``'s grid).

    Returns
    -------
    pandas.DataFrame
        One row per predictor, in X's order: ``indicator``; ``mean`` and ``sd`` of the
        increase in mean squared error (units of y squared); ``trees_used`` (share of
        trees splitting on it); averaged over those trees, ``n_conditioning`` (the
        variables it is conditioned on), ``rows_per_cell`` (evaluation rows in a row's
        cell), ``grid_share`` (share of the tree's split points on the conditioning
        variables that the grid keeps; NaN without any) and ``moved_share`` (share of
        rows whose bin of the predictor the permutation changed: 0 means the
        permutation can change nothing). ``attrs`` holds the settings.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3))
    >>> y = 2 * X[:, 0] + rng.normal(scale=0.5, size=300)
    >>> rf = RandomForestRegressor(n_estimators=20, min_samples_leaf=5, random_state=0).fit(X, y)
    >>> cpi = conditional_permutation_importance(rf, X, y, random_state=0)
    >>> cpi.sort_values("mean").indicator.iloc[-1]
    'x0'
    """
    return _importances(
        estimator, X, y, [threshold], n_repeats=n_repeats, random_state=random_state, data=data,
        selection=selection, association_method=association_method, effective_n=effective_n,
        min_cell_rows=min_cell_rows,
    )[0]


def _cpi_table(names: list[str], results: list[_TreeResult], n_repeats: int) -> pd.DataFrame:
    """Average the trees' importances and diagnostics."""
    imp = np.mean([res.increase for res in results], axis=0)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN diagnostics of predictors no tree uses
        return pd.DataFrame(
            {
                "indicator": names,
                "mean": imp.mean(axis=0),
                "sd": imp.std(axis=0, ddof=1) if n_repeats > 1 else np.nan,
                "trees_used": np.mean([res.used for res in results], axis=0),
                "n_conditioning": np.nanmean([res.n_conditioning for res in results], axis=0),
                "rows_per_cell": np.nanmean([res.rows_per_cell for res in results], axis=0),
                "grid_share": np.nanmean([res.grid_share for res in results], axis=0),
                "moved_share": np.nanmean([res.moved for res in results], axis=0),
            }
        )


def _with_attrs(table: pd.DataFrame, **attrs: Any) -> pd.DataFrame:
    table.attrs.update(attrs)
    return table


def threshold_sensitivity(
    estimator: Any,
    X: pd.DataFrame | np.ndarray,
    y: pd.Series | np.ndarray,
    *,
    thresholds: Sequence[float] = SENSITIVITY_THRESHOLDS,
    **kwargs: Any,
) -> pd.DataFrame:
    """Conditional permutation importance at several thresholds, in long form.

    Parameters
    ----------
    estimator, X, y
        As for :func:`conditional_permutation_importance`.
    thresholds : sequence of float
        Association thresholds, each in [0, 1].
    **kwargs
        Passed on (``n_repeats``, ``random_state``, ``data``, ``selection``, ...).
        The same seed at every threshold: each threshold's table is the one
        :func:`conditional_permutation_importance` returns (computed in one pass).

    Returns
    -------
    pandas.DataFrame
        ``threshold``, the columns of :func:`conditional_permutation_importance` and
        ``rank`` (1 = most important at that threshold).

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> rf = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, X[:, 0])
    >>> threshold_sensitivity(rf, X, X[:, 0], thresholds=[0.5, 1.0], random_state=0).shape
    (4, 10)
    """
    ordered = sorted(set(thresholds))
    parts = []
    for t, part in zip(ordered, _importances(estimator, X, y, ordered, **kwargs), strict=True):
        part.insert(0, "threshold", t)
        part["rank"] = _rank(part["mean"])
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _rank(values: pd.Series) -> pd.Series:
    """Rank 1 = largest; ties share the best rank; NaN stays NaN."""
    return values.rank(ascending=False, method="min").astype("Int64")


# ------------------------------------------------------------ the other two


def plain_permutation_importance(
    estimator: Any,
    X: pd.DataFrame | np.ndarray,
    y: pd.Series | np.ndarray,
    *,
    n_repeats: int = N_REPEATS,
    random_state: int | None = None,
) -> pd.DataFrame:
    """Plain (marginal) permutation importance of scikit-learn on held-out rows.

    Parameters
    ----------
    estimator : fitted estimator
        The whole model (a Pipeline is permuted in its input units).
    X, y
        Held-out predictors and response.
    n_repeats : int
        Permutations per predictor.
    random_state : int or None
        Seed.

    Returns
    -------
    pandas.DataFrame
        ``indicator, mean, sd``: the increase in mean squared error (units of y squared).

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> rf = RandomForestRegressor(n_estimators=10, random_state=0).fit(X[:150], X[:150, 0])
    >>> plain_permutation_importance(rf, X[150:], X[150:, 0], random_state=0).indicator.tolist()
    ['x0', 'x1']
    """
    frame = _as_frame(estimator, X)
    res = permutation_importance(
        estimator, frame if hasattr(estimator, "feature_names_in_") else frame.to_numpy(), np.asarray(y),
        scoring="neg_mean_squared_error", n_repeats=n_repeats, random_state=random_state, n_jobs=1,
    )
    return pd.DataFrame(
        {"indicator": list(frame.columns), "mean": res.importances_mean, "sd": res.importances_std}
    )


def _shap_model(forest: ForestRegressor) -> Any:
    """A forest SHAP's TreeExplainer knows; a quantile forest is explained as the mean of its trees."""
    if isinstance(forest, (RandomForestRegressor, ExtraTreesRegressor)):
        return forest
    shell = RandomForestRegressor(criterion=forest.criterion)
    shell.estimators_ = forest.estimators_
    shell.n_outputs_ = forest.n_outputs_
    return shell


def shap_values(
    estimator: Any,
    X: pd.DataFrame | np.ndarray,
    *,
    max_rows: int = SHAP_ROWS,
    random_state: int | None = None,
) -> pd.DataFrame:
    """SHAP values (TreeExplainer, path-dependent) of the forest on a subsample of X.

    Parameters
    ----------
    estimator : fitted forest or Pipeline ending in one
        Explained in the forest's input space (after the pipeline's transform), in
        the units of the response.
    X : DataFrame or array
        Rows to explain; at most ``max_rows`` of them, drawn at random.
    max_rows : int
        Size of the subsample.
    random_state : int or None
        Seed of the subsample.

    Returns
    -------
    pandas.DataFrame
        One row per explained row (index: the row's position in X), one column per
        predictor. ``mean |SHAP|`` per column is the SHAP importance.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2))
    >>> rf = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, X[:, 0])
    >>> shap_values(rf, X, max_rows=20, random_state=0).shape
    (20, 2)
    """
    with warnings.catch_warnings():  # shap's import warns about notebook progress bars
        warnings.filterwarnings("ignore", message="IProgress not found")
        import shap  # slow import: only here

    forest, Xt, names = _model_space(estimator, X)
    rows = _subsample(len(Xt), max_rows, random_state)
    explainer = shap.TreeExplainer(_shap_model(forest))
    values = explainer.shap_values(Xt[rows], check_additivity=False)
    return pd.DataFrame(np.asarray(values), columns=names, index=rows)


def _subsample(n: int, size: int, random_state: int | None) -> np.ndarray:
    """Sorted positions of at most ``size`` of ``n`` rows, drawn without replacement."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size, replace=False))


def partial_dependence_curves(
    estimator: Any,
    X: pd.DataFrame,
    *,
    grid_points: int = PD_GRID,
    max_rows: int = PD_ROWS,
    quantile_range: tuple[float, float] = (0.02, 0.98),
    random_state: int | None = None,
) -> pd.DataFrame:
    """Partial dependence of the model's prediction on each predictor, in input units.

    For each predictor and grid value, the predictor is set to the value in every
    row of a subsample of X and the predictions are averaged (individual conditional
    expectations, one ``predict`` call per predictor). The grid is made of quantiles
    of X, so it is dense where the data are.

    Parameters
    ----------
    estimator : fitted estimator
        The whole model (Pipeline included): the grid is in X's units.
    X : DataFrame
        Rows to average over (a subsample of ``max_rows``) and whose quantiles make
        the grid.
    grid_points : int
        Quantiles per predictor, equally spaced in ``quantile_range``.
    max_rows, random_state
        Subsample size and seed.
    quantile_range : (float, float)
        Lowest and highest quantile of the grid.

    Returns
    -------
    pandas.DataFrame
        ``indicator, value, mean, lo, hi``: the partial dependence (mean of the
        individual conditional expectations) and the 10th and 90th percentiles of the
        individual curves once each is centred on the partial dependence's mean level
        (the spread of the effect, not of the level), in the units of the prediction.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.normal(size=(100, 2)), columns=["a", "b"])
    >>> rf = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, X["a"])
    >>> pd_a = partial_dependence_curves(rf, X, grid_points=5).query("indicator == 'a'")
    >>> bool(pd_a["mean"].is_monotonic_increasing)
    True
    """
    frame = _as_frame(estimator, X).astype(float)
    sub = frame.iloc[_subsample(len(frame), max_rows, random_state)]
    quantiles = np.linspace(*quantile_range, grid_points)
    parts = []
    for name in frame.columns:
        grid = np.unique(np.quantile(frame[name], quantiles))
        rows = pd.concat([sub] * len(grid), ignore_index=True)
        rows[name] = np.repeat(grid, len(sub))
        ice = np.asarray(estimator.predict(rows), dtype=float).reshape(len(grid), len(sub))
        centred = ice - ice.mean(axis=0) + ice.mean()  # each mine's curve moved to the mean level
        parts.append(
            pd.DataFrame(
                {
                    "indicator": name,
                    "value": grid,
                    "mean": ice.mean(axis=1),
                    "lo": np.quantile(centred, 0.1, axis=1),
                    "hi": np.quantile(centred, 0.9, axis=1),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------- the table


def drivers_table(cpi: pd.DataFrame, permutation: pd.DataFrame, shap: pd.DataFrame) -> pd.DataFrame:
    """The three importances side by side with their ranks (``drivers.csv``).

    Parameters
    ----------
    cpi, permutation : DataFrame
        ``indicator, mean, sd`` (from :func:`conditional_permutation_importance` and
        :func:`plain_permutation_importance`).
    shap : DataFrame
        SHAP values (:func:`shap_values`); the importance is the mean absolute value.

    Returns
    -------
    pandas.DataFrame
        ``indicator, cpi, cpi_sd, permutation, permutation_sd, shap, cpi_rank,
        permutation_rank, shap_rank``, sorted by ``cpi_rank``.

    Examples
    --------
    >>> c = pd.DataFrame({"indicator": ["a", "b"], "mean": [1.0, 2.0], "sd": [0.1, 0.1]})
    >>> s = pd.DataFrame({"a": [1.0, -1.0], "b": [0.5, 0.5]})
    >>> drivers_table(c, c, s)[["indicator", "cpi_rank", "shap_rank"]].values.tolist()
    [['b', 1, 2], ['a', 2, 1]]
    """
    table = pd.DataFrame({"indicator": cpi["indicator"].to_numpy()})
    by = table["indicator"]
    table["cpi"] = cpi.set_index("indicator").loc[by, "mean"].to_numpy()
    table["cpi_sd"] = cpi.set_index("indicator").loc[by, "sd"].to_numpy()
    table["permutation"] = permutation.set_index("indicator").loc[by, "mean"].to_numpy()
    table["permutation_sd"] = permutation.set_index("indicator").loc[by, "sd"].to_numpy()
    table["shap"] = shap.abs().mean().loc[by].to_numpy()
    for col in ("cpi", "permutation", "shap"):
        table[f"{col}_rank"] = _rank(table[col])
    return table.sort_values(["cpi_rank", "indicator"], ignore_index=True)


def null_rank_check(drivers_df: pd.DataFrame, truth: Mapping[str, Any]) -> dict[str, Any]:
    """Do the indicators without effect rank below the true drivers?

    Parameters
    ----------
    drivers_df : DataFrame
        ``drivers.csv`` (``indicator`` and ``<method>_rank`` columns).
    truth : mapping
        The synthetic world's ``truth.json``: ``driver_weights`` (indicator -> weight)
        and ``null_indicators`` (list).

    Returns
    -------
    dict
        ``drivers`` and ``nulls`` (names); per method (``cpi``, ``permutation``,
        ``shap``): ``worst_driver_rank``, ``best_null_rank``, ``ordered_share`` (share
        of (driver, null) pairs where the driver ranks above the null) and ``passed``
        (every null below every driver).

    Examples
    --------
    >>> df = pd.DataFrame({"indicator": ["a", "b", "c"], "cpi_rank": [1, 2, 3]})
    >>> truth = {"driver_weights": {"a": 1.0, "b": 0.5, "c": 0.0}, "null_indicators": ["c"]}
    >>> null_rank_check(df, truth)["cpi"]["passed"]
    True
    """
    weights = dict(truth.get("driver_weights", {}))
    nulls = [n for n in truth.get("null_indicators", []) if n in set(drivers_df["indicator"])]
    drivers = [n for n, w in weights.items() if n not in nulls and w and n in set(drivers_df["indicator"])]
    if not nulls or not drivers:
        raise DriversError("truth must name at least one true driver and one null indicator present in the table")
    out: dict[str, Any] = {"drivers": drivers, "nulls": nulls}
    ranks = drivers_df.set_index("indicator")
    for method in ("cpi", "permutation", "shap"):
        col = f"{method}_rank"
        if col not in ranks or ranks[col].isna().any():
            continue
        d = ranks.loc[drivers, col].to_numpy(dtype=float)
        z = ranks.loc[nulls, col].to_numpy(dtype=float)
        out[method] = {
            "worst_driver_rank": int(d.max()),
            "best_null_rank": int(z.min()),
            "ordered_share": float(np.mean(d[:, None] < z[None, :])),
            "passed": bool(d.max() < z.min()),
        }
    return out


# ------------------------------------------------------------------- run


@dataclass
class DriversResult:
    """What the drivers chapter shows.

    Attributes
    ----------
    available : bool
        False when the region has no usable model; ``message`` says why and every
        table is empty.
    message : str
        Why the drivers could not be computed (empty when ``available``).
    table : DataFrame
        ``drivers.csv``: the three importances and their ranks.
    cpi : DataFrame
        Conditional permutation importance at ``params.cpi_threshold`` with its
        diagnostics.
    sensitivity : DataFrame
        CPI at every threshold of :data:`SENSITIVITY_THRESHOLDS` (and the run's).
    permimp : DataFrame
        CPI at the run's threshold under ``permimp``'s own scheme (per-tree
        chi-squared selection, the tree's full grid), for comparison.
    association : DataFrame
        ``1 - p`` of the association test that selects the conditioning predictors
        (:func:`association` of Spearman's correlation at :data:`EFFECTIVE_N` rows,
        training rows).
    correlation : DataFrame
        Spearman's rank correlation between the indicators of the training rows.
    pd_curves : DataFrame
        Partial dependence of the attainable gain on each indicator (g C m-2 a-1).
    shap : DataFrame
        SHAP values of a subsample of training rows (g C m-2 a-1).
    covariates, train : DataFrame
        Indicators of all mines of the run and of the training rows (for densities).
    truth_check : dict or None
        :func:`null_rank_check` on synthetic runs.
    truth : dict or None
        The synthetic world's truth, when known.
    n_train, n_test : int
        Rows of the model sample.
    n_trees : int
        Trees of the forest.
    """

    available: bool
    message: str = ""
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    cpi: pd.DataFrame = field(default_factory=pd.DataFrame)
    sensitivity: pd.DataFrame = field(default_factory=pd.DataFrame)
    permimp: pd.DataFrame = field(default_factory=pd.DataFrame)
    association: pd.DataFrame = field(default_factory=pd.DataFrame)
    correlation: pd.DataFrame = field(default_factory=pd.DataFrame)
    pd_curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    shap: pd.DataFrame = field(default_factory=pd.DataFrame)
    covariates: pd.DataFrame = field(default_factory=pd.DataFrame)
    train: pd.DataFrame = field(default_factory=pd.DataFrame)
    truth_check: dict[str, Any] | None = None
    truth: dict[str, Any] | None = None
    n_train: int = 0
    n_test: int = 0
    n_trees: int = 0

    @property
    def top3(self) -> list[str]:
        """The three indicators of highest conditional importance."""
        return self.table["indicator"].head(3).tolist() if self.available else []


def _load_model(run_dir: Path) -> tuple[Any, pd.DataFrame] | str:
    """The saved model and its data, or a message saying why there is none."""
    model_path, data_path = run_dir / MODEL_FILE, run_dir / MODEL_DATA_FILE
    if not artifact_path(run_dir, "potential").exists():
        raise FileNotFoundError(f"{artifact_path(run_dir, 'potential')} is missing: run the potential chapter first")
    if not model_path.exists() or not data_path.exists():
        return (
            f"the potential stage saved no model for this region ({model_path.name} or {data_path.name} is "
            "missing): too few mines to fit one, so there are no drivers to rank"
        )
    data = pd.read_parquet(data_path)
    missing = [c for c in (*INDICATORS, "target", "split") if c not in data.columns]
    if missing:
        raise DriversError(f"{data_path} lacks column(s) {', '.join(missing)}: re-run the potential chapter")
    return joblib.load(model_path), data



def _summary_part(res: DriversResult, params: RunParams) -> dict[str, Any]:
    """The ``summary.json`` keys of the stage: ``drivers_top3`` and ``drivers``."""
    if not res.available:
        return {"drivers_top3": [], "drivers": {"available": False, "message": res.message}}
    sens = {f"{t:g}": _grid_summary(g) for t, g in res.sensitivity.groupby("threshold")}
    return {
        "drivers_top3": res.top3,
        "drivers": {
            "available": True,
            "threshold": params.cpi_threshold,
            "rho_cutoff": rho_cutoff(params.cpi_threshold),
            "selection": f"1 - p of the test of Spearman's rank correlation at an effective sample size of "
            f"{EFFECTIVE_N} rows, i.e. |rho| > {rho_cutoff(params.cpi_threshold):.2f} at the run's threshold",
            "grid": "the tree's split points on the conditioning predictors in level order, as far as keeps a "
            "mean of at least sqrt(out-of-bag rows) rows in a row's cell",
            "cpi_data": "out-of-bag rows of each tree (training sample)",
            "permutation_data": "held-out test rows",
            "loss": "increase in mean squared error, (g C m-2 a-1)^2",
            "n_train": res.n_train,
            "n_test": res.n_test,
            "n_trees": res.n_trees,
            "ranks": res.table.set_index("indicator")[["cpi_rank", "permutation_rank", "shap_rank"]]
            .astype(int).to_dict(orient="index"),
            "sensitivity": sens,
            "permimp_scheme": _grid_summary(res.permimp.assign(rank=_rank(res.permimp["mean"]))),
            "truth_check": res.truth_check,
        },
    }


def _grid_summary(cpi: pd.DataFrame) -> dict[str, Any]:
    """Top three and mean grid diagnostics of one CPI table (with ``rank``)."""
    return {
        "top3": cpi.sort_values("rank")["indicator"].head(3).tolist(),
        "n_conditioning_mean": float(cpi["n_conditioning"].mean()),
        "rows_per_cell_mean": float(cpi["rows_per_cell"].mean()),
        "grid_share_mean": _nan_to_none(cpi["grid_share"].mean()),
        "moved_share_mean": float(cpi["moved_share"].mean()),
    }


def _nan_to_none(value: float) -> float | None:
    """JSON has no NaN: a mean over no value is written as null."""
    return None if not np.isfinite(value) else float(value)


def run(params: RunParams, *, truth: Mapping[str, Any] | None = None) -> DriversResult:
    """Compute the driver importances of a run and write ``drivers.csv`` and its summary keys.

    Reads ``model.joblib`` and ``model_data.parquet`` (saved by the potential stage),
    ``covariates.parquet`` and ``potential.parquet`` from ``params.run_path``.

    Parameters
    ----------
    params : RunParams
        The run (``cpi_threshold`` and ``seed`` are used here).
    truth : mapping, optional
        The synthetic world's truth; by default read from the world when
        ``params.sources == "synthetic"``.

    Returns
    -------
    DriversResult
        ``available=False`` with a message (and ``drivers_top3: []`` in the
        summary) when the potential stage fitted no model for the region.

    Examples
    --------
    >>> res = run(RunParams(region="Africa"))  # doctest: +SKIP
    >>> res.top3  # doctest: +SKIP
    ['soc', 'precip', 'gpp']
    """
    run_dir = params.run_path
    loaded = _load_model(run_dir)
    covariates = read_artifact(run_dir, "covariates")
    if isinstance(loaded, str):
        return _finish(DriversResult(available=False, message=loaded, covariates=covariates), params)
    model, data = loaded
    train, test = data[data["split"] == "train"], data[data["split"] == "test"]
    if len(train) < MIN_TRAIN_ROWS or len(test) < MIN_TEST_ROWS:
        message = (
            f"the model sample is too small to rank drivers ({len(train)} training and {len(test)} test "
            f"rows; at least {MIN_TRAIN_ROWS} and {MIN_TEST_ROWS} are needed)"
        )
        return _finish(DriversResult(available=False, message=message, covariates=covariates), params)
    X, y = train[list(INDICATORS)], train["target"].to_numpy(dtype=float)
    thresholds = sorted({*SENSITIVITY_THRESHOLDS, params.cpi_threshold})
    sensitivity = threshold_sensitivity(model, X, y, thresholds=thresholds, random_state=params.seed)
    cpi = sensitivity[sensitivity["threshold"] == params.cpi_threshold].drop(columns="threshold")
    permimp = conditional_permutation_importance(model, X, y, threshold=params.cpi_threshold, selection="tree",
                                                 min_cell_rows=1, random_state=params.seed)
    perm = plain_permutation_importance(
        model, test[list(INDICATORS)], test["target"], random_state=params.seed
    )
    shap_vals = shap_values(model, X, random_state=params.seed)
    pd_rows = covariates[list(INDICATORS)].dropna()
    if truth is None:
        truth = truth_meta(params)
    res = DriversResult(
        available=True,
        table=drivers_table(cpi, perm, shap_vals),
        cpi=cpi.reset_index(drop=True),
        sensitivity=sensitivity,
        permimp=permimp,
        association=association(X, method="spearman", effective_n=EFFECTIVE_N),
        correlation=X.corr(method="spearman"),
        pd_curves=partial_dependence_curves(model, pd_rows, random_state=params.seed),
        shap=shap_vals,
        covariates=covariates,
        train=X.reset_index(drop=True),
        truth=dict(truth) if truth is not None else None,
        n_train=len(train),
        n_test=len(test),
        n_trees=len(_unwrap(model)[1].estimators_),
    )
    if truth is not None:
        res.truth_check = null_rank_check(res.table, truth)
    return _finish(res, params)


def _finish(res: DriversResult, params: RunParams) -> DriversResult:
    """Write ``drivers.csv`` (empty columns when unavailable) and the summary keys."""
    columns = ["indicator", "cpi", "cpi_sd", "permutation", "permutation_sd", "shap",
               "cpi_rank", "permutation_rank", "shap_rank"]
    table = res.table if res.available else pd.DataFrame(columns=columns)
    write_table(table[columns], artifact_path(params.run_path, "drivers"))
    update_summary(params.run_path, _summary_part(res, params))
    return res
