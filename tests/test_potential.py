"""Tests of nepkit.potential: transform, sample rules, errors, reproducibility, truth recovery.

The tests build a small world by hand: mines in clustered districts, 11 indicators
with district-level (spatially autocorrelated) structure, a known attainable gain
that depends on soc, precip and gpp only, and an observed gain equal to it plus
noise for the restored half of the mines (the others lose NEP).
"""

from __future__ import annotations

import geopandas as gpd
import joblib
import numpy as np
import pandas as pd
import pytest
import shapely
from numpy.testing import assert_allclose
from scipy import stats
from sklearn.preprocessing import PowerTransformer

from nepkit import potential
from nepkit.artifacts import INDICATORS
from nepkit.io import read_summary
from nepkit.params import RunParams
from nepkit.sources import truth_meta, truth_table

REGIONS = [("Asia", "Eastern Asia"), ("Asia", "South-Eastern Asia"), ("Africa", "Southern Africa"),
           ("Africa", "Western Africa"), ("Europe", "Eastern Europe"), ("South America", "South America")]
NOISE = 15.0  # g C m-2 a-1, sd of a restored mine's observed gain around its attainable gain


def _world(n: int, seed: int = 0, *, n_districts: int = 12, restored_share: float = 0.5, extreme: bool = False):
    """Mines, covariates, NEP change (2001-2004, baseline excluded) and the truth."""
    rng = np.random.default_rng(seed)
    centres = np.c_[rng.uniform(-10, 140, n_districts), rng.uniform(-30, 55, n_districts)]
    district = rng.integers(0, n_districts, n)
    lon = centres[district, 0] + rng.normal(0, 1.5, n)
    lat = centres[district, 1] + rng.normal(0, 1.5, n)
    z = {k: 0.8 * rng.normal(0, 1, n_districts)[district] + 0.6 * rng.normal(0, 1, n) for k in INDICATORS}
    if extreme:  # the last mine lies far outside the others' indicator space (and is not restored)
        for k in ("soc", "precip", "gpp"):
            z[k][-1] = 8.0
    cov = pd.DataFrame({
        "spei": 0.5 * z["spei"], "precip": 600 * np.exp(0.5 * z["precip"]), "tmax": 25 + 5 * z["tmax"],
        "tmin": 5 + 6 * z["tmin"], "gpp": 900 * np.exp(0.4 * z["gpp"]), "soc": 40 * np.exp(0.5 * z["soc"]),
        "elevation": 600 + 400 * z["elevation"], "curvature": 0.01 * z["curvature"],
        "area_km2": 1 + np.exp(z["area_km2"]), "pop_density": 50 * np.exp(1.2 * z["pop_density"]),
        "gdp": 1e3 * np.exp(1.5 * z["gdp"]),
    })
    attainable = 180 + 45 * z["soc"] + 30 * z["precip"] + 20 * z["gpp"]
    restored = rng.random(n) < restored_share
    restored[-1] &= not extreme
    gain = np.where(restored, attainable + rng.normal(0, NOISE, n), rng.normal(-60, 60, n))
    ids = np.arange(1, n + 1, dtype="int64") * 3
    reg = [REGIONS[d % len(REGIONS)] for d in district]
    mines = gpd.GeoDataFrame(
        {"mine_id": ids, "iso3": "XXX", "country": "X", "continent": [r[0] for r in reg],
         "subregion": [r[1] for r in reg], "area_km2": cov["area_km2"]},
        geometry=shapely.box(lon - 0.005, lat - 0.005, lon + 0.005, lat + 0.005), crs=4326,
    )
    years = np.arange(2001, 2005)
    change = pd.DataFrame({"mine_id": np.repeat(ids, len(years)), "year": np.tile(years, n),
                           "loss": np.repeat(-gain, len(years))})
    change = change.assign(W=0.0, P=-change["loss"],
                           loss_total_g=change["loss"] * np.repeat(cov["area_km2"].to_numpy() * 1e6, len(years)))
    truth = change[["mine_id", "year"]].assign(true_loss=change["loss"],
                                               true_attainable_gain=np.repeat(attainable, len(years)),
                                               district=np.repeat(district, len(years)))
    covariates = cov.assign(mine_id=ids)[["mine_id", *INDICATORS]]
    return mines, covariates, change[["mine_id", "year", "P", "W", "loss", "loss_total_g"]], truth


def _write(run_dir, mines, covariates, change) -> RunParams:
    run_dir.mkdir(parents=True, exist_ok=True)
    mines.to_parquet(run_dir / "mines.parquet")
    covariates.to_parquet(run_dir / "covariates.parquet")
    change.to_parquet(run_dir / "nep_change.parquet")
    return RunParams(run_dir=str(run_dir))


