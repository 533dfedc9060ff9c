"""The mining districts of the synthetic world: where mines are, and their climate.

Each district is a real mining region, placed at its real location inside the
real country (Natural Earth 1:110m polygons), with the district's typical
climate, relief, soil carbon, population and income per head (rounded
textbook values: they set the *between*-district contrasts; smooth random
fields add the variation inside a district). ``weight`` is the district's
share of the mines (its rough share of the mapped mining land of Maus et al.
2022 among the Belt and Road partners); ``restore`` is its restoration
propensity (reclamation law and practice: high in China and the EU members,
low in arid or weakly regulated regions), which multiplies the share of mines
under restoration.

Five districts lie in countries outside the Belt and Road list (Australia,
the United States, India, Brazil): the BRI filter must drop their mines.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["District", "DISTRICTS", "district"]


@dataclass(frozen=True)
class District:
    """A mining district.

    Attributes
    ----------
    name : str
        Identifier (``truth.parquet`` column ``district``).
    label : str
        Human-readable name.
    countries : tuple of str
        ISO3 codes the district's mines may lie in.
    lon, lat : float
        Centre, degrees.
    radius_km : float
        Radius of the district disc at the paper's scale (km).
    weight : float
        Relative number of mines.
    coastal : bool
        Whether a share of its mines is placed near the coast.
    precip : float
        Mean annual precipitation, mm a-1.
    tmean, dtr : float
        Mean annual temperature and mean diurnal range, degC.
    elevation, relief : float
        Mean elevation and relief amplitude, m.
    soc : float
        Topsoil (0-30 cm) organic carbon stock, t C ha-1.
    pop : float
        Median population density, people km-2.
    gdp_pc : float
        GDP per head, USD (2017 PPP).
    restore : float
        Restoration propensity (multiplies the share of restored mines).
    """

    name: str
    label: str
    countries: tuple[str, ...]
    lon: float
    lat: float
    radius_km: float
    weight: float
    coastal: bool
    precip: float
    tmean: float
    dtr: float
    elevation: float
    relief: float
    soc: float
    pop: float
    gdp_pc: float
    restore: float


def _d(name, label, countries, lon, lat, radius_km, weight, coastal, precip, tmean, dtr, elevation, relief,
       soc, pop, gdp_pc, restore) -> District:
    return District(name, label, tuple(countries.split(",")), lon, lat, radius_km, weight, coastal, precip,
                    tmean, dtr, elevation, relief, soc, pop, gdp_pc, restore)


# fmt: off
#: All districts. Columns: name, label, countries, lon, lat, radius km, weight, coastal,
#: precip mm, tmean C, dtr C, elevation m, relief m, soc t/ha, pop /km2, gdp/head USD, restore.
DISTRICTS: tuple[District, ...] = (
    # Eastern Asia: China, the densest mining on Earth
    _d("shanxi", "Shanxi coal basin", "CHN", 112.5, 37.6, 170, 900, False, 520, 10.0, 12, 1100, 500, 28, 250, 9000, 1.3),
    _d("ordos", "Ordos and Inner Mongolia coal", "CHN", 109.9, 39.5, 140, 650, False, 350, 7.5, 13, 1350, 250, 18, 40, 15000, 1.3),
    _d("tangshan", "Tangshan-Hebei iron and coal", "CHN", 118.5, 39.8, 80, 250, True, 620, 11.0, 11, 150, 300, 25, 500, 11000, 1.3),
    _d("shandong", "Shandong coal and gold", "CHN", 117.6, 36.2, 90, 200, False, 700, 13.5, 10, 300, 300, 20, 600, 11000, 1.3),
    _d("liaoning", "Liaoning iron and coal", "CHN", 123.5, 41.6, 90, 200, False, 700, 8.0, 11, 200, 300, 35, 300, 10000, 1.3),
    _d("xinjiang", "Zhundong-Hami coal, Xinjiang", "CHN", 89.5, 44.3, 120, 250, False, 180, 6.0, 14, 700, 300, 12, 15, 8000, 1.0),
    _d("heilongjiang", "Jixi-Hegang coal, Heilongjiang", "CHN", 130.8, 46.3, 100, 200, False, 550, 3.5, 12, 300, 250, 60, 90, 6000, 1.3),
    _d("guizhou", "Guizhou-Yunnan coal and phosphate", "CHN", 105.0, 26.3, 130, 300, False, 1150, 15.0, 8, 1500, 600, 45, 220, 6500, 1.2),
    _d("ganzhou", "Jiangxi-Hunan rare earths and tungsten", "CHN", 114.8, 26.3, 110, 250, False, 1600, 18.5, 8, 300, 400, 38, 300, 7000, 1.2),
    _d("mongolia", "South Gobi copper and coal", "MNG", 106.2, 43.6, 120, 200, False, 120, 4.0, 15, 1300, 200, 10, 1, 4500, 0.6),
    # Russia and Central Asia
    _d("kuzbass", "Kuzbass coal basin", "RUS", 86.9, 54.3, 130, 500, False, 470, 1.5, 10, 300, 250, 75, 30, 10000, 0.7),
    _d("kursk", "Kursk Magnetic Anomaly iron", "RUS", 37.5, 51.0, 80, 150, False, 580, 6.5, 9, 220, 60, 70, 50, 11000, 0.8),
    _d("urals", "Middle Urals ores", "RUS", 60.0, 57.0, 130, 300, False, 500, 2.0, 9, 300, 250, 65, 25, 11000, 0.7),
    _d("norilsk", "Norilsk nickel", "RUS", 88.2, 69.4, 50, 60, False, 450, -9.5, 7, 150, 300, 90, 3, 20000, 0.5),
    _d("karaganda", "Karaganda-Ekibastuz coal and copper", "KAZ", 74.0, 50.3, 180, 300, False, 300, 3.5, 12, 500, 150, 40, 8, 10000, 0.6),
    _d("muruntau", "Kyzylkum gold", "UZB", 64.5, 41.5, 100, 100, False, 150, 15.0, 16, 400, 250, 8, 20, 2000, 0.6),
    _d("kerman", "Kerman copper", "IRN", 56.0, 30.0, 120, 150, False, 150, 17.0, 16, 2000, 700, 8, 30, 5000, 0.6),
    # South-eastern Asia and Melanesia
    _d("kalimantan_east", "East Kalimantan coal", "IDN", 116.9, -0.4, 130, 650, True, 2500, 27.0, 8, 80, 120, 55, 40, 12000, 1.0),
    _d("kalimantan_south", "South Kalimantan coal", "IDN", 115.6, -2.9, 100, 400, True, 2600, 27.0, 8, 60, 150, 50, 60, 4000, 1.0),
    _d("sumatra", "South Sumatra coal and tin", "IDN", 103.8, -3.7, 100, 250, False, 2700, 27.0, 8, 60, 100, 55, 120, 3500, 1.0),
    _d("mindanao", "Surigao nickel, Mindanao", "PHL", 125.8, 9.3, 70, 120, True, 3500, 27.0, 7, 150, 300, 45, 150, 3500, 0.8),
    _d("quangninh", "Quang Ninh coal", "VNM", 107.1, 21.1, 60, 80, True, 1800, 23.0, 7, 150, 250, 35, 200, 3500, 1.0),
    _d("hpakant", "Hpakant jade", "MMR", 96.3, 25.6, 60, 80, False, 2500, 24.0, 10, 400, 500, 40, 40, 1300, 0.4),
    _d("png_highlands", "Papua New Guinea highlands gold and copper", "PNG", 142.5, -5.8, 100, 80, False, 3500, 20.0, 9, 1800, 800, 60, 30, 2800, 0.6),
    # South America
    _d("atacama", "Atacama copper", "CHL", -69.3, -23.5, 150, 350, True, 15, 15.0, 16, 2500, 900, 4, 3, 15000, 0.6),
    _d("central_chile", "Central Chile copper", "CHL", -70.6, -33.2, 90, 150, False, 350, 13.0, 14, 1200, 900, 30, 100, 15000, 0.8),
    _d("south_peru", "Southern Peru copper", "PER", -71.5, -15.5, 160, 300, True, 250, 12.0, 15, 3300, 900, 15, 20, 7000, 0.8),
    _d("cajamarca", "Cajamarca gold", "PER", -78.3, -7.3, 100, 120, False, 800, 13.0, 12, 3000, 900, 40, 40, 6000, 0.8),
    _d("potosi", "Potosi-Oruro silver and tin", "BOL", -66.5, -19.5, 130, 120, False, 350, 9.0, 17, 3900, 500, 12, 10, 3500, 0.5),
    _d("san_juan", "San Juan gold", "ARG", -68.9, -29.5, 100, 80, False, 150, 15.0, 16, 1800, 900, 8, 5, 12000, 0.7),
    _d("guayana", "Guayana iron and gold", "VEN", -62.5, 7.3, 120, 120, False, 1400, 26.0, 9, 200, 200, 35, 10, 6000, 0.5),
    # Central America and the Caribbean (the paper's North America partners)
    _d("moa", "Moa nickel, Cuba", "CUB", -74.95, 20.55, 40, 50, True, 1500, 25.5, 8, 300, 400, 35, 40, 8000, 0.6),
    _d("jamaica", "Jamaica bauxite", "JAM", -77.35, 18.15, 35, 60, False, 1800, 25.0, 8, 400, 500, 40, 150, 9000, 0.8),
    _d("pueblo_viejo", "Pueblo Viejo gold, Dominican Republic", "DOM", -70.15, 18.95, 35, 40, False, 1600, 25.0, 9, 300, 400, 40, 200, 15000, 0.8),
    _d("cobre_panama", "Cobre Panama copper", "PAN", -80.6, 8.8, 35, 40, True, 3200, 26.5, 8, 150, 300, 50, 30, 25000, 0.9),
    # Africa
    _d("copperbelt", "Central African Copperbelt", "ZMB,COD", 27.3, -12.3, 200, 400, False, 1250, 20.5, 13, 1250, 150, 30, 60, 1200, 0.7),
    _d("witwatersrand", "Witwatersrand gold and Highveld coal", "ZAF", 28.8, -26.2, 150, 450, False, 700, 16.0, 14, 1600, 250, 22, 150, 6500, 1.1),
    _d("northern_cape", "Northern Cape iron and manganese", "ZAF", 23.0, -27.8, 90, 120, False, 300, 19.0, 16, 1150, 150, 8, 5, 6500, 0.9),
    _d("ashanti", "Ashanti gold belt", "GHA", -1.8, 6.2, 100, 250, False, 1450, 26.5, 9, 250, 200, 30, 150, 2300, 0.6),
    _d("boke", "Boke bauxite", "GIN", -14.0, 10.9, 80, 150, True, 2500, 27.0, 10, 80, 150, 30, 40, 1200, 0.5),
    _d("geita", "Lake Victoria gold", "TZA", 32.3, -3.0, 90, 100, False, 1000, 23.0, 11, 1250, 200, 25, 120, 1100, 0.6),
    _d("great_dyke", "Great Dyke platinum and chrome", "ZWE", 30.1, -18.6, 110, 120, False, 700, 19.0, 14, 1200, 250, 18, 40, 1500, 0.7),
    _d("sahel_gold", "Mali-Burkina Faso gold", "MLI,BFA", -4.0, 12.3, 180, 150, False, 800, 28.0, 13, 320, 100, 12, 50, 900, 0.5),
    _d("moatize", "Moatize coal", "MOZ", 33.7, -16.1, 60, 60, False, 700, 26.0, 12, 250, 300, 20, 30, 500, 0.5),
    # Europe and Western Asia
    _d("silesia", "Upper Silesia coal", "POL", 19.0, 50.4, 70, 150, False, 700, 8.5, 9, 280, 100, 45, 350, 17000, 1.4),
    _d("bor", "Bor copper", "SRB", 22.0, 44.0, 50, 50, False, 650, 11.0, 11, 400, 300, 40, 60, 8000, 1.0),
    _d("soma", "Soma-Manisa lignite", "TUR", 27.8, 39.1, 80, 150, False, 600, 15.0, 13, 300, 400, 25, 100, 10000, 1.0),
    _d("donbas", "Donbas coal", "UKR", 38.0, 48.2, 90, 200, False, 500, 8.5, 10, 200, 80, 70, 150, 4000, 0.8),
    # Outside the Belt and Road list: dropped by the BRI filter
    _d("pilbara", "Pilbara iron", "AUS", 118.8, -22.3, 180, 250, False, 300, 25.0, 15, 500, 300, 10, 1, 50000, 1.0),
    _d("bowen", "Bowen Basin coal", "AUS", 148.5, -22.5, 150, 200, False, 650, 22.0, 13, 250, 200, 25, 2, 50000, 1.2),
    _d("powder_river", "Powder River Basin coal", "USA", -105.5, 44.0, 90, 100, False, 350, 7.5, 15, 1300, 250, 30, 2, 60000, 1.3),
    _d("jharkhand", "Jharkhand-Odisha coal and iron", "IND", 85.5, 23.2, 150, 250, False, 1300, 25.0, 11, 300, 300, 25, 400, 6000, 0.8),
    _d("quadrilatero", "Quadrilatero Ferrifero iron", "BRA", -43.8, -20.1, 70, 80, False, 1400, 20.0, 10, 1000, 400, 40, 100, 14000, 0.9),
)
# fmt: on

_BY_NAME = {d.name: d for d in DISTRICTS}


def district(name: str) -> District:
    """The district called ``name`` (a clear error listing the valid names otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown district {name!r}; known: {', '.join(_BY_NAME)}") from None
