import pytest

from nepkit import regions
from nepkit.regions import RegionError


def test_partner_list_counts_per_continent():
    c = regions.bri_countries()
    assert len(c) == 153  # 152 partners (Sept 2023) + China, the initiator
    counts = c.groupby("continent").size().to_dict()
    assert counts == {
        "Africa": 52,
        "Asia": 42,
        "Europe": 26,
        "North America": 13,
        "Oceania": 11,
        "South America": 9,
    }
    assert c["iso3"].is_unique
    assert set(c["continent"]) == set(regions.CONTINENTS)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Eastern Asia", ["CHN", "KOR", "MNG"]),
        ("eastern asia", ["CHN", "KOR", "MNG"]),
        ("CHN,ZAF", ["CHN", "ZAF"]),
        ("zaf", ["ZAF"]),
    ],
)
def test_selectors(name, expected):
    assert regions.select(name) == expected


def test_continent_and_all_selectors_partition_the_list():
    everything = set(regions.select("all"))
    by_continent = [set(regions.select(c)) for c in regions.CONTINENTS]
    assert set().union(*by_continent) == everything
    assert sum(len(s) for s in by_continent) == len(everything)
    assert "ZAF" in regions.select("Southern Africa")
    assert "IDN" in regions.select("South-eastern Asia")  # DESIGN.md spelling


def test_unknown_region_lists_valid_names():
    with pytest.raises(RegionError, match=r"unknown region 'Atlantis'; valid: all; continents: Asia, Europe"):
        regions.select("Atlantis")


def test_non_partner_iso3_is_refused():
    with pytest.raises(RegionError, match="not a BRI partner: USA"):
        regions.select("CHN,USA")


def test_boundaries_are_shipped_and_flag_partners():
    b = regions.boundaries()
    assert b.crs.to_epsg() == 4326
    assert b.loc[b["iso3"] == "CHN", "bri"].item()
    assert not b.loc[b["iso3"] == "USA", "bri"].item()
    assert b.geometry.is_valid.all()
    # every partner with a 1:110m polygon is found by its ISO3 code
    partners = regions.bri_countries()
    assert set(partners.loc[partners["in_ne110m"] == "True", "iso3"]) <= set(b["iso3"])
