"""The ``nepkit`` command line: ``run``, ``sweep``, ``book`` and ``synth``.

Errors in what the user typed (unknown region, bad parameter) print one line
``error: ...`` and exit with code 2; a chapter that fails prints where its
partial notebook is and exits with code 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
import yaml

from nepkit.params import ParameterError, RunParams
from nepkit.regions import CONTINENTS, RegionError

__all__ = ["main"]

USER_ERRORS = (ParameterError, RegionError, FileNotFoundError)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn known errors into one line on stderr and an exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from nepkit.runner import ChapterFailed, RunLocked

        try:
            return func(*args, **kwargs)
        except USER_ERRORS as exc:
            _fail(str(exc), 2)
        except RunLocked as exc:
            _fail(str(exc), 3)
        except ChapterFailed as exc:
            _fail(str(exc), 1)
        except ValueError as exc:  # validation errors of manifests, scenarios, ...
            _fail(str(exc), 2)

    return wrapper


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs (values parsed as YAML scalars or lists)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ParameterError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def _params(region: str, sources: str, seed: int, out: str | None, sets: tuple[str, ...], **extra: Any) -> RunParams:
    values = {"region": region, "sources": sources, "seed": seed} | extra | _parse_sets(sets)
    if out:
        values["run_dir"] = str(Path(out).resolve())
    if values["sources"] != "synthetic":
        manifest = Path(values["sources"])
        if not manifest.exists():
            raise FileNotFoundError(f"manifest {manifest} does not exist; pass --sources synthetic or a sources.yml path")
        values["sources"] = str(manifest.resolve())
    return RunParams.from_dict(values)


_common = [
    click.option("--sources", default="synthetic", show_default=True, help="'synthetic' or the path of a sources.yml manifest."),
    click.option("--seed", default=42, show_default=True, type=int, help="Seed of every random step."),
    click.option("--scheduler", default=None, help="Dask scheduler address (default: a local cluster)."),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Any other run parameter, e.g. --set ring_outer_km=4 (repeatable)."),
]


def _with_common(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_common):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nepkit")
def main() -> None:
    """NEP change and restoration potential of mining areas in the Belt and Road countries.

    \b
    Quick start:
      nepkit run --region all          # every chapter, into runs/all/
      nepkit sweep --regions continents
      nepkit book                      # default run + sweep + HTML book in _build/html
    """


@main.command()
@click.option("--region", default="all", show_default=True, help="all, a continent, a subregion or ISO3 codes (CHN,MNG).")
@click.option("--out", default=None, help="Run directory (default runs/<region>).")
@_with_common
@_friendly
def run(region: str, out: str | None, sources: str, seed: int, scheduler: str | None, sets: tuple[str, ...]) -> None:
    """Execute every chapter for one region into a run directory."""
    from nepkit.runner import run_chapters

    params = _params(region, sources, seed, out, sets, scheduler=scheduler)
    result = run_chapters(params, log=click.echo)
    click.echo(f"done: {len(result.notebooks)} chapters in {params.run_path}")


@main.command()
@click.option("--regions", required=True, help="Comma-separated regions, or 'continents' for all six.")
@click.option("--parallel", default=2, show_default=True, type=int, help="Regions run at once.")
@_with_common
@_friendly
def sweep(regions: str, parallel: int, sources: str, seed: int, scheduler: str | None, sets: tuple[str, ...]) -> None:
    """Run the chapters per region and write runs/sweep.csv."""
    from nepkit.runner import sweep as run_sweep

    names = list(CONTINENTS) if regions.strip() == "continents" else [r.strip() for r in regions.split(",") if r.strip()]
    base = _params("all", sources, seed, None, sets, scheduler=scheduler)
    for name in names:  # fail early on a typo, before any region runs
        base.replace(region=name)
    table = run_sweep(names, base, parallel=parallel, log=click.echo)
    click.echo(table[["region", "status"]].to_string(index=False))
    failed = table[table["status"] != "ok"]
    if len(failed):
        _fail(f"{len(failed)} region(s) failed: {', '.join(failed['region'])}", 1)


@main.command()
@click.option("--skip-run", is_flag=True, help="Build from the existing runs/all without re-running.")
@click.option("--no-sweep", is_flag=True, help="Skip the six-continent sweep.")
@_with_common
@_friendly
def book(skip_run: bool, no_sweep: bool, sources: str, seed: int, scheduler: str | None, sets: tuple[str, ...]) -> None:
    """Run the default region (and the continent sweep), then build the HTML book."""
    from nepkit.runner import build_book, run_chapters
    from nepkit.runner import sweep as run_sweep

    params = _params("all", sources, seed, None, sets, scheduler=scheduler)
    if not skip_run:
        run_chapters(params, log=click.echo)
        if not no_sweep:
            run_sweep(list(CONTINENTS), params, log=click.echo)
    index = build_book(params)
    click.echo(f"book: {index}")


@main.command()
@click.option("--preset", default="paper", show_default=True,
              help="paper (the paper's scale), small (tests), or a validation world: medium, autocorr, nodata, weak.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--out", required=True, help="Folder to write the world into.")
@_friendly
def synth(preset: str, seed: int, out: str) -> None:
    """Write a synthetic world (mines, NEP rasters, covariates, truth) in the real formats."""
    from nepkit.synth import PRESETS, generate  # local: the generator is slow to import

    if preset not in PRESETS:
        raise click.BadParameter(f"{preset!r} is not a preset; use one of: {', '.join(sorted(PRESETS))}",
                                 param_hint="'--preset'")
    manifest = generate(Path(out), preset=preset, seed=seed)
    click.echo(f"manifest: {manifest}")


if __name__ == "__main__":
    main()
