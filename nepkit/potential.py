"""Attainable NEP gain and restoration potential of each mine (paper sections 1.4.2, 2.2).

The paper's model
-----------------
The 11 indicators (:data:`nepkit.artifacts.INDICATORS`) are Yeo-Johnson
transformed, each with its own lambda found by maximum likelihood (scikit-learn's
:class:`~sklearn.preprocessing.PowerTransformer`, fitted inside a
:class:`~sklearn.pipeline.Pipeline` so that it only ever sees training rows). The
paper's equation 5 prints ``lg`` (base-10 logarithm) for the ``lambda = 0`` and
``lambda = 2`` branches; the Yeo-Johnson transform, and this code, use the natural
logarithm. The training sample is the mines whose observed NEP gain exceeds
``gain_threshold`` (g C m-2 a-1): "the best carbon uptake that protection and
restoration can achieve". At most ``n_sample`` of them are drawn at random; 85 % train
a random forest tuned by a ``cv_folds``-fold cross-validated grid search
(:data:`PARAM_GRID`), 15 % are held out for the test RMSE and R2. The forest then
predicts, for every mine, the *attainable* gain its indicators allow.

Beyond the paper
----------------
* Spatially blocked cross-validation (:func:`spatial_cv`): the training mines are
  grouped into cells of :data:`BLOCK_DEG` degrees of their centroids and whole cells
  are held out (:class:`~sklearn.model_selection.GroupKFold`, same number of folds as
  the random search). Mining districts are clustered and the indicators spatially
  autocorrelated, so random folds put near-copies of a test mine into training; the
  gap between the two RMSEs measures how much of the random score is spatial leakage.
* Prediction intervals from a quantile regression forest
  (:class:`quantile_forest.RandomForestQuantileRegressor`, Meinshausen 2006) with the
  tuned hyper-parameters, at the quantiles :data:`INTERVAL`.
* The area of applicability (Meyer & Pebesma 2021, simplified,
  :class:`AreaOfApplicability`): a dissimilarity index of each mine to the training
  mines in the standardized Yeo-Johnson space weighted by the forest's impurity
  importances; mines above the threshold derived from cross-validated training
  distances (the boxplot's upper whisker, as in CAST) are flagged ``out_of_domain``.

Potential
---------
The paper defines restoration potential only in words ("the NEP that restoration can
raise"). :func:`potential_values` makes the definition explicit:

``gap`` (default)
    ``max(0, attainable - observed_gain)``: what the mine could still gain beyond
    what it has gained. A mine already gaining at least its attainable value has
    none, which is how a large share of mines can have no potential.
``predicted``
    ``max(0, attainable)``: the attainable gain itself, ignoring what happened.
``gap_unfloored``
    ``attainable - observed_gain`` without the floor (negative = the mine gains
    more than its indicators predict); shown in the sensitivity analysis only.

Examples
--------
>>> from nepkit.params import RunParams
>>> from nepkit import potential
>>> res = potential.run(RunParams(region="Africa"))  # doctest: +SKIP
>>> res.summary["potential_mean"]  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import shapely
from quantile_forest import RandomForestQuantileRegressor
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist
from sklearn.base import clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score, root_mean_squared_error
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PowerTransformer

from nepkit.artifacts import INDICATORS, artifact_path, read_artifact
from nepkit.io import atomic_path, update_summary, write_table
from nepkit.params import RunParams

__all__ = [
    "PotentialError",
    "InsufficientSampleError",
    "TARGET",
    "N_TREES",
    "PARAM_GRID",
    "INTERVAL",
    "BLOCK_DEG",
    "DEFINITIONS",
    "MODEL_FILE",
    "MODEL_DATA_FILE",
    "build_pipeline",
    "min_sample_size",
    "complete_cases",
    "training_sample",
    "spatial_blocks",
    "FittedModel",
    "fit",
    "spatial_cv",
    "AreaOfApplicability",
    "potential_values",
    "summarize",
    "sensitivity",
    "truth_agreement",
    "PotentialResult",
    "run",
]

#: Name of the model's target column: the observed NEP gain, g C m-2 a-1.
TARGET = "observed_gain"
#: Trees of every forest. Not tuned: more trees only reduce Monte Carlo noise.
N_TREES = 200
#: The cross-validated search grid of the forest (the paper does not print its grid).
PARAM_GRID: dict[str, tuple] = {"max_features": (0.33, 0.66, 1.0), "min_samples_leaf": (1, 5)}
#: Quantiles of the prediction interval of the attainable gain.
INTERVAL = (0.05, 0.95)
#: Side of the square cells (degrees of longitude and latitude) of the spatial CV blocks.
BLOCK_DEG = 5.0
#: The potential definitions :func:`potential_values` knows (the first two are run parameters).
DEFINITIONS = ("gap", "predicted", "gap_unfloored")
#: Files the drivers stage reads: the fitted pipeline and its training/test rows.
MODEL_FILE, MODEL_DATA_FILE = "model.joblib", "model_data.parquet"
#: A split needs at least this many test mines, and each CV fold this many validation mines.
MIN_TEST, MIN_PER_FOLD = 5, 5
#: Multipliers of ``gain_threshold`` in the sensitivity analysis.
THRESHOLD_FACTORS = (0.5, 1.0, 1.5)


class PotentialError(ValueError):
    """Input the potential model cannot use (NaN or constant indicators, unknown definition...)."""


class InsufficientSampleError(PotentialError):
    """Too few training mines for the test split and the cross-validation folds."""


# --------------------------------------------------------------------------- model


def build_pipeline(*, seed: int, **forest_params) -> Pipeline:
    """The paper's model: Yeo-Johnson transform, then a random forest.

    Parameters
    ----------
    seed : int
        ``random_state`` of the forest.
    **forest_params
        Further :class:`~sklearn.ensemble.RandomForestRegressor` arguments.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``yeojohnson`` (:class:`~sklearn.preprocessing.PowerTransformer`,
        lambda per indicator by maximum likelihood, natural log, standardized
        output) and ``forest``. The forest is single-threaded on purpose: a
        multi-threaded forest adds up its trees' predictions in the order the
        threads finish, which changes the last bits from run to run.
        Parallelism comes from fitting several forests at once (see :func:`fit`).

    Examples
    --------
    >>> pipe = build_pipeline(seed=0, max_features=0.33)
    >>> pipe.named_steps["forest"].max_features
    0.33
    """
    forest = RandomForestRegressor(**{"n_estimators": N_TREES, **forest_params}, random_state=seed, n_jobs=1)
    return Pipeline([("yeojohnson", PowerTransformer(method="yeo-johnson", standardize=True)), ("forest", forest)])


def min_sample_size(test_fraction: float, cv_folds: int) -> int:
    """Smallest training sample that the test split and the CV folds accept.

    The held-out part (``ceil(test_fraction * n)`` mines, as scikit-learn splits)
    needs at least :data:`MIN_TEST` mines and each of the ``cv_folds`` folds of the
    rest at least :data:`MIN_PER_FOLD`.

    Examples
    --------
    >>> min_sample_size(0.15, 3)
    27
    """
    n = 1
    while math.ceil(test_fraction * n) < MIN_TEST or n - math.ceil(test_fraction * n) < cv_folds * MIN_PER_FOLD:
        n += 1
    return n


def complete_cases(table: pd.DataFrame, columns: Sequence[str] = (*INDICATORS, TARGET)) -> tuple[pd.DataFrame, int]:
    """Drop rows with a missing (NaN or infinite) value in ``columns``.

    Returns
    -------
    (pandas.DataFrame, int)
        The complete rows and how many were dropped.

    Examples
    --------
    >>> t = pd.DataFrame({"a": [1.0, np.nan, np.inf], "b": [1.0, 2.0, 3.0]})
    >>> complete_cases(t, ["a", "b"])[1]
    2
    """
    values = table[list(columns)].to_numpy(dtype=float)
    keep = np.isfinite(values).all(axis=1)
    return table[keep].reset_index(drop=True), int((~keep).sum())


def training_sample(table: pd.DataFrame, *, gain_threshold: float, n_sample: int, seed: int) -> pd.DataFrame:
    """The paper's training sample: mines gaining more than ``gain_threshold``, at most ``n_sample``.

    Parameters
    ----------
    table : pandas.DataFrame
        Complete rows (see :func:`complete_cases`) with ``mine_id``, the indicators
        and :data:`TARGET` (observed gain, g C m-2 a-1).
    gain_threshold : float
        Strict lower bound of the observed gain, g C m-2 a-1.
    n_sample : int
        Upper bound of the sample size; a larger eligible set is sampled without
        replacement by ``numpy.random.default_rng(seed)``.
    seed : int
        Seed of the draw.

    Returns
    -------
    pandas.DataFrame
        The sampled rows, sorted by ``mine_id``.

    Examples
    --------
    >>> t = pd.DataFrame({"mine_id": range(6), TARGET: [50, 150, 120, 300, 101, 99.0]})
    >>> training_sample(t, gain_threshold=100, n_sample=10, seed=0)["mine_id"].tolist()
    [1, 2, 3, 4]
    """
    eligible = table[table[TARGET] > gain_threshold].sort_values("mine_id").reset_index(drop=True)
    if len(eligible) > n_sample:
        rows = np.sort(np.random.default_rng(seed).choice(len(eligible), size=n_sample, replace=False))
        eligible = eligible.iloc[rows].reset_index(drop=True)
    return eligible


def spatial_blocks(lon: np.ndarray, lat: np.ndarray, *, block_deg: float = BLOCK_DEG) -> np.ndarray:
    """Label of the ``block_deg`` x ``block_deg`` degree cell of each point.

    Examples
    --------
    >>> spatial_blocks(np.array([1.0, 4.9, 5.1]), np.array([0.0, 0.0, -0.1])).tolist()
    ['0_0', '0_0', '1_-1']
    """
    ix = np.floor(np.asarray(lon, dtype=float) / block_deg).astype(int)
    iy = np.floor(np.asarray(lat, dtype=float) / block_deg).astype(int)
    return np.array([f"{x}_{y}" for x, y in zip(ix, iy, strict=True)], dtype=object)


@dataclass
class FittedModel:
    """A tuned, fitted potential model and its held-out assessment.

    Attributes
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Yeo-Johnson + random forest with the chosen hyper-parameters, fitted on the
        training part.
    quantile_forest : quantile_forest.RandomForestQuantileRegressor
        The same forest as a quantile forest (on the transformed indicators), for
        the prediction intervals.
    params : dict
        The chosen hyper-parameters (``n_estimators, max_features, min_samples_leaf``).
    data : pandas.DataFrame
        The sample with a ``split`` column (``train`` / ``test``).
    cv_results : pandas.DataFrame
        Every grid point's mean and per-fold random-CV RMSE.
    rmse_cv, rmse_test, r2_test : float
        Random-CV RMSE of the chosen parameters (mean over folds), test RMSE
        (g C m-2 a-1) and test R2.
    test : pandas.DataFrame
        ``mine_id, observed, attainable, attainable_lo, attainable_hi`` of the test mines.
    constant : list of str
        Indicators constant over the training mines (the forest cannot use them).
    """

    pipeline: Pipeline
    quantile_forest: RandomForestQuantileRegressor
    params: dict
    data: pd.DataFrame
    cv_results: pd.DataFrame
    rmse_cv: float
    rmse_test: float
    r2_test: float
    test: pd.DataFrame
    constant: list[str] = field(default_factory=list)

    @property
    def train(self) -> pd.DataFrame:
        """The training rows."""
        return self.data[self.data["split"] == "train"].reset_index(drop=True)

    @property
    def coverage(self) -> float:
        """Share of test mines whose observed gain lies inside the prediction interval."""
        inside = self.test["observed"].between(self.test["attainable_lo"], self.test["attainable_hi"])
        return float(inside.mean())

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The indicators in the model's standardized Yeo-Johnson space."""
        return self.pipeline.named_steps["yeojohnson"].transform(X[list(INDICATORS)])

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Attainable gain and its interval (g C m-2 a-1) for the rows of ``X``.

        Returns
        -------
        pandas.DataFrame
            ``attainable`` (forest mean), ``attainable_lo``, ``attainable_hi``
            (quantiles :data:`INTERVAL` of the quantile forest), index of ``X``.
        """
        return _predict(self.pipeline, self.quantile_forest, X)


def _predict(pipeline: Pipeline, qrf: RandomForestQuantileRegressor, X: pd.DataFrame) -> pd.DataFrame:
    mean = pipeline.predict(X[list(INDICATORS)])
    q = qrf.predict(pipeline.named_steps["yeojohnson"].transform(X[list(INDICATORS)]), quantiles=list(INTERVAL))
    return pd.DataFrame({"attainable": mean, "attainable_lo": q[:, 0], "attainable_hi": q[:, 1]}, index=X.index)


def _check_sample(sample: pd.DataFrame, *, test_fraction: float, cv_folds: int) -> None:
    missing = [c for c in ("mine_id", *INDICATORS, TARGET) if c not in sample.columns]
    if missing:
        raise PotentialError(f"the training sample lacks column(s) {', '.join(missing)}")
    n_bad = complete_cases(sample)[1]
    if n_bad:
        raise PotentialError(
            f"{n_bad} training mine(s) have NaN or infinite indicators or gain: drop them with complete_cases first"
        )
    need = min_sample_size(test_fraction, cv_folds)
    if len(sample) < need:
        raise InsufficientSampleError(
            f"only {len(sample)} training mine(s); test_fraction={test_fraction} and cv_folds={cv_folds} need at "
            f"least {need} (>= {MIN_TEST} test mines, >= {MIN_PER_FOLD} per fold): lower gain_threshold or "
            "cv_folds, or choose a larger region"
        )
    constant = [c for c in INDICATORS if sample[c].nunique() <= 1]
    if len(constant) == len(INDICATORS):
        raise PotentialError("every indicator is constant over the training mines: the model has nothing to learn")


def _split(sample: pd.DataFrame, *, test_fraction: float, seed: int) -> pd.DataFrame:
    train, _ = train_test_split(np.arange(len(sample)), test_size=test_fraction, random_state=seed)
    split = np.full(len(sample), "test", dtype=object)
    split[train] = "train"
    return sample.assign(split=split)


def _cv_table(search: GridSearchCV, cv_folds: int) -> pd.DataFrame:
    res = search.cv_results_
    table = pd.DataFrame({k.removeprefix("param_forest__"): res[k] for k in res if k.startswith("param_")})
    table["rmse_cv"] = -res["mean_test_score"]
    for k in range(cv_folds):
        table[f"rmse_fold{k}"] = -res[f"split{k}_test_score"]
    table["chosen"] = np.arange(len(table)) == search.best_index_
    return table


def fit(
    sample: pd.DataFrame,
    *,
    test_fraction: float = 0.15,
    cv_folds: int = 3,
    seed: int = 42,
    n_jobs: int = 2,
    grid: Mapping[str, Sequence] | None = None,
) -> FittedModel:
    """Split, tune by random K-fold CV, refit, and assess on the held-out mines.

    Parameters
    ----------
    sample : pandas.DataFrame
        ``mine_id``, the 11 indicators and :data:`TARGET`, complete (no NaN).
    test_fraction : float
        Held-out share (paper: 0.15).
    cv_folds : int
        Folds of the grid search (paper: 3), shuffled with ``seed``.
    seed : int
        Seed of the split, the folds and the forests.
    n_jobs : int
        Grid points and folds fitted in parallel (processes; results do not
        depend on it).
    grid : mapping, optional
        Forest hyper-parameter grid; default :data:`PARAM_GRID`.

    Returns
    -------
    FittedModel

    Raises
    ------
    InsufficientSampleError
        Fewer mines than :func:`min_sample_size` (the message says how many and
        what to lower).
    PotentialError
        Missing columns, NaN values, or every indicator constant.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.normal(size=(60, 11)), columns=list(INDICATORS))
    >>> sample = X.assign(mine_id=range(60), observed_gain=150 + 30 * X["soc"])
    >>> fit(sample, seed=0, grid={"max_features": [1.0]}).params["max_features"]  # doctest: +SKIP
    1.0
    """
    _check_sample(sample, test_fraction=test_fraction, cv_folds=cv_folds)
    grid = PARAM_GRID if grid is None else grid
    data = _split(sample.reset_index(drop=True), test_fraction=test_fraction, seed=seed)
    train, test = data[data["split"] == "train"], data[data["split"] == "test"]
    search = GridSearchCV(
        build_pipeline(seed=seed),
        {f"forest__{k}": list(v) for k, v in grid.items()},
        scoring="neg_root_mean_squared_error",
        cv=KFold(cv_folds, shuffle=True, random_state=seed),
        refit=True,
        n_jobs=n_jobs,
    ).fit(train[list(INDICATORS)], train[TARGET])
    pipeline = search.best_estimator_
    params = pipeline.named_steps["forest"].get_params()
    params = {k: params[k] for k in ("n_estimators", *grid)}
    qrf = RandomForestQuantileRegressor(**params, max_samples_leaf=None, random_state=seed, n_jobs=1)
    qrf.fit(pipeline.named_steps["yeojohnson"].transform(train[list(INDICATORS)]), train[TARGET])
    held = pd.concat([test[["mine_id"]], test[TARGET].rename("observed"), _predict(pipeline, qrf, test)], axis=1)
    return FittedModel(
        pipeline=pipeline, quantile_forest=qrf, params=params, data=data.reset_index(drop=True),
        cv_results=_cv_table(search, cv_folds), rmse_cv=float(-search.best_score_),
        rmse_test=float(root_mean_squared_error(held["observed"], held["attainable"])),
        r2_test=float(r2_score(held["observed"], held["attainable"])), test=held.reset_index(drop=True),
        constant=[c for c in INDICATORS if train[c].nunique() <= 1],
    )


def _fold_labels(n: int, splits: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    labels = np.full(n, -1)
    for k, (_, held) in enumerate(splits):
        labels[held] = k
    return labels


def _spatial_splits(blocks: np.ndarray, cv_folds: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
    if len(set(blocks)) < cv_folds:
        return None
    return list(GroupKFold(n_splits=cv_folds).split(np.zeros(len(blocks)), groups=blocks))


def spatial_cv(model: FittedModel, blocks: np.ndarray, *, cv_folds: int, n_jobs: int = 1) -> pd.DataFrame:
    """Per-fold RMSE of the chosen model under random and spatially blocked CV.

    Parameters
    ----------
    model : FittedModel
        The tuned model; its training rows are re-split.
    blocks : numpy.ndarray
        Block label of each training row (see :func:`spatial_blocks`), in the
        order of ``model.train``.
    cv_folds : int
        Number of folds of both schemes (the random folds are the search's).
    n_jobs : int
        Folds fitted in parallel (processes).

    Returns
    -------
    pandas.DataFrame
        ``scheme`` (``random`` / ``spatial``), ``fold``, ``rmse`` (g C m-2 a-1),
        ``n`` (held-out mines). No ``spatial`` rows when the training mines fall in
        fewer blocks than folds.

    Examples
    --------
    >>> spatial_cv(model, blocks, cv_folds=3).groupby("scheme")["rmse"].mean()  # doctest: +SKIP
    """
    chosen = model.cv_results[model.cv_results["chosen"]].iloc[0]
    train = model.train
    sizes = [len(held) for _, held in KFold(cv_folds).split(train)]
    rows = [{"scheme": "random", "fold": k, "rmse": float(chosen[f"rmse_fold{k}"]), "n": sizes[k]}
            for k in range(cv_folds)]
    splits = _spatial_splits(np.asarray(blocks), cv_folds)
    X, y = train[list(INDICATORS)], train[TARGET].to_numpy()
    fold_rmse = joblib.Parallel(n_jobs=n_jobs)(
        joblib.delayed(_fold_rmse)(model.pipeline, X, y, fit_rows, held) for fit_rows, held in splits or []
    )
    rows += [{"scheme": "spatial", "fold": k, "rmse": rmse, "n": len(held)}
             for k, (rmse, (_, held)) in enumerate(zip(fold_rmse, splits or [], strict=True))]
    return pd.DataFrame(rows)


def _fold_rmse(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, fit_rows: np.ndarray, held: np.ndarray) -> float:
    pipe = clone(pipeline).fit(X.iloc[fit_rows], y[fit_rows])
    return float(root_mean_squared_error(y[held], pipe.predict(X.iloc[held])))


# -------------------------------------------------------------- area of applicability


@dataclass
class AreaOfApplicability:
    """Dissimilarity index to the training mines (Meyer & Pebesma 2021, simplified).

    The indicators are taken in the model's standardized Yeo-Johnson space and
    multiplied by the forest's impurity importances (indicators the forest does
    not use weigh nothing). The dissimilarity index of a point is the Euclidean
    distance to its nearest training mine divided by the mean distance between
    training mines. The threshold is the upper whisker (largest value below
    Q3 + 1.5 IQR) of the training mines' own index, each computed to the nearest
    training mine *outside its cross-validation fold*.

    Examples
    --------
    >>> aoa = AreaOfApplicability.fit(model, folds)  # doctest: +SKIP
    >>> di = aoa.di(model.transform(covariates))  # doctest: +SKIP
    """

    weights: np.ndarray
    train: np.ndarray
    mean_distance: float
    threshold: float
    train_di: np.ndarray

    @classmethod
    def fit(cls, model: FittedModel, folds: np.ndarray) -> AreaOfApplicability:
        """Build from a fitted model and the CV fold label of each training row."""
        weights = model.pipeline.named_steps["forest"].feature_importances_
        train = model.transform(model.train) * weights
        mean_distance = _mean_distance(train)
        train_di = np.empty(len(train))
        for k in np.unique(folds):
            inside = folds == k
            dist, _ = cKDTree(train[~inside]).query(train[inside])
            train_di[inside] = dist / mean_distance
        q1, q3 = np.percentile(train_di, [25, 75])
        threshold = float(train_di[train_di <= q3 + 1.5 * (q3 - q1)].max())
        return cls(weights=weights, train=train, mean_distance=mean_distance, threshold=threshold, train_di=train_di)

    def di(self, transformed: np.ndarray) -> np.ndarray:
        """Dissimilarity index of rows already in the model's transformed space."""
        dist, _ = cKDTree(self.train).query(np.asarray(transformed) * self.weights)
        return dist / self.mean_distance


