"""Tests of the validation stage (nepkit.validation) and of the harder synthetic worlds."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from numpy.testing import assert_allclose
from scipy import stats

from nepkit import drivers, extract, nepchange, potential, validation
from nepkit.io import read_summary, update_summary
from nepkit.params import RunParams
from nepkit.synth import PRESETS
from nepkit.synth import constants as C
from nepkit.synth.districts import district
from nepkit.synth.effects import truth_tables
from nepkit.synth.fields import World
from nepkit.synth.lattice import Grid
from nepkit.synth.mines import place_mines
from nepkit.synth.presets import Preset
from nepkit.validation import ValidationError, agreement, driver_recovery, gain_recovery, loss_recovery

# ------------------------------------------------------------------------- agreement


def test_agreement_against_hand_computed_values():
    out = agreement(np.array([2.0, 4.0, 6.0, np.nan, 1.0]), np.array([1.0, 2.0, 3.0, 4.0, np.inf]))
    assert out["n"] == 3
    assert_allclose([out["r"], out["bias"], out["rmse"], out["slope"]], [1.0, 2.0, np.sqrt(14 / 3), 2.0])


def test_agreement_of_too_few_pairs_or_a_constant_side_is_nan():
    assert np.isnan(agreement([1.0, 2.0], [1.0, 2.0])["r"])
    out = agreement([5.0, 5.0, 5.0], [1.0, 2.0, 3.0])
    assert np.isnan(out["r"]) and np.isnan(out["slope"])
    assert_allclose(out["bias"], 3.0)


def test_loss_recovery_takes_the_truth_relative_to_the_baseline():
    # mine 1 (Asia) has a true effect of 5 already in the baseline year 2000: the
    # difference-in-differences can only see its change, 10 and 20
    change = pd.DataFrame({"mine_id": [1, 1, 2, 2, 3, 3], "year": [2001, 2002] * 3,
                           "loss": [12.0, 18.0, -4.0, -6.0, 1.0, -1.0]})
    truth = pd.DataFrame({"mine_id": np.repeat([1, 2, 3], 3), "year": [2000, 2001, 2002] * 3,
                          "true_loss": [5.0, 15.0, 25.0, 0.0, -5.0, -5.0, 0.0, 1.0, 1.0]})
    mines = pd.DataFrame({"mine_id": [1, 2, 3], "continent": ["Asia", "Africa", "Africa"]})
    pairs, table = loss_recovery(change, truth, mines, baseline=2000)
    assert_allclose(pairs["loss_stat_true"], [15.0, -5.0, 1.0])
    assert_allclose(pairs["loss_stat"], [15.0, -5.0, 0.0])
    assert pairs["status"].tolist() == ["loss", "gain", "gain"]
    row = table.set_index("group").loc["all"]
    assert row["n"] == 3
    assert_allclose([row["bias"], row["status_agreement"]], [-1 / 3, 2 / 3])
    assert table["group"].tolist() == ["all", "Africa", "Asia"]
    assert_allclose(table.set_index("group").loc["Africa", "status_agreement"], 0.5)


def test_gain_recovery_splits_by_domain():
    pot = pd.DataFrame({"mine_id": [1, 2, 3, 4, 5, 6], "continent": ["Asia"] * 6,
                        "attainable": [100.0, 200.0, 300.0, 10.0, 20.0, 60.0],
                        "out_of_domain": [False, False, False, True, True, True]})
    truth = pd.DataFrame({"mine_id": np.repeat([1, 2, 3, 4, 5, 6], 2), "true_attainable_gain":
                          np.repeat([110.0, 210.0, 310.0, 30.0, 40.0, 50.0], 2)})
    pairs, table = gain_recovery(pot, truth)
    assert len(pairs) == 6
    rows = table.set_index("group")
    assert_allclose(rows.loc["in domain", "bias"], -10.0)
    assert_allclose(rows.loc["out of domain", "bias"], (-20 - 20 + 10) / 3)
    assert rows.loc["all", "n"] == 6


def _drivers_table(order: list[str]) -> pd.DataFrame:
    n = len(order)
    return pd.DataFrame({"indicator": order, **{m: np.arange(n, 0, -1, dtype=float) for m in ("cpi", "shap")},
                         **{f"{m}_rank": np.arange(1, n + 1) for m in ("cpi", "shap")}})


def test_driver_recovery_of_a_perfect_and_of_a_reversed_ranking():
    meta = {"driver_weights": {"a": 50.0, "b": -30.0, "c": 10.0, "d": 0.0, "e": 0.0, "nep_background": 9.0},
            "null_indicators": ["d", "e"]}
    ranks, scores = driver_recovery(_drivers_table(["a", "b", "c", "d", "e"]), meta)
    assert ranks["indicator"].tolist() == ["a", "b", "c", "d", "e"]
    assert ranks["true_rank"].tolist() == [1, 2, 3, 4, 4]
    cpi = scores.set_index("method").loc["cpi"]
    assert cpi["passed"] and cpi["top3_hits"] == 3 and cpi["ordered_share"] == 1.0
    assert_allclose(cpi["spearman"], stats.spearmanr([5, 4, 3, 2, 1], [50, 30, 10, 0, 0]).statistic)
    _, reversed_ = driver_recovery(_drivers_table(["e", "d", "c", "b", "a"]), meta)
    worst = reversed_.set_index("method").loc["shap"]
    assert not worst["passed"] and worst["ordered_share"] == 0.0 and worst["spearman"] < -0.9


def test_driver_recovery_needs_weights_of_the_indicators():
    with pytest.raises(ValidationError, match="names no driver weight"):
        driver_recovery(_drivers_table(["a", "b"]), {"driver_weights": {"x": 1.0}})


# ---------------------------------------------------------------------- harder worlds


def test_a_preset_overrides_constants_only_inside_its_block():
    before = C.CLOUD_SHARE
    with PRESETS["nodata"].constants():
        assert C.CLOUD_SHARE == 0.2 and C.SOC_HOLE_SHARE == 0.05
    assert C.CLOUD_SHARE == before
    bad = Preset("bad", 10, ("shanxi",), 0, "", overrides=(("NO_SUCH_CONSTANT", 1),))
    with pytest.raises(ValueError, match="overrides unknown constant"):
        with bad.constants():
            pass


def test_default_presets_keep_their_description():
    for name in ("paper", "small", "medium"):
        assert "overrides" not in PRESETS[name].as_dict()
    assert PRESETS["weak"].as_dict()["overrides"]["NEP_NOISE"] == (4 * C.NEP_NOISE[0], 4 * C.NEP_NOISE[1])


def test_harder_worlds_share_the_mines_of_medium_and_change_what_they_say():
    mines = {name: place_mines(PRESETS[name], 3)[0] for name in ("medium", "weak")}
    pd.testing.assert_frame_equal(pd.DataFrame(mines["medium"].drop(columns="geometry")),
                                  pd.DataFrame(mines["weak"].drop(columns="geometry")))
    world = World(3, tuple(district(n) for n in PRESETS["medium"].districts))
    truth = {}
    for name in ("medium", "weak", "autocorr"):
        with PRESETS[name].constants():
            truth[name] = truth_tables(mines["medium"], world, 3)
    gain = {name: t[0]["true_attainable_gain"] for name, t in truth.items()}
    assert gain["weak"].std() < 0.6 * gain["medium"].std()  # drivers 0.4 times as strong
    assert "nep_background" in truth["autocorr"][2]["standardisation"]
    assert "nep_background" not in truth["medium"][2]["standardisation"]
    grid = Grid(row0=240 * 50, col0=240 * 290, nrows=240, ncols=240, per_degree=240)  # 1 x 1 degree, 500 m
    with PRESETS["nodata"].constants():
        gaps = world.cloud(grid, 2000).mean()
    assert gaps > 0.1 > world.cloud(grid, 2000).mean()


# --------------------------------------------------------------------- the stage


@pytest.fixture(scope="module")
def small_run(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> RunParams:
    """The stages of the first five chapters on the small world, in-process."""
    params = RunParams(sources=str(small_world), seed=1, n_sample=400, scheduler="synchronous",
                       run_dir=str(tmp_path_factory.mktemp("validation") / "run"))
    truth = pd.read_parquet(small_world.parent / "truth.parquet")
    extract.write_artifacts(extract.run_extraction(params, progress=False), params.run_path)
    update_summary(params.run_path, {"parameters": params.to_dict()})
    nepchange.run(params, n_boot=20, truth=truth)
    potential.run(params, truth=truth)
    drivers.run(params, truth=json.loads((small_world.parent / "truth.json").read_text()))
    return params


@pytest.mark.slow
def test_the_run_recovers_the_truth_and_its_sensitivity_row_is_its_own(small_run):
    res = validation.run(small_run, worlds=())
    loss = res.run.loss.set_index("group").loc["all"]
    assert loss["r"] > 0.95 and abs(loss["bias"]) < 0.1 * loss["rmse"]
    assert res.run.gain.set_index("group").loc["all", "r"] > 0.5
    summary = read_summary(small_run.run_path)
    default = res.sensitivity[(res.sensitivity["parameter"] == "ring width") & res.sensitivity["default"]].iloc[0]
    for key in ("loss_share", "net_loss_Gg_per_a", "loss_mean_g_m2_a", "gain_mean_g_m2_a", "potential_mean",
                "no_potential_share"):
        assert_allclose(default[key], summary[key], rtol=1e-12, err_msg=key)
    rings = res.sensitivity[res.sensitivity["parameter"] == "ring width"]
    assert rings["setting"].tolist() == ["1-5 km", "1-3 km", "1-8 km", "2-5 km"]
    assert rings["loss_share"].notna().all()
    for name in ("validation_recovery.csv", "validation_worlds.csv", "validation_sensitivity.csv"):
        assert (small_run.run_path / name).exists()
    assert summary["validation"]["worlds"][f"this run ({small_run.region})"]["loss_r"] == pytest.approx(loss["r"])


@pytest.mark.slow
def test_a_harder_world_is_computed_once_and_then_read_from_its_cache(small_run, tmp_path):
    first = validation.harder_worlds(small_run, names=("weak",), root=tmp_path)
    (folder,) = (tmp_path / "weak-1" / ".nepkit-cache").glob("validation-*")
    stamp = (folder / "summary.json").stat().st_mtime_ns
    again = validation.harder_worlds(small_run.replace(region="Africa", scheduler=None), names=("weak",),
                                     root=tmp_path)
    assert (folder / "summary.json").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(first.table, again.table)
    assert first.table.loc[0, "loss_r"] > 0.9


def test_artifacts_of_another_world_are_refused(tmp_path):
    mines = gpd.GeoDataFrame({"mine_id": [1, 2, 3], "area_km2": [1.5, 2.0, 8.0], "continent": ["Asia"] * 3},
                             geometry=[shapely.box(0, 0, 1, 1)] * 3, crs="EPSG:4326")
    mines.to_parquet(tmp_path / "mines.parquet")
    params = RunParams(run_dir=str(tmp_path))
    same = pd.Series([1.5, 2.0, 8.0, 4.0], index=[1, 2, 3, 4])
    truth = validation.WorldTruth(pd.DataFrame(), {}, "the world", same)
    with pytest.raises(FileNotFoundError, match="nep_change"):  # the check passes, the next read fails
        validation.recovery(params, truth)
    other = pd.Series([3.0, 1.5, 2.0, 8.0], index=[1, 2, 3, 4])  # the world's mines were drawn anew
    regenerated = validation.WorldTruth(pd.DataFrame(), {}, "the world", other)
    with pytest.raises(ValidationError, match="come from another version of the world in the world"):
        validation.recovery(params, regenerated)


def test_the_worlds_table_has_a_column_for_every_check():
    loss = pd.DataFrame([{"group": "all", "n": 3, "r": 0.9, "bias": 0.1, "rmse": 1.0, "slope": 1.0,
                          "r_mine_year": 0.8, "status_agreement": 1.0}])
    rec = validation.Recovery(pd.DataFrame(), loss, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(),
                              pd.DataFrame(), {"n_mines": 3, "model": None})
    row = validation.world_row(rec)
    assert list(row) == validation._WORLD_COLUMNS[2:]
    assert row["loss_r"] == 0.9 and np.isnan(row["gain_r"]) and np.isnan(row["rmse_cv"])


def test_the_stage_needs_the_earlier_chapters(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the chapters before the validation"):
        validation.run(RunParams(run_dir=str(tmp_path)))
