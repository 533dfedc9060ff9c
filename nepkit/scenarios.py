"""Restoration scenarios: the paper's section 3.2 (Figure 10) made computable.

Chen et al. (2025) recommend, qualitatively, three restoration strategies for the
mines of the Belt and Road partners: accelerated natural recovery where potential is
high and conditions good (South America, Oceania); soil reconstruction with assisted
revegetation where potential is low and soils degraded (Europe, South-east Asia);
drought-tolerant planting followed by natural recovery in arid Africa. This module
turns them into projections of the carbon they would sequester over business as usual.

The strategies and their parameters live in ``data/scenarios.yml`` (each with its
unit and source); :func:`load_config` validates the file and refuses a malformed
strategy with a message naming the strategy, the field and the fix.

The projection model
--------------------
For a strategy with yearly share ``s`` (a-1), start year ``y_s``, ramp ``r`` and
years to the attainable gain ``T`` (a):

* **Restored share, an expected value.** From ``y_s`` on, a share ``s`` of the mines
  of the strategy's regions is restored each year until all are: the cumulative
  share restored by the end of year ``y`` is ``C(y) = min(s (y - y_s + 1), 1)`` and
  the cohort restored in year ``y0`` is ``c(y0) = C(y0) - C(y0 - 1)``. Every mine
  carries the same expected restored share; no random draw decides which mines are
  restored, so the projection is deterministic.
* **Ramp.** A mine restored in year ``y0`` gains ``potential * r(a)`` g C m-2 a-1
  over business as usual in year ``t``, with age ``a = t - y0 + 1`` (the restoration
  year is age 1). With ``x = clip(a / T, 0, 1)`` and ``k`` the shape parameter
  (``ramp_k``):

  - linear: ``r = x``;
  - exponential (saturating): ``r = (1 - exp(-k x)) / (1 - exp(-k))``, i.e.
    ``1 - exp(-a / tau)`` with ``tau = T / k``, scaled to reach 1 at ``a = T``
    (default ``k = 3``: the unscaled curve is at 95 % by ``T``);
  - logistic (sigmoid): ``r = (L(x) - L(0)) / (L(1) - L(0))`` with
    ``L(x) = 1 / (1 + exp(-k (x - 1/2)))`` (default ``k = 10``; ``r(T / 2) = 1/2``).

  Every shape is 0 at age 0, reaches exactly 1 at ``a = T`` and stays there: the
  gain saturates at the attainable gain (the mine's potential).
* **Restored fraction.** The expected fraction of the full gain reached in year
  ``t`` is ``F(t) = sum over y0 <= t of c(y0) r(t - y0 + 1)``
  (:func:`restored_fraction`).
* **Per mine and year.** Mine ``i`` (potential ``p_i`` g C m-2 a-1, area ``A_i`` km2)
  gains ``g_i(t) = p_i * 1e6 A_i * F(t)`` g C a-1. Summed over a region's mines and
  divided by 1e9 this is Gg C a-1; cumulated over the years from the horizon's
  first year it is Gg C; times ``1e3 * 44 / 12`` it is t CO2 equivalent
  (1 Gg = 1,000 t; 44/12 is the mass ratio of CO2 to C). As ``F`` is common to the
  mines of a strategy, the region's sum is ``F(t)`` times the sum of ``p_i A_i``.
* **Uncertainty.** The band replaces ``p_i`` by the lower and upper bounds of its
  prediction interval (``potential_lo``, ``potential_hi``). Summing per-mine bounds
  assumes the errors of all mines move together (fully correlated): the band is
  wider than one with independent errors and bounds the model's uncertainty from
  above; it ignores the uncertainty of the strategy parameters themselves.

Mines without a potential (missing or NaN) are excluded and counted. What the model
leaves out: continued NEP loss under business as usual (the gain is measured
against it, whatever it does), climate change, and mines opened or closed after
2020.

Examples
--------
>>> from nepkit import scenarios
>>> cfg = scenarios.load_config()
>>> sorted(cfg.scenarios)[:2]
['accelerated_natural_recovery', 'business_as_usual']
>>> s = cfg.scenarios["soil_reconstruction"]
>>> round(float(scenarios.ramp(10, s.ramp, s.years_to_attainable, k=s.ramp_k)), 6)
0.5
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import yaml

from nepkit import regions as _regions
from nepkit.artifacts import paper_reported, read_artifact
from nepkit.io import update_summary, write_table
from nepkit.params import RunParams
from nepkit.paths import DATA_DIR

__all__ = [
    "ScenarioError",
    "Scenario",
    "Aridity",
    "AssignmentRule",
    "ScenarioConfig",
    "ScenariosResult",
    "SCENARIOS_YML",
    "SCENARIOS_CSV",
    "RAMPS",
    "load_config",
    "load_scenarios",
    "describe_strategies",
    "ramp",
    "restored_fraction",
    "to_tco2e",
    "add_aridity",
    "project",
    "paper_assignment",
    "assign_strategies",
    "totals_table",
    "compare_with_paper",
    "run",
]

#: The shipped strategy definitions.
SCENARIOS_YML = DATA_DIR / "scenarios.yml"
#: The projection table written into the run directory.
SCENARIOS_CSV = "scenarios.csv"
#: Ramp shapes and their default shape parameter ``k`` (dimensionless).
RAMPS = ("linear", "exponential", "logistic")
DEFAULT_RAMP_K = {"exponential": 3.0, "logistic": 10.0}
#: Unit conversions: g per Gg, t per Gg, m2 per km2, mass of CO2 per mass of C.
G_PER_GG, T_PER_GG, M2_PER_KM2, CO2_PER_C = 1e9, 1e3, 1e6, 44.0 / 12.0
#: Units of the numeric parameters of ``scenarios.yml`` (fixed).
UNITS = {
    "share_per_year": "a-1",
    "years_to_attainable": "a",
    "ramp_k": "1",
    "start_year": "year",
    "first_year": "year",
    "last_year": "year",
    "report_years": "year",
    "precip_max": "mm a-1",
    "spei_max": "1",
    "arid_share_min": "1",
    "high_potential_min": "g C m-2 a-1",
}
_STRATEGY_FIELDS = {
    "label": True,
    "description": False,
    "regions": True,
    "arid_only": False,
    "share_per_year": True,
    "years_to_attainable": True,
    "ramp": True,
    "ramp_k": False,
    "start_year": False,
}
_TOP_FIELDS = ("horizon", "report_years", "baseline", "aridity", "assignment", "strategies")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PROJECTION_COLUMNS = [
    "region", "strategy", "year", "n_mines", "annual_GgC", "cumulative_GgC", "lo", "hi", "cumulative_tCO2e",
]


class ScenarioError(ValueError):
    """A malformed strategy definition or an unusable input table."""


@dataclass(frozen=True)
class Scenario:
    """One restoration strategy (a ``strategies`` entry of ``scenarios.yml``).

    Attributes
    ----------
    name : str
        Key in the file (lower case, underscores).
    label : str
        Readable name.
    regions : tuple of str
        Region selectors (:func:`nepkit.regions.select`) the paper assigns it to.
    share_per_year : float
        Share of the regions' mines restored each year, a-1, in [0, 1].
    years_to_attainable : float
        Years from restoration until the attainable gain is reached, a (> 0).
    ramp : str
        One of :data:`RAMPS`.
    ramp_k : float or None
        Shape parameter of the exponential or logistic ramp (dimensionless).
    start_year : int or None
        First year of restoration; ``None`` is the horizon's first year.
    arid_only : bool
        Restrict the paper's regions to arid mines (``aridity`` section).
    description : str
        What the strategy does.
    sources : dict
        Parameter name to the stated source or rationale.
    """

    name: str
    label: str
    regions: tuple[str, ...]
    share_per_year: float
    years_to_attainable: float
    ramp: str
    ramp_k: float | None = None
    start_year: int | None = None
    arid_only: bool = False
    description: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Aridity:
    """When a mine counts as arid: ``precip < precip_max`` (mm a-1) or ``spei < spei_max``."""

    precip_max: float
    spei_max: float


@dataclass(frozen=True)
class AssignmentRule:
    """The data-driven assignment per subregion (``assignment`` section of the file).

    Attributes
    ----------
    arid_share_min : float
        Share of arid mines (0-1) from which a subregion counts as arid.
    high_potential_min : float
        Mean potential (g C m-2 a-1) from which a subregion's potential is high.
    arid, high, low : str
        The strategies of arid, high-potential and low-potential subregions.
    """

    arid_share_min: float
    high_potential_min: float
    arid: str
    high: str
    low: str


@dataclass(frozen=True)
class ScenarioConfig:
    """Everything ``scenarios.yml`` defines."""

    scenarios: dict[str, Scenario]
    baseline: str
    years: tuple[int, ...]
    report_years: tuple[int, ...]
    aridity: Aridity
    assignment: AssignmentRule
    path: Path

    @property
    def labels(self) -> dict[str, str]:
        """Strategy name to label, in file order."""
        return {k: s.label for k, s in self.scenarios.items()}


# ----------------------------------------------------------------------------- loading


def _error(where: str, name: str, problem: str, fix: str) -> ScenarioError:
    return ScenarioError(f"{where}, field '{name}': {problem}; {fix}")


def _entry(block: Mapping[str, Any], where: str, name: str, *, required: bool = True) -> tuple[Any, str] | None:
    """The ``value`` and ``source`` of parameter ``name``, its ``unit`` checked."""
    unit = UNITS.get(name)
    hint = f"{{value: ..., {f'unit: {unit!r}, ' if unit else ''}source: '<where it comes from>'}}"
    if name not in block:
        if required:
            raise _error(where, name, "missing", f"add {name}: {hint}")
        return None
    entry = block[name]
    if not isinstance(entry, dict) or "value" not in entry:
        raise _error(where, name, f"must be a mapping with 'value', got {entry!r}", f"write {name}: {hint}")
    extra = sorted(set(entry) - {"value", "unit", "source"})
    if extra:
        raise _error(where, name, f"unknown key(s) {', '.join(extra)}", "keep only value, unit and source")
    if not isinstance(entry.get("source"), str) or not entry["source"].strip():
        raise _error(where, name, "has no source", "add source: '<where the value comes from, or why it was chosen>'")
    if unit is None and "unit" in entry:
        raise _error(where, name, "takes no unit", "remove its unit")
    if unit is not None and str(entry.get("unit")) != unit:
        raise _error(
            where, name, f"unit {entry.get('unit')!r} is not the expected {unit!r}",
            f"give the value in {unit} and write unit: {unit!r}",
        )
    return entry["value"], entry["source"]


def _number(value: Any, where: str, name: str, *, lo: float, hi: float, fix: str, integer: bool = False) -> float:
    """``value`` as a float (or int) inside ``[lo, hi]``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        kind = "an integer" if integer else "a number"
        raise _error(where, name, f"must be {kind}, got {value!r}", fix)
    if not lo <= value <= hi:
        raise _error(where, name, f"{value!r} lies outside {lo:g}-{hi:g}", fix)
    return int(value) if integer else float(value)


