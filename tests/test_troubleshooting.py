"""The README's Troubleshooting section is what ``tools/troubleshooting.py`` produces now.

The generator provokes every bad input the pipeline recognizes and renders the
messages the code prints; a changed message makes the README stale and this test
fail until the section is rewritten (``python tools/troubleshooting.py --write``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "troubleshooting.py"


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    """``tools/troubleshooting.py``, imported as a module (``tools`` is not a package)."""
    spec = importlib.util.spec_from_file_location("troubleshooting", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(tool: ModuleType, small_world: Path) -> str:
    """The section as the generator renders it now, on the session's small world."""
    return tool.build(world=small_world)


def test_readme_troubleshooting_section_is_current(tool: ModuleType, generated: str) -> None:
    current = tool.section(tool.README.read_text(encoding="utf-8"))
    if current != generated:
        stale = [line for line in generated.splitlines() if line not in current.splitlines()]
        pytest.fail(f"README.md's Troubleshooting section is out of date: {tool.HINT}\n"
                    "first line that differs:\n" + (stale[0] if stale else "(rows removed)"))


def test_troubleshooting_covers_at_least_thirty_situations(tool: ModuleType, generated: str) -> None:
    assert tool.count_rows(generated) >= 30
    rows = [line for line in generated.splitlines() if line.startswith("| ")][1:]
    assert all(line.count(" | ") >= 2 for line in rows)


def test_no_temporary_path_leaks_into_the_section(generated: str) -> None:
    assert "/tmp" not in generated and "nepkit-troubleshooting-" not in generated
