"""Tests of nepkit.scenarios: ramps, projections, units, bands, YAML validation, the run."""

from __future__ import annotations

import copy
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from numpy.testing import assert_allclose
from shapely.geometry import box

from nepkit import scenarios as S
from nepkit.io import read_summary
from nepkit.params import RunParams

YEARS = range(2021, 2027)


def _scenario(**kw) -> S.Scenario:
    values = dict(name="x", label="X", regions=("CHN",), share_per_year=1.0, years_to_attainable=1, ramp="linear")
    values.update(kw)
    return S.Scenario(**values)


def _mines(iso3, area_km2, **extra) -> pd.DataFrame:
    return pd.DataFrame({"mine_id": np.arange(1, len(iso3) + 1), "iso3": iso3, "area_km2": area_km2, **extra})


def _potential(mid, lo=None, hi=None) -> pd.DataFrame:
    mid = np.asarray(mid, dtype=float)
    return pd.DataFrame({
        "mine_id": np.arange(1, len(mid) + 1), "potential": mid,
        "potential_lo": mid if lo is None else lo, "potential_hi": mid if hi is None else hi,
    })


# ------------------------------------------------------------------------------ ramps


def test_linear_ramp_rises_by_one_over_T_per_year_and_saturates():
    assert_allclose(S.ramp([0, 1, 2, 3, 4, 5, 9], "linear", 4), [0, 0.25, 0.5, 0.75, 1, 1, 1])


def test_exponential_ramp_hand_computed():
    # k = ln 4, T = 2: r(1) = (1 - 1/2) / (1 - 1/4) = 2/3; r(2) = 1 exactly, and stays 1
    assert_allclose(S.ramp([0, 1, 2, 5], "exponential", 2, k=math.log(4)), [0, 2 / 3, 1, 1], atol=1e-15)


def test_logistic_ramp_is_symmetric_and_reaches_one_at_T():
    r = S.ramp([0, 1, 2, 3, 4, 8], "logistic", 4, k=10)
    assert_allclose([r[0], r[2], r[4], r[5]], [0, 0.5, 1, 1], atol=1e-15)
    assert_allclose(r[1] + r[3], 1.0)
    assert np.all(np.diff(r) >= 0)


@pytest.mark.parametrize("shape", S.RAMPS)
def test_every_ramp_saturates_exactly_at_the_attainable_gain(shape):
    r = S.ramp(np.arange(0, 31), shape, 7.5)
    assert r[0] == 0 and np.all(np.diff(r) >= 0)
    assert np.all(r[8:] == 1.0) and np.all(r[:8] < 1.0)


# ---------------------------------------------------------------------- restored share


def test_restored_fraction_sums_cohorts_times_ramp():
    # cohorts of 0.5 in 2021 and 2022; linear ramp over 4 years
    # 2021: .5*.25 | 2022: .5*.5+.5*.25 | 2023: .5*.75+.5*.5 | 2024: .5*1+.5*.75 | then 1
    f = S.restored_fraction(_scenario(share_per_year=0.5, years_to_attainable=4), YEARS)
    assert_allclose(f, [0.125, 0.375, 0.625, 0.875, 1.0, 1.0])


def test_restored_fraction_caps_the_cumulative_share_at_one():
    # 0.4 a year: cohorts .4, .4, .2 (cap), then nothing; immediate ramp (T = 1)
    f = S.restored_fraction(_scenario(share_per_year=0.4), YEARS)
    assert_allclose(f, [0.4, 0.8, 1.0, 1.0, 1.0, 1.0])


def test_restored_fraction_respects_start_year_and_zero_share():
    assert_allclose(S.restored_fraction(_scenario(start_year=2024), YEARS), [0, 0, 0, 1, 1, 1])
    assert_allclose(S.restored_fraction(_scenario(share_per_year=0.0), YEARS), 0.0)
    assert_allclose(S.restored_fraction(_scenario(start_year=2030), YEARS), 0.0)


