"""Tests of nepkit.drivers: conditional permutation importance, the other two
importances, the truth check, the stage's run and its figures.

The slow test at the end runs the stages on the synthetic generator's ``medium``
world (seed 1, the validation chapter's baseline world) and checks the driver
ranking against the world's truth.json."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from numpy.testing import assert_allclose, assert_array_equal
from quantile_forest import RandomForestQuantileRegressor
from scipy.stats import chi2, chi2_contingency
from sklearn.ensemble import RandomForestRegressor
from sklearn.ensemble._forest import _generate_unsampled_indices
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PowerTransformer
from sklearn.tree import DecisionTreeRegressor

from nepkit import drivers
from nepkit.artifacts import INDICATORS
from nepkit.io import read_summary
from nepkit.params import RunParams
from nepkit.plotting import drivers as plots

# ------------------------------------------------------------------ helpers


def test_binned_association_matches_scipy_chi2_contingency():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 120)
    b = np.where(rng.random(120) < 0.6, a, rng.integers(0, 3, 120))  # associated with a
    c = rng.integers(0, 5, 120)
    codes = np.column_stack([a, b, c])
    levels = codes.max(axis=0) + 1
    crit = drivers._binned_association(codes, levels)
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        table = np.zeros((levels[i], levels[j]))
        np.add.at(table, (codes[:, i], codes[:, j]), 1)
        expected = 1 - chi2_contingency(table, correction=False).pvalue
        assert_allclose(crit[i, j], expected, rtol=1e-10)
        assert crit[j, i] == crit[i, j]
    assert crit[0, 1] > 0.999 and crit[0, 2] < 0.95
    assert_array_equal(np.diag(crit), 0)


def test_association_is_one_minus_p_of_the_correlation_test():
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(size=50)})
    X["b"] = X["a"] + 2 * rng.normal(size=50)
    X["c"] = np.exp(rng.normal(size=50))
    r = np.corrcoef(X.to_numpy(), rowvar=False)
    expected = chi2.cdf(49 * r**2, df=1)
    np.fill_diagonal(expected, 0)
    assert_allclose(drivers.association(X).to_numpy(), expected, rtol=1e-12)
    rho = X.rank().corr().to_numpy()
    assert_allclose(drivers.association(X, method="spearman").loc["a", "c"], chi2.cdf(49 * rho[0, 2] ** 2, 1))
    assert drivers.conditioning_sets(drivers.association(X), 0.95)["a"] == ["b"]


def test_association_at_an_effective_sample_size_is_a_cutoff_on_the_correlation():
    rng = np.random.default_rng(8)
    a = rng.normal(size=400)
    X = pd.DataFrame({"a": a, "b": a + 1.2 * rng.normal(size=400), "c": 0.3 * a + rng.normal(size=400)})
    rho = X.rank().corr().to_numpy()
    expected = chi2.cdf(19 * rho**2, df=1)  # (n_eff - 1) r**2 with n_eff = 20, not the 400 rows
    np.fill_diagonal(expected, 0)
    assoc = drivers.association(X, method="spearman", effective_n=20)
    assert_allclose(assoc.to_numpy(), expected, rtol=1e-12)
    # rho(a, b) ~ 0.6 and rho(a, c) ~ 0.3: both "significant" on 400 rows, only the first strong enough at 20
    assert drivers.conditioning_sets(drivers.association(X, method="spearman"), 0.95)["a"] == ["b", "c"]
    assert drivers.conditioning_sets(assoc, 0.95)["a"] == ["b"]
    cut = drivers.rho_cutoff(0.95, 20)
    assert_allclose(cut, np.sqrt(chi2.ppf(0.95, 1) / 19))
    assert rho[0, 1] > cut > rho[0, 2]
    assert_allclose([drivers.rho_cutoff(t) for t in (0.5, 0.95, 0.99)], [0.1548, 0.4496, 0.5909], atol=1e-4)
    assert drivers.rho_cutoff(1.0) == 1.0 and drivers.rho_cutoff(0.0) == 0.0
    with pytest.raises(drivers.DriversError, match="effective_n must exceed 1"):
        drivers.association(X, effective_n=1)


def test_within_cell_permutation_keeps_each_row_in_its_cell():
    cells = np.array([0, 1, 0, 2, 1, 0, 0, 2, 1, 0])
    perm = drivers._within_cell_permutations(cells, np.random.default_rng(3), 1)[0]
    assert_array_equal(np.sort(perm), np.arange(10))  # a permutation
    assert_array_equal(cells[perm], cells)  # every row takes a value from its own cell
    again = drivers._within_cell_permutations(cells, np.random.default_rng(3), 1)[0]
    assert_array_equal(perm, again)
    moved = [np.any(drivers._within_cell_permutations(cells, np.random.default_rng(s), 1)[0] != np.arange(10))
             for s in range(5)]
    assert any(moved)
    many = drivers._within_cell_permutations(cells, np.random.default_rng(3), 4)
    assert many.shape == (4, 10) and all((cells[row] == cells).all() for row in many)
    assert_array_equal(many[0], perm)  # the first of several is the single one: same random numbers


def test_level_order_lists_the_tree_level_by_level_left_to_right():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    tree = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, X[:, 0] + X[:, 1] ** 2)
    t = tree.tree_
    order = drivers._level_order(tree)
    assert order[0] == 0 and sorted(order) == sorted(np.flatnonzero(t.feature >= 0))
    depth = {0: 0}
    for node in range(t.node_count):  # parents are numbered before their children
        for child in (t.children_left[node], t.children_right[node]):
            if child >= 0:
                depth[child] = depth[node] + 1
    assert np.all(np.diff([depth[n] for n in order]) >= 0)  # by level
    level2 = [n for n in order if depth[n] == 2]
    below = [c for n in order if depth[n] == 1 for c in (t.children_left[n], t.children_right[n])]
    assert level2 == [c for c in below if t.feature[c] >= 0]  # left to right


def _hand_grid(splits, cond, k):
    """Cells of the first k split points on cond (level order) by brute force: the rows' side of each point."""
    kept = [i for i, a in enumerate(splits.order) if a in cond][:k]
    sides = np.column_stack([splits.values[:, splits.order[i]] > splits.thresholds[i] for i in kept] or
                            [np.zeros(len(splits.values), bool)])
    return np.unique(sides, axis=0, return_inverse=True)[1].ravel()