def _mean_distance(points: np.ndarray, max_rows: int = 4000) -> float:
    """Mean pairwise distance; above ``max_rows`` points, of a fixed random subset (memory grows as n^2)."""
    if len(points) > max_rows:
        points = points[np.sort(np.random.default_rng(0).choice(len(points), max_rows, replace=False))]
    return float(pdist(points).mean()) or 1.0  # 0 only if every training mine coincides


# ------------------------------------------------------------------------ potential


def potential_values(attainable, observed_gain, *, definition: str = "gap") -> np.ndarray:
    """Restoration potential of each mine, g C m-2 a-1.

    Parameters
    ----------
    attainable : array-like
        Predicted attainable gain, g C m-2 a-1.
    observed_gain : array-like
        Observed gain over the period (``-loss_stat``), g C m-2 a-1.
    definition : {"gap", "predicted", "gap_unfloored"}
        ``gap``: ``max(0, attainable - observed_gain)``; ``predicted``:
        ``max(0, attainable)``; ``gap_unfloored``: ``attainable - observed_gain``.

    Examples
    --------
    >>> potential_values([120, 80, -5], [100, 90, -30]).tolist()
    [20.0, 0.0, 25.0]
    >>> potential_values([120, 80, -5], [100, 90, -30], definition="predicted").tolist()
    [120.0, 80.0, 0.0]
    """
    a, o = np.asarray(attainable, dtype=float), np.asarray(observed_gain, dtype=float)
    if definition == "gap":
        return np.maximum(a - o, 0.0)
    if definition == "predicted":
        return np.maximum(a, 0.0)
    if definition == "gap_unfloored":
        return a - o
    raise PotentialError(f"unknown potential definition {definition!r}; known: {', '.join(DEFINITIONS)}")


