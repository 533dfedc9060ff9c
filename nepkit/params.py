"""The run parameters: one typed definition shared by notebooks and the CLI.

Every chapter notebook begins with a papermill ``parameters`` cell holding the
fields of :class:`RunParams` with their defaults; the next cell calls
:func:`from_notebook` which validates them at once. Papermill only *warns* about
an unknown parameter name; :func:`from_notebook` fails on it.

Examples
--------
>>> from nepkit.params import RunParams
>>> p = RunParams(region="Africa", ring_outer_km=4.0)
>>> p.run_path.name
'Africa'
>>> RunParams(ring_inner_km=5, ring_outer_km=2)
Traceback (most recent call last):
...
nepkit.params.ParameterError: ring_inner_km (5.0) must be smaller than ring_outer_km (2.0)
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from nepkit.paths import PROJECT_ROOT, RUNS_DIR

__all__ = [
    "ParameterError",
    "RunParams",
    "from_notebook",
    "run_dir_for",
    "YEAR_MIN",
    "YEAR_MAX",
]

#: The period the paper (and the NEP product) covers, inclusive.
YEAR_MIN, YEAR_MAX = 2000, 2020

ClassifyBy = Literal["final", "mean", "trend"]
PotentialDefinition = Literal["gap", "predicted"]
#: The synthetic worlds (:data:`nepkit.synth.PRESETS`; the harder ones serve the validation).
SyntheticPreset = Literal["paper", "small", "medium", "autocorr", "nodata", "weak"]


class ParameterError(ValueError):
    """A run parameter is unknown, of the wrong type or out of range."""


def run_dir_for(region: str) -> Path:
    """Default run directory of ``region``: ``runs/<region>`` with spaces as ``_``."""
    return RUNS_DIR / region.strip().replace(" ", "_").replace(",", "+")


@dataclass(frozen=True)
class RunParams:
    """Everything a run is given (DESIGN.md section 4).

    Parameters
    ----------
    region : str
        ``all``, a continent, a Natural Earth subregion, or comma-separated ISO3
        codes (see :func:`nepkit.regions.select`).
    sources : str
        ``synthetic`` (the embedded world, generated on demand) or the path of a
        ``sources.yml`` manifest of real data.
    seed : int
        Seed of every random step (synthetic world, sampling, forests).
    years : list of int
        ``[first, last]``, inclusive, inside 2000-2020.
    baseline_year : int or None
        The reference year of equations 1-2; ``None`` means the first year.
    ring_inner_km, ring_outer_km : float
        The reference ring's band around each mine, km.
    min_ring_pixels : int
        A ring needs at least this many valid pixels (coverage-weighted) or the
        mine is excluded and counted.
    min_area_km2 : float
        Mines smaller than this (geodesic km2) are dropped; the paper uses 1.
    classify_by : {"final", "mean", "trend"}
        Statistic that classifies a mine as losing or gaining over the period:
        the final year's loss, the mean loss over years after the baseline, or a
        Theil-Sen trend times the period length.
    gain_threshold : float
        NEP gain (g C m-2 a-1) above which a mine enters the training sample.
    n_sample : int
        At most this many training mines, drawn at random (paper: 2,000).
    test_fraction : float
        Held-out share of the sample (paper: 0.15).
    cv_folds : int
        Folds of the cross-validated hyper-parameter search (paper: 3).
    potential_definition : {"gap", "predicted"}
        ``gap``: max(0, predicted attainable gain - observed gain);
        ``predicted``: the predicted attainable gain itself.
    cpi_threshold : float
        Association threshold of conditional permutation importance.
    scheduler : str or None
        Address of a Dask scheduler; ``None`` starts a local cluster.
    n_workers : int
        Workers of the local Dask cluster.
    synthetic_preset : {"paper", "small", "medium", "autocorr", "nodata", "weak"}
        Preset of the synthetic world when ``sources == "synthetic"``.
    run_dir : str
        Folder of the run's artifacts; empty means ``runs/<region>``.
    """

    region: str = "all"
    sources: str = "synthetic"
    seed: int = 42
    years: list[int] = field(default_factory=lambda: [YEAR_MIN, YEAR_MAX])
    baseline_year: int | None = None
    ring_inner_km: float = 1.0
    ring_outer_km: float = 5.0
    min_ring_pixels: int = 10
    min_area_km2: float = 1.0
    classify_by: ClassifyBy = "mean"
    gain_threshold: float = 100.0
    n_sample: int = 2000
    test_fraction: float = 0.15
    cv_folds: int = 3
    potential_definition: PotentialDefinition = "gap"
    cpi_threshold: float = 0.95
    scheduler: str | None = None
    n_workers: int = 2
    synthetic_preset: SyntheticPreset = "paper"
    run_dir: str = ""

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        self._check_ranges()
        from nepkit.regions import select  # local import: regions imports nothing from here

        select(self.region)  # raises RegionError listing the valid names
        if not self.run_dir:
            object.__setattr__(self, "run_dir", str(run_dir_for(self.region)))

    def _check_ranges(self) -> None:
        if self.seed < 0:
            raise ParameterError(f"seed must be a non-negative integer, got {self.seed}")
        if len(self.years) != 2 or self.years[0] >= self.years[1]:
            raise ParameterError(f"years must be [first, last] with first < last, got {self.years}")
        for y in self.years:
            if not YEAR_MIN <= y <= YEAR_MAX:
                raise ParameterError(f"years must lie inside {YEAR_MIN}-{YEAR_MAX}, got {y}")
        if self.baseline_year is not None and not self.years[0] <= self.baseline_year < self.years[1]:
            raise ParameterError(
                f"baseline_year ({self.baseline_year}) must lie in [{self.years[0]}, {self.years[1]})"
            )
        if self.ring_inner_km < 0:
            raise ParameterError(f"ring_inner_km must be >= 0, got {self.ring_inner_km}")
        if self.ring_inner_km >= self.ring_outer_km:
            raise ParameterError(
                f"ring_inner_km ({self.ring_inner_km}) must be smaller than "
                f"ring_outer_km ({self.ring_outer_km})"
            )
        if self.ring_outer_km > 50:
            raise ParameterError(f"ring_outer_km must be at most 50 km, got {self.ring_outer_km}")
        _positive(self, "min_area_km2", "gain_threshold", "n_sample", "min_ring_pixels", "n_workers")
        for name in ("test_fraction", "cpi_threshold"):
            value = getattr(self, name)
            if not 0 < value < 1 and not (name == "cpi_threshold" and value == 1):
                raise ParameterError(f"{name} must lie in (0, 1), got {value}")
        if self.cv_folds < 2:
            raise ParameterError(f"cv_folds must be at least 2, got {self.cv_folds}")
        if self.sources != "synthetic" and Path(self.sources).suffix not in (".yml", ".yaml"):
            raise ParameterError(
                f"sources must be 'synthetic' or the path of a sources.yml manifest, got {self.sources!r}"
            )

    @property
    def baseline(self) -> int:
        """The baseline year (``baseline_year`` or the first year)."""
        return self.years[0] if self.baseline_year is None else self.baseline_year

    @property
    def year_range(self) -> list[int]:
        """Every year of the run, inclusive."""
        return list(range(self.years[0], self.years[1] + 1))

    @property
    def run_path(self) -> Path:
        """``run_dir`` as an absolute path (relative ones are taken from the project root)."""
        path = Path(self.run_dir)
        return path if path.is_absolute() else PROJECT_ROOT / path

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a JSON-ready dict (for ``summary.json`` and papermill)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> RunParams:
        """A copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunParams:
        """Build from a mapping, failing on unknown names with the list of known ones."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(cls.names())}"
            )
        return cls(**values)

    @classmethod
    def names(cls) -> list[str]:
        """The parameter names, in definition order."""
        return [f.name for f in fields(cls)]


def _positive(params: RunParams, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if value <= 0:
            raise ParameterError(f"{name} must be positive, got {value}")


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the type ``hint``; accept ints for floats."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (types.UnionType,) or str(origin) == "typing.Union":
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0])
    if origin is Literal:
        if value not in args:
            raise ParameterError(f"{name} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ParameterError(f"{name} must be a list, got {type(value).__name__} {value!r}")
        return [_coerce(name, v, args[0]) for v in value]
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"{name} must be a number, got {type(value).__name__} {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ParameterError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
        return int(value)
    if hint is str:
        if not isinstance(value, (str, Path)):
            raise ParameterError(f"{name} must be a string, got {type(value).__name__} {value!r}")
        return str(value)
    return value


_NOTEBOOK_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def from_notebook(namespace: dict[str, Any]) -> RunParams:
    """Validate the parameters of a chapter notebook from its global namespace.

    Call it in the cell right after the ``parameters`` cell (and papermill's
    injected one): every public, non-module global defined by then must be a
    known parameter, so a misspelt ``-p`` name fails here instead of being
    silently ignored.
    """
    values = {
        k: v
        for k, v in namespace.items()
        if not k.startswith("_") and k not in _NOTEBOOK_NAMES and not isinstance(v, types.ModuleType)
        and not callable(v)
    }
    return RunParams.from_dict(values)
