"""Does the method recover a known truth? The computations of the validation chapter.

On a synthetic world the injected truth is known (DESIGN.md section 5): the
mining effect per mine and year, the attainable gain per mine, the driver
weights. This module sets the pipeline's estimates beside it:

* :func:`loss_recovery`: the estimated period loss of each mine (the
  statistic ``classify_by`` of :func:`nepkit.nepchange.classify`) against the
  injected one, per continent, and the mine-year loss;
* :func:`gain_recovery`: the predicted attainable gain (``potential.parquet``)
  against the true attainable gain, per continent and inside/outside the
  model's area of applicability;
* :func:`driver_recovery`: the importance ranks of ``drivers.csv`` against the
  true driver weights (``truth.json``);
* :func:`harder_worlds`: the same three checks on the ``medium`` world and on
  its harder variants (:data:`nepkit.synth.presets.HARDER`: stronger spatial
  autocorrelation, more nodata, weaker signal), each run through the stage
  functions (extraction, NEP change, potential, drivers) in a folder of its
  own. A world's stage outputs are cached beside it, keyed by the world's
  fingerprint, the method parameters, the source of :mod:`nepkit` and the
  library versions, so a sweep computes them once;
* :func:`sensitivity`: the headline numbers under other reference-ring widths
  (re-extracted; the forest refitted with the run's tuned hyper-parameters),
  gain thresholds and potential definitions (from the potential stage's own
  refits), as one table.

:func:`run` does all of it for a run, writes ``validation_recovery.csv``,
``validation_worlds.csv`` and ``validation_sensitivity.csv`` and merges the
``validation`` key of ``summary.json``.

Agreement is measured by :func:`agreement`: Pearson's r, the bias (mean of
estimate minus truth), the RMSE and the slope of the estimate on the truth
(1 = no attenuation), in g C m-2 a-1.

Examples
--------
>>> from nepkit.params import RunParams
>>> from nepkit import validation
>>> res = validation.run(RunParams(synthetic_preset="small", seed=1))  # doctest: +SKIP
>>> res.loss.loc[res.loss["group"] == "all", "r"]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
from scipy import stats

from nepkit import drivers, extract, nepchange, potential, sources
from nepkit.artifacts import INDICATORS, artifact_path, paper_reported, read_artifact
from nepkit.io import read_json, read_summary, update_summary, write_table
from nepkit.params import RunParams
from nepkit.paths import SYNTHETIC_DIR, shown
from nepkit.sources import SourceError

__all__ = [
    "HARDER_WORLDS",
    "RING_VARIANTS",
    "N_BOOT_WORLDS",
    "HEADLINE",
    "ValidationError",
    "WorldTruth",
    "world_truth",
    "agreement",
    "loss_recovery",
    "gain_recovery",
    "driver_recovery",
    "Recovery",
    "recovery",
    "world_row",
    "HarderWorlds",
    "harder_worlds",
    "ring_headline",
    "sensitivity",
    "ValidationResult",
    "run",
]

#: The worlds of the stress test: the baseline at their scale, then the harder ones.
HARDER_WORLDS = ("medium", "autocorr", "nodata", "weak")
#: Reference rings (inner, outer km) of the sensitivity table, beside the run's own.
RING_VARIANTS = ((1.0, 3.0), (1.0, 8.0), (2.0, 5.0))
#: Bootstrap replicates of the NEP-change stage in the harder worlds (its intervals are not shown).
N_BOOT_WORLDS = 50
#: Headline numbers of the sensitivity table, with their units.
HEADLINE = {
    "n_mines": "mines with a loss statistic",
    "loss_share": "share of mines",
    "net_loss_Gg_per_a": "Gg C a-1",
    "loss_mean_g_m2_a": "g C m-2 a-1",
    "gain_mean_g_m2_a": "g C m-2 a-1",
    "n_sample": "training mines",
    "potential_mean": "g C m-2 a-1",
    "no_potential_share": "share of mines",
}
#: Relative difference of a mine's area (run against world layer) above which it "differs".
SAME_AREA_RTOL = 1e-3
#: Largest share of differing mines for which a run still counts as made from the world
#: (repaired invalid polygons may differ).
SAME_WORLD_TOLERANCE = 0.05
#: Parameters that do not change what a harder world computes (left out of its cache key).
_NOT_METHOD = ("region", "sources", "run_dir", "scheduler", "n_workers", "synthetic_preset")
_PACKAGE = Path(__file__).resolve().parent


class ValidationError(ValueError):
    """The validation cannot run on these inputs (no truth, missing artifacts...)."""


# ------------------------------------------------------------------------------ truth


@dataclass(frozen=True)
class WorldTruth:
    """A synthetic world's truth.

    Attributes
    ----------
    panel : pandas.DataFrame
        ``truth.parquet``: ``mine_id, year, true_loss, true_attainable_gain, ...``
        (g C m-2 a-1; ``true_loss`` positive = NEP loss).
    meta : dict
        ``truth.json``: ``driver_weights``, ``null_indicators``, ...
    source : str
        The folder it was read from.
    areas : pandas.Series
        The world's mine areas (``AREA`` of its mines layer, km2) by mine id:
        :func:`recovery` checks that a run's artifacts come from this world.
    """

    panel: pd.DataFrame
    meta: dict
    source: str
    areas: pd.Series


def world_truth(params: RunParams) -> WorldTruth | None:
    """The truth of the world a run reads, or None for real data.

    The synthetic source (and any manifest with a ``truth`` entry, as every
    synthetic world writes) names ``truth.parquet`` and ``truth.json``.

    Examples
    --------
    >>> world_truth(RunParams(synthetic_preset="small", seed=1)).meta["null_indicators"]  # doctest: +SKIP
    ['spei', 'tmin', 'curvature', 'gdp']
    """
    panel, _ = sources.truth_table(params)
    if panel is None:
        return None
    manifest = sources.resolve_manifest(params)
    layer = pyogrio.read_dataframe(manifest.mines.path, layer=manifest.mines.layer, read_geometry=False,
                                   fid_as_index=True)
    areas = layer["AREA"] if "AREA" in layer else pd.Series(dtype=float)
    return WorldTruth(panel, sources.truth_meta(params) or {}, str(manifest.folder), areas.astype(float))


def _check_same_world(mines: pd.DataFrame, truth: WorldTruth, run_dir: Path) -> None:
    """Fail when the run's mines are not the world's (the world was regenerated since the run)."""
    if truth.areas.empty:
        return
    world = truth.areas.reindex(mines["mine_id"].to_numpy()).to_numpy()
    own = mines["area_km2"].to_numpy(dtype=float)
    differ = ~(np.abs(world - own) <= SAME_AREA_RTOL * own)
    if differ.mean() > SAME_WORLD_TOLERANCE:
        raise ValidationError(
            f"the artifacts in {run_dir} come from another version of the world in {truth.source} "
            f"({differ.mean():.0%} of the mines differ in area): re-run every chapter (nepkit run)"
        )


# -------------------------------------------------------------------------- agreement


def agreement(estimate: np.ndarray | pd.Series, truth: np.ndarray | pd.Series) -> dict[str, float]:
    """How well ``estimate`` recovers ``truth`` (pairs with a non-finite value are left out).

    Returns
    -------
    dict
        ``n`` (pairs), ``r`` (Pearson), ``bias`` (mean of estimate - truth),
        ``rmse`` and ``slope`` (least-squares slope of estimate on truth; 1 =
        no attenuation). NaN where fewer than 3 pairs or a constant side.

    Examples
    --------
    >>> {k: round(v, 6) for k, v in agreement(np.array([2.0, 4.0, 6.0, np.nan]), np.array([1.0, 2.0, 3.0, 4.0])).items()}
    {'n': 3, 'r': 1.0, 'bias': 2.0, 'rmse': 2.160247, 'slope': 2.0}
    """
    e, t = np.asarray(estimate, dtype=float), np.asarray(truth, dtype=float)
    ok = np.isfinite(e) & np.isfinite(t)
    e, t = e[ok], t[ok]
    out = {"n": int(ok.sum()), "r": np.nan, "bias": np.nan, "rmse": np.nan, "slope": np.nan}
    if len(e) < 3:
        return out
    out["bias"] = float(np.mean(e - t))
    out["rmse"] = float(np.sqrt(np.mean((e - t) ** 2)))
    if np.ptp(e) > 0 and np.ptp(t) > 0:
        out["r"] = float(np.corrcoef(e, t)[0, 1])
        out["slope"] = float(np.polyfit(t, e, 1)[0])
    return out


def _by_group(pairs: pd.DataFrame, est: str, true: str, *, group: str = "continent") -> pd.DataFrame:
    """:func:`agreement` over all rows (group ``all``) and per ``group``."""
    rows = [{"group": "all"} | agreement(pairs[est], pairs[true])]
    for name, g in pairs.groupby(group, sort=True):
        rows.append({"group": str(name)} | agreement(g[est], g[true]))
    return pd.DataFrame(rows, columns=["group", "n", "r", "bias", "rmse", "slope"])


def _true_change(truth: pd.DataFrame, baseline: int) -> pd.DataFrame:
    """``mine_id, year, loss``: the injected loss relative to each mine's ``baseline`` year."""
    t = truth[["mine_id", "year", "true_loss"]]
    base = t[t["year"] == baseline].set_index("mine_id")["true_loss"]
    t = t[t["year"] != baseline]
    return pd.DataFrame({"mine_id": t["mine_id"].to_numpy(), "year": t["year"].to_numpy(),
                         "loss": (t["true_loss"] - t["mine_id"].map(base)).to_numpy()})