def test_shipped_strategy_saturates_once_every_cohort_completes_its_ramp():
    s = S.load_scenarios()["accelerated_natural_recovery"]  # 5 % a year from 2021, T = 10
    years = np.arange(2021, 2061)
    f = S.restored_fraction(s, years)
    # the last cohort (2040) reaches age 10 in 2049
    assert_allclose(f[years >= 2049], 1.0, rtol=1e-12)
    assert f[years == 2048][0] < 1.0 and np.all(np.diff(f) >= 0)


def test_years_must_be_consecutive():
    with pytest.raises(S.ScenarioError, match="consecutive"):
        S.restored_fraction(_scenario(), [2021, 2023])


# --------------------------------------------------------------------------- project


def test_project_unit_conversions_hand_computed():
    # 50 g C m-2 a-1 on 2 km2 = 1e8 g C a-1 = 0.1 Gg C a-1 at once (share 1, T = 1)
    out = S.project(_potential([50.0], [40.0], [60.0]), _mines(["CHN"], [2.0]), _scenario(), years=YEARS)
    n = np.arange(1, 7)
    assert_allclose(out["annual_GgC"], 0.1)
    assert_allclose(out["cumulative_GgC"], 0.1 * n)
    assert_allclose(out["lo"], 0.08 * n)
    assert_allclose(out["hi"], 0.12 * n)
    # 1 Gg C = 1,000 t C = 1,000 * 44 / 12 t CO2
    assert_allclose(out["cumulative_tCO2e"], 0.1 * n * 1000 * 44 / 12)
    assert_allclose(S.to_tco2e(1.0), 3666.6666666666665)


def test_project_ramp_and_saturation_in_gg():
    # 100 g C m-2 a-1 on 1 km2 = 0.1 Gg C a-1 at full gain; F = .125, .375, .625, .875, 1, 1
    s = _scenario(share_per_year=0.5, years_to_attainable=4)
    out = S.project(_potential([100.0]), _mines(["CHN"], [1.0]), s, years=YEARS)
    assert_allclose(out["annual_GgC"], [0.0125, 0.0375, 0.0625, 0.0875, 0.1, 0.1])
    assert_allclose(out["cumulative_GgC"], [0.0125, 0.05, 0.1125, 0.2, 0.3, 0.4])


def test_project_aggregates_by_region_and_skips_regions_without_mines():
    mines = _mines(["PER", "CHL", "FJI", "CHN"], [1.0, 2.0, 3.0, 4.0])
    s = _scenario(regions=("South America", "Oceania", "Europe"))
    out = S.project(_potential([10.0, 10.0, 10.0, 10.0]), mines, s, years=[2021])
    got = out.set_index("region")
    assert list(got.index) == ["South America", "Oceania"]
    assert_allclose(got["annual_GgC"], [10 * 3e6 / 1e9, 10 * 3e6 / 1e9])
    assert got["n_mines"].tolist() == [2, 1]


def test_project_arid_only_uses_the_arid_flag_unless_regions_are_given():
    mines = _mines(["NER", "NER", "ZAF"], [1.0, 1.0, 1.0], arid=[True, False, True])
    s = _scenario(regions=("Africa",), arid_only=True)
    out = S.project(_potential([100.0, 100.0, 100.0]), mines, s, years=[2021])
    assert out["n_mines"].tolist() == [2]
    whole = S.project(_potential([100.0, 100.0, 100.0]), mines, s, years=[2021], regions=["Western Africa"])
    assert whole["n_mines"].tolist() == [2]
    with pytest.raises(S.ScenarioError, match="arid mines only: add the 'arid' column"):
        S.project(_potential([1.0, 1.0, 1.0]), mines.drop(columns="arid"), s)


def test_bands_are_ordered_and_cumulative_is_non_decreasing():
    rng = np.random.default_rng(3)
    n = 40
    mid = rng.gamma(2.0, 10.0, n)
    lo, hi = mid * rng.uniform(0, 1, n), mid * rng.uniform(1, 2, n)
    mines = _mines(rng.choice(["PER", "FJI"], n).tolist(), rng.uniform(1, 20, n))
    s = S.load_scenarios()["accelerated_natural_recovery"]
    out = S.project(_potential(mid, lo, hi), mines, s)
    assert np.all(out["lo"] <= out["cumulative_GgC"]) and np.all(out["cumulative_GgC"] <= out["hi"])
    assert (out["lo"] < out["hi"]).any()
    for _, g in out.groupby("region"):
        assert np.all(np.diff(g["lo"]) >= 0) and np.all(np.diff(g["hi"]) >= 0)


