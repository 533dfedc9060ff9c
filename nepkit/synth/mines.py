"""Mine polygons: sizes, shapes, clustered placement inside real countries.

Placement works district by district in a local kilometre frame. Candidate
sites come from a mixture of Gaussian sub-clusters (and a uniform scatter);
mines are placed largest first, each on the first candidate that lies inside
an allowed country (at least its bounding radius plus ``BORDER_MARGIN_KM``
from the boundary) and clears every placed mine by ``PLACEMENT_GAP_KM``.
Coastal mines (``COASTAL_SHARE`` of a coastal district) are drawn from sites
near the shore. Afterwards ``TOUCH_SHARE`` of the mines are cut in two
adjacent polygons, and ``n_invalid`` BRI mines become self-intersecting
bowties.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Geod
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

from nepkit import regions
from nepkit.synth import constants as C
from nepkit.synth.districts import DISTRICTS, District, district
from nepkit.synth.presets import Preset

__all__ = ["place_mines", "is_bri", "district_counts", "geodesic_area_km2"]

_GEOD = Geod(ellps="WGS84")
_HASH_KM = 2.0  # cell of the spatial hash used for overlap checks
_MAX_TRIES = 400  # candidate sites examined per mine before giving up
_SHORE_JITTER_KM = 3.0  # coastal candidate sites scatter this much around points of the shore
_CLUSTER_CONCENTRATION = 1.5  # Dirichlet concentration of the sub-clusters' shares (some dominate)


def is_bri(d: District) -> bool:
    """Whether every country of district ``d`` is a Belt and Road partner."""
    return set(d.countries) <= set(regions.bri_countries()["iso3"])


def district_counts(p: Preset) -> pd.DataFrame:
    """Mines of at least 1 km2 per district, before splits, and the scaled radius.

    Examples
    --------
    >>> from nepkit.synth.presets import PRESETS
    >>> int(district_counts(PRESETS["small"])["n_large"].sum()) > 150
    True
    """
    ds = [district(n) for n in p.districts]
    rate = p.n_mines / (1 + C.TOUCH_SHARE) / sum(d.weight for d in ds if is_bri(d))
    paper = _paper_rate()
    rows = []
    for d in ds:
        n = max(int(round(rate * d.weight)), 3)
        radius = C.RADIUS_SCALE * d.radius_km * min(1.0, np.sqrt(n / (paper * d.weight)))
        rows.append({"district": d.name, "bri": is_bri(d), "n_large": n,
                     "n_small": int(round(C.SMALL_PER_MINE * n)), "radius_km": max(radius, 15.0)})
    return pd.DataFrame(rows)


def _paper_rate() -> float:
    """Mines per unit of district weight in the paper preset (sets the districts' density)."""
    return 9600 / (1 + C.TOUCH_SHARE) / sum(d.weight for d in DISTRICTS if is_bri(d))


# --- sizes and shapes ----------------------------------------------------------------
def _log_area_mu() -> float:
    """Location of the lognormal whose part in [1, max] km2 has mean MEAN_AREA_KM2."""
    s, hi = C.AREA_LOG_SD, np.log(C.AREA_RANGE_KM2[1])

    def excess(mu: float) -> float:
        num = ndtr((hi - mu - s * s) / s) - ndtr((0 - mu - s * s) / s)
        den = ndtr((hi - mu) / s) - ndtr((0 - mu) / s)
        return np.exp(mu + s * s / 2) * num / den - C.MEAN_AREA_KM2

    return brentq(excess, -3.0, 3.0)


def _draw_areas(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """Lognormal areas (km2) conditioned on [lo, hi)."""
    mu, s = _log_area_mu(), C.AREA_LOG_SD
    a, b = ndtr((np.log(lo) - mu) / s), ndtr((np.log(hi) - mu) / s)
    return np.exp(mu + s * ndtri(rng.uniform(a, b, n)))


def _shapes(rng: np.random.Generator, areas: np.ndarray) -> np.ndarray:
    """Star-shaped outlines (n, N_VERTICES, 2) in km around the origin, of the given areas."""
    n, v = len(areas), C.N_VERTICES
    step = 2 * np.pi / v
    theta = np.arange(v) * step + rng.uniform(-0.3, 0.3, (n, v)) * step
    radius = np.ones((n, v))
    for h in (2, 3, 4):
        amp = rng.uniform(0, C.SHAPE_HARMONIC_MAX, (n, 1))
        radius += amp * np.cos(h * theta + rng.uniform(0, 2 * np.pi, (n, 1)))
    stretch = np.sqrt(rng.uniform(1.0, C.ELONGATION_MAX, (n, 1)))
    x, y = radius * np.cos(theta) * stretch, radius * np.sin(theta) / stretch
    psi = rng.uniform(0, np.pi, (n, 1))
    xy = np.stack([x * np.cos(psi) - y * np.sin(psi), x * np.sin(psi) + y * np.cos(psi)], axis=-1)
    x, y = xy[..., 0], xy[..., 1]
    area0 = 0.5 * np.abs((x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y).sum(1))
    return xy * np.sqrt(areas / area0)[:, None, None]


# --- geography -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Geography:
    countries: dict[str, shapely.Geometry]
    borders: dict[str, shapely.Geometry]
    coastline: shapely.Geometry
    names: dict[str, str]


def _geography() -> _Geography:
    b = regions.boundaries()
    geoms = dict(zip(b["iso3"], b.geometry.values, strict=True))
    for g in geoms.values():
        shapely.prepare(g)
    land = shapely.union_all(b.geometry.values)
    bri_names = dict(zip(*regions.bri_countries()[["iso3", "name"]].T.values, strict=True))
    names = {iso: bri_names.get(iso, name) for iso, name in zip(b["iso3"], b["name"], strict=True)}
    coast = land.boundary
    shapely.prepare(coast)
    return _Geography(geoms, {k: g.boundary for k, g in geoms.items()}, coast, names)


def _km_per_degree(lat: np.ndarray) -> np.ndarray:
    """A lower bound of the km in one degree of mixed lon/lat distance near ``lat``."""
    return np.minimum(C.KM_PER_DEG_LAT, C.KM_PER_DEG_LON * np.cos(np.radians(np.abs(lat) + 0.2)))


@dataclass
class _Sites:
    """Candidate sites of a district with what placement needs to know."""

    x: np.ndarray  # km east of the district centre
    y: np.ndarray  # km north
    iso3: np.ndarray  # "" outside the allowed countries
    border_km: np.ndarray  # distance to the own country's boundary
    coast_km: np.ndarray  # distance to the coast


def _evaluate_sites(d: District, geo: _Geography, x: np.ndarray, y: np.ndarray, frame) -> _Sites:
    lon, lat = frame.to_lonlat(x, y)
    iso = np.full(len(x), "", dtype=object)
    border = np.zeros(len(x))
    for code in d.countries:
        inside = shapely.contains_xy(geo.countries[code], lon, lat)
        iso[inside] = code
        pts = shapely.points(lon[inside], lat[inside])
        border[inside] = shapely.distance(geo.borders[code], pts) * _km_per_degree(lat[inside])
    coast = np.full(len(x), np.inf)
    if d.coastal:
        coast = shapely.distance(geo.coastline, shapely.points(lon, lat)) * _km_per_degree(lat)
    return _Sites(x, y, iso, border, coast)


@dataclass(frozen=True)
class _Frame:
    lon0: float
    lat0: float

    @property
    def kx(self) -> float:
        return C.KM_PER_DEG_LON * np.cos(np.radians(self.lat0))

    def to_lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.lon0 + x / self.kx, self.lat0 + y / C.KM_PER_DEG_LAT


def _draw_sites(rng: np.random.Generator, n: int, radius: float, clusters) -> tuple[np.ndarray, np.ndarray]:
    centres, spreads, weights = clusters
    scatter = rng.uniform(size=n) < C.SCATTER_SHARE
    k = rng.choice(len(weights), size=n, p=weights)
    x = centres[k, 0] + rng.normal(0, 1, n) * spreads[k]
    y = centres[k, 1] + rng.normal(0, 1, n) * spreads[k]
    r, a = radius * np.sqrt(rng.uniform(size=n)), rng.uniform(0, 2 * np.pi, n)
    return np.where(scatter, r * np.cos(a), x), np.where(scatter, r * np.sin(a), y)


def _coastal_sites(rng, d: District, geo: _Geography, frame: _Frame, radius: float, n: int):
    """Sites scattered a few km around points of the coast near the district."""
    radius = radius + C.COAST_SEARCH_KM
    w, e = frame.lon0 - radius / frame.kx, frame.lon0 + radius / frame.kx
    s, nn = frame.lat0 - radius / C.KM_PER_DEG_LAT, frame.lat0 + radius / C.KM_PER_DEG_LAT
    shore = shapely.line_merge(shapely.clip_by_rect(geo.coastline, w, s, e, nn))
    if shore.is_empty or shore.length == 0:
        return np.empty(0), np.empty(0)
    pts = shapely.line_interpolate_point(shore, rng.uniform(0, shore.length, n))
    x = (shapely.get_x(pts) - frame.lon0) * frame.kx + rng.normal(0, _SHORE_JITTER_KM, n)
    y = (shapely.get_y(pts) - frame.lat0) * C.KM_PER_DEG_LAT + rng.normal(0, _SHORE_JITTER_KM, n)
    return x, y


def _cluster_centres(rng, d: District, geo: _Geography, frame: _Frame, radius: float, n: int) -> np.ndarray:
    """``n`` sub-cluster centres (km) within 0.7 of the radius, on land of the district's countries."""
    r, a = 0.7 * radius * np.sqrt(rng.uniform(size=50 * n)), rng.uniform(0, 2 * np.pi, 50 * n)
    x, y = r * np.cos(a), r * np.sin(a)
    on_land = _evaluate_sites(d, geo, x, y, frame).iso3 != ""
    x, y = (x[on_land], y[on_land]) if on_land.sum() >= n else (x, y)
    return np.c_[x[:n], y[:n]]


class _Occupancy:
    """Placed mines as circles in a spatial hash; answers 'does this circle fit?'."""

    def __init__(self) -> None:
        self.cells: dict[tuple[int, int], list[int]] = {}
        self.circles: list[tuple[float, float, float]] = []

    def _keys(self, x: float, y: float, r: float):
        i0, i1 = math.floor((x - r) / _HASH_KM), math.floor((x + r) / _HASH_KM)
        j0, j1 = math.floor((y - r) / _HASH_KM), math.floor((y + r) / _HASH_KM)
        return [(i, j) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]

    def fits(self, x: float, y: float, r: float) -> bool:
        for key in self._keys(x, y, r):
            for k in self.cells.get(key, ()):
                cx, cy, cr = self.circles[k]
                if (x - cx) ** 2 + (y - cy) ** 2 < (r + cr + C.PLACEMENT_GAP_KM) ** 2:
                    return False
        return True

    def add(self, x: float, y: float, r: float) -> None:
        k = len(self.circles)
        self.circles.append((x, y, r))
        for key in self._keys(x, y, r + C.PLACEMENT_GAP_KM):
            self.cells.setdefault(key, []).append(k)


def _place_district(rng, d: District, geo: _Geography, n_large: int, n_small: int, radius: float) -> pd.DataFrame:
    frame = _Frame(d.lon, d.lat)
    areas = np.concatenate([_draw_areas(rng, n_large, 1.0, C.AREA_RANGE_KM2[1]),
                            _draw_areas(rng, n_small, C.AREA_RANGE_KM2[0], 1.0)])
    order = np.argsort(-areas, kind="stable")
    areas = areas[order]
    outlines = _shapes(rng, areas)
    reach = np.sqrt((outlines**2).sum(-1)).max(1)
    n = len(areas)
    coastal = np.zeros(n, bool)
    if d.coastal:
        eligible = np.flatnonzero(areas < C.COASTAL_MAX_AREA_KM2)
        coastal[rng.choice(eligible, size=int(round(C.COASTAL_SHARE * n)), replace=False)] = True
    per_cluster, least, most = C.SUBCLUSTERS
    n_clusters = int(np.clip(round(n / per_cluster), least, most))
    clusters = (_cluster_centres(rng, d, geo, frame, radius, n_clusters),
                radius * rng.uniform(*C.SUBCLUSTER_SPREAD, n_clusters), rng.dirichlet(np.full(n_clusters, _CLUSTER_CONCENTRATION)))
    occ = _Occupancy()
    pools = {False: deque(), True: deque()}
    placed = np.full((n, 2), np.nan)
    iso = np.full(n, "", dtype=object)

    def refill(is_coastal: bool) -> None:
        m = 40 * max(int(coastal.sum()), 1) if is_coastal else 4 * n
        xy = (_coastal_sites(rng, d, geo, frame, radius, m) if is_coastal
              else _draw_sites(rng, m, radius, clusters))
        sites = _evaluate_sites(d, geo, *xy, frame)
        keep = sites.iso3 != ""
        if is_coastal:
            keep &= sites.coast_km < reach.max() + C.COAST_BAND_KM[1]
        cols = (sites.x[keep], sites.y[keep], sites.iso3[keep], sites.border_km[keep], sites.coast_km[keep])
        pools[is_coastal].extend(zip(*(c.tolist() for c in cols), strict=True))

    for k in np.argsort(~coastal, kind="stable"):  # coastal mines first, then by size
        is_coastal, r = bool(coastal[k]), float(reach[k])
        pool, refills, since_refill = pools[is_coastal], 0, 0
        for _ in range(_MAX_TRIES):
            if not pool or since_refill >= len(pool):
                if refills == 2:
                    break
                refill(is_coastal)
                refills, since_refill = refills + 1, 0
                if not pool:
                    break
            x, y, code, border, coast = pool.popleft()
            ok = border >= r + C.BORDER_MARGIN_KM and occ.fits(x, y, r)
            if ok and is_coastal:
                ok = r + C.COAST_BAND_KM[0] <= coast <= r + C.COAST_BAND_KM[1]
            if ok:
                occ.add(x, y, r)
                placed[k], iso[k] = (x, y), code
                break
            pool.append((x, y, code, border, coast))
            since_refill += 1
    done = ~np.isnan(placed[:, 0])
    lon, lat = frame.to_lonlat(placed[done, 0], placed[done, 1])
    kx = C.KM_PER_DEG_LON * np.cos(np.radians(lat))
    ring = outlines[done].copy()
    ring[..., 0] = lon[:, None] + ring[..., 0] / kx[:, None]
    ring[..., 1] = lat[:, None] + ring[..., 1] / C.KM_PER_DEG_LAT
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    return pd.DataFrame({
        "district": d.name, "iso3": iso[done].astype(str), "lon": lon, "lat": lat,
        "coastal": coastal[done], "target_km2": areas[done],
        "geometry": shapely.polygons(ring),
    }).assign(n_failed=int((~done).sum()))


# --- touching pairs and invalid polygons ---------------------------------------------------
def _split(rng, mines: pd.DataFrame) -> pd.DataFrame:
    """Cut TOUCH_SHARE of the mines in two adjacent polygons along a line through the centre."""
    eligible = np.flatnonzero((mines["target_km2"] >= C.SPLIT_MIN_AREA_KM2).values & ~mines["coastal"].values)
    n_large = int((mines["target_km2"] >= 1).sum())
    chosen = np.sort(rng.choice(eligible, size=min(len(eligible), int(round(C.TOUCH_SHARE * n_large))),
                                replace=False))
    angle = rng.uniform(0, np.pi, len(chosen))
    sub = mines.iloc[chosen]
    span = 1.0  # degrees: far beyond any mine
    cx, cy = sub["lon"].values, sub["lat"].values
    dx, dy = np.cos(angle), np.sin(angle)
    nx, ny = -dy, dx  # normal of the cut line
    half = shapely.polygons(np.stack([
        np.c_[cx - span * dx, cy - span * dy], np.c_[cx + span * dx, cy + span * dy],
        np.c_[cx + span * (dx + nx), cy + span * (dy + ny)], np.c_[cx - span * (dx - nx), cy - span * (dy - ny)],
        np.c_[cx - span * dx, cy - span * dy]], axis=1))
    geoms = sub.geometry.values
    a, b = shapely.intersection(geoms, half), shapely.difference(geoms, half)
    first = sub.assign(geometry=a, touching=True)
    second = sub.assign(geometry=b, touching=True)
    rest = mines.drop(index=sub.index).assign(touching=False)
    return pd.concat([rest, first, second], ignore_index=True)


def _bowties(rng, mines: pd.DataFrame, n_invalid: int, bri: set[str]) -> pd.DataFrame:
    """Replace ``n_invalid`` BRI mines by self-intersecting bowties of their oriented envelope."""
    ok = (mines["target_km2"] >= 1.5) & ~mines["touching"] & ~mines["coastal"] & mines["district"].isin(bri)
    chosen = np.sort(rng.choice(np.flatnonzero(ok.values), size=min(n_invalid, int(ok.sum())), replace=False))
    env = shapely.get_coordinates(shapely.oriented_envelope(mines.geometry.values[chosen])).reshape(-1, 5, 2)
    bowtie = shapely.polygons(env[:, [0, 2, 1, 3, 0]])
    out = mines.assign(invalid=False)
    out.loc[out.index[chosen], "geometry"] = bowtie
    out.loc[out.index[chosen], "invalid"] = True
    return out


def geodesic_area_km2(geoms: np.ndarray) -> np.ndarray:
    """Geodesic (WGS84) area of each geometry, km2; invalid ones are made valid first."""
    fixed = shapely.make_valid(np.asarray(geoms))
    return np.array([abs(_GEOD.geometry_area_perimeter(g)[0]) for g in fixed]) / 1e6


# --- entry point -------------------------------------------------------------------------------
def place_mines(p: Preset, seed: int) -> tuple[gpd.GeoDataFrame, dict]:
    """All mine polygons of preset ``p``, with their district and country.

    Parameters
    ----------
    p : Preset
        The world's preset.
    seed : int
        Random seed.

    Returns
    -------
    mines : geopandas.GeoDataFrame
        One row per polygon in mine-id order (``mine_id`` 1..N): ``mine_id,
        district, iso3, country, area_km2`` (geodesic), ``lon, lat``, ``coastal, touching, invalid``, ``geometry``
        (EPSG:4326). ``lon, lat`` is the centroid, where the truth samples
        the indicators.
    report : dict
        Placement counts (failed placements per district).

    Examples
    --------
    >>> from nepkit.synth.presets import PRESETS
    >>> mines, report = place_mines(PRESETS["small"], seed=1)  # doctest: +SKIP
    """
    geo = _geography()
    counts = district_counts(p)
    parts = []
    for i, row in enumerate(counts.itertuples()):
        rng = np.random.default_rng([seed, 101, i])
        parts.append(_place_district(rng, district(row.district), geo, row.n_large, row.n_small, row.radius_km))
    mines = pd.concat(parts, ignore_index=True)
    failed = {part["district"].iloc[0]: int(part["n_failed"].iloc[0]) for part in parts if len(part)}
    rng = np.random.default_rng([seed, 102])
    mines = _split(rng, mines.drop(columns="n_failed"))
    bri_districts = set(counts.loc[counts["bri"], "district"])
    mines = _bowties(rng, mines, p.n_invalid, bri_districts)
    mines = mines.iloc[rng.permutation(len(mines))].reset_index(drop=True)
    mines.insert(0, "mine_id", np.arange(1, len(mines) + 1, dtype=np.int64))
    mines["country"] = mines["iso3"].map(geo.names)
    mines["area_km2"] = geodesic_area_km2(mines.geometry.values)
    centre = shapely.centroid(shapely.make_valid(mines.geometry.values))
    mines["lon"], mines["lat"] = shapely.get_x(centre), shapely.get_y(centre)
    cols = ["mine_id", "district", "iso3", "country", "area_km2", "lon", "lat", "coastal", "touching", "invalid",
            "geometry"]
    gdf = gpd.GeoDataFrame(mines[cols], geometry="geometry", crs="EPSG:4326")
    return gdf, {"failed_placements": failed, "counts": counts.to_dict("records")}