def summarize(table: pd.DataFrame, column: str = "potential") -> dict:
    """Headline numbers of a per-mine potential column (summary.json's keys).

    Parameters
    ----------
    table : pandas.DataFrame
        ``continent``, ``subregion`` and ``column`` (g C m-2 a-1); NaN rows ignored.
    column : str
        The column to summarize.

    Returns
    -------
    dict
        ``potential_mean`` (over all mines, zeros included, as the paper's 10.8 is),
        ``potential_max``, ``no_potential_share`` (share with potential <= 0),
        ``potential_total_kg`` (sum over mines, kg C m-2 a-1 as the paper prints it),
        ``potential_by_continent`` and ``potential_by_subregion`` ({name: mean}).

    Examples
    --------
    >>> t = pd.DataFrame({"continent": ["Asia", "Asia", "Africa"], "subregion": ["A", "A", "B"],
    ...                   "potential": [0.0, 20.0, 40.0]})
    >>> s = summarize(t)
    >>> s["potential_mean"], s["no_potential_share"], s["potential_by_continent"]
    (20.0, 0.3333333333333333, {'Africa': 40.0, 'Asia': 10.0})
    """
    t = table[table[column].notna()]
    if t.empty:
        return {"potential_mean": np.nan, "potential_max": np.nan, "no_potential_share": np.nan,
                "potential_total_kg": np.nan, "potential_by_continent": {}, "potential_by_subregion": {}}
    return {
        "potential_mean": float(t[column].mean()),
        "potential_max": float(t[column].max()),
        "no_potential_share": float((t[column] <= 0).mean()),
        "potential_total_kg": float(t[column].sum() / 1000.0),
        "potential_by_continent": {str(k): float(v) for k, v in t.groupby("continent")[column].mean().items()},
        "potential_by_subregion": {str(k): float(v) for k, v in t.groupby("subregion")[column].mean().items()},
    }