@pytest.fixture(scope="module")
def fast():
    """Fewer trees: the tests check the logic, not the forest's last digit."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(potential, "N_TREES", 60)
        yield


@pytest.fixture(scope="module")
def world():
    return _world(600, seed=3, extreme=True)


@pytest.fixture(scope="module")
def result(tmp_path_factory, fast, world):
    mines, covariates, change, truth = world
    covariates = covariates.copy()
    covariates.loc[[5, 17, 40], "gdp"] = np.nan  # three mines with a missing indicator
    change = change[change["mine_id"] != mines["mine_id"].iloc[8]]  # one mine without NEP change
    params = _write(tmp_path_factory.mktemp("run"), mines, covariates, change)
    return params, potential.run(params, truth=truth)


def _sample(n: int, seed: int = 0) -> pd.DataFrame:
    mines, covariates, change, _ = _world(n, seed, restored_share=1.0)
    gain = -change.groupby("mine_id")["loss"].mean()
    return covariates.assign(observed_gain=gain.reindex(covariates["mine_id"]).to_numpy())


# ------------------------------------------------------------------------------ transform


def test_yeo_johnson_matches_scipy_and_is_fitted_on_training_rows_only(fast):
    sample = _sample(200)
    sample.loc[:, "tmin"] -= 8  # negative values too: both branches of the transform
    model = potential.fit(sample, seed=1, grid={"max_features": [1.0], "min_samples_leaf": [5]})
    train = model.train
    pt = model.pipeline.named_steps["yeojohnson"]
    transformed = model.transform(train)
    for j, name in enumerate(INDICATORS):
        expected, lam = stats.yeojohnson(train[name].to_numpy())
        assert_allclose(pt.lambdas_[j], lam, rtol=1e-3, atol=1e-3)
        assert_allclose(transformed[:, j], (expected - expected.mean()) / expected.std(), atol=2e-3)
    lam_all = stats.yeojohnson(sample["precip"].to_numpy())[1]
    assert abs(pt.lambdas_[INDICATORS.index("precip")] - lam_all) > 1e-6  # the test rows were not seen


def test_yeo_johnson_uses_the_natural_log_not_lg():
    pt = PowerTransformer(method="yeo-johnson", standardize=False).fit(np.array([[0.0, -1.0], [1.0, 0.0]]))
    pt.lambdas_ = np.array([0.0, 2.0])  # the log branches of the paper's equation 5
    x = np.e - 1
    assert_allclose(pt.transform(np.array([[x, -x]])), [[1.0, -1.0]])  # lg would give +-0.434
    assert_allclose(stats.yeojohnson(np.array([x]), lmbda=0.0), [1.0])


# ------------------------------------------------------------------------------ sample rules


def test_training_sample_rules():
    table = pd.DataFrame({"mine_id": np.arange(100, 0, -1), "observed_gain": np.linspace(0, 300, 100)})
    all_ = potential.training_sample(table, gain_threshold=100, n_sample=1000, seed=0)
    assert (all_["observed_gain"] > 100).all() and len(all_) == (table["observed_gain"] > 100).sum()
    assert all_["mine_id"].is_monotonic_increasing
    exact = pd.DataFrame({"mine_id": [1, 2], "observed_gain": [100.0, 100.5]})
    assert potential.training_sample(exact, gain_threshold=100, n_sample=5, seed=0)["mine_id"].tolist() == [2]
    a = potential.training_sample(table, gain_threshold=100, n_sample=20, seed=7)
    b = potential.training_sample(table, gain_threshold=100, n_sample=20, seed=7)
    c = potential.training_sample(table, gain_threshold=100, n_sample=20, seed=8)
    assert len(a) == 20 and a.equals(b) and not a.equals(c)
    assert set(a["mine_id"]) <= set(all_["mine_id"])


def test_min_sample_size_by_hand():
    assert potential.min_sample_size(0.15, 3) == 27  # ceil(0.15 * 27) = 5 test mines, 22 >= 3 * 5
    assert potential.min_sample_size(0.15, 10) == 59  # 9 test mines, 50 >= 10 * 5
    assert potential.min_sample_size(0.5, 2) == 20  # 10 and 10


def test_complete_cases_counts_nan_and_inf():
    t = pd.DataFrame({"a": [1.0, np.nan, np.inf, 2.0], "b": [1.0, 2.0, 3.0, np.nan]})
    kept, dropped = potential.complete_cases(t, ["a", "b"])
    assert dropped == 3 and kept["a"].tolist() == [1.0]


# ------------------------------------------------------------------------------ errors


def test_too_few_training_mines_says_how_many_and_what_to_lower():
    with pytest.raises(potential.InsufficientSampleError, match=r"only 10 training mine.*at least 27.*gain_threshold"):
        potential.fit(_sample(10), test_fraction=0.15, cv_folds=3)
    with pytest.raises(potential.InsufficientSampleError, match=r"only 40 .*cv_folds=10 need at least 59"):
        potential.fit(_sample(40), test_fraction=0.15, cv_folds=10)


def test_nan_and_constant_indicators(fast):
    sample = _sample(60)
    with pytest.raises(potential.PotentialError, match="1 training mine.*NaN"):
        potential.fit(sample.assign(soc=sample["soc"].where(sample.index != 3)))
    constant = sample.assign(**{k: 1.0 for k in INDICATORS})
    with pytest.raises(potential.PotentialError, match="every indicator is constant"):
        potential.fit(constant)
    model = potential.fit(sample.assign(gdp=5.0), seed=0, grid={"max_features": [1.0], "min_samples_leaf": [5]})
    assert model.constant == ["gdp"]
    assert model.pipeline.named_steps["forest"].feature_importances_[INDICATORS.index("gdp")] == 0
    assert np.isfinite(model.test["attainable"]).all()


def test_run_rejects_n_sample_below_the_split(tmp_path, world):
    params = _write(tmp_path, *world[:3]).replace(n_sample=10)
    with pytest.raises(potential.InsufficientSampleError, match="n_sample=10 is below the 27 mines.*raise n_sample"):
        potential.run(params)


# ------------------------------------------------------------------------------ pure functions


def test_potential_definitions_by_hand():
    a, o = [120.0, 80.0, -5.0, np.nan], [100.0, 90.0, -30.0, 10.0]
    assert_allclose(potential.potential_values(a, o, definition="gap"), [20, 0, 25, np.nan])
    assert_allclose(potential.potential_values(a, o, definition="predicted"), [120, 80, 0, np.nan])
    assert_allclose(potential.potential_values(a, o, definition="gap_unfloored"), [20, -10, 25, np.nan])
    with pytest.raises(potential.PotentialError, match="unknown potential definition 'ratio'"):
        potential.potential_values(a, o, definition="ratio")


def test_summarize_by_hand():
    t = pd.DataFrame({"continent": ["Asia", "Asia", "Africa", "Africa"], "subregion": ["A", "B", "C", "C"],
                      "potential": [0.0, 30.0, 60.0, np.nan]})
    s = potential.summarize(t)
    assert s["potential_mean"] == 30.0 and s["potential_max"] == 60.0
    assert_allclose(s["no_potential_share"], 1 / 3)
    assert_allclose(s["potential_total_kg"], 0.09)
    assert s["potential_by_continent"] == {"Africa": 60.0, "Asia": 15.0}
    assert s["potential_by_subregion"] == {"A": 0.0, "B": 30.0, "C": 60.0}


def test_truth_agreement_by_hand():
    truth = pd.DataFrame({"mine_id": [1, 1, 2, 2, 3, 3, 4, 4], "year": [1, 2] * 4,
                          "true_attainable_gain": [100.0, 100.0, 200.0, 200.0, 300.0, 300.0, 50.0, 50.0]})
    pred = pd.DataFrame({"mine_id": [1, 2, 3, 9], "attainable": [110.0, 210.0, 310.0, 0.0]})
    got = potential.truth_agreement(pred, truth)
    assert got["n"] == 3
    assert_allclose([got["r"], got["rmse"], got["bias"]], [1.0, 10.0, 10.0])


def test_spatial_blocks_and_dissimilarity_index_by_hand():
    assert potential.spatial_blocks(np.array([-0.1, 9.9, 10.0]), np.array([0.0, 4.9, 5.0])).tolist() == [
        "-1_0", "1_0", "2_1"]
    aoa = potential.AreaOfApplicability(weights=np.array([1.0, 0.0]), train=np.array([[0.0, 0.0], [3.0, 0.0]]),
                                        mean_distance=3.0, threshold=0.5, train_di=np.zeros(2))
    assert_allclose(aoa.di(np.array([[0.0, 7.0], [6.0, 0.0], [1.5, 1.0]])), [0.0, 1.0, 0.5])


# ------------------------------------------------------------------------------ run


def test_run_writes_artifacts_and_summary(result):
    params, res = result
    pot = pd.read_parquet(params.run_path / "potential.parquet")
    for col in ("mine_id", "attainable", "attainable_lo", "attainable_hi", "observed_gain", "potential",
                "potential_lo", "potential_hi", "out_of_domain", "di", "continent", "subregion"):
        assert col in pot.columns
    assert len(pot) == 600 - 3 - 1
    assert_allclose(pot["potential"], np.maximum(pot["attainable"] - pot["observed_gain"], 0))
    assert (pot["potential_lo"] <= pot["potential_hi"]).all()
    assert (pot["attainable_lo"] <= pot["attainable_hi"]).all()
    s = read_summary(params.run_path)
    assert_allclose(s["potential_mean"], pot["potential"].mean())
    assert_allclose(s["no_potential_share"], (pot["potential"] == 0).mean())
    assert set(s["potential_by_continent"]) == set(pot["continent"])
    assert set(s["model"]) == {"rmse_test", "rmse_cv", "rmse_spatial_cv", "r2_test", "params"}
    assert set(s["model"]["params"]) == {"n_estimators", "max_features", "min_samples_leaf"}
    extras = s["potential"]
    assert (extras["n_excluded_nan"], extras["n_excluded_no_gain"]) == (3, 1)
    assert any("3 of 600 mines have a missing indicator" in note for note in res.notes)
    assert extras["n_train"] + extras["n_test"] == extras["n_sample"] == extras["n_eligible"]
    assert 0 < extras["out_of_domain_share"] < 0.5


def test_saved_model_reproduces_the_predictions(result):
    params, res = result
    model = joblib.load(params.run_path / "model.joblib")
    data = pd.read_parquet(params.run_path / "model_data.parquet")
    assert {"mine_id", *INDICATORS, "target", "split", "block"} <= set(data.columns)
    assert (data["split"] == "test").sum() == res.summary["potential"]["n_test"]
    pot = res.potential.set_index("mine_id").loc[data["mine_id"]]
    assert_allclose(model.predict(data[list(INDICATORS)]), pot["attainable"])


def test_spatial_cv_and_area_of_applicability(result, world):
    _, res = result
    assert set(res.cv["scheme"]) == {"random", "spatial"}
    for scheme in ("random", "spatial"):
        assert res.cv.loc[res.cv["scheme"] == scheme, "n"].sum() == res.summary["potential"]["n_train"]
    assert_allclose(res.cv.loc[res.cv["scheme"] == "random", "rmse"].mean(), res.summary["model"]["rmse_cv"])
    pot = res.potential.set_index("mine_id")
    train_ids = res.model.train["mine_id"]
    assert_allclose(pot.loc[train_ids, "di"], 0.0)  # a training mine is its own nearest neighbour
    extreme = world[0]["mine_id"].iloc[-1]
    assert pot.loc[extreme, "out_of_domain"] and pot.loc[extreme, "di"] > 2 * res.summary["potential"]["di_threshold"]


def test_sensitivity_table(result):
    params, res = result
    sens = res.sensitivity
    assert len(sens) == 3 * 3 and set(sens["definition"]) == set(potential.DEFINITIONS)
    own = sens[(sens["gain_threshold"] == params.gain_threshold) & (sens["definition"] == "gap")].iloc[0]
    assert_allclose(own["potential_mean"], res.summary["potential_mean"])
    own_predicted = sens[(sens["gain_threshold"] == params.gain_threshold) & (sens["definition"] == "predicted")]
    assert_allclose(own_predicted["no_potential_share"], (res.potential["attainable"] <= 0).mean())
    n = sens.drop_duplicates("gain_threshold").set_index("gain_threshold")["n_sample"]
    assert n[50.0] > n[100.0] > n[150.0]


def test_predicted_attainable_gain_recovers_the_truth(result):
    """Inside the area of applicability the model recovers the known attainable gain.

    Thresholds: the truth has a spread (sd) of about 58 g C m-2 a-1 and the target
    adds noise of sd 15, so a perfect model would reach r = 0.97. The forest learns
    from about 240 mines with 8 indicators that carry no signal. We require, on
    the in-domain mines, r >= 0.9 (81 % of the true spread explained), an RMSE of
    at most 25 g C m-2 a-1 (under half the spread) and a bias within 10. The one
    mine built far outside the training indicators is flagged and spoils the
    all-mines numbers, which is what the flag is for.
    """
    _, res = result
    inside, everything = res.truth["in_domain"], res.truth["all"]
    assert everything["n"] == len(res.potential) and inside["n"] == (~res.potential["out_of_domain"]).sum()
    assert inside["r"] >= 0.9
    assert inside["rmse"] <= 25
    assert abs(inside["bias"]) <= 10
    assert everything["rmse"] > inside["rmse"]
    assert res.summary["potential"]["truth_agreement"] == res.truth


def test_same_seed_same_numbers_other_seed_other_sample(tmp_path, fast):
    mines, covariates, change, _ = _world(200, seed=5)
    runs = [potential.run(_write(tmp_path / name, mines, covariates, change).replace(seed=seed, n_sample=60))
            for name, seed in (("a", 11), ("b", 11), ("c", 12))]
    pd.testing.assert_frame_equal(runs[0].potential, runs[1].potential)
    assert runs[0].summary == runs[1].summary
    assert not runs[0].model.data["mine_id"].equals(runs[2].model.data["mine_id"])


def test_definition_parameter(tmp_path, fast):
    mines, covariates, change, _ = _world(200, seed=5)
    res = potential.run(_write(tmp_path, mines, covariates, change).replace(potential_definition="predicted"))
    pot = res.potential
    assert_allclose(pot["potential"], np.maximum(pot["attainable"], 0))
    assert_allclose(pot["potential_hi"], np.maximum(pot["attainable_hi"], 0))
    assert res.summary["potential"]["definition"] == "predicted"


def test_small_region_uses_its_best_mines(tmp_path, fast):
    mines, covariates, change, _ = _world(90, seed=2, restored_share=0.15)
    res = potential.run(_write(tmp_path, mines, covariates, change))
    extras = res.summary["potential"]
    assert extras["n_eligible"] < 27 and extras["sample_rule"] == "top_gain"
    assert extras["n_sample"] == 27
    gains = res.potential["observed_gain"].sort_values(ascending=False)
    assert_allclose(extras["effective_threshold"], gains.iloc[26])
    assert res.trained and any("largest gain" in note for note in res.notes)


def test_region_too_small_for_any_model(tmp_path, fast):
    mines, covariates, change, _ = _world(15, seed=2)
    (tmp_path / "model.joblib").write_bytes(b"stale")
    res = potential.run(_write(tmp_path, mines, covariates, change))
    assert not res.trained
    assert res.potential["potential"].isna().all() and len(res.potential) == 15
    s = read_summary(tmp_path)
    assert s["potential_mean"] is None and s["model"]["rmse_test"] is None
    assert s["potential"]["status"].startswith("untrained: the region has 15 mine(s) with complete indicators")
    assert "need at least 27" in s["potential"]["status"]
    assert not (tmp_path / "model.joblib").exists()


@pytest.mark.slow
def test_generator_world_attainable_gain_is_recovered(small_world, tmp_path):
    """End to end on the synthetic generator's small world: extract, NEP change, potential.

    The generator's restored mines reach their attainable gain only after a ramp of
    2-4 years, so their mean gain over the period (the model's target) is about 80 %
    of it, and the forest learns from the few mines above the threshold. We require,
    inside the area of applicability, r >= 0.8 (the ranking of mines is right) and a
    bias within 25 % of the mean true attainable gain (what the ramp alone can cost).
    """
    extract = pytest.importorskip("nepkit.extract")
    nepchange = pytest.importorskip("nepkit.nepchange")
    folder = small_world if small_world.is_dir() else small_world.parent
    params = RunParams(sources=str(folder / "sources.yml"), run_dir=str(tmp_path), scheduler="synchronous")
    extract.write_artifacts(extract.run_extraction(params, progress=False), params.run_path)
    nepchange.run(params)
    truth, _ = truth_table(params)
    res = potential.run(params, truth=truth)
    inside = res.truth["in_domain"]
    assert res.trained and inside["n"] >= 0.8 * len(res.potential)
    assert inside["r"] >= 0.8
    assert abs(inside["bias"]) <= 0.25 * truth.groupby("mine_id")["true_attainable_gain"].first().mean()


def test_truth_table_follows_the_manifest(small_world):
    """The truth comes from the manifest's ``truth`` entry; a manifest without one is real data."""
    folder = small_world if small_world.is_dir() else small_world.parent
    manifest = folder / "sources.yml"
    truth, note = truth_table(RunParams(sources=str(manifest)))
    assert truth is not None and "true_attainable_gain" in truth and "truth.parquet" in note
    plain = folder / "sources_without_truth.yml"
    plain.write_text("".join(line for line in manifest.read_text().splitlines(keepends=True)
                             if not line.startswith("truth:")))
    try:
        assert truth_table(RunParams(sources=str(plain)))[0] is None
        assert truth_meta(RunParams(sources=str(plain))) is None
        assert "null_indicators" in truth_meta(RunParams(sources=str(manifest)))
    finally:
        plain.unlink()