def loss_recovery(
    change: pd.DataFrame, truth: pd.DataFrame, mines: pd.DataFrame, *, baseline: int, by: str = "mean"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The estimated NEP loss against the injected one.

    Parameters
    ----------
    change : pandas.DataFrame
        ``nep_change``: ``mine_id, year, loss`` (g C m-2 a-1, positive = loss).
    truth : pandas.DataFrame
        ``mine_id, year, true_loss`` (the world's ``truth.parquet``).
    mines : pandas.DataFrame
        ``mine_id, continent``.
    baseline : int
        The run's baseline year (the truth is taken relative to it).
    by : {"mean", "final", "trend"}
        The period statistic (:func:`nepkit.nepchange.classify`).

    Returns
    -------
    pairs : pandas.DataFrame
        Per mine: ``mine_id, continent, loss_stat, loss_stat_true, status, status_true``.
    table : pandas.DataFrame
        Per continent and ``all``: :func:`agreement` of the period statistic,
        ``r_mine_year`` (of every mine-year's loss) and ``status_agreement``
        (share of mines classified as the truth is).

    Examples
    --------
    >>> change = pd.DataFrame({"mine_id": [1, 1, 2, 2, 3, 3], "year": [2001, 2002] * 3,
    ...                        "loss": [10.0, 30.0, -5.0, -15.0, 1.0, 3.0]})
    >>> truth = pd.concat([change.rename(columns={"loss": "true_loss"}).assign(true_loss=lambda d: d.true_loss - 1),
    ...                    pd.DataFrame({"mine_id": [1, 2, 3], "year": 2000, "true_loss": 0.0})])
    >>> mines = pd.DataFrame({"mine_id": [1, 2, 3], "continent": ["Asia"] * 3})
    >>> loss_recovery(change, truth, mines, baseline=2000)[1].loc[0, ["n", "bias", "status_agreement"]].tolist()
    [3.0, 1.0, 1.0]
    """
    true = _true_change(truth, baseline)
    true = true[true["year"].isin(change["year"].unique()) & true["mine_id"].isin(change["mine_id"].unique())]
    est = nepchange.classify(change, by=by)
    pairs = est.merge(nepchange.classify(true, by=by), on="mine_id", suffixes=("", "_true"))
    pairs = pairs.merge(mines[["mine_id", "continent"]], on="mine_id", how="left")
    pairs = pairs[["mine_id", "continent", "loss_stat", "loss_stat_true", "status", "status_true"]]
    table = _by_group(pairs, "loss_stat", "loss_stat_true")
    years = change.merge(true.rename(columns={"loss": "true"}), on=["mine_id", "year"])
    years = years.merge(mines[["mine_id", "continent"]], on="mine_id", how="left")
    table["r_mine_year"] = table["group"].map(_by_group(years, "loss", "true").set_index("group")["r"])
    same = pairs["status"] == pairs["status_true"]
    shares = same.groupby(pairs["continent"].astype(str)).mean()
    shares["all"] = same.mean() if len(same) else np.nan
    table["status_agreement"] = table["group"].map(shares).astype(float)
    return pairs.reset_index(drop=True), table


def gain_recovery(pot: pd.DataFrame, truth: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The predicted attainable gain against the true one.

    Parameters
    ----------
    pot : pandas.DataFrame
        ``potential.parquet``: ``mine_id, continent, attainable, out_of_domain``.
    truth : pandas.DataFrame
        ``mine_id, true_attainable_gain`` (one row per mine, or repeated per year).

    Returns
    -------
    pairs : pandas.DataFrame
        Per mine: ``mine_id, continent, attainable, true_attainable_gain, out_of_domain``.
    table : pandas.DataFrame
        :func:`agreement` per continent and ``all``, and over the mines inside
        (``in domain``) and outside (``out of domain``) the area of applicability.

    Examples
    --------
    >>> pot = pd.DataFrame({"mine_id": [1, 2, 3], "continent": ["Asia"] * 3,
    ...                     "attainable": [110.0, 190.0, 300.0], "out_of_domain": [False] * 3})
    >>> truth = pd.DataFrame({"mine_id": [1, 2, 3], "true_attainable_gain": [100.0, 200.0, 300.0]})
    >>> gain_recovery(pot, truth)[1].loc[0, "bias"]
    0.0
    """
    true = truth.groupby("mine_id", sort=True)["true_attainable_gain"].first().reset_index()
    pairs = pot[["mine_id", "continent", "attainable", "out_of_domain"]].merge(true, on="mine_id")
    pairs = pairs[["mine_id", "continent", "attainable", "true_attainable_gain", "out_of_domain"]]
    table = _by_group(pairs, "attainable", "true_attainable_gain")
    domain = pairs.assign(domain=np.where(pairs["out_of_domain"].astype(bool), "out of domain", "in domain"))
    extra = _by_group(domain, "attainable", "true_attainable_gain", group="domain").iloc[1:]
    return pairs.reset_index(drop=True), pd.concat([table, extra], ignore_index=True)


def driver_recovery(table: pd.DataFrame, meta: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The driver ranking against the true driver weights.

    Parameters
    ----------
    table : pandas.DataFrame
        ``drivers.csv``: ``indicator``, ``cpi, permutation, shap`` and their ``*_rank``.
    meta : mapping
        ``truth.json``: ``driver_weights`` (indicator -> g C m-2 a-1 per sd) and
        ``null_indicators``. Weights of quantities that are not indicators are
        ignored.

    Returns
    -------
    ranks : pandas.DataFrame
        Per indicator: ``indicator, true_weight, true_rank`` (by absolute
        weight; the indicators without effect share the last rank), ``null``
        and the three methods' ranks; sorted by ``true_rank``.
    scores : pandas.DataFrame
        Per method (``cpi, permutation, shap``): ``spearman`` (rank correlation of
        the importance with the absolute true weight), ``top3_hits`` (true top
        three among the method's top three), ``ordered_share`` and ``passed`` of
        :func:`nepkit.drivers.null_rank_check`.

    Examples
    --------
    >>> t = pd.DataFrame({"indicator": ["a", "b", "c"], "cpi": [3.0, 2.0, 1.0], "cpi_rank": [1, 2, 3]})
    >>> meta = {"driver_weights": {"a": 5.0, "b": -2.0, "c": 0.0}, "null_indicators": ["c"]}
    >>> driver_recovery(t, meta)[1][["method", "spearman", "passed"]].values.tolist()
    [['cpi', 1.0, True]]
    """
    weights = {k: float(v) for k, v in meta.get("driver_weights", {}).items() if k in set(table["indicator"])}
    if not weights:
        raise ValidationError("truth.json names no driver weight of the indicators in drivers.csv")
    truth = pd.DataFrame({"indicator": list(weights), "true_weight": list(weights.values())})
    truth["true_rank"] = stats.rankdata(-truth["true_weight"].abs(), method="min").astype(int)
    truth["null"] = truth["true_weight"] == 0
    methods = [m for m in ("cpi", "permutation", "shap") if m in table and f"{m}_rank" in table]
    ranks = truth.merge(table[["indicator", *(f"{m}_rank" for m in methods)]], on="indicator")
    ranks = ranks.sort_values(["true_rank", "indicator"], ignore_index=True)
    values = truth.merge(table[["indicator", *methods]], on="indicator")
    check = drivers.null_rank_check(table, meta)
    true_top = set(truth.nsmallest(3, "true_rank", keep="first")["indicator"])
    rows = []
    for m in methods:
        top = set(table.nsmallest(3, f"{m}_rank", keep="first")["indicator"])
        rho = stats.spearmanr(values[m], values["true_weight"].abs()).statistic
        rows.append({"method": m, "spearman": float(rho), "top3_hits": len(top & true_top),
                     "ordered_share": check.get(m, {}).get("ordered_share", np.nan),
                     "passed": check.get(m, {}).get("passed", False)})
    return ranks, pd.DataFrame(rows, columns=["method", "spearman", "top3_hits", "ordered_share", "passed"])


# ------------------------------------------------------------------------- one world


@dataclass
class Recovery:
    """The truth checks of one run (a run directory and its world's truth).

    Attributes
    ----------
    loss_pairs, loss : pandas.DataFrame
        :func:`loss_recovery`.
    gain_pairs, gain : pandas.DataFrame
        :func:`gain_recovery` (empty when the potential stage trained no model).
    driver_ranks, driver_scores : pandas.DataFrame
        :func:`driver_recovery` (empty when the drivers stage ranked none).
    summary : dict
        The run's ``summary.json``.
    notes : list of str
        What could not be checked, and why.
    """

    loss_pairs: pd.DataFrame
    loss: pd.DataFrame
    gain_pairs: pd.DataFrame
    gain: pd.DataFrame
    driver_ranks: pd.DataFrame
    driver_scores: pd.DataFrame
    summary: dict
    notes: list[str] = field(default_factory=list)


def recovery(params: RunParams, truth: WorldTruth) -> Recovery:
    """All truth checks of the run in ``params.run_path``, from its artifacts.

    Reads ``mines.parquet``, ``nep_change.parquet``, ``potential.parquet``,
    ``drivers.csv`` and ``summary.json``.

    Raises
    ------
    ValidationError
        When the run's mines are not those of the world (more than
        :data:`SAME_WORLD_TOLERANCE` of them differ in area): the world was
        regenerated after the run, and its truth belongs to other mines.

    Examples
    --------
    >>> params = RunParams(synthetic_preset="small", seed=1)  # doctest: +SKIP
    >>> rec = recovery(params, world_truth(params))  # doctest: +SKIP
    >>> rec.loss.columns.tolist()  # doctest: +SKIP
    ['group', 'n', 'r', 'bias', 'rmse', 'slope', 'r_mine_year', 'status_agreement']
    """
    run_dir = params.run_path
    mines = pd.DataFrame(read_artifact(run_dir, "mines").drop(columns="geometry"))
    _check_same_world(mines, truth, run_dir)
    change = read_artifact(run_dir, "nep_change")
    loss_pairs, loss = loss_recovery(change, truth.panel, mines, baseline=params.baseline, by=params.classify_by)
    notes: list[str] = []
    pot = read_artifact(run_dir, "potential")
    if pot["attainable"].notna().any():
        gain_pairs, gain = gain_recovery(pot, truth.panel)
    else:
        gain_pairs, gain = pd.DataFrame(), pd.DataFrame()
        notes.append("The potential stage trained no model for this region: no attainable gain to check.")
    table = read_artifact(run_dir, "drivers")
    if len(table) and truth.meta:
        ranks, scores = driver_recovery(table, truth.meta)
    else:
        ranks, scores = pd.DataFrame(), pd.DataFrame()
        notes.append("No driver ranking to check (no model, or the world has no truth.json).")
    return Recovery(loss_pairs, loss, gain_pairs, gain, ranks, scores, read_summary(run_dir), notes)


def world_row(rec: Recovery) -> dict[str, Any]:
    """One row of the worlds table: the headline truth checks of a :class:`Recovery`.

    Returns
    -------
    dict
        ``n_mines`` (mines of the run), ``n_classified``, ``loss_r``,
        ``loss_bias``, ``loss_rmse``, ``loss_slope``, ``loss_r_mine_year``,
        ``status_agreement``, ``gain_r``, ``gain_bias``, ``gain_rmse``,
        ``gain_slope``, ``rmse_cv``, ``rmse_spatial_cv``, ``rmse_test``,
        ``r2_test``, ``cpi_spearman``, ``cpi_top3_hits``, ``cpi_ordered_share``
        (NaN where a check is not available).

    Examples
    --------
    >>> world_row(rec)["loss_r"]  # doctest: +SKIP
    0.995
    """
    loss = rec.loss.set_index("group").loc["all"]
    row = {"n_mines": rec.summary.get("n_mines"), "n_classified": int(loss["n"])}
    row |= {f"loss_{k}": loss[k] for k in ("r", "bias", "rmse", "slope")}
    row |= {"loss_r_mine_year": loss["r_mine_year"], "status_agreement": loss["status_agreement"]}
    gain = rec.gain.set_index("group").loc["all"] if len(rec.gain) else {}
    row |= {f"gain_{k}": gain.get(k, np.nan) for k in ("r", "bias", "rmse", "slope")}
    model = rec.summary.get("model") or {}
    row |= {k: model.get(k) for k in ("rmse_cv", "rmse_spatial_cv", "rmse_test", "r2_test")}
    cpi = rec.driver_scores.set_index("method").loc["cpi"] if "cpi" in set(rec.driver_scores.get("method", [])) else {}
    row |= {f"cpi_{k}": cpi.get(k, np.nan) for k in ("spearman", "top3_hits", "ordered_share")}
    return {k: (np.nan if v is None else v) for k, v in row.items()}


# ----------------------------------------------------------------------- harder worlds


#: Columns of the worlds table: the world, what it is, and :func:`world_row`.
_WORLD_COLUMNS = ["world", "description", "n_mines", "n_classified", "loss_r", "loss_bias", "loss_rmse", "loss_slope",
                  "loss_r_mine_year", "status_agreement", "gain_r", "gain_bias", "gain_rmse", "gain_slope",
                  "rmse_cv", "rmse_spatial_cv", "rmse_test", "r2_test", "cpi_spearman", "cpi_top3_hits",
                  "cpi_ordered_share"]


class _Scheduler:
    """Run parameters with one Dask scheduler shared by several extractions.

    A given ``scheduler`` (an address or ``"synchronous"``) is kept; without one,
    a local cluster of ``n_workers`` processes is started on the first call of
    :meth:`params` and closed when the block ends.
    """

    def __init__(self, params: RunParams) -> None:
        self._params = params
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Scheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def params(self) -> RunParams:
        """``params`` with a scheduler address (the cluster starts here when needed)."""
        if not self._params.scheduler:
            from distributed import LocalCluster

            with warnings.catch_warnings():  # another cluster on this machine may hold a default port
                warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
                cluster = LocalCluster(n_workers=self._params.n_workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
            self._stack.enter_context(cluster)
            self._params = self._params.replace(scheduler=cluster.scheduler_address)
        return self._params


def _source_hash() -> str:
    """Hash of the :mod:`nepkit` source and of the libraries the numbers depend on."""
    import quantile_forest
    import shap
    import sklearn

    h = hashlib.sha256()
    for f in sorted(_PACKAGE.rglob("*.py")):
        h.update(str(f.relative_to(_PACKAGE)).encode() + b"\0" + f.read_bytes())
    versions = [np.__version__, pd.__version__, sklearn.__version__, shap.__version__, quantile_forest.__version__]
    h.update(" ".join(versions).encode())
    return h.hexdigest()


def _world_key(world: Path, params: RunParams) -> str:
    method = {k: v for k, v in params.to_dict().items() if k not in _NOT_METHOD}
    content = {"world": read_json(world / "world.json")["fingerprint"], "method": method,
               "n_boot": N_BOOT_WORLDS, "code": _source_hash()}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:24]


def _world_run(name: str, scheduler: _Scheduler, params: RunParams, root: Path) -> tuple[RunParams, WorldTruth]:
    """The stage outputs of world ``name`` (cached beside it), as a run over all its mines."""
    from nepkit.synth import ensure_world

    manifest = Path(ensure_world(preset=name, seed=params.seed, root=root, progress=False))
    folder = manifest.parent / ".nepkit-cache" / f"validation-{_world_key(manifest.parent, params)}"
    mini = params.replace(region="all", sources=str(manifest), run_dir=str(folder))
    truth = world_truth(mini)
    if truth is None:
        raise ValidationError(f"world {name} at {manifest.parent} has no truth table: regenerate it")
    if not (folder / "summary.json").exists():
        _compute_world(mini, truth, folder, scheduler)
    return mini, truth


def _compute_world(mini: RunParams, truth: WorldTruth, folder: Path, scheduler: _Scheduler) -> None:
    """Run the four stages into a temporary folder, then rename it to ``folder`` (atomic)."""
    tmp = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    stage = mini.replace(run_dir=str(tmp))
    try:
        ex = extract.run_extraction(stage.replace(scheduler=scheduler.params().scheduler), progress=False)
        extract.write_artifacts(ex, tmp)
        update_summary(tmp, {"parameters": mini.to_dict()})
        nepchange.run(stage, n_boot=N_BOOT_WORLDS, truth=truth.panel)
        potential.run(stage, truth=truth.panel)
        drivers.run(stage, truth=truth.meta)
        try:
            os.rename(tmp, folder)
        except OSError:  # another run finished the same world first: keep its copy
            if not (folder / "summary.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class HarderWorlds:
    """The truth checks of the stress-test worlds.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per world: ``world, description`` and :func:`world_row`.
    recoveries : dict
        World name -> :class:`Recovery`.
    """

    table: pd.DataFrame
    recoveries: dict[str, Recovery]


def harder_worlds(
    params: RunParams, *, names: Sequence[str] = HARDER_WORLDS, root: str | os.PathLike[str] = SYNTHETIC_DIR
) -> HarderWorlds:
    """Run the pipeline's stages on the medium world and its harder variants and check each against its truth.

    Each world (:data:`nepkit.synth.PRESETS`, seed ``params.seed``) is generated
    into ``root`` when missing and run over all its mines with the method
    parameters of ``params`` (region and sources aside).

    Parameters
    ----------
    params : RunParams
        The run whose method parameters the worlds use.
    names : sequence of str
        Preset names (default :data:`HARDER_WORLDS`).
    root : path-like
        Folder of the worlds (default ``data/synthetic``).

    Returns
    -------
    HarderWorlds

    Examples
    --------
    >>> worlds = harder_worlds(RunParams(seed=42), names=("medium", "weak"))  # doctest: +SKIP
    >>> worlds.table[["world", "loss_r", "gain_r", "cpi_spearman"]]  # doctest: +SKIP
    """
    from nepkit.synth import PRESETS

    rows, recs = [], {}
    with _Scheduler(params) as scheduler:
        for name in names:
            mini, truth = _world_run(name, scheduler, params, Path(root))
            recs[name] = recovery(mini, truth)
            rows.append({"world": name, "description": PRESETS[name].description} | world_row(recs[name]))
    return HarderWorlds(pd.DataFrame(rows, columns=_WORLD_COLUMNS), recs)


# ------------------------------------------------------------------------ sensitivity


def _mine_table(mines: pd.DataFrame, covariates: pd.DataFrame, change: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per mine: ``mine_id, continent, subregion, area_km2``, indicators, ``loss_stat`` and the observed gain."""
    stat = nepchange.classify(change, by=by)
    table = mines[["mine_id", "continent", "subregion"]].merge(covariates[["mine_id", *INDICATORS]], on="mine_id")
    table = table.merge(stat[["mine_id", "loss_stat"]], on="mine_id", how="left")
    return table.assign(**{potential.TARGET: -table["loss_stat"]}).sort_values("mine_id", ignore_index=True)


def _potential_headline(table: pd.DataFrame, params: RunParams, forest: Mapping[str, Any] | None) -> dict[str, float]:
    """``n_sample, potential_mean, no_potential_share``: the forest refitted with ``forest`` hyper-parameters."""
    nan = {"n_sample": np.nan, "potential_mean": np.nan, "no_potential_share": np.nan}
    complete, _ = potential.complete_cases(table)
    sample = potential.training_sample(complete, gain_threshold=params.gain_threshold,
                                       n_sample=params.n_sample, seed=params.seed)
    if forest is None or len(sample) < potential.min_sample_size(params.test_fraction, params.cv_folds):
        return nan | {"n_sample": len(sample)}
    grid = {k: [forest[k]] for k in potential.PARAM_GRID}
    model = potential.fit(sample, test_fraction=params.test_fraction, cv_folds=params.cv_folds,
                          seed=params.seed, grid=grid)
    attainable = model.pipeline.predict(complete[list(INDICATORS)])
    values = potential.potential_values(attainable, complete[potential.TARGET], definition=params.potential_definition)
    s = potential.summarize(complete.assign(potential=values))
    return {"n_sample": len(sample), "potential_mean": s["potential_mean"], "no_potential_share": s["no_potential_share"]}


def ring_headline(
    mines: pd.DataFrame, panel: pd.DataFrame, covariates: pd.DataFrame, params: RunParams,
    forest: Mapping[str, Any] | None,
) -> dict[str, float]:
    """The headline numbers of one extraction (one reference ring).

    Parameters
    ----------
    mines, panel, covariates : pandas.DataFrame
        The extraction's tables (``mines`` with ``area_km2, continent, subregion``).
    params : RunParams
        ``baseline``, ``classify_by`` and the potential's parameters.
    forest : mapping or None
        The tuned forest hyper-parameters of the run (``summary["model"]["params"]``);
        None gives NaN potential numbers.

    Returns
    -------
    dict
        The keys of :data:`HEADLINE`: NEP-change numbers from
        :func:`nepkit.nepchange.period_stats`, potential numbers from the
        forest refitted on this ring's training sample.

    Examples
    --------
    >>> ex = extract.run_extraction(params.replace(ring_outer_km=3.0))  # doctest: +SKIP
    >>> ring_headline(ex.mines, ex.nep_panel, ex.covariates, params, {"n_estimators": 200,
    ...               "max_features": 0.33, "min_samples_leaf": 5})["loss_share"]  # doctest: +SKIP
    """
    change = nepchange.compute_change(panel, mines, baseline=params.baseline)
    table = _mine_table(mines, covariates, change, params.classify_by)
    period = nepchange.period_stats(table[table["loss_stat"].notna()])
    nep = {k: period[k] for k in ("n_mines", "loss_share", "net_loss_Gg_per_a", "loss_mean_g_m2_a", "gain_mean_g_m2_a")}
    return nep | _potential_headline(table, params, forest)


def _ring_label(inner: float, outer: float) -> str:
    return f"{inner:g}-{outer:g} km"


def sensitivity(params: RunParams, *, rings: Sequence[tuple[float, float]] = RING_VARIANTS) -> pd.DataFrame:
    """The headline numbers under other ring widths, gain thresholds and potential definitions.

    Ring widths: the run's own ring and each of ``rings`` (extracted again for
    the run's region; the extraction cache keeps them), each with its NEP
    change and the forest refitted with the run's tuned hyper-parameters on
    that ring's training sample (:func:`ring_headline`). Gain thresholds and
    definitions: the potential stage's own sensitivity refits
    (``summary["potential"]["sensitivity"]``); they leave the NEP-change numbers
    unchanged (NaN in the table). A ring that leaves no usable mine in the
    region gets ``n_mines`` 0 and NaN numbers. A last row holds the paper's values.

    Returns
    -------
    pandas.DataFrame
        ``parameter, setting, default`` and the keys of :data:`HEADLINE`.

    Examples
    --------
    >>> table = sensitivity(RunParams(run_dir="runs/all"), rings=[(1.0, 3.0)])  # doctest: +SKIP
    >>> table[["parameter", "setting", "loss_share", "potential_mean"]]  # doctest: +SKIP
    """
    run_dir = params.run_path
    summary = read_summary(run_dir)
    forest = (summary.get("model") or {}).get("params")
    mines = pd.DataFrame(read_artifact(run_dir, "mines").drop(columns="geometry"))
    own = (params.ring_inner_km, params.ring_outer_km)
    rows = [{"parameter": "ring width", "setting": _ring_label(*own), "default": True}
            | ring_headline(mines, read_artifact(run_dir, "nep_panel"), read_artifact(run_dir, "covariates"),
                            params, forest)]
    with _Scheduler(params) as scheduler:
        for inner, outer in rings:
            if (inner, outer) == own:
                continue
            ring = scheduler.params().replace(ring_inner_km=inner, ring_outer_km=outer)
            row = {"parameter": "ring width", "setting": _ring_label(inner, outer), "default": False}
            try:
                ex = extract.run_extraction(ring, progress=False)
            except SourceError:  # every mine of the region excluded with this ring
                rows.append(row | {"n_mines": 0})
                continue
            frame = pd.DataFrame(ex.mines.drop(columns="geometry"))
            rows.append(row | ring_headline(frame, ex.nep_panel, ex.covariates, params, forest))
    records = pd.DataFrame((summary.get("potential") or {}).get("sensitivity") or [])
    if len(records):
        own_def = records["definition"] == params.potential_definition
        for r in records[own_def].to_dict(orient="records"):
            rows.append({"parameter": "gain threshold", "setting": f"{r['gain_threshold']:g} g C m-2 a-1",
                         "default": r["gain_threshold"] == params.gain_threshold} | _potential_part(r))
        at_own = records[records["gain_threshold"] == params.gain_threshold]
        for r in at_own.to_dict(orient="records"):
            rows.append({"parameter": "potential definition", "setting": r["definition"],
                         "default": r["definition"] == params.potential_definition} | _potential_part(r))
    rows.append({"parameter": "paper", "setting": "Chen et al. (2025)", "default": False} | _paper_values())
    return pd.DataFrame(rows, columns=["parameter", "setting", "default", *HEADLINE])


def _potential_part(record: Mapping[str, Any]) -> dict[str, float]:
    return {k: record.get(k, np.nan) for k in ("n_sample", "potential_mean", "no_potential_share")}


def _paper_values() -> dict[str, float]:
    reported = paper_reported()
    return {k: reported[k]["value"] if k in reported else np.nan for k in HEADLINE if k != "n_mines"}


# --------------------------------------------------------------------------------- run


@dataclass
class ValidationResult:
    """Everything the validation chapter shows.

    Attributes
    ----------
    params : RunParams
    truth_note : str
        Where the truth came from, or why there is none (real data).
    run : Recovery or None
        The run's own truth checks (None without a truth).
    worlds : HarderWorlds
        The stress-test worlds.
    sensitivity : pandas.DataFrame
        :func:`sensitivity`.
    summary : dict
        The ``validation`` key merged into ``summary.json``.
    """

    params: RunParams
    truth_note: str
    run: Recovery | None
    worlds: HarderWorlds
    sensitivity: pd.DataFrame
    summary: dict = field(default_factory=dict)


def run(params: RunParams, *, worlds: Sequence[str] = HARDER_WORLDS,
        world_root: str | os.PathLike[str] = SYNTHETIC_DIR) -> ValidationResult:
    """The validation stage: truth checks of the run and of the harder worlds, and the sensitivity table.

    Reads the run's artifacts (every earlier chapter must have run); writes
    ``validation_recovery.csv`` (agreement per check, world and group),
    ``validation_worlds.csv`` (one row per world, the run's first) and
    ``validation_sensitivity.csv``, and the ``validation`` key of ``summary.json``.

    Parameters
    ----------
    params : RunParams
        The run.
    worlds : sequence of str
        The stress-test worlds (:data:`HARDER_WORLDS`).
    world_root : path-like
        Where the stress-test worlds are generated (default ``data/synthetic``).

    Returns
    -------
    ValidationResult

    Examples
    --------
    >>> res = run(RunParams(synthetic_preset="small", seed=1))  # doctest: +SKIP
    >>> res.worlds.table[["world", "loss_r", "gain_r"]]  # doctest: +SKIP
    """
    for name in ("mines", "nep_panel", "covariates", "nep_change", "potential", "drivers", "summary"):
        if not artifact_path(params.run_path, name).exists():
            raise FileNotFoundError(
                f"{artifact_path(params.run_path, name)} is missing: run the chapters before the validation "
                "(nepkit run executes them in order)"
            )
    with warnings.catch_warnings():  # tqdm's import-time notice in kernels without ipywidgets
        warnings.filterwarnings("ignore", message="IProgress not found")
        return _run(params, worlds, Path(world_root))


def _run(params: RunParams, worlds: Sequence[str], world_root: Path) -> ValidationResult:
    truth = world_truth(params)
    note = (f"the truth of the synthetic world in {shown(truth.source)}" if truth is not None
            else "the run reads real data: there is no injected truth to compare with")
    own = recovery(params, truth) if truth is not None else None
    stress = harder_worlds(params, names=worlds, root=world_root)
    sens = sensitivity(params)
    label = f"this run ({params.region})"
    rows = [{"world": label, "description": note} | world_row(own)] if own else []
    table = pd.DataFrame(rows + stress.table.to_dict(orient="records"), columns=_WORLD_COLUMNS)
    recs = ({label: own} if own else {}) | stress.recoveries
    result = ValidationResult(params, note, own, HarderWorlds(table, recs), sens)
    result.summary = _summary(result)
    _write(result)
    return result


def _recovery_long(recs: Mapping[str, Recovery]) -> pd.DataFrame:
    parts = []
    for world, rec in recs.items():
        for check, t in (("loss", rec.loss), ("attainable_gain", rec.gain)):
            if len(t):
                parts.append(t.assign(world=world, check=check))
    cols = ["world", "check", "group", "n", "r", "bias", "rmse", "slope", "r_mine_year", "status_agreement"]
    return pd.concat(parts, ignore_index=True).reindex(columns=cols) if parts else pd.DataFrame(columns=cols)


def _write(res: ValidationResult) -> None:
    run_dir = res.params.run_path
    write_table(_recovery_long(res.worlds.recoveries), run_dir / "validation_recovery.csv")
    write_table(res.worlds.table, run_dir / "validation_worlds.csv")
    write_table(res.sensitivity, run_dir / "validation_sensitivity.csv")
    update_summary(run_dir, {"validation": res.summary})


def _summary(res: ValidationResult) -> dict[str, Any]:
    worlds = res.worlds.table.set_index("world")
    keep = ["n_mines", "loss_r", "loss_bias", "gain_r", "gain_bias", "rmse_cv", "rmse_spatial_cv",
            "rmse_test", "cpi_spearman"]
    return {
        "truth": res.truth_note,
        "worlds": {w: {k: _scalar(worlds.loc[w, k]) for k in keep} for w in worlds.index},
        "sensitivity": [{k: _scalar(v) for k, v in r.items()} for r in res.sensitivity.to_dict(orient="records")],
    }


def _scalar(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        value = value.item()
    return None if isinstance(value, float) and not np.isfinite(value) else value

