"""Tests of nepkit.nepchange: equations 1-4, totals, statistics, truth recovery, the stage and its chapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from numpy.testing import assert_allclose
from shapely.geometry import Point

from nepkit import nepchange as nc
from nepkit.params import RunParams
from nepkit.paths import CHAPTERS_DIR

YEARS = list(range(2000, 2021))
SUMMARY_KEYS = (
    "n_mines",
    "total_area_km2",
    "nep_total_Gg",
    "nep_total_max",
    "nep_total_min",
    "decline_pct",
    "net_loss_Gg_per_a",
    "loss_share",
    "loss_total_Gg_per_a",
    "loss_mean_g_m2_a",
    "gain_total_Gg_per_a",
    "gain_mean_g_m2_a",
)


# ----------------------------------------------------------------------------- hand-computed mines


def _panel(rows: dict[int, tuple[list[float], list[float]]], years: list[int]) -> pd.DataFrame:
    """A panel from ``{mine_id: (nep_mine per year, nep_ref per year)}``."""
    return pd.DataFrame(
        [
            {"mine_id": m, "year": y, "nep_mine": q, "nep_ref": o}
            for m, (qs, os_) in rows.items()
            for y, q, o in zip(years, qs, os_, strict=True)
        ]
    )


HAND_YEARS = [2000, 2001, 2002, 2003]
HAND = _panel(
    {
        # mine NEP falls, ring nearly flat: a loss
        1: ([100, 90, 80, 110], [100, 100, 95, 105]),
        # the ring lost more than the mine: the mine's NEP fell, yet relative to its ring it gained
        2: ([200, 190, 185, 180], [150, 110, 100, 90]),
        # nodata years: the mine in 2001, the ring in 2002
        3: ([50, np.nan, 60, 40], [60, 70, np.nan, 50]),
        # no valid ring NEP in the baseline year: cannot be differenced
        4: ([80, 80, 80, 80], [np.nan, 70, 70, 70]),
    },
    HAND_YEARS,
)
HAND_MINES = pd.DataFrame({"mine_id": [1, 2, 3, 4], "area_km2": [2.0, 1.0, 0.5, 3.0]})


def test_compute_change_matches_hand_computed_equations():
    change = nc.compute_change(HAND, HAND_MINES, baseline=2000)
    assert list(change.columns) == ["mine_id", "year", "P", "W", "loss", "loss_total_g"]
    assert sorted(change["mine_id"].unique()) == [1, 2, 3]  # mine 4 has no ring baseline
    assert set(change["year"]) == {2001, 2002, 2003}  # the baseline's change is zero by construction
    m1 = change[change["mine_id"] == 1]
    assert_allclose(m1["P"], [-10, -20, 10])
    assert_allclose(m1["W"], [0, -5, 5])
    assert_allclose(m1["loss"], [10, 15, -5])  # loss = W - P
    assert_allclose(m1["loss_total_g"], np.array([10, 15, -5]) * 2e6)  # g C a-1: area 2 km2 = 2e6 m2
    m2 = change[change["mine_id"] == 2]
    assert_allclose(m2["P"], [-10, -15, -20])
    assert_allclose(m2["W"], [-40, -50, -60])
    assert_allclose(m2["loss"], [-30, -35, -40])  # negative: a gain relative to the ring
    m3 = change[change["mine_id"] == 3]
    assert_allclose(m3["P"], [np.nan, 10, -10])
    assert_allclose(m3["W"], [10, np.nan, -10])
    assert_allclose(m3["loss"], [np.nan, np.nan, 0])


def test_sign_convention_positive_is_loss():
    panel = _panel({1: ([100, 60], [100, 100])}, [2000, 2001])  # the mine loses 40, its ring is flat
    change = nc.compute_change(panel, pd.DataFrame({"mine_id": [1], "area_km2": [1.0]}), baseline=2000)
    paper_printed = change["P"] - change["W"]  # the paper's S_t = P_t - W_t as printed
    assert change["loss"].iloc[0] == 40.0
    assert paper_printed.iloc[0] == -40.0
    stat = nc.classify(change)
    assert stat["status"].tolist() == ["loss"]


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("mean", {1: 20 / 3, 2: -35.0, 3: 0.0}),
        ("final", {1: -5.0, 2: -40.0, 3: 0.0}),
        # Theil-Sen: mine 1 pairwise slopes 5, -7.5, -20 -> median -7.5, times (3 - 1) years;
        # mine 3 has a single valid year and is left out
        ("trend", {1: -15.0, 2: -10.0}),
    ],
)
def test_classify_each_statistic(by, expected):
    stat = nc.classify(nc.compute_change(HAND, HAND_MINES, baseline=2000), by=by)
    assert list(stat.columns) == ["mine_id", "loss_stat", "status"]
    assert stat["mine_id"].tolist() == list(expected)
    assert_allclose(stat["loss_stat"], list(expected.values()))
    assert stat["status"].tolist() == ["loss" if v > 0 else "gain" for v in expected.values()]


def test_classify_rejects_unknown_statistic():
    with pytest.raises(nc.NepChangeError, match="by must be one of mean, final, trend"):
        nc.classify(nc.compute_change(HAND, HAND_MINES, baseline=2000), by="median")


def test_compute_change_errors():
    with pytest.raises(nc.NepChangeError, match="lacks column.*nep_ref"):
        nc.compute_change(HAND.drop(columns="nep_ref"), HAND_MINES, baseline=2000)
    with pytest.raises(nc.NepChangeError, match="no rows for the baseline year 1999"):
        nc.compute_change(HAND, HAND_MINES, baseline=1999)
    with pytest.raises(nc.NepChangeError, match="duplicate"):
        nc.compute_change(pd.concat([HAND, HAND.iloc[:1]]), HAND_MINES, baseline=2000)
    with pytest.raises(nc.NepChangeError, match="non-positive area_km2"):
        nc.compute_change(HAND, HAND_MINES.assign(area_km2=[2.0, 0.0, 1.0, 1.0]), baseline=2000)


# ----------------------------------------------------------------------------- totals


def test_nep_totals_units_gigagrams_and_gap_filling():
    totals = nc.nep_totals(HAND, HAND_MINES, years=HAND_YEARS)
    # mine 3's missing 2001 is interpolated between 50 (2000) and 60 (2002): 55
    q = np.array([[100, 90, 80, 110], [200, 190, 185, 180], [50, 55, 60, 40], [80, 80, 80, 80]], float)
    area_m2 = HAND_MINES["area_km2"].to_numpy() * 1e6
    assert_allclose(totals["nep_total_Gg"], (q * area_m2[:, None]).sum(0) / 1e9)
    assert_allclose(totals["nep_total_Gg"].iloc[0], 0.2 + 0.2 + 0.025 + 0.24)  # 100 g m-2 over 2 km2 = 0.2 Gg
    assert_allclose(totals["nep_total_observed_Gg"].iloc[1], (0.18 + 0.19 + 0.24))
    assert totals["n_filled"].tolist() == [0, 1, 0, 0]
    assert_allclose(totals["area_filled_km2"], [0, 0.5, 0, 0])
    assert (totals["n_mines"] == 4).all()  # the ring plays no part in the NEP total


def test_nep_totals_edge_gaps_take_the_nearest_year():
    panel = pd.DataFrame({"mine_id": 1, "year": [2000, 2001, 2002], "nep_mine": [np.nan, 40.0, np.nan]})
    totals = nc.nep_totals(panel, pd.DataFrame({"mine_id": [1], "area_km2": [1.0]}), years=[2000, 2001, 2002])
    assert_allclose(totals["nep_total_Gg"], [0.04, 0.04, 0.04])


def test_extremes_reproduce_the_papers_decline():
    totals = pd.DataFrame(
        {"year": [2001, 2007, 2014, 2019, 2020], "nep_total_Gg": [2104, 2713, 2198, 1883, 2112]}
    )
    ex = nc.extremes(totals)
    assert ex["nep_total_max"] == {"year": 2007, "value": 2713.0}
    assert ex["nep_total_min"] == {"year": 2019, "value": 1883.0}
    assert_allclose(ex["decline_pct"], (2713 - 1883) / 2713 * 100)
    assert round(ex["decline_pct"], 1) == 30.6
    assert ex["min_after_max"]


def test_phase_fits_hand_computed():
    # phase 1 rises by 10 a year exactly, phase 2 falls by 20 a year exactly, phase 3 has two points only
    years = list(range(2000, 2016))
    values = [100 + 10 * (y - 2000) if y <= 2006 else 500 - 20 * (y - 2007) for y in years]
    fits = nc.phase_fits(pd.DataFrame({"year": years, "nep_total_Gg": values}))
    assert fits["phase"].tolist() == ["2000-2006", "2007-2014", "2015-2020"]
    assert_allclose(fits["slope_Gg_per_a"].iloc[:2], [10, -20])
    assert_allclose(fits["r2"].iloc[:2], [1, 1])
    assert_allclose(fits["change_pct"].iloc[:2], [(160 - 100) / 100 * 100, (360 - 500) / 500 * 100])
    assert_allclose(fits["fit_change_pct"].iloc[:2], fits["change_pct"].iloc[:2])
    assert fits["n_years"].tolist() == [7, 8, 1]
    assert np.isnan(fits["r2"].iloc[2])


# ----------------------------------------------------------------------------- period statistics


STATS = pd.DataFrame(
    {
        "mine_id": [1, 2, 3, 4, 5],
        "loss_stat": [10.0, -20.0, 300.0, 0.0, np.nan],
        "area_km2": [1.0, 2.0, 3.0, 4.0, 5.0],
    }
)


def test_period_stats_hand_computed():
    p = nc.period_stats(STATS)
    assert p["n_mines"] == 4 and p["n_loss"] == 2  # mine 5 is unclassified; a zero loss counts as gain
    assert p["loss_share"] == 0.5 and p["gain_share"] == 0.5
    assert_allclose(p["loss_total_Gg_per_a"], (10 * 1e6 + 300 * 3e6) / 1e9)
    assert_allclose(p["gain_total_Gg_per_a"], 20 * 2e6 / 1e9)  # a positive magnitude
    assert_allclose(p["net_loss_Gg_per_a"], (10 * 1e6 + 300 * 3e6 - 20 * 2e6) / 1e9)
    assert_allclose(p["loss_mean_g_m2_a"], 155.0)
    assert_allclose(p["loss_mean_area_weighted_g_m2_a"], (10 + 900) / 4)
    assert_allclose(p["gain_mean_g_m2_a"], 10.0)
    assert_allclose(p["gain_mean_area_weighted_g_m2_a"], 40 / 6)
    assert p["loss_0_200_share_of_losing_mines"] == 0.5
    assert_allclose(p["loss_0_200_share_of_loss_total"], 10 / 910)


def test_loss_distribution_and_group_stats():
    dist = nc.loss_distribution(STATS)
    assert dist["bin"].tolist() == ["0-100", "100-200", "200-400", "400-800", "> 800"]
    assert dist["n_mines"].tolist() == [1, 0, 1, 0, 0]
    assert_allclose(dist["share_of_loss_total"], [10 / 910, 0, 900 / 910, 0, 0])
    groups = nc.group_stats(STATS.assign(iso3=["CHN", "CHN", "MNG", "MNG", "MNG"]))
    assert groups["iso3"].tolist() == ["MNG", "CHN"]
    assert groups["n_mines_all"].tolist() == [3, 2]
    assert_allclose(groups["loss_share"], [0.5, 0.5])
    assert_allclose(groups["loss_total_Gg_per_a"], [0.9, 0.01])


def test_yearly_loss_hand_computed():
    change = nc.compute_change(HAND, HAND_MINES, baseline=2000)
    y = nc.yearly_loss(change, HAND_MINES).set_index("year")
    assert y["n"].tolist() == [2, 2, 3]
    assert_allclose(y["mean"], [(10 - 30) / 2, (15 - 35) / 2, (-5 - 40 + 0) / 3])
    assert_allclose(y.loc[2001, "mean_area_weighted"], (10 * 2 - 30 * 1) / 3)
    assert_allclose(y["max_loss"], [10, 15, 0])
    assert_allclose(y["max_gain"], [30, 35, 40])
    assert_allclose(y["loss_share"], [0.5, 0.5, 0.0])


# ----------------------------------------------------------------------------- bootstrap


def _nep_gg(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        rng.uniform(0.05, 0.3, size=(n, 5)), index=np.arange(1, n + 1), columns=range(2000, 2005)
    )


def test_bootstrap_deterministic_and_covers_the_estimate():
    rng = np.random.default_rng(3)
    stats_ = pd.DataFrame(
        {"mine_id": np.arange(1, 41), "loss_stat": rng.normal(10, 50, 40), "area_km2": rng.uniform(1, 5, 40)}
    )
    nep = _nep_gg(40, rng)
    ci1, yearly1 = nc.bootstrap(stats_, nep, n_boot=300, seed=7)
    ci2, yearly2 = nc.bootstrap(stats_, nep, n_boot=300, seed=7, chunk=64)  # chunking changes nothing
    pd.testing.assert_frame_equal(ci1, ci2)
    pd.testing.assert_frame_equal(yearly1, yearly2)
    ci = ci1.set_index("quantity")
    assert (ci["lo"] <= ci["estimate"]).all() and (ci["estimate"] <= ci["hi"]).all()
    assert_allclose(ci.loc["loss_share", "estimate"], nc.period_stats(stats_)["loss_share"])
    assert_allclose(ci.loc["nep_total_max", "estimate"], nep.sum().max())
    assert 0 <= ci.loc["loss_share", "lo"] < ci.loc["loss_share", "hi"] <= 1
    assert (yearly1["lo"] <= nep.sum().to_numpy()).all() and (nep.sum().to_numpy() <= yearly1["hi"]).all()


def test_bootstrap_of_identical_mines_has_no_spread():
    stats_ = pd.DataFrame({"mine_id": [1, 2, 3], "loss_stat": [5.0] * 3, "area_km2": [2.0] * 3})
    nep = pd.DataFrame({2000: [0.1] * 3, 2001: [0.2] * 3}, index=[1, 2, 3])
    ci, _ = nc.bootstrap(stats_, nep, n_boot=50, seed=0)
    ci = ci.set_index("quantity")
    assert_allclose(ci.loc["loss_mean_g_m2_a", ["lo", "hi"]], [5.0, 5.0])
    assert_allclose(ci.loc["decline_pct", ["lo", "hi"]], [50.0, 50.0])
    with pytest.raises(nc.NepChangeError, match="n_boot must be at least 2"):
        nc.bootstrap(stats_, nep, n_boot=1)


# ----------------------------------------------------------------------------- truth recovery


def _did_world(
    n_mines: int = 200, *, noise: float = 10.0, ring_trend: float = 0.0, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Mine and ring sharing a common year effect plus noise; the mine loses an injected effect.

    ``true_loss`` is zero in 2000 and grows linearly at a mine-specific rate
    (some mines recover: negative rates). ``ring_trend`` (g C m-2 a-1 per year)
    gives every ring a trend of its own, which breaks the parallel-trends assumption.
    """
    rng = np.random.default_rng(seed)
    years = np.array(YEARS)
    year_effect = rng.normal(0, 40, len(years))  # droughts and wet years shared by mine and ring
    rate = rng.uniform(-8, 16, n_mines)
    true = rate[:, None] * (years - 2000)[None, :]
    level_mine, level_ring = rng.uniform(150, 300, n_mines), rng.uniform(150, 300, n_mines)
    q = level_mine[:, None] + year_effect + rng.normal(0, noise, true.shape) - true
    o = level_ring[:, None] + year_effect + ring_trend * (years - 2000) + rng.normal(0, noise, true.shape)
    ids = np.repeat(np.arange(1, n_mines + 1), len(years))
    panel = pd.DataFrame(
        {"mine_id": ids, "year": np.tile(years, n_mines), "nep_mine": q.ravel(), "nep_ref": o.ravel()}
    )
    truth = pd.DataFrame({"mine_id": ids, "year": np.tile(years, n_mines), "true_loss": true.ravel()})
    mines = pd.DataFrame({"mine_id": np.arange(1, n_mines + 1), "area_km2": rng.uniform(1, 20, n_mines)})
    return panel, truth, mines