def sensitivity(
    table: pd.DataFrame,
    model: FittedModel,
    *,
    thresholds: Sequence[float],
    own_threshold: float,
    n_sample: int,
    test_fraction: float,
    cv_folds: int,
    seed: int,
) -> pd.DataFrame:
    """Headline numbers under every definition and several gain thresholds.

    For each threshold other than the model's own, the sample is redrawn by the
    same rules and a forest with the *chosen* hyper-parameters is refitted on its
    training part (no new search).

    Parameters
    ----------
    table : pandas.DataFrame
        Every complete mine: ``mine_id, continent, subregion``, indicators, :data:`TARGET`
        and ``attainable`` (the model's prediction at its own threshold).
    model : FittedModel
        The tuned model.
    thresholds : sequence of float
        Gain thresholds, g C m-2 a-1.
    own_threshold : float
        The model's threshold: its row reuses ``table["attainable"]``.
    n_sample, test_fraction, cv_folds, seed
        As in :func:`training_sample` and :func:`fit`; a threshold leaving fewer
        mines than :func:`min_sample_size` gives NaN.

    Returns
    -------
    pandas.DataFrame
        ``gain_threshold, definition, n_sample, potential_mean, potential_max,
        no_potential_share`` and one ``mean_<continent>`` column per continent
        (g C m-2 a-1). NaN rows where a threshold leaves too few mines.
    """
    rows = []
    for threshold in thresholds:
        if threshold == own_threshold:
            attainable, n = table["attainable"].to_numpy(), len(model.data)
        else:
            attainable, n = _refit_predict(table, model, threshold, n_sample=n_sample, test_fraction=test_fraction,
                                           cv_folds=cv_folds, seed=seed)
        for definition in DEFINITIONS:
            pot = table[["continent", "subregion"]].assign(
                potential=potential_values(attainable, table[TARGET], definition=definition)
            )
            s = summarize(pot)
            rows.append({
                "gain_threshold": float(threshold), "definition": definition, "n_sample": n,
                **{k: s[k] for k in ("potential_mean", "potential_max", "no_potential_share")},
                **{f"mean_{c}": v for c, v in s["potential_by_continent"].items()},
            })
    return pd.DataFrame(rows)


