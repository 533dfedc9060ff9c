"""Execute the chapters with papermill: one run per region, sweeps, and the book.

A run executes every chapter notebook listed in ``_toc.yml``, in order, into the
run directory as ``<chapter>__<region>.ipynb``; chapters exchange data through the
run's artifacts (Parquet, CSV, JSON), never by reading each other's notebooks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from nepkit.io import atomic_path, file_lock, read_summary, write_table
from nepkit.params import RunParams
from nepkit.paths import PROJECT_ROOT, RUNS_DIR

__all__ = [
    "CELL_TIMEOUT_S",
    "ChapterFailed",
    "RunLocked",
    "chapters_from_toc",
    "output_name",
    "run_chapters",
    "sweep",
    "build_book",
]

#: Papermill's timeout per cell, seconds. Generous: the extraction cell of the
#: ``paper`` world takes minutes on 2 cores with a cold cache.
CELL_TIMEOUT_S = 3600
#: How papermill runs a chapter. The kernel logs only critical problems: its start-up
#: notice about unencrypted local TCP and its shutdown chatter are noise on a console
#: (an error in a cell still fails the chapter with its traceback).
_PAPERMILL_OPTIONS: dict[str, Any] = {
    "kernel_name": "python3",
    "progress_bar": False,
    "execution_timeout": CELL_TIMEOUT_S,
    "extra_arguments": ["--IPKernelApp.log_level=CRITICAL"],
}
TOC = PROJECT_ROOT / "_toc.yml"
#: The page comparing the regions of a sweep; executed by :func:`sweep`, not by a run.
SWEEP_CHAPTER = PROJECT_ROOT / "chapters" / "sweep.ipynb"


class ChapterFailed(RuntimeError):
    """A chapter raised; the partial executed notebook holds the failing cell."""


class RunLocked(RuntimeError):
    """Another run is writing the same run directory."""


def chapters_from_toc(toc: Path = TOC) -> list[Path]:
    """The chapter notebooks (``chapters/*.ipynb``) listed in ``_toc.yml``, in book order.

    The sweep page is not a chapter of a run: :func:`sweep` executes it.
    """
    entries = yaml.safe_load(toc.read_text(encoding="utf-8"))
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    files.append(str(node[key]))
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(entries)
    out = []
    for f in files:
        path = PROJECT_ROOT / f
        nb = path.with_suffix(".ipynb")
        if f.startswith("chapters/") and nb.exists() and nb != SWEEP_CHAPTER:
            out.append(nb)
    return out


def region_slug(region: str) -> str:
    """A file-name-safe form of ``region`` (spaces to ``_``)."""
    return re.sub(r"[^A-Za-z0-9_+-]", "_", region.strip().replace(" ", "_").replace(",", "+"))


def output_name(chapter: Path, region: str) -> str:
    """``<chapter>__<region>.ipynb``, the executed notebook's name in a run directory."""
    return f"{chapter.stem}__{region_slug(region)}.ipynb"


@contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` or refuse at once with :class:`RunLocked`."""
    with file_lock(run_dir / ".lock", wait=False) as held:
        if not held:
            raise RunLocked(f"{run_dir} is being written by another run; wait for it or pass another --out")
        yield


@dataclass
class RunResult:
    """What a run produced: executed notebooks and seconds per chapter."""

    params: RunParams
    notebooks: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def run_chapters(
    params: RunParams,
    *,
    chapters: Sequence[Path] | None = None,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Execute the chapters for ``params.region`` into ``params.run_path``.

    Parameters
    ----------
    params : RunParams
        Validated parameters; every field is passed to each notebook.
    chapters : sequence of Path, optional
        Notebooks to run (default: all chapters of ``_toc.yml``).
    log : callable
        Receives one progress line per chapter.

    Returns
    -------
    RunResult

    Raises
    ------
    ChapterFailed
        With the path of the partial notebook holding the error cell.
    RunLocked
        When another run holds the run directory.
    """
    import papermill as pm

    run_dir = params.run_path
    chapters = list(chapters) if chapters is not None else chapters_from_toc()
    _prepare_world(params, log)
    result = RunResult(params)
    values = params.to_dict() | {"run_dir": str(run_dir)}
    with _run_lock(run_dir):
        for i, nb in enumerate(chapters, 1):
            out = run_dir / output_name(nb, params.region)
            log(f"[{params.region}] {i}/{len(chapters)} {nb.stem} ...")
            t0 = time.perf_counter()
            try:
                pm.execute_notebook(
                    str(nb),
                    str(out),
                    parameters=values,
                    cwd=str(run_dir),
                    **_PAPERMILL_OPTIONS,
                )
            except pm.PapermillExecutionError as exc:
                raise ChapterFailed(
                    f"chapter {nb.stem} failed for region {params.region!r}: {exc.ename}: "
                    f"{exc.evalue.splitlines()[0] if exc.evalue else ''} "
                    f"(the executed notebook with the error cell is {out})"
                ) from None
            _hide_injected_parameters(out)
            result.seconds[nb.stem] = time.perf_counter() - t0
            result.notebooks.append(out)
            log(f"[{params.region}] {i}/{len(chapters)} {nb.stem} done in {result.seconds[nb.stem]:.0f} s")
    return result


def _prepare_world(params: RunParams, log: Callable[[str], None]) -> None:
    """Generate the synthetic world if the run needs it and it is missing or stale.

    Done before any chapter (and before a sweep's parallel regions start), so the
    progress shows on the terminal and no two regions generate at once.
    """
    if params.sources == "synthetic":
        from nepkit.synth import ensure_world

        log(f"[{params.region}] synthetic world: {ensure_world(preset=params.synthetic_preset, seed=params.seed)}")


def _hide_injected_parameters(notebook: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell`` so the book hides it.

    Papermill gives that cell a random id; it gets a fixed one, so two runs with
    the same parameters write the same notebook.
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags:
            cell.id = "injected-parameters"
            if "remove-cell" not in tags:
                tags.append("remove-cell")
    with atomic_path(notebook) as tmp:
        nbformat.write(nb, tmp)


#: Summary keys copied into the sweep's comparison table.
SWEEP_KEYS = (
    "n_mines",
    "total_area_km2",
    "decline_pct",
    "net_loss_Gg_per_a",
    "loss_share",
    "loss_mean_g_m2_a",
    "gain_mean_g_m2_a",
    "potential_mean",
    "potential_max",
    "no_potential_share",
)


def sweep(
    regions: Sequence[str],
    base: RunParams,
    *,
    parallel: int = 2,
    out: Path = RUNS_DIR / "sweep.csv",
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Run the chapters once per region (``parallel`` at a time) and compare them.

    A failing region is reported in the table's ``error`` column; the others finish.

    Returns
    -------
    pandas.DataFrame
        One row per region: ``region, status, error, run_dir`` and the headline
        numbers of :data:`SWEEP_KEYS`; also written to ``out``.
    """
    from nepkit.params import run_dir_for

    def one(region: str) -> dict:
        params = base.replace(region=region, run_dir=str(run_dir_for(region)))
        row: dict = {"region": region, "run_dir": str(params.run_path)}
        try:
            run_chapters(params, log=log)
        except (ChapterFailed, RunLocked) as exc:
            log(f"[{region}] FAILED: {exc}")
            return row | {"status": "failed", "error": str(exc)}
        summary = read_summary(params.run_path)
        return row | {"status": "ok", "error": ""} | {k: summary.get(k) for k in SWEEP_KEYS}

    _prepare_world(base, log)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        rows = list(pool.map(one, regions))
    table = pd.DataFrame(rows)
    write_table(table, out)
    _execute_sweep_page(out)
    return table


def _execute_sweep_page(sweep_csv: Path) -> Path:
    """Execute the sweep page on ``sweep_csv`` into its folder (``sweep.ipynb``)."""
    import papermill as pm

    folder = sweep_csv.parent
    out = folder / SWEEP_CHAPTER.name
    pm.execute_notebook(
        str(SWEEP_CHAPTER),
        str(out),
        parameters={"sweep_csv": str(sweep_csv), "run_dir": str(folder)},
        cwd=str(folder),
        **_PAPERMILL_OPTIONS,
    )
    _hide_injected_parameters(out)
    return out


def build_book(
    params: RunParams, *, sweep_dir: Path = RUNS_DIR, build_dir: Path = PROJECT_ROOT / "_build"
) -> Path:
    """Build the HTML book from the executed notebooks of the run ``params`` describes.

    The book's sources (``_config.yml``, ``_toc.yml``, pages, ``references.bib``)
    are staged in ``<build_dir>/src`` with each chapter replaced by its executed
    notebook and the run's ``figures/`` beside them; Jupyter Book then renders with
    execution off, ``--warningiserror --keep-going``.

    The sweep page comes from ``sweep_dir`` (``runs/``); where no sweep has
    run, a page saying so stands in its place.

    Returns
    -------
    pathlib.Path
        ``<build_dir>/html/index.html``.
    """
    run_dir = params.run_path
    src = build_dir / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml", "references.bib", "favicon.png"):
        shutil.copy2(PROJECT_ROOT / name, src / name)
    for page in PROJECT_ROOT.glob("*.md"):
        if page.name not in ("README.md",):
            shutil.copy2(page, src / page.name)
    (src / "chapters").mkdir()
    for page in (PROJECT_ROOT / "chapters").glob("*.md"):
        shutil.copy2(page, src / "chapters" / page.name)
    for nb in chapters_from_toc():
        executed = run_dir / output_name(nb, params.region)
        if not executed.exists():
            raise FileNotFoundError(f"{executed} is missing: run `nepkit run` first")
        shutil.copy2(executed, src / "chapters" / nb.name)
    figures = src / "chapters" / "figures"
    if (run_dir / "figures").exists():
        shutil.copytree(run_dir / "figures", figures)
    _stage_sweep_page(sweep_dir, src / "chapters")
    (src / "data").mkdir()
    for name in ("README.md", "sources.example.yml"):
        shutil.copy2(PROJECT_ROOT / "data" / name, src / "data" / name)
    cmd = [
        str(Path(sys.executable).parent / "jupyter-book"),
        "build",
        str(src),
        "--path-output",
        str(build_dir.parent),
        "--warningiserror",
        "--keep-going",
    ]
    env = os.environ | {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).splitlines()
        problems = [ln for ln in lines if "WARNING" in ln or "ERROR" in ln] or lines[-30:]
        raise RuntimeError("jupyter-book build failed:\n" + "\n".join(problems))
    html = build_dir / "html"
    _favicon_ico(PROJECT_ROOT / "favicon.png", html / "favicon.ico")
    return html / "index.html"


def _favicon_ico(png: Path, ico: Path) -> None:
    """Write ``favicon.ico`` at the site root: browsers ask for it on pages without a link."""
    from PIL import Image

    with Image.open(png) as image:
        image.save(ico, format="ICO")


def _stage_sweep_page(sweep_dir: Path, chapters: Path) -> None:
    executed = sweep_dir / SWEEP_CHAPTER.name
    if executed.exists():
        shutil.copy2(executed, chapters / SWEEP_CHAPTER.name)
        figures = chapters / "figures"
        figures.mkdir(exist_ok=True)
        for png in (sweep_dir / "figures").glob("sweep_*.png"):
            shutil.copy2(png, figures / png.name)
        return
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# Regions compared\n\nNo sweep has run yet: `nepkit sweep --regions continents` "
            "(or `nepkit book`) runs every chapter per continent and fills this page."
        )
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, chapters / SWEEP_CHAPTER.name)
