"""A Sphinx extension for the book: drop duplicated ``<script>`` entries of a page.

sphinx-thebe (which Jupyter Book 1 always loads) registers its inline
configuration script once per reading pass; a build that reads the sources twice
then declares ``const THEBE_JS_URL`` twice and the browser reports a
``SyntaxError`` on every page. Keeping the first of identical scripts fixes it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["setup"]


def _dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()  # (file, inline body); '' and None are the same file
    unique = []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        key = (str(getattr(script, "filename", "") or ""), str(attributes.get("body", "")))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Any) -> dict[str, Any]:
    """Register the page-context hook (early: a later hook may end the event)."""
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
