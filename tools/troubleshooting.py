"""Write the Troubleshooting section of README.md from the messages the code prints.

Every row of the table is a bad input the pipeline recognizes. This script
provokes each one for real in a temporary folder (command-line calls through
:class:`click.testing.CliRunner`, manifests, rasters and GeoPackages written on
the fly, a run of the stages on a ``small`` synthetic world, chapter notebooks
executed by papermill), captures the message, replaces the temporary folder by
readable paths (``data/<case>/...``, ``runs/<name>/...``) and renders the
section: an introduction and a table ``situation | message | fix``. Only the
situations and the fixes are written by hand; no message is.

Usage::

    python tools/troubleshooting.py            # print the section
    python tools/troubleshooting.py --write    # replace it in README.md
    python tools/troubleshooting.py --world W  # reuse the small world (seed 1) in folder W

``tests/test_troubleshooting.py`` fails when README.md differs from the output.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
import yaml
from affine import Affine
from click.testing import CliRunner

from nepkit import drivers, extract, nepchange, potential, validation
from nepkit.cli import main as cli_main
from nepkit.io import update_summary
from nepkit.params import RunParams
from nepkit.runner import ChapterFailed, build_book, chapters_from_toc, run_chapters
from nepkit.scenarios import SCENARIOS_YML, ScenarioError, load_config
from nepkit.sources import COVARIATES, ManifestError, SourceError, load_manifest, read_mines
from nepkit.synth import generate

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"
START, END = "<!-- troubleshooting:start -->", "<!-- troubleshooting:end -->"
HINT = "run python tools/troubleshooting.py --write"

#: The tiny world of the manifest cases: a 60 x 60 grid of 0.01 degree in China, NEP for 2000-2002.
GRID = Affine(0.01, 0.0, 100.0, 0.0, -0.01, 30.6)
SIZE, YEARS = 60, (2000, 2002)
#: The small synthetic world of the stage cases, and the region of its run (too few mines for a model).
WORLD_SEED, WORLD_REGION = 1, "COD"

INTRO = """\
Every bad input the pipeline recognizes, with the message it prints. The messages are
not typed by hand: `tools/troubleshooting.py` provokes each situation and copies what
the code says (`python tools/troubleshooting.py --write` refreshes this section, and
`tests/test_troubleshooting.py` fails when it is out of date); `data/<case>/...` and
`runs/<name>/...` stand for your own paths. On the command line a message is one line
`error: <message>` with exit code 2 (bad input), 3 (run directory busy) or 1 (a chapter
failed); click's own usage errors print the usage first. Manifests, data and stages are
checked inside the chapters: a notebook shows the exception as below, and `nepkit run`
reports it as `error: chapter <chapter> failed for region '<region>': <exception>:
<message> (the executed notebook with the error cell is ...)` with exit code 1. Nothing
is ever silently dropped: exclusions (mines without a usable ring, nodata) are counted in
the data chapter's exclusion table and the potential chapter's notes."""


# ----------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Outcome:
    """What a situation produced.

    Attributes
    ----------
    message : str
        The text the code printed or raised (may span several lines); empty for
        a situation with nothing to capture.
    label : str
        The exception's class name, shown before the message (empty for CLI output).
    exit_code : int or None
        The command's exit code, for command-line cases.
    remark : str
        Plain text shown before the message, e.g. ``(no error)``.
    """

    message: str
    label: str = ""
    exit_code: int | None = None
    remark: str = ""


class CaseDidNotFail(AssertionError):
    """A situation of the table no longer produces the error it documents."""


def capture(action: Callable[[], object], expected: type[BaseException] | tuple[type[BaseException], ...]) -> Outcome:
    """Run ``action`` and return the ``expected`` exception it raises as an :class:`Outcome`.

    Parameters
    ----------
    action : callable
        Called without arguments; must raise.
    expected : exception type or tuple of them
        Any other exception propagates (with its traceback), so a message that
        became a deep traceback stops the script.

    Raises
    ------
    CaseDidNotFail
        When ``action`` returns normally.
    """
    try:
        action()
    except expected as exc:
        return Outcome(str(exc), label=type(exc).__name__)
    raise CaseDidNotFail(f"{action!r} did not raise {expected}")


# ---------------------------------------------------------------------- tiny world


def write_raster(path: Path, values: np.ndarray, *, transform: Affine = GRID, crs: str | None = "EPSG:4326") -> Path:
    """Write a one-band float32 GeoTIFF (nodata -9999); ``crs=None`` writes none."""
    profile = {"driver": "GTiff", "height": values.shape[0], "width": values.shape[1], "count": 1,
               "dtype": "float32", "transform": transform, "nodata": -9999.0}
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile | ({"crs": crs} if crs else {})) as dst:
        dst.write(values.astype(np.float32)[None])
    return path


def tiny_mines() -> gpd.GeoDataFrame:
    """Three mines in China (a BRI partner) and one in the United States (not one)."""
    boxes = [(100.10, 30.38, 100.12, 30.40), (100.30, 30.28, 100.32, 30.30),
             (100.45, 30.47, 100.47, 30.48), (100.40, 30.18, 100.42, 30.20)]
    return gpd.GeoDataFrame({"ISO3_CODE": ["CHN", "CHN", "CHN", "USA"],
                             "COUNTRY_NAME": ["China"] * 3 + ["United States"], "AREA": [4.3, 4.3, 2.1, 4.3]},
                            geometry=[shapely.box(*b) for b in boxes], crs="EPSG:4326")


def write_mines(path: Path, mines: gpd.GeoDataFrame, layer: str = "mining_polygons", **kwargs: Any) -> Path:
    """Write ``mines`` as a GeoPackage layer (fid = 1, 2, ...)."""
    mines.to_file(path, layer=layer, driver="GPKG", engine="pyogrio", **kwargs)
    return path


def tiny_manifest() -> dict[str, Any]:
    """The tiny world's ``sources.yml`` content (paths relative to its folder)."""
    covariates: dict[str, Any] = {name: {"path": f"covariates/{name}.tif"} for name in COVARIATES}
    covariates["curvature"] = {"derive": "elevation"}
    return {"years": list(YEARS), "mines": {"path": "mines.gpkg"}, "nep": {"path": "nep/nep_{year}.tif"},
            "covariates": covariates}


