"""Reference rings: distances in metres, mining land excluded, independent of batching."""

from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest
import shapely
from numpy.testing import assert_allclose

from nepkit.rings import crosses_antimeridian, reference_rings

GEOD = pyproj.Geod(ellps="WGS84")


def geodesic_km2(geom: shapely.Geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0]) / 1e6


def square_km(lon: float, lat: float, side_km: float) -> shapely.Polygon:
    """A square of ``side_km`` (geodesic) centred on (lon, lat)."""
    half = side_km / 2 * 1e3
    e, _, _ = GEOD.fwd(lon, lat, 90, half)
    w, _, _ = GEOD.fwd(lon, lat, 270, half)
    _, n, _ = GEOD.fwd(lon, lat, 0, half)
    _, s, _ = GEOD.fwd(lon, lat, 180, half)
    return shapely.box(w, s, e, n)


def band_area_km2(side: float, inner: float, outer: float) -> float:
    """Area between the inner and outer buffers of a square of ``side`` (km)."""

    def buffered(r: float) -> float:
        return side * side + 4 * side * r + math.pi * r * r

    return buffered(outer) - buffered(inner)


@pytest.mark.parametrize("lat", [0.0, 35.0, 65.0])
def test_ring_area_is_the_band_in_km2_at_any_latitude(lat: float) -> None:
    mine = square_km(100.0, lat, 1.0)
    ring = reference_rings([mine], [mine], inner_km=1, outer_km=5)[0]
    assert_allclose(geodesic_km2(ring), band_area_km2(1.0, 1.0, 5.0), rtol=3e-3)


def test_ring_extends_outer_km_in_every_direction_at_high_latitude() -> None:
    mine = square_km(30.0, 65.0, 1.0)
    ring = reference_rings([mine], [], inner_km=1, outer_km=5)[0]
    xmin, ymin, xmax, ymax = ring.bounds
    _, _, width = GEOD.inv(xmin, 65.0, xmax, 65.0)
    _, _, height = GEOD.inv(30.0, ymin, 30.0, ymax)
    # 1 km of mine plus 5 km on each side, east-west as north-south (degrees would halve it)
    assert_allclose([width / 1e3, height / 1e3], [11.0, 11.0], rtol=2e-3)


def test_ring_vertices_lie_between_inner_and_outer_distance() -> None:
    mine = square_km(100.3, 30.3, 1.0)
    ring = reference_rings([mine], [mine], inner_km=1, outer_km=5)[0]
    boundary = shapely.segmentize(mine.exterior, 1e-4)
    mx, my = shapely.get_coordinates(boundary).T
    distances = []
    for x, y in shapely.get_coordinates(ring):
        _, _, d = GEOD.inv(np.full_like(mx, x), np.full_like(my, y), mx, my)
        distances.append(d.min() / 1e3)
    distances = np.array(distances)
    assert distances.min() > 0.99 and distances.max() < 5.01
    assert np.isclose(distances, 5.0, atol=0.01).any() and np.isclose(distances, 1.0, atol=0.01).any()


def test_ring_excludes_every_mining_polygon_including_small_ones() -> None:
    mine = square_km(100.3, 30.3, 1.0)
    neighbour = square_km(100.33, 30.3, 0.5)  # a small polygon (under any area filter) in the band
    far = square_km(101.5, 30.3, 2.0)
    ring = reference_rings([mine], [mine, neighbour, far], inner_km=1, outer_km=5)[0]
    assert ring.intersection(neighbour).area == pytest.approx(0.0, abs=1e-12)
    lone = reference_rings([mine], [mine], inner_km=1, outer_km=5)[0]
    assert_allclose(geodesic_km2(lone) - geodesic_km2(ring), geodesic_km2(neighbour), rtol=1e-3)


def test_inner_zero_starts_at_the_mine_boundary() -> None:
    mine = square_km(10.0, 45.0, 1.0)
    ring = reference_rings([mine], [mine], inner_km=0, outer_km=1)[0]
    assert ring.intersection(mine).area == pytest.approx(0.0, abs=1e-12)
    assert ring.distance(mine) == pytest.approx(0.0, abs=1e-9)
    assert_allclose(geodesic_km2(ring), band_area_km2(1.0, 0.0, 1.0), rtol=3e-3)


def test_ring_of_a_mine_inside_mining_land_is_empty() -> None:
    mine = square_km(100.0, 30.0, 1.0)
    district = square_km(100.0, 30.0, 20.0)
    assert reference_rings([mine], [district, mine], inner_km=1, outer_km=5)[0].is_empty


def test_a_ring_does_not_depend_on_the_other_mines_of_the_batch() -> None:
    rng = np.random.default_rng(3)
    mines = [square_km(x, y, 1.0) for x, y in zip(rng.uniform(100, 103, 30), rng.uniform(30, 32, 30), strict=True)]
    order = np.arange(len(mines))
    together = reference_rings(mines, mines, inner_km=1, outer_km=5)
    for i in (0, 7, 29):
        alone = reference_rings([mines[i]], [mines[j] for j in order[::-1]], inner_km=1, outer_km=5, mining_order=order[::-1])
        assert shapely.to_wkb(alone[0]) == shapely.to_wkb(together[i])


def test_rings_that_wrap_the_antimeridian_are_flagged() -> None:
    rings = reference_rings([square_km(179.99, 65.0, 1.0), square_km(170.0, 65.0, 1.0)], [], inner_km=1, outer_km=5)
    assert crosses_antimeridian(rings).tolist() == [True, False]


def test_inner_must_be_smaller_than_outer() -> None:
    with pytest.raises(ValueError, match="inner_km < outer_km"):
        reference_rings([square_km(0, 0, 1)], [], inner_km=5, outer_km=1)
