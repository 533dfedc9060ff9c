"""Wall time and peak memory of `nepkit run` and of the six-continent sweep.

Runs, in one process tree, on the default (`paper`) synthetic world:

1. `nepkit run --region all` with a cold extraction cache (the cache folder is moved
   aside first), then again with a warm cache;
2. `nepkit sweep --regions continents` (warm cache).

Peak memory is the largest resident set of any single process of the command
(kernel, Dask worker or the CLI itself: `ru_maxrss` of the children, measured in a
fresh wrapper process per command so that each figure is the command's own).
Targets on 2 cores: warm-cache run under 3 minutes, sweep under 10.

Usage: ``python benchmarks/book.py [--skip-cold] [--skip-sweep]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEPKIT = str(Path(sys.executable).parent / "nepkit")


#: Runs the command given as arguments, then prints the peak RSS of its process tree (kB).
_WRAPPER = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)"
)


def measure(label: str, args: list[str]) -> dict:
    """Run ``nepkit args`` and print its wall time and the peak RSS of its processes."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, NEPKIT, *args], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    *rest, last = proc.stderr.strip().splitlines() or ["0"]
    peak_mb = int(last) / 1024
    status = "ok" if proc.returncode == 0 else f"FAILED ({proc.returncode}): {' '.join(rest)[-300:]}"
    load = os.getloadavg()[0]
    print(f"{label:<34} wall {wall:8.1f} s   peak RSS {peak_mb:8.0f} MB   load {load:4.1f}   {status}", flush=True)
    return {"label": label, "wall_s": wall, "peak_mb": peak_mb, "ok": proc.returncode == 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    from nepkit.synth import ensure_world  # noqa: PLC0415 - after argument parsing

    if not args.skip_cold:
        cache = ensure_world().parent / ".nepkit-cache"  # the default world's extraction cache
        if cache.exists():
            shutil.move(cache, cache.with_name(cache.name + ".bak"))
        try:
            measure("nepkit run (cold cache)", ["run", "--region", "all"])
        finally:
            backup = cache.with_name(cache.name + ".bak")
            if backup.exists():
                shutil.rmtree(backup)
    measure("nepkit run (warm cache)", ["run", "--region", "all"])
    if not args.skip_sweep:
        measure("nepkit sweep continents (warm)", ["sweep", "--regions", "continents"])


if __name__ == "__main__":
    main()