def _refit_predict(table, model, threshold, *, n_sample, test_fraction, cv_folds, seed):
    """Attainable gain of every mine from a forest with the chosen parameters at another threshold."""
    sample = training_sample(table, gain_threshold=threshold, n_sample=n_sample, seed=seed)
    if len(sample) < min_sample_size(test_fraction, cv_folds):
        return np.full(len(table), np.nan), len(sample)
    data = _split(sample, test_fraction=test_fraction, seed=seed)
    train = data[data["split"] == "train"]
    pipe = build_pipeline(seed=seed, **model.params).fit(train[list(INDICATORS)], train[TARGET])
    return pipe.predict(table[list(INDICATORS)]), len(sample)


# ---------------------------------------------------------------------------- truth


def truth_agreement(potential_df: pd.DataFrame, truth_df: pd.DataFrame, column: str = "attainable") -> dict:
    """Agreement of the predicted attainable gain with the synthetic world's truth.

    Parameters
    ----------
    potential_df : pandas.DataFrame
        ``mine_id`` and ``column`` (g C m-2 a-1).
    truth_df : pandas.DataFrame
        ``mine_id, true_attainable_gain`` (one row per mine, or per mine and year
        with the same value repeated).
    column : str
        The predicted column compared.

    Returns
    -------
    dict
        ``r`` (Pearson), ``rmse`` and ``bias`` (mean of predicted - true, g C m-2 a-1),
        ``n`` (mines with both values).

    Examples
    --------
    >>> p = pd.DataFrame({"mine_id": [1, 2, 3], "attainable": [110.0, 190.0, 300.0]})
    >>> t = pd.DataFrame({"mine_id": [1, 2, 3], "true_attainable_gain": [100.0, 200.0, 300.0]})
    >>> truth_agreement(p, t)["bias"]
    0.0
    """
    truth = truth_df.groupby("mine_id", sort=True)["true_attainable_gain"].first()
    both = potential_df.set_index("mine_id")[[column]].join(truth, how="inner").dropna()
    pred, true = both[column].to_numpy(), both["true_attainable_gain"].to_numpy()
    if len(both) < 2:
        return {"r": np.nan, "rmse": np.nan, "bias": np.nan, "n": int(len(both))}
    return {
        "r": float(np.corrcoef(pred, true)[0, 1]),
        "rmse": float(root_mean_squared_error(true, pred)),
        "bias": float(np.mean(pred - true)),
        "n": int(len(both)),
    }



