"""Fuzz tests of the manifest loader: malformed YAML, wrong types, missing and unknown keys.

Whatever a ``sources.yml`` holds, :func:`nepkit.sources.load_manifest` either
returns a manifest or raises :class:`~nepkit.sources.ManifestError` with one
line that names the file; never another exception, never a traceback from deep
inside a library.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from _rasters import tiny_world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nepkit.sources import Manifest, ManifestError, load_manifest

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    """A valid tiny world: its manifest path, the manifest as a dict and as text."""
    manifest = tiny_world(tmp_path_factory.mktemp("fuzz") / "world")
    text = manifest.read_text(encoding="utf-8")
    return manifest, yaml.safe_load(text), text


def _load(manifest: Path, text: str) -> Manifest | None:
    """Write ``text`` as the manifest and load it; check the failure contract on errors."""
    manifest.write_text(text, encoding="utf-8")
    try:
        return load_manifest(manifest)
    except ManifestError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert str(manifest) in message, message
        return None


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a nested dict/list."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _set(node: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(node: Any, path: tuple) -> None:
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


#: Text without line breaks (a value echoed in a message keeps the message on one line).
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=12)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.sampled_from(["", " ", "{year}", "nep/nep_{year}.tif", "covariates/soc.tif", "../", "/", "~", "NaN",
                     "EPSG:4326", "EPSG:999999", "mean", "sum", "elevation", "1e30", "2000"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(TEXT, inner, max_size=3)),
                      max_leaves=6)


def test_the_unchanged_manifest_loads(world):
    manifest, _, text = world
    assert isinstance(_load(manifest, text), Manifest)


@FUZZ
@given(data=st.data())
def test_a_value_of_any_type_anywhere_fails_with_one_line(world, data):
    manifest, raw, _ = world
    mutated = copy.deepcopy(raw)
    path = data.draw(st.sampled_from(_paths(raw)), label="key path")
    _set(mutated, path, data.draw(VALUES, label="value"))
    _load(manifest, yaml.safe_dump(mutated, sort_keys=False))


@FUZZ
@given(data=st.data())
def test_a_missing_or_unknown_key_fails_with_one_line(world, data):
    manifest, raw, _ = world
    mutated = copy.deepcopy(raw)
    path = data.draw(st.sampled_from(_paths(raw)), label="key path")
    if data.draw(st.booleans(), label="delete"):
        _delete(mutated, path)
    else:
        parent = path[:-1]
        node = mutated
        for key in parent:
            node = node[key]
        if isinstance(node, dict):
            node[data.draw(TEXT.filter(bool), label="new key")] = data.draw(VALUES, label="value")
    _load(manifest, yaml.safe_dump(mutated, sort_keys=False))


#: Optional keys of each kind of entry (absent from the tiny world's manifest).
OPTIONAL = {
    (): ["baseline_year", "landcover", "description", "truth"],
    ("mines",): ["layer", "id_column", "iso3_column"],
    ("nep",): ["variable", "band", "crs", "nodata", "scale", "offset", "aggregate", "per_area", "years", "step"],
    ("covariates", "soc"): ["variable", "band", "crs", "nodata", "scale", "offset", "aggregate", "per_area",
                            "years", "step"],
    ("covariates", "curvature"): ["derive", "path"],
}


@pytest.mark.parametrize("where, key", [(w, k) for w, keys in OPTIONAL.items() for k in keys])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
def test_an_optional_key_of_any_value_fails_with_one_line(world, where, key, value):
    manifest, raw, _ = world
    mutated = copy.deepcopy(raw)
    _set(mutated, (*where, key), value)
    _load(manifest, yaml.safe_dump(mutated, sort_keys=False))


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10**6), junk=st.text(alphabet="\t :-[]{}'\"#&*!|>%@`,?\n", max_size=8))
def test_broken_yaml_syntax_fails_with_one_line(world, cut, junk):
    manifest, _, text = world
    at = cut % (len(text) + 1)
    _load(manifest, text[:at] + junk + text[at:])


@FUZZ
@given(text=st.text(max_size=200))
def test_arbitrary_text_fails_with_one_line(world, text):
    manifest, _, _ = world
    assert _load(manifest, text) is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("years: [2000, 2020\n", "not valid YAML at line"),
        ("- a\n- b\n", "expected a mapping"),
        ("years: 2000\nmines: m.gpkg\nnep: n.tif\ncovariates: {}\n", "years must be [first, last]"),
        ("years: [2000, 2002]\nmines: 5\nnep: nep/nep_{year}.tif\ncovariates: {}\n", "mines must be a mapping"),
        ("years: [2000, 2002]\nmines: {path: mines.gpkg}\nnep: {path: [1, 2]}\ncovariates: {}\n",
         "a path must be a non-empty string"),
        ("years: [2000, 2002]\nmines: mines.gpkg\nnep: nep/nep_{year}.tif\ncovariates: {soc: 3}\n",
         "unknown covariate|missing"),
        ("years: [2000, 2002]\nmines: mines.gpkg\nnep: {path: 'nep/nep_{year}.tif', band: 0}\ncovariates: {}\n",
         "nep band must be a positive integer"),
        ("years: [2000, 2002]\nmines: mines.gpkg\nnep: {path: 'nep/nep_{year}.tif', band: '2'}\ncovariates: {}\n",
         "nep band must be a positive integer"),
    ],
)
def test_known_malformed_manifests_name_the_problem(world, text, message):
    manifest, _, _ = world
    manifest.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError, match=message.replace("[", r"\[")):
        load_manifest(manifest)