def test_did_loss_recovers_injected_effect_through_common_year_effects():
    panel, truth, mines = _did_world()
    rec = nc.truth_recovery(nc.compute_change(panel, mines, baseline=2000), truth, baseline=2000)
    assert rec["n"] == 200 * 20
    # Thresholds: each estimate carries the noise of four NEP values (sd 2 x 10 = 20 g C m-2 a-1)
    # against a true effect spread of about 95 g C m-2 a-1, so r is about 0.98. The bias is a
    # mean over 200 mines of the baseline noise they share across years (sd 14 / sqrt(200) = 1.0):
    # |bias| < 4 is four standard errors, 2 % of the effect's range.
    assert rec["r"] > 0.9
    assert abs(rec["bias"]) < 4.0
    assert 15 < rec["rmse"] < 25


def test_did_loss_is_exact_without_noise():
    panel, truth, mines = _did_world(n_mines=10, noise=0.0)
    rec = nc.truth_recovery(nc.compute_change(panel, mines, baseline=2000), truth, baseline=2000)
    assert_allclose([rec["r"], rec["bias"], rec["rmse"]], [1.0, 0.0, 0.0], atol=1e-9)


def test_ring_with_its_own_trend_biases_the_loss_by_that_trend():
    panel, truth, mines = _did_world(n_mines=10, noise=0.0, ring_trend=3.0)
    rec = nc.truth_recovery(nc.compute_change(panel, mines, baseline=2000), truth, baseline=2000)
    assert_allclose(rec["bias"], 3.0 * np.mean(np.arange(1, 21)))  # parallel trends violated


