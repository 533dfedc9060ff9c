import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nepkit.cli import main
from nepkit.runner import chapters_from_toc, output_name

NEPKIT = [sys.executable, "-m", "nepkit.cli"]


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_help_lists_the_commands():
    res = invoke("--help")
    assert res.exit_code == 0
    for command in ("run", "sweep", "book", "synth"):
        assert command in res.output


def test_run_help_prints_usage():
    res = invoke("run", "--help")
    assert res.exit_code == 0
    assert "Usage: main run [OPTIONS]" in res.output or "Usage: nepkit run" in res.output
    assert "--region" in res.output and "--sources" in res.output


def test_unknown_region_is_one_line_with_exit_2():
    proc = subprocess.run([*NEPKIT, "run", "--region", "Atlantis"], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: unknown region 'Atlantis'; valid: all; continents: Asia")
    assert "South-Eastern Asia" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--set", "ring_outer_km=0.5"], "ring_inner_km (1.0) must be smaller than ring_outer_km (0.5)"),
        (["run", "--set", "ringouter=3"], "unknown parameter(s) ringouter"),
        (["run", "--set", "novalue"], "--set expects key=value"),
        (["run", "--sources", "/nonexistent/sources.yml"], "manifest /nonexistent/sources.yml does not exist"),
        (["sweep", "--regions", "Asia,Atlantis"], "unknown region 'Atlantis'"),
    ],
)
def test_bad_input_gets_one_clear_error(args, message):
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_unknown_synthetic_preset_lists_every_preset(tmp_path):
    from nepkit.synth import PRESETS

    res = invoke("synth", "--preset", "huge", "--out", str(tmp_path / "w"))
    assert res.exit_code == 2
    assert "'huge' is not a preset; use one of: " + ", ".join(sorted(PRESETS)) in res.output
    assert not (tmp_path / "w").exists()
    help_text = " ".join(invoke("synth", "--help").output.split())
    assert all(name in help_text for name in PRESETS)


def test_chapters_come_from_the_toc_in_order():
    chapters = chapters_from_toc()
    assert chapters and chapters[0].name == "01_data.ipynb"
    assert [c.name for c in chapters] == sorted(c.name for c in chapters)
    assert output_name(chapters[0], "South America") == "01_data__South_America.ipynb"


def test_network_is_blocked_in_tests_and_their_subprocesses():
    with pytest.raises(OSError, match="network access blocked"):
        socket.create_connection(("93.184.216.34", 80), timeout=1)
    code = "import socket; socket.create_connection(('93.184.216.34', 80), timeout=1)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "network access blocked" in proc.stderr


def test_chapter_notebooks_carry_the_plain_kernel_and_the_parameter_cell():
    import nbformat

    from nepkit.params import RunParams

    for nb_path in sorted(Path("chapters").glob("[0-9]*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3", nb_path
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, nb_path
        assert "remove-cell" in tagged[0].metadata["tags"]
        names = [line.split("=")[0].strip() for line in tagged[0].source.splitlines() if "=" in line]
        assert names == RunParams.names(), nb_path