# ------------------------------------------------------------------------------ run


@dataclass
class PotentialResult:
    """Everything the potential chapter shows.

    Attributes
    ----------
    potential : pandas.DataFrame
        Per mine: ``mine_id, continent, subregion, lon, lat, attainable,
        attainable_lo, attainable_hi, observed_gain, potential, potential_lo,
        potential_hi, out_of_domain, di`` (g C m-2 a-1).
    model : FittedModel or None
        ``None`` when the region has too few mines to train any model.
    cv : pandas.DataFrame
        Per-fold RMSE, random and spatial (:func:`spatial_cv`).
    sensitivity : pandas.DataFrame
        :func:`sensitivity`'s table.
    by_continent, by_subregion : pandas.DataFrame
        Mean potential and interval, share with none, share out of domain, mines.
    summary : dict
        The keys merged into ``summary.json``.
    notes : list of str
        Exclusions and rules applied (NaN indicators, small-region rule...).
    truth : dict or None
        On a synthetic run with a truth table, :func:`truth_agreement` over all
        mines (``all``) and over the mines inside the area of applicability
        (``in_domain``).
    """

    potential: pd.DataFrame
    model: FittedModel | None
    cv: pd.DataFrame
    sensitivity: pd.DataFrame
    by_continent: pd.DataFrame
    by_subregion: pd.DataFrame
    summary: dict
    notes: list[str]
    truth: dict | None = None

    @property
    def trained(self) -> bool:
        """Whether a model could be trained for the region."""
        return self.model is not None


def _classify(change: pd.DataFrame, by: str) -> pd.DataFrame:
    """The per-mine period statistic of the NEP change stage (the one call to it)."""
    from nepkit.nepchange import classify

    return classify(change, by=by)


def _mine_table(params: RunParams) -> tuple[pd.DataFrame, dict]:
    """Mines with region, centroid, indicators and observed gain; exclusions counted."""
    mines = read_artifact(params.run_path, "mines")
    centroid = shapely.centroid(mines.geometry.to_numpy())
    base = pd.DataFrame({
        "mine_id": mines["mine_id"].to_numpy(), "continent": mines["continent"].astype(str).to_numpy(),
        "subregion": mines["subregion"].astype(str).to_numpy(),
        "lon": shapely.get_x(centroid), "lat": shapely.get_y(centroid),
    })
    covariates = read_artifact(params.run_path, "covariates")[["mine_id", *INDICATORS]]
    per_mine = _classify(read_artifact(params.run_path, "nep_change"), params.classify_by)
    gain = per_mine.assign(**{TARGET: -per_mine["loss_stat"]})[["mine_id", TARGET]]
    table = base.merge(covariates, on="mine_id", how="left").merge(gain, on="mine_id", how="left")
    n_nan_indicators = int((~np.isfinite(table[list(INDICATORS)].to_numpy(dtype=float)).all(axis=1)).sum())
    complete, n_dropped = complete_cases(table)
    counts = {"n_mines": len(table), "n_excluded_nan": n_nan_indicators,
              "n_excluded_no_gain": n_dropped - n_nan_indicators, "n_complete": len(complete)}
    return complete.sort_values("mine_id").reset_index(drop=True), counts