def test_truth_recovery_compares_changes_since_the_baseline():
    panel, truth, mines = _did_world(n_mines=10, noise=0.0)
    shifted = truth.assign(true_loss=truth["true_loss"] + 25.0)  # the mine already lost 25 in 2000
    change = nc.compute_change(panel, mines, baseline=2000)
    assert_allclose(nc.truth_recovery(change, shifted, baseline=2000)["bias"], 0.0, atol=1e-9)
    assert_allclose(nc.truth_recovery(change, shifted)["bias"], -25.0)
    with pytest.raises(nc.NepChangeError, match="truth lacks column.*true_loss"):
        nc.truth_recovery(change, truth.drop(columns="true_loss"))


# ----------------------------------------------------------------------------- the stage


MINE_SITES = [  # (iso3, country, continent, subregion, lon, lat)
    ("CHN", "China", "Asia", "Eastern Asia", 110.0, 35.0),
    ("CHN", "China", "Asia", "Eastern Asia", 100.0, 30.0),
    ("CHN", "China", "Asia", "Eastern Asia", 115.0, 40.0),
    ("MNG", "Mongolia", "Asia", "Eastern Asia", 105.0, 47.0),
    ("MNG", "Mongolia", "Asia", "Eastern Asia", 95.0, 46.0),
    ("ZAF", "South Africa", "Africa", "Southern Africa", 27.0, -26.0),
    ("ZAF", "South Africa", "Africa", "Southern Africa", 24.0, -29.0),
    ("ZAF", "South Africa", "Africa", "Southern Africa", 29.0, -25.0),
    ("ZMB", "Zambia", "Africa", "Eastern Africa", 28.0, -13.0),
    ("ZMB", "Zambia", "Africa", "Eastern Africa", 27.0, -12.0),
    ("CHL", "Chile", "South America", "South America", -70.0, -23.0),
    ("CHL", "Chile", "South America", "South America", -69.0, -27.0),
]


