"""Tests of nepkit.drivers: conditional permutation importance, the other two
importances, the truth check, the stage's run and its figures."""

from __future__ import annotations

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


def test_within_cell_permutation_keeps_each_row_in_its_cell():
    cells = np.array([0, 1, 0, 2, 1, 0, 0, 2, 1, 0])
    perm = drivers._within_cell_permutation(cells, np.random.default_rng(3))
    assert_array_equal(np.sort(perm), np.arange(10))  # a permutation
    assert_array_equal(cells[perm], cells)  # every row takes a value from its own cell
    again = drivers._within_cell_permutation(cells, np.random.default_rng(3))
    assert_array_equal(perm, again)
    moved = [np.any(drivers._within_cell_permutation(cells, np.random.default_rng(s)) != np.arange(10))
             for s in range(5)]
    assert any(moved)


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
    assert isinstance(plots.correlation_heatmap(res.correlation), Figure)
    ranks = res.table.set_index("indicator")["cpi_rank"]
    fig9 = plots.fig9_partial_dependence(res.pd_curves, res.covariates, train=res.train,
                                         order=res.table["indicator"], ranks=ranks)
    titles = [ax.get_title() for ax in fig9.axes if ax.get_title()]
    assert titles[0] == f"{res.table['indicator'].iloc[0]} (CPI rank 1)" and len(titles) == 11
    assert isinstance(plots.unavailable("no model"), Figure)