def _region_sample(table: pd.DataFrame, params: RunParams) -> tuple[pd.DataFrame, str, float]:
    """The paper's sample, or the small-region rule's when too few mines pass the threshold.

    Returns the sample, the rule's name and the effective threshold (g C m-2 a-1).
    """
    need = min_sample_size(params.test_fraction, params.cv_folds)
    if params.n_sample < need:
        raise InsufficientSampleError(
            f"n_sample={params.n_sample} is below the {need} mines that test_fraction={params.test_fraction} and "
            f"cv_folds={params.cv_folds} need: raise n_sample or lower cv_folds"
        )
    sample = training_sample(table, gain_threshold=params.gain_threshold, n_sample=params.n_sample, seed=params.seed)
    if len(sample) >= need or len(table) < need:
        return sample, "threshold", params.gain_threshold
    best = table.nlargest(need, TARGET, keep="first").sort_values("mine_id").reset_index(drop=True)
    return best, "top_gain", float(best[TARGET].min())


def _predict_all(table: pd.DataFrame, model: FittedModel, aoa: AreaOfApplicability, definition: str) -> pd.DataFrame:
    pred = model.predict(table)
    out = pd.concat([table[["mine_id", "continent", "subregion", "lon", "lat"]], pred, table[TARGET]], axis=1)
    for suffix, src in (("", "attainable"), ("_lo", "attainable_lo"), ("_hi", "attainable_hi")):
        out[f"potential{suffix}"] = potential_values(out[src], out[TARGET], definition=definition)
    out["di"] = aoa.di(model.transform(table))
    out["out_of_domain"] = out["di"] > aoa.threshold
    return out


def _by_group(pot: pd.DataFrame, key: str) -> pd.DataFrame:
    g = pot.groupby(key)
    return pd.DataFrame({
        "mines": g.size(),
        "potential_mean": g["potential"].mean(),
        "potential_lo_mean": g["potential_lo"].mean(),
        "potential_hi_mean": g["potential_hi"].mean(),
        "no_potential_share": g["potential"].apply(lambda s: float((s.dropna() <= 0).mean()) if s.notna().any()
                                                   else np.nan),
        "out_of_domain_share": g["out_of_domain"].mean(),
    }).reset_index()


def _save_model(run_dir: Path, model: FittedModel | None, blocks: np.ndarray | None) -> None:
    paths = (run_dir / MODEL_FILE, run_dir / MODEL_DATA_FILE)
    if model is None:  # never leave a stale model of an earlier run for the drivers stage
        for path in paths:
            path.unlink(missing_ok=True)
        return
    with atomic_path(paths[0]) as tmp:
        joblib.dump(model.pipeline, tmp)
    data = model.data[["mine_id", *INDICATORS, TARGET, "split"]].rename(columns={TARGET: "target"})
    write_table(data.assign(block=blocks), paths[1])


def _summary(pot: pd.DataFrame, model: FittedModel | None, cv: pd.DataFrame, extras: dict) -> dict:
    s = summarize(pot)
    spatial = cv.loc[cv["scheme"] == "spatial", "rmse"]
    return {
        **{k: s[k] for k in ("potential_mean", "potential_max", "no_potential_share",
                             "potential_by_continent", "potential_by_subregion")},
        "model": {
            "rmse_test": model.rmse_test if model else None,
            "rmse_cv": model.rmse_cv if model else None,
            "rmse_spatial_cv": float(spatial.mean()) if len(spatial) else None,
            "r2_test": model.r2_test if model else None,
            "params": model.params if model else None,
        },
        "potential": {"potential_total_kg": s["potential_total_kg"], **extras},
    }


def _empty_potential(table: pd.DataFrame) -> pd.DataFrame:
    nan = np.full(len(table), np.nan)
    cols = {c: nan for c in ("attainable", "attainable_lo", "attainable_hi", "potential", "potential_lo",
                             "potential_hi", "di")}
    return table[["mine_id", "continent", "subregion", "lon", "lat", TARGET]].assign(
        **cols, out_of_domain=np.zeros(len(table), dtype=bool)
    )