def make_run_dir(run_dir: Path, *, seed: int = 0) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """A run directory with a dozen mines (GeoParquet polygons) and their NEP panel.

    Mine 6 lacks its ring's baseline NEP (excluded from the change); mine 3 has
    a nodata year (2005) of its own NEP.
    """
    rng = np.random.default_rng(seed)
    n = len(MINE_SITES)
    area = rng.uniform(1.0, 40.0, n)
    mines = gpd.GeoDataFrame(
        {
            "mine_id": np.arange(1, n + 1, dtype="int64"),
            "iso3": [s[0] for s in MINE_SITES],
            "country": [s[1] for s in MINE_SITES],
            "continent": [s[2] for s in MINE_SITES],
            "subregion": [s[3] for s in MINE_SITES],
            "area_km2": area,
        },
        geometry=[
            Point(s[4], s[5]).buffer(np.sqrt(a) / 111 / 1.8) for s, a in zip(MINE_SITES, area, strict=True)
        ],
        crs="EPSG:4326",
    )
    panel, truth, _ = _did_world(n_mines=n, noise=8.0, seed=seed)
    panel.loc[(panel["mine_id"] == 6) & (panel["year"] == 2000), "nep_ref"] = np.nan
    panel.loc[(panel["mine_id"] == 3) & (panel["year"] == 2005), "nep_mine"] = np.nan
    panel["cov_mine"], panel["cov_ref"] = 1.0, 1.0
    run_dir.mkdir(parents=True, exist_ok=True)
    mines.to_parquet(run_dir / "mines.parquet")
    panel.to_parquet(run_dir / "nep_panel.parquet")
    return mines, panel, truth


