"""Set the numbers the paper reports beside a run's (``data/paper_reported.yml``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from nepkit.artifacts import paper_reported

__all__ = ["paper_vs_run", "run_value"]


def run_value(summary: dict[str, Any], key: str) -> Any:
    """The run's value of a number the paper reports, or ``None`` where the run has none.

    Looked up, in order: a top-level ``summary.json`` key; the NEP-change stage's
    ``reported`` block (phases, distribution and yearly extremes in the paper's
    terms); ``nep_total_YYYY`` in ``nep_total_Gg``; ``potential_total`` (the sum of
    the mines' potential in kg C m-2 a-1, as the paper prints it); a run parameter.
    """
    if key in summary:
        return summary[key]
    reported = summary.get("nep_change", {}).get("reported", {})
    if key in reported:
        return reported[key]
    if key.startswith("nep_total_") and key[10:].isdigit():
        return summary.get("nep_total_Gg", {}).get(key[10:])
    if key == "potential_total":
        return summary.get("potential", {}).get("potential_total_kg")
    return summary.get("parameters", {}).get(key)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        if set(value) == {"year", "value"}:
            return f"{_fmt(value['value'])} ({value['year']})"
        return "; ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)


def paper_vs_run(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per number the paper reports: quantity, paper, this run, unit, where.

    Parameters
    ----------
    summary : dict
        A run's ``summary.json``.

    Returns
    -------
    pandas.DataFrame
        Columns ``quantity, paper, this run, unit, where``; ``this run`` is empty
        (NaN) where the run does not compute the quantity.
    """
    rows = []
    for key, entry in paper_reported().items():
        value = run_value(summary, key)
        rows.append(
            {
                "quantity": key,
                "paper": _fmt(entry["value"]),
                "this run": _fmt(value) if value is not None else None,
                "unit": entry.get("unit", ""),
                "where": entry.get("where", ""),
            }
        )
    return pd.DataFrame(rows)
