"""Shared test set-up: no test may reach the network.

The socket guard of ``tests/netguard/sitecustomize.py`` is installed in this
process and, through ``PYTHONPATH``, in every Python subprocess the tests start
(papermill kernels, Dask workers).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

NETGUARD = Path(__file__).parent / "netguard"
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(NETGUARD)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)
sys.path.insert(0, str(NETGUARD))
import sitecustomize as _netguard  # noqa: E402,F401  (installs the guard here)

if _netguard.__file__ is None or Path(_netguard.__file__).parent != NETGUARD:  # pragma: no cover
    import importlib.util

    spec = importlib.util.spec_from_file_location("_nepkit_netguard", NETGUARD / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``small`` synthetic world (seed 1), generated once per test session."""
    from nepkit.synth import generate

    return generate(tmp_path_factory.mktemp("world") / "small", preset="small", seed=1, progress=False)