def test_run_writes_artifact_and_summary(tmp_path):
    mines, panel, truth = make_run_dir(tmp_path)
    params = RunParams(run_dir=str(tmp_path), sources=str(tmp_path / "sources.yml"))
    res = nc.run(params, n_boot=200, truth=truth)

    written = pd.read_parquet(tmp_path / "nep_change.parquet")
    assert list(written.columns) == ["mine_id", "year", "P", "W", "loss", "loss_total_g"]
    assert written["mine_id"].nunique() == 11 and 6 not in set(written["mine_id"])
    assert_allclose(written["loss"], written["W"] - written["P"])

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(summary)
    assert summary["n_mines"] == 12
    assert_allclose(summary["total_area_km2"], mines["area_km2"].sum())
    assert list(summary["nep_total_Gg"]) == [str(y) for y in YEARS]
    q = panel.pivot(index="mine_id", columns="year", values="nep_mine").interpolate(axis=1)
    expected = (q.mul(mines.set_index("mine_id")["area_km2"] * 1e6, axis=0).sum() / 1e9).to_numpy()
    assert_allclose(list(summary["nep_total_Gg"].values()), expected)
    assert summary["nep_total_max"]["value"] == pytest.approx(expected.max())
    assert summary["nep_total_max"]["year"] == YEARS[int(np.argmax(expected))]
    assert_allclose(summary["decline_pct"], (expected.max() - expected.min()) / expected.max() * 100)
    stat = nc.classify(written, by="mean").merge(mines[["mine_id", "area_km2"]])
    loss = stat[stat["loss_stat"] > 0]
    assert_allclose(summary["loss_total_Gg_per_a"], (loss["loss_stat"] * loss["area_km2"] * 1e6).sum() / 1e9)
    assert_allclose(summary["loss_share"], len(loss) / 11)
    assert_allclose(
        summary["net_loss_Gg_per_a"], summary["loss_total_Gg_per_a"] - summary["gain_total_Gg_per_a"]
    )

    extra = summary["nep_change"]
    assert extra["classify_by"] == "mean" and extra["bootstrap"]["n_boot"] == 200
    assert set(extra["classify_sensitivity"]) == {"mean", "final", "trend"}
    excluded = {e["reason"]: e["n_mines"] for e in extra["exclusions"]}
    assert excluded["no valid NEP of the ring in the baseline year 2000"] == 1
    assert extra["n_filled_mine_years"] == 1
    assert extra["truth_recovery"]["mine_year"]["r"] > 0.9
    assert res.truth_pairs is not None and len(res.truth_pairs) == 11
    zaf = res.countries.set_index("iso3").loc["ZAF"]
    assert (zaf["n_mines_all"], zaf["n_mines"]) == (3, 2)  # mine 6 is counted but not classified


