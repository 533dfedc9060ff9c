"""Property-based tests (hypothesis) of the region selectors and the run lock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nepkit import regions
from nepkit.regions import RegionError
from nepkit.runner import RunLocked, _run_lock

COUNTRIES = regions.bri_countries()
ISO3 = sorted(COUNTRIES["iso3"])
NAMES = ["all", *regions.CONTINENTS, *sorted(set(COUNTRIES["subregion"]))]


@given(st.lists(st.sampled_from(ISO3), min_size=1, max_size=8), st.sampled_from([",", ", ", " ,"]))
def test_iso3_lists_select_exactly_themselves(codes, sep):
    text = sep.join(c.lower() if i % 2 else c for i, c in enumerate(codes))
    assert regions.select(text) == sorted(set(codes))


@given(st.sampled_from(NAMES), st.sampled_from([str.upper, str.lower, str.title, lambda s: f"  {s} "]))
def test_names_select_case_and_space_insensitively(name, transform):
    assert regions.select(transform(name)) == regions.select(name)


@given(st.sampled_from(NAMES))
def test_every_selection_is_a_sorted_subset_of_all(name):
    selected = regions.select(name)
    assert selected == sorted(selected)
    assert set(selected) <= set(regions.select("all"))
    assert selected


@settings(max_examples=200)
@given(st.text(min_size=1, max_size=20))
def test_any_other_text_is_refused_or_selects_partners(text):
    try:
        selected = regions.select(text)
    except RegionError as exc:
        assert "\n" not in str(exc)
    else:
        assert set(selected) <= set(ISO3)


def test_a_second_run_on_the_same_directory_refuses(tmp_path):
    with _run_lock(tmp_path):
        with pytest.raises(RunLocked, match="is being written by another run"):
            with _run_lock(tmp_path):
                pass
    with _run_lock(tmp_path):  # released after the first run
        pass