def test_intervals_not_holding_the_centre_are_widened_and_counted():
    pot = _potential([10.0, 10.0, -5.0, np.nan], lo=[12.0, 5.0, -8.0, 1.0], hi=[20.0, 8.0, 1.0, 2.0])
    table, notes = S._prepare(pot, _mines(["CHN"] * 4, [1.0] * 4))
    assert notes == {"n_mines": 4, "n_without_potential": 1, "n_negative_set_to_0": 1, "n_interval_widened": 2}
    assert_allclose(table[["potential_lo", "potential", "potential_hi"]], [[10, 10, 20], [5, 10, 10], [0, 0, 1]])


def test_duplicate_mines_are_refused():
    with pytest.raises(S.ScenarioError, match="mine_id 1 more than once"):
        S.project(pd.concat([_potential([1.0])] * 2), _mines(["CHN"], [1.0]), _scenario())


# -------------------------------------------------------------------- YAML validation


def _shipped() -> dict:
    return yaml.safe_load(S.SCENARIOS_YML.read_text(encoding="utf-8"))


def _write(tmp_path, raw: dict):
    path = tmp_path / "scenarios.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_shipped_file_matches_the_paper_assignment():
    cfg = S.load_config()
    sc = cfg.scenarios
    assert sc["accelerated_natural_recovery"].regions == ("South America", "Oceania")
    assert sc["soil_reconstruction"].regions == ("Europe", "South-Eastern Asia")
    assert sc["drought_tolerant_planting"].regions == ("Africa",) and sc["drought_tolerant_planting"].arid_only
    assert cfg.baseline == "business_as_usual" and sc["business_as_usual"].share_per_year == 0
    for s in sc.values():  # every parameter states a source
        assert {"regions", "share_per_year", "years_to_attainable", "ramp"} <= set(s.sources)
    table = S.describe_strategies(cfg)
    assert table.loc[table["parameter"] == "share_per_year", "unit"].eq("a-1").all()


def _edit(raw: dict, name: str, field: str, value) -> dict:
    raw = copy.deepcopy(raw)
    if value is None:
        del raw["strategies"][name][field]
    else:
        raw["strategies"][name][field] = value
    return raw


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("share_per_year", None, r"scenario 'soil_reconstruction', field 'share_per_year': missing; add share_per_year"),
        ("share_per_year", {"value": 1.5, "unit": "a-1", "source": "s"}, r"'share_per_year': 1.5 lies outside 0-1; give the fraction"),
        ("share_per_year", {"value": -0.1, "unit": "a-1", "source": "s"}, r"-0.1 lies outside 0-1"),
        ("share_per_year", {"value": 3, "unit": "% a-1", "source": "s"}, r"unit '% a-1' is not the expected 'a-1'"),
        ("share_per_year", {"value": 0.1, "unit": "a-1"}, r"'share_per_year': has no source"),
        ("share_per_year", 0.1, r"must be a mapping with 'value'"),
        ("regions", {"value": ["Atlantis"], "source": "s"}, r"field 'regions': unknown region 'Atlantis'.*continents: Asia"),
        ("regions", {"value": ["Europe", "Eastern Europe"], "source": "s"}, r"'Eastern Europe' overlaps 'Europe'"),
        ("regions", {"value": ["Oceania"], "source": "s"}, r"overlaps the regions of scenario 'accelerated_natural_recovery'"),
        ("ramp", {"value": "cubic", "source": "s"}, r"field 'ramp': unknown shape 'cubic'; use one of linear"),
        ("years_to_attainable", {"value": 0, "unit": "a", "source": "s"}, r"'years_to_attainable': 0 lies outside"),
        ("years_to_attainable", {"value": "ten", "unit": "a", "source": "s"}, r"must be a number, got 'ten'"),
        ("share_per_yr", {"value": 0.1, "unit": "a-1", "source": "s"}, r"field 'share_per_yr': unknown field; known fields"),
        ("label", None, r"field 'label': missing"),
    ],
)
def test_malformed_strategy_is_refused_naming_strategy_field_and_fix(tmp_path, field, value, message):
    path = _write(tmp_path, _edit(_shipped(), "soil_reconstruction", field, value))
    with pytest.raises(S.ScenarioError, match=message):
        S.load_scenarios(path)


