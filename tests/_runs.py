"""Helpers of the fault-tolerance and determinism tests: ``nepkit run`` in subprocesses.

Every run reads the small synthetic world of the test session through its
manifest (``--sources``), so its extraction cache lies in the session's
temporary folder, and uses the same seed and parameters; the uninterrupted
reference run is made once per session (:func:`reference_run`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import psutil

NEPKIT = Path(sys.executable).parent / "nepkit"
SEED = 1
#: Summary fields that depend on where the run directory is (no summary field holds a timing).
PATH_FIELDS = (("parameters", "run_dir"),)
#: Notebook metadata that records wall-clock times (papermill's and the kernel's).
TIME_KEYS = ("start_time", "end_time", "duration")
#: Upper bound of a wait for a run to reach a stage (a guard against hanging, not a speed limit).
PATIENCE_S = 1800


def command(manifest: Path, out: Path) -> list[str]:
    """``nepkit run`` of the whole small world into ``out``."""
    return [str(NEPKIT), "run", "--region", "all", "--sources", str(manifest), "--seed", str(SEED),
            "--set", "n_sample=400", "--out", str(out)]


def start(manifest: Path, out: Path) -> subprocess.Popen:
    """Start ``nepkit run`` (stdout and stderr to ``<out>.log``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".log"), "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(command(manifest, out), stdout=log, stderr=subprocess.STDOUT)


def log_of(out: Path) -> str:
    """What the runs into ``out`` printed so far."""
    path = out.with_name(out.name + ".log")
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def run(manifest: Path, out: Path) -> None:
    """Run ``nepkit run`` to the end; fail with its output when it fails."""
    proc = start(manifest, out)
    if proc.wait() != 0:
        raise AssertionError(f"nepkit run into {out} failed ({proc.returncode}):\n{log_of(out)[-3000:]}")


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc`` and every process it started (kernel, Dask workers), as a crash would."""
    try:
        parent = psutil.Process(proc.pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=60)
    proc.wait()


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll ``condition`` every 20 ms; fail if ``proc`` ends first."""
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended (code {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def summary(run_dir: Path) -> dict[str, Any]:
    """``summary.json`` without the fields of :data:`PATH_FIELDS`."""
    data = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    for section, key in PATH_FIELDS:
        data.get(section, {}).pop(key, None)
    return data


def normalized_notebook(path: Path) -> str:
    """An executed notebook without its timestamps and durations, as canonical JSON.

    Left out: papermill's and the kernel's times, and the cells' stderr streams
    (progress bars, whose rates are wall-clock figures; the book hides them).
    """
    nb = nbformat.read(path, as_version=4)
    for key in TIME_KEYS:
        nb.metadata.get("papermill", {}).pop(key, None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for key in TIME_KEYS:
            cell.metadata.get("papermill", {}).pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    return json.dumps(nb, sort_keys=True)


def digests(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every file of a run directory (notebooks normalized by :func:`normalized_notebook`)."""
    out = {}
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        data = normalized_notebook(path).encode() if path.suffix == ".ipynb" else path.read_bytes()
        out[str(path.relative_to(run_dir))] = hashlib.sha256(data).hexdigest()
    return out


def clear_cache(manifest: Path) -> None:
    """Remove the world's extraction cache: the next run extracts from scratch."""
    shutil.rmtree(manifest.parent / ".nepkit-cache", ignore_errors=True)


@functools.cache
def reference_run(manifest: Path, root: Path) -> Path:
    """An uninterrupted run with a cold extraction cache, made once per session."""
    clear_cache(manifest)
    out = root / "reference" / "run"
    run(manifest, out)
    return out
