"""The page that sets the paper's numbers beside a run's (nepkit.compare)."""

import pandas as pd

from nepkit.artifacts import paper_reported
from nepkit.compare import paper_vs_run, run_value

SUMMARY = {
    "n_countries": 31,
    "decline_pct": 47.5,
    "nep_total_Gg": {"2001": 2588.5, "2020": 1905.8},
    "nep_total_max": {"year": 2008, "value": 3015.9},
    "nep_change": {"reported": {"phase2_r2": 0.83, "loss_0_200_share": 0.72, "gain_share": 0.45}},
    "potential": {"potential_total_kg": 1531.4},
    "parameters": {"gain_threshold": 100.0},
}


def test_run_value_finds_each_form_of_key():
    assert run_value(SUMMARY, "decline_pct") == 47.5
    assert run_value(SUMMARY, "phase2_r2") == 0.83
    assert run_value(SUMMARY, "nep_total_2001") == 2588.5
    assert run_value(SUMMARY, "nep_total_2014") is None
    assert run_value(SUMMARY, "potential_total") == 1531.4
    assert run_value(SUMMARY, "gain_threshold") == 100.0
    assert run_value(SUMMARY, "no_such_number") is None


def test_every_reported_number_gets_a_row_and_missing_ones_stay_empty():
    table = paper_vs_run(SUMMARY).set_index("quantity")
    assert list(table.index) == list(paper_reported())
    assert table.loc["nep_total_max", "this run"] == "3,016 (2008)"
    assert table.loc["loss_0_200_share", "this run"] == "0.72"
    assert pd.isna(table.loc["mean_loss_2019", "this run"])
    assert (table["paper"] != "").all()
