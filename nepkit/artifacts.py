"""The run artifacts: their fixed names and how chapters read them (DESIGN.md section 4)."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import yaml

from nepkit.paths import DATA_DIR

__all__ = ["ARTIFACTS", "INDICATORS", "artifact_path", "read_artifact", "paper_reported"]

#: Artifact file names (fixed: outside checks read them).
ARTIFACTS = {
    "mines": "mines.parquet",
    "nep_panel": "nep_panel.parquet",
    "covariates": "covariates.parquet",
    "nep_change": "nep_change.parquet",
    "potential": "potential.parquet",
    "drivers": "drivers.csv",
    "summary": "summary.json",
}

#: The paper's 11 indicators (Table 1), by their fixed names.
INDICATORS = (
    "spei",
    "precip",
    "tmax",
    "tmin",
    "gpp",
    "soc",
    "elevation",
    "curvature",
    "area_km2",
    "pop_density",
    "gdp",
)


def artifact_path(run_dir: str | os.PathLike[str], name: str) -> Path:
    """Path of artifact ``name`` (a key of :data:`ARTIFACTS`) in ``run_dir``."""
    if name not in ARTIFACTS:
        raise KeyError(f"unknown artifact {name!r}; known: {', '.join(ARTIFACTS)}")
    return Path(run_dir) / ARTIFACTS[name]


def read_artifact(run_dir: str | os.PathLike[str], name: str) -> pd.DataFrame:
    """Read a table artifact; a clear error naming the chapter to run when missing."""
    path = artifact_path(run_dir, name)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run the earlier chapters first (nepkit run writes them in order)"
        )
    if name == "mines":
        return gpd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.read_parquet(path)


def paper_reported() -> dict:
    """The numbers the paper reports (``data/paper_reported.yml``): key -> {value, unit, where}."""
    with open(DATA_DIR / "paper_reported.yml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)["values"]
