"""Determinism: two runs with the same seed give byte-identical artifacts.

Two ``nepkit run`` processes on the small world, each with a cold extraction
cache, write the same run directory one after the other; every file must be
the same byte for byte: tables, ``summary.json``, the model, the figures and the
executed notebooks (these without their timestamps and durations).
"""

from __future__ import annotations

import pytest
from _runs import clear_cache, digests, reference_run, run


@pytest.mark.slow
def test_two_runs_with_the_same_seed_give_byte_identical_artifacts(small_world, tmp_path_factory):
    first_dir = reference_run(small_world, tmp_path_factory.getbasetemp())
    first = digests(first_dir)
    assert {"summary.json", "nep_panel.parquet", "potential.parquet", "drivers.csv", "model.joblib",
            "validation_worlds.csv", "figures/validation_loss.png"} <= set(first)
    assert any(name.endswith(".ipynb") for name in first)
    first_dir.rename(first_dir.with_name("first"))  # kept: a failure shows what differs
    clear_cache(small_world)
    run(small_world, first_dir)
    second = digests(first_dir)
    differ = sorted(name for name in first.keys() | second.keys() if first.get(name) != second.get(name))
    assert not differ, f"files that differ between the two runs: {differ}"
