"""Figures of the compendium: the paper's figures 1, 4-9 and the scenarios figure.

One submodule per stage (``maps``, ``synth``, ``nepchange``, ``potential``,
``drivers``, ``scenarios``); every function returns a :class:`matplotlib.figure.Figure`
and :func:`save` writes it where the chapters display it from
(``<run_dir>/figures/<name>.png``).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless everywhere; notebooks display the saved files

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from nepkit.io import atomic_path  # noqa: E402

__all__ = ["save", "FIGURE_DPI"]

#: Resolution of saved figures, dots per inch.
FIGURE_DPI = 110


def save(fig: Figure, run_dir: str | os.PathLike[str], name: str) -> Path:
    """Save ``fig`` as ``<run_dir>/figures/<name>.png`` (atomically) and close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    run_dir : path-like
        The run directory.
    name : str
        File stem, e.g. ``"fig4_nep_total"``.

    Returns
    -------
    pathlib.Path
        The written file. Chapters show it with a MyST ``{figure}`` directive
        (``figures/<name>.png``, relative to the executed notebook).
    """
    path = Path(run_dir) / "figures" / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=FIGURE_DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path