def test_ramp_k_on_a_linear_ramp_is_refused(tmp_path):
    raw = _edit(_shipped(), "drought_tolerant_planting", "ramp_k", {"value": 2, "unit": "1", "source": "s"})
    with pytest.raises(S.ScenarioError, match="'drought_tolerant_planting', field 'ramp_k': has no effect"):
        S.load_config(_write(tmp_path, raw))


def test_baseline_must_restore_nothing_and_exist(tmp_path):
    raw = _edit(_shipped(), "business_as_usual", "share_per_year", {"value": 0.1, "unit": "a-1", "source": "s"})
    with pytest.raises(S.ScenarioError, match="the baseline must restore nothing"):
        S.load_config(_write(tmp_path, raw))
    raw = _shipped() | {"baseline": "nothing"}
    with pytest.raises(S.ScenarioError, match="field 'baseline': 'nothing' is not a strategy"):
        S.load_config(_write(tmp_path, raw))


def test_broken_yaml_and_bad_names_are_refused(tmp_path):
    bad = tmp_path / "broken.yml"
    bad.write_text("strategies:\n  a: [1, 2\n", encoding="utf-8")
    with pytest.raises(S.ScenarioError, match="broken.yml is not valid YAML"):
        S.load_config(bad)
    raw = _shipped()
    raw["strategies"]["My Strategy"] = raw["strategies"]["business_as_usual"]
    with pytest.raises(S.ScenarioError, match="'My Strategy': the name must be lower case"):
        S.load_config(_write(tmp_path, raw))
    with pytest.raises(S.ScenarioError, match="does not exist"):
        S.load_config(tmp_path / "missing.yml")
    raw = _shipped()
    del raw["aridity"]
    with pytest.raises(S.ScenarioError, match="section 'aridity' is missing"):
        S.load_config(_write(tmp_path, raw))


def test_a_user_can_add_a_strategy_by_editing_the_yaml(tmp_path):
    raw = _shipped()
    raw["strategies"]["mine_site_afforestation"] = {
        "label": "Mine-site afforestation",
        "regions": {"value": ["Eastern Asia"], "source": "user choice"},
        "share_per_year": {"value": 0.1, "unit": "a-1", "source": "user choice"},
        "years_to_attainable": {"value": 2, "unit": "a", "source": "user choice"},
        "ramp": {"value": "linear", "source": "user choice"},
        "start_year": {"value": 2025, "unit": "year", "source": "user choice"},
    }
    s = S.load_scenarios(_write(tmp_path, raw))["mine_site_afforestation"]
    out = S.project(_potential([10.0]), _mines(["CHN"], [1.0]), s, years=range(2021, 2028))
    # 10 g m-2 a-1 on 1 km2 = 0.01 Gg a-1; F = 0 until 2024, then .05, .15, .25
    assert_allclose(out["annual_GgC"], [0, 0, 0, 0, 0.0005, 0.0015, 0.0025], atol=1e-15)


# ---------------------------------------------------------------- assignment and run