def test_run_keeps_the_region_and_counts_the_rest(tmp_path):
    make_run_dir(tmp_path)
    res = nc.run(RunParams(region="Africa", run_dir=str(tmp_path), sources="x.yml"), n_boot=50)
    assert set(res.mines["continent"]) == {"Africa"}
    assert res.summary["n_mines"] == 5
    assert (res.summary["n_countries"], res.summary["n_countries_with_mines"]) == (52, 2)  # African partners; ZAF, ZMB
    assert res.exclusions.set_index("reason").loc["mine outside the region", "n_mines"] == 7
    assert res.truth is None and "real data" in res.truth_note
    table = nc.comparison(res, {"decline_pct": {"value": 30.6, "unit": "%", "where": "abstract"}})
    row = table.set_index("quantity").loc["decline_pct"]
    assert row["paper"] == 30.6 and row["this_run"] == pytest.approx(res.summary["decline_pct"])


def test_run_degrades_when_no_mine_can_be_classified(tmp_path):
    _, panel, _ = make_run_dir(tmp_path)
    panel.loc[panel["mine_id"].isin([6, 7, 8]) & (panel["year"] == 2000), "nep_ref"] = (
        np.nan
    )  # every ZAF ring
    panel.to_parquet(tmp_path / "nep_panel.parquet")
    res = nc.run(RunParams(region="ZAF", run_dir=str(tmp_path), sources="x.yml"), n_boot=20)
    assert res.change.empty and res.mine_stats.empty and res.yearly.empty
    assert res.countries[["iso3", "n_mines_all", "n_mines"]].values.tolist() == [["ZAF", 3, 0]]
    assert res.period["n_mines"] == 0 and np.isnan(res.summary["loss_share"])
    assert (
        res.summary["n_mines"] == 3 and len(res.summary["nep_total_Gg"]) == 21
    )  # the NEP total needs no ring
    assert json.loads((tmp_path / "summary.json").read_text())["loss_share"] is None


