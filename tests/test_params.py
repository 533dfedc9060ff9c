import json

import pytest

from nepkit.params import ParameterError, RunParams, from_notebook


def test_defaults_follow_the_paper():
    p = RunParams()
    assert p.years == [2000, 2020] and p.baseline == 2000
    assert (p.ring_inner_km, p.ring_outer_km, p.min_area_km2) == (1.0, 5.0, 1.0)
    assert (p.gain_threshold, p.n_sample, p.test_fraction, p.cv_folds) == (100.0, 2000, 0.15, 3)
    assert p.run_path.parts[-2:] == ("runs", "all")
    assert json.loads(json.dumps(p.to_dict()))["region"] == "all"


def test_run_dir_replaces_spaces():
    assert RunParams(region="South America").run_path.name == "South_America"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"years": [1999, 2020]}, r"years must lie inside 2000-2020, got 1999"),
        ({"years": [2010, 2005]}, r"first < last"),
        ({"ring_inner_km": 5, "ring_outer_km": 2}, r"ring_inner_km \(5.0\) must be smaller than ring_outer_km \(2.0\)"),
        ({"test_fraction": 1.5}, r"test_fraction must lie in \(0, 1\)"),
        ({"test_fraction": 0}, r"test_fraction must lie in \(0, 1\)"),
        ({"cv_folds": 1}, r"cv_folds must be at least 2"),
        ({"n_sample": 0}, r"n_sample must be positive"),
        ({"seed": "abc"}, r"seed must be an integer, got str"),
        ({"seed": 1.5}, r"seed must be an integer"),
        ({"seed": -1}, r"seed must be a non-negative integer, got -1"),
        ({"synthetic_preset": "huge"}, r"synthetic_preset must be one of 'paper', 'small', 'medium'"),
        ({"gain_threshold": True}, r"gain_threshold must be a number"),
        ({"classify_by": "median"}, r"classify_by must be one of 'final', 'mean', 'trend'"),
        ({"sources": "data.csv"}, r"sources must be 'synthetic' or the path of a sources.yml"),
        ({"baseline_year": 2020}, r"baseline_year \(2020\) must lie in \[2000, 2020\)"),
    ],
)
def test_invalid_values_are_refused(changes, message):
    with pytest.raises(ParameterError, match=message):
        RunParams(**changes)


def test_every_synthetic_preset_is_a_valid_parameter():
    from typing import get_args

    from nepkit.params import SyntheticPreset
    from nepkit.synth import PRESETS

    assert set(get_args(SyntheticPreset)) == set(PRESETS)


def test_ints_are_accepted_for_floats():
    assert RunParams(ring_outer_km=4).ring_outer_km == 4.0
    assert isinstance(RunParams(ring_outer_km=4).ring_outer_km, float)


def test_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) ring_km; known: region, sources"):
        RunParams.from_dict({"ring_km": 3})


def test_from_notebook_catches_misspelt_papermill_parameters():
    import math

    namespace = {"region": "Africa", "seed": 7, "math": math, "In": [], "_": None}
    assert from_notebook(namespace).region == "Africa"
    with pytest.raises(ParameterError, match="unknown parameter"):
        from_notebook(namespace | {"regoin": "Asia"})