def run(params: RunParams, *, truth: pd.DataFrame | None = None, n_jobs: int = 2) -> PotentialResult:
    """The potential stage: sample, tune, assess, predict every mine, write artifacts.

    Reads ``mines.parquet``, ``covariates.parquet`` and ``nep_change.parquet`` from
    ``params.run_path``; the observed gain of a mine is ``-loss_stat`` of
    ``nepkit.nepchange.classify(change, by=params.classify_by)``. Mines with a NaN
    indicator or no observed gain are excluded and counted.

    Small regions: when fewer mines pass ``gain_threshold`` than the split and the
    folds need (:func:`min_sample_size`), the sample becomes the region's
    ``min_sample_size`` mines with the largest observed gain (rule ``top_gain``;
    its effective threshold, the smallest gain in the sample, is reported): the
    threshold is lowered just as far as the split needs. When the region has fewer
    complete mines than :func:`min_sample_size`, no model is trained: the
    predictions are NaN and the summary says why.

    Writes ``potential.parquet``, ``model.joblib`` (the fitted pipeline),
    ``model_data.parquet`` (``mine_id``, indicators, ``target``, ``split``,
    ``block``) and the potential and model keys of ``summary.json``.

    Parameters
    ----------
    params : RunParams
        The run (``gain_threshold, n_sample, test_fraction, cv_folds,
        potential_definition, seed, classify_by``).
    truth : pandas.DataFrame, optional
        The synthetic world's truth (:func:`nepkit.sources.truth_table`); adds
        :func:`truth_agreement` (all mines and in-domain mines) to the result and
        the summary.
    n_jobs : int
        Forests fitted in parallel during the searches (results do not depend on it).

    Returns
    -------
    PotentialResult

    Examples
    --------
    >>> res = run(RunParams(region="Africa"))  # doctest: +SKIP
    >>> res.summary["model"]["rmse_test"]  # doctest: +SKIP
    """
    table, counts = _mine_table(params)
    sample, rule, threshold = _region_sample(table, params)
    n_eligible = int((table[TARGET] > params.gain_threshold).sum())
    notes = _sample_notes(counts, n_eligible, rule, len(sample), threshold, params)
    extras = {**counts, "n_eligible": n_eligible, "definition": params.potential_definition,
              "gain_threshold": params.gain_threshold, "sample_rule": rule, "effective_threshold": threshold,
              "interval": list(INTERVAL), "block_deg": BLOCK_DEG}
    need = min_sample_size(params.test_fraction, params.cv_folds)
    if len(table) < need:
        notes.append(
            f"No model: the region has {len(table)} mine(s) with complete indicators and an observed change; "
            f"test_fraction={params.test_fraction} and cv_folds={params.cv_folds} need at least {need}. Choose a "
            "larger region or lower cv_folds."
        )
        return _untrained(params, table, notes, extras)
    model = fit(sample, test_fraction=params.test_fraction, cv_folds=params.cv_folds, seed=params.seed, n_jobs=n_jobs)
    block_of = dict(zip(table["mine_id"], spatial_blocks(table["lon"], table["lat"]), strict=True))
    cv, aoa = _assess(model, model.train["mine_id"].map(block_of).to_numpy(), params, notes, n_jobs)
    pot = _predict_all(table, model, aoa, params.potential_definition)
    sens = sensitivity(table.assign(attainable=pot["attainable"].to_numpy()), model,
                       thresholds=[params.gain_threshold * f for f in THRESHOLD_FACTORS],
                       own_threshold=params.gain_threshold, n_sample=params.n_sample,
                       test_fraction=params.test_fraction, cv_folds=params.cv_folds, seed=params.seed)
    agreement = None if truth is None else {
        "all": truth_agreement(pot, truth), "in_domain": truth_agreement(pot[~pot["out_of_domain"]], truth)}
    extras.update({
        "status": "trained", "n_sample": len(sample), "n_train": len(model.train),
        "n_test": len(model.test), "constant_indicators": model.constant,
        "out_of_domain_share": float(pot["out_of_domain"].mean()), "di_threshold": aoa.threshold,
        "interval_coverage_test": model.coverage, "sensitivity": sens.to_dict(orient="records"),
        "truth_agreement": agreement,
    })
    _save_model(params.run_path, model, model.data["mine_id"].map(block_of).to_numpy())
    return _finish(params, pot, model, cv, sens, notes, extras, agreement)


def _assess(model: FittedModel, train_blocks: np.ndarray, params: RunParams, notes: list[str], n_jobs: int):
    """Spatial CV and the area of applicability (its folds: the spatial ones, else the random ones)."""
    cv = spatial_cv(model, train_blocks, cv_folds=params.cv_folds, n_jobs=n_jobs)
    splits = _spatial_splits(train_blocks, params.cv_folds)
    if splits is None:
        notes.append(f"The training mines fall in fewer than {params.cv_folds} blocks of {BLOCK_DEG:g} degrees: "
                     "no spatial cross-validation; the area of applicability uses the random folds.")
        splits = list(KFold(params.cv_folds, shuffle=True, random_state=params.seed).split(train_blocks))
    if model.constant:
        notes.append(f"Constant over the training mines (unused by the forest): {', '.join(model.constant)}.")
    return cv, AreaOfApplicability.fit(model, _fold_labels(len(train_blocks), splits))


def _sample_notes(counts: dict, n_eligible: int, rule: str, n_sample: int, threshold: float,
                  params: RunParams) -> list[str]:
    notes = []
    if counts["n_excluded_nan"]:
        notes.append(f"{counts['n_excluded_nan']} of {counts['n_mines']} mines have a missing indicator and are "
                     "excluded.")
    if counts["n_excluded_no_gain"]:
        notes.append(f"{counts['n_excluded_no_gain']} mines have no observed NEP change and are excluded.")
    if rule == "top_gain":
        notes.append(
            f"Only {n_eligible} mine(s) gain more than {params.gain_threshold:g} g C m-2 a-1; the sample is the "
            f"region's {n_sample} mines with the largest gain (>= {threshold:.1f} g C m-2 a-1)."
        )
    return notes


def _untrained(params: RunParams, table: pd.DataFrame, notes: list[str], extras: dict) -> PotentialResult:
    pot = _empty_potential(table)
    cv = pd.DataFrame(columns=["scheme", "fold", "rmse", "n"])
    extras.update({"status": "untrained: " + notes[-1].removeprefix("No model: "), "n_sample": 0, "n_train": 0, "n_test": 0,
                   "out_of_domain_share": None, "sensitivity": [], "truth_agreement": None})
    _save_model(params.run_path, None, None)
    return _finish(params, pot, None, cv, pd.DataFrame(), notes, extras, None)


def _finish(params, pot, model, cv, sens, notes, extras, agreement) -> PotentialResult:
    columns = ["mine_id", "continent", "subregion", "lon", "lat", "attainable", "attainable_lo", "attainable_hi",
               TARGET, "potential", "potential_lo", "potential_hi", "out_of_domain", "di"]
    pot = pot[columns].reset_index(drop=True)
    write_table(pot, artifact_path(params.run_path, "potential"))
    extras["notes"] = notes
    summary = _summary(pot, model, cv, extras)
    update_summary(params.run_path, summary)
    return PotentialResult(potential=pot, model=model, cv=cv, sensitivity=sens,
                           by_continent=_by_group(pot, "continent"), by_subregion=_by_group(pot, "subregion"),
                           summary=summary, notes=notes, truth=agreement)