def test_run_errors_name_the_fix(tmp_path):
    params = RunParams(run_dir=str(tmp_path), sources="x.yml")
    with pytest.raises(FileNotFoundError, match="run the earlier chapters first"):
        nc.run(params)
    make_run_dir(tmp_path)
    with pytest.raises(nc.NepChangeError, match="no mine of region 'Europe'"):
        nc.run(params.replace(region="Europe"))
    with pytest.raises(nc.NepChangeError, match="truth must be a DataFrame, None or 'auto'"):
        nc.run(params, truth="yes")


def test_figures_are_figures(tmp_path):
    from nepkit.plotting import nepchange as fig

    make_run_dir(tmp_path)
    res = nc.run(RunParams(run_dir=str(tmp_path), sources="x.yml"), n_boot=20)
    pairs = pd.DataFrame({"loss_stat": [1.0, 2.0], "loss_stat_true": [1.5, 2.5]})
    for f in (
        fig.fig4_nep_total(res.totals, res.phases),
        fig.fig5_loss_map(res.mines, res.countries),
        fig.fig6_yearly_loss(res.yearly),
        fig.truth_scatter(pairs),
        fig.truth_scatter(None, note="real data"),
    ):
        assert isinstance(f, Figure)


# ----------------------------------------------------------------------------- the chapter


@pytest.mark.slow
@pytest.mark.parametrize("region", ["all", "Africa"])
def test_chapter_executes(tmp_path, region):
    import papermill as pm

    run_dir = tmp_path / region
    make_run_dir(run_dir)
    out = run_dir / "02_nep_change__test.ipynb"
    pm.execute_notebook(
        str(CHAPTERS_DIR / "02_nep_change.ipynb"),
        str(out),
        parameters={"region": region, "run_dir": str(run_dir), "sources": str(tmp_path / "sources.yml")},
        kernel_name="python3",
        cwd=str(run_dir),
        progress_bar=False,
    )
    for name in ("fig4_nep_total", "fig5_loss_map", "fig6_yearly_loss"):
        assert (run_dir / "figures" / f"{name}.png").exists()
    assert (run_dir / "nep_change.parquet").exists()
    shutil.rmtree(run_dir / "figures")