def _region_list(value: Any, where: str) -> tuple[str, ...]:
    """Validated region selectors; no country may appear twice."""
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise _error(where, "regions", f"must be a list of region names, got {value!r}", "write value: [Europe, South-Eastern Asia]")
    seen: dict[str, str] = {}
    for region in value:
        try:
            codes = _regions.select(region)
        except _regions.RegionError as exc:
            raise _error(where, "regions", str(exc), "use one of the names listed") from None
        both = sorted(c for c in codes if c in seen)
        if both:
            raise _error(
                where, "regions", f"{region!r} overlaps {seen[both[0]]!r} ({', '.join(both[:5])})",
                "list each country once: drop one of the two regions",
            )
        seen.update(dict.fromkeys(codes, region))
    return tuple(value)


def _scenario(name: Any, block: Any, path: Path) -> Scenario:
    where = f"{path.name}: scenario {name!r}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise ScenarioError(f"{where}: the name must be lower case letters, digits and underscores, e.g. 'my_strategy'")
    if not isinstance(block, dict):
        raise ScenarioError(f"{where}: must be a mapping of fields ({', '.join(_STRATEGY_FIELDS)}), got {block!r}")
    unknown = sorted(set(block) - set(_STRATEGY_FIELDS))
    if unknown:
        raise _error(where, unknown[0], "unknown field", f"known fields: {', '.join(_STRATEGY_FIELDS)} (check the spelling)")
    if not isinstance(block.get("label"), str) or not block["label"].strip():
        raise _error(where, "label", f"missing or not a text: {block.get('label')!r}", "add label: <readable name>")
    if not isinstance(block.get("description", ""), str):
        raise _error(where, "description", f"must be a text, got {block['description']!r}", "write description: <text>")
    values = {}
    for key, required in _STRATEGY_FIELDS.items():
        if key not in ("label", "description") and (entry := _entry(block, where, key, required=required)):
            values[key] = entry
    shape = values["ramp"][0]
    if shape not in RAMPS:
        raise _error(where, "ramp", f"unknown shape {shape!r}", f"use one of {', '.join(RAMPS)}")
    ramp_k = None
    if "ramp_k" in values:
        if shape == "linear":
            raise _error(where, "ramp_k", "has no effect on a linear ramp", "remove it or choose an exponential or logistic ramp")
        ramp_k = _number(values["ramp_k"][0], where, "ramp_k", lo=1e-6, hi=1e3, fix="give a positive shape parameter, e.g. 3")
    arid_only = values.get("arid_only", (False, ""))[0]
    if not isinstance(arid_only, bool):
        raise _error(where, "arid_only", f"must be true or false, got {arid_only!r}", "write value: true")
    start = values.get("start_year", (None, ""))[0]
    return Scenario(
        name=name,
        label=block["label"],
        regions=_region_list(values["regions"][0], where),
        share_per_year=_number(values["share_per_year"][0], where, "share_per_year", lo=0, hi=1,
                               fix="give the fraction of the regions' mines restored per year, e.g. 0.05 for 5 % a year"),
        years_to_attainable=_number(values["years_to_attainable"][0], where, "years_to_attainable", lo=1e-6, hi=1000,
                                    fix="give the years until the attainable gain is reached, e.g. 10"),
        ramp=shape,
        ramp_k=ramp_k,
        start_year=None if start is None else _number(start, where, "start_year", lo=1900, hi=2200, integer=True,
                                                      fix="give a calendar year, e.g. 2025"),
        arid_only=arid_only,
        description=" ".join(block.get("description", "").split()),
        sources={k: v[1] for k, v in values.items()},
    )


