"""The presets of the synthetic world: ``paper``, ``small``, and the medium worlds of the validation.

Besides the paper's world and a small one for tests, four *medium* worlds (a
thousand mines in eight districts on five continents) serve the validation
chapter: ``medium`` follows every default, and three harder variants of it,
with the same mines, change a few constants of :mod:`nepkit.synth.constants`
(``Preset.overrides``) to stress one assumption of the method each:

``autocorr``
    stronger spatial autocorrelation: precipitation, soil carbon and
    population vary over four times longer distances, and the site factor of
    the attainable gain that no indicator captures becomes a smooth field (the
    landscape NEP patches, on 50 km and 17 km lattices, enter the gain: an
    omitted, spatially autocorrelated driver);
``nodata``
    more nodata: cloud-like gaps cover 20 % of the NEP pixels each year (1.5 %
    by default) in smaller blobs, and the soil map has 5 % holes (0.4 %);
``weak``
    weaker signal: the NEP product's pixel-year noise is four times larger and
    the driver weights of the attainable gain are 0.4 times the default, so
    the mining effect and the drivers stand out less from the noise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from nepkit.synth import constants as C
from nepkit.synth.districts import DISTRICTS

__all__ = ["Preset", "PRESETS", "HARDER", "preset"]


@dataclass(frozen=True)
class Preset:
    """Parameters of a synthetic world.

    Attributes
    ----------
    name : str
        A key of :data:`PRESETS`.
    n_mines : int
        Target number of mines of at least 1 km2 in Belt and Road countries.
        Each district gets its share (``District.weight``); districts outside
        the Belt and Road list get mines at the same rate (dropped by the BRI
        filter, not counted here). Polygons below 1 km2 come on top
        (``SMALL_PER_MINE`` per mine).
    districts : tuple of str
        Names of the districts (:data:`nepkit.synth.districts.DISTRICTS`).
    n_invalid : int
        Number of self-intersecting ("bowtie") polygons among the BRI mines.
    description : str
        What the preset is for.
    overrides : tuple of (str, object)
        Constants of :mod:`nepkit.synth.constants` replaced while this world is
        generated (name, value); empty for the default worlds.
    """

    name: str
    n_mines: int
    districts: tuple[str, ...]
    n_invalid: int
    description: str
    overrides: tuple[tuple[str, Any], ...] = ()

    def as_dict(self) -> dict:
        """Plain dict (for JSON and the fingerprint); ``overrides`` only when there are some."""
        d = asdict(self)
        d["districts"] = list(self.districts)
        d.pop("overrides")
        if self.overrides:
            d["overrides"] = dict(self.overrides)
        return d

    @contextlib.contextmanager
    def constants(self) -> Iterator[None]:
        """Apply ``overrides`` to :mod:`nepkit.synth.constants` inside the block, restore them after.

        Raises
        ------
        ValueError
            When an override names no constant of the module.

        Examples
        --------
        >>> from nepkit.synth import constants as C
        >>> with PRESETS["nodata"].constants():
        ...     C.CLOUD_SHARE
        0.2
        >>> C.CLOUD_SHARE
        0.015
        """
        unknown = [k for k, _ in self.overrides if k not in C.constants_table()["name"].values]
        if unknown:
            raise ValueError(f"preset {self.name!r} overrides unknown constant(s): {', '.join(unknown)}")
        saved = {k: getattr(C, k) for k, _ in self.overrides}
        try:
            for k, v in self.overrides:
                setattr(C, k, v)
            yield
        finally:
            for k, v in saved.items():
                setattr(C, k, v)


def _longer(octaves: tuple[tuple[float, float], ...], factor: float) -> tuple[tuple[float, float], ...]:
    """Octaves (spacing in degrees, amplitude) with every spacing times ``factor``."""
    return tuple((spacing * factor, amp) for spacing, amp in octaves)


#: Districts of the medium worlds: eight Belt and Road districts on five
#: continents and one district outside the Belt and Road.
MEDIUM_DISTRICTS = ("shanxi", "kuzbass", "silesia", "kalimantan_east", "copperbelt", "witwatersrand",
                    "south_peru", "png_highlands", "pilbara")
_MEDIUM = {"n_mines": 1000, "districts": MEDIUM_DISTRICTS, "n_invalid": 3}

#: The harder variants of ``medium``: the constants each one changes.
HARDER: dict[str, tuple[tuple[str, Any], ...]] = {
    "autocorr": (
        ("PRECIP_OCTAVES", _longer(C.PRECIP_OCTAVES, 4.0)),
        ("SOC_OCTAVES", _longer(C.SOC_OCTAVES, 4.0)),
        ("POP_OCTAVES", _longer(C.POP_OCTAVES, 4.0)),
        ("NEP_PATCH_OCTAVES", ((0.5, 20.0), (0.15, 12.0))),
        ("DRIVER_WEIGHTS", {**C.DRIVER_WEIGHTS, "nep_background": 30.0}),
        ("DRIVER_TRANSFORMS", {**C.DRIVER_TRANSFORMS, "nep_background": "identity"}),
    ),
    "nodata": (
        ("CLOUD_SHARE", 0.2),
        ("CLOUD_SPACING", 0.03),
        ("SOC_HOLE_SHARE", 0.05),
    ),
    "weak": (
        ("NEP_NOISE", (4 * C.NEP_NOISE[0], 4 * C.NEP_NOISE[1])),
        ("DRIVER_WEIGHTS", {k: 0.4 * w for k, w in C.DRIVER_WEIGHTS.items()}),
    ),
}

#: The presets. ``paper`` has the paper's scale (about 9,600 mines of at least
#: 1 km2 and 30,000 km2 in 44 districts of 30 BRI countries, plus 5 districts
#: outside the BRI); ``small`` has a few hundred polygons in 4 districts (one of
#: them outside the BRI) and generates in seconds, for tests and quick looks;
#: ``medium`` and its harder variants (:data:`HARDER`) serve the validation.
PRESETS: dict[str, Preset] = {
    "paper": Preset(
        name="paper",
        n_mines=9600,
        districts=tuple(d.name for d in DISTRICTS),
        n_invalid=8,
        description="the paper's scale: ~9,600 mines >= 1 km2, ~30,000 km2, 2000-2020",
    ),
    "small": Preset(
        name="small",
        n_mines=200,
        districts=("shanxi", "copperbelt", "kalimantan_east", "pilbara"),
        n_invalid=2,
        description="a few hundred mines in four districts, for tests (seconds)",
    ),
    "medium": Preset(
        name="medium", **_MEDIUM,
        description="a thousand mines in eight BRI districts on five continents: the harder worlds' baseline",
    ),
    "autocorr": Preset(
        name="autocorr", **_MEDIUM, overrides=HARDER["autocorr"],
        description="medium, with smoother drivers and a spatially autocorrelated site factor of the gain",
    ),
    "nodata": Preset(
        name="nodata", **_MEDIUM, overrides=HARDER["nodata"],
        description="medium, with 20 % of the NEP pixels and 5 % of the soil map missing",
    ),
    "weak": Preset(
        name="weak", **_MEDIUM, overrides=HARDER["weak"],
        description="medium, with 4x the NEP noise and 0.4x the driver weights",
    ),
}


def preset(name: str) -> Preset:
    """The preset called ``name``; a clear error listing the valid ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown synthetic preset {name!r}; use one of: {', '.join(PRESETS)}") from None