def _same_partition(a, b):
    return len(np.unique(a)) == len(np.unique(b)) == len(np.unique(np.column_stack([a, b]), axis=0))


def test_grid_keeps_the_first_split_points_that_leave_cells_full_enough():
    X, y = _strobl_data(seed=7, n=300)
    tree = RandomForestRegressor(n_estimators=1, max_features=None, random_state=0).fit(X, y).estimators_[0]
    Xo = X.astype(np.float32)
    splits = drivers._tree_splits(tree, Xo)
    cond = [a for a, v in enumerate(splits.used) if v in (0, 2)]
    n_points = sum(a in cond for a in splits.order)
    full, share = drivers._grid(splits, cond, 1)
    assert share == 1.0 and _same_partition(full, _hand_grid(splits, cond, n_points))  # permimp's grid
    assert _same_partition(full, drivers._cell_ids(splits.codes[:, cond], splits.levels[cond]))
    for floor in (5, np.sqrt(len(Xo)), 60):
        cells, share = drivers._grid(splits, cond, floor)
        k = round(share * n_points)
        assert _same_partition(cells, _hand_grid(splits, cond, k))
        assert drivers._rows_per_cell(cells) >= floor  # full enough ...
        assert k < n_points and drivers._rows_per_cell(_hand_grid(splits, cond, k + 1)) < floor  # ... and no finer
    empty, share = drivers._grid(splits, [], 5)
    assert np.isnan(share) and (empty == 0).all()


