"""Set the numbers the paper reports beside a run's (``data/paper_reported.yml``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from nepkit.artifacts import paper_reported

__all__ = ["paper_vs_run", "run_value"]


def run_value(summary: dict[str, Any], key: str) -> Any:
    """The run's value for a paper key: a top-level summary key, or one of the
    documented derived forms (``nep_total_YYYY``, ``gain_share``), else ``None``."""
    if key in summary:
        return summary[key]
    if key.startswith("nep_total_") and key[10:].isdigit():
        return summary.get("nep_total_Gg", {}).get(key[10:])
    if key == "gain_share" and summary.get("loss_share") is not None:
        return 1 - summary["loss_share"]
    params = summary.get("parameters", {})
    return params.get(key)


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
