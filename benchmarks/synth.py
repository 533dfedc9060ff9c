"""Benchmark: generate a synthetic world and print its wall time, peak memory and scale.

Usage::

    python benchmarks/synth.py [--preset paper] [--seed 42] [--out DIR]

Without ``--out`` the world goes to a temporary folder, removed afterwards. The
target for the ``paper`` preset is under a minute and under 3 GB on 2 cores.
Peak memory is the largest resident set of this process and its children
(``resource.getrusage``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from nepkit.synth import PRESETS, generate


def _peak_rss_mb() -> float:
    """Peak resident set size of this process and its children, MB (Linux reports KiB)."""
    scale = 1 / 1024**2 if sys.platform == "darwin" else 1 / 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * scale


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1024**2


def run(preset: str, seed: int, out: Path) -> dict:
    """Generate the world into ``out``; return the timings and the scale figures."""
    t0, c0 = time.perf_counter(), time.process_time()
    manifest = generate(out, preset=preset, seed=seed, progress=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    info = json.loads((manifest.parent / "world.json").read_text())
    return {"preset": preset, "seed": seed, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "peak_rss_mb": round(_peak_rss_mb()), "size_mb": round(_folder_mb(manifest.parent)),
            "n_tiles": info["n_tiles"], **info["scale"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="keep the world here (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nepkit-synth-") as tmp:
        result = run(args.preset, args.seed, args.out or Path(tmp) / "world")
    totals = result.pop("expected_nep_total_Gg")
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(f"{'expected_nep_total_Gg':<{width}}  " + ", ".join(f"{y}: {v:.0f}" for y, v in totals.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