def _world() -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Twelve mines in six subregions, built so each assignment rule fires once."""
    spec = [  # iso3, continent, subregion, potential, precip (mm a-1), spei
        ("PER", "South America", "South America", 20.0, 1200.0, 0.1),
        ("CHL", "South America", "South America", 16.0, 800.0, 0.0),
        ("POL", "Europe", "Eastern Europe", 6.0, 600.0, 0.0),
        ("HUN", "Europe", "Eastern Europe", 4.0, 550.0, -0.1),
        ("NER", "Africa", "Western Africa", 12.0, 200.0, -0.2),
        ("NER", "Africa", "Western Africa", 8.0, 300.0, -0.1),
        ("NER", "Africa", "Western Africa", 9.0, 900.0, 0.3),
        ("CHN", "Asia", "Eastern Asia", 30.0, 700.0, 0.0),
        ("MNG", "Asia", "Eastern Asia", 14.0, 700.0, -0.4),
        ("IDN", "Asia", "South-Eastern Asia", 0.0, 2500.0, 0.2),
        ("VNM", "Asia", "South-Eastern Asia", 0.0, 1800.0, 0.1),
        ("ZMB", "Africa", "Eastern Africa", 15.0, 900.0, -0.7),
    ]
    n = len(spec)
    iso3, continent, subregion, pot, precip, spei = map(list, zip(*spec, strict=True))
    mines = gpd.GeoDataFrame(
        {"mine_id": np.arange(n, dtype="int64"), "iso3": iso3, "country": iso3, "continent": continent,
         "subregion": subregion, "area_km2": np.linspace(1.0, 3.2, n)},
        geometry=[box(10 + i, 0, 10.01 + i, 0.01) for i in range(n)], crs="EPSG:4326",
    )
    covariates = pd.DataFrame({"mine_id": mines["mine_id"], "precip": precip, "spei": spei})
    p = np.asarray(pot)
    potential = pd.DataFrame({
        "mine_id": mines["mine_id"], "attainable": p + 50, "attainable_lo": p + 40, "attainable_hi": p + 60,
        "observed_gain": 50.0, "potential": p, "potential_lo": 0.5 * p, "potential_hi": 1.5 * p,
        "out_of_domain": [False] * (n - 1) + [True], "di": 0.1,
    })
    return mines, covariates, potential


def test_assign_strategies_applies_the_rules_and_compares_with_the_paper():
    mines, covariates, potential = _world()
    cfg = S.load_config()
    mines = S.add_aridity(mines, covariates, cfg.aridity)
    assert mines["arid"].tolist() == [False] * 4 + [True, True] + [False] * 5 + [True]  # the last by SPEI only
    got = S.assign_strategies(potential, mines, config=cfg).set_index("subregion")
    assert got.loc["South America", ["level", "strategy", "paper_strategy"]].tolist() == [
        "high", "accelerated_natural_recovery", "accelerated_natural_recovery"]
    assert got.loc["Eastern Europe", "strategy"] == "soil_reconstruction" and got.loc["Eastern Europe", "agree"]
    # two of three Western African mines are arid: arid subregion, the paper's strategy on 2/3 of its mines
    assert got.loc["Western Africa", "strategy"] == "drought_tolerant_planting"
    assert_allclose(got.loc["Western Africa", ["arid_share", "paper_share"]].astype(float), [2 / 3, 2 / 3])
    assert got.loc["Western Africa", "agree"]
    assert got.loc["South-Eastern Asia", "level"] == "none" and got.loc["South-Eastern Asia", "strategy"] == "business_as_usual"
    assert not got.loc["South-Eastern Asia", "agree"]  # the paper says soil reconstruction
    assert got.loc["Eastern Asia", "strategy"] == "accelerated_natural_recovery" and pd.isna(got.loc["Eastern Asia", "agree"])
    # Eastern Africa's one mine is arid by SPEI alone
    assert got.loc["Eastern Africa", ["strategy", "paper_strategy"]].tolist() == ["drought_tolerant_planting"] * 2
    assert_allclose(got.loc["Eastern Asia", "potential_mean"], 22.0)


def _fill_run(tmp_path):
    mines, covariates, potential = _world()
    mines.to_parquet(tmp_path / "mines.parquet")
    covariates.to_parquet(tmp_path / "covariates.parquet")
    potential.to_parquet(tmp_path / "potential.parquet")
    return mines, potential


def test_run_writes_the_table_and_the_summary(tmp_path):
    mines, potential = _fill_run(tmp_path)
    res = S.run(RunParams(run_dir=str(tmp_path)))
    csv = pd.read_csv(tmp_path / "scenarios.csv")
    assert {"region", "strategy", "year", "cumulative_GgC", "lo", "hi", "cumulative_tCO2e"} <= set(csv.columns)
    assert set(csv["assignment"]) == {"paper", "data"} and csv["year"].between(2021, 2060).all()
    paper = csv[csv["assignment"] == "paper"]
    assert set(paper["region"]) == {"South America", "Europe", "South-Eastern Asia", "Africa"}
    # South America under accelerated natural recovery: by 2060 every mine has its full gain
    sa = mines["subregion"] == "South America"
    full = float((potential.loc[sa, "potential"] * mines.loc[sa, "area_km2"] * 1e6).sum() / 1e9)
    row = paper[(paper["region"] == "South America") & (paper["year"] == 2060)].iloc[0]
    assert_allclose(row["annual_GgC"], full, rtol=1e-12)
    fraction = S.restored_fraction(res.config.scenarios["accelerated_natural_recovery"], range(2021, 2061))
    assert_allclose(row["cumulative_GgC"], full * fraction.sum(), rtol=1e-12)
    assert_allclose(row["cumulative_tCO2e"], row["cumulative_GgC"] * 1000 * 44 / 12)
    summary = read_summary(tmp_path)["scenarios"]
    assert summary["report_years"] == [2030, 2040, 2060]
    anr = summary["paper"]["accelerated_natural_recovery"]["2060"]
    assert_allclose([anr["GgC"], anr["GgC_lo"], anr["GgC_hi"]],
                    [row["cumulative_GgC"], row["lo"], row["hi"]], rtol=1e-12)
    assert summary["paper"]["business_as_usual"]["2060"]["GgC"] == 0.0
    total = sum(summary["paper"][k]["2040"]["GgC"] for k in res.config.scenarios)
    assert_allclose(summary["paper"]["all"]["2040"]["GgC"], total)
    assert summary["data_assignment"]["Eastern Asia"] == "accelerated_natural_recovery"
    assert_allclose(summary["agreement_share"], 4 / 5)  # SE Asia disagrees; Eastern Asia has no paper strategy
    assert summary["notes"]["n_out_of_domain"] == 1 and summary["notes"]["n_without_potential"] == 0
    assert res.mines["paper_strategy"].notna().all() and len(res.mines) == len(mines)


def test_run_is_deterministic_and_restricted_to_the_region(tmp_path):
    _fill_run(tmp_path)
    S.run(RunParams(run_dir=str(tmp_path)))
    first = (tmp_path / "scenarios.csv").read_bytes()
    S.run(RunParams(run_dir=str(tmp_path)))
    assert (tmp_path / "scenarios.csv").read_bytes() == first
    res = S.run(RunParams(region="Europe", run_dir=str(tmp_path)))
    assert set(res.projection["region"]) == {"Europe", "Eastern Europe"}
    assert res.notes["n_outside_region"] == 10
    assert read_summary(tmp_path)["scenarios"]["paper"]["accelerated_natural_recovery"]["2060"]["GgC"] == 0.0


def test_run_on_a_region_without_restoring_strategy_degrades_cleanly(tmp_path):
    from nepkit.plotting import scenarios as P

    _fill_run(tmp_path)
    res = S.run(RunParams(region="North America", run_dir=str(tmp_path)))  # no mine there
    assert res.projection.empty and res.assignment.empty
    fig = P.fig_cumulative(res.projection, res.config)
    assert "No mine" in fig.axes[0].texts[0].get_text()


def test_figures_are_built(tmp_path):
    from matplotlib.figure import Figure

    from nepkit.plotting import scenarios as P

    _fill_run(tmp_path)
    res = S.run(RunParams(run_dir=str(tmp_path)))
    cfg = res.config
    figs = [P.fig_ramps(cfg), P.fig_cumulative(res.projection, cfg), P.fig_cumulative(res.projection, cfg, assignment="data"),
            P.fig_assignment_map(res.mines, cfg)]
    assert all(isinstance(f, Figure) for f in figs)
    assert [ax.get_title() for ax in figs[1].axes] == [cfg.scenarios[k].label for k in (
        "accelerated_natural_recovery", "soil_reconstruction", "drought_tolerant_planting")]