def tiny_world(folder: Path) -> Path:
    """Write the tiny world (mines, NEP 2000-2002, ten covariates) and its manifest into ``folder``."""
    folder.mkdir(parents=True)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    write_mines(folder / "mines.gpkg", tiny_mines())
    for year in range(YEARS[0], YEARS[1] + 1):
        write_raster(folder / "nep" / f"nep_{year}.tif", 50.0 + cols + 0.5 * rows + 10.0 * (year - YEARS[0]))
    for k, name in enumerate(c for c in COVARIATES if c != "curvature"):
        write_raster(folder / "covariates" / f"{name}.tif", (k + 1.0) * 100 + 0.1 * rows * cols)
    return write_manifest(folder, tiny_manifest())


def write_manifest(folder: Path, content: dict[str, Any] | str) -> Path:
    """Write ``sources.yml`` in ``folder``: ``content`` as YAML, or a string verbatim."""
    text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    path = folder / "sources.yml"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------ workspace


@dataclass(frozen=True)
class StageRun:
    """The stages run on the small world for region :data:`WORLD_REGION`."""

    params: RunParams
    potential_notes: list[str]
    drivers_message: str


class Workspace:
    """The temporary folder of the cases and what several cases share.

    Parameters
    ----------
    root : Path
        An empty folder; cases write into ``root/data/<case>`` and ``root/runs/<name>``.
    world : Path, optional
        A ``small`` synthetic world of seed 1 (its folder or its ``sources.yml``),
        copied instead of generated.
    """

    def __init__(self, root: Path, world: Path | None = None) -> None:
        self.root = root.resolve()
        self.given_world = world

    def data(self, case: str) -> Path:
        """A fresh folder ``data/<case>``."""
        folder = self.root / "data" / case
        folder.mkdir(parents=True)
        return folder

    def runs(self, name: str) -> Path:
        """The path ``runs/<name>`` (not created)."""
        return self.root / "runs" / name

    def readable(self, text: str) -> str:
        """``text`` with the temporary folder left out of every path."""
        return text.replace(f"{self.root}{os.sep}", "").replace(str(self.root), ".")

    @functools.cached_property
    def tiny_template(self) -> Path:
        """A valid tiny world, copied by each case that edits one."""
        return tiny_world(self.root / "template").parent

    def tiny_copy(self, case: str) -> Path:
        """A copy of the tiny world in ``data/<case>``; returns its folder."""
        folder = self.root / "data" / case
        shutil.copytree(self.tiny_template, folder)
        return folder

    @functools.cached_property
    def tiny(self) -> Path:
        """The manifest of an unedited tiny world (``data/tiny``)."""
        return self.tiny_copy("tiny") / "sources.yml"

    @functools.cached_property
    def world(self) -> Path:
        """The manifest of a small synthetic world in ``data/synthetic/small-1``."""
        folder = self.root / "data" / "synthetic" / f"small-{WORLD_SEED}"
        if self.given_world is None:
            return generate(folder, preset="small", seed=WORLD_SEED, progress=False)
        source = self.given_world.parent if self.given_world.is_file() else self.given_world
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns(".nepkit-cache"))
        return folder / "sources.yml"

    @functools.cached_property
    def stage_run(self) -> StageRun:
        """Data, NEP change, potential and drivers stages of the small world's region :data:`WORLD_REGION`."""
        params = RunParams(region=WORLD_REGION, sources=str(self.world), seed=WORLD_SEED,
                           scheduler="synchronous", run_dir=str(self.runs(WORLD_REGION)))
        data = extract.run_extraction(params, progress=False)
        extract.write_artifacts(data, params.run_path)
        update_summary(params.run_path, {"parameters": params.to_dict()})
        nepchange.run(params)
        notes = potential.run(params).notes
        return StageRun(params, notes, drivers.run(params).message)


