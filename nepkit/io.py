"""Atomic artifact writing and the run's ``summary.json``.

Every artifact is written to a temporary file in the target's folder and then
renamed over the target (``os.replace`` is atomic on POSIX), so a run that dies
half-way never leaves a truncated file under an artifact's name.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "atomic_path",
    "file_lock",
    "write_json",
    "read_json",
    "write_table",
    "update_summary",
    "read_summary",
]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    Parameters
    ----------
    target : path-like
        The final file name. Its folder is created if missing.

    Yields
    ------
    pathlib.Path
        A fresh temporary path in the same folder (same file system, so the
        final rename is atomic). On an exception it is removed and ``target``
        is left untouched.

    Examples
    --------
    >>> with atomic_path("out/table.parquet") as tmp:  # doctest: +SKIP
    ...     df.to_parquet(tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block.

    Parameters
    ----------
    path : path-like
        The lock file. Its folder is created if missing.
    wait : bool
        Wait for another holder to let go (default), or yield ``False`` at once
        without the lock when it is held.

    Yields
    ------
    bool
        Whether the lock is held.

    Examples
    --------
    >>> with file_lock("runs/all/.lock", wait=False) as held:  # doctest: +SKIP
    ...     if not held:
    ...         raise RuntimeError("busy")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _to_builtin(obj: Any) -> Any:
    """Convert numpy scalars and arrays to JSON-serialisable Python objects."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> Path:
    """Write ``data`` as indented, key-sorted JSON, atomically.

    NaN is written as ``null`` so the file is strict JSON.
    """
    text = json.dumps(_nan_to_none(data), indent=2, sort_keys=True, default=_to_builtin)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, np.floating) and not np.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON file into a dict; a clear error when it is missing."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run the chapter that writes it first")
    return json.loads(path.read_text(encoding="utf-8"))


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a (Geo)DataFrame to Parquet or CSV by the suffix of ``path``, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            raise ValueError(f"unsupported table format {path.suffix!r}: use .parquet or .csv")
    return path


def update_summary(run_dir: str | os.PathLike[str], part: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``part`` into ``run_dir/summary.json`` (created if missing), atomically.

    Each chapter owns some of the summary's keys; re-running a chapter replaces
    its keys and keeps the others.
    """
    path = Path(run_dir) / "summary.json"
    summary = read_json(path) if path.exists() else {}
    summary.update(_nan_to_none(dict(part)))
    write_json(path, summary)
    return summary


def read_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``run_dir/summary.json``."""
    return read_json(Path(run_dir) / "summary.json")
