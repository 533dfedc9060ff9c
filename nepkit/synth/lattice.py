"""Seamless, deterministic random fields on the global longitude-latitude grid.

Every smooth field of the synthetic world is a sum of *octaves*: values on a
regular lattice of nodes (spacing ``s`` degrees, node ``(i, j)`` at longitude
``i * s`` and latitude ``j * s``) smoothed by a cubic B-spline. A node's value
is a pure function of ``(seed, key, i, j)`` (a SplitMix64 hash turned into a
standard normal), so any window of any grid, at any resolution, and any set of
points sees the same field: tiles join without seams and the covariate rasters,
the NEP rasters and the per-mine truth agree. Grids are evaluated with sparse
separable weight matrices (exact and deterministic: no BLAS reductions).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtri

__all__ = ["Grid", "Points", "NodeValues", "normal_nodes", "key_hash", "noise"]

#: Node values: a function of integer node indices ``(i, j)`` (broadcast arrays).
NodeValues = Callable[[np.ndarray, np.ndarray], np.ndarray]

_M64 = (1 << 64) - 1
# Mean over a cell of the summed squared cubic B-spline weights in 1-D is
# 151/315; the 2-D field of unit-variance nodes has variance (151/315)**2 on
# average, so this factor restores unit variance (to within +-4 % across a cell).
_UNIT_VARIANCE = 315.0 / 151.0


def _splitmix_int(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def key_hash(seed: int, key: str) -> int:
    """A 64-bit stream identifier for ``(seed, key)``."""
    digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return _splitmix_int(_splitmix_int(seed & _M64) ^ digest)


def normal_nodes(seed: int, key: str) -> NodeValues:
    """Independent standard-normal node values for the stream ``(seed, key)``."""
    k = np.uint64(key_hash(seed, key))

    def values(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        iu = np.asarray(i, dtype=np.int64).view(np.uint64)
        ju = np.asarray(j, dtype=np.int64).view(np.uint64)
        h = _splitmix(_splitmix(iu ^ k) ^ ju)
        u = ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
        return ndtri(u)

    return values


def _bspline_weights(t: np.ndarray) -> np.ndarray:
    """Cubic B-spline weights of the nodes ``i-1 .. i+2`` for offsets ``t`` in [0, 1)."""
    t2, t3 = t * t, t * t * t
    return np.stack(
        [(1 - t) ** 3 / 6, (3 * t3 - 6 * t2 + 4) / 6, (-3 * t3 + 3 * t2 + 3 * t + 1) / 6, t3 / 6], axis=-1
    )


@functools.lru_cache(maxsize=64)
def _axis(first_cell: int, n: int, per_degree: int, origin: float, sign: int,
          spacing: float) -> tuple[sp.csr_matrix, int]:
    """Sparse (n x n_nodes) B-spline interpolation matrix of one grid axis, and its first node.

    Cell ``k`` of the axis has its centre at ``origin + sign * (first_cell + k + 0.5) / per_degree``.
    """
    coords = origin + sign * (first_cell + np.arange(n) + 0.5) / per_degree
    u = coords / spacing
    base = np.floor(u).astype(np.int64)
    first = int(base.min()) - 1
    n_nodes = int(base.max()) + 3 - first
    rows = np.repeat(np.arange(n), 4)
    cols = (base[:, None] - 1 - first + np.arange(4)).ravel()
    return sp.csr_matrix((_bspline_weights(u - base).ravel(), (rows, cols)), shape=(n, n_nodes)), first


@dataclass(frozen=True)
class Grid:
    """A window of the global grid with ``per_degree`` cells per degree.

    Cell ``(row, col)`` of the global grid spans longitudes
    ``-180 + col / per_degree`` to ``-180 + (col + 1) / per_degree`` and
    latitudes ``90 - (row + 1) / per_degree`` to ``90 - row / per_degree``.
    """

    row0: int
    col0: int
    nrows: int
    ncols: int
    per_degree: int

    @property
    def lon(self) -> np.ndarray:
        """Cell-centre longitudes (ncols,), degrees."""
        return -180.0 + (self.col0 + np.arange(self.ncols) + 0.5) / self.per_degree

    @property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes (nrows, 1), degrees (broadcasts against fields)."""
        return (90.0 - (self.row0 + np.arange(self.nrows) + 0.5) / self.per_degree)[:, None]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nrows, self.ncols)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        p = self.per_degree
        return (
            -180.0 + self.col0 / p,
            90.0 - (self.row0 + self.nrows) / p,
            -180.0 + (self.col0 + self.ncols) / p,
            90.0 - self.row0 / p,
        )

    def sample(self, nodes: NodeValues, spacing: float) -> np.ndarray:
        """The B-spline field of ``nodes`` (lattice ``spacing`` degrees) at cell centres."""
        wx, ix = _axis(self.col0, self.ncols, self.per_degree, -180.0, 1, spacing)
        wy, iy = _axis(self.row0, self.nrows, self.per_degree, 90.0, -1, spacing)
        jj, ii = np.meshgrid(iy + np.arange(wy.shape[1]), ix + np.arange(wx.shape[1]), indexing="ij")
        return np.asarray((wx @ (wy @ nodes(ii, jj)).T).T)


@dataclass(frozen=True)
class Points:
    """Arbitrary points (e.g. mine centroids); fields come back as 1-D arrays."""

    lon: np.ndarray
    lat: np.ndarray

    def sample(self, nodes: NodeValues, spacing: float) -> np.ndarray:
        """The B-spline field of ``nodes`` (lattice ``spacing`` degrees) at the points."""
        ux, uy = np.asarray(self.lon) / spacing, np.asarray(self.lat) / spacing
        bx, by = np.floor(ux).astype(np.int64), np.floor(uy).astype(np.int64)
        wx, wy = _bspline_weights(ux - bx), _bspline_weights(uy - by)
        offs = np.arange(-1, 3)
        ii = bx[:, None, None] + offs[None, None, :]
        jj = by[:, None, None] + offs[None, :, None]
        values = nodes(np.broadcast_to(ii, (len(bx), 4, 4)), np.broadcast_to(jj, (len(bx), 4, 4)))
        return np.einsum("nji,nj,ni->n", values, wy, wx)


def noise(sampler: Grid | Points, seed: int, key: str, spacing: float) -> np.ndarray:
    """Unit-variance smooth noise of correlation length ~``spacing`` degrees."""
    return sampler.sample(normal_nodes(seed, key), spacing) * _UNIT_VARIANCE