# ------------------------------------------------------------------------ triggers

Trigger = Callable[[Workspace], Outcome]
#: Edits a tiny world in its folder: changes the manifest content in place, or returns its whole text.
Edit = Callable[[Path, dict[str, Any]], str | None]
#: Prepares a command-line case; the command runs inside the context it returns.
Setup = Callable[[Workspace], AbstractContextManager[Any]]


def raises(action: Callable[[Workspace], object], expected: type[BaseException]) -> Trigger:
    """A case where ``action(workspace)`` must raise ``expected``."""
    return lambda ws: capture(lambda: action(ws), expected)


def cli(*args: str, setup: Setup | None = None) -> Trigger:
    """A ``nepkit`` command that must fail; ``{root}`` and ``{tiny}`` in ``args`` stand for workspace paths."""

    def trigger(ws: Workspace) -> Outcome:
        with setup(ws) if setup else nullcontext():
            argv = [arg.format(root=ws.root, tiny=ws.tiny) if "{" in arg else arg for arg in args]
            res = CliRunner().invoke(cli_main, argv, prog_name="nepkit")
        if res.exit_code == 0 or not isinstance(res.exception, SystemExit):
            raise CaseDidNotFail(f"nepkit {' '.join(argv)} ended with {res.exit_code}: {res.output}") from res.exception
        return Outcome(res.output, exit_code=res.exit_code)

    return trigger


def edited_world(ws: Workspace, case: str, edits: tuple[Edit, ...]) -> Path:
    """A tiny world in ``data/<case>`` with ``edits`` applied in order; returns its manifest."""
    folder = ws.tiny_copy(case)
    content: dict[str, Any] | str = tiny_manifest()
    for edit in edits:
        if not isinstance(content, dict):
            raise ValueError(f"{case}: an edit that replaces the whole manifest must come last")
        text = edit(folder, content)
        content = content if text is None else text
    return write_manifest(folder, content)


def manifest_error(case: str, *edits: Edit) -> Trigger:
    """Load the manifest of a tiny world changed by ``edits``: a :class:`ManifestError`."""
    return raises(lambda ws: load_manifest(edited_world(ws, case, edits)), ManifestError)


def mines_error(case: str, *edits: Edit, region: str = "CHN") -> Trigger:
    """Read the mines of a tiny world changed by ``edits`` for ``region``: a :class:`SourceError`."""

    def action(ws: Workspace) -> object:
        path = edited_world(ws, case, edits)
        return read_mines(load_manifest(path), RunParams(region=region, sources=str(path)))

    return raises(action, SourceError)


def extraction_error(case: str, **params: Any) -> Trigger:
    """Extract a tiny world with the run parameters ``params``: a :class:`SourceError`."""

    def action(ws: Workspace) -> object:
        values = {"region": "CHN", "years": list(YEARS), "scheduler": "synchronous"} | params
        run = RunParams(sources=str(edited_world(ws, case, ())), **values)
        return extract.run_extraction(run, progress=False)

    return raises(action, SourceError)


def scenario_error(case: str, edit: Callable[[dict[str, Any]], None]) -> Trigger:
    """Load a copy of ``data/scenarios.yml`` changed by ``edit``: a :class:`ScenarioError`."""

    def action(ws: Workspace) -> object:
        raw = yaml.safe_load(SCENARIOS_YML.read_text(encoding="utf-8"))
        edit(raw)
        path = ws.data(case) / "scenarios.yml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        return load_config(path)

    return raises(action, ScenarioError)