def _check_overlaps(scenarios: Mapping[str, Scenario], path: Path) -> None:
    """A country may belong to one strategy's regions only (a mine follows one strategy)."""
    owner: dict[str, str] = {}
    for s in scenarios.values():
        for region in s.regions:
            for code in _regions.select(region):
                if code in owner and owner[code] != s.name:
                    raise _error(
                        f"{path.name}: scenario {s.name!r}", "regions",
                        f"{region!r} overlaps the regions of scenario {owner[code]!r} (e.g. {code})",
                        "a mine follows one strategy: remove the region from one of them",
                    )
                owner[code] = s.name


def _section(raw: Mapping[str, Any], name: str, path: Path) -> Mapping[str, Any]:
    block = raw.get(name)
    if not isinstance(block, dict):
        raise ScenarioError(f"{path.name}: section '{name}' is missing or not a mapping; copy it from {SCENARIOS_YML}")
    return block


def _strategy_name(value: Any, where: str, name: str, scenarios: Mapping[str, Scenario]) -> str:
    if value not in scenarios:
        raise _error(where, name, f"{value!r} is not a strategy of the file", f"use one of {', '.join(scenarios)}")
    return value


def _horizon(raw: Mapping[str, Any], path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    where = f"{path.name}: section 'horizon'"
    block = _section(raw, "horizon", path)
    fix = "give a calendar year between 2000 and 2200"
    first = _number(_entry(block, where, "first_year")[0], where, "first_year", lo=2000, hi=2200, integer=True, fix=fix)
    last = _number(_entry(block, where, "last_year")[0], where, "last_year", lo=first, hi=2200, integer=True,
                   fix=f"give a year after first_year ({first})")
    report = _entry(raw, f"{path.name}: top level", "report_years")[0]
    if not isinstance(report, list) or not report:
        raise _error(f"{path.name}: top level", "report_years", f"must be a list of years, got {report!r}", "write value: [2030, 2040, 2060]")
    report = [_number(y, f"{path.name}: top level", "report_years", lo=first, hi=last, integer=True,
                      fix=f"give years inside the horizon {first}-{last}") for y in report]
    return tuple(range(first, last + 1)), tuple(sorted(set(report)))


def _rules(raw: Mapping[str, Any], path: Path, scenarios: Mapping[str, Scenario]) -> tuple[Aridity, AssignmentRule]:
    where = f"{path.name}: section 'aridity'"
    block = _section(raw, "aridity", path)
    aridity = Aridity(
        precip_max=_number(_entry(block, where, "precip_max")[0], where, "precip_max", lo=0, hi=1e4,
                           fix="give annual precipitation in mm a-1, e.g. 500"),
        spei_max=_number(_entry(block, where, "spei_max")[0], where, "spei_max", lo=-10, hi=10,
                         fix="give a SPEI value (standard deviations), e.g. -0.5"),
    )
    where = f"{path.name}: section 'assignment'"
    block = _section(raw, "assignment", path)
    rule = AssignmentRule(
        arid_share_min=_number(_entry(block, where, "arid_share_min")[0], where, "arid_share_min", lo=0, hi=1,
                               fix="give a share between 0 and 1, e.g. 0.5"),
        high_potential_min=_number(_entry(block, where, "high_potential_min")[0], where, "high_potential_min",
                                   lo=0, hi=1e4, fix="give a potential in g C m-2 a-1, e.g. 10.8"),
        **{k: _strategy_name(block.get(k), where, k, scenarios) for k in ("arid", "high", "low")},
    )
    return aridity, rule


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ScenarioError(f"{path} does not exist; copy {SCENARIOS_YML} and edit it")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path.name} is not valid YAML ({exc}); fix the indentation or quoting there") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path.name} must be a mapping with sections {', '.join(_TOP_FIELDS)}")
    unknown = sorted(set(raw) - set(_TOP_FIELDS))
    if unknown:
        raise ScenarioError(f"{path.name}: unknown section(s) {', '.join(unknown)}; known: {', '.join(_TOP_FIELDS)}")
    return raw


