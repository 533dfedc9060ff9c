"""The presets of the synthetic world (``nepkit synth --preset paper|small``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nepkit.synth.districts import DISTRICTS

__all__ = ["Preset", "PRESETS", "preset"]


@dataclass(frozen=True)
class Preset:
    """Parameters of a synthetic world.

    Attributes
    ----------
    name : str
        ``paper`` or ``small``.
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
    """

    name: str
    n_mines: int
    districts: tuple[str, ...]
    n_invalid: int
    description: str

    def as_dict(self) -> dict:
        """Plain dict (for JSON and the fingerprint)."""
        d = asdict(self)
        d["districts"] = list(self.districts)
        return d


#: The presets. ``paper`` has the paper's scale (about 9,600 mines of at least
#: 1 km2 and 30,000 km2 in 44 districts of 30 BRI countries, plus 5 districts
#: outside the BRI); ``small`` has a few hundred polygons in 4 districts (one of
#: them outside the BRI) and generates in seconds, for tests and quick looks.
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
}


def preset(name: str) -> Preset:
    """The preset called ``name``; a clear error listing the valid ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown synthetic preset {name!r}; use one of: {', '.join(PRESETS)}") from None
