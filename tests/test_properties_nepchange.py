"""Property-based tests (hypothesis) of the NEP-change equations (nepkit.nepchange).

NEP values are drawn as multiples of 1/64 g C m-2 a-1 (as the synthetic world
stores them), so sums and differences are exact in floating point and the
identities below hold bit for bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from nepkit.nepchange import classify, compute_change, period_stats

FIRST_YEAR = 2000
QUANTUM = 1 / 64


@st.composite
def panels(draw, *, nan: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A panel ``mine_id, year, nep_mine, nep_ref`` (some NaN) and the mines' areas."""
    n_mines = draw(st.integers(1, 5))
    n_years = draw(st.integers(2, 6))
    ids = draw(st.lists(st.integers(1, 10**6), min_size=n_mines, max_size=n_mines, unique=True))
    size = n_mines * n_years
    values = st.integers(-64 * 600, 64 * 600).map(lambda v: v * QUANTUM)
    q = np.array(draw(st.lists(values, min_size=size, max_size=size)))
    o = np.array(draw(st.lists(values, min_size=size, max_size=size)))
    if nan:
        holes = st.lists(st.booleans(), min_size=size, max_size=size)
        q[np.array(draw(holes))] = np.nan
        o[np.array(draw(holes))] = np.nan
    panel = pd.DataFrame({
        "mine_id": np.repeat(np.array(ids, dtype=np.int64), n_years),
        "year": np.tile(np.arange(FIRST_YEAR, FIRST_YEAR + n_years, dtype=np.int64), n_mines),
        "nep_mine": q,
        "nep_ref": o,
    })
    areas = draw(st.lists(st.integers(1, 10_000).map(lambda a: a / 8), min_size=n_mines, max_size=n_mines))
    return panel, pd.DataFrame({"mine_id": np.array(ids, dtype=np.int64), "area_km2": areas})


def _matrix(panel: pd.DataFrame, column: str) -> pd.DataFrame:
    return panel.pivot(index="mine_id", columns="year", values=column).sort_index()


@settings(max_examples=60, deadline=None)
@given(panels())
def test_equations_1_to_4_hold_for_every_mine_and_year(data):
    panel, mines = data
    change = compute_change(panel, mines, baseline=FIRST_YEAR)
    q, o = _matrix(panel, "nep_mine"), _matrix(panel, "nep_ref")
    valid = q[FIRST_YEAR].notna() & o[FIRST_YEAR].notna()
    years = [y for y in q.columns if y != FIRST_YEAR]
    # one row per differenced mine and later year; the baseline year itself has none
    assert len(change) == int(valid.sum()) * len(years)
    assert FIRST_YEAR not in set(change["year"])
    assert set(change["mine_id"]) == set(valid.index[valid])
    for row in change.itertuples():
        p = q.loc[row.mine_id, row.year] - q.loc[row.mine_id, FIRST_YEAR]
        w = o.loc[row.mine_id, row.year] - o.loc[row.mine_id, FIRST_YEAR]
        area_m2 = mines.set_index("mine_id").loc[row.mine_id, "area_km2"] * 1e6
        assert_array_equal([row.P, row.W, row.loss], [p, w, w - p])
        assert_allclose(row.loss_total_g, (w - p) * area_m2, rtol=1e-15)


@settings(max_examples=50, deadline=None)
@given(panels(), st.data())
def test_static_levels_and_shared_year_effects_cancel(data, draws):
    """Difference-in-differences: a mine's own level, its ring's level and a year effect
    common to mine and ring leave the loss unchanged (the parallel-trends construction)."""
    panel, mines = data
    shift = st.integers(-64 * 300, 64 * 300).map(lambda v: v * QUANTUM)
    ids, years = panel["mine_id"].unique(), panel["year"].unique()
    level_mine = dict(zip(ids, draws.draw(st.lists(shift, min_size=len(ids), max_size=len(ids))), strict=True))
    level_ring = dict(zip(ids, draws.draw(st.lists(shift, min_size=len(ids), max_size=len(ids))), strict=True))
    year_effect = dict(zip(years, draws.draw(st.lists(shift, min_size=len(years), max_size=len(years))),
                           strict=True))
    effect = panel["year"].map(year_effect)
    moved = panel.assign(
        nep_mine=panel["nep_mine"] + panel["mine_id"].map(level_mine) + effect,
        nep_ref=panel["nep_ref"] + panel["mine_id"].map(level_ring) + effect,
    )
    before = compute_change(panel, mines, baseline=FIRST_YEAR)
    after = compute_change(moved, mines, baseline=FIRST_YEAR)
    pd.testing.assert_series_equal(before["loss"], after["loss"], check_exact=True)
    pd.testing.assert_series_equal(before["loss_total_g"], after["loss_total_g"], check_exact=True)


