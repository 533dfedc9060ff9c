"""Fault tolerance: killed runs resume to the same result, damaged cache files are rebuilt,
two runs on one directory never interleave.

The runs are real ``nepkit run`` processes on the small world of the session,
killed with SIGKILL (with the kernel and Dask workers they started) at chosen
points: during the extraction, and during a chapter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from _runs import clear_cache, command, kill_tree, log_of, reference_run, run, start, summary, wait_for

from nepkit import extract
from nepkit.extract import Chunking, run_extraction
from nepkit.params import RunParams

#: One mine per window and five per task: about 40 cache entries for the small world.
FINE = Chunking(max_window_px=1, join_px=0, task_mines=5)


def _params(manifest: Path) -> RunParams:
    return RunParams(region="all", sources=str(manifest), seed=1, scheduler="synchronous")


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("extract-*/task-*.parquet"))


def _readable(path: Path) -> bool:
    try:
        pq.read_table(path)
    except Exception:  # noqa: BLE001 - any failure means unreadable
        return False
    return True


# ------------------------------------------------------------------------ the extraction


EXTRACT_SCRIPT = """
import sys
from nepkit.extract import Chunking, run_extraction
from nepkit.params import RunParams

if __name__ == "__main__":
    params = RunParams(region="all", sources=sys.argv[1], seed=1, scheduler="synchronous")
    chunking = Chunking(max_window_px=1, join_px=0, task_mines=5)
    ex = run_extraction(params, cache_dir=sys.argv[2], chunking=chunking, progress=False)
    print(ex.stats["tasks_reused"], ex.stats["tasks_computed"], ex.stats["tasks"])
"""


def test_an_extraction_killed_after_some_cache_entries_resumes_with_them(small_world, tmp_path):
    manifest = small_world
    uninterrupted = run_extraction(_params(manifest), cache_dir=tmp_path / "clean", chunking=FINE, progress=False)
    cache = tmp_path / "cache"
    script = tmp_path / "extract.py"
    script.write_text(EXTRACT_SCRIPT, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), str(manifest), str(cache)], stdout=subprocess.PIPE, text=True)
    wait_for(lambda: len(_entries(cache)) >= 5, "five cache entries", proc)
    kill_tree(proc)
    written = _entries(cache)
    assert 5 <= len(written) < uninterrupted.stats["tasks"], "the kill came after the extraction ended"
    assert all(_readable(p) for p in written), "an entry under a cache name is incomplete"
    resumed = subprocess.run([proc.args[0], str(script), str(manifest), str(cache)], capture_output=True, text=True,
                             check=True)
    reused, computed, total = map(int, resumed.stdout.split())
    assert reused == len(written) and reused + computed == total
    again = run_extraction(_params(manifest), cache_dir=cache, chunking=FINE, progress=False)
    assert again.stats["tasks_computed"] == 0
    pd.testing.assert_frame_equal(again.nep_panel, uninterrupted.nep_panel, check_exact=True)
    pd.testing.assert_frame_equal(again.covariates, uninterrupted.covariates, check_exact=True)


def _scramble(path: Path) -> None:
    """Invert 16 bytes in the middle of a file (its data pages)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))


def test_damaged_cache_files_are_detected_and_rebuilt(small_world, tmp_path):
    params = _params(small_world)
    chunking = Chunking(max_window_px=1, join_px=0, task_mines=40)
    first = run_extraction(params, cache_dir=tmp_path, chunking=chunking, progress=False)
    files = _entries(tmp_path)
    assert len(files) >= 4
    _scramble(files[0])  # silent damage: without a checksum most such files still parse
    files[1].write_bytes(files[1].read_bytes()[: len(files[1].read_bytes()) // 2])  # truncated copy
    files[2].write_bytes(files[3].read_bytes())  # a valid file of another task under this name
    damaged = {p: p.read_bytes() for p in files[:3]}
    again = run_extraction(params, cache_dir=tmp_path, chunking=chunking, progress=False)
    assert again.stats["tasks_rejected"] == 3
    assert again.stats["tasks_computed"] == 3
    pd.testing.assert_frame_equal(again.nep_panel, first.nep_panel, check_exact=True)
    pd.testing.assert_frame_equal(again.covariates, first.covariates, check_exact=True)
    assert all(p.read_bytes() != old for p, old in damaged.items()), "a damaged file was not rewritten"
    assert run_extraction(params, cache_dir=tmp_path, chunking=chunking, progress=False).stats["tasks_computed"] == 0


def test_a_flipped_bit_anywhere_is_never_read_as_data(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"mine_id": np.arange(1, 41, dtype=np.int64),
                          **{f"nep_mine_{y}": rng.normal(80, 30, 40) for y in range(2000, 2021)},
                          "ring_antimeridian": np.zeros(40, dtype=bool)})
    task = SimpleNamespace(mine_ids=frame["mine_id"].to_numpy())
    path = tmp_path / "task.parquet"
    extract._write_cached(path, frame)
    pd.testing.assert_frame_equal(extract._read_cached(path, task), frame, check_exact=True)
    raw = path.read_bytes()
    for pos in rng.integers(0, len(raw), 300):
        damaged = bytearray(raw)
        damaged[pos] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(damaged))
        read = extract._read_cached(path, task)
        assert read is None or read.equals(frame), f"a flip at byte {pos} was read as other data"


# ------------------------------------------------------------------------- whole runs


@pytest.mark.slow
def test_runs_killed_during_extraction_and_during_a_chapter_resume_to_the_same_summary(
    small_world, tmp_path_factory
):
    manifest = small_world
    expected = summary(reference_run(manifest, tmp_path_factory.getbasetemp()))
    out = tmp_path_factory.mktemp("faults") / "run"
    cache = manifest.parent / ".nepkit-cache"

    # 1. killed while the data chapter extracts (cache folder made, no panel written yet)
    clear_cache(manifest)
    proc = start(manifest, out)
    wait_for(lambda: any(cache.glob("extract-*")), "the extraction", proc)
    kill_tree(proc)
    assert not (out / "nep_panel.parquet").exists(), "the kill came after the extraction"
    assert all(_readable(p) for p in _entries(cache)), "an entry under a cache name is incomplete"

    # 2. killed during the potential chapter; a second run on the same directory meanwhile refuses
    proc = start(manifest, out)
    wait_for(lambda: "03_potential ..." in log_of(out), "the potential chapter", proc)
    other = subprocess.run(command(manifest, out), capture_output=True, text=True)
    assert proc.poll() is None, "the first run ended before the second one tried"
    assert other.returncode == 3
    assert "is being written by another run; wait for it or pass another --out" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1
    kill_tree(proc)
    assert "02_nep_change" in json.dumps(sorted(p.name for p in out.iterdir()))
    json.loads((out / "summary.json").read_text(encoding="utf-8"))  # never half-written

    # 3. the re-run finishes with the summary of an uninterrupted run
    run(manifest, out)
    assert summary(out) == expected