def stage_note(pick: Callable[[StageRun], str], remark: str) -> Trigger:
    """A message the stages report without failing (``pick`` chooses it from the run)."""
    return lambda ws: Outcome(pick(ws.stage_run), remark=remark)


def no_error(remark: str) -> Trigger:
    """A situation the pipeline handles by itself, with nothing to capture."""
    return lambda ws: Outcome("", remark=remark)


# ---------------------------------------------------------------------------- edits


def _at(content: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The mapping at ``content[k1][k2]...``."""
    for key in keys:
        content = content[key]
    return content


def set_entry(*keys: str, value: Any) -> Edit:
    """Set ``content[k1][k2]... = value``."""

    def edit(folder: Path, content: dict[str, Any]) -> None:
        _at(content, keys[:-1])[keys[-1]] = value

    return edit


def drop_entry(*keys: str) -> Edit:
    """Delete ``content[k1][k2]...``."""

    def edit(folder: Path, content: dict[str, Any]) -> None:
        del _at(content, keys[:-1])[keys[-1]]

    return edit


def rename_entry(*keys: str, to: str) -> Edit:
    """Rename the last of ``keys`` to ``to`` (a typo in the manifest)."""

    def edit(folder: Path, content: dict[str, Any]) -> None:
        parent = _at(content, keys[:-1])
        parent[to] = parent.pop(keys[-1])

    return edit


def manifest_text(text: str) -> Edit:
    """Replace the whole manifest by ``text``."""
    return lambda folder, content: text


def file_bytes(name: str, data: bytes | None) -> Edit:
    """Overwrite the file ``name`` of the world with ``data``; ``None`` deletes it."""

    def edit(folder: Path, content: dict[str, Any]) -> None:
        (folder / name).unlink()
        if data is not None:
            (folder / name).write_bytes(data)

    return edit


def raster(name: str, **options: Any) -> Edit:
    """Rewrite the raster ``name`` with ``options`` of :func:`write_raster` (no CRS, another grid)."""

    def edit(folder: Path, content: dict[str, Any]) -> None:
        write_raster(folder / name, np.ones((SIZE, SIZE)), **options)

    return edit


def mines(layer: str = "mining_polygons", crs: str | None = "EPSG:4326", **columns: list[Any]) -> Edit:
    """Rewrite the mines with another CRS or extra columns, or add them as another layer ``layer``."""

    def edit(folder: Path, content: dict[str, Any]) -> None:
        frame = tiny_mines().assign(**columns).set_crs(crs, allow_override=True)
        with warnings.catch_warnings():  # pyogrio warns about a layer without a CRS: the point of the case
            warnings.simplefilter("ignore", UserWarning)
            write_mines(folder / "mines.gpkg", frame, layer=layer)

    return edit


def in_strategy(*keys: str, **changes: Any) -> Callable[[dict[str, Any]], None]:
    """Change strategy ``soil_reconstruction`` of a scenarios file (at ``keys``); ``None`` deletes a key."""

    def edit(raw: dict[str, Any]) -> None:
        block = _at(raw["strategies"]["soil_reconstruction"], keys)
        for key, value in changes.items():
            if value is None:
                del block[key]
            else:
                block[key] = value

    return edit


# -------------------------------------------------------------------- stage actions


def empty_file(name: str) -> Setup:
    """Create the empty file ``name`` (relative to the workspace) before the command."""

    def setup(ws: Workspace) -> AbstractContextManager[Any]:
        path = ws.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        return nullcontext()

    return setup


@contextmanager
def run_lock(ws: Workspace) -> Iterator[None]:
    """Hold the lock of ``runs/locked`` as a running ``nepkit run`` does."""
    folder = ws.runs("locked")
    folder.mkdir(parents=True)
    with open(folder / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield


def early_chapter(ws: Workspace) -> object:
    """The potential stage on a run directory where the data chapter has not run."""
    return potential.run(RunParams(run_dir=str(ws.runs("empty"))))


def small_sample(ws: Workspace) -> object:
    """The potential stage with fewer training mines than the split and the folds need."""
    return potential.run(ws.stage_run.params.replace(n_sample=10))


def early_validation(ws: Workspace) -> object:
    """The validation chapter before the others."""
    return validation.run(RunParams(run_dir=str(ws.runs("empty"))), world_root=ws.root / "data" / "synthetic")


def regenerated_world(ws: Workspace) -> object:
    """Validation of a run whose world was generated anew (another seed) since."""
    params = ws.stage_run.params
    generate(ws.world.parent, preset="small", seed=WORLD_SEED + 1, progress=False)
    return validation.run(params, world_root=ws.root / "data" / "synthetic")


def early_book(ws: Workspace) -> object:
    """The book built from a run directory without executed chapters."""
    return build_book(RunParams(run_dir=str(ws.runs("empty"))), sweep_dir=ws.runs("empty"),
                      build_dir=ws.root / "_build")


def chapter(stem: str) -> Path:
    """The chapter notebook called ``stem``."""
    return next(nb for nb in chapters_from_toc() if nb.stem == stem)


def failing_chapter(ws: Workspace) -> object:
    """The potential chapter run alone into an empty run directory."""
    params = RunParams(sources=str(ws.tiny), run_dir=str(ws.runs("failing")), scheduler="synchronous")
    return run_chapters(params, chapters=[chapter("03_potential")], log=lambda line: None)


def papermill_typo(ws: Workspace) -> Outcome:
    """A chapter executed by papermill with a misspelt parameter (``-p ringouter 3``)."""
    import papermill as pm

    out = ws.data("papermill") / "03_potential.ipynb"
    try:
        pm.execute_notebook(str(chapter("03_potential")), str(out), parameters={"ringouter": 3},
                            kernel_name="python3", cwd=str(out.parent), progress_bar=False, log_output=False)
    except pm.PapermillExecutionError as exc:
        return Outcome(exc.evalue, label=exc.ename)
    raise CaseDidNotFail("papermill ran a chapter with an unknown parameter")


def damaged_cache(ws: Workspace) -> Outcome:
    """Truncate one cache file of an extraction and extract again."""
    params = RunParams(region="CHN", sources=str(ws.tiny), years=list(YEARS), scheduler="synchronous")
    extract.run_extraction(params, progress=False)
    entry = sorted((ws.tiny.parent / ".nepkit-cache").glob("extract-*/task-*.parquet"))[0]
    entry.write_bytes(entry.read_bytes()[:100])
    stats = extract.run_extraction(params, progress=False).stats
    remark = "(no error) detected by its checksum and recomputed; the extraction's `stats` count it:"
    return Outcome(f'"tasks_rejected": {stats["tasks_rejected"]}', remark=remark)


# ---------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One row of the table: a situation, how to provoke it, and the fix (written by hand)."""

    situation: str
    trigger: Trigger
    fix: str


def _set(name: str, value: str) -> Trigger:
    """``nepkit run --set name=value``."""
    return cli("run", "--set", f"{name}={value}")


CASES: tuple[Case, ...] = (
    # -- the command line and the run parameters
    Case("Unknown region", cli("run", "--region", "Atlantis"),
         "Use `all`, a continent, a subregion or ISO3 codes; the message lists them."),
    Case("ISO3 code of a country that is not a BRI partner", cli("run", "--region", "CHN,USA"),
         "Use partner countries only (`data/reference/bri_countries.csv`)."),
    Case("Unknown parameter name", _set("ringouter", "3"),
         "Check the spelling against `nepkit.params.RunParams`."),
    Case("Parameter of the wrong type", _set("n_sample", "many"), "Give a number (`--set n_sample=400`)."),
    Case("Parameter outside its choices", _set("classify_by", "median"), "Use one of the values listed."),
    Case("Reference ring inner edge beyond its outer edge", _set("ring_outer_km", "0.5"),
         "Make `ring_inner_km` < `ring_outer_km`."),
    Case("Reference ring too wide", _set("ring_outer_km", "80"), "Keep `ring_outer_km` at most 50 km."),
    Case("Years outside the study period", _set("years", "[1990,2020]"), "Use years inside 2000-2020."),
    Case("Years in the wrong order", _set("years", "[2020,2000]"), "Write `--set years=[first,last]`."),
    Case("Baseline year outside the run's years", _set("baseline_year", "2020"),
         "Choose a year from the first up to, not including, the last."),
    Case("Share outside (0, 1)", _set("test_fraction", "15"), "Give a fraction (`--set test_fraction=0.15`)."),
    Case("Fewer than two cross-validation folds", _set("cv_folds", "1"), "Use at least 2 folds."),
    Case("Count or threshold not positive", _set("n_sample", "0"), "Give a positive value."),
    Case("`--set` without a value", cli("run", "--set", "novalue"), "Write `--set key=value`."),
    Case("Manifest path that does not exist", cli("run", "--sources", "/nonexistent/sources.yml"),
         "Pass the path of your `sources.yml` or `--sources synthetic`."),
    Case("Manifest that is not a `.yml` file",
         cli("run", "--sources", "{root}/data/txt/sources.txt",
             setup=empty_file("data/txt/sources.txt")),
         "Name the manifest `sources.yml` (or `.yaml`)."),
    Case("Unknown synthetic preset", cli("synth", "--preset", "huge", "--out", "{root}/data/huge"),
         "Use one of the presets listed."),
    Case("Synthetic world with a negative seed",
         cli("synth", "--preset", "small", "--seed", "-1", "--out", "{root}/data/seed"),
         "Use a non-negative integer seed."),
    Case("Two runs writing the same run directory",
         cli("run", "--sources", "{tiny}", "--out", "{root}/runs/locked", setup=run_lock),
         "Wait for the other run or pass another `--out`."),
    Case("Unknown papermill parameter (`-p ringouter 3` on a chapter)", papermill_typo,
         "Use the names of `RunParams`; papermill itself only warns."),
    # -- the manifest
    Case("Manifest that is not valid YAML", manifest_error("yaml", manifest_text("years: [2000, 2002\nmines: m\n")),
         "Fix the syntax at the line given."),
    Case("Manifest that is not a mapping", manifest_error("list", manifest_text("- years\n- mines\n")),
         "Write `key: value` lines (see `data/sources.example.yml`)."),
    Case("Manifest missing a required key", manifest_error("missing", drop_entry("covariates")),
         "Add `years`, `mines`, `nep` and `covariates` (see `data/sources.example.yml`)."),
    Case("Manifest with an unknown key", manifest_error("unknown", rename_entry("covariates", to="covariate")),
         "Remove or rename it."),
    Case("Manifest years malformed", manifest_error("years", set_entry("years", value=[2002, 2000])),
         "Write `years: [first, last]`."),
    Case("Manifest baseline year outside its years", manifest_error("baseline", set_entry("baseline_year", value=2010)),
         "Give a year from the first up to, not including, the last."),
    Case("Unknown covariate name", manifest_error("unkcov", rename_entry("covariates", "precip", to="rain")),
         "The ten names are fixed; rename the entry."),
    Case("A covariate missing", manifest_error("misscov", drop_entry("covariates", "gdp")),
         "Add an entry for each of the ten raster indicators."),
    Case("`area_km2` given as a covariate",
         manifest_error("area", set_entry("covariates", "area_km2", value={"path": "covariates/soc.tif"})),
         "Remove it: the area is computed from the polygons."),
    Case("Unknown option in an entry", manifest_error("option", set_entry("nep", "scal", value=0.1)),
         "Use the options listed (see `data/README.md`)."),
    Case("Entry without a path", manifest_error("nopath", set_entry("covariates", "soc", value={"crs": "EPSG:4326"})),
         "Add `path: <file>`."),
    Case("NEP file of a year missing", manifest_error("year", file_bytes("nep/nep_2001.tif", None)),
         "Add the file or narrow `years`."),
    Case("NEP without a time axis", manifest_error("static", set_entry("nep", "path", value="covariates/soc.tif")),
         "Use a `{year}` pattern or a NetCDF/Zarr with a time dimension."),
    Case("Raster file not found",
         manifest_error("covfile", set_entry("covariates", "soc", "path", value="covariates/soil.tif")),
         "Fix the entry's `path` (relative to the manifest's folder)."),
    Case("Wrong value type in an entry", manifest_error("types", set_entry("nep", "nodata", value="NA")),
         "Give numbers for `nodata`, `scale` and `offset`."),
    Case("Unknown aggregation", manifest_error("aggregate", set_entry("nep", "aggregate", value="median")),
         "Use `mean` or `sum`."),
    Case("Band number not a positive integer", manifest_error("band", set_entry("nep", "band", value=0)),
         "`band: 1` is the first band."),
    Case("Band beyond the file's bands", manifest_error("bands", set_entry("covariates", "gpp", "band", value=2)),
         "Give a band the file has."),
    Case("`variable` on a file that is not NetCDF/Zarr",
         manifest_error("variable", set_entry("covariates", "soc", "variable", value="soc")),
         "Remove `variable` (GeoTIFFs and VRTs have bands)."),
    Case("Raster without a CRS", manifest_error("nocrs", raster("covariates/soc.tif", crs=None)),
         "Declare it in the entry (`crs: EPSG:4326`) or fix the file."),
    Case("Declared CRS that is not one", manifest_error("badcrs", set_entry("covariates", "soc", "crs", value="EPSG:1")),
         "Give an EPSG code, WKT or PROJ string."),
    Case("Raster that GDAL cannot read", manifest_error("garbage", file_bytes("covariates/gpp.tif", b"<html>")),
         "Replace the file (a truncated download?)."),
    Case("Years of a time series on different grids",
         manifest_error("grid", raster("nep/nep_2001.tif", transform=GRID @ Affine.translation(3, 0))),
         "Warp every year to one grid (`gdalwarp -te/-tr`)."),
    Case("Covariate that cannot be derived",
         manifest_error("derive", set_entry("covariates", "soc", value={"derive": "elevation"})),
         "Only `curvature` may be derived (`{derive: elevation}`); give the others a path."),
    Case("Land cover without the classes to exclude",
         manifest_error("landcover", set_entry("landcover", value={"path": "covariates/soc.tif"})),
         "Add `exclude: [codes]`."),
    Case("Mines file not found", manifest_error("nomines", set_entry("mines", "path", value="polygons.gpkg")),
         "Fix `mines.path`."),
    # -- the mine polygons
    Case("Mines layer without the ISO3 column", mines_error("iso", set_entry("mines", "iso3_column", value="ISO")),
         "Set `mines.iso3_column`."),
    Case("Mine ids that are not integers", mines_error("ids", set_entry("mines", "id_column", value="ISO3_CODE")),
         "Point `mines.id_column` at an integer column (or leave it out: the layer's fid)."),
    Case("Mine ids that repeat",
         mines_error("dupids", mines(MINE_ID=[1, 1, 2, 3]), set_entry("mines", "id_column", value="MINE_ID")),
         "Point `mines.id_column` at a unique column (or leave it out: the layer's fid)."),
    Case("Mines file with several layers", mines_error("layers", mines(layer="roads")), "Set `mines.layer`."),
    Case("Mines layer that does not exist", mines_error("layer", set_entry("mines", "layer", value="mines")),
         "Set `mines.layer` to one of the layers listed."),
    Case("Mines layer without a CRS", mines_error("minescrs", mines(crs=None)), "Assign the CRS with `ogr2ogr`."),
    Case("Mines file that is not a vector file", mines_error("notvector", file_bytes("mines.gpkg", b"<html>")),
         "Replace the file (a truncated download?)."),
    Case("Region without mines in the layer", mines_error("region", region="Europe"),
         "Choose another region, lower `min_area_km2` or check the layer's ISO3 codes."),
    # -- the extraction
    Case("Run years not covered by the NEP", extraction_error("cover", years=[2000, 2020]),
         "Narrow the run's `years` or add the NEP files."),
    Case("No BRI mine as large as `min_area_km2`", extraction_error("minarea", min_area_km2=100),
         "Lower `min_area_km2` or check the layer."),
    Case("No mine of the region left after the ring and NEP checks",
         extraction_error("ring", min_ring_pixels=100_000),
         "Lower `min_ring_pixels`, widen the ring or check the NEP extent."),
    # -- the stages and chapters
    Case("A chapter run before the earlier ones", raises(early_chapter, FileNotFoundError),
         "Run `nepkit run` (chapters in order)."),
    Case("`n_sample` too small for the split and the folds", raises(small_sample, potential.PotentialError),
         "Raise `n_sample` or lower `cv_folds`."),
    Case("Region with too few mines for the model",
         stage_note(lambda run: run.potential_notes[-1], "(reported in the potential chapter, not an error)"),
         "Choose a larger region or lower `cv_folds`; the potential and drivers chapters say so and go on."),
    Case("Drivers of a region without a model",
         stage_note(lambda run: run.drivers_message, "(shown in the drivers chapter)"), "As above."),
    Case("The validation chapter run before the others", raises(early_validation, FileNotFoundError),
         "Run `nepkit run` (chapters in order)."),
    Case("Validation of a run whose synthetic world was regenerated since",
         raises(regenerated_world, validation.ValidationError), "Re-run every chapter (`nepkit run`)."),
    Case("The book built before the run", raises(early_book, FileNotFoundError),
         "Run `nepkit run` first, or `nepkit book` without `--skip-run`."),
    Case("A chapter raises", raises(failing_chapter, ChapterFailed),
         "Open the partial notebook it names: the error cell is the last one executed."),
    # -- the restoration strategies (data/scenarios.yml)
    Case("Unknown section in `scenarios.yml`", scenario_error("scenario-section", lambda raw: raw.update(surprise={})),
         "Use the sections of `data/scenarios.yml`."),
    Case("Unknown field of a strategy",
         scenario_error("scenario-field", in_strategy(share_per_yr={})),
         "Check the spelling against the fields listed."),
    Case("Strategy parameter without a source",
         scenario_error("scenario-source", in_strategy("share_per_year", source=None)),
         "Say where the value comes from, or why it was chosen."),
    Case("Strategy parameter in another unit",
         scenario_error("scenario-unit", in_strategy("share_per_year", unit="% a-1")),
         "Convert the value to the unit expected."),
    Case("Strategy parameter out of range",
         scenario_error("scenario-range", in_strategy("share_per_year", value=3)),
         "Give a value inside the range."),
    Case("Unknown region of a strategy",
         scenario_error("scenario-region", in_strategy("regions", value=["Atlantis"])),
         "Use the region names listed."),
    Case("Two strategies for the same countries",
         scenario_error("scenario-overlap", in_strategy("regions", value=["Europe", "South-Eastern Asia", "Africa"])),
         "A mine follows one strategy: remove the region from one of them."),
    # -- handled without an error
    Case("A damaged extraction cache file (bit flip, truncated copy, file of another task)", damaged_cache,
         "Nothing to do; delete `<world>/.nepkit-cache` to start afresh."),
    Case("A run killed mid-way (power cut, Ctrl-C, out of memory)",
         no_error("(no error) the next run reuses the finished cache entries; artifacts are written atomically"),
         "Run the same command again."),
)


# --------------------------------------------------------------------------- render


def code(text: str) -> str:
    """``text`` as an inline code span that survives a Markdown table cell.

    Pipes are escaped; the span's fence is one backtick longer than the longest
    run of backticks inside ``text``.
    """
    text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def message_cell(outcome: Outcome, ws: Workspace) -> str:
    """The message column: remark, message lines as code (joined by ``<br>``), exit code."""
    lines = [line for line in ws.readable(outcome.message).splitlines() if line.strip()]
    if lines and outcome.label:
        lines[0] = f"{outcome.label}: {lines[0]}"
    parts = [outcome.remark, "<br>".join(code(line.strip()) for line in lines)]
    if outcome.exit_code is not None:
        parts.append(f"(exit {outcome.exit_code})")
    return " ".join(p for p in parts if p)


def row(case: Case, ws: Workspace) -> str:
    """The table row of ``case``, provoked in ``ws``."""
    try:
        outcome = case.trigger(ws)
    except CaseDidNotFail as exc:
        raise CaseDidNotFail(f"{case.situation}: {exc}") from None
    return f"| {case.situation} | {message_cell(outcome, ws)} | {case.fix} |"


def build(world: Path | None = None, cases: tuple[Case, ...] = CASES) -> str:
    """Provoke every case and render the section (introduction and table).

    Parameters
    ----------
    world : Path, optional
        A ``small`` synthetic world of seed 1 to copy instead of generating one.
    cases : tuple of Case
        The rows.

    Returns
    -------
    str
        The Markdown between the README's markers, without them.
    """
    with tempfile.TemporaryDirectory(prefix="nepkit-troubleshooting-") as tmp:
        ws = Workspace(Path(tmp), world)
        rows = [row(case, ws) for case in cases]
    return "\n".join([INTRO, "", "| situation | message | fix |", "|---|---|---|", *rows])


def section(readme: str) -> str:
    """The text between the troubleshooting markers of ``readme``, stripped."""
    _, found, rest = readme.partition(START)
    body, found_end, _ = rest.partition(END)
    if not (found and found_end):
        raise ValueError(f"README.md lacks the markers {START} and {END}")
    return body.strip()


def replace_section(readme: str, body: str) -> str:
    """``readme`` with ``body`` between the markers."""
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{body}\n{END}{tail}"


def write_readme(body: str, path: Path = README) -> None:
    """Replace the section in ``path`` atomically (a temporary file renamed over it)."""
    text = replace_section(path.read_text(encoding="utf-8"), body)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def count_rows(body: str) -> int:
    """The number of situations in a rendered section."""
    return sum(1 for line in body.splitlines() if line.startswith("| ")) - 1


def main(argv: list[str] | None = None) -> int:
    """Command line: print the section, or ``--write`` it into README.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the section in README.md")
    parser.add_argument("--world", type=Path, help="a small synthetic world (seed 1) to copy")
    args = parser.parse_args(argv)
    body = build(args.world)
    if args.write:
        write_readme(body)
        print(f"README.md: {count_rows(body)} situations", file=sys.stderr)
    else:
        print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