def load_config(path: str | os.PathLike[str] | None = None) -> ScenarioConfig:
    """Read and validate a strategy file.

    Parameters
    ----------
    path : path-like, optional
        A ``scenarios.yml``; default the shipped :data:`SCENARIOS_YML`.

    Returns
    -------
    ScenarioConfig
        The strategies (in file order), the baseline, the horizon's years, the
        report years, the aridity definition and the assignment rule.

    Raises
    ------
    ScenarioError
        For any malformed entry: a missing parameter, a wrong unit, a share outside
        0-1, an unknown ramp or region, regions of two strategies that overlap, a
        baseline that restores anything. The message names the strategy (or
        section), the field and the fix.

    Examples
    --------
    >>> cfg = load_config()
    >>> cfg.years[0], cfg.years[-1], cfg.report_years
    (2021, 2060, (2030, 2040, 2060))
    """
    path = Path(path) if path else SCENARIOS_YML
    raw = _read_yaml(path)
    block = _section(raw, "strategies", path)
    scenarios = {name: _scenario(name, entry, path) for name, entry in block.items()}
    if not scenarios:
        raise ScenarioError(f"{path.name}: section 'strategies' is empty; define at least the baseline")
    _check_overlaps(scenarios, path)
    baseline = _strategy_name(raw.get("baseline"), f"{path.name}: top level", "baseline", scenarios)
    if scenarios[baseline].share_per_year != 0:
        raise _error(
            f"{path.name}: scenario {baseline!r}", "share_per_year", "the baseline must restore nothing",
            "set its share_per_year to 0 (its gain over itself is zero) or name another baseline",
        )
    years, report = _horizon(raw, path)
    aridity, rule = _rules(raw, path, scenarios)
    return ScenarioConfig(scenarios, baseline, years, report, aridity, rule, path)


def load_scenarios(path: str | os.PathLike[str] | None = None) -> dict[str, Scenario]:
    """The validated strategies of a ``scenarios.yml``, by name (see :func:`load_config`).

    Examples
    --------
    >>> s = load_scenarios()["accelerated_natural_recovery"]
    >>> s.regions, s.share_per_year, s.ramp
    (('South America', 'Oceania'), 0.05, 'exponential')
    """
    return load_config(path).scenarios


def describe_strategies(config: ScenarioConfig) -> pd.DataFrame:
    """The strategies' parameters as a tidy table: strategy, parameter, value, unit, source.

    Examples
    --------
    >>> t = describe_strategies(load_config())
    >>> list(t.columns)
    ['strategy', 'parameter', 'value', 'unit', 'source']
    """
    rows = []
    for s in config.scenarios.values():
        for name, source in s.sources.items():
            value = getattr(s, name)
            text = ", ".join(value) if isinstance(value, tuple) else str(value)
            rows.append({"strategy": s.label, "parameter": name, "value": text or "(none)",
                         "unit": UNITS.get(name, ""), "source": source})
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------- the model


def ramp(age: Any, shape: str, years_to_attainable: float, *, k: float | None = None) -> np.ndarray:
    """Fraction (0-1) of the attainable gain reached ``age`` years after restoration.

    Parameters
    ----------
    age : array-like
        Years since restoration, the restoration year being age 1; ages <= 0 give 0.
    shape : {"linear", "exponential", "logistic"}
        The ramp (formulas in the module docstring).
    years_to_attainable : float
        ``T``, years until the attainable gain is reached (a).
    k : float, optional
        Shape parameter (dimensionless); default 3 (exponential) or 10 (logistic).

    Returns
    -------
    numpy.ndarray
        ``r(age)``, 0 at age 0, exactly 1 from age ``T`` on.

    Examples
    --------
    >>> ramp([1, 2, 4, 6], "linear", 4).tolist()
    [0.25, 0.5, 1.0, 1.0]
    >>> round(float(ramp(2, "logistic", 4)), 6)
    0.5
    """
    x = np.clip(np.asarray(age, dtype=float) / years_to_attainable, 0.0, 1.0)
    if shape == "linear":
        return x
    k = DEFAULT_RAMP_K.get(shape) if k is None else k
    if shape == "exponential":
        return np.expm1(-k * x) / np.expm1(-k)
    if shape == "logistic":
        def sig(z: Any) -> Any:
            return 1.0 / (1.0 + np.exp(-k * (z - 0.5)))

        return (sig(x) - sig(0.0)) / (sig(1.0) - sig(0.0))
    raise ScenarioError(f"unknown ramp shape {shape!r}; use one of {', '.join(RAMPS)}")


def _years(years: Iterable[int]) -> np.ndarray:
    y = np.asarray(list(years), dtype=int)
    if y.size == 0 or np.any(np.diff(y) != 1):
        raise ScenarioError(f"years must be consecutive and increasing (e.g. range(2021, 2061)), got {y.tolist()}")
    return y


def restored_fraction(scenario: Scenario, years: Iterable[int]) -> np.ndarray:
    """Expected fraction ``F(t)`` of the full gain the strategy's mines reach in each year.

    Parameters
    ----------
    scenario : Scenario
        The strategy.
    years : iterable of int
        Consecutive years; restoration starts at ``scenario.start_year`` or, when
        that is ``None``, at the first of them.

    Returns
    -------
    numpy.ndarray
        ``F(t) = sum over cohorts y0 <= t of c(y0) * ramp(t - y0 + 1)``, in [0, 1].

    Examples
    --------
    >>> s = Scenario("x", "X", (), share_per_year=0.5, years_to_attainable=4, ramp="linear")
    >>> restored_fraction(s, range(2021, 2027)).tolist()
    [0.125, 0.375, 0.625, 0.875, 1.0, 1.0]
    """
    y = _years(years)
    start = int(y[0]) if scenario.start_year is None else scenario.start_year
    cohort_years = np.arange(start, y[-1] + 1)
    if cohort_years.size == 0:
        return np.zeros(y.size)
    cumulative = np.minimum(scenario.share_per_year * np.arange(1, cohort_years.size + 1), 1.0)
    cohort = np.diff(cumulative, prepend=0.0)
    age = y[:, None] - cohort_years[None, :] + 1
    r = ramp(age, scenario.ramp, scenario.years_to_attainable, k=scenario.ramp_k)
    return (r * cohort[None, :]).sum(axis=1)


