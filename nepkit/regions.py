"""BRI partner countries, their continent and subregion, and region selectors.

The partner list (``data/reference/bri_countries.csv``) holds the 152 countries
that had signed Belt and Road cooperation documents by September 2023, with
notes where membership is uncertain (see ``data/reference/README.md``). Continent
and subregion are Natural Earth's ``CONTINENT`` and ``SUBREGION`` (the paper's
regional results follow them: e.g. North America holds the Central American and
Caribbean partners). A user may supply another list with the same columns.

Region selectors (used by every entry point):

* ``all``: every partner country;
* a continent: ``Asia``, ``Europe``, ``Africa``, ``North America``,
  ``South America``, ``Oceania``;
* a subregion, e.g. ``Eastern Asia``, ``South-Eastern Asia``, ``Southern Africa``;
* ISO3 codes, comma-separated: ``CHN,MNG``.

Names match case-insensitively; an unknown name raises :class:`RegionError`
listing the valid ones.

Examples
--------
>>> from nepkit import regions
>>> sorted(regions.select("Eastern Asia"))
['CHN', 'KOR', 'MNG']
>>> regions.select("CHN,ZAF")
['CHN', 'ZAF']
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd

from nepkit.paths import REFERENCE_DIR

__all__ = [
    "RegionError",
    "CONTINENTS",
    "bri_countries",
    "boundaries",
    "select",
    "valid_regions",
    "describe",
]

#: The continents the paper reports on, in its order.
CONTINENTS = ("Asia", "Europe", "Africa", "North America", "South America", "Oceania")
BRI_CSV = REFERENCE_DIR / "bri_countries.csv"
BOUNDARIES_GPKG = REFERENCE_DIR / "ne_110m_admin0.gpkg"
_COLUMNS = ("iso3", "name", "continent", "subregion")


class RegionError(ValueError):
    """An unknown region name or ISO3 code."""


@functools.cache
def _read_countries(path: str) -> pd.DataFrame:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in _COLUMNS if c not in table.columns]
    if missing:
        raise RegionError(f"{path} lacks column(s) {', '.join(missing)}; it needs {', '.join(_COLUMNS)}")
    return table


def bri_countries(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The BRI partner countries: ``iso3, name, continent, subregion`` and provenance.

    Parameters
    ----------
    path : path-like, optional
        Another list with at least the columns ``iso3, name, continent,
        subregion``; by default the shipped one.

    Returns
    -------
    pandas.DataFrame
        One row per country (a copy: callers may modify it).
    """
    return _read_countries(str(Path(path) if path else BRI_CSV)).copy()


@functools.cache
def _boundaries() -> gpd.GeoDataFrame:
    return gpd.read_file(BOUNDARIES_GPKG, layer="countries", engine="pyogrio")


def boundaries(*, bri_only: bool = False) -> gpd.GeoDataFrame:
    """Natural Earth 1:110m admin-0 polygons (EPSG:4326), shipped for offline maps.

    Parameters
    ----------
    bri_only : bool
        Keep only the BRI partner countries and flag nothing else.

    Returns
    -------
    geopandas.GeoDataFrame
        ``iso3, name, continent, subregion, bri, geometry``.
    """
    g = _boundaries().copy()
    g["bri"] = g["iso3"].isin(bri_countries()["iso3"])
    return g[g["bri"]].reset_index(drop=True) if bri_only else g


def valid_regions(countries: pd.DataFrame | None = None) -> dict[str, list[str]]:
    """The valid selector names: ``all``, continents, subregions (ISO3 codes aside)."""
    c = bri_countries() if countries is None else countries
    return {
        "all": ["all"],
        "continents": [k for k in CONTINENTS if k in set(c["continent"])],
        "subregions": sorted(set(c["subregion"])),
    }


def select(region: str, countries: pd.DataFrame | None = None) -> list[str]:
    """ISO3 codes of the BRI partners that ``region`` selects.

    Parameters
    ----------
    region : str
        ``all``, a continent, a subregion or comma-separated ISO3 codes.
    countries : pandas.DataFrame, optional
        The partner list (default: :func:`bri_countries`).

    Returns
    -------
    list of str
        Sorted ISO3 codes.

    Raises
    ------
    RegionError
        For an unknown name, listing the valid ones, or an ISO3 code that is
        not a partner.
    """
    c = bri_countries() if countries is None else countries
    if not isinstance(region, str) or not region.strip():
        raise RegionError(f"region must be a non-empty string, got {region!r}")
    key = region.strip().casefold()
    if key == "all":
        return sorted(c["iso3"])
    for column in ("continent", "subregion"):
        hit = c[c[column].str.casefold() == key]
        if len(hit):
            return sorted(hit["iso3"])
    codes = [s.strip().upper() for s in region.split(",")]
    if all(len(s) == 3 and s.isalpha() for s in codes):
        unknown = sorted(set(codes) - set(c["iso3"]))
        if unknown:
            raise RegionError(f"not a BRI partner: {', '.join(unknown)} (see data/reference/bri_countries.csv)")
        return sorted(set(codes))
    valid = valid_regions(c)
    raise RegionError(
        f"unknown region {region!r}; valid: all; continents: {', '.join(valid['continents'])}; "
        f"subregions: {', '.join(valid['subregions'])}; or comma-separated ISO3 codes"
    )


def describe(countries: pd.DataFrame | None = None) -> pd.DataFrame:
    """Number of partner countries per continent and subregion."""
    c = bri_countries() if countries is None else countries
    return c.groupby(["continent", "subregion"]).size().rename("countries").reset_index()