# ------------------------------------------------- conditional permutation


def _strobl_data(seed: int = 0, n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Strobl et al. (2008) in small: x1 has no effect but correlates 0.9 with the strong x0;
    x2 has an effect and is independent; x3, x4 are independent noise."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=n)
    x1 = 0.9 * x0 + np.sqrt(1 - 0.81) * rng.normal(size=n)
    X = np.column_stack([x0, x1, rng.normal(size=(n, 3))])
    y = 4 * X[:, 0] + 2 * X[:, 2] + rng.normal(size=n)
    return X, y


def test_correlated_null_predictor_is_important_marginally_not_conditionally():
    X, y = _strobl_data()
    train, test = slice(0, 400), slice(400, None)
    rf = RandomForestRegressor(n_estimators=50, min_samples_leaf=5, max_features=0.6, random_state=0)
    rf.fit(X[train], y[train])
    sens = drivers.threshold_sensitivity(rf, X[train], y[train], thresholds=[0.95, 1.0], random_state=0, n_repeats=3)
    cpi = sens[sens["threshold"] == 0.95].set_index("indicator")["mean"]
    marginal = sens[sens["threshold"] == 1.0].set_index("indicator")["mean"]
    plain = drivers.plain_permutation_importance(rf, X[test], y[test], random_state=0).set_index("indicator")["mean"]
    # the null x1 looks important without conditioning, on out-of-bag and on held-out rows ...
    assert marginal["x1"] > 1.0 and plain["x1"] > 0.5
    assert marginal["x1"] > 20 * max(abs(marginal["x3"]), abs(marginal["x4"]))
    # ... and loses (almost) all of it when permuted within the grid of x0
    assert cpi["x1"] < 0.2 * marginal["x1"]
    assert cpi["x0"] > 10 * cpi["x1"] and cpi["x2"] > 10 * cpi["x1"]
    # x2 is independent of the rest: conditioning leaves it unchanged (same permutations)
    assert_allclose(cpi["x2"], marginal["x2"], rtol=0.1)
    diag = sens[sens["threshold"] == 0.95].set_index("indicator")
    assert diag.loc["x1", "n_conditioning"] >= 1 and diag.loc["x1", "moved_share"] < diag.loc["x2", "moved_share"]
    assert diag.loc["x2", "n_conditioning"] == 0 and np.isnan(diag.loc["x2", "grid_share"])
    assert diag.loc["x1", "rows_per_cell"] >= np.sqrt(0.3 * 400)  # the square-root floor (>= 30 % of rows out of bag)


def _district_data(seed: int = 0, n_districts: int = 150, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Rows in districts, as the mines of the synthetic world: x0-x3 are shared by a district's rows
    (gridded climate) and correlated through a common factor; x0 drives, x1 is its null proxy
    (rho ~ 0.95), x2 drives, x3 is null; x4-x6 vary row by row (x4 drives, x5 and x6 are null)."""
    rng = np.random.default_rng(seed)
    district = np.repeat(np.arange(n_districts), size)
    factor = rng.normal(size=n_districts)
    shared = 0.5 * factor[:, None] + rng.normal(size=(n_districts, 4))
    shared[:, 1] = 0.9 * shared[:, 0] + 0.4 * rng.normal(size=n_districts)
    local = rng.normal(size=(len(district), 3)) + 0.3 * factor[district][:, None]
    X = np.column_stack([shared[district], local])
    return X, 4 * X[:, 0] + 2 * X[:, 2] + 2 * X[:, 4] + rng.normal(size=len(district))


def test_clustered_rows_collapse_permimps_scheme_not_the_default():
    """On 1,200 rows in 150 districts every predictor is "significantly" associated with the others
    and fully grown trees cut the shared predictors into one district per cell: permimp's scheme (per-tree
    chi-squared test, the tree's full grid) moves nothing and every shared predictor gets ~0. The default
    conditions only x0 and x1 on each other and keeps the cells full: the drivers stay well above the nulls."""
    X, y = _district_data()
    rf = RandomForestRegressor(n_estimators=30, max_features=0.6, random_state=0).fit(X, y)
    kw = {"random_state": 0, "n_repeats": 2}
    default = drivers.conditional_permutation_importance(rf, X, y, **kw).set_index("indicator")
    permimp = drivers.conditional_permutation_importance(rf, X, y, selection="tree", min_cell_rows=1, **kw)
    marginal = drivers.conditional_permutation_importance(rf, X, y, threshold=1.0, **kw)["mean"].to_numpy()
    permimp = permimp.set_index("indicator")
    shared = ["x0", "x1", "x2", "x3"]
    assert (permimp.loc[shared, "moved_share"] < 0.02).all() and (permimp.loc[shared, "rows_per_cell"] < 3).all()
    assert (permimp.loc[["x0", "x2"], "mean"].to_numpy() < 0.01 * marginal[[0, 2]]).all()  # the drivers vanish
    assert_array_equal(default["n_conditioning"], [1, 1, 0, 0, 0, 0, 0])  # only |rho(x0, x1)| > 0.45
    assert (default["rows_per_cell"] >= np.sqrt(0.3 * len(X))).all()
    found, nulls = default.loc[["x0", "x2", "x4"], "mean"], default.loc[["x1", "x3", "x5", "x6"], "mean"]
    assert found.min() > 3 * nulls.max()
    assert default.loc["x1", "mean"] < 0.15 * marginal[1]  # the proxy loses its borrowed importance
    assert_allclose(default.loc[["x2", "x4"], "mean"], marginal[[2, 4]])  # unconditioned: marginal, same draws


def _naive_marginal_oob_importance(rf, X, y, n_repeats, seed):
    """Plain out-of-bag permutation importance, tree by tree (the reference of the vectorised code)."""
    rng = np.random.default_rng(seed)
    n, p = X.shape
    Xf = X.astype(np.float32)
    total = np.zeros((n_repeats, p))
    for tree in rf.estimators_:
        oob = _generate_unsampled_indices(tree.random_state, n, n, None)
        Xo, yo = Xf[oob], y[oob]
        base = np.mean((yo - tree.predict(Xo)) ** 2)
        for j in np.unique(tree.tree_.feature[tree.tree_.feature >= 0]):
            for r in range(n_repeats):
                order = np.argsort(rng.random(len(oob)), kind="stable")
                Xp = Xo.copy()
                Xp[:, j] = Xo[order, j]
                total[r, j] += np.mean((yo - tree.predict(Xp)) ** 2) - base
    return total.mean(axis=0) / len(rf.estimators_)


def test_unconditional_case_matches_a_tree_by_tree_reference():
    X, y = _strobl_data(seed=2, n=150)
    rf = RandomForestRegressor(n_estimators=8, min_samples_leaf=3, random_state=1).fit(X, y)
    got = drivers.conditional_permutation_importance(rf, X, y, threshold=1.0, n_repeats=2, random_state=7)
    assert_allclose(got["mean"], _naive_marginal_oob_importance(rf, X, y, 2, 7), rtol=1e-10, atol=1e-12)
    assert_array_equal(got["n_conditioning"].fillna(0), 0)
    assert got["rows_per_cell"].between(40, 70).all()  # all ~55 out-of-bag rows share one cell


def test_pipeline_works_in_the_transformed_space():
    X, y = _strobl_data(seed=3, n=200)
    X = pd.DataFrame(np.exp(X / 2), columns=[f"v{i}" for i in range(5)])
    pipe = make_pipeline(PowerTransformer(), RandomForestRegressor(n_estimators=10, random_state=0)).fit(X, y)
    bare = RandomForestRegressor(n_estimators=10, random_state=0).fit(PowerTransformer().fit_transform(X), y)
    a = drivers.conditional_permutation_importance(pipe, X, y, random_state=0, n_repeats=2)
    b = drivers.conditional_permutation_importance(bare, PowerTransformer().fit_transform(X), y, random_state=0,
                                                   n_repeats=2)
    assert a["indicator"].tolist() == list(X.columns)
    assert_allclose(a["mean"], b["mean"], rtol=1e-6, atol=1e-9)


def test_global_selection_and_holdout_data():
    X, y = _strobl_data(seed=4, n=300)
    rf = RandomForestRegressor(n_estimators=20, min_samples_leaf=5, max_features=0.6, random_state=0)
    rf.fit(X[:200], y[:200])
    glob = drivers.conditional_permutation_importance(rf, X[:200], y[:200], selection="global", random_state=0)
    assert glob.loc[1, "n_conditioning"] >= 1  # x1 is conditioned on x0 in every tree using both
    held = drivers.conditional_permutation_importance(rf, X[200:], y[200:], data="holdout", random_state=0)
    assert held.attrs["data"] == "holdout" and held.loc[0, "mean"] > held.loc[1, "mean"]


def test_quantile_forest_is_explained_as_the_mean_of_its_trees():
    X, y = _strobl_data(seed=5, n=200)
    qrf = RandomForestQuantileRegressor(n_estimators=10, min_samples_leaf=5, random_state=0).fit(X, y)
    cpi = drivers.conditional_permutation_importance(qrf, X, y, random_state=0, n_repeats=2)
    assert cpi["mean"].idxmax() == 0
    shap = drivers.shap_values(qrf, X, max_rows=30, random_state=0)
    mean_of_trees = np.mean([t.predict(X[shap.index].astype(np.float32)) for t in qrf.estimators_], axis=0)
    base = mean_of_trees - shap.sum(axis=1)
    assert_allclose(base, base[0], atol=1e-3)  # SHAP values add up to the trees' mean, less a constant


def test_clear_errors():
    X, y = _strobl_data(seed=6, n=100)
    rf = RandomForestRegressor(n_estimators=20, oob_score=True, random_state=0).fit(X, y)
    with pytest.raises(drivers.DriversError, match="forest regressor"):
        drivers.conditional_permutation_importance(LinearRegression().fit(X, y), X, y)
    with pytest.raises(drivers.DriversError, match="threshold must lie"):
        drivers.conditional_permutation_importance(rf, X, y, threshold=1.5)
    with pytest.raises(drivers.DriversError, match="training rows in fitting order"):
        drivers.conditional_permutation_importance(rf, X[:90], y[:90])
    with pytest.raises(drivers.DriversError, match="do not match the forest's own out-of-bag"):
        drivers.conditional_permutation_importance(rf, X[::-1], y[::-1])
    no_bootstrap = RandomForestRegressor(n_estimators=3, bootstrap=False, random_state=0).fit(X, y)
    with pytest.raises(drivers.DriversError, match="use data='holdout'"):
        drivers.conditional_permutation_importance(no_bootstrap, X, y)
    with pytest.raises(drivers.DriversError, match="missing or infinite"):
        drivers.conditional_permutation_importance(rf, np.where(X > 2, np.nan, X), y)
    with pytest.raises(drivers.DriversError, match="min_cell_rows must be None"):
        drivers.conditional_permutation_importance(rf, X, y, min_cell_rows=0.5)
    with pytest.raises(drivers.DriversError, match="selection must be 'strength', 'tree' or 'global'"):
        drivers.conditional_permutation_importance(rf, X, y, selection="party")


def test_sensitivity_is_the_importance_at_each_threshold():
    X, y = _strobl_data(seed=9, n=200)
    rf = RandomForestRegressor(n_estimators=10, min_samples_leaf=3, random_state=0).fit(X, y)
    sens = drivers.threshold_sensitivity(rf, X, y, thresholds=[0.99, 0.2, 0.95, 1.0], random_state=4, n_repeats=2)
    assert sorted(set(sens["threshold"])) == [0.2, 0.95, 0.99, 1.0]
    for t in (0.2, 0.95, 1.0):
        alone = drivers.conditional_permutation_importance(rf, X, y, threshold=t, random_state=4, n_repeats=2)
        part = sens[sens["threshold"] == t].drop(columns=["threshold", "rank"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(part, alone)
    assert alone.attrs["rho_cutoff"] == 1.0 and alone.attrs["selection"] == "strength"


# --------------------------------------------------------- tables and truth


def test_drivers_table_and_ranks():
    cpi = pd.DataFrame({"indicator": ["a", "b", "c"], "mean": [1.0, 3.0, 2.0], "sd": [0.1, 0.2, 0.3]})
    perm = pd.DataFrame({"indicator": ["c", "b", "a"], "mean": [5.0, 1.0, 2.0], "sd": [0.0, 0.0, 0.0]})
    shap = pd.DataFrame({"a": [1.0, -3.0], "b": [0.5, 0.5], "c": [0.0, 0.2]})
    t = drivers.drivers_table(cpi, perm, shap)
    assert t["indicator"].tolist() == ["b", "c", "a"]
    assert_allclose(t["permutation"], [1.0, 5.0, 2.0])
    assert_allclose(t["shap"], [0.5, 0.1, 2.0])
    assert t[["cpi_rank", "permutation_rank", "shap_rank"]].to_numpy().tolist() == [[1, 3, 2], [2, 1, 3], [3, 2, 1]]


def test_null_rank_check():
    df = pd.DataFrame({"indicator": ["soc", "precip", "spei", "gdp"], "cpi_rank": [1, 2, 3, 4],
                       "permutation_rank": [1, 3, 2, 4], "shap_rank": [1, 2, 3, 4]})
    truth = {"driver_weights": {"soc": 50.0, "precip": 40.0, "spei": 0.0, "gdp": 0.0},
             "null_indicators": ["spei", "gdp"]}
    out = drivers.null_rank_check(df, truth)
    assert out["drivers"] == ["soc", "precip"] and out["nulls"] == ["spei", "gdp"]
    assert out["cpi"] == {"worst_driver_rank": 2, "best_null_rank": 3, "ordered_share": 1.0, "passed": True}
    assert out["permutation"]["passed"] is False and out["permutation"]["ordered_share"] == 0.75
    with pytest.raises(drivers.DriversError, match="at least one true driver"):
        drivers.null_rank_check(df, {"driver_weights": {"soc": 1.0}, "null_indicators": []})


# ---------------------------------------------------------------- the run

WEIGHTS = {"soc": 50.0, "precip": 40.0, "gpp": 35.0, "tmax": 12.0, "elevation": -10.0, "area_km2": -8.0,
           "pop_density": -8.0, "spei": 0.0, "tmin": 0.0, "curvature": 0.0, "gdp": 0.0}
TRUTH = {"driver_weights": WEIGHTS, "null_indicators": ["spei", "tmin", "curvature", "gdp"]}


def _fabricate_run(run_dir, *, n_mines: int = 330, n_train: int = 250, n_test: int = 40):
    """A run directory holding what the potential stage leaves: model, its data, covariates, potential."""
    rng = np.random.default_rng(11)
    Z = rng.normal(size=(n_mines, len(INDICATORS)))
    cov = pd.DataFrame(np.exp(Z / 2), columns=list(INDICATORS)).assign(mine_id=np.arange(n_mines))
    gain = 165 + Z @ np.array([WEIGHTS[k] for k in INDICATORS]) + rng.normal(0, 10, n_mines)
    data = cov.iloc[: n_train + n_test].assign(target=gain[: n_train + n_test],
                                               split=["train"] * n_train + ["test"] * n_test)
    train = data[data["split"] == "train"]
    model = make_pipeline(PowerTransformer(), RandomForestRegressor(n_estimators=30, min_samples_leaf=3,
                                                                   max_features=0.5, random_state=0))
    model.fit(train[list(INDICATORS)], train["target"])
    run_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, run_dir / "model.joblib")
    data[["mine_id", *INDICATORS, "target", "split"]].to_parquet(run_dir / "model_data.parquet")
    cov[["mine_id", *INDICATORS]].to_parquet(run_dir / "covariates.parquet")
    pd.DataFrame({"mine_id": cov["mine_id"], "attainable": model.predict(cov[list(INDICATORS)]),
                  "potential": 0.0}).to_parquet(run_dir / "potential.parquet")
    return RunParams(run_dir=str(run_dir))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    params = _fabricate_run(tmp_path_factory.mktemp("run"))
    return params, drivers.run(params, truth=TRUTH)


def test_run_writes_drivers_csv_and_summary(result):
    params, res = result
    table = pd.read_csv(params.run_path / "drivers.csv")
    assert table.columns.tolist() == ["indicator", "cpi", "cpi_sd", "permutation", "permutation_sd", "shap",
                                      "cpi_rank", "permutation_rank", "shap_rank"]
    assert sorted(table["indicator"]) == sorted(INDICATORS)
    assert set(table["indicator"].head(3)) == {"soc", "precip", "gpp"}  # the three strong drivers
    summary = read_summary(params.run_path)
    assert summary["drivers_top3"] == table["indicator"].head(3).tolist() == res.top3
    assert summary["drivers"]["n_train"] == 250 and summary["drivers"]["n_test"] == 40
    assert set(summary["drivers"]["sensitivity"]) == {"0.2", "0.5", "0.8", "0.95", "0.99", "1"}
    assert summary["drivers"]["truth_check"]["cpi"]["worst_driver_rank"] == res.truth_check["cpi"][
        "worst_driver_rank"]
    assert_allclose(summary["drivers"]["rho_cutoff"], 0.4496, atol=1e-4)
    assert summary["drivers"]["sensitivity"]["1"]["grid_share_mean"] is None  # nothing to condition on
    assert 0 < summary["drivers"]["sensitivity"]["0.2"]["grid_share_mean"] <= 1
    assert summary["drivers"]["permimp_scheme"]["grid_share_mean"] == 1.0
    assert_allclose(res.cpi["mean"].to_numpy(), table.set_index("indicator").loc[res.cpi["indicator"], "cpi"])


def test_run_is_deterministic(result, tmp_path):
    params, res = result
    again = drivers.run(_fabricate_run(tmp_path / "again"), truth=TRUTH)
    pd.testing.assert_frame_equal(res.table, again.table)


def test_run_tables_for_the_chapter(result):
    _, res = result
    assert set(res.sensitivity["threshold"]) == {0.2, 0.5, 0.8, 0.95, 0.99, 1.0}
    assert res.pd_curves.groupby("indicator").size().between(2, 20).all()
    assert (res.pd_curves["lo"] <= res.pd_curves["hi"]).all()
    soc = res.pd_curves[res.pd_curves["indicator"] == "soc"]
    assert soc["mean"].iloc[-1] > soc["mean"].iloc[0] + 20  # soc raises the attainable gain
    assert res.shap.shape == (250, 11) and res.correlation.shape == (11, 11)
    assert res.permimp["indicator"].tolist() == list(INDICATORS) and res.permimp.attrs["selection"] == "tree"
    assert_allclose(res.association.to_numpy(), drivers.association(res.train, method="spearman", effective_n=20))


def test_run_without_model_degrades_with_a_message(tmp_path):
    params = _fabricate_run(tmp_path)
    (tmp_path / "model.joblib").unlink()
    res = drivers.run(params, truth=TRUTH)
    assert not res.available and "saved no model" in res.message
    assert pd.read_csv(tmp_path / "drivers.csv").empty
    summary = read_summary(tmp_path)
    assert summary["drivers_top3"] == [] and summary["drivers"]["available"] is False


def test_run_with_too_small_a_sample_degrades(tmp_path):
    params = _fabricate_run(tmp_path, n_train=15, n_test=3)
    res = drivers.run(params, truth=TRUTH)
    assert not res.available and "too small" in res.message


def test_run_needs_the_potential_stage(tmp_path):
    params = _fabricate_run(tmp_path)
    (tmp_path / "potential.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="run the potential chapter first"):
        drivers.run(params, truth=TRUTH)


# ----------------------------------------------------------------- figures


def test_figures(result):
    _, res = result
    fig = plots.importance_bars(res.table, nulls=TRUTH["null_indicators"])
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert len(plots.threshold_ranks(res.sensitivity, threshold=0.95).axes) == 3
    fig = plots.threshold_ranks(res.sensitivity, rho_cutoffs={t: drivers.rho_cutoff(t) for t in (0.5, 0.95, 1.0)})
    labels = [tick.get_text() for tick in fig.axes[0].get_xticklabels()]
    assert labels == ["0.2", "0.5\n>0.15", "0.8", "0.95\n>0.45", "0.99", "1"]
    assert isinstance(plots.correlation_heatmap(res.correlation), Figure)
    ranks = res.table.set_index("indicator")["cpi_rank"]
    fig9 = plots.fig9_partial_dependence(res.pd_curves, res.covariates, train=res.train,
                                         order=res.table["indicator"], ranks=ranks)
    titles = [ax.get_title() for ax in fig9.axes if ax.get_title()]
    assert titles[0] == f"{res.table['indicator'].iloc[0]} (CPI rank 1)" and len(titles) == 11
    assert isinstance(plots.unavailable("no model"), Figure)


# ------------------------------------------------------ the synthetic world


@pytest.fixture(scope="module")
def medium_world(tmp_path_factory: pytest.TempPathFactory):
    """The synthetic ``medium`` world (seed 1: the validation chapter's baseline world) and its truth."""
    from nepkit.synth import generate

    manifest = generate(tmp_path_factory.mktemp("world") / "medium", preset="medium", seed=1, progress=False)
    return manifest, json.loads((manifest.parent / "truth.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_synthetic_world_nulls_rank_below_the_strong_drivers(medium_world, tmp_path):
    """End to end on the generator's medium world: extract, NEP change, potential, drivers (defaults).

    About 180 training mines in eight districts. Asserted: under conditional permutation
    importance the three strong drivers of truth.json (soc, precip, gpp: weights 35-50)
    rank above every null indicator (spei, tmin, curvature, gdp), and at least 3/4 of the
    (true driver, null) pairs are in order. Not asserted: that the weak drivers (tmax,
    elevation, area, population: weights 8-12) beat every null. Their effect is of the
    order of what a forest of 180 mines makes of a null that stands in for the district
    (tmin for tmax, rho = 0.98; curvature and SPEI vary between districts), so some tie
    with nulls.
    """
    extract = pytest.importorskip("nepkit.extract")
    nepchange = pytest.importorskip("nepkit.nepchange")
    potential = pytest.importorskip("nepkit.potential")
    manifest, truth = medium_world
    params = RunParams(sources=str(manifest), run_dir=str(tmp_path), n_sample=400, scheduler="synchronous")
    extract.write_artifacts(extract.run_extraction(params, progress=False), params.run_path)
    nepchange.run(params)
    potential.run(params, n_jobs=1)
    res = drivers.run(params, truth=truth)
    assert res.available and res.n_train >= 150
    ranks = res.table.set_index("indicator")["cpi_rank"]
    strong, nulls = ["soc", "precip", "gpp"], truth["null_indicators"]
    assert sorted(nulls) == ["curvature", "gdp", "spei", "tmin"]
    assert ranks[strong].max() < ranks[nulls].min(), ranks.to_dict()
    assert res.truth_check["cpi"]["ordered_share"] >= 0.75