@settings(max_examples=50, deadline=None)
@given(panels())
def test_swapping_mine_and_ring_negates_the_loss(data):
    panel, mines = data
    swapped = panel.rename(columns={"nep_mine": "nep_ref", "nep_ref": "nep_mine"})
    loss = compute_change(panel, mines, baseline=FIRST_YEAR)["loss"]
    assert_array_equal(compute_change(swapped, mines, baseline=FIRST_YEAR)["loss"], -loss)


@settings(max_examples=50, deadline=None)
@given(panels(), st.integers(1, 8))
def test_loss_scales_with_the_nep_and_the_total_with_the_area(data, k):
    panel, mines = data
    base = compute_change(panel, mines, baseline=FIRST_YEAR)
    scaled = compute_change(panel.assign(nep_mine=panel["nep_mine"] * k, nep_ref=panel["nep_ref"] * k),
                            mines, baseline=FIRST_YEAR)
    assert_array_equal(scaled["loss"], base["loss"] * k)
    bigger = compute_change(panel, mines.assign(area_km2=mines["area_km2"] * k), baseline=FIRST_YEAR)
    assert_allclose(bigger["loss_total_g"], base["loss_total_g"] * k, rtol=1e-14)


@settings(max_examples=50, deadline=None)
@given(panels())
def test_the_period_statistics_follow_their_definitions(data):
    panel, mines = data
    change = compute_change(panel, mines, baseline=FIRST_YEAR)
    last = change["year"].max() if len(change) else None
    for by in ("mean", "final", "trend"):
        stat = classify(change, by=by)
        assert stat["mine_id"].is_monotonic_increasing
        assert ((stat["status"] == "loss") == (stat["loss_stat"] > 0)).all()
        for row in stat.itertuples():
            loss = change.loc[(change["mine_id"] == row.mine_id) & change["loss"].notna()]
            if by == "mean":
                assert_allclose(row.loss_stat, loss["loss"].mean(), rtol=1e-12, atol=1e-9)
            elif by == "final":
                assert row.loss_stat == loss.loc[loss["year"] == last, "loss"].item()
            else:
                assert len(loss) >= 2


@settings(max_examples=50, deadline=None)
@given(st.integers(-64 * 50, 64 * 50), st.integers(-64 * 50, 64 * 50), st.integers(3, 21))
def test_the_trend_statistic_recovers_a_straight_line(intercept, slope, n_years):
    """On a loss that grows linearly, ``trend`` is the loss the line gains over the period."""
    years = np.arange(FIRST_YEAR + 1, FIRST_YEAR + n_years + 1)
    change = pd.DataFrame({"mine_id": 1, "year": years,
                           "loss": (intercept + slope * (years - FIRST_YEAR)) * QUANTUM})
    stat = classify(change, by="trend")["loss_stat"].item()
    assert_allclose(stat, slope * QUANTUM * (n_years - 1), rtol=1e-9, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-64 * 500, 64 * 500), st.integers(1, 800)), min_size=1, max_size=30))
def test_period_totals_add_up(mines):
    stats_ = pd.DataFrame({"loss_stat": [s * QUANTUM for s, _ in mines], "area_km2": [a / 8 for _, a in mines]})
    r = period_stats(stats_)
    assert r["n_mines"] == len(mines)
    assert_allclose(r["loss_share"] + r["gain_share"], 1.0)
    assert r["loss_total_Gg_per_a"] >= 0 and r["gain_total_Gg_per_a"] >= 0
    assert_allclose(r["net_loss_Gg_per_a"], r["loss_total_Gg_per_a"] - r["gain_total_Gg_per_a"], atol=1e-12)
    expected = (stats_["loss_stat"] * stats_["area_km2"] * 1e6).sum() / 1e9
    assert_allclose(r["net_loss_Gg_per_a"], expected, rtol=1e-9, atol=1e-12)