def to_tco2e(gg_c: Any) -> Any:
    """Gg C to t CO2 equivalent: ``x * 1e3 * 44 / 12``.

    Examples
    --------
    >>> round(to_tco2e(1.0), 3)
    3666.667
    """
    return gg_c * T_PER_GG * CO2_PER_C


# --------------------------------------------------------------------------- the data


def _require(df: pd.DataFrame, columns: Sequence[str], table: str, fix: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ScenarioError(f"the {table} table lacks column(s) {', '.join(missing)}; {fix}")
    if "mine_id" in columns and df["mine_id"].duplicated().any():
        dup = df.loc[df["mine_id"].duplicated(), "mine_id"].iloc[0]
        raise ScenarioError(f"the {table} table holds mine_id {dup} more than once; keep one row per mine")


def add_aridity(mines_df: pd.DataFrame, covariates_df: pd.DataFrame, aridity: Aridity) -> pd.DataFrame:
    """Add ``precip`` (mm a-1), ``spei`` and ``arid`` (bool) to the mines.

    A mine is arid when ``precip < aridity.precip_max`` or ``spei < aridity.spei_max``;
    a mine with neither value is not arid (count them with ``precip`` and ``spei``
    both NaN).

    Parameters
    ----------
    mines_df : pandas.DataFrame
        Mines with ``mine_id``.
    covariates_df : pandas.DataFrame
        ``mine_id, spei, precip`` (the covariates artifact).
    aridity : Aridity
        The thresholds (``load_config().aridity``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``mines_df`` with the three columns (same row order).

    Examples
    --------
    >>> m = pd.DataFrame({"mine_id": [1, 2]})
    >>> c = pd.DataFrame({"mine_id": [1, 2], "precip": [300.0, 900.0], "spei": [0.1, 0.2]})
    >>> add_aridity(m, c, Aridity(500, -0.5))["arid"].tolist()
    [True, False]
    """
    _require(covariates_df, ("mine_id", "precip", "spei"), "covariates", "run the data chapter first")
    cov = covariates_df.set_index("mine_id")
    out = mines_df.drop(columns=["precip", "spei", "arid"], errors="ignore").copy()
    out["precip"] = out["mine_id"].map(cov["precip"]).astype(float)
    out["spei"] = out["mine_id"].map(cov["spei"]).astype(float)
    out["arid"] = (out["precip"] < aridity.precip_max) | (out["spei"] < aridity.spei_max)
    return out


def _prepare(potential_df: pd.DataFrame, mines_df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Join potential to mines; each mine's full-restoration flux in Gg C a-1.

    Mines without potential are excluded; negative bounds are set to 0 (restoration
    does not lower NEP below business as usual here); an interval that does not
    hold the central value is widened to it. Each is counted.
    """
    _require(mines_df, ("mine_id", "iso3", "area_km2"), "mines", "it needs the columns of mines.parquet")
    cols = ["potential_lo", "potential", "potential_hi"]
    _require(potential_df, ["mine_id", *cols], "potential", "run the potential chapter first")
    table = pd.DataFrame(mines_df.drop(columns="geometry", errors="ignore"))
    table = table.merge(potential_df[["mine_id", *cols]], on="mine_id", how="left")
    missing = table[cols + ["area_km2"]].isna().any(axis=1)
    table = table.loc[~missing].reset_index(drop=True)
    raw = table[cols].to_numpy(dtype=float)
    p = np.clip(raw, 0.0, None)
    p[:, 0], p[:, 2] = np.minimum(p[:, 0], p[:, 1]), np.maximum(p[:, 2], p[:, 1])
    table[cols] = p
    full = p * (table["area_km2"].to_numpy(dtype=float) * M2_PER_KM2 / G_PER_GG)[:, None]
    table[["flux_lo", "flux", "flux_hi"]] = full
    notes = {
        "n_mines": len(mines_df),
        "n_without_potential": int(missing.sum()),
        "n_negative_set_to_0": int((raw < 0).any(axis=1).sum()),
        "n_interval_widened": int(((raw[:, 0] > raw[:, 1]) | (raw[:, 2] < raw[:, 1])).sum()),
    }
    return table, notes


def _empty_projection() -> pd.DataFrame:
    dtypes = {"region": str, "strategy": str, "year": "int64", "n_mines": "int64"}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, float)) for c in _PROJECTION_COLUMNS})


def _project(table: pd.DataFrame, scenario: Scenario, years: np.ndarray, regions: Sequence[str],
             arid_only: bool) -> pd.DataFrame:
    """Projection rows of ``scenario`` for each region of ``regions`` that has mines."""
    fraction = restored_fraction(scenario, years)
    parts = []
    for region in regions:
        chosen = table["iso3"].isin(_regions.select(region))
        if arid_only:
            chosen &= table["arid"].astype(bool)
        if not chosen.any():
            continue
        flux = table.loc[chosen, ["flux_lo", "flux", "flux_hi"]].sum().to_numpy()
        cumulative = np.outer(fraction, flux).cumsum(axis=0)
        parts.append(pd.DataFrame({
            "region": region, "strategy": scenario.name, "year": years, "n_mines": int(chosen.sum()),
            "annual_GgC": fraction * flux[1], "cumulative_GgC": cumulative[:, 1],
            "lo": cumulative[:, 0], "hi": cumulative[:, 2],
        }))
    if not parts:
        return _empty_projection()
    out = pd.concat(parts, ignore_index=True)
    out["cumulative_tCO2e"] = to_tco2e(out["cumulative_GgC"])
    return out[_PROJECTION_COLUMNS]


def project(
    potential_df: pd.DataFrame,
    mines_df: pd.DataFrame,
    scenario: Scenario,
    *,
    years: Iterable[int] = range(2021, 2061),
    regions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Cumulative carbon a strategy sequesters over business as usual, per region and year.

    Parameters
    ----------
    potential_df : pandas.DataFrame
        ``mine_id, potential, potential_lo, potential_hi`` (g C m-2 a-1).
    mines_df : pandas.DataFrame
        ``mine_id, iso3, area_km2`` (km2), and ``arid`` (see :func:`add_aridity`)
        when the strategy is ``arid_only`` and ``regions`` is not given.
    scenario : Scenario
        The strategy.
    years : iterable of int
        Consecutive years of the projection; cumulation starts at the first.
    regions : sequence of str, optional
        Region selectors to apply the strategy to, every mine of them; default the
        strategy's own regions, restricted to arid mines if it is ``arid_only``.

    Returns
    -------
    pandas.DataFrame
        ``region, strategy, year, n_mines, annual_GgC`` (Gg C a-1),
        ``cumulative_GgC, lo, hi`` (Gg C; the band from the potential's interval) and
        ``cumulative_tCO2e`` (t CO2e). Regions without mines are left out.

    Examples
    --------
    >>> s = Scenario("x", "X", ("CHN",), share_per_year=1.0, years_to_attainable=1, ramp="linear")
    >>> mines = pd.DataFrame({"mine_id": [1], "iso3": ["CHN"], "area_km2": [2.0]})
    >>> pot = pd.DataFrame({"mine_id": [1], "potential": [50.0], "potential_lo": [40.0], "potential_hi": [60.0]})
    >>> project(pot, mines, s, years=[2021, 2022])[["cumulative_GgC", "lo", "hi"]].round(3).values.tolist()
    [[0.1, 0.08, 0.12], [0.2, 0.16, 0.24]]
    """
    arid_only = scenario.arid_only and regions is None
    if arid_only and "arid" not in mines_df.columns:
        raise ScenarioError(
            f"scenario {scenario.name!r} restores arid mines only: add the 'arid' column with "
            "add_aridity(mines_df, covariates_df, config.aridity)"
        )
    table, _ = _prepare(potential_df, mines_df)
    return _project(table, scenario, _years(years), scenario.regions if regions is None else regions, arid_only)


# ------------------------------------------------------------------------- assignment


def _paper_matches(mines_df: pd.DataFrame, config: ScenarioConfig) -> pd.DataFrame:
    """Per mine (rows) and strategy (columns): does the paper's assignment cover it."""
    matches = {}
    for s in config.scenarios.values():
        codes = {c for region in s.regions for c in _regions.select(region)}
        hit = mines_df["iso3"].isin(codes)
        if s.arid_only:
            if "arid" not in mines_df.columns:
                raise ScenarioError(f"scenario {s.name!r} needs the 'arid' column: call add_aridity first")
            hit &= mines_df["arid"].astype(bool)
        matches[s.name] = hit.to_numpy()
    return pd.DataFrame(matches, index=mines_df.index)


def paper_assignment(mines_df: pd.DataFrame, config: ScenarioConfig) -> pd.Series:
    """The strategy the paper's regions give each mine (the baseline where none does).

    Parameters
    ----------
    mines_df : pandas.DataFrame
        ``mine_id, iso3`` and ``arid`` when a strategy is ``arid_only``.
    config : ScenarioConfig
        The strategies; their regions do not overlap (checked on loading).

    Returns
    -------
    pandas.Series
        Strategy name per row of ``mines_df`` (same index).

    Examples
    --------
    >>> cfg = load_config()
    >>> m = pd.DataFrame({"mine_id": [1, 2, 3], "iso3": ["PER", "CHN", "NER"], "arid": [False, False, True]})
    >>> paper_assignment(m, cfg).tolist()
    ['accelerated_natural_recovery', 'business_as_usual', 'drought_tolerant_planting']
    """
    matches = _paper_matches(mines_df, config)
    first = matches.idxmax(axis=1) if len(matches.columns) else pd.Series(index=mines_df.index, dtype=object)
    return first.where(matches.any(axis=1), config.baseline).rename("paper_strategy")


def _level(row: pd.Series, rule: AssignmentRule) -> str:
    if row["arid_share"] >= rule.arid_share_min:
        return "arid"
    if row["potential_mean"] <= 0:
        return "none"
    return "high" if row["potential_mean"] >= rule.high_potential_min else "low"


def assign_strategies(
    potential_df: pd.DataFrame, mines_df: pd.DataFrame, *, config: ScenarioConfig | None = None
) -> pd.DataFrame:
    """Assign a strategy to each subregion from the data, beside the paper's assignment.

    Rules (the ``assignment`` section of the file), in order: a subregion whose
    share of arid mines is at least ``arid_share_min`` gets ``arid``; one whose mean
    potential is zero gets the baseline; one whose mean potential is at least
    ``high_potential_min`` gets ``high``; any other ``low``. Means are over the
    subregion's mines with a potential (unweighted, as the paper's figure 8).

    Parameters
    ----------
    potential_df : pandas.DataFrame
        ``mine_id, potential, potential_lo, potential_hi`` (g C m-2 a-1).
    mines_df : pandas.DataFrame
        ``mine_id, iso3, continent, subregion, area_km2`` and ``precip, spei, arid``
        from :func:`add_aridity`.
    config : ScenarioConfig, optional
        Default :func:`load_config`.

    Returns
    -------
    pandas.DataFrame
        One row per subregion: ``continent, subregion, n_mines, potential_mean``
        (g C m-2 a-1), ``arid_share, precip_median`` (mm a-1), ``spei_mean, level``
        (arid/high/low/none), ``strategy`` (data), ``paper_strategy`` (the most
        common of the paper's per-mine assignment), ``paper_share`` (its share of the
        subregion's mines) and ``agree`` (NA where the paper assigns nothing).

    Examples
    --------
    >>> m = pd.DataFrame({"mine_id": [1, 2], "iso3": ["PER", "POL"], "continent": ["South America", "Europe"],
    ...                   "subregion": ["South America", "Eastern Europe"], "area_km2": [1.0, 1.0],
    ...                   "precip": [900.0, 700.0], "spei": [0.0, 0.0], "arid": [False, False]})
    >>> p = pd.DataFrame({"mine_id": [1, 2], "potential": [20.0, 5.0], "potential_lo": [10.0, 2.0],
    ...                   "potential_hi": [30.0, 8.0]})
    >>> assign_strategies(p, m)[["subregion", "strategy", "agree"]].values.tolist()
    [['Eastern Europe', 'soil_reconstruction', True], ['South America', 'accelerated_natural_recovery', True]]
    """
    config = load_config() if config is None else config
    _require(mines_df, ("continent", "subregion", "precip", "spei", "arid"), "mines",
             "add precip, spei and arid with add_aridity(mines_df, covariates_df, config.aridity)")
    table, _ = _prepare(potential_df, mines_df)
    table["paper_strategy"] = paper_assignment(table, config)
    rows = []
    for (continent, subregion), g in table.groupby(["continent", "subregion"], sort=True):
        counts = g["paper_strategy"].value_counts()
        paper = max(counts.index, key=lambda s: (counts[s], -list(config.scenarios).index(s)))
        rows.append({
            "continent": continent, "subregion": subregion, "n_mines": len(g),
            "potential_mean": g["potential"].mean(), "arid_share": g["arid"].mean(),
            "precip_median": g["precip"].median(), "spei_mean": g["spei"].mean(),
            "paper_strategy": paper, "paper_share": counts[paper] / len(g),
        })
    columns = ["continent", "subregion", "n_mines", "potential_mean", "arid_share", "precip_median", "spei_mean",
               "level", "strategy", "paper_strategy", "paper_share", "agree"]
    if not rows:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(rows)
    out["level"] = out.apply(_level, axis=1, rule=config.assignment)
    by_level = {"arid": config.assignment.arid, "high": config.assignment.high, "low": config.assignment.low,
                "none": config.baseline}
    out["strategy"] = out["level"].map(by_level)
    out["agree"] = (out["strategy"] == out["paper_strategy"]).astype("boolean")
    out.loc[out["paper_strategy"] == config.baseline, "agree"] = pd.NA
    return out[columns]


# ---------------------------------------------------------------------------- the run


def totals_table(projection: pd.DataFrame, years: Iterable[int]) -> pd.DataFrame:
    """Cumulative totals by ``years`` per assignment and strategy, and over all strategies.

    Parameters
    ----------
    projection : pandas.DataFrame
        Rows of :func:`project` with an ``assignment`` column (``paper``/``data``).
    years : iterable of int
        Years to report (e.g. 2030, 2040, 2060).

    Returns
    -------
    pandas.DataFrame
        ``assignment, strategy, year, n_mines, cumulative_GgC, lo, hi,
        cumulative_tCO2e``; the strategy ``all`` sums the others (their regions do
        not overlap).

    Examples
    --------
    >>> p = pd.DataFrame({"assignment": "paper", "region": ["A", "B"], "strategy": "s", "year": 2030,
    ...                   "n_mines": 1, "cumulative_GgC": [1.0, 2.0], "lo": [0.5, 1.0], "hi": [2.0, 3.0]})
    >>> totals_table(p, [2030])["cumulative_GgC"].tolist()
    [3.0, 3.0]
    """
    sums = ["n_mines", "cumulative_GgC", "lo", "hi"]
    chosen = projection[projection["year"].isin(list(years))]
    per = chosen.groupby(["assignment", "strategy", "year"], as_index=False)[sums].sum()
    total = chosen.groupby(["assignment", "year"], as_index=False)[sums].sum().assign(strategy="all")
    out = pd.concat([per, total], ignore_index=True)
    out["cumulative_tCO2e"] = to_tco2e(out["cumulative_GgC"])
    return out[["assignment", "strategy", "year", *sums, "cumulative_tCO2e"]]


def compare_with_paper(assignment: pd.DataFrame, potential_by_continent: Mapping[str, float]) -> pd.DataFrame:
    """The inputs of the assignment beside the paper's values, and the two assignments.

    Parameters
    ----------
    assignment : pandas.DataFrame
        :func:`assign_strategies` output.
    potential_by_continent : mapping
        This run's mean potential per continent (g C m-2 a-1).

    Returns
    -------
    pandas.DataFrame
        ``quantity, paper, this run, unit`` (text columns).

    Examples
    --------
    >>> a = pd.DataFrame({"subregion": ["Eastern Europe"], "potential_mean": [6.0], "agree": [True],
    ...                   "paper_strategy": ["soil_reconstruction"], "strategy": ["soil_reconstruction"]})
    >>> compare_with_paper(a, {"Europe": 7.0}).iloc[0].tolist()
    ['mean potential, Europe', '7.9', '7.0', 'g C m-2 a-1']
    """
    reported = paper_reported()
    rows = []
    for key in ("potential_by_continent", "potential_by_subregion"):
        for region, value in reported[key]["value"].items():
            run_value = potential_by_continent.get(region) if key == "potential_by_continent" else (
                assignment.loc[assignment["subregion"] == region, "potential_mean"].mean())
            if run_value is not None and np.isfinite(run_value):
                rows.append({"quantity": f"mean potential, {region}", "paper": f"{value:.1f}",
                             "this run": f"{run_value:.1f}", "unit": "g C m-2 a-1"})
    for r in assignment.itertuples():
        if not pd.isna(r.agree):
            rows.append({"quantity": f"strategy, {r.subregion}", "paper": r.paper_strategy,
                         "this run": r.strategy, "unit": ""})
    rows.append({"quantity": "cumulative sequestration of the strategies", "paper": "not reported",
                 "this run": "see the totals table", "unit": "Gg C"})
    return pd.DataFrame(rows, columns=["quantity", "paper", "this run", "unit"])


@dataclass
class ScenariosResult:
    """What :func:`run` computes and the chapter shows.

    Attributes
    ----------
    config : ScenarioConfig
        The strategies used.
    parameters : pandas.DataFrame
        :func:`describe_strategies`.
    projection : pandas.DataFrame
        ``scenarios.csv``: ``assignment`` (``paper``: each strategy on the regions the
        paper gives it; ``data``: each subregion under its data-assigned strategy)
        and the columns of :func:`project`.
    totals : pandas.DataFrame
        :func:`totals_table` at the report years.
    assignment : pandas.DataFrame
        :func:`assign_strategies`.
    mines : geopandas.GeoDataFrame
        The run's mines with ``arid``, ``paper_strategy`` and ``data_strategy``.
    potential_by_continent : dict
        Mean potential per continent of the projected mines, g C m-2 a-1.
    notes : dict
        Counts: mines read, outside the run's region, without potential, with
        negative bounds set to 0, with a widened interval, arid, out of the
        training domain.
    run_dir : pathlib.Path
        Where ``scenarios.csv`` and ``summary.json`` were written.
    """

    config: ScenarioConfig
    parameters: pd.DataFrame
    projection: pd.DataFrame
    totals: pd.DataFrame
    assignment: pd.DataFrame
    mines: gpd.GeoDataFrame
    potential_by_continent: dict[str, float]
    notes: dict[str, int]
    run_dir: Path


def _summary(result: ScenariosResult) -> dict[str, Any]:
    """The ``scenarios`` part of summary.json: totals by the report years per strategy."""
    cfg = result.config
    out: dict[str, Any] = {"first_year": cfg.years[0], "last_year": cfg.years[-1],
                           "report_years": list(cfg.report_years), "unit": "Gg C cumulative; t CO2e"}
    for name in ("paper", "data"):
        block: dict[str, Any] = {}
        t = result.totals[result.totals["assignment"] == name]
        for strategy in [*cfg.scenarios, "all"]:
            rows = t[t["strategy"] == strategy].set_index("year")
            block[strategy] = {
                str(y): {
                    "GgC": float(rows.at[y, "cumulative_GgC"]) if y in rows.index else 0.0,
                    "GgC_lo": float(rows.at[y, "lo"]) if y in rows.index else 0.0,
                    "GgC_hi": float(rows.at[y, "hi"]) if y in rows.index else 0.0,
                    "tCO2e": float(rows.at[y, "cumulative_tCO2e"]) if y in rows.index else 0.0,
                }
                for y in cfg.report_years
            }
        out[name] = block
    a = result.assignment
    out["data_assignment"] = dict(zip(a["subregion"], a["strategy"], strict=True))
    agree = a["agree"].dropna()
    out["agreement_share"] = float(agree.mean()) if len(agree) else None
    out["notes"] = dict(result.notes)
    return out


def _run_mines(params: RunParams, config: ScenarioConfig) -> tuple[gpd.GeoDataFrame, int]:
    """The run's mines in its region, with aridity; and how many lay outside it."""
    mines = read_artifact(params.run_path, "mines")
    inside = mines["iso3"].isin(_regions.select(params.region))
    covariates = read_artifact(params.run_path, "covariates")
    return add_aridity(mines.loc[inside].reset_index(drop=True), covariates, config.aridity), int((~inside).sum())


def _stack(parts: Sequence[pd.DataFrame], assignment: str) -> pd.DataFrame:
    """Projection rows of one assignment, tagged; an empty table when there are none."""
    frames = [p for p in parts if len(p)]
    out = pd.concat(frames, ignore_index=True) if frames else _empty_projection()
    return out.assign(assignment=assignment)[["assignment", *_PROJECTION_COLUMNS]]


def run(params: RunParams, *, config_path: str | os.PathLike[str] | None = None) -> ScenariosResult:
    """Project the strategies for a run and write ``scenarios.csv`` and summary.json.

    Reads ``mines``, ``covariates`` and ``potential`` from ``params.run_path``;
    projects each strategy on the regions the paper gives it (``assignment ==
    "paper"``) and each subregion under its data-assigned strategy (``"data"``);
    writes ``scenarios.csv`` (``assignment, region, strategy, year, n_mines,
    annual_GgC, cumulative_GgC, lo, hi, cumulative_tCO2e``) and the ``scenarios``
    key of ``summary.json``.

    Parameters
    ----------
    params : RunParams
        The run (its ``region`` selects the mines).
    config_path : path-like, optional
        Another ``scenarios.yml``; default the shipped one.

    Returns
    -------
    ScenariosResult

    Examples
    --------
    >>> res = run(RunParams(region="Europe", run_dir="runs/Europe"))  # doctest: +SKIP
    >>> res.totals.query("assignment == 'paper' and year == 2060")  # doctest: +SKIP
    """
    config = load_config(config_path)
    mines, n_outside = _run_mines(params, config)
    potential = read_artifact(params.run_path, "potential")
    table, notes = _prepare(potential, mines)
    years = np.asarray(config.years)
    paper = [_project(table, s, years, s.regions, s.arid_only) for s in config.scenarios.values()]
    assignment = assign_strategies(potential, mines, config=config)
    data = [_project(table, config.scenarios[r.strategy], years, [r.subregion], False) for r in assignment.itertuples()]
    projection = pd.concat([_stack(paper, "paper"), _stack(data, "data")], ignore_index=True)
    write_table(projection, Path(params.run_path) / SCENARIOS_CSV)
    mines["paper_strategy"] = paper_assignment(mines, config)
    mines["data_strategy"] = mines["subregion"].map(dict(zip(assignment["subregion"], assignment["strategy"], strict=True)))
    projected = potential[potential["mine_id"].isin(table["mine_id"])]
    notes.update(
        n_outside_region=n_outside,
        n_arid=int(mines["arid"].sum()),
        n_out_of_domain=int(projected["out_of_domain"].astype(bool).sum()) if "out_of_domain" in projected else 0,
    )
    result = ScenariosResult(
        config=config, parameters=describe_strategies(config), projection=projection,
        totals=totals_table(projection, config.report_years), assignment=assignment, mines=mines,
        potential_by_continent=table.groupby("continent")["potential"].mean().to_dict(), notes=notes,
        run_dir=Path(params.run_path),
    )
    update_summary(params.run_path, {"scenarios": _summary(result)})
    return result
